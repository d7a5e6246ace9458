"""How long the install's ahead-of-time build of the kernels takes from a
fresh clone (what CI and a new user pay; a working tree's numba cache
makes a rebuild there look quicker), beside another commit's, in one run.

    python benchmarks/kernel_build.py [--against REV] [--runs 1]

Each try copies a commit's tracked files to a new folder (`git archive`),
points numba's cache at an empty folder, and times `python -m
synthcli.engine.aot` there, the work `pip install` does in setup.py. The
two commits take turns; prints each try and the ratio of the medians.
REV defaults to cf81696, the last commit before the build found argument
types without compiling, compiled the vco's crossfade once, and used both
cores.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_build(rev: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "tree"
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        out = Path(folder) / "lib"
        out.mkdir()
        env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(Path(folder) / "numba")}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "synthcli.engine.aot", str(out)], cwd=folder, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="cf81696", help="the commit to compare HEAD with")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"HEAD": [], args.against: []}
    for _ in range(args.runs):
        for rev in times:
            times[rev].append(fresh_build(rev))
            print(f"{rev:>10}: {times[rev][-1]:6.1f} s", flush=True)
    head, other = (statistics.median(times[rev]) for rev in times)
    print(f"fresh build of the kernels: HEAD {head:.1f} s, {args.against} {other:.1f} s, "
          f"{other / head:.2f}x faster")


if __name__ == "__main__":
    main()
