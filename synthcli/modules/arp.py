"""``arp``: an arpeggiator, between a note source's cables and one voice."""
from __future__ import annotations

import numpy as np

from ..api import CONTROL, AllNotesOff, Module, Param, Port
from ..engine.jit import helper, kernel
from .dsp import random_step

#: Tidal's arp modes, then as played and at random.
ARP_MODES = ("up", "down", "updown", "downup", "converge", "diverge", "pinkyup", "thumbup", "order", "random")
UP, DOWN, UPDOWN, DOWNUP, CONVERGE, DIVERGE, PINKYUP, THUMBUP, ORDER, RANDOM = range(10)
MAX_OCTAVES = 4
#: Columns of the arp's state: the steps played since the first key, the
#: samples since the internal clock's last step, samples of gate left (-1:
#: until the clock input falls; inf: until the keys are let go), the clock
#: input's last level, samples since its last rising edge (-1 before the
#: first) and the interval before that (0 until two are seen), presses
#: counted, any key held at the last sample, the step's pitch and
#: velocity, and the gate output's last sample.
(STEP, ELAPSED, GATE_LEFT, CLOCK_HIGH, SINCE_CLOCK, CLOCK_PERIOD, PRESSES, ANY_HELD, PITCH, VELOCITY,
 GATE_WAS) = range(11)
#: Columns per channel: its gate at the last sample, when it was pressed
#: (the count of presses), latched, and its pitch and velocity when pressed.
WAS_HIGH, PRESSED, LATCHED, KEPT_PITCH, KEPT_VELOCITY = range(5)


@helper
def _order(keys, members, count):
    """The indices of the ``count`` member channels, sorted by ``keys``
    (ties by channel), into ``members``: an insertion sort, for at most
    16 keys at each step."""
    filled = 0
    for c in range(keys.shape[0]):
        if keys[c] != keys[c]:   # NaN marks a channel out of the chord
            continue
        j = filled
        while j > 0 and keys[int(members[j - 1])] > keys[c]:
            members[j] = members[j - 1]
            j -= 1
        members[j] = c
        filled += 1
        if filled == count:
            break


@helper
def _index(mode, k, total):
    """Which of ``total`` notes (the chord over its octaves, lowest first)
    step ``k`` of a pattern mode plays, as Tidal's arp orders them."""
    if total == 1:
        return 0
    if mode == DOWN:
        return total - 1 - k % total
    if mode == UPDOWN or mode == DOWNUP:   # no repeat at the turns
        j = k % (2 * total - 2)
        up = j if j < total else 2 * total - 2 - j
        return up if mode == UPDOWN else total - 1 - up
    if mode == CONVERGE or mode == DIVERGE:   # outside in: lowest, highest, next lowest ...
        j = k % total if mode == CONVERGE else total - 1 - k % total
        return j // 2 if j % 2 == 0 else total - 1 - j // 2
    if mode == PINKYUP or mode == THUMBUP:   # each note in turn, the top (or bottom) one between
        j = k % (2 * total - 2)
        if mode == PINKYUP:
            return j // 2 if j % 2 == 0 else total - 1
        return 0 if j % 2 == 0 else j // 2 + 1
    return k % total


@helper
def _next_change(gate, c, start, high):
    """The first sample from ``start`` where channel ``c``'s gate is no
    longer ``high`` (the block's length if none): between changes the
    chord stays as it is, and the channels need not be read."""
    for i in range(start, gate.shape[1]):
        if (gate[c, i] > 0.5) != high:
            return i
    return gate.shape[1]


@helper
def _member(channels_state, c, latching):
    """Whether channel ``c``'s key is in the chord: held, or latched."""
    return channels_state[c, WAS_HIGH] > 0.5 or (latching and channels_state[c, LATCHED] > 0.5)


@kernel
def _arp_kernel(voct, gate, velocity, clock, rate, mode, octaves, length, latch,
                out_voct, out_gate, out_velocity, state, channels_state, keys, members, upcoming, rng,
                release, samplerate):
    """One mono voice from a polyphonic chord, a step at a time. Steps come
    from the internal clock (``rate``) and from rising edges of ``clock``.
    The first key pressed after none were plays at once on the internal
    clock (the arp follows the player), and on the clock at its next edge
    (it follows the band) or at once while the clock's pulse is high, so
    keys a little late for an edge still make its step. A clocked step's
    gate lasts ``length`` of the clock's last interval; the first, with no
    interval yet, as long as the clock's own pulse. A step that finds its
    gate high (the clock came early, or the gate before ended just now)
    drops it for one sample, as a retriggered key does, so envelopes start
    again: on the sample before the step, or on a block's first sample on
    the step's own first. Length 1 ties the steps instead. At sample
    ``release[0]`` (the transport stopped) the latched chord is forgotten."""
    channels, n = voct.shape
    step = state[STEP]
    elapsed = state[ELAPSED]
    gate_left = state[GATE_LEFT]
    clock_high = state[CLOCK_HIGH] > 0.5
    since_clock = state[SINCE_CLOCK]
    clock_period = state[CLOCK_PERIOD]
    presses = state[PRESSES]
    any_held = state[ANY_HELD] > 0.5
    pitch = state[PITCH]
    vel = state[VELOCITY]
    was_open = state[GATE_WAS] > 0.5
    held = members_count = 0
    was_latching = -1
    soonest = 0
    for i in range(n):
        latching = latch[0, i] > 0.5
        if i == soonest or latching != was_latching:
            was_latching = latching
            if i == release[0]:
                channels_state[:, LATCHED] = 0.0
            fresh = not any_held   # a press now starts a new chord, the latched one forgotten
            held = members_count = 0
            soonest = n
            for c in range(channels):
                high = gate[c, i] > 0.5
                if high != (channels_state[c, WAS_HIGH] > 0.5):
                    if high:
                        if fresh:
                            channels_state[:, LATCHED] = 0.0
                            members_count = 0
                            fresh = False
                        presses += 1.0
                        channels_state[c, PRESSED] = presses
                        channels_state[c, LATCHED] = 1.0
                        channels_state[c, KEPT_PITCH] = voct[c, i]
                        channels_state[c, KEPT_VELOCITY] = velocity[c, i]
                    channels_state[c, WAS_HIGH] = 1.0 if high else 0.0
                    upcoming[c] = _next_change(gate, c, i + 1, high)
                elif i == 0:
                    upcoming[c] = _next_change(gate, c, 1, high)
                soonest = min(soonest, upcoming[c])
                held += high
                members_count += _member(channels_state, c, latching)
            if release[0] > i:
                soonest = min(soonest, release[0])
        started = held > 0 and not any_held
        any_held = held > 0

        r = rate[0, i]
        stepping = False
        clocked = clock[0, i] > 0.5
        if started:
            step = 0.0
            elapsed = 0.0
            stepping = r > 0.0 or clocked
        elif r > 0.0:
            elapsed += 1.0
            period = samplerate / r
            if elapsed >= period:
                elapsed -= period
                if elapsed >= period:   # the rate leapt up: start its cycle here
                    elapsed = 0.0
                stepping = True
        rising = clocked and not clock_high
        clock_high = clocked
        if since_clock >= 0.0:   # -1 until the clock's first edge
            since_clock += 1.0
        if rising:
            if since_clock > 0.0:
                clock_period = since_clock
            since_clock = 0.0
            stepping = True

        dip = False
        if members_count == 0:
            gate_left = 0.0
        elif stepping:
            tied = length[0, i] >= 1.0
            dip = was_open and not tied
            total = min(max(int(octaves[0, i]), 1), MAX_OCTAVES) * members_count
            m = int(mode[0, i])
            if m == RANDOM:
                rng[0], u = random_step(rng[0])
                index = min(int((u + 1.0) * 0.5 * total), total - 1)
            else:
                index = _index(m, int(step), total)
            for c in range(channels):
                if not _member(channels_state, c, latching):
                    keys[c] = np.nan
                elif m == ORDER:
                    keys[c] = channels_state[c, PRESSED]
                else:
                    keys[c] = channels_state[c, KEPT_PITCH] if latching else voct[c, i]
            _order(keys, members, members_count)
            chosen = int(members[index % members_count])
            playing = channels_state[chosen, WAS_HIGH] > 0.5
            pitch = (voct[chosen, i] if playing else channels_state[chosen, KEPT_PITCH]) + index // members_count
            vel = velocity[chosen, i] if playing else channels_state[chosen, KEPT_VELOCITY]
            step += 1.0
            fraction = min(max(length[0, i], 0.0), 1.0)
            if tied:
                gate_left = np.inf
            elif r > 0.0 and not rising:
                gate_left = max(1.0, fraction * samplerate / r)
            elif clock_period > 0.0:
                gate_left = max(1.0, fraction * clock_period)
            else:
                gate_left = -1.0   # the clock's first edge: as long as its pulse
        out_voct[0, i] = pitch
        out_velocity[0, i] = vel
        if dip and i > 0:   # the low sample comes out of the step before, so this one starts on time
            out_gate[0, i - 1] = 0.0
            dip = False
        if dip:
            was_open = False
        else:
            if gate_left < 0.0 and not clock_high:
                gate_left = 0.0
            was_open = gate_left != 0.0
            if gate_left > 0.0:
                gate_left -= 1.0
        out_gate[0, i] = 1.0 if was_open else 0.0
    state[STEP] = step
    state[ELAPSED] = elapsed
    state[GATE_LEFT] = gate_left
    state[CLOCK_HIGH] = 1.0 if clock_high else 0.0
    state[SINCE_CLOCK] = since_clock
    state[CLOCK_PERIOD] = clock_period
    state[PRESSES] = presses
    state[ANY_HELD] = 1.0 if any_held else 0.0
    state[PITCH] = pitch
    state[VELOCITY] = vel
    state[GATE_WAS] = 1.0 if was_open else 0.0
    release[0] = -1


class Arp(Module):
    """Reads a note source's cables (``keys`` voct, gate and velocity) and
    plays the keys held, one at a time, on one voice. Its outputs have the
    same names as keys' so it drops in between keys and a voice's vco and
    envelope. The pattern restarts from its first step whenever the first
    key goes down after none were held."""

    type_name = "arp"
    description = "Arpeggiator: the held keys one at a time, up, down, both ways, as played or at random"
    inputs = (
        Port("voct", CONTROL, "pitch of each voice: keys.voct"),
        Port("gate", CONTROL, "which voices are held: keys.gate"),
        Port("velocity", CONTROL, "velocity of each voice: keys.velocity", default=1.0),
        Port("clock", CONTROL, "each rising edge plays the next step (a pattern's gate: steps on the song's grid)"),
    )
    outputs = (
        Port("voct", CONTROL, "the step's pitch, held after the keys are let go", channels=1),
        Port("gate", CONTROL, "high for length of each step while a key is held (or latched)", channels=1),
        Port("velocity", CONTROL, "the velocity of the step's key", channels=1),
    )
    params = (
        Param("rate", 8.0, 0.0, 100.0, "Hz",
              doc="steps a second (8: 16ths at 120 BPM; 1/16 keeps 16ths at any tempo); 0 steps on the clock alone"),
        Param("mode", "up", choices=ARP_MODES,
              doc="up, down, updown/downup (no repeat at the turns), converge (from the outside in), diverge, "
                  "pinkyup/thumbup (the top/bottom note between the others), order (as pressed), random"),
        Param("octaves", 1, 1, MAX_OCTAVES, integer=True,
              doc="the chord again this many octaves up, one after another"),
        Param("length", 0.5, 0.01, 1.0, glide=False,
              doc="each step's gate, as a fraction of the step (1 ties the steps), taken as the step starts"),
        Param("latch", "off", choices=("off", "on"),
              doc="on: keeps playing the last chord after its keys are let go, until a new one or the song stops"),
    )
    state_fields = ("state", "held", "rng")

    def setup(self):
        self.state = np.zeros(11)
        self.state[SINCE_CLOCK] = -1.0
        self.held = np.zeros((self.channels, 5))
        self.rng = np.zeros(1, dtype=np.uint64)
        self._keys = np.zeros(self.channels)
        self._members = np.zeros(self.channels)
        self._upcoming = np.zeros(self.channels, dtype=np.int64)
        self._release = np.full(1, -1, dtype=np.int64)

    def on_event(self, offset, event):
        """A stopped transport ends a latched chord too: the keys it came
        from are let go at the same sample, and nothing else would."""
        if isinstance(event, AllNotesOff):
            self._release[0] = max(self._release[0], offset)

    def process(self, inputs, params, outputs):
        _arp_kernel(inputs["voct"], inputs["gate"], inputs["velocity"], inputs["clock"], params["rate"],
                    params["mode"], params["octaves"], params["length"], params["latch"],
                    outputs["voct"], outputs["gate"], outputs["velocity"], self.state, self.held,
                    self._keys, self._members, self._upcoming, self.rng, self._release, self.samplerate)


MODULES = (Arp,)
