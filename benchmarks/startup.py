"""Start-up times, as a musician meets them: `synth --help`, `synth render`
of a one-second patch (the whole process; also under `-x inline`, which
forks a watcher for crashes), and `synth` to its first REPL prompt in a
pseudo-terminal (without audio, so no device start is timed).

    python benchmarks/startup.py [--runs 5]

Prints the median and the worst of --runs tries of each, beside `python -c
pass` on the same machine for scale.
"""
from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthcli.bench import byte_compile

ONE_SECOND = "add vco a wave=saw\nadd vcf f\nconnect a f\nconnect f out\n"


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def first_prompt(state: str) -> float:
    env = {**os.environ, "XDG_STATE_HOME": state, "JACK_DEFAULT_SERVER": "synthcli-no-such-server",
           "JACK_NO_START_SERVER": "1"}
    master, slave = pty.openpty()
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "synthcli.cli"], env=env, stdin=slave, stdout=slave,
                             stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""
    try:
        while b"synth>" not in seen:
            if not select.select([master], [], [], 30)[0]:
                raise SystemExit(f"no prompt in 30 s; the terminal showed: {seen[-500:]!r}")
            seen += os.read(master, 65536)
        spent = time.perf_counter() - start
        os.write(master, b"quit\r")
        while select.select([master], [], [], 30)[0]:   # drain until the REPL has gone
            try:
                if not os.read(master, 65536):
                    break
            except OSError:   # EIO: the terminal's other end has closed
                break
        child.wait(30)
    finally:
        os.close(master)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    byte_compile()
    with tempfile.TemporaryDirectory() as tmp:
        patch = Path(tmp) / "one.patch"
        patch.write_text(ONE_SECOND)
        cases = {
            "python -c pass": lambda: timed([sys.executable, "-c", "pass"]),
            "synth --help": lambda: timed([sys.executable, "-m", "synthcli.cli", "--help"]),
            "synth render (1 s patch)": lambda: timed([sys.executable, "-m", "synthcli.cli", "render", str(patch),
                                                       "-o", str(Path(tmp) / "one.wav"), "-d", "1", "-q"]),
            # inline forks once, so that a process which only waits can say how a crash ended it (cli.py)
            "synth render -x inline": lambda: timed([sys.executable, "-m", "synthcli.cli", "render", str(patch),
                                                     "-o", str(Path(tmp) / "one.wav"), "-d", "1", "-q",
                                                     "-x", "inline"]),
            "synth to first prompt": lambda: first_prompt(tmp),
        }
        print(f"{'what':<26} {'median s':>9} {'worst s':>8}")
        for label, run in cases.items():
            run()   # warm the OS file cache and numba's
            times = [run() for _ in range(args.runs)]
            print(f"{label:<26} {statistics.median(times):>9.3f} {max(times):>8.3f}")


if __name__ == "__main__":
    main()
