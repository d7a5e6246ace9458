import numpy as np
import pytest

from synthcli.modules.dynamics import Mix, Pan
from synthcli.testing import check_module, render_module

BS = 64


@pytest.mark.parametrize("cls", [Mix, Pan])
def test_contract(cls):
    check_module(cls)


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
