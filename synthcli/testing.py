"""Helpers for testing a module: on its own, without a patch or an engine,
in a song, against the API contract, and measurements of the signal
(pitch, level, onsets).

They are the plugin authors' (docs/plugins.md, "Testing"), so their test
suites stay short: render a module for some blocks and look at the
samples. What synthcli's own tests of live play need besides (a JACK
server, `synth play` in a subprocess) is in :mod:`synthcli.harness`.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from .api import MAX_CHANNELS, Module
from .plugins import check_module_class


def render_module(
    cls: type[Module],
    blocks: int,
    *,
    params: Mapping[str, float | str] | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    channels: int = 1,
    samplerate: float = 48000,
    blocksize: int = 256,
    events: list[tuple[int, tuple]] | None = None,
) -> dict[str, np.ndarray]:
    """Render ``blocks`` blocks of one module and return every output.

    Parameters
    ----------
    params
        Parameter values (numbers or choice names; for a file parameter
        its path); the rest keep defaults. A value may also be an array of
        shape ``(channels, samples)`` or ``(samples,)`` to stand for a
        cable into the parameter's port (already added to the set value,
        as the engine would).
    inputs
        Arrays of shape ``(samples,)`` or ``(channels, samples)`` with
        ``samples = blocks * blocksize``; unconnected inputs read their
        port's default.
    events
        ``(sample_time, event)`` pairs delivered through ``on_event``.

    Returns
    -------
    dict of str to ndarray
        Each output as ``(output channels, blocks * blocksize)``.
    """
    total = blocks * blocksize
    given_params = dict(params or {})
    files = {p.name: str(given_params.pop(p.name, p.default)) for p in cls.params if p.file}
    module = cls(samplerate, blocksize, channels, **({"files": files} if files else {}))

    def full(value, default: float) -> np.ndarray:
        arr = np.asarray(value if value is not None else default, dtype=np.float64)
        if arr.ndim == 0:
            return np.full((channels, total), float(arr))
        arr = np.atleast_2d(arr)
        if arr.shape[1] != total:
            raise ValueError(f"expected {total} samples, got {arr.shape[1]}")
        return np.ascontiguousarray(np.broadcast_to(arr, (channels, total)))

    param_data = {}
    for p in cls.params:
        if p.file:
            continue
        value = given_params.pop(p.name, None)
        if isinstance(value, np.ndarray):   # a choice's, rounded and kept within them as the engine does
            array = full(value, 0.0)
            param_data[p.name] = np.clip(np.rint(array), 0, len(p.choices) - 1) if p.choices else array
        else:
            param_data[p.name] = full(p.coerce(value if value is not None else p.default), 0.0)
    if given_params:
        raise ValueError(f"{cls.type_name} has no params {sorted(given_params)}")
    given_inputs = dict(inputs or {})
    input_data = {p.name: full(given_inputs.pop(p.name, None), p.default) for p in cls.inputs}
    if given_inputs:
        raise ValueError(f"{cls.type_name} has no inputs {sorted(given_inputs)}")

    result = {p.name: np.zeros((p.channels or channels, total)) for p in cls.outputs}
    outs = {p.name: np.zeros((p.channels or channels, blocksize)) for p in cls.outputs}
    given = dict(outs)
    pending = sorted(events or [], key=lambda item: item[0])
    for b in range(blocks):
        start, stop = b * blocksize, (b + 1) * blocksize
        while pending and pending[0][0] < stop:
            when, event = pending.pop(0)
            module.on_event(max(0, when - start), event)
        returned = module.process(
            {k: np.ascontiguousarray(v[:, start:stop]) for k, v in input_data.items()},
            {k: np.ascontiguousarray(v[:, start:stop]) for k, v in param_data.items()},
            outs,
        )
        # What the engine would silence, said here: a test that reads the
        # helper's dict would pass a module that plays nothing.
        lost = next((name for name in given if outs.get(name) is not given[name]), None)
        if lost is not None:
            raise AssertionError(f"{cls.type_name}: process() assigned outputs[{lost!r}] instead of writing into "
                                 f"it, so the engine loses its sound (write outputs[{lost!r}][...] = ...)")
        if returned is not None:
            raise AssertionError(f"{cls.type_name}: process() returned a value, which the engine ignores: "
                                 f"write the sound into outputs[NAME][...]")
        for name, buf in outs.items():
            result[name][:, start:stop] = buf
    return result



def render_song(
    text: str,
    modules: Iterable[type[Module]] = (),
    *,
    samplerate: int = 48000,
    blocksize: int = 256,
) -> np.ndarray:
    """Render a song (or a patch with a ``length``) as ``synth render`` would,
    with ``modules`` added to the built-in types: what a module does when
    the sequencer sets its parameters, steps a pattern on them or plays
    its notes, which :func:`render_module` cannot show.

    Parameters
    ----------
    text
        The song, in the song language (docs/song-language.md); it needs a
        ``length``. A module of ``modules`` is added by its ``type_name``.
    modules
        Module classes under test. Installed plugins are left out, so a
        copy of the plugin being tested, installed or not, cannot clash.
    samplerate, blocksize
        As ``synth render``'s ``-r`` and ``-b``: a module whose output
        depends on the block size is one a pattern plays differently live.

    Returns
    -------
    ndarray
        The master, ``(2, samples)``, with its 5 ms fade-in and the song's
        release tail, in the engine's own process (``--executor inline``).

    Raises
    ------
    SynthError
        For a song the engine would refuse, with its line and column.
    AssertionError
        For a module that failed while it played (the engine silenced it
        and played on: a render would only sound quieter).
    """
    from .engine.core import Engine
    from .engine.render import Performance
    from .plugins import load_registry
    from .sequencer.song import Song

    registry = load_registry(safe_mode=True)
    for cls in modules:
        registry.add(cls, cls.__module__.split(".")[0], "0")
    if registry.problems:
        raise ValueError("; ".join(registry.problems))
    song = Song(registry, text)
    with Engine(registry, samplerate, blocksize, executor="inline") as engine:
        performance = Performance(engine, song)
        blocks = [performance.next_block().copy()]
        while not performance.over:
            blocks.append(performance.next_block().copy())
        master = np.concatenate(blocks, axis=1)[:, :performance.length]
        failed = {name: stats.last_fault for name, stats in engine.stats.items() if stats.faults}
    if failed:
        raise AssertionError("; ".join(f"module '{name}' failed: {why}" for name, why in failed.items()))
    return master


#: Seconds of audio a restored copy must carry on identically for: state
#: a module forgets may show only when a slow clock ticks or a counter wraps.
RESTORE_SECONDS = 1.0


def check_module(cls: type[Module], samplerate: float = 48000, blocksize: int = 64,
                 files: Mapping[str, str] | None = None) -> None:
    """Assert that a module keeps the API contract: a valid declaration,
    finite output for default settings at 1 and several channels, and a
    state that restores exactly (rendering on from a restored state gives
    the same samples, for a second of random input, as rendering on
    without the round trip). ``files`` gives file parameters their paths."""
    problem = check_module_class(cls)
    assert problem is None, f"{cls.__name__}: {problem}"
    opened = {"files": dict(files)} if files else {}
    a = cls(samplerate, blocksize, 2, **opened)
    for field in cls.state_fields:   # else get_state raises a bare AttributeError
        assert isinstance(getattr(a, field, None), np.ndarray), (
            f"{cls.type_name}: state field '{field}' is not a numpy array after setup()")
    for channels in (1, 3, MAX_CHANNELS):
        out = render_module(cls, 4, channels=channels, samplerate=samplerate, blocksize=blocksize,
                            params=dict(files or {}))
        for name, data in out.items():
            assert np.isfinite(data).all(), f"{cls.type_name}.{name} is not finite"

    rng = np.random.default_rng(1)
    params = {p.name: np.full((2, blocksize), p.default_value) for p in cls.params if not p.file}

    def run(module: Module, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = {p.name: np.zeros((p.channels or 2, blocksize)) for p in cls.outputs}
        module.process(inputs, params, outs)
        return outs

    def noise() -> dict[str, np.ndarray]:
        return {p.name: rng.uniform(-1, 1, (2, blocksize)) for p in cls.inputs}

    for _ in range(3):
        run(a, noise())
    b = cls(samplerate, blocksize, 2, **opened)
    b.set_state(a.get_state())
    for block in range(max(1, round(RESTORE_SECONDS * samplerate / blocksize))):
        inputs = noise()
        expected, got = run(a, inputs), run(b, inputs)
        for name in expected:
            # Finite first: NaN equals nothing, not even the same NaN, and
            # an output turning NaN a half second in was blamed on the state.
            assert np.isfinite(expected[name]).all(), (
                f"{cls.type_name}.{name} is not finite {block * blocksize / samplerate:.3f} s into random input")
            assert np.array_equal(expected[name], got[name]), (
                f"{cls.type_name}: output '{name}' differs {block * blocksize / samplerate:.3f} s after "
                "get_state/set_state; is every piece of DSP state listed in state_fields?")


# -- measuring the signal -------------------------------------------------------------


def peak_frequency(x: np.ndarray, samplerate: float = 48000) -> float:
    """The strongest frequency in ``x``, to a fraction of a bin (Hann
    window, Gaussian interpolation of the peak)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-30)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * samplerate / len(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def onsets(x: np.ndarray, threshold: float = 1e-3, quiet: int = 2000) -> np.ndarray:
    """Samples where sound (above ``threshold``) follows at least ``quiet``
    samples of silence: note starts, to the sample, whatever the phase of
    the waveform at the start."""
    loud = np.abs(x) > threshold
    before = np.concatenate(([0], np.cumsum(loud)))
    k = np.arange(len(x))
    silent = before[k] - before[np.maximum(0, k - quiet)] == 0
    return np.flatnonzero(loud & silent & (k >= quiet))
