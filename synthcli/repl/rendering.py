"""A render asked for in the REPL runs beside the prompt.

A song of a few minutes takes seconds to render, and a musician in the
middle of a set should not lose the prompt for them, nor OSC and MIDI,
which wait for each command to finish: the render runs on a thread of
its own, from a copy of the patch and song as they were when it was
asked for, while editing and playing go on. ``render`` alone says how
far it is (or, once it has ended, what it wrote), the toolbar shows it,
and ``render stop`` (or ``quit``) ends it with a valid file of what was
rendered, as Ctrl-C ends ``synth render``.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

from ..errors import SynthError


def yield_to_the_audio() -> None:
    """Run this thread at the lowest priority: Linux schedules each thread
    on its own, so the live audio's engine and workers keep the CPUs they
    need. At the normal one, a render typed in the REPL took a core of
    two from them, and the new user heard three xruns. Elsewhere (no
    thread priorities) it runs as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


class Rendering:
    """One render on its thread.

    Parameters
    ----------
    path : str
        The file it writes, for what it says.
    work : callable
        ``work(progress)`` renders and returns what to say of what was
        written and its kind ("" or "warning": a module failed); it calls
        ``progress(fraction)`` now and then.
    say : callable
        ``say(line, kind)`` prints the outcome above the prompt, from the
        render's thread.
    """

    def __init__(self, path: str, work: Callable[[Callable[[float], None]], str],
                 say: Callable[[str, str], None]) -> None:
        self.path = path
        self.outcome = ""   # what it said when it ended
        self.fraction = 0.0
        self.started = time.monotonic()
        self._say = say
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name="render", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def left(self) -> float | None:
        """Seconds still to go at the pace so far; None before there is one."""
        if self.fraction <= 0.0:
            return None
        return (time.monotonic() - self.started) * (1.0 - self.fraction) / self.fraction

    def stop(self) -> None:
        """End the render and wait for its file to be closed. The render's
        own check of its progress (every tenth of a second) raises what
        Ctrl-C would, so the file is finished the same way."""
        self._stopping.set()
        self._thread.join()

    def _progress(self, fraction: float) -> None:
        self.fraction = fraction
        if self._stopping.is_set():
            raise KeyboardInterrupt

    def _run(self, work: Callable[[Callable[[float], None]], str]) -> None:
        yield_to_the_audio()
        try:
            line, kind = work(self._progress)
        except KeyboardInterrupt as stopped:   # RenderInterrupted: says what the file holds
            line, kind = f"render {str(stopped) or 'stopped'}", "warning"
        except SynthError as error:
            line, kind = f"render: error: {error}", "error"
        except Exception as error:   # a fault of ours must not end in a thread's traceback over the prompt
            line, kind = f"render: internal error: {type(error).__name__}: {error}", "error"
        self.outcome = line
        self._say(line, kind)
