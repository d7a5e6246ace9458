"""string: tuning, decay, release, pluck strength and tone."""
import numpy as np
import pytest

from synthcli.testing import check_module, render_module, render_song
from synthcli_strings import String

FS = 48000
BLOCK = 256


def pluck(blocks=100, channels=1, gate_off=None, inputs=None, **params):
    gate = np.zeros(blocks * BLOCK)
    gate[100:gate_off] = 1.0
    return render_module(String, blocks, params=params, inputs={"gate": gate, **(inputs or {})},
                         channels=channels, samplerate=FS, blocksize=BLOCK)["out"]


def spectrum(y, n=1 << 20):
    return np.fft.rfftfreq(n, 1 / FS), np.abs(np.fft.rfft(y * np.hanning(y.size), n))


def fundamental(y, near):
    freqs, mag = spectrum(y)
    band = (freqs > near * 0.94) & (freqs < near * 1.06)
    return freqs[band][np.argmax(mag[band])]


def level_at(y, hz, t):
    seg = y[int(t * FS):int(t * FS) + 4096]
    freqs, mag = spectrum(seg, 1 << 16)
    return mag[np.abs(freqs - hz) < hz * 0.03].max()


def centroid(y):
    freqs, mag = spectrum(y, 1 << 15)
    return (freqs * mag).sum() / mag.sum()


def test_contract():
    check_module(String)


def test_silent_until_plucked():
    out = render_module(String, 10, samplerate=FS, blocksize=BLOCK)["out"]
    assert not out.any()


@pytest.mark.parametrize("hz", [82.41, 220.0, 440.0, 1046.5, 2093.0])
@pytest.mark.parametrize("damping", [0.0, 0.5, 1.0])
def test_in_tune_at_any_damping(hz, damping):
    """The allpass takes the fraction of the period, and the lowpass's
    half-sample delay comes off the line: within 1 cent."""
    y = pluck(freq=hz, damping=damping, decay=5.0)[0][2000:2000 + 16384]
    assert abs(1200 * np.log2(fundamental(y, hz) / hz)) < 1.0


def test_fundamental_falls_60_db_in_decay():
    y = pluck(blocks=150, freq=220.0, decay=1.0, damping=0.5)[0]
    drop = 20 * np.log10(level_at(y, 220.0, 0.6) / level_at(y, 220.0, 0.1))
    assert drop == pytest.approx(-30.0, abs=2.0)


def test_release_mutes_once_the_gate_falls():
    held = pluck(blocks=150, freq=220.0, decay=4.0, release=0.1)[0]
    lifted = pluck(blocks=150, freq=220.0, decay=4.0, release=0.1, gate_off=100 + FS // 10)[0]
    assert np.array_equal(held[:100 + FS // 10], lifted[:100 + FS // 10])
    late = slice(int(0.4 * FS), int(0.6 * FS))
    assert np.abs(lifted[late]).max() < 1e-3 * np.abs(held[late]).max()


def test_velocity_scales_the_pluck():
    full = pluck(freq=330.0)[0]
    soft = pluck(freq=330.0, inputs={"velocity": 0.5})[0]
    assert np.allclose(soft, 0.5 * full, atol=1e-12)
    assert 0.3 < np.abs(full).max() < 0.8


def test_brightness_and_damping_shape_the_tone():
    dull, bright = (pluck(freq=220.0, brightness=b, damping=0.0)[0][100:4900] for b in (0.0, 1.0))
    assert centroid(bright) > 2 * centroid(dull)
    soft, metal = (pluck(freq=220.0, damping=d)[0][24000:] for d in (1.0, 0.0))
    assert centroid(metal) > 2 * centroid(soft)


def test_replucking_and_voices():
    """Each voice is its own string, at its own pitch."""
    voct = np.array([[0.0], [7 / 12]]) * np.ones(100 * BLOCK)
    y = pluck(channels=2, inputs={"voct": voct}, decay=5.0)
    assert abs(fundamental(y[0][2000:18384], 261.63) - 261.63) < 0.5
    assert abs(fundamental(y[1][2000:18384], 392.0) - 392.0) < 0.5
    assert not np.array_equal(y[0], y[1])


def test_a_pattern_on_brightness_gives_each_pluck_its_own_tone():
    """Stepped with the notes, each pluck is what a song at its brightness
    plays, in blocks of 4096 as of 48. Gliding, a pluck took part of the
    last value; the burst's loudness followed the glide through the burst,
    and its lowpass started where the last burst had left it."""
    song = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd string s decay=0.05 release=0.05 brightness={b}\n"
            "connect kb.voct s.voct\nconnect kb.gate s.gate\nconnect s out\n"
            'pattern kb "a3*4" legato=0.5\n{pattern}')
    stepped = song.format(b=0.5, pattern='pattern s.brightness "0 1 0.2 0.9"\n')
    big, small = (render_song(stepped, [String], blocksize=n)[0] for n in (4096, 48))
    n = min(big.size, small.size) - 4096
    assert np.array_equal(big[:n], small[:n])
    quarter = FS // 2
    for k, b in enumerate((0, 1, 0.2, 0.9)):
        alone = render_song(song.format(b=b, pattern=""), [String])[0]
        note = slice(k * quarter, (k + 1) * quarter)
        error = np.abs(big[note] - alone[note]).max() / np.abs(alone[note]).max()
        assert error < 1e-6, (k, error)    # what is left of the last note


def test_a_burst_does_not_carry_the_last_one_s_colour():
    """Two plucks, the first bright or dark, the second the same: once the
    first has died away, the second sounds the same after either."""
    gate = np.zeros(100 * BLOCK)
    gate[100:1000] = gate[FS // 2:FS // 2 + 1000] = 1.0
    after = [render_module(String, 100, params={"brightness": np.where(np.arange(gate.size) < FS // 4, b, 0.3),
                                                 "release": 0.01},
                           inputs={"gate": gate}, samplerate=FS, blocksize=BLOCK)["out"][0][FS // 2:]
             for b in (0.0, 1.0)]
    assert np.abs(after[0]).max() > 0.1
    assert np.abs(after[0] - after[1]).max() < 1e-9
