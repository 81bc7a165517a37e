"""examples/mnist_cnn.py runs as a script on a small generated MNIST-format dataset and learns something."""

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import write_learnable_idx

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "mnist_cnn.py"


def test_mnist_cnn_trains_on_a_small_generated_dataset(tmp_path):
    data_dir = write_learnable_idx(tmp_path / "fashion-mnist", 300, 100)
    env = {**os.environ, "TINYGRAD_LIKE_DATA": str(data_dir), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           # one BLAS thread: on a busy machine a second one waiting for a core makes the products ~10x slower
           "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT), "--epochs", "2", "--subset", "300", "--batch-size", "30",
                             "--lr", "0.005"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "fashion-mnist: 300 training and 100 test images" in result.stdout
    epochs = re.findall(r"Epoch (\d): loss ([\d.]+), test accuracy ([\d.]+)%, [\d.]+ s", result.stdout)
    assert [e[0] for e in epochs] == ["1", "2"]
    assert float(epochs[1][1]) < float(epochs[0][1])  # the loss goes down
    assert float(epochs[1][2]) > 30  # far above chance (10%)


def test_mnist_cnn_refuses_bad_arguments_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--epochs", "0"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--epochs must be at least 1, got 0" in result.stderr
