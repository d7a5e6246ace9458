"""bitcrusher: fewer bits and a lower sample rate, on purpose.

The sample-rate reduction is a sample-and-hold clocked by a phase
accumulator, so any rate (not only whole divisions of the engine's) is
exact and can be swept; nothing filters the result, because the aliasing
is the sound. The bit reduction rounds to ``2 ** (bits - 1)`` levels each
side of zero: 1 bit leaves -1, 0 and +1, and silence stays silent.
``bits`` need not be whole, so a cable can sweep it smoothly.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from synthcli.api import AUDIO, Module, Param, Port

MIN_BITS = 1.0
MAX_BITS = 24.0


@njit(cache=True, nogil=True)
def _crush_kernel(x, bits, rate, mix, out, phase, held, samplerate):
    channels, n = x.shape
    for c in range(channels):
        ph = phase[c]
        h = held[c]
        last_bits = np.nan
        scale = 1.0
        for i in range(n):
            r = rate[c, i]
            if not r > 1.0:  # also NaN
                r = 1.0
            ph += min(r, samplerate) / samplerate
            if ph >= 1.0:  # the clock ticked: take a new sample
                ph -= math.floor(ph)
                h = x[c, i]
            b = bits[c, i]
            if b != last_bits:  # the pow only when bits change
                scale = 2.0 ** (min(max(b, MIN_BITS), MAX_BITS) - 1.0)
                last_bits = b
            q = math.floor(h * scale + 0.5) / scale
            m = min(max(mix[c, i], 0.0), 1.0)
            out[c, i] = x[c, i] + m * (q - x[c, i])
        phase[c] = ph
        held[c] = h


class Bitcrusher(Module):
    type_name = "bitcrusher"
    description = "Lo-fi: bit-depth and sample-rate reduction (sample-and-hold), with dry/wet mix"
    inputs = (Port("in", AUDIO, "signal to crush"),)
    outputs = (Port("out", AUDIO, "crushed signal, mixed with the dry one"),)
    params = (
        Param("bits", 8.0, MIN_BITS, MAX_BITS, "bits", doc="resolution; fractions sweep smoothly"),
        Param("rate", 11025.0, 100.0, 192000.0, "Hz",
              doc="sample-and-hold rate; at or above the engine's rate it holds nothing"),
        Param("mix", 1.0, 0.0, 1.0, doc="0 dry, 1 fully crushed"),
    )
    state_fields = ("phase", "held")

    def setup(self):
        self.phase = np.ones(self.channels)  # due at once: the first sample is taken
        self.held = np.zeros(self.channels)

    def process(self, inputs, params, outputs):
        _crush_kernel(inputs["in"], params["bits"], params["rate"], params["mix"], outputs["out"],
                      self.phase, self.held, self.samplerate)
