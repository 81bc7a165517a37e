"""The README's examples run as they are written (each section's Python blocks, in a scratch directory)."""

import builtins
import re
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()


def blocks(section: str) -> list[str]:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


@pytest.mark.parametrize("section", ["Quickstart", "Defining networks", "Write your own op", "Higher-order gradients"])
def test_the_sections_examples_run(section, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}  # a section's blocks build on each other, as in a reader's session
    for code in blocks(section):
        shown = re.search(r"^# (\w+Error): ", code, re.M)  # a block that ends by showing an error raises it
        if shown:
            with pytest.raises(getattr(builtins, shown.group(1))):
                exec(compile(code, f"README.md: {section}", "exec"), scope)  # noqa: S102
        else:
            exec(compile(code, f"README.md: {section}", "exec"), scope)  # noqa: S102 - our own documentation
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_export_example_runs_and_onnx_runtime_agrees(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    (code,) = blocks("Taking your network to PyTorch or ONNX Runtime")
    exec(compile(code, "README.md: export", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert "nn.Conv2d(1, 8, kernel_size=(3, 3)" in printed and float(printed.strip().splitlines()[-1]) < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.safetensors"]
