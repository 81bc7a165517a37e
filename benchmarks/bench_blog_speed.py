"""One epoch of the blog recipe: our batched autograd vs the blog's per-sample loop (``blog.NN.train``).

    python benchmarks/bench_blog_speed.py [--dataset fashion-mnist] [--samples 60000] [--slice 6000] [--repeats 3]
                                          [--threads 1] [--quick] [--json FILE]

Both run in this process, in turns (ours, the blog's, ours, ...), so machine noise hits both alike; the medians
and their ratio are printed. The per-sample loop is timed on the first ``--slice`` samples and scaled to the
training set (its cost is linear in the number of samples: one forward and one backward per sample);
``--samples`` takes the first N samples of the training set.
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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import figure, finish, options_of, parse, positive_int, result, set_blas_threads  # noqa: E402

FULL = {"dataset": "fashion-mnist", "data_dir": None, "samples": 60000, "blog_slice": 6000, "repeats": 3,
        "threads": 1}
QUICK = {"samples": 6000, "blog_slice": 400, "repeats": 2}


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


def measure(dataset: str = FULL["dataset"], data_dir: str | None = None, samples: int = FULL["samples"],
            blog_slice: int = FULL["blog_slice"], repeats: int = FULL["repeats"],
            threads: int = FULL["threads"]) -> dict:
    """The figures; ``threads`` only takes effect if NumPy is not imported yet (as when run as a script)."""
    set_blas_threads(threads)
    import numpy as np

    from tinygrad_like import blog, train

    x, y, source = load(dataset, data_dir)
    x, y = x[:samples], y[:samples]
    x64 = x.astype(np.float64)  # the blog's code works in float64; converting is not part of its epoch
    n, part = len(x), min(blog_slice, len(x))
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

    times = alternate({"autograd": ours(), "autograd64": ours(dtype="float64"),
                       "published": ours("published", "float64"), "blog": blogs_loop}, repeats)
    walls = times.pop("wall")
    blog_epoch = times["blog"] * n / part
    rows = [
        ("batched autograd, float32 (tinygrad-like train)", times["autograd"], walls["autograd"]),
        ("batched autograd, float64", times["autograd64"], walls["autograd64"]),
        ("the blog's backward batched, float64 (--backend published)", times["published"], walls["published"]),
    ]
    figures = [figure(f"the blog's per-sample loop, float64 (blog.NN.train; timed on {part:,} samples, scaled)",
                      blog_epoch, "s")]
    for label, seconds, wall in rows:
        figures += [figure(label, seconds, "s"), figure(f"{label}: speed-up over the blog's loop",
                                                        blog_epoch / seconds, "x"),
                    figure(f"{label}: the whole call, evaluations included", wall, "s")]
    return result("The blog's per-sample loop against batched autograd",
                  f"the training pass of one epoch of the blog recipe on {n:,} samples ({source}); median of "
                  f"{repeats} runs each, in turns; BLAS threads: {threads or 'as configured'}", figures=figures)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), help=f"default: {FULL['dataset']}")
    p.add_argument("--data-dir", help="directory with the IDX files (default: the usual search)")
    p.add_argument("--samples", type=positive_int, help=f"training samples (default {FULL['samples']:,})")
    p.add_argument("--slice", dest="blog_slice", type=positive_int,
                   help=f"samples the per-sample loop is timed on (default {FULL['blog_slice']:,})")
    p.add_argument("--repeats", type=positive_int, help=f"timed runs of each after one warm-up "
                                                        f"(default {FULL['repeats']})")
    p.add_argument("--threads", type=int, help="BLAS threads; 0 = leave the environment alone (default 1)")
    args = parse(p, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
