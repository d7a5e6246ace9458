"""The MIDI file player: drives an engine the way a song's sequencer does.

Before each block, every file event that falls in it goes to the engine
with its exact sample time (notes through ``Engine.send``, controllers
through ``Engine.set``); the file is read lazily, so nothing is scheduled
further ahead than the block about to render, and memory stays flat
however long the song is. ``synth render`` and the live engine process
make the same calls at the same blocks, so a file plays the samples it
renders.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from fractions import Fraction

from ..api import NoteOff, NoteOn
from ..sequencer.song import MIN_NOTE, let_go
from .file import (ALL_NOTES_OFF, ALL_SOUND_OFF, DEFAULT_VOLUME, EXPRESSION, PAN, RESET_CONTROLLERS, SUSTAIN,
                   VOLUME, MidiSong)
from .voices import MAX_LEVEL, ChannelMap, bent, channel_gain, level_gain, pan_position


@dataclass
class _State:
    """One channel's performance state."""

    sounding: dict[int, int] = field(default_factory=dict)   # held key -> its note-on sample
    sustained: set[int] = field(default_factory=set)          # released keys the pedal holds
    pedal: bool = False
    volume: int = DEFAULT_VOLUME
    expression: int = 127
    level: float = 1.0     # the channel's level at volume 100, full expression


class MidiDriver:
    """Plays a :class:`MidiSong` on an engine (``Performance(engine,
    driver=...)``); loads the voice patch (the built-in one unless
    ``patch_text`` is given), from bar ``start`` (from 0; see
    :meth:`MidiSong.events`)."""

    def __init__(self, song: MidiSong, engine, patch_text: str | None = None,
                 patch_source: str | None = None, start: int = 0) -> None:
        self.song = song
        self.engine = engine
        self.map = ChannelMap(engine.registry, song.summary, patch_text, patch_source,
                              level_gain(song) if patch_text is None else 1.0)
        engine.load(self.map.patch)
        tick = song.bar_ticks()[start] if start else 0
        self.end = song.end_sample(engine.samplerate, tick)
        self._events = song.events(engine.samplerate, tick)
        self._next = next(self._events, None)
        self._deferred: list[tuple[int, int, int, int, int]] = []   # (time, seq, channel, note, onset)
        self._seq = itertools.count()
        self.min_note = max(1, round(MIN_NOTE * engine.samplerate))
        self.state = [_State(level=ch.base_level) for ch in self.map.channels]
        self.finished = False
        self.released = False   # every note released, and the patch told so (see after_block)
        self.swapped_at = None   # what the live render loop reads of a song's sequencer

    # -- engine.render.Driver ---------------------------------------------------------

    def rebuilds_within(self, samples: int) -> bool:
        """Never: a MIDI file plays its voice patch as loaded (see Sequencer)."""
        return False

    def before_block(self) -> None:
        stop = self.engine.time + self.engine.blocksize
        while True:
            due = self._deferred[0][0] if self._deferred else None
            nxt = self._next[0] if self._next is not None else None
            if due is not None and due < stop and (nxt is None or due <= nxt):
                time, _, channel, note, onset = heapq.heappop(self._deferred)
                if self.state[channel].sounding.get(note) == onset:
                    self._release(channel, note, time)
            elif nxt is not None and nxt < stop:
                self._handle(nxt, self._next[1])
                self._next = next(self._events, None)
            elif self._next is None and not self.finished:
                self._finish(max(self.end, self.engine.time))
            else:
                break

    def after_block(self) -> bool:
        """True once the file is over: past its last event, every note
        released; what sounds on is its tail (Performance waits it out).
        With every note released, a voice patch's module that holds notes
        of its own (an arp's latched chord) lets go too."""
        engine = self.engine
        if not self.finished or self._deferred or engine.time <= self.end:
            return False
        if not self.released:
            self.released = True
            let_go(engine, self.map.patch, engine.time)
        return True

    def release_notes(self) -> None:
        """Release every note now (the transport stopped)."""
        now = self.engine.time
        for channel in range(16):
            self._all_off(channel, now)
        let_go(self.engine, self.map.patch, now)

    # -- events ---------------------------------------------------------------------

    def _handle(self, time: int, message) -> None:
        kind = message.type
        if kind == "set_tempo":   # the voice patch's note lengths (`time=3/16`) keep the file's tempo
            tempo = Fraction(60_000_000, max(1, message.tempo))
            for name, param, value in self.map.patch.retempo(tempo, clamp=True):
                self.engine.set(name, param, value, time=time)
            return
        channel = message.channel
        state = self.state[channel]
        if kind == "note_on" and message.velocity > 0:
            note = message.note
            state.sustained.discard(note)
            state.sounding[note] = time    # a second note-on of a sounding key retriggers it
            self.engine.send(self.map.channels[channel].notes, time, NoteOn(note, message.velocity / 127))
        elif kind in ("note_on", "note_off"):
            onset = state.sounding.get(message.note)
            if onset is None:
                return    # a note-off without its note-on
            if time < onset + self.min_note:
                heapq.heappush(self._deferred, (onset + self.min_note, next(self._seq), channel,
                                                message.note, onset))
            else:
                self._release(channel, message.note, time)
        elif kind == "control_change":
            self._control(channel, message.control, message.value, time)
        elif kind == "program_change":
            target = self.map.channels[channel]
            if target.programs:
                for name, param, value in self.map.program_sets(channel, message.program):
                    self.engine.set(name, param, value, time=time)
                state.level = self.map.program_level(message.program)
                self._level(channel, time)
        elif kind == "pitchwheel":
            target = self.map.channels[channel]
            if target.osc is not None:
                self.engine.set(target.osc, "freq", bent(target.base_freq, message.pitch), time=time)

    def _control(self, channel: int, control: int, value: int, time: int) -> None:
        state, target = self.state[channel], self.map.channels[channel]
        if control == SUSTAIN:
            down = value >= 64
            if state.pedal and not down:
                for note in sorted(state.sustained):
                    self.engine.send(target.notes, time, NoteOff(note))
                state.sustained.clear()
            state.pedal = down
        elif control in (VOLUME, EXPRESSION):
            if control == VOLUME:
                state.volume = value
            else:
                state.expression = value
            self._level(channel, time)
        elif control == PAN and target.pan is not None:
            self.engine.set(target.pan, "pan", pan_position(value), time=time)
        elif control in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            self._all_off(channel, time)
        elif control == RESET_CONTROLLERS:
            self._control(channel, SUSTAIN, 0, time)
            state.expression = 127
            self._level(channel, time)
            if target.osc is not None:
                self.engine.set(target.osc, "freq", target.base_freq, time=time)

    def _level(self, channel: int, time: int) -> None:
        state, target = self.state[channel], self.map.channels[channel]
        if target.vol is None:
            return
        self.engine.set(target.vol, "level", min(MAX_LEVEL, state.level * channel_gain(state.volume, state.expression)),
                        time=time)

    def _release(self, channel: int, note: int, time: int) -> None:
        state = self.state[channel]
        del state.sounding[note]
        if state.pedal:
            state.sustained.add(note)
        else:
            self.engine.send(self.map.channels[channel].notes, time, NoteOff(note))

    def _all_off(self, channel: int, time: int) -> None:
        state = self.state[channel]
        name = self.map.channels[channel].notes
        for note in sorted(set(state.sounding) | state.sustained):
            self.engine.send(name, time, NoteOff(note))
        state.sounding.clear()
        state.sustained.clear()

    def _finish(self, time: int) -> None:
        """The file is over: lift every pedal and let go of every key
        (a note shorter than MIN_NOTE still gets its full MIN_NOTE). A
        note whose end waits for its MIN_NOTE ends then, not at the end of
        the file: one of the last tick's, struck and let go there, was
        held to its end of track."""
        self.finished = True
        waiting = {(channel, note, onset) for _, _, channel, note, onset in self._deferred}
        for channel, state in enumerate(self.state):
            self._control(channel, SUSTAIN, 0, time)
            for note, onset in sorted(state.sounding.items()):
                if (channel, note, onset) in waiting:
                    continue
                if time < onset + self.min_note:
                    heapq.heappush(self._deferred, (onset + self.min_note, next(self._seq), channel, note, onset))
                else:
                    self._release(channel, note, time)


def midi_performance(engine, song: MidiSong | str, patch_text: str | None = None, patch_source: str | None = None,
                     frames: int | None = None, start: int = 0):
    """A Performance that plays a MIDI file (read, or at the path ``song``)
    on ``engine``, from bar ``start`` (from 0)."""
    from ..engine.render import Performance
    driver = MidiDriver(song if isinstance(song, MidiSong) else MidiSong(song), engine, patch_text, patch_source,
                        start)
    return Performance(engine, None, frames, driver=driver)
