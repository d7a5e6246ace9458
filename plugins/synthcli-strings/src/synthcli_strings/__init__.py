"""synthcli-strings: physical-model strings for synthcli, a Karplus-Strong
plucked string and a comb filter.

The entry point (group ``synthcli``) names this module; synthcli reads
``SYNTHCLI_API`` here before it calls the hook.
"""
from synthcli.hookspecs import hookimpl

from .comb import Comb
from .karplus import String

__version__ = "0.1.0"

#: The synthcli module API this plugin is written against (synthcli.api.API_VERSION).
SYNTHCLI_API = "1.4"  # Param(glide=False) is 1.3; the tests use testing.render_song, 1.4

MODULES = (String, Comb)


@hookimpl
def register_modules(register):
    for cls in MODULES:
        register(cls)
