"""Write the performance page (Markdown) from the JSON of a benchmark run (``run.py --json``).

    python benchmarks/page.py results.json docs/performance.md

or in one go: ``python benchmarks/run.py --quick --json benchmarks/results.json --page docs/performance.md``.
The page holds only what the JSON holds (figures, machine, date, command) and fixed prose without figures:
it is never edited by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ratio, with_unit  # noqa: E402

INTRO = """\
Each benchmark measures PyTorch (its CPU build, when installed) in the same run as ours, in turns, because timings
on a shared machine drift by tens of percent from one minute to the next: compare the ratios, not the seconds,
across runs. A ratio is tinygrad_like's figure divided by PyTorch's: below 1x, ours takes less time (or memory)."""

ABOUT = {
    "epoch": """\
The candidates: *plain user code* is the blog's network written as a user would (`(x @ W1 + b1).sigmoid()`, ...,
`log_softmax * y`, `.sum()`, a hand-written SGD loop); *nn.MLP + cross_entropy + optim.SGD* is the library's
path; *train.train's loop* the training module's; *NumPy by hand* the same arithmetic written out in NumPy with
hand-derived gradients (what autograd itself costs is the difference); the *GEMM floor* is the epoch's eight
matrix products alone. `--threads N` sets NumPy's and PyTorch's BLAS threads, `--data-dir` times real files.
A profile of our epoch shows the matrix products as its largest part, and the rest spread thin (the bias sums,
the sigmoids' `exp`, the update, Python per op); with two BLAS threads the products shrink and the rest does
not.""",
    "learners": """\
Each workload is written once and run on both libraries (the same names), PyTorch's initial weights copied into
ours, dropout 0; a step is zero_grad, forward, loss, backward and the optimizer's step on one fixed batch, and the
script stops if the first step's losses disagree. Peak memory: each library in a fresh process, one step taken,
freed memory handed back (`gc.collect`, `malloc_trim`), the peak resident set reset (`/proc/self/clear_refs`);
the figure is how far the peak rose during a second step, the same yardstick for both (tracemalloc's peak for ours
as a check). The LSTM and GPT steps are many small ops (a 50-step recurrence; 4 layers of 4 separate heads), where
the time per op in Python, not arithmetic, sets the pace.""",
    "chain": """\
Python's garbage collector scans the growing graph during a long forward pass. For one huge graph,
`gc.disable()` (or `gc.freeze()`) around the forward is the user's call to make; the backward already pauses the
collector.""",
    "blog_speed": """\
The blog's code loops over samples one at a time; the library sends each batch of 200 through the graph at once.
Both compute the same update (the gradient of the summed loss is the sum of the per-sample gradients).""",
}

FAST = """\
## What keeps it fast

In the engine rather than in special cases: one fused rule where it pays (`linear` for `x @ W.T + b`, with the
bias added in place; `cross_entropy`, whose backward is `softmax - target`); `nn.Linear`'s (out, in) weight held
column-major, so `W.T` is the row-major matrix BLAS multiplies fastest and the weight's gradient comes in the
weight's layout (state_dict, files and export still see PyTorch's (out, in) shape); float32 kept float32
everywhere; leaf gradients handed over without a copy when nothing else holds them; a backward walk that orders
and runs in one pass (a max-heap on creation order, a node pushed when its first gradient arrives, no recursion)
and releases saved arrays as it goes; gradients the walk allocates added into in place, a slice's gradient added
into its source's buffer (so backpropagation through T time steps sliced from one array is O(T), not O(T^2));
`linear` on a stack of rows as one matrix product; erf (for GELU) a vectorised polynomial, not a loop per
element; the softmax family's max over many short rows taken column by column;
NumPy's error state switched by C callables. The blog's unfused graph is still what `blog.blog_loss`,
`blog.compare_gradients` and `blog.blog_graph` use."""


def machine_line(m: dict[str, Any]) -> str:
    parts = [f"{m.get('cores')} cores ({m.get('cpu')})", m.get("system")]
    parts.append(f"Python {m.get('python')}")
    parts.append(f"NumPy {m.get('numpy')}" + (f" ({m['blas']})" if m.get("blas") else ""))
    parts.append(f"PyTorch {m['torch']}" if m.get("torch") else "PyTorch not installed")
    if m.get("tinygrad_like"):
        parts.append(f"tinygrad_like {m['tinygrad_like']}")
    return ", ".join(str(p) for p in parts if p)


def section(name: str, found: dict[str, Any]) -> list[str]:
    title = found.get("title", name)
    lines = [f"## {title}", ""]
    command = found.get("command", f"python benchmarks/bench_{name}.py")
    if "error" in found:
        return lines + [f"`{command}` failed in this run: {found['error']}", ""]
    lines += [f"`{command}`: {found['setup']}.", ""]
    if found.get("skipped"):
        lines += [f"Partly measured: {found['skipped']}.", ""]
    if found.get("rows"):
        lines += ["| what | tinygrad_like | PyTorch, same run | ratio |", "| --- | ---: | ---: | ---: |"]
        for r in found["rows"]:
            theirs = "not installed" if r["pytorch"] is None else with_unit(r["pytorch"], r["unit"])
            lines.append(f"| {r['what']} | {with_unit(r['value'], r['unit'])} | {theirs} | "
                         f"{ratio(r['value'], r['pytorch'])} |")
        lines.append("")
    if found.get("figures"):
        lines += ["| figure | value |", "| --- | ---: |"]
        lines += [f"| {f['what']} | {with_unit(f['value'], f['unit'])} |" for f in found["figures"]]
        lines.append("")
    if name in ABOUT:
        lines += [ABOUT[name], ""]
    return lines


def render(results: dict[str, Any]) -> str:
    """The page, from the results ``run.py`` collects."""
    command = results.get("command", "python benchmarks/run.py")
    lines = [
        "# Performance",
        "",
        "<!-- Written by benchmarks/page.py from the JSON of a benchmark run; do not edit by hand. -->",
        "",
        INTRO,
        "",
        f"**This run**: {results.get('date', 'date unknown')}, on {machine_line(results.get('machine', {}))}.",
        f"Command: `{command}`.",
    ]
    if results.get("quick"):
        lines.append("This was a quick run (`--quick`): small sizes and few repeats, so the figures are rough; a "
                     "run without `--quick` takes longer and measures the full sizes.")
    lines += [
        "",
        "To measure on your machine (each script also runs alone, with `--help` for its options):",
        "",
        "```bash",
        "python benchmarks/run.py --json results.json --page performance.md   # all benchmarks, full sizes",
        "python benchmarks/run.py --quick --only epoch --only ops                # some, small sizes",
        "```",
        "",
    ]
    benchmarks = results.get("benchmarks", {})
    if not benchmarks:
        lines += ["No benchmark ran.", ""]
    for name, found in benchmarks.items():
        lines += section(name, found)
    lines += [FAST, ""]
    return "\n".join(lines)


def write_page(results: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render(results))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the JSON written by run.py --json")
    parser.add_argument("page", help="the Markdown page to write")
    args = parser.parse_args(argv)
    write_page(json.loads(Path(args.results).read_text()), args.page)
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
