"""Offline rendering: a patch through the engine into a WAV file, as fast as
the machine allows. Needs no PortAudio and no sound card."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from ..errors import SynthError
from .core import Engine

#: ``--format`` names and their libsndfile subtypes.
FORMATS = {"float32": "FLOAT", "pcm16": "PCM_16", "pcm24": "PCM_24"}
#: libsndfile's SFC_SET_ADD_PEAK_CHUNK (sndfile.h), which soundfile does not
#: name. The PEAK chunk of a float WAV carries the time of writing, which
#: would make two renders of the same patch differ.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def render_to_wav(engine: Engine, path: str | Path, seconds: float, fmt: str = "float32",
                  progress: Callable[[float], None] | None = None) -> int:
    """Render ``seconds`` of the loaded patch into ``path``, streaming block
    by block so memory does not grow with the length. ``progress`` gets the
    fraction done now and then. Returns the number of frames written."""
    import soundfile

    if fmt not in FORMATS:
        raise SynthError(f"unknown format '{fmt}' (choose {', '.join(FORMATS)})")
    if not seconds > 0 or not math.isfinite(seconds):
        raise SynthError(f"duration must be a positive number of seconds, got {seconds}")
    frames = int(round(seconds * engine.samplerate))
    try:
        out = soundfile.SoundFile(str(path), "w", int(engine.samplerate), 2, FORMATS[fmt], format="WAV")
    except (RuntimeError, OSError) as error:
        raise SynthError(f"cannot write {path}: {error}") from None
    soundfile._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
    written = 0
    last_report = time.monotonic()
    with out:
        while written < frames:
            block = engine.process_block()
            take = min(engine.blocksize, frames - written)
            out.write(block[:, :take].T)
            written += take
            if progress is not None and time.monotonic() - last_report > 0.1:
                last_report = time.monotonic()
                progress(written / frames)
    return written
