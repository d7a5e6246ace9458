"""The REPL's own commands, in one table beside the language's COMMANDS.

``help``, completion and highlighting read this table, and the session
dispatches on it, so a command added here shows up everywhere at once.
"""
from __future__ import annotations

from dataclasses import dataclass

#: What a command's argument is, so completion knows what to offer.
FILE, MODULE_OR_TYPE, COMMAND, OUTPUT = "file", "module or type", "command or type", "module output"


@dataclass(frozen=True)
class ReplCommand:
    name: str
    syntax: str
    summary: str
    argument: str | None = None
    #: May it come from afar (OSC's /synth/cmd)? Not what only makes sense at the keyboard.
    remote: bool = True

    @property
    def arity(self) -> tuple[int, int]:
        """How many arguments it takes, read off its syntax (``[X]`` is optional)."""
        words = self.syntax.split()[1:]
        return sum(not w.startswith("[") for w in words), len(words)


REPL_COMMANDS: dict[str, ReplCommand] = {c.name: c for c in (
    ReplCommand("ls", "ls", "list the modules, their parameters and cables, and the song"),
    ReplCommand("info", "info NAME", "a module or module type: ports, parameters, ranges and what is connected",
                MODULE_OR_TYPE),
    ReplCommand("help", "help [NAME]", "every command, or one command or module type in detail", COMMAND),
    ReplCommand("undo", "undo", "take back the last change to the patch or song (a pasted block is one change)"),
    ReplCommand("redo", "redo", "put back what undo took back"),
    ReplCommand("save", "save [FILE]", "write the canonical patch, or the song when there is one "
                "(default: the file last loaded or saved)", FILE),
    ReplCommand("clear", "clear", "start over from an empty patch: every module, cable, mapping and the song "
                "go (undo brings them back)"),
    ReplCommand("load", "load FILE", "replace the patch (a patch file) or the patch and the song (a song file)", FILE),
    ReplCommand("render", "render [FILE.wav|stop] [SECONDS]", "render the patch (4 s) or the song offline to a "
                "WAV file, beside the prompt; alone, say how far it is; `render stop` ends it", FILE),
    ReplCommand("record", "record [FILE.wav|stop]", "write what is played from now on to a WAV file, until "
                "`record stop`; alone, say what is being recorded", FILE),
    ReplCommand("play", "play [BAR]", "start the song from bar 1, or BAR (it plays on past its length until stop)"),
    ReplCommand("stop", "stop", "stop the song's patterns; the patch keeps sounding"),
    ReplCommand("scope", "scope NAME[.PORT]", "a live oscilloscope and spectrum of a module's output (its first "
                "unless PORT is given), until q, Esc or Enter", OUTPUT, remote=False),
    ReplCommand("link", "link on|off|quantum [BEATS]", "join or leave the Ableton Link session on the network "
                "(tempo, beat and start/stop shared with other machines; `tempo N` then sets everybody's), "
                "or show or set the beats of a phase cycle a song starts on (default 4)"),
    ReplCommand("top", "top", "CPU per module and per worker process, xruns, restarts, quarantined modules"),
    ReplCommand("devices", "devices", "the audio output devices"),
    ReplCommand("audio", "audio [restart]", "say whether the audio is on and where, or why not; `audio restart` "
                "starts the engine again (once the sound server that quit is back), where the song has come to",
                remote=False),
    ReplCommand("osc", "osc [listen|stop] [PORT]",
                "take commands over OSC on 127.0.0.1 (docs/osc.md), stop, or show where it listens", remote=False),
    ReplCommand("midi", "midi [in|stop] [PORT] [keys] [NAME]",
                "play a note source from a MIDI input (`midi in PORT [keys NAME]`), stop, or show what plays "
                "(docs/midi.md)", remote=False),
    ReplCommand("quit", "quit", "fade out and leave (Ctrl-D does the same)", remote=False),
)}
