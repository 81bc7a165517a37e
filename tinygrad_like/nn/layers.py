"""Layers: Linear, Conv1d, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Embedding, Flatten, Dropout, the
activations, Identity, the containers Sequential, ModuleList and ModuleDict, and MLP (fully connected layers with an
activation between them, softmax out). Names, arguments, defaults, parameters and state_dict keys are PyTorch's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..engine import no_grad
from ..ops import int_pair
from ..tensors import Tensor, default_generator
from . import functional as F
from . import init
from .args import check_int, check_probability, check_real, dtype_config, factory_dtype
from .functional import _not_supported
from .module import Module, Parameter


def _as_json(value: Any) -> Any:
    """Tuples (at any depth) as lists."""
    return [_as_json(v) for v in value] if isinstance(value, (tuple, list)) else value


class _Arguments(Module):
    """A layer whose constructor arguments are attributes of the same names, listed in ``arguments``: its
    ``config`` (what ``Module.load`` rebuilds it from, and ``export`` writes) and its repr come from them."""

    arguments: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        """The constructor arguments (tuples as lists, as JSON keeps them)."""
        return {name: _as_json(getattr(self, name)) for name in self.arguments}

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self.arguments)


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features) as in PyTorch.

    Initialised as PyTorch does: weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)), drawn from
    ``rng`` or else from the generator ``Tensor.manual_seed`` seeds.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | None = None) -> None:
        rng, dtype = rng or default_generator(), factory_dtype(dtype, device, "Linear")
        in_features = check_int(in_features, "in_features", "Linear", 0)
        out_features = check_int(out_features, "out_features", "Linear", 0)
        bound = 1 / math.sqrt(in_features) if in_features else 0.0  # as PyTorch: no inputs, a zero bound
        self.in_features, self.out_features = in_features, out_features
        # (out, in) as PyTorch, held column-major: weight.T is then a row-major (in, out) matrix, the layout
        # BLAS multiplies fastest here (x @ W: 10-40% faster than x @ W.T at an MLP's shapes). Replacing the
        # values (load_state_dict, assign) keeps the layout.
        self.weight = Parameter(np.asfortranarray(rng.uniform(-bound, bound, (out_features, in_features)), dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None

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
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None,
                **dtype_config(self)}


def _conv_parameters(in_channels: int, out_channels: int, kernel_size: tuple[int, ...], bias: bool,
                     rng: np.random.Generator | None, dtype: np.dtype) -> tuple[Parameter, Parameter | None]:
    """A convolution's weight (out_channels, in_channels, *kernel_size) and bias, initialised as PyTorch's:
    ``kaiming_uniform_(weight, a=sqrt(5))`` and the bias from U(-b, b), both with b = 1/sqrt(fan_in),
    fan_in = in_channels * prod(kernel_size)."""
    weight = init.kaiming_uniform_(Parameter(np.zeros((out_channels, in_channels, *kernel_size), dtype)),
                                   a=math.sqrt(5), generator=rng)
    if not bias:
        return weight, None
    bound = 1 / math.sqrt(in_channels * math.prod(kernel_size))
    return weight, init.uniform_(Parameter(np.zeros(out_channels, dtype)), -bound, bound, generator=rng)


class Conv1d(Module):
    """y = conv1d(x, weight, bias, stride, padding) on (N, in_channels, L) or (in_channels, L) input; weight of
    shape (out_channels, in_channels, k). Initialised as ``Conv2d`` (PyTorch's init, fan_in = in_channels * k).
    ``padding_mode`` 'zeros' (default), 'reflect', 'replicate' or 'circular' (see ``F.pad``); ``dilation`` and
    ``groups`` other than 1 are refused.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | None = None) -> None:
        dtype = factory_dtype(dtype, device, "Conv1d")
        _not_supported("Conv1d", dilation=(F._single(dilation, "dilation"), 1), groups=(groups, 1))
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv1d: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got "
                             f"{padding_mode!r}")
        self.in_channels = check_int(in_channels, "in_channels", "Conv1d")
        self.out_channels = check_int(out_channels, "out_channels", "Conv1d")
        self.kernel_size = (check_int(F._single(kernel_size, "kernel_size"), "kernel_size", "Conv1d"),)
        self.stride = (check_int(F._single(stride, "stride"), "stride", "Conv1d"),)
        self.padding = (check_int(F._single(padding, "padding"), "padding", "Conv1d", 0),)
        self.padding_mode = padding_mode
        self.weight, self.bias = _conv_parameters(in_channels, out_channels, self.kernel_size, bias, rng, dtype)

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return F.conv1d(input, self.weight, self.bias, self.stride, self.padding)
        padded = F.pad(input, (self.padding[0], self.padding[0]), mode=self.padding_mode)
        return F.conv1d(padded, self.weight, self.bias, self.stride, 0)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if self.padding[0] else ""
        text += f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""
        return text + ("" if self.bias is not None else ", bias=False")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias is not None, "padding_mode": self.padding_mode, **dtype_config(self)}


class Conv2d(Module):
    """y = conv2d(x, weight, bias, stride, padding) on (N, in_channels, H, W) input; weight of shape
    (out_channels, in_channels, kh, kw). ``kernel_size``, ``stride``, ``padding``: an int or (height, width).

    Initialised as PyTorch does: ``kaiming_uniform_(weight, a=sqrt(5))`` and the bias from U(-b, b), which both
    come to b = 1/sqrt(fan_in), fan_in = in_channels * kh * kw; drawn from ``rng`` or else from the generator
    ``Tensor.manual_seed`` seeds.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | None = None) -> None:
        dtype = factory_dtype(dtype, device, "Conv2d")
        _not_supported("Conv2d", dilation=(int_pair(dilation, "dilation", "Conv2d", 1), (1, 1)), groups=(groups, 1))
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got "
                             f"{padding_mode!r}")
        self.kernel_size = int_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride, self.padding = int_pair(stride, "stride", "Conv2d", 1), int_pair(padding, "padding", "Conv2d", 0)
        self.in_channels = check_int(in_channels, "in_channels", "Conv2d")
        self.out_channels, self.padding_mode = check_int(out_channels, "out_channels", "Conv2d"), padding_mode
        self.weight, self.bias = _conv_parameters(in_channels, out_channels, self.kernel_size, bias, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        (ph, pw) = self.padding
        return F.conv2d(F.pad(x, (pw, pw, ph, ph), mode=self.padding_mode), self.weight, self.bias, self.stride, 0)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if any(self.padding) else ""
        text += f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""
        return text + ("" if self.bias is not None else ", bias=False")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias is not None, "padding_mode": self.padding_mode, **dtype_config(self)}


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
        self.p = check_probability(p, "p", "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"p": self.p}


class ReLU(_Arguments):
    """max(x, 0); ``inplace=True`` overwrites the input (as PyTorch's; recorded, so gradients stay right)."""

    arguments = ("inplace",)

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = bool(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(_Arguments):
    """1 / (1 + exp(-x))."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(_Arguments):
    """tanh(x)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Identity(_Arguments):
    """Returns its input (a placeholder, e.g. where an activation is optional); accepts and ignores arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, input: Tensor) -> Tensor:
        return input


class GELU(_Arguments):
    """x * Phi(x) (``approximate='none'``), or its tanh approximation (``approximate='tanh'``); see ``F.gelu``."""

    arguments = ("approximate",)

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)


class SiLU(_Arguments):
    """x * sigmoid(x) (swish)."""

    arguments = ("inplace",)

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = bool(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, self.inplace)


class LeakyReLU(_Arguments):
    """x where x > 0, else ``negative_slope * x``."""

    arguments = ("negative_slope", "inplace")

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        self.negative_slope, self.inplace = check_real(negative_slope, "negative_slope", "LeakyReLU"), bool(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)


class Softplus(_Arguments):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (as PyTorch)."""

    arguments = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta, self.threshold = check_real(beta, "beta", "Softplus"), check_real(threshold, "threshold", "Softplus")

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)


class ELU(_Arguments):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    arguments = ("alpha", "inplace")

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        self.alpha, self.inplace = check_real(alpha, "alpha", "ELU"), bool(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)


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


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``: ``emb(idx)`` is ``weight[idx]`` for integer
    indices of any shape (one ``embedding`` op; makemore's ``C[X]``).

    ``weight`` (num_embeddings, embedding_dim) is drawn from N(0, 1), as PyTorch's, from ``rng`` or else the
    generator ``manual_seed`` seeds; the row ``padding_idx`` (if given; negative counts from the end) starts at
    zero and gets no gradient. ``max_norm`` and ``scale_grad_by_freq`` are refused; ``sparse`` is accepted (the
    gradient is dense, with the same numbers).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | None = None) -> None:
        dtype = factory_dtype(dtype, device, "Embedding")
        _not_supported("Embedding", max_norm=(max_norm, None), scale_grad_by_freq=(scale_grad_by_freq, False))
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", "Embedding", 0)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", "Embedding", 0)
        if padding_idx is not None:
            check_int(padding_idx, "padding_idx", "Embedding", -num_embeddings)
            if padding_idx >= num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} "
                                 "embeddings")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx, self.sparse = padding_idx, bool(sparse)
        if _weight is None:
            self.weight = init.normal_(Parameter(np.zeros((num_embeddings, embedding_dim), dtype)),
                                       generator=rng)
            if padding_idx is not None:
                with no_grad():
                    self.weight[padding_idx] = 0
        else:
            self.weight = Parameter(_weight, requires_grad=not _freeze)
            if self.weight.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight of shape {self.weight.shape} does not match "
                                 f"({num_embeddings}, {embedding_dim})")

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (a 2-D Tensor or array) as its weight, frozen
        (``requires_grad=False``) unless ``freeze=False``."""
        if np.ndim(embeddings.data if isinstance(embeddings, Tensor) else embeddings) != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim)")
        rows, dim = np.shape(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            "" if self.padding_idx is None else f", padding_idx={self.padding_idx}")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx, **dtype_config(self)}


class AvgPool2d(_Arguments):
    """The mean of each ``kernel_size`` window of (N, C, H, W) or (C, H, W) input; see ``F.avg_pool2d``."""

    arguments = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        kernel = int_pair(kernel_size, "kernel_size", "AvgPool2d", 1)
        if stride is not None:
            int_pair(stride, "stride", "AvgPool2d", 1)
        if any(2 * p > k for p, k in zip(int_pair(padding, "padding", "AvgPool2d", 0), kernel)):
            raise ValueError(f"AvgPool2d: padding {padding!r} must be at most half of kernel_size {kernel_size!r}")
        if divisor_override is not None:
            check_int(divisor_override, "divisor_override", "AvgPool2d")
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(_Arguments):
    """The mean of (N, C, H, W) or (C, H, W) input over an ``output_size`` grid of windows (an int, a pair, None
    keeping an input size); see ``F.adaptive_avg_pool2d``. ``AdaptiveAvgPool2d(1)`` is global average pooling."""

    arguments = ("output_size",)

    def __init__(self, output_size: int | None | Sequence[int | None]) -> None:
        sizes = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size, output_size]
        if len(sizes) != 2:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got {output_size!r}")
        for size in sizes:
            if size is not None:
                check_int(size, "output_size", "AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)


# ----------------------------------------------------------------------------------------------------------
# Containers: modules held under keys ("0", "1", ... or names), their parameters named by key alone
# ("0.weight"), as PyTorch's
# ----------------------------------------------------------------------------------------------------------


class _Container(Module):
    """Modules kept in ``_modules`` (key -> module, in order); ``Module`` names their parameters by key alone."""

    _modules: dict[str, Any]

    def __getattr__(self, name: str) -> Any:  # only for names not found otherwise: a module by its key (seq.fc1)
        modules = vars(self).get("_modules")
        if modules is not None and name in modules:
            return modules[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _set_child(self, name: str, module: Any) -> None:
        self._modules[name] = module

    def __len__(self) -> int:
        return len(self._modules)

    def _key(self, index: int) -> str:
        """The key at position ``index`` (negative counts from the end)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be ints or slices, got {type(index).__name__}")
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for length {n}")
        return list(self._modules)[index % n]

    def _renumber(self, modules: Iterable[Any]) -> None:
        """Hold ``modules`` under the keys 0, 1, ... (after a deletion or an insertion, as PyTorch)."""
        self._modules = {str(i): m for i, m in enumerate(modules)}

    def config(self) -> dict[str, Any] | None:
        """The layers' saved descriptions (``{"class": ..., "args": ...}``), what ``Module.save`` writes and
        ``Module.load`` rebuilds from: ``{"modules": [[key, description], ...]}`` (a ModuleList: a list of
        descriptions); None when a layer has none (a function, a module of one's own) or a module is held twice
        (a file holds its parameters once)."""
        modules = [m for _, m in self.named_modules(remove_duplicate=False)]
        if len({id(m) for m in modules}) < len(modules):
            return None
        described = [(key, m._description() if isinstance(m, Module) else None) for key, m in self._modules.items()]
        if any(d is None for _, d in described):
            return None
        return {"modules": [[key, d] for key, d in described] if self._keyed else [d for _, d in described]}

    _keyed = True  # config() keeps the keys (a ModuleList's are its positions)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            del self._modules[key]
        self._renumber(self._modules.values())


class Sequential(_Container):
    """Layers applied one after another: ``Sequential(*layers)`` holds them under "0", "1", ...,
    ``Sequential(OrderedDict(name=layer, ...))`` under their names (``seq.name``). A layer is a Module or any
    callable (e.g. ``Tensor.sigmoid``). ``seq[i]``, ``seq[a:b]`` (a Sequential), ``len``, iteration, ``append``,
    ``insert``, ``extend``, ``pop``, ``del seq[i]``; parameters are named ``0.weight``, as PyTorch's.
    """

    def __init__(self, *args: Any) -> None:
        self._modules = {}
        named = args[0].items() if len(args) == 1 and isinstance(args[0], OrderedDict) else enumerate(args)
        for name, layer in named:
            self._put(str(name), layer)

    def _put(self, name: str, layer: Any) -> None:
        if not isinstance(layer, Module):
            if not callable(layer):
                raise TypeError(f"Sequential: layer {name!r} is a {type(layer).__name__}, not a Module or a callable")
            self._check_new_name(name, "Sequential", Module)
            self._modules[name] = layer
        else:
            self.add_module(name, layer)

    def forward(self, input: Any) -> Any:
        for layer in self._modules.values():
            input = layer(input)
        return input

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key(index)]

    def __setitem__(self, index: int, layer: Any) -> None:
        self._put(self._key(index), layer)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._modules.values())

    def append(self, layer: Any) -> Sequential:
        """Add ``layer`` at the end (key ``str(len(self))``); returns self."""
        self._put(str(len(self)), layer)
        return self

    def insert(self, index: int, layer: Any) -> Sequential:
        """Put ``layer`` before position ``index``; the keys become 0, 1, ... again. Returns self."""
        layers = list(self._modules.values())
        layers.insert(index, layer)
        self._renumber([])
        for layer_ in layers:
            self.append(layer_)
        return self

    def extend(self, layers: Iterable[Any]) -> Sequential:
        """Append each of ``layers``; returns self."""
        for layer in layers:
            self.append(layer)
        return self

    def pop(self, index: int | slice) -> Any:
        """Remove and return the layer at ``index``."""
        layer = self[index]
        del self[index]
        return layer

    def __add__(self, other: Sequential) -> Sequential:
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        return self.extend(other)


class ModuleList(_Container):
    """A list of Modules whose parameters the holder finds (``blocks.0.weight``), as PyTorch's: indexing,
    slicing (a ModuleList), ``len``, iteration, ``append``, ``extend``, ``insert``, ``pop``, ``del``, ``+=``.
    It has no forward: call its modules."""

    _keyed = False

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        self._modules = {}
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._key(index), module)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append each of ``modules``; returns self."""
        if isinstance(modules, (Module, Mapping)) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"ModuleList.extend: expects an iterable of Modules, got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index``; the keys become 0, 1, ... again."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber([])
        self.extend(modules)

    def pop(self, index: int = -1) -> Module:
        """Remove and return the module at ``index`` (the last by default)."""
        module = self[index]
        del self[index]
        return module

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])


class ModuleDict(_Container):
    """A dict of Modules (str keys without '.') whose parameters the holder finds (``heads.key.weight``), as
    PyTorch's: ``md[key]``, ``md[key] = module``, ``del``, ``in``, ``len``, iteration over keys, ``keys``,
    ``values``, ``items``, ``update``, ``pop``, ``clear``."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        self._modules = {}
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:  # keys are names: nothing to renumber
        del self._modules[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) each (key, module) of a mapping or of an iterable of pairs."""
        for key, module in (modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules):
            self[key] = module

    def pop(self, key: str) -> Module:
        """Remove and return the module under ``key``."""
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()


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
        return {"layers": self.sizes, "activation": self.activation, **dtype_config(self)}
