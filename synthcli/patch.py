"""The patch: module instances, their parameter values and the cables
between them, changed only through commands of the language.

A patch is plain data (no DSP, no buffers). The engine compiles a snapshot of
it into a schedule; ``save`` writes it back as the canonical list of commands
that rebuilds it, so saving and loading round-trip exactly.
"""
from __future__ import annotations

import contextlib
import os
import stat
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from .errors import SynthError, UnknownModule, did_you_mean, name_problem, open_to_read
from .language import (Add, Command, Connect, Disconnect, Endpoint, Map, Midiout, Remove, Require, Set, Token,
                       lines, parse_text)
from .plugins import ModuleType, Registry
from .theory import DEFAULT_TEMPO, note_length, note_seconds

MASTER = "out"
#: The module type a ``midiout`` command declares.
MIDIOUT = "midiout"

#: While a remote edit is checked (see confined): the folder its files
#: must be in, and the files the session already used before it.
_CONFINED: ContextVar[tuple[Path | None, frozenset[str]]] = ContextVar("confined", default=(None, frozenset()))


@contextlib.contextmanager
def confined(within: Path | None, known: frozenset[str] = frozenset()):
    """Inside, a file parameter's value, in the patch or in any bar of a
    song, must name a file under ``within`` (None: anywhere) or one of
    ``known`` (resolved paths): a remote edit re-checks the whole song,
    whose files from the keyboard or a loaded file may lie elsewhere."""
    token = _CONFINED.set((within, known))
    try:
        yield
    finally:
        _CONFINED.reset(token)


#: Where a relative file path typed with no file to start from is found:
#: None, the working directory; while a journal replays, the folder it was
#: typed in (see typed_in).
_TYPED_IN: ContextVar[Path | None] = ContextVar("typed_in", default=None)


@contextlib.contextmanager
def typed_in(folder: Path | None):
    """Inside, a relative file path with no patch or song file to start
    from is found from ``folder`` (None: the working directory): a session
    resumed from another directory replays what was typed as it was meant."""
    token = _TYPED_IN.set(folder)
    try:
        yield
    finally:
        _TYPED_IN.reset(token)


def typed_folder() -> Path:
    """The folder a relative file path typed now is found from."""
    return _TYPED_IN.get() or Path.cwd()


def confine(name: str, path: Path, within: Path | None, known: frozenset[str] = frozenset()) -> None:
    """Refuse ``path`` (named ``name``) unless it is under ``within`` (or
    ``within`` is None, or it is ``known``). Called before anything looks
    at the file: whether it exists, is a folder or holds sound would tell
    a remote client about files it may not use, so the refusal is the same
    whatever is there."""
    if within is None:
        return
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):   # a symlink loop: not known to be inside
        resolved = None
    if resolved is None or not (resolved.is_relative_to(within) or str(resolved) in known):
        raise SynthError(f"'{name}' is outside the working directory; remote commands may only use files in it")


def synced_value(param, text: str, tempo: Fraction, clamp: bool = False) -> float:
    """The value of ``param`` set to the note length ``text`` at ``tempo``.

    Raises
    ------
    ValueError
        Out of the parameter's range, unless ``clamp``: a tempo that comes
        from another machine (Link) cannot be refused, only followed as
        far as the parameter goes.
    """
    return length_value(param, note_length(text), tempo, clamp, text)


def length_value(param, whole: Fraction, tempo: Fraction, clamp: bool = False, shown: str = "") -> float:
    """The value of ``param`` set to a note length of ``whole`` whole notes
    at ``tempo`` (written ``shown``, for the error); see :func:`synced_value`."""
    seconds = note_seconds(whole, tempo)
    value = float(seconds) if param.unit == "s" else float(1 / seconds)
    if param.min <= value <= param.max:
        return value
    if clamp:
        return min(max(value, param.min), param.max)
    raise ValueError(f"{shown} is {value:.6g} {param.unit} at {float(tempo):g} BPM, out of range{param.range_text()}")


def takes_note_length(param, text: str) -> bool:
    """Whether ``text`` sets ``param`` as a note length."""
    return param.note_lengths and note_length(text) is not None


@dataclass
class Instance:
    """One module in the patch: its type and every parameter's stored value."""

    type: ModuleType
    params: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cable:
    src: str
    src_port: str
    dst: str
    dst_port: str

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


@dataclass(frozen=True)
class Mapping:
    """A MIDI controller turning a parameter: ``low`` at 0, ``high`` at 127."""

    module: str
    param: str
    low: float
    high: float

    def value(self, cc_value: int) -> float:
        return self.low + (self.high - self.low) * cc_value / 127


class Patch:
    """A modular patch. Every patch has the stereo master ``out``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.modules: dict[str, Instance] = {}
        self.cables: list[Cable] = []
        self.requires: list[str] = []
        self.mappings: dict[int, Mapping] = {}     # MIDI controller number -> what it turns
        self.midi_ports: dict[str, str] = {}       # midiout module -> its MIDI output port
        self.kind = "patch"          # or "song": how errors name the file
        self.base: Path | None = None   # where relative file paths start (None: the current folder)
        #: (module, parameter) -> the note length it was set to, which its
        #: value follows whenever the tempo changes (see retempo).
        self.synced: dict[tuple[str, str], str] = {}
        self.tempo = DEFAULT_TEMPO    # the tempo the synced values hold for
        master = registry.get(MASTER)
        self.modules[MASTER] = Instance(master, {p.name: p.default_value for p in master.cls.params})

    def copy(self) -> "Patch":
        clone = Patch.__new__(Patch)
        clone.registry = self.registry
        clone.modules = {name: Instance(inst.type, dict(inst.params)) for name, inst in self.modules.items()}
        clone.cables = list(self.cables)
        clone.requires = list(self.requires)
        clone.mappings = dict(self.mappings)
        clone.midi_ports = dict(self.midi_ports)
        clone.kind = self.kind
        clone.base = self.base
        clone.synced = dict(self.synced)
        clone.tempo = self.tempo
        return clone

    # -- applying commands -------------------------------------------------

    def apply(self, command: Command) -> None:
        """Apply one command, or raise :class:`SynthError` and change nothing."""
        handler = getattr(self, f"_apply_{command.verb}", None)
        if handler is None:
            raise SynthError(f"'{command.verb}' does not change a patch", line=command.line, col=command.col)
        try:
            handler(command)
        except SynthError as error:
            raise error.at(line=command.line)

    def apply_all(self, commands: list[Command], source: str | None = None) -> None:
        """Apply a list atomically: on the first error nothing has changed.
        Relative file paths are found from ``source``'s folder."""
        trial = self.copy()
        if source is not None:
            trial.base = Path(source).parent
        for command in commands:
            try:
                trial.apply(command)
            except SynthError as error:
                raise error.at(source=source)
        self.modules, self.cables, self.requires = trial.modules, trial.cables, trial.requires
        self.mappings, self.midi_ports = trial.mappings, trial.midi_ports
        self.synced, self.tempo = trial.synced, trial.tempo

    def retempo(self, tempo: Fraction, clamp: bool = False) -> list[tuple[str, str, float]]:
        """Give every parameter set as a note length its value at ``tempo``;
        the changed ones as ``(module, parameter, value)``, for the engine.
        A value out of range raises SynthError and changes nothing, unless
        ``clamp`` (see synced_value)."""
        values = {}
        for (name, key), text in self.synced.items():
            param = self.modules[name].type.cls.param(key)
            try:
                values[(name, key)] = synced_value(param, text, tempo, clamp)
            except ValueError as error:
                raise SynthError(f"{name}.{key}={error}") from None
        self.tempo = tempo
        changed = []
        for (name, key), value in values.items():
            if self.modules[name].params[key] != value:
                self.modules[name].params[key] = value
                changed.append((name, key, value))
        return changed

    def _instance(self, name: Token) -> Instance:
        inst = self.modules.get(name)
        if inst is None:
            raise UnknownModule(name, self.modules, col=name.col)
        return inst

    def _apply_add(self, cmd: Add) -> None:
        try:
            mtype = self.registry.get(cmd.type, self._required_packages())
        except SynthError as error:
            raise error.at(col=cmd.type.col)
        if mtype.name == MASTER:
            raise SynthError("every patch already has the master 'out'; it cannot be added", col=cmd.type.col)
        if mtype.name == MIDIOUT:
            raise SynthError("a midiout needs its port: midiout NAME PORT [channel=N]", col=cmd.type.col)
        if cmd.name in self.modules:
            raise SynthError(f"a module named '{cmd.name}' already exists", col=cmd.name.col)
        params = {p.name: p.default_value for p in mtype.cls.params}
        lengths = {}
        for key, value in cmd.params:
            params[key], lengths[key] = self._value(mtype, key, value)
        self.modules[cmd.name] = Instance(mtype, params)
        for key, length in lengths.items():
            self._keep_length(cmd.name, key, length)

    def _apply_remove(self, cmd: Remove) -> None:
        self._instance(cmd.name)
        if cmd.name == MASTER:
            raise SynthError("the master 'out' cannot be removed", col=cmd.name.col)
        del self.modules[cmd.name]
        self.cables = [c for c in self.cables if cmd.name not in (c.src, c.dst)]
        self.mappings = {cc: m for cc, m in self.mappings.items() if m.module != cmd.name}
        self.midi_ports.pop(cmd.name, None)
        self.synced = {key: text for key, text in self.synced.items() if key[0] != cmd.name}

    def _required_packages(self) -> set[str]:
        """The plugin packages this file requires, whose modules a plain
        type name means when another plugin has one of that name too."""
        if not self.requires:
            return set()
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
        return {canonicalize_name(Requirement(r).name) for r in self.requires}

    def _value(self, mtype: ModuleType, key: Token, value: Token) -> tuple[float | str, str | None]:
        """The value an ``add`` or ``set`` stores, and the note length it was
        given as (None for a plain value): that one follows the tempo."""
        param = mtype.cls.param(key)
        if param is None or not takes_note_length(param, str(value)):
            return self._coerce(mtype, key, value), None
        try:
            return synced_value(param, str(value), self.tempo), str(value)
        except ValueError as error:
            raise SynthError(f"bad value '{value}' for {mtype.name}.{key}: {error}", col=value.col) from None

    def _keep_length(self, name: str, key: str, length: str | None) -> None:
        if length is None:
            self.synced.pop((name, key), None)
        else:
            self.synced[(name, key)] = length

    def _coerce(self, mtype: ModuleType, key: Token, value: Token) -> float | str:
        param = mtype.cls.param(key)
        if param is None:
            names = [p.name for p in mtype.cls.params]
            hint = did_you_mean(key, names) or (f" (it has: {', '.join(names)})" if names else " (it has none)")
            raise SynthError(f"module type '{mtype.name}' has no parameter '{key}'{hint}", col=key.col)
        try:
            coerced = param.coerce(str(value))
        except ValueError as error:
            raise SynthError(f"bad value '{value}' for {mtype.name}.{key}: {error}", col=value.col) from None
        if not param.file or not coerced:
            return coerced
        path = (self.base or typed_folder()) / Path(coerced).expanduser()
        try:
            confine(coerced, path, *_CONFINED.get())
        except SynthError as error:
            raise error.at(col=value.col) from None
        why = name_problem(coerced) or ("it is a folder" if path.is_dir() else None if path.is_file()
                                        else "no such file")
        if why is None and param.file == "sound":
            why = sound_problem(path)
        if why is not None:
            raise SynthError(f"bad value '{value}' for {mtype.name}.{key}: {why} ({path})", col=value.col)
        return str(path.resolve())

    def absolute(self, command: Command) -> Command:
        """``command``, just applied, with each file it names written as the
        absolute path it was found at: a song's `at 3 set s.file b.wav`
        means the file beside the song, and the REPL and the engine, which
        get the song as text with no folder, found it beside nothing."""
        if isinstance(command, Add):
            pairs, name = command.params, command.name
        elif isinstance(command, Set) and command.target.port is not None:
            pairs, name = ((command.target.port, command.value),), command.target.module
        else:
            return command
        if name not in self.modules:
            return command
        cls = self.modules[name].type.cls
        moved = tuple((key, Token(cls.param(key).format(self.modules[name].params[key]), value.col))
                      if cls.param(key) is not None and cls.param(key).file and value else (key, value)
                      for key, value in pairs)
        if moved == tuple(pairs):
            return command
        if isinstance(command, Add):
            return replace(command, params=moved)
        return replace(command, value=moved[0][1])

    def _cables_for(self, src: Endpoint, dst: Endpoint) -> list[Cable]:
        """Resolve the ports a cable command names (or implies)."""
        scls = self._instance(src.module).type.cls
        dcls = self._instance(dst.module).type.cls
        if src.port is None and dst.port is None and len(scls.outputs) > 1 and all(
                dcls.port(p.name, "in") for p in scls.outputs):
            return [Cable(src.module, p.name, dst.module, p.name) for p in scls.outputs]
        if src.port is None:
            if not scls.outputs:
                raise SynthError(f"'{src.module}' has no outputs", col=src.module.col)
            src_port = scls.outputs[0].name
        elif scls.port(src.port, "out"):
            src_port = src.port
        else:
            what = "an input" if scls.port(src.port, "in") or scls.param(src.port) else None
            if what:
                raise SynthError(f"'{src}' is {what}; a cable starts at an output", col=src.port.col)
            outs = [p.name for p in scls.outputs]
            raise SynthError(f"'{src.module}' ({scls.type_name}) has no output '{src.port}'"
                             f"{did_you_mean(src.port, outs) or ' (outputs: ' + ', '.join(outs) + ')'}",
                             col=src.port.col)
        if dst.port is None:
            if not dcls.inputs:
                raise SynthError(f"'{dst.module}' has no inputs", col=dst.module.col)
            dst_port = dcls.inputs[0].name
        elif dcls.port(dst.port, "in") or dcls.param(dst.port):
            param = dcls.param(dst.port)
            if param is not None and param.file:
                raise SynthError(f"'{dst}' names a file; set it, a cable cannot carry one", col=dst.port.col)
            if param is not None and param.structural:   # the module is built from its value: a cable changed nothing
                raise SynthError(f"'{dst}' shapes the module and cannot follow a cable; "
                                 f"change it with 'set {dst} VALUE' (or 'at BAR set {dst} VALUE')",
                                 col=dst.port.col)
            dst_port = dst.port
        elif dcls.port(dst.port, "out"):
            raise SynthError(f"'{dst}' is an output; connect an output to an input or a parameter",
                             col=dst.port.col)
        else:
            ins, params = [p.name for p in dcls.inputs], [p.name for p in dcls.params]
            every = f" (inputs: {', '.join(ins) or 'none'}; parameters: {', '.join(params) or 'none'})"
            raise SynthError(f"'{dst.module}' ({dcls.type_name}) has no input or parameter '{dst.port}'"
                             f"{did_you_mean(dst.port, ins + params) or every}", col=dst.port.col)
        return [Cable(src.module, src_port, dst.module, dst_port)]

    def _apply_connect(self, cmd: Connect) -> None:
        for cable in self._cables_for(cmd.src, cmd.dst):
            if cable in self.cables:
                raise SynthError(f"{cable} is already connected", col=cmd.src.module.col)
            self.cables.append(cable)

    def _apply_disconnect(self, cmd: Disconnect) -> None:
        cables = self._cables_for(cmd.src, cmd.dst)
        for cable in cables:
            if cable not in self.cables:
                raise SynthError(f"there is no cable {cable}", col=cmd.src.module.col)
        self.cables = [c for c in self.cables if c not in cables]

    def _apply_require(self, cmd: Require) -> None:
        problem = self.registry.unmet(cmd.requirement, self.kind)
        if problem:
            raise SynthError(problem, col=cmd.requirement.col)
        if str(cmd.requirement) not in self.requires:
            self.requires.append(str(cmd.requirement))

    def _apply_map(self, cmd: Map) -> None:
        if cmd.target is None:
            if cmd.cc not in self.mappings:
                raise SynthError(f"controller {cmd.cc} is not mapped", col=cmd.col)
            del self.mappings[cmd.cc]
            return
        inst = self._instance(cmd.target.module)
        param = inst.type.cls.param(cmd.target.port)
        if param is None or param.choices or param.structural:
            names = [p.name for p in inst.type.cls.params if not (p.choices or p.structural)]
            raise SynthError(f"'{cmd.target}' is not a parameter a controller can turn"
                             f"{did_you_mean(cmd.target.port, names)}", col=cmd.target.port.col)
        low, high = param.min, param.max
        if cmd.low is not None:
            low, high = (self._coerce(inst.type, cmd.target.port, bound) for bound in (cmd.low, cmd.high))
        self.mappings[cmd.cc] = Mapping(cmd.target.module, cmd.target.port, low, high)

    def _apply_midiout(self, cmd: Midiout) -> None:
        if cmd.name in self.modules:
            raise SynthError(f"a module named '{cmd.name}' already exists", col=cmd.name.col)
        self.modules[cmd.name] = Instance(self.registry.get(MIDIOUT), {"channel": float(cmd.channel)})
        self.midi_ports[cmd.name] = str(cmd.port)

    def _apply_set(self, cmd: Set) -> None:
        inst = self._instance(cmd.target.module)
        cls = inst.type.cls
        if cls.param(cmd.target.port) is None and cls.port(cmd.target.port, "in"):
            raise SynthError(f"'{cmd.target}' is an input, not a parameter; connect a cable to it",
                             col=cmd.target.port.col)
        key = cmd.target.port
        inst.params[key], length = self._value(inst.type, key, cmd.value)
        self._keep_length(cmd.target.module, key, length)

    # -- files ---------------------------------------------------------------

    def load_text(self, text: str, source: str | None = None) -> None:
        """Apply a whole patch text atomically (a file with any error changes nothing)."""
        self.apply_all(parse_text(text, source), source)

    def to_text(self, synced: bool = True) -> str:
        """The canonical patch file: ``add`` (or ``midiout``) lines with
        non-default parameters, then ``set`` for the master, then the
        cables, then the controller mappings. A parameter set as a note
        length is written as one, unless ``synced`` is False: an engine
        loading the text should get the values at this patch's tempo (a
        patch alone has no tempo line to carry it)."""
        lines = [f"require {requirement}" for requirement in self.requires]
        required = self._required_packages()
        for name, inst in self.modules.items():
            cls = inst.type.cls
            changed = []
            for p in cls.params:
                text = self.synced.get((name, p.name)) if synced else None
                if text is not None:
                    changed.append(f"{p.name}={text}")
                elif inst.params[p.name] != p.default_value:
                    changed.append(f"{p.name}={p.format(inst.params[p.name])}")
            if name == MASTER:
                lines += [f"set {MASTER}.{item.replace('=', ' ', 1)}" for item in changed]
                continue
            if name in self.midi_ports:
                lines.append(f'midiout {name} "{self.midi_ports[name]}" channel={inst.params["channel"]:g}')
                continue
            plain = self.registry.get(inst.type.name, required) is inst.type
            lines.append(" ".join(["add", inst.type.name if plain else inst.type.qualified_name, name, *changed]))
        lines += [f"connect {c.src}.{c.src_port} {c.dst}.{c.dst_port}" for c in self.cables]
        for cc, m in sorted(self.mappings.items()):
            param = self.modules[m.module].type.cls.param(m.param)
            lines.append(f"map cc {cc} {m.module}.{m.param} {param.format(m.low)} {param.format(m.high)}")
        return "\n".join(lines) + "\n"


#: Bytes a patch or song file may hold: a thousand times the longest song
#: one would write, and a bound on what a wrong path (a recording, a disk
#: image, /dev/zero) costs to refuse.
MAX_SOURCE_BYTES = 16 * 1024 * 1024


def read_source(path: str | Path) -> str:
    """The text of a patch or song file, or a SynthError naming the file.
    A byte-order mark (Windows editors write one) is not part of the text:
    kept, it would make the first word an unknown command."""
    problem = name_problem(path)
    if problem is not None:
        raise SynthError(f"cannot read: {problem}", source=repr(str(path)))
    path = Path(path)
    try:
        with open_to_read(path) as file:
            data = file.read(MAX_SOURCE_BYTES + 1)
            if not data and not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise SynthError("cannot read: it is not a file, and nothing writes to it", source=str(path))
    except OSError as error:
        raise SynthError(f"cannot read: {error.strerror}", source=str(path)) from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SynthError(f"not a patch or song file: it is over {MAX_SOURCE_BYTES // 2**20} MB", source=str(path))
    return decode_source(data, path)


#: UTF-8's byte-order mark, which some editors write before the text.
BOM = b"\xef\xbb\xbf"


def decode_source(data: bytes, path: str | Path) -> str:
    """The text of a patch or song file read as ``data`` (see read_source)."""
    while data.startswith(BOM):   # two: files joined, or an editor that marked a marked file
        data = data.removeprefix(BOM)
    nul = data.find(0)   # valid UTF-8, yet no text holds one: a binary file that decoded
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if not 0 <= nul < error.start:
            raise _binary(data, error.start, "is not valid UTF-8", path) from None
    if nul >= 0:
        raise _binary(data, nul, "(NUL) is not text", path)
    return text


def _binary(data: bytes, at: int, why: str, path: str | Path) -> SynthError:
    before = lines(data[:at].decode("utf-8", "replace"))
    return SynthError(f"not a text file: byte 0x{data[at]:02x} {why}", source=str(path),
                      line=len(before), col=len(before[-1]) + 1)


def sound_problem(path: Path) -> str | None:
    """Why libsndfile cannot read ``path`` as sound, or None: a sample
    named wrongly is refused where it is named, not when the sound plays."""
    import soundfile
    try:
        soundfile.info(str(path))
    except RuntimeError as error:   # libsndfile's own message: "Format not recognised", ...
        return f"not a sound file: {str(error).rsplit(': ', 1)[-1].rstrip('.')}"
    return None
