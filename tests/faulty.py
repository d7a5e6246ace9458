"""A misbehaving module for the fault tests: a plain 1 kHz sine until block
``at``, then it fails the way ``mode`` says, in every block from then on. It is registered under a
third-party package name, so the engine hosts it in a worker process.

With ``once=1`` it fails only the first time in a test (a marker file named
by $SYNTHCLI_FAULT_MARKER remembers), so its replacement plays on; with
``once=0`` it keeps failing, which leads to quarantine; ``every`` spaces
those failures out.
"""
import ctypes
import math
import os
import sys
import time

import numba
import numpy as np

from synthcli.api import Module, Param, Port

MODES = ("ok", "raise", "nan", "hang", "exit", "segfault", "spin")


class Faulty(Module):
    type_name = "faulty"
    description = "A 1 kHz sine that fails on purpose"
    outputs = (Port("out", doc="sine, until it fails"),)
    params = (
        Param("mode", "ok", choices=MODES, doc="how it fails"),
        Param("at", 10, 0, 1e9, "blocks", integer=True, doc="the block at which it fails"),
        Param("once", 1, 0, 1, integer=True, doc="1: fail only once per test"),
        Param("every", 1, 1, 1e9, "blocks", integer=True, doc="fail in every Nth block from `at` on"),
    )
    state_fields = ("count",)

    def setup(self):
        self.count = np.zeros(1, dtype=np.int64)
        self.ramp = np.arange(self.blocksize)

    def process(self, inputs, params, outputs):
        block = int(self.count[0])
        self.count[0] += 1
        mode = MODES[int(params["mode"][0, 0])]
        out = outputs["out"]
        out[:] = 0.25 * np.sin(2 * math.pi * 1000.0 * (block * self.blocksize + self.ramp) / self.samplerate)
        at = int(params["at"][0, 0])
        if mode == "ok" or block < at or (block - at) % int(params["every"][0, 0]):
            return
        marker = os.environ.get("SYNTHCLI_FAULT_MARKER", "")
        if params["once"][0, 0] and marker:
            if os.path.exists(marker):
                return
            open(marker, "w").close()
        if mode == "raise":
            raise RuntimeError("faulty module raised on purpose")
        if mode == "nan":
            out[:, 7] = np.nan
        elif mode == "hang":
            while True:
                time.sleep(1)
        elif mode == "spin":   # hangs on a CPU: runnable all the time, unlike a sleeper
            while True:
                pass
        elif mode == "exit":
            os._exit(3)
        elif mode == "segfault":
            ctypes.string_at(0)


class Unready(Module):
    """A plugin whose setup() raises: it cannot even be built."""
    type_name = "unready"
    outputs = (Port("out"),)

    def setup(self):
        raise MemoryError("unready module's setup raised on purpose")

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Unbuilt(Module):
    """A plugin whose own __init__ raises before it calls the base class's."""
    type_name = "unbuilt"
    outputs = (Port("out"),)

    def __init__(self, samplerate, blocksize, channels, files=None):
        raise KeyError("unbuilt module's __init__ raised on purpose")

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Deaf(Module):
    """A note source whose on_event raises on every note."""
    type_name = "deaf"
    accepts_notes = True
    outputs = (Port("out"),)

    def on_event(self, offset, event):
        raise ValueError("deaf module's on_event raised on purpose")

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Forgetful(Module):
    """Names a state field that setup() never makes: it would fail only
    where a worker saves its state, so it must fail everywhere at once."""
    type_name = "forgetful"
    outputs = (Port("out"),)
    state_fields = ("memory",)

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


@numba.njit(cache=False)
def _mistyped(out, memory):
    for i in range(out.shape[1]):
        out[0, i] = memory.volume     # an array has no such attribute: numba refuses to compile it


class Mistyped(Module):
    """Its numba kernel cannot be typed: numba's error is fifteen lines in
    colour, which must reach the musician as one."""
    type_name = "mistyped"
    outputs = (Port("out"),)

    def setup(self):
        self.memory = np.zeros(1)

    def process(self, inputs, params, outputs):
        _mistyped(outputs["out"], self.memory)


class Rebinder(Module):
    """Writes into its output for REBINDS_AT blocks, then assigns it
    instead, a plain-numpy habit that would leave it silent with no word of
    why (or, with the check every sixteenth block, play its last written
    block over and over until then)."""
    type_name = "rebinder"
    outputs = (Port("out"),)

    def setup(self):
        self.blocks = 0

    def process(self, inputs, params, outputs):
        self.blocks += 1
        if self.blocks <= REBINDS_AT:
            outputs["out"][...] = 0.5
        else:
            outputs["out"] = np.full_like(outputs["out"], 0.5)


#: The block from which a Rebinder assigns its output.
REBINDS_AT = 5


class Returner(Module):
    """Returns its sound instead of writing it into its output, which the
    engine ignored in silence (the plugin audit)."""
    type_name = "returner"
    outputs = (Port("out"),)

    def process(self, inputs, params, outputs):
        return np.full_like(outputs["out"], 0.5)


class Quitter(Module):
    """Calls sys.exit() from process(): under --executor inline it ended
    the render with an empty WAV and no word; a worker exited "with status
    0", the exception unnamed."""
    type_name = "quitter"
    outputs = (Port("out"),)

    def process(self, inputs, params, outputs):
        sys.exit("quitter module's process called sys.exit on purpose")


class Uncountable(Module):
    """Its channel_count raises: a patch that holds it cannot be compiled."""
    type_name = "uncountable"
    outputs = (Port("out"),)

    @classmethod
    def channel_count(cls, params, inputs):
        raise KeyError("uncountable module's channel_count raised on purpose")

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Wrecker(Module):
    """A plugin whose setup() crashes the interpreter: only installed, it
    must not take down a process that warms every installed module up."""
    type_name = "wrecker"
    outputs = (Port("out"),)

    def setup(self):
        ctypes.string_at(0)

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Sleeper(Module):
    """A plugin whose setup() never returns."""
    type_name = "sleeper"
    outputs = (Port("out"),)

    def setup(self):
        while True:
            time.sleep(1)

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


class Warmer(Module):
    """A plugin that warms its data file ahead (Module.warm): it writes
    the pid it warmed in beside the file, and crashes the interpreter or
    never returns for a file whose name says so."""
    type_name = "warmer"
    outputs = (Port("out"),)
    params = (Param("file", "", file="data", doc="any file"),)

    @classmethod
    def warm(cls, files):
        path = files["file"]
        if path.endswith("crash"):
            ctypes.string_at(0)
        while path.endswith("hang"):
            time.sleep(1)
        with open(path + ".warmed", "w") as out:
            out.write(str(os.getpid()))

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.5


#: The source of an installed plugin (see test_entrypoints.fake_plugin)
#: whose module ``crash`` plays 0.1 for 100 blocks and then segfaults: in a
#: process of its own under the default executor, in the engine's own
#: under ``--executor inline``.
CRASHING_PLUGIN = """
import ctypes
import numpy as np
class Crash(Module):
    type_name = "crash"
    outputs = (Port("out"),)
    state_fields = ("blocks",)
    def setup(self):
        self.blocks = np.zeros(1)
    def process(self, inputs, params, outputs):
        self.blocks[0] += 1
        if self.blocks[0] > 100:
            ctypes.string_at(0)
        outputs["out"][:] = 0.1
@hookimpl
def register_modules(register):
    register(Crash)
"""


#: Slow, 0.17 s a block, for its first SLOW_BLOCKS blocks (4 s, more than
#: the hang test's SYNTHCLI_HANG_SECONDS of 3 before a render writes its
#: first 64 blocks), then it hangs.
SLOW_BLOCKS = 24
HANGING_PLUGIN = f"""
import time
class Hang(Module):
    type_name = "hang"
    outputs = (Port("out"),)
    def setup(self):
        self.blocks = 0
    def process(self, inputs, params, outputs):
        self.blocks += 1
        time.sleep(0.17 if self.blocks <= {SLOW_BLOCKS} else 100)
        outputs["out"][:] = 0.1
@hookimpl
def register_modules(register):
    register(Hang)
"""
