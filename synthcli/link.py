"""Ableton Link: the tempo, beat and start/stop shared with the other
musicians' machines on the local network.

Link is GPL-licensed, so its binding (``aalink``) is an optional extra
(``pip install synthcli[link]``) imported only when Link is switched on;
the core of synthcli never imports it.

:class:`LinkSession` owns the Link instance in the engine process, on a
helper thread of its own: aalink needs a running asyncio loop, and a call
into Link may take one of its mutexes, which must never happen on the
audio callback (nor, ideally, while the render thread holds the GIL in a
hurry). The helper thread reads the session every :data:`POLL` seconds
into an immutable :class:`Reading`; the render thread only ever reads
that tuple and extrapolates from it, which is exact between tempo changes
because a Link timeline is a straight line (beats = tempo x time).

:class:`Timeline` maps the engine's sample clock onto that line: a sample
is heard at the host time of the callback that plays it, plus PortAudio's
output latency, plus the musician's ``--link-offset``.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from typing import Callable, NamedTuple

from .errors import SynthError

#: Seconds between two readings of the Link session on the helper thread.
POLL = 0.01
#: A reading whose two clock stamps lie further apart than this (the helper
#: thread was preempted mid-reading) is discarded: its beat could belong to
#: any moment in between.
MAX_READ_SPAN = 0.0001
#: What to tell a musician whose Python lacks the binding.
INSTALL_HINT = ("Ableton Link needs the optional extra: pip install 'synthcli[link]' "
                "(it installs aalink, which is GPL-licensed)")
#: The callback's clock reading is late by however long the system took to
#: wake it (never early), so the audio clock's place is the earliest
#: reading, allowed to creep later by this many seconds a callback (the
#: sound card's clock and the system's drift apart by up to ~100 ppm)...
CREEP = 1e-6
#: ...unless this many callbacks in a row read later by more than JUMP
#: seconds: then the audio clock itself moved (the sound server skipped).
JUMP, LATE_CALLBACKS = 0.001, 8
#: Link's own allowed tempo range.
MIN_TEMPO, MAX_TEMPO = 20.0, 999.0


def load_binding():
    """Import aalink, or raise SynthError saying how to install it."""
    try:
        import aalink
    except ImportError:
        raise SynthError(INSTALL_HINT) from None
    return aalink


def check_tempo(bpm: float) -> float:
    if not MIN_TEMPO <= bpm <= MAX_TEMPO:
        raise SynthError(f"Link tempo must be {MIN_TEMPO:g}..{MAX_TEMPO:g} BPM, got {bpm:g}")
    return float(bpm)


def check_quantum(quantum: float) -> float:
    if not (math.isfinite(quantum) and 1 <= quantum <= 64):
        raise SynthError(f"Link quantum must be 1..64 beats, got {quantum:g}")
    return float(quantum)


class Reading(NamedTuple):
    """The session as read at one moment (``time.monotonic()`` seconds)."""

    at: float
    beat: float
    tempo: float
    peers: int
    playing: bool
    quantum: float


class LinkSession:
    """A Link session joined for as long as this object is open.

    Joining takes a thread, an asyncio loop and Link's own start (tens of
    milliseconds): the constructor returns at once, and :attr:`reading`
    stays None until the session is up, or :attr:`failure` says why not.

    Parameters
    ----------
    tempo : float
        Our tempo: the session's tempo if we are the first peer.
    quantum : float
        Beats per phase cycle: patterns start on a multiple of it.
    on_news : callable
        ``on_news(reading)`` from the helper thread whenever the number of
        peers, the tempo or the start/stop state changed; keep it short.
    playing : bool
        Whether we start playing as we join (a song is about to play).

    Raises
    ------
    SynthError
        If the binding is missing.
    """

    def __init__(self, tempo: float, quantum: float, on_news: Callable[[Reading], None],
                 playing: bool = False) -> None:
        self.quantum = check_quantum(quantum)
        self.on_news = on_news
        self.reading: Reading | None = None
        self.failure: str | None = None
        self._requests: collections.deque = collections.deque([("playing", True)] if playing else [])
        self._settled = threading.Event()
        self._closing = threading.Event()
        aalink = load_binding()
        self._thread = threading.Thread(target=self._run, args=(aalink, check_tempo(tempo)),
                                        name="synthcli-link", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait until the session is up (True) or has failed (False)."""
        self._settled.wait(timeout)
        if self.reading is None and self.failure is None:
            self.failure = f"no answer within {timeout:g} s"
        return self.reading is not None

    # -- the helper thread ----------------------------------------------------------

    def _run(self, aalink, tempo: float) -> None:
        import asyncio
        try:
            asyncio.run(self._serve(aalink, tempo))
        except Exception as error:   # Link failing must never take the music with it
            self.failure = f"Ableton Link did not start ({type(error).__name__}: {error})"
            self._settled.set()

    async def _serve(self, aalink, tempo: float) -> None:
        import asyncio
        link = aalink.Link(tempo)   # needs the running loop of this thread
        link.quantum = self.quantum
        link.start_stop_sync_enabled = True
        link.enabled = True
        last = None
        try:
            while not self._closing.is_set():
                while self._requests:
                    name, value = self._requests.popleft()
                    setattr(link, name, value)
                reading = self._read(link)
                if reading is not None:
                    self.reading = reading
                    self._settled.set()
                    news = (reading.peers, round(reading.tempo, 2), reading.playing)
                    if news != last:
                        last = news
                        self.on_news(reading)
                await asyncio.sleep(POLL)
        finally:
            link.enabled = False

    @staticmethod
    def _read(link) -> Reading | None:
        before = time.monotonic()
        beat = link.beat
        after = time.monotonic()
        if after - before > MAX_READ_SPAN:
            return None
        return Reading(0.5 * (before + after), beat, link.tempo, link.num_peers, link.playing, link.quantum)

    # -- asked for by the engine --------------------------------------------------------

    def set_tempo(self, bpm: float) -> None:
        """Change the tempo for every peer."""
        self._requests.append(("tempo", check_tempo(bpm)))

    def set_quantum(self, quantum: float) -> None:
        self._requests.append(("quantum", check_quantum(quantum)))

    def set_playing(self, playing: bool) -> None:
        """Start or stop every peer that syncs start/stop."""
        self._requests.append(("playing", bool(playing)))

    def close(self) -> None:
        """Leave the session (the others play on)."""
        self._closing.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)


class Timeline:
    """The engine's samples on the session's beat line.

    Parameters
    ----------
    session : LinkSession
    samplerate : float
    heard : callable
        ``heard()`` gives ``(sample, clock, seconds)`` of the latest block the
        audio callback sent: its first sample, the audio clock's sample then
        (the callbacks so far times the block size: ahead of ``sample`` by
        the silence played at xruns), and the ``time.monotonic()`` time it
        reaches the speakers (the callback's time plus PortAudio's output
        latency); or None before the first callback.
    offset : float
        Seconds the sound reaches the ears later than PortAudio knows
        (``--link-offset``): a Bluetooth speaker, a long cable, the room.
    fallback_latency : float
        Seconds from now to the speakers for the next block, used until the
        first callback has run.
    """

    def __init__(self, session: LinkSession, samplerate: float, heard: Callable[[], tuple[int, int, float] | None],
                 offset: float = 0.0, fallback_latency: float = 0.0) -> None:
        self.session = session
        self.samplerate = samplerate
        self.heard = heard
        self.offset = offset
        self.fallback_latency = fallback_latency
        self.shift = 0.0       # what quantum changes moved Link's beat numbers by
        self._last = session.reading
        self._ref: tuple[int, int, float] | None = None
        self._clock: float | None = None     # when the audio clock's sample 0 is heard
        self._late = 0

    def reading(self) -> Reading:
        """The latest reading, on beat numbers that never jump: Link counts
        beats anew for a new quantum (keeping only the phase), so the
        difference is taken out here and a playing song keeps its place."""
        r = self.session.reading
        last = self._last
        if r.quantum != last.quantum:
            self.shift += r.beat - (last.beat + (r.at - last.at) * last.tempo / 60.0)
        self._last = r
        return r

    def zero(self, now: int) -> float:
        """When sample 0 would be heard, as the callbacks have seen it.

        The audio clock is read at each callback, late by however long the
        system took to wake it; xruns are counted exactly (the engine's
        samples fall behind the clock by a block each)."""
        ref = self.heard()
        if ref is None:   # before the first callback: the render-ahead from now
            return time.monotonic() + self.fallback_latency - now / self.samplerate
        sample, clock, heard = ref
        if ref is not self._ref:
            self._ref = ref
            self._clock = self._filtered(heard - clock / self.samplerate)
        return self._clock + (clock - sample) / self.samplerate

    def _filtered(self, measured: float) -> float:
        """The audio clock's start: the earliest reading, creeping CREEP a
        callback, or a later one that JUMP and LATE_CALLBACKS say is real."""
        if self._clock is None or measured <= self._clock + JUMP:
            self._late = 0
            return measured if self._clock is None else min(self._clock + CREEP, measured)
        self._late += 1
        if self._late < LATE_CALLBACKS:
            return self._clock
        self._late = 0
        return measured

    def time_of(self, sample: int, now: int) -> float:
        """When ``sample`` will be heard; ``now`` is the engine's next sample
        (what the fallback counts from before any callback ran)."""
        return self.zero(now) + sample / self.samplerate + self.offset

    def beat_at(self, sample: int, now: int) -> float:
        r = self.reading()
        return r.beat - self.shift + (self.time_of(sample, now) - r.at) * r.tempo / 60.0

    def sample_at(self, beat: float, now: int) -> int:
        """The sample heard when the session reaches ``beat``."""
        r = self.reading()
        seconds = r.at + (beat + self.shift - r.beat) * 60.0 / r.tempo - self.offset
        return round((seconds - self.zero(now)) * self.samplerate)

    def next_boundary(self, sample: int, now: int) -> float:
        """The first beat at or after ``sample`` on which a quantum starts
        (in this timeline's beat numbers)."""
        beat = self.beat_at(sample, now) + self.shift
        q = self._last.quantum
        return math.ceil(beat / q - 1e-9) * q - self.shift


def news_line(news: dict, before: dict | None = None) -> str:
    """What to tell the musician about a change of the Link session
    (``before``: the previous news, to say that the last peer left)."""
    if "failed" in news:
        return f"link: {news['failed']}; playing on at our own tempo {news['tempo']:g} BPM"
    if "off" in news:
        return "link: off; playing on at our own tempo"
    peers = news["peers"]
    tempo = f"{news['tempo']:.1f}".rstrip("0").rstrip(".")
    if peers == 0 and before and before.get("peers"):
        return f"link: no peers left; keeping tempo {tempo} BPM"
    state = "" if news["playing"] else ", stopped"
    return f"link: {peers} peer{'' if peers == 1 else 's'}, session tempo {tempo} BPM{state}"


def toolbar_text(news: dict) -> str:
    """The same, short enough for the REPL's toolbar."""
    if "failed" in news or "off" in news:
        return "link off"
    tempo = f"{news['tempo']:.1f}".rstrip("0").rstrip(".")
    return f"link {news['peers']} peer{'' if news['peers'] == 1 else 's'} {tempo} BPM"
