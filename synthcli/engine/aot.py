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

    from ..modules import FAMILIES
    from ..testing import render_module
    from . import jit
    from .steps import accumulate, all_finite, gather

    import numpy as np
    all_finite(np.zeros((2, 64)))
    accumulate(np.zeros((2, 64)), np.zeros((1, 64)))
    gather(np.zeros((2, 64)), np.zeros((2, 64)), np.zeros((1, 64)), True)
    for family in FAMILIES:
        for cls in family.MODULES:
            for channels in (1, 3):
                render_module(cls, 2, channels=channels, blocksize=64)

    exported = [k for k in jit._kernels if k.exported]
    options = {}
    target = Path(library_path)
    cc = CC(jit.LIBRARY.rsplit(".", 1)[-1])
    cc.output_dir = str(target.parent)
    cc.output_file = target.name
    cc.target_cpu = "host"
    for k in exported:
        signatures = k.target.signatures
        if len(signatures) != 1:
            raise RuntimeError(f"{k!r} was called with {len(signatures)} argument types "
                               f"({signatures}); an exported kernel needs exactly one")
        cc.export(k.symbol, signatures[0])(k.py_func)
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
