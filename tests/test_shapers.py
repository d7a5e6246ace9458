"""slew, sh, quant and drive, checked on the signals they make."""
import numpy as np
import pytest

from synthcli.api import C4_HZ, NoteOff, NoteOn, Param
from synthcli.engine.core import Engine
from synthcli.errors import SynthError
from synthcli.modules.shapers import ROOTS, SCALES, Drive, Quant, SampleHold, Slew
from synthcli.patch import Patch
from synthcli.sequencer.song import Song
from synthcli.testing import check_module, peak_frequency, render_module, rms

SR = 48000
BS = 256


def steps(*levels, seconds=0.25):
    """A signal holding each level for ``seconds``, whole blocks long."""
    each = int(seconds * SR) // BS * BS
    return np.repeat(np.array(levels, dtype=float), each)


def slew(x, channels=1, **params):
    return render_module(Slew, x.shape[-1] // BS, inputs={"in": x}, params=params, channels=channels)["out"]


def drive(x, **params):
    return render_module(Drive, x.shape[-1] // BS, inputs={"in": x}, params=params)["out"][0]


@pytest.mark.parametrize("cls", [Slew, SampleHold, Quant, Drive])
def test_contract(cls):
    check_module(cls)


# -- slew -------------------------------------------------------------------

def test_a_linear_slew_rises_and_falls_at_its_own_rates():
    """rise=0.1 s per unit: a step of 1 takes 4800 samples at a steady
    rate; fall=0.2 s: a step down of 0.5 takes the same."""
    x = steps(0.0, 1.0, 0.5)
    out = slew(x, rise=0.1, fall=0.2)[0]
    up, down = len(x) // 3, 2 * len(x) // 3
    np.testing.assert_allclose(np.diff(out[up - 1:up + 4800]), 1 / 4800, rtol=1e-9)
    assert out[up + 4798] < 1.0 and out[up + 4799] == 1.0
    np.testing.assert_allclose(np.diff(out[down - 1:down + 4800]), -0.5 / 4800, rtol=1e-9)
    assert out[down + 4798] > 0.5 and out[down + 4799] == 0.5
    assert np.all(out[:up] == 0.0) and np.all(out[down + 4800:] == 0.5)


def test_an_exponential_slew_comes_within_one_percent_in_its_time_whatever_the_step():
    for height in (0.25, 1.0, 3.0):
        x = steps(0.0, height, seconds=1.0)
        out = slew(x, rise=0.05, curve="exp")[0][len(x) // 2:]
        within = np.flatnonzero(np.abs(out - height) <= 0.01 * height)[0]
        assert abs(within - 0.05 * SR) <= 1
        tau = int(round(0.05 * SR / np.log(100)))
        assert out[tau] == pytest.approx(height * (1 - np.exp(-1)), rel=1e-3)   # an RC curve
        assert out[-1] == height   # it arrives, not only nearly: no denormal tail


def test_a_slew_starts_where_its_input_is_and_zero_time_follows_at_once():
    """A patch must not open with every voice gliding up from 0 (C4)."""
    x = steps(-2.0, 1.0)
    out = slew(x, rise=0.0, fall=5.0)[0]
    np.testing.assert_array_equal(out, x)


def test_a_slews_voices_glide_on_their_own():
    x = np.stack([steps(0.0, 1.0), steps(0.0, -1.0)])
    rise = np.stack([np.full(x.shape[1], 0.1), np.full(x.shape[1], 0.1)])
    out = slew(x, channels=2, rise=rise, fall=0.05)
    half = x.shape[1] // 2
    assert abs(np.flatnonzero(out[0] == 1.0)[0] - half - 4800) <= 1
    assert abs(np.flatnonzero(out[1] == -1.0)[0] - half - 2400) <= 1


def test_portamento_glides_a_voice_from_note_to_note(registry):
    """keys -> slew -> vco: a fifth up (7 semitones, 0.583 V) at rise=0.1
    takes 58 ms, then the new note holds its pitch."""
    patch = Patch(registry)
    patch.load_text("add keys kb voices=1\nadd slew g rise=0.1 fall=0.1\nadd vco o wave=sine\n"
                    "connect kb.voct g\nconnect g o.voct\nconnect o out\n")
    with Engine(registry, SR, BS) as engine:
        engine.load(patch)
        engine.send("kb", 0, NoteOn(48))
        engine.send("kb", SR // 2, NoteOn(55))
        engine.send("kb", SR // 2, NoteOff(48))
        out = np.concatenate([engine.process_block()[0].copy() for _ in range(SR // BS)])

    def hz(start, stop):
        return peak_frequency(out[int(start * SR):int(stop * SR)], SR)

    c3, g3 = C4_HZ / 2, C4_HZ / 2 * 2 ** (7 / 12)
    assert hz(0.2, 0.5) == pytest.approx(c3, rel=0.005)
    assert c3 * 1.05 < hz(0.52, 0.54) < g3 / 1.05   # on its way
    assert hz(0.6, 0.99) == pytest.approx(g3, rel=0.005)


# -- sh ---------------------------------------------------------------------

def gate(n, *spans):
    """A gate high over each (start, stop) span of samples."""
    g = np.zeros(n)
    for start, stop in spans:
        g[start:stop] = 1.0
    return g


def test_sh_takes_its_input_at_each_rising_edge_and_holds_it():
    """A ramp sampled at three edges, one held high across a block
    boundary (it must not take a second sample there)."""
    n = 40 * BS
    x = np.linspace(-1.0, 1.0, n)
    trig = gate(n, (100, 140), (BS * 3 - 10, BS * 6), (5000, 5001))
    out = render_module(SampleHold, 40, inputs={"in": x, "trig": trig})["out"][0]
    expected = np.zeros(n)
    for start, stop in ((100, BS * 3 - 10), (BS * 3 - 10, 5000), (5000, n)):
        expected[start:stop] = x[start]
    np.testing.assert_array_equal(out, expected)


def test_sh_in_track_mode_follows_while_the_trig_is_high():
    n = 20 * BS
    x = np.sin(np.arange(n) / 50.0)
    trig = gate(n, (300, 900), (2000, 4000))
    out = render_module(SampleHold, 20, inputs={"in": x, "trig": trig}, params={"mode": "track"})["out"][0]
    high = trig > 0.5
    np.testing.assert_array_equal(out[high], x[high])
    np.testing.assert_array_equal(out[900:2000], np.full(1100, x[899]))
    np.testing.assert_array_equal(out[4000:], np.full(n - 4000, x[3999]))
    assert not out[:300].any()


def test_noise_held_at_each_note_steps_exactly_on_the_notes(registry):
    """noise -> sh, clocked by a keys gate: the master changes value on
    the sample of each note-on and at no other sample."""
    patch = Patch(registry)
    patch.load_text("add keys kb voices=1\nadd noise n level=0.5\nadd sh s\n"
                    "connect n s\nconnect kb.gate s.trig\nconnect s out\n")
    onsets = [1000, 7000, 7000 + 3 * BS, 20000]
    with Engine(registry, SR, BS) as engine:
        engine.load(patch)
        for at in onsets:
            engine.send("kb", at, NoteOn(60))
            engine.send("kb", at + 500, NoteOff(60))
        out = np.concatenate([engine.process_block()[0].copy() for _ in range(100)])
    np.testing.assert_array_equal(np.flatnonzero(np.diff(out)) + 1, onsets)


# -- quant ------------------------------------------------------------------

def nearest_note(volts, classes, root):
    """The reference: every note of the scale from four octaves down to
    four up, the nearest taken, ties to the lower."""
    notes = np.array(sorted(root + 12 * octave + pc for octave in range(-5, 5) for pc in classes), float)
    semitones = volts * 12
    distance = np.abs(semitones[:, None] - notes[None, :])
    return notes[np.argmin(distance, axis=1)] / 12   # argmin takes the first, the lower, of a tie


@pytest.mark.parametrize("scale", ["major", "minor", "minpent", "blues", "whole", "chromatic"])
@pytest.mark.parametrize("root", ["c", "fs", "a"])
def test_quant_takes_every_pitch_to_the_nearest_note_of_its_scale(scale, root):
    rng = np.random.default_rng(len(scale) + len(root))
    x = rng.uniform(-3.0, 3.0, 20 * BS)
    x[::7] = np.round(x[::7] * 24) / 24   # quarter tones: ties between two notes of the chromatic scale
    out = render_module(Quant, 20, inputs={"in": x}, params={"scale": scale, "root": root})["out"][0]
    np.testing.assert_allclose(out, nearest_note(x, SCALES[scale], ROOTS.index(root)), atol=1e-12)


def test_quant_strikes_a_trig_at_each_new_note_and_not_at_the_first():
    """A rising line over an octave through C major: the eight notes of
    the scale, changing where the line passes midway between two, and a
    1 ms trig at each of the seven changes."""
    x = np.linspace(0.0, 1.0, 200 * BS)
    out = render_module(Quant, 200, inputs={"in": x}, params={"scale": "major"})
    notes, trig = out["out"][0] * 12, out["trig"][0]
    changes = np.flatnonzero(np.diff(notes)) + 1
    np.testing.assert_allclose(notes[np.r_[0, changes]], [0, 2, 4, 5, 7, 9, 11, 12])
    np.testing.assert_allclose(x[changes] * 12, [1, 3, 4.5, 6, 8, 10, 11.5], atol=12 / len(x))
    starts = np.flatnonzero(np.diff(np.r_[0.0, trig]) > 0)
    np.testing.assert_array_equal(starts, changes)
    assert np.all([trig[k:k + 48].all() and not trig[k + 48] for k in changes])


def test_a_random_lfo_through_quant_plays_a_melody_in_the_scale(registry):
    patch = Patch(registry)
    patch.load_text("add lfo l wave=random freq=8 amp=1\nadd quant q scale=minpent root=a\n"
                    "add vco o wave=sine\nconnect l q\nconnect q o.voct\nconnect o out\n")
    with Engine(registry, SR, BS) as engine:
        engine.load(patch)
        out = np.concatenate([engine.process_block()[0].copy() for _ in range(2 * SR // BS)])
    heard = set()
    for k in range(16):   # eight notes a second, each 6000 samples: the middle of each
        hz = peak_frequency(out[k * 6000 + 1000:k * 6000 + 5000], SR)
        semitones = 12 * np.log2(hz / C4_HZ)
        assert abs(semitones - round(semitones)) < 0.05
        assert (round(semitones) - 9) % 12 in SCALES["minpent"]
        heard.add(round(semitones))
    assert len(heard) >= 4   # a melody, not one note


def test_quant_takes_a_root_as_musicians_spell_it(registry):
    """`root=f#`, `Gb` and `fs` are one root, in a set and in a pattern; an
    unknown one still lists the choices, and save writes the choice's name."""
    patch = Patch(registry)
    patch.load_text("add quant q root=f#\nadd quant q2 root=Gb\nadd quant q3\nset q3.root E#\n")
    roots = [patch.modules[n].params["root"] for n in ("q", "q2", "q3")]
    assert roots == [ROOTS.index("fs"), ROOTS.index("fs"), ROOTS.index("f")]
    assert "add quant q root=fs\n" in patch.to_text()
    song = Song(registry, 'length 1\nadd quant q\npattern q.root "c Eb g# bf"\n')
    steps = [event.value for event in song.voices[("q", "root")].pattern.events(0)]
    assert steps == [ROOTS.index(r) for r in ("c", "ds", "gs", "as")]
    with pytest.raises(SynthError, match=r"bad value 'h#' for quant.root: expected one of c, cs, d, "):
        patch.load_text("set q.root h#\n")
    with pytest.raises(ValueError, match="aliases name 'x', which is not one of its choices"):
        Param("mode", "a", choices=("a", "b"), aliases=(("c", "x"),))


# -- drive ------------------------------------------------------------------

def sine(freq, amp, seconds=1.0):
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR) // BS * BS) / SR)


def spectrum(y):
    y = y[4096:4096 + 32768]
    return np.fft.rfftfreq(len(y), 1 / SR), np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2


def harmonic_power(y, freq):
    """Power at the harmonics of ``freq`` below Nyquist, and everywhere else."""
    freqs, power = spectrum(y)
    near = np.zeros(len(freqs), bool)
    for k in range(1, int(SR / 2 / freq) + 1):
        near |= np.abs(freqs - k * freq) < 60
    return power[near].sum(), power[~near & (freqs > 20)].sum()


def test_drive_at_zero_leaves_a_quiet_signal_as_it_was():
    x = sine(440, 0.05)
    out = drive(x, drive=0.0)
    assert rms(out) == pytest.approx(rms(x), rel=2e-3)   # tanh's curve and half a sample's delay: -0.01 dB
    assert peak_frequency(out, SR) == pytest.approx(440, rel=0.002)


@pytest.mark.parametrize("shape", ["soft", "hard", "fold"])
def test_a_driven_sine_stays_within_level_and_gains_only_odd_harmonics(shape):
    x = sine(220, 0.8)
    out = drive(x, drive=0.6, shape=shape, level=0.5)
    assert np.abs(out).max() <= 0.5
    assert np.abs(out).max() > 0.49   # driven hard into the clipper
    freqs, power = spectrum(out)

    def at(f):
        return power[np.argmin(np.abs(freqs - f))]

    assert at(660) > 1e-2 * at(220)        # a strong third harmonic: the sound of clipping
    assert at(440) < 1e-10 * at(220)       # a symmetric curve makes no even ones


@pytest.mark.parametrize("shape, freq, amount", [
    ("soft", 3100.0, 1.0), ("soft", 7000.0, 1.0), ("hard", 3100.0, 1.0), ("hard", 7000.0, 1.0),
    ("fold", 3100.0, 1.0), ("fold", 7000.0, 0.5), ("fold", 7000.0, 0.75),
])
def test_drive_folds_back_far_less_than_the_curve_taken_sample_by_sample(shape, freq, amount):
    """A 7 kHz sine driven x100 makes harmonics up to 700 kHz; those above
    Nyquist fold back to frequencies that are no harmonic of it. The
    anti-aliased shaper's folded power, against the harmonics, is at least
    8 dB below that of the same curve applied sample by sample (about
    10-15 dB here). The wavefolder driven x100 at 7 kHz is left out: its
    sine runs through about 32 cycles for each half cycle of the input,
    its harmonics stay strong far past Nyquist, and the first-order method
    takes only 3 dB off (x10 and x32 here, or x100 at 3.1 kHz, keep the 8)."""
    x = sine(freq, 0.5)
    out = drive(x, drive=amount, shape=shape)
    curve = {"soft": np.tanh, "hard": lambda u: np.clip(u, -1, 1), "fold": np.sin}[shape]
    naive = curve(100 ** amount * x)
    ours, theirs = (10 * np.log10(folded / kept) for kept, folded in (harmonic_power(out, freq),
                                                                       harmonic_power(naive, freq)))
    assert ours < theirs - 8


def test_a_shape_change_crossfades_over_5_ms_from_its_sample():
    """soft to hard on sample 100 of block 20: before it tanh's output,
    from 240 samples (5 ms) later the clip's, and between them one going
    into the other as a number glides, where the cut clicked."""
    x = sine(300, 0.6, seconds=0.5)
    n = len(x) // BS
    at, fade = 20 * BS + 100, 240
    shape = np.where(np.arange(len(x)) < at, 0.0, 1.0)
    out = render_module(Drive, n, inputs={"in": x}, params={"drive": 0.3, "shape": shape})["out"][0]
    soft, hard = drive(x, drive=0.3, shape="soft"), drive(x, drive=0.3, shape="hard")
    switch = slice(at, at + fade)
    np.testing.assert_array_equal(out[:switch.start], soft[:switch.start])
    np.testing.assert_array_equal(out[switch.stop:], hard[switch.stop:])
    ramp = np.arange(1, fade + 1) / fade
    np.testing.assert_allclose(out[switch], soft[switch] + (hard[switch] - soft[switch]) * ramp, atol=1e-12)
    assert np.abs(hard - soft).max() > 0.1   # the cut it replaced was audible


def test_drive_shape_changes_sound_the_same_whatever_the_block_size():
    """Three changes inside blocks, the second while the first still fades."""
    x = sine(300, 0.6, seconds=0.25)
    shape = np.zeros(len(x))
    for at, kind in ((1000, 1.0), (1100, 2.0), (5000, 0.0)):
        shape[at:] = kind
    outs = [render_module(Drive, len(x) // b, inputs={"in": x}, params={"drive": 0.5, "shape": shape},
                          blocksize=b)["out"][0] for b in (256, 64, 32)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])

