"""Per-op overhead: a 1,000-op chain of elementwise ops on (4, 4) float32 tensors, forward + backward.

    python benchmarks/bench_ops.py [--ops 1000] [--repeats 30]

Prints microseconds per op for tinygrad_like and, when
PyTorch is installed, for PyTorch measured in the same run (alternating), with the ratio ours / PyTorch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, positive_int, try_import_torch  # noqa: E402

from tinygrad_like import Tensor  # noqa: E402


def chain(x, c, d, n_ops: int):
    """n_ops elementwise ops: (y * c + d).tanh().sigmoid() repeated; four ops per round."""
    y = x
    for _ in range(n_ops // 4):
        y = (y * c + d).tanh().sigmoid()
    return y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=positive_int, default=1000)
    parser.add_argument("--repeats", type=positive_int, default=30)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x0, c0, d0 = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))
    upstream = rng.standard_normal((4, 4)).astype(np.float32)

    def ours():
        x = Tensor(x0, requires_grad=True)
        chain(x, Tensor(c0), Tensor(d0), args.ops).backward(upstream)

    candidates = {"tinygrad_like": ours}
    torch = try_import_torch()
    if torch is not None:
        tx0, tc, td, tup = (torch.from_numpy(a) for a in (x0, c0, d0, upstream))

        def theirs():
            x = tx0.clone().requires_grad_(True)
            chain(x, tc, td, args.ops).backward(tup)

        candidates["pytorch"] = theirs

    times = alternate(candidates, args.repeats)
    print(f"per-op overhead: {args.ops}-op chain of elementwise ops on (4, 4) float32, forward + backward, "
          f"median of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:<14} {seconds / args.ops * 1e6:7.2f} us/op")
    if "pytorch" in times:
        print(f"  ratio tinygrad_like / pytorch: {times['tinygrad_like'] / times['pytorch']:.2f}x")
    else:
        print("  (PyTorch not installed: no reference measured)")


if __name__ == "__main__":
    main()
