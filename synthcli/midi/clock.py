"""MIDI clock, both ways: 24 ticks per quarter note.

Out: :class:`ClockTicks` reads the tick times off the song's own tempo map
in exact fractions, as engine samples, block by block; the engine turns
each sample into the wall-clock instant it is heard and sends the tick
then. Every tick is placed from the sample clock, never from the previous
tick, so nothing drifts however long the song plays.

In: :class:`ClockFollower` fits a straight line by least squares to the
arrival times of the ticks. JACK hands a message over at the start of the
period after it was sent, so a tick arrives up to a period (5.3 ms at 256
frames) late, a third of a tick at 150 BPM: no single interval can be
trusted. The fit over the last 48 ticks (two beats) tells whether the
tempo changed; a new tempo is measured afresh from a beat of its own
ticks, as after a start, and while it holds, the fit over every tick since
(up to 16 beats) refines it, each refinement applied when the ticks behind
it have doubled.

How far a fit can be off is not its standard error. Where a tick falls in
its period creeps from tick to tick, so at a tempo whose tick is near a
whole number of periods (234 or 156 BPM at 256 frames and 48 kHz) the
lateness ramps slowly across a period and then jumps back, and a fit that
sees the ramp takes it for a slope, its residuals tiny. What is bounded
is the jump from one tick's lateness to its neighbours': a period and the
sender's jitter. The most it has jumped over the last 64 beats is taken
as the range of the lateness, and a fit over n ticks can be off by at most
about 1.5 / n of that per tick. Only a difference beyond that bound counts
as a new tempo, so a steady clock keeps its tempo instead of flipping
between neighbours; and once 16 beats are behind the tempo, a fit of more
ticks is no finer, so a new fit is applied only when it differs by more
than its bound (at 256 frames, about 0.2% of the tempo at 120 to 150 BPM
and 0.5% at 600).

The tempo alone would leave the song out of phase with the clock: the
song starts at its own tempo, before a beat of ticks has told the clock's,
and a tempo off by 0.2% drifts a hundredth of a beat every five. So
the follower also tells the engine where the clock's beats fall: the same
line through the arrivals, as the time of the latest tick and its beat of
the song (see :mod:`synthcli.sequencer.clocked`), which places every note
on it.
"""
from __future__ import annotations

import collections
from fractions import Fraction
from typing import Callable, NamedTuple

import numpy as np

#: Ticks per quarter note (the MIDI standard).
PPQN = 24
#: Ticks the fit that notices a change of tempo looks at.
WINDOW = 48
#: Ticks the refining fit looks at, at most (16 beats).
LONG = 16 * PPQN
#: Ticks over which how far their lateness jumps is remembered (64 beats).
MEMORY = 4 * LONG
#: Ticks needed before a tempo is estimated at all (one beat).
FIRST = PPQN
#: BPM by which the last WINDOW ticks must differ from the tempo applied
#: to count as a new tempo, and at least the most the jitter of the ticks
#: can move their fit (:func:`fit`).
CHANGE = 1.0
#: A refinement smaller than this (BPM) is not worth a new tempo map.
REFINE = 0.02
#: The tempos a song takes (the `tempo` command's range, in BPM).
SLOWEST, FASTEST = 1.0, 999.0
#: A gap this many times the usual interval, and of at least BREAK seconds,
#: means the clock paused. JACK hands over the ticks of a period together,
#: so a fast clock's ticks come in bursts a period apart (93 ms at most:
#: 4096 frames at 44.1 kHz).
PAUSE, BREAK = 4.0, 0.1
#: Ticks a line through the arrivals needs before its slope is a guide, and
#: the most (a fraction of the tempo) the jitter of the ticks may move it
#: then: fewer ticks, or ticks that come in bursts (JACK at 4096 frames
#: hands over 93 ms of them at once), only place the beat, at the tempo the
#: engine had. With a beat of them, a line goes to the engine every
#: LINE_EVERY ticks (a sixteenth).
SLOPED, SLOPE_DOUBT, LINE_EVERY = 6, 0.05, 6


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
        self.bar, self.tick = sequencer.bar, 0   # a song started at a bar (--from) ticks from there

    def start(self) -> list[list[int]]:
        """What starts the outside gear: Start at the song's first bar;
        elsewhere its Song Position Pointer (16ths from the start, at most
        16383) and Continue, so a drum machine plays the same bar."""
        sixteenths = int(self.sequencer.song.quarters_at(self.bar) * 4)
        if sixteenths == 0:
            return [[0xFA]]
        sixteenths = min(sixteenths, 0x3FFF)
        return [[0xF2, sixteenths & 0x7F, sixteenths >> 7], [0xFB]]

    @property
    def over(self) -> bool:
        """Whether every tick of the song is given: none for its release
        tail, where outside gear would play on into a bar it does not have."""
        length = self.sequencer.length
        return length is not None and self.bar >= length

    def until(self, stop: int) -> list[int]:
        """The samples of the ticks before ``stop`` not yet given."""
        sequencer, found = self.sequencer, []
        while not self.over:
            song = sequencer.song
            beats, unit = next(meter for start, _, meter in reversed(song.changes) if start <= self.bar)
            per_bar = PPQN * beats * 4 // unit
            sample = sequencer.bar_sample(self.bar, Fraction(self.tick, per_bar))   # on Link's or a clock's beats too
            if sample >= stop:
                return found
            found.append(sample)
            self.tick += 1
            if self.tick == per_bar:
                self.bar, self.tick = self.bar + 1, 0
        return found


class ClockFollower:
    """Follows an external MIDI clock: its tempo becomes the song's, its
    start and stop play and stop the song, and a continue plays it from
    where the clock's Song Position Pointer (or its last stop) left it.

    The song starts on bars only. A position inside a bar waits for the
    clock to reach the next bar's tick, so the song comes in on time with
    the gear that sent it, a bar later, rather than at once out of time.

    Parameters
    ----------
    control : Control
    log : callable
        ``log(line)`` when the tempo changes and when a command is refused;
        a refused tempo (a clock faster than a song may be) only when the
        one before it was applied, so a clock out of range is one line,
        and the tempo applied when it comes back another.
    """

    def __init__(self, control, log: Callable[[str], None]) -> None:
        self.control = control
        self.log = log
        self.arrivals: collections.deque = collections.deque(maxlen=LONG)   # since the tempo last changed
        self.applied: float | None = None   # the clock's tempo last taken, even if the song refused it
        self.fitted = 0        # ticks behind it
        # How far the lateness of each tick jumped from its neighbours' (s):
        # the connection's, so kept across a change of tempo.
        self.jumps: collections.deque = collections.deque(maxlen=MEMORY)
        self.refused = False   # the song refused it
        # The song's place in ticks from its start, of the next tick to come
        # (MIDI's Song Position Pointer counts sixteenths, 6 ticks each).
        self.position = 0
        self.running = False   # ticks move the position: between a start or continue and a stop
        self.waiting: tuple[int, int] | None = None   # a continue inside a bar: (tick, bar) it plays from
        self.unlined = 0       # ticks since the engine was last told where the beats fall
        self.latest = 0.0      # when the latest tick arrived

    def __call__(self, batch: list) -> None:
        ticks = 0
        for arrival, message in batch:
            if message.type == "clock":
                self._tick(arrival)
                self._advance()
                ticks += 1
            elif message.type == "start":
                self.arrivals.clear()
                self.position, self.running, self.waiting = 0, True, None
                self._unplaced()
                self._run("play")
            elif message.type == "songpos":
                self.position, self.waiting = message.pos * PPQN // 4, None
                self._unplaced()
            elif message.type == "continue" and not self.running:   # a song playing since launch joins it too
                self.running = True
                self._unplaced()
                self._resume()
            elif message.type == "stop":
                self.running, self.waiting = False, None
                self._unplaced()
                if self.control.session.transport.playing:
                    self._run("stop")
        bpm = self.estimate()
        if bpm is not None and self.control.session.timeline:   # a patch alone has no tempo to follow
            self._tempo(bpm)
        if ticks and self.running:
            self._place(ticks)

    def estimate(self) -> float | None:
        """A tempo worth applying (rounded to 0.01 BPM), or None. A fit that
        cannot tell whether the clock is beyond a limit of a song's tempos
        waits for more ticks, and with 16 beats of them takes the limit: a
        clock at 999 BPM plays at 999, and one well beyond is refused once."""
        arrivals = self.arrivals
        if len(arrivals) < FIRST:
            return None
        times = np.asarray(arrivals)
        band = max(self.jumps)
        slope, reach, _ = fit(times)
        recent, recent_reach, _ = fit(times[-WINDOW:])
        bpm, doubt = tempo(recent, band * recent_reach)
        if self.applied is not None and abs(bpm - self.applied) >= max(CHANGE, doubt):
            # A new tempo, which the ticks so far mix with the old one: it is
            # measured afresh, as after a start.
            arrivals.clear()
            self.applied = None
            return None
        if self.applied is not None and len(arrivals) < min(2 * self.fitted, LONG):
            return None
        bpm, doubt = tempo(slope, band * reach)
        refined = round(bpm, 2)
        nearest = min(max(refined, SLOWEST), FASTEST)
        if 0 < abs(refined - nearest) <= doubt:   # the fit cannot tell it from a limit of a song's tempos
            if len(arrivals) < LONG:
                return None       # a fit of more ticks will tell
            refined = nearest     # none will: the limit it may be
        if self.applied is None or len(arrivals) >= 2 * self.fitted:   # twice the ticks: a finer tempo
            if self.applied is not None and abs(refined - self.applied) < REFINE:
                self.fitted = len(arrivals)   # which the tempo applied already is
                return None
            return refined
        if abs(refined - self.applied) < max(REFINE, doubt):   # no finer: only a change beyond its bound counts
            return None
        self._changed()   # too small a change for the last WINDOW ticks to tell, yet one
        return refined

    def _resume(self) -> None:
        """Play from the clock's position: at once on a bar's first tick,
        else from the next bar when its tick comes."""
        from ..sequencer.song import Song
        session = self.control.session
        if not session.timeline:
            return self._run("play")   # refused as `play` refuses it: nothing to play
        song, bar = Song(session.registry, session.song_text), 0
        while song.quarters_at(bar) * PPQN < self.position:
            bar += 1
        if song.length is not None and bar >= song.length and self.position > 0:
            return self.log(f"midi clock: continue at beat {self.position / PPQN + 1:g}, past the song's end "
                            f"(its {song.length} bar{'s' * (song.length != 1)}): nothing to play from there")
        ticks = int(song.quarters_at(bar) * PPQN)
        if ticks == self.position:
            return self._run(f"play {bar + 1}")
        self.waiting = (ticks, bar + 1)
        self.log(f"midi clock: continue at beat {self.position / PPQN + 1:g} of the song, inside bar {bar}: "
                 f"playing from bar {bar + 1} when the clock reaches it")

    def _advance(self) -> None:
        if not self.running:
            return
        if self.waiting is not None and self.waiting[0] == self.position:
            self._run(f"play {self.waiting[1]}")
            self.waiting = None
        self.position += 1

    def _place(self, ticks: int) -> None:
        """Tell the engine where the clock's beats fall: the line through
        the arrivals at the latest tick, whose beat of the song is the one
        before ``position``. Before it has SLOPED ticks over BREAK seconds
        (ticks a burst delivers together say nothing of the tempo), or
        while their jitter could move its tempo by more than SLOPE_DOUBT,
        the latest tick places the beat and the engine keeps its tempo."""
        arrivals = self.arrivals
        self.unlined += ticks
        if len(arrivals) >= FIRST and self.unlined < LINE_EVERY:
            return
        self.unlined = 0
        beat = (self.position - 1) / PPQN
        if len(arrivals) >= SLOPED and arrivals[-1] - arrivals[0] >= BREAK:   # (not one burst of JACK's)
            line = fit(np.asarray(arrivals))
            bpm, doubt = tempo(line.slope, max(self.jumps) * line.reach)
            if SLOWEST <= bpm <= FASTEST and doubt <= SLOPE_DOUBT * bpm:
                return self.control.session.sound.beats((line.last, beat, bpm))
        self.control.session.sound.beats((self.latest, beat, None))   # (no arrivals: a new tempo cleared them)

    def _unplaced(self) -> None:
        """The clock's beats no longer fall where the engine was told: it
        (re)starts, or jumps to another place in the song."""
        self.unlined = LINE_EVERY   # the next tick tells where they fall now
        self.control.session.sound.beats(None)

    def _changed(self) -> None:
        """A new tempo: the ticks before the last WINDOW are no guide to it."""
        for _ in range(len(self.arrivals) - WINDOW):
            self.arrivals.popleft()

    def _tick(self, arrival: float) -> None:
        arrivals = self.arrivals
        if len(arrivals) >= 2:
            usual = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            if arrival - arrivals[-1] > max(PAUSE * usual, BREAK):
                arrivals.clear()
            else:
                self.jumps.append(abs(arrival - 2 * arrivals[-1] + arrivals[-2]))
        arrivals.append(arrival)
        self.latest = arrival

    def _tempo(self, bpm: float) -> None:
        """Make ``bpm`` the song's tempo and say so; say a refusal only when
        the tempo before was applied, not once a batch."""
        from ..errors import SynthError
        self.applied, self.fitted = bpm, len(self.arrivals)
        try:
            self.control.execute(f"tempo {bpm:g}")
        except SynthError as refusal:
            if not self.refused:
                self.log(f"midi clock: 'tempo {bpm:g}' refused: {refusal}")
            self.refused = True
            return
        self.refused = False
        self.log(f"midi clock: tempo {bpm:g}")

    def _run(self, text: str) -> None:
        from ..errors import SynthError
        try:
            shown = self.control.execute(text)
        except SynthError as error:
            self.log(f"midi clock: '{text}' refused: {error}")
            return
        if shown:
            self.log(f"midi clock: {shown}")


def tempo(seconds: float, off: float) -> tuple[float, float]:
    """BPM for ``seconds`` per tick, and by how many BPM it is uncertain
    when the seconds are uncertain by ``off``."""
    bpm = 60.0 / (PPQN * seconds)
    return bpm, bpm * off / seconds


class Fit(NamedTuple):
    """The least-squares line through the arrival times against the tick
    numbers."""

    #: Seconds per tick.
    slope: float
    #: The most the slope can be off per second by which the lateness of
    #: the ticks varies, were they late in the worst order (the first half
    #: least, the second most: a jump half way), about 1.5 / n.
    reach: float
    #: The line's time of the latest tick.
    last: float


def fit(arrivals: np.ndarray) -> Fit:
    n = np.arange(len(arrivals), dtype=float)
    n -= n.mean()
    spread = np.dot(n, n)
    mean = arrivals.mean()
    slope = float(np.dot(n, arrivals - mean) / spread)
    return Fit(slope, float(np.abs(n).sum() / (2 * spread)), float(mean + slope * n[-1]))
