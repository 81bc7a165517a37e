"""Cost of safety: anomaly detection's slowdown and the peak memory of training the blog network.

    python benchmarks/bench_hardening.py [--steps 300] [--repeats 5]

Trains the blog's network ([784, 64, 32, 10], batch 200, summed loss, SGD lr 0.001, float32) on synthetic
MNIST-shaped data, with and without ``detect_anomaly()`` (alternating, same run), then reports the peak memory
(tracemalloc) of 1,000 steps against the size of the parameters and one batch.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, positive_int  # noqa: E402

from tinygrad_like import Tensor, detect_anomaly, nn, optim  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=300)
    parser.add_argument("--repeats", type=positive_int, default=5)
    args = parser.parse_args()

    _, _, step = make_step()

    def plain():
        for _ in range(args.steps):
            step()

    def checked():
        with detect_anomaly():
            for _ in range(args.steps):
                step()

    times = alternate({"plain": plain, "detect_anomaly": checked}, args.repeats)
    print(f"blog network, batch 200, {args.steps} SGD steps (median of {args.repeats}, alternating):")
    for name, seconds in times.items():
        print(f"  {name:<15} {seconds / args.steps * 1e3:7.3f} ms/step")
    print(f"  anomaly detection slowdown: {times['detect_anomaly'] / times['plain']:.2f}x")

    mlp, x, step = make_step()
    step()
    tracemalloc.start()
    for _ in range(1000):
        step()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    params = sum(p.data.nbytes for p in mlp.parameters())
    print(f"1,000 steps: peak memory allocated by the steps {peak / 2**20:.2f} MiB, still held after "
          f"{current / 2**20:.2f} MiB (besides the parameters, {params / 2**20:.2f} MiB, and the input batch, "
          f"{x.data.nbytes / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
