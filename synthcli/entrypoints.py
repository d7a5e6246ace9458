"""The installed plugins' entry points, remembered between runs.

importlib.metadata answers the question, but its own import (email,
zipfile, csv) and its scan of every installed distribution cost about
20 ms of every start of synth, a tenth of rendering a short song
(``python benchmarks/startup.py``). The answer changes only when a
distribution is installed, upgraded or removed, and each of those adds or
removes a ``*.dist-info`` folder or writes its ``entry_points.txt`` anew.
So the answer is kept in the user's cache with those folders, and that
file's modification time in each, for every folder on ``sys.path``: while
they are the same, so is the answer, and it costs a directory listing.
"""
from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any, NamedTuple

METADATA_SUFFIXES = (".dist-info", ".egg-info")

#: Cache files kept per group. Every interpreter and sys.path makes its own
#: (each venv, each PYTHONPATH a test sets), so without a bound they pile up;
#: an environment pushed out by this many newer ones scans once more, 20 ms.
KEEP = 16


class EntryPoint(NamedTuple):
    """One entry point of a group, with the distribution that declares it."""

    name: str
    module: str
    attr: str       # dotted attribute path inside the module, or ""
    dist: str
    version: str

    def load(self) -> Any:
        """Import the module and return the attribute it names, as
        ``importlib.metadata.EntryPoint.load`` does."""
        import importlib
        found = importlib.import_module(self.module)
        for part in filter(None, self.attr.split(".")):
            found = getattr(found, part)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """Every installed entry point of ``group``: from the cache while the
    installed distributions are the same, else from importlib.metadata."""
    key = installed_fingerprint()
    path = cache_path(group)
    try:
        cached = json.loads(path.read_text())
        if cached["installed"] == key:
            return [EntryPoint(*entry) for entry in cached["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass    # no cache yet, another environment's, or unreadable: scan
    found = scan(group)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"installed": key, "entry_points": found}))
        os.replace(partial, path)   # readers see the old file or the new, never half of one
        prune(path.parent, group)
    except OSError:
        pass    # a read-only home only costs the scan
    return found


def prune(folder: Path, group: str) -> None:
    """Keep the KEEP most recently written cache files of ``group``."""
    aged = []
    for entry in os.scandir(folder):
        if entry.name.startswith(f"entry-points-{group}-") and entry.name.endswith(".json"):
            try:
                aged.append((entry.stat().st_mtime_ns, entry.path))
            except OSError:
                pass    # removed by another process's prune meanwhile
    for _, stale in sorted(aged, reverse=True)[KEEP:]:
        try:
            os.unlink(stale)
        except OSError:
            pass


def scan(group: str) -> list[EntryPoint]:
    from importlib import metadata
    return [EntryPoint(ep.name, ep.module, ep.attr or "", ep.dist.name if ep.dist else ep.name,
                       ep.dist.version if ep.dist else "?")
            for ep in metadata.entry_points(group=group)]


def installed_fingerprint() -> list[list]:
    """Each metadata folder on sys.path and the modification time of its
    ``entry_points.txt`` (0 without one); a path entry that is a file (a
    zip) by its own time."""
    key: list[list] = []
    for folder in sys.path:
        try:
            listing = os.scandir(folder or ".")
        except NotADirectoryError:
            try:
                key.append([folder, os.stat(folder).st_mtime_ns])
            except OSError:
                pass
            continue
        except OSError:
            continue
        with listing:
            for entry in listing:
                if entry.name.endswith(METADATA_SUFFIXES):
                    try:
                        key.append([entry.path, os.stat(os.path.join(entry.path, "entry_points.txt")).st_mtime_ns])
                    except OSError:
                        key.append([entry.path, 0])
    return key


def cache_folder() -> Path:
    """synthcli's folder in the user's cache (XDG)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthcli"


def cache_path(group: str) -> Path:
    """One file per group and environment (interpreter and sys.path), so
    two environments of one user do not overwrite each other's."""
    environment = zlib.crc32("\0".join([sys.executable, *sys.path]).encode())
    return cache_folder() / f"entry-points-{group}-{environment:08x}.json"


def source_stamp(origin: str | None) -> int:
    """The newest modification time of a plugin's Python source: its
    module's file, or every ``.py`` file of its package, since an edit to
    any of them changes what importing or running it does. Keys the
    verdicts on plugins that crashed or hung (plugins.trial_import,
    processes._trial_key), so that an edit gets a fresh trial."""
    if not origin:
        return 0
    if os.path.basename(origin) != "__init__.py":
        return os.stat(origin).st_mtime_ns
    newest = 0
    for folder, subfolders, files in os.walk(os.path.dirname(origin)):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    return newest
