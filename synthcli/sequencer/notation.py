r"""The pattern mini-notation: a subset of TidalCycles/Strudel's, so users can
bring what they already know.

A pattern string describes one *cycle* (one bar); the steps of a sequence
share it evenly. `parse_pattern` turns the text into an immutable
`Pattern`, and `Pattern.events` lists what plays in a given
cycle as exact fractions of the bar, so a 16th note lands on an exact sample
whatever the tempo and sample rate.

Notation
--------

What plays is written `note start-end` for cycle 0, in bars.

| Notation | Meaning | Example | Plays (cycle 0) |
|---|---|---|---|
| `a b c` | steps share the bar evenly | `c3 e3 g3` | c3 0-1/3, e3 1/3-2/3, g3 2/3-1 |
| `~` | rest: a step where nothing plays | `c3 ~ e3 ~` | c3 0-1/4, e3 1/2-3/4 |
| `[a b]` | subdivide one step | `c3 [e3 g3]` | c3 0-1/2, e3 1/2-3/4, g3 3/4-1 |
| `[a,b,c]` | stack: several at once (a chord) | `[c3,e3,g3] c4` | c3, e3 and g3 0-1/2, c4 1/2-1 |
| `[a b, c d e]` | stack of sequences (a polyrhythm) | `[c3 g3, c4 c4 c4]` | c3 0-1/2, g3 1/2-1, c4 0-1/3, 1/3-2/3, 2/3-1 |
| `a, b` | a stack at the top level needs no brackets | `c2, c4*2` | c2 0-1, c4 0-1/2, 1/2-1 |
| `a*n` | play the step n times within itself | `c3*2 e3` | c3 0-1/4, 1/4-1/2, e3 1/2-1 |
| `a/n` | slow down: the step's cycle lasts n cycles | `[c3 e3 g3 b3]/2` | cycle 0: c3 0-1/2, e3 1/2-1; cycle 1: g3, b3 |
| `a?` | drop each event at random, half of them | `c5*8?` | about four of the eight, others every cycle |
| `a?p` | drop each with probability p | `c5*8?0.25` | about six of the eight |
| `[a \| b]` | choose one sequence at random, afresh each cycle | `[c3 e3 \| g3*2] c4` | c3 e3 c4, or g3 g3 c4 |
| `{a b c, d e}` | polymeter: every sequence at the first one's steps a cycle | `{c3 e3 g3, c4 d4}` | c3 e3 g3 with c4 d4 c4; cycle 1: d4 c4 d4 |
| `{a b c}%n` | polymeter at n steps a cycle | `{c3 e3 g3}%4` | c3 e3 g3 c3; cycle 1: e3 g3 c3 e3 |
| `a!n` | replicate as n steps | `c3!3 e3` | as `c3 c3 c3 e3` |
| `!` | repeat the previous step | `c3 ! e3` | as `c3 c3 e3` |
| `<a b>` | alternate: one step per cycle | `<c3 e3> g3` | cycle 0: c3 g3; cycle 1: e3 g3; cycle 2: c3 g3 |
| `_` | tie: the previous step lasts one step more | `c3 _ e3` | c3 0-2/3, e3 2/3-1 |
| `a@w` | weight: the step takes w shares | `c3@3 e3` | c3 0-3/4, e3 3/4-1 |
| `a(k,n)` | Euclidean rhythm: k hits spread over n sub-steps | `c3(3,8)` | c3 0-1/8, 3/8-1/2, 3/4-7/8 (x..x..x.) |
| `a(k,n,r)` | the same, rotated left by r sub-steps | `c3(3,8,2)` | c3 1/8-1/4, 1/2-5/8, 3/4-7/8 (.x..x.x.) |
| `c4 c#4 db4` | note names, C4 = MIDI 60 | `c4 c#4 db4 eb3` | 60, 61, 61, 51 |
| `c e g` | a name without octave is in octave 3 | `c e` | 48, 52 |
| `60 60.5 -12` | plain numbers: MIDI notes, or parameter values | `400 800 1600` | 400, 800, 1600 |
| `a'name` | a chord on the note a, as in Tidal | `c4'maj e3'min7` | 60, 64, 67 0-1/2; 52, 55, 59, 62 1/2-1 |
| `a'name'n'i'o'dn` | chord modifiers: n notes, an inversion per `i`, open, drop | `c4'maj'ii` | 67, 72, 76 |

Modifiers (`*`, `/`, `?`, `!`, `@`, `(k,n,r)`) follow the step directly, with
no space, and combine left to right: `[c3,e3,g3]*4` is four chords a bar,
`<c3 e3>(3,8)` plays the Euclidean rhythm on c3 in even cycles and on e3 in
odd ones, `c3(3,8)*2` plays the rhythm twice a bar. `!`, `_` and `~`
are steps of their own and are written with spaces around them.

Details, following Tidal/Strudel:

* `a*n` compresses n cycles of the step into it: `<c3 e3>*2` is
  `c3 e3` every cycle. `n` may be a fraction (`c3*1.5`); a note that
  starts in a bar then sounds into the next one. `a/n` is `a*(1/n)`:
  `c3/2` is a c3 two bars long every other bar.
* `a?` drops each event of the step with probability 0.5, `a?p` with
  probability p (0 to 1), deciding afresh for every event of every
  cycle, as Strudel does, from a seeded hash of the event's time: the
  same pattern drops the same events at every play and render, and each
  `?` of a pattern has a seed of its own, so `[c5*8?, e5*8?]` are two
  different rhythms.
* `<a b c>` plays its steps one per cycle, nested ones in turn:
  `<c3 <e3 g3>>` is c3 e3 c3 g3. Inside `<...>`, `@` and `_` make a
  step last several cycles: in `<c3 _ e3>` c3 sounds for two bars
  (one event of duration 2 in cycle 0), then e3 for one.
* `_` lengthens the previous step of its own sequence: `[c3 e3] _ g3`
  stretches both c3 and e3. It has to follow a step (`_ c3` is an error),
  as does `!`.
* `a!n` makes n copies in total; a bare `a!` or `a !` one more.
* `a(k,n,r)` puts the whole step (`[c3 e3](3,8)` too) in each of the k
  hits of the Bjorklund distribution over n sub-steps (`0 <= k <= n`);
  the rotation r shifts the rhythm r sub-steps earlier (to the left, as in
  Tidal) and may be negative.
* Note names are a letter `a`-`g` (either case), any number of sharps
  `#`/`s` or flats `b`/`f`, and an octave (`-1` to `9`), MIDI
  `12 * (octave + 1) + semitone`: `c4` = 60, `c#4` = `cs4` = `db4`
  = 61, `eb3` = 51, `e3` = 52, `c-1` = 0. The octave belongs to the
  letter, as in scientific pitch: `b#3` = 60 (= c4), `cb4` = 59 (= b3).
  A bare name is octave 3, as in Strudel: `c` = c3 = 48. Names must land
  in MIDI 0-127; numbers are passed through as they are.
* Parameter patterns (`pattern f1.cutoff "400 800 1600 3200"`) take
  numbers only: note names are an error there. One of a time or a rate
  (``lengths``: a delay's `time`, an lfo's `freq`) also takes note
  lengths, `1/8`, `3/16`, `1/8d`, `1/8t` (`Event.length`), as `set`
  does; there a step slowed down is bracketed, `[0.5]/2`.
* `a'name` stacks the chord `name` on the note (or MIDI number) `a`:
  `c4'maj` is `[c4,e4,g4]`, and what follows applies to the whole chord
  (`c4'min7*4`, `<c3'maj a2'min>`). The names follow Tidal's:
  `major`/`maj`, `minor`/`min`/`m`, `aug`/`plus`, `dim`, `sus2`, `sus4`,
  `five`/`5`, `one`/`1`, `six`/`6`, `m6`, `major7`/`maj7`,
  `dom7`/`seven`/`7`, `minor7`/`min7`/`m7`, `dim7`, `7sus2`, `7sus4`,
  `7f5`, `m7f5`, `7s5`, `m7s5`, `nine`/`9`, `m9`, `maj9`, `add9`,
  `9sus4`, `6by9`, `m6by9`, `7f9`, `m7f9`, `eleven`/`11`, `m11`, `maj11`,
  `thirteen`/`13`, `m13`. Modifiers follow, each after a `'`, applied
  left to right: a number n takes the chord's first n notes, going on an
  octave up past its last (`c4'maj'5` is c4 e4 g4 c5 e5); `i` inverts
  once (the lowest note goes up an octave, or as many as put it on top),
  `ii` twice, and so on; `o` opens the voicing (its first and third notes
  an octave down, for a chord of three notes or more); `dn` drops its
  n-th note from the top an octave (`d1` the top). The notes must stay in
  MIDI 0-127. Parameter patterns take no chords.
* `[a b | c d]` plays one of its sequences each cycle, at random
  as `?` decides (a seed of its own, from the cycle's number): a choice
  is a whole sequence, never part of one. A bracket either stacks with
  `,` or chooses with `|`; to do both, bracket one inside the other.
* `{a b c, d e}` steps every sequence at the pace of the first (three
  steps a bar here, counting `@` weights and `!` copies as steps), so
  a shorter or longer one runs on across the bar line; `%n` after the
  brace sets n steps a bar for all of them. `|` is refused inside a
  brace: choose inside a `[...]` there.
* Not supported (each gives a clear error): `:` sample numbers, `.`
  grouping.
* A pattern repeats after `Pattern.period` cycles (1 unless it holds
  `<...>`, a fractional `*`, `/`, `{...}`, `?` or `|`): `<c3 e3 g3>` after 3, and a
  `?` or `|` after 65,536 of its cycles (36 hours of 4/4 at 120 BPM).
* A mistake is reported with its column inside the pattern text
  ("unbalanced '[' at 5: a closing ']' is missing", "unknown note 'h3'
  at 1").
* Limits, so no text can hang the synth or eat its memory: at most 1024
  steps per cycle (counting rests and every repeat, copy, chord note and
  Euclidean sub-step) and at most 64 levels of nesting.
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

from ..errors import SynthError, did_you_mean
from ..theory import CHORDS, DRUMS, NOTE_LENGTH, SCALES, note_hz, note_length

__all__ = ["Event", "Pattern", "parse_pattern", "parse_scale", "note_to_midi", "MAX_STEPS_PER_CYCLE", "MAX_DEPTH"]

MAX_STEPS_PER_CYCLE = 1024
"""More steps than this in one cycle is an error: a typo such as ``a*100000``
must fail at once, not stall the audio thread or fill the memory."""

MAX_DEPTH = 64
"""Brackets and modifiers nested deeper than this are an error: the parser
and the query recurse once per level."""

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#.-")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)\Z", re.ASCII)   # ASCII: float() reads other digits too
_INTEGER = re.compile(r"-?\d+\Z", re.ASCII)
#: A note length where a step starts (``lengths``): ``1/8``, ``3/16``, ``1/8d``.
_LENGTH = re.compile(NOTE_LENGTH.pattern + r"(?![\w.#-])")
_EXPONENT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+\Z")
_NOTE = re.compile(r"([a-gA-G])([#sbf]*)(-?\d+)?\Z")
_SEMITONES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_DEFAULT_OCTAVE = 3
_MAX_NUMBER_CHARS = 20
_CACHED_CYCLES = 16
_CLOSERS = {"[": "]", "<": ">", "{": "}"}
_OPENERS = {")": "(", **{closer: opener for opener, closer in _CLOSERS.items()}}
_DROP = re.compile(r"d(\d{1,2})\Z")
_UNSUPPORTED = {
    ":": "':' at {col} is not supported: patterns hold notes and numbers only",
}


@dataclass(frozen=True)
class Event:
    """One note or value of a cycle.

    Attributes
    ----------
    start : Fraction
        Onset, in bars from the start of the cycle (``0 <= start < 1``).
        Exact fractions, so a 16th note lands on an exact sample later.
    duration : Fraction
        Length in bars; more than what is left of the bar when a note is
        tied across cycles (``<c3@2 e3>``) or slowed down (``c3*0.5``).
    value : float
        A MIDI note number (names are converted) or a parameter value; the
        caller knows which, from the pattern's target.
    length : Fraction, optional
        A note length in whole notes instead of a value (a pattern of a
        time or a rate): the caller turns it into seconds or Hz at the
        tempo of its bar, so it keeps the tempo.
    """

    start: Fraction
    duration: Fraction
    value: float
    length: Fraction | None = None

    @property
    def end(self) -> Fraction:
        """Where the event stops, in bars from the start of its cycle."""
        return self.start + self.duration


# --- The tree a pattern parses into -------------------------------------------
#
# Every node answers "which onsets fall in the window [a, b) of my own time",
# where one unit of time is one of the node's cycles. ``cost`` bounds the
# steps visited for a window inside one cycle (every leaf counts, rests too),
# ``depth`` the recursion, so both are checked when the node is built;
# ``period`` is a number of cycles after which the node repeats itself.


@dataclass(frozen=True)
class _Atom:
    value: float
    col: int = field(default=0, compare=False)   # where it was written, for messages
    cost: int = 1
    depth: int = 1
    period: int = 1
    length: Fraction | None = None   # a note length (Event.length), its value then 0


@dataclass(frozen=True)
class _Rest:
    cost: int = 1
    depth: int = 1
    period: int = 1


@dataclass(frozen=True)
class _Seq:
    """Steps sharing a cycle; ``starts``/``lengths`` are fractions of it."""

    children: tuple["_Node", ...]
    starts: tuple[Fraction, ...]
    lengths: tuple[Fraction, ...]
    cost: int
    depth: int
    period: int


@dataclass(frozen=True)
class _Stack:
    children: tuple["_Node", ...]
    cost: int
    depth: int
    period: int


@dataclass(frozen=True)
class _Fast:
    """``factor`` cycles of the child per cycle; below 1 it is slowed down
    (that is what ``<...>`` is: its sequence slowed to one step a cycle)."""

    factor: Fraction
    child: "_Node"
    cost: int
    depth: int
    period: int


#: Cycles after which a ``?``'s choices repeat (a node needs a period).
RANDOM_PERIOD = 1 << 16


@dataclass(frozen=True)
class _Degrade:
    """The child's events, each dropped with probability ``amount``."""

    child: "_Node"
    amount: Fraction
    seed: int
    cost: int
    depth: int
    period: int


@dataclass(frozen=True)
class _Choose:
    """One of ``children`` each cycle, chosen at random."""

    children: tuple["_Node", ...]
    seed: int
    cost: int
    depth: int
    period: int


_Node = Union[_Atom, _Rest, _Seq, _Stack, _Fast, _Degrade, _Choose]

_MASK = (1 << 64) - 1


def _chance(t: Fraction, seed: int) -> float:
    """A number in [0, 1) that depends only on the time ``t`` (in its
    node's cycles, modulo RANDOM_PERIOD) and ``seed``: splitmix64's
    finaliser over both, so no two plays or processes differ (Python's
    own hash of a str is salted per process)."""
    t %= RANDOM_PERIOD
    x = (t.numerator * 0x9E3779B97F4A7C15 + t.denominator * 0xC2B2AE3D27D4EB4F
         + (seed + 1) * 0x165667B19E3779F9) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((x ^ (x >> 31)) >> 11) / (1 << 53)
_REST = _Rest()


def _query(node: _Node, a: Fraction | int, b: Fraction | int, t0: Fraction, scale: Fraction,
           out: list[Event]) -> None:
    """Append the events with onset in ``[a, b)`` of ``node``'s time, mapped
    to the caller's time as ``t0 + scale * t``."""
    if isinstance(node, _Atom):
        k = math.ceil(a)
        while k < b:
            out.append(Event(t0 + scale * k, scale, node.value, node.length))
            k += 1
    elif isinstance(node, _Seq):
        for k in range(math.floor(a), math.ceil(b)):
            whole = a <= k and k + 1 <= b  # the usual case, and a cheap one
            for child, begin, length in zip(node.children, node.starts, node.lengths):
                if child is _REST:
                    continue
                s = k + begin
                if whole:
                    lo, hi = k, k + 1
                else:
                    lo, hi = max(a, s), min(b, s + length)
                    if lo >= hi:
                        continue
                    lo, hi = k + (lo - s) / length, k + (hi - s) / length
                _query(child, lo, hi, t0 + scale * (s - k * length), scale * length, out)
    elif isinstance(node, _Stack):
        for child in node.children:
            _query(child, a, b, t0, scale, out)
    elif isinstance(node, _Fast):
        _query(node.child, a * node.factor, b * node.factor, t0, scale / node.factor, out)
    elif isinstance(node, _Choose):
        for k in range(math.floor(a), math.ceil(b)):
            child = node.children[int(_chance(Fraction(k), node.seed) * len(node.children))]
            _query(child, max(a, k), min(b, k + 1), t0, scale, out)
    elif isinstance(node, _Degrade):
        first = len(out)
        _query(node.child, a, b, t0, scale, out)
        out[first:] = [e for e in out[first:] if _chance((e.start - t0) / scale, node.seed) >= node.amount]


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: immutable, hashable, cheap to query.

    Attributes
    ----------
    text : str
        The pattern as written, for messages and for saving it back.
    notes : bool
        Whether note names were allowed (a note pattern) or only numbers
        (a parameter pattern).
    scale : tuple of (int, tuple of int), optional
        The root (MIDI) and steps of the scale whose degrees the numbers
        are (``scale=c3:minor``); None when they are MIDI notes or values.
    """

    text: str
    notes: bool
    root: _Node = field(repr=False, compare=False)
    scale: tuple[int, tuple[int, ...]] | None = None
    _cache: dict[int, tuple[Event, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def period(self) -> int:
        """After this many cycles the pattern plays the same again (1 unless
        it holds ``<...>`` or a fractional ``*``): how long a loop of it has
        to be to hear all of it."""
        return self.root.period

    @property
    def cost(self) -> int:
        """The most steps working out one cycle visits, rests and the notes
        a ``?`` drops included (at most MAX_STEPS_PER_CYCLE): what a cycle
        costs, which the notes it keeps do not tell."""
        return self.root.cost

    def values(self) -> dict[float, int]:
        """Every number the pattern holds, with the column of its first
        appearance: what a range check must see, where playing it through
        would take up to its period (millions of cycles) to meet them all."""
        return self._first(False)

    def lengths(self) -> dict[Fraction, int]:
        """Every note length the pattern holds, with the column of its first
        appearance: what a range check must see at each tempo."""
        return self._first(True)

    def _first(self, lengths: bool) -> dict:
        found: dict = {}
        nodes = [self.root]
        while nodes:
            node = nodes.pop()
            if isinstance(node, _Atom):
                if (node.length is not None) == lengths:
                    key = node.length if lengths else node.value
                    found[key] = min(found.get(key, node.col), node.col)
            elif isinstance(node, (_Seq, _Stack, _Choose)):
                nodes.extend(node.children)
            elif isinstance(node, (_Fast, _Degrade)):
                nodes.append(node.child)
        return found

    def events(self, cycle: int) -> list[Event]:
        """What plays in one cycle.

        Parameters
        ----------
        cycle : int
            0-based index of the cycle (bar); it matters to ``<...>``, which
            picks one step per cycle, and to events that span several bars.

        Returns
        -------
        list of Event
            Sorted by start, then value (a chord's notes from low to high).
            Starts lie in ``[0, 1)``; an event belongs to the cycle where it
            starts, even if its duration runs past the end of the bar. A new
            list each call; the last few cycles are cached, as the engine
            asks for the same ones again and again.
        """
        key = int(cycle) % self.root.period
        events = self._cache.get(key)
        if events is None:
            out: list[Event] = []
            c = Fraction(key)
            _query(self.root, c, c + 1, -c, Fraction(1), out)
            out.sort(key=lambda e: (e.start, e.value, e.duration))
            events = tuple(out)
            if len(self._cache) >= _CACHED_CYCLES:
                self._cache.clear()
            self._cache[key] = events
        return list(events)

    def __str__(self) -> str:
        return self.text


def parse_pattern(text: str, *, notes: bool = True, scale: tuple[int, tuple[int, ...]] | None = None,
                  choices: tuple[str, ...] = (), names: bool = False, hz: bool = False,
                  aliases: dict[str, str] | None = None, lengths: bool = False) -> Pattern:
    """Parse a pattern of the mini-notation (see the module documentation).

    Parameters
    ----------
    text : str
        The pattern, without its quotes.
    notes : bool
        True for note patterns: note names (``c#4``) and numbers are allowed.
        False for parameter patterns, whose values are numbers only, so a
        note name there is reported instead of silently becoming a cutoff of
        60 Hz.
    scale : tuple of (int, tuple of int), optional
        A root (MIDI) and its scale's steps (see :func:`parse_scale`): the
        pattern's numbers are then degrees of that scale, whole numbers
        (0 the root, 7 the root an octave up in a 7-note scale, -1 the
        scale's last note an octave down), and note names are refused.
    choices : tuple of str
        The names a choice parameter takes (``("off", "on")``): the
        pattern's values are those names, each standing for its index, and
        nothing else.
    aliases : dict of str to str, optional
        Other names of those choices (``Param.aliases``).
    names : bool
        Also take any name for a value (as 0): the language's parser checks
        a parameter pattern's form before the parameter is known, and the
        song checks its values against it.
    hz : bool
        A parameter pattern in Hz: a note name is its equal-tempered
        frequency (``a4`` 440), not its MIDI number.
    lengths : bool
        A pattern of a time or a rate: ``1/8`` is a note length
        (:attr:`Event.length`), not ``1`` slowed down eightfold.

    Returns
    -------
    Pattern

    Raises
    ------
    SynthError
        For anything that is not a valid pattern, or one busier than
        :data:`MAX_STEPS_PER_CYCLE`; ``col`` is the 1-based column in
        ``text`` (the caller adds the place of the string), and the message
        names it too ("unknown note 'h3' at 1").
    """
    return Pattern(text, notes, _Parser(text, notes, scale, choices, names, hz, aliases, lengths).parse(), scale)


def parse_scale(text: str) -> tuple[int, tuple[int, ...]]:
    """``ROOT:NAME`` (``c3:minor``, ``a:minpent``), as a pattern's
    ``scale=`` and Strudel write it: the root's MIDI number and the steps
    of the scale (:data:`synthcli.theory.SCALES`).

    Raises
    ------
    SynthError
        Naming the column within ``text`` of what is wrong.
    """
    root, colon, name = text.partition(":")
    if not colon or not root or not name:
        raise _fail(f"expected a scale as ROOT:NAME, like c3:minor, got '{_clip(text)}'", 1)
    midi = _note_number(root, 1)
    if midi is None:
        raise _fail(_unknown_note(root, 1), 1)
    if name not in SCALES:
        col = len(root) + 2
        raise _fail(f"unknown scale '{_clip(name)}' at {col}{did_you_mean(name, SCALES)} "
                    f"(the scales: {', '.join(SCALES)})", col)
    return midi, SCALES[name]


def note_to_midi(name: str) -> int:
    """The MIDI number of a note name: ``c4`` = 60, ``c#4`` = ``db4`` = 61,
    ``c`` = c3 = 48 (a bare name is octave 3, as in Strudel).

    Raises
    ------
    SynthError
        If ``name`` is not a note name or lies outside MIDI 0-127.
    """
    midi = _note_number(name, 1)
    if midi is None:
        raise SynthError(_unknown_note(name, 1), col=1)
    return midi


def _note_number(word: str, col: int) -> int | None:
    match = _NOTE.match(word)
    if match is None:
        return None
    letter, accidentals, octave_text = match.groups()
    if octave_text is None:
        octave = _DEFAULT_OCTAVE
    elif len(octave_text.lstrip("-")) > 2:
        raise SynthError(f"note '{_clip(word)}' at {col} is outside MIDI 0-127", col=col)
    else:
        octave = int(octave_text)
    shift = sum(1 if ch in "#s" else -1 for ch in accidentals)
    midi = 12 * (octave + 1) + _SEMITONES[letter.lower()] + shift
    if not 0 <= midi <= 127:
        raise SynthError(f"note '{_clip(word)}' at {col} is outside MIDI 0-127 (c-1 to g9)", col=col)
    return midi


def _unknown_note(word: str, col: int) -> str:
    return (f"unknown note '{_clip(word)}' at {col}: a note is a letter a-g, then "
            f"optional sharps (# or s) or flats (b or f), then an octave, like c#4 or eb3")


def _clip(word: str, limit: int = 24) -> str:
    return word if len(word) <= limit else word[:limit] + "..."


def _show(ch: str) -> str:
    return f"'{ch}'" if ch.isprintable() and ch != "'" else repr(ch)


def _exponent_hint(word: str) -> str:
    """Patterns take plain decimals only (they become exact fractions of a
    cycle); 1e3 looks like a number to anyone who writes code, so say why not."""
    return " (write it in plain digits: exponents are not taken)" if _EXPONENT.match(word) else ""


def _fail(message: str, col: int) -> SynthError:
    return SynthError(message, col=col)


def _checked(node: _Node, col: int, what: str) -> _Node:
    if node.cost > MAX_STEPS_PER_CYCLE:
        raise _fail(f"{what} at {col} makes more than {MAX_STEPS_PER_CYCLE} steps per cycle", col)
    if node.depth > MAX_DEPTH:
        raise _fail(f"{what} at {col} is nested more than {MAX_DEPTH} levels deep", col)
    return node


def _fast(factor: Fraction, child: _Node, col: int, what: str) -> _Node:
    if isinstance(child, _Fast):
        factor, child = factor * child.factor, child.child
    if factor == 1:
        return child
    # Cycle c reads the child over [c*f, (c+1)*f). With f = p/q that window
    # starts at a multiple of 1/q, at (q-1)/q past a child cycle's start at
    # most, so it touches ceil((p+q-1)/q) of the child's cycles at most (p
    # for a whole f, 1 for 1/q): the bound ceil(f)+1 refused c4*1023.5,
    # which plays 1024 steps a cycle.
    p, q = factor.numerator, factor.denominator
    cost = (p + 2 * q - 2) // q * child.cost
    if isinstance(child, _Seq) and q <= p and q <= MAX_STEPS_PER_CYCLE:
        # A sequence's cycles touched in part cost only the steps touched:
        # `{c3 e3 g3}%1024` plays 1024 steps a cycle, where whole cycles
        # made it 342 of 3 (1026) and refused it. Sped up only: a window of
        # a cycle or more touches every step, so the steps the query passes
        # over in the two cycles it touches in part are at most twice those
        # it plays; slowed down (`<...>`) it passes over all to play one.
        cost = min(cost, _touched(child, factor))
    # The same again once T*f is a whole number of the child's periods.
    span = child.period * factor.denominator
    period = span // math.gcd(factor.numerator, span)
    return _checked(_Fast(factor, child, cost, child.depth + 1, period), col, what)


def _touched(seq: _Seq, factor: Fraction) -> int:
    """The most a cycle of ``seq`` sped up by ``factor`` costs: the costs
    of the steps that the window of ``factor`` of its cycles touches, over
    every place the window can start (a multiple of ``1 / q``, with
    ``factor = p / q``), counted on a grid of whole numbers that holds
    every step's edges and those places."""
    p, q = factor.numerator, factor.denominator
    grid = math.lcm(q, *(edge.denominator for edge in seq.starts + seq.lengths))
    starts = [int(start * grid) for start in seq.starts]
    ends = [int((start + length) * grid) for start, length in zip(seq.starts, seq.lengths)]
    before = [0]   # the cost of the steps before each
    for child in seq.children:
        before.append(before[-1] + child.cost)
    n = len(starts)

    def cost_before(step: int) -> int:   # of the steps before ``step``, counted across cycles
        return step // n * seq.cost + before[step % n]

    most = 0
    for a in range(0, grid, grid // q):
        b = a + p * grid // q
        first = a // grid * n + bisect.bisect_right(ends, a % grid)                   # the first that ends after a
        last = (b - 1) // grid * n + bisect.bisect_right(starts, (b - 1) % grid) - 1   # the last that starts before b
        most = max(most, cost_before(last + 1) - cost_before(first))
    return most


def _seq(steps: list[tuple[_Node, Fraction]], col: int, what: str) -> _Node:
    if len(steps) == 1:
        return steps[0][0]
    total = sum((weight for _, weight in steps), Fraction(0))
    starts, lengths, offset = [], [], Fraction(0)
    for _, weight in steps:
        starts.append(offset / total)
        lengths.append(weight / total)
        offset += weight
    children = tuple(node for node, _ in steps)
    node = _Seq(children, tuple(starts), tuple(lengths), sum(c.cost for c in children),
                1 + max(c.depth for c in children), math.lcm(*(c.period for c in children)))
    return _checked(node, col, what)


def _stack(children: list[_Node], col: int, what: str) -> _Node:
    if len(children) == 1:
        return children[0]
    node = _Stack(tuple(children), sum(c.cost for c in children), 1 + max(c.depth for c in children),
                  math.lcm(*(c.period for c in children)))
    return _checked(node, col, what)


def _bjorklund(k: int, n: int) -> list[bool]:
    """k hits spread as evenly as possible over n steps, in Tidal's order
    (the standard Bjorklund/Toussaint necklaces: (3,8) is x..x..x.)."""
    heads: list[list[bool]] = [[True] for _ in range(k)]
    tails: list[list[bool]] = [[False] for _ in range(n - k)]
    i, j = k, n - k
    while min(i, j) > 1:
        if i > j:
            heads, tails = [h + t for h, t in zip(heads[:j], tails)], heads[j:]
            i, j = j, i - j
        else:
            heads, tails = [h + t for h, t in zip(heads, tails[:i])], tails[i:]
            j = j - i
    return [bit for group in heads + tails for bit in group]


class _Step:
    """A step of a sequence while it is being read: its node, weight and
    number of copies, and where it was written."""

    __slots__ = ("node", "weight", "copies", "col")

    def __init__(self, node: _Node, col: int, weight: Fraction = Fraction(1)) -> None:
        self.node, self.weight, self.copies, self.col = node, weight, 1, col


class _Parser:
    """Recursive descent over the characters, one method per rule."""

    def __init__(self, text: str, notes: bool, scale: tuple[int, tuple[int, ...]] | None = None,
                 choices: tuple[str, ...] = (), names: bool = False, hz: bool = False,
                 aliases: dict[str, str] | None = None, lengths: bool = False) -> None:
        self.text, self.notes, self.pos, self.depth = text, notes, 0, 0
        self.lengths = lengths
        self.scale = scale
        self.choices, self.names, self.hz = choices, names, hz
        self.aliases = aliases or {}
        self.seeds = 0   # the '?'s read so far: each gets its own

    # -- characters --------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WORD_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    # -- rules -------------------------------------------------------------

    def parse(self) -> _Node:
        self.skip_space()
        if self.pos == len(self.text):
            raise _fail("empty pattern: write at least one step (a rest is '~')", 1)
        node = self.stack(None, 0)
        if self.peek():  # the top level stops early only at a closer
            raise self.stray_closer()
        return node

    def stray_closer(self) -> SynthError:
        ch, col = self.peek(), self.pos + 1
        return _fail(f"unbalanced '{ch}' at {col}: there is no '{_OPENERS[ch]}' to close", col)

    def stack(self, opener: str | None, open_col: int) -> _Node:
        """Sequences separated by ',', up to the closer of ``opener`` (or up
        to the end of the text, or a stray closer, when it is None)."""
        closer = _CLOSERS.get(opener or "", "")
        sequences: list[_Node] = []
        totals: list[Fraction] = []   # each sequence's steps, weighed: what '{...}' lines up
        comma_col = 0
        separator = ""   # ',' stacks the sequences, '|' picks one of them each cycle
        while True:
            steps, start_col = self.sequence()
            ch, col = self.peek(), self.pos + 1
            if steps:
                sequences.append(self.finish(steps, opener == "<", open_col, start_col))
                totals.append(sum((step.weight * step.copies for step in steps), Fraction(0)))
                if separator != "|" and sum(node.cost for node in sequences) > MAX_STEPS_PER_CYCLE:
                    raise _fail(f"the sequence at {start_col} makes more than {MAX_STEPS_PER_CYCLE} "
                                f"steps per cycle", start_col)
            elif ch in (",", "|"):
                raise _fail(f"empty sequence before '{ch}' at {col}", col)
            elif comma_col:
                raise _fail(f"nothing after '{separator}' at {comma_col}", comma_col)
            elif opener is None:
                raise self.stray_closer()
            elif ch == closer:
                raise _fail(f"empty '{opener}{closer}' at {open_col}: put at least one step inside", open_col)
            if ch in (",", "|"):
                if ch == "|" and opener == "{":
                    raise _fail(f"'|' at {col} inside the '{{' at {open_col}: a polymeter stacks with ','; "
                                f"choose inside a '[...]'", col)
                if separator and ch != separator:
                    raise _fail(f"'{ch}' at {col} after '{separator}' at {comma_col}: one bracket either stacks "
                                f"(',') or chooses ('|'); bracket one of them", col)
                separator, comma_col = ch, col
                self.pos += 1
            elif opener is None:
                return self.join(sequences, separator, 1, "the pattern")
            elif ch == closer:
                self.pos += 1
                if opener == "{":
                    return self.polymeter(sequences, totals, open_col)
                return self.join(sequences, separator, open_col, f"'{opener}'")
            elif not ch:
                raise _fail(f"unbalanced '{opener}' at {open_col}: a closing '{closer}' is missing", open_col)
            else:
                raise _fail(f"mismatched '{ch}' at {col}: the '{opener}' at {open_col} is closed with "
                            f"'{closer}'", col)

    def polymeter(self, sequences: list[_Node], totals: list[Fraction], col: int) -> _Node:
        """``{a b c, d e}%n``: every sequence steps at n steps a cycle (by
        default the first one's count), so the shorter ones run on across
        the bar line: each is its sequence sped up by n over its length."""
        steps = totals[0]
        if self.peek() == "%":
            mod_col = self.pos + 1
            self.pos += 1
            word, steps = self.number("%", mod_col, "a number of steps per cycle")
            if steps <= 0:
                raise _fail(f"'%' at {mod_col} needs a number more than 0", mod_col)
            if steps > MAX_STEPS_PER_CYCLE:
                raise _fail(f"'%{word}' at {mod_col} makes more than {MAX_STEPS_PER_CYCLE} steps per cycle",
                            mod_col)
        return _stack([_fast(steps / total, node, col, "'{'") for node, total in zip(sequences, totals)],
                      col, "'{'")

    def join(self, sequences: list[_Node], separator: str, col: int, what: str) -> _Node:
        if separator != "|":
            return _stack(sequences, col, what)
        node = _Choose(tuple(sequences), self.seeds, max(c.cost for c in sequences),
                       1 + max(c.depth for c in sequences),
                       math.lcm(RANDOM_PERIOD, *(c.period for c in sequences)))
        self.seeds += 1
        return _checked(node, col, what)

    def finish(self, steps: list[_Step], alternate: bool, open_col: int, col: int) -> _Node:
        expanded = [(step.node, step.weight) for step in steps for _ in range(step.copies)]
        sequence = _seq(expanded, col, "the sequence")
        if not alternate:
            return sequence
        # <a b c> is the sequence a b c slowed down to one step per cycle.
        total = sum((weight for _, weight in expanded), Fraction(0))
        return _fast(1 / total, sequence, open_col, "'<'")

    def sequence(self) -> tuple[list[_Step], int]:
        """Steps up to a ',', a closer or the end; where the sequence began."""
        self.skip_space()
        start_col = self.pos + 1
        steps: list[_Step] = []
        total = 0
        while True:
            self.skip_space()
            ch, col = self.peek(), self.pos + 1
            if not ch or ch in ",|])>}":
                return steps, start_col
            if ch == "_":
                if not steps:
                    raise _fail(f"'_' at {col} has no step before it to lengthen", col)
                self.pos += 1
                last = steps[-1]
                if last.copies > 1:  # only the last copy of 'a!3' is lengthened
                    last.copies -= 1
                    last = _Step(last.node, last.col, last.weight)
                    steps.append(last)
                last.weight += 1
                continue
            if ch == "!":
                if not steps:
                    raise _fail(f"'!' at {col} has no step before it to repeat", col)
                self.pos += 1
                last = steps[-1]
                steps.append(_Step(last.node, col, last.weight))
                added = last.node.cost
            else:
                step = self.step()
                steps.append(step)
                added = step.node.cost * step.copies
            total += added
            if total > MAX_STEPS_PER_CYCLE:
                raise _fail(f"the step at {col} makes more than {MAX_STEPS_PER_CYCLE} steps per cycle", col)

    def step(self) -> _Step:
        col = self.pos + 1
        step = _Step(self.term(), col)
        while True:
            ch, mod_col = self.peek(), self.pos + 1
            if ch == "*":
                self.pos += 1
                word, factor = self.number("*", mod_col, "a number")
                if factor <= 0:
                    raise _fail(f"'*' at {mod_col} needs a number more than 0", mod_col)
                if factor > MAX_STEPS_PER_CYCLE:
                    raise _fail(f"'*{word}' at {mod_col} makes more than {MAX_STEPS_PER_CYCLE} "
                                f"steps per cycle", mod_col)
                step.node = _fast(factor, step.node, mod_col, f"'*{word}'")
            elif ch == "/":
                self.pos += 1
                word, factor = self.number("/", mod_col, "a number")
                if factor <= 0:
                    raise _fail(f"'/' at {mod_col} needs a number more than 0", mod_col)
                if 1 / factor > MAX_STEPS_PER_CYCLE:
                    raise _fail(f"'/{word}' at {mod_col} makes more than {MAX_STEPS_PER_CYCLE} "
                                f"steps per cycle", mod_col)
                step.node = _fast(1 / factor, step.node, mod_col, f"'/{word}'")
            elif ch == "?":
                self.pos += 1
                amount = Fraction(1, 2)
                if self.peek() in _WORD_CHARS:
                    word, amount = self.number("?", mod_col, "a probability")
                    if not 0 <= amount <= 1:
                        raise _fail(f"'?{word}' at {mod_col} needs a probability from 0 to 1", mod_col)
                node = step.node
                step.node = _checked(_Degrade(node, amount, self.seeds, node.cost, node.depth + 1,
                                              math.lcm(node.period, RANDOM_PERIOD)), mod_col, "'?'")
                self.seeds += 1
            elif ch == "!":
                self.pos += 1
                if self.peek() in _WORD_CHARS:
                    _, copies = self.number("!", mod_col, "a whole number of copies", whole=True)
                    if copies < 1:
                        raise _fail(f"'!' at {mod_col} needs at least 1 copy", mod_col)
                    step.copies += int(copies) - 1
                else:
                    step.copies += 1
                if step.copies * step.node.cost > MAX_STEPS_PER_CYCLE:
                    raise _fail(f"'!' at {mod_col} makes more than {MAX_STEPS_PER_CYCLE} steps per cycle",
                                mod_col)
            elif ch == "@":
                self.pos += 1
                _, weight = self.number("@", mod_col, "a weight")
                if weight <= 0:
                    raise _fail(f"'@' at {mod_col} needs a weight more than 0", mod_col)
                step.weight = weight
            elif ch == "(":
                step.node = self.euclid(step.node, mod_col)
            else:
                return step

    def number(self, op: str, col: int, what: str, whole: bool = False) -> tuple[str, Fraction]:
        word = self.word()
        pattern = _INTEGER if whole else _NUMBER
        if not word or not pattern.match(word):
            got = f", got '{_clip(word)}'{_exponent_hint(word)}" if word else ""
            raise _fail(f"expected {what} after '{op}' at {col}{got}", col)
        if len(word) > _MAX_NUMBER_CHARS:
            raise _fail(f"the number after '{op}' at {col} is too long", col)
        return word, Fraction(word)

    def euclid(self, node: _Node, col: int) -> _Node:
        self.pos += 1  # the '('
        args: list[int] = []
        names = ("hits", "steps", "rotation")
        while True:
            self.skip_space()
            here = self.pos + 1   # errors point at what is wrong; their text names the group's '('
            word = self.word()
            if not _INTEGER.match(word) or len(word) > _MAX_NUMBER_CHARS:
                if not word and not self.peek():
                    raise _fail(f"unbalanced '(' at {col}: a closing ')' is missing", col)
                got = f", got '{_clip(word)}'" if word else ""
                raise _fail(f"expected a whole number of {names[len(args)]} at {here} in the '(k,n,r)' opened at "
                            f"{col}{got}", here)
            args.append(int(word))
            self.skip_space()
            ch, here = self.peek(), self.pos + 1
            self.pos += 1
            if ch == ")" and len(args) >= 2:
                break
            if ch == "," and len(args) < 3:
                continue
            if not ch:
                raise _fail(f"unbalanced '(' at {col}: a closing ')' is missing", col)
            if ch == ")":
                raise _fail(f"'(' at {col} needs hits and steps: 'a(3,8)'", col)
            expected = ("','", "',' or ')'", "')'")[len(args) - 1]
            raise _fail(f"expected {expected} at {here} in the '(k,n,r)' opened at {col}, got {_show(ch)}", here)
        hits, steps = args[0], args[1]
        rotation = args[2] if len(args) == 3 else 0
        if not 1 <= steps <= MAX_STEPS_PER_CYCLE:
            raise _fail(f"'(k,n)' at {col} needs 1 to {MAX_STEPS_PER_CYCLE} steps, got {steps}", col)
        if not 0 <= hits <= steps:
            raise _fail(f"'(k,n)' at {col} needs 0 to {steps} hits, got {hits}", col)
        bits = _bjorklund(hits, steps)
        shift = rotation % steps
        bits = bits[shift:] + bits[:shift]
        if hits * node.cost + steps - hits > MAX_STEPS_PER_CYCLE:
            raise _fail(f"'({hits},{steps})' at {col} makes more than {MAX_STEPS_PER_CYCLE} steps per cycle",
                        col)
        return _seq([(node if bit else _REST, Fraction(1)) for bit in bits], col, f"'({hits},{steps})'")

    def term(self) -> _Node:
        ch, col = self.peek(), self.pos + 1
        if ch in _CLOSERS:
            if self.depth >= MAX_DEPTH:
                raise _fail(f"{_show(ch)} at {col} is nested more than {MAX_DEPTH} levels deep", col)
            self.pos += 1
            self.depth += 1
            node = self.stack(ch, col)
            self.depth -= 1
            return node
        if ch == "~":
            self.pos += 1
            return _REST
        if ch in _WORD_CHARS:
            length = _LENGTH.match(self.text, self.pos) if self.lengths else None
            if length is not None:
                self.pos = length.end()
                return _Atom(0.0, col, length=note_length(length.group()))
            atom = self.value(self.word(), col)
            return self.chord(atom, col) if self.peek() == "'" else atom
        raise self.unexpected()

    def chord(self, root: _Atom, col: int) -> _Node:
        """``root'name'modifier...``: the chord's notes, stacked."""
        if not self.notes:
            raise _fail(f"a chord at {col} is notes, but this pattern takes numbers", col)
        if self.scale is not None:
            raise _fail(f"a chord at {col} needs a note, but this pattern plays degrees of its scale", col)
        self.pos += 1   # the "'"
        name_col = self.pos + 1
        name = self.word()
        if not name:   # the error points at the quote: there may be nothing after it
            raise _fail(f"expected a chord name after \"'\" at {name_col - 1}, like c4'maj or a3'min7",
                        name_col - 1)
        if name not in CHORDS:
            raise _fail(f"unknown chord '{_clip(name)}' at {name_col}{did_you_mean(name, CHORDS)}", name_col)
        notes = list(CHORDS[name])
        while self.peek() == "'":
            self.pos += 1
            mod_col = self.pos + 1
            word = self.word()
            drop = _DROP.match(word)
            if _INTEGER.match(word) and len(word) <= 3 and 1 <= int(word) <= 128:
                size = len(notes)
                notes = [notes[k % size] + 12 * (k // size) for k in range(int(word))]
            elif word and set(word) == {"i"}:
                for _ in range(len(word)):
                    lowest, *rest = notes
                    while rest and lowest <= rest[-1]:
                        lowest += 12
                    notes = rest + [lowest]
            elif word == "o":
                if len(notes) > 2:
                    notes = sorted([notes[0] - 12, notes[1], notes[2] - 12, *notes[3:]])
            elif drop and 1 <= int(drop.group(1)) <= len(notes):
                top = sorted(notes)
                dropped = top[-int(drop.group(1))]
                notes = sorted([n for n in notes if n != dropped] + [dropped - 12])
            else:
                at = mod_col if word else mod_col - 1
                got = f", got '{_clip(word)}'" if word else ""
                raise _fail(f"expected a chord modifier at {at}{got}: a number of notes (c4'maj'5), "
                            f"i for each inversion ('ii'), o (open) or d and a note from the top "
                            f"to drop ('d1', at most 'd{len(notes)}' here)", at)
        midi = [root.value + n for n in notes]
        if not all(0 <= m <= 127 for m in midi):
            raise _fail(f"the chord at {col} reaches MIDI {max(midi, key=lambda m: abs(m - 63.5)):g}, "
                        f"outside 0-127", col)
        return _stack([_Atom(m, col) for m in midi], col, f"the chord at {col}")

    def value(self, word: str, col: int) -> _Atom:
        if self.choices:
            word = self.aliases.get(word, word)
            if word in self.choices:
                return _Atom(float(self.choices.index(word)), col)
            *others, last = self.choices
            raise _fail(f"expected {', '.join(others)}{' or ' if others else ''}{last} at {col}, "
                        f"got '{_clip(word)}'{did_you_mean(word, self.choices)}", col)
        if self.scale is not None and _NUMBER.match(word):
            return self.degree(word, col)
        if _NUMBER.match(word):
            number = float(word)
            if not math.isfinite(number):
                raise _fail(f"the number '{_clip(word)}' at {col} is too large", col)
            return _Atom(number, col)
        if word[0].isalpha():
            if self.names:
                return _Atom(0.0, col)
            if self.scale is not None:
                what = "a note name" if _NOTE.match(word) else "a drum name" if word in DRUMS else None
                if what is None:
                    raise _fail(f"expected a degree of the scale at {col} (0 is its root, 1 the next note up), "
                                f"got '{_clip(word)}'", col)
                raise _fail(f"'{_clip(word)}' at {col} is {what}, but this pattern plays degrees of its "
                            f"scale: 0 is its root, 1 the next note up", col)
            if self.hz and _NOTE.match(word):
                midi = _note_number(word, col)
                if midi is not None:
                    return _Atom(note_hz(midi), col)
            if not self.notes:
                if _NOTE.match(word):
                    raise _fail(f"'{_clip(word)}' at {col} is a note name, but this pattern takes numbers",
                                col)
                what = "a number or a note name" if self.hz else "a number"
                raise _fail(f"expected {what} at {col}, got '{_clip(word)}'", col)
            midi = DRUMS.get(word)
            if midi is None:
                midi = _note_number(word, col)
            if midi is None:
                drum = "" if word[-1].isdigit() else did_you_mean(word, DRUMS)   # h3 is a note mistyped, not hh
                raise _fail(_unknown_note(word, col) + (drum or f", or a drum ({' '.join(DRUMS)})"), col)
            return _Atom(float(midi), col)
        if word == ".":
            raise _fail(f"'.' (grouping) at {col} is not supported: use '[...]'", col)
        what = "a number or a note" if self.notes else "a number"
        raise _fail(f"expected {what} at {col}, got '{_clip(word)}'{_exponent_hint(word)}", col)

    def degree(self, word: str, col: int) -> _Atom:
        """A degree of the pattern's scale, as the MIDI note it names."""
        if not _INTEGER.match(word):
            raise _fail(f"degree '{_clip(word)}' at {col} is not a whole number: the steps of a scale are "
                        f"counted 0, 1, 2 ... (-1 below the root)", col)
        if len(word.lstrip("-").lstrip("0")) > 4:   # past MIDI by far; and int() refuses over 4300 digits
            raise _fail(f"degree {_clip(word)} at {col} lands outside MIDI 0-127", col)
        root, steps = self.scale
        octave, step = divmod(int(word), len(steps))
        midi = root + 12 * octave + steps[step]
        if not 0 <= midi <= 127:
            raise _fail(f"degree {_clip(word)} at {col} lands outside MIDI 0-127", col)
        return _Atom(float(midi), col)

    def unexpected(self) -> SynthError:
        ch, col = self.peek(), self.pos + 1
        if ch in _UNSUPPORTED:
            return _fail(_UNSUPPORTED[ch].replace("{col}", str(col)), col)
        if ch and ch in "*!@(":
            return _fail(f"{_show(ch)} at {col} must follow a step directly, with no space", col)
        if ch == ")":
            return _fail(f"unbalanced ')' at {col}: there is no '(' to close", col)
        return _fail(f"unexpected {_show(ch)} at {col}", col)
