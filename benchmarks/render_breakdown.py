"""Where the time of one whole `synth render` of the reference song goes:
start-up stage by stage, the blocks split into DSP and the rest, and the
exit. It is what docs/performance.md's table for issue 10's 8-voice render
comes from.

    python benchmarks/render_breakdown.py [--voices 8] [--seconds 20] [--runs 3]

Each run is a fresh process (cold imports, as `synth render` has them) that
marks the time after each stage of what `synth render` does, in its order;
the medians are printed. The blocks are then split, in this process: each
module's process() alone (its DSP and the call into its kernel), the rest
of each module's step (gathers, NaN check, bookkeeping), and the rest of
the block (sequencer, engine, WAV writing). The exit is timed from outside:
the process's last mark to its end as its parent sees it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from synthcli.bench import byte_compile, reference_song

STAGES = r"""
import dataclasses, json, sys, time
making = [0.0, 0]
def timed(*args, plain=dataclasses._process_class, **kw):   # what creating each dataclass costs
    began = time.perf_counter()
    made = plain(*args, **kw)
    making[0] += time.perf_counter() - began
    making[1] += 1
    return made
dataclasses._process_class = timed
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import numpy; mark("numpy")
import typer; mark("typer")
from pathlib import Path
import synthcli.cli as cli
from synthcli.engine.core import Engine
from synthcli.engine.render import Performance, render_to_wav
reg = cli.registry()
patch, song = cli.load_source(Path(sys.argv[1]), reg, midi=True); mark("synthcli")
with Engine(reg, 48000, 256, executor="auto") as engine:
    performance = Performance(engine, song, None); mark("engine")
    render_to_wav(performance, Path(sys.argv[2]), None, "float32", None); mark("blocks")
    blocks = engine.block
print(json.dumps({"marks": [(b[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])], "blocks": blocks,
                  "dataclasses": making, "end": time.time()}), flush=True)
cli.leave(0)   # as synth's main() leaves
"""

LABELS = {
    "numpy": "numpy's import",
    "typer": "typer (the command line)",
    "synthcli": "synthcli's imports, the registry and the song",
    "engine": "engine",
    "blocks": "the blocks, WAV file included",
}


def stage_times(song: Path, wav: Path, runs: int) -> tuple[dict[str, float], float, float, int, tuple]:
    """Median seconds per stage, for Python's own start, and for the exit;
    blocks rendered; median seconds spent creating dataclasses, and how many."""
    stages: dict[str, list[float]] = {}
    starts, exits, making, blocks = [], [], [], 0
    for _ in range(runs):
        began = time.time()
        done = subprocess.run([sys.executable, "-c", STAGES, str(song), str(wav)],
                              capture_output=True, text=True, check=True)
        ended = time.time()
        report = json.loads(done.stdout)
        for name, seconds in report["marks"]:
            stages.setdefault(name, []).append(seconds)
        total = sum(seconds for _, seconds in report["marks"])
        exits.append(ended - report["end"])
        starts.append(report["end"] - began - total)
        making.append(report["dataclasses"][0])
        blocks, classes = report["blocks"], report["dataclasses"][1]
    return ({k: statistics.median(v) for k, v in stages.items()}, statistics.median(starts),
            statistics.median(exits), blocks, (statistics.median(making), classes))


def block_split(song: Path, wav: Path) -> tuple[float, float, float]:
    """Seconds per block: modules' process() alone, the rest of their
    steps, the rest of the block. Inline: one process does it all."""
    import synthcli.cli as cli
    from synthcli.engine.core import Engine
    from synthcli.engine.render import Performance, render_to_wav
    reg = cli.registry()
    patch, parsed = cli.load_source(song, reg, midi=True)
    with Engine(reg, 48000, 256, executor="inline") as engine:
        performance = Performance(engine, parsed, None)
        began = time.perf_counter()
        render_to_wav(performance, wav, None, "float32", None)
        whole = (time.perf_counter() - began) / engine.block
        steps = engine.executor.steps
        in_steps = sum(step.seconds for step in steps) / engine.block
        dsp = 0.0
        for step in steps:
            call = lambda step=step: step.module.process(step.inputs, step.params, step.outputs)
            dsp += min(timeit.repeat(call, number=500, repeat=5)) / 500
    return dsp, in_steps - dsp, whole - in_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="at least 2: the song's 2-second bars")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if round(args.seconds / 2) < 1:
        parser.error(f"--seconds {args.seconds:g}: the reference song's bars last 2 s; give at least 2")
    byte_compile()
    with tempfile.TemporaryDirectory() as tmp:
        song, wav = Path(tmp) / "reference.seq", Path(tmp) / "out.wav"
        song.write_text(reference_song(args.voices, round(args.seconds / 2)))
        stages, start, exit_, blocks, (making, classes) = stage_times(song, wav, args.runs)
        dsp, steps, rest = block_split(song, wav)
    print(f"reference song, {args.voices} voices, {args.seconds:g} s: whole `synth render` stages, "
          f"median of {args.runs} fresh processes")
    print(f"  {'Python, its site packages, json, dataclasses':<48} {1e3 * start:7.1f} ms")
    for name, seconds in stages.items():
        print(f"  {LABELS[name]:<48} {1e3 * seconds:7.1f} ms")
        if name == "synthcli":
            print(f"    {f'of which creating {classes} dataclasses':<46} {1e3 * making:7.1f} ms")
    print(f"  {'leaving the process':<48} {1e3 * exit_:7.1f} ms")
    print(f"  {'total':<48} {1e3 * (start + sum(stages.values()) + exit_):7.1f} ms")
    print(f"{blocks} blocks of 256 samples, inline, per block:")
    print(f"  modules' process() alone (DSP and kernel calls) {1e6 * dsp:6.1f} us")
    print(f"  the rest of their steps (gathers, NaN checks)   {1e6 * steps:6.1f} us")
    print(f"  the rest: sequencer, engine, WAV writing        {1e6 * rest:6.1f} us")
    print(f"  all                                             {1e6 * (dsp + steps + rest):6.1f} us")


if __name__ == "__main__":
    main()
