"""A plugin's bug outside process() (in setup, on_event, its state fields
or its channel count) is that module's fault: it is silenced, reported
and quarantined like a module whose process() raises, the same way in
every executor, and the rest of the patch plays on. Checked on the
rendered samples."""
import os
import re
import time

import numpy as np
import pytest
import soundfile

from synthcli.api import NoteOn
from synthcli.engine.core import Engine
from synthcli.engine.schedule import compile_patch
from synthcli.errors import SynthError
from synthcli.patch import Patch
from synthcli.plugins import load_registry
from synthcli.testing import peak_frequency

from faulty import REBINDS_AT, Deaf, Forgetful, Mistyped, Quitter, Rebinder, Returner, Uncountable, Unbuilt, Unready, Warmer
from test_entrypoints import install

SR, BLOCK, BLOCKS = 48000, 256, 60
HEALTHY = "add vco a wave=sine freq=300\nconnect a out.left\n"


@pytest.fixture
def registry():
    reg = load_registry(safe_mode=True)
    for cls in (Unready, Unbuilt, Deaf, Forgetful, Mistyped, Rebinder, Returner, Quitter, Uncountable):   # a third party's: hosted in a worker process
        reg.add(cls, "faulty-test-plugin", "0")
    return reg


def test_a_plugins_warm_runs_in_a_process_of_its_own_that_may_crash_or_hang(registry, tmp_path, monkeypatch):
    """Live play warms a patch's files before it builds the modules (see
    audio/engine_process.warm_files): a plugin's warm() in a process of
    its own, where a segfault or a hang cannot reach the engine."""
    from synthcli.audio import engine_process
    from synthcli.modules.sampler import padded_sound
    registry.add(Warmer, "faulty-test-plugin", "0")
    files = {name: tmp_path / name for name in ("data", "crash", "hang")}
    for path in files.values():
        path.write_text("x")
    sound = tmp_path / "a.wav"
    soundfile.write(str(sound), np.zeros(480), SR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(engine_process, "WARM_SECONDS", 1.0)
    patch = Patch(registry)
    patch.load_text("".join(f"add warmer {name} file={path}\n" for name, path in files.items())
                    + f"add sampler s file={sound}\n")
    began = time.monotonic()
    engine_process.warm_files([patch])
    assert time.monotonic() - began < 10                         # the hang was given its second, then stopped
    warmed = (tmp_path / "data.warmed").read_text()
    assert warmed.isdigit() and int(warmed) != os.getpid()       # in another process
    assert not (tmp_path / "crash.warmed").exists() and not (tmp_path / "hang.warmed").exists()
    assert isinstance(padded_sound(str(sound))[0].base, np.memmap)  # the built-in sampler's, here: its cache


def render(registry, kind, executor):
    patch = Patch(registry)
    patch.load_text(HEALTHY + f"add {kind} b\nconnect b out.right\n")
    with Engine(registry, SR, BLOCK, executor=executor, workers=1, deadline=0.3) as engine:
        engine.load(patch)
        blocks = []
        for block in range(BLOCKS):
            if block % 4 == 0:
                engine.send("b", engine.time + 17, NoteOn(60.0))
            blocks.append(engine.process_block().copy())
        # A worker's faults come back on a reply thread, so under load they
        # may land after the last of those blocks: play on until they have.
        waited = time.monotonic() + 10.0
        while not engine.module_stats()["b"]["quarantined"] and time.monotonic() < waited:
            engine.process_block()
        tail = np.concatenate([engine.process_block().copy() for _ in range(20)], axis=1)
        return np.concatenate(blocks, axis=1), tail, engine.module_stats()["b"]


@pytest.mark.parametrize("kind, reason", [
    ("unready", "MemoryError in setup(): unready module's setup raised on purpose"),
    ("unbuilt", "KeyError in __init__(): \"unbuilt module's __init__ raised on purpose\""),
    ("deaf", "ValueError in on_event(): deaf module's on_event raised on purpose"),
    ("forgetful", "TypeError in setup(): state field 'memory' is not a numpy array after setup()"),
])
def test_a_plugin_failing_outside_process_is_silenced_alone_in_every_executor(registry, kind, reason):
    outputs = []
    for executor in ("inline", "processes"):
        out, tail, stats = render(registry, kind, executor)
        left, right = out
        assert out.shape[1] == BLOCKS * BLOCK                                  # the music went on
        assert abs(peak_frequency(left[SR // 10:], SR) - 300.0) < 2.0          # the healthy voice plays
        assert np.abs(left[SR // 10:]).max() > 0.5
        assert np.abs(tail[0]).max() > 0.5
        assert np.abs(tail[1]).max() == 0.0                                     # the broken module is silent
        assert stats["quarantined"] and stats["reason"] == reason, (executor, stats)
        # One that cannot be built would fail in every block: it is
        # quarantined at its first, and reports still on their way from a
        # worker then are not counted, so every executor counts alike.
        assert stats["faults"] == (3 if kind == "deaf" else 1), (executor, stats)
        outputs.append(out)
    assert np.array_equal(outputs[0][0], outputs[1][0])
    # A module that cannot be built is silent from the start, wherever it runs. A
    # worker's report of a failed on_event reaches the engine a block or so
    # later than the inline executor's, so that quarantine may start a block apart.
    if kind != "deaf":
        assert np.array_equal(*outputs)


@pytest.mark.parametrize("kind, reason", [
    ("mistyped", r"TypingError in process\(\): Unknown attribute 'volume' of type array\(float64, 1d, C\) "
                 r"\(numba, compiling \S*faulty\.py line \d+\)"),
    ("rebinder", re.escape("process() assigned outputs['out'] instead of writing into it, so its sound "
                           "was lost (write outputs['out'][...] = ...)")),
    ("quitter", re.escape("SystemExit in process(): quitter module's process called sys.exit on purpose")),
    ("returner", re.escape("process() returned a value, which the engine ignores: write the sound into "
                           "outputs[NAME][...]")),
])
def test_a_mistake_in_process_is_reported_in_one_line_that_says_what_it_was(registry, kind, reason):
    """numba's error would be fifteen lines; the assigned output would be
    silence and nothing said at all."""
    for executor in ("inline", "processes"):
        out, tail, stats = render(registry, kind, executor)
        assert np.abs(out[0][SR // 10:]).max() > 0.5 and not tail[1].any()
        assert stats["quarantined"] and re.fullmatch(reason, stats["reason"]), (executor, stats)
        if kind == "rebinder":   # silent from the block it first assigned: not its last block played again
            assert (out[1][:REBINDS_AT * BLOCK] == 0.5).all() and not out[1][REBINDS_AT * BLOCK:].any()


def test_a_channel_count_that_raises_is_one_line_naming_the_module(registry):
    patch = Patch(registry)
    patch.load_text(HEALTHY + "add uncountable u\nconnect u out.right\n")
    with pytest.raises(SynthError) as caught:
        compile_patch(patch)
    assert str(caught.value) == ("module 'u' (uncountable) cannot say how many channels it has: "
                                 "KeyError: \"uncountable module's channel_count raised on purpose\"")


FINE_PLUGIN = """
from synthcli.hookspecs import hookimpl
from faulty import Faulty


@hookimpl
def register_modules(register):
    register(Faulty)
"""


def test_a_plugin_that_crashes_or_hangs_at_import_is_skipped_in_one_line(site, monkeypatch):
    """Imported in synthcli's own process, it took every synth command down
    with it. Each plugin is imported in a throwaway process first, once: the
    verdict holds until the plugin changes."""
    from synthcli import plugins
    monkeypatch.setattr(plugins, "IMPORT_TRIAL_SECONDS", 1.0)
    (site / "crashy.py").write_text("import ctypes\nctypes.string_at(0)\n")
    (site / "sleepy").mkdir()   # a package whose hang is in a module of its own
    (site / "sleepy" / "__init__.py").write_text("from . import dsp\n")
    (site / "sleepy" / "dsp.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")
    (site / "fine.py").write_text(FINE_PLUGIN)
    for name in ("crashy", "sleepy", "fine"):
        install(site, f"synthcli-{name}", "1.0", f"{name} = {name}", group="synthcli")
    forks = []
    fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or fork())
    expected = ["synthcli-crashy: plugin crashed (SIGSEGV) while being imported; skipped (tried again once it changes)",
                "synthcli-sleepy: plugin hung while being imported; skipped (tried again once it changes)"]
    registry = load_registry()
    assert registry.problems == expected and "faulty" in registry.types and len(forks) == 3
    assert load_registry().problems == expected and len(forks) == 3     # known now: nothing is tried again
    stat = (site / "crashy.py").stat()
    os.utime(site / "crashy.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_registry().problems == expected and len(forks) == 4
    stat = (site / "sleepy" / "dsp.py").stat()   # an edit to any file of the package is a change
    os.utime(site / "sleepy" / "dsp.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_registry().problems == expected and len(forks) == 5


@pytest.mark.parametrize("body, why", [
    ("import ctypes\n    ctypes.string_at(0)", "crashed (SIGSEGV)"),
    ("import os\n    os._exit(7)", "exited (status 7)"),
    ("import time\n    time.sleep(60)", "hung"),
])
def test_a_register_hook_that_crashes_exits_or_hangs_is_skipped_in_one_line(site, monkeypatch, body, why):
    """The hook runs in synthcli's own process: a crash, an exit or a
    hang there took every synth command down, in silence (the plugin
    audit). It is tried in the import's throwaway process first."""
    from synthcli import plugins
    monkeypatch.setattr(plugins, "IMPORT_TRIAL_SECONDS", 1.0)
    (site / "hooky.py").write_text(f"from synthcli.hookspecs import hookimpl\n\n\n@hookimpl\n"
                                   f"def register_modules(register):\n    {body}\n")
    (site / "fine.py").write_text(FINE_PLUGIN)
    for name in ("hooky", "fine"):
        install(site, f"synthcli-{name}", "1.0", f"{name} = {name}", group="synthcli")
    registry = load_registry()
    assert registry.problems == [f"synthcli-hooky: plugin {why} in register_modules; skipped "
                                 f"(tried again once it changes)"] and "faulty" in registry.types


def test_a_slow_import_and_a_slow_register_hook_each_have_the_whole_wait(site, monkeypatch):
    """The review: the hook's trial shared the import's 20 s, so a plugin
    slow at both, which loaded before, was skipped as hung."""
    from synthcli import plugins
    monkeypatch.setattr(plugins, "IMPORT_TRIAL_SECONDS", 1.0)
    (site / "slowboth.py").write_text("import time\nfrom synthcli.hookspecs import hookimpl\nfrom faulty import Faulty\n"
                                      "time.sleep(0.7)\n\n\n@hookimpl\ndef register_modules(register):\n"
                                      "    time.sleep(0.7)\n    register(Faulty)\n")
    install(site, "synthcli-slowboth", "1.0", "slowboth = slowboth", group="synthcli")
    registry = load_registry()
    assert registry.problems == [] and "faulty" in registry.types


def test_a_rebuilt_extension_of_a_plugin_gets_a_fresh_trial(tmp_path):
    """The verdict on a plugin that crashed is kept until its code
    changes; the plugin audit rebuilt the extension that had crashed
    (the likeliest culprit) and the old verdict stood, as the stamp read
    only .py files."""
    from importlib.machinery import EXTENSION_SUFFIXES
    from synthcli.cache import source_stamp
    package = tmp_path / "crashy"
    package.mkdir()
    (package / "__init__.py").write_text("from . import _native\n")
    native = package / f"_native{EXTENSION_SUFFIXES[0]}"
    native.write_bytes(b"built once")
    (package / "notes.txt").write_text("not code")
    for number, path in enumerate((package / "__init__.py", native, package / "notes.txt")):
        os.utime(path, ns=(10**18 + number, 10**18 + number))
    before = source_stamp(str(package / "__init__.py"))
    assert before == 10**18 + 1                           # the extension's time; a text file is not code
    os.utime(native, ns=(10**18 + 5, 10**18 + 5))        # rebuilt
    assert source_stamp(str(package / "__init__.py")) == 10**18 + 5
