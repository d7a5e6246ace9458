"""MIDI files: read with mido, played on a voice patch by a driver that
schedules each block's events with exact sample times (see docs/midi.md)."""
from .driver import MidiDriver, midi_performance
from .file import MidiSong, is_midi_path
from .voices import ChannelMap, default_patch_text

__all__ = ["MidiDriver", "MidiSong", "ChannelMap", "default_patch_text", "is_midi_path", "midi_performance"]
