"""pluck, the Karplus-Strong string: in tune at every pitch and tone, its
decay time, its onsets to the sample, velocity, brightness and glides."""
import numpy as np
import pytest

from synthcli.modules.pluck import Pluck
from synthcli.testing import check_module, render_module, rms

FS = 48000
BS = 256
BLOCKS = 190            # a second and a bit
N = BLOCKS * BS


def pluck(at=(1000,), channels=1, inputs=None, **params):
    """The string plucked at each sample of ``at`` (gates 2000 samples long)."""
    gate = np.zeros(N)
    for start in at:
        gate[start:start + 2000] = 1.0
    return render_module(Pluck, BLOCKS, params=params, inputs={"gate": gate, **(inputs or {})},
                         channels=channels)["out"]


def fundamental(x, near):
    """The strongest frequency within 3 % of ``near``, to a fraction of a
    bin (Hann window, Gaussian interpolation): a string's strongest line
    may be a harmonic."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    hz = np.fft.rfftfreq(len(x), 1 / FS)
    band = np.flatnonzero((hz > near * 0.97) & (hz < near * 1.03))
    k = band[np.argmax(spectrum[band])]
    a, b, c = np.log(spectrum[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * FS / len(x)


def test_contract():
    check_module(Pluck)


@pytest.mark.parametrize("hz", [55.0, 220.0, 880.0, 3000.0])
@pytest.mark.parametrize("tone", [0.3, 0.7, 1.0])
def test_the_string_rings_in_tune_at_any_pitch_and_tone(hz, tone):
    """The loop's lowpass delays it by up to half a sample, and the period
    is rarely whole: both are made up for, to within 2 cents."""
    x = pluck(freq=hz, tone=tone, decay=5.0)[0][1000:1000 + 32768]
    assert abs(1200 * np.log2(fundamental(x, hz) / hz)) < 2.0


@pytest.mark.parametrize("decay", [0.3, 0.8])
def test_at_tone_1_the_string_falls_60_db_in_its_decay_time(decay):
    x = pluck(freq=220.0, tone=1.0, decay=decay, at=(0,))[0]
    window = 2400
    start = 4800
    end = start + int(decay * FS)
    fall = 20 * np.log10(rms(x[end:end + window]) / rms(x[start:start + window]))
    assert fall == pytest.approx(-60.0, abs=3.0)


def test_each_pluck_starts_on_its_gates_rising_edge_and_rings_past_its_fall():
    x = pluck(at=(1000, 30000), decay=0.05, tone=1.0)[0]
    assert not x[:1000].any() and x[1000] != 0.0
    assert rms(x[3000:3200]) > 1e-4                      # the gate fell at 3000: the string rings on
    assert rms(x[29900:30000]) < 1e-9 < 1e-3 < rms(x[30000:30100])
    assert np.abs(x).max() < 1.0


def test_velocity_scales_the_pluck_and_each_channel_plucks_its_own_noise():
    full = pluck(channels=2)
    half = pluck(channels=2, inputs={"velocity": np.full(N, 0.5)})
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-12, atol=1e-15)
    assert not np.allclose(full[0], full[1])
    np.testing.assert_array_equal(full, pluck(channels=2))    # seeded: every render alike


def centroid(x):
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(np.sum(np.fft.rfftfreq(len(x), 1 / FS) * power) / power.sum())


def test_a_lower_tone_is_darker():
    dull, middle, bright = (centroid(pluck(freq=110.0, tone=t)[0][1000:11000]) for t in (0.1, 0.5, 0.9))
    assert dull < 0.5 * middle < 0.25 * bright


def test_the_pitch_follows_voct_while_the_string_rings():
    voct = np.zeros(N)
    voct[12000:] = 1.0
    x = pluck(freq=220.0, decay=5.0, tone=0.8, at=(0,), inputs={"voct": voct})[0]
    assert abs(fundamental(x[14000:14000 + 16384], 440.0) - 440.0) < 1.0
