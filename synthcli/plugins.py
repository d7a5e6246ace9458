"""Finding module types: the built-in library and installed plugins, through
one pluggy hook.

A plugin that fails to import, was written for another major version of the
module API (``SYNTHCLI_API``) or registers a broken module is reported in one
line and skipped: it must never stop synthcli from starting. One that
crashes or hangs its importer would stop it all the same, so a plugin is
first imported in a throwaway process, once per installed version.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

import pluggy

from . import hookspecs
from .api import API_VERSION, MAX_CHANNELS, Module
from .errors import SynthError, Terminated, did_you_mean, exit_reason, one_line

#: Seconds a plugin's first import may take in its trial process before it
#: is taken for hung (numba compiling a plugin's kernels at import is slow).
IMPORT_TRIAL_SECONDS = 20.0

ENTRY_POINT_GROUP = "synthcli"
BUILTIN_PACKAGE = "synthcli"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: What a choice may be: one word of the command language (`set o.wave saw`).
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+#-]*\Z")


@dataclass(frozen=True)
class ModuleType:
    cls: type[Module]
    package: str
    version: str

    @property
    def name(self) -> str:
        return self.cls.type_name

    @property
    def qualified_name(self) -> str:
        return f"{self.package}:{self.cls.type_name}"


@dataclass
class Registry:
    """Every module type that can be added, by plain and qualified name."""

    types: dict[str, ModuleType] = field(default_factory=dict)
    qualified: dict[str, ModuleType] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)     # loaded plugin distributions -> version
    skipped: set[str] = field(default_factory=set)             # installed but disabled or safe mode
    broken: dict[str, str] = field(default_factory=dict)       # installed but would not load -> why
    refused: dict[str, str] = field(default_factory=dict)      # type name of a skipped declaration -> its line

    def unmet(self, requirement: str, what: str = "file") -> str | None:
        """Why ``requirement`` (``synthcli-foo>=1.2``) is not met, as the
        line to show a musician ("this song needs ..."), or None when it is."""
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
        need = Requirement(requirement)
        name = canonicalize_name(need.name)
        loaded = {canonicalize_name(dist): version for dist, version in self.packages.items()}
        if name in loaded:
            if need.specifier.contains(loaded[name], prereleases=True):
                return None
            return (f"this {what} needs {requirement}, but {need.name} {loaded[name]} is installed: "
                    f"pip install -U '{requirement}'")
        if name in {canonicalize_name(dist) for dist in self.skipped}:
            return (f"this {what} needs {requirement}, which is installed but disabled "
                    f"(--safe-mode or SYNTHCLI_DISABLE_PLUGINS)")
        broken = {canonicalize_name(dist): why for dist, why in self.broken.items()}
        if name in broken:
            return f"this {what} needs {requirement}, which is installed but did not load: {broken[name]}"
        from importlib.metadata import PackageNotFoundError, version
        try:
            found = version(need.name)
        except PackageNotFoundError:
            return f"this {what} needs {requirement}: pip install {_pip_source(need.name)}"
        return (f"this {what} needs {requirement}: {need.name} {found} is installed, but it is not a synthcli "
                f"plugin ('require' names packages of modules)")

    def get(self, name: str, prefer: Iterable[str] = ()) -> ModuleType:
        """The type called ``name``. A plain name that several plugins
        provide means the one from a package in ``prefer`` (those a file
        requires, pip's canonical names), else the first one loaded; a
        built-in's name is always the built-in."""
        found = self.types.get(name) or self.qualified.get(name)
        if found is not None and prefer and name in self.types and found.package != BUILTIN_PACKAGE:
            from packaging.utils import canonicalize_name
            prefer = set(prefer)
            if canonicalize_name(found.package) not in prefer:
                found = next((entry for entry in self.qualified.values() if entry.name == name
                              and canonicalize_name(entry.package) in prefer), found)
        package, _, plain = name.rpartition(":")
        why = self.refused.get(plain)
        if found is None and why is not None and (not package or why.startswith(f"{package}: ")):
            raise SynthError(f"unknown module type '{name}': {why}")   # warned of at start-up, long scrolled away
        if found is None:
            hint = did_you_mean(name, self.types)
            if self.skipped:   # it may be one of theirs, whatever it is near among ours
                off = ", ".join(sorted(self.skipped))
                hint += (f" ({'or a type of a plugin ' if hint else ''}installed but off, by --safe-mode or "
                         f"SYNTHCLI_DISABLE_PLUGINS: {off})")
            raise SynthError(f"unknown module type '{name}'{hint}")
        return found

    def __contains__(self, name: str) -> bool:
        return name in self.types or name in self.qualified

    def add(self, cls: type, package: str, version: str) -> bool:
        """Register a module class; False, with the reason among
        :attr:`problems`, when it was skipped."""
        try:
            problem = check_module_class(cls)
        except Exception as error:  # a declaration too broken to inspect (inputs = Port(...), say)
            problem = f"cannot read its declaration: {one_line(error)}"
        if problem:
            self.problems.append(f"{package}: skipped module {getattr(cls, '__name__', cls)!r}: {problem}")
            if isinstance(getattr(cls, "type_name", None), str):
                self.refused.setdefault(cls.type_name, self.problems[-1])
            return False
        entry = ModuleType(cls, package, version)
        if entry.qualified_name in self.qualified:
            self.problems.append(f"{package}: module type '{cls.type_name}' registered twice; kept the first")
            return False
        self.qualified[entry.qualified_name] = entry
        holder = self.types.get(cls.type_name)
        if holder is None:
            self.types[cls.type_name] = entry
        else:
            self.problems.append(
                f"{package}: module type '{cls.type_name}' is also provided by {holder.package}; "
                f"use '{entry.qualified_name}' for this one"
                + ("" if holder.package == BUILTIN_PACKAGE else f", or 'require {package}' in the file"))
        return True


def check_module_class(cls: type) -> str | None:
    """What is wrong with a module class, or None: a broken declaration is
    caught at load time, not when a musician first adds the module."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        return "not a subclass of synthcli.api.Module"
    if not isinstance(cls.type_name, str) or not _IDENTIFIER.match(cls.type_name):
        return f"type_name {cls.type_name!r} is not an identifier"
    if cls.process is Module.process:
        return "does not implement process()"
    # Shown by `synth modules` and `synth help`: one that is not text failed
    # there, with a traceback, and took the built-ins' listing with it.
    texts = [("description", cls.description)]
    texts += [(f"port '{getattr(port, 'name', port)}': doc", getattr(port, "doc", ""))
              for port in (*cls.inputs, *cls.outputs)]
    texts += [(f"param '{getattr(param, 'name', param)}': {what}", getattr(param, what, ""))
              for param in cls.params for what in ("doc", "unit")]
    odd = next(((what, text) for what, text in texts if not isinstance(text, str)), None)
    if odd is not None:
        return f"{odd[0]}={odd[1]!r} is not a string"
    names: set[str] = set()
    for kind, items in (("input", cls.inputs), ("param", cls.params)):
        for item in items:
            if not _IDENTIFIER.match(getattr(item, "name", "") or ""):
                return f"{kind} name {getattr(item, 'name', item)!r} is not an identifier"
            if item.name in names:
                return f"'{item.name}' is declared twice among inputs and params"
            names.add(item.name)
    outputs = [getattr(p, "name", "") for p in cls.outputs]
    if len(set(outputs)) != len(outputs) or not all(_IDENTIFIER.match(n or "") for n in outputs):
        return "output names must be distinct identifiers"
    for port in cls.inputs:
        if isinstance(port.default, (bool, str)) or not isinstance(port.default, (int, float)) \
                or not math.isfinite(port.default):
            return f"input '{port.name}': default={port.default!r} is not a finite number"
    for port in (*cls.inputs, *cls.outputs):
        if port.channels is not None and not (isinstance(port.channels, int) and 1 <= port.channels <= MAX_CHANNELS):
            return f"port '{port.name}': channels={port.channels!r} is not None or a whole number 1..{MAX_CHANNELS}"
    for param in cls.params:
        if param.file not in ("", "sound", "data"):
            return f"param '{param.name}': file={param.file!r} is not 'sound' or 'data'"
        if not param.choices and not param.min <= param.max:
            return f"param '{param.name}': min {param.min:g} is above max {param.max:g}"
        odd = [choice for choice in param.choices if not (isinstance(choice, str) and _WORD.match(choice))]
        if odd:
            return f"param '{param.name}': choice {odd[0]!r} is not one word (letters, digits, _ - + #)"
        try:
            param.coerce(param.default)
        except ValueError as error:
            return f"default of param '{param.name}': {error}"
    fields = cls.state_fields
    if not isinstance(fields, (tuple, list)) or not all(isinstance(f, str) for f in fields):
        return f"state_fields = {fields!r} is not a tuple of attribute names"
    return None


def unhostable(cls: type) -> str | None:
    """Why a worker process could not host a plugin's module class, or
    None: it travels there as a reference to its importable definition,
    which a class made inside a function does not have."""
    from .engine.partition import hostable
    if hostable(cls):
        return None
    return (f"module type '{cls.type_name}' cannot run in a worker process: its class "
            f"{cls.__qualname__!r} is not importable by name (define it at the top level of a module); "
            f"--executor processes leaves it silent, and auto runs it in synthcli's own process, unguarded")


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("synthcli")
    pm.add_hookspecs(hookspecs)
    return pm


def disabled_from_env() -> set[str]:
    raw = os.environ.get("SYNTHCLI_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _pip_source(name: str) -> str:
    """What to give pip for ``name``: the example plugins ship in synthcli's
    source tree (``plugins/``), not on PyPI."""
    from pathlib import Path
    from .errors import name_problem
    tree = Path(__file__).resolve().parent.parent / "plugins" / name
    if name_problem(name) is not None or not (tree / "pyproject.toml").is_file():
        return name
    try:
        return f"./{tree.relative_to(Path.cwd())}"
    except ValueError:
        return str(tree)


def load_registry(safe_mode: bool = False) -> Registry:
    """Build the registry: built-ins first (they keep their plain names),
    then installed plugins in a stable order (by distribution name)."""
    from . import __version__
    from . import modules as builtin
    from .entrypoints import entry_points

    registry = Registry()
    pm = _plugin_manager()
    pm.register(builtin, name=BUILTIN_PACKAGE)
    sources = {BUILTIN_PACKAGE: (BUILTIN_PACKAGE, __version__)}
    registry.packages[BUILTIN_PACKAGE] = __version__

    if safe_mode:
        registry.skipped.update(ep.dist for ep in entry_points(ENTRY_POINT_GROUP))
    else:
        skip = disabled_from_env()
        if skip:   # pip's names: synthcli_fold is synthcli-fold (packaging's import costs 17 ms: only then)
            from packaging.utils import canonicalize_name
            skip |= {canonicalize_name(name) for name in skip}
        for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda ep: (ep.dist, ep.name)):
            dist, version = ep.dist, ep.version
            if ep.name in skip or (skip and canonicalize_name(dist) in skip):
                registry.skipped.add(dist)
                continue
            # Known to pluggy by distribution and entry point: two packages
            # may both call their entry point "fold" (or "synthcli").
            key = f"{dist}:{ep.name}"
            unsafe = trial_import(ep)
            if unsafe is not None:
                registry.broken[dist] = f"it {unsafe}"
                registry.problems.append(f"{dist}: plugin {unsafe}; skipped (tried again once it changes)")
                continue
            try:
                plugin = ep.load()
                mismatch = api_mismatch(plugin, dist)
                if mismatch is None:
                    pm.register(plugin, name=key)
            except Terminated:   # SIGTERM while a plugin loads: it is us who must stop
                raise
            except pluggy.PluginValidationError:   # pluggy's words ("hookspec") are not the author's
                why = misnamed_arguments(plugin)
                registry.broken[dist] = why
                registry.problems.append(f"{dist}: {why}")
                continue
            except (Exception, SystemExit) as error:  # a broken plugin must not stop synthcli
                registry.broken[dist] = one_line(error)
                registry.problems.append(f"{dist}: plugin failed to load: {one_line(error)}")
                continue
            if mismatch is not None:
                registry.broken[dist] = mismatch.split(": ", 1)[1]
                registry.problems.append(mismatch)
                continue
            sources[key] = (dist, version)
            registry.packages[dist] = version

    # In the order of `sources` (built-ins, then by distribution), not in
    # pluggy's: it calls the last registered first, and a plugin's
    # tryfirst/trylast would move it; either would let a plugin take a
    # built-in's plain name.
    impls = {pm.get_name(impl.plugin): impl for impl in pm.hook.register_modules.get_hookimpls()}
    for name, (package, version) in sources.items():
        impl = impls.get(name)
        if impl is None:
            registry.packages.pop(package, None)
            registry.broken[package] = "it provides no register_modules hook"
            registry.problems.append(f"{package}: provides no register_modules hook "
                                     f"(is it decorated with synthcli.hookspecs.hookimpl?)")
            continue
        registered: list[type] = []   # added once the hook has returned: a hook that fails registers nothing
        try:
            returned = impl.function(*[{"register": registered.append}[arg] for arg in impl.argnames])
        except Terminated:
            raise
        except (Exception, SystemExit) as error:
            why = f"register_modules failed: {one_line(error)}"
        else:
            why = None if returned is None else (
                f"register_modules returned {repr(returned)[:60]} instead of calling register(cls) "
                f"for each module type: declare it `def register_modules(register)`")
        if why is not None:
            registry.packages.pop(package, None)
            registry.broken[package] = why
            registry.problems.append(f"{package}: {why}")
            continue
        for cls in registered:
            if registry.add(cls, package, version) and package != BUILTIN_PACKAGE:
                problem = unhostable(cls)   # still registered: inline, it plays
                if problem is not None:
                    registry.problems.append(f"{package}: {problem}")
    return registry


def misnamed_arguments(plugin: object) -> str:
    """Why pluggy refused a plugin's hook: it passes hook arguments by
    name, so ``register_modules(reg)`` cannot be called."""
    import inspect
    hook = getattr(plugin, "register_modules", None)
    try:
        shown = f"register_modules{inspect.signature(hook)}"
    except (TypeError, ValueError):
        shown = "register_modules"
    return f"{shown} cannot be called: its argument must be named 'register' (synthcli passes it by name)"


def trial_import(ep) -> str | None:
    """Why importing ``ep``'s module and calling its register_modules hook
    is not safe here ("crashed (SIGSEGV) while being imported", "hung in
    register_modules"), or None. Tried in a forked child the first time;
    the verdict is kept in the user's cache until the plugin's version or
    one of its package's files changes, so later starts only look it up.
    The hook is tried too: it runs in synthcli's own process, where a
    crash, an exit or a hang in it took every command down (the plugin
    audit)."""
    import importlib.util

    from .cache import cache_folder, read_json, source_stamp, write_json
    if not hasattr(os, "fork"):
        return None
    try:   # the package's own files, found without running any of it
        spec = importlib.util.find_spec(ep.module.partition(".")[0])
        origin = spec.origin if spec is not None else None
        stamp = source_stamp(origin)
    except (ImportError, ValueError, OSError):
        origin, stamp = None, 0
    key = f"{ep.dist}=={ep.version}:{ep.module}:{origin}:{stamp}"
    path = cache_folder() / "plugin-trials.json"
    verdicts = read_json(path)
    if key in verdicts:
        return verdicts[key]
    verdict = _try_in_a_child(ep)
    verdicts = {k: v for k, v in verdicts.items() if not k.startswith(f"{ep.dist}==")}   # older versions
    verdicts[key] = verdict
    write_json(path, verdicts)   # or, in a read-only home, tried again next time
    return verdict


def quiet_child(read_end: int) -> None:
    """In a forked trial child (an import here, a warm-up in the engine):
    its crash or hang is the parent's to report in one line, so nothing of
    it reaches the terminal, and Ctrl-C ends it."""
    import faulthandler
    import signal
    os.close(read_end)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    faulthandler.disable()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)


def _try_in_a_child(ep) -> str | None:
    import select
    import signal
    import time
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: quiet, and never back in the caller's code
        try:
            quiet_child(read_end)
            try:
                hook = getattr(ep.load(), "register_modules", None)
                os.write(write_end, b"i")
                if callable(hook):
                    hook(register=lambda cls: None)
            except BaseException:
                pass   # an exception is load_registry's to report, in one line
            os.write(write_end, b"k")
        finally:
            os._exit(0)
    os.close(write_end)
    said = b""
    try:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            deadline = time.monotonic() + IMPORT_TRIAL_SECONDS   # for the import, and again for the hook
            while not said.endswith(b"k") and select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
                got = pipe.read(1)
                if not got:
                    break
                said += got
                deadline = time.monotonic() + IMPORT_TRIAL_SECONDS
    finally:   # a SIGTERM meanwhile too: the child must not outlive us
        if not said.endswith(b"k"):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if said.endswith(b"k"):
        return None
    code = os.waitstatus_to_exitcode(status)
    what = "hung" if code == -signal.SIGKILL else exit_reason(code)
    return f"{what} in register_modules" if said else f"{what} while being imported"


def api_mismatch(plugin: object, dist: str) -> str | None:
    """Why a plugin written for another module API is skipped, or None.

    The entry point's object (the plugin's module) may declare the API it
    was written against, ``SYNTHCLI_API = "1.0"``, as in
    :data:`synthcli.api.API_VERSION`. The major version must match, and
    the minor be this synthcli's or older: a minor version adds to the API
    and breaks nothing, so a plugin for 1.2 runs on 1.4, but one for 1.4
    may use what 1.2 lacks (``Param(glide=...)`` raised TypeError as the
    plugin was imported). A plugin that declares none is taken to fit."""
    declared = getattr(plugin, "SYNTHCLI_API", None)
    if declared is None:
        return None
    found = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(\.\d+)*\s*", declared) if isinstance(declared, str) else None
    if found is None:
        return (f"{dist}: SYNTHCLI_API = {declared!r} is not a version string such as "
                f"'{API_VERSION}'; skipped")
    need = (int(found.group(1)), int(found.group(2) or 0))
    have = tuple(int(part) for part in API_VERSION.split(".")[:2])
    if need[0] == have[0] and need[1] <= have[1]:
        return None
    advice = (f"upgrade synthcli or use an older {dist}" if need > have
              else f"upgrade {dist} or use an older synthcli")
    return f"{dist}: needs module API {declared.strip()}, this synthcli provides {API_VERSION}; skipped ({advice})"
