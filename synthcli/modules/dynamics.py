"""Gain stages and the master: vca, mix, pan, comp, out."""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, CONTROL, Module, Param, Port
from ..engine.jit import kernel

#: Below this level the master passes samples untouched; above it a tanh
#: knee bends them towards full scale, which only a sample some 15 dB over
#: it (past 4.37, where the sum rounds to 1) reaches.
SOFT_CLIP_KNEE = 0.8
#: What the knee makes of a sum at full scale. The output itself never
#: reaches 1.0, so a peak over this is what tells that the mix went over
#: full scale and was clipped (the REPL's meter says CLIP); one at it is a
#: lone oscillator at its full swing, which is not over.
CLIPPED = SOFT_CLIP_KNEE + (1.0 - SOFT_CLIP_KNEE) * math.tanh(1.0)


@kernel
def _master_kernel(mono, left, right, level, out):
    """Sum every channel of the inputs to stereo, apply level, soft-clip.

    Channel by channel into the output rows, which adds in the same order
    as summing each sample's channels and lets the sums run as vectors.
    The clip runs only when a sample passes the knee: LLVM, vectorising
    the clip loop, computes tanh for every sample and keeps it only where
    the branch is taken, which cost 6 us of every 256-sample block."""
    channels, n = mono.shape
    head = 1.0 - SOFT_CLIP_KNEE
    out_left = out[0]
    out_right = out[1]
    out_left[:] = 0.0
    out_right[:] = 0.0
    for c in range(channels):
        for i in range(n):
            out_left[i] += (mono[c, i] + left[c, i]) * level[c, i]
            out_right[i] += (mono[c, i] + right[c, i]) * level[c, i]
    peak = 0.0
    for side in range(2):
        for i in range(n):
            peak = max(peak, abs(out[side, i]))
    if peak <= SOFT_CLIP_KNEE:
        return
    for side in range(2):
        for i in range(n):
            x = out[side, i]
            ax = abs(x)
            if ax > SOFT_CLIP_KNEE:
                ax = SOFT_CLIP_KNEE + head * np.tanh((ax - SOFT_CLIP_KNEE) / head)
                out[side, i] = ax if x > 0 else -ax


@kernel
def _vca_kernel(x, gain, level, out):
    channels, n = x.shape
    for c in range(channels):
        for i in range(n):
            out[c, i] = x[c, i] * gain[c, i] * level[c, i]


@kernel
def _mix_kernel(in1, in2, in3, in4, level1, level2, level3, level4, out):
    channels, n = out.shape
    for c in range(channels):
        for i in range(n):
            out[c, i] = (in1[c, i] * level1[c, i] + in2[c, i] * level2[c, i]
                         + in3[c, i] * level3[c, i] + in4[c, i] * level4[c, i])


@kernel
def _pan_kernel(x, pan, left, right):
    """cos/sin of one angle keep left^2 + right^2 constant, so a sound keeps
    its loudness as it moves; modulation past the ends is clamped. The
    gains are worked out only when the position changes."""
    channels, n = x.shape
    for c in range(channels):
        last = np.nan
        gain_left = gain_right = 0.0
        for i in range(n):
            p = pan[c, i]
            if p != last:
                angle = (min(max(p, -1.0), 1.0) + 1.0) * (np.pi / 4)
                gain_left = math.cos(angle)
                gain_right = math.sin(angle)
                last = p
            left[c, i] = gain_left * x[c, i]
            right[c, i] = gain_right * x[c, i]


#: The compressor's soft knee: the curve bends over this many dB around
#: the threshold instead of at a corner.
KNEE_DB = 6.0
#: How far a cable may push comp's makeup, in dB either way: far enough for any sound,
#: short of a factor that overflows.
MAKEUP_LIMIT = 96.0
#: The RMS detector's averaging time: the mean square of the last 10 ms or
#: so, before attack and release. Long enough that a bass note's ripple
#: moves the reading by a fraction of a dB, short enough not to add to
#: the attack a drum needs.
RMS_WINDOW = 0.01
#: A detector level this low is silence (-600 dB): it is flushed to 0
#: before it decays through denormal numbers.
QUIET = 1e-30
#: The longest lookahead: enough for the attack of any drum, and little
#: enough latency to play with.
MAX_LOOKAHEAD = 0.02
#: The time constant the curve's slope follows a new ratio with. A set
#: ratio glides over 5 ms, as every number does, but the gain reduction
#: goes as 1 - 1/ratio: from ratio 1 (off) to 20 most of it came within
#: a tenth of a millisecond, a click, where the slope itself now glides.
SLOPE_SECONDS = 0.002


@kernel
def _comp_kernel(x, side, threshold, ratio, attack, release, makeup, key, detect, lookahead, out, gain, envelope,
                 line, taps, samplerate):
    """A feed-forward compressor per channel: a detector (attack and
    release as one-pole time constants) on the signal or the key input,
    a soft-knee gain curve in dB, then makeup gain. The coefficients, the
    curve's slope, the knee's start as a level and the makeup as a factor
    are worked out only when their parameters change, and a level below
    the knee takes no logarithm: most samples of a mix are there.

    The peak detector smooths |x|; the RMS one first averages x^2 over
    RMS_WINDOW, the mean square, smooths that, and reads its dB as
    10 log10. Averaging before the attack and release is what makes it
    read loudness: a fast attack on x^2 itself would ride each wave's
    crest and read the peak. ``envelope[c]`` holds the smoothed value,
    the detector it belongs to (-1 before the first block) and the mean
    square: a switch squares the smoothed value or takes its root (and
    starts the mean there), so the gain goes on from where it was.

    With a lookahead the signal passes through ``line`` (the last samples
    of each channel; ``taps[c]`` holds where the next one goes and the
    delay the last block used, -1 before the first) while the detector hears it undelayed, so
    the gain has fallen by the time a transient comes out. Every sample is
    written to the line, whatever the delay, so a new delay reads real
    past samples; the block a delay changes in fades from the old tap to
    the new one. At no delay the tap is the sample itself: the same bits
    as without a line. ``envelope[c, 3]`` holds the curve's slope, which
    follows the ratio's with SLOPE_SECONDS (NaN before the first block,
    which takes it as it is)."""
    channels, n = x.shape
    size = line.shape[1]
    for c in range(channels):
        pos = int(taps[c, 0])
        was = int(taps[c, 1])
        want = min(max(int(round(lookahead[c, 0] * samplerate)), 0), size - 1)
        if was < 0:   # the first block: no tap to fade from
            was = want
        direct = want == 0 and was == 0
        env = envelope[c, 0]
        mean = envelope[c, 2]
        rms = detect[c, 0] >= 0.5
        if envelope[c, 1] >= 0.0 and (envelope[c, 1] >= 0.5) != rms:
            env = env * env if rms else math.sqrt(env)
            mean = env
        average = math.exp(-1.0 / (RMS_WINDOW * samplerate))
        settle = math.exp(-1.0 / (SLOPE_SECONDS * samplerate))
        slope = envelope[c, 3]
        decibels = 10.0 if rms else 20.0
        last_attack = last_release = last_ratio = last_threshold = last_makeup = np.nan
        rise = fall = aim = knee = boost = 0.0
        for i in range(n):
            if (detect[c, i] >= 0.5) != rms:   # a change of detector on its sample (a pattern's step)
                rms = not rms
                env = env * env if rms else math.sqrt(env)
                mean = env
                decibels = 10.0 if rms else 20.0
                last_threshold = np.nan   # the knee, in the detector's own terms
            if threshold[c, i] != last_threshold:
                last_threshold = threshold[c, i]
                knee = 10.0 ** ((last_threshold - KNEE_DB / 2) / decibels)
            if makeup[c, i] != last_makeup:
                last_makeup = makeup[c, i]
                # A cable may push it anywhere: past about 6000 dB the factor is inf, and the output NaN.
                boost = 10.0 ** (min(max(last_makeup, -MAKEUP_LIMIT), MAKEUP_LIMIT) / 20.0)
            if attack[c, i] != last_attack:
                last_attack = attack[c, i]
                rise = math.exp(-1.0 / max(last_attack * samplerate, 1.0))
            if release[c, i] != last_release:
                last_release = release[c, i]
                fall = math.exp(-1.0 / max(last_release * samplerate, 1.0))
            if ratio[c, i] != last_ratio:
                last_ratio = ratio[c, i]
                aim = 1.0 / max(last_ratio, 1.0) - 1.0
                if slope != slope:
                    slope = aim
            if slope != aim:
                slope = aim + (slope - aim) * settle
                if abs(slope - aim) < 1e-9:
                    slope = aim
            heard = side[c, i] if key[c, i] >= 0.5 else x[c, i]
            if rms:
                mean = average * mean + (1.0 - average) * heard * heard
                if mean < QUIET:
                    mean = 0.0
                level = mean
            else:
                level = abs(heard)
            k = rise if level > env else fall
            env = k * env + (1.0 - k) * level
            if env < QUIET:
                env = 0.0
            g = 1.0
            if env > knee:
                over = decibels * math.log10(env) - last_threshold
                if over < KNEE_DB / 2:
                    g = 10.0 ** (slope * (over + KNEE_DB / 2) ** 2 / (2.0 * KNEE_DB) / 20.0)
                else:
                    g = 10.0 ** (slope * over / 20.0)
            gain[c, i] = g
            delayed = line[c, pos] = x[c, i]
            if not direct:
                read = pos - want
                if read < 0:
                    read += size
                delayed = line[c, read]
                if want != was:
                    old = pos - was
                    if old < 0:
                        old += size
                    fade = 0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / n)
                    delayed = fade * delayed + (1.0 - fade) * line[c, old]
            pos += 1
            if pos == size:
                pos = 0
            out[c, i] = delayed * g * boost
        envelope[c, 0] = env
        envelope[c, 1] = 1.0 if rms else 0.0
        envelope[c, 2] = mean
        envelope[c, 3] = slope
        taps[c, 0] = pos
        taps[c, 1] = want


class Comp(Module):
    type_name = "comp"
    description = "Compressor: turns down what passes the threshold, from the signal or a key input (ducking)"
    inputs = (
        Port("in", AUDIO, "signal to compress"),
        Port("side", AUDIO, "key signal heard by the detector when key=side: a kick ducking a bass or pad"),
    )
    outputs = (
        Port("out", AUDIO, "compressed signal, with makeup gain"),
        Port("gain", CONTROL, "the gain the compressor applies, 1 (none) down to 0: duck something else with it"),
    )
    params = (
        Param("threshold", -18.0, -60.0, 0.0, "dB", doc="level where compression begins (6 dB soft knee around it)"),
        Param("ratio", 4.0, 1.0, 20.0, ":1", doc="dB in per dB out above the threshold: 1 is off, 20 a limiter"),
        Param("attack", 0.005, 0.0, 1.0, "s", doc="how fast it turns down a rise (time constant)"),
        Param("release", 0.15, 0.0, 5.0, "s", doc="how fast it lets go again (time constant)"),
        Param("makeup", 0.0, 0.0, 24.0, "dB", doc="gain after compression, to win back the level"),
        Param("key", "in", choices=("in", "side"), doc="what the detector hears: the signal itself, or the side input"),
        Param("detect", "peak", choices=("peak", "rms"),
              doc="peak: catches every transient; rms: follows loudness, the mean square over 10 ms (a sine "
                  "reads 3 dB under its peak), smoother on a mix or a voice"),
        Param("lookahead", 0.0, 0.0, MAX_LOOKAHEAD, "s",
              doc="delays the signal this long while the detector hears it now, so a transient is turned "
                  "down before it passes (the output comes this much later)"),
    )
    state_fields = ("envelope", "line", "taps")

    def setup(self):
        self.envelope = np.zeros((self.channels, 4))
        self.envelope[:, 1] = -1.0
        self.envelope[:, 3] = np.nan
        self.line = np.zeros((self.channels, int(np.ceil(MAX_LOOKAHEAD * self.samplerate)) + 1))
        self.taps = np.zeros((self.channels, 2))
        self.taps[:, 1] = -1.0

    def process(self, inputs, params, outputs):
        _comp_kernel(inputs["in"], inputs["side"], params["threshold"], params["ratio"], params["attack"],
                     params["release"], params["makeup"], params["key"], params["detect"], params["lookahead"],
                     outputs["out"], outputs["gain"], self.envelope, self.line, self.taps, self.samplerate)


class Out(Module):
    type_name = "out"
    description = ("Master output: sums every channel to stereo, level, a soft clip from 0.8 that never passes "
                   "full scale")
    inputs = (
        Port("in", AUDIO, "mono or polyphonic signal to both sides (channels are summed)"),
        Port("left", AUDIO, "signal to the left side only"),
        Port("right", AUDIO, "signal to the right side only"),
    )
    outputs = (Port("master", AUDIO, "the stereo mix sent to the device or file", channels=2),)
    params = (Param("level", 1.0, 0.0, 4.0, "x", doc="master gain before the soft clip"),)

    @classmethod
    def channel_count(cls, params, inputs):
        """One channel: every voice of every cable is folded (summed) into
        it once, however wide the cables beside it are."""
        return 1

    def process(self, inputs, params, outputs):
        _master_kernel(inputs["in"], inputs["left"], inputs["right"], params["level"], outputs["master"])


class Vca(Module):
    type_name = "vca"
    description = "Voltage-controlled amplifier: in x gain x level"
    inputs = (
        Port("in", AUDIO, "signal"),
        Port("gain", CONTROL, "multiplies the signal (an envelope, say); 1 when unconnected", default=1.0),
    )
    outputs = (Port("out", AUDIO, "amplified signal"),)
    params = (Param("level", 1.0, 0.0, 4.0, "x", doc="fixed gain"),)

    def process(self, inputs, params, outputs):
        _vca_kernel(inputs["in"], inputs["gain"], params["level"], outputs["out"])


class Mix(Module):
    type_name = "mix"
    description = "Four-input mixer: the sum of each input times its level"
    inputs = tuple(Port(f"in{k}", AUDIO, f"signal {k}") for k in range(1, 5))
    outputs = (Port("out", AUDIO, "the weighted sum"),)
    params = tuple(Param(f"level{k}", 1.0, 0.0, 4.0, "x", doc=f"gain of in{k}") for k in range(1, 5))

    @classmethod
    def channel_count(cls, params, inputs):
        """Voice by voice when every signal has the same width (two 8-voice
        chains); otherwise one channel, every voice folded in once, so a
        mono bass beside a 6-voice pad is not counted six times."""
        widths = {width for port, width in inputs.items() if port.startswith("in")}
        return widths.pop() if len(widths) == 1 else 1

    def process(self, inputs, params, outputs):
        _mix_kernel(inputs["in1"], inputs["in2"], inputs["in3"], inputs["in4"], params["level1"],
                    params["level2"], params["level3"], params["level4"], outputs["out"])


class Pan(Module):
    type_name = "pan"
    description = "Equal-power panner: a signal placed between left and right"
    inputs = (Port("in", AUDIO, "signal to place (each channel of a polyphonic cable on its own)"),)
    outputs = (
        Port("left", AUDIO, "left side"),
        Port("right", AUDIO, "right side"),
    )
    params = (Param("pan", 0.0, -1.0, 1.0, doc="-1 hard left, 0 centre (each side -3 dB), +1 hard right"),)

    def process(self, inputs, params, outputs):
        _pan_kernel(inputs["in"], params["pan"], outputs["left"], outputs["right"])


MODULES = (Out, Vca, Mix, Pan, Comp)
