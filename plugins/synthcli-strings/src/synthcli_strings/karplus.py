"""string: a plucked string, by the Karplus-Strong method as extended by
Jaffe and Smith (1983).

A delay line one period long holds the string's shape. A gate's rising edge
plucks it: for one period a burst of noise, coloured by ``brightness`` and
scaled by ``velocity``, is fed into the loop. Every pass round the loop goes
through

* a one-zero lowpass, ``damping``: highs die faster than lows, as on a
  real string (at 1 it is Karplus and Strong's two-point average);
* a first-order allpass for the fractional part of the period, so the
  pitch is exact (a plain integer delay goes badly out of tune high up);
* a gain that makes the fundamental fall 60 dB in ``decay`` seconds while
  the gate is high, and in ``release`` seconds once it falls (a finger
  lifted from a guitar string). It makes up for what the lowpass takes
  from the fundamental, up to a loop gain just below 1: high notes with
  much damping ring shorter than ``decay``, as real ones do.

The phase delay of the lowpass (``damping / 2`` samples) is taken off the
line, so damping does not detune. A DC blocker on the output removes what
the noise burst left at 0 Hz.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from synthcli.api import AUDIO, C4_HZ, CONTROL, Module, Param, Port

#: Lowest pitch: the delay line holds one period of it.
MIN_FREQ = 20.0
#: Highest pitch, as a fraction of the sample rate: the loop needs a few
#: samples of line besides the filters.
MAX_FREQ_RATIO = 0.125
#: The excitation's lowpass runs from this cutoff at brightness 0 up to
#: 100 times it at brightness 1.
DARKEST = 200.0
#: Burst level: a plucked string's peaks end up below about 0.8.
PLUCK_GAIN = 0.45
#: Highest loop gain: every frequency dies away, DC included.
MAX_LOOP = 0.99999
#: DC blocker pole: about 8 Hz at 48 kHz.
DC_POLE = 0.999


def line_length(samplerate: float) -> int:
    """A power of two with room for the longest period, so positions wrap
    with a mask."""
    return 1 << math.ceil(math.log2(samplerate / MIN_FREQ + 8))


@njit(cache=True, nogil=True)
def _lcg(state):
    """A 32-bit linear congruential generator: the next state and a
    uniform value in [-1, 1). Plenty for a pluck, and the same every run."""
    state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
    return state, state * (2.0 / 4294967296.0) - 1.0


@njit(cache=True, nogil=True)
def _string_kernel(voct, gate, velocity, freq, decay, release, damping, brightness, out,
                   line, cursor, filters, burst, high, rng, samplerate):
    """All channels in one call. ``filters`` rows per channel: the one-zero's
    last input, the allpass's last input and output, the excitation
    lowpass, the DC blocker's last input and output, the burst level and
    the burst lowpass's coefficient. ``burst`` counts the samples of
    excitation still to feed. A burst's colour and level are those of its
    pluck's sample, and its lowpass starts from rest: a pattern stepping
    ``brightness`` with the notes gives each pluck its own tone, not a
    blend of the last one's."""
    channels, n = out.shape
    mask = line.shape[1] - 1
    fmax = MAX_FREQ_RATIO * samplerate
    for c in range(channels):
        w = cursor[0]
        lz = filters[c, 0]
        ax = filters[c, 1]
        ay = filters[c, 2]
        ex = filters[c, 3]
        dx = filters[c, 4]
        dy = filters[c, 5]
        amp = filters[c, 6]
        k = filters[c, 7]
        left = burst[c]
        hi = high[c]
        state = rng[c]
        last_f = last_v = last_d = last_t = np.nan
        period = 100.0
        delay = 99
        eta = 0.0
        a = 1.0
        b = 0.0
        loop = 0.0
        for i in range(n):
            f = freq[c, i]
            v = voct[c, i]
            d = damping[c, i]
            g = gate[c, i] > 0.5
            if f != last_f or v != last_v or d != last_d:
                hz = f * 2.0 ** v
                if not hz > MIN_FREQ:  # also NaN
                    hz = MIN_FREQ
                period = samplerate / min(hz, fmax)
                b = 0.5 * min(max(d, 0.0), 1.0)
                a = 1.0 - b
                # Line, lowpass and allpass add up to the period; the
                # allpass takes 0.5..1.5 samples, where it is most even.
                rest = period - b
                delay = int(rest - 0.5)
                frac = rest - delay
                eta = (1.0 - frac) / (1.0 + frac)
                last_f = f
                last_v = v
                last_d = d
                last_t = np.nan  # the loop gain depends on the period
            t = decay[c, i] if g else release[c, i]
            if t != last_t:
                # The lowpass takes its own share at the fundamental; make
                # up for it, short of a loop gain of 1 (at DC the lowpass
                # takes nothing, so that would never die away).
                w0 = 2.0 * math.pi / period
                lost = math.sqrt(a * a + b * b + 2.0 * a * b * math.cos(w0))
                loop = min(0.001 ** (period / (samplerate * max(t, 1e-3))) / lost, MAX_LOOP)
                last_t = t
            if g and not hi:  # pluck: one period of noise into the loop
                left = int(period)
                fc = DARKEST * 100.0 ** min(max(brightness[c, i], 0.0), 1.0)
                k = 1.0 - math.exp(-2.0 * math.pi * min(fc, 0.45 * samplerate) / samplerate)
                norm = math.sqrt((2.0 - k) / k)  # lowpassed noise keeps its loudness
                amp = PLUCK_GAIN * min(max(velocity[c, i], 0.0), 1.0) * norm
                ex = 0.0
            hi = g
            excite = 0.0
            if left > 0:
                state, noise = _lcg(state)
                ex += k * (noise - ex)
                excite = amp * ex
                left -= 1
            x = line[c, (w - delay) & mask]
            low = a * x + b * lz
            lz = x
            y = eta * low + ax - eta * ay
            ax = low
            ay = y
            s = loop * y + excite
            line[c, w] = s
            dy = s - dx + DC_POLE * dy
            dx = s
            out[c, i] = dy
            w = (w + 1) & mask
        filters[c, 0] = lz
        filters[c, 1] = ax
        filters[c, 2] = ay
        filters[c, 3] = ex
        filters[c, 4] = dx
        filters[c, 5] = dy
        filters[c, 6] = amp
        filters[c, 7] = k
        burst[c] = left
        high[c] = hi
        rng[c] = state
    cursor[0] = (cursor[0] + n) & mask


class String(Module):
    type_name = "string"
    description = "Plucked string (Karplus-Strong): a gate plucks it at the voct pitch; damping, brightness, decay"
    inputs = (
        Port("voct", CONTROL, "pitch in volts per octave (patch a keys voct here)"),
        Port("gate", CONTROL, "a rising edge plucks; while high the string rings for decay, then for release"),
        Port("velocity", CONTROL, "0..1: how hard the string is plucked", default=1.0),
    )
    outputs = (Port("out", AUDIO, "the string's vibration"),)
    params = (
        Param("freq", C4_HZ, MIN_FREQ, 6000.0, "Hz",
              doc="frequency at voct 0; C4 lets a note source play true pitches"),
        Param("decay", 2.0, 0.01, 30.0, "s", doc="time the fundamental takes to fall 60 dB while the gate is high"),
        Param("release", 0.3, 0.01, 30.0, "s", doc="the same once the gate falls (set it to decay to let notes ring)"),
        Param("damping", 0.5, 0.0, 1.0, doc="how much faster highs die than lows: 0 metallic, 1 soft nylon"),
        Param("brightness", 0.7, 0.0, 1.0, glide=False,
              doc="tone of the pluck, taken as each string is plucked (a set steps): 0 a thumb, 1 a hard pick"),
    )
    state_fields = ("line", "cursor", "filters", "burst", "high", "rng")

    def setup(self):
        n = self.channels
        self.line = np.zeros((n, line_length(self.samplerate)))
        self.cursor = np.zeros(1, dtype=np.int64)
        self.filters = np.zeros((n, 8))
        self.burst = np.zeros(n, dtype=np.int64)
        self.high = np.zeros(n, dtype=np.bool_)
        self.rng = np.arange(1, n + 1, dtype=np.int64) * 7919  # its own noise per voice

    def process(self, inputs, params, outputs):
        _string_kernel(inputs["voct"], inputs["gate"], inputs["velocity"], params["freq"], params["decay"],
                       params["release"], params["damping"], params["brightness"], outputs["out"],
                       self.line, self.cursor, self.filters, self.burst, self.high, self.rng, self.samplerate)
