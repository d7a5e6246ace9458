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


class BuildKernels(build_ext):
    def build_extension(self, ext: Extension) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        try:
            from synthcli.engine.aot import build
            build(self.get_ext_fullpath(ext.name))
        except Exception as error:  # the JIT still works: never fail the install for this
            print(f"synthcli: kernels not compiled ahead of time ({type(error).__name__}: {error}); "
                  "they will be compiled at first use", file=sys.stderr)


setup(ext_modules=[Extension("synthcli._kernels", sources=[])], cmdclass={"build_ext": BuildKernels})
