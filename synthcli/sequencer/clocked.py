"""A song played on the beats of an outside MIDI clock (``--clock-in``).

The clock's tempo alone, applied as the song's `tempo` from the next bar,
left the song out of phase with the gear that sent it: the song starts
at its own tempo, a beat before the clock's is known, and every bar of a
song at 120 BPM came half a second after a clock at 150's; a tempo a fit
leaves 0.2 % off drifts on from there. So the song is placed on the
clock's own beat line instead, exactly as on an Ableton Link session's
(:class:`~synthcli.sequencer.linked.LinkedSequencer`, whose notes are
placed a block at a time from the latest line): the follower
(:class:`synthcli.midi.clock.ClockFollower`) fits a line through the ticks'
arrivals and sends it here every sixteenth, and the Link
:class:`~synthcli.link.Timeline` turns it into samples as it does Link's
readings. A beat of this line is a quarter note of the song from bar 1:
the clock counts from its Start, or from its Song Position Pointer.

The song's `tempo` still follows the clock (the follower sets it): it is
what ``save`` writes and what the toolbar shows.
"""
from __future__ import annotations

import math
from fractions import Fraction

from ..language import Tempo
from ..link import Reading
from .linked import LinkedSequencer


class ClockSession:
    """An outside MIDI clock's beat line, read as a Link
    :class:`~synthcli.link.Timeline` reads a session: the latest line as a
    :class:`~synthcli.link.Reading`, always playing (the follower starts
    and stops the song itself), on a quantum of one beat."""

    def __init__(self) -> None:
        self.reading = Reading(0.0, 0.0, 120.0, 0, True, 1.0)
        # Songs started once the clock has been heard follow it; before, the
        # plain Sequencer plays them, to the sample.
        self.started = False
        self.told = False   # a line from the clock since it last (re)started or jumped

    def follow(self, line: tuple[float, float, float | None] | None) -> None:
        """A new line from the follower (see :meth:`Player.beats`); None
        when the clock's place is not known until its next tick."""
        self.started = True
        if line is None:
            self.told = False
            return
        when, beat, bpm = line
        self.told = True
        self.reading = Reading(when, beat, bpm or self.reading.tempo, 0, True, 1.0)

    def begin(self, beat: float, when: float, bpm: float) -> None:
        """The song is at ``beat`` at ``when``, and plays on at ``bpm`` (it
        starts, or its own tempo changes): there the line is until the clock
        says where its beats fall."""
        if not self.told:
            self.reading = Reading(when, beat, bpm, 0, True, 1.0)


class ClockedSequencer(LinkedSequencer):
    """A sequencer whose bars fall on an outside MIDI clock's beats.

    Parameters
    ----------
    song, engine, endless, start
        As for :class:`~synthcli.sequencer.linked.LinkedSequencer`.
    timeline : synthcli.link.Timeline
        On a :class:`ClockSession`.
    """

    #: Seconds an event may come late and still be played at once. A line
    #: placed from the latest tick alone (the first ticks after a start)
    #: puts a beat where that tick was heard, which the engine has rendered
    #: already, a block or a few ago: a beat is better late by that than
    #: lost. The song's first beat is never lost: the song is made off the
    #: render thread, and its start can reach the engine after the clock's
    #: first ticks.
    LATE = 0.05
    #: Seconds a song started may come after the clock's place and still
    #: start there, its first beat late: the follower's start reaches the
    #: engine 15-20 ms after the clock's tick. A song started later waits
    #: for the clock's next bar.
    JOIN = 0.2
    #: The fitted tempo moves by hundredths of a BPM from line to line; the
    #: values set as note lengths follow it when it has moved by 0.1 %.
    TEMPO_STEP = 1e-3

    def _first_beat(self, timeline, bar: int) -> float:
        """The song's quarter notes are the clock's beats, counted from bar
        1, where the follower starts the song (its Start, or its Song
        Position Pointer's bar): beat 0. A song started while the clock
        runs elsewhere (`play` typed) starts on the clock's next bar
        instead, its bars counted from the one it starts at: on the clock's
        place it would play every bar between in one block, or wait for
        the clock to come round to it. Until the clock has told where its
        beats fall, the song starts now, at its own tempo."""
        now = self.engine.time
        self.first = float(self.song.quarters_at(bar))
        session = timeline.session
        if not session.told:
            session.begin(self.first, timeline.time_of(now, now), float(self.song.tempo_at(bar)))
            return 0.0
        past = timeline.beat_at(now, now) - self.first - self.JOIN * session.reading.tempo / 60.0
        span = float(self.song.bar_quarters(bar))
        return math.ceil(past / span) * span

    def _run(self, command) -> None:
        """A tempo of the song's own, while the clock tells the beats, sets
        nothing: the values set as note lengths follow the clock's tempo
        (LinkedSequencer._follow_tempo), and a delay at 1/8 went to the
        song's 60 BPM while the bars went on at the clock's 120."""
        if isinstance(command, Tempo) and self.timeline.session.told:
            return
        super()._run(command)

    def _share_tempo(self, bpm: Fraction) -> None:
        """A MIDI clock does not listen. While it tells the beats, a new
        version of the song that changes the tempo of this bar (its patch
        made at the song's tempo) has the values set as note lengths follow
        the clock's again; a line it has not told yet (a song started while
        the clock stands) moves to the song's tempo from the bar it starts,
        once the notes before that bar are placed on the old one."""
        if self.timeline.session.told:
            self.heard_tempo = None
            return
        start = self.bar_sample(self.bar)
        self._dispatch(start)
        self.timeline.session.begin(self.start + float(self.song.quarters_at(self.bar)),
                                    self.timeline.time_of(start, self.engine.time), float(bpm))

    def _missed(self, start: int, where: float) -> bool:
        engine = self.engine
        return where > self.first and start < engine.time - round(self.LATE * engine.samplerate)
