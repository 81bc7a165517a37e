"""End-to-end tests of ``tinygrad-like train`` on a small generated dataset (IDX files written to tmp_path).

HOME, XDG_CACHE_HOME, the Debian directory and the download mirrors point into tmp_path or to a closed local
port, so nothing is read from the machine's datasets and nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PNG_MAGIC, learnable_digits, listing, write_idx_dataset

from tinygrad_like import Tensor, cli, data, nn
from tinygrad_like import train as T

pytestmark = pytest.mark.usefixtures("offline_data")  # see conftest.py


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A few hundred learnable samples as the four gzipped IDX files."""
    return write_idx_dataset(tmp_path / "data", (learnable_digits(240, seed=0), learnable_digits(80, seed=1)))


def run(*args: str) -> int:
    return cli.main(["train", "--no-progress", *args])


def load_summary(path: Path, drop_seconds: bool = True) -> dict[str, Any]:
    summary = json.loads(path.read_text())
    if drop_seconds:
        summary.pop("seconds")
        for epoch in summary["history"]:
            epoch.pop("seconds")
    return summary


def test_blog_recipe_end_to_end(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert run("--data-dir", str(dataset), "--seed", "3", "--epochs", "3", "--json", str(out)) == 0
    printed = capsys.readouterr().out
    for line in ("Epoch 1, current loss: ", "Epoch 3, current loss: ", "Final loss: ", "Score: "):
        assert line in printed
    summary = load_summary(out, drop_seconds=False)
    expected_keys = {"train_accuracy", "test_accuracy", "epochs", "seconds", "recipe", "backend", "dataset", "seed",
                     "history", "initial_loss", "final_loss", "hyperparameters", "n_train", "n_test"}
    assert expected_keys <= summary.keys()
    assert (summary["recipe"], summary["backend"], summary["dataset"], summary["seed"]) == ("blog", "autograd",
                                                                                          "mnist", 3)
    assert (summary["epochs"], summary["n_train"], summary["n_test"]) == (3, 240, 80)
    assert summary["hyperparameters"]["batch_size"] == 200 and summary["hyperparameters"]["lr"] == 0.001
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert summary["history"][-1]["test_accuracy"] == summary["test_accuracy"]
    assert summary["test_accuracy"] == summary["test_correct"] / 80
    assert f"Score: {summary['train_correct']} / 240 = " in printed
    assert summary["final_loss"] < summary["initial_loss"]
    assert summary["seconds"] > 0


@pytest.mark.parametrize("extra", [[], ["--recipe", "modern", "--epochs", "2"], ["--backend", "published"]])
def test_same_seed_gives_identical_summaries(extra: list[str], dataset: Path, tmp_path: Path) -> None:
    paths = [tmp_path / f"run{i}.json" for i in range(3)]
    for path, seed in zip(paths, ["11", "11", "12"]):
        assert run("--data-dir", str(dataset), "--seed", seed, "--json", str(path), *extra) == 0
    first, second, other = (load_summary(p) for p in paths)
    assert first == second
    assert other["history"] != first["history"]


def test_saved_weights_load_back_with_identical_predictions(dataset: Path, tmp_path: Path) -> None:
    weights, out = tmp_path / "model.npz", tmp_path / "run.json"
    # The modern recipe folds its input standardisation into the first layer: the file must hold the result.
    assert run("--data-dir", str(dataset), "--recipe", "modern", "--epochs", "2", "--seed", "0",
               "--save", str(weights), "--json", str(out)) == 0
    model = nn.Module.load(weights)
    assert isinstance(model, nn.MLP) and model.activation == "relu"
    (x_train, y_train), (x_test, y_test) = data.load_dataset("mnist", dataset)
    x, y = T.prepare(x_test, y_test)
    predictions = model.logits(Tensor(x)).data.argmax(axis=1)
    summary = load_summary(out)
    assert int(np.sum(predictions == y)) == summary["test_correct"]


def test_plot_writes_a_png(dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    assert run("--data-dir", str(dataset), "--seed", "0", "--epochs", "2", "--plot", str(png)) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_plot_without_matplotlib_exits_2_before_training(dataset: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib...`` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert run("--data-dir", str(dataset), "--plot", str(tmp_path / "curves.png")) == 2
    captured = capsys.readouterr()
    assert "matplotlib" in captured.err and "pip install" in captured.err
    assert "Epoch" not in captured.out


@pytest.mark.parametrize("dataset_name", ["mnist", "fashion-mnist"])
def test_no_data_exits_2_with_the_places_searched(dataset_name: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--dataset", dataset_name) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "--data-dir" in err and str(tmp_path / "xdg-cache") in err
    assert "127.0.0.1" in err  # the download was tried on the (closed) local mirror only


def test_corrupt_data_exits_1_naming_the_file(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = dataset / "t10k-labels-idx1-ubyte.gz"
    data.write_idx(labels, np.full(80, 12, dtype=np.uint8))  # label 12 in a 10-class dataset
    assert run("--data-dir", str(dataset)) == 1
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in err and "out of range" in err


@pytest.mark.parametrize("args, message", [
    (["--recipe", "modern", "--backend", "manual"], "for --recipe blog only"),
    (["--per-sample"], "--per-sample is for --backend manual|published"),
    (["--backend", "published", "--dtype", "float32"], "float64"),
])
def test_inconsistent_arguments_exit_2(args: list[str], message: str, dataset: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--data-dir", str(dataset), *args) == 2
    assert message in capsys.readouterr().err


def test_output_in_a_missing_directory_exits_2_before_training(dataset: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "run.json"
    assert run("--data-dir", str(dataset), "--json", str(target)) == 2
    captured = capsys.readouterr()
    assert f"--json {target}: the directory {target.parent} does not exist" in captured.err
    assert "Epoch" not in captured.out


def test_bad_numbers_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("--epochs", "0")
    assert exit_info.value.code == 2
    assert "--epochs: must be positive" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed: a seed must be 0 or more"),
    (["--lr", "inf"], "--lr: must be finite"),
    (["--lr", "nan"], "--lr: must be finite"),
    (["--plot", "curves.xyz"], "--plot curves.xyz: unknown file type .xyz"),
    (["--json", ""], "--json: empty path"),
    (["--save", ""], "--save: empty path"),
    (["--plot", ""], "--plot: empty path"),
    (["--save", "m.npz", "--json", "m.npz"], "--json m.npz: the same file as --save"),
    (["--save", "missing/m.npz"], "the directory missing does not exist"),
    (["--json", "/proc/run.json"], "--json /proc/run.json: cannot write into /proc"),
    (["--save", "."], "--save .: unknown file type"),
], ids=["seed", "lr-inf", "lr-nan", "plot-ext", "json-empty", "save-empty", "plot-empty", "same-file", "missing-dir",
        "unwritable", "directory"])
def test_user_errors_are_refused_before_any_work_with_status_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = cli.main(["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "nothing"), *args])
    except SystemExit as e:  # argparse's own refusals
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err
    assert listing(tmp_path) == []  # nothing written, no data searched for


@pytest.mark.parametrize("backend", ["autograd", "published"])
def test_a_diverging_run_stops_says_so_exits_1_and_writes_strict_json(backend: str, dataset: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert run("--data-dir", str(dataset), "--seed", "0", "--lr", "1e30", "--backend", backend, "--epochs", "3",
               "--json", str(out)) == 1  # and no RuntimeWarning: pytest turns them into errors
    assert "Training diverged: the loss is" in capsys.readouterr().out
    summary = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in strict JSON"))
    assert summary["diverged"] is True and len(summary["history"]) == 1


def test_a_data_dir_that_does_not_exist_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--data-dir", str(tmp_path / "typo")) == 2
    assert "--data-dir" in capsys.readouterr().err
