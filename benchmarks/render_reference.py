"""Offline render speed of the reference patch (synthcli/bench.py).

Two measurements, side by side in one run:

* the engine alone (start-up excluded), inline, beside a plain numpy/scipy
  implementation of the same patch: real-time factor (seconds of audio per
  second of wall time) and their ratio;
* the song form through the whole `synth render` process, timed from
  outside (start-up, imports, kernels, render, WAV): inline, with worker
  processes, and auto (the default); and inline with the kernels compiled
  by numba at run time (SYNTHCLI_KERNELS=jit) instead of at install.

    python benchmarks/render_reference.py [--seconds 20] [--voices 1 8 32]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from synthcli.bench import byte_compile, measure, reference_patch, reference_song
from synthcli.plugins import load_registry

SR, BLOCK = 48000, 256


def numpy_render(voices: int, seconds: float) -> float:
    """The same patch the way a numpy/scipy program would write it: vector
    maths per block and voice, scipy's lfilter for the 4-pole lowpass with
    coefficients per block (no resonance: that only flatters this side)."""
    notes = 45 + np.arange(voices)
    inc = 440.0 * 2 ** ((notes - 69) / 12) / SR
    phase = np.zeros(voices)
    zi = np.zeros((voices, 4))
    ramp = np.arange(1, BLOCK + 1)
    knots_t = [0.0, 0.01, 0.11, 0.25, 0.45, 0.5]
    knots_v = [0.0, 1.0, 0.6, 0.6, 0.0, 0.0]
    gain = 0.5 / voices ** 0.5
    out = np.zeros((2, BLOCK))
    blocks = int(seconds * SR / BLOCK)
    start = time.perf_counter()
    for b in range(blocks):
        t = (b * BLOCK + ramp) / SR
        cutoff = 1650 + 1350 * np.sin(2 * np.pi * 0.5 * t[0])
        a = np.exp(-2 * np.pi * cutoff / SR)
        den = np.poly([a] * 4)
        num = [(1 - a) ** 4]
        env = np.interp(t % 0.5, knots_t, knots_v)
        mix = np.zeros(BLOCK)
        for v in range(voices):
            ph = (phase[v] + ramp * inc[v]) % 1.0
            phase[v] = ph[-1]
            y, zi[v] = lfilter(num, den, 2 * ph - 1, zi=zi[v])
            mix += y * env * gain
        out[0] = out[1] = mix
    return time.perf_counter() - start


def whole_render(voices: int, seconds: float, executor: str, kernels: str = "auto") -> float:
    """Wall seconds of `synth render` of the reference song, as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "reference.seq"
        song.write_text(reference_song(voices, max(1, round(seconds / 2))))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(Path(tmp) / "out.wav"),
                        "--quiet", "--executor", executor], check=True,
                       env={**os.environ, "SYNTHCLI_KERNELS": kernels})
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--voices", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    registry = load_registry(safe_mode=True)
    byte_compile()
    measure(registry, reference_patch(1), "inline", BLOCK, 0.1, notes=1)  # warm the caches before timing
    print(f"reference patch, {args.seconds:g} s at {SR} Hz, block {BLOCK}: real-time factor (higher is faster)")
    print(f"{'voices':>6} {'synthcli inline':>16} {'numpy/scipy':>12} {'ratio':>7}")
    for voices in args.voices:
        ours = measure(registry, reference_patch(voices), "inline", BLOCK, args.seconds, notes=voices)
        theirs = args.seconds / numpy_render(voices, args.seconds)
        print(f"{voices:>6} {ours:>15.1f}x {theirs:>11.1f}x {ours / theirs:>6.2f}x")
    print(f"\nreference song, whole `synth render` process, {args.seconds:g} s of song: wall seconds, "
          f"best of 3 interleaved")
    print(f"{'voices':>6} {'inline':>8} {'processes':>10} {'auto':>8} {'inline, numba at run time':>26}")
    runs = [("inline", "auto"), ("processes", "auto"), ("auto", "auto"), ("inline", "jit")]
    whole_render(1, 0.5, "inline", "jit")   # numba's own cache, written once
    for voices in args.voices:
        times = [[whole_render(voices, args.seconds, *run) for run in runs] for _ in range(3)]
        best = [min(column) for column in zip(*times)]
        print(f"{voices:>6} {best[0]:>7.2f}s {best[1]:>9.2f}s {best[2]:>7.2f}s {best[3]:>25.2f}s")


if __name__ == "__main__":
    main()
