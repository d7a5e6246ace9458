"""The tap: one module output, block by block, from the live engine to
the control process (the REPL's ``scope``).

It lives in shared memory, like the output ring, so the control process
reads the samples without a pipe message per block and without taking the
engine process's GIL. The render thread is the only writer: after each
block it copies the tapped port into the next slot (the sum of its
channels, as a mixer would hear a polyphonic cable) and then bumps
``written``. It never waits for the reader: a reader that lags by more
than the ring's length simply sees newer blocks. The audio callback never
touches the tap.
"""
from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from ..engine.board import forget, make_shared

WRITTEN, START = range(2)
_HEADER = 2
#: Blocks the tap keeps: 64 blocks of 256 samples are 0.34 s at 48 kHz,
#: enough for a spectrum of 4096 samples and a reader that lags a frame.
SLOTS = 64


class Tap:
    """``SLOTS`` mono float32 blocks plus ``written`` (blocks copied so far)
    and ``start`` (``written`` when the current port was chosen, so a
    reader never mixes two ports' samples).

    Parameters
    ----------
    blocksize : int
    name : str, optional
        Attach to an existing tap (the reader); without it, create one
        (the engine process, which also unlinks it).
    """

    def __init__(self, blocksize: int, name: str | None = None) -> None:
        self.blocksize = blocksize
        self.owner = name is None
        size = 8 * _HEADER + 4 * SLOTS * blocksize
        self.shm = (make_shared(size, "the shared memory the scope and meters read") if self.owner
                    else shared_memory.SharedMemory(name=name))
        self.header = np.ndarray((_HEADER,), np.int64, self.shm.buf, 0)
        self.data = np.ndarray((SLOTS, blocksize), np.float32, self.shm.buf, 8 * _HEADER)
        if self.owner:
            self.header[:] = 0
            self.data[:] = 0.0
        # The writer's state: what is tapped, and the arena view it reads
        # (found again only when the engine's schedule changes).
        self.target: tuple[str, str] | None = None
        self._schedule = None
        self._view: np.ndarray | None = None
        self._share = 1.0   # each channel's share of what is drawn (see after_block)

    @property
    def name(self) -> str:
        return self.shm.name

    # -- the engine's side ------------------------------------------------------

    def select(self, target: tuple[str, str] | None) -> None:
        """Tap ``(module, port)`` from the next block on, or nothing."""
        self.target = target
        self._schedule = None
        self.header[START] = self.header[WRITTEN]

    def after_block(self, engine) -> None:
        """Copy the tapped port of the block the engine just rendered: a
        polyphonic one's voices summed, as a mixer hears them, and the
        channels of a stereo pair (the master's) averaged, the mono
        fold-down, whose sum read a sound in the middle 6 dB too loud. A
        module that is gone (removed by an edit) is silence until it comes
        back: the scope drew its last sound on, as if it still played."""
        if self.target is None:
            return
        if engine.schedule is not self._schedule:
            self._schedule = engine.schedule
            node = engine.schedule.by_name.get(self.target[0]) if engine.schedule is not None else None
            rows = node.outputs.get(self.target[1]) if node is not None else None
            self._view = engine.arena[rows.start:rows.stop] if rows is not None else None
            fixed = node is not None and engine.registry.get(node.type).cls.port(self.target[1], "out").channels
            self._share = 1.0 / rows.channels if rows is not None and fixed else 1.0
        written = int(self.header[WRITTEN])
        slot = self.data[written % SLOTS]
        if self._view is None:
            slot[...] = 0.0
        else:
            np.add.reduce(self._view, axis=0, out=slot)
            if self._share != 1.0:
                slot *= self._share
        self.header[WRITTEN] = written + 1

    # -- the reader's side ---------------------------------------------------------

    def latest(self, frames: int) -> np.ndarray | None:
        """The last ``frames`` samples tapped since the port was chosen
        (fewer at first), oldest first; None before the first block. A
        copy that the writer may have overtaken meanwhile is read again."""
        frames = min(frames, (SLOTS - 2) * self.blocksize)
        while True:
            start, written = int(self.header[START]), int(self.header[WRITTEN])
            if written == start:
                return None
            blocks = min(written - start, -(-frames // self.blocksize))
            slots = np.arange(written - blocks, written) % SLOTS
            samples = self.data[slots].reshape(-1)[-frames:].copy()
            if int(self.header[WRITTEN]) - written < SLOTS - blocks and int(self.header[START]) == start:
                return samples

    def close(self) -> None:
        """Unmap it, and remove its name if this process made it."""
        self._view = None
        del self.header, self.data
        self.shm.close()
        if self.owner:
            forget(self.shm)
