"""One picture of a rendered sound: waveform, spectrogram and level over
time, stacked on a shared time axis. matplotlib is an optional extra
(`pip install 'synthcli[plot]'`) and is imported only here."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SynthError

WIDTH, HEIGHT, DPI = 12, 8, 100
#: What `--plot` can draw to: matplotlib writes each by its suffix.
SUFFIXES = (".png", ".svg", ".pdf")


def require_matplotlib(needed_by: str = "--plot"):
    """pyplot on the Agg backend, or an error naming what needs it and how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise SynthError(f"{needed_by} needs matplotlib: pip install 'synthcli[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_wav(wav: Path, png: Path) -> None:
    """Draw ``wav`` into ``png`` (1200 x 800 pixels)."""
    import soundfile
    from scipy.signal import spectrogram

    plt = require_matplotlib()
    data, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    seconds = np.arange(len(mono)) / rate
    fig, (wave_ax, spec_ax, level_ax) = plt.subplots(3, 1, figsize=(WIDTH, HEIGHT), dpi=DPI, sharex=True,
                                                       gridspec_kw={"height_ratios": [1, 1.4, 0.8]})
    # Waveform as a min/max envelope per pixel column: every peak stays visible.
    columns = max(1, min(len(mono), WIDTH * DPI))
    edges = np.linspace(0, len(mono), columns + 1).astype(int)
    for channel, colour in zip(data.T, ("#3366aa", "#cc6633")):
        lows = np.minimum.reduceat(channel, edges[:-1])
        highs = np.maximum.reduceat(channel, edges[:-1])
        wave_ax.fill_between(seconds[edges[:-1]], lows, highs, color=colour, alpha=0.6, linewidth=0)
    wave_ax.set_ylim(-1.05, 1.05)
    wave_ax.set_ylabel("waveform")
    freqs, times, power = spectrogram(mono, fs=rate, nperseg=2048, noverlap=1536)
    # Rasterized: as vectors, a 30 s song's million cells made a 644 MB SVG in 2.5 minutes.
    spec_ax.pcolormesh(times, freqs, 10 * np.log10(power + 1e-12), shading="auto", cmap="magma", vmin=-120, vmax=-20,
                       rasterized=True)
    spec_ax.set_yscale("symlog", linthresh=200)
    spec_ax.set_ylim(20, rate / 2)
    spec_ax.set_ylabel("Hz")
    window = max(1, int(0.05 * rate))
    usable = len(mono) // window * window
    rms = np.sqrt((mono[:usable].reshape(-1, window) ** 2).mean(axis=1))
    level_ax.plot(np.arange(len(rms)) * window / rate, 20 * np.log10(rms + 1e-9), color="#2a7a2a")
    level_ax.set_ylim(-80, 3)
    level_ax.set_ylabel("level dBFS")
    level_ax.set_xlabel("seconds")
    fig.suptitle(wav.name)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
