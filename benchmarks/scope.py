"""What the REPL's scope costs: the render thread's copy into the tap after
each block (a real Engine, a vco of 1 and of 16 voices), the reader's
``latest()``, and drawing one frame at three terminal sizes.

    python benchmarks/scope.py [--repeat 2000]

The tap copy is on the render thread's path, so it is compared with the
block itself (5.33 ms at 256 samples and 48 kHz); a frame must take well
under 50 ms for 20 frames a second.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from synthcli.audio.tap import Tap
from synthcli.engine.core import Engine
from synthcli.patch import Patch
from synthcli.plugins import load_registry
from synthcli.repl.scope import FFT, frame

BLOCK, RATE = 256, 48000


def per_call(function, repeat: int) -> tuple[float, float]:
    """Median and worst microseconds of one call."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times), 1e6 * max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    registry = load_registry(safe_mode=True)
    print(f"{'what':<44} {'median us':>10} {'worst us':>10}")
    for voices in (1, 16):
        patch = Patch(registry)
        patch.load_text(f"add keys kb voices={voices}\nadd vco a\nconnect kb.voct a.voct\nconnect a out\n")
        with Engine(registry, RATE, BLOCK) as engine:
            engine.load(patch)
            engine.process_block()
            tap = Tap(BLOCK)
            try:
                tap.select(("a", "out"))
                median, worst = per_call(lambda: tap.after_block(engine), repeat)
                print(f"{f'tap copy after a block, vco x{voices}':<44} {median:>10.1f} {worst:>10.1f}")
                block, _ = per_call(engine.process_block, repeat // 4)
                print(f"{f'  (the block itself, for scale)':<44} {block:>10.1f}")
                median, worst = per_call(lambda: tap.latest(FFT), repeat)
                print(f"{f'reader: latest({FFT})':<44} {median:>10.1f} {worst:>10.1f}")
            finally:
                tap.close()
    samples = (0.8 * np.sin(2 * np.pi * 440 * np.arange(FFT) / RATE)).astype(np.float32)
    for width, height in ((80, 24), (110, 36), (200, 60)):
        median, worst = per_call(lambda: frame(samples, width, height, RATE, "a.out", 1), repeat // 10)
        print(f"{f'one frame at {width}x{height} (ms: {median / 1e3:.2f})':<44} {median:>10.1f} {worst:>10.1f}")


if __name__ == "__main__":
    main()
