"""The control side of live play: starts the engine process, sends it
commands, receives meters, and records what was played.

The engine process is forked before this process starts any thread of its
own; the recorder reads the shared-memory ring from here, so writing the
WAV file never competes with the audio callback for the engine's GIL.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from multiprocessing import resource_tracker

import numpy as np

from ..errors import SynthError
from .ring import CALLBACKS, RECORDED, RECORDING, SILENCE, Ring


class Player:
    """A live engine in its own process.

    Parameters
    ----------
    patch : str or None
        The patch text to play, or None with ``song``.
    song : str, optional
        The text of a song to play instead (``source`` names its file).
    settings : keyword arguments
        ``samplerate``, ``blocksize``, ``latency`` (low, normal, safe),
        ``device``, ``executor``, ``workers``, ``safe_mode``, and ``blocks``
        (stop after this many blocks; None plays until stopped); for a MIDI
        file, ``midi`` (its path; patch and song None), ``midi_patch`` (the
        voice patch text, None for the built-in one) and ``midi_patch_source``;
        ``link`` (``{"quantum": beats, "offset": seconds}``) joins an Ableton
        Link session from the start.
    on_link : callable, optional
        ``on_link(news)`` with a dict whenever the Link session changes:
        ``peers``, ``tempo`` and ``playing``; or ``failed`` (why Link is not
        on) and ``tempo`` (ours, which plays on); or ``off``.
    """

    def __init__(self, patch: str | None, *, song: str | None = None, source: str | None = None,
                 record: str | None = None, on_error=None, on_applied=None, on_link=None, **settings) -> None:
        self.settings = {"patch": patch, "song": song, "source": source, "record": record, **settings}
        self.record_path = record
        self.on_error = on_error or (lambda message: None)
        self.on_applied = on_applied or (lambda bar, when: None)
        self.on_link = on_link or (lambda news: None)
        self.info: dict = {}
        self.final: dict = {}
        self._replies: queue.Queue = queue.Queue()
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._failure: str | None = None
        self._recorder: threading.Thread | None = None

    def start(self) -> dict:
        """Start the engine process; returns what it reports once audio
        runs (device, output latency), or raises SynthError."""
        from .engine_process import engine_main
        ctx = mp.get_context("fork" if threading.active_count() == 1 else "spawn")
        resource_tracker.ensure_running()   # one tracker for the ring, whoever dies first
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=engine_main, args=(child, self.settings), name="synthcli-engine")
        self.process.start()
        child.close()
        threading.Thread(target=self._read, name="synthcli-replies", daemon=True).start()
        while not self._started.wait(0.1):
            if not self.process.is_alive() and not self._started.is_set():
                self._started.wait(0.5)
                if not self._started.is_set():
                    raise SynthError(self._failure or f"the engine process exited (status {self.process.exitcode})")
        if self._failure:
            self.process.join(5)
            raise SynthError(self._failure)
        if self.record_path:
            self._recorder = threading.Thread(target=self._record, name="synthcli-recorder", daemon=True)
            self._recorder.start()
        return self.info

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "started":
                self.info = message[1]
                self._started.set()
            elif kind == "failed":
                self._failure = message[1]
                self._started.set()
            elif kind == "error":
                self.on_error(message[1])
            elif kind == "meters":
                self._replies.put(message[1])
            elif kind == "applied":
                self.on_applied(message[1], message[2])
            elif kind == "link":
                self.on_link(message[1])
            elif kind == "stopped":
                self.final = message[1]
        self._stopped.set()
        self._started.set()

    # -- commands ------------------------------------------------------------

    def send(self, *command) -> None:
        try:
            self.conn.send(command)
        except (OSError, BrokenPipeError):
            pass

    def set(self, name: str, param: str, value: float) -> None:
        self.send("set", name, param, float(value))

    def load(self, patch_text: str) -> None:
        self.send("load", patch_text)

    def replace_song(self, song_text: str) -> None:
        """Play this version of the song from the next bar on."""
        self.send("song", song_text, False)

    def start_song(self, song_text: str) -> None:
        """Play this song from its first bar, starting with the next block."""
        self.send("song", song_text, True)

    def halt_song(self) -> None:
        """Stop the song's patterns and release its notes; the patch plays on."""
        self.send("halt")

    def link(self, what: str, *args) -> None:
        """Ableton Link: ``link("on", quantum, offset_seconds)``, ``link("off")``,
        ``link("quantum", beats)`` or ``link("tempo", bpm)`` (for every peer)."""
        self.send("link", what, *args)

    def meters(self, timeout: float = 1.0) -> dict:
        self.send("meters")
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return {}

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the engine to stop by itself (end of --duration)."""
        return self._stopped.wait(timeout)

    def stop(self, timeout: float = 5.0) -> dict:
        """Fade out, stop the stream, and wait for the engine process."""
        self.send("stop")
        self._stopped.wait(timeout)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        if self._recorder is not None:
            self._recorder.join(timeout)
        return self.final

    # -- recording -----------------------------------------------------------

    def _record(self) -> None:
        """Write every block the callback sent, silence included, in order."""
        import soundfile
        ring = Ring(self.info["slots"], self.settings["blocksize"], name=self.info["ring"])
        silence = np.zeros((ring.blocksize, 2), np.float32)
        done = 0
        try:
            with soundfile.SoundFile(self.record_path, "w", int(self.settings["samplerate"]), 2, "FLOAT",
                                     format="WAV") as out:
                while True:
                    finished = self._stopped.is_set()
                    calls = int(ring.header[CALLBACKS])
                    for k in range(done, calls):
                        played = int(ring.log[k % ring.slots])
                        out.write(silence if played == SILENCE else ring.data[played % ring.slots])
                        if played != SILENCE:
                            ring.header[RECORDED] = played + 1
                    done = calls
                    if finished:
                        break
                    time.sleep(0.01)
        finally:
            ring.header[RECORDING] = 0
            ring.close()
