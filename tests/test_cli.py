"""The synth command, run as a user runs it: in a subprocess."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synthcli.patch import Patch
from synthcli.harness import shared_memory_of

ROOT = Path(__file__).parent.parent
BASIC = ROOT / "patches" / "basic.patch"


def synth(*args, **kw):
    return subprocess.run([sys.executable, "-m", "synthcli.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=kw.pop("cwd", ROOT), **kw)


def test_help_loads_no_numeric_libraries():
    # app(), not main(): main() leaves the process at once (see the next tests).
    code = ("from synthcli.cli import app\n"
            "try: app(['--help'])\n"
            "except SystemExit: pass\n"
            "import sys\n"
            "heavy = {'numpy', 'scipy', 'numba', 'sounddevice'} & set(sys.modules)\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "render" in done.stdout


def test_a_render_that_stays_inline_loads_no_worker_machinery(tmp_path):
    """`auto` decides after 48 blocks whether workers pay; a light patch
    stays inline and must not pay for importing them (6 ms of it)."""
    code = ("import sys\n"
            "from synthcli.cli import app\n"
            f"try: app(['render', {str(BASIC)!r}, '-o', {str(tmp_path / 'x.wav')!r}, '-q', '-d', '2'])\n"
            "except SystemExit as done: assert not done.code, done.code\n"
            "loaded = {'synthcli.engine.processes', 'multiprocessing.forkserver'} & set(sys.modules)\n"
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "x.wav").exists()


def test_ctrl_c_while_the_commands_load_ends_quietly():
    """The SIGINT arrives while typer is imported, the first ~50 ms of
    every `synth`: an import hook sends it, so the moment is exact."""
    code = ("import os, signal, sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'typer':\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "sys.argv = ['synth', '--help']\n"
            "from synthcli.__main__ import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


@pytest.mark.parametrize("module", ["typer", "numpy"])
def test_a_sigterm_while_synth_imports_ends_it_quietly_with_143(tmp_path, module):
    """typer: before the command line's handler is set (Python's default
    ended it with -15); numpy: inside a command, where the handler's
    exception unwinds an import."""
    patch = tmp_path / "p.patch"
    patch.write_text("add vco a\nconnect a out\n")
    code = ("import os, signal, sys\n"
            "class Terminate:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name == {module!r}:\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"
            "sys.meta_path.insert(0, Terminate())\n"
            f"sys.argv = ['synth', 'render', {str(patch)!r}, '-o', {str(tmp_path / 'p.wav')!r}]\n"
            "from synthcli.__main__ import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (143, "", "")


def test_a_terminal_that_hangs_up_takes_the_goodbyes_without_a_traceback(tmp_path):
    """Closing the terminal hangs it up: SIGHUP, and every later write to
    it fails with EIO. What synth still prints while it unwinds (the
    REPL's last redraw, "stopped: ...") must go nowhere, quietly, and a
    stderr sent to a file must stay that file."""
    import fcntl
    import termios
    code = ("import time\n"
            "from synthcli.cli import handle_signals\n"
            "handle_signals()\n"
            "print('ready', flush=True)\n"
            "try:\n"
            "    time.sleep(30)\n"
            "finally:\n"
            "    print('stopped: 1.0 s played, 0 xruns', flush=True)\n")
    master, terminal = os.openpty()
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=terminal, stdout=terminal,
                                 stderr=stderr, start_new_session=True,
                                 preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(terminal)
    try:
        said = b""
        while b"ready" not in said:
            said += os.read(master, 100)
    finally:
        os.close(master)   # the terminal closes: the kernel hangs it up
    assert child.wait(timeout=20) == 128 + signal.SIGHUP
    assert log.read_text() == ""


def test_the_entry_point_runs_the_commands():
    done = subprocess.run([sys.executable, "-m", "synthcli", "check", str(BASIC)], capture_output=True, text=True)
    assert done.returncode == 0 and "ok (" in done.stdout, done.stderr


@pytest.mark.parametrize("thread", [False, True])
def test_leaving_without_teardown_still_runs_exit_handlers_and_waits_for_threads(tmp_path, thread):
    # main() skips the interpreter's teardown (25-30 ms after a render);
    # what a program counts on at exit must still happen: exit handlers run,
    # buffered output is written, a thread still working is waited for.
    marks = tmp_path / "marks"
    code = ("import atexit, sys, threading, time\n"
            "marks = open(sys.argv[1], 'a')\n"
            "atexit.register(lambda: (marks.write('atexit\\n'), marks.close()))\n"
            "if sys.argv[2] == 'thread':\n"
            "    threading.Thread(target=lambda: (time.sleep(0.5), marks.write('thread\\n'))).start()\n"
            "sys.stdout.write('unflushed')\n"
            "sys.argv = ['synth', 'check', sys.argv[3]]\n"
            "from synthcli.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, str(marks), "thread" if thread else "-", str(BASIC)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("unflushed") and "ok (" in done.stdout
    assert marks.read_text().split() == (["thread", "atexit"] if thread else ["atexit"])

    done = subprocess.run([sys.executable, "-c", code, str(marks), "-", str(tmp_path / "missing.patch")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.startswith("error: ")


def test_modules_lists_every_builtin_with_ports_params_and_package():
    done = synth("modules")
    assert done.returncode == 0, done.stderr
    for name in ("vco", "lfo", "noise", "vcf", "ladder", "adsr", "vca", "mix", "pan", "delay", "reverb", "out"):
        assert f"\n{name}  (synthcli " in "\n" + done.stdout
    assert re.search(r"\n    param +cutoff +1000 +\(20\.\.20000 Hz\) +cutoff frequency", done.stdout)
    assert max(map(len, done.stdout.splitlines())) > 200    # a pipe gets whole lines, not a terminal's width


def test_check_accepts_the_example_patches(registry):
    """`check` reports what the file holds: a module for each `add`, and
    the cables its `connect` lines make. A stereo output into a stereo
    input makes two, so that count comes from the patch model, held to the
    file's lines."""
    for path in sorted((ROOT / "patches").glob("*.patch")):
        done = synth("check", path)
        assert done.returncode == 0, done.stderr
        commands = [line.split("#")[0].split() for line in path.read_text().splitlines()]
        assert not any(words[:1] in (["remove"], ["disconnect"]) for words in commands)   # only adds and connects
        adds = [words[2] for words in commands if words[:1] == ["add"]]
        connects = {tuple(end.split(".")[0] for end in words[1:3]) for words in commands if words[:1] == ["connect"]}
        patch = Patch(registry)
        patch.load_text(path.read_text(), str(path))
        assert list(patch.modules) == ["out", *adds]
        assert {(cable.src, cable.dst) for cable in patch.cables} == connects
        assert done.stdout == f"{path}: ok ({len(adds)} modules, {len(patch.cables)} cables)\n", path


@pytest.mark.parametrize("text, expected", [
    ("add vfc x\n", "bad.patch:1:5: unknown module type 'vfc', did you mean 'vcf'?"),
    ("add vco a\nadd vco b\nconnect a.out b.out\n", "bad.patch:3:17: 'b.out' is an output"),
    ("add vco a freq=fast\n", "bad.patch:1:16: bad value 'fast' for vco.freq: expected a number"),
    ("add vco a freq=1e9\n", "out of range"),
    ("require " + "a" * 256 + "\n", "bad.patch:1:9: this patch needs aaaa"),   # is_file() of it raised
    ("add sampler s file=" + "a" * 256 + ".wav\n", "the file name is too long"),
])
def test_bad_input_is_one_line_with_its_place_and_status_2(tmp_path, text, expected):
    bad = tmp_path / "bad.patch"
    bad.write_text(text)
    for command in (["check", bad], ["render", bad, "-o", tmp_path / "x.wav"]):
        done = synth(*command, cwd=tmp_path)
        assert done.returncode == 2
        assert expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("args, expected", [
    (["render", BASIC, "-o", "x.wav", "--from", "3.5"],
     "error: synth render: invalid value for '--from': '3.5' is not a valid int (see synth render --help)"),
    (["render", BASIC, "-o", "x.wav", "-d", "abc"], "error: synth render: invalid value for '--duration' / '-d': "
                                                  "'abc' is not a valid float (see synth render --help)"),
    (["render"], "error: synth render: missing argument 'FILE' (see synth render --help)"),
    (["render", BASIC, "-o"], "error: synth render: option '-o' requires an argument (see synth render --help)"),
    (["play", BASIC, "--recrd", "x.wav"], "error: synth play: no such option: --recrd "
                                          "(Possible options: --record, --workers) (see synth play --help)"),
    (["rendr"], "error: synth: no such command 'rendr'. Did you mean 'render'? (see synth --help)"),
    (["--bogus", "render"], "error: synth: no such option: --bogus (see synth --help)"),
    (["midi", "ports", "--bogus"], "error: synth midi ports: no such option: --bogus (see synth midi ports --help)"),
])
def test_a_command_line_click_refuses_is_one_line_too(tmp_path, args, expected):
    """The docs audit: a mistyped option or a value of the wrong type took
    click's three lines (usage, hint, message), every other error one."""
    done = synth(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == expected + "\n", done.stderr
    assert not (tmp_path / "x.wav").exists()


def test_missing_file_and_bad_flags(tmp_path):
    done = synth("render", tmp_path / "nope.patch", "-o", tmp_path / "x.wav")
    assert done.returncode == 2 and "No such file" in done.stderr
    # Each names the flag as typed, short or long, so a script's author finds it.
    for flags, words in ((["-x", "gpu"], "unknown --executor 'gpu'"),
                         (["--executor", "processes", "--workers", "0"], "--workers must be at least 1"),
                         (["--format", "mp3"], "unknown --format 'mp3'"),
                         (["-d", "-1"], "--duration must be a positive number of seconds, got -1")):
        done = synth("render", BASIC, "-o", tmp_path / "x.wav", *flags)
        assert done.returncode == 2 and words in done.stderr.splitlines()[-1], done.stderr
        assert not (tmp_path / "x.wav").exists()
    for flags, words in ((["--executor", "auto"], "--executor auto is for rendering"),
                         (["-d", "0"], "--duration must be a positive number of seconds, got 0")):
        done = synth("play", BASIC, *flags)
        assert done.returncode == 2 and words in done.stderr, done.stderr


@pytest.mark.parametrize("args, words", [
    (["render", BASIC, "-o", "{tmp}/missing/x.wav"], "-o {tmp}/missing/x.wav: no such directory '{tmp}/missing'"),
    (["render", BASIC, "-o", "{tmp}/x.mp3"], "-o {tmp}/x.mp3: expected a .wav or .wave file"),
    (["render", BASIC, "-o", "{tmp}/" + "a" * 256 + ".wav"], "the file name is too long (at most 255 bytes"),
    (["render", BASIC, "-o", "{tmp}/x.wav", "--plot", "{tmp}/missing/p.png"], "--plot {tmp}/missing/p.png: no such"),
    (["render", BASIC, "-o", "{tmp}/x.wav", "--plot", "{tmp}/p.xyz"], "expected a .png, .svg or .pdf file"),
    (["render", BASIC, "-o", "{tmp}/x.wav", "--duration", "inf"], "a positive number of seconds, got inf"),
    (["render", BASIC, "-o", "{tmp}/x.wav", "--duration", "1e-9"], "1e-09 s is shorter than one sample at 48000 Hz"),
    (["graph", BASIC, "-o", "{tmp}/missing/g.dot"], "-o {tmp}/missing/g.dot: no such directory"),
    (["graph", BASIC, "-o", "{tmp}"], "expected a .svg, .png, .pdf or .dot file"),
    (["play", BASIC, "--record", "{tmp}/missing/r.wav"], "--record {tmp}/missing/r.wav: no such directory"),
    (["play", BASIC, "--duration", "inf"], "a positive number of seconds, got inf"),
    (["bench", "--seconds", "nan"], "--seconds nan is out of range"),
    (["play", BASIC, "--samplerate", "0"], "--samplerate 0 is out of range (8000..384000)"),
    (["repl", "--samplerate", "-48000"], "--samplerate -48000 is out of range (8000..384000)"),
    (["play", BASIC, "--osc", "9", "--osc-allow", "nonsense"], "--osc-allow: 'nonsense' is not an IP address"),
    (["play", BASIC, "--clock-in", "Digitakt", "--link"], "--clock-in and --link would both lead the tempo"),
    (["play", BASIC, "--midi-in", ""], "--midi-in: the MIDI input port name is empty"),   # an unset variable
    (["play", BASIC, "--clock-in", " "], "--clock-in: the MIDI input port name is empty"),
    (["play", BASIC, "--clock-out", ""], "--clock-out: the MIDI output port name is empty"),
    (["repl", "--midi-in", ""], "--midi-in: the MIDI input port name is empty"),
    (["repl", BASIC, "--record", "{tmp}/missing/r.wav"], "--record {tmp}/missing/r.wav: no such directory"),  # hung
    (["repl", BASIC, "--record", "{tmp}/r.mp3"], "--record {tmp}/r.mp3: expected a .wav or .wave file"),
])
def test_what_cannot_be_written_or_timed_is_refused_before_any_work(tmp_path, args, words):
    """Before any sound or rendering: a minute's work must not end in an
    error about a file name."""
    done = synth(*(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert done.returncode == 2 and words.replace("{tmp}", str(tmp_path)) in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, expected", [
    ("add vco o\nadd pan p\nconnect o p\nconnect p out\n",
     {"modules": 2, "cables": 3, "delayed": 0, "song": False, "bars": None, "tempo": None, "seconds": None}),
    ('tempo 90\nlength 3\nadd keys kb voices=2\nadd vco o\nadd vcf f\nconnect kb.voct o.voct\nconnect o f\n'
     'connect f o.fm\nconnect f out\npattern kb "c3 e3"\n',
     {"modules": 3, "cables": 4, "delayed": 1, "song": True, "bars": 3, "tempo": 90.0, "seconds": 8.0}),
])
def test_check_json_counts_what_the_file_holds(tmp_path, text, expected):
    """Scripts read these numbers: a stereo cable counts twice, a feedback
    cable is delayed by a block, three bars of 4/4 at 90 BPM last 8 s."""
    path = tmp_path / "x.seq"
    path.write_text(text)
    done = synth("check", "--json", path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"file": str(path), "ok": True, **expected, "warnings": []}


def test_a_file_from_a_windows_editor_reads_as_typed(tmp_path):
    """A byte-order mark and CR LF line ends: Notepad's defaults."""
    patch = tmp_path / "notepad.patch"
    patch.write_bytes("add vco o\r\nconnect o out\r\n".encode("utf-8-sig"))
    done = synth("check", patch)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{patch}: ok (1 module, 1 cable)\n", "")


def test_a_file_from_an_old_mac_editor_reads_as_typed_and_errors_name_its_lines(tmp_path):
    """A CR alone ends a line too (classic Mac OS editors wrote them), so
    a file mixing all three line ends reads as typed, and an error, in
    the text or a byte no text holds, is on the line an editor shows."""
    song = tmp_path / "mac.seq"
    song.write_bytes(b"tempo 120\rlength 2\r\nadd keys kb\radd vco o\nconnect kb.voct o.voct\r"
                     b"connect o out\rpattern kb \"c4 e4\" legato=0.5\r")
    done = synth("check", song)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{song}: ok (2 modules, 2 cables, 2 bars at 120 BPM, "
                                                              f"4.0 s, 1 pattern)\n", "")
    for text, error in [(b"add vco o\rconnect o out\r\nset o.frq 3\r",
                         "3:7: module type 'vco' has no parameter 'frq', did you mean 'freq'?"),
                        (b"add vco o\r\r\xff\r", "3:1: not a text file: byte 0xff is not valid UTF-8")]:
        patch = tmp_path / "mac.patch"
        patch.write_bytes(text)
        done = synth("check", patch)
        assert (done.returncode, done.stderr) == (2, f"error: {patch}:{error}\n")


def test_from_starts_a_song_at_a_bar_and_refuses_what_has_none(tmp_path):
    """`--from 9` renders the demo's last 8 bars (16 s at 120 BPM, and the
    tail); a bar past the end (of a song or a MIDI file), bar 0, a patch and
    a MIDI file timed in SMPTE frames are one line and status 2, as `synth
    play` says them too."""
    from synthcli.midi import MidiSong
    song = ROOT / "songs" / "demo.seq"
    done = synth("render", song, "--from", "9", "-o", tmp_path / "part.wav", "--quiet")
    assert done.returncode == 0, done.stderr
    seconds = soundfile.info(str(tmp_path / "part.wav")).duration
    assert 16.0 < seconds < 16.0 + 10.0, seconds
    midi = ROOT / "tests" / "data" / "midi" / "test10.mid"
    bars = len(MidiSong(midi).bar_ticks())
    smpte = tmp_path / "smpte.mid"
    data = midi.read_bytes()
    smpte.write_bytes(data[:12] + bytes([0xE7, 40]) + data[14:])    # 25 frames a second, 40 ticks a frame
    for args, said in [((song, "--from", "17"), "error: --from 17 is past the song's end: it is 16 bars long\n"),
                       ((song, "--from", "0"), "error: --from 0: bars count from 1\n"),
                       ((BASIC, "--from", "2"), "error: --from 2: only a song or a MIDI file has bars to start "
                                                "from; this is a patch\n"),
                       ((midi, "--from", str(bars + 1)), f"error: --from {bars + 1} is past the file's end: it is "
                                                         f"{bars} bars long\n"),
                       ((smpte, "--from", "2"), f"error: {smpte}: --from 2: this MIDI file keeps time in SMPTE "
                                                "frames, so it has no bars\n")]:
        for command in (("render", *args, "-o", tmp_path / "x.wav"), ("play", *args)):
            done = synth(*command)
            assert (done.returncode, done.stderr) == (2, said), command


def test_render_refuses_a_directory_for_its_file(tmp_path):
    (tmp_path / "x.wav").mkdir()
    done = synth("render", BASIC, "-o", tmp_path / "x.wav")
    assert done.returncode == 2 and done.stderr == f"error: -o {tmp_path / 'x.wav'}: is a directory\n"


@pytest.mark.parametrize("suffix", [".patch", ".mid"])
def test_a_named_pipe_nobody_writes_to_is_refused_at_once_and_one_written_to_is_read(tmp_path, suffix):
    """open() of a FIFO waits for a writer: an OSC `load` of one in the
    working directory held the server, and every hand behind its lock, for
    good. A pipe that is written to reads as a file (`synth check <(...)`)."""
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    done = synth("check", fifo, timeout=30)
    said = "not a valid MIDI file: it is empty" if suffix == ".mid" else "cannot read: it is not a file, and nothing writes to it"
    assert (done.returncode, done.stderr) == (2, f"error: {fifo}: {said}\n")
    done = synth("check", "/dev/stdin", input=BASIC.read_text())
    assert done.returncode == 0 and done.stdout.startswith("/dev/stdin: ok"), done


@pytest.mark.parametrize("value", ["ten", "0", "-3", "inf", "nan"])
def test_a_hang_watch_wait_that_is_not_seconds_is_refused(value, tmp_path):
    """SYNTHCLI_HANG_SECONDS of "ten" was taken for the default 10 s in
    silence: the plugin author who set it to wait longer waited in vain."""
    done = synth("render", BASIC, "-o", tmp_path / "x.wav", "-d", "0.1", "-x", "inline",
                 env={**os.environ, "SYNTHCLI_HANG_SECONDS": value})
    assert (done.returncode, done.stderr) == (
        2, f"error: SYNTHCLI_HANG_SECONDS={value!r} is not a number of seconds over 0\n")
    assert not (tmp_path / "x.wav").exists()


def test_bench_measures_a_patch_file():
    done = synth("bench", BASIC, "--seconds", "0.2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["patch"] == str(BASIC)
    assert {(r["executor"], r["blocksize"]) for r in report["results"]} == {
        (x, b) for x in ("inline", "threads", "processes") for b in (256, 1024)}
    inline = {r["blocksize"]: r["realtime"] for r in report["results"] if r["executor"] == "inline"}
    for r in report["results"]:   # speeds are measured, so only their relations are checked here
        assert r["realtime"] > 0 and r["speedup"] == pytest.approx(r["realtime"] / inline[r["blocksize"]])
    live = [r for r in report["results"] if r["blocksize"] == 256]   # what synth play runs at
    assert report["recommended"] == max(live, key=lambda r: r["realtime"])


@pytest.mark.parametrize("fmt, subtype", [("float32", "FLOAT"), ("pcm24", "PCM_24"), ("pcm16", "PCM_16")])
def test_render_writes_the_asked_wav(tmp_path, fmt, subtype):
    out = tmp_path / "basic.wav"
    done = synth("render", BASIC, "-o", out, "--duration", "1.5", "--format", fmt, "--samplerate", "44100")
    assert done.returncode == 0, done.stderr
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 66150, subtype)
    data, _ = soundfile.read(str(out))
    assert np.abs(data).max() > 0.05 and np.abs(data).max() <= 1.0
    assert f"wrote {out} (1.50 s; 44100 Hz, stereo, {fmt})" in done.stderr
    if fmt != "float32":   # the same samples, to the format's last bit
        exact = tmp_path / "exact.wav"
        assert synth("render", BASIC, "-o", exact, "--duration", "1.5", "--samplerate", "44100").returncode == 0
        bits = int(fmt[3:])
        assert np.abs(data - soundfile.read(str(exact))[0]).max() <= 2.0 ** (1 - bits)


def test_a_duration_longer_than_the_song_says_why_the_file_is_shorter(tmp_path):
    """--duration cuts a song; it does not stretch one. Asked for 30 s of a
    one-bar song, the file holds the bar and its tail, and says so."""
    song = tmp_path / "short.seq"
    song.write_text('tempo 240\nlength 1\nadd keys kb\nadd adsr e release=0.01\nconnect kb.gate e.gate\n'
                    'connect e out\npattern kb "c4"\n')
    out = tmp_path / "short.wav"
    done = synth("render", song, "-o", out, "--duration", "30")
    assert done.returncode == 0, done.stderr
    seconds = soundfile.info(str(out)).frames / 48000
    assert 1.0 <= seconds < 5.0
    assert f"wrote {out} ({seconds:.2f} s: the song ends there, before the 30 s asked; 48000 Hz" in done.stderr

@pytest.mark.parametrize("text, silent", [
    ("", True),
    ("# a sketch\nadd vco a\n", True),                            # the cable to out forgotten
    ("add vco a\nconnect a out.left\n", False),
    ("tempo 240\nlength 2\nadd vco a\nat 2 connect a out\n", False),   # a song may connect it later
])
def test_a_file_with_nothing_connected_to_out_is_warned_of(tmp_path, text, silent):
    """It renders, as silence: the musician hears why before listening."""
    path = tmp_path / ("sketch.seq" if "length" in text else "sketch.patch")
    path.write_text(text)
    out = tmp_path / "sketch.wav"
    warning = f"warning: {path}: nothing is connected to 'out', so it is silent\n"
    for done in (synth("render", path, "-o", out, "-d", "1.5", "-q"), synth("check", path)):
        assert done.returncode == 0 and done.stderr == (warning if silent else ""), done.stderr
    audio, _ = soundfile.read(out)
    assert (np.abs(audio).max() == 0.0) == silent


NEW_USERS_SONG = """tempo 120
length 8
add keys kb voices=2
add vco o
add vcf pf cutoff=800
add adsr e
add vca a level=0.25
add drums d
connect kb.voct o.voct
connect kb.gate e.gate
connect o pf
connect pf a
connect e a.gain
connect a out
connect d out
pattern kb "[c3,e3,g3,b3]"
pattern d "c1 c9 c2 d2"
pattern pf.cutoff "<600 900 1400 2200>"
at 7 set pf.cutoff 3500
"""


def test_what_a_song_loses_without_a_word_is_warned_of(tmp_path):
    """The new user's song checked and rendered in silence, and each of
    these was found only by measuring: a chord wider than its voices (two
    of four notes cut), drum notes the kit has no sound for, and a set
    that the pattern on its parameter undoes at its next step."""
    song = tmp_path / "s.seq"
    song.write_text(NEW_USERS_SONG)
    warnings = [
        f"warning: {song}:16: the pattern on kb holds 4 notes at once (bar 1), but kb has 2 voices: the notes "
        f"struck first are cut short (voices=4 gives each its own)",
        f"warning: {song}:19: `at 7 set pf.cutoff 3500` lasts until the next step of the pattern on pf.cutoff "
        f"(line 18); to hold the value, give the pattern the value instead (`at 7 pattern pf.cutoff \"3500\"`)",
        f"warning: {song}:17: the pattern on d plays MIDI notes 24, 120 (bar 1), which the drum kit has no sound "
        f"for: it plays 27 to 87 (c2 or bd kick, d2 or sd snare, f#2 or hh closed hat, a#2 or oh open hat: "
        f"synth help drums)"]
    for done in (synth("check", song), synth("render", song, "-o", tmp_path / "s.wav", "-q")):
        assert done.returncode == 0 and done.stderr.splitlines() == warnings, done.stderr
    done = synth("check", "--json", song)   # in the report, where a script reads: it returned before them
    assert done.stderr == "" and json.loads(done.stdout)["warnings"] == [w[len("warning: "):] for w in warnings]
    song.write_text(NEW_USERS_SONG.replace("voices=2", "voices=4").replace("c1 c9", "c2 ~")
                    .replace("at 7 set pf.cutoff 3500", 'at 7 pattern pf.cutoff "3500"'))
    done = synth("check", song)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("level, said", [(0.99, None), (2.0, "66.5 % of it went over full scale, into the master's "
                                                          "soft clip (the mix peaked 6 dB over)")])
def test_a_render_that_went_over_full_scale_says_how_far(tmp_path, level, said):
    """The new user's square wave through a mix at 4 rendered 99.6 % of its
    samples into the master's soft clip without a word, where the REPL's
    meter says CLIP. A sine at 2 is over full scale whenever |sin| > 1/2:
    two thirds of the file less its fades, 6 dB over at its peaks. One
    just under full scale, bent by the knee but not over, is no warning."""
    patch = tmp_path / "p.patch"
    patch.write_text(f"add vco o wave=sine freq=110\nadd vca v level={level}\nconnect o v\nconnect v out\n")
    out = tmp_path / "p.wav"
    done = synth("render", patch, "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    expected = f"warning: {out}: {said}: turn out.level down, or the parts into it\n" if said else ""
    assert done.stderr == expected, done.stderr


def test_render_is_bit_identical_across_executors_from_the_cli(tmp_path):
    outputs = []
    for i, flags in enumerate((["--executor", "inline"], ["--executor", "processes", "--workers", "2"], [])):
        out = tmp_path / f"{i}.wav"
        done = synth("render", BASIC, "-o", out, "--duration", "2", *flags)
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_ctrl_c_during_a_processes_render_leaves_no_shared_memory(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "render", str(BASIC), "-o", str(tmp_path / "x.wav"),
                             "--duration", "600", "--executor", "processes"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "x.wav").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    used = shared_memory_of(proc.pid)
    assert used, "the render should be using shared memory"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err
    time.sleep(0.5)
    assert used & set(os.listdir("/dev/shm")) == set()


def test_a_killed_engine_leaves_no_shared_memory(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "render", str(BASIC), "-o", str(tmp_path / "x.wav"),
                             "--duration", "600", "--executor", "processes"], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "x.wav").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    used = shared_memory_of(proc.pid)
    assert used, "the render should be using shared memory"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and used & set(os.listdir("/dev/shm")):
        time.sleep(0.1)
    assert used & set(os.listdir("/dev/shm")) == set()


def long_midi(path):
    """Half a minute of three-note chords at 120 BPM, one a beat."""
    import mido
    track = mido.MidiTrack()
    for k in range(60):
        chord = [60 + k % 12, 64 + k % 12, 67 + k % 12]
        track += [mido.Message("note_on", note=n, velocity=90, time=0) for n in chord]
        track += [mido.Message("note_off", note=n, velocity=0, time=480 if i == 0 else 0) for i, n in enumerate(chord)]
    song = mido.MidiFile(type=0, ticks_per_beat=480)
    song.tracks.append(track)
    song.save(str(path))
    return path


def on_a_terminal(*args, slow=False):
    """Run synth with stderr on a pseudo-terminal, as a musician sees it.

    ``slow`` lets it run only a tenth of the time (SIGSTOP/SIGCONT), as on
    a loaded machine: what a render shows must not depend on how fast this
    machine happens to be."""
    import pty
    import threading
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)

    def throttle():
        while proc.poll() is None:
            time.sleep(0.01)
            try:
                proc.send_signal(signal.SIGSTOP)
                time.sleep(0.09)
            finally:
                proc.send_signal(signal.SIGCONT)

    if slow:
        threading.Thread(target=throttle, daemon=True).start()
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:        # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(), shown.decode()


@pytest.mark.parametrize("source", ["patch", "midi"])
def test_long_renders_show_progress_with_time_left_unless_quiet(tmp_path, source):
    args = (["patches/basic.patch", "--duration", "40"] if source == "patch"
            else [long_midi(tmp_path / "long.mid")])
    status, shown = on_a_terminal("render", *args, "-o", tmp_path / "out.wav", slow=True)
    assert status == 0, shown
    bars = re.findall(r"\r\[#* *\] +(\d+\.\d)%  +(\d+\.\d) s left", shown)
    assert len(bars) >= 3, shown                      # redrawn as it goes
    assert float(bars[-1][0]) > float(bars[0][0]) and float(bars[-1][1]) < float(bars[0][1])
    assert "wrote " in shown
    status, shown = on_a_terminal("render", *args, "-o", tmp_path / "out.wav", "--quiet")
    assert status == 0 and shown == ""


def test_the_applied_line_survives_a_file_moved_after_its_save(tmp_path):
    from synthcli.cli import applied_line
    song = tmp_path / "s.seq"
    song.write_text("length 1\n")
    saved = song.stat().st_mtime
    assert applied_line(song, 3, saved + 0.25) == f"applied {song} at bar 3, 250 ms after the save"
    song.unlink()
    assert applied_line(song, 3, saved + 0.25) == f"applied {song} at bar 3"


def small_disk():
    """A file size limit for the child, as a full disk would stop its
    writes (Python ignores SIGXFSZ, so a write past it fails with EFBIG)."""
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))   # the live engine's ring takes 0.34 MB


def test_a_render_whose_workers_shared_memory_cannot_be_made_is_one_line(tmp_path):
    """A full /dev/shm, here a file size limit below the workers' board:
    it was a traceback, and CPython's resource tracker's after it."""
    import resource
    done = synth("render", BASIC, "-o", tmp_path / "x.wav", "-d", "1", "-x", "processes",
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000)))
    assert done.returncode == 2 and done.stderr == ("error: cannot make the shared memory the worker processes run "
                                                    "the modules in: File too large (is /dev/shm full?)\n"), done.stderr


def test_a_segment_that_cannot_even_be_opened_leaves_the_resource_tracker_nothing(tmp_path):
    """No file descriptor left (a real limit, RLIMIT_NOFILE, all of it
    held): the segment's name had gone to CPython's resource tracker
    before shm_open failed, and at exit the tracker warned of a leak after
    our one line (the review)."""
    script = tmp_path / "no_fds.py"
    script.write_text(
        "import os, resource\n"
        "from multiprocessing import resource_tracker, shared_memory  # noqa: F401 (imported before the limit)\n"
        "from synthcli.engine.board import make_shared\n"
        "from synthcli.errors import SynthError\n"
        "resource_tracker.ensure_running()   # its pipe first: registering needs no new descriptor then\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(os.open(os.devnull, os.O_RDONLY))\n"
        "except OSError:\n"
        "    pass\n"
        "try:\n"
        "    make_shared(4096, 'the test segment')\n"
        "except SynthError as error:\n"
        "    print(error)\n"
        "for fd in held:\n"
        "    os.close(fd)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout == "cannot make the test segment: Too many open files\n", done
    assert done.stderr == "", done.stderr


def test_a_render_that_fills_the_disk_is_one_line_and_status_2(tmp_path):
    out = tmp_path / "long.wav"
    done = synth("render", BASIC, "-o", out, "-q", "-d", "10", preexec_fn=small_disk)
    assert done.returncode == 2, done.stderr
    said = re.fullmatch(rf"error: cannot write {re.escape(str(out))} after (\d+\.\d\d) s of audio: .+ "
                        rf"\(is the disk full\?\)\n", done.stderr)
    assert said, done.stderr
    assert float(said[1]) == round(soundfile.info(str(out)).duration, 2) > 0   # what the file holds (it said more)


def test_a_wav_file_that_cannot_even_be_begun_is_not_left_behind_empty(tmp_path):
    """The CLI audit: on a disk too full for the header, the render said
    so and left a file of 0 bytes, which players take for a broken WAV."""
    import resource
    out = tmp_path / "x.wav"
    done = synth("render", BASIC, "-o", out, "-q", "-d", "1",
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20, 20)))
    assert done.returncode == 2 and done.stderr.startswith(f"error: cannot write {out}: "), done.stderr
    assert not out.exists()


#: Most of its time in its modules' process(), where a SIGTERM lands.
HEAVY = ("add supersaw s freq=110\nadd supersaw t freq=165\nadd mix m\nadd reverb r\nconnect s m.in1\n"
         "connect t m.in2\nconnect m r\nconnect r out\n")


@pytest.mark.parametrize("sig, executor", [(signal.SIGINT, "auto"), (signal.SIGTERM, "auto"),
                                           (signal.SIGTERM, "inline"), (signal.SIGHUP, "auto")])
def test_a_signal_during_a_render_leaves_a_valid_file_and_says_what_it_holds(tmp_path, sig, executor):
    """Ctrl-C, kill or a closed terminal stop a render, with the exit
    status each calls for. A SIGTERM that landed in a module's process()
    was taken for that module's fault: the module fell silent and the
    render went on to its end (the audit: 5 kills in 6). Under inline a
    parent process watches for a crash and passes the signal on (Ctrl-C
    from the terminal reaches both)."""
    out, patch = tmp_path / "long.wav", tmp_path / "heavy.patch"
    patch.write_text(HEAVY)
    proc = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "render", str(patch), "-d", "10000",
                             "-o", str(out), "-q", "-x", executor], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (out.exists() and out.stat().st_size > 1 << 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    said = re.fullmatch(rf"interrupted: {re.escape(str(out))} holds the first ([0-9.]+) s\n", err)
    assert said, err
    data, rate = soundfile.read(str(out))
    assert abs(len(data) / rate - float(said.group(1))) < 0.006
    assert len(data) > rate and np.abs(data[-rate // 10:]).max() > 0.05   # sound to its last block, not a zeroed tail


def test_a_render_longer_than_a_wav_file_holds_is_refused_before_it_starts(tmp_path):
    out = tmp_path / "long.wav"
    done = synth("render", "patches/basic.patch", "-d", "1e9", "-o", str(out))
    assert done.returncode == 2 and not out.exists()
    assert done.stderr == ("error: 1000000000 s will not fit in a WAV file: it holds at most 3.1 hours of "
                           "stereo float32 at 48000 Hz\n")
    done = synth("render", "patches/basic.patch", "-d", "1e9", "--format", "pcm16", "-o", str(out))
    assert "at most 6.2 hours of stereo pcm16" in done.stderr
    done = synth("render", "patches/basic.patch", "-d", "1e305", "-q", "-o", str(out))   # an overflow's traceback
    assert done.returncode == 2 and done.stderr == "error: duration 1e+305 s is too long\n", done.stderr


def test_a_render_asked_for_longer_than_a_wav_holds_of_a_short_song_renders_the_song(tmp_path):
    """--duration cuts a song that is longer; this one is 4 s (the song
    audit had it refused, as if the 20000 s asked were to be written)."""
    out = tmp_path / "short.wav"
    done = synth("render", "songs/demo.seq", "-d", "20000", "-q", "-o", str(out))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert soundfile.info(str(out)).duration < 60


@pytest.mark.parametrize("where", ["write", "_update_frames"])
def test_a_ctrl_c_just_after_a_write_neither_repeats_nor_miscounts_audio(registry, tmp_path, monkeypatch, where):
    """The interrupt can come after libsndfile has written a chunk and before
    the loop notes it, or even before soundfile counts it in ``frames``
    (``_update_frames``, as CI once met): that chunk must not be written
    twice, and the length reported must be the file's."""
    from synthcli.engine.core import Engine
    from synthcli.engine.render import Performance, RenderInterrupted, render_to_wav
    patch = Patch(registry)
    patch.load_text(BASIC.read_text())
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch)
        render_to_wav(Performance(engine, None, 300 * 256), tmp_path / "whole.wav")
    plain, calls = getattr(soundfile.SoundFile, where), []

    def then_interrupt(self, what):   # what: the frames written, or their count
        if where == "write":
            plain(self, what)
        calls.append(what if isinstance(what, int) else len(what))
        if len(calls) == 2:
            raise KeyboardInterrupt
        if where == "_update_frames":
            plain(self, what)
    monkeypatch.setattr(soundfile.SoundFile, where, then_interrupt)
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch)
        with pytest.raises(RenderInterrupted) as stopped:
            render_to_wav(Performance(engine, None, 300 * 256), tmp_path / "cut.wav")
    monkeypatch.undo()
    cut, whole = soundfile.read(str(tmp_path / "cut.wav"))[0], soundfile.read(str(tmp_path / "whole.wav"))[0]
    assert stopped.value.frames == len(cut) == sum(calls) == 2 * 64 * 256
    assert np.array_equal(cut, whole[:len(cut)])


@pytest.mark.parametrize("executor", ["inline", "threads", "auto"])
def test_a_plugin_that_crashes_a_render_is_survived_or_said(site, tmp_path, executor):
    """By default a crashing plugin runs in a worker, from its setup() on:
    quarantined, the rest renders. (auto once built the modules inline
    first, so a setup() that crashed or hung took the render with it.)
    Under --executor inline or threads it runs in the render's own
    process, which it ends: that is said in one line, naming the module
    (it once exited 139 with a WAV whose header said it was empty), and
    the file holds what was rendered."""
    from faulty import CRASHING_PLUGIN
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-crash", CRASHING_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    patch = tmp_path / "p.patch"
    patch.write_text("add crash c\nadd vco v wave=sine freq=440\nconnect c out.left\nconnect v out.right\n")
    out = tmp_path / "out.wav"

    def crash_in_setup():
        (site / "synthcli_crash.py").write_text((site / "synthcli_crash.py").read_text().replace(
            "self.blocks = np.zeros(1)", "ctypes.string_at(0)"))
    if executor == "auto":
        for _ in ("in process()", "in setup()"):
            done = synth("render", patch, "-d", "3", "-o", out, env={**env, "PYTHONPATH": str(site)})
            data, rate = soundfile.read(str(out))
            assert done.returncode == 0 and len(data) == 3 * rate, done.stderr
            assert "quarantined" in done.stderr and np.abs(data[-rate:, 1]).max() > 0.1
            crash_in_setup()
        return
    done = synth("render", patch, "-d", "3", "-o", out, "-x", executor, env={**env, "PYTHONPATH": str(site)})
    data, rate = soundfile.read(str(out))
    assert done.returncode == 1, done.stderr
    said = re.fullmatch(rf"error: synth render crashed \(SIGSEGV\) in the process\(\) of module type 'crash' "
                        rf"\(from synthcli-crash 1.0\) under --executor {executor}, where every module runs in "
                        rf"synth render's own process \(the default executor isolates plugin modules\); "
                        rf"{re.escape(str(out))} holds the first ([0-9.]+) s\n", done.stderr)
    assert said, done.stderr
    assert abs(len(data) / rate - float(said[1])) < 0.006 and len(data) > 0.3 * rate
    assert np.abs(data[rate // 10:, 0] - 0.1).max() < 1e-6   # the crash's sound, to the last chunk written
    # Crashing in setup(), before the file is opened: an older file of that name is not "held".
    crash_in_setup()
    done = synth("render", patch, "-d", "3", "-o", out, "-x", executor, env={**env, "PYTHONPATH": str(site)})
    assert done.returncode == 1 and done.stderr.endswith(f"; nothing was written to {out}\n"), done.stderr
    assert "in the setup() of module type 'crash' (from synthcli-crash 1.0)" in done.stderr
    assert len(soundfile.read(str(out))[0]) == len(data)


def test_a_module_that_exits_an_inline_render_is_said_even_at_status_0(site, tmp_path):
    """The plugin audit: a module's os._exit(0) under --executor inline
    ended the render in silence, with status 0 and a third of the file,
    as if it had rendered all of it; os._exit(3) gave status 3 and no word."""
    from faulty import CRASHING_PLUGIN
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-crash", CRASHING_PLUGIN.replace("ctypes.string_at(0)", "__import__('os')._exit(0)"))
    env = {**{k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}, "PYTHONPATH": str(site)}
    patch = tmp_path / "p.patch"
    patch.write_text("add crash c\nadd vco v wave=sine freq=440\nconnect c out.left\nconnect v out.right\n")
    out = tmp_path / "out.wav"
    done = synth("render", patch, "-d", "3", "-o", out, "-x", "inline", env=env)
    said = re.fullmatch(rf"error: synth render exited \(status 0\) in the middle of the render under --executor "
                        rf"inline, where every module runs in synth render's own process \(the default executor "
                        rf"isolates plugin modules\); {re.escape(str(out))} holds the first ([0-9.]+) s\n", done.stderr)
    assert done.returncode == 1 and said, done.stderr
    assert 0 < float(said[1]) < 3
    done = synth("render", patch, "-d", "0.2", "-o", out, "-x", "inline", env=env)   # over before the exit
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr


def test_a_module_that_hangs_an_inline_render_is_named_and_ctrl_c_keeps_the_file(site, tmp_path):
    """Under inline nothing ends a module's hang: the render waited for
    ever without a word (the plugin audit's time.sleep(100) in process()).
    A module that is only slow is not taken for one that hangs, though the
    file grows only every 64 blocks (the review's false alarm)."""
    from faulty import HANGING_PLUGIN, SLOW_BLOCKS
    patience = 3   # SYNTHCLI_HANG_SECONDS, for a test shorter than the 10 s the watch waits by default
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-hang", HANGING_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    patch = tmp_path / "p.patch"
    patch.write_text("add hang h\nconnect h out\n")
    out = tmp_path / "out.wav"
    render = subprocess.Popen([sys.executable, "-m", "synthcli.cli", "render", str(patch), "-d", "3", "-o", str(out),
                               "-x", "inline", "-q"], cwd=ROOT,
                              env={**env, "PYTHONPATH": str(site), "SYNTHCLI_HANG_SECONDS": str(patience)},
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    began = time.monotonic()
    line = render.stderr.readline()
    waited = time.monotonic() - began
    os.killpg(render.pid, signal.SIGINT)     # Ctrl-C, as a terminal sends it to the whole group
    rest = render.communicate(timeout=30)[1]
    assert line == (f"warning: synth render has written nothing for {patience} s, in the process() of module type 'hang' "
                    "(from synthcli-hang 1.0); it may hang: here no deadline ends a module, and Ctrl-C keeps what "
                    "was rendered (--executor processes would end it at its deadline)\n"), line
    slow = SLOW_BLOCKS * 0.17
    assert slow + patience <= waited < slow + patience + 15, waited
    assert render.returncode == 130 and rest.startswith("interrupted"), rest
    data, rate = soundfile.read(str(out))
    assert len(data) > rate // 10 and np.abs(data[rate // 100:, 0] - 0.1).max() < 1e-6   # its first blocks, after the fade-in


def test_a_crash_under_auto_of_a_module_no_worker_can_host_is_said(site, tmp_path):
    """A class made inside a function cannot travel to a worker process:
    the registry warns of it at load, auto keeps the patch in its own
    process rather than silence it, and a crash there is still said."""
    from test_entrypoints import fake_plugin
    made = """
import ctypes
import numpy as np
def make():
    class Crash(Module):
        type_name = "crash"
        outputs = (Port("out"),)
        def process(self, inputs, params, outputs):
            if self.blocks > 100:
                ctypes.string_at(0)
            self.blocks += 1
            outputs["out"][:] = 0.1
        def setup(self):
            self.blocks = 0
    return Crash
@hookimpl
def register_modules(register):
    register(make())
"""
    fake_plugin(site, "synthcli-crash", made)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    patch = tmp_path / "p.patch"
    patch.write_text("add crash c\nadd vco v wave=sine freq=440\nconnect c out.left\nconnect v out.right\n")
    out = tmp_path / "out.wav"
    done = synth("render", patch, "-d", "3", "-o", out, env={**env, "PYTHONPATH": str(site)})
    warning, error = done.stderr.splitlines()
    assert warning == ("warning: synthcli-crash: module type 'crash' cannot run in a worker process: its class "
                       "'make.<locals>.Crash' is not importable by name (define it at the top level of a module); "
                       "--executor processes leaves it silent, and auto runs it in synthcli's own process, "
                       "unguarded")
    assert done.returncode == 1 and re.fullmatch(
        r"error: synth render crashed \(SIGSEGV\) in the process\(\) of module type 'crash' \(from synthcli-crash "
        r"1.0\) under --executor auto, which ran every module in synth render's own process: a plugin's module "
        rf"class could not go to a worker process \(see its warning\); {re.escape(str(out))} holds the first "
        r"[0-9.]+ s", error), error


SLOW_START = """
import time
class SlowStart(Module):
    type_name = "slowstart"
    outputs = (Port("out"),)
    def setup(self):
        time.sleep(2.5)   # as long as a big kernel compiling
    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.1
@hookimpl
def register_modules(register):
    register(SlowStart)
"""


def test_a_slow_plugin_warm_up_is_said_while_the_render_waits(site, tmp_path):
    """Workers start only once every installed plugin has been warmed up
    in a trial fork, which may take up to 20 s: past 2 s the musician
    hears which module it waits for (it once waited 20 s in silence)."""
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-slowstart", SLOW_START)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    patch = tmp_path / "p.patch"
    patch.write_text("add slowstart s\nconnect s out\n")
    done = synth("render", patch, "-d", "0.5", "-q", "-o", tmp_path / "out.wav", env={**env, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("warning: module type 'slowstart' (from synthcli-slowstart 1.0) is taking over 2 s to warm "
                           "up (compiling, or hung in setup() or a first block); it is given 20 s\n"), done.stderr
    assert np.abs(soundfile.read(str(tmp_path / "out.wav"))[0][4800:-4800] - 0.1).max() < 1e-6   # no fades


def test_a_song_file_with_no_length_renders_four_seconds_as_a_patch_and_check_says_so(tmp_path):
    """A `tempo` or `meter` makes a file a song, but without patterns or
    `at` nothing asks it for a `length`: render took it for endless and
    filled the disk (84 GB), and check ended in a traceback."""
    song = tmp_path / "t.seq"
    song.write_text("meter 3/4\nadd vco o\nconnect o out\n")
    out = tmp_path / "t.wav"
    done = synth("render", song, "-o", out, "-q", timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert soundfile.info(str(out)).frames == 4 * 48000
    done = synth("check", song)
    assert (done.returncode, done.stdout) == (0, f"{song}: ok (1 module, 1 cable, at 120 BPM, no length: it renders "
                                                 f"4 s, as a patch)\n"), done.stderr
    song.write_text("tempo 120\nlength 2\nat 1 tempo 100\nadd vco o\nconnect o out\n")   # the tempo bar 1 plays at
    assert synth("check", song).stdout == f"{song}: ok (1 module, 1 cable, 2 bars at 100 BPM, 4.8 s, 0 patterns)\n"
