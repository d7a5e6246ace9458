"""What the engine's meters say that a musician must hear about at once
(a module failed, was quarantined or is too slow for real time, a worker
was replaced): the REPL
prints it above the prompt, `synth play` on stderr. Kept free of numpy so
either can import it before the audio starts."""
from __future__ import annotations


def module_label(name: str, meters: dict) -> str:
    """A module as a warning names it: by the musician's name, its type,
    and the plugin package it comes from, so they know whom to tell."""
    kind = ", ".join(filter(None, (meters.get("type", "").split(":")[-1],
                                   meters.get("package") and f"from {meters['package']}")))
    return f"module '{name}'" + (f" ({kind})" if kind else "")


def faults_of_a_render(stats: dict) -> list[str]:
    """The modules that failed in a render, which are silent in its file
    from then on or while they failed: a render has no later news to
    say it in, so ``synth render`` and the REPL's ``render`` say it at
    the end. ``stats`` is ``Engine.module_stats()``."""
    lines = []
    for name, m in stats.items():
        if m["faults"]:
            state = "quarantined (silent from then on)" if m["quarantined"] else "silenced while it failed"
            lines.append(f"{module_label(name, m)} failed {m['faults']} time{'' if m['faults'] == 1 else 's'}, "
                         f"{state}: {m['reason']}")
    return lines


#: Seconds of blocks a module's mean time covers before it is judged: its
#: first block may hold a one-time cost (a numba kernel compiling) that
#: would make a module fast enough look too slow.
JUDGE_AFTER = 2.0


def _too_slow(meters: dict, block_ms: float) -> bool:
    """The module's blocks take longer, on average, than the sound they make."""
    judged = meters.get("blocks", 0) * block_ms >= 1e3 * JUDGE_AFTER
    return judged and meters.get("mean_ms", 0.0) > block_ms


def news(before: dict, after: dict) -> list[str]:
    """Lines worth interrupting the musician for, between two meter readings."""
    lines = []
    old_modules = before.get("modules", {})
    for name, m in after.get("modules", {}).items():
        old = old_modules.get(name, {})
        if m["faults"] > old.get("faults", 0):
            if not m.get("held", True):   # the machine's doing, not the module's
                lines.append(f"{module_label(name, m)} was silent for a block ({m['reason']}); it plays on")
            else:
                fate = "quarantined: it stays silent" if m["quarantined"] else "it plays on"
                lines.append(f"{module_label(name, m)} failed ({m['reason']}); {fate}")
        elif m["quarantined"] and not old.get("quarantined", False):
            lines.append(f"{module_label(name, m)} is quarantined: it stays silent ({m['reason']})")
        block_ms = after.get("block_ms", 0.0)
        if block_ms and _too_slow(m, block_ms) and not _too_slow(old, block_ms):
            lines.append(f"{module_label(name, m)} takes {m['mean_ms']:.2f} ms to render each "
                         f"{block_ms:.2f} ms block: the sound cannot keep up")
    old_workers = before.get("workers", {})
    for part, w in after.get("workers", {}).items():
        old = old_workers.get(part)
        if old is not None and w["restarts"] > old["restarts"]:
            if w.get("vacant"):   # no spare was ready: the pid is still the dead one's
                lines.append(f"worker {part} (pid {old['pid']}) is gone and no spare is ready yet: its modules "
                             "are silent until one is, in a few seconds")
            else:
                lines.append(f"worker {part} was replaced (pid {old['pid']} -> {w['pid']}); its modules play on")
        elif old is not None and old.get("vacant") and not w.get("vacant"):
            lines.append(f"worker {part} is back (pid {w['pid']}); its modules play on")
    return lines
