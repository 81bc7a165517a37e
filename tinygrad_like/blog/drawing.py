"""Drawing the blog's loss graph."""

from __future__ import annotations

from typing import Any

import graphviz

from .. import viz
from ..nn import MLP
from .mlp import blog_loss


def blog_graph(mlp: MLP, x: Any, labels: Any, **options: Any) -> graphviz.Digraph:
    """Draw the blog's loss graph (``blog_loss``) of ``mlp`` on the batch ``x`` (N, n_in) with ``labels``.

    The graph is matmul, add, sigmoid, ..., softmax, log, times the one-hot labels, sum, negated. It is
    drawn after ``backward(retain_graph=True)`` so every parameter shows its gradient (``mlp``'s gradients
    are reset first). ``options`` go to ``viz.draw``, e.g. ``report=compare_gradients(net, mlp, x, labels)``.
    """
    mlp.zero_grad()
    loss = blog_loss(mlp, x, labels)
    loss.backward(retain_graph=True)
    return viz.draw(loss, params=mlp, **options)
