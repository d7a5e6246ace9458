"""What the REPL does with each line the musician enters, with no
terminal in sight.

The session holds the patch model and the song's time commands (the song
is composed from both), the undo history and the transport. Every change
is made on copies, checked whole (the patch, its schedule and the song),
written to the journal, and only then becomes current and goes to the
engine: a command that fails changes nothing, here or in the sound.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import SynthError, UnknownModule, check_output, did_you_mean, name_problem
from ..language import (COMMANDS, MAX_BARS, Add, At, Command, Endpoint, Length, Meter, Pattern, Remove, Tempo,
                        Token, lines, parse_line, parse_text, tokenize, unquote)
from ..patch import Patch, confine, confined, takes_note_length, typed_folder, typed_in
from ..sequencer.song import PATCH_SECONDS, TAIL_MAX, Song, is_song
from . import views
from .commands import REPL_COMMANDS
from .merge import carried, carried_time
from .timeline import Timeline
from .transport import Transport

#: Seconds a render asked for over OSC may last at most: one datagram asked
#: for 3,000 s (1.15 GB), and a render holds the OSC server until it is done.
REMOTE_RENDER_SECONDS = 600.0
#: Knob turns (OSC, MIDI CC) reach the journal at most this often, each
#: knob's latest value: a journal entry is an fsync, and a knob turns
#: thousands of times a second.
KNOB_JOURNAL_SECONDS = 0.5
#: Undo steps kept, as vim's undolevels: each holds a copy of the patch and
#: the song, and 80,000 sets over OSC kept every one (86 MB and growing).
UNDO_LEVELS = 1000


class Quit(Exception):
    """``quit``: the app leaves its loop."""


@dataclass(frozen=True)
class Snapshot:
    """One state undo can go back to. ``path`` is where a bare ``save``
    writes in it: undoing a ``load`` must not leave ``save`` aimed at the
    file that was loaded, or it would overwrite it with the old patch.
    ``by_hand`` is that file when it was loaded with text a save would not
    keep (see do_save). ``loaded`` is the text of the file this state grew
    from by edits, which a save of that file is compared with (see
    :meth:`Session.reload`). ``opens`` is whether ``label``'s change (a
    ``load``, a ``clear``) changed those three: undo and redo of it take
    them from here, and of any other change leave them, as undoing an
    edit must not forget a file saved since it."""

    patch: Patch
    timeline: Timeline
    label: str
    path: Path | None
    by_hand: Path | None = None
    loaded: str | None = None
    opens: bool = False


#: Words other tools use for a REPL command, whose spelling is too far
#: from ours for a close-match hint ("list" would suggest "link").
OTHER_NAMES = {"stats": "top", "status": "top", "list": "ls", "exit": "quit"}


@dataclass
class Held:
    """A journal's entries held back until they are kept (Session.atomic)."""

    entries: list[dict]

    def write(self, entry: dict) -> None:
        self.entries.append(entry)


class Session:
    """The REPL's state.

    Parameters
    ----------
    registry : Registry
    sound : Sound
        The engine as the REPL sees it (``set``, ``load``, ``start_song``,
        ``replace_song``, ``halt_song``, ``meters``, ``record``); it ignores
        what it is sent while it has no audio, except a recording, which
        needs it.
    journal : Journal or None
        Where each change is written before it is applied.
    """

    def __init__(self, registry, sound, journal=None, clock=time.monotonic) -> None:
        self.registry = registry
        self.sound = sound
        self.journal = journal
        self.clock = clock
        self.knobs: dict[tuple[str, str], object] = {}   # turned since the journal last heard of them
        #: (value turned from, value turned to) of each knob turned since the
        #: last change, for the history to keep (see _keep_turns); inside an
        #: OSC bundle its own turns apart, and what the history was changed
        #: from, to take back with a refused bundle (see atomic).
        self.turned: dict[tuple[str, str], tuple[object, object]] = {}
        self.bundle_turned: dict[tuple[str, str], tuple[object, object]] | None = None
        self.kept: list[tuple[dict, str, object]] | None = None
        #: What a held pitch bend multiplies an oscillator's ``freq`` by
        #: (midi.live.Keyboard.bend): the engine plays the bent value, and a
        #: new ``freq`` set meanwhile (a knob, an edit) stays bent.
        self.bends: dict[str, float] = {}
        self.knobs_journaled = -KNOB_JOURNAL_SECONDS
        self.journalled_in: str | None = None   # the folder the journal last said edits were typed in
        self.patch = Patch(registry)
        self.timeline = Timeline()
        self.undos: list[Snapshot] = []
        self.redos: list[Snapshot] = []
        self.path: Path | None = None     # where `save` writes when not told
        self.by_hand: Path | None = None  # a file loaded whose text `save` would not write back (see Snapshot)
        self.loaded: str | None = None    # the text of the file loaded last, before the edits since (see Snapshot)
        self.transport = Transport()
        self.within: Path | None = None   # while set, files may be read and written only under it
        self.glided = False               # the last change went to the engine as parameter glides only
        self.bundle_time: float | None = None   # the time of the timed bundle being applied (Control.bundle)
        self.landing = 0.0                # when the last timed bundle that reloads the patch is heard
        self.control = None               # the Control sharing this session between threads, once made
        #: ``scope(tap, title)`` draws a tapped output until a key (the
        #: terminal's business, so the app sets it); None without a terminal.
        self.scope = None
        #: ``columns()``: the terminal's width now, which ls, info, help and
        #: top wrap to (the app sets it); None without a terminal: whole lines.
        self.columns = None
        #: ``say(line, kind)`` prints to the musician from any thread (the
        #: REPL and ``synth play`` set it): with it, a render runs beside.
        self.say = None
        self.rendering = None             # the last render run beside the prompt
        self.link_quantum = 4.0          # beats per Link phase cycle
        self.linked = False              # Ableton Link asked for (`link on`)
        self.clock_port: str | None = None   # the MIDI clock input the song follows (--clock-in)

    @property
    def song_text(self) -> str:
        return self.timeline.song_text(self.patch)

    def sounding(self, patch: Patch | None = None) -> Patch:
        """``patch`` (the session's own by default) as the engine is to play
        it: with the wheel held, the oscillators it bends bent. The patch
        keeps the unbent frequency, which ``save`` writes, so a reload or a
        song's next version made from it alone would snap a held bend back
        to the unbent pitch while the wheel stays where it is."""
        patch = self.patch if patch is None else patch
        bent = {name: by for name, by in self.bends.items() if by != 1.0 and name in patch.modules}
        if not bent:
            return patch
        patch = patch.copy()
        for name in bent:
            params = patch.modules[name].params
            params["freq"] = self.heard(name, "freq", params["freq"])
        return patch

    @property
    def sounding_song_text(self) -> str:
        """The song as the engine is to play it (see :meth:`sounding`)."""
        return self.timeline.song_text(self.sounding())

    def engine_state(self) -> tuple[str, str | None, int]:
        """What an engine starting now plays: the patch, the song if it
        plays, and the bar (from 0) its `play` named, so a song started
        before the audio came up begins where the musician asked."""
        segments = self.transport.segments
        return (self.sounding().to_text(synced=False), self.sounding_song_text if segments else None,
                segments[0][0] if segments else 0)

    def heard_from_now(self) -> None:
        """The engine has just started the song at the bar `play` named
        (the audio came up after it): the toolbar counts from now, as the
        ears do, not from the `play`. (From the sound's thread: under the
        lock of the Control that shares the session, when there is one.)"""
        with self.control.lock if self.control is not None else contextlib.nullcontext():
            segments = self.transport.segments
            if segments:
                self.transport.play(Song(self.registry, self.song_text), self.clock(), segments[0][0])

    # -- what was entered ----------------------------------------------------------

    def execute(self, text: str, remote: bool = False) -> str:
        """Run one line, or a pasted block as one atomic change; returns
        what to show, or raises SynthError (its ``line`` counts within the
        block). A ``remote`` line (OSC) may not use the REPL's keyboard-only
        commands, nor touch files outside the working directory."""
        self.within = Path.cwd().resolve() if remote else None
        try:
            return self._execute(text, remote)
        finally:
            self.within = None

    def _execute(self, text: str, remote: bool) -> str:
        entered = []
        for number, line in enumerate(lines(text), start=1):
            words = tokenize(line, number)
            if words:
                entered.append((number, words))
        if not entered:
            return ""
        if len(entered) == 1 and entered[0][1] == ["map"]:   # the language's `map` with nothing to map lists
            return self.mappings()
        if len(entered) == 1 and entered[0][1][0] in REPL_COMMANDS:
            verb, *args = entered[0][1]
            spec = REPL_COMMANDS[verb]
            if remote and not spec.remote:
                raise SynthError(f"'{verb}' is for the keyboard only, not for remote control", col=verb.col)
            low, high = spec.arity
            if not low <= len(args) <= high:
                raise SynthError(f"usage is '{spec.syntax}'")
            return getattr(self, f"do_{verb}")(*map(unquote, args))
        for number, words in entered:
            verb = words[0]
            if verb in REPL_COMMANDS:
                raise SynthError(f"'{verb}' cannot be part of a pasted block: paste patch and song commands only",
                                 line=number, col=verb.col)
            if verb not in COMMANDS:
                hint = (f", did you mean '{OTHER_NAMES[verb]}'?" if verb in OTHER_NAMES
                        else did_you_mean(verb, [*COMMANDS, *REPL_COMMANDS]))
                raise SynthError(f"unknown command '{verb}'{hint}", line=number, col=verb.col)
        return self.edit(text)

    def edit(self, text: str) -> str:
        """Patch and song commands, applied together or not at all."""
        commands = parse_text(text)
        patch, timeline = self.patch.copy(), self.timeline.copy()
        fresh = []
        # A remote edit's files are refused outside the working directory
        # before anything looks at them, in the patch and in the song's bars.
        with confined(self.within, self._files_in_use() if self.within is not None else frozenset()):
            for command in commands:
                if Timeline.is_time(command):
                    timeline.add(command)
                    fresh.append(command)
                else:
                    patch.apply(command)
            try:
                patch.retempo(timeline.tempo)
            except SynthError as error:   # a note length out of range at the new tempo: named at the tempo typed
                tempo = next((c for c in reversed(commands) if isinstance(c, Tempo)), None)
                raise error.at(line=tempo.line, col=tempo.col) if tempo is not None else error from None
            implied = self._imply_length(timeline)
            removed = {str(c.name) for c in commands if isinstance(c, Remove)} - set(patch.modules)
            dropped = self._drop_what_needs(removed, patch, timeline, fresh) if removed and timeline else []
            song = self._check(patch, timeline, fresh)
            if song is not None:
                timeline.find_files_as(song)
        # Only what passed: a remote edit refused for its files would pass
        # on replay, which is not remote.
        self._journal({"edit": text})
        label = str(commands[0]) if len(commands) == 1 else f"a block of {len(commands)} commands"
        closed = self._loops_closed(patch) + self._left_unplugged(patch)
        self._commit(self._snapshot(patch, timeline, label), song)
        for command in commands:
            if self.linked and isinstance(command, Tempo):   # with Link on, the tempo is everybody's
                self.sound.link("tempo", float(command.bpm))
        said = [f"the song's {', '.join(repr(str(c)) for c in dropped)} went with it"] if dropped else []
        patternless = not any(isinstance(c, (Pattern, At)) for c in timeline.commands)
        if patternless and any(isinstance(c, Tempo) for c in commands):
            # Not refused as `play` is: note lengths follow it, and the song to come keeps it. But
            # nothing may change audibly, so it says what it did (over OSC too, as a result).
            lengths = ", ".join(f"{name}.{param}={length}" for (name, param), length in patch.synced.items())
            said.append("the song has no pattern yet: the tempo is kept for when it has one"
                        + (f"; the patch's note lengths follow it now ({lengths})" if lengths else
                           ", and for note lengths (set NAME.time 1/8)"))
        if patternless and any(isinstance(c, Meter) for c in commands):
            said.append("the song has no pattern yet: the meter is kept for when it has one")
        said += closed
        if implied is not None:
            said.append(f"the song is {implied} bar{'s' if implied != 1 else ''} long now (`length BARS` changes "
                        f"it): a saved song ends there; live, it plays on until `stop`")
        return "; ".join(said)

    def _loops_closed(self, patch: Patch) -> list[str]:
        """A word on each feedback loop the edit closed, which the audit
        found accepted in silence: a filter fed back through a vca at 0.6
        grew by 70 dB a second, heard as full-scale noise through the
        master's soft clip, until its numbers overflowed ten seconds on."""
        from ..engine.schedule import loops_closed
        said, seen, before = [], set(), set(self.patch.cables)
        # The last cable of a loop is the one that closes it.
        for cable, loop in reversed(loops_closed(patch, [c for c in patch.cables if c not in before])):
            if frozenset(loop) not in seen:
                seen.add(frozenset(loop))
                shown = loop if len(loop) <= 8 else [*loop[:4], f"({len(loop) - 6} more)", *loop[-2:]]
                said.insert(0, f"the cable {cable.src} -> {cable.dst} closes a loop ({' -> '.join(shown)}), "
                            f"through one block of delay: if it gains more than it loses, it grows to full scale "
                            f"(undo takes it back)")
        return said

    def _left_unplugged(self, patch: Patch) -> list[str]:
        """A word on each input the edit left with no cable that reads
        other than 0 unconnected: the musician's audit heard `remove bass`
        turn a stopped song's silence into a held C4, as the bass's adsr
        gate went high."""
        from ..sequencer.song import reads_unconnected, unplugged
        left = unplugged({(c.dst, c.dst_port) for c in self.patch.cables}, patch)
        if not left:
            return []
        heard, frontier = {"out"}, ["out"]   # what reaches the output: the rest changes nothing one hears
        while frontier:
            frontier = [c.src for c in patch.cables if c.dst in frontier and c.src not in heard]
            heard.update(frontier)
        plugged = {(c.dst, c.dst_port) for c in patch.cables}

        def moot(module: str, port) -> bool:   # its module's gate, with no cable, never opens (a pluck's velocity)
            gate = patch.modules[module].type.cls.port("gate", "in")
            return port.name != "gate" and gate is not None and gate.default == 0.0 and (module, "gate") not in plugged
        return [f"{module}.{port.name} has no cable now: {reads_unconnected(port)}"
                for module, port in left if module in heard and not moot(module, port)]

    def _drop_what_needs(self, removed: set[str], patch: Patch, timeline: Timeline,
                         fresh: list[Command]) -> list[Command]:
        """Take out of ``timeline`` the song's commands that need a module
        ``remove`` took out (its patterns, an ``at`` that sets or patches
        it before another adds it back), as ``at BAR remove`` ends them in
        a file: refusing the remove left no way out but undo, as no command
        removes a pattern. Those typed with the remove are refused instead
        (see _check). What went, in the song's order."""
        dropped = []
        while True:
            try:
                Song(self.registry, timeline.song_text(patch))
                return dropped
            except SynthError as error:
                culprit = timeline.commands_by_line(patch).get(error.line)
                if (not isinstance(error, UnknownModule) or error.module not in removed or culprit is None
                        or any(culprit is c for c in fresh)):
                    return dropped
                timeline.commands = [c for c in timeline.commands if c is not culprit]
                dropped.append(culprit)

    @staticmethod
    def _imply_length(timeline: Timeline) -> int | None:
        """A first pattern or `at` typed before any `length` gets one, long
        enough for every `at` (at least a bar), rather than an error: live,
        the song plays on past its length anyway, and a musician who types a
        pattern wants to hear it. The bars given, or None."""
        commands = timeline.commands
        if any(isinstance(c, Length) for c in commands) or not any(isinstance(c, (Pattern, At)) for c in commands):
            return None
        bars = max([1, *(c.bar for c in commands if isinstance(c, At))])
        timeline.add(parse_line(f"length {bars}"))
        return bars

    @contextlib.contextmanager
    def atomic(self):
        """Keep everything done inside, or take all of it back if an
        exception leaves it: an OSC bundle is one unit, and one whose third
        message was refused had added a module and set a value with its
        first two. The journal hears of it only once it is kept. What left
        the session stays: a file saved, a recording or render started (the
        render is still the one ``render`` asks about). The engine's side is
        :meth:`Control.atomic`'s. A bundle that changes the patch is one
        undo step, its knobs' turns included (see _keep_turns); one that
        only turns knobs is none."""
        saved, undos, redos, knobs = dict(vars(self)), list(self.undos), list(self.redos), dict(self.knobs)
        params = [(inst.params, dict(inst.params)) for inst in self.patch.modules.values()]   # knobs turn in place
        segments, journal, entries = self.transport.segments, self.journal, []
        if journal is not None:
            self.journal = Held(entries)
        self.bundle_turned, self.kept = {}, []
        try:
            yield
            self.journal = journal
            for entry in entries:
                journal.write(entry)
            stepped = len(self.undos) != len(undos) or bool(undos) and self.undos[-1] is not undos[-1]
            for key, (before, after) in ({} if stepped else self.bundle_turned).items():
                self.turned[key] = (self.turned.get(key, (before,))[0], after)
        except BaseException:
            for kept_in, param, before in reversed(self.kept):
                kept_in[param] = before
            saved["rendering"] = self.rendering
            vars(self).update(saved)
            self.undos[:], self.redos[:] = undos, redos
            self.knobs.clear()
            self.knobs.update(knobs)
            for turned, before in params:
                turned.update(before)
            self.transport.segments = segments
            raise
        finally:
            self.bundle_turned, self.kept = saved["bundle_turned"], saved["kept"]

    def knob(self, name: str, param: str, value: float) -> None:
        """``set NAME.PARAM VALUE`` without the cost of a whole edit, for
        controllers that turn a knob thousands of times a second (OSC, MIDI
        CC): checked like ``set``, applied to the current patch in place, and
        not an undo step of its own. A change the engine cannot glide to (a
        structural parameter, a value set as a note length) takes the
        ordinary path. A song playing keeps the value past its bars that
        edit the patch (Sequencer.keep)."""
        inst = self.patch.modules.get(name)
        if inst is None:
            raise UnknownModule(name, self.patch.modules)
        spec = inst.type.cls.param(param)
        # The slow path below writes a `set` line for the language to read:
        # a parameter or a value holding a line break or a space (only OSC's
        # strings can) would be read as more commands, which a knob must not run.
        if spec is None and param.split() != [param]:
            raise SynthError(f"module '{name}' has no parameter {param!r}")
        if any(ch in str(value) for ch in "\r\n") or (
                not (spec is not None and spec.file) and str(value).split() != [str(value)]):
            raise SynthError(f"bad value {str(value)!r} for {name}.{param}: a value is one word, on one line")
        if spec is not None and spec.file:   # only OSC names one: its files stay in the working directory
            self.execute(f"set {name}.{param} {spec.format(str(value))}", remote=True)
            return
        if spec is None or spec.structural or takes_note_length(spec, str(value)) or (name, param) in self.patch.synced:
            # (A note length, set or given up, is an edit: the song's tempo map decides its values.)
            self.edit(f"set {name}.{param} {value}")
            return
        try:
            coerced = spec.coerce(value)
        except ValueError as error:
            raise SynthError(f"bad value '{value}' for {name}.{param}: {error}") from None
        turned = self.turned if self.bundle_turned is None else self.bundle_turned
        turned[(name, param)] = (turned.get((name, param), (inst.params[param],))[0], coerced)
        inst.params[param] = coerced
        self.sound.set(name, param, self.heard(name, param, coerced))
        self.knobs[(name, param)] = coerced
        if self.clock() - self.knobs_journaled >= KNOB_JOURNAL_SECONDS:
            self.flush_knobs()

    def flush_knobs(self) -> None:
        """Journal the knobs turned since the last time (see knob), so
        ``--resume`` rebuilds the patch as it sounded. The first turn after
        a quiet spell is written at once; the rest of a fast turn waits for
        the next turn half a second on, the next change, leaving, or the
        Control's timer half a second after the first of them."""
        turned, self.knobs = self.knobs, {}
        if turned and self.journal is not None:
            self.knobs_journaled = self.clock()
            self.journal.write({"knobs": [[name, param, value] for (name, param), value in turned.items()]})

    def note(self, pitch: float, velocity: float, on: bool, name: str | None = None) -> None:
        """A note for a note source (the patch's first ``keys`` unless
        ``name`` says which), heard at the next block."""
        from ..api import NoteOff, NoteOn
        sources = [n for n, inst in self.patch.modules.items() if inst.type.cls.accepts_notes]
        if name is None:
            if not sources:
                raise SynthError("the patch has no note source: add one (add keys kb)")
            name = sources[0]
        elif name not in sources:
            known = self.patch.modules.get(name)
            raise SynthError(f"'{name}' is not a note source" if known else
                             f"unknown note source '{name}'{did_you_mean(name, sources)}")
        if not 0 <= pitch <= 127:
            raise SynthError(f"note {pitch:g} is outside 0..127")
        if velocity != velocity:   # NaN: the clamp below would make it a silent note
            raise SynthError("velocity nan is not a number")
        self.sound.note(name, NoteOn(float(pitch), min(1.0, max(0.0, velocity))) if on else NoteOff(float(pitch)))

    def _file(self, name: str) -> Path:
        """A file a command may use: anywhere from the keyboard, only under
        the working directory when the command came from afar."""
        if not name.strip():   # Path("") is the working directory: `save ""` wrote the last file
            raise SynthError("the file name is empty")
        problem = name_problem(name)
        if problem is not None:
            raise SynthError(f"{name!r}: {problem}")
        path = Path(name)
        confine(name, path, self.within)
        return path

    def _files_in_use(self) -> frozenset[str]:
        """The files the patch and every bar of the song use now: a remote
        edit re-checks them all, and those typed or loaded may lie outside
        the working directory. Every bar of a long song costs (0.5 s for
        512 bars, under the lock the knobs wait on), so only when a module
        type with a file parameter is in the patch or added by the song."""
        added = [str(c.command.type) for c in self.timeline.commands
                 if isinstance(c, At) and isinstance(c.command, Add)]
        classes = [inst.type.cls for inst in self.patch.modules.values()]
        if all(name in self.registry for name in added) and not any(
                spec.file for cls in classes + [self.registry.get(name).cls for name in added] for spec in cls.params):
            return frozenset()
        patches = Song(self.registry, self.song_text).patches() if self.timeline else [self.patch]
        return frozenset(inst.params[spec.name] for patch in patches for inst in patch.modules.values()
                         for spec in inst.type.cls.params if spec.file and inst.params[spec.name])

    # -- checking and committing ------------------------------------------------------

    def _check(self, patch: Patch, timeline: Timeline, fresh: list[Command]) -> Song | None:
        """Everything the engine would refuse, refused now: the schedule,
        and the whole song against the patch at every bar."""
        from ..engine.schedule import compile_patch
        compile_patch(patch)
        if not timeline:
            return None
        try:
            song = Song(self.registry, timeline.song_text(patch))
        except SynthError as error:
            culprit = timeline.commands_by_line(patch).get(error.line)
            if culprit is None:
                raise SynthError(error.message) from None
            if any(culprit is c for c in fresh):
                text = timeline.song_text(patch).splitlines()[error.line - 1]
                raise SynthError(error.message, line=culprit.line, col=typed_col(culprit, text, error)) from None
            if isinstance(error, UnknownModule) and error.module in self.patch.modules:
                # not a typo to suggest a name for: the edit took it
                raise SynthError(f"the song's '{culprit}' needs '{error.module}'") from None
            raise SynthError(f"{error.message} (the song's '{culprit}' needs it)") from None
        return song

    def _snapshot(self, patch: Patch, timeline: Timeline, label: str, opens: bool = False) -> Snapshot:
        """A state with what the session knows of its files now."""
        return Snapshot(patch, timeline, label, self.path, self.by_hand, self.loaded, opens)

    def _commit(self, change: Snapshot, song: Song | None) -> None:
        files = change.path, change.by_hand, change.loaded
        self._remember(change.label, files != (self.path, self.by_hand, self.loaded))
        self._become(change.patch, change.timeline, song)
        self.path, self.by_hand, self.loaded = files

    def _remember(self, label: str, opens: bool = False) -> None:
        """The state now becomes the newest undo step, taken back by
        ``undo`` as ``label``; past UNDO_LEVELS the oldest goes. A new
        change forgets what was undone, as in an editor."""
        self._keep_turns()
        patch = self.patch
        if self.bundle_turned:   # an OSC bundle's turns before its edit are part of its step
            patch = patch.copy()
            for (name, param), (before, _) in self.bundle_turned.items():
                if name in patch.modules:
                    patch.modules[name].params[param] = before
            self.bundle_turned.clear()
        self.undos.append(self._snapshot(patch, self.timeline, label, opens))
        del self.undos[:-UNDO_LEVELS]
        self.redos.clear()

    def _become(self, patch: Patch, timeline: Timeline, song: Song | None) -> None:
        """Make this the current state and bring the engine along: a
        parameter glides at once; with the song stopped a structural edit
        reloads the patch (unchanged modules keep their state); while the
        song plays, its new version takes over at the next bar."""
        old_patch, old_timeline = self.patch, self.timeline
        self.patch, self.timeline = patch, timeline
        sets = parameter_changes(old_patch, patch)
        self.glided = False
        if self.transport.playing and not timeline:
            self.transport.stop()
            self.sound.halt_song()
            self._load(patch)
            return
        if sets is None and not self.transport.playing:
            self._load(patch)
            return
        # While a song plays, a change that is not only values takes over
        # at its next bar, all at once: the new version glides the values
        # there too, not one part now and the rest at the bar. So does a
        # value set as a note length, which is worth the tempo of the bar
        # the song is at (an `at 5 tempo 90` may rule there, not the song's
        # first tempo that this patch keeps).
        playing = self.transport.playing
        whole = playing and (sets is None or timeline != old_timeline)
        for name, param, value in () if whole else sets:
            if not (playing and (name, param) in patch.synced):
                self.sound.set(name, param, self.heard(name, param, value))
        if whole or (playing and patch.synced != old_patch.synced):
            self.sound.replace_song(self.sounding_song_text)
            self.transport.replace(song or Song(self.registry, self.song_text), self.clock())
        else:
            self.glided = True

    def heard(self, name: str, param: str, value):
        """The value the engine is to play for ``name.param`` set to
        ``value``: a bent oscillator's frequency, bent."""
        return value * self.bends[name] if param == "freq" and name in self.bends else value

    def _load(self, patch: Patch) -> None:
        """Reload the engine with ``patch``. A timed bundle that reloads it
        (OSC) waits in the engine for its sample with the patch made before
        any edit that comes meanwhile: an edit loaded at once would be
        heard with the bundle's changes in it, early (a live audit heard a
        module 210 ms before its time). So until the bundle is heard, a
        reload goes right after it, on its sample."""
        text = self.sounding(patch).to_text(synced=False)
        if self.bundle_time is not None:
            self.landing = max(self.landing, self.bundle_time)
        elif time.time() < self.landing:
            with self.sound.bundle(self.landing):
                self.sound.load(text)
            return
        self.sound.load(text)

    def _journal(self, entry: dict) -> None:
        self.flush_knobs()   # the knobs turned before this entry come before it on replay
        if self.journal is not None:
            # What was typed is found from here (see typed_in), so each
            # journal says where once, and again only if that changes.
            here = str(typed_folder())
            if here != self.journalled_in:
                self.journal.write({"dir": here})
                self.journalled_in = here
            self.journal.write(entry)

    # -- history ----------------------------------------------------------------

    def do_undo(self) -> str:
        return self._travel(self.undos, self.redos, "undo", "undid")

    def do_redo(self) -> str:
        return self._travel(self.redos, self.undos, "redo", "redid")

    def _travel(self, source: list[Snapshot], target: list[Snapshot], verb: str, done: str) -> str:
        if not source:
            return f"nothing to {verb}"
        self._keep_turns()
        self._journal({verb: 1})
        snapshot = source.pop()
        target.append(self._snapshot(self.patch, self.timeline, snapshot.label, snapshot.opens))
        song = Song(self.registry, snapshot.timeline.song_text(snapshot.patch)) if snapshot.timeline else None
        self._become(snapshot.patch, snapshot.timeline, song)
        if snapshot.opens:
            self.path, self.by_hand, self.loaded = snapshot.path, snapshot.by_hand, snapshot.loaded
        return f"{done} {snapshot.label}"

    def _keep_turns(self) -> None:
        """A knob turned is no undo step of its own, so no undo takes it
        back either: an `undo` of `add lfo w` had put back the pitch a vco
        had before a later knob turned it. Each state of the history that
        had the value a knob turned from gets the value it turned to, from
        the nearest on, up to the first with another value: an edit of that
        parameter, which undo still takes back. Done once a change, not at
        each of a knob's thousands of turns."""
        turned, self.turned = self.turned, {}
        for (name, param), (before, after) in turned.items():
            kind = self.patch.modules[name].type if name in self.patch.modules else None
            for history in (self.undos, self.redos):
                for snapshot in reversed(history):
                    inst = snapshot.patch.modules.get(name)
                    if inst is None or inst.type is not kind or inst.params.get(param) != before:
                        break
                    if self.kept is not None:
                        self.kept.append((inst.params, param, before))
                    inst.params[param] = after

    def replay(self, entries: list[dict]) -> list[tuple[int, str]]:
        """Rebuild a session from a journal; returns (entry number, why)
        for each entry that fails now (a plugin uninstalled since,
        ``--safe-mode``). A change that fails so changes nothing but still
        takes its place in the history, this session's journal included:
        skipped, it let the `undo` after it take back the change before
        it, and the resumed patch lost a module it had kept. A file typed
        by a relative path is found from the folder it was typed in, as
        the journal says, not from wherever the session resumes."""
        failed, folder = [], None
        for number, entry in enumerate(entries, start=1):
            if "dir" in entry:
                folder = Path(entry["dir"])
                continue
            with typed_in(folder):
                try:
                    self._replay(entry)
                except SynthError as error:
                    failed.append((number, error.typed(entry.get("edit", ""))))
                    if not {"undo", "redo", "knobs"} & entry.keys():
                        self._journal(entry)
                        self._remember("a change that failed on resume")
        # A knob's last turns replay within half a second of each other and
        # are held back (see knob) with no timer to write them: a kill -9
        # of the resumed REPL before its next change lost them.
        self.flush_knobs()
        return failed

    def _replay(self, entry: dict) -> None:
        if "edit" in entry:
            self.edit(entry["edit"])
        elif "undo" in entry:
            self.do_undo()
        elif "redo" in entry:
            self.do_redo()
        elif "clear" in entry:
            self.do_clear()
        elif "load" in entry:
            self.load(Path(entry["load"]), entry["text"])
        elif "reload" in entry:
            self.reload(Path(entry["reload"]), entry["text"])
        elif "knobs" in entry:
            for name, param, value in entry["knobs"]:
                self.knob(name, param, value)

    # -- files ------------------------------------------------------------------------

    def do_clear(self) -> str:
        """A new session's empty patch and song, as one step to undo. A
        bare ``save`` then writes nowhere until told a file: it would have
        written the empty patch over the file last loaded."""
        gone, empty = views.summary(self.patch, self.timeline), Patch(self.registry)
        if self.patch.to_text() == empty.to_text() and not self.timeline:   # the master's level counts too
            return "nothing to clear"
        self._journal({"clear": 1})
        self._commit(Snapshot(empty, Timeline(), "clear", None, None, None), None)
        return f"cleared ({gone}); undo brings it back"

    def do_load(self, file: str) -> str:
        path = self._file(file)
        note = self.load(path)
        said = f"loaded {path} ({views.summary(self.patch, self.timeline)})"
        return f"{said}; {note}" if note else said

    def load(self, path: Path, text: str | None = None) -> str:
        """A song file replaces the patch and the song; a patch file
        replaces the patch and keeps the song's time commands if they still
        fit it. Neither starts the song: ``play`` does (a song already
        playing goes on, in its new version from the next bar)."""
        from ..midi.file import is_midi_path
        from ..patch import read_source
        if text is None:
            if is_midi_path(path):
                raise SynthError("a MIDI file plays outside the REPL (`synth play FILE.mid`); "
                                 "`load` takes patches and songs", source=str(path))
            text = read_source(path)
        patch, timeline, song_file = self._read(path, text)
        # Absolute, as the file's own relative paths (a sampler's sound) are
        # found from its folder: a resume from elsewhere lost the song.
        self._journal({"load": str(path.absolute()), "text": text})
        return self._take(path, text, patch, timeline, song_file)

    def reload(self, path: Path, text: str) -> str | None:
        """A save of the file that plays (``synth play --watch``): what the
        save changed in the file is applied, and what was changed live
        since the file was loaded (a knob turned over OSC or MIDI, a module
        added over OSC) stays where the save left it alone, as a bar of the
        song that edits the patch keeps a knob: the REPL, OSC, MIDI and the
        file edit one session.
        Returns what to tell ("" for nothing), or None, applying nothing,
        when nothing that plays would change (a save of comments, or of the
        version the session has). The time commands are merged so too (a
        pattern sent over OSC stays; see :func:`carried_time`). Live changes
        that do not fit the save (a note length out of range at its new
        tempo) are dropped, and said so."""
        saved, saved_time, song_file = self._read(path, text)
        patch, timeline, misfit, gone = saved, saved_time, None, []
        if self.loaded is not None:
            base, base_time, _ = self._read(path, self.loaded)
            patch, timeline = carried(base, saved, self.patch), carried_time(base_time, saved_time, self.timeline)
            try:
                patch.retempo(timeline.tempo)
                # A pattern sent live goes with a module the save removes, as a typed remove takes it.
                gone = self._drop_what_needs(set(self.patch.modules) - set(patch.modules), patch, timeline,
                                             saved_time.commands)
                self._check(patch, timeline, [])
            except SynthError as error:
                with contextlib.suppress(SynthError):   # else the file's own fault, for _take to tell
                    self._check(saved, saved_time, [])
                    patch, timeline, misfit = saved, saved_time, error
        if patch.to_text() == self.patch.to_text() and timeline == self.timeline:
            self.loaded = text
            return None
        self._journal({"reload": str(path.absolute()), "text": text})
        note = self._take(path, text, patch, timeline, song_file)
        if misfit is None:
            if gone:
                went = f"{', '.join(repr(str(c)) for c in gone)}, sent live, went with what this save removes"
                return f"{went}; {note}" if note else went
            return note
        dropped = (f"what was changed live since {path} was loaded does not fit this save and is dropped "
                   f"({misfit.message}); undo brings it back")
        return f"{dropped}; {note}" if note else dropped

    def _read(self, path: Path, text: str) -> tuple[Patch, Timeline, bool]:
        """The patch and time commands a file's text gives; a patch file's
        come with the session's time commands. Also whether it is a song."""
        commands = parse_text(text, str(path))
        if is_song(commands):
            timeline = Timeline()
            for command in commands:
                if Timeline.is_time(command):
                    timeline.add(command)
            song = Song(self.registry, text, str(path))
            timeline.find_files_as(song)
            return song.patch, timeline, True
        patch = Patch(self.registry)
        patch.apply_all(commands, str(path))
        timeline = self.timeline.copy()
        patch.retempo(timeline.tempo)
        return patch, timeline, False

    def _take(self, path: Path, text: str, patch: Patch, timeline: Timeline, song_file: bool) -> str:
        """Check and commit a file's state; what to tell (time commands cleared)."""
        note = ""
        try:
            song = self._check(patch, timeline, [])
        except SynthError as error:
            if song_file or not timeline:
                raise error.at(source=str(path))
            # All of it goes, not just what did not fit, which the line names first: it said
            # only that, and the musician's audit found the rest of the song gone too.
            head, _ = timeline.lines()
            cleared = ", ".join([views.count(n, what) for n, what in (
                (sum(isinstance(c, Pattern) for c in timeline.commands), "pattern"),
                (sum(isinstance(c, At) for c in timeline.commands), "`at` command")) if n] + head)
            timeline = Timeline()
            song = self._check(patch, timeline, [])
            note = (f"the song did not fit this patch and was cleared ({cleared}): {error.message}; "
                    f"undo brings it back")
        # What a save of this file alone would write: a patch file's patch, a song file's song.
        canonical = timeline.song_text(patch) if song_file else patch.to_text()
        self._commit(Snapshot(patch, timeline, f"load {path}", path, path if canonical != text else None, text), song)
        return note

    def do_save(self, file: str | None = None) -> str:
        """A bare ``save`` writes the file last loaded or saved, but not
        over a file loaded as written by hand: the canonical text drops its
        comments, and a musician who loaded an example and typed ``save``
        lost them without a word (the audit). Named, it is written."""
        named = file is not None
        if file is None and self.path is not None:
            file = str(self.path)   # still checked: a remote `save` writes only in the working directory
        path = self._file(file) if file is not None else None
        if path is None:
            raise SynthError("save where? nothing was loaded or saved yet: save FILE")
        if not named and self.by_hand is not None and self.path == self.by_hand:
            raise SynthError(f"save: {file} was loaded with comments or a layout of its own, which save does not "
                             f"keep (it writes the canonical text): `save {file}` overwrites it, `save FILE` "
                             f"writes a copy")
        if not path.name or path.is_dir():
            raise SynthError(f"cannot write {path}: it is a directory; save FILE")
        from ..engine.render import WAV_SUFFIXES
        from ..graph import SUFFIXES as PICTURES
        from ..midi.file import SUFFIXES as MIDI
        if path.suffix.lower() in (*WAV_SUFFIXES, *MIDI, *PICTURES):   # one slip would overwrite a take
            raise SynthError(f"save {path}: that is a name for audio, MIDI or a picture; save writes "
                             f"the {'song' if self.timeline else 'patch'} as text (.seq, .patch)")
        text = self.song_text if self.timeline else self.patch.to_text()
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise SynthError(f"cannot write {path}: {error.strerror}") from None
        self.path, self.by_hand = path, None
        return f"saved {path} ({views.summary(self.patch, self.timeline)})"

    def do_render(self, what: str | None = None, duration: str | None = None) -> str:
        """Offline, at ``synth render``'s settings, so the file is the one
        ``synth render`` would write from a saved copy. Where there is a
        terminal to say when it is done (``say``: the REPL, ``synth
        play``) it runs beside the commands (see rendering.py), typed or
        sent over OSC, which a render would otherwise hold, with MIDI and
        the keyboard; elsewhere it is done before the reply."""
        from ..audio.news import faults_of_a_render
        from ..engine.core import Engine
        from ..plugins import BUILTIN_PACKAGE
        from ..engine.render import (WAV_SUFFIXES, Overs, Performance, check_fits, frames_for, length_written,
                                     render_to_wav)
        from .rendering import Rendering
        running = self.rendering if self.rendering is not None and self.rendering.running else None
        if what is None:
            if running is None:
                last = self.rendering.outcome if self.rendering is not None else ""
                return f"not rendering; the last: {last}" if last else "not rendering: render FILE.wav [SECONDS] starts"
            left = running.left()
            return (f"rendering {running.path}: {100 * running.fraction:.0f} %"
                    + (f", about {left:.0f} s left" if left is not None else ""))
        if what == "stop":
            if duration is not None:
                raise SynthError("render stop takes nothing after it")
            if running is None:
                return "not rendering"
            running.stop()   # it says what the file holds
            return ""
        if running is not None:   # before naming its file, which another name would not get past either
            raise SynthError(f"already rendering {running.path}, one render at a time: wait for it (`render` says "
                             f"how far) or end it with `render stop`")
        file = what
        self._not_taken(check_output(self._file(file), WAV_SUFFIXES, "render"), "render")
        song = Song(self.registry, self.song_text) if self.timeline else None
        patch = self.patch.copy() if song is None else None   # as typed now, whatever is typed meanwhile
        seconds = None if song is not None and song.length is not None else PATCH_SECONDS
        if duration is not None:
            try:
                seconds = float(duration)
            except ValueError:
                raise SynthError(f"expected seconds, got '{duration}'") from None
        samplerate, blocksize = 48000, 256
        try:   # here, not in the render beside the prompt, after it said it started
            frames = asked = None if seconds is None else frames_for(seconds, samplerate)
            if frames is not None:
                check_fits(frames, samplerate)
        except SynthError as error:
            raise SynthError(f"render {file} {duration}: {error.message}") from None
        if self.within is not None:
            lasts = seconds if seconds is not None else float(song.bar_start(song.length)) + TAIL_MAX
            if lasts > REMOTE_RENDER_SECONDS:
                raise SynthError(f"render over OSC is at most {REMOTE_RENDER_SECONDS:g} s (this one would last "
                                 f"up to {lasts:g} s): render it at the machine, in the REPL or with synth render")

        heard: list[str] = []

        def say(line: str) -> None:
            if self.say is None:
                heard.append(f"warning: {line}")
            else:
                self.say(f"render: warning: {line}", "warning")

        # A plugin's module runs in a worker process, as under `synth render`,
        # where its crash costs its sound, not the REPL; built-ins run here.
        # Workers wait for their blocks asleep: the live audio needs the cores.
        plugged = any(inst.type.package != BUILTIN_PACKAGE
                      for each in ([patch] if song is None else song.patches()) for inst in each.modules.values())

        def work(progress) -> tuple[str, str]:
            with Engine(self.registry, samplerate, blocksize, executor="auto" if plugged else "inline", say=say,
                        spin=False) as engine:
                if patch is not None:
                    engine.load(patch)
                overs = Overs()
                written = render_to_wav(Performance(engine, song, frames), file, frames, progress=progress,
                                        overs=overs)
                failed = [f"warning: {line}" for line in faults_of_a_render(engine.module_stats())]
                over = overs.said(written)
                if over:
                    failed.append(f"warning: {file}: {over}")
            return ("\n".join([f"wrote {file} ({length_written(written, asked, samplerate)})", *heard, *failed]),
                    "warning" if heard or failed else "")

        if self.say is None:
            return work(None)[0]
        self.rendering = Rendering(file, work, self.say)
        return f"rendering {file} beside the prompt: `render` says how far, `render stop` ends it"

    def do_record(self, what: str | None = None) -> str:
        """What the device is sent, as ``synth play --record`` writes it,
        but from the next block to ``record stop``: a take starts when the
        musician decides it is worth keeping."""
        if what is None:
            take = self.sound.recording()
            if take is None:
                return "not recording: record FILE.wav starts"
            if take.thread is None:
                return f"recording to {take.path} from when the audio starts"
            return f"recording to {take.path}: {take.seconds:.1f} s so far"
        if what == "stop":
            take = self.sound.stop_recording()
            if take is None:
                return "not recording"
            if take.thread is None:
                return f"nothing recorded to {take.path}: the audio had not started"
            return f"recorded {take.path} ({take.seconds:.2f} s)"
        from ..engine.render import WAV_SUFFIXES
        path = self._not_taken(check_output(self._file(what), WAV_SUFFIXES, "record"), "record")
        take = self.sound.record(str(path))
        return (f"recording to {path}" + (" from when the audio starts" if take.thread is None else "")
                + ": `record stop` ends it")

    def _not_taken(self, path: Path, verb: str) -> Path:
        """``path``, unless the take being recorded or the render running
        writes it: whichever closed last would overwrite the other, which
        had already said it wrote it."""
        take = self.sound.recording()
        rendering = self.rendering if self.rendering is not None and self.rendering.running else None
        for busy, doing in ((take, "recording"), (rendering, "rendering")):
            if busy is not None and Path(busy.path).resolve() == path.resolve():
                raise SynthError(f"{verb} {path}: already {doing} to that file; name another")
        return path

    # -- the song's transport ------------------------------------------------------------

    def do_play(self, bar: str = "1") -> str:
        if not any(isinstance(c, (Pattern, At)) for c in self.timeline.commands):
            return 'nothing to play yet: give the song a pattern (pattern kb "c3 e3 g3")'
        if not (bar.isascii() and bar.isdigit() and 1 <= int(bar) <= MAX_BARS):
            raise SynthError(f"play {bar}: a bar is a whole number from 1 (to {MAX_BARS})")
        start = int(bar) - 1
        song = Song(self.registry, self.song_text)
        self.transport.play(song, self.clock(), start)
        self.sound.start_song(self.sounding_song_text, start)
        if song.length is not None and start >= song.length:   # `play 99` for `play 9`, most likely
            return (f"the song is {song.length} bar{'s' if song.length != 1 else ''} long: bar {bar} is past its "
                    f"end, and it plays on from there as it would after its last bar")
        return ""

    def do_stop(self) -> str:
        """The patterns stop and the engine goes back to the patch as the
        REPL has it (a song's ``at`` commands may have changed it)."""
        if not self.transport.playing:
            return "the song is not playing"
        self.transport.stop()
        self.sound.halt_song()
        self._load(self.patch)
        return ""

    # -- Ableton Link --------------------------------------------------------------------

    def do_link(self, what: str, beats: str | None = None) -> str:
        from ..link import check_quantum, load_binding
        if what not in ("on", "off", "quantum") or (beats is not None and what != "quantum"):
            raise SynthError(f"usage is '{REPL_COMMANDS['link'].syntax}'")
        if what == "quantum" and beats is None:
            return f"link quantum {self.link_quantum:g}"
        if what == "quantum":
            try:
                quantum = float(beats)
            except ValueError:
                raise SynthError(f"the quantum is a number of beats, got '{beats}'") from None
            self.link_quantum = check_quantum(quantum)
            if self.linked:
                self.sound.link("quantum", self.link_quantum)
            return f"link quantum {self.link_quantum:g}" + ("" if self.linked else " (from the next `link on`)")
        if what == "off":
            if not self.linked:
                return "link is already off"
            self.linked = False
            self.sound.link("off")
            return ""
        if self.clock_port is not None:
            raise SynthError(f"the MIDI clock on '{self.clock_port}' leads the tempo and the beat (--clock-in): "
                             f"Link would lead them too")
        load_binding()   # a missing extra is said here, in one line
        self.linked = True
        self.sound.link("on", self.link_quantum, 0.0, float(self.timeline.tempo))
        return f"link on: joining the session (quantum {self.link_quantum:g})"

    # -- looking -------------------------------------------------------------------

    @property
    def width(self) -> int | None:
        """The terminal's columns now, which views wrap to; None without one."""
        return self.columns() if self.columns else None

    def do_ls(self) -> str:
        return views.listing(self.patch, self.timeline, self.width)

    def do_info(self, name: str) -> str:
        tempo = self.transport.tempo(self.clock())[0] if self.transport.playing else None
        return views.info(name, self.patch, self.registry, self.width, tempo)

    def do_help(self, name: str | None = None) -> str:
        return views.help_text(name, self.registry, self.width)

    def do_scope(self, target: str) -> str:
        name, _, port = target.partition(".")
        inst = self.patch.modules.get(name)
        if inst is None:
            raise SynthError(f"no module '{name}'" + (did_you_mean(name, list(self.patch.modules))
                                                      or ": `ls` lists the modules"))
        outputs = [p.name for p in inst.type.cls.outputs]
        port = port or outputs[0]
        if port not in outputs:
            raise SynthError(f"module '{name}' has no output '{port}'" + (did_you_mean(port, outputs)
                                                                       or f": it has {', '.join(outputs)}"))
        if self.scope is None:
            raise SynthError("the scope needs a terminal: run `synth` in one")
        with self.sound.tapping(name, port) as tap:
            return self.scope(tap, f"{name}.{port}")

    def do_top(self) -> str:
        # synth play's engine is asked for its meters, and may take up to a
        # second to answer (busy making a large patch).
        with self._waiting():
            meters = self.sound.meters
        return views.top(meters, self.sound.reason or self.sound.status, self.width)

    def do_devices(self) -> str:
        with self._waiting():   # a process of its own lists them: 0.2 s
            return views.devices()

    def _waiting(self):
        """While a command waits on something other than the session, the
        other hands (MIDI keys, knobs, a followed clock) play on, as under
        the scope."""
        return self.control.unlocked() if self.control is not None else contextlib.nullcontext()

    def do_audio(self, action: str | None = None) -> str:
        if action is None:
            return self.sound.describe()
        if action != "restart":
            raise SynthError(f"usage is '{REPL_COMMANDS['audio'].syntax}'")
        def pick_up() -> None:   # the new engine plays the song from the bar the toolbar has come to
            if self.transport.playing:
                now = self.clock()
                bar = min(self.transport.position(now)[0], MAX_BARS) - 1
                self.transport.play(Song(self.registry, self.song_text), now, bar)
        ended = self.sound.restart(self.engine_state, self.heard_from_now, pick_up)
        return "audio restarting" + (f"; the recording to {ended} ended with the old engine" if ended else "")

    def mappings(self) -> str:
        """What ``map`` alone shows: each controller and what it turns."""
        if not self.patch.mappings:
            return "no controller is mapped: map cc NUMBER NAME.PARAM [MIN MAX]"
        return "\n".join(f"cc {cc:<3} -> {m.module}.{m.param} {m.low:g}..{m.high:g}"
                         for cc, m in sorted(self.patch.mappings.items()))

    def do_osc(self, action: str | None = None, port: str | None = None) -> str:
        if self.control is None:
            raise SynthError("no remote control in this session")
        if action is None:
            osc = self.control.osc
            return f"OSC listens on {osc.host}:{osc.port}" if osc else "OSC is not listening: osc listen PORT"
        if action == "stop" and port is None:
            return self.control.stop_osc()
        if action == "listen" and port is not None:
            if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
                raise SynthError(f"expected a port number 1..65535, got '{port}'")
            return "\n".join(self.control.listen_osc(int(port)))
        raise SynthError("usage is 'osc', 'osc listen PORT' or 'osc stop'")

    def do_midi(self, action: str | None = None, port: str | None = None, keys: str | None = None,
                name: str | None = None) -> str:
        if self.control is None:
            raise SynthError("no live control in this session")
        if action is None:
            if self.control.midi is None:
                return "no MIDI input is playing: midi in PORT [keys NAME] (synth midi ports lists them)"
            listener, source = self.control.midi
            if listener.gone:
                return f"MIDI input '{listener.port_name}' has disappeared; it plays again when it is back"
            plays = self.control.midi_plays()
            return f"MIDI input '{listener.port_name}' " + (f"plays {plays}" if plays else self.control.NO_KEYS)
        if action == "stop" and port is None:
            return self.control.stop_midi()
        if action == "in" and port is not None and (keys is None or (keys == "keys" and name is not None)):
            return self.control.listen_midi(port, name)
        raise SynthError("usage is 'midi', 'midi in PORT [keys NAME]' or 'midi stop'")

    def do_quit(self) -> str:
        raise Quit


def parameter_changes(old: Patch, new: Patch) -> list[tuple[str, str, float]] | None:
    """The ``set`` calls that take the engine from ``old`` to ``new``, or
    None when the difference needs the patch reloaded (other modules,
    cables, a midiout's port, or a structural parameter such as a note
    source's voices)."""
    if list(old.modules) != list(new.modules) or old.cables != new.cables or old.midi_ports != new.midi_ports:
        return None
    sets = []
    for name, inst in new.modules.items():
        before = old.modules[name]
        if before.type is not inst.type:
            return None
        for param in inst.type.cls.params:
            value = inst.params[param.name]
            if value != before.params[param.name]:
                if param.structural:
                    return None
                sets.append((name, param.name, value))
    return sets


def typed_col(command: Command, written: str, error: SynthError) -> int | None:
    """Where, in ``command`` as it was typed, lies an error that the song
    found on its own line ``written`` (which spells the command its own
    way: spacing, an `at`'s bar): as far into the same word, or just past
    it (a pattern's missing ']'); None when it names no word."""
    if error.col is None:
        return None
    for mine, theirs in zip(words_of(command), words_of(parse_line(written, error.line))):
        if theirs.col <= error.col <= theirs.col + len(theirs):
            return mine.col + error.col - theirs.col
    return None


def words_of(command: Command) -> list[Token]:
    """The words of ``command`` that know their column, in the order they
    are written: the same for two spellings of one command."""
    words = [Token(command.verb, command.col)]
    for field in fields(command):
        value = getattr(command, field.name)   # (an int, its line or column or a bar, is no word)
        if isinstance(value, Command):
            words += words_of(value)
        elif isinstance(value, Endpoint):
            words += [value.module] + ([value.port] if value.port is not None else [])
        elif isinstance(value, Token):
            words.append(value)
        elif isinstance(value, tuple):   # an add's parameters, a pattern's options: (key, value) pairs
            words += [token for pair in value for token in pair]
    return words
