"""Syntax highlighting of the line being typed.

A mistyped command or module type shows as one before Enter is pressed;
everything else is coloured by its place in the command (type, module,
port, parameter, value). It reads the command tables and the registry,
never the full parser, so a half-typed line colours without errors.
"""
from __future__ import annotations

import re

from prompt_toolkit.document import Document
from prompt_toolkit.lexers import Lexer

from ..language import COMMANDS
from .commands import REPL_COMMANDS

PIECE = re.compile(r'(\s+)|(#.*)|("[^"]*"?)|([^\s#"][^\s"]*)')   # a "#" inside a word is a sharp
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(/\d+)?\Z")
#: Where a command takes a value that is a word (`set o.wave saw`, a MIDI
#: port, a package, `map cc`), which would otherwise colour as a module.
VALUE_AT = {"set": 2, "midiout": 2, "require": 1, "map": 1}


class ReplLexer(Lexer):
    def __init__(self, registry) -> None:
        self.registry = registry

    def lex_document(self, document: Document):
        lines = document.lines
        return lambda number: self.fragments(lines[number]) if number < len(lines) else []

    def fragments(self, line: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        words: list[str] = []
        for space, comment, string, word in PIECE.findall(line):
            if space or comment:
                out.append(("class:comment" if comment else "", space or comment))
                continue
            position = len(words)
            words.append(string or word)
            if string:
                out.append(("class:string", string))
                continue
            if words[0] == "at" and position >= 2:   # `at BAR COMMAND ...`: the command starts over
                words_of_command = words[2:]
                position -= 2
            else:
                words_of_command = words
            out += self.word(word, position, words_of_command[0])
        return out

    def word(self, word: str, position: int, verb: str) -> list[tuple[str, str]]:
        if position == 0:
            style = ("class:command" if word in COMMANDS else "class:repl" if word in REPL_COMMANDS
                     else "class:unknown")
            return [(style, word)]
        if verb == "add" and position == 1:
            return [("class:type" if word in self.registry else "class:unknown", word)]
        if NUMBER.match(word):
            return [("class:number", word)]
        if VALUE_AT.get(verb) == position:
            return [("class:value", word)]
        key, eq, value = word.partition("=")
        if eq:
            return [("class:param", key), ("", "="), ("class:number" if NUMBER.match(value) else "class:value", value)]
        name, dot, port = word.partition(".")
        if verb in COMMANDS:
            return [("class:module", name)] + ([("", "."), ("class:port", port)] if dot else [])
        return [("", word)]
