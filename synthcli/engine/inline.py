"""The inline executor: every module runs in the engine's own thread.

It is the reference the other executors must match bit for bit, and the
fastest for light patches, where any hand-off would cost more than the DSP.
"""
from __future__ import annotations

from ..plugins import Registry
from .board import Board
from .schedule import Schedule
from .steps import Host, Report, run_step


class InlineExecutor:
    name = "inline"

    def __init__(self, registry: Registry, samplerate: float, blocksize: int, report: Report) -> None:
        self.registry = registry
        self.report = report
        self.host = Host(samplerate, blocksize)
        self.steps = []
        self.board: Board | None = None

    def rebuild(self, schedule: Schedule) -> Board:
        self.board = Board(len(schedule.nodes), schedule.rows, self.host.blocksize)
        self.host.update({n.name: (n, self.registry.get(n.type).cls) for n in schedule.nodes})
        self.steps = self.host.steps(schedule, self.board, {n.name for n in schedule.nodes})
        return self.board

    def deliver(self, name: str, offset: int, event: tuple) -> None:
        self.host.deliver(name, offset, event, self.report)

    def run_block(self, block: int) -> None:
        board, report = self.board, self.report
        for step in self.steps:
            run_step(step, block, board, report)

    def close(self) -> None:
        self.host.update({})
        self.steps = []
