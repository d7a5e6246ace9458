"""Per-block overhead of each executor, and the speed-up of worker
processes over inline on the reference patch.

Hand-off: the round trip of a block number through the processes
executor's pipes to a forked process and back, sleeping in read() as live
play does, and polling without sleep as offline rendering does when there
is a core for each process (synthcli.engine.processes._read_soon).
Overhead: microseconds per block for an empty patch and a light one (one
oscillator), where the executor's hand-offs are all there is to measure.
Speed-up: real-time factor of threads, processes (1 and 2 workers) and auto
(what `synth render` uses: inline, or processes once measured to pay) over
inline at 8, 32 and 128 voices, at 256 and 1024 samples, measured side by
side in one run. Offline, processes with one worker per spare core spin
instead of sleeping at each hand-off; with more processes than cores
they sleep.

    python benchmarks/executors.py [--seconds 3]
"""
from __future__ import annotations

import argparse
import os
import time

from synthcli.bench import measure, reference_patch
from synthcli.engine.processes import _read_soon
from synthcli.plugins import load_registry

SR = 48000
LIGHT = "add vco o wave=sine\nconnect o out\n"


def round_trip(spin: bool, count: int = 20000) -> float:
    """Mean seconds for a block number to go to a forked process and back."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    for fd in (go_r, done_r):
        os.set_blocking(fd, not spin)
    read = (lambda fd: _read_soon(fd, 8, None)) if spin else (lambda fd: os.read(fd, 8))
    child = os.fork()
    if child == 0:
        for _ in range(count):
            read(go_r)
            os.write(done_w, b"d")
        os._exit(0)
    start = time.perf_counter()
    for block in range(count):
        os.write(go_w, block.to_bytes(8, "little"))
        read(done_r)
    spent = time.perf_counter() - start
    os.waitpid(child, 0)
    for fd in (go_r, go_w, done_r, done_w):
        os.close(fd)
    return spent / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    registry = load_registry(safe_mode=True)
    measure(registry, LIGHT, "inline", 256, 0.1)

    print(f"hand-off round trip: sleeping {1e6 * round_trip(False):.1f} us, "
          f"polling {1e6 * round_trip(True):.1f} us\n")
    print("per-block cost in microseconds (256 samples)")
    print(f"{'patch':<8} {'inline':>8} {'threads/1':>10} {'processes/1':>12} {'processes/2':>12} {'auto':>8}")
    for label, text in (("empty", ""), ("light", LIGHT)):
        row = []
        for executor, workers in (("inline", None), ("threads", 1), ("processes", 1), ("processes", 2),
                                  ("auto", None)):
            rt = measure(registry, text, executor, 256, args.seconds, workers)
            row.append(1e6 * 256 / SR / rt)
        print(f"{label:<8} " + " ".join(f"{v:>{w}.1f}" for v, w in zip(row, (8, 10, 12, 12, 8))))

    print("\nreference patch: real-time factor, and speed-up over inline")
    print(f"{'voices':>6} {'block':>6} {'inline':>8} {'threads/1':>14} {'processes/1':>14} {'processes/2':>14}"
          f" {'auto':>14}")
    for voices in (8, 32, 128):
        for blocksize in (256, 1024):
            text = reference_patch(voices)
            base = measure(registry, text, "inline", blocksize, args.seconds, notes=voices)
            cells = []
            for executor, workers in (("threads", 1), ("processes", 1), ("processes", 2), ("auto", None)):
                rt = measure(registry, text, executor, blocksize, args.seconds, workers, notes=voices)
                cells.append(f"{rt:>7.1f}x {rt / base:>4.2f}")
            print(f"{voices:>6} {blocksize:>6} {base:>7.1f}x " + " ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
