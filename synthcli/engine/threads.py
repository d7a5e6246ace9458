"""The threads executor: partitions run on a pool of threads in the engine
process. Kept for comparison (``synth bench``): NumPy and numba release the
GIL, but at audio block sizes the hand-offs cost more than they save."""
from __future__ import annotations

import threading

from ..plugins import Registry
from .board import Board
from .partition import assign
from .schedule import Schedule
from .steps import Host, Report, Step, run_step


class ThreadExecutor:
    name = "threads"

    def __init__(self, registry: Registry, samplerate: float, blocksize: int, report: Report,
                 workers: int) -> None:
        self.registry = registry
        self.report = report
        self.partitions = workers + 1
        self.host = Host(samplerate, blocksize)
        self.board: Board | None = None
        self.where: dict[str, int] = {}
        self.plans: list[list[Step]] = [[] for _ in range(self.partitions)]
        self.block = 0
        self.go = [threading.Semaphore(0) for _ in range(self.partitions)]
        self.done = threading.Semaphore(0)
        self.running = True
        self.threads = [threading.Thread(target=self._serve, args=(p,), daemon=True, name=f"synthcli-dsp-{p}")
                        for p in range(1, self.partitions)]
        for thread in self.threads:
            thread.start()

    def _serve(self, partition: int) -> None:
        while True:
            self.go[partition].acquire()
            if not self.running:
                return
            self._run(self.plans[partition], self.block)
            self.done.release()

    def _run(self, steps: list[Step], block: int) -> None:
        board, report = self.board, self.report
        for step in steps:
            board.wait_for(step.waits, block)
            run_step(step, block, board, report)

    def rebuild(self, schedule: Schedule) -> Board:
        self.board = Board(len(schedule.nodes), schedule.rows, self.host.blocksize)
        self.where = assign(schedule, self.partitions, self.where, lambda name: True)
        self.host.update({n.name: (n, self.registry.get(n.type).cls) for n in schedule.nodes})
        self.plans = [self.host.steps(schedule, self.board, {n for n, p in self.where.items() if p == part})
                      for part in range(self.partitions)]
        return self.board

    def deliver(self, name: str, offset: int, event: tuple) -> None:
        self.host.deliver(name, offset, event, self.report)

    def run_block(self, block: int) -> None:
        self.block = block
        busy = [p for p in range(1, self.partitions) if self.plans[p]]
        for p in busy:
            self.go[p].release()
        self._run(self.plans[0], block)
        for _ in busy:
            self.done.acquire()

    def close(self) -> None:
        self.running = False
        for p in range(1, self.partitions):
            self.go[p].release()
        for thread in self.threads:
            thread.join(timeout=1.0)
        self.host.update({})
