"""synthcli's files in the user's cache (XDG): where they are, and how one
is read and written whole.

Several processes of one user (a render beside a live play, a test run's
many) read and write them at once, so a file is written beside itself and
renamed over the old one: a reader sees the old file or the new, never
half of one. A file that cannot be read is no file (the work it saves is
done again), and one that cannot be written, in a read-only home, costs
only that work next time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def cache_folder() -> Path:
    """synthcli's folder in the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthcli"


def read_json(path: Path) -> dict:
    """The dict a cache file holds; empty when there is none, it is
    unreadable or it holds something else (an older synthcli's list)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_json(path: Path, data: dict) -> bool:
    """Replace the cache file at ``path`` with ``data``; whether it could."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data, sort_keys=True))
        os.replace(partial, path)
    except OSError:
        return False
    return True


def source_stamp(origin: str | None) -> int:
    """The newest modification time of a plugin's code: its module's file,
    or every ``.py`` file and compiled extension of its package, since a
    change to any of them changes what importing or running it does. Keys
    the verdicts on plugins that crashed or hung (plugins.trial_import,
    processes._trial_key), so that a change gets a fresh trial: a rebuilt
    extension too, the most likely thing to have crashed (the plugin audit
    found its fix ignored)."""
    from importlib.machinery import EXTENSION_SUFFIXES
    if not origin:
        return 0
    if os.path.basename(origin) != "__init__.py":
        return os.stat(origin).st_mtime_ns
    code = (".py", *EXTENSION_SUFFIXES)
    newest = 0
    for folder, subfolders, files in os.walk(os.path.dirname(origin)):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        for name in files:
            if name.endswith(code):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    return newest
