"""The session journal: every change to the patch or the song, on disk
before it is applied, so a crash of the REPL loses nothing.

One JSON object a line (``{"edit": TEXT}``, ``{"undo": 1}``, ``{"redo": 1}``,
``{"load": PATH, "text": CONTENT}``, ``{"dir": PATH}``): replaying the lines
through a new session rebuilds the patch, the song and the undo history
exactly, and a load carries the file's text, so a file changed since does
not matter, and its absolute path, where the files it names are found from
wherever the session resumes. A ``dir`` line says the folder the edits
after it were typed in, where a relative path they name is found.
A line cut short by the crash itself is skipped.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import SynthError

POINTER = "latest"
#: Journals kept in the state directory; older ones are deleted.
KEEP = 20


def state_dir() -> Path:
    """``$XDG_STATE_HOME/synthcli`` (``~/.local/state/synthcli``): history
    and journals are state, not configuration nor cache."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "synthcli"


class Journal:
    """The journal of this session. The file and the pointer to it are
    written only with the first change, so opening the REPL and leaving
    never hides the last session that had something to resume."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / f"journal-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"
        self._file = None

    def write(self, entry: dict) -> None:
        try:
            if self._file is None:
                self._file = open(self.path, "a", encoding="utf-8")
                self._point_here()
                self._prune()
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            raise SynthError(f"cannot write the journal {self.path}: {error.strerror}; nothing was changed") from None

    def _point_here(self) -> None:
        pointer = self.directory / POINTER
        partial = pointer.with_suffix(".new")
        partial.write_text(self.path.name + "\n", encoding="utf-8")
        os.replace(partial, pointer)

    def _prune(self) -> None:
        journals = sorted(self.directory.glob("journal-*.jsonl"), key=lambda p: p.stat().st_mtime)
        for old in journals[:-KEEP]:
            if old != self.path:
                old.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def latest(directory: Path) -> Path:
    """The journal of the last session that changed anything."""
    try:
        name = (directory / POINTER).read_text(encoding="utf-8").strip()
    except OSError:
        raise SynthError(f"nothing to resume: no journal in {directory}") from None
    path = directory / name
    if not path.is_file():
        raise SynthError(f"nothing to resume: the latest journal {path} is gone")
    return path


def read(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SynthError(f"cannot read the journal {path}: {error}") from None
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
