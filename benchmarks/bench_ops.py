"""Per-op overhead: a 1,000-op chain of elementwise ops on (4, 4) float32 tensors, forward + backward.

    python benchmarks/bench_ops.py [--ops 1000] [--repeats 30] [--quick] [--json FILE]

Microseconds per op for tinygrad_like and, when PyTorch is installed, for PyTorch measured in the same run
(alternating), with the ratio ours / PyTorch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, finish, options_of, parse, positive_int, result, row, try_import_torch  # noqa: E402

from tinygrad_like import Tensor  # noqa: E402

FULL = {"ops": 1000, "repeats": 30}
QUICK = {"ops": 200, "repeats": 5}


def chain(x, c, d, n_ops: int):
    """n_ops elementwise ops: (y * c + d).tanh().sigmoid() repeated; four ops per round."""
    y = x
    for _ in range(n_ops // 4):
        y = (y * c + d).tanh().sigmoid()
    return y


def measure(ops: int = FULL["ops"], repeats: int = FULL["repeats"]) -> dict:
    rng = np.random.default_rng(0)
    x0, c0, d0 = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))
    upstream = rng.standard_normal((4, 4)).astype(np.float32)

    def ours():
        x = Tensor(x0, requires_grad=True)
        chain(x, Tensor(c0), Tensor(d0), ops).backward(upstream)

    candidates = {"tinygrad_like": ours}
    torch = try_import_torch()
    if torch is not None:
        tx0, tc, td, tup = (torch.from_numpy(a) for a in (x0, c0, d0, upstream))

        def theirs():
            x = tx0.clone().requires_grad_(True)
            chain(x, tc, td, ops).backward(tup)

        candidates["pytorch"] = theirs

    times = alternate(candidates, repeats)
    per_op = {name: seconds / ops * 1e6 for name, seconds in times.items()}
    return result("Per-op overhead",
                  f"a {ops:,}-op chain of elementwise ops on (4, 4) float32 tensors, forward + backward; median of "
                  f"{repeats} runs, the two libraries in turns",
                  rows=[row("time per op", "us", per_op["tinygrad_like"], per_op.get("pytorch"))])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=positive_int, help=f"ops in the chain (default {FULL['ops']})")
    parser.add_argument("--repeats", type=positive_int, help=f"timed runs (default {FULL['repeats']})")
    args = parse(parser, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
