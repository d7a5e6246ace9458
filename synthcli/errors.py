"""One error type for everything a user can get wrong, so every front end
(CLI, REPL, OSC, file loaders) reports it the same way: one line, with the
place it happened."""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Iterable


#: Characters of a message shown at most: a 60,000-character word pasted by
#: mistake (or sent over OSC) is quoted back cut, not in full.
MESSAGE_LIMIT = 400


class SynthError(Exception):
    """A user-facing error: what went wrong and where.

    ``str(error)`` is the one line to show: ``file:line:col: message``, with
    whichever parts of the place are known.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 line: int | None = None, col: int | None = None) -> None:
        if len(message) > MESSAGE_LIMIT:
            head, tail = MESSAGE_LIMIT - 80, 50
            message = f"{message[:head]} [... {len(message) - head - tail} characters ...] {message[-tail:]}"
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.col = col

    def at(self, *, source: str | None = None, line: int | None = None,
           col: int | None = None) -> "SynthError":
        """Fill in the parts of the place that are still unknown."""
        self.source = self.source or source
        self.line = self.line or line
        self.col = self.col or col
        return self

    def __str__(self) -> str:
        place = [str(p) for p in (self.source, self.line, self.col) if p is not None]
        return f"{':'.join(place)}: {self.message}" if place else self.message

    def typed(self, text: str) -> str:
        """The one line to show for ``text`` entered live (the REPL, OSC): a
        file error names its place, a block of lines its line, and a line
        its column past the first word (a long pattern's error would not
        otherwise say where it is)."""
        if self.source:
            return str(self)
        column = f"column {self.col}" if self.col and self.col > 1 and text.strip() else ""
        if self.line and len(text.strip("\n").split("\n")) > 1:
            return f"line {self.line}{', ' + column if column else ''}: {self.message}"
        return f"{column}: {self.message}" if column else self.message


class Terminated(SystemExit):
    """SIGTERM or SIGHUP, raised by the command line's handler to unwind
    like Ctrl-C. Its own class so that code which must survive a plugin's
    ``sys.exit()`` can still let it through."""


def exit_reason(code: int | None) -> str:
    """How a process ended, from its exit code as multiprocessing gives it
    (minus the signal that ended it): "crashed (SIGSEGV)", "was killed
    (SIGKILL)" (by someone: the OOM killer, a kill command), "exited
    (status 3)"."""
    if code is None or code >= 0:
        return f"exited (status {code})"
    name = signal.Signals(-code).name
    return f"was killed ({name})" if name in ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP") else f"crashed ({name})"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUMBA_PLACE = re.compile(r'File "([^"]+)", line (\d+)')


def one_line(error: BaseException, where: str = "") -> str:
    """An exception from a plugin as one line of a warning, saying in which
    of its methods (``where``) it was raised. Some messages span lines (a
    SyntaxError's, pluggy's); numba's compile errors span fifteen, in
    colour, for one fact and one place, which are what is kept."""
    text = _ANSI.sub("", str(error))
    if type(error).__module__.startswith("numba") and text.startswith("Failed in "):
        lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
        gist = lines[:2] if lines and lines[0].endswith(":") else lines[:1]   # "... for signature:" and it
        place = _NUMBA_PLACE.search(text)
        text = " ".join(gist) + (f" (numba, compiling {place[1]} line {place[2]})" if place else " (numba)")
    return " ".join(f"{type(error).__name__}{f' in {where}' if where else ''}: {text}".split())


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: typos are mostly one insertion,
    deletion, substitution or swap of neighbours ('vfc' for 'vcf')."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]



class UnknownModule(SynthError):
    """A name no module of the patch has. ``module`` keeps it, so that who
    catches the error can say more than a typo's hint: the song adds it at
    a later bar, or the edit being checked took it away."""

    def __init__(self, module: str, known: Iterable[str], *, message: str | None = None, **place) -> None:
        super().__init__(message or f"unknown module '{module}'{did_you_mean(module, known)}", **place)
        self.module = str(module)

    def __reduce__(self):   # pickled as built, hint and place included
        return UnknownModule, (self.module, ()), self.__dict__

def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ", did you mean 'x'?" suffix naming the closest candidate, or ""
    when none is within about a third of the word's length (rounded up:
    'ladr' is two edits from 'ladder'). A word of two letters or more
    that begins exactly one candidate names it too: 'lin' for 'linear',
    'tri' for 'triangle' are shortenings, not typos. Never the word
    itself: one that is a candidate is wrong some other way, for the
    caller to say ('legato' without its '=VALUE')."""
    candidates = [c for c in candidates if c != word]
    limit = max(1, (len(word) + 2) // 3)
    # Ties go to a candidate with the same first letter: typos rarely hit it.
    # Lengths further apart than the limit are that many edits at least: a
    # long word is not compared (60,000 characters took 1.8 s).
    scored = sorted((edit_distance(word.lower(), c.lower()), c[:1].lower() != word[:1].lower(), c)
                    for c in candidates if abs(len(c) - len(word)) <= limit)
    if scored and scored[0][0] <= limit:
        return f", did you mean '{scored[0][2]}'?"
    starting = [c for c in candidates if len(word) >= 2 and c.lower().startswith(word.lower())]
    return f", did you mean '{starting[0]}'?" if len(starting) == 1 else ""


#: The longest name of one file or folder, in bytes (Linux's NAME_MAX).
NAME_BYTES = 255


def name_problem(path: str | Path) -> str | None:
    """Why no file can have this name, or None. Asked before anything looks
    at the file: a part over NAME_BYTES makes every look raise (is_file()
    too), and a NUL cuts the name short in C, so soundfile wrote another
    file than the one named."""
    text = str(path)
    if "\x00" in text:
        return "a file name cannot hold a NUL character"
    if any(len(os.fsencode(part)) > NAME_BYTES for part in Path(text).parts):
        return f"the file name is too long (at most {NAME_BYTES} bytes between slashes)"
    return None


def open_to_read(path: str | Path):
    """``path`` opened to read bytes, without waiting for a writer: open()
    of a named pipe that nobody writes to waits for one for ever, and an
    OSC `load` of one held every client, and the keyboard, behind it. A
    pipe still gives what its writer writes (`synth play <(make-song)`);
    with none, it reads as empty at once."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_output(path: Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Refuse, before any work, a file a command could not write: a minute
    of rendering should not end in an error about the file's name.
    ``suffixes`` are the kinds of file the command writes (".wav", ...);
    ``what`` names the option or command in the one line."""
    problem = name_problem(path)
    if problem is not None:
        raise SynthError(f"{what} {str(path)!r}: {problem}")   # quoted: a NUL shows
    if path.suffix.lower() not in suffixes:
        kinds = ", ".join(suffixes[:-1]) + (" or " if len(suffixes) > 1 else "") + suffixes[-1]
        raise SynthError(f"{what} {path}: expected a {kinds} file")
    if path.is_dir():
        raise SynthError(f"{what} {path}: is a directory")
    if not path.parent.is_dir():
        raise SynthError(f"{what} {path}: no such directory '{path.parent}'")
    return path
