"""The song as the REPL keeps it: the patch plus the time commands typed
or loaded (tempo, meter, length, pattern, at).

Keeping time apart from the patch lets every patch edit go through the
Patch model, while the song text is composed from both whenever it is
needed, in a canonical order, so a saved song loads back to the same text.
"""
from __future__ import annotations

from fractions import Fraction

from ..language import At, Command, Length, Meter, Pattern, Tempo
from ..patch import Patch
from ..sequencer.song import TIME_COMMANDS
from ..theory import DEFAULT_TEMPO

#: Each of these is said once in a song: a new one replaces the old.
SINGLE = (Tempo, Meter, Length)


class Timeline:
    def __init__(self, commands: list[Command] | None = None) -> None:
        self.commands: list[Command] = list(commands or [])

    @staticmethod
    def is_time(command: Command) -> bool:
        return isinstance(command, TIME_COMMANDS)

    def copy(self) -> "Timeline":
        return Timeline(self.commands)

    def __bool__(self) -> bool:
        return bool(self.commands)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeline) and self.lines() == other.lines()

    @property
    def tempo(self) -> Fraction:
        """The song's tempo at its start, which the patch keeps time by."""
        return next((Fraction(str(c.bpm)) for c in self.commands if isinstance(c, Tempo)), DEFAULT_TEMPO)

    def add(self, command: Command) -> None:
        """Add a time command as a song file would mean it: the last tempo,
        meter, length or pattern on a target is the one that counts."""
        if isinstance(command, SINGLE):
            self.commands = [c for c in self.commands if type(c) is not type(command)]
        elif isinstance(command, Pattern):
            self.commands = [c for c in self.commands
                             if not (isinstance(c, Pattern) and str(c.target) == str(command.target))]
        elif any(str(c) == str(command) for c in self.commands):
            return
        self.commands.append(command)

    def find_files_as(self, song) -> None:
        """Name each file its `at` lines set by the absolute path ``song``
        (made from them) found it at: the song text goes to the engine and
        to every later check with no folder to start a relative path from."""
        self.commands = [song.absolute.get(str(c), c) for c in self.commands]

    def lines(self) -> tuple[list[str], list[str]]:
        """The header (tempo, meter, length) and the body (patterns, then
        ``at`` by bar), each in canonical order."""
        rank = {Tempo: 0, Meter: 1, Length: 2}
        head = sorted((c for c in self.commands if isinstance(c, SINGLE)), key=lambda c: rank[type(c)])
        patterns = [c for c in self.commands if isinstance(c, Pattern)]
        timed = sorted((c for c in self.commands if isinstance(c, At)), key=lambda c: c.bar)
        return [str(c) for c in head], [str(c) for c in patterns + timed]

    def commands_by_line(self, patch: Patch) -> dict[int, Command]:
        """Which time command stands on which line of :meth:`song_text`,
        so a song error can name the command, not a line of a text the
        musician never saw."""
        head, body = self.lines()
        by_text = {str(c): c for c in self.commands}
        first_body = len(head) + len(patch.to_text().splitlines()) + 1
        found = {i + 1: by_text[line] for i, line in enumerate(head)}
        found.update({first_body + i: by_text[line] for i, line in enumerate(body)})
        return found

    def song_text(self, patch: Patch) -> str:
        head, body = self.lines()
        return "\n".join(head) + ("\n" if head else "") + patch.to_text() + "".join(f"{line}\n" for line in body)
