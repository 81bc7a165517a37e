"""Functions of Tensors named as ``torch.nn.functional`` (import as ``F``), so PyTorch code reads the same.

Each is the Tensor method of the same meaning (``F.relu(x)`` is ``x.relu()``); the layers of ``layers.py`` call
these. Arguments that are not Tensors (NumPy arrays, lists) are wrapped as constants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ops
from ..engine import no_grad
from ..tensors import Tensor, reduce_loss

__all__ = [
    "binary_cross_entropy", "conv2d", "cross_entropy", "dropout", "gelu", "leaky_relu", "linear", "log_softmax",
    "max_pool2d", "mse_loss", "relu", "sigmoid", "softmax", "softplus", "tanh",
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


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of (N, C) logits (not probabilities) against integer labels (N,) or probabilities (N, C)."""
    return _tensor(logits).cross_entropy(target, reduction)


def mse_loss(x: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(x - target)^2, averaged (``"mean"``), summed (``"sum"``) or per element (``"none"``)."""
    x = _tensor(x)
    target = _tensor(target)
    if target.shape != x.shape:  # PyTorch broadcasts with a warning; a mismatch is nearly always a bug
        raise ValueError(f"mse_loss: target shape {target.shape} differs from input shape {x.shape}")
    return reduce_loss((x - target).square(), reduction, "mse_loss")


def binary_cross_entropy(x: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)) of probabilities ``x`` against targets t in [0, 1]
    (``Tensor.binary_crossentropy``)."""
    return _tensor(x).binary_crossentropy(target, reduction)



# ----------------------------------------------------------------------------------------------------------
# Layers of today's lessons: embedding, normalisations, SiLU and ELU, conv1d, average pooling and padding, with
# PyTorch's signatures. Composed from Tensor operations (embedding is one rule), so first and second derivatives
# come from the engine and to_onnx traces them.
# ----------------------------------------------------------------------------------------------------------

__all__ += [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv1d", "elu", "embedding", "group_norm", "layer_norm",
    "pad", "rms_norm", "silu",
]


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
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
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
