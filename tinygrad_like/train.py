"""Training an MLP classifier: recipes of hyperparameters, the loop, evaluation, history and plots.

``train(model, x, y, recipe)`` runs one optimizer step per batch (``Stepper``: autograd by default, or any
object with ``step(x, y, lr)`` and ``sync()``, e.g. a hand-written backward), prints the loss before each epoch
and the final ``Score: a / b = x%`` lines, and returns a ``TrainResult`` whose ``to_dict()`` is the CLI's
``--json`` summary; ``history`` holds per-epoch loss, accuracies and timings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import optim
from ._progress import progress_bar
from .check import json_safe
from .data import batches
from .engine import no_grad, quiet
from .nn import MLP
from .tensors import Tensor

__all__ = [
    "AutogradStepper", "EpochStats", "Recipe", "TrainResult", "build_model", "evaluate", "format_score",
    "fold_standardization", "prepare", "run_epoch", "train",
]

INITS = ("uniform", "default")
ACTIVATIONS = ("sigmoid", "relu", "tanh")
OPTIMIZERS = ("sgd", "adam")
Log = Callable[[str], None]
OnBackward = Callable[[Tensor], Any]  # called with the loss between backward and the optimizer's step
DIVERGED = 100  # a loss this many times the initial one (or nan, inf) ends the run as diverged


# ----------------------------------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the data and the seed.

    ``name`` and ``layers`` (the MLP's sizes, input first) are required. The other defaults are the common
    frameworks' own, tuned for no problem in particular: ReLU hidden layers with PyTorch's ``nn.Linear`` init,
    the mean cross-entropy (PyTorch's ``CrossEntropyLoss``), Adam at its usual lr 1e-3, a constant rate, and
    Keras' ``fit`` batching (batches of 32, reshuffled every epoch, one epoch), in float32. A study's recipe
    states its own numbers.
    """

    name: str
    layers: tuple[int, ...]
    activation: str = "relu"  # hidden layers; the output is always softmax
    init: str = "default"  # "default": PyTorch's Linear init; "uniform": every weight and bias from U(-1, 1)
    reduction: str = "mean"  # cross-entropy over a batch: "mean" or "sum"
    optimizer: str = "adam"  # "adam" or "sgd"
    lr: float = 1e-3
    momentum: float = 0.0  # SGD only
    schedule: str = "constant"  # "constant", or "cosine": lr (1 + cos(pi t / T)) / 2 at step t of T
    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True  # reshuffle the training set every epoch (else the data's order)
    standardize: bool = False  # train on (x - mean) / std of the training pixels; folded into layer 0 at the end
    dtype: str = "float32"

    def __post_init__(self) -> None:
        checks = [
            (len(self.layers) >= 2 and all(isinstance(n, (int, np.integer)) and n >= 1 for n in self.layers),
             "layers must be at least two positive sizes"),
            (self.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}"),
            (self.init in INITS, f"init must be one of {', '.join(INITS)}"),
            (self.reduction in ("sum", "mean"), "reduction must be 'sum' or 'mean'"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in ("constant", "cosine"), "schedule must be 'constant' or 'cosine'"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (np.dtype(self.dtype).kind == "f", "dtype must be a float dtype"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError(f"Recipe {self.name!r}: " + "; ".join(problems) + f" (got {self})")


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
    # The gradient flow: parameter name -> mean over the epoch's steps of the gradient's norm |g| (the gradient
    # the stepper applied: autograd's, or a hand-written backward's), and |update| / |parameter| of the last step.
    grad_norms: dict[str, float] = field(default_factory=dict)
    update_ratios: dict[str, float] = field(default_factory=dict)


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
    diverged: bool = False  # the loss became nan or inf, and training stopped there

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
        return json_safe({  # nan and inf (a diverged run) become null: strict JSON has no NaN
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy, "diverged": self.diverged,
            "train_correct": self.train_correct, "n_train": self.n_train,
            "test_correct": self.test_correct, "n_test": self.n_test,
            "epochs": self.recipe.epochs, "seconds": self.seconds, "recipe": self.recipe.name,
            "backend": self.backend, "seed": self.seed, **extra,
            "initial_loss": self.initial_loss, "final_loss": self.history[-1].loss if self.history else None,
            "hyperparameters": recipe, "history": [asdict(h) for h in self.history],
        })


# ----------------------------------------------------------------------------------------------------------
# Data, model, evaluation
# ----------------------------------------------------------------------------------------------------------


def prepare(images: np.ndarray, labels: np.ndarray, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) -> rows (N, 784) scaled to [0, 1] (pixel / 255); labels int64."""
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"prepare: {len(images)} images but {len(labels)} labels")
    x = images.reshape(len(images), -1).astype(dtype)
    x /= np.asarray(255, dtype=x.dtype)
    return x, labels.astype(np.int64)


def build_model(recipe: Recipe, seed: int | None = None) -> MLP:
    """The recipe's MLP, initialised from ``seed`` (the same seed gives the same weights).

    ``init="uniform"`` draws every weight, then every bias, from U(-1, 1) with ``np.random.default_rng(seed)``.
    """
    model = MLP(recipe.layers, activation=recipe.activation, seed=seed, dtype=recipe.dtype)
    if recipe.init == "uniform":
        rng = np.random.default_rng(seed)
        weights = [rng.uniform(-1, 1, layer.weight.shape) for layer in model.layers]
        biases = [rng.uniform(-1, 1, layer.bias.shape) for layer in model.layers]
        for layer, w, b in zip(model.layers, weights, biases):
            layer.copy_(w, b)
    return model


def format_score(correct: int, total: int) -> str:
    """The accuracy line, e.g. ``Score: 8730 / 10000 = 87.3%``."""
    return f"Score: {correct} / {total} = {100 * correct / total:.1f}%" if total else "Score: 0 / 0"


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


def _make_optimizer(recipe: Recipe, model: MLP) -> optim.Optimizer:
    if recipe.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=recipe.lr)
    return optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)


def _lr_at(recipe: Recipe, step: int, total_steps: int) -> float:
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return recipe.lr


class AutogradStepper:
    """One optimizer step per batch: forward, fused cross-entropy on the logits, backward.

    A stepper (this one, or any object with the same four methods, e.g. a hand-written backward) makes the
    steps of ``run_epoch``: ``step(x, y, lr)``, ``sync()`` at the end of an epoch (copy its parameters into the
    model), ``gradients()`` (the last step's gradients by parameter name) and ``parameters()`` (the current
    values by name), the last two for the gradient flow. ``on_backward(loss)``, when given, is called after each
    backward and before the optimizer's step (e.g. ``viz.TrainingRecorder.record``).
    """

    def __init__(self, model: MLP, recipe: Recipe, on_backward: OnBackward | None = None) -> None:
        self.model, self.recipe, self.on_backward = model, recipe, on_backward
        self.optimizer = _make_optimizer(recipe, model)
        self.dtype = model.layers[0].weight.dtype
        self.named = list(model.named_parameters())

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradients of the last step, by parameter name."""
        return {name: p.grad.data for name, p in self.named if p.grad is not None}

    def parameters(self) -> dict[str, np.ndarray]:
        """The parameters' current values, by name."""
        return {name: p.data for name, p in self.named}

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.model.logits(Tensor(x, dtype=self.dtype)).cross_entropy(y, reduction=self.recipe.reduction)
        self.optimizer.zero_grad()
        loss.backward()
        if self.on_backward is not None:
            self.on_backward(loss)
        self.optimizer.step()

    def sync(self) -> None:
        """Nothing to copy: the optimizer updates the model's own parameters."""


Flow = tuple[dict[str, float], dict[str, float]]  # (gradient norms, update ratios) by parameter name


def run_epoch(stepper: Any, recipe: Recipe, x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None,
              first_step: int, total_steps: int, desc: str, progress: bool) -> Flow:
    """One pass over the training set, one ``stepper.step`` per batch (then ``stepper.sync()``); ``rng`` shuffles
    (None keeps the order), ``first_step`` and ``total_steps`` place the epoch in the lr schedule.

    Returns the gradient flow: (parameter name -> mean gradient norm over the steps, name -> |update| /
    |parameter| of the last step). A norm is one dot product per parameter and step (about 1% of a step); the
    last step's update needs a copy of the parameters, once per epoch.
    """
    n_steps = math.ceil(len(x) / recipe.batch_size)
    bar = progress_bar(n_steps, desc, "batch", progress)
    norm_sums: dict[str, float] = {}
    ratios: dict[str, float] = {}
    try:
        for k, (x_batch, y_batch) in enumerate(batches(x, y, recipe.batch_size, shuffle=rng is not None, seed=rng)):
            last = k == n_steps - 1
            before = {name: p.copy() for name, p in stepper.parameters().items()} if last else None
            stepper.step(x_batch, y_batch, _lr_at(recipe, first_step + k, total_steps))
            with quiet():  # a diverging run's norms overflow to inf: that is the honest figure
                for name, g in stepper.gradients().items():
                    g = g.ravel(order="K")  # no copy, whatever the layout (nn.Linear's weights are column-major)
                    norm_sums[name] = norm_sums.get(name, 0.0) + math.sqrt(float(np.dot(g, g)))
            if last:
                with quiet():
                    ratios = {name: _relative_change(p, before[name]) for name, p in stepper.parameters().items()}
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    stepper.sync()
    return {name: total / n_steps for name, total in norm_sums.items()}, ratios


def _relative_change(after: np.ndarray, before: np.ndarray) -> float:
    size = float(np.linalg.norm(before))
    return float(np.linalg.norm(after - before)) / size if size else 0.0


# ----------------------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------------------


def train(model: MLP, x: np.ndarray, y: np.ndarray, recipe: Recipe, *,
          test: tuple[np.ndarray, np.ndarray] | None = None, stepper: Any = None, seed: int | None = None,
          progress: bool = True, log: Log | None = print, label: str = "autograd",
          on_backward: OnBackward | None = None) -> TrainResult:
    """Train ``model`` on rows ``x`` (see ``prepare``) and integer labels ``y`` following ``recipe``.

    Prints through ``log`` (``None`` for silence): ``Epoch n, current loss: L`` before each epoch (L is the
    training-set loss at that point, in the recipe's reduction), ``Final loss: L``, then ``Score: a / b = x%``
    for the training set and for ``test``. ``seed`` drives the shuffling only (the model is already
    initialised, see ``build_model``). ``stepper`` makes the steps (default ``AutogradStepper``); ``label``
    names it in the result. ``on_backward(loss)`` is called at every step between the backward and the
    optimizer's step, e.g. ``viz.TrainingRecorder(model).record`` (autograd's stepper only: a hand-written
    backward has no graph to watch).
    """
    say = log or (lambda line: None)
    _check_data(model, x, y, "x, y")
    if test is not None:
        _check_data(model, *test, "test")
    if stepper is not None and on_backward is not None:
        raise ValueError("train: on_backward is called by autograd's stepper; a stepper of your own calls what it "
                         "needs itself")
    stepper = AutogradStepper(model, recipe, on_backward) if stepper is None else stepper
    # A child of the seed: build_model draws the initial weights from the seed itself, shuffling gets its own stream.
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]) if recipe.shuffle else None
    shift, scale = (float(x.mean()), float(x.std()) or 1.0) if recipe.standardize else (0.0, 1.0)
    xs = _standardized(x, shift, scale)
    test_s = None if test is None else (_standardized(test[0], shift, scale), test[1])
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    loss, _ = evaluate(model, xs, y, recipe.reduction)
    result = TrainResult(model=model, recipe=recipe, backend=label, seed=seed, initial_loss=loss,
                         n_train=len(x), n_test=None if test is None else len(test[0]))
    for epoch in range(1, recipe.epochs + 1):
        say(f"Epoch {epoch}, current loss: {loss}")
        start = time.perf_counter()
        grad_norms, update_ratios = run_epoch(stepper, recipe, xs, y, rng, (epoch - 1) * steps_per_epoch,
                                              recipe.epochs * steps_per_epoch, f"epoch {epoch}/{recipe.epochs}",
                                              progress)
        seconds = time.perf_counter() - start
        if epoch == recipe.epochs and recipe.standardize:
            fold_standardization(model, shift, scale)
            xs, test_s = x, test  # the folded model takes pixel / 255: its scores are measured on those
        loss, result.train_correct = evaluate(model, xs, y, recipe.reduction)
        result.test_correct = None if test_s is None else evaluate(model, *test_s)[1]
        result.history.append(EpochStats(epoch, loss, result.train_accuracy, result.test_accuracy, seconds,
                                         grad_norms, update_ratios))
        result.seconds += seconds
        if not math.isfinite(loss) or loss > DIVERGED * result.initial_loss:  # say so instead of going on
            result.diverged = True
            say(f"Training diverged: the loss is {loss:.4g} after epoch {epoch} (it started at "
                f"{result.initial_loss:.4g}); stopped. Try a smaller learning rate (this run used lr {recipe.lr:g}).")
            break
    say(f"Final loss: {loss}")
    say(f"{format_score(result.train_correct, result.n_train)}  (train)")
    if result.n_test is not None:
        say(f"{format_score(result.test_correct or 0, result.n_test)}  (test)")
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


def fold_standardization(model: MLP, shift: float, scale: float) -> None:
    """Make layer 0 take raw inputs: ((x - m) / s) @ W.T + b == x @ (W / s).T + (b - (m / s) * W.sum(1))."""
    layer = model.layers[0]
    w, b = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    layer.copy_(w / scale, b - (shift / scale) * w.sum(axis=1))
