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

from ..errors import SynthError
from .driver import ALL_NOTES_OFF, ALL_SOUND_OFF, BEND_RANGE, SUSTAIN
from .ports import open_port

#: Messages handed over together at most (a batch holds the session's lock).
DRAIN = 256
#: Seconds the reading thread waits before it looks whether it should stop.
POLL = 0.2


class MidiInput:
    """One MIDI input port read by a thread of its own.

    Parameters
    ----------
    port : str
        The port's full name (see :func:`~synthcli.midi.ports.find_port`).
    handle : callable
        ``handle(batch)`` with a list of ``(arrival, message)``, arrival in
        ``time.monotonic()`` seconds, taken as rtmidi delivers the message.
    log : callable
        ``log(line)`` when the handler fails.
    """

    def __init__(self, port: str, handle: Callable[[list], None], log: Callable[[str], None]) -> None:
        self.port_name = port
        self.handle = handle
        self.log = log
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._running = False
        self._thread: threading.Thread | None = None

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
        self._running = False
        self._port.close()
        if self._thread is not None:
            self._thread.join(2)

    def _serve(self) -> None:
        while self._running:
            try:
                batch = [self._queue.get(timeout=POLL)]
            except queue.Empty:
                continue
            while len(batch) < DRAIN:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.handle(batch)
            except Exception as error:   # a fault of ours must not end the input
                self.log(f"midi: internal error, {len(batch)} messages dropped ({type(error).__name__}: {error})")


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
        else:
            mapping = self.control.session.patch.mappings.get(number)
            if mapping is not None:
                self.control.knob(mapping.module, mapping.param, mapping.value(value))

    def bend(self, semitones: float) -> None:
        """Bend the oscillators the note source's pitch drives (a cable
        from its ``voct`` into a module's ``voct`` that has a ``freq``), as a
        MIDI file's bend does ``chNosc.freq``: the engine glides to the bent
        frequency and the patch keeps the unbent one, so ``save`` never
        writes a bend."""
        session = self.control.session
        patch = session.patch
        source = self.keys or next((n for n, i in patch.modules.items() if i.type.cls.accepts_notes), None)
        for cable in patch.cables:
            if (cable.src, cable.src_port, cable.dst_port) == (source, "voct", "voct"):
                inst = patch.modules[cable.dst]
                if inst.type.cls.param("freq") is not None:
                    session.sound.set(cable.dst, "freq", inst.params["freq"] * 2.0 ** (semitones / 12))

    def _release(self, notes: set[int]) -> None:
        for note in sorted(notes):
            self.control.note(note, 0.0, False, self.keys)

    def _log(self, line: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(line, -1.0) >= 1.0:
            self._logged[line] = now
            self.log(line)
