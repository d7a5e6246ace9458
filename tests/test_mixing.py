import numpy as np
import pytest

from synthcli.modules.dynamics import SOFT_CLIP_KNEE, Mix, Out, Pan
from synthcli.testing import check_module, render_module

BS = 64


@pytest.mark.parametrize("cls", [Mix, Out, Pan])
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


def test_pan_poly_channels_are_independent():
    signal = np.array([[1.0], [-0.5]]) * np.ones(2 * BS)
    position = np.array([[-1.0], [1.0]]) * np.ones(2 * BS)
    left, right = pan(position, signal, channels=2)
    np.testing.assert_allclose(left[:, 0], [1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(right[:, 0], [0.0, -0.5], atol=1e-15)
