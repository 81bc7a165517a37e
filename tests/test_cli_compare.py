"""`tinygrad-like compare`: the table, the exit status, --json and --data-dir."""

import json
import re

import pytest
from helpers import random_digits, run_python, write_idx_dataset

from tinygrad_like.cli import main

SMALL = ["--layers", "30,8,6,4", "--batch", "20"]


def test_published_exits_1_and_says_why(capsys):
    assert main(["compare", *SMALL]) == 1
    out = " ".join(capsys.readouterr().out.split())  # the diagnosis is wrapped
    assert "hand-written backward (published)" in out
    assert "verdict: DISAGREE (first from the loss: layers.1." in out
    assert "(missing sigmoid derivative): your backward passes the gradient through sigmoid unchanged at network.py" \
        in out
    assert "the weights DIFFER" in out


def test_corrected_exits_0_and_says_the_weights_are_the_same(capsys):
    assert main(["compare", *SMALL, "--code", "corrected", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "verdict: all sources agree" in out and "same weights" in out and "random batch (seed 3)" in out


def test_json_report_holds_the_verdict_the_update_and_every_entry(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert main(["compare", *SMALL, "--json", str(path)]) == 1
    data = json.loads(path.read_text())
    assert data["code"] == "published" and data["ok"] is False and data["sizes"] == [30, 8, 6, 4]
    assert data["batch"] == 20 and data["first_disagreeing_layer"] == "layers.1"
    assert data["update"]["ok"] is False and "layers.0.weight" in data["update"]["max_rel"]
    assert {e["name"] for e in data["entries"]} >= {"layers.0.weight", "layers.0.bias"}


def test_seed_reproduces_the_report(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["compare", *SMALL, "--seed", "5", "--json", str(a)])
    main(["compare", *SMALL, "--seed", "5", "--json", str(b)])
    assert a.read_text() == b.read_text()


@pytest.mark.parametrize("args, message", [
    (["--layers", "784"], "expected at least two positive sizes"),
    (["--batch", "0"], "must be positive, got 0"),
    (["--batch", "two"], "expected an integer, got"),
    (["--code", "fixed"], "invalid choice"),
    (["--lr", "0"], "--lr: must be positive, got 0"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", *args])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_json_in_a_missing_directory_exits_2_before_computing(tmp_path, capsys):
    target = tmp_path / "missing" / "report.json"
    assert main(["compare", *SMALL, "--json", str(target)]) == 2
    captured = capsys.readouterr()
    assert f"--json {target}: the directory {target.parent} does not exist" in captured.err
    assert captured.out == "" and not target.parent.exists()


def test_default_is_the_blog_network_and_module_entry_point():
    run = run_python("-m", "tinygrad_like", "compare", "--batch", "2", timeout=120)
    assert run.returncode == 1, run.stderr
    assert "Blog network [784, 64, 32, 10]" in run.stdout and re.search(r"layers\.0\.weight +param +64x784", run.stdout)
    assert "RuntimeWarning" not in run.stderr


def test_data_dir_uses_the_digits(offline_data, capsys):
    tmp_path = offline_data  # nothing else to find, nothing to download
    write_idx_dataset(tmp_path, random_digits(60, 10))
    assert main(["compare", "--batch", "12", "--code", "corrected", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"data: the first 12 training images of the MNIST-format files in {tmp_path}" in out
    assert "batch of 12" in out


def test_data_dir_errors_exit_2(offline_data, capsys):
    missing = offline_data / "missing"
    assert main(["compare", "--batch", "4", "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-like compare: MNIST not found") and str(missing) in err


def test_data_dir_needs_784_inputs(offline_data, capsys):
    tmp_path = offline_data
    write_idx_dataset(tmp_path, random_digits(60, 10))
    assert main(["compare", "--layers", "30,4", "--data-dir", str(tmp_path)]) == 2
    assert "--layers starts with 30 inputs but the MNIST images have 784 pixels" in capsys.readouterr().err
