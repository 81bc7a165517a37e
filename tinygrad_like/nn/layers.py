"""Layers: Linear, Conv2d, MaxPool2d, Flatten, Dropout, the activations, Identity, Sequential, and MLP (fully
connected layers with an activation between them, softmax out). Names, arguments and defaults are PyTorch's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import no_grad
from ..ops import int_pair
from ..tensors import Tensor, default_generator
from . import functional as F
from . import init
from .module import Module


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features) as in PyTorch.

    Initialised as PyTorch does: weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)), drawn from
    ``rng`` or else from the generator ``Tensor.manual_seed`` seeds.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None) -> None:
        rng = rng or default_generator()
        if min(in_features, out_features) < 0:
            raise ValueError(f"Linear: in_features and out_features must be 0 or more, got {in_features} and "
                             f"{out_features}")
        bound = 1 / math.sqrt(in_features) if in_features else 0.0  # as PyTorch: no inputs, a zero bound
        self.in_features, self.out_features = in_features, out_features
        # (out, in) as PyTorch, held column-major: weight.T is then a row-major (in, out) matrix, the layout
        # BLAS multiplies fastest here (x @ W: 10-40% faster than x @ W.T at an MLP's shapes). Replacing the
        # values (load_state_dict, assign) keeps the layout.
        self.weight = Tensor(np.asfortranarray(rng.uniform(-bound, bound, (out_features, in_features)), np.float32),
                             requires_grad=True)
        self.bias = (Tensor(rng.uniform(-bound, bound, out_features).astype(np.float32), requires_grad=True)
                     if bias else None)

    def copy_(self, weight: Any, bias: Any = None) -> Linear:
        """Copy ``weight`` (out, in) and ``bias`` (out,) into the parameters, in place (their memory and layout
        kept, values cast to their dtype), outside the graph; returns self."""
        with no_grad():
            self.weight.assign(weight)
            if bias is not None:
                self.bias.assign(np.reshape(bias, -1))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """One fused ``linear`` op (see ops.Linear)."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias is not None else ", bias=False")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}


class Conv2d(Module):
    """y = conv2d(x, weight, bias, stride, padding) on (N, in_channels, H, W) input; weight of shape
    (out_channels, in_channels, kh, kw). ``kernel_size``, ``stride``, ``padding``: an int or (height, width).

    Initialised as PyTorch does: ``kaiming_uniform_(weight, a=sqrt(5))`` and the bias from U(-b, b), which both
    come to b = 1/sqrt(fan_in), fan_in = in_channels * kh * kw; drawn from ``rng`` or else from the generator
    ``Tensor.manual_seed`` seeds.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, bias: bool = True, *,
                 rng: np.random.Generator | None = None) -> None:
        self.kernel_size = int_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride, self.padding = int_pair(stride, "stride", "Conv2d", 1), int_pair(padding, "padding", "Conv2d", 0)
        if min(in_channels, out_channels) < 1:
            raise ValueError(f"Conv2d: in_channels and out_channels must be positive, got {in_channels} and "
                             f"{out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = Tensor.zeros(out_channels, in_channels, *self.kernel_size, requires_grad=True)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=rng)
        self.bias = None
        if bias:
            bound = 1 / math.sqrt(in_channels * math.prod(self.kernel_size))
            self.bias = init.uniform_(Tensor.zeros(out_channels, requires_grad=True), -bound, bound, generator=rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if any(self.padding) else ""
        return text + ("" if self.bias is not None else ", bias=False")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias is not None}


class MaxPool2d(Module):
    """The maximum of each ``kernel_size`` window of (N, C, H, W) input; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> None:
        int_pair(kernel_size, "kernel_size", "MaxPool2d", 1)
        if stride is not None:
            int_pair(stride, "stride", "MaxPool2d", 1)
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"kernel_size": self.kernel_size, "stride": self.stride}


class Flatten(Module):
    """``x.flatten(start_dim, end_dim)``; by default every axis but the first (the samples) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Dropout(Module):
    """In training (``module.train()``, the default) zero each element with probability ``p`` and scale the
    others by 1 / (1 - p); after ``module.eval()``, the identity. As PyTorch's ``nn.Dropout``."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"p": self.p}


class _NoArguments(Module):
    """A layer without constructor arguments (``config`` lets ``Module.load`` rebuild it)."""

    def config(self) -> dict[str, Any]:
        """No constructor arguments."""
        return {}


class ReLU(_NoArguments):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(_NoArguments):
    """1 / (1 + exp(-x))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(_NoArguments):
    """tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Identity(_NoArguments):
    """Returns its input (a placeholder, e.g. where an activation is optional); accepts and ignores arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, x: Tensor) -> Tensor:
        return x


class Softmax(Module):
    """softmax along ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"dim": self.dim}


class LogSoftmax(Softmax):
    """log_softmax along ``dim`` (what ``cross_entropy`` applies to logits; feed it logits, not these)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


class Sequential(Module):
    """Layers applied one after another; a layer is a Module or any callable (e.g. ``Tensor.sigmoid``)."""

    def __init__(self, *layers: Any) -> None:
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Any:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)


ACTIVATIONS = {"sigmoid": Tensor.sigmoid, "relu": Tensor.relu, "tanh": Tensor.tanh}


class MLP(Module):
    """Fully connected layers with ``activation`` between them and softmax on the output.

    Rows are samples; ``layers.i`` is a ``Linear`` with weight (n_out, n_in). ``mlp(x)`` gives class
    probabilities, ``mlp.logits(x)`` the output layer before softmax (what ``cross_entropy`` takes).
    ``seed`` makes the initial weights (PyTorch's Linear init) reproducible.
    """

    def __init__(self, layers: Sequence[int] = (784, 64, 32, 10), activation: str = "sigmoid",
                 seed: int | None = None, dtype: Any = np.float32) -> None:
        if len(layers) < 2 or min(int(n) for n in layers) < 1:
            raise ValueError(f"MLP: need at least two positive layer sizes (input and output), got {list(layers)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.sizes, self.activation = [int(n) for n in layers], activation
        rng = np.random.default_rng(seed)
        self.layers = [Linear(n_in, n_out, rng=rng) for n_in, n_out in zip(self.sizes, self.sizes[1:])]
        for p in self.parameters():
            p.data = p.data.astype(dtype)

    def logits(self, x: Tensor) -> Tensor:
        """The output layer before softmax (tagged as this MLP's call, so drawings show the network's cluster)."""
        act, h = ACTIVATIONS[self.activation], x
        for layer in self.layers[:-1]:
            h = act(layer(h))
        return self.mark_call(self.layers[-1](h), x)

    def forward(self, x: Tensor) -> Tensor:
        """Class probabilities."""
        return self.logits(x).softmax(axis=-1)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"layers": self.sizes, "activation": self.activation, "dtype": str(self.layers[0].weight.dtype)}
