"""Builds the one compiled part of synthcli: its DSP kernels, compiled ahead
of time by numba (synthcli/engine/aot.py), so that no process of synthcli
needs to import numba or compile anything. Everything else about the
package is declared in pyproject.toml.

If the kernels cannot be compiled here (no C compiler, say), the install
goes on without them and synthcli compiles them just in time, as numba
does, at the cost of about half a second at every start."""
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthcli.engine.jit import LIBRARIES  # noqa: E402  (light: it imports no numba)


class BuildKernels(build_ext):
    def build_extensions(self) -> None:
        """All at once: synthcli.engine.aot compiles them side by side."""
        try:
            from synthcli.engine.aot import build
            build({ext.name: self.get_ext_fullpath(ext.name) for ext in self.extensions})
        except Exception as error:  # the JIT still works: never fail the install for this
            print(f"synthcli: kernels not compiled ahead of time ({type(error).__name__}: {error}); "
                  "they will be compiled at first use", file=sys.stderr)


setup(ext_modules=[Extension(name, sources=[]) for name in LIBRARIES], cmdclass={"build_ext": BuildKernels})
