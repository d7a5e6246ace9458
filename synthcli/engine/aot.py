"""Compiling the built-in kernels ahead of time, when synthcli is installed.

``setup.py`` calls :func:`build`, which imports the module library with
numba, runs every built-in module once so each kernel is compiled for the
argument types the modules really pass, and compiles those same functions
into one extension module with numba's ahead-of-time compiler (pycc).
Each kernel keeps the options it has under the JIT (numpy's error model,
fast-math where it asks for it, the GIL released), so both ways compute
the same bits. A manifest beside the library names the sources and CPU it
was built for, as the digest one more exported function returns:
:mod:`synthcli.engine.jit` checks it before using the library. (The digest
travels inside the library because an editable install copies only the
library itself into the source tree.)

    python -m synthcli.engine.aot [DIRECTORY]     # rebuild by hand
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


def build(library_path: str | os.PathLike) -> None:
    """Write the compiled kernels to ``library_path`` (the extension
    module's full file name)."""
    os.environ["SYNTHCLI_KERNELS"] = "jit"
    warnings.simplefilter("ignore")   # pycc announces its pending deprecation
    from numba.core.cpu import CPUTargetOptions
    from numba.pycc import CC, compiler

    from . import jit

    called = signatures()
    jit._compile_all()
    options = {}
    target = Path(library_path)
    cc = CC(jit.LIBRARY.rsplit(".", 1)[-1])
    cc.output_dir = str(target.parent)
    cc.output_file = target.name
    cc.target_cpu = "host"
    for k in jit._kernels:
        if not k.exported:
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
    these types (``typeof`` of each argument); letting it find them, by
    compiling every kernel once before pycc compiles them again, took
    100 s of a fresh install's 135 s here. Kernels that only kernels call
    give no signature of their own: pycc compiles them into their callers."""
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


def library_file_name() -> str:
    """The extension module's file name on this Python (``_kernels.cpython-311-x86_64-linux-gnu.so``)."""
    import sysconfig
    from .jit import LIBRARY
    return LIBRARY.rsplit(".", 1)[-1] + sysconfig.get_config_var("EXT_SUFFIX")


if __name__ == "__main__":
    from .jit import PACKAGE
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE
    build(folder / library_file_name())
    print(f"wrote {folder / library_file_name()}")
