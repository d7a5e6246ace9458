"""The REPL in a terminal: a prompt_toolkit PromptSession around a Session.

The prompt comes up before the audio (the engine starts in the
background), lines from other threads (the engine's news) print above
the prompt through ``patch_stdout``, and nothing the musician types can
end the REPL except ``quit`` and Ctrl-D: errors are one red line, and even
a fault of the REPL itself is one line (its traceback goes to a log).
"""
from __future__ import annotations

import errno
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from ..control import Control
from ..errors import SynthError
from . import journal as journals
from . import scope, views
from .completion import ReplCompleter
from .lexer import ReplLexer
from .session import Quit, Session
from .sound import POLL, Sound
from .toolbar import Toolbar

STYLE = Style.from_dict({
    "prompt": "bold",
    "command": "ansicyan bold",
    "repl": "ansimagenta bold",
    "unknown": "ansired underline",
    "type": "ansigreen",
    "module": "ansiyellow",
    "port": "ansibrightyellow",
    "param": "ansibrightblue",
    "number": "ansibrightcyan",
    "value": "ansigreen",
    "string": "ansigreen",
    "comment": "ansibrightblack italic",
    "bottom-toolbar": "noreverse bg:#262626 #d0d0d0",
    "toolbar.play": "bg:ansigreen ansiblack bold",
    "toolbar.stop": "bg:#4e4e4e #ffffff",
    "toolbar.note": "#a8a8a8",
    "toolbar.alarm": "bg:ansired ansiwhite bold",
})
#: How each kind of line is printed (ANSI SGR), above the prompt or below a command.
COLOURS = {"error": "31", "warning": "33", "note": "2"}
PROMPT = [("class:prompt", "synth> ")]
#: Journal entries that fail on resume said one by one (a plugin gone
#: since fails every edit of its modules).
FAILED_SHOWN = 5


def say(text: str, kind: str = "") -> None:
    """Print from any thread: inside ``patch_stdout`` the line goes above
    the prompt without breaking what is being typed."""
    colour = COLOURS.get(kind) if sys.stdout.isatty() else None   # no escapes in a file or a pipe
    print(f"\x1b[{colour}m{text}\x1b[0m" if colour else text, flush=True)


def show_scope(control: Control, tap, title: str, samplerate: float) -> str:
    with control.unlocked():   # MIDI keys, knobs and OSC play on while it is up
        return scope.show(tap, title, samplerate)


def run(file: Path | None, resume: bool, settings: dict, osc: dict | None = None, midi: dict | None = None) -> int:
    """Run the REPL until quit; a SynthError before it starts (nothing to
    resume, an OSC port taken) is the caller's to report. ``osc`` holds
    ``port``, ``host`` and ``allow`` to listen for OSC from the start;
    ``midi`` the MIDI ports to play from and follow (``synth repl
    --midi-in``, see :func:`synthcli.cli.midi_settings`)."""
    from ..plugins import load_registry
    directory = journals.state_dir()
    resumed = journals.latest(directory) if resume else None
    entries = journals.read(resumed) if resumed is not None else []
    registry = load_registry(safe_mode=settings["safe_mode"])
    with patch_stdout(raw=True):
        for problem in registry.problems:
            say(f"warning: {problem}", "warning")
        try:
            journal = journals.Journal(directory)
            history = FileHistory(str(directory / "history"))
        except OSError as error:
            say(f"no journal and no history: cannot write {directory} ({error.strerror})", "warning")
            journal, history = None, InMemoryHistory()
        sound = Sound(settings, say)
        session = Session(registry, sound, journal)
        control = Control(session, lambda line: say(line, "warning"))
        if osc is not None:
            for line in control.listen_osc(osc["port"], osc["host"], osc["allow"]):
                say(line, "warning" if line.startswith("warning") else "note")
        session.scope = lambda tap, title: show_scope(control, tap, title, settings["samplerate"])
        session.say = say
        session.columns = lambda: shutil.get_terminal_size().columns
        if resumed is not None:
            failed = session.replay(entries)
            for number, why in failed[:FAILED_SHOWN]:
                say(f"warning: journal entry {number} fails now, and changes nothing: {why}", "warning")
            if len(failed) > FAILED_SHOWN:
                say(f"warning: {len(failed) - FAILED_SHOWN} more journal entries fail now", "warning")
            say(f"resumed {resumed} ({len(entries)} journal entries): "
                f"{views.summary(session.patch, session.timeline)}", "note")
        elif file is not None:
            try:
                note = session.load(file)
            except SynthError as error:
                say(f"error: {error}", "error")
            else:
                if note:
                    say(note, "warning")
        if midi:   # after the patch is there: the line says whether it has a note source for the keys
            from ..cli import start_midi
            for line in start_midi(control, midi):
                say(line, "note")
        try:
            sound.start(session.engine_state, session.heard_from_now)
            status = loop(control, sound, history, directory)
        finally:
            # A second hangup or Ctrl-C must not cut the stop short and leave
            # the engine playing for a REPL stuck in its exit. Ignored before
            # OSC and MIDI close, too: closing a terminal sends two hang-ups
            # close together, and one raised out of control.close() skipped
            # the engine's stop.
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_IGN)
            take = sound.recording()
            try:
                control.close()
            finally:
                final = sound.stop()
                if journal is not None:
                    session.flush_knobs()
                    journal.close()
        if final:
            blocks = final.get("played", 0)
            say(f"stopped: {blocks * settings['blocksize'] / settings['samplerate']:.1f} s played, "
                f"{final.get('xruns', 0)} xruns", "note")
        if take is not None and take.thread is not None and take.failed is None:
            say(f"recorded {take.path} ({take.seconds:.2f} s)", "note")
    return status


def _end_screens_on_signals() -> None:
    """SIGTERM and SIGHUP end the REPL as elsewhere (cli._terminate), but
    one that comes while prompt_toolkit runs the screen (the prompt, the
    scope) asks it to end that screen with Terminated, from its event
    loop: raised in the middle of the loop's own work, it now and then
    left the loop spinning at 100 % CPU for ever, cancelling its tasks
    on a terminal that had hung up."""
    from prompt_toolkit.application import get_app_or_none

    from ..cli import _terminate, forget_terminal
    from ..errors import Terminated

    def stop(app, code: int) -> None:
        if app.future is not None and not app.future.done():
            app.exit(exception=Terminated(code))

    def handler(signum, frame) -> None:
        app = get_app_or_none()
        if app is None or not app.is_running or app.loop is None or app.loop.is_closed():
            _terminate(signum, frame)   # raises: no screen to end
        if signum == signal.SIGHUP:
            forget_terminal()
        app.loop.call_soon_threadsafe(stop, app, 128 + signum)

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, handler)


def loop(control: Control, sound: Sound, history, directory: Path) -> int:
    """Carry out each line until quit or the input ends; the exit status.
    Lines come from the prompt in a terminal, else as they are read
    (`synth repl < cmds.txt`: prompt_toolkit read nothing from a file and
    the REPL quit at once, in silence), where a line that fails is named by
    its number and makes the status 1 (the lines after it still run)."""
    scripted = not sys.stdin.isatty()
    failed = False
    for number, text in enumerate(_read(sys.stdin) if scripted else _prompted(control, sound, history), start=1):
        done = _carry_out(control, text, directory, f"line {number}: " if scripted else "")
        if done is None:
            break
        failed = failed or (scripted and not done)   # at a prompt, a typo was put right by the next line
    return 1 if failed else 0


def _read(lines) -> Iterator[str]:
    for line in lines:
        yield line.rstrip("\r\n")


def _prompted(control: Control, sound: Sound, history) -> Iterator[str]:
    session = control.session
    prompt = PromptSession(
        PROMPT, style=STYLE, history=history, auto_suggest=AutoSuggestFromHistory(),
        completer=ReplCompleter(session), complete_while_typing=False, lexer=ReplLexer(session.registry),
        bottom_toolbar=Toolbar(session, sound, time.monotonic), refresh_interval=POLL,
        prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ")
    _end_screens_on_signals()
    while True:
        try:
            yield prompt.prompt()
        except KeyboardInterrupt:     # Ctrl-C: the line is dropped, nothing else
            continue
        except EOFError:              # Ctrl-D
            return
        except OSError as error:      # the terminal hung up under the prompt's redraw
            if error.errno != errno.EIO:
                raise
            from ..cli import forget_terminal
            forget_terminal()         # before SIGHUP's own handler may have
            return


def _carry_out(control: Control, text: str, directory: Path, where: str) -> bool | None:
    """One line: True if it went through, False if it failed (said,
    prefixed with ``where``), None to quit."""
    try:
        shown = control.execute(text)
    except Quit:
        return None
    except SynthError as error:
        say(where + error.typed(text), "error")
        return False
    except KeyboardInterrupt as stopped:   # a render's says what its file holds
        say(str(stopped) or "interrupted", "warning")
        return True
    except Exception as error:    # a fault of ours: report it, keep the session
        log = directory / "repl-errors.log"
        try:
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"--- {time.ctime()}: {text!r}\n{traceback.format_exc()}")
        except OSError:
            log = None
        say(where + f"internal error: {type(error).__name__}: {error}" + (f" (traceback in {log})" if log else ""),
            "error")
        return False
    if shown:
        say(shown)
    return True
