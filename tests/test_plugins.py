"""Plugins end to end, as a user meets them: the example packages in
plugins/ built and installed with pip into a fresh virtual environment (no
network), then used through the `synth` command; their own test suites;
disabled; broken on purpose; uninstalled."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synthcli.api import API_VERSION, Module, Port
from synthcli.errors import SynthError
from synthcli.plugins import Registry, api_mismatch
from synthcli.testing import peak_frequency

ROOT = Path(__file__).parent.parent
EXAMPLES = ("synthcli-chiptune", "synthcli-strings")
SONG = "songs/chiptune.seq"
DISABLED = ("this song needs synthcli-chiptune>=0.1, which is installed but disabled "
            "(--safe-mode or SYNTHCLI_DISABLE_PLUGINS)")
#: The one line a song gets when the plugin it requires is not installed.
MISSING = re.compile(r"error: songs/chiptune\.seq:\d+:\d+: this song needs synthcli-chiptune>=0\.1: "
                     r"pip install \S*plugins/synthcli-chiptune\n")   # the source tree's folder


def offline_build_problem() -> str | None:
    """Why pip cannot build the example plugins here without the network,
    or None: --no-build-isolation uses this environment's setuptools, which
    reads their SPDX ``license = "MIT"`` from 77 (the test extra asks for
    it; a venv of Python 3.11 comes with 65)."""
    try:
        import setuptools
        from packaging.version import Version
    except ImportError:
        return "setuptools is not installed"
    if Version(setuptools.__version__) < Version("77"):
        return f"setuptools {setuptools.__version__} cannot read an SPDX license: pip install 'setuptools>=77'"
    return None


class Env:
    """A virtual environment that sees this one's packages (synthcli,
    numpy, numba, pip, setuptools) and installs into its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)],
                       check=True)
        self.python = path / "bin" / "python"
        # synthcli is installed in the outer environment, whose `synth`
        # script runs the outer python; this one is what pip writes for a
        # console script, run by the environment's own python.
        self.synth_script = path / "bin" / "synth"
        self.synth_script.write_text(f"#!{self.python}\nimport sys\nfrom synthcli.cli import main\n"
                                     f"if __name__ == '__main__':\n    sys.exit(main())\n")
        self.synth_script.chmod(0o755)
        self.env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
        self.sources: dict[str, Path] = {}

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(self.python), "-m", "pip", "--disable-pip-version-check", *args],
                              capture_output=True, text=True, env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def install(self, *sources: Path) -> None:
        self.pip("install", "--no-deps", "--no-build-isolation", "--no-index", *map(str, sources))

    def synth(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.synth_script), *args], capture_output=True, text=True, cwd=ROOT,
                              env={**self.env, **env}, timeout=300)


def copy_source(src: Path, dest: Path) -> Path:
    """Build from a copy: pip builds in the source tree, and the repository
    must not collect build/ and *.egg-info from a test run."""
    return Path(shutil.copytree(src, dest, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    problem = offline_build_problem()
    if problem:
        pytest.skip(f"cannot build plugin packages offline: {problem}")
    root = tmp_path_factory.mktemp("plugins")
    env = Env(root / "venv")
    env.sources = {name: copy_source(ROOT / "plugins" / name, root / name) for name in EXAMPLES}
    env.install(*env.sources.values())
    return env


def plugin_package(root: Path, dist: str, code: str) -> Path:
    """A minimal plugin distribution ``dist`` whose module holds ``code``."""
    package = dist.replace("-", "_")
    path = root / dist
    (path / package).mkdir(parents=True)
    (path / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.1.0"

        [project.entry-points.synthcli]
        {package} = "{package}"

        [tool.setuptools]
        packages = ["{package}"]
        """))
    (path / package / "__init__.py").write_text(textwrap.dedent(code))
    return path


MODULE = """
    import numpy as np
    from synthcli.api import Module, Param, Port
    from synthcli.hookspecs import hookimpl


    class Good(Module):
        type_name = "{name}"
        outputs = (Port("out"),)
        params = (Param("level", 0.5),)

        def process(self, inputs, params, outputs):
            np.copyto(outputs["out"], params["level"])
    """

BROKEN = {
    "synthcli-noimport": ("import synthcli_no_such_dependency\n",
                          "synthcli-noimport: plugin failed to load: ModuleNotFoundError: "
                          "No module named 'synthcli_no_such_dependency'"),
    "synthcli-exits": ("import sys\nsys.exit(3)\n",
                       "synthcli-exits: plugin failed to load: SystemExit: 3"),
    "synthcli-badport": (MODULE.format(name="good") + """
    class BadPort(Good):
        type_name = "badport"
        inputs = (Port("in put"),)


    @hookimpl
    def register_modules(register):
        register(BadPort)
        register(Good)
    """, "synthcli-badport: skipped module 'BadPort': input name 'in put' is not an identifier"),
    "synthcli-clash": (MODULE.format(name="vco") + """
    @hookimpl
    def register_modules(register):
        register(Good)
    """, "synthcli-clash: module type 'vco' is also provided by synthcli; use 'synthcli-clash:vco' for this one"),
    "synthcli-future": (MODULE.format(name="future") + """
    SYNTHCLI_API = "2.0"


    @hookimpl
    def register_modules(register):
        register(Good)
    """, "synthcli-future: needs module API 2.0, this synthcli provides 1.5; skipped "
         "(upgrade synthcli or use an older synthcli-future)"),
    "synthcli-nohook": (MODULE.format(name="nohook") + """
    def register_modules(register):  # the @hookimpl is missing
        register(Good)
    """, "synthcli-nohook: provides no register_modules hook (is it decorated with synthcli.hookspecs.hookimpl?)"),
    "synthcli-crash": ("""
    from synthcli.hookspecs import hookimpl


    @hookimpl
    def register_modules(register):
        raise RuntimeError("boom")
    """, "synthcli-crash: register_modules failed: RuntimeError: boom"),
    "synthcli-halfway": (MODULE.format(name="halfway") + """
    @hookimpl
    def register_modules(register):   # what it registered before it failed is not used
        register(Good)
        raise RuntimeError("late")
    """, "synthcli-halfway: register_modules failed: RuntimeError: late"),
    "synthcli-returns": (MODULE.format(name="returns") + """
    @hookimpl
    def register_modules():
        return [Good]
    """, "synthcli-returns: register_modules returned [<class 'synthcli_returns.Good'>] instead of calling "
         "register(cls) for each module type: declare it `def register_modules(register)`"),
    "synthcli-baddefault": (MODULE.format(name="baddefault") + """
    class BadDefault(Good):
        inputs = (Port("in", default="one"),)


    @hookimpl
    def register_modules(register):
        register(BadDefault)
    """, "synthcli-baddefault: skipped module 'BadDefault': input 'in': default='one' is not a finite number"),
    "synthcli-factory": (MODULE.format(name="factory") + """
    def make():
        class Made(Good):
            pass
        return Made


    @hookimpl
    def register_modules(register):
        register(make())
    """, "synthcli-factory: module type 'factory' cannot run in a worker process: its class 'make.<locals>.Made' "
         "is not importable by name (define it at the top level of a module); --executor processes leaves it "
         "silent, and auto runs it in synthcli's own process, unguarded"),
}


def test_a_type_whose_declaration_was_skipped_says_why_when_it_is_added():
    """The start-up warning had long scrolled away when `add badport b`
    said only "unknown module type 'badport'"."""
    class BadPort(Module):
        type_name = "badport"
        inputs = (Port("in put"),)
        outputs = (Port("out"),)

        def process(self, inputs, params, outputs):
            outputs["out"][...] = 0.0

    registry = Registry()
    assert registry.add(BadPort, "synthcli-badport", "0.1.0") is False
    why = "synthcli-badport: skipped module 'BadPort': input name 'in put' is not an identifier"
    assert registry.problems == [why]
    for name in ("badport", "synthcli-badport:badport"):
        with pytest.raises(SynthError) as caught:
            registry.get(name)
        assert str(caught.value) == f"unknown module type '{name}': {why}"
    with pytest.raises(SynthError) as caught:   # another package's type of that name was not skipped
        registry.get("synthcli-other:badport")
    assert str(caught.value) == "unknown module type 'synthcli-other:badport'"


@pytest.mark.parametrize("declared, line", [
    (None, None),
    ("1.0", None),
    ("1.5", None),          # a minor version only adds to the API
    ("1.2.7", None),
    (" 1 ", None),
    ("1.6", "synthcli-foo: needs module API 1.6, this synthcli provides 1.5; skipped "
            "(upgrade synthcli or use an older synthcli-foo)"),   # it may use what 1.5 lacks
    ("2.0", "synthcli-foo: needs module API 2.0, this synthcli provides 1.5; skipped "
            "(upgrade synthcli or use an older synthcli-foo)"),
    ("0.9", "synthcli-foo: needs module API 0.9, this synthcli provides 1.5; skipped "
            "(upgrade synthcli-foo or use an older synthcli)"),
    (1, "synthcli-foo: SYNTHCLI_API = 1 is not a version string such as '1.5'; skipped"),
    ("one", "synthcli-foo: SYNTHCLI_API = 'one' is not a version string such as '1.5'; skipped"),
])
def test_api_version_check(declared, line):
    assert API_VERSION == "1.5"  # the lines above name it
    plugin = type("plugin", (), {} if declared is None else {"SYNTHCLI_API": declared})
    assert api_mismatch(plugin, "synthcli-foo") == line


def test_synth_modules_lists_the_plugin_with_package_and_version(env):
    done = env.synth("modules")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    for name in ("chip", "bitcrusher"):
        assert any(line.startswith(f"{name}  (synthcli-chiptune 0.1.0)  ") for line in lines), name
    assert any(line.startswith("vco  (synthcli ") for line in lines)
    listed = {m["name"]: m for m in json.loads(env.synth("modules", "--json").stdout)}
    assert listed["chip"]["package"] == "synthcli-chiptune" and listed["chip"]["version"] == "0.1.0"
    assert listed["chip"]["qualified_name"] == "synthcli-chiptune:chip"


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_passes_its_own_tests_once_installed(env, name):
    """As its README says: install it, then run its tests from its folder."""
    done = subprocess.run([str(env.python), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
                          cwd=env.sources[name], capture_output=True, text=True, env=env.env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "skipped" not in done.stdout


def test_the_walkthrough_in_docs_plugins_md_builds_a_plugin_that_passes_its_tests(tmp_path):
    """A stranger copies docs/plugins.md's files: `synthcli-fold/PATH`:
    above a code block. Built and installed, the plugin passes its own
    tests, is listed, and plays the doc's fold.patch."""
    problem = offline_build_problem()
    if problem:
        pytest.skip(f"cannot build plugin packages offline: {problem}")
    doc = (ROOT / "docs" / "plugins.md").read_text()
    files = dict(re.findall(r"^`((?:synthcli-fold/)?[\w./-]+)`:\n\n```\w*\n(.*?)^```", doc, re.M | re.S))
    assert {"synthcli-fold/pyproject.toml", "synthcli-fold/src/synthcli_fold/__init__.py",
            "synthcli-fold/tests/test_fold.py", "fold.patch"} <= set(files), sorted(files)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    (tmp_path / "synthcli-fold" / "README.md").write_text("A wavefolder.\n")   # "any text will do"
    env = Env(tmp_path / "venv")
    env.install(tmp_path / "synthcli-fold")
    done = subprocess.run([str(env.python), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path / "synthcli-fold", capture_output=True, text=True, env=env.env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b5 passed\b", done.stdout), done.stdout
    assert re.search(r"^fold  \(synthcli-fold 0\.1\.0\)  Wavefolder", env.synth("modules").stdout, re.M)
    wav = tmp_path / "fold.wav"
    done = env.synth("render", str(tmp_path / "fold.patch"), "-o", str(wav), "-q")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    audio, rate = soundfile.read(str(wav))
    assert rate == 48000 and len(audio) == 4 * 48000 and 0.05 < np.abs(audio).max() <= 1.0


def test_the_strings_song_renders(env, tmp_path):
    out = tmp_path / "strings.wav"
    done = env.synth("render", "songs/strings.seq", "-o", str(out), "-q")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    audio, rate = soundfile.read(out)
    peak, rms = np.abs(audio).max(), np.sqrt(np.mean(audio ** 2))
    assert audio.shape[0] > 20 * rate and peak < 0.8 and 0.07 < rms < 0.25, (peak, rms)


def test_the_song_renders_and_plugin_modules_run_in_worker_processes(env, tmp_path):
    inline, processes = tmp_path / "inline.wav", tmp_path / "processes.wav"
    for out, executor in ((inline, "inline"), (processes, "processes")):
        done = env.synth("render", SONG, "-o", str(out), "-q", "--executor", executor, "--workers", "2")
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert inline.read_bytes() == processes.read_bytes()
    audio, rate = soundfile.read(inline)
    assert rate == 48000 and audio.shape[0] > 27 * rate
    peak, rms = np.abs(audio).max(), np.sqrt(np.mean(audio ** 2))
    assert peak < 0.8 and 0.08 < rms < 0.25, (peak, rms)
    # Where each module ran: plugin modules never in the engine's process (partition 0).
    where = subprocess.run([str(env.python), "-c", textwrap.dedent(f"""
        import json
        from synthcli.engine.core import Engine
        from synthcli.engine.render import Performance
        from synthcli.plugins import load_registry
        from synthcli.sequencer.song import Song
        registry = load_registry()
        song = Song(registry, open({SONG!r}).read(), {SONG!r})
        with Engine(registry, 48000, 256, executor="processes", workers=2) as engine:
            performance = Performance(engine, song, 32 * 256)
            for _ in range(32):
                performance.next_block()
            print(json.dumps(engine.module_stats()))
        """)], capture_output=True, text=True, cwd=ROOT, env=env.env, timeout=120)
    assert where.returncode == 0, where.stderr
    stats = json.loads(where.stdout)
    plugin = {name: s for name, s in stats.items() if s["type"].startswith("synthcli-chiptune:")}
    assert len(plugin) == 7
    assert all(s["partition"] > 0 and s["blocks"] > 0 for s in plugin.values()), plugin
    assert not any(s["faults"] for s in stats.values())


@pytest.mark.parametrize("how", ["--safe-mode", "synthcli-chiptune", "chiptune", "synthcli-other,chiptune", "Synthcli_Chiptune"])
def test_safe_mode_and_disabled_plugins_are_not_loaded(env, tmp_path, how):
    args, extra = (["--safe-mode"], {}) if how == "--safe-mode" else ([], {"SYNTHCLI_DISABLE_PLUGINS": how})
    listed = env.synth(*args, "modules", **extra)
    assert listed.returncode == 0 and listed.stderr == ""
    assert "chip  (" not in listed.stdout and "vco  (synthcli " in listed.stdout
    done = env.synth(*args, "render", SONG, "-o", str(tmp_path / "x.wav"), **extra)
    assert done.returncode == 2
    assert done.stderr == f"error: {SONG}:5:9: {DISABLED}\n"
    assert not (tmp_path / "x.wav").exists()
    bare = tmp_path / "bare.patch"   # no `require` line: the unknown type still says why
    bare.write_text("add chip c\nconnect c out\n")
    done = env.synth(*args, "check", bare, **extra)
    assert done.returncode == 2
    off = "synthcli-chiptune, synthcli-strings" if how == "--safe-mode" else "synthcli-chiptune"
    # 'chip' is two letters from the built-in 'comp': both are named, the plugin is not forgotten
    assert done.stderr == (f"error: {bare}:1:5: unknown module type 'chip', did you mean 'comp'? (or a type of a "
                           f"plugin installed but off, by --safe-mode or SYNTHCLI_DISABLE_PLUGINS: {off})\n")
    bare.write_text("add chiptunes c\nconnect c out\n")
    done = env.synth(*args, "check", bare, **extra)
    assert done.stderr == (f"error: {bare}:1:5: unknown module type 'chiptunes' (installed but off, by --safe-mode "
                           f"or SYNTHCLI_DISABLE_PLUGINS: {off})\n")


def test_broken_plugins_are_reported_in_one_line_and_skipped(env, tmp_path):
    sources = [plugin_package(tmp_path, dist, code) for dist, (code, _) in BROKEN.items()]
    env.install(*sources)
    try:
        done = env.synth("modules")
        assert done.returncode == 0
        assert sorted(done.stderr.splitlines()) == sorted(f"warning: {line}" for _, line in BROKEN.values())
        lines = done.stdout.splitlines()
        assert any(line.startswith("chip  (synthcli-chiptune 0.1.0)") for line in lines)
        assert any(line.startswith("vco  (synthcli 0.1.") for line in lines)
        assert any(line.startswith("synthcli-clash:vco  (synthcli-clash 0.1.0)") for line in lines)
        assert any(line.startswith("good  (synthcli-badport 0.1.0)") for line in lines)
        assert not any(line.startswith(("badport", "future", "halfway", "returns", "baddefault")) for line in lines)
        assert any(line.startswith("factory  (synthcli-factory 0.1.0)") for line in lines)
        # The plain name stays the built-in's; the qualified name reaches the plugin's.
        patch = tmp_path / "clash.patch"
        patch.write_text("add vco osc freq=440\nadd synthcli-clash:vco flat level=0.25\nadd mix m level1=0.5\n"
                         "connect osc m.in1\nconnect flat m.in2\nconnect m out\n")
        out = tmp_path / "clash.wav"
        done = env.synth("render", str(patch), "-o", str(out), "-q", "--duration", "0.5")
        assert done.returncode == 0, done.stderr
        assert len(done.stderr.splitlines()) == len(BROKEN)
        audio, _ = soundfile.read(out)
        assert abs(audio[2400:, 0].mean() - 0.25) < 0.02   # the plugin's module: a DC level
        assert audio[2400:, 0].std() > 0.1                  # the built-in's saw
    finally:
        env.pip("uninstall", "-y", *BROKEN)


FAULTY = """
    import ctypes

    import numpy as np
    from synthcli.api import Module, Port
    from synthcli.hookspecs import hookimpl


    class Wreck(Module):
        \"\"\"Only installed, never played: its setup crashes the interpreter.\"\"\"
        type_name = "wreck"
        outputs = (Port("out"),)

        def setup(self):
            ctypes.string_at(0)

        def process(self, inputs, params, outputs):
            outputs["out"][:] = 0.5


    class Spoil(Module):
        \"\"\"A DC level for 20 blocks, then it crashes the interpreter.\"\"\"
        type_name = "spoil"
        outputs = (Port("out"),)

        def setup(self):
            self.blocks = 0

        def process(self, inputs, params, outputs):
            self.blocks += 1
            if self.blocks > 20:
                ctypes.string_at(0)
            outputs["out"][:] = 0.25


    @hookimpl
    def register_modules(register):
        register(Wreck)
        register(Spoil)
    """
SPOILT = "add vco osc wave=sine freq=440\nconnect osc out.left\nadd spoil s\nconnect s out.right\n"


@pytest.fixture
def faulty_plugin(env, tmp_path):
    env.install(plugin_package(tmp_path, "synthcli-faulty", FAULTY))
    patch = tmp_path / "spoilt.patch"
    patch.write_text(SPOILT)
    yield patch
    env.pip("uninstall", "-y", "synthcli-faulty")


def test_a_failing_plugin_costs_its_own_voice_and_is_reported(env, faulty_plugin, tmp_path):
    """`synth render`'s default executor runs the plugin's module in a
    worker: an installed module whose setup segfaults, which every worker's
    warm-up meets, and one that segfaults as it plays, cost nothing else
    (inline, the second took the render with it)."""
    out = tmp_path / "spoilt.wav"
    done = env.synth("render", str(faulty_plugin), "-o", str(out), "-q", "--duration", "1")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"warning: module 's' \(spoil, from synthcli-faulty [\d.]+\) failed \d+ times, quarantined \(silent from then on\): "
                        r"crashed \(SIGSEGV\)\n", done.stderr), done.stderr
    audio, rate = soundfile.read(out)
    assert abs(peak_frequency(audio[:, 0], rate) - 440.0) < 2.0 and np.abs(audio[:, 0]).min() < 0.01
    assert np.abs(audio[rate // 2:, 0]).max() > 0.3        # the built-in voice plays to the end
    assert np.allclose(audio[4 * 256:20 * 256, 1], 0.25, atol=0.01) and not audio[rate // 2:, 1].any()


def test_synth_play_tells_of_a_module_that_fails(env, faulty_plugin, jack_server):
    done = env.synth("play", str(faulty_plugin), "--duration", "2", JACK_DEFAULT_SERVER=jack_server)
    assert done.returncode == 0, done.stderr
    told = [line for line in done.stderr.splitlines() if line.startswith("warning: module 's'")]
    assert told and re.match(r"warning: module 's' \(spoil, from synthcli-faulty [\d.]+\) failed \(crashed \(SIGSEGV\)\)",
                             told[0]), done.stderr
    assert done.stderr.splitlines()[-1].startswith("stopped: 2.00 s played")


def test_sigterm_while_a_plugin_loads_stops_synthcli(env, tmp_path):
    """A plugin's own sys.exit() is its failure, and synthcli goes on; a
    SIGTERM that comes while a slow plugin imports was taken for one."""
    import signal
    import time
    env.install(plugin_package(tmp_path, "synthcli-slow", "import time\ntime.sleep(60)\n"))
    try:
        proc = subprocess.Popen([str(env.synth_script), "modules"], cwd=ROOT, env=env.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert out == "" and err == ""
    finally:
        env.pip("uninstall", "-y", "synthcli-slow")


def test_uninstalled_plugin_is_one_clear_line(env, tmp_path):
    """Last in this file: it takes the plugin away."""
    env.pip("uninstall", "-y", "synthcli-chiptune")
    done = env.synth("render", SONG, "-o", str(tmp_path / "x.wav"))
    assert done.returncode == 2
    assert MISSING.fullmatch(done.stderr), done.stderr
    assert not (tmp_path / "x.wav").exists()
    listed = env.synth("modules")
    assert listed.returncode == 0 and listed.stderr == "" and "chip  (" not in listed.stdout
