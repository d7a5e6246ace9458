"""The pattern mini-notation: exact events for every construct, the place of
every error, and no input that can crash, hang or blow up the parser."""
import random
from dataclasses import FrozenInstanceError
from fractions import Fraction as F

import pytest
from hypothesis import given, settings, strategies as st

from synthcli.api import C4_HZ
from synthcli.errors import SynthError
from synthcli.sequencer.notation import (MAX_STEPS_PER_CYCLE, RANDOM_PERIOD, Event, Pattern, _query,
                                         note_to_midi, parse_pattern, parse_scale)


def ev(text, cycle=0, notes=True):
    """The events of one cycle as (start, duration, value) tuples."""
    return [(e.start, e.duration, e.value) for e in parse_pattern(text, notes=notes).events(cycle)]


def raw_events(pattern, cycle):
    """The events of a cycle computed afresh, without the per-period cache,
    to check the period itself."""
    out = []
    _query(pattern.root, F(cycle), F(cycle + 1), F(-cycle), F(1), out)
    return sorted(out, key=lambda e: (e.start, e.value, e.duration))


def grid(value, n, hits):
    """Events of ``value`` on the given steps of an n-step grid."""
    return [(F(i, n), F(1, n), value) for i in hits]


C3, E3, G3, C4 = 48.0, 52.0, 55.0, 60.0


# --- one construct at a time --------------------------------------------------

def test_steps_share_the_cycle_evenly():
    assert ev("c3 e3 g3") == [(F(0), F(1, 3), C3), (F(1, 3), F(1, 3), E3), (F(2, 3), F(1, 3), G3)]


def test_single_step_fills_the_cycle():
    assert ev("c4") == [(F(0), F(1), C4)]
    assert ev("  c4\t") == [(F(0), F(1), C4)]


def test_rests_take_a_step_and_play_nothing():
    assert ev("c3 ~ e3 ~") == [(F(0), F(1, 4), C3), (F(1, 2), F(1, 4), E3)]
    assert ev("~") == []
    assert ev("~ ~ c3") == [(F(2, 3), F(1, 3), C3)]


def test_brackets_subdivide_a_step():
    assert ev("c3 [e3 g3]") == [(F(0), F(1, 2), C3), (F(1, 2), F(1, 4), E3), (F(3, 4), F(1, 4), G3)]


def test_nested_brackets():
    assert ev("[[c3 e3] g3]") == [(F(0), F(1, 4), C3), (F(1, 4), F(1, 4), E3), (F(1, 2), F(1, 2), G3)]
    assert ev("[[[c3]]]") == [(F(0), F(1), C3)]


def test_stack_is_a_chord():
    assert ev("[c3,e3,g3] c4") == [(F(0), F(1, 2), C3), (F(0), F(1, 2), E3), (F(0), F(1, 2), G3),
                                   (F(1, 2), F(1, 2), C4)]


def test_stack_of_sequences():
    assert ev("[c3 g3, c4 c4 c4]") == [
        (F(0), F(1, 2), C3), (F(0), F(1, 3), C4), (F(1, 3), F(1, 3), C4),
        (F(1, 2), F(1, 2), G3), (F(2, 3), F(1, 3), C4)]


def test_stack_at_the_top_level():
    assert ev("c3, c4*2") == [(F(0), F(1), C3), (F(0), F(1, 2), C4), (F(1, 2), F(1, 2), C4)]


def test_fast_repeats_within_the_step():
    assert ev("c3*2 e3") == [(F(0), F(1, 4), C3), (F(1, 4), F(1, 4), C3), (F(1, 2), F(1, 2), E3)]
    assert ev("[c3 e3]*2") == [(F(0), F(1, 4), C3), (F(1, 4), F(1, 4), E3),
                               (F(1, 2), F(1, 4), C3), (F(3, 4), F(1, 4), E3)]


def test_chord_times_four_is_four_chords_a_bar():
    events = ev("[c3,e3,g3]*4")
    assert events == [(F(i, 4), F(1, 4), v) for i in range(4) for v in (C3, E3, G3)]


def test_fractional_fast_lets_notes_cross_the_bar():
    assert ev("c3*1.5", 0) == [(F(0), F(2, 3), C3), (F(2, 3), F(2, 3), C3)]
    assert ev("c3*1.5", 1) == [(F(1, 3), F(2, 3), C3)]
    assert ev("c3*0.5", 0) == [(F(0), F(2), C3)]
    assert ev("c3*0.5", 1) == []


def test_slow_spreads_the_step_over_cycles():
    assert ev("[c3 e3 g3 c4]/2", 0) == [(F(0), F(1, 2), C3), (F(1, 2), F(1, 2), E3)]
    assert ev("[c3 e3 g3 c4]/2", 1) == [(F(0), F(1, 2), G3), (F(1, 2), F(1, 2), C4)]
    assert ev("c3/2", 0) == ev("c3*0.5", 0) == [(F(0), F(2), C3)]
    assert ev("c3/2", 1) == []
    assert ev("c3/1.5 e3", 1) == [(F(1, 4), F(3, 4), C3), (F(1, 2), F(1, 2), E3)]


def test_degrade_drops_about_the_share_asked_afresh_each_cycle():
    pattern = parse_pattern("c5*8?")
    kept = [len(pattern.events(cycle)) for cycle in range(200)]
    assert 700 < sum(kept) < 900        # half of 1600, give or take 7 standard deviations
    assert len({tuple(pattern.events(cycle)) for cycle in range(200)}) > 100   # no bar like the last
    quarter = sum(len(parse_pattern("c5*8?0.25").events(cycle)) for cycle in range(200))
    assert 1100 < quarter < 1300        # three quarters kept
    assert ev("c5*8?0") == ev("c5*8") and ev("c5*8?1") == []
    for cycle in range(20):             # the same at every play: chance depends on the time alone
        assert parse_pattern("c5*8?").events(cycle) == pattern.events(cycle)
        assert set(pattern.events(cycle)) <= set(parse_pattern("c5*8").events(cycle))


def test_each_degrade_of_a_pattern_has_its_own_chances():
    pattern = parse_pattern("[c5*8?, e5*8?]")
    starts = [({e.start for e in pattern.events(c) if e.value == 72.0},
               {e.start for e in pattern.events(c) if e.value == 76.0}) for c in range(20)]
    assert sum(high != low for high, low in starts) > 15


def test_a_choice_plays_one_whole_alternative_each_cycle():
    pattern = parse_pattern("[c3 e3 | g3*2 | ~] c4")
    alternatives = {((F(0), C3), (F(1, 4), E3)): 0, ((F(0), G3), (F(1, 4), G3)): 0, (): 0}
    for cycle in range(300):
        events = [(e.start, e.value) for e in pattern.events(cycle)]
        assert events[-1] == (F(1, 2), C4)
        alternatives[tuple(events[:-1])] += 1
        assert parse_pattern("[c3 e3 | g3*2 | ~] c4").events(cycle) == pattern.events(cycle)
    assert all(60 < count < 140 for count in alternatives.values())   # a third each
    assert ev("c3 | e3") in ([(F(0), F(1), C3)], [(F(0), F(1), E3)])


def test_a_polymeter_steps_every_sequence_at_the_first_ones_pace():
    """`{c3 e3 g3, c4 d4}`: three steps a bar for both, so c4 d4 runs on
    across the bar line; `%4` sets four steps a bar."""
    D4 = 62.0
    third = F(1, 3)
    assert ev("{c3 e3 g3, c4 d4}", 0) == sorted([(F(0), third, C3), (third, third, E3), (2 * third, third, G3),
                                                 (F(0), third, C4), (third, third, D4), (2 * third, third, C4)])
    assert [e[2] for e in ev("{c3 e3 g3, c4 d4}", 1) if e[2] > 59] == [D4, C4, D4]
    assert ev("{c3 e3 g3}%4", 0) == [(F(0), F(1, 4), C3), (F(1, 4), F(1, 4), E3), (F(1, 2), F(1, 4), G3),
                                     (F(3, 4), F(1, 4), C3)]
    assert [e[2] for e in ev("{c3 e3 g3}%4", 1)] == [E3, G3, C3, E3]
    assert ev("{c3 e3 g3}") == ev("c3 e3 g3")
    assert ev("{c3@2 e3, g3 c4}", 1) == ev("[c3@2 e3, <g3 c4>*3]", 1)   # weights count as steps


def test_replicate_makes_steps():
    assert ev("c3!3 e3") == grid(C3, 4, [0, 1, 2]) + grid(E3, 4, [3])
    assert ev("c3!3 e3") == ev("c3 c3 c3 e3")


def test_bare_bang_repeats_the_previous_step():
    assert ev("c3 ! e3") == ev("c3 c3 e3")
    assert ev("c3! e3") == ev("c3 c3 e3")
    assert ev("c3 ! ! e3") == ev("c3!3 e3")
    assert ev("c3@2 !") == ev("c3@2 c3@2")


def test_alternation_one_per_cycle():
    for cycle, first in enumerate([C3, E3, C3, E3]):
        assert ev("<c3 e3> g3", cycle) == [(F(0), F(1, 2), first), (F(1, 2), F(1, 2), G3)]


def test_nested_alternation_takes_turns():
    assert [ev("<c3 <e3 g3>>", c)[0][2] for c in range(4)] == [C3, E3, C3, G3]


def test_alternation_sped_up_plays_through_the_list():
    assert ev("<c3 e3>*2", 0) == ev("c3 e3")
    assert [[e[2] for e in ev("<c3 e3 g3>*2", c)] for c in range(3)] == [[C3, E3], [G3, C3], [E3, G3]]


def test_tie_lengthens_the_previous_step():
    assert ev("c3 _ e3") == [(F(0), F(2, 3), C3), (F(2, 3), F(1, 3), E3)]
    assert ev("c3 _ _ e3") == [(F(0), F(3, 4), C3), (F(3, 4), F(1, 4), E3)]
    assert ev("~ _ c3") == [(F(2, 3), F(1, 3), C3)]


def test_tie_stays_in_its_sequence():
    assert ev("[c3 _, e3 g3]") == [(F(0), F(1), C3), (F(0), F(1, 2), E3), (F(1, 2), F(1, 2), G3)]
    assert ev("[c3 e3] _ g3") == [(F(0), F(1, 3), C3), (F(1, 3), F(1, 3), E3), (F(2, 3), F(1, 3), G3)]


def test_tie_after_replicate_lengthens_the_last_copy():
    assert ev("c3!2 _") == ev("c3 c3@2")


def test_tie_in_alternation_spans_cycles():
    assert ev("<c3 _ e3>", 0) == [(F(0), F(2), C3)]
    assert ev("<c3 _ e3>", 1) == []
    assert ev("<c3 _ e3>", 2) == [(F(0), F(1), E3)]
    assert ev("<c3@2 e3>", 3) == [(F(0), F(2), C3)]


def test_weights():
    assert ev("c3@3 e3") == [(F(0), F(3, 4), C3), (F(3, 4), F(1, 4), E3)]
    assert ev("c3@1.5 e3") == [(F(0), F(3, 5), C3), (F(3, 5), F(2, 5), E3)]
    assert ev("c3@3 e3") == ev("c3 _ _ e3")


@pytest.mark.parametrize("text, n, hits", [
    ("c3(3,8)", 8, [0, 3, 6]),          # x..x..x.
    ("c3(5,8)", 8, [0, 2, 3, 5, 6]),    # x.xx.xx.
    ("c3(4,7)", 7, [0, 2, 4, 6]),       # x.x.x.x
    ("c3(2,5)", 5, [0, 2]),             # x.x..
    ("c3(7,16)", 16, [0, 3, 5, 7, 10, 12, 14]),
    ("c3(4,4)", 4, [0, 1, 2, 3]),
    ("c3(0,4)", 4, []),
    ("c3(3,8,2)", 8, [1, 4, 6]),        # rotated left by 2: .x..x.x.
    ("c3(3,8,-1)", 8, [1, 4, 7]),       # rotated right by 1: .x..x..x
    ("c3(3,8,10)", 8, [1, 4, 6]),       # rotation wraps around
    ("c3( 3 , 8 )", 8, [0, 3, 6]),
])
def test_euclid(text, n, hits):
    assert ev(text) == grid(C3, n, hits)


def test_euclid_combines_with_other_constructs():
    assert ev("[c3 e3](3,8)") == [(F(i, 16), F(1, 16), v) for i, v in
                                  [(0, C3), (1, E3), (6, C3), (7, E3), (12, C3), (13, E3)]]
    assert ev("<c3 e3>(3,8)", 1) == grid(E3, 8, [0, 3, 6])
    assert ev("c3(3,8)*2") == grid(C3, 16, [0, 3, 6, 8, 11, 14])
    assert ev("c3(3,8) e3") == grid(C3, 16, [0, 3, 6]) + [(F(1, 2), F(1, 2), E3)]


# --- chords -------------------------------------------------------------------

def notes_of(text, cycle=0):
    return [e.value for e in parse_pattern(text).events(cycle)]


@pytest.mark.parametrize("text, notes", [
    ("c4'maj", [60, 64, 67]),
    ("c4'major", [60, 64, 67]),
    ("a3'min", [57, 60, 64]),
    ("a3'm7", [57, 60, 64, 67]),
    ("g3'7", [55, 59, 62, 65]),
    ("g3'dom7", [55, 59, 62, 65]),
    ("f3'maj7", [53, 57, 60, 64]),
    ("b3'm7f5", [59, 62, 65, 69]),
    ("c4'dim7", [60, 63, 66, 69]),
    ("d4'sus4", [62, 67, 69]),
    ("e2'5", [40, 47]),
    ("c4'add9", [60, 64, 67, 74]),
    ("c3'13", [48, 52, 55, 58, 62, 65, 69]),
    ("60'min", [60, 63, 67]),                 # a MIDI number as the root
    ("c'maj", [48, 52, 55]),                  # a bare name is octave 3
])
def test_chord_names_stack_their_notes_on_the_root(text, notes):
    assert ev(text) == [(F(0), F(1), float(n)) for n in notes]


@pytest.mark.parametrize("text, notes", [
    ("c4'maj'1", [60]),
    ("c4'maj'5", [60, 64, 67, 72, 76]),        # on past the last note, an octave up
    ("c4'maj'i", [64, 67, 72]),
    ("c4'maj'ii", [67, 72, 76]),
    ("c4'maj'iii", [72, 76, 79]),
    ("c4'maj'o", [48, 55, 64]),                # first and third an octave down
    ("c4'5'o", [60, 67]),                      # open needs three notes
    ("c4'maj7'd1", [59, 60, 64, 67]),          # the top note dropped an octave
    ("c4'maj7'd2", [55, 60, 64, 71]),
    ("c4'maj'5'ii", [67, 72, 76, 84, 88]),     # left to right: five notes, then inverted twice
    ("c4'maj'ii'5", [67, 72, 76, 79, 84]),
])
def test_chord_modifiers_apply_left_to_right(text, notes):
    assert notes_of(text) == notes


def test_a_chord_is_one_step_for_everything_after_it():
    assert ev("c4'maj e3") == [(F(0), F(1, 2), n) for n in (60.0, 64.0, 67.0)] + [(F(1, 2), F(1, 2), E3)]
    assert ev("c4'maj*2") == [(F(k, 2), F(1, 2), n) for k in range(2) for n in (60.0, 64.0, 67.0)]
    assert notes_of("<c3'maj a2'min'i>", 1) == [48, 52, 57]
    assert notes_of("[c3'maj, c2]") == [36, 48, 52, 55]


# --- scales -------------------------------------------------------------------

@pytest.mark.parametrize("scale, text, notes", [
    ("c3:major", "0 1 2 3 4 5 6 7", [48, 50, 52, 53, 55, 57, 59, 60]),
    ("c3:major", "-1 -7 -8 14", [47, 36, 35, 72]),          # below the root and two octaves up
    ("a3:minor", "0 2 4", [57, 60, 64]),
    ("a:minpent", "0 1 2 3 4 5", [57, 60, 62, 64, 67, 69]),  # a bare root is octave 3
    ("fs2:blues", "0 3", [42, 48]),
])
def test_a_scales_degrees_are_its_notes(scale, text, notes):
    pattern = parse_pattern(text, scale=parse_scale(scale))
    assert sorted(e.value for e in pattern.events(0)) == sorted(float(n) for n in notes)


def test_a_degree_with_leading_zeros_is_its_value():
    """The guard against degrees of thousands of digits counted digits,
    and refused 00001 (the review)."""
    assert [e.value for e in parse_pattern("00001 -00002", scale=parse_scale("c3:major")).events(0)] == [50.0, 45.0]


def test_a_scale_pattern_is_not_the_same_pattern_in_another_scale():
    a, b = parse_pattern("0 2", scale=parse_scale("c3:major")), parse_pattern("0 2", scale=parse_scale("c3:minor"))
    assert a != b and a == parse_pattern("0 2", scale=parse_scale("c3:major"))


@pytest.mark.parametrize("text, col, words", [
    ("c3:minr", 4, "unknown scale 'minr' at 4, did you mean 'minor'? (the scales: chromatic, major"),
    ("minor", 1, "expected a scale as ROOT:NAME, like c3:minor, got 'minor'"),
    ("c3:", 1, "expected a scale as ROOT:NAME"),
    (":minor", 1, "expected a scale as ROOT:NAME"),
    ("h3:minor", 1, "unknown note 'h3' at 1"),
])
def test_a_wrong_scale_names_its_column(text, col, words):
    with pytest.raises(SynthError) as info:
        parse_scale(text)
    assert info.value.col == col and words in info.value.message


@pytest.mark.parametrize("text, col, words", [
    ("0 e3", 3, "'e3' at 3 is a note name, but this pattern plays degrees of its scale"),
    ("0 1.5", 3, "degree '1.5' at 3 is not a whole number"),
    ("0 2'maj", 3, "a chord at 3 needs a note"),
    ("0 80", 3, "degree 80 at 3 lands outside MIDI 0-127"),
    ("-60", 1, "lands outside MIDI 0-127"),
    ("0 " + "1" * 5000, 3, "lands outside MIDI 0-127"),   # int() refuses over 4300 digits: it was a traceback
    ("0 bd", 3, "'bd' at 3 is a drum name, but this pattern plays degrees of its scale"),   # it played MIDI 36
    ("0 x", 3, "expected a degree of the scale at 3 (0 is its root, 1 the next note up), got 'x'"),
])
def test_a_scale_pattern_takes_whole_degrees_only(text, col, words):
    with pytest.raises(SynthError) as info:
        parse_pattern(text, scale=parse_scale("c3:major"))
    assert info.value.col == col and words in info.value.message


# --- values -------------------------------------------------------------------

@pytest.mark.parametrize("name, midi", [
    ("c4", 60), ("c#4", 61), ("db4", 61), ("cs4", 61), ("df4", 61), ("eb3", 51), ("e3", 52),
    ("C4", 60), ("a4", 69), ("b#3", 60), ("cb4", 59), ("c##4", 62), ("c", 48), ("e", 52),
    ("c-1", 0), ("g9", 127),
])
def test_note_names(name, midi):
    assert note_to_midi(name) == midi
    assert ev(name) == [(F(0), F(1), float(midi))]


def test_drum_names_are_their_general_midi_notes_and_a_near_miss_is_named():
    assert [e[2] for e in ev("bd rim sd sn cp hh lt oh mt cr ht rd")] == [36, 37, 38, 38, 39, 42, 45, 46, 47, 49,
                                                                           50, 51]
    with pytest.raises(SynthError, match=r"unknown note 'bdd' at 4: .*, did you mean 'bd'\?$"):
        ev("hh bdd")
    with pytest.raises(SynthError, match=r"unknown note 'kick' at 1: .*, or a drum \(bd rim sd sn .*\)$"):
        ev("kick")
    with pytest.raises(SynthError, match=r"unknown note 'h3' at 1: .*, or a drum \(bd "):   # a note mistyped, not hh
        ev("h3")
    with pytest.raises(SynthError, match="expected a number at 1, got 'bd'"):
        ev("bd", notes=False)


def test_midi_numbers_and_fractions():
    assert [e[2] for e in ev("60 60.5 61.")] == [60.0, 60.5, 61.0]


def test_value_mode_takes_numbers():
    assert ev("400 800 1600 3200", notes=False) == [(F(i, 4), F(1, 4), v)
                                                  for i, v in enumerate([400.0, 800.0, 1600.0, 3200.0])]
    assert [e[2] for e in ev("-0.5 .25 <1 2>", notes=False)] == [-0.5, 0.25, 1.0]


def test_value_mode_rejects_note_names():
    with pytest.raises(SynthError) as info:
        parse_pattern("400 c4", notes=False)
    assert info.value.col == 5
    assert "'c4' at 5 is a note name" in info.value.message


def test_a_pattern_in_hz_takes_note_names_as_their_frequencies():
    """a4 is 440 Hz, c4 the C4 of pitch CV 0 to the bit; numbers stay Hz."""
    pattern = parse_pattern("a4 400 <c#4 c4> eb3", notes=False, hz=True)
    assert [e.value for e in pattern.events(0)] == [440.0, 400.0, 440 * 2 ** (-8 / 12), 440 * 2 ** (-18 / 12)]
    assert [e.value for e in pattern.events(1)][2] == C4_HZ
    for text, col, words in (("a4 h4", 4, "expected a number or a note name at 4, got 'h4'"),
                             ("a4'maj", 1, "a chord at 1 is notes, but this pattern takes numbers")):
        with pytest.raises(SynthError) as info:
            parse_pattern(text, notes=False, hz=True)
        assert info.value.col == col and words in info.value.message


def test_a_pattern_of_a_time_takes_note_lengths_and_brackets_slow_a_step():
    pattern = parse_pattern("1/8 <3/16 1/8t> [0.5]/2 1/4d*2", notes=False, lengths=True)
    assert [(e.start, e.value, e.length) for e in pattern.events(1)] == [
        (F(0), 0.0, F(1, 8)), (F(1, 4), 0.0, F(1, 12)), (F(3, 4), 0.0, F(3, 8)), (F(7, 8), 0.0, F(3, 8))]
    assert [e.value for e in pattern.events(0)][2] == 0.5 and pattern.values() == {0.5: 18}
    assert pattern.lengths() == {F(1, 8): 1, F(3, 16): 6, F(1, 12): 11, F(3, 8): 25}
    assert [(e.duration, e.value, e.length) for e in parse_pattern("1/8", notes=False).events(0)] == [
        (F(8), 1.0, None)]                             # elsewhere `/` slows a step down, as it always did
    with pytest.raises(SynthError) as info:
        parse_pattern("0.1 1/8d", notes=False)
    assert info.value.col == 6 and "expected a number after '/'" in info.value.message


def test_events_are_sorted_by_start_then_value():
    assert [e[2] for e in ev("[g3,c3,e3]")] == [C3, E3, G3]
    assert [e[2] for e in ev("g3, c3")] == [C3, G3]


def test_values_are_immutable_and_exact():
    pattern = parse_pattern("c3*16")
    assert isinstance(pattern, Pattern) and pattern == parse_pattern("c3*16")
    assert hash(pattern) == hash(parse_pattern("c3*16"))
    event = pattern.events(0)[5]
    assert event == Event(F(5, 16), F(1, 16), C3) and event.end == F(6, 16)
    assert isinstance(event.start, F) and isinstance(event.duration, F)
    with pytest.raises(FrozenInstanceError):
        event.value = 1.0
    with pytest.raises(FrozenInstanceError):
        pattern.text = "x"
    assert str(pattern) == "c3*16"


@pytest.mark.parametrize("text, period", [
    ("c3 e3", 1), ("<c3 e3>", 2), ("<c3 e3>*2", 1), ("<c3 e3 g3>*2", 3), ("<c3 <e3 g3>>", 4),
    ("<c3!3> <e3!5>", 15), ("c3*1.5", 2), ("c3*0.5", 2), ("<c3 _ e3>", 3), ("<c3@1.5 e3>", 5),
    ("c3/3", 3),
])
def test_period_is_when_the_pattern_repeats(text, period):
    pattern = parse_pattern(text)
    assert pattern.period == period
    for cycle in range(period):
        assert raw_events(pattern, cycle) == raw_events(pattern, cycle + period) == pattern.events(cycle)
        assert pattern.events(cycle + 7 * period) == pattern.events(cycle)


@pytest.mark.parametrize("text, period", [("c5*8?", RANDOM_PERIOD), ("<c3 e3 g3>?", 3 * RANDOM_PERIOD)])
def test_degrades_chances_repeat_after_their_long_period(text, period):
    pattern = parse_pattern(text)
    assert pattern.period == period
    for cycle in (0, 1, 2, 12345):
        assert raw_events(pattern, cycle) == raw_events(pattern, cycle + period) == pattern.events(cycle)


# --- errors -------------------------------------------------------------------

@pytest.mark.parametrize("text, col, words", [
    ("c3 [e3 g3", 4, "unbalanced '[' at 4: a closing ']' is missing"),
    ("c3 <e3 g3", 4, "unbalanced '<' at 4: a closing '>' is missing"),
    ("c3 e3]", 6, "unbalanced ']' at 6: there is no '['"),
    ("c3 e3>", 6, "unbalanced '>' at 6"),
    ("[c3 e3>", 7, "mismatched '>' at 7"),
    ("h3", 1, "unknown note 'h3' at 1"),
    ("c3 cutoff", 4, "unknown note 'cutoff' at 4"),
    ("c12", 1, "outside MIDI 0-127"),
    ("g#9", 1, "outside MIDI 0-127"),
    ("6x", 1, "expected a number or a note at 1, got '6x'"),
    ("a b*", 4, "expected a number after '*' at 4"),
    ("a*x", 2, "expected a number after '*' at 2, got 'x'"),
    ("a*0", 2, "more than 0"),
    ("a@", 2, "expected a weight after '@' at 2"),
    ("a@0", 2, "weight more than 0"),
    ("a@1e-300", 2, "got '1e-300' (write it in plain digits: exponents are not taken)"),
    ("a*2E3", 2, "got '2E3' (write it in plain digits: exponents are not taken)"),
    ("a!0", 2, "at least 1 copy"),
    ("a!1.5", 2, "whole number of copies"),
    ("a *2", 3, "must follow a step directly"),
    ("_ a", 1, "'_' at 1 has no step before it"),
    ("[a, _]", 5, "'_' at 5 has no step before it"),
    ("! a", 1, "'!' at 1 has no step before it"),
    ("", 1, "empty pattern"),
    ("   ", 1, "empty pattern"),
    ("a []", 3, "empty '[]' at 3"),
    ("<>", 1, "empty '<>' at 1"),
    ("a,", 2, "nothing after ',' at 2"),
    ("[a, ]", 3, "nothing after ',' at 3"),
    (",a", 1, "empty sequence before ',' at 1"),
    ("a(3,8", 2, "unbalanced '(' at 2: a closing ')' is missing"),
    ("a(3)", 2, "needs hits and steps"),
    ("a(3;8)", 4, "expected ',' at 4 in the '(k,n,r)' opened at 2, got ';'"),
    ("a(3,8,1,2)", 8, "expected ')' at 8 in the '(k,n,r)' opened at 2, got ','"),
    ("a(x,8)", 3, "expected a whole number of hits at 3 in the '(k,n,r)' opened at 2, got 'x'"),
    ("a(3,8 b", 7, "expected ',' or ')' at 7 in the '(k,n,r)' opened at 2, got 'b'"),
    ("a(9,8)", 2, "0 to 8 hits"),
    ("a(1,0)", 2, "1 to 1024 steps"),
    ("a )", 3, "unbalanced ')' at 3"),
    ("a/0", 2, "'/' at 2 needs a number more than 0"),
    ("a/", 2, "expected a number after '/' at 2"),
    ("a/0.0001", 2, "more than 1024 steps per cycle"),
    ("a?2", 2, "'?2' at 2 needs a probability from 0 to 1"),
    ("a?-0.5", 2, "needs a probability from 0 to 1"),
    ("a?x", 2, "expected a probability after '?' at 2, got 'x'"),
    ("[a, b | c]", 7, "'|' at 7 after ',' at 3: one bracket either stacks (',') or chooses ('|')"),
    ("[a | ]", 4, "nothing after '|' at 4"),
    ("[| a]", 2, "empty sequence before '|' at 2"),
    ("{a | b}", 4, "'|' at 4 inside the '{' at 1: a polymeter stacks with ','"),
    ("a }", 3, "unbalanced '}' at 3: there is no '{' to close"),
    ("{a b}%0", 6, "'%' at 6 needs a number more than 0"),
    ("{a b}%", 6, "expected a number of steps per cycle after '%' at 6"),
    ("{a b}%2000", 6, "more than 1024 steps per cycle"),
    ("{a b", 1, "unbalanced '{' at 1: a closing '}' is missing"),
    ("a:3", 2, "not supported"),
    ("a . b", 3, "'.' (grouping) at 3 is not supported"),
    ("a $", 3, "unexpected '$' at 3"),
    ("c4'majr", 4, "unknown chord 'majr' at 4, did you mean 'maj'?"),
    ("c4'", 3, "expected a chord name after \"'\" at 3, like c4'maj"),
    ("c4' e3", 3, "expected a chord name"),
    ("c4'maj'x", 8, "expected a chord modifier at 8, got 'x': a number of notes"),
    ("c4'maj'0", 8, "expected a chord modifier at 8, got '0'"),
    ("c4'maj'd4", 8, "at most 'd3' here"),
    ("c4'maj'", 7, "expected a chord modifier at 7: a number"),
    ("g9'maj", 1, "the chord at 1 reaches MIDI 134, outside 0-127"),
    ("c-1'maj'o", 1, "reaches MIDI -12"),
    ("e3 ~'maj", 5, "unexpected \"'\" at 5"),
    ("a " + "9" * 400, 3, "too large"),
])
def test_errors_name_the_column(text, col, words):
    with pytest.raises(SynthError) as info:
        parse_pattern(text)
    assert info.value.col == col
    assert words in info.value.message


@pytest.mark.parametrize("text, col", [
    ("a*100000", 2),
    ("a*1025", 2),
    ("[a b]*513", 6),
    ("a!1025", 2),
    ("~!1025", 2),
    ("[a*32]*33", 7),
    ("[[a*32]*32]*2", 12),
    ("a(1000000,2000000)", 2),
    ("a*99999999999999999999", 2),
    ("a!99999999999999999999", 2),
    ("<a@0.0000001>", 1),
    ("a*1" + "0" * 5000, 2),
])
def test_busy_patterns_are_refused_at_once(text, col):
    with pytest.raises(SynthError) as info:
        parse_pattern(text)
    assert info.value.col == col


def test_the_limit_itself_is_allowed():
    assert len(ev("c3*1024")) == MAX_STEPS_PER_CYCLE
    assert len(ev("[c3*32]*32")) == MAX_STEPS_PER_CYCLE
    assert len(ev(" ".join(["c3"] * 1024))) == MAX_STEPS_PER_CYCLE
    # A fractional '*' at the limit: 1023.5 steps a cycle start 1024 and 1023 notes in turn.
    pattern = parse_pattern("c3*1023.5")
    assert [len(pattern.events(cycle)) for cycle in (0, 1, 2)] == [1024, 1023, 1024]
    assert len(ev("[c3 d3]*511.5")) == 1023
    for busy in ("c3*1024.5", "[c3 d3]*512.5"):   # 1025 steps in a cycle
        with pytest.raises(SynthError, match="more than 1024 steps per cycle"):
            parse_pattern(busy)
    with pytest.raises(SynthError) as info:
        parse_pattern(" ".join(["c3"] * 1025))
    assert info.value.col == 1024 * 3 + 1
    # A polymeter counts the steps it plays, not the whole cycles of its sequence they touch (342 of 3).
    pattern = parse_pattern("{c3 e3 g3}%1024")
    assert [len(pattern.events(cycle)) for cycle in (0, 1, 2)] == [1024] * 3
    assert len(ev("{c3 e3 g3, c4 e4}%512")) == 1024
    for busy in ("{c3 e3 g3}%1025", "{c3 e3 g3, c4}%513"):
        with pytest.raises(SynthError, match="more than 1024 steps per cycle"):
            parse_pattern(busy)


def test_deep_nesting_is_refused():
    with pytest.raises(SynthError, match="nested more than 64"):
        parse_pattern("[" * 5000 + "a" + "]" * 5000)
    with pytest.raises(SynthError, match="nested more than 64"):
        parse_pattern("a" + "(1,2)" * 200)
    assert ev("a" + "*1" * 5000) == [(F(0), F(1), 57.0)]  # chains of '*' merge


# --- any text parses or fails cleanly ----------------------------------------

_ALPHABET = "abcdefgh#sbmjiot0123456789.-~[]<>,*!@_() \t/?:|{}'"


def _check(text, notes, lengths=False):
    try:
        pattern = parse_pattern(text, notes=notes, lengths=lengths)
    except SynthError as error:
        assert isinstance(error.col, int) and 1 <= error.col <= max(1, len(text))
        assert str(error.col) in error.message or not text.strip()
        return
    for cycle in (0, 1, 5):
        events = pattern.events(cycle)
        assert events == raw_events(pattern, cycle + pattern.period)
        assert len(events) <= MAX_STEPS_PER_CYCLE
        assert events == sorted(events, key=lambda e: (e.start, e.value, e.duration))
        for event in events:
            assert isinstance(event.start, F) and 0 <= event.start < 1
            assert isinstance(event.duration, F) and event.duration > 0


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(alphabet=_ALPHABET, max_size=40), st.text(max_size=40)),
       st.sampled_from(["notes", "values", "lengths"]))
def test_any_text_parses_or_fails_cleanly(text, mode):
    _check(text, mode == "notes", lengths=mode == "lengths")


def _random_pattern(rng, depth=0):
    """A valid pattern built from the grammar, to exercise the query more
    than random text can (plain ``random``: hypothesis' recursive
    strategies are too slow to draw hundreds of these)."""
    def step():
        if depth < 3 and rng.random() < 0.25:
            inner = _random_pattern(rng, depth + 1)
            body = rng.choice(",|").join(inner for _ in range(rng.randint(1, 2)))
            term = rng.choice(["[{}]", "<{}>", "{{{}}}", "{{{}}}%4"]).format(body.replace("|", ","))
        else:
            term = rng.choice(["c3", "e3", "g3", "60", "~", "c#4", "eb3", "a", "[c3,e3,g3]", "c3'maj",
                               "a2'm7'ii", "e3'7'5'o", "g2'sus4'd1"])
        return term + rng.choice(["", "", "", "*2", "*3", "*1.5", "*0.5", "/2", "/1.5", "?", "?0.3", "!",
                                  "!3", "@2", "@1.5", "(3,8)", "(5,8,2)", "(2,3)", " _", " !"])
    return " ".join(step() for _ in range(rng.randint(1, 4)))


def test_generated_patterns_query_cleanly():
    rng = random.Random(1234)
    parsed = 0
    for _ in range(200):
        text = _random_pattern(rng)
        try:
            parse_pattern(text)
            parsed += 1
        except SynthError as error:  # valid by construction, but may be too busy
            assert "steps per cycle" in error.message
        _check(text, True)
    assert parsed > 150
