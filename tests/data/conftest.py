import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Data tests never download: a missing file must fail with the loader's message."""
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
