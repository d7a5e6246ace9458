"""The schedule and the inline engine, checked on the rendered samples."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from synthcli.api import Module, NoteOff, NoteOn, Port
from synthcli.engine.core import Engine
from synthcli.engine.schedule import compile_patch, topological_order
from synthcli.engine.steps import SMOOTH_SECONDS
from synthcli.errors import SynthError
from synthcli.patch import Cable, Patch


def patch_of(registry, text):
    patch = Patch(registry)
    patch.load_text(text)
    return patch


def render(registry, text, blocks, blocksize=256, **kw):
    with Engine(registry, 48000, blocksize, **kw) as engine:
        engine.load(patch_of(registry, text))
        return np.concatenate([engine.process_block().copy() for _ in range(blocks)], axis=1)


def test_order_follows_cables_and_only_cycle_closers_are_delayed(registry):
    patch = patch_of(registry, """
        add vca a
        add vca b
        add vca c
        connect a b
        connect b a.gain
        connect b out
        connect c a
        connect c c.gain
    """)
    order, delayed = topological_order(patch)
    assert order == ["c", "a", "b", "out"]
    assert delayed == {Cable("b", "out", "a", "gain"), Cable("c", "out", "c", "gain")}


def test_channel_counts_follow_the_widest_cable(registry):
    schedule = compile_patch(patch_of(registry, """
        add keys kb voices=5
        add vco osc
        add lfo wob
        add vcf f
        connect kb.voct osc.voct
        connect osc f
        connect wob f.cutoff
        connect f out
    """))
    widths = {n.name: n.channels for n in schedule.nodes}
    assert widths == {"kb": 5, "osc": 5, "wob": 1, "f": 5, "out": 1}     # out folds every voice into one
    assert schedule.node("out").outputs["master"].channels == 2


def test_unconnected_patch_is_silent(registry):
    assert not render(registry, "add vco o\n", 4).any()


def test_polyphonic_cable_into_out_is_summed_to_both_sides(registry):
    out = render(registry, """
        add keys kb voices=3
        add vca v level=0.2
        connect kb.gate v.in
        connect v out
    """, 2)
    assert not out.any()
    with Engine(registry, 48000, 64) as engine:
        engine.load(patch_of(registry, "add keys kb voices=3\nadd vca v level=0.2\nconnect kb.gate v\nconnect v out\n"))
        for note in (60, 64, 67):
            engine.send("kb", 10, NoteOn(note, 1.0))
        block = engine.process_block()
        assert np.allclose(block[:, :10], 0) and np.allclose(block[:, 10:], 0.6)


def test_notes_land_on_their_exact_sample_whatever_the_block_size(registry):
    for blocksize in (64, 256, 1000):
        with Engine(registry, 48000, blocksize) as engine:
            engine.load(patch_of(registry, "add keys kb voices=1\nconnect kb.gate out\n"))
            engine.send("kb", 12345, NoteOn(60))
            engine.send("kb", 23456, NoteOff(60))
            data = np.concatenate([engine.process_block()[0].copy() for _ in range(30000 // blocksize + 1)])
        edges = np.flatnonzero(np.diff(data)) + 1
        assert list(edges) == [12345, 23456]


def test_set_glides_over_5_ms_across_blocks_and_then_holds(registry):
    glide = round(SMOOTH_SECONDS * 48000)
    with Engine(registry, 48000, 64) as engine:
        engine.load(patch_of(registry, "add keys kb voices=1\nadd vca v level=0.5\nconnect kb.gate v\nconnect v out\n"))
        engine.send("kb", 0, NoteOn(60))
        first = engine.process_block()[0].copy()
        engine.set("v", "level", 0.25)
        after = np.concatenate([engine.process_block()[0].copy() for _ in range(8)])
    assert np.allclose(first, 0.5) and glide == 240
    ramp, held = after[:glide], after[glide:]
    assert np.allclose(np.diff(ramp), -0.25 / glide) and ramp[0] < 0.5 and ramp[-1] == 0.25
    assert (held == 0.25).all()


def level_row(registry, blocksize, sets, samples=4096):
    """A vca's level, sample by sample, as the engine writes it for the
    timed ``sets`` (sample, value)."""
    with Engine(registry, 48000, blocksize) as engine:
        engine.load(patch_of(registry, "add vca v level=0\nconnect v out\n"))
        for time, value in sets:
            engine.set("v", "level", value, time=time)
        rows = engine.schedule.node("v").param_base["level"]
        blocks = []
        for _ in range(-(-samples // blocksize)):
            engine.process_block()
            blocks.append(engine.arena[rows.start].copy())
    return np.concatenate(blocks)[:samples]


def test_every_set_in_a_block_glides_from_its_own_sample_whatever_the_block_size(registry):
    """Sets 90 and 500 samples apart, in one block of 1024 or across
    several of 64: each is heard, from its sample, where a block kept only
    its last set and glided to the block's end."""
    sets = [(1034, 1.0), (1124, 0.5), (1624, 0.25)]
    rows = {blocksize: level_row(registry, blocksize, sets) for blocksize in (64, 256, 1000, 1024)}
    row = rows[64]
    assert all(np.array_equal(row, other) for other in rows.values())
    assert (row[:1034] == 0).all() and row[1034] == pytest.approx(1 / 240)
    assert row[1123] == pytest.approx(90 / 240)                 # the first glide, 90 samples in, when the second starts
    assert row[1124] == pytest.approx(90 / 240 + (0.5 - 90 / 240) / 240)
    assert row[1124 + 239] == 0.5 and (row[1124 + 239:1624] == 0.5).all()
    assert row[1624 + 239] == 0.25 and (row[1624 + 239:] == 0.25).all()


def test_feedback_cable_carries_exactly_one_block(registry):
    blocksize = 32
    with Engine(registry, 48000, blocksize) as engine:
        engine.load(patch_of(registry, """
            add keys kb voices=1
            add mix m
            add vca loop level=0.5
            connect kb.gate m.in1
            connect loop m.in2
            connect m loop
            connect m out
            set out.level 0.5
        """))
        engine.send("kb", 0, NoteOn(60))
        engine.send("kb", 1, NoteOff(60))
        data = np.concatenate([engine.process_block()[0].copy() for _ in range(4)])
    # The single-sample impulse comes back one block later at half level, then a quarter.
    assert data[0] == 0.5 and data[blocksize] == 0.25 and data[2 * blocksize] == 0.125
    assert np.count_nonzero(data) == 4


class Exploding(Module):
    type_name = "exploding"
    outputs = (Port("out"),)

    def process(self, inputs, params, outputs):
        outputs["out"][:] = np.nan


def test_nan_is_silenced_and_the_module_flagged(own_registry):
    registry = own_registry
    registry.add(Exploding, "tests", "0")
    with Engine(registry, 48000, 64) as engine:
        engine.load(patch_of(registry, "add exploding e\nadd vco o wave=sine\nconnect e out\nconnect o out\n"))
        block = engine.process_block()
        assert np.isfinite(block).all() and np.abs(block).max() > 0
        assert engine.stats["e"].faults == 1 and "NaN" in engine.stats["e"].last_fault


def test_edits_keep_the_state_of_modules_that_stay(registry):
    text = "add vco o wave=sine freq=100\nconnect o out\n"
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch_of(registry, text))
        a = [engine.process_block().copy() for _ in range(3)]
        engine.load(patch_of(registry, text + "add vco extra\n"))
        b = engine.process_block().copy()
    continuous = render(registry, text, 4)
    assert np.array_equal(np.concatenate(a + [b], axis=1), continuous)


class Wide(Module):
    type_name = "wide"
    outputs = (Port("out"),)

    @classmethod
    def channel_count(cls, params, inputs):
        return 20

    def process(self, inputs, params, outputs):
        outputs["out"][:] = 0.0


def test_too_many_channels_is_a_clear_error(own_registry):
    registry = own_registry
    registry.add(Wide, "tests", "0")
    with pytest.raises(SynthError, match="'w' would have 20 channels; a cable carries 1 to 16"):
        compile_patch(patch_of(registry, "add wide w\n"))


def test_renders_are_bit_identical_every_time(registry):
    text = (Path(__file__).parent.parent / "patches" / "basic.patch").read_text()
    digests = {hashlib.sha256(render(registry, text, 50).tobytes()).hexdigest() for _ in range(2)}
    assert len(digests) == 1


def test_a_connected_input_reads_its_cables_not_its_default(registry):
    # vca.gain rests at 1 when unconnected; a mono cable into the 2-voice
    # vca must replace that 1, not add to it.
    with Engine(registry, 48000, 64) as engine:
        engine.load(patch_of(registry, """
            add keys kb voices=2
            add lfo half wave=square freq=0.001 amp=0 offset=0.5
            add vca v
            connect kb.gate v
            connect half v.gain
            connect v out
            set out.level 0.5
        """))
        engine.send("kb", 0, NoteOn(60))
        engine.send("kb", 0, NoteOn(64))
        assert np.allclose(engine.process_block(), 0.5)


def test_every_voice_reaches_out_once_whatever_the_widths_beside_it(registry):
    # A 1-voice and a 4-voice source, into a mix and into out directly:
    # each voice must be counted once (a narrow cable is never tiled
    # across a wider input and then summed again).
    text = """
        add keys wide voices=4
        add keys solo voices=1
        add vca w level=0.1
        add vca s level=0.1
        connect wide.gate w
        connect solo.gate s
        {}
        set out.level 1
    """
    for wiring in ("add mix m\nconnect w m.in1\nconnect s m.in2\nconnect m out", "connect w out\nconnect s out"):
        with Engine(registry, 48000, 64) as engine:
            engine.load(patch_of(registry, text.format(wiring)))
            for note in (60, 62, 64, 65):
                engine.send("wide", 0, NoteOn(note))
            engine.send("solo", 0, NoteOn(48))
            assert np.allclose(engine.process_block(), 0.5), wiring     # 4 x 0.1 + 1 x 0.1


# -- fades at the edges of a performance ---------------------------------------------
# 5 ms (240 samples) of raised cosine at each end, whatever the block size,
# ending on the very sample asked for: cut mid-fade, a file ended in a click.

DRONE = "add vco a wave=sine freq=300\nconnect a out\n"
FADE = 0.5 - 0.5 * np.cos(np.pi * (np.arange(240) + 0.5) / 240)


def perform(registry, blocksize, frames=None, song=None, stop_after=None):
    """The left side of a performance played to its end, as render and
    play drive it, with the drone unfaded for as long."""
    from synthcli.engine.render import Performance
    with Engine(registry, 48000, blocksize) as engine:
        if song is None:
            engine.load(patch_of(registry, DRONE))
        performance = Performance(engine, song, frames)
        out = []
        while not performance.over:
            if len(out) == stop_after:
                performance.stop()
            out.append(performance.next_block()[0].copy())
    out = np.concatenate(out)
    return out, render(registry, DRONE, len(out) // blocksize, blocksize)[0]


def assert_gain(out, raw, start, gain):
    loud = np.abs(raw[start:start + len(gain)]) > 0.05   # where the ratio is well defined
    np.testing.assert_allclose((out / np.where(raw == 0, 1, raw))[start:start + len(gain)][loud], gain[loud],
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("blocksize", [64, 256, 1000])
def test_a_duration_fades_in_and_out_to_its_exact_last_sample(registry, blocksize):
    out, raw = perform(registry, blocksize, frames=48000)   # 1 s: no whole number of blocks of any of these
    assert len(out) == -(-48000 // blocksize) * blocksize and not out[48000:].any()
    assert_gain(out, raw, 0, FADE)
    np.testing.assert_array_equal(out[240:48000 - 240], raw[240:48000 - 240])
    assert_gain(out, raw, 48000 - 240, FADE[::-1])


def test_a_stop_fades_out_over_5_ms_across_short_blocks(registry):
    out, raw = perform(registry, 64, stop_after=10)
    assert len(out) == 14 * 64 and not out[640 + 240:].any()    # the fade spans four blocks of 64
    np.testing.assert_array_equal(out[240:640], raw[240:640])
    assert_gain(out, raw, 640, FADE[::-1])


def test_a_song_cut_while_it_still_sounds_fades_out(registry, monkeypatch):
    """A drone past the song's end is cut after TAIL_MAX: faded, not chopped."""
    from synthcli.sequencer import song as songs
    monkeypatch.setattr(songs, "TAIL_MAX", 0.5)
    out, raw = perform(registry, 256, song=songs.Song(registry, "tempo 120\nlength 1\n" + DRONE))
    end = np.flatnonzero(out)[-1] + 1
    assert 2.5 * 48000 <= end <= 2.5 * 48000 + 2 * 256
    np.testing.assert_array_equal(out[240:end - 240], raw[240:end - 240])
    assert_gain(out, raw, end - 240, FADE[::-1])


# -- edits while it plays ----------------------------------------------------------------

TONE = "add vco a wave=sine freq=300\nadd vca v level=0.5\nconnect a v\nadd lfo l freq=7 amp=0.2\n"


@pytest.mark.parametrize("edit, before, after", [
    ("remove v", TONE + "connect v out\n", TONE.replace("add vca v level=0.5\nconnect a v\n", "")),
    ("disconnect v out", TONE + "connect v out\n", TONE),
    ("connect v out", TONE, TONE + "connect v out\n"),
    ("connect l v.level", TONE + "connect v out\n", TONE + "connect v out\nconnect l v.level\n"),
], ids=["remove", "disconnect", "connect", "connect-modulation"])
@pytest.mark.parametrize("executor", ["inline", "processes"])
@pytest.mark.parametrize("size", [256, 64])
def test_an_edit_fades_what_it_takes_out_or_patches_in_over_5_ms(registry, edit, before, after, executor, size):
    """A module removed or a cable pulled out fades out over the edit's
    block, a cable patched in fades in, on the same raised cosine as a
    song's fades: each edit was a cut, and a 300 Hz sine at half scale
    jumped by 15 times its steepest step. The fade takes whole blocks, at
    least 5 ms: one of 256 samples, four of 64 (one of them, 1.3 ms, still
    ticked). Outside it each patch plays exactly what it plays alone, and
    every executor plays the same."""
    blocks, fade = 12, size * -(-240 // size)
    with Engine(registry, 48000, size, executor=executor, workers=1) as engine:
        engine.load(patch_of(registry, before))
        out = [engine.process_block().copy() for _ in range(blocks)]
        engine.load(patch_of(registry, after))
        out += [engine.process_block().copy() for _ in range(blocks)]
    out = np.concatenate(out, axis=1)[0]
    old = render(registry, before, 2 * blocks, size)[0]
    new = render(registry, after, 2 * blocks, size)[0]
    edited = slice(blocks * size, blocks * size + fade)
    np.testing.assert_array_equal(out[:edited.start], old[:edited.start])
    np.testing.assert_array_equal(out[edited.stop:], new[edited.stop:])
    steepest = max(np.abs(np.diff(old[fade:])).max(), np.abs(np.diff(new[fade:])).max())
    assert np.abs(np.diff(out[edited.start - 1:edited.stop + 1])).max() <= steepest * 1.001
    ramp = 0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    if edit.startswith("connect l"):   # the level swings from 0.5 by the LFO: its swing fades in
        np.testing.assert_allclose(out[edited], old[edited] + (new[edited] - old[edited]) * (1.0 - ramp), atol=1e-12)
    else:                              # the sine comes or goes on the ramp
        sine = (old if edit.startswith(("remove", "disconnect")) else new)[edited]
        gone = edit.startswith(("remove", "disconnect"))
        np.testing.assert_allclose(out[edited], sine * (ramp if gone else 1.0 - ramp), atol=1e-12)


def test_a_module_replaced_by_another_type_in_one_edit_drops_its_glides(registry):
    """`remove a` and `add vco a` pasted as one edit while a.level glided:
    the glide of a parameter the new module does not have raised KeyError
    in the next block and stopped the engine."""
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch_of(registry, "add vca a\nconnect a out\n"))
        engine.process_block()
        engine.set("a", "level", 0.25)
        engine.load(patch_of(registry, "add vco a wave=sine freq=300\nconnect a out\n"))
        out = np.concatenate([engine.process_block().copy() for _ in range(8)], axis=1)
    assert np.abs(out[0, -256:]).max() > 0.5


def test_a_set_made_during_an_edits_fades_outlives_their_end(registry):
    """The block after an edit the engine swaps to the edited patch's own
    schedule; a set made since (an OSC bundle that adds a module and sets
    it) must not glide back to the value that patch was written with."""
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch_of(registry, TONE))
        engine.process_block()
        engine.load(patch_of(registry, TONE + "connect v out\n"))
        engine.set("v", "level", 0.25)
        out = np.concatenate([engine.process_block().copy() for _ in range(8)], axis=1)
    assert engine.params[("v", "level")] == 0.25
    assert abs(np.abs(out[0, -512:]).max() - 0.25) < 0.01


LOOP = """add vco a wave=sine freq=300
add mix m
add vca loop level=0.9
connect a m.in1
connect loop m.in2
connect m loop
connect m out
set out.level 0.2
add vco b wave=saw freq=200
add vca mute level=0
connect b mute
"""


@pytest.mark.parametrize("edit", ["add lfo z", "connect mute out", "remove mute"])
@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_an_edit_elsewhere_leaves_a_feedback_loop_untouched(registry, edit, executor):
    """A cable that closes a loop carries the previous block; every edit
    rebuilds the arena it lives in, and the loop lost that block: a gap
    that went round the loop again and again. An edit that adds nothing
    audible (here a module left unpatched, a silent cable patched in or
    taken out, which fade over a block of their own) must leave the loop's
    sound exactly as it was."""
    blocks = 12
    with Engine(registry, 48000, 256, executor=executor, workers=1) as engine:
        engine.load(patch_of(registry, LOOP + "connect mute out\n" * edit.startswith("remove")))
        out = [engine.process_block().copy() for _ in range(blocks)]
        after = LOOP.replace("connect b mute\n", "") if edit.startswith("remove") else LOOP
        engine.load(patch_of(registry, after.replace("add vca mute level=0\n", "") if edit.startswith("remove")
                             else after + edit + "\n"))
        out += [engine.process_block().copy() for _ in range(blocks)]
    np.testing.assert_array_equal(np.concatenate(out, axis=1), render(registry, LOOP, 2 * blocks))


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_module_replaced_in_one_edit_fades_out_beside_its_successor(registry, executor):
    """`remove a` and `add lfo a` pasted as one edit: the vco went silent
    and the lfo came in at full level between two samples. Now the vco
    plays the edit's block on, fading out under the name a~, while the
    lfo, started afresh, fades in through the cable the edit gave it."""
    before = TONE + "connect v out\n"
    after = before.replace("add vco a wave=sine freq=300", "add lfo a wave=sine freq=450 amp=1")
    blocks, size = 12, 256
    with Engine(registry, 48000, size, executor=executor, workers=1) as engine:
        engine.load(patch_of(registry, before))
        out = [engine.process_block().copy() for _ in range(blocks)]
        engine.load(patch_of(registry, after))
        assert "a~" in engine.schedule.by_name
        out += [engine.process_block().copy() for _ in range(blocks)]
        assert set(engine.schedule.by_name) == set(patch_of(registry, after).modules)
    out = np.concatenate(out, axis=1)[0]
    old = render(registry, before, 2 * blocks)[0]
    new = render(registry, after, blocks)[0]   # the lfo starts at the edit, as from scratch
    edited = slice(blocks * size, (blocks + 1) * size)
    down = 0.5 + 0.5 * np.cos(np.pi * (np.arange(size) + 0.5) / size)
    np.testing.assert_array_equal(out[:edited.start], old[:edited.start])
    np.testing.assert_allclose(out[edited], old[edited] * down + new[:size] * (1 - down), atol=1e-12)
    np.testing.assert_array_equal(out[edited.stop:], new[size:])


def test_changing_a_voice_count_fades_the_old_voices_out(registry):
    """`set k.voices 3` rebuilds the keys and every module whose width
    follows it; the chord that played cut off between two samples."""
    chord = ("add keys k voices=2\nadd vco a wave=sine\nadd vca v level=0.3\n"
             "connect k.voct a.voct\nconnect a v\nconnect k.gate v.gain\nconnect v out\n")
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch_of(registry, chord))
        engine.send("k", 0, NoteOn(60))
        engine.send("k", 0, NoteOn(67))
        out = [engine.process_block().copy() for _ in range(12)]
        engine.load(patch_of(registry, chord.replace("voices=2", "voices=3")))
        assert {"k~", "a~", "v~"} <= set(engine.schedule.by_name)
        out += [engine.process_block().copy() for _ in range(12)]
    out = np.concatenate(out, axis=1)[0]
    steepest = np.abs(np.diff(out[:12 * 256])).max()
    assert np.abs(out[:12 * 256]).max() > 0.3   # the chord played
    assert np.abs(np.diff(out[12 * 256 - 1:])).max() <= steepest   # and faded, no step
    assert not out[13 * 256:].any()   # the new voices hold no note


def test_a_module_removed_and_added_back_as_another_type_a_block_later_plays(registry):
    """The second edit comes while the first one's fades still play: the
    schedule then holds the removed vco, which the last patch heard no
    longer has. It raised KeyError."""
    with Engine(registry, 48000, 256) as engine:
        engine.load(patch_of(registry, TONE + "connect v out\n"))
        engine.process_block()
        engine.load(patch_of(registry, "add vca v level=0.5\nadd lfo l freq=7 amp=0.2\nconnect l v.level\n"
                                       "connect v out\n"))
        engine.process_block()
        engine.load(patch_of(registry, "add lfo a wave=sine freq=300\nadd vca v level=0.5\nconnect a v\n"
                                       "connect v out\n"))
        out = np.concatenate([engine.process_block().copy() for _ in range(8)], axis=1)
    assert abs(np.abs(out[0, -512:]).max() - 0.5) < 0.01


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_cable_into_a_choice_is_rounded_to_a_choice_and_kept_within_them(registry, executor):
    """An lfo into a choice makes indices no choice has: each module took
    them its own way (a vco's wave truncated 0.6 to sine and wrapped -1 to
    its last wave; a vcf's mode of 4 raised IndexError and was silenced)."""
    patch = Patch(registry)
    offsets = {"lo": -1.0, "mid": 0.6, "hi": 5.0, "half": 2.5}
    patch.load_text("add vco o wave=saw freq=110\nadd vcf f mode=notch cutoff=800\nconnect o f\nconnect f out\n"
                    + "".join(f"add lfo {n} amp=0 offset={v}\nadd noise {n}n\nconnect {n} {n}n.color\n"
                              for n, v in offsets.items())
                    + "add lfo swing freq=5 amp=3\nconnect swing f.mode\nconnect swing o.wave\n")
    with Engine(registry, 48000, 256, executor=executor, workers=1) as engine:
        engine.load(patch)
        out = np.concatenate([engine.process_block()[0].copy() for _ in range(40)])
        seen = {n: engine.arena[rows.start:rows.stop].copy() for n in offsets
                for rows in [engine.schedule.node(f"{n}n").param_rows["color"]]}
        mode = engine.schedule.node("f").param_rows["mode"]
        modes = engine.arena[mode.start:mode.stop].copy()
        stats = engine.module_stats()
    assert {n: set(v.ravel()) for n, v in seen.items()} == {"lo": {0.0}, "mid": {1.0}, "hi": {2.0}, "half": {2.0}}
    assert set(modes.ravel()) <= {0.0, 1.0, 2.0, 3.0}
    assert not any(s["faults"] for s in stats.values()), stats
    assert np.abs(out[4800:]).max() > 0.1
