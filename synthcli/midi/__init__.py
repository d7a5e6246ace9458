"""MIDI files: read with mido, played on a voice patch by a driver that
schedules each block's events with exact sample times (see docs/midi.md).

The names below load with the first use of each: a patch or song file
asks only whether it is a MIDI file (``file.is_midi_path``), and should
not pay for the driver and the General MIDI voices (3 ms of every render).
"""
import importlib

_HOMES = {
    "MidiDriver": "driver", "midi_performance": "driver",
    "MidiSong": "file", "is_midi_path": "file",
    "ChannelMap": "voices", "default_patch_text": "voices",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
