"""chip: a game-console voice in the style of the NES and the Game Boy.

What makes it sound like one:

* Every tone is a 32-step wavetable of 4-bit values (0-F), like the Game
  Boy's wave RAM or the NES triangle; the pulses are tables too.
* The volume is 4-bit as well: a note starts at ``15 x velocity`` and the
  envelope steps down one level at a time (the NES "decay" envelope), so
  it decays in audible stairs instead of a smooth curve.
* ``noise`` is the NES noise channel's 15-bit LFSR; ``metal`` is its short
  mode, a 93-step loop that buzzes at the played pitch.
* ``sweep`` bends the pitch from every note start (lasers, tom and kick
  drops) and ``arp`` cycles the note through a chord at ``arprate`` steps a
  second: the tracker arpeggio that makes one voice sound like a chord.

Not everything is 1985: each step of the staircase is a polyBLEP step, so
high notes do not fold back into inharmonic whistles at 48 kHz, which
costs one sample of latency.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from synthcli.api import AUDIO, C4_HZ, CONTROL, Module, Param, Port

#: The tables, 32 nibbles each, written as the Game Boy's wave RAM is.
WAVETABLES = {
    "pulse12": "FFFF" + "0" * 28,                      # 12.5 % duty: thin and nasal
    "pulse25": "F" * 8 + "0" * 24,                      # 25 %: the classic lead
    "pulse50": "F" * 16 + "0" * 16,                     # square: hollow, woody
    "triangle": "FEDCBA9876543210" "0123456789ABCDEF",  # the NES triangle, stairs and all
    "saw": "00112233445566778899AABBCCDDEEFF",          # rising ramp, 16 levels
    "sine": "8ABCDEFFFFEDCBA87543210000123457",         # a 4-bit sine: soft, faintly buzzy
    "organ": "9CEFFEDCBAAA99987666555432100136",        # harmonics 1, 2 and 3
}
NOISE_WAVES = ("noise", "metal")
WAVES = tuple(WAVETABLES) + NOISE_WAVES
STEPS = 32


def _table(nibbles: str) -> np.ndarray:
    """A table in +/-1 full scale, with its DC removed: a 12.5 % pulse sits
    as far below zero on average as above, so volume steps do not thump."""
    values = np.array([int(digit, 16) for digit in nibbles], dtype=np.float64)
    values -= values.mean()
    return values / np.abs(values).max()


TABLES = np.array([_table(nibbles) for nibbles in WAVETABLES.values()])
NOISE = len(WAVETABLES)
METAL = NOISE + 1
#: The short LFSR loop repeats every 93 clocks: clocking it 93 times a
#: cycle puts its buzz on the played pitch.
METAL_CLOCKS = 93.0
#: Short mode has several 93-step loops; the one through 0x7FFF is as many
#: ones as zeros (the one through 1, where long mode starts, is 17 % ones:
#: a lopsided, DC-heavy buzz), so metal notes start there.
METAL_SEED = 0x7FFF

#: Tracker arpeggios, in semitones above the played note.
ARPEGGIOS = {
    "off": (0,),
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "sus4": (0, 5, 7),
    "dim": (0, 3, 6),
    "octave": (0, 12),
    "power": (0, 7, 12),
}
ARP_NOTES = np.zeros((len(ARPEGGIOS), 3))
ARP_LENGTHS = np.zeros(len(ARPEGGIOS), dtype=np.int64)
for _row, _notes in enumerate(ARPEGGIOS.values()):
    ARP_NOTES[_row, :len(_notes)] = _notes
    ARP_LENGTHS[_row] = len(_notes)

#: Highest phase increment, in cycles per sample (below Nyquist).
MAX_CYCLES = 0.49
#: Sweeps stop after this many octaves either way.
MAX_SWEEP = 10.0
IDLE, HELD, RELEASED = 0, 1, 2


@njit(cache=True, nogil=True)
def _chip_kernel(voct, gate, velocity, freq, wave, decay, release, sweep, arp, arprate, level, out,
                 phase, lfsr, volume, clock, stage, high, age, current, pending, samplerate):
    """All channels in one call. Per sample: gate edges, the stepped
    volume, the pitch (only recomputed when it changes), then every table
    step the phase crossed, each turned into a polyBLEP step. Output runs
    one sample late: a step's correction reaches back one sample."""
    channels, n = out.shape
    dt = 1.0 / samplerate
    for c in range(channels):
        # A choice may change on any sample (a pattern's step): read where
        # it moves, not once a block.
        last_wave = last_arp = np.nan
        shape = chord = notes = 0
        clocks = 0.0
        p = phase[c]
        s = lfsr[c]
        v = volume[c]
        clk = clock[c]
        st = stage[c]
        hi = high[c]
        t = age[c]
        cur = current[c]
        prev = pending[c]
        last_pitch = last_f = np.nan
        inc = 0.0
        for i in range(n):
            if wave[c, i] != last_wave:
                last_wave = wave[c, i]
                shape = min(max(int(last_wave), 0), METAL)
                clocks = METAL_CLOCKS if shape == METAL else float(STEPS)
                last_pitch = np.nan  # the increment counts this wave's table steps
            if arp[c, i] != last_arp:
                last_arp = arp[c, i]
                chord = min(max(int(last_arp), 0), ARP_LENGTHS.shape[0] - 1)
                notes = ARP_LENGTHS[chord]
            g = gate[c, i] > 0.5
            if g and not hi:  # note on: full (velocity-scaled) 4-bit volume
                st = HELD
                v = int(15.0 * min(max(velocity[c, i], 0.0), 1.0) + 0.5)
                clk = 0.0
                t = 0.0
                if shape == METAL:
                    s = METAL_SEED
            elif hi and not g and st == HELD:
                st = RELEASED
                clk = 0.0
            hi = g
            if st != IDLE:
                # One volume step every time/15 seconds: 15 to 0 in `time`.
                time = decay[c, i] if st == HELD else release[c, i]
                if st == RELEASED and not time > dt:
                    v = 0
                elif time > 0.0:
                    clk += 15.0 * dt / max(time, dt)
                    if clk >= 1.0:
                        steps = int(min(clk, 16.0))
                        clk -= steps
                        v = max(v - steps, 0)
                if st == RELEASED and v == 0:
                    st = IDLE
            semis = 0.0
            if notes > 1:
                rate = arprate[c, i]
                ticks = t * rate if rate > 0.0 else 0.0
                semis = ARP_NOTES[chord, int(min(ticks, 1e9)) % notes]
            pitch = voct[c, i] + semis / 12.0 + min(max(sweep[c, i] * t, -MAX_SWEEP), MAX_SWEEP)
            f = freq[c, i]
            if pitch != last_pitch or f != last_f:
                cycles = f * 2.0 ** pitch / samplerate
                if not cycles > 0.0:  # also NaN: stand still rather than index with garbage
                    cycles = 0.0
                inc = min(cycles, MAX_CYCLES) * clocks
                last_pitch = pitch
                last_f = f
            t += dt
            gain = v * level[c, i] / 15.0
            y = 0.0
            end = p + inc
            for k in range(int(p) + 1, int(end) + 1):
                since = (end - k) / inc  # samples since the step, in [0, 1)
                if shape < NOISE:
                    new = TABLES[shape, k % STEPS]
                else:
                    bit = (s ^ (s >> (6 if shape == METAL else 1))) & 1
                    s = (s >> 1) | (bit << 14)
                    new = 1.0 if s & 1 == 0 else -1.0
                h = (new - cur) * gain
                cur = new
                prev += 0.5 * h * since * since
                y -= 0.5 * h * (1.0 - since) * (1.0 - since)
            # metal can cross more than a whole table's steps in a sample
            p = end - STEPS * math.floor(end / STEPS)
            out[c, i] = prev
            prev = y + cur * gain
        phase[c] = p
        lfsr[c] = s
        volume[c] = v
        clock[c] = clk
        stage[c] = st
        high[c] = hi
        age[c] = t
        current[c] = cur
        pending[c] = prev


class Chip(Module):
    type_name = "chip"
    description = "Game-console voice: 4-bit wavetables, duty pulses, LFSR noise, stepped volume, sweep, arpeggio"
    inputs = (
        Port("voct", CONTROL, "pitch in volts per octave (patch a keys voct here)"),
        Port("gate", CONTROL, "a rising edge starts a note at full volume; unpatched, it plays at once", default=1.0),
        Port("velocity", CONTROL, "0..1: the 4-bit volume a note starts at (15 x velocity)", default=1.0),
    )
    outputs = (Port("out", AUDIO, "the voice, within +/-level"),)
    params = (
        Param("freq", C4_HZ, 0.01, 20000.0, "Hz", doc="frequency at voct 0; C4 lets a note source play true pitches"),
        Param("wave", "pulse25", choices=WAVES,
              doc="32-step 4-bit table, or noise (15-bit LFSR) / metal (its short 93-step mode)"),
        Param("decay", 0.0, 0.0, 10.0, "s", doc="while held, the volume steps 15 to 0 in this time; 0 holds it"),
        Param("release", 0.05, 0.0, 10.0, "s", doc="after the gate falls, steps 15 to 0 in this time; 0 cuts"),
        Param("sweep", 0.0, -100.0, 100.0, "oct/s", doc="pitch bend from each note start (negative: down)"),
        Param("arp", "off", choices=tuple(ARPEGGIOS), doc="cycle each note through this chord"),
        Param("arprate", 50.0, 1.0, 200.0, "Hz", doc="arpeggio notes per second (50: one per PAL frame)"),
        Param("level", 0.5, 0.0, 1.0, doc="output gain at volume 15"),
    )
    state_fields = ("phase", "lfsr", "volume", "clock", "stage", "high", "age", "current", "pending")

    def setup(self):
        n = self.channels
        self.phase = np.zeros(n)
        self.lfsr = np.ones(n, dtype=np.int64)  # the NES powers its LFSR up at 1
        self.volume = np.zeros(n, dtype=np.int64)
        self.clock = np.zeros(n)
        self.stage = np.zeros(n, dtype=np.int64)
        self.high = np.zeros(n, dtype=np.bool_)
        self.age = np.zeros(n)
        self.current = np.zeros(n)
        self.pending = np.zeros(n)

    def process(self, inputs, params, outputs):
        _chip_kernel(inputs["voct"], inputs["gate"], inputs["velocity"], params["freq"], params["wave"],
                     params["decay"], params["release"], params["sweep"], params["arp"], params["arprate"],
                     params["level"], outputs["out"], self.phase, self.lfsr, self.volume, self.clock,
                     self.stage, self.high, self.age, self.current, self.pending, self.samplerate)
