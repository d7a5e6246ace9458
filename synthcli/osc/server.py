"""The OSC server: the command language over UDP.

One thread owns the socket. It waits for a datagram, then drains whatever
else has arrived meanwhile and applies the lot inside one bundle, so a
burst of thousands of messages reaches the engine as a handful of pipe
messages rather than thousands. A 4 MiB receive buffer holds a burst while
a batch is applied (python-osc's blocking server lost two thirds of a
10,000-message burst with the default 208 KiB, and its threading server
lost messages even at 2,000 a second). All of this runs in the control
process: parsing never competes with the audio callback.

Datagrams are checked strictly before anything is applied: OSC 1.0
padding, known type tags, no bytes left over, sizes that fit, and no
bundle inside a bundle. What fails is dropped with one log line (at most a
few a second, then a count), never an exception that stops the server.
"""
from __future__ import annotations

import contextlib
import errno
import heapq
import ipaddress
import itertools
import select
import socket
import threading
import time
from typing import Callable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

from ..errors import SynthError, did_you_mean
from .addresses import ADDRESSES

#: Bytes of kernel receive buffer asked for. The kernel charges each small
#: datagram about 1 KiB of it, so 8 MiB holds some 8,000 messages while the
#: server thread waits for the CPU.
RCVBUF = 8 << 20
#: Datagrams applied together at most (a batch holds the session's lock).
DRAIN = 512
#: Log lines a second before the rest are only counted.
LOG_RATE = 20
#: A bundle timed for later is held here until this many seconds before
#: its time, then applied to the session and sent to the engine (which
#: puts it on its sample). Applied at once, it showed in `ls` and `save`
#: long before it was heard, and the whole patch that edits made meanwhile
#: sent already held it, while its own later load undid those edits.
HOLD_LEAD = 0.5
#: Timed bundles held at most; more are dropped, each with a log line.
HOLD_MAX = 10_000
#: Bytes of timed bundles held at most, likewise: the count alone let a
#: sender fill them with 5,415 empty messages each, some 420 KB of memory
#: a bundle (4 GB at HOLD_MAX). Read, a datagram of empty messages takes 6
#: to 15 times its size, so this holds at most some 60 MB.
HOLD_BYTES = 4 << 20
#: NTP's epoch (1900) in Unix seconds, and the timetag that means "now".
NTP_DELTA = 2208988800
IMMEDIATELY = 1


def _get_float(data: bytes, index: int) -> tuple[float, int]:
    """python-osc pads a float cut short with zeros (Reaktor leaves them
    off), so a message missing its last float read as 0.0 followed by
    "-4 bytes after the last argument"; OSC 1.0 says four bytes."""
    if len(data) - index < 4:
        raise osc_types.ParseError("Datagram is too short")
    return osc_types.get_float(data, index)


_READERS = {"i": osc_types.get_int, "f": _get_float, "s": osc_types.get_string,
            "d": osc_types.get_double, "h": osc_types.get_int64, "b": osc_types.get_blob}
_CONSTANTS = {"T": True, "F": False, "N": None}
_ROWS = {row.path: row for row in ADDRESSES}


def client(host: str) -> str:
    """An IP address as --osc-allow compares it: on an IPv6 socket
    (``--osc-host ::``) an IPv4 client shows as ``::ffff:127.0.0.1``, and
    an allowed 127.0.0.1 was locked out; IPv6 spellings differ too."""
    address = ipaddress.ip_address(host)
    return str(getattr(address, "ipv4_mapped", None) or address)


class Malformed(Exception):
    """A datagram that is not well-formed OSC 1.0."""


def parse(data: bytes) -> tuple[float | None, list[tuple[str, str, list]]]:
    """``(when, messages)`` of one datagram: ``when`` is a bundle's time in
    Unix seconds (None for a plain message or an immediate bundle); each
    message is ``(address, type tags, arguments)``. Raises Malformed."""
    if not data:
        raise Malformed("empty datagram")
    if len(data) % 4:
        raise Malformed(f"{len(data)} bytes is not a multiple of 4 (bad padding)")
    if data.startswith(b"#bundle\0"):
        return _bundle(data)
    return None, [_message(data)]


def _bundle(data: bytes) -> tuple[float | None, list]:
    if len(data) < 16:
        raise Malformed("truncated bundle: no timetag")
    seconds, fraction = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    when = None if (seconds << 32 | fraction) == IMMEDIATELY else seconds - NTP_DELTA + fraction / 2 ** 32
    messages, index = [], 16
    while index < len(data):
        if index + 4 > len(data):
            raise Malformed("truncated bundle: an element size is cut off")
        size = int.from_bytes(data[index:index + 4], "big", signed=True)
        index += 4
        if size <= 0 or size % 4 or index + size > len(data):
            raise Malformed(f"truncated bundle: an element of {size} bytes does not fit")
        element = data[index:index + size]
        if element.startswith(b"#bundle"):
            raise Malformed("a bundle inside a bundle (not accepted: send one bundle per time)")
        messages.append(_message(element))
        index += size
    return when, messages


def _message(data: bytes) -> tuple[str, str, list]:
    if data[:1] == b"\0":
        raise Malformed("empty address")
    if data[:1] != b"/":
        raise Malformed("an OSC address starts with '/'")
    try:
        address, index = osc_types.get_string(data, 0)
        if index == len(data):
            return address, "", []
        tags, index = osc_types.get_string(data, index)
        if not tags.startswith(","):
            raise Malformed("the type tag string does not start with ','")
    except (osc_types.ParseError, UnicodeDecodeError) as error:
        raise Malformed(f"bad address or type tags: {error}") from None
    args = []
    for number, tag in enumerate(tags[1:], start=1):
        if tag in _CONSTANTS:
            args.append(_CONSTANTS[tag])
        elif tag in _READERS:
            try:
                value, index = _READERS[tag](data, index)
            except (osc_types.ParseError, UnicodeDecodeError) as error:
                kind = "blob" if tag == "b" else f"'{tag}'"
                raise Malformed(f"{address}: argument {number} ({kind}) does not fit: {error}") from None
            args.append(value)
        else:
            raise Malformed(f"{address}: unknown type tag '{tag}'")
    if index != len(data):
        raise Malformed(f"{address}: {len(data) - index} bytes after the last argument")
    return address, tags[1:], args


class OscServer:
    """Listens for OSC on ``host:port`` and applies it through ``control``.

    Parameters
    ----------
    control : Control
    port : int
        0 picks a free port (see :attr:`port` once started).
    host : str
        127.0.0.1 unless the musician chose otherwise (the CLI warns then).
    allow : iterable of str, optional
        Client IP addresses to accept; others are dropped and logged.
    log : callable
        ``log(line)`` for refused messages and dropped datagrams.
    """

    def __init__(self, control, port: int, host: str = "127.0.0.1", allow=None,
                 log: Callable[[str], None] = print) -> None:
        self.control = control
        self.host, self.port = host, port
        self.allow = {client(host) for host in allow} if allow else None
        self.log = log
        self.counts = {"received": 0, "applied": 0, "refused": 0, "dropped": 0}
        self.reply_ports: dict[str, int] = {}
        self._running = False
        self._logged, self._second, self._unlogged = 0, 0, 0
        self._thread: threading.Thread | None = None
        self.held: list[tuple[float, int, float, list, tuple, int]] = []   # (due, order, when, messages, sender, size)
        self.held_bytes = 0
        self._order = itertools.count()

    # -- life ----------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve in a thread; returns a note when the kernel gave
        a smaller receive buffer than asked for (a burst may then lose
        messages), else an empty string."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        note = self._buffer()
        try:
            self.sock.bind((self.host, self.port))
        except OSError as error:
            self.sock.close()
            raise SynthError(f"cannot listen for OSC on {self.host}:{self.port}: {error.strerror}") from None
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="synthcli-osc", daemon=True)
        self._thread.start()
        return note

    def _buffer(self) -> str:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < RCVBUF:
            try:   # root (or CAP_NET_ADMIN) may go past net.core.rmem_max
                self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), RCVBUF)
            except OSError:
                pass
        got = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if got < RCVBUF:
            return (f"the OSC receive buffer is {got >> 10} KiB, not {RCVBUF >> 20} MiB: bursts may lose messages "
                    f"(raise it with `sysctl -w net.core.rmem_max={RCVBUF * 2}`)")
        return ""

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(2)
        self.sock.close()

    # -- receiving ------------------------------------------------------------

    def _serve(self) -> None:
        while self._running:
            self._count_unlogged()
            self._release()
            wait = 0.2 if not self.held else min(0.2, max(0.0, self.held[0][0] - time.time()))
            try:
                ready, _, _ = select.select([self.sock], [], [], wait)
            except (OSError, ValueError):   # closed under us: stopping
                break
            batch = []
            while ready and len(batch) < DRAIN:
                try:
                    batch.append(self.sock.recvfrom(65536))
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:   # an ICMP error for a reply sent earlier: nothing was lost
                    continue
                except OSError:
                    break
            if not batch:
                continue
            try:
                self.handle(batch)
            except Exception as error:   # a fault of ours must not end the server
                self._log(f"osc: internal error, batch dropped ({type(error).__name__}: {error})")
        self._count_unlogged(ended=True)

    def handle(self, batch: list[tuple[bytes, tuple]]) -> None:
        """Apply datagrams received together: immediate messages as one
        bundle, each timed bundle as its own on the sample of its time."""
        now = time.time()
        immediate, timed = [], []
        for data, sender in batch:
            if self.allow is not None and client(sender[0]) not in self.allow:
                self._drop(sender, "not on the --osc-allow list")
                continue
            try:
                when, messages = parse(data)
            except Malformed as error:
                self._drop(sender, str(error))
                continue
            if when is not None and when > now + HOLD_LEAD:
                if len(self.held) >= HOLD_MAX:
                    self._drop(sender, f"{HOLD_MAX} timed bundles are already waiting for their time")
                    continue
                if self.held_bytes + len(data) > HOLD_BYTES:
                    self._drop(sender, f"timed bundles of {self.held_bytes} bytes are already waiting for their time "
                                       f"(at most {HOLD_BYTES} bytes wait)")
                    continue
                heapq.heappush(self.held, (when - HOLD_LEAD, next(self._order), when, messages, sender, len(data)))
                self.held_bytes += len(data)
            elif when is not None and when > now:
                timed.append((when, messages, sender))
            else:
                immediate.append((messages, sender))
        if immediate:
            with self.control.bundle():
                for messages, sender in immediate:
                    self._apply(messages, sender)
        for when, messages, sender in timed:
            with self.control.bundle(when):
                self._apply(messages, sender)

    def _release(self) -> None:
        """Apply the held bundles whose time is near, each on its sample."""
        while self.held and self.held[0][0] <= time.time():
            _, _, when, messages, sender, size = heapq.heappop(self.held)
            self.held_bytes -= size
            try:
                with self.control.bundle(when):
                    self._apply(messages, sender)
            except Exception as error:   # a fault of ours must not end the server
                self._log(f"osc: internal error, timed bundle dropped ({type(error).__name__}: {error})")

    def _apply(self, messages: list[tuple[str, str, list]], sender: tuple) -> None:
        """A datagram's messages, all of them or none: OSC's bundle is one
        unit, and one whose last message was refused had added a module and
        set a value with the others (Control.atomic). A message refused says
        why, and which of its bundle it was; the results of a bundle kept go
        back once all of it is."""
        ports, results = dict(self.reply_ports), []
        self.counts["received"] += len(messages)
        try:
            with self.control.atomic() if len(messages) > 1 else contextlib.nullcontext():
                for message in messages:
                    results.append(self._run(message, sender))
        except Exception as error:
            self.reply_ports.clear()
            self.reply_ports.update(ports)
            self.counts["refused"] += len(messages)
            address, _, args = messages[len(results)]
            which = (f" (message {len(results) + 1} of the {len(messages)} in its bundle: none of them was applied)"
                     if len(messages) > 1 else "")
            if not isinstance(error, SynthError):   # a fault of ours loses this message (its bundle), not its batch
                self._log(f"osc: {address} from {sender[0]}:{sender[1]} dropped: internal error "
                          f"({type(error).__name__}: {error}){which}")
                return
            typed = args[0] if address == "/synth/cmd" and args and isinstance(args[0], str) else ""
            why = error.typed(typed) + which
            self._log(f"osc: {address} from {sender[0]}:{sender[1]} refused: {why}")
            self._reply(sender, address, "/synth/error", f"{address}: {why}", always=True)
            return
        self.counts["applied"] += len(messages)
        for (address, _, _), result in zip(messages, results):
            if result:
                self._reply(sender, address, "/synth/result", result)

    def _run(self, message: tuple[str, str, list], sender: tuple):
        """What the message's address does with it; raises SynthError to refuse it."""
        address, tags, args = message
        row, handler, names = self._route(address)
        if tags not in row.types:
            wanted = " or ".join(f"',{t}'" for t in row.types)
            raise SynthError(f"takes {wanted}, got ',{tags}'")
        # A float32 as the decimal that was sent: 0.2, not 0.20000000298023224 in `save`d files and undo.
        args = [float(f"{arg:.7g}") if tag == "f" else arg for tag, arg in zip(tags, args)]
        return handler(*names, *args, sender=sender)

    def _route(self, address: str):
        parts = address.split("/")
        if len(parts) == 3 and parts[1] == "synth" and f"/synth/{parts[2]}" in _ROWS:
            return _ROWS[f"/synth/{parts[2]}"], getattr(self, f"on_{parts[2]}"), ()
        if len(parts) == 4 and parts[1] == "synth" and parts[2] and parts[3]:
            if parts[3] == "note":
                return _ROWS["/synth/NAME/note"], self.on_named_note, (parts[2],)
            return _ROWS["/synth/NAME/PARAM"], self.on_param, (parts[2], parts[3])
        concrete = [path for path in _ROWS if "NAME" not in path]
        raise SynthError(f"unknown address{did_you_mean(address, concrete)} (docs/osc.md lists them)")

    # -- the addresses ----------------------------------------------------------

    def on_cmd(self, text: str, sender) -> str:
        return self.control.execute(text, remote=True)

    def on_set(self, target: str, value, sender) -> None:
        name, dot, param = target.partition(".")
        if not dot or not name or not param:
            raise SynthError(f"'{target}' should be NAME.PARAM")
        self.control.knob(name, param, value)

    def on_param(self, name: str, param: str, value, sender) -> None:
        self.control.knob(name, param, value)

    def on_note(self, pitch, velocity, on, which=None, sender=None) -> None:
        if isinstance(which, int):
            if not 1 <= which <= 16:
                raise SynthError(f"MIDI channel {which} is outside 1..16")
            which = f"ch{which}"
        self._note(pitch, velocity, on, which)

    def on_named_note(self, name: str, pitch, velocity, on, sender) -> None:
        self._note(pitch, velocity, on, name)

    def _note(self, pitch, velocity, on, which) -> None:
        """A velocity is MIDI's 0..127: one outside was clamped without a
        word (300 played at full, -50 as a silent note), so it is refused,
        as a pitch outside 0..127 is (NaN is the session's to refuse). A
        note-on at velocity 0 is a note-off, as in MIDI, whose messages a
        bridge turns into these: as a note it held a voice, silent."""
        if velocity == velocity and not 0 <= velocity <= 127:
            raise SynthError(f"velocity {velocity:g} is outside 0..127")
        self.control.note(pitch, velocity / 127, bool(on) and velocity != 0, which)

    def on_tempo(self, bpm, sender) -> str:
        return self.control.execute(f"tempo {bpm:g}", remote=True)

    def on_play(self, bar=None, sender=None) -> str:
        return self._transport("play" if bar is None else f"play {bar}")

    def on_stop(self, sender) -> str:
        return self._transport("stop")

    def _transport(self, verb: str) -> str:
        """What ``play`` or ``stop`` said when it did nothing (no song yet,
        nothing playing) is a refusal, logged and sent back, as a sender
        with no reply port would never hear it; what it said as it did
        something (a bar past the song's end) is the result."""
        transport = self.control.session.transport
        before = transport.segments   # replaced whole by a play or a stop that happens
        said = self.control.execute(verb, remote=True)
        if said and transport.segments is before:
            raise SynthError(said)
        return said

    def on_reply(self, port: int, sender) -> None:
        if not 0 < port < 65536:
            raise SynthError(f"port {port} is outside 1..65535")
        self.reply_ports[sender[0]] = port

    def on_stats(self, sender) -> None:
        c = self.counts
        self._reply(sender, "/synth/stats", "/synth/stats", c["received"], c["applied"], c["refused"], c["dropped"],
                    always=True)

    # -- replies and the log ----------------------------------------------------------

    def _reply(self, sender: tuple, asked: str, address: str, *args, always: bool = False) -> None:
        """To the client's reply port; without one, only what it must hear
        (errors, asked-for stats) goes back to the port it sent from. A
        reply too large for a datagram (``ls`` of 1,100 modules) was lost
        without a word: an error names the address ``asked`` and the size."""
        port = self.reply_ports.get(sender[0])
        if port is None and not always:
            return
        where = (sender[0], port or sender[1])
        size = self._send(where, address, *args)
        if size:
            why = f"its {address} of {size} bytes is too large for one UDP datagram, and was not sent"
            self._log(f"osc: {asked} from {sender[0]}:{sender[1]}: {why}")
            self._send(where, "/synth/error", f"{asked}: {why}")

    def _send(self, where: tuple, address: str, *args) -> int:
        """0 once sent (UDP may still lose it), else the size of a datagram
        too large to send."""
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        dgram = builder.build().dgram
        try:
            self.sock.sendto(dgram, where)
        except OSError as error:
            return len(dgram) if error.errno == errno.EMSGSIZE else 0
        return 0

    def _drop(self, sender: tuple, why: str) -> None:
        self.counts["dropped"] += 1
        self._log(f"osc: dropped a datagram from {sender[0]}:{sender[1]}: {why}")

    def _count_unlogged(self, ended: bool = False) -> None:
        """Report the lines a second held back once it is over, or the
        server is: the serving loop calls this between datagrams too, or
        the count of a burst's last second would wait for the next bad
        datagram, which may never come."""
        second = int(time.monotonic())
        if second != self._second or ended:
            if self._unlogged:
                self.log(f"osc: ... and {self._unlogged} more such lines in that second")
            self._second, self._logged, self._unlogged = second, 0, 0

    def _log(self, line: str) -> None:
        self._count_unlogged()
        if self._logged < LOG_RATE:
            self._logged += 1
            self.log(line)
        else:
            self._unlogged += 1
