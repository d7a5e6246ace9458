"""Sound and modulation sources: vco, supersaw, fm, lfo, noise."""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, C4_HZ, CONTROL, Module, Param, Port
from ..engine.jit import helper, kernel
from .dsp import held_until, is_steady, random_step, sin_turns

VCO_WAVES = ("sine", "saw", "square", "triangle", "pulse")
SINE, SAW, SQUARE, TRIANGLE, PULSE = range(5)
LFO_WAVES = ("sine", "triangle", "saw", "square", "random")
LFO_SINE, LFO_TRIANGLE, LFO_SAW, LFO_SQUARE = range(4)  # and random
NOISE_COLORS = ("white", "pink", "brown")
PINK, BROWN = 1, 2

#: Samples a band-limited edge reaches on each side, hence also the vco's
#: latency. Edges go through a linear-phase kernel, so the vco delays its
#: output by this much to add the half of each edge that precedes it.
TAPS = 16
MASK = 2 * TAPS - 1
#: Table points per sample; linear interpolation between them keeps the
#: table error below the kernel's own stopband.
OVERSAMPLE = 128
#: Kernel cutoff (fraction of the sample rate) and Kaiser window shape; at
#: 48 kHz: flat to 17 kHz, -5 dB at 20 kHz, 80 dB down from 24 kHz on.
CUTOFF = 0.42
KAISER_BETA = 8.0
#: A band-limited edge rings (Gibbs) about 9% of its height past the level
#: it settles to, and a square above fs/6 is a lone sine 4/pi taller than the
#: square; these gains keep every pitch, and pitch jumps between them, within
#: +/-1 (the tests sweep 20 Hz..23 kHz). Audio-rate FM is not band-limited.
SAW_GAIN = 0.85
SQUARE_GAIN = 0.76
#: Highest phase increment: the frequency stays below Nyquist however hard
#: voct and fm push it, so at most one wrap happens per sample.
MAX_INC = 0.49
PW_MIN = 0.01
#: Samples over which a change of waveform crossfades (0.33 ms at 48 kHz),
#: as many as the ring holds ahead: switched outright, the jump clicks, and
#: the band-limited edges of the new wave's first samples, made for its
#: own level, land on the old wave's last ones.
XFADE = TAPS
#: Time since an edge is kept below one sample: the table lookups rely on it.
LATEST = 1.0 - 1e-12

#: Makes pink's RMS about half of white's: pink is close to Gaussian, and at
#: white's RMS one sample in twelve would pass full scale.
PINK_GAIN = 0.16
#: Brown noise is white noise through a leaky integrator, -6 dB per octave
#: above its corner (20 Hz at 48 kHz), flat below it, where a true
#: integrator would wander off without bound. The step gives it pink's
#: RMS: sqrt(3 x 0.2825^2 x (1 - leak^2)), white's variance being 1/3.
BROWN_LEAK = math.exp(-2.0 * math.pi * 20.0 / 48000.0)
BROWN_STEP = math.sqrt(3.0 * 0.2825**2 * (1.0 - BROWN_LEAK**2))
MAX_SEED = 2.0**31 - 1


def _edge_tables() -> tuple[np.ndarray, np.ndarray]:
    """A unit step and a unit ramp (slope change of 1 per sample) as seen
    through the kernel, tabulated from TAPS samples before the edge to TAPS
    after. They stay smooth across the edge, which interpolation needs;
    `_edge` subtracts the naive step or ramp itself."""
    t = np.arange(-TAPS * OVERSAMPLE, TAPS * OVERSAMPLE + 1) / OVERSAMPLE
    kernel = np.sinc(2 * CUTOFF * t) * np.kaiser(t.size, KAISER_BETA)
    step = np.concatenate(([0.0], np.cumsum(kernel[1:] + kernel[:-1])))
    step /= step[-1]
    ramp = np.concatenate(([0.0], np.cumsum(step[1:] + step[:-1]) / (2 * OVERSAMPLE)))
    return step, ramp


_STEP, _RAMP = _edge_tables()


@helper
def _since(overshoot, inc):
    """Samples since the phase crossed a point it is now `overshoot` past.
    Kept below one sample, also at zero frequency or when a swept pulse
    width left the phase behind it."""
    return overshoot / inc if overshoot < inc * LATEST else LATEST


@helper
def _edge(buf, pos, since, size, ramp, weight):
    """Turn the naive jump (or, with ramp, slope change) that happened `since`
    samples before the sample at `pos` into a band-limited one, by adding the
    difference to the TAPS samples either side of it in the ring buffer.
    `weight` = (w0, w1): in a crossfade each of those samples takes the
    difference times its own weight, w0 + w1 * j within 0..1."""
    table = _RAMP if ramp else _STEP
    w0, w1 = weight
    for j in range(2 * TAPS):
        x = (j + since) * OVERSAMPLE
        k = int(x)
        v = table[k] + (x - k) * (table[k + 1] - table[k])
        if j >= TAPS:
            v -= (j - TAPS + since) if ramp else 1.0
        buf[(pos + TAPS + j) & MASK] += size * v * min(max(w0 + w1 * j, 0.0), 1.0)


@helper
def _ago(overshoot, inc, late):
    """Samples since the phase crossed a point it is now `overshoot` past,
    plus `late`: the samples from where a sync stopped the phase to the
    current sample (0 without one). Below one sample, as _since."""
    return min(_since(overshoot, inc) + late, LATEST)


@helper
def _level(shape, p, hi, w, jump):
    """The naive wave at phase p."""
    if shape == SINE:
        return math.sin(2.0 * math.pi * p)
    if shape == SAW:
        return SAW_GAIN * (2.0 * p - 1.0)
    if shape == TRIANGLE:
        return 4.0 * p - 1.0 if p < 0.5 else 3.0 - 4.0 * p
    return jump * (1.0 - w if hi else -w)


@helper
def _slope(shape, p, inc):
    """The naive wave's change per sample at phase p (the saw's and the
    pulse's do not change where they restart)."""
    if shape == SINE:
        return 2.0 * math.pi * inc * math.cos(2.0 * math.pi * p)
    if shape == TRIANGLE:
        return 4.0 * inc if p < 0.5 else -4.0 * inc
    return 0.0


@helper
def _restart(shape, p, hi, inc, w, jump, buf, pos, weight, late):
    """A hard sync `late` samples ago, at phase p: the jump from the wave's
    level there to its level at the start of a cycle, and for the sine and
    the triangle the bend in its slope, through the band-limited step (and
    ramp) every edge goes through."""
    ago = min(late, LATEST)
    _edge(buf, pos, ago, _level(shape, 0.0, True, w, jump) - _level(shape, p, hi, w, jump), False, weight)
    if shape == SINE or shape == TRIANGLE:
        _edge(buf, pos, ago, _slope(shape, 0.0, inc) - _slope(shape, p, inc), True, weight)


@helper(inline="always")
def _vco_channel(shape, synced, c, inputs, state, out, samplerate, start, stop, fade):
    """Channel c's samples `start` to `stop`: the new phase, pulse level and
    last sync sample. `shape` is always a constant, so each waveform gets a
    loop of its own, free of the others. `fade` is 0, or in the first
    XFADE samples of a change of waveform, 1 for the new wave fading in and
    -1 for the old one fading out: each of their samples then takes its
    weight in the crossfade, and only the old wave's pass sends samples out.

    `synced`, a constant too, says whether the sync input may rise through
    zero in these samples; the loop without it reads no sync input. Where
    it does (between two samples, placed by linear interpolation), the
    phase runs only to that point, its crossings timed `late` samples
    earlier, then _restart band-limits the jump back to the cycle's start
    and the phase goes on from 0: a synced saw aliases no more than a free
    one."""
    voct, fm, freq, pw, fmdepth, sync = inputs
    p, hi, buf, pos, last = state
    # The increment, its pow and its division, only when an input to it
    # changes; a held note without FM has one for the whole block.
    steady = is_steady(freq, c) and is_steady(voct, c) and is_steady(fm, c) and is_steady(fmdepth, c)
    last_f = last_v = last_m = last_d = np.nan
    base = inc = 0.0
    weight = (1.0, 0.0)
    for i in range(start, stop):
        f = freq[c, i]
        v = voct[c, i]
        m = fm[c, i]
        d = fmdepth[c, i]
        if (i == start or not steady) and (f != last_f or v != last_v or m != last_m or d != last_d):
            if f != last_f or v != last_v:
                base = f * 2.0 ** v
                last_f = f
                last_v = v
            last_m = m
            last_d = d
            inc = min(max(base * (1.0 + m * d) / samplerate, 0.0), MAX_INC)
        if fade:
            # Sample k of the crossfade weighs the new wave (k + 1) / (XFADE + 1);
            # an edge at sample i reaches the ring's samples i - TAPS .. i + TAPS.
            rise = (i - start - TAPS + 1.0) / (XFADE + 1.0)
            weight = (rise, 1.0 / (XFADE + 1.0)) if fade > 0 else (1.0 - rise, -1.0 / (XFADE + 1.0))
        prev = p
        late = 0.0
        if synced:
            s = sync[c, i]
            if last <= 0.0 < s:
                late = s / (s - last)   # samples since the input crossed zero, within (0, 1]
            last = s
        p += inc * (1.0 - late)
        if shape == SINE:
            if p >= 1.0:
                p -= 1.0
            if late:
                _restart(shape, p, hi, inc, 0.5, 0.0, buf, pos, weight, late)
                p = inc * late
            value = math.sin(2.0 * math.pi * p)
        elif shape == SAW:
            if p >= 1.0:
                p -= 1.0
                _edge(buf, pos, _ago(p, inc, late), -2.0 * SAW_GAIN, False, weight)
            if late:
                _restart(shape, p, hi, inc, 0.5, 0.0, buf, pos, weight, late)
                p = inc * late
            value = SAW_GAIN * (2.0 * p - 1.0)
        elif shape == TRIANGLE:
            if prev < 0.5 <= p:
                _edge(buf, pos, _ago(p - 0.5, inc, late), -8.0 * inc, True, weight)
            if p >= 1.0:
                p -= 1.0
                _edge(buf, pos, _ago(p, inc, late), 8.0 * inc, True, weight)
            if late:
                _restart(shape, p, hi, inc, 0.5, 0.0, buf, pos, weight, late)
                p = inc * late
            value = 4.0 * p - 1.0 if p < 0.5 else 3.0 - 4.0 * p
        else:
            # The level follows `hi`, which only an edge flips: a pulse
            # width swept past the phase gives a late edge, not a jump.
            w = _width(shape, pw[c, i])
            jump = SQUARE_GAIN / max(w, 1.0 - w)
            if hi and p >= w:
                _edge(buf, pos, _ago(p - w, inc, late), -jump, False, weight)
                hi = False
            if p >= 1.0:
                p -= 1.0
                _edge(buf, pos, _ago(p, inc, late), jump, False, weight)
                hi = True
                if p >= w:
                    _edge(buf, pos, _ago(p - w, inc, late), -jump, False, weight)
                    hi = False
            if late:
                _restart(shape, p, hi, inc, w, jump, buf, pos, weight, late)
                p = inc * late
                hi = True
                if p >= w:
                    _edge(buf, pos, _since(p - w, inc), -jump, False, weight)
                    hi = False
            value = jump * (1.0 - w if hi else -w)
        if fade:
            a = (i - start + 1.0) / (XFADE + 1.0)
            value *= a if fade > 0 else 1.0 - a
        buf[pos] += value
        if fade <= 0:
            done = (pos + TAPS) & MASK
            out[c, i] = buf[done]
            buf[done] = 0.0
        pos = (pos + 1) & MASK
    if not synced and stop > start:
        last = sync[c, stop - 1]
    return p, hi, last


@helper(inline="always")
def _width(shape, pw):
    return 0.5 if shape == SQUARE else min(max(pw, PW_MIN), 1.0 - PW_MIN)


@helper
def _vco_block(shape, synced, c, inputs, state, out, samplerate, start, stop, fade):
    """_vco_channel for a waveform and a sync known only as the program
    runs: one loop for each, so a vco without sync pays nothing for it."""
    if synced:
        if shape == SINE:
            return _vco_channel(SINE, True, c, inputs, state, out, samplerate, start, stop, fade)
        if shape == SAW:
            return _vco_channel(SAW, True, c, inputs, state, out, samplerate, start, stop, fade)
        if shape == TRIANGLE:
            return _vco_channel(TRIANGLE, True, c, inputs, state, out, samplerate, start, stop, fade)
        if shape == SQUARE:
            return _vco_channel(SQUARE, True, c, inputs, state, out, samplerate, start, stop, fade)
        return _vco_channel(PULSE, True, c, inputs, state, out, samplerate, start, stop, fade)
    if shape == SINE:
        return _vco_channel(SINE, False, c, inputs, state, out, samplerate, start, stop, fade)
    if shape == SAW:
        return _vco_channel(SAW, False, c, inputs, state, out, samplerate, start, stop, fade)
    if shape == TRIANGLE:
        return _vco_channel(TRIANGLE, False, c, inputs, state, out, samplerate, start, stop, fade)
    if shape == SQUARE:
        return _vco_channel(SQUARE, False, c, inputs, state, out, samplerate, start, stop, fade)
    return _vco_channel(PULSE, False, c, inputs, state, out, samplerate, start, stop, fade)


@kernel
def _vco_kernel(voct, fm, sync, freq, wave, pw, fmdepth, out, phase, high, ring, shapes, heard, cursor, samplerate):
    channels, n = out.shape
    for c in range(channels):
        inputs = (voct, fm, freq, pw, fmdepth, sync)
        # A sync input that holds one value all block long can rise through
        # zero only at its first sample; most vcos have none plugged in.
        synced = not is_steady(sync, c) or heard[c] <= 0.0 < sync[c, 0]
        # The cursor provably in range spares every access a negative-index fix-up.
        base = cursor[0] & MASK
        p, hi, last = phase[c], high[c], heard[c]
        playing = shapes[c]
        start = 0
        while start < n:
            shape = int(wave[c, start])
            stop = held_until(wave, c, start, n)
            if 0 <= playing != shape:
                if n - start >= XFADE:
                    # A change of waveform, on its sample. The old wave's pass
                    # fades it out and sends out the samples, which only it
                    # reaches; the new wave's pass (a pulse starting as it would
                    # be at this phase) fades in over the same samples, and its
                    # loop goes on from there.
                    state = (p, hi, ring[c], (base + start) & MASK, last)
                    # int() keeps numba from compiling _vco_block once more for each
                    # constant it is passed here (as a Literal type): three more copies
                    # of its ten loops took 40 of the 70 s this kernel took to compile.
                    _vco_block(playing, synced, c, inputs, state, out, samplerate, int(start), start + XFADE, int(-1))
                    new = (p, p < _width(shape, pw[c, start]), ring[c], (base + start) & MASK, last)
                    p, hi, last = _vco_block(shape, synced, c, inputs, new, out, samplerate,
                                             int(start), start + XFADE, int(1))
                    start += XFADE
                    stop = max(stop, start)
                elif n >= XFADE:
                    # Too near the block's end for the crossfade: the old wave
                    # plays on, and the next block starts with the change.
                    shape, stop = playing, n
            playing = shape
            state = (p, hi, ring[c], (base + start) & MASK, last)
            # Without sync, each waveform's loop is inlined here: through
            # _vco_block it cost 0.8 ns more a sample (16 voices of saw).
            if synced:
                p, hi, last = _vco_block(shape, True, c, inputs, state, out, samplerate, int(start), stop, 0)
            elif shape == SINE:
                p, hi, last = _vco_channel(SINE, False, c, inputs, state, out, samplerate, start, stop, 0)
            elif shape == SAW:
                p, hi, last = _vco_channel(SAW, False, c, inputs, state, out, samplerate, start, stop, 0)
            elif shape == TRIANGLE:
                p, hi, last = _vco_channel(TRIANGLE, False, c, inputs, state, out, samplerate, start, stop, 0)
            elif shape == SQUARE:
                p, hi, last = _vco_channel(SQUARE, False, c, inputs, state, out, samplerate, start, stop, 0)
            else:
                p, hi, last = _vco_channel(PULSE, False, c, inputs, state, out, samplerate, start, stop, 0)
            start = stop
        phase[c], high[c], heard[c], shapes[c] = p, hi, last, playing
    cursor[0] = (cursor[0] + n) & MASK


class Vco(Module):
    """Saw, square and pulse edges are band-limited by a windowed-sinc step
    table (triangle corners by its integral), which keeps aliasing out of
    the audible band even at high pitches where PolyBLEP leaks; the price is
    TAPS samples of latency. The pulse is DC-free and peak-normalised, so a
    narrow pulse is quieter, as an AC-coupled analog one is."""

    type_name = "vco"
    description = "Band-limited oscillator: sine, saw, square, triangle, pulse; V/oct pitch, linear FM, hard sync"
    inputs = (
        Port("voct", CONTROL, "pitch in volts per octave: each volt doubles freq"),
        Port("fm", AUDIO, "linear FM: frequency is scaled by 1 + fm x fmdepth"),
        Port("sync", AUDIO, "hard sync: each rising zero crossing (another vco, say) restarts the cycle, "
                            "band-limited; tune this vco above that one for the classic sync sweep"),
    )
    outputs = (Port("out", AUDIO, "the waveform, within +/-1, 16 samples (0.33 ms at 48 kHz) behind its phase, "
                                  "as its band-limited edges reach that far ahead; synced, the edges a restart "
                                  "adds ring past +/-1 (up to 16 % for a triangle, 39 % for a square synced "
                                  "near Nyquist)"),)
    params = (
        Param("freq", C4_HZ, 0.01, 20000.0, "Hz",
              doc="frequency at voct 0; the default C4 lets a note source play true pitches"),
        Param("wave", "saw", choices=VCO_WAVES,
              doc="waveform; a change crossfades over 16 samples from its sample, without a click "
                  "(one in the last 15 samples of a block, from the next block's start)"),
        Param("pw", 0.5, 0.01, 0.99, doc="pulse width: the high fraction of each pulse cycle"),
        Param("fmdepth", 1.0, 0.0, 10.0, "x", doc="scales the fm input"),
    )
    state_fields = ("phase", "high", "ring", "shapes", "heard", "cursor")

    def setup(self):
        self.phase = np.zeros(self.channels)
        self.high = np.ones(self.channels, dtype=np.bool_)  # phase 0 starts a pulse high
        self.ring = np.zeros((self.channels, 2 * TAPS))
        self.shapes = np.full(self.channels, -1, dtype=np.int64)   # the last block's waveform; none yet
        self.heard = np.zeros(self.channels)   # the sync input's last sample
        self.cursor = np.zeros(1, dtype=np.int64)

    def process(self, inputs, params, outputs):
        _vco_kernel(inputs["voct"], inputs["fm"], inputs["sync"], params["freq"], params["wave"], params["pw"],
                    params["fmdepth"], outputs["out"], self.phase, self.high, self.ring,
                    self.shapes, self.heard, self.cursor, self.samplerate)


#: The Roland JP-8000's super saw, as Adam Szabo measured it ("How to
#: Emulate the Super Saw", 2010): seven saws, each this fraction above or
#: below the played pitch at full detune (the centre one on it).
SUPERSAW_OFFSETS = (-0.11002313, -0.06288439, -0.01952356, 0.0, 0.01991221, 0.06216538, 0.10745242)
SAWS = len(SUPERSAW_OFFSETS)
CENTRE = SAWS // 2
#: The detune knob's curve (Szabo's fit, highest power first): gentle over
#: most of its travel, the last tenth leaping from 0.35 to full.
DETUNE_CURVE = (10028.7312891634, -50818.8652045924, 111363.4808729368, -138150.6761080548,
                106649.6679158292, -53046.9642751875, 17019.9518580080, -3425.0836591318,
                404.2703938388, -24.1878824391, 0.6717417634, 0.0030115596)
#: Where each saw starts, in turns: spread by the golden ratio, so no two
#: line up and no two channels start alike.
GOLDEN_TURN = 0.6180339887498949


@helper
def _supersaw_gains(mix, gains):
    """The centre's and the sides' gains for ``mix`` (Szabo's fits),
    scaled so the seven, never in phase, have one saw's loudness."""
    m = min(max(mix, 0.0), 1.0)
    centre = -0.55366 * m + 0.99785
    side = -0.73764 * m * m + 1.2841 * m + 0.044372
    scale = SAW_GAIN / math.sqrt(centre * centre + (SAWS - 1) * side * side)
    for k in range(SAWS):
        gains[k] = scale * (centre if k == CENTRE else side)


@kernel
def _supersaw_kernel(voct, freq, detune, mix, out, phase, ring, cursor, scratch, samplerate):
    """Seven saws into the one ring of band-limited edges the vco uses:
    the edges of a sum are the sum of its saws' edges. Increments and
    gains are worked out again only where pitch, detune or mix change."""
    channels, n = out.shape
    incs = scratch[0]
    gains = scratch[1]
    for c in range(channels):
        buf = ring[c]
        ps = phase[c]
        pos = cursor[0] & MASK
        steady = is_steady(freq, c) and is_steady(voct, c) and is_steady(detune, c) and is_steady(mix, c)
        last_f = last_v = last_d = last_m = np.nan
        base = 0.0
        for i in range(n):
            if i == 0 or not steady:
                f = freq[c, i]
                v = voct[c, i]
                d = detune[c, i]
                if f != last_f or v != last_v or d != last_d:
                    if f != last_f or v != last_v:
                        base = f * 2.0 ** v / samplerate
                        last_f = f
                        last_v = v
                    x = min(max(d, 0.0), 1.0)
                    amount = 0.0
                    for a in DETUNE_CURVE:
                        amount = amount * x + a
                    for k in range(SAWS):
                        incs[k] = min(max(base * (1.0 + SUPERSAW_OFFSETS[k] * amount), 0.0), MAX_INC)
                    last_d = d
                m = mix[c, i]
                if m != last_m:
                    _supersaw_gains(m, gains)
                    last_m = m
            value = 0.0
            for k in range(SAWS):
                p = ps[k] + incs[k]
                if p >= 1.0:
                    p -= 1.0
                    _edge(buf, pos, _since(p, incs[k]), -2.0 * gains[k], False, (1.0, 0.0))
                ps[k] = p
                value += gains[k] * (2.0 * p - 1.0)
            buf[pos] += value
            done = (pos + TAPS) & MASK
            out[c, i] = buf[done]
            buf[done] = 0.0
            pos = (pos + 1) & MASK
    cursor[0] = (cursor[0] + n) & MASK


class Supersaw(Module):
    """The trance lead and the big pad: seven band-limited saws a little
    apart in pitch, beating against each other. ``detune`` spreads them
    along the JP-8000's curve and ``mix`` brings the six side saws up
    against the centre one, while the loudness stays that of one saw. The
    saws run free from fixed, distinct phases, so every render is the
    same; as the vco, the output comes TAPS samples late. At detune 0 they
    drift apart only over tens of seconds, holding the phases they started
    from: a still, hollow tone, where a little detune sets them beating."""

    type_name = "supersaw"
    description = "Seven detuned band-limited saws (the JP-8000's super saw): leads, pads, the trance sound"
    inputs = (Port("voct", CONTROL, "pitch in volts per octave: each volt doubles freq"),)
    outputs = (Port("out", AUDIO, "the seven saws, as loud as one vco saw (peaks reach about 2 where "
                                  "several line up)"),)
    params = (
        Param("freq", C4_HZ, 0.01, 20000.0, "Hz",
              doc="the centre saw's frequency at voct 0; the default C4 lets a note source play true pitches"),
        Param("detune", 0.5, 0.0, 1.0,
              doc="how far the side saws spread: 0.5 is about +/-19 cents, 0.9 -69/+65, 1 -2/+1.8 semitones "
                  "(the JP-8000's offsets lean low)"),
        Param("mix", 0.5, 0.0, 1.0, doc="the six side saws' share: 0 the centre saw nearly alone, 1 the sides loudest"),
    )
    state_fields = ("phase", "ring", "cursor")

    def setup(self):
        turns = GOLDEN_TURN * (np.arange(self.channels)[:, None] * SAWS + np.arange(SAWS) + 1)
        self.phase = turns - np.floor(turns)
        self.ring = np.zeros((self.channels, 2 * TAPS))
        self.cursor = np.zeros(1, dtype=np.int64)
        self._scratch = np.zeros((2, SAWS))

    def process(self, inputs, params, outputs):
        _supersaw_kernel(inputs["voct"], params["freq"], params["detune"], params["mix"], outputs["out"],
                         self.phase, self.ring, self.cursor, self._scratch, self.samplerate)


#: fm's feedback at 1, in radians of the modulator's own phase: about
#: where its sine has become a saw, short of where it breaks into noise.
FEEDBACK_MAX = 1.5


@kernel
def _fm_kernel(voct, freq, ratio, index, feedback, out, state, scratch, samplerate):
    """Two sine operators, as on a DX7: the modulator's output, times
    ``index``, is added to the carrier's phase. The modulator hears itself
    through the mean of its last two samples, which keeps feedback from
    ringing at half the sample rate (the DX7's trick). The phases run in
    one loop and the sines in loops of their own, which run as vectors;
    only a modulator with feedback, each sample waiting on the last, takes
    its sine in the first loop."""
    channels, n = out.shape
    mod = scratch[0]
    for c in range(channels):
        pc = state[c, 0]
        pm = state[c, 1]
        m1 = state[c, 2]
        m2 = state[c, 3]
        fed = not (is_steady(feedback, c) and feedback[c, 0] <= 0.0)
        last_f = last_v = last_r = np.nan
        base = inc_c = inc_m = 0.0
        for i in range(n):
            f = freq[c, i]
            v = voct[c, i]
            r = ratio[c, i]
            if f != last_f or v != last_v or r != last_r:
                if f != last_f or v != last_v:
                    base = min(max(f * 2.0 ** v / samplerate, 0.0), MAX_INC)   # finite: ratio may be 0
                    last_f = f
                    last_v = v
                inc_c = base
                inc_m = min(max(base * r, 0.0), MAX_INC)
                last_r = r
            if fed:
                beta = min(max(feedback[c, i], 0.0), 1.0) * FEEDBACK_MAX
                m = math.sin(2.0 * math.pi * pm + beta * 0.5 * (m1 + m2))
                m2 = m1
                m1 = m
                mod[i] = m
            else:
                mod[i] = pm
            out[c, i] = pc
            pc += inc_c
            if pc >= 1.0:
                pc -= 1.0
            pm += inc_m
            if pm >= 1.0:
                pm -= 1.0
        if not fed:
            for i in range(n):
                mod[i] = sin_turns(mod[i])
            m1 = mod[n - 1] if n > 0 else m1
            m2 = mod[n - 2] if n > 1 else m1
        for i in range(n):
            q = out[c, i] + index[c, i] * mod[i] * (0.5 / math.pi)
            out[c, i] = sin_turns(q - math.floor(q))
        state[c, 0] = pc
        state[c, 1] = pm
        state[c, 2] = m1
        state[c, 3] = m2


class Fm(Module):
    """Phase modulation, which is what "FM" synthesizers do: the index is
    the modulator's peak swing of the carrier's phase, in radians, so
    sideband k of a sine modulator has the height of the Bessel function
    J_k(index) however the pitch moves. Not band-limited: sidebands past
    Nyquist fold back, as on the DX7, once index x ratio x pitch nears
    it. Both phases start at 0, so every render is the same."""

    type_name = "fm"
    description = "Two-operator FM (phase modulation, as a DX7): bells, electric pianos, basses, metallic tones"
    inputs = (Port("voct", CONTROL, "pitch in volts per octave: each volt doubles freq"),)
    outputs = (Port("out", AUDIO, "the carrier, a sine of amplitude 1 whose phase the modulator swings"),)
    params = (
        Param("freq", C4_HZ, 0.01, 20000.0, "Hz",
              doc="the carrier's frequency at voct 0; the default C4 lets a note source play true pitches"),
        Param("ratio", 1.0, 0.0, 32.0, "x",
              doc="the modulator's frequency over the carrier's: whole numbers are harmonic (1 a saw-like "
                  "brass, 2 a square-like reed), others clang (3.5 a bell)"),
        Param("index", 1.0, 0.0, 50.0,
              doc="how far the modulator swings the carrier's phase, in radians: 0 a pure sine, the higher the "
                  "brighter; a cable (an envelope through a vca) makes the tone bloom and fade"),
        Param("feedback", 0.0, 0.0, 1.0,
              doc="the modulator into its own phase: 0 a sine, towards 1 a saw, for brighter sidebands"),
    )
    state_fields = ("state",)

    def setup(self):
        self.state = np.zeros((self.channels, 4))
        self._scratch = np.zeros((1, self.blocksize))

    def process(self, inputs, params, outputs):
        _fm_kernel(inputs["voct"], params["freq"], params["ratio"], params["index"], params["feedback"],
                   outputs["out"], self.state, self._scratch, self.samplerate)


@helper(inline="always")
def _lfo_run(shape, c, sync, freq, amp, offset, start_phase, out, state, samplerate, start, stop):
    """Channel c's samples ``start`` to ``stop`` in one waveform: the new
    phase, last wrapped phase, sync gate, held random value and seed."""
    p, lq, g, h, rng = state
    last_f = np.nan
    inc = 0.0
    for i in range(start, stop):
        rising = sync[c, i] > 0.5 and not g
        g = sync[c, i] > 0.5
        if rising:
            p = 0.0
        q = p + start_phase[c, i]
        q -= math.floor(q)
        if q < lq:  # a new cycle, by wrap or by sync
            rng, h = random_step(rng)
        lq = q
        if shape == LFO_SINE:
            v = q  # the phase for now: the sines follow in one pass
        elif shape == LFO_TRIANGLE:
            v = 4.0 * q if q < 0.25 else (2.0 - 4.0 * q if q < 0.75 else 4.0 * q - 4.0)
        elif shape == LFO_SAW:
            v = 2.0 * q if q < 0.5 else 2.0 * q - 2.0
        elif shape == LFO_SQUARE:
            v = 1.0 if q < 0.5 else -1.0
        else:
            v = h
        out[c, i] = v if shape == LFO_SINE else offset[c, i] + amp[c, i] * v
        f = freq[c, i]
        if f != last_f:  # the division only when the rate changes
            inc = min(max(f / samplerate, 0.0), 0.5)
            last_f = f
        p += inc
        if p >= 1.0:
            p -= 1.0
    if shape == LFO_SINE:
        # Over rows counted from 0 this loop runs as vectors; indexed from
        # `start` in the block it did not, at twice the cost.
        o, a, b = out[c, start:stop], amp[c, start:stop], offset[c, start:stop]
        for i in range(stop - start):
            o[i] = b[i] + a[i] * sin_turns(o[i])
    return p, lq, g, h, rng


@kernel
def _lfo_kernel(sync, freq, wave, amp, offset, start, out, phase, last, gate, held, rng, samplerate):
    channels, n = out.shape
    for c in range(channels):
        state = (phase[c], last[c], gate[c], held[c], rng[c])
        # A change of waveform switches on its sample: an LFO modulates,
        # and its own square already jumps.
        i = 0
        while i < n:
            stop = held_until(wave, c, i, n)
            state = _lfo_run(int(wave[c, i]), c, sync, freq, amp, offset, start, out, state, samplerate, i, stop)
            i = stop
        phase[c], last[c], gate[c], held[c], rng[c] = state


class Lfo(Module):
    """Not band-limited: it modulates, and a sharp edge is what a square or
    saw LFO is for. Sine, triangle and saw start at their rising zero
    crossing, so `phase` means the same for each."""

    type_name = "lfo"
    description = "Low-frequency oscillator: sine, triangle, saw, square, sample-and-hold random"
    inputs = (Port("sync", CONTROL, "gate: a rising edge restarts the cycle at phase"),)
    outputs = (Port("out", CONTROL, "offset + amp x wave, the wave within +/-1"),)
    params = (
        Param("freq", 1.0, 0.001, 1000.0, "Hz", doc="cycles per second"),
        Param("wave", "sine", choices=LFO_WAVES, doc="waveform; random holds a new value each cycle"),
        Param("amp", 1.0, 0.0, 20000.0, doc="peak swing, in the unit of what it modulates (Hz for a cutoff)"),
        Param("offset", 0.0, -20000.0, 20000.0, doc="centre value added to the swing"),
        Param("phase", 0.0, 0.0, 1.0, "cycle", doc="where in the cycle it starts and restarts on sync"),
    )
    state_fields = ("phase", "last", "gate", "held", "rng")

    def setup(self):
        self.phase = np.zeros(self.channels)
        # Above any phase, so the first sample draws the first random value.
        self.last = np.full(self.channels, 2.0)
        self.gate = np.zeros(self.channels, dtype=np.bool_)
        self.held = np.zeros(self.channels)
        self.rng = np.arange(self.channels, dtype=np.uint64)

    def process(self, inputs, params, outputs):
        _lfo_kernel(inputs["sync"], params["freq"], params["wave"], params["amp"], params["offset"],
                    params["phase"], outputs["out"], self.phase, self.last, self.gate, self.held,
                    self.rng, self.samplerate)


@kernel
def _noise_kernel(color, level, seed, out, rng, seeded, pink):
    channels, n = out.shape
    for c in range(channels):
        state = rng[c]
        b0 = pink[c, 0]
        b1 = pink[c, 1]
        b2 = pink[c, 2]
        b3 = pink[c, 3]
        b4 = pink[c, 4]
        b5 = pink[c, 5]
        b6 = pink[c, 6]
        # A change of colour switches on its sample; a new seed restarts the sequence on its own.
        start = 0
        while start < n:
            s = float(int(min(max(seed[c, start], 0.0), MAX_SEED)))
            if s != seeded[c]:
                state = (np.uint64(s) << np.uint64(16)) | np.uint64(c)
                b0 = b1 = b2 = b3 = b4 = b5 = b6 = 0.0
                seeded[c] = s
            kind = int(color[c, start])
            stop = min(held_until(color, c, start, n), held_until(seed, c, start, n))
            # Rows counted from 0, as in the lfo's sines: white noise runs as vectors.
            lv, o = level[c, start:stop], out[c, start:stop]
            for i in range(stop - start):
                state, w = random_step(state)
                if kind == BROWN:   # its one state in the first of pink's
                    b0 = BROWN_LEAK * b0 + BROWN_STEP * w
                    y = b0
                elif kind == PINK:  # Paul Kellet's refined filter: -3 dB/octave +/-0.05 dB, 20 Hz..20 kHz
                    b0 = 0.99886 * b0 + w * 0.0555179
                    b1 = 0.99332 * b1 + w * 0.0750759
                    b2 = 0.96900 * b2 + w * 0.1538520
                    b3 = 0.86650 * b3 + w * 0.3104856
                    b4 = 0.55000 * b4 + w * 0.5329522
                    b5 = -0.7616 * b5 - w * 0.0168980
                    y = PINK_GAIN * (b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362)
                    b6 = w * 0.115926
                else:
                    y = w
                o[i] = min(max(lv[i], 0.0), 1.0) * y
            start = stop
        rng[c] = state
        pink[c, 0] = b0
        pink[c, 1] = b1
        pink[c, 2] = b2
        pink[c, 3] = b3
        pink[c, 4] = b4
        pink[c, 5] = b5
        pink[c, 6] = b6


class Noise(Module):
    """Its own generator, seeded from `seed` and the channel, so a patch
    renders the same every time and polyphonic channels are independent;
    changing the seed restarts the sequence."""

    type_name = "noise"
    description = "White, pink or brown noise from a seeded generator, reproducible from render to render"
    outputs = (Port("out", AUDIO, "the noise; white stays within +/-level"),)
    params = (
        Param("color", "white", choices=NOISE_COLORS,
              doc="white: flat spectrum, a hiss; pink: -3 dB per octave, rain; brown: -6 dB per octave, surf and wind"),
        Param("level", 1.0, 0.0, 1.0, doc="output gain"),
        Param("seed", 0.0, 0.0, MAX_SEED, integer=True, doc="picks the sequence: same seed, same noise"),
    )
    state_fields = ("rng", "seeded", "pink")

    def setup(self):
        self.rng = np.zeros(self.channels, dtype=np.uint64)
        self.seeded = np.full(self.channels, -1.0)  # no seed yet: the first block seeds
        self.pink = np.zeros((self.channels, 7))

    def process(self, inputs, params, outputs):
        _noise_kernel(params["color"], params["level"], params["seed"], outputs["out"],
                      self.rng, self.seeded, self.pink)


MODULES = (Vco, Supersaw, Fm, Lfo, Noise)
