"""The entry-point cache answers as importlib.metadata would, and forgets
its answer as soon as a distribution is installed, changed or removed."""
from __future__ import annotations

import os
import sys

import pytest

from synthcli import entrypoints

GROUP = "synthcli-test-group"


def install(site, dist: str, version: str, entries: str, group: str = GROUP) -> None:
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"   # as pip names it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entries}\n")


def refuse_scan(monkeypatch):
    def scan(group):
        raise AssertionError("scanned the distributions although nothing changed")
    monkeypatch.setattr(entrypoints, "scan", scan)


def test_the_cache_answers_what_importlib_metadata_answers(site, monkeypatch):
    install(site, "synthcli-alpha", "1.2", "alpha = json.decoder:JSONDecoder.decode [fast]")
    install(site, "synthcli-beta", "0.3", "beta = json")
    found = sorted(entrypoints.entry_points(GROUP))
    assert found == sorted(entrypoints.scan(GROUP)) == [
        ("alpha", "json.decoder", "JSONDecoder.decode", "synthcli-alpha", "1.2"),
        ("beta", "json", "", "synthcli-beta", "0.3"),
    ]
    import json.decoder
    assert found[0].load() is json.decoder.JSONDecoder.decode
    assert found[1].load() is json
    refuse_scan(monkeypatch)
    assert sorted(entrypoints.entry_points(GROUP)) == found


def test_installing_changing_and_removing_a_distribution_is_seen(site, monkeypatch):
    assert entrypoints.entry_points(GROUP) == []
    install(site, "synthcli-alpha", "1.0", "alpha = json")
    assert [ep.version for ep in entrypoints.entry_points(GROUP)] == ["1.0"]

    # Rewritten in place (an editable install's metadata written again):
    # a newer modification time, even on a file system with coarse times.
    points = site / "synthcli_alpha-1.0.dist-info" / "entry_points.txt"
    points.write_text(f"[{GROUP}]\nalpha = json.decoder\n")
    later = points.stat().st_mtime_ns + 10**9
    os.utime(points, ns=(later, later))
    assert [ep.module for ep in entrypoints.entry_points(GROUP)] == ["json.decoder"]

    (site / "synthcli_alpha-1.0.dist-info").rename(site / "synthcli_alpha-2.0.dist-info")
    ((site / "synthcli_alpha-2.0.dist-info") / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: synthcli-alpha\nVersion: 2.0\n")
    assert [ep.version for ep in entrypoints.entry_points(GROUP)] == ["2.0"]

    for path in sorted((site / "synthcli_alpha-2.0.dist-info").iterdir()):
        path.unlink()
    (site / "synthcli_alpha-2.0.dist-info").rmdir()
    assert entrypoints.entry_points(GROUP) == []


def test_a_broken_or_unwritable_cache_only_costs_the_scan(site, tmp_path, monkeypatch):
    install(site, "synthcli-alpha", "1.0", "alpha = json")
    path = entrypoints.cache_path(GROUP)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert [ep.name for ep in entrypoints.entry_points(GROUP)] == ["alpha"]
    assert '"alpha"' in path.read_text()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    assert [ep.name for ep in entrypoints.entry_points(GROUP)] == ["alpha"]


def test_each_environment_keeps_its_own_cache(site, monkeypatch):
    first = entrypoints.cache_path(GROUP)
    monkeypatch.setattr(sys, "path", sys.path[1:])
    assert entrypoints.cache_path(GROUP) != first


def test_packages_that_name_their_entry_points_alike_both_load(site, monkeypatch):
    """Entry-point names are each package's own choice: two may both say
    "fold", or "synthcli"; neither may hide the other."""
    from synthcli.plugins import ENTRY_POINT_GROUP, load_registry
    monkeypatch.delenv("SYNTHCLI_DISABLE_PLUGINS", raising=False)
    for dist, module, type_name, entry in (("synthcli-fold", "fold_a", "folda", "fold"),
                                           ("synthcli-folder", "fold_b", "foldb", "fold"),
                                           ("synthcli-proud", "proud", "proud", "synthcli")):
        (site / f"{module}.py").write_text(
            "from synthcli.api import Module, Port\nfrom synthcli.hookspecs import hookimpl\n"
            f"class M(Module):\n    type_name = '{type_name}'\n    outputs = (Port('out'),)\n"
            "    def process(self, inputs, params, outputs):\n        outputs['out'][:] = 0.0\n"
            "@hookimpl\ndef register_modules(register):\n    register(M)\n")
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry} = {module}\n")
    registry = load_registry()
    assert {name: registry.types[name].package for name in ("folda", "foldb", "proud")} == {
        "folda": "synthcli-fold", "foldb": "synthcli-folder", "proud": "synthcli-proud"}
    assert "vco" in registry.types and not registry.problems and not registry.skipped


def test_the_cache_keeps_only_the_newest_files_of_a_group(site, monkeypatch):
    """Each environment writes its own file; old ones are pruned on write,
    and another group's files are left alone."""
    folder = entrypoints.cache_path(GROUP).parent
    folder.mkdir(parents=True)
    for n in range(entrypoints.KEEP + 4):
        old = folder / f"entry-points-{GROUP}-{n:08x}.json"
        old.write_text("{}")
        os.utime(old, ns=(n * 10**9, n * 10**9))
    other = folder / "entry-points-another-group-00000000.json"
    other.write_text("{}")
    assert entrypoints.entry_points(GROUP) == []
    left = sorted(p.name for p in folder.iterdir())
    newest = [f"entry-points-{GROUP}-{n:08x}.json" for n in range(5, entrypoints.KEEP + 4)]
    assert left == sorted([other.name, entrypoints.cache_path(GROUP).name, *newest])


def fake_plugin(site, dist: str, body: str) -> None:
    """A plugin "installed" in ``site``: its module's code and its entry point."""
    from synthcli.plugins import ENTRY_POINT_GROUP
    module = dist.replace("-", "_")
    (site / f"{module}.py").write_text(
        "from synthcli.api import Module, Param, Port\nfrom synthcli.hookspecs import hookimpl\n" + body)
    install(site, dist, "1.0", f"{module} = {module}", ENTRY_POINT_GROUP)


LEVEL = """
class M(Module):
    type_name = "rectify"
    outputs = (Port("out"),)
    def process(self, inputs, params, outputs):
        outputs["out"][:] = {level}
@hookimpl
def register_modules(register):
    register(M)
"""


def test_a_required_plugin_that_did_not_load_says_why(site, monkeypatch):
    """Not "it is not a synthcli plugin": it is one, and it is broken."""
    from synthcli.errors import SynthError
    from synthcli.patch import Patch
    from synthcli.plugins import load_registry
    monkeypatch.delenv("SYNTHCLI_DISABLE_PLUGINS", raising=False)
    fake_plugin(site, "synthcli-importerr", "import synthcli_no_such_thing\n")
    fake_plugin(site, "synthcli-nohook", "def register_modules(register):\n    pass\n")
    fake_plugin(site, "synthcli-hookraise", "@hookimpl\ndef register_modules(register):\n    raise KeyError('x')\n")
    fake_plugin(site, "synthcli-misnamed", "@hookimpl\ndef register_modules(reg):\n    pass\n")
    registry = load_registry()
    why = {
        "synthcli-importerr": "ModuleNotFoundError: No module named 'synthcli_no_such_thing'",
        "synthcli-nohook": "it provides no register_modules hook",
        "synthcli-hookraise": "register_modules failed: KeyError: 'x'",
        "synthcli-misnamed": "register_modules(reg) cannot be called: its argument must be named 'register' "
                             "(synthcli passes it by name)",
    }
    for dist, reason in why.items():
        with pytest.raises(SynthError) as caught:
            Patch(registry).load_text(f"require {dist}>=1.0\n", "song.patch")
        assert str(caught.value) == (f"song.patch:1:9: this patch needs {dist}>=1.0, which is installed "
                                     f"but did not load: {reason}")
    assert "vco" in registry.types and len(registry.problems) == len(why)
    assert f"synthcli-misnamed: {why['synthcli-misnamed']}" in registry.problems


def test_a_plain_name_two_plugins_share_means_the_one_the_file_requires(site, monkeypatch):
    from synthcli.patch import Patch
    from synthcli.plugins import load_registry
    monkeypatch.delenv("SYNTHCLI_DISABLE_PLUGINS", raising=False)
    fake_plugin(site, "synthcli-alpha", LEVEL.format(level=0.1))
    fake_plugin(site, "synthcli-rectify", LEVEL.format(level=0.2))
    registry = load_registry()
    assert registry.problems == ["synthcli-rectify: module type 'rectify' is also provided by synthcli-alpha; "
                                 "use 'synthcli-rectify:rectify' for this one, or 'require synthcli-rectify' "
                                 "in the file"]
    for text, package in (("add rectify r\n", "synthcli-alpha"),
                          ("require synthcli-rectify\nadd rectify r\n", "synthcli-rectify"),
                          ("require synthcli_Rectify>=1\nadd rectify r\n", "synthcli-rectify"),
                          ("require synthcli-rectify\nadd synthcli-alpha:rectify r\n", "synthcli-alpha")):
        patch = Patch(registry)
        patch.load_text(text)
        assert patch.modules["r"].type.package == package, text
        again = Patch(registry)
        again.load_text(patch.to_text())
        assert again.modules["r"].type.package == package, patch.to_text()
    # A built-in's name stays the built-in's whatever the file requires.
    fake_plugin(site, "synthcli-clash", LEVEL.format(level=0.3).replace('"rectify"', '"vco"'))
    patch = Patch(load_registry())
    patch.load_text("require synthcli-clash\nadd vco v\n")
    assert patch.modules["v"].type.package == "synthcli"
