"""Memory of live play: each process's unique memory (USS: the pages no
other process shares) while the reference song plays on a JACK dummy
server, sampled over time, so growth would show.

Workers are forked from an engine that has already imported and warmed
everything, so most of their memory is shared with it; USS is what each
really costs, and what issue 10 bounds (under 30 MB a worker, no growth
over a 10-minute play).

    python benchmarks/memory.py [--minutes 10] [--voices 32] [--every 30]
"""
from __future__ import annotations

import argparse
import os
import time
from contextlib import ExitStack

from synthcli.audio.player import Player
from synthcli.bench import reference_song
from synthcli.harness import jack_dummy_server


def uss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        kb = sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean", "Private_Dirty")))
    return kb / 1024


def processes(root: int) -> dict[int, str]:
    """The engine process and its descendants, each with its role: the
    forkserver (which makes spares), or a worker (or the warm spare). A
    process the forkserver forked keeps its command line, so the role
    comes from the parent: the forkserver's children are workers."""
    found, todo = {}, [(root, None)]
    while todo:
        pid, parent = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                forkserver = b"forkserver" in cmdline.read()
            found[pid] = ("engine" if pid == root else "worker" if found.get(parent) == "forkserver"
                          else "forkserver" if forkserver else "worker")
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    todo.extend((int(child), pid) for child in children.read().split())
        except OSError:
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--voices", type=int, default=32)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()
    seconds = 60 * args.minutes
    with ExitStack() as stack:
        if not os.environ.get("JACK_DEFAULT_SERVER"):
            stack.enter_context(jack_dummy_server())
        player = Player(None, song=reference_song(args.voices, max(1, round(seconds / 2)) + 2), source="reference",
                        samplerate=48000, blocksize=256, latency="normal", device=None, executor="processes",
                        workers=None, safe_mode=True, blocks=round(seconds * 48000 / 256))
        player.start()
        began, samples = time.monotonic(), []
        print(f"{args.voices} voices of the reference song for {args.minutes:g} min; USS in MB")
        while not player.wait(0):
            now = time.monotonic() - began
            found = processes(player.process.pid)
            row = {pid: uss_mb(pid) for pid in found}
            samples.append(row)
            print(f"{now:7.1f} s  " + "  ".join(f"{found[pid]}[{pid}] {mb:.1f}" for pid, mb in sorted(row.items())),
                  flush=True)
            player.wait(args.every)
        final = player.stop()
        first, last = samples[0], samples[-1]
        for pid in sorted(last):
            if pid in first:
                print(f"process {pid}: {first[pid]:.1f} -> {last[pid]:.1f} MB ({last[pid] - first[pid]:+.1f})")
        print(f"xruns {final.get('xruns', '?')}")


if __name__ == "__main__":
    main()
