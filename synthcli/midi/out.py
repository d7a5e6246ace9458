"""MIDI out of the live engine: the song's clock (``--clock-out``) and
the notes of patterns on ``midiout`` targets.

The render thread knows on which engine sample each tick and note falls,
a few blocks before that sample is heard; the callback must never wait on
a MIDI port. So the render thread only turns samples into wall-clock
instants (:meth:`LiveEngine.time_of`) and queues them, and a helper thread
of the engine process sleeps until each instant and sends. Each message
keeps its own instant from the sample clock, so a late wake-up delays one
message and is not carried into the next.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

import mido

from ..errors import SynthError
from .clock import ClockTicks
from .ports import open_port

CLOCK, NOTE_ON, NOTE_OFF, TRANSPORT = 0, 1, 2, 3


class Sender:
    """Sends timed messages to output ports from a thread of its own.

    Parameters
    ----------
    report : callable
        ``report(line)`` once for each port that cannot be opened.
    """

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.queue: list = []             # (when, seq, kind, port, message)
        self.ports: dict[str, object] = {}
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="synthcli-midi-out", daemon=True)
        self._thread.start()

    def prepare(self, port: str) -> None:
        """Open a port ahead of its first message (in the thread)."""
        if port not in self.ports:
            self.at(0.0, TRANSPORT, port, None)

    def at(self, when: float, kind: int, port: str, message) -> None:
        with self._wake:
            heapq.heappush(self.queue, (when, next(self._order), kind, port, message))
            self._wake.notify()

    def halt(self, port: str | None = None) -> None:
        """The song stopped: ticks and notes not yet due are dropped, but
        the note-offs go at once, so no outside note hangs."""
        with self._wake:
            kept, offs = [], []
            for item in self.queue:
                if port is not None and item[3] != port:
                    kept.append(item)
                elif item[2] == NOTE_OFF:
                    offs.append(item[3:])
            heapq.heapify(kept)
            self.queue = kept
        for each, message in offs:
            self._send(each, message)

    def close(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(2)
        for port in self.ports.values():
            if port is not None:
                port.close()

    def _serve(self) -> None:
        while True:
            with self._wake:
                while self._running and (not self.queue or self.queue[0][0] > time.time()):
                    self._wake.wait(None if not self.queue else self.queue[0][0] - time.time())
                if not self._running:
                    return
                _, _, _, port, message = heapq.heappop(self.queue)
            self._send(port, message)

    def _send(self, name: str, message) -> None:
        if name not in self.ports:   # opened on first use: a JACK client takes some milliseconds
            try:
                self.ports[name] = open_port(name, "output")
            except SynthError as error:
                self.ports[name] = None
                self.report(str(error))
        port = self.ports[name]
        if port is not None and message is not None:
            port.send(message)


class EngineMidi:
    """What the live engine's render thread calls around each block.

    Parameters
    ----------
    clock_out : str or None
        The port the song's clock goes to.
    time_of : callable
        ``time_of(sample)``: the ``time.time()`` instant the engine sample
        is heard.
    report : callable
        ``report(line)`` for the musician (the control process prints it).
    """

    def __init__(self, clock_out: str | None, time_of: Callable[[int], float], report: Callable[[str], None]) -> None:
        self.clock_out = clock_out
        self.time_of = time_of
        self.sender = Sender(report)
        if clock_out is not None:   # now, so a port that is gone stops the start in one line
            self.sender.ports[clock_out] = open_port(clock_out, "output")
        self.sequencer = None
        self.ticks: ClockTicks | None = None

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
                self.sender.prepare(port)
            if self.clock_out is not None:
                self.ticks = ClockTicks(sequencer)
                self.sender.at(self.time_of(sequencer.origin), TRANSPORT, self.clock_out, mido.Message("start"))

    def after_block(self, stop: int) -> None:
        """Queue the clock's ticks up to the engine sample ``stop``."""
        if self.ticks is not None:
            for sample in self.ticks.until(stop):
                self.sender.at(self.time_of(sample), CLOCK, self.clock_out, mido.Message("clock"))

    def note(self, port: str, channel: int, start: int, stop: int, note: float, velocity: float) -> None:
        """A pattern's note for a ``midiout``, from its samples (the
        sequencer's ``midi_out``)."""
        key = max(0, min(127, round(note)))
        self.sender.at(self.time_of(start), NOTE_ON, port,
                       mido.Message("note_on", channel=channel - 1, note=key,
                                    velocity=max(1, min(127, round(velocity * 127)))))
        self.sender.at(self.time_of(stop), NOTE_OFF, port, mido.Message("note_off", channel=channel - 1, note=key))

    def stop(self) -> None:
        self.sender.halt()
        if self.ticks is not None:
            self.sender.at(time.time(), TRANSPORT, self.clock_out, mido.Message("stop"))
        self.sequencer, self.ticks = None, None

    def close(self) -> None:
        self.stop()
        deadline = time.monotonic() + 0.5
        while self.sender.queue and time.monotonic() < deadline:   # the stop and the note-offs go out
            time.sleep(0.01)
        self.sender.close()
