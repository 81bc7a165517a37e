"""The example scripts a newcomer runs first keep working (run as scripts, in a scratch directory)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import write_learnable_idx

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, cwd: Path, **env: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compare_gradients_finds_the_blogs_bug_and_the_fix(tmp_path):
    out = run("compare_gradients.py", tmp_path)
    assert "verdict: DISAGREE" in out and "missing sigmoid derivative" in out
    assert "verdict: all sources agree" in out


def test_draw_graph_writes_both_drawings(tmp_path):
    pytest.importorskip("graphviz")
    if not any((Path(d) / "dot").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("Graphviz's dot is not installed")
    out = run("draw_graph.py", tmp_path)
    assert "expression.svg" in out and not list(tmp_path.iterdir())  # by default into a temporary directory
    subprocess.run([sys.executable, str(EXAMPLES / "draw_graph.py"), str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "blog_mlp.html").stat().st_size > 100_000
    for name in ("expression.svg", "blog_mlp.svg"):
        texts = "".join(ET.parse(tmp_path / name).getroot().itertext())
        assert "sigmoid" in texts
    assert "layers.0.weight" in "".join(ET.parse(tmp_path / "blog_mlp.svg").getroot().itertext())


def test_mnist_blog_trains_on_a_small_generated_dataset(tmp_path):
    data_dir = write_learnable_idx(tmp_path / "mnist", 400, 100)
    out = run("mnist_blog.py", tmp_path, TINYGRAD_LIKE_DATA=str(data_dir), XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert out.count("Epoch") == 4
    scores = [line for line in out.splitlines() if line.startswith("Score: ")]
    assert len(scores) == 2 and "/ 400 =" in scores[0] and "/ 100 =" in scores[1]
