"""Note-in to sound: how long after a keyboard sends a note-on it is heard.

    python benchmarks/midi_latency.py [--notes 20] [--latency normal]

Starts its own JACK dummy server, plays `synth play --midi-in` from a
virtual JACK MIDI port of this process and records what the engine sent
to the device (--record). The wall-clock instant of the recording is
pinned by an OSC bundle timed for a known instant, which lands on its
exact sample (tests/test_osc.py); each note's onset is then compared with
the instant this process sent it. JACK MIDI's own hop (this process to
another client) is measured too, on a loopback of two virtual ports.

Prints the median and the worst, beside one block plus the output
latency, the bound the engine path is designed to (once a message has
arrived and been handled). The output latency `synth play` prints takes
PortAudio's `stream.latency` (5.3 ms on the JACK dummy server at 256
frames), but the DAC times PortAudio gives its callbacks, which place
timed OSC notes and so the reference here, are 10.7 ms after the
callback: against that clock the bound is a period longer.

Figures on the project's 2-core VM at --latency normal, with other jobs
keeping the load average at 3.5 to 6: JACK MIDI hop median 2.2 to 3.3 ms,
worst 4.7 to 8.6 ms; note-in to sound median 29.4 to 30.1 ms, worst 31.7
to 32.2 ms, against 21.3 ms printed (26.7 ms by the DAC times) plus the
hop. Timestamping the keyboard's handler showed it runs 0.3 ms after a
message arrives; immediate OSC notes sent in place of the MIDI ones (the
same engine path without the MIDI hop) measured median 24.2 ms, worst
28.1 ms.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthcli.testing import Playing, free_udp_port, onsets  # noqa: E402  (after the path: runnable from a checkout)

SR, BLOCK = 48000, 256
BACKEND = "mido.backends.rtmidi/UNIX_JACK"
PATCH = ("add keys kb voices=2\nadd vco o wave=sine\nadd adsr env attack=0 decay=0 sustain=1 release=0\n"
         "add vca v\nconnect kb.voct o.voct\nconnect kb.gate env.gate\nconnect o v\nconnect env v.gain\n"
         "connect v out\n")


def hop(backend, count: int) -> list[float]:
    """JACK MIDI from one client of this process to another."""
    import mido
    arrived = []
    out = backend.open_output("bench-hop-out", virtual=True)
    inp = backend.open_input(next(n for n in backend.get_input_names() if "bench-hop-out" in n),
                             callback=lambda message: arrived.append(time.monotonic()))
    time.sleep(0.3)
    sent = []
    for _ in range(count):
        sent.append(time.monotonic())
        out.send(mido.Message("note_on", note=60, velocity=1))
        time.sleep(0.05 + 0.007 * np.random.random())
    time.sleep(0.1)
    inp.close()
    out.close()
    return [a - s for s, a in zip(sent, arrived)]


def note_in_to_sound(backend, count: int, latency: str, directory: Path) -> tuple[list[float], float]:
    import mido
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder
    keyboard = backend.open_output("bench-keyboard", virtual=True)
    patch, take = directory / "p.patch", directory / "take.wav"
    patch.write_text(PATCH)
    osc = free_udp_port()
    playing = Playing(patch, "--midi-in", "bench-keyboard", "--osc", str(osc), "--record", str(take),
                      "--latency", latency, cwd=str(ROOT))
    time.sleep(0.5)
    reference = time.time() + 0.3
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for when, on in ((reference, 1), (reference + 0.1, 0)):
            message = OscMessageBuilder("/synth/note")
            for arg in (81, 127, on):
                message.add_arg(arg)
            bundle = OscBundleBuilder(when)
            bundle.add_content(message.build())
            s.sendto(bundle.build().dgram, ("127.0.0.1", osc))
    time.sleep(reference + 0.3 - time.time())
    pressed = []
    for _ in range(count):
        time.sleep(0.1 * np.random.random())   # at any point of a block
        pressed.append(time.time())
        keyboard.send(mido.Message("note_on", note=69, velocity=127))
        time.sleep(0.15)
        keyboard.send(mido.Message("note_off", note=69))
        time.sleep(0.1)
    time.sleep(0.3)
    log = playing.finish()
    keyboard.close()
    data, _ = soundfile.read(str(take))
    found = onsets(data[:, 0])
    if len(found) != count + 1:
        raise SystemExit(f"expected {count + 1} onsets, found {len(found)}: {log}")
    heard = reference + (found[1:] - found[0]) / SR
    return list(heard - np.array(pressed)), playing.latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=20)
    parser.add_argument("--latency", default="normal", choices=("low", "normal", "safe"))
    args = parser.parse_args()
    os.environ["MIDO_BACKEND"] = BACKEND
    import mido
    from synthcli.testing import jack_dummy_server
    with jack_dummy_server(), tempfile.TemporaryDirectory() as directory:
        backend = mido.Backend(BACKEND)
        hops = hop(backend, args.notes)
        latencies, output = note_in_to_sound(backend, args.notes, args.latency, Path(directory))
    bound = BLOCK / SR + output
    print(f"JACK MIDI hop:       median {1e3 * statistics.median(hops):5.1f} ms, worst {1e3 * max(hops):5.1f} ms")
    print(f"note-in to sound:    median {1e3 * statistics.median(latencies):5.1f} ms, "
          f"worst {1e3 * max(latencies):5.1f} ms ({args.notes} notes, --latency {args.latency})")
    print(f"one block + output latency ({1e3 * output:.1f} ms, by PortAudio's DAC times): {1e3 * bound:.1f} ms")


if __name__ == "__main__":
    main()
