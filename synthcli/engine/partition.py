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

from typing import Callable, Mapping

from .schedule import Schedule


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
    least loaded partition that may host them."""
    if cost is None:
        widths = {node.name: node.channels for node in schedule.nodes}
        cost = lambda name: 1.0 + widths[name]
    load = [0.0] * partitions
    where: dict[str, int] = {}
    for name, part in previous.items():
        if name in schedule.by_name and part < partitions:
            where[name] = part
            load[part] += cost(name)
    for group in sorted(groups(schedule), key=lambda g: -sum(map(cost, g))):
        placed = [where[name] for name in group if name in where]
        if "out" in group:
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
