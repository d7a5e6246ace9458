import pytest

from synthcli.plugins import load_registry


@pytest.fixture(scope="session")
def registry():
    return load_registry(safe_mode=True)
