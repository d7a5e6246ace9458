"""The live-coding REPL: its session logic, completion and highlighting on
their own, then the real REPL in a real terminal (tmux), with a real JACK
server where sound matters, checked on the screen and on what the server
received."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from prompt_toolkit.document import Document

from synthcli.audio.news import news
from synthcli.audio.player import Take
from synthcli.engine.core import Engine
from synthcli.engine.render import Performance, render_to_wav
from synthcli.errors import SynthError
from synthcli.language import COMMANDS
from synthcli.patch import Patch
from synthcli.repl import journal as journals
from synthcli.repl.commands import REPL_COMMANDS
from synthcli.repl.completion import ReplCompleter
from synthcli.repl.lexer import ReplLexer
from synthcli.repl.session import Session, parameter_changes
from synthcli.repl.toolbar import Toolbar, level_meter
from synthcli.repl.transport import Transport
from synthcli.sequencer.song import Song
from synthcli.harness import free_udp_port, jack_dummy_server, shared_memory_of
from synthcli.testing import peak_frequency

ROOT = Path(__file__).parent.parent
SR = 48000
BLOCK = 256
#: The demo song, shortened so it renders in a second but keeps its `at` bars.
SHORT_DEMO = ((ROOT / "songs" / "demo.seq").read_text()
              .replace("length 16", "length 4").replace("at 9 ", "at 2 ").replace("at 13 ", "at 3 "))


class Recorder:
    """Stands in for the engine: what the session sends it, in order."""

    meters: dict = {}
    status, reason = "no audio", "a test"
    take = None

    def __init__(self):
        self.sent = []

    def recording(self):
        return self.take

    def __getattr__(self, name):
        if name in ("set", "load", "start_song", "replace_song", "halt_song"):
            return lambda *args: self.sent.append((name, *args))
        raise AttributeError(name)


@pytest.fixture
def session(registry):
    return Session(registry, Recorder(), clock=lambda: 0.0)


def run(session, *lines):
    return [session.execute(line) for line in lines]


# -- the session ---------------------------------------------------------------------

def test_edits_reach_the_engine_as_sets_or_reloads(session):
    run(session, "add vco osc1 wave=saw freq=110", "connect osc1 out", "set osc1.freq 220", "set osc1.wave sine")
    assert session.patch.to_text() == "add vco osc1 freq=220 wave=sine\nconnect osc1.out out.in\n"
    assert session.sound.sent == [("load", "add vco osc1 freq=110\n"),
                                  ("load", "add vco osc1 freq=110\nconnect osc1.out out.in\n"),
                                  ("set", "osc1", "freq", 220.0), ("set", "osc1", "wave", 0.0)]
    # A structural parameter (a note source's voice count) needs a reload, not a set.
    run(session, "add keys kb voices=2")
    session.sound.sent.clear()
    run(session, "set kb.voices 4")
    assert [s[0] for s in session.sound.sent] == ["load"]


@pytest.mark.parametrize("line, message", [
    ("set os1.freq 3", "unknown module 'os1', did you mean 'osc1'?"),
    ("add vfc f1", "unknown module type 'vfc', did you mean 'vcf'?"),
    ("conect osc1 out", "unknown command 'conect', did you mean 'connect'?"),
    ("udno", "unknown command 'udno', did you mean 'undo'?"),
    ("stats", "unknown command 'stats', did you mean 'top'?"),     # other tools' words
    ("list", "unknown command 'list', did you mean 'ls'?"),
    ("set osc1.freq 1e9", "out of range"),
    ("add vco osc1", "a module named 'osc1' already exists"),
    ('pattern osc1 "c3"', "does not take notes"),
    ("add keys kb\nconnect kb.voct osc1.voct\nconect kb.gate osc1.fm", "unknown command 'conect'"),
])
def test_a_failing_command_changes_nothing(session, line, message):
    run(session, "add vco osc1", "connect osc1 out", "tempo 100")
    before = (session.song_text, len(session.undos), list(session.sound.sent))
    with pytest.raises(SynthError) as caught:
        session.execute(line)
    assert message in caught.value.message
    assert (session.song_text, len(session.undos), session.sound.sent) == before


def test_undo_and_redo_cover_every_edit_and_a_pasted_block_is_one_step(session):
    run(session, "add vco osc1", "connect osc1 out")
    block = "add vcf f1 cutoff=500\ndisconnect osc1 out\nconnect osc1 f1\n# a comment\nconnect f1 out\ntempo 90\n"
    session.execute(block)
    pasted = session.song_text
    assert "tempo 90\n" in pasted and "connect f1.out out.in" in pasted
    assert session.execute("undo") == "undid a block of 5 commands"
    assert session.song_text == "add vco osc1\nconnect osc1.out out.in\n"
    assert session.sound.sent[-1] == ("load", "add vco osc1\nconnect osc1.out out.in\n")   # the engine hears it
    assert session.execute("redo") == "redid a block of 5 commands"
    assert session.song_text == pasted
    assert session.sound.sent[-1] == ("load", pasted.replace("tempo 90\n", ""))
    run(session, "undo", "undo", "undo")
    assert session.song_text == "\n" and session.execute("undo") == "nothing to undo"
    run(session, "redo", "redo")
    assert session.song_text == "add vco osc1\nconnect osc1.out out.in\n"
    run(session, "set osc1.freq 300", "undo")
    assert session.sound.sent[-1] == ("set", "osc1", "freq", pytest.approx(261.6255653))   # back to its default
    run(session, "redo")
    assert session.sound.sent[-1] == ("set", "osc1", "freq", 300.0)
    assert session.execute("redo") == "nothing to redo"
    run(session, "undo", "set osc1.freq 200")
    assert session.execute("redo") == "nothing to redo"    # a new edit forgets what was undone
    with pytest.raises(SynthError, match="cannot be part of a pasted block"):
        session.execute("set osc1.freq 200\nundo")


def test_a_first_pattern_gives_the_song_a_length_long_enough_for_its_at_lines(session):
    """Typed before any `length`, a pattern or `at` gets one instead of an
    error (live the song plays on past it anyway); undo takes both back,
    and a given length stays as given."""
    run(session, "add keys kb", "add vco o", "connect kb.voct o.voct", "connect o out")
    said = session.execute('pattern kb "c3 e3"')
    assert said.startswith("the song is 1 bar long now (`length BARS` changes it)")
    assert "length 1\n" in session.song_text and session.execute("play") == ""
    assert session.sound.sent[-1] == ("start_song", session.song_text, 0)
    run(session, "stop", "undo")
    assert "length" not in session.song_text and "pattern" not in session.song_text
    assert session.execute('at 3 set o.wave sine\npattern kb "g3"').startswith("the song is 3 bars long now")
    assert session.execute("length 8") == "" and session.execute('at 12 set o.wave saw') == ""
    assert "length 8\n" in session.song_text


def test_time_commands_edit_the_song_and_the_song_is_checked_whole(session):
    run(session, "add keys kb voices=2", "add vco o", "connect kb.voct o.voct", "connect o out")
    run(session, "length 4.0", 'pattern kb "c3 e3"', "tempo 100", "tempo 128", 'pattern kb "g3"', "at 2.0 set o.wave sine")
    assert session.song_text == ("tempo 128\nlength 4\nadd keys kb voices=2\nadd vco o\nconnect kb.voct o.voct\n"
                                 'connect o.out out.in\npattern kb "g3"\nat 2 set o.wave sine\n')
    # The song plays into kb: its pattern goes with it, as `at BAR remove kb` ends it in a file
    # (refused, it could go only by undo: no command removes a pattern), and comes back with undo.
    assert session.execute("remove kb") == "the song's 'pattern kb \"g3\"' went with it"
    assert "kb" not in session.song_text and "at 2 set o.wave sine" in session.song_text
    assert session.execute("undo") == "undid remove kb" and 'pattern kb "g3"' in session.song_text
    with pytest.raises(SynthError) as caught:     # one typed with the remove is refused
        session.execute('remove kb\npattern kb "c3"')
    assert (caught.value.line, caught.value.message) == (2, "unknown module 'kb'")
    with pytest.raises(SynthError) as caught:     # one the edit's other commands need keeps it
        session.execute("remove o\nconnect kb.gate o.fm")
    assert (caught.value.line, caught.value.message) == (2, "unknown module 'o'")
    with pytest.raises(SynthError) as caught:      # a module the song adds later is not there yet
        session.execute("at 3 add vco late\nat 2 connect late out")
    assert (caught.value.line, caught.value.message) == (2, "unknown module 'late' at bar 2: the song adds it at bar 3")
    with pytest.raises(SynthError) as caught:
        session.execute('at 3 pattern kb "c3 [e3"')
    assert "unbalanced '['" in caught.value.message
    # A value the song finds out of range is shown where it was typed, not where the song writes it.
    for typed, said in [('pattern o.freq   "220 <440 30000>"', "column 28: pattern value 30000 is out of range"),
                        ('at 2   pattern o.pw "0.5 [2/1]"', "column 27: pattern value 2 is out of range"),
                        ('pattern   kb.voices "1 2"', "column 14: 'kb.voices' shapes the module"),
                        ('tempo 128\npattern o.freq "1/8 <2 1/99999>"',
                         "line 2, column 24: pattern value 1/99999 is 53332.8 Hz at 128 BPM, out of range")]:
        with pytest.raises(SynthError) as caught:
            session.execute(typed)
        assert caught.value.typed(typed).startswith(said), caught.value.typed(typed)
    assert session.execute("play") == ""
    assert session.sound.sent[-1] == ("start_song", session.song_text, 0)
    assert session.execute("play 3") == "" and session.sound.sent[-1] == ("start_song", session.song_text, 2)
    assert session.transport.position(0.0) == (3, 1)     # the toolbar counts from bar 3
    for wrong in ("0", "x", "1.5", "100001"):
        with pytest.raises(SynthError, match=rf"^play {re.escape(wrong)}: a bar is a whole number from 1 \(to 100000\)$"):
            session.execute(f"play {wrong}")
    run(session, "tempo 140")                       # while it plays: the new version takes over at the next bar
    assert session.sound.sent[-1] == ("replace_song", session.song_text)
    run(session, "stop")
    assert session.sound.sent[-2:] == [("halt_song",), ("load", session.patch.to_text())]
    assert session.execute("stop") == "the song is not playing"


def test_a_remove_takes_the_songs_commands_for_that_module_with_it_when_the_song_adds_it_back(session):
    """The REPL audit: with `at 3 remove v` and `at 5 add vco v` in the
    song, `remove v` was refused: the song's error that `v` comes only at
    bar 5 lost the module's name on the way, and only an unknown module's
    commands go with a remove."""
    run(session, "add vco v", "connect v out", "add keys kb", 'pattern kb "c3"', "length 8",
        "at 2 set v.freq 100", "at 3 remove v", "at 5 add vco v")
    said = session.execute("remove v")
    assert said == "the song's 'at 2 set v.freq 100', 'at 3 remove v' went with it", said
    assert "v" not in session.patch.modules and "at 5 add vco v" in session.song_text
    assert "at 2 set" not in session.song_text and "at 3 remove" not in session.song_text
    assert session.execute("undo") == "undid remove v"
    assert "at 2 set v.freq 100\nat 3 remove v\nat 5 add vco v" in session.song_text


def test_an_error_inside_at_names_the_column_it_has_outside(session):
    """The song finds it on a line of its own text, which spells the
    command its own way: shown without a column, `at 3 set v.wave sawx`
    left the musician to find the word."""
    run(session, "add vco v", "add delay d time=1/4", "connect v out", "length 4")
    before = session.song_text
    for typed, said in [("set v.wave sawx", "column 12: bad value 'sawx'"),
                        ("at 3 set v.wave sawx", "column 17: bad value 'sawx'"),
                        ("at  03   set  v.wave  sawx", "column 23: bad value 'sawx'"),
                        ("at 3 add vcx q", "column 10: unknown module type 'vcx'"),
                        ("at 3 set v.freq 99999", "column 17: bad value '99999'"),
                        ("at 3 connect v nowhere", "column 16: unknown module 'nowhere'"),
                        ("at 3 tempo 10", "column 6: d.time=1/4 is 6 s at 10 BPM, out of range"),
                        ('at 3 pattern v.freq   "1 [2 3 4 99999]"', "column 33: pattern value 99999"),
                        ("add vco w\n at 3 set v.wave sawx", "line 2, column 18: bad value 'sawx'")]:
        with pytest.raises(SynthError) as caught:
            session.execute(typed)
        assert caught.value.typed(typed).startswith(said), caught.value.typed(typed)
    assert session.song_text == before


def test_a_set_during_a_song_is_immediate_and_kept_by_the_song(session):
    run(session, "add keys kb", "add vco o", "connect kb.voct o.voct", "connect o out", "length 2",
        'pattern kb "c3"', "play")
    session.sound.sent.clear()
    run(session, "set o.freq 300")
    assert session.sound.sent == [("set", "o", "freq", 300.0)]
    run(session, "at 2 connect kb.gate o.fm")         # from now on the song reloads its own patch at bar 2,
    session.sound.sent.clear()
    run(session, "set o.freq 200")                    # which keeps a set (Sequencer.keep): no new version
    assert session.sound.sent == [("set", "o", "freq", 200.0)]
    undos = len(session.undos)
    for value in (210.0, 220.0):                      # nor for a knob: no edit, no undo step
        session.knob("o", "freq", value)
    assert session.sound.sent[1:] == [("set", "o", "freq", 210.0), ("set", "o", "freq", 220.0)]
    assert len(session.undos) == undos and "freq=220" in session.song_text


def test_undo_takes_back_an_edit_and_leaves_what_a_knob_turned_since(session):
    """The REPL audit: `undo` of `add lfo w` put a vco's pitch back from
    300 Hz, where a knob had turned it after the add, to 100. A knob is no
    undo step, and undo takes back only the edits: an edit of the same
    parameter still goes back to its value before."""
    run(session, "add vco v freq=100", "connect v out", "set v.pw 0.3", "add lfo w")
    session.knob("v", "freq", 250.0)
    session.knob("v", "freq", 300.0)
    session.knob("v", "pw", 0.25)
    session.sound.sent.clear()
    assert session.execute("undo") == "undid add lfo w"
    assert "w" not in session.patch.modules and session.patch.modules["v"].params["freq"] == 300.0
    assert not [sent for sent in session.sound.sent if sent[0] == "set" or "freq=100" in str(sent)], session.sound.sent
    assert session.execute("undo") == "undid set v.pw 0.3"                 # the edit of pw goes back
    assert (session.patch.modules["v"].params["freq"], session.patch.modules["v"].params["pw"]) == (300.0, 0.5)
    run(session, "redo", "redo")
    assert session.patch.modules["v"].params["pw"] == 0.25 and "w" in session.patch.modules
    run(session, "set v.freq 400")
    session.knob("v", "freq", 500.0)
    assert session.execute("undo") == "undid set v.freq 400"
    assert session.patch.modules["v"].params["freq"] == 300.0      # the value before the edit, as ever
    run(session, "undo", "undo", "undo", "undo")                   # back before `add vco v`: it goes
    assert "v" not in session.patch.modules
    run(session, "redo")
    assert session.patch.modules["v"].params["freq"] == 300.0      # the knob's, not the 100 it was added with
    # An OSC bundle of knobs alone is as they are; one that also edits is one step, its turns with it.
    with session.atomic():
        session.knob("v", "freq", 350.0)
    run(session, "add lfo y", "undo")
    assert session.patch.modules["v"].params["freq"] == 350.0
    with session.atomic():
        session.knob("v", "freq", 360.0)
        session.execute("add lfo z")
    assert session.execute("undo") == "undid add lfo z" and session.patch.modules["v"].params["freq"] == 350.0
    run(session, "redo")
    with pytest.raises(SynthError), session.atomic():             # a refused bundle leaves the history be too
        session.knob("v", "freq", 370.0)
        session.execute("add lfo z2")
        session.execute("conect a b")
    assert session.patch.modules["v"].params["freq"] == 360.0
    assert session.execute("undo") == "undid add lfo z" and session.patch.modules["v"].params["freq"] == 350.0


def test_load_replaces_the_patch_and_keeps_a_song_that_fits(session, tmp_path):
    song = tmp_path / "s.seq"
    song.write_text(SHORT_DEMO)
    patch = tmp_path / "p.patch"
    patch.write_text("add keys pad\nadd keys bass\nadd vcf padf\nadd ladder bassf\nadd vco o\n"
                     "connect pad.voct o.voct\nconnect o out\n")
    said = session.execute(f"load {song}")
    assert said == f"loaded {song} (song: 4 bars, 3 patterns, 14 modules, 17 cables)"
    assert not session.transport.playing and session.sound.sent[-1][0] == "load"   # loading does not play
    assert session.execute(f"load {patch}") == f"loaded {patch} (song: 4 bars, 3 patterns, 5 modules, 2 cables)"
    # ...what the song plays into is still there
    assert 'pattern pad "' in session.song_text and "add vco o\n" in session.song_text
    patch.write_text("add vco o\nconnect o.out out.in\n")
    note = session.execute(f"load {patch}")
    assert note == (f"loaded {patch} (patch: 1 module, 1 cable); "
                    "the song did not fit this patch and was cleared (2 patterns, 3 `at` commands, tempo 120, "
                    "length 4): the song's 'pattern pad \"<[c3,e3,g3] [a2,c3,e3] [f2,a2,c3] [g2,b2,d3]>\" "
                    "legato=0.9' needs 'pad'; undo brings it back")
    assert session.song_text == patch.read_text()
    run(session, "undo")
    assert 'pattern pad "' in session.song_text
    with pytest.raises(SynthError, match="nope.patch: cannot read"):
        session.execute(f"load {tmp_path / 'nope.patch'}")
    bad = tmp_path / "bad.patch"
    bad.write_text("add vco a\nadd vfc b\n")
    with pytest.raises(SynthError) as caught:
        session.execute(f"load {bad}")
    assert str(caught.value) == f"{bad}:2:5: unknown module type 'vfc', did you mean 'vcf'?"
    midi = tmp_path / "song.mid"
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00")
    before = session.song_text
    with pytest.raises(SynthError, match=r"song.mid: a MIDI file plays outside the REPL \(`synth play FILE.mid`\)"):
        session.execute(f"load {midi}")
    assert session.song_text == before                           # and nothing changed


def test_save_load_save_is_byte_identical_and_renders_the_same(session, registry, tmp_path):
    original = tmp_path / "demo.seq"
    original.write_text(SHORT_DEMO)
    first, second = tmp_path / "first.seq", tmp_path / "second.seq"
    run(session, f"load {original}")
    assert session.execute(f"save {first}").startswith(f"saved {first} (song: 4 bars, 3 patterns, ")   # as synth check counts them, `at` ones too
    run(session, "set padf.res 0.3", "undo", f"load {first}", f"save {second}")
    assert first.read_bytes() == second.read_bytes()
    assert session.execute("save").startswith(f"saved {second}")   # to the file last saved
    renders = []
    for text in (SHORT_DEMO, first.read_text()):
        with Engine(registry, SR, BLOCK) as engine:
            out = tmp_path / f"{len(renders)}.wav"
            render_to_wav(Performance(engine, Song(registry, text), None), out)
            renders.append(soundfile.read(str(out), dtype="float32")[0])
    assert renders[0].shape == renders[1].shape and len(renders[0]) > 4 * 2 * SR
    assert np.array_equal(renders[0], renders[1])


def test_render_writes_what_synth_render_writes(session, tmp_path):
    run(session, "add vco a wave=sine freq=330", "connect a out")
    assert session.execute(f"render {tmp_path / 'a.wav'} 0.5") == f"wrote {tmp_path / 'a.wav'} (0.50 s)"
    session.execute(f"save {tmp_path / 'a.patch'}")
    subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(tmp_path / "a.patch"), "-o",
                    str(tmp_path / "b.wav"), "-d", "0.5", "-q"], check=True, cwd=ROOT)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    run(session, "add keys kb", "add adsr e release=0.01", "add vca v", "connect kb.gate e.gate", "connect a v",
        "connect e v.gain", "disconnect a out", "connect v out", "tempo 240", "length 1", 'pattern kb "c4"')
    said = session.execute(f"render {tmp_path / 'c.wav'} 30")      # a duration cuts a song, never stretches it
    seconds = soundfile.info(str(tmp_path / "c.wav")).frames / SR
    assert 1.0 <= seconds < 5.0
    assert said == f"wrote {tmp_path / 'c.wav'} ({seconds:.2f} s: the song ends there, before the 30 s asked)"
    run(session, "set v.level 2")                                  # and what went over full scale, as render says
    said = session.execute(f"render {tmp_path / 'd.wav'} 30").splitlines()
    assert len(said) == 2 and said[1].startswith(f"warning: {tmp_path / 'd.wav'}: ") and \
        "went over full scale, into the master's soft clip" in said[1], said


def test_render_runs_a_plugins_module_where_its_crash_costs_its_sound_not_the_repl(own_registry, tmp_path,
                                                                                  monkeypatch):
    """The REPL's render hosts a plugin's module as `synth render` does, in
    a worker process: one that segfaults is silenced and said, and the
    REPL, the rest of the patch and the file go on. It ran in the REPL's
    own process, where that segfault ended the REPL."""
    from faulty import Faulty
    monkeypatch.setenv("SYNTHCLI_FAULT_MARKER", str(tmp_path / "failed-once"))
    own_registry.add(Faulty, "faulty-test-plugin", "0")
    session = Session(own_registry, Recorder(), clock=lambda: 0.0)
    run(session, "add vco a wave=sine freq=300", "connect a out.left", "add faulty f mode=segfault at=12 once=0",
        "connect f out.right")
    wav = tmp_path / "f.wav"
    said = session.execute(f"render {wav} 1").splitlines()
    assert said[0] == f"wrote {wav} (1.00 s)" and len(said) == 2, said
    assert re.fullmatch(r"warning: module 'f' \(faulty, from faulty-test-plugin 0\) failed \d+ times?, "
                        r"quarantined \(silent from then on\): .*SIGSEGV.*", said[1]), said[1]
    data, _ = soundfile.read(str(wav))
    assert len(data) == SR and peak_frequency(data[:, 0], SR) == pytest.approx(300, abs=2)
    assert peak_frequency(data[:11 * 256, 1], SR) == pytest.approx(1000, abs=20) and not data[SR // 2:, 1].any()


class Heard:
    """What a session says above the prompt, from any thread, as the app's say() would print it."""

    def __init__(self):
        self.lines = []

    def __call__(self, line, kind=""):
        self.lines.append((line, kind))

    def wait(self, count=1, timeout=60.0):
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.lines) >= count, self.lines
        return self.lines[count - 1]


def test_a_typed_render_runs_beside_the_prompt_from_the_patch_as_it_was(session, tmp_path):
    """At a prompt the render returns at once and says when it is done;
    what is typed meanwhile changes the patch, not the file: it is the
    file the same render writes with no prompt to return to."""
    run(session, "add vco a wave=sine freq=330", "connect a out")
    alone = session.execute(f"render {tmp_path / 'alone.wav'} 3")
    session.say = heard = Heard()
    said = session.execute(f"render {tmp_path / 'beside.wav'} 3")
    assert said == f"rendering {tmp_path / 'beside.wav'} beside the prompt: `render` says how far, `render stop` ends it"
    run(session, "set a.freq 880", "add noise n", "connect n out")         # the prompt is the musician's
    assert heard.wait() == (alone.replace("alone", "beside"), "")
    assert (tmp_path / "beside.wav").read_bytes() == (tmp_path / "alone.wav").read_bytes()
    assert session.execute("render") == f"not rendering; the last: {heard.lines[-1][0]}"


def test_a_render_beside_the_prompt_runs_at_the_lowest_priority(tmp_path):
    """The new user's render typed in the REPL took a core of two from
    the live audio: three xruns. Its thread now runs at nice 19, and the
    REPL's other threads as they were."""
    from synthcli.repl.rendering import Rendering
    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen, said = [], threading.Event()
    Rendering("x.wav", lambda progress: (seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
                                         ("wrote x.wav", ""))[1], lambda line, kind: said.set())
    assert said.wait(10) and seen == [19] and os.getpriority(os.PRIO_PROCESS, 0) == before


def test_a_render_sent_over_osc_runs_beside_the_prompt_too(registry, tmp_path, monkeypatch):
    """A remote render held the lock every command takes, so the prompt,
    OSC and MIDI waited for it: in the REPL it runs beside them, and a
    remote `render` asks how it went."""
    monkeypatch.chdir(tmp_path)   # remote commands write only under the working directory
    session = Session(registry, Recorder(), clock=lambda: 0.0)
    session.say = heard = Heard()
    assert session.execute("render", remote=True) == "not rendering: render FILE.wav [SECONDS] starts"
    run(session, "add vco a wave=sine freq=330", "connect a out")
    said = session.execute("render remote.wav 2", remote=True)
    assert said == "rendering remote.wav beside the prompt: `render` says how far, `render stop` ends it"
    assert heard.wait() == ("wrote remote.wav (2.00 s)", "")
    assert session.execute("render", remote=True) == "not rendering; the last: wrote remote.wav (2.00 s)"
    assert soundfile.info(str(tmp_path / "remote.wav")).frames == 2 * SR


def test_render_says_how_far_it_is_one_at_a_time_and_stop_leaves_a_valid_file(session, tmp_path):
    run(session, "add vco a wave=sine freq=330", "connect a out")
    session.say = heard = Heard()
    long = tmp_path / "long.wav"
    session.execute(f"render {long} 3000")
    deadline = time.monotonic() + 30
    while session.rendering.fraction == 0.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert re.fullmatch(rf"rendering {re.escape(str(long))}: \d+ %, about \d+ s left", session.execute("render"))
    # One at a time, whatever the file: told to name another, the musician was refused that too.
    for again in (long, tmp_path / "other.wav"):
        with pytest.raises(SynthError) as refused:
            session.execute(f"render {again}")
        assert str(refused.value) == (f"already rendering {long}, one render at a time: wait for it "
                                      f"(`render` says how far) or end it with `render stop`")
    assert not (tmp_path / "other.wav").exists()
    with pytest.raises(SynthError, match=rf"^record {re.escape(str(long))}: already rendering to that file; "
                                         rf"name another$"):   # one would overwrite what the other said it wrote
        session.execute(f"record {long}")
    assert session.execute("render stop") == ""
    line, kind = heard.wait()
    seconds = soundfile.info(str(long)).frames / SR
    assert (line, kind) == (f"render interrupted: {long} holds the first {seconds:.2f} s", "warning")
    assert 0 < seconds < 3000 and not session.rendering.running
    assert session.execute("render stop") == "not rendering"
    data, _ = soundfile.read(str(long))
    assert np.abs(data).max() > 0.1


def test_render_refuses_the_file_of_the_take_and_a_length_no_wav_holds_before_it_starts(session, tmp_path):
    from types import SimpleNamespace
    run(session, "add vco a wave=sine freq=330", "connect a out")
    session.say = heard = Heard()
    take = tmp_path / "same.wav"
    session.sound.take = SimpleNamespace(path=str(take), thread=None)
    with pytest.raises(SynthError, match=rf"^render {re.escape(str(take))}: already recording to that file; "
                                         rf"name another$"):
        session.execute(f"render {take} 1")
    for seconds, why in (("-5", "duration must be a positive number of seconds, got -5"),
                         ("1e300", r"1e\+300 s will not fit in a WAV file: it holds at most 3\.1 hours")):
        with pytest.raises(SynthError, match=rf"^render {re.escape(str(tmp_path / 'x.wav'))} {seconds}: {why}"):
            session.execute(f"render {tmp_path / 'x.wav'} {seconds}")
    assert session.rendering is None and not heard.lines and not list(tmp_path.iterdir())


def test_an_empty_file_name_is_refused_not_taken_for_the_last_file(session, tmp_path):
    run(session, "add vco a", "connect a out", f"save {tmp_path / 'kept.patch'}", "add noise n")
    for line in ('save ""', 'load ""', 'render "" 1', 'record ""'):
        with pytest.raises(SynthError, match="^the file name is empty$"):
            session.execute(line)
    assert (tmp_path / "kept.patch").read_text() == "add vco a\nconnect a.out out.in\n"


def test_the_journal_rebuilds_patch_song_and_history(registry, tmp_path):
    song = tmp_path / "s.seq"
    song.write_text(SHORT_DEMO)
    journal = journals.Journal(tmp_path / "state")
    first = Session(registry, Recorder(), journal)
    # Two of these are refused, as a musician's slips are, and the journal
    # must not bring them back; any other refusal is a failure of its own.
    refused = {"bogus": "unknown command 'bogus'", "set l1.freq 9e9": "9e9 is out of range"}
    for line in ("add vco x", f"load {song}", "set padf.cutoff 700", "bogus", "tempo 90", "undo",
                 "add lfo l1\nconnect l1 padf.cutoff", "set l1.freq 9e9"):
        if line in refused:
            with pytest.raises(SynthError, match=refused[line]):
                first.execute(line)
        else:
            first.execute(line)
    song.write_text("the file changed since: the journal kept what was loaded")
    journal._file.write('{"edit": "add vco half')          # a crash in the middle of a write
    journal._file.flush()
    assert journals.latest(tmp_path / "state") == journal.path
    second = Session(registry, Recorder(), journals.Journal(tmp_path / "state"))
    second.replay(journals.read(journals.latest(tmp_path / "state")))
    assert second.song_text == first.song_text and "tempo 120" in second.song_text
    run(first, "undo", "undo")
    run(second, "undo", "undo")
    assert second.song_text == first.song_text and "padf cutoff=700" not in second.song_text


def test_a_journal_entry_that_fails_on_resume_keeps_its_place_in_the_history(registry, own_registry, tmp_path):
    """A change of a plugin's module, resumed without the plugin (gone
    since, or --safe-mode), fails: skipped, it let the journal's `undo`
    after it take back the change before it, and the resumed patch lost
    `a`. It changes nothing, keeps its place, and is journaled again: a
    resume of the resumed session with the plugin back is the first."""
    from synthcli.api import Module, Port

    class Fold(Module):
        type_name = "fold"
        outputs = (Port("out"),)

        def process(self, inputs, params, outputs):
            outputs["out"][...] = 0.0

    own_registry.add(Fold, "synthcli-fold", "1.0")
    first = Session(own_registry, Recorder(), journals.Journal(tmp_path / "first"))
    run(first, "add vco a\nconnect a out", "add fold b\nconnect b out", "undo", "add fold c", "add lfo l")
    entries = journals.read(journals.latest(tmp_path / "first"))
    resumed = Session(registry, Recorder(), journals.Journal(tmp_path / "resumed"))
    assert [number for number, _ in resumed.replay(entries)] == [3, 5]   # line 1 says the folder
    assert set(resumed.patch.modules) == {"a", "l", "out"}
    assert resumed.execute("undo") == "undid add lfo l" and resumed.execute("undo") == "undid a change that failed on resume"
    assert set(resumed.patch.modules) == {"a", "out"}
    run(resumed, "redo", "redo")
    again = Session(own_registry, Recorder(), journals.Journal(tmp_path / "again"))
    assert again.replay(journals.read(journals.latest(tmp_path / "resumed"))) == []
    assert again.patch.to_text() == first.patch.to_text()


def test_a_song_loaded_by_a_relative_path_resumes_from_another_directory(registry, tmp_path, monkeypatch):
    """The journal kept the path as typed, from the REPL's working
    directory, and the song's sampler finds its sound from the song's
    folder: resumed elsewhere, the load failed and the patch was empty.
    A journal that holds a path as typed still resumes from where it was."""
    (tmp_path / "x" / "songs" / "samples").mkdir(parents=True)
    for name in ("sampler.seq", "samples/break.flac"):
        shutil.copy(ROOT / "songs" / name, tmp_path / "x" / "songs" / name)
    monkeypatch.chdir(tmp_path / "x")
    journal = journals.Journal(tmp_path / "state")
    first = Session(registry, Recorder(), journal)
    run(first, "load songs/sampler.seq")
    entries = journals.read(journal.path)
    as_typed = [{**entries[0], "load": "songs/sampler.seq"}]
    assert Session(registry, Recorder()).replay(as_typed) == []
    monkeypatch.chdir(tmp_path)
    resumed = Session(registry, Recorder())
    assert resumed.replay(entries) == []
    assert resumed.song_text == first.song_text and "sampler brk" in resumed.song_text


def test_a_file_a_songs_at_line_names_is_found_from_the_songs_folder_wherever_the_repl_runs(
        registry, tmp_path, monkeypatch):
    """`at 3 set brk.file other.flac` in a song beside its samples: `synth
    render` found the file from the song's folder, but the REPL (and so
    `synth play`, which loads through it) sends the song on as text with
    no folder, and looked for it beside the working directory: the song
    would not load. Its `at` lines now name files by where they were
    found; one typed in the REPL is found from the working directory,
    as documented, and stays that file after a change of directory."""
    (tmp_path / "x" / "songs" / "samples").mkdir(parents=True)
    for name in ("sampler.seq", "samples/break.flac"):
        shutil.copy(ROOT / "songs" / name, tmp_path / "x" / "songs" / name)
    shutil.copy(ROOT / "songs" / "samples" / "break.flac", tmp_path / "x" / "songs" / "samples" / "other.flac")
    song = tmp_path / "x" / "songs" / "sampler.seq"
    song.write_text(song.read_text() + "at 3 set brk.file samples/other.flac\n")
    monkeypatch.chdir(tmp_path / "x")
    session = Session(registry, Recorder())
    run(session, "load songs/sampler.seq")
    other = (tmp_path / "x" / "songs" / "samples" / "other.flac").resolve()
    assert f"at 3 set brk.file {other}\n" in session.song_text
    run(session, "at 6 set rev.file songs/samples/other.flac")
    assert f"at 6 set rev.file {other}\n" in session.song_text
    monkeypatch.chdir(tmp_path)
    run(session, "set bs.decay 0.7")   # a change checks the whole song again, from here
    patches = Song(registry, session.song_text).patches()
    assert patches[0].modules["brk"].params["file"] != str(other)
    assert patches[-1].modules["brk"].params["file"] == patches[-1].modules["rev"].params["file"] == str(other)


def test_a_file_typed_by_a_relative_path_resumes_from_another_directory(registry, tmp_path, monkeypatch):
    """A sampler's sound typed as `file=samples/break.flac` is found from
    the working directory; the journal held the line as typed, so a resume
    started elsewhere looked for it there and warned that the entry failed.
    The journal now says where edits were typed, and again when that
    changes, so each is found where it was meant."""
    for folder in ("x", "y"):
        (tmp_path / folder / "samples").mkdir(parents=True)
        shutil.copy(ROOT / "songs" / "samples" / "break.flac", tmp_path / folder / "samples" / "break.flac")
    journal = journals.Journal(tmp_path / "state")
    first = Session(registry, Recorder(), journal)
    monkeypatch.chdir(tmp_path / "x")
    run(first, "add sampler s file=samples/break.flac\nconnect s out", "length 4\nat 2 set s.tune 1")
    monkeypatch.chdir(tmp_path / "y")
    run(first, "add sampler t file=samples/break.flac", "at 3 set s.file samples/break.flac")
    assert first.patch.modules["s"].params["file"] == str((tmp_path / "x" / "samples" / "break.flac").resolve())
    entries = journals.read(journal.path)
    assert [e["dir"] for e in entries if "dir" in e] == [str(tmp_path / "x"), str(tmp_path / "y")]
    monkeypatch.chdir(tmp_path)
    resumed = Session(registry, Recorder(), journals.Journal(tmp_path / "resumed"))
    assert resumed.replay(entries) == []
    assert resumed.song_text == first.song_text and str(tmp_path / "y" / "samples") in resumed.song_text
    again = Session(registry, Recorder())   # the resumed session's journal says the same
    assert again.replay(journals.read(journals.latest(tmp_path / "resumed"))) == []
    assert again.song_text == first.song_text


def test_the_undo_history_keeps_its_newest_steps_live_and_on_resume(registry, tmp_path, monkeypatch):
    """Each step holds a copy of the patch and the song: kept without end,
    80,000 sets over OSC grew the REPL by 86 MB. Past the cap the oldest
    go, and a resumed session keeps the same ones."""
    from synthcli.repl import session as sessions
    monkeypatch.setattr(sessions, "UNDO_LEVELS", 3, raising=False)
    live = Session(registry, Recorder(), journals.Journal(tmp_path))
    run(live, "add vco o", *(f"set o.freq {freq}" for freq in (100, 200, 300, 400)))
    resumed = Session(registry, Recorder())
    assert resumed.replay(journals.read(journals.latest(tmp_path))) == []
    for each in (live, resumed):
        assert len(each.undos) == 3
        assert run(each, "undo", "undo", "undo") == ["undid set o.freq 400", "undid set o.freq 300",
                                                      "undid set o.freq 200"]
        assert each.execute("undo") == "nothing to undo" and each.patch.to_text() == "add vco o freq=100\n"
        assert run(each, "redo", "redo", "redo")[-1] == "redid set o.freq 400" and len(each.undos) == 3


def test_an_empty_session_leaves_the_pointer_to_the_last_real_one(registry, tmp_path):
    for old in range(30):
        (tmp_path / f"journal-old-{old}.jsonl").write_text("")
        os.utime(tmp_path / f"journal-old-{old}.jsonl", (old, old))
    journal = journals.Journal(tmp_path)
    Session(registry, Recorder(), journal).execute("add vco a")
    assert len(list(tmp_path.glob("journal-*.jsonl"))) == journals.KEEP and journal.path.exists()
    journals.Journal(tmp_path)           # opened, nothing typed
    assert journals.latest(tmp_path) == journal.path
    with pytest.raises(SynthError, match="nothing to resume"):
        journals.latest(tmp_path / "elsewhere")


def test_parameter_changes_know_when_a_reload_is_needed(session):
    run(session, "add vco a", "add vcf f", "connect a f")
    before = session.patch
    run(session, "set a.freq 100", "set f.mode notch")
    assert parameter_changes(before, session.patch) == [("a", "freq", 100.0), ("f", "mode", 3.0)]
    run(session, "connect f out")
    assert parameter_changes(before, session.patch) is None


def test_help_info_and_ls_read_the_tables_and_the_patch(session):
    every = session.execute("help")
    for name, spec in REPL_COMMANDS.items():
        assert hasattr(session, f"do_{name}") and spec.syntax in every
    assert "connect SRC[.PORT] DST[.PORT]" in every
    assert session.execute("help connect").startswith("connect\n\nconnect SRC[.PORT] DST[.PORT]\n")
    assert "cutoff" in session.execute("help vcf")
    with pytest.raises(SynthError, match="did you mean 'connect'"):
        session.execute("help conect")
    for wrong, usage in (("ls -l", "usage is 'ls'"), ("load", "usage is 'load FILE'"),
                         ("render a.wav 1 2", "usage is 'render [FILE.wav|stop] [SECONDS]'")):
        with pytest.raises(SynthError, match=re.escape(usage)):
            session.execute(wrong)
    run(session, "add lfo l1 freq=2", "add vcf f1", "connect l1 f1.cutoff", "connect f1 out")
    info = session.execute("info f1")
    assert "f1: vcf" in info and "cutoff  1000 Hz <- l1.out" in info and "out    out     -> out.in" in info
    listing = session.execute("ls")
    assert "  l1   lfo  freq=2 wave=sine amp=1" in listing and "l1.out -> f1.cutoff" in listing
    assert session.execute("top") == "no meters: a test"


def test_ls_info_and_help_show_six_figures_and_save_keeps_every_digit(session, tmp_path):
    """The default pitch, C4, read `freq=261.6255653005986`; a value typed
    with six figures or fewer shows as typed."""
    run(session, "add vco o", "add vcf f cutoff=1234.5", "set o.pw 0.123456789", "connect o f", "connect f out")
    listing = session.execute("ls")
    assert "o    vco  freq=261.626 wave=saw pw=0.123457 fmdepth=1" in listing and "cutoff=1234.5 " in listing
    assert "freq     261.626 Hz  (0.01..20000 Hz)" in session.execute("info o")
    assert "freq     261.626  (0.01..20000 Hz)" in session.execute("info vco")
    assert re.search(r"\n  freq +261\.626 +0\.01\.\.20000 Hz", session.execute("help vco"))
    session.execute(f"save {tmp_path / 'a.patch'}")
    saved = (tmp_path / "a.patch").read_text()
    assert "pw=0.123456789" in saved and "261.6" not in saved   # the default is not written at all


def test_a_note_length_keeps_the_songs_tempo_and_the_engine_hears_each_change(session, tmp_path):
    """`set d.time 1/8` is an eighth at the song's tempo, before and after
    a `tempo`; the engine gets numbers, ls, info and save the note length."""
    run(session, "add vco o", "add delay d time=1/8", "connect o d", "connect d out")
    assert ("load", "add vco o\nadd delay d time=0.25\nconnect o.out d.in\nconnect d.out out.in\n") in session.sound.sent
    session.sound.sent.clear()
    run(session, "tempo 60")
    assert session.sound.sent == [("set", "d", "time", 0.5)]
    assert "d    delay  time=1/8 " in session.execute("ls")
    assert re.search(r"\n  param  time +1/8 \(0\.5 s at 60 BPM\) ", session.execute("info d"))
    session.execute(f"save {tmp_path / 'echo.seq'}")
    assert "add delay d time=1/8\n" in (tmp_path / "echo.seq").read_text()
    run(session, "set d.time 0.3", "tempo 90")
    assert session.patch.modules["d"].params["time"] == 0.3 and not session.patch.synced
    run(session, "undo", "undo")                  # back to the eighth at 60 BPM
    assert session.patch.modules["d"].params["time"] == 0.5 and session.sound.sent[-1] == ("set", "d", "time", 0.5)
    with pytest.raises(SynthError, match=r"d\.time=1/8 is 2\.5 s at 12 BPM, out of range"):
        run(session, "tempo 12")
    assert session.patch.tempo == 60 and "tempo 60" in session.song_text

    # A patch loaded into a song at 60 BPM keeps time by the song.
    (tmp_path / "other.patch").write_text("add vco o\nadd lfo l freq=1/4\nconnect o out\n")
    run(session, "pattern o.freq \"c4\"", f"load {tmp_path / 'other.patch'}")
    assert session.patch.modules["l"].params["freq"] == 1.0 and session.timeline

    # While the song plays, a note length reaches it only as a new version
    # of the song, which works it out at the tempo of the bar it is at:
    # from bar 2 on that is 30 BPM, not the patch's 60.
    run(session, "add delay d2", "connect l d2.time", "at 2 tempo 30", "play")
    session.sound.sent.clear()
    run(session, "set d2.time 1/16", "tempo 50", "set d2.feedback 0.5")
    sent = session.sound.sent
    assert [m[0] for m in sent] == ["replace_song", "replace_song", "set"] and sent[-1][2] == "feedback", sent


WATCHED = ("tempo 240\nlength 2\nadd keys kb\nadd vco o wave=sine\nadd vca a level=0.5\n"
           "connect kb.voct o.voct\nconnect o a\nconnect a out\n")


def test_a_save_of_the_file_that_plays_keeps_what_was_changed_live_where_it_left_that_alone(session, tmp_path):
    """synth play --watch: a knob turned, a module added and a cable taken
    out over OSC stay through a save that changes something else; what
    the save changes wins (the live audit: a comment-only save undid a
    knob and dropped a module added over OSC)."""
    song = tmp_path / "w.seq"
    text = WATCHED + 'pattern kb "a4" legato=1\n'
    song.write_text(text)
    session.load(song)
    session.knob("a", "level", 0.1)
    session.execute("add vco o3 freq=1320\nconnect o3 a", remote=True)
    session.execute("set o.freq 300")
    session.sound.sent.clear()
    assert session.reload(song, text + "# only a comment\n") is None      # nothing that plays changed
    assert session.sound.sent == [] and session.patch.modules["a"].params["level"] == 0.1
    changed = text.replace("wave=sine", "wave=saw") + "add lfo l freq=2\n"
    assert session.reload(song, changed) == ""
    patch = session.patch
    assert patch.modules["a"].params["level"] == 0.1 and patch.modules["o"].params["freq"] == 300
    assert patch.modules["o"].type.cls.param("wave").format(patch.modules["o"].params["wave"]) == "saw"
    assert "o3" in patch.modules and "l" in patch.modules
    assert any(c.src == "o3" and c.dst == "a" for c in patch.cables)
    assert 'pattern kb "a4"' in session.song_text
    # A save that sets the level itself wins; one that removes o takes o's cables along.
    assert session.reload(song, changed.replace("level=0.5", "level=0.8")) == ""
    assert session.patch.modules["a"].params["level"] == 0.8
    session.execute("disconnect o3 a", remote=True)
    assert session.reload(song, changed.replace("level=0.5", "level=0.8") + "add noise n\n") == ""
    assert "n" in session.patch.modules and not any(c.src == "o3" for c in session.patch.cables)


def test_a_save_keeps_the_patterns_and_tempo_sent_live_where_it_left_them_alone(session, tmp_path):
    """synth play --watch --osc: a pattern or a tempo sent over OSC stays
    through a save that leaves its target alone, as a knob does; the save
    wins where it changes the same; a pattern goes with a module the save
    removes. (Every save used to put back the file's time commands.)"""
    song = tmp_path / "w.seq"
    text = WATCHED + 'pattern kb "a4" legato=1\n'
    song.write_text(text)
    session.load(song)
    session.execute('pattern a.level "0.2 0.4"\ntempo 200', remote=True)
    assert session.reload(song, text + "# only a comment\n") is None
    changed = text.replace("wave=sine", "wave=saw")
    assert session.reload(song, changed) == ""
    assert 'pattern a.level "0.2 0.4"' in session.song_text and session.timeline.tempo == 200
    changed = changed.replace('"a4"', '"e5"').replace("tempo 240", "tempo 180")
    assert session.reload(song, changed) == ""
    assert 'pattern kb "e5"' in session.song_text and 'pattern a.level "0.2 0.4"' in session.song_text
    assert session.timeline.tempo == 180
    session.execute('pattern kb "c4"\npattern o.freq "300 400"', remote=True)
    changed = changed.replace('"e5"', '"g4"')
    assert session.reload(song, changed) == ""
    assert 'pattern kb "g4"' in session.song_text and 'pattern kb "c4"' not in session.song_text
    removed = changed.replace("add vco o wave=saw\n", "").replace("connect kb.voct o.voct\nconnect o a\n", "")
    said = session.reload(song, removed)
    assert said == """'pattern o.freq "300 400"', sent live, went with what this save removes""", said
    assert "o.freq" not in session.song_text and 'pattern a.level "0.2 0.4"' in session.song_text


def test_a_saves_at_edit_wins_over_a_live_one_of_its_bar_and_target(session, tmp_path):
    """The review: an `at` was known by its whole text, so the save's
    `at 3 set a.level 0.6` and a live `at 3 set a.level 0.9` were both
    kept, and the live one, later in the song, won. So with patterns."""
    song = tmp_path / "w.seq"
    text = WATCHED.replace("length 2", "length 4") + 'pattern kb "a4"\nat 3 set a.level 0.3\nat 3 pattern kb "c4"\n'
    song.write_text(text)
    session.load(song)
    session.execute('at 3 set a.level 0.9\nat 3 pattern kb "d4"\nat 2 set o.freq 300', remote=True)
    saved = text.replace("a.level 0.3", "a.level 0.6").replace('"c4"', '"e5"')
    assert session.reload(song, saved) == ""
    lines = session.song_text.splitlines()
    assert "at 3 set a.level 0.6" in lines and 'at 3 pattern kb "e5"' in lines, lines
    assert "at 3 set a.level 0.9" not in lines and 'at 3 pattern kb "d4"' not in lines, lines
    assert "at 2 set o.freq 300" in lines   # what the save left alone stays


def test_a_save_meets_the_live_edits_it_touches(session, tmp_path):
    """From the review of the merge: a new tempo in the file is no change
    of a value set live as a note length or a number; a module taken out
    live that the save edits comes back, as the file wins; a live edit
    that no longer fits the save is dropped, and said so."""
    song = tmp_path / "w.seq"
    text = WATCHED.replace("tempo 240", "tempo 120") + "add delay d time=1/8\nconnect a d\nconnect d out\n" + \
        'pattern kb "a4" legato=1\n'
    song.write_text(text)
    session.load(song)
    session.execute("set d.time 1/4")
    assert session.reload(song, text.replace("tempo 120", "tempo 100")) == ""
    assert session.patch.synced[("d", "time")] == "1/4" and session.patch.modules["d"].params["time"] == 0.6
    session.execute("set d.time 0.7")
    assert session.reload(song, text.replace("tempo 120", "tempo 90")) == ""
    assert ("d", "time") not in session.patch.synced and session.patch.modules["d"].params["time"] == 0.7
    session.execute("remove d")
    assert session.reload(song, text.replace("tempo 120", "tempo 90").replace("time=1/8", "time=1/16")) == ""
    assert session.patch.modules["d"].params["time"] == 60 / 90 / 4 and \
        {(c.src, c.dst) for c in session.patch.cables} >= {("a", "d"), ("d", "out")}
    session.execute("set d.time 1/2")                 # 1.33 s at 90 BPM; the save's 45 makes it 2.67 s
    said = session.reload(song, text.replace("tempo 120", "tempo 45").replace("time=1/8", "time=1/16"))
    assert said == (f"what was changed live since {song} was loaded does not fit this save and is dropped "
                    f"(d.time=1/2 is 2.66667 s at 45 BPM, out of range (0.001..2 s)); undo brings it back"), said
    assert session.patch.synced[("d", "time")] == "1/16"


def test_a_save_after_an_undo_of_the_last_is_applied_again(session, tmp_path):
    """An undo over OSC took the session back from the save that plays: the
    same file saved again must be applied, not taken for what plays."""
    song = tmp_path / "w.seq"
    first = WATCHED + 'pattern kb "a4" legato=1\n'
    second = first.replace("level=0.5", "level=0.2")
    song.write_text(first)
    session.load(song)
    assert session.reload(song, second) == "" and session.patch.modules["a"].params["level"] == 0.2
    session.execute("undo", remote=True)
    assert session.patch.modules["a"].params["level"] == 0.5
    assert session.reload(song, second) == "" and session.patch.modules["a"].params["level"] == 0.2
    assert session.reload(song, second) is None


def test_a_change_of_values_and_of_the_song_is_heard_all_at_once_at_the_next_bar(session, tmp_path):
    """song-language.md: a change that is not only values takes over at the
    next bar, all at once: the value does not glide in at the save and the
    pattern at the bar (the live audit heard them 300 ms apart)."""
    song = tmp_path / "w.seq"
    song.write_text(WATCHED + 'pattern kb "a4" legato=1\n')
    session.load(song)
    session.execute("play")
    session.sound.sent.clear()
    assert session.reload(song, WATCHED.replace("level=0.5", "level=0.2") + 'pattern kb "e5" legato=1\n') == ""
    assert [m[0] for m in session.sound.sent] == ["replace_song"] and "level=0.2" in session.sound.sent[0][1]
    session.sound.sent.clear()
    session.execute("set a.level 0.3")                   # values alone still glide at once
    assert session.sound.sent == [("set", "a", "level", 0.3)]


def test_info_gives_a_note_lengths_value_at_the_tempo_of_the_bar_that_plays(registry, tmp_path):
    """docs/song-language.md: `info` shows a note length "with its value
    now", which in a playing song is at the tempo of its bar."""
    now = [0.0]
    session = Session(registry, Recorder(), clock=lambda: now[0])
    song = tmp_path / "echo.seq"
    song.write_text("tempo 90\nadd delay echo time=3/16\nconnect echo out\nat 9 tempo 120\nlength 12\n")
    session.execute(f"load {song}")
    shows = re.compile(r"\n  param  time +3/16 \((\S+) s at (\S+) BPM\) ")
    assert shows.search(session.execute("info echo")).groups() == ("0.5", "90")
    session.execute("play 9")
    assert shows.search(session.execute("info echo")).groups() == ("0.375", "120")
    now[0] = 3.0                                   # bar 10, half way: still 120
    assert shows.search(session.execute("info echo")).groups() == ("0.375", "120")
    session.execute("stop")
    assert shows.search(session.execute("info echo")).groups() == ("0.5", "90")


def test_a_cable_that_closes_a_feedback_loop_says_so(session):
    """The audit's filter fed back through a vca grew to full-scale noise
    with no word; a loop is a musician's to make, but not unknowingly."""
    run(session, "add vco a wave=saw freq=110", "add vcf f cutoff=800 res=0.3", "add vca v level=0.6",
        "connect a f", "connect f v")
    assert session.execute("connect v out") == ""
    assert session.execute("connect v f") == (
        "the cable v -> f closes a loop (v -> f -> v), through one block of delay: if it gains more than it "
        "loses, it grows to full scale (undo takes it back)")
    assert session.execute("connect a v.gain") == ""           # no way back from v to a
    said = session.execute("add vca w\nconnect f w\nconnect w f.cutoff")
    assert said.startswith("the cable w -> f closes a loop (w -> f -> w)") and said.count("closes a loop") == 1
    assert session.execute("connect v v.gain").startswith("the cable v -> v closes a loop (v -> v)")
    chain = "\n".join([f"add vca c{i}" for i in range(400)] + [f"connect c{i} c{i + 1}" for i in range(399)])
    said = session.execute(chain + "\nconnect c399 c0")                # a long loop, named short
    assert said.startswith("the cable c399 -> c0 closes a loop (c399 -> c0 -> c1 -> c2 -> (395 more) -> c398 -> "
                           "c399), through one block of delay"), said


def test_a_module_where_a_parameter_belongs_or_a_parameter_for_info_says_what_to_write(session):
    session.execute("add vco vco1")
    with pytest.raises(SynthError, match=re.escape("expected NAME.PARAM, got 'vco1': write vco1.PARAM "
                                                   "(`info vco1` lists them)")):
        session.execute("set vco1 300")
    with pytest.raises(SynthError, match=re.escape("info takes a module or module type, not one of its ports "
                                                   "or parameters: info vco1")):
        session.execute("info vco1.freq")
    with pytest.raises(SynthError, match=re.escape("no module or module type 'nosuch.freq'")):
        session.execute("info nosuch.freq")


def test_play_from_a_bar_past_the_songs_end_says_so(session):
    """`play 99` of a 16-bar song started in silence, without a word."""
    run(session, "add keys kb", "add vco o", "connect kb.voct o.voct", "connect o out", 'pattern kb "c3"',
        "length 16")
    assert session.execute("play 99") == ("the song is 16 bars long: bar 99 is past its end, and it plays on "
                                          "from there as it would after its last bar")
    assert session.execute("play 16") == ""


def test_an_edit_that_leaves_an_input_reading_high_unconnected_says_so(session):
    """`remove bass` turned a stopped song's silence into a held note with
    no word of why: the adsr's gate, with no cable, reads high."""
    run(session, "add keys kb", "add vco o", "add adsr env", "add vca amp", "connect kb.voct o.voct",
        "connect kb.gate env.gate", "connect o amp", "connect env amp.gain", "connect amp out")
    assert session.execute("remove kb") == ("env.gate has no cable now: unconnected it reads high, so the "
                                            "envelope attacks once and sustains")
    assert session.execute("disconnect o amp") == ""                     # an audio input reads 0: silence
    assert session.execute("remove env") == "amp.gain has no cable now: unconnected it reads 1"
    # Not where it changes nothing one hears (the review): a module that reaches no output,
    # or one whose gate, with no cable, never opens.
    run(session, "add keys k2", "add adsr e2", "connect k2.gate e2.gate")
    assert session.execute("disconnect k2.gate e2.gate") == ""
    run(session, "add pluck p", "connect k2.voct p.voct", "connect k2.gate p.gate", "connect k2.velocity p.velocity",
        "connect p out")
    assert session.execute("remove k2") == ""


def test_a_tempo_that_puts_a_note_length_out_of_range_is_named_where_it_was_typed(session):
    """A file names the line and column; the REPL said no place at all."""
    session.execute("add delay d time=1/8t")
    with pytest.raises(SynthError) as caught:
        session.execute("tempo 1")
    assert (caught.value.line, caught.value.col) == (1, 1)
    assert caught.value.message == "d.time=1/8t is 20 s at 1 BPM, out of range (0.001..2 s)"
    with pytest.raises(SynthError) as caught:
        session.execute("add vco o\ntempo 1")
    assert (caught.value.line, caught.value.col) == (2, 1) and "o" not in session.patch.modules


def test_a_meter_with_no_pattern_yet_says_it_is_kept_as_a_tempo_does(session):
    """`meter 3/4` on a patch alone changed nothing audible without a word,
    where `tempo` said it was kept."""
    assert session.execute("meter 3/4") == "the song has no pattern yet: the meter is kept for when it has one"
    assert session.timeline.lines()[0] == ["meter 3/4"]
    session.execute("add keys kb")
    session.execute('pattern kb "c3"')
    assert session.execute("meter 4/4") == ""                                # a song's meter, as ever


def test_audio_restart_picks_the_song_up_at_the_bar_it_has_come_to(registry):
    """The engine that `audio restart` starts plays the song from the bar
    the toolbar shows, not from the bar `play` named minutes ago."""
    now = [0.0]
    restarted = []

    class Restarting(Recorder):
        starting = False

        def restart(self, current, song_started, accepted):   # as Sound.restart, without an engine
            if self.starting:
                raise SynthError("the audio is starting: wait for 'audio on' or 'no audio'")
            accepted()
            restarted.append(current())
            return None

    session = Session(registry, Restarting(), clock=lambda: now[0])
    run(session, "add keys kb", "add vco o", "connect kb.voct o.voct", "connect o out", 'pattern kb "c3 e3"',
        "length 8", "play 2")
    now[0] = 5.0                                    # 120 BPM, 2 s a bar: bar 4, half way
    assert session.execute("audio restart") == "audio restarting"
    assert restarted[0][1] is not None and restarted[0][2] == 3   # from 0: bar 4
    assert session.transport.position(now[0]) == (4, 1)
    session.sound.starting, now[0] = True, 9.0      # refused: the song stays where it was
    with pytest.raises(SynthError, match="the audio is starting"):
        session.execute("audio restart")
    assert session.engine_state()[2] == 3 and len(restarted) == 1
    session.sound.starting = False
    session.execute("stop")
    assert session.execute("audio restart") == "audio restarting" and restarted[1][1:] == (None, 0)
    with pytest.raises(SynthError, match=re.escape("usage is 'audio [restart]'")):
        session.execute("audio start")


def test_a_file_name_no_file_can_have_is_refused_and_writes_nothing(session, tmp_path, monkeypatch):
    """A NUL cut the name short where soundfile opened it: `render
    keep.patch<NUL>.wav` overwrote keep.patch with a WAV. A name over 255
    bytes made every look at it raise: an internal error."""
    monkeypatch.chdir(tmp_path)
    keep = tmp_path / "keep.patch"
    keep.write_text("add vco o\nconnect o out\n")
    session.execute("load keep.patch")
    long = "a" * 256
    for line, problem in [("render keep.patch\x00.wav 0.1", "a file name cannot hold a NUL character"),
                          ("record keep.patch\x00.wav", "a file name cannot hold a NUL character"),
                          ("save a\x00", "a file name cannot hold a NUL character"),
                          ("load a\x00.seq", "a file name cannot hold a NUL character"),
                          (f"save {long}", "the file name is too long"),
                          (f"render {long}.wav", "the file name is too long"),
                          (f"load {long}.seq", "the file name is too long")]:
        with pytest.raises(SynthError, match=re.escape(problem)):
            session.execute(line)
    assert keep.read_text() == "add vco o\nconnect o out\n" and sorted(os.listdir(tmp_path)) == ["keep.patch"]


def test_a_choice_knob_turned_to_infinity_is_refused(session):
    """OSC's /synth/o/wave inf was dropped as an internal error (int() of
    an infinity), with no /synth/error for the client."""
    session.execute("add vco o wave=square")
    for value in (float("inf"), float("-inf"), float("nan"), 5.0, -1.0):
        with pytest.raises(SynthError, match="expected one of sine, saw, square, triangle, pulse"):
            session.knob("o", "wave", value)
    assert session.patch.modules["o"].params["wave"] == 2.0


def test_help_in_a_window_squeezed_to_a_sliver_still_prints_every_word(session):
    session.columns = lambda: 5
    words = " ".join(session.execute("help").split())
    assert all(" ".join(f"{c.syntax} {c.summary}".split()) in words for c in REPL_COMMANDS.values())
    assert "cutoff frequency" in session.execute("help ladder")


@pytest.mark.parametrize("width", [64, 100, 200])
def test_help_and_info_wrap_to_the_terminal_and_a_long_synopsis_takes_a_line_of_its_own(session, width):
    """The terminal broke help's lines mid-word at its edge, and the
    pattern command's synopsis (89 characters) set a column that left the
    summaries a sliver of a 120-column terminal. Without a terminal (a
    pipe, `synth help NAME > file`, the docs' tests) lines stay whole."""
    session.columns = lambda: width
    every = session.execute("help")
    commands = [*COMMANDS.values(), *REPL_COMMANDS.values()]
    long = {"  " + c.syntax for c in commands if len(c.syntax) > 40}
    assert long == {'  pattern TARGET "NOTATION" [legato=x] [vel=x] [swing=x] [swingunit=8|16] [scale=ROOT:NAME]'}
    assert long <= set(every.splitlines())
    words = " ".join(every.split())
    for c in commands:
        assert " ".join(f"{c.syntax} {c.summary}".split()) in words, c.syntax
    columns = {line.index(summary) for line in every.splitlines()
               for summary in ("change a parameter", "list the modules") if summary in line}
    # one column for both tables, or where it leaves too little room, each summary under its synopsis
    assert columns == {len("  map cc NUMBER NAME.PARAM [MIN MAX]  ") + 1 if width > 80 else 6}, columns
    run(session, "add vco o", "add comp squash", "connect o out")
    wide = ["info o"] if width >= 80 else []   # a vco's cells before its descriptions take 69 columns
    for command in ["help", "help pattern", "help ladder", "info ladder", "ls", *wide]:
        text = session.execute(command)
        assert max(len(line) for line in text.splitlines() if line not in long) < width, command
        session.columns = None
        assert " ".join(text.split()) == " ".join(session.execute(command).split()), command
        assert "-\n" not in text, command   # self-oscillates is one word
        session.columns = lambda: width


def test_top_wraps_a_long_reason_under_its_column(session):
    reason = "RuntimeError in process(): the plugin's table has no entry for a pitch this far below its range"
    module = {"type": "synthcli-oops:raises", "partition": 1, "mean_ms": 0.02, "max_ms": 0.1, "faults": 3,
              "restarts": 0, "quarantined": True, "reason": reason}
    session.sound.meters = {"xruns": 0, "underflows": 0, "played": 10, "cpu": {"0": 0.1, "1": 0.2},
                            "workers": {0: {"pid": 10, "modules": 1, "mean_ms": 0.1, "max_ms": 0.2, "missed": 0,
                                            "restarts": 0},
                                        1: {"pid": 11, "modules": 1, "mean_ms": 0.1, "max_ms": 0.2, "missed": 0,
                                            "restarts": 0}},
                            "modules": {"a": module}}
    session.columns = lambda: 100
    text = session.execute("top")
    assert max(map(len, text.splitlines())) < 100 and f"quarantined: {reason}" in " ".join(text.split())


def test_scope_names_what_is_wrong_in_one_line(session):
    run(session, "add vco osc1", "connect osc1 out")
    for line, message in (("scope osc", "no module 'osc', did you mean 'osc1'?"),
                          ("scope lfo1", "no module 'lfo1': `ls` lists the modules"),
                          ("scope osc1.gate", "module 'osc1' has no output 'gate': it has out"),
                          ("scope", "usage is 'scope NAME[.PORT]'"),
                          ("scope osc1", "the scope needs a terminal: run `synth` in one")):
        with pytest.raises(SynthError) as caught:
            session.execute(line)
        assert caught.value.message == message
    assert complete(session, "scope osc1.") == ["osc1.out"]


def test_a_scope_frame_fits_the_terminal_and_draws_the_signal():
    from synthcli.repl.scope import frame
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4096) / SR)
    lines = frame(tone, 80, 24, SR, "a.out", 7)
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    head = lines[0].split()
    assert head[:6] == ["scope", "a.out", "frame", "7", "peak", "-6.0"] and abs(float(head[8]) - 440) < 0.5
    assert lines[0].endswith("(q, Esc, Enter: back)")     # the way out fits in 80 columns
    wave = lines[1:11]                                       # (24 - 3) // 2 rows of braille
    blank = "\u2800" * 80
    assert wave[0] == blank and wave[-1] == blank             # half scale leaves the edges empty...
    assert wave[3] != blank and wave[6] != blank              # ...and fills the middle
    bars = lines[12:23]
    tallest = max(range(80), key=lambda col: sum(line[col] != " " for line in bars))
    column_hz = 20 * (SR / 2 / 20) ** (np.array([tallest, tallest + 1]) / 80)
    assert column_hz[0] <= 440 <= column_hz[1]               # the spectrum's peak sits at 440 Hz


# -- completion, highlighting, toolbar ---------------------------------------------------

def complete(session, text):
    return [c.text for c in ReplCompleter(session).get_completions(Document(text), None)]


def test_completion_offers_what_fits_where_the_cursor_is(session, tmp_path, monkeypatch):
    run(session, "add vco osc1", "add vcf f1", "add keys kb", "connect osc1 f1")
    assert complete(session, "co") == ["connect"] and "undo" in complete(session, "")
    assert complete(session, "add vc") == ["vca", "vcf", "vco"] and "out" not in complete(session, "add ")
    assert complete(session, "add vco ") == ["vco1"]
    assert complete(session, "add vco osc2 ") == ["freq=", "wave=", "pw=", "fmdepth="]
    assert complete(session, "add vco osc2 wave=saw ") == ["freq=", "pw=", "fmdepth="]
    assert complete(session, "add vco osc2 wave=s") == ["sine", "saw", "square"]
    assert complete(session, "connect osc1.") == ["osc1.out"]
    assert complete(session, "connect osc1 f1.") == ["f1.in", "f1.cutoff", "f1.res", "f1.mode"]
    assert complete(session, "connect osc1 kb.") == []   # voices shapes the module: no cable changes it
    assert complete(session, "connect o") == ["out", "osc1"]
    assert complete(session, "set f") == ["f1."] and complete(session, "set f1.m") == ["f1.mode"]
    assert complete(session, "set f1.mode ") == ["lowpass", "highpass", "bandpass", "notch"]
    assert complete(session, "set f1.cutoff ") == ["1000"]
    assert complete(session, "pattern f") == ["f1."]    # what has a parameter to turn, not only note sources
    assert complete(session, "pattern ")[0] == "kb" and "osc1." in complete(session, "pattern ")
    assert complete(session, "pattern f1.") == ["f1.cutoff", "f1.res", "f1.mode"]
    timed = complete(session, "at 3 ")   # what `at` takes, nothing it refuses
    for command in timed:
        with pytest.raises(SynthError) as refused:   # each lacks its arguments, but `at` takes it
            session.execute(f"at 3 {command}")
        assert "holds for the whole file" not in str(refused.value), command
    assert "set" in timed and not {"at", "length", "require", "map", "midiout"} & set(timed)
    assert complete(session, "at 3 se") == ["set"] and complete(session, "at 3 set osc1.f") == ["osc1.freq",
                                                                                                "osc1.fmdepth"]
    assert complete(session, "remove ") == ["osc1", "f1", "kb"]
    assert complete(session, "help und") == ["undo"] and complete(session, 'pattern kb "c3 e') == []
    assert complete(session, "help ou") == ["out"] and session.execute("help out").startswith("out")   # help takes it
    assert "kb" not in complete(session, "help ")   # a module is for info, which help does not take
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "demo.seq").write_text("")
    monkeypatch.chdir(tmp_path)
    assert complete(session, "load so") == ["ngs"] and complete(session, "load songs/d") == ["emo.seq"]
    assert complete(session, "add sampler s file=songs/d") == ["emo.seq"]      # a file parameter takes a path
    run(session, "add sampler s")
    assert complete(session, "set s.file songs/") == ["demo.seq"] and complete(session, "set s.f") == ["s.file"]
    assert complete(session, "connect osc1 s.") == ["s.voct", "s.gate", "s.velocity", "s.mode", "s.tune",
                                                    "s.start", "s.end", "s.reverse", "s.level"]   # no cable reaches a file
    assert complete(session, "pattern s.") == ["s.mode", "s.tune", "s.start", "s.end", "s.reverse", "s.level"]


def test_highlighting_marks_commands_types_and_mistakes(registry):
    lexer = ReplLexer(registry)
    styles = dict((text, style) for style, text in lexer.fragments('add vfc f1 cutoff=800  # a comment'))
    assert styles["add"] == "class:command" and styles["vfc"] == "class:unknown"
    assert styles["cutoff"] == "class:param" and styles["800"] == "class:number"
    assert styles["# a comment"] == "class:comment"
    styles = dict((text, style) for style, text in lexer.fragments('at 9 pattern kb "c3 e3" legato=0.5'))
    assert styles["pattern"] == "class:command" and styles['"c3 e3"'] == "class:string"
    assert styles["kb"] == "class:module" and lexer.fragments("ls")[0] == ("class:repl", "ls")
    assert "".join(t for _, t in lexer.fragments("connect osc1.out  f1 ")) == "connect osc1.out  f1 "
    pieces = [text for _, text in lexer.fragments("set o.freq c#4  #c sharp")]
    assert "c#4" in pieces and pieces[-1] == "#c sharp"     # a sharp inside a word, a comment at its start
    styles = dict((text, style) for style, text in lexer.fragments("at 2 set o.wave saw"))
    assert styles["o"] == "class:module" and styles["wave"] == "class:port" and styles["saw"] == "class:value"
    assert dict((t, s) for s, t in lexer.fragments("set o.freq c#4"))["c#4"] == "class:value"


def test_the_transport_counts_bars_and_beats_through_tempo_changes(registry):
    def song(bpm):
        return Song(registry, f"tempo {bpm}\nmeter 3/4\n")
    transport = Transport()
    transport.play(song(120), now=10.0)               # a 3/4 bar at 120 BPM lasts 1.5 s
    assert transport.position(10.0) == (1, 1) and transport.position(11.2) == (1, 3)
    assert transport.position(13.0) == (3, 1)
    transport.replace(song(60), now=13.2)             # from bar 4 on (at 14.5 s), a bar lasts 3 s
    assert transport.position(14.4) == (3, 3) and transport.tempo(14.4)[0] == 120
    assert transport.position(14.5) == (4, 1) and transport.position(17.6) == (5, 1)
    assert transport.tempo(17.6) == (60, (3, 4))


def test_the_toolbar_and_the_fault_lines(session):
    meters = {"xruns": 2, "underflows": 0, "played": 10, "peak": [0.5, 0.25], "cpu": {"0": 0.12, "1": 0.31},
              "workers": {0: {"pid": 10, "restarts": 0}, 1: {"pid": 11, "restarts": 0}},
              "modules": {"a": {"faults": 0, "quarantined": False, "reason": ""}}, "faults": {}}
    session.sound.meters = meters
    text = "".join(t for _, t in Toolbar(session, session.sound, lambda: 0.0)())
    assert "■ patch" in text and "cpu  31%" in text and "xruns 2" in text and "[██████▉ ]  -6 dB" in text
    assert "rec" not in text
    session.sound.take = Take("take.wav", SR)
    session.sound.take.frames = 75 * SR + SR // 2
    assert "● rec 1:15" in "".join(t for _, t in Toolbar(session, session.sound, lambda: 0.0)())
    assert level_meter(0.0).endswith("silent") and level_meter(1.2).endswith("CLIP")
    # A reverb's tail dying away in float arithmetic reads silent, not "-1207 dB", at one width.
    assert level_meter(10 ** (-1207 / 20)) == level_meter(1e-5) == level_meter(0.0)
    assert level_meter(10 ** (-98 / 20)).endswith(" -98 dB")
    # The master's soft clip keeps its output under 1.0: a mix over full
    # scale must still read CLIP, and one just under it must not.
    for amplitude, clipped in ((0.99, False), (1.0, False), (1.01, True), (3.0, True)):
        patch = Patch(session.registry)
        patch.load_text(f"add vco a wave=sine freq=100\nconnect a out\nset out.level {amplitude}\n")
        with Engine(session.registry, SR, BLOCK) as engine:
            engine.load(patch)
            peak = max(np.abs(engine.process_block()).max() for _ in range(40))
        assert level_meter(float(peak)).endswith("CLIP") == clipped, (amplitude, peak)
    assert len({len(level_meter(10 ** (-db / 20))) for db in range(0, 200, 7)}) == 1
    worse = {**meters, "workers": {0: {"pid": 10, "restarts": 0}, 1: {"pid": 12, "restarts": 1}},
             "modules": {"a": {"faults": 3, "quarantined": True, "reason": "RuntimeError in process(): boom",
                               "type": "synthcli-oops:raises", "package": "synthcli-oops 0.1.0"},
                         "f": {"faults": 1, "quarantined": False, "reason": "output was NaN or Inf",
                               "type": "vcf", "package": ""}}}
    assert news(meters, worse) == ["module 'a' (raises, from synthcli-oops 0.1.0) failed "
                                   "(RuntimeError in process(): boom); quarantined: it stays silent",
                                   "module 'f' (vcf) failed (output was NaN or Inf); it plays on",
                                   "worker 1 was replaced (pid 11 -> 12); its modules play on"]
    assert news(worse, worse) == []
    gone = {**meters, "workers": {0: {"pid": 10, "restarts": 0}, 1: {"pid": 11, "restarts": 1, "vacant": True}}}
    assert news(meters, gone) == ["worker 1 (pid 11) is gone and no spare is ready yet: its modules are silent "
                                  "until one is, in a few seconds"]    # not "replaced (pid 11 -> 11)"
    assert news(gone, worse) == ["module 'a' (raises, from synthcli-oops 0.1.0) failed "
                                 "(RuntimeError in process(): boom); quarantined: it stays silent",
                                 "module 'f' (vcf) failed (output was NaN or Inf); it plays on",
                                 "worker 1 is back (pid 12); its modules play on"]
    # A module slower than real time is named once, when its mean first passes
    # the block, and not while its first blocks (a kernel compiling) dominate it.
    def reading(mean_ms, blocks):
        a = {**meters["modules"]["a"], "mean_ms": mean_ms, "blocks": blocks, "type": "vco", "package": ""}
        return {**meters, "block_ms": 5.33, "modules": {"a": a}}
    fast, compiling, slower = reading(0.2, 400), reading(80.0, 12), reading(12.1, 400)
    assert news(fast, slower) == news(compiling, slower) == [
        "module 'a' (vco) takes 12.10 ms to render each 5.33 ms block: the sound cannot keep up"]
    assert news(slower, slower) == news(fast, compiling) == news(fast, fast) == []
    session.sound.meters = worse
    assert "quarantined: a" in "".join(t for _, t in Toolbar(session, session.sound, lambda: 0.0)())


# -- the REPL in a real terminal -----------------------------------------------------------

class Terminal:
    """The REPL in a real terminal: tmux runs it in a 110x36 pane, keys go
    in as a musician types them and the screen comes back as text."""

    def __init__(self, state: Path, *args: str, audio: str | None = None, stderr: Path | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="synth-tty-")      # unix socket paths must stay short
        self.socket = os.path.join(self.dir, "tmux")
        env = {**os.environ, "XDG_STATE_HOME": str(state), "JACK_NO_AUDIO_RESERVATION": "1",
               "JACK_DEFAULT_SERVER": audio or "synthcli-no-such-server", "JACK_NO_START_SERVER": "1"}
        self.status = os.path.join(self.dir, "status")
        # The shell around the REPL keeps its exit status: tmux may not reap a pane's process in time.
        command = " ".join([shlex.quote(sys.executable), "-m", "synthcli.repl", *map(shlex.quote, args),
                            *(["2>", shlex.quote(str(stderr))] if stderr else []), "; echo $? >", self.status])
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-x", "110", "-y", "36", "-c", str(ROOT),
                        command, ";", "set-option", "-g", "remain-on-exit", "on"], env=env, check=True)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True).stdout

    def screen(self, colours: bool = False) -> str:
        return self.tmux("capture-pane", "-p", "-J", *(["-e"] if colours else []))

    def wait_for(self, text: str | re.Pattern, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if (text.search(screen) if isinstance(text, re.Pattern) else text in screen):
                return screen
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def history(self) -> list[str]:
        """Every line the REPL has shown, scrolled away or not."""
        return [line.rstrip() for line in self.tmux("capture-pane", "-p", "-J", "-S", "-").splitlines()]

    def type(self, line: str, then: str | None = None) -> str:
        """Type a line and press Enter; wait for ``then``, or else for the
        prompt that follows the line's output."""
        echo = f"synth> {line}"
        before = self.history().count(echo)
        self.tmux("send-keys", "-l", line)
        self.keys("Enter")
        if then is not None:
            return self.wait_for(then)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            lines = self.history()
            if lines.count(echo) > before and "synth>" in lines[len(lines) - lines[::-1].index(echo):]:
                return self.screen()
            time.sleep(0.02)
        raise AssertionError(f"no prompt after {line!r}; the screen:\n{self.screen()}")

    def complete(self, text: str, expected: str) -> None:
        """Type, pause as a person would, press Tab, and wait to see ``expected``."""
        self.tmux("send-keys", "-l", text)
        time.sleep(0.1)
        self.keys("Tab")
        self.wait_for(expected)

    def paste(self, text: str) -> None:
        """Paste as a terminal does (bracketed, since the REPL asks for it)."""
        self.tmux("set-buffer", "-b", "clip", "--", text)
        self.tmux("paste-buffer", "-p", "-d", "-b", "clip")

    @property
    def pid(self) -> int:
        """The REPL's process (the shell around it is the pane's)."""
        shell = self.tmux("display-message", "-p", "#{pane_pid}").strip()
        return int(subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()[0])

    def exit_status(self, timeout: float = 30.0) -> int:
        """The exit status as the shell saw it (128 + N for signal N)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.status):
                text = Path(self.status).read_text()
                if text.endswith("\n"):
                    return int(text)
            time.sleep(0.05)
        raise AssertionError(f"the REPL did not exit; the screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def terminal():
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (Debian: apt-get install tmux)")
    opened = []

    def start(*args, **kw):
        opened.append(Terminal(*args, **kw))
        return opened[-1]
    yield start
    for term in opened:
        term.close()


def test_prompt_first_then_edits_errors_and_completion(terminal, tmp_path):
    term = terminal(tmp_path / "state")
    term.wait_for("synth>")
    term.wait_for("no audio: no audio output device found")
    assert term.screen().count("no audio:") == 1
    term.type("help ladder", then="for grit")                 # wrapped by help itself, between words:
    joined, rows = (term.tmux("capture-pane", "-p", *join).split("synth> help ladder")[1].split("for grit")[0]
                    for join in (["-J"], []))    # up to help's last words: the toolbar may change between captures
    no_edge = [row.rstrip() for row in joined.splitlines()]        # no line reached the edge
    assert [row.rstrip() for row in rows.splitlines()] == no_edge
    term.type("add vco osc1 wave=saw freq=110")
    term.type("connect osc1 out")
    term.type("set os1.freq 220", then="column 5: unknown module 'os1', did you mean 'osc1'?")
    assert "\x1b[31mcolumn 5: unknown module 'os1', did you mean 'osc1'?" in term.screen(colours=True)
    term.type("scope osc1", then="the scope shows what the engine plays, and there is no audio: ")
    term.complete("connect osc1.", "synth> connect osc1.out")
    prompts = term.screen().count("synth>")
    term.keys("C-c")                                        # Ctrl-C drops the line...
    while term.screen().count("synth>") == prompts:
        time.sleep(0.02)
    term.complete("add vco osc2 w", "synth> add vco osc2 wave=")
    term.complete("s", "square")                            # three choices: a menu
    term.complete("i", "synth> add vco osc2 wave=sine")
    term.keys("Enter")
    screen = term.type("ls", then="cables")
    assert "osc2  vco  freq=261.626 wave=sine" in term.wait_for("osc1.out -> out.in")
    assert screen.count(" -> ") == 1                        # ...and changed nothing
    term.type("add keys kb")
    term.type('pattern kb "c4 e4 g4 c5 e5 g5 [c6 e6 g6 c4 e4 g4 c5"',   # a long line's error says where it is
              then="column 31: unbalanced '[': a closing ']' is missing")
    assert "Traceback" not in term.screen()
    term.keys("C-d")
    assert term.exit_status() == 0


@pytest.mark.parametrize("how", ["file", "pipe"])
def test_lines_from_a_file_or_a_pipe_run_as_a_script(tmp_path, how):
    """`synth repl < cmds.txt` quit at once, in silence and with status 0:
    prompt_toolkit read nothing from a file. A pipe ran, with the prompt,
    the toolbar and colour escapes written among the answers. Both are now
    read line by line: a failing line is named by its number, the rest
    still run, and the status says one failed."""
    script = tmp_path / "cmds.txt"
    script.write_text(f"add vco a\nconnect a out\nset a.freq zz\nsave {tmp_path / 'x.patch'}\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    command = [sys.executable, "-m", "synthcli.repl"]
    with open(script) as lines:
        done = (subprocess.run(command, stdin=lines, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
                if how == "file" else
                subprocess.run(command, input=script.read_text(), capture_output=True, text=True, env=env, cwd=ROOT,
                               timeout=60))
    assert done.returncode == 1, done
    said = [line for line in done.stdout.splitlines()   # what the audio says depends on the machine
            if not line.startswith(("no audio:", "audio on:", "stopped:"))]
    assert said == ["line 3: column 12: bad value 'zz' for vco.freq: expected a number, a note name such as a4 or "
                    "a note length such as 1/8d (0.01..20000 Hz)",
                    f"saved {tmp_path / 'x.patch'} (patch: 1 module, 1 cable)"], done
    assert "\x1b" not in done.stdout + done.stderr and "synth>" not in done.stdout
    assert (tmp_path / "x.patch").read_text() == "add vco a\nconnect a.out out.in\n"


def test_a_render_at_the_prompt_leaves_it_free_and_quit_ends_it_with_a_valid_file(terminal, tmp_path):
    """In a real terminal: while a long render runs the prompt takes
    edits, the toolbar shows how far it is, and `quit` ends it, saying
    what the file holds."""
    term = terminal(tmp_path / "state")
    term.wait_for("synth>")
    term.type("add vco osc1 wave=sine freq=220")
    term.type("connect osc1 out")
    long = tmp_path / "long.wav"
    term.type(f"render {long} 3000", then=f"rendering {long} beside the prompt")
    term.wait_for(re.compile(r" render \d+% "))               # the toolbar's percentage
    term.type("set osc1.freq 440")
    term.type("ls", then="freq=440")
    term.type("quit", then="render interrupted: ")
    assert term.exit_status() == 0
    seconds = soundfile.info(str(long)).frames / SR
    assert f"render interrupted: {long} holds the first {seconds:.2f} s" in " ".join(term.history())
    assert 0 < seconds < 3000
    assert peak_frequency(soundfile.read(str(long))[0][:, 0], SR) == pytest.approx(220, abs=2)


def test_paste_undo_redo_save_load_and_the_transport(terminal, tmp_path):
    term = terminal(tmp_path / "state")
    term.wait_for("synth>")
    term.paste("add keys kb voices=2\nadd vco osc1 wave=sine\nconnect kb.voct osc1.voct\nconnect osc1 out\n"
               "tempo 240\nlength 2\npattern kb \"c4 e4\"\n")
    term.keys("Enter")
    term.type("undo", then="undid a block of 7 commands")
    term.type("ls", then="(none: `connect NAME out` to hear a module)")
    term.type("redo", then="redid a block of 7 commands")
    a, b = tmp_path / "a.seq", tmp_path / "b.seq"
    term.type(f"save {a}", then=f"saved {a} (song: 2 bars, 1 pattern, 2 modules, 2 cables)")
    term.type(f"load {a}")
    term.type(f"save {b}", then=f"saved {b}")
    assert a.read_bytes() == b.read_bytes()
    assert "▶" not in term.screen()
    term.type("play")
    term.wait_for("▶ 240 BPM 4/4  bar 1:")
    term.wait_for("bar 2:")                                 # a bar lasts one second at 240 BPM
    term.type("stop")
    term.wait_for("■ 240 BPM 4/4")
    term.type("quit", then="synth> quit")
    assert term.exit_status() == 0
    history = (tmp_path / "state" / "synthcli" / "history").read_text()
    assert "\n+play\n" in history and '+pattern kb "c4 e4"\n' in history   # kept for the next session


def test_a_killed_repl_resumes_from_its_journal(terminal, tmp_path):
    song = tmp_path / "short.seq"
    song.write_text(SHORT_DEMO)
    term = terminal(tmp_path / "state", str(song))
    term.wait_for("synth>")
    for line in ("set padf.cutoff 1234", "add lfo wob2 freq=3", "connect wob2 padf.cutoff", "tempo 99",
                 "remove bogus", "undo"):
        term.type(line)
    expected, resumed = tmp_path / "expected.seq", tmp_path / "resumed.seq"
    term.type(f"save {expected}", then="saved")
    os.kill(term.pid, signal.SIGKILL)
    assert term.exit_status() == 128 + signal.SIGKILL
    journal = journals.latest(tmp_path / "state" / "synthcli")
    with open(journal, "a") as out:   # a plugin's module, the plugin gone since
        out.write('{"edit": "add fold z"}\n')
    again = terminal(tmp_path / "state", "--resume")
    again.wait_for(f"warning: journal entry {len(journals.read(journal))} fails now, and changes nothing: "
                   "column 5: unknown module type 'fold'")
    again.wait_for("resumed ")
    again.type(f"save {resumed}", then="saved")
    assert resumed.read_text() == expected.read_text() and "tempo 120\n" in resumed.read_text()
    again.type("undo", then="undid a change that failed on resume")
    again.type("undo", then="undid connect wob2 padf.cutoff")    # the history came back too
    again.type("quit", then="synth> quit")
    assert again.exit_status() == 0


def test_a_set_reaches_the_server_and_a_killed_worker_is_reported(terminal, jack_server, portaudio_ports, tmp_path):
    term = terminal(tmp_path / "state", audio=jack_server)
    term.wait_for("synth>")
    term.type("add vco osc1 wave=sine freq=220")
    term.type("connect osc1 out")
    term.type("set out.level 0.5")
    term.wait_for("audio on: device")
    ports = portaudio_ports()
    taken = tmp_path / "server.wav"
    recorder = threading.Thread(target=subprocess.run, args=(["jack_rec", "-f", str(taken), "-d", "3", *ports],),
                                kwargs={"capture_output": True, "timeout": 20})
    recorder.start()
    time.sleep(1.5)
    term.type("set osc1.freq 440")
    recorder.join()
    data, sr = soundfile.read(str(taken))
    assert abs(peak_frequency(data[int(0.1 * sr):int(1.0 * sr), 0]) - 220.0) < 1.0
    assert abs(peak_frequency(data[-sr:, 0]) - 440.0) < 1.0
    assert 0.45 < np.abs(data[-sr:, 0]).max() < 0.55
    term.wait_for(" xruns ")                                # the toolbar has the meters
    screen = term.type("top", then="(engine)")
    worker = next(line.split() for line in screen.splitlines() if line.startswith("1 "))
    os.kill(int(worker[1]), signal.SIGKILL)
    term.wait_for(f"worker 1 was replaced (pid {worker[1]} -> ")
    term.type("info osc1", then="osc1: vco")                # the REPL goes on
    term.type("devices", then="(JACK Audio Connection Kit, 2 out, 48000 Hz)")
    term.type("quit", then="stopped: ")
    assert term.exit_status() == 0


def test_a_sound_server_that_quits_leaves_the_repl_editing_and_audio_restart_brings_it_back(
        terminal, jack_server, portaudio_ports, tmp_path):
    # Fixed server names: a killed server's slot in JACK's registry is reclaimed by the next of its name.
    with jack_dummy_server("synthcli-repl-quits") as name:
        term = terminal(tmp_path / "state", audio=name)
        term.type("add vco osc1 wave=sine freq=220")
        term.type("connect osc1 out")
        term.wait_for("audio on: device")
        # Asked in the REPL's own process, PortAudio kept listing a server gone since, and
        # aborted the REPL's exit (status 134, an assertion in its JACK host API).
        term.type("devices", then="(JACK Audio Connection Kit, 2 out, 48000 Hz)")
        server = int(subprocess.run(["pgrep", "-f", f"jackd -n {name}"], capture_output=True).stdout.split()[0])
        os.kill(server, signal.SIGKILL)
        os.waitpid(server, 0)   # reaped, else its name is taken ("server already active") while it is a zombie
        term.wait_for("no audio: the audio stopped: the sound server quit or the device went away")
        term.type("devices", then="no output devices: start a sound server")
        term.type("set osc1.freq 440")
        term.type("info osc1", then="param  freq     440 Hz")
        term.type("audio", then="no audio: the audio stopped: the sound server quit or the device went away")
        with jack_dummy_server(name):   # the server is back: the session plays again, as it now stands
            term.type("audio restart", then="audio restarting")
            term.wait_for(re.compile(r"audio restarting\n(?:.*\n)*?audio on: device"))
            term.type("audio", then="synth> audio\naudio on: device")
            taken = tmp_path / "back.wav"
            subprocess.run(["jack_rec", "-f", str(taken), "-d", "1", *portaudio_ports()], capture_output=True,
                           timeout=20, check=True)
            term.type("quit", then="synth> quit")
            assert term.exit_status() == 0
    data, sr = soundfile.read(str(taken))
    assert abs(peak_frequency(data[:, 0]) - 440.0) < 1.0 and np.abs(data[:, 0]).max() > 0.5


def sounding(term):
    """A sine playing in the REPL of ``term``; the shared memory it uses."""
    term.type("add vco osc1 wave=sine freq=220")
    term.type("connect osc1 out")
    term.wait_for("audio on: device")
    return {n for n in shared_memory_of(term.pid) if n.startswith("synthcli_")}


def test_a_killed_engine_leaves_the_repl_editing_and_nothing_to_clean_up(terminal, jack_server, tmp_path):
    term = terminal(tmp_path / "state", audio=jack_server)
    used = sounding(term)
    engine = next(line.split() for line in term.type("top", then="(engine)").splitlines() if line.startswith("0 "))
    os.kill(int(engine[2]), signal.SIGKILL)
    term.wait_for("no audio: the engine process was killed (SIGKILL)")
    assert used and used & set(os.listdir("/dev/shm")) == set()   # unlinked at once, not at exit
    term.type("info osc1", then="osc1: vco")
    term.type("quit", then="synth> quit")
    assert term.exit_status() == 0
    assert "resource_tracker" not in term.screen() and "leaked" not in term.screen()


def test_a_hang_up_as_the_sound_server_dies_leaves_no_shared_memory(terminal, jack_server, tmp_path):
    """A closed terminal often takes the JACK server it started with it:
    the REPL is hung up while PortAudio's stop() can no longer return."""
    with jack_dummy_server("synthcli-repl-hangup") as name:
        term = terminal(tmp_path / "state", audio=name)
        used = sounding(term)
        assert used
        subprocess.run(["pkill", "-KILL", "-f", f"jackd -n {name}"], check=True)
        os.kill(term.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while used & set(os.listdir("/dev/shm")) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert used & set(os.listdir("/dev/shm")) == set()


@pytest.mark.parametrize("screen", ["prompt", "scope"])
def test_sigterm_ends_the_repl_from_the_prompt_or_the_scope(terminal, jack_server, tmp_path, screen):
    """A SIGTERM (a system shutting down, a process manager) ends the
    REPL as Ctrl-D would, with status 143, whichever screen it is on."""
    term = terminal(tmp_path / "state", audio=jack_server)
    used = sounding(term)
    if screen == "scope":
        term.tmux("send-keys", "-l", "scope osc1")
        term.keys("Enter")
        term.wait_for("scope osc1.out  frame ")
    os.kill(term.pid, signal.SIGTERM)
    assert term.exit_status() == 128 + signal.SIGTERM
    assert used and used & set(os.listdir("/dev/shm")) == set()
    assert "Traceback" not in "\n".join(term.history())


def test_osc_plays_on_while_the_scope_is_up(terminal, jack_server, tmp_path):
    """The scope is up until a key is pressed, inside the command that
    opened it: it held the session for as long, and a knob, a MIDI key or
    an OSC message waited behind it, the tempo of a clock followed too."""
    if not shutil.which("oscsend"):
        pytest.skip("oscsend is not installed (Debian: apt-get install liblo-tools)")
    term = terminal(tmp_path / "state", audio=jack_server)
    sounding(term)
    port = free_udp_port()
    term.type(f"osc listen {port}", then="listening for OSC")
    term.tmux("send-keys", "-l", "scope osc1")
    term.keys("Enter")
    term.wait_for(re.compile(r"scope osc1.out  frame .* strongest 2[12]\d\.\d Hz"))
    subprocess.run(["oscsend", "127.0.0.1", str(port), "/synth/set", "sf", "osc1.freq", "880.0"], check=True)
    term.wait_for(re.compile(r"scope osc1.out  frame .* strongest 8[78]\d\.\d Hz"), timeout=5)   # heard under it
    term.keys("q")
    term.type("info osc1", then=re.compile(r"param +freq +880 Hz"))


def test_two_hang_ups_close_together_still_stop_the_engine(terminal, jack_server, tmp_path):
    """Closing a terminal can send two hang-ups milliseconds apart (the
    terminal's and the kernel's). The second used to land while the first
    was closing the OSC server, before signals were ignored: it cut the
    stop short, and the REPL waited for ever on an engine that played on."""
    term = terminal(tmp_path / "state", audio=jack_server)
    used = sounding(term)
    term.type(f"osc listen {free_udp_port()}", then="listening for OSC")
    pid = term.pid
    engine = next(line.split() for line in term.type("top", then="(engine)").splitlines() if line.startswith("0 "))
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.02)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while (os.path.exists(f"/proc/{pid}") or os.path.exists(f"/proc/{engine[2]}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{engine[2]}"), "the engine plays on"
    assert not os.path.exists(f"/proc/{pid}"), "the REPL is still running"
    assert used and used & set(os.listdir("/dev/shm")) == set()


def test_closing_the_terminal_under_the_scope_ends_quietly_and_cleans_up(terminal, jack_server, tmp_path):
    """The window closes while the scope draws: the terminal hangs up under
    a write. The REPL ends (no process spins on), unlinks its shared
    memory, and writes no traceback into a stderr sent to a file. Closing
    tmux by hand left a traceback in 5 of 8 tries and once a REPL spinning
    for ever; here the race is rarely lost, so the goodbye that always
    fails is tested in tests/test_cli.py, and this is the whole path."""
    log = tmp_path / "stderr.log"
    term = terminal(tmp_path / "state", audio=jack_server, stderr=log)
    used = sounding(term)
    pid = term.pid
    term.tmux("send-keys", "-l", "scope osc1")
    term.keys("Enter")
    term.wait_for("scope osc1.out  frame ")
    time.sleep(0.3)
    term.tmux("kill-server")
    deadline = time.monotonic() + 20
    while (os.path.exists(f"/proc/{pid}") or used & set(os.listdir("/dev/shm"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the REPL is still running after its terminal closed"
    assert used and used & set(os.listdir("/dev/shm")) == set()
    assert "Traceback" not in log.read_text(), log.read_text()


def live_session(registry, tmp_path, take, *lines):
    """A session typed ``lines`` and then started its sound on the JACK
    server (worker processes, --latency normal), recording to ``take``
    (None: not from the start)."""
    from synthcli.repl.sound import Sound
    said = []
    sound = Sound({"samplerate": SR, "blocksize": BLOCK, "latency": "normal", "device": None,
                   "executor": "processes", "workers": 1, "safe_mode": True, "blocks": None,
                   "record": str(take) if take else None},
                  lambda text, kind="": said.append(text))
    session = Session(registry, sound, journals.Journal(tmp_path / "state"))
    run(session, *lines)
    sound.start(session.engine_state, session.heard_from_now)
    deadline = time.monotonic() + 20
    while sound.status != "audio on" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sound.status == "audio on", said
    return session, sound


@pytest.mark.parametrize("typed", ["playing", "starting"])
def test_play_bar_starts_the_song_at_that_bar_on_the_server(jack_server, registry, tmp_path, typed):
    """`play 3` in a song of 1-second bars: the first note heard is bar 3's
    g4 of "<c4 e4 g4 a4>", then bar 4's a4, a second later; also when it
    was typed while the audio was starting, and then the toolbar counts
    bar 3 from when the audio came up, not from the `play`."""
    take = tmp_path / "take.wav"
    before = ["play 3"] if typed == "starting" else []
    typed_at = time.monotonic()
    session, sound = live_session(registry, tmp_path, take, "tempo 240", "length 4", "add keys kb voices=1",
                                  "add vco o wave=sine", "add vca v level=0.5", "connect kb.voct o.voct",
                                  "connect kb.gate v.gain", "connect o v", "connect v out",
                                  'pattern kb "<c4 e4 g4 a4>" legato=0.9', *before)
    if typed == "starting":
        (bar, started, _), = session.transport.segments
        assert bar == 2 and started > typed_at + 0.05, (started - typed_at)   # the engine takes longer to start
        assert session.transport.position(time.monotonic())[0] == 3
    try:
        if typed == "playing":
            time.sleep(0.3)
            assert session.execute("play 3") == ""
        time.sleep(2.5)
    finally:
        final = sound.stop()
    data, _ = soundfile.read(str(take))
    heard = np.flatnonzero(np.abs(data[:, 0]) > 0.05)
    first = heard[0]
    assert abs(peak_frequency(data[first + 2000:first + 30000, 0]) - 392.0) < 2.0      # g4: bar 3
    assert abs(peak_frequency(data[first + SR + 2000:first + SR + 30000, 0]) - 440.0) < 2.0   # a4: bar 4
    assert final["xruns"] == 0


def test_a_set_is_heard_within_three_blocks_of_enter(jack_server, registry, tmp_path):
    """Enter runs Session.execute: parse, check, journal (fsync), send. The
    change is heard after the blocks already queued (two at --latency normal)."""
    from synthcli.audio.ring import PLAYED, Ring
    take = tmp_path / "take.wav"
    session, sound = live_session(registry, tmp_path, take,
                                  "add vco a wave=sine freq=300", "add vca v level=0.2", "connect a v", "connect v out")
    info = sound.player.info
    ring = Ring(info["slots"], BLOCK, name=info["ring"])
    try:
        time.sleep(0.5)
        before = int(ring.header[PLAYED])
        began = time.perf_counter()
        session.execute("set v.level 0.8")
        took = time.perf_counter() - began
        time.sleep(0.5)
    finally:
        ring.close()
        final = sound.stop()
    assert final["xruns"] == 0
    data, _ = soundfile.read(str(take))
    data = data[:len(data) // BLOCK * BLOCK]   # the take ends where the stop's fade does
    levels = np.abs(data[:, 0]).reshape(-1, BLOCK).max(axis=1)
    blocks = int(np.flatnonzero(levels > 0.3)[0]) - before
    print(f"Enter to output: {1e3 * took:.2f} ms in the REPL, then {blocks} blocks "
          f"({1e3 * blocks * BLOCK / SR:.1f} ms) to the device, plus its own latency")
    assert blocks <= 3, blocks


def test_typed_edits_fade_in_and_out_instead_of_clicking(jack_server, registry, tmp_path):
    """disconnect, connect, remove and a pasted block that adds the tone
    back, typed while it plays: each takes the sine out or brings it in
    over one block, where each cut the sound (a step 15 times the sine's
    steepest). Worker processes rebuild twice an edit, without an xrun."""
    take = tmp_path / "take.wav"
    session, sound = live_session(registry, tmp_path, take,
                                  "add vco a wave=sine freq=300", "add vca v level=0.5", "connect a v", "connect v out")
    try:
        for line in ("disconnect v out", "connect v out", "remove v", "add vca v level=0.5\nconnect a v\n"
                     "connect v out"):
            time.sleep(0.3)
            assert session.execute(line) == "", line
        time.sleep(0.3)
    finally:
        final = sound.stop()
    assert final["xruns"] == 0
    data = soundfile.read(str(take))[0][:, 0]
    sounds = np.abs(data[:len(data) // BLOCK * BLOCK]).reshape(-1, BLOCK).max(axis=1) > 0.4
    assert np.count_nonzero(np.diff(sounds.astype(int)) == 1) == 2        # the tone came back twice
    assert np.abs(np.diff(data)).max() <= 2 * np.pi * 300 / SR * 0.5 * 1.01


def test_scope_redraws_a_tapped_output_until_a_key_without_xruns(terminal, jack_server, tmp_path):
    """How many frames a second it manages is benchmarks/scope.py's
    business; here, that it keeps drawing the live tap on its own, and
    counts every frame it drew."""
    term = terminal(tmp_path / "state", audio=jack_server)
    term.wait_for("synth>")
    for line in ("add vco osc1 wave=saw freq=440", "add vca v level=0.3", "connect osc1 v", "connect v out"):
        term.type(line)
    term.wait_for("audio on: device")
    term.tmux("send-keys", "-l", "scope osc1")
    term.keys("Enter")
    term.wait_for("scope osc1.out  frame ")

    def frame_number():
        head = next(line for line in term.screen().splitlines() if line.startswith("scope osc1.out  frame "))
        return int(head.split()[3]), float(head.split("strongest ")[1].split()[0])

    time.sleep(0.5)
    first = frame_number()[0]
    time.sleep(1.0)
    last, strongest = frame_number()
    assert last > first, (first, last)                      # no key pressed, and still it redraws
    assert abs(strongest - 440.0) < 2.0                     # the spectrum of the tapped vco
    term.keys("q")
    said = term.wait_for("frames/s)")
    assert "synth>" in said and "Traceback" not in said
    drawn = int(re.search(r"scope osc1\.out: (\d+) frames in ", said).group(1))
    assert drawn >= last, (drawn, last)
    term.type("scope v.gain", then="module 'v' has no output 'gain': it has out")
    term.type("quit", then="stopped: ")
    assert " 0 xruns" in term.wait_for(" xruns")
    assert term.exit_status() == 0


def test_knob_turns_reach_the_journal_so_resume_restores_the_patch_as_it_sounded(registry, tmp_path):
    now = [0.0]
    journal = journals.Journal(tmp_path / "state")
    first = Session(registry, Recorder(), journal, clock=lambda: now[0])
    run(first, "add vco o", "add ladder f", "connect o f", "connect f out")
    for step in range(100):             # a knob turned fast, as OSC and MIDI CC turn it
        now[0] += 0.001
        first.knob("f", "cutoff", 200.0 + step)
    first.knob("o", "wave", "sine")
    run(first, "set f.res 0.5")        # an entry after the turns puts them in the journal first
    entries = journals.read(journal.path)
    assert sum("knobs" in e for e in entries) == 2   # not one fsync per turn
    second = Session(registry, Recorder(), journals.Journal(tmp_path / "other"))
    second.replay(entries)
    assert second.patch.to_text() == first.patch.to_text()
    assert "cutoff=299 res=0.5" in second.patch.to_text() and "wave=sine" in second.patch.to_text()


def test_a_resumed_journal_holds_the_last_knob_turn_at_once(registry, tmp_path):
    """Replayed, two turns of a knob come within half a second and the
    last was held back for a next change that a kill -9 of the resumed
    REPL never let come: a resume of that resume lost it."""
    turned = [{"edit": "add lfo b freq=1"}, {"knobs": [["b", "freq", 2.0]]}, {"knobs": [["b", "freq", 3.0]]}]
    journal = journals.Journal(tmp_path / "resumed")
    Session(registry, Recorder(), journal, clock=lambda: 0.0).replay(turned)
    again = Session(registry, Recorder(), clock=lambda: 0.0)
    assert again.replay(journals.read(journal.path)) == []
    assert again.patch.to_text() == "add lfo b freq=3\n"


def test_the_last_knob_turns_reach_the_journal_on_their_own_and_a_refused_remote_edit_never(registry, tmp_path):
    """A knob that stops after a fast turn is journaled within half a
    second with nothing else happening (a kill -9 then keeps it), and an
    OSC command refused for a file outside the working directory leaves
    no entry that --resume, which is not remote, would carry out."""
    from synthcli.control import Control
    journal = journals.Journal(tmp_path / "state")
    session = Session(registry, Recorder(), journal)
    control = Control(session)
    run(session, "add vco o", "add ladder f", "connect o f", "connect f out")
    outside = tmp_path / "outside.wav"   # pytest runs in the repository: tmp_path is outside it
    soundfile.write(str(outside), np.zeros(480), SR)
    with pytest.raises(SynthError, match="outside the working directory"):
        control.execute(f"add sampler s file={outside}", remote=True)
    for value in (500.0, 600.0, 700.0):
        control.knob("f", "cutoff", value)
    time.sleep(0.8)
    entries = journals.read(journal.path)
    assert [e["knobs"] for e in entries if "knobs" in e] == [[["f", "cutoff", 500.0]], [["f", "cutoff", 700.0]]]
    resumed = Session(registry, Recorder(), journals.Journal(tmp_path / "other"))
    resumed.replay(entries)
    assert resumed.patch.to_text() == session.patch.to_text() and "sampler" not in session.patch.to_text()
    control.close()


@pytest.mark.parametrize("name", ["take.wav", "TAKE.WAVE", "song.mid", "patch.svg"])
def test_save_refuses_a_name_for_audio_midi_or_pictures_and_writes_nothing(session, tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"RIFF a take worth keeping")
    run(session, "add vco osc1")
    with pytest.raises(SynthError) as refused:
        session.execute(f"save {target}")
    assert str(refused.value) == (f"save {target}: that is a name for audio, MIDI or a picture; "
                                  f"save writes the patch as text (.seq, .patch)")
    assert target.read_bytes() == b"RIFF a take worth keeping" and session.path is None


def test_undoing_a_load_aims_save_back_where_it_was(session, tmp_path):
    mine, song = tmp_path / "mine.patch", tmp_path / "s.seq"
    song.write_text(SHORT_DEMO)
    run(session, "add vco o", "connect o out", f"save {mine}", f"load {song}", "undo")
    assert session.execute("save").startswith(f"saved {mine} ")
    assert song.read_text() == SHORT_DEMO                 # the loaded file is not overwritten
    assert mine.read_text() == "add vco o\nconnect o.out out.in\n"
    run(session, "redo")
    with pytest.raises(SynthError, match="was loaded with comments"):   # it was: see the next test
        session.execute("save")
    assert session.execute(f"save {song}").startswith(f"saved {song} ")


def test_undoing_an_edit_keeps_save_aimed_at_the_file_saved_since(session, tmp_path):
    """Each undo step kept where `save` wrote when it was taken: undoing
    edits made before a save said nothing was ever saved."""
    saved = tmp_path / "a.patch"
    run(session, "add vco v", "connect v out", f"save {saved}", "add vco w", "undo", "undo")
    assert session.execute("save").startswith(f"saved {saved} ") and saved.read_text() == "add vco v\n"
    run(session, "redo", "redo")
    assert session.execute("save").startswith(f"saved {saved} ") and "add vco w" in saved.read_text()


def test_a_bare_save_keeps_off_a_file_loaded_with_comments(session, tmp_path):
    """A musician who loaded an example and typed `save` lost its comments
    and layout without a word (the audit): save writes the canonical text.
    Named, the file is written; a copy is, and a bare save then writes
    the copy. A file that is canonical already is written again freely."""
    song = tmp_path / "by-hand.seq"
    song.write_text("# mine\ntempo 120\nlength 1\nadd vco o   # the lead\nconnect o out\n")
    run(session, f"load {song}", "set o.freq 220")
    with pytest.raises(SynthError) as refused:
        session.execute("save")
    assert str(refused.value) == (f"save: {song} was loaded with comments or a layout of its own, which save "
                                  f"does not keep (it writes the canonical text): `save {song}` overwrites it, "
                                  f"`save FILE` writes a copy")
    assert song.read_text().startswith("# mine\n")
    copy = tmp_path / "copy.seq"
    run(session, f"save {copy}", "set o.freq 330")
    assert session.execute("save").startswith(f"saved {copy} ") and "freq=330" in copy.read_text()
    run(session, f"load {song}")
    assert session.execute(f"save {song}").startswith(f"saved {song} ") and "#" not in song.read_text()
    run(session, f"load {copy}")
    assert session.execute("save").startswith(f"saved {copy} ")
    # Undo and redo bring back what the state they return to knew of its file.
    song.write_text("# mine again\n" + song.read_text())
    run(session, f"load {song}", f"load {copy}", "undo")
    with pytest.raises(SynthError, match="was loaded with comments"):
        session.execute("save")
    run(session, "redo")
    assert session.execute("save").startswith(f"saved {copy} ")
    # A canonical patch file loaded into a song is its patch's text: no reason to refuse.
    patch = tmp_path / "plain.patch"
    patch.write_text("add vco o freq=330\nconnect o.out out.in\n")
    run(session, f"load {patch}")
    assert session.execute("save").startswith(f"saved {patch} ")


@pytest.mark.parametrize("where", [".", "/", ".."])
def test_saving_to_a_directory_is_one_line_and_writes_nothing(session, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    run(session, "add vco o")
    with pytest.raises(SynthError, match=f"cannot write {re.escape(where)}: it is a directory"):
        session.execute(f"save {where}")
    assert list(tmp_path.iterdir()) == []


def test_a_pasted_block_is_split_at_line_feeds_only(session):
    """A form feed or a Unicode line separator inside a comment or a line is
    not a new line: the end of the comment must not run as a command."""
    run(session, "add vco o  # a comment\u2028 connect o out\nadd vca a\x0c\r\nconnect o a")
    assert session.patch.to_text() == "add vco o\nadd vca a\nconnect o.out a.in\n"
    with pytest.raises(SynthError) as caught:
        session.execute("add vco p\n\x0c\nbogus")
    assert caught.value.line == 3 and "p" not in session.patch.modules


def test_link_quantum_alone_says_the_quantum(session):
    assert session.execute("link quantum") == "link quantum 4"
    assert session.execute("link quantum 3") == "link quantum 3 (from the next `link on`)"
    assert session.execute("link quantum") == "link quantum 3"
    with pytest.raises(SynthError, match="usage is 'link on|off|quantum"):
        session.execute("link off 3")


def test_record_at_the_prompt_keeps_what_was_played_between_its_two_commands(jack_server, registry, tmp_path):
    """`record FILE` typed while the audio starts waits for it; `record
    stop` ends the take after the block being played; a second take
    starts later at its own command. Each file holds exactly the blocks
    the device was sent meanwhile: the level set before it, no click."""
    from synthcli.audio.ring import PLAYED, Ring
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"
    session, sound = live_session(registry, tmp_path, None, "add vco a wave=sine freq=300", "add vca v level=0.2",
                                  "connect a v", "connect v out", f"record {first}")
    info = sound.player.info
    ring = Ring(info["slots"], BLOCK, name=info["ring"])
    try:
        time.sleep(0.5)
        assert re.fullmatch(rf"recording to {first}: 0\.\d s so far", session.execute("record"))
        with pytest.raises(SynthError, match=f"already recording to {first}: `record stop` first"):
            session.execute(f"record {second}")
        said = session.execute("record stop")
        session.execute("set v.level 0.8")
        time.sleep(0.3)
        before = int(ring.header[PLAYED])
        assert session.execute(f"record {second}") == f"recording to {second}: `record stop` ends it"
        started = int(ring.header[PLAYED])   # the take began between the two: commands travel to the engine
        time.sleep(0.6)
        stopping = int(ring.header[PLAYED])
        again = session.execute("record stop")
        after = int(ring.header[PLAYED])
        assert session.execute("record") == "not recording: record FILE.wav starts"
        time.sleep(0.2)
    finally:
        ring.close()
        final = sound.stop()
    assert final["xruns"] == 0
    for take, level, message in ((first, 0.2, said), (second, 0.8, again)):
        data, sr = soundfile.read(str(take))
        assert message == f"recorded {take} ({len(data) / SR:.2f} s)"
        assert len(data) % BLOCK == 0 and np.allclose(data[:, 0], data[:, 1])
        assert abs(peak_frequency(data[:, 0]) - 300.0) < 2.0
        peaks = np.abs(data[:, 0]).reshape(-1, BLOCK).max(axis=1)
        assert np.allclose(peaks, level, atol=0.01), (take, peaks.min(), peaks.max())
        steepest = 2 * np.pi * 300 / SR * level
        assert np.abs(np.diff(data[:, 0])).max() < 1.01 * steepest   # whole blocks, none lost between
    blocks = len(soundfile.read(str(second))[0]) // BLOCK
    assert stopping - started - 1 <= blocks <= after - before + 2, (before, started, stopping, after, blocks)
    assert 0.4 < len(soundfile.read(str(first))[0]) / SR < 0.8


def test_record_without_audio_or_with_a_bad_name_says_why(registry, tmp_path):
    from synthcli.repl.sound import Sound
    sound = Sound({"samplerate": SR}, lambda text, kind="": None)
    sound.status, sound.reason = "no audio", "no sound server"
    session = Session(registry, sound)
    assert session.execute("record") == "not recording: record FILE.wav starts"
    assert session.execute("record stop") == "not recording"
    with pytest.raises(SynthError, match="^there is no audio to record: no sound server$"):
        session.execute(f"record {tmp_path / 'take.wav'}")
    with pytest.raises(SynthError, match=r"^record .*take\.txt: expected a \.wav or \.wave file$"):
        session.execute(f"record {tmp_path / 'take.txt'}")
    with pytest.raises(SynthError, match="no such directory"):
        session.execute(f"record {tmp_path / 'nowhere' / 'take.wav'}")
    with pytest.raises(SynthError, match=re.escape("usage is 'record [FILE.wav|stop]'")):
        session.execute("record a.wav b.wav")
    # Remote (OSC) commands may write only under the working directory.
    with pytest.raises(SynthError, match="outside the working directory"):
        session.execute("record /tmp/elsewhere.wav", remote=True)
    assert not list(tmp_path.iterdir())


def test_clear_starts_over_from_an_empty_patch_and_undo_brings_everything_back(session, tmp_path):
    """A musician starting a new idea removed every module by name (the
    audit): `clear` empties the patch, its mappings and the song, stops the
    song, and is one step to undo. A bare `save` then writes nowhere: the
    file last saved would have been overwritten with nothing."""
    song = tmp_path / "s.seq"
    song.write_text(SHORT_DEMO)
    run(session, f"load {song}", "map cc 7 padf.cutoff", "play")
    before = session.patch.to_text(), session.timeline.song_text(session.patch), dict(session.patch.mappings)
    assert session.patch.mappings and session.transport.playing
    said = session.execute("clear")
    assert said == "cleared (song: 4 bars, 3 patterns, 14 modules, 17 cables); undo brings it back", said
    assert list(session.patch.modules) == ["out"] and not session.patch.cables and not session.patch.mappings
    assert not session.timeline and not session.transport.playing and session.sound.sent[-2:] == [("halt_song",), ("load", "\n")]
    with pytest.raises(SynthError, match="save where"):
        session.execute("save")
    assert song.read_text() == SHORT_DEMO
    assert session.execute("clear") == "nothing to clear"
    run(session, "set out.level 0.5")
    assert session.execute("clear") == "cleared (patch: 0 modules, 0 cables); undo brings it back"
    assert session.patch.to_text() == Patch(session.registry).to_text()
    assert run(session, "undo", "undo") == ["undid clear", "undid set out.level 0.5"]
    assert session.execute("undo") == "undid clear"
    assert (session.patch.to_text(), session.timeline.song_text(session.patch), session.patch.mappings) == before
    with pytest.raises(SynthError, match="was loaded with comments"):   # aimed at the file again
        session.execute("save")


def test_a_clear_in_the_journal_clears_on_resume(registry):
    resumed = Session(registry, Recorder(), clock=lambda: 0.0)
    assert resumed.replay([{"edit": "add vco a"}, {"clear": 1}, {"edit": "add vco b"}]) == []
    assert resumed.patch.to_text() == "add vco b\n"
    run(resumed, "undo", "undo")
    assert resumed.patch.to_text() == "add vco a\n"



def test_other_hands_play_on_while_top_waits_for_the_engines_meters(registry):
    """`top` over OSC in synth play asks the engine for its meters and
    waits up to a second for them; it held the session's lock all that
    while, so a MIDI key or knob stalled behind it. The engine that does
    not answer is a stand-in (Recorder, with meters that wait for the
    test): a real one stopped with SIGSTOP would not answer either, but
    nothing outside could see the knob land while top waits, as OSC, the
    one way to ask, is the thread that waits."""
    from synthcli.control import Control
    asked, answer = threading.Event(), threading.Event()

    class Slow(Recorder):
        @property
        def meters(self):
            asked.set()
            answer.wait(10)
            return {}

    session = Session(registry, Slow(), clock=lambda: 0.0)
    control = Control(session)
    run(session, "add vco o", "connect o out")
    shown = []
    top = threading.Thread(target=lambda: shown.append(control.execute("top", remote=True)))
    top.start()
    assert asked.wait(10)
    knob = threading.Thread(target=control.knob, args=("o", "freq", 220.0))
    knob.start()
    knob.join(2)
    turned = not knob.is_alive()
    answer.set()
    top.join(10)
    knob.join(10)
    assert turned and session.patch.modules["o"].params["freq"] == 220.0
    assert shown == ["no meters: a test"]   # top still answers, with what it got
    control.close()
