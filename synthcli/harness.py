"""What synthcli's own tests and benchmarks of live play run against: a
real JACK server with the dummy backend, `synth play` in a subprocess, a
free UDP port for OSC, and the shared memory a process has mapped. Kept
apart from :mod:`synthcli.testing`, the plugin authors' kit, which needs
none of it."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time


@contextlib.contextmanager
def jack_dummy_server(name: str | None = None, samplerate: int = 48000, period: int = 256):
    """A real JACK server with the dummy backend, which paces audio in real
    time like a sound card, for tests and benchmarks of live play.

    Sets ``JACK_DEFAULT_SERVER`` for this process and its children while it
    runs, so PortAudio's JACK host API finds it. Yields the server name.
    Stop it only after every process that loaded sounddevice has exited.

    Raises
    ------
    RuntimeError
        If jackd is not installed or does not start (the message says why).
    """
    if not shutil.which("jackd") or not shutil.which("jack_wait"):
        raise RuntimeError("jackd is not installed (Debian: apt-get install jackd2 libportaudio2)")
    name = name or f"synthcli-{os.getpid()}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_DEFAULT_SERVER": name}
    server = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", str(samplerate), "-p", str(period)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waited = subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, capture_output=True, text=True)
    if waited.returncode != 0 or server.poll() is not None:
        server.kill()
        raise RuntimeError(f"the JACK dummy server did not start: {waited.stdout.strip()} {waited.stderr.strip()}")
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    try:
        yield name
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def shared_memory_of(pid: int) -> set[str]:
    """The POSIX shared-memory segments that a process and its descendants
    have mapped now (Linux), by name: a test can then check that exactly
    these are gone after a stop, whatever other programs on the machine
    create in /dev/shm meanwhile."""
    names, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/maps") as maps:
                names.update(line.split("/dev/shm/", 1)[1].split(" ")[0].strip()
                             for line in maps if "/dev/shm/" in line)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except OSError:   # it exited meanwhile
            continue
    return names


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Playing:
    """``synth play ARGS`` in a subprocess, its stderr collected as it
    comes; the constructor returns once a line containing ``ready`` shows
    (the audio runs), or fails with what it printed.

    Parameters
    ----------
    args : str
        What follows ``synth play``.
    ready : str
        The line to wait for (``listening for OSC`` with ``--osc``).
    cwd : str, optional
    """

    def __init__(self, *args: str, ready: str = "output latency", cwd: str | None = None,
                 timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "play", *map(str, args)], cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()
        deadline = time.monotonic() + timeout
        while not any(ready in line for line in self.lines):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.reader.join(1)
                raise AssertionError(f"synth play never said {ready!r}:\n" + "".join(self.lines))
            time.sleep(0.05)

    @property
    def latency(self) -> float:
        """The output latency it printed, in seconds."""
        line = next(line for line in self.lines if "output latency" in line)
        return float(line.split("output latency ")[1].split(" ms")[0]) / 1e3

    def finish(self, signalled: bool = True) -> str:
        """Ctrl-C (unless it ends by itself), wait, and return its stderr."""
        if signalled:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        self.reader.join(5)
        return "".join(self.lines)
