"""The board: all memory the engine shares with whoever runs its modules.

One block of memory per schedule holds the port buffers (the arena), a
progress counter per module (the last block it finished, so a consumer on
another worker knows when to read), a flag per module, and CPU statistics.
For the ``processes`` executor it is a ``multiprocessing.shared_memory``
segment, so no audio is ever pickled; for the others, plain memory.
"""
from __future__ import annotations

import errno
import os
import time

import numpy as np

from ..errors import SynthError

#: Per-module flags: run; bypassed (silent, quarantined or removed); or run
#: once more with the output faded to silence, then bypassed.
RUN, BYPASS, FADE = 0, 1, 2
#: Columns of ``stats``: blocks processed, CPU seconds in all, worst block.
BLOCKS, SECONDS, WORST = 0, 1, 2
#: ``progress`` value of a module nobody will run this block (its worker
#: died): consumers stop waiting and read its silenced outputs.
ABANDONED = 2**63 - 1


def pauses():
    """Pauses for a wait on another worker's progress: yield the core
    briefly at first, then sleep. Producers are usually microseconds away,
    but a pure spin on a shared core costs milliseconds."""
    for _ in range(2000):
        os.sched_yield()
        yield
    while True:
        time.sleep(0.0001)
        yield


class Board:
    """Views onto one memory block. ``name`` is the shared-memory segment's
    name, or None for private memory.

    ``progress`` and ``flags`` are memoryviews of int64, not numpy arrays:
    every module reads and writes them every block, and a memoryview item
    is a plain Python int, a third of the cost of a numpy scalar."""

    def __init__(self, modules: int, rows: int, blocksize: int, shared: bool = False,
                 name: str | None = None) -> None:
        self.shape = (modules, rows, blocksize)
        size = max(8, 8 * (2 * modules + 3 * modules + rows * blocksize))
        self.shm = None
        if name is not None or shared:   # (multiprocessing's import costs an inline render 4 ms)
            from multiprocessing import shared_memory
        if name is not None:
            # Workers share the creator's resource tracker (they are forked
            # from it or from its forkserver), so attaching registers nothing new.
            self.shm = shared_memory.SharedMemory(name=name)
            buffer = self.shm.buf
        elif shared:
            self.shm = make_shared(size, "the shared memory the worker processes run the modules in")
            buffer = self.shm.buf
        else:
            buffer = bytearray(size)
        self.name = self.shm.name if self.shm else None
        offset = 0

        def take(shape, dtype):
            nonlocal offset
            view = np.ndarray(shape, dtype, buffer, offset)
            offset += view.nbytes
            return view

        progress = take((modules,), np.int64)
        flags = take((modules,), np.int64)
        self.stats = take((modules, 3), np.float64)
        self.arena = take((rows, blocksize), np.float64)
        if name is None:
            progress[:] = -1
            flags[:] = RUN
            self.stats[:] = 0.0
            self.arena[:] = 0.0
        self.progress = memoryview(progress).cast("B").cast("q")
        self.flags = memoryview(flags).cast("B").cast("q")

    def wait_for(self, indices: tuple[int, ...], block: int) -> None:
        """Return once these modules have finished ``block``: the producers
        a step reads, run by another worker or thread."""
        for index in indices:
            if self.progress[index] < block:   # (no pauses made while nothing is awaited)
                pause = pauses()
                while self.progress[index] < block:
                    next(pause)

    def spec(self) -> tuple:
        """What another process needs to attach: ``Board.attach(*spec)``."""
        return (*self.shape, self.name)

    @classmethod
    def attach(cls, modules: int, rows: int, blocksize: int, name: str) -> "Board":
        return cls(modules, rows, blocksize, name=name)

    def close(self, unlink: bool = False) -> None:
        """Drop the views and the mapping; the creator also unlinks."""
        if self.shm is None:
            return
        self.progress.release()
        self.flags.release()
        del self.progress, self.flags, self.stats, self.arena
        shm, self.shm = self.shm, None
        shm.close()
        if unlink:
            forget(shm)


def make_shared(size: int, what: str):
    """A new shared-memory segment of ``size`` bytes, for ``what``, which
    a one-line SynthError names when it cannot be made (a full /dev/shm,
    a file size limit, no file descriptors left). Its name goes to
    CPython's resource tracker before the segment is made: CPython (3.11)
    unlinks a new segment it cannot size and tells the tracker to forget
    a name it was never told of, whose KeyError traceback, from the
    tracker's own process, followed our one line. Where the segment was
    never opened, CPython tells the tracker nothing, and the name is taken
    back here, or the tracker warned of a leak at exit (the review)."""
    from multiprocessing import resource_tracker, shared_memory

    class Segment(shared_memory.SharedMemory):
        unlinked = False   # by CPython, when it could not size or map the new segment: the tracker was told

        def unlink(self) -> None:
            self.unlinked = True
            super().unlink()

    while True:
        name = f"synthcli_{os.urandom(6).hex()}"   # not secrets: its import opens files, which may be all used
        resource_tracker.register(f"/{name}", "shared_memory")
        segment = Segment.__new__(Segment)
        try:
            segment.__init__(name=name, create=True, size=size)
            return segment
        except OSError as error:
            if not segment.unlinked:
                resource_tracker.unregister(f"/{name}", "shared_memory")
            if isinstance(error, FileExistsError):   # another's name: try another
                continue
            full = " (is /dev/shm full?)" if error.errno in (errno.ENOSPC, errno.EFBIG) else ""
            raise SynthError(f"cannot make {what}: {error.strerror}{full}") from None


def forget(shm) -> None:
    """Remove a segment's name, once its maker is done with it: the memory
    goes when the last process unmaps it. A name already gone (its maker
    died, and unlink() cleaned up after it) is no error."""
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


def unlink(names) -> None:
    """Remove the shared-memory segments of a process that died before its
    own cleanup: nobody else will. One already gone is no error. They are
    removed by name, not attached first: CPython (3.11) registers a name
    with the resource tracker on every attach, and of two orphaned workers
    removing one board, the second could register it again after the
    first had taken it back; the tracker then warned at exit of a leak it
    could not find (a killed REPL engine)."""
    import _posixshmem   # CPython's own, under multiprocessing.shared_memory
    from multiprocessing import resource_tracker
    for name in names:
        try:
            _posixshmem.shm_unlink(f"/{name}")
        except OSError:
            continue   # gone already: whoever removed it took it back
        resource_tracker.unregister(f"/{name}", "shared_memory")
