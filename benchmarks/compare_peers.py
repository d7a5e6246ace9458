"""Whole-process offline render of the reference patch: synthcli beside the
peers of issue 10 (SuperCollider's scsynth, pyo, SignalFlow) that are present.

    python benchmarks/compare_peers.py [--voices 8 32] [--seconds 20] [--runs 3]

It installs nothing. Each program is a whole process timed from outside,
from exec to exit with its WAV file written: `synth render` of the
reference song (synthcli/bench.py, as benchmarks/render_reference.py times
it), `scsynth -N` of a binary OSC score, and a small Python script for pyo
and for SignalFlow run with this interpreter. Every program renders once
untimed first (numba's JIT cache, the OS file cache) and that render is
checked: a WAV that is silent, of the wrong length, without the lowest
voice's pitch, or without the gating is reported as wrong and not timed.
Then the programs take turns, one run each per round (synthcli, scsynth,
pyo, SignalFlow, synthcli, ...), so load from other work on the machine
falls on all of them alike; the table gives medians and the ratio
peer / synthcli (above 1: synthcli is faster).

The patch, as synthcli plays it: N voices at MIDI 45, 46, ... (repeating
after four octaves; equal temperament, no detune), band-limited saw (gain 0.85) -> 4-pole ladder,
res 0.3 (loop gain k = 1.35, half the feedback added back to the input),
cutoff swept 300-3000 Hz by a 0.5 Hz sine LFO, per sample -> linear ADSR
10/100/0.6/200 ms, gate high 0.25 s every 0.5 s -> VCA 0.5/sqrt(N) -> every
voice to both sides (no pan), 48 kHz, 32-bit float WAV. The song lasts
`--seconds` and `synth render` adds the release tail (20.25 s in all at
20 s); the peers render that same number of frames.

How each peer's patch matches it, and where it differs:

* all peers: the gate is an LFO square (2 Hz, width 0.5) instead of note
  events, and the level carries our saw's 0.85 and our ladder's input
  compensation (x 1 + k/2) as one constant gain, so levels land within
  about 5 dB of ours (their ladders' passband gains differ; the check
  prints the difference). Their ladders are linear or differently
  shaped where ours saturates (a tanh-like stage in the loop).
* scsynth: one SynthDef per voice, 64-sample control blocks, with
  Saw.ar (band-limited) -> MoogFF.ar (Fontana's ladder, gain = k; it reads
  its cutoff once per control block, so the sweep is stepped every 64
  samples) swept by SinOsc.kr(0.5) * 1350 + 1650 -> * EnvGen.ar of
  Env.adsr(0.01, 0.1, 0.6, 0.2, curve: lin), gated by LFPulse.kr (gate edges
  on 64-sample boundaries) -> Out.ar(0, [sig, sig]). Each voice runs its own
  LFO and gate at control rate, a few operations per 64 samples. The
  SynthDef is written here (see SynthDef) and sent inside the score
  (/d_recv), so scsynth parses it in the timed process; `-D 0` skips the
  scan of a synthdefs folder.
* pyo: 256-sample blocks; LFO(type=0, sharp=1) (a band-limited saw up) ->
  MoogLP (a Moog-style 24 dB/oct lowpass, res = k / 4, cutoff an audio-rate
  Sine) -> mul by MidiAdsr (linear segments) gated by Phasor(2) < 0.5 ->
  mixed to mono and sent to both channels.
* SignalFlow: 256-sample blocks; SawOscillator, which is NOT band-limited
  (it aliases, and costs less than a band-limited saw) -> MoogVCF (the
  musicdsp.org ladder with empirical tuning, resonance = k / 4, cutoff per
  sample) -> * ADSREnvelope gated by SquareLFO(2) -> mixed to mono, both
  channels. One multichannel node per stage, as synthcli's cables carry
  voices. Buffer.save writes 16-bit PCM (it has no float option).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import ntp
from scipy.signal import welch

from synthcli.api import C4_HZ
from synthcli.bench import byte_compile, reference_pitches, reference_song
from synthcli.modules.filters import LADDER_COMPENSATION, LADDER_MAX_K
from synthcli.modules.oscillators import SAW_GAIN

SR = 48000
#: The reference patch's settings, as synthcli/bench.py writes them.
LFO_HZ, CUTOFF, SWEEP = 0.5, 1650.0, 1350.0
RES = 0.3
ATTACK, DECAY, SUSTAIN, RELEASE = 0.01, 0.1, 0.6, 0.2
GATE_PERIOD, GATE_HELD = 0.5, 0.25
#: The ladder's loop gain at RES: the k that Moog-style filters share.
K = LADDER_MAX_K * RES


def voice_hz(voices: int) -> list[float]:
    return [C4_HZ * 2 ** ((note - 60) / 12) for note in reference_pitches(voices)]


def voice_gain(voices: int) -> float:
    """Per-voice level of the peers: our VCA level times what our saw and
    our ladder's compensation add, which their oscillators and filters lack."""
    return 0.5 / voices ** 0.5 * SAW_GAIN * (1 + LADDER_COMPENSATION * K)


# --- scsynth: a SynthDef file and an OSC score, written without sclang ---

#: Calculation rates in a SynthDef (0 is scalar, unused here).
CONTROL_RATE, AUDIO_RATE = 1, 2
#: BinaryOpUGen's special index for multiplication.
OP_MUL = 2
#: Env.adsr(0.01, 0.1, 0.6, 0.2, curve: \lin) as EnvGen reads it: start
#: level, segment count, release node, loop node (-99: none), then per
#: segment its target level, time, shape (1: linear) and curvature.
ADSR_ENV = [0, 3, 2, -99, 1, ATTACK, 1, 0, SUSTAIN, DECAY, 1, 0, 0, RELEASE, 1, 0]


def _pstring(text: str) -> bytes:
    data = text.encode("ascii")
    return struct.pack(">B", len(data)) + data


class SynthDef:
    """Just enough of a SynthDef file (SCgf, version 2, big-endian) for one
    def of named float parameters and a list of UGens, each input a constant
    or an output of an earlier UGen: the format sclang compiles to and
    scsynth loads. UGen ids are (UGen index, output index); constants
    are (-1, constant index), as in the file."""

    def __init__(self, name: str, params: dict[str, float]):
        self.name = name
        self.params = list(params.items())
        self.constants: list[float] = []
        self.ugens: list[tuple[str, int, list[tuple[int, int]], int, int]] = []
        self.ugen("Control", CONTROL_RATE, [], outputs=len(self.params))

    def param(self, name: str) -> tuple[int, int]:
        """The Control UGen (always the first) has one output per parameter."""
        return 0, [n for n, _ in self.params].index(name)

    def _constant(self, value: float) -> tuple[int, int]:
        value = float(np.float32(value))
        if value not in self.constants:
            self.constants.append(value)
        return -1, self.constants.index(value)

    def ugen(self, name: str, rate: int, inputs: list, outputs: int = 1, special: int = 0) -> tuple[int, int]:
        refs = [x if isinstance(x, tuple) else self._constant(x) for x in inputs]
        self.ugens.append((name, rate, refs, outputs, special))
        return len(self.ugens) - 1, 0

    def encode(self) -> bytes:
        body = _pstring(self.name)
        body += struct.pack(">i", len(self.constants)) + b"".join(struct.pack(">f", c) for c in self.constants)
        body += struct.pack(">i", len(self.params)) + b"".join(struct.pack(">f", v) for _, v in self.params)
        body += struct.pack(">i", len(self.params))
        body += b"".join(_pstring(name) + struct.pack(">i", i) for i, (name, _) in enumerate(self.params))
        body += struct.pack(">i", len(self.ugens))
        for name, rate, refs, outputs, special in self.ugens:
            body += _pstring(name) + struct.pack(">biih", rate, len(refs), outputs, special)
            body += b"".join(struct.pack(">ii", ugen, index) for ugen, index in refs)
            body += struct.pack(">b", rate) * outputs
        body += struct.pack(">h", 0)  # no variants
        return b"SCgf" + struct.pack(">ih", 2, 1) + body


def voice_synthdef() -> bytes:
    """One voice of the reference patch; see the module docstring."""
    d = SynthDef("refvoice", {"freq": 110.0, "amp": 0.1})
    lfo = d.ugen("SinOsc", CONTROL_RATE, [LFO_HZ, 0.0])
    cutoff = d.ugen("MulAdd", CONTROL_RATE, [lfo, SWEEP, CUTOFF])
    saw = d.ugen("Saw", AUDIO_RATE, [d.param("freq")])
    ladder = d.ugen("MoogFF", AUDIO_RATE, [saw, cutoff, K, 0.0])
    gate = d.ugen("LFPulse", CONTROL_RATE, [1 / GATE_PERIOD, 0.0, GATE_HELD / GATE_PERIOD])
    # EnvGen's inputs: gate, level scale, level bias, time scale, done action, envelope.
    env = d.ugen("EnvGen", AUDIO_RATE, [gate, d.param("amp"), 0.0, 1.0, 0.0, *ADSR_ENV])
    vca = d.ugen("BinaryOpUGen", AUDIO_RATE, [ladder, env], special=OP_MUL)
    d.ugen("Out", AUDIO_RATE, [0.0, vca, vca], outputs=0)
    return d.encode()


def _bundle(seconds: float, messages: list[tuple[str, list]]) -> bytes:
    """An OSC bundle at ``seconds`` into the score. In non-real-time mode
    scsynth reads a time tag as seconds from 0, while python-osc adds the
    NTP epoch to the time it is given, so give it the time minus that."""
    builder = OscBundleBuilder(ntp.ntp_time_to_system_epoch(seconds))
    for address, args in messages:
        message = OscMessageBuilder(address)
        for arg in args:
            message.add_arg(arg)
        builder.add_content(message.build())
    return builder.build().dgram


def scsynth_score(voices: int, seconds: float) -> bytes:
    """The score file: length-prefixed bundles. The def, a synth per voice
    at 0, and an empty /c_set at the end, where scsynth stops."""
    bundles = [
        _bundle(0.0, [("/d_recv", [voice_synthdef()])]),
        _bundle(0.0, [("/s_new", ["refvoice", -1, 0, 0, "freq", hz, "amp", voice_gain(voices)])
                      for hz in voice_hz(voices)]),
        _bundle(seconds, [("/c_set", [0, 0.0])]),
    ]
    return b"".join(struct.pack(">i", len(b)) + b for b in bundles)


def scsynth_command(tmp: Path, voices: int, seconds: float, wav: Path) -> list[str]:
    score = tmp / f"score{voices}.osc"
    score.write_bytes(scsynth_score(voices, seconds))
    return ["scsynth", "-D", "0", "-o", "2", "-N", str(score), "_", str(wav), str(SR), "WAV", "float"]


# --- pyo and SignalFlow: a script each, run by this interpreter ---

PYO_SCRIPT = """\
from pyo import *
server = Server(sr={sr}, nchnls=2, buffersize=256, duplex=0, audio="offline").boot()
server.recordOptions(dur={seconds!r}, filename={wav!r}, fileformat=0, sampletype=3)
saw = LFO(freq={hz!r}, sharp=1.0, type=0)
cutoff = Sine(freq={lfo_hz}, mul={sweep}, add={cutoff})
phase = Phasor(freq={gate_hz})
gate = Compare(phase, {held_share}, "<")
env = MidiAdsr(gate, attack={attack}, decay={decay}, sustain={sustain}, release={release}, mul={gain!r})
voices = MoogLP(saw, freq=cutoff, res={res!r}, mul=env)
mono = voices.mix(1)
stereo = Mix([mono, mono], voices=2).out()
server.start()
"""

SIGNALFLOW_SCRIPT = """\
from signalflow import *
config = AudioGraphConfig()
config.sample_rate = {sr}
graph = AudioGraph(output_device=AudioOut_Dummy(2, {sr}, 256), config=config)
cutoff = SineLFO({lfo_hz}, {low}, {high})
gate = SquareLFO({gate_hz}, 0, 1, {held_share})
env = ADSREnvelope({attack}, {decay}, {sustain}, {release}, gate)
voices = MoogVCF(SawOscillator({hz!r}), cutoff, {res!r}) * env * {gain!r}
mono = ChannelMixer(1, voices, False)
graph.play(ChannelArray([mono, mono]))
graph.render_to_new_buffer({frames}).save({wav!r})
"""


def _script_values(voices: int, seconds: float, wav: Path) -> dict:
    return dict(sr=SR, seconds=seconds, frames=round(seconds * SR), wav=str(wav), hz=voice_hz(voices),
                lfo_hz=LFO_HZ, sweep=SWEEP, cutoff=CUTOFF, low=CUTOFF - SWEEP, high=CUTOFF + SWEEP,
                gate_hz=1 / GATE_PERIOD, held_share=GATE_HELD / GATE_PERIOD, attack=ATTACK, decay=DECAY,
                sustain=SUSTAIN, release=RELEASE, gain=voice_gain(voices), res=K / 4)


def pyo_command(tmp: Path, voices: int, seconds: float, wav: Path) -> list[str]:
    script = tmp / f"pyo{voices}.py"
    script.write_text(PYO_SCRIPT.format(**_script_values(voices, seconds, wav)))
    return [sys.executable, str(script)]


def signalflow_command(tmp: Path, voices: int, seconds: float, wav: Path) -> list[str]:
    script = tmp / f"signalflow{voices}.py"
    script.write_text(SIGNALFLOW_SCRIPT.format(**_script_values(voices, seconds, wav)))
    return [sys.executable, str(script)]


@dataclass
class Peer:
    name: str
    present: Callable[[], bool]
    how_to_get: str
    command: Callable[[Path, int, float, Path], list[str]]
    #: Added to the process's environment. PYO_GUI_WX=0: pyo skips looking
    #: for wxPython on import, as a user without it would set to silence it.
    env: dict[str, str] = field(default_factory=dict)


PEERS = [
    Peer("scsynth", lambda: shutil.which("scsynth") is not None,
         "apt-get install supercollider-server (Debian/Ubuntu), or SuperCollider from supercollider.github.io",
         scsynth_command),
    Peer("pyo", lambda: importlib.util.find_spec("pyo") is not None, "pip install pyo", pyo_command,
         {"PYO_GUI_WX": "0"}),
    Peer("signalflow", lambda: importlib.util.find_spec("signalflow") is not None, "pip install signalflow",
         signalflow_command),
]


# --- timing and checking ---

def run(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one whole process; its output is kept from the
    terminal, and shown if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} ... exited {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-600:]}")
    return elapsed


def synthcli_command(tmp: Path, voices: int, seconds: float, wav: Path) -> list[str]:
    song = tmp / f"reference{voices}.seq"
    song.write_text(reference_song(voices, max(1, round(seconds / 2))))
    return [sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(wav), "--quiet"]


@dataclass
class Check:
    """What the check of a render found; ``problem`` None if it passed."""
    frames: int
    rms_db: float
    peak_hz: float
    gate_db: float    # level while the gate is low (after the release) relative to while it is held
    problem: str | None


def check(wav: Path, voices: int, frames: int) -> Check:
    """Whether a render is the reference patch: ``frames`` long (within a
    block), not silent, the lowest voice's fundamental the strongest peak
    below the second voice's (nothing else sounds there), and quiet between
    a release's end and the next gate."""
    audio, rate = soundfile.read(str(wav), always_2d=True)
    left = audio[:, 0]
    if len(left) < 2 * rate:
        return Check(len(left), -np.inf, 0.0, 0.0, f"only {len(left)} frames, expected {frames}")
    rms = float(np.sqrt(np.mean(left ** 2)))
    hz = voice_hz(voices + 1)
    freqs, power = welch(left, rate, nperseg=2 * rate)
    band = (freqs > 0.7 * hz[0]) & (freqs < (hz[0] + hz[1]) / 2)
    peak_hz = float(freqs[band][np.argmax(power[band])]) if band.any() else 0.0
    floor = np.median(power[(freqs > 0.7 * hz[0]) & (freqs < 0.95 * hz[0])])
    t = np.arange(len(left)) / rate % GATE_PERIOD
    held = left[(t > ATTACK + DECAY) & (t < GATE_HELD)]
    low = left[t > GATE_HELD + RELEASE + 0.01]
    gate_db = 10 * np.log10((np.mean(low ** 2) + 1e-20) / (np.mean(held ** 2) + 1e-20))
    problem = None
    if rate != SR or abs(len(left) - frames) > 256:
        problem = f"{len(left)} frames at {rate} Hz, expected {frames} at {SR}"
    elif not np.isfinite(audio).all() or rms < 1e-4:
        problem = "silent" if np.isfinite(audio).all() else "not finite"
    elif abs(peak_hz - hz[0]) > 1.0 or power[band].max() < 100 * floor:
        problem = f"no clear {hz[0]:.1f} Hz fundamental (peak at {peak_hz:.1f} Hz)"
    elif gate_db > -20:
        problem = f"not gated (between notes only {max(0.0, -gate_db):.0f} dB below the held level)"
    return Check(len(left), 20 * np.log10(max(rms, 1e-10)), peak_hz, gate_db, problem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--voices", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    byte_compile()
    present = [peer for peer in PEERS if peer.present()]
    absent = [peer for peer in PEERS if peer not in present]
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for voices in args.voices:
            ours_wav = tmp / f"synthcli{voices}.wav"
            ours = synthcli_command(tmp, voices, args.seconds, ours_wav)
            run(ours)
            frames = soundfile.info(str(ours_wav)).frames
            ours_check = check(ours_wav, voices, frames)
            programs = {"synthcli": (ours, {})}
            checks = {"synthcli": ours_check}
            errors = {}
            for peer in present:
                wav = tmp / f"{peer.name}{voices}.wav"
                command = peer.command(tmp, voices, frames / SR, wav)
                try:
                    run(command, peer.env)
                    checks[peer.name] = check(wav, voices, frames)
                except RuntimeError as error:
                    errors[peer.name] = str(error)
                    continue
                if checks[peer.name].problem is None:
                    programs[peer.name] = (command, peer.env)
            print(f"\n{voices} voices, {frames} frames ({frames / SR:.2f} s) each: check of the untimed first render")
            for name, c in checks.items():
                verdict = "ok" if c.problem is None else f"WRONG: {c.problem}, not timed"
                print(f"  {name:<11} RMS {c.rms_db:6.1f} dBFS ({c.rms_db - ours_check.rms_db:+5.1f} dB vs synthcli), "
                      f"lowest voice at {c.peak_hz:6.1f} Hz, between notes {c.gate_db:6.1f} dB: {verdict}")
            for name, error in errors.items():
                print(f"  {name:<11} FAILED, not timed: {error}")
            times: dict[str, list[float]] = {name: [] for name in programs}
            for _ in range(args.runs):
                for name, (command, env) in programs.items():
                    times[name].append(run(command, env))
            rows.append((voices, {name: statistics.median(t) for name, t in times.items()}))
    print(f"\nreference patch, whole process from outside, {args.seconds:g} s song at {SR} Hz: "
          f"wall seconds, median of {args.runs} interleaved runs; ratio = peer / synthcli (>1: synthcli faster)")
    header = f"{'voices':>6} {'synthcli':>9}" + "".join(f" {peer.name:>11} {'ratio':>7}" for peer in present)
    print(header)
    for voices, medians in rows:
        line = f"{voices:>6} {medians['synthcli']:>8.2f}s"
        for peer in present:
            if peer.name in medians:
                line += f" {medians[peer.name]:>10.2f}s {medians[peer.name] / medians['synthcli']:>6.2f}x"
            else:
                line += f" {'-':>11} {'-':>7}"
        print(line)
    for peer in absent:
        print(f"{peer.name} is not installed here, so not compared; to include it: {peer.how_to_get}")


if __name__ == "__main__":
    main()
