"""The engine process of live play: a render thread keeps the output ring a
few blocks ahead, and the PortAudio callback copies blocks out of it.

The callback is the only code here with a deadline, so it does nothing but
copy a finished block (or silence, counted as an xrun) and bump counters:
no DSP, no locks, no blocking, and no allocation beyond Python's scalars,
a view of the block it copies and one small tuple for Link.
Everything else (commands, rendering, meters) happens on other threads.
The GIL switch interval is shortened so that a render thread busy in
Python hands the GIL to the callback within a fraction of a block.
"""
from __future__ import annotations

import collections
import gc
import heapq
import itertools
import math
import os
import select
import signal
import sys
import threading
import time

import numpy as np

from ..api import NoteOff, NoteOn
from .ring import CALLBACKS, ENDED, LENGTH, PLAYED, RECORDING, SILENCE, UNDERFLOWS, WRITTEN, XRUNS, Ring
from .tap import Tap

#: Slots beyond the render-ahead depth, so the recorder in the control
#: process may lag by this many blocks without ever holding up the audio.
RECORD_SLACK = 128
#: Render-ahead depth in blocks for each --latency setting, counted from the
#: end of a host buffer: a host whose buffer holds several blocks (JACK at
#: 1024 frames, blocks of 256) asks for them all at once, so the depth grows
#: by the blocks of one host buffer less one (see :meth:`LiveEngine.measure_host`).
DEPTHS = {"low": 1, "normal": 2, "safe": 4}
#: Frames rendered before the stream starts, while the host's buffer is not
#: known yet: the first bursts of callbacks (a JACK period of up to this
#: many frames) must find blocks waiting.
START_FRAMES = 2048
#: Callbacks looked at, at most, to learn how many come at once.
HOST_PROBE = 128
#: Commands that rebuild the engine's schedule (5-8 ms with worker
#: processes, and as much again a block later, when the edit's fades end);
#: before one, and before a song's bar or a timed OSC bundle that edits the
#: patch, the render thread runs this many blocks ahead, so the rebuilds
#: are heard that much later but never as an xrun.
STRUCTURAL = ("load", "song")
LOAD_AHEAD = 12
#: Blocks an edit waits for the render thread to get that far ahead: an
#: engine slower than real time never does, and the edit that would lighten
#: the patch, and every command behind it, waited for good.
LOAD_WAIT = 2 * LOAD_AHEAD
#: Seconds without a callback from a stream that says it is active, after
#: which the sound is taken for lost: JACK drops a client that stalled (the
#: engine stopped by SIGSTOP, a machine swapping) without telling PortAudio,
#: whose stop() then waits for ever for a callback.
SILENT_SERVER = 3.0
#: Seconds PortAudio is given to stop a stream (it takes a period or two).
STOP_SECONDS = 2.0
#: How long after the callback's wake-up the render thread starts the next
#: block, as a share of a block. A live note (JACK MIDI, and OSC when the
#: sender is paced by the same clock) is handled at the start of a cycle
#: too, a fraction of a millisecond after the callback: starting at once
#: would leave it out of that block by a hair, to be heard a block later
#: (benchmarks/midi_latency.py: median 29 -> 24 ms; half a block did no
#: better and left less margin). Less when the blocks rendered ahead leave
#: too little room: see :meth:`LiveEngine.late_start`.
LATE_START = 0.25
#: Per block, how much of the slowest recent render time is still counted.
RENDER_DECAY = 0.999
#: Seconds a plugin's ``warm()`` is given in its process before it is
#: stopped and the edit goes ahead (its ``setup()`` then does the work).
WARM_SECONDS = 30.0


class LiveEngine:
    """Runs in the engine process: owns the Engine, the ring and the stream."""

    def __init__(self, conn, settings: dict) -> None:
        self.conn = conn
        self.settings = settings
        self.commands: collections.deque = collections.deque()
        self.timed: list = []            # (sample, seq, command): timed bundles that change the patch
        self._order = itertools.count()
        self.running = True
        self.stream = None               # once started: the render loop watches that it still runs
        self.lost: str | None = None     # why the stream stopped by itself, if it did
        self.stuck = False               # PortAudio would not stop the stream (see stopped_within)
        self.engine = None               # made in run(), in this process
        self.midi = None                 # MIDI out (clock, midiout patterns) for patches and songs, timed here
        self.dac_ahead = 0.0             # DAC time minus callback time, as PortAudio reports it
        self._fitted: tuple[int, int, float] | None = None   # _timeline's fit, and the callback it was made at
        self.called = np.zeros(HOST_PROBE)   # when the first callbacks came (monotonic seconds)
        self.peak = np.zeros(2)
        self.heard: tuple[int, int, float] | None = None   # see the callback; for Ableton Link
        self.link = None                               # the Timeline of an Ableton Link session, when on
        self.joining = None                            # a LinkSession not answering yet
        self.link_offset = 0.0
        self.link_tempo: float | None = None           # a new session's tempo when no song plays (link on)
        self.link_news: collections.deque = collections.deque()
        self.clock = None   # the Timeline of an outside MIDI clock's beats (--clock-in)
        self.preparing: Preparation | None = None   # the next command's patch or song, made off the render thread
        self.judged: tuple[tuple, bool] | None = None   # (song command, whether it rebuilds): see rebuilds
        self.struck: dict[tuple[str, float], int] = {}   # (module, note): the sample its last live note began (see note)
        from ..sequencer.song import MIN_NOTE
        self.min_note = max(1, round(MIN_NOTE * settings["samplerate"]))
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self.wake_r, self.wake_w = wake_r, wake_w

    # -- the callback ------------------------------------------------------

    def callback(self, outdata, frames, time_info, status) -> None:
        ring = self.ring
        header = ring.header
        calls = int(header[CALLBACKS])
        if status.output_underflow:
            header[UNDERFLOWS] += 1
        played = int(header[PLAYED])
        slot_log = calls % ring.kept
        # The wall-clock instant this block reaches the DAC: timed commands
        # (OSC bundles) are placed on the sample heard at their time.
        self.dac_ahead = time_info.outputBufferDacTime - time_info.currentTime
        ring.times[slot_log] = time.time() + self.dac_ahead
        if calls < HOST_PROBE:
            self.called[calls] = time.monotonic()
        if header[WRITTEN] > played and frames == ring.blocksize:
            outdata[:] = ring.data[played % ring.slots]
            # For Link: this block's first sample, the audio clock's (xruns count there too), and
            # when it is heard: now, plus what PortAudio knows of the way to the speakers. One
            # small tuple, swapped in whole, so the Link thread never reads two blocks' halves.
            self.heard = (played * frames, calls * frames,
                          time.monotonic() + self.dac_ahead)
            ring.log[slot_log] = played
            header[PLAYED] = played + 1
        elif header[ENDED]:
            outdata.fill(0)   # the piece is over and drained: silence is no xrun, nor a recorded block
            return
        else:
            outdata.fill(0)
            ring.log[slot_log] = SILENCE
            header[XRUNS] += 1
        header[CALLBACKS] = calls + 1
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass

    # -- the render thread ---------------------------------------------------

    def render_loop(self) -> None:
        from ..errors import SynthError
        ring, performance = self.ring, self.performance
        block_time = self.engine.blocksize / self.engine.samplerate
        rendering = 0.0   # the slowest recent block, decaying (see late_start)
        sequencer = performance.sequencer
        applied = sequencer.swapped_at if sequencer else None
        held = 0       # blocks rendered while the first command waited to be applied (LOAD_WAIT)
        unheard = 0    # waits in a row for a callback that did not come (SILENT_SERVER)
        try:
            while not performance.over:
                if self.joining is not None:
                    self.joined()
                while self.link_news:
                    self.send(("link", self.link_news.popleft()))
                while self.commands:
                    command = self.prepared(self.commands[0])
                    if command is None:   # its files are being read: render on meanwhile
                        held = 0          # (not yet waiting to be applied: the render-ahead comes after)
                        break
                    self.commands[0] = command   # made: what it rebuilds is known from now on
                    if (self.rebuilds(command) and ring.queued() < LOAD_AHEAD and ring.free() > 0
                            and held < LOAD_WAIT):
                        break   # render further ahead first, so the rebuild cannot starve the callback
                    self.commands.popleft()
                    held = 0
                    try:
                        self.carry(command)
                        self.apply(command)
                    except SynthError as error:
                        self.send(("error", str(error)))
                due = self.engine.time + self.engine.blocksize
                while self.timed and self.timed[0][0] < due:
                    try:
                        self.apply(heapq.heappop(self.timed)[2])
                    except SynthError as error:
                        self.send(("error", str(error)))
                soon = self.engine.time + LOAD_AHEAD * self.engine.blocksize
                playing = performance.sequencer
                rebuilding = (self.engine.finishing or (self.timed and self.timed[0][0] < soon)
                              or (playing is not None and playing.rebuilds_within(soon - self.engine.time)))
                ahead = (LOAD_AHEAD if rebuilding or (self.commands and self.rebuilds(self.commands[0]))
                         else self.depth)
                if ring.queued() >= ahead or ring.free() <= 0:
                    ready, _, _ = select.select([self.wake_r], [], [], block_time)
                    unheard = 0 if ready else unheard + 1
                    if ready:
                        os.read(self.wake_r, 4096)
                        wait = self.late_start(rendering) if ring.queued() >= self.depth - 1 else 0.0
                        if wait > 0 and not self.commands:
                            # Another callback meanwhile means the server is catching up
                            # after a stall: render at once then.
                            select.select([self.wake_r], [], [], wait)
                    elif self.stream is not None and not self.stream.active:
                        # PortAudio marks the stream inactive when the JACK server
                        # quits or kicks us out, or the device is unplugged: no
                        # callback will ever come again to make room.
                        self.lost = "the audio stopped: the sound server quit or the device went away"
                        break
                    elif self.stream is not None and unheard * block_time > SILENT_SERVER:
                        self.lost = (f"the audio stopped: the sound server has asked for no sound for "
                                     f"{SILENT_SERVER:g} s (JACK drops a client that stalls)")
                        break
                    continue
                if self.midi is not None:
                    self.midi.before_block(performance.sequencer)
                # Blocks whose cost was planned for are not what a block costs: the
                # ones rendered before the stream starts (the very first took
                # 20 ms, and kept the note's wait away for 12 s as it decayed),
                # and those near a rebuild of the schedule, which LOAD_AHEAD covers.
                planned = self.stream is None or rebuilding
                began = time.perf_counter()
                if self.commands:
                    held += 1
                block = performance.next_block()
                if not planned:
                    rendering = max(time.perf_counter() - began, rendering * RENDER_DECAY)
                self.tap.after_block(self.engine)
                np.maximum(self.peak, np.abs(block).max(axis=1), out=self.peak)
                if performance.length is not None:   # for the recorder, before the block it falls in
                    ring.header[LENGTH] = performance.length
                ring.data[int(ring.header[WRITTEN]) % ring.slots] = block.T
                ring.header[WRITTEN] += 1
                if self.midi is not None:
                    self.midi.after_block(self.engine.time)
                if sequencer is not None and sequencer.swapped_at != applied:
                    applied = sequencer.swapped_at
                    self.send(("applied", applied + 1, time.time()))
        except Exception as error:   # a bug of ours, anywhere in the loop: say so and stop, rather than hang silent
            self.send(("broke", f"the engine failed and stops: {type(error).__name__}: {error}"))
        ring.header[ENDED] = 1
        if self.midi is not None:
            self.midi.stop()
        deadline = time.monotonic() + (0.0 if self.lost else 1.0)
        while ring.queued() > 0 and time.monotonic() < deadline:
            time.sleep(block_time / 2)
        self.running = False

    def measure_host(self, block_time: float) -> int:
        """How many blocks the host asks for at once: JACK at 1024 frames
        calls back four times in a row for blocks of 256, every 21 ms. A
        depth counted in blocks would be empty after the first two, every
        cycle: 768 xruns in 4 s at --latency normal. Waits for three whole
        bursts (at most HOST_PROBE callbacks or half a second); see
        :func:`blocks_per_period`."""
        waited = time.monotonic() + 0.5
        while True:
            called = self.called[:min(int(self.ring.header[CALLBACKS]), HOST_PROBE)]
            if (len(called) == HOST_PROBE or len(burst_starts(called, block_time)) >= 4
                    or time.monotonic() >= waited):
                return min(blocks_per_period(called, block_time), RECORD_SLACK // 2)
            time.sleep(block_time / 4)

    def late_start(self, rendering: float) -> float:
        """How long to wait before rendering the block just asked for. It
        is due ``depth`` blocks from now: one block stays the margin for the
        machine's hiccups, and twice the slowest recent render must still
        fit after the wait. So at ``--latency low`` (one block ahead: 39
        xruns in 20 s when it waited a quarter block) and with a patch that
        takes most of a block, rendering starts at once."""
        block_time = self.engine.blocksize / self.engine.samplerate
        room = (self.depth - 1) * block_time - 2 * rendering
        return max(0.0, min(LATE_START * block_time, room))

    def rebuilds(self, command: tuple) -> bool:
        """Does it rebuild the schedule (itself, or inside a batch applied
        now)? A new version of the song does so at a bar, not now (see
        Sequencer.rebuilds_within), and a song started on the modules and
        cables that play only glides its values (Sequencer). A song not made
        yet is taken for one that glides: rendering 12 blocks ahead while it
        is made put a MIDI clock's downbeat 64 ms late one start in two, and
        once made (a few ms), what it does is known."""
        kind = command[0]
        if kind == "batch":
            return command[1] is None and any(self.rebuilds(each) for each in command[2])
        if kind != "song":
            return kind in STRUCTURAL
        from ..sequencer.song import Song, same_shape
        song, playing = command[1], self.engine.patch
        if not isinstance(song, Song) or (not command[2] and self.performance.sequencer is not None):
            return False
        judged = self.judged   # asked at every turn of the render loop while it waits: made once
        if judged is None or judged[0] is not command:
            start = command[3] if len(command) > 3 else 0
            patch = song.state_before(start)[0]
            self.judged = judged = (command, playing is None or not same_shape(playing, patch)
                                    or song.edits_at(start, patch))
        return judged[1]

    def prepared(self, command: tuple) -> tuple | None:
        """``command`` with the patch or song it loads made, and the files
        they read warmed (:meth:`Module.warm`), on a thread of its own; None
        while that goes on. A minute of sound decoded by ``setup()`` on
        this thread took 70-190 ms, 12-14 xruns; made here, it costs the render
        thread nothing but the rebuild. A bundle timed for later is made as
        it arrives: at its sample there is only the rebuild left to do."""
        if not to_make(command):
            return command
        job = self.preparing
        if job is None or job.command is not command:
            self.preparing = job = Preparation(command, self)
        if job.thread.is_alive():
            return None
        self.preparing = None
        return job.result

    def made(self, command: tuple) -> tuple:
        """What :class:`Preparation` does to a command, on its thread."""
        kind = command[0]
        if kind == "batch":
            return ("batch", command[1], [self.made(each) for each in command[2]])
        if kind == "load" and isinstance(command[1], str):
            patch = self.patch_from(command[1])
            warm_files([patch])
            return ("load", patch)
        if kind == "song" and isinstance(command[1], str):
            from ..sequencer.song import Song
            song = Song(self.registry, command[1], self.settings.get("source"))
            warm_files(song.patches())
            return ("song", song, *command[2:])
        return command

    def carry(self, command: tuple) -> None:
        """An edit made now, while a timed bundle that changes the patch
        waits for its sample: the session made that bundle's patch before
        this edit, so its load would undo the edit. The edit goes again
        right after it, as the session ordered them."""
        if command[0] == "batch" and command[1] is None:
            edits = [each for each in command[2] if each[0] in ("set", "load")]
        else:
            edits = [command] if command[0] in ("set", "load") else []
        for _, _, (_, _, commands) in self.timed if edits else ():
            commands.extend(edits)

    def apply(self, command: tuple) -> None:
        kind = command[0]
        if kind == "set":
            self.performance.set(*command[1:])
        elif kind == "load":   # ("load", text), or its Patch once prepared
            self.engine.load(self.patch_from(command[1]) if isinstance(command[1], str) else command[1])
            self.send(("applied", None, time.time()))
        elif kind == "song":   # ("song", text or Song, restart[, bar]): a new version, or (re)start at a bar
            from ..sequencer.song import Sequencer, Song
            song = (Song(self.registry, command[1], self.settings.get("source")) if isinstance(command[1], str)
                    else command[1])
            current = self.performance.sequencer
            if current is not None and not command[2]:
                current.replace(song)
            else:
                if current is not None:
                    current.release_notes()
                # Started live (the REPL), a song loops on past its length until stopped.
                start = command[3] if len(command) > 3 else 0
                if self.link is not None:
                    from ..sequencer.linked import LinkedSequencer
                    self.performance.sequencer = LinkedSequencer(song, self.engine, True, self.link, start)
                elif self.clock is not None and self.clock.session.started:
                    from ..sequencer.clocked import ClockedSequencer
                    self.performance.sequencer = ClockedSequencer(song, self.engine, True, self.clock, start)
                else:
                    self.performance.sequencer = Sequencer(song, self.engine, True, origin=self.engine.time,
                                                           start=start)
        elif kind == "link":
            self.apply_link(*command[1:])
        elif kind == "beats":   # ("beats", line): where an outside MIDI clock's beats fall (Player.beats)
            if self.clock is None:
                from ..errors import SynthError
                raise SynthError("beats come from a MIDI clock: start the player with clock_in=True")
            self.clock.session.follow(command[1])
        elif kind == "halt":   # stop the song's patterns; the patch plays on
            if self.link is not None and self.performance.sequencer is not None:
                self.link.session.set_playing(False)   # start/stop is shared: the others stop too
            if self.performance.sequencer is not None:
                self.performance.sequencer.release_notes()
                self.performance.sequencer = None
        elif kind == "send":
            _, name, delay, event = command
            self.note(name, self.engine.time + delay, event)
        elif kind == "stop":
            self.performance.stop()
        elif kind == "meters":   # ("meters", n): the answer names the request, so a late one is not taken for another
            self.send(("meters", command[1], self.meters()))
        elif kind == "tap":    # ("tap", module, port): copy that output into the tap after each block
            self.tap.select((command[1], command[2]))
        elif kind == "untap":
            self.tap.select(None)
        elif kind == "batch":   # ("batch", when, commands): one bundle, applied between the same two blocks
            _, when, commands = command
            if when is None:
                for each in commands:
                    self.apply(each)
                return
            sample = self.sample_at(when)
            if all(each[0] in ("set", "send") for each in commands):
                self.apply(("at", sample, commands))
            else:   # a structural change lands at the start of the block holding its sample, the rest after it
                heapq.heappush(self.timed, (sample, next(self._order), ("at", sample, list(commands))))
        elif kind == "at":     # ("at", sample, commands): a timed bundle, in its order, on its sample
            _, sample, commands = command
            for each in commands:
                if each[0] == "set":
                    self.performance.set(*each[1:4], time=sample)
                elif each[0] == "send":
                    self.note(each[1], sample + each[2], each[3])
                else:
                    self.apply(each)

    def note(self, name: str, sample: int, event) -> None:
        """An event for a module at ``sample``; a note's end no sooner than
        MIN_NOTE after its start, as a MIDI file's (midi/driver.py). A pad
        or a sequencer sends notes a millisecond long, whose on and off
        reach one block together: the gate never opened, and the hit was
        not heard."""
        if isinstance(event, NoteOn):
            self.struck[(name, event.note)] = sample
        elif isinstance(event, NoteOff):
            began = self.struck.pop((name, event.note), None)
            if began is not None:
                sample = max(sample, began + self.min_note)
        patch = self.engine.patch
        port = patch.midi_ports.get(name) if self.midi is not None and patch is not None else None
        if port is not None:   # a `midiout`: the note leaves through its port, as a pattern's does
            self.midi.event(port, int(patch.modules[name].params["channel"]), sample, event)
            return
        self.engine.send(name, sample, event)

    def time_of(self, sample: int) -> float | None:
        """The wall-clock instant engine ``sample`` reaches the DAC (the
        inverse of :meth:`sample_at`, so MIDI leaves in time with the
        sound), or None until the device has played a block."""
        fit = self._timeline()
        if fit is None:
            return None
        base, t0 = fit
        return t0 + (sample - base) / self.engine.samplerate

    def sample_at(self, when: float) -> int:
        """The engine sample that reaches the DAC at wall-clock ``when``
        (see :meth:`_timeline`)."""
        engine = self.engine
        fit = self._timeline()
        if fit is None:
            return engine.time + round((when - time.time() - self.latency) * engine.samplerate)
        base, t0 = fit
        return base + round((when - t0) * engine.samplerate)

    def _timeline(self) -> tuple[int, float] | None:
        """``(base, t0)`` with ``sample = base + (when - t0) * rate``, or
        None before any block was played.

        Callbacks come at a steady pace but each runs a little late, by a
        jitter of up to a millisecond here: so the callback timeline is the
        earliest fit over the ring's log, ``heard(k) = t0 + k * block``,
        not the latest callback's time. The block heard at callback ``k``
        is the one the last callback played plus the callbacks between, so
        an xrun in the past shifts the mapping as it shifts the sound.

        The fit is made once per callback: a bar of `midiout` notes asks
        for it twice a note, and over a whole ring it cost 44 us a time."""
        ring, engine = self.ring, self.engine
        size = engine.blocksize
        calls = int(ring.header[CALLBACKS])
        if self._fitted is None or self._fitted[0] != calls:
            last = next((k for k in range(calls - 1, max(-1, calls - ring.slots), -1)
                         if ring.log[k % ring.kept] != SILENCE), None)
            if last is None:
                return None
            seen = np.arange(max(0, calls - ring.slots + 1), calls)
            t0 = float(np.min(ring.times[seen % ring.kept] - seen * (size / engine.samplerate)))
            self._fitted = (calls, int(ring.log[last % ring.kept]) - last, t0)
        _, shift, t0 = self._fitted
        offset = engine.time - int(ring.header[WRITTEN]) * size   # engine samples before the first ring block
        return offset + shift * size, t0

    # -- Ableton Link ------------------------------------------------------------

    def apply_link(self, what: str, *args) -> None:
        """``("on", quantum, offset_seconds[, bpm])``, ``("off",)``,
        ``("quantum", q)`` or ``("tempo", bpm)``. Joining happens on Link's
        own thread; the render loop takes the session up once it answers
        (:meth:`joined`). A new session starts at the playing song's tempo,
        or else at ``bpm``: the REPL's song is stopped, but its tempo is
        the one the musician set."""
        from ..errors import SynthError
        from ..sequencer.linked import LinkedSequencer
        from ..sequencer.song import Sequencer
        from ..theory import DEFAULT_TEMPO
        sequencer = self.performance.sequencer
        if what == "on":
            if self.link is not None or self.joining is not None:
                return
            from ..link import LinkSession
            self.link_tempo = float(args[2]) if len(args) > 2 else float(DEFAULT_TEMPO)
            tempo = float(sequencer.song.tempo) if isinstance(sequencer, Sequencer) else self.link_tempo
            self.joining = LinkSession(tempo, args[0], lambda r: self.link_news.append(
                {"peers": r.peers, "tempo": r.tempo, "playing": r.playing}), isinstance(sequencer, Sequencer))
            self.link_offset = args[1]
        elif what == "off":
            if self.joining is not None:
                self.joining.close()
                self.joining = None
            if self.link is not None:
                if isinstance(sequencer, LinkedSequencer):
                    self.performance.sequencer = sequencer.hand_back()
                self.link.session.close()
                self.link = None
            self.send(("link", {"off": True}))
        elif self.link is None:
            raise SynthError("Ableton Link is off: `link on` first")
        elif what == "quantum":
            self.link.session.set_quantum(args[0])
        elif what == "tempo":
            self.link.session.set_tempo(args[0])

    def joined(self) -> None:
        """Take up the session being joined once it answers; if Link failed,
        say so: the music plays on at its own tempo."""
        from ..link import Timeline
        from ..sequencer.linked import LinkedSequencer
        from ..sequencer.song import Sequencer
        session = self.joining
        if session.reading is None and session.failure is None:
            return
        self.joining = None
        sequencer = self.performance.sequencer
        if session.reading is None:
            session.close()
            tempo = float(sequencer.song.tempo) if isinstance(sequencer, Sequencer) else self.link_tempo
            self.send(("link", {"failed": session.failure, "tempo": tempo}))
            return
        latency = self.depth * self.engine.blocksize / self.engine.samplerate
        self.link = Timeline(session, self.engine.samplerate, lambda: self.heard, self.link_offset, latency)
        if isinstance(sequencer, Sequencer):
            self.performance.sequencer = LinkedSequencer.take_over(sequencer, self.link)

    def patch_from(self, text: str):
        from ..patch import Patch
        patch = Patch(self.registry)
        patch.load_text(text)
        return patch

    def meters(self) -> dict:
        h = self.ring.header
        peak, self.peak = self.peak.copy(), np.zeros(2)
        block_ms = 1e3 * self.engine.blocksize / self.engine.samplerate
        modules = self.engine.module_stats()   # on the render thread, between blocks: made once
        workers = self.engine.worker_stats(modules)
        return {
            "xruns": int(h[XRUNS]), "underflows": int(h[UNDERFLOWS]), "callbacks": int(h[CALLBACKS]),
            "played": int(h[PLAYED]), "length": int(h[LENGTH]) or None, "peak": [float(p) for p in peak], "block_ms": block_ms,
            "cpu": {str(part): w["mean_ms"] / block_ms for part, w in workers.items()},
            "workers": workers,
            "modules": modules,
            "faults": {name: s["reason"] for name, s in modules.items() if s["faults"]},
        }

    def send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except (OSError, EOFError):
            pass

    def listen(self) -> None:
        """Commands from the control process; its disappearance means stop."""
        while self.running:
            try:
                if not self.conn.poll(0.05):
                    continue
                command = self.conn.recv()
            except (EOFError, OSError):
                self.commands.append(("stop",))
                return
            if command[:2] == ("link", "on"):
                ready_for_link()
            self.commands.append(command)

    # -- life ----------------------------------------------------------------

    def run(self) -> int:
        from ..engine.core import Engine
        from ..engine.render import Performance
        from ..errors import SynthError
        from ..plugins import load_registry
        from .devices import open_stream

        s = self.settings
        self.registry = load_registry(safe_mode=s["safe_mode"])
        self.depth = DEPTHS[s["latency"]]
        block_time = s["blocksize"] / s["samplerate"]
        deadline = max(0.003, 0.75 * self.depth * block_time)
        try:
            self.engine = Engine(self.registry, s["samplerate"], s["blocksize"], executor=s["executor"],
                                 workers=s["workers"], deadline=deadline, live=True,
                                 say=lambda line: self.send(("warning", line)))
            song = None
            if s.get("midi") is not None:   # a MIDI file: the same driver as `synth render` builds
                from ..midi import midi_performance
                self.performance = midi_performance(self.engine, s["midi"], s.get("midi_patch"),
                                                    s.get("midi_patch_source"), s.get("frames"), s.get("start", 0))
            else:
                if s.get("song") is not None:
                    from ..sequencer.song import Song
                    song = Song(self.registry, s["song"], s["source"])
                else:
                    self.engine.load(self.patch_from(s["patch"]))
                self.performance = Performance(self.engine, song, s.get("frames"), endless=s.get("watch", False),
                                               start=s.get("start", 0))
        except BaseException as error:   # the workers are started: left running, they would outlive us
            if self.engine is not None:
                self.engine.close()
            if not isinstance(error, SynthError):
                raise
            self.send(("failed", str(error)))
            return 2
        ring = None
        try:
            ring = Ring(self.depth + RECORD_SLACK, s["blocksize"])
            self.tap = Tap(s["blocksize"])
        except SynthError as error:   # /dev/shm full, or a file size limit (ulimit -f): said, and the workers stopped
            if ring is not None:
                ring.close()
            self.engine.close()
            self.send(("failed", str(error)))
            return 2
        self.ring = ring
        self.latency = self.depth * block_time
        if s.get("link") is not None:   # joined before the first block, so a song starts on the session's beat
            self.apply_link("on", s["link"]["quantum"], s["link"]["offset"])
            self.joining.wait(5.0)
            self.joined()
        if s.get("clock_in"):   # made on the render thread as the clock first started, it cost an xrun
            from ..link import Timeline
            from ..sequencer.clocked import ClockSession
            self.clock = Timeline(ClockSession(), s["samplerate"], lambda: self.heard, 0.0, self.latency)
        if s.get("record"):
            self.ring.header[RECORDING] = 1   # slots wait for the recorder, not only the callback
        try:
            sys.setswitchinterval(min(sys.getswitchinterval(), block_time / 8))
            if s.get("midi") is None:
                from ..midi.out import EngineMidi
                self.midi = EngineMidi(s.get("clock_out"), self.time_of, self.send)
            stream = open_stream(s["device"], s["samplerate"], s["blocksize"], self.callback)
            # Everything made while starting (imports, modules, the first
            # schedule) leaves the collector's reach: a full collection
            # then scans only what was made since. Over all of it, one took
            # 9 ms in the middle of a 256-voice song, two blocks and an xrun.
            gc.freeze()
            self.render_thread = threading.Thread(target=self.render_loop, name="synthcli-render", daemon=True)
            listener = threading.Thread(target=self.listen, name="synthcli-control", daemon=True)
            wanted, self.depth = self.depth, max(self.depth, -(-START_FRAMES // s["blocksize"]))
            self.render_thread.start()
            while self.ring.queued() < self.depth and self.render_thread.is_alive():
                time.sleep(block_time / 4)   # the first callbacks must find blocks waiting
            stream.start()
            self.stream = stream
            try:
                self.depth = wanted + self.measure_host(block_time) - 1
                # PortAudio's stream.latency can leave out a buffer of the
                # host's (one JACK period here): the callbacks' own DAC
                # times say how far ahead a block is really heard.
                ahead = self.dac_ahead if self.ring.header[CALLBACKS] else stream.latency
                self.latency = ahead + self.depth * block_time
                self.send(("started", {"ring": self.ring.name, "slots": self.ring.slots, "tap": self.tap.name,
                                       "latency_ms": 1e3 * self.latency,
                                       "device": stream.device, "depth": self.depth}))
                listener.start()
                self.render_thread.join()
            finally:
                if self.lost is None and not stopped_within(stream, STOP_SECONDS):
                    self.stuck = True
                    self.send(("warning", f"the sound server did not let the stream stop within {STOP_SECONDS:g} s "
                                          "(JACK, after this process stalled): it ends with the process"))
            if self.lost is not None:
                self.send(("lost", self.lost))
            self.send(("stopped", self.meters()))
            return 0
        except SynthError as error:
            self.send(("failed", str(error)))
            return 2
        finally:
            self.running = False
            if self.joining is not None:
                self.joining.close()
            if self.link is not None:
                self.link.session.close()
            self.engine.close()
            self.ring.close(keep_mapped=self.stuck)   # a stuck stream's callback may yet read it
            self.tap.close()                          # which the callback never touches


def stopped_within(stream, seconds: float) -> bool:
    """Stop and close ``stream`` unless PortAudio takes over ``seconds``:
    once the server is gone or has dropped us, its stop() never returns,
    and the process would hang at its end."""
    stopper = threading.Thread(target=lambda: (stream.stop(), stream.close()), name="synthcli-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


class Preparation:
    """A command's patch or song made, and its files warmed, on a thread
    beside the render thread (see :meth:`LiveEngine.prepared`). What fails
    leaves the command as it came: applied, it fails again in its own
    words, where errors are reported."""

    def __init__(self, command: tuple, live: LiveEngine) -> None:
        self.command = self.result = command
        self.thread = threading.Thread(target=self._run, args=(live,), name="synthcli-prepare", daemon=True)
        self.thread.start()

    def _run(self, live: LiveEngine) -> None:
        try:
            self.result = live.made(self.command)
        except Exception:   # said when applied, as without preparation
            pass


def warm_files(patches) -> None:
    """:meth:`Module.warm` for each module of ``patches`` that reads files
    and overrides it, once per type and files. The built-in modules' in
    this thread; a plugin's in a process of its own, so that one that
    crashes or hangs there cannot take the engine with it."""
    from ..api import Module
    from ..plugins import BUILTIN_PACKAGE
    jobs = {}
    for patch in patches:
        for inst in patch.modules.values():
            cls = inst.type.cls
            files = {p.name: str(inst.params[p.name]) for p in cls.params if p.file}
            if files and cls.warm.__func__ is not Module.warm.__func__:
                jobs[(cls, tuple(sorted(files.items())))] = (inst.type.package == BUILTIN_PACKAGE, files)
    for (cls, _), (ours, files) in jobs.items():
        if ours:
            try:
                cls.warm(files)
            except Exception:   # its setup() meets the same trouble and reports it
                pass
            continue
        import multiprocessing
        process = multiprocessing.get_context("forkserver").Process(target=cls.warm, args=(files,), daemon=True)
        process.start()
        process.join(WARM_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def ready_for_link() -> None:
    """Import, on the control thread, what joining Ableton Link takes: on
    the render thread, its 8 ms (6 of them the binding's) held back every
    block. A missing binding is said where the session is made."""
    import contextlib
    import importlib

    from ..errors import SynthError
    from ..link import load_binding
    for name in ("asyncio", "synthcli.sequencer.linked", "synthcli.theory"):
        importlib.import_module(name)
    with contextlib.suppress(SynthError):
        load_binding()


def to_make(command: tuple) -> bool:
    """Does it carry a patch or song as text (itself, or inside a batch for
    now or later), to be made before it is applied?"""
    if command[0] == "batch":
        return any(to_make(each) for each in command[2])
    return command[0] in STRUCTURAL and isinstance(command[1], str)


def burst_starts(called: np.ndarray, block_time: float) -> np.ndarray:
    """Indices of the callbacks (at monotonic times ``called``) that came
    after a pause of the host's. Within a burst the callbacks come as fast
    as they return, which under load (the render thread holds the GIL) took
    up to a third of a 32-sample block: a pause is longer than half a block
    and half a millisecond more."""
    return np.flatnonzero(np.diff(called) >= block_time / 2 + 0.5e-3) + 1


def blocks_per_period(called: np.ndarray, block_time: float) -> int:
    """Blocks the host asks for at once, from the times of its first
    callbacks: the median time from one burst's start to the next, in
    blocks. Bursts start on the host's clock, so a burst that a slow
    callback splits in two, or a hiccup delays, does not change the median;
    the first burst, which may prime the host's buffers, is left out.
    (Counting the callbacks between pauses and taking the longest run, as
    before, split JACK's 32 calls for blocks of 32 at 1024 frames into
    runs of 5 to 28: a ring of too few blocks, and 30 % of them xruns.)"""
    starts = burst_starts(called, block_time)
    if len(starts) >= 2:
        return max(1, round(float(np.median(np.diff(called[starts]))) / block_time))
    if len(called) < 2:
        return 1
    # No pause seen: callbacks at the rate of blocks (one a block), or all at
    # once (one burst, whose own callbacks take some time: rounded up).
    return max(1, math.ceil(len(called) - (called[-1] - called[0]) / block_time - 0.25))


def engine_main(conn, settings: dict, control_end: int | None = None) -> None:
    """Entry point of the engine process. ``control_end`` is the control
    process's end of the pipe, inherited by a fork: closed here, so that
    the control process dying (even by SIGKILL) closes the pipe."""
    if control_end is not None:
        os.close(control_end)
    if settings.get("crash_dump"):
        from ..engine.crashes import witness
        witness(open(settings["crash_dump"], "wb"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the control process decides when to stop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:   # ahead of the REPL and the desktop when the system allows it; workers inherit it
        os.nice(-10)
    except OSError:
        pass
    live = LiveEngine(conn, settings)
    signal.signal(signal.SIGTERM, lambda *_: live.commands.append(("stop",)))
    code = live.run()
    conn.close()
    # os._exit skips what multiprocessing runs at a child's exit, among it
    # removing the folder in /tmp that holds the forkserver's socket: one
    # was left behind by every `synth play`. Its finalizers only: its exit
    # function would also join this process's children, and a hung worker
    # must not hold up the end.
    from multiprocessing import util
    util._run_finalizers()
    os._exit(code)
