"""check_module, the contract test plugin authors run, catches the state
they forget: a field named but never made, and state whose loss shows
only later, when a slow clock ticks; it and the other helpers refuse what
the engine would silence, and the registry what it could not run."""
import numpy as np
import pytest

from synthcli.api import AUDIO, Module, NoteOff, NoteOn, Param, Port
from synthcli.plugins import check_module_class
from synthcli.testing import check_module, render_module, render_song

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


class LateNaN(Clock):
    """Keeps its state, and its output turns NaN on a later tick."""
    type_name = "latenan"

    def process(self, inputs, params, outputs):
        super().process(inputs, params, outputs)
        if self.count[0] > 3 * TICK:
            outputs["out"][:] = np.nan


def test_an_output_that_turns_nan_later_is_said_to_be_not_finite_not_blamed_on_the_state():
    """The plugin audit: check_module told a module whose output went NaN
    half a second in that its state_fields missed something."""
    with pytest.raises(AssertionError, match=r"^latenan\.out is not finite 0\.2\d\d s into random input$"):
        check_module(LateNaN)


class Rebinds(Clock):
    type_name = "rebinds"

    def process(self, inputs, params, outputs):
        outputs["out"] = np.ones(self.blocksize)


class Returns(Clock):
    type_name = "returns"

    def process(self, inputs, params, outputs):
        return np.ones((1, self.blocksize))


class Raises(Clock):
    type_name = "raises"

    def process(self, inputs, params, outputs):
        raise ValueError("boom")


@pytest.mark.parametrize("cls, why", [
    (Rebinds, r"rebinds: process\(\) assigned outputs\['out'\] instead of writing into it, so the engine loses "
              r"its sound \(write outputs\['out'\]\[\.\.\.\] = \.\.\.\)"),
    (Returns, r"returns: process\(\) returned a value, which the engine ignores"),
])
def test_what_the_engine_would_silence_fails_the_helpers(cls, why):
    for check in (lambda: render_module(cls, 2), lambda: check_module(cls)):
        with pytest.raises(AssertionError, match=why):
            check()


def test_every_built_in_writes_into_its_outputs(registry):
    """The engine looks every block for a plugin's output assigned instead
    of written into (its last block would buzz on until the next look) but
    only every sixteenth at the built-ins' (engine/steps.py, Step.sounding):
    this holds them to it, as render_module looks every block."""
    from synthcli.engine.steps import BUILTIN_MODULES
    from synthcli.plugins import BUILTIN_PACKAGE
    built_in = [entry.cls for entry in registry.qualified.values() if entry.package == BUILTIN_PACKAGE]
    assert len(built_in) > 20 and all(cls.__module__.startswith(BUILTIN_MODULES) for cls in built_in)
    for cls in built_in:
        if not any(p.file for p in cls.params):
            render_module(cls, 4, channels=2, events=[(300, NoteOn(60.0)), (700, NoteOff(60.0))]
                          if cls.accepts_notes else None)


def test_coerce_of_a_note_length_says_the_patch_turns_it_into_a_number():
    """It said "expected a number or a note length such as 1/8d" of 1/8d."""
    with pytest.raises(ValueError, match=r"^1/8d is a note length, which a patch turns into seconds at its "
                                         r"tempo; coerce\(\) takes the number$"):
        Param("time", 0.1, 0.0, 1.0, "s").coerce("1/8d")
    with pytest.raises(ValueError, match=r"^3/16 is a note length, which a patch turns into Hz"):
        Param("rate", 1.0, 0.0, 100.0, "Hz").coerce("3/16")
    with pytest.raises(ValueError, match=r"^expected a number or a note length such as 1/8d \(0\.\.1 s\)$"):
        Param("time", 0.1, 0.0, 1.0, "s").coerce("1/x")


def test_render_song_fails_with_the_fault_the_engine_silenced():
    song = "length 1\nadd raises r\nconnect r out\n"
    with pytest.raises(AssertionError, match=r"^module 'r' failed: ValueError in process\(\): boom"):
        render_song(song, [Raises])
    assert np.abs(render_song(song.replace("raises", "clock"), [Clock])).max() > 0.1


@pytest.mark.parametrize("declaration, why", [
    ({"inputs": (Port("in", default="one"),)}, "input 'in': default='one' is not a finite number"),
    ({"inputs": (Port("in", default=float("nan")),)}, "input 'in': default=nan is not a finite number"),
    ({"outputs": (Port("out", channels=0),)}, "port 'out': channels=0 is not None or a whole number 1..16"),
    ({"outputs": (Port("out", channels=64),)}, "port 'out': channels=64 is not None or a whole number 1..16"),
    ({"params": (Param("p", 5, min=10, max=1),)}, "param 'p': min 10 is above max 1"),
    ({"params": (Param("p", "a b", choices=("a b", "c")),)}, "param 'p': choice 'a b' is not one word"),
    ({"state_fields": "count"}, "state_fields = 'count' is not a tuple of attribute names"),
    # Text that `synth modules` and `synth help` show: None there was a traceback (the plugin audit).
    ({"description": None}, "description=None is not a string"),
    ({"outputs": (Port("out", AUDIO, None),)}, "port 'out': doc=None is not a string"),
    ({"params": (Param("p", 1.0, 0.0, 2.0, 5),)}, "param 'p': unit=5 is not a string"),
    ({"params": (Param("p", 1.0, 0.0, 2.0, doc=123),)}, "param 'p': doc=123 is not a string"),
])
def test_a_declaration_the_engine_cannot_use_is_refused_at_load(declaration, why):
    broken = type("Broken", (Clock,), {"type_name": "broken", **declaration})
    assert check_module_class(broken).startswith(why)
    assert check_module_class(Clock) is None
