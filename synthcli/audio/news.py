"""What the engine's meters say that a musician must hear about at once
(a module failed or was quarantined, a worker was replaced): the REPL
prints it above the prompt, `synth play` on stderr. Kept free of numpy so
either can import it before the audio starts."""
from __future__ import annotations


def module_label(name: str, meters: dict) -> str:
    """A module as a warning names it: by the musician's name, its type,
    and the plugin package it comes from, so they know whom to tell."""
    kind = ", ".join(filter(None, (meters.get("type", "").split(":")[-1],
                                   meters.get("package") and f"from {meters['package']}")))
    return f"module '{name}'" + (f" ({kind})" if kind else "")


def news(before: dict, after: dict) -> list[str]:
    """Lines worth interrupting the musician for, between two meter readings."""
    lines = []
    old_modules = before.get("modules", {})
    for name, m in after.get("modules", {}).items():
        old = old_modules.get(name, {})
        if m["faults"] > old.get("faults", 0):
            fate = "quarantined: it stays silent" if m["quarantined"] else "it plays on"
            lines.append(f"{module_label(name, m)} failed ({m['reason']}); {fate}")
        elif m["quarantined"] and not old.get("quarantined", False):
            lines.append(f"{module_label(name, m)} is quarantined: it stays silent ({m['reason']})")
    old_workers = before.get("workers", {})
    for part, w in after.get("workers", {}).items():
        old = old_workers.get(part)
        if old is not None and w["restarts"] > old["restarts"]:
            lines.append(f"worker {part} was replaced (pid {old['pid']} -> {w['pid']}); its modules play on")
    return lines
