"""The engine: runs a patch block by block on an executor.

The engine owns what must be identical whatever executes the modules: the
schedule, the arena of buffers, parameter values and their smoothing, and
timed events. An executor only decides *where* each module's ``process``
runs (this thread, a thread pool, worker processes).
"""
from __future__ import annotations

import heapq
import itertools
import os
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable, Protocol

import numpy as np

from ..errors import SynthError
from ..patch import Cable, Patch
from ..plugins import BUILTIN_PACKAGE, Registry
from .board import BLOCKS, BYPASS, FADE, RUN, SECONDS, Board
from .schedule import Node, Schedule, compile_patch
from .steps import SMOOTH_SECONDS, fade_blocks, identity


class Executor(Protocol):
    """Where modules run. The board an executor returns from ``rebuild`` is
    shared with the engine, which writes parameters into it between blocks."""

    name: str

    def rebuild(self, schedule: Schedule) -> Board: ...
    def deliver(self, name: str, offset: int, event: tuple) -> None: ...
    def run_block(self, block: int) -> None: ...
    def close(self) -> None: ...


#: A module that fails this often within QUARANTINE_WINDOW seconds of audio
#: is bypassed for good. Counting in audio time, not wall time, keeps the
#: decision the same on every executor and at any render speed.
QUARANTINE_FAULTS = 3
QUARANTINE_WINDOW = 10.0


@dataclass
class ModuleStats:
    """What the engine knows about one module's health."""

    faults: int = 0
    last_fault: str = ""
    last_held: bool = True   # whether the last fault was the module's own (see Engine.fault)
    fault_times: list[int] = field(default_factory=list)
    quarantined: bool = False


EXECUTORS = ("inline", "threads", "processes", "auto")

#: ``auto`` runs a schedule inline, measures what each module costs over
#: AUTO_MEASURE blocks after AUTO_SETTLE (the first blocks fill caches, and
#: under the JIT compile), then moves to worker processes if they would pay:
#: the busiest process, with its hand-off, would take at most AUTO_SHARE of
#: the time inline takes, saving at least AUTO_SAVING seconds a block (a
#: worker's fork must be worth it). Statistics reach the board every
#: PUBLISH_EVERY blocks, so both counts are multiples of it.
AUTO_SETTLE = 16
AUTO_MEASURE = 32
AUTO_SHARE = 0.8
AUTO_SAVING = 20e-6


def default_workers() -> int:
    """Sized to the machine: the engine process computes too, so one
    worker per core beyond the first (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


def max_workers() -> int:
    return max(4, 2 * (os.cpu_count() or 2))


def check_executor(kind: str, workers: int | None, live: bool = False, name: str = "executor") -> None:
    """Refuse a bad ``--executor``/``--workers`` before anything is started;
    ``name`` is what the caller called the choice (the CLI: its flag)."""
    if kind not in EXECUTORS:
        choices = [each for each in EXECUTORS if not (live and each == "auto")]
        raise SynthError(f"unknown {name} '{kind}' (choose {', '.join(choices)})")
    if live and kind == "auto":
        raise SynthError(f"{name} auto is for rendering; live play uses inline, threads or processes")
    if workers is not None and workers < 1:
        raise SynthError(f"--workers must be at least 1, got {workers}")
    if workers is not None and workers > max_workers():
        raise SynthError(f"--workers {workers} is more than makes sense on {os.cpu_count()} cores "
                         f"(at most {max_workers()})")


def make_executor(kind: str, registry: Registry, samplerate: float, blocksize: int,
                  workers: int | None, report: Callable[..., None], deadline: float, live: bool,
                  say: Callable[[str], None] | None = None, spin: bool | None = None) -> Executor:
    """Build an executor by name, importing only the one asked for (``auto``
    starts inline: the engine decides later)."""
    check_executor(kind, workers, live)
    if kind in ("inline", "auto"):
        from .inline import InlineExecutor
        return InlineExecutor(registry, samplerate, blocksize, report)
    if kind == "threads":
        from .threads import ThreadExecutor
        return ThreadExecutor(registry, samplerate, blocksize, report, workers or default_workers())
    from .processes import ProcessExecutor
    return ProcessExecutor(registry, samplerate, blocksize, report, workers, deadline, live, say, spin)


def glide_into(row: np.ndarray, a: int, b: int, start: float, target: float, played: int,
               ramp: np.ndarray) -> int:
    """Write samples ``a:b`` of ``row`` from a glide from ``start`` to
    ``target`` of which ``played`` samples have gone; how many it wrote.
    Its last sample, and any after, is ``target`` exactly: the ramp's
    product would leave it an ulp off, a step when the value then holds."""
    ramping = min(b - a, max(0, len(ramp) - 1 - played))
    if ramping > 0:
        np.multiply(ramp[played:played + ramping], target - start, out=row[a:a + ramping])
        row[a:a + ramping] += start
    row[a + ramping:b] = target
    return b - a


def glide_at(start: float, target: float, played: int, ramp: np.ndarray) -> float:
    """The value of the last sample :func:`glide_into` wrote, ``played`` in."""
    if played >= len(ramp):
        return target
    return start + ramp[played - 1] * (target - start) if played else start


class Engine:
    """Render a patch block by block.

    Parameters
    ----------
    registry : Registry
        Where module types come from.
    samplerate : float
    blocksize : int
    executor : {"inline", "threads", "processes", "auto"}
        Where modules run; every executor renders bit-identical output.
        ``auto`` (offline only) starts inline and moves to worker processes
        when its measurements say they pay, or before the first block when
        a plugin's module, which could crash the process, is in the patch.
    workers : int, optional
        Worker threads or processes besides the engine's own thread.
    deadline : float
        Seconds a worker process may take for one block before it is
        declared hung, killed and replaced.
    live : bool
        The engine will feed an audio device: worker replacements must then
        never cost CPU while the music plays (see ProcessExecutor).
    say : callable, optional
        Hears, as one line, what starting worker processes must not pass in
        silence: an installed plugin's module whose warm-up is slow, or
        crashes or hangs (the start waits up to 20 s for it).
    spin : bool, optional
        Whether worker processes wait for their blocks busily rather than
        asleep (None: offline, when every process has a core of its own).
        False beside live audio, whose processes need those cores.
    """

    def __init__(self, registry: Registry, samplerate: float = 48000, blocksize: int = 256,
                 executor: str = "inline", workers: int | None = None, deadline: float = 1.0,
                 live: bool = False, say: Callable[[str], None] | None = None, spin: bool | None = None) -> None:
        if blocksize < 1:
            raise SynthError(f"block size must be at least 1, got {blocksize}")
        self.registry = registry
        self.samplerate = float(samplerate)
        self.blocksize = int(blocksize)
        self.executor = make_executor(executor, registry, samplerate, blocksize, workers, self.fault, deadline, live,
                                      say, spin)
        self._say, self._spin = say, spin
        self.auto = executor == "auto"
        self._workers, self._deadline = workers, deadline
        self._decide_at = -1
        self._settled: np.ndarray | None = None
        self.block = 0
        self.schedule: Schedule | None = None
        self.patch: Patch | None = None      # the patch last loaded (a copy), from block _loaded_at on
        self._loaded_at = 0
        self._heard: Patch | None = None     # the last patch loaded that played a block: what an edit fades from
        self._finish: tuple[int, Schedule] | None = None   # an edit's last block of fades, and what follows it
        self.board: Board | None = None
        self.arena = np.zeros((0, blocksize))
        self.params: dict[tuple[str, str], float] = {}
        self.stats: dict[str, ModuleStats] = {}
        self._glide = max(1, round(SMOOTH_SECONDS * self.samplerate))
        self._glide_ramp = np.arange(1, self._glide + 1, dtype=np.float64) / self._glide
        #: (module, param) -> the sets for the next block, in time order: (sample of the block it
        #: starts on, new value, whether it steps there (Param.steps) rather than gliding)
        self._queued: dict[tuple[str, str], list[tuple[int, float, bool]]] = {}
        #: (module, param) -> the glide under way: [from, to, samples of it played]. A choice's
        #: step is a glide already played. A parameter stays until a block has held its value whole.
        self._glides: dict[tuple[str, str], list] = {}
        # (sample, sequence, module, event): a heap of plain tuples, which
        # compare in C; a bar of 256 voices pushes 2048 of them at once.
        self._events: list[tuple[int, int, str, tuple]] = []
        self._timed_sets: list[tuple[int, int, str, str, float]] = []
        self._seq = itertools.count()
        self._cancelled: set[int] = set()

    @property
    def time(self) -> int:
        """The sample time of the next block's first sample."""
        return self.block * self.blocksize

    # -- changing what plays -----------------------------------------------

    def load(self, patch: Patch) -> None:
        """Play this patch from the next block on. Modules that keep their
        name, type and channel count keep their state; changed parameters
        glide to their new values. What the edit takes out of the sound or
        patches into it fades over its first blocks (5 ms or more, see
        steps.fade_blocks) instead of cutting: a removed
        module and a cable pulled out fade out, a new cable fades in (each
        was a click: a 300 Hz sine at half scale jumped by 15 times its
        steepest step). A module the edit replaces (another type under its
        name, another width or structural parameter) fades out on its old
        instance while its successor's cables fade in. Once the fades are
        over, the patch plays on its own."""
        patch = patch.copy()
        schedule = final = compile_patch(patch)   # a patch that cannot run changes nothing
        if self.block > self._loaded_at:   # the patch loaded last has been heard
            self._heard = self.patch
        playing, fades, continues = self._transition(patch, final)
        if fades or playing is not patch:
            try:
                schedule = compile_patch(playing, fades, continues)
            except SynthError:   # the two patches together would not run (too wide): cut, as before
                playing, fades = patch, {}
        gone = set(playing.modules) - set(patch.modules)
        self._build(schedule, gone)
        self.patch, self._loaded_at = patch, self.block
        last = self.block + fade_blocks(self.blocksize, self.samplerate) - 1
        self._finish = (last, final) if fades or playing is not patch else None
        for index, node in enumerate(schedule.nodes):
            if node.name in gone and self.board.flags[index] == RUN:
                self.board.flags[index] = FADE

    @property
    def finishing(self) -> bool:
        """Whether the next block rebuilds the schedule, ending an edit's fades."""
        return self._finish is not None

    def _transition(self, patch: Patch, final: Schedule) -> tuple[Patch, dict[Cable, int], dict[str, str]]:
        """The patch that plays the blocks of an edit's fades from the patch last
        heard to ``patch`` (whose schedule is ``final``): ``patch`` with the
        modules it removes (they fade out, see steps.run_step) and the
        cables it pulls out between modules it keeps, which fade out like
        the cables it adds fade in. A module it replaces plays on as a
        removed one, under the name ``NAME~`` (which no patch can use),
        its successor's cables fading in as new ones; the third value maps
        those names to the instance each continues. The same ``patch``
        when nothing fades."""
        heard = self._heard
        if heard is None:
            return patch, {}, {}
        replaced = set()
        if heard is self.patch:   # else the instances heard are already gone: those modules cut
            replaced = {name for name in patch.modules if name in heard.modules and name in self.schedule.by_name
                        and self._identity(self.schedule.node(name)) != self._identity(final.node(name))}
        alias = {name: f"{name}~" for name in replaced}
        before, after = set(heard.cables), set(patch.cables)
        fades = {cable: 1 for cable in patch.cables
                 if cable not in before or cable.src in replaced or cable.dst in replaced}
        gone = [name for name in heard.modules if name not in patch.modules]
        pulled = [cable for cable in heard.cables
                  if cable not in after or cable.src in replaced or cable.dst in replaced]
        if not gone and not pulled:
            return patch, fades, {}
        playing = patch.copy()
        for name in gone:
            playing.modules[name] = heard.modules[name]
        for name, leaving in alias.items():
            playing.modules[leaving] = heard.modules[name]
        fading = set(gone) | set(alias.values())
        for cable in pulled:
            ends = (alias.get(cable.src, cable.src), alias.get(cable.dst, cable.dst))
            if all(playing.modules[end].type is heard.modules[was].type
                   for end, was in zip(ends, (cable.src, cable.dst))):
                kept = Cable(ends[0], cable.src_port, ends[1], cable.dst_port)
                playing.cables.append(kept)
                if not set(ends) & fading:   # a leaving module's own fade is the cable's
                    fades[kept] = -1
        return playing, fades, {leaving: name for name, leaving in alias.items()}

    def _identity(self, node: Node) -> tuple:
        return identity(node, self.registry.get(node.type).cls)

    def _build(self, schedule: Schedule, keep: set[str]) -> None:
        """Run ``schedule`` from the next block on. Parameters of modules it
        keeps glide to its values, except those of ``keep``, which hold
        theirs: a module fading out, or every module when an edit's fades
        end (a set made since the edit is newer than its patch)."""
        if self.auto and self._plugins_isolable(schedule):   # before this process builds any of its modules
            self._move_to_workers({})
        old_nodes = {n.name: n for n in self.schedule.nodes} if self.schedule else {}
        was = {n.name: n.continues or n.name for n in schedule.nodes}
        # A cable that closes a loop reads its source's previous block, which
        # is in the old arena (gone with the rebuild, for worker processes):
        # carried over, or a block of zeros went round the loop at every edit.
        carried = []
        for cable, slots in schedule.delayed.items():
            src = old_nodes.get(was[cable.src])
            rows = src.outputs.get(cable.src_port) if src and src.type == schedule.node(cable.src).type else None
            if rows is not None and rows.channels == slots[0].channels:
                carried.append((slots[(self.block - 1) % 2], self.arena[rows.start:rows.stop].copy()))
        board = self.executor.rebuild(schedule)
        arena = board.arena
        before = dict(self.params)   # a replaced module's, read by its leaving instance
        for rows, block in carried:
            arena[rows.start:rows.stop] = block
        for index, node in enumerate(schedule.nodes):
            if self.stats.get(was[node.name], ModuleStats()).quarantined:
                board.flags[index] = BYPASS
            for rows, value in node.constants:
                arena[rows.start:rows.stop] = value
            kept = old_nodes.get(was[node.name])
            for pname, rows in node.param_base.items():
                key = (node.name, pname)
                new = node.params[pname]
                if kept is not None and (was[node.name], pname) in before and kept.type == node.type:
                    current = self.params[key] = before[(was[node.name], pname)]
                    arena[rows.start:rows.stop] = current
                    if current != new and node.name not in keep:
                        self._queue_set(node, pname, new, 0)
                else:
                    arena[rows.start:rows.stop] = new
                    self.params[key] = new
        live = {n.name for n in schedule.nodes}
        # A name may now be a module of another type (removed and added again
        # in one edit): its old parameters and glides go with the old module.
        same = {n.name for n in schedule.nodes if n.name in old_nodes and old_nodes[n.name].type == n.type}
        self.params = {k: v for k, v in self.params.items() if k[0] in live and k[1] in schedule.node(k[0]).param_base}
        self._queued = {k: v for k, v in self._queued.items() if k[0] in same}
        self._glides = {k: v for k, v in self._glides.items() if k[0] in same}
        self.stats = {name: self.stats.get(name, ModuleStats()) for name in live}
        self.schedule, self.board, self.arena = schedule, board, arena
        if self.auto and (os.cpu_count() or 1) > 1:
            self._decide_at = self.block + AUTO_SETTLE + AUTO_MEASURE

    def set(self, name: str, param: str, value: float, time: int | None = None) -> int | None:
        """Change a parameter. Without ``time`` from the next block; with a
        sample ``time`` from that very sample. A number glides to its new
        value over SMOOTH_SECONDS from its sample, across blocks when it
        must (a time, not a block, so a song sounds the same at any block
        size); a choice switches on its sample. A change for a later block
        returns a handle for :meth:`cancel`."""
        if self.schedule is None:
            raise SynthError("no patch is loaded")
        node = self.schedule.by_name.get(name)
        if node is None:
            raise SynthError(f"unknown module '{name}'")
        if param not in node.param_base:
            raise SynthError(f"module '{name}' has no parameter '{param}'")
        if time is None or time <= self.time:
            self._queue_set(node, param, float(value), 0)
            return None
        handle = next(self._seq)
        heapq.heappush(self._timed_sets, (int(time), handle, name, param, float(value)))
        return handle

    def _queue_set(self, node: Node, param: str, value: float, offset: int) -> None:
        steps = self.registry.get(node.type).cls.param(param).steps
        sets = self._queued.setdefault((node.name, param), [])
        if sets and sets[-1][0] == offset:   # a knob sending faster than blocks: the last one counts
            sets[-1] = (offset, value, steps)
        else:
            sets.append((offset, value, steps))

    def send(self, name: str, time: int, event: tuple) -> int:
        """Deliver ``event`` to module ``name`` at sample ``time`` (a time
        already past lands at the start of the next block). Returns a
        handle for :meth:`cancel`."""
        handle = next(self._seq)
        heapq.heappush(self._events, (int(time), handle, name, event))
        return handle

    def cancel(self, handle: int) -> None:
        """Take back an event or a set made for a sample not yet rendered."""
        self._cancelled.add(handle)

    # -- rendering -----------------------------------------------------------

    def process_block(self) -> np.ndarray:
        """Render the next block; returns the master as a ``(2, blocksize)``
        view that the next call overwrites."""
        if self.schedule is None:
            raise SynthError("no patch is loaded")
        if self._finish is not None and self.block > self._finish[0]:   # an edit's fades are over
            final, self._finish = self._finish[1], None
            self._build(final, set(final.by_name))
        end = self.time + self.blocksize
        while self._timed_sets and self._timed_sets[0][0] < end:
            when, handle, name, param, value = heapq.heappop(self._timed_sets)
            node = self.schedule.by_name.get(name)
            if self._cancelled and handle in self._cancelled:
                self._cancelled.discard(handle)
            elif node is not None and param in node.param_base:
                self._queue_set(node, param, value, when - self.time)
        self._apply_glides()
        while self._events and self._events[0][0] < end:
            when, handle, name, event = heapq.heappop(self._events)
            if self._cancelled and handle in self._cancelled:
                self._cancelled.discard(handle)
            elif name in self.schedule.by_name:
                self.executor.deliver(name, max(0, when - self.time), event)
        self.executor.run_block(self.block)
        self.block += 1
        if self.block == self._decide_at - AUTO_MEASURE:
            self._settled = self.board.stats.copy()
        elif self.block == self._decide_at:
            self._consider_workers()
        master = self.schedule.master
        return self.arena[master.start:master.stop]

    def _apply_glides(self) -> None:
        """Write this block's row of every parameter that is set or still
        gliding. Each set starts on its own sample, however many fall in
        one block: a number glides from where it is then to its value over
        ``self._glide`` samples, a choice (see Param.steps) steps there. A
        parameter whose row has held its value for a whole block is
        dropped; its row keeps that value."""
        if not self._glides and not self._queued:   # most blocks: a render's every block but a few
            return
        n, length, ramp = self.blocksize, self._glide, self._glide_ramp
        queued, self._queued = self._queued, {}
        for key in [*self._glides, *(key for key in queued if key not in self._glides)]:
            rows = self.schedule.node(key[0]).param_base[key[1]]
            row = self.arena[rows.start]
            sets = queued.get(key)
            start, target, played = self._glides.get(key) or (self.params[key], self.params[key], length)
            if not sets and played >= length:
                row[:] = target
                del self._glides[key]
            else:
                at = 0
                for offset, value, steps in sorted(sets or (), key=itemgetter(0)):
                    played += glide_into(row, at, offset, start, target, played, ramp)
                    at = offset
                    start = value if steps else glide_at(start, target, played, ramp)
                    target, played = value, length if steps else 0
                    self.params[key] = value
                played += glide_into(row, at, n, start, target, played, ramp)
                self._glides[key] = [start, target, played]
            self.arena[rows.start + 1:rows.stop] = row

    def _plugins_isolable(self, schedule: Schedule) -> bool:
        """``auto``: whether the patch has a plugin's module, which might
        crash or hang the process it runs in (its setup() included), and
        worker processes can host every module (else it stays inline rather
        than silence one)."""
        from .partition import hostable
        classes = [self.registry.get(node.type) for node in schedule.nodes]
        return (any(entry.package != BUILTIN_PACKAGE for entry in classes)
                and all(hostable(entry.cls) for entry in classes))

    def _consider_workers(self) -> None:
        """``auto``: move to worker processes if the costs measured inline
        say they pay (see AUTO_SHARE); the output goes on bit for bit."""
        from .partition import builtin, parallel_share
        from .partition import HANDOFF_SLEEPING, HANDOFF_SPINNING, hostable, spins
        if not all(hostable(self.registry.get(node.type).cls) for node in self.schedule.nodes):
            return    # a module only this process can run: stay inline rather than silence it
        spent = self.board.stats - self._settled
        costs = {node.name: spent[i, SECONDS] / spent[i, BLOCKS]
                 for i, node in enumerate(self.schedule.nodes) if spent[i, BLOCKS] > 0}
        inline = sum(costs.values())
        partitions = (self._workers or default_workers()) + 1
        busiest = parallel_share(self.schedule, costs, partitions, builtin(self.registry, self.schedule))
        spinning = spins(partitions, False) if self._spin is None else self._spin
        busiest = busiest * inline + (HANDOFF_SPINNING if spinning else HANDOFF_SLEEPING)
        if busiest > AUTO_SHARE * inline or inline - busiest < AUTO_SAVING:
            return
        self._move_to_workers(costs)

    def _move_to_workers(self, costs: dict[str, float]) -> None:
        """Carry on in worker processes from the next block, bit for bit."""
        from .processes import ProcessExecutor
        workers = ProcessExecutor(self.registry, self.samplerate, self.blocksize, self.fault, self._workers,
                                  self._deadline, say=self._say, spin=self._spin)
        if self.schedule is not None:   # else nothing has played yet
            states = self.executor.host.states(self.fault)
            self.board = workers.take_over(self.schedule, self.board, states, costs)
            self.arena = self.board.arena
        self.executor.close()
        self.executor = workers
        self.auto = False

    def fault(self, name: str, reason: str, quarantine: bool = False, held: bool = True) -> None:
        """Executors report a module's failure here. The engine keeps count
        and quarantines a module that keeps failing (or, with
        ``quarantine``, one that cannot run at all, such as one whose
        setup raised). Reports still on their way from a worker when the
        module was quarantined are not counted, so executors agree. A
        fault not ``held`` against the module (its worker was starved of
        CPU by others) is reported but brings no quarantine nearer."""
        stats = self.stats.setdefault(name, ModuleStats())
        if stats.quarantined:   # a worker's report still on its way when it was: not a new fault
            return
        stats.faults += 1
        stats.last_fault, stats.last_held = reason, held
        if not held:
            return
        now = self.time
        window = int(QUARANTINE_WINDOW * self.samplerate)
        stats.fault_times = [t for t in stats.fault_times if now - t < window] + [now]
        if quarantine or len(stats.fault_times) >= QUARANTINE_FAULTS:
            stats.quarantined = True
            if self.schedule is not None and name in self.schedule.by_name:
                self.board.flags[self.schedule.nodes.index(self.schedule.by_name[name])] = BYPASS

    def module_stats(self) -> dict[str, dict]:
        """Per module: its type and the plugin package that provides it (for
        the warnings about it), CPU per block (mean and worst, ms), blocks
        run, faults, restarts, quarantine and its reason, and where it runs."""
        report = {}
        where = getattr(self.executor, "where", {})
        restarts = getattr(self.executor, "restarts", {})
        for index, node in enumerate(self.schedule.nodes if self.schedule else ()):
            blocks, seconds, worst = self.board.stats[index]
            stats = self.stats.get(node.name, ModuleStats())
            entry = self.registry.types.get(node.type) or self.registry.qualified.get(node.type)
            report[node.name] = {
                "type": node.type, "partition": where.get(node.name, 0),
                "package": f"{entry.package} {entry.version}" if entry and entry.package != BUILTIN_PACKAGE else "",
                "blocks": int(blocks), "mean_ms": 1e3 * seconds / blocks if blocks else 0.0,
                "max_ms": 1e3 * worst, "faults": stats.faults, "restarts": restarts.get(node.name, 0),
                "quarantined": stats.quarantined, "reason": stats.last_fault, "held": stats.last_held,
            }
        return report

    def worker_stats(self, modules: dict[str, dict] | None = None) -> dict[int, dict]:
        """Per partition (0 is the engine's own process): its modules, CPU
        per block (its modules' means added up, and the worst block of any),
        and for worker processes their pid, missed deadlines and restarts.
        ``modules``: :meth:`module_stats` if the caller has them already."""
        report: dict[int, dict] = {}
        for stats in (modules if modules is not None else self.module_stats()).values():
            part = report.setdefault(stats["partition"], {"modules": 0, "mean_ms": 0.0, "max_ms": 0.0})
            part["modules"] += 1
            part["mean_ms"] += stats["mean_ms"]
            part["max_ms"] = max(part["max_ms"], stats["max_ms"])
        health = getattr(self.executor, "health", None)
        found = health() if health else {}
        here = {"pid": os.getpid(), "missed": 0, "restarts": 0}   # inline and threads: this process
        for number in report.keys() | found.keys():
            report.setdefault(number, {"modules": 0, "mean_ms": 0.0, "max_ms": 0.0}).update(found.get(number, here))
        return dict(sorted(report.items()))

    def close(self) -> None:
        self.executor.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
