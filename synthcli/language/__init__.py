"""The synthcli command language: one parser for patches, songs, the REPL and OSC."""
from .commands import Add, Command, Connect, Disconnect, Endpoint, Remove, Set, Token
from .parser import COMMANDS, parse_line, parse_text, tokenize

__all__ = ["Add", "Command", "Connect", "Disconnect", "Endpoint", "Remove", "Set", "Token",
           "COMMANDS", "parse_line", "parse_text", "tokenize"]
