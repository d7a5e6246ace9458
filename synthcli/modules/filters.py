"""Filters: vcf (state-variable, 12 dB/oct), ladder (Moog-style, 24 dB/oct)
and eq (three bands: shelves and a bell).

All are zero-delay-feedback filters discretised with the trapezoidal rule
(the topology-preserving transform): unlike the classic Chamberlin SVF or a
naive ladder they keep the analog response up to Nyquist and stay stable
when the cutoff moves every sample.
"""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, MAX_CHANNELS, Module, Param, Port
from ..engine.jit import helper, kernel
from .dsp import flush, is_steady, mode_fade, same_as_previous

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
#: The res from which the loop oscillates (k = 4), and what it starts from
#: there: a filter left silent would stay so for ever, where an analog
#: one's noise starts it singing. As res reaches SINGS, a faint impulse
#: (-80 dB) goes into its first stage, as that noise would.
SINGS = 4.0 / LADDER_MAX_K
SEED = 1e-4
#: drive 1 is this gain into the saturating input stage (+20 dB).
LADDER_MAX_DRIVE = 10.0



#: The filters run channels side by side, one sample of every channel at a
#: time (in "lanes"): a channel's recursion is a chain of dependent
#: operations far longer than its work, and other channels fill the gaps.
#: Up to FEW channels, the ladder runs them as they are and the vcf, whose
#: recursion is short, one after another; more run as LANES lanes, padded
#: with silent ones: the trip count from which LLVM's vector loop (4
#: doubles, unrolled 4 times) takes over from its scalar one. The ladder
#: pads up to HALF_LANES channels to that many instead: its long recursion
#: keeps eight scalar lanes as busy as the vector loop keeps sixteen (8
#: channels: 5.1 ns per sample and channel, padded to 16 lanes 6.8;
#: benchmarks/modules.py).
FEW = 4
HALF_LANES = 8
LANES = MAX_CHANNELS


@helper
def _prewarp(f, fmax, warp):
    """The trapezoidal integrator gain g = tan(pi f / fs) of a cutoff."""
    return math.tan(min(max(f, MIN_CUTOFF), fmax) * warp)


@helper
def _lane_count(channels):
    """How many lanes to run, unsigned: LLVM vectorises a loop over lanes
    only without the check for negative indices that signed ones carry."""
    return np.uint64(channels if channels <= FEW else HALF_LANES if channels <= HALF_LANES else LANES)


def _work(rows, blocksize):
    """One scratch array for the lanes, so a kernel takes one argument, not
    three: numba spends about 0.1 us per array argument on every call."""
    return np.zeros((rows + 2 * blocksize, LANES + 1))


@helper
def _split_work(work, rows, n):
    """The per-lane values (rows x LANES + 1), a block in (sample, lane)
    order (n x LANES + 1, of which the lanes use LANES), and the cutoffs'
    tans (n x LANES + 1, see _cutoff_tans)."""
    return work[:rows], work[rows:rows + n], work[rows + n:rows + 2 * n]


@helper
def _to_lanes(x, xt):
    """Transpose a block into (sample, lane) order for the channel loops."""
    channels, n = x.shape
    for c in range(channels):
        for i in range(n):
            xt[i, c] = x[c, i]


@helper
def _from_lanes(xt, out):
    channels, n = out.shape
    for c in range(channels):
        for i in range(n):
            out[c, i] = xt[i, c]


@helper
def _cutoff_tans(cutoff, tans, fmax, warp):
    """tan of every channel's cutoff at every sample into tans[i, c], and
    in tans[i, LANES] whether any changed. Each runs only when its cutoff
    changed, or comes from the previous channel at the same cutoff; kept
    apart from the filters' recursions, the calls overlap each other."""
    channels, n = cutoff.shape
    tans[:, LANES] = 0.0
    for c in range(channels):
        last = np.nan
        for i in range(n):
            f = cutoff[c, i]
            if f != last:
                if c > 0 and f == cutoff[c - 1, i]:
                    tans[i, c] = tans[i, c - 1]
                else:
                    tans[i, c] = _prewarp(f, fmax, warp)
                tans[i, LANES] = 1.0
                last = f
            else:
                tans[i, c] = tans[i - 1, c]


@helper
def _svf_damping(r):
    return BUTTERWORTH_K * (SVF_MIN_K / BUTTERWORTH_K) ** min(max(r, 0.0), 1.0)


@helper
def _svf_gains(g, k):
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


@helper
def _svf_tick(v0, a1, a2, a3, w0, wv1, w2, ic1, ic2):
    """One sample: the output and the two new integrator states."""
    v3 = v0 - ic2
    v1 = a1 * ic1 + a2 * v3
    v2 = ic2 + a2 * ic1 + a3 * v3
    return w0 * v0 + wv1 * v1 + w2 * v2, 2.0 * v1 - ic1, 2.0 * v2 - ic2


#: Rows of the vcf's per-lane scratch: the integrator states (0-1), the
#: mode's mix weights w0, wk, w1, w2 (2-5), the last res and its damping
#: k (6-7), and the gains a1, a2, a3 and band weight wk * k + w1 (8-11).
SVF_LANE_ROWS = 12


@helper(inline="always")
def _svf_coefficients(f, r, last_f, last_r, g, k, fmax, warp):
    """g, k and the gains for cutoff f and res r: tan() and pow() only
    for the one that moved since last_f and last_r."""
    if f != last_f:
        g = _prewarp(f, fmax, warp)
    if r != last_r:
        k = _svf_damping(r)
    a1, a2, a3 = _svf_gains(g, k)
    return g, k, a1, a2, a3


@helper
def _svf_alone(x, cutoff, res, m, out, ic, c, fmax, warp):
    """Channel c on its own in mode m, all state in registers."""
    n = x.shape[1]
    w0, wk, w1, w2 = SVF_MIX[m]
    ic1 = ic[c, 0]
    ic2 = ic[c, 1]
    last_f = last_r = np.nan
    g = k = a1 = a2 = a3 = wv1 = 0.0
    for i in range(n):
        f = cutoff[c, i]
        r = res[c, i]
        if f != last_f or r != last_r:
            g, k, a1, a2, a3 = _svf_coefficients(f, r, last_f, last_r, g, k, fmax, warp)
            last_f, last_r = f, r
            wv1 = wk * k + w1
        out[c, i], ic1, ic2 = _svf_tick(x[c, i], a1, a2, a3, w0, wv1, w2, ic1, ic2)
    ic[c, 0] = flush(ic1)
    ic[c, 1] = flush(ic2)


@helper
def _svf_moving(x, cutoff, res, mode, out, ic, c, fmax, warp, length):
    """Channel c in a block where its mode changes or a change still fades.
    Every mode mixes the same two integrators, so a change crossfades the
    mix weights from where they are to the new mode's over ``length``
    samples, from the change's own sample on and across blocks, as a
    number glides: a cut from lowpass to highpass clicked. Where nothing
    fades the sums are the ones _svf_alone makes, to the bit."""
    n = x.shape[1]
    ic1 = ic[c, 0]
    ic2 = ic[c, 1]
    to = ic[c, 2]
    f0, fk, f1, f2 = ic[c, 3], ic[c, 4], ic[c, 5], ic[c, 6]
    done = ic[c, 7]
    t0, tk, t1, t2 = SVF_MIX[max(int(to), 0)]
    w0, wk, w1, w2 = t0, tk, t1, t2
    last_f = last_r = np.nan
    g = k = a1 = a2 = a3 = 0.0
    for i in range(n):
        m = mode[c, i]
        if m != to:
            if to >= 0.0:   # from what is heard now, mid-fade or not
                f0, fk, f1, f2 = w0, wk, w1, w2
                done = 0.0
            to = m
            t0, tk, t1, t2 = SVF_MIX[int(m)]
            w0, wk, w1, w2 = t0, tk, t1, t2
        f = cutoff[c, i]
        r = res[c, i]
        if f != last_f or r != last_r:
            g, k, a1, a2, a3 = _svf_coefficients(f, r, last_f, last_r, g, k, fmax, warp)
            last_f, last_r = f, r
        if done < length:
            done += 1.0
            if done < length:
                u = done / length
                w0, wk, w1, w2 = f0 + (t0 - f0) * u, fk + (tk - fk) * u, f1 + (t1 - f1) * u, f2 + (t2 - f2) * u
            else:
                w0, wk, w1, w2 = t0, tk, t1, t2
        out[c, i], ic1, ic2 = _svf_tick(x[c, i], a1, a2, a3, w0, wk * k + w1, w2, ic1, ic2)
    ic[c, 0] = flush(ic1)
    ic[c, 1] = flush(ic2)
    ic[c, 2] = to
    ic[c, 3], ic[c, 4], ic[c, 5], ic[c, 6] = f0, fk, f1, f2
    ic[c, 7] = done


@helper
def _svf_still(mode, ic, c, length):
    """Whether channel c plays all block in the mode it played last block
    (or, on the first block, in one mode), with no change fading."""
    return ic[c, 7] >= length and is_steady(mode, c) and (ic[c, 2] < 0.0 or ic[c, 2] == mode[c, 0])


@helper
def _svf_each(x, cutoff, res, mode, out, ic, fmax, warp, length):
    """Every channel on its own, a changing one crossfading."""
    for c in range(x.shape[0]):
        if _svf_still(mode, ic, c, length):
            _svf_alone(x, cutoff, res, int(mode[c, 0]), out, ic, c, fmax, warp)
            ic[c, 2] = mode[c, 0]
        else:
            _svf_moving(x, cutoff, res, mode, out, ic, c, fmax, warp, length)


@helper
def _svf_shared(cutoff, res, lanes, xt, fmax, warp):
    """Every channel has the same cutoff and res: one set of gains serves
    all (their modes may differ)."""
    n = cutoff.shape[1]
    ic1 = lanes[0]
    ic2 = lanes[1]
    w0 = lanes[2]
    wk = lanes[3]
    w1 = lanes[4]
    w2 = lanes[5]
    wv1 = lanes[11]
    last_f = last_r = np.nan
    g = k = a1 = a2 = a3 = 0.0
    for i in range(n):
        f = cutoff[0, i]
        r = res[0, i]
        if f != last_f or r != last_r:
            if f != last_f:
                g = _prewarp(f, fmax, warp)
                last_f = f
            if r != last_r:
                k = _svf_damping(r)
                last_r = r
                for c in range(LANES):
                    wv1[c] = wk[c] * k + w1[c]
            a1, a2, a3 = _svf_gains(g, k)
        for c in range(LANES):
            xt[i, c], ic1[c], ic2[c] = _svf_tick(xt[i, c], a1, a2, a3, w0[c], wv1[c], w2[c], ic1[c], ic2[c])


@helper
def _svf_lanes(res, lanes, xt, tans):
    """Channels with a cutoff or res of their own: after the tans, each
    sample works out the gains of all lanes at once, as vectors, if
    anything changed, then runs the filters."""
    channels, n = res.shape
    ic1 = lanes[0]
    ic2 = lanes[1]
    w0 = lanes[2]
    wk = lanes[3]
    w1 = lanes[4]
    w2 = lanes[5]
    last_r = lanes[6]
    k = lanes[7]
    a1 = lanes[8]
    a2 = lanes[9]
    a3 = lanes[10]
    wv1 = lanes[11]
    for i in range(n):
        dirty = tans[i, LANES] != 0.0
        for c in range(channels):
            r = res[c, i]
            if r != last_r[c]:
                k[c] = k[c - 1] if c > 0 and r == last_r[c - 1] else _svf_damping(r)
                last_r[c] = r
                dirty = True
        if dirty:
            for c in range(LANES):
                a1[c], a2[c], a3[c] = _svf_gains(tans[i, c], k[c])
                wv1[c] = wk[c] * k[c] + w1[c]
        for c in range(LANES):
            xt[i, c], ic1[c], ic2[c] = _svf_tick(xt[i, c], a1[c], a2[c], a3[c], w0[c], wv1[c], w2[c], ic1[c], ic2[c])


@kernel
def _svf_kernel(x, cutoff, res, mode, out, ic, work, samplerate):
    """Andrew Simper's (Cytomic) trapezoidal SVF, all channels in one call.

    tan() and the pow of the resonance run only when their parameter
    changes, and once for channels that share its value (one LFO on every
    voice). The filter gains are pure functions of those, so a lane
    computes them, or copies them, exactly as alone.

    ``ic[c]`` holds channel c's integrators, the mode it plays (-1 before
    the first block), the mix weights a change fades from and the samples
    of that fade done: a block where any channel's mode changes or fades
    runs every channel alone (see _svf_moving).
    """
    channels, n = x.shape
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    length = mode_fade(samplerate)
    lanes, xt, tans = _split_work(work, SVF_LANE_ROWS, n)
    if channels <= FEW:
        # Its recursion is short, so a few channels gain little from running
        # side by side.
        _svf_each(x, cutoff, res, mode, out, ic, fmax, warp, length)
        return
    shared = True
    moving = 0
    for c in range(channels):
        lanes[0, c] = ic[c, 0]
        lanes[1, c] = ic[c, 1]
        lanes[2, c], lanes[3, c], lanes[4, c], lanes[5, c] = SVF_MIX[int(mode[c, 0])]
        lanes[6, c] = np.nan
        shared = shared and (c == 0 or (same_as_previous(cutoff, c) and same_as_previous(res, c)))
        moving += not _svf_still(mode, ic, c, length)
    if moving:
        _svf_each(x, cutoff, res, mode, out, ic, fmax, warp, length)
        return
    _to_lanes(x, xt)
    if shared:
        _svf_shared(cutoff, res, lanes, xt, fmax, warp)
    else:
        _cutoff_tans(cutoff, tans, fmax, warp)
        _svf_lanes(res, lanes, xt, tans)
    _from_lanes(xt, out)
    for c in range(channels):
        ic[c, 0] = flush(lanes[0, c])
        ic[c, 1] = flush(lanes[1, c])
        ic[c, 2] = mode[c, 0]


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
              doc="which response: bandpass peaks at Q x input, notch removes the cutoff; "
                  "a change crossfades over 5 ms from its sample"),
    )
    state_fields = ("ic",)

    def setup(self):
        # Integrators, mode, the weights a change fades from, the fade's samples done.
        self.ic = np.zeros((self.channels, 8))
        self.ic[:, 2] = -1.0
        self.ic[:, 7] = np.inf
        self._work = _work(SVF_LANE_ROWS, self.blocksize)

    def process(self, inputs, params, outputs):
        _svf_kernel(inputs["in"], params["cutoff"], params["res"], params["mode"],
                    outputs["out"], self.ic, self._work, self.samplerate)


@helper
def _saturate(u):
    """tanh to within 0.024, landing smoothly on +/-1 at +/-3 (slope 0):
    this rational function costs a fraction of libm's tanh."""
    if u > 3.0:
        return 1.0
    if u < -3.0:
        return -1.0
    u2 = u * u
    return u * (27.0 + u2) / (27.0 + 9.0 * u2)


@helper
def _ladder_feedback(r):
    return LADDER_MAX_K * min(max(r, 0.0), 1.0)


@helper
def _ladder_drive(d):
    return LADDER_MAX_DRIVE ** min(max(d, 0.0), 1.0)


@helper
def _ladder_gains(g, k):
    """Stage gain G and state gain h of the one-poles, and the input and
    feedback gains of the loop solved for its input."""
    h = 1.0 / (1.0 + g)
    G = g * h
    loop_gain = 1.0 / (1.0 + k * (G * G * G * G))
    return G, h, (1.0 + LADDER_COMPENSATION * k) * loop_gain, k * loop_gain


@helper
def _ladder_tick(x, G, h, in_gain, k_loop, gain, s1, s2, s3, s4):
    """One sample: the output and the four new stage states."""
    # Each stage's output is G * its input + h * its state, so the
    # fourth is G^4 * u + S: solve u = in - k * y4 for u.
    S = h * (G * (G * (G * s1 + s2) + s3) + s4)
    u = _saturate(x * gain * in_gain - k_loop * S)
    # Written as G * input + h * state, each stage adds one multiply
    # and one add to the chain that bounds the speed of the loop.
    y1 = G * u + h * s1
    y2 = G * y1 + h * s2
    y3 = G * y2 + h * s3
    y4 = G * y3 + h * s4
    return y4, 2.0 * y1 - s1, 2.0 * y2 - s2, 2.0 * y3 - s3, 2.0 * y4 - s4


#: Rows of the ladder's per-lane scratch: the four stage states (0-3); the
#: last res and drive (4-5); feedback and drive gain (6-7); the gains G, h,
#: in_gain and k_loop (8-11); the res of the sample before, for SINGS (12).
LADDER_LANE_ROWS = 13


@helper
def _seed(before, r, state):
    """The first stage's state, with SEED in it if res has just reached SINGS."""
    return state + SEED if r >= SINGS and not before >= SINGS else state


@helper
def _ladder_update(cache, f, r, d, fmax, warp):
    """The new cache = (cutoff, res, drive, tan, G, h, in_gain, k_loop, gain)
    for parameters f, r, d; tan() and pow() run only when theirs changed."""
    last_f, last_r, last_d, g, G, h, in_gain, k_loop, gain = cache
    if f != last_f or r != last_r:
        if f != last_f:
            g = _prewarp(f, fmax, warp)
        G, h, in_gain, k_loop = _ladder_gains(g, _ladder_feedback(r))
    if d != last_d:
        gain = _ladder_drive(d)
    return f, r, d, g, G, h, in_gain, k_loop, gain


#: The cache of _ladder_update before the first sample of a block.
NO_CACHE = (np.nan, np.nan, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@helper
def _ladder_alone(x, cutoff, res, drive, out, lanes, fmax, warp):
    """One channel: its states in registers, straight into the output."""
    n = x.shape[1]
    cache = NO_CACHE
    t1, t2, t3, t4 = lanes[0, 0], lanes[1, 0], lanes[2, 0], lanes[3, 0]
    before = lanes[12, 0]
    for i in range(n):
        if res[0, i] != before:
            t1 = _seed(before, res[0, i], t1)
            before = res[0, i]
        cache = _ladder_update(cache, cutoff[0, i], res[0, i], drive[0, i], fmax, warp)
        out[0, i], t1, t2, t3, t4 = _ladder_tick(
            x[0, i], cache[4], cache[5], cache[6], cache[7], cache[8], t1, t2, t3, t4)
    lanes[0, 0], lanes[1, 0], lanes[2, 0], lanes[3, 0] = t1, t2, t3, t4
    lanes[12, 0] = before


@helper
def _ladder_shared(cutoff, res, drive, lanes, xt, width, fmax, warp):
    """Every channel has the same parameters: one set of gains serves all."""
    n = cutoff.shape[1]
    s1 = lanes[0]
    s2 = lanes[1]
    s3 = lanes[2]
    s4 = lanes[3]
    cache = NO_CACHE
    before = res[0, 0]
    for c in range(width):   # each from the res it heard last: the block before may have had its own
        s1[c] = _seed(lanes[12, c], before, s1[c])
    for i in range(n):
        if res[0, i] != before:
            for c in range(width):
                s1[c] = _seed(before, res[0, i], s1[c])
            before = res[0, i]
        cache = _ladder_update(cache, cutoff[0, i], res[0, i], drive[0, i], fmax, warp)
        G, h, in_gain, k_loop, gain = cache[4], cache[5], cache[6], cache[7], cache[8]
        for c in range(width):
            xt[i, c], s1[c], s2[c], s3[c], s4[c] = _ladder_tick(
                xt[i, c], G, h, in_gain, k_loop, gain, s1[c], s2[c], s3[c], s4[c])
    lanes[12, :width] = before


@helper
def _ladder_lanes(res, drive, lanes, xt, tans, width):
    """Channels with parameters of their own: after the tans, each sample
    works out the gains of all lanes at once, as vectors, if anything
    changed, then runs the filters."""
    channels, n = res.shape
    s1 = lanes[0]
    s2 = lanes[1]
    s3 = lanes[2]
    s4 = lanes[3]
    last_r = lanes[4]
    last_d = lanes[5]
    k = lanes[6]
    gain = lanes[7]
    G = lanes[8]
    h = lanes[9]
    in_gain = lanes[10]
    k_loop = lanes[11]
    for i in range(n):
        dirty = tans[i, LANES] != 0.0
        for c in range(channels):
            r = res[c, i]
            d = drive[c, i]
            if r != last_r[c]:
                k[c] = _ladder_feedback(r)
                last_r[c] = r
                dirty = True
                if r != lanes[12, c]:
                    s1[c] = _seed(lanes[12, c], r, s1[c])
                    lanes[12, c] = r
            if d != last_d[c]:
                gain[c] = gain[c - 1] if c > 0 and d == last_d[c - 1] else _ladder_drive(d)
                last_d[c] = d
        if dirty:
            for c in range(width):
                G[c], h[c], in_gain[c], k_loop[c] = _ladder_gains(tans[i, c], k[c])
        for c in range(width):
            xt[i, c], s1[c], s2[c], s3[c], s4[c] = _ladder_tick(
                xt[i, c], G[c], h[c], in_gain[c], k_loop[c], gain[c], s1[c], s2[c], s3[c], s4[c])


@kernel
def _ladder_kernel(x, cutoff, res, drive, out, stages, work, samplerate):
    """Zavalishin's TPT ladder: four trapezoidal one-poles in a loop.

    The loop is solved exactly for the linear filter, then the input of the
    first stage is saturated. That one saturator keeps self-oscillation at
    a steady level and gives the Moog its growl, at one per sample instead
    of one per stage.

    tan() and pow() run only when their parameter changes, and once for
    channels that share its value (one LFO on every voice); the gains are
    pure functions of them, so a lane computes them, or copies them,
    exactly as alone.
    """
    channels, n = x.shape
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    lanes, xt, tans = _split_work(work, LADDER_LANE_ROWS, n)
    shared = True
    for c in range(channels):
        for q in range(4):
            lanes[q, c] = stages[c, q]
        lanes[12, c] = stages[c, 4]
        lanes[4, c] = lanes[5, c] = np.nan
        shared = shared and (c == 0 or (same_as_previous(cutoff, c) and same_as_previous(res, c)
                                        and same_as_previous(drive, c)))
    if channels == 1:
        _ladder_alone(x, cutoff, res, drive, out, lanes, fmax, warp)
    else:
        width = _lane_count(channels)
        _to_lanes(x, xt)
        if shared:
            _ladder_shared(cutoff, res, drive, lanes, xt, width, fmax, warp)
        else:
            _cutoff_tans(cutoff, tans, fmax, warp)
            _ladder_lanes(res, drive, lanes, xt, tans, width)
        _from_lanes(xt, out)
    for c in range(channels):
        for q in range(4):
            stages[c, q] = flush(lanes[q, c])
        stages[c, 4] = lanes[12, c]


class Ladder(Module):
    type_name = "ladder"
    description = "Moog-style 4-pole ladder lowpass, 24 dB/oct, saturating, self-oscillates at full res"
    inputs = (Port("in", AUDIO, "signal to filter"),)
    outputs = (Port("out", AUDIO, "filtered signal"),)
    params = (
        Param("cutoff", 1000.0, 20.0, 20000.0, "Hz",
              doc="cutoff frequency, where the resonance peaks and it sings (at res 0 its four poles there "
                  "make it -12 dB, -3 dB at 0.44 x cutoff; nearer the top the slope below it steepens, -3 dB "
                  "at 0.52 x a 12 kHz cutoff at 48 kHz); modulation is held within 10 Hz..0.49 x samplerate"),
        Param("res", 0.0, 0.0, 1.0,
              doc="resonance: from about 0.9 the filter sings a sine at the cutoff on its own"),
        Param("drive", 0.0, 0.0, 1.0,
              doc="input gain into the saturating stage, exponential: 0 is x1, 1 is x10 (+20 dB) for grit"),
    )
    state_fields = ("stages",)

    def setup(self):
        self.stages = np.zeros((self.channels, 5))   # the four stages' states, and the res they last heard
        self._work = _work(LADDER_LANE_ROWS, self.blocksize)

    def process(self, inputs, params, outputs):
        _ladder_kernel(inputs["in"], params["cutoff"], params["res"], params["drive"],
                       outputs["out"], self.stages, self._work, self.samplerate)


#: The shelves' damping: Q = 1/sqrt(2), the steepest shelf that does not
#: overshoot its gain (the cookbook's shelf slope S = 1).
SHELF_K = math.sqrt(2.0)
#: Range of each band's gain, set or modulated.
MAX_EQ_DB = 24.0
MIN_EQ_Q, MAX_EQ_Q = 0.1, 10.0


@helper
def _eq_band(co, b, g, k, m0, m1, m2):
    a1, a2, a3 = _svf_gains(g, k)
    co[b, 0] = a1
    co[b, 1] = a2
    co[b, 2] = a3
    co[b, 3] = m0
    co[b, 4] = m1
    co[b, 5] = m2


@helper
def _eq_design(co, low, low_f, mid, mid_f, q, high, high_f, fmax, warp):
    """Simper's shelf and bell mixes of one SVF each ("Solving the
    continuous SVF equations using trapezoidal integration", 2013): the
    analog cookbook prototypes, prewarped at their frequencies. At 0 dB
    every band's mix is the input alone, exactly, so a flat eq passes its
    signal bit for bit."""
    a = 10.0 ** (min(max(low, -MAX_EQ_DB), MAX_EQ_DB) / 40.0)
    _eq_band(co, 0, _prewarp(low_f, fmax, warp) / math.sqrt(a), SHELF_K, 1.0, SHELF_K * (a - 1.0), a * a - 1.0)
    a = 10.0 ** (min(max(mid, -MAX_EQ_DB), MAX_EQ_DB) / 40.0)
    k = 1.0 / (min(max(q, MIN_EQ_Q), MAX_EQ_Q) * a)
    _eq_band(co, 1, _prewarp(mid_f, fmax, warp), k, 1.0, k * (a * a - 1.0), 0.0)
    a = 10.0 ** (min(max(high, -MAX_EQ_DB), MAX_EQ_DB) / 40.0)
    _eq_band(co, 2, _prewarp(high_f, fmax, warp) * math.sqrt(a), SHELF_K, a * a, SHELF_K * (1.0 - a) * a,
             1.0 - a * a)


@kernel
def _eq_kernel(x, low, low_f, mid, mid_f, q, high, high_f, out, ic, co, samplerate):
    """Three SVFs in series, each channel on its own. The bands' gains are
    worked out again only on a sample where a parameter has changed: a
    set value (or a glide's last sample) holds for blocks on end."""
    channels, n = x.shape
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    for c in range(channels):
        was = (np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan)
        s0, s1, s2, s3, s4, s5 = ic[c, 0], ic[c, 1], ic[c, 2], ic[c, 3], ic[c, 4], ic[c, 5]
        for i in range(n):
            now = (low[c, i], low_f[c, i], mid[c, i], mid_f[c, i], q[c, i], high[c, i], high_f[c, i])
            if now != was:
                was = now
                _eq_design(co, now[0], now[1], now[2], now[3], now[4], now[5], now[6], fmax, warp)
            v, s0, s1 = _svf_tick(x[c, i], co[0, 0], co[0, 1], co[0, 2], co[0, 3], co[0, 4], co[0, 5], s0, s1)
            v, s2, s3 = _svf_tick(v, co[1, 0], co[1, 1], co[1, 2], co[1, 3], co[1, 4], co[1, 5], s2, s3)
            out[c, i], s4, s5 = _svf_tick(v, co[2, 0], co[2, 1], co[2, 2], co[2, 3], co[2, 4], co[2, 5], s4, s5)
        ic[c, 0], ic[c, 1], ic[c, 2] = flush(s0), flush(s1), flush(s2)
        ic[c, 3], ic[c, 4], ic[c, 5] = flush(s3), flush(s4), flush(s5)


class Eq(Module):
    type_name = "eq"
    description = "Three-band equaliser: a low shelf, a bell in the middle and a high shelf"
    inputs = (Port("in", AUDIO, "signal to shape"),)
    outputs = (Port("out", AUDIO, "the signal, louder or softer by band (all at 0 dB: unchanged, bit for bit)"),)
    params = (
        Param("low", 0.0, -MAX_EQ_DB, MAX_EQ_DB, "dB", doc="gain of everything below lowfreq"),
        Param("lowfreq", 200.0, 20.0, 20000.0, "Hz", doc="the low shelf's midpoint, where it gives half its gain"),
        Param("mid", 0.0, -MAX_EQ_DB, MAX_EQ_DB, "dB", doc="gain of the bell at midfreq"),
        Param("midfreq", 1000.0, 20.0, 20000.0, "Hz", doc="the bell's centre"),
        Param("q", 0.7, MIN_EQ_Q, MAX_EQ_Q, doc="the bell's sharpness: 0.7 is broad (two octaves), 5 a narrow notch"),
        Param("high", 0.0, -MAX_EQ_DB, MAX_EQ_DB, "dB", doc="gain of everything above highfreq"),
        Param("highfreq", 4000.0, 20.0, 20000.0, "Hz", doc="the high shelf's midpoint, where it gives half its gain"),
    )
    state_fields = ("ic",)

    def setup(self):
        self.ic = np.zeros((self.channels, 6))
        self._co = np.zeros((3, 6))   # per band: the SVF's gains a1, a2, a3 and its mix m0, m1, m2

    def process(self, inputs, params, outputs):
        _eq_kernel(inputs["in"], params["low"], params["lowfreq"], params["mid"], params["midfreq"], params["q"],
                   params["high"], params["highfreq"], outputs["out"], self.ic, self._co, self.samplerate)


MODULES = (Vcf, Ladder, Eq)
