"""The scripts in examples/ run as their docstrings say, and do what they
print: a stranger copies them, so they must not rot as the API grows."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from synthcli.harness import Playing, free_udp_port
from synthcli.testing import peak_frequency

ROOT = Path(__file__).resolve().parents[1]


def example(name, *args):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def test_render_song_writes_the_song_it_says(tmp_path):
    out = tmp_path / "song.wav"
    said = example("render_song.py", out)
    audio, rate = soundfile.read(str(out))
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: {len(audio) / rate:.2f} s, peak -?[0-9.]+ dBFS, "
                        r"first note at 220.0 Hz \(a3 is 220.0 Hz\)\n", said), said
    assert 4.0 < len(audio) / rate < 5.0   # two bars at 120 BPM and the release
    assert abs(peak_frequency(audio[int(0.05 * rate):int(0.45 * rate), 0], rate) - 220.0) < 1.0


def test_a_module_written_in_a_script_plays_in_a_worker(tmp_path):
    out = tmp_path / "fold.wav"
    said = example("module_in_a_script.py", out)
    assert said.endswith("'fold' ran in worker process 1\n"), said
    audio, rate = soundfile.read(str(out))
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    assert spectrum[int(1000 * len(audio) / rate):].sum() > 0.1 * spectrum.sum()   # folded: bright
    strongest = np.argmax(spectrum) * rate / len(audio)
    assert strongest > 150 and abs(strongest - 110 * round(strongest / 110)) < 1.0   # a harmonic of the 110 Hz sine


def test_osc_remote_drives_a_playing_song(jack_server, tmp_path):
    port = free_udp_port()
    playing = Playing("songs/demo.seq", "--osc", port, ready="listening for OSC", cwd=str(ROOT))
    try:
        said = example("osc_remote.py", port)
    finally:
        err = playing.finish()
    assert "reply /synth/error /synth/cmd: column 10: module type 'vcf' has no parameter 'cutof'" in said, said
    assert re.search(r"param +cutoff +1800 Hz <- sweep\.out", said), said   # the set and the new cable
    assert "reply /synth/stats 13 11 1 0" in said, said   # received, applied, refused, dropped
    assert "Traceback" not in err and "refused: column 10" in err, err


def shipped(folder, suffix):
    """The songs and patches in the repository, but those that need a plugin."""
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).glob(f"*{suffix}")
                  if "\nrequire " not in "\n" + p.read_text())


def test_every_song_and_patch_shipped_checks_and_the_generative_song_sounds(tmp_path):
    """They are how a musician meets the modules and the notation, so
    none may rot; the generative song uses what is newest (quant, slew,
    drive, chorus, a polymeter, random drops) and must end with its bars."""
    for path in shipped("songs", ".seq") + shipped("patches", ".patch"):
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", path], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stderr, (path, done.stderr)
    out = tmp_path / "g.wav"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", "songs/generative.seq", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    audio, rate = soundfile.read(str(out))
    assert 34.3 < len(audio) / rate < 37.0   # 16 bars at 112 BPM, then the release: nothing runs on
    seconds = [np.abs(audio[k * rate:(k + 1) * rate]).max() for k in range(34)]
    assert min(seconds) > 0.05 and np.abs(audio).max() < 0.8
