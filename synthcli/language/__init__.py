"""The synthcli command language: one parser for patches, songs, the REPL and OSC."""
from .commands import (Add, At, Command, Connect, Disconnect, Endpoint, Length, Map, Meter, Midiout, Pattern, Remove,
                       Require, Set, Tempo, Token)
from .parser import COMMANDS, MAX_BARS, WHOLE_FILE, lines, parse_line, parse_text, tokenize, unquote

__all__ = ["Add", "At", "Command", "Connect", "Disconnect", "Endpoint", "Length", "Map", "Meter", "Midiout", "Pattern",
           "Remove", "Require", "Set", "Tempo", "Token",
           "COMMANDS", "MAX_BARS", "WHOLE_FILE", "lines", "parse_line", "parse_text", "tokenize", "unquote"]
