"""The examples a newcomer runs first (examples/) keep working: run as scripts, as users do, in a scratch
directory, on small generated MNIST-format data; the notebook is stored without outputs and runs top to bottom."""

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from helpers import EXAMPLES, listing, needs_dot, run_example, run_python, write_learnable_idx


def test_compare_gradients_finds_the_blogs_bug_and_the_fix(tmp_path):
    out = run_example("compare_gradients.py", cwd=tmp_path)
    assert "verdict: DISAGREE" in out and "missing sigmoid derivative" in out
    assert "verdict: all sources agree" in out


@needs_dot
def test_draw_graph_writes_both_drawings(tmp_path):
    pytest.importorskip("graphviz")
    out = run_example("draw_graph.py", cwd=tmp_path)
    assert "expression.svg" in out and not list(tmp_path.iterdir())  # by default into a temporary directory
    subprocess.run([sys.executable, str(EXAMPLES / "draw_graph.py"), str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "blog_mlp.html").stat().st_size > 100_000
    for name in ("expression.svg", "blog_mlp.svg"):
        texts = "".join(ET.parse(tmp_path / name).getroot().itertext())
        assert "sigmoid" in texts
    assert "layers.0.weight" in "".join(ET.parse(tmp_path / "blog_mlp.svg").getroot().itertext())


def test_mnist_blog_trains_on_a_small_generated_dataset(tmp_path):
    data_dir = write_learnable_idx(tmp_path / "mnist", 400, 100)
    out = run_example("mnist_blog.py", cwd=tmp_path, TINYGRAD_LIKE_DATA=str(data_dir),
                      XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert out.count("Epoch") == 4
    scores = [line for line in out.splitlines() if line.startswith("Score: ")]
    assert len(scores) == 2 and "/ 400 =" in scores[0] and "/ 100 =" in scores[1]


def test_mnist_cnn_trains_on_a_small_generated_dataset(tmp_path):
    data_dir = write_learnable_idx(tmp_path / "fashion-mnist", 300, 100)
    # one BLAS thread: on a busy machine a second one waiting for a core makes the products ~10x slower
    out = run_example("mnist_cnn.py", "--epochs", "2", "--subset", "300", "--batch-size", "30", "--lr", "0.005",
                      cwd=tmp_path, TINYGRAD_LIKE_DATA=str(data_dir), XDG_CACHE_HOME=str(tmp_path / "cache"),
                      OPENBLAS_NUM_THREADS="1")
    assert "fashion-mnist: 300 training and 100 test images" in out
    epochs = re.findall(r"Epoch (\d): loss ([\d.]+), test accuracy ([\d.]+)%, [\d.]+ s", out)
    assert [e[0] for e in epochs] == ["1", "2"]
    assert float(epochs[1][1]) < float(epochs[0][1])  # the loss goes down
    assert float(epochs[1][2]) > 30  # far above chance (10%)


def test_mnist_cnn_refuses_bad_arguments_before_any_work(tmp_path):
    result = run_python(str(EXAMPLES / "mnist_cnn.py"), "--epochs", "0", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "--epochs must be at least 1, got 0" in result.stderr


def test_newton_converges_in_a_handful_of_steps_where_gradient_descent_needs_hundreds(tmp_path):
    """Newton's method on Hessian-vector products, against gradient descent with a safe fixed step, to the same
    minimum."""
    out = run_example("newton.py", cwd=tmp_path, timeout=120)
    newton = re.search(r"Newton \+ conjugate gradients .*: (\d+) steps, loss ([\d.]+)", out)
    descent = re.search(r"gradient descent .*: (\d+) steps, loss ([\d.]+)", out)
    assert newton and descent, out
    assert int(newton.group(1)) <= 10 and int(descent.group(1)) >= 100
    assert abs(float(newton.group(2)) - float(descent.group(2))) < 1e-10
    norms = [float(n) for n in re.findall(r"\|gradient\| ([\d.e+-]+)", out)]
    assert norms[-1] < 1e-8 and all(b < 100 * a * a for a, b in zip(norms[-4:], norms[-3:]))  # quadratically


NOTEBOOK = EXAMPLES / "blog.ipynb"


def test_the_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 10 and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from tinygrad_like import data

    if data.find_dataset("mnist") is None and data.find_dataset("fashion-mnist") is None:
        pytest.skip("neither MNIST nor Fashion-MNIST is on this machine (apt-get install dataset-fashion-mnist)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "missing sigmoid derivative" in text and "Score: " in text
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)  # the drawn graph
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the two gradient-flow plots
    assert listing(tmp_path) == []  # it leaves no files behind
