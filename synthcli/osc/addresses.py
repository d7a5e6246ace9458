"""The OSC address space, one row an address: the server dispatches on
this table and ``docs/osc.md`` is generated from it, so the two agree.

Argument types are OSC type tags; a row may accept several signatures
(``f|i`` is a float or an int). ``NAME`` and ``PARAM`` in a path stand for
a module and one of its parameters.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    path: str
    types: tuple[str, ...]
    summary: str
    example: str


ADDRESSES: tuple[Address, ...] = (
    Address("/synth/cmd", ("s",), "any command of the language or the REPL (`ls`, `undo`, `save FILE`...), "
            "as typed; files only inside the working directory", '/synth/cmd s "connect lfo1 f1.cutoff"'),
    Address("/synth/set", ("sf", "si", "ss"), "`set NAME.PARAM VALUE` at knob speed: a number glides over one "
            "block, a choice takes its name", "/synth/set sf f1.cutoff 1800.0"),
    Address("/synth/NAME/PARAM", ("f", "i", "s"), "the same, one address per parameter",
            "/synth/f1/cutoff f 1800.0"),
    Address("/synth/note", ("iii", "iiis", "iiii", "fff", "fffs"),
            "PITCH VELOCITY ON (1 on, 0 off) for the patch's first note source, or the one named (`s`), "
            "or MIDI channel N's source `chN` (`i`, with `synth play FILE.mid`-style voice patches)",
            "/synth/note iii 60 100 1"),
    Address("/synth/NAME/note", ("iii", "fff"), "PITCH VELOCITY ON for note source NAME",
            "/synth/kb/note iii 64 90 1"),
    Address("/synth/tempo", ("f", "i"), "the song's tempo in BPM (while it plays, from the next bar)",
            "/synth/tempo f 126.0"),
    Address("/synth/play", ("",), "start the song from bar 1", "/synth/play"),
    Address("/synth/stop", ("",), "stop the song's patterns; the patch keeps sounding", "/synth/stop"),
    Address("/synth/reply", ("i",), "send replies to this port on the sender's host; without it, errors go "
            "back to the port they came from", "/synth/reply i 57121"),
    Address("/synth/stats", ("",), "reply `/synth/stats iiii` with messages received, applied, refused, "
            "and datagrams dropped as malformed or not allowed", "/synth/stats"),
)

#: What goes back to a client.
REPLIES: tuple[Address, ...] = (
    Address("/synth/error", ("s",), "a message was refused: what went wrong, and where", ""),
    Address("/synth/result", ("s",), "what a `/synth/cmd` printed (`ls`, `info`...), to a reply port only", ""),
    Address("/synth/stats", ("iiii",), "the answer to `/synth/stats`", ""),
)
