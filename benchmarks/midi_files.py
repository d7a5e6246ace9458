"""What a long MIDI file costs: whole ``synth check`` and ``synth render
-d 1`` processes of files of several sizes, their wall time and their
peak memory (the largest resident set the kernel saw), beside a file of
one note measured in the same run.

A file is a melody of alternating note-ons and note-offs a tick apart,
as the MIDI audit's was: mido parses every message into an object of its
own, so memory grows with the notes; what synthcli makes of them (the
merge of the tracks, each event's time) is made as it is played. The
file's length and bars come from its tempo changes and time signatures
alone, and a render reads the file once.

    python benchmarks/midi_files.py [--notes 1 20000 200000] [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido


def melody(path: Path, notes: int) -> Path:
    track = mido.MidiTrack()
    for i in range(notes):
        track.append(mido.Message("note_on", note=60 + i % 12, velocity=100, time=1))
        track.append(mido.Message("note_off", note=60 + i % 12, time=1))
    song = mido.MidiFile(type=0)
    song.tracks.append(track)
    song.save(str(path))
    return path


def seconds_of(args: list[str]) -> float:
    """Wall seconds of one whole ``synth`` process."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "synthcli.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, nargs="+", default=[1, 20000, 200000])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = {n: melody(Path(folder) / f"{n}.mid", n) for n in options.notes}
        out = str(Path(folder) / "out.wav")
        print(f"{'notes':>8} {'file':>9} {'check':>8} {'render -d 1':>12} {'peak memory':>12}  (medians of {options.runs})")
        for notes, path in files.items():
            checks = [seconds_of(["check", str(path)]) for _ in range(options.runs)]
            renders = [seconds_of(["render", str(path), "-o", out, "-d", "1", "-q"]) for _ in range(options.runs)]
            peak = statistics.median(peak_of(path, out) for _ in range(options.runs))
            print(f"{notes:>8} {path.stat().st_size / 1e6:>7.2f}MB {statistics.median(checks):>7.2f}s "
                  f"{statistics.median(renders):>11.2f}s {peak:>10.0f}MB")


def peak_of(path: Path, out: str) -> float:
    """Peak resident megabytes of a render of ``path``, from a process of
    its own whose one child is that render (a child's ru_maxrss is the
    largest of any child so far)."""
    script = ("import resource, subprocess, sys\n"
              "subprocess.run([sys.executable, '-m', 'synthcli.cli', 'render', sys.argv[1], '-o', sys.argv[2],"
              " '-d', '1', '-q'], check=True)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path), out], check=True, capture_output=True, text=True)
    return float(done.stdout)


if __name__ == "__main__":
    main()
