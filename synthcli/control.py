"""One live session, many hands on it.

The REPL's keyboard, OSC clients, MIDI input and a watched file all change
the same patch and song. They meet here: a :class:`Control` lets one of
them in at a time, so every change is checked whole against the state the
others left, and the session model stays the one truth that ``save``
writes. The lock is only ever held by control-process threads for the
length of one command (a screen that waits for a key lets go of it); the
audio lives in another process and never waits on it.
"""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Callable

from .errors import SynthError, did_you_mean

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Control:
    """A :class:`~synthcli.repl.session.Session` shared between threads.

    Parameters
    ----------
    session : Session
        Its ``sound`` is what the commands reach: the REPL's background
        engine, or a :class:`LiveSound` around ``synth play``'s player.
    """

    def __init__(self, session, log: Callable[[str], None] = print) -> None:
        self.session = session
        self.lock = threading.RLock()
        self.log = log
        self.osc = None
        self.midi = None           # the keyboard: (MidiInput, note source or None)
        self.clock = None          # the MidiInput an external clock arrives on
        self._journaling = None    # the timer that journals the knobs' last turns
        session.control = self   # the session's own commands (`osc`) start and stop controllers

    def execute(self, text: str, remote: bool = False) -> str:
        """A line (or block) of the command language, as typed at the REPL;
        ``remote`` confines it as :meth:`Session.execute` explains."""
        with self.lock:
            return self.session.execute(text, remote)

    @contextlib.contextmanager
    def unlocked(self):
        """Let the other hands in while the command that holds the lock
        waits on the musician, not on the session: the scope is up until
        a key is pressed, and MIDI keys, knobs, OSC and a clock that
        stalled behind it for as long were dead keys and a lost tempo."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    def knob(self, name: str, param: str, value: float) -> None:
        """``set`` at the rate of a turning knob (see :meth:`Session.knob`).
        The session journals a fast turn's values in batches; a timer
        writes the last batch, or a knob that stopped would be lost to a
        crash however long ago it was turned."""
        from .repl.session import KNOB_JOURNAL_SECONDS
        with self.lock:
            self.session.knob(name, param, value)
            if self.session.knobs and self._journaling is None:
                self._journaling = threading.Timer(KNOB_JOURNAL_SECONDS, self._journal_knobs)
                self._journaling.daemon = True
                self._journaling.start()

    def _journal_knobs(self) -> None:
        with self.lock:
            self._journaling = None
            self.session.flush_knobs()

    def note(self, pitch: float, velocity: float, on: bool, name: str | None = None) -> None:
        with self.lock:
            self.session.note(pitch, velocity, on, name)

    def load(self, path: Path, text: str) -> str:
        with self.lock:
            return self.session.load(path, text)

    def reload(self, path: Path, text: str) -> str | None:
        """A save of the file that plays; see :meth:`Session.reload`."""
        with self.lock:
            return self.session.reload(path, text)

    # -- controllers besides the keyboard ---------------------------------------

    def listen_osc(self, port: int, host: str = "127.0.0.1", allow=None) -> list[str]:
        """Start the OSC server (one at a time); returns what to tell the musician."""
        from .osc import OscServer
        if self.osc is not None:
            raise SynthError(f"OSC already listens on {self.osc.host}:{self.osc.port}: `osc stop` first")
        server = OscServer(self, port, host, allow, self.log)
        note = server.start()
        self.osc = server
        lines = [f"listening for OSC on {host}:{server.port} (docs/osc.md)"]
        if host not in LOOPBACK:
            lines.append(f"warning: OSC on {host} lets anyone who can reach this machine change the patch; "
                         f"--osc-allow names the only clients to accept")
        return lines + ([f"warning: {note}"] if note else [])

    def stop_osc(self) -> str:
        if self.osc is None:
            return "OSC is not listening"
        self.osc.stop()
        where, self.osc = f"{self.osc.host}:{self.osc.port}", None
        return f"stopped listening for OSC on {where}"

    def listen_midi(self, port: str, keys: str | None = None, serve: bool = True) -> str:
        """Play a note source from a MIDI input (one at a time): ``keys``
        names it, else the patch's first one plays. Raises SynthError in
        one line (an unknown port names the ports there are)."""
        from .midi.live import Keyboard, MidiInput
        from .midi.ports import find_port
        if self.midi is not None:
            raise SynthError(f"MIDI already plays from '{self.midi[0].port_name}': `midi stop` first")
        if keys is not None:
            inst = self.session.patch.modules.get(keys)
            if inst is None or not inst.type.cls.accepts_notes:
                sources = [n for n, i in self.session.patch.modules.items() if i.type.cls.accepts_notes]
                raise SynthError(f"'{keys}' is not a note source of the patch{did_you_mean(keys, sources)}")
        name = find_port(port, "input")
        listener = MidiInput(name, Keyboard(self, keys, self.log), self.log)
        listener.start() if serve else listener.open()
        self.midi = (listener, keys)
        plays = self.midi_plays()
        return f"playing {plays} from MIDI input '{name}'" if plays else f"MIDI input '{name}' {self.NO_KEYS}"

    #: What a keyboard on a patch without a note source is told: it takes
    #: the first one the patch gains.
    NO_KEYS = ("plays the patch's first note source, and it has none: notes are refused until it has one "
               "(add keys kb); mapped controllers (map cc) play now")

    def midi_plays(self) -> str | None:
        """The note source the MIDI input plays, in words (the one it was
        given, else the patch's first, as it is now), or None: there is none."""
        keys = self.midi[1] if self.midi is not None else None
        if keys is not None:
            return keys
        first = next((n for n, i in self.session.patch.modules.items() if i.type.cls.accepts_notes), None)
        return None if first is None else f"{first} (the first note source)"

    def stop_midi(self) -> str:
        if self.midi is None:
            return "no MIDI input is playing"
        listener, self.midi = self.midi[0], None
        listener.stop()
        lost = getattr(listener.handle, "lost", None)
        if lost is not None:   # no note-off or centred wheel comes from a keyboard no longer heard
            lost()
        return f"stopped MIDI input '{listener.port_name}'"

    def follow_clock(self, port: str, serve: bool = True) -> str:
        """Follow the tempo and the start and stop of a MIDI clock."""
        from .midi.clock import ClockFollower
        from .midi.live import MidiInput
        from .midi.ports import find_port
        name = find_port(port, "input")
        listener = MidiInput(name, ClockFollower(self, self.log), self.log)
        listener.start() if serve else listener.open()
        self.clock = listener
        self.session.clock_port = name
        return f"following the MIDI clock on '{name}'"

    def serve_midi(self) -> None:
        """Start reading the MIDI inputs opened with ``serve=False``."""
        for listener in (self.midi[0] if self.midi else None, self.clock):
            if listener is not None and listener._thread is None:
                listener.start()

    def close(self) -> None:
        if self.osc is not None:
            self.stop_osc()
        if self.midi is not None:
            self.stop_midi()
        if self.clock is not None:
            self.clock.stop()
            self.clock = self.session.clock_port = None
        if self._journaling is not None:   # the REPL journals them as it leaves
            self._journaling.cancel()
        rendering = self.session.rendering
        if rendering is not None and rendering.running:   # with no more commands to come
            rendering.stop()   # a valid file of what it rendered, and a line that says so

    @contextlib.contextmanager
    def bundle(self, when: float | None = None):
        """Everything done inside reaches the engine as one message: applied
        between the same two blocks, or on the sample heard at ``when``
        (wall-clock seconds, as ``time.time()``)."""
        with self.lock, self.session.sound.bundle(when):
            self.session.bundle_time = when
            try:
                yield
            finally:
                self.session.bundle_time = None

    @contextlib.contextmanager
    def atomic(self):
        """Inside a :meth:`bundle`: all of what is done inside, or none of
        it, in the session and in what reaches the engine (an OSC bundle)."""
        with self.lock, self.session.atomic(), self.session.sound.atomic():
            yield


class Forwarding:
    """What a session sends to the engine (its ``sound``), forwarded to a
    :class:`~synthcli.audio.player.Player` once there is one and dropped
    before: the player then starts from the session's state."""

    player = None
    status = "audio on"
    reason = ""   # why there is no audio, when there is none

    def current(self):
        """The player to send to now, or None."""
        return self.player

    def _send(self, method: str, *args) -> None:
        player = self.current()
        if player is not None:
            getattr(player, method)(*args)

    def set(self, name: str, param: str, value: float) -> None:
        self._send("set", name, param, value)

    def load(self, patch_text: str) -> None:
        self._send("load", patch_text)

    def start_song(self, song_text: str, start: int = 0) -> None:
        self._send("start_song", song_text, start)

    def replace_song(self, song_text: str) -> None:
        self._send("replace_song", song_text)

    def halt_song(self) -> None:
        self._send("halt_song")

    def note(self, name: str, event) -> None:
        self._send("send", "send", name, 0, event)

    def link(self, what: str, *args) -> None:
        """Ableton Link on/off, quantum or tempo (see :meth:`Player.link`)."""
        self._send("link", what, *args)

    def beats(self, line: tuple[float, float, float | None] | None) -> None:
        """Where an outside MIDI clock's beats fall (see :meth:`Player.beats`)."""
        self._send("beats", line)

    def record(self, path: str):
        """Start recording what is played to ``path``; returns the
        :class:`~synthcli.audio.player.Take`."""
        from .audio.player import Take
        player = self.current()
        if player is None:
            raise SynthError(f"there is no audio to record: {self.reason or self.status}")
        take = Take(path, player.settings["samplerate"])
        player.record(take)
        return take

    def stop_recording(self):
        """End the recording; returns it, or None when there was none."""
        player = self.current()
        return player.stop_recording() if player is not None else None

    def recording(self):
        """The recording going on, or None."""
        player = self.current()
        take = player.take if player is not None else None
        return take if take is not None and take.running else None

    def bundle(self, when: float | None = None):
        """What is sent inside goes to the engine as one message (see
        :meth:`Player.bundle`); without audio there is nothing to bundle."""
        player = self.current()
        return player.bundle(when) if player is not None else contextlib.nullcontext()

    def atomic(self):
        """See :meth:`Player.atomic`; without audio nothing was sent."""
        player = self.current()
        return player.atomic() if player is not None else contextlib.nullcontext()


class LiveSound(Forwarding):
    """``synth play``'s running player, as a session expects its sound
    (the session loads the file before the player starts)."""

    @property
    def meters(self) -> dict:
        return self.player.meters() if self.player is not None else {}


def play_session(registry, path: Path, sound: LiveSound):
    """The session behind ``synth play FILE``: the file loaded as the REPL's
    ``load`` would, its song marked as playing from now (the player starts
    it), so remote commands edit what is heard. Undo stops at the file: one
    remote ``undo`` too many unloaded it, and the music stopped."""
    from .repl.session import Session
    from .sequencer.song import Song
    session = Session(registry, sound)
    session.load(path)
    session.undos.clear()
    if session.timeline:
        session.transport.play(Song(registry, session.song_text), time.monotonic())
    return session
