"""``synth repl``: the REPL's command line, in one place for ``synth``
(bare or ``synth repl``) and ``python -m synthcli.repl`` alike. Only typer
is imported here, so registering it keeps ``synth --help`` fast."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..options import (BlockSize, ClockIn, ClockOut, Device, Latency, LiveExecutor, LiveWorkers, MidiIn, Osc,
                       OscAllow, OscHost, Record, SampleRate)


def repl(
    file: Optional[Path] = typer.Argument(None, metavar="FILE", help="A patch or song file to start from."),
    resume: bool = typer.Option(False, "--resume", help="Rebuild the patch and song of the last session "
                                                         "from its journal."),
    device: Device = None,
    samplerate: SampleRate = 48000,
    blocksize: BlockSize = 256,
    latency: Latency = "normal",
    executor: LiveExecutor = "processes",
    workers: LiveWorkers = None,
    record: Record = None,
    osc: Osc = None,
    osc_host: OscHost = "127.0.0.1",
    osc_allow: OscAllow = None,
    midi_in: MidiIn = None,
    clock_in: ClockIn = None,
    clock_out: ClockOut = None,
) -> None:
    """Live-code patches and songs at a prompt, with the audio running (`help` lists the commands)."""
    from ..cli import Options, check_live_settings, fail, midi_settings, osc_settings
    from ..engine.render import WAV_SUFFIXES
    from ..errors import SynthError, check_output
    from .app import run
    check_live_settings(executor, workers, latency, samplerate, blocksize)
    if resume and file is not None:
        fail("give a FILE or --resume, not both")
    if record is not None:   # as play checks it: unchecked, a missing folder hung the REPL's start for good
        try:
            check_output(record, WAV_SUFFIXES, "--record")
        except SynthError as error:
            fail(str(error))
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
