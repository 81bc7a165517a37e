"""Shared fixtures."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from tinygrad_like import data

# In CI the property tests draw the same examples every run (a failure there is then reproducible, never luck);
# elsewhere they explore anew each time.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def write_learnable_idx(directory: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """The four IDX files of a small MNIST-format dataset that a network can learn: noise, plus a bright bar
    whose place is the class. Returns ``directory`` (created)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    labels = {split: rng.integers(0, 10, n).astype(np.uint8) for split, n in (("train", n_train), ("t10k", n_test))}
    for stem in data.IDX_FILES:
        split = stem.split("-")[0]
        if "images" in stem:
            images = rng.integers(0, 60, (len(labels[split]), 28, 28)).astype(np.uint8)
            for i, label in enumerate(labels[split]):
                images[i, 4 + 2 * label:6 + 2 * label, 4:24] = 250
            data.write_idx(directory / f"{stem}.gz", images)
        else:
            data.write_idx(directory / f"{stem}.gz", labels[split])
    return directory


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
