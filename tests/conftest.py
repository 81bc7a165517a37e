"""Shared fixtures."""

from pathlib import Path

import pytest

from tinygrad_like import data


@pytest.fixture
def offline_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No dataset anywhere and no way out: every place ``data`` searches points into ``tmp_path`` (returned),
    and downloads go to port 9 on localhost, which refuses at once, so a test can never reach the internet."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for var in ("KERAS_HOME", data.DATA_ENV, data.MIRRORS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setattr(data, "MIRRORS", {name: ("http://127.0.0.1:9/",) for name in data.DATASETS})
    return tmp_path
