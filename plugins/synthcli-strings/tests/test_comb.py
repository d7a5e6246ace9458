"""comb: peaks and notches where they belong, in both modes, and stable."""
import numpy as np
import pytest
import scipy.signal

from synthcli.testing import check_module, render_module
from synthcli_strings import Comb

FS = 48000
BLOCK = 256
BLOCKS = 200


def noise():
    return np.random.default_rng(0).uniform(-0.5, 0.5, BLOCKS * BLOCK)


def response_db(x, y):
    f, pxy = scipy.signal.csd(x, y, fs=FS, nperseg=8192)
    _, pxx = scipy.signal.welch(x, fs=FS, nperseg=8192)
    return f, 20 * np.log10(np.abs(pxy / pxx))


def gain(x, **params):
    y = render_module(Comb, BLOCKS, params=params, inputs={"in": x}, samplerate=FS, blocksize=BLOCK)["out"][0]
    f, db = response_db(x, y)
    return lambda at: float(np.interp(at, f, db))


def test_contract():
    check_module(Comb)


@pytest.mark.parametrize("mode, peak, notch", [("feedback", (-2.5, 0.5), (None, -20)),
                                                ("feedforward", (-0.5, 0.5), (None, -20))])
def test_peaks_on_the_harmonics_and_notches_between(mode, peak, notch):
    g = gain(noise(), freq=500.0, mode=mode, amount=0.9, damp=0.0)
    for k in (1, 2, 3):
        assert peak[0] < g(500 * k) < peak[1], f"peak {k}"
        assert g(500 * k + 250) < notch[1], f"notch {k}"


def test_negative_amount_puts_peaks_on_odd_harmonics_of_half_the_frequency():
    g = gain(noise(), freq=500.0, amount=-0.9, damp=0.0)
    assert g(250) > -2.5 and g(750) > -2.5
    assert g(500) < -20 and g(1000) < -20


def test_voct_tunes_it_and_damp_keeps_it_in_tune():
    """freq 250 Hz plus one volt is 500 Hz, also with the loop lowpassed."""
    x = noise()
    y = render_module(Comb, BLOCKS, params={"freq": 250.0, "amount": 0.95, "damp": 0.5},
                      inputs={"in": x, "voct": np.ones(x.size)}, samplerate=FS, blocksize=BLOCK)["out"][0]
    f, db = response_db(x, y)
    band = (f > 400) & (f < 600)
    assert abs(f[band][np.argmax(db[band])] - 500.0) < 6.0  # within a Welch bin


def test_highest_feedback_stays_bounded():
    x = np.zeros(BLOCKS * BLOCK)
    x[:BLOCK] = np.random.default_rng(1).uniform(-1, 1, BLOCK)
    y = render_module(Comb, BLOCKS, params={"freq": 100.0, "amount": 0.99, "damp": 0.0},
                      inputs={"in": x}, samplerate=FS, blocksize=BLOCK)["out"][0]
    assert np.isfinite(y).all() and np.abs(y).max() < 1.0
    assert np.abs(y[-4800:]).max() < np.abs(y[:4800]).max()


def test_mode_changes_on_its_own_sample():
    """A pattern steps the mode inside a block: blocks of 256 and of 64
    give the same sound, the old mode's up to that sample."""
    x = noise()[:40 * BLOCK]
    mode = np.zeros(x.size)
    mode[3000:] = 1.0   # feedforward
    params = {"freq": 500.0, "amount": 0.9, "mode": mode}
    blocks = [render_module(Comb, x.size // b, params=params, inputs={"in": x}, samplerate=FS, blocksize=b)["out"][0]
              for b in (256, 64)]
    np.testing.assert_array_equal(blocks[0], blocks[1])
    steady = render_module(Comb, x.size // BLOCK, params={**params, "mode": "feedback"}, inputs={"in": x},
                           samplerate=FS, blocksize=BLOCK)["out"][0]
    assert np.flatnonzero(blocks[0] != steady)[0] == 3000
