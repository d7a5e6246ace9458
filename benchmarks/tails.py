"""Do decaying tails turn denormal and slow? The per-block cost of the
modules that keep a signal alive after their input stops (delay, reverb,
and the filters), measured while their tails die away in silence.

    python benchmarks/tails.py [--minutes 40] [--channels 2]

Floating-point numbers below 2.2e-308 are denormal, and x86 CPUs take
tens to hundreds of cycles for each operation on one. A feedback loop
decays towards them: a delay at feedback 0.4 gets there about four
minutes after its input stops, at 0.9 about half an hour after. So
every state is zeroed below 1e-30 (-600 dB), long before: the filters'
at the end of each block, the reverb's combs as they go, and of the
delay line and the reverb's allpasses what each block wrote. Run it on
a checkout from before that (2026-12-04) to see what it saved.

For each case, one second of white noise goes in, then silence, block by
block, until every number the module keeps is zero or ``--minutes`` of
audio have passed (this runs much faster than real time). The table gives
the median microseconds of a 256-sample block ``process()`` call over
the whole silence, over the 10 s stretch whose median was the highest,
and over the stretch that held the most denormal numbers in the module's
state, beside the same module with all-zero state, measured in the same
run. A last column is the worst case that silence does not produce: every
number of the state set to a denormal.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from synthcli.modules.effects import Delay, Reverb
from synthcli.modules.filters import Ladder, Vcf

SR, BLOCK = 48000, 256
WINDOW = round(10 * SR / BLOCK)      # blocks in 10 s
TINY = np.finfo(float).tiny           # the smallest normal number

#: (label, module, parameters) of each tail measured.
CASES = (
    ("delay, feedback 0.4", Delay, {"feedback": 0.4, "mix": 0.5}),
    ("delay, feedback 0.9", Delay, {"feedback": 0.9, "mix": 0.5}),
    ("reverb, size 0.5", Reverb, {}),
    ("reverb, size 1", Reverb, {"size": 1.0}),
    ("ladder, res 0.5", Ladder, {"res": 0.5}),
    ("vcf, res 0.5", Vcf, {"res": 0.5}),
)


def make(cls, params: dict, channels: int):
    """A module and its buffers; parameters from ``params`` or defaults."""
    module = cls(SR, BLOCK, channels)
    values = {p.name: params.get(p.name, p.default_value) for p in cls.params}
    bufs = {name: np.full((channels, BLOCK), float(value)) for name, value in values.items()}
    inputs = {p.name: np.zeros((channels, BLOCK)) for p in cls.inputs}
    outputs = {p.name: np.zeros((p.channels or channels, BLOCK)) for p in cls.outputs}
    return module, inputs, bufs, outputs


def state(module) -> list[np.ndarray]:
    return [getattr(module, f) for f in module.state_fields if getattr(module, f).dtype.kind == "f"]


def denormals(module) -> int:
    return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < TINY))) for a in state(module))


def timed_blocks(module, inputs, params, outputs, blocks: int) -> np.ndarray:
    spent = np.empty(blocks)
    for b in range(blocks):
        start = time.perf_counter()
        module.process(inputs, params, outputs)
        spent[b] = time.perf_counter() - start
    return spent * 1e6


def tail(cls, params: dict, channels: int, minutes: float) -> dict:
    rng = np.random.default_rng(0)
    module, inputs, bufs, outputs = make(cls, params, channels)
    signal = inputs[cls.inputs[0].name]
    for _ in range(SR // BLOCK):
        signal[...] = rng.uniform(-0.5, 0.5, signal.shape)
        module.process(inputs, bufs, outputs)
    signal[...] = 0.0
    limit = int(minutes * 60 * SR / BLOCK)
    costs, counts, blocks = [], [], 0
    while blocks < limit:
        costs.append(timed_blocks(module, inputs, bufs, outputs, WINDOW))
        counts.append(denormals(module))
        blocks += WINDOW
        if not any(a.any() for a in state(module)):
            break
    medians = [float(np.median(c)) for c in costs]
    worst = int(np.argmax(medians))
    densest = int(np.argmax(counts))

    fresh = make(cls, params, channels)
    zero = float(np.median(timed_blocks(*fresh, WINDOW)))
    for a in state(fresh[0]):
        a[...] = TINY / 4
    filled = float(np.median(timed_blocks(*fresh, 16)))
    return {"seconds": blocks * BLOCK / SR, "silence": float(np.median(np.concatenate(costs))),
            "worst": (medians[worst], worst * 10), "densest": (medians[densest], densest * 10, counts[densest]),
            "zero": zero, "filled": filled, "left": not counts or any(a.any() for a in state(module))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=40.0, help="longest tail followed, in minutes of audio")
    parser.add_argument("--channels", type=int, default=2)
    args = parser.parse_args()
    print(f"us per {BLOCK}-sample block, {args.channels} channels, median; 10 s stretches of the silence "
          f"after 1 s of noise")
    print(f"{'module':<22}{'followed':>10}{'zero state':>12}{'silence':>9}{'worst 10 s (at)':>19}"
          f"{'most denormals (at, count)':>30}{'all denormal':>14}")
    for label, cls, params in CASES:
        r = tail(cls, params, args.channels, args.minutes)
        followed = f"{r['seconds']:.0f} s" + ("+" if r["left"] else "")
        worst = f"{r['worst'][0]:.1f} ({r['worst'][1]} s)"
        dense = f"{r['densest'][0]:.1f} ({r['densest'][1]} s, {r['densest'][2]})"
        print(f"{label:<22}{followed:>10}{r['zero']:>12.1f}{r['silence']:>9.1f}{worst:>19}{dense:>30}"
              f"{r['filled']:>14.1f}", flush=True)
    print("followed: audio until every number of the state was 0 ('+': still not, at --minutes)")


if __name__ == "__main__":
    main()
