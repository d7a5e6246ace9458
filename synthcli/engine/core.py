"""The engine: runs a patch block by block on an executor.

The engine owns what must be identical whatever executes the modules: the
schedule, the arena of buffers, parameter values and their smoothing, and
timed events. An executor only decides *where* each module's ``process``
runs (this thread, a thread pool, worker processes).
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..errors import SynthError
from ..patch import Patch
from ..plugins import Registry
from .schedule import Node, Rows, Schedule, compile_patch


class Executor(Protocol):
    """Where modules run. ``arena`` rows are shared with the engine."""

    def allocate(self, rows: int, blocksize: int) -> np.ndarray: ...
    def rebuild(self, schedule: Schedule, arena: np.ndarray) -> None: ...
    def deliver(self, name: str, offset: int, event: tuple) -> None: ...
    def run_block(self, block: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class ModuleStats:
    """What the engine knows about one module's health."""

    faults: int = 0
    last_fault: str = ""


@dataclass(order=True)
class _Timed:
    time: int
    seq: int
    name: str = field(compare=False)
    event: tuple = field(compare=False)


def make_executor(kind: str, registry: Registry, samplerate: float, blocksize: int,
                  workers: int | None, report: Callable[[str, str], None]) -> Executor:
    if kind == "inline":
        from .inline import InlineExecutor
        return InlineExecutor(registry, samplerate, blocksize, report)
    raise SynthError(f"unknown executor '{kind}' (choose inline)")


class Engine:
    """Render a patch block by block.

    Parameters
    ----------
    registry : Registry
        Where module types come from.
    samplerate : float
    blocksize : int
    executor : str
        ``inline`` today; every executor renders bit-identical output.
    """

    def __init__(self, registry: Registry, samplerate: float = 48000, blocksize: int = 256,
                 executor: str = "inline", workers: int | None = None) -> None:
        if blocksize < 1:
            raise SynthError(f"block size must be at least 1, got {blocksize}")
        self.registry = registry
        self.samplerate = float(samplerate)
        self.blocksize = int(blocksize)
        self.executor = make_executor(executor, registry, samplerate, blocksize, workers, self.fault)
        self.block = 0
        self.schedule: Schedule | None = None
        self.arena = np.zeros((0, blocksize))
        self.params: dict[tuple[str, str], float] = {}
        self.stats: dict[str, ModuleStats] = {}
        self._ramp = np.arange(1, blocksize + 1, dtype=np.float64) / blocksize
        self._smoothing: dict[tuple[str, str], float] = {}
        self._settle: list[tuple[str, str]] = []
        self._events: list[_Timed] = []
        self._seq = itertools.count()

    @property
    def time(self) -> int:
        """The sample time of the next block's first sample."""
        return self.block * self.blocksize

    # -- changing what plays -----------------------------------------------

    def load(self, patch: Patch) -> None:
        """Play this patch from the next block on. Modules that keep their
        name, type and channel count keep their state; changed parameters
        glide to their new values."""
        schedule = compile_patch(patch)
        old_nodes = {n.name: n for n in self.schedule.nodes} if self.schedule else {}
        arena = self.executor.allocate(schedule.rows, self.blocksize)
        for node in schedule.nodes:
            for rows, value in node.constants:
                arena[rows.start:rows.stop] = value
            kept = old_nodes.get(node.name)
            for pname, rows in node.param_base.items():
                key = (node.name, pname)
                new = node.params[pname]
                if kept is not None and key in self.params and kept.type == node.type:
                    current = self.params[key]
                    arena[rows.start:rows.stop] = current
                    if current != new:
                        self._queue_set(node, pname, new)
                else:
                    arena[rows.start:rows.stop] = new
                    self.params[key] = new
        live = {n.name for n in schedule.nodes}
        self.params = {k: v for k, v in self.params.items() if k[0] in live}
        self._smoothing = {k: v for k, v in self._smoothing.items() if k[0] in live}
        self.stats = {name: self.stats.get(name, ModuleStats()) for name in live}
        self.schedule, self.arena = schedule, arena
        self.executor.rebuild(schedule, arena)

    def set(self, name: str, param: str, value: float) -> None:
        """Change a parameter from the next block (numbers glide over it)."""
        if self.schedule is None:
            raise SynthError("no patch is loaded")
        try:
            node = self.schedule.node(name)
        except KeyError:
            raise SynthError(f"unknown module '{name}'") from None
        if param not in node.param_base:
            raise SynthError(f"module '{name}' has no parameter '{param}'")
        self._queue_set(node, param, float(value))

    def _queue_set(self, node: Node, param: str, value: float) -> None:
        spec = self.registry.get(node.type).cls.param(param)
        if spec.choices:
            self._smoothing.pop((node.name, param), None)
            rows = node.param_base[param]
            self.arena[rows.start:rows.stop] = value
            self.params[(node.name, param)] = value
        else:
            self._smoothing[(node.name, param)] = value

    def send(self, name: str, time: int, event: tuple) -> None:
        """Deliver ``event`` to module ``name`` at sample ``time`` (a time
        already past lands at the start of the next block)."""
        heapq.heappush(self._events, _Timed(int(time), next(self._seq), name, event))

    # -- rendering -----------------------------------------------------------

    def process_block(self) -> np.ndarray:
        """Render the next block; returns the master as a ``(2, blocksize)``
        view that the next call overwrites."""
        if self.schedule is None:
            raise SynthError("no patch is loaded")
        self._apply_smoothing()
        end = self.time + self.blocksize
        while self._events and self._events[0].time < end:
            timed = heapq.heappop(self._events)
            if timed.name in self.schedule.by_name:
                self.executor.deliver(timed.name, max(0, timed.time - self.time), timed.event)
        self.executor.run_block(self.block)
        self.block += 1
        master = self.schedule.master
        return self.arena[master.start:master.stop]

    def _apply_smoothing(self) -> None:
        """Last block's glides now hold their target; new ones ramp over this
        block, from the old value to the new, ending exactly on it."""
        schedule = self.schedule
        for key in self._settle:
            rows = schedule.node(key[0]).param_base[key[1]]
            self.arena[rows.start:rows.stop] = self.params[key]
        self._settle = list(self._smoothing)
        for key, new in self._smoothing.items():
            rows = schedule.node(key[0]).param_base[key[1]]
            old = self.params[key]
            first = self.arena[rows.start]
            np.multiply(self._ramp, new - old, out=first)
            first += old
            self.arena[rows.start + 1:rows.stop] = first
            self.params[key] = new
        self._smoothing.clear()

    def fault(self, name: str, reason: str) -> None:
        """Executors report a module's failure here; the engine keeps count."""
        stats = self.stats.setdefault(name, ModuleStats())
        stats.faults += 1
        stats.last_fault = reason

    def close(self) -> None:
        self.executor.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
