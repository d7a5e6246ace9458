"""vcf and ladder, judged by their measured frequency response."""
import numpy as np
import pytest
import scipy.signal

from synthcli.modules.filters import Ladder, Vcf
from synthcli.testing import check_module, render_module

FS = 48000
BLOCK = 256
BLOCKS = 200  # about 1 s


def noise(seed=0, channels=None, level=0.5):
    shape = BLOCKS * BLOCK if channels is None else (channels, BLOCKS * BLOCK)
    return np.random.default_rng(seed).uniform(-level, level, shape)


def render(cls, x, blocks=BLOCKS, channels=1, **params):
    return render_module(cls, blocks, params=params, inputs={"in": x},
                         channels=channels, samplerate=FS, blocksize=BLOCK)["out"]


def response_db(x, y):
    """Measured gain in dB: cross spectrum over input spectrum, averaged
    over Welch segments, so the input's own spectrum cancels."""
    f, pxy = scipy.signal.csd(x, y, fs=FS, nperseg=4096)
    _, pxx = scipy.signal.welch(x, fs=FS, nperseg=4096)
    return f, 20 * np.log10(np.abs(pxy / pxx))


def gain_at(f, db, hz):
    return np.interp(hz, f, db)


def test_vcf_lowpass_is_butterworth_at_zero_res():
    x = noise()
    f, db = response_db(x, render(Vcf, x, cutoff=1000, res=0)[0])
    b, a = scipy.signal.butter(2, 1000, fs=FS)
    _, h = scipy.signal.freqz(b, a, worN=f, fs=FS)
    band = (f >= 250) & (f <= 4000)
    assert np.max(np.abs(db[band] - 20 * np.log10(np.abs(h[band])))) < 3.0


@pytest.mark.parametrize("mode, low, centre, high", [
    ("highpass", (None, -35), (-4, -2), (-1, 1)),
    ("bandpass", (None, -17), (-4, -2), (None, -17)),
    ("notch", (-1, 1), (None, -20), (-1, 1)),
])
def test_vcf_modes(mode, low, centre, high):
    """At 100 Hz, the 1 kHz cutoff and 10 kHz: each gain in its (min, max) dB."""
    x = noise()
    f, db = response_db(x, render(Vcf, x, cutoff=1000, res=0, mode=mode)[0])
    for hz, (lo, hi) in ((100, low), (1000, centre), (10000, high)):
        g = gain_at(f, db, hz)
        assert (lo is None or g > lo) and g < hi, f"{mode} at {hz} Hz: {g:.1f} dB"


def test_vcf_resonance_lifts_a_peak_at_the_cutoff():
    x = noise()
    f, db = response_db(x, render(Vcf, x, cutoff=1000, res=1)[0])
    assert abs(f[np.argmax(db)] - 1000) < 30
    assert db.max() > 20
    assert gain_at(f, db, 100) == pytest.approx(0, abs=0.5)


def test_ladder_falls_24_db_per_octave_and_passes_below():
    x = noise(level=0.1)  # small, to stay in the saturator's linear range
    f, db = response_db(x, render(Ladder, x, cutoff=500, res=0)[0])
    slope = gain_at(f, db, 2000) - gain_at(f, db, 4000)
    assert 21 < slope < 27
    assert gain_at(f, db, 60) == pytest.approx(0, abs=0.5)


def test_ladder_resonance_keeps_the_passband_level():
    x = noise(level=0.05)
    f, db = response_db(x, render(Ladder, x, cutoff=1000, res=0.8)[0])
    assert -6 < gain_at(f, db, 60) < 0
    assert gain_at(f, db, 1000) > 6


def test_ladder_self_oscillates_at_full_res():
    x = np.zeros(BLOCKS * BLOCK)
    x[0] = 1e-4
    tail = render(Ladder, x, cutoff=1000, res=1)[0][-FS // 4:]
    assert np.sqrt(np.mean(tail ** 2)) > 0.05
    assert np.abs(tail).max() < 1
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    assert np.fft.rfftfreq(len(tail), 1 / FS)[np.argmax(spectrum)] == pytest.approx(1000, rel=0.05)
    quiet = render(Ladder, x, cutoff=1000, res=0.7)[0][-FS // 4:]
    assert np.abs(quiet).max() < 1e-8


def test_vcf_full_res_rings_and_dies_away():
    x = np.zeros(BLOCKS * BLOCK)
    x[0] = 1.0
    y = render(Vcf, x, cutoff=1000, res=1)[0]
    assert np.abs(y).max() < 1
    assert np.abs(y[-FS // 4:]).max() < 1e-6


@pytest.mark.parametrize("cls, mode", [(Vcf, m) for m in ("lowpass", "highpass", "bandpass", "notch")]
                         + [(Ladder, None)])
@pytest.mark.parametrize("rate", [5, 300])
def test_swept_cutoff_stays_bounded(cls, mode, rate):
    """Full res, full-scale noise, cutoff swept every sample from below
    0 Hz (a cable can push it there) to beyond Nyquist."""
    t = np.arange(BLOCKS * BLOCK) / FS
    cutoff = 32000 * 1000.0 ** (np.sin(2 * np.pi * rate * t) - 1) - 100
    params = {"cutoff": cutoff, "res": 1.0} | ({"mode": mode} if mode else {})
    y = render(cls, noise(level=1.0), **params)[0]
    assert np.isfinite(y).all()
    assert np.abs(y).max() < (100 if cls is Vcf else 4)


@pytest.mark.parametrize("cls", [Vcf, Ladder])
def test_channels_are_independent(cls):
    x = noise(seed=3, channels=3)
    cutoffs = np.array([300.0, 1000.0, 5000.0])
    together = render(cls, x, channels=3, res=0.5,
                      cutoff=np.repeat(cutoffs[:, None], x.shape[1], axis=1))
    for c, hz in enumerate(cutoffs):
        alone = render(cls, x[c], cutoff=hz, res=0.5)[0]
        np.testing.assert_array_equal(together[c], alone)


@pytest.mark.parametrize("cls", [Vcf, Ladder])
def test_check_module(cls):
    check_module(cls)
