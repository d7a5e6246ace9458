"""Pictures and references: the generated docs never fall behind the code,
the patch graph shows every module and cable, --json is machine-readable."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthcli.engine.schedule import topological_order
from synthcli.graph import to_dot
from synthcli.language import COMMANDS
from synthcli.patch import Patch
from synthcli.reference import DOCS, as_text, command_reference, module_reference

ROOT = Path(__file__).parent.parent


def test_generated_references_are_up_to_date_and_complete(registry):
    commands, modules = (DOCS / "commands.md").read_text(), (DOCS / "module-reference.md").read_text()
    assert commands == command_reference(), "run `python -m synthcli.reference`"
    assert modules == module_reference(registry), "run `python -m synthcli.reference`"
    from synthcli.repl.commands import REPL_COMMANDS
    for name in [*COMMANDS, *REPL_COMMANDS]:
        assert f"### `{name}`" in commands
    for entry in registry.qualified.values():
        assert f"### `{entry.name}`" in modules
        for param in entry.cls.params:
            assert f"| `{param.name}` |" in modules


def test_the_graph_shows_every_module_and_cable(registry):
    patch = Patch(registry)
    patch.load_text((ROOT / "patches" / "pluck.patch").read_text())
    dot = to_dot(patch, "pluck", topological_order(patch)[1])
    for name in patch.modules:
        assert f'"{name}" [label=<' in dot
    for cable in patch.cables:
        assert f'"{cable.src}":out_{cable.src_port}:e -> "{cable.dst}":in_{cable.dst_port}:w' in dot
    assert len(re.findall(r" -> ", dot)) == len(patch.cables)


def test_feedback_cables_are_drawn_dashed(registry, tmp_path):
    (tmp_path / "loop.patch").write_text("add vco o\nadd delay d\nadd mix m\nconnect o m.in1\nconnect m d\n"
                                         "connect d m.in2\nconnect m out\n")
    patch = Patch(registry)
    patch.load_text((tmp_path / "loop.patch").read_text())
    dot = to_dot(patch, "loop", topological_order(patch)[1])
    assert dot.count("style=dashed") == 1 and '"m":out_out:e -> "d":in_in:w [style=dashed' in dot  # d was added first, so it runs first


def test_synth_graph_writes_dot_and_a_picture(tmp_path):
    out = tmp_path / "basic.svg"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "graph", "patches/basic.patch", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert (tmp_path / "basic.dot").exists()
    if shutil.which("dot") is None:
        assert done.returncode == 2 and "apt-get install graphviz" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert out.read_text().lstrip().startswith("<?xml") and "osc1" in out.read_text()


def test_synth_graph_never_writes_over_the_patch_it_draws(tmp_path):
    """The CLI audit: `synth graph fp.dot -o fp.svg` wrote the picture's
    .dot source over the patch file fp.dot, and said it had."""
    patch = tmp_path / "fp.dot"
    text = (ROOT / "patches" / "basic.patch").read_text()
    patch.write_text(text)
    for out in ("fp.svg", "fp.dot"):
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", "graph", str(patch), "-o", str(tmp_path / out)],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr == (f"error: -o {tmp_path / out}: that would write {patch}, which is "
                                                        f"{patch} itself: name the picture otherwise\n"), done.stderr
        assert patch.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["fp.dot"]


def test_the_song_languages_first_example_plays_every_line_it_shows(tmp_path, registry):
    """The docs audit typed it in: its second pattern on kb replaced the
    first, which never played, and its `at 13 set` was overridden by the
    pattern on the same parameter, which `check` warned of."""
    from synthcli.sequencer.song import Song
    text = re.search(r"```\n(tempo 120.*?)```", (ROOT / "docs" / "song-language.md").read_text(), re.S)[1]
    (tmp_path / "first.seq").write_text(text)
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(tmp_path / "first.seq")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and ": ok (" in done.stdout, done.stderr
    song = Song(registry, text)   # each top-level pattern plays from bar 1, each `at` at its bar
    lines = text.splitlines()
    assert sorted(v.place[0] for v in song.voices.values()) == [
        i + 1 for i, line in enumerate(lines) if line.startswith("pattern ")]
    assert sum(len(each) for each in song.timed.values()) == sum(line.startswith("at ") for line in lines)


@pytest.mark.parametrize("command, field", [(["check", "songs/demo.seq", "--json"], "bars"),
                                            (["modules", "--json"], None),
                                            (["devices", "--json"], "outputs"),
                                            (["bench", "--voices", "2", "--seconds", "0.2", "--json"], "recommended")])
def test_json_output_parses(command, field):
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data and (field is None or field in data)


def test_check_json_reports_errors_as_json(tmp_path):
    (tmp_path / "bad.patch").write_text("add vfc x\n")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(tmp_path / "bad.patch"), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert json.loads(done.stdout) == {"ok": False,
                                       "error": f"{tmp_path / 'bad.patch'}:1:5: unknown module type 'vfc', "
                                                f"did you mean 'vcf'?", "warnings": []}


def section(document: str, name: str) -> str:
    """One entry of a generated reference file, from its heading to the next."""
    start = document.index(f"### `{name}`\n")
    ends = [i for i in (document.find("\n### ", start), document.find("\n## ", start)) if i >= 0]
    return document[start:min(ends) if ends else len(document)]


@pytest.mark.parametrize("name, doc", [("connect", "commands.md"), ("scope", "commands.md"),
                                       ("vcf", "module-reference.md"), ("vco", "module-reference.md")])
def test_synth_help_and_the_repl_help_show_the_text_of_the_docs(registry, name, doc):
    from synthcli.repl.session import Session
    expected = section((DOCS / doc).read_text(), name)
    assert expected.startswith(f"### `{name}`") and len(expected.splitlines()) > 3
    picture = f"![{name}: rendered by `python -m synthcli.reference --pictures`](images/{name}.png)\n\n"
    if doc == "module-reference.md":   # Markdown a terminal cannot show: left out there
        assert picture in expected
        expected = expected.replace(picture, "")
    # ...and shown as plain text: no table syntax or code marks in a terminal.
    rows = [line.strip("|").split("|") for line in expected.splitlines() if line.startswith("| `")]
    expected = as_text(expected)
    assert "|" not in expected and "`" not in expected and "#" not in expected
    assert expected.startswith(f"{name}\n")
    for cells in rows:   # every table row is a line, its cells in aligned columns
        assert re.search(r"\s{2,}".join(re.escape(c.strip().strip("`")) for c in cells), expected), cells
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "help", name], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == expected + "\n"      # echo adds a newline
    assert Session(registry, sound=None).execute(f"help {name}") == expected.rstrip("\n")


def test_help_on_a_plugins_module_type_names_its_package(own_registry):
    """Two plugins' types of one name read alike but for their package,
    which `help PACKAGE:TYPE` did not say (the plugin audit)."""
    from synthcli.modules.filters import Ladder
    from synthcli.reference import topic

    class Lofi(Ladder):
        type_name = "lofcrush"

    own_registry.add(Lofi, "synthcli-lofi", "0.1")
    assert topic("synthcli-lofi:lofcrush", own_registry).startswith(
        "lofcrush\n\nFrom synthcli-lofi 0.1 (synthcli-lofi:lofcrush).\n\nMoog-style")
    assert topic("ladder", own_registry).startswith("ladder\n\nMoog-style")


def test_synth_help_on_a_repl_command_that_shares_a_synth_command_name_points_to_both():
    """`synth help render` is the REPL's render; `synth render` takes other arguments."""
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "help", "render"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("render\n")
    assert done.stdout.endswith("(That is the REPL's `render`; for the command line: synth render --help)\n")


def test_render_plot_draws_a_non_blank_picture_of_the_right_size(tmp_path):
    from matplotlib.image import imread
    png = tmp_path / "basic.png"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", "patches/basic.patch", "-o",
                           str(tmp_path / "basic.wav"), "--duration", "2", "--plot", str(png)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    image = imread(str(png))
    assert image.shape[:2] == (800, 1200)
    assert image[..., :3].std() > 0.05            # not one flat colour


def test_a_vector_plot_keeps_its_spectrogram_as_one_picture(tmp_path):
    """Drawn as vectors, the spectrogram's cells made a 30 s song's SVG
    644 MB; rasterized it is one embedded image, whatever the length."""
    svg = tmp_path / "basic.svg"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", "patches/basic.patch", "-o",
                           str(tmp_path / "basic.wav"), "--duration", "8", "--plot", str(svg)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = svg.read_text()
    assert text.count("<image") == 1 and svg.stat().st_size < 2_000_000


def test_every_oscillator_and_filter_has_its_picture_in_the_module_reference(registry):
    from matplotlib.image import imread
    from synthcli.pictures import PICTURES
    from synthcli.plugins import BUILTIN_PACKAGE
    modules = (DOCS / "module-reference.md").read_text()
    kinds = {entry.name for entry in registry.qualified.values() if entry.package == BUILTIN_PACKAGE
             and entry.cls.__module__.rsplit(".", 1)[-1] in ("oscillators", "filters")}
    assert kinds == set(PICTURES)                 # a new oscillator or filter needs a picture too
    for name in PICTURES:
        assert f"](images/{name}.png)" in section(modules, name)
        image = imread(str(DOCS / "images" / f"{name}.png"))
        assert image.shape[1] == 900 and image.shape[0] >= 300, image.shape
        assert image[..., :3].std() > 0.05        # not one flat colour
