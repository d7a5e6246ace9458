"""The sampler, and file parameters through every front end: the sound
played at its pitch and speed from the gate's sample, its modes, and a
path found from the song's folder, refused where it is wrong, saved and
kept inside the working directory for remote commands."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synthcli.control import LiveSound
from synthcli.engine.core import Engine
from synthcli.engine.render import Performance
from synthcli.errors import SynthError
from synthcli.modules import sampler
from synthcli.modules.sampler import FADE, Sampler, padded_sound, warm_sound
from synthcli.patch import Patch
from synthcli.repl.session import Session
from synthcli.sequencer.song import Song
from synthcli.testing import check_module, peak_frequency, render_module

ROOT = Path(__file__).parent.parent
SR = 48000
BLOCKS = 190
N = BLOCKS * 256


@pytest.fixture
def sine(tmp_path):
    """One second of A4 at 44.1 kHz (whole cycles, so a loop is seamless)."""
    path = tmp_path / "a440.wav"
    soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100), 44100, subtype="FLOAT")
    return str(path)


def play(path, gate_on=1000, gate_off=40000, inputs=None, **params):
    gate = np.zeros(N)
    gate[gate_on:gate_off] = 1.0
    return render_module(Sampler, BLOCKS, params={"file": path, **params},
                         inputs={"gate": gate, **(inputs or {})})["out"][0]


def test_contract(sine):
    check_module(Sampler)
    check_module(Sampler, files={"file": sine})


@pytest.mark.parametrize("voct, tune, hz", [(0.0, 0.0, 440.0), (1.0, 0.0, 880.0), (0.0, -12.0, 220.0),
                                            (7 / 12, 0.0, 659.26)])
def test_it_plays_the_file_at_its_own_pitch_whatever_the_rate_and_voct_transposes(sine, voct, tune, hz):
    x = play(sine, inputs={"voct": np.full(N, voct)}, tune=tune)
    assert abs(peak_frequency(x[2000:18000]) - hz) < 0.2


def test_a_oneshot_starts_on_the_gates_sample_and_plays_to_the_end(sine):
    x = play(sine, gate_off=2000)                  # let go at once: it plays on
    first = np.flatnonzero(x)[0]
    assert first in (1000, 1001)                   # the sine's first sample is 0
    assert abs(x[1000:49000]).max() > 0.49 and not x[49000 + 2:].any()   # 44100 samples at 44.1 kHz: 48000 here


def test_gate_mode_fades_out_at_the_fall_and_loop_goes_round(sine):
    gated = play(sine, mode="gate", gate_off=20000)
    assert abs(gated[19000:20000]).max() > 0.49
    assert np.flatnonzero(gated)[-1] < 20000 + FADE and not gated[20000 + FADE:].any()
    looped = play(sine, mode="loop", gate_on=100, gate_off=N)
    seam = looped[48000:48200]                     # the file's end meets its start at 48100: no jump, no gap
    assert np.abs(np.diff(seam)).max() < 2 * np.pi * 440 / SR * 0.5 * 1.05 and abs(seam).max() > 0.49
    assert abs(peak_frequency(looped[40000:48640]) - 440.0) < 2.0


def test_a_note_that_cuts_another_short_crossfades_with_it_without_a_click(sine):
    """Retriggered every 3101 samples from the start (the gate dropping for
    one sample, as a pattern's legato 1 makes it), each new note begins on
    its sample while the last fades out beside it: the sine's own steps
    are 0.029 at most, a 64-sample crossfade adds under 0.016, a cut would
    jump by up to 0.5."""
    gate = np.ones(N)
    gate[3100::3101] = 0.0
    x = render_module(Sampler, BLOCKS, params={"file": sine}, inputs={"gate": gate})["out"][0]
    assert np.abs(np.diff(x)).max() < 0.045
    restarted = 3101 + np.arange(FADE, 1000)            # after the fade: the new note alone, from the file's start
    np.testing.assert_allclose(x[restarted], 0.5 * np.sin(2 * np.pi * 440 * (restarted - 3101) / SR), atol=1e-3)


def test_velocity_start_and_a_stereo_file(sine, tmp_path):
    loud, soft = play(sine), play(sine, inputs={"velocity": np.full(N, 0.25)})
    np.testing.assert_allclose(soft, 0.25 * loud, atol=1e-15)
    half = play(sine, start=0.5, gate_off=2000)
    assert np.flatnonzero(half)[-1] < 1000 + 24000 + 2           # half the file
    stereo = tmp_path / "stereo.wav"
    t = np.arange(4410) / 44100
    soundfile.write(str(stereo), np.stack([np.sin(2 * np.pi * 440 * t), -np.sin(2 * np.pi * 440 * t) + 0.5], 1),
                    44100, subtype="FLOAT")
    x = play(str(stereo), gate_off=2000)
    assert np.allclose(x[1000:5000], 0.25, atol=1e-3)             # mixed to mono: the sines cancel


@pytest.fixture
def noise(tmp_path):
    """Half a second of noise at the engine's rate: read at whole positions,
    the sampler gives back the file's own samples, so playing is exact."""
    path = tmp_path / "noise.wav"
    soundfile.write(str(path), np.random.default_rng(7).uniform(-0.5, 0.5, SR // 2), SR, subtype="DOUBLE")
    return str(path), soundfile.read(str(path))[0]


def test_reverse_plays_the_file_backwards_sample_for_sample(noise):
    path, data = noise
    x = play(path, gate_off=2000, reverse="on")
    length = len(data)
    np.testing.assert_array_equal(x[1000:1000 + length], data[::-1])
    assert not x[:1000].any() and not x[1000 + length:].any()
    np.testing.assert_array_equal(play(path, gate_off=2000, reverse="off")[1000:1000 + length], data)


def test_end_stops_a_note_inside_the_file_with_a_fade_and_reversed_it_starts_there(noise, sine):
    path, data = noise
    quarter = len(data) // 4
    x = play(path, gate_off=2000, start=0.25, end=0.5)
    rise = np.arange(1, FADE + 1) / FADE                       # begun inside the file: it fades in
    np.testing.assert_allclose(x[1000:1000 + FADE], data[quarter:quarter + FADE] * rise)
    np.testing.assert_array_equal(x[1000 + FADE:1000 + quarter - FADE], data[quarter + FADE:2 * quarter - FADE])
    fade = np.arange(FADE, 0, -1) / FADE                       # the last FADE samples fall to silence
    np.testing.assert_allclose(x[1000 + quarter - FADE:1000 + quarter], data[2 * quarter - FADE:2 * quarter] * fade)
    assert not x[1000 + quarter:].any()
    back = play(path, gate_off=2000, start=0.25, end=0.5, reverse="on")
    np.testing.assert_allclose(back[1000:1000 + FADE], data[2 * quarter - 1:2 * quarter - FADE - 1:-1] * rise)
    np.testing.assert_array_equal(back[1000 + FADE:1000 + quarter - FADE],
                                  data[2 * quarter - FADE - 1:quarter + FADE - 1:-1])
    assert not back[1000 + quarter:].any()
    whole = play(path, gate_off=2000)                         # begun at the file's first sample: no fade
    np.testing.assert_array_equal(whole[1000:1000 + FADE], data[:FADE])
    # On a tone the fades are no click: no step above the sine's own.
    tone = play(sine, gate_off=2000, end=0.31)                 # ends 0.4 of a cycle in, at 0.59 of its peak
    assert np.abs(np.diff(tone)).max() < 2 * np.pi * 440 / SR * 0.5 * 1.05 and tone[1000 + 14000].any()
    assert not tone[1000 + int(0.31 * 48000) + 2:].any()
    for reverse in ("off", "on"):   # begins and ends inside cycles: it stepped up to a third of full scale
        for mode in ("gate", "loop"):   # a loop began with a step as high as the sound there
            tone = play(sine, gate_off=2000, start=0.31, end=0.9, reverse=reverse, mode=mode)
            assert np.abs(np.diff(tone)).max() < 2 * np.pi * 440 / SR * 0.5 * 1.05, (reverse, mode)


@pytest.mark.parametrize("reverse", ["off", "on"])
def test_loop_goes_round_between_start_and_end(noise, reverse):
    path, data = noise
    quarter = len(data) // 4
    x = play(path, mode="loop", gate_on=0, gate_off=N, start=0.5, end=0.75, reverse=reverse)
    part = data[2 * quarter:3 * quarter] if reverse == "off" else data[3 * quarter - 1:2 * quarter - 1:-1]
    looped = np.tile(part, 5)
    np.testing.assert_allclose(x[:FADE], looped[:FADE] * np.arange(1, FADE + 1) / FADE)   # begun inside the file
    np.testing.assert_array_equal(x[FADE:5 * quarter], looped[FADE:])   # each time round: no fade


def test_the_cache_gives_the_decoded_sound_bit_for_bit_and_forgets_what_changed(sine, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cold, rate = padded_sound(sine)
    assert not (tmp_path / "cache").exists()                  # setup() alone writes nothing
    warm_sound(sine)
    cached = list((tmp_path / "cache" / "synthcli" / "sounds").glob("*.npy"))
    assert len(cached) == 1 and cached[0].name.endswith("-44100.npy")
    warm, warm_rate = padded_sound(sine)
    assert isinstance(warm.base, np.memmap) and warm.flags.writeable and warm_rate == rate == 44100.0
    np.testing.assert_array_equal(warm, cold)
    # The file rewritten (another sound, another time): the old decoding is not used.
    soundfile.write(sine, 0.25 * np.ones(100), 44100, subtype="FLOAT")
    new, _ = padded_sound(sine)
    assert new.shape == (1, 100 + 8) and np.all(new[0, 4:-4] == 0.25)
    # Beyond CACHE_BYTES the least recently used go, but never the one just made.
    warm_sound(sine)
    assert len(list((tmp_path / "cache" / "synthcli" / "sounds").glob("*.npy"))) == 2
    other = tmp_path / "other.wav"
    soundfile.write(str(other), np.zeros(1000), 48000)
    monkeypatch.setattr(sampler, "CACHE_BYTES", 1)
    warm_sound(str(other))
    assert [p.name.split("-")[1] for p in (tmp_path / "cache" / "synthcli" / "sounds").glob("*.npy")] == ["48000.npy"]


@pytest.mark.parametrize("executor, timed", [("inline", False), ("processes", False), ("inline", True)],
                         ids=["inline", "processes", "timed-bundle"])
def test_a_long_file_set_while_playing_is_read_beside_the_audio_without_an_xrun(jack_server, tmp_path, monkeypatch,
                                                                               sine, executor, timed):
    """A minute of stereo 16-bit sound takes 70-190 ms to decode: done by
    the sampler's setup() on the render thread, 12-14 xruns. The live
    engine has it warmed on a thread of its own first (Sampler.warm), for
    a bundle timed for later (OSC's) as soon as it arrives."""
    from synthcli.audio.player import Player
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # cold: nothing decoded yet
    long = tmp_path / "long.wav"
    tone = 0.5 * np.sin(2 * np.pi * 660 * np.arange(60 * SR) / SR)
    soundfile.write(str(long), np.stack([tone, tone], 1), SR, subtype="PCM_16")
    patch = "add lfo g wave=square freq=0.05\nadd sampler s file={}\nconnect g s.gate\nconnect s out\n"
    take = tmp_path / "take.wav"
    player = Player(patch.format(sine), record=str(take), samplerate=SR, blocksize=256, latency="normal",
                    device=None, executor=executor, workers=1, safe_mode=True, blocks=None)
    player.start()
    try:
        time.sleep(1.0)
        with player.bundle(time.time() + 0.5 if timed else None):
            player.load(patch.format(long))
        time.sleep(2.0)
    finally:
        final = player.stop()
    assert final["xruns"] == 0
    data = soundfile.read(str(take))[0][:, 0]
    assert abs(peak_frequency(data[SR // 4:3 * SR // 4]) - 440.0) < 2.0
    assert abs(peak_frequency(data[-SR:]) - 660.0) < 2.0


SONG = """tempo 120
length 1
add keys kb voices=2
add sampler s file={file} mode=gate
connect kb.voct s.voct
connect kb.gate s.gate
connect s out
pattern kb "c4 e4 g4 c5" legato=0.5
"""


def render(registry, text, source, executor="inline"):
    with Engine(registry, SR, 256, executor=executor) as engine:
        performance = Performance(engine, Song(registry, text, source))
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    return np.concatenate(blocks)[:performance.length]


def test_a_song_finds_its_sample_from_its_own_folder_and_plays_it_as_notes(registry, sine, tmp_path):
    song = tmp_path / "song.seq"
    x = render(registry, SONG.format(file="a440.wav"), str(song))
    heard = [peak_frequency(x[k * 24000 + 1000:k * 24000 + 11000]) for k in range(4)]
    assert np.allclose(heard, [440.0, 554.37, 659.26, 880.0], atol=0.5)
    np.testing.assert_array_equal(render(registry, SONG.format(file="a440.wav"), str(song), "processes"), x)


def test_a_pattern_on_start_plays_each_note_from_its_own_slice(registry, noise, tmp_path):
    """`start` is read as a note starts, on the very sample a pattern
    steps it: it steps there rather than glide, so each note begins
    exactly at its slice, not a little way from the last one."""
    path, data = noise
    song = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd sampler sa file={file} mode=gate\n"
            "connect kb.gate sa.gate\nconnect sa out\n"
            'pattern kb "c4*8" legato=0.5\npattern sa.start "0.5 0 0.875 0.125 0.625 0.25 0.75 0.375"\n')
    x = render(registry, song.format(file=path), str(tmp_path / "song.seq"))
    step = SR // 4                           # eighths at 120 BPM
    for k, start in enumerate((0.5, 0, 0.875, 0.125, 0.625, 0.25, 0.75, 0.375)):
        if k:   # the first note is under the render's fade-in; each but the one from 0 under its own
            skip = FADE if start else 0
            heard, slice_ = x[k * step + skip:k * step + 2000], data[int(start * len(data)) + skip:][:2000 - skip]
            gain = heard @ slice_ / (slice_ @ slice_)
            assert gain > 0.5 and np.abs(heard - gain * slice_).max() < 1e-9, (k, gain)


@pytest.mark.parametrize("file, why", [("nope.wav", "no such file"), (".", "it is a folder"),
                                       ("song.seq", "not a sound file: Format not recognised")])
def test_a_wrong_file_is_refused_where_it_is_named(registry, tmp_path, file, why):
    song = tmp_path / "song.seq"
    song.write_text(SONG.format(file=file))
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"song.seq:4:20: bad value '{file}' for sampler.file: {why}" in done.stderr


def test_a_file_takes_no_cable_no_pattern_and_no_controller(registry, sine):
    patch = Patch(registry)
    patch.load_text(f"add sampler s file={sine}\nadd lfo l")
    for line, words in (("connect l s.file", "names a file"), ("map cc 1 s.file", "not a parameter a controller"),):
        with pytest.raises(SynthError, match=words):
            patch.load_text(line)
    with pytest.raises(SynthError, match="cannot follow a pattern"):
        Song(registry, f"add sampler s file={sine}\npattern s.file \"1 2\"")


def test_save_writes_the_absolute_path_quoted_where_needed_and_loads_it_again(registry, sine, tmp_path):
    spaced = tmp_path / "my sample.wav"
    spaced.write_bytes(Path(sine).read_bytes())
    patch = Patch(registry)
    patch.load_text('add sampler s file="my sample.wav"', str(tmp_path / "p.patch"))
    text = patch.to_text()
    assert f'add sampler s file="{spaced}"' in text
    again = Patch(registry)
    again.load_text(text)
    assert again.modules["s"].params["file"] == str(spaced)


def test_remote_commands_name_files_only_inside_the_working_directory(registry, sine, tmp_path, monkeypatch):
    inside = tmp_path / "work"
    inside.mkdir()
    (inside / "a.wav").write_bytes(Path(sine).read_bytes())
    monkeypatch.chdir(inside)
    session = Session(registry, LiveSound())
    session.execute("add sampler s")
    session.execute("set s.file a.wav", remote=True)
    with pytest.raises(SynthError, match="outside the working directory"):
        session.execute(f"set s.file {sine}", remote=True)
    with pytest.raises(SynthError, match="outside the working directory"):
        session.knob("s", "file", sine)           # what OSC's /synth/set sends
    assert session.patch.modules["s"].params["file"] == str(inside / "a.wav")
    session.execute(f"set s.file {sine}")         # from the keyboard, anywhere
    assert session.patch.modules["s"].params["file"] == sine


def test_the_shipped_sampler_song_plays_its_break_from_any_folder(tmp_path):
    """songs/sampler.seq names its sample from its own folder, so it plays
    wherever synth runs; its slices start on the song's eighths."""
    out = tmp_path / "s.wav"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(ROOT / "songs" / "sampler.seq"),
                           "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    audio, rate = soundfile.read(str(out))
    eighth = rate * 60 / 128 / 2
    assert 0.3 < np.abs(audio).max() < 0.95
    bar = audio[:int(8 * eighth), 0]
    loud = [np.abs(bar[int(k * eighth):int(k * eighth) + 400]).max() for k in range(8)]
    assert min(loud) > 0.05
