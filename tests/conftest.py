import pytest

from synthcli.plugins import load_registry
from synthcli.testing import jack_dummy_server


@pytest.fixture(scope="session")
def registry():
    return load_registry(safe_mode=True)


@pytest.fixture(scope="session")
def jack_server():
    """A real JACK server (dummy backend, real-time pacing) for the whole
    session; tests play through it with PortAudio in subprocesses."""
    try:
        with jack_dummy_server() as name:
            yield name
    except RuntimeError as error:
        pytest.skip(f"cannot test live audio: {error}")
