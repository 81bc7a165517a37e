"""One epoch of the blog's network (60,000 samples, [784, 64, 32, 10], batch 200, summed cross-entropy, SGD).

    python benchmarks/bench_epoch.py [--epochs 5] [--threads 1] [--dtype float32 float64] [--data-dir DIR]
                                     [--samples 60000] [--slice 2000] [--no-blog] [--quick] [--json FILE]

Measured in one process, alternating so that machine noise hits every candidate alike, median seconds per
epoch after a warm-up epoch:
  - ours, plain user code: ``(x @ W1 + b1).sigmoid()`` ..., ``z.log_softmax(axis=-1) * y``, ``.sum()`` and a
    hand-written SGD loop (no fused op, no library optimizer);
  - ours, the library's path: ``nn.MLP`` + ``logits(x).cross_entropy(y, "sum")`` + ``optim.SGD``;
  - ours through the training module's loop (``train.train`` with the blog recipe, evaluation not timed);
  - PyTorch (when installed), the same network, initial weights, data order and update;
  - NumPy by hand: the same arithmetic written out in NumPy with hand-derived gradients (what autograd costs);
  - the GEMM floor: the epoch's eight matrix products alone, timed with NumPy;
  - the blog's per-sample loop (``blog.NN.train``), timed on ``--slice`` samples and scaled to the epoch.
Data: synthetic MNIST-shaped pixels (seeded), or the real training set with ``--data-dir``; ``--samples`` takes
the first N. ``--threads`` sets the BLAS/OpenMP thread count of both NumPy and PyTorch before they load (0: leave
it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402 - common loads no NumPy: the thread settings still apply
    alternate,
    finish,
    options_of,
    parse,
    positive_int,
    result,
    row,
    set_blas_threads,
    try_import_torch,
)

SIZES = (784, 64, 32, 10)
FULL = {"epochs": 5, "threads": 1, "dtype": ["float32", "float64"], "data_dir": None, "samples": 60000,
        "blog_slice": 2000, "blog": True}
QUICK = {"epochs": 2, "samples": 6000, "blog_slice": 400}
LABELS = {"ours (plain code)": "tinygrad_like, plain user code",
          "ours (MLP + SGD)": "tinygrad_like, nn.MLP + cross_entropy + optim.SGD",
          "ours (train loop)": "tinygrad_like, train.train's loop",
          "NumPy by hand": "the same epoch in NumPy by hand, no autograd",
          "GEMM floor": "the eight matrix products alone (the GEMM floor)"}


def candidates(dtype_name, x, y, batches, torch):
    """The timed epochs for one dtype: ours, NumPy by hand, the GEMM floor, and PyTorch when installed."""
    import numpy as np

    from tinygrad_like import Tensor, blog, nn, no_grad, optim, train

    dtype = np.dtype(dtype_name)
    mlp = nn.MLP(SIZES, seed=0, dtype=dtype)
    opt = optim.SGD(mlp.parameters(), lr=1e-3)

    def ours_public():
        for b in batches:
            opt.zero_grad()
            mlp.logits(Tensor(x[b])).cross_entropy(y[b], reduction="sum").backward()
            opt.step()

    # Plain user code: the weights as (in, out) matrices, written the way a user writes the blog's network.
    plain = [Tensor(layer.weight.data.T.copy(), requires_grad=True) for layer in mlp.layers]
    plain_b = [Tensor(layer.bias.data.copy(), requires_grad=True) for layer in mlp.layers]
    onehot = np.eye(10, dtype=dtype)[y]

    def plain_loss(xb, targets):
        h = xb
        for i, (w, bias) in enumerate(zip(plain, plain_b)):
            h = h @ w + bias
            if i < len(plain) - 1:
                h = h.sigmoid()
        return -(h.log_softmax(axis=-1) * targets).sum()

    def plain_epoch(loss_of):
        def run():
            for b in batches:
                loss = loss_of(Tensor(x[b]), Tensor(onehot[b]))
                for p in (*plain, *plain_b):
                    p.grad = None
                loss.backward()
                with no_grad():
                    for p in (*plain, *plain_b):
                        p -= 1e-3 * p.grad.data
        return run

    ours_plain = plain_epoch(plain_loss)

    loop_model = nn.MLP(SIZES, seed=0, dtype=dtype)
    recipe = blog.blog_recipe(epochs=1, dtype=dtype_name)
    stepper = train.AutogradStepper(loop_model, recipe)

    def ours_train_loop():
        train.run_epoch(stepper, recipe, x, y, None, 0, len(batches), "", progress=False)

    by_hand_w = [layer.weight.data.T.copy() for layer in mlp.layers]
    by_hand_b = [layer.bias.data.copy() for layer in mlp.layers]

    def numpy_by_hand():
        # The plain-code epoch's arithmetic written out in NumPy, gradients derived by hand: no autograd at all.
        with np.errstate(over="ignore"):  # exp(-z) overflows to inf for very negative z: sigmoid is then 0
            for b in batches:
                h, targets, acts = x[b], onehot[b], [x[b]]
                for i, (w, bias) in enumerate(zip(by_hand_w, by_hand_b)):
                    h = h @ w + bias
                    if i < len(by_hand_w) - 1:
                        h = 1 / (1 + np.exp(-h))
                        acts.append(h)
                shifted = h - h.max(axis=1, keepdims=True)
                log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                grad = np.exp(log_probs) * targets.sum(axis=1, keepdims=True) - targets
                for i in reversed(range(len(by_hand_w))):
                    grad_w, grad_b = acts[i].T @ grad, grad.sum(axis=0)
                    if i:
                        grad = (grad @ by_hand_w[i].T) * acts[i] * (1 - acts[i])
                    by_hand_w[i] -= 1e-3 * grad_w
                    by_hand_b[i] -= 1e-3 * grad_b

    w0, w1, w2 = (layer.weight.data for layer in mlp.layers)

    def gemm_floor():
        for b in batches:
            xb = x[b]
            h1 = xb @ w0.T
            h2 = h1 @ w1.T
            out = h2 @ w2.T
            out.T @ h2  # the backward products: three weight gradients, two input gradients
            g1 = out @ w2
            g1.T @ h1
            (g1 @ w1).T @ xb

    found = {"ours (plain code)": ours_plain, "ours (MLP + SGD)": ours_public,
             "ours (train loop)": ours_train_loop, "NumPy by hand": numpy_by_hand, "GEMM floor": gemm_floor}
    if torch is None:
        return found
    layers = [torch.nn.Linear(a, b) for a, b in zip(SIZES, SIZES[1:])]
    tmodel = torch.nn.Sequential(layers[0], torch.nn.Sigmoid(), layers[1], torch.nn.Sigmoid(), layers[2])
    tmodel = tmodel.to(getattr(torch, dtype_name))
    with torch.no_grad():
        for t_layer, o_layer in zip(tmodel[::2], mlp.layers):
            t_layer.weight.copy_(torch.from_numpy(o_layer.weight.data))
            t_layer.bias.copy_(torch.from_numpy(o_layer.bias.data))
    topt = torch.optim.SGD(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def pytorch():
        for b in batches:
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx[b]), ty[b], reduction="sum").backward()
            topt.step()

    found["PyTorch"] = pytorch
    return found


def blog_loop_seconds(x64, y, n_samples: int) -> float:
    """Seconds per epoch (of ``len(x64)`` samples) of the update pass of ``blog.NN.train`` (per-sample forward and
    backward, an update every 200 samples), timed on ``n_samples`` samples (best of two) and scaled."""
    import time

    import numpy as np

    from tinygrad_like import blog

    net = blog.NN(list(SIZES), seed=0)
    onehot = np.eye(10)[y[:n_samples]]

    def run() -> float:
        start = time.perf_counter()
        for n in range(n_samples):
            column = x64[n].reshape(-1, 1)
            net.forward(column)
            net.backward(column, onehot[n].reshape(-1, 1))
            if (n + 1) % 200 == 0:
                net.update(1e-3)
        return time.perf_counter() - start

    run()
    return min(run() for _ in range(2)) * len(x64) / n_samples


def measure(epochs: int = FULL["epochs"], threads: int = FULL["threads"], dtype=tuple(FULL["dtype"]),
            data_dir: str | None = None, samples: int = FULL["samples"], blog_slice: int = FULL["blog_slice"],
            blog: bool = True) -> dict:
    """The figures; ``threads`` only takes effect if NumPy is not imported yet (as when run as a script)."""
    set_blas_threads(threads)
    import numpy as np

    from tinygrad_like import data, train

    torch = try_import_torch()
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)
    if data_dir:
        (images, labels), _ = data.load_mnist(data_dir, download=False)
        source = f"MNIST-format files in {data_dir}"
    else:
        rng = np.random.default_rng(0)
        images, labels = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)
        source = "synthetic MNIST-shaped pixels"
    x64, y = train.prepare(images[:samples], labels[:samples], dtype=np.float64)
    batches = [slice(i, i + 200) for i in range(0, len(x64), 200)]
    rows, figures = [], []
    for dtype_name in dtype:
        times = alternate(candidates(dtype_name, x64.astype(dtype_name), y, batches, torch), epochs)
        reference = times.pop("PyTorch", None)
        for name, seconds in times.items():
            rows.append(row(f"{dtype_name}: {LABELS[name]}", "s/epoch", seconds, reference))
        floor = times["GEMM floor"]
        figures += [
            {"what": f"{dtype_name}: plain user code / GEMM floor", "value": times["ours (plain code)"] / floor,
             "unit": "x"},
            {"what": f"{dtype_name}: nn.MLP + SGD / GEMM floor", "value": times["ours (MLP + SGD)"] / floor,
             "unit": "x"},
            {"what": f"{dtype_name}: plain user code / NumPy by hand (what autograd costs)",
             "value": times["ours (plain code)"] / times["NumPy by hand"], "unit": "x"},
        ]
        if reference:
            figures.append({"what": f"{dtype_name}: PyTorch / GEMM floor", "value": reference / floor, "unit": "x"})
        if blog and dtype_name == dtype[0]:
            part = min(blog_slice, len(x64))
            blog_seconds = blog_loop_seconds(x64, y, part)
            figures += [
                {"what": f"the blog's per-sample loop (float64, timed on {part:,} samples, scaled)",
                 "value": blog_seconds, "unit": "s/epoch"},
                {"what": f"{dtype_name}: nn.MLP + SGD, speed-up over the blog's loop",
                 "value": blog_seconds / times["ours (MLP + SGD)"], "unit": "x"},
            ]
    return result("One epoch of the blog network",
                  f"{list(SIZES)}, {len(x64):,} samples ({source}), batch 200, summed cross-entropy, SGD lr 0.001; "
                  f"BLAS threads: {threads or 'as configured'}; median of {epochs} epochs after a warm-up, "
                  "candidates in turns", rows=rows, figures=figures)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=positive_int, help=f"timed epochs of each candidate after one warm-up "
                                                       f"(default {FULL['epochs']})")
    p.add_argument("--threads", type=int, help="BLAS threads for NumPy and PyTorch; 0 = as configured (default 1)")
    p.add_argument("--dtype", nargs="+", choices=["float32", "float64"], help="default: float32 float64")
    p.add_argument("--data-dir", help="MNIST-format IDX files to time on instead of synthetic pixels")
    p.add_argument("--samples", type=positive_int, help=f"samples per epoch (default {FULL['samples']:,})")
    p.add_argument("--slice", dest="blog_slice", type=positive_int,
                   help=f"samples the blog's per-sample loop is timed on (default {FULL['blog_slice']:,})")
    p.add_argument("--no-blog", dest="blog", action="store_const", const=False, help="skip the (slow) per-sample loop")
    args = parse(p, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
