"""Filters: vcf (state-variable, 12 dB/oct) and ladder (Moog-style, 24 dB/oct).

Both are zero-delay-feedback filters discretised with the trapezoidal rule
(the topology-preserving transform): unlike the classic Chamberlin SVF or a
naive ladder they keep the analog response up to Nyquist and stay stable
when the cutoff moves every sample.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..api import AUDIO, Module, Param, Port

#: A modulated cutoff is held in this range: below it the filter is a DC
#: trap, above it tan() of the prewarp heads for its pole at Nyquist.
MIN_CUTOFF = 10.0
MAX_CUTOFF_RATIO = 0.49

#: SVF damping k = 1/Q runs exponentially from Butterworth (Q 0.707) at
#: res 0 to Q 50 at res 1: a long ring, still strictly stable (k > 0).
BUTTERWORTH_K = math.sqrt(2.0)
SVF_MIN_K = 0.02

#: How each SVF mode mixes the input v0, k*v1, the band v1 and the low v2.
#: The band output is the analog SVF's, so resonance lifts it like the others.
SVF_MODES = ("lowpass", "highpass", "bandpass", "notch")
SVF_MIX = (
    (0.0, 0.0, 0.0, 1.0),
    (1.0, -1.0, 0.0, -1.0),
    (0.0, 0.0, 1.0, 0.0),
    (1.0, -1.0, 0.0, 0.0),
)

#: Ladder feedback gain at res 1. The loop oscillates from k = 4 (res 0.89);
#: the margin above it makes the oscillation build quickly from a faint
#: signal and settle, against the saturator, at about 0.17 peak.
LADDER_MAX_K = 4.5
#: Share of the feedback added back to the input: the DC gain of a ladder
#: falls as 1/(1+k), and this lifts it to (1+k/2)/(1+k), -4.4 dB at res 1
#: instead of -14 dB, without the huge peak of full compensation.
LADDER_COMPENSATION = 0.5
#: drive 1 is this gain into the saturating input stage (+20 dB).
LADDER_MAX_DRIVE = 10.0

#: States below this are zeroed at the end of a block, long before they
#: could decay into denormals, which are slow on x86.
FLUSH = 1e-30


@njit(cache=True, nogil=True)
def _flush(v):
    return v if abs(v) > FLUSH else 0.0


@njit(cache=True, nogil=True)
def _svf_kernel(x, cutoff, res, mode, out, ic, samplerate):
    """Andrew Simper's (Cytomic) trapezoidal SVF, all channels in one call.

    tan() and the pow of the resonance run only when their parameter
    differs from the previous sample's, so a fixed setting costs neither.
    """
    channels, n = x.shape
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    for c in range(channels):
        w0, wk, w1, w2 = SVF_MIX[int(mode[c, 0])]
        ic1 = ic[c, 0]
        ic2 = ic[c, 1]
        last_f = np.nan
        last_r = np.nan
        g = k = a1 = a2 = a3 = wv1 = 0.0
        for i in range(n):
            f = cutoff[c, i]
            r = res[c, i]
            if f != last_f or r != last_r:
                if f != last_f:
                    g = math.tan(min(max(f, MIN_CUTOFF), fmax) * warp)
                    last_f = f
                if r != last_r:
                    k = BUTTERWORTH_K * (SVF_MIN_K / BUTTERWORTH_K) ** min(max(r, 0.0), 1.0)
                    last_r = r
                a1 = 1.0 / (1.0 + g * (g + k))
                a2 = g * a1
                a3 = g * a2
                wv1 = wk * k + w1
            v0 = x[c, i]
            v3 = v0 - ic2
            v1 = a1 * ic1 + a2 * v3
            v2 = ic2 + a2 * ic1 + a3 * v3
            ic1 = 2.0 * v1 - ic1
            ic2 = 2.0 * v2 - ic2
            out[c, i] = w0 * v0 + wv1 * v1 + w2 * v2
        ic[c, 0] = _flush(ic1)
        ic[c, 1] = _flush(ic2)


class Vcf(Module):
    type_name = "vcf"
    description = "State-variable filter, 12 dB/oct: lowpass, highpass, bandpass or notch with resonance"
    inputs = (Port("in", AUDIO, "signal to filter"),)
    outputs = (Port("out", AUDIO, "filtered signal"),)
    params = (
        Param("cutoff", 1000.0, 20.0, 20000.0, "Hz",
              doc="cutoff (centre) frequency; modulation is held within 10 Hz..0.49 x samplerate"),
        Param("res", 0.0, 0.0, 1.0,
              doc="resonance: 0 is Butterworth (Q 0.707, no peak), 1 rings hard (Q 50) yet never runs away"),
        Param("mode", "lowpass", choices=SVF_MODES,
              doc="which response: bandpass peaks at Q x input, notch removes the cutoff"),
    )
    state_fields = ("ic",)

    def setup(self):
        self.ic = np.zeros((self.channels, 2))

    def process(self, inputs, params, outputs):
        _svf_kernel(inputs["in"], params["cutoff"], params["res"], params["mode"],
                    outputs["out"], self.ic, self.samplerate)


@njit(cache=True, nogil=True)
def _saturate(u):
    """tanh to within 0.024, landing smoothly on +/-1 at +/-3 (slope 0):
    this rational function costs a fraction of libm's tanh."""
    if u > 3.0:
        return 1.0
    if u < -3.0:
        return -1.0
    u2 = u * u
    return u * (27.0 + u2) / (27.0 + 9.0 * u2)


@njit(cache=True, nogil=True)
def _ladder_kernel(x, cutoff, res, drive, out, stages, samplerate):
    """Zavalishin's TPT ladder: four trapezoidal one-poles in a loop.

    The loop is solved exactly for the linear filter, then the input of the
    first stage is saturated. That one saturator keeps self-oscillation at
    a steady level and gives the Moog its growl, at one per sample instead
    of one per stage.
    """
    channels, n = x.shape
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    for c in range(channels):
        s1 = stages[c, 0]
        s2 = stages[c, 1]
        s3 = stages[c, 2]
        s4 = stages[c, 3]
        last_f = np.nan
        last_r = np.nan
        last_d = np.nan
        G = h = G4 = in_gain = k_loop = gain = 0.0
        for i in range(n):
            f = cutoff[c, i]
            r = res[c, i]
            if f != last_f or r != last_r:
                if f != last_f:
                    g = math.tan(min(max(f, MIN_CUTOFF), fmax) * warp)
                    h = 1.0 / (1.0 + g)
                    G = g * h
                    G4 = G * G * G * G
                    last_f = f
                k = LADDER_MAX_K * min(max(r, 0.0), 1.0)
                last_r = r
                loop_gain = 1.0 / (1.0 + k * G4)
                in_gain = (1.0 + LADDER_COMPENSATION * k) * loop_gain
                k_loop = k * loop_gain
            d = drive[c, i]
            if d != last_d:
                gain = LADDER_MAX_DRIVE ** min(max(d, 0.0), 1.0)
                last_d = d
            # Each stage's output is G * its input + h * its state, so the
            # fourth is G^4 * u + S: solve u = in - k * y4 for u.
            S = h * (G * (G * (G * s1 + s2) + s3) + s4)
            u = _saturate(x[c, i] * gain * in_gain - k_loop * S)
            # Written as G * input + h * state, each stage adds one multiply
            # and one add to the chain that bounds the speed of the loop.
            y1 = G * u + h * s1
            y2 = G * y1 + h * s2
            y3 = G * y2 + h * s3
            y4 = G * y3 + h * s4
            s1 = 2.0 * y1 - s1
            s2 = 2.0 * y2 - s2
            s3 = 2.0 * y3 - s3
            s4 = 2.0 * y4 - s4
            out[c, i] = y4
        stages[c, 0] = _flush(s1)
        stages[c, 1] = _flush(s2)
        stages[c, 2] = _flush(s3)
        stages[c, 3] = _flush(s4)


class Ladder(Module):
    type_name = "ladder"
    description = "Moog-style 4-pole ladder lowpass, 24 dB/oct, saturating, self-oscillates at full res"
    inputs = (Port("in", AUDIO, "signal to filter"),)
    outputs = (Port("out", AUDIO, "filtered signal"),)
    params = (
        Param("cutoff", 1000.0, 20.0, 20000.0, "Hz",
              doc="cutoff frequency; modulation is held within 10 Hz..0.49 x samplerate"),
        Param("res", 0.0, 0.0, 1.0,
              doc="resonance: from about 0.9 the filter sings a sine at the cutoff on its own"),
        Param("drive", 0.0, 0.0, 1.0,
              doc="input gain into the saturating stage, exponential: 0 is x1, 1 is x10 (+20 dB) for grit"),
    )
    state_fields = ("stages",)

    def setup(self):
        self.stages = np.zeros((self.channels, 4))

    def process(self, inputs, params, outputs):
        _ladder_kernel(inputs["in"], params["cutoff"], params["res"], params["drive"],
                       outputs["out"], self.stages, self.samplerate)


MODULES = (Vcf, Ladder)
