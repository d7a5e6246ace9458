"""``pluck``: a plucked string, by the Karplus-Strong algorithm."""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, CONTROL, C4_HZ, Module, Param, Port
from ..engine.jit import kernel
from .dsp import flush, random_step, read_cubic

#: The lowest pitch the string's line holds a period of; lower ones play it.
MIN_HZ = 20.0
#: The highest, as a fraction of the sample rate: the cubic read needs
#: the line read no closer than 2 samples to its newest.
MAX_PITCH = 0.25
#: The burst's level: a full-velocity pluck peaks near 0.8.
EXCITE = 0.5
#: The output's DC blocker's corner: a burst of noise has some DC, which
#: the loop keeps as long as the note (a high, dull note holds little else).
DC_HZ = 5.0
#: Columns of the state: the gate's last sample (1 high), samples of the
#: burst still to come, its level, the burst's lowpass, the loop filter's
#: last input, and the DC blocker's last input and output.
WAS, BURST, LEVEL, LOWPASS, PREVIOUS, DC_IN, DC_OUT = range(7)


@kernel
def _pluck_kernel(voct, gate, velocity, freq, decay, tone, out, line, state, write, rng, samplerate):
    """Each rising gate sends a period of lowpassed noise (its lowpass
    starting from rest, so one pluck's colour does not leak into the
    next's) into a delay line one period long, which feeds back through a
    gain and a two-point lowpass: the noise becomes a tone, its highs
    dying first, as a string's do. The lowpass,
    ``(1 - s) x[n] + s x[n-1]``, delays the loop by ``s`` samples, so the
    line is read that much sooner (between its samples, by the delay's
    cubic interpolation) to keep the pitch exact. Samples are flushed as
    they are written: a string long decayed would otherwise ring on in
    denormal numbers, many times slower to work with."""
    channels, n = out.shape
    size = line.shape[1]
    pole = 1.0 - 2.0 * math.pi * DC_HZ / samplerate
    for c in range(channels):
        w = write[c]
        was = state[c, WAS] > 0.5
        burst = state[c, BURST]
        level = state[c, LEVEL]
        lp = state[c, LOWPASS]
        previous = state[c, PREVIOUS]
        dc_in = state[c, DC_IN]
        dc_out = state[c, DC_OUT]
        seed = rng[c]
        last_f = last_v = last_d = last_t = np.nan
        period = delay = gain = s = a = norm = 0.0
        for i in range(n):
            f = freq[c, i]
            v = voct[c, i]
            d = decay[c, i]
            t = tone[c, i]
            if f != last_f or v != last_v or d != last_d or t != last_t:
                hz = min(max(f * 2.0 ** v, MIN_HZ), MAX_PITCH * samplerate)
                period = samplerate / hz
                bright = min(max(t, 0.0), 1.0)
                s = 0.5 * (1.0 - bright)
                delay = period - s
                gain = 10.0 ** (-3.0 / (max(d, 1e-3) * hz))
                a = math.exp(-2.0 * math.pi * 200.0 * 2.0 ** (7.0 * bright) / samplerate)
                norm = EXCITE * math.sqrt((1.0 + a) / (1.0 - a))   # the burst's loudness whatever its colour
                last_f = f
                last_v = v
                last_d = d
                last_t = t
            high = gate[c, i] > 0.5
            if high and not was:
                burst = float(int(period + 0.5))
                level = min(max(velocity[c, i], 0.0), 1.0) * norm
                lp = 0.0
            was = high
            x = 0.0
            if burst > 0.0:
                seed, u = random_step(seed)
                lp = (1.0 - a) * u + a * lp
                x = level * lp
                burst -= 1.0
            delayed = read_cubic(line, c, w - delay)
            y = flush(x + gain * ((1.0 - s) * delayed + s * previous))
            previous = delayed
            line[c, w] = y
            w += 1
            if w == size:
                w = 0
            dc_out = flush(y - dc_in + pole * dc_out)
            dc_in = y
            out[c, i] = dc_out
        write[c] = w
        state[c, WAS] = 1.0 if was else 0.0
        state[c, BURST] = burst
        state[c, LEVEL] = level
        state[c, LOWPASS] = lp
        state[c, PREVIOUS] = previous
        state[c, DC_IN] = dc_in
        state[c, DC_OUT] = dc_out
        rng[c] = seed


class Pluck(Module):
    """A physical model of the plainest kind: no oscillator, only a burst
    of noise ringing round a delay line as long as one period. Each pluck
    takes new noise from the module's own seeded generator, so no two
    notes sound quite alike while every render sounds the same. A pluck
    while the string still rings adds to it, as on a real string."""

    type_name = "pluck"
    description = "Plucked string (Karplus-Strong): guitar, harp, koto and bass tones from a burst of noise"
    inputs = (
        Port("voct", CONTROL, "pitch in volts per octave: each volt doubles freq"),
        Port("gate", CONTROL, "each rising edge plucks the string (keys.gate)"),
        Port("velocity", CONTROL, "how hard each pluck is, 0..1 (keys.velocity)", default=1.0),
    )
    outputs = (Port("out", AUDIO, "the string; a full-velocity pluck peaks near 0.8 at the default tone and "
                                  "decay, lower when brighter and shorter (about 0.5) or dull and high (0.1)"),)
    params = (
        Param("freq", C4_HZ, MIN_HZ, 12000.0, "Hz",
              doc="pitch at voct 0; the default C4 lets a note source play true pitches (held within "
                  "20 Hz..a quarter of the sample rate)"),
        Param("decay", 2.0, 0.01, 30.0, "s", doc="time the string takes to fall 60 dB (at tone 1; its highs "
                                                 "die sooner the lower the tone)"),
        Param("tone", 0.5, 0.0, 1.0, glide=False,
              doc="brightness of the pluck (taken as each string is plucked: a set steps) and of the string: "
                  "0 a muted, thumbed string, 1 a bright pick on steel"),
    )
    state_fields = ("line", "state", "write", "rng")

    def setup(self):
        self.line = np.zeros((self.channels, int(self.samplerate / MIN_HZ) + 4))
        self.state = np.zeros((self.channels, 7))
        self.write = np.zeros(self.channels, dtype=np.int64)
        self.rng = np.arange(self.channels, dtype=np.uint64) << np.uint64(32)

    def process(self, inputs, params, outputs):
        _pluck_kernel(inputs["voct"], inputs["gate"], inputs["velocity"], params["freq"], params["decay"],
                      params["tone"], outputs["out"], self.line, self.state, self.write, self.rng,
                      self.samplerate)


MODULES = (Pluck,)
