"""Live play on a real JACK server (dummy backend, paced like a sound card):
for each block size and executor, the largest number of reference-patch
voices (the song form, synthcli/bench.py) that plays with zero xruns, and
the timing of the audio callback (mean, p99 and max interval).

    python benchmarks/realtime.py [--seconds 30] [--blocksizes 256 128] [--executors processes inline]
                                  [--voices 8 16 ...]

Starts its own JACK server with the period set to the block size. Voice
counts (--voices) are tried upwards until one has an xrun (the callback
found no block ready) or more than --underflows underflows reported by the
JACK server; each try plays --seconds and prints both.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from synthcli.audio.player import Player
from synthcli.audio.ring import CALLBACKS, Ring
from synthcli.bench import reference_song
from synthcli.harness import jack_dummy_server

SR = 48000
VOICES = (8, 16, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384)


def play(voices: int, blocksize: int, executor: str, seconds: float,
         latency: str = "normal") -> tuple[int, int, np.ndarray]:
    """Xruns (the callback found no block ready), underflows (the JACK
    server reported one: some client, not always ours, ran late) and
    callback intervals (s) of one run."""
    bars = max(1, round(seconds / 2))
    player = Player(None, song=reference_song(voices, bars), source="reference", samplerate=SR,
                    blocksize=blocksize, latency=latency, device=None, executor=executor, workers=None,
                    safe_mode=True, blocks=None)
    info = player.start()
    ring = Ring(info["slots"], blocksize, name=info["ring"])
    times, seen = [], 0
    try:
        while not player.wait(0.05):
            calls = int(ring.header[CALLBACKS])
            for k in range(max(seen, calls - ring.kept + 1), calls):
                times.append(ring.times[k % ring.kept])
            seen = calls
    finally:
        ring.close()
        final = player.stop()
    intervals = np.diff(np.array(times))
    return final.get("xruns", 0), final.get("underflows", 0), intervals[intervals > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--blocksizes", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--executors", nargs="+", default=["processes", "inline"])
    parser.add_argument("--voices", type=int, nargs="+", default=list(VOICES))
    parser.add_argument("--latency", default="normal", help="low, normal or safe, as for synth play")
    parser.add_argument("--underflows", type=int, default=0,
                        help="server-reported underflows a try may have and still count (this VM's dummy server "
                             "reports one now and then even at 8 voices)")
    args = parser.parse_args()
    print(f"reference song, {args.seconds:g} s a try, JACK dummy server at {SR} Hz")
    print(f"{'block':>5} {'executor':<10} {'max voices':>10} {'mean ms':>8} {'p99 ms':>7} {'max ms':>7}")
    for blocksize in args.blocksizes:
        with jack_dummy_server(f"synthcli-bench-{blocksize}", SR, blocksize):
            time.sleep(0.5)
            for executor in args.executors:
                best, timing = 0, np.zeros(1)
                for voices in args.voices:
                    xruns, underflows, intervals = play(voices, blocksize, executor, args.seconds, args.latency)
                    print(f"  {blocksize} samples, {executor}, {voices} voices: {xruns} xruns, "
                          f"{underflows} underflows reported by the server", flush=True)
                    if xruns or underflows > args.underflows:
                        break
                    best, timing = voices, intervals
                print(f"{blocksize:>5} {executor:<10} {best:>10} {1e3 * timing.mean():>8.2f} "
                      f"{1e3 * np.percentile(timing, 99):>7.2f} {1e3 * timing.max():>7.2f}", flush=True)


if __name__ == "__main__":
    main()
