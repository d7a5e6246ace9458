"""Try a module idea in one script, before it becomes a plugin package:
write the class, check it against the module contract, patch it between
built-ins and listen to the result.

    python examples/module_in_a_script.py [OUT.wav]

The class is the same one a plugin registers through its
``register_modules`` hook (docs/modules.md); here it is added to the
registry by hand, under a package name of your choosing. It still runs
the way an installed plugin does: in a worker process (the default
executor isolates plugin modules), restarted from its state if it
crashes, so a bug in it costs that module, not the render.
"""
import argparse

import numpy as np
import soundfile

from synthcli.api import AUDIO, Module, Param, Port
from synthcli.engine.core import Engine
from synthcli.engine.render import Performance, render_to_wav
from synthcli.patch import Patch
from synthcli.plugins import load_registry
from synthcli.testing import check_module, rms


class Fold(Module):
    """A wavefolder: what passes the threshold is reflected back, so a
    sine turns bright as the gain rises. Memoryless, so it keeps no state
    and numpy is fast enough (a module with a per-sample loop would use a
    numba kernel, as docs/modules.md shows)."""

    type_name = "fold"
    description = "Wavefolder: reflects what passes 1, for bright, hollow tones"
    inputs = (Port("in", AUDIO, "signal to fold"),)
    outputs = (Port("out", AUDIO, "folded signal"),)
    params = (Param("gain", 1.0, 0.0, 8.0, doc="drive into the folds; above 1 the signal folds"),)

    def process(self, inputs, params, outputs):
        x = inputs["in"] * params["gain"]
        # Reflect into [-1, 1]: a triangle function of x with period 4.
        outputs["out"][...] = np.abs((x - 1.0) % 4.0 - 2.0) - 1.0


PATCH = """
add vco osc wave=sine freq=110
add lfo sweep freq=0.5 amp=2 offset=3
add fold f
add vca amp level=0.5
connect osc f
connect sweep f.gain
connect f amp
connect amp out
"""


def main(out: str = "module_in_a_script.wav") -> None:
    check_module(Fold)   # the contract: ports, parameters, state, restore; raises naming what is wrong
    registry = load_registry()
    registry.add(Fold, "my-experiments", "0.1")
    patch = Patch(registry)
    patch.load_text(PATCH)
    seconds = 4.0
    # "auto", as `synth render` has it: a plugin's module runs in a worker process.
    with Engine(registry, samplerate=48000, blocksize=256, executor="auto") as engine:
        engine.load(patch)
        render_to_wav(Performance(engine, frames=int(seconds * 48000)), out, int(seconds * 48000))
        where = engine.module_stats()["f"]["partition"]
    audio, rate = soundfile.read(out)
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    bright = spectrum[int(1000 * len(audio) / rate):].sum() / spectrum.sum()
    print(f"wrote {out}: {len(audio) / rate:.2f} s at {20 * np.log10(rms(audio[:, 0])):.1f} dBFS RMS, "
          f"{100 * bright:.0f}% of the spectrum above 1 kHz (a plain 110 Hz sine: none); "
          f"'fold' ran in {'worker process ' + str(where) if where else 'the render process'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="module_in_a_script.wav", help="the WAV file to write")
    main(parser.parse_args().out)
