"""Training keeps memory flat: each step's graph is freed once backward has run."""

import gc
import tracemalloc

import numpy as np

from tinygrad_like import Tensor, blog, nn, optim


def test_one_thousand_training_steps_of_the_blog_network_keep_memory_flat():
    rng = np.random.default_rng(0)
    mlp = nn.MLP([784, 64, 32, 10], seed=0)
    opt = optim.SGD(mlp.parameters(), lr=1e-3)
    x = Tensor(rng.random((10, 784)).astype(np.float32))
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 10)]

    def step():
        opt.zero_grad()
        loss = blog.blog_loss(mlp, x, onehot)
        loss.backward()
        opt.step()

    for _ in range(50):  # warm-up: caches, optimizer state
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(100):
            step()
        gc.collect()
        after_100, _ = tracemalloc.get_traced_memory()
        for _ in range(850):
            step()
        gc.collect()
        after_950, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a leaked graph per step would hold at least its (10, 64) activations: 850 steps x 2.5 kB = 2 MB
    assert after_950 - after_100 < 200_000, (after_100, after_950)
    assert peak < 5_000_000
