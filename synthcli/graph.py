"""The patch as a picture: Graphviz DOT, modules as boxes with their ports,
cables as arrows from output port to input port.

DOT is written by hand (it is a small text format); turning it into SVG or
PNG is left to Graphviz's own `dot` program when it is installed.
"""
from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

from .errors import SynthError
from .patch import Patch

#: What `synth graph -o` can write: Graphviz's pictures, or its DOT text alone.
SUFFIXES = (".svg", ".png", ".pdf", ".dot")


def to_dot(patch: Patch, title: str = "patch", delayed: set | None = None) -> str:
    """DOT text: one HTML-table node per module (inputs and parameters that
    have cables on the left, outputs on the right), one edge per cable;
    cables that close a feedback loop (one block of delay) are dashed."""
    used_inputs = {(c.dst, c.dst_port) for c in patch.cables}
    lines = [f"digraph {_id(title)} {{", "  rankdir=LR;", '  node [shape=plaintext, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for name, inst in patch.modules.items():
        cls = inst.type.cls
        ins = [p.name for p in cls.inputs] + [p.name for p in cls.params if (name, p.name) in used_inputs]
        outs = [p.name for p in cls.outputs]
        rows = max(len(ins), len(outs), 1)
        cells = []
        for i in range(rows):
            left = f'<td port="in_{ins[i]}" align="left">{html.escape(ins[i])}</td>' if i < len(ins) else "<td></td>"
            right = (f'<td port="out_{outs[i]}" align="right">{html.escape(outs[i])}</td>' if i < len(outs)
                     else "<td></td>")
            middle = (f'<td rowspan="{rows}" bgcolor="#e8eef7"><b>{html.escape(name)}</b><br/>'
                      f'<font point-size="10">{html.escape(cls.type_name)}</font></td>') if i == 0 else ""
            cells.append(f"<tr>{left}{middle}{right}</tr>")
        table = f'<table border="0" cellborder="1" cellspacing="0" cellpadding="4">{"".join(cells)}</table>'
        lines.append(f"  {_id(name)} [label=<{table}>];")
    for cable in patch.cables:
        style = ' [style=dashed, label="1 block"]' if delayed and cable in delayed else ""
        lines.append(f'  {_id(cable.src)}:out_{cable.src_port}:e -> {_id(cable.dst)}:in_{cable.dst_port}:w{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return '"' + name.replace('"', r"\"") + '"'


def write_graph(patch: Patch, output: Path, delayed: set | None = None) -> list[Path]:
    """Write ``output``: always a .dot beside it, and the .svg/.png itself
    when Graphviz is installed. Returns the files written."""
    fmt = output.suffix.lstrip(".").lower()
    if f".{fmt}" not in SUFFIXES:
        raise SynthError(f"cannot draw a .{fmt} file: use .svg, .png, .pdf or .dot")
    dot_path = output.with_suffix(".dot")
    try:
        dot_path.write_text(to_dot(patch, output.stem, delayed))
    except OSError as error:
        raise SynthError(f"cannot write {dot_path}: {error.strerror}") from None
    written = [dot_path]
    if fmt == "dot":
        return written
    program = shutil.which("dot")
    if program is None:
        raise SynthError(f"wrote {dot_path}; for .{fmt} install Graphviz (Debian: apt-get install graphviz; "
                         f"macOS: brew install graphviz)")
    done = subprocess.run([program, f"-T{fmt}", str(dot_path), "-o", str(output)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SynthError(f"Graphviz failed on {dot_path}: {done.stderr.strip().splitlines()[-1]}")
    return written + [output]
