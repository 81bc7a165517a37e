"""conv2d forward + backward on a batch of MNIST-sized images: (64, 1, 28, 28) float32 with 8 3x3 filters and a
bias, stride 1, no padding; then the same through a 2x2 max_pool2d.

    python benchmarks/bench_conv.py [--repeats 30] [--quick] [--json FILE]

Milliseconds per forward + backward for tinygrad_like and, when PyTorch is installed, for PyTorch measured in the
same run (alternating), with the ratio ours / PyTorch. Both run on one thread: PyTorch's is set to 1 and NumPy's
BLAS is given OPENBLAS_NUM_THREADS=1 (unless already set), so neither borrows a core the other lacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, finish, options_of, parse, positive_int, result, row, try_import_torch  # noqa: E402

from tinygrad_like import Tensor  # noqa: E402

FULL = {"repeats": 30}
QUICK = {"repeats": 5}


def measure(repeats: int = FULL["repeats"]) -> dict:
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    w0 = (rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32)
    b0 = rng.standard_normal(8).astype(np.float32)
    up_conv = rng.standard_normal((64, 8, 26, 26)).astype(np.float32)
    up_pool = rng.standard_normal((64, 8, 13, 13)).astype(np.float32)

    def ours(pool: bool):
        x, w, b = (Tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = x.conv2d(w, b)
        (y.max_pool2d(2) if pool else y).backward(up_pool if pool else up_conv)

    torch = try_import_torch()
    rows = []
    for pool in (False, True):
        candidates = {"tinygrad_like": lambda pool=pool: ours(pool)}
        if torch is not None:
            tx, tw, tb = (torch.from_numpy(a) for a in (x0, w0, b0))
            t_up = torch.from_numpy(up_pool if pool else up_conv)

            def theirs(pool=pool, tx=tx, tw=tw, tb=tb, t_up=t_up):
                x, w, b = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
                y = torch.nn.functional.conv2d(x, w, b)
                (torch.nn.functional.max_pool2d(y, 2) if pool else y).backward(t_up)

            candidates["pytorch"] = theirs
        times = alternate(candidates, repeats)
        label = "conv2d" + (" + max_pool2d" if pool else "")
        rows.append(row(label, "ms", times["tinygrad_like"] * 1e3,
                        times["pytorch"] * 1e3 if "pytorch" in times else None))
    return result("conv2d and max_pool2d",
                  f"forward + backward, x (64, 1, 28, 28) float32, 8 filters 3x3 with bias, stride 1; median of "
                  f"{repeats} runs, in turns, one thread each", rows=rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, help=f"timed runs (default {FULL['repeats']})")
    args = parse(parser, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
