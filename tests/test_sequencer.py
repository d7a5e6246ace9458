"""Songs: exact timing whatever the block size, tempo and meter maps,
timed sets and parameter patterns, identical renders on every executor,
and checking that names the place of every mistake."""
import hashlib
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from synthcli.engine.core import Engine
from synthcli.engine.render import Performance
from synthcli.errors import SynthError
from synthcli.modules.dynamics import SOFT_CLIP_KNEE
from synthcli.sequencer.notation import parse_pattern
from synthcli.sequencer.song import Song
from synthcli.testing import peak_frequency, rms

ROOT = Path(__file__).parent.parent
SR = 48000
GATE = """
add keys kb voices=1
add vca v level=0.5
connect kb.gate v
connect v out
"""


def render(registry, text, blocksize=256, executor="inline", workers=None):
    song = Song(registry, text)
    with Engine(registry, SR, blocksize, executor=executor, workers=workers) as engine:
        performance = Performance(engine, song)
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    return np.concatenate(blocks)[:performance.length]


def test_a_patterns_vel_is_each_notes_velocity_and_0_8_without_it(registry):
    """`vel=` reaches the note source's velocity cable note by note: a vca
    on it plays `vel=0.4` at half the level of no `vel`, which is 0.8."""
    text = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd vca v level=0.5\nconnect kb.velocity v.gain\n"
            "connect kb.gate v\nconnect v out\npattern kb \"c4 c4\" legato=0.5{vel}\n")
    held = slice(SR // 4, SR // 2)   # the first note, past the output's fade-in
    plain, soft = (render(registry, text.format(vel=vel))[held] for vel in ("", " vel=0.4"))
    np.testing.assert_allclose(plain, 0.5 * 0.8, atol=1e-9)
    np.testing.assert_allclose(soft, 0.5 * 0.4, atol=1e-9)


def rising_edges(signal):
    """Where a gate (exactly 0 between notes) starts; the fade-in at the
    very start only scales the first note, it does not move it."""
    high = signal > 0
    return np.flatnonzero(high[1:] & ~high[:-1]) + 1


@pytest.mark.parametrize("blocksize", [64, 256, 1000])
def test_sixteenths_land_on_their_exact_samples_at_any_block_size(registry, blocksize):
    out = render(registry, "tempo 120\nlength 2\n" + GATE + 'pattern kb "c4*16" legato=0.5\n', blocksize)
    step = SR * 2 // 16        # a 4/4 bar at 120 BPM lasts 2 s
    ideal = np.arange(1, 32) * step
    onsets = rising_edges(out)
    assert np.abs(onsets - ideal).max() <= 1
    assert out[0] > 0          # the first note starts on sample 0
    falls = np.flatnonzero((out[1:] == 0) & (out[:-1] > 0)) + 1
    assert len(falls) == 32
    assert np.abs(falls - np.r_[0, onsets] - step // 2).max() <= 1     # legato 0.5 holds half a step


@pytest.mark.parametrize("swing, unit", [("0.6", 16), ("0.6667", 16), ("0.75", 8), ("0.55", 8)])
def test_swing_moves_every_off_beat_to_its_place_in_the_pair(registry, swing, unit):
    """At 120 BPM a pair of 16ths lasts 4000 samples (of 8ths, 8000): the
    on-beat note stays, the off-beat one starts at swing x the pair, on
    its sample, and each note, held half its step, ends half way through
    the part of the pair it got. Two bars, so the second's pairs count
    from its own start."""
    steps = unit * 2
    text = f"tempo 120\nlength 2\n{GATE}pattern kb \"c4*{unit}\" legato=0.5 swing={swing}"
    out = render(registry, text + ("" if unit == 16 else f" swingunit={unit}") + "\n")
    pair = SR * 2 // unit * 2
    amount = Fraction(swing)
    starts, ends = [], []
    for k in range(steps // 2):
        starts += [k * pair, k * pair + amount * pair]
        ends += [k * pair + amount * pair / 2, k * pair + amount * pair + (1 - amount) * pair / 2]
    starts, ends = np.array([round(t) for t in starts]), np.array([round(t) for t in ends])
    np.testing.assert_array_equal(rising_edges(out), starts[1:])
    falls = np.flatnonzero((out[1:] == 0) & (out[:-1] > 0)) + 1
    np.testing.assert_array_equal(falls, ends)


def test_swing_leaves_straight_notes_and_a_cut_pair_alone(registry):
    """8ths swung by 16ths have no off-beat 16th to move, so they play as
    written (held for their whole step: a note's end moves with swing as
    its start does); in 7/8 swung by 8ths the last 8th has no partner, and
    stays."""
    straight = render(registry, f"tempo 120\nlength 1\n{GATE}pattern kb \"c4*8\"\n")
    swung = render(registry, f"tempo 120\nlength 1\n{GATE}pattern kb \"c4*8\" swing=0.7\n")
    np.testing.assert_array_equal(swung, straight)
    odd = render(registry, f"tempo 120\nmeter 7/8\nlength 1\n{GATE}pattern kb \"c4*7\" legato=0.5 "
                           f"swing=0.6 swingunit=8\n")
    pair = SR // 2                         # two 8ths at 120 BPM; a 7/8 bar holds three pairs and one more 8th
    expected = [k * pair + shift for k in range(3) for shift in (0, round(0.6 * pair))][1:] + [3 * pair]
    np.testing.assert_array_equal(rising_edges(odd), expected)


def test_a_pattern_in_a_scale_plays_its_degrees_as_the_notes_they_name(registry):
    """scale= turns numbers into degrees, below the root and over the
    octave too: the same samples as the notes written out."""
    degrees = render(registry, f"tempo 120\nlength 2\n{GATE}add vco o wave=sine\nconnect kb.voct o.voct\n"
                               f"connect o v.gain\npattern kb \"0 2 4 <-1 7>\" scale=a3:minor legato=0.5\n")
    notes = render(registry, f"tempo 120\nlength 2\n{GATE}add vco o wave=sine\nconnect kb.voct o.voct\n"
                             f"connect o v.gain\npattern kb \"a3 c4 e4 <g3 a4>\" legato=0.5\n")
    np.testing.assert_array_equal(degrees, notes)
    quarter = SR // 2
    heard = [peak_frequency(degrees[k * quarter + 1000:k * quarter + 11000]) for k in (0, 1, 2, 3, 7)]
    assert np.allclose(heard, [220.0, 261.63, 329.63, 196.0, 440.0], rtol=2e-3)


def test_a_drum_pattern_by_name_plays_the_kit_as_its_general_midi_notes_do(registry):
    """"bd sd, hh*8" as Tidal and drum machines write it: the kit's own
    GM notes, to the sample (rim and rd borrow the snare and the crash,
    as their notes do: the kit has no sound of their own for them)."""
    kit = "tempo 120\nlength 2\nadd drums kit\nconnect kit out\npattern kit \"{}\"\n"
    names = render(registry, kit.format("[bd sd, hh*8] <cp [oh lt mt ht cr rd rim sn]>"))
    notes = render(registry, kit.format("[c2 d2, fs2*8] <ds2 [as2 a2 b2 d3 cs3 ds3 cs2 d2]>"))
    np.testing.assert_array_equal(names, notes)
    assert rms(names[:SR]) > 0.05 and rms(names[2 * SR:]) > 0.05   # both bars sound


def test_a_pattern_on_a_frequency_plays_note_names_at_their_pitch(registry):
    """A drone and a filter tuned by note names: the drone plays each note
    at the keyboard's pitch, so a set to `c4` is C4 to the bit."""
    song = "tempo 120\nlength 1\nadd vco o wave=sine {freq}\nconnect o out\n{pattern}"
    x = render(registry, song.format(freq="", pattern='pattern o.freq "a2 a3 e4 c#5"\n'))
    quarter = SR // 2
    heard = [peak_frequency(x[k * quarter + 2000:(k + 1) * quarter]) for k in range(4)]
    assert np.allclose(heard, [110.0, 220.0, 329.63, 554.37], rtol=1e-3)
    at_c4 = render(registry, song.format(freq="freq=c4", pattern=""), blocksize=64)
    np.testing.assert_array_equal(at_c4, render(registry, song.format(freq="", pattern=""), blocksize=64))


#: A 25 ms note heard only as its echo, once a bar: where the echo starts
#: says what the delay's time was at that bar.
ECHO = """tempo 120
length 3
add keys kb voices=1
add vca v level=0.5
add delay d time={time} feedback=0 mix=1
connect kb.gate v
connect v d
connect d out
pattern kb "c4 ~ ~ ~" legato=0.05
at 2 tempo 60
"""


def echoes(signal):
    loud = np.flatnonzero(np.abs(signal) > 0.25)
    return loud[np.r_[True, np.diff(loud) > SR // 10]]


def test_a_delay_time_set_as_a_note_length_follows_the_tempo_map(registry):
    """An eighth at 120 BPM is 0.25 s, at 60 BPM 0.5 s: from bar 2 on the
    echo comes half a second after its note, on the sample, whatever the
    block size. A time in seconds stays put."""
    synced = render(registry, ECHO.format(time="1/8"), blocksize=64)
    bars = np.array([0, 2 * SR, 6 * SR])                    # bar 1 is 2 s long, bar 2 at 60 BPM 4 s
    assert np.abs(echoes(synced) - (bars + [SR // 4, SR // 2, SR // 2])).max() <= 2
    other = render(registry, ECHO.format(time="1/8"), blocksize=1000)
    np.testing.assert_array_equal(synced[:len(other)], other[:len(synced)])
    plain = render(registry, ECHO.format(time="0.25"), blocksize=64)
    assert np.abs(echoes(plain) - (bars + SR // 4)).max() <= 2
    dotted = render(registry, ECHO.format(time="1/8d").replace("at 2 tempo 60", "at 2 tempo 90"))
    assert np.abs(echoes(dotted) - [int(0.375 * SR), 2 * SR + SR // 2, 2 * SR + 8 * SR // 3 + SR // 2]).max() <= 2


def test_a_pattern_of_note_lengths_plays_each_at_its_bars_tempo(registry):
    """`pattern d.time "<1/8 1/16>"`: the echo comes an eighth after the
    note in odd bars and a sixteenth in even ones, each at its bar's tempo
    (120, then 60 BPM from bar 2): 0.25, 0.25, 0.5 s. A step slowed in
    brackets keeps its mini-notation meaning, and a note length out of
    range at some tempo of the song names its place in the pattern or the
    tempo's line."""
    text = ECHO.format(time="0.9").replace("length 3", "length 4") + 'pattern d.time "<1/8 1/16>"\n'
    played = render(registry, text, blocksize=64)
    bars = np.array([0, 2 * SR, 6 * SR, 10 * SR])
    assert np.abs(echoes(played) - (bars + [SR // 4, SR // 4, SR // 2, SR // 4])).max() <= 2
    other = render(registry, text, blocksize=1000)
    np.testing.assert_array_equal(played[:len(other)], other[:len(played)])
    slowed = render(registry, ECHO.format(time="0.9") + 'pattern d.time "[0.1]/2"\n')
    assert np.abs(echoes(slowed) - (np.array([0, 2 * SR, 6 * SR]) + [SR // 10, SR // 10, SR // 10])).max() <= 2
    for pattern, tempo, said in [('"0.1 <0.2 [2/1]>"', "", "11:27: pattern value 2/1 is 4 s at 120 BPM"),
                                 ('"1/2"', "at 3 tempo 50\n", "12:6: pattern value 1/2 is 2.4 s at 50 BPM"),
                                 ('"1/1*2"', "tempo 100\n", "11:17: pattern value 1/1 is 2.4 s at 100 BPM")]:
        song = ECHO.format(time="0.9") + f"pattern d.time {pattern}\n" + tempo
        with pytest.raises(SynthError) as info:
            Song(registry, song, "s.seq")
        assert str(info.value).startswith(f"s.seq:{said}"), str(info.value)
        assert str(info.value).endswith("out of range (0.001..2 s) for d.time")


def test_a_parameters_pattern_starts_on_its_first_value_not_gliding_from_the_adds(registry):
    """`level=1` under "0.1 0.1": the first step was a set on sample 0,
    which glided over 5 ms from the add's 1, so the song began three times
    too loud (the song-writer audit). A later step still glides."""
    text = ("tempo 120\nlength 2\nadd vco o wave=sine freq=1000\nadd vca a level=1\nconnect o a\nconnect a out\n"
            'pattern a.level "0.1 <0.1 0.2>"\n')
    played = render(registry, text)
    assert np.abs(played[:SR]).max() < 0.1 * 1.001, np.abs(played[:240]).max()
    assert abs(np.abs(played[int(3.5 * SR):4 * SR]).max() - 0.2) < 0.002          # bar 2's second step
    rise = np.abs(played[3 * SR:3 * SR + 240])                                   # glides to it over 5 ms
    assert rise[:48].max() < 0.12 and rise[-48:].max() > 0.19
    # Only the engine starts there: the song's patch keeps the add's value, which a new
    # version's is compared with at a swap (that set the add's 1 at the next bar).
    held = text.replace('"0.1 <0.1 0.2>"', '"<0.1 ~> 0.5"')
    with Engine(registry, SR, 256, executor="inline") as engine:
        performance = Performance(engine, Song(registry, held))
        blocks = [performance.next_block()[0].copy() for _ in range(10)]
        performance.sequencer.replace(Song(registry, held.replace("freq=1000", "freq=1001")))
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    played = np.concatenate(blocks)
    assert abs(np.abs(played[int(2.1 * SR):3 * SR]).max() - 0.5) < 0.01          # bar 2's rest holds 0.5


def test_an_at_that_leaves_a_gate_with_no_cable_is_warned_of_for_its_drone(registry, tmp_path):
    """`at 2 remove kb` takes the keys' gate cable away: an adsr's gate
    reads high unconnected, so the envelope sustains the vco's C4 to the
    tail's limit (the song-writer audit). No error, but check and render
    say so, with the way a part is ended instead."""
    voice = ("tempo 120\nlength 4\nadd keys kb voices=1\nadd vco o wave=sine\nadd adsr env attack=0.001 "
             "decay=0.001 sustain=1 release=0.001\nadd vca a level=0.3\nconnect kb.voct o.voct\n"
             "connect kb.gate env.gate\nconnect o a\nconnect env a.gain\nconnect a out\npattern kb \"g4\" legato=1\n")
    path = tmp_path / "s.seq"
    for ending, warned, drone in (("at 2 remove kb\n", "`remove kb`", 261.63),                 # the vco's own C4
                                  ("at 2 disconnect kb.gate env.gate\n", "`disconnect kb.gate env.gate`", 392.0),
                                  ('at 2 pattern kb "~"\n', None, None),
                                  ("at 2 disconnect kb.gate env.gate\nat 2 connect kb.gate env.gate\n", None, 392.0)):
        path.write_text(voice + ending)
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)], capture_output=True, text=True)
        expected = (f"warning: {path}:13: {warned} leaves env.gate with no cable: unconnected it reads high, so the "
                    f"envelope attacks once and sustains; to end a part, give its pattern rests (\"~\") instead\n"
                    if warned else "")
        assert done.returncode == 0 and done.stderr == expected, done.stderr
        played = render(registry, voice + ending)
        late = played[3 * SR:int(3.5 * SR)]                     # bar 2 on: the drone, or the rest's silence
        assert (abs(peak_frequency(late) - drone) < 2) if drone else np.abs(late).max() < 1e-4


def test_a_pattern_ends_with_its_module_removed_further_down_the_file(registry, tmp_path):
    """As `at 4 remove d` ends the patterns on d, so does a `remove` after
    them at the top of the file: a module of another type that takes the
    name gets none of them (the song used to fail to play, naming no
    place). `check` and `render` say so: it is seldom what was meant.
    Nor does a pattern ended in the bar it begins."""
    text = ("tempo 120\nlength 1\nadd delay d\npattern d.time \"1/8 0.3\"\nremove d\nadd vca d level=0.5\n"
            "add vco o wave=sine freq=300\nconnect o d\nconnect d out\n")
    song = Song(registry, text)
    assert song.voices == {} and [(line, str(command)) for line, command in song.ended] == [(4, "remove d")]
    path = tmp_path / "s.seq"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == (f"warning: {path}:4: this pattern never plays: `remove d` of "
                                                    f"line 5 takes its target away\n"), done.stderr
    played = render(registry, text)
    assert abs(np.abs(played[SR // 2:SR]).max() - 0.5) < 0.01 and abs(peak_frequency(played[:SR]) - 300) < 2
    # Within a bar too: one ended in the bar it begins never plays; one that played bars before did.
    timed = ("tempo 120\nlength 4\nadd keys kb\nadd vco o\nconnect kb.voct o.voct\nconnect o out\n"
             'at 2 pattern kb "c3*2"\nat 2 remove kb\nat 2 add keys kb\nat 3 pattern kb "e3"\nat 4 remove kb\n')
    assert [(line, str(command)) for line, command in Song(registry, timed).ended] == [(7, "remove kb")]


def test_a_note_length_set_at_a_bar_and_a_new_version_of_the_song_keep_that_bars_tempo(registry):
    """`at 3 set d.time 1/16` is a sixteenth at bar 3's 60 BPM, 0.25 s; a
    new version of the song taken over at bar 3 works its values out at
    the tempo bar 2 set, so the same song swapped in changes nothing."""
    text = ECHO.format(time="1/8").replace("length 3", "length 4") + "at 3 set d.time 1/16\n"
    plain = render(registry, text)
    bars = np.array([0, 2 * SR, 6 * SR, 10 * SR])
    assert np.abs(echoes(plain) - (bars + [SR // 4, SR // 2, SR // 4, SR // 4])).max() <= 2
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy() for _ in range(6 * SR // 256 - 10)]   # bar 3 is next
        performance.sequencer.replace(Song(registry, text))
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
        assert performance.sequencer.swapped_at == 2   # from 0: bar 3
    np.testing.assert_array_equal(np.concatenate(blocks)[:performance.length], plain)


def test_a_song_started_at_a_bar_plays_that_bar_as_the_whole_song_does(registry):
    """`--from 3`: bar 3 on sample 0, at the tempo `at 2` set, with the
    patch and patterns as they stand there (`at 2`'s) and bar 3's own `set`; the gates are the
    whole song's from bar 3 on, to the sample, and a pattern's `<...>`
    counts cycles from the song's first bar, so bar 3 plays its third."""
    text = ("tempo 120\nlength 4\n" + GATE + 'pattern kb "c4*8" legato=0.5\nat 2 tempo 60\n'
            'at 2 pattern kb "c4*4" legato=0.5\nat 3 set v.level 0.25\n')
    whole = render(registry, text)
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text), start=2)
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    part = np.concatenate(blocks)
    bar3 = 6 * SR                                                 # 2 s of bar 1, 4 s of bar 2 at 60 BPM
    assert len(part) == pytest.approx(len(whole) - bar3, abs=256)
    fade = SR // 100                                              # the start's fade-in
    np.testing.assert_array_equal(part[fade:8 * SR], whole[bar3 + fade:bar3 + 8 * SR])
    assert list(rising_edges(part)[:4]) == [SR, 2 * SR, 3 * SR, 4 * SR]   # quarters at 60 BPM
    melody = ("tempo 120\nlength 4\nadd keys kb voices=1\nadd vco o wave=sine\nconnect kb.voct o.voct\n"
              'connect o out\npattern kb "<c4 e4 g4 a4>"\n')
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, melody), start=2)
        first = np.concatenate([performance.next_block()[0].copy() for _ in range(SR // 256)])
    assert peak_frequency(first[2000:]) == pytest.approx(392.0, rel=2e-3)   # g4, bar 3's


def test_a_tempo_that_takes_a_note_length_out_of_range_names_its_line(registry):
    with pytest.raises(SynthError) as info:
        Song(registry, ECHO.format(time="1/2").replace("at 2 tempo 60", "at 2 tempo 50"), "s.seq")
    assert str(info.value) == "s.seq:10:6: d.time=1/2 is 2.4 s at 50 BPM, out of range (0.001..2 s)"
    with pytest.raises(SynthError) as info:    # the song's own tempo, given after the module
        Song(registry, ECHO.format(time="1/2") + "tempo 40\n", "s.seq")
    assert str(info.value).startswith("s.seq:11:1: d.time=1/2 is 3 s at 40 BPM")


@pytest.mark.parametrize("time, then", [("1/2", "at 2 set d.time 0.1"),
                                        ("0.9", 'pattern d.time "1/2"\nat 2 pattern d.time "0.1"')])
def test_a_length_a_tempo_takes_out_of_range_is_judged_after_its_bars_other_lines(registry, time, then):
    """Both hold from the bar's first sample, so `at 2 tempo 50` and then
    `at 2 set d.time 0.1` never play the half note at 50 BPM: the tempo's
    line was refused, and the same two lines the other way round loaded."""
    text = ECHO.format(time=time).replace("at 2 tempo 60", "at 2 tempo 50")
    tempo_first = render(registry, text + then + "\n")
    bars = np.array([0, int(6.8 * SR)])                    # bars 1 and 3: 2 s at 120 BPM, 4.8 s at 50
    heard = echoes(tempo_first)
    assert len(heard) == 3 and np.abs(heard[[0, 2]] - (bars + [SR, SR // 10])).max() <= 2   # 1/2 at 120; 0.1 s
    tempo_last = render(registry, text.replace("at 2 tempo 50\n", "") + then + "\nat 2 tempo 50\n")
    np.testing.assert_array_equal(tempo_first, tempo_last)


def test_tempo_and_meter_changes_are_exact(registry):
    text = "tempo 120\nmeter 3/4\nlength 3\n" + GATE + 'pattern kb "c4"\nat 2 tempo 60\nat 3 meter 4/4\n'
    onsets = rising_edges(render(registry, text))
    # bar 1: 3 quarters at 120 = 1.5 s; bar 2: 3 quarters at 60 = 3 s; bar 3 starts at 4.5 s
    assert np.abs(onsets - [int(1.5 * SR), int(4.5 * SR)]).max() <= 1


def test_bars_written_as_decimals_count_as_whole_bars(registry):
    whole = "tempo 120\nmeter 3/4\nlength 3\n" + GATE + 'pattern kb "c4"\nat 2 tempo 60\n'
    decimal = whole.replace("length 3", "length 3.0").replace("at 2 ", "at 2.0 ")
    assert np.array_equal(render(registry, decimal), render(registry, whole))
    assert np.abs(rising_edges(render(registry, decimal)) - [int(1.5 * SR), int(4.5 * SR)]).max() <= 1


def test_quarter_notes_count_the_song_whatever_the_tempo(registry):
    """What a shared beat clock (Ableton Link) counts: meter, not tempo."""
    from fractions import Fraction
    song = Song(registry, "tempo 120\nmeter 3/4\nlength 4\n" + GATE + 'pattern kb "c4"\nat 2 tempo 60\n'
                "at 3 meter 6/8\n")
    assert [song.quarters_at(bar) for bar in range(4)] == [0, 3, 6, 9]   # 6/8 is 3 quarters too
    assert song.quarters_at(1, Fraction(1, 3)) == 4
    assert song.quarters_at(1, Fraction(5, 3)) == 8     # past the bar: on into the next ones


def test_parameter_patterns_change_on_their_sample(registry):
    text = "tempo 120\nlength 1\n" + GATE + 'pattern kb "c4" legato=1\npattern v.level "0.1 0.2 0.3 0.4"\n'
    out = render(registry, text, blocksize=1000)
    quarter = SR // 2
    for k, level in enumerate((0.1, 0.2, 0.3, 0.4)):
        assert out[k * quarter + quarter // 2] == pytest.approx(level)
        if k:   # the glide to the new value starts on the quarter's first sample, not before
            assert out[k * quarter - 1] == pytest.approx(level - 0.1)
            assert out[k * quarter] != pytest.approx(level - 0.1)


def test_a_choice_pattern_names_its_choices_and_switches_on_its_sample(registry):
    """sh holds what it took at the trig's rise (0 here, on the ramp's
    first sample) until `track` makes it follow its input, from the step's
    own sample (48000, inside a block of 256) and not the block's start."""
    text = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd lfo ramp wave=saw freq=0.25 amp=0.5\n"
            "add sh h\nconnect ramp h.in\nconnect kb.gate h.trig\nconnect h out\n"
            'pattern kb "c4" legato=1\npattern h.mode "sample track"\n')
    out = render(registry, text, blocksize=256)
    moving = np.flatnonzero(out != out[0])
    assert moving[0] == SR and out[SR - 1] == out[0]
    assert np.all(np.diff(out[SR + 10:2 * SR - 10]) > 0)                 # the ramp, followed


def test_timbre_patterns_sound_the_same_whatever_the_block_size(registry):
    """Sixteenths at 100 BPM (7200 samples) start blocks of 48 and fall
    inside blocks of 256, so a wave, a filter mode or a drive shape
    switched once a block would switch later with 256; on their samples
    the two renders agree to the bit (up to the last, partial block). Each
    step leaves the vco room for its 16-sample crossfade in the block;
    one without it would wait for the next block."""
    text = ("tempo 100\nlength 1\nadd vco o freq=110\nadd vcf f cutoff=900 res=0.4\nadd drive d drive=0.4\n"
            "connect o f\nconnect f d\nconnect d out\n"
            'pattern o.wave "saw square triangle pulse sine saw square saw"\n'
            'pattern f.mode "lowpass bandpass highpass notch"\npattern d.shape "soft hard fold hard"\n')
    assert np.abs(same_at_two_block_sizes(registry, text, 256)).max() > 0.1


def same_at_two_block_sizes(registry, text, big, small=48):
    """The song rendered in blocks of ``big`` samples, once checked to be
    bit for bit what blocks of ``small`` render, to its last sample."""
    one, other = render(registry, text, blocksize=big), render(registry, text, blocksize=small)
    np.testing.assert_array_equal(one, other)
    return one


TAIL = ("tempo 120\nlength 1\nadd keys kb\nadd vco o wave=saw freq=220\nadd adsr e release=0.3\n"
        "add vca a\nadd reverb r size=0.3\nconnect kb.voct o.voct\nconnect kb.gate e.gate\n"
        "connect o a\nconnect e a.gain\nconnect a r\nconnect r out\npattern kb \"c4 e4 g4 c5\" legato=0.9\n")


#: A click at the end of the bar, echoed 0.4 s later: a gap in the tail
#: longer than its quarter second of silence.
GAP = ("tempo 120\nlength 1\nadd keys kb\nadd vco o wave=sine freq=440\n"
       "add adsr e attack=0.001 decay=0.001 sustain=1 release=0.001\nadd vca a\n"
       "add delay d time=0.4 feedback=0.3 mix=0.5\nconnect kb.voct o.voct\nconnect kb.gate e.gate\n"
       "connect o a\nconnect e a.gain\nconnect a d\nconnect d out\npattern kb \"~ ~ ~ c4\" legato=0.05\n")


def test_a_duration_that_ends_in_the_block_of_the_tails_end_ends_the_piece_there(registry):
    """`--duration` 107900 samples, the silent tail's end at 108000, both
    in one block of 4096: the piece is 107900 long, as the recorder and
    render_song cut it (they took the tail's end, a hundred samples on)."""
    with Engine(registry, SR, 4096) as engine:
        performance = Performance(engine, Song(registry, "tempo 120\nlength 1\nadd vco o\n"), frames=107900)
        while not performance.over:
            performance.next_block()
    assert performance.length == 107900


def test_a_song_ends_on_the_same_sample_at_any_block_size(registry, tmp_path):
    """Its tail ends a quarter of a second after its last sample above
    -80 dB, counted to the sample: it ended at the end of the block that
    saw it, so the file's length moved by up to a block with -b (the
    audit: 1669120, 1668928 and 1668863 samples of demo.seq at 256, 64
    and 7). Where the tail falls silent for a quarter second before an
    echo, it ends there, however large the block that holds both.
    `synth render` writes what the engine plays, to that sample."""
    lengths = {size: len(render(registry, TAIL, blocksize=size)) for size in (256, 64, 7, 4096)}
    assert len(set(lengths.values())) == 1, lengths
    gap = {size: render(registry, GAP, blocksize=size) for size in (256, 7, 4096, 8192)}
    assert len({len(out) for out in gap.values()}) == 1 and len(gap[256]) < 2.4 * SR, {s: len(o) for s, o in gap.items()}
    song = tmp_path / "tail.seq"
    song.write_text(TAIL)
    files = []
    for size in (256, 7):
        out = tmp_path / f"tail{size}.wav"
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(out), "-b",
                               str(size), "--quiet"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        files.append(out.read_bytes())
    assert files[0] == files[1]
    import soundfile
    data, _ = soundfile.read(str(tmp_path / "tail7.wav"))
    assert len(data) == lengths[256] and np.abs(data[-12000:]).max() <= 1e-4 < np.abs(data[-12001]).max()


def test_number_patterns_sound_the_same_whatever_the_block_size(registry):
    """32nds at 100 BPM (3600 samples): blocks of 4096 hold two steps of a
    pattern, where the first was lost and the second glided to the block's
    end; each now glides over 5 ms from its own sample, as with blocks of
    48, and the two renders agree to the bit."""
    text = ("tempo 100\nlength 1\nadd vco o freq=110\nadd vcf f res=0.4\nadd vca a\n"
            "connect o f\nconnect f a\nconnect a out\n"
            'pattern f.cutoff "[400 1600 800 3200]*8"\npattern a.level "[0.2 0.9 0.5 0.7]*8"\n')
    assert np.abs(same_at_two_block_sizes(registry, text, 4096)).max() > 0.1


def test_the_drums_tone_is_read_as_each_drum_is_struck(registry):
    """A pattern stepping the tone with the hits gives each hit its own
    pitch, on any block size (it was read at each block's start, so the
    step landed at the first block after the hit); a tom still ringing
    when the tone steps without a hit keeps its pitch."""
    text = ("tempo 120\nlength 1\nadd drums d decay=4\nconnect d out\n"
            'pattern d "45 ~ 45 ~"\npattern d.tone "1 2 1.5 0.5"\n')
    big = same_at_two_block_sizes(registry, text, 4096)
    quarter = SR // 2
    hz = [peak_frequency(big[k * quarter + 4800:(k + 1) * quarter]) for k in range(4)]
    assert hz[2] == pytest.approx(1.5 * hz[0], rel=0.02)          # each hit at its own tone
    assert hz[1] == pytest.approx(102, rel=0.03) and hz[3] == pytest.approx(153, rel=0.03), hz   # tails kept


def test_the_pluck_s_tone_is_read_as_each_string_is_plucked(registry):
    """A pattern stepping the tone with the notes plucks each with its own
    burst: as loud and as bright as a pluck at that tone. Gliding, a
    bright pluck after a dark one took the dark burst's level (2.8 times
    too loud, RMS), and each burst's lowpass started where the last one's
    had left off. Each note is now what a song at its tone plays, on any block
    size (the strings die away between notes)."""
    song = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd pluck p decay=0.05 tone={tone}\n"
            "connect kb.voct p.voct\nconnect kb.gate p.gate\nconnect p out\n"
            'pattern kb "a3*4" legato=0.5\n{pattern}')
    tones = (0, 1, 0.2, 0.9)
    heard = same_at_two_block_sizes(registry, song.format(tone=0.5, pattern='pattern p.tone "0 1 0.2 0.9"\n'), 4096)
    quarter = SR // 2
    for k, tone in enumerate(tones):
        alone = render(registry, song.format(tone=tone, pattern=""))
        note = slice(k * quarter, (k + 1) * quarter)
        error = np.abs(heard[note] - alone[note]).max() / np.abs(alone[note]).max()
        assert error < 1e-6, (k, error)     # what is left of the last note


def test_a_new_noise_seed_restarts_the_sequence_on_its_sample(registry):
    """A pattern on `seed` restarts the noise on its step's very sample, on
    any block size: it was read at each block's start, so in blocks of
    4096 a step came up to 85 ms late."""
    text = "tempo 120\nlength 1\nadd noise n color=pink\nconnect n out\n" 'pattern n.seed "1 2 1 3"\n'
    x = same_at_two_block_sizes(registry, text, 4096)
    quarter, faded = SR // 2, SR // 100     # past the render's fade-in
    first = x[faded:quarter]
    np.testing.assert_array_equal(x[2 * quarter + faded:3 * quarter], first)
    assert not np.array_equal(x[quarter + faded:2 * quarter], first)
    assert not np.array_equal(x[3 * quarter + faded:4 * quarter], first)


def test_at_set_starts_on_the_bars_first_sample(registry):
    text = "tempo 120\nlength 2\n" + GATE + 'pattern kb "c4" legato=1\nat 2 set v.level 0.25\n'
    out = render(registry, text, blocksize=1000)
    bar = 2 * SR
    assert out[bar - 1] == pytest.approx(0.5) and out[bar] < 0.5
    assert out[bar + SR // 2] == pytest.approx(0.25)


def test_legato_notes_retrigger(registry):
    out = render(registry, "tempo 120\nlength 1\n" + GATE + 'pattern kb "c4 c4 e4 e4" legato=1\n')
    onsets = rising_edges(out)
    assert list(onsets) == [SR // 2, SR, 3 * SR // 2]
    assert all(out[t - 1] == 0 for t in onsets)    # one low sample before each


@pytest.mark.parametrize("length, pattern, end", [
    (2, '"c4" legato=1.5', 5.0),          # bar 2's note (2-5 s) outlives bar 1's (0-3 s)
    (1, '"c4 c4" legato=1.5', 2.5),       # within a bar: 0-1.5 s, then 1-2.5 s
    (2, '"c4" legato=5', 12.0),
])
def test_a_key_struck_again_while_it_sounds_is_held_by_the_later_note(registry, length, pattern, end):
    """The earlier note's off once released the voice the later note had
    retriggered, so the later note was cut short."""
    out = render(registry, f"tempo 120\nlength {length}\n" + GATE + f"pattern kb {pattern}\n")
    high = np.flatnonzero(out > 0)
    assert high[-1] + 1 == int(end * SR)
    assert out[int(0.1 * SR):int((end - 0.01) * SR)].min() == 0.0    # the retrigger's one low sample...
    assert np.count_nonzero(out[int(0.1 * SR):int((end - 0.01) * SR)] == 0) == 1   # ...and no other


def test_a_key_struck_again_by_another_layer_at_legato_1_sounds_to_its_own_end(registry):
    """Only notes held past their step (legato over 1) were kept to be
    held by a later one: at legato 1 the first c4 (0-1 s) ended the
    second (0.5-1.5 s) at 1 s, and a sine on it fell silent there."""
    text = ("tempo 120\nlength 1\nadd keys kb voices=2\nadd vco o wave=sine\nadd vca a level=0.2\n"
            "connect kb.voct o.voct\nconnect kb.gate a.gain\nconnect o a\nconnect a out\n"
            'pattern kb "c4@2 ~ ~, ~ c4@2 ~"\n')
    out = render(registry, text)
    windows = out[:int(1.5 * SR)].reshape(-1, SR // 20)   # 50 ms each, to the second note's end
    assert min(rms(window) for window in windows[1:]) > 0.1     # past the fade-in, sound throughout
    assert peak_frequency(out[SR:int(1.45 * SR)], SR) == pytest.approx(261.6, abs=3)   # the c4 after 1 s
    assert rms(out[int(1.5 * SR) + SR // 20:int(1.6 * SR)]) < 1e-3                      # and it ends at 1.5 s


SINE_INTO_A = "tempo 120\nlength 4\nadd vco o wave=sine freq=440\nadd vca a level=0.5\nconnect o a\nconnect a out\n"


@pytest.mark.parametrize("then", ["at 4 remove a", "at 4 remove a\nat 4 add vco a"])
def test_a_parameter_pattern_ends_with_its_module(registry, then):
    """It drove a module that a later bar removed (or replaced with one
    without that parameter): `synth check` passed the song, and the
    engine stopped at that bar with 'unknown module'."""
    text = SINE_INTO_A + 'at 3 pattern a.level "0 1 0.25"\n' + then + "\n"
    Song(registry, text)                        # what `synth check` runs
    out = render(registry, text)
    bar = 2 * SR
    assert len(out) >= 4 * bar
    assert np.abs(out[:2 * bar]).max() == pytest.approx(0.5, abs=0.01)          # level 0.5 until bar 3
    assert np.abs(out[2 * bar + SR // 2:2 * bar + SR]).max() > 0.9                # the pattern's 1
    assert not out[3 * bar + 256:].any()                                          # a is gone


def test_a_parameter_pattern_is_range_checked_however_late_a_value_comes(registry):
    """Only its first 64 cycles were checked: a value in cycle 65 played."""
    late = "<" + "0.5 " * 64 + "-50>"
    with pytest.raises(SynthError, match=r"pattern value -50 is out of range for a.level"):
        Song(registry, SINE_INTO_A + f'pattern a.level "{late}"\n')
    with pytest.raises(SynthError, match=r"pattern value 99999999 is out of range"):   # as typed, not 1e+08
        Song(registry, SINE_INTO_A + 'pattern a.level "0.5 99999999"\n')


def test_the_same_song_renders_bit_identically_on_every_executor(registry):
    text = (ROOT / "songs" / "demo.seq").read_text().replace("length 16", "length 2")
    digests = {hashlib.sha256(render(registry, text, executor=ex, workers=w).tobytes()).hexdigest()
               for ex, w in (("inline", None), ("processes", 1), ("processes", 2))}
    assert len(digests) == 1


def test_random_drops_and_slow_steps_play_the_same_at_every_render(registry):
    """`?` decides from each note's time, not from a generator's state:
    two renders, and a render beside the pattern's own events, agree."""
    text = "tempo 120\nlength 4\n" + GATE + 'pattern kb "c4*16? [c4 c4]/2" legato=0.5\n'
    out = render(registry, text)
    np.testing.assert_array_equal(out, render(registry, text))
    bar = SR * 2
    expected = [round(bar * (cycle + event.start)) for cycle in range(4)
                for event in parse_pattern("c4*16? [c4 c4]/2").events(cycle)]
    onsets = rising_edges(out)
    expected = [at for at in expected if at > 0]   # a note on sample 0 has no edge before it
    assert len(onsets) == len(expected) and 20 < len(expected) < 44   # about half of 64, and 4 slow ones
    assert np.abs(onsets - expected).max() <= 1


@pytest.mark.parametrize("text, place, words", [
    ('length 1\nadd keys kb\npattern kb "c3 [e3"\n', "3:16", "unbalanced '['"),
    ('length 1\nadd keys kb\npattern kb "c3 h3"\n', "3:16", "unknown note 'h3'"),
    ('length 1\nadd keys kb\npattern kb "c4 e4(a,8)"\n', "3:19", "the '(k,n,r)' opened at column 18, got 'a'"),
    ('length 1\nadd vco o\npattern o "c3"\n', "3:9", "does not take notes"),
    ('length 1\nadd vca a\npattern a.level "1 c3"\n', "3:20", "'c3' is a note name, but this pattern "
                                                              "takes numbers"),
    ('length 1\nadd vcf f\npattern f.cutoff "c4 c0"\n', "3:22", "pattern value c0 (16.3516 Hz) is out of range "
                                                                "for f.cutoff (20..20000 Hz)"),
    ('length 1\nadd vco o\npattern o.freq "a4 h4"\n', "3:20", "expected a number or a note name, got 'h4'"),
    ('length 1\nadd vco o\npattern o.freq "50000"\n', "3:17", "out of range"),
    ('length 1\nadd vco o\npattern o.freq "100 [200 50000]"\n', "3:26", "50000 is out of range"),
    ('length 1\nadd keys kb\npattern kb "c3" swng=0.6\n', "3:17", "got 'swng=0.6', did you mean 'swing'?"),
    ('length 1\nadd keys kb\npattern kb "c3" swing=0.8\n', "3:23", "swing from 0.5 to 0.75, got '0.8'"),
    ('length 1\nadd keys kb\npattern kb "c3" swingunit=4\n', "3:27", "swingunit=8 (off-beat 8ths swing) or"),
    ("tempo fast\n", "1:7", "beats per minute"),
    ("tempo 0\n", "1:7", "beats per minute"),
    ('add keys kb\npattern kb "c3"\n', "2:1", "no `length`"),
    ('add keys kb\n\nat 2 set kb.voices 2\n', "3:1", "no `length`"),
    ('length 4\nadd keys kb\nat 3 set kb.nope 1\n', "3:13", "no parameter 'nope'"),
    ('length 4\nadd keys kb\nat 3 remove kb\nat 4 pattern kb "c3"\n', "4:14", "unknown module 'kb'"),
    ('length 1\nadd keys kb\npattern kb.voices "1 4"\n', "3:12", "shapes the module and cannot follow a pattern"),
    ('length 1\nadd drums d\npattern d.voices "2"\n', "3:11", "cannot follow a pattern"),
    ('length 4\nadd keys kb\nadd lfo l\nat 2 connect l kb.voices\n', "4:19", "'kb.voices' shapes the module and "
                                                                         "cannot follow a cable"),
    ('length 1\nadd keys kb\npattern kb "c3" legato=0.5 legato=0.6\n', "3:28", "'legato' given twice"),
    ('length 1\nadd noise n\npattern n.seed "1 2.5"\n', "3:19", "2.5 is not a whole number"),
    ('length 1\nadd keys kb\npattern kb "0 2" scale=a3:minr\n', "3:27", "unknown scale 'minr', did you mean 'minor'?"),
    ('length 1\nadd keys kb\npattern kb "0 2" scale=minor\n', "3:24", "a scale as ROOT:NAME, like c3:minor"),
    ('length 1\nadd keys kb\npattern kb "0 2" scale=h3:minor\n', "3:24", "unknown note 'h3'"),
    ('length 1\nadd keys kb\npattern kb "0 e3" scale=a3:minor\n', "3:15", "'e3' is a note name, but this pattern "
                                                                      "plays degrees of its scale"),
    ('length 1\nadd keys kb\npattern kb "0 [2 1.5]" scale=a3:minor\n', "3:18", "degree '1.5' is not a whole"),
    ('length 1\nadd keys kb\npattern kb "0 90" scale=a3:minor\n', "3:15", "degree 90 lands outside MIDI 0-127"),
    ('length 1\nadd lfo l\npattern l.freq "1 2" scale=c3:major\n', "3:22", "'l.freq' takes values"),
    ('length 1\nadd vco o\npattern o.wave "saw triangel"\n', "3:21", "expected sine, saw, square, triangle or "
                                                                     "pulse, got 'triangel', did you mean 'triangle'?"),
    ('length 1\nadd vco o\npattern o.wave "saw 2"\n', "3:21", "got '2'"),
    ('length 1\nadd vco o\npattern o.wav "saw"\n', "3:11", "'o.wav' is not a parameter of vco, did you mean 'wave'?"),
])
def test_song_errors_name_file_line_and_column(tmp_path, text, place, words):
    song = tmp_path / "bad.seq"
    song.write_text(text)
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 2
    assert f"bad.seq:{place}: " in done.stderr and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("data, place", [
    ("length 1\nadd vco o\nconnect o out  # café\n".encode("latin-1"), "3:21"),
    (b"\xef\xbb\xbflength 1 # \xff\n", "1:12"),   # a byte-order mark is no column
    (b"length 1\nadd vco o\x00\n", "2:10"),   # valid UTF-8, but no text holds a NUL
    (b"length 1\n\x00\xff\n", "2:1"),   # the first of two bad bytes
    (b"length 1\n\xff\x00\n", "2:1"),
])
def test_a_file_that_is_not_utf8_is_refused_at_the_bad_byte(tmp_path, data, place):
    song = tmp_path / "bad.seq"
    song.write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {song}:{place}: not a text file: byte 0x"), done.stderr


def test_byte_order_marks_before_the_text_are_not_part_of_it(tmp_path):
    """Two files joined, or an editor that adds its mark to a file that had
    one, give two marks: the first command was "unknown command 'tempo'",
    the mark before it unseen in the error."""
    song = tmp_path / "marked.seq"
    song.write_bytes(b"\xef\xbb\xbf" * 2 + b"tempo 90 # \xff\n")   # neither mark is a column
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {song}:1:12: not a text file"), done.stderr
    song.write_bytes(b"\xef\xbb\xbf" * 2 + b"tempo 90\nlength 1\nadd vco o\nconnect o out\n")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 0 and "1 bar at 90 BPM" in done.stdout, done.stderr


def test_a_file_too_large_for_a_song_is_refused_without_reading_it_all(tmp_path):
    """A wrong path (a recording, a disk image, /dev/zero, which never
    ends) is refused after MAX_SOURCE_BYTES, not read whole and parsed:
    50 MB of NULs took 5.7 s and 230 MB before, /dev/zero for ever."""
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", "/dev/zero"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "error: /dev/zero: not a patch or song file: it is over 16 MB\n"


def test_a_pattern_swapped_in_plays_the_cycle_of_its_bar(registry):
    """Cycles count from the song's start, as in Tidal (docs/song-language.md):
    an alternation swapped in at bar 3 plays its third step there."""
    x = render(registry, 'tempo 120\nlength 4\nadd keys kb voices=1\nadd vco o wave=sine\nconnect kb.voct o.voct\n'
                         'connect o out\npattern kb "c4"\nat 3 pattern kb "<c5 d5 e5>"\n')
    pitches = [peak_frequency(x[round((2 * bar + 0.2) * SR):round((2 * bar + 1.8) * SR)], SR) for bar in range(4)]
    assert np.allclose(pitches, [261.63, 261.63, 659.26, 523.25], atol=1.0), pitches


def test_check_and_render_warn_of_what_comes_after_the_last_bar(tmp_path):
    """`at 20` in a 4-bar song is no error (play goes on past the end
    under --watch and --osc), but a render never reaches it: a typo for
    `at 2`, most likely, so check and render say so, and still pass."""
    song = tmp_path / "late.seq"
    song.write_text("length 4\nadd keys kb\nat 4 set kb.voices 2\nat 20 set kb.voices 3\nat 5 add vco late\n"
                    "add vco osc\nconnect osc out\n")
    warnings = [
        f"warning: {song}:4: `at 20` comes after the last bar (4): it plays only when play goes on past the end "
        "(--watch, --osc)",
        f"warning: {song}:5: `at 5` comes after the last bar (4): it plays only when play goes on past the end "
        "(--watch, --osc)"]
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 0 and "late.seq: ok (" in done.stdout
    assert done.stderr.splitlines() == warnings
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(tmp_path / "x.wav")],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr.splitlines()[:-1] == warnings and done.stderr.splitlines()[-1].startswith("wrote ")


def test_check_and_render_warn_of_a_tempo_meter_or_length_given_twice(tmp_path, registry):
    """A second top-level `tempo` replaces the first for the whole song,
    from bar 1 (the song is declarative): one who wrote it further down
    most likely meant a change there, which `at BAR tempo N` makes. No
    error: the later one holds, and check and render say so."""
    text = ("tempo 120\nmeter 4/4\nlength 2\nadd keys kb voices=1\nadd vco o\nconnect kb.voct o.voct\nconnect o out\n"
            'pattern kb "c4"\ntempo 90\nmeter 3/4\nlength 3\nat 2 tempo 100\n')
    song = tmp_path / "twice.seq"
    song.write_text(text)
    warnings = [
        f"warning: {song}:9: `tempo 90` replaces `tempo 120` of line 1 for the whole song; to change it from a bar "
        "on: `at BAR tempo 90`",
        f"warning: {song}:10: `meter 3/4` replaces `meter 4/4` of line 2 for the whole song; to change it from a "
        "bar on: `at BAR meter 3/4`",
        f"warning: {song}:11: `length 3` replaces `length 2` of line 3 for the whole song"]
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 0 and "3 bars at 90 BPM" in done.stdout, done.stdout
    assert done.stderr.splitlines() == warnings
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(song), "-o", str(tmp_path / "x.wav")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.splitlines()[:-1] == warnings, done.stderr
    assert Song(registry, text).changes == [(0, 90, (3, 4)), (1, 100, (3, 4))]
    assert not Song(registry, "tempo 120\nlength 3\nat 2 tempo 90\nat 3 tempo 80\n").restated


def test_check_warns_of_a_tempo_or_meter_given_twice_for_one_bar(tmp_path):
    """Two `at 2 tempo` lines: the later holds in bar 2 and the earlier is
    lost without a sound of its own, most likely a typo for another bar."""
    song = tmp_path / "twice.seq"
    song.write_text("tempo 120\nlength 4\nadd vco o\nconnect o out\nat 2 tempo 100\nat 3 tempo 100\n"
                    "at 2 tempo 140\nat 3 meter 3/4\nat 2 meter 3/4\n")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(song)], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        f"warning: {song}:7: `at 2 tempo 140` replaces `at 2 tempo 100` of line 5: a bar has one tempo"]


def test_what_a_song_loses_is_looked_for_in_its_first_notes_only(registry, monkeypatch):
    """A pattern with `?` repeats only every 65,536 bars, so each bar's
    notes are worked out afresh: 16,000 bars of "c4*1024?" held `check`
    and a one-second render for minutes (the song audit)."""
    from synthcli.sequencer import notation, song as song_module
    asked = []
    events = notation.Pattern.events
    monkeypatch.setattr(notation.Pattern, "events", lambda self, bar: asked.append(bar) or events(self, bar))
    song = Song(registry, 'tempo 120\nlength 16000\nadd keys kb voices=1\nconnect kb.gate out\n'
                          'pattern kb "c4*1024?"\n')
    song.lost()
    assert 0 < len(asked) <= song_module.LOST_STEPS // 1024 + 1   # 1024 steps a bar, half of them kept
    asked.clear()   # the steps `?` drops count too: 2,000 bars of this took 27 s (the docs audit)
    Song(registry, 'tempo 120\nlength 2000\nadd keys kb voices=16\nconnect kb.gate out\n'
                   'pattern kb "c4*1024?0.99"\n').lost()
    assert 0 < len(asked) <= song_module.LOST_STEPS // 1024 + 1
    crowded = Song(registry, 'tempo 120\nlength 2\nadd keys kb voices=2\nconnect kb.gate out\n'
                             'pattern kb "[c4,e4,g4]"\n')
    assert crowded.lost().crowded   # within the budget, found as before
    # A pattern that repeats is looked at once for each bar of its period, and an `at` set costs no
    # notes: 1,700 bars of 32 hats spent the budget, and the review's late warnings went unsaid.
    late = Song(registry, 'tempo 174\nlength 1700\nadd drums kit\nadd vcf f\nconnect kit f\nconnect f out\n'
                          'pattern kit "fs2*32"\npattern f.cutoff "400 800"\nat 1600 pattern kit "c1 fs2*31"\n'
                          'at 1650 set f.cutoff 3000\n').lost()
    assert [bar for *_, bar in late.no_drum] == [1599] and [bar for *_, bar in late.overridden] == [1649]


@pytest.mark.parametrize("pattern, legato, most", [
    ("[c3,e3,g3,b3]", 1, 4), ("c3 e3 g3 b3", 1, 1), ("c3 e3 g3 b3", 2, 2), ("c3 c3 c3 c3", 3, 1),
    ("[c3,e3] g3", 1.5, 3),
])
def test_the_notes_a_pattern_holds_at_once_are_counted_by_pitch(pattern, legato, most):
    """A key struck again keeps its voice; a note ending where the next
    begins frees its voice first (see Song.lost)."""
    from synthcli.sequencer.notation import parse_pattern
    from synthcli.sequencer.song import at_once
    assert at_once(parse_pattern(pattern, notes=True).events(0), Fraction(str(legato))) == most


def test_a_mono_source_and_a_source_with_voices_enough_are_no_crowd(registry):
    for voices, crowded in ((1, False), (3, True), (4, False)):
        song = Song(registry, f'tempo 120\nlength 1\nadd keys kb voices={voices}\nadd vco o\n'
                              f'connect kb.voct o.voct\nconnect o out\npattern kb "[c3,e3,g3,b3]"\n')
        assert bool(song.lost().crowded) == crowded


@pytest.mark.parametrize("pattern, crowded", [
    ('"<[c3,e3] [g3,b3]>" legato=2', [(4, 2, 1)]),   # bar 1's chord still sounds under bar 2's
    ('"<[c3,e3] [g3,b3]>" legato=1', []),
    ('"[c3,e3]" legato=4', []),                      # each bar strikes the keys that still sound
    ('"<c3 e3 g3 b3>" legato=2.5', [(3, 2, 2)]),      # c3 lasts into bar 3, under e3 and g3
])
def test_notes_held_over_the_bar_line_crowd_the_next_bars_notes(registry, pattern, crowded):
    """Only one bar's notes were counted: a chord held into the next
    bar's chord stole its voices there, and `check` said nothing."""
    song = Song(registry, f"tempo 120\nlength 4\nadd keys kb voices=2\nadd vco o\nconnect kb.voct o.voct\n"
                          f"connect o out\npattern kb {pattern}\n")
    assert [(most, have, bar) for _, most, have, bar in song.lost().crowded] == crowded


def test_demo_song_checks_and_renders(registry):
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", "songs/demo.seq"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "16 bars at 120 BPM" in done.stdout
    # Four of its bars, its `at` bars moved into them, so a render takes a
    # fraction of a second and still plays every change it makes.
    from test_repl import SHORT_DEMO
    out = render(registry, SHORT_DEMO)
    bars = out[:4 * 2 * SR]                          # 2 s a bar; then the echo's and the room's tail
    assert np.isfinite(out).all() and np.abs(out).max() < SOFT_CLIP_KNEE    # the master never has to squash it
    assert min(rms(tenth) for tenth in bars.reshape(-1, SR // 10)) > 0.01   # sound all through, no dropout
    assert rms(out[-SR // 10:]) < 1e-3                                       # and the tail dies away
    # Its `at 2 set padf.cutoff 1800` changes the sound from bar 2's first sample on, not one sooner.
    unset = SHORT_DEMO.replace("at 2 set padf.cutoff 1800\n", "")
    assert unset != SHORT_DEMO
    other = render(registry, unset)
    n = min(len(out), len(other))   # each tail ends on its own sample
    assert np.flatnonzero(out[:n] != other[:n])[0] == 2 * SR


LINES = st.sampled_from([
    "tempo 120", "tempo 0", "meter 3/4", "meter 5/3", "length 2", "length 0", "add keys kb", "add vco o",
    "connect kb.voct o.voct", "connect o out", 'pattern kb "c3 e3"', 'pattern kb "[c3,e3"', 'pattern o.freq "100 200"',
    "at 2 set o.freq 300", "at 1 remove o", 'at 2 pattern kb "<c3 e3>"', "at 2 tempo 90", "remove kb", "set o.wave 2",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=30)), max_size=8))
def test_any_song_text_loads_or_fails_cleanly(registry, lines):
    try:
        Song(registry, "\n".join(lines), "fuzz.seq")
    except SynthError as error:
        assert error.line is not None and "\n" not in str(error)


def test_a_stop_takes_back_the_notes_and_values_sent_for_later_in_the_bar(registry):
    """A bar's notes and pattern values go to the engine when the bar
    starts. A stop (the REPL's, a song restarted) released the notes
    sounding, but the bar's later notes played on, into a restarted song,
    or onto a voice that an undo brought back, never to be released."""
    text = ("tempo 120\nlength 2\nadd keys kb voices=1\nadd vca v level=0.5\nconnect kb.gate v\n"
            "connect v out.left\nadd vco o wave=sine\nconnect o out.right\n"
            'pattern kb "c4 e4 g4 a4" legato=0.5\npattern o.freq "100 200 300 400"\n')
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        for _ in range(110):    # 0.59 s into the first bar: e4 sounds, g4 and a4 are to come
            performance.next_block()
        performance.sequencer.release_notes()
        performance.sequencer = None
        left, right = np.concatenate([performance.next_block().copy() for _ in range(300)], axis=1)
    assert not left.any()                                # e4 released at the stop, g4 and a4 never come
    for start in (0.5, 1.0):                              # seconds after the stop: where 300 and 400 Hz were due
        window = right[int(start * SR):int((start + 0.3) * SR)]
        assert abs(peak_frequency(window) - 200.0) < 4.0


def test_a_reload_fades_out_removed_modules_and_keeps_the_others_running(registry):
    head = "tempo 120\nlength 4\nadd vco a wave=sine freq=300\nconnect a out.left\n"
    first = Song(registry, head + "add vco b wave=sine freq=200\nconnect b out.right\n")
    second = Song(registry, head)
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, first)
        blocks = [performance.next_block().copy() for _ in range(200)]
        performance.sequencer.replace(second)
        while not performance.over:
            blocks.append(performance.next_block().copy())
        swapped = performance.sequencer.swapped_at
    out = np.concatenate(blocks, axis=1)
    bar = swapped * 2 * SR                       # 2 s a bar
    right = out[1, bar - 2000:bar + 2000]
    slope = np.abs(np.diff(out[1, SR:2 * SR])).max()
    assert np.abs(np.diff(right)).max() <= slope * 1.01      # no click where b leaves
    assert np.abs(out[1, bar + 256:]).max() == 0.0           # silent after its one faded block
    with Engine(registry, SR, 256) as engine:                # a, untouched, never noticed
        performance = Performance(engine, Song(registry, head))
        alone = [performance.next_block()[0].copy() for _ in range(out.shape[1] // 256)]
    assert np.array_equal(out[0, :len(np.concatenate(alone))], np.concatenate(alone))


def test_a_reload_that_only_changes_values_glides_them_without_a_rebuild(registry):
    text = "tempo 120\nlength 4\n" + GATE + 'pattern kb "c4" legato=1\n'
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy() for _ in range(200)]
        schedule = engine.schedule
        performance.sequencer.replace(Song(registry, text.replace("level=0.5", "level=0.25")))
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
        assert engine.schedule is schedule                     # nothing was rebuilt
        bar = performance.sequencer.swapped_at * 2 * SR
    out = np.concatenate(blocks)
    assert out[bar - 2] == pytest.approx(0.5) and out[bar + 300] == pytest.approx(0.25)


def test_a_song_started_again_on_the_patch_that_plays_glides_its_values_without_a_rebuild(registry):
    """`play` again, or a MIDI clock's start: a rebuild has the live engine
    render 64 ms ahead first, which put the downbeat of a song following a
    clock 0.1 s behind the clock's. On the same modules and cables only the
    values glide, every one, also those a knob moved since, which the
    engine's patch does not know."""
    from synthcli.sequencer.song import Sequencer
    text = "tempo 120\nlength 4\n" + GATE + 'pattern kb "c4" legato=1\n'
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy() for _ in range(100)]
        schedule = engine.schedule
        engine.set("v", "level", 0.125)                        # a knob, live
        blocks += [performance.next_block()[0].copy() for _ in range(50)]
        performance.sequencer.release_notes()
        restart = engine.time
        performance.sequencer = Sequencer(Song(registry, text), engine, True, origin=restart)
        blocks += [performance.next_block()[0].copy() for _ in range(50)]
        assert engine.schedule is schedule                     # nothing was rebuilt
        performance.sequencer = Sequencer(Song(registry, text.replace("connect v out", "connect v out.left")),
                                          engine, True, origin=engine.time)
        assert engine.schedule is not schedule                 # another cable: rebuilt
    out = np.concatenate(blocks)
    assert out[restart - 2] == pytest.approx(0.125) and out[restart + 1000] == pytest.approx(0.5)


def test_a_live_set_outlasts_the_bars_that_edit_the_patch_and_a_new_version_sent_before_it(registry):
    """A knob turned while a song plays (Performance.set, as the live
    engine applies the REPL's and OSC's sets) is heard at once and kept: an
    ``at`` bar that adds a module reloads the patch, and a new version of
    the song written before the turn takes over later; neither glides the
    pitch back to the song's own."""
    text = ("tempo 120\nlength 4\nadd vco o wave=sine freq=220\nconnect o out\nset out.level 0.2\n"
            "at 2 add vco quiet wave=sine freq=1000\n")   # bar 2 (2 s on) loads a patch with another module
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy() for _ in range(94)]   # 0.5 s
        performance.set("o", "freq", 330.0)
        while engine.time < 3 * SR:                                         # bar 2 came at 2 s
            blocks.append(performance.next_block()[0].copy())
        performance.sequencer.replace(Song(registry, text.replace("tempo 120", "tempo 121")))
        performance.set("o", "freq", 440.0)                                 # after the new version was sent
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
        swapped = performance.sequencer.swapped_at
    out = np.concatenate(blocks)
    assert swapped == 2                                                     # bar 3 from 4 s: the new version
    for start, pitch in ((0.1, 220.0), (1.0, 330.0), (2.2, 330.0), (3.2, 440.0), (4.3, 440.0), (5.5, 440.0)):
        window = out[int(start * SR):int((start + 0.3) * SR)]
        assert abs(peak_frequency(window) - pitch) < 4.0, (start, peak_frequency(window))


def test_a_live_set_of_a_module_the_next_version_adds_is_made_with_it(registry):
    """Added while the song plays, a module comes with the song's next
    version at the next bar; a knob turned before then (OSC, MIDI CC, a
    typed set) was refused there as 'unknown module' and lost, while the
    REPL's patch and `save` had the value."""
    text = "tempo 120\nlength 4\nadd vco o wave=sine freq=220\nconnect o out.left\nset out.level 0.2\n"
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block().copy() for _ in range(94)]    # 0.5 s into bar 1
        performance.sequencer.replace(Song(registry, text + "add vco zz wave=sine freq=100\nconnect zz out.right\n"))
        performance.set("zz", "freq", 300.0)
        performance.set("zz", "freq", 330.0)                             # the last turn wins
        while not performance.over:
            blocks.append(performance.next_block().copy())
    right = np.concatenate(blocks, axis=1)[1]
    assert not right[:2 * SR].any()                                      # bar 2 makes it, at 2 s
    assert abs(peak_frequency(right[int(2.2 * SR):int(2.5 * SR)]) - 330.0) < 4.0


CHORD = ("tempo 120\nlength 2\nadd keys k voices=1\nadd vco o wave=sine\nconnect k.voct o.voct\n"
         "connect o out\nset out.level 0.2\npattern k \"[c3,e3,g3]\"\n")   # quiet: no soft clip, no intermodulation


def pitches(signal):
    """The notes sounding, from the FFT: every peak above a tenth of the loudest."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / SR)
    peaks = (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] > spectrum[2:]) & (spectrum[1:-1] > 0.1 * spectrum.max())
    return [round(f) for f in freqs[1:-1][peaks]]


def test_changing_the_voices_of_a_note_source_at_a_bar_rebuilds_it_there(registry):
    out = render(registry, CHORD + "at 2 set k.voices 3\n")
    assert pitches(out[SR // 4:7 * SR // 4]) == [196]                    # one voice: the chord's last note
    assert pitches(out[9 * SR // 4:15 * SR // 4]) == [131, 165, 196]     # three from bar 2 on


def test_a_reload_that_changes_the_voices_rebuilds_the_note_source(registry):
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, CHORD))
        blocks = [performance.next_block()[0].copy() for _ in range(100)]
        performance.sequencer.replace(Song(registry, CHORD.replace("voices=1", "voices=3")))
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
        bar = performance.sequencer.swapped_at * 2 * SR
    out = np.concatenate(blocks)
    assert pitches(out[bar + SR // 4:bar + 7 * SR // 4]) == [131, 165, 196]


def test_a_reload_with_a_new_tempo_keeps_the_bar_it_takes_over_in_place(registry):
    text = "tempo 120\nlength 8\n" + GATE + 'pattern kb "c4" legato=0.5\n'
    with Engine(registry, SR, 256) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy() for _ in range(200)]   # into bar 1 (0-based)
        performance.sequencer.replace(Song(registry, text.replace("tempo 120", "tempo 60")))
        for _ in range(2500):
            blocks.append(performance.next_block()[0].copy())
        swapped = performance.sequencer.swapped_at
    onsets = rising_edges(np.concatenate(blocks))
    at_120 = [b * 2 * SR for b in range(1, swapped)]                     # 2 s bars before the swap
    at_60 = [swapped * 2 * SR + k * 4 * SR for k in range(3)]            # then 4 s bars from where it was
    assert list(onsets[:len(at_120) + 3]) == at_120 + at_60


@pytest.mark.parametrize("extra, start, rebuilds", [
    ("", 0, False),                                              # the same patch: values glide
    ("at 1 set v.level 0.25\n", 0, False),                       # a value of its first bar glides too
    ("at 1 add vco o\nat 1 connect o v\n", 0, True),             # its first bar edits the patch
    ("at 3 add vco o\nat 3 connect o v\n", 2, True),             # the bar it starts at (--from 3) does
    ("at 3 add vco o\nat 3 connect o v\n", 0, False),            # a later bar: rendered ahead at its time
])
def test_the_live_engine_renders_ahead_of_a_song_start_that_rebuilds_and_of_no_other(registry, extra, start,
                                                                                       rebuilds):
    """A restart that rebuilds the schedule in its first block must come
    after 12 blocks rendered ahead, as any rebuild; one that only glides
    must not wait for them (its downbeat would be heard 64 ms late)."""
    from synthcli.audio.engine_process import LiveEngine
    from synthcli.sequencer.song import Sequencer
    text = "tempo 120\nlength 4\n" + GATE + 'pattern kb "c4" legato=1\n'
    live = LiveEngine(None, {"samplerate": SR})
    with Engine(registry, SR, 256) as engine:
        live.engine, live.performance = engine, Performance(engine, Song(registry, text))
        song = Song(registry, text + extra)
        command = ("song", song, True, start)
        assert live.rebuilds(command) is rebuilds
        assert live.rebuilds(("song", text + extra, True, start)) is False   # not made yet: render on
        assert live.rebuilds(("song", song, False)) is False                 # a new version: at its bar
        live.performance.sequencer.release_notes()
        schedule = engine.schedule
        live.performance.sequencer = Sequencer(song, engine, True, origin=engine.time, start=start)
        live.performance.next_block()
        assert (engine.schedule is not schedule) is rebuilds
    os.close(live.wake_r)
    os.close(live.wake_w)
