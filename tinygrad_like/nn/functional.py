"""Functions of Tensors named as ``torch.nn.functional`` (import as ``F``), so PyTorch code reads the same.

Each is the Tensor method of the same meaning (``F.relu(x)`` is ``x.relu()``); the layers of ``layers.py`` call
these. Arguments that are not Tensors (NumPy arrays, lists) are wrapped as constants.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ops
from .._checks import is_int
from ..engine import no_grad
from ..tensors import Tensor, reduce_loss, refuse_probabilities

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv1d", "conv2d", "cross_entropy", "dropout", "elu", "embedding", "gelu", "group_norm", "l1_loss", "layer_norm",
    "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "one_hot", "pad", "relu", "rms_norm",
    "scaled_dot_product_attention", "sigmoid", "silu", "smooth_l1_loss", "softmax", "softplus", "tanh",
]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); ``inplace=True`` writes the result into ``input`` (recorded, see ``_inplace``)."""
    return _inplace(input, Tensor.relu, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else ``negative_slope * x``."""
    return _inplace(input, lambda x: x.leaky_relu(negative_slope), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), the exact (erf) form (``approximate='none'``, PyTorch's default), or its tanh approximation
    ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate='tanh'``)."""
    x = _tensor(input)
    if approximate == "none":
        return x.gelu()
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))).tanh())


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    return ops.Softplus.apply(_tensor(input), beta=beta, threshold=threshold)


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


# ----------------------------------------------------------------------------------------------------------
# Layers of today's lessons: embedding, normalisations, SiLU and ELU, conv1d, average pooling and padding, with
# PyTorch's signatures. Composed from Tensor operations (embedding is one rule), so first and second derivatives
# come from the engine and to_onnx traces them.
# ----------------------------------------------------------------------------------------------------------


def _inplace(input: Any, fn: Callable[[Tensor], Tensor], inplace: bool) -> Tensor:
    """``fn(input)``, or with ``inplace=True`` ``input`` overwritten by it (PyTorch's ``inplace=``): recorded as
    every in-place change, so gradients stay right, and refused on a leaf that requires grad, as in PyTorch.
    ``fn`` then reads a copy, which its backward may keep while ``input`` changes."""
    if not inplace:
        return fn(_tensor(input))
    if not isinstance(input, Tensor):
        raise TypeError(f"inplace=True needs a Tensor input, got {type(input).__name__}")
    return input.assign(fn(input.clone()))


def _not_supported(op: str, **given: Any) -> None:
    """Refuse PyTorch arguments this library does not implement, each by name, when not at their default."""
    for name, (value, default) in given.items():
        if value != default:
            raise NotImplementedError(f"{op}: {name}={value!r} is not supported (only {name}={default!r})")


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """The rows of ``weight`` (num_embeddings, embedding_dim) picked by the integer ``input`` of any shape: an
    output of shape ``input.shape + (embedding_dim,)``, the same as ``weight[input]``, as one op (an ONNX Gather).

    The row ``padding_idx`` (negative counts from the end) gets no gradient. ``sparse`` is accepted; gradients
    are dense (the same numbers).
    """
    _not_supported("embedding", max_norm=(max_norm, None), scale_grad_by_freq=(scale_grad_by_freq, False))
    indices = input if isinstance(input, Tensor) else Tensor(np.asarray(input))
    if padding_idx is not None:
        rows = weight.shape[0]
        if not -rows <= padding_idx < rows:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {rows} embeddings")
        padding_idx %= rows
    return ops.Embedding.apply(weight, indices, padding_idx=padding_idx)


def _channels(x: Tensor, op: str, **per_channel: Tensor | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For (N, C, ...) input: the axes of everything but the channels, and the shape that puts a (C,) vector on
    the channel axis; every per-channel tensor given must be (C,)."""
    if x.ndim < 2:
        raise ValueError(f"{op}: expects input of shape (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    for name, t in per_channel.items():
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} does not fit the {c} channels of input shape "
                             f"{x.shape}")
    return (0, *range(2, x.ndim)), (1, c) + (1,) * (x.ndim - 2)


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...] | None = None) -> Tensor:
    """x * weight + bias, each optional, reshaped to ``shape`` first when given."""
    if weight is not None:
        x = x * (weight if shape is None else weight.reshape(shape))
    if bias is not None:
        x = x + (bias if shape is None else bias.reshape(shape))
    return x


def _normalise(x: Tensor, axes: tuple[int, ...], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """((x - mean) / sqrt(var + eps), mean, var) over ``axes``, var the biased (population) variance."""
    mean = x.mean(axes, keepdim=True)
    centred = x - mean
    var = centred.square().mean(axes, keepdim=True)
    return centred / (var + eps).sqrt(), mean, var


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation of (N, C, ...) input per channel C: (x - mean) / sqrt(var + eps) * weight + bias.

    ``training=True``: mean and (biased) var of this batch, over every axis but C; the running statistics, when
    given, move towards them in place: running = (1 - momentum) * running + momentum * batch value, with the
    unbiased variance (n / (n - 1)), as PyTorch. ``training=False``: the running statistics are used instead.
    """
    x = _tensor(input)
    axes, shape = _channels(x, "batch_norm", running_mean=running_mean, running_var=running_var, weight=weight,
                            bias=bias)
    if training:
        count = x.size // x.shape[1]
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input shape "
                             f"{x.shape}")
        out, mean, var = _normalise(x, axes, eps)
        with no_grad():  # statistics, not part of the graph
            for running, value in ((running_mean, mean.data), (running_var, var.data * (count / (count - 1)))):
                if running is not None:
                    running.assign(momentum * value.reshape(-1) + (1 - momentum) * running.data)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be given outside training "
                             "(training=False)")
        out = (x - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    return _affine(out, weight, bias, shape)


def _trailing(x: Tensor, normalized_shape: int | Sequence[int], op: str) -> tuple[int, ...]:
    """The axes of ``normalized_shape``, which must be the last sizes of ``x``'s shape."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape or tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"{op}: normalized_shape {list(shape)} must be the last sizes of the input's shape, got "
                         f"input shape {x.shape}")
    return tuple(range(-len(shape), 0))


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over the last axes, those of
    ``normalized_shape`` (the shape of weight and bias)."""
    x = _tensor(input)
    return _affine(_normalise(x, _trailing(x, normalized_shape, "layer_norm"), eps)[0], weight, bias)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """The C channels of (N, C, ...) input in ``num_groups`` groups of consecutive channels, each normalised over
    its channels and every other axis but N, then * weight + bias per channel."""
    x = _tensor(input)
    _, shape = _channels(x, "group_norm", weight=weight, bias=bias)
    if num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: the {x.shape[1]} channels of input shape {x.shape} cannot be split into "
                         f"{num_groups} groups")
    grouped = x.reshape(x.shape[0], num_groups, -1)
    return _affine(_normalise(grouped, (2,), eps)[0].reshape(x.shape), weight, bias, shape)


def rms_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight, the mean over the last axes (those of ``normalized_shape``);
    ``eps=None`` is the machine epsilon of the input's dtype, as PyTorch."""
    x = _tensor(input)
    axes = _trailing(x, normalized_shape, "rms_norm")
    eps = float(np.finfo(x.dtype if x.dtype.kind == "f" else np.float32).eps) if eps is None else eps
    return _affine(x / (x.square().mean(axes, keepdim=True) + eps).sqrt(), weight, None)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _inplace(input, lambda x: x * x.sigmoid(), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1); written relu(x) + alpha * expm1(min(x, 0)), so that no branch
    overflows and the gradient at 0 is alpha, as PyTorch's."""
    return _inplace(input, lambda x: x.relu() + alpha * x.clip(None, 0).expm1(), inplace)


def _single(value: int | Sequence[int], what: str) -> int:
    """An int or a one-element sequence of one, for conv1d's arguments."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not is_int(value):
        raise TypeError(f"conv1d: {what} must be an int or a 1-tuple of one, got {value!r}")
    return int(value)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of (N, C, L) (or unbatched (C, L)) input with weight (out_channels, C, k): conv2d on
    the input seen as (N, C, 1, L)."""
    _not_supported("conv1d", dilation=(_single(dilation, "dilation"), 1), groups=(groups, 1))
    x = _tensor(input)
    if x.ndim not in (2, 3) or weight.ndim != 3:
        raise ValueError(f"conv1d: expects input (N, C, L) or (C, L) and weight (out_channels, C, k), got shapes "
                         f"{x.shape} and {tuple(weight.shape)}")
    batched = x if x.ndim == 3 else x.unsqueeze(0)
    out = batched.unsqueeze(2).conv2d(weight.unsqueeze(2), bias, (1, _single(stride, "stride")),
                                      (0, _single(padding, "padding"))).squeeze(2)
    return out if x.ndim == 3 else out.squeeze(0)


def _windows_matrix(starts: np.ndarray, ends: np.ndarray, size: int, divisors: np.ndarray, dtype: Any) -> Tensor:
    """The (outputs, size) matrix that averages each window [start, end) of an axis of ``size``: 1 / divisor on
    the window's positions inside the axis (padding contributes zeros)."""
    positions = np.arange(size)
    inside = (positions >= starts[:, None]) & (positions < ends[:, None])
    return Tensor(inside / divisors[:, None], dtype=dtype)


def _images(input: Any, op: str) -> Tensor:
    """The (N, C, H, W) or (C, H, W) input of a pooling, as a Tensor. Poolings here average windows that are
    products of a window of rows and one of columns, so they are ``rows @ x @ cols.T`` with two constant
    matrices (``_windows_matrix``): matmul gives them both derivatives and their ONNX form."""
    x = _tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expects input of shape (N, C, H, W) or (C, H, W), got shape {x.shape}")
    return x


def avg_pool2d(input: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """The mean of each ``kernel_size`` window of (N, C, H, W) or (C, H, W) input, moved by ``stride`` (default:
    ``kernel_size``) over the input zero-padded by ``padding`` (at most half the kernel). The divisor is the
    window's size, padding included (``count_include_pad``) or not, or ``divisor_override``; ``ceil_mode``
    keeps a last partial window that starts inside the input or its left padding, as PyTorch."""
    x = _images(input, "avg_pool2d")
    kernel = ops.int_pair(kernel_size, "kernel_size", "avg_pool2d", 1)
    step = kernel if stride is None or stride == [] else ops.int_pair(stride, "stride", "avg_pool2d", 1)
    pads = ops.int_pair(padding, "padding", "avg_pool2d", 0)
    if any(2 * p > k for p, k in zip(pads, kernel)):
        raise ValueError(f"avg_pool2d: padding {pads} must be at most half of kernel_size {kernel}")
    if divisor_override is not None and divisor_override < 1:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    matrices = []
    for axis, (size, k, s, p) in enumerate(zip(x.shape[-2:], kernel, step, pads)):
        span = size + 2 * p - k
        if span < 0:
            raise ValueError(f"avg_pool2d: kernel {kernel} is larger than the padded input (input shape {x.shape}, "
                             f"padding {pads})")
        count = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (count - 1) * s >= size + p:  # a last window starting in the right padding is dropped
            count -= 1
        starts = np.arange(count) * s - p
        ends = np.minimum(starts + k, size + p)  # windows end at the padding's edge
        inside_starts, inside_ends = np.maximum(starts, 0), np.minimum(ends, size)
        divisors = ((ends - starts) if count_include_pad else (inside_ends - inside_starts)).astype(np.float64)
        if divisor_override is not None:  # all of it in the rows' matrix
            divisors = np.full(count, float(divisor_override) if axis == 0 else 1.0)
        matrices.append(_windows_matrix(inside_starts, inside_ends, size, divisors, x.dtype))
    rows, cols = matrices
    return rows @ x @ cols.T


def adaptive_avg_pool2d(input: Tensor, output_size: int | None | Sequence[int | None]) -> Tensor:
    """The mean of (N, C, H, W) or (C, H, W) input over an (out_h, out_w) grid of windows, PyTorch's: window i of
    an axis of size n covers [floor(i n / out), ceil((i + 1) n / out)), so any sizes work (``None``: keep the
    input's size)."""
    x = _images(input, "adaptive_avg_pool2d")
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
    matrices = []
    for size, out in zip(x.shape[-2:], sizes):
        out = size if out is None else out
        if isinstance(out, bool) or not isinstance(out, (int, np.integer)) or out < 1:
            raise ValueError(f"adaptive_avg_pool2d: output_size must hold positive ints or None, got {output_size!r}")
        i = np.arange(out)
        starts, ends = (i * size) // out, -((-(i + 1) * size) // out)
        matrices.append(_windows_matrix(starts, ends, size, (ends - starts).astype(np.float64), x.dtype))
    rows, cols = matrices
    return rows @ x @ cols.T


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}  # PyTorch's names -> np.pad's


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """``input`` padded by ``pad`` = (left, right) for the last axis, then (top, bottom) for the one before, ...
    (PyTorch's order: last axis first). ``mode="constant"`` fills with ``value`` (0), and a negative width cuts;
    ``"reflect"``, ``"replicate"`` and ``"circular"`` repeat the input's own values (gradients add up where a
    value is used several times), for 1, 2 or 3 padded axes of inputs with one or two more axes, as PyTorch."""
    x = _tensor(input)
    widths = [int(w) for w in pad]
    if len(widths) % 2 or len(widths) // 2 > x.ndim:
        raise ValueError(f"pad: pad {tuple(pad)} must hold (before, after) pairs for at most {x.ndim} axes "
                         f"(input shape {x.shape})")
    pairs = [(0, 0)] * (x.ndim - len(widths) // 2) + [(widths[i], widths[i + 1]) for i in
                                                      range(len(widths) - 2, -1, -2)]
    if mode == "constant":
        if any(w < 0 for w in widths):  # negative widths cut the input
            x = x[tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in pairs)]
            pairs = [(max(b, 0), max(a, 0)) for b, a in pairs]
        return ops.Pad.apply(x, pad_width=tuple(pairs), constant_values=0 if value is None else value)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    padded = len(widths) // 2
    if padded > 3 or x.ndim not in (padded + 1, padded + 2):
        raise ValueError(f"pad: mode {mode!r} pads 1, 2 or 3 last axes of an input with one or two more axes; "
                         f"got {padded} padded axes for input shape {x.shape}")
    for axis, ((before, after), size) in enumerate(zip(pairs, x.shape)):
        if before or after:
            limit = {"reflect": size - 1, "circular": size}.get(mode, math.inf)  # replicate: any width
            if min(before, after) < 0 or max(before, after) > limit or size == 0:
                raise ValueError(f"pad: mode {mode!r} needs widths from 0 to {limit} for axis {axis} of input shape "
                                 f"{x.shape}, got {(before, after)}")
            index = np.pad(np.arange(size), (before, after), mode=_PAD_MODES[mode])
            x = x[(slice(None),) * axis + (index,)]
    return x


from .attention import scaled_dot_product_attention  # noqa: E402 - attention.py builds on the functions above
