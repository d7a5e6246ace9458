"""The public module API: the contract between synthcli and every DSP module.

Third-party packages write modules against this file alone, so it stays small
and every change to it bumps :data:`API_VERSION`. See ``docs/modules.md``.

Signal conventions
------------------
* Audio is float, +/-1.0 full scale.
* Pitch CV is volts per octave, 0.0 = C4 = 261.6256 Hz.
* Gates are 0.0 or 1.0; a gate reads high above 0.5 and a rising edge triggers.
* Every buffer a module sees is a C-contiguous ``float64`` array of shape
  ``(channels, blocksize)``: cables are polyphonic (up to 16 channels) and a
  module renders all its channels in one call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

from .errors import did_you_mean

#: Version of this contract. A plugin may name the version it was written
#: for (``SYNTHCLI_API``); the host refuses one of another major version or
#: of a newer minor one, which may use what this one lacks
#: (plugins.api_mismatch).
API_VERSION = "1.5"

#: The most channels one cable carries (as in VCV Rack).
MAX_CHANNELS = 16

#: Frequency of pitch CV 0.0 (C4), in Hz.
C4_HZ = 261.6255653005986
#: Units of the parameters that take a note length (``time=3/16``): a time
#: lasts it, a rate repeats once in it.
NOTE_LENGTH_UNITS = ("s", "Hz")

AUDIO = "audio"
CONTROL = "control"


class NoteOn(NamedTuple):
    """Start a note: MIDI note number (fractions allowed) and velocity 0..1."""

    note: float
    velocity: float = 1.0


class NoteOff(NamedTuple):
    """Release the note started by a :class:`NoteOn` of the same number."""

    note: float


class AllNotesOff(NamedTuple):
    """Release every voice (the transport stopped, a panic)."""


@dataclass(frozen=True)
class Port:
    """An input or output jack of a module.

    Parameters
    ----------
    name : str
        Identifier used in ``connect NAME.PORT``.
    kind : {"audio", "control"}
        Informational: audio-rate signal or control voltage (CV, gates).
    doc : str
        One line shown by ``synth modules``.
    default : float
        What an unconnected input reads (for example 1.0 for a gain input).
    channels : int or None
        Fixed channel count of an output (the master is stereo); ``None``
        means the module's own channel count.
    """

    name: str
    kind: str = AUDIO
    doc: str = ""
    default: float = 0.0
    channels: int | None = None


@dataclass(frozen=True)
class Param:
    """A parameter: set by ``set NAME.PARAM VALUE`` and modulated by cables.

    A cable into ``NAME.PARAM`` is added to the set value, in the
    parameter's unit, sample by sample. Numeric values glide to a new
    setting over 5 ms from its sample so nothing clicks; choices, whole
    numbers and parameters with ``glide=False`` switch on their sample.
    The module always reads a parameter as a ``(channels, blocksize)``
    array, a choice as the index of the chosen name.

    Parameters
    ----------
    name, doc : str
    default : float or str
        A number, or one of ``choices``.
    min, max : float
        Allowed range of the set value (modulation may leave it; clamp in
        the kernel where that matters).
    unit : str
        Shown to users: "Hz", "s", "dB", ... A parameter in "Hz" also
        takes a note name, as its equal-tempered frequency (``a4`` is 440,
        ``c4`` is :data:`C4_HZ`), in a set and in a pattern. A parameter
        in "s" or "Hz" also takes a note length in a set (``3/16``,
        ``1/8d`` dotted, ``1/8t`` triplet): the host keeps it and sets the
        parameter anew, to last it or to repeat once in it, whenever the
        tempo changes; the module only ever reads seconds or Hz.
    choices : tuple of str
        Makes the parameter an enumeration.
    integer : bool
        Only whole numbers are accepted.
    structural : bool
        Changing it rebuilds the module (a new channel count, say): the
        module is created anew and its state starts from scratch.
    file : {"", "sound", "data"}
        Makes the value the path of a file, not a number: the module reads
        it in ``setup()`` from ``self.files[name]`` ("" for none). "sound"
        files are checked, where they are named, to be sound libsndfile
        reads (the ``soundfile`` package); "data" files only to exist. Such
        a parameter is structural, takes no cable and cannot be turned by
        a pattern or a controller. Relative paths are found from the folder
        of the patch or song that names them (else the current one), and
        kept absolute.
    glide : bool
        False makes a set number step to its value on its sample, as a
        choice does, instead of gliding over 5 ms: for a value the module
        reads at one instant (where in a file a note starts, read as the
        note starts), which a glide would catch part way, at a value
        between the old and the new.
    aliases : tuple of (str, str)
        Other names a choice answers to, as ``(alias, choice)`` pairs, in
        sets and patterns: a musician writes a root as ``c#``, ``db`` or
        ``C#`` as often as the choice's own ``cs``. ``save`` writes the
        choice's own name.
    """

    name: str
    default: float | str
    min: float = 0.0
    max: float = 1.0
    unit: str = ""
    choices: tuple[str, ...] = ()
    doc: str = ""
    integer: bool = False
    structural: bool = False
    file: str = ""
    glide: bool = True
    aliases: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.file:   # a new file is a new module: what it read in setup() is gone
            object.__setattr__(self, "structural", True)
        strays = [choice for _, choice in self.aliases if choice not in self.choices]
        if strays:   # found as the plugin is written, not when a musician first types the alias
            raise ValueError(f"Param {self.name!r}: aliases name {strays[0]!r}, which is not one of its choices")

    @property
    def note_lengths(self) -> bool:
        """Whether a note length sets it (see ``unit``): not a parameter
        that rebuilds the module, nor a whole number or a choice, which a
        tempo would make fractional."""
        return self.unit in NOTE_LENGTH_UNITS and not (self.structural or self.integer or self.choices)

    @property
    def steps(self) -> bool:
        """Whether a set takes its value on its own sample, with no glide:
        a choice or a whole number has nothing in between to glide through."""
        return bool(self.choices) or self.integer or not self.glide

    def coerce(self, value: Any) -> float | str:
        """Turn user input into the value the engine stores: a float, or
        for a file parameter the path as text (without quotes).

        Raises
        ------
        ValueError
            With a message that says what was expected.
        """
        if self.file:
            if not isinstance(value, str):
                raise ValueError("expected a file name")
            return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        if self.choices:
            if isinstance(value, str):
                value = dict(self.aliases).get(value, value)
            if isinstance(value, str) and value in self.choices:
                return float(self.choices.index(value))
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < len(self.choices):
                index = int(value)   # (compared first: int() of an infinity raises, of a NaN too)
                if index == value:
                    return float(index)
            hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
            raise ValueError(f"expected one of {', '.join(self.choices)}{hint}")
        if isinstance(value, str) and not (value.isascii() and "_" not in value and value == value.strip()):
            raise ValueError(f"expected {self._forms()}{self.range_text()}")   # float() also reads '１００', '1_000'
        label = value
        try:
            number = float(value)
        except (TypeError, ValueError):
            if self.note_lengths and isinstance(value, str):
                from .theory import note_length
                if note_length(value) is not None:   # not "expected ... a note length such as 1/8d" for 1/8d
                    raise ValueError(f"{value} is a note length, which a patch turns into "
                                     f"{'seconds' if self.unit == 's' else 'Hz'} at its tempo; coerce() "
                                     f"takes the number") from None
            expected = f"expected {self._forms()}{self.range_text()}"
            if self.unit != "Hz" or not isinstance(value, str):
                raise ValueError(expected) from None
            number = _note_hz(value, expected)
            label = f"{value} ({number:.6g} Hz)"
        if not math.isfinite(number):
            overflow = isinstance(value, str) and value.lstrip("+-").lower() not in ("inf", "infinity", "nan")
            raise ValueError(f"{'out of range' if overflow else 'expected a finite number'}{self.range_text()}")
        if self.integer and number != int(number):
            raise ValueError(f"expected a whole number{self.range_text()}")
        if not self.min <= number <= self.max:
            raise ValueError(f"{label} is out of range{self.range_text()}")
        return number

    def format(self, value: float | str) -> str:
        """The canonical text of a stored value, as ``save`` writes it."""
        if self.file:
            plain = value and not any(ch.isspace() or ch in '"#=' for ch in value)
            return value if plain else f'"{value}"'
        if self.choices:
            return self.choices[int(value)]
        if self.integer:
            return str(int(value))
        return _num(float(value))

    def _forms(self) -> str:
        """What a value of it may be written as, for the error that says
        what was expected: a musician who wrote a note length wrong should
        not be told that only numbers are taken."""
        forms = ["a number"] + ["a note name such as a4"] * (self.unit == "Hz") + (
            ["a note length such as 1/8d"] * self.note_lengths)
        return " or ".join(forms) if len(forms) < 3 else f"{', '.join(forms[:-1])} or {forms[-1]}"

    def range_text(self) -> str:
        """The values it takes, as ``help`` and ``info`` show them after its
        name: `` (20..20000 Hz)``, `` (sine|saw)``, `` (a sound file)``."""
        if self.file:
            return f" (a {'sound ' if self.file == 'sound' else ''}file)"
        if self.choices:
            return f" ({'|'.join(self.choices)})"
        unit = f" {self.unit}" if self.unit else ""
        return f" ({_num(self.min)}..{_num(self.max)}{unit})"

    @property
    def default_value(self) -> float | str:
        """The default as the module reads it in ``params``: a number, or a
        choice's name or a file's path as written."""
        return self.coerce(self.default)


def _note_hz(text: str, expected: str) -> float:
    """A note name's frequency, for a parameter in Hz: a musician tunes a
    drone, a comb or a cutoff to a note more often than to a number."""
    from .errors import SynthError
    from .sequencer.notation import note_to_midi
    from .theory import note_hz
    try:
        return note_hz(note_to_midi(text))
    except SynthError as error:
        if "outside MIDI" in error.message:
            raise ValueError(f"note {text} is outside MIDI 0-127 (c-1 to g9)") from None
        raise ValueError(expected) from None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


class Module:
    """Base class of every DSP module.

    Subclasses declare the class attributes and implement :meth:`process`.
    The engine creates one instance per module in a patch, possibly inside
    a worker process, so a module must keep all its state in attributes
    named by ``state_fields`` (numpy arrays), which lets the engine move a
    module between processes or bring it back after a crash.

    Attributes
    ----------
    type_name : str
        What ``add TYPE NAME`` calls it.
    description : str
        One line for ``synth modules``.
    inputs, outputs : tuple of Port
    params : tuple of Param
    state_fields : tuple of str
        Names of the numpy-array attributes that hold DSP state.
    accepts_notes : bool
        A note source: patterns and MIDI send it NoteOn/NoteOff events.
    samplerate : float
    blocksize : int
    channels : int
        The module's channel count, fixed for the life of the instance.
    files : dict of str to str
        The absolute path of each file parameter ("" for none), set
        before ``setup()``.
    """

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    params: ClassVar[tuple[Param, ...]] = ()
    state_fields: ClassVar[tuple[str, ...]] = ()
    accepts_notes: ClassVar[bool] = False

    def __init__(self, samplerate: float, blocksize: int, channels: int,
                 files: Mapping[str, str] | None = None) -> None:
        self.samplerate = float(samplerate)
        self.blocksize = int(blocksize)
        self.channels = int(channels)
        self.files = {p.name: str(p.default) for p in self.params if p.file} | dict(files or {})
        self.setup()

    @classmethod
    def channel_count(cls, params: Mapping[str, float], inputs: Mapping[str, int]) -> int:
        """The channel count of an instance, from its parameters and the
        channel counts of the cables plugged into it (inputs and parameter
        ports alike). The default follows the widest cable, as VCV Rack does."""
        return max(inputs.values(), default=1)

    def setup(self) -> None:
        """Allocate per-channel state; called once by ``__init__``."""

    @classmethod
    def warm(cls, files: Mapping[str, str]) -> None:
        """Do ahead what ``setup()`` would take long over for these files
        (their paths, as ``files`` will hold them), so that it finds the
        work done. Live play calls it off the render thread before a patch
        builds such an instance, and renders on meanwhile: a slow
        ``setup()`` on the render thread (a long sound decoded) would
        starve the device. A plugin's runs in a process of its own, ended
        after 30 s, so that a crash or hang there costs nothing: keep what
        it makes on disk, where ``setup()`` in any process finds it, not in
        memory. Offline renders do not call it. The ``sampler`` decodes
        its sound into a cache here, which its ``setup()`` maps. The
        default does nothing."""

    def process(
        self,
        inputs: Mapping[str, Any],
        params: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """Render one block: read ``inputs`` and ``params``, fill every array
        of ``outputs`` in place. All arrays are ``(channels, blocksize)``
        float64 (an output with a fixed ``Port.channels`` has that many rows).
        Never allocate per call in a loop and never block."""
        raise NotImplementedError

    def on_event(self, offset: int, event: tuple) -> None:
        """Receive a timed message (a note, say) before the block it falls
        in is processed; ``offset`` is the sample within that block. Modules
        that take no messages keep this default, which ignores them."""

    def get_state(self) -> dict[str, Any]:
        """A copy of each array named in ``state_fields``: what the engine
        re-creates the module from in another worker process (moved there,
        or after its worker crashed), so a filter or a delay line goes on
        rather than starting again silent (docs/modules.md, State)."""
        return {name: getattr(self, name).copy() for name in self.state_fields}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Copy values of :meth:`get_state` back into the arrays
        ``setup()`` made, in place (a kernel may hold views of them). A
        name missing from ``state`` is left as ``setup()`` made it: the
        state of an older version of the module still loads."""
        for name in self.state_fields:
            if name in state:
                getattr(self, name)[...] = state[name]

    @classmethod
    def port(cls, name: str, direction: str) -> Port | None:
        """The input (``direction="in"``) or output (``"out"``) of that
        name, or None."""
        for port in cls.inputs if direction == "in" else cls.outputs:
            if port.name == name:
                return port
        return None

    @classmethod
    def param(cls, name: str) -> Param | None:
        """The parameter of that name, or None."""
        for param in cls.params:
            if param.name == name:
                return param
        return None
