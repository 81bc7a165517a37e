"""Functions of Tensors named as ``torch.nn.functional`` (import as ``F``), so PyTorch code reads the same.

Each is the Tensor method of the same meaning (``F.relu(x)`` is ``x.relu()``); the layers of ``layers.py`` call
these. Arguments that are not Tensors (NumPy arrays, lists) are wrapped as constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import ops
from ..tensors import Tensor, reduce_loss

__all__ = [
    "binary_cross_entropy", "conv2d", "cross_entropy", "dropout", "gelu", "leaky_relu", "linear", "log_softmax",
    "max_pool2d", "mse_loss", "relu", "sigmoid", "softmax", "softplus", "tanh",
]


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



# -- attention (nn/attention.py) -------------------------------------------------------------------------------
from .attention import scaled_dot_product_attention  # noqa: E402 - attention.py builds on the functions above

__all__ += ["scaled_dot_product_attention"]
