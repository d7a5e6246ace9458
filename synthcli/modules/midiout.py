"""``midiout``: the note target a ``midiout NAME PORT`` command declares.

Patterns check their target and the engine routes notes by module, so an
external MIDI port takes part in the patch as a module that takes notes
and makes no sound; the live engine's sequencer sends its notes to the
port instead (docs/midi.md, "MIDI out from patterns").
"""
from __future__ import annotations

from ..api import Module, Param


class MidiOut(Module):
    """Silent: its notes leave through a MIDI port, not a cable (offline,
    with no port, they are dropped)."""

    type_name = "midiout"
    description = "Notes to an external MIDI output port (declared with `midiout NAME PORT [channel=N]`, not `add`)"
    params = (Param("channel", 1, 1, 16, "", integer=True, doc="MIDI channel the notes are sent on"),)
    accepts_notes = True

    def process(self, inputs, params, outputs) -> None:
        pass


MODULES = (MidiOut,)
