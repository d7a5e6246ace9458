"""How the built-in DSP kernels run: compiled ahead of time, or just in time.

The built-in modules write their per-sample kernels as numba functions,
decorated with :func:`kernel` (called from Python, once per block) or
:func:`helper` (called only from other kernels). When synthcli is
installed, those kernels are compiled ahead of time into two extension
modules (see :data:`LIBRARIES`, built by :mod:`synthcli.engine.aot`). A
process that finds them, built from the very sources it runs, calls them
directly and never imports numba: numba's import, its registries and
loading its JIT cache took 0.4-0.7 s of every ``synth render`` here, more
than the DSP of a one-second song. Without the libraries (an install
without a compiler, a kernel edited since) the same functions are
compiled by numba at their first call, as they always were, and render
the same bits (``tests/test_kernels.py``).

``SYNTHCLI_KERNELS`` chooses: ``auto`` (the default: the libraries when
they match, else numba), ``aot`` (the libraries or a clear error) or ``jit``
(numba, for working on a kernel).

Third-party plugins use ``numba.njit`` as before; nothing here concerns them.
"""
from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

from ..errors import SynthError

#: numba options of every built-in kernel: the JIT cache; the GIL released,
#: so the threads executor runs kernels side by side; numpy's error model,
#: whose divisions need no Python zero check, which keeps LLVM vectorising.
OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

MODES = ("auto", "aot", "jit")
#: The extension modules the install builds, each in a process of its own
#: (see synthcli.engine.aot): the oscillators' kernels, about half of the
#: compiling (the vco's band-limited edges), and everyone else's. Each
#: has a function that returns the digest of the sources and CPU it was
#: built for.
LIBRARIES = ("synthcli._kernels", "synthcli._oscillator_kernels")
DIGEST = "build_digest"
PACKAGE = Path(__file__).resolve().parent.parent
#: Files whose text decides what the kernels compute: the modules that
#: define them and every module their constants come from.
SOURCES = ("api.py", "engine/jit.py", "engine/steps.py", "modules/*.py")

_BLAS = "scipy.linalg.cython_blas"


class Kernel:
    """A numba function before this process has chosen how to run it.

    Calling it makes the choice for every kernel at once (:func:`ready`)
    and puts the chosen callable in place of each proxy in the modules'
    globals, so later calls from Python go straight to compiled code and
    numba, compiling a caller, finds its callees as numba functions.
    """

    def __init__(self, py_func: Callable, options: dict[str, Any], exported: bool) -> None:
        self.py_func = py_func
        self.options = options
        self.exported = exported
        self.target: Callable | None = None
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__
        _kernels.append(self)

    @property
    def symbol(self) -> str:
        """Its name in the library: module and function, unique in synthcli."""
        return f"{self.py_func.__module__.rsplit('.', 1)[-1]}__{self.py_func.__name__}"

    def __call__(self, *args):
        ready()
        if self.target is None:        # a helper called from Python: only numba has it
            _compile_all()
        return self.target(*args)

    def __repr__(self) -> str:
        return f"<kernel {self.py_func.__module__}.{self.__name__}>"


_kernels: list[Kernel] = []
_mode: str | None = None


def _decorator(exported: bool):
    def decorate(func: Callable | None = None, **options):
        merged = {**OPTIONS, **options}
        if func is None:
            return lambda f: Kernel(f, merged, exported)
        return Kernel(func, merged, exported)
    return decorate


#: A kernel the engine calls from Python: compiled ahead of time when it can be.
kernel = _decorator(True)
#: A function only kernels call (inlined into them when compiled ahead of time).
helper = _decorator(False)


def mode() -> str:
    """'aot' or 'jit': how this process runs the kernels (choosing now if
    no kernel has run yet)."""
    ready()
    return _mode


def ready() -> None:
    """Choose, once per process, how the kernels run, before any runs."""
    global _mode
    if _mode is not None:
        return
    wanted = os.environ.get("SYNTHCLI_KERNELS", "auto").strip() or "auto"
    if wanted not in MODES:
        raise SynthError(f"SYNTHCLI_KERNELS={wanted!r} is not one of {', '.join(MODES)}")
    libraries, reason = (None, "SYNTHCLI_KERNELS=jit") if wanted == "jit" else _library()
    if libraries is None:
        if wanted == "aot":
            raise SynthError(f"SYNTHCLI_KERNELS=aot, but the compiled kernels cannot be used: {reason}")
        _compile_all()
        _mode = "jit"
        return
    for k in _kernels:
        if k.exported:
            k.target = getattr(libraries[library_of(k)], k.symbol)
    _install()
    _mode = "aot"


def library_of(k: Kernel) -> str:
    """The one of LIBRARIES that holds kernel ``k``."""
    return LIBRARIES[1] if k.py_func.__module__.endswith(".oscillators") else LIBRARIES[0]


def _library():
    """The compiled kernels' libraries by name, if all were built from
    these very sources for this kind of CPU, else None and why not."""
    import importlib
    try:
        libraries = {name: importlib.import_module(name) for name in LIBRARIES}
    except ImportError:
        return None, "they were not compiled at install (see docs/performance.md)"
    digest = build_digest()
    if any(getattr(library, DIGEST)() != digest for library in libraries.values()):
        return None, "the kernels' sources or the CPU changed since they were compiled (reinstall synthcli)"
    missing = [k.symbol for k in _kernels if k.exported and not hasattr(libraries[library_of(k)], k.symbol)]
    if missing:
        return None, f"they lack {', '.join(missing)} (reinstall synthcli)"
    return libraries, ""


def build_digest() -> int:
    """63 bits of checksums of every file in SOURCES and of the CPU. zlib's
    checksums, not hashlib's digests: this only notices change, it guards
    against no adversary, and importing hashlib costs 3 ms of every start."""
    crc = adler = 1
    for data in self_description():
        crc, adler = zlib.crc32(data, crc), zlib.adler32(data, adler)
    return (crc << 31) | (adler >> 1)


def self_description():
    """The CPU's fingerprint, then each source's path and text."""
    yield cpu_fingerprint().encode()
    for pattern in SOURCES:
        for path in sorted(PACKAGE.glob(pattern)):
            yield path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes()


def cpu_fingerprint() -> str:
    """The CPU's architecture and, on Linux, its feature flags: the library
    is compiled for the CPU that built it and may not run on another."""
    text = os.uname().machine if hasattr(os, "uname") else sys.platform
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
        text += " " + " ".join(sorted(flags.partition(":")[2].split()))
    except OSError:
        pass
    return text


def _compile_all() -> None:
    """Hand every kernel not yet compiled to numba (which compiles each at
    its first call, or loads it from its cache)."""
    from numba import njit
    _fill_registries()
    for k in _kernels:
        if k.target is None:
            k.target = njit(**k.options)(k.py_func)
    _install()


def _install() -> None:
    """Put each chosen callable where its proxy was, in every module that
    defines or imports a kernel."""
    scopes = {id(k.py_func.__globals__): k.py_func.__globals__ for k in _kernels}
    for scope in scopes.values():
        for name, value in list(scope.items()):
            if isinstance(value, Kernel) and value.target is not None:
                scope[name] = value.target


def _fill_registries() -> None:
    """numba's first compilation fills its registries of implementations.
    One of them, for numpy's functions, imports scipy.linalg only to learn
    whether BLAS is there for np.correlate and np.convolve: 0.17 s here, more
    than the DSP of a one-second patch. No kernel of ours uses those two,
    so the registries are filled with that import refused, and the two fall
    back to numba's plain loop. np.dot and np.linalg are not affected: they
    look for BLAS again when a plugin's kernel compiles them."""
    from numba.core.registry import cpu_target
    refuse = _BLAS not in sys.modules
    if refuse:
        sys.modules[_BLAS] = None   # None in sys.modules makes `import` raise ImportError
    try:
        cpu_target.target_context.refresh()
    finally:
        if refuse:
            del sys.modules[_BLAS]
