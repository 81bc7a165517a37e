"""Hessian-vector product of the blog network's loss: [784, 64, 32, 10] sigmoid MLP, softmax + summed
cross-entropy (the fused ``cross_entropy(..., reduction="sum")``), batch 200, float64, with respect to all six
parameters, along a random direction.

    python benchmarks/bench_hvp.py [--repeats 20] [--quick] [--json FILE]

Candidates, alternating in one process (median milliseconds per product, one thread each: PyTorch's is set to 1
and NumPy's BLAS gets OPENBLAS_NUM_THREADS=1 unless already set):
  - ours: ``autograd.hvp(loss, params, v)`` (the gradient of grad(loss) . v: two backward passes);
  - PyTorch, the same algorithm: ``torch.autograd.grad`` with ``create_graph=True``, then the gradient of the dot
    product with v;
  - PyTorch's ``torch.autograd.functional.hvp`` (its double-backward trick: three backward passes).
Also the agreement with PyTorch (max abs difference over all entries, relative to the largest entry).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    alternate,
    figure,
    finish,
    options_of,
    parse,
    positive_int,
    result,
    row,
    try_import_torch,
)

from tinygrad_like import Tensor, autograd, nn  # noqa: E402

SIZES = (784, 64, 32, 10)
BATCH = 200
FULL = {"repeats": 20}
QUICK = {"repeats": 3}


def measure(repeats: int = FULL["repeats"]) -> dict:
    rng = np.random.default_rng(0)
    mlp = nn.MLP(SIZES, seed=0, dtype=np.float64)
    params = [p.data.copy() for layer in mlp.layers for p in (layer.weight, layer.bias)]
    vs = [rng.standard_normal(p.shape) for p in params]
    x, labels = rng.random((BATCH, SIZES[0])), rng.integers(0, SIZES[-1], BATCH)

    def loss(*p: Tensor) -> Tensor:
        h = Tensor(x)
        for i in range(0, len(p), 2):
            h = nn.functional.linear(h, p[i], p[i + 1])
            h = h.sigmoid() if i < len(p) - 2 else h
        return h.cross_entropy(labels, reduction="sum")

    def ours():
        return autograd.hvp(loss, tuple(Tensor(p) for p in params), tuple(vs))[1]

    candidates = {"ours": ours}
    torch = try_import_torch()
    if torch is not None:
        tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        tvs, tx, ty = [torch.from_numpy(v) for v in vs], torch.from_numpy(x), torch.from_numpy(labels)

        def torch_loss(*p):
            h = tx
            for i in range(0, len(p), 2):
                h = torch.nn.functional.linear(h, p[i], p[i + 1])
                h = torch.sigmoid(h) if i < len(p) - 2 else h
            return torch.nn.functional.cross_entropy(h, ty, reduction="sum")

        def torch_double_backward():
            first = torch.autograd.grad(torch_loss(*tparams), tparams, create_graph=True)
            return torch.autograd.grad(sum((g * v).sum() for g, v in zip(first, tvs)), tparams)

        def torch_functional_hvp():
            return torch.autograd.functional.hvp(torch_loss, tuple(tparams), tuple(tvs))[1]

        candidates["grad of grad . v"] = torch_double_backward
        candidates["functional.hvp"] = torch_functional_hvp

    figures = []
    if torch is not None:
        mine = [h.data for h in ours()]
        for name in ("grad of grad . v", "functional.hvp"):
            theirs = [h.detach().numpy() for h in candidates[name]()]
            scale = max(np.abs(t).max() for t in theirs)
            diff = max(np.abs(m - t).max() for m, t in zip(mine, theirs))
            figures.append(figure(f"agreement with PyTorch's {name}: max abs difference / largest entry",
                                  diff / scale))
    times = {name: seconds * 1e3 for name, seconds in alternate(candidates, repeats).items()}
    return result("Hessian-vector product",
                  f"of the loss of an MLP {list(SIZES)} (sigmoid, softmax + summed cross-entropy), batch {BATCH}, "
                  f"float64, all {sum(p.size for p in params):,} parameters; median of {repeats} runs, candidates "
                  "in turns, one thread each",
                  rows=[row("autograd.hvp, against PyTorch's gradient of grad . v", "ms", times["ours"],
                            times.get("grad of grad . v")),
                        row("autograd.hvp, against torch.autograd.functional.hvp", "ms", times["ours"],
                            times.get("functional.hvp"))],
                  figures=figures)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, help=f"timed runs (default {FULL['repeats']})")
    args = parse(parser, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
