"""Time-based effects: delay, ping-pong, chorus, flanger, phaser and reverb."""
from __future__ import annotations

import math

import numpy as np

from ..api import AUDIO, Module, Param, Port
from ..engine.jit import helper, kernel
from .dsp import flush, mode_fade, read_cubic, same_as_previous, sin_turns
from .filters import MAX_CUTOFF_RATIO, MIN_CUTOFF

#: Range of the delay time, in seconds; the buffer is sized for the longest.
MIN_DELAY = 0.001
MAX_DELAY = 2.0
#: How fast a delay's read head may move, in samples per sample, when its
#: time moves faster than that (a `set`, a stepped LFO) over sound in the
#: line: lengthening, the echoes bend down to half their pitch,
#: shortening, up to twice it, an octave either way, as a tape echo's
#: swoop. Read where the time said, a jump of 0.3 s glided over 5 ms
#: scrubbed the line at 60 times its speed, a zip of steps up to 2.0.
HEAD_LENGTHEN = 0.5
HEAD_SHORTEN = 1.0
#: Range of the lowpass in the delay's feedback; at the top it is not there.
MIN_TONE, MAX_TONE = 200.0, 20000.0

#: Freeverb's tuning (Jezar at Dreampoint), in samples at 44.1 kHz: mutually
#: prime-ish lengths so the combs' echoes do not pile up on the same beats.
FREEVERB_RATE = 44100.0
COMB_LENGTHS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_LENGTHS = (556, 441, 341, 225)
#: The right side's lines are this much longer, which decorrelates the sides.
STEREO_SPREAD = 23
#: Input gain into the comb bank: eight resonant combs summed would clip.
REVERB_INPUT_GAIN = 0.015
#: Restores the wet level after REVERB_INPUT_GAIN (Freeverb's scalewet).
REVERB_WET_GAIN = 3.0
#: Freeverb's "allpass" (out = buffer - in) is not flat: its gain ripples
#: between 1 and 1.67, which raises the wet level. That colour is its sound.
ALLPASS_FEEDBACK = 0.5


@helper
def _flush_written(line, start, n):
    """Zero what the block just wrote to a circular line, from ``start``
    on, where it fell below FLUSH: a feedback tail would otherwise decay
    through denormal numbers, several times slower on x86. Once a block,
    in a loop apart that runs as vectors: a flush of each sample as it is
    written cost the delay about 60 % more on every block."""
    size = line.shape[0]
    count = min(n, size)
    first = min(count, size - start)
    for i in range(start, start + first):
        line[i] = flush(line[i])
    for i in range(count - first):
        line[i] = flush(line[i])


@helper
def _follow(head, target, quiet, oldest):
    """The read head's next delay, in samples, on its way to ``target``
    (see HEAD_LENGTHEN); the target itself whenever it is within reach, so
    a time modulated gently is read to the bit where it says. Over
    silence it goes straight there, as nothing would be heard on the way:
    a song whose first bar sets the time of a delay it adds, or a set
    while the line is quiet. ``quiet`` and ``oldest`` are what
    :func:`_written` keeps; the cubic reads two samples either side."""
    if target > head + HEAD_LENGTHEN or target < head - HEAD_SHORTEN:
        near, far = min(head, target), max(head, target)
        silent = oldest < 0 or near >= oldest + 3.0 or (far + 2.0 <= quiet and near >= 3.0)
        if not silent:
            return head + HEAD_LENGTHEN if target > head else head - HEAD_SHORTEN
    return target


@helper
def _written(quiet, oldest, loud, size):
    """What of a line is silent after a sample (``loud`` if it was not
    zero) was written to it: how many of its newest samples are zeros,
    and the age of the oldest that may not be, -1 when it holds none
    (ages count from 1, the newest). A module keeps the two in its
    ``sound`` state, a row per line."""
    if loud:
        return 0, oldest + 1 if oldest >= 0 else 1
    if quiet + 1 >= size:
        return quiet + 1, -1
    return quiet + 1, oldest + 1 if oldest >= 0 else oldest


@kernel
def _delay_kernel(x, time, feedback, mix, tone, out, buf, pos, damp, head, sound, samplerate, dmin):
    """Fractional delay line with feedback, all channels in one call. The
    delay never drops below ``dmin`` (>= 2 samples, see read_cubic) and
    the newest sample is written only after it is read; the read head
    follows the time at a tape's pace (:func:`_follow`). What goes round
    again passes a one-pole lowpass at ``tone`` (its state in ``damp``),
    so every repeat is darker than the last; at MAX_TONE it is skipped and
    the repeats are the same bits as without it."""
    channels, n = x.shape
    size = buf.shape[1]
    dmax = MAX_DELAY * samplerate
    for c in range(channels):
        w = pos[0]
        y = damp[c]
        last_tone = np.nan
        a = 1.0
        d = head[c]
        quiet, oldest = sound[c, 0], sound[c, 1]
        for i in range(n):
            d = _follow(d, min(max(time[c, i] * samplerate, dmin), dmax), quiet, oldest)
            wet = read_cubic(buf, c, w - d)
            fb = min(max(feedback[c, i], 0.0), 0.99)
            m = min(max(mix[c, i], 0.0), 1.0)
            if tone[c, i] != last_tone:   # the exp only when the tone changes
                last_tone = tone[c, i]
                a = 1.0 if last_tone >= MAX_TONE else 1.0 - math.exp(-2.0 * math.pi * max(last_tone, MIN_TONE)
                                                                      / samplerate)
            if a == 1.0:   # no filter: the repeat itself, to the bit (y + (wet - y) need not be wet)
                y = wet
            else:
                y += a * (wet - y)
            buf[c, w] = x[c, i] + fb * y
            quiet, oldest = _written(quiet, oldest, buf[c, w] != 0.0, size)
            out[c, i] = (1.0 - m) * x[c, i] + m * wet
            w += 1
            if w == size:
                w = 0
        _flush_written(buf[c], pos[0], n)
        damp[c] = flush(y)
        head[c] = d
        sound[c, 0], sound[c, 1] = quiet, oldest
    pos[0] = (pos[0] + n) % size


def silent_lines(buf: np.ndarray) -> np.ndarray:
    """:func:`_written`'s record of lines that hold nothing yet."""
    return np.array([[buf.shape[1], -1]] * buf.shape[0], dtype=np.int64)


class Delay(Module):
    type_name = "delay"
    description = "Echo: a delay line with feedback and dry/wet mix"
    inputs = (Port("in", AUDIO, "signal to echo"),)
    outputs = (Port("out", AUDIO, "dry and echoed signal"),)
    params = (
        Param("time", 0.3, MIN_DELAY, MAX_DELAY, "s",
              doc="delay time; modulating it bends the echoes' pitch, as on tape, and a jump (a set) swoops "
                  "there, the echoes at most an octave down or up on the way"),
        Param("feedback", 0.4, 0.0, 0.99,
              doc="each repeat is this times the one before; a held sound piles up to 1 / (1 - feedback) "
                  "times its level (100 at 0.99), which the master's soft clip holds within full scale"),
        Param("mix", 0.3, 0.0, 1.0, doc="0 dry only, 1 echoes only"),
        Param("tone", MAX_TONE, MIN_TONE, MAX_TONE, "Hz",
              doc="a lowpass the repeats pass on each trip round, so each is darker than the one before, "
                  "as on a tape or bucket-brigade echo; at 20000 they stay bright"),
    )
    state_fields = ("buf", "pos", "damp", "head", "sound")

    def setup(self):
        # 4 extra samples: the interpolator's neighbours around the longest delay.
        self.buf = np.zeros((self.channels, int(np.ceil(MAX_DELAY * self.samplerate)) + 4))
        self.pos = np.zeros(1, dtype=np.int64)
        self.damp = np.zeros(self.channels)
        self.head = np.zeros(self.channels)
        self.sound = silent_lines(self.buf)
        self._dmin = max(MIN_DELAY * self.samplerate, 2.0)

    def process(self, inputs, params, outputs):
        _delay_kernel(inputs["in"], params["time"], params["feedback"], params["mix"], params["tone"],
                      outputs["out"], self.buf, self.pos, self.damp, self.head, self.sound,
                      self.samplerate, self._dmin)


@kernel
def _pingpong_kernel(x, time, feedback, mix, tone, left, right, buf, pos, damp, head, sound, samplerate, dmin):
    """Two lines that feed each other: the summed input goes into the
    left one, what comes out of it (times the feedback) into the right
    one, and what comes out of that back into the left, so the echoes
    cross from side to side, the first on the left, each ``feedback``
    times the one before and darkened as the delay's are, the read head
    following the time as the delay's does. The parameters
    come from channel 0, as the chorus's."""
    channels, n = x.shape
    size = buf.shape[1]
    dmax = MAX_DELAY * samplerate
    w = pos[0]
    yl = damp[0]
    yr = damp[1]
    last_tone = np.nan
    a = 1.0
    d = head[0]
    quiet, oldest = sound[0, 0], sound[0, 1]
    for i in range(n):
        dry = 0.0
        for c in range(channels):
            dry += x[c, i]
        d = _follow(d, min(max(time[0, i] * samplerate, dmin), dmax), quiet, oldest)
        wet_left = read_cubic(buf, 0, w - d)
        wet_right = read_cubic(buf, 1, w - d)
        fb = min(max(feedback[0, i], 0.0), 0.99)
        m = min(max(mix[0, i], 0.0), 1.0)
        if tone[0, i] != last_tone:
            last_tone = tone[0, i]
            a = 1.0 if last_tone >= MAX_TONE else 1.0 - math.exp(-2.0 * math.pi * max(last_tone, MIN_TONE)
                                                                  / samplerate)
        if a == 1.0:
            yl, yr = wet_left, wet_right
        else:
            yl += a * (wet_left - yl)
            yr += a * (wet_right - yr)
        buf[0, w] = dry + fb * yr
        buf[1, w] = fb * yl
        quiet, oldest = _written(quiet, oldest, buf[0, w] != 0.0 or buf[1, w] != 0.0, size)
        left[0, i] = (1.0 - m) * dry + m * wet_left
        right[0, i] = (1.0 - m) * dry + m * wet_right
        w = w + 1 if w + 1 < size else 0
    _flush_written(buf[0], pos[0], n)
    _flush_written(buf[1], pos[0], n)
    damp[0] = flush(yl)
    damp[1] = flush(yr)
    head[0] = d
    sound[0, 0], sound[0, 1] = quiet, oldest
    pos[0] = w


class PingPong(Module):
    type_name = "pingpong"
    description = "Stereo ping-pong echo: the repeats cross from left to right and back"
    inputs = (Port("in", AUDIO, "signal to echo (a polyphonic cable is summed to mono)"),)
    outputs = (
        Port("left", AUDIO, "left side: dry, the first echo and every other one after it", channels=1),
        Port("right", AUDIO, "right side: dry, the second echo and every other one after it", channels=1),
    )
    params = Delay.params
    state_fields = ("buf", "pos", "damp", "head", "sound")

    def setup(self):
        # 4 extra samples: the interpolator's neighbours around the longest delay.
        self.buf = np.zeros((2, int(np.ceil(MAX_DELAY * self.samplerate)) + 4))
        self.pos = np.zeros(1, dtype=np.int64)
        self.damp = np.zeros(2)
        self.head = np.zeros(1)
        self.sound = silent_lines(self.buf[:1])   # both lines, read at one head, as one
        self._dmin = max(MIN_DELAY * self.samplerate, 2.0)

    def process(self, inputs, params, outputs):
        _pingpong_kernel(inputs["in"], params["time"], params["feedback"], params["mix"], params["tone"],
                         outputs["left"], outputs["right"], self.buf, self.pos, self.damp, self.head,
                         self.sound, self.samplerate, self._dmin)


#: The chorus's taps swing around this delay, in seconds: long enough to
#: be heard as a second voice beside the dry one, short enough not to be
#: heard as an echo (a Juno-60's lines sit near 5-15 ms too).
CHORUS_CENTRE = 0.012
MAX_CHORUS_DEPTH = 0.010
MAX_CHORUS_RATE = 10.0


@kernel
def _chorus_kernel(x, rate, depth, mix, left, right, buf, pos, phase, samplerate):
    """One delay line of the summed input, read by two taps whose delays
    swing around CHORUS_CENTRE on one sine LFO in opposite directions:
    each side's copy is pitched up while the other's is pitched down, which
    is what makes a chorus wide (the Juno-60's stereo mode works so). The
    parameters come from channel 0, as the reverb's: one chorus, whatever
    the width of the cable that modulates it."""
    channels, n = x.shape
    size = buf.shape[1]
    w = pos[0]
    p = phase[0]
    for i in range(n):
        dry = 0.0
        for c in range(channels):
            dry += x[c, i]
        swing = min(max(depth[0, i], 0.0), MAX_CHORUS_DEPTH) * math.sin(2.0 * math.pi * p)
        m = min(max(mix[0, i], 0.0), 1.0)
        wet_left = read_cubic(buf, 0, w - (CHORUS_CENTRE + swing) * samplerate)
        wet_right = read_cubic(buf, 0, w - (CHORUS_CENTRE - swing) * samplerate)
        buf[0, w] = dry
        left[0, i] = (1.0 - m) * dry + m * wet_left
        right[0, i] = (1.0 - m) * dry + m * wet_right
        w = w + 1 if w + 1 < size else 0
        p += min(max(rate[0, i], 0.0), MAX_CHORUS_RATE) / samplerate
        if p >= 1.0:
            p -= 1.0
    pos[0] = w
    phase[0] = p


class Chorus(Module):
    type_name = "chorus"
    description = "Stereo chorus: two copies of the signal, gently detuned in opposite directions, beside it"
    inputs = (Port("in", AUDIO, "signal to thicken (a polyphonic cable is summed to mono)"),)
    outputs = (
        Port("left", AUDIO, "left side: dry and a copy pitched up as the right one is pitched down", channels=1),
        Port("right", AUDIO, "right side: dry and the opposite copy", channels=1),
    )
    params = (
        Param("rate", 0.5, 0.0, MAX_CHORUS_RATE, "Hz", doc="how fast the copies drift in and out of tune"),
        Param("depth", 0.002, 0.0, MAX_CHORUS_DEPTH, "s",
              doc="how far each copy's delay swings around 12 ms: the detune grows with depth x rate"),
        Param("mix", 0.5, 0.0, 1.0, doc="0 dry only, 1 the copies only (a vibrato, wide)"),
    )
    state_fields = ("buf", "pos", "phase")

    def setup(self):
        # 4 extra samples: the interpolator's neighbours around the longest delay.
        self.buf = np.zeros((1, int(np.ceil((CHORUS_CENTRE + MAX_CHORUS_DEPTH) * self.samplerate)) + 4))
        self.pos = np.zeros(1, dtype=np.int64)
        self.phase = np.zeros(1)

    def process(self, inputs, params, outputs):
        _chorus_kernel(inputs["in"], params["rate"], params["depth"], params["mix"],
                       outputs["left"], outputs["right"], self.buf, self.pos, self.phase, self.samplerate)


#: flanger's longest delay, in seconds: past 10-15 ms a sweep is heard as
#: a doubling rather than a flange.
MAX_FLANGE = 0.01
MAX_FLANGER_RATE = 10.0
#: The feedback's limit either way: at 1 the comb would ring forever.
MAX_FLANGE_FEEDBACK = 0.95


@kernel
def _flanger_kernel(x, rate, depth, delay, feedback, mix, out, buf, pos, phase, swing, samplerate):
    """A short delay line swept by a sine, fed back and mixed with the dry
    signal: a comb whose teeth slide up and down the spectrum. Every
    channel sweeps with the one phase, as one pedal would, and only the
    first channel's rate moves it: the sweep is worked out once a block,
    its sines in a loop of their own that runs as vectors."""
    channels, n = x.shape
    size = buf.shape[1]
    p = phase[0]
    for i in range(n):
        swing[i] = p
        p += min(max(rate[0, i], 0.0), MAX_FLANGER_RATE) / samplerate
        if p >= 1.0:
            p -= 1.0
    phase[0] = p
    for i in range(n):
        swing[i] = 0.5 + 0.5 * sin_turns(swing[i])
    for c in range(channels):
        w = pos[0]
        for i in range(n):
            span = min(max(depth[c, i], 0.0), 1.0)
            d = max(min(max(delay[c, i], 0.0), MAX_FLANGE) * samplerate * (1.0 - span * swing[i]), 2.0)
            wet = read_cubic(buf, c, w - d)
            fb = min(max(feedback[c, i], -MAX_FLANGE_FEEDBACK), MAX_FLANGE_FEEDBACK)
            m = min(max(mix[c, i], 0.0), 1.0)
            buf[c, w] = x[c, i] + fb * wet
            out[c, i] = (1.0 - m) * x[c, i] + m * wet
            w += 1
            if w == size:
                w = 0
        _flush_written(buf[c], pos[0], n)
    pos[0] = (pos[0] + n) % size


class Flanger(Module):
    """The jet-plane sweep of two tape machines running together, one
    slowed by a thumb on its flange. At mix 0.5 the dry signal and the
    delayed copy cancel at odd multiples of half the delay's frequency:
    notches 1/(2 x delay) apart; positive feedback sharpens the peaks
    between them, negative moves them by half a tooth."""

    type_name = "flanger"
    description = "Flanger: a short delay swept by an LFO and fed back, a comb sliding up and down the spectrum"
    inputs = (Port("in", AUDIO, "signal to flange (each channel of a polyphonic cable on its own)"),)
    outputs = (Port("out", AUDIO, "dry and delayed signal"),)
    params = (
        Param("rate", 0.25, 0.0, MAX_FLANGER_RATE, "Hz", doc="sweeps a second (0 holds the comb still)"),
        Param("depth", 0.9, 0.0, 1.0, doc="how far the delay sweeps down from delay: 1 to almost nothing"),
        Param("delay", 0.005, 0.0005, MAX_FLANGE, "s",
              doc="the longest delay, where the sweep turns: its first notch is at 1/(2 x delay)"),
        Param("feedback", 0.5, -MAX_FLANGE_FEEDBACK, MAX_FLANGE_FEEDBACK,
              doc="the delayed signal back into the line: towards +/-0.95 a metallic ring"),
        Param("mix", 0.5, 0.0, 1.0, doc="0 dry only, 0.5 the deepest notches, 1 the delayed signal alone (a vibrato)"),
    )
    state_fields = ("buf", "pos", "phase")

    def setup(self):
        size = int(MAX_FLANGE * self.samplerate) + 8
        self.buf = np.zeros((self.channels, size))
        self.pos = np.zeros(1, dtype=np.int64)
        self.phase = np.zeros(1)
        self._swing = np.zeros(self.blocksize)

    def process(self, inputs, params, outputs):
        _flanger_kernel(inputs["in"], params["rate"], params["depth"], params["delay"], params["feedback"],
                        params["mix"], outputs["out"], self.buf, self.pos, self.phase, self._swing, self.samplerate)


#: The phaser's limits: its stages (allpasses, two per notch), its sweep
#: and its feedback, short of the loop's ringing on at 1.
MAX_PHASER_STAGES = 12
MAX_PHASER_RATE = 10.0
MAX_PHASER_DEPTH = 4.0
MAX_PHASER_FEEDBACK = 0.95
#: Columns of a phaser channel's state after its allpasses' integrators:
#: the chain's last output, the stages it plays, the stages a change fades
#: from, and the samples of that fade done.
PHASER_LAST, PHASER_STAGES, PHASER_FROM, PHASER_DONE = range(MAX_PHASER_STAGES, MAX_PHASER_STAGES + 4)


@kernel
def _phaser_kernel(x, rate, depth, freq, feedback, stages, mix, out, state, phase, gains, samplerate):
    """A chain of first-order allpasses (trapezoidal, as the filters),
    all at one frequency that a sine LFO sweeps exponentially around
    ``freq``; the chain's output, fed back one sample late, is mixed with
    the dry signal. Where the chain turns the phase by an odd multiple of
    180 degrees the two cancel: stages / 2 notches, moving with the sweep.

    Every channel follows one LFO at channel 0's rate, as the chorus's, so
    a chord's voices sweep together, and channels whose depth and freq are
    channel 0's all block long (a mono cable spread to every voice, or
    none) read the allpass gains channel 0 worked out into ``gains``: the
    sweep's sin, power and tan cost more than the chain. A channel that
    works its gains out does so in the loop that runs its chain, where
    they overlap with the chain's long recursion (in a pass of their own
    one channel took 46 ns a sample instead of 38).
    ``state[c, :MAX_PHASER_STAGES]`` holds the allpasses' integrators,
    then come the PHASER_* columns. A change of ``stages`` crossfades from
    the old chain's output to the new one's over mode_fade: switched
    outright, the two outputs' phases differ, and that clicked (27 times
    the signal's steepest step from 4 to 5 stages)."""
    channels, n = x.shape
    fade = mode_fade(samplerate)
    fmax = MAX_CUTOFF_RATIO * samplerate
    warp = math.pi / samplerate
    shared = True
    start = end = phase[0]
    for c in range(channels):
        if c > 0:
            shared = shared and same_as_previous(depth, c) and same_as_previous(freq, c)
        own = c == 0 or not shared
        p = start
        last = state[c, PHASER_LAST]
        playing = int(state[c, PHASER_STAGES])
        origin = int(state[c, PHASER_FROM])
        done = state[c, PHASER_DONE]
        for i in range(n):
            if own:
                octaves = min(max(depth[c, i], 0.0), MAX_PHASER_DEPTH) * math.sin(2.0 * math.pi * p)
                g = math.tan(min(max(freq[c, i] * 2.0 ** octaves, MIN_CUTOFF), fmax) * warp)
                gain = g / (1.0 + g)
                if c == 0:
                    gains[i] = gain
                p += min(max(rate[0, i], 0.0), MAX_PHASER_RATE) / samplerate
                if p >= 1.0:
                    p -= 1.0
            else:
                gain = gains[i]
            count = min(max(int(stages[c, i] + 0.5), 1), MAX_PHASER_STAGES)
            if count != playing:
                origin = count if playing == 0 else playing   # 0: the first sample, nothing to fade from
                playing = count
                done = 0.0 if origin != count else fade
            v = x[c, i] + min(max(feedback[c, i], -MAX_PHASER_FEEDBACK), MAX_PHASER_FEEDBACK) * last
            if done >= fade:
                for k in range(count):
                    s = state[c, k]
                    u = (v - s) * gain
                    low = u + s
                    state[c, k] = low + u
                    v = 2.0 * low - v
            else:
                was = now = v
                for k in range(max(count, origin)):
                    s = state[c, k]
                    u = (v - s) * gain
                    low = u + s
                    state[c, k] = low + u
                    v = 2.0 * low - v
                    if k + 1 == origin:
                        was = v
                    if k + 1 == count:
                        now = v
                w = (done + 0.5) / fade
                v = (1.0 - w) * was + w * now
                done += 1.0
            last = v
            m = min(max(mix[c, i], 0.0), 1.0)
            out[c, i] = (1.0 - m) * x[c, i] + m * v
        state[c, PHASER_LAST] = last
        state[c, PHASER_STAGES] = playing
        state[c, PHASER_FROM] = origin
        state[c, PHASER_DONE] = done
        for k in range(MAX_PHASER_STAGES + 1):
            state[c, k] = flush(state[c, k])
        if c == 0:
            end = p
    phase[0] = end


class Phaser(Module):
    type_name = "phaser"
    description = "Phaser: notches that sweep up and down the spectrum, from a chain of allpass filters"
    inputs = (Port("in", AUDIO, "signal to sweep"),)
    outputs = (Port("out", AUDIO, "the signal with its moving notches"),)
    params = (
        Param("rate", 0.3, 0.0, MAX_PHASER_RATE, "Hz", doc="sweeps per second (0 holds the notches still)"),
        Param("depth", 1.5, 0.0, MAX_PHASER_DEPTH, "oct",
              doc="how far the allpasses' frequency swings up and down from freq"),
        Param("freq", 800.0, 20.0, 20000.0, "Hz",
              doc="the allpasses' frequency at the sweep's middle; 4 stages without feedback "
                  "put their notches at 0.41 and 2.4 times it"),
        Param("feedback", 0.3, -MAX_PHASER_FEEDBACK, MAX_PHASER_FEEDBACK,
              doc="the chain's output back into its input: peaks between the notches; negative moves them"),
        Param("stages", 4, 1, MAX_PHASER_STAGES, integer=True,
              doc="allpasses in the chain: each pair makes one notch (4 is the classic pedal's)"),
        Param("mix", 0.5, 0.0, 1.0, doc="0 dry only, 0.5 the deepest notches, 1 the chain alone (a vibrato)"),
    )
    state_fields = ("state", "phase")

    def setup(self):
        self.state = np.zeros((self.channels, PHASER_DONE + 1))
        self.phase = np.zeros(1)
        self._gains = np.zeros(self.blocksize)

    def process(self, inputs, params, outputs):
        _phaser_kernel(inputs["in"], params["rate"], params["depth"], params["freq"], params["feedback"],
                       params["stages"], params["mix"], outputs["out"], self.state, self.phase, self._gains,
                       self.samplerate)


@kernel
def _reverb_kernel(x, size, damping, mix, left, right,
                   comb_buf, comb_len, comb_idx, comb_store, ap_buf, ap_len, ap_idx):
    """Freeverb: per side, 8 parallel lowpass-feedback combs then 4 series
    allpasses. Lines 0-7 / 0-3 are the left side, 8-15 / 4-7 the right.

    Parameters come from channel 0: the reverb is one room, whatever the
    width of the cable that modulates it.
    """
    channels, n = x.shape
    for i in range(n):
        dry = 0.0
        for c in range(channels):
            dry += x[c, i]
        feed = dry * REVERB_INPUT_GAIN
        g = 0.7 + 0.28 * min(max(size[0, i], 0.0), 1.0)
        damp = 0.4 * min(max(damping[0, i], 0.0), 1.0)
        m = min(max(mix[0, i], 0.0), 1.0)
        for side in range(2):
            acc = 0.0
            for k in range(8 * side, 8 * side + 8):
                j = comb_idx[k]
                y = comb_buf[k, j]
                # One-pole lowpass in the loop: highs die faster, as in a room.
                s = y * (1.0 - damp) + comb_store[k] * damp
                # Flush the recirculating state before it turns denormal and slow.
                comb_store[k] = s if abs(s) > 1e-30 else 0.0
                comb_buf[k, j] = feed + comb_store[k] * g
                comb_idx[k] = j + 1 if j + 1 < comb_len[k] else 0
                acc += y
            for k in range(4 * side, 4 * side + 4):
                j = ap_idx[k]
                b = ap_buf[k, j]
                ap_buf[k, j] = acc + b * ALLPASS_FEEDBACK
                acc = b - acc
                ap_idx[k] = j + 1 if j + 1 < ap_len[k] else 0
            wet = (1.0 - m) * dry + m * REVERB_WET_GAIN * acc
            if side == 0:
                left[0, i] = wet
            else:
                right[0, i] = wet
    for k in range(ap_idx.shape[0]):   # the combs' stores are flushed as they go
        _flush_written(ap_buf[k, :ap_len[k]], (ap_idx[k] - n) % ap_len[k], n)


class Reverb(Module):
    type_name = "reverb"
    description = "Stereo room reverb (Freeverb): a mono or polyphonic signal in, a stereo hall out"
    inputs = (Port("in", AUDIO, "signal to reverberate (a polyphonic cable is summed to mono)"),)
    outputs = (
        Port("left", AUDIO, "left side: dry and reverb", channels=1),
        Port("right", AUDIO, "right side: dry and reverb", channels=1),
    )
    params = (
        Param("size", 0.5, 0.0, 1.0, doc="room size: RT60 from ~0.5 s at 0 to ~10 s at 1"),
        Param("damping", 0.5, 0.0, 1.0, doc="how much faster the highs die away: 0 bright, 1 dark"),
        Param("mix", 0.3, 0.0, 1.0, doc="0 dry only, 1 reverb only"),
    )
    state_fields = ("comb_buf", "comb_idx", "comb_store", "ap_buf", "ap_idx")

    def setup(self):
        scale = self.samplerate / FREEVERB_RATE

        def lengths(base):
            return np.array([max(1, round((b + spread) * scale))
                             for spread in (0, STEREO_SPREAD) for b in base], dtype=np.int64)

        self._comb_len = lengths(COMB_LENGTHS)
        self._ap_len = lengths(ALLPASS_LENGTHS)
        self.comb_buf = np.zeros((16, self._comb_len.max()))
        self.comb_idx = np.zeros(16, dtype=np.int64)
        self.comb_store = np.zeros(16)
        self.ap_buf = np.zeros((8, self._ap_len.max()))
        self.ap_idx = np.zeros(8, dtype=np.int64)

    def process(self, inputs, params, outputs):
        _reverb_kernel(inputs["in"], params["size"], params["damping"], params["mix"],
                       outputs["left"], outputs["right"], self.comb_buf, self._comb_len,
                       self.comb_idx, self.comb_store, self.ap_buf, self._ap_len, self.ap_idx)


MODULES = (Delay, PingPong, Chorus, Flanger, Phaser, Reverb)
