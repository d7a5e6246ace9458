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

import os
import sys
import zlib
from pathlib import Path
from typing import Any, NamedTuple

from .cache import cache_folder, read_json, write_json

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
    cached = read_json(path)
    try:
        if cached.get("installed") == key:
            return [EntryPoint(*entry) for entry in cached["entry_points"]]
    except (KeyError, TypeError):
        pass    # another synthcli's: scan
    found = scan(group)
    if write_json(path, {"installed": key, "entry_points": found}):
        prune(path.parent, group)
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


def cache_path(group: str) -> Path:
    """One file per group and environment (interpreter and sys.path), so
    two environments of one user do not overwrite each other's."""
    environment = zlib.crc32("\0".join([sys.executable, *sys.path]).encode())
    return cache_folder() / f"entry-points-{group}-{environment:08x}.json"
