"""MIDI file playback: timing, controllers, drums, messy files, corrupt
files, real files from music21, and play == render."""
import json
import resource
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from synthcli.api import NoteOff, NoteOn
from synthcli.engine.core import Engine
from synthcli.midi import MidiSong, midi_performance
from synthcli.midi.voices import MAX_GAIN, ChannelMap, bent, default_patch_text, level_gain
from synthcli.modules.drums import Drums
from synthcli.modules.dynamics import SOFT_CLIP_KNEE
from synthcli.modules.keys import Keys
from synthcli.testing import check_module, peak_frequency, render_module, rms

ROOT = Path(__file__).parent.parent
DATA = ROOT / "tests" / "data" / "midi"
SR = 48000
#: A voice patch whose output is channel 1's gate: onsets are exact edges.
GATE_PATCH = "add keys ch1 voices=1\nconnect ch1.gate out\n"


def save(tmp_path, tracks, name="t.mid", tpb=480, kind=1):
    mid = mido.MidiFile(type=kind, ticks_per_beat=tpb)
    for messages in tracks:
        mid.tracks.append(mido.MidiTrack(messages))
    path = tmp_path / name
    mid.save(str(path))
    return path


def notes(channel, pitches, length=480, gap=0, velocity=100):
    """note_on/note_off pairs one after another (delta times in ticks)."""
    out = []
    for k, pitch in enumerate(pitches):
        out.append(mido.Message("note_on", note=pitch, velocity=velocity, channel=channel, time=gap if k else 0))
        out.append(mido.Message("note_off", note=pitch, velocity=0, channel=channel, time=length))
    return out


def render(registry, path, blocksize=256, patch=None, seconds=None, start=0):
    """The whole performance (from bar ``start``, from 0) as a (2, samples) array."""
    with Engine(registry, SR, blocksize) as engine:
        performance = midi_performance(engine, str(path), patch, None, None if seconds is None else round(seconds * SR),
                                       start)
        chunks = []
        while not performance.over:
            chunks.append(performance.next_block().copy())
        return np.concatenate(chunks, axis=1)[:, :performance.length]



def window(x, start, stop):
    return x[:, int(start * SR):int(stop * SR)]



def centroid(x):
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float((spectrum * freqs).sum() / spectrum.sum())


# -- timing ---------------------------------------------------------------------

def tempo_file(tmp_path):
    """Notes across three tempo changes, at ticks that fall between samples."""
    tpb = 96
    tempo = [mido.MetaMessage("set_tempo", tempo=500000, time=0),
             mido.MetaMessage("set_tempo", tempo=333331, time=137),
             mido.MetaMessage("set_tempo", tempo=812347, time=301),
             mido.MetaMessage("set_tempo", tempo=421111, time=211)]
    starts = [40, 150, 290, 500, 700, 851, 1003]
    events, now = [], 0
    for k, tick in enumerate(starts):
        events.append(mido.Message("note_on", note=60, velocity=100, time=tick - now))
        events.append(mido.Message("note_off", note=60, velocity=0, time=20))
        now = tick + 20
    path = save(tmp_path, [tempo, events], tpb=tpb)
    changes = [(0, 500000), (137, 333331), (438, 812347), (649, 421111)]

    def ideal(tick):   # seconds, exactly, from the tempo map
        seconds, last_tick, last_tempo = Fraction(0), 0, 500000
        for at, value in changes:
            if at >= tick:
                break
            seconds += Fraction((at - last_tick) * last_tempo, tpb * 10**6)
            last_tick, last_tempo = at, value
        return seconds + Fraction((tick - last_tick) * last_tempo, tpb * 10**6)

    return path, [ideal(t) * SR for t in starts]


@pytest.mark.parametrize("blocksize", [64, 256, 1000])
def test_tempo_changes_put_onsets_on_their_exact_samples(registry, tmp_path, blocksize):
    path, ideal = tempo_file(tmp_path)
    gate = render(registry, path, blocksize, GATE_PATCH)[0] > 0.5
    onsets = np.flatnonzero(gate[1:] & ~gate[:-1]) + 1
    assert len(onsets) == len(ideal)
    assert np.all(np.abs(onsets - np.array([float(t) for t in ideal])) <= 1.0), (onsets, ideal)


def test_from_a_bar_plays_its_notes_on_the_whole_files_samples_with_the_controllers_before_it(registry, tmp_path):
    """`--from 3` in a file of 3/4 bars that turns 2/4 at bar 3, its tempo
    changed in bar 2 and again in bar 3: every note from bar 3 on lands on
    the whole file's sample, counted from bar 3's. The volume turned down
    in bar 2 holds from the start (chased, as a sequencer does), so bar 3's
    note is as quiet as in the whole file."""
    meta = [mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=500000, time=0),
            mido.MetaMessage("set_tempo", tempo=400000, time=2000),
            mido.MetaMessage("time_signature", numerator=2, denominator=4, time=880),    # tick 2880: bar 3
            mido.MetaMessage("set_tempo", tempo=600000, time=120)]
    played = [mido.Message("note_on", note=60, velocity=100, time=0),
              mido.Message("note_off", note=60, velocity=0, time=400),
              mido.Message("control_change", control=7, value=30, time=1100),            # tick 1500
              mido.Message("note_on", note=62, velocity=100, time=1000),                 # 2500: bar 2
              mido.Message("note_off", note=62, velocity=0, time=300),
              mido.Message("note_on", note=64, velocity=100, time=280),                  # 3080: bar 3
              *notes(0, [64, 65, 67, 69], length=300, gap=661)[1:]]                      # then a bar each
    path = save(tmp_path, [meta, played])
    song = MidiSong(path)
    assert song.bar_ticks() == [0, 1440, 2880, 3840, 4800, 5760]
    whole, part = (render(registry, path, 64, GATE_PATCH, start=start)[0] > 0.5 for start in (0, 2))
    origin = round((Fraction(2000, 480) * Fraction(1, 2) + Fraction(880, 480) * Fraction(2, 5)) * SR)   # bar 3's
    edges = [np.flatnonzero(gate[1:] & ~gate[:-1]) + 1 for gate in (whole, part)]
    assert len(edges[1]) == 4 and np.array_equal(edges[1], edges[0][edges[0] >= origin] - origin), (edges, origin)
    whole, part = render(registry, path)[0], render(registry, path, start=2)[0]
    note = slice(edges[1][0] + 2400, edges[1][0] + 9600)
    shifted = slice(note.start + origin, note.stop + origin)
    assert abs(rms(part[note]) / rms(whole[shifted]) - 1) < 0.1, (rms(part[note]), rms(whole[shifted]))
    assert rms(whole[2400:9600]) > 4 * rms(whole[shifted])   # the first note, at the volume before


def test_from_a_bar_sounds_the_notes_held_across_it_and_not_those_ending_on_it(registry, tmp_path):
    """A pad struck in bar 1 and held into bar 3 sounds from `--from 2`'s
    first sample until its own end, as in the whole file; a note that ends
    on bar 2's first tick is not chased, and one struck again there sounds
    once. Each held gate adds 0.1, so the level counts the notes."""
    played = [mido.Message("note_on", note=48, velocity=100, time=0),       # held over bars 1-3
              mido.Message("note_on", note=60, velocity=100, time=0),       # ends on bar 2's tick
              mido.Message("note_on", note=67, velocity=100, time=960),     # struck again at bar 2
              mido.Message("note_off", note=60, velocity=0, time=960),      # tick 1920: bar 2
              mido.Message("note_off", note=67, velocity=0, time=0),
              mido.Message("note_on", note=67, velocity=100, time=0),
              mido.Message("note_off", note=67, velocity=0, time=480),
              mido.Message("note_off", note=48, velocity=0, time=2400)]     # tick 4800: bar 3
    path = save(tmp_path, [played])
    counting = "add keys ch1 voices=4\nadd vca a level=0.1\nconnect ch1.gate a\nconnect a out\n"
    whole, part = (render(registry, path, 64, counting, start=start)[0] for start in (0, 1))
    origin, settled = 2 * SR, 300   # bar 2 at 120 bpm; out fades in over its first samples
    assert np.allclose(part[settled:3 * SR + 1], whole[origin + settled:5 * SR + 1], atol=1e-6)
    assert np.allclose(part[settled:SR // 2], 0.2, atol=1e-6) and np.allclose(part[SR // 2 + 1:3 * SR], 0.1, atol=1e-6)
    assert not part[3 * SR + 1:].any()
    # A key let go while the pedal holds it sounds on to the pedal's lift, and
    # one never let go to the file's end (nothing but meta events after it).
    played = [mido.Message("control_change", control=64, value=127, time=0),
              mido.Message("note_on", note=50, velocity=100, time=0),
              mido.Message("note_off", note=50, velocity=0, time=480),     # the pedal holds it
              mido.Message("note_on", note=55, velocity=100, time=480),    # never let go
              mido.Message("control_change", control=64, value=0, time=1920),   # tick 2880: 1 s into bar 2
              mido.MetaMessage("marker", text="end", time=1920)]            # tick 4800
    path = save(tmp_path, [played], name="pedal.mid")
    whole, part = (render(registry, path, 64, counting, start=start)[0] for start in (0, 1))
    assert np.allclose(part[settled:SR], 0.2, atol=1e-6) and np.allclose(part[SR + 1:3 * SR], 0.1, atol=1e-6)
    assert np.allclose(part[settled:3 * SR], whole[origin + settled:5 * SR], atol=1e-6)


def test_a_corrupt_time_signature_is_not_counted_for_ever(tmp_path):
    """Counting bars (check, --from) looped for ever on a signature of 0
    beats and for days on one of 4/2**40 (one byte of the file): 0 beats
    says nothing, and over MAX_BARS bars are too many to count."""
    from synthcli.errors import SynthError
    from synthcli.language import MAX_BARS
    for numerator, denominator, bars in ((0, 4, 2), (4, 2 ** 40, None)):
        meta = [mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0)]
        song = MidiSong(save(tmp_path, [meta, notes(0, [60, 62, 64, 65, 67, 69, 71, 72])]))
        assert song.bars() == bars
        if bars is None:
            with pytest.raises(SynthError, match=rf"this MIDI file has over {MAX_BARS} bars"):
                song.bar_ticks()


def test_the_files_length_from_its_tempo_changes_is_its_last_events_sample(tmp_path):
    """end_sample reads the tempo map alone (every event took seconds for
    200,000 notes): from every bar, it is the last event's time as the
    player times each event."""
    song = MidiSong(tempo_file(tmp_path)[0])
    assert len(song.summary.tempos) > 1
    for start in song.bar_ticks():
        *_, (last, _) = song._timed(SR, start)
        assert song.end_sample(SR, start) == last > 0
    assert song.end_sample(SR, song.summary.last_tick + 1) == 0


def test_type_0_and_type_1_render_the_same(registry, tmp_path):
    meta = [mido.MetaMessage("set_tempo", tempo=400000, time=0),
            mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=600000, time=700)]
    lead = [mido.Message("program_change", program=81, channel=0, time=0),
            mido.Message("control_change", control=10, value=20, channel=0, time=0)]
    lead += notes(0, [60, 64, 67, 72], length=200, gap=40)
    lead.insert(5, mido.Message("pitchwheel", pitch=3000, channel=0, time=10))
    drums = notes(9, [36, 42, 38, 42, 36], length=10, gap=230)
    type1 = save(tmp_path, [meta, lead, drums], "one.mid")
    merged = mido.merge_tracks(mido.MidiFile(str(type1)).tracks)
    type0 = save(tmp_path, [merged], "zero.mid", kind=0)
    assert mido.MidiFile(str(type0)).type == 0
    a, b = render(registry, type1), render(registry, type0)
    assert a.shape == b.shape and np.array_equal(a, b)


def test_events_are_read_a_block_at_a_time(registry, tmp_path):
    path = save(tmp_path, [notes(0, [60 + k % 12 for k in range(2000)], length=30, gap=30)])
    with Engine(registry, SR, 256) as engine:
        performance = midi_performance(engine, str(path))
        for _ in range(50):
            performance.next_block()
            # only events of the block about to render are ever handed over
            assert len(engine._events) <= 4


# -- controllers ------------------------------------------------------------------

ORGAN = mido.Message("program_change", program=16, channel=0, time=0)


def test_velocity_volume_and_pan_are_heard(registry, tmp_path):
    track = [ORGAN,
             mido.Message("note_on", note=60, velocity=40, time=0),
             mido.Message("note_off", note=60, time=480),
             mido.Message("note_on", note=60, velocity=120, time=240),
             mido.Message("note_off", note=60, time=480),
             mido.Message("control_change", control=7, value=50, time=240),
             mido.Message("note_on", note=60, velocity=120, time=0),
             mido.Message("note_off", note=60, time=480),
             mido.Message("control_change", control=10, value=0, time=240),
             mido.Message("note_on", note=60, velocity=120, time=0),
             mido.Message("note_off", note=60, time=480)]
    x = render(registry, save(tmp_path, [track]))
    soft, loud = rms(window(x, 0.1, 0.4)), rms(window(x, 0.85, 1.15))
    quiet = rms(window(x, 1.6, 1.9))
    assert 2.5 < loud / soft < 3.5                       # velocity 120 vs 40
    assert 3.5 < loud / quiet < 4.6                      # CC 7 from 100 to 50: (100/50)^2
    left, right = window(x, 2.35, 2.65)
    assert rms(left) > 0.005 and rms(right) < 1e-6 * rms(left)   # CC 10 = 0: hard left


def test_a_pan_and_a_bend_set_before_a_channels_first_note_are_where_it_starts(registry, tmp_path):
    """As volume and expression are: the MIDI audit heard a part panned
    hard left at tick 0 start as a smear from the centre, and a bend
    glide in, over their first 5 ms."""
    track = [ORGAN, mido.Message("control_change", control=10, value=0),
             mido.Message("pitchwheel", pitch=8191),
             mido.Message("note_on", note=69, velocity=100, time=0), mido.Message("note_off", note=69, time=480)]
    path = save(tmp_path, [track])
    summary = MidiSong(path).summary
    assert summary.pans == {0: 0} and summary.bends == {0: 8191}
    x = render(registry, path)
    left, right = window(x, 0.0, 0.005)
    assert rms(left) > 1e-4 and rms(right) < 1e-6 * rms(left)   # hard left from the first sample
    osc = ChannelMap(registry, summary).patch.modules["ch1osc"]
    assert osc.params["freq"] == bent(osc.type.cls.param("freq").default, 8191)   # the oscillator starts bent


def test_pitch_bend_moves_the_pitch_on_its_sample(registry, tmp_path):
    track = [mido.Message("program_change", program=80, time=0),   # lead: a triangle
             mido.Message("note_on", note=69, velocity=100, time=0),
             mido.Message("pitchwheel", pitch=8191, time=480),
             mido.Message("pitchwheel", pitch=-8192, time=480),
             mido.Message("note_off", note=69, time=480)]
    x = render(registry, save(tmp_path, [track]))[0]
    for start, expected in ((0.1, 440.0), (0.6, 440.0 * 2 ** (2 * 8191 / 8192 / 12)), (1.1, 440 * 2 ** (-2 / 12))):
        assert abs(peak_frequency(x[int(start * SR):int((start + 0.35) * SR)]) - expected) < 1.0


def test_sustain_holds_released_notes_until_the_pedal_lifts(registry, tmp_path):
    def take(pedal):
        track = [ORGAN]
        if pedal:
            track.append(mido.Message("control_change", control=64, value=127, time=0))
        track += [mido.Message("note_on", note=60, velocity=100, time=0),
                  mido.Message("note_off", note=60, time=120),
                  mido.Message("control_change", control=64, value=0, time=600)]
        return render(registry, save(tmp_path, [track], f"p{pedal}.mid"))

    held, free = take(True), take(False)
    assert rms(window(held, 0.3, 0.7)) > 0.01
    assert rms(window(free, 0.3, 0.7)) < 1e-4
    assert rms(window(held, 1.0, 1.2)) < 1e-4           # released when the pedal lifted at 0.9 s


def test_expression_scales_the_level_with_volume(registry, tmp_path):
    track = [ORGAN,
             mido.Message("note_on", note=69, velocity=100, time=0),
             mido.Message("note_off", note=69, time=480),
             mido.Message("control_change", control=11, value=64, time=240),
             mido.Message("note_on", note=69, velocity=100, time=0),
             mido.Message("note_off", note=69, time=480),
             mido.Message("control_change", control=7, value=50, time=240),
             mido.Message("note_on", note=69, velocity=100, time=0),
             mido.Message("note_off", note=69, time=480)]
    x = render(registry, save(tmp_path, [track]))
    full, expressed = rms(window(x, 0.1, 0.4)), rms(window(x, 0.85, 1.15))
    both = rms(window(x, 1.6, 1.9))
    assert 3.8 < full / expressed < 4.1          # CC 11 from 127 to 64: (127/64)^2, not CC 7's (100/64)^2
    assert 3.9 < expressed / both < 4.1          # then CC 7 from 100 to 50 on top: (100/50)^2


def test_reset_all_controllers_lifts_the_pedal_and_resets_expression_and_bend(registry, tmp_path):
    track = [ORGAN,
             mido.Message("control_change", control=7, value=50, time=0),     # kept by the reset
             mido.Message("control_change", control=11, value=32, time=0),
             mido.Message("control_change", control=64, value=127, time=0),
             mido.Message("pitchwheel", pitch=8191, time=0),
             mido.Message("note_on", note=69, velocity=100, time=0),
             mido.Message("note_off", note=69, time=240),                     # the pedal holds it
             mido.Message("control_change", control=121, value=0, time=240),  # at 0.5 s
             mido.Message("note_on", note=69, velocity=100, time=240),
             mido.Message("note_off", note=69, time=480)]
    x = render(registry, save(tmp_path, [track]))
    before, after = window(x, 0.3, 0.45), window(x, 0.85, 1.2)
    assert abs(peak_frequency(before[0]) - 440.0 * 2 ** (2 * 8191 / 8192 / 12)) < 2.0
    assert rms(window(x, 0.6, 0.7)) < 1e-3 * rms(before)      # the pedal lifted: the held note ended
    assert abs(peak_frequency(after[0]) - 440.0) < 2.0        # no bend
    assert 15.0 < rms(after) / rms(before) < 16.5             # expression 127 again: (127/32)^2, volume still 50


@pytest.mark.parametrize("control", [120, 123])
def test_all_sound_off_and_all_notes_off_end_the_channels_notes(registry, tmp_path, control):
    """Channel 1 (hard left) holds a chord and a note its pedal keeps; the
    controller at 0.5 s ends them all, and channel 2 (hard right) plays on."""
    first = [ORGAN,
             mido.Message("control_change", control=10, value=0, time=0),
             mido.Message("control_change", control=64, value=127, time=0),
             mido.Message("note_on", note=67, velocity=100, time=0),
             mido.Message("note_on", note=60, velocity=100, time=0),
             mido.Message("note_on", note=64, velocity=100, time=0),
             mido.Message("note_off", note=67, time=120),                     # the pedal keeps it
             mido.Message("control_change", control=control, value=0, time=360),
             mido.Message("note_off", note=60, time=480),
             mido.Message("note_off", note=64, time=0)]
    second = [mido.Message("program_change", program=16, channel=1, time=0),
              mido.Message("control_change", control=10, value=127, channel=1, time=0)]
    second += notes(1, [48], length=1440)
    x = render(registry, save(tmp_path, [first, second]))
    left, right = window(x, 0.3, 0.45)
    assert rms(left) > 0.01 and rms(right) > 0.01
    left, right = window(x, 0.6, 0.95)
    assert rms(left) < 1e-4                                   # every note of channel 1 ended at 0.5 s
    assert rms(right) > 0.01 and abs(peak_frequency(right) - 130.81) < 1.0


def test_a_live_keyboards_wheel_bends_through_an_arp_a_glide_and_a_quantizer(registry, monkeypatch):
    """The bend reaches every oscillator the keys' pitch drives, on
    through modules that pass a pitch on, and no further: not a filter
    whose cutoff the pitch opens, nor what a mix's audio feeds."""
    from synthcli.control import Control, LiveSound
    from synthcli.midi.live import Keyboard
    from synthcli.repl.session import Session
    session = Session(registry, LiveSound())
    control = Control(session)
    for line in ("add keys kb voices=2", "add arp a", "add slew g", "add quant q", "add vco direct", "add vco arped",
                 "add supersaw glided freq=440", "add fm scaled", "add vcf f", "add mix m", "add vco beyond",
                 "connect kb.voct direct.voct", "connect kb a", "connect a.voct arped.voct", "connect kb.voct g",
                 "connect g glided.voct", "connect g q", "connect q scaled.voct", "connect kb.voct f.cutoff",
                 "connect kb.voct m.in1", "connect m beyond.voct"):
        session.execute(line)
    bent = {}
    monkeypatch.setattr(session.sound, "set", lambda name, param, value: bent.__setitem__((name, param), value))
    Keyboard(control, None, print)([(0, mido.Message("pitchwheel", pitch=8191))])
    up = 2.0 ** (2 * 8191 / 8192 / 12)
    assert bent == {("direct", "freq"): pytest.approx(261.6256 * up), ("arped", "freq"): pytest.approx(261.6256 * up),
                    ("glided", "freq"): pytest.approx(440 * up), ("scaled", "freq"): pytest.approx(261.6256 * up)}


def test_a_frequency_set_while_the_wheel_is_held_stays_bent(registry, monkeypatch):
    """The OSC audit: with the wheel held at +2 semitones, a knob or an
    edit that set the bent oscillator's freq played it unbent (504.5 Hz
    where 566.3 was due) until the wheel moved again."""
    from synthcli.control import Control, LiveSound
    from synthcli.midi.live import Keyboard
    from synthcli.repl.session import Session
    session = Session(registry, LiveSound())
    for line in ("add keys kb", "add vco o freq=440", "add vco other freq=440", "connect kb.voct o.voct"):
        session.execute(line)
    control = Control(session)
    sent = []
    monkeypatch.setattr(session.sound, "set", lambda name, param, value: sent.append((name, param, value)))
    keyboard = Keyboard(control, None, print)
    keyboard([(0, mido.Message("pitchwheel", pitch=4096))])           # +1 semitone
    up = 2.0 ** (1 / 12)
    assert sent == [("o", "freq", pytest.approx(440 * up))]
    control.knob("o", "freq", 300.0)
    control.execute("set o.freq 200")
    control.knob("other", "freq", 300.0)                                # not bent: nothing drives its pitch
    assert sent[1:] == [("o", "freq", pytest.approx(300 * up)), ("o", "freq", pytest.approx(200 * up)),
                        ("other", "freq", 300.0)]
    assert session.patch.modules["o"].params["freq"] == 200             # the patch keeps the unbent value
    keyboard([(0, mido.Message("pitchwheel", pitch=0))])
    assert sent[-1] == ("o", "freq", pytest.approx(200))


def test_a_reload_or_a_songs_next_version_keeps_a_held_bend(registry, monkeypatch, tmp_path):
    """An edit that reloads the patch, `stop`, `play` and a playing song's
    next version all send the engine the patch as text, and the patch
    keeps the unbent frequency: the held wheel snapped back to the unbent
    pitch there until it moved again. What is saved stays unbent."""
    from synthcli.control import Control, LiveSound
    from synthcli.midi.live import Keyboard
    from synthcli.repl.session import Session
    from synthcli.sequencer.song import Song
    session = Session(registry, LiveSound())
    for line in ("add keys kb", "add vco o freq=440", "add vco other freq=440", "connect kb.voct o.voct",
                 "connect o out", "tempo 120", 'pattern kb "c4 e4"'):
        session.execute(line)
    control = Control(session)
    sent = []
    for verb in ("load", "replace_song", "start_song"):
        monkeypatch.setattr(session.sound, verb, lambda text, *rest, verb=verb: sent.append((verb, text)))
    keyboard = Keyboard(control, None, print)
    keyboard([(0, mido.Message("pitchwheel", pitch=8191))])
    up = 2.0 ** (2 * 8191 / 8192 / 12)

    def freqs(text):
        modules = Song(registry, text).patch.modules
        return modules["o"].params["freq"], modules["other"].params["freq"]

    for line in ("add vca a", "play", "add vca b", "stop"):
        control.execute(line)
    assert [verb for verb, _ in sent] == ["load", "start_song", "replace_song", "load"], sent
    for verb, text in sent:
        assert freqs(text) == (pytest.approx(440 * up), 440), (verb, text)
    control.execute(f"save {tmp_path / 'kept.seq'}")
    assert freqs((tmp_path / "kept.seq").read_text()) == (440, 440)
    control.execute("disconnect kb.voct o.voct")    # no longer the keys': the next move of the wheel lets it go
    keyboard([(0, mido.Message("pitchwheel", pitch=0))])
    control.execute("add vca c")
    assert freqs(sent[-1][1]) == (440, 440) and not session.bends


@pytest.mark.parametrize("number", [120, 123])
def test_a_live_keyboard_lets_go_of_held_and_sustained_notes_on_all_notes_off(registry, monkeypatch, number):
    """`synth play --midi-in` and the REPL's `midi in` handle these
    controllers apart from MIDI files (synthcli.midi.live.Keyboard)."""
    from synthcli.control import Control, LiveSound
    from synthcli.midi.live import Keyboard
    from synthcli.repl.session import Session
    control = Control(Session(registry, LiveSound()))
    played = []
    monkeypatch.setattr(control, "note", lambda pitch, velocity, on, name=None: played.append((pitch, on)))
    keyboard = Keyboard(control, None, print)
    keyboard([(0, message) for message in (
        mido.Message("control_change", control=64, value=127),
        mido.Message("note_on", note=64, velocity=100),
        mido.Message("note_off", note=64),                        # the pedal keeps it
        mido.Message("note_on", note=69, velocity=100))])        # held
    assert played == [(64, True), (69, True)]
    keyboard([(0, mido.Message("control_change", control=number, value=0))])
    assert played[2:] == [(64, False), (69, False)]
    keyboard([(0, mido.Message("control_change", control=64, value=0))])
    assert len(played) == 4                                       # released once, not again at the pedal


def test_a_live_keyboards_reset_all_controllers_lifts_the_pedal_and_centres_the_wheel(registry, monkeypatch):
    """CC 121, many a keyboard's panic button, is what a MIDI file's player
    already did with it: the keys the pedal held end, a key still down
    plays on, and the bend is undone. (Taken at the keyboard's seam: what
    it sends on is recorded; tests/test_midi_live.py plays a keyboard
    through JACK into the engine.)"""
    from synthcli.control import Control, LiveSound
    from synthcli.midi.live import Keyboard
    from synthcli.repl.session import Session
    session = Session(registry, LiveSound())
    for line in ("add keys kb voices=2", "add vco o freq=200", "connect kb.voct o.voct"):
        session.execute(line)
    control = Control(session)
    played, bent = [], []
    monkeypatch.setattr(control, "note", lambda pitch, velocity, on, name=None: played.append((pitch, on)))
    monkeypatch.setattr(session.sound, "set", lambda name, param, value: bent.append((name, param, value)))
    keyboard = Keyboard(control, None, print)
    keyboard([(0, message) for message in (
        mido.Message("control_change", control=64, value=127),
        mido.Message("note_on", note=64, velocity=100),
        mido.Message("note_off", note=64),                        # the pedal keeps it
        mido.Message("note_on", note=69, velocity=100),           # held
        mido.Message("pitchwheel", pitch=8191))])
    keyboard([(0, mido.Message("control_change", control=121, value=0))])
    assert played == [(64, True), (69, True), (64, False)] and keyboard.held == {69} and not keyboard.pedal
    assert bent[-1] == ("o", "freq", pytest.approx(200.0))


def test_a_channel_gets_a_voice_for_every_key_it_holds_at_once_its_pedals_included(registry, tmp_path):
    """The MIDI audit: twelve notes under the sustain pedal on eight voices
    lost the four struck first, the bass of every pedalled piano passage.
    The channel now has twelve voices (of 8 to 16), and all twelve sound."""
    pitches = [36, 40, 43, 48, 52, 55, 60, 64, 67, 72, 76, 79]
    track = [ORGAN, mido.Message("control_change", control=64, value=127)]
    for k, pitch in enumerate(pitches):   # an eighth apart, each let go at once: the pedal holds them
        track += [mido.Message("note_on", note=pitch, velocity=100, time=24 if k else 0),
                  mido.Message("note_off", note=pitch, time=96)]
    track.append(mido.Message("control_change", control=64, value=0, time=1920))
    path = save(tmp_path, [track])
    assert MidiSong(path).summary.held == {0: 12}
    heard = render(registry, path)[0, int(3.0 * SR):int(3.5 * SR)]
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    freqs = np.fft.rfftfreq(len(heard), 1 / SR)
    found = {p: spectrum[np.abs(freqs - 440 * 2 ** ((p - 69) / 12)) < 3].max() / spectrum.max() for p in pitches}
    assert min(found.values()) > 0.3, found


def test_a_program_change_changes_the_timbre(registry, tmp_path):
    def harmonics(program):
        """Levels of harmonics 2..12 of A3 in dB against the fundamental."""
        track = [mido.Message("program_change", program=program, time=0)] + notes(0, [57], length=480)
        x = window(render(registry, save(tmp_path, [track], f"p{program}.mid")), 0.25, 0.45)[0]
        s = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        hz = SR / len(x)
        level = [s[int(round(k * 220 / hz)) - 2:int(round(k * 220 / hz)) + 3].max() for k in range(1, 13)]
        return 20 * np.log10(np.array(level[1:]) / level[0] + 1e-9)

    # piano, e-piano, bells, organ, guitar, bass, strings, lead, pad
    profiles = [harmonics(p) for p in (0, 4, 8, 16, 24, 33, 48, 80, 89)]
    for i in range(len(profiles)):
        for j in range(i):
            assert np.abs(profiles[i] - profiles[j]).max() > 6.0, (i, j)


def strongest_near(x, hz):
    """The strongest frequency within 5 % of ``hz``, to a fraction of a bin:
    a string's or a bell's strongest line may be a harmonic."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    band = np.flatnonzero(np.abs(freqs - hz) < 0.05 * hz)
    k = band[np.argmax(spectrum[band])]
    a, b, c = np.log(spectrum[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / len(x)


@pytest.mark.parametrize("program, source", [(24, "pluck"), (106, "pluck"), (4, "fm"), (9, "fm"), (0, "vco"),
                                             (89, "supersaw"), (50, "supersaw")])
def test_guitars_pluck_a_string_bells_ring_by_fm_and_pads_are_supersaws(registry, tmp_path, program, source):
    """A channel's first program picks its source; its notes are in tune
    through any of them, and a guitar's string rings on its own decay."""
    track = [mido.Message("program_change", program=program, time=0)] + notes(0, [57, 64], length=960)
    path = save(tmp_path, [track], f"s{program}.mid")
    summary = MidiSong(str(path)).summary
    assert f"add {source} ch1osc" in default_patch_text(summary.channels, summary.programs)
    x = render(registry, path)[0]
    assert abs(strongest_near(window(x[None], 0.2, 0.9)[0], 220.0) - 220.0) < 0.5
    assert 0.1 < np.abs(x).max() < 0.9


def test_a_later_program_of_another_source_changes_the_envelope_not_the_source(registry, tmp_path):
    """A guitar's channel switched to a piano keeps its string (a source is
    chosen once) but takes the piano's filter and envelope: its notes now
    fall to a low sustain while held."""
    track = ([mido.Message("program_change", program=24, time=0)] + notes(0, [57], length=1920)
             + [mido.Message("program_change", program=0, time=0)] + notes(0, [57], length=1920))
    x = render(registry, save(tmp_path, [track], "switch.mid"))[0]
    first, second = window(x[None], 0.0, 2.0)[0], window(x[None], 2.0, 4.0)[0]
    assert abs(strongest_near(second[:SR], 220.0) - 220.0) < 0.5
    late = lambda note: rms(note[int(1.5 * SR):int(1.9 * SR)]) / rms(note[:int(0.2 * SR)])
    assert late(second) < 0.5 * late(first)


def test_drums_on_channel_10_have_distinct_spectra(registry, tmp_path):
    def hit(note):
        x = render(registry, save(tmp_path, [notes(9, [note], length=10)], f"d{note}.mid"))
        return window(x, 0.0, 0.3)[0]

    kick, snare, hat = hit(36), hit(38), hit(42)
    assert all(rms(x) > 0.005 for x in (kick, snare, hat))
    assert centroid(kick) < 1000 < centroid(snare) < centroid(hat)
    assert centroid(hat) - centroid(snare) > 1500


def test_drums_keep_the_module_contract_and_respond_to_velocity():
    check_module(Drums)
    soft = render_module(Drums, 40, events=[(0, NoteOn(38, 0.3))])["out"]
    hard = render_module(Drums, 40, events=[(0, NoteOn(38, 0.9))])["out"]
    assert rms(hard) == pytest.approx(3 * rms(soft), rel=1e-6)


@pytest.mark.parametrize("note", [36, 45])   # the kick, a tom
def test_a_drum_struck_again_starts_afresh_without_a_step(note):
    """Each hit starts its oscillator from zero, so every kick is the same
    kick, and the sound it was making fades under it in a millisecond. It
    went on from the old phase at full level: a step of up to half full
    scale at every kick but the first."""
    every, hits = SR // 2, 4
    out = render_module(Drums, hits * every // 256 + 1, events=[(k * every, NoteOn(note, 1.0))
                                                                 for k in range(hits)])["out"][0]
    first = out[:every]
    steepest = np.abs(np.diff(first[:SR // 50])).max()   # the first hit, from silence
    for k in range(1, hits):
        at = k * every
        assert np.abs(np.diff(out[at - 1:at + SR // 50])).max() <= 1.2 * steepest, k
        np.testing.assert_allclose(out[at + SR // 50:at + every], first[SR // 50:], atol=1e-7)


def test_every_drum_goes_idle_once_it_has_died_away():
    """A slot runs until its tone and its noise have both fallen below
    1e-5. Hats, crash and clap have no tone and toms no noise, which were
    set to full at each hit and never fell: once struck, those slots ran,
    silent, for as long as the kit played."""
    class Kept(Drums):
        made = []

        def setup(self):
            super().setup()
            Kept.made.append(self)

    hits = [(100 + 7 * i, NoteOn(note, 1.0)) for i, note in enumerate([36, 38, 39, 42, 46, 49, 41, 45, 50])]
    out = render_module(Kept, 15 * 48000 // 256, events=hits)["out"]   # the crash lasts longest: 12.7 s
    assert np.abs(out[:, :48000]).max() > 0.5
    assert (Kept.made[-1].age == -1).all(), Kept.made[-1].age


# -- the keys voice allocator -----------------------------------------------------------

def playing(events, voices, at):
    """What each voice of a ``keys`` plays at the given samples: its
    (note, velocity) while its gate is high, None while it is low."""
    out = render_module(Keys, 2, params={"voices": voices}, channels=voices, blocksize=64, events=events)
    return [[(round(60 + 12 * out["voct"][c, s]), round(out["velocity"][c, s], 2))
             if out["gate"][c, s] > 0.5 else None for c in range(voices)] for s in at]


def test_keys_gives_a_new_note_the_voice_released_longest_ago():
    events = [(10, NoteOn(60, 0.5)), (20, NoteOn(62, 0.6)), (30, NoteOn(64, 0.7)),
              (40, NoteOff(62)), (50, NoteOff(60)), (60, NoteOn(65, 0.8))]
    assert playing(events, 3, [35, 55, 65]) == [
        [(60, 0.5), (62, 0.6), (64, 0.7)],     # unused voices in order
        [None, None, (64, 0.7)],
        [None, (65, 0.8), (64, 0.7)]]          # voice 2, released before voice 1
    # An unused voice is free the longest: a new note leaves a release tail alone.
    assert playing([(10, NoteOn(60, 0.5)), (20, NoteOff(60)), (30, NoteOn(62, 0.6))], 3, [35]) == [
        [None, (62, 0.6), None]]


def test_keys_steals_the_voice_held_longest():
    events = [(10, NoteOn(60, 0.5)), (20, NoteOn(62, 0.6)), (30, NoteOff(60)), (40, NoteOn(64, 0.7)),
              (50, NoteOn(65, 0.8)), (60, NoteOn(67, 0.9)), (70, NoteOn(69, 1.0))]
    assert playing(events, 2, [45, 49, 55, 65, 75]) == [
        [(64, 0.7), (62, 0.6)],
        [(64, 0.7), None],                     # the stolen voice's gate drops for a sample
        [(64, 0.7), (65, 0.8)],                # 62, on since sample 20, is stolen, not 64
        [(67, 0.9), (65, 0.8)],
        [(67, 0.9), (69, 1.0)]]


def test_keys_plays_a_note_again_on_the_voice_that_has_it():
    events = [(10, NoteOn(60, 0.5)), (20, NoteOn(64, 0.6)), (30, NoteOn(60, 0.9)),
              (40, NoteOff(64)), (50, NoteOff(60)), (60, NoteOn(64, 0.7))]
    assert playing(events, 3, [25, 29, 35, 55, 65]) == [
        [(60, 0.5), (64, 0.6), None],
        [None, (64, 0.6), None],               # a retrigger: the gate drops for a sample
        [(60, 0.9), (64, 0.6), None],          # the same voice, not a second one
        [None, None, None],
        [None, (64, 0.7), None]]               # its own voice, releasing, not the unused one


# -- messy files ----------------------------------------------------------------------

def test_messy_notes(registry, tmp_path):
    track = [ORGAN,
             mido.Message("note_off", note=50, time=0),                 # no note-on: ignored
             mido.Message("note_on", note=60, velocity=100, time=240),
             mido.Message("note_off", note=60, time=0),                 # zero length
             mido.Message("note_on", note=64, velocity=100, time=480),
             mido.Message("note_on", note=64, velocity=100, time=240),  # retrigger of a sounding key
             mido.Message("note_on", note=67, velocity=100, time=240),  # still on at the end
             mido.MetaMessage("end_of_track", time=480)]
    gate_patch = "add keys ch1 voices=4\nconnect ch1.gate out\n"
    path = save(tmp_path, [track])
    gate = render(registry, path, patch=gate_patch)[0]
    on = np.flatnonzero(gate[:SR // 2] > 0.5)
    assert on[0] == SR // 4 and len(on) == int(0.010 * SR)      # the zero-length note lasts 10 ms
    retrigger = SR
    assert gate[retrigger - 1] < 0.5 < gate[retrigger - 2] and gate[retrigger + 1] > 0.5
    x = render(registry, path)
    assert rms(window(x, 0.25, 0.26)) > 0.01                    # and is heard
    end = int(1.75 * SR)
    assert rms(x[:, end - 2000:end]) > 0.01                      # the last note sounds to the end
    assert x.shape[1] < end + SR and rms(x[:, -2000:]) < 1e-4    # then is released, and the render ends


def test_overlapping_notes_of_one_pitch_end_at_the_first_note_off(registry, tmp_path):
    """As docs/midi.md says, and as on most synths: a note-off ends the key,
    however often it was struck (on, on, off, off: sound to the first off)."""
    track = [mido.Message("note_on", note=64, velocity=100, time=0),
             mido.Message("note_on", note=64, velocity=100, time=240),   # 0.25 s
             mido.Message("note_off", note=64, time=240),                # 0.5 s
             mido.Message("note_off", note=64, time=240),                # 0.75 s
             mido.MetaMessage("end_of_track", time=480)]
    gate = render(registry, save(tmp_path, [track]), patch="add keys ch1 voices=4\nconnect ch1.gate out\n")[0]
    high = np.flatnonzero(gate > 0.5)
    assert gate[SR // 4 + 2] > 0.5 and high[-1] == SR // 2 - 1, high[-1]


def test_a_note_that_starts_on_the_tick_the_last_one_of_its_key_ends_is_held_for_its_length(registry, tmp_path):
    """The MIDI audit: two tracks of one channel (or one track that writes
    the next note first) put a key's note-on before the note-off of its
    last note at the same tick, and the off ended the new note after
    10 ms. Each note is now held for its length; a note that starts and
    ends on one tick still lasts 10 ms, the file's last one too (it was
    held to the end of track)."""
    on = lambda note, time: mido.Message("note_on", note=note, velocity=100, time=time)
    off = lambda note, time: mido.Message("note_off", note=note, time=time)
    odd = [on(60, 480), off(60, 480)] * 2                                 # beats 1 and 3
    even = [on(60, 0), off(60, 480), on(60, 480), off(60, 480)]          # beats 0 and 2
    one = [on(62, 0), on(62, 480), off(62, 0), on(62, 480), off(62, 0), off(62, 480),   # beats 0, 1, 2
           on(64, 0), off(64, 0), mido.MetaMessage("end_of_track", time=480)]        # a zero-length note at 3
    gate_patch = "add keys ch1 voices=4\nconnect ch1.gate out\n"
    for tracks in ([odd, even], [one]):
        gate = render(registry, save(tmp_path, tracks), patch=gate_patch)[0]
        beats = gate[:2 * SR].reshape(4, SR // 2)
        assert (beats[:3, 300:-10] > 0.5).all(), [np.mean(b > 0.5) for b in beats]   # whole notes (after the fade-in)
    assert np.count_nonzero(gate[3 * SR // 2:] > 0.5) == int(0.010 * SR)   # 62 ends at 1.5 s, 64 lasts 10 ms


# -- corrupt files ------------------------------------------------------------------------

def first_delta(data, delta):
    """A one-track file with its first delta time (0) written as the bytes
    ``delta``, and the track's length to match."""
    assert data[14:18] == b"MTrk" and data[22] == 0
    track = delta + data[23:]
    return data[:18] + struct.pack(">I", len(track)) + track


def corrupt(tmp_path, kind):
    good = save(tmp_path, [notes(0, [60, 62])], "good.mid").read_bytes()
    if kind == "header":
        data = b"MThx" + good[4:]
    elif kind == "format":
        data = good[:8] + struct.pack(">H", 5) + good[10:]
    elif kind == "long delta":   # 5 bytes where the SMF spec allows 4: 2**35 - 1 ticks
        data = first_delta(good, b"\xff\xff\xff\xff\x7f")
    elif kind == "long length":   # the end of track's length, 0, in 5 bytes
        assert good.endswith(b"\xff\x2f\x00")
        data = first_delta(good[:-1] + b"\x80\x80\x80\x80\x00", b"\x00")
    elif kind == "data byte":
        at = good.index(bytes([0x90, 60]))
        data = good[:at + 1] + bytes([200]) + good[at + 2:]
    elif kind == "smpte":
        data = good[:12] + bytes([0xE7, 0]) + good[14:]   # 25 frames a second, 0 ticks a frame
    elif kind == "smpte rate":
        data = good[:12] + bytes([0xE9, 4]) + good[14:]   # 23 frames a second, which no timecode has
    elif kind == "short tempo":   # 1 byte where a tempo takes 3: mido said 'list index out of range'
        data = first_delta(good, b"\x00\xff\x51\x01\x07\x00")
    elif kind == "zero tempo":   # every later event on one sample: the piece played as one chord
        data = first_delta(good, b"\x00\xff\x51\x03\x00\x00\x00\x00")
    elif kind == "no status byte":   # the first note-on's status byte gone: mido spoke of running status
        data = first_delta(good[:23] + good[24:], b"\x00")
    elif kind == "tempo in track 2":   # after an XF chunk: the byte counts the file's bytes, not mido's
        two = save(tmp_path, [notes(0, [60]), notes(1, [48])], "two.mid").read_bytes()
        data = with_chunks(two, "between", chunk(b"XFIH", b"abcd"))
        data = data[:data.rindex(b"MTrk")] + chunk(b"MTrk", b"\x00\xff\x51\x01\x07\x00\xff\x2f\x00")
    elif kind == "huge length":   # a track's length of 4 GB: read() would allocate it before reading
        data = good[:18] + struct.pack(">I", 0xFFFFFFF0) + good[22:]
    else:
        data = good[:-6]
    path = tmp_path / f"{kind.replace(' ', '_')}.mid"
    path.write_bytes(data)
    return path


def assert_refused(done, path):
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "MIDI" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["header", "format", "data byte", "truncated", "smpte", "smpte rate", "long delta",
                                  "long length", "short tempo", "zero tempo", "no status byte"])
def test_a_corrupt_file_is_one_line_and_status_2(tmp_path, kind):
    path = corrupt(tmp_path, kind)
    # --duration: a file taken for valid must fail here, not render days of silence
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(path), "-o", str(tmp_path / "x.wav"),
                           "--duration", "1"], capture_output=True, text=True, cwd=ROOT)
    assert_refused(done, path)
    assert "not a valid MIDI file" in done.stderr
    checked = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)],
                             capture_output=True, text=True, cwd=ROOT)
    assert_refused(checked, path)
    assert checked.stderr == done.stderr


@pytest.mark.parametrize("kind, message", [
    ("short tempo", "a set tempo event of 1 byte, expected 3 (track 1, at byte 26)"),
    ("zero tempo", "a set tempo event of 0 microseconds a beat (track 1, at byte 28)"),
    ("tempo in track 2", "a set tempo event of 1 byte, expected 3 (track 2, at byte 59)"),
    ("no status byte", "a data byte where an event should start (track 1, at byte 23)"),
    ("data byte", "data byte must be in range 0..127 (track 1, at byte 25)"),
    ("truncated", "track 1 ends in the middle of an event (truncated?)"),
    ("smpte rate", "SMPTE timing at 23 frames a second (only 24, 25, 29.97 and 30 exist)"),
    ("huge length", "track 1 ends in the middle of an event (truncated?)"),
])
def test_a_corrupt_file_says_what_is_wrong_and_where(tmp_path, kind, message):
    path = corrupt(tmp_path, kind)
    limit = 3 << 30   # bytes of address space: a 4 GB read() fails, as on a machine without that much
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)], capture_output=True, text=True,
                          cwd=ROOT, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert_refused(done, path)
    assert done.stderr == f"error: {path}: not a valid MIDI file: {message}\n"


#: Meta events mido cannot read that change nothing heard, as the first
#: event of a file, and the warning each gets (tick 0 of track 1).
DAMAGED_METAS = {
    "key signature": (b"\xff\x59\x02\xfd\x46", "a damaged key signature event"),   # 3 flats in mode 70
    "sharps": (b"\xff\x59\x02\x09\x00", "a damaged key signature event"),          # 9 sharps of 7
    "smpte offset": (b"\xff\x54\x05\xe0\x00\x00\x00\x00", "a damaged smpte offset event"),   # rate code 7 of 4
    "smpte minutes": (b"\xff\x54\x05\x21\x4b\x00\x00\x00", "a damaged smpte offset event"),  # minute 75 of 59
    "time signature": (b"\xff\x58\x02\x03\x02", "a time signature event of 2 bytes, expected 4"),
}


@pytest.mark.parametrize("kind", DAMAGED_METAS)
def test_a_damaged_meta_event_that_changes_nothing_heard_is_left_out_with_a_warning(registry, tmp_path, kind):
    """Players play such files (the MIDI audit's key signature of 9
    sharps, its time signature of 2 bytes); they refused the whole file
    as corrupt. A damaged tempo still does (see above): it times every
    later note."""
    good = save(tmp_path, [notes(0, [60, 62])], "good.mid")
    meta, what = DAMAGED_METAS[kind]
    path = tmp_path / "damaged.mid"
    path.write_bytes(first_delta(good.read_bytes(), b"\x00" + meta + b"\x00"))
    for command in (["check"], ["render", "-q", "-o", str(tmp_path / "x.wav")]):
        done = subprocess.run([sys.executable, "-m", "synthcli.cli", *command, str(path)],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0 and done.stderr == f"warning: {path}: track 1, tick 0: {what}, ignored\n", done
    assert np.array_equal(render(registry, path), render(registry, good))


def test_many_damaged_meta_events_are_warned_of_in_a_few_lines(tmp_path):
    good = save(tmp_path, [notes(0, [60, 62])], "good.mid")
    path = tmp_path / "damaged.mid"
    path.write_bytes(first_delta(good.read_bytes(), b"\x00" + b"\xff\x59\x02\x09\x00\x00" * 7))
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [f"warning: {path}: track 1, tick 0: a damaged key signature event, ignored"] * 5 + [
        f"warning: {path}: 2 more damaged meta events, ignored"]


def test_a_meta_event_of_a_type_mido_does_not_know_keeps_its_time(registry, tmp_path):
    """A program name (0x08), which DAWs write, between a note's on and
    off: mido dropped the delta time of a meta type it does not know, and
    the note, with every later event of its track, came a beat early."""
    from mido.midifiles.meta import UnknownMetaMessage
    track = [mido.Message("note_on", note=60, velocity=100, time=0),
             UnknownMetaMessage(0x08, list(b"Piano"), time=480),
             mido.Message("note_off", note=60, time=0),
             mido.Message("note_on", note=62, velocity=100, time=240), mido.Message("note_off", note=62, time=240)]
    gate = render(registry, save(tmp_path, [track]), patch=GATE_PATCH)[0]
    edges = np.flatnonzero(np.diff((gate > 0.5).astype(int)))
    assert list(edges[1:]) == [SR // 2 - 1, 3 * SR // 4 - 1, SR - 1], edges   # ends at 0.5 s; d4 0.75-1 s


@pytest.mark.parametrize("kind, message", [
    ("missing", "cannot read: No such file or directory"),   # as for a song or patch file
    ("directory", "cannot read: Is a directory"),          # not "not a valid MIDI file: [Errno 21] ..."
    ("empty", "not a valid MIDI file: it is empty"),
])
def test_a_file_that_cannot_be_read_says_why(tmp_path, kind, message):
    path = tmp_path / "song.mid"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(path), "-o", str(tmp_path / "x.wav")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr == f"error: {path}: {message}\n"


def test_check_reads_a_midi_file_through_and_summarises_it(tmp_path):
    path = save(tmp_path, [notes(0, [60, 62, 64]), notes(1, [48])], "song.mid")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: ok (MIDI file: type 1, 2 tracks, 4 notes on 2 channels, 1 bar, 1.5 s)\n"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", "--json", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    report = json.loads(done.stdout)
    assert report["ok"] and report["midi"] and (report["notes"], report["channels"], report["bars"]) == (4, 2, 1)
    assert report["seconds"] == MidiSong(path).seconds() > 0


def chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack(">L", len(data)) + data


def with_chunks(good: bytes, where: str, extra: bytes) -> bytes:
    """``good`` (a file of two tracks) with ``extra`` chunks put before,
    between or after its tracks."""
    second = 22 + struct.unpack(">L", good[18:22])[0]
    assert good[14:18] == good[second:second + 4] == b"MTrk"
    at = {"before": 14, "between": second, "after": len(good)}[where]
    return good[:at] + extra + good[at:]


@pytest.mark.parametrize("where", ["before", "between", "after"])
def test_chunks_of_an_unknown_type_are_skipped_as_the_smf_spec_asks(registry, tmp_path, where):
    good = save(tmp_path, [notes(0, [60, 62]), notes(1, [48])], "good.mid")
    path = tmp_path / "xf.mid"   # Yamaha XF's info and karaoke chunks, the second empty
    path.write_bytes(with_chunks(good.read_bytes(), where, chunk(b"XFIH", b"abcd") + chunk(b"XFKM", b"")))
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: ok (MIDI file: type 1, 2 tracks, 3 notes on 2 channels, 1 bar, 1.0 s)\n"
    assert np.array_equal(render(registry, path), render(registry, good))


def test_a_sysex_escape_may_carry_any_bytes_and_a_sysex_only_data_bytes(registry, tmp_path):
    """The SMF spec's F7 event carries any bytes (here a MIDI clock, F8):
    mido refused the whole file for it (the MIDI audit). An F0 sysex with
    a status byte inside is still a corrupt file."""
    def track(sysex: bytes) -> Path:
        body = sysex + bytes([0, 0x90, 60, 100, 0x83, 0x60, 60, 0, 0, 0xFF, 0x2F, 0])
        path = tmp_path / f"{sysex.hex()}.mid"
        path.write_bytes(b"MThd" + struct.pack(">LHHH", 6, 0, 1, 480) + chunk(b"MTrk", body))
        return path

    x = render(registry, track(bytes([0, 0xF7, 1, 0xF8])))
    assert rms(window(x, 0.1, 0.4)) > 0.01                                        # its note plays
    bad = track(bytes([0, 0xF0, 2, 0x80, 0xF7]))
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(bad)], capture_output=True, text=True,
                          cwd=ROOT)
    assert_refused(done, bad)
    assert done.stderr.endswith("not a valid MIDI file: data byte must be in range 0..127 (track 1, at byte 26)\n")


def test_a_header_counting_more_tracks_than_the_file_has_says_so(tmp_path):
    good = save(tmp_path, [notes(0, [60, 62]), notes(1, [48])], "good.mid").read_bytes()
    data = with_chunks(good, "between", chunk(b"XFIH", b"abcd"))
    path = tmp_path / "short.mid"
    path.write_bytes(data[:10] + struct.pack(">H", 3) + data[12:])
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert_refused(done, path)
    assert done.stderr == f"error: {path}: not a valid MIDI file: its header counts 3 tracks, but it has 2 (truncated?)\n"


def test_a_file_lasting_over_a_day_is_refused_and_four_byte_deltas_play(tmp_path):
    good = save(tmp_path, [notes(0, [60, 62])], "good.mid").read_bytes()
    padded = tmp_path / "padded.mid"   # a delta of 0 in 4 bytes: long-winded, but valid
    padded.write_bytes(first_delta(good, b"\x80\x80\x80\x00"))
    assert MidiSong(padded).summary.notes == 2
    endless = tmp_path / "endless.mid"   # 0x0FFFFFFF ticks, the most 4 bytes hold: 77.7 hours at 120 BPM
    endless.write_bytes(first_delta(good, b"\xff\xff\xff\x7f"))
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(endless), "-o", str(tmp_path / "x.wav"),
                           "--duration", "1"], capture_output=True, text=True, cwd=ROOT)
    assert_refused(done, endless)
    assert "lasts 77.7 hours, over the 24 allowed" in done.stderr


def test_playing_a_corrupt_file_exits_and_leaves_no_process(jack_server, tmp_path):
    path = corrupt(tmp_path, "smpte")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "play", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert_refused(done, path)
    left = subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True)
    assert left.stdout == "", "a worker or the engine outlived the refused song"


# -- real files ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.mid")))
def test_music21_files_render_and_sound(registry, name):
    song = MidiSong(DATA / name)
    x = render(registry, DATA / name, seconds=4.0)
    assert np.isfinite(x).all() and np.abs(x).max() < 1.0
    assert rms(x) > 0.003, f"{name} ({song.describe()}) is silent"


def peak_db(x):
    return 20 * np.log10(np.abs(x).max())


def test_the_built_in_voices_bring_quiet_and_busy_files_to_a_like_level(registry):
    """Its levels leave room for sixteen busy channels, so a thin file
    peaked near -26 dBFS and a full one at -5: every real file now peaks
    between -10 and -2 dBFS (the whole file, program changes and all)."""
    peaks = [peak_db(render(registry, path)) for path in sorted(DATA.glob("*.mid"))]
    assert all(-10 < peak < -2 for peak in peaks), peaks
    assert max(peaks) - min(peaks) < 8


def test_a_quiet_file_is_raised_at_most_eightfold_and_a_busy_one_not_clipped(registry, tmp_path):
    soft = save(tmp_path, [notes(0, [60, 62, 64, 65], velocity=30)], "soft.mid")
    assert level_gain(MidiSong(soft)) == MAX_GAIN
    plain = default_patch_text({0}, {0: 0})   # the same voices, given as a patch: not raised
    raised, given = render(registry, soft), render(registry, soft, patch=plain)
    heard = given.shape[1]   # the raised one's tail is heard longer, till its own -80 dB
    assert raised.shape[1] > heard
    np.testing.assert_allclose(raised[:, :heard], MAX_GAIN * given, atol=1e-12)
    strings = [mido.Message("program_change", channel=2, program=48)]
    tracks = ([notes(0, [pitch] * 8) for pitch in (60, 64, 67, 72)]                        # piano chords
              + [notes(1, [36] * 16, length=240), notes(9, [36] * 8), notes(9, [42] * 16, length=240)]
              + [strings + notes(2, [pitch] * 2, length=1920) for pitch in (48, 55, 64, 71)])
    busy = render(registry, save(tmp_path, tracks, "busy.mid"))
    assert -12 < peak_db(busy) < 20 * np.log10(SOFT_CLIP_KNEE)


def test_a_file_turned_down_by_its_volume_controller_is_raised_to_the_same_level(registry, tmp_path):
    """Six notes held together, as they are and with the channel's volume
    at 50 (CC 7: a quarter of the gain, -12 dB, as the driver plays it):
    the estimate takes the controller in, so the quiet copy is raised four
    times as much and both play the same samples. Before, the estimate
    left volume and expression out, and the quiet copy stayed 12 dB down."""
    chord = [notes(0, [60 + 2 * k] * 4) for k in range(6)]
    volume = [mido.Message("control_change", channel=0, control=7, value=50)]
    plain, quiet = save(tmp_path, chord, "plain.mid"), save(tmp_path, [volume + chord[0]] + chord[1:], "quiet.mid")
    assert 1 < level_gain(MidiSong(plain)) < MAX_GAIN / 4
    assert level_gain(MidiSong(quiet)) == pytest.approx(4 * level_gain(MidiSong(plain)), rel=1e-12)
    loud = render(registry, plain)
    assert peak_db(loud) > -10
    np.testing.assert_allclose(render(registry, quiet), loud, rtol=0, atol=1e-9)


def test_a_swell_of_expression_under_held_notes_counts_at_its_loudest(registry, tmp_path):
    """The MIDI audit: a string chord that begins at expression 10 and
    swells to 127 while it is held was raised eightfold, as if it stayed
    at 10, and driven into the master's knee. The estimate follows the
    controller while the notes sound: the swell's gain is that of the
    chord at full expression from the start."""
    strings = [mido.Message("program_change", channel=0, program=48)]
    expression = lambda value, time=0: mido.Message("control_change", channel=0, control=11, value=value, time=time)
    chord = [mido.Message("note_on", channel=0, note=48 + 4 * k, velocity=100) for k in range(6)]
    ends = [mido.Message("note_off", channel=0, note=48 + 4 * k, time=0) for k in range(6)]
    swell = [expression(10 + 4 * k, 60) for k in range(1, 30)] + [expression(127, 60)]
    ends[0] = ends[0].copy(time=3840 - 60 * len(swell))
    swelling = save(tmp_path, [strings + [expression(10)] + chord + swell + ends], "swell.mid")
    full = save(tmp_path, [strings + [expression(127)] + chord + [expression(127, 3840)] + ends], "full.mid")
    assert level_gain(MidiSong(swelling)) == level_gain(MidiSong(full)) < MAX_GAIN / 2
    assert np.abs(render(registry, swelling)).max() < SOFT_CLIP_KNEE


# -- the command line ------------------------------------------------------------------------

def test_a_voice_patch_s_note_lengths_keep_the_file_s_tempo(registry, tmp_path):
    """A delay set to an eighth in the voice patch: its echo comes 0.25 s
    after a note at the file's 120 BPM, and 0.5 s after once a set_tempo
    makes it 60 BPM; a delay set in seconds stays put."""
    tempo = [mido.MetaMessage("set_tempo", tempo=500000, time=0),
             mido.MetaMessage("set_tempo", tempo=1000000, time=960)]   # from 1 s on, 60 BPM
    played = [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=24),
              mido.Message("note_on", note=60, velocity=100, time=936), mido.Message("note_off", note=60, time=24),
              mido.Message("note_on", note=60, velocity=100, time=936), mido.Message("note_off", note=60, time=24),
              mido.MetaMessage("marker", text="the last echo", time=960)]   # the file lasts until 4 s
    midi = save(tmp_path, [tempo, played])
    voices = ("add keys ch1 voices=1\nadd vca v level=0.5\nadd delay d time={time} feedback=0 mix=1\n"
              "connect ch1.gate v\nconnect v d\nconnect d out\n")

    def echoes(time):
        loud = np.flatnonzero(render(registry, midi, patch=voices.format(time=time))[0] > 0.2)
        return loud[np.r_[True, np.diff(loud) > SR // 10]] / SR
    np.testing.assert_allclose(echoes("1/8"), [0.25, 1.5, 3.5], atol=2 / SR)   # notes at 0, 1 and 3 s
    np.testing.assert_allclose(echoes("0.25"), [0.25, 1.25, 3.25], atol=2 / SR)


def test_render_with_a_voice_patch(tmp_path):
    second = [mido.Message("note_on", note=48, velocity=100, channel=1, time=960),
              mido.Message("note_off", note=48, channel=1, time=480)]
    midi = save(tmp_path, [notes(0, [60, 64]), second])
    voices = tmp_path / "mine.patch"
    voices.write_text("add keys ch2 voices=2\nadd vco o wave=sine\nadd adsr e\nadd vca a level=0.3\n"
                      "connect ch2.voct o.voct\nconnect ch2.gate e.gate\nconnect o a\nconnect e a.gain\n"
                      "connect a out\n")
    out = tmp_path / "o.wav"
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(midi), "-o", str(out),
                           "--patch", str(voices)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    x, _ = soundfile.read(str(out))
    assert abs(peak_frequency(x[int(0.1 * SR):int(0.4 * SR), 0]) - 261.63) < 1.0   # channel 1 plays on ch2 too
    assert abs(peak_frequency(x[int(1.1 * SR):int(1.4 * SR), 0]) - 130.81) < 1.0
    bad = tmp_path / "bad.patch"
    bad.write_text("add vco o\nconnect o out\n")
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "render", str(midi), "-o", str(out),
                           "--patch", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no note source" in done.stderr and str(bad) in done.stderr


@pytest.mark.parametrize("bar", ["1", "2"])
def test_play_sends_exactly_what_render_writes(jack_server, tmp_path, bar):
    midi = save(tmp_path, [notes(0, [60, 64, 67], length=200, gap=800), notes(9, [36, 38, 42], length=10, gap=190)])
    rendered, take = tmp_path / "render.wav", tmp_path / "take.wav"
    cli = [sys.executable, "-m", "synthcli.cli"]
    done = subprocess.run(cli + ["render", str(midi), "-o", str(rendered), "--executor", "processes",
                                 "--workers", "1", "--from", bar], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(cli + ["play", str(midi), "--record", str(take), "--workers", "1", "--latency", "safe",
                                 "--from", bar], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    # The take holds what the device played, silence and all: --latency safe
    # must keep it clean here (a busy moment's xrun is what the reruns are for).
    assert " 0 xruns" in done.stderr, done.stderr
    a, _ = soundfile.read(str(rendered), dtype="float32")
    b, _ = soundfile.read(str(take), dtype="float32")
    assert a.shape == b.shape and np.array_equal(a, b)


def test_midi_ports_without_a_backend_is_one_line():
    import os
    done = subprocess.run([sys.executable, "-m", "synthcli.cli", "midi", "ports"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MIDO_BACKEND": "no.such.backend"})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no MIDI backend" in done.stderr and "Traceback" not in done.stderr


def test_what_other_threads_print_while_a_port_opens_is_kept():
    """Opening a port hides JACK's and ALSA's complaints on file descriptor
    2; lines another thread prints meanwhile (`synth play`'s own) must
    still show, once, and two threads opening at once must leave stderr
    as it was. Only a failed open drops what came meanwhile."""
    code = """if True:
        import os, sys, threading
        from synthcli.midi.ports import _quiet_stderr
        started = threading.Barrier(3)

        def opening(k):
            started.wait()
            for i in range(50):
                with _quiet_stderr():
                    os.write(2, b"library noise\\n" if k else b"")
                    print(f"thread {k} line {i}", file=sys.stderr)

        threads = [threading.Thread(target=opening, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        started.wait()
        for t in threads:
            t.join()
        try:
            with _quiet_stderr():
                print("lost with the complaint", file=sys.stderr)
                raise OSError("the port cannot be opened")
        except OSError:
            pass
        print("after", file=sys.stderr)
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 0, done.stderr
    assert sorted(line for line in lines if line.startswith("thread")) == sorted(
        f"thread {k} line {i}" for k in (0, 1) for i in range(50))
    assert lines.count("library noise") == 50 and lines[-1] == "after", lines[-3:]
    assert "lost with the complaint" not in lines
