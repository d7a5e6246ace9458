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
import math
import mmap
import os
import re
import signal
import time
from pathlib import Path
from typing import IO, Callable

from ..errors import SynthError, exit_reason

#: The executors that run modules in synthcli's own process.
IN_PROCESS = ("inline", "threads")

_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)$', re.M)


#: Seconds a render in synthcli's own process may make no progress before
#: the watching process looks for a module that hangs (see watch_for_a_hang);
#: SYNTHCLI_HANG_SECONDS gives another, for a plugin known to think longer
#: in one call (a model it loads in its first block, say).
HANG_SECONDS = 10.0


def hang_seconds() -> float:
    """SYNTHCLI_HANG_SECONDS, or HANG_SECONDS where it is not set; a value
    that is not a number of seconds over 0 is refused, not taken for the
    default as it was: the plugin author who set it would wait in vain."""
    text = os.environ.get("SYNTHCLI_HANG_SECONDS", "").strip()
    if not text:
        return HANG_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise SynthError(f"SYNTHCLI_HANG_SECONDS={text!r} is not a number of seconds over 0")
    return seconds


def beats() -> mmap.mmap:
    """Two bytes shared with the processes forked after it is made: the
    render's heartbeat, for :func:`beat` and :func:`watch_for_a_hang`, and
    whether it ended by Python's own way out (see :func:`ends_in_python`)."""
    return mmap.mmap(-1, 2)


def beat(beats: mmap.mmap) -> None:
    """The render has moved on (a watched render's child calls it)."""
    beats[0] = (beats[0] + 1) % 256


def ends_in_python(beats: mmap.mmap) -> None:
    """Mark the render's end in ``beats`` at the interpreter's exit, which
    every way out of synthcli takes (a finished render, an error, Ctrl-C),
    and a module's ``os._exit`` does not: an exit without the mark ended
    the render in a module, with a status that may even be 0, where the
    watching process had said nothing."""
    import atexit
    atexit.register(beats.__setitem__, 1, 1)


def witness(dump: IO, hangs: IO | None = None) -> None:
    """Have a crash of this process write its crashing thread's stack to
    ``dump`` (an open file the watching process can read afterwards), and
    a SIGUSR1 write every thread's stack to ``hangs``, if given, and go
    on (see watch_for_a_hang)."""
    faulthandler.enable(dump, all_threads=False)
    if hangs is not None:
        faulthandler.register(signal.SIGUSR1, file=hangs, all_threads=True)   # threads: a worker thread's


def watch_for_a_hang(child: int, output: Path, beats: mmap.mmap, hangs: IO, registry,
                     say: Callable[[str], None], patience: float = HANG_SECONDS) -> None:
    """Say once, in the watching process, when the render in ``child`` has
    made no progress for ``patience`` seconds (see :func:`hang_seconds`)
    while one of a module's methods runs:
    under inline no deadline ends a hang, and the render would wait for
    ever in silence (the plugin audit's ``time.sleep(100)`` in process()).
    Progress is a beat (see :func:`beat`), which the render gives as it
    reports how far it is, or ``output`` growing, for a render that does
    not know its length. The file alone would not do: it grows every 64
    blocks, which a module slow but not stuck can take 10 s to render.
    Nothing is said while our own code runs, a slow start say: only a
    module can hang the render. Runs on a daemon thread."""
    seen, since = None, time.monotonic()
    while True:
        time.sleep(1.0)
        now = time.monotonic()
        try:
            size = output.stat().st_size
        except OSError:
            size = None
        if (beats[0], size) != seen:
            seen, since = (beats[0], size), now
            continue
        if now - since < patience:
            continue
        ahead = hangs.seek(0, 2)
        try:
            os.kill(child, signal.SIGUSR1)
        except ProcessLookupError:   # it ended (and was reaped) a moment ago
            return
        time.sleep(0.2)
        hangs.seek(ahead)
        where = culprit(hangs.read().decode(errors="replace"), registry)
        if where is not None:
            say(f"warning: synth render has written nothing for {now - since:.0f} s, in {where}; it may hang: "
                f"here no deadline ends a module, and Ctrl-C keeps what was rendered (--executor processes "
                f"would end it at its deadline)")
            return
        since = now


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
