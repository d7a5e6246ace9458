"""Percussion: ``drums``, a synthesized General-MIDI-style drum kit played by notes."""
from __future__ import annotations

import math
from operator import itemgetter

import numpy as np

from ..api import AUDIO, MAX_CHANNELS, AllNotesOff, Module, NoteOn, Param, Port
from ..engine.jit import helper, kernel
from .dsp import random_step

#: The kit's instruments, one voice each; a note retriggers its instrument.
KICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, CRASH = range(6)
TOM_FIRST = 6
#: Tom pitches (Hz) of GM notes 41, 43, 45, 47, 48, 50: low floor to high tom.
TOM_NOTES = (41, 43, 45, 47, 48, 50)
TOM_HZ = (72.0, 86.0, 102.0, 122.0, 145.0, 172.0)
SLOTS = TOM_FIRST + len(TOM_NOTES)
TOM_HZ_ARRAY = np.array(TOM_HZ)

#: General MIDI percussion notes (channel 10) to instruments. Notes the kit
#: has no sound of its own for borrow the nearest kind.
NOTE_SLOTS = {35: KICK, 36: KICK, 37: SNARE, 38: SNARE, 40: SNARE, 39: CLAP,
              42: CLOSED_HAT, 44: CLOSED_HAT, 46: OPEN_HAT,
              49: CRASH, 51: CRASH, 52: CRASH, 53: CRASH, 55: CRASH, 57: CRASH, 59: CRASH}
NOTE_SLOTS.update({note: TOM_FIRST + i for i, note in enumerate(TOM_NOTES)})
#: Any other percussion note (27..87: shakers, bells, congas) plays a closed hat.
OTHER_LOW, OTHER_HIGH = 27, 87

#: Overall gain: a kick at full velocity peaks near this.
KIT_GAIN = 0.6


def slot_for(note: float) -> int:
    """The instrument a note plays, or -1 for none."""
    key = int(round(note))
    if key in NOTE_SLOTS:
        return NOTE_SLOTS[key]
    return CLOSED_HAT if OTHER_LOW <= key <= OTHER_HIGH else -1


@helper(inline="always")
def _decay(seconds, samplerate):
    """Per-sample factor of an exponential decay by 1/e in ``seconds``."""
    return math.exp(-1.0 / (seconds * samplerate))


#: Seconds (to 1/e) over which a drum struck again lets go of the sound it
#: was making: the new hit starts its oscillator afresh, from zero, as the
#: same hit every time, and the old sound fades under it instead of
#: stepping off.
HANDOVER_SECONDS = 0.001


#: What each slot keeps of the hit that struck it: its pitch scale and the
#: per-sample factors of its tone's and its noise's decay.
TUNE, AMP_DECAY, NOISE_DECAY = range(3)
#: Seconds to fall by 1/e at ``decay`` 1: each slot's tone and noise
#: (0 where it has none of that kind, or where it never fades).
AMP_SECONDS = np.array([0.28, 0.07, 0.0, 0.0, 0.0, 0.0] + [0.3] * len(TOM_NOTES))
NOISE_SECONDS = np.array([0.035, 0.13, 0.16, 0.035, 0.3, 1.1] + [0.0] * len(TOM_NOTES))


@helper
def _strike(s, tone, decay, struck, samplerate):
    """Fix slot s's pitch and lengths for the sound a hit starts, from
    ``tone`` and ``decay`` on the hit's sample: a pattern stepping them
    with the hits gives each hit its own, and a ringing drum is not
    retuned under it. A hit's few exponentials are all it costs: read on
    every sample, the two would take ten a sample."""
    stretch = max(decay, 0.05)
    struck[s, TUNE] = max(tone, 0.1)
    if AMP_SECONDS[s] > 0.0:
        struck[s, AMP_DECAY] = _decay(AMP_SECONDS[s] * stretch, samplerate)
    if NOISE_SECONDS[s] > 0.0:
        struck[s, NOISE_DECAY] = _decay(NOISE_SECONDS[s] * stretch, samplerate)


@kernel
def _drums_kernel(trig_at, trig_slot, trig_vel, tone, decay, level, out,
                  age, vel, amp, noise_amp, phase, pitch_env, rng, filt, struck, handover, samplerate):
    """Every instrument's next block, summed to one signal on every channel.

    Instrument s plays on output channel s mod channels. Each slot keeps:
    age in samples (-1: silent), velocity, a tone and a
    noise amplitude, an oscillator phase and pitch envelope, a noise
    generator, two filter states, what its hit struck (see _strike):
    ``tone`` scales pitches, ``decay`` lengths, both as each hit starts,
    and ``handover``: the last sample it made and what of its previous
    hit still fades under this one (HANDOVER_SECONDS)."""
    channels, n = out.shape
    k = 0
    ntrig = trig_at.shape[0]
    kick_pitch = _decay(0.035, samplerate)
    tom_pitch = _decay(0.08, samplerate)
    # One-pole coefficients: hats and crash through a high-pass, the snare
    # and clap noise through a band (low-pass of a high-pass).
    hp_hat = math.exp(-2.0 * math.pi * 7000.0 / samplerate)
    hp_snare = math.exp(-2.0 * math.pi * 1200.0 / samplerate)
    lp_snare = 1.0 - math.exp(-2.0 * math.pi * min(5000.0, 0.45 * samplerate) / samplerate)
    hp_clap = math.exp(-2.0 * math.pi * 900.0 / samplerate)
    lp_clap = 1.0 - math.exp(-2.0 * math.pi * min(2500.0, 0.45 * samplerate) / samplerate)
    hp_crash = math.exp(-2.0 * math.pi * 4000.0 / samplerate)
    burst = int(0.011 * samplerate)
    let_go = _decay(HANDOVER_SECONDS, samplerate)
    for i in range(n):
        while k < ntrig and trig_at[k] <= i:
            s = trig_slot[k]
            age[s] = 0.0
            vel[s] = trig_vel[k]
            amp[s] = 1.0 if AMP_SECONDS[s] > 0.0 else 0.0   # what a slot does not have is silent already,
            noise_amp[s] = 1.0 if NOISE_SECONDS[s] > 0.0 else 0.0   # so that it stops once its sound dies
            pitch_env[s] = 1.0
            phase[s] = 0.0
            handover[s, 1] = handover[s, 0]
            _strike(s, tone[0, i], decay[0, i], struck, samplerate)
            if s == CLOSED_HAT:   # a closed hat chokes the open one
                noise_amp[OPEN_HAT] *= 0.05
            k += 1
        for c in range(channels):
            out[c, i] = 0.0
        for s in range(SLOTS):
            if age[s] < 0.0:
                continue
            v = vel[s]
            tune = struck[s, TUNE]
            y = 0.0
            if s == KICK:
                f = tune * (48.0 + 110.0 * pitch_env[s])
                phase[s] += f / samplerate
                phase[s] -= math.floor(phase[s])
                click = noise_amp[s] * 0.3
                y = amp[s] * math.sin(2.0 * math.pi * phase[s]) + click * math.sin(6.0 * math.pi * phase[s])
                amp[s] *= struck[s, AMP_DECAY]
                pitch_env[s] *= kick_pitch
                noise_amp[s] *= struck[s, NOISE_DECAY]
            elif s == SNARE or s == CLAP:
                rng[s], w = random_step(rng[s])
                hp = hp_snare if s == SNARE else hp_clap
                lp = lp_snare if s == SNARE else lp_clap
                # high-pass: the input minus its one-pole low-pass
                filt[s, 0] = hp * filt[s, 0] + (1.0 - hp) * w
                filt[s, 1] += lp * ((w - filt[s, 0]) - filt[s, 1])
                if s == SNARE:
                    phase[s] += tune * 185.0 / samplerate
                    phase[s] -= math.floor(phase[s])
                    y = 0.55 * amp[s] * math.sin(2.0 * math.pi * phase[s]) + 1.0 * noise_amp[s] * filt[s, 1]
                    amp[s] *= struck[s, AMP_DECAY]
                    noise_amp[s] *= struck[s, NOISE_DECAY]
                else:
                    a = age[s]
                    # three quick bursts, then the tail
                    env = noise_amp[s]
                    if a < 3 * burst:
                        env = 1.0 - (a % burst) / burst
                    y = 2.2 * env * filt[s, 1]
                    if a >= 3 * burst:
                        noise_amp[s] *= struck[s, NOISE_DECAY]
            elif s == CLOSED_HAT or s == OPEN_HAT or s == CRASH:
                rng[s], w = random_step(rng[s])
                hp = hp_crash if s == CRASH else hp_hat
                filt[s, 0] = hp * filt[s, 0] + (1.0 - hp) * w
                y = 0.7 * noise_amp[s] * (w - filt[s, 0])
                if s == CRASH:
                    y *= 0.8
                noise_amp[s] *= struck[s, NOISE_DECAY]
            else:
                f = tune * TOM_HZ_ARRAY[s - TOM_FIRST] * (1.0 + 0.5 * pitch_env[s])
                phase[s] += f / samplerate
                phase[s] -= math.floor(phase[s])
                y = 0.9 * amp[s] * math.sin(2.0 * math.pi * phase[s])
                amp[s] *= struck[s, AMP_DECAY]
                pitch_env[s] *= tom_pitch
            sound = v * y + handover[s, 1]
            handover[s, 0] = sound
            handover[s, 1] *= let_go
            out[s % channels, i] += KIT_GAIN * sound * level[s % channels, i]
            age[s] += 1.0
            if amp[s] < 1e-5 and noise_amp[s] < 1e-5 and age[s] > 4 * burst:
                age[s] = -1.0
                handover[s, 0] = handover[s, 1] = 0.0



class Drums(Module):
    """A drum kit synthesized on the fly: each instrument is one voice that
    a new note of it restarts (a closed hat also chokes the open one).
    With ``voices`` above 1 the instruments are spread over the output's
    channels, so the kit can share a polyphonic mix (whose inputs copy a
    one-channel cable into every channel) and still be heard once."""

    type_name = "drums"
    description = ("Drum kit played by notes (General MIDI channel 10): c2 kick, d2 snare, d#2 clap, f#2 closed "
                   "hat, a#2 open hat, c#3 crash, f2 g2 a2 b2 c3 d3 toms (also b1 kick, c#2 e2 snare, g#2 hat, "
                   "d#3 e3 f3 g3 a3 b3 crash; any other note from 27 to 87 a closed hat, outside them nothing); "
                   "a pattern also takes them by name: bd sd (or sn) rim cp hh oh lt mt ht cr rd")
    outputs = (Port("out", AUDIO, "the whole kit; a full-velocity kick peaks near 0.6"),)
    params = (
        Param("voices", 1, 1, MAX_CHANNELS, "", integer=True, structural=True,
              doc="output channels; instrument k plays on channel k mod voices"),
        Param("level", 1.0, 0.0, 4.0, "x", doc="output gain"),
        Param("tone", 1.0, 0.25, 4.0, "x", glide=False,
              doc="scales the pitch of each drum, as it is struck"),
        Param("decay", 1.0, 0.1, 4.0, "x", glide=False,
              doc="scales the length of each drum, as it is struck"),
    )
    state_fields = ("age", "vel", "amp", "noise_amp", "phase", "pitch_env", "rng", "filt", "struck", "handover")
    accepts_notes = True

    @classmethod
    def channel_count(cls, params, inputs):
        return int(params["voices"])

    def setup(self) -> None:
        self.age = np.full(SLOTS, -1.0)
        self.vel = np.zeros(SLOTS)
        self.amp = np.zeros(SLOTS)
        self.noise_amp = np.zeros(SLOTS)
        self.phase = np.zeros(SLOTS)
        self.pitch_env = np.zeros(SLOTS)
        self.rng = np.arange(SLOTS, dtype=np.uint64) * np.uint64(7919)
        self.filt = np.zeros((SLOTS, 2))
        self.struck = np.zeros((SLOTS, 3))
        self.handover = np.zeros((SLOTS, 2))
        self.pending: list[tuple[int, int, float]] = []
        self._grow(16)

    def _grow(self, events: int) -> None:
        """Trigger arrays made once, not every block (a block without hits
        passes their empty views)."""
        self._at = np.zeros(events, dtype=np.int64)
        self._slot = np.zeros(events, dtype=np.int64)
        self._vel = np.zeros(events)
        self._none = (self._at[:0], self._slot[:0], self._vel[:0])

    def on_event(self, offset: int, event: tuple) -> None:
        if isinstance(event, NoteOn) and event.velocity > 0:
            slot = slot_for(event.note)
            if slot >= 0:
                self.pending.append((min(max(offset, 0), self.blocksize - 1), slot, float(event.velocity)))
        elif isinstance(event, AllNotesOff):
            self.pending.clear()
        # Note-offs are ignored: a drum rings out as it was struck.

    def process(self, inputs, params, outputs) -> None:
        pending, count = self.pending, len(self.pending)
        triggers = self._none
        if count:
            if count > len(self._at):
                self._grow(2 * count)
            pending.sort(key=itemgetter(0))   # stable: hits of one sample keep their order
            for i, (at, slot, vel) in enumerate(pending):
                self._at[i], self._slot[i], self._vel[i] = at, slot, vel
            pending.clear()
            triggers = (self._at[:count], self._slot[:count], self._vel[:count])
        _drums_kernel(*triggers, params["tone"], params["decay"], params["level"], outputs["out"],
                      self.age, self.vel, self.amp, self.noise_amp, self.phase, self.pitch_env,
                      self.rng, self.filt, self.struck, self.handover, self.samplerate)


MODULES = (Drums,)
