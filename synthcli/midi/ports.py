"""Live MIDI ports, as mido sees them (``synth midi ports``).

The backend is mido's: ``MIDO_BACKEND`` picks it, for instance
``mido.backends.rtmidi/UNIX_JACK`` for JACK's MIDI ports or
``mido.backends.rtmidi/LINUX_ALSA`` for ALSA's sequencer.
"""
from __future__ import annotations

import contextlib
import os

from ..errors import SynthError


@contextlib.contextmanager
def _quiet_stderr():
    """JACK and ALSA print their complaints straight to file descriptor 2;
    the one line we print instead says what is wrong."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def backend():
    """mido's backend as ``MIDO_BACKEND`` names it, loaded."""
    import mido
    return mido.Backend(os.environ.get("MIDO_BACKEND", "mido.backends.rtmidi"), load=True)


def list_ports() -> dict:
    """``{"backend": ..., "inputs": [...], "outputs": [...]}``.

    Raises
    ------
    SynthError
        In one line, when the backend cannot be loaded or reached.
    """
    name = os.environ.get("MIDO_BACKEND", "mido.backends.rtmidi")
    try:
        with _quiet_stderr():
            loaded = backend()
            inputs, outputs = loaded.get_input_names(), loaded.get_output_names()
    except ImportError as error:
        raise SynthError(f"no MIDI backend: {name} cannot be loaded ({error}); "
                         f"install python-rtmidi, or set MIDO_BACKEND") from None
    except Exception as error:   # rtmidi raises SystemError when its API's server is not there
        raise SynthError(f"no MIDI ports: the backend {name} cannot reach its MIDI system "
                         f"({str(error).strip() or type(error).__name__})") from None
    return {"backend": name, "inputs": list(inputs), "outputs": list(outputs)}


def find_port(wanted: str, kind: str) -> str:
    """The full name of the ``kind`` ("input" or "output") port the
    musician means: the exact name, else the one name that contains it,
    ignoring case (``KeyStep`` finds ``KeyStep 37:KeyStep 37 MIDI 1 20:0``).

    Raises
    ------
    SynthError
        In one line naming the ports there are, when none or several match.
    """
    names = list_ports()[f"{kind}s"]
    if wanted in names:
        return wanted
    found = [name for name in names if wanted.lower() in name.lower()]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"'{name}'" for name in (found or names)) or "none"
    if found:
        raise SynthError(f"MIDI {kind} '{wanted}' is ambiguous: it could be {listed}")
    raise SynthError(f"no MIDI {kind} port '{wanted}'; the {kind}s are: {listed}")


def open_port(name: str, kind: str, **options):
    """Open a port :func:`find_port` found; JACK's and ALSA's complaints
    become one SynthError."""
    try:
        with _quiet_stderr():
            loaded = backend()
            return loaded.open_input(name, **options) if kind == "input" else loaded.open_output(name, **options)
    except Exception as error:   # rtmidi raises its own errors, SystemError among them
        raise SynthError(f"cannot open MIDI {kind} '{name}': {str(error).strip() or type(error).__name__}") from None
