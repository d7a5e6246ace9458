"""How a save of the file that plays (``synth play --watch``) meets what
was changed live since it was loaded, over OSC, MIDI or the REPL: a three-
way merge, item by item, in which the save wins where both changed the
same thing. See :meth:`Session.reload`."""
from __future__ import annotations

from ..language import Command, Pattern, Set
from ..patch import Instance, Patch
from .timeline import SINGLE, Timeline


def merge(old: dict, theirs: dict, ours: dict) -> dict:
    """A three-way merge, item by item: ``theirs`` (a file as saved) with
    what ``ours`` changed since ``old`` (the file as loaded), where
    ``theirs`` left that item as it was."""
    result = dict(theirs)
    for key in old.keys() | ours.keys():
        if ours.get(key) != old.get(key) and theirs.get(key) == old.get(key):
            if key in ours:
                result[key] = ours[key]
            else:
                result.pop(key, None)
    return result


def carried(base: Patch, new: Patch, current: Patch) -> Patch:
    """``new`` (a file as saved) with what ``current`` changed live since
    ``base`` (the file as loaded), wherever the save left that alone: a
    value turned, a module or cable added or taken out, a mapping. What the
    save changed wins, a module taken out live included. (A value set as a
    note length is compared as one, so a new tempo in the file is no change
    of it.)"""
    def modules(patch: Patch) -> dict:
        return {name: inst.type for name, inst in patch.modules.items()}

    def values(patch: Patch) -> dict:
        return {(name, param): (patch.synced.get((name, param), value), inst.type)
                for name, inst in patch.modules.items() for param, value in inst.params.items()}

    def own(patch: Patch, name: str) -> tuple:
        return patch.modules[name], {key: length for key, length in patch.synced.items() if key[0] == name}

    restored = {name for name in base.modules.keys() & new.modules.keys()   # taken out live, edited by the save
                if name not in current.modules and own(new, name) != own(base, name)}
    kinds = merge(modules(base), modules(new), modules(current))
    kinds.update({name: new.modules[name].type for name in restored})
    theirs, ours = values(new), values(current)
    settings = merge(values(base), theirs, ours)
    result = new.copy()
    result.modules, result.synced = {}, {}
    for name in [*new.modules, *(n for n in current.modules if n not in new.modules)]:
        kind = kinds.get(name)
        if kind is None:
            continue
        source = new if name in new.modules and new.modules[name].type is kind else current
        result.modules[name] = Instance(kind, dict(source.modules[name].params))
        for param in source.modules[name].params:
            key = (name, param)
            live = source is current or (key in settings and settings[key] != theirs[key]
                                         and settings[key] == ours.get(key))
            taken = current if live else new
            if live:
                result.modules[name].params[param] = current.modules[name].params[param]
            if key in taken.synced:
                result.synced[key] = taken.synced[key]
    cables = merge(dict.fromkeys(base.cables, True), dict.fromkeys(new.cables, True),
                   dict.fromkeys(current.cables, True))
    cables.update(dict.fromkeys((c for c in new.cables if c.src in restored or c.dst in restored), True))
    result.cables = [c for c in [*new.cables, *(c for c in current.cables if c not in new.cables)]
                     if c in cables and c.src in result.modules and c.dst in result.modules]
    result.mappings = {cc: m for cc, m in merge(base.mappings, new.mappings, current.mappings).items()
                       if m.module in result.modules}
    result.midi_ports = {name: port for name, port in merge(base.midi_ports, new.midi_ports,
                                                            current.midi_ports).items() if name in result.modules}
    return result


def carried_time(base: Timeline, new: Timeline, current: Timeline) -> Timeline:
    """``new``'s time commands with what ``current`` changed live since
    ``base``, as :func:`carried` does for the patch: a pattern sent over
    OSC stays through a save that leaves that target's pattern alone, as a
    knob turned over OSC does; one the save changes is the file's. A
    pattern is known by its target, a tempo, meter or length by its kind
    (one each); an ``at`` by its bar and so too, a set by its target, and
    other edits by their whole text. (By its whole text an ``at`` set of
    the save's never met the live one of the same bar and target, which,
    later in the song, won: the review.)"""
    def key(command: Command) -> tuple[str, str]:
        if isinstance(command, Pattern):
            return "pattern", str(command.target)
        if isinstance(command, SINGLE):
            return type(command).__name__, ""
        inner, bar = command.command, f"at {command.bar}"
        if isinstance(inner, (Pattern, Set)):
            return bar, f"{type(inner).__name__} {inner.target}"
        return (bar, type(inner).__name__) if isinstance(inner, SINGLE) else (bar, str(inner))

    def keyed(timeline: Timeline) -> dict:
        return {key(c): str(c) for c in timeline.commands}

    kept = merge(keyed(base), keyed(new), keyed(current))
    texts = set(kept.values())
    commands = {str(c): c for c in [*current.commands, *new.commands]}   # the file's, where both have it
    return Timeline([commands[text] for text in dict.fromkeys(
        [*(str(c) for c in new.commands), *(str(c) for c in current.commands)]) if text in texts])
