"""The floor under benchmarks/realtime.py's underflow counts: what the JACK
dummy server reports to a PortAudio callback that does nothing but copy a
block, alone, beside a busy Python thread in its own process (which holds
the GIL the callback needs), and beside two busy processes (which only
compete for the cores).

    python benchmarks/callback_floor.py [--period 64] [--seconds 60] [--rounds 1]

Starts its own JACK dummy server; each try runs in a fresh process (so the
server outlives every PortAudio client, as it must) with the callback the
live engine uses at its core: copy a ready block, count an underflow when
the server reports one. The switch interval is set as the live engine sets
it (a block / 8). The tries take turns, round by round.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from synthcli.harness import jack_dummy_server

SR = 48000
SCENARIOS = {
    "alone": "the callback alone",
    "thread": "a busy Python thread in the callback's process",
    "processes": "two busy processes beside it",
}


def child(period: int, seconds: float, scenario: str) -> None:
    """One try: play silence through the JACK host API for ``seconds`` and
    print the callbacks and underflows seen."""
    import threading

    import numpy as np
    import sounddevice as sd

    sys.setswitchinterval(period / SR / 8)
    api = next(i for i, h in enumerate(sd.query_hostapis()) if "JACK" in h["name"])
    device = sd.query_hostapis(api)["default_output_device"]
    block = np.zeros((period, 2), np.float32)
    counts = [0, 0]

    def callback(outdata, frames, time_info, status):
        counts[0] += 1
        if status.output_underflow:
            counts[1] += 1
        outdata[:] = block

    done = threading.Event()

    def busy() -> None:
        """What a render thread does between waits: Python and short numpy calls."""
        x = np.zeros((8, period))
        while not done.is_set():
            total = 0
            for i in range(200):
                total += i
            x += 1.0
            x *= 0.5

    helpers = []
    if scenario == "processes":
        loop = "import time\nend = time.monotonic() + %f\nwhile time.monotonic() < end: pass" % (seconds + 1)
        helpers = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(2)]
    with sd.OutputStream(device=device, samplerate=SR, blocksize=period, channels=2, dtype="float32",
                         latency="low", callback=callback):
        if scenario == "thread":
            threading.Thread(target=busy, daemon=True).start()
        time.sleep(seconds)
        done.set()
    for helper in helpers:
        helper.kill()
    print(counts[0], counts[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.period, args.seconds, args.child)
        return
    print(f"JACK dummy server at {SR} Hz, period {args.period}, {args.seconds:g} s a try: "
          f"underflows the server reported to a callback that only copies a block")
    with jack_dummy_server(f"synthcli-floor-{args.period}", SR, args.period):
        time.sleep(0.5)
        for _ in range(args.rounds):
            for scenario, about in SCENARIOS.items():
                out = subprocess.run([sys.executable, __file__, "--child", scenario, "--period", str(args.period),
                                      "--seconds", str(args.seconds)], capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{scenario}: the try failed: {out.stderr.strip().splitlines()[-1:]}")
                callbacks, underflows = map(int, out.stdout.split())
                print(f"  {about:<48} {underflows:>4} underflows in {callbacks} callbacks", flush=True)


if __name__ == "__main__":
    main()
