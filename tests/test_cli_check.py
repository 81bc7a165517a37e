"""`tinygrad-like check FILE.py`: the report, the exit status, --json, and clear messages for files that cannot be
checked (never a traceback of ours; the user's own, cut to their file)."""

import json
import textwrap

import pytest
from helpers import EXAMPLES, run_python

from tinygrad_like.cli import main

EXAMPLE = EXAMPLES / "check_my_backprop.py"

GOOD = '''
import numpy as np

def forward(params, x):
    return np.sum(np.tanh(x @ params["w"]) ** 2)

def backward(params, x):
    h = np.tanh(x @ params["w"])
    return {"w": x.T @ (2 * h * (1 - h ** 2))}

def example():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((3, 2))}, (rng.standard_normal((4, 3)),)
'''


def write(tmp_path, text, name="mine.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_example_disagrees_names_the_mistake_and_writes_json(tmp_path, capsys):
    out_file = tmp_path / "report.json"
    assert main(["check", str(EXAMPLE), "--json", str(out_file)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "verdict: DISAGREE (first from the loss: b1)" in out
    assert "missing tanh derivative" in out and "check_my_backprop.py line" in out and "1 - t**2" in out
    data = json.loads(out_file.read_text())
    assert data["ok"] is False and data["file"] == str(EXAMPLE) and data["disagreeing"] == ["b1", "W1"]
    assert {e["name"]: e["cause_kind"] for e in data["entries"]}["W1"] == "missing_derivative"


def test_the_example_runs_as_a_script_and_shows_the_fix():
    run = run_python(str(EXAMPLE), timeout=120)
    assert run.returncode == 0, run.stderr
    assert "verdict: DISAGREE" in run.stdout and "verdict: all sources agree" in run.stdout


def test_a_correct_file_exits_0(tmp_path, capsys):
    assert main(["check", str(write(tmp_path, GOOD))]) == 0
    assert "verdict: all sources agree" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("def example", "def sample"), "must define forward(params, *args), backward(params, *args) and "
                                                "example() returning (params, args); missing: example"),
    (GOOD + "\ndef example():\n    return 3\n", "example() must return (params, args): params a dict name -> "
                                               "array or an nn.Module, args a tuple of forward's other arguments; "
                                               "it returned an int"),
    (GOOD.replace("(rng.standard_normal((4, 3)),)", "rng.standard_normal((4, 3))"), "whose args are a ndarray"),
    (GOOD + "\ndef backward(params, x):\n    return [0]\n",
     "backward must return a dict name -> gradient array, got a list"),
    (GOOD.replace("return np.sum(np.tanh", "return (np.tanh"), "forward must return a scalar loss"),
])
def test_files_that_cannot_be_checked_exit_2_with_a_message(tmp_path, capsys, text, message):
    assert main(["check", str(write(tmp_path, text))]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_an_error_in_the_users_code_shows_their_traceback_only(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("h = np.tanh(x @ params[\"w\"])", "h = np.tanh(x @ params[\"v\"])"))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last, frames of your file only)" in err
    assert f'File "{path}", line 8, in backward' in err and "KeyError: 'v'" in err
    assert "tinygrad_like" not in err.replace("tinygrad-like check", "")
    assert "mine.py raised KeyError in backward() (see above)" in err


def test_an_unsupported_numpy_function_is_named(tmp_path, capsys):
    assert main(["check", str(write(tmp_path, GOOD.replace("np.sum(np.tanh", "np.sum(np.i0")))]) == 2
    err = capsys.readouterr().err
    assert "np.i0 is not supported on Tensors" in err and "in forward" in err


def test_a_syntax_error_and_bad_paths(tmp_path, capsys):
    assert main(["check", str(write(tmp_path, "def forward(:\n"))]) == 2
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "mine.py" in err
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    assert "missing.py: no such file" in capsys.readouterr().err
    good = write(tmp_path, GOOD)
    assert main(["check", str(good), "--json", str(good)]) == 2
    assert "is the file to check" in capsys.readouterr().err and good.read_text() == textwrap.dedent(GOOD)
    assert main(["check", str(good), "--json", str(tmp_path / "no" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_python_m_tinygrad_like_check_runs_the_example():
    run = run_python("-m", "tinygrad_like", "check", str(EXAMPLE), timeout=120)
    assert run.returncode == 1 and "missing tanh derivative" in run.stdout and run.stderr == ""
