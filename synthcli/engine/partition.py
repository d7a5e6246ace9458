"""Deciding which partition (the engine process, or a worker) runs each
module.

Connected chains stay together, so a voice (keys -> vco -> vcf -> vca) never
waits on another process mid-block; whole groups are then spread over the
partitions by cost, heaviest first, each to the least loaded partition.
Partition 0 is the engine's own; it hosts the master and may host only
built-in modules, so a plugin that crashes the interpreter never takes the
engine (and the audio) down with it.
"""
from __future__ import annotations

import os
import pickle
from typing import Callable, Mapping

from ..plugins import BUILTIN_PACKAGE, Registry
from .schedule import Schedule

#: What handing a block to a worker and back costs, spinning and sleeping
#: (`benchmarks/executors.py`; docs/performance.md, Executors).
HANDOFF_SPINNING = 5e-6
HANDOFF_SLEEPING = 60e-6


def spins(partitions: int, live: bool) -> bool:
    """Whether hand-offs spin: offline, with a core for every process."""
    return not live and partitions <= (os.cpu_count() or 1)


def hostable(cls: type) -> bool:
    """Whether a worker process can host a module class: it travels as a
    pickled reference to its importable definition. Here, not in
    processes.py: ``auto`` asks before it knows it will need workers, and
    that module's import (multiprocessing's forkserver and the rest) cost
    6 ms of a render that stays inline."""
    try:
        pickle.dumps(cls)
    except Exception:
        return False
    return True


def groups(schedule: Schedule) -> list[list[str]]:
    """Modules that belong together: joined by cables, except cables into
    the master (every voice ends there) and cables out of pure sources (no
    inputs) that feed several groups, such as one LFO sweeping every voice.
    A pure source that feeds just one group joins it."""
    names = [n.name for n in schedule.nodes]
    sources: dict[str, set[str]] = {name: set() for name in names}
    for cable in schedule.cables:
        sources[cable.dst].add(cable.src)
    parent = {name: name for name in names}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pure = {name for name in names if not sources[name]}
    for dst in names:
        if dst == "out":
            continue
        for src in sources[dst]:
            if src not in pure:
                parent[find(src)] = find(dst)
    for src in pure:
        consumers = {find(dst) for dst in names if src in sources[dst] and dst != "out"}
        if len(consumers) == 1:
            parent[find(src)] = consumers.pop()
    found: dict[str, list[str]] = {}
    for name in names:
        found.setdefault(find(name), []).append(name)
    return list(found.values())


def assign(schedule: Schedule, partitions: int, previous: Mapping[str, int],
           trusted: Callable[[str], bool], cost: Callable[[str], float] | None = None) -> dict[str, int]:
    """Place every module of a patch in ``range(partitions)``.

    Modules already running stay where they are (moving one would mean
    shipping its state); a new module joins its group's partition if the
    group already runs somewhere; new groups go, heaviest first, to the
    least loaded partition that may host them. A group that feeds other
    groups (one LFO sweeping every voice) goes to the engine's partition:
    a worker waits for just the module it reads, but the engine waits for
    a worker's whole block, which would leave the engine idle while it ran."""
    if cost is None:
        widths = {node.name: node.channels for node in schedule.nodes}
        cost = lambda name: 1.0 + widths[name]
    load = [0.0] * partitions
    where: dict[str, int] = {}
    for name, part in previous.items():
        if name in schedule.by_name and part < partitions:
            where[name] = part
            load[part] += cost(name)
    found = groups(schedule)
    group_of = {name: number for number, group in enumerate(found) for name in group}
    shared = {group_of[c.src] for c in schedule.cables if c.dst != "out" and group_of[c.src] != group_of[c.dst]}
    for number in sorted(range(len(found)), key=lambda k: (k not in shared, -sum(map(cost, found[k])))):
        group = found[number]
        placed = [where[name] for name in group if name in where]
        if "out" in group or (number in shared and all(map(trusted, group))):
            target = 0
        elif placed:
            target = placed[0]
        else:
            allowed = range(partitions) if partitions == 1 or all(map(trusted, group)) else range(1, partitions)
            target = min(allowed, key=lambda p: (load[p], p))
        for name in group:
            if name not in where:
                where[name] = target
                load[target] += cost(name)
    return where


def cost_model(schedule: Schedule, measured: Mapping[str, float]) -> Callable[[str], float]:
    """Cost of each module: its measured CPU time per block where known
    (from the schedule it ran in before an edit), else an estimate from its
    width at the measured average cost per channel."""
    widths = {node.name: node.channels for node in schedule.nodes}
    known = {name: cost for name, cost in measured.items() if name in widths and cost > 0}
    per_channel = (sum(known.values()) / sum(widths[n] for n in known)) if known else 1.0
    return lambda name: known.get(name, per_channel * (1 + widths[name]))


def builtin(registry: Registry, schedule: Schedule) -> Callable[[str], bool]:
    """Whether a module of the schedule is built in (may run in partition 0)."""
    return lambda name: registry.get(schedule.by_name[name].type).package == BUILTIN_PACKAGE


def parallel_share(schedule: Schedule, costs: Mapping[str, float], partitions: int,
                   trusted: Callable[[str], bool]) -> float:
    """The share of a block's time that its busiest partition would take,
    were the modules placed on ``partitions`` as :func:`assign` would place
    them with these costs: 1.0 means no gain, 1 / partitions a perfect split."""
    total = sum(costs.values())
    if total <= 0:
        return 1.0
    where = assign(schedule, partitions, {}, trusted, cost_model(schedule, costs))
    loads = [0.0] * partitions
    for name, part in where.items():
        loads[part] += costs.get(name, 0.0)
    return max(loads) / total
