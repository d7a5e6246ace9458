"""What the REPL prints about the patch, the song, the commands and the
engine: plain text, aligned in columns, built from the same tables and
models that everything else reads, so it cannot drift from them."""
from __future__ import annotations

import textwrap
from fractions import Fraction

from ..errors import SynthError, did_you_mean
from ..language import COMMANDS, At, Length, Pattern
from ..patch import MASTER, Patch, synced_value
from ..reference import topic
from .commands import REPL_COMMANDS
from .timeline import Timeline


#: The narrowest text wraps to: a table's last column beside the others
#: (a terminal that leaves it less has it under each row instead), or a
#: line in a window squeezed to a sliver.
NARROWEST = 30


def wrapped(text: str, width: int | None) -> list[str]:
    """A line's words wrapped to a terminal's ``width``, whole (a hyphen or
    a long value is no place to break), its last column left free, as a
    line that fills it makes some terminals wrap; one line without one.
    Never narrower than NARROWEST: a window squeezed to a sliver gets
    lines it wraps itself, not a column a word wide."""
    if not width:
        return [text]
    return textwrap.wrap(text, max(width - 1, NARROWEST), break_long_words=False, break_on_hyphens=False) or [""]


def table(rows: list[list[str] | str], indent: str = "  ", width: int | None = None,
          cap: int | None = None) -> list[str]:
    """Rows in aligned columns; a row given as a string is a title between
    them (the columns run on under it). With the terminal's ``width`` the
    last column wraps under itself, where the terminal would break its
    words at the edge, or under each row when that leaves it too little
    room. A first cell longer than ``cap`` stands on a line of its own
    (one long synopsis would set a column that leaves the rest no room)."""
    cells = [row for row in rows if not isinstance(row, str)]
    last = max(map(len, cells)) - 1
    widths = [max((len(row[i]) for row in cells if i < len(row) and not (i == 0 and cap and len(row[0]) > cap)),
                  default=0) for i in range(last + 1)]
    hang = len(indent) + sum(w + 2 for w in widths[:last])
    under = width is not None and width - hang - 1 < NARROWEST
    lines = []
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
            continue
        if cap and len(row[0]) > cap:
            lines.append(indent + row[0])
            row = ["", *row[1:]]
        text = row[last] if width and len(row) > last else ""
        head = indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:last] if text else row))
        if not text:
            lines.append(head.rstrip())
        elif under:
            lines += [head.rstrip()] * bool(head.strip())
            lines += [indent + "    " + line for line in wrapped(text, width - len(indent) - 4)]
        else:
            first, *more = wrapped(text, width - hang)
            lines += [head + "  " + first] + [" " * hang + line for line in more]
    return lines


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


def listing(patch: Patch, timeline: Timeline, width: int | None = None) -> str:
    rows = []
    for name, inst in patch.modules.items():
        params = " ".join(f"{p.name}={patch.synced.get((name, p.name)) or shown(p, inst.params[p.name])}"
                          for p in inst.type.cls.params)
        rows.append([name, inst.type.name, params])
    lines = [f"requires {', '.join(patch.requires)}"] if patch.requires else []
    lines += ["modules"] + table(rows, width=width)
    lines += ["cables"] + ([f"  {c}" for c in patch.cables] or ["  (none: `connect NAME out` to hear a module)"])
    if timeline:
        head, body = timeline.lines()
        lines += ["song  " + ", ".join(head)] + [f"  {line}" for line in body]
    return "\n".join(lines)


def info(name: str, patch: Patch, registry, width: int | None = None, tempo: Fraction | None = None) -> str:
    """What ``info NAME`` prints; ``tempo`` the one in force now (a
    playing song's at its bar, which a note length's value follows), if
    not the patch's."""
    inst = patch.modules.get(name)
    if inst is not None:
        return _instance(name, inst, patch, width, patch.tempo if tempo is None else tempo)
    if name in registry:
        return _type(registry.get(name), width)
    module, dot, _ = name.partition(".")
    if dot and (module in patch.modules or module in registry):   # `info s.freq`: the module's info has it
        raise SynthError(f"info takes a module or module type, not one of its ports or parameters: info {module}")
    raise SynthError(f"no module or module type '{name}'{did_you_mean(name, [*patch.modules, *registry.types])}")


def _instance(name: str, inst, patch: Patch, width: int | None, tempo: Fraction) -> str:
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
        length = patch.synced.get((name, p.name))
        now = inst.params[p.name] if length is None else synced_value(p, length, tempo, clamp=True)
        value = shown(p, now) + (f" {p.unit}" if p.unit and not p.choices else "")
        if length is not None:
            value = f"{length} ({value} at {float(tempo):g} BPM)"
        modulated = linked(" <-", into.get(p.name))
        rows.append(["param", p.name, value + modulated, p.range_text().strip(), p.doc])
    return "\n".join(wrapped(f"{name}: {cls.type_name} ({inst.type.package}), {cls.description}", width)
                     + table(rows, width=width))


def linked(arrow: str, names: list[str] | None) -> str:
    return f"{arrow} {', '.join(names)}" if names else ""


def _type(entry, width: int | None) -> str:
    return "\n".join(wrapped(f"{entry.name} ({entry.package} {entry.version}), {entry.cls.description}", width)
                     + table(type_rows(entry.cls), width=width))


def type_rows(cls) -> list[list[str]]:
    """A module type's ports and parameters as `info` and `synth modules` list them."""
    rows = [[label, p.name, p.kind, "", p.doc] for label, ports in (("in", cls.inputs), ("out", cls.outputs))
            for p in ports]
    return rows + [["param", p.name, shown(p, p.default_value), p.range_text().strip(), p.doc] for p in cls.params]


def shown(param, value) -> str:
    """A value as a musician reads it: six significant figures, so C4, the
    default pitch, is 261.626 and not the 17 digits `save` writes to keep
    it exact. Whatever six figures hold (what one types) shows as typed."""
    text = param.format(value)
    if param.file or param.choices or param.integer:
        return text
    short = f"{float(value):.6g}"
    return short if len(short) < len(text) and "e" not in short else text


#: A command's synopsis longer than this (the pattern command's) takes a
#: line of its own.
SYNOPSIS_COLUMN = 40


def help_text(name: str | None, registry, width: int | None = None) -> str:
    """Every command in two tables, or one command or module type as the
    generated reference in docs/ has it (`synth help NAME` prints the same);
    wrapped to ``width``, a terminal's, when there is one."""
    if name is not None:
        return topic(name, registry, "help", width).rstrip("\n")
    rows = (["patch and song commands"] + [[s.syntax, s.summary] for s in COMMANDS.values()]
            + ["REPL commands"] + [[c.syntax, c.summary] for c in REPL_COMMANDS.values()])
    tail = ("Tab completes; a pasted block is one change (one undo); Ctrl-C cancels the line; "
            "`help COMMAND` for one command, `help TYPE` for a module type")
    return "\n".join(table(rows, width=width, cap=SYNOPSIS_COLUMN) + wrapped(tail, width))


def top(meters: dict, status: str, width: int | None = None) -> str:
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
    return "\n".join(lines + table(rows, "", width))


#: Seconds `devices` waits for the process that asks PortAudio.
DEVICES_SECONDS = 10.0


def devices() -> str:
    """The output devices as a process of their own finds them, as
    `synth devices --json` does. Asked in the REPL's own process, PortAudio
    kept the list of its first look (a sound server gone since still
    listed, while `audio restart` was what the musician came for), and
    its exit aborted the REPL (status 134) once that server was gone."""
    import json
    import subprocess
    import sys
    from ..audio.devices import describe
    try:
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", "devices", "--json"], capture_output=True,
                              text=True, timeout=DEVICES_SECONDS)
    except subprocess.TimeoutExpired:
        raise SynthError(f"no list of devices within {DEVICES_SECONDS:g} s: the sound server does not answer") from None
    if done.returncode != 0:
        raise SynthError(done.stderr.strip().removeprefix("error: ")
                         or f"`synth devices` failed (status {done.returncode})")
    found = json.loads(done.stdout)["outputs"]
    if not found:
        return "no output devices: start a sound server (JACK, PulseAudio, PipeWire)"
    return "\n".join(map(describe, found))
