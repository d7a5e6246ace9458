"""What building a sampler costs with and without its sound in the cache.

A live edit that builds a ``sampler`` (``add``, or a ``set`` of its file)
used to decode the file in ``setup()`` on the render thread, which has
about 60 ms of blocks in hand before the device starves. Live play now
calls ``Sampler.warm`` on a thread of its own first, which decodes into a
cache that ``setup()`` maps (see ``synthcli/modules/sampler.py``). This
prints, for sound files of several lengths (stereo, 16-bit WAV at
48 kHz, written to a temporary folder), the time of ``setup()`` cold, as
an offline render and the render thread before did it, of ``warm()``,
and of ``setup()`` after it; side by side in one run, best of several.

    python benchmarks/sound_files.py [--seconds 10 60 300] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from synthcli.modules.sampler import Sampler

SR, BLOCK = 48000, 256


def best(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 300])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["XDG_CACHE_HOME"] = str(Path(folder) / "cache")   # a cold cache of our own
        print(f"{'file':>12} {'setup, cold':>12} {'warm':>9} {'setup, warm':>12} {'cold / warm setup':>18}")
        for seconds in args.seconds:
            path = str(Path(folder) / f"{seconds:g}s.wav")
            noise = np.random.default_rng(1).uniform(-0.5, 0.5, (int(seconds * SR), 2))
            soundfile.write(path, noise, SR, subtype="PCM_16")
            files = {"file": path}
            cold = best(args.repeats, lambda: Sampler(SR, BLOCK, 1, files))
            warm = best(1, lambda: Sampler.warm(files))   # once: a second time finds it done
            mapped = best(args.repeats, lambda: Sampler(SR, BLOCK, 1, files))
            print(f"{seconds:>11g}s {1e3 * cold:>10.1f}ms {1e3 * warm:>7.1f}ms {1e3 * mapped:>10.2f}ms "
                  f"{cold / mapped:>17.0f}x")


if __name__ == "__main__":
    main()
