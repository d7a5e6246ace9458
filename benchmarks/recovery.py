"""Fault recovery and live edits with the processes executor.

* recovery: a module in a worker process segfaults; the time from the
  engine noticing to the replacement hosting its modules, and how many
  blocks the module stays silent;
* live: the block a worker hangs or crashes in, timed as the render thread
  spends it at ``--latency normal``'s deadline, against the two blocks of
  audio queued ahead of it (more, and the whole mix drops out);
* add: the time `Engine.load` takes to add one module to a running patch,
  inline and with worker processes (it must not cost a process start),
  and the time of the block after the one its new cable fades in over,
  which rebuilds the schedule again (see Engine.load); to a patch of one
  voice, and to one of 47 (95 modules, the REPL audit's, whose edits
  dropped out: the render thread waits for both).

    python benchmarks/recovery.py [--crashes 10]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import tempfile
import time

import numpy as np

from synthcli.api import Module, Param, Port
from synthcli.engine.core import Engine
from synthcli.patch import Patch
from synthcli.plugins import load_registry

BLOCK = 256


class Crasher(Module):
    """A sine that segfaults once, at block ``at``, while a marker file
    named by $CRASH_MARKER does not exist yet."""

    type_name = "crasher"
    outputs = (Port("out"),)
    params = (Param("at", 20, 0, 1e6, integer=True),)
    state_fields = ("count",)

    def setup(self):
        self.count = np.zeros(1, dtype=np.int64)
        self.phase = 2 * np.pi * 440 / self.samplerate * np.arange(self.blocksize)

    def process(self, inputs, params, outputs):
        block = int(self.count[0])
        self.count[0] += 1
        outputs["out"][:] = 0.5 * np.sin(self.phase + 2 * np.pi * 440 / self.samplerate * block * self.blocksize)
        marker = os.environ["CRASH_MARKER"]
        if block == int(params["at"][0, 0]) and not os.path.exists(marker):
            open(marker, "w").close()
            self.fail()

    def fail(self):
        ctypes.string_at(0)


class Hanger(Crasher):
    """As Crasher, but it sleeps for ever instead."""

    type_name = "hanger"

    def fail(self):
        while True:
            time.sleep(1)


def live_failure(registry, module: str, runs: int) -> list[float]:
    """Seconds the render thread spends on the block the module fails in,
    live, with the deadline `synth play` gives a worker at --latency normal."""
    deadline = 0.75 * 2 * BLOCK / 48000
    spent = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CRASH_MARKER"] = os.path.join(tmp, "crashed")
            patch = Patch(registry)
            patch.load_text(f"add vco a wave=sine\nconnect a out.left\nadd {module} c\nconnect c out.right\n")
            with Engine(registry, 48000, BLOCK, executor="processes", workers=1, deadline=deadline,
                        live=True) as engine:
                engine.load(patch)
                times = []
                for _ in range(30):
                    start = time.perf_counter()
                    engine.process_block()
                    times.append(time.perf_counter() - start)
                    time.sleep(BLOCK / 48000)   # paced, as live
        spent.append(times[20])
    return spent


def recovery(registry, crashes: int) -> tuple[list[float], list[int]]:
    seconds, silent = [], []
    for _ in range(crashes):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CRASH_MARKER"] = os.path.join(tmp, "crashed")
            patch = Patch(registry)
            patch.load_text("add vco a wave=sine\nconnect a out.left\nadd crasher c\nconnect c out.right\n")
            with Engine(registry, 48000, BLOCK, executor="processes", workers=1) as engine:
                engine.load(patch)
                right = [engine.process_block()[1].copy() for _ in range(40)]
                seconds += engine.executor.recoveries
        levels = np.abs(np.array(right)).max(axis=1)
        silent.append(int((levels[15:] < 0.1).sum()))
    return seconds, silent


def add_cost(registry, executor: str, voices: int, adds: int = 20) -> tuple[float, float, bool]:
    """Median seconds to add a module to ``voices`` vco-vca voices and of
    the block that ends its fade, and whether the worker processes stayed
    the same ones throughout."""
    patch = Patch(registry)
    patch.load_text("".join(f"add vco a{i}\nadd vca v{i} level=0.01\nconnect a{i} v{i}\nconnect v{i} out\n"
                            for i in range(voices)))
    with Engine(registry, 48000, BLOCK, executor=executor, workers=1) as engine:
        engine.load(patch)
        engine.process_block()
        before = {p: w.get("pid") for p, w in engine.worker_stats().items()}
        spent, ending = [], []
        for i in range(adds):
            patch.load_text(f"add vco extra{i} wave=sine\nconnect extra{i} out\n")
            start = time.perf_counter()
            engine.load(patch)
            spent.append(time.perf_counter() - start)
            engine.process_block()
            start = time.perf_counter()
            engine.process_block()
            ending.append(time.perf_counter() - start)
        same = before == {p: w.get("pid") for p, w in engine.worker_stats().items()}
    return statistics.median(spent), statistics.median(ending), same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=10)
    args = parser.parse_args()
    registry = load_registry(safe_mode=True)
    registry.add(Crasher, "benchmark-plugin", "0")
    seconds, silent = recovery(registry, args.crashes)
    print(f"recovery after a segfault, {args.crashes} crashes: median {1e3 * statistics.median(seconds):.2f} ms, "
          f"max {1e3 * max(seconds):.2f} ms; silent for {min(silent)}-{max(silent)} block(s) of {BLOCK}")
    registry.add(Hanger, "benchmark-plugin", "0")
    for module in ("crasher", "hanger"):
        spent = live_failure(registry, module, max(3, args.crashes // 2))
        print(f"live, the block a worker {'crashes' if module == 'crasher' else 'hangs'} in: median "
              f"{1e3 * statistics.median(spent):.2f} ms, max {1e3 * max(spent):.2f} ms, of the "
              f"{2e3 * BLOCK / 48000:.2f} ms queued ahead of it at --latency normal")
    for voices in (1, 47):
        (inline, inline_end, _), (processes, processes_end, same) = (add_cost(registry, "inline", voices),
                                                                     add_cost(registry, "processes", voices))
        print(f"adding one module to a running patch of {2 * voices + 1} modules: inline {1e3 * inline:.2f} ms, "
              f"processes {1e3 * processes:.2f} ms ({'no' if same else 'a'} process started); the block after its "
              f"fade-in, which rebuilds again: inline {1e3 * inline_end:.2f} ms, processes {1e3 * processes_end:.2f} ms")


if __name__ == "__main__":
    main()
