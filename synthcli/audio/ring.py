"""The output ring: finished blocks waiting for the audio callback.

It lives in shared memory so that the control process can read what was
played (to record it, or to meter it) without taking the engine process's
GIL, which the audio callback needs.

Counters only ever grow, and each has one writer: the render thread writes
``written``, ``length`` (the sample the piece ended at, 0 until it has,
set before its last block is written) and ``ended`` (the piece is over: an
empty ring is no xrun); the callback writes ``played``, ``callbacks``, ``xruns``,
``underflows`` and the play log; the recorder writes ``recorded``. A slot
``k % slots`` is reused only when block ``k - slots`` has been played and,
when recording, recorded.
"""
from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from ..engine.board import forget, make_shared

WRITTEN, PLAYED, CALLBACKS, XRUNS, UNDERFLOWS, RECORDED, RECORDING, ENDED, LENGTH = range(9)
_HEADER = 9
#: A play-log entry for a callback that found the ring empty and played silence.
SILENCE = -1


#: Callbacks the log keeps, at least: 21 s at 256 samples and 48 kHz. The
#: recorder reads the log behind the callbacks; one as short as the ring
#: (0.7 s) was overwritten under a recorder held up longer (a disk that
#: stalls), which then wrote silence where music had been played.
CALLS_KEPT = 4096


class Ring:
    """``slots`` blocks of interleaved stereo float32, plus counters, a log
    of what each of the last ``kept`` callbacks played (block number or
    SILENCE) and, for each, the wall-clock instant (``time.time()``) its
    block reaches the DAC, by which timed OSC and MIDI are placed on their
    sample. Callback ``k`` is entry ``k % kept``."""

    def __init__(self, slots: int, blocksize: int, name: str | None = None) -> None:
        self.slots = slots
        self.blocksize = blocksize
        self.kept = kept = max(slots, CALLS_KEPT)
        size = 8 * _HEADER + 16 * kept + 4 * slots * blocksize * 2
        self.owner = name is None
        self.shm = (make_shared(size, "the shared memory the sound goes through") if self.owner
                    else shared_memory.SharedMemory(name=name))
        buf = self.shm.buf
        self.header = np.ndarray((_HEADER,), np.int64, buf, 0)
        self.log = np.ndarray((kept,), np.int64, buf, 8 * _HEADER)
        self.times = np.ndarray((kept,), np.float64, buf, 8 * _HEADER + 8 * kept)
        self.data = np.ndarray((slots, blocksize, 2), np.float32, buf, 8 * _HEADER + 16 * kept)
        if self.owner:
            self.header[:] = 0
            self.data[:] = 0.0

    @property
    def name(self) -> str:
        return self.shm.name

    def free(self) -> int:
        """Slots the render thread may fill now."""
        h = self.header
        oldest = min(h[PLAYED], h[RECORDED]) if h[RECORDING] else h[PLAYED]
        return self.slots - int(h[WRITTEN] - oldest)

    def queued(self) -> int:
        return int(self.header[WRITTEN] - self.header[PLAYED])

    def close(self, keep_mapped: bool = False) -> None:
        """Unmap it, and remove its name if this process made it. With
        ``keep_mapped`` only the name goes: a stream PortAudio would not
        stop may still call back into it until the process exits."""
        if not keep_mapped:
            del self.header, self.log, self.times, self.data
            self.shm.close()
        if self.owner:
            forget(self.shm)
