"""A crash of synthcli's own process under ``--executor inline`` or
``threads``, which run every module in it: which module it happened in,
and the one line that tells it.

The default executors run plugin modules in worker processes, where a
crash costs one module; these two trade that isolation for speed, so a
plugin's segfault ends the render or the sound. The musician should still
learn whom to tell. faulthandler writes the crashing thread's Python stack
to a file that outlives the process, at no cost while nothing crashes, and
its frames are matched against the registered module types' methods.
"""
from __future__ import annotations

import faulthandler
import re
from typing import IO

from ..errors import exit_reason

#: The executors that run modules in synthcli's own process.
IN_PROCESS = ("inline", "threads")

_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)$', re.M)


def witness(dump: IO) -> None:
    """Have a crash of this process write its crashing thread's stack to
    ``dump`` (an open file the watching process can read afterwards)."""
    faulthandler.enable(dump, all_threads=False)


def culprit(dump: str, registry) -> str | None:
    """The module method a faulthandler ``dump`` shows running when the
    process crashed: its innermost frame that is one of a registered module
    type's methods, as "the process() of module type 'x' (from pkg 1.0)";
    None when no module was on the stack (the crash was ours)."""
    from ..api import Module

    methods: dict[tuple[str, str], list] = {}
    for entry in registry.qualified.values():
        for klass in entry.cls.__mro__:
            if klass in (Module, object):
                break
            for attribute in vars(klass).values():
                code = getattr(getattr(attribute, "__func__", attribute), "__code__", None)
                if code is not None:
                    methods.setdefault((code.co_filename, code.co_name), []).append((code, entry))
    for file, line, name in _FRAME.findall(dump):   # the innermost frame first
        found = [entry for code, entry in methods.get((file, name), ())
                 if code.co_firstlineno <= int(line) <= max((n for *_, n in code.co_lines() if n), default=0)]
        if found:   # several when types share a base class's method: all are named
            types = " or ".join(f"'{entry.name}'" for entry in found)
            return f"the {name}() of module type {types} (from {found[0].package} {found[0].version})"
    return None


def told(code: int, executor: str, where: str | None, host: str) -> str:
    """How the process ``host`` names ended, and why a module could take it
    down: "crashed (SIGSEGV) in the process() of module type 'x' (from pkg
    1.0) under --executor inline, where every module runs in <host> (...)".
    Under ``auto`` that happens only with a plugin's module class that no
    worker process can host (plugins.unhostable warned of it)."""
    place = f" in {where}" if where else ""
    if executor == "auto":
        return (f"{exit_reason(code)}{place} under --executor auto, which ran every module in {host}: "
                "a plugin's module class could not go to a worker process (see its warning)")
    return (f"{exit_reason(code)}{place} under --executor {executor}, where every module runs in {host} "
            "(the default executor isolates plugin modules)")
