"""Running one module for one block: the single piece of per-block work that
every executor shares, which is what keeps their output bit-identical."""
from __future__ import annotations

import functools
import math
import time
import traceback
from typing import Callable

import numpy as np

from ..api import Module
from ..errors import Terminated, one_line
from . import jit
from .jit import helper, kernel
from .board import BLOCKS, BYPASS, FADE, SECONDS, WORST, Board
from .schedule import Node, Schedule, Source

#: How long a set number glides (see Engine.set) and, at the least, an
#: edit's fades last: quick enough to be heard at once, slow enough that a
#: step in a level or a cutoff, or a cable patched in, does not click. The
#: fades take whole blocks: one at 256 samples, four at 64, where a fade of
#: one block (1.3 ms) still ticked.
SMOOTH_SECONDS = 0.005

#: How an executor tells the engine a module failed: its name, the reason,
#: and whether it can never work (quarantine it at once).
Report = Callable[..., None]


class Step:
    """One module bound to its views of the board, so a block costs no
    lookups. ``waits`` are the indices of modules run elsewhere whose
    outputs this one reads in the same block. A fading cable (see
    Source.fade) is gathered from a scratch buffer that ``ramps`` fills
    with the cable's block times the ramp's row ``blocks`` (steps are
    built afresh for each schedule, and an edit's transition schedule
    plays only its fades): the gathers stay as they are."""

    __slots__ = ("index", "name", "module", "inputs", "params", "outputs", "bound", "sounding", "gathers", "choices",
                 "ramps", "span", "delay_writes", "waits", "fade", "stats", "blocks", "seconds", "worst")

    def __init__(self, index: int, node: Node, module: Module, board: Board, waits: tuple[int, ...],
                 fade: np.ndarray) -> None:
        arena = board.arena
        view = lambda rows: arena[rows.start:rows.stop]
        self.index = index
        self.name = node.name
        self.module = module
        self.inputs = {k: view(r) for k, r in node.inputs.items()}
        self.params = {k: view(r) for k, r in node.param_rows.items()}
        self.outputs = {k: view(r) for k, r in node.outputs.items()}
        self.bound = tuple((label, views, k, v) for label, views in
                           (("inputs", self.inputs), ("params", self.params), ("outputs", self.outputs))
                           for k, v in views.items())
        # A plugin's outputs are looked at every block (see rebound); the
        # built-ins, which the contract tests hold to writing into theirs,
        # cost nothing more than every sixteenth block.
        self.sounding = () if type(module).__module__.startswith(BUILTIN_MODULES) else tuple(
            b for b in self.bound if b[0] == "outputs")
        self.gathers = []
        self.ramps = []
        self.fade = fade
        for g in node.gathers:
            (rows, slots), *more = [self._source(s, view) for s in g.sources]
            dest = view(g.dest)
            from_base = g.base is not None
            self.gathers.append((dest, view(g.base) if from_base else dest, from_base, rows, slots, more))
        # A cable into a choice (an lfo into a vco's wave) makes indices no
        # choice has, fractional or past either end: each module rounded or
        # clamped them its own way, or not (the vcf raised IndexError).
        # None when there are none, nearly always: a test of None costs a
        # step 7 ns, a loop over an empty list 28 (4.5 us a block of 32 voices).
        self.choices = [(view(g.dest), g.last) for g in node.gathers if g.last >= 0] or None
        self.span = view(node.output_span)
        self.delay_writes = [(view(src), tuple(map(view, slots))) for src, slots in node.delay_writes]
        self.waits = waits
        self.stats = board.stats[index]
        self.blocks, self.seconds, self.worst = 0, 0.0, 0.0

    def _source(self, source: Source, view: Callable) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """What a gather reads for one cable: its rows or its delay slots, or
        for a fading cable the scratch buffer its ramp fills."""
        rows, slots = view(source.rows), tuple(map(view, source.delayed)) if source.delayed else None
        if not source.fade:
            return rows, slots
        scratch = np.empty_like(rows)
        self.ramps.append((rows, slots, self.fade if source.fade < 0 else 1.0 - self.fade, scratch))
        return scratch, None


#: Where the built-in modules live (see Step.sounding).
BUILTIN_MODULES = "synthcli.modules."

#: CPU statistics reach the board every this many blocks: writing numpy
#: scalars costs more than the arithmetic, and monitors read far less often.
PUBLISH_EVERY = 16


@kernel(fastmath={"reassoc"})
def all_finite(span):
    """True when no sample is NaN or +/-Inf: one reassociable sum, which any
    such sample poisons. A tenth of the cost of numpy's sum at block sizes."""
    total = 0.0
    rows, n = span.shape
    for r in range(rows):
        for i in range(n):
            total += span[r, i]
    return math.isfinite(total)


@helper
def _add(dest, src):
    """Add a cable into an input, the way cables of different widths mix:
    row by row at the same width, a mono cable spread to every channel, a
    wider one folded (channel k into k mod the width, every voice counted
    once), a narrower one repeated."""
    wide, n = src.shape
    narrow = dest.shape[0]
    if wide == narrow:
        for c in range(narrow):
            for i in range(n):
                dest[c, i] += src[c, i]
    elif wide == 1:
        for c in range(narrow):
            for i in range(n):
                dest[c, i] += src[0, i]
    elif wide > narrow:
        for k in range(wide):
            for i in range(n):
                dest[k % narrow, i] += src[k, i]
    else:
        for c in range(narrow):
            for i in range(n):
                dest[c, i] += src[c % wide, i]


@kernel
def gather(dest, base, src, from_base):
    """Start an input from its parameter's set value (``from_base``) or
    from silence, and add its first cable: one call per input, where
    np.copyto and an add took two, 0.5-0.8 us each on every block."""
    if from_base:
        dest[...] = base
    else:
        dest[...] = 0.0
    _add(dest, src)


@kernel
def accumulate(dest, src):
    """Add a further cable (see _add). numpy took three to five times as
    long for the 8 cables of 16 voices into the master, 37 us a block."""
    _add(dest, src)


def run_step(step: Step, block: int, board: Board, report: Report) -> None:
    """Gather inputs, process, guard against NaN/Inf, feed delayed cables,
    publish progress. A bypassed (quarantined) module outputs silence."""
    start = time.perf_counter()
    for rows, slots, ramp, scratch in step.ramps:
        np.multiply(slots[(block - 1) % 2] if slots else rows, ramp[min(step.blocks, len(ramp) - 1)], out=scratch)
    for dest, base, from_base, rows, slots, more in step.gathers:
        gather(dest, base, slots[(block - 1) % 2] if slots else rows, from_base)
        for rows, slots in more:
            accumulate(dest, slots[(block - 1) % 2] if slots else rows)
    if step.choices is not None:
        for dest, last in step.choices:
            np.rint(dest, out=dest)
            np.clip(dest, 0.0, last, out=dest)
    flag = board.flags[step.index]
    if flag == BYPASS:
        step.span[...] = 0.0
    else:
        try:
            returned = step.module.process(step.inputs, step.params, step.outputs)
        except SetupFailed as error:   # it will fail every block: no use trying twice more
            step.span[...] = 0.0
            report(step.name, str(error), True)
        except Terminated:   # SIGTERM, raised in whatever ran: ours to stop on, no fault of the module's
            raise
        except (Exception, SystemExit) as error:  # a module's bug (a sys.exit too) silences that module, not the patch
            step.span[...] = 0.0
            report(step.name, one_line(error, "process()"))
        else:
            if returned is not None:   # its sound, most likely, which nothing would ever hear
                step.span[...] = 0.0
                report(step.name, "process() returned a value, which the engine ignores: write the sound into "
                                  "outputs[NAME][...]")
            elif ((step.sounding or step.blocks % PUBLISH_EVERY == 0)
                  and (lost := rebound(step.bound if step.blocks % PUBLISH_EVERY == 0 else step.sounding))):
                step.span[...] = 0.0
                report(step.name, f"process() assigned {lost} instead of writing into it, so its sound was "
                                  f"lost (write {lost}[...] = ...)")
            elif not all_finite(step.span):
                step.span[...] = 0.0
                report(step.name, "output was NaN or Inf")
        if flag == FADE:
            step.span *= step.fade[min(step.blocks, len(step.fade) - 1)]
            if step.blocks >= len(step.fade) - 1:
                board.flags[step.index] = BYPASS
    for src, slots in step.delay_writes:
        np.copyto(slots[block % 2], src)
    board.progress[step.index] = block
    spent = time.perf_counter() - start
    step.blocks += 1
    step.seconds += spent
    if spent > step.worst:
        step.worst = spent
    if step.blocks % PUBLISH_EVERY == 0:
        step.stats[BLOCKS], step.stats[SECONDS], step.stats[WORST] = step.blocks, step.seconds, step.worst


def rebound(bound: tuple) -> str:
    """The first of these views (``Step.bound``) that the module replaced
    in its dict (``outputs["out"] = x * g`` rather than ``outputs["out"][...]
    = ...``), put back; "" when none was. Its outputs are looked at every
    block: a block the module did not write into the board is the last one
    played again, a buzz at the block rate until the fault silences it.
    A replaced input or parameter only stops the module hearing it, and
    every sixteenth block (with the first) is check enough."""
    lost = ""
    for label, views, key, view in bound:
        if views.get(key) is not view:
            lost = lost or f"{label}[{key!r}]"
            views[key] = view
    return lost


def measured_costs(schedule: Schedule | None, board: Board | None) -> dict[str, float]:
    """Mean CPU seconds per block of every module that has run."""
    if schedule is None or board is None:
        return {}
    return {node.name: board.stats[i, SECONDS] / board.stats[i, BLOCKS]
            for i, node in enumerate(schedule.nodes) if board.stats[i, BLOCKS] > 0}


def fade_blocks(blocksize: int, samplerate: float) -> int:
    """How many blocks an edit's fades take: SMOOTH_SECONDS, rounded up."""
    return max(1, math.ceil(SMOOTH_SECONDS * samplerate / blocksize))


@functools.lru_cache(maxsize=8)
def fade_out(blocksize: int, blocks: int) -> np.ndarray:
    """A raised-cosine ramp from 1 to 0 over ``blocks`` blocks, a row a
    block, for modules and cables that leave the patch while it plays
    (they fade instead of clicking); one less it is a new cable's fade-in."""
    length = blocksize * blocks
    ramp = 0.5 + 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)
    return ramp.reshape(blocks, blocksize)


class SetupFailed(Exception):
    """What a module whose construction raised says on every block."""


class Broken:
    """Stands in for a module whose construction raised: it fails every
    block, so the engine silences, reports and in the end quarantines it
    like any module that fails, and the rest of the patch plays on."""

    state_fields = ()

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def process(self, inputs, params, outputs) -> None:
        raise SetupFailed(self.reason)

    def on_event(self, offset: int, event) -> None:
        pass

    def get_state(self) -> dict:
        return {}

    def set_state(self, state) -> None:
        pass


def identity(node: Node, cls: type[Module]) -> tuple:
    """What must stay the same for a running module to be kept (with its
    state) across a patch edit: type, width and structural parameters."""
    return node.type, node.channels, tuple(node.params[p.name] for p in cls.params if p.structural)


def _raised_in(function: str, error: BaseException) -> bool:
    """Whether a frame of ``function`` was on the way to ``error``: the
    plugin author is told the method of theirs to look in."""
    return any(frame.f_code.co_name == function for frame, _ in traceback.walk_tb(error.__traceback__))


class Host:
    """The module instances one partition runs, kept across patch edits
    when their identity does not change."""

    def __init__(self, samplerate: float, blocksize: int) -> None:
        jit.ready()   # before any kernel runs
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.modules: dict[str, Module] = {}
        self.identities: dict[str, tuple] = {}

    def update(self, wanted: dict[str, tuple[Node, type[Module]]],
               states: dict[str, tuple[tuple, dict]] | None = None,
               starting: Callable[[str], None] | None = None) -> None:
        """Have exactly the ``wanted`` modules, new ones set up (after a call
        of ``starting`` with the name, which lets a worker say which setup
        crashed it), the rest kept as they are. A new one takes its state
        from ``states`` (see `states`) only if it has the identity the state
        was saved under: a module removed and added again under its name,
        or one whose width changed, starts afresh, as it does inline. A
        node that continues another name's instance takes it over."""
        modules, identities = {}, {}
        for name, (node, cls) in wanted.items():
            identities[name] = key = identity(node, cls)
            known = node.continues or name
            if self.identities.get(known) == key:
                modules[name] = self.modules[known]
                continue
            if starting is not None:
                starting(name)
            where, module = "setup()", None
            try:
                files = {p.name: node.params[p.name] for p in cls.params if p.file}
                modules[name] = module = cls(self.samplerate, self.blocksize, node.channels,
                                             **({"files": files} if files else {}))
                for field in module.state_fields:   # else it fails only where a worker saves its state
                    if not isinstance(getattr(module, field, None), np.ndarray):
                        raise TypeError(f"state field '{field}' is not a numpy array after setup()")
                saved = (states or {}).get(name)
                if saved is not None and saved[0] == key:
                    where = "set_state()"
                    module.set_state(saved[1])
            except Terminated:
                raise
            except (Exception, SystemExit) as error:   # a plugin's bug: that module fails, not the patch
                if module is None and not _raised_in("setup", error):   # its own __init__, not the base class's
                    where = "__init__()"
                modules[name] = Broken(one_line(error, where))
        self.modules, self.identities = modules, identities

    def deliver(self, name: str, offset: int, event: tuple, report: Report) -> None:
        """An event for a module: one that raises in on_event is that
        module's fault, reported like a process() that raises."""
        try:
            self.modules[name].on_event(offset, event)
        except Terminated:
            raise
        except (Exception, SystemExit) as error:
            report(name, one_line(error, "on_event()"))

    def states(self, report: Report, limit: float = float("inf")) -> dict[str, tuple[tuple, dict]]:
        """Every module's identity and state (those of at most ``limit``
        bytes); a module whose state cannot be read is reported and left
        out, and so is a broken one, which has none."""
        states = {}
        for name, module in self.modules.items():
            if isinstance(module, Broken):
                continue
            try:
                if sum(getattr(getattr(module, f), "nbytes", 0) for f in module.state_fields) <= limit:
                    states[name] = self.identities[name], module.get_state()
            except Terminated:
                raise
            except (Exception, SystemExit) as error:
                report(name, one_line(error, "get_state()"))
        return states

    def steps(self, schedule: Schedule, board: Board, names: set[str]) -> list[Step]:
        """Steps for ``names`` in schedule order, each waiting on the
        producers (outside ``names``) of its zero-delay inputs."""
        index = {node.name: i for i, node in enumerate(schedule.nodes)}
        producers: dict[str, set[str]] = {}
        for cable in schedule.cables:
            if cable not in schedule.delayed and cable.src not in names:
                producers.setdefault(cable.dst, set()).add(cable.src)
        fade = fade_out(self.blocksize, fade_blocks(self.blocksize, self.samplerate))
        return [Step(index[node.name], node, self.modules[node.name], board,
                     tuple(sorted(index[p] for p in producers.get(node.name, ()))), fade)
                for node in schedule.nodes if node.name in names]
