"""Helpers shared by the benchmark scripts: timing medians, optional PyTorch, thread settings, and the one shape
of their results.

Every script exposes ``measure(**options) -> dict``, returning its figures as:

    {"title": "Per-op overhead",
     "setup": "what was measured, on what sizes, how many repeats",
     "rows": [{"what": "...", "unit": "us", "value": 5.4, "pytorch": 6.1}],   # ours, and PyTorch in the same run
     "figures": [{"what": "...", "value": 1.03, "unit": "x"}],              # figures without PyTorch
     "skipped": "why nothing was measured"}                                 # only when so

``pytorch`` is None when PyTorch is not installed. Run alone, a script prints that dict as text and, with
``--json FILE``, writes it; ``--quick`` takes small sizes. ``benchmarks/run.py`` runs them all.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (repeats, steps), refused with a usage message otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse(parser: argparse.ArgumentParser, full: dict[str, Any], quick: dict[str, Any],
          argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the script's options, adding ``--quick`` and ``--json``; an option left unset (``None``) takes its
    value from ``quick`` with ``--quick``, else from ``full``."""
    flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    sizes = ", ".join(f"{flags.get(name, name)} {value}" for name, value in quick.items())
    parser.add_argument("--quick", action="store_true", help=f"small sizes, a few seconds: {sizes}")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    for name, value in ({**full, **quick} if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def options_of(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The options ``measure`` takes, from the parsed arguments."""
    return {name: getattr(args, name) for name in names}


def row(what: str, unit: str, value: float, pytorch: float | None) -> dict[str, Any]:
    """One measured quantity, and PyTorch's in the same run (None: PyTorch not installed)."""
    return {"what": what, "unit": unit, "value": value, "pytorch": pytorch}


def figure(what: str, value: Any, unit: str = "") -> dict[str, Any]:
    """A figure without a PyTorch counterpart (a ratio between our own candidates, a size, an agreement)."""
    return {"what": what, "value": value, "unit": unit}


def result(title: str, setup: str, rows: list[dict] | None = None, figures: list[dict] | None = None,
           skipped: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"title": title, "setup": setup, "rows": rows or [], "figures": figures or []}
    if skipped:
        found["skipped"] = skipped
    return found


def number(value: Any) -> str:
    """A figure as text: three significant digits, thousands separated."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        digits = max(0, 2 - int(f"{abs(value):e}".split("e")[1])) if value else 0
        return f"{value:,.{digits}f}"
    return f"{value:.2e}"


def with_unit(value: Any, unit: str) -> str:
    return number(value) + ("" if not unit else unit if unit == "x" else f" {unit}")


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "-"


def report(found: dict[str, Any]) -> str:
    """The result as text, for a script run alone."""
    lines = [f"{found['title']}: {found['setup']}"]
    if found.get("skipped"):
        lines.append(f"  not measured: {found['skipped']}")
    for r in found["rows"]:
        theirs = ("PyTorch not installed" if r["pytorch"] is None
                  else f"PyTorch {with_unit(r['pytorch'], r['unit'])}, ratio {ratio(r['value'], r['pytorch'])}")
        lines.append(f"  {r['what']}: {with_unit(r['value'], r['unit'])}; {theirs}")
    for f in found["figures"]:
        lines.append(f"  {f['what']}: {with_unit(f['value'], f['unit'])}")
    return "\n".join(lines)


def finish(found: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the result; write it as JSON with ``--json``."""
    print(report(found))
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=2) + "\n")


def set_blas_threads(threads: int) -> None:
    """BLAS/OpenMP threads for NumPy and PyTorch: only effective before NumPy is imported (0 leaves them)."""
    if threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternate(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median time of each candidate, run in turns (ours, theirs, ours, ...) so machine noise hits both alike."""
    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def try_import_torch():
    """PyTorch if installed (single-threaded, as our NumPy ops on small tensors are), else None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
    return torch
