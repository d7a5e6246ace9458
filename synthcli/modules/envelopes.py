"""Envelope generators: adsr."""
from __future__ import annotations

import math

import numpy as np

from ..api import CONTROL, Module, Param, Port
from ..engine.jit import helper, kernel

IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = range(5)

#: The exp curves chase a target beyond the one they stop at, like an
#: analog envelope's capacitor charging towards a higher rail, and stop
#: when they cross it: an RC shape that still ends after exactly the set
#: time. The overshoot is this share of the stage's span. Attack's is
#: large, so it stays a gentle bow; decay and release chase 0.1 % past
#: their goal, a time constant of a seventh of the set time (ln 1001), so
#: they fall steeply at first and glide in, as RC envelopes do.
ATTACK_OVERSHOOT = 0.3
FALL_OVERSHOOT = 0.001


@helper
def _exp_coef(samples, overshoot):
    """Per-sample factor that brings an RC curve from the start of its span
    to its goal in ``samples``, chasing a target ``overshoot`` spans past it."""
    return math.exp(math.log(overshoot / (1.0 + overshoot)) / samples)


@kernel
def _adsr_kernel(gate, attack, decay, sustain, release, curve, out,
                 level, stage, gate_high, release_from, samplerate):
    """All channels of the envelope in one call.

    Linear stages step by a constant; exp stages move a fixed share of the
    way to their overshoot target each sample. exp() runs only when a
    stage's time differs from the one its factor was made for.
    """
    channels, n = gate.shape
    for c in range(channels):
        lv = level[c]
        st = stage[c]
        was_high = gate_high[c]
        top = release_from[c]
        a_len = d_len = r_len = np.nan
        a_coef = d_coef = r_coef = 0.0
        for i in range(n):
            high = gate[c, i] > 0.5
            if high and not was_high:
                st = ATTACK
            elif was_high and not high:
                st = RELEASE
                top = lv
            was_high = high
            if st == ATTACK:
                t = attack[c, i] * samplerate
                if t < 1.0:
                    lv = 1.0
                elif curve[c, i] >= 0.5:   # on its sample (a pattern's step)
                    if t != a_len:
                        a_coef = _exp_coef(t, ATTACK_OVERSHOOT)
                        a_len = t
                    lv = 1.0 + ATTACK_OVERSHOOT + (lv - 1.0 - ATTACK_OVERSHOOT) * a_coef
                else:
                    lv += 1.0 / t
                if lv >= 1.0:
                    lv = 1.0
                    st = DECAY
            elif st == DECAY:
                s = min(max(sustain[c, i], 0.0), 1.0)
                t = decay[c, i] * samplerate
                if t < 1.0:
                    lv = s
                elif curve[c, i] >= 0.5:   # on its sample (a pattern's step)
                    if t != d_len:
                        d_coef = _exp_coef(t, FALL_OVERSHOOT)
                        d_len = t
                    target = s - FALL_OVERSHOOT * (1.0 - s)
                    lv = target + (lv - target) * d_coef
                else:
                    lv -= (1.0 - s) / t
                if lv <= s:
                    lv = s
                    st = SUSTAIN
            elif st == SUSTAIN:
                lv = min(max(sustain[c, i], 0.0), 1.0)
            elif st == RELEASE:
                t = release[c, i] * samplerate
                if t < 1.0:
                    lv = 0.0
                elif curve[c, i] >= 0.5:   # on its sample (a pattern's step)
                    if t != r_len:
                        r_coef = _exp_coef(t, FALL_OVERSHOOT)
                        r_len = t
                    target = -FALL_OVERSHOOT * top
                    lv = target + (lv - target) * r_coef
                else:
                    lv -= top / t
                if lv <= 0.0:
                    lv = 0.0
                    st = IDLE
            out[c, i] = lv
        level[c] = lv
        stage[c] = st
        gate_high[c] = was_high
        release_from[c] = top


class Adsr(Module):
    type_name = "adsr"
    description = "Attack-decay-sustain-release envelope, retriggered by each rising gate edge"
    inputs = (Port("gate", CONTROL, "high (> 0.5) holds the note: a rising edge starts the attack; "
                        "unconnected it reads high, so the envelope attacks once and sustains", default=1.0),)
    outputs = (Port("out", CONTROL, "envelope level, 0..1"),)
    params = (
        Param("attack", 0.01, 0.0, 60.0, "s",
              doc="time to rise from 0 to 1; a retrigger climbs from where the level is, no click"),
        Param("decay", 0.1, 0.0, 60.0, "s", doc="time to fall from 1 to the sustain level"),
        Param("sustain", 0.7, 0.0, 1.0, doc="level held while the gate stays high"),
        Param("release", 0.2, 0.0, 60.0, "s",
              doc="time to fall to 0 after the gate drops, from whatever level it had"),
        Param("curve", "linear", choices=("linear", "exp"),
              doc="linear ramps, or exp: analog-style RC curves that still land in the set times"),
    )
    state_fields = ("level", "stage", "gate_high", "release_from")

    def setup(self):
        self.level = np.zeros(self.channels)
        self.stage = np.full(self.channels, IDLE, dtype=np.int64)
        self.gate_high = np.zeros(self.channels, dtype=np.bool_)
        self.release_from = np.zeros(self.channels)

    def process(self, inputs, params, outputs):
        _adsr_kernel(inputs["gate"], params["attack"], params["decay"], params["sustain"],
                     params["release"], params["curve"], outputs["out"],
                     self.level, self.stage, self.gate_high, self.release_from, self.samplerate)


MODULES = (Adsr,)
