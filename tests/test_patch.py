"""The patch: semantic checks with places, atomic edits, canonical save."""
import re
from fractions import Fraction
from pathlib import Path

import pytest

from synthcli.api import C4_HZ
from synthcli.engine.core import Engine
from synthcli.errors import SynthError
from synthcli.language import parse_line
from synthcli.patch import Cable, Patch
from synthcli.testing import rms

BASIC = """\
add vco osc1 wave=saw freq=110
add ladder f1 cutoff=800 res=0.3
add lfo l1 freq=0.5 amp=600
add adsr env attack=0.01 decay=0.1 sustain=0.6 release=0.2
add vca amp1
connect osc1 f1
connect l1 f1.cutoff
connect f1 amp1
connect env amp1.gain
connect amp1 out
set f1.cutoff 1200
"""


def patch_of(registry, text=BASIC):
    patch = Patch(registry)
    patch.load_text(text, "p.patch")
    return patch


def rendered(registry, patch, blocks=8):
    with Engine(registry, 48000, 256, executor="inline") as engine:
        engine.load(patch)
        return [engine.process_block().copy() for _ in range(blocks)][-1]


def test_basic_patch_builds_modules_and_cables(registry):
    patch = patch_of(registry)
    assert list(patch.modules) == ["out", "osc1", "f1", "l1", "env", "amp1"]
    assert patch.modules["f1"].params["cutoff"] == 1200
    assert patch.modules["osc1"].params["wave"] == 1.0  # saw is choice 1
    assert Cable("l1", "out", "f1", "cutoff") in patch.cables
    assert Cable("amp1", "out", "out", "in") in patch.cables


@pytest.mark.parametrize("line, col, words", [
    ("add vfc x", 5, "unknown module type 'vfc', did you mean 'vcf'?"),
    ("add vco osc1", 9, "already exists"),
    ("add vco o2 frq=3", 12, "has no parameter 'frq', did you mean 'freq'?"),
    ("add vco o2 freq=abc", 17, "expected a number"),
    ("add vco o2 freq=１００", 17, "expected a number"),          # float() reads full-width digits
    ("add vco o2 freq=1_000", 17, "expected a number"),
    ("add vco o2 freq=h4", 17, "bad value 'h4' for vco.freq: expected a number, a note name such as a4 "
                               "or a note length such as 1/8d (0.01..20000 Hz)"),
    ("add vco o2 freq=c12", 17, "note c12 is outside MIDI 0-127 (c-1 to g9)"),
    ("set f1.cutoff c-1", 15, "c-1 (8.1758 Hz) is out of range (20..20000 Hz)"),
    ("add vco o2 pw=a4", 15, "bad value 'a4' for vco.pw: expected a number (0.01..0.99)"),
    ("add vco o2 freq=" + "9" * 500, 17, "out of range (0.01..20000 Hz)"),
    ("add vco o2 freq=inf", 17, "expected a finite number"),
    ("add vco o2 freq=-5", 17, "out of range"),
    ("add vco o2 wave=sawtooth", 17, "expected one of sine, saw"),
    ("add vco o2 wave=sqaure", 17, "expected one of sine, saw, square, triangle, pulse, did you mean 'square'?"),
    ("connect osc1 f1.out", 17, "is an output"),
    ("connect f1.in amp1", 12, "is an input; a cable starts at an output"),
    ("connect os1 f1", 9, "unknown module 'os1', did you mean 'osc1'?"),
    ("connect osc1 f1.cutof", 17, "did you mean 'cutoff'?"),
    ("connect osc1 amp1.nope", 19, "has no input or parameter 'nope' (inputs: in, gain; parameters: level)"),
    ("connect amp1.gate out", 14, "has no output 'gate' (outputs: out)"),
    ("connect osc1 f1", 9, "already connected"),
    ("disconnect osc1 amp1", 12, "there is no cable"),
    ("set f1.cutoff 99999", 15, "out of range"),
    ("set amp1.gain 2", 10, "is an input, not a parameter"),
    ("remove out", 8, "cannot be removed"),
    ("add delay d time=4/1", 18, "bad value '4/1' for delay.time: 4/1 is 8 s at 120 BPM, out of range (0.001..2 s)"),
    ("add delay d time=1/0", 18, "expected a number or a note length such as 1/8d (0.001..2 s)"),
    ("add delay d time=1/8x", 18, "expected a number or a note length such as 1/8d (0.001..2 s)"),
    ("add delay d time=1/9999999", 18, "expected a number or a note length such as 1/8d (0.001..2 s)"),
    ("set amp1.level 1/2", 16, "expected a number (0..4 x)"),       # a level is no time: no note length
    ("add lfo l2 freq=1/4096", 17, "1/4096 is 2048 Hz at 120 BPM, out of range (0.001..1000 Hz)"),
    ("add out o2", 5, "already has the master"),
])
def test_semantic_errors_name_the_place_and_change_nothing(registry, line, col, words):
    patch = Patch(registry)
    before = patch.to_text()
    with pytest.raises(SynthError) as info:
        patch.load_text(BASIC.replace("set f1.cutoff 1200\n", "") + line + "\n", "p.patch")
    assert (info.value.line, info.value.col) == (11, col)
    assert words in info.value.message
    assert patch.to_text() == before


def test_a_parameter_in_hz_takes_a_note_name_as_its_frequency(registry):
    patch = Patch(registry)
    patch.load_text("add vco o freq=a4\nadd ladder f cutoff=C#5\nadd lfo l\nset l.freq c-1\n")
    assert patch.modules["o"].params["freq"] == 440.0 and patch.modules["l"].params["freq"] == 440 * 2 ** -5.75
    assert patch.modules["f"].params["cutoff"] == 440 * 2 ** (4 / 12)
    assert "add vco o freq=440\n" in patch.to_text()      # saved as the number it stands for
    patch.load_text("set o.freq c4\n")
    assert patch.modules["o"].params["freq"] == C4_HZ     # the pitch CV's C4, to the bit


def test_a_time_or_a_rate_set_as_a_note_length_follows_the_tempo(registry):
    """`time=3/16` is three sixteenths of the song's tempo, and stays so
    when the tempo changes; a rate in Hz repeats once in its length."""
    patch = Patch(registry)
    patch.load_text("add delay d time=3/16\nadd lfo l freq=1/4\nadd adsr e attack=1/8d decay=1/8t\n"
                    "add delay d2 time=1/8\nset d2.time 0.2\n")
    values = lambda: [patch.modules[n].params[p] for n, p in
                      (("d", "time"), ("l", "freq"), ("e", "attack"), ("e", "decay"), ("d2", "time"))]
    assert values() == [0.375, 2.0, 0.375, 1 / 6, 0.2]       # at 120 BPM, the tempo of a patch alone
    assert patch.retempo(Fraction(90)) == [("d", "time", 0.5), ("l", "freq", 1.5), ("e", "attack", 0.5),
                                           ("e", "decay", 2 / 9)]
    assert values() == [0.5, 1.5, 0.5, 2 / 9, 0.2]           # the plain number stays as it was set
    text = patch.to_text()
    assert "add delay d time=3/16\n" in text and "add lfo l freq=1/4\n" in text and "attack=1/8d decay=1/8t" in text
    assert patch.to_text(synced=False).startswith("add delay d time=0.5\n")   # what an engine loads
    again = Patch(registry)
    again.load_text(text)
    assert again.synced == patch.synced and again.to_text() == text

    # Out of range at a new tempo: an error naming the value, and nothing changes.
    with pytest.raises(SynthError, match=r"^d\.time=3/16 is 2\.25 s at 20 BPM, out of range \(0\.001\.\.2 s\)$"):
        patch.retempo(Fraction(20))
    assert values() == [0.5, 1.5, 0.5, 2 / 9, 0.2] and patch.tempo == 90

    # A plain number, or the module's removal, lets the note length go.
    patch.load_text("set l.freq 3\nremove e\n")
    assert patch.synced == {("d", "time"): "3/16"} and patch.retempo(Fraction(60)) == [("d", "time", 0.75)]


def test_a_file_with_an_error_changes_nothing(registry):
    patch = patch_of(registry)
    before = patch.to_text()
    with pytest.raises(SynthError):
        patch.load_text("add vco fresh\nset fresh.freq 10\nadd nosuch x\n")
    assert "fresh" not in patch.modules and patch.to_text() == before


def test_remove_drops_its_cables(registry):
    """Its own cables, in and out, and not one more: dropping every cable
    would also leave none into f1."""
    patch = patch_of(registry)
    patch.apply(parse_line("remove f1"))
    assert "f1" not in patch.modules and list(patch.modules) == ["out", "osc1", "l1", "env", "amp1"]
    assert sorted(patch.cables, key=str) == [Cable("amp1", "out", "out", "in"), Cable("env", "out", "amp1", "gain")]


def test_disconnect_removes_that_cable_and_the_sound_it_carried(registry):
    """Only the named cable goes (a stereo pair as one), and the output
    really falls silent: the patch model and the engine both see it."""
    patch = patch_of(registry, "add vco o\nadd pan p\nconnect o p\nconnect p out\nadd vco q\nconnect q out\n")
    patch.apply(parse_line("disconnect q out"))
    assert sorted(patch.cables, key=str) == [Cable("o", "out", "p", "in"), Cable("p", "left", "out", "left"),
                                             Cable("p", "right", "out", "right")]
    assert rms(rendered(registry, patch)) > 0.1
    patch.apply(parse_line("disconnect p out"))
    assert patch.cables == [Cable("o", "out", "p", "in")]
    assert not rendered(registry, patch).any()


def test_a_cable_into_a_structural_parameter_is_refused(registry):
    """The module is built from the value (a note source's voices), so a
    cable into it was accepted, shown by info, and changed nothing; a
    file's parameter keeps its own word."""
    patch = patch_of(registry, "add keys kb voices=1\nadd drums d\nadd sampler s\nadd lfo l\n")
    for line, col, what in (("connect l kb.voices", 14, "'kb.voices' shapes the module and cannot follow a cable; "
                                                        "change it with 'set kb.voices VALUE' (or 'at BAR set "
                                                        "kb.voices VALUE')"),
                            ("connect l.out d.voices", 17, "'d.voices' shapes the module and cannot follow a cable"),
                            ("connect l s.file", 13, "'s.file' names a file")):
        with pytest.raises(SynthError) as caught:
            patch.apply(parse_line(line))
        assert (caught.value.col, caught.value.message.startswith(what)) == (col, True), caught.value
    assert patch.cables == []
    patch.apply(parse_line("connect l d.level"))   # its other parameters still take one


def test_stereo_outputs_connect_by_name(registry):
    patch = patch_of(registry, "add vco o\nadd pan p\nconnect o p\nconnect p out\n")
    assert Cable("p", "left", "out", "left") in patch.cables
    assert Cable("p", "right", "out", "right") in patch.cables


def test_save_load_save_round_trips(registry):
    patch = patch_of(registry, BASIC + "set out.level 0.5\nadd vco extra wave=pulse pw=0.25\n")
    text = patch.to_text()
    again = patch_of(registry, text)
    assert again.to_text() == text
    assert {n: i.params for n, i in again.modules.items()} == {n: i.params for n, i in patch.modules.items()}
    assert again.cables == patch.cables


@pytest.mark.parametrize("line, words", [
    ("require synthcli>=0.1", None),
    ("require synthcli>=99", "needs synthcli>=99, but synthcli 0.1.0 is installed: pip install -U 'synthcli>=99'"),
    ("require synthcli-nonesuch>=0.1", "needs synthcli-nonesuch>=0.1: pip install synthcli-nonesuch"),
    ("require synthcli-chiptune>=0.1", "needs synthcli-chiptune>=0.1: pip install ./plugins/synthcli-chiptune"),
    ("require numpy>=1", "needs numpy>=1: numpy "),       # installed: no use telling to install it
    ("require numpy>=1", "is installed, but it is not a synthcli plugin ('require' names packages of modules)"),
    ("require >=1", "expected a package requirement"),
])
def test_require_names_the_pip_command(registry, line, words, monkeypatch):
    """An example plugin of plugins/ is named by its folder (seen from the
    source tree's root here), as it is not on PyPI."""
    monkeypatch.chdir(Path(__file__).parent.parent)
    if "chiptune" in line and "synthcli-chiptune" in registry.packages:
        pytest.skip("synthcli-chiptune is installed here")
    patch = Patch(registry)
    if words is None:
        patch.load_text(line + "\n")
        assert patch.to_text().startswith(line + "\n")
    else:
        with pytest.raises(SynthError, match=re.escape(words)) as info:
            patch.load_text(line + "\n", "song.seq")
        assert (info.value.line, info.value.col) == (1, 9)
