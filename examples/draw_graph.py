"""Look at what autodiff records: draw a small expression, then the blog network's loss, with gradients.

    python examples/draw_graph.py [DIR]      # writes expression.svg, blog_mlp.svg and blog_mlp.html into DIR

DIR defaults to a new temporary directory (printed). The SVGs need Graphviz's `dot`: without it the DOT text
(.gv) is still written and the error says how to install Graphviz; the .html view needs only a browser.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from tinygrad_like import Tensor, blog, draw, nn
from tinygrad_like.viz import save, to_html

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="tinygrad_like_"))

# 1. A small expression: every op is an ellipse, every tensor a box with its shape, values and gradient.
x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
w = Tensor([0.5, 0.25, -1.0], requires_grad=True)
y = ((x * w).sum().sigmoid() + x.mean()).log()
y.backward(retain_graph=True)  # keep the graph so the drawing can show the gradients
print("wrote", save(draw(y, params={"x": x, "w": w}), out / "expression.svg"))

# 2. The blog's network [784, 64, 32, 10] on a batch of 4: each layer is a labelled cluster.
mlp = nn.MLP([784, 64, 32, 10], seed=0)
images = Tensor(np.random.default_rng(0).random((4, 784), dtype=np.float32))
loss = blog.blog_loss(mlp, images, [3, 1, 4, 1])  # the blog's graph: matmul, add, sigmoid, softmax, log, mul, sum
loss.backward(retain_graph=True)
print("wrote", save(draw(loss, params=mlp, rankdir="TB"), out / "blog_mlp.svg"))
to_html(loss, out / "blog_mlp.html", params=mlp)  # click nodes, step through the backward pass
print("wrote", out / "blog_mlp.html")
