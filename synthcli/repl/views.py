"""What the REPL prints about the patch, the song, the commands and the
engine: plain text, aligned in columns, built from the same tables and
models that everything else reads, so it cannot drift from them."""
from __future__ import annotations

import shutil
import textwrap

from ..errors import SynthError, did_you_mean
from ..language import COMMANDS, At, Length, Pattern
from ..patch import MASTER, Patch
from ..reference import topic
from .commands import REPL_COMMANDS
from .timeline import Timeline


def table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def count(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


def summary(patch: Patch, timeline: Timeline) -> str:
    body = f"{count(len(patch.modules) - 1, 'module')}, {count(len(patch.cables), 'cable')}"
    if not timeline:
        return f"patch: {body}"
    length = next((count(c.bars, "bar") for c in timeline.commands if isinstance(c, Length)), "no length")
    patterns = sum(isinstance(c, Pattern) or isinstance(c, At) and isinstance(c.command, Pattern)
                   for c in timeline.commands)   # as `synth check` counts them
    return f"song: {length}, {count(patterns, 'pattern')}, {body}"


def listing(patch: Patch, timeline: Timeline) -> str:
    rows = []
    for name, inst in patch.modules.items():
        params = " ".join(f"{p.name}={p.format(inst.params[p.name])}" for p in inst.type.cls.params)
        rows.append([name, inst.type.name, params])
    lines = [f"requires {', '.join(patch.requires)}"] if patch.requires else []
    lines += ["modules"] + table(rows)
    lines += ["cables"] + ([f"  {c}" for c in patch.cables] or ["  (none: `connect NAME out` to hear a module)"])
    if timeline:
        head, body = timeline.lines()
        lines += ["song  " + ", ".join(head)] + [f"  {line}" for line in body]
    return "\n".join(lines)


def info(name: str, patch: Patch, registry) -> str:
    inst = patch.modules.get(name)
    if inst is not None:
        return _instance(name, inst, patch)
    if name in registry:
        return _type(registry.get(name))
    raise SynthError(f"no module or module type '{name}'{did_you_mean(name, [*patch.modules, *registry.types])}")


def _instance(name: str, inst, patch: Patch) -> str:
    cls = inst.type.cls
    into = {}
    out_of = {}
    for c in patch.cables:
        if c.dst == name:
            into.setdefault(c.dst_port, []).append(f"{c.src}.{c.src_port}")
        if c.src == name:
            out_of.setdefault(c.src_port, []).append(f"{c.dst}.{c.dst_port}")
    rows = [["in", p.name, linked("<-", into.get(p.name)), "", p.doc] for p in cls.inputs]
    rows += [["out", p.name, linked("->", out_of.get(p.name)), "", p.doc] for p in cls.outputs]
    for p in cls.params:
        value = p.format(inst.params[p.name]) + (f" {p.unit}" if p.unit and not p.choices else "")
        modulated = linked(" <-", into.get(p.name))
        rows.append(["param", p.name, value + modulated, p.range_text().strip(), p.doc])
    return "\n".join([f"{name}: {cls.type_name} ({inst.type.package}), {cls.description}"] + table(rows))


def linked(arrow: str, names: list[str] | None) -> str:
    return f"{arrow} {', '.join(names)}" if names else ""


def _type(entry) -> str:
    cls = entry.cls
    rows = [[label, p.name, p.kind, "", p.doc] for label, ports in (("in", cls.inputs), ("out", cls.outputs))
            for p in ports]
    rows += [["param", p.name, p.format(p.default_value), p.range_text().strip(), p.doc] for p in cls.params]
    return "\n".join([f"{entry.name} ({entry.package} {entry.version}), {cls.description}"] + table(rows))


#: A command's synopsis longer than this (the pattern command's) takes a
#: line of its own: the column it would set leaves no room for the rest.
SYNOPSIS_COLUMN = 40


def help_text(name: str | None, registry, width: int | None = None) -> str:
    """Every command in two tables, wrapped to ``width`` (the terminal's by
    default), or one command or module type as the generated reference in
    docs/ has it (`synth help NAME` prints the same)."""
    if name is not None:
        return topic(name, registry, "help").rstrip("\n")
    width = width or shutil.get_terminal_size().columns
    kinds = (("patch and song commands", COMMANDS.values()), ("REPL commands", REPL_COMMANDS.values()))
    column = max(len(c.syntax) for _, commands in kinds for c in commands if len(c.syntax) <= SYNOPSIS_COLUMN)
    if width - column - 5 < 30:   # too narrow for two columns: each summary under its synopsis
        column = 0
    hang = " " * (column + 4 if column else 6)
    lines = []
    for title, commands in kinds:
        lines.append(title)
        for c in commands:
            summary = textwrap.wrap(c.summary, width - len(hang) - 1)
            if len(c.syntax) > column:
                lines.append("  " + c.syntax)
            else:
                lines.append(f"  {c.syntax.ljust(column)}  {summary.pop(0) if summary else ''}".rstrip())
            lines += [hang + text for text in summary]
    lines += textwrap.wrap("Tab completes; a pasted block is one change (one undo); Ctrl-C cancels the line; "
                           "`help COMMAND` for one command, `help TYPE` for a module type", width - 1)
    return "\n".join(lines)


def top(meters: dict, status: str) -> str:
    if not meters:
        return f"no meters: {status}"
    lines = [f"xruns {meters['xruns']}, underflows {meters['underflows']}, "
             f"{meters['played']} blocks played"]
    # A worker's own worst block is not measured: its column is its slowest module's worst.
    rows = [["worker", "pid", "modules", "cpu", "mean ms", "worst module ms", "missed", "restarts"]]
    for part, w in sorted(meters["workers"].items(), key=lambda item: int(item[0])):
        load = meters["cpu"].get(str(part), 0.0)
        rows.append([f"{part}" + (" (engine)" if int(part) == 0 else ""), str(w["pid"]), str(w["modules"]),
                     f"{100 * load:.1f}%", f"{w['mean_ms']:.3f}", f"{w['max_ms']:.3f}", str(w["missed"]),
                     str(w["restarts"])])
    lines += table(rows, "")
    rows = [["module", "type", "worker", "mean ms", "max ms", "faults", "restarts", "state"]]
    for name, m in sorted(meters["modules"].items(), key=lambda item: (item[0] == MASTER, -item[1]["mean_ms"])):
        state = f"quarantined: {m['reason']}" if m["quarantined"] else (m["reason"] or "ok")
        rows.append([name, m["type"].split(":")[-1], str(m["partition"]), f"{m['mean_ms']:.3f}",
                     f"{m['max_ms']:.3f}", str(m["faults"]), str(m["restarts"]), state])
    return "\n".join(lines + table(rows, ""))


def devices() -> str:
    from ..audio.devices import describe, outputs
    found = outputs()
    if not found:
        return "no output devices: start a sound server (JACK, PulseAudio, PipeWire)"
    return "\n".join(map(describe, found))
