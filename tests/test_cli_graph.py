"""`tinygrad-like graph`: the blog network's graph drawn to SVG (the published code's disagreeing gradients
marked), DOT text, or the HTML view; without Graphviz's dot, the DOT file and the hint; bad arguments refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import hide_dot, listing, needs_dot, page_data, svg_cluster_labels, svg_nodes

from tinygrad_like.cli import main


@needs_dot
def test_cli_graph_writes_the_svg(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "blog.svg"
    assert main(["graph", "--layers", "4,3,2", "--batch", "3", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    nodes = svg_nodes(out)
    assert any("(3, 4) float32" in texts for texts in nodes.values()) and "legend_output" in nodes
    assert "layers.1: Linear(3, 2)" in svg_cluster_labels(out)
    assert "softmax(axis=1)" in (tmp_path / "blog.gv").read_text()


@needs_dot
def test_cli_graph_marks_the_published_codes_disagreeing_gradients(tmp_path: Path, capsys) -> None:
    out = tmp_path / "published.svg"
    assert main(["graph", "--layers", "5,4,3,2", "--code", "published", "--out", str(out)]) == 0
    assert "disagree for layers.0.weight, layers.0.bias, layers.1.weight, layers.1.bias" in capsys.readouterr().out
    texts = {text for texts in svg_nodes(out).values() for text in texts}
    assert any(t.endswith("DISAGREES (missing sigmoid derivative)") for t in texts)


def test_cli_graph_without_dot_exits_2_with_the_hint(tmp_path, monkeypatch, capsys) -> None:
    hide_dot(monkeypatch, tmp_path)
    assert main(["graph", "--layers", "4,3,2", "--out", str(tmp_path / "blog.png")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "blog.gv" in err
    assert (tmp_path / "blog.gv").exists() and not (tmp_path / "blog.png").exists()
    assert main(["graph", "--layers", "4,3,2", "--out", str(tmp_path / "blog.gv")]) == 0


def test_cli_graph_names_only_files_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "blog.dot"
    assert main(["graph", "--layers", "4,3,2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"wrote {out}"  # DOT text only: no separate .gv
    assert listing(tmp_path) == ["blog.dot"]


def test_cli_graph_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["graph", "--layers", "784"])
    assert caught.value.code == 2 and "--layers" in capsys.readouterr().err
    assert main(["graph", "--layers", "4,2", "--out", str(tmp_path / "graph.txt")]) == 2
    assert ".svg" in capsys.readouterr().err


def test_cli_graph_writes_the_html_view(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "g.html"
    assert main(["graph", "--layers", "4,3,2", "--code", "published", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    data = page_data(out.read_text(encoding="utf-8"))
    assert any(n["verdict"] and not n["verdict"]["agrees"] for n in data["nodes"])
    assert main(["graph", "--out", str(tmp_path / "missing" / "g.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
