"""Control over OSC: the command language and typed addresses over UDP
(see docs/osc.md)."""
from .server import OscServer

__all__ = ["OscServer"]
