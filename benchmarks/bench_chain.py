"""A 1,000,000-op chain: forward + backward seconds and peak memory, ours and PyTorch's.

    python benchmarks/bench_chain.py [--ops 1000000] [--repeats 1] [--quick] [--json FILE]

Each measurement runs in a fresh process; peak memory is the process's peak RSS minus its RSS just before
the chain was built. The best of ``--repeats`` runs of each framework (PyTorch when installed), in turns.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import finish, options_of, parse, positive_int, result, row  # noqa: E402

FULL = {"ops": 1_000_000, "repeats": 1}
QUICK = {"ops": 50_000, "repeats": 1}


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, which starts afresh with the process's image (getrusage's ru_maxrss does
    not: it keeps the parent's peak across fork and exec, so a child of a big process seemed to use its memory)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_one(framework: str, n_ops: int) -> dict:
    """Build the chain, run backward, report seconds and memory (called in a child process)."""
    from bench_ops import chain

    rng = np.random.default_rng(0)
    x0, c0, d0 = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))
    if framework == "pytorch":
        from common import try_import_torch

        torch = try_import_torch()
        x, c, d = torch.from_numpy(x0).requires_grad_(True), torch.from_numpy(c0), torch.from_numpy(d0)
        upstream = torch.ones(4, 4)
    else:
        from tinygrad_like import Tensor

        x, c, d = Tensor(x0, requires_grad=True), Tensor(c0), Tensor(d0)
        upstream = np.ones((4, 4), np.float32)
    base = current_rss_mb()
    start = time.perf_counter()
    y = chain(x, c, d, n_ops)
    built = time.perf_counter()
    y.backward(upstream)
    done = time.perf_counter()
    finite = bool(np.isfinite(np.asarray(x.grad.detach() if framework == "pytorch" else x.grad.data)).all())
    return {"forward_s": built - start, "backward_s": done - built, "total_s": done - start,
            "peak_mb": peak_rss_mb() - base, "grad_finite": finite}


def run_child(framework: str, n_ops: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", framework, "--ops", str(n_ops)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def measure(ops: int = FULL["ops"], repeats: int = FULL["repeats"]) -> dict:
    try:
        import torch  # noqa: F401

        frameworks = ["tinygrad_like", "pytorch"]
    except ImportError:
        frameworks = ["tinygrad_like"]
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    for _ in range(repeats):
        for f in frameworks:  # alternating, so machine noise hits both alike
            runs[f].append(run_child(f, ops))
    best = {f: min(rs, key=lambda r: r["total_s"]) for f, rs in runs.items()}
    ours, theirs = best["tinygrad_like"], best.get("pytorch")

    def pick(key: str, scale: float = 1.0):
        return ours[key] * scale, (theirs[key] * scale if theirs else None)

    return result("A long chain",
                  f"a {ops:,}-op chain of elementwise ops on (4, 4) float32, forward then backward, each framework "
                  f"in a fresh process; best of {repeats}",
                  rows=[row("forward", "s", *pick("forward_s")), row("backward", "s", *pick("backward_s")),
                        row("forward + backward", "s", *pick("total_s")),
                        row("peak memory", "MB", *pick("peak_mb"))],
                  figures=[{"what": "gradient finite", "value": ours["grad_finite"], "unit": ""}])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=positive_int, help=f"ops in the chain (default {FULL['ops']:,})")
    parser.add_argument("--repeats", type=positive_int, help=f"runs of each framework (default {FULL['repeats']})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parse(parser, FULL, QUICK, argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.ops)))
        return
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
