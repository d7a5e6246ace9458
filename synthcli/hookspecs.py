"""The plugin hooks. A plugin is any package with an entry point in group
``synthcli`` whose module implements these hooks with :data:`hookimpl`.

Hooks take a ``register`` callback rather than returning values, as the
``llm`` plugin system does, so the host can add hook arguments later without
breaking plugins that do not name them.
"""
from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from .api import Module

hookspec = pluggy.HookspecMarker("synthcli")
hookimpl = pluggy.HookimplMarker("synthcli")


@hookspec
def register_modules(register: "Callable[[type[Module]], None]") -> None:
    """Register the plugin's module types.

    Parameters
    ----------
    register : callable
        Call ``register(ModuleClass)`` once for each module type the plugin
        provides, a subclass of :class:`synthcli.api.Module`. A class that
        breaks the module contract is skipped, with a warning naming it,
        and the plugin's other modules still load.
    """
