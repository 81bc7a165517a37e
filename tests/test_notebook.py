"""examples/blog.ipynb: stored without outputs, and it runs top to bottom (a real kernel, real data)."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent.parent / "examples" / "blog.ipynb"


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
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # it leaves no files behind
