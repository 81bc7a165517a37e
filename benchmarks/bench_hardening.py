"""Cost of safety: anomaly detection's slowdown and the peak memory of training the blog network.

    python benchmarks/bench_hardening.py [--steps 300] [--repeats 5] [--memory-steps 1000] [--quick] [--json FILE]

Trains the blog's network ([784, 64, 32, 10], batch 200, summed loss, SGD lr 0.001, float32) on synthetic
MNIST-shaped data, with and without ``detect_anomaly()`` (alternating, same run), then reports the peak memory
(tracemalloc) of ``--memory-steps`` steps against the size of the parameters and one batch.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, figure, finish, options_of, parse, positive_int, result  # noqa: E402

from tinygrad_like import Tensor, detect_anomaly, nn, optim  # noqa: E402

FULL = {"steps": 300, "repeats": 5, "memory_steps": 1000}
QUICK = {"steps": 50, "repeats": 3, "memory_steps": 100}


def make_step(batch: int = 200):
    rng = np.random.default_rng(0)
    mlp = nn.MLP([784, 64, 32, 10], seed=0)
    opt = optim.SGD(mlp.parameters(), lr=1e-3)
    x = Tensor(rng.random((batch, 784)).astype(np.float32))
    labels = rng.integers(0, 10, batch)

    def step():
        opt.zero_grad()
        mlp.logits(x).cross_entropy(labels, reduction="sum").backward()
        opt.step()

    return mlp, x, step


def measure(steps: int = FULL["steps"], repeats: int = FULL["repeats"],
            memory_steps: int = FULL["memory_steps"]) -> dict:
    _, _, step = make_step()

    def plain():
        for _ in range(steps):
            step()

    def checked():
        with detect_anomaly():
            for _ in range(steps):
                step()

    times = alternate({"plain": plain, "detect_anomaly": checked}, repeats)

    mlp, x, step = make_step()
    step()
    tracemalloc.start()
    for _ in range(memory_steps):
        step()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    params = sum(p.data.nbytes for p in mlp.parameters())
    return result("Safety: anomaly detection and memory",
                  f"the blog network, batch 200, float32, SGD; {steps} steps per run, median of {repeats} runs, "
                  f"with and without detect_anomaly() in turns; then the memory of {memory_steps:,} steps "
                  "(tracemalloc)",
                  figures=[figure("time per step", times["plain"] / steps * 1e3, "ms"),
                           figure("time per step under detect_anomaly()", times["detect_anomaly"] / steps * 1e3,
                                  "ms"),
                           figure("anomaly detection slowdown", times["detect_anomaly"] / times["plain"], "x"),
                           figure(f"peak memory allocated by {memory_steps:,} steps", peak / 2**20, "MiB"),
                           figure("memory still held after them", current / 2**20, "MiB"),
                           figure("for comparison: the parameters", params / 2**20, "MiB"),
                           figure("for comparison: the input batch", x.data.nbytes / 2**20, "MiB")])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, help=f"steps per timed run (default {FULL['steps']})")
    parser.add_argument("--repeats", type=positive_int, help=f"timed runs (default {FULL['repeats']})")
    parser.add_argument("--memory-steps", type=positive_int,
                        help=f"steps whose memory is traced (default {FULL['memory_steps']:,})")
    args = parse(parser, FULL, QUICK, argv)
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
