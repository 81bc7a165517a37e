"""The blog's hand-written gradients next to autograd and finite differences.

Run: python examples/compare_gradients.py

The same network, the same 200 samples, two versions of the blog's backward: as published (missing the hidden
layers' sigmoid derivative) and corrected. The report finds the bug, names the cause, and shows that the
corrected code agrees with autograd to float64 rounding.
"""

import numpy as np

from tinygrad_like.blog import NN, compare_gradients, compare_update, from_blog

rng = np.random.default_rng(0)
x = rng.random((200, 784))  # 200 "images" with pixels in [0, 1), as rows
labels = rng.integers(0, 10, 200)

for corrected in (False, True):
    net = NN([784, 64, 32, 10], corrected=corrected, seed=0)  # the blog's network, U(-1, 1) weights
    mlp = from_blog(net)  # the same network on Tensor, starting from the same float64 weights
    report = compare_gradients(net, mlp, x, labels)
    print(report)
    print(compare_update(net, x, labels, lr=0.001))  # one blog update: the per-sample loop vs MLP + SGD
    print("max rel diff by parameter:", {e.name: f"{e.max_rel:.1e}" for e in report.entries}, "\n")
