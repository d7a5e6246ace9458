"""The command-line options that more than one command takes, each written
once, so that ``synth play --help``, ``synth repl --help`` and ``synth
render --help`` say the same of them and a fix to one reaches all. Each
is an ``Annotated`` type; a command gives it its default, as in
``samplerate: SampleRate = 48000``. Only typer is imported here, so
``synth --help`` stays light."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# -- live and offline ---------------------------------------------------------------

SampleRate = Annotated[int, typer.Option("--samplerate", "-r", help="Samples per second.")]
BlockSize = Annotated[int, typer.Option("--blocksize", "-b", help="Samples per block.")]
VoicePatch = Annotated[Optional[Path], typer.Option(
    "--patch", help="A MIDI file's voice patch (default: built-in GM voices).")]
FromBar = Annotated[int, typer.Option(
    "--from", metavar="BAR", help="Start a song at this bar (from 1), with the patch and patterns as they stand "
                                  "there; a MIDI file with its programs and controllers.")]

# -- live: `synth play` and `synth repl` --------------------------------------------------

Device = Annotated[Optional[str], typer.Option(
    "--device", help="Output device number or name (see `synth devices`).")]
Latency = Annotated[str, typer.Option("--latency", help="low, normal or safe: blocks rendered ahead.")]
LiveExecutor = Annotated[str, typer.Option("--executor", "-x", help="inline, threads or processes.")]
LiveWorkers = Annotated[Optional[int], typer.Option(
    "--workers", "-w", help="Worker processes besides the engine.")]
Record = Annotated[Optional[Path], typer.Option("--record", help="Also write what is played to this WAV file.")]
Osc = Annotated[Optional[int], typer.Option(
    "--osc", help="Take commands over OSC on this UDP port (docs/osc.md); a song then plays on past its end.")]
MidiIn = Annotated[Optional[str], typer.Option(
    "--midi-in", help="Play the patch's first note source from this MIDI input (docs/midi.md); a song then "
                      "plays on past its end.")]
OscHost = Annotated[str, typer.Option(
    "--osc-host", help="Address OSC listens on (beyond 127.0.0.1: a warning).")]
OscAllow = Annotated[Optional[str], typer.Option("--osc-allow", help="Comma-separated client IPs OSC accepts.")]
ClockIn = Annotated[Optional[str], typer.Option(
    "--clock-in", help="Follow the tempo, beats, start, stop and song position of the MIDI clock on this input.")]
ClockOut = Annotated[Optional[str], typer.Option(
    "--clock-out", help="Send the song's MIDI clock (24 PPQN, start, stop) to this output.")]
