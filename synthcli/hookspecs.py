"""The plugin hooks. A plugin is any package with an entry point in group
``synthcli`` whose module implements these hooks with :data:`hookimpl`.

Hooks take a ``register`` callback rather than returning values, as the
``llm`` plugin system does, so the host can add hook arguments later without
breaking plugins that do not name them.
"""
import pluggy

hookspec = pluggy.HookspecMarker("synthcli")
hookimpl = pluggy.HookimplMarker("synthcli")


@hookspec
def register_modules(register):
    """Call ``register(ModuleClass)`` once for each module type the plugin
    provides (a subclass of :class:`synthcli.api.Module`)."""
