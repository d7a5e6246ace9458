"""MIDI clock, both ways: 24 ticks per quarter note.

Out: :class:`ClockTicks` reads the tick times off the song's own tempo map
in exact fractions, as engine samples, block by block; the engine turns
each sample into the wall-clock instant it is heard and sends the tick
then. Every tick is placed from the sample clock, never from the previous
tick, so nothing drifts however long the song plays.

In: :class:`ClockFollower` fits a straight line by least squares to the
arrival times of the ticks. One tick arrives up to a JACK period (5.3 ms)
late, a third of a tick at 150 BPM, so no single interval can be trusted;
the fit over the last 48 ticks (two beats) tells within a few tenths of a
BPM whether the tempo changed, and while it has not, the fit over every
tick since (up to 16 beats) refines the tempo to a few hundredths, each
refinement applied when the ticks behind it have doubled.
"""
from __future__ import annotations

import collections
from fractions import Fraction
from typing import Callable

import numpy as np

#: Ticks per quarter note (the MIDI standard).
PPQN = 24
#: Ticks the fit that notices a change of tempo looks at.
WINDOW = 48
#: Ticks the refining fit looks at, at most (16 beats).
LONG = 16 * PPQN
#: Ticks needed before a tempo is estimated at all (one beat).
FIRST = PPQN
#: BPM by which the last WINDOW ticks must differ from the tempo applied
#: to count as a new tempo (the fit's own noise is a few tenths), and at
#: least four of the fit's standard errors.
CHANGE = 1.0
#: A refinement smaller than this (BPM) is not worth a new tempo map.
REFINE = 0.02
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
        self.arrivals: collections.deque = collections.deque(maxlen=LONG)   # since the tempo last changed
        self.applied: float | None = None
        self.fitted = 0        # ticks behind the tempo applied

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
        bpm = self.estimate()
        if bpm is not None and self.control.session.timeline:   # a patch alone has no tempo to follow
            self.applied, self.fitted = bpm, len(self.arrivals)
            self._run(f"tempo {bpm:g}")
            self.log(f"midi clock: tempo {bpm:g}")

    def estimate(self) -> float | None:
        """A tempo worth applying (rounded to 0.01 BPM), or None."""
        arrivals = self.arrivals
        if len(arrivals) < FIRST:
            return None
        times = np.asarray(arrivals)
        recent, spread = fit(times[-WINDOW:])
        bpm = 60.0 / (PPQN * recent)
        if self.applied is not None and abs(bpm - self.applied) >= max(CHANGE, 4 * bpm * spread / recent):
            for _ in range(len(arrivals) - WINDOW):   # a new tempo: what came before it is no guide
                arrivals.popleft()
            return round(bpm, 2)
        if self.applied is not None and len(arrivals) < min(2 * self.fitted, LONG):
            return None
        refined = round(60.0 / (PPQN * fit(times)[0]), 2)
        return refined if self.applied is None or abs(refined - self.applied) >= REFINE else None

    def _tick(self, arrival: float) -> None:
        arrivals = self.arrivals
        if len(arrivals) >= 2:
            usual = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            if arrival - arrivals[-1] > PAUSE * usual:
                arrivals.clear()
        arrivals.append(arrival)

    def _run(self, text: str) -> None:
        from ..errors import SynthError
        try:
            shown = self.control.execute(text)
        except SynthError as error:
            self.log(f"midi clock: '{text}' refused: {error}")
            return
        if shown:
            self.log(f"midi clock: {shown}")


def fit(arrivals: np.ndarray) -> tuple[float, float]:
    """Seconds per tick, and its standard error: the slope of the
    least-squares line through the arrival times against the tick numbers.
    The error grows with the jitter, so a noisy clock needs a bigger
    difference before it counts as a change of tempo."""
    n = np.arange(len(arrivals), dtype=float)
    n -= n.mean()
    spread = np.dot(n, n)
    slope = float(np.dot(n, arrivals - arrivals.mean()) / spread)
    residuals = arrivals - arrivals.mean() - slope * n
    return slope, float(np.sqrt(np.dot(residuals, residuals) / max(1, len(arrivals) - 2) / spread))
