"""The ``synth`` command.

Only typer is imported at the top: each command imports what it needs when
it runs, so ``synth --help`` answers without loading numpy or numba.
Every user error leaves through :func:`fail`: one line on stderr, status 2.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional

# Plain click output: help answers without loading rich, and usage errors
# stay one short paragraph instead of a drawn box.
os.environ.setdefault("TYPER_USE_RICH", "0")
# Each synthcli process works on one core by design (a worker per core);
# OpenBLAS's own pool of threads would compete with the audio, and starting
# it is 2-3 ms of numpy's import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

#: click's UsageError, which every error in a command line's own words
#: derives from; found through typer, which from 0.28 carries its own click.
_UsageError = next(k for k in typer.BadParameter.__mro__ if k.__name__ == "UsageError")


@contextlib.contextmanager
def usage_in_one_line(named: Callable[[], str] = lambda: "synth"):
    """A command line click refuses (an option mistyped, a value of the
    wrong type, a command that does not exist) in one line naming the
    command, as every other error of synth's: click's own took three, the
    usage and a hint before the message. Status 2, as click gives. An
    error click raises without its context (an option missing its value)
    names the command ``named`` says."""
    try:
        yield
    except _UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":   # bare `synth COMMAND`: its help is the answer
            raise
        where = error.ctx.command_path if error.ctx is not None else named()
        message = error.format_message().rstrip(".")
        typer.echo(f"error: {where}: {message[:1].lower()}{message[1:]} (see {where} --help)", err=True)
        raise typer.Exit(2) from None


class Commands(TyperGroup):
    """synth's commands, refused in one line (see usage_in_one_line): the
    group's own options and its command's name are read in make_context,
    the command's in invoke."""

    def make_context(self, info_name, args, parent=None, **extra):
        with usage_in_one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx):
        with usage_in_one_line(lambda: " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand)))):
            return super().invoke(ctx)


app = typer.Typer(
    cls=Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="synthcli: a modular synthesizer for the terminal. Bare `synth` starts the live-coding REPL.",
)

from .options import (BlockSize, ClockIn, ClockOut, Device, FromBar, Latency, LiveExecutor,  # noqa: E402
                      LiveWorkers, MidiIn, Osc, OscAllow, OscHost, Record, SampleRate, VoicePatch)
from .repl.cli import repl as repl_command  # noqa: E402  (imports only typer: --help stays light)

app.command("repl")(repl_command)


class Options:
    safe_mode = False
    json_errors = False
    #: Where warnings go instead of stderr: `check --json`'s report.
    warnings: list[str] | None = None


def warn(line: str) -> None:
    """A warning about the file or the plugins: a line on stderr, or in
    the report of `check --json`, whose reader would miss it there."""
    if Options.warnings is not None:
        Options.warnings.append(line)
    else:
        typer.echo(f"warning: {line}", err=True)


def fail(message: str) -> NoReturn:
    if Options.json_errors:
        typer.echo(json.dumps({"ok": False, "error": message, "warnings": Options.warnings or []}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def registry():
    from .plugins import load_registry
    reg = load_registry(safe_mode=Options.safe_mode)
    for problem in reg.problems:
        warn(problem)
    return reg


def read_file(path: Path, reg, midi: bool = False, text: str | None = None):
    """Read a patch or song file: ``(text, patch, song)``, song None for a
    patch. With ``midi``, a MIDI file (.mid) gives ``(None, None, MidiSong)``.
    ``text``: the file's text, read already. Raises SynthError naming
    file:line:col."""
    from .errors import SynthError
    from .language import parse_text
    from .midi.file import MidiSong, is_midi_path
    from .patch import Patch, read_source
    from .sequencer.song import Song, is_song
    if is_midi_path(path):
        if not midi:
            raise SynthError("a MIDI file can be played or rendered, not used here "
                             "(`synth render FILE.mid -o OUT.wav`)", source=str(path))
        return None, None, MidiSong(path)
    if text is None:
        text = read_source(path)
    commands = parse_text(text, str(path))
    if is_song(commands):
        song = Song(reg, text, str(path))
        return text, song.patch, song
    patch = Patch(reg)
    patch.apply_all(commands, str(path))
    return text, patch, None


def start_bar(from_bar: int, patch, song) -> int:
    """``--from``'s bar counted from 0, checked against the file: only a
    song or a MIDI file has bars to start at, and only those before its end."""
    if from_bar == 1:
        return 0
    if song is None:
        fail(f"--from {from_bar}: only a song or a MIDI file has bars to start from; this is a patch")
    if from_bar < 1:
        fail(f"--from {from_bar}: bars count from 1")
    if patch is None:   # a MIDI file
        from .errors import SynthError
        try:
            length = len(song.bar_ticks())
        except SynthError as error:
            fail(f"{error.source}: --from {from_bar}: {error.message}")
        what = "file"
    else:
        length, what = song.length, "song"
    if length is not None and from_bar > length:
        fail(f"--from {from_bar} is past the {what}'s end: it is {length} bar{'s' * (length != 1)} long")
    return from_bar - 1


#: Damaged meta events of a MIDI file warned of one by one: a file with
#: thousands (a broken exporter's) gave as many lines.
IGNORED_SHOWN = 5


def load_source(path: Path, reg, midi: bool = False):
    """:func:`read_file`'s ``(patch, song)``; any user error ends the
    command with its one line, and what a MIDI file's reading left out
    is warned of."""
    from .errors import SynthError
    try:
        _, patch, song = read_file(path, reg, midi)
    except SynthError as error:
        fail(str(error))
    ignored = song.ignored if patch is None else []
    for line in ignored[:IGNORED_SHOWN]:
        warn(f"{path}: {line}")
    if len(ignored) > IGNORED_SHOWN:
        warn(f"{path}: {len(ignored) - IGNORED_SHOWN} more damaged meta events, ignored")
    return patch, song


@app.callback()
def main_options(
    safe_mode: bool = typer.Option(False, "--safe-mode", help="Load no third-party plugins."),
) -> None:
    Options.safe_mode = safe_mode


@app.command()
def modules(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every module type: ports, parameters and the package it came from."""
    from .plugins import BUILTIN_PACKAGE
    from .repl.views import table, type_rows, wrapped
    reg = registry()
    entries = sorted(reg.qualified.values(), key=lambda t: (t.package != BUILTIN_PACKAGE, t.package, t.name))
    if as_json:
        typer.echo(json.dumps([describe(t, reg) for t in entries], indent=2))
        return
    width = terminal_width()
    for entry in entries:
        cls = entry.cls
        shown = entry.name if reg.types.get(entry.name) is entry else entry.qualified_name
        lines = wrapped(f"{shown}  ({entry.package} {entry.version})  {cls.description}", width)
        typer.echo("\n".join(lines + table(type_rows(cls), "    ", width)))


def terminal_width() -> int | None:
    """The terminal's columns, which tables wrap to; None for a pipe or a
    file, which get whole lines."""
    import shutil
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def describe(entry, reg) -> dict:
    cls = entry.cls
    return {
        "name": entry.name if reg.types.get(entry.name) is entry else entry.qualified_name,
        "qualified_name": entry.qualified_name,
        "package": entry.package,
        "version": entry.version,
        "description": cls.description,
        "inputs": [{"name": p.name, "kind": p.kind, "doc": p.doc, "default": p.default} for p in cls.inputs],
        "outputs": [{"name": p.name, "kind": p.kind, "doc": p.doc, "channels": p.channels} for p in cls.outputs],
        "params": [{"name": p.name, "default": p.default, "min": p.min, "max": p.max, "unit": p.unit,
                    "choices": list(p.choices), "file": p.file, "doc": p.doc} for p in cls.params],
    }


@app.command()
def check(
    file: Path = typer.Argument(..., metavar="FILE", help="A patch, song or MIDI file."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (errors and warnings too)."),
) -> None:
    """Check a patch, song or MIDI file for errors without playing it; exit status 2 on the first error."""
    from .engine.schedule import compile_patch
    from .errors import SynthError
    from .repl.views import count
    if as_json:
        Options.json_errors, Options.warnings = True, []
    patch, song = load_source(file, registry(), midi=True)
    if patch is None:   # a MIDI file, read through as play and render read it
        if as_json:
            s = song.summary
            typer.echo(json.dumps({"file": str(file), "ok": True, "midi": True, "format": song.file.type,
                                   "tracks": len(song.file.tracks), "notes": s.notes,
                                   "channels": len(s.channels), "bars": song.bars(), "seconds": song.seconds(),
                                   "warnings": Options.warnings}, indent=2))
        else:
            typer.echo(f"{file}: ok (MIDI file: {song.describe()})")
        return
    try:
        schedule = compile_patch(patch)
    except SynthError as error:
        fail(str(error.at(source=str(file))))
    if as_json:
        warn_about(file, patch, song)
        typer.echo(json.dumps({
            "file": str(file), "ok": True, "modules": len(patch.modules) - 1, "cables": len(patch.cables),
            "delayed": len(schedule.delayed), "song": song is not None,
            "bars": song.length if song else None, "tempo": float(song.tempo_at(0)) if song else None,
            "seconds": float(song.bar_start(song.length)) if song and song.length else None,
            "warnings": Options.warnings}, indent=2))
        return
    about = f"{count(len(patch.modules) - 1, 'module')}, {count(len(patch.cables), 'cable')}"
    if schedule.delayed:
        about += f", {len(schedule.delayed)} delayed by a block"
    if song is not None:
        patterns = len(song.voices) + sum(1 for cs in song.timed.values() for c in cs if c.verb == "pattern")
        if timeless(song):
            from .sequencer.song import PATCH_SECONDS
            about += f", at {float(song.tempo_at(0)):g} BPM, no length: it renders {PATCH_SECONDS:g} s, as a patch"
        else:
            about += (f", {count(song.length, 'bar')} at {float(song.tempo_at(0)):g} BPM, "
                      f"{float(song.bar_start(song.length)):.1f} s, {count(patterns, 'pattern')}")
    typer.echo(f"{file}: ok ({about})")
    warn_about(file, patch, song)


def timeless(song) -> bool:
    """A song file with a tempo or meter but no `length`, patterns or `at`
    (so nothing asked for one): it would render for ever; it is a patch."""
    from .sequencer.song import Song
    return isinstance(song, Song) and song.length is None


def warn_about(file: Path, patch, song) -> None:
    """What `check` and `render` point out in a file that is not wrong."""
    warn_silent(file, patch, song)
    if song is not None:
        warn_after_the_end(file, song)
        warn_restated(file, song)
        warn_unplugged(file, song)
        warn_lost(file, song.lost())
        for line, command in song.ended:
            warn(f"{file}:{line}: this pattern never plays: `{command}` of line {command.line} "
                 f"takes its target away")


def warn_silent(file: Path, patch, song) -> None:
    """A file with nothing connected to the master renders (and checks)
    fine, as seconds of silence: a forgotten `connect ... out`, or the
    wrong file, which a musician should hear of before listening."""
    from .patch import MASTER
    if patch.midi_ports or any(cable.dst == MASTER for cable in patch.cables):
        return   # a patch that only plays other synths over MIDI is silent on purpose
    if song is not None and any(c.verb == "connect" for timed in song.timed.values() for c in timed):
        return   # an `at` may connect it later
    warn(f"{file}: nothing is connected to '{MASTER}', so it is silent")


def warn_after_the_end(file: Path, song) -> None:
    """An `at` past a song's last bar is no error (play goes on past the end
    under --watch and --osc), but a render never reaches it: a typo for an
    earlier bar, most likely."""
    for line, bar in song.after_the_end():
        warn(f"{file}:{line}: `at {bar}` comes after the last bar ({song.length}): it plays only "
             f"when play goes on past the end (--watch, --osc)")


def warn_unplugged(file: Path, song) -> None:
    """An input that an `at` leaves with no cable reads its unconnected
    value from then on, which for an adsr's gate is high: the envelope
    sustains what it shapes to the end of the tail."""
    from .sequencer.song import reads_unconnected
    for command, where, port in song.unplugged:
        warn(f"{file}:{command.line}: `{command}` leaves {where} with no cable: "
             f"{reads_unconnected(port)}; to end a part, give its pattern rests (\"~\") instead")


def warn_lost(file: Path, lost) -> None:
    """What a song loses without a word (see Song.lost)."""
    from .api import MAX_CHANNELS
    from .modules.drums import OTHER_HIGH, OTHER_LOW
    for voice, most, have, bar in lost.crowded:
        warn(f"{file}:{voice.place[0]}: the pattern on {voice.module} holds {most} notes at once "
             f"(bar {bar + 1}), but {voice.module} has {have} voices: the notes struck first are cut short "
             f"(voices={min(most, MAX_CHANNELS)} gives each its own)")
    for command, voice, bar in lost.overridden:
        warn(f"{file}:{command.line}: `at {bar + 1} {command}` lasts until the next step of the "
             f"pattern on {command.target} (line {voice.place[0]}); to hold the value, give the pattern "
             f"the value instead (`at {bar + 1} pattern {command.target} \"{command.value}\"`)")
    for voice, missing, bar in lost.no_drum:
        warn(f"{file}:{voice.place[0]}: the pattern on {voice.module} plays MIDI note"
             f"{'s' * (len(missing) > 1)} {', '.join(map(str, missing))} (bar {bar + 1}), which the drum kit "
             f"has no sound for: it plays {OTHER_LOW} to {OTHER_HIGH} (c2 or bd kick, d2 or sd snare, f#2 or hh closed "
             f"hat, a#2 or oh open hat: synth help drums)")


def warn_restated(file: Path, song) -> None:
    """A second `tempo` (or `meter`, `length`) outside `at` replaces the
    first for the whole song, from bar 1: most likely a change at a bar was
    meant, which `at BAR tempo N` makes. A second `at BAR tempo` of a bar
    replaces the first there: a typo for another bar, most likely."""
    from .language.commands import At
    for later, earlier in song.restated:
        if isinstance(later, At):
            warn(f"{file}:{later.line}: `{later}` replaces `{earlier}` of line {earlier.line}: a bar has one "
                 f"{later.command.verb}")
            continue
        hint = f"; to change it from a bar on: `at BAR {later}`" if later.verb != "length" else ""
        warn(f"{file}:{later.line}: `{later}` replaces `{earlier}` of line {earlier.line} "
             f"for the whole song{hint}")


@app.command()
def render(
    file: Path = typer.Argument(..., metavar="FILE", help="A patch, song or MIDI file."),
    output: Path = typer.Option(..., "-o", "--output", help="The WAV file to write."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d",
                                             help="Seconds to render: a patch's length (default 4); a song or MIDI "
                                                  "file is cut there if it is longer (default: to its end)."),
    samplerate: SampleRate = 48000,
    blocksize: BlockSize = 256,
    fmt: str = typer.Option("float32", "--format", help="float32, pcm24 or pcm16."),
    executor: str = typer.Option("auto", "--executor", "-x",
                                 help="auto (inline, or worker processes once they are seen to pay), "
                                      "inline, threads or processes."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w",
                                          help="Worker threads/processes besides the engine (default: cores - 1)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw waveform, spectrogram and level to a PNG."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Say nothing but warnings and errors: no progress "
                                                                      "bar, no 'wrote' line."),
    voice_patch: VoicePatch = None,
    from_bar: FromBar = 1,
) -> None:
    """Render a patch, song or MIDI file offline to a WAV file (no sound card needed).

    The output is bit-identical whatever the executor and worker count, and
    a song renders to the samples `synth play` sends to the device."""
    from .engine.core import Engine, check_executor
    from .engine.render import (WAV_SUFFIXES, Overs, Performance, RenderInterrupted, check_format, frames_for,
                                length_written, render_to_wav)
    from .errors import SynthError, check_output
    try:
        check_executor(executor, workers, name="--executor")
        check_format(fmt, "--format")
    except SynthError as error:
        fail(str(error))
    check_samplerate(samplerate)
    if not 1 <= blocksize <= 8192:
        fail(f"--blocksize {blocksize} is out of range (1..8192)")
    try:
        check_output(output, WAV_SUFFIXES, "-o")
        if plot is not None:
            from .plot import SUFFIXES, require_matplotlib
            check_output(plot, SUFFIXES, "--plot")
            require_matplotlib()
    except SynthError as error:
        fail(str(error))
    reg = registry()
    patch, song = load_source(file, reg, midi=True)
    if patch is not None:
        warn_about(file, patch, song)
    voice_text = voice_patch_text(voice_patch, patch is None)
    start = start_bar(from_bar, patch, song)
    if duration is None and (song is None or timeless(song)):
        from .sequencer.song import PATCH_SECONDS
        duration = PATCH_SECONDS
    moved_on = None   # in a watched render, what tells the watching process it is not stuck
    if executor in ("inline", "threads") or (executor == "auto" and unguarded(reg, patch, song)):
        moved_on = watch_for_a_crash(output, samplerate, executor, reg)
    try:
        frames = asked = None if duration is None else frames_for(duration, samplerate, "--duration")
        with Engine(reg, samplerate, blocksize, executor=executor, workers=workers,
                    say=lambda line: typer.echo(f"warning: {line}", err=True)) as engine:
            if patch is None:   # a MIDI file, played as the engine process plays it
                from .midi import midi_performance
                performance = midi_performance(engine, song, voice_text,
                                               str(voice_patch) if voice_patch else None, frames, start)
            else:
                if song is None:
                    engine.load(patch)
                performance = Performance(engine, song, frames, start=start)
            overs = Overs()
            try:
                with Progress(quiet) as progress:
                    def told(fraction: float) -> None:
                        progress.update(fraction)
                        if moved_on is not None:
                            moved_on()
                    frames = render_to_wav(performance, output, frames, fmt, told, overs)
            except RenderInterrupted as stopped:
                typer.echo(str(stopped), err=True)
                raise typer.Exit(stopped.code) from None
            report_faults(engine)
        over = overs.said(frames)
        if over:
            typer.echo(f"warning: {output}: {over}", err=True)
        if plot is not None:
            from .plot import plot_wav
            plot_wav(output, plot)
    except SynthError as error:
        fail(str(error))
    if not quiet:
        typer.echo(f"wrote {output} ({length_written(frames, asked, samplerate)}; {samplerate} Hz, stereo, {fmt})"
                   + (f" and {plot}" if plot else ""), err=True)


def unguarded(reg, patch, song) -> bool:
    """Whether ``auto`` will run a plugin's module in this process: it
    keeps every module inline when a plugin's class cannot go to a worker
    (plugins.unhostable), rather than silence it. The song's patches at
    each of its bars are made only when such a class is installed."""
    from .plugins import BUILTIN_PACKAGE, unhostable
    from .sequencer.song import Song
    alone = {entry for entry in reg.qualified.values() if entry.package != BUILTIN_PACKAGE and unhostable(entry.cls)}
    if not alone:
        return False
    patches = song.patches() if isinstance(song, Song) else [patch] if patch is not None else []
    return any(inst.type in alone for each in patches for inst in each.modules.values())


def watch_for_a_crash(output: Path, samplerate: int, executor: str, reg) -> Callable[[], None]:
    """Under ``--executor inline`` or ``threads`` every module runs in this
    process (and under ``auto`` with a module only this process can run),
    where a plugin's segfault would end the render with no word
    but the shell's "Segmentation fault". So it forks: the child renders,
    and this process only waits, to say in one line what became of it, in
    which module (see engine/crashes.py), and of the file, or that a
    module seems to hang. Returns, in the child, what to call as the render
    moves on; this process never returns."""
    import signal
    import tempfile

    from .engine import crashes
    from .errors import SynthError
    try:
        patience = crashes.hang_seconds()
    except SynthError as error:
        fail(str(error))

    def stamp() -> tuple | None:   # a file left from before is not this render's
        return (output.stat().st_ino, output.stat().st_mtime_ns) if output.exists() else None
    before = stamp()
    dump, hangs, beats = tempfile.TemporaryFile(), tempfile.TemporaryFile(), crashes.beats()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        crashes.witness(dump, hangs)
        crashes.ends_in_python(beats)
        return lambda: crashes.beat(beats)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the terminal's Ctrl-C reaches the child too; it reports
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda signum, frame: os.kill(child, signum))
    import threading
    threading.Thread(target=crashes.watch_for_a_hang, args=(child, output, beats, hangs, reg,
                                                             lambda line: typer.echo(line, err=True), patience),
                     name="synthcli-hang-watch", daemon=True).start()
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if code < 0 and -code not in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL) or code >= 0 and not beats[1]:
        import soundfile
        try:
            held = f"{output} holds the first {soundfile.info(str(output)).frames / samplerate:.2f} s"
        except (RuntimeError, OSError):   # not opened yet, or its header unfinished
            held = None
        if held is None or stamp() == before:
            held = f"nothing was written to {output}"
        dump.seek(0)
        where = crashes.culprit(dump.read().decode(errors="replace"), reg) if code < 0 else "the middle of the render"
        told = crashes.told(code, executor, where, "synth render's own process")
        typer.echo(f"error: synth render {told}; {held}", err=True)
        code = 1
    os._exit(code if code >= 0 else 128 - code)


@app.command()
def play(
    file: Path = typer.Argument(..., metavar="FILE", help="A patch, song or MIDI file."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d",
                                             help="Seconds to play: a patch's length (default: until Ctrl-C); "
                                                  "a song or MIDI file stops there if it is longer."),
    device: Device = None,
    samplerate: SampleRate = 48000,
    blocksize: BlockSize = 256,
    latency: Latency = "normal",
    record: Record = None,
    executor: LiveExecutor = "processes",
    workers: LiveWorkers = None,
    watch: bool = typer.Option(False, "--watch", help="Keep playing; apply every save of the file at the next bar."),
    voice_patch: VoicePatch = None,
    from_bar: FromBar = 1,
    osc: Osc = None,
    osc_host: OscHost = "127.0.0.1",
    osc_allow: OscAllow = None,
    midi_in: MidiIn = None,
    clock_in: ClockIn = None,
    clock_out: ClockOut = None,
    link: bool = typer.Option(False, "--link", help="Join the Ableton Link session on the network: tempo, beat "
                              "phase and start/stop follow the others (needs synthcli[link])."),
    link_quantum: float = typer.Option(4.0, "--link-quantum", metavar="BEATS",
                                       help="Beats per Link phase cycle: a song starts on a multiple of it."),
    link_offset: float = typer.Option(0.0, "--link-offset", metavar="MS",
                                      help="Milliseconds the sound reaches the ears later than the audio device "
                                      "reports (positive plays earlier)."),
) -> None:
    """Play a patch, song or MIDI file through the audio device; Ctrl-C fades out and stops."""
    import signal
    import time
    from .audio.player import Player
    from .engine.render import WAV_SUFFIXES, frames_for
    from .errors import SynthError, check_output
    check_live_settings(executor, workers, latency, samplerate, blocksize)
    remote = osc_settings(osc, osc_host, osc_allow)
    try:
        frames = None if duration is None else frames_for(duration, samplerate, "--duration")
        if record is not None:
            check_output(record, WAV_SUFFIXES, "--record")
    except SynthError as error:
        fail(str(error))
    reg = registry()
    patch, song = load_source(file, reg, midi=True)
    if patch is None and remote is not None:
        fail("--osc controls patches and songs, not MIDI files")
    if patch is None and (midi_in or clock_in or clock_out):
        fail("--midi-in, --clock-in and --clock-out play patches and songs, not MIDI files")
    if link and clock_in:
        fail("--clock-in and --link would both lead the tempo and the beat: choose one")
    live_midi = midi_settings(midi_in, clock_in, clock_out)
    voice_text = voice_patch_text(voice_patch, patch is None)
    start = start_bar(from_bar, patch, song)
    midi = {}
    if patch is None:   # a MIDI file: the engine process reads it again and builds the same driver
        from .midi import ChannelMap
        if watch:
            fail("--watch applies to patches and songs, not to MIDI files")
        try:   # a bad voice patch fails here, in one line, before any audio starts
            ChannelMap(reg, song.summary, voice_text, str(voice_patch) if voice_patch else None)
        except SynthError as error:
            fail(str(error))
        midi = {"midi": str(file), "midi_patch": voice_text,
                "midi_patch_source": str(voice_patch) if voice_patch else None}
    link_settings = check_link(link, link_quantum, link_offset, midi=patch is None)
    watcher = Watcher(file, reg, song is not None) if watch else None
    player = Player(patch.to_text() if patch is not None and song is None else None,
                    song=song.text if patch is not None and song is not None else None,
                    source=str(file), record=str(record) if record else None, **midi,
                    on_error=lambda message: typer.echo(f"error: {message}", err=True),
                    on_warning=lambda message: typer.echo(f"warning: {message}", err=True),
                    on_applied=watcher.applied if watcher is not None else None,
                    on_link=LinkReport(), link=link_settings,
                    samplerate=samplerate, blocksize=blocksize, latency=latency, device=device,
                    executor=executor, workers=workers, safe_mode=Options.safe_mode, frames=frames,
                    clock_out=live_midi.get("clock_out"), clock_in="clock_in" in live_midi, start=start,
                    watch=watch or remote is not None or bool(midi_in or clock_in))
    control = None
    if patch is not None:   # patches and songs play from a session that OSC and saves edit
        from .control import Control, LiveSound, play_session
        sound = LiveSound()
        try:
            control = Control(play_session(reg, file, sound), lambda line: typer.echo(line, err=True))
            control.session.say = lambda line, kind="": typer.echo(line, err=True)   # a remote render runs beside
            midi_lines = start_midi(control, live_midi, serve=False)   # ports before the audio: see MidiInput.open
        except SynthError as error:
            if control is not None:
                control.close()
            fail(str(error))
    try:
        info = player.start()
    except SynthError as error:
        if control is not None:
            control.close()
        fail(str(error))
    signalled = None
    heard: dict = {}   # the engine's meters as last read, for news
    try:   # from here a signal fades out and stops like Ctrl-C in the loop
        if control is not None:
            control.session.sound.player = player
            if remote is not None:   # only now: what arrives must reach a running engine
                try:
                    for line in control.listen_osc(remote["port"], remote["host"], remote["allow"]):
                        typer.echo(line, err=True)
                except SynthError as error:
                    player.stop()
                    fail(str(error))
            control.serve_midi()
            for line in midi_lines:
                typer.echo(line, err=True)
        typer.echo(f"playing {file} on device {info['device']} at {samplerate} Hz, block {blocksize}, "
                   f"output latency {info['latency_ms']:.1f} ms" + ("" if duration else "; Ctrl-C to stop"),
                   err=True)
        look = time.monotonic() + METER_EVERY
        while not player.wait(0.1):
            raise_if_signalled()
            if watcher is not None:
                watcher.poll(control)
            if time.monotonic() >= look:
                heard = tell_news(heard, player.meters(timeout=METER_EVERY))
                look = time.monotonic() + METER_EVERY
    except KeyboardInterrupt:
        pass
    except SystemExit as stop:   # SIGTERM or SIGHUP: stop as cleanly as for Ctrl-C
        signalled = stop
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):   # a second signal must not cut the fade
        signal.signal(number, signal.SIG_IGN)
    if control is not None:
        control.close()
    final = player.stop()
    tell_news(heard, final)
    xruns = final.get("xruns", 0)
    played = final.get("played", 0) * blocksize
    if final.get("length"):   # the piece ended within its last block; the rest of that block was silence
        played = min(played, final["length"])
    typer.echo(f"stopped: {played / samplerate:.2f} s played, {xruns} xrun"
               f"{'' if xruns == 1 else 's'}" + (f", recorded to {player.take.path}"
                                                  if player.take is not None and not player.take.failed else ""),
               err=True)
    if signalled is not None:
        raise signalled
    if player.lost is not None:
        typer.echo(f"error: {player.lost}", err=True)
        raise typer.Exit(1)
    if player.record_failed or player.broke:   # said when it happened
        raise typer.Exit(1)


#: Seconds between `synth play`'s looks at the engine's meters for news.
METER_EVERY = 0.5


def tell_news(before: dict, meters: dict) -> dict:
    """Print what changed for the worse since ``before`` (a module that
    failed or was quarantined, a replaced worker); returns the meters to
    compare the next reading with (``before`` if none came)."""
    from .audio.news import news
    if not meters:
        return before
    for line in news(before, meters):
        typer.echo(f"warning: {line}", err=True)
    return meters


@app.command("help")
def help_topic(topic: Optional[str] = typer.Argument(None, metavar="TOPIC", help="A command or a module type.")) -> None:
    """Show the reference for a command or a module type (the text of docs/, plain)."""
    from .errors import SynthError
    from .language import COMMANDS
    from .reference import topic as reference_topic
    from .repl.commands import REPL_COMMANDS
    reg = registry()
    if topic is None:
        typer.echo("commands: " + ", ".join(COMMANDS))
        typer.echo("REPL commands: " + ", ".join(REPL_COMMANDS))
        typer.echo("modules: " + ", ".join(sorted(reg.types)))
        typer.echo("`synth help NAME` for one of them; `synth COMMAND --help` for the synth command line")
        return
    try:   # wrapped to a terminal; a pipe gets whole lines
        typer.echo(reference_topic(topic, reg, width=terminal_width()))
    except SynthError as error:
        fail(str(error))
    shell = {c.name or c.callback.__name__ for c in app.registered_commands}
    if topic in REPL_COMMANDS and topic not in COMMANDS and topic in shell:
        typer.echo(f"(That is the REPL's `{topic}`; for the command line: synth {topic} --help)")


@app.command()
def graph(
    file: Path = typer.Argument(..., metavar="FILE", help="A patch or song file."),
    output: Path = typer.Option(..., "-o", "--output", help="The picture: .svg, .png, .pdf (needs Graphviz) or .dot; "
                                "its .dot source is written beside it too."),
) -> None:
    """Draw the patch: modules as boxes with their ports, cables as arrows
    (dashed: a cable that closes a loop and so carries one block of delay)."""
    from .engine.schedule import topological_order
    from .errors import SynthError, check_output
    from .graph import SUFFIXES, write_graph
    try:
        check_output(output, SUFFIXES, "-o")
    except SynthError as error:
        fail(str(error))
    for made in dict.fromkeys((output, output.with_suffix(".dot"))):   # a patch named fp.dot was drawn over
        if made.exists() and file.exists() and os.path.samefile(made, file):
            fail(f"-o {output}: that would write {made}, which is {file} itself: name the picture otherwise")
    patch, _ = load_source(file, registry())
    try:
        written = write_graph(patch, output, topological_order(patch)[1])
    except SynthError as error:
        fail(str(error))
    typer.echo("wrote " + ", ".join(map(str, written)), err=True)


def check_link(on: bool, quantum: float, offset_ms: float, midi: bool) -> dict | None:
    """--link and its settings: None when off; a missing binding is one
    line saying what to install, before any sound."""
    if not on:
        return None
    import math
    from .errors import SynthError
    from .link import check_quantum, load_binding
    if midi:
        fail("--link plays patches and songs on the session's beat; a MIDI file keeps its own tempo")
    if not (math.isfinite(offset_ms) and abs(offset_ms) <= 1000):
        fail(f"--link-offset must be -1000..1000 ms, got {offset_ms:g}")
    try:
        check_quantum(quantum)
        load_binding()
    except SynthError as error:
        fail(str(error))
    return {"quantum": quantum, "offset": offset_ms / 1e3}


class LinkReport:
    """Prints the Link session's peers and tempo on joining and whenever they change."""

    def __init__(self) -> None:
        self.last: dict | None = None

    def __call__(self, news: dict) -> None:
        from .link import news_line
        typer.echo(news_line(news, self.last), err=True)
        self.last = news


def voice_patch_text(path: Path | None, is_midi: bool) -> str | None:
    """The text of ``--patch`` (a MIDI file's voices), or None: MIDI's
    modules load only when it is given."""
    if path is None:
        return None
    from .errors import SynthError
    from .midi.voices import read_voice_patch
    try:
        return read_voice_patch(path, is_midi)
    except SynthError as error:
        fail(str(error))


def check_samplerate(samplerate: int) -> None:
    if not 8000 <= samplerate <= 384000:
        fail(f"--samplerate {samplerate} is out of range (8000..384000)")


def check_live_settings(executor: str, workers: int | None, latency: str, samplerate: int, blocksize: int) -> None:
    """The flags live audio shares (`play`, `repl`), refused before anything
    starts: a rate left to the engine process failed there, a traceback."""
    from .audio.engine_process import DEPTHS
    from .engine.core import check_executor
    from .errors import SynthError
    try:
        check_executor(executor, workers, live=True, name="--executor")
    except SynthError as error:
        fail(str(error))
    if latency not in DEPTHS:
        fail(f"--latency {latency!r}: choose low, normal or safe")
    check_samplerate(samplerate)
    if not 16 <= blocksize <= 8192:
        fail(f"--blocksize {blocksize} is out of range (16..8192)")


def midi_settings(midi_in: str | None, clock_in: str | None, clock_out: str | None) -> dict:
    """--midi-in, --clock-in and --clock-out as the full names of their
    ports, or a one-line failure naming the ports there are."""
    from .errors import SynthError
    from .midi.ports import find_port
    found = {}
    try:
        for key, wanted, kind in (("midi_in", midi_in, "input"), ("clock_in", clock_in, "input"),
                                  ("clock_out", clock_out, "output")):
            if wanted is not None:
                found[key] = find_port(wanted, kind)
    except SynthError as error:
        fail(f"--{key.replace('_', '-')}: {error}")
    return found


def start_midi(control, settings: dict, serve: bool = True) -> list[str]:
    """Start the MIDI inputs :func:`midi_settings` found (or only open
    them, without ``serve``); what to tell."""
    lines = []
    if "midi_in" in settings:
        lines.append(control.listen_midi(settings["midi_in"], serve=serve))
    if "clock_in" in settings:
        lines.append(control.follow_clock(settings["clock_in"], serve=serve))
    if "clock_out" in settings:
        lines.append(f"sending the song's MIDI clock to '{settings['clock_out']}'")
    return lines


def osc_settings(port: int | None, host: str, allow: str | None) -> dict | None:
    """--osc, --osc-host and --osc-allow, checked; None without --osc."""
    import ipaddress
    if port is None:
        if allow or host != "127.0.0.1":
            fail("--osc-host and --osc-allow need --osc PORT")
        return None
    if not 0 < port < 65536:
        fail(f"--osc {port}: a UDP port is 1..65535")
    clients = [a.strip() for a in allow.split(",") if a.strip()] if allow else None
    for client in clients or ():
        try:
            ipaddress.ip_address(client)
        except ValueError:
            fail(f"--osc-allow: '{client}' is not an IP address")
    return {"port": port, "host": host, "allow": clients}


def applied_line(file: Path, bar: int | None, when: float) -> str:
    """What `play` says when the engine takes a new version of the file; the
    file may be gone by then (moved, or deleted after the save)."""
    line = f"applied {file}" + (f" at bar {bar}" if bar else "")
    try:
        return line + f", {1e3 * (when - file.stat().st_mtime):.0f} ms after the save"
    except OSError:
        return line


class Watcher:
    """--watch: on every save, check the whole file first; a good one goes
    to the engine (it takes over at the next bar), a bad one is reported
    and the old version plays on untouched."""

    def __init__(self, path: Path, reg, is_song: bool) -> None:
        import threading
        self.path, self.reg, self.is_song = path, reg, is_song
        self.stamp = self._stamp()
        self.missing = 0   # polls in a row that found no file
        self.empty = 0     # polls in a row that found it empty
        # Saves sent whose "applied" the engine has yet to report: OSC edits
        # reload the patch too, and theirs are not a save's.
        self.unconfirmed = 0
        self._counting = threading.Lock()

    def _stamp(self):
        try:
            info = self.path.stat()
            return info.st_mtime_ns, info.st_size
        except OSError:
            return None

    def poll(self, control) -> None:
        from .engine.schedule import compile_patch
        from .errors import SynthError
        from .patch import decode_source
        stamp = self._stamp()
        if stamp is None:
            # Said once, and only when gone at two polls in a row: an editor
            # that saves by renaming leaves no file for a moment.
            self.missing += 1
            if self.missing == 2 and self.stamp is not None:
                self.stamp = None
                typer.echo(f"warning: {self.path} is gone; the last version plays on, "
                           f"and a file saved there again is played", err=True)
            return
        self.missing = 0
        if stamp == self.stamp:
            return
        if stamp[1] == 0 and self.empty == 0:   # an editor that empties the file, then writes it
            self.empty = 1
            return
        self.empty = 0
        self.stamp = stamp
        try:
            try:
                saved = decode_source(self.path.read_bytes(), self.path)
            except OSError:
                return   # gone again since the stat: the next poll says so
            text, patch, song = read_file(self.path, self.reg, text=saved)
            if not text.strip():
                raise SynthError("the file is empty", source=str(self.path))
            if (song is not None) != self.is_song:
                raise SynthError("a file being played cannot turn from a patch into a song or back",
                                 source=str(self.path))
            compile_patch(patch)
            self._count(+1)   # before it is sent: the engine's answer may come first
            try:   # through the session, so OSC edits and saves meet in one model
                note = control.reload(self.path, text)
            except SynthError:
                self._count(-1)
                raise
            if note:
                typer.echo(f"warning: {self.path}: {note}", err=True)
            if note is None:   # comments, or undone back to what plays (a broken save fixed)
                self._count(-1)
                typer.echo(f"{self.path}: nothing that plays changed; nothing to apply", err=True)
            elif control.session.glided:   # no reload, so no answer to wait for
                self._count(-1)
                typer.echo(f"applied {self.path}: parameter changes glide in now", err=True)
        except SynthError as error:
            typer.echo(f"error: {error} (still playing the last good version)", err=True)

    def _count(self, change: int) -> bool:
        """Count a save sent (+1) or answered (-1); False when none was due."""
        with self._counting:
            if self.unconfirmed + change < 0:
                return False
            self.unconfirmed += change
            return True

    def applied(self, bar: int | None, when: float) -> None:
        """The engine took a new version: say so when it was a save's."""
        if self._count(-1):
            typer.echo(applied_line(self.path, bar, when), err=True)


midi_app = typer.Typer(help="MIDI ports (files play with `synth play FILE.mid`).", no_args_is_help=True)
app.add_typer(midi_app, name="midi")


@midi_app.command("ports")
def midi_ports(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List MIDI inputs and outputs (mido's backend; MIDO_BACKEND picks it)."""
    from .errors import SynthError
    from .midi.ports import list_ports
    try:
        found = list_ports()
    except SynthError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    typer.echo(f"backend: {found['backend']}")
    for label in ("inputs", "outputs"):
        typer.echo(f"{label}: " + (", ".join(found[label]) if found[label] else "none"))


@app.command()
def devices(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List audio host APIs and output devices; * marks the default."""
    from .audio.devices import describe, host_apis, outputs
    from .errors import SynthError
    try:
        apis, found = host_apis(), outputs()
    except SynthError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps({"host_apis": apis, "outputs": found}, indent=2))
        return
    typer.echo("host APIs: " + ", ".join(f"{a['name']} ({a['devices']} devices)" for a in apis))
    if not found:
        typer.echo("no output devices: start a sound server (JACK, PulseAudio, PipeWire), "
                   "or render to a file with `synth render`")
    for device in found:
        typer.echo(describe(device))


@app.command()
def bench(
    file: Optional[Path] = typer.Argument(None, metavar="FILE", help="A patch file (default: the reference patch)."),
    voices: int = typer.Option(32, "--voices", help="Voices of the reference patch when no file is given."),
    seconds: float = typer.Option(3.0, "--seconds", help="Seconds of audio per measurement."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Workers for threads/processes."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Measure inline, threads and processes on this machine and patch, at
    256 and 1024 samples, and recommend an executor."""
    from .bench import compare, recommend, reference_patch
    from .engine.core import check_executor
    from .errors import SynthError
    try:
        check_executor("processes", workers)
    except SynthError as error:
        fail(str(error))
    if not 1 <= voices <= 1024:
        fail(f"--voices {voices} is out of range (1..1024)")
    if not 0.1 <= seconds <= 600:   # also refuses nan and inf
        fail(f"--seconds {seconds} is out of range (0.1..600)")
    reg = registry()
    if file is None:
        text, notes, label = reference_patch(voices), voices, f"reference patch, {voices} voices"
    else:   # a song is measured by its patch: the notes' timing is not what is compared
        text, notes, label = load_source(file, reg)[0].to_text(synced=False), 0, str(file)
    try:
        results = compare(reg, text, seconds, workers=workers, notes=notes)
    except SynthError as error:
        fail(str(error))
    best = recommend(results)
    if as_json:
        typer.echo(json.dumps({"patch": label, "results": [r.__dict__ for r in results],
                               "recommended": best.__dict__}, indent=2))
        return
    typer.echo(f"{label}: {seconds:g} s of audio per run, real-time factor (higher is faster)")
    typer.echo(f"{'executor':<10} {'block':>6} {'real-time':>10} {'speed-up':>9}")
    for r in results:
        typer.echo(f"{r.executor:<10} {r.blocksize:>6} {r.realtime:>9.1f}x {r.speedup:>8.2f}x")
    typer.echo(f"recommended: --executor {best.executor} at --blocksize {best.blocksize}")


def report_faults(engine) -> None:
    from .audio.news import faults_of_a_render
    for line in faults_of_a_render(engine.module_stats()):
        typer.echo(f"warning: {line}", err=True)


class Progress:
    """A progress bar on stderr that appears only for renders longer than a
    second and only on a terminal, with the time left."""

    def __init__(self, quiet: bool) -> None:
        import time
        self.enabled = not quiet and sys.stderr.isatty()
        self.start = time.monotonic()
        self.shown = False

    def update(self, fraction: float) -> None:
        import time
        elapsed = time.monotonic() - self.start
        if not self.enabled or (elapsed < 1.0 and not self.shown) or fraction <= 0:
            return
        self.shown = True
        left = elapsed * (1 - fraction) / fraction
        bar = "#" * int(fraction * 30)
        sys.stderr.write(f"\r[{bar:<30}] {fraction * 100:5.1f}%  {left:5.1f} s left ")
        sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


#: The standard streams (0, 1, 2) that were a terminal when synth started.
_terminal: tuple[int, ...] = ()
#: The last SIGTERM or SIGHUP received, 0 for none: its exception can be
#: lost on the way (see raise_if_signalled), the number cannot.
_signalled = 0


def handle_signals() -> None:
    """Let SIGTERM and SIGHUP unwind like Ctrl-C (see _terminate)."""
    import signal
    global _terminal
    _terminal = tuple(fd for fd in (0, 1, 2) if os.isatty(fd))
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


def _terminate(signum, frame) -> NoReturn:
    """SIGTERM and SIGHUP (the terminal closed) unwind like Ctrl-C, so
    engines close, workers stop and shared memory is unlinked.

    After a hang-up the terminal is gone and every write to it fails with
    EIO: the REPL's last redraw and its goodbye then ended in tracebacks,
    in the log a redirected stderr kept. The streams that were the
    terminal now write to /dev/null, and a redirected one still works."""
    import signal

    from .errors import Terminated
    global _signalled
    _signalled = signum
    if signum == signal.SIGHUP:
        forget_terminal()
    raise Terminated(128 + signum)


def raise_if_signalled() -> None:
    """Raise Terminated again for a signal whose exception was lost: code
    that catches everything (a plugin's hook, say) swallows it, and raised
    inside an import, importlib turns it into a KeyError of its own lock.
    A SIGTERM that `synth play` swallowed so while it started left it
    playing for good."""
    if _signalled:
        from .errors import Terminated
        raise Terminated(128 + _signalled)


def forget_terminal() -> None:
    """Point the streams that were the terminal at /dev/null: it hung up."""
    if _terminal:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in _terminal:
            os.dup2(null, fd)
        os.close(null)


def main() -> None:
    handle_signals()
    if all(arg == "--safe-mode" for arg in sys.argv[1:]):   # bare `synth`: the REPL
        sys.argv.append("repl")
    try:
        app(prog_name="synth")   # also under `python -m synthcli`: its help and errors name the command to type
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        leave(130)
    except SystemExit as done:
        leave(done.code)
    except BaseException:
        if not _signalled:
            raise
        leave(128 + _signalled)   # the signal's exception, turned into another on its way (see raise_if_signalled)


def leave(code) -> NoReturn:
    """End the process without the interpreter's teardown when nothing
    needs it: freeing the objects of numpy and the engine one by one took
    25-30 ms after every render, a tenth of rendering a short song, where
    the OS reclaims the memory at once. Exit handlers still run (PortAudio,
    MIDI ports) and the standard streams are flushed; while another thread
    runs, the normal exit waits for it as always."""
    import atexit
    import threading
    if threading.active_count() > 1:
        sys.exit(code)
    if code is None or isinstance(code, int):
        status = code or 0
    else:   # sys.exit("message"), as Python itself reports it
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:   # a closed pipe (`synth modules | head`): let Python report it as usual
        sys.exit(status)
    os._exit(status)


if __name__ == "__main__":
    main()
