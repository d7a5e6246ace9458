"""The REPL's ``scope``: a live oscilloscope and spectrum of one module
output, drawn in the terminal until a key returns to the prompt.

The samples come from the engine's tap (``synthcli/audio/tap.py``), read
from shared memory, so drawing never asks the engine process for
anything. The oscilloscope uses braille characters (2 x 4 dots a cell) and
starts each frame at a rising zero crossing so a steady tone stands still;
the spectrum is a Hann-windowed FFT on a logarithmic frequency axis, in
dB of full scale. :func:`frame` is a pure function of the samples and the
terminal size; :func:`show` runs it in a full-screen prompt_toolkit
application, at :data:`FPS` frames a second.
"""
from __future__ import annotations

import time

import numpy as np

#: Frames a second the view asks for (the issue asks for at least 20).
FPS = 30
#: Samples the oscilloscope shows: 21 ms at 48 kHz, nine cycles of A4.
SHOWN = 1024
#: Samples of the spectrum's FFT: 11.7 Hz between bins at 48 kHz.
FFT = 4096
#: The spectrum's range: from full scale down to this many dB.
FLOOR_DB = -96.0
LOWEST_HZ = 20.0
#: Braille dot weights: rows 0..3 by columns 0..1 of one character cell.
DOTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])
BARS = " ▁▂▃▄▅▆▇█"
HINT = "(q, Esc, Enter: back)"


def triggered(samples: np.ndarray, shown: int) -> np.ndarray:
    """The last ``shown``-ish samples, starting at the latest rising zero
    crossing that still leaves ``shown`` samples after it (free-running
    when there is none)."""
    if len(samples) <= shown:
        return samples
    head = samples[:len(samples) - shown]
    rising = np.flatnonzero((head[:-1] < 0) & (head[1:] >= 0))
    start = rising[-1] + 1 if len(rising) else len(head)
    return samples[start:start + shown]


def oscilloscope(samples: np.ndarray, width: int, rows: int) -> list[str]:
    """``rows`` lines of ``width`` braille cells; +1 at the top, -1 at the
    bottom. Each dot column spans the samples between it and the next and
    is drawn from their minimum to their maximum, so no peak is lost."""
    columns, height = 2 * width, 4 * rows
    grid = np.zeros((height, columns), bool)
    if len(samples) >= 2:
        edges = np.linspace(0, len(samples), columns + 1).astype(int)
        edges = np.minimum(edges[:-1], len(samples) - 1)
        low = np.minimum.reduceat(samples, edges)
        high = np.maximum.reduceat(samples, edges)
        # Join each column to its neighbour so a steep edge is a line, not dots.
        low[1:], high[1:] = np.minimum(low[1:], high[:-1]), np.maximum(high[1:], low[:-1])
        to_row = lambda v: np.clip(np.rint((1 - np.clip(v, -1, 1)) / 2 * (height - 1)), 0, height - 1).astype(int)
        top, bottom = to_row(high), to_row(low)
        heights = np.arange(height)[:, None]
        grid = (heights >= top) & (heights <= bottom)
    cells = grid.reshape(rows, 4, width, 2)
    codes = 0x2800 + np.einsum("rdwc,dc->rw", cells.astype(np.int64), DOTS)
    return ["".join(map(chr, row)) for row in codes]


def spectrum(samples: np.ndarray, samplerate: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and levels (dB of a full-scale sine) of a Hann-windowed FFT."""
    window = np.hanning(len(samples))
    magnitude = np.abs(np.fft.rfft(samples * window)) / (window.sum() / 2)
    return np.fft.rfftfreq(len(samples), 1 / samplerate), 20 * np.log10(magnitude + 1e-12)


def peak_hz(freqs: np.ndarray, levels: np.ndarray) -> float:
    """The strongest frequency, between bins by a parabola through the peak."""
    k = int(np.argmax(levels[1:-1])) + 1
    a, b, c = levels[k - 1:k + 2]
    denominator = a - 2 * b + c
    shift = 0.5 * (a - c) / denominator if denominator else 0.0
    return float(freqs[k] + shift * (freqs[1] - freqs[0]))


def spectrum_bars(freqs: np.ndarray, levels: np.ndarray, width: int, rows: int) -> list[str]:
    """``rows`` lines of bars, one a column on a log axis from 20 Hz to
    Nyquist, each the loudest bin under it, in eighths of a character."""
    edges = np.geomspace(LOWEST_HZ, freqs[-1], width + 1)
    bins = np.minimum(np.searchsorted(freqs, edges[:-1]), len(freqs) - 1)
    ends = np.maximum(np.searchsorted(freqs, edges[1:]), bins + 1)
    loudest = np.array([levels[b:e].max() for b, e in zip(bins, ends)])
    eighths = np.rint(np.clip((loudest - FLOOR_DB) / -FLOOR_DB, 0, 1) * 8 * rows).astype(int)
    lines = []
    for row in range(rows - 1, -1, -1):
        filled = np.clip(eighths - 8 * row, 0, 8)
        lines.append("".join(BARS[f] for f in filled))
    return lines


def axis(freqs: np.ndarray, width: int) -> str:
    """Frequency labels under the spectrum, where they fall on its log axis."""
    line = [" "] * width
    span = np.log(freqs[-1] / LOWEST_HZ)
    for hz, label in ((LOWEST_HZ, "20 Hz"), (100, "100"), (1000, "1k"), (10000, "10k")):
        at = int(np.log(hz / LOWEST_HZ) / span * width)
        if hz < freqs[-1] and at + len(label) <= width:
            line[at:at + len(label)] = label
    return "".join(line).rstrip()


def frame(samples: np.ndarray | None, width: int, height: int, samplerate: float, title: str,
          number: int) -> list[str]:
    """One frame: a title line, the oscilloscope, the spectrum and its
    axis, in ``height`` lines of at most ``width`` characters."""
    width, height = max(width, 20), max(height, 8)
    if samples is None or len(samples) < 2:
        return [f"scope {title}  frame {number}  waiting for the first block  {HINT}"[:width]]
    freqs, levels = spectrum(samples[-FFT:], samplerate)
    peak = float(np.abs(samples[-FFT:]).max())
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    head = (f"scope {title}  frame {number}  peak {peak_db:+.1f} dBFS  strongest {peak_hz(freqs, levels):.1f} Hz"
            f"  {HINT}")
    scope_rows = (height - 3) // 2
    spectrum_rows = height - 3 - scope_rows
    return ([head[:width]] + oscilloscope(triggered(samples, SHOWN), width, scope_rows) + ["─" * width]
            + spectrum_bars(freqs, levels, width, spectrum_rows) + [axis(freqs, width)])


class ScopeView:
    """What the application draws: the tap's newest samples as a frame,
    counting frames so the REPL can say how many it drew."""

    def __init__(self, tap, title: str, samplerate: float) -> None:
        self.tap, self.title, self.samplerate = tap, title, samplerate
        self.frames = 0

    def lines(self, width: int, height: int) -> list[str]:
        self.frames += 1
        return frame(self.tap.latest(FFT), width, height, self.samplerate, self.title, self.frames)


def show(tap, title: str, samplerate: float) -> str:
    """Draw the scope full screen until q, Esc, Enter or Ctrl-C; returns
    the line the REPL prints afterwards (frames drawn, frames a second)."""
    from prompt_toolkit.application import Application, get_app
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import Layout, Window
    from prompt_toolkit.layout.controls import FormattedTextControl

    view = ScopeView(tap, title, samplerate)
    keys = KeyBindings()

    @keys.add("q")
    @keys.add("escape", eager=True)
    @keys.add("enter")
    @keys.add("c-c")
    def _leave(event) -> None:
        event.app.exit()

    def text() -> str:
        size = get_app().output.get_size()
        return "\n".join(view.lines(size.columns - 1, size.rows))

    app = Application(layout=Layout(Window(FormattedTextControl(text), wrap_lines=False)), key_bindings=keys,
                      full_screen=True, refresh_interval=1 / FPS)
    began = time.monotonic()
    app.run()
    seconds = time.monotonic() - began
    return f"scope {title}: {view.frames} frames in {seconds:.1f} s ({view.frames / seconds:.0f} frames/s)"
