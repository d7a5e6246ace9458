"""Which modules play which MIDI channel: the built-in General-MIDI-style
patch, or a user's voice patch, and the names controllers act on.

Channel N (1..16) plays on modules named after it:

=================  ===========================================================
``chN``            the note source (``keys``; ``drums`` for channel 10)
``chNosc.freq``    pitch bend sets it (the patch's value stands for no bend)
``chNvol.level``   CC 7 volume and CC 11 expression scale it (its value is the
                   level at volume 100 and full expression, the GM defaults)
``chNpan.pan``     CC 10 pan sets it
=================  ===========================================================

A user patch needs only a note source; a channel with no ``chN`` of its
own plays on the first note source of the patch. Program changes pick
among :data:`PROGRAMS` in the built-in patch only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..api import C4_HZ, MAX_CHANNELS
from ..errors import SynthError
from ..patch import Patch
from .file import DEFAULT_VOLUME, DRUM_CHANNEL, loudness_controls

#: The built-in voices: each a sound source (``osc``: a vco, a supersaw, a
#: plucked string or an FM pair) with its parameters, then the same filter and
#: adsr-driven vca, so a program change is a handful of timed `set`s.
#: ``level`` is the channel's level at volume 100; ``gain``, the envelope
#: vca's, brings a string, loud only as it is struck, up to the others.
PROGRAMS = {
    "piano":   dict(osc="vco", wave="saw", pw=0.5, cutoff=2600.0, res=0.1, attack=0.002, decay=1.2, sustain=0.12,
                    release=0.35, level=0.13),
    "epiano":  dict(osc="fm", ratio=1.0, index=1.3, feedback=0.0, cutoff=6000.0, res=0.0, attack=0.002, decay=1.6,
                    sustain=0.25, release=0.3, level=0.16),
    "bells":   dict(osc="fm", ratio=3.5, index=1.6, feedback=0.0, cutoff=9000.0, res=0.0, attack=0.001, decay=2.5,
                    sustain=0.0, release=1.2, level=0.14),
    "organ":   dict(osc="vco", wave="square", pw=0.5, cutoff=3200.0, res=0.0, attack=0.005, decay=0.05, sustain=1.0,
                    release=0.05, level=0.08),
    "guitar":  dict(osc="pluck", tone=0.6, decay=2.5, cutoff=8000.0, res=0.0, attack=0.001, decay_env=3.0,
                    sustain=1.0, release=0.12, level=0.2, gain=2.5),
    "bass":    dict(osc="vco", wave="square", pw=0.5, cutoff=650.0, res=0.35, attack=0.003, decay=0.3, sustain=0.6,
                    release=0.08, level=0.18),
    "strings": dict(osc="vco", wave="saw", pw=0.5, cutoff=1700.0, res=0.05, attack=0.18, decay=0.5, sustain=0.8,
                    release=0.6, level=0.08),
    "pad":     dict(osc="supersaw", detune=0.45, mix=0.6, cutoff=2200.0, res=0.1, attack=0.3, decay=0.8,
                    sustain=0.8, release=0.9, level=0.08),
    "lead":    dict(osc="vco", wave="triangle", pw=0.5, cutoff=5000.0, res=0.2, attack=0.01, decay=0.2, sustain=0.8,
                    release=0.15, level=0.16),
}
#: General MIDI program families (eight programs each) to built-in voices,
#: and the programs that differ from their family (electric pianos, synth
#: strings).
FAMILIES = ("piano", "bells", "organ", "guitar", "bass", "strings", "strings", "lead",
            "lead", "lead", "lead", "pad", "strings", "guitar", "bells", "lead")
PROGRAM_VOICES = {4: "epiano", 5: "epiano", 50: "pad", 51: "pad"}
#: Each source's parameters that a voice sets, by module suffix; the
#: envelope's decay is ``decay_env`` where the source has a decay of its own.
SOURCE_PARAMS = {"vco": ("wave", "pw"), "fm": ("ratio", "index", "feedback"), "pluck": ("tone", "decay"),
                 "supersaw": ("detune", "mix")}
PROGRAM_PARAMS = {"flt": ("cutoff", "res"), "env": ("attack", "decay", "sustain", "release")}
#: Voices of a channel's note source: as many keys as the channel ever
#: holds at once (its sustain pedal's included), at least VOICES, at
#: most what ``keys`` has (MAX_CHANNELS). With 8 for all, a pedalled piano lost its bass:
#: the voice held longest is the one stolen (the MIDI audit).
VOICES = 8
DRUM_LEVEL = 0.5
#: Where the built-in patch puts a file's loudest moment as estimated
#: (see level_gain): -6 dBFS, which leaves the estimate's error (real
#: peaks from -4 to +3.5 dB of it on the public test files) below the
#: master's soft clip.
TARGET_PEAK = 0.5
#: Real peaks over estimated ones, on average over those files: the
#: filters and envelopes take a little off a voice's level, a chord's
#: attacks add to it.
ESTIMATE_SCALE = 1.1
#: The most the built-in patch raises a quiet file (+18 dB).
MAX_GAIN = 8.0
#: The most a channel's vca level goes to (the vca's own limit).
MAX_LEVEL = 4.0
#: The drum kit's peak at full velocity (see the drums module).
KIT_PEAK = 0.6


def level_gain(song) -> float:
    """How much the built-in patch raises a file's levels, at least 1.

    Its voices are set for sixteen busy channels at once, so a piano solo
    peaked near -26 dBFS where a full arrangement reached -5. A file's
    loudest moment is estimated from the notes that sound together, each
    at its voice's level times its velocity and its channel's volume and
    expression (as the driver turns them to gain, also as they change
    while it sounds: a swell of expression), summed as uncorrelated voices
    add (the root of the sum of squares) or as a chord struck at once does
    (half the plain sum), whichever is more."""
    programs: dict[int, int] = {}
    controls: dict[int, tuple[int, int]] = {}    # channel -> (volume, expression)
    struck: dict[tuple[int, int], float] = {}    # a sounding note: its level before its channel's gain
    sounding: dict[tuple[int, int], float] = {}  # and with it
    total = squares = loudest = 0.0

    def gain(channel: int) -> float:
        return channel_gain(*controls.get(channel, (DEFAULT_VOLUME, 127)))

    def sound(key: tuple[int, int], level: float) -> None:
        nonlocal total, squares
        gone = sounding.pop(key, 0.0)
        total, squares = total - gone + level, squares - gone * gone + level * level
        if level:
            sounding[key] = level

    for _, _, _, message in song.merged():
        kind = message.type
        if kind == "program_change":
            programs[message.channel] = message.program
        elif kind == "control_change":
            before = controls.get(message.channel, (DEFAULT_VOLUME, 127))
            controls[message.channel] = loudness_controls(before, message)
            if controls[message.channel] != before:
                for key in [k for k in struck if k[0] == message.channel]:
                    sound(key, struck[key] * gain(message.channel))
        elif kind in ("note_on", "note_off"):
            key = (message.channel, message.note)
            struck.pop(key, None)
            sound(key, 0.0)
            if kind == "note_on" and message.velocity > 0:
                voice = (DRUM_LEVEL * KIT_PEAK if message.channel == DRUM_CHANNEL
                         else PROGRAMS[program_voice(programs.get(message.channel, 0))]["level"])
                struck[key] = voice * message.velocity / 127
                sound(key, struck[key] * gain(message.channel))
        else:
            continue
        loudest = max(loudest, math.sqrt(max(squares, 0.0)), 0.5 * total)
    if loudest == 0.0:
        return 1.0
    return min(MAX_GAIN, max(1.0, TARGET_PEAK / (ESTIMATE_SCALE * loudest)))


#: Pitch bend range either way, in semitones (the General MIDI default).
BEND_RANGE = 2.0


def bent(freq: float, pitch: int) -> float:
    """``freq`` under the pitch wheel at ``pitch`` (-8192..8191)."""
    return freq * 2.0 ** (BEND_RANGE * pitch / 8192 / 12)


def pan_position(value: int) -> float:
    """CC 10 as a pan module's ``pan``: 0 hard left, 64 centre, 127 right."""
    return max(-1.0, min(1.0, (value - 64) / 63))


def channel_gain(volume: int, expression: int) -> float:
    """A channel's gain from its volume and expression controllers: each
    squared, as General MIDI's recommended curve (40 log10), and 1 at the
    power-on volume with full expression."""
    return (volume / DEFAULT_VOLUME) ** 2 * (expression / 127) ** 2


def program_voice(program: int) -> str:
    program = max(0, min(127, program))
    return PROGRAM_VOICES.get(program, FAMILIES[program // 8])


def envelope(voice: dict) -> dict:
    """The voice's adsr settings (a source with a decay of its own keeps
    the envelope's apart as ``decay_env``)."""
    return {name: voice["decay_env" if name == "decay" and "decay_env" in voice else name]
            for name in PROGRAM_PARAMS["env"]}


def channel_text(channel: int, program: int, gain: float = 1.0, held: int = 0) -> str:
    """Patch text of one channel of the built-in patch (channel from 0),
    its level raised by ``gain`` (see level_gain), for ``held`` keys at
    once (see VOICES)."""
    n = f"ch{channel + 1}"
    if channel == DRUM_CHANNEL:
        body = [f"add drums {n} voices={VOICES}", f"add vca {n}vol level={DRUM_LEVEL * gain}", f"add pan {n}pan",
                f"connect {n} {n}vol"]
    else:
        v = PROGRAMS[program_voice(program)]
        source = " ".join(f"{name}={v[name]}" for name in SOURCE_PARAMS[v["osc"]])
        env = " ".join(f"{name}={value}" for name, value in envelope(v).items())
        body = [
            f"add keys {n} voices={min(MAX_CHANNELS, max(VOICES, held))}",
            f"add {v['osc']} {n}osc {source}",
            f"add vcf {n}flt cutoff={v['cutoff']} res={v['res']}",
            f"add adsr {n}env {env}",
            f"add vca {n}amp level={v.get('gain', 1.0)}",
            f"add vca {n}vol level={v['level'] * gain}",
            f"add pan {n}pan",
            f"connect {n}.voct {n}osc.voct", f"connect {n}.gate {n}env.gate",
            f"connect {n}osc {n}flt", f"connect {n}flt {n}amp", f"connect {n}env {n}amp.gain",
            f"connect {n}amp {n}vol", f"connect {n}.velocity {n}vol.gain",
        ]
        if v["osc"] == "pluck":   # the string is plucked by the key; velocity scales the channel once
            body.append(f"connect {n}.gate {n}osc.gate")
    return "\n".join(body + [f"connect {n}vol {n}pan", f"connect {n}pan.left out.left",
                             f"connect {n}pan.right out.right"]) + "\n"


def default_patch_text(channels, programs: dict[int, int], gain: float = 1.0,
                       held: dict[int, int] | None = None) -> str:
    """The built-in patch for the channels a file plays (at least one, so
    that even a file without notes has something to load), each with
    voices for the most keys it holds at once (``held``)."""
    chosen = sorted(channels) or [0]
    return "".join(channel_text(c, programs.get(c, 0), gain, (held or {}).get(c, 0)) for c in chosen)


def read_voice_patch(path, is_midi: bool = True) -> str | None:
    """The text of ``--patch`` (a MIDI file's voice patch), or None without one."""
    from ..patch import read_source
    if path is None:
        return None
    if not is_midi:
        raise SynthError("--patch gives a MIDI file its voices; it does not apply to patches and songs")
    return read_source(path)


@dataclass
class Channel:
    """Where one channel's notes and controllers go (names None: ignored)."""

    notes: str | None = None
    osc: str | None = None
    base_freq: float = C4_HZ
    vol: str | None = None
    base_level: float = 1.0
    pan: str | None = None
    programs: bool = False


class ChannelMap:
    """The voice patch and, per channel, the modules it drives."""

    def __init__(self, registry, summary, patch_text: str | None = None, patch_source: str | None = None,
                 gain: float = 1.0) -> None:
        self.builtin = patch_text is None
        self.gain = gain
        patch = Patch(registry)
        try:
            patch.load_text(default_patch_text(summary.channels, summary.programs, gain, summary.held) if self.builtin
                            else patch_text, patch_source)
        except SynthError as error:
            raise error.at(source=patch_source)
        self.patch = patch
        sources = [name for name, inst in patch.modules.items() if inst.type.cls.accepts_notes]
        if not sources:
            raise SynthError("the voice patch has no note source: add one, e.g. `add keys ch1 voices=8` "
                             "(see docs/midi.md)", source=patch_source)
        self.channels = []
        for c in range(16):
            n = f"ch{c + 1}"
            own = n in sources
            # A program change picks a voice of the channel's own modules: a
            # channel without notes in the file has none, and leaves another
            # channel's voice alone.
            entry = Channel(notes=n if own else sources[0], programs=self.builtin and own and c != DRUM_CHANNEL)
            if own:
                entry.osc, entry.base_freq = self._param(f"{n}osc", "freq", entry.base_freq)
                entry.vol, entry.base_level = self._param(f"{n}vol", "level", entry.base_level)
                if entry.vol is not None and c in summary.controls:
                    patch.modules[entry.vol].params["level"] = min(
                        MAX_LEVEL, entry.base_level * channel_gain(*summary.controls[c]))
                entry.pan, _ = self._param(f"{n}pan", "pan", 0.0)
                if entry.pan is not None and c in summary.pans:
                    patch.modules[entry.pan].params["pan"] = pan_position(summary.pans[c])
                if entry.osc is not None and c in summary.bends:
                    patch.modules[entry.osc].params["freq"] = bent(entry.base_freq, summary.bends[c])
            self.channels.append(entry)

    def _param(self, name: str, param: str, default: float):
        inst = self.patch.modules.get(name)
        if inst is None or param not in inst.params:
            return None, default
        return name, inst.params[param]

    def program_sets(self, channel: int, program: int) -> list[tuple[str, str, float]]:
        """The ``(module, param, value)`` sets that switch a channel of the
        built-in patch to the voice of ``program``. The channel's source was
        chosen by its first program: a later program of another source
        (a guitar after a piano) brings only its filter, envelope and level."""
        n = f"ch{channel + 1}"
        voice = PROGRAMS[program_voice(program)]
        osc = self.patch.modules[n + "osc"].type.name
        values = {"osc": {name: voice[name] for name in SOURCE_PARAMS[voice["osc"]]} if voice["osc"] == osc else {},
                  "flt": {name: voice[name] for name in PROGRAM_PARAMS["flt"]}, "env": envelope(voice)}
        sets = []
        for suffix, chosen in values.items():
            cls = self.patch.modules[n + suffix].type.cls
            for name, value in chosen.items():
                sets.append((n + suffix, name, float(cls.param(name).coerce(value))))
        return sets

    def program_level(self, program: int) -> float:
        return PROGRAMS[program_voice(program)]["level"] * self.gain
