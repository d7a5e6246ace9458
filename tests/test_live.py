"""Live play through PortAudio into a real JACK server (dummy backend),
checked on what the server received (jack_rec) or what was sent to the
device (--record), never on mocks of the audio path."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synthcli.bench import reference_patch
from synthcli.harness import Playing, jack_dummy_server, shared_memory_of
from synthcli.testing import peak_frequency
from test_entrypoints import install

ROOT = Path(__file__).parent.parent
SR = 48000
BLOCK = 256


def write(tmp_path, text, name="p.patch"):
    path = tmp_path / name
    path.write_text(text)
    return path


def play(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "synthcli", "play", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_pitch_and_level_reach_the_server(jack_server, portaudio_ports, tmp_path):
    patch = write(tmp_path, "add vco a wave=sine freq=440\nadd vca v level=0.5\nconnect a v\nconnect v out\n")
    proc = play(patch, "--duration", "6")
    ports = portaudio_ports()
    taken = tmp_path / "server.wav"
    subprocess.run(["jack_rec", "-f", str(taken), "-d", "2", *ports], check=True, capture_output=True, timeout=20)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data, sr = soundfile.read(str(taken))
    assert sr == SR and data.shape[1] == 2
    left = data[int(0.2 * sr):, 0]
    assert abs(peak_frequency(left) - 440.0) < 1.0
    assert abs(np.abs(left).max() - 0.5) < 0.02            # vco sine 1.0 x vca 0.5
    assert np.allclose(data[:, 0], data[:, 1])              # mono into out feeds both sides
    assert " 0 xruns" in err


def test_reference_patch_32_voices_plays_5_s_without_xruns(jack_server, tmp_path):
    """A smoke test: benchmarks/realtime.py measures the polyphony itself."""
    patch = write(tmp_path, reference_patch(32))
    proc = play(patch, "--duration", "5", "--blocksize", "256")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "5.00 s played, 0 xruns" in err


def test_record_holds_what_was_sent_with_clean_fades(jack_server, tmp_path):
    patch = write(tmp_path, "add vco a wave=sine freq=220\nconnect a out\n")
    take = tmp_path / "take.wav"
    proc = play(patch, "--duration", "1", "--record", take)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data, sr = soundfile.read(str(take))
    assert len(data) >= SR and (len(data) - SR) % BLOCK == 0   # a second, and a block for any xrun
    steady = np.abs(np.diff(data[int(0.3 * sr):int(0.6 * sr), 0])).max()
    ten_ms = int(0.010 * sr)
    first = data[:ten_ms, 0]
    sounding = np.flatnonzero(np.abs(data[:, 0]) > 0)
    last = data[sounding[-1] - ten_ms:sounding[-1] + 1, 0]
    assert np.abs(np.diff(first)).max() <= steady * 1.01 and abs(first[0]) <= steady
    assert np.abs(np.diff(last)).max() <= steady * 1.01
    assert np.abs(data[sounding[-1] + 1:]).max(initial=0.0) == 0.0   # silence after the fade-out
    assert abs(peak_frequency(data[int(0.2 * sr):int(0.9 * sr), 0]) - 220.0) < 1.0


def test_a_set_while_playing_is_heard_within_two_blocks(jack_server, tmp_path):
    from synthcli.audio.player import Player
    from synthcli.audio.ring import PLAYED, Ring
    take = tmp_path / "take.wav"
    player = Player("add vco a wave=sine freq=300\nadd vca v level=0.2\nconnect a v\nconnect v out\n",
                    record=str(take), samplerate=SR, blocksize=BLOCK, latency="low", device=None,
                    executor="processes", workers=1, safe_mode=True, blocks=None)
    info = player.start()
    ring = Ring(info["slots"], BLOCK, name=info["ring"])
    try:
        time.sleep(0.5)
        before = int(ring.header[PLAYED])
        player.set("v", "level", 0.8)
        time.sleep(0.5)
    finally:
        ring.close()
        final = player.stop()
    assert final["xruns"] == 0
    data, _ = soundfile.read(str(take))
    data = data[:len(data) // BLOCK * BLOCK]   # the take ends where the stop's fade does
    levels = np.abs(data[:, 0]).reshape(-1, BLOCK).max(axis=1)
    changed = int(np.flatnonzero(levels > 0.3)[0])
    # The recording starts at the first callback; blocks are numbered alike.
    assert changed - before <= 2, (changed, before)


def test_meters_are_those_of_now_after_a_request_that_timed_out(jack_server):
    """A request that timed out left its late answer in the queue, and every
    later one was handed the answer before its own: the toolbar, `top` and
    OSC's stats a step (here a second) behind."""
    from synthcli.audio.player import Player
    player = Player("add vco a\nconnect a out\n", samplerate=SR, blocksize=BLOCK, latency="normal", device=None,
                    executor="inline", workers=None, safe_mode=True, blocks=None)
    player.start()
    try:
        assert player.meters(timeout=0) == {}     # given up on at once; its answer comes late
        time.sleep(1.0)
        asked = player.meters(timeout=2)["played"]
        again = player.meters(timeout=2)["played"]
    finally:
        player.stop()
    assert 0 <= again - asked < SR / BLOCK / 4, (asked, again)   # not a second apart


def test_a_recording_that_stalls_longer_than_the_ring_keeps_every_block_played(jack_server, tmp_path, monkeypatch):
    """The callbacks' log was as long as the ring (0.7 s of callbacks): a
    recorder held up longer (a disk that stalls) found the entries of the
    blocks it had yet to write overwritten by the silences the stall
    brought, and wrote silence where music had been played."""
    import soundfile as sf
    from synthcli.audio.player import Player
    from synthcli.audio.ring import PLAYED, Ring
    write_block = sf.SoundFile.write
    stalled, began = [], time.monotonic()

    def stalling(self, data):
        if not stalled and time.monotonic() > began + 1.0:
            stalled.append(True)
            time.sleep(1.5)
        return write_block(self, data)
    monkeypatch.setattr(sf.SoundFile, "write", stalling)
    take = tmp_path / "take.wav"
    player = Player("add vco a wave=sine freq=300\nconnect a out\n", record=str(take), samplerate=SR,
                    blocksize=BLOCK, latency="normal", device=None, executor="inline", workers=None,
                    safe_mode=True, blocks=None)
    info = player.start()
    ring = Ring(info["slots"], BLOCK, name=info["ring"])
    try:
        time.sleep(3.0)
        played = int(ring.header[PLAYED])
    finally:
        ring.close()
        player.stop()
    assert stalled
    data, _ = sf.read(str(take))
    blocks = np.abs(data[:len(data) // BLOCK * BLOCK, 0]).reshape(-1, BLOCK).max(axis=1)
    assert (blocks > 0.5).sum() >= played - 2, ((blocks > 0.5).sum(), played)   # the stop's fade: not full


def test_killing_a_worker_leaves_the_rest_sounding_without_xruns(jack_server, tmp_path):
    from synthcli.audio.player import Player
    take = tmp_path / "take.wav"
    text = ("add vco a wave=sine freq=440\nconnect a out.left\n"
            "add vco b wave=sine freq=660\nconnect b out.right\n")
    # At --latency safe (4 blocks ahead): at normal the ~3 ms recovery fitted
    # in 12 of 12 runs alone but cost an xrun about once in five full runs.
    player = Player(text, record=str(take), samplerate=SR, blocksize=BLOCK, latency="safe", device=None,
                    executor="processes", workers=1, safe_mode=True, blocks=None)
    player.start()
    try:
        time.sleep(0.5)
        workers = player.meters()["workers"]
        os.kill(workers[1]["pid"], signal.SIGKILL)
        time.sleep(1.0)
        meters = player.meters()
    finally:
        final = player.stop()
    assert meters["workers"][1]["pid"] != workers[1]["pid"]   # the spare took over
    assert meters["workers"][1]["restarts"] == 1 and meters["modules"]["b"]["restarts"] == 1
    assert final["xruns"] == 0 and final["underflows"] == 0
    data, _ = soundfile.read(str(take))
    data = data[:len(data) // BLOCK * BLOCK]   # the take ends where the stop's fade does
    per_block = np.abs(data).reshape(-1, BLOCK, 2).max(axis=1)
    body = per_block[4:-4]
    sounding = body[:, 0] > 0.9
    assert sounding.all()                                    # the engine's own module never stopped
    # The killed worker's module is silent for at most a few blocks (none
    # when the worker died idle and the spare took over before the next "go").
    right_gap = np.flatnonzero(body[:, 1] < 0.5)
    assert len(right_gap) <= 3
    assert (body[right_gap.max(initial=-1) + 1:, 1] > 0.9).all()   # ...then back


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_sigterm_and_hangup_stop_cleanly(jack_server, portaudio_ports, tmp_path, sig):
    """Sent to the whole process group, as a terminal's Ctrl-C and hangup,
    `timeout` and service managers send them: the workers, which died of a
    SIGTERM or a hangup first, were reported as failing modules (the new
    user's `timeout 6 synth play song.mid`)."""
    temp = tmp_path / "tmp"      # where multiprocessing keeps the forkserver's socket
    temp.mkdir()
    proc = play(ROOT / "tests" / "data" / "midi" / "test03.mid", env={**os.environ, "TMPDIR": str(temp)},
                start_new_session=True)
    portaudio_ports()
    time.sleep(0.5)
    assert list(temp.iterdir()), "the engine's forkserver should have made its folder here"
    used = {name for name in shared_memory_of(proc.pid) if name.startswith("synthcli_")}   # JACK's own are there too
    assert used, "live play should be using shared memory"
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err and "warning" not in err, err
    assert "stopped:" in err, err
    time.sleep(0.3)
    assert used & set(os.listdir("/dev/shm")) == set()
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_engine_starts_leaves_nothing_behind(jack_server, tmp_path, sig):
    """Before 'playing ...' is printed the engine is still starting; a
    signal then must end it too, not leave the command waiting on it."""
    patch = write(tmp_path, "add vco a wave=saw freq=110\nconnect a out\n")
    for delay in (0.15, 0.2, 0.25, 0.3):
        proc = play(patch)
        time.sleep(delay)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        # -sig: on a loaded machine the signal can come before Python runs synth's code at all
        assert proc.returncode in (0, 128 + sig, -sig), (delay, err)
        assert "Traceback" not in err, err
        assert subprocess.run(["pgrep", "-f", str(patch)], capture_output=True).stdout == b"", delay


def test_a_sigterm_a_plugin_swallows_while_play_starts_still_stops_it(jack_server, tmp_path):
    """A plugin's hook that catches everything swallowed the SIGTERM's
    exception as `synth play` loaded it, and the command then played on
    for good (a test's orphan, found after a CI run). The signal is
    remembered: play starts, then stops cleanly, with nothing left."""
    site, entered, tried = tmp_path / "site", tmp_path / "entered", tmp_path / "tried"
    site.mkdir()
    # The hook runs first in the plugin's trial process (plugins.trial_import), then in the command's:
    # only the second call says it has begun, so that the signal lands in the command itself.
    (site / "synthcli_greedy.py").write_text(
        "import pathlib\nimport time\n\nfrom synthcli.hookspecs import hookimpl\n\n\n@hookimpl\n"
        "def register_modules(register):\n"
        f"    pathlib.Path({str(tried)!r}).exists() and "
        f"pathlib.Path({str(entered)!r}).touch()\n"
        f"    pathlib.Path({str(tried)!r}).touch()\n"
        "    try:\n        time.sleep(1.0)\n    except BaseException:   # as careless code does\n        pass\n")
    install(site, "synthcli-greedy", "0.1", "greedy = synthcli_greedy", group="synthcli")
    patch = write(tmp_path, "add vco a wave=saw freq=110\nconnect a out\n")
    proc = play(patch, env={**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    deadline = time.monotonic() + 30
    while not entered.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if not entered.exists():
        proc.kill()
        pytest.fail(f"the plugin's hook never ran: {proc.communicate()[1]}")
    proc.send_signal(signal.SIGTERM)     # inside the hook of the command itself, which swallows it
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:    # it plays on: no orphan left to the rest of the run
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped:" in err and "Traceback" not in err, err
    assert subprocess.run(["pgrep", "-f", str(patch)], capture_output=True).stdout == b""


def quit_server(name, sig):
    """Make the JACK server ``name`` quit (SIGTERM), crash (SIGKILL), or
    stall (SIGSTOP) and go on (SIGCONT).
    A crashed server keeps its slot in JACK's registry (eight in all) until
    one of the same name starts: so these servers have fixed names."""
    subprocess.run(["pkill", "--signal", str(int(sig)), "-f", f"jackd -n {name}"], check=True)


@pytest.mark.parametrize("blocksize, latency", [(256, "normal"), (64, "low")])
def test_a_host_buffer_of_several_blocks_plays_without_xruns(jack_server, tmp_path, blocksize, latency):
    """JACK at 1024 frames asks for four blocks of 256 (sixteen of 64) at
    once: a render-ahead counted in blocks alone was empty after two, every
    cycle (768 xruns in 4 s at the defaults, 2,800 at --blocksize 64). Of
    32 blocks of 32 the count came out short, 5 to 28 (30 % xruns): that
    count is held by test_the_host_period_is_read_from_its_callbacks. Played
    here too, 32 blocks of 32 came to 31 to 8,055 xruns in 3 s in 4 runs of
    6 on this VM on 2026-12-07, at the code of the day before as at the
    day's, at --latency safe 2 of 6: its scheduling, which no count of
    ours can tell from the bug, so that size is not played here."""
    patch = write(tmp_path, "add vco a wave=sine freq=440\nconnect a out\n")
    with jack_dummy_server("synthcli-period-1024", period=1024):
        proc = play(patch, "--duration", "3", "--blocksize", blocksize, "--latency", latency)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "3.00 s played, 0 xruns" in err, err


def bursts(per_period, periods, block, slow=(), priming=0, late=()):
    """Callback times of a host that asks for ``per_period`` blocks at the
    start of each period, each callback taking 10 us, those in ``slow``
    (indices within a burst) 0.35 ms; ``priming`` extra blocks at once
    first, and the periods in ``late`` 5 ms late."""
    times, rng = [], np.random.default_rng(1)
    for period in range(periods):
        t = period * per_period * block + (5e-3 if period in late else 0.0) + rng.uniform(0, 20e-6)
        for k in range(per_period + (priming if period == 0 else 0)):
            times.append(t)
            t += 0.35e-3 if k in slow else 10e-6
    return np.array(times)


@pytest.mark.parametrize("per_period, block, slow, priming, late", [
    (32, 32 / SR, (3, 11, 20), 0, ()),     # slow callbacks inside each burst split it where pauses were counted
    (4, 256 / SR, (), 8, ()),              # a priming burst first
    (16, 64 / SR, (5,), 0, (2,)),          # a late period
    (1, 256 / SR, (), 0, (3,)),            # a block a period, one of them late
    (1, 32 / SR, (), 0, ()),               # a block a period, too short for a pause
])
def test_the_host_period_is_read_from_its_callbacks(per_period, block, slow, priming, late):
    """How many blocks the host asks for at once (engine_process.measure_host)."""
    from synthcli.audio.engine_process import blocks_per_period
    assert blocks_per_period(bursts(per_period, 6, block, slow, priming, late), block) == per_period
    everything = np.arange(40) * 10e-6   # all the callbacks seen came at once
    assert blocks_per_period(everything, block) == 40


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_sound_server_that_quits_ends_play_with_one_line(jack_server, tmp_path, sig):
    """No callback will come again once the server is gone: play must say
    so and exit 1 at once, not play on in silence and exit 0 after a long
    stop; its engine and workers must not be left behind, nor their memory."""
    patch = write(tmp_path, "add vco a wave=saw freq=110\nconnect a out\n")
    with jack_dummy_server("synthcli-quits") as name:
        playing = Playing(patch, "--executor", "processes", cwd=ROOT)
        time.sleep(0.5)
        used = {n for n in shared_memory_of(playing.proc.pid) if n.startswith("synthcli_")}
        assert len(used) >= 2, used          # the ring, the tap and the workers' board
        quit_server(name, sig)
        err = playing.finish(signalled=False)
    assert playing.proc.returncode == 1, err
    assert err.rstrip().endswith("error: the audio stopped: the sound server quit or the device went away"), err
    assert "Traceback" not in err and "leaked" not in err, err
    assert subprocess.run(["pgrep", "-f", str(patch)], capture_output=True).stdout == b""
    assert used & set(os.listdir("/dev/shm")) == set()


def test_a_sound_server_that_stalls_ends_play_with_one_line(jack_server, tmp_path):
    """A server stopped whole (SIGSTOP: a debugger, a frozen machine) calls
    back no more, yet PortAudio keeps the stream active: play says so after
    SILENT_SERVER seconds and exits 1, not waiting in silence for ever."""
    from synthcli.audio.engine_process import SILENT_SERVER
    patch = write(tmp_path, "add vco a wave=saw freq=110\nconnect a out\n")
    with jack_dummy_server("synthcli-stalls") as name:
        playing = Playing(patch, cwd=ROOT)
        time.sleep(0.5)
        quit_server(name, signal.SIGSTOP)
        stalled = time.monotonic()
        try:
            playing.proc.wait(SILENT_SERVER + 5)
        finally:
            quit_server(name, signal.SIGCONT)
        waited = time.monotonic() - stalled
        err = playing.finish(signalled=False)
    print(f"play ended {waited:.2f} s after the server stalled")
    assert playing.proc.returncode == 1 and SILENT_SERVER <= waited < SILENT_SERVER + 1, (waited, err)
    assert err.rstrip().endswith(f"error: the audio stopped: the sound server has asked for no sound for "
                                 f"{SILENT_SERVER:g} s (JACK drops a client that stalls)"), err
    assert "Traceback" not in err and "leaked" not in err, err


def test_no_device_is_one_clear_line(tmp_path):
    patch = write(tmp_path, "add vco a\nconnect a out\n")
    env = {**os.environ, "JACK_DEFAULT_SERVER": "synthcli-no-such-server", "JACK_NO_START_SERVER": "1"}
    proc = play(patch, "--duration", "1", env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == ["error: no audio output device found: start a sound server (JACK, PulseAudio, PipeWire) "
                     "or use `synth render FILE -o out.wav`"]


def test_missing_portaudio_says_what_to_install(tmp_path):
    # PortAudio cannot be uninstalled inside a test, so this one hides it
    # from ctypes, the way a machine without libportaudio2 looks to sounddevice.
    patch = write(tmp_path, "add vco a\nconnect a out\n")
    code = ("import ctypes.util, sys; ctypes.util.find_library = lambda name: None\n"
            "sys.argv = ['synth', 'play', sys.argv[1]]\n"
            "from synthcli.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, str(patch)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "apt-get install libportaudio2" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("cut", [[], ["--duration", "1.3"], ["--from", "2"]], ids=["whole", "cut", "from"])
def test_a_song_plays_exactly_what_it_renders(jack_server, tmp_path, cut):
    """Cut by --duration too (1.3 s is no whole number of blocks): the
    recording once ran on to its last block's end. Started at bar 2 with
    --from, it plays the same samples as it renders from there."""
    song = write(tmp_path, (ROOT / "songs" / "demo.seq").read_text().replace("length 16", "length 2"), "s.seq")
    rendered, take = tmp_path / "render.wav", tmp_path / "take.wav"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(rendered),
                           "--executor", "processes", "--workers", "1", *cut], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    proc = play(song, "--record", take, "--workers", "1", *cut)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and " 0 xruns" in err, err
    a, _ = soundfile.read(str(rendered), dtype="float32")
    b, _ = soundfile.read(str(take), dtype="float32")
    assert a.shape == b.shape and np.array_equal(a, b)


def test_the_time_played_is_the_pieces_not_its_last_blocks(jack_server, tmp_path):
    """0.3 s in blocks of 8192 samples is two blocks, the second mostly
    silence after the cut: 'stopped' once said 0.34 s played."""
    take = tmp_path / "take.wav"
    proc = play(write(tmp_path, "add vco a wave=sine freq=220\nconnect a out\n"), "--blocksize", "8192",
                "--duration", "0.3", "--record", take)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.splitlines()[-1].startswith("stopped: 0.30 s played, 0 xruns"), err
    assert len(soundfile.read(str(take))[0]) == round(0.3 * SR)


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_every_live_executor_plays_a_song_as_it_renders(jack_server, tmp_path, executor):
    """`synth play` reads the engine's meters while it plays (for news of
    failing modules): without worker processes there are none of their
    figures, which once ended play with a traceback half a second in."""
    song = write(tmp_path, (ROOT / "songs" / "demo.seq").read_text().replace("length 16", "length 2"), "s.seq")
    rendered, take = tmp_path / "render.wav", tmp_path / "take.wav"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(rendered)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    proc = play(song, "--record", take, "--executor", executor)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err.splitlines()[-1].startswith("stopped: "), err
    assert np.array_equal(soundfile.read(str(rendered), dtype="float32")[0],
                          soundfile.read(str(take), dtype="float32")[0])


def test_watch_applies_saves_at_the_next_bar_and_keeps_a_broken_one_out(jack_server, portaudio_ports, tmp_path):
    base = "tempo 240\nlength 2\nadd keys kb voices=1\nadd vco o wave=sine\nconnect kb.voct o.voct\nconnect o out\n"
    song = write(tmp_path, base + 'pattern kb "c4" legato=1\n', "live.seq")
    take = tmp_path / "take.wav"
    proc = play(song, "--watch", "--record", take)
    portaudio_ports()
    time.sleep(1.5)
    song.write_text(base + 'pattern kb "a4" legato=1\n')
    time.sleep(1.5)
    song.write_text(base + 'pattern kb "a4 [c5"\n')
    time.sleep(1.5)
    song.write_text("")                                   # an editor between emptying and writing, stuck
    time.sleep(1.0)
    song.write_text(base + 'pattern kb "a4" legato=1\n')  # the broken save undone: what plays already
    time.sleep(1.0)
    song.write_bytes(b"\xef\xbb\xbf" + song.read_bytes())   # an editor's byte-order mark: the same text
    time.sleep(1.0)
    song.unlink()
    time.sleep(0.6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    applied = [line for line in err.splitlines() if line.startswith("applied")]
    assert len(applied) == 1 and " at bar " in applied[0] and "ms after the save" in applied[0], err
    assert "live.seq:7:16: unbalanced '['" in err and "still playing the last good version" in err
    assert f"error: {song}: the file is empty (still playing the last good version)" in err
    assert err.count(f"{song}: nothing that plays changed; nothing to apply") == 2, err
    assert err.count(f"warning: {song} is gone; the last version plays on") == 1
    assert " 0 xruns" in err
    data, sr = soundfile.read(str(take))
    bar = int(applied[0].split(" at bar ")[1].split(",")[0])
    change = (bar - 1) * sr          # a bar lasts 1 s at 240 BPM
    assert abs(peak_frequency(data[change - sr // 2:change, 0]) - 261.63) < 2
    assert abs(peak_frequency(data[change + 1000:change + sr // 2, 0]) - 440.0) < 2
    assert abs(peak_frequency(data[-sr // 2 - 2000:-2000, 0]) - 440.0) < 2   # the broken save changed nothing


def test_a_refused_sample_rate_is_one_line_naming_the_flag(jack_server, tmp_path):
    patch = write(tmp_path, "add vco a\nconnect a out\n")
    proc = play(patch, "--samplerate", "44100", "--duration", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "refuses 44100 Hz" in lines[0] and "--samplerate" in lines[0]


def test_the_tap_carries_a_module_output_without_xruns(jack_server):
    """The scope's tap: what the render thread copies out of a module's
    output after each block is that module's signal (a 440 Hz vco, heard
    through a vca at 0.3, taps at full scale), and tapping costs no xrun."""
    from synthcli.audio.player import Player
    player = Player("add vco a wave=saw freq=440\nadd vca v level=0.3\nconnect a v\nconnect v out\n",
                    samplerate=SR, blocksize=BLOCK, latency="normal", device=None,
                    executor="processes", workers=1, safe_mode=True, blocks=None)
    player.start()
    try:
        tap = player.tap("a", "out")
        time.sleep(1.0)
        samples = tap.latest(8192)
        player.set("a", "freq", 220.0)
        time.sleep(0.5)
        lower = tap.latest(8192)
        player.untap()
        tap.close()
    finally:
        final = player.stop()
    assert len(samples) == 8192
    assert abs(peak_frequency(samples) - 440.0) < 1.0
    assert 0.9 < np.abs(samples).max() <= 1.1                 # the vco itself, before the vca
    assert abs(peak_frequency(lower) - 220.0) < 1.0
    assert final["xruns"] == 0 and final["underflows"] == 0


def test_the_tap_of_a_removed_module_goes_silent(registry):
    """The scope drew a removed module's last sound on, as if it still
    played: the tap now carries silence until the module comes back."""
    from synthcli.audio.tap import Tap
    from synthcli.engine.core import Engine
    from synthcli.patch import Patch
    patch = Patch(registry)
    patch.load_text("add vco a wave=saw freq=440\nconnect a out\n")
    tap = Tap(256)
    try:
        tap.select(("a", "out"))
        with Engine(registry, SR, 256) as engine:
            engine.load(patch)
            for _ in range(8):
                engine.process_block()
                tap.after_block(engine)
            assert np.abs(tap.latest(2048)).max() > 0.9
            gone = Patch(registry)
            gone.load_text("add noise n\n")
            engine.load(gone)
            for _ in range(8):   # its fade-out, then nothing
                engine.process_block()
                tap.after_block(engine)
        assert not tap.latest(1024).any()
    finally:
        tap.close()


def test_waiting_for_the_engine_takes_no_lock_a_ctrl_c_may_leave_taken():
    """`synth play` waited in Event.wait between looks at its meters; a
    Ctrl-C raised in it just after it took the event's lock left the lock
    taken, and the stop that followed (and the reply thread's set()) waited
    on it for ever: a play still running an hour after its Ctrl-C. Here
    the lock is left taken by hand, and both waits still end in time."""
    from synthcli.audio.player import Player
    player = Player("add vco a\nconnect a out\n", samplerate=SR, blocksize=BLOCK, latency="normal", device=None,
                    executor="inline", workers=None, safe_mode=True, blocks=None)
    player._stopped._cond.acquire()
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(player.wait(0.05)), daemon=True)
    waiter.start()
    waiter.join(5)
    assert answers == [False]
    player._stopped._flag = True   # what set() does, past the lock a reply thread would wait on
    assert player.wait(0.05) is True


def test_the_tap_sums_voices_and_averages_the_masters_two_channels(registry):
    """A polyphonic output's voices add up, as a mixer hears them; the
    master's left and right are a pair, not voices, and their sum read a
    sine in the middle at half scale as full scale (`scope out`, +0 dB,
    while the meters said -6)."""
    from synthcli.audio.tap import Tap
    from synthcli.engine.core import Engine
    from synthcli.patch import Patch
    patch = Patch(registry)
    patch.load_text("add keys kb voices=2\nadd vco a wave=sine freq=440\nconnect kb.voct a.voct\n"
                    "add vca v level=0.25\nconnect a v\nconnect v out\n")
    peaks = {}
    for target in (("v", "out"), ("out", "master")):
        tap = Tap(256)
        try:
            tap.select(target)
            with Engine(registry, SR, 256) as engine:
                engine.load(patch)
                for _ in range(16):
                    block = engine.process_block()
                    tap.after_block(engine)
            peaks[target] = np.abs(tap.latest(2048)).max()
        finally:
            tap.close()
    assert np.abs(block).max() == pytest.approx(0.5, abs=0.01)          # each channel of the master
    assert peaks[("out", "master")] == pytest.approx(0.5, abs=0.01)     # their mean
    assert peaks[("v", "out")] == pytest.approx(0.5, abs=0.01)          # two voices of 0.25, summed


def test_a_killed_control_process_stops_its_engine(jack_server, portaudio_ports, tmp_path):
    """SIGKILL leaves no handler to run: the engine must notice the pipe
    close and stop by itself, not play on as an orphan."""
    patch = write(tmp_path, "add vco a wave=saw freq=110\nconnect a out\n")
    temp = tmp_path / "tmp"      # where multiprocessing keeps the forkserver's socket
    temp.mkdir()
    proc = play(patch, env={**os.environ, "TMPDIR": str(temp)})
    portaudio_ports()
    time.sleep(0.5)
    assert list(temp.iterdir()), "the engine's forkserver should have made its folder here"
    engines = set()
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        with open(f"/proc/{proc.pid}/task/{task}/children") as children:
            engines.update(int(pid) for pid in children.read().split())
    assert engines
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    alive = engines
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid for pid in engines if os.path.exists(f"/proc/{pid}") and
                 open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] != "Z"}
    assert not alive, "the engine played on after its control process was killed"


def test_a_recording_that_fills_the_disk_says_so_and_the_music_plays_on(jack_server, tmp_path):
    from test_cli import small_disk
    patch = write(tmp_path, "add vco a wave=sine freq=220\nconnect a out\n")
    take = tmp_path / "take.wav"
    proc = play(patch, "--duration", "2", "--record", take, preexec_fn=small_disk)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    lines = err.splitlines()
    assert re.fullmatch(rf"error: cannot write {re.escape(str(take))} after \d+\.\d\d s: .+ \(is the disk full\?\); "
                        r"the music plays on", lines[1]), err
    assert lines[2].startswith("stopped: 2.00 s played") and "recorded" not in lines[2] and len(lines) == 3


@pytest.mark.parametrize("executor, limit, what", [
    ("inline", 100_000, "the sound goes through"),
    ("processes", 10_000, "the worker processes run the modules in"),
])
def test_shared_memory_that_cannot_be_made_is_one_line(jack_server, tmp_path, executor, limit, what):
    """A full /dev/shm, here a file size limit below a segment's size: a
    worker board's failure was a traceback, and either one drew a KeyError
    traceback from CPython's resource tracker after it."""
    import resource
    patch = write(tmp_path, "add vco a wave=sine freq=220\nconnect a out\n")
    proc = play(patch, "--duration", "2", "--executor", executor,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err == f"error: cannot make the shared memory {what}: File too large " \
                                           f"(is /dev/shm full?)\n", err


SLOW = """
import time
class Slow(Module):
    type_name = "slow"
    outputs = (Port("out"),)
    def process(self, inputs, params, outputs):
        time.sleep(0.008)   # a 5.33 ms block takes 8 ms: slower than the sound
        outputs["out"][:] = 0.1
@hookimpl
def register_modules(register):
    register(Slow)
"""


def test_a_module_too_slow_for_real_time_is_named_once(jack_server, site, tmp_path):
    """Where it runs in the engine's own process (threads), its slowness is
    the xruns: the warning says which module and by how much. (In a worker
    it misses its deadline instead, which the fault lines report.)"""
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-slow", SLOW)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    proc = play(write(tmp_path, "add slow s\nconnect s out\n"), "--duration", "3", "--executor", "threads",
                env={**env, "PYTHONPATH": str(site)})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    said = re.findall(r"warning: module 's' \(slow, from synthcli-slow 1.0\) takes ([0-9.]+) ms to render each "
                      r"5.33 ms block: the sound cannot keep up\n", err)
    assert len(said) == 1 and 8.0 <= float(said[0]) < 12.0, err


def test_an_edit_that_lightens_a_patch_too_slow_for_real_time_is_applied(jack_server, site, tmp_path, monkeypatch):
    """An edit waits until the render thread is LOAD_AHEAD blocks ahead,
    which an engine slower than real time never is: the saved patch that
    took the slow module out never played, nor did any command after it."""
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-slow", SLOW)
    monkeypatch.delenv("SYNTHCLI_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(site))
    patch = write(tmp_path, "add slow s\nadd vco a wave=sine freq=300\nconnect a out.left\nconnect s out.right\n")
    take = tmp_path / "take.wav"
    playing = Playing(patch, "--watch", "--duration", "6", "--executor", "threads", "--record", take,
                      ready="the sound cannot keep up", cwd=ROOT)   # it plays, too slowly
    patch.write_text("add vco a wave=sine freq=500\nconnect a out.left\n")
    err = playing.finish(signalled=False)
    assert playing.proc.returncode == 0, err
    left = soundfile.read(str(take))[0][:, 0]
    assert abs(peak_frequency(left[-SR // 2:], SR) - 500) < 5, err


def test_a_play_whose_engine_stalled_still_ends_in_time(jack_server, tmp_path):
    """Stopped for two seconds (SIGSTOP, as a machine swapping would), the
    engine process plays on, but JACK has dropped PortAudio's client by
    then, and PortAudio's stop() never returned: the play hung for a
    minute at its end. It now gives that stop two seconds, and says so."""
    proc = play(write(tmp_path, "add vco a wave=sine freq=300\nconnect a out\n"), "--duration", "5")
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        engines = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "synthcli"], capture_output=True,
                                 text=True).stdout.split()
        if engines:
            break
        time.sleep(0.1)
    time.sleep(1.5)
    for pid in engines:   # the engine process and the resource tracker (which has nothing to stall)
        os.kill(int(pid), signal.SIGSTOP)
    time.sleep(2.0)
    for pid in engines:
        os.kill(int(pid), signal.SIGCONT)
    stalled = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - stalled < 10.0, err
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_an_engine_that_crashes_under_inline_says_so_and_fails(jack_server, site, tmp_path):
    """Asked for by name, --executor inline runs a plugin in the engine's
    own process, where its segfault ends the sound: that must be said, with
    the way out, and the status must say it failed (it once read "stopped:
    0.00 s played" and exited 0). The recording keeps what was played."""
    from faulty import CRASHING_PLUGIN
    from test_entrypoints import fake_plugin
    fake_plugin(site, "synthcli-crash", CRASHING_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "SYNTHCLI_DISABLE_PLUGINS"}
    take = tmp_path / "take.wav"
    proc = play(write(tmp_path, "add crash c\nconnect c out\n"), "--duration", "3", "--executor", "inline",
                "--record", take, env={**env, "PYTHONPATH": str(site)})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err.splitlines()[-1] == ("error: the engine process crashed (SIGSEGV) in the process() of module type "
                                    "'crash' (from synthcli-crash 1.0) under --executor inline, where every module "
                                    "runs in it (the default executor isolates plugin modules)"), err
    assert "Traceback" not in err
    played = float(re.search(r"stopped: ([0-9.]+) s played", err)[1])
    kept = soundfile.read(str(take))[0]
    assert played > 0.2 and abs(len(kept) / SR - played) < 0.05 and np.abs(kept[-BLOCK:]).min() > 0.05, err


def test_an_engine_that_cannot_be_forked_leaves_no_crash_dump_behind(tmp_path, monkeypatch):
    """The crash dump of an in-process executor is a temporary file that
    the engine opens as it starts; when the fork itself is refused (no
    memory, too many processes: simulated, as a real one would starve the
    test machine), the error goes up and the file goes too."""
    import multiprocessing.process
    import tempfile
    from synthcli.audio.player import Player

    def refused(self):
        raise BlockingIOError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refused)
    player = Player("add vco a\nconnect a out\n", samplerate=SR, blocksize=BLOCK, latency="normal", device=None,
                    executor="inline", workers=None, safe_mode=True, blocks=None)
    with pytest.raises(BlockingIOError):
        player.start()
    assert list(tmp_path.iterdir()) == []


def test_a_song_that_edits_its_patch_every_bar_plays_without_xruns_or_clicks(jack_server, tmp_path):
    """Each bar removes, adds back, disconnects or connects the tone, with
    the modules in worker processes: every such edit rebuilds the
    schedule (5-8 ms), and again a block later when its fades end. The
    render thread now runs ahead before a bar that edits, as it did before
    a typed edit; at two blocks ahead 14 bars of edits played with xruns.
    Every edit fades in or out instead of cutting: the recording never
    steps by more than the sine's own steepest step."""
    edits = ["remove v", "add vca v level=0.5", "connect a v", "connect v out", "disconnect v out",
             "connect v out"]
    bars = "".join(f"at {bar} {edits[(bar - 2) % len(edits)]}\n" for bar in range(2, 16))
    song = write(tmp_path, "tempo 480\nlength 16\nadd vco a wave=sine freq=200\nadd vca v level=0.5\n"
                           "connect a v\nconnect v out\n" + bars, "edits.seq")
    take = tmp_path / "take.wav"
    proc = play(song, "--executor", "processes", "--record", take)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and " 0 xruns" in err, err
    data = soundfile.read(str(take))[0][:, 0]
    steepest = 2 * np.pi * 200 / SR * 0.5
    assert np.abs(data).max() > 0.45 and np.abs(np.diff(data)).max() <= steepest * 1.01
