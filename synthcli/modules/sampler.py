"""``sampler``: a sound file played by gates, pitched by voct."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..api import AUDIO, CONTROL, Module, Param, Port
from ..engine.jit import helper, kernel
from .dsp import read_cubic

MODES = ("oneshot", "gate", "loop")
ONESHOT, GATE, LOOP = range(3)
#: Samples over which a note fades out when its gate falls (gate, loop)
#: or a new one cuts it short: 1.3 ms at 48 kHz, no click.
FADE = 64
#: Zeros either side of the sound, which the cubic read reaches at its ends.
PAD = 4
#: The longest file a sampler loads: longer is most likely a wrong file.
MAX_SECONDS = 600.0
#: Bytes of decoded sounds kept in the cache (see :func:`warm_sound`);
#: the least recently used go first beyond it.
CACHE_BYTES = 2 * 1024**3
#: The fastest it plays, eight octaves up: a cable far past any note
#: would otherwise step by an infinite amount.
MAX_SPEED = 256.0
#: Columns of the state: how far the note has played into its part of the
#: file (in the file's samples), where in the file it started, which way
#: it goes (1 or -1), how long the part is, and where it lies inside the
#: file (ENDS_INSIDE | BEGINS_INSIDE: it fades out or in there, as a
#: slice's edge would otherwise cut the sound); whether
#: it plays, the gate's last sample, the note's level, samples of fade-out
#: left (-1: none under way); then the same five of the note a new one cut
#: short, fading out beside it, its level and its samples left.
(DONE, FROM, WAY, SPAN, CUT, PLAYING, WAS, AMP, FADING,
 TAIL_DONE, TAIL_FROM, TAIL_WAY, TAIL_SPAN, TAIL_CUT, TAIL_AMP, TAIL_LEFT) = range(16)
#: The bits of CUT; FIRST_PASS is set until a loop first goes round, as
#: only its first start fades in: each later one follows the loop's end.
ENDS_INSIDE, BEGINS_INSIDE, FIRST_PASS = 1, 2, 4


@helper
def _advance(done, step, span, looping):
    """How far the note has played after one more sample, and whether it
    goes on there."""
    done += step
    if done < span:
        return done, True
    if looping:
        return done - span * np.floor(done / span), True
    return done, False


@helper
def _play(data, done, origin, way, span, cut, step, looping):
    """The sound ``done`` samples from ``origin`` in the file, going
    ``way``, faded over the last FADE samples heard before a part that ends
    inside the file stops, and over the first FADE of one that begins
    inside it (``start=0.5`` or ``reverse`` began mid-wave: a step of a
    third of full scale), a loop's too (it clicked there in loop mode).
    One multiply rather than a branch on the direction, which cost the
    kernel 7 % more."""
    y = read_cubic(data, 0, origin + way * done + PAD)
    if cut & ENDS_INSIDE and not looping:
        y *= min(1.0, (span - done) / (FADE * step))
    if cut & BEGINS_INSIDE and cut & FIRST_PASS:
        y *= min(1.0, (done + step) / (FADE * step))
    return y


@kernel
def _sampler_kernel(voct, gate, velocity, tune, start, end, reverse, level, mode, out, data, state, speed):
    """Each rising gate plays the file from ``start`` to ``end`` (or back
    from ``end`` to ``start``), at a speed of ``speed`` (the file's sample
    rate over the engine's) times 2 ** voct, read between its samples by
    the delay's cubic interpolation. A note that cuts another short (the
    same channel, still sounding) starts on its sample while the other
    fades out over FADE samples beside it, as a sampler's choke does, so
    chopped slices follow without a click."""
    channels, n = out.shape
    length = data.shape[1] - 2 * PAD
    for c in range(channels):
        done = state[c, DONE]
        origin = state[c, FROM]
        way = state[c, WAY]
        span = state[c, SPAN]
        cut = int(state[c, CUT])
        playing = state[c, PLAYING] > 0.5
        was = state[c, WAS] > 0.5
        amp = state[c, AMP]
        fading = state[c, FADING]
        tail_done = state[c, TAIL_DONE]
        tail_origin = state[c, TAIL_FROM]
        tail_way = state[c, TAIL_WAY]
        tail_span = state[c, TAIL_SPAN]
        tail_cut = int(state[c, TAIL_CUT])
        tail_amp = state[c, TAIL_AMP]
        tail_left = state[c, TAIL_LEFT]
        last_v = last_t = np.nan
        step = 0.0
        for i in range(n):
            high = gate[c, i] > 0.5
            m = int(mode[c, i])
            if high and not was:
                if playing:
                    tail_done = done
                    tail_origin = origin
                    tail_way = way
                    tail_span = span
                    tail_cut = cut
                    tail_amp = amp * (fading / FADE if fading >= 0.0 else 1.0)
                    tail_left = float(FADE)
                a = min(max(start[c, i], 0.0), 1.0) * length
                b = min(max(end[c, i], 0.0), 1.0) * length
                lo = min(a, b)
                span = abs(b - a)
                if reverse[c, i] > 0.5:   # its part mirrored onto its own samples: the file reversed
                    origin = lo + span - 1.0
                    way = -1.0
                    cut = (ENDS_INSIDE if lo > 0.0 else 0) | (BEGINS_INSIDE if lo + span < length else 0)
                else:
                    origin = lo
                    way = 1.0
                    cut = (ENDS_INSIDE if lo + span < length else 0) | (BEGINS_INSIDE if lo > 0.0 else 0)
                cut |= FIRST_PASS
                done = 0.0
                playing = span > 0.0
                amp = min(max(velocity[c, i], 0.0), 1.0)
                fading = -1.0
            elif was and not high and playing and m != ONESHOT and fading < 0.0:
                fading = float(FADE)
            was = high
            if voct[c, i] != last_v or tune[c, i] != last_t:   # the power only when the pitch moves
                last_v = voct[c, i]
                last_t = tune[c, i]
                step = min(speed * 2.0 ** (last_v + last_t / 12.0), MAX_SPEED)
            looping = m == LOOP
            y = 0.0
            if tail_left > 0.0:
                y = tail_amp * (tail_left / FADE) * _play(data, tail_done, tail_origin, tail_way, tail_span,
                                                          tail_cut, step, looping)
                tail_left -= 1.0
                went = tail_done
                tail_done, going = _advance(tail_done, step, tail_span, looping)
                if tail_done < went:
                    tail_cut &= ~FIRST_PASS
                if not going:
                    tail_left = 0.0
            if playing:
                gain = amp
                if fading >= 0.0:
                    gain *= fading / FADE
                    fading -= 1.0
                    if fading < 0.0:
                        playing = False
                y += gain * _play(data, done, origin, way, span, cut, step, looping)
                went = done
                done, going = _advance(done, step, span, looping)
                if done < went:   # gone round
                    cut &= ~FIRST_PASS
                playing = playing and going
            out[c, i] = level[c, i] * y
        state[c, DONE] = done
        state[c, FROM] = origin
        state[c, WAY] = way
        state[c, SPAN] = span
        state[c, CUT] = float(cut)
        state[c, PLAYING] = 1.0 if playing else 0.0
        state[c, WAS] = 1.0 if was else 0.0
        state[c, AMP] = amp
        state[c, FADING] = fading
        state[c, TAIL_DONE] = tail_done
        state[c, TAIL_FROM] = tail_origin
        state[c, TAIL_WAY] = tail_way
        state[c, TAIL_SPAN] = tail_span
        state[c, TAIL_CUT] = float(tail_cut)
        state[c, TAIL_AMP] = tail_amp
        state[c, TAIL_LEFT] = tail_left


class Sampler(Module):
    """Plays a WAV, FLAC or other file libsndfile reads, mixed to mono.
    At voct 0 and tune 0 it plays at the file's own speed and pitch,
    whatever the engine's sample rate; each volt doubles the speed, as
    on a tape machine, so a keys' voct plays it chromatically from C4.
    The sound is read once, when the module is built (by ``add`` or by a
    ``set`` of its file), never while audio plays; live, it was decoded
    ahead into a cache (:meth:`warm`) that the module maps at once."""

    type_name = "sampler"
    description = "Sample player: a sound file started by gates, pitched by voct, one-shot, gated or looped"
    inputs = (
        Port("voct", CONTROL, "speed in volts per octave: 0 plays the file as recorded, 1 an octave up"),
        Port("gate", CONTROL, "each rising edge plays the sound from start (keys.gate, a pattern's gate)"),
        Port("velocity", CONTROL, "the note's level, 0..1 (keys.velocity)", default=1.0),
    )
    outputs = (Port("out", AUDIO, "the sound, mono, times velocity and level"),)
    params = (
        Param("file", "", file="sound", doc="the sound file (WAV, FLAC, AIFF, OGG); a path from the patch's or song's "
                                         "folder"),
        Param("mode", "oneshot", choices=MODES,
              doc="oneshot: plays to the end whatever the gate; gate: stops (fading over 1.3 ms) when the gate "
                  "falls; loop: as gate, going round from end to start"),
        Param("tune", 0.0, -24.0, 24.0, "st", doc="semitones up or down, added to voct"),
        Param("start", 0.0, 0.0, 1.0, glide=False,
              doc="where in the file each note starts, as a fraction of its length (fading in over 1.3 ms "
                  "when that is inside the file)"),
        Param("end", 1.0, 0.0, 1.0, glide=False,
              doc="where each note ends (fading over 1.3 ms when that is inside the file) "
                  "or, in loop mode, goes round to start"),
        Param("reverse", "off", choices=("off", "on"), doc="on: each note plays backwards, from end to start"),
        Param("level", 1.0, 0.0, 4.0, "x", doc="output gain"),
    )
    state_fields = ("state",)

    @classmethod
    def warm(cls, files):
        warm_sound(files["file"])

    def setup(self):
        self._data, rate = padded_sound(self.files["file"])
        self._speed = rate / self.samplerate if self._data.shape[1] > 2 * PAD else 1.0
        self.state = np.zeros((self.channels, 16))
        self.state[:, FADING] = -1.0

    def process(self, inputs, params, outputs):
        _sampler_kernel(inputs["voct"], inputs["gate"], inputs["velocity"], params["tune"], params["start"],
                        params["end"], params["reverse"], params["level"], params["mode"], outputs["out"],
                        self._data, self.state, self._speed)


def load_sound(path: str) -> tuple[np.ndarray, float]:
    """A file's samples mixed to mono, and its sample rate; no samples for
    no file. Raises ValueError naming the problem in one line."""
    if not path:
        return np.zeros(0), 1.0
    import soundfile
    try:
        info = soundfile.info(path)
        if info.frames > MAX_SECONDS * info.samplerate:
            raise ValueError(f"{path} is {info.frames / info.samplerate:.0f} s long; a sampler takes "
                             f"at most {MAX_SECONDS:.0f} s")
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except RuntimeError as error:   # libsndfile's errors, a file it cannot open or read
        raise ValueError(f"cannot read {path} as sound: {error}") from None
    return np.ascontiguousarray(data.mean(axis=1)), float(rate)


def padded_sound(path: str) -> tuple[np.ndarray, float]:
    """The kernel's ``data`` (the sound between PAD zeros, one row) and
    the file's sample rate: mapped from the cache when :func:`warm_sound`
    put it there, so that building a sampler live costs no decoding; else
    decoded now. Both give the same numbers."""
    cached = _cached(path)
    if cached is not None:
        try:   # copy-on-write: its pages are shared, and the kernel may take it as a writable array
            return np.load(cached, mmap_mode="c").view(np.ndarray), float(cached.stem.rsplit("-", 1)[1])
        except (OSError, ValueError):   # evicted or cut short meanwhile: decode as without a cache
            pass
    data, rate = load_sound(path)
    out = np.zeros((1, len(data) + 2 * PAD))
    out[0, PAD:PAD + len(data)] = data
    return out, rate


def warm_sound(path: str) -> None:
    """Decode ``path`` into the cache, unless it is there, for
    :func:`padded_sound` in any process. Meant for a thread beside the
    audio: a minute of stereo WAV takes 70 ms to decode (0.19 s the first
    time in a process; benchmarks/sound_files.py), 12-14 xruns when a
    live edit did it on the render thread. Best effort: a file it cannot
    read is left for ``setup()`` to report."""
    if not path:
        return
    cached = _cached(path)
    if cached is not None:
        os.utime(cached)   # recently used: the last to be evicted
        return
    try:
        key = _cache_key(path)
        padded, rate = padded_sound(path)
    except (OSError, ValueError):
        return
    folder = _cache_folder()
    partial = folder / f"{key}.{os.getpid()}.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            np.save(out, padded)
        made = folder / f"{key}-{rate:g}.npy"
        os.replace(partial, made)
    except OSError:   # a full or read-only cache: setup() decodes as it always could
        partial.unlink(missing_ok=True)
        return
    _evict(folder, made)


def _cache_folder() -> Path:
    from ..cache import cache_folder
    return cache_folder() / "sounds"


def _cache_key(path: str) -> str:
    """Names the decoded sound of this file as it is now: another file, or
    this one rewritten, gets another name."""
    import hashlib
    stat = os.stat(path)
    text = f"{os.path.abspath(path)}\0{stat.st_mtime_ns}\0{stat.st_size}\0{PAD}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _cached(path: str) -> Path | None:
    if not path:
        return None
    try:
        key = _cache_key(path)
        return next(_cache_folder().glob(f"{key}-*.npy"), None)
    except OSError:
        return None


def _evict(folder: Path, made: Path) -> None:
    """Keep the cache under CACHE_BYTES, least recently used out first,
    but never the sound just ``made``."""
    files = []
    for entry in folder.glob("*.npy"):
        try:
            stat = entry.stat()
        except OSError:
            continue
        files.append((stat.st_mtime, stat.st_size, entry))
    total = sum(size for _, size, _ in files)
    for _, size, entry in sorted(files):
        if total <= CACHE_BYTES:
            break
        if entry == made:
            continue
        entry.unlink(missing_ok=True)
        total -= size


MODULES = (Sampler,)
