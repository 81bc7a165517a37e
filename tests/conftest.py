"""Fixtures shared by the test files (helpers that are not fixtures: helpers.py)."""

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import learnable_digits
from hypothesis import settings

from tinygrad_like import data, train

# In CI the property tests draw the same examples every run (a failure there is then reproducible, never luck);
# elsewhere they explore anew each time.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def torch():
    """PyTorch, the oracle; a test asking for it is skipped where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small_digits() -> tuple[np.ndarray, np.ndarray]:
    """300 learnable samples prepared as the blog prepares MNIST (float64): a full batch of 200 and a partial one
    of 100, as the blog's loop applies at the epoch's end."""
    return train.prepare(*learnable_digits(300), dtype=np.float64)


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
