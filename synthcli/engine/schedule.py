"""Compiling a patch into a schedule: the order modules run in, which cables
carry a block of delay, every module's channel count, and where every
buffer lives.

The schedule depends on the patch alone, never on which executor or worker
runs what: that is why every executor renders bit-identical output.

Buffers are rows of one ``(rows, blocksize)`` float64 arena, so the whole
arena can live in one shared-memory segment and every buffer is a
C-contiguous view of it. Each module's outputs are adjacent rows, so one
``sum`` checks all of them for NaN or Inf.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..api import MAX_CHANNELS
from ..errors import SynthError
from ..patch import Cable, Patch


@dataclass(frozen=True)
class Rows:
    """A buffer: ``channels`` consecutive rows of the arena from ``start``."""

    start: int
    channels: int

    @property
    def stop(self) -> int:
        return self.start + self.channels


@dataclass(frozen=True)
class Source:
    """One cable feeding a gather. A delayed (cycle-closing) cable reads the
    slot its producer wrote in the previous block: ``slots[(block - 1) % 2]``.
    ``fade`` is 1 for a cable patched in by a live edit, -1 for one pulled
    out: it fades in or out over the blocks the edit's schedule plays
    (see Engine.load)."""

    rows: Rows
    delayed: tuple[Rows, Rows] | None = None
    fade: int = 0


@dataclass(frozen=True)
class Gather:
    """How one input or parameter buffer is filled before its module runs:
    start from ``base`` (a parameter's set value) or zero (a connected
    input), then add every cable. An input fed by exactly one
    cable of its own width needs no gather: it reads the cable's buffer."""

    name: str
    dest: Rows
    base: Rows | None
    sources: tuple[Source, ...]
    #: A choice parameter's last index: the sum of its setting and its
    #: cables is rounded to a choice and kept within them (-1: a number).
    last: int = -1


@dataclass(frozen=True)
class Node:
    """One module instance in the schedule."""

    name: str
    type: str                       # qualified type name
    channels: int
    params: dict[str, float]
    inputs: dict[str, Rows]         # what process() sees for each input port
    param_rows: dict[str, Rows]     # what process() sees for each parameter
    param_base: dict[str, Rows]     # the set value of each parameter, written by the engine
    outputs: dict[str, Rows]
    gathers: tuple[Gather, ...]
    constants: tuple[tuple[Rows, float], ...]   # unconnected inputs: filled once, never per block
    delay_writes: tuple[tuple[Rows, tuple[Rows, Rows]], ...]   # (output, slots) for delayed cables
    # The instance it goes on playing under another name: a module an edit
    # replaces, heard fading out beside its successor (see Engine.load).
    continues: str | None = None

    @property
    def output_span(self) -> Rows:
        rows = list(self.outputs.values())
        return Rows(rows[0].start, rows[-1].stop - rows[0].start) if rows else Rows(0, 0)


@dataclass
class Schedule:
    nodes: list[Node]
    rows: int
    master: Rows
    cables: list[Cable] = field(default_factory=list)
    delayed: dict[Cable, tuple[Rows, Rows]] = field(default_factory=dict)   # each with its two slots
    by_name: dict[str, Node] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {node.name: node for node in self.nodes}

    def node(self, name: str) -> Node:
        return self.by_name[name]


def _components(names: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in names:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def loops_closed(patch: Patch, cables: list[Cable]) -> list[tuple[Cable, list[str]]]:
    """Each of ``cables`` (of ``patch``) that closes a feedback loop, with
    the loop's modules from its source round to it again (``["v", "f",
    "v"]``, the shortest way back). Only a cable within one strongly
    connected component can: the components are found once, so a pasted
    patch of hundreds of cables costs a few milliseconds, not seconds."""
    succ: dict[str, list[str]] = {name: [] for name in patch.modules}
    for c in patch.cables:
        succ[c.src].append(c.dst)
    component = {name: i for i, members in enumerate(_components(list(patch.modules), succ)) for name in members}
    found = []
    for cable in cables:
        if component[cable.src] != component[cable.dst]:
            continue
        came_from: dict[str, str] = {}   # breadth first from the destination: the shortest way back
        frontier = [cable.dst]
        while cable.src not in came_from and cable.src != cable.dst:
            following = []
            for name in frontier:
                for after in succ[name]:
                    if after not in came_from and after != cable.dst:
                        came_from[after] = name
                        following.append(after)
            frontier = following
        way = [cable.src]
        while way[-1] != cable.dst:
            way.append(came_from[way[-1]])
        found.append((cable, [cable.src, *reversed(way)]))
    return found


def topological_order(patch: Patch) -> tuple[list[str], set[Cable]]:
    """The order modules run in, and the cables that close cycles.

    Modules run in dependency order, ties broken by the order they were
    added. Inside a feedback loop (a strongly connected component) the
    earliest-added module runs first, as does the earliest-added of those
    left whenever they all wait on one another (a loop within the loop).
    The cables that point backwards in that order carry one block of
    delay; every other cable is zero-delay.
    """
    names = list(patch.modules)
    rank = {name: i for i, name in enumerate(names)}
    succ: dict[str, list[str]] = {name: [] for name in names}
    for cable in patch.cables:
        succ[cable.src].append(cable.dst)
    component_of: dict[str, int] = {}
    components = _components(names, succ)
    for number, members in enumerate(components):
        for member in members:
            component_of[member] = number

    def kahn(members: list[str], edges: list[tuple[str, str]]) -> list[str]:
        waiting = {m: {a for a, b in edges if b == m and a != m} for m in members}
        order: list[str] = []
        while waiting:
            ready = [m for m, deps in waiting.items() if not deps] or list(waiting)
            pick = min(ready, key=rank.__getitem__)
            order.append(pick)
            del waiting[pick]
            for deps in waiting.values():
                deps.discard(pick)
        return order

    first = [min(members, key=rank.__getitem__) for members in components]
    dag = {(component_of[c.src], component_of[c.dst]) for c in patch.cables
           if component_of[c.src] != component_of[c.dst]}
    rank.update({f"#{i}": rank[first[i]] for i in range(len(components))})
    inner: dict[int, list[tuple[str, str]]] = {}
    for cable in patch.cables:
        if component_of[cable.src] == component_of[cable.dst]:
            inner.setdefault(component_of[cable.src], []).append((cable.src, cable.dst))
    order: list[str] = []
    for label in kahn([f"#{i}" for i in range(len(components))], [(f"#{a}", f"#{b}") for a, b in dag]):
        number = int(label[1:])
        order += kahn(components[number], inner.get(number, []))
    position = {name: i for i, name in enumerate(order)}
    delayed = {c for c in patch.cables if position[c.src] >= position[c.dst]}
    return order, delayed


def compile_patch(patch: Patch, fades: dict[Cable, int] | None = None,
                  continues: dict[str, str] | None = None) -> Schedule:
    """Turn a patch into a schedule, with the cables in ``fades`` fading in
    (1) or out (-1) and each module of ``continues`` playing on the instance
    of the module it names; raises SynthError for a patch that cannot run
    (too many channels)."""
    fades = fades or {}
    continues = continues or {}
    order, delayed = topological_order(patch)
    feeds: dict[str, list[Cable]] = {name: [] for name in order}
    for cable in patch.cables:
        feeds[cable.dst].append(cable)

    def count(name: str, known: dict[str, int]) -> int:
        inst = patch.modules[name]
        widths: dict[str, int] = {}
        for cable in feeds[name]:
            src_cls = patch.modules[cable.src].type.cls
            fixed = src_cls.port(cable.src_port, "out").channels
            width = fixed or known.get(cable.src, 1)
            widths[cable.dst_port] = max(widths.get(cable.dst_port, 1), width)
        try:
            channels = int(inst.type.cls.channel_count(inst.params, widths))
        except Exception as error:   # a plugin's bug, named in one line
            raise SynthError(f"module '{name}' ({inst.type.name}) cannot say how many channels it has: "
                             f"{type(error).__name__}: {error}") from None
        if not 1 <= channels <= MAX_CHANNELS:
            raise SynthError(f"module '{name}' would have {channels} channels; a cable carries 1 to {MAX_CHANNELS}")
        return channels

    # Two passes: the second sees the widths that delayed cables really carry.
    channels: dict[str, int] = {}
    for _ in range(2):
        channels = {**channels}
        for name in order:
            channels[name] = count(name, channels)

    rows = 0

    def alloc(n: int) -> Rows:
        nonlocal rows
        block = Rows(rows, n)
        rows += n
        return block

    outputs: dict[str, dict[str, Rows]] = {}
    for name in order:
        cls = patch.modules[name].type.cls
        outputs[name] = {p.name: alloc(p.channels or channels[name]) for p in cls.outputs}
    slots = {c: (alloc(outputs[c.src][c.src_port].channels), alloc(outputs[c.src][c.src_port].channels))
             for c in patch.cables if c in delayed}

    writes_of: dict[str, list[tuple[Rows, tuple[Rows, Rows]]]] = {}
    for cable in patch.cables:
        if cable in delayed:
            writes_of.setdefault(cable.src, []).append((outputs[cable.src][cable.src_port], slots[cable]))
    nodes = []
    for name in order:
        inst = patch.modules[name]
        cls = inst.type.cls
        width = channels[name]
        gathers: list[Gather] = []

        def sources_for(port: str) -> tuple[Source, ...]:
            return tuple(Source(outputs[c.src][c.src_port], slots.get(c), fades.get(c, 0))
                         for c in feeds[name] if c.dst_port == port)

        inputs: dict[str, Rows] = {}
        constants: list[tuple[Rows, float]] = []
        for port in cls.inputs:
            sources = sources_for(port.name)
            if not sources:
                inputs[port.name] = alloc(width)
                constants.append((inputs[port.name], port.default))
                continue
            if (len(sources) == 1 and sources[0].delayed is None and not sources[0].fade
                    and sources[0].rows.channels == width):
                inputs[port.name] = sources[0].rows
                continue
            inputs[port.name] = alloc(width)
            gathers.append(Gather(port.name, inputs[port.name], None, sources))
        numeric = [p for p in cls.params if not p.file]   # a file is read in setup(), never in a block
        param_base = {p.name: alloc(width) for p in numeric}
        param_rows: dict[str, Rows] = {}
        for param in numeric:
            sources = sources_for(param.name)
            if not sources:
                param_rows[param.name] = param_base[param.name]
                continue
            param_rows[param.name] = alloc(width)
            gathers.append(Gather(param.name, param_rows[param.name], param_base[param.name], sources,
                                  len(param.choices) - 1))
        nodes.append(Node(name, inst.type.qualified_name, width, dict(inst.params), inputs, param_rows,
                          param_base, outputs[name], tuple(gathers), tuple(constants), tuple(writes_of.get(name, ())),
                          continues.get(name)))
    return Schedule(nodes, rows, outputs["out"]["master"], list(patch.cables), slots)
