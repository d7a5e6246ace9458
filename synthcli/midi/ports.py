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


def list_ports() -> dict:
    """``{"backend": ..., "inputs": [...], "outputs": [...]}``.

    Raises
    ------
    SynthError
        In one line, when the backend cannot be loaded or reached.
    """
    import mido
    name = os.environ.get("MIDO_BACKEND", "mido.backends.rtmidi")
    try:
        with _quiet_stderr():
            backend = mido.Backend(name, load=True)
            inputs, outputs = backend.get_input_names(), backend.get_output_names()
    except ImportError as error:
        raise SynthError(f"no MIDI backend: {name} cannot be loaded ({error}); "
                         f"install python-rtmidi, or set MIDO_BACKEND") from None
    except Exception as error:   # rtmidi raises SystemError when its API's server is not there
        raise SynthError(f"no MIDI ports: the backend {name} cannot reach its MIDI system "
                         f"({str(error).strip() or type(error).__name__})") from None
    return {"backend": name, "inputs": list(inputs), "outputs": list(outputs)}
