"""comb: a comb filter, feedback or feedforward, tunable like an oscillator.

A comb adds a signal to a copy of itself delayed by one period of ``freq``
(``1 / freq`` seconds), which reinforces that frequency and its harmonics
and cancels the ones between:

* ``feedback`` (``y = x + g * lowpass(y delayed)``): resonant peaks, a
  metallic ring that follows the pitch; with a noise or a pluck in, it is
  itself a string. ``damp`` lowpasses the loop, so highs ring shorter.
* ``feedforward`` (``y = x + g * lowpass(x delayed)``): notches only, the
  flanger's hollow colour, with no ring at all.

A negative ``amount`` puts the peaks on the odd harmonics of half the
frequency: hollow, an octave down, like a clarinet. The wet signal is
scaled so the peaks stay at unity gain whatever the amount, and a
``voct`` input lets a note source tune it. The delay is read with cubic
(Hermite) interpolation, so sweeping ``freq`` glides without zipper noise,
and the loop lowpass's own delay is taken off, so ``damp`` does not detune.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from synthcli.api import AUDIO, CONTROL, Module, Param, Port

MODES = ("feedback", "feedforward")
FEEDFORWARD = 1
MIN_FREQ = 20.0
#: The interpolation reads up to 2 samples either side of the delay.
MIN_DELAY = 4.0
#: A feedback of 1 never dies away.
MAX_AMOUNT = 0.995
#: damp 1 is this lowpass coefficient in the loop.
MAX_DAMP = 0.9


def line_length(samplerate: float) -> int:
    return 1 << math.ceil(math.log2(samplerate / MIN_FREQ + 8))


@njit(cache=True, nogil=True)
def _comb_kernel(x, voct, freq, mode, amount, damp, mix, out, line, cursor, lowpass, samplerate):
    channels, n = x.shape
    mask = line.shape[1] - 1
    dmax = samplerate / MIN_FREQ
    for c in range(channels):
        w = cursor[0]
        z = lowpass[c]
        last_f = last_v = last_k = np.nan
        base = delay = 100.0
        for i in range(n):
            f = freq[c, i]
            v = voct[c, i]
            if f != last_f or v != last_v:
                hz = f * 2.0 ** v
                base = samplerate / hz if hz > 0.0 else dmax  # NaN too goes to the longest
                last_f = f
                last_v = v
                last_k = np.nan
            k = MAX_DAMP * min(max(damp[c, i], 0.0), 1.0)
            if k != last_k:
                delay = min(max(base - k / (1.0 - k), MIN_DELAY), dmax)
                last_k = k
            r = w - delay
            j = int(math.floor(r))
            t = r - j
            y0 = line[c, (j - 1) & mask]
            y1 = line[c, j & mask]
            y2 = line[c, (j + 1) & mask]
            y3 = line[c, (j + 2) & mask]
            c1 = 0.5 * (y2 - y0)
            c2 = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
            c3 = 0.5 * (y3 - y0) + 1.5 * (y1 - y2)
            delayed = ((c3 * t + c2) * t + c1) * t + y1
            z = (1.0 - k) * delayed + k * z
            g = min(max(amount[c, i], -MAX_AMOUNT), MAX_AMOUNT)
            s = x[c, i]
            y = s + g * z
            if int(mode[c, i]) == FEEDFORWARD:  # a choice may change on any sample (a pattern's step)
                line[c, w] = s
                wet = y / (1.0 + abs(g))
            else:
                line[c, w] = y
                wet = y * (1.0 - abs(g))
            m = min(max(mix[c, i], 0.0), 1.0)
            out[c, i] = s + m * (wet - s)
            w = (w + 1) & mask
        lowpass[c] = z
    cursor[0] = (cursor[0] + n) & mask


class Comb(Module):
    type_name = "comb"
    description = "Comb filter, feedback (resonant ring) or feedforward (notches), tuned by freq and voct"
    inputs = (
        Port("in", AUDIO, "signal to filter"),
        Port("voct", CONTROL, "tuning in volts per octave, added to freq (patch a keys voct to play it)"),
    )
    outputs = (Port("out", AUDIO, "filtered signal, mixed with the dry one"),)
    params = (
        Param("freq", 220.0, MIN_FREQ, 10000.0, "Hz", doc="the comb's fundamental: its delay is 1 / freq"),
        Param("mode", "feedback", choices=MODES, doc="feedback: resonant peaks; feedforward: notches"),
        Param("amount", 0.8, -0.99, 0.99, doc="feedback or feedforward gain; negative: odd harmonics an octave down"),
        Param("damp", 0.2, 0.0, 1.0, doc="lowpass in the loop: highs ring shorter"),
        Param("mix", 1.0, 0.0, 1.0, doc="0 dry, 1 filtered"),
    )
    state_fields = ("line", "cursor", "lowpass")

    def setup(self):
        self.line = np.zeros((self.channels, line_length(self.samplerate)))
        self.cursor = np.zeros(1, dtype=np.int64)
        self.lowpass = np.zeros(self.channels)

    def process(self, inputs, params, outputs):
        _comb_kernel(inputs["in"], inputs["voct"], params["freq"], params["mode"], params["amount"],
                     params["damp"], params["mix"], outputs["out"], self.line, self.cursor, self.lowpass,
                     self.samplerate)
