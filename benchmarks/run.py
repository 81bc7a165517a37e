"""Run the benchmarks and collect their figures as JSON; optionally write the performance page from them.

    python benchmarks/run.py [--only NAME ...] [--quick] [--json FILE] [--page docs/performance.md]

NAME is a script's name without ``bench_`` and ``.py`` (learners, ops, chain, conv, epoch, hvp, hardening, html,
blog_speed); all of them by default. Each benchmark runs in its own process (``python benchmarks/bench_NAME.py
[--quick] --json TEMP``), so its thread settings apply before NumPy loads and one failure does not stop the
others: a benchmark that fails is recorded with its error. ``--quick`` gives every script its small sizes (a
minute or two in all). ``--json`` writes the collected results (with the machine, the date and this command);
``--page`` writes the performance page from them (see page.py).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ("learners", "ops", "chain", "conv", "epoch", "hvp", "hardening", "html", "blog_speed")  # the page's order


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the figures were measured on."""
    import numpy as np

    try:
        found = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{found['name']} {found.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: no dict form
        blas = None
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas, "torch": version("torch"),
            "tinygrad_like": version("tinygrad_like")}


def run_one(name: str, quick: bool, timeout: float) -> dict:
    """Run ``bench_NAME.py`` in its own process; its result, with the command, the wall time and any error."""
    script = HERE / f"bench_{name}.py"
    shown = [f"python benchmarks/{script.name}"] + (["--quick"] if quick else [])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(script), *(["--quick"] if quick else []), "--json", str(out)]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            found = {"error": f"did not finish within {timeout:g} s"}
        else:
            sys.stdout.write(done.stdout)
            if done.returncode == 0 and out.exists():
                found = json.loads(out.read_text())
            else:
                found = {"error": (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]}
        found.update(command=" ".join(shown), seconds=round(time.perf_counter() - start, 1))
    if "error" in found:
        print(f"{name}: FAILED: {found['error']}", file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                        help=f"run this benchmark (repeatable; default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--json", metavar="FILE", help="write the results to FILE")
    parser.add_argument("--page", metavar="MD", help="write the performance page (Markdown) from the results")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per benchmark (default 3600)")
    args = parser.parse_args(argv)

    names = [name for name in BENCHMARKS if name in (args.only or BENCHMARKS)]
    shown = ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
    results = {"command": shlex.join(shown), "quick": args.quick,
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine(), "benchmarks": {}}
    for name in names:
        print(f"== {name}", flush=True)
        results["benchmarks"][name] = run_one(name, args.quick, args.timeout)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.page:
        sys.path.insert(0, str(HERE))
        from page import write_page

        write_page(results, args.page)
        print(f"wrote {args.page}")
    return 1 if any("error" in found for found in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
