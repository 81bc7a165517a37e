"""PyTorch's function names for what the library has, with PyTorch's signatures and dtypes, so that learners'
code runs with ``import tinygrad_like as torch``. Each is a thin layer over the Tensor API; the top level exports
them. See docs/defining-networks.md."""

from __future__ import annotations

import builtins
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import tensors
from ._checks import check_device
from ._files import CONFIG_KEY, atomic_write, read_npz, read_safetensors, write_safetensors
from .engine import enable_grad, is_grad_enabled, no_grad
from .tensors import Tensor

__all__ = [
    "Generator", "allclose", "arange", "argmax", "bool", "cat", "chunk", "cuda", "device", "double", "empty", "exp",
    "eye", "float", "float32", "float64", "from_numpy", "full", "full_like", "int", "int32", "int64", "linspace",
    "load", "log", "log_softmax", "long", "manual_seed", "matmul", "max", "mean", "min", "ones", "ones_like",
    "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "relu", "save", "set_default_device",
    "sigmoid", "softmax", "split", "sqrt", "stack", "sum", "tanh", "tensor", "where", "zeros", "zeros_like",
    "abs", "clamp", "all", "any", "multinomial", "no_grad", "enable_grad", "is_grad_enabled", "sin", "cos",
    "log2", "log10", "tril", "triu", "cumsum", "einsum", "outer", "logsumexp", "sort", "topk", "argmin",
]

# dtypes: NumPy's underneath, PyTorch's names
float32 = float = np.dtype(np.float32)  # noqa: A001 - PyTorch's names
float64 = double = np.dtype(np.float64)
int32 = int = np.dtype(np.int32)  # noqa: A001
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001


# ----------------------------------------------------------------------------------------------------------
# Devices: the CPU only, said by name
# ----------------------------------------------------------------------------------------------------------


class device:  # noqa: N801 - PyTorch's name
    """``device("cpu")``; any other device is refused by name (this library computes with NumPy on the CPU)."""

    def __init__(self, kind: str | device = "cpu") -> None:
        self.type = check_device(kind, "device")

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __eq__(self, other: object) -> builtins.bool:
        return isinstance(other, device) or other == "cpu"

    __hash__ = object.__hash__


class cuda:  # noqa: N801 - PyTorch's module name
    """``cuda.is_available()`` is False: there is no GPU here, so lecture code that asks takes its CPU path."""

    @staticmethod
    def is_available() -> builtins.bool:
        return False

    @staticmethod
    def device_count() -> builtins.int:
        return 0


def set_default_device(kind: Any) -> None:
    """Only ``"cpu"`` (the one device there is) is accepted."""
    check_device(kind, "set_default_device")


# ----------------------------------------------------------------------------------------------------------
# Random numbers: a Generator that every random function takes as generator=
# ----------------------------------------------------------------------------------------------------------


class Generator:
    """PyTorch's ``Generator``: ``g = Generator().manual_seed(2147483647)``, then ``generator=g`` in ``randn``,
    ``rand``, ``randint``, ``randperm``, ``multinomial``. (The numbers are NumPy's, not PyTorch's.)"""

    def __init__(self, device: Any = "cpu") -> None:
        check_device(device, "Generator")
        self.numpy = np.random.default_rng()

    def manual_seed(self, seed: builtins.int) -> Generator:
        self.numpy = np.random.default_rng(seed)
        return self


def manual_seed(seed: builtins.int) -> None:
    """Seed the library's generator (what the random functions use without ``generator=``)."""
    Tensor.manual_seed(seed)


def _rng(generator: Generator | None) -> np.random.Generator:
    if generator is None:
        return tensors.default_generator()
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinygrad_like Generator, got {type(generator).__name__}")
    return generator.numpy


def _shape(size: tuple, op: str) -> tuple[builtins.int, ...]:
    return tensors._factory_shape(size, op)


def _made(data: np.ndarray, dtype: Any, requires_grad: builtins.bool, device: Any, op: str) -> Tensor:
    dtype = tensors.device_and_dtype(op, device=device, dtype=dtype)
    return Tensor(data if dtype is None else data.astype(dtype, copy=False), requires_grad=requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, requires_grad: builtins.bool = False,
          device: Any = None) -> Tensor:
    """Standard normal samples (float32 unless ``dtype``)."""
    data = _rng(generator).standard_normal(_shape(size, "randn"))
    return _made(data.astype(np.float32), dtype, requires_grad, device, "randn")


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, requires_grad: builtins.bool = False,
         device: Any = None) -> Tensor:
    """Uniform samples in [0, 1) (float32 unless ``dtype``)."""
    data = _rng(generator).random(_shape(size, "rand"))
    return _made(data.astype(np.float32), dtype, requires_grad, device, "rand")


def randint(low: builtins.int, high: builtins.int | None = None, size: Sequence[builtins.int] = (), *,
            generator: Generator | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` too), int64 as PyTorch's."""
    if high is None or isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, size if high is None else high
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be below high ({high})")
    data = _rng(generator).integers(low, high, _shape((tuple(size),), "randint"), dtype=np.int64)
    return _made(data, dtype, False, device, "randint")


def randperm(n: builtins.int, *, generator: Generator | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of 0 .. n-1 (int64)."""
    return _made(_rng(generator).permutation(n).astype(np.int64), dtype, False, device, "randperm")


def rand_like(t: Tensor, *, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, *, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def multinomial(probs: Any, num_samples: builtins.int, replacement: builtins.bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """``num_samples`` indices drawn for each row of ``probs`` (non-negative weights, not necessarily summing to
    one; float32 is fine), int64 as PyTorch's; without replacement each index at most once per row."""
    weights = np.asarray(probs.data if isinstance(probs, Tensor) else probs, dtype=np.float64)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial: probs must be 1-D or 2-D, got shape {weights.shape}")
    rows = np.atleast_2d(weights)
    if not np.isfinite(rows).all() or (rows < 0).any() or (rows.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: probs must be finite, non-negative and have a positive sum in every row")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from rows with fewer "
                         "non-zero weights")
    rng = _rng(generator)
    drawn = np.stack([rng.choice(len(row), size=num_samples, replace=replacement, p=row / row.sum())
                      for row in rows]).astype(np.int64)
    return Tensor(drawn if weights.ndim == 2 else drawn[0])


# ----------------------------------------------------------------------------------------------------------
# Making tensors
# ----------------------------------------------------------------------------------------------------------


def tensor(data: Any, dtype: Any = None, requires_grad: builtins.bool = False, device: Any = None) -> Tensor:
    """A new Tensor with a copy of ``data``, with PyTorch's dtypes: Python floats give float32, Python ints int64,
    bools bool; NumPy arrays keep theirs."""
    if device is not None:
        check_device(device, "tensor")
    values = data.data if isinstance(data, Tensor) else data
    if isinstance(values, (np.ndarray, np.generic)):
        values = np.array(values, copy=True)  # a copy, as PyTorch's tensor()
    elif dtype is None and np.asarray(values).dtype.kind in "iu":
        dtype = np.int64
    return Tensor(values, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory (changes to either show in both), as PyTorch's."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expects a NumPy array, got {type(array).__name__}")
    return Tensor(array)


def _factory(name: str, make: Any) -> Any:
    def factory(*size: Any, dtype: Any = None, requires_grad: builtins.bool = False, device: Any = None) -> Tensor:
        return _made(make(_shape(size, name)), dtype, requires_grad, device, name)

    factory.__name__ = name
    factory.__doc__ = f"PyTorch's ``{name}(*size, dtype=None, requires_grad=False)``: float32 unless ``dtype``."
    return factory


zeros = _factory("zeros", lambda shape: np.zeros(shape, np.float32))
ones = _factory("ones", lambda shape: np.ones(shape, np.float32))
empty = _factory("empty", lambda shape: np.zeros(shape, np.float32))  # zeros: never uninitialised memory


def full(size: Sequence[builtins.int], fill_value: Any, *, dtype: Any = None, requires_grad: builtins.bool = False,
         device: Any = None) -> Tensor:
    """``size`` filled with ``fill_value``: float32 for a float, int64 for an int, bool for a bool."""
    kind = np.float32 if isinstance(fill_value, builtins.float) else np.bool_ if isinstance(
        fill_value, builtins.bool) else np.int64 if isinstance(fill_value, builtins.int) else None
    data = np.full(_shape((tuple(size) if isinstance(size, (tuple, list)) else (size,),), "full"), fill_value, kind)
    return _made(data, dtype, requires_grad, device, "full")


def eye(n: builtins.int, m: builtins.int | None = None, *, dtype: Any = None, requires_grad: builtins.bool = False,
        device: Any = None) -> Tensor:
    return _made(np.eye(n, m, dtype=np.float32), dtype, requires_grad, device, "eye")


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, requires_grad: builtins.bool = False,
           device: Any = None) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``: int64 for int arguments, float32 otherwise (PyTorch's)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    ints = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in (start, end, step))
    return _made(np.arange(start, end, step, dtype=np.int64 if ints else np.float32), dtype, requires_grad, device,
                 "arange")


def linspace(start: builtins.float, end: builtins.float, steps: builtins.int, *, dtype: Any = None,
             requires_grad: builtins.bool = False, device: Any = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included), float32 unless ``dtype``."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    values = np.linspace(start, end, steps, dtype=np.float64)  # computed in float64, then cast once to the dtype
    return _made(values if dtype is not None else values.astype(np.float32), dtype, requires_grad, device, "linspace")


def zeros_like(t: Tensor, *, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor.zeros_like(t, dtype=dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor.ones_like(t, dtype=dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: Any, *, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor.full_like(t, fill_value, dtype=dtype, requires_grad=requires_grad)


# ----------------------------------------------------------------------------------------------------------
# Operations under their PyTorch function names
# ----------------------------------------------------------------------------------------------------------


def cat(tensors_: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    return Tensor.cat(list(tensors_), dim=dim)


def stack(tensors_: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    return Tensor.stack(list(tensors_), dim=dim)


def where(condition: Any, input: Any, other: Any) -> Tensor:  # noqa: A002 - PyTorch's names
    return Tensor.where(condition, input, other)


def matmul(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    return input @ other


def _method(name: str) -> Any:
    def function(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        return getattr(input if isinstance(input, Tensor) else Tensor(input), name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"``{name}(t, ...)`` is ``t.{name}(...)``."
    return function


exp, log, sqrt, tanh, sigmoid, relu, abs, clamp, sin, cos, log2, log10 = (  # noqa: A001
    _method(n) for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "clamp", "sin", "cos", "log2",
                         "log10"))
softmax, log_softmax, sum, mean, argmax = (  # noqa: A001
    _method(n) for n in ("softmax", "log_softmax", "sum", "mean", "argmax"))


def einsum(equation: str, *operands: Any) -> Tensor:
    return np.einsum(equation, *(operands[0] if len(operands) == 1 and isinstance(operands[0], (list, tuple))
                                 else operands))


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    return np.outer(input, vec2)


sort, topk, split, chunk, tril, triu, cumsum, logsumexp, argmin = (
    _method(n) for n in ("sort", "topk", "split", "chunk", "tril", "triu", "cumsum", "logsumexp", "argmin"))


def _extreme(name: str) -> Any:
    def function(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any:  # noqa: A002
        """PyTorch's: the extreme value without ``dim``; with it, the pair (values, indices)."""
        if dim is None:
            return getattr(input, name)()
        values = getattr(input, name)(dim=dim, keepdim=keepdim)
        pick = np.argmax if name == "max" else np.argmin
        return values, Tensor(pick(input.data, axis=dim, keepdims=keepdim).astype(np.int64))

    function.__name__ = name
    return function


max, min = _extreme("max"), _extreme("min")  # noqa: A001


def allclose(input: Tensor, other: Tensor, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8,  # noqa: A002
             equal_nan: builtins.bool = False) -> builtins.bool:
    return builtins.bool(np.allclose(np.asarray(input.data), np.asarray(getattr(other, "data", other)), rtol, atol,
                                     equal_nan))


def all(input: Tensor) -> Tensor:  # noqa: A001, A002
    return Tensor(np.all(input.data))


def any(input: Tensor) -> Tensor:  # noqa: A001, A002
    return Tensor(np.any(input.data))


# ----------------------------------------------------------------------------------------------------------
# save / load: state dicts as NumPy's npz, never pickle
# ----------------------------------------------------------------------------------------------------------


def _is_safetensors(path: str | os.PathLike) -> builtins.bool:
    return str(path).endswith(".safetensors")


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a state dict (names -> Tensors or arrays): as safetensors when ``path`` ends in ``.safetensors`` (this
    needs the safetensors package), else as NumPy's ``.npz`` whatever the name (``model.pt`` too), atomically.
    Nothing is pickled, so only state dicts are saved, not whole models or optimizers' Python objects."""
    if not isinstance(obj, dict) or not builtins.all(isinstance(k, str) for k in obj):
        raise TypeError(f"save: expects a dict of names to Tensors (a state_dict), got {type(obj).__name__}; "
                        "nothing else is saved (no pickle)")
    arrays = {k: np.asarray(v.data if isinstance(v, Tensor) else v) for k, v in obj.items()}  # 0-d stays 0-d
    if _is_safetensors(path):
        write_safetensors(path, arrays)
        return
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike, map_location: Any = None, weights_only: builtins.bool = True) -> dict[str, Tensor]:
    """A state dict saved by ``save`` (or ``Module.save``, or a safetensors file: this needs the safetensors
    package), read without pickle and with every size checked before it is allocated (at most ``MAX_NPZ_BYTES``
    of arrays): a crafted file is a ``ValueError`` naming the entry, never code run. Numeric and boolean arrays
    only; a module description saved beside the weights (``nn.CONFIG_KEY``) is not state and is left out."""
    if map_location is not None:
        check_device(map_location, "load")
    arrays = read_safetensors(path) if _is_safetensors(path) else read_npz(path)
    arrays.pop(CONFIG_KEY, None)
    for name, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ValueError(f"load: {path} holds {name!r} of dtype {a.dtype}, not a tensor of numbers")
    return {k: Tensor(v) for k, v in arrays.items()}
