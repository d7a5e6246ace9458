"""Live MIDI ports, as mido sees them (``synth midi ports``).

The backend is mido's: ``MIDO_BACKEND`` picks it, for instance
``mido.backends.rtmidi/UNIX_JACK`` for JACK's MIDI ports or
``mido.backends.rtmidi/LINUX_ALSA`` for ALSA's sequencer.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading

from ..errors import SynthError

#: The client and port numbers ALSA's names end with (``KeyStep 37:KeyStep 37
#: MIDI 1 20:0``); a keyboard plugged in again may come back under others.
ALSA_NUMBERS = re.compile(r" \d+:\d+$")


#: One redirection of file descriptor 2 at a time: two threads taking turns
#: would each put back what the other set, and stderr could stay captured.
_REDIRECTING = threading.Lock()


@contextlib.contextmanager
def _quiet_stderr():
    """JACK and ALSA print their complaints straight to file descriptor 2;
    the one line we print instead says what is wrong. Other threads print
    meanwhile (``synth play``'s lines while the MIDI out thread opens a
    port, a JACK client taking a good part of a second), so what reaches
    the descriptor is kept and written out afterwards, unless the port
    could not be opened: then it holds the complaints."""
    with _REDIRECTING:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        with tempfile.TemporaryFile() as kept:
            opened = False
            try:
                os.dup2(kept.fileno(), 2)
                yield
                opened = True
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                if opened:
                    kept.seek(0)
                    meanwhile = kept.read()
                    if meanwhile:
                        os.write(2, meanwhile)


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
        In one line naming the ports there are, when none or several match,
        or when ``wanted`` is empty.
    """
    if not wanted.strip():   # an unset shell variable: it matched every port, and took the only one
        raise SynthError(f"the MIDI {kind} port name is empty")
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


def input_sources(port) -> list[str] | None:
    """The ports an input that :func:`open_port` opened could read now (or
    an output could send to), listed through that port's own rtmidi client:
    mido's listing opens a client of its own each time, which on JACK costs
    a running audio client a cycle. A client that cannot list them (its
    server gone) lists none; None when the backend is not rtmidi's, whose
    ports have no client to ask."""
    client = getattr(port, "_rt", None)
    if client is None:
        return None
    try:
        return client.get_ports()
    except Exception:   # rtmidi raises its own errors, SystemError among them
        return []


def returned(name: str, names: list[str]) -> str | None:
    """The name under which the port ``name`` is back among ``names``, or
    None: the same name, else the one name that differs from it only in
    ALSA's client and port numbers."""
    if name in names:
        return name
    bare = ALSA_NUMBERS.sub("", name)
    found = [other for other in names if ALSA_NUMBERS.sub("", other) == bare]
    return found[0] if len(found) == 1 else None


def reconnect(port, name: str) -> None:
    """Read the input ``port`` (opened by :func:`open_port`) from ``name``,
    a port that came back (or send an output to it), through the same
    client: a new client would cost a running JACK audio client a cycle more. JACK's complaints are not
    silenced as in :func:`open_port`: that silences the whole process, and
    this runs while other threads print.

    Raises
    ------
    SynthError
        In one line, when rtmidi cannot connect.
    """
    try:
        port._rt.close_port()
        if port.is_input:
            port.callback = port.callback   # closing the port dropped rtmidi's hold on mido's callback
        port._rt.open_port(port._rt.get_ports().index(name))
    except Exception as error:   # rtmidi raises its own errors; the port may be gone again (ValueError)
        why = str(error).strip() or type(error).__name__
        raise SynthError(f"cannot reconnect MIDI {'input' if port.is_input else 'output'} '{name}': {why}") from None
