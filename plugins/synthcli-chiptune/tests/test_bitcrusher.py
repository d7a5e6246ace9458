"""bitcrusher: the levels it rounds to, the rate it holds at, the mix."""
import numpy as np
import pytest

from synthcli.testing import check_module, render_module
from synthcli_chiptune import Bitcrusher

FS = 48000
BLOCK = 256


def crush(x, blocks=40, channels=1, **params):
    return render_module(Bitcrusher, blocks, params=params, inputs={"in": x}, channels=channels,
                         samplerate=FS, blocksize=BLOCK)["out"]


def sine(hz=110.0, blocks=40, level=0.9):
    return level * np.sin(2 * np.pi * hz * np.arange(blocks * BLOCK) / FS)


def test_contract():
    check_module(Bitcrusher)


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_rounds_to_2_to_the_bits_minus_1_levels_each_side(bits):
    y = crush(sine(), bits=bits, rate=FS)[0]
    steps = y * 2 ** (bits - 1)
    assert np.allclose(steps, np.round(steps))
    assert len(np.unique(y)) <= 2 ** bits + 1
    assert np.abs(y - sine()).max() <= 0.5 / 2 ** (bits - 1) + 1e-12


def test_holds_each_sample_for_the_rate():
    x = np.random.default_rng(0).uniform(-1, 1, 40 * BLOCK)
    y = crush(x, bits=24, rate=1000.0)[0]
    changes = np.count_nonzero(np.diff(y))
    assert abs(changes - 1000 * x.size / FS) <= 2
    assert y[0] == pytest.approx(x[0], abs=1e-6)  # the first sample is taken at once


def test_mix_zero_is_the_dry_signal_and_silence_stays_silent():
    x = sine()
    assert np.array_equal(crush(x, bits=2, rate=3000.0, mix=0.0)[0], x)
    assert not crush(np.zeros(40 * BLOCK), bits=1, rate=500.0).any()


def test_bits_sweep_smoothly_and_channels_are_independent():
    sweep = np.linspace(2.0, 12.0, 40 * BLOCK)
    y = crush(sine(), bits=sweep, rate=FS)[0]
    error = np.abs(y - sine())
    assert error[:2000].max() > 10 * error[-2000:].max()  # coarse at 2 bits, fine at 12
    x = np.stack([sine(), np.zeros(40 * BLOCK)])
    y2 = crush(x, channels=2, bits=4)
    assert y2[0].any() and not y2[1].any()
