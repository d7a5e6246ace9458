"""OSC throughput, loss and latency, with real clients and live audio.

A `synth play --osc` engine runs on a JACK dummy server (started here if
none is running) and is driven by liblo's `oscsendfile`:

* burst: N messages a microsecond apart (as fast as oscsendfile sends);
  messages received, lost, and how long the server took to apply them;
* sustained: R messages a second for S seconds while audio plays;
  loss and xruns;
* latency, send -> heard: a note sent "now" and the same note in a
  bundle timed one second later. The timed one is heard exactly at its
  time, so the gap between the two onsets in the recording tells when
  the immediate one was heard, on the DAC clock;
* latency, send -> rendered: in this process (a Player, the session and
  the OSC server, as `synth play --osc` has them), the block a note lands
  in, counted from the block being rendered when the datagram was sent
  (0: the very next block the engine renders).

    python benchmarks/osc.py [--burst 10000] [--rate 20000] [--seconds 3] [--notes 10]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import soundfile
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from synthcli.harness import free_udp_port, jack_dummy_server
from synthcli.testing import onsets

SR = 48000
NTP_DELTA = 2208988800
PATCH = ("add keys kb voices=2\nadd vco o wave=sine\nadd adsr env attack=0 decay=0 sustain=1 release=0\n"
         "add vca v\nadd vco drone wave=saw freq=55\nadd ladder f1 cutoff=800\nadd vca dv level=0.2\n"
         "connect kb.voct o.voct\nconnect kb.gate env.gate\nconnect o v\nconnect env v.gain\nconnect v out.left\n"
         "connect drone f1\nconnect f1 dv\nconnect dv out.right\n")



def message(address: str, *args):
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


class Synth:
    """`synth play PATCH --osc PORT --record WAV`, with a reply port read by oscdump."""

    def __init__(self, patch: Path, record: Path) -> None:
        self.port = free_udp_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "play", str(patch), "--osc",
                                      str(self.port), "--record", str(record)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True).start()
        while not any("listening for OSC" in line for line in self.lines):
            if self.proc.poll() is not None:
                raise SystemExit("synth play failed:\n" + "".join(self.lines))
            time.sleep(0.05)
        self.latency = float(next(line for line in self.lines if "output latency" in line)
                             .split("output latency ")[1].split(" ms")[0]) / 1e3
        self.reply = free_udp_port()
        self.dump = subprocess.Popen(["oscdump", "-L", str(self.reply)], stdout=subprocess.PIPE, text=True)
        self.replies: list[str] = []
        threading.Thread(target=lambda: self.replies.extend(self.dump.stdout), daemon=True).start()
        time.sleep(0.3)
        self.send(message("/synth/reply", self.reply).dgram)

    def send(self, data: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(data, ("127.0.0.1", self.port))

    def stats(self) -> tuple[int, int, int, int]:
        before = len(self.replies)
        self.send(message("/synth/stats").dgram)
        deadline = time.monotonic() + 5
        while len(self.replies) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        return tuple(map(int, self.replies[-1].split()[3:7]))

    def stop(self) -> str:
        self.proc.send_signal(2)
        self.proc.wait(30)
        self.dump.kill()
        return "".join(self.lines)


def script(path: Path, count: int, rate: float) -> Path:
    base = int(time.time()) + NTP_DELTA
    with open(path, "w") as out:
        for k in range(count):
            seconds, fraction = divmod(k / rate, 1)
            out.write(f"{base + int(seconds):08x}.{int(fraction * 2 ** 32):08x} /synth/f1/cutoff f "
                      f"{300 + k % 2700}.0\n")
    return path


def received_since(synth: Synth, before: int, sent: int, timeout: float = 30.0) -> int:
    """Messages received since the stats reply that said ``before``: each
    stats request counts itself, so those are taken off."""
    deadline, asked = time.monotonic() + timeout, 0
    while True:
        asked += 1
        received = synth.stats()[0] - before - asked
        if received >= sent or time.monotonic() > deadline:
            return received
        time.sleep(0.05)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--notes", type=int, default=10)
    args = parser.parse_args()
    for tool in ("oscsendfile", "oscdump", "jackd"):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool} (apt-get install liblo-tools jackd2)")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        if not os.environ.get("JACK_DEFAULT_SERVER"):
            stack.enter_context(jack_dummy_server())
        tmp = Path(tmp)
        blocks = rendered_blocks(tmp, args.notes)   # first: its engine must fork before this process has threads
        (tmp / "p.patch").write_text(PATCH)
        synth = Synth(tmp / "p.patch", tmp / "take.wav")
        print(f"synth play --osc: output latency {1e3 * synth.latency:.1f} ms")

        before = synth.stats()[0]
        began = time.monotonic()
        subprocess.run(["oscsendfile", "127.0.0.1", str(synth.port), str(script(tmp / "b.txt", args.burst, 1e6))],
                       check=True)
        sent = time.monotonic() - began
        received = received_since(synth, before, args.burst)
        applied = time.monotonic() - began
        print(f"burst: {args.burst} messages sent in {sent:.3f} s ({args.burst / sent:,.0f}/s), "
              f"{received} received, {args.burst - received} lost; all applied after {applied:.3f} s")

        before = synth.stats()[0]
        count = int(args.rate * args.seconds)
        began = time.monotonic()
        subprocess.run(["oscsendfile", "127.0.0.1", str(synth.port), str(script(tmp / "s.txt", count, args.rate))],
                       check=True)
        took = time.monotonic() - began
        received = received_since(synth, before, count)
        print(f"sustained: {count} messages at {args.rate:,.0f}/s asked, sent in {took:.2f} s "
              f"({count / took:,.0f}/s), {received} received, {count - received} lost")

        for _ in range(args.notes):
            now = time.time()
            synth.send(message("/synth/note", 69, 100, 1).dgram)
            timed = OscBundleBuilder(now + 1.0)
            timed.add_content(message("/synth/note", 69, 100, 1))
            synth.send(timed.build().dgram)
            time.sleep(0.3)
            synth.send(message("/synth/note", 69, 100, 0).dgram)
            off = OscBundleBuilder(now + 1.3)
            off.add_content(message("/synth/note", 69, 100, 0))
            synth.send(off.build().dgram)
            time.sleep(1.6)
        log = synth.stop()
        xruns = [line for line in log.splitlines() if line.startswith("stopped")]
        print(xruns[0] if xruns else log)
        left = soundfile.read(str(tmp / "take.wav"))[0][:, 0]
        found = onsets(left)
        heard = [(1.0 - (found[k + 1] - found[k]) / SR) for k in range(0, len(found) - 1, 2)]
        if len(found) != 2 * args.notes:
            print(f"latency: expected {2 * args.notes} onsets, found {len(found)}: not measured")
            return
        print(f"latency send -> heard: median {1e3 * statistics.median(heard):.1f} ms, max {1e3 * max(heard):.1f} ms "
              f"(synth play reports an output latency of {1e3 * synth.latency:.1f} ms)")
        print(f"latency send -> rendered: the note landed {statistics.median(blocks):g} blocks (median), "
              f"{max(blocks)} at most, after the block being rendered when it was sent; histogram "
              f"{ {b: blocks.count(b) for b in sorted(set(blocks))} }")


def rendered_blocks(tmp: Path, notes: int) -> list[int]:
    """Notes sent to an in-process OSC server; for each, the recorded block
    holding its onset minus the ring's written-block count at sending."""
    from synthcli.audio.player import Player
    from synthcli.audio.ring import WRITTEN, Ring
    from synthcli.control import Control, LiveSound
    from synthcli.plugins import load_registry
    from synthcli.repl.session import Session
    session = Session(load_registry(safe_mode=True), LiveSound())
    session.edit(PATCH)
    control = Control(session, print)
    player = Player(session.patch.to_text(), record=str(tmp / "blocks.wav"), samplerate=SR, blocksize=256,
                    latency="normal", device=None, executor="processes", workers=None, safe_mode=True,
                    blocks=None, watch=True)
    info = player.start()
    session.sound.player = player
    ring = Ring(info["slots"], 256, name=info["ring"])
    control.listen_osc(0)
    sent = []
    try:
        time.sleep(0.5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for k in range(notes):
                sent.append(int(ring.header[WRITTEN]))
                s.sendto(message("/synth/note", 69, 100, 1).dgram, ("127.0.0.1", control.osc.port))
                time.sleep(0.1)
                s.sendto(message("/synth/note", 69, 100, 0).dgram, ("127.0.0.1", control.osc.port))
                time.sleep(0.1 + 0.013 * (k % 7))   # land at varied phases of the block
    finally:
        ring.close()
        control.close()
        xruns = player.stop().get("xruns", 0)
    found = onsets(soundfile.read(str(tmp / "blocks.wav"))[0][:, 0])
    if xruns or len(found) != notes:
        raise SystemExit(f"send -> rendered not measured: {xruns} xruns, {len(found)} of {notes} onsets")
    return [int(onset // 256) - block for onset, block in zip(found, sent)]


if __name__ == "__main__":
    main()
