"""Measuring executors on the user's own machine and patch (``synth bench``),
and the reference patch of the design brief that the benchmarks share.

The reference patch: N saw voices -> 4-pole ladder swept 300-3000 Hz by a
0.5 Hz LFO -> linear ADSR (10 ms, 100 ms, 0.6, 200 ms) -> VCA -> stereo out;
a chord of N notes (MIDI 45 upwards, a semitone apart, four octaves and
then again from 45) gated 0.25 s every 0.5 s. Voices are split into chains
of at most 16, the widest a cable carries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .api import MAX_CHANNELS, NoteOff, NoteOn


def chains(voices: int) -> list[int]:
    full, rest = divmod(voices, MAX_CHANNELS)
    return [MAX_CHANNELS] * full + ([rest] if rest else [])


#: The chord climbs this many semitones from MIDI 45 and then starts again:
#: a chord of 256 semitones would go past MIDI 127 and the Nyquist
#: frequency, where a saw has an edge every few samples and costs ten
#: times what a voice a musician plays does.
PITCH_SPAN = 48


def reference_pitches(voices: int) -> list[int]:
    """The chord's MIDI notes, a chain of 16 voices never holding one twice."""
    return [45 + k % PITCH_SPAN for k in range(voices)]


def reference_patch(voices: int) -> str:
    lines = ["add lfo sweep freq=0.5 amp=1350"]
    for i, width in enumerate(chains(voices)):
        lines += [
            f"add keys kb{i} voices={width}",
            f"add vco osc{i} wave=saw",
            f"add ladder f{i} cutoff=1650 res=0.3",
            f"add adsr env{i} attack=0.01 decay=0.1 sustain=0.6 release=0.2 curve=linear",
            f"add vca amp{i} level={0.5 / max(voices, 1) ** 0.5:.6g}",
            f"connect kb{i}.voct osc{i}.voct",
            f"connect kb{i}.gate env{i}.gate",
            f"connect osc{i} f{i}",
            f"connect sweep f{i}.cutoff",
            f"connect f{i} amp{i}",
            f"connect env{i} amp{i}.gain",
            f"connect amp{i} out",
        ]
    return "\n".join(lines) + "\n"


def reference_song(voices: int, bars: int) -> str:
    """The reference patch in song form: each chain's chord four times a bar
    at 120 BPM, held half its step (0.25 s every 0.5 s)."""
    lines = ["tempo 120", f"length {bars}", reference_patch(voices)]
    pitches = reference_pitches(voices)
    for i, width in enumerate(chains(voices)):
        chord, pitches = pitches[:width], pitches[width:]
        lines.append(f'pattern kb{i} "[{",".join(map(str, chord))}]*4" legato=0.5')
    return "\n".join(lines) + "\n"


def reference_notes(engine, voices: int, seconds: float) -> None:
    """Queue the reference chord on ``engine``: on for 0.25 s every 0.5 s."""
    sr = engine.samplerate
    pitches = reference_pitches(voices)
    for i, width in enumerate(chains(voices)):
        chord, pitches = pitches[:width], pitches[width:]
        for k in range(int(seconds / 0.5) + 1):
            on, off = round(k * 0.5 * sr), round((k * 0.5 + 0.25) * sr)
            for n in chord:
                engine.send(f"kb{i}", on, NoteOn(n, 1.0))
                engine.send(f"kb{i}", off, NoteOff(n))


@dataclass(frozen=True)
class Result:
    executor: str
    blocksize: int
    workers: int | None
    realtime: float      # seconds of audio per second of wall time
    speedup: float       # over inline at the same block size


#: Blocks rendered before the timing starts: caches warm, and ``auto`` has
#: made its choice (see synthcli.engine.core.AUTO_MEASURE).
WARM_UP = 64


def byte_compile() -> None:
    """Write synthcli's bytecode, as a wheel install or a first run does,
    for the benchmarks that time whole processes: with
    PYTHONDONTWRITEBYTECODE set (some sandboxes set it) every run would
    compile our sources again, 30 ms that no installed synthcli pays."""
    import compileall
    import os
    import synthcli
    compileall.compile_dir(os.path.dirname(synthcli.__file__), quiet=1)


def measure(registry, text: str, executor: str, blocksize: int, seconds: float,
            workers: int | None = None, notes: int = 0, samplerate: int = 48000) -> float:
    """Real-time factor of rendering ``text`` (start-up excluded)."""
    from .engine.core import Engine
    from .patch import Patch
    patch = Patch(registry)
    patch.load_text(text)
    with Engine(registry, samplerate, blocksize, executor=executor, workers=workers) as engine:
        engine.load(patch)
        if notes:
            reference_notes(engine, notes, seconds + 1)
        for _ in range(WARM_UP):
            engine.process_block()
        blocks = max(1, int(seconds * samplerate / blocksize))
        start = time.perf_counter()
        for _ in range(blocks):
            engine.process_block()
        elapsed = time.perf_counter() - start
    return blocks * blocksize / samplerate / elapsed


def compare(registry, text: str, seconds: float = 3.0, blocksizes=(256, 1024),
            workers: int | None = None, notes: int = 0) -> list[Result]:
    """The seeds' experiment: inline, threads and processes side by side."""
    results = []
    for blocksize in blocksizes:
        base = measure(registry, text, "inline", blocksize, seconds, notes=notes)
        results.append(Result("inline", blocksize, None, base, 1.0))
        for executor in ("threads", "processes"):
            rt = measure(registry, text, executor, blocksize, seconds, workers, notes)
            results.append(Result(executor, blocksize, workers, rt, rt / base))
    return results


def recommend(results: list[Result]) -> Result:
    return max(results, key=lambda r: (r.blocksize == 256, r.realtime))
