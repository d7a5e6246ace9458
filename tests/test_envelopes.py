"""adsr: stage times measured on the rendered curve, to the sample."""
import numpy as np
import pytest

from synthcli.modules.envelopes import Adsr
from synthcli.testing import check_module, render_module

FS = 48000
BLOCK = 256
BLOCKS = 160  # about 0.85 s
MS = FS // 1000
ON = 100  # gate rises here, mid-block
EPS = 1e-9


def gate(*spans):
    """A gate high over each (start, stop) sample span."""
    g = np.zeros(BLOCKS * BLOCK)
    for start, stop in spans:
        g[start:stop] = 1.0
    return g


def render(g, channels=1, **params):
    return render_module(Adsr, BLOCKS, params=params, inputs={"gate": g}, channels=channels,
                         samplerate=FS, blocksize=BLOCK)["out"]


def first(condition, start=0):
    """Index of the first sample from ``start`` where ``condition`` holds."""
    hits = np.flatnonzero(condition[start:])
    assert hits.size, "never happened"
    return start + hits[0]


def stage_times(y, off, sustain):
    """Seconds from the gate edge to the peak, from the peak to sustain,
    and from the gate falling to silence."""
    peak = first(y >= 1 - EPS, ON)
    settled = first(y <= sustain + EPS, peak)
    silent = first(y <= 0, off)
    return (peak - ON) / FS, (settled - peak) / FS, (silent - off) / FS


@pytest.mark.parametrize("curve", ["linear", "exp"])
def test_stage_times(curve):
    off = ON + FS // 2
    y = render(gate((ON, off)), attack=0.05, decay=0.1, sustain=0.4, release=0.2, curve=curve)[0]
    attack, decay, release = stage_times(y, off, 0.4)
    assert attack == pytest.approx(0.05, abs=0.001)
    assert decay == pytest.approx(0.1, abs=0.001)
    assert release == pytest.approx(0.2, abs=0.001)
    assert y[off - 1] == pytest.approx(0.4)
    assert np.all(y >= 0) and np.all(y <= 1)
    half_attack, half_decay = y[ON + 25 * MS], y[ON + 100 * MS]
    if curve == "linear":
        assert half_attack == pytest.approx(0.5, abs=0.001)
        assert half_decay == pytest.approx(0.7, abs=0.001)
        assert np.allclose(np.diff(y[ON:ON + 40 * MS], 2), 0, atol=1e-12)
    else:  # RC shapes: the attack bows up, the decay drops fast then glides in
        assert 0.6 < half_attack < 0.9
        assert half_decay < 0.42


def test_zero_times_are_steps():
    off = ON + 1000
    y = render(gate((ON, off)), attack=0, decay=0, sustain=0.5, release=0)[0]
    assert y[ON - 1] == 0 and y[ON] == 1
    assert np.all(y[ON + 1:off] == 0.5)
    assert np.all(y[off:] == 0)


@pytest.mark.parametrize("curve", ["linear", "exp"])
def test_release_from_mid_attack_starts_at_the_current_level(curve):
    off = ON + 50 * MS
    y = render(gate((ON, off)), attack=0.1, release=0.2, curve=curve)[0]
    level = y[off - 1]
    assert 0.4 < level < 0.8
    assert abs(y[off] - level) < 1e-3
    assert np.all(np.diff(y[off:]) <= 0)
    assert (first(y <= 0, off) - off) / FS == pytest.approx(0.2, abs=0.001)


@pytest.mark.parametrize("curve", ["linear", "exp"])
def test_retrigger_climbs_from_the_current_level(curve):
    off, again = ON + 300 * MS, ON + 350 * MS
    y = render(gate((ON, off), (again, BLOCKS * BLOCK)),
               attack=0.05, decay=0.1, sustain=0.4, release=0.2, curve=curve)[0]
    level = y[again - 1]
    assert 0.05 < level < 0.4  # caught in the release
    assert np.abs(np.diff(y)).max() < 1 / (0.05 * FS) + 1e-3
    assert y[again] > level
    climb = (first(y >= 1 - EPS, again) - again) / FS
    if curve == "linear":  # the attack's slope, over the distance left
        assert climb == pytest.approx((1 - level) * 0.05, abs=0.001)
    else:
        assert climb < 0.05


def test_gate_held_from_the_start_triggers():
    y = render(np.ones(BLOCKS * BLOCK), attack=0.01, sustain=0.3)[0]
    assert y[0] > 0 and y[-1] == pytest.approx(0.3)


def test_channels_are_independent():
    spans = [(ON, ON + 200 * MS), (ON + 50 * MS, ON + 100 * MS), (ON + 300 * MS, ON + 500 * MS)]
    gates = np.array([gate(s) for s in spans])
    together = render(gates, channels=3, decay=0.05, release=0.1)
    for c in range(3):
        np.testing.assert_array_equal(together[c], render(gates[c], decay=0.05, release=0.1)[0])
    assert not np.array_equal(together[0], together[1])


def test_check_module():
    check_module(Adsr)


def test_a_change_of_curve_lands_on_its_own_sample_whatever_the_block_size():
    """A pattern steps `curve` inside a block, here in the middle of the
    attack and again in the release: blocks of 256 and of 40 give the
    same bits, the linear curve's up to the first change."""
    g = gate((ON, 300 * MS))
    curve = np.zeros(g.size)
    curve[ON + 5 * MS:] = 1.0
    curve[400 * MS + 7:] = 0.0
    params = {"attack": 0.02, "release": 0.3, "curve": curve}
    outs = [render_module(Adsr, g.size // b, params=params, inputs={"gate": g}, samplerate=FS, blocksize=b)["out"][0]
            for b in (256, 40)]
    np.testing.assert_array_equal(outs[0], outs[1])
    linear = render(g, attack=0.02, release=0.3)[0]
    assert np.flatnonzero(outs[0] != linear)[0] == ON + 5 * MS
