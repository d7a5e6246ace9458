"""Compiling the built-in kernels ahead of time, when synthcli is installed.

``setup.py`` calls :func:`build`, which imports the module library with
numba, runs every built-in module once (its kernels as plain Python) to
learn the argument types the modules really pass, and compiles those same
functions with numba's ahead-of-time compiler (pycc) into the extension
modules :data:`synthcli.engine.jit.LIBRARIES` names, one per process, side
by side: a fresh clone's kernels took 66 s to compile in one process, and
the install is most of a CI run's first minutes. Each kernel keeps the
options it has under the JIT (numpy's error model, fast-math where it asks
for it, the GIL released), so both ways compute the same bits. Each
library carries the digest of the sources and CPU it was built for, as
one more exported function: :mod:`synthcli.engine.jit` checks it before
using the libraries. (The digest travels inside the library because an
editable install copies only the library itself into the source tree.)

    python -m synthcli.engine.aot [DIRECTORY]     # rebuild by hand
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Mapping


def build(paths: Mapping[str, str | os.PathLike]) -> None:
    """Write each library of :data:`~synthcli.engine.jit.LIBRARIES` to its
    full file name in ``paths``: the first in this process, the others
    each in a forked child at the same time."""
    os.environ["SYNTHCLI_KERNELS"] = "jit"
    warnings.simplefilter("ignore")   # pycc announces its pending deprecation
    from . import jit

    called = signatures()
    jit._compile_all()
    first, *others = jit.LIBRARIES
    children = {}
    for name in others:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork() if hasattr(os, "fork") else None
        if pid is None:
            _compile(name, paths[name], called)
        elif pid == 0:   # the child: compile, and never back in the caller's code
            status = 1
            try:
                _compile(name, paths[name], called)
                status = 0
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        else:
            children[name] = pid
    try:
        _compile(first, paths[first], called)
    finally:
        failed = [name for name, pid in children.items() if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise RuntimeError(f"compiling {', '.join(failed)} failed (its traceback is above)")


def _compile(library: str, path: str | os.PathLike, called: dict) -> None:
    """Compile the kernels ``library`` holds for the types in ``called``."""
    from numba.core.cpu import CPUTargetOptions
    from numba.pycc import CC, compiler

    from . import jit

    options = {}
    target = Path(path)
    cc = CC(library.rsplit(".", 1)[-1])
    cc.output_dir = str(target.parent)
    cc.output_file = target.name
    cc.target_cpu = "host"
    for k in jit._kernels:
        if not k.exported or jit.library_of(k) != library:
            continue
        found = called.get(k, set())
        if len(found) != 1:
            raise RuntimeError(f"{k!r} was called with {len(found)} argument types "
                               f"({sorted(map(str, found))}); an exported kernel needs exactly one")
        cc.export(k.symbol, next(iter(found)))(k.py_func)
        options[k.py_func] = {key: value for key, value in k.options.items() if key != "cache"}
    stamp = jit.build_digest()
    cc.export(jit.DIGEST, "int64()")(eval(f"lambda: {stamp}"))

    # pycc compiles every export with one set of flags: give each its own
    # options, as numba's JIT would.
    plain = compiler.compile_extra

    def compile_extra(typingctx, targetctx, func, args, return_type, flags, *rest, **kw):
        flags = flags.copy()
        CPUTargetOptions.parse_as_flags(flags, options.get(func, {}))
        return plain(typingctx, targetctx, func, args, return_type, flags, *rest, **kw)

    compiler.compile_extra = compile_extra
    try:
        cc.compile()
    finally:
        compiler.compile_extra = plain


def signatures() -> dict:
    """The numba argument types each exported kernel is called with from
    Python, found by running every built-in module's Python code with its
    kernels as plain Python. numba's JIT compiles a function for exactly
    these types (``typeof`` of each argument); letting it find them
    compiled every kernel once more before pycc compiled it again. Kernels
    that only kernels call give no signature of their own: pycc compiles
    them into their callers."""
    from numba import typeof
    from numba.core.typing.typeof import Purpose

    import numpy as np

    from ..modules import FAMILIES
    from ..testing import render_module
    from . import jit
    from .steps import accumulate, all_finite, gather

    called: dict = {}
    depth = 0

    def stand_in(k):
        def call(*args):
            nonlocal depth
            if depth == 0:
                called.setdefault(k, set()).add(tuple(typeof(a, Purpose.argument) for a in args))
            depth += 1
            try:
                return k.py_func(*args)
            finally:
                depth -= 1
        return call

    scopes = {id(k.py_func.__globals__): k.py_func.__globals__ for k in jit._kernels}.values()
    placed = [(scope, name, value) for scope in scopes for name, value in scope.items() if isinstance(value, jit.Kernel)]
    for k in jit._kernels:
        k.target = stand_in(k)
    jit._mode = "jit"
    jit._install()
    try:
        with np.errstate(all="ignore"):   # as the kernels' numpy error model: no warnings, no raising
            all_finite(np.zeros((2, 64)))
            accumulate(np.zeros((2, 64)), np.zeros((1, 64)))
            gather(np.zeros((2, 64)), np.zeros((2, 64)), np.zeros((1, 64)), True)
            for family in FAMILIES:
                for cls in family.MODULES:
                    for channels in (1, 3):
                        render_module(cls, 2, channels=channels, blocksize=64)
    finally:
        for scope, name, value in placed:
            scope[name] = value
        for k in jit._kernels:
            k.target = None
    return called


def library_file_name(library: str) -> str:
    """An extension module's file name on this Python (``_kernels.cpython-311-x86_64-linux-gnu.so``)."""
    import sysconfig
    return library.rsplit(".", 1)[-1] + sysconfig.get_config_var("EXT_SUFFIX")


if __name__ == "__main__":
    from .jit import LIBRARIES, PACKAGE
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE
    build({name: folder / library_file_name(name) for name in LIBRARIES})
    for name in LIBRARIES:
        print(f"wrote {folder / library_file_name(name)}")
