"""vco, lfo and noise, judged by their samples and spectra at 48 kHz."""
import numpy as np
import pytest
from scipy.signal import find_peaks, welch
from scipy.signal.windows import blackmanharris
from scipy.special import jv

from synthcli.api import C4_HZ
from synthcli.modules.oscillators import TAPS, VCO_WAVES, Fm, Lfo, Noise, Supersaw, Vco
from synthcli.testing import check_module, peak_frequency, render_module

FS = 48000
SECOND = 190  # blocks of 256: a second plus room to skip the vco's latency


def vco(seconds=1.0, *, inputs=None, channels=1, cls=Vco, **params):
    """A steady stretch of vco (or supersaw) output, its latency skipped.
    Inputs are constants, or one constant per channel as a (channels, 1)
    column."""
    blocks = int(seconds * SECOND) + 1
    inputs = {name: np.repeat(np.atleast_2d(value), blocks * 256, axis=1)
              for name, value in (inputs or {}).items()}
    out = render_module(cls, blocks, params=params, inputs=inputs, channels=channels)["out"]
    return out[:, 4 * TAPS:4 * TAPS + int(seconds * FS)]


def supersaw(seconds=1.0, **settings):
    return vco(seconds, cls=Supersaw, **settings)


def db(ratio):
    return 10 * np.log10(max(ratio, 1e-30))


def harmonic_split(x, f0):
    """Power of the fundamental, of the other harmonics and of everything else
    (aliases), for a whole-Hz f0 in exactly one second: each lands in a bin."""
    power = np.abs(np.fft.rfft(x)) ** 2
    harmonic = np.zeros(len(power), dtype=bool)
    harmonic[::f0] = True  # DC too: it is checked on its own
    return power[f0], power[harmonic][2:].sum(), power[~harmonic].sum()


def test_sine_is_in_tune_and_pure():
    x = vco(wave="sine", freq=440.0)[0]
    assert abs(peak_frequency(x, FS) - 440.0) < 0.05
    fundamental, overtones, rest = harmonic_split(x, 440)
    assert db(overtones / fundamental) < -60
    assert db(rest / fundamental) < -60


@pytest.mark.parametrize("wave, f0, pw", [
    ("saw", 5000, 0.5), ("square", 3100, 0.5), ("pulse", 2300, 0.3), ("pulse", 4100, 0.1),
    ("triangle", 5000, 0.5), ("saw", 9700, 0.5),
])
def test_edges_are_band_limited(wave, f0, pw):
    """Whole-Hz pitches that do not divide 48 kHz, so any alias falls between
    the harmonics. A naive saw at 5 kHz aliases at about -7 dB."""
    fundamental, _, aliases = harmonic_split(vco(wave=wave, freq=float(f0), pw=pw)[0], f0)
    assert db(aliases / fundamental) < -40


def synced(wave, master_hz, hz, sync=None, seconds=1.0, pw=0.3):
    """A vco hard-synced by a sine at ``master_hz`` (or by ``sync``), its
    latency skipped."""
    blocks = int(seconds * SECOND) + 1
    if sync is None:
        sync = np.sin(2 * np.pi * master_hz * np.arange(blocks * 256) / FS)
    out = render_module(Vco, blocks, params=dict(wave=wave, freq=hz, pw=pw), inputs={"sync": sync})["out"][0]
    return out[4 * TAPS:4 * TAPS + int(seconds * FS)]


@pytest.mark.parametrize("wave", VCO_WAVES)
@pytest.mark.parametrize("master, ratio", [(1300, 2.37), (3100, 1.73)])
def test_hard_sync_locks_to_the_master_without_aliasing(wave, master, ratio):
    """Synced, the vco repeats at the master's period whatever its own
    pitch: all its power lands on the master's harmonics. Each restart is
    a band-limited step, so what falls between them (aliases) stays 45 dB
    down; a naive synced saw, restarted on the sample, puts it at -8 to
    -11 dB here."""
    fundamental, harmonics, aliases = harmonic_split(synced(wave, master, master * ratio), master)
    assert db(aliases / (fundamental + harmonics)) < -45


def test_hard_sync_restarts_the_cycle_where_the_input_crosses_zero():
    """A sync input that steps from -1 to +1 between two samples crosses
    zero half way: half a sample later the saw has run half a step from
    its start, and runs on from there, at every restart."""
    n = 60 * 256
    sync = np.where(np.arange(n) % 3000 < 1500, -1.0, 1.0)
    hz = 100.0
    out = render_module(Vco, 60, params=dict(wave="saw", freq=hz), inputs={"sync": sync})["out"][0]
    inc = hz / FS
    for k in range(1500, n - 3000, 3000):
        j = np.arange(2 * TAPS, 440)   # its own wrap comes 479.5 samples after the restart
        expected = 0.85 * (2 * inc * (j + 0.5) - 1)
        np.testing.assert_allclose(out[k + TAPS + j], expected, atol=2e-4)


def test_a_sync_input_that_never_rises_through_zero_changes_nothing():
    """Unplugged (0), held high from the start or held low: the same
    samples, bit for bit, as a vco whose sync is never looked at."""
    free = vco(wave="pulse", freq=440.0, pw=0.3)[0]
    blocks = SECOND + 1
    for level in (0.0, 0.7, -0.7):
        held = synced("pulse", None, 440.0, sync=np.full(blocks * 256, level))
        np.testing.assert_array_equal(held, free)


@pytest.mark.parametrize("voct, hz", [(0.0, C4_HZ), (1.0, 2 * C4_HZ), (-1.0, C4_HZ / 2),
                                      (0.75, C4_HZ * 2 ** 0.75)])
def test_pitch_follows_voct(voct, hz):
    # Four seconds: bins of 0.25 Hz put peak_frequency within 0.005 Hz,
    # fine enough to tell the documented 261.63 Hz from a rounded 261.6.
    x = vco(4.0, wave="saw", inputs={"voct": voct})[0]
    assert abs(peak_frequency(x, FS) - hz) < 0.01
    if voct == 0.0:
        assert abs(peak_frequency(x, FS) - 261.63) < 0.01


def test_linear_fm_scales_frequency():
    x = vco(0.5, wave="sine", freq=440.0, fmdepth=2.0, inputs={"fm": 0.25})[0]
    assert abs(peak_frequency(x, FS) - 660.0) < 0.1


def test_polyphonic_pitches():
    notes = np.array([[0.0], [7 / 12], [1.0]])
    out = vco(0.5, wave="sine", inputs={"voct": notes}, channels=3)
    for channel, note in zip(out, notes[:, 0]):
        assert abs(peak_frequency(channel, FS) - C4_HZ * 2 ** note) < 0.1


@pytest.mark.parametrize("wave, pw", [("sine", 0.5), ("saw", 0.5), ("square", 0.5), ("triangle", 0.5),
                                      ("pulse", 0.3), ("pulse", 0.05)])
def test_vco_has_no_dc(wave, pw):
    for f0 in (55.0, 440.0, 3000.0):
        assert abs(vco(wave=wave, freq=f0, pw=pw)[0].mean()) < 0.001


@pytest.mark.parametrize("wave, pw", [("sine", 0.5), ("saw", 0.5), ("square", 0.5), ("triangle", 0.5),
                                      ("pulse", 0.3), ("pulse", 0.1), ("pulse", 0.9), ("pulse", 0.01)])
def test_vco_stays_within_full_scale(wave, pw):
    """Band-limited edges ring and a high square is a sine taller than the
    square: step the pitch (by voct, every 1024 samples) to find the peak."""
    pitches = np.geomspace(20, 23000, 120)
    voct = np.repeat(np.log2(pitches / 1000), 1024)
    out = render_module(Vco, len(voct) // 256, params={"freq": 1000.0, "wave": wave, "pw": pw},
                        inputs={"voct": voct})["out"]
    assert np.abs(out).max() <= 1.0
    if wave != "pulse":
        assert np.abs(out).max() > 0.95  # and still uses the range


def test_pulse_width_modulation_stays_in_range():
    n = 100 * 256
    pw = 0.5 + 0.49 * np.sin(2 * np.pi * 5 * np.arange(n) / FS)
    out = render_module(Vco, 100, params={"wave": "pulse", "freq": 220.0, "pw": pw})["out"]
    assert np.abs(out).max() <= 1.0


def test_vco_survives_wild_modulation():
    """Pitch far past Nyquist, FM through zero, a pulse width beyond its
    range: the kernel clamps them. (Audio-rate FM is not band-limited, so
    here the level may pass 1.)"""
    n = 40 * 256
    rng = np.random.default_rng(0)
    for wave in ("sine", "saw", "square", "triangle", "pulse"):
        out = render_module(Vco, 40, params={"wave": wave, "fmdepth": 10.0, "pw": np.linspace(-1, 2, n)},
                            inputs={"fm": rng.uniform(-1, 1, n), "voct": np.linspace(-10, 30, n)})["out"]
        assert np.isfinite(out).all() and np.abs(out).max() < 2.0


def switching(old, new, f0, blocks=60):
    """The vco switched between two waves at every block: at 256 samples a
    block and these pitches, the switches fall at phases all over the cycle."""
    wave = np.repeat(np.tile([Vco.param("wave").coerce(old), Vco.param("wave").coerce(new)], blocks // 2), 256)
    return render_module(Vco, blocks, params={"freq": f0, "wave": wave, "pw": 0.3})["out"][0]


@pytest.mark.parametrize("old", VCO_WAVES)
def test_a_change_of_wave_stays_within_full_scale(old):
    """The edges of the new wave's first samples must not land on the old
    wave's last ones (a triangle switched to a saw reached -1.85), and a
    pulse must start at the level its phase gives, not the one it had when
    it was last played (sine to square: 1.76)."""
    for new in VCO_WAVES:
        for f0 in (55.0, 220.0, 440.0, 1234.5, 5000.0):
            if new != old:
                assert np.abs(switching(old, new, f0)).max() <= 1.0, (new, f0)


def test_a_change_of_wave_crossfades():
    """Sine and triangle have no edges, and peak a quarter cycle apart:
    switched outright, one sample jumps by their difference at that phase,
    up to 1.41; crossfaded over 16 samples, by a 16th of it at most, plus a
    steady wave's own step (0.0144 at 110 Hz)."""
    x = switching("sine", "triangle", 110.0)
    steady = max(np.abs(np.diff(vco(wave=w, freq=110.0)[0])).max() for w in ("sine", "triangle"))
    assert np.abs(np.diff(x[4 * TAPS:])).max() < np.sqrt(2) / 16 + steady


#: Changes of a choice on samples inside blocks of 256, 128 and 32, each
#: with room for the vco's 16-sample crossfade before the block's end, and
#: one (7930) too near the end of every one of them: it waits for the next.
CHANGES = (1000, 3333, 5001, 7930)


@pytest.mark.parametrize("cls, param, names, params, latency", [
    (Vco, "wave", ("sine", "square", "saw", "triangle", "pulse"), {"freq": 220.0, "pw": 0.3}, TAPS),
    (Lfo, "wave", ("sine", "square", "triangle", "random", "saw"), {"freq": 3.0, "amp": 1.0}, 0),
    (Noise, "color", ("white", "pink", "brown", "white", "pink"), {}, 0),
], ids=["vco", "lfo", "noise"])
def test_a_change_of_waveform_lands_on_its_sample_whatever_the_block_size(cls, param, names, params, latency):
    """A pattern or a timed set steps a choice on its own sample; read once
    a block, a waveform used to change at the next block's start, up to a
    block late, and each block size put it somewhere else."""
    samples = 8192
    codes = [cls.param(param).coerce(name) for name in names]
    wave = np.full(samples, float(codes[0]))
    for at, code in zip(CHANGES, codes[1:]):
        wave[at:] = code
    outs = [render_module(cls, samples // b, params={**params, param: wave}, blocksize=b)["out"][0]
            for b in (256, 128, 32)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    steady = render_module(cls, samples // 256, params={**params, param: names[0]})["out"][0]
    assert np.flatnonzero(outs[0] != steady)[0] == CHANGES[0] + latency


def test_saw_uses_full_scale_at_low_pitch():
    x = vco(wave="saw", freq=50.0)[0]
    assert 0.95 < x.max() <= 1.0 and -1.0 <= x.min() < -0.95


def lfo(blocks=188, **params):
    return render_module(Lfo, blocks, params=params)["out"][0]


#: The JP-8000's saws at full detune, and what its knob's curve makes of
#: some settings (Szabo, "How to Emulate the Super Saw", 2010).
JP8000_OFFSETS = (-0.11002313, -0.06288439, -0.01952356, 0.0, 0.01991221, 0.06216538, 0.10745242)
JP8000_DETUNE = {0.6: 0.13856, 0.7: 0.20329, 1.0: 0.99995}


@pytest.mark.parametrize("detune, mix, centre_to_side", [(1.0, 1.0, 0.444 / 0.591), (0.7, 0.0, 0.998 / 0.0444)])
def test_supersaw_plays_seven_saws_on_the_jp8000s_spread_and_balance(detune, mix, centre_to_side):
    """Two seconds at 1000 Hz: bins of 0.5 Hz part even the three middle
    saws at detune 0.7, 4 Hz apart. Where each fundamental lies checks the
    offsets and the knob's curve; how loud, the centre against the sides
    (Szabo's figures, written out here so a typo in the module shows)."""
    x = supersaw(2.0, freq=1000.0, detune=detune, mix=mix)[0]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    hz = np.fft.rfftfreq(len(x), 1 / FS)
    band = (hz > 850) & (hz < 1150)
    peaks, _ = find_peaks(spectrum[band])
    seven = np.sort(peaks[np.argsort(spectrum[band][peaks])[-7:]])
    amount = JP8000_DETUNE[detune]
    assert np.abs(hz[band][seven] - 1000.0 * (1 + np.array(JP8000_OFFSETS) * amount)).max() <= 0.5
    heights = spectrum[band][seven]
    assert heights[3] / np.delete(heights, 3).mean() == pytest.approx(centre_to_side, rel=0.1)


def test_supersaw_is_band_limited():
    """Every saw's harmonics (4 bins either side, for the window's skirt)
    against the rest, where aliases would fall: seven naive saws at 3 kHz
    alias at -12 dB, band-limited at -90."""
    x = supersaw(freq=3000.0, detune=0.6, mix=0.6)[0]
    power = np.abs(np.fft.rfft(x * blackmanharris(len(x)))) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / FS)
    harmonic = np.zeros(len(power), dtype=bool)
    for offset in JP8000_OFFSETS:
        f = 3000.0 * (1 + offset * JP8000_DETUNE[0.6])
        for line in np.arange(f, FS / 2, f):
            harmonic |= np.abs(hz - line) <= 4
    assert db(power[~harmonic].sum() / power[harmonic].sum()) < -70


@pytest.mark.parametrize("mix", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_supersaw_is_as_loud_as_one_saw_whatever_the_mix(mix):
    x = supersaw(4.0, freq=110.0, detune=0.8, mix=mix)[0]
    saw = vco(4.0, freq=110.0)[0]
    assert abs(db(np.mean(x**2) / np.mean(saw**2))) < 1.0
    assert np.abs(x).max() < 2.4 and abs(x.mean()) < 0.001


def test_supersaw_follows_voct_on_each_channel_from_different_phases():
    notes = np.array([[0.0], [7 / 12], [1.0]])
    out = supersaw(2.0, mix=0.0, inputs={"voct": notes}, channels=3)
    for channel, note in zip(out, notes[:, 0]):
        assert abs(peak_frequency(channel, FS) - C4_HZ * 2 ** note) < 0.1
    same = supersaw(0.1, mix=0.0, channels=2)
    assert not np.allclose(same[0], same[1])


def fm(seconds=1.0, **settings):
    """Whole seconds of fm, so whole-Hz lines land on bins; amplitudes."""
    x = render_module(Fm, int(seconds * SECOND), **settings)["out"]
    return np.abs(np.fft.rfft(x[:, :int(seconds * FS)], axis=1)) / (seconds * FS / 2)


@pytest.mark.parametrize("index", [0.5, 2.0, 5.0])
def test_fm_sidebands_have_the_heights_of_bessel_functions(index):
    """Carrier 4 kHz, modulator 400 Hz: sideband k lies at 4000 + 400 k
    and, for a phase swing of ``index`` radians, is |J_k(index)| tall."""
    line = fm(params={"freq": 4000.0, "ratio": 0.1, "index": index})[0]
    for k in range(-8, 9):
        assert line[4000 + 400 * k] == pytest.approx(abs(jv(k, index)), abs=1e-4)
    assert np.sum(line**2) - sum(line[4000 + 400 * k] ** 2 for k in range(-9, 10)) < 1e-5   # nothing else


def test_fm_at_index_0_is_a_pure_sine_on_the_pitch_of_each_channel():
    notes = np.array([[0.0], [7 / 12], [-1.0]])
    x = render_module(Fm, SECOND, params={"index": 0.0, "ratio": 3.5}, channels=3,
                      inputs={"voct": np.repeat(notes, SECOND * 256, axis=1)})["out"]
    for channel, note in zip(x, notes[:, 0]):
        assert abs(peak_frequency(channel, FS) - C4_HZ * 2 ** note) < 0.05
    fundamental, overtones, rest = harmonic_split(render_module(Fm, SECOND, params={"index": 0.0, "freq": 440.0})
                                                  ["out"][0][:FS], 440)
    assert db((overtones + rest) / fundamental) < -100


def test_fm_feedback_turns_the_modulator_from_a_sine_towards_a_saw():
    """With a small index the sidebands copy the modulator's spectrum: its
    harmonics, which feedback brings up towards a saw's 1/k."""
    def harmonics(feedback):
        line = fm(params={"freq": 4000.0, "ratio": 0.1, "index": 0.1, "feedback": feedback})[0]
        upper = line[[4000 + 400 * k for k in (1, 2, 3, 4)]]
        return upper[1:] / upper[0]
    assert np.all(harmonics(0.0) < [0.03, 0.001, 0.0001])
    assert np.allclose(harmonics(1.0), [1 / 2, 1 / 3, 1 / 4], rtol=0.25)
    assert np.all(harmonics(0.5) < harmonics(1.0))


def test_fm_blocks_with_and_without_feedback_join_seamlessly():
    """A block whose feedback is 0 throughout takes its modulator's sines
    in a loop of their own, one with feedback sample by sample: a
    feedback too small to hear, in every other block, must not be heard."""
    settings = {"freq": 330.0, "ratio": 1.5, "index": 3.0}
    plain = render_module(Fm, 40, params=settings)["out"][0]
    touched = np.zeros(40 * 256)
    touched[256:512] = touched[1024:1280] = 1e-12
    mixed = render_module(Fm, 40, params={**settings, "feedback": touched})["out"][0]
    assert np.abs(mixed - plain).max() < 1e-9 and not np.array_equal(mixed, plain)
    on = np.zeros(40 * 256)
    on[512:] = 0.5            # feedback from block 2: it hears the modulator's last two samples before it
    nudged = on.copy()
    nudged[511] = 1e-12       # block 1 through the loop with feedback
    a, b = (render_module(Fm, 40, params={**settings, "feedback": f})["out"][0] for f in (on, nudged))
    assert np.abs(a - b).max() < 1e-9


def test_fm_stays_within_full_scale_however_hard_it_is_driven():
    x = render_module(Fm, SECOND, params={"index": 50.0, "ratio": 32.0, "feedback": 1.0, "freq": 5000.0})["out"]
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0


def test_lfo_scales_and_offsets():
    x = lfo(freq=2.0, amp=3.0, offset=5.0)
    t = np.arange(len(x)) / FS
    np.testing.assert_allclose(x, 5.0 + 3.0 * np.sin(2 * np.pi * 2.0 * t), atol=1e-9)
    x = lfo(freq=0.5, amp=600.0, offset=1000.0, wave="square")
    assert set(np.unique(x)) == {400.0, 1600.0}


def test_lfo_phase_sets_the_start():
    assert lfo(1, phase=0.25)[0] == pytest.approx(1.0)
    assert lfo(1, wave="triangle", phase=0.5)[0] == pytest.approx(0.0)
    assert lfo(1, wave="square", phase=0.5)[0] == -1.0


@pytest.mark.parametrize("wave", ["sine", "triangle", "saw", "square"])
def test_lfo_waves_are_bipolar_and_centred(wave):
    x = lfo(wave=wave, freq=1.0)[:FS]
    assert abs(x.mean()) < 0.001
    assert x.max() == pytest.approx(1.0, abs=1e-3) and x.min() == pytest.approx(-1.0, abs=1e-3)


def test_lfo_random_holds_one_value_per_cycle():
    x = lfo(wave="random", freq=10.0)[:FS]
    cycles = x.reshape(10, FS // 10)[:, 2:-2]
    assert (np.ptp(cycles, axis=1) == 0).all()
    values = cycles[:, 0]
    assert len(np.unique(values)) == 10 and np.abs(values).max() <= 1.0


def test_lfo_sync_restarts_the_cycle():
    gate = np.zeros(4 * 256)
    gate[600:700] = 1.0
    x = render_module(Lfo, 4, params={"wave": "saw", "freq": 3.0}, inputs={"sync": gate})["out"][0]
    np.testing.assert_allclose(x[600:700], x[:100])


def noise(blocks=188, channels=1, **params):
    return render_module(Noise, blocks, params=params, channels=channels)["out"]


def test_noise_is_reproducible():
    a, b, c = noise(20, seed=7), noise(20, seed=7), noise(20, seed=8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    poly = noise(20, channels=3, seed=7)
    assert np.array_equal(poly[0], a[0])
    assert not np.allclose(poly[0], poly[1]) and not np.allclose(poly[1], poly[2])


def test_white_noise_level():
    x = noise(level=0.5)[0]
    assert 0.49 < np.abs(x).max() <= 0.5
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.5 / np.sqrt(3), rel=0.02)
    assert abs(x.mean()) < 0.01


def octave_levels(x):
    """Mean spectral density (dB) of the octaves from 62.5 Hz to 16 kHz."""
    f, psd = welch(x, FS, nperseg=8192)
    edges = 62.5 * 2.0 ** np.arange(9)
    return np.array([db(psd[(f >= lo) & (f < 2 * lo)].mean()) for lo in edges[:-1]])


def test_white_noise_is_flat():
    levels = octave_levels(noise(4 * SECOND)[0])
    assert np.ptp(levels) < 2.0


def test_pink_noise_falls_3_db_per_octave():
    x = noise(4 * SECOND, color="pink")[0]
    steps = np.diff(octave_levels(x))
    assert np.all(np.abs(steps + 3.0) < 1.0)
    assert steps.mean() == pytest.approx(-3.0, abs=0.3)
    # Half white's RMS keeps its near-Gaussian peaks about full scale.
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.5 / np.sqrt(3), rel=0.15)
    assert np.mean(np.abs(x) > 1.0) < 0.001


def test_brown_noise_falls_6_db_per_octave_with_pinks_level():
    """-6 dB an octave, octave by octave from 62.5 Hz to 16 kHz (the
    corner at 20 Hz and the integrator's bend near Nyquist move a step by
    at most 0.6 dB); the same RMS as pink."""
    x = noise(4 * SECOND, color="brown")[0]
    steps = np.diff(octave_levels(x))
    assert np.all(np.abs(steps + 6.0) < 1.0), steps
    assert steps.mean() == pytest.approx(-6.0, abs=0.3)
    pink = noise(4 * SECOND, color="pink")[0]
    assert np.sqrt(np.mean(x**2)) == pytest.approx(np.sqrt(np.mean(pink**2)), rel=0.15)
    assert np.mean(np.abs(x) > 1.0) < 0.001


@pytest.mark.parametrize("cls", [Vco, Supersaw, Fm, Lfo, Noise])
def test_module_contract(cls):
    check_module(cls)


@pytest.mark.parametrize("wave", ["sine", "saw", "square", "triangle", "pulse"])
def test_vco_state_round_trip_mid_edge(wave):
    """check_module runs the default saw; every wave keeps edges in flight."""
    settings = {"wave": wave, "freq": 3333.0}
    params = {p.name: np.full((2, 64), p.coerce(settings.get(p.name, p.default))) for p in Vco.params}
    inputs = {"voct": np.zeros((2, 64)), "fm": np.zeros((2, 64)), "sync": np.zeros((2, 64))}
    a = Vco(FS, 64, 2)
    out_a, out_b = np.zeros((2, 64)), np.zeros((2, 64))
    for _ in range(3):
        a.process(inputs, params, {"out": out_a})
    b = Vco(FS, 64, 2)
    b.set_state(a.get_state())
    a.process(inputs, params, {"out": out_a})
    b.process(inputs, params, {"out": out_b})
    assert np.array_equal(out_a, out_b)
