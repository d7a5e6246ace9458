"""The one parser of the synthcli language.

Text becomes :mod:`~synthcli.language.commands` here and nowhere else: patch
files, song files, the REPL and OSC all call :func:`parse_line` or
:func:`parse_text`. Only syntax is checked here; whether a module type or
port exists is the patch's business, which reports it at the token's column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..errors import SynthError, did_you_mean
from .commands import (Add, At, Command, Connect, Disconnect, Endpoint, Length, Map, Meter, Midiout, Pattern, Remove,
                       Require, Set, Tempo, Token)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Long enough for "bass_drum_sidechain_comp"; short enough that `ls`, `top`
#: and the toolbar keep their columns.
NAME_LIMIT = 32
_QUALIFIED_TYPE = re.compile(r"([A-Za-z0-9_.\-]+:)?[A-Za-z_][A-Za-z0-9_]*\Z")
#: The last bar a song may name (`length`, `at`, the REPL's `play BAR`).
MAX_BARS = 100_000


def tokenize(line: str, lineno: int = 0) -> list[Token]:
    """Split a line into words; ``"..."`` keeps spaces, and ``#`` at the
    start of a word starts a comment. Inside a word it is a sharp: ``set
    o.freq c#4`` is a note, which a comment there would silently cut to
    ``c``, another note."""
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            break
        elif ch == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise SynthError("unterminated string: a closing '\"' is missing", line=lineno, col=i + 1)
            if end + 1 < n and not line[end + 1].isspace():   # `"c3 e3"#x` hid a comment's start, or a typo
                raise SynthError(f"'{line[end + 1]}' right after a closing '\"': put a space between them",
                                 line=lineno, col=end + 2)
            tokens.append(Token(line[i:end + 1], i + 1))
            i = end + 1
        else:
            start = i
            while i < n and not line[i].isspace():
                if line[i] == '"':
                    end = line.find('"', i + 1)
                    if end < 0:
                        raise SynthError("unterminated string: a closing '\"' is missing", line=lineno, col=i + 1)
                    i = end
                i += 1
            tokens.append(Token(line[start:i], start + 1))
    return tokens


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table, the single source of truth for what
    the language accepts; help and the generated reference read it too."""

    name: str
    syntax: str
    summary: str
    parse: Callable[[list[Token], int], Command]


def _fail(message: str, line: int, col: int) -> SynthError:
    return SynthError(message, line=line, col=col)


def _expect_args(words: list[Token], line: int, low: int, high: int | None, syntax: str) -> None:
    given = len(words) - 1
    if given < low:
        end = words[-1].col + len(words[-1])
        raise _fail(f"'{words[0]}' needs more: usage is '{syntax}'", line, end)
    if high is not None and given > high:
        raise _fail(f"unexpected '{words[high + 1]}': usage is '{syntax}'", line, words[high + 1].col)


def _name(token: Token, line: int, what: str) -> Token:
    if not _NAME.match(token):
        raise _fail(f"'{token}' is not a valid {what} (ASCII letters, digits and _, not starting with a digit)",
                    line, token.col)
    return token


def _endpoint(token: Token, line: int) -> Endpoint:
    module, dot, port = token.partition(".")
    if not dot:
        return Endpoint(_name(token, line, "module name"))
    mod = _name(Token(module, token.col), line, "module name")
    prt = _name(Token(port, token.col + len(module) + 1), line, "port name")
    return Endpoint(mod, prt)


def _spaced(words: list[Token], at: int, eq: str) -> bool:
    """Whether the word at `at`, a key without its value, was split from it
    by spaces around its '=' (`freq = 3`, `freq= 3`, `freq =3`): the usual
    slip, which deserves its own message rather than 'expected ...'."""
    after = words[at + 1] if at + 1 < len(words) else ""
    return after.startswith("=") or bool(eq and after and "=" not in after)


def _parse_add(words: list[Token], line: int) -> Add:
    syntax = COMMANDS["add"].syntax
    _expect_args(words, line, 2, None, syntax)
    type_token = words[1]
    if not _QUALIFIED_TYPE.match(type_token):
        raise _fail(f"'{type_token}' is not a valid module type", line, type_token.col)
    name = _name(words[2], line, "module name")
    if len(name) > NAME_LIMIT:
        raise _fail(f"the module name '{name[:NAME_LIMIT]}...' is too long ({len(name)} characters; "
                    f"at most {NAME_LIMIT})", line, name.col)
    params: list[tuple[Token, Token]] = []
    seen: set[str] = set()
    for at, word in enumerate(words[3:], start=3):
        key, eq, value = word.partition("=")
        if key and not value and _spaced(words, at, eq):
            raise _fail(f"write {key}=VALUE, without spaces around '='", line, word.col)
        if not eq or not key or not value:
            raise _fail(f"expected param=value, got '{word}'", line, word.col)
        key_token = _name(Token(key, word.col), line, "parameter name")
        if key in seen:
            raise _fail(f"parameter '{key}' given twice", line, word.col)
        seen.add(key)
        params.append((key_token, Token(value, word.col + len(key) + 1)))
    return Add(line, words[0].col, type_token, name, tuple(params))


def _parse_remove(words: list[Token], line: int) -> Remove:
    _expect_args(words, line, 1, 1, COMMANDS["remove"].syntax)
    return Remove(line, words[0].col, _name(words[1], line, "module name"))


def _parse_cable(cls: type, verb: str) -> Callable[[list[Token], int], Command]:
    def parse(words: list[Token], line: int) -> Command:
        _expect_args(words, line, 2, 2, COMMANDS[verb].syntax)
        return cls(line, words[0].col, _endpoint(words[1], line), _endpoint(words[2], line))
    return parse


def _parse_set(words: list[Token], line: int) -> Set:
    syntax = COMMANDS["set"].syntax
    # 'set o.freq=3', 'set o.freq = 3' or '=3', as an add writes its values; not a value
    # that holds one ('set s.file take=2.wav'), as an add's may.
    equals = next((word for word in words[1:3] if word.startswith("=") or "=" in word and word is words[1]), None)
    if equals is not None:
        raise _fail("'set' takes no '=': write 'set NAME.PARAM VALUE'", line, equals.col + equals.index("="))
    _expect_args(words, line, 2, 2, syntax)
    target = _endpoint(words[1], line)
    if target.port is None:
        raise _fail(f"expected NAME.PARAM, got '{words[1]}': write {words[1]}.PARAM (`info {words[1]}` lists "
                    f"them)", line, words[1].col)
    return Set(line, words[0].col, target, words[2])


def unquote(word: str) -> str:
    """A name in double quotes (a file, a MIDI port) may hold spaces."""
    return word[1:-1] if len(word) > 1 and word[0] == word[-1] == '"' else str(word)


def _number(token: Token, line: int, what: str, low: float, high: float, whole: bool = False) -> float:
    try:   # float() also reads '١٢٠' and '1_6', which no other number of the language takes
        value = float(token) if token.isascii() and "_" not in token else float("nan")
    except ValueError:
        value = float("nan")
    if not (low <= value <= high) or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise _fail(f"expected {kind} of {what} from {low:g} to {high:g}, got '{token}'", line, token.col)
    return value


def _parse_tempo(words: list[Token], line: int) -> Tempo:
    _expect_args(words, line, 1, 1, COMMANDS["tempo"].syntax)
    _number(words[1], line, "beats per minute", 1, 999)
    return Tempo(line, words[0].col, words[1])


def _parse_meter(words: list[Token], line: int) -> Meter:
    _expect_args(words, line, 1, 1, COMMANDS["meter"].syntax)
    beats, slash, unit = words[1].partition("/")
    if not (slash and (beats + unit).isascii() and beats.isdigit() and unit.isdigit() and len((beats + unit).lstrip("0")) < 9
            and 1 <= int(beats) <= 64 and int(unit) in (1, 2, 4, 8, 16, 32)):
        raise _fail(f"expected a meter such as 4/4, 3/4 or 7/8 (1-64 beats over 1, 2, 4, 8, 16 or 32), "
                    f"got '{words[1]}'", line, words[1].col)
    return Meter(line, words[0].col, int(beats), int(unit))


def _parse_length(words: list[Token], line: int) -> Length:
    _expect_args(words, line, 1, 1, COMMANDS["length"].syntax)
    bars = int(_number(words[1], line, "bars", 1, MAX_BARS, whole=True))
    return Length(line, words[0].col, bars)


#: Controllers a keyboard's own meaning takes before any `map` (midi/driver.py):
#: the sustain pedal, all sound off and all notes off. Mapped, they would never turn.
KEYBOARD_CONTROLLERS = {0: "bank select", 32: "bank select (fine)", 64: "the sustain pedal", 120: "all sound off",
                        121: "reset all controllers", 122: "local control", 123: "all notes off",
                        124: "omni off", 125: "omni on", 126: "mono on", 127: "poly on"}

#: A pattern's options and the range of each number; scale= takes ROOT:NAME.
PATTERN_OPTIONS = {"legato": (0.001, 16.0), "vel": (0.0, 1.0), "swing": (0.5, 0.75), "swingunit": (8, 16),
                   "scale": None}
#: The notes swing can move: the off-beat 8ths or 16ths.
SWING_UNITS = (8, 16)


def _parse_pattern(words: list[Token], line: int) -> Pattern:
    from ..sequencer.notation import parse_pattern, parse_scale
    syntax = COMMANDS["pattern"].syntax
    _expect_args(words, line, 2, 2 + len(PATTERN_OPTIONS), syntax)
    target = _endpoint(words[1], line)
    quoted = words[2]
    if len(quoted) < 2 or not (quoted.startswith('"') and quoted.endswith('"')):
        raise _fail(f'expected the pattern in double quotes, e.g. "c3 e3 g3 ~", got {quoted}', line, quoted.col)
    text = Token(quoted[1:-1], quoted.col + 1)
    options = []
    scale = None
    for at, word in enumerate(words[3:], start=3):
        key, eq, value = word.partition("=")
        if key in PATTERN_OPTIONS and not value:   # a known option, so no name to suggest: say what it lacks
            raise _fail(f"write {key}=VALUE, without spaces around '='" if _spaced(words, at, eq)
                        else f"'{key}' needs a value: write {key}=VALUE", line, word.col)
        if not eq or key not in PATTERN_OPTIONS:
            *others, last = (f"{name}=..." for name in PATTERN_OPTIONS)
            raise _fail(f"expected {', '.join(others)} or {last}, got '{word}'{did_you_mean(key, PATTERN_OPTIONS)}",
                        line, word.col)
        if any(given == key for given, _ in options):
            raise _fail(f"'{key}' given twice", line, word.col)
        value_token = Token(value, word.col + len(key) + 1)
        if key == "swingunit":
            if value not in tuple(map(str, SWING_UNITS)):
                raise _fail(f"expected swingunit=8 (off-beat 8ths swing) or swingunit=16 (16ths), got '{word}'",
                            line, value_token.col)
        elif key == "scale":
            if target.port is not None:
                raise _fail(f"scale= makes a pattern's numbers degrees of a scale, for notes; "
                            f"'{target}' takes values", line, word.col)
            scale = inside(lambda: parse_scale(value), value_token, line)
        else:
            _number(value_token, line, key, *PATTERN_OPTIONS[key])
        options.append((Token(key, word.col), value_token))
    inside(lambda: parse_pattern(text, notes=target.port is None, scale=scale, names=target.port is not None,
                                 lengths=target.port is not None),
            text, line)
    return Pattern(line, words[0].col, target, text, tuple(options))


def inside(parse: Callable[[], object], token: Token, line: int) -> object:
    """Run a parse of ``token``'s text whose errors count columns inside it
    (a pattern, a scale): the file counts from the start of the line, and
    the message should not show both, so its own place goes, and another
    one it names (where a bracket opened) is counted as the file counts."""
    try:
        return parse()
    except SynthError as error:
        inner = error.col or 1
        message = error.message.replace(f" at {inner}", "", 1)
        message = re.sub(r" at (\d+)\b", lambda m: f" at column {token.col + int(m[1]) - 1}", message)
        raise SynthError(message, line=line, col=token.col + inner - 1) from None


#: Commands that hold for a whole file, so `at BAR` cannot time them.
WHOLE_FILE = ("length", "require", "map", "midiout")


def _parse_at(words: list[Token], line: int) -> At:
    _expect_args(words, line, 2, None, COMMANDS["at"].syntax)
    bar = int(_number(words[1], line, "the bar (counted from 1)", 1, MAX_BARS, whole=True))
    inner = words[2:]
    if inner[0] == "at":
        raise _fail("'at' cannot hold another 'at'", line, inner[0].col)
    spec = COMMANDS.get(inner[0])
    if spec is None:
        raise _fail(f"unknown command '{inner[0]}'{did_you_mean(inner[0], COMMANDS)}", line, inner[0].col)
    if spec.name in WHOLE_FILE:
        raise _fail(f"'{spec.name}' holds for the whole file; put it outside 'at'", line, inner[0].col)
    return At(line, words[0].col, bar, spec.parse(inner, line))


def _parse_require(words: list[Token], line: int) -> Require:
    from packaging.requirements import InvalidRequirement, Requirement
    _expect_args(words, line, 1, 1, COMMANDS["require"].syntax)
    try:   # its versions are read as the file loads (Registry.unmet): one int() refuses is no requirement
        Requirement(words[1]).specifier.contains("0", prereleases=True)
    except (InvalidRequirement, ValueError):
        raise _fail(f"expected a package requirement such as synthcli-chiptune>=0.1, got '{words[1]}'",
                    line, words[1].col) from None
    return Require(line, words[0].col, words[1])


def _parse_map(words: list[Token], line: int) -> Map:
    syntax = COMMANDS["map"].syntax
    _expect_args(words, line, 3, 5, syntax)
    if words[1] != "cc":
        raise _fail(f"expected 'cc' (a MIDI controller), got '{words[1]}': usage is '{syntax}'", line, words[1].col)
    cc = int(_number(words[2], line, "the MIDI controller", 0, 127, whole=True))
    if cc in KEYBOARD_CONTROLLERS and words[3:4] != ["off"]:
        raise _fail(f"controller {cc} is {KEYBOARD_CONTROLLERS[cc]}, which a keyboard sends for itself; "
                    f"map another controller", line, words[2].col)
    if words[3] == "off":
        _expect_args(words, line, 3, 3, "map cc NUMBER off")
        return Map(line, words[0].col, cc, None)
    target = _endpoint(words[3], line)
    if target.port is None:
        raise _fail(f"expected NAME.PARAM, got '{words[3]}'", line, words[3].col)
    if len(words) == 5:
        raise _fail(f"'map' needs both MIN and MAX: usage is '{syntax}'", line, words[4].col + len(words[4]))
    low, high = (words[4], words[5]) if len(words) == 6 else (None, None)
    for bound in (low, high) if low is not None else ():
        _number(bound, line, "the parameter", -1e9, 1e9)
    return Map(line, words[0].col, cc, target, low, high)


def _parse_midiout(words: list[Token], line: int) -> Midiout:
    syntax = COMMANDS["midiout"].syntax
    _expect_args(words, line, 2, 3, syntax)
    name = _name(words[1], line, "module name")
    port = unquote(words[2])
    if not port:
        raise _fail("the MIDI port name is empty", line, words[2].col)
    channel = 1
    if len(words) == 4:
        key, eq, value = words[3].partition("=")
        if key != "channel" or not eq:
            raise _fail(f"expected channel=N, got '{words[3]}'", line, words[3].col)
        channel = int(_number(Token(value, words[3].col + 8), line, "the MIDI channel", 1, 16, whole=True))
    return Midiout(line, words[0].col, name, Token(port, words[2].col), channel)


COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in (
    CommandSpec("add", "add TYPE NAME [param=value ...]",
                "create a module instance named NAME (at most 32 letters, digits and _), "
                "optionally setting parameters", _parse_add),
    CommandSpec("remove", "remove NAME", "delete a module and every cable touching it", _parse_remove),
    CommandSpec("connect", "connect SRC[.PORT] DST[.PORT]",
                "patch a cable from an output to an input or a parameter "
                "(default ports: the first output, the first input)", _parse_cable(Connect, "connect")),
    CommandSpec("disconnect", "disconnect SRC[.PORT] DST[.PORT]", "remove a cable",
                _parse_cable(Disconnect, "disconnect")),
    CommandSpec("set", "set NAME.PARAM VALUE", "change a parameter (numbers glide over 5 ms; one in Hz also takes a note, a4; a time or a rate a note length, 1/8d)", _parse_set),
    CommandSpec("tempo", "tempo BPM", "song tempo in quarter notes per minute", _parse_tempo),
    CommandSpec("meter", "meter BEATS/UNIT", "the bar: 4/4, 3/4, 7/8 ...", _parse_meter),
    CommandSpec("length", "length BARS", "the song ends after this many bars (plus the release tail)", _parse_length),
    CommandSpec("pattern", 'pattern TARGET "NOTATION" [legato=x] [vel=x] [swing=x] [swingunit=8|16] '
                '[scale=ROOT:NAME]',
                "play a pattern, one cycle a bar, on a note source (keys) or a parameter (NAME.PARAM); "
                "with scale=, its numbers are degrees of the scale (scale=c3:minor: 0 is c3, 2 is eb3); "
                "drums by name: \"bd sd, hh*8\" (docs/song-language.md)",
                _parse_pattern),
    CommandSpec("at", "at BAR COMMAND", "run a command when bar BAR (from 1) starts", _parse_at),
    CommandSpec("map", "map cc NUMBER NAME.PARAM [MIN MAX]",
                "let a MIDI controller turn a parameter smoothly, MIN at 0 to MAX at 127 (default: its range); "
                "`map cc NUMBER off` removes it, and `map` alone at the REPL lists the mappings", _parse_map),
    CommandSpec("midiout", "midiout NAME PORT [channel=N]",
                "a note target on an external MIDI output port (quote a name with spaces): "
                "patterns on NAME play outside gear", _parse_midiout),
    CommandSpec("require", "require PACKAGE[>=VERSION]",
                "this file needs a plugin package (checked before anything plays)", _parse_require),
)}


def parse_line(text: str, line: int = 1) -> Command | None:
    """Parse one line; ``None`` for a blank or comment-only line."""
    words = tokenize(text, line)
    if not words:
        return None
    spec = COMMANDS.get(words[0])
    if spec is None:
        raise _fail(f"unknown command '{words[0]}'{did_you_mean(words[0], COMMANDS)}", line, words[0].col)
    return spec.parse(words, line)


def lines(text: str) -> list[str]:
    """A file's or a paste's lines, as an editor numbers them: split at
    line feeds, CR LF pairs and lone CRs (old Mac files end lines so)
    only. str.splitlines also splits at form feeds and Unicode
    separators, which would run the end of a comment as a command and put
    errors on the wrong line."""
    return re.split(r"\r\n?|\n", text)


def parse_text(text: str, source: str | None = None) -> list[Command]:
    """Parse a whole file; the first error stops it, naming file:line:col."""
    commands = []
    for number, line in enumerate(lines(text), start=1):
        try:
            command = parse_line(line, number)
        except SynthError as error:
            raise error.at(source=source, line=number)
        if command is not None:
            commands.append(command)
    return commands
