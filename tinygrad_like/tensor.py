"""Tensor: a NumPy array, its gradient, and a link to the rule (``ops.py``) that made it.

Operations record the graph on the way forward; ``backward()`` walks it once, iteratively, from the output
to the leaves. Derived operations (neg, mean, square, flatten, transpose, cross_entropy, ...) are
compositions of the primitives in ``ops.py`` and so need no backward rule of their own.
"""

from __future__ import annotations

import functools
import gc
import math
import os
from collections.abc import Callable, Iterator, Sequence
from heapq import heappop, heappush
from itertools import count
from typing import Any

import numpy as np

from . import ops
from .ops import Function, ReleasedGraph, quiet, restore, silence

_grad_enabled = True  # switched off by ``no_grad``
_rng = np.random.default_rng()  # reseeded by ``Tensor.manual_seed``
_sequence = count()  # creation order of recorded ops: the backward walk goes from the latest to the earliest

Shape = tuple[int, ...]
Axis = int | Sequence[int] | None

_ALLOWED_KINDS = "fiub"  # float, signed int, unsigned int, bool


class no_grad:  # noqa: N801 - named like PyTorch's and tinygrad's
    """Context manager (and decorator) under which no graph is recorded; the previous state comes back on exit."""

    def __enter__(self) -> no_grad:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        return _run_inside(no_grad, fn)


def _run_inside(make_context: Callable[[], Any], fn: Callable) -> Callable:
    """``fn`` as a function that runs inside a fresh context at every call (the decorator forms)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make_context():
            return fn(*args, **kwargs)

    return wrapper


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return _grad_enabled


# ----------------------------------------------------------------------------------------------------------
# Anomaly detection: every forward result and every backward gradient checked for nan/inf
# ----------------------------------------------------------------------------------------------------------

_anomaly = os.environ.get("TINYGRAD_LIKE_DETECT_ANOMALY", "").strip().lower() in ("1", "true", "yes", "on")

_BACKWARD_HINTS = {
    "log": "d log(x)/dx = 1/x is infinite at x = 0",
    "sqrt": "d sqrt(x)/dx = 1/(2 sqrt(x)) is infinite at x = 0",
    "div": "d(x/y)/dy = -x/y^2 overflows when y is tiny",
    "pow": "d(x**y)/dx = y x**(y-1) is infinite at x = 0 when y < 1, and d/dy needs log(x)",
}
_HINTS = {
    "log": "log(0) is -inf and log(x < 0) is nan: clip the input, or compute log_softmax / cross_entropy from logits",
    "div": "division by zero: add a small epsilon to the denominator",
    "exp": "exp overflows past 88 (float32) or 709 (float64): subtract the max first (softmax does)",
    "sqrt": "sqrt of a negative number is nan",
    "pow": "0 ** negative is inf and a negative base with a fractional exponent is nan",
}


class detect_anomaly:  # noqa: N801 - named like PyTorch's
    """Context manager (and decorator) that raises ``FloatingPointError`` at the first nan/inf.

    Every forward result and every backward gradient is checked; the error names the op that produced the
    bad values, the ops that made its inputs, and the shapes. Also switched on for a whole run by the
    environment variable ``TINYGRAD_LIKE_DETECT_ANOMALY=1``.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self) -> detect_anomaly:
        global _anomaly
        self._previous, _anomaly = _anomaly, self.enabled
        return self

    def __exit__(self, *exc: object) -> None:
        global _anomaly
        _anomaly = self._previous

    def __call__(self, fn: Callable) -> Callable:
        return _run_inside(lambda: detect_anomaly(self.enabled), fn)


def is_anomaly_enabled() -> bool:
    return _anomaly


def _describe_values(a: np.ndarray) -> str:
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return "finite" if a.size == 0 else f"finite, min {a.min():.4g}, max {a.max():.4g}"
    return f"{np.isnan(a).sum()} nan, {np.isposinf(a).sum()} inf, {np.isneginf(a).sum()} -inf of {a.size}"


def _origin(t: Tensor) -> str:
    return "a leaf" if t._ctx is None else t._ctx.name


def _forward_anomaly(fn: Function, inputs: Sequence[Tensor], out: np.ndarray) -> FloatingPointError:
    parts = [f"detect_anomaly: {fn.describe()} produced non-finite values in its output of shape {out.shape} "
             f"({_describe_values(out)})."]
    for i, t in enumerate(inputs):
        parts.append(f"Input {i} (shape {t.shape}) came from {_origin(t)}: {_describe_values(np.asarray(t.data))}.")
    if fn.name in _HINTS:
        parts.append(f"Hint: {_HINTS[fn.name]}.")
    return FloatingPointError(" ".join(parts))


def _backward_anomaly(fn: Function, index: int, grad_in: np.ndarray, grad_out: np.ndarray) -> FloatingPointError:
    t = fn.inputs[index]
    return FloatingPointError(
        f"detect_anomaly: the backward rule of {fn.describe()} produced non-finite values in the gradient of its "
        f"input {index} (shape {t.shape}, which came from {_origin(t)}): {_describe_values(grad_out)}. "
        f"The gradient arriving at {fn.name}'s output (shape {grad_in.shape}) was {_describe_values(grad_in)}."
        + (f" Hint: {_BACKWARD_HINTS[fn.name]}." if fn.name in _BACKWARD_HINTS else "")
    )


# ----------------------------------------------------------------------------------------------------------
# Turning user input into arrays
# ----------------------------------------------------------------------------------------------------------


def _dtype_arg(dtype: Any, op: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: unknown dtype {dtype!r}") from None
    if dt.kind not in _ALLOWED_KINDS:
        raise TypeError(f"{op}: unsupported dtype {dt} (use a float, int or bool dtype)")
    return dt


def _to_array(data: Any, dtype: Any = None, copy: bool = True) -> np.ndarray:
    """``data`` as an array following the dtype rules of the API (Python floats -> float32, ...); a NumPy
    array of the right dtype is copied only when ``copy`` is set."""
    if isinstance(data, Tensor):
        data = data.data
    wanted = None if dtype is None else _dtype_arg(dtype, "Tensor")
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data, dtype=wanted) if copy else np.asarray(data, dtype=wanted)
    except (ValueError, TypeError) as e:
        if "inhomogeneous" in str(e) or "sequence" in str(e):
            raise ValueError(f"Tensor: nested lists have ragged lengths and do not form an array ({e})") from None
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}: {e}") from None
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(
            f"Tensor: unsupported data of dtype {arr.dtype} ({type(data).__name__}); "
            "use numbers, nested lists of numbers or a numeric NumPy array"
        )
    if wanted is None and not from_numpy:  # Python numbers: float -> float32, int -> int32 when it fits
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind == "i" and (arr.size == 0 or (arr.min() >= -(2**31) and arr.max() < 2**31)):
            arr = arr.astype(np.int32)
    return arr


def _scalar_dtype(value: Any, like: np.dtype) -> np.dtype | type:
    """A Python scalar next to a tensor takes the tensor's dtype when it can (so float32 stays float32)."""
    if like.kind == "f":
        return like
    if isinstance(value, (float, np.floating)):
        return np.float32
    if isinstance(value, (bool, np.bool_)):
        return like
    return like if like.kind in "iu" else np.int32


def _make(data: np.ndarray, ctx: Function | None = None) -> Tensor:
    """Fast internal constructor: wraps ``data`` without copying."""
    if type(data) is not np.ndarray:  # NumPy returns scalars from 0-d operations; a Tensor always holds an array
        data = np.asarray(data)
    t = object.__new__(Tensor)
    t.data, t.grad, t.requires_grad, t._ctx, t._retains_grad = data, None, ctx is not None, ctx, False
    return t


# Running a primitive forward and, when a gradient is wanted, recording it in the graph. Unary and binary ops
# each get their own function because this is the hottest path of the engine.


def _apply1(rule: type[Function], x: Tensor, *params: Any) -> Tensor:
    """One input tensor; ``params`` (axes, shapes, ...) go to ``forward`` after the array."""
    fn = rule()
    token = silence()  # rules never warn (see ops.py)
    try:
        data = fn.forward(x.data, *params)
    finally:
        restore(token)
    if _anomaly and data.dtype.kind == "f" and not np.isfinite(data).all():
        raise _forward_anomaly(fn, (x,), np.asarray(data))
    if _grad_enabled and x.requires_grad:
        fn.inputs, fn.needs_grad, fn.seq = (x,), (True,), next(_sequence)
        return _make(data, fn)
    return _make(data)


def _apply(rule: type[Function], *inputs: Tensor) -> Tensor:
    """Any number of input tensors (e.g. the fused linear rule's input, weight and bias)."""
    fn = rule()
    token = silence()
    try:
        data = fn.forward(*[t.data for t in inputs])
    finally:
        restore(token)
    if _anomaly and data.dtype.kind == "f" and not np.isfinite(data).all():
        raise _forward_anomaly(fn, inputs, np.asarray(data))
    if _grad_enabled:
        needs = tuple([t.requires_grad for t in inputs])
        if True in needs:
            fn.inputs, fn.needs_grad, fn.seq = inputs, needs, next(_sequence)
            return _make(data, fn)
    return _make(data)


_NEEDS = ((None, (False, True)), ((True, False), (True, True)))  # shared tuples: one allocation less per op


def _apply2(rule: type[Function], x: Tensor, y: Tensor) -> Tensor:
    fn = rule()
    token = silence()
    try:
        data = fn.forward(x.data, y.data)
    finally:
        restore(token)
    if _anomaly and data.dtype.kind == "f" and not np.isfinite(data).all():
        raise _forward_anomaly(fn, (x, y), np.asarray(data))
    if _grad_enabled and (x.requires_grad or y.requires_grad):
        fn.inputs, fn.needs_grad, fn.seq = (x, y), _NEEDS[x.requires_grad][y.requires_grad], next(_sequence)
        return _make(data, fn)
    return _make(data)


_REVERSED_AXES = [tuple(range(n - 1, -1, -1)) for n in range(8)]  # the order of ``.T``, precomputed

_constants: dict[tuple[Any, Any, Any], np.ndarray] = {}


def _constant(value: Any, dtype: Any) -> np.ndarray:
    """A read-only 0-d array for a Python scalar; cached, since ``x * 2`` in a loop makes the same one."""
    key = (type(value), value, dtype)
    arr = _constants.get(key)
    if arr is None:
        arr = np.array(value, dtype)
        arr.flags.writeable = False
        if len(_constants) < 4096 and value == value:  # bounded; NaN never equals its key, so it is not kept
            _constants[key] = arr
    return arr


def _operand(value: Any, like: Tensor, op: str) -> Tensor:
    """The other side of a binary op as a Tensor (a constant when it is not one already)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float, bool, np.number, np.bool_)):
        return _make(_constant(value, _scalar_dtype(value, like.data.dtype)))
    if isinstance(value, (np.ndarray, list, tuple)):
        return _make(_to_array(value))
    raise TypeError(f"{op}: unsupported operand of type {type(value).__name__} (tensor shape {like.shape})")


def _binary(rule: type[Function], x: Tensor, y: Tensor) -> Tensor:
    try:
        return _apply2(rule, x, y)
    except ValueError:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise ValueError(f"{rule.name}: shapes {x.shape} and {y.shape} cannot be broadcast together") from None
        raise


def _axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...] | None:
    """Normalise ``axis`` (int, negative int, tuple or list, or None) to a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    if ndim == 0:  # as PyTorch: axis 0 or -1 of a 0-d tensor is the tensor itself
        if any(a not in (0, -1) for a in axes):
            raise np.exceptions.AxisError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return ()
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _one_axis(axis: int, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    axes = _axes(axis, ndim, op)
    return axes[0] if axes else 0


def _reduce_args(op: str, axis: Axis, keepdim: bool, keepdims: bool | None, dim: Axis) -> tuple[Axis, bool]:
    """Accept PyTorch's ``dim=`` and NumPy's ``keepdims=`` spellings."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give either axis or dim, not both")
        axis = dim
    return axis, bool(keepdim if keepdims is None else keepdims)


def _shape_arg(shape: tuple, op: str) -> Shape:
    """Shapes are given as separate ints or as one tuple/list."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"{op}: shape must be ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def _factory_shape(shape: tuple, op: str) -> Shape:
    shape = _shape_arg(shape, op)
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _index_arg(index: Any) -> Any:
    """Tensors inside an index become their arrays; lists become integer (or bool) arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    return index


# ----------------------------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------------------------


class Tensor:
    """An n-dimensional array that records the operations applied to it, for reverse-mode differentiation."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # ``ndarray + Tensor`` defers to ``Tensor.__radd__`` and gives a Tensor

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        """``data``: a number, (nested) list, NumPy array or Tensor. A NumPy array of the wanted dtype is wrapped
        without a copy (as ``np.asarray``), except for ``requires_grad=True``: optimizers update parameters in
        place, so a parameter always gets memory of its own."""
        self.data: np.ndarray = _to_array(data, dtype, copy=requires_grad)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating point tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad: bool = bool(requires_grad)
        self.grad: Tensor | None = None
        self._ctx: Function | ReleasedGraph | None = None
        self._retains_grad = False

    # -- properties and values out ------------------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded operation."""
        return self._ctx is None

    @property
    def op(self) -> str | None:
        """Name of the operation that made this tensor, None for a leaf."""
        return None if self._ctx is None else self._ctx.name

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a number, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    __hash__ = object.__hash__  # comparisons return tensors, identity stays the hash

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", dtype={self.dtype}"
        if self.requires_grad:
            extra += f", requires_grad=True, op={self.op}" if self._ctx is not None else ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # -- graph handling -----------------------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return _make(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating point tensors can require grad, got {self.dtype}")
        if requires_grad and not self.requires_grad and self._ctx is None:
            self.data = self.data.copy()  # a parameter gets memory of its own (see __init__)
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()`` (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    def _accumulate(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add ``grad`` to ``.grad``; ``owned`` says no one else holds ``grad``, so it need not be copied."""
        if self.grad is not None:
            self.grad.data = self.grad.data + grad
        elif owned:
            self.grad = _make(grad)
        else:  # an own copy: never shares memory with another tensor's gradient or the caller's array
            self.grad = _make(np.array(grad, dtype=self.data.dtype))

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), times ``gradient``, into ``.grad`` of every leaf that requires grad.

        ``gradient`` may be omitted only for a one-element tensor. The graph is released afterwards unless
        ``retain_graph=True``; going through a released graph again raises RuntimeError.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) does not require grad and has no graph; "
                "create the inputs with requires_grad=True, outside no_grad()"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: gradient can be omitted only for a one-element tensor, got shape {self.shape}; "
                    "pass gradient= of that shape"
                )
            seed = np.ones_like(self.data)
        else:
            seed = _to_array(gradient, self.dtype, copy=False)
            if seed.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {seed.shape} but the tensor has shape {self.shape}")
        if self._ctx is None:
            self._accumulate(seed)
            return
        collector_was_on = gc.isenabled()
        gc.disable()  # the walk makes no reference cycles; pausing the collector spares rescans of a big graph
        try:
            with quiet():
                _backward_walk(self, seed, retain_graph)
        finally:
            if collector_was_on:
                gc.enable()

    # -- arithmetic -----------------------------------------------------------------------------------------
    def add(self, other: Any) -> Tensor:
        return _binary(ops.Add, self, _operand(other, self, "add"))

    def sub(self, other: Any) -> Tensor:
        return _binary(ops.Sub, self, _operand(other, self, "sub"))

    def mul(self, other: Any) -> Tensor:
        return _binary(ops.Mul, self, _operand(other, self, "mul"))

    def div(self, other: Any) -> Tensor:
        return _binary(ops.Div, self, _operand(other, self, "div"))

    def pow(self, exponent: Any) -> Tensor:
        return _binary(ops.Pow, self, _operand(exponent, self, "pow"))

    def matmul(self, other: Any) -> Tensor:
        return _apply2(ops.Matmul, self, _operand(other, self, "matmul"))

    dot = matmul

    def neg(self) -> Tensor:
        return self * -1

    __add__ = add
    __sub__ = sub
    __mul__ = mul
    __truediv__ = div
    __pow__ = pow
    __matmul__ = matmul
    __neg__ = neg

    def __radd__(self, other: Any) -> Tensor:
        return _binary(ops.Add, _operand(other, self, "add"), self)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(ops.Sub, _operand(other, self, "sub"), self)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(ops.Mul, _operand(other, self, "mul"), self)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _binary(ops.Div, _operand(other, self, "div"), self)

    def __rpow__(self, other: Any) -> Tensor:
        return _binary(ops.Pow, _operand(other, self, "pow"), self)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _apply2(ops.Matmul, _operand(other, self, "matmul"), self)

    # -- elementwise --------------------------------------------------------------------------------------
    def exp(self) -> Tensor:
        return _apply1(ops.Exp, self)

    def log(self) -> Tensor:
        return _apply1(ops.Log, self)

    def sqrt(self) -> Tensor:
        return _apply1(ops.Sqrt, self)

    def sigmoid(self) -> Tensor:
        return _apply1(ops.Sigmoid, self)

    def relu(self) -> Tensor:
        return _apply1(ops.Relu, self)

    def tanh(self) -> Tensor:
        return _apply1(ops.Tanh, self)

    def abs(self) -> Tensor:
        return _apply1(ops.Abs, self)

    def square(self) -> Tensor:
        return self * self

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        return _apply1(ops.Clip, self, min, max)

    # -- reductions ---------------------------------------------------------------------------------------
    def sum(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("sum", axis, keepdim, keepdims, dim)
        return _apply1(ops.Sum, self, _axes(axis, self.ndim, "sum"), keepdim)

    def mean(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
             dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("mean", axis, keepdim, keepdims, dim)
        axes = _axes(axis, self.ndim, "mean")
        count = self.size if axes is None else math.prod(self.shape[a] for a in axes)
        if count == 0:
            raise ValueError(f"mean: cannot average over zero elements (shape {self.shape}, axis {axis})")
        return self.sum(axes, keepdim) / count

    def max(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("max", axis, keepdim, keepdims, dim)
        return _apply1(ops.Max, self, _axes(axis, self.ndim, "max"), keepdim)

    def min(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("min", axis, keepdim, keepdims, dim)
        return _apply1(ops.Min, self, _axes(axis, self.ndim, "min"), keepdim)

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        return _apply1(ops.Softmax, self, _one_axis(axis, self.ndim, "softmax"))

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        return _apply1(ops.LogSoftmax, self, _one_axis(axis, self.ndim, "log_softmax"))

    # -- shape ----------------------------------------------------------------------------------------------
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _apply1(ops.Reshape, self, _shape_arg(shape, "reshape"))

    def permute(self, *order: int | Sequence[int]) -> Tensor:
        order = _shape_arg(order, "permute")
        if sorted(a % self.ndim if self.ndim else a for a in order) != list(range(self.ndim)):
            raise ValueError(f"permute: {order} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return _apply1(ops.Permute, self, tuple(a % self.ndim for a in order))

    def transpose(self, dim0: int = 1, dim1: int = 0) -> Tensor:
        """Swap two axes (as tinygrad and PyTorch)."""
        a, b = _one_axis(dim0, self.ndim, "transpose"), _one_axis(dim1, self.ndim, "transpose")
        if self.ndim == 0:
            return _apply1(ops.Permute, self, ())
        order = list(range(self.ndim))
        order[a], order[b] = order[b], order[a]
        return _apply1(ops.Permute, self, tuple(order))

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's and PyTorch's name
        """All axes reversed."""
        order = _REVERSED_AXES[self.ndim] if self.ndim < len(_REVERSED_AXES) else tuple(range(self.ndim))[::-1]
        return _apply1(ops.Permute, self, order)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _one_axis(start_dim, self.ndim, "flatten"), _one_axis(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        shape = self.shape
        return self.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def expand(self, *shape: int | Sequence[int]) -> Tensor:
        """Broadcast to ``shape``; -1 keeps a dimension as it is."""
        shape = _shape_arg(shape, "expand")
        offset = len(shape) - self.ndim
        if offset < 0:
            raise ValueError(f"expand: cannot expand a tensor of shape {self.shape} to fewer dimensions {shape}")
        shape = tuple(self.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(shape))
        return _apply1(ops.Expand, self, shape)

    def __getitem__(self, index: Any) -> Tensor:
        return _apply1(ops.GetItem, self, _index_arg(index))

    # -- losses ---------------------------------------------------------------------------------------------
    def cross_entropy(self, target: Any, reduction: str = "mean") -> Tensor:
        """Cross-entropy of (N, C) logits against integer labels (N,) or probabilities (N, C).

        Computed from log_softmax (so any logits are safe); its gradient is ``softmax - target``, divided by N
        for ``reduction="mean"``. ``reduction="sum"`` is the blog's summed loss, ``"none"`` gives one per sample.
        """
        if self.ndim != 2:
            raise ValueError(f"cross_entropy: expects (N, C) logits, got shape {self.shape}")
        n, classes = self.shape
        labels = target.data if isinstance(target, Tensor) else np.asarray(target)
        if labels.dtype.kind in "iu" and labels.shape == (n,):
            if n and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(
                    f"cross_entropy: labels must be in [0, {classes}), got values from {labels.min()} to {labels.max()}"
                )
            target = _make(labels)
        elif labels.dtype.kind == "f" and labels.shape == (n, classes) and classes:
            target = target if isinstance(target, Tensor) else _make(labels)
        else:
            raise ValueError(
                f"cross_entropy: target must be integer labels of shape ({n},) or probabilities of shape "
                f"({n}, {classes}), got dtype {labels.dtype} and shape {labels.shape}"
            )
        return _reduce_loss(_apply2(ops.CrossEntropy, self, target), reduction, "cross_entropy")

    def binary_crossentropy(self, target: Any, reduction: str = "mean") -> Tensor:
        """Binary cross-entropy of probabilities ``self`` against ``target`` in [0, 1], mean over all elements."""
        target = _operand(target, self, "binary_crossentropy")
        if target.shape != self.shape:
            raise ValueError(f"binary_crossentropy: target shape {target.shape} differs from input shape {self.shape}")
        return _reduce_loss(_apply2(ops.BinaryCrossEntropy, self, target), reduction, "binary_crossentropy")

    # -- no gradient ----------------------------------------------------------------------------------------
    def argmax(self, axis: int | None = None, keepdim: bool = False) -> Tensor:
        axis = None if axis is None else _one_axis(axis, self.ndim, "argmax")
        if self.data.size == 0:
            raise ValueError(f"argmax: cannot take the argmax of an empty tensor of shape {self.shape}")
        return _make(np.argmax(self.data, axis=axis, keepdims=keepdim))

    def _compare(self, other: Any, ufunc: np.ufunc, op: str) -> Tensor:
        other = other.data if isinstance(other, Tensor) else other
        try:
            return _make(ufunc(self.data, other))
        except ValueError:
            raise ValueError(f"{op}: shapes {self.shape} and {np.shape(other)} cannot be broadcast together") from None

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less, "<")

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal, "<=")

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater, ">")

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal, ">=")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal, "==")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal, "!=")

    # -- factories ------------------------------------------------------------------------------------------
    @staticmethod
    def manual_seed(seed: int) -> None:
        """Seed the generator behind randn, rand and uniform."""
        global _rng
        _rng = np.random.default_rng(seed)

    @staticmethod
    def zeros(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros(_factory_shape(shape, "zeros"), _dtype_arg(dtype, "zeros")), requires_grad)

    @staticmethod
    def ones(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones(_factory_shape(shape, "ones"), _dtype_arg(dtype, "ones")), requires_grad)

    @staticmethod
    def full(shape: int | Sequence[int], value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        shape = _factory_shape((shape,), "full")
        dtype = _to_array(value).dtype if dtype is None else _dtype_arg(dtype, "full")
        return Tensor(np.full(shape, value, dtype), requires_grad)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        _factory_shape((n,) if m is None else (n, m), "eye")
        return Tensor(np.eye(n, m, dtype=_dtype_arg(dtype, "eye")), requires_grad)

    @staticmethod
    def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
               requires_grad: bool = False) -> Tensor:
        """``arange(stop)`` or ``arange(start, stop, step)``: int32 for int arguments, float32 otherwise."""
        if stop is None:
            start, stop = 0, start
        if step == 0:
            raise ValueError("arange: step must not be zero")
        if dtype is None:
            ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
            dtype = np.int32 if ints else np.float32
        return Tensor(np.arange(start, stop, step, dtype=_dtype_arg(dtype, "arange")), requires_grad)

    @staticmethod
    def randn(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        """Standard normal samples."""
        data = _rng.standard_normal(_factory_shape(shape, "randn"))
        return Tensor(data.astype(_dtype_arg(dtype, "randn")), requires_grad)

    @staticmethod
    def rand(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        """Uniform samples in [0, 1)."""
        data = _rng.random(_factory_shape(shape, "rand"))
        return Tensor(data.astype(_dtype_arg(dtype, "rand")), requires_grad)

    @staticmethod
    def uniform(*shape: int | Sequence[int], low: float = -1.0, high: float = 1.0, dtype: Any = np.float32,
                requires_grad: bool = False) -> Tensor:
        """Uniform samples in [low, high)."""
        data = _rng.uniform(low, high, _factory_shape(shape, "uniform"))
        return Tensor(data.astype(_dtype_arg(dtype, "uniform")), requires_grad)

    @staticmethod
    def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros_like(t.data, dtype=dtype), requires_grad)

    @staticmethod
    def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones_like(t.data, dtype=dtype), requires_grad)

    @staticmethod
    def full_like(t: Tensor, value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.full_like(t.data, value, dtype=dtype), requires_grad)


def _backward_walk(root: Tensor, seed: np.ndarray, retain_graph: bool) -> None:
    """Propagate ``seed`` from ``root`` to the leaves, one node at a time, without recursion.

    Nodes are taken latest-created first (a max-heap on the rule's sequence number): every consumer of a
    tensor was created after it, so a node is reached only when all of its gradient has arrived. One pass,
    no separate topological sort, and each node's saved arrays are released as soon as it is done.
    Gradients are keyed by the tensors themselves: their hash is their identity.
    """
    grads: dict[Tensor, np.ndarray] = {root: seed}
    heap: list[tuple[int, Tensor]] = [(-root._ctx.seq, root)]
    leaves: list[Tensor] = []
    check = _anomaly
    while heap:
        node = heappop(heap)[1]
        grad = grads.pop(node)
        ctx = node._ctx
        if type(ctx) is ReleasedGraph:
            raise RuntimeError(
                f"backward: the graph through '{ctx.name}' (output shape {node.shape}) was already released by "
                "an earlier backward(); call the first backward(retain_graph=True) to go through it twice"
            )
        if node._retains_grad:
            node._accumulate(grad)
        for t, need, g in zip(ctx.inputs, ctx.needs_grad, ctx.backward(grad)):
            if not need:
                continue
            if check and g.dtype.kind == "f" and not np.isfinite(g).all():
                raise _backward_anomaly(ctx, _position(ctx, t), grad, np.asarray(g))
            data = t.data
            if g.shape != data.shape:
                g = _unbroadcast(g, data.shape, ctx, t)
            if g.dtype != data.dtype:
                g = g.astype(data.dtype)
            previous = grads.get(t)
            if previous is not None:
                grads[t] = previous + g
            else:
                grads[t] = g
                if t._ctx is None:
                    leaves.append(t)
                else:
                    heappush(heap, (-t._ctx.seq, t))
        if not retain_graph:
            node._ctx = ctx.released
    # Last, so a failed walk leaves no half-accumulated gradient on the leaves. A gradient the walk computed
    # is handed over without a copy, unless it is read-only or shares memory with the seed or another leaf's.
    claimed = {id(seed if seed.base is None else seed.base)}
    for leaf in leaves:
        grad = grads[leaf]
        owner = id(grad if grad.base is None else grad.base)
        leaf._accumulate(grad, owned=owner not in claimed and grad.flags.writeable)
        claimed.add(owner)


def _position(ctx: Function, t: Tensor) -> int:
    """Which input of ``ctx`` is ``t`` (by identity: ``==`` on tensors is elementwise)."""
    return next(i for i, u in enumerate(ctx.inputs) if u is t)


def _reduce_loss(losses: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _unbroadcast(grad: np.ndarray, shape: Shape, ctx: Function, t: Tensor) -> np.ndarray:
    """Sum a gradient of a broadcast shape back to the input's ``shape``; refuse shapes that cannot come from it."""
    extra = grad.ndim - len(shape)
    axes = list(range(extra))
    for i, size in enumerate(shape):
        if extra < 0 or grad.shape[extra + i] != size:
            if extra < 0 or size != 1:
                raise RuntimeError(f"{ctx.name}: backward returned a gradient of shape {grad.shape} for input "
                                   f"{_position(ctx, t)} of shape {shape}")
            axes.append(extra + i)
    return grad.sum(axis=tuple(axes)).reshape(shape)
