"""DSP helpers the module families share: compiled into each kernel that
calls them (engine/jit.helper), kept here so that no family reaches into
another's file for them. Each is small and exact: the same bits on every
machine, inline or in a worker process."""
import math

import numpy as np

from ..engine.jit import helper

#: States below this (-600 dB) are zeroed, long before they could decay
#: into denormals, which are slow on x86: the filters' at the end of a
#: block, the delay's and reverb's lines as each sample is written.
FLUSH = 1e-30

#: A change of the vcf's mode (or the drive's shape) crossfades over this
#: long from its sample, whatever the block size.
MODE_FADE_SECONDS = 0.005

#: splitmix64's constants (random_step).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

#: Taylor coefficients of sin x / x - 1 in powers of x^2, to x^22: on
#: |x| <= pi/2 the series is exact to 1e-18, so the sine is good to 1.5 ulp.
_SIN_SERIES = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(1, 12))


@helper
def flush(v):
    return v if abs(v) > FLUSH else 0.0


@helper
def is_steady(x, c):
    """Whether channel c of x holds one value all block long."""
    differ = 0
    for i in range(x.shape[1]):
        differ += x[c, i] != x[c, 0]
    return differ == 0


@helper
def same_as_previous(param, c):
    """Whether channel c of a parameter repeats channel c - 1 all block long,
    as a mono cable spread to every channel does. NaN is never the same."""
    differ = 0
    for i in range(param.shape[1]):
        differ += param[c, i] != param[c - 1, i]
    return differ == 0


@helper
def held_until(wave, c, start, n):
    """The first sample from ``start`` on where channel c's waveform is not
    the one it has at ``start``; ``n`` when it holds to the block's end.
    Most blocks change nothing: the count of changes runs as vectors, the
    search for the first one only when there is one."""
    if start == 0 and is_steady(wave, c):
        return n
    for i in range(start + 1, n):
        if wave[c, i] != wave[c, start]:
            return i
    return n


@helper
def mode_fade(samplerate):
    """MODE_FADE_SECONDS in samples, at least one."""
    return max(1.0, float(round(MODE_FADE_SECONDS * samplerate)))


@helper
def random_step(state):
    """One splitmix64 step: the next state and a uniform value in [-1, 1)."""
    state += _GOLDEN
    z = (state ^ (state >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return state, float(z >> np.uint64(11)) * 2.0**-52 - 1.0


@helper
def sin_turns(q):
    """sin(2 pi q) for q in [0, 1], to 1.5 ulp; libm's sin(2 pi q) is off
    by up to 2000 ulp near its zeros, where 2 pi q itself rounds. Plain
    arithmetic without branches: loops over it run as vectors, and it
    gives the same bits on every machine."""
    r = q - 1.0 if q > 0.5 else q  # [-0.5, 0.5]; exact, as are the folds below
    a = abs(r)
    a = 0.5 - a if a > 0.25 else a  # sin(pi - x) = sin x
    x = (2.0 * math.pi) * a
    z = x * x
    s = _SIN_SERIES[10]
    for k in range(9, -1, -1):
        s = _SIN_SERIES[k] + z * s
    y = x + x * z * s
    return -y if r < 0.0 else y


@helper
def read_cubic(buf, c, r):
    """Line ``c`` of ``buf`` at the fractional index ``r``, which lies
    within one line length below 0 or above it. Cubic (Hermite)
    interpolation keeps a swept delay free of the dulling and zipper
    noise of linear interpolation; it reads one sample past the read
    point, so a line is never read closer than 2 samples to its newest."""
    size = buf.shape[1]
    base = int(np.floor(r))
    f = r - base
    # Wrapping by compare and add reads what a modulo would, without divisions.
    k = base + size if base < 0 else base
    if k < 0 or k >= size:  # a NaN time: the output is NaN, whatever is read
        k = 0
    k2 = k + 1 if k + 1 < size else 0
    y0 = buf[c, k - 1 if k > 0 else size - 1]
    y1 = buf[c, k]
    y2 = buf[c, k2]
    y3 = buf[c, k2 + 1 if k2 + 1 < size else 0]
    c1 = 0.5 * (y2 - y0)
    c2 = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
    c3 = 0.5 * (y3 - y0) + 1.5 * (y1 - y2)
    return ((c3 * f + c2) * f + c1) * f + y1
