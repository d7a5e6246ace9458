"""What plays, block by block, for offline rendering and live play alike.

:class:`Performance` is the one loop both use: it drives the sequencer
around each engine block, fades the piece in and out, and knows when it
is over. Because ``synth render`` and ``synth
play`` go through it, a song renders to the same samples that play sends
to the device.
"""
from __future__ import annotations

import contextlib

import math
import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import SynthError, Terminated
from .core import Engine

#: ``--format`` names and their libsndfile subtypes.
FORMATS = {"float32": "FLOAT", "pcm16": "PCM_16", "pcm24": "PCM_24"}
#: Bytes of audio a WAV file can hold (its sizes are 32-bit; a little is
#: left for the header), and bytes per sample of each ``--format``.
WAV_LIMIT = 2**32 - 2**16
SAMPLE_BYTES = {"float32": 4, "pcm16": 2, "pcm24": 3}
#: What a rendered or recorded file may be called: it is always a WAV file.
WAV_SUFFIXES = (".wav", ".wave")
#: Blocks gathered before each write to the WAV file.
WRITE_BLOCKS = 64
#: libsndfile's commands (sndfile.h) that soundfile does not name.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061
#: Fade-in at the start and fade-out at the end, in seconds: long enough to
#: avoid a click, short enough not to be heard as a fade.
FADE_SECONDS = 0.005


class Driver(Protocol):
    """What plays a piece on an engine, block by block: a song's
    ``Sequencer`` or a MIDI file's ``MidiDriver``. Offline renders and the
    live engine process drive both the same way."""

    #: The piece's last sample (its last bar's end, its last event), or None.
    end: int | None
    #: Live: the bar a new version of the piece last took over at, for "applied".
    swapped_at: int | None

    def before_block(self) -> None: ...          # send what falls in the next block
    def after_block(self) -> bool: ...           # True once all of the piece has played: its tail is left
    def release_notes(self) -> None: ...         # the transport stopped
    def rebuilds_within(self, samples: int) -> bool: ...   # whether it will edit the patch that soon


class Performance:
    """A patch or a song played on an engine until it ends.

    Parameters
    ----------
    engine : Engine
    song : Song, optional
        Drive the engine with this song's sequencer; without it, the
        engine plays whatever patch it has.
    frames : int, optional
        End at this sample, faded out over the FADE_SECONDS before it, even
        if the song goes on; ``None`` plays a song to its end, a patch
        forever.
    endless : bool
        Ignore the song's length and play on (live coding with --watch).
    start : int
        The bar (from 0) a song starts at, with the patch and patterns as
        they stand there (rehearsing a part: ``--from``).
    driver : Driver, optional
        Anything else that drives the engine as a song's sequencer does (a
        MIDI file's player).
    """

    def __init__(self, engine: Engine, song=None, frames: int | None = None, endless: bool = False,
                 driver: Driver | None = None, start: int = 0) -> None:
        from ..sequencer.song import SILENT, TAIL_MAX, TAIL_SILENCE, Sequencer
        self.engine = engine
        self.sequencer = Sequencer(song, engine, endless, start=start) if song is not None else driver
        self.stopping = False
        self.over = False
        self.length: int | None = None   # once over: the sample it ended at, which may fall within the last block
        self.fade_end = frames   # the sample the fade-out reaches silence at, once known
        self._quiet_from: int | None = None   # in the tail: where its latest run below SILENT began
        self._tail = round(TAIL_SILENCE * engine.samplerate), round(TAIL_MAX * engine.samplerate)
        self.fade_length = length = max(1, int(FADE_SECONDS * engine.samplerate))
        self._ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)   # raised cosine, rising
        self._silent = SILENT

    def set(self, name: str, param: str, value: float, time: int | None = None) -> None:
        """A parameter set from outside the piece (a knob, a typed ``set``):
        the song playing keeps it (:meth:`Sequencer.keep`). A module the
        song's next version adds is made at the next bar, with the value:
        set at once, the engine refused it ("unknown module") and it was
        lost, while the REPL's patch and ``save`` had it."""
        from ..sequencer.song import Sequencer
        coming = isinstance(self.sequencer, Sequencer) and self.sequencer.coming(name)
        if not coming:
            self.engine.set(name, param, value, time)
        if isinstance(self.sequencer, Sequencer):
            self.sequencer.keep(name, param, float(value))

    def stop(self) -> None:
        """Fade out from the next block on, then end."""
        self.stopping = True

    def next_block(self) -> np.ndarray:
        """The next block of the master, ``(2, blocksize)``, faded where the
        piece starts or ends; afterwards :attr:`over` tells whether it was
        the last, and :attr:`length` where in it the piece ended. A fade
        may span blocks shorter than it, and ends on the exact sample asked
        for, wherever that falls in its block."""
        engine, n, length = self.engine, self.engine.blocksize, self.fade_length
        if self.sequencer is not None:
            self.sequencer.before_block()
        start = engine.time
        if self.stopping and (self.fade_end is None or self.fade_end > start + length):
            self.fade_end = start + length
        block = engine.process_block()
        ended = None
        if self.sequencer is not None and self.sequencer.after_block():
            ended = self._tail_ends(block, start)
        end = self.fade_end
        if start < length or (end is not None and start + n > end - length):
            block = block * self._gain(start, n)
        if ended is not None:   # a fade asked for may end sooner, within the same block
            self.over, self.length = True, ended if end is None else min(ended, end)
        elif end is not None and start + n >= end:
            self.over, self.length = True, end
        return block

    def _tail_ends(self, block: np.ndarray, start: int) -> int | None:
        """Where the piece's tail ends, once this block shows it: at the end
        of its first TAIL_SILENCE below SILENT, counted to the sample, so
        the piece ends on the same sample at any block size (it ended at
        the end of a block, up to a block later; and a block that held
        both that point and a later echo played on). A tail still sounding
        TAIL_MAX past the end is cut there: it fades out from that sample."""
        n = block.shape[1]
        silence, longest = self._tail
        end = self.sequencer.end
        if self._quiet_from is None:
            self._quiet_from = max(end, start)
        loud = start + np.flatnonzero(np.abs(block).max(axis=0) > self._silent)
        loud = loud[loud >= self._quiet_from]
        since = np.concatenate(([self._quiet_from], loud + 1))   # where each quiet run in the block begins
        runs = np.concatenate((loud, [start + n])) - since       # and how long it is
        quiet = np.flatnonzero(runs >= silence)
        over, cut = (int(since[quiet[0]]) + silence if quiet.size else None), end + longest
        if over is not None and over <= cut:
            return over
        self._quiet_from = int(since[-1])
        if cut < start + n and (self.fade_end is None or self.fade_end > cut + self.fade_length):
            self.fade_end = cut + self.fade_length
        return None

    def _gain(self, start: int, n: int) -> np.ndarray:
        """Per sample of the block at ``start``: the fade-in's gain times the
        fade-out's (1 between them, 0 from :attr:`fade_end` on)."""
        length, ramp = self.fade_length, self._ramp
        at = np.arange(start, start + n)
        gain = np.where(at < length, ramp[np.minimum(at, length - 1)], 1.0)
        if self.fade_end is not None:
            left = self.fade_end - at
            gain *= np.where(left > length, 1.0, np.where(left > 0, ramp[np.clip(left - 1, 0, length - 1)], 0.0))
        return gain[None, :]


class Overs:
    """How much of a render went over full scale into the master's soft
    clip, which the file alone does not show: the knee bends such a mix
    into the last fifth of the scale, and the REPL's meter says CLIP, but
    `synth render` said nothing of a square wave 12 dB over (the new
    user). ``samples`` counts both sides; ``loudest`` is the largest
    sample written."""

    def __init__(self) -> None:
        self.samples = 0
        self.loudest = 0.0

    def add(self, frames: np.ndarray) -> None:
        from ..modules.dynamics import CLIPPED
        top = float(max(frames.max(initial=0.0), -frames.min(initial=0.0)))
        self.loudest = max(self.loudest, top)
        if top > CLIPPED:
            self.samples += int(np.count_nonzero(np.abs(frames) > CLIPPED))

    def said(self, frames: int) -> str | None:
        """The warning for a file of ``frames``, or None when nothing went over."""
        from ..modules.dynamics import SOFT_CLIP_KNEE as knee
        if not self.samples:
            return None
        bent = (self.loudest - knee) / (1.0 - knee)   # the knee's tanh, undone: in float64 it saturates at 4.6
        over = f"{20 * math.log10(knee + (1.0 - knee) * math.atanh(bent)):.0f} dB" if bent < 1.0 else "13 dB or more"
        share = 100 * self.samples / (2 * max(1, frames))
        return (f"{f'{share:.1f}' if share >= 0.1 else 'under 0.1'} % of it went over full scale, into the "
                f"master's soft clip (the mix peaked {over} over): turn out.level down, or the parts into it")


class RenderInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP stopped a render. The WAV file is closed
    and valid, and holds the render's first ``frames`` samples, ``seconds``
    long; ``code`` is the exit status the signal calls for."""

    def __init__(self, path: str | Path, frames: int, samplerate: float, code: int = 130) -> None:
        self.frames, self.seconds, self.code = frames, frames / samplerate, code
        super().__init__(f"interrupted: {path} holds the first {self.seconds:.2f} s")


def open_wav(path: str | Path, samplerate: float, subtype: str = "FLOAT"):
    """A stereo WAV file opened for writing as every file synthcli writes
    is. Without a PEAK chunk: a float WAV's carries the time of writing,
    which would make two renders of the same patch differ. With its header
    rewritten after each write: a process killed mid-file (a plugin that
    crashes under ``--executor inline``, kill -9, the OOM killer) then
    leaves a file that holds all it wrote, not one whose header says it
    is empty."""
    import soundfile

    out = soundfile.SoundFile(str(path), "w", int(samplerate), 2, subtype, format="WAV")
    soundfile._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
    soundfile._snd.sf_command(out._file, _SFC_SET_UPDATE_HEADER_AUTO, soundfile._ffi.NULL, 1)
    return out


def render_to_wav(performance: Performance, path: str | Path, frames: int | None = None, fmt: str = "float32",
                  progress: Callable[[float], None] | None = None, overs: Overs | None = None) -> int:
    """Render a performance into ``path``, block by block so memory does
    not grow with the length; ``frames`` cuts it to an exact length.
    ``progress`` gets the fraction done now and then (when it is known);
    ``overs`` counts what went over full scale. Returns the number of
    frames written."""
    import soundfile

    check_format(fmt)
    engine = performance.engine
    sequencer = performance.sequencer
    ends = sequencer.end if sequencer is not None else None
    expected = min(frames, ends) if frames and ends else frames or ends   # a song ends at its end, whatever -d asks
    if expected:   # else it would fill the disk and fail at the end
        check_fits(expected, engine.samplerate, fmt)
    new = not Path(path).exists()
    try:
        out = open_wav(path, engine.samplerate, FORMATS[fmt])
    except (RuntimeError, OSError) as error:
        if new:   # a full disk let libsndfile make the file and not its header: an empty file was left
            with contextlib.suppress(OSError):
                Path(path).unlink()
        raise SynthError(f"cannot write {path}: {error}") from None
    written = 0
    last_report = time.monotonic()
    # Blocks gather, channel by channel, in one buffer that goes to the
    # file when full: a write per block cost 0.1 ms each (a fifth of a
    # 20-second render). It is interleaved, and for a float file rounded to
    # float32 as libsndfile would, in one pass per chunk.
    n = engine.blocksize
    chunk = np.empty((2, WRITE_BLOCKS * n))
    dtype = np.float32 if fmt == "float32" else np.float64
    held = 0

    def write(frames: np.ndarray) -> None:
        if overs is not None:
            overs.add(frames)
        try:
            out.write(np.ascontiguousarray(frames.T, dtype))
        except (soundfile.LibsndfileError, OSError) as error:   # a full disk, a file size limit
            with contextlib.suppress(soundfile.LibsndfileError, OSError):   # its header cannot be written either
                out.close()
            try:   # what the file holds, as its header says: the blocks counted include a chunk never written
                kept = soundfile.info(str(path)).frames
            except (RuntimeError, OSError):
                kept = 0
            raise SynthError(f"cannot write {path} after {kept / engine.samplerate:.2f} s of audio: "
                             f"{str(error).strip()} (is the disk full?)") from None

    with out:
        try:
            while not performance.over and (frames is None or written < frames):
                block = performance.next_block()
                take = n if frames is None or frames - written >= n else frames - written
                if performance.length is not None:
                    take = min(take, performance.length - written)
                chunk[:, held:held + take] = block if take == n else block[:, :take]
                held += take
                written += take
                if held > chunk.shape[1] - n:
                    full, held = held, 0   # before the write: a Ctrl-C after it must not write it twice
                    write(chunk[:, :full])
                if progress is not None and expected and time.monotonic() - last_report > 0.1:
                    last_report = time.monotonic()
                    progress(min(1.0, written / expected))
        except (KeyboardInterrupt, Terminated) as stop:
            write(chunk[:, :held])
            out.close()
            # What the file holds, read back from its header: a Ctrl-C can
            # come anywhere, even between libsndfile's write and the count
            # soundfile keeps beside it (out.frames was 0.34 s short once).
            code = stop.code if isinstance(stop, Terminated) else 130
            raise RenderInterrupted(path, soundfile.info(str(path)).frames, engine.samplerate, code) from None
        write(chunk[:, :held])
    return written


def length_written(frames: int, asked: int | None, samplerate: float) -> str:
    """How long a rendered file is, and why, when a song ended before the
    duration asked for (a duration only cuts a song, so a musician who
    asked for 30 s and got 9 should hear why)."""
    said = f"{frames / samplerate:.2f} s"
    if asked is not None and frames < asked:
        said += f": the song ends there, before the {asked / samplerate:g} s asked"
    return said


def check_fits(frames: int, samplerate: float, fmt: str = "float32") -> None:
    """Refuse a length no WAV file can hold (4 GiB)."""
    most = WAV_LIMIT // (2 * SAMPLE_BYTES[fmt])
    if frames > most:
        seconds = frames / samplerate
        shown = f"{seconds:.0f}" if seconds < 1e15 else f"{seconds:.3g}"
        raise SynthError(f"{shown} s will not fit in a WAV file: it holds at most "
                         f"{most / samplerate / 3600:.1f} hours of stereo {fmt} at {samplerate:g} Hz")


def check_format(fmt: str, name: str = "format") -> None:
    """Refuse a sample format no WAV is written in; ``name`` is what the
    caller called it (the CLI: its flag, so the error says what was typed)."""
    if fmt not in FORMATS:
        raise SynthError(f"unknown {name} '{fmt}' (choose {', '.join(FORMATS)})")


def frames_for(seconds: float, samplerate: float, name: str = "duration") -> int:
    """The samples in ``seconds`` of audio; ``name`` as in `check_format`."""
    if not seconds > 0 or not math.isfinite(seconds):
        raise SynthError(f"{name} must be a positive number of seconds, got {seconds:g}")
    if not math.isfinite(seconds * samplerate):   # 1e305 s: round() raised OverflowError, a traceback
        raise SynthError(f"duration {seconds:g} s is too long")
    frames = round(seconds * samplerate)
    if frames < 1:
        raise SynthError(f"duration {seconds} s is shorter than one sample at {samplerate:g} Hz")
    return frames
