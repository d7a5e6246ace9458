"""Songs: the patch language plus time, and the sequencer that plays them.

A song is parsed by the one parser, then checked completely before a sound
is made: every ``at`` command is tried against the patch as it will stand
at that bar, so a song that loads plays to its end. Time is kept in exact
fractions (bars, beats, seconds) and rounded to a sample only at the end,
so a note lands on the same sample whatever the block size.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..api import AllNotesOff, Module, NoteOff, NoteOn
from ..errors import SynthError, UnknownModule, did_you_mean
from ..language import At, Command, Length, Meter, Pattern, Set, Tempo, parse_text
from ..language.parser import inside
from ..patch import Patch, length_value
from ..plugins import Registry
from ..theory import DEFAULT_TEMPO, NOTE_LENGTH
from .notation import parse_pattern, parse_scale

TIME_COMMANDS = (Tempo, Meter, Length, Pattern, At)
#: A note name where a pattern on a parameter in Hz has a value: what an
#: error about that value quotes beside its frequency.
_NOTE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9#-]*")
#: After the last bar, rendering goes on until the output has been silent
#: (below SILENT) this long (the release tail), or until TAIL_MAX seconds,
#: where what still sounds fades out (see Performance).
TAIL_SILENCE = 0.25
TAIL_MAX = 10.0
#: The shortest note: a note-off sooner than this after its note-on (a MIDI
#: file's zero-length note, a pad's hit a millisecond long) is held back
#: until then, so the note is heard.
MIN_NOTE = 0.010
SILENT = 1e-4


@dataclass(frozen=True)
class Voice:
    """An active pattern: notes into a note source, or values into a parameter."""

    module: str
    param: str | None
    pattern: object            # notation.Pattern
    legato: Fraction
    velocity: float
    swing: Fraction = Fraction(1, 2)   # where an off-beat unit lands in its pair (1/2: straight)
    swing_unit: int = 16               # the unit that swings: 8ths or 16ths
    #: (line, column) of the pattern's text, where an error about a note
    #: length in it points when a later tempo takes it out of range.
    place: tuple[int, int] = field(default=(0, 0), compare=False)

    def length_value(self, patch: Patch, whole: Fraction, tempo: Fraction) -> float:
        """What a note length of the pattern sets its parameter to at
        ``tempo`` (a tempo from outside the song, Link's, cannot be
        refused, so it stops at the end of the parameter's range)."""
        param = patch.modules[self.module].type.cls.param(self.param)
        return length_value(param, whole, tempo, clamp=True)

    def check_lengths(self, patch: Patch, tempo: Fraction, blame: Command | None = None) -> None:
        """Every note length of the pattern at ``tempo``, within its
        parameter's range; else an error at the length (or at ``blame``,
        the tempo that takes it out)."""
        if self.param is None:
            return
        param = patch.modules[self.module].type.cls.param(self.param)
        for whole, col in self.pattern.lengths().items():
            shown = NOTE_LENGTH.match(self.pattern.text, col - 1).group()
            try:
                length_value(param, whole, tempo, shown=shown)
            except ValueError as error:
                line, place = (blame.line, blame.col) if blame is not None else (self.place[0],
                                                                                 self.place[1] + col - 1)
                raise SynthError(f"pattern value {error} for {self.module}.{self.param}", line=line,
                                 col=place) from None

    def swing_pair(self, quarters: Fraction) -> Fraction | None:
        """The length, in bars of ``quarters`` quarter notes, of the pairs
        of units the swing works in; None for a straight pattern."""
        return None if self.swing == Fraction(1, 2) else Fraction(8, self.swing_unit) / quarters


def swung(at: Fraction, swing: Fraction, pair: Fraction) -> Fraction:
    """A place in the bar (in bars; past 1 in a later bar) as swing moves
    it, as a drum machine's swing does: each pair of units is stretched so
    that its second unit starts at ``swing`` of the pair instead of half
    way, what lies in the first unit stretched to fill the longer part and
    what lies in the second squeezed into the rest. On-beat places stay,
    the order of events and their ends is kept, and at 2/3 the off-beats
    land on the triplet. A pair cut short by the end of the bar (8ths in
    7/8 swung by the quarter) stays straight."""
    whole = math.floor(at)
    start = math.floor((at - whole) / pair) * pair
    if start + pair > 1:
        return at
    u = (at - whole - start) / pair
    u = 2 * swing * u if u < Fraction(1, 2) else swing + (u - Fraction(1, 2)) * 2 * (1 - swing)
    return whole + start + u * pair


def playable(voices: dict, patch: Patch) -> dict:
    """The patterns that still have their target after a timed edit: a
    pattern ends with the module it plays (``at 4 remove a``), or with its
    parameter when a module of another type takes the name."""
    kept = {}
    for key, voice in voices.items():
        inst = patch.modules.get(voice.module)
        if inst is not None and (inst.type.cls.accepts_notes if voice.param is None
                                 else voice.param in inst.params):
            kept[key] = voice
    return kept


#: Seconds a patch renders for when not told how long (``synth render``,
#: the REPL's ``render``), and a song that has no length.
PATCH_SECONDS = 4.0


def is_song(commands: list[Command]) -> bool:
    return any(isinstance(c, TIME_COMMANDS) for c in commands)


class Song:
    """A checked song: the starting patch, the tempo map, the patterns and
    what happens at which bar. Bars are counted from 0 here, from 1 in files."""

    def __init__(self, registry: Registry, text: str, source: str | None = None) -> None:
        self._spans: dict[int, tuple[Fraction, Fraction]] = {}
        self.registry = registry
        self.text = text
        self.source = source
        commands = parse_text(text, source)
        self.patch = Patch(registry)
        self.patch.kind = "song"
        if source is not None:   # a sample's path starts from the song's folder
            self.patch.base = Path(source).parent
        self.tempo = DEFAULT_TEMPO
        self.meter = (4, 4)
        self.length: int | None = None
        self.voices: dict[tuple[str, str | None], Voice] = {}
        self.timed: dict[int, list[Command]] = {}
        self.changes: list[tuple[int, Fraction, tuple[int, int]]] = []
        #: (later, earlier) for each top-level `tempo`, `meter` or `length`
        #: given again, and each `at` tempo or meter given again for its bar:
        #: the later one holds, which is no error, but seldom what was meant
        #: (see cli.warn_restated).
        self.restated: list[tuple[Command, Command]] = []
        #: (line of a pattern, the command further down that ended it) for
        #: each pattern whose module a top-level edit took away: it never
        #: plays, which is no error, but seldom what was meant.
        self.ended: list[tuple[int, Command]] = []
        #: (command, "module.input", its Port) for each input an `at` edit
        #: leaves with no cable where unconnected it reads other than 0 (an
        #: adsr's gate reads high): `at 2 remove kb` left a drone to the end
        #: of the tail, no error, and seldom what was meant (cli.warn_unplugged).
        self.unplugged: list[tuple[Command, str, object]] = []
        #: Each `at` line that names a file by a relative path, as the line
        #: that names it by the absolute path it was found at (see
        #: Patch.absolute): the REPL keeps these, so its song means the
        #: same files from any folder.
        self.absolute: dict[str, At] = {}
        # What makes the song need an end: where an error about `length` points.
        self._first_timed = next((c for c in commands if isinstance(c, (Pattern, At))), None)
        stated: dict[type | tuple[int, type], Command] = {}
        try:
            for command in commands:
                if isinstance(command, At):
                    self.timed.setdefault(command.bar - 1, []).append(command.command)
                    if isinstance(command.command, (Tempo, Meter)):
                        self._state(command, (command.bar, type(command.command)), stated)
                    continue
                if isinstance(command, (Tempo, Meter, Length)):
                    self._state(command, type(command), stated)
                self._apply_now(command, self.patch, self.voices)
            self._check_timeline()
        except SynthError as error:
            raise error.at(source=source)

    # -- building --------------------------------------------------------------

    def _state(self, command: Command, key, stated: dict) -> None:
        if key in stated:
            self.restated.append((command, stated[key]))
        stated[key] = command

    def _apply_now(self, command: Command, patch: Patch, voices: dict) -> None:
        if isinstance(command, Tempo):
            self.tempo = Fraction(str(command.bpm))
            retempo(patch, command)
        elif isinstance(command, Meter):
            self.meter = (command.beats, command.unit)
        elif isinstance(command, Length):
            self.length = command.bars
        elif isinstance(command, Pattern):
            voice = self.voice(command, patch)
            voices[(voice.module, voice.param)] = voice
        else:
            patch.apply(command)
            kept = playable(voices, patch)   # a pattern ends with its module, as at a bar
            for key in [key for key in voices if key not in kept]:
                self.ended.append((voices.pop(key).place[0], command))

    def voice(self, command: Pattern, patch: Patch) -> Voice:
        """Check a pattern command against the patch it will play into."""
        target = command.target
        inst = patch.modules.get(target.module)
        if inst is None:
            raise UnknownModule(target.module, patch.modules, line=command.line, col=target.module.col)
        cls = inst.type.cls
        options = {str(k): float(v) for k, v in command.options if k != "scale"}
        scale = next((parse_scale(v) for k, v in command.options if k == "scale"), None)
        param = None
        if target.port is None:
            if not cls.accepts_notes:
                raise SynthError(f"'{target.module}' ({cls.type_name}) does not take notes; pattern a note "
                                 f"source such as keys, or a parameter as NAME.PARAM", line=command.line,
                                 col=target.module.col)
        else:
            param = cls.param(target.port)
            if param is None:
                raise SynthError(f"'{target}' is not a parameter of {cls.type_name}"
                                 f"{did_you_mean(target.port, [p.name for p in cls.params])}",
                                 line=command.line, col=target.port.col)
            if param.structural:   # a pattern sets values on samples; this one rebuilds the module
                raise SynthError(f"'{target}' shapes the module and cannot follow a pattern; "
                                 f"change it between bars with 'at BAR set {target} VALUE'",
                                 line=command.line, col=target.port.col)
        # A choice parameter's pattern names its choices, which only the module knows.
        pattern = inside(lambda: parse_pattern(command.text, notes=param is None, scale=scale,
                                               choices=param.choices if param is not None else (),
                                               aliases=dict(param.aliases) if param is not None else None,
                                               hz=param is not None and param.unit == "Hz",
                                               lengths=param is not None and param.note_lengths),
                         command.text, command.line)
        if param is not None and not param.choices:
            for value, col in sorted(pattern.values().items(), key=lambda item: item[1]):
                place = command.text.col + col - 1
                if not param.min <= value <= param.max:
                    note = _NOTE_WORD.match(command.text, col - 1)
                    shown = f"{note.group()} ({value:.6g} Hz)" if note else f"{value:.15g}"
                    raise SynthError(f"pattern value {shown} is out of range for {target}"
                                     f"{param.range_text()}", line=command.line, col=place)
                if param.integer and value != int(value):
                    raise SynthError(f"pattern value {value:.15g} is not a whole number, as {target} "
                                     f"needs", line=command.line, col=place)
        return Voice(target.module, target.port, pattern, Fraction(str(options.get("legato", 1.0))),
                     options.get("vel", 0.8), Fraction(str(options.get("swing", 0.5))),
                     int(options.get("swingunit", 16)), (command.line, command.text.col))

    def _check_timeline(self) -> None:
        """Try every timed command on the patch as it will be at its bar."""
        if self.length is None and (self.voices or self.timed):
            first = self._first_timed
            raise SynthError("this song has no `length`, so it would never end: add `length BARS`",
                             line=first.line, col=first.col)
        patch, voices = self.patch.copy(), dict(self.voices)
        tempo, meter = self.tempo, self.meter
        self.changes = [(0, tempo, meter)]
        begun: dict[tuple, int] = {}   # the bar each timed pattern starts at
        for voice in voices.values():
            voice.check_lengths(patch, tempo)
        for bar in sorted(self.timed):
            fed = {(c.dst, c.dst_port) for c in patch.cables}   # judged when the bar's edits are done
            unplugging: dict[tuple[str, str], Command] = {}
            retimed: Tempo | None = None   # the lengths at its tempo too (see retempo)
            for index, command in enumerate(self.timed[bar]):
                try:
                    if isinstance(command, Tempo):
                        tempo, retimed = Fraction(str(command.bpm)), command
                        retempo(patch, command, clamp=True)
                    elif isinstance(command, Meter):
                        meter = (command.beats, command.unit)
                    elif isinstance(command, Pattern):
                        voice = voices[(command.target.module, command.target.port)] = self.voice(command, patch)
                        voice.check_lengths(patch, tempo)
                        begun[(voice.module, voice.param)] = bar
                    else:
                        patch.apply(command)
                        moved = patch.absolute(command)
                        if moved is not command:
                            self.timed[bar][index] = moved
                            self.absolute[f"at {bar + 1} {command}"] = At(command.line, command.col, bar + 1, moved)
                        for module, port in unplugged(fed, patch):
                            unplugging.setdefault((module, port.name), command)
                        kept = playable(voices, patch)
                        # One ended in the bar it begins never plays a note, as a top-level one (see ended).
                        self.ended.extend((voices[key].place[0], command) for key in voices
                                          if key not in kept and begun.get(key) == bar)
                        voices = kept
                except SynthError as error:
                    raise self._too_early(error, bar) from None
            if retimed is not None:
                retempo(patch, retimed)
                for voice in voices.values():
                    voice.check_lengths(patch, tempo, blame=retimed)
            self.unplugged.extend((unplugging[module, port.name], f"{module}.{port.name}", port)
                                  for module, port in unplugged(fed, patch))
            if self.changes[-1][1:] != (tempo, meter):
                self.changes.append((bar, tempo, meter))

    def _too_early(self, error: SynthError, bar: int) -> SynthError:
        """``error`` of a command at ``bar``, told that the module it did
        not find comes later in the song, if it does (`at 3 add vco v`,
        then `at 2 connect v out`)."""
        if not isinstance(error, UnknownModule):
            return error
        later = min((b for b, commands in self.timed.items() if b > bar for c in commands
                     if c.verb == "add" and str(c.name) == error.module), default=None)
        if later is None:
            return error
        return UnknownModule(error.module, (), source=error.source, line=error.line, col=error.col,
                             message=f"unknown module '{error.module}' at bar {bar + 1}: the song adds it at bar {later + 1}")

    def after_the_end(self) -> list[tuple[int, int]]:
        """(line, bar counted from 1) of each `at` past the last bar: it
        plays only where play goes on past the end (--watch, --osc)."""
        if self.length is None:
            return []
        return sorted((command.line, bar + 1) for bar, commands in self.timed.items() if bar >= self.length
                      for command in commands)

    def patches(self) -> list[Patch]:
        """Every patch the song plays: its first, and each a bar's edits make."""
        return [self.patch, *(self.state_before(bar + 1)[0] for bar in self.timed)]

    def state_before(self, bar: int) -> tuple[Patch, dict]:
        """The patch and the patterns as they stand just before ``bar``'s
        own timed commands run."""
        patch, voices = self.patch.copy(), dict(self.voices)
        for at in sorted(b for b in self.timed if b < bar):
            voices = self._run_timed(at, patch, voices)
        return patch, voices

    def _run_timed(self, bar: int, patch: Patch, voices: dict) -> dict:
        """Run ``bar``'s timed commands on ``patch``; the patterns after them."""
        for command in self.timed.get(bar, ()):
            if isinstance(command, Pattern):
                voice = self.voice(command, patch)
                voices[(voice.module, voice.param)] = voice
            elif isinstance(command, Tempo):
                retempo(patch, command, clamp=True)
            elif not isinstance(command, Meter):
                patch.apply(command)
                voices = playable(voices, patch)
        return voices

    # -- what is no error, but seldom what was meant (see cli.warn_about) ----------

    def bars(self):
        """Each bar (from 0) to the song's end, with the patch and the
        patterns that play in it."""
        patch, voices = self.patch.copy(), dict(self.voices)
        for bar in range(self.length or 0):
            voices = self._run_timed(bar, patch, voices)
            yield bar, patch, voices

    def lost(self) -> Lost:
        """What the song loses without a word, found in one walk of its
        bars (see Lost). A pattern's notes are looked at once for each
        bar of its period and what the bars before leave sounding into it,
        and at most LOST_STEPS steps of them in all (the steps a bar's
        notes are worked out from, the ones `?` drops too: counting the
        notes kept, 2,000 bars of "c4*1024?0.99" took 27 s, the docs
        audit): one that repeats only every 65,536 bars (a `?` in it) is
        worked out afresh each bar, and 16,000 bars of "c4*1024?" held
        `check` and a one-second render for minutes (the song audit). The
        `at` sets are looked at in every bar: they cost no notes."""
        from ..modules.drums import slot_for
        lost = Lost()
        budget = LOST_STEPS
        looked: dict[tuple, int] = {}   # what was looked at -> what it leaves sounding into the next bar
        # Note source -> the (pitch, end) of its notes sounding into this
        # bar (`<[c3,e3] [g3,b3]>` legato=2 crowds two voices in bar 2
        # only), as a number in ``held``: hashing their Fractions in every
        # bar's key made 16,000 bars of one pattern seven times slower.
        tails: dict[str, int] = {}
        held: list[tuple] = [()]
        numbers: dict[tuple, int] = {(): 0}
        for bar, patch, voices in self.bars():
            for command in self.timed.get(bar, ()):
                if isinstance(command, Set):
                    voice = voices.get((str(command.target.module), str(command.target.port)))
                    if voice is not None and voice.pattern.events(bar):
                        lost.overridden.append((command, voice, bar))
            carried, tails = tails, {}
            for voice in voices.values() if budget > 0 else ():
                inst = patch.modules[voice.module]
                if voice.param is not None or voice.place in lost.seen:
                    continue
                have = inst.params.get("voices")
                number = carried.get(voice.module, 0)
                seen = (voice.place, voice.module, bar % voice.pattern.period, inst.type.name, have, number)
                if seen in looked:
                    tails[voice.module] = looked[seen]
                    continue
                events = voice.pattern.events(bar)
                budget -= max(len(events), voice.pattern.cost)
                into, tail = held[number], sounding_on(events, voice.legato, held[number])
                if tail not in numbers:
                    numbers[tail] = len(held)
                    held.append(tail)
                looked[seen] = tails[voice.module] = numbers[tail]
                if inst.type.name == "drums":
                    missing = sorted({int(round(e.value)) for e in events if slot_for(e.value) < 0})
                    if missing:
                        lost.seen.add(voice.place)
                        lost.no_drum.append((voice, missing, bar))
                    continue
                if have is None or have <= 1 or len({e.value for e in events} | {p for p, _ in into}) <= have:
                    continue   # a mono source cuts its notes by design; fewer pitches than voices never crowd
                most = at_once(events, voice.legato, into)
                if most > have:
                    lost.seen.add(voice.place)
                    lost.crowded.append((voice, most, int(have), bar))
        return lost

    # -- time --------------------------------------------------------------------

    def bar_seconds(self, bar: int) -> Fraction:
        return self.bar_quarters(bar) * 60 / self._segment(bar)[1]

    def edits_at(self, bar: int, patch: Patch) -> bool:
        """Whether ``bar`` starts with an edit of ``patch`` that rebuilds the
        engine's schedule (not only a value that glides)."""
        return any(not isinstance(command, (Tempo, Meter, Pattern)) and not glides(patch, command)
                   for command in self.timed.get(bar, ()))

    def bar_quarters(self, bar: int) -> Fraction:
        """How many quarter notes ``bar`` holds, by its meter."""
        meter = self.meter_at(bar)
        return Fraction(meter[0] * 4, meter[1])

    def tempo_at(self, bar: int) -> Fraction:
        """The song's own tempo at ``bar`` (from 0)."""
        return self._segment(bar)[1]

    def meter_at(self, bar: int) -> tuple[int, int]:
        """The meter in force at ``bar`` (from 0)."""
        return self._segment(bar)[2]

    def _segment(self, bar: int) -> tuple[int, Fraction, tuple[int, int]]:
        found = self.changes[0]
        for change in self.changes:
            if change[0] <= bar:
                found = change
        return found

    def bar_start(self, bar: int) -> Fraction:
        """Seconds from the start of the song to the start of ``bar``."""
        total = Fraction(0)
        for i, (start, tempo, meter) in enumerate(self.changes):
            stop = self.changes[i + 1][0] if i + 1 < len(self.changes) else None
            end = bar if stop is None else min(bar, stop)
            if end > start:
                total += (end - start) * Fraction(meter[0] * 4, meter[1]) * 60 / tempo
            if stop is None or bar <= stop:
                break
        return total

    def quarters_at(self, bar: int, fraction: Fraction = Fraction(0)) -> Fraction:
        """Quarter notes from the start of the song to ``fraction`` of a bar
        from the start of ``bar``: the song's place whatever the tempo, as
        a shared beat clock (Ableton Link) counts it."""
        whole = math.floor(fraction)
        bar, fraction = bar + whole, fraction - whole
        total = Fraction(0)
        for i, (start, _, meter) in enumerate(self.changes):
            stop = self.changes[i + 1][0] if i + 1 < len(self.changes) else None
            end = bar if stop is None else min(bar, stop)
            if end > start:
                total += (end - start) * Fraction(meter[0] * 4, meter[1])
            if stop is None or bar <= stop:
                break
        return total + fraction * self.bar_quarters(bar)

    def bar_span(self, bar: int) -> tuple[Fraction, Fraction]:
        """``(bar_start(bar), bar_seconds(bar))``, kept: a song does not
        change once built, and the sequencer asks for every note."""
        span = self._spans.get(bar)
        if span is None:
            span = self._spans[bar] = (self.bar_start(bar), self.bar_seconds(bar))
        return span


def retempo(patch: Patch, command: Tempo, clamp: bool = False) -> list[tuple[str, str, float]]:
    """``patch.retempo`` to the tempo ``command`` sets; an error names its
    place. ``clamp`` for an `at`'s tempo: a later line of its bar may set
    a length that the tempo takes out of range (`at 5 tempo 50`, then `at 5
    set d.time 0.1`), which is never heard, as both hold from the bar's
    first sample; the check judges the lengths once the bar is done."""
    try:
        return patch.retempo(Fraction(str(command.bpm)), clamp)
    except SynthError as error:
        raise error.at(line=command.line, col=command.col)


def shapes(patch: Patch) -> dict:
    """What a parameter change cannot glide: each module's type and its
    structural parameters (a note source's voices), which rebuild it."""
    return {name: (inst.type, tuple(inst.params[p.name] for p in inst.type.cls.params if p.structural))
            for name, inst in patch.modules.items()}


def unplugged(fed: set[tuple[str, str]], patch: Patch) -> list[tuple[str, object]]:
    """The inputs of ``patch`` among ``fed`` (inputs that had a cable) that
    have none now and read other than 0 unconnected, with their Port."""
    left = fed - {(c.dst, c.dst_port) for c in patch.cables}
    ports = [(module, patch.modules[module].type.cls.port(name, "in"))
             for module, name in sorted(left) if module in patch.modules]
    return [(module, port) for module, port in ports if port is not None and port.default != 0.0]


#: The pattern steps Song.lost works notes out from, at most: about a
#: second of work where each bar's are worked out afresh.
LOST_STEPS = 50_000


class Lost:
    """What a song loses without a word (see Song.lost), each with the bar
    (from 0) it is first heard in. ``crowded``: (pattern, notes at once,
    voices) of a note source struck with more notes at once than it has
    voices, the one held longest stolen and its note cut short (the new
    user found a 4-note chord on `keys voices=2` by FFT alone); a drum
    kit's `voices` are its width, and a one-voice source is mono on
    purpose. ``overridden``: (set, pattern) of an `at` set of a parameter
    that a pattern playing in that bar sets again at its next step (the
    new user's `at 7 set pf.cutoff 3500`). ``no_drum``: (pattern, notes)
    of drum notes the kit has no sound for."""

    def __init__(self) -> None:
        self.crowded: list[tuple[Voice, int, int, int]] = []
        self.overridden: list[tuple[Set, Voice, int]] = []
        self.no_drum: list[tuple[Voice, list[int], int]] = []
        self.seen: set[tuple[int, int]] = set()   # patterns said once


def at_once(events, legato: Fraction, carried: tuple = ()) -> int:
    """The most notes of different pitch a bar's ``events`` hold at once,
    each for its length times ``legato`` (a key struck again keeps its
    voice), with ``carried``, the (pitch, end) of notes that sound into
    the bar (see sounding_on): a sweep over the starts and ends, ends
    first at a tie."""
    edges = sorted([(e.start, 1, e.value) for e in events] + [(e.start + e.duration * legato, 0, e.value)
                                                              for e in events]
                   + [(-1, 1, pitch) for pitch, _ in carried] + [(end, 0, pitch) for pitch, end in carried])
    held: dict[float, int] = {}
    most = 0
    for _, starts, pitch in edges:
        held[pitch] = held.get(pitch, 0) + (1 if starts else -1)
        if not held[pitch]:
            del held[pitch]
        most = max(most, len(held))
    return most


def sounding_on(events, legato: Fraction, carried: tuple = ()) -> tuple:
    """The (pitch, end) of the notes of a bar (``events`` held ``legato``
    times their length, and ``carried`` into it) that sound into the next
    bar, ends counted from its start; a key's latest end only, as a key
    struck again keeps its voice, so a long song's bars repeat it."""
    ends: dict[float, Fraction] = {}
    for pitch, end in [*carried, *((e.value, e.start + e.duration * legato) for e in events)]:
        if end > 1:
            ends[pitch] = max(ends.get(pitch, end), end)
    return tuple(sorted((pitch, end - 1) for pitch, end in ends.items()))


def reads_unconnected(port) -> str:
    """What an input reads with no cable, as its doc says it (an adsr's
    gate: "unconnected it reads high: a held note") or by its default."""
    doc = port.doc.partition("unconnected ")[2]
    return f"unconnected {doc}" if doc else f"unconnected it reads {port.default:g}"


def same_shape(old: Patch, new: Patch) -> bool:
    """Whether ``new`` is ``old`` with other values only: the engine glides
    to it without rebuilding its schedule."""
    return old.cables == new.cables and shapes(old) == shapes(new)


def structural(patch: Patch, command: Set) -> bool:
    param = patch.modules[command.target.module].type.cls.param(command.target.port)
    return param is not None and param.structural


def glides(patch: Patch, command: Command) -> bool:
    """Whether a song's command is a ``set`` the engine glides, with no
    rebuild of its schedule (tempo, meter and patterns need neither)."""
    return (isinstance(command, Set) and command.target.module in patch.modules
            and not structural(patch, command))


@functools.lru_cache(maxsize=4096)
def note_events(note: float, velocity: float) -> tuple[NoteOn, NoteOff]:
    """The note-on and note-off of a note, made once: a bar of 64 voices
    sends 512 of them, and the same few again every bar. (They are
    immutable, so every voice and bar can share them, and a batch of them
    pickled for a worker process carries each once.)"""
    return NoteOn(note, velocity), NoteOff(note)


#: bar_sample's default: the first sample of the bar (kept, see there).
_BAR_START = Fraction(0)


def let_go(engine, patch: Patch, time: int) -> None:
    """Tell every module that takes events to let go of its notes at
    ``time``: the note sources, and a module that holds notes of its own
    (an arp's latched chord), which nothing else would end."""
    for name, inst in patch.modules.items():
        cls = inst.type.cls
        if cls.accepts_notes or cls.on_event is not Module.on_event:
            engine.send(name, time, AllNotesOff())


class Sequencer:
    """Plays a song on an engine: call :meth:`before_block` before each
    ``engine.process_block()`` and :meth:`after_block` after it.

    Everything of a bar is handed to the engine when the block holding the
    bar's first sample is about to render: patch edits of that bar are
    applied between blocks, notes and parameter values go to the engine
    with their exact sample times. Playing and rendering therefore make
    the same calls at the same blocks and give the same samples.
    """

    #: ``midi_out(port, channel, start, stop, note, velocity)`` sends the
    #: notes of ``midiout`` targets; the live engine sets it (offline they
    #: go to the silent module).
    midi_out = None

    def __init__(self, song: Song, engine, endless: bool = False, origin: int = 0, start: int = 0) -> None:
        self.engine = engine
        self.rate = Fraction(engine.samplerate)
        self._song = song
        # The sample the song's first bar starts on: before ``origin`` when
        # it plays from bar ``start`` (from 0), which starts on ``origin``.
        self.origin = origin - round(song.bar_start(start) * self.rate)
        self.endless = endless
        self.pending: Song | None = None
        # Parameters set live since this version of the song was sent (see keep)
        self.kept: dict[tuple[str, str], float] = {}
        self.patch, self.voices = song.state_before(start)
        playing = engine.patch
        if playing is not None and same_shape(playing, self.patch):
            # A song started again on the modules and cables that play: its
            # values glide there, every one (a knob or a pattern may have
            # moved it since the engine's patch), with no rebuild to render
            # ahead for (LiveEngine.rebuilds), so it starts at once.
            for name, inst in self.patch.modules.items():
                for spec in inst.type.cls.params:
                    if not spec.structural:
                        engine.set(name, spec.name, inst.params[spec.name], time=origin)
        else:
            engine.load(self._first_values(start))
        self.bar = start
        self.released = False   # past the end, every note of it ended, and told so (see after_block)
        self.swapped_at: int | None = None
        # (note source, pitch) -> the off of its last note: (sample, handle to cancel it)
        self.note_offs: dict[tuple[str, float], tuple[int, int]] = {}
        # (sample, handle) of what was sent ahead (a bar at a time): a stop takes back what is still to come
        self.ahead: list[tuple[int, int]] = []

    def _first_values(self, bar: int) -> Patch:
        """The patch to load the engine with: a parameter's pattern with a
        step on the first sample the song plays starts there. Sent as a set
        on that sample, it glided over 5 ms from the value the `add` gave
        (`level=1` under "0.1 0.1": the first 5 ms three times too loud,
        the song-writer audit). Only the engine's copy: this patch is the
        song's, which a new version's is compared with at a swap."""
        tempo = self.song.tempo_at(bar)
        patch = self.patch.copy()
        for voice in self.voices.values():
            if voice.param is None:
                continue
            first = next((event for event in voice.pattern.events(bar) if event.start == 0), None)
            if first is not None:
                patch.modules[voice.module].params[voice.param] = first.value if first.length is None \
                    else voice.length_value(patch, first.length, tempo)
        return patch

    @property
    def song(self) -> Song:
        return self._song

    @song.setter
    def song(self, song: Song) -> None:
        self._song = song
        self._starts: dict[int, int] = {}

    @property
    def origin(self) -> int:
        return self._origin

    @origin.setter
    def origin(self, sample: int) -> None:
        self._origin = sample
        self._starts = {}

    def sample(self, seconds: Fraction) -> int:
        return self.origin + round(seconds * self.rate)

    def bar_sample(self, bar: int, fraction: Fraction = _BAR_START) -> int:
        """The sample at ``fraction`` of a bar from the start of ``bar``: every
        place in the song reaches the engine's clock through here, so a
        sequencer that follows another clock (Ableton Link) overrides it.

        It is exactly ``sample(song.bar_start(b) + f * song.bar_seconds(b))``
        (``b`` and ``f`` the whole and the rest of ``bar + fraction``: a
        fraction past 1 runs on into the following bars), rounded half to even as ``round(Fraction)`` does, but in plain integers:
        a bar of 96 voices asks for hundreds of these in one block, and the
        Fraction objects cost 10 ms of it (30 ms with the tempo map). The
        start of a bar, asked for at every block, is kept until the song or
        its origin changes."""
        if fraction is _BAR_START:
            start = self._starts.get(bar)
            if start is None:
                start = self._starts[bar] = self._place(bar, fraction)
            return start
        return self._place(bar, fraction)

    def _place(self, bar: int, fraction: Fraction) -> int:
        fn, fd = fraction.numerator, fraction.denominator
        whole = fn // fd
        start, length = self.song.bar_span(bar + whole)
        rate = self.rate
        num = ((start.numerator * fd * length.denominator + (fn - whole * fd) * length.numerator * start.denominator)
               * rate.numerator)
        den = start.denominator * fd * length.denominator * rate.denominator
        floor, rest = divmod(num, den)
        if 2 * rest > den or (2 * rest == den and floor % 2):
            floor += 1
        return self.origin + floor

    @property
    def length(self) -> int | None:
        return None if self.endless else self.song.length

    @property
    def end(self) -> int | None:
        length = self.length
        return None if length is None else self.bar_sample(length)

    def replace(self, song: Song) -> None:
        """Take a new version of the song from the next bar on."""
        self.pending = song
        self.kept = {}   # the new version was written with them

    def keep(self, name: str, param: str, value: float) -> None:
        """A parameter set live (a knob over OSC or MIDI, a typed ``set``)
        stays in the patch this sequencer reloads the engine with at a bar
        that edits it, and in the new version of the song it takes up next:
        the engine glides every parameter to the patch it loads, and the
        song's own value would undo the musician's at the next ``at 5
        add``. (Until the session sends a new version, which has it.)"""
        self.kept[(name, param)] = value
        self._keep_in(self.patch)

    def coming(self, name: str) -> bool:
        """Whether module ``name`` is not in the patch the engine plays yet,
        but in the song's version that takes over at the next bar (added
        while the song plays)."""
        return name not in self.patch.modules and self.pending is not None and name in self.pending.patch.modules

    def _keep_in(self, patch: Patch) -> None:
        for (name, param), value in self.kept.items():
            inst = patch.modules.get(name)
            if inst is not None and param in inst.params:
                inst.params[param] = value

    def release_notes(self) -> None:
        """Release every held note of every note source, and take back the
        notes and pattern values sent for later in the bar (the transport
        stops): they played on after a stop, into a restarted song too.
        Every other module that takes events hears it as well (let_go)."""
        now = self.engine.time
        for when, handle in self.ahead:
            if when >= now:
                self.engine.cancel(handle)
        self.ahead.clear()
        let_go(self.engine, self.patch, now)

    def before_block(self) -> None:
        engine = self.engine
        stop = engine.time + engine.blocksize
        while (self.length is None or self.bar < self.length) and self.bar_sample(self.bar) < stop:
            if self.pending is not None:
                self._swap()
            for command in self.song.timed.get(self.bar, ()):
                self._run(command)
            self._schedule(self.bar)
            self.bar += 1

    def rebuilds_within(self, samples: int) -> bool:
        """Whether the engine's schedule is rebuilt within ``samples`` from
        now: a new version of the song waits, or a bar that starts by then
        edits the patch. A live engine renders further ahead first, so
        that the rebuild, and the one a block later that ends its fades
        (see Engine.load), cannot starve the audio callback."""
        if self.pending is not None:
            return True
        if (self.length is not None and self.bar >= self.length) or \
                self.bar_sample(self.bar) >= self.engine.time + samples:
            return False
        return self.song.edits_at(self.bar, self.patch)

    def _swap(self) -> None:
        """A saved song takes over at this bar: the patch and patterns it
        would have by now; modules that did not change keep their state."""
        song, self.pending = self.pending, None
        # The bar being swapped keeps its sample; a new tempo counts from there.
        rate = Fraction(self.engine.samplerate)
        self.origin += round(self.song.bar_start(self.bar) * rate) - round(song.bar_start(self.bar) * rate)
        self.song = song
        old = self.patch
        self.patch, self.voices = song.state_before(self.bar)
        self._keep_in(self.patch)
        if same_shape(old, self.patch):   # only values changed: glide them, no rebuild
            start = self.bar_sample(self.bar)
            for name, inst in self.patch.modules.items():
                for param, value in inst.params.items():
                    if old.modules[name].params[param] != value:
                        self.engine.set(name, param, value, time=start)
        else:   # what leaves fades out (Engine.load)
            self.engine.load(self.patch)
        self.swapped_at = self.bar

    def _run(self, command: Command) -> None:
        if isinstance(command, Tempo):   # the tempo map has it; the values set as note lengths follow
            start = self.bar_sample(self.bar)
            for name, param, value in retempo(self.patch, command, clamp=True):
                self.engine.set(name, param, value, time=start)
            return
        if isinstance(command, Meter):
            return  # already in the song's tempo map
        if isinstance(command, Pattern):
            voice = self.song.voice(command, self.patch)
            self.voices[(voice.module, voice.param)] = voice
            return
        self.patch.apply(command)
        if glides(self.patch, command):   # on the bar's first sample
            value = self.patch.modules[command.target.module].params[command.target.port]
            start = self.bar_sample(self.bar)
            self.engine.set(command.target.module, command.target.port, value, time=start)
        else:
            self.engine.load(self.patch)
            self.voices = playable(self.voices, self.patch)

    def _keep(self, when: int, handle: int | None) -> None:
        if handle is not None:
            self.ahead.append((when, handle))

    def _outside(self):
        """What sends the notes of ``midiout`` targets' patterns to the
        outside gear (:meth:`_to_gear`), or None where no pattern plays
        outside gear: a bar of 256 voices then pays no call a note."""
        return self._to_gear if self.patch.midi_ports and self.midi_out is not None else None

    def _to_gear(self, voice, start: int, stop: int, pitch: float) -> bool:
        """Send a note of a ``midiout`` target's pattern to the outside gear
        (see :attr:`midi_out`); False for a note the engine plays."""
        port = self.patch.midi_ports.get(voice.module)
        if port is None:
            return False
        channel = int(self.patch.modules[voice.module].params["channel"])
        self.midi_out(port, channel, start, stop, pitch, voice.velocity)
        return True

    def _schedule(self, bar: int) -> None:
        engine = self.engine
        now = engine.time
        self.ahead = [sent for sent in self.ahead if sent[0] >= now]
        keep = self._keep
        outside = self._outside()
        # Voices of a chord share their places in the bar: each place is
        # turned into a sample once (256 voices: 2048 notes, 8 places). Keys
        # are pairs of ints, which hash far faster than Fractions.
        samples: dict[tuple, int] = {}
        for voice in self.voices.values():
            legato = (voice.legato.numerator, voice.legato.denominator)
            pair = voice.swing_pair(self.song.bar_quarters(bar))
            for event in voice.pattern.events(bar):
                at = event.start if pair is None else swung(event.start, voice.swing, pair)
                key = (at.numerator, at.denominator)
                start = samples.get(key)
                if start is None:
                    start = samples[key] = self.bar_sample(bar, at)
                if voice.param is not None:
                    value = event.value if event.length is None else \
                        voice.length_value(self.patch, event.length, self.song.tempo_at(bar))
                    keep(start, engine.set(voice.module, voice.param, value, time=start))
                    continue
                length = event.duration
                if pair is None:
                    key = (key, length.numerator, length.denominator, legato)
                    stop = samples.get(key)
                    if stop is None:
                        stop = samples[key] = self.bar_sample(bar, at + length * voice.legato)
                else:
                    stop = self.bar_sample(bar, swung(event.start + length * voice.legato, voice.swing, pair))
                stop = max(start + 1, stop)
                if outside is not None and outside(voice, start, stop, event.value):
                    continue
                on, off = note_events(event.value, voice.velocity)
                keep(start, engine.send(voice.module, start, on))
                # A key struck again while it still sounds is held by the new
                # note: the earlier note's off would cut it. Not only legato
                # over 1 overlaps them: so do two layers of a stack, an `@`
                # weight and a `/` at any legato ("c4@2 ~ ~, ~ c4@2 ~"), so
                # every note's off is kept (a bar of 256 voices measured no
                # slower for it).
                earlier = self.note_offs.pop((voice.module, event.value), None)
                if earlier is not None and earlier[0] > start and earlier[0] >= engine.time:
                    engine.cancel(earlier[1])
                handle = engine.send(voice.module, stop, off)
                keep(stop, handle)
                self.note_offs[(voice.module, event.value)] = (stop, handle)

    def after_block(self) -> bool:
        """True once the song's bars are over: what sounds on is its tail
        (Performance waits it out). Once its last note has ended, what
        holds notes of its own lets go (let_go): a latched arp played on
        for TAIL_MAX and was cut there."""
        end = self.end
        if end is None or self.engine.time <= end:
            return False
        if not self.released and all(when < self.engine.time for when, _ in self.ahead):
            self.released = True
            let_go(self.engine, self.patch, self.engine.time)
        return True
