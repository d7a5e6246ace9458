"""The built-in module library. It registers through the same pluggy hook
as any third-party plugin, so the built-ins prove the plugin path works.

One file per family; the DSP kernels live beside the module that uses them,
and the few helpers several families' kernels call in dsp.py.
"""
from ..hookspecs import hookimpl
from . import arp, drums, dynamics, effects, envelopes, filters, keys, midiout, oscillators, pluck, sampler, shapers

FAMILIES = (oscillators, pluck, sampler, filters, envelopes, dynamics, shapers, effects, keys, arp, drums, midiout)


@hookimpl
def register_modules(register):
    for family in FAMILIES:
        for cls in family.MODULES:
            register(cls)
