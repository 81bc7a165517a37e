"""Normalisation layers with PyTorch's signatures, parameters, buffers and state_dict keys: BatchNorm1d,
BatchNorm2d, LayerNorm, GroupNorm, RMSNorm. The computations are the functions of functional.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import no_grad
from ..tensors import Tensor
from . import functional as F
from .args import check_int, check_real, dtype_config, factory_dtype
from .module import Module, Parameter


def _shape(normalized_shape: int | Sequence[int], op: str) -> tuple[int, ...]:
    """``normalized_shape`` (an int or a sequence of ints) as a tuple of positive ints."""
    sizes = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    return tuple(check_int(n, "normalized_shape", op) for n in sizes)


def _affine_parameters(shape: tuple[int, ...], weight: bool, bias: bool,
                       dtype: np.dtype) -> tuple[Parameter | None, Parameter | None]:
    """A weight of ones and a bias of zeros of ``shape`` and ``dtype``, each only if asked for."""
    return (Parameter(np.ones(shape, dtype)) if weight else None, Parameter(np.zeros(shape, dtype)) if bias else None)


class _BatchNorm(Module):
    """Batch normalisation over the channels (axis 1): the batch's statistics in training, and the running ones
    (updated in training) in evaluation; see ``F.batch_norm``.

    ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers ``running_mean`` (zeros), ``running_var``
    (ones) and ``num_batches_tracked`` (int64) when ``track_running_stats``. ``momentum=None`` makes the running
    statistics the plain average of all batches seen (1 / num_batches_tracked as momentum), as PyTorch.
    """

    dims: tuple[int, ...] = ()  # the input's allowed numbers of axes

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        op = type(self).__name__
        dtype = factory_dtype(dtype, device, op)
        self.num_features = check_int(num_features, "num_features", op)
        self.eps = check_real(eps, "eps", op)
        self.momentum = None if momentum is None else check_real(momentum, "momentum", op)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight, self.bias = _affine_parameters((self.num_features,), self.affine, self.affine and bias, dtype)
        tracked = self.track_running_stats
        self.register_buffer("running_mean", Tensor.zeros(self.num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", Tensor.ones(self.num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64)) if tracked else None)

    def forward(self, input: Tensor) -> Tensor:
        if np.ndim(input) not in self.dims:
            wanted = " or ".join(f"{n}D" for n in self.dims)
            raise ValueError(f"{type(self).__name__}: expected {wanted} input, got shape {np.shape(input)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative average
                momentum = 1.0 / int(self.num_batches_tracked.item())
        batch_statistics = self.training or not self.track_running_stats
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, batch_statistics,
                            momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def config(self) -> dict[str, Any]:
        """The constructor arguments (``bias`` only when False, so that older PyTorch versions read it too)."""
        config = {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                  "affine": self.affine, "track_running_stats": self.track_running_stats, **dtype_config(self)}
        return config if not self.affine or self.bias is not None else {**config, "bias": False}


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input (see ``_BatchNorm``), as PyTorch's."""

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input (see ``_BatchNorm``), as PyTorch's."""

    dims = (4,)


class LayerNorm(Module):
    """Each sample normalised over its last axes (those of ``normalized_shape``), then * weight + bias (ones and
    zeros of ``normalized_shape``, when ``elementwise_affine``; no bias when ``bias=False``); see ``F.layer_norm``."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        dtype = factory_dtype(dtype, device, "LayerNorm")
        self.normalized_shape = _shape(normalized_shape, "LayerNorm")
        self.eps, self.elementwise_affine = check_real(eps, "eps", "LayerNorm"), bool(elementwise_affine)
        self.weight, self.bias = _affine_parameters(self.normalized_shape, self.elementwise_affine,
                                                    self.elementwise_affine and bias, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias is not None, **dtype_config(self)}


class GroupNorm(Module):
    """The channels of (N, C, ...) input in ``num_groups`` groups, each normalised per sample, then * weight + bias
    per channel (ones and zeros, when ``affine``); see ``F.group_norm``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        dtype = factory_dtype(dtype, device, "GroupNorm")
        self.num_groups = check_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = check_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.eps, self.affine = check_real(eps, "eps", "GroupNorm"), bool(affine)
        self.weight, self.bias = _affine_parameters((self.num_channels,), self.affine, self.affine and bias, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments (``bias`` only when False)."""
        config = {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                  "affine": self.affine, **dtype_config(self)}
        return config if not self.affine or self.bias is not None else {**config, "bias": False}


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) * weight, the mean over the last axes (those of ``normalized_shape``); ``eps=None``
    is the input dtype's machine epsilon; weight of ones when ``elementwise_affine``. See ``F.rms_norm``."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        dtype = factory_dtype(dtype, device, "RMSNorm")
        self.normalized_shape = _shape(normalized_shape, "RMSNorm")
        self.eps = None if eps is None else check_real(eps, "eps", "RMSNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = _affine_parameters(self.normalized_shape, self.elementwise_affine, False, dtype)[0]

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, **dtype_config(self)}
