"""Note sources: ``keys``, a polyphonic voice allocator driven by note events."""
from __future__ import annotations

import math
from operator import itemgetter

import numpy as np

from ..api import CONTROL, MAX_CHANNELS, AllNotesOff, Module, NoteOff, NoteOn, Param, Port
from ..engine.jit import helper, kernel


class Keys(Module):
    """Turns timed notes into per-voice pitch, gate and velocity.

    Events are applied on their exact sample, so note onsets do not depend
    on the block size. A note on a voice whose gate is already high (a
    retrigger or a stolen voice) drops the gate for one sample so envelopes
    see a fresh rising edge: the sample before the note, or, on a block's
    first sample (the one before has been sent), the note's own first.
    """

    type_name = "keys"
    description = "Polyphonic note source: timed notes to voct, gate and velocity cables"
    outputs = (
        Port("voct", CONTROL, "pitch of each voice, volts/octave (0 = C4 = MIDI 60)"),
        Port("gate", CONTROL, "1 while a voice's key is held"),
        Port("velocity", CONTROL, "velocity of each voice's last note, 0..1"),
    )
    params = (
        Param("voices", 8, 1, MAX_CHANNELS, "", integer=True, structural=True,
              doc="number of voices (the channel count of every output)"),
    )
    state_fields = ("note", "gate", "velocity", "age", "clock")
    accepts_notes = True

    @classmethod
    def channel_count(cls, params, inputs):
        return int(params["voices"])

    def setup(self) -> None:
        n = self.channels
        self.note = np.full(n, np.nan)
        self.gate = np.zeros(n)
        self.velocity = np.zeros(n)
        self.age = np.zeros(n)
        self.clock = np.zeros(1)
        self.pending: list[tuple[int, int, float, float]] = []
        self.filled = None   # the gate array last filled; another one means a new patch
        self._grow(4 * n)

    def _grow(self, events: int) -> None:
        self._events = np.zeros((events, EVENT_FIELDS))
        self._scratch = np.zeros((events + self.channels, 2), dtype=np.int64)

    def on_event(self, offset: int, event: tuple) -> None:
        if isinstance(event, NoteOn):
            self.pending.append((offset, ON, event.note, event.velocity))
        elif isinstance(event, NoteOff):
            self.pending.append((offset, OFF, event.note, 0.0))
        else:
            self.pending.append((offset, ALL_OFF if isinstance(event, AllNotesOff) else OTHER, np.nan, 0.0))

    def process(self, inputs, params, outputs) -> None:
        voct, gate, vel = outputs["voct"], outputs["gate"], outputs["velocity"]
        pending = self.pending
        if not pending and self.filled is gate:
            return
        self.filled = None if pending else gate  # after events, refill once more
        count = len(pending)
        if count > len(self._events):
            self._grow(2 * count)
        if count:
            pending.sort(key=itemgetter(0))   # stable: events of one sample keep their order
            self._events[:count] = pending
            pending.clear()
        _keys_kernel(self._events, count, self.note, self.gate, self.velocity, self.age, self.clock,
                     self._scratch, voct, gate, vel)


#: Columns of the event table the kernel reads: sample offset, kind, note, velocity.
EVENT_FIELDS = 4
#: Event kinds: a note on (at velocity 0, a note off), a note off, all notes off, anything else.
ON, OFF, ALL_OFF, OTHER = 0, 1, 2, 3


@helper
def _fill(note, gate, velocity, voct, gate_out, vel_out, start, stop):
    for c in range(voct.shape[0]):
        pitch = 0.0 if math.isnan(note[c]) else (note[c] - 60.0) / 12.0
        for i in range(start, stop):
            voct[c, i] = pitch
            gate_out[c, i] = gate[c]
            vel_out[c, i] = velocity[c]


@helper
def _voice_for(note, gate, age, wanted):
    """The voice already holding this note, else a free voice (the one
    released longest ago), else the oldest held voice; the first of equals."""
    channels = note.shape[0]
    for c in range(channels):
        if note[c] == wanted:
            return c
    best = -1
    for c in range(channels):
        if gate[c] == 0.0 and (best < 0 or age[c] < age[best]):
            best = c
    if best >= 0:
        return best
    best = 0
    for c in range(1, channels):
        if age[c] < age[best]:
            best = c
    return best


@kernel
def _keys_kernel(events, count, note, gate, velocity, age, clock, scratch, voct, gate_out, vel_out):
    """Play a block's events in order, each on its sample: the outputs hold
    each voice's state up to the next event. In Python with numpy, a chord
    of 16 notes on and off cost about 0.4 ms, a block and more at 64
    samples when four such chords start together.

    ``scratch`` holds the retriggered voices and where their gates dip
    (rows 0..), and the sample each voice was released on (from row
    ``len(events)``, -1 if not in this block)."""
    channels, n = voct.shape
    released = scratch[events.shape[0]:events.shape[0] + channels, 0]
    released[:] = -1
    retriggers = 0
    start = 0
    for e in range(count):
        offset = min(int(events[e, 0]), n - 1)
        _fill(note, gate, velocity, voct, gate_out, vel_out, start, offset)
        start = offset
        clock[0] += 1.0
        kind = int(events[e, 1])
        wanted = events[e, 2]
        if kind == ON and events[e, 3] > 0.0:
            voice = _voice_for(note, gate, age, wanted)
            if gate[voice] > 0.5 or released[voice] == offset:
                # The low sample comes out of the previous note where it
                # can (same block), so the new one starts on time.
                scratch[retriggers, 0] = voice
                scratch[retriggers, 1] = offset - 1 if offset > 0 else offset
                retriggers += 1
            note[voice] = wanted
            gate[voice] = 1.0
            velocity[voice] = events[e, 3]
            age[voice] = clock[0]
        elif kind != OTHER:
            for c in range(channels):
                if gate[c] > 0.0 and (kind == ALL_OFF or note[c] == wanted):
                    gate[c] = 0.0
                    age[c] = clock[0]
                    released[c] = offset
    _fill(note, gate, velocity, voct, gate_out, vel_out, start, n)
    for r in range(retriggers):
        gate_out[scratch[r, 0], scratch[r, 1]] = 0.0


MODULES = (Keys,)
