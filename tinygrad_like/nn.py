"""Networks built from Tensors: Module, Linear, Sequential and MLP (the blog's [784, 64, 32, 10] network).

Parameters are the Tensor attributes of a module (and of its sub-modules, lists and tuples), named by their
attribute path, e.g. ``layers.0.weight``. ``save``/``load`` use NumPy ``.npz`` files without pickle.
"""

from __future__ import annotations

import json
import os
import weakref
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import ops
from ._files import atomic_write
from .tensor import Tensor, _apply, is_grad_enabled

CONFIG_KEY = "__config__"  # the constructor arguments, saved next to the weights so ``Module.load`` can rebuild



class ModuleCalls:
    """Output tensor -> the module calls that returned it, as (module, input tensors), for every call that
    recorded a graph. Drawings use it to group each layer's operations; entries vanish with their tensor.

    Keyed by identity, not by a WeakKeyDictionary: its lookups compare keys with ``==``, which is elementwise
    for tensors. A tensor may have several calls (a Sequential returns its last layer's output).
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Tensor], list[tuple[Module, tuple[Tensor, ...]]]]] = {}

    def record(self, out: Tensor, module: Module, inputs: tuple[Tensor, ...]) -> None:
        key = id(out)
        entry = self._entries.get(key)
        if entry is None:  # the callback runs before the id can be reused
            entry = (weakref.ref(out, lambda _, key=key: self._entries.pop(key, None)), [])
            self._entries[key] = entry
        entry[1].append((module, inputs))

    def calls(self, out: Tensor) -> list[tuple[Module, tuple[Tensor, ...]]]:
        """The calls that returned ``out``, innermost first."""
        entry = self._entries.get(id(out))
        return list(entry[1]) if entry is not None and entry[0]() is out else []

    def __len__(self) -> int:
        return len(self._entries)


module_calls = ModuleCalls()

_registry: dict[str, type[Module]] = {}


class Module:
    """Base class: subclasses set Tensors and Modules as attributes and define ``forward``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _registry[cls.__name__] = cls

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        if isinstance(out, Tensor) and out.requires_grad and is_grad_enabled():
            module_calls.record(out, self, tuple(a for a in args if isinstance(a, Tensor)))
        return out

    # -- parameters -----------------------------------------------------------------------------------------
    def _children(self) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Tensor, Module)):
                        yield f"{name}.{i}", item
            elif isinstance(value, (Tensor, Module)):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``) and every sub-module, depth first."""
        yield prefix, self
        for name, value in self._children():
            if isinstance(value, Module):
                yield from value.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every parameter (Tensor attribute, also inside sub-modules, lists and tuples) with its dotted name."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in module._children():
                if isinstance(value, Tensor) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list[Tensor]:
        """The tensors of ``named_parameters``, in the same order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    # -- state ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any] | None:
        """Constructor arguments (JSON-able) that rebuild this module, or None if it cannot be rebuilt."""
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's array, by name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays into the parameters; every missing, unexpected or mismatched entry is reported at once."""
        params = dict(self.named_parameters())
        problems = [f"missing {name} {tuple(p.shape)} {p.dtype}" for name, p in params.items() if name not in state]
        problems += [f"unexpected {name}" for name in state if name not in params and name != CONFIG_KEY]
        for name, p in params.items():
            if name in state:
                value = np.asarray(state[name].data if isinstance(state[name], Tensor) else state[name])
                if value.shape != p.shape or value.dtype != p.dtype:
                    problems.append(f"{name}: expected {p.shape} {p.dtype}, got {value.shape} {value.dtype}")
        if problems:
            raise ValueError(f"load_state_dict: {type(self).__name__} does not match the state:\n  "
                             + "\n  ".join(problems))
        for name, p in params.items():
            p.data = np.array(state[name].data if isinstance(state[name], Tensor) else state[name])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters (and the constructor arguments) to an ``.npz`` file, atomically."""
        path = Path(path)
        arrays = self.state_dict()
        config = self.config()
        if config is not None:
            arrays[CONFIG_KEY] = np.array(json.dumps({"class": type(self).__name__, "args": config}))
        with atomic_write(path) as f:  # the old file stays intact until the new one is complete
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Module:
        """Rebuild a module saved by ``save`` (its class and constructor arguments are in the file)."""
        state = read_npz(path)
        if CONFIG_KEY not in state:
            raise ValueError(f"load: {path} holds no module description; build the module yourself and call "
                             "module.load_state_dict(nn.read_npz(path))")
        try:
            config = json.loads(str(state.pop(CONFIG_KEY)))
            module_cls = _registry[config["class"]]
            module = module_cls(**config["args"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"load: {path} has an unusable module description ({e})") from None
        if not isinstance(module, cls):
            raise TypeError(f"load: {path} holds a {type(module).__name__}, not a {cls.__name__}")
        module.load_state_dict(state)
        return module

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, value in self._children():
            text = repr(value) if isinstance(value, Module) else f"Tensor{tuple(value.shape)}"
            lines.append(f"  ({name}): " + text.replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else f"{type(self).__name__}()"


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file; never unpickles, so a crafted file cannot run code."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"load: {path} does not exist or is not a file")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"load: {path} is not a readable .npz weights file ({e})") from None


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features) as in PyTorch and the blog."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None) -> None:
        rng = rng or np.random.default_rng()
        bound = 1 / np.sqrt(in_features)  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self.in_features, self.out_features = in_features, out_features
        self.weight = Tensor(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                             requires_grad=True)
        self.bias = (Tensor(rng.uniform(-bound, bound, out_features).astype(np.float32), requires_grad=True)
                     if bias else None)

    def forward(self, x: Tensor, fused: bool = True) -> Tensor:
        """One fused ``linear`` op by default; ``fused=False`` records the unfused graph (transpose, matmul, add)."""
        if not fused:
            out = x @ self.weight.T
            return out if self.bias is None else out + self.bias
        x = x if isinstance(x, Tensor) else Tensor(x)
        inputs = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return _apply(ops.Linear, *inputs)

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
    """The blog's network: Linear layers with ``activation`` between them and softmax on the output.

    Rows are samples. ``layers.i.weight`` has the blog's layout (n_out, n_in), so ``from_blog`` / ``to_blog``
    copy arrays one to one. ``init="blog"`` draws every weight and bias from U(-1, 1) as the blog does, in
    the same order, so ``MLP(layers, seed=s)`` starts from exactly the weights of ``blog.NN(layers, seed=s)``;
    ``init="default"`` uses PyTorch's Linear initialisation.
    """

    def __init__(self, layers: Sequence[int] = (784, 64, 32, 10), activation: str = "sigmoid",
                 init: str = "blog", seed: int | None = None, dtype: Any = np.float32) -> None:
        if len(layers) < 2 or min(int(n) for n in layers) < 1:
            raise ValueError(f"MLP: need at least two positive layer sizes (input and output), got {list(layers)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if init not in ("blog", "default"):
            raise ValueError(f"MLP: init must be 'blog' or 'default', got {init!r}")
        self.sizes, self.activation, self.init = [int(n) for n in layers], activation, init
        pairs = list(zip(self.sizes, self.sizes[1:]))
        default_rng = np.random.default_rng(seed)
        self.layers = [Linear(n_in, n_out, rng=default_rng) for n_in, n_out in pairs]
        if init == "blog":  # drawn in the blog's order (every weight, then every bias): MLP(seed=s) == NN(seed=s)
            rng = np.random.default_rng(seed)
            weights = [rng.uniform(-1, 1, (n_out, n_in)) for n_in, n_out in pairs]
            biases = [rng.uniform(-1, 1, n_out) for _, n_out in pairs]
            for layer, w, b in zip(self.layers, weights, biases):
                layer.weight.data, layer.bias.data = w, b
        for p in self.parameters():
            p.data = p.data.astype(dtype)

    def logits(self, x: Tensor, fused: bool = True) -> Tensor:
        """The output layer before softmax; ``fused=False`` records the blog's graph (see ``Linear.forward``)."""
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x, fused=fused))
        return self.layers[-1](x, fused=fused)

    def forward(self, x: Tensor, fused: bool = True) -> Tensor:
        """Class probabilities, as the blog's forward returns them."""
        return self.logits(x, fused=fused).softmax(axis=-1)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"layers": self.sizes, "activation": self.activation, "init": self.init,
                "dtype": str(self.layers[0].weight.dtype)}

    # -- the blog's network ---------------------------------------------------------------------------------
    @classmethod
    def from_blog(cls, net: Any) -> MLP:
        """An MLP with exactly the parameters of the blog's ``blog.NN`` (copied, dtype kept: float64).

        ``net.weights[i]`` (n_out, n_in) becomes ``layers.i.weight`` as it is; ``net.biases[i]`` (n_out, 1)
        becomes ``layers.i.bias`` (n_out,).
        """
        weights, biases = list(net.weights), list(net.biases)
        if not weights or len(weights) != len(biases):
            raise ValueError(f"MLP.from_blog: expected as many weights as biases, got {len(weights)} weights "
                             f"and {len(biases)} biases")
        sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        for i, (w, b) in enumerate(zip(weights, biases)):
            if w.shape != (sizes[i + 1], sizes[i]) or np.size(b) != sizes[i + 1]:
                raise ValueError(f"MLP.from_blog: layer {i} has weight {w.shape} and bias {np.shape(b)}; "
                                 f"expected ({sizes[i + 1]}, {sizes[i]}) and ({sizes[i + 1]}, 1)")
        mlp = cls(sizes, activation="sigmoid", seed=0, dtype=weights[0].dtype)
        for layer, w, b in zip(mlp.layers, weights, biases):
            layer.weight.data = np.array(w)
            layer.bias.data = np.array(b, dtype=w.dtype).reshape(-1)
        return mlp

    def to_blog(self, corrected: bool = False) -> Any:
        """The blog's ``blog.NN`` with a float64 copy of these parameters (biases as (n_out, 1) columns)."""
        from .blog import NN  # the blog's network is pure NumPy; imported here only for this conversion

        if self.activation != "sigmoid" or any(layer.bias is None for layer in self.layers):
            raise ValueError(f"to_blog: the blog's network has sigmoid layers with biases, this MLP has "
                             f"activation={self.activation!r}")
        net = NN(self.sizes, corrected=corrected, seed=0)
        net.weights = [layer.weight.data.astype(np.float64) for layer in self.layers]
        net.biases = [layer.bias.data.astype(np.float64).reshape(-1, 1) for layer in self.layers]
        net.zero_grad()
        return net

    def blog_loss(self, x: Any, targets: Any) -> Tensor:
        """The blog's summed loss as the blog's own graph; see ``nn.blog_loss``."""
        return blog_loss(self, x, targets)


def blog_loss(mlp: MLP, x: Any, targets: Any) -> Tensor:
    """-sum(onehot * log(softmax(...sigmoid(x @ W.T + b)...))): the blog's summed cross-entropy, unfused.

    Built from the primitives the blog differentiates by hand (matmul, add, sigmoid, softmax, log, multiply by
    the one-hot labels, sum), so its gradient checks exactly those rules; its gradient is the blog's gradient
    summed over the batch. ``x`` is (N, n_in) with samples as rows; ``targets`` one-hot rows (N, n_out) or
    integer labels (N,). For training speed and stability prefer ``mlp.logits(x).cross_entropy(y, "sum")``.
    """
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=mlp.layers[0].weight.dtype)
    n_out = mlp.sizes[-1]
    onehot = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    given = onehot.shape
    if onehot.ndim == 1 and onehot.dtype.kind in "iu":
        if onehot.size and (onehot.min() < 0 or onehot.max() >= n_out):
            raise ValueError(f"blog_loss: labels must be in [0, {n_out}), got values from {onehot.min()} "
                             f"to {onehot.max()}")
        onehot = np.eye(n_out, dtype=x.dtype)[onehot]
    if onehot.shape != (x.shape[0], n_out):
        raise ValueError(f"blog_loss: targets must be one-hot of shape ({x.shape[0]}, {n_out}) or integer labels "
                         f"({x.shape[0]},) for inputs of shape {x.shape}, got shape {given}")
    return -(Tensor(onehot, dtype=x.dtype) * mlp(x, fused=False).log()).sum()
