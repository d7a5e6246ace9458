import os
import shutil
import subprocess
import time

import pytest

from synthcli.plugins import load_registry


@pytest.fixture(scope="session")
def registry():
    return load_registry(safe_mode=True)


@pytest.fixture(scope="session")
def jack_server():
    """A real JACK server with the dummy backend, paced in real time like a
    sound card (design brief, section 8). Tests play through it with
    PortAudio in subprocesses; it stops after every one of them has exited.
    Yields the server name, also set as JACK_DEFAULT_SERVER for children."""
    if not shutil.which("jackd") or not shutil.which("jack_wait"):
        pytest.skip("jackd is not installed (apt-get install jackd2 libportaudio2): cannot test live audio")
    name = f"synthcli-test-{os.getpid()}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_DEFAULT_SERVER": name}
    server = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waited = subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, capture_output=True, text=True)
    if waited.returncode != 0 or server.poll() is not None:
        server.kill()
        pytest.skip(f"the JACK dummy server did not start: {waited.stdout.strip()} {waited.stderr.strip()}")
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"
    yield name
    if old is None:
        del os.environ["JACK_DEFAULT_SERVER"]
    else:
        os.environ["JACK_DEFAULT_SERVER"] = old
    time.sleep(0.2)
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
