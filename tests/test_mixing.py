import numpy as np
import pytest

from synthcli.modules.dynamics import KNEE_DB, SOFT_CLIP_KNEE, Comp, Mix, Out, Pan
from synthcli.testing import check_module, render_module

BS = 64


@pytest.mark.parametrize("cls", [Mix, Out, Pan, Comp])
def test_contract(cls):
    check_module(cls)


def soft_clip(x):
    head = 1.0 - SOFT_CLIP_KNEE
    over = np.abs(x) > SOFT_CLIP_KNEE
    squashed = np.sign(x) * (SOFT_CLIP_KNEE + head * np.tanh((np.abs(x) - SOFT_CLIP_KNEE) / head))
    return np.where(over, squashed, x)


def test_out_passes_quiet_blocks_and_squashes_only_samples_past_the_knee():
    """Block 0 stays under the knee on both sides; in block 1 only the
    right side passes it, in one sample (the master skips the clip for a
    quiet block, so each side and sample must still be judged alone)."""
    rng = np.random.default_rng(1)
    left = rng.uniform(-0.3, 0.3, 2 * BS)
    right = rng.uniform(-0.3, 0.3, 2 * BS)
    right[BS + 7] = 1.7
    mono = np.vstack([rng.uniform(-0.2, 0.2, 2 * BS), rng.uniform(-0.2, 0.2, 2 * BS)])
    out = render_module(Out, 2, blocksize=BS, channels=2, inputs={"in": mono, "left": np.vstack([left, 0 * left]),
                                                                  "right": np.vstack([right, 0 * right])})["master"]
    expected = np.vstack([(mono[0] + left) + mono[1], (mono[0] + right) + mono[1]])   # the kernel's order
    quiet = np.abs(expected) <= SOFT_CLIP_KNEE
    assert quiet[:, :BS].all() and not quiet[1, BS + 7]
    np.testing.assert_array_equal(out[quiet], expected[quiet])   # untouched, bit for bit
    np.testing.assert_allclose(out, soft_clip(expected), rtol=1e-12, atol=1e-15)
    assert SOFT_CLIP_KNEE < out[1, BS + 7] < 1.0


def test_mix_sums_inputs_times_levels():
    rng = np.random.default_rng(0)
    ins = {f"in{k}": rng.uniform(-1, 1, 4 * BS) for k in range(1, 5)}
    levels = {"level1": 1.0, "level2": 0.5, "level3": 0.0, "level4": 4.0}
    out = render_module(Mix, 4, blocksize=BS, inputs=ins, params=levels)["out"][0]
    expected = ins["in1"] + 0.5 * ins["in2"] + 4.0 * ins["in4"]
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_mix_levels_modulated_within_a_block_scale_every_sample():
    """Each level from a cable of its own (LFOs and a ramp, each moving
    every sample, two voices apart) scales its input sample by sample."""
    rng = np.random.default_rng(2)
    t = np.arange(4 * BS) / 48000
    ins = {f"in{k}": rng.uniform(-1, 1, (2, 4 * BS)) for k in range(1, 5)}
    levels = {"level1": np.vstack([1 + np.sin(2 * np.pi * 700 * t), np.linspace(0, 4, 4 * BS)]),
              "level2": np.vstack([np.linspace(4, 0, 4 * BS), 2 + 2 * np.cos(2 * np.pi * 300 * t)]),
              "level3": np.vstack([0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 1000 * t)), np.linspace(1, 3, 4 * BS)]),
              "level4": np.vstack([np.linspace(0, 1, 4 * BS) ** 2, 1 - np.sin(2 * np.pi * 450 * t)])}
    out = render_module(Mix, 4, blocksize=BS, channels=2, inputs=ins, params=levels)["out"]
    expected = sum(ins[f"in{k}"] * levels[f"level{k}"] for k in range(1, 5))
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_mix_unconnected_inputs_are_silent():
    out = render_module(Mix, 2, blocksize=BS, channels=2)["out"]
    assert not out.any()


def test_mix_poly_channels_are_independent():
    in1 = np.array([[1.0], [2.0], [3.0]]) * np.ones(2 * BS)
    level = np.array([[1.0], [0.0], [2.0]]) * np.ones(2 * BS)
    out = render_module(Mix, 2, blocksize=BS, channels=3, inputs={"in1": in1, "in2": 0.5 * np.ones(2 * BS)},
                        params={"level1": level})["out"]
    np.testing.assert_allclose(out[:, 0], [1.5, 0.5, 6.5])


def pan(position, signal=None, channels=1):
    signal = np.ones((channels, 2 * BS)) if signal is None else signal
    out = render_module(Pan, 2, blocksize=BS, channels=channels, inputs={"in": signal},
                        params={"pan": position})
    return out["left"], out["right"]


def test_pan_is_equal_power():
    for position in np.linspace(-1, 1, 9):
        left, right = pan(position)
        np.testing.assert_allclose(left ** 2 + right ** 2, 1.0)
    left, right = pan(0.0)
    np.testing.assert_allclose(left, np.cos(np.pi / 4))
    np.testing.assert_allclose(right, left)


def test_pan_hard_sides():
    left, right = pan(-1.0)
    np.testing.assert_allclose(left, 1.0)
    assert np.all(np.abs(right) < 1e-15)
    left, right = pan(1.0)
    assert np.all(np.abs(left) < 1e-15)
    np.testing.assert_allclose(right, 1.0)


def test_pan_modulation_is_clamped():
    left, right = pan(np.full(2 * BS, -3.0))
    np.testing.assert_allclose(left, 1.0)


def test_pan_modulation_past_either_end_is_that_end_exactly():
    """A cable that sweeps the position from -3 to +3 over two blocks: past
    +1 every sample is panned exactly as at +1 (right only), past -1
    exactly as at -1; between them, each sample at its own position."""
    position = np.concatenate([np.linspace(-3, 3, 2 * BS - 4), [1 + 1e-9, 1e6, -1 - 1e-9, -1e6]])
    signal = np.random.default_rng(3).uniform(-1, 1, (1, 2 * BS))
    left, right = pan(position, signal)
    for end in (1.0, -1.0):
        past = position * end > 1
        end_left, end_right = pan(np.full(2 * BS, end), signal)
        assert past.sum() > 40
        np.testing.assert_array_equal(left[:, past], end_left[:, past])
        np.testing.assert_array_equal(right[:, past], end_right[:, past])
    angle = (np.clip(position, -1, 1) + 1) * np.pi / 4
    np.testing.assert_allclose(left[0], np.cos(angle) * signal[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(right[0], np.sin(angle) * signal[0], rtol=0, atol=1e-15)


def test_pan_poly_channels_are_independent():
    signal = np.array([[1.0], [-0.5]]) * np.ones(2 * BS)
    position = np.array([[-1.0], [1.0]]) * np.ones(2 * BS)
    left, right = pan(position, signal, channels=2)
    np.testing.assert_allclose(left[:, 0], [1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(right[:, 0], [0.0, -0.5], atol=1e-15)


# -- comp ---------------------------------------------------------------------

SR = 48000


def curve(level_db, threshold=-18.0, ratio=4.0):
    """The soft-knee gain curve, in dB, written out apart from the kernel."""
    over = level_db - threshold
    slope = 1 / ratio - 1
    return np.where(over <= -KNEE_DB / 2, 0.0,
                    np.where(over < KNEE_DB / 2, slope * (over + KNEE_DB / 2) ** 2 / (2 * KNEE_DB), slope * over))


def compress(x, side=None, **params):
    inputs = {"in": x} if side is None else {"in": x, "side": side}
    return render_module(Comp, x.shape[-1] // BS, inputs=inputs, params=params, blocksize=BS)


@pytest.mark.parametrize("level_db", [-40.0, -21.0, -18.0, -16.0, -6.0, -1.0])
def test_comp_settles_on_its_gain_curve(level_db):
    """A steady level, once the detector has it: below the knee untouched
    (bit for bit), through the 6 dB knee and above it at 1/ratio."""
    x = np.full(200 * BS, 10 ** (level_db / 20))
    out = compress(x, ratio=4.0, makeup=3.0)
    expected = x[-1] * 10 ** ((curve(level_db) + 3.0) / 20)
    assert out["out"][0, -1] == pytest.approx(expected, rel=1e-9)
    assert out["gain"][0, -1] == pytest.approx(10 ** (curve(level_db) / 20), rel=1e-9)
    if level_db < -21:
        np.testing.assert_array_equal(compress(x)["out"][0], x)


def test_a_set_ratio_turns_the_gain_down_over_the_glide_without_a_click():
    """`set comp.ratio 20` from 1 (off) on a steady level, as the engine
    glides it: linearly over 5 ms. The reduction goes as 1 - 1/ratio, so
    2.2 of its 28 dB came in one sample and 80 % of it within 1.5 ms, a
    click the DSP audit heard; the curve's own slope now glides. A ratio
    that stays put is where it ends."""
    n, at = 10240, 2560   # the detector has the level long before the set, the slope long after
    x = np.full(n, 0.3)
    ratio = np.r_[np.ones(at), np.linspace(1.0, 20.0, 241)[1:], np.full(n - at - 240, 20.0)]
    db = 20 * np.log10(compress(x, ratio=ratio, threshold=-40.0)["gain"][0])
    before, after = db[at - 1], db[-1]
    assert before == 0.0 and after == pytest.approx(curve(20 * np.log10(0.3), -40.0, 20.0), abs=1e-6)
    assert np.abs(np.diff(db)).max() < 0.3
    ten, ninety = (np.flatnonzero(db < before + share * (after - before))[0] for share in (0.1, 0.9))
    assert (ninety - ten) / SR > 0.003
    held = 20 * np.log10(compress(x, ratio=20.0, threshold=-40.0)["gain"][0])
    np.testing.assert_allclose(held[-at:], after, atol=1e-9)


def test_a_cable_into_comps_makeup_stops_short_of_overflow():
    """An lfo's offset reaches 20000: 10 ** (7000 / 20) is inf, and the
    output was NaN (the module silenced). The factor stops at 96 dB."""
    from synthcli.modules.dynamics import MAKEUP_LIMIT
    x = np.full(20 * BS, 0.001)
    for makeup in (7000.0, -7000.0):
        out = compress(x, makeup=np.full(x.shape, makeup))["out"][0]
        assert out[-1] == pytest.approx(0.001 * 10 ** (np.sign(makeup) * MAKEUP_LIMIT / 20), rel=1e-9)


def test_comp_turns_down_a_rise_at_its_attack_and_lets_go_at_its_release():
    """A jump from -40 to -6 dB: the detector climbs as exp(-t/attack)
    and the gain follows the curve of that level; back at -40 dB it falls
    as exp(-t/release)."""
    quiet, loud = 10 ** (-40 / 20), 10 ** (-6 / 20)
    n = 150 * BS
    x = np.r_[np.full(n, quiet), np.full(n, loud), np.full(n, quiet)]
    gain = compress(x, attack=0.01, release=0.1)["gain"][0]
    t = np.arange(1, n + 1) / SR
    rising = loud + (quiet - loud) * np.exp(-t / 0.01)
    falling = quiet + (loud - quiet) * np.exp(-t / 0.1)
    for part, env in ((slice(n, 2 * n), rising), (slice(2 * n, 3 * n), falling)):
        np.testing.assert_allclose(gain[part], 10 ** (curve(20 * np.log10(env)) / 20), rtol=1e-4)


@pytest.mark.parametrize("level_db", [-30.0, -16.0, -6.0])
@pytest.mark.parametrize("freq, attack, release, rtol", [(440, 0.1, 0.1, 0.005), (440, 0.005, 0.15, 0.01),
                                                         (110, 0.005, 0.15, 0.03)])
def test_an_rms_comp_hears_a_sine_3_db_under_its_peak(level_db, freq, attack, release, rtol):
    """detect=rms on a steady sine: the mean square settles at half the
    peak squared, so the gain is the curve's at the peak's level less 3 dB
    (within the ripple the averaging leaves: a quarter of a dB on a bass
    note with a fast attack), where the peak detector reads the peak. So it
    is with the default fast attack and slow release too: smoothing x^2
    with those alone rode each crest and read the peak."""
    t = np.arange(2 * SR) / SR
    x = 10 ** (level_db / 20) * np.sin(2 * np.pi * freq * t)
    settled = slice(3 * SR // 2, None)
    rms_gain = compress(x, detect="rms", attack=attack, release=release)["gain"][0, settled]
    np.testing.assert_allclose(rms_gain, 10 ** (curve(level_db - 10 * np.log10(2)) / 20), rtol=rtol)
    peak_gain = compress(x, attack=0.0, release=1.0)["gain"][0, settled]
    assert np.median(peak_gain) == pytest.approx(10 ** (curve(level_db) / 20), rel=0.01)


def test_switching_the_detector_carries_its_level_over():
    """A steady -6 dB level, compressed by the peak detector, then by the
    RMS one: the mean square of a constant is its square, so the gain
    holds through the switch."""
    module = Comp(SR, BS, 1)
    values = {p.name: np.full((1, BS), p.default_value) for p in Comp.params}
    inputs = {"in": np.full((1, BS), 10 ** (-6 / 20)), "side": np.zeros((1, BS))}
    gains = []
    for block in range(400):
        if block == 200:
            values["detect"][...] = Comp.param("detect").coerce("rms")
        outs = {"out": np.zeros((1, BS)), "gain": np.zeros((1, BS))}
        module.process(inputs, values, outs)
        gains.append(outs["gain"][0].copy())
    gains = np.concatenate(gains)
    assert gains[-1] == pytest.approx(10 ** (curve(-6.0) / 20), rel=1e-9)
    np.testing.assert_allclose(gains[150 * BS:], gains[-1], rtol=1e-9)


def test_the_detector_changes_on_its_own_sample_whatever_the_block_size():
    """A pattern steps `detect` inside a block: blocks of 256 and of 48
    give the same bits, the peak detector's up to that sample."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.8, 0.8, 48 * 256)
    detect = np.zeros(x.size)
    detect[3000:] = Comp.param("detect").coerce("rms")
    detect[7777:] = Comp.param("detect").coerce("peak")
    params = {"detect": detect, "attack": 0.001}
    outs = [render_module(Comp, x.size // b, params=params, inputs={"in": x}, samplerate=SR, blocksize=b)["gain"][0]
            for b in (256, 48)]
    np.testing.assert_array_equal(outs[0], outs[1])
    peak = compress(x, attack=0.001)["gain"][0]
    assert np.flatnonzero(outs[0] != peak)[0] == 3000


def test_lookahead_delays_the_signal_by_exactly_its_time_and_turns_a_transient_down_first():
    """Below the threshold the output is the input, 5 ms late, bit for
    bit. A full-scale burst after silence: without lookahead its first
    milliseconds pass before a 2 ms attack catches up; with 3 ms of
    lookahead the gain is down when the burst comes out."""
    rng = np.random.default_rng(3)
    quiet = rng.uniform(-0.01, 0.01, 100 * BS)
    late = round(0.005 * SR)
    out = compress(quiet, lookahead=0.005)["out"][0]
    np.testing.assert_array_equal(out[late:], quiet[:-late])
    assert not out[:late].any()
    t = np.arange(150 * BS) / SR
    burst = np.where(t >= 0.05, np.sin(2 * np.pi * 1000 * t), 0.0)
    settings = dict(threshold=-20.0, ratio=20.0, attack=0.002, release=0.1)
    plain = compress(burst, **settings)["out"][0]
    ahead = compress(burst, lookahead=0.003, **settings)["out"][0]
    onset = int(0.05 * SR)
    first = slice(0, round(0.003 * SR))
    assert np.abs(plain[onset:][first]).max() > 0.9                  # the attack lets the start through
    assert np.abs(ahead[onset + round(0.003 * SR):][first]).max() < 0.45
    settled = slice(onset + SR // 20, None)                          # later both hold the same gain
    np.testing.assert_allclose(np.abs(ahead[settled]).max(), np.abs(plain[settled]).max(), rtol=0.02)


def test_a_lookahead_changed_while_playing_fades_to_its_new_tap():
    """Moving the tap jumps the signal back or forward in time: the block
    it changes in fades from one tap to the other, as a raised cosine,
    so the output never steps further than the sine does."""
    t = np.arange(60 * BS) / SR
    x = 0.05 * np.sin(2 * np.pi * 220 * t)          # below the threshold: the gain stays 1
    lookahead = np.where(np.arange(60 * BS) < 30 * BS, 0.0, 0.01)
    out = compress(x, lookahead=lookahead)["out"][0]
    np.testing.assert_array_equal(out[:30 * BS], x[:30 * BS])
    late = round(0.01 * SR)
    np.testing.assert_array_equal(out[31 * BS:], x[31 * BS - late:-late])
    steepest = np.abs(np.diff(x)).max()
    assert np.abs(np.diff(out)).max() <= 1.5 * steepest


def test_comp_keyed_from_its_side_input_ducks_a_bass_under_a_kick():
    """key=side: a steady bass is turned down while the kick sounds and
    comes back after it, the depth set by the kick's level; the bass's own
    level (under the threshold) moves nothing, and the gain output ducks
    alike."""
    n = 800 * BS
    bass = np.full(n, 0.3)
    kick = np.zeros(n)
    kick[SR // 10:SR // 10 + SR // 20] = 0.9     # 50 ms at 0.1 s
    out = compress(bass, kick, key="side", threshold=-30.0, ratio=8.0, attack=0.001, release=0.05)
    ducked = out["out"][0]
    assert ducked[SR // 10 - 1] == 0.3                               # before the kick: untouched
    expected = 0.3 * 10 ** (curve(20 * np.log10(0.9), -30.0, 8.0) / 20)
    assert ducked[SR // 10 + SR // 20 - 1] == pytest.approx(expected, rel=1e-3)   # held down by ~21 dB
    assert ducked[SR // 10 + SR // 20 + SR // 2] == pytest.approx(0.3, rel=1e-3)  # and back, 10 releases on
    np.testing.assert_allclose(out["gain"][0] * 0.3, ducked)
    assert np.array_equal(compress(bass, key="side", threshold=-30.0)["out"][0], bass)   # no key: no ducking
