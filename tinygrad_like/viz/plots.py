"""Plots of a training run (matplotlib, optional: the ``plot`` extra): loss, accuracy and the gradient flow.

``result`` is a ``train.TrainResult``, read by its fields (``history`` of epochs with ``loss``, accuracies,
``grad_norms`` and ``update_ratios``; ``initial_loss``, ``recipe``, ``backend``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._files import atomic_write


def _figure_api() -> tuple[Any, Any]:
    """matplotlib's Figure and MaxNLocator, or ImportError with install instructions (matplotlib is optional)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'tinygrad_like[plot]' "
                          "(or pip install matplotlib)") from None
    return Figure, MaxNLocator


def plot_history(result: Any, path: str | os.PathLike, title: str | None = None) -> None:
    """Save loss, accuracy and gradient-flow curves per epoch to ``path`` (PNG, SVG or PDF, by its extension),
    atomically.

    The third panel is the gradient flow: each weight's mean gradient norm per epoch, on a log scale (see
    ``plot_gradient_flow``). Raises ImportError with install instructions when matplotlib is missing. Uses
    matplotlib's object API (no pyplot), so it changes no global backend or state of the caller.
    """
    Figure, MaxNLocator = _figure_api()
    epochs = [0] + [h.epoch for h in result.history]
    fig = Figure(figsize=(15, 4), layout="constrained")
    loss_ax, acc_ax, flow_ax = fig.subplots(1, 3)
    loss_ax.plot(epochs, [result.initial_loss] + [h.loss for h in result.history], marker="o")
    kind = "summed" if result.recipe.reduction == "sum" else "mean"
    loss_ax.set(xlabel="epoch", ylabel=f"training loss ({kind} cross-entropy)", title="loss")
    acc_ax.plot(epochs[1:], [100 * h.train_accuracy for h in result.history], marker="o", label="train")
    if result.test_accuracy is not None:
        acc_ax.plot(epochs[1:], [100 * (h.test_accuracy or 0) for h in result.history], marker="o", label="test")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    acc_ax.legend()
    _draw_flow(flow_ax, result, "weight")
    for ax in (loss_ax, acc_ax, flow_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"{result.recipe.name} recipe, {result.backend} backend")
    _save_figure(fig, path)


def plot_gradient_flow(result: Any, path: str | os.PathLike, title: str | None = None) -> None:
    """Save the gradient flow of a training run to ``path``: per layer and epoch, the mean norm of the gradient
    the steps applied (left) and the relative size of the last update, |update| / |weight| (right), on log scales.

    What to read from it: gradients that shrink layer by layer towards the input (vanishing: sigmoid layers
    started from U(-1, 1) saturate, and their derivative s(1 - s) <= 1/4 multiplies at every layer), or layers
    whose updates are far below ~1e-3 of their weights (they barely learn) or far above (unstable).
    """
    Figure, MaxNLocator = _figure_api()
    fig = Figure(figsize=(10, 4), layout="constrained")
    norm_ax, ratio_ax = fig.subplots(1, 2)
    _draw_flow(norm_ax, result, "weight")
    _draw_flow(ratio_ax, result, "weight", ratios=True)
    for ax in (norm_ax, ratio_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title or f"gradient flow: {result.recipe.name} recipe, {result.backend} backend")
    _save_figure(fig, path)


def _draw_flow(ax: Any, result: Any, suffix: str, ratios: bool = False) -> None:
    """One line per parameter whose name ends in ``suffix``, epoch on x, log scale on y."""
    epochs = [h.epoch for h in result.history]
    names = [n for n in (result.history[0].grad_norms if result.history else {}) if n.endswith(suffix)]
    for name in names:
        values = [(h.update_ratios if ratios else h.grad_norms).get(name, float("nan")) for h in result.history]
        ax.plot(epochs, values, marker="o", label=name.removesuffix("." + suffix))
    what = "|update| / |weight|, last step" if ratios else "mean |gradient| of the weights"
    ax.set(xlabel="epoch", ylabel=what, title="update ratio" if ratios else "gradient flow")
    if names and all(v > 0 for h in result.history for v in (h.update_ratios if ratios else h.grad_norms).values()):
        ax.set_yscale("log")
    if names:
        ax.legend(fontsize=8)


def _save_figure(fig: Any, path: str | os.PathLike) -> None:
    with atomic_write(path) as f:  # a failed or interrupted save leaves no half-written picture
        fig.savefig(f, format=Path(path).suffix.lstrip(".").lower() or None)
