"""Layers: Linear, Sequential, and MLP (fully connected layers with an activation between them, softmax out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..tensor import Tensor
from .module import Module


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features) as in PyTorch.

    Initialised as PyTorch does: weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None) -> None:
        rng = rng or np.random.default_rng()
        bound = 1 / np.sqrt(in_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Tensor(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                             requires_grad=True)
        self.bias = (Tensor(rng.uniform(-bound, bound, out_features).astype(np.float32), requires_grad=True)
                     if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        """One fused ``linear`` op (see ops.Linear)."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        if self.bias is None:
            return ops.Linear.apply(x, self.weight)
        return ops.Linear.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias is not None else ", bias=False")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}


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
