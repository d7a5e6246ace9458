"""Example pictures for the module reference: what each oscillator puts
out (a few cycles of every wave, and its spectrum) and what each filter
and the eq do (the magnitude response, measured by rendering an impulse
through it).

They are rendered from the modules themselves (``render_module``, the
same call plugin tests use), so a change to the DSP shows in the pictures
the next time they are drawn; nothing is drawn by hand.

    python -m synthcli.reference --pictures     # rewrite docs/images/<type>.png

matplotlib is the optional ``synthcli[plot]`` extra and is imported only
when drawing.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from .plot import require_matplotlib
from .testing import render_module

SAMPLERATE, BLOCKSIZE = 48000, 256
#: Width of every picture, in inches at DPI (900 pixels).
WIDTH, DPI = 9, 100
#: Tone of the vco pictures: A3, so its harmonics spread over the axis.
TONE_HZ = 220.0
#: Rate of the lfo pictures: a typical slow sweep.
LFO_HZ = 2.0
#: Samples of the impulse response a filter is measured from (0.34 s).
IMPULSE = 16384
#: Level of that impulse: low enough that the ladder's saturation stays linear.
IMPULSE_LEVEL = 0.05


class Oscillator(NamedTuple):
    """How one oscillator type is pictured."""

    choice: str            # the parameter with one row per choice
    rate: float | None     # Hz it plays at (None: it has no frequency)
    shown: float           # seconds of waveform drawn
    seconds: float         # seconds rendered for the spectrum
    lowest: float          # the spectrum's axis, Hz
    highest: float
    extra: dict | None = None   # more parameters for some choices
    values: tuple = ()          # the rows' values of a numeric parameter (default: every choice)


OSCILLATORS = {
    "vco": Oscillator("wave", TONE_HZ, 3 / TONE_HZ, 1.0, 20.0, SAMPLERATE / 2, {"pulse": {"pw": 0.2}}),
    "lfo": Oscillator("wave", LFO_HZ, 1.5, 8.0, 0.2, 200.0),
    "noise": Oscillator("color", None, 0.01, 4.0, 20.0, SAMPLERATE / 2),
    "supersaw": Oscillator("detune", TONE_HZ, 3 / TONE_HZ, 1.0, 20.0, SAMPLERATE / 2, values=(0.0, 0.5, 0.9)),
    "fm": Oscillator("index", TONE_HZ, 3 / TONE_HZ, 1.0, 20.0, SAMPLERATE / 2, values=(0.5, 2.0, 5.0)),
}


def render(cls, seconds: float, **params) -> np.ndarray:
    blocks = int(np.ceil(seconds * SAMPLERATE / BLOCKSIZE))
    return render_module(cls, blocks, params=params, samplerate=SAMPLERATE, blocksize=BLOCKSIZE)["out"][0]


def level_spectrum(signal: np.ndarray, segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch-averaged spectrum in dB of a full-scale sine (a sine of
    amplitude 1 reads 0 dB): steady for noise, sharp lines for tones."""
    from scipy.signal import welch
    freqs, power = welch(signal, SAMPLERATE, window="hann", nperseg=segment, scaling="spectrum")
    return freqs, 10 * np.log10(2 * power + 1e-16)


def oscillator(cls, ax_rows, spec: "Oscillator") -> None:
    """One row per wave (or colour): a few cycles on the left, the spectrum on the right."""
    choice = cls.param(spec.choice)
    for (wave_ax, spectrum_ax), value in zip(ax_rows, spec.values or choice.choices):
        extra = (spec.extra or {}).get(value, {})
        out = render(cls, spec.seconds, **{choice.name: value, **({"freq": spec.rate} if spec.rate else {}), **extra})
        shown = out[-int(spec.shown * SAMPLERATE):]
        wave_ax.plot(np.arange(len(shown)) / SAMPLERATE * 1e3, shown, color="#3366aa", linewidth=1.2)
        wave_ax.set_ylabel(" ".join(f"{k}={v}" for k, v in {choice.name: value, **extra}.items()), fontsize=9)
        top = max(1.15, 1.05 * float(np.abs(shown).max()))   # a supersaw's saws line up past 1
        wave_ax.set_ylim(-top, top)
        freqs, levels = level_spectrum(out, 2 ** int(np.log2(len(out) // 2)))
        keep = (freqs >= spec.lowest) & (freqs <= spec.highest)
        spectrum_ax.semilogx(freqs[keep], levels[keep], color="#cc6633", linewidth=0.9)
        spectrum_ax.set_ylim(-100, 5)
        spectrum_ax.set_xlim(spec.lowest, spec.highest)
        for ax in (wave_ax, spectrum_ax):
            ax.grid(True, alpha=0.3)
    ax_rows[-1][0].set_xlabel("ms")
    ax_rows[-1][1].set_xlabel("Hz (level in dB of a full-scale sine)")


def response(cls, **params) -> tuple[np.ndarray, np.ndarray]:
    """The magnitude response in dB, from the filter's impulse response."""
    impulse = np.zeros(IMPULSE)
    impulse[0] = IMPULSE_LEVEL
    out = render_module(cls, IMPULSE // BLOCKSIZE, params=params, inputs={"in": impulse},
                        samplerate=SAMPLERATE, blocksize=BLOCKSIZE)["out"][0]
    return np.fft.rfftfreq(IMPULSE, 1 / SAMPLERATE), 20 * np.log10(np.abs(np.fft.rfft(out)) / IMPULSE_LEVEL + 1e-12)


def filter_curves(cls, ax, label: str, variants: list[dict], limits: tuple[float, float] = (-60, 30)) -> None:
    for params in variants:
        freqs, db = response(cls, **params)
        ax.semilogx(freqs[1:], db[1:], linewidth=1.2, label=" ".join(f"{k}={v}" for k, v in params.items()))
    ax.set_xlim(20, SAMPLERATE / 2)
    ax.set_ylim(*limits)
    ax.set_ylabel("dB")
    ax.set_title(label, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")


def draw_oscillator(cls, path: Path) -> None:
    plt = require_matplotlib("--pictures")
    spec = OSCILLATORS[cls.type_name]
    rows = len(spec.values or cls.param(spec.choice).choices)
    fig, axes = plt.subplots(rows, 2, figsize=(WIDTH, 1.5 * rows + 0.8), dpi=DPI, squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.3]})
    oscillator(cls, axes, spec)
    about = f"at {spec.rate:g} Hz" if spec.rate else f"{1e3 * spec.shown:g} ms of it"
    fig.suptitle(f"{cls.type_name}: each {spec.choice} ({about}) and its spectrum", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_filter(cls, path: Path) -> None:
    plt = require_matplotlib("--pictures")
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.6), dpi=DPI, sharey=True)
    if cls.type_name == "vcf":
        filter_curves(cls, left, "each mode, cutoff 1 kHz, res 0.5",
                      [{"mode": m, "cutoff": 1000, "res": 0.5} for m in cls.param("mode").choices])
        filter_curves(cls, right, "lowpass at 1 kHz by resonance",
                      [{"cutoff": 1000, "res": r} for r in (0.0, 0.5, 0.9)])
    elif cls.type_name == "eq":
        filter_curves(cls, left, "each band at +/-12 dB",
                      [{"low": 12}, {"mid": -12}, {"high": 12}, {"low": -12, "high": -12}], (-18, 18))
        filter_curves(cls, right, "the bell at +12 dB by q",
                      [{"mid": 12, "q": q} for q in (0.3, 0.7, 2, 8)], (-18, 18))
    else:
        # From res 0.89 the ladder oscillates by itself: no response to measure there.
        filter_curves(cls, left, "cutoff 1 kHz by resonance", [{"cutoff": 1000, "res": r} for r in (0.0, 0.5, 0.8)])
        filter_curves(cls, right, "res 0.5 by cutoff", [{"cutoff": c, "res": 0.5} for c in (250, 1000, 4000)])
    for ax in (left, right):
        ax.set_xlabel("Hz")
    fig.suptitle(f"{cls.type_name}: magnitude response, measured from an impulse", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


#: The module types the reference shows a picture of, and how each is drawn.
PICTURES = {"vco": draw_oscillator, "supersaw": draw_oscillator, "fm": draw_oscillator,
            "lfo": draw_oscillator, "noise": draw_oscillator,
            "vcf": draw_filter, "ladder": draw_filter, "eq": draw_filter}


def picture_path(type_name: str, docs: Path) -> Path:
    return docs / "images" / f"{type_name}.png"


def write_pictures(registry, docs: Path) -> list[Path]:
    """Draw every picture into ``docs/images``; returns the files written."""
    written = []
    for name, draw in PICTURES.items():
        path = picture_path(name, docs)
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(registry.get(name).cls, path)
        written.append(path)
    return written
