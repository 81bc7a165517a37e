"""Hessian-vector product of the blog network's loss: [784, 64, 32, 10] sigmoid MLP, softmax + summed
cross-entropy (the fused ``cross_entropy(..., reduction="sum")``), batch 200, float64, with respect to all six
parameters, along a random direction.

    python benchmarks/bench_hvp.py [--repeats 20]

Candidates, alternating in one process (median milliseconds per product, one thread each: PyTorch's is set to 1
and NumPy's BLAS gets OPENBLAS_NUM_THREADS=1 unless already set):
  - ours: ``autograd.hvp(loss, params, v)`` (the gradient of grad(loss) . v: two backward passes);
  - PyTorch, the same algorithm: ``torch.autograd.grad`` with ``create_graph=True``, then the gradient of the dot
    product with v;
  - PyTorch's ``torch.autograd.functional.hvp`` (its double-backward trick: three backward passes).
Prints the agreement with PyTorch (max abs difference over all entries, relative to the largest entry) and the
ratios ours / PyTorch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, positive_int, try_import_torch  # noqa: E402

from tinygrad_like import Tensor, autograd, nn  # noqa: E402

SIZES = (784, 64, 32, 10)
BATCH = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=20)
    args = parser.parse_args()

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

    candidates = {"ours (autograd.hvp)": ours}
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

        candidates["PyTorch (grad of grad . v)"] = torch_double_backward
        candidates["PyTorch (functional.hvp)"] = torch_functional_hvp

    print(f"Hessian-vector product of the loss of an MLP {list(SIZES)} (sigmoid, softmax + summed cross-entropy), "
          f"batch {BATCH}, float64, all {sum(p.size for p in params):,} parameters; one thread each; median of "
          f"{args.repeats}, candidates in turns")
    if torch is not None:
        mine = [h.data for h in ours()]
        for name in ("PyTorch (grad of grad . v)", "PyTorch (functional.hvp)"):
            theirs = [h.detach().numpy() for h in candidates[name]()]
            scale = max(np.abs(t).max() for t in theirs)
            diff = max(np.abs(m - t).max() for m, t in zip(mine, theirs))
            print(f"  agreement with {name}: max abs difference {diff:.2e}, relative to the largest entry "
                  f"{diff / scale:.2e}")
    times = alternate(candidates, args.repeats)
    for name, seconds in times.items():
        print(f"  {name:<28} {seconds * 1e3:8.2f} ms")
    for name in ("PyTorch (grad of grad . v)", "PyTorch (functional.hvp)"):
        if name in times:
            print(f"  ours / {name}: {times['ours (autograd.hvp)'] / times[name]:.2f}x")


if __name__ == "__main__":
    main()
