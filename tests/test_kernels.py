"""The built-in kernels compiled ahead of time (at install) against the same
kernels compiled by numba just in time: the same bits, and no numba at all
in a process that has the compiled ones. Each mode runs in a process of its
own, as a process chooses once (SYNTHCLI_KERNELS)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import synthcli.modules  # noqa: F401  (defines the kernels)
from synthcli.engine import jit
from synthcli.patch import Patch

ROOT = Path(__file__).parent.parent

#: Every built-in module, each kernel down several of its paths: every
#: waveform, filter mode and curve, 1 and several channels, notes, drums,
#: modulated cutoffs and delay times, feedback.
EVERY_MODULE = """
add keys kb voices=5
add vco a wave=saw
add vco b wave=pulse pw=0.3
add vco c wave=triangle freq=330
add vco d wave=square freq=97
add vco e wave=sine freq=440 fmdepth=2
add lfo l1 freq=3 amp=900 offset=1200
add lfo l2 freq=5 wave=random amp=0.2
add lfo l3 freq=2 wave=triangle
add lfo l4 freq=7 wave=saw amp=0.01 offset=0.3
add lfo l5 freq=1 wave=square
add noise n color=pink level=0.3
add noise w level=0.2 seed=7
add ladder f cutoff=800 res=0.7 drive=0.4
add ladder g cutoff=2000
add vcf h mode=bandpass res=0.5
add vcf i mode=highpass cutoff=300
add vcf j mode=notch
add vcf k
add adsr env attack=0.02 decay=0.05 sustain=0.5 release=0.1 curve=exp
add adsr env2
add vca amp
add mix m level2=0.5
add pan p pan=-0.4
add delay dl time=0.01 feedback=0.5
add reverb r size=0.8
add drums dr voices=3
connect kb.voct a.voct
connect kb.voct b.voct
connect kb.gate env.gate
connect l4 b.pw
connect c e.fm
connect a f
connect l1 f.cutoff
connect b g
connect n h
connect l1 h.cutoff
connect w i
connect d j
connect e k
connect f amp
connect env amp.gain
connect l2 amp.gain
connect amp m.in1
connect g m.in2
connect h m.in3
connect i m.in4
connect j p
connect k dl
connect l3 dl.time
connect dl dl
connect m r
connect r.left out.left
connect p.right out.right
connect dr out
connect env2 out.in
connect l5 out.in
add arp ar rate=12 octaves=2 mode=updown
add supersaw ss detune=0.4
add fm fmo ratio=2 index=3 feedback=0.2
add pluck pk decay=0.5
add sampler sp file=songs/samples/break.flac mode=gate
add eq q low=6 mid=-4 high=3
add drive dv drive=0.7 shape=fold
add flanger fl feedback=0.5
add phaser ph stages=6 feedback=0.4
add comp cp threshold=-30 detect=rms lookahead=0.003
add pingpong pp time=0.05 feedback=0.4
add chorus ch
add slew sl rise=0.05 fall=0.02 curve=exp
add quant qu scale=minor
add sh s
connect kb.voct ar.voct
connect kb.gate ar.gate
connect ar.voct ss.voct
connect ar.voct fmo.voct
connect kb.voct pk.voct
connect kb.gate pk.gate
connect kb.gate sp.gate
connect ss q
connect q dv
connect dv fl
connect fl ph
connect ph cp
connect cp out
connect fmo pp
connect pp.left out.left
connect pk ch
connect ch.right out.right
connect sp out
connect l2 sl
connect sl qu
connect qu s
connect l5 s.trig
connect s fmo.index
"""

RENDER = """
import hashlib, sys
import numpy as np
from synthcli.api import NoteOff, NoteOn
import synthcli.modules  # noqa: F401  (defines the kernels)
from synthcli.engine import jit
from synthcli.engine.core import Engine
from synthcli.patch import Patch
from synthcli.plugins import load_registry
registry = load_registry(safe_mode=True)
patch = Patch(registry)
patch.load_text(sys.stdin.read())
with Engine(registry, 48000, 256) as engine:
    engine.load(patch)
    for k, note in enumerate((48, 52, 55, 59, 62, 64)):
        engine.send("kb", 3000 * k, NoteOn(note, 0.8))
        engine.send("kb", 3000 * k + 9000, NoteOff(note))
        engine.send("dr", 4000 * k + 17, NoteOn((36, 38, 42, 46, 39, 49)[k], 1.0))
    data = np.concatenate([engine.process_block().copy() for _ in range(200)], axis=1)
assert np.abs(data).max() > 0.01
print(jit.mode(), "numba" in sys.modules, hashlib.sha256(data.tobytes()).hexdigest())
"""


def render_in(mode: str, patch: str = EVERY_MODULE) -> list[str]:
    done = subprocess.run([sys.executable, "-c", RENDER], input=patch, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "SYNTHCLI_KERNELS": mode}, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_compiled_kernels_render_the_same_bits_as_numba_and_never_import_it(registry):
    patch = Patch(registry)
    patch.load_text(EVERY_MODULE)
    played = {inst.type.name for inst in patch.modules.values()}
    assert played == {entry.name for entry in registry.qualified.values()} - {"midiout"}   # it has no kernel
    aot_mode, aot_numba, aot_digest = render_in("aot")
    jit_mode, jit_numba, jit_digest = render_in("jit")
    assert (aot_mode, aot_numba) == ("aot", "False")
    assert (jit_mode, jit_numba) == ("jit", "True")
    assert aot_digest == jit_digest


def test_the_default_uses_the_compiled_kernels():
    assert render_in("auto")[:2] == ["aot", "False"]


def test_a_library_built_from_other_sources_is_not_used(monkeypatch):
    monkeypatch.setattr(jit, "build_digest", lambda: 12345)
    library, reason = jit._library()
    assert library is None and "changed since they were compiled" in reason


def test_an_unknown_kernels_mode_is_one_line_and_status_2(tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text("add vco a\nconnect a out\n")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(patch), "-o", str(tmp_path / "x.wav"),
                           "-q"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "SYNTHCLI_KERNELS": "fast"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "SYNTHCLI_KERNELS='fast' is not one of auto, aot, jit" in done.stderr


@pytest.mark.parametrize("kernel", [k for k in jit._kernels if k.exported], ids=lambda k: k.symbol)
def test_every_kernel_the_modules_call_is_compiled(kernel):
    import importlib
    library = importlib.import_module(jit.library_of(kernel))
    assert hasattr(library, kernel.symbol)
