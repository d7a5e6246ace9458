"""Per-module DSP cost: nanoseconds per sample and channel of every built-in
module's ``process`` call, at 1 and 16 channels in 256-sample blocks at
48 kHz, outside the engine (no gathers, no scheduling).

Each module runs at its default settings on half a second of input. Audio
inputs get white noise at the reference patch's level (peak 0.5 / sqrt of
the channel count times the number of audio inputs, so a sum of channels
and inputs stays below the master's soft clip, as a mix mostly does), but the vco's ``fm`` and ``sync`` stay silent, as they mostly are; ``voct`` gets a
different pitch per channel and ``gate`` the reference patch's rhythm (high
0.25 s of every 0.5 s); a ``cutoff`` parameter is swept 300..3000 Hz within
every block with all channels alike, as one mono LFO spread to every voice
makes it. Other inputs read their port's default; a file parameter
(the sampler's) names tests/data/sound/a440.wav, a tenth of a second
that the gate's rhythm plays from the start. The best of several passes
is printed; on a noisy machine, rerun and compare side by side.

Note sources do their work on events, which the table's blocks have none
of: for ``keys`` a last line gives the microseconds of a block that starts
a 16-note chord on 16 voices and of one that ends it, as a song's chords do;
for ``drums``, the mean microseconds of a block over the 10 s after one
strike of each of its instruments (which ring from 35 ms to 12 s).

    python benchmarks/modules.py [--repeats 7] [--channels 1 16] [TYPE ...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from synthcli.modules import FAMILIES

SR, BLOCK = 48000, 256
SOUND = str(Path(__file__).parent.parent / "tests" / "data" / "sound" / "a440.wav")
#: Blocks in the looped input: half a second, one gate cycle.
LOOP = round(0.5 * SR / BLOCK)


def looped_inputs(cls, channels: int) -> tuple[dict, dict]:
    """LOOP blocks of every input and parameter, as (channels, LOOP * BLOCK) arrays."""
    rng = np.random.default_rng(0)
    level = 0.5 / (channels * max(1, sum(p.kind == "audio" for p in cls.inputs))) ** 0.5
    total = LOOP * BLOCK
    t = np.arange(total) / SR
    signals = {
        "voct": np.linspace(-1.0, 1.0, channels)[:, None] * np.ones(total),
        "gate": np.broadcast_to((t % 0.5 < 0.25).astype(float), (channels, total)),
        "fm": np.zeros((channels, total)),
        "sync": np.zeros((channels, total)),
    }
    inputs = {p.name: signals[p.name] if p.name in signals
              else rng.uniform(-level, level, (channels, total)) if p.kind == "audio"
              else np.full((channels, total), p.default) for p in cls.inputs}
    sweep = np.tile(np.linspace(300.0, 3000.0, BLOCK), LOOP)
    params = {p.name: np.broadcast_to(sweep, (channels, total)) if p.name == "cutoff"
              else np.full((channels, total), p.default_value) for p in cls.params if not p.file}
    return inputs, params


def cost(cls, channels: int, repeats: int) -> float:
    """Best-of-``repeats`` ns per sample-channel over one pass of the loop.

    Like the engine, each block is first copied into the same buffers, so
    a module reads warm memory; only ``process`` is timed."""
    files = {p.name: SOUND for p in cls.params if p.file}
    module = cls(SR, BLOCK, channels, **({"files": files} if files else {}))
    inputs, params = looped_inputs(cls, channels)
    in_bufs = {k: np.zeros((channels, BLOCK)) for k in inputs}
    param_bufs = {k: np.zeros((channels, BLOCK)) for k in params}
    outputs = {p.name: np.zeros((p.channels or channels, BLOCK)) for p in cls.outputs}

    def run(blocks: int) -> float:
        spent = 0.0
        for b in range(blocks):
            for data, bufs in ((inputs, in_bufs), (params, param_bufs)):
                for k, buf in bufs.items():
                    buf[...] = data[k][:, b * BLOCK:(b + 1) * BLOCK]
            start = time.perf_counter()
            module.process(in_bufs, param_bufs, outputs)
            spent += time.perf_counter() - start
        return spent

    run(4)  # compile (or load the JIT cache) before timing
    best = min(run(LOOP) for _ in range(repeats))
    return best / (LOOP * BLOCK * channels) * 1e9


def chord_cost(repeats: int, voices: int = 16) -> float:
    """Best-of-``repeats`` microseconds of a keys block with a chord's
    note-ons (then of one with its note-offs), events included."""
    from synthcli.api import NoteOff, NoteOn
    from synthcli.modules.keys import Keys
    module = Keys(SR, BLOCK, voices)
    outputs = {p.name: np.zeros((voices, BLOCK)) for p in Keys.outputs}
    chord = [45 + k for k in range(voices)]

    def run(chords: int) -> float:
        start = time.perf_counter()
        for _ in range(chords):
            for note in chord:
                module.on_event(10, NoteOn(note, 1.0))
            module.process({}, {}, outputs)
            for note in chord:
                module.on_event(20, NoteOff(note))
            module.process({}, {}, outputs)
        return (time.perf_counter() - start) / (2 * chords) * 1e6

    run(10)
    return min(run(500) for _ in range(repeats))


def ringing_cost(repeats: int, seconds: float = 10.0) -> float:
    """Best-of-``repeats`` mean microseconds of a drums block over
    ``seconds`` after a strike of each of its instruments."""
    from synthcli.api import NoteOn
    from synthcli.modules.drums import NOTE_SLOTS, Drums
    params = {p.name: np.full((1, BLOCK), p.default_value) for p in Drums.params}
    outputs = {"out": np.zeros((1, BLOCK))}
    blocks = round(seconds * SR / BLOCK)

    def run() -> float:
        module = Drums(SR, BLOCK, 1)
        for note in {slot: note for note, slot in NOTE_SLOTS.items()}.values():
            module.on_event(10, NoteOn(note, 1.0))
        start = time.perf_counter()
        for _ in range(blocks):
            module.process({}, params, outputs)
        return (time.perf_counter() - start) / blocks * 1e6

    run()
    return min(run() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("types", nargs="*", help="module types to measure (default: all)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    classes = [cls for family in FAMILIES for cls in family.MODULES
               if not args.types or cls.type_name in args.types]
    print(f"ns per sample-channel, {BLOCK}-sample blocks at {SR} Hz (lower is faster)")
    print(f"{'module':<8}" + "".join(f"{f'{c} ch':>9}" for c in args.channels))
    for cls in classes:
        cells = "".join(f"{cost(cls, c, args.repeats):>9.2f}" for c in args.channels)
        print(f"{cls.type_name:<8}{cells}", flush=True)
    if any(cls.type_name == "keys" for cls in classes):
        print(f"keys: a block with a 16-note chord on or off, events included: {chord_cost(args.repeats):.1f} us")
    if any(cls.type_name == "drums" for cls in classes):
        print(f"drums: a block of the 10 s after a strike of each instrument: {ringing_cost(args.repeats):.1f} us")


if __name__ == "__main__":
    main()
