import numpy as np
import pytest

from synthcli.modules.effects import CHORUS_CENTRE, Chorus, Delay, Flanger, Phaser, PingPong, Reverb
from synthcli.testing import check_module, peak_frequency, render_module, rms

SR = 48000
BS = 256


def blocks(seconds):
    return int(np.ceil(seconds * SR / BS))


def impulse(seconds):
    x = np.zeros(blocks(seconds) * BS)
    x[0] = 1.0
    return x


@pytest.mark.parametrize("cls", [Delay, PingPong, Chorus, Flanger, Phaser, Reverb])
def test_contract(cls):
    check_module(cls)


# -- delay ----------------------------------------------------------------

@pytest.mark.parametrize("time", [0.3, 0.12345, 0.001, 2.0])
def test_delay_impulse_arrives_after_time(time):
    x = impulse(time + 0.05)
    out = render_module(Delay, len(x) // BS, params={"time": time, "feedback": 0.0, "mix": 1.0},
                        inputs={"in": x})["out"][0]
    assert abs(np.argmax(np.abs(out)) - time * SR) <= 1
    assert np.isclose(out.sum(), 1.0)  # one echo, nothing else


def test_delay_repeats_decay_by_feedback():
    x = impulse(0.45)
    out = render_module(Delay, len(x) // BS, params={"time": 0.1, "feedback": 0.5, "mix": 1.0},
                        inputs={"in": x})["out"][0]
    echoes = out[[4800, 9600, 14400, 19200]]
    np.testing.assert_allclose(echoes, [1.0, 0.5, 0.25, 0.125])
    assert np.abs(out).sum() == pytest.approx(echoes.sum())


def test_delay_tone_darkens_each_repeat_by_one_more_pass_of_its_lowpass():
    """An impulse's first echo is the impulse; the second has gone round
    once through the one-pole at tone, so it is that filter's impulse
    response, a(1-a)^n, times the feedback; the third twice."""
    x = impulse(0.35)
    out = render_module(Delay, len(x) // BS, params={"time": 0.1, "feedback": 0.7, "mix": 1.0, "tone": 2000.0},
                        inputs={"in": x})["out"][0]
    a = 1 - np.exp(-2 * np.pi * 2000 / SR)
    n = np.arange(400)
    assert out[4800] == 1.0 and not out[4801:9600].any()
    np.testing.assert_allclose(out[9600:10000], 0.7 * a * (1 - a) ** n, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out[14400:14800], 0.49 * a * a * (n + 1) * (1 - a) ** n, rtol=1e-9, atol=1e-15)
    assert out[9600:14400].sum() == pytest.approx(0.7, rel=1e-6)    # a lowpass: the level of the lows stays


def pingpong(x, channels=1, **params):
    out = render_module(PingPong, x.shape[-1] // BS, inputs={"in": x}, channels=channels,
                        params={"time": 0.1, "feedback": 0.5, "mix": 1.0, **params})
    return out["left"][0], out["right"][0]


def test_pingpong_echoes_cross_from_left_to_right_each_a_feedback_quieter():
    left, right = pingpong(impulse(0.45))
    at = [4800, 9600, 14400, 19200]
    np.testing.assert_array_equal(left[at], [1.0, 0.0, 0.25, 0.0])
    np.testing.assert_array_equal(right[at], [0.0, 0.5, 0.0, 0.125])
    assert np.abs(left).sum() == 1.25 and np.abs(right).sum() == 0.625   # nothing between the echoes


def test_pingpong_sums_a_chord_and_darkens_as_the_delay_does():
    """Two channels' impulses are one echo; the right side's first (the
    second echo) has passed the lowpass once, as the delay's does."""
    x = np.zeros((2, blocks(0.25) * BS))
    x[0, 0] = 0.25
    x[1, 0] = 0.5
    left, right = pingpong(x, channels=2, tone=2000.0, feedback=0.7)
    assert left[4800] == 0.75
    delay = render_module(Delay, x.shape[1] // BS, inputs={"in": x.sum(axis=0)},
                          params={"time": 0.1, "feedback": 0.7, "mix": 1.0, "tone": 2000.0})["out"][0]
    np.testing.assert_allclose(right[9600:12000], delay[9600:12000], rtol=1e-12, atol=1e-18)
    left, right = pingpong(x, channels=2, mix=0.0)
    np.testing.assert_array_equal(left, x.sum(axis=0))
    np.testing.assert_array_equal(right, x.sum(axis=0))


def test_delay_mix_zero_is_dry():
    x = np.random.default_rng(0).uniform(-1, 1, 20 * BS)
    out = render_module(Delay, 20, params={"time": 0.01, "feedback": 0.9, "mix": 0.0},
                        inputs={"in": x})["out"][0]
    np.testing.assert_array_equal(out, x)


def test_delay_poly_channels_are_independent():
    x = impulse(0.25)
    time = np.array([[0.1], [0.2]]) * np.ones(len(x))
    out = render_module(Delay, len(x) // BS, channels=2, inputs={"in": x},
                        params={"time": time, "feedback": 0.0, "mix": 1.0})["out"]
    assert list(np.argmax(out, axis=1)) == [4800, 9600]


def test_delay_modulated_time_stays_finite():
    n = blocks(3.0)
    t = np.arange(n * BS) / SR
    time = 0.5 + 1.5 * np.sin(2 * np.pi * 3 * t)  # sweeps past both ends of the range
    x = np.random.default_rng(1).uniform(-1, 1, n * BS)
    out = render_module(Delay, n, params={"time": time, "feedback": 0.99, "mix": 0.5},
                        inputs={"in": x})["out"]
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 100  # 1 / (1 - feedback)


def catmull_rom(x, positions):
    """x read at fractional positions (x is 0 before its start) by the
    cubic Hermite (Catmull-Rom) spline through the four nearest samples,
    written in its textbook form, apart from the kernel's."""
    base = np.floor(positions).astype(int)
    f = positions - base
    y0, y1, y2, y3 = (np.where((k >= 0) & (k < len(x)), x[np.clip(k, 0, len(x) - 1)], 0.0)
                      for k in (base - 1, base, base + 1, base + 2))
    return 0.5 * (2 * y1 + (y2 - y0) * f + (2 * y0 - 5 * y1 + 4 * y2 - y3) * f ** 2
                  + (3 * (y1 - y2) + y3 - y0) * f ** 3)


def echo(x, time):
    """The echo alone: feedback 0, mix 1."""
    return render_module(Delay, len(x) // BS, inputs={"in": x},
                         params={"time": time, "feedback": 0.0, "mix": 1.0})["out"]


@pytest.mark.parametrize("samples", [48.3, 100.25, 100.5, 1234.75])
def test_delay_fractional_time_reads_between_samples_by_hermite(samples):
    x = np.random.default_rng(4).uniform(-1, 1, 8 * BS)
    time = samples / SR
    out = echo(x, time)[0]
    np.testing.assert_allclose(out, catmull_rom(x, np.arange(len(x)) - time * SR), rtol=0, atol=1e-12)


def test_delay_fractional_time_keeps_a_sine_whole():
    """1 kHz delayed by 100.5 samples: the cubic keeps its level to 1e-5
    and its phase exact (linear interpolation would lose 0.2 %, rounding
    to a sample shift its phase by 3.75 degrees)."""
    n = np.arange(8 * BS)
    w = 2 * np.pi * 1000 / SR
    out = echo(np.sin(w * n), 100.5 / SR)[0]
    np.testing.assert_allclose(out[200:], np.sin(w * (n[200:] - 100.5)), rtol=0, atol=2e-5)


def test_delay_time_modulated_within_a_block_moves_every_sample():
    """A delay time that falls 0.25 s per second, sample by sample, reads
    the line a quarter faster than it is written: each sample where its
    own time says, so a sine comes out a quarter higher, as tape sped up.
    The same ramp held over each block sounds otherwise."""
    n = blocks(1.0) * BS
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * 1000 * t)
    ramp = 0.5 - 0.25 * t
    out = echo(x, ramp)[0]
    np.testing.assert_allclose(out, catmull_rom(x, np.arange(n) - ramp * SR), rtol=0, atol=1e-12)
    assert peak_frequency(out[SR // 2:]) == pytest.approx(1250, abs=2)
    assert rms(out - echo(x, np.repeat(ramp[::BS], BS))[0]) > 0.5


@pytest.mark.parametrize("cls", [Delay, PingPong])
@pytest.mark.parametrize("before, after, pitch", [(0.1, 0.4, 500.0), (0.4, 0.1, 2000.0)])
def test_a_jump_of_the_delay_time_swoops_there_within_an_octave_and_never_zips(cls, before, after, pitch):
    """A time that jumps (a set, a stepped LFO) moves the read head at a
    tape's pace: a 1 kHz echo bends an octave down while the time grows
    by 0.3 s (0.6 s of it) or up while it shrinks (0.3 s), then reads
    the new time to the bit. Read where the time said, the head crossed
    0.3 s of the line at once, a step of up to 2 in a sine of 1."""
    n = blocks(2.0) * BS
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * 1000 * t)
    jump = SR // 2
    time = np.where(np.arange(n) < jump, before, after)
    out = render_module(cls, n // BS, inputs={"in": x}, params={"time": time, "feedback": 0.0, "mix": 1.0})
    out = out["out" if cls is Delay else "left"][0]
    swoop = round(abs(after - before) * SR / (0.5 if after > before else 1.0))
    steepest = 2 * np.pi * 1000 / SR
    assert np.abs(np.diff(out[jump - 10:])).max() < 2 * steepest * 1.001
    assert peak_frequency(out[jump + swoop // 4:jump + 3 * swoop // 4]) == pytest.approx(pitch, rel=0.01)
    settled = np.arange(jump + swoop + 1, n)
    np.testing.assert_allclose(out[settled], catmull_rom(x, settled - after * SR), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [Delay, PingPong])
def test_over_silence_the_read_head_goes_straight_to_its_time(cls):
    """A song that adds a delay and sets its time in its first bar glides
    the time from the value it was added with over the first 5 ms, while
    the first note is already in the line: nothing is heard on the way
    (the line held nothing before it), so the head goes straight to its
    time and the first echo comes on time, not after a swoop half a second
    long."""
    n = blocks(1.0) * BS
    x = np.zeros(n)
    x[0] = 1.0
    glide = round(0.005 * SR)
    time = np.full(n, 0.25)
    time[:glide] = 0.9 + (0.25 - 0.9) * np.arange(glide) / glide
    out = render_module(cls, n // BS, inputs={"in": x}, params={"time": time, "feedback": 0.0, "mix": 1.0})
    out = out["out" if cls is Delay else "left"][0]
    assert np.argmax(np.abs(out[1:])) + 1 == 0.25 * SR
    assert np.abs(out[1:round(0.25 * SR) - 2]).max() == 0.0


# -- reverb ---------------------------------------------------------------

def reverb_impulse(seconds=2.0, **params):
    x = impulse(seconds)
    out = render_module(Reverb, len(x) // BS, params={"mix": 1.0, **params}, inputs={"in": x})
    return out["left"][0], out["right"][0]


def rt60(y):
    """Reverberation time from Schroeder's backward integral (-5..-35 dB, doubled)."""
    energy = np.cumsum(y[::-1] ** 2)[::-1]
    db = 10 * np.log10(energy / energy[0] + 1e-300)
    return 2 * (np.argmax(db < -35) - np.argmax(db < -5)) / SR


def test_reverb_tail_grows_with_size():
    tails = [reverb_impulse(3.0, size=size)[0] for size in (0.0, 0.5, 0.9)]
    times = [rt60(y) for y in tails]
    late = [np.sum(y[SR // 2:] ** 2) / np.sum(y ** 2) for y in tails]
    assert times[0] < times[1] < times[2]
    assert 0.3 < times[0] < 0.8 and times[2] > 3.0
    assert late[0] < late[1] < late[2]


def test_reverb_damping_darkens_tail():
    def high_share(damping):
        y = reverb_impulse(1.0, damping=damping)[0][int(0.3 * SR):]
        spectrum = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / SR)
        return spectrum[freqs > 4000].sum() / spectrum.sum()

    bright, medium, dark = high_share(0.0), high_share(0.5), high_share(1.0)
    assert bright > medium > dark and dark < 0.1 * bright


def test_reverb_sides_decorrelated_but_balanced():
    left, right = reverb_impulse(1.0)
    left, right = left[SR // 20:], right[SR // 20:]
    assert abs(np.corrcoef(left, right)[0, 1]) < 0.3
    assert 0.7 < np.sum(left ** 2) / np.sum(right ** 2) < 1.4


def test_reverb_silence_in_silence_out():
    out = render_module(Reverb, 20, channels=3)
    assert not out["left"].any() and not out["right"].any()


def test_reverb_sums_poly_input_to_mono():
    x = np.random.default_rng(2).uniform(-1, 1, (3, 10 * BS))
    poly = render_module(Reverb, 10, channels=3, inputs={"in": x})
    mono = render_module(Reverb, 10, inputs={"in": x.sum(axis=0)})
    assert poly["left"].shape == (1, 10 * BS)
    np.testing.assert_allclose(poly["left"], mono["left"], atol=1e-12)


def test_reverb_bounded_for_long_loud_input():
    # Worst case is DC at the largest size and no damping: eight combs of
    # gain 1 / (1 - 0.98) at input gain 0.015 and wet gain 3 give 18.
    n = blocks(10.0)
    noise = np.random.default_rng(3).choice([-1.0, 1.0], n * BS)
    for x in (noise, np.ones(n * BS)):
        out = render_module(Reverb, n, params={"size": 1.0, "damping": 0.0, "mix": 1.0},
                            inputs={"in": x})
        for y in (out["left"][0], out["right"][0]):
            assert np.isfinite(y).all() and np.abs(y).max() < 20
            early, late = np.abs(y[3 * SR:5 * SR]).max(), np.abs(y[8 * SR:]).max()
            assert late < 1.2 * early  # settled, not growing


# -- tails ----------------------------------------------------------------

@pytest.mark.parametrize("cls, params", [
    (Delay, {"time": 0.1, "feedback": 0.5}),
    (PingPong, {"time": 0.1, "feedback": 0.5}),
    (Reverb, {"size": 0.5}),
    (Flanger, {"feedback": 0.9}),
])
def test_tails_end_in_zeros_not_denormals(cls, params):
    """A tail that fades below -600 dB is cut to exact zeros, which it would
    otherwise reach only after passing through denormal numbers, slow on x86
    (a delay at feedback 0.9 cost three times as much for minutes, half an
    hour after its input stopped: benchmarks/tails.py). A block at -540 dB
    goes in, then 3 s of silence: longer than the delay line, and time for
    either tail to fall below -600 dB, but not, unflushed, to zero."""
    module = cls(SR, BS, 2)
    values = {p.name: np.full((2, BS), float(params.get(p.name, p.default_value))) for p in cls.params}
    inputs = {p.name: np.zeros((2, BS)) for p in cls.inputs}
    outputs = {p.name: np.zeros((p.channels or 2, BS)) for p in cls.outputs}
    inputs["in"][...] = np.random.default_rng(0).uniform(-1e-27, 1e-27, (2, BS))
    module.process(inputs, values, outputs)
    assert any(np.abs(getattr(module, f)).max() > 1e-30 for f in module.state_fields)
    inputs["in"][...] = 0.0
    for _ in range(blocks(3.0)):
        module.process(inputs, values, outputs)
    for field in module.state_fields:
        state = getattr(module, field)
        if state.dtype.kind == "f" and field not in ("phase", "head"):   # an LFO's phase, a read head: no tail
            assert not state.any(), field


# -- chorus ---------------------------------------------------------------

def test_chorus_taps_swing_in_opposite_directions_on_one_sine():
    """A ramp comes through cubic interpolation exactly, so what each side
    plays says its delay, sample by sample: 12 ms plus and minus depth
    times the LFO's sine. A polyphonic cable is summed first."""
    rate, depth, step = 1.5, 0.003, 1e-4
    n = blocks(1.0) * BS
    ramp = np.arange(n) * step
    out = render_module(Chorus, n // BS, channels=2, inputs={"in": np.stack([ramp * 0.25, ramp * 0.75])},
                        params={"rate": rate, "depth": depth, "mix": 1.0})
    full = int((CHORUS_CENTRE + depth) * SR) + 3   # from here the line holds the ramp, not its zeros
    swing = depth * np.sin(2 * np.pi * rate * np.arange(n) / SR)
    for side, sign in (("left", 1), ("right", -1)):
        delay = (ramp - out[side][0]) / step
        np.testing.assert_allclose(delay[full:], ((CHORUS_CENTRE + sign * swing) * SR)[full:], atol=1e-5)


def test_chorus_mix_zero_is_dry_and_depth_zero_a_plain_delay():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 10 * BS)
    dry = render_module(Chorus, 10, inputs={"in": x}, params={"mix": 0.0})
    np.testing.assert_array_equal(dry["left"][0], x)
    np.testing.assert_array_equal(dry["right"][0], x)
    still = render_module(Chorus, 10, inputs={"in": x}, params={"mix": 1.0, "depth": 0.0})
    lag = int(CHORUS_CENTRE * SR)
    for side in ("left", "right"):
        np.testing.assert_array_equal(still[side][0][lag:], x[:-lag])
        assert not still[side][0][:lag].any()


def test_chorus_widens_a_mono_sound_without_changing_its_pitch():
    """The sides differ (each copy is detuned the other way), but a sine
    keeps its pitch on average and its level within a few dB."""
    t = np.arange(blocks(2.0) * BS) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    out = render_module(Chorus, len(t) // BS, inputs={"in": x}, params={"rate": 0.8, "depth": 0.004})
    left, right = out["left"][0][SR // 10:], out["right"][0][SR // 10:]
    assert np.corrcoef(left, right)[0, 1] < 0.9
    for side in (left, right):
        assert peak_frequency(side, SR) == pytest.approx(440, rel=0.002)
        assert 0.5 < rms(side) / rms(x) < 1.5


# -- phaser ---------------------------------------------------------------

def phaser(x, channels=1, **params):
    return render_module(Phaser, x.shape[-1] // BS, inputs={"in": x}, params=params, channels=channels)["out"]


def sine(hz, seconds):
    return np.sin(2 * np.pi * hz * np.arange(blocks(seconds) * BS) / SR)


def notch(freq, k, stages):
    """Where ``stages`` trapezoidal allpasses at ``freq`` turn the phase by
    (2k + 1) x 180 degrees: each stage's phase is -2 atan(tan(pi f / SR) /
    tan(pi freq / SR)), the analog curve on the prewarped axis."""
    each = (2 * k + 1) * np.pi / stages / 2
    return np.arctan(np.tan(np.pi * freq / SR) * np.tan(each)) * SR / np.pi


def level_db(x):
    return 20 * np.log10(rms(x) * np.sqrt(2))


@pytest.mark.parametrize("stages", [2, 4, 6, 12])
def test_a_still_phaser_cancels_at_its_notches_and_passes_between(stages):
    """Without sweep and feedback, at mix 0.5: a sine at each of the
    stages / 2 notches is gone (the chain turns it upside down), and one
    between two notches (in phase after the chain; for two stages, far
    below their one notch) passes nearly whole."""
    for k in range(stages // 2):
        y = phaser(sine(notch(700, k, stages), 0.5), depth=0, freq=700, feedback=0, stages=stages)[0]
        assert level_db(y[SR // 4:]) < -100
    between = 70 if stages == 2 else np.sqrt(notch(700, 0, stages) * notch(700, 1, stages))
    y = phaser(sine(between, 0.5), depth=0, freq=700, feedback=0, stages=stages)[0]
    assert level_db(y[SR // 4:]) > -6


def test_a_phasers_notches_sweep_with_its_lfo():
    """rate 2 Hz, depth 1 octave: the notch of a 2-stage chain sits on a
    sine at freq when the LFO crosses zero (every quarter second), and has
    moved an octave away a quarter of a cycle later."""
    y = phaser(sine(1000, 1.0), rate=2, depth=1, freq=1000, feedback=0, stages=2)[0]
    window = 480
    centred = [level_db(y[t - window // 2:t + window // 2]) for t in (SR // 4, SR // 2, 3 * SR // 4)]
    swung = [level_db(y[t - window // 2:t + window // 2]) for t in (SR // 8, 3 * SR // 8, 5 * SR // 8)]
    assert max(centred) < -25
    assert min(swung) > -8


def test_phaser_mix_zero_is_dry_and_feedback_stays_bounded():
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (2, blocks(1.0) * BS))
    np.testing.assert_array_equal(phaser(x, channels=2, mix=0.0), x)
    for feedback in (0.95, -0.95):
        y = phaser(x, channels=2, feedback=feedback, stages=12, rate=5, depth=4)
        assert np.isfinite(y).all() and np.abs(y).max() < 20
    y = phaser(sine(1000, 1.0), feedback=0.95, depth=0, freq=1000, stages=4)[0]
    assert level_db(y[SR // 2:]) > 6   # feedback raises a peak between the notches, as it should


@pytest.mark.parametrize("before, after", [(4, 5), (5, 12), (12, 1)])
def test_a_phasers_stages_change_without_a_click(before, after):
    """Switched outright, the old chain's output and the new one's differ
    in phase: 4 to 5 stages stepped 27 times the sine's steepest step. The
    change crossfades over 5 ms (which steepens a sine a little), and the
    new chain plays on alone."""
    x = sine(220, 0.5)
    n = x.shape[-1]
    stages = np.where(np.arange(n) < n // 2, float(before), float(after))
    y = phaser(x, depth=0, rate=0, stages=stages)[0]
    steps = np.abs(np.diff(y))
    steepest = max(steps[n // 8:n // 2 - 10].max(), steps[n // 2 + 2000:].max())
    assert steps[n // 2 - 10:n // 2 + 2000].max() < 1.5 * steepest   # a fade between two phases, no step
    alone = phaser(x, depth=0, rate=0, stages=after)[0]
    assert np.abs(y[-1000:] - alone[-1000:]).max() < 1e-3   # the fresh stages' start has died away


def test_phaser_voices_sweep_as_each_would_alone():
    """Channels that share channel 0's depth and freq share its sweep's
    gains, one with a freq of its own works out its own; either way each
    plays the samples it would through a phaser of its own."""
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (3, blocks(0.5) * BS))
    freq = np.stack([np.full(x.shape[1], 800.0), np.full(x.shape[1], 800.0), np.linspace(300, 3000, x.shape[1])])
    together = phaser(x, channels=3, freq=freq, rate=1.5, depth=2)
    for c in range(3):
        np.testing.assert_array_equal(together[c], phaser(x[c], freq=freq[c], rate=1.5, depth=2)[0])


# -- flanger --------------------------------------------------------------

def flanger(x, channels=1, **params):
    return render_module(Flanger, x.shape[-1] // BS, inputs={"in": x}, params=params, channels=channels)["out"]


@pytest.mark.parametrize("feedback", [0.0, 0.7, -0.7])
@pytest.mark.parametrize("hz", [500.0, 1000.0, 1250.0])
def test_a_still_flanger_is_the_comb_its_delay_and_feedback_make(feedback, hz):
    """Held at 1 ms, at mix 0.5: y = (x + w) / 2 where w, the line's
    output, is z^-d (x + fb w); so a sine comes out scaled by
    |1 + e / (1 - fb e)| / 2 with e = exp(-j 2 pi f d): 500 Hz sits in the
    first notch, 1000 Hz on a peak, 1250 Hz between."""
    y = flanger(sine(hz, 0.5), rate=0, depth=0, delay=0.001, feedback=feedback)[0]
    e = np.exp(-2j * np.pi * hz * 0.001)
    gain = abs((1 + e / (1 - feedback * e)) / 2)
    measured = rms(y[SR // 4:]) * np.sqrt(2)
    if gain < 1e-6:
        assert measured < 1e-6
    else:
        assert measured == pytest.approx(gain, rel=0.01)


def test_a_flangers_notch_sweeps_with_its_lfo():
    """rate 1 Hz, depth 0.5 from 2 ms: the delay swings between 2 ms and
    1 ms, so its first notch between 250 and 500 Hz, and passes a sine
    at 375 Hz twice a second; held still it never does."""
    y = flanger(sine(375, 2.0), rate=1.0, depth=0.5, delay=0.002, feedback=0)[0]
    window = 384   # three cycles
    levels = [rms(y[t:t + window]) for t in range(SR // 4, 2 * SR - window, window)]
    assert min(levels) < 0.02 and max(levels) > 0.45   # 0.5: the gain at 2 ms is |cos(0.75 pi)|
    still = flanger(sine(375, 2.0), rate=0, depth=0.5, delay=0.002, feedback=0)[0]
    assert np.ptp([rms(still[t:t + window]) for t in range(SR // 4, 2 * SR - window, window)]) < 1e-3


def test_flanger_mix_zero_is_dry_and_voices_flange_alike_each_on_its_own():
    x = np.random.default_rng(4).uniform(-0.5, 0.5, (2, blocks(0.5) * BS))
    np.testing.assert_array_equal(flanger(x, channels=2, mix=0.0), x)
    together = flanger(x, channels=2, feedback=0.8)
    for c in range(2):
        np.testing.assert_array_equal(together[c], flanger(x[c], feedback=0.8)[0])
    assert np.isfinite(flanger(x, channels=2, feedback=0.95, depth=1, rate=10)).all()
