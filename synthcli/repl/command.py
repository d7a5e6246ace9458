"""``synth repl``: the REPL's command line, in one place for ``synth``
(bare or ``synth repl``) and ``python -m synthcli.repl`` alike. Only typer
is imported here, so registering it keeps ``synth --help`` fast."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def repl(
    file: Optional[Path] = typer.Argument(None, help="A patch or song file to start from."),
    resume: bool = typer.Option(False, "--resume", help="Rebuild the patch and song of the last session "
                                                         "from its journal."),
    device: Optional[str] = typer.Option(None, "--device", help="Output device number or name (see `synth devices`)."),
    samplerate: int = typer.Option(48000, "--samplerate", "-r", help="Samples per second."),
    blocksize: int = typer.Option(256, "--blocksize", "-b", help="Samples per block."),
    latency: str = typer.Option("normal", "--latency", help="low, normal or safe: blocks rendered ahead."),
    executor: str = typer.Option("processes", "--executor", "-x", help="inline, threads or processes."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Worker processes besides the engine."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also write everything played to this WAV file."),
    osc: Optional[int] = typer.Option(None, "--osc", help="Take commands over OSC on this UDP port (docs/osc.md)."),
    osc_host: str = typer.Option("127.0.0.1", "--osc-host", help="Address OSC listens on (beyond 127.0.0.1: a warning)."),
    osc_allow: Optional[str] = typer.Option(None, "--osc-allow", help="Comma-separated client IPs OSC accepts."),
    midi_in: Optional[str] = typer.Option(None, "--midi-in", help="Play the patch's first note source from this "
                                                                  "MIDI input (docs/midi.md)."),
    clock_in: Optional[str] = typer.Option(None, "--clock-in", help="Follow the tempo, start and stop of the "
                                                                    "MIDI clock on this input."),
    clock_out: Optional[str] = typer.Option(None, "--clock-out", help="Send the song's MIDI clock (24 PPQN, "
                                                                      "start, stop) to this output."),
) -> None:
    """Live-code patches and songs at a prompt, with the audio running (`help` lists the commands)."""
    from ..cli import Options, check_live_settings, fail, midi_settings, osc_settings
    from ..errors import SynthError
    from .app import run
    check_live_settings(executor, workers, latency, blocksize)
    if resume and file is not None:
        fail("give a FILE or --resume, not both")
    settings = {"samplerate": samplerate, "blocksize": blocksize, "latency": latency, "device": device,
                "executor": executor, "workers": workers, "safe_mode": Options.safe_mode, "frames": None,
                "record": str(record) if record else None}
    live_midi = midi_settings(midi_in, clock_in, clock_out)
    settings["clock_out"] = live_midi.get("clock_out")
    settings["clock_in"] = "clock_in" in live_midi
    try:
        code = run(file, resume, settings, osc_settings(osc, osc_host, osc_allow), live_midi)
    except SynthError as error:
        fail(str(error))
    raise typer.Exit(code)
