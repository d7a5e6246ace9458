"""Tab completion from what exists right now: the command tables, the
registry's module types, the patch's modules and their ports and
parameters, parameter choices, and files for load, save and file
parameters.

It reads the session's current patch on every keypress, so a module added
a moment ago completes at once; it never parses more than the line being
typed, and never the whole language.
"""
from __future__ import annotations

import re
from typing import Iterable

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from ..language import COMMANDS, WHOLE_FILE
from ..patch import MASTER
from .commands import COMMAND, FILE, MODULE_OR_TYPE, OUTPUT, REPL_COMMANDS

#: A word as the tokenizer sees it: a quoted pattern is one word.
WORD = re.compile(r'"[^"]*"?|[^\s"]+')
#: Commands that cannot stand inside ``at BAR ...``.
NOT_TIMED = ("at", *WHOLE_FILE)


class ReplCompleter(Completer):
    def __init__(self, session) -> None:
        self.session = session
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event) -> Iterable[Completion]:
        line = document.current_line_before_cursor
        words = WORD.findall(line)
        if not words or line[-1].isspace():
            words.append("")
        *args, word = words
        if word.startswith('"'):
            return
        yield from self.complete(args, word, complete_event)

    def complete(self, args: list[str], word: str, event=None) -> Iterable[Completion]:
        if not args:
            yield from self.commands(word, [*COMMANDS, *REPL_COMMANDS])
            return
        verb, given = args[0], len(args) - 1
        if verb == "at":
            if given >= 1:
                inner = args[2:]
                if inner:
                    yield from self.complete(inner, word, event)
                else:
                    yield from self.commands(word, [c for c in COMMANDS if c not in NOT_TIMED])
            return
        if verb == "add":
            if given == 0:
                yield from self.types(word)
            elif given == 1:
                yield from self.fresh_name(args[1], word)
            else:
                yield from self.add_params(args[1], args[3:], word, event)
        elif verb == "remove" and given == 0:
            yield from self.modules(word, lambda name, inst: name != MASTER)
        elif verb in ("connect", "disconnect") and given <= 1:
            yield from self.endpoints(word, "out" if given == 0 else "in")
        elif verb == "set":
            if given == 0:
                yield from self.endpoints(word, "param")
            elif given == 1:
                yield from self.values(args[1], word, event)
        elif verb == "pattern" and given == 0:   # note sources, and NAME. of what has a parameter to turn
            if "." not in word:
                yield from self.modules(word, lambda name, inst: inst.type.cls.accepts_notes)
            yield from self.endpoints(word, "pattern")
        elif verb in REPL_COMMANDS and given == 0:
            argument = REPL_COMMANDS[verb].argument
            if argument == FILE:
                yield from self.paths.get_completions(Document(word), event)
            elif argument == MODULE_OR_TYPE:
                yield from self.modules(word)
                yield from self.types(word)
            elif argument == COMMAND:
                yield from self.commands(word, [*COMMANDS, *REPL_COMMANDS])
                yield from self.types(word, addable=False)
            elif argument == OUTPUT:
                yield from self.endpoints(word, "out")

    # -- kinds of words ---------------------------------------------------------------

    def commands(self, word: str, names: list[str]) -> Iterable[Completion]:
        for name in names:
            if name.startswith(word):
                spec = COMMANDS.get(name) or REPL_COMMANDS[name]
                yield Completion(name, -len(word), display_meta=spec.summary)

    def types(self, word: str, addable: bool = True) -> Iterable[Completion]:
        """Plain names, and the qualified name of a type whose plain name
        another package took first (the only way to add it). The master's
        type only where it is not to be added (`help out` describes it)."""
        registry = self.session.registry
        shadowed = {q: e for q, e in registry.qualified.items() if registry.types.get(e.name) is not e}
        for name, entry in sorted({**registry.types, **shadowed}.items()):
            if name.startswith(word) and not (addable and name == MASTER):
                yield Completion(name, -len(word), display_meta=entry.cls.description)

    def modules(self, word: str, keep=lambda name, inst: True, suffix: str = "") -> Iterable[Completion]:
        for name, inst in self.session.patch.modules.items():
            if name.startswith(word) and keep(name, inst):
                yield Completion(name + suffix, -len(word), display=name, display_meta=inst.type.name)

    def fresh_name(self, type_name: str, word: str) -> Iterable[Completion]:
        base = type_name.split(":")[-1]
        taken = self.session.patch.modules
        number = next(n for n in range(1, len(taken) + 2) if f"{base}{n}" not in taken)
        if f"{base}{number}".startswith(word):
            yield Completion(f"{base}{number}", -len(word), display_meta="a free name")

    def add_params(self, type_name: str, given: list[str], word: str, event=None) -> Iterable[Completion]:
        registry = self.session.registry
        if type_name not in registry:
            return
        cls = registry.get(type_name).cls
        key, eq, value = word.partition("=")
        if eq:
            param = cls.param(key)
            if param is not None and param.file:
                yield from self.paths.get_completions(Document(value), event)
            elif param is not None:
                yield from self.choices(param, value)
            return
        used = {w.partition("=")[0] for w in given}
        for param in cls.params:
            if param.name.startswith(word) and param.name not in used:
                yield Completion(f"{param.name}=", -len(word),
                                 display_meta=f"{param.format(param.default_value)}{param.range_text()}")

    def choices(self, param, word: str) -> Iterable[Completion]:
        for choice in param.choices:
            if choice.startswith(word):
                yield Completion(choice, -len(word), display_meta=param.name)

    def endpoints(self, word: str, kind: str) -> Iterable[Completion]:
        """Modules, then after ``NAME.`` the ports of that kind: ``out``
        (outputs), ``in`` (inputs and parameters), ``param`` (parameters),
        ``pattern`` (what a pattern may turn). A cable or a pattern into a
        structural parameter (a note source's voices, a file) is refused:
        it is only ever set."""
        name, dot, port = word.partition(".")
        if not dot:
            if kind in ("param", "pattern"):
                yield from self.modules(word, lambda n, inst: any(kind == "param" or not p.structural
                                                                  for p in inst.type.cls.params), suffix=".")
            else:
                yield from self.modules(word)
            return
        inst = self.session.patch.modules.get(name)
        if inst is None:
            return
        cls = inst.type.cls
        if kind == "out":
            ports = [(p.name, p.doc) for p in cls.outputs]
        elif kind == "in":
            ports = [(p.name, p.doc) for p in cls.inputs] + [(p.name, p.range_text().strip()) for p in cls.params
                                                              if not p.structural]
        else:
            ports = [(p.name, p.range_text().strip()) for p in cls.params
                     if kind == "param" or not p.structural]
        for pname, meta in ports:
            if pname.startswith(port):
                yield Completion(f"{name}.{pname}", -len(word), display=pname, display_meta=meta)

    def values(self, target: str, word: str, event=None) -> Iterable[Completion]:
        """Choices, files for a file, or the value a numeric parameter has
        now (to edit it)."""
        name, _, pname = target.partition(".")
        inst = self.session.patch.modules.get(name)
        param = inst.type.cls.param(pname) if inst is not None else None
        if param is None:
            return
        if param.file:
            yield from self.paths.get_completions(Document(word), event)
            return
        if param.choices:
            yield from self.choices(param, word)
            return
        now = param.format(inst.params[pname])
        if now.startswith(word):
            yield Completion(now, -len(word), display_meta=f"now{param.range_text()}")
