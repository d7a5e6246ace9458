"""Scales and chords by name: the music theory that patterns (``scale=``,
``c4'maj``) and the ``quant`` module share, so a scale means the same
notes wherever it is named; drums by name; and note lengths, which tie
a delay's time or an lfo's rate to the tempo."""
from __future__ import annotations

import re
from fractions import Fraction


def note_hz(midi: float) -> float:
    """A MIDI note's equal-tempered frequency, A4 (69) at 440 Hz: C4 comes
    out as ``api.C4_HZ`` to the last bit, so a parameter set to ``c4`` and
    a note source's C4 (pitch CV 0) play the same frequency."""
    return 440.0 * 2.0 ** ((midi - 69) / 12)


#: General MIDI percussion notes (channel 10) by the short names drum
#: machines and Tidal/Strudel give them: a pattern of a `drums` kit, or of
#: a drum machine on MIDI channel 10, reads "bd sd, hh*8" as a drummer
#: would, where "c2 d2, fs2*8" asked for the GM map by heart.
DRUMS = {"bd": 36, "rim": 37, "sd": 38, "sn": 38, "cp": 39, "hh": 42, "lt": 45, "oh": 46, "mt": 47,
         "cr": 49, "ht": 50, "rd": 51}


#: A song's tempo (quarter notes a minute) until it says otherwise, a new
#: Link session's, and the one a patch without a song keeps time by.
DEFAULT_TEMPO = Fraction(120)

#: A note length as musicians write it: a fraction of a whole note, plain,
#: dotted (``d``, half as long again) or triplet (``t``, two thirds).
NOTE_LENGTH = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})([dt]?)")
_LENGTH_FACTOR = {"": Fraction(1), "d": Fraction(3, 2), "t": Fraction(2, 3)}


def note_length(text: str) -> Fraction | None:
    """``text`` as a note length in whole notes (``1/4`` is 1/4, ``1/8d``
    3/16), or None when it is not one."""
    match = NOTE_LENGTH.fullmatch(text)
    if match is None:
        return None
    return Fraction(int(match[1]), int(match[2])) * _LENGTH_FACTOR[match[3]]


def note_seconds(whole: Fraction, tempo: Fraction) -> Fraction:
    """How long ``whole`` whole notes last at ``tempo`` quarter notes a minute."""
    return whole * 240 / tempo


#: Scales by name: the pitch classes each holds, in semitones above its root
#: (quant's scale choices, and a pattern's scale=).
SCALES = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "minpent": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole": (0, 2, 4, 6, 8, 10),
}
#: Roots as the patterns spell sharps (``cs`` for C#: ``#`` once started a comment anywhere).
ROOTS = ("c", "cs", "d", "ds", "e", "f", "fs", "g", "gs", "a", "as", "b")
#: Every other way to write a root, as note names are written (a sharp
#: ``#`` or ``s``, a flat ``b`` or ``f``, either case), with the ROOTS name
#: it stands for: ``c#``, ``db`` and ``C#`` are ``cs``.
ROOT_SPELLINGS = tuple((letter + mark, ROOTS[(semitone + shift) % 12])
                       for natural, semitone in zip("cdefgab", (0, 2, 4, 5, 7, 9, 11))
                       for letter in (natural, natural.upper())
                       for mark, shift in (("", 0), ("#", 1), ("s", 1), ("b", -1), ("f", -1))
                       if letter + mark not in ROOTS)

#: Chords by their Tidal names: semitones above the root, in order.
CHORDS = {
    **dict.fromkeys(("major", "maj"), (0, 4, 7)),
    **dict.fromkeys(("minor", "min", "m"), (0, 3, 7)),
    **dict.fromkeys(("aug", "plus"), (0, 4, 8)),
    "dim": (0, 3, 6),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    **dict.fromkeys(("five", "5"), (0, 7)),
    **dict.fromkeys(("one", "1"), (0,)),
    **dict.fromkeys(("six", "6"), (0, 4, 7, 9)),
    "m6": (0, 3, 7, 9),
    **dict.fromkeys(("major7", "maj7"), (0, 4, 7, 11)),
    **dict.fromkeys(("dom7", "seven", "7"), (0, 4, 7, 10)),
    **dict.fromkeys(("minor7", "min7", "m7"), (0, 3, 7, 10)),
    "dim7": (0, 3, 6, 9),
    "7sus2": (0, 2, 7, 10),
    "7sus4": (0, 5, 7, 10),
    "7f5": (0, 4, 6, 10),
    "m7f5": (0, 3, 6, 10),
    "7s5": (0, 4, 8, 10),
    "m7s5": (0, 3, 8, 10),
    **dict.fromkeys(("nine", "9"), (0, 4, 7, 10, 14)),
    "m9": (0, 3, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "add9": (0, 4, 7, 14),
    "9sus4": (0, 5, 7, 10, 14),
    "6by9": (0, 4, 7, 9, 14),
    "m6by9": (0, 3, 7, 9, 14),
    "7f9": (0, 4, 7, 10, 13),
    "m7f9": (0, 3, 7, 10, 13),
    **dict.fromkeys(("eleven", "11"), (0, 4, 7, 10, 14, 17)),
    "m11": (0, 3, 7, 10, 14, 17),
    "maj11": (0, 4, 7, 11, 14, 17),
    **dict.fromkeys(("thirteen", "13"), (0, 4, 7, 10, 14, 17, 21)),
    "m13": (0, 3, 7, 10, 14, 17, 21),
}
