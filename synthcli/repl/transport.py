"""Where the song is, for the toolbar: bar and beat from the time since
``play`` and the song's own tempo map.

The engine does not report its bar, and asking it four times a second
would cost a round trip for a number the song's tempo map already gives
exactly; only the few milliseconds of output latency are not counted.
"""
from __future__ import annotations

import math
from fractions import Fraction


class Transport:
    def __init__(self) -> None:
        # (first bar, wall-clock time it started, song) for each tempo map
        # in force since play; a new version of the song takes over at a bar.
        self.segments: list[tuple[int, float, object]] = []

    @property
    def playing(self) -> bool:
        return bool(self.segments)

    def play(self, song, now: float, start: int = 0) -> None:
        """The song started at ``now`` from bar ``start`` (from 0)."""
        self.segments = [(start, now, song)]

    def stop(self) -> None:
        self.segments = []

    def replace(self, song, now: float) -> None:
        """The new version of the song takes over when the next bar starts."""
        if not self.segments:
            return
        bar = self.position(now)[0]   # counted from 1: the index of the next bar
        start = self._bar_time(bar)
        self.segments = [s for s in self.segments if s[0] < bar] + [(bar, start, song)]

    def _bar_time(self, bar: int) -> float:
        first, started, song = next(s for s in reversed(self.segments) if s[0] <= bar)
        return started + float(song.bar_start(bar) - song.bar_start(first))

    def song_at(self, now: float):
        return next((s[2] for s in reversed(self.segments) if s[1] <= now), self.segments[0][2])

    def position(self, now: float) -> tuple[int, int]:
        """(bar, beat), both counted from 1."""
        first, started, song = next((s for s in reversed(self.segments) if s[1] <= now), self.segments[0])
        seconds = song.bar_start(first) + Fraction(max(0.0, now - started))
        bar = first
        while song.bar_start(bar + 1) <= seconds:
            bar += 1
        beats = song.meter_at(bar)[0]
        into = (seconds - song.bar_start(bar)) / song.bar_seconds(bar)
        return bar + 1, min(beats, math.floor(into * beats) + 1)

    def tempo(self, now: float) -> tuple[Fraction, tuple[int, int]]:
        """Tempo and meter in force now."""
        song, bar = self.song_at(now), self.position(now)[0] - 1
        return song.tempo_at(bar), song.meter_at(bar)
