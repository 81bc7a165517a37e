"""A 1,000,000-op chain: forward + backward seconds and peak memory, ours and PyTorch's.

    python benchmarks/bench_chain.py [--ops 1000000] [--repeats 1]

Each measurement runs in a fresh process; peak memory is the process's peak RSS minus its RSS just before
the chain was built. Prints both frameworks (PyTorch when installed) and the ratios.
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


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_one(framework: str, n_ops: int) -> dict:
    """Build the chain, run backward, report seconds and memory (called in a child process)."""
    sys.path.insert(0, str(HERE))
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


def measure(framework: str, n_ops: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", framework, "--ops", str(n_ops)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.ops)))
        return

    try:
        import torch  # noqa: F401

        frameworks = ["tinygrad_like", "pytorch"]
    except ImportError:
        frameworks = ["tinygrad_like"]
    results: dict[str, list[dict]] = {f: [] for f in frameworks}
    for _ in range(args.repeats):
        for f in frameworks:  # alternating, so machine noise hits both alike
            results[f].append(measure(f, args.ops))
    print(f"{args.ops:,}-op chain of elementwise ops on (4, 4) float32 (best of {args.repeats}):")
    best = {f: min(rs, key=lambda r: r["total_s"]) for f, rs in results.items()}
    for f, r in best.items():
        print(f"  {f:<14} forward {r['forward_s']:6.2f} s  backward {r['backward_s']:6.2f} s  "
              f"total {r['total_s']:6.2f} s  peak memory {r['peak_mb']:7.0f} MB  grad finite: {r['grad_finite']}")
    if "pytorch" in best:
        ours, theirs = best["tinygrad_like"], best["pytorch"]
        print(f"  ratio tinygrad_like / pytorch: time {ours['total_s'] / theirs['total_s']:.2f}x, "
              f"memory {ours['peak_mb'] / theirs['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
