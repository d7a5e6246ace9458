"""The arpeggiator: which key each step plays, exactly when its gate rises
and falls, on its own rate and on a clock, latched, and end to end in a
song where a clock on the song's grid plays the same bits as the rate."""
import numpy as np
import pytest

from synthcli.api import AllNotesOff

from synthcli.engine.core import Engine
from synthcli.engine.render import Performance
from synthcli.modules.arp import Arp
from synthcli.sequencer.song import Song
from synthcli.testing import check_module, onsets, peak_frequency, render_module

BS = 256
BLOCKS = 200
N = BS * BLOCKS
STEP = 6000             # rate 8 at 48 kHz
C, E, G = 0.0, 4 / 12, 7 / 12


def chord(*pitches, on=1000, off=40000):
    """keys' cables for a chord held from ``on`` to ``off``: a pitch and a
    gate row per key (an ``on`` or ``off`` per key if given as tuples)."""
    ons = on if isinstance(on, tuple) else (on,) * len(pitches)
    offs = off if isinstance(off, tuple) else (off,) * len(pitches)
    voct = np.zeros((len(pitches), N))
    gate = np.zeros((len(pitches), N))
    for c, (pitch, start, stop) in enumerate(zip(pitches, ons, offs)):
        voct[c] = pitch
        gate[c, start:stop] = 1.0
    return {"voct": voct, "gate": gate}


def play(inputs, **params):
    out = render_module(Arp, BLOCKS, inputs=inputs, channels=inputs["voct"].shape[0], params=params)
    return out["voct"][0], out["gate"][0], out["velocity"][0]


def edges(gate):
    """Rising and falling edges of a gate (0 before the first sample)."""
    high = np.concatenate(([0.0], gate)) > 0.5
    return np.flatnonzero(high[1:] & ~high[:-1]), np.flatnonzero(~high[1:] & high[:-1])


def semitones(voct, at):
    return list(np.round(voct[at] * 12, 9))


def test_contract():
    check_module(Arp)


def test_up_plays_the_chord_from_its_lowest_key_on_the_rate_from_the_first_press():
    voct, gate, _ = play(chord(G, C, E))
    on, off = edges(gate)
    assert list(on) == [1000 + STEP * k for k in range(7)]      # the first key starts it, on its sample
    assert list(off) == [4000 + STEP * k for k in range(7)]     # length 0.5 of each step
    assert semitones(voct, on) == [0, 4, 7, 0, 4, 7, 0]
    assert np.all(voct[:1000] == 0.0) and np.all(voct[40000:] == voct[37000])   # the pitch holds after


@pytest.mark.parametrize("mode, expected", [
    ("down", [19, 16, 12, 7, 4, 0, 19]),
    ("updown", [0, 4, 7, 12, 16, 19, 16]),     # no repeat at the turns
    ("up", [0, 4, 7, 12, 16, 19, 0]),
    ("downup", [19, 16, 12, 7, 4, 0, 4]),
    ("converge", [0, 19, 4, 16, 7, 12, 0]),      # from the outside in, as Tidal's arp
    ("diverge", [12, 7, 16, 4, 19, 0, 12]),      # converge backwards
    ("pinkyup", [0, 19, 4, 19, 7, 19, 12]),      # the top note between the others
    ("thumbup", [0, 4, 0, 7, 0, 12, 0]),         # the bottom note between the others
])
def test_modes_and_octaves_order_the_steps(mode, expected):
    voct, gate, _ = play(chord(G, C, E), mode=mode, octaves=2)
    assert semitones(voct, edges(gate)[0]) == expected


def pulses(*at, width=1):
    clock = np.zeros(N)
    for t in at:
        clock[t:t + width] = 1.0
    return clock


def test_order_plays_the_keys_as_they_were_pressed_and_a_clock_steps_it():
    clock = np.zeros(N)
    for k in range(8):
        clock[2000 + 4800 * k:2000 + 4800 * k + 100] = 1.0
    inputs = chord(C, E, G, on=(1200, 1100, 1000)) | {"clock": clock}
    voct, gate, _ = play(inputs, mode="order", rate=0)
    on, off = edges(gate)
    assert list(on) == [2000 + 4800 * k for k in range(8)]       # only on the clock's rising edges
    assert off[0] == 2100                                         # the first: as long as the clock's pulse
    assert list(off[1:]) == [2000 + 4800 * k + 2400 for k in range(1, 8)]   # then half the clock's interval
    assert semitones(voct, on) == [7, 4, 0, 7, 4, 0, 7, 4]       # g, e, c: as pressed


def test_a_clock_that_comes_early_retriggers_with_a_one_sample_dip_and_length_1_ties():
    _, gate, _ = play(chord(C, E) | {"clock": pulses(2000, 5000, 6000, 9000)}, rate=0, length=0.9)
    on, off = edges(gate)
    # A one-sample pulse first; then 0.9 of 3000; at 6000 that gate still
    # holds, so it drops on the sample before, and 0.9 of the 1000 since follows.
    assert list(on) == [2000, 5000, 6000, 9000]
    assert list(off) == [2001, 5999, 6900, 9000 + 2700]
    _, gate, _ = play(chord(C, E) | {"clock": pulses(*range(0, N, 1000), width=10)}, rate=0, length=1)
    on, off = edges(gate)
    assert list(on) == [1000] and list(off) == [40000]


def test_letting_go_closes_the_gate_at_once_and_a_new_press_starts_the_pattern_again():
    inputs = chord(C, E, G, off=20000)
    inputs["gate"][:, 25123:30000] = 1.0
    voct, gate, _ = play(inputs)
    on, off = edges(gate)
    assert list(on) == [1000, 7000, 13000, 19000, 25123]
    assert list(off) == [4000, 10000, 16000, 20000, 28123]       # the fourth step cut at the release
    assert semitones(voct, on) == [0, 4, 7, 0, 0]                # from its first step again, not e
    assert np.all(voct[19000:25123] == voct[19000])


def test_latch_plays_the_chord_on_after_its_keys_are_let_go_until_the_next_one():
    D, F = 2 / 12, 5 / 12
    inputs = chord(C, E, G, D, F, on=(1000,) * 3 + (22000,) * 2, off=(8000,) * 3 + (23000,) * 2)
    latch = np.ones(N)
    latch[42000:] = 0.0
    voct, gate, _ = play(inputs, latch=latch)
    on, off = edges(gate)
    assert list(on) == [1000, 7000, 13000, 19000] + [22000, 28000, 34000, 40000]
    assert semitones(voct, on) == [0, 4, 7, 0] + [2, 5, 2, 5]   # on after the release; the new chord replaces it
    assert off[3] == 21999     # the step before ran up to the new chord's first: its gate drops a sample early
    assert off[-1] == 42000 and not gate[42000:].any()          # latch off: nothing held, so silence


def test_all_notes_off_forgets_the_latched_chord_at_its_sample():
    inputs = chord(C, E, G, off=8000)
    voct, gate, _ = play(inputs, latch="on")
    held = render_module(Arp, BLOCKS, inputs=inputs, channels=3, params={"latch": "on"},
                         events=[(30500, AllNotesOff())])["gate"][0]
    assert np.array_equal(held[:30500], gate[:30500]) and gate[30500:].any()
    assert not held[30500:].any()
    inputs["gate"][:, 36000:38000] = 1.0   # a new chord after the stop plays, latched again
    on, _ = edges(render_module(Arp, BLOCKS, inputs=inputs, channels=3, params={"latch": "on"},
                                events=[(30500, AllNotesOff())])["gate"][0])
    assert list(on[on > 30500]) == [36000, 42000, 48000]


def test_keys_a_little_late_for_the_clocks_edge_still_make_its_step():
    clock = pulses(*range(0, N, 6000), width=3000)
    voct, gate, _ = play(chord(C, E, on=100, off=20000) | {"clock": clock}, rate=0)
    assert list(edges(gate)[0]) == [100, 6000, 12000, 18000]     # pressed in the pulse: at once
    voct, gate, _ = play(chord(C, E, on=3100, off=20000) | {"clock": clock}, rate=0)
    assert list(edges(gate)[0]) == [6000, 12000, 18000]          # after it: on the next edge


def test_a_key_tapped_and_let_go_between_two_steps_is_not_played():
    inputs = chord(C, G, on=(1000, 6920), off=(40000, 6990))    # the tap and the next step share a block
    voct, gate, _ = play(inputs)
    assert semitones(voct, edges(gate)[0]) == [0] * 7


def test_random_picks_only_keys_of_the_chord_and_renders_the_same_every_time():
    inputs = chord(C, E, G, off=N)
    voct, gate, _ = play(inputs, mode="random", rate=100)
    again, _, _ = play(inputs, mode="random", rate=100)
    picks = semitones(voct, edges(gate)[0])
    assert np.array_equal(voct, again)
    assert len(picks) == len(range(1000, N, 480)) and set(picks) == {0, 4, 7}
    assert all(20 < picks.count(p) < 50 for p in (0, 4, 7))     # about a third each
    assert picks[:9] != [0, 4, 7] * 3


def test_velocity_is_the_stepped_keys():
    inputs = chord(C, E) | {"velocity": np.array([[0.25] * N, [0.75] * N])}
    _, gate, velocity = play(inputs)
    assert list(velocity[edges(gate)[0]]) == [0.25, 0.75] * 3 + [0.25]


SONG = """
tempo 120
length 2
add keys kb voices=3
add arp a {arp}
add vco o wave=sine
add vca v level=0.5
connect kb.voct a.voct
connect kb.gate a.gate
connect a.voct o.voct
connect o v
connect a.gate v.gain
connect v out
pattern kb "[c4,e4,g4]" legato=0.99
{clock}"""


def render(registry, text, executor="auto"):
    with Engine(registry, 48000, BS, executor=executor) as engine:
        performance = Performance(engine, Song(registry, text))
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    return np.concatenate(blocks)[:performance.length]


def test_in_a_song_a_clock_on_the_grid_plays_the_same_bits_as_the_matching_rate(registry):
    rated = render(registry, SONG.format(arp="rate=8", clock=""))
    clocked = render(registry, SONG.format(arp="rate=0", clock='add keys clk voices=1\nconnect clk.gate a.clock\n'
                                                              'pattern clk "c4*16" legato=0.5\n'))
    assert np.array_equal(rated, clocked)
    heard = onsets(rated)   # every step's but the first, which has no silence before it
    assert len(heard) == 31 and np.abs(heard - STEP * np.arange(1, 32)).max() < 5   # 16ths, two bars
    pitches = [peak_frequency(rated[a + 100:a + 2900]) for a in heard[:17]]
    assert np.allclose(pitches, [329.63, 392.00, 261.63] * 5 + [261.63, 329.63], rtol=2e-3)   # bar 2 from c


def test_a_pattern_on_length_sets_each_step_s_gate_from_its_own_sample(registry):
    """`length` is read as each step starts, on the very sample a pattern
    steps it: it steps rather than glide, or the step that starts with it
    took the length before it (1/240 of the way to its own)."""
    text = ("tempo 120\nlength 1\nadd keys kb voices=1\nadd arp a rate=8\nconnect kb.voct a.voct\n"
            "connect kb.gate a.gate\nconnect a.gate out\npattern kb \"c4\" legato=0.99\n"
            'pattern a.length "0.2 0.8 0.5 0.1"\n')
    high = np.flatnonzero(np.diff(np.r_[0, render(registry, text) > 0, 0]))
    starts, lengths = high[::2], high[1::2] - high[::2]
    assert list(starts) == list(range(0, 96000, STEP))            # 16ths of a 2-second bar
    assert list(lengths) == [round(STEP * f) for f in (0.2, 0.8, 0.5, 0.1) for _ in range(4)]


def test_a_rate_set_as_a_note_length_steps_in_sixteenths_at_every_tempo(registry):
    """`rate=1/16` is 8 steps a second at 120 BPM and 4 at 60: the same bits
    as setting those rates by hand on the bar the tempo changes."""
    text = ("tempo 120\nlength 2\nadd keys kb voices=1\nadd arp a rate={rate}\nconnect kb.voct a.voct\n"
            "connect kb.gate a.gate\nconnect a.gate out\npattern kb \"c4\" legato=0.99\nat 2 tempo 60\n{at}")
    synced = render(registry, text.format(rate="1/16", at=""))
    np.testing.assert_array_equal(synced, render(registry, text.format(rate="8", at="at 2 set a.rate 4\n")))
    starts = np.flatnonzero(np.diff(np.r_[0, synced > 0]) > 0)
    assert list(starts) == [*range(0, 96000, STEP), *range(96000, 288000, 2 * STEP)]   # bar 2 lasts 4 s


def test_a_stopped_song_silences_a_latched_arp(registry):
    """The song's stop lets the keys go, which a latch outlives: the stop
    reaches the arp too, or it played on until ``set a.latch off``."""
    text = SONG.format(arp="rate=8 latch=on", clock="").replace("length 2", "length 8")
    with Engine(registry, 48000, BS) as engine:
        performance = Performance(engine, Song(registry, text))
        before = np.concatenate([performance.next_block()[0].copy() for _ in range(470)])
        performance.sequencer.release_notes()   # 2.5 s, stepping: the stop lets the keys go
        performance.sequencer = None
        after = np.concatenate([performance.next_block()[0].copy() for _ in range(200)])
    assert len(onsets(before[96000:])) == 4 and not after.any()


def test_a_latched_arp_lets_go_where_the_song_or_the_midi_file_ends(registry, tmp_path):
    """The end of a song, or of a MIDI file played on a voice patch, ends
    the chord a latch holds, as a stop does: it played on to TAIL_MAX, 10 s
    past the end, and was cut there."""
    import mido

    from synthcli.midi import midi_performance
    from synthcli.sequencer.song import TAIL_SILENCE
    end = 4 * 48000
    song = render(registry, SONG.format(arp="rate=8 latch=on", clock=""))
    assert len(onsets(song[:end])) == 31 and np.abs(song[end - 6000:end]).max() > 0.1
    assert not song[end + BS:].any() and len(song) < end + (TAIL_SILENCE + 0.1) * 48000

    chord = [mido.Message("note_on", note=note, velocity=100, time=0) for note in (60, 64, 67)]
    chord += [mido.Message("note_off", note=note, velocity=0, time=960 if k == 0 else 0)
              for k, note in enumerate((60, 64, 67))]   # a second at 120 bpm, then a second latched
    chord.append(mido.Message("control_change", control=1, value=0, time=960))
    midi = tmp_path / "chord.mid"
    mido.MidiFile(tracks=[mido.MidiTrack(chord)]).save(str(midi))
    voices = "\n".join(SONG.format(arp="rate=8 latch=on", clock="").splitlines()[3:-1])
    with Engine(registry, 48000, BS) as engine:
        performance = midi_performance(engine, str(midi), voices)
        blocks = [performance.next_block()[0].copy()]
        while not performance.over:
            blocks.append(performance.next_block()[0].copy())
    played = np.concatenate(blocks)
    assert len(onsets(played[:96000])) == 15 and np.abs(played[96000 - 6000:96000]).max() > 0.1
    assert len(played) < 48000 * (2 + TAIL_SILENCE + 0.1) and not played[96000 + BS:].any()


def test_worker_processes_render_the_arp_bit_for_bit(registry):
    text = SONG.format(arp="rate=11 mode=random octaves=3 latch=on", clock="")
    np.testing.assert_array_equal(render(registry, text, "processes"), render(registry, text, "inline"))
