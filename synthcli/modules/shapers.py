"""Shapers of a signal's course and of its curve: slew (glide), sh (sample
and hold), quant (pitch to a scale) and drive (saturation)."""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, CONTROL, Module, Param, Port
from ..engine.jit import helper, kernel
from ..theory import ROOT_SPELLINGS, ROOTS, SCALES
from .dsp import held_until, mode_fade

#: An exponential slew's time is how long any step takes to come within
#: 1 % of where it goes: the time constant is that time over ln(100).
LN_100 = math.log(100.0)

#: An exponential slew this close to its target, relative to the target's
#: size, is there (a billionth of an octave on a pitch cable). Without it
#: the curve stalls a hundred-odd rounding steps short, where the step
#: it would take rounds away, or creeps into denormal numbers towards 0.
SETTLED = 1e-9

#: drive=1 multiplies the input by this (+40 dB).
MAX_DRIVE_GAIN = 100.0
#: drive's curves, all with slope 1 at 0: tanh, a clip at +/-1, and sin,
#: which past +/-pi/2 folds the wave back (a West Coast wavefolder).
DRIVE_SHAPES = ("soft", "hard", "fold")
SOFT, HARD, FOLD = range(3)

LN_2 = math.log(2.0)

#: Below this step between two samples the anti-aliased shaper takes the
#: curve at their midpoint: the quotient of differences loses its digits.
ADAA_STEP = 1e-5


@helper
def _slew_step(v, target, time, step, exponential):
    """One sample towards ``target``: by ``step`` (linear) or keeping
    ``step`` of the distance (exponential) until it has SETTLED."""
    if time <= 0.0:
        return target
    if exponential:
        v = target + (v - target) * step
        return target if abs(v - target) <= SETTLED * (1.0 + abs(target)) else v
    if target > v:
        return min(target, v + step)
    return max(target, v - step)


@kernel
def _slew_kernel(x, rise, fall, curve, out, level, samplerate):
    """Per sample, the output moves towards the input no faster than the
    rise or fall time allows. The step size (linear) or decay factor
    (exponential) is worked out only when a time or the curve changes."""
    channels, n = x.shape
    for c in range(channels):
        v = level[c]
        last_rise = last_fall = np.nan
        last_curve = -1.0
        up = down = 0.0
        for i in range(n):
            target = x[c, i]
            exponential = curve[c, i] >= 0.5
            if rise[c, i] != last_rise or curve[c, i] != last_curve:
                last_rise = rise[c, i]
                up = math.exp(-LN_100 / (last_rise * samplerate)) if exponential \
                    else 1.0 / max(last_rise * samplerate, 1e-300)
            if fall[c, i] != last_fall or curve[c, i] != last_curve:
                last_fall = fall[c, i]
                down = math.exp(-LN_100 / (last_fall * samplerate)) if exponential \
                    else 1.0 / max(last_fall * samplerate, 1e-300)
            last_curve = curve[c, i]
            if v != v:   # the first sample (or one after a NaN): start where the input is
                v = target
            elif target > v:
                v = _slew_step(v, target, last_rise, up, exponential)
            elif target < v:
                v = _slew_step(v, target, last_fall, down, exponential)
            out[c, i] = v
        level[c] = v


class Slew(Module):
    type_name = "slew"
    description = "Slew limiter: steps become glides (portamento on a pitch cable), rising and falling apart"
    inputs = (Port("in", CONTROL, "signal to smooth: a voct cable glides from note to note, a gate swells"),)
    outputs = (Port("out", CONTROL, "the input, moving no faster than rise and fall allow"),)
    params = (
        Param("rise", 0.1, 0.0, 10.0, "s",
              doc="linear: time to rise by 1 (an octave of voct); exp: time any rise takes to come within 1 %"),
        Param("fall", 0.1, 0.0, 10.0, "s", doc="the same for falling; 0 follows at once"),
        Param("curve", "linear", choices=("linear", "exp"),
              doc="linear: a steady rate, so a wider interval takes longer; exp: an RC lag, as a Minimoog's glide"),
    )
    state_fields = ("level",)

    def setup(self):
        # NaN: the first sample takes the input as it is, so a patch does
        # not open with every voice gliding up from 0 (C4).
        self.level = np.full(self.channels, np.nan)

    def process(self, inputs, params, outputs):
        _slew_kernel(inputs["in"], params["rise"], params["fall"], params["curve"], outputs["out"],
                     self.level, self.samplerate)


@kernel
def _sh_kernel(x, trig, mode, out, state):
    """``state[c]`` holds the value held and whether the trig was high at
    the last sample. A rising edge takes the input (sample); in track
    mode the output also follows the input for as long as the trig stays
    high, and holds from its falling edge."""
    channels, n = x.shape
    for c in range(channels):
        held = state[c, 0]
        was_high = state[c, 1] > 0.5
        for i in range(n):
            high = trig[c, i] > 0.5
            if high and (not was_high or mode[c, i] >= 0.5):
                held = x[c, i]
            was_high = high
            out[c, i] = held
        state[c, 0] = held
        state[c, 1] = 1.0 if was_high else 0.0


class SampleHold(Module):
    type_name = "sh"
    description = "Sample and hold: takes its input's value at each trig and holds it until the next"
    inputs = (
        Port("in", CONTROL, "what to sample: noise makes random steps, an LFO a staircase"),
        Port("trig", CONTROL, "each rising edge takes a sample: a pattern's gate, a square LFO, quant's trig"),
    )
    outputs = (Port("out", CONTROL, "the value last taken (0 before the first trig)"),)
    params = (
        Param("mode", "sample", choices=("sample", "track"),
              doc="sample: takes the input at the rising edge; track: follows it while the trig is high"),
    )
    state_fields = ("state",)

    def setup(self):
        self.state = np.zeros((self.channels, 2))

    def process(self, inputs, params, outputs):
        _sh_kernel(inputs["in"], inputs["trig"], params["mode"], outputs["out"], self.state)


#: How long quant's trig output stays high after the note changes.
TRIG_SECONDS = 0.001


@kernel
def _quant_kernel(x, scale, root, out, trig, allowed, state, trig_samples):
    """Each sample's pitch (volts per octave) to the nearest note of the
    scale, ties to the lower one; ``allowed[k]`` lists scale k's pitch
    classes (-1 past its last). ``state[c]`` holds the last input, its
    note and what is left of the trig pulse; a held input (the usual
    case) is looked up once."""
    channels, n = x.shape
    for c in range(channels):
        last_in = state[c, 0]
        note = state[c, 1]
        pulse = state[c, 2]
        last_scale = last_root = -1.0
        for i in range(n):
            v = x[c, i]
            if v != last_in or scale[c, i] != last_scale or root[c, i] != last_root:
                last_in, last_scale, last_root = v, scale[c, i], root[c, i]
                k = min(max(int(last_scale), 0), allowed.shape[0] - 1)
                r = min(max(int(last_root), 0), 11)
                s = v * 12.0 - r
                octave = np.floor(s / 12.0)   # a float: NaN stays NaN, for the engine to catch
                degree = s - 12.0 * octave
                best = 0.0
                distance = np.inf
                for j in range(allowed.shape[1]):
                    pc = allowed[k, j]
                    if pc < 0:
                        break
                    for candidate in (pc - 12.0, pc, pc + 12.0):
                        d = abs(degree - candidate)
                        if d < distance or (d == distance and candidate < best):
                            best, distance = candidate, d
                was = note
                note = (12.0 * octave + best + r) / 12.0
                if was == was and note != was:   # not at the very first sample
                    pulse = trig_samples
            out[c, i] = note
            trig[c, i] = 1.0 if pulse > 0 else 0.0
            if pulse > 0:
                pulse -= 1
        state[c, 0] = last_in
        state[c, 1] = note
        state[c, 2] = pulse


class Quant(Module):
    type_name = "quant"
    description = "Quantizer: a pitch to the nearest note of a scale, with a trig at each new note"
    inputs = (Port("in", CONTROL, "pitch, volts/octave: an LFO or noise becomes a melody in the scale"),)
    outputs = (
        Port("out", CONTROL, "the nearest note of the scale, volts/octave (ties go down)"),
        Port("trig", CONTROL, "a 1 ms gate at each change of note, to strike an envelope"),
    )
    params = (
        Param("scale", "major", choices=tuple(SCALES),
              doc="which notes: church modes, harmonic minor, pentatonics, blues, whole tone or all twelve"),
        Param("root", "c", choices=ROOTS, aliases=ROOT_SPELLINGS,
              doc="the scale's first note (c# or db is cs, f# or gb fs, ...)"),
    )
    state_fields = ("state",)

    def setup(self):
        self._allowed = np.full((len(SCALES), 12), -1.0)
        for k, classes in enumerate(SCALES.values()):
            self._allowed[k, :len(classes)] = classes
        self._trig_samples = float(round(TRIG_SECONDS * self.samplerate))
        # NaN input and note: the first sample is looked up, and strikes no trig.
        self.state = np.zeros((self.channels, 3))
        self.state[:, :2] = np.nan

    def process(self, inputs, params, outputs):
        _quant_kernel(inputs["in"], params["scale"], params["root"], outputs["out"], outputs["trig"],
                      self._allowed, self.state, self._trig_samples)


@helper
def _shape(u, kind):
    if kind == HARD:
        return min(max(u, -1.0), 1.0)
    if kind == FOLD:
        return math.sin(u)
    return math.tanh(u)


@helper
def _shape_integral(u, kind):
    """The antiderivative of the shaper, 0 at 0, written to stay exact
    where the shaper is flat (log(cosh(u)) overflows past |u| = 710) and
    near 0 (1 - cos(u) loses its digits there; 2 sin^2(u/2) is the same)."""
    a = abs(u)
    if kind == HARD:
        return 0.5 * u * u if a <= 1.0 else a - 0.5
    if kind == FOLD:
        half = math.sin(0.5 * u)
        return 2.0 * half * half
    if a > 20.0:   # log1p(exp(-40)) is below half a rounding step of a
        return a - LN_2
    return a + math.log1p(math.exp(-2.0 * a)) - LN_2


@helper
def _adaa(u0, u1, f0, f1, kind):
    if abs(u1 - u0) > ADAA_STEP:
        return (f1 - f0) / (u1 - u0)
    return _shape(0.5 * (u0 + u1), kind)


@kernel
def _drive_kernel(x, drive, shape, level, out, last, samplerate):
    """First-order antiderivative anti-aliasing (Parker, Zavalishin and Le
    Bihan, DAFx 2016): each output sample is the shaper's mean over the
    straight line between two input samples, the difference of its
    antiderivative over the difference of the input. The harmonics a
    clipper makes above Nyquist fold back about 10 dB weaker than from
    the curve taken sample by sample, at half a sample of delay.

    ``last`` holds each channel's previous driven input, its shape (-1
    before the first block), the shape a change fades from and the samples
    of that fade done. A change of shape crossfades the old curve's output
    into the new one's over 5 ms from its sample, across blocks, as a
    number glides: tanh and the hard clip differ by a quarter of full
    scale where the input reaches 1. A change during a fade fades from the
    curve that one was heading for."""
    channels, n = x.shape
    log_gain = math.log(MAX_DRIVE_GAIN)
    length = mode_fade(samplerate)
    for c in range(channels):
        u0 = last[c, 0]
        kind = int(last[c, 1]) if last[c, 1] >= 0.0 else _kind(shape[c, 0])
        was = int(last[c, 2])
        done = last[c, 3]
        f0 = _shape_integral(u0, kind)
        g0 = _shape_integral(u0, was)
        last_drive = np.nan
        gain = 1.0
        # Stretches of one shape, each in loops where the shape is a
        # constant that LLVM takes out of them: read sample by sample, it
        # cost 2 ns a sample more.
        i = 0
        while i < n:
            stop = held_until(shape, c, i, n)
            new = _kind(shape[c, i])
            if new != kind:
                was, kind, done = kind, new, 0.0
                f0, g0 = _shape_integral(u0, kind), f0
            while i < stop and done < length:
                gain, last_drive = _drive_gain(drive[c, i], gain, last_drive, log_gain)
                u1 = x[c, i] * gain
                f1 = _shape_integral(u1, kind)
                g1 = _shape_integral(u1, was)
                y = _adaa(u0, u1, f0, f1, kind)
                before = _adaa(u0, u1, g0, g1, was)
                done += 1.0
                out[c, i] = (before + (y - before) * (done / length) if done < length else y) * level[c, i]
                u0, f0, g0 = u1, f1, g1
                i += 1
            for i in range(i, stop):
                gain, last_drive = _drive_gain(drive[c, i], gain, last_drive, log_gain)
                u1 = x[c, i] * gain
                f1 = _shape_integral(u1, kind)
                out[c, i] = _adaa(u0, u1, f0, f1, kind) * level[c, i]
                u0, f0 = u1, f1
            i = stop
        last[c, 0] = u0
        last[c, 1] = kind
        last[c, 2] = was
        last[c, 3] = done


@helper(inline="always")
def _drive_gain(d, gain, last_drive, log_gain):
    """The input gain for drive d, and d: exp() only when it moved."""
    if d != last_drive:
        return math.exp(min(max(d, 0.0), 1.0) * log_gain), d
    return gain, last_drive


@helper
def _kind(shape):
    return min(max(int(shape + 0.5), SOFT), FOLD)


class Drive(Module):
    type_name = "drive"
    description = "Saturation: gain into a soft (tanh) or hard clipper or a wavefolder, anti-aliased"
    inputs = (Port("in", AUDIO, "signal to saturate"),)
    outputs = (Port("out", AUDIO, "saturated signal, within +/-level"),)
    params = (
        Param("drive", 0.5, 0.0, 1.0,
              doc="input gain, exponential: 0 is x1 (clean below 0.3), 0.5 is x10, 1 is x100 (+40 dB)"),
        Param("shape", "soft", choices=DRIVE_SHAPES,
              doc="soft: tanh, warm and round; hard: flat at +/-1, a buzzing square when driven; "
                  "fold: a sine folds the wave back on itself past full scale, brighter the harder it is driven "
                  "(its many folds at high drive alias more than the clippers do); "
                  "a change crossfades over 5 ms from its sample"),
        Param("level", 1.0, 0.0, 4.0, "x", doc="output gain after the clipper"),
    )
    state_fields = ("last",)

    def setup(self):
        self.last = np.zeros((self.channels, 4))
        self.last[:, 1] = -1.0
        self.last[:, 3] = np.inf   # no change fading

    def process(self, inputs, params, outputs):
        _drive_kernel(inputs["in"], params["drive"], params["shape"], params["level"], outputs["out"],
                      self.last, self.samplerate)


MODULES = (Slew, SampleHold, Quant, Drive)
