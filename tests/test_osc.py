"""OSC control with real clients: liblo's `oscsend`, `oscsendfile` and
`oscdump` (Debian's liblo-tools) against the real server, first on a
session without audio (what the model does), then with `synth play
--osc` on the JACK dummy server (what is heard). Malformed datagrams are
hand-made bytes and python-osc's own test datagrams, which ship with it."""
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.test import test_osc_bundle, test_osc_message

from synthcli.control import Control, LiveSound
from synthcli.errors import SynthError
from synthcli.osc.server import Malformed, parse
from synthcli.repl.journal import Journal
from synthcli.repl.session import Session
from synthcli.harness import Playing, free_udp_port
from synthcli.testing import onsets, peak_frequency

ROOT = Path(__file__).parent.parent
SR = 48000
NTP_DELTA = 2208988800

#: For the tests that run liblo's clients; the datagram tests and those
#: that send hand-made bytes from Python do not need them.
LIBLO_TOOLS = ("oscsend", "oscsendfile", "oscdump")
needs_liblo = pytest.mark.skipif(not all(shutil.which(tool) for tool in LIBLO_TOOLS),
                                 reason="needs liblo-tools (oscsend, oscsendfile, oscdump)")


def built(address, *args):
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


def message(address, *args):
    return built(address, *args).dgram


def oscsend(port, address, types="", *args):
    done = subprocess.run(["oscsend", "127.0.0.1", str(port), address, types, *map(str, args)],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr


class Dump:
    """`oscdump` on a port: what the server sends back."""

    def __init__(self):
        self.port = free_udp_port()
        self.proc = subprocess.Popen(["oscdump", "-L", str(self.port)], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)

    def lines(self, count, timeout=10.0):
        got, deadline = [], time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        while len(got) < count and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                got.append(line.split(" ", 1)[1].strip())   # without the timetag
            else:
                time.sleep(0.02)
        return got

    def line_with(self, text, timeout=10.0):
        """The next line containing ``text``: a multi-line /synth/result
        comes out of oscdump as one line for each of its lines."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.lines(1, timeout=deadline - time.monotonic())
            if got and text in got[0]:
                return got[0]
            seen += got
        raise AssertionError(f"no reply line containing {text!r}; got {seen}")

    def close(self):
        self.proc.kill()
        self.proc.wait()


# -- datagrams ------------------------------------------------------------------


def test_well_formed_messages_and_bundles_parse_with_their_time():
    assert parse(message("/synth/set", "f1.cutoff", 1800.0)) == (None, [("/synth/set", "sf", ["f1.cutoff", 1800.0])])
    builder = OscBundleBuilder(1_800_000_000.25)
    builder.add_content(OscMessageBuilder("/synth/play").build())
    builder.add_content(OscMessageBuilder("/synth/stop").build())
    when, messages = parse(builder.build().dgram)
    assert when == pytest.approx(1_800_000_000.25, abs=1e-6)
    assert [m[0] for m in messages] == ["/synth/play", "/synth/stop"]
    assert parse(test_osc_bundle._DGRAM_TWO_MESSAGES_IN_BUNDLE)[0] is None   # timetag 1 means now


NESTED = OscBundleBuilder(0)
NESTED.add_content(OscBundleBuilder(0).build())


@pytest.mark.parametrize("data, why", [
    (b"", "empty datagram"),
    (b"/synth/play\0\0", "not a multiple of 4"),
    (b"/synth/set\0\0,sf", "bad padding"),
    (b"\0\0\0\0,i\0\0\0\0\0\1", "empty address"),
    (b"synth\0\0\0,i\0\0\0\0\0\1", "starts with '/'"),
    (message("/synth/tempo", 120.0)[:-4] + b"\0\0\0\x01" + b",fq\0" + b"\0" * 4, "bytes after"),
    (b"/synth/tempo\0\0\0\0,x\0\0\0\0\0\1", "unknown type tag 'x'"),
    (b"/synth/cmd\0\0,b\0\0\x7f\xff\xff\xf0abcd", "blob"),                     # a huge blob size
    (b"#bundle\0" + b"\0" * 7 + b"\1" + struct.pack(">i", 64) + message("/synth/play"), "does not fit"),
    (b"#bundle\0\0\0\0\0", "no timetag"),
    (b"/\xff\xfe\0,\0\0\0", "bad address"),                                      # not UTF-8
    (b"/synth/cmd\0\0,s\0\0\xc3\x28\0\0", "argument 1 .'s'. does not fit"),
    (b"/synth/o/freq\0\0\0,f\0\0", "argument 1 .'f'. does not fit"),   # not "-4 bytes after"
    (NESTED.build().dgram, "a bundle inside a bundle"),
    (test_osc_message._DGRAM_KNOB_ROTATES, "bad padding"),                  # python-osc's own test datagrams
    (test_osc_message._DGRAM_UNKNOWN_PARAM_TYPE, "unknown type tag"),
    (test_osc_bundle._DGRAM_INVALID, "bad padding"),
    (test_osc_bundle._DGRAM_BUNDLE_IN_BUNDLE, "does not fit"),
    (test_osc_bundle._DGRAM_UNKNOWN_TYPE, "does not fit"),
])
def test_malformed_datagrams_are_refused_with_a_reason(data, why):
    with pytest.raises(Malformed, match=why):
        parse(data)


def timed_lines(count, rate):
    """An `oscsendfile` script of cutoff changes, ``rate`` a second: it
    paces by the timetags, and lines with one timetag share a bundle."""
    base = int(time.time()) + NTP_DELTA
    lines = []
    for k in range(count):
        seconds, fraction = divmod(k / rate, 1)
        lines.append(f"{base + int(seconds):08x}.{int(fraction * 2 ** 32):08x} /synth/f1/cutoff f {200 + k % 3000}.0")
    return lines


# -- the server on a session without audio ---------------------------------------------


@pytest.fixture
def served(registry):
    session = Session(registry, LiveSound())
    session.edit("add keys kb\nadd vco o freq=220\nadd ladder f1 cutoff=500\nconnect kb.voct o.voct\n"
                 "connect o f1\nconnect f1 out\n")
    logged = []
    control = Control(session, logged.append)
    control.listen_osc(0)
    yield control, control.osc.port, logged
    control.close()


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@needs_liblo
def test_oscsend_sets_parameters_and_runs_commands(served):
    control, port, logged = served
    modules = control.session.patch.modules
    oscsend(port, "/synth/set", "sf", "f1.cutoff", 1800.0)
    assert wait_for(lambda: modules["f1"].params["cutoff"] == 1800.0)
    oscsend(port, "/synth/f1/cutoff", "f", 900.5)
    assert wait_for(lambda: modules["f1"].params["cutoff"] == 900.5)
    oscsend(port, "/synth/set", "ss", "f1.cutoff", "a5")     # a frequency takes a note name
    assert wait_for(lambda: modules["f1"].params["cutoff"] == 880.0)
    oscsend(port, "/synth/o/wave", "s", "square")
    assert wait_for(lambda: modules["o"].params["wave"] == modules["o"].type.cls.param("wave").coerce("square"))
    oscsend(port, "/synth/cmd", "s", "add lfo lfo1 freq=2")
    oscsend(port, "/synth/cmd", "s", "connect lfo1 f1.cutoff")
    assert wait_for(lambda: any(c.src == "lfo1" for c in control.session.patch.cables))
    oscsend(port, "/synth/cmd", "s", "undo")
    assert wait_for(lambda: not any(c.src == "lfo1" for c in control.session.patch.cables))
    oscsend(port, "/synth/cmd", "s", "add delay d time=0.3")
    oscsend(port, "/synth/set", "ss", "d.time", "3/16")     # a time takes a note length, which keeps the tempo
    assert wait_for(lambda: control.session.patch.synced.get(("d", "time")) == "3/16")
    assert control.session.patch.modules["d"].params["time"] == 0.375
    oscsend(port, "/synth/cmd", "s", "tempo 90")
    assert wait_for(lambda: control.session.patch.modules["d"].params["time"] == 0.5)
    oscsend(port, "/synth/set", "sf", "d.time", 0.2)        # a number lets the note length go
    assert wait_for(lambda: control.session.patch.modules["d"].params["time"] == 0.2)   # as sent, not as float32
    assert control.session.patch.synced == {} and "add delay d time=0.2\n" in control.session.patch.to_text()
    assert not logged, logged


@needs_liblo
def test_errors_go_back_as_synth_error_and_change_nothing(served, tmp_path):
    control, port, logged = served
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        before = control.session.patch.to_text()
        oscsend(port, "/synth/cmd", "s", "conect o f1")
        oscsend(port, "/synth/f1/cutof", "f", 100.0)
        oscsend(port, "/synth/set", "sf", "f1.cutoff", -5.0)
        oscsend(port, "/synth/sett", "sf", "f1.cutoff", 5.0)
        oscsend(port, "/synth/tempo", "s", "fast")
        oscsend(port, "/synth/cmd", "s", "quit")
        oscsend(port, "/synth/note", "fff", 60.0, "nan", 1.0)   # a velocity no number: not a silent note
        replies = dump.lines(7)
    finally:
        dump.close()
    assert control.session.patch.to_text() == before
    assert len(replies) == 7, replies
    assert all(r.startswith('/synth/error s "') for r in replies), replies
    assert "did you mean 'connect'" in replies[0]
    assert "no parameter 'cutof'" in replies[1] and "did you mean 'cutoff'" in replies[1]
    assert replies[2] == ('/synth/error s "/synth/set: bad value \'-5.0\' for f1.cutoff: '
                          '-5.0 is out of range (20..20000 Hz)"')
    assert "/synth/sett" in replies[3] and "did you mean '/synth/set'" in replies[3]
    assert "takes ',f' or ',i', got ',s'" in replies[4]
    assert "keyboard only" in replies[5]
    assert replies[6] == '/synth/error s "/synth/note: velocity nan is not a number"'
    assert len(logged) == 7 and all(line.startswith("osc: /synth/") for line in logged)


@needs_liblo
def test_a_set_over_osc_changes_one_parameter_and_runs_no_command_hidden_in_its_strings(served):
    """The REPL audit: a knob that the engine cannot glide to is applied
    as a `set` line, and a parameter or a value with a line break in it
    ran the lines after it: full-scale white noise patched to the master
    from one /synth/set."""
    control, port, logged = served
    control.session.edit("add sampler sp\nadd delay d\n")
    before, steps = control.session.patch.to_text(), len(control.session.undos)
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        oscsend(port, "/synth/set", "sf", "f1.cutoff 100\nadd noise hiss\nconnect hiss out\nset f1.cutoff", 0.2)
        oscsend(port, "/synth/set", "ss", "kb.voices", "4\nremove o")
        oscsend(port, "/synth/o/wave", "s", "saw\nadd noise hiss")
        oscsend(port, "/synth/sp/file", "s", 'a.wav"\nadd noise hiss\n"')
        oscsend(port, "/synth/set", "ss", "d.time", "1/4 x")
        replies = dump.lines(5)
    finally:
        dump.close()
    assert control.session.patch.to_text() == before and len(control.session.undos) == steps
    assert len(replies) == 5 and all(r.startswith('/synth/error s "') for r in replies), replies
    assert "module 'f1' has no parameter 'cutoff 100\\nadd noise hiss" in replies[0], replies[0]
    for reply, target in zip(replies[1:], ("kb.voices", "o.wave", "sp.file", "d.time")):
        assert f"for {target}: a value is one word, on one line" in reply, reply


@needs_liblo
def test_a_result_too_large_for_a_datagram_is_an_error_that_says_so(served):
    """`ls` of a 1,100-module patch came back as nothing, and logged nothing."""
    control, port, logged = served
    control.session.edit("".join(f"add lfo lfo_with_a_long_name_{k} freq=0.1 amp=0\n" for k in range(1000)))
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        oscsend(port, "/synth/cmd", "s", "ls")
        oscsend(port, "/synth/cmd", "s", "info o")   # a result that fits still comes
        replies = dump.lines(2)
    finally:
        dump.close()
    assert re.fullmatch(r'/synth/error s "/synth/cmd: its /synth/result of \d{5,} bytes is too large for one UDP '
                        r'datagram, and was not sent"', replies[0]), replies
    assert replies[1].startswith("/synth/result s"), replies
    assert len(logged) == 1 and logged[0].startswith("osc: /synth/cmd from 127.0.0.1:"), logged
    assert "too large for one UDP datagram" in logged[0]


@needs_liblo
def test_a_velocity_or_pitch_outside_0_to_127_is_refused_not_clamped(served, monkeypatch):
    """300 played at full and -50 as a silent note, without a word."""
    control, port, logged = served
    sent = []
    monkeypatch.setattr(control.session.sound, "note", lambda name, event: sent.append((name, event)))
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        oscsend(port, "/synth/note", "iii", 69, 300, 1)
        oscsend(port, "/synth/note", "iii", 69, -50, 1)
        oscsend(port, "/synth/note", "fff", 69.0, 1e30, 1.0)
        oscsend(port, "/synth/kb/note", "iii", 69, 128, 1)
        oscsend(port, "/synth/note", "iii", 200, 100, 1)
        oscsend(port, "/synth/note", "iii", 69, 127, 1)     # the loudest there is: played
        oscsend(port, "/synth/note", "iii", 69, 0, 1)       # velocity 0: a note-off, as in MIDI
        replies = dump.lines(5)
        assert wait_for(lambda: len(sent) == 2)
    finally:
        dump.close()
    assert replies == ['/synth/error s "/synth/note: velocity 300 is outside 0..127"',
                       '/synth/error s "/synth/note: velocity -50 is outside 0..127"',
                       '/synth/error s "/synth/note: velocity 1e+30 is outside 0..127"',
                       '/synth/error s "/synth/kb/note: velocity 128 is outside 0..127"',
                       '/synth/error s "/synth/note: note 200 is outside 0..127"'], replies
    assert len(logged) == 5 and all(" refused: " in line for line in logged), logged
    assert len(sent) == 2 and sent[0][0] == "kb" and sent[0][1].velocity == 1.0, sent
    assert type(sent[1][1]).__name__ == "NoteOff" and sent[1][1].note == 69, sent


@needs_liblo
def test_play_and_stop_without_a_song_are_refused_aloud(served):
    """A musician's controller has no reply port: what did not happen is logged."""
    control, port, logged = served
    oscsend(port, "/synth/play", "")
    oscsend(port, "/synth/stop", "")
    assert wait_for(lambda: len(logged) == 2), logged
    assert logged[0].startswith("osc: /synth/play from 127.0.0.1:") and "nothing to play yet" in logged[0]
    assert logged[1].startswith("osc: /synth/stop from 127.0.0.1:") and "the song is not playing" in logged[1]
    assert control.osc.counts["refused"] == 2 and not control.session.transport.playing
    oscsend(port, "/synth/cmd", "s", 'pattern kb "<c3 e3 g3>"')
    oscsend(port, "/synth/play", "i", "0")
    assert wait_for(lambda: len(logged) == 3) and "play 0: a bar is a whole number from 1" in logged[2], logged
    oscsend(port, "/synth/play", "i", "3")                 # as `play 3`: the song starts at bar 3
    assert wait_for(lambda: control.session.transport.playing)
    assert control.session.transport.segments[0][0] == 2 and len(logged) == 3, logged
    oscsend(port, "/synth/play", "i", "9")                 # past the end: played, not refused
    assert wait_for(lambda: control.session.transport.segments[0][0] == 8)
    assert len(logged) == 3 and control.osc.counts["refused"] == 3, logged


@needs_liblo
def test_a_tempo_with_no_pattern_yet_is_applied_and_says_so_as_the_repl_does(served):
    """It was applied without a word, where `/synth/play` is refused aloud:
    not refused, as a patch's note lengths follow it, but said."""
    control, port, logged = served
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        oscsend(port, "/synth/tempo", "f", 126.0)
        kept = dump.lines(1)
        oscsend(port, "/synth/cmd", "s", "add delay d time=1/8")
        oscsend(port, "/synth/tempo", "i", 60)
        followed = dump.lines(1)
        oscsend(port, "/synth/stats", "")
        stats = dump.lines(1)
    finally:
        dump.close()
    assert kept == ['/synth/result s "the song has no pattern yet: the tempo is kept for when it has one, '
                    'and for note lengths (set NAME.time 1/8)"'], kept
    assert followed == ['/synth/result s "the song has no pattern yet: the tempo is kept for when it has one; '
                        'the patch\'s note lengths follow it now (d.time=1/8)"'], followed
    assert control.session.patch.modules["d"].params["time"] == 0.5
    assert stats == ["/synth/stats iiii 5 4 0 0"] and not logged, (stats, logged)   # all applied but the asking
    assert control.execute("tempo 90") == followed[0].split('"')[1]            # the REPL says the same
    control.execute('pattern kb "c3"')
    assert control.execute("tempo 100") == ""                                  # a song's tempo, as ever


@needs_liblo
def test_remote_commands_cannot_reach_files_outside_the_working_directory(served, tmp_path):
    control, port, logged = served
    outside = tmp_path / "stolen.patch"
    oscsend(port, "/synth/cmd", "s", f"save {outside}")
    oscsend(port, "/synth/cmd", "s", "load /etc/passwd")
    oscsend(port, "/synth/cmd", "s", "save ../escape.patch")
    assert wait_for(lambda: len(logged) == 3)
    assert not outside.exists() and not (ROOT.parent / "escape.patch").exists()
    assert all("outside the working directory" in line for line in logged), logged


@needs_liblo
def test_a_samplers_file_over_osc_is_taken_only_from_inside_the_working_directory(served, tmp_path, monkeypatch):
    control, port, logged = served
    monkeypatch.chdir(ROOT)
    inside = "tests/data/sound/a440.wav"
    outside = tmp_path / "a.wav"
    outside.write_bytes((ROOT / inside).read_bytes())
    def file():   # each edit commits a new patch: look it up every time
        sampler = control.session.patch.modules.get("s")
        return sampler and sampler.params["file"]

    oscsend(port, "/synth/cmd", "s", "add sampler s")
    oscsend(port, "/synth/set", "ss", "s.file", inside)
    assert wait_for(lambda: file() == str(ROOT / inside))
    oscsend(port, "/synth/s/file", "s", str(outside))
    assert wait_for(lambda: len(logged) == 1)
    assert "outside the working directory" in logged[0] and file() == str(ROOT / inside)


@needs_liblo
def test_a_file_outside_the_working_directory_is_refused_alike_whatever_is_there(served, tmp_path, monkeypatch):
    """Refused before anything looks at it: "no such file", "it is a
    folder" or "not a sound file" told a client what lies outside."""
    control, port, logged = served
    monkeypatch.chdir(ROOT)
    inside = "tests/data/sound/a440.wav"
    sound = tmp_path / "a.wav"
    sound.write_bytes((ROOT / inside).read_bytes())
    control.session.edit(f"add sampler far file={sound}")   # typed at the keyboard: anywhere
    oscsend(port, "/synth/cmd", "s", f"add sampler s file={inside}")
    assert wait_for(lambda: "s" in control.session.patch.modules)
    outside = ["/etc/passwd", str(tmp_path / "missing.wav"), str(tmp_path), "../escape.seq", str(tmp_path / "b.wav")]
    (tmp_path / "b.wav").write_bytes(sound.read_bytes())
    for path in outside:
        oscsend(port, "/synth/set", "ss", "s.file", path)
    oscsend(port, "/synth/cmd", "s", "at 2 set s.file /etc/passwd")   # a song's bar, checked too
    assert wait_for(lambda: len(logged) == len(outside) + 1)
    said = [line.split(" refused: ", 1)[1] for line in logged]
    assert said == [f"{place}'{path}' is outside the working directory; remote commands may only use files in it"
                    for place, path in [*(("", path) for path in outside), ("column 17: ", "/etc/passwd")]], said
    assert control.session.patch.modules["s"].params["file"] == str(ROOT / inside)
    oscsend(port, "/synth/cmd", "s", "at 2 set s.level 0.5")   # the keyboard's file outside is no refusal of this
    assert wait_for(lambda: control.session.timeline) and len(logged) == len(outside) + 1, logged


@needs_liblo
def test_a_render_over_osc_is_at_most_ten_minutes(served):
    """One datagram asked for 3,000 s: 1.15 GB written, the server held for
    9 s. The cap is checked before any file is made."""
    control, port, logged = served
    name = f"osc-render-{os.getpid()}.wav"
    oscsend(port, "/synth/cmd", "s", f"render {name} 3000")
    assert wait_for(lambda: len(logged) == 1)
    assert "render over OSC is at most 600 s (this one would last up to 3000 s)" in logged[0], logged
    assert not (Path.cwd() / name).exists()


def test_a_command_without_its_text_is_refused_and_the_server_goes_on(served):
    control, port, logged = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        bundle = OscBundleBuilder(1)
        bundle.add_content(OscMessageBuilder("/synth/cmd").build())
        bundle.add_content(built("/synth/o/freq", 880.0))
        s.sendto(bundle.build().dgram, ("127.0.0.1", port))
        s.sendto(message("/synth/o/freq", 440.0), ("127.0.0.1", port))
    assert wait_for(lambda: control.session.patch.modules["o"].params["freq"] == 440.0)
    assert control.osc.counts["refused"] == 2 and control.osc.counts["applied"] == 1
    refused = [line for line in logged if "/synth/cmd" in line]
    assert len(refused) == 1 and refused[0].endswith(
        "refused: takes ',s', got ',' (message 1 of the 2 in its bundle: none of them was applied)"), logged


def bundled(*messages, when=1):
    bundle = OscBundleBuilder(when)
    for address, *args in messages:
        bundle.add_content(built(address, *args))
    return bundle.build().dgram


@needs_liblo
def test_a_bundle_with_a_refused_message_applies_none_of_it(served):
    """An immediate bundle replied `unknown command 'conect'` with its
    module added and its value set: OSC's bundle is one unit, and what is
    refused changes nothing. A bundle kept runs in order, so its messages
    may use what the ones before made, and its results come back."""
    control, port, logged = served
    session = control.session
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        before, undos = session.patch.to_text(), len(session.undos)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bundled(("/synth/o/freq", 300.0), ("/synth/cmd", "add lfo q0"), ("/synth/reply", dump.port + 1),
                             ("/synth/cmd", "conect a b")), ("127.0.0.1", port))
            refused = dump.lines(1)
            s.sendto(bundled(("/synth/cmd", "add lfo q0"), ("/synth/q0/freq", 3.0), ("/synth/o/freq", 300.0),
                             ("/synth/cmd", "info q0")), ("127.0.0.1", port))
            kept = dump.lines(1)
    finally:
        dump.close()
    assert refused == ['/synth/error s "/synth/cmd: unknown command \'conect\', did you mean \'connect\'? '
                       '(message 4 of the 4 in its bundle: none of them was applied)"'], refused
    assert kept[0].startswith("/synth/result s") and "q0" in kept[0], kept
    assert session.patch.modules["q0"].params["freq"] == 3.0 and session.patch.modules["o"].params["freq"] == 300.0
    assert len(session.undos) == undos + 1 and "add lfo q0" in session.patch.to_text() != before
    assert control.osc.counts == {"received": 9, "applied": 5, "refused": 4, "dropped": 0}, control.osc.counts
    assert len(logged) == 1 and "none of them was applied" in logged[0], logged
    session.execute("undo")
    assert session.patch.to_text() == before and len(session.undos) == undos


def test_a_refused_bundle_leaves_nothing_in_the_journal(registry, tmp_path):
    """`--resume` would rebuild what the session took back."""
    journal = Journal(tmp_path / "state")
    session = Session(registry, LiveSound(), journal)
    session.edit("add vco o freq=220\nconnect o out\n")
    control = Control(session, [].append)
    control.listen_osc(0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bundled(("/synth/o/freq", 300.0), ("/synth/cmd", "add lfo q0"), ("/synth/cmd", "conect a b")),
                     ("127.0.0.1", control.osc.port))
            s.sendto(bundled(("/synth/cmd", "add lfo q1"), ("/synth/q1/freq", 3.0)), ("127.0.0.1", control.osc.port))
        assert wait_for(lambda: "q1" in session.patch.modules)
    finally:
        control.close()
    written = journal.path.read_text()
    assert "q0" not in written and "300" not in written and "add lfo q1" in written, written


@needs_liblo
def test_malformed_datagrams_are_logged_dropped_and_the_server_goes_on(served):
    control, port, logged = served
    junk = [b"", b"/synth/set\0\0,sf", b"\0\0\0\0,i\0\0\0\0\0\1", NESTED.build().dgram,
            b"#bundle\0" + b"\0" * 7 + b"\1" + struct.pack(">i", 64) + message("/synth/play"),
            test_osc_message._DGRAM_UNKNOWN_PARAM_TYPE, b"/\xff\xfe\0,\0\0\0", os.urandom(4000)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data in junk:
            s.sendto(data, ("127.0.0.1", port))
    oscsend(port, "/synth/f1/cutoff", "f", 777.0)
    assert wait_for(lambda: control.session.patch.modules["f1"].params["cutoff"] == 777.0)
    assert control.osc.counts["dropped"] == len(junk)
    assert sum("dropped a datagram" in line for line in logged) == len(junk)


def test_the_count_of_held_back_log_lines_comes_out_without_another_datagram(served):
    """Past 20 lines a second only a count is logged; it must come out
    after a burst that nothing follows, within about a second or at close."""
    control, port, logged = served

    def burst():
        before = control.osc.counts["dropped"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(60):
                s.sendto(b"xyz!", ("127.0.0.1", port))
        assert wait_for(lambda: control.osc.counts["dropped"] == before + 60)

    def reported():
        counted = sum(int(line.split()[3]) for line in logged if "more such lines" in line)
        return sum("dropped a datagram" in line for line in logged) + counted

    burst()
    assert wait_for(lambda: reported() == 60, 3), logged
    while time.monotonic() % 1 > 0.2:   # the next burst and the close in one second
        time.sleep(0.01)
    burst()
    control.stop_osc()
    assert reported() == 120, logged
    assert sum("more such lines" in line for line in logged) >= 2


@pytest.mark.parametrize("port", ["\u00b2", "0", "65536", "x"])
def test_osc_listen_refuses_what_is_not_a_port_and_keeps_listening(served, port):
    control, listening, _ = served
    with pytest.raises(SynthError, match=f"expected a port number 1..65535, got '{port}'"):
        control.session.execute(f"osc listen {port}")
    assert control.osc.port == listening


@needs_liblo
def test_only_allowed_clients_are_heard(registry):
    session = Session(registry, LiveSound())
    session.edit("add vco o freq=220\nconnect o out\n")
    logged = []
    control = Control(session, logged.append)
    control.listen_osc(0, allow=["10.1.2.3"])
    try:
        assert control.osc.sock.getsockname()[0] == "127.0.0.1"   # this machine only, unless asked
        oscsend(control.osc.port, "/synth/o/freq", "f", 330.0)
        assert wait_for(lambda: control.osc.counts["dropped"] == 1)
        assert session.patch.modules["o"].params["freq"] == 220.0
        assert "not on the --osc-allow list" in logged[0]
    finally:
        control.close()
    control = Control(session, logged.append)
    said = control.listen_osc(0, allow=["10.1.2.3", "127.0.0.1"])
    try:
        assert not any("warning" in line for line in said), said
        oscsend(control.osc.port, "/synth/o/freq", "f", 330.0)
        assert wait_for(lambda: control.osc.counts["applied"] == 1), control.osc.counts
        assert session.patch.modules["o"].params["freq"] == 330.0
    finally:
        control.close()
    control = Control(session, logged.append)
    said = control.listen_osc(0, host="0.0.0.0")   # --osc-host: every network this machine is on
    try:
        assert control.osc.sock.getsockname()[0] == "0.0.0.0"
        assert said[1] == ("warning: OSC on 0.0.0.0 lets anyone who can reach this machine change the patch; "
                           "--osc-allow names the only clients to accept"), said
    finally:
        control.close()


@needs_liblo
def test_an_allowed_ipv4_client_is_heard_on_an_ipv6_socket(registry):
    """On `--osc-host ::` an IPv4 client is ::ffff:127.0.0.1 to the socket,
    and an allowed 127.0.0.1 was dropped as not on the list."""
    session = Session(registry, LiveSound())
    session.edit("add vco o freq=220\nconnect o out\n")
    logged = []
    control = Control(session, logged.append)
    control.listen_osc(0, host="::", allow=["127.0.0.1"])
    try:
        oscsend(control.osc.port, "/synth/o/freq", "f", 330.0)
        assert wait_for(lambda: control.osc.counts["applied"] == 1), (control.osc.counts, logged)
        assert session.patch.modules["o"].params["freq"] == 330.0
    finally:
        control.close()


@needs_liblo
def test_a_burst_of_10000_from_oscsendfile_arrives_without_loss(served, tmp_path):
    control, port, logged = served
    lines = timed_lines(10_000, 1e6)   # a microsecond apart: a burst, one bundle each
    script = tmp_path / "burst.txt"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["oscsendfile", "127.0.0.1", str(port), str(script)], check=True, timeout=60)
    assert wait_for(lambda: control.osc.counts["received"] == 10_000, 20), control.osc.counts
    assert control.osc.counts == {"received": 10_000, "applied": 10_000, "refused": 0, "dropped": 0}
    assert control.session.patch.modules["f1"].params["cutoff"] == 200 + 9_999 % 3000


# -- with audio: synth play --osc on the JACK dummy server ------------------------------


class Play(Playing):
    """`synth play ... --osc PORT`, ready once it listens."""

    def __init__(self, *args):
        self.port = free_udp_port()
        super().__init__(*args, "--osc", str(self.port), ready="listening for OSC", cwd=ROOT)


@needs_liblo
def test_a_set_over_osc_changes_what_is_heard(jack_server, tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nadd ladder f1 cutoff=8000\nconnect o f1\nconnect f1 out\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    port = playing.port
    time.sleep(1.0)
    oscsend(port, "/synth/set", "sf", "o.freq", 660.0)
    time.sleep(1.0)
    oscsend(port, "/synth/o/freq", "f", 550.0)
    time.sleep(1.0)
    oscsend(port, "/synth/cmd", "s", "set o.freq 330")
    time.sleep(1.0)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(take))
    heard = [peak_frequency(data[k * SR - SR // 2:k * SR, 0]) for k in range(1, len(data) // SR + 1)]
    for wanted in (440.0, 660.0, 550.0, 330.0):
        assert any(abs(f - wanted) < 1.0 for f in heard), (wanted, heard)
    assert abs(heard[-1] - 330.0) < 1.0


def tone_under_osc(folder, *args):
    """`synth play` of a 440 Hz sine at half scale, in ``folder`` (where
    remote commands may write), taking OSC; the player and its port."""
    patch = folder / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nadd vca v level=0.5\nconnect o v\nconnect v out\n")
    port = free_udp_port()
    return Playing(patch, "--osc", str(port), *args, ready="listening for OSC", cwd=folder), port


@needs_liblo
def test_a_refused_bundle_is_not_heard(jack_server, tmp_path):
    """The session took it back; the engine must not play it either."""
    take = tmp_path / "take.wav"
    playing, port = tone_under_osc(tmp_path, "--record", str(take))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        time.sleep(1.0)
        s.sendto(bundled(("/synth/o/freq", 660.0), ("/synth/cmd", "add lfo q0"), ("/synth/cmd", "conect a b")),
                 ("127.0.0.1", port))
        time.sleep(1.0)
        s.sendto(bundled(("/synth/cmd", "add lfo q0"), ("/synth/o/freq", 550.0)), ("127.0.0.1", port))
        time.sleep(1.0)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err and "none of them was applied" in err, err
    data, _ = soundfile.read(str(take))
    heard = [peak_frequency(data[k * SR - SR // 2:k * SR, 0]) for k in range(1, len(data) // SR + 1)]
    assert not any(abs(f - 660.0) < 1.0 for f in heard), heard
    assert abs(heard[1] - 440.0) < 1.0 and abs(heard[-1] - 550.0) < 1.0, heard


@needs_liblo
def test_a_take_recorded_over_osc_holds_what_played_between_start_and_stop(jack_server, tmp_path):
    """`record FILE` and `record stop` over /synth/cmd, while `synth play`
    runs in the folder the file is named from: the take holds the tone
    set before it, not the one set after it, and play says where it went."""
    playing, port = tone_under_osc(tmp_path)
    time.sleep(0.5)
    oscsend(port, "/synth/cmd", "s", "record take.wav")
    time.sleep(1.0)
    oscsend(port, "/synth/cmd", "s", "record stop")
    time.sleep(0.3)
    oscsend(port, "/synth/set", "sf", "o.freq", 660.0)
    time.sleep(0.5)
    err = playing.finish()
    assert " 0 xruns, recorded to take.wav" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(tmp_path / "take.wav"))
    assert 0.8 < len(data) / SR < 1.2
    assert abs(peak_frequency(data[:, 0]) - 440.0) < 1.0 and np.abs(data[:, 0]).min() < 1e-2
    assert 0.49 < np.abs(data[:, 0]).max() < 0.51


@needs_liblo
def test_a_render_over_osc_runs_beside_the_music_and_its_commands(jack_server, tmp_path):
    """A remote render held the lock every command takes until it was done:
    a set sent after it waited seconds. It runs beside them now, the set
    is heard at once, and Ctrl-C ends the render with a valid file (or,
    on a machine fast enough, it is done by then and says so)."""
    playing, port = tone_under_osc(tmp_path, "--record", "take.wav")
    time.sleep(0.5)
    oscsend(port, "/synth/cmd", "s", "render long.wav 600")
    time.sleep(0.3)
    oscsend(port, "/synth/set", "sf", "o.freq", 660.0)
    time.sleep(1.0)
    err = playing.finish()
    assert "Traceback" not in err, err
    held = re.search(r"render interrupted: long\.wav holds the first (\d+\.\d\d) s|wrote long\.wav \((600)\.00 s\)",
                     err)
    assert held and 0 < float(held[1] or held[2]) <= 600, err
    assert abs(soundfile.info(str(tmp_path / "long.wav")).frames / SR - float(held[1] or held[2])) < 0.01
    data, _ = soundfile.read(str(tmp_path / "take.wav"))
    assert abs(peak_frequency(data[-SR // 2:, 0]) - 660.0) < 1.0


NOTE_PATCH = ("add keys kb voices=2\nadd vco o wave=sine\nadd adsr env attack=0 decay=0 sustain=1 release=0\n"
              "add vca v\nconnect kb.voct o.voct\nconnect kb.gate env.gate\nconnect o v\nconnect env v.gain\n"
              "connect v out\n")


def test_timed_bundles_land_on_the_sample_of_their_time(jack_server, tmp_path):
    patch = tmp_path / "n.patch"
    patch.write_text(NOTE_PATCH)
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take, "--latency", "safe")
    port, latency = playing.port, playing.latency
    time.sleep(0.5)

    def note_at(when, pitch, on):
        bundle = OscBundleBuilder(when)
        bundle.add_content(note(pitch, on))
        return bundle.build().dgram

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        now = time.time()
        s.sendto(note(69, 1).dgram, ("127.0.0.1", port))     # immediate: at the next block
        s.sendto(note_at(now + 1.0, 69, 1), ("127.0.0.1", port))
        time.sleep(0.1)
        s.sendto(note(69, 0).dgram, ("127.0.0.1", port))
        s.sendto(note_at(now + 1.25, 69, 0), ("127.0.0.1", port))
        s.sendto(note_at(now + 1.5, 69, 1), ("127.0.0.1", port))
        s.sendto(note_at(now + 1.75, 69, 0), ("127.0.0.1", port))
    time.sleep(2.5)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(take))
    found = onsets(data[:, 0])
    assert len(found) == 3, found
    immediate, first, second = found
    # Two bundles 0.5 s apart land 24,000 samples apart, to a few samples:
    # the clock's fit moves a little between them (4 on a loaded machine),
    # where a landing on a block's edge would be up to 256 out.
    assert abs((second - first) - SR // 2) <= 12, (first, second)
    # And on the shared clock: the immediate note is heard one output
    # latency (plus up to a block of waiting) after it was sent, the timed
    # one at its time. The immediate note's own trip through two processes
    # jitters with the machine's load, so this bound is looser (three
    # blocks) than the exact check above; an error of the clock mapping
    # (a latency counted twice, a wrong epoch) would be far outside it.
    expected = (1.0 - latency) * SR
    assert -3 * 256 < (first - immediate) - expected < 256, (first - immediate, expected)


def test_a_timed_bundle_that_adds_a_module_can_set_it_too(jack_server, tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nconnect o out.left\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    time.sleep(0.5)
    bundle = OscBundleBuilder(time.time() + 0.5)
    bundle.add_content(built("/synth/cmd", "add vco z wave=sine freq=500\nconnect z out.right"))
    bundle.add_content(built("/synth/z/freq", 700.0))
    bundle.add_content(built("/synth/o/freq", 330.0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(bundle.build().dgram, ("127.0.0.1", playing.port))
    time.sleep(1.5)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err and "unknown" not in err, err
    assert "applied" not in err, err           # no save of the file was applied: an OSC edit was
    data, _ = soundfile.read(str(take))
    start = np.flatnonzero(np.abs(data[:, 1]) > 0.1)[0]   # the new module is heard from the bundle's time on
    after = data[start + SR // 100:start + SR // 2]
    assert abs(peak_frequency(after[:, 1]) - 700.0) < 2.0          # set on the module the bundle added
    assert abs(peak_frequency(after[:, 0]) - 330.0) < 2.0          # and the rest of the bundle with it
    assert abs(peak_frequency(data[start - SR // 4:start - 256, 0]) - 440.0) < 4.0


def tone(signal, hz):
    """A sine's amplitude at ``hz`` in ``signal`` (a Hann window's gain of 2 undone)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) * 4 / len(signal)
    return spectrum[int(round(hz * len(signal) / SR))]


def test_a_bundle_timed_for_later_waits_for_its_time_and_keeps_the_edits_made_meanwhile(jack_server, tmp_path):
    """Applied at once, a timed 'add' sounded with the next edit that
    changed the patch, and at its time the patch it had been sent with
    came back, without that edit (a module added meanwhile fell silent)."""
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nconnect o out.left\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    time.sleep(0.5)
    due = time.time() + 2.0
    bundle = OscBundleBuilder(due)
    bundle.add_content(built("/synth/cmd", "add vco t1 wave=sine freq=880\nadd vca tv level=0.3\n"
                                           "connect t1 tv\nconnect tv out.right"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(bundle.build().dgram, ("127.0.0.1", playing.port))
    time.sleep(0.2)
    edited = time.time()
    oscsend(playing.port, "/synth/cmd", "s", "add vco s1 wave=sine freq=660\nadd vca sv level=0.3\n"
                                             "connect s1 sv\nconnect sv out.right")
    time.sleep(due - time.time() + 1.0)
    err = playing.finish()
    assert "refused" not in err and "Traceback" not in err, err
    right = soundfile.read(str(take))[0][:, 1]
    start = np.flatnonzero(np.abs(right) > 0.1)[0]            # s1, from the edit on
    at = start + int((due - edited) * SR)                     # the bundle's time, within the send's jitter
    before, after = right[start + SR // 10:at - SR // 5], right[at + SR // 5:at + SR // 2]
    assert tone(before, 660) > 0.25 and tone(before, 880) < 0.01   # the timed module waits for its time
    assert tone(after, 660) > 0.25 and tone(after, 880) > 0.25     # and the edit made meanwhile stays


def note(pitch, on):
    return built("/synth/note", pitch, 100, on)


def test_an_immediate_bundle_is_applied_in_one_block(jack_server, tmp_path):
    patch = tmp_path / "two.patch"
    patch.write_text("add vco a wave=sine freq=300\nadd vco b wave=sine freq=300\nadd vca va level=0\n"
                     "add vca vb level=0\nconnect a va\nconnect b vb\nconnect va out.left\nconnect vb out.right\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    port = playing.port
    time.sleep(0.5)
    bundle = OscBundleBuilder(0)   # immediately
    for address in ("/synth/va/level", "/synth/vb/level"):
        builder = OscMessageBuilder(address)
        builder.add_arg(0.5)
        bundle.add_content(builder.build())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(5):
            s.sendto(bundle.build().dgram, ("127.0.0.1", port))
            time.sleep(0.2)
            s.sendto(message("/synth/cmd", "set va.level 0\nset vb.level 0"), ("127.0.0.1", port))
            time.sleep(0.2)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(take))
    left, right = onsets(data[:, 0]), onsets(data[:, 1])
    assert len(left) == 5 and np.array_equal(left, right), (left, right)


@needs_liblo
def test_sustained_20000_messages_a_second_while_audio_plays(jack_server, tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=saw freq=110\nadd ladder f1 cutoff=800\nconnect o f1\nconnect f1 out\n")
    playing = Play(patch)
    port = playing.port
    time.sleep(0.5)
    seconds, rate = 2.0, 20_000
    lines = timed_lines(int(seconds * rate), rate)
    script = tmp_path / "sustained.txt"
    script.write_text("\n".join(lines) + "\n")
    dump = Dump()
    try:
        oscsend(port, "/synth/reply", "i", dump.port)
        subprocess.run(["oscsendfile", "127.0.0.1", str(port), str(script)], check=True, timeout=60)
        time.sleep(0.5)
        oscsend(port, "/synth/stats")
        stats = dump.lines(1)
        oscsend(port, "/synth/cmd", "s", "ls")
        f1 = dump.line_with("ladder")
    finally:
        dump.close()
    err = playing.finish()
    # How fast oscsendfile itself got them out is this machine's business
    # (benchmarks/osc.py measures rates); what the server owes is every
    # message, the last one applied last, and no xrun meanwhile.
    received, applied, refused, dropped = map(int, stats[0].split()[2:])
    # The stats request counts as received, and as applied only once answered.
    assert (received, applied, refused, dropped) == (len(lines) + 2, len(lines) + 1, 0, 0), stats
    assert f1.split()[:3] == ["f1", "ladder", f"cutoff={200 + (len(lines) - 1) % 3000}"], f1
    assert " 0 xruns" in err, err


#: Rows whose effect is a note for the engine, which a session without
#: audio has nowhere to send: test_the_documented_note_examples_are_heard.
NOTE_ROWS = {"/synth/note", "/synth/NAME/note"}


@needs_liblo
def test_the_address_tables_in_the_docs_are_generated_from_the_server(served):
    """Every documented example, sent as written, does what its row says.
    Each effect is checked absent first, so a message that never arrived
    cannot pass on what an earlier one did."""
    from synthcli.osc.addresses import ADDRESSES, markdown_tables
    text = (ROOT / "docs" / "osc.md").read_text()
    assert markdown_tables() in text, "run `python -m synthcli.reference`"
    control, port, logged = served
    session = control.session
    # Named as in songs/demo.seq, which the examples are written for; a song to play.
    control.execute('add vcf padf cutoff=900\nconnect o padf\nadd keys bass\nlength 12\npattern kb "c3 e3"')
    dump = Dump()
    answer = []

    def cutoff():
        return session.patch.modules["padf"].params["cutoff"]

    def replies_here():   # applied before the next message is counted
        before = control.osc.counts["applied"]
        oscsend(port, "/synth/reply", "i", dump.port)
        assert wait_for(lambda: control.osc.counts["applied"] == before + 1)

    def stats_answered():
        answer.extend(dump.lines(1, timeout=0.1))
        counts = control.osc.counts   # the request counts as applied only once answered
        return answer == [f"/synth/stats iiii {counts['received']} {counts['applied'] - 1} 0 0"]

    checks = {   # address: (what to do first, its effect)
        "/synth/cmd": (None, lambda: "sweep" in session.patch.modules),
        "/synth/set": (lambda: control.knob("padf", "cutoff", 500.0), lambda: cutoff() == 1800.0),
        "/synth/NAME/PARAM": (lambda: control.knob("padf", "cutoff", 500.0), lambda: cutoff() == 1800.0),
        "/synth/tempo": (None, lambda: "tempo 126\n" in session.song_text),
        "/synth/play": (None, lambda: session.transport.playing),
        "/synth/stop": (None, lambda: not session.transport.playing),
        "/synth/reply": (None, lambda: control.osc.reply_ports == {"127.0.0.1": 57121}),
        "/synth/stats": (replies_here, stats_answered),
    }
    assert set(checks) | NOTE_ROWS == {row.path for row in ADDRESSES}, "a new address needs its effect checked"
    try:
        replies_here()
        for row in ADDRESSES:
            prepare, effect = checks.get(row.path, (None, None))
            if prepare is not None:
                prepare()
            applied = control.osc.counts["applied"]
            if effect is not None:
                assert not effect(), f"before {row.example}"
            oscsend(port, *shlex.split(row.example))
            assert wait_for(lambda: control.osc.counts["applied"] == applied + 1), (row.example, logged)
            if effect is not None:
                assert wait_for(effect), row.example
    finally:
        dump.close()
    assert not logged, logged
    assert control.osc.counts["refused"] == 0


@needs_liblo
def test_the_documented_note_examples_are_heard(jack_server, tmp_path):
    """The note rows' examples, each followed by its note-off, sound their
    pitch: a note source named or not, it is the patch's keys that play."""
    from synthcli.osc.addresses import ADDRESSES
    examples = [shlex.split(row.example) for row in ADDRESSES if row.path in NOTE_ROWS]
    assert len(examples) == len(NOTE_ROWS)
    patch = tmp_path / "n.patch"
    patch.write_text(NOTE_PATCH.replace("kb", "bass"))   # songs/demo.seq's name, as in the examples
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    time.sleep(0.5)
    for example in examples:
        oscsend(playing.port, *example)
        time.sleep(0.4)
        oscsend(playing.port, *example[:-1], 0)   # the same with ON 0
        time.sleep(0.4)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(take))
    found = onsets(data[:, 0])
    assert len(found) == len(examples), found
    for start, (_, _, pitch, _, _) in zip(found, examples):
        held = data[start + 1000:start + 1000 + SR // 4, 0]   # well inside the 0.4 s it is held
        assert abs(peak_frequency(held) - 440 * 2 ** ((int(pitch) - 69) / 12)) < 1.0, (pitch, start)


@needs_liblo
def test_the_repl_listens_and_shows_what_arrived(tmp_path):
    """The real REPL in tmux (no audio here: editing works the same)."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (Debian: apt-get install tmux)")
    from test_repl import Terminal
    port = free_udp_port()
    term = Terminal(tmp_path / "state", "--osc", str(port))
    try:
        term.wait_for(f"listening for OSC on 127.0.0.1:{port}")
        term.wait_for(f"osc :{port}")   # the toolbar says where commands may also come from
        oscsend(port, "/synth/cmd", "s", "add vco osc1 freq=110")
        oscsend(port, "/synth/osc1/freq", "f", 220.0)
        oscsend(port, "/synth/cmd", "s", "quit")
        term.wait_for("'quit' is for the keyboard only")
        term.type("ls", then="freq=220")
        term.type("osc stop", then=f"stopped listening for OSC on 127.0.0.1:{port}")
        term.type("osc listen 0x", then="expected a port number")
        other = free_udp_port()
        term.type(f"osc listen {other}", then=f"listening for OSC on 127.0.0.1:{other}")
        oscsend(other, "/synth/cmd", "s", "undo")   # the add; the knob turn was no undo step of its own
        time.sleep(0.5)
        assert "osc1" not in term.type("ls").split("synth> ls")[-1]
    finally:
        term.close()


def test_a_bundle_sends_only_the_last_value_of_each_parameter():
    """What arrives together starts on one sample, where only the last value of a parameter counts."""
    from synthcli.audio.player import latest_sets
    sent = [("set", "f1", "cutoff", 100.0), ("send", "kb", 0, "on"), ("set", "f1", "cutoff", 200.0),
            ("set", "o", "freq", 3.0), ("load", "text"), ("set", "f1", "res", 0.5), ("set", "f1", "cutoff", 300.0)]
    assert latest_sets(sent) == [("send", "kb", 0, "on"), ("set", "o", "freq", 3.0), ("load", "text"),
                                 ("set", "f1", "res", 0.5), ("set", "f1", "cutoff", 300.0)]


def test_an_edit_made_while_a_timed_bundle_waits_outlives_it(jack_server, tmp_path):
    """The bundle reaches the session half a second before its time, and
    its patch goes to the engine then; a set sent in that half second was
    heard until the bundle's time, then undone by the bundle's patch."""
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nconnect o out.left\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    time.sleep(0.5)
    bundle = OscBundleBuilder(time.time() + 1.0)
    bundle.add_content(built("/synth/cmd", "add vco z wave=sine freq=500\nconnect z out.right"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(bundle.build().dgram, ("127.0.0.1", playing.port))
    time.sleep(0.75)   # the bundle is with the engine now, waiting for its sample
    oscsend(playing.port, "/synth/o/freq", "f", 880.0)
    time.sleep(1.25)
    err = playing.finish()
    assert " 0 xruns" in err and "Traceback" not in err, err
    data, _ = soundfile.read(str(take))
    start = np.flatnonzero(np.abs(data[:, 1]) > 0.1)[0]   # the bundle's time
    assert abs(peak_frequency(data[start - SR // 8:start - 256, 0]) - 880.0) < 8.0   # the set, heard at once
    assert abs(peak_frequency(data[start + SR // 100:start + SR // 2, 0]) - 880.0) < 2.0   # and after the bundle


def test_an_edit_of_the_patch_in_a_timed_bundles_last_half_second_waits_for_it_and_brings_nothing_early(
        jack_server, tmp_path):
    """The bundle's patch waits in the engine for its sample; an edit that
    reloaded the patch in the meantime held the bundle's module already,
    which was heard 210 ms early (the live audit). The edit now lands right
    after the bundle, on its sample. A set-only bundle 0.6 s before it is
    the ruler (sample-exact: test_timed_bundles_land_on_the_sample_of_their_time)."""
    patch = tmp_path / "p.patch"
    patch.write_text("add vco o wave=sine freq=440\nadd vca l level=0\nconnect o l\nconnect l out.left\n")
    take = tmp_path / "take.wav"
    playing = Play(patch, "--record", take)
    time.sleep(0.5)
    due = time.time() + 1.5
    ruler, timed = OscBundleBuilder(due - 0.6), OscBundleBuilder(due)
    ruler.add_content(built("/synth/l/level", 1.0))
    timed.add_content(built("/synth/cmd", "add vco z wave=sine freq=500\nconnect z out.right"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(ruler.build().dgram, ("127.0.0.1", playing.port))
        s.sendto(timed.build().dgram, ("127.0.0.1", playing.port))
    time.sleep(due - 0.3 - time.time())        # in the bundle's last half second, after it went to the engine
    oscsend(playing.port, "/synth/cmd", "s", "add vco s1 wave=sine freq=660\nconnect s1 out.right")
    time.sleep(due - time.time() + 0.8)
    err = playing.finish()
    assert "refused" not in err and "Traceback" not in err, err
    data = soundfile.read(str(take))[0]
    left, right = (np.flatnonzero(np.abs(data[:, k]) > 0.1)[0] for k in (0, 1))
    # A patch change lands at the start of the block that holds its sample: up to a block early.
    assert 0.6 * SR - 256 - 96 <= right - left <= 0.6 * SR + 96, (right - left) / SR
    after = data[right + SR // 10:right + SR // 2, 1]
    assert tone(after, 500) > 0.25 and tone(after, 660) > 0.25     # the bundle, and the edit right after it


def test_undo_under_synth_play_stops_at_the_file_it_plays(registry, tmp_path):
    """One remote `undo` too many unloaded the song being performed: the
    music stopped and `save` wrote an empty patch."""
    from synthcli.control import play_session
    song = tmp_path / "s.seq"
    song.write_text("tempo 120\nlength 2\nadd keys kb\nadd vco o\nconnect kb.voct o.voct\nconnect o out\n"
                    'pattern kb "c3 e3"\n')
    session = play_session(registry, song, LiveSound())
    assert session.execute("undo", remote=True) == "nothing to undo" and session.transport.playing
    session.execute("set o.freq 300", remote=True)
    assert session.execute("undo", remote=True) == "undid set o.freq 300"
    assert session.execute("undo", remote=True) == "nothing to undo"
    assert 'pattern kb "c3 e3"' in session.song_text


@needs_liblo
def test_a_save_of_a_watched_song_keeps_what_osc_changed_where_the_save_left_it_alone(jack_server, tmp_path):
    """synth play --watch --osc: a level turned and a module added over OSC
    are still heard after a save of a comment and after one that changes
    the pattern (the live audit: both were lost at the first save)."""
    song = tmp_path / "w.seq"
    text = ("tempo 240\nlength 2\nadd keys kb voices=1\nadd vco o wave=sine\nadd vca a level=0.5\n"
            "connect kb.voct o.voct\nconnect o a\nconnect a out\npattern kb \"a4\" legato=1\n")
    song.write_text(text)
    take, port = tmp_path / "take.wav", free_udp_port()
    playing = Playing(song, "--watch", "--osc", port, "--record", take, ready="listening for OSC", cwd=tmp_path)
    time.sleep(0.5)
    oscsend(port, "/synth/a/level", "f", 0.1)
    oscsend(port, "/synth/cmd", "s", "add vco o3 wave=sine freq=1320")
    oscsend(port, "/synth/cmd", "s", "connect o3 a")
    time.sleep(1.5)
    song.write_text(text + "# only a comment\n")
    time.sleep(1.5)
    song.write_text(text.replace('"a4"', '"e5"'))
    time.sleep(2.5)                            # the next bar (1 s at 240 BPM), and a second of it
    err = playing.finish()
    assert "Traceback" not in err and " 0 xruns" in err, err
    assert f"{song}: nothing that plays changed; nothing to apply" in err, err
    assert sum(line.startswith("applied") for line in err.splitlines()) == 1, err
    data, _ = soundfile.read(str(take))
    x = data[:, 0]
    end = len(x) - SR // 4                     # before Ctrl-C's fade
    heard = x[end - SR // 2:end]
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    freqs = np.fft.rfftfreq(len(heard), 1 / SR)
    strongest = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(strongest[0] - 659.26) < 3 and abs(strongest[1] - 1320) < 3, strongest   # e5, and o3 still
    # Both sines through a at 0.1: the pan law's -3 dB on each side, never a's 0.5.
    assert np.max(np.abs(heard)) < 0.2, np.max(np.abs(heard))
