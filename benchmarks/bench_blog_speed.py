"""One epoch of the blog recipe: our batched autograd vs the blog's per-sample loop (``blog.NN.train``).

    python benchmarks/bench_blog_speed.py [--dataset fashion-mnist] [--slice 6000] [--repeats 3] [--threads 1]

Both run in this process, in turns (ours, the blog's, ours, ...), so machine noise hits both alike; the medians
and their ratio are printed. The per-sample loop is timed on the first ``--slice`` samples and scaled to the
full training set (its cost is linear in the number of samples: one forward and one backward per sample).
Timed: the pass over the training set that updates the weights. Not timed: the evaluations around it
(``blog.NN.train`` computes the summed loss before and after the epoch, ``train.train`` the loss and accuracy;
both are batched in either code). The wall time of the whole calls is printed too.

``--threads`` sets OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS, MKL_NUM_THREADS) before NumPy is imported; the
default 1 keeps OpenBLAS's spinning worker threads from fighting other processes on a small shared machine (the
per-sample loop's tiny products run on one core either way). ``--threads 0`` leaves the environment alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--data-dir", help="directory with the IDX files (default: the usual search)")
    p.add_argument("--slice", type=int, default=6000, help="samples the per-sample loop is timed on")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each (after one warm-up)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads; 0 = leave the environment alone")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    if args.slice < 1 or args.repeats < 1:
        p.error("--slice and --repeats must be at least 1")
    return args


def load(dataset: str, data_dir: str | None):
    """The training set as the blog feeds it (rows, pixel / 255); random pixels if the dataset is missing."""
    import numpy as np

    from tinygrad_like import data, train

    try:
        (x, y), _ = data.load_dataset(dataset, data_dir, progress=False)
        source = f"{data.TITLES[dataset]} training set"
    except data.DatasetNotFoundError:
        rng = np.random.default_rng(0)  # timing does not depend on the pixel values
        x, y = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)
        source = f"random pixels ({data.TITLES[dataset]} not found)"
    return *train.prepare(x, y), source


def alternate(candidates: dict, repeats: int) -> dict:
    """Median of what each candidate returns (its own timing), run in turns after one warm-up each; also the
    median wall time of each call, under the key "wall"."""
    import statistics

    for fn in candidates.values():
        fn()
    times: dict = {name: [] for name in candidates}
    walls: dict = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            times[name].append(fn())
            walls[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    medians["wall"] = {name: statistics.median(ws) for name, ws in walls.items()}
    return medians


def main() -> int:
    args = parse_args()
    if args.threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np

    from tinygrad_like import blog, train

    x, y, source = load(args.dataset, args.data_dir)
    x64 = x.astype(np.float64)  # the blog's code works in float64; converting is not part of its epoch
    n, part = len(x), min(args.slice, len(x))
    recipe = blog.blog_recipe(epochs=1)

    def ours(backend: str = "autograd", dtype: str = "float32"):
        chosen = blog.blog_recipe(epochs=1, dtype=dtype)
        inputs = x if dtype == "float32" else x64

        def run() -> float:
            model = train.build_model(chosen, seed=0)
            return blog.train(model, inputs, y, chosen, backend=backend, log=None, progress=False).seconds
        return run

    def blogs_loop() -> float:
        net = blog.NN(recipe.layers, corrected=False, seed=0)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its losses
            net.train(x64[:part], y[:part], epochs=1, batch_size=recipe.batch_size, lr=recipe.lr)
        trained = time.perf_counter()
        net.loss(x64[:part], y[:part])  # the two evaluations inside NN.train, timed again to subtract them
        net.loss(x64[:part], y[:part])
        return 2 * trained - start - time.perf_counter()

    print(f"One epoch of the blog recipe on {n} samples ({source}); {args.repeats} runs each, medians; "
          f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    start = time.perf_counter()
    times = alternate({"autograd": ours(), "autograd64": ours(dtype="float64"),
                       "published": ours("published", "float64"), "blog": blogs_loop}, args.repeats)
    walls = times.pop("wall")
    blog_epoch = times["blog"] * n / part
    rows = [
        ("tinygrad_like autograd, batched, float32 (train.train)", times["autograd"]),
        ("tinygrad_like autograd, batched, float64", times["autograd64"]),
        ("blog's backward batched, float64 (--backend published)", times["published"]),
        (f"blog's per-sample loop, float64 (blog.NN.train): {part} samples x {n / part:g}", blog_epoch),
    ]
    print(f"  {'training pass of one epoch':<72s} {'seconds':>8s}   speed-up   (wall time of the call)")
    for (label, seconds), wall in zip(rows, walls.values()):
        print(f"  {label:<72s} {seconds:8.2f}   {blog_epoch / seconds:6.1f}x    ({wall:.2f} s)")
    print(f"Speed-up of `tinygrad-like train --recipe blog` (float32 autograd): {blog_epoch / times['autograd']:.1f}x"
          f"   [benchmark took {time.perf_counter() - start:.0f} s]")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": n, "slice": part, "source": source, "seconds": times,
                                               "blog_epoch_seconds": blog_epoch,
                                               "speedup": blog_epoch / times["autograd"]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
