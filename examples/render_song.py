"""Render a song to a WAV file from Python, in the layers `synth render`
is built of, and check what came out.

    python examples/render_song.py [OUT.wav]

The layers: the registry of module types (the built-ins and every
installed plugin, through the same pluggy hook), a Song parsed from text
(the patch it starts with, its tempo map and its patterns), an Engine that
runs the patch block by block, a Performance that drives the engine from
the song and fades it in and out, and the WAV writer. A live `synth play`
runs the same Engine and Performance in its engine process, so what you
render here is what it plays.
"""
import argparse

import numpy as np
import soundfile

from synthcli.engine.core import Engine
from synthcli.engine.render import Performance, render_to_wav
from synthcli.plugins import load_registry
from synthcli.sequencer.song import Song
from synthcli.testing import peak_frequency

SONG = """
tempo 120
length 2
add keys kb voices=3
add vco osc wave=saw
add vcf f cutoff=1200 res=0.2
add adsr env attack=0.005 decay=0.2 sustain=0.5 release=0.3
add vca amp level=0.25
connect kb.voct osc.voct
connect kb.gate env.gate
connect osc f
connect f amp
connect env amp.gain
connect amp out
pattern kb "a3 [c4,e4] a3 [c4,e4]" legato=0.8
"""


def main(out: str = "render_song.wav") -> None:
    registry = load_registry()
    song = Song(registry, SONG, source="<example>")   # a mistake raises SynthError with line and column
    # "auto", as `synth render` has it: worker processes join when the patch is heavy enough to pay.
    with Engine(registry, samplerate=48000, blocksize=256, executor="auto") as engine:
        frames = render_to_wav(Performance(engine, song), out)
    audio, rate = soundfile.read(out)
    first_note = audio[int(0.05 * rate):int(0.45 * rate), 0]   # a3 alone, before the first chord
    print(f"wrote {out}: {frames / rate:.2f} s, peak {20 * np.log10(np.abs(audio).max()):.1f} dBFS, "
          f"first note at {peak_frequency(first_note, rate):.1f} Hz (a3 is 220.0 Hz)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="render_song.wav", help="the WAV file to write")
    main(parser.parse_args().out)
