"""One error type for everything a user can get wrong, so every front end
(CLI, REPL, OSC, file loaders) reports it the same way: one line, with the
place it happened."""
from __future__ import annotations

import difflib
from typing import Iterable


class SynthError(Exception):
    """A user-facing error: what went wrong and where.

    ``str(error)`` is the one line to show: ``file:line:col: message``, with
    whichever parts of the place are known.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.col = col

    def at(self, *, source: str | None = None, line: int | None = None,
           col: int | None = None) -> "SynthError":
        """Fill in the parts of the place that are still unknown."""
        self.source = self.source or source
        self.line = self.line or line
        self.col = self.col or col
        return self

    def __str__(self) -> str:
        place = [str(p) for p in (self.source, self.line, self.col) if p is not None]
        return f"{':'.join(place)}: {self.message}" if place else self.message


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ", did you mean 'x'?" suffix, or "" when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f", did you mean '{close[0]}'?" if close else ""
