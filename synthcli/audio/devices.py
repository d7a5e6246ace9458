"""The audio device, through sounddevice (PortAudio).

sounddevice is imported only here, and only when live audio is asked for,
so offline rendering never needs PortAudio. Every way this can fail on a
musician's machine becomes one line that says what to do.
"""
from __future__ import annotations

from ..errors import SynthError


def sounddevice():
    try:
        import sounddevice as sd
    except ImportError:
        raise SynthError("live audio needs the sounddevice package: pip install 'synthcli[live]'") from None
    except OSError:
        raise SynthError("the PortAudio library is not installed (Debian/Ubuntu: apt-get install libportaudio2; "
                         "macOS: brew install portaudio); `synth render` works without it") from None
    return sd


def outputs() -> list[dict]:
    """Every output device, with its host API and whether it is the default."""
    sd = sounddevice()
    apis = sd.query_hostapis()
    default = sd.default.device[1]
    found = []
    for index, dev in enumerate(sd.query_devices()):
        if dev["max_output_channels"] > 0:
            found.append({"index": index, "name": dev["name"], "hostapi": apis[dev["hostapi"]]["name"],
                          "channels": dev["max_output_channels"], "samplerate": dev["default_samplerate"],
                          "default": index == default})
    return found


def describe(device: dict) -> str:
    """One of :func:`outputs` as `synth devices` and the REPL list it; * marks the default."""
    return (f"{'*' if device['default'] else ' '} {device['index']:>3}  {device['name']}  ({device['hostapi']}, "
            f"{device['channels']} out, {device['samplerate']:g} Hz)")


def host_apis() -> list[dict]:
    sd = sounddevice()
    return [{"name": api["name"], "devices": len(api["devices"]),
             "default_output": api["default_output_device"]} for api in sd.query_hostapis()]


def choose(device: str | int | None) -> int:
    """The output device for ``--device``: an index, a name fragment, or
    None for the default (or else the first output there is)."""
    available = outputs()
    if not available:
        raise SynthError("no audio output device found: start a sound server (JACK, PulseAudio, PipeWire) "
                         "or use `synth render FILE -o out.wav`")
    if device is None:
        chosen = next((d for d in available if d["default"]), available[0])
        return chosen["index"]
    text = str(device)
    if text.isascii() and text.isdigit():
        if any(d["index"] == int(text) for d in available):
            return int(text)
        raise SynthError(f"--device {text}: no output device has that number (see `synth devices`)")
    matches = [d for d in available if text.lower() in d["name"].lower() or text.lower() in d["hostapi"].lower()]
    if not matches:
        raise SynthError(f"--device {text!r}: no output device matches (see `synth devices`)")
    return matches[0]["index"]


def open_stream(device, samplerate: float, blocksize: int, callback):
    """An output stream of interleaved stereo float32 blocks of exactly
    ``blocksize`` frames, or a SynthError naming what to change."""
    sd = sounddevice()
    index = choose(device)
    try:
        sd.check_output_settings(device=index, channels=2, dtype="float32", samplerate=samplerate)
    except Exception as error:
        raise SynthError(f"the output device refuses {samplerate:g} Hz stereo ({error}); "
                         f"try --samplerate with the device's rate (see `synth devices`)") from None
    try:
        return sd.OutputStream(device=index, channels=2, dtype="float32", samplerate=samplerate,
                               blocksize=blocksize, latency="low", callback=callback)
    except Exception as error:
        raise SynthError(f"cannot open the output device: {error}") from None
