"""vcf, ladder and eq, judged by their measured frequency response."""
import numpy as np
import pytest
import scipy.signal

from synthcli.modules.filters import SVF_MODES, Eq, Ladder, Vcf
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


@pytest.mark.parametrize("cutoff, three_db", [(1000, 0.44), (12000, 0.52)])
def test_the_ladder_is_12_db_down_at_its_cutoff_and_3_db_where_its_reference_says(cutoff, three_db):
    """docs/module-reference.md's figures: its -3 dB point moves up
    towards a cutoff near the top (the audit measured 0.52 x 12 kHz where
    the page said 0.44 at every cutoff)."""
    x = noise(level=0.02)
    f, db = response_db(x, render(Ladder, x, cutoff=cutoff, res=0)[0])
    assert gain_at(f, db, cutoff) == pytest.approx(-12, abs=0.3)
    assert gain_at(f, db, three_db * cutoff) == pytest.approx(-3, abs=0.3)


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


@pytest.mark.parametrize("voices, own", [(1, False), (4, False), (6, True)], ids=["alone", "shared", "lanes"])
def test_a_ladder_with_nothing_in_it_sings_at_full_res(voices, own):
    """Nothing patched into it, as an analog ladder it sings at its cutoff
    once res reaches about 0.9, here after 0.3 s at 0.5: left silent by
    silence it would stay so for ever (each voice's first stage is seeded
    with an impulse at -80 dB, as the noise of an analog one starts it).
    Below that it stays silent to the bit."""
    x = np.zeros((voices, BLOCKS * BLOCK))
    cutoff = np.geomspace(500, 2000, voices)[:, None] if own else 1000.0
    res = np.where(np.arange(BLOCKS * BLOCK) < 0.3 * FS, 0.5, 1.0)
    y = render(Ladder, x, channels=voices, cutoff=cutoff * np.ones_like(x), res=res * np.ones_like(x))
    for voice, tail in enumerate(y[:, -FS // 4:]):
        assert 0.05 < np.sqrt(np.mean(tail ** 2)) and np.abs(tail).max() < 1
        spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
        hz = cutoff[voice, 0] if own else cutoff
        assert np.fft.rfftfreq(len(tail), 1 / FS)[np.argmax(spectrum)] == pytest.approx(hz, rel=0.05)
    assert not y[:, :int(0.3 * FS)].any()
    assert not render(Ladder, x, channels=voices, cutoff=1000, res=0.85).any()


def test_voices_that_reach_full_res_each_in_their_own_block_all_sing():
    """Voice 1 held res 0 through the first block while voice 0 was at 1
    (lanes of their own), then both at 1 (one set of gains): the seed
    went by voice 0's last res, and voice 1 never sang."""
    res = np.ones((2, BLOCKS * BLOCK))
    res[1, :BLOCK] = 0.0
    y = render(Ladder, np.zeros((2, BLOCKS * BLOCK)), channels=2, cutoff=1000.0, res=res)
    assert (np.abs(y[:, -FS // 4:]).max(axis=1) > 0.1).all()


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


@pytest.mark.parametrize("cls", [Vcf, Ladder, Eq])
def test_check_module(cls):
    check_module(cls)


# -- five voices and more: the lanes ---------------------------------------------------
# From 5 voices the vcf runs its channels as lanes (the ladder from 2), in a
# path of their own when every voice shares the cutoff and res, another when
# they differ. Either way a voice must come out exactly as it does alone.

LANE_BLOCKS = 4


def voice_params(voices):
    """Per-voice cutoffs and res that move every sample, each voice at its
    own rate and range, voice 0 dipping below 0 Hz and voices from 8 on
    going past the top (held at 10 Hz and 0.49 x samplerate). Voice 2
    copies voice 1 sample for sample, and voice 4 meets voice 3 for the
    first half of each block, so a lane also takes a neighbour's value at
    some samples and its own at others."""
    t = np.arange(LANE_BLOCKS * BLOCK) / FS
    v = np.arange(voices)[:, None]
    cutoff = 150 * 1.6 ** v * 4.0 ** np.sin(2 * np.pi * (40 + 13 * v) * t + v)
    cutoff[0] -= 50
    res = 0.45 + 0.45 * np.sin(2 * np.pi * (25 + 7 * v) * t + 2 * v)
    for p in (cutoff, res):
        if voices > 2:
            p[2] = p[1]
        if voices > 4:
            first_half = (np.arange(p.shape[1]) % BLOCK) < BLOCK // 2
            p[4, first_half] = p[3, first_half]
    return cutoff, res


def assert_voices_as_alone(cls, x, **params):
    """Each voice of a render with all voices together equals that voice
    rendered on its own (one channel, the one-voice path), bit for bit:
    the lanes compute the same gains with the same operations. An array
    parameter holds a row per voice, anything else is every voice's."""
    voices = x.shape[0]
    together = render(cls, x, blocks=LANE_BLOCKS, channels=voices, **params)
    for c in range(voices):
        own = {k: v[c] if isinstance(v, np.ndarray) else v for k, v in params.items()}
        alone = render(cls, x[c], blocks=LANE_BLOCKS, **own)[0]
        np.testing.assert_array_equal(together[c], alone, err_msg=f"voice {c} of {voices}")


@pytest.mark.parametrize("voices", [5, 8, 9, 16])
@pytest.mark.parametrize("mode", SVF_MODES)
@pytest.mark.parametrize("own_res", [True, False], ids=["own-res", "one-res"])
def test_vcf_voices_with_cutoffs_of_their_own_filter_as_alone(voices, mode, own_res):
    """With one fixed res, only the cutoffs set the voices apart and
    change the gains from sample to sample."""
    x = noise(seed=voices, channels=voices)[:, :LANE_BLOCKS * BLOCK]
    cutoff, res = voice_params(voices)
    assert_voices_as_alone(Vcf, x, mode=mode, cutoff=cutoff, res=res if own_res else 0.7)


@pytest.mark.parametrize("voices", [2, 5, 8, 9, 16])
@pytest.mark.parametrize("own_res", [True, False], ids=["own-res-drive", "one-res-drive"])
def test_ladder_voices_with_cutoffs_of_their_own_filter_as_alone(voices, own_res):
    """From 2 voices the ladder runs lanes: as many as voices up to 4, then
    8, then 16, the rest silent padding."""
    x = noise(seed=voices, channels=voices)[:, :LANE_BLOCKS * BLOCK]
    cutoff, res = voice_params(voices)
    drive = np.linspace(0, 1, voices)[:, None] * np.ones(x.shape[1])
    if voices > 2:
        drive[2] = drive[1]
    if own_res:
        assert_voices_as_alone(Ladder, x, cutoff=cutoff, res=res, drive=drive)
    else:
        assert_voices_as_alone(Ladder, x, cutoff=cutoff, res=0.7, drive=0.3)


@pytest.mark.parametrize("cls", [Vcf, Ladder])
@pytest.mark.parametrize("voices", [5, 9])
def test_voices_sharing_a_modulated_cutoff_filter_as_alone(cls, voices):
    """One LFO on every voice's cutoff and res: the path where one set of
    gains serves all the lanes, each lane with its own signal and state."""
    x = noise(seed=voices, channels=voices)[:, :LANE_BLOCKS * BLOCK]
    cutoff, res = voice_params(1)
    assert_voices_as_alone(cls, x, cutoff=np.repeat(cutoff, voices, axis=0),
                           res=np.repeat(res, voices, axis=0))


# -- switching the vcf's mode ------------------------------------------------------------

def mode_changes(voices, changes, samples):
    """Mode indices per voice and sample: lowpass, and for each voice in
    ``changes`` its list of (sample, mode) from then on."""
    mode = np.zeros((voices, samples))
    for c, steps in changes.items():
        for at, name in steps:
            mode[c, at:] = SVF_MODES.index(name)
    return mode


def sine_filtered(voices, samples, blocksize=BLOCK, **params):
    t = np.arange(samples) / FS
    x = np.sin(2 * np.pi * 300 * t) * np.ones((voices, 1))
    return render_module(Vcf, samples // blocksize, params={"cutoff": 600.0, **params}, inputs={"in": x},
                         channels=voices, samplerate=FS, blocksize=blocksize)["out"]


@pytest.mark.parametrize("voices, switched", [(1, [0]), (8, [2, 5])], ids=["alone", "lanes"])
def test_a_vcf_mode_change_crossfades_over_5_ms_from_its_sample(voices, switched):
    """The modes share one filter and differ in how they mix its states, so
    a change fades the old mode's mix into the new one's over 5 ms (240
    samples), from the change's own sample (here inside a block, the fade
    running into the next one), and before and after it each mode plays
    what it plays alone, to the bit; the voices that keep their mode are
    untouched. The cut it replaces clicked: a 300 Hz sine switched from
    lowpass to highpass at 600 Hz jumped by 27 times its steepest step."""
    samples, at, fade = 6 * BLOCK, 2 * BLOCK + 100, 240
    switching = sine_filtered(voices, samples, mode=mode_changes(voices, {c: [(at, "highpass")] for c in switched},
                                                                  samples))
    low = sine_filtered(voices, samples, mode="lowpass")
    high = sine_filtered(voices, samples, mode="highpass")
    ramp = np.arange(1, fade + 1) / fade
    for c in range(voices):
        if c not in switched:
            np.testing.assert_array_equal(switching[c], low[c])
            continue
        np.testing.assert_array_equal(switching[c, :at], low[c, :at])
        during = slice(at, at + fade)
        np.testing.assert_allclose(switching[c, during], low[c, during] + (high[c, during] - low[c, during]) * ramp,
                                   rtol=0, atol=1e-12)
        np.testing.assert_array_equal(switching[c, at + fade:], high[c, at + fade:])
        steepest = np.abs(np.diff(low[c])).max()
        assert np.abs(np.diff(switching[c])).max() <= steepest * 1.001


@pytest.mark.parametrize("voices", [1, 8])
def test_vcf_mode_changes_sound_the_same_whatever_the_block_size(voices):
    """Changes on samples inside blocks, one while another still fades: the
    fade is counted in samples, so 256- and 64-sample blocks and 48 give
    the same bits."""
    samples = 48 * 64
    changes = {0: [(300, "bandpass"), (400, "notch"), (1500, "highpass")], voices - 1: [(1001, "highpass")]}
    mode = mode_changes(voices, changes, samples)
    blocks = [sine_filtered(voices, samples, blocksize=b, mode=mode) for b in (256, 64, 48)]
    np.testing.assert_array_equal(blocks[0], blocks[1])
    np.testing.assert_array_equal(blocks[0], blocks[2])
    assert not np.array_equal(blocks[0][0], sine_filtered(voices, samples, mode="lowpass")[0])


# -- eq -----------------------------------------------------------------------

def cookbook(kind, hz, db, q=2 ** -0.5):
    """Robert Bristow-Johnson's Audio EQ Cookbook biquads (b, a): the same
    analog prototypes through the bilinear transform, prewarped at ``hz``,
    written the other way (direct form, from sin and cos)."""
    a = 10 ** (db / 40)
    w = 2 * np.pi * hz / FS
    cw, alpha, root = np.cos(w), np.sin(w) / (2 * q), 2 * np.sqrt(a) * np.sin(w) / (2 * q)
    if kind == "bell":
        return [1 + alpha * a, -2 * cw, 1 - alpha * a], [1 + alpha / a, -2 * cw, 1 - alpha / a]
    if kind == "low":
        return ([a * ((a + 1) - (a - 1) * cw + root), 2 * a * ((a - 1) - (a + 1) * cw),
                 a * ((a + 1) - (a - 1) * cw - root)],
                [(a + 1) + (a - 1) * cw + root, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - root])
    return ([a * ((a + 1) + (a - 1) * cw + root), -2 * a * ((a - 1) + (a + 1) * cw),
             a * ((a + 1) + (a - 1) * cw - root)],
            [(a + 1) - (a - 1) * cw + root, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - root])


@pytest.mark.parametrize("settings", [
    dict(low=9, lowfreq=150, mid=-6, midfreq=1200, q=2, high=4, highfreq=6000),
    dict(low=-24, lowfreq=40, mid=24, midfreq=300, q=0.1, high=-24, highfreq=15000),
    dict(low=3, lowfreq=5000, mid=-12, midfreq=8000, q=10, high=12, highfreq=400),
], ids=["a-mix", "extremes", "crossed"])
def test_eq_is_the_cookbooks_shelves_and_bell_in_series(settings):
    """Sample for sample, within rounding, against scipy running the
    cookbook's three biquads on the same noise: the response, the bands'
    corner and bell frequencies and the shelves' Q of 1/sqrt(2)."""
    x = noise(seed=3)
    reference = x
    for kind, hz, db, q in (("low", settings["lowfreq"], settings["low"], 2 ** -0.5),
                            ("bell", settings["midfreq"], settings["mid"], settings["q"]),
                            ("high", settings["highfreq"], settings["high"], 2 ** -0.5)):
        reference = scipy.signal.lfilter(*cookbook(kind, hz, db, q), reference)
    np.testing.assert_allclose(render(Eq, x, **settings)[0], reference, rtol=0, atol=1e-9)


def test_eq_bands_give_their_gain_where_they_say():
    """A shelf gives half its gain at its frequency and all of it far
    beyond; a bell its whole gain at its centre; the rest stays at 0 dB."""
    x = noise(seed=4)
    f, db = response_db(x, render(Eq, x, low=12, lowfreq=100, mid=-9, midfreq=2000, q=4,
                                  high=6, highfreq=12000)[0])
    assert gain_at(f, db, 100) == pytest.approx(6.0, abs=0.3)
    assert gain_at(f, db, 20) == pytest.approx(12.0, abs=0.5)
    assert gain_at(f, db, 2000) == pytest.approx(-9.0, abs=0.3)
    assert gain_at(f, db, 700) == pytest.approx(0.0, abs=0.3)
    assert gain_at(f, db, 5000) == pytest.approx(0.0, abs=0.3)
    assert gain_at(f, db, 12000) == pytest.approx(3.0, abs=0.3)
    assert gain_at(f, db, 22000) == pytest.approx(6.0, abs=0.5)


def test_a_flat_eq_passes_its_signal_bit_for_bit():
    x = noise(seed=5, channels=3)
    np.testing.assert_array_equal(render(Eq, x, channels=3, lowfreq=90, midfreq=500, q=3)[0:3], x)


def test_eq_gains_swept_by_a_cable_glide_without_a_jump():
    """A bell's gain swept from -24 to +24 dB and back each half second:
    the coefficients change every sample, and the output of a steady sine
    changes level smoothly (no sample-to-sample step beyond what the sine
    itself moves), and stays bounded."""
    n = BLOCKS * BLOCK
    t = np.arange(n) / FS
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)
    mid = 24 * np.sin(2 * np.pi * 2 * t)
    y = render(Eq, x, mid=mid, midfreq=1000)[0]
    assert np.isfinite(y).all() and np.abs(y).max() < 0.5 * 10 ** (24 / 20) * 1.05
    biggest = 2 * np.pi * 1000 / FS * 0.5 * 10 ** (24 / 20)   # the loudest sine's steepest step
    assert np.abs(np.diff(y)).max() < 1.1 * biggest
