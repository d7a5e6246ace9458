"""Gain stages and the master: vca, mix, pan, out."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..api import AUDIO, CONTROL, Module, Param, Port

#: Below this level the master passes samples untouched; above it a tanh
#: knee bends them so that nothing ever reaches full scale.
SOFT_CLIP_KNEE = 0.8


@njit(cache=True, nogil=True)
def _master_kernel(mono, left, right, level, out):
    """Sum every channel of the inputs to stereo, apply level, soft-clip."""
    channels, n = mono.shape
    head = 1.0 - SOFT_CLIP_KNEE
    for i in range(n):
        sl = 0.0
        sr = 0.0
        for c in range(channels):
            sl += (mono[c, i] + left[c, i]) * level[c, i]
            sr += (mono[c, i] + right[c, i]) * level[c, i]
        for side in range(2):
            x = sl if side == 0 else sr
            ax = abs(x)
            if ax > SOFT_CLIP_KNEE:
                ax = SOFT_CLIP_KNEE + head * np.tanh((ax - SOFT_CLIP_KNEE) / head)
                x = ax if x > 0 else -ax
            out[side, i] = x


class Out(Module):
    type_name = "out"
    description = "Master output: sums every channel to stereo, level, soft clip at full scale"
    inputs = (
        Port("in", AUDIO, "mono or polyphonic signal to both sides (channels are summed)"),
        Port("left", AUDIO, "signal to the left side only"),
        Port("right", AUDIO, "signal to the right side only"),
    )
    outputs = (Port("master", AUDIO, "the stereo mix sent to the device or file", channels=2),)
    params = (Param("level", 1.0, 0.0, 4.0, "x", doc="master gain before the soft clip"),)

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
        out = outputs["out"]
        np.multiply(inputs["in"], inputs["gain"], out=out)
        np.multiply(out, params["level"], out=out)


class Mix(Module):
    type_name = "mix"
    description = "Four-input mixer: the sum of each input times its level"
    inputs = tuple(Port(f"in{k}", AUDIO, f"signal {k}") for k in range(1, 5))
    outputs = (Port("out", AUDIO, "the weighted sum"),)
    params = tuple(Param(f"level{k}", 1.0, 0.0, 4.0, "x", doc=f"gain of in{k}") for k in range(1, 5))

    def setup(self):
        # Each product lands here before it is added, so a block allocates nothing.
        self._term = np.zeros((self.channels, self.blocksize))

    def process(self, inputs, params, outputs):
        out = outputs["out"]
        np.multiply(inputs["in1"], params["level1"], out=out)
        for k in range(2, 5):
            np.multiply(inputs[f"in{k}"], params[f"level{k}"], out=self._term)
            out += self._term


class Pan(Module):
    type_name = "pan"
    description = "Equal-power panner: a signal placed between left and right"
    inputs = (Port("in", AUDIO, "signal to place (each channel of a polyphonic cable on its own)"),)
    outputs = (
        Port("left", AUDIO, "left side"),
        Port("right", AUDIO, "right side"),
    )
    params = (Param("pan", 0.0, -1.0, 1.0, doc="-1 hard left, 0 centre (each side -3 dB), +1 hard right"),)

    def setup(self):
        # Holds the pan angle; preallocated so a block allocates nothing.
        self._angle = np.zeros((self.channels, self.blocksize))

    def process(self, inputs, params, outputs):
        # cos/sin of one angle keep left^2 + right^2 constant, so a sound
        # keeps its loudness as it moves; modulation past the ends is clamped.
        angle = self._angle
        np.clip(params["pan"], -1.0, 1.0, out=angle)
        angle += 1.0
        angle *= np.pi / 4
        left, right = outputs["left"], outputs["right"]
        np.cos(angle, out=left)
        np.sin(angle, out=right)
        left *= inputs["in"]
        right *= inputs["in"]


MODULES = (Out, Vca, Mix, Pan)
