"""Standard MIDI files: read with mido, turned into exactly timed events.

mido parses the bytes (running status, sysex, meta events of every kind);
this module only hands it the chunks it can parse, and keeps time. Ticks
become sample times through the tempo map in exact fractions, rounded to
a sample once per event, so a note lands on the same sample whatever the
block size. mido keeps the parsed tracks; what is made of them is not
kept: the tracks are merged lazily (one generator per track, merged by
``heapq.merge``) and each event is timed as it comes.
"""
from __future__ import annotations

import heapq
import io
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from ..errors import SynthError, open_to_read
from ..language.parser import MAX_BARS

#: File name endings taken for Standard MIDI files.
SUFFIXES = (".mid", ".midi", ".smf", ".kar")
#: Microseconds per quarter note until a set_tempo says otherwise (120 BPM).
DEFAULT_TEMPO = 500_000
SET_TEMPO = 0x51   # its meta type
#: The messages that make sound; everything else only keeps time.
PLAYED = ("note_on", "note_off", "control_change", "program_change", "pitchwheel")
DRUM_CHANNEL = 9   # channel 10, counted from 0
#: The controllers the player follows, by number.
SUSTAIN, VOLUME, PAN, EXPRESSION = 64, 7, 10, 11
RESET_CONTROLLERS, ALL_SOUND_OFF, ALL_NOTES_OFF = 121, 120, 123
#: General MIDI's volume at power-on (expression starts full, at 127).
DEFAULT_VOLUME = 100
#: Longer files are refused: no piece lasts a day, but one corrupt delta
#: time of 0x0FFFFFFF ticks (4 bytes, so valid) lasts 77 hours at 120 BPM and
#: 480 ticks a beat, and would play silence for days.
MAX_HOURS = 24


def is_midi_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


class _Clock:
    """Tick to sample time, exactly: the sample time (a Fraction) and tick
    of the last tempo change, and samples per tick since it."""

    def __init__(self, division: int, rate: Fraction) -> None:
        self.rate = rate
        self.tick0 = 0
        self.at0 = Fraction(0)
        if division < 0:   # SMPTE: frames per second and ticks per frame; tempo does not apply
            fps = -(division >> 8)
            frames = Fraction(30000, 1001) if fps == 29 else Fraction(fps)
            self.division = None
            self.per_tick = rate / (frames * (division & 0xFF))
        else:
            self.division = division
            self.per_tick = Fraction(DEFAULT_TEMPO) * rate / (division * 1_000_000)

    def at(self, tick: int) -> Fraction:
        return self.at0 + (tick - self.tick0) * self.per_tick

    def tempo(self, tick: int, microseconds: int) -> None:
        if self.division is None:
            return
        self.at0 = self.at(tick)
        self.tick0 = tick
        self.per_tick = Fraction(microseconds) * self.rate / (self.division * 1_000_000)


def _read_quantity(infile) -> int:
    """mido's ``read_variable_int``, but of at most 4 bytes as the SMF spec
    says: mido reads any number, so 5 bytes of a corrupt delta time made a
    34-byte file render gigabytes of silence."""
    value = 0
    for _ in range(4):
        byte = infile.read(1)
        if not byte:
            raise EOFError
        value = value << 7 | byte[0] & 0x7F
        if byte[0] < 0x80:
            return value
    raise OSError("a delta time or length is longer than 4 bytes")


def _meta_message(meta_type: int, data: list[int], delta: int = 0):
    """mido's ``build_meta_message``, mended where a file would play wrong
    or not at all. A type mido does not know (a program name, 0x08, which
    DAWs write) keeps its delta time: mido dropped it, and every later
    event of its track came that much early. A tempo that does not fit its
    type (mido read past the end of one of 1 byte and said only 'list
    index out of range') or of 0 microseconds a beat (every later event on
    one sample, the MIDI audit found) is corrupt, and says so. Any other
    damaged meta event (a key signature of 9 sharps, a time signature of 2
    bytes, an SMPTE offset at minute 75) is kept as one of no known type,
    and named in a warning (see MidiSong.ignored): it changes nothing
    heard, and players play such files."""
    from mido.midifiles.meta import KeySignatureError, UnknownMetaMessage, build_meta_message
    try:
        message = build_meta_message(meta_type, data, delta)
    except (IndexError, KeyError, KeySignatureError, ValueError):   # ValueError: a field out of its range
        reason = _damage(meta_type, data)
        if meta_type == SET_TEMPO:
            raise OSError(reason) from None
        return UnknownMetaMessage(meta_type, data, time=delta)
    if message.type == "set_tempo" and message.tempo == 0:
        raise OSError("a set tempo event of 0 microseconds a beat")
    message.time = delta
    return message


def _damage(meta_type: int, data) -> str:
    """What is wrong with a meta event of a known type that mido cannot read."""
    from mido.midifiles.meta import _META_SPECS, MetaMessage
    spec = _META_SPECS[meta_type]
    name, expected = spec.type.replace("_", " "), len(spec.encode(MetaMessage(spec.type)))
    if len(data) < expected:
        return f"a {name} event of {len(data)} byte{'s' * (len(data) != 1)}, expected {expected}"
    return f"a damaged {name} event"


def _read_sysex(infile, delta: int, clip: bool = False):
    """mido's ``read_sysex``, but an F7 "escape" event, which the SMF spec
    lets carry any bytes (a realtime message, a song position pointer),
    is read whole and kept as a sysex of no data: the player ignores every
    sysex, and mido refused the whole file for a status byte in one ('data
    byte must be in range 0..127'). An F0 sysex must hold data bytes, as
    before."""
    import mido
    from mido.midifiles import midifiles
    infile.seek(-1, io.SEEK_CUR)
    escape = infile.read(1) == b"\xf7"   # else F0, or running status (spent on a data byte: mido's reading)
    data = midifiles.read_bytes(infile, _read_quantity(infile))
    if data and data[0] == 0xF0:
        data = data[1:]
    if data and data[-1] == 0xF7:
        data = data[:-1]
    if escape and any(byte > 127 for byte in data):
        data = []
    if clip:
        data = [min(byte, 127) for byte in data]
    return mido.Message("sysex", data=data, time=delta)


def _chunks(infile) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The file's first chunk (its header, if it is a MIDI file) and its
    MTrk chunks, in order, each with the byte it starts at. The SMF spec
    has a reader skip chunks of any other type (Yamaha XF and karaoke
    files hold some); mido takes the chunk after a track for the next
    track and refuses the file."""
    end = os.fstat(infile.fileno()).st_size
    header = infile.read(8)
    if len(header) < 8 or header[:4] != b"MThd":
        return header, []   # for mido to refuse in its words
    # A length is read only as far as the file goes: a corrupt 4 GB one
    # would have read() allocate it all first.
    header += infile.read(min(struct.unpack(">L", header[4:])[0], end - infile.tell()))
    tracks = []
    while len(chunk := infile.read(8)) == 8:
        kind, size = struct.unpack(">4sL", chunk)
        if kind == b"MTrk":
            tracks.append((infile.tell() - 8, chunk + infile.read(min(size, end - infile.tell()))))
        else:
            infile.seek(size, io.SEEK_CUR)
    return header, tracks


def _track_events(index: int, track) -> Iterator[tuple[int, int, int, object]]:
    tick = 0
    for seq, message in enumerate(track):
        tick += message.time
        yield tick, index, seq, message


def _key(message) -> tuple[tuple[int, int] | None, bool]:
    """A note message's (channel, note), and whether it strikes the key."""
    if message.type == "note_on":
        return (message.channel, message.note), message.velocity > 0
    if message.type == "note_off":
        return (message.channel, message.note), False
    return None, False


def _ends_first(events: Iterator[tuple]) -> Iterator[tuple]:
    """``events`` with each tick's note-off of a key that sounded before
    that tick moved ahead of the tick's note-on of that key. Which order
    a file gives the two in is arbitrary (two tracks play one channel, a
    sequencer writes the next note first), but a note-on then a note-off
    at one tick read in that order ended the new note 10 ms after its
    start (the MIDI audit), where the old one was meant to end. A note
    that starts and ends on one tick keeps its order: it is held 10 ms."""
    sounding: set[tuple[int, int]] = set()
    group: list[tuple] = []
    for event in events:
        if group and event[0] != group[0][0]:
            yield from _settled(group, sounding)
            group = []
        group.append(event)
    yield from _settled(group, sounding)


def _settled(group: list[tuple], sounding: set[tuple[int, int]]) -> list[tuple]:
    """One tick's events in the order _ends_first gives them; ``sounding``
    follows them on."""
    if len(group) == 1:   # most ticks of a melody: nothing to order
        key, strikes = _key(group[0][3])
        if strikes:
            sounding.add(key)
        elif key is not None:
            sounding.discard(key)
        return group
    struck: dict[tuple[int, int], int] = {}   # a key sounding before the tick: where the tick first strikes it
    ended: set[tuple[int, int]] = set()       # a key whose earlier note the tick has ended already
    ahead: dict[int, list[tuple]] = {}        # a strike's place: the note-offs that go before it
    for at, event in enumerate(group):
        key, strikes = _key(event[3])
        if key is None or key not in sounding or key in ended:
            continue
        if strikes:
            struck.setdefault(key, at)
        else:
            ended.add(key)
            if key in struck:
                ahead.setdefault(struck[key], []).append(event)
    if ahead:
        moved = {id(event) for events in ahead.values() for event in events}
        group = [e for at, event in enumerate(group) if id(event) not in moved for e in (*ahead.get(at, ()), event)]
    for event in group:
        key, strikes = _key(event[3])
        if strikes:
            sounding.add(key)
        elif key is not None:
            sounding.discard(key)
    return group


class _Keys:
    """The keys each channel holds, by a finger or by its sustain pedal, as
    MidiDriver holds them, and the most it ever holds at once (``most``)."""

    def __init__(self, most: dict[int, int]) -> None:
        self.most = most
        self.down: dict[int, set[int]] = {}     # held now, by a finger or by the pedal
        self.let_go: dict[int, set[int]] = {}   # of those, the ones only the pedal holds
        self.pedals: set[int] = set()

    def note(self, channel: int, note: int, strikes: bool) -> None:
        down = self.down.setdefault(channel, set())
        if strikes:
            down.add(note)
            self.let_go.get(channel, set()).discard(note)
            self.most[channel] = max(self.most.get(channel, 0), len(down))
        elif channel in self.pedals and note in down:
            self.let_go.setdefault(channel, set()).add(note)
        else:
            down.discard(note)

    def control(self, channel: int, control: int, value: int) -> None:
        if control == SUSTAIN and value >= 64:
            self.pedals.add(channel)
        elif control in (SUSTAIN, RESET_CONTROLLERS):   # the pedal lifts (a reset lifts it too)
            self.pedals.discard(channel)
            self.down.get(channel, set()).difference_update(self.let_go.pop(channel, set()))
        elif control in (ALL_SOUND_OFF, ALL_NOTES_OFF):   # every key let go; the pedal stays as it is
            self.down.pop(channel, None)
            self.let_go.pop(channel, None)


def loudness_controls(controls: tuple[int, int], message) -> tuple[int, int]:
    """A channel's (volume, expression) after a control change: a reset of
    all controllers restores expression and, as the MIDI specification
    asks, leaves volume as it was."""
    volume, expression = controls
    if message.control == VOLUME:
        return message.value, expression
    if message.control == EXPRESSION:
        return volume, message.value
    if message.control == RESET_CONTROLLERS:
        return volume, 127
    return controls


@dataclass
class Summary:
    """What one pass over the file finds out before playing: the channels
    that play notes, each one's program, (volume, expression), pan and
    bend at its first note, the last tick. The voice patch starts with
    those, so a file that sets them as it starts does not glide to them
    over the first 5 ms of its first notes (a part panned hard left began
    as a smear from the centre, the MIDI audit heard)."""

    channels: set[int] = field(default_factory=set)
    programs: dict[int, int] = field(default_factory=dict)
    controls: dict[int, tuple[int, int]] = field(default_factory=dict)
    pans: dict[int, int] = field(default_factory=dict)    # CC 10, where one came before the first note
    bends: dict[int, int] = field(default_factory=dict)   # the pitch wheel, likewise
    #: The most keys each channel holds at once, a sustain pedal's included:
    #: its note source needs that many voices, or one of them is stolen.
    held: dict[int, int] = field(default_factory=dict)
    last_tick: int = 0
    notes: int = 0
    #: (tick, microseconds a beat) of every tempo change, and (tick,
    #: (numerator, denominator)) of every time signature, in file order:
    #: the file's length and its bars come from these alone.
    tempos: list[tuple[int, int]] = field(default_factory=list)
    meters: list[tuple[int, tuple[int, int]]] = field(default_factory=list)


class MidiSong:
    """A Standard MIDI file (type 0, 1 or 2), checked and summarised.

    Raises
    ------
    SynthError
        Naming the file, if it cannot be read or is not a valid MIDI file.
    """

    def __init__(self, path: str | Path) -> None:
        import mido
        from mido.midifiles import midifiles
        # Its track reader looks these names up at each event.
        midifiles.read_variable_int = _read_quantity
        midifiles.build_meta_message = _meta_message
        midifiles.read_sysex = _read_sysex
        self.path = str(path)
        #: The damaged meta events left out, as "track N, tick T: what" (see _meta_message).
        self.ignored: list[str] = []
        try:
            with open_to_read(self.path) as infile:
                header, chunks = _chunks(infile)
        except OSError as error:
            raise SynthError(f"cannot read: {error.strerror}", source=self.path) from None
        try:
            kind, count, division = midifiles.read_file_header(io.BytesIO(header))
        except OSError as error:   # mido's: no header
            raise SynthError(f"not a valid MIDI file: {error}", source=self.path) from None
        except EOFError:
            where = "is empty" if not header else "ends in the middle of a chunk (truncated?)"
            raise SynthError(f"not a valid MIDI file: it {where}", source=self.path) from None
        count &= 0xFFFF   # mido reads it signed
        if len(chunks) < count:
            raise SynthError(f"not a valid MIDI file: its header counts {count} tracks, but it has "
                             f"{len(chunks)} (truncated?)", source=self.path)
        tracks = [self._track(number, *chunk) for number, chunk in enumerate(chunks[:count], start=1)]
        if kind not in (0, 1, 2):
            raise SynthError(f"not a valid MIDI file: format {kind} (only 0, 1 and 2 exist)", source=self.path)
        self.file = mido.MidiFile(type=kind, ticks_per_beat=division, tracks=tracks)
        if division == 0:
            raise SynthError("not a valid MIDI file: zero ticks per quarter note", source=self.path)
        if division < 0 and division & 0xFF == 0:
            raise SynthError("not a valid MIDI file: SMPTE timing with zero ticks per frame", source=self.path)
        if division < 0 and -(division >> 8) not in (24, 25, 29, 30):   # the four the standard names
            raise SynthError(f"not a valid MIDI file: SMPTE timing at {-(division >> 8)} frames a second "
                             f"(only 24, 25, 29.97 and 30 exist)", source=self.path)
        self.summary = self._scan()
        hours = self.seconds() / 3600
        if hours > MAX_HOURS:
            raise SynthError(f"the MIDI file lasts {hours:.1f} hours, over the {MAX_HOURS} allowed "
                             f"(a corrupt delta time?)", source=self.path)

    def _track(self, number: int, offset: int, chunk: bytes):
        """The MTrk chunk at byte ``offset`` of the file, read by mido. A
        fault names the track, counted from 1 as a sequencer counts them,
        and the byte where the reader found it, counted from 0 as a hex
        editor counts them."""
        from mido.midifiles import midifiles
        from mido.midifiles.meta import _META_SPECS
        stream = io.BytesIO(chunk)
        try:
            track = midifiles.read_track(stream, clip=False)
        except EOFError:
            raise SynthError(f"not a valid MIDI file: track {number} ends in the middle of an event (truncated?)",
                             source=self.path) from None
        except (OSError, ValueError) as error:   # mido's words for what is wrong
            reason = str(error)
            if reason == "running status without last_status":
                reason = "a data byte where an event should start"
        except (KeyError, IndexError, TypeError, struct.error):   # Python's words, about mido's code
            reason = "a damaged event"
        else:
            tick = 0
            for message in track:
                tick += message.time
                if message.type == "unknown_meta" and message.type_byte in _META_SPECS:
                    self.ignored.append(f"track {number}, tick {tick}: "
                                        f"{_damage(message.type_byte, message.data)}, ignored")
            return track
        raise SynthError(f"not a valid MIDI file: {reason} "
                         f"(track {number}, at byte {offset + stream.tell() - 1})", source=self.path)

    def merged(self) -> Iterator[tuple[int, int, int, object]]:
        """Every message of every track as ``(tick, track, index, message)``
        in time order; at the same tick, earlier tracks first, then file
        order, but for a key's note-off that ends a note of an earlier tick
        (see :func:`_ends_first`)."""
        return _ends_first(heapq.merge(*(_track_events(i, track) for i, track in enumerate(self.file.tracks))))

    def _scan(self) -> Summary:
        summary = Summary()
        programs: dict[int, int] = {}
        controls: dict[int, tuple[int, int]] = {}
        pans: dict[int, int] = {}
        bends: dict[int, int] = {}
        keys = _Keys(summary.held)
        for tick, _, _, message in self.merged():
            summary.last_tick = tick
            kind = message.type
            if kind in ("note_on", "note_off"):
                keys.note(message.channel, message.note, kind == "note_on" and message.velocity > 0)
            if kind == "note_on" and message.velocity > 0:
                summary.notes += 1
                channel = message.channel
                if channel not in summary.channels:
                    summary.channels.add(channel)
                    summary.programs[channel] = programs.get(channel, 0)
                    summary.controls[channel] = controls.get(channel, (DEFAULT_VOLUME, 127))
                    for found, kept in ((pans, summary.pans), (bends, summary.bends)):
                        if channel in found:
                            kept[channel] = found[channel]
            elif kind == "program_change":
                programs[message.channel] = message.program
            elif kind == "control_change":
                channel, control = message.channel, message.control
                controls[channel] = loudness_controls(controls.get(channel, (DEFAULT_VOLUME, 127)), message)
                if control == PAN:
                    pans[channel] = message.value
                elif control == RESET_CONTROLLERS:
                    bends.pop(channel, None)
                keys.control(channel, control, message.value)
            elif kind == "pitchwheel":
                bends[message.channel] = message.pitch
            elif kind == "set_tempo":
                summary.tempos.append((tick, message.tempo))
            elif kind == "time_signature" and message.numerator:
                summary.meters.append((tick, (message.numerator, message.denominator)))
        return summary

    def clock(self, samplerate: float) -> _Clock:
        return _Clock(self.file.ticks_per_beat, Fraction(samplerate))

    def _timed(self, samplerate: float, start: Fraction | int = 0) -> Iterator[tuple[int | None, object]]:
        """``(sample_time, message)`` of every message, counted from the
        sample of tick ``start`` (None before it). Each time is the whole
        file's, rounded, less the start's rounded: the notes of a file
        played from a bar keep their places to the sample."""
        clock = self.clock(samplerate)
        origin = None
        for tick, _, _, message in self.merged():
            if origin is None and tick >= start:
                origin = round(clock.at(start))   # before a later tempo moves the clock on
            if message.type == "set_tempo":
                clock.tempo(tick, message.tempo)
            yield (None if origin is None else round(clock.at(tick)) - origin), message

    def end_sample(self, samplerate: float, start: Fraction | int = 0) -> int:
        """The sample time of the file's last event (its last end of track),
        from tick ``start``, as :meth:`_timed` gives it: through the tempo
        changes alone, where going through every event took seconds for a
        file of 200,000 notes (the MIDI audit)."""
        last = self.summary.last_tick
        if start > last:
            return 0
        clock, origin = self.clock(samplerate), None
        for tick, microseconds in self.summary.tempos:
            if origin is None and tick >= start:
                origin = round(clock.at(start))
            clock.tempo(tick, microseconds)
        if origin is None:
            origin = round(clock.at(start))
        return round(clock.at(last)) - origin

    @property
    def in_frames(self) -> bool:
        """Whether the file keeps time in SMPTE frames rather than beats."""
        return self.file.ticks_per_beat < 0

    def bar_ticks(self) -> list[Fraction]:
        """The tick each bar starts on, up to the file's end: 4/4 until a
        time signature says otherwise, and a time signature inside a bar
        starts a new bar there, as notation would have it. One of 0 beats
        (a corrupt file's) says nothing.

        Raises
        ------
        SynthError
            For a file that counts in SMPTE frames: it has no bars; and for
            one of over MAX_BARS bars (what a song may have), which a corrupt
            time signature of 4/2**40 would count for days.
        """
        if self.in_frames:
            raise SynthError("this MIDI file keeps time in SMPTE frames, so it has no bars", source=self.path)
        division = self.file.ticks_per_beat
        meters = self.summary.meters
        starts, tick, meter, next_meter = [], Fraction(0), (4, 4), 0
        while tick < self.summary.last_tick or not starts:
            if len(starts) == MAX_BARS:
                raise SynthError(f"this MIDI file has over {MAX_BARS} bars, by its time signatures and "
                                 f"{division} ticks a quarter note", source=self.path)
            while next_meter < len(meters) and meters[next_meter][0] <= tick:
                meter = meters[next_meter][1]
                next_meter += 1
            starts.append(tick)
            tick += Fraction(division * 4 * meter[0], meter[1])
            if next_meter < len(meters) and meters[next_meter][0] < tick:
                tick = Fraction(meters[next_meter][0])
        return starts

    def seconds(self) -> float:
        return self.end_sample(1_000_000) / 1e6

    def events(self, samplerate: float, start: Fraction | int = 0) -> Iterator[tuple[int, object]]:
        """``(sample_time, message)`` of every message that makes sound, and
        of every tempo change (a voice patch's note lengths follow it), in
        order, computed as they are asked for. Tempo changes move the clock
        from their tick on; time signatures only label bars (ticks count
        quarter notes whatever the meter), so they need nothing here.

        From tick ``start`` (a bar, for ``--from``), what came before sets
        the stage at sample 0, as a sequencer chases it: programs,
        controllers, the pitch wheel and the tempo, then the notes still
        held there (a pad struck in the bar before sounds from the start,
        not only from the next note)."""
        held: dict[tuple[int, int], object] = {}   # struck before the start and sounding there
        pedalled: set[tuple[int, int]] = set()      # of those, the keys let go while a pedal holds them
        pedals: set[int] = set()                    # the channels whose sustain pedal is down
        for sample, message in self._timed(samplerate, start):
            if sample and held:
                yield from self._chased(held, pedalled)
            kind = message.type
            if kind != "set_tempo" and kind not in PLAYED:
                continue
            key = (message.channel, message.note) if kind in ("note_on", "note_off") else None
            struck = kind == "note_on" and message.velocity > 0
            if sample is None:
                if struck:
                    held[key] = message
                    pedalled.discard(key)
                elif key is not None and key in held and message.channel in pedals:
                    pedalled.add(key)
                elif key is not None:
                    held.pop(key, None)
                if key is not None:
                    continue
                if kind == "control_change" and message.control == SUSTAIN:
                    if message.value >= 64:
                        pedals.add(message.channel)
                    else:
                        pedals.discard(message.channel)
                        for lifted in [k for k in pedalled if k[0] == message.channel]:
                            pedalled.discard(lifted)
                            del held[lifted]
            elif sample == 0 and key in held:   # ended, or struck again, on the bar: not chased
                del held[key]
                pedalled.discard(key)
                if not struck:
                    continue
            yield (0 if sample is None else sample), message
        yield from self._chased(held, pedalled)

    @staticmethod
    def _chased(held: dict, pedalled: set) -> Iterator[tuple[int, object]]:
        """The notes sounding at the start, struck at sample 0; one a pedal
        holds is let go there too, so the pedal's lift ends it, as in the
        whole file."""
        import mido
        for key, message in held.items():
            yield 0, message
            if key in pedalled:
                yield 0, mido.Message("note_off", channel=key[0], note=key[1])
        held.clear()
        pedalled.clear()

    def bars(self) -> int | None:
        """How many bars the file has (what ``--from`` may start at); None
        for one timed in SMPTE frames or of too many bars to count."""
        try:
            return len(self.bar_ticks())
        except SynthError:
            return None

    def describe(self) -> str:
        s = self.summary
        tracks, channels, bars = len(self.file.tracks), len(s.channels), self.bars()
        return (f"type {self.file.type}, {tracks} track{'s' * (tracks != 1)}, {s.notes} note{'s' * (s.notes != 1)} "
                f"on {channels} channel{'s' * (channels != 1)}, "
                + (f"{bars} bar{'s' * (bars != 1)}, " if bars is not None else "") + f"{self.seconds():.1f} s")
