"""Training the blog's network: the blog's recipe, a modern recipe, and the blog's hand-written backward, batched.

``blog_recipe()`` is the post's experiment: layers [784, 64, 32, 10], sigmoid, softmax, summed cross-entropy,
plain SGD with lr 0.001 on batches of 200 taken in order, 4 epochs, every weight and bias from U(-1, 1), pixels
divided by 255. The post loops over samples one at a time and applies the summed gradient every 200 samples;
we run each batch of 200 through the graph at once. The gradient of a summed loss is the sum of the
per-sample gradients, all taken at the same weights, so the update is the same (up to rounding).

``modern_recipe()`` keeps the layer sizes and changes what a practitioner would change today (see its
docstring). ``train`` runs either recipe with autograd (``backend="autograd"``) or with the blog's
hand-written backward (``"manual"`` = corrected, ``"published"`` = as published), and returns a
``TrainResult`` whose ``to_dict()`` is the CLI's ``--json`` summary.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import blog, optim
from ._files import atomic_write
from .nn import MLP
from .tensor import Tensor, no_grad

__all__ = [
    "BACKENDS",
    "EpochStats",
    "Recipe",
    "TrainResult",
    "blog_recipe",
    "build_model",
    "evaluate",
    "manual_gradients",
    "modern_recipe",
    "plot_history",
    "prepare",
    "train",
]

BACKENDS = ("autograd", "manual", "published")
Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the data and the seed."""

    name: str
    layers: tuple[int, ...] = (784, 64, 32, 10)
    activation: str = "sigmoid"  # hidden layers; the output is always softmax
    init: str = "blog"  # "blog": U(-1, 1); "default": PyTorch's Linear init, U(+-1/sqrt(fan_in))
    reduction: str = "sum"  # cross-entropy over a batch: "sum" (the blog) or "mean"
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.001
    momentum: float = 0.0  # SGD only
    schedule: str = "constant"  # learning rate over the run: "constant" or "cosine" (to 0 at the last step)
    epochs: int = 4
    batch_size: int = 200
    shuffle: bool = False  # reshuffle the training set every epoch (the blog keeps the file's order)
    standardize: bool = False  # train on (x - mean) / std of the training pixels; folded into layer 0 at the end
    dtype: str = "float32"

    def __post_init__(self) -> None:
        checks = [
            (self.activation in ("sigmoid", "relu", "tanh"), "activation must be sigmoid, relu or tanh"),
            (self.init in ("blog", "default"), "init must be 'blog' or 'default'"),
            (self.reduction in ("sum", "mean"), "reduction must be 'sum' or 'mean'"),
            (self.optimizer in ("sgd", "adam"), "optimizer must be 'sgd' or 'adam'"),
            (self.schedule in ("constant", "cosine"), "schedule must be 'constant' or 'cosine'"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (np.dtype(self.dtype).kind == "f", "dtype must be a float dtype"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError(f"Recipe {self.name!r}: " + "; ".join(problems) + f" (got {self})")


def blog_recipe(**changes: Any) -> Recipe:
    """The post's hyperparameters; ``changes`` override fields (e.g. ``epochs=1``, ``dtype="float64"``).

    float32 by default: twice the speed of float64 and the same accuracy to a tenth of a percent; use
    ``dtype="float64"`` to compare bit for bit with the blog's float64 code.
    """
    return replace(Recipe(name="blog"), **changes)


def modern_recipe(**changes: Any) -> Recipe:
    """The same [784, 64, 32, 10] network trained as one would today, with textbook defaults, none tuned here.

    - Inputs standardised with the training set's pixel mean and standard deviation (two scalars, like
      torchvision's ``Normalize``), so the first layer sees zero-mean, unit-variance inputs. After training
      they are folded into the first layer, so the trained model takes pixel / 255 like the blog's.
    - ReLU hidden layers with PyTorch's default init: sigmoid saturates, and U(-1, 1) weights start it saturated.
    - Mean cross-entropy on the logits (fused, stable): the step size no longer grows with the batch size.
    - Adam at its usual lr 1e-3 on batches of 64, reshuffled every epoch.
    - 20 epochs with a cosine learning-rate decay to 0, which settles the weights at the end of the run
      instead of leaving them bouncing at the full rate.
    """
    return replace(Recipe(name="modern", activation="relu", init="default", reduction="mean", optimizer="adam",
                          lr=1e-3, schedule="cosine", epochs=20, batch_size=64, shuffle=True, standardize=True),
                   **changes)


RECIPES: dict[str, Callable[..., Recipe]] = {"blog": blog_recipe, "modern": modern_recipe}


# ----------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------


@dataclass
class EpochStats:
    """Measured after an epoch: training-set loss (in the recipe's reduction), accuracies in [0, 1]."""

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float | None
    seconds: float  # training time of this epoch, evaluation excluded


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model, the per-epoch history and the final scores."""

    model: MLP
    recipe: Recipe
    backend: str
    seed: int | None
    initial_loss: float
    history: list[EpochStats] = field(default_factory=list)
    train_correct: int = 0
    n_train: int = 0
    test_correct: int | None = None
    n_test: int | None = None
    seconds: float = 0.0  # training time of all epochs, evaluation excluded

    @property
    def train_accuracy(self) -> float:
        """Final accuracy on the training set, in [0, 1]."""
        return self.train_correct / self.n_train if self.n_train else 0.0

    @property
    def test_accuracy(self) -> float | None:
        """Final accuracy on the test set, in [0, 1]; None without a test set."""
        return self.test_correct / self.n_test if self.n_test else None

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        """A JSON-able summary (the CLI's ``--json``); ``extra`` entries (e.g. ``dataset=``) are added."""
        recipe = asdict(self.recipe)
        recipe["layers"] = list(self.recipe.layers)
        return {
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            "train_correct": self.train_correct, "n_train": self.n_train,
            "test_correct": self.test_correct, "n_test": self.n_test,
            "epochs": self.recipe.epochs, "seconds": self.seconds, "recipe": self.recipe.name,
            "backend": self.backend, "seed": self.seed, **extra,
            "initial_loss": self.initial_loss, "final_loss": self.history[-1].loss if self.history else None,
            "hyperparameters": recipe, "history": [asdict(h) for h in self.history],
        }


# ----------------------------------------------------------------------------------------------------------
# Data, model, evaluation
# ----------------------------------------------------------------------------------------------------------


def prepare(images: np.ndarray, labels: np.ndarray, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) -> rows (N, 784) scaled to [0, 1] as the blog does (pixel / 255); labels int64."""
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"prepare: {len(images)} images but {len(labels)} labels")
    x = images.reshape(len(images), -1).astype(dtype)
    x /= np.asarray(255, dtype=x.dtype)
    return x, labels.astype(np.int64)


def build_model(recipe: Recipe, seed: int | None = None) -> MLP:
    """The recipe's MLP, initialised from ``seed`` (the same seed gives the same weights)."""
    return MLP(recipe.layers, activation=recipe.activation, init=recipe.init, seed=seed, dtype=recipe.dtype)


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray, reduction: str = "sum",
             chunk: int = 10000) -> tuple[float, int]:
    """(cross-entropy loss over all of ``x``, number of correct predictions), without recording a graph."""
    if len(x) != len(y):
        raise ValueError(f"evaluate: {len(x)} samples but {len(y)} labels")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"evaluate: reduction must be 'sum' or 'mean', got {reduction!r}")
    total, correct = 0.0, 0
    dtype = model.layers[0].weight.dtype
    with no_grad():
        for i in range(0, len(x), chunk):
            logits = model.logits(Tensor(x[i:i + chunk], dtype=dtype))
            total += float(logits.cross_entropy(y[i:i + chunk], reduction="sum").item())
            correct += int(np.sum(np.argmax(logits.data, axis=1) == y[i:i + chunk]))
    return (total / max(len(x), 1) if reduction == "mean" else total), correct


def _batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[slice | np.ndarray]:
    """Batch indices: slices in order (views, no copy), or chunks of a fresh permutation when shuffling."""
    order = None if rng is None else rng.permutation(n)
    for i in range(0, n, batch_size):
        yield slice(i, i + batch_size) if order is None else order[i:i + batch_size]


def _progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar when tqdm is installed and ``enabled`` (shown on terminals only), else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm  # optional dependency (the ``dev`` extra)
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=None)


# ----------------------------------------------------------------------------------------------------------
# One epoch, with autograd or with the blog's hand-written backward
# ----------------------------------------------------------------------------------------------------------


def _make_optimizer(recipe: Recipe, model: MLP) -> optim.Optimizer:
    if recipe.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=recipe.lr)
    return optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)


def _lr_at(recipe: Recipe, step: int, total_steps: int) -> float:
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return recipe.lr


class _AutogradStepper:
    """One optimizer step per batch: forward, fused cross-entropy on the logits, backward."""

    def __init__(self, model: MLP, recipe: Recipe) -> None:
        self.model, self.recipe = model, recipe
        self.optimizer = _make_optimizer(recipe, model)
        self.dtype = model.layers[0].weight.dtype

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        self.optimizer.lr = lr
        loss = self.model.logits(Tensor(x, dtype=self.dtype)).cross_entropy(y, reduction=self.recipe.reduction)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def sync(self) -> None:
        """Nothing to copy: the optimizer updates the model's own parameters."""


def manual_gradients(net: blog.NN, x: np.ndarray, onehot: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The blog's ``backward`` for a whole batch at once: gradients summed over the rows of ``x``.

    Same formulas as ``blog.NN.backward``, applied to B columns side by side instead of one: for each sample
    the output row is ``crossentropy_deriv @ softmax_deriv``, i.e. g @ (diag(s) - s s^T) = g*s - (g.s) s,
    and every layer's gradient is a sum over the batch of the per-sample outer products, which one matrix
    product computes. The hidden layers' sigmoid derivative is applied only when ``net.corrected``, as in
    the blog's code. Returns ``(weight_grads, bias_grads)`` in the blog's shapes.
    """
    net.forward(x.T)  # the blog's layout: one column per sample
    layers = net.layers
    out = layers[-1].T  # (B, n_out) probabilities
    g = blog.crossentropy_deriv(onehot.T, out.T)  # (B, n_out) rows: -y / out
    current = g * out - np.sum(g * out, axis=1, keepdims=True) * out
    weight_grads, bias_grads = [np.empty(0)] * len(net.weights), [np.empty(0)] * len(net.weights)
    for i in reversed(range(len(net.weights))):
        weight_grads[i] = current.T @ layers[i].T
        bias_grads[i] = current.sum(axis=0).reshape(-1, 1)
        if i == 0:
            break
        current = current @ net.weights[i]
        if net.corrected:
            current = current * (layers[i] * (1 - layers[i])).T
    return weight_grads, bias_grads


class _ManualStepper:
    """Steps with the blog's hand-written backward on a ``blog.NN`` copy of the model (float64, as the blog).

    ``per_sample=True`` runs the blog's own loop (``NN.forward`` + ``NN.backward`` per sample); otherwise
    ``manual_gradients`` computes the same summed gradient for the whole batch in a few matrix products.
    """

    def __init__(self, model: MLP, recipe: Recipe, corrected: bool, per_sample: bool) -> None:
        if recipe.activation != "sigmoid" or recipe.optimizer != "sgd" or recipe.reduction != "sum" \
                or recipe.momentum:
            raise ValueError(f"train: the blog's hand-written backward is for sigmoid layers, a summed loss and "
                             f"plain SGD (the blog recipe); recipe {recipe.name!r} has activation="
                             f"{recipe.activation}, reduction={recipe.reduction}, optimizer={recipe.optimizer}, "
                             f"momentum={recipe.momentum}")
        self.model, self.per_sample = model, per_sample
        self.net = model.to_blog(corrected=corrected)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        x, onehot = np.asarray(x, dtype=np.float64), blog.one_hot(y, self.net.sizes[-1])
        if self.per_sample:
            self.net.zero_grad()
            for xi, yi in zip(x, onehot):
                self.net.forward(xi)
                self.net.backward(xi, yi)
        else:
            self.net.weight_grads, self.net.bias_grads = manual_gradients(self.net, x, onehot)
        self.net.update(lr)

    def sync(self) -> None:
        """Copy the blog network's parameters into the model (which evaluates and saves them)."""
        for layer, w, b in zip(self.model.layers, self.net.weights, self.net.biases):
            layer.weight.data = w.astype(layer.weight.dtype)
            layer.bias.data = b.reshape(-1).astype(layer.bias.dtype)


def _epoch(stepper: Any, recipe: Recipe, x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None,
           first_step: int, total_steps: int, desc: str, progress: bool) -> None:
    """One pass over the training set, one step per batch; ``first_step`` counts steps for the lr schedule."""
    n_steps = math.ceil(len(x) / recipe.batch_size)
    bar = _progress(n_steps, desc, progress)
    try:
        for k, index in enumerate(_batches(len(x), recipe.batch_size, rng)):
            stepper.step(x[index], y[index], _lr_at(recipe, first_step + k, total_steps))
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    stepper.sync()


# ----------------------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------------------


def train(model: MLP, x: np.ndarray, y: np.ndarray, recipe: Recipe | None = None, *,
          test: tuple[np.ndarray, np.ndarray] | None = None, backend: str = "autograd", seed: int | None = None,
          per_sample: bool = False, progress: bool = True, log: Log | None = print) -> TrainResult:
    """Train ``model`` on rows ``x`` (see ``prepare``) and integer labels ``y`` following ``recipe``.

    Prints the blog's lines through ``log`` (``None`` for silence): ``Epoch n, current loss: L`` before each
    epoch (L is the training-set loss at that point, in the recipe's reduction), ``Final loss: L``, then
    ``Score: a / b = x%`` for the training set and for ``test``. ``seed`` drives the shuffling only (the
    model is already initialised, see ``build_model``). ``backend``: "autograd", or the blog's hand-written
    backward, "manual" (corrected) or "published" (missing the sigmoid derivative); ``per_sample`` makes
    those run the blog's own per-sample loop instead of the batched one (same update, much slower).
    """
    recipe = recipe or blog_recipe()
    say = log or (lambda line: None)
    _check_data(model, x, y, "x, y")
    if test is not None:
        _check_data(model, *test, "test")
    stepper = _stepper(model, recipe, backend, per_sample)
    # A child of the seed: build_model draws the initial weights from the seed itself, shuffling gets its own stream.
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]) if recipe.shuffle else None
    shift, scale = (float(x.mean()), float(x.std()) or 1.0) if recipe.standardize else (0.0, 1.0)
    xs = _standardized(x, shift, scale)
    test_s = None if test is None else (_standardized(test[0], shift, scale), test[1])
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    loss, _ = evaluate(model, xs, y, recipe.reduction)
    result = TrainResult(model=model, recipe=recipe, backend=backend, seed=seed, initial_loss=loss,
                         n_train=len(x), n_test=None if test is None else len(test[0]))
    for epoch in range(1, recipe.epochs + 1):
        say(f"Epoch {epoch}, current loss: {loss}")
        start = time.perf_counter()
        _epoch(stepper, recipe, xs, y, rng, (epoch - 1) * steps_per_epoch, recipe.epochs * steps_per_epoch,
               f"epoch {epoch}/{recipe.epochs}", progress)
        seconds = time.perf_counter() - start
        if epoch == recipe.epochs and recipe.standardize:
            _fold_standardization(model, shift, scale)
            xs, test_s = x, test  # the folded model takes pixel / 255: its scores are measured on those
        loss, result.train_correct = evaluate(model, xs, y, recipe.reduction)
        result.test_correct = None if test_s is None else evaluate(model, *test_s)[1]
        result.history.append(EpochStats(epoch, loss, result.train_accuracy, result.test_accuracy, seconds))
        result.seconds += seconds
    say(f"Final loss: {loss}")
    say(f"{blog.format_score(result.train_correct, result.n_train)}  (train)")
    if result.n_test is not None:
        say(f"{blog.format_score(result.test_correct or 0, result.n_test)}  (test)")
    return result


def _check_data(model: MLP, x: np.ndarray, y: np.ndarray, name: str) -> None:
    if np.ndim(x) != 2 or np.shape(x)[1] != model.sizes[0]:
        raise ValueError(f"train: {name}: expected rows of {model.sizes[0]} inputs (see train.prepare), "
                         f"got shape {np.shape(x)}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"train: {name}: {len(x)} samples and {len(y)} labels (need as many, at least one)")


def _standardized(x: np.ndarray, shift: float, scale: float) -> np.ndarray:
    if shift == 0.0 and scale == 1.0:
        return x
    return (x - np.asarray(shift, dtype=x.dtype)) / np.asarray(scale, dtype=x.dtype)


def _fold_standardization(model: MLP, shift: float, scale: float) -> None:
    """Make layer 0 take raw inputs: ((x - m) / s) @ W.T + b == x @ (W / s).T + (b - (m / s) * W.sum(1))."""
    layer = model.layers[0]
    w, b = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    layer.weight.data = (w / scale).astype(layer.weight.dtype)
    layer.bias.data = (b - (shift / scale) * w.sum(axis=1)).astype(layer.bias.dtype)


def _stepper(model: MLP, recipe: Recipe, backend: str, per_sample: bool) -> Any:
    if backend == "autograd":
        if per_sample:
            raise ValueError("train: per_sample is for the blog's hand-written backward (backend='manual' or "
                             "'published'); autograd always runs a whole batch at once")
        return _AutogradStepper(model, recipe)
    if backend in ("manual", "published"):
        return _ManualStepper(model, recipe, corrected=backend == "manual", per_sample=per_sample)
    raise ValueError(f"train: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


# ----------------------------------------------------------------------------------------------------------
# Plotting (matplotlib is optional: the ``plot`` extra)
# ----------------------------------------------------------------------------------------------------------


def plot_history(result: TrainResult, path: str | os.PathLike, title: str | None = None) -> None:
    """Save loss and accuracy curves per epoch to ``path`` (PNG, SVG or PDF, by its extension), atomically.

    Raises ImportError with install instructions when matplotlib is missing. Uses matplotlib's object API
    (no pyplot), so it changes no global backend or state of the caller.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'tinygrad_like[plot]' "
                          "(or pip install matplotlib)") from None
    epochs = [0] + [h.epoch for h in result.history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [result.initial_loss] + [h.loss for h in result.history], marker="o")
    kind = "summed" if result.recipe.reduction == "sum" else "mean"
    loss_ax.set(xlabel="epoch", ylabel=f"training loss ({kind} cross-entropy)", title="loss")
    acc_ax.plot(epochs[1:], [100 * h.train_accuracy for h in result.history], marker="o", label="train")
    if result.test_accuracy is not None:
        acc_ax.plot(epochs[1:], [100 * (h.test_accuracy or 0) for h in result.history], marker="o", label="test")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"{result.recipe.name} recipe, {result.backend} backend")
    with atomic_write(path) as f:  # a failed or interrupted save leaves no half-written picture
        fig.savefig(f, format=Path(path).suffix.lstrip(".").lower() or None)
