"""Every built-in module stays finite at any setting its parameters allow,
and with cables pushing them past their ranges (modulation may leave a
range; kernels clamp where it matters), for silent, denormal, full-scale
and far too loud input. A NaN is caught by the engine, which silences the
module: for a built-in at a legal setting that would be a bug."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthcli.api import NoteOff, NoteOn
from synthcli.modules import FAMILIES
from synthcli.testing import render_module

BUILT_IN = [cls for family in FAMILIES for cls in family.MODULES]
#: What a file parameter is set to: a tenth of a second of A4.
SOUND = str(Path(__file__).parent / "data" / "sound" / "a440.wav")
BLOCKS, BLOCKSIZE = 6, 64
SAMPLES = BLOCKS * BLOCKSIZE


def setting(draw, param):
    """A set value at an end of the range, the default or anywhere in it;
    or, as a cable would make it, a sweep across the range or from as far
    below it to as far above it."""
    if param.file:
        return draw(st.sampled_from(["", SOUND]))
    if param.choices:
        return draw(st.sampled_from(param.choices))
    how = draw(st.sampled_from(["min", "max", "default", "any", "swept", "beyond"]))
    if param.structural and how in ("swept", "beyond"):   # fixed for the module's life: no cable reaches it
        how = "default"
    if how == "swept":
        return np.linspace(param.min, param.max, SAMPLES)
    if how == "beyond":
        span = max(param.max - param.min, 1.0)
        return np.linspace(param.min - span, param.max + span, SAMPLES)
    value = {"min": param.min, "max": param.max, "default": param.default_value}.get(how)
    if value is None:
        value = draw(st.floats(param.min, param.max))
    return round(value) if param.integer else value


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda cls: cls.type_name)
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_built_in_module_stays_finite_at_any_setting(cls, data):
    channels = data.draw(st.sampled_from([1, 3]))
    params = {param.name: setting(data.draw, param) for param in cls.params}
    level = data.draw(st.sampled_from([0.0, 1e-310, 1.0, 10.0, 1e4]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    inputs = {port.name: rng.uniform(-level, level, (channels, SAMPLES)) for port in cls.inputs}
    events = [(0, NoteOn(60)), (100, NoteOn(64.5, 0.5)), (200, NoteOff(60))] if cls.accepts_notes else None
    out = render_module(cls, BLOCKS, params=params, inputs=inputs, channels=channels, blocksize=BLOCKSIZE,
                        events=events)
    for name, signal in out.items():
        assert np.isfinite(signal).all(), f"{cls.type_name}.{name} with {params} at input level {level}"
