"""Note sources: ``keys``, a polyphonic voice allocator driven by note events."""
from __future__ import annotations

import numpy as np

from ..api import CONTROL, MAX_CHANNELS, AllNotesOff, Module, NoteOff, NoteOn, Param, Port


class Keys(Module):
    """Turns timed notes into per-voice pitch, gate and velocity.

    Events are applied on their exact sample, so note onsets do not depend
    on the block size. A note on a voice whose gate is already high (a
    retrigger or a stolen voice) drops the gate for one sample so envelopes
    see a fresh rising edge.
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
        self.pending: list[tuple[int, tuple]] = []
        self.filled = None   # the gate array last filled; another one means a new patch

    def on_event(self, offset: int, event: tuple) -> None:
        self.pending.append((offset, event))

    def _voice_for(self, note: float) -> int:
        """The voice already holding this note, else a free voice (the one
        released longest ago), else the oldest held voice."""
        held = np.flatnonzero(self.note == note)
        if held.size:
            return int(held[0])
        free = np.flatnonzero(self.gate == 0)
        pool = free if free.size else np.arange(self.channels)
        return int(pool[np.argmin(self.age[pool])])

    def process(self, inputs, params, outputs) -> None:
        voct, gate, vel = outputs["voct"], outputs["gate"], outputs["velocity"]
        if not self.pending and self.filled is gate:
            return
        self.filled = None if self.pending else gate  # after events, refill once more
        start = 0
        retriggers = []
        released: dict[int, int] = {}   # voice -> sample it was released on, in this block
        for offset, event in sorted(self.pending, key=lambda item: item[0]):
            offset = min(offset, self.blocksize - 1)
            self._fill(voct, gate, vel, start, offset)
            start = offset
            self.clock[0] += 1
            if isinstance(event, NoteOn) and event.velocity > 0:
                voice = self._voice_for(event.note)
                if self.gate[voice] > 0.5 or released.get(voice) == offset:
                    # The low sample comes out of the previous note where it
                    # can (same block), so the new one starts on time.
                    retriggers.append((voice, offset - 1 if offset > 0 else offset))
                self.note[voice], self.gate[voice] = event.note, 1.0
                self.velocity[voice], self.age[voice] = event.velocity, self.clock[0]
            elif isinstance(event, (NoteOn, NoteOff, AllNotesOff)):
                ending = (self.gate > 0) if isinstance(event, AllNotesOff) else (self.note == event.note) & (self.gate > 0)
                self.gate[ending], self.age[ending] = 0.0, self.clock[0]
                released.update((int(v), offset) for v in np.flatnonzero(ending))
        self.pending.clear()
        self._fill(voct, gate, vel, start, self.blocksize)
        for voice, offset in retriggers:
            gate[voice, offset] = 0.0

    def _fill(self, voct, gate, vel, start, stop) -> None:
        if stop <= start:
            return
        pitch = np.where(np.isnan(self.note), 0.0, (self.note - 60.0) / 12.0)
        voct[:, start:stop] = pitch[:, None]
        gate[:, start:stop] = self.gate[:, None]
        vel[:, start:stop] = self.velocity[:, None]


MODULES = (Keys,)
