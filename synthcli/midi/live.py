"""Live MIDI input: a keyboard or a controller playing the session.

rtmidi calls back on its own thread as each message arrives; the message
and its arrival time go on a queue, and one thread of ours drains the
queue and hands whatever came together to a handler. The keyboard's
handler applies a batch inside one bundle, as the OSC server does, so a
chord reaches the engine as one message and sounds on one block. Notes go
through :meth:`Control.note`, controllers through :meth:`Control.knob`
(the fast ``set``), so the REPL, OSC and the keyboard never step on each
other and ``save`` writes what the knobs left.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from ..api import CONTROL
from ..errors import SynthError
from .file import ALL_NOTES_OFF, ALL_SOUND_OFF, RESET_CONTROLLERS, SUSTAIN
from .ports import input_sources, open_port, reconnect, returned
from .voices import BEND_RANGE

#: Messages handed over together at most (a batch holds the session's lock).
DRAIN = 256
#: Seconds the reading thread waits before it looks whether it should stop,
#: and between its looks whether the port is still there.
POLL = 0.2


class MidiInput:
    """One MIDI input port read by a thread of its own.

    The thread also looks, every :data:`POLL` seconds (on rtmidi's
    backends), whether the port is still there: a keyboard switched off or
    unplugged sends no note-off for the keys it held, and rtmidi neither
    says it went nor reconnects when it comes back. So when the port goes,
    the handler's ``lost()`` (if it has one) lets go of what the keyboard
    held, one line says so, and a port of that name is connected again as
    soon as it is back.

    Parameters
    ----------
    port : str
        The port's full name (see :func:`~synthcli.midi.ports.find_port`).
    handle : callable
        ``handle(batch)`` with a list of ``(arrival, message)``, arrival in
        ``time.monotonic()`` seconds, taken as rtmidi delivers the message.
    log : callable
        ``log(line)`` when the handler fails, and when the port goes and
        comes back.
    """

    def __init__(self, port: str, handle: Callable[[list], None], log: Callable[[str], None]) -> None:
        self.port_name = port
        self.handle = handle
        self.log = log
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._running = False
        self._thread: threading.Thread | None = None
        self._gone = False
        self._refused: str | None = None   # the last reconnection error told, not to repeat it every look

    def open(self) -> None:
        """Open the port; raises SynthError in one line. What arrives waits
        until :meth:`start`. A new JACK client makes the server reorder its
        graph, which costs a running audio client a cycle (an xrun): so
        ``synth play`` opens its ports before the audio starts, and starts
        the thread (which must come after the engine's fork) after."""
        self._port = open_port(self.port_name, "input",
                               callback=lambda message: self._queue.put((time.monotonic(), message)))

    def start(self) -> None:
        """Serve the port (opening it first if need be)."""
        if not hasattr(self, "_port"):
            self.open()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="synthcli-midi-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The thread ends before the port closes: it may be using the
        port's rtmidi client to look for the port, and a closed one crashes."""
        self._running = False
        if self._thread is not None:
            self._thread.join(2)
        self._port.close()

    @property
    def gone(self) -> bool:
        """Its port has disappeared and not come back yet."""
        return self._gone

    def _serve(self) -> None:
        looked = time.monotonic()
        while self._running:
            self._apply(self._take(POLL))
            if self._running and time.monotonic() - looked >= POLL:
                looked = time.monotonic()
                self._look()

    def _take(self, wait: float) -> list:
        batch = []
        try:
            batch.append(self._queue.get(timeout=wait))
            while len(batch) < DRAIN:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _apply(self, batch: list) -> None:
        if not batch:
            return
        try:
            self.handle(batch)
        except Exception as error:   # a fault of ours must not end the input
            self.log(f"midi: internal error, {len(batch)} messages dropped ({type(error).__name__}: {error})")

    def _look(self) -> None:
        names = input_sources(self._port)
        if names is None:   # a backend that cannot tell
            return
        if not self._gone:
            if self.port_name not in names:
                self._gone = True
                self._lost()
            return
        name = returned(self.port_name, names)
        if name is None:
            return
        try:
            reconnect(self._port, name)
        except SynthError as error:
            if str(error) != self._refused:
                self._refused = str(error)
                self.log(f"midi: {error}")
            return
        self.log(f"midi: '{self.port_name}' is back" + (f" as '{name}'" if name != self.port_name else ""))
        self.port_name, self._gone, self._refused = name, False, None

    def _lost(self) -> None:
        """What came before the port went is applied first: a note-on still
        queued would otherwise sound after the release, and hang."""
        while batch := self._take(0):
            self._apply(batch)
        lost = getattr(self.handle, "lost", None)
        if lost is not None:
            try:
                lost()
            except Exception as error:   # as in _apply: the input must go on, to reconnect
                self.log(f"midi: internal error releasing the notes ({type(error).__name__}: {error})")
        self.log(f"midi: '{self.port_name}' disappeared; {'notes released, ' if lost else ''}"
                 f"waiting for it to return")


class Keyboard:
    """Plays a note source from MIDI: notes with their velocity, the
    sustain pedal (CC 64), pitch bend and the ``map cc`` mappings.

    Parameters
    ----------
    control : Control
    keys : str or None
        The note source to play; None plays the patch's first one.
    log : callable
        ``log(line)`` for what is refused (a mapped module removed since,
        say), at most once a second per distinct line.
    """

    def __init__(self, control, keys: str | None, log: Callable[[str], None]) -> None:
        self.control = control
        self.keys = keys
        self.log = log
        self.pedal = False
        self.held: set[int] = set()
        self.sustained: set[int] = set()   # released keys the pedal holds
        self._logged: dict[str, float] = {}

    def __call__(self, batch: list) -> None:
        with self.control.bundle():
            for _, message in batch:
                try:
                    self.message(message)
                except SynthError as error:
                    self._log(f"midi: {message.type} refused: {error}")

    def message(self, message) -> None:
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            self.sustained.discard(message.note)
            self.held.add(message.note)
            self.control.note(message.note, message.velocity / 127, True, self.keys)
        elif kind in ("note_on", "note_off"):
            self.held.discard(message.note)
            if self.pedal:
                self.sustained.add(message.note)
            else:
                self.control.note(message.note, 0.0, False, self.keys)
        elif kind == "control_change":
            self.controller(message.control, message.value)
        elif kind == "pitchwheel":
            self.bend(BEND_RANGE * message.pitch / 8192)

    def controller(self, number: int, value: int) -> None:
        if number == SUSTAIN:
            self.pedal = value >= 64
            if not self.pedal:
                self._release(self.sustained)
                self.sustained.clear()
        elif number in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            self._release(self.sustained | self.held)
            self.sustained.clear()
            self.held.clear()
        elif number == RESET_CONTROLLERS:   # many a keyboard's panic: the pedal lifts, the wheel centres
            self.controller(SUSTAIN, 0)
            self.bend(0.0)
        else:
            mapping = self.control.session.patch.mappings.get(number)
            if mapping is not None:
                self.control.knob(mapping.module, mapping.param, mapping.value(value))

    def bend(self, semitones: float) -> None:
        """Bend the oscillators the note source's pitch drives (a cable
        from its ``voct`` into a module's ``voct`` that has a ``freq``), as
        a MIDI file's bend does ``chNosc.freq``: the engine glides to the
        bent frequency and the patch keeps the unbent one, so ``save``
        never writes a bend; the session bends a ``freq`` set while the
        wheel is held (Session.bends), which a knob turned to the unbent
        value. The pitch is followed through modules that pass a control
        signal on: out of the port named as the one it came in by (an
        arp's ``voct``), or from ``in`` to ``out`` (a slew's glide, a
        quant's scale, a sample and hold)."""
        session = self.control.session
        patch = session.patch
        source = self.keys or next((n for n, i in patch.modules.items() if i.type.cls.accepts_notes), None)
        bent, seen, pitches = set(), {(source, "voct")}, [(source, "voct")]
        while pitches:
            src, port = pitches.pop()
            for cable in patch.cables:
                if (cable.src, cable.src_port) != (src, port):
                    continue
                cls = patch.modules[cable.dst].type.cls
                if cable.dst_port == "voct" and cls.param("freq") is not None and cable.dst not in bent:
                    bent.add(cable.dst)
                    session.bends[cable.dst] = 2.0 ** (semitones / 12)
                    session.sound.set(cable.dst, "freq", session.heard(cable.dst, "freq",
                                                                        patch.modules[cable.dst].params["freq"]))
                onward = cable.dst_port if cls.port(cable.dst_port, "out") is not None else (
                    "out" if cable.dst_port == "in" else None)
                passes = onward is not None and getattr(cls.port(onward, "out"), "kind", None) == CONTROL
                if passes and (cable.dst, onward) not in seen:
                    seen.add((cable.dst, onward))
                    pitches.append((cable.dst, onward))
        for name in set(session.bends) - bent:   # no longer driven by the keys: back to its own pitch
            del session.bends[name]
            if name in patch.modules:
                session.sound.set(name, "freq", patch.modules[name].params["freq"])

    def lost(self) -> None:
        """Let go of everything the keyboard holds, when its port has gone
        (see :class:`MidiInput`): no note-off, pedal lift or centred wheel
        can come from a keyboard that is not there, so its notes would sound
        on, and it comes back with its keys up and its pedal lifted."""
        try:
            with self.control.bundle():
                self._release(self.sustained | self.held)
                self.bend(0.0)
        except SynthError as error:
            self._log(f"midi: release refused: {error}")
        self.held.clear()
        self.sustained.clear()
        self.pedal = False

    def _release(self, notes: set[int]) -> None:
        for note in sorted(notes):
            self.control.note(note, 0.0, False, self.keys)

    def _log(self, line: str) -> None:
        """At most once a second per distinct line (a keyboard played
        against a refusal says it at every key), and the line says so:
        the keys pressed meanwhile are refused too, unsaid."""
        now = time.monotonic()
        if now - self._logged.get(line, -1.0) >= 1.0:
            self._logged[line] = now
            self.log(f"{line} (the same again within a second goes unsaid)")
