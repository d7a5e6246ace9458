"""The commands of the synthcli language, as immutable values.

Every front end (patch files, the REPL, OSC, song files) turns text into
these, so the patch only ever changes through one small set of verbs. Each
text field is a :class:`Token`, which remembers its column so an error found
later (an unknown module type, say) can still point at the spot.
"""
from __future__ import annotations

from dataclasses import dataclass


class Token(str):
    """A word of the source text that knows where it stood."""

    col: int

    def __new__(cls, text: str, col: int = 0) -> "Token":
        token = super().__new__(cls, text)
        token.col = col
        return token


@dataclass(frozen=True)
class Endpoint:
    """``MODULE`` or ``MODULE.PORT`` in a command."""

    module: Token
    port: Token | None = None

    def __str__(self) -> str:
        return f"{self.module}.{self.port}" if self.port else str(self.module)


@dataclass(frozen=True)
class Command:
    """Base of every command: the place it came from, for error messages."""

    line: int
    col: int

    @property
    def verb(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Add(Command):
    type: Token
    name: Token
    params: tuple[tuple[Token, Token], ...] = ()

    def __str__(self) -> str:
        return " ".join(["add", self.type, self.name, *(f"{k}={v}" for k, v in self.params)])


@dataclass(frozen=True)
class Remove(Command):
    name: Token

    def __str__(self) -> str:
        return f"remove {self.name}"


@dataclass(frozen=True)
class Connect(Command):
    src: Endpoint
    dst: Endpoint

    def __str__(self) -> str:
        return f"connect {self.src} {self.dst}"


@dataclass(frozen=True)
class Disconnect(Command):
    src: Endpoint
    dst: Endpoint

    def __str__(self) -> str:
        return f"disconnect {self.src} {self.dst}"


@dataclass(frozen=True)
class Set(Command):
    target: Endpoint
    value: Token

    def __str__(self) -> str:
        return f"set {self.target} {self.value}"


@dataclass(frozen=True)
class Tempo(Command):
    bpm: Token

    def __str__(self) -> str:
        return f"tempo {self.bpm}"


@dataclass(frozen=True)
class Meter(Command):
    beats: int
    unit: int

    def __str__(self) -> str:
        return f"meter {self.beats}/{self.unit}"


@dataclass(frozen=True)
class Length(Command):
    bars: int

    def __str__(self) -> str:
        return f"length {self.bars}"


@dataclass(frozen=True)
class Pattern(Command):
    """``pattern TARGET "notation" [legato=x] [vel=x]``: TARGET is a note
    source (``kb``) or a parameter (``f1.cutoff``)."""

    target: Endpoint
    text: Token                       # without the quotes; col is the first character inside
    options: tuple[tuple[Token, Token], ...] = ()

    def __str__(self) -> str:
        return " ".join([f'pattern {self.target} "{self.text}"', *(f"{k}={v}" for k, v in self.options)])


@dataclass(frozen=True)
class At(Command):
    """``at BAR COMMAND``: run a command when bar BAR (counted from 1) starts."""

    bar: int
    command: Command

    def __str__(self) -> str:
        return f"at {self.bar} {self.command}"


@dataclass(frozen=True)
class Require(Command):
    """``require PACKAGE[>=VERSION]``: the file needs this plugin package."""

    requirement: Token

    def __str__(self) -> str:
        return f"require {self.requirement}"


@dataclass(frozen=True)
class Map(Command):
    """``map cc NUMBER NAME.PARAM [MIN MAX]``: a MIDI controller turns a
    parameter, from MIN at 0 to MAX at 127 (the parameter's range unless
    given); ``map cc NUMBER off`` removes the mapping."""

    cc: int
    target: Endpoint | None            # None: off
    low: Token | None = None
    high: Token | None = None

    def __str__(self) -> str:
        if self.target is None:
            return f"map cc {self.cc} off"
        bounds = f" {self.low} {self.high}" if self.low is not None else ""
        return f"map cc {self.cc} {self.target}{bounds}"


@dataclass(frozen=True)
class Midiout(Command):
    """``midiout NAME PORT [channel=N]``: a note target that plays on an
    external MIDI port, so patterns can drive outside gear."""

    name: Token
    port: Token                        # without quotes
    channel: int = 1

    def __str__(self) -> str:
        return f'midiout {self.name} "{self.port}" channel={self.channel}'
