"""The blog's network on the library: ``from_blog`` / ``to_blog`` copy parameters between ``NN`` and ``nn.MLP``
(biases are (n_out, 1) columns in the blog, vectors in the MLP), and ``blog_loss`` records the blog's own,
unfused graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_labels
from ..nn import MLP
from ..tensors import Tensor
from .network import NN


def from_blog(net: NN) -> MLP:
    """An MLP with exactly the parameters of the blog's ``NN`` (copied, dtype kept: float64)."""
    weights, biases = list(net.weights), list(net.biases)
    if not weights or len(weights) != len(biases):
        raise ValueError(f"from_blog: expected as many weights as biases, got {len(weights)} weights "
                         f"and {len(biases)} biases")
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    for i, (w, b) in enumerate(zip(weights, biases)):
        if w.shape != (sizes[i + 1], sizes[i]) or np.size(b) != sizes[i + 1]:
            raise ValueError(f"from_blog: layer {i} has weight {w.shape} and bias {np.shape(b)}; "
                             f"expected ({sizes[i + 1]}, {sizes[i]}) and ({sizes[i + 1]}, 1)")
    mlp = MLP(sizes, activation="sigmoid", seed=0, dtype=weights[0].dtype)
    for layer, w, b in zip(mlp.layers, weights, biases):
        layer.copy_(w, b)
    return mlp


def to_blog(mlp: MLP, corrected: bool = False) -> NN:
    """The blog's ``NN`` with a float64 copy of ``mlp``'s parameters (biases as (n_out, 1) columns)."""
    if mlp.activation != "sigmoid" or any(layer.bias is None for layer in mlp.layers):
        raise ValueError(f"to_blog: the blog's network has sigmoid layers with biases, this MLP has "
                         f"activation={mlp.activation!r}")
    net = NN(mlp.sizes, corrected=corrected, seed=0)
    net.weights = [np.ascontiguousarray(layer.weight.data, dtype=np.float64) for layer in mlp.layers]  # row-major
    net.biases = [layer.bias.data.astype(np.float64).reshape(-1, 1) for layer in mlp.layers]
    net.zero_grad()
    return net


def blog_loss(mlp: MLP, x: Any, targets: Any) -> Tensor:
    """-sum(onehot * log(softmax(...sigmoid(x @ W.T + b)...))): the blog's summed cross-entropy, unfused.

    Built from the primitives the blog differentiates by hand; its gradient is the blog's gradient summed over
    the batch. ``x`` is (N, n_in) with samples as rows; ``targets`` one-hot rows (N, n_out) or integer labels
    (N,). Every layer's ops are tagged as that layer's call, so drawings group them. For training speed and
    stability prefer ``mlp.logits(x).cross_entropy(y, "sum")``.
    """
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=mlp.layers[0].weight.dtype)
    n_out = mlp.sizes[-1]
    onehot = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    given = onehot.shape
    if onehot.ndim == 1 and onehot.dtype.kind in "iu":
        onehot = np.eye(n_out, dtype=x.dtype)[check_labels(onehot, n_out, "blog_loss")]
    if onehot.shape != (x.shape[0], n_out):
        raise ValueError(f"blog_loss: targets must be one-hot of shape ({x.shape[0]}, {n_out}) or integer labels "
                         f"({x.shape[0]},) for inputs of shape {x.shape}, got shape {given}")
    h = x
    for i, layer in enumerate(mlp.layers):
        z = layer.mark_call(h @ layer.weight.T + layer.bias, h)  # the blog's z = W a + b, rows as samples
        h = z.softmax(axis=-1) if i == len(mlp.layers) - 1 else z.sigmoid()
    probabilities = mlp.mark_call(h, x)
    return -(Tensor(onehot, dtype=x.dtype) * probabilities.log()).sum()
