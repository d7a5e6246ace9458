"""A song played on a beat clock shared with other machines (Ableton Link).

The plain :class:`~synthcli.sequencer.song.Sequencer` turns the song's own
tempo map into samples; :class:`LinkedSequencer` places the same bars on
the session's beat line instead (``synthcli.link.Timeline``), so tempo and
phase follow the session:

* bar 1 starts on the next quantum boundary the session agrees on, and a
  song's place counts in quarter notes from there, whatever the tempo;
* a pattern's notes are sent to the engine one block at a time, with the
  sample computed when that block renders, so a tempo change made on
  another machine bends the notes still to come;
* a ``tempo`` of the song (at a bar, in a new version of the file under
  ``--watch``, or typed in the REPL) becomes the session's tempo, for
  every peer;
* when the session stops (start/stop sync) the patterns stop and the notes
  are released; when it starts again, the song starts from bar 1 on the
  next boundary.

``synth render`` never comes here: offline, the song's own tempo rules.
"""
from __future__ import annotations

import heapq
import itertools
from fractions import Fraction

from ..language import Tempo
from .song import Sequencer, Song, note_events, swung


class LinkedSequencer(Sequencer):
    """A sequencer whose first bar starts on the next quantum boundary of
    a Link timeline.

    Parameters
    ----------
    song, engine, endless
        As for :class:`~synthcli.sequencer.song.Sequencer`.
    timeline : synthcli.link.Timeline
    start : int
        The bar (from 0) it starts at, as for the Sequencer.
    """

    def __init__(self, song: Song, engine, endless: bool, timeline, start: int = 0) -> None:
        super().__init__(song, engine, endless, start=start)
        self._follow(timeline, start)

    #: The session's tempo may move this much (a fraction of it) before the
    #: values set as note lengths follow it.
    TEMPO_STEP = 1e-6

    def _follow(self, timeline, bar: int) -> None:
        self.timeline = timeline
        self.start = self._first_beat(timeline, bar)
        self.queue: list = []                 # (quarters, n, bar, voice, event) not yet sent
        self._order = itertools.count()
        self.started = False                  # the session has said it plays since we asked it to
        self.halted = False                   # the session stopped: patterns wait for it to start
        self.heard_tempo: float | None = None   # the session's tempo at the last block
        # The note length each parameter pattern last set, which a change of
        # the session's tempo sets again, as it does a `set` of one.
        self.held: dict[tuple[str, str], tuple[object, Fraction]] = {}

    def _first_beat(self, timeline, bar: int) -> float:
        """The beat of ``timeline`` the song's start falls on: ``bar`` on
        the next quantum boundary, and the session told we play."""
        now = self.engine.time
        timeline.session.set_playing(True)
        return timeline.next_boundary(now, now) - float(self.song.quarters_at(bar))

    @classmethod
    def take_over(cls, old: Sequencer, timeline) -> "LinkedSequencer":
        """Link switched on while a song plays: it goes on from the bar it
        is at, which starts on the session's next quantum boundary."""
        new = cls.__new__(cls)
        new.__dict__.update(old.__dict__)
        new._follow(timeline, old.bar)
        return new

    def hand_back(self) -> Sequencer:
        """Link switched off: the song goes on at the tempo the session had,
        by its own tempo map from the next bar on."""
        stop = self.engine.time + self.engine.blocksize
        self._dispatch(max(stop, self.bar_sample(self.bar)))   # this bar's notes, on the beat they had
        old = Sequencer.__new__(Sequencer)
        old.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k not in ("timeline", "start", "queue", "_order", "started", "halted")})
        old.origin = self.bar_sample(self.bar) - round(self.song.bar_start(self.bar) * Fraction(self.engine.samplerate))
        for name, param, value in old.patch.retempo(self.song.tempo_at(self.bar), clamp=True):
            self.engine.set(name, param, value, time=old.bar_sample(self.bar))
        return old

    # -- time -------------------------------------------------------------------------

    def bar_sample(self, bar: int, fraction: Fraction = Fraction(0)) -> int:
        return self.timeline.sample_at(self.start + float(self.song.quarters_at(bar, fraction)), self.engine.time)

    # -- playing ------------------------------------------------------------------------

    def before_block(self) -> None:
        reading = self.timeline.session.reading
        if reading.playing:
            self.started = True
            if self.halted:   # the session started again: from bar 1, on the next boundary
                self.halted = False
                self.patch, self.voices = self.song.patch.copy(), dict(self.song.voices)
                self._keep_in(self.patch)
                self.engine.load(self.patch)
                self.bar = 0
                self.released = False
                self._follow(self.timeline, 0)
                self.started = True
        elif self.started and not self.halted:   # stopped by a peer
            self.halted = True
            self.queue.clear()
            self.release_notes()
        if self.halted:
            return
        heard = self.heard_tempo
        if heard is None or abs(reading.tempo - heard) > self.TEMPO_STEP * heard:   # not every last bit of a float
            self._follow_tempo(reading.tempo)
        super().before_block()
        self._dispatch(self.engine.time + self.engine.blocksize)

    def _follow_tempo(self, tempo: float) -> None:
        """Values set as note lengths follow the session's tempo from this
        block. Only a change heard from the session counts: the song's own
        tempo change is followed at its bar (Sequencer._run), a block or
        more before the session reports it back, and following the old
        value meanwhile would make a delay's time jump there and back."""
        self.heard_tempo = tempo
        for name, param, value in self.patch.retempo(Fraction(tempo), clamp=True):
            self.engine.set(name, param, value, time=self.engine.time)
        for (name, param), (voice, whole) in self.held.items():
            if self.voices.get((name, param)) == voice:   # still playing: a new version of the song may have ended it
                self.engine.set(name, param, voice.length_value(self.patch, whole, Fraction(tempo)),
                                time=self.engine.time)

    def _swap(self) -> None:
        """A new version of the song (a save under --watch, a REPL edit):
        if it changed the tempo of this bar, that is the session's now."""
        before = self.song.tempo_at(self.bar)
        super()._swap()
        after = self.song.tempo_at(self.bar)
        if after != before:
            self._share_tempo(after)
        else:   # its patch keeps the song's time; the session's may differ
            self.heard_tempo = None

    def _run(self, command) -> None:
        if isinstance(command, Tempo):
            self._share_tempo(command.bpm)
        super()._run(command)

    def _share_tempo(self, bpm: Fraction) -> None:
        """The song's own tempo change: everybody's."""
        self.timeline.session.set_tempo(float(bpm))

    def _missed(self, start: int, where: float) -> bool:
        """Whether an event due at ``start`` (beat ``where``) is past playing:
        the session's beat jumped past it (we joined, or the quantum changed)."""
        return start < self.engine.time - self.engine.blocksize

    def _schedule(self, bar: int) -> None:
        """Queue the bar's events; :meth:`_dispatch` sends each as its block comes."""
        self.ahead = [sent for sent in self.ahead if sent[0] >= self.engine.time]
        for voice in self.voices.values():
            pair = voice.swing_pair(self.song.bar_quarters(bar))
            for event in voice.pattern.events(bar):
                at = event.start if pair is None else swung(event.start, voice.swing, pair)
                where = float(self.song.quarters_at(bar, at))
                heapq.heappush(self.queue, (where, next(self._order), bar, voice, event))

    def _dispatch(self, stop: int) -> None:
        """Send every queued event that starts before sample ``stop``."""
        engine = self.engine
        outside = self._outside()
        while self.queue:
            where, _, bar, voice, event = self.queue[0]
            start = self.timeline.sample_at(self.start + where, engine.time)
            if start >= stop:
                return
            heapq.heappop(self.queue)
            if self._missed(start, where):
                continue
            # A late one is due now, not before what was sent for now: the
            # release of every note at a restart would end it on this block.
            start = max(start, engine.time)
            if voice.param is not None:
                value = event.value
                self.held.pop((voice.module, voice.param), None)
                if event.length is not None:   # at the session's tempo, as it is heard
                    tempo = self.song.tempo_at(bar) if self.heard_tempo is None else Fraction(self.heard_tempo)
                    value = voice.length_value(self.patch, event.length, tempo)
                    self.held[(voice.module, voice.param)] = (voice, event.length)
                self._keep(start, engine.set(voice.module, voice.param, value, time=start))
                continue
            end = event.start + event.duration * voice.legato
            pair = voice.swing_pair(self.song.bar_quarters(bar))
            end = max(start + 1, self.bar_sample(bar, end if pair is None else swung(end, voice.swing, pair)))
            if outside is not None and outside(voice, start, end, event.value):
                continue
            on, off = note_events(event.value, voice.velocity)
            self._keep(start, engine.send(voice.module, start, on))
            self._keep(end, engine.send(voice.module, end, off))

