"""Following a MIDI clock as JACK MIDI delivers it: a steady clock keeps
one tempo, a clock beyond the tempos a song takes is one line, and a real
change of tempo is still followed.

The ticks go through the entry point the MIDI input thread calls
(:class:`ClockFollower`), with arrival times generated as JACK hands them
over: each at the start of the period after it was sent, those of one
period together in one batch. Seeded, so no wall time and no load can
change what is checked."""
import math

import mido
import numpy as np
import pytest

from synthcli.control import Control, LiveSound
from synthcli.engine.core import Engine
from synthcli.engine.render import Performance
from synthcli.link import Timeline
from synthcli.midi.clock import ClockFollower
from synthcli.repl.session import Session
from synthcli.sequencer.clocked import ClockedSequencer, ClockSession
from synthcli.sequencer.song import Song
from synthcli.testing import onsets

SR = 48000
PERIOD = 256 / SR       # a JACK period at 256 frames and 48 kHz


class Followed:
    """A song at 120 BPM that follows a clock; ``lines`` holds what the
    follower logs, with the arrival time of the batch that made it."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.beats: list[tuple[float, tuple | None]] = []   # what the engine was told, with the batch's arrival
        sound = LiveSound()
        sound.beats = lambda line: self.beats.append((self.now, line))
        self.session = Session(registry, sound)
        control = Control(self.session, log=lambda line: None)
        control.execute('add keys kb\ntempo 120\nlength 1\npattern kb "c4"')
        self.now = 100.0
        self.lines: list[tuple[float, str]] = []
        self.follower = ClockFollower(control, lambda line: self.lines.append((self.now, line)))
        self.follower([(self.now, mido.Message("start"))])

    def play(self, tempos: list[tuple[float, float]], seed: int, period: float = PERIOD) -> list[float]:
        """The clock at each (seconds, bpm) in turn, each tick sent up to
        0.5 ms off its time, on a server whose periods drift 40 ppm from
        the sender's clock. Returns when each tempo's first tick is sent."""
        rng = np.random.default_rng(seed)
        sent, starts, now = [], [], self.now
        for seconds, bpm in tempos:
            starts.append(now)
            end = now + seconds
            while now < end:
                sent.append(now + rng.uniform(-0.0005, 0.0005))
                now += 60 / (24 * bpm)
        period *= 1 + 40e-6
        phase = self.now + rng.uniform(0, period)
        numbers, counts = np.unique(np.ceil((np.sort(sent) - phase) / period), return_counts=True)
        for number, count in zip(numbers, counts):
            self.now = phase + number * period + rng.uniform(0, 0.0002)   # the reading thread wakes
            self.follower([(self.now + 1e-6 * k, mido.Message("clock")) for k in range(count)])
        return starts

    def applied(self, since: float = 0.0, until: float = math.inf) -> list[float]:
        return [float(line.split()[-1]) for when, line in self.lines
                if line.startswith("midi clock: tempo ") and since <= when < until]

    def refused(self, since: float = 0.0, until: float = math.inf) -> list[str]:
        return [line for when, line in self.lines if "refused" in line and since <= when < until]

    def tempo(self) -> float:
        return float(Song(self.registry, self.session.song_text).tempo)


#: Beats after which a steady clock's tempo is applied no more: its
#: refinements end with the fit over 16 beats, which comes as the 16th
#: beat ends, a period or so late.
SETTLED = 16 * 1.05


@pytest.mark.parametrize("bpm, near", [(150, 0.05), (234, 1.0), (600, 1.0)])
def test_a_steady_clock_keeps_one_tempo_through_jack_jitter(registry, bpm, near):
    # 234 BPM is a tick of two periods less 0.16%: the lateness creeps
    # across a period and jumps back, which a least-squares line over two
    # beats once took for changes of tempo of 3 BPM; its 16 beats can be
    # off by 0.2%.
    followed = Followed(registry)
    start, = followed.play([(60, bpm)], seed=bpm)
    settled = start + SETTLED * 60 / bpm     # the refining fit has all the ticks it looks at
    early, late = followed.applied(until=settled), followed.applied(since=settled)
    print(f"{bpm} BPM: applied {early} in the first 16 beats, then {late}")
    assert not followed.refused() and 1 <= len(early) <= 5, followed.lines
    assert all(abs(t - bpm) < 0.015 * bpm for t in early), early
    assert late == [], late                  # 53 s and more, no tempo applied: nothing flips
    assert abs(followed.tempo() - bpm) < near, followed.tempo()


@pytest.mark.parametrize("bpm", [999, 1000])
def test_a_clock_at_the_fastest_tempo_plays_at_it_without_a_refusal(registry, bpm):
    followed = Followed(registry)
    start, = followed.play([(30, bpm)], seed=bpm)
    applied = followed.applied()
    print(f"{bpm} BPM: applied {applied}")
    assert not followed.refused(), followed.lines
    assert 1 <= len(applied) <= 5 and followed.applied(since=start + SETTLED * 60 / bpm) == [], applied
    assert abs(followed.tempo() - 999) < 2, followed.tempo()


def test_a_clock_beyond_999_bpm_is_one_line_out_and_one_back(registry):
    followed = Followed(registry)
    starts = followed.play([(5, 120), (10, 1200), (10, 120), (5, 1300)], seed=12)
    beyond, back, again = starts[1:]
    print("\n".join(line for _, line in followed.lines))
    assert len(followed.refused()) == 2, followed.lines                    # not one per batch
    out, = followed.refused(since=beyond, until=back)
    assert out.startswith("midi clock: 'tempo 1") and "from 1 to 999" in out and "\n" not in out, out
    assert float(out.split("'")[1].split()[1]) > 1100, out
    assert followed.applied(since=beyond, until=back) == []                # the song kept its tempo
    returned = followed.applied(since=back, until=again)
    assert returned and abs(returned[0] - 120) < 1 and len(returned) <= 5, returned
    assert followed.applied(since=again) == [] and abs(followed.tempo() - 120) < 0.05, followed.lines


@pytest.mark.parametrize("before, after", [(120, 140), (140, 120), (600, 400)])
def test_a_real_change_of_tempo_is_still_followed(registry, before, after):
    followed = Followed(registry)
    _, change = followed.play([(10, before), (20, after)], seed=before + after)
    applied = followed.applied(since=change)
    print(f"{before} -> {after} BPM: applied {applied}")
    beat = 60 / after
    # Within three beats (a beat of the new tempo measures it), no staircase
    # of tempos on the way, and its refinements as after a start.
    assert any(abs(t - after) < 0.5 for t in followed.applied(since=change, until=change + 3 * beat)), applied
    assert all(abs(t - after) < 0.015 * after for t in applied) and len(applied) <= 5, applied
    assert abs(followed.tempo() - after) < 0.05, followed.tempo()


def test_a_continue_plays_from_the_clocks_song_position_on_a_bar(registry):
    """Song Position Pointer and Continue, as a DAW sends them to start
    inside the song: on a bar's first tick the song plays from that bar at
    once, even one playing since launch; inside a bar it waits for the next
    bar's tick, to come in on the beat. A stop keeps the clock's place, so a
    continue alone goes on from it; a start is bar 1 again."""
    session = Session(registry, LiveSound())
    control = Control(session, log=lambda line: None)
    control.execute('add keys kb\ntempo 120\nmeter 3/4\nlength 8\npattern kb "c4 e4 g4"')
    control.execute("play")                         # as `synth play` plays a song from launch
    lines = []
    follower = ClockFollower(control, lines.append)
    clock = iter(np.arange(0, 100, 60 / (24 * 120)))

    def send(*messages):
        follower([(next(clock), message) for message in messages])

    def bar():
        return session.transport.segments[0][0] + 1 if session.transport.playing else None

    # A 3/4 bar is 12 sixteenths (72 ticks): bar 3 starts at sixteenth 24.
    send(mido.Message("songpos", pos=24), mido.Message("continue"))
    assert bar() == 3 and lines == []             # moved from bar 1, where launch started it
    send(*[mido.Message("clock")] * 10, mido.Message("stop"))
    assert bar() is None
    send(*[mido.Message("clock")] * 5)              # a stopped clock's ticks move nothing
    send(mido.Message("continue"))                  # at tick 144 + 10, inside bar 3
    assert bar() is None
    assert [line for line in lines if "continue" in line] == [
        "midi clock: continue at beat 7.41667 of the song, inside bar 3: playing from bar 4 when the clock reaches it"]
    send(*[mido.Message("clock")] * 62)             # ticks 154 to 215
    assert bar() is None
    send(mido.Message("clock"))                     # tick 216: bar 4's first
    assert bar() == 4
    send(mido.Message("start"))
    assert bar() == 1
    send(*[mido.Message("clock")] * 30, mido.Message("stop"), mido.Message("songpos", pos=13),
         mido.Message("continue"), *[mido.Message("clock")] * 66)
    assert bar() is None                            # sixteenth 13 (tick 78) is in bar 2; bar 3 is tick 144
    send(mido.Message("clock"))
    assert bar() == 3
    lines.clear()                                   # a position past the song's 8 bars: said, not waited on
    send(mido.Message("stop"), mido.Message("songpos", pos=16383), mido.Message("continue"))
    assert bar() is None and lines == [
        "midi clock: continue at beat 4096.75, past the song's end (its 8 bars): nothing to play from there"]


#: When sample 0 is heard, on the virtual audio clock of the tests below.
T0 = 1000.0
QUARTERS = ("add keys kb voices=1\nadd vca v level=0.5\nconnect kb.gate v\nconnect v out\n"
            'pattern kb "c4 c4 c4 c4" legato=0.5\n')


def clocked_onsets(registry, text: str, lines: dict[int, tuple | None]) -> np.ndarray:
    """Where the notes of ``text`` start, played by a ClockedSequencer on a
    clock that has started: the engine renders offline, and the audio
    callback the Timeline reads is a virtual one that hears sample ``n`` at
    ``T0 + n / SR``. ``lines`` are what the follower sends, given to the
    engine at the first block at or after their sample."""
    session = ClockSession()
    session.follow(None)                     # a start: songs follow the clock from now on
    with Engine(registry, SR, 256) as engine:
        timeline = Timeline(session, SR, lambda: (engine.time, engine.time, T0 + engine.time / SR))
        performance = Performance(engine, driver=ClockedSequencer(Song(registry, text), engine, False, timeline))
        waiting = sorted(lines.items())
        blocks = []
        while not performance.over:
            while waiting and waiting[0][0] <= engine.time:
                session.follow(waiting.pop(0)[1])
            blocks.append(performance.next_block()[0].copy())
    return onsets(np.concatenate(blocks), quiet=2000)


def test_a_song_started_before_the_clock_tells_its_beats_plays_its_own_tempo_map(registry):
    """Until a line comes, the song's own tempo is the line's, and its own
    tempo change moves it from its bar: a song started while the clock
    stands, as the plain sequencer plays it, to the sample."""
    text = "tempo 120\nlength 3\nat 2 tempo 60\n" + QUARTERS
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    own = onsets(np.concatenate(blocks), quiet=2000)   # (the first note, on sample 0, has no silence before it)
    assert np.array_equal(own, np.array([0.5, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]) * SR), own / SR
    assert np.abs(clocked_onsets(registry, text, {}) - own).max() <= 1


def test_the_clocks_lines_place_the_notes_still_to_come_on_its_beats(registry):
    """A line at 150 BPM, sent in the song's second beat at 120, puts its
    third beat and every one after on the clock's: 0.4 s apart, on the
    line's phase, the tempo change the song has at bar 2 ignored."""
    text = "tempo 120\nlength 3\nat 2 tempo 60\n" + QUARTERS
    beat = 0.4
    line = (T0 + 0.55, 1.25, 150.0)            # the clock's beat 1.25 is heard at 0.55 s
    found = clocked_onsets(registry, text, {int(0.6 * SR): line}) / SR
    clock = 0.55 + (np.arange(2, 12) - 1.25) * beat
    assert len(found) == 11 and abs(found[0] - 0.5) <= 1 / SR   # at the song's own tempo: no line yet
    assert np.allclose(found[1:], clock, atol=1 / SR), found[1:] - clock


def clocked(registry, text: str, told: tuple | None = None):
    """A ClockedSequencer for ``text`` on a fresh engine with the virtual
    audio clock of clocked_onsets, the clock started and, with ``told``,
    its line given: ``(engine, sequencer, session)``; close the engine."""
    session = ClockSession()
    session.follow(told)
    engine = Engine(registry, SR, 256)
    timeline = Timeline(session, SR, lambda: (engine.time, engine.time, T0 + engine.time / SR))
    return engine, ClockedSequencer(Song(registry, text), engine, True, timeline), session


def test_a_song_typed_play_while_the_clock_runs_elsewhere_starts_on_its_next_bar(registry):
    """`play` while the clock is 2000 beats in: bar 1 on beat 0 would be 500
    bars past, all played in the first block (five rebuilds, 27-47 ms of a
    5.3 ms block). It starts on the clock's next bar, 2004, instead."""
    text = "tempo 120\nlength 8\n" + QUARTERS + "at 3 add vco o\nat 3 connect o v.gain\nat 5 remove o\n"
    engine, sequencer, _ = clocked(registry, text, told=(T0 + 0.1, 2001.0, 120.0))
    with engine:
        performance = Performance(engine, driver=sequencer)
        blocks = [performance.next_block()[0].copy()]
        assert sequencer.bar == 0, sequencer.bar            # nothing of the song's yet
        blocks += [performance.next_block()[0].copy() for _ in range(3 * SR // 256)]
    found = onsets(np.concatenate(blocks), quiet=2000) / SR
    assert np.allclose(found[:3], [1.6, 2.1, 2.6], atol=1 / SR), found   # beat 2004: 0.1 + 3 * 0.5 s


def test_a_tempo_of_the_songs_own_leaves_note_lengths_at_the_clocks(registry):
    """`at 2 tempo 60` while a clock at 120 tells the beats: a delay set to
    an eighth stays an eighth of the clock's beat (0.25 s), not the song's."""
    text = ("tempo 120\nlength 3\nat 2 tempo 60\nadd delay d time=1/8\nconnect d out\n" + QUARTERS
            .replace("connect v out", "connect v d"))
    engine, sequencer, _ = clocked(registry, text, told=(T0, 0.0, 120.0))
    with engine:
        performance = Performance(engine, driver=sequencer)
        times = []
        for _ in range(4 * SR // 256):                      # into bar 3, at 120
            performance.next_block()
            times.append(engine.params[("d", "time")])
    assert np.allclose(times[2:], 0.25), sorted(set(times))


def test_midiout_patterns_and_the_clock_out_follow_the_clocks_beats(registry):
    """A `midiout` target's notes go to the outside gear (they went nowhere
    once the clock had started), and --clock-out's ticks fall on the clock's
    beats, not on the song's own tempo from the song's start (481 ticks at
    once, 10 s into a play)."""
    from synthcli.midi.clock import ClockTicks
    text = 'tempo 120\nlength 2\nmidiout ext "Volca" channel=2\npattern ext "c4 e4 g4 c5"\n'
    engine, sequencer, _ = clocked(registry, text, told=(T0 + 1.0, 0.0, 150.0))
    sent = []
    sequencer.midi_out = lambda port, channel, start, stop, pitch, velocity: sent.append((start, pitch))
    with engine:
        ticks = ClockTicks(sequencer)
        performance = Performance(engine, driver=sequencer)
        found = []
        for _ in range(3 * SR // 256):
            found += ticks.until(engine.time + 256)
            performance.next_block()
    beat = 0.4 * SR                                           # 150 BPM
    assert [pitch for _, pitch in sent[:4]] == [60, 64, 67, 72], sent
    assert np.allclose([start for start, _ in sent[:4]], SR + beat * np.arange(4), atol=1), sent
    assert np.allclose(found[:49], SR + beat / 24 * np.arange(49), atol=1), found[:5]


@pytest.mark.parametrize("frames, rate", [(256, 48000), (4096, 44100)])
def test_the_beats_go_to_the_engine_every_sixteenth_with_a_slope_only_once_it_is_sure(registry, frames, rate):
    """Every tick of the first beat places the beat; a line's tempo comes
    with it once the jitter of the ticks cannot move it by 5%. JACK at 4096
    frames hands a clock at 120 BPM over in bursts of four or five ticks,
    whose first beat's lines said up to 150 and 190 BPM."""
    followed = Followed(registry)
    start, = followed.play([(10, 120)], seed=0, period=frames / rate)
    lines = [line for _, line in followed.beats]
    assert lines[0] is None                                             # the start
    told = [line for line in lines[1:] if line is not None]
    beats = [beat for _, beat, _ in told]
    assert beats == sorted(beats) and beats[-1] == pytest.approx(20 - 1 / 24, abs=0.25), beats[-3:]
    later = [beat for beat in beats if beat >= 1]
    assert np.allclose(np.diff(later), 0.25, atol=0.21), np.diff(later)   # a sixteenth (a batch of ticks)
    sloped = [bpm for _, beat, bpm in told if bpm is not None]
    assert sloped and all(abs(bpm - 120) < 0.05 * 120 for bpm in sloped), sloped
    for when, beat, _ in told:   # each line passes through the tick it names, give or take JACK's period
        assert abs(when - (start + beat * 0.5)) < 1.5 * frames / rate, (when, beat)


@pytest.mark.parametrize("told, bar, first", [
    ((T0, 10.1, 120.0), 0, 0.95),     # the clock 10.1 beats in: bar 1 on its beat 12
    ((T0, 1.3, 120.0), 2, 1.35),      # `play 3` with the clock in its first bar: on its beat 4, not 8
])
def test_a_song_joined_mid_clock_keeps_its_bars_when_the_clock_stops_telling(registry, told, bar, first):
    """Joined on the clock's next bar, the song's bars are counted from
    there; when the clock's place is lost for a tick (a Song Position
    Pointer) as a bar of the song changes its tempo, the bar stays where it
    was: it sounded 6 s late, on the song's own beat 12 after its start."""
    text = ("tempo 120\nlength 4\nat 2 tempo 120\nat 4 tempo 120\nadd keys kb voices=1\nadd vca v level=0.5\n"
            'connect kb.gate v\nconnect v out\npattern kb "c4 c4 c4 c4" legato=0.5\n')
    session = ClockSession()
    session.follow(told)
    with Engine(registry, SR, 256) as engine:
        timeline = Timeline(session, SR, lambda: (engine.time, engine.time, T0 + engine.time / SR))
        performance = Performance(engine, driver=ClockedSequencer(Song(registry, text), engine, False, timeline,
                                                                  bar))
        blocks = [performance.next_block()[0].copy() for _ in range(int(first * SR) // 256 + 10)]
        session.follow(None)                                 # the clock relocates before the song's next bar
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    found = onsets(np.concatenate(blocks), quiet=2000) / SR
    bars = 4 - bar
    assert np.allclose(found, first + 0.5 * np.arange(4 * bars), atol=1 / SR), found


def test_a_burst_of_ticks_after_a_start_places_the_beat_without_a_tempo(registry):
    """Six ticks in one batch (JACK at 4096 frames, a clock over 160 BPM)
    made a line of 2.5 million BPM; the same instant for all, a division
    by zero. One burst says nothing of the tempo."""
    for spacing in (1e-6, 0.0):
        followed = Followed(registry)
        followed.follower([(followed.now + spacing * k, mido.Message("clock")) for k in range(8)])
        lines = [line for _, line in followed.beats if line is not None]
        assert lines and all(bpm is None for _, _, bpm in lines), lines
