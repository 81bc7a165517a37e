"""The performance page is written by benchmarks/page.py from benchmark JSON, never by hand."""

import json

from helpers import ROOT, run_python

RESULTS = {
    "command": "python benchmarks/run.py --quick --json r.json --page p.md",
    "quick": True,
    "date": "2031-01-02 03:04 UTC",
    "machine": {"cores": 3, "cpu": "Test CPU", "system": "Linux x86_64", "python": "3.12.1", "numpy": "2.0.1",
                "blas": None, "torch": "2.13.0", "tinygrad_like": "0.1.0"},
    "benchmarks": {
        "ops": {"title": "Per-op overhead", "setup": "a 200-op chain",
                "command": "python benchmarks/bench_ops.py --quick",
                "rows": [{"what": "time per op", "unit": "us", "value": 4.5, "pytorch": 6.0}], "figures": []},
        "epoch": {"title": "One epoch", "setup": "synthetic pixels", "command": "python benchmarks/bench_epoch.py",
                  "rows": [{"what": "float32: plain user code", "unit": "s/epoch", "value": 0.25, "pytorch": None}],
                  "figures": [{"what": "plain user code / GEMM floor", "value": 1.875, "unit": "x"}]},
        "html": {"title": "The HTML view", "setup": "a 300-node graph", "command": "python benchmarks/bench_html.py",
                 "rows": [], "figures": [{"what": "file size", "value": 1.2345, "unit": "MB"}],
                 "skipped": "the playwright package is not installed"},
        "chain": {"command": "python benchmarks/bench_chain.py --quick", "error": "MemoryError"},
    },
}


def write_page(results, page):
    run = run_python(str(ROOT / "benchmarks" / "page.py"), str(results), str(page))
    assert run.returncode == 0, run.stderr


def test_the_page_is_generated_from_the_json(tmp_path):
    results, page = tmp_path / "results.json", tmp_path / "performance.md"
    results.write_text(json.dumps(RESULTS))
    write_page(results, page)
    text = page.read_text()
    assert text.startswith("# Performance\n") and "do not edit by hand" in text
    assert "**This run**: 2031-01-02 03:04 UTC, on 3 cores (Test CPU), Linux x86_64, Python 3.12.1, NumPy 2.0.1, " \
           "PyTorch 2.13.0" in text
    assert f"Command: `{RESULTS['command']}`." in text and "quick run (`--quick`)" in text
    # one section per benchmark, in the JSON's order, with its own command
    order = [text.index(f"## {title}") for title in ("Per-op overhead", "One epoch", "The HTML view", "chain")]
    assert order == sorted(order)
    assert "`python benchmarks/bench_ops.py --quick`: a 200-op chain." in text
    # the ratio is computed from the two figures of the same run; PyTorch missing shows as such
    assert "| time per op | 4.50 us | 6.00 us | 0.75x |" in text
    assert "| float32: plain user code | 0.250 s/epoch | not installed | - |" in text
    assert "| plain user code / GEMM floor | 1.88x |" in text
    assert "| file size | 1.23 MB |" in text and "Partly measured: the playwright package is not installed." in text
    assert "`python benchmarks/bench_chain.py --quick` failed in this run: MemoryError" in text
    assert "jit" not in text


def test_a_full_run_says_nothing_of_quick(tmp_path):
    results, page = tmp_path / "results.json", tmp_path / "performance.md"
    results.write_text(json.dumps({**RESULTS, "quick": False, "benchmarks": {}}))
    write_page(results, page)
    text = page.read_text()
    assert "quick run" not in text and "No benchmark ran." in text


def test_the_committed_page_is_the_generators_output(tmp_path):
    """docs/performance.md is exactly what page.py makes of the committed benchmarks/results.json."""
    page = tmp_path / "performance.md"
    write_page(ROOT / "benchmarks" / "results.json", page)
    assert (ROOT / "docs" / "performance.md").read_text() == page.read_text()
