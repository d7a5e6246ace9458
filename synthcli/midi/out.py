"""MIDI out of live play: the song's clock (``--clock-out``) and the
notes of patterns on ``midiout`` targets.

The engine's render thread knows on which sample each tick and note
falls, a few blocks before that sample is heard, and turns the sample
into the wall-clock instant it is heard (:meth:`LiveEngine.time_of`):
that is :class:`EngineMidi`. It opens no port and sends nothing itself:
opening a JACK MIDI client holds Python's lock for a fifth of a second
here, which starved the audio callback into a dozen xruns when it
happened in the engine process. So the engine hands each block's
messages to the control process, where a :class:`Sender` thread sleeps
until each instant and sends. Every message keeps its own instant from
the sample clock, so a late wake-up delays one message and is not
carried into the next.
"""
from __future__ import annotations

import heapq
import threading
import time
from typing import Callable

import mido

from ..api import NoteOff, NoteOn
from ..errors import SynthError
from .clock import ClockTicks
from .ports import find_port, input_sources, open_port, reconnect, returned

#: Seconds between the sending thread's looks whether each port it sends to
#: is still there, as the reading thread's of an input (midi/live.py).
LOOK = 0.2


class Sender:
    """Sends timed messages to output ports from a thread of its own
    (in the control process).

    Parameters
    ----------
    report : callable
        ``report(line)`` once for each port that cannot be opened, and when
        one it sends to disappears or is back.
    """

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.queue: list = []             # (sample, seq, when, port, message bytes), in the engine's order
        self.ports: dict[str, object] = {}
        self.sounding: set[tuple[str, int, int]] = set()   # (port, channel, note) sent on and not yet off
        #: Per (port, channel, note), the offs still to come of notes a restrike cut short (see _send).
        self.cut: dict[tuple[str, int, int], int] = {}
        self.found: dict[str, str] = {}   # the full name each port's destination had when opened
        self.gone: set[str] = set()       # the ports whose destination went
        self._wake = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="synthcli-midi-out", daemon=True)
        self._thread.start()

    def take(self, message: tuple) -> None:
        """A message of the engine's: ``("midi", entries)`` to send, each
        ``(sample, seq, when, port, bytes)`` (``bytes`` None only opens the
        port; see :meth:`open`), or ``("midi-halt",)`` when the song stops."""
        if message[0] == "midi-halt":
            self.halt()
            return
        with self._wake:
            for entry in message[1]:
                heapq.heappush(self.queue, entry)
            self._wake.notify()

    def open(self, ports: list[str]) -> None:
        """Open these ports now, in the thread, ahead of their first message."""
        self.take(("midi", [(-1, number, 0.0, port, None) for number, port in enumerate(ports)]))

    def halt(self) -> None:
        """Ticks and notes not yet due are dropped, and the notes that sound
        outside end at once, so none hangs."""
        with self._wake:
            self.queue = []
            sounding, self.sounding = self.sounding, set()
            self.cut = {}
        for port, channel, note in sorted(sounding):
            self._send(port, [0x80 | channel, note, 64])

    def close(self, timeout: float = 0.5) -> None:
        """Send what is due within ``timeout`` seconds, then stop."""
        deadline = time.monotonic() + timeout
        while self.queue and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(2)
        for port in self.ports.values():
            if port is not None:
                port.close()

    def _serve(self) -> None:
        looked = time.monotonic()
        while True:
            with self._wake:
                while self._running and (not self.queue or self.queue[0][2] > time.time()):
                    if time.monotonic() - looked >= LOOK:
                        break
                    self._wake.wait(LOOK if not self.queue else min(LOOK, self.queue[0][2] - time.time()))
                if not self._running:
                    return
                due = self.queue and self.queue[0][2] <= time.time()
                entry = heapq.heappop(self.queue) if due else None
            if entry is not None:
                self._send(entry[3], entry[4])
            if time.monotonic() - looked >= LOOK:
                looked = time.monotonic()
                self._look()

    def _look(self) -> None:
        """Whether each port sent to is still there; one that went (a synth
        that quit, a bridge restarted) is connected to again when it is
        back, by itself, and said so, as a keyboard's input is."""
        for name, port in list(self.ports.items()):
            names = input_sources(port) if port is not None else None
            if names is None:
                continue
            full = self.found[name]
            if name not in self.gone:
                if full not in names:
                    self.gone.add(name)
                    self.report(f"midi: output '{full}' disappeared; sending to it again when it returns")
                continue
            back = returned(full, names)
            if back is None:
                continue
            try:
                reconnect(port, back)
            except SynthError as error:
                self.report(f"midi: {error}")
                continue
            self.gone.discard(name)
            self.found[name] = back
            self.report(f"midi: output '{full}' is back" + (f" as '{back}'" if back != full else ""))

    def _send(self, name: str, data) -> None:
        if name not in self.ports:   # opened on first use, in this thread: a JACK client takes a while
            try:
                self.found[name] = find_port(name, "output")
                self.ports[name] = open_port(self.found[name], "output")
            except SynthError as error:
                self.ports[name] = None
                self.report(f"midi: {error}; what goes there is dropped")
        port = self.ports[name]
        if port is None or data is None:
            return
        message = mido.Message.from_bytes(data)
        key = (name, message.channel, message.note) if message.type in ("note_on", "note_off") else None
        if message.type == "note_on" and key in self.sounding:
            # Struck again while it sounds (legato over 1): one key holds one
            # note outside, so the earlier ends here and its own off, still to
            # come, is dropped, or it would cut the new note short.
            port.send(mido.Message("note_off", channel=message.channel, note=message.note, velocity=64))
            self.cut[key] = self.cut.get(key, 0) + 1
        elif message.type == "note_off" and self.cut.get(key):
            self.cut[key] -= 1
            return
        port.send(message)
        if message.type == "note_on":
            self.sounding.add(key)
        elif message.type == "note_off":
            self.sounding.discard(key)


def starting_ports(settings: dict) -> list[str]:
    """The MIDI output ports the engine's first patch or song sends to
    (its ``midiout`` targets and ``--clock-out``): the control process
    opens them while the engine starts, so the first notes are on time."""
    from ..language import Midiout, parse_text
    text = settings.get("song") or settings.get("patch") or ""
    try:
        commands = parse_text(text)
    except SynthError:   # the engine reports it
        return []
    ports = [str(c.port) for c in commands if isinstance(c, Midiout)]
    return ports + ([settings["clock_out"]] if settings.get("clock_out") else [])


class EngineMidi:
    """What the live engine's render thread calls around each block.

    Parameters
    ----------
    clock_out : str or None
        The port the song's clock goes to.
    time_of : callable
        ``time_of(sample)``: the ``time.time()`` instant the engine sample
        is heard, None while that is not known yet (the first blocks are
        rendered before the stream starts).
    post : callable
        ``post(message)`` to the control process's :class:`Sender`.
    """

    def __init__(self, clock_out: str | None, time_of: Callable[[int], float | None],
                 post: Callable[[tuple], None]) -> None:
        self.clock_out = clock_out
        self.time_of = time_of
        self.post = post
        self.sequencer = None
        self.ticks: ClockTicks | None = None
        self.started = False
        self.unplaced: list = []   # (sample, port, bytes) rendered before the device played a block
        self.outbox: list = []
        self._seq = 0
        if clock_out is not None:   # open it while the engine starts
            self._place(0, clock_out, None, 0.0)

    def before_block(self, sequencer) -> None:
        """A new sequencer sends its pattern notes here (and starts the
        clock); a song that stopped stops it."""
        if sequencer is self.sequencer:
            return
        if self.sequencer is not None:
            self.stop()
        self.sequencer = sequencer
        if sequencer is not None:
            sequencer.midi_out = self.note
            for port in sequencer.patch.midi_ports.values():
                self._place(0, port, None, 0.0)
            if self.clock_out is not None:
                self.ticks, self.started = ClockTicks(sequencer), False

    def after_block(self, stop: int) -> None:
        """Queue the clock's ticks up to the engine sample ``stop`` (a
        start goes just before the first tick, at its instant), and post
        the block's messages."""
        if self.unplaced and self.time_of(stop) is not None:
            unplaced, self.unplaced = self.unplaced, []
            for each in unplaced:
                self._at(*each)
        if self.ticks is not None:
            for sample in self.ticks.until(stop):
                if not self.started:
                    for message in self.ticks.start():
                        self._at(sample, self.clock_out, message)
                    self.started = True
                self._at(sample, self.clock_out, [0xF8])
            if self.ticks.over:   # Stop where the song ends, not after its tail
                self._at(self.sequencer.end, self.clock_out, [0xFC])
                self.ticks = None
        if self.outbox:
            self.post(("midi", self.outbox))
            self.outbox = []

    def note(self, port: str, channel: int, start: int, stop: int, note: float, velocity: float) -> None:
        """A pattern's note for a ``midiout``, from its samples (the
        sequencer's ``midi_out``)."""
        key = max(0, min(127, round(note)))
        self._at(start, port, [0x90 | (channel - 1), key, max(1, min(127, round(velocity * 127)))])
        self._at(stop, port, [0x80 | (channel - 1), key, 64])

    def event(self, port: str, channel: int, sample: int, event) -> None:
        """A live note (OSC, a MIDI keyboard) for a ``midiout``, heard at
        ``sample``: it was taken and dropped, while a pattern's left."""
        status = 0x90 if isinstance(event, NoteOn) else 0x80 if isinstance(event, NoteOff) else 0xB0
        if status == 0xB0:   # AllNotesOff: the controller of that name
            data = [status | (channel - 1), 123, 0]
        else:
            data = [status | (channel - 1), max(0, min(127, round(event.note))),
                    max(1, min(127, round(event.velocity * 127))) if status == 0x90 else 64]
        self._at(sample, port, data)

    def stop(self) -> None:
        """The song stopped: what it queued is dropped, its outside notes
        end, and the clock says stop."""
        self.unplaced, self.outbox = [], []
        self.post(("midi-halt",))
        if self.ticks is not None:
            self._place(0, self.clock_out, [0xFC], 0.0)
            self.post(("midi", self.outbox))
            self.outbox = []
        self.sequencer, self.ticks = None, None

    def _at(self, sample: int, port: str, data) -> None:
        when = self.time_of(sample)
        if when is None:
            self.unplaced.append((sample, port, data))
        else:
            self._place(sample, port, data, when)

    def _place(self, sample: int, port: str, data, when: float) -> None:
        self._seq += 1
        self.outbox.append((sample, self._seq, when, port, data))
