"""The blog study, "Neural Network from Scratch Pt. 2": the post's network (``network``), its mapping to
``nn.MLP`` (``mlp``), its recipes (``recipes``), its gradient comparison on ``check_gradients`` (``compare``) and
its drawing (``drawing``). It uses the library as any user would; the library knows nothing of it.
"""

from .compare import UpdateComparison, compare_gradients, compare_update
from .mlp import blog_loss, from_blog, to_blog
from .network import (
    NN,
    crossentropy,
    crossentropy_deriv,
    manual_gradients,
    one_hot,
    sigmoid,
    sigmoid_deriv,
    softmax,
    softmax_deriv,
)
from .recipes import BACKENDS, RECIPES, ManualStepper, blog_recipe, modern_recipe, train


def blog_graph(*args, **kwargs):  # noqa: ANN002, ANN003 - see drawing.blog_graph
    """Draw the blog's loss graph; see ``blog.drawing.blog_graph`` (imported on first use: it needs graphviz)."""
    from .drawing import blog_graph as draw_blog_graph

    return draw_blog_graph(*args, **kwargs)


__all__ = [
    "BACKENDS", "NN", "RECIPES", "ManualStepper", "UpdateComparison",
    "blog_graph", "blog_loss", "blog_recipe", "compare_gradients", "compare_update", "crossentropy",
    "crossentropy_deriv", "from_blog", "manual_gradients", "modern_recipe", "one_hot", "sigmoid", "sigmoid_deriv",
    "softmax", "softmax_deriv", "to_blog", "train",
]
