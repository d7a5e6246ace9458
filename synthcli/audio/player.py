"""The control side of live play: starts the engine process, sends it
commands, receives meters, and records what was played.

The engine process is forked before this process starts any thread of its
own; the recorder reads the shared-memory ring from here, so writing the
WAV file never competes with the audio callback for the engine's GIL.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from multiprocessing import resource_tracker

import numpy as np

from ..engine.board import unlink
from ..engine.crashes import IN_PROCESS, culprit, told
from ..errors import SynthError, exit_reason
from .ring import CALLBACKS, LENGTH, PLAYED, RECORDED, RECORDING, SILENCE, XRUNS, Ring

#: Seconds between looks at whether the engine stopped by itself (see Player.wait).
STOP_POLL = 0.01


class Player:
    """A live engine in its own process.

    Parameters
    ----------
    patch : str or None
        The patch text to play, or None with ``song``.
    song : str, optional
        The text of a song to play instead (``source`` names its file).
    record : str, optional
        A WAV file to write what the device is sent to, from the start.
    settings : keyword arguments
        ``samplerate``, ``blocksize``, ``latency`` (low, normal, safe),
        ``device``, ``executor``, ``workers``, ``safe_mode``, and ``frames``
        (stop at this sample, faded out; None plays until stopped);
        ``start`` (the bar to start a song or MIDI file at, from 0);
        ``watch`` (a song plays on past its end, for edits to come);
        ``clock_out`` (a MIDI output port to send MIDI clock to);
        ``clock_in`` (True: an outside MIDI clock's beats come, see
        :meth:`beats`); for a MIDI
        file, ``midi`` (its path; patch and song None), ``midi_patch`` (the
        voice patch text, None for the built-in one) and ``midi_patch_source``;
        ``link`` (``{"quantum": beats, "offset": seconds}``) joins an Ableton
        Link session from the start.
    on_error, on_warning : callable, optional
        ``on_error(line)``, ``on_warning(line)``: what the engine process has
        to say (a warning: a plugin's slow or failed warm-up as it starts).
    on_applied : callable, optional
        ``on_applied(bar, when)``: a new version of the song took over at
        ``bar`` (from 1), heard at wall-clock time ``when``.
    on_link : callable, optional
        ``on_link(news)`` with a dict whenever the Link session changes:
        ``peers``, ``tempo`` and ``playing``; or ``failed`` (why Link is not
        on) and ``tempo`` (ours, which plays on); or ``off``.
    """

    def __init__(self, patch: str | None, *, song: str | None = None, source: str | None = None,
                 record: str | None = None, on_error=None, on_warning=None, on_applied=None, on_link=None,
                 **settings) -> None:
        self.settings = {"patch": patch, "song": song, "source": source, "record": record, **settings}
        self.record_path = record
        self.on_error = on_error or (lambda message: None)
        self.on_warning = on_warning or (lambda message: None)
        self.on_applied = on_applied or (lambda bar, when: None)
        self.on_link = on_link or (lambda news: None)
        self.info: dict = {}
        self.final: dict = {}
        self._asked = itertools.count()
        self._awaited: dict[int, queue.Queue] = {}   # each meters request still waited for, by number
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._failure: str | None = None
        self.lost: str | None = None   # why the audio stopped by itself (the sound server quit, say)
        self.broke: str | None = None   # why the engine stopped by itself (a bug of ours)
        self.take: Take | None = None           # the recording going on, or the last one
        self.record_failed: str | None = None   # why a recording stopped early, if one did
        self._sending = threading.Lock()
        self.midi_out = None    # the Sender of the MIDI the engine times (midi/out.py), once it sends some
        self._bundles = threading.local()
        self._dump = None   # where a crash under an in-process executor leaves its stack (engine/crashes.py)

    def start(self) -> dict:
        """Start the engine process; returns what it reports once audio
        runs (device, output latency), or raises SynthError."""
        from .engine_process import engine_main
        forking = threading.active_count() == 1
        ctx = mp.get_context("fork" if forking else "spawn")
        # One tracker for the ring, whoever dies first. It must outlive a hang-up
        # (a closed terminal sends SIGHUP to us all), so it starts with SIGHUP
        # blocked, as multiprocessing itself starts it with SIGINT and SIGTERM blocked.
        hangup = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            resource_tracker.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, hangup)
        if self.settings.get("executor") in IN_PROCESS:
            descriptor, self.settings["crash_dump"] = tempfile.mkstemp(prefix="synthcli-crash-")
            self._dump = os.fdopen(descriptor, "rb")
        self.conn, child = ctx.Pipe()
        # A forked engine also holds this end; it must close it, or this
        # process's death would never reach it as the end of the pipe.
        ours = self.conn.fileno() if forking else None
        self.process = ctx.Process(target=engine_main, args=(child, self.settings, ours), name="synthcli-engine")
        try:
            self.process.start()   # a fork refused (EAGAIN, ENOMEM) must not leave the dump's file behind
            child.close()
            self._open_midi()
            threading.Thread(target=self._read, name="synthcli-replies", daemon=True).start()
            while not self._started.wait(0.1):
                if not self.process.is_alive() and not self._started.is_set():
                    self._started.wait(0.5)
                    if not self._started.is_set():
                        break
            if self._failure or not self.info:   # refused, or died before saying anything
                raise SynthError(self._failure or f"the engine process exited (status {self.process.exitcode})")
        except BaseException:   # refused, or a signal meanwhile: neither the engine nor its MIDI outputs outlive that
            if self.process.pid is not None:
                self.stop(timeout=2.0)
            raise
        finally:   # the engine opened it first thing; ours stays readable
            if self._dump is not None:
                os.unlink(self.settings["crash_dump"])
        if self.record_path:   # the engine keeps every block for it from the first callback on
            self.record(Take(self.record_path, self.settings["samplerate"]), first=0)
        return self.info

    def _open_midi(self) -> None:
        """Open the MIDI outputs the engine will send to while it starts
        (it is forked by now: the sender's thread cannot hold up the fork)."""
        from ..midi.out import Sender, starting_ports
        ports = starting_ports(self.settings)
        if ports:
            self.midi_out = Sender(self.on_warning)
            self.midi_out.open(ports)

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            try:
                self._take(message)
            except Exception as error:   # a caller's callback that fails must not end the replies
                print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        self._stopped.set()
        self._started.set()

    def _take(self, message: tuple) -> None:
        kind = message[0]
        if kind == "started":
            self.info = message[1]
            self._started.set()
        elif kind == "failed":
            self._failure = message[1]
            self._started.set()
        elif kind == "error":
            self.on_error(message[1])
        elif kind == "warning":
            self.on_warning(message[1])
        elif kind == "broke":
            self.broke = message[1]
            self.on_error(message[1])
        elif kind == "meters":
            waiting = self._awaited.pop(message[1], None)
            if waiting is not None:   # else its asker gave up: dropped, not handed to the next one
                waiting.put(message[2])
        elif kind == "applied":
            self.on_applied(message[1], message[2])
        elif kind in ("midi", "midi-halt"):
            if self.midi_out is None:
                from ..midi.out import Sender
                self.midi_out = Sender(self.on_warning)
            self.midi_out.take(message)
        elif kind == "link":
            self.on_link(message[1])
        elif kind == "lost":
            self.lost = message[1]
        elif kind == "stopped":
            self.final = message[1]

    # -- commands ------------------------------------------------------------

    def send(self, *command) -> None:
        collected = getattr(self._bundles, "commands", None)
        if collected is not None:
            collected.append(command)
            return
        self._post(command)

    def _post(self, command: tuple) -> None:
        with self._sending:   # the REPL, OSC and MIDI threads all send; a message must go whole
            try:
                self.conn.send(command)
            except OSError:
                pass

    @contextlib.contextmanager
    def bundle(self, when: float | None = None):
        """Collect what this thread sends and deliver it as one message,
        so the engine applies all of it between the same two blocks: at the
        next block, or with ``when`` (a ``time.time()`` instant) on the
        sample that is heard then. A nested bundle for the same time joins
        the outer one; one for another time goes inside it as a bundle of
        its own, kept for its time."""
        outer = getattr(self._bundles, "commands", None), getattr(self._bundles, "when", None)
        if outer[0] is not None and when == outer[1]:
            yield
            return
        collected: list[tuple] = []
        self._bundles.commands, self._bundles.when = collected, when
        try:
            yield
        finally:
            self._bundles.commands, self._bundles.when = outer
            if collected:
                self.send("batch", when, latest_sets(collected))

    @contextlib.contextmanager
    def atomic(self):
        """Inside a :meth:`bundle`: what this thread sends inside is taken
        out of it again if an exception leaves, as the session then took
        back what it did (see :meth:`Session.atomic`)."""
        collected = self._bundles.commands
        mark = len(collected)
        try:
            yield
        except BaseException:
            del collected[mark:]
            raise

    def set(self, name: str, param: str, value: float) -> None:
        self.send("set", name, param, float(value))

    def load(self, patch_text: str) -> None:
        self.send("load", patch_text)

    def replace_song(self, song_text: str) -> None:
        """Play this version of the song from the next bar on."""
        self.send("song", song_text, False)

    def start_song(self, song_text: str, start: int = 0) -> None:
        """Play this song from its first bar (or bar ``start``, from 0),
        starting with the next block."""
        self.send("song", song_text, True, start)

    def halt_song(self) -> None:
        """Stop the song's patterns and release its notes; the patch plays on."""
        self.send("halt")

    def tap(self, name: str, port: str):
        """Have the engine copy this module output into the tap after each
        block; returns the :class:`~synthcli.audio.tap.Tap` to read it from
        (close it, and call :meth:`untap`, when done)."""
        from .tap import Tap
        self.send("tap", name, port)
        return Tap(self.settings["blocksize"], name=self.info["tap"])

    def untap(self) -> None:
        self.send("untap")

    def link(self, what: str, *args) -> None:
        """Ableton Link: ``link("on", quantum, offset_seconds)``, ``link("off")``,
        ``link("quantum", beats)`` or ``link("tempo", bpm)`` (for every peer)."""
        self.send("link", what, *args)

    def beats(self, line: tuple[float, float, float | None] | None) -> None:
        """Where an outside MIDI clock's beats fall: ``(when, beat, bpm)``,
        the ``time.monotonic()`` instant of beat ``beat`` of the song (its
        quarter notes from bar 1) and the clock's tempo then (None: the
        tempo the engine has); None when the clock (re)starts or jumps and
        its place is not known yet. From the first of these on, a song
        started plays on the clock's beats (synthcli.sequencer.clocked)."""
        self.send("beats", line)

    def meters(self, timeout: float = 1.0) -> dict:
        """The engine's meters now, or {} if they do not come within
        ``timeout`` (the engine busy preparing a command, say)."""
        number, answer = next(self._asked), queue.Queue(maxsize=1)
        self._awaited[number] = answer
        self._post(("meters", number))   # an answer is awaited: never held back in a bundle
        try:
            return answer.get(timeout=timeout)
        except queue.Empty:
            self._awaited.pop(number, None)
            return {}

    def wait(self, timeout: float) -> bool:
        """Whether the engine stopped by itself (the end of --duration)
        within ``timeout`` seconds. It sleeps rather than waits on the
        event: a Ctrl-C raised inside ``Event.wait`` just after it took its
        lock left the lock taken, and the stop that followed waited on it
        for ever (a `synth play` found still running an hour after its
        Ctrl-C, its engine long gone)."""
        deadline = time.monotonic() + timeout
        while not self._stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, STOP_POLL))
        return True

    def stop(self, timeout: float = 5.0) -> dict:
        """Fade out, stop the stream, and wait for the engine process."""
        self.send("stop")
        self.wait(timeout)
        self.process.join(timeout)
        ended = self.process.exitcode   # before a kill of ours
        hung = self.process.is_alive()
        if hung:
            self.process.kill()
            self.process.join()
        if (ended or hung) and not self.final and self.info:   # it could not say what it played
            self.final = self._counters()
            executor = self.settings.get("executor")
            self.lost = self.lost or "the engine process " + (
                f"did not stop within {2 * timeout:g} s and was ended" if hung else
                told(ended, executor, self._culprit(), "it") if executor in IN_PROCESS else exit_reason(ended))
        if self.process.exitcode and self.info:   # killed, or crashed, before its own cleanup
            unlink((self.info["ring"], self.info["tap"]))
        if self.take is not None and self.take.thread is not None:
            self.take.thread.join(timeout)
        if self.midi_out is not None:
            self.midi_out.close()
        if self._dump is not None:
            self._dump.close()
        return self.final

    def _culprit(self) -> str | None:
        """The module the engine process crashed in, from the stack it left."""
        from ..plugins import load_registry
        self._dump.seek(0)
        return culprit(self._dump.read().decode(errors="replace"),
                       load_registry(safe_mode=self.settings.get("safe_mode", False)))

    def _counters(self) -> dict:
        """What the ring's counters say was played, for an engine that
        died before it could report it (they outlive it in shared memory)."""
        ring = Ring(self.info["slots"], self.settings["blocksize"], name=self.info["ring"])
        try:
            return {"played": int(ring.header[PLAYED]), "length": int(ring.header[LENGTH]) or None,
                    "xruns": int(ring.header[XRUNS])}
        finally:
            ring.close()

    # -- recording -----------------------------------------------------------

    def record(self, take: Take, first: int | None = None) -> None:
        """Write every block the callback sends from now on (or from
        callback ``first``) to ``take.path`` until :meth:`stop_recording` or
        the end. The file is opened here, so a name that cannot be written
        is a SynthError at once, not a silent thread."""
        from ..engine.render import open_wav
        if self.take is not None and self.take.running:
            raise SynthError(f"already recording to {self.take.path}: `record stop` first")
        ring = Ring(self.info["slots"], self.settings["blocksize"], name=self.info["ring"])
        try:
            out = open_wav(take.path, self.settings["samplerate"])
        except (RuntimeError, OSError) as error:   # soundfile's LibsndfileError is a RuntimeError
            ring.close()
            raise SynthError(f"cannot write {take.path}: {str(error).strip()}") from None
        if first is None:
            # Slots are kept for the recorder from the block playing now on
            # (one earlier, in case a callback is between its two counters),
            # before the first callback it writes is chosen.
            ring.header[RECORDED] = max(0, int(ring.header[PLAYED]) - 1)
            ring.header[RECORDING] = 1
            first = int(ring.header[CALLBACKS])
        self.take = take
        take.thread = threading.Thread(target=self._record, args=(take, out, ring, first),
                                       name="synthcli-recorder", daemon=True)
        take.thread.start()

    def stop_recording(self) -> Take | None:
        """End the recording after the block the callback is sending now;
        returns it, finished, or None when there was none."""
        take = self.take
        if take is None or not take.running:
            return None
        take.stop.set()
        take.thread.join()
        return take

    def _record(self, take: Take, out, ring: Ring, first: int) -> None:
        """Write every block the callback sent, silence included, in order,
        and none of the piece past its end (the rest of its last block is
        silence), so a recording from the start is the file ``synth
        render`` writes."""
        import soundfile
        silence = np.zeros((ring.blocksize, 2), np.float32)
        done = first
        try:
            with out:
                while True:
                    finished = self._stopped.is_set() or take.stop.is_set()
                    calls = int(ring.header[CALLBACKS])
                    end = int(ring.header[LENGTH]) or None   # known before its last block is played
                    for k in range(done, calls):
                        played = int(ring.log[k % ring.kept])
                        if played == SILENCE:
                            out.write(silence)
                            take.frames += ring.blocksize
                        elif end is None or (played + 1) * ring.blocksize <= end:
                            out.write(ring.data[played % ring.slots])
                            take.frames += ring.blocksize
                        elif played * ring.blocksize < end:
                            out.write(ring.data[played % ring.slots][:end - played * ring.blocksize])
                            take.frames += end - played * ring.blocksize
                        if played != SILENCE:
                            ring.header[RECORDED] = played + 1
                    done = calls
                    if finished:
                        break
                    time.sleep(0.01)
        except (soundfile.LibsndfileError, OSError) as error:   # a full disk, a file size limit
            take.failed = self.record_failed = (
                f"cannot write {take.path} after {take.seconds:.2f} s: "
                f"{str(error).strip()} (is the disk full?); the music plays on")
            self.on_error(self.record_failed)
        finally:
            ring.header[RECORDING] = 0
            ring.close()


class Take:
    """One recording of what the device was sent, to a WAV file.

    Attributes
    ----------
    path : str
    frames : int
        Frames written so far (all of them once it has ended).
    failed : str or None
        Why it ended early (a full disk).
    """

    def __init__(self, path: str, samplerate: int) -> None:
        self.path = path
        self.samplerate = samplerate
        self.frames = 0
        self.failed: str | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate


def latest_sets(commands: list[tuple]) -> list[tuple]:
    """A bundle's commands with only the last ``set`` of each parameter:
    they all start on the same sample, where only the last value counts, so
    a burst of knob messages costs the pipe and the engine one each."""
    last = {command[1:3]: k for k, command in enumerate(commands) if command[0] == "set"}
    return [command for k, command in enumerate(commands) if command[0] != "set" or last[command[1:3]] == k]
