"""synthcli-chiptune: a game-console voice and a bitcrusher for synthcli.

The entry point (group ``synthcli``) names this module; synthcli reads
``SYNTHCLI_API`` here before it calls the hook.
"""
from synthcli.hookspecs import hookimpl

from .crusher import Bitcrusher
from .voice import Chip

__version__ = "0.1.0"

#: The synthcli module API this plugin is written against (synthcli.api.API_VERSION).
SYNTHCLI_API = "1.0"

MODULES = (Chip, Bitcrusher)


@hookimpl
def register_modules(register):
    for cls in MODULES:
        register(cls)
