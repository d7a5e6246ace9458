"""numba made ready for the kernels, once per process, without scipy.linalg.

numba's first kernel call (even one loaded from the JIT cache) fills its
registries of implementations. One of them, for numpy's functions, imports
scipy.linalg only to learn whether BLAS is there for the inner loop of
np.correlate and np.convolve: 0.17 s of every `synth render` here, more
than the DSP of a one-second patch (benchmarks/startup.py). No kernel of
ours uses those two, so the registries are filled with that import refused,
and the two fall back to numba's plain loop. np.dot and np.linalg are not
affected: they look for BLAS again when a plugin's kernel compiles them.
"""
from __future__ import annotations

import sys

_BLAS = "scipy.linalg.cython_blas"
_ready = False


def ready() -> None:
    """Fill numba's registries now, the way described above, unless done."""
    global _ready
    if _ready:
        return
    _ready = True
    from numba.core.registry import cpu_target
    refuse = _BLAS not in sys.modules
    if refuse:
        sys.modules[_BLAS] = None   # None in sys.modules makes `import` raise ImportError
    try:
        cpu_target.target_context.refresh()
    finally:
        if refuse:
            del sys.modules[_BLAS]
