"""Initialisers, as ``torch.nn.init``: each fills a Tensor in place (keeping its dtype) and returns it, with
PyTorch's bounds (xavier: gain * sqrt(6 / (fan_in + fan_out)); kaiming: gain * sqrt(3 / fan)). The random ones
draw from the generator ``manual_seed`` seeds, or from ``generator=``.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import no_grad
from ..tensors import Tensor, default_generator

__all__ = ["calculate_gain", "kaiming_uniform_", "normal_", "ones_", "uniform_", "xavier_uniform_", "zeros_"]


def _fill(t: Tensor, values: np.ndarray | float, op: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(t).__name__}")
    with no_grad():  # in place, as torch.nn.init: an optimizer holding ``t`` keeps working; its version grows
        return t.assign(values)


def _fans(t: Tensor, op: str) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"{op}: fan in and fan out need a tensor of at least 2 dimensions, got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def _generator(generator: np.random.Generator | None) -> np.random.Generator:
    return default_generator() if generator is None else generator


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, *, generator: np.random.Generator | None = None) -> Tensor:
    """Fill ``t`` with samples of U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: a ({a}) must not exceed b ({b})")
    return _fill(t, _generator(generator).uniform(a, b, np.shape(t.data)), "uniform_")


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, *,
            generator: np.random.Generator | None = None) -> Tensor:
    """Fill ``t`` with samples of N(mean, std^2)."""
    if not std >= 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill(t, _generator(generator).normal(mean, std, np.shape(t.data)), "normal_")


def zeros_(t: Tensor) -> Tensor:
    """Fill ``t`` with 0."""
    return _fill(t, 0, "zeros_")


def ones_(t: Tensor) -> Tensor:
    """Fill ``t`` with 1."""
    return _fill(t, 1, "ones_")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gains: 1 for linear, conv and sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope ``param``, default 0.01), 3/4 for selu."""
    fixed = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0,
             "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}
    if nonlinearity in fixed:
        return fixed[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r} (one of {sorted(fixed)} or "
                     "'leaky_relu')")


def xavier_uniform_(t: Tensor, gain: float = 1.0, *, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot's uniform init: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    if t.size == 0:  # nothing to fill (and both fans may be 0), as PyTorch
        return t
    bound = math.sqrt(3.0) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))  # PyTorch's order of operations
    return uniform_(t, -bound, bound, generator=generator)


def kaiming_uniform_(t: Tensor, a: float = 0.0, nonlinearity: str = "leaky_relu", *, mode: str = "fan_in",
                     generator: np.random.Generator | None = None) -> Tensor:
    """He's uniform init: U(-b, b) with b = gain * sqrt(3 / fan), gain = ``calculate_gain(nonlinearity, a)``.

    ``a`` is the negative slope of the leaky_relu that follows. PyTorch's ``Linear`` and ``Conv2d`` use
    ``a=sqrt(5)``, which makes b = 1 / sqrt(fan_in).
    """
    fan_in, fan_out = _fans(t, "kaiming_uniform_")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if t.size == 0:  # nothing to fill (and a fan may be 0), as PyTorch
        return t
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * (calculate_gain(nonlinearity, a) / math.sqrt(fan))  # PyTorch's order of operations
    return uniform_(t, -bound, bound, generator=generator)
