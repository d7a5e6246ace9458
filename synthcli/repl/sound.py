"""The audio engine as the REPL sees it.

It starts in the background, so the prompt comes first (the engine takes
a couple of seconds to warm its workers and open the device); whatever is
typed meanwhile is sent along once it runs. Without a device it stays
silent and says why once: editing, saving and rendering work the same.
A background thread asks for the meters four times a second and reports
what changed for the worse (a module failing, a worker replaced), so the
musician hears nothing odd without also being told why.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

from ..audio.news import news
from ..control import Forwarding
from ..errors import SynthError

#: Seconds between two requests for the meters.
POLL = 0.25
#: Seconds to wait for an engine that is still starting when the REPL ends.
START_TIMEOUT = 20.0


class Sound(Forwarding):
    """The engine process through a :class:`~synthcli.audio.player.Player`.

    Parameters
    ----------
    settings : dict
        The Player's settings (samplerate, blocksize, latency, device,
        executor, workers, safe_mode, blocks, record).
    say : callable
        ``say(text, kind)`` prints a line above the prompt from any thread.
    """

    def __init__(self, settings: dict, say: Callable[[str, str], None]) -> None:
        self.settings = settings
        self.say = say
        self.status = "audio starting"
        self.reason = ""          # why there is no audio, when there is none
        self.device = ""          # the device and its latency, once the audio is on
        self.meters: dict = {}
        self.link_news: dict = {}          # the Ableton Link session as last reported
        self._link: tuple | None = None    # ("on", quantum, offset) while Link is asked for
        self.player = None
        self._waiting_take = None   # a `record` typed while the audio starts: begun with it
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, current: Callable[[], tuple[str, str | None, int]],
              song_started: Callable[[], None] | None = None) -> None:
        """Start the engine in the background. ``current()`` gives the
        patch text, the song text if the song plays and the bar it was
        started from, as they are then: the engine catches up with what was
        typed while it started. ``song_started()`` is then called if a song
        was started so, late (outside this object's lock: it may take the
        session's)."""
        self._thread = threading.Thread(target=self._run, args=(current, song_started), name="synthcli-sound",
                                        daemon=True)
        self._thread.start()

    def _run(self, current, song_started) -> None:
        from ..audio.player import Player
        patch_text, _, _ = current()
        record = self.settings.get("record")
        player = Player(patch_text, on_error=lambda message: self.say(message, "error"),
                        on_warning=lambda message: self.say(message, "warning"), on_link=self._on_link,
                        **self.settings)
        try:
            info = player.start()
        except SynthError as error:
            self._silent(str(error))
            return
        except Exception as error:   # a fault of ours must not take the REPL with it
            self._silent(f"the engine failed to start ({type(error).__name__}: {error})")
            return
        with self._lock:
            self.player = player
            patch_now, song_now, start = current()
            if patch_now != patch_text:
                player.load(patch_now)
            if self._link is not None:
                player.link(*self._link)
            if song_now is not None:
                player.start_song(song_now, start)
            take, self._waiting_take = self._waiting_take, None
            if take is not None:
                try:
                    player.record(take)
                except SynthError as error:
                    self.say(f"error: record: {error}", "error")
        if song_now is not None and song_started is not None:
            song_started()
        self.status = "audio on"
        self.device = f"device {info['device']}, output latency {info['latency_ms']:.1f} ms"
        self.say(f"audio on: {self.device}" + (f", recording to {record}" if record else ""), "note")
        self._poll(player)

    def _silent(self, reason: str) -> None:
        self.status, self.reason = "no audio", reason
        with self._lock:
            self._waiting_take = None   # "no audio" says why nothing is recorded
        if not self._closing.is_set():
            self.say(f"no audio: {reason} (editing, save and render work without it; "
                     f"`audio restart` tries again)", "warning")

    def _poll(self, player) -> None:
        while not self._closing.is_set():
            began = time.monotonic()
            if player.wait(0):
                with self._lock:
                    self.player = None
                player.stop()   # a killed engine left its ring and tap: unlinked now, not warned of at exit
                self.meters = {}
                self._silent(player.lost or "the engine process stopped")
                return
            meters = player.meters(timeout=2 * POLL)
            if meters:
                for line in news(self.meters, meters):
                    self.say(line, "warning")
                self.meters = meters
            self._closing.wait(max(0.0, POLL - (time.monotonic() - began)))

    def describe(self) -> str:
        """What ``audio`` alone says: on (where), starting, or why not."""
        if self.status == "audio on":
            return f"audio on: {self.device}"
        return f"no audio: {self.reason}" if self.status == "no audio" else self.status

    def restart(self, current: Callable[[], tuple[str, str | None, int]],
                song_started: Callable[[], None] | None = None,
                accepted: Callable[[], None] | None = None) -> str | None:
        """Stop the engine, fading out one that still plays, and start a
        new one as :meth:`start` does: the way back once the sound server
        that quit is up again, without leaving the session. A new engine
        process, since PortAudio in the old one may never return from a
        server that went away. ``accepted()`` is called once the restart
        is not refused, before the new engine asks ``current()``. A take
        being recorded ends with the old engine (a new one would write over
        it); its path, if there was one."""
        if self.status == "audio starting":
            raise SynthError("the audio is starting: wait for 'audio on' or 'no audio'")
        if accepted is not None:
            accepted()
        self._closing.set()
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)
        with self._lock:
            player, self.player = self.player, None
        ended = None
        if player is not None:
            take = player.take
            ended = take.path if take is not None and take.running else None
            player.stop()
        self.settings = {**self.settings, "record": None}
        self._closing.clear()
        self.status, self.reason, self.device, self.meters = "audio starting", "", "", {}
        self.start(current, song_started)
        return ended

    # -- what the session sends ------------------------------------------------------

    def current(self):
        with self._lock:
            return self.player

    def record(self, path: str):
        """As :meth:`Forwarding.record`; while the audio starts, the
        recording waits for it (its take has no thread until then)."""
        from ..audio.player import Take
        with self._lock:
            if self.player is None and self.status == "audio starting":
                if self._waiting_take is not None:
                    raise SynthError(f"already recording to {self._waiting_take.path}: `record stop` first")
                self._waiting_take = Take(path, self.settings["samplerate"])
                return self._waiting_take
        return super().record(path)

    def stop_recording(self):
        with self._lock:
            take, self._waiting_take = self._waiting_take, None
        return take if take is not None else super().stop_recording()

    def recording(self):
        with self._lock:
            if self._waiting_take is not None:
                return self._waiting_take
        return super().recording()

    @contextlib.contextmanager
    def tapping(self, name: str, port: str) -> Iterator:
        """The engine copies this module output into a tap while the
        context lasts; yields the :class:`~synthcli.audio.tap.Tap`."""
        player = self.current()
        if player is None:
            raise SynthError(f"the scope shows what the engine plays, and there is no audio: "
                             f"{self.reason or self.status}")
        tap = player.tap(name, port)
        try:
            yield tap
        finally:
            player.untap()
            tap.close()

    def link(self, what: str, *args) -> None:
        """Ableton Link on/off, quantum or tempo (see Player.link); `on`
        is remembered for an engine still starting."""
        if what == "on":
            self._link = ("on", *args)
        elif what == "off":
            self._link, self.link_news = None, {}
        elif what == "quantum" and self._link is not None:
            self._link = ("on", args[0], *self._link[2:])
        self._send("link", what, *args)

    def _on_link(self, news: dict) -> None:
        from ..link import news_line
        self.say(news_line(news, self.link_news), "warning" if "failed" in news else "note")
        self.link_news = {} if "off" in news or "failed" in news else news

    def stop(self) -> dict:
        """Fade out and stop the engine, waiting for one still starting."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)
        with self._lock:
            player, self.player = self.player, None
        return player.stop() if player is not None else {}

