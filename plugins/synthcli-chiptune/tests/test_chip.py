"""chip, judged by what comes out of it: pitches, the 4-bit staircase, the
stepped volume, noise, sweep and arpeggio."""
import numpy as np
import pytest

from synthcli.testing import check_module, render_module
from synthcli_chiptune import Chip
from synthcli_chiptune.voice import WAVETABLES

FS = 48000
BLOCK = 256
A4 = 0.75  # volts above C4


def render(blocks=100, channels=1, inputs=None, **params):
    return render_module(Chip, blocks, params=params, inputs=inputs, channels=channels,
                         samplerate=FS, blocksize=BLOCK)["out"]


def strongest(y, lo=20.0, hi=20000.0):
    """Frequency of the strongest spectral line between lo and hi Hz."""
    n = 1 << 18
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size), n))
    freqs = np.fft.rfftfreq(n, 1 / FS)
    band = (freqs >= lo) & (freqs <= hi)
    return freqs[band][np.argmax(spectrum[band])]


def gate_at(start, stop=None, blocks=100):
    g = np.zeros(blocks * BLOCK)
    g[start:stop] = 1.0
    return g


def test_contract():
    check_module(Chip)


@pytest.mark.parametrize("wave", list(WAVETABLES))
def test_every_table_plays_in_tune(wave):
    y = render(inputs={"voct": np.full(100 * BLOCK, A4)}, wave=wave, level=1.0)[0]
    assert abs(strongest(y[4800:]) - 440.0) < 0.5
    assert np.abs(y).max() <= 1.0 + 1e-9
    assert abs(y[4800:].mean()) < 0.01  # the tables carry no DC


def test_it_is_a_4_bit_staircase():
    """Slow enough that the steps are long: a few levels on a 4-bit grid (16
    steps from -1 to +1) hold nearly every sample."""
    y = render(blocks=40, freq=25.0, wave="sine", level=1.0)[0][1000:]
    levels, counts = np.unique(np.round(y, 9), return_counts=True)
    held = levels[counts > 100]
    assert counts[counts > 100].sum() > 0.95 * y.size
    assert len(held) == len(set(WAVETABLES["sine"]))  # one level per nibble the table uses
    grid = (held - held[0]) * 7.5                      # -1..+1 is 15 steps of 2/15
    assert np.allclose(grid, np.round(grid))


@pytest.mark.parametrize("wave, duty", [("pulse12", 0.125), ("pulse25", 0.25), ("pulse50", 0.5)])
def test_pulse_duty(wave, duty):
    y = render(blocks=40, freq=50.0, wave=wave, level=1.0)[0][1000:1000 + 8 * 960]  # 8 whole cycles
    assert abs(np.mean(y > 0) - duty) < 0.005


def test_volume_steps_down_over_decay():
    """15 levels, one every decay/15 s, then silence; each plateau is flat."""
    decay = 0.15
    y = render(blocks=60, inputs={"gate": gate_at(0, blocks=60)}, decay=decay, wave="pulse50", level=1.0)[0]
    step = int(decay / 15 * FS)
    peaks = [np.abs(y[k * step + 20:(k + 1) * step - 20]).max() for k in range(15)]
    assert np.allclose(peaks, np.arange(15, 0, -1) / 15, atol=0.02)
    assert not y[int(1.1 * decay * FS):].any()


def test_velocity_sets_the_starting_volume():
    y = render(blocks=10, inputs={"velocity": 0.5}, wave="pulse50", level=1.0)[0]
    assert np.abs(y[500:]).max() == pytest.approx(8 / 15, abs=1e-9)  # 15 x 0.5, rounded


def test_release_steps_to_silence_and_a_new_note_restarts():
    blocks = 80
    gate = gate_at(0, 4800, blocks) + gate_at(14400, None, blocks)
    y = render(blocks=blocks, inputs={"gate": gate}, release=0.05, wave="pulse50")[0]
    assert np.abs(y[4800 + int(0.05 * FS) + 10:14400]).max() == 0.0
    assert np.abs(y[14500:]).max() == pytest.approx(0.5, abs=0.01)


def test_noise_is_noise_and_metal_is_pitched():
    noise = render(blocks=100, wave="noise", level=1.0)[0][4800:]
    metal = render(blocks=100, wave="metal", level=1.0, inputs={"voct": np.full(100 * BLOCK, A4)})[0][4800:]
    assert abs(noise.mean()) < 0.02 and noise.std() > 0.5
    # Noise does not repeat; metal repeats every cycle of the played pitch.
    period = round(FS / 440.0 * 12)  # 12 cycles of A4 are a whole number of samples, nearly
    assert np.corrcoef(noise[:-period], noise[period:])[0, 1] < 0.2
    assert np.corrcoef(metal[:-period], metal[period:])[0, 1] > 0.9
    assert abs(strongest(metal, lo=400) % 440.0) < 1.0 or abs(strongest(metal, lo=400) % 440.0 - 440.0) < 1.0


def test_arpeggio_cycles_through_the_chord():
    y = render(blocks=200, wave="sine", arp="major", arprate=2.0)[0]  # half a second per note
    half = FS // 2
    notes = [strongest(y[k * half + 2400:(k + 1) * half - 2400]) for k in range(3)]
    assert np.allclose(notes, [261.63, 329.63, 392.0], atol=1.0)


def test_sweep_bends_from_each_note_start():
    y = render(blocks=100, wave="sine", sweep=2.0)[0]  # up two octaves per second
    early = strongest(y[0:4800])       # around 0.05 s
    late = strongest(y[24000:28800])   # around 0.55 s
    assert 1.9 < late / early < 2.3


def test_voices_are_independent():
    voct = np.array([[0.0], [1.0]]) * np.ones(100 * BLOCK)
    y = render(channels=2, inputs={"voct": voct}, wave="triangle")
    assert abs(strongest(y[0, 4800:]) - 261.63) < 0.5
    assert abs(strongest(y[1, 4800:]) - 523.25) < 0.5


def test_high_notes_stay_harmonic():
    """The polyBLEP steps keep aliases 25 dB or more below the harmonics."""
    f0 = 2637.0
    y = render(blocks=100, freq=f0, wave="pulse50", level=1.0)[0][4800:]
    power = np.abs(np.fft.rfft(y * np.blackman(y.size))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / FS)
    harmonic = np.zeros(freqs.size, dtype=bool)
    for k in range(1, int(FS / 2 / f0) + 1):
        harmonic |= np.abs(freqs - k * f0) < 20
    assert 10 * np.log10(power[~harmonic].sum() / power[harmonic].sum()) < -25


def test_wave_and_arpeggio_change_on_their_own_sample():
    """A pattern steps a choice inside a block: the change is heard from
    that sample, so blocks of 256 and of 64 give the same sound, and up to
    it the sound is the old wave's."""
    n = 40 * BLOCK
    wave = np.full(n, float(list(WAVETABLES).index("pulse50")))
    wave[3000:] = list(WAVETABLES).index("saw")
    arp = np.zeros(n)
    arp[5001:] = 1.0   # major
    params = {"wave": wave, "arp": arp, "arprate": 20.0, "level": 1.0}
    gate = {"gate": gate_at(0, blocks=40)}
    blocks = [render_module(Chip, n // b, params=params, inputs=gate, samplerate=FS, blocksize=b)["out"][0]
              for b in (256, 64)]
    np.testing.assert_array_equal(blocks[0], blocks[1])
    steady = render(blocks=40, inputs=gate, wave="pulse50", level=1.0)[0]
    # The saw's staircase may meet the pulse's for a few samples; read once a block it changed at 3072.
    assert 3000 <= np.flatnonzero(blocks[0] != steady)[0] < 3016
