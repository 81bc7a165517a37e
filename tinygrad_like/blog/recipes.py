"""The blog's training runs: its recipe (which owns the post's numbers), a modern recipe for the same network,
and training with the blog's hand-written backward (``"manual"`` = corrected, ``"published"``) or autograd."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .. import train as training
from ..nn import MLP
from ..train import Recipe, TrainResult
from .mlp import to_blog
from .network import manual_gradients, mlp_order, one_hot

BACKENDS = ("autograd", "manual", "published")
LAYERS = (784, 64, 32, 10)  # the post's network: 28 x 28 pixels in, 64 and 32 hidden units, 10 digits out


def blog_recipe(**changes: Any) -> Recipe:
    """The post's experiment; ``changes`` override fields (e.g. ``epochs=1``, ``dtype="float64"``).

    Layers [784, 64, 32, 10], sigmoid, softmax, summed cross-entropy, plain SGD with lr 0.001 on batches of 200
    taken in order, 4 epochs, every weight and bias from U(-1, 1). The post applies the summed per-sample
    gradients every 200 samples; a batch of 200 through the graph at once is the same update (up to rounding).
    float32 by default: twice the speed of float64 and the same accuracy to a tenth of a percent; use
    ``dtype="float64"`` to compare bit for bit with the blog's float64 code. ``init="uniform"`` draws the
    weights as the blog does, so ``build_model(blog_recipe(), seed=s)`` starts from ``NN(layers, seed=s)``.
    """
    return replace(Recipe(name="blog", layers=LAYERS, activation="sigmoid", init="uniform", reduction="sum",
                          optimizer="sgd", lr=0.001, momentum=0.0, schedule="constant", epochs=4, batch_size=200,
                          shuffle=False, standardize=False, dtype="float32"), **changes)


def modern_recipe(**changes: Any) -> Recipe:
    """The same [784, 64, 32, 10] network trained as one would today, with textbook defaults, none tuned here.

    - Inputs standardised with the training set's pixel mean and standard deviation (two scalars, like
      torchvision's ``Normalize``), so the first layer sees zero-mean, unit-variance inputs. After training
      they are folded into the first layer, so the trained model takes pixel / 255 like the blog's.
    - ReLU hidden layers with PyTorch's default init: sigmoid saturates, and U(-1, 1) weights start it saturated.
    - Mean cross-entropy on the logits (fused, stable): the step size no longer grows with the batch size.
    - Adam at its usual lr 1e-3 on batches of 64, reshuffled every epoch.
    - 20 epochs with a cosine learning-rate decay towards 0, which settles the weights at the end of the run
      instead of leaving them bouncing at the full rate.
    """
    return replace(Recipe(name="modern", layers=LAYERS, activation="relu", init="default", reduction="mean",
                          optimizer="adam", lr=1e-3, schedule="cosine", epochs=20, batch_size=64, shuffle=True,
                          standardize=True, dtype="float32"), **changes)


RECIPES: dict[str, Callable[..., Recipe]] = {"blog": blog_recipe, "modern": modern_recipe}


class ManualStepper:
    """Steps with the blog's hand-written backward on a ``NN`` copy of the model (float64, as the blog).

    ``per_sample=True`` runs the blog's own loop (``NN.accumulate``); otherwise ``manual_gradients``
    computes the same summed gradient for the whole batch in a few matrix products.
    """

    def __init__(self, model: MLP, recipe: Recipe, corrected: bool, per_sample: bool) -> None:
        if recipe.activation != "sigmoid" or recipe.optimizer != "sgd" or recipe.reduction != "sum" \
                or recipe.momentum:
            raise ValueError(f"train: the blog's hand-written backward is for sigmoid layers, a summed loss and "
                             f"plain SGD (the blog recipe); recipe {recipe.name!r} has activation="
                             f"{recipe.activation}, reduction={recipe.reduction}, optimizer={recipe.optimizer}, "
                             f"momentum={recipe.momentum}")
        self.model, self.per_sample = model, per_sample
        self.net = to_blog(model, corrected=corrected)
        self.names = [name for name, _ in model.named_parameters()]  # layers.0.weight, layers.0.bias, ...
        self.last: list[np.ndarray] = []

    def gradients(self) -> dict[str, np.ndarray]:
        """The hand-written gradients of the last step (the published code's are not the true ones)."""
        return dict(zip(self.names, self.last))

    def parameters(self) -> dict[str, np.ndarray]:
        """The blog network's current parameters, by the MLP's names."""
        return dict(zip(self.names, mlp_order(self.net.weights, self.net.biases)))

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        with np.errstate(all="ignore"):  # a diverging run gives inf and nan, which the training loop reports
            self._step(x, y, lr)

    def _step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        x, onehot = np.asarray(x, dtype=np.float64), one_hot(y, self.net.sizes[-1])
        if self.per_sample:
            self.net.zero_grad()
            self.net.accumulate(x, onehot)
        else:
            self.net.weight_grads, self.net.bias_grads = manual_gradients(self.net, x, onehot)
        self.last = mlp_order(self.net.weight_grads, self.net.bias_grads)  # update() resets them
        self.net.update(lr)

    def sync(self) -> None:
        """Copy the blog network's parameters into the model (which evaluates and saves them)."""
        for layer, w, b in zip(self.model.layers, self.net.weights, self.net.biases):
            layer.copy_(w, b)


def train(model: MLP, x: np.ndarray, y: np.ndarray, recipe: Recipe | None = None, *, backend: str = "autograd",
          per_sample: bool = False, **options: Any) -> TrainResult:
    """``train.train`` with the blog's backends: "autograd", or the blog's hand-written backward, "manual"
    (corrected) or "published" (missing the sigmoid derivative); ``per_sample`` makes those run the blog's
    own per-sample loop instead of the batched one (same update, much slower). ``options`` go to
    ``train.train`` (``test=``, ``seed=``, ``progress=``, ``log=``)."""
    recipe = recipe or blog_recipe()
    if backend not in BACKENDS:
        raise ValueError(f"train: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "autograd":
        if per_sample:
            raise ValueError("train: per_sample is for the blog's hand-written backward (backend='manual' or "
                             "'published'); autograd always runs a whole batch at once")
        stepper = None
    else:
        stepper = ManualStepper(model, recipe, corrected=backend == "manual", per_sample=per_sample)
    return training.train(model, x, y, recipe, stepper=stepper, label=backend, **options)
