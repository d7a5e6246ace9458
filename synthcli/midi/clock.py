"""MIDI clock, both ways: 24 ticks per quarter note.

Out: :class:`ClockTicks` reads the tick times off the song's own tempo map
in exact fractions, as engine samples, block by block; the engine turns
each sample into the wall-clock instant it is heard and sends the tick
then. Every tick is placed from the sample clock, never from the previous
tick, so nothing drifts however long the song plays.

In: :class:`ClockFollower` fits a straight line to the arrival times of
the last 48 ticks (two beats) by least squares. One tick arrives up to a
JACK period (5.3 ms) late or early, a fifth of a tick at 120 BPM; the
fit's slope averages that out to a few hundredths of a BPM, where the
last interval alone would swing by a quarter of the tempo.
"""
from __future__ import annotations

import collections
from fractions import Fraction
from typing import Callable

import numpy as np

#: Ticks per quarter note (the MIDI standard).
PPQN = 24
#: Ticks the tempo estimate is fitted over.
WINDOW = 48
#: Ticks needed before a tempo is estimated at all (one beat).
FIRST = PPQN
#: A new estimate is applied once it differs this much (BPM) from the last
#: one applied: each change makes the song take its new tempo at a bar.
HYSTERESIS = 0.5
#: A gap this many times the usual interval means the clock paused.
PAUSE = 4.0


class ClockTicks:
    """The ticks of a playing song, as engine samples.

    Parameters
    ----------
    sequencer : Sequencer
        Its song's tempo map and its origin (the sample bar 1 starts on)
        place the ticks; a new version of the song taking over at a bar
        keeps the ticks before it.
    """

    def __init__(self, sequencer) -> None:
        self.sequencer = sequencer
        self.bar, self.tick = 0, 0

    def until(self, stop: int) -> list[int]:
        """The samples of the ticks before ``stop`` not yet given."""
        sequencer, found = self.sequencer, []
        while True:
            song = sequencer.song
            beats, unit = next(meter for start, _, meter in reversed(song.changes) if start <= self.bar)
            per_bar = PPQN * beats * 4 // unit
            sample = sequencer.sample(song.bar_start(self.bar)
                                      + song.bar_seconds(self.bar) * Fraction(self.tick, per_bar))
            if sample >= stop:
                return found
            found.append(sample)
            self.tick += 1
            if self.tick == per_bar:
                self.bar, self.tick = self.bar + 1, 0


class ClockFollower:
    """Follows an external MIDI clock: its tempo becomes the song's, its
    start and stop play and stop the song.

    Parameters
    ----------
    control : Control
    log : callable
        ``log(line)`` when the tempo changes and when a command is refused.
    """

    def __init__(self, control, log: Callable[[str], None]) -> None:
        self.control = control
        self.log = log
        self.arrivals: collections.deque = collections.deque(maxlen=WINDOW)
        self.applied: float | None = None
        self.bpm: float | None = None     # the latest estimate

    def __call__(self, batch: list) -> None:
        for arrival, message in batch:
            if message.type == "clock":
                self._tick(arrival)
            elif message.type == "start":
                self.arrivals.clear()
                self._run("play")
            elif message.type == "continue" and not self.control.session.transport.playing:
                self._run("play")
            elif message.type == "stop" and self.control.session.transport.playing:
                self._run("stop")
        if self.bpm is not None and (self.applied is None or abs(self.bpm - self.applied) >= HYSTERESIS):
            if self.control.session.timeline:   # a patch alone has no tempo to follow
                self.applied = round(self.bpm, 1)
                self._run(f"tempo {self.applied:g}")

    def _tick(self, arrival: float) -> None:
        arrivals = self.arrivals
        if len(arrivals) >= 2:
            usual = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            if arrival - arrivals[-1] > PAUSE * usual:
                arrivals.clear()
        arrivals.append(arrival)
        if len(arrivals) >= FIRST:
            self.bpm = 60.0 / (PPQN * tick_period(np.asarray(arrivals)))

    def _run(self, text: str) -> None:
        from ..errors import SynthError
        try:
            shown = self.control.execute(text)
        except SynthError as error:
            self.log(f"midi clock: '{text}' refused: {error}")
            return
        if shown:
            self.log(f"midi clock: {shown}")


def tick_period(arrivals: np.ndarray) -> float:
    """Seconds per tick: the slope of the least-squares line through the
    arrival times against their tick numbers."""
    n = np.arange(len(arrivals), dtype=float)
    n -= n.mean()
    return float(np.dot(n, arrivals - arrivals.mean()) / np.dot(n, n))
