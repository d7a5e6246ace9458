"""check_module, the contract test plugin authors run, catches the state
they forget: a field named but never made, and state whose loss shows
only later, when a slow clock ticks."""
import numpy as np
import pytest

from synthcli.api import Module, Port
from synthcli.testing import check_module

TICK = 4800   # samples: a tenth of a second at 48 kHz, many blocks after the round trip


class Clock(Module):
    """A square wave of 5 Hz from a sample counter: forget the counter and
    a restored copy ticks late, though its first blocks match."""
    type_name = "clock"
    outputs = (Port("out"),)
    state_fields = ("count",)

    def setup(self):
        self.count = np.zeros(1, dtype=np.int64)
        self.ramp = np.arange(self.blocksize)

    def process(self, inputs, params, outputs):
        outputs["out"][:] = (self.count[0] + self.ramp) // TICK % 2
        self.count[0] += self.blocksize


class ForgetfulClock(Clock):
    type_name = "forgetfulclock"
    state_fields = ()


class Unmade(Clock):
    type_name = "unmade"
    state_fields = ("count", "phase")


def test_a_module_that_keeps_its_state_passes():
    check_module(Clock)


def test_state_whose_loss_shows_late_is_caught():
    with pytest.raises(AssertionError, match=r"forgetfulclock: output 'out' differs 0\.09\d s after "
                                             r"get_state/set_state; is every piece of DSP state listed"):
        check_module(ForgetfulClock)


def test_a_state_field_never_made_is_named():
    with pytest.raises(AssertionError, match=r"unmade: state field 'phase' is not a numpy array after setup\(\)"):
        check_module(Unmade)
