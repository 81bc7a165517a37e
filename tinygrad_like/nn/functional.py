"""Functions of Tensors named as ``torch.nn.functional`` (import as ``F``), so PyTorch code reads the same.

Each is the Tensor method of the same meaning (``F.relu(x)`` is ``x.relu()``); the layers of ``layers.py`` call
these. Arguments that are not Tensors (NumPy arrays, lists) are wrapped as constants.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..tensors import Tensor, reduce_loss, refuse_probabilities

__all__ = [
    "binary_cross_entropy", "conv2d", "cross_entropy", "dropout", "gelu", "leaky_relu", "linear", "log_softmax",
    "max_pool2d", "mse_loss", "relu", "sigmoid", "softmax", "softplus", "tanh",
]
# -- losses (PyTorch's signatures) -------------------------------------------------------------------------
__all__ += ["binary_cross_entropy_with_logits", "l1_loss", "nll_loss", "one_hot", "smooth_l1_loss"]
# -- end losses ---------------------------------------------------------------------------------------------


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return _tensor(x).relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope * x``."""
    return _tensor(x).leaky_relu(negative_slope)


def gelu(x: Tensor) -> Tensor:
    """x * Phi(x), the exact (erf) form (PyTorch's default ``approximate='none'``)."""
    return _tensor(x).gelu()


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x))."""
    return _tensor(x).softplus()


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return _tensor(x).sigmoid()


def tanh(x: Tensor) -> Tensor:
    """tanh(x)."""
    return _tensor(x).tanh()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``."""
    return _tensor(x).softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably."""
    return _tensor(x).log_softmax(dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features): one fused op (see ops.Linear)."""
    inputs = (_tensor(x), weight) if bias is None else (_tensor(x), weight, bias)
    return ops.Linear.apply(*inputs)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) input with weight (out_channels, C, kh, kw); see ``Tensor.conv2d``."""
    return _tensor(x).conv2d(weight, bias, stride, padding)


def max_pool2d(x: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> Tensor:
    """The maximum of each window of (N, C, H, W) input; ``stride`` defaults to ``kernel_size``."""
    return _tensor(x).max_pool2d(kernel_size, stride)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero elements with probability ``p``, scale the rest by 1 / (1 - p); the identity unless ``training``.
    Note that ``training`` defaults to True, as in PyTorch: inside a module pass ``self.training``."""
    return _tensor(x).dropout(p, training)


# ----------------------------------------------------------------------------------------------------------
# Losses, with torch.nn.functional's signatures (the loss modules of loss.py call these). Inputs to classify
# are (C,), (N, C) or (N, C, d1, ...): the classes on axis 1 (axis 0 when unbatched), as in PyTorch.
# ----------------------------------------------------------------------------------------------------------


def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None, size_average: bool | None = None,  # noqa: A002
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """-sum_c t_c log softmax(input)_c per sample, for logits (not probabilities) and a target of class indices
    (one-hot t, of the input's shape without the class axis) or of class probabilities (the input's shape).

    Class indices: the sample's loss is scaled by ``weight[y]`` and is 0 where y == ``ignore_index``; "mean"
    divides the sum by the sum of those weights (the count of samples not ignored). ``label_smoothing`` e mixes
    the target with the uniform distribution: (1 - e) t + e / C. Probabilities: t weighted by ``weight[c]``;
    "mean" divides by the number of samples. The plain case (no weight, smoothing or ignored sample) is one fused
    op (``ops.CrossEntropy``), the others are compositions of Tensor operations.
    """
    op = "cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x = _class_scores(input, op)
    refuse_probabilities(x, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    w = _class_weight(weight, x, op)
    classes = x.shape[1 if x.ndim > 1 else 0]
    t = _tensor(target)
    if t.shape == x.shape:  # class probabilities
        return _soft_cross_entropy(x, t, w, ignore_index, reduction, label_smoothing)
    labels = _class_indices(x, t, ignore_index, op)
    rows, keep = _class_rows(x), labels != ignore_index
    if w is None and not label_smoothing and keep.all():  # the plain case: one fused op, p - onehot backward
        losses = ops.CrossEntropy.apply(rows, Tensor(labels))
        return reduce_loss(losses.reshape(_sample_shape(x)) if reduction == "none" else losses, reduction, op)
    log_probs = rows.log_softmax(1)
    losses, weights = _negative_log_likelihood(log_probs, labels, keep, w)
    if label_smoothing:  # PyTorch's split: (1 - e) nll + e / C * (the loss against the uniform target)
        uniform = -(log_probs if w is None else log_probs * w).sum(1) * keep.astype(x.dtype)
        losses = (1 - label_smoothing) * losses + (label_smoothing / classes) * uniform
    return _weighted_reduction(losses, weights, reduction, _sample_shape(x), op)


def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None, size_average: bool | None = None,  # noqa: A002
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-weight[y] * input[y] per sample, for log-probabilities (e.g. of ``log_softmax``) and class indices y;
    0 where y == ``ignore_index``. "mean" divides the sum by the sum of the weights of the samples not ignored."""
    op = "nll_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x = _class_scores(input, op)
    w = _class_weight(weight, x, op)
    labels = _class_indices(x, target, ignore_index, op)
    losses, weights = _negative_log_likelihood(_class_rows(x), labels, labels != ignore_index, w)
    return _weighted_reduction(losses, weights, reduction, _sample_shape(x), op)


def mse_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2 per element, times ``weight`` if given ("mean" then divides by the weights' sum)."""
    x, t = _same_shape(input, target, "mse_loss")
    return _elementwise_reduction((x - t).square(), weight, _legacy_reduction(size_average, reduce, reduction),
                                  "mse_loss")


def l1_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target| per element, times ``weight`` if given ("mean" then divides by the weights' sum)."""
    x, t = _same_shape(input, target, "l1_loss")
    return _elementwise_reduction((x - t).abs(), weight, _legacy_reduction(size_average, reduce, reduction),
                                  "l1_loss")


def smooth_l1_loss(input: Tensor, target: Any, size_average: bool | None = None,  # noqa: A002
                   reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, for d = input - target (|d| when beta is 0):
    quadratic near 0, linear (robust to outliers) beyond ``beta``."""
    op = "smooth_l1_loss"
    if beta < 0:
        raise RuntimeError(f"{op}: beta must not be negative, got {beta}")
    x, t = _same_shape(input, target, op)
    d = x - t
    size = d.abs()
    losses = size if beta == 0 else (size < beta).where(0.5 * d.square() / beta, size - 0.5 * beta)
    return reduce_loss(losses, _legacy_reduction(size_average, reduce, reduction), op)


def binary_cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,  # noqa: A002
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-weight (t log p + (1 - t) log(1 - p)) for probabilities p and targets t in [0, 1], each log floored at
    -100 (as PyTorch; ``Tensor.binary_crossentropy``)."""
    op = "binary_cross_entropy"
    x, t = _same_shape(input, target, op)
    _check_float_target(t, op)
    if t.size and not (t.data.min() >= 0 and t.data.max() <= 1):
        raise RuntimeError(f"{op}: all elements of target should be between 0 and 1, got values from "
                           f"{t.data.min()} to {t.data.max()}")
    losses = x.binary_crossentropy(t, reduction="none")
    w = _element_weight(weight, x, "weight", op)
    return reduce_loss(losses if w is None else losses * w, _legacy_reduction(size_average, reduce, reduction), op)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Tensor | None = None,  # noqa: A002
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """-weight (pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) for logits x, computed as
    weight ((1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)): no overflow for any x, no log(0).
    ``pos_weight`` (one value per class, broadcast over the last axis) weighs the positive targets."""
    op = "binary_cross_entropy_with_logits"
    x, t = _same_shape(input, target, op)
    _check_float_target(t, op)
    w, pw = _element_weight(weight, x, "weight", op), _element_weight(pos_weight, x, "pos_weight", op)
    losses = (1 - t) * x + (-x).softplus() * (1 if pw is None else t * (pw - 1) + 1)
    return reduce_loss(losses if w is None else losses * w, _legacy_reduction(size_average, reduce, reduction), op)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """int64 zeros of shape (*tensor.shape, num_classes) with a 1 at each class index (``Tensor.one_hot``)."""
    return _tensor(tensor).one_hot(num_classes)


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """``reduction``, unless PyTorch's deprecated ``size_average``/``reduce`` are given: then their meaning (both
    default True: reduce=False is "none", else size_average chooses "mean" over "sum"), with PyTorch's warning."""
    if size_average is None and reduce is None:
        return reduction
    reduced = reduce is None or reduce
    reduction = ("mean" if size_average is None or size_average else "sum") if reduced else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  UserWarning, stacklevel=3)
    return reduction


def _class_scores(input: Any, op: str) -> Tensor:  # noqa: A002
    """The input of a classification loss: floating point scores of shape (C,), (N, C) or (N, C, d1, ...)."""
    x = _tensor(input)
    if x.ndim == 0:
        raise ValueError(f"{op}: expects input of shape (C,), (N, C) or (N, C, d1, ...), got shape ()")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: expects floating point input, got {x.dtype} (shape {x.shape})")
    return x


def _sample_shape(x: Tensor) -> tuple[int, ...]:
    """The shape of class indices (and of per-sample losses) for input ``x``: x's shape without its class axis."""
    return x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()


def _class_rows(x: Tensor) -> Tensor:
    """``x`` as (samples, C) rows, the class axis last: (N, C) as it is, (C,) as one row, (N, C, d1, ...) moved."""
    if x.ndim == 2:
        return x
    if x.ndim == 1:
        return x.reshape(1, -1)
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _class_indices(x: Tensor, target: Any, ignore_index: int, op: str) -> np.ndarray:
    """``target`` as a flat integer array of class indices, one per row of ``_class_rows(x)``: refused (as PyTorch)
    unless integer, of x's shape without the class axis, and each in [0, C) or ``ignore_index``."""
    labels = _tensor(target).data
    shape = _sample_shape(x)
    wrong_dtype = labels.dtype.kind not in "iu"
    if wrong_dtype or labels.shape != shape:
        probabilities = f" or class probabilities of the input's shape {x.shape}" if op == "cross_entropy" else ""
        raise (RuntimeError if wrong_dtype else ValueError)(
            f"{op}: target must be integer class indices of shape {shape}{probabilities}, got {labels.dtype} of "
            f"shape {labels.shape} (input shape {x.shape})")
    classes = x.shape[1 if x.ndim > 1 else 0]
    bad = ((labels < 0) | (labels >= classes)) & (labels != ignore_index)
    if bad.any():
        raise IndexError(f"{op}: Target {labels[bad].flat[0]} is out of bounds: the input (shape {x.shape}) has "
                         f"{classes} classes (ignore_index is {ignore_index})")
    return labels.reshape(-1)


def _constant(weight: Any, name: str, op: str) -> np.ndarray:
    """A weight these losses do not differentiate (as PyTorch, which refuses one that requires grad) as an array."""
    if isinstance(weight, Tensor):
        if weight.requires_grad:
            raise RuntimeError(f"{op}: {name} requires grad, but {op} is not differentiable with respect to its "
                               f"{name}; pass {name}.detach()")
        return weight.data
    return np.asarray(weight)


def _class_weight(weight: Any, x: Tensor, op: str) -> np.ndarray | None:
    """The class weights (C,), in x's dtype, or None."""
    if weight is None:
        return None
    w = _constant(weight, "weight", op)
    classes = x.shape[1 if x.ndim > 1 else 0]
    if w.shape != (classes,):
        raise RuntimeError(f"{op}: weight must hold one value per class, shape ({classes},), got shape {w.shape} "
                           f"(input shape {x.shape})")
    return w.astype(x.dtype)


def _element_weight(weight: Any, x: Tensor, name: str, op: str) -> np.ndarray | None:
    """A weight broadcast over the elements of ``x`` (e.g. one value per class, on the last axis), in x's dtype."""
    if weight is None:
        return None
    w = _constant(weight, name, op)
    try:
        fits = np.broadcast_shapes(w.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: {name} of shape {w.shape} cannot be broadcast to the input's shape {x.shape}")
    return w.astype(x.dtype)


def _negative_log_likelihood(log_probs: Tensor, labels: np.ndarray, keep: np.ndarray,
                             weight: np.ndarray | None) -> tuple[Tensor, np.ndarray]:
    """-w[y] log_probs[y] per row of (M, C) ``log_probs`` (0 where not ``keep``), and the weights w[y] (0 there)
    whose sum divides the losses' sum for "mean"."""
    safe = np.where(keep, labels, 0)  # an ignored sample reads class 0, then counts 0
    weights = (keep if weight is None else np.where(keep, weight[safe], 0)).astype(log_probs.dtype)
    return -(log_probs[np.arange(len(safe)), safe] * weights), weights


def _weighted_reduction(losses: Tensor, weights: np.ndarray, reduction: str, shape: tuple[int, ...],
                        op: str) -> Tensor:
    """Per-sample ``losses`` (flat): "mean" is their sum over the sum of ``weights`` (nan if that is 0, as PyTorch),
    "none" gives them in ``shape``."""
    if reduction == "mean":
        return losses.sum() / weights.sum()
    return reduce_loss(losses.reshape(shape) if reduction == "none" else losses, reduction, op)


def _soft_cross_entropy(x: Tensor, target: Tensor, weight: np.ndarray | None, ignore_index: int, reduction: str,
                        label_smoothing: float) -> Tensor:
    """Cross-entropy against class probabilities ``target`` of x's shape (see ``cross_entropy``)."""
    op = "cross_entropy"
    if target.dtype.kind != "f":
        raise RuntimeError(f"{op}: a target of the input's shape {x.shape} holds class probabilities and must be "
                           f"floating point, got {target.dtype}; class indices have shape {_sample_shape(x)}")
    if ignore_index >= 0:
        raise RuntimeError(f"{op}: ignore_index ({ignore_index}) is not supported for class probabilities "
                           f"(a floating point target)")
    rows, t = _class_rows(x), _class_rows(target)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / rows.shape[1]
    losses = ops.CrossEntropy.apply(rows, t) if weight is None else -(rows.log_softmax(1) * t * weight).sum(1)
    return reduce_loss(losses.reshape(_sample_shape(x)) if reduction == "none" else losses, reduction, op)


def _same_shape(input: Any, target: Any, op: str) -> tuple[Tensor, Tensor]:  # noqa: A002
    """``input`` and ``target`` as Tensors of one shape. PyTorch broadcasts different shapes with a warning for
    some losses; a mismatch is nearly always a bug ((N, 1) predictions against (N,) targets), so it is refused."""
    x, t = _tensor(input), _tensor(target)
    if t.shape != x.shape:
        raise ValueError(f"{op}: target shape {t.shape} differs from input shape {x.shape}")
    return x, t


def _check_float_target(target: Tensor, op: str) -> None:
    if target.dtype.kind != "f":
        raise RuntimeError(f"{op}: target must be floating point (probabilities), got {target.dtype} "
                           f"(shape {target.shape}); convert it with .float()")


def _elementwise_reduction(losses: Tensor, weight: Any, reduction: str, op: str) -> Tensor:
    """``losses`` reduced, each times ``weight`` (of their shape, differentiable) if given: "mean" is then the
    weighted sum over the sum of the weights (PyTorch's rule)."""
    if weight is None:
        return reduce_loss(losses, reduction, op)
    w = _tensor(weight)
    if w.shape != losses.shape:
        raise ValueError(f"{op}: weight shape {w.shape} differs from input shape {losses.shape}")
    losses = losses * w
    return losses.sum() / w.sum() if reduction == "mean" else reduce_loss(losses, reduction, op)


# -- attention (nn/attention.py) -------------------------------------------------------------------------------
from .attention import scaled_dot_product_attention  # noqa: E402 - attention.py builds on the functions above

__all__ += ["scaled_dot_product_attention"]

