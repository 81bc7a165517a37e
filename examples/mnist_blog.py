"""The blog's experiment in a dozen lines of tinygrad_like: [784, 64, 32, 10], sigmoid, softmax, summed
cross-entropy, SGD with lr 0.001 on batches of 200 taken in order, 4 epochs, U(-1, 1) initial weights.

    python examples/mnist_blog.py                  # MNIST (found locally or downloaded), else Fashion-MNIST
    python examples/mnist_blog.py fashion-mnist    # same format, harder
    python examples/mnist_blog.py mnist DIR        # the IDX files in DIR

The blog sums per-sample gradients over 200 samples before each update; here each batch of 200 goes through
the graph at once and ``backward`` gives the same sum. With progress bars, plots and a JSON summary:
``tinygrad-like train`` (and ``tinygrad_like.train`` in Python).
"""

import sys

import numpy as np

from tinygrad_like import Tensor, blog, data, no_grad, optim, train

name = sys.argv[1] if len(sys.argv) > 1 else "mnist"
directory = sys.argv[2] if len(sys.argv) > 2 else None
try:
    (x_train, y_train), (x_test, y_test) = data.load_dataset(name, directory)
except data.DatasetNotFoundError as err:
    if len(sys.argv) > 1 or data.find_dataset("fashion-mnist") is None:
        sys.exit(str(err))
    name, directory = "fashion-mnist", None  # MNIST cannot be had here: the same format, harder
    (x_train, y_train), (x_test, y_test) = data.load_dataset(name)
except data.DatasetError as err:
    sys.exit(str(err))
print(f"{name}: the blog's network, recipe and update on {len(x_train)} training images")
(x_train, y_train), (x_test, y_test) = train.prepare(x_train, y_train), train.prepare(x_test, y_test)  # rows, /255

model = train.build_model(blog.blog_recipe(), seed=0)  # sigmoid MLP, weights drawn as blog.NN(seed=0) draws them
opt = optim.SGD(model.parameters(), lr=0.001)
for epoch in range(4):
    for i in range(0, len(x_train), 200):
        loss = model.logits(Tensor(x_train[i:i + 200])).cross_entropy(y_train[i:i + 200], reduction="sum")
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"Epoch {epoch + 1}, loss of the last batch: {loss.item():.1f}")

with no_grad():
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        correct = int(np.sum(model(Tensor(x)).numpy().argmax(axis=1) == y))
        print(f"Score: {correct} / {len(y)} = {100 * correct / len(y):.1f}%  ({name})")
