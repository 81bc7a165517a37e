"""Tensor: a NumPy array, its gradient, and a link to the rule (``ops.py``) that made it.

This is the API users call: operators, methods and factories, each turned into a rule of ``ops.py``; the
engine (``engine.py``) records the graph and walks it backward. Derived operations (neg, mean, square,
flatten, transpose, ...) are compositions of the primitives and so need no backward rule of their own.
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import engine, numpy_protocol, ops
from ._checks import check_device, check_probability
from .engine import Function, ReleasedGraph, backward, is_grad_enabled, quiet

__all__ = ["Size", "Tensor", "default_generator", "numpy_meaning", "reduce_loss"]

_rng = np.random.default_rng()  # reseeded by ``Tensor.manual_seed``


def default_generator() -> np.random.Generator:
    """The generator behind ``randn``, ``rand``, ``uniform``, ``dropout`` and ``nn.init`` (as PyTorch's
    ``torch.default_generator``): ``Tensor.manual_seed(n)`` replaces it, so ask for it at each use."""
    return _rng

Shape = tuple[int, ...]
Axis = int | Sequence[int] | None

_ALLOWED_KINDS = "fiub"  # float, signed int, unsigned int, bool


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


def device_and_dtype(op: str, *args: Any, device: Any = None, dtype: Any = None, **flags: Any) -> np.dtype | None:
    """The dtype that PyTorch's device and dtype arguments name (those of ``to``, and a layer's ``device=`` and
    ``dtype=``): ``dtype``, or among ``args`` a dtype or a Tensor standing for its dtype; None when none is given.
    A device (``device``, or a string such as 'cpu:0' or a ``device`` among ``args``) must be the CPU
    (``check_device``, naming ``op``). Bools among ``args`` and the ``flags`` (``non_blocking=``, ``copy=``:
    nothing to wait for or copy here) say nothing."""
    if device is not None:
        check_device(device, op)
    dtype = None if dtype is None else _dtype_arg(dtype, op)
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, (np.dtype, type)):
            dtype = _dtype_arg(arg, op)
        elif not isinstance(arg, (bool, np.bool_)):
            check_device(arg, op)
    return dtype


def _to_array(data: Any, dtype: Any = None, copy: bool = True) -> np.ndarray:
    """``data`` as an array following the dtype rules of the API (Python floats -> float32, ...); a NumPy
    array of the right dtype is copied only when ``copy`` is set."""
    if isinstance(data, Tensor):
        data = data._data
    wanted = None if dtype is None else _dtype_arg(dtype, "Tensor")
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        with quiet():  # a float beyond the dtype's range becomes inf, as in PyTorch
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
            with quiet():
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


_REVERSED_AXES = [tuple(range(n - 1, -1, -1)) for n in range(8)]  # the order of ``.T``, precomputed

_constants: dict[tuple[Any, Any, Any], np.ndarray] = {}


def _constant(value: Any, dtype: Any) -> np.ndarray:
    """A read-only 0-d array for a Python scalar; cached, since ``x * 2`` in a loop makes the same one."""
    key = (type(value), value, dtype)
    arr = _constants.get(key)
    if arr is None:
        with quiet():  # 1e39 next to a float32 tensor is inf, as in PyTorch, without a warning
            arr = np.array(value, dtype)
        arr.flags.writeable = False
        # Bounded; NaN never equals its key, and 0.0 == -0.0 would share one key, so neither is kept.
        if len(_constants) < 4096 and value == value and value != 0:
            _constants[key] = arr
    return arr


def _operand(value: Any, like: Tensor, op: str) -> Tensor:
    """The other side of a binary op as a Tensor (a constant when it is not one already)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float, bool, np.number, np.bool_)):
        try:
            return Tensor._from_array(_constant(value, _scalar_dtype(value, like._data.dtype)))
        except OverflowError:
            raise OverflowError(f"{op}: {value!r} does not fit the tensor's dtype {like.dtype} "
                                f"(shape {like.shape})") from None
    if isinstance(value, (np.ndarray, list, tuple)):
        return Tensor._from_array(_to_array(value))
    raise TypeError(f"{op}: unsupported operand of type {type(value).__name__} (tensor shape {like.shape})")


def _pair(x: Tensor, other: Any, op: str, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """The two operands of a binary op, ``(x, other)`` or reversed, cast to ``ops.result_dtype`` where they differ."""
    y = _operand(other, x, op)
    if x._data.dtype != y._data.dtype:  # the rare case: one dtype rule for every binary op
        dtype = ops.result_dtype(x._data, y._data)
        x, y = _cast(x, dtype), _cast(y, dtype)
    return (y, x) if reverse else (x, y)


def _binary_method(rule: type[Function], op: str, formula: str, reverse: bool = False) -> Callable[..., Tensor]:
    """The Tensor method of a binary rule: the other side as a Tensor (a number becomes a constant), both cast
    to ``result_dtype`` where they differ. Two tensors of one dtype, the usual case, go straight to the rule."""
    apply = rule.apply

    def method(self: Tensor, other: Any) -> Tensor:
        if type(other) is Tensor and other._data.dtype is self._data.dtype:
            return apply(other, self) if reverse else apply(self, other)
        return apply(*_pair(self, other, op, reverse))

    method.__name__ = op
    method.__doc__ = f"{formula}, recorded as the rule ``{rule.name}`` (NumPy broadcasting; numbers on either side)."
    return method


def _cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` as ``dtype``: an op (recorded when ``t`` needs a gradient); too big a value becomes inf, as in PyTorch."""
    return t if t._data.dtype == dtype else ops.Cast.apply(t, dtype=dtype)


def _half_in_float32(method: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """A reduction that, on float16, runs in float32 and rounds its result to float16 (two casts on the graph), as
    PyTorch accumulates half precision in float: the variance of 1,000 float16 values near 100 is finite."""

    @functools.wraps(method)
    def run(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if self._data.dtype != ops.HALF:
            return method(self, *args, **kwargs)
        return _cast(method(_cast(self, np.dtype(np.float32)), *args, **kwargs), ops.HALF)

    return run


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


def _new_axis(dim: int, ndim: int, op: str) -> int:
    """Where a new axis goes in a tensor of ``ndim`` dimensions: ``dim`` from -ndim-1 to ndim, as PyTorch."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be a single int, got {dim!r}")
    if not -ndim - 1 <= dim <= ndim:
        raise np.exceptions.AxisError(f"{op}: dim {dim} is out of range [{-ndim - 1}, {ndim}] for a tensor with "
                                      f"{ndim} dimensions")
    return int(dim) % (ndim + 1)


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


def _gather_index(op: str, t: Tensor, dim: int, index: Any) -> tuple[np.ndarray, ...]:
    """The NumPy index that picks, along ``dim``, the positions ``index`` holds (PyTorch's gather/scatter
    addressing): ``index`` itself along ``dim``, and each position of ``index`` along the other dimensions."""
    index = np.asarray(index.data if isinstance(index, Tensor) else index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers (int64), got {index.dtype}")
    if index.ndim != t.ndim:
        raise ValueError(f"{op}: index of shape {index.shape} must have as many dimensions as the input "
                         f"{t.shape}")
    dim = _one_axis(dim, t.ndim, op)
    if any(n > s for d, (n, s) in enumerate(zip(index.shape, t.shape)) if d != dim):
        raise ValueError(f"{op}: index of shape {index.shape} is larger than the input {t.shape} outside dim {dim}")
    if index.size and (index.min() < 0 or index.max() >= t.shape[dim]):
        raise IndexError(f"{op}: index out of range for dim {dim} of size {t.shape[dim]} (values from "
                         f"{index.min()} to {index.max()})")
    return tuple(index if d == dim else np.arange(n).reshape([-1 if e == d else 1 for e in range(index.ndim)])
                 for d, n in enumerate(index.shape))


def _mask(mask: Any, t: Tensor, op: str) -> np.ndarray:
    """A boolean mask broadcast to ``t``'s shape (a Tensor or an array)."""
    values = np.asarray(mask._data if isinstance(mask, Tensor) else mask)
    if values.dtype != np.bool_:
        raise TypeError(f"{op}: the mask must be boolean, got dtype {values.dtype}")
    try:
        return np.broadcast_to(values, t.shape)
    except ValueError:
        raise ValueError(f"{op}: a mask of shape {values.shape} does not broadcast to the tensor's shape "
                         f"{t.shape}") from None


def _index_arg(index: Any) -> Any:
    """Tensors inside an index become their arrays; lists become integer (or bool) arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, list):
        return np.asarray(index) if index else np.zeros(0, dtype=np.intp)  # [] indexes nothing (not floats)
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    return index


class numpy_meaning:  # noqa: N801 - a context manager, used like no_grad
    """``with numpy_meaning():`` Tensor methods whose meaning differs between NumPy and PyTorch (``var``'s default
    correction, ``transpose`` with two axes) take NumPy's, in this thread, and a Tensor that requires grad refuses
    to become a NumPy array. ``check_gradients`` runs the user's NumPy forward on Tensors under it."""

    _on = contextvars.ContextVar("tinygrad_like_numpy_meaning", default=False)

    def __enter__(self) -> numpy_meaning:
        self._token = self._on.set(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._on.reset(self._token)

    @classmethod
    def on(cls) -> bool:
        return cls._on.get()


class ValuesIndices(NamedTuple):
    """What ``sort`` and ``topk`` return, as PyTorch's: ``values`` (on the graph) and their ``indices``."""

    values: Tensor
    indices: Tensor


class Size(int):
    """A tensor's element count, an int (NumPy's ``a.size``), that is also PyTorch's ``t.size()`` (the shape) and
    ``t.size(dim)``."""

    shape: tuple[int, ...]

    def __new__(cls, count: int, shape: tuple[int, ...]) -> Size:
        size = super().__new__(cls, count)
        size.shape = shape
        return size

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        if dim is None:
            return self.shape
        return self.shape[_one_axis(dim, len(self.shape), "size")]


def _variance_args(op: str, args: tuple, kwargs: dict) -> tuple[Axis, bool, float]:
    """(axes, keepdim, correction) of ``var``/``std`` from PyTorch's or NumPy's spelling (see ``Tensor.var``)."""
    if len(args) > 3:
        raise TypeError(f"{op}: takes at most 3 positional arguments (axis, keepdim, correction), got {len(args)}")
    known = {"axis", "dim", "keepdim", "keepdims", "correction", "unbiased", "ddof"}
    unknown = set(kwargs) - known
    if unknown:
        raise TypeError(f"{op}: unexpected keyword argument(s) {', '.join(sorted(unknown))}")
    named = dict(zip(("axis", "keepdim", "correction"), args))
    clash = set(named) & set(kwargs)
    if clash:
        raise TypeError(f"{op}: {', '.join(sorted(clash))} given twice")
    kwargs = {**named, **kwargs}
    numpy_way = numpy_meaning.on() or bool({"ddof", "keepdims"} & set(kwargs)) or ("axis" in kwargs and not args)
    given = [k for k in ("correction", "unbiased", "ddof") if kwargs.get(k) is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give one of correction, unbiased and ddof, got {', '.join(given)}")
    if given:
        value = kwargs[given[0]]
        correction = int(value) if given[0] == "unbiased" else value
    else:
        correction = 0 if numpy_way else 1
    axis, keepdim = _reduce_args(op, kwargs.get("axis"), kwargs.get("keepdim", False), kwargs.get("keepdims"),
                                 kwargs.get("dim"))
    return axis, keepdim, correction


# ----------------------------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------------------------


class Tensor:
    """An n-dimensional array that records the operations applied to it, for reverse-mode differentiation."""

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_retains_grad", "_version", "_base", "_views",
                 "__weakref__")
    # -- the NumPy protocol (numpy_protocol.py) -------------------------------------------------------------
    # np.exp(t), np.sum(t, axis=1), ndarray + t, np.where(c, t, 0) ... run as Tensor ops and record the graph;
    # unsupported NumPy functions raise TypeError. Tensor's own operators never go through it.
    __array_ufunc__ = numpy_protocol.array_ufunc
    __array_function__ = numpy_protocol.array_function

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        """``data``: a number, (nested) list, NumPy array or Tensor. A NumPy array of the wanted dtype is wrapped
        without a copy (as ``np.asarray``), except for ``requires_grad=True``: optimizers update parameters in
        place, so a parameter always gets memory of its own."""
        self._data: np.ndarray = _to_array(data, dtype, copy=requires_grad)
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating point tensors can require grad, got dtype {self._data.dtype}")
        self.requires_grad: bool = bool(requires_grad)
        self.grad: Tensor | None = None
        self._ctx: Function | ReleasedGraph | None = None
        self._retains_grad = False
        self._version = 0
        self._base: Tensor | None = None  # the tensor whose memory this one views (one version for both)
        self._views: list | None = None  # weak references to the views of this tensor

    _from_array = staticmethod(engine.constant)  # wraps an array without copying, off the graph

    # -- properties and values out ------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The values, a NumPy array. Changing it with NumPy directly (``t.data += 1``, ``p.data -= lr *
        p.grad``) is not tracked: no version grows, no graph records it."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):  # p.data = p.data - lr * p.grad: the array, never a Tensor inside
            value = value._data
        if not isinstance(value, np.ndarray):
            raise TypeError(f"data: expects a NumPy array or a Tensor, got {type(value).__name__}; "
                            "use t.data = np.asarray(value)")
        self._data = value

    @property
    def shape(self) -> Shape:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> Size:
        """Number of elements, an int as NumPy's ``a.size``; also callable as PyTorch's ``t.size()`` (the shape)
        and ``t.size(dim)``."""
        return Size(self._data.size, self._data.shape)

    def numel(self) -> int:
        """Number of elements (PyTorch's name for ``size``)."""
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded operation."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        """The recorded rule that made this tensor (its ``inputs`` lead on through the graph), None for a leaf.
        After a backward without ``retain_graph`` it is a ``ReleasedGraph`` that only keeps the name."""
        return self._ctx

    @property
    def op(self) -> str | None:
        """Name of the operation that made this tensor, None for a leaf."""
        return None if self._ctx is None else self._ctx.name

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def numpy(self) -> np.ndarray:
        return self._data

    def item(self) -> Any:
        if self._data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a number, got shape {self.shape}")
        return self._data.item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self.requires_grad and numpy_meaning.on() and is_grad_enabled():
            raise TypeError(
                f"a Tensor of shape {self.shape} that check_gradients differentiates is turned into a NumPy array "
                "here (e.g. written into one: out[:, :] = x @ w, or np.asarray), which would cut it from the graph; "
                "build the result from Tensor operations or np.concatenate / np.stack instead")
        rule = engine.graph_backward_running()
        if rule is not None and self.requires_grad:
            raise RuntimeError(
                f"create_graph: the backward of {rule.label()} turns a Tensor (shape {self.shape}) into a NumPy array, "
                "which would cut it from the graph and make the second derivative silently wrong; compute with the "
                "Tensor itself (operators, the NumPy functions Tensors support), not np.asarray or .numpy()"
            )
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """A one-element integer tensor is an index, as in PyTorch: ``data[i:i + n] for i in torch.randint(...)``."""
        if self._data.size != 1 or self._data.dtype.kind not in "iub":  # bool too, as PyTorch (True is 1)
            raise TypeError(f"index: only integer tensors of a single element can be converted to an index, got "
                            f"shape {self.shape} {self.dtype}")
        return int(self._data.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data)

    __hash__ = object.__hash__  # comparisons return tensors, identity stays the hash

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's number (as PyTorch); other tensors as ``str``."""
        if spec and self._data.size == 1:
            return format(self._data.item(), spec)
        return format(str(self), spec)

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", dtype={self.dtype}"
        if self.requires_grad:
            extra += f", requires_grad=True, op={self.op}" if self._ctx is not None else ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # -- graph handling -----------------------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same data, cut from the graph (sharing its version: a change through either is seen by both)."""
        out = Tensor._from_array(self._data)
        engine.link_view(out, self)
        return out

    def clone(self) -> Tensor:
        """A copy in memory of its own, on the graph (its gradient passes through unchanged)."""
        return ops.Clone.apply(self)

    copy = clone  # NumPy's name

    # PyTorch's conversions and queries (the CPU is the only device)
    def float(self) -> Tensor:
        """As float32 (PyTorch's ``.float()``), on the graph."""
        return self.cast(np.float32)

    def double(self) -> Tensor:
        """As float64, on the graph."""
        return self.cast(np.float64)

    def long(self) -> Tensor:
        """As int64 (no gradient goes through integers)."""
        return Tensor._from_array(self._data.astype(np.int64))

    def int(self) -> Tensor:
        """As int32 (no gradient goes through integers)."""
        return Tensor._from_array(self._data.astype(np.int32))

    def bool(self) -> Tensor:
        """As bool (no gradient)."""
        return Tensor._from_array(self._data.astype(np.bool_))

    def type_as(self, other: Tensor) -> Tensor:
        """As ``other``'s dtype."""
        return self.cast(other.dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(other)`` (its dtype) or ``to("cpu")`` / ``to(device)`` (the one device: no copy),
        also as keywords; ``non_blocking=`` and ``copy=`` change nothing here (see ``device_and_dtype``)."""
        dtype = device_and_dtype("to", *args, **kwargs)
        return self if dtype is None else self.cast(dtype)

    def cpu(self) -> Tensor:
        return self

    def contiguous(self) -> Tensor:
        """This tensor (NumPy reads any layout)."""
        return self

    def nelement(self) -> int:
        return self._data.size

    def dim(self) -> int:
        return self._data.ndim

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        """The last two axes swapped."""
        return self.transpose(-2, -1)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
        """PyTorch's ``sort``: the values along ``dim`` in order (equal values keep their order), on the graph,
        and where they were (int64)."""
        order = np.argsort(-self._data if descending else self._data, axis=dim, kind="stable")
        return ValuesIndices(np.take_along_axis(self, order, axis=dim), Tensor._from_array(order.astype(np.int64)))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002
        """PyTorch's ``topk``: the ``k`` largest (or smallest) values along ``dim``, first first, and where they
        were."""
        size = self.shape[dim]
        if not 0 <= k <= size:
            raise ValueError(f"topk: k ({k}) must be between 0 and the size of dim {dim} ({size})")
        values, indices = self.sort(dim, descending=largest)
        keep = (slice(None),) * (dim % self.ndim) + (slice(0, k),)
        return ValuesIndices(values[keep], Tensor._from_array(indices._data[keep]))

    def t(self) -> Tensor:
        """PyTorch's ``t()``: a matrix transposed (a tensor of at most 2 dimensions)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dimensions, got shape {self.shape}; use "
                             "transpose(dim0, dim1) or .mT")
        return self.T

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle (at and below ``diagonal``) of the last two axes, zeros above."""
        return np.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle (at and above ``diagonal``) of the last two axes, zeros below."""
        return np.triu(self, diagonal)

    def cumsum(self, dim: int) -> Tensor:
        """Running sums along ``dim``."""
        return np.cumsum(self, axis=dim)

    @_half_in_float32
    def logsumexp(self, dim: Axis, keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed stably (the maximum taken out first, as a constant)."""
        peak = np.max(self._data, axis=dim, keepdims=True)
        peak = Tensor._from_array(np.where(np.isfinite(peak), peak, 0))
        out = (self - peak).exp().sum(dim, keepdim=True).log() + peak
        return out if keepdim else out.squeeze(dim)

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
        """PyTorch's ``split``: pieces of ``split_size_or_sections`` along ``dim`` (the last may be smaller), or
        of the listed sizes; each a view."""
        size = self.shape[dim]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, size - start) for start in range(0, size, step)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != size:
                raise ValueError(f"split: sections {sizes} do not add up to {size}, the size of dim {dim}")
        lead, start, parts = (slice(None),) * (dim % self.ndim), 0, []
        for n in sizes:
            parts.append(self[lead + (slice(start, start + n),)])
            start += n
        return tuple(parts)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` pieces of equal size along ``dim`` (the last may be smaller), as PyTorch's."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        return self.split(-(-self.shape[dim] // chunks) or 1, dim)

    def repeat(self, *sizes: int) -> Tensor:
        """PyTorch's ``repeat``: the tensor tiled ``sizes[i]`` times along each axis (NumPy's ``tile``)."""
        sizes = _shape_arg(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: give at least one count per dimension ({self.ndim}), got {sizes}")
        return np.tile(self, sizes)

    def gather(self, dim: int, index: Any) -> Tensor:
        """PyTorch's ``gather``: ``out[i][j] = self[index[i][j]][j]`` for dim 0 (likewise for any dim); ``index``
        has this tensor's number of dimensions and may be smaller along the others. Its gradient adds up at
        repeated indices."""
        return self[_gather_index("gather", self, dim, index)]

    def scatter_add(self, dim: int, index: Any, src: Tensor) -> Tensor:
        """PyTorch's ``scatter_add``: a copy of this tensor with ``src[i][j]`` added at ``[index[i][j]][j]`` (for
        dim 0; likewise for any dim), repeated indices adding up. Differentiable in both tensors."""
        src = src if isinstance(src, Tensor) else Tensor(src, dtype=self.dtype)
        at = _gather_index("scatter_add", self, dim, index)
        if src.ndim != self.ndim or any(s < n for s, n in zip(src.shape, np.shape(index))):
            raise ValueError(f"scatter_add: src of shape {src.shape} must have {self.ndim} dimensions and be at "
                             f"least as large as index {np.shape(index)}")
        part = src[tuple(slice(0, n) for n in np.shape(index))]
        return self + ops.ScatterAdd.apply(part, shape=self.shape, index=at)

    def one_hot(self, num_classes: int = -1) -> Tensor:
        """PyTorch's ``F.one_hot``: int64 zeros of shape (*shape, num_classes) with a 1 at each class index
        (num_classes=-1: the largest index + 1); off the graph (indices are not differentiable). Refusals are
        PyTorch's RuntimeErrors."""
        labels = self._data
        if labels.dtype.kind not in "iu":
            raise RuntimeError(f"one_hot: expects integer class indices, got {labels.dtype} (shape {labels.shape})")
        if num_classes == -1:
            if not labels.size:
                raise RuntimeError("one_hot: cannot infer the number of classes from an empty tensor; pass "
                                   "num_classes")
            num_classes = int(labels.max()) + 1
        if labels.size and labels.min() < 0:
            raise RuntimeError(f"one_hot: class values must be non-negative, got {labels.min()}")
        if labels.size and labels.max() >= num_classes:
            raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}), got "
                               f"{labels.max()}")
        return Tensor._from_array((labels[..., None] == np.arange(num_classes)).astype(np.int64))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` (broadcast to this shape) is True, else this tensor's values (PyTorch's)."""
        return Tensor.where(_mask(mask, self, "masked_fill"), value, self)

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        """In place: ``value`` where ``mask`` is True."""
        return self._in_place("masked_fill_", ops.SetItem, value, index=_mask(mask, self, "masked_fill_"))

    def astype(self, dtype: Any) -> Tensor:
        """This tensor as another dtype, on the graph (NumPy's name for ``cast``)."""
        return self.cast(dtype)

    def ravel(self) -> Tensor:
        """All values in one axis (NumPy's ``ravel``)."""
        return self.reshape(-1)

    def cast(self, dtype: Any) -> Tensor:
        """This tensor as another dtype (as tinygrad's ``cast``); the gradient is cast back."""
        return _cast(self, _dtype_arg(dtype, "cast"))

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating point tensors can require grad, got {self.dtype}")
        if requires_grad and not self.requires_grad and self._ctx is None:
            self._data = self._data.copy()  # a parameter gets memory of its own (see __init__)
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()`` (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    # -- in-place changes -----------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Grows at every in-place change made through the library (``assign``, ``-=``, an optimizer's step);
        0 for a tensor never changed. A backward through an op that saved this tensor before the change
        raises. Writing into ``.data`` with NumPy directly is not tracked."""
        return self._version

    def assign(self, value: Any) -> Tensor:
        """Copy ``value`` into this tensor's memory (broadcast to its shape, cast to its dtype), in place; returns
        self. Recorded as the other in-place changes are."""
        return self._in_place("assign", ops.SetItem, value, index=...)

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """PyTorch's name for ``assign``: ``src``'s values copied into this tensor's memory; returns self."""
        return self.assign(src)

    def add_(self, other: Any) -> Tensor:
        """In place: ``self += other``."""
        return self._in_place("add_", ops.Add, other)

    def sub_(self, other: Any) -> Tensor:
        """In place: ``self -= other``."""
        return self._in_place("sub_", ops.Sub, other)

    def mul_(self, other: Any) -> Tensor:
        """In place: ``self *= other``."""
        return self._in_place("mul_", ops.Mul, other)

    def div_(self, other: Any) -> Tensor:
        """In place: ``self /= other``."""
        return self._in_place("div_", ops.Div, other)

    def pow_(self, other: Any) -> Tensor:
        """In place: ``self **= other``."""
        return self._in_place("pow_", ops.Pow, other)

    def zero_(self) -> Tensor:
        """In place: every value 0."""
        return self._in_place("zero_", ops.SetItem, 0, index=...)

    def fill_(self, value: Any) -> Tensor:
        """In place: every value ``value``."""
        return self._in_place("fill_", ops.SetItem, value, index=...)

    __iadd__, __isub__, __imul__, __itruediv__, __ipow__ = add_, sub_, mul_, div_, pow_

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value`` (slices, integer arrays, boolean masks; a Tensor or a number), in place; recorded
        when a gradient must go through it, as PyTorch's."""
        self._in_place("setitem", ops.SetItem, value, index=_index_arg(index))

    def _in_place(self, op: str, rule: type[Function], other: Any, **params: Any) -> Tensor:
        """Change this tensor in place by ``rule`` (its result written into this tensor's memory, in its dtype).

        Recorded (as PyTorch) when grad mode is on and this tensor or ``other`` requires grad: this tensor then
        becomes the op's output, and ops recorded before that used it keep their gradients right (engine's
        ``record_in_place``). Refused on a leaf that requires grad (change it under ``no_grad()``, as optimizers
        do) and through a view of another tensor. Without a gradient to record, only the values change. Either
        way the version of this tensor and of every view sharing its memory grows, so a backward through an op
        that saved their old values refuses."""
        if is_grad_enabled() and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            self._record_in_place(op, rule, _operand(other, self, op), **params)
            return self
        value = other._data if isinstance(other, Tensor) else other  # the common case (an update): values only
        try:
            with quiet():  # out-of-range values become inf/nan as NumPy gives them, silently
                if rule is ops.SetItem:
                    self._data[params["index"]] = value
                else:
                    rule.ufunc(self._data, value, self._data, casting="unsafe")
        except (ValueError, IndexError) as e:
            raise ValueError(f"{op}: cannot apply a value of shape {np.shape(value)} in place to a tensor of shape "
                             f"{self.shape} ({e})") from None
        engine.changed_in_place(self)
        return self

    def _record_in_place(self, op: str, rule: type[Function], value: Tensor, **params: Any) -> None:
        if "index" not in params and np.broadcast_shapes(self.shape, value.shape) != self.shape:
            raise ValueError(f"{op}: the result of shape {np.broadcast_shapes(self.shape, value.shape)} (a value of "
                             f"shape {value.shape}) does not fit in place in a tensor of shape {self.shape}")
        if self.requires_grad and self._ctx is None:
            raise RuntimeError(
                f"{op}: a leaf tensor that requires grad (shape {self.shape}) cannot be changed in place while "
                "gradients are recorded; change it under no_grad() (as optimizers do), or change a copy")
        if self._base is None:
            engine.record_in_place(self, rule, _cast(value, self.dtype), **params)
        else:
            self._in_place_through_view(op, rule, _cast(value, self.dtype), **params)
        engine.refresh_views(self._base if self._base is not None else self)

    def _in_place_through_view(self, op: str, rule: type[Function], value: Tensor, **params: Any) -> None:
        """A recorded change of a view (``row = h[0]; row += y``, ``h[0] += y``, ``h.T[0] = 0``): recorded as the
        change of its base (as PyTorch's), each view between them giving its new values back to its source."""
        base = self._base
        if base.requires_grad and base._ctx is None:
            raise RuntimeError(
                f"{op}: this tensor (shape {self.shape}) is a view of a leaf tensor that requires grad (shape "
                f"{base.shape}); change it under no_grad() (as optimizers do), or change a copy")
        part = self.clone() if rule.saves_values else self  # the base's change overwrites what the view shows
        view, new = self, rule.apply(part, value, **params)
        while True:
            ctx = view._ctx
            if not hasattr(ctx, "into_source") or (type(ctx) is ops.GetItem and not ops.is_basic_index(ctx.index)):
                raise RuntimeError(
                    f"{op}: this tensor (shape {self.shape}) is a view of another tensor (shape {base.shape}) made by "
                    f"{getattr(ctx, 'name', 'an op without a graph')}; a change through such a view is not recorded: "
                    "change the base (t[index] = ...) or compute out of place (v = v + x)")
            index, values = ctx.into_source(new)
            source = ctx.inputs[0]
            if source is base:
                break
            view, new = source, ops.SetItem.apply(source, values, index=index)
        engine.record_in_place(base, ops.SetItem, values, index=index)

    def _accumulate(self, grad: Any, owned: bool = False) -> None:
        """Add ``grad`` to ``.grad``; ``owned`` says no one else holds ``grad``, so it need not be copied.

        A Tensor ``grad`` (``create_graph=True``) is added as an op, so the sum keeps its graph (as PyTorch)."""
        if isinstance(grad, Tensor):
            self.grad = grad if self.grad is None else self.grad + grad
        elif self.grad is None:
            self.grad = Tensor._from_array(grad if owned else np.array(grad, dtype=self._data.dtype))
        elif self.grad._ctx is not None:  # a gradient with a graph: replaced, so that its graph stays true
            self.grad = Tensor._from_array(self.grad._data + grad)
        else:
            self.grad._data = self.grad._data + grad

    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), times ``gradient``, into ``.grad`` of every leaf that requires grad.

        ``gradient`` may be omitted only for a one-element tensor. The graph is released afterwards unless
        ``retain_graph=True``; going through a released graph again raises RuntimeError. With
        ``create_graph=True`` the gradients are Tensors with a graph of their own (differentiate them again, e.g.
        for a Hessian-vector product); ``retain_graph`` then defaults to True.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) does not require grad and has no graph; "
                "create the inputs with requires_grad=True, outside no_grad()"
            )
        backward(self, gradient, retain_graph, create_graph)

    # -- arithmetic (see _binary_method: x + y, x - y, x * y, x / y, x ** y, x @ y, and reversed) --------------
    add = _binary_method(ops.Add, "add", "x + other")
    sub = _binary_method(ops.Sub, "sub", "x - other")
    mul = _binary_method(ops.Mul, "mul", "x * other")
    div = _binary_method(ops.Div, "div", "x / other")
    pow = _binary_method(ops.Pow, "pow", "x ** other")
    matmul = _binary_method(ops.Matmul, "matmul", "x @ other (1-D, 2-D and batched N-D)")
    dot = matmul
    __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__ = add, sub, mul, div, pow, matmul
    __radd__ = _binary_method(ops.Add, "add", "other + x", reverse=True)
    __rsub__ = _binary_method(ops.Sub, "sub", "other - x", reverse=True)
    __rmul__ = _binary_method(ops.Mul, "mul", "other * x", reverse=True)
    __rtruediv__ = _binary_method(ops.Div, "div", "other / x", reverse=True)
    __rpow__ = _binary_method(ops.Pow, "pow", "other ** x", reverse=True)
    __rmatmul__ = _binary_method(ops.Matmul, "matmul", "other @ x", reverse=True)

    def neg(self) -> Tensor:
        return self * -1

    __neg__ = neg

    # -- elementwise (t.exp(), t.sin(), ... are installed from the rules' ``methods``, see _install) -------------
    def square(self) -> Tensor:
        return self * self

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Values below ``min`` raised to it, above ``max`` lowered to it (numbers, or None for no bound)."""
        for name, bound in (("min", min), ("max", max)):
            if bound is not None and not isinstance(bound, (int, float, np.number)):
                raise TypeError(f"clip: {name} must be a number, got {type(bound).__name__} (tensor shape "
                                f"{self.shape}); for bounds that are tensors use np.maximum(t, low) / np.minimum")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip  # PyTorch's name

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """In place: ``clamp``."""  # clip saves its input: a copy, since this tensor's values are then replaced
        return self._in_place("clamp_", ops.SetItem, self.clone().clip(min, max), index=...)

    def leaky_relu(self, neg_slope: float = 0.01) -> Tensor:
        """x where x > 0, else ``neg_slope * x``."""
        return ops.LeakyRelu.apply(self, slope=neg_slope)

    def where(self, a: Any, b: Any) -> Tensor:
        """``a`` where this boolean tensor is True, else ``b`` (broadcast together; numbers allowed on both sides).

        Also called as ``Tensor.where(cond, a, b)``; ``cond`` may then be a NumPy boolean array.
        """
        cond = self if isinstance(self, Tensor) else Tensor(self)
        if cond.dtype != np.bool_:
            raise TypeError(f"where: the condition must be a boolean tensor, got {cond.dtype} (shape {cond.shape}); "
                            "compare first, e.g. (x > 0).where(a, b)")
        if not isinstance(a, Tensor):  # a number takes the other side's dtype, as in arithmetic
            a = _operand(a, b, "where") if isinstance(b, Tensor) else Tensor(a)
        return ops.Where.apply(cond, a, _operand(b, a, "where"))

    # -- reductions ---------------------------------------------------------------------------------------
    def sum(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("sum", axis, keepdim, keepdims, dim)
        return ops.Sum.apply(self, axes=_axes(axis, self.ndim, "sum"), keepdim=keepdim)

    @_half_in_float32
    def mean(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
             dim: Axis = None) -> Tensor:
        axis, keepdim = _reduce_args("mean", axis, keepdim, keepdims, dim)
        axes = _axes(axis, self.ndim, "mean")
        count = self.size if axes is None else math.prod(self.shape[a] for a in axes)
        if count == 0:  # nothing to average: nan, as PyTorch and tinygrad (and no warning)
            return self.sum(axes, keepdim) * math.nan
        return self.sum(axes, keepdim) / count

    def max(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        """The largest value over ``axis`` (all axes by default). Over one axis (an int), as PyTorch's
        ``max(dim)``: the values Tensor also carries ``.values`` (itself) and ``.indices`` (the first position of
        each maximum, or of its first nan), and the gradient goes to those positions. Over all axes or a tuple
        of them, as ``max()`` and ``amax``: tied maxima share the gradient equally (nans take it)."""
        return self._extreme(ops.Max, axis, keepdim, keepdims, dim)

    def min(self, axis: Axis = None, keepdim: bool = False, *, keepdims: bool | None = None,
            dim: Axis = None) -> Tensor:
        """The smallest value over ``axis``; over one axis with ``.values`` and ``.indices`` as ``max``."""
        return self._extreme(ops.Min, axis, keepdim, keepdims, dim)

    def _extreme(self, rule: type[ops.Max], axis: Axis, keepdim: bool, keepdims: bool | None, dim: Axis) -> Tensor:
        axis, keepdim = _reduce_args(rule.name, axis, keepdim, keepdims, dim)
        axes = _axes(axis, self.ndim, rule.name)
        one = isinstance(axis, (int, np.integer)) and self._data.size > 0
        values = rule.apply(self, axes=axes, keepdim=keepdim, indexed=one and len(axes) == 1)  # 0-d: axes ()
        if not one:
            return values
        indices = rule.arg(self._data, axis=int(axis), keepdims=keepdim).astype(np.int64)
        return ExtremeValues._carrying(values, Tensor._from_array(indices))

    @_half_in_float32
    def var(self, *args: Any, **kwargs: Any) -> Tensor:
        """sum((x - mean)^2) / (n - correction) over the axes given, PyTorch's ``var(dim=None, keepdim=False,
        correction=1)`` (``unbiased=`` too) and NumPy's ``var(axis=None, ddof=0, keepdims=False)``.

        Written the NumPy way (``axis=``, ``ddof=``, ``keepdims=``, or inside ``check_gradients``' forward) it
        divides by n - ddof, n by default; otherwise by n - correction, n - 1 by default (the sample variance,
        as PyTorch). Fewer than ``correction + 1`` elements give inf or nan (as PyTorch)."""
        axis, keepdim, correction = _variance_args("var", args, kwargs)
        axes = _axes(axis, self.ndim, "var")
        count = self.size if axes is None else math.prod(self.shape[a] for a in axes)
        centred = self - self.sum(axes, keepdim=True) / count
        return centred.square().sum(axes, keepdim) / max(count - correction, 0)

    @_half_in_float32
    def std(self, *args: Any, **kwargs: Any) -> Tensor:
        """The square root of ``var`` (the same arguments and meanings)."""
        return self.var(*_variance_args("std", args, kwargs)).sqrt()

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        return ops.Softmax.apply(self, axis=_one_axis(axis, self.ndim, "softmax"))

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        return ops.LogSoftmax.apply(self, axis=_one_axis(axis, self.ndim, "log_softmax"))

    # -- shape ----------------------------------------------------------------------------------------------
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return ops.Reshape.apply(self, shape=_shape_arg(shape, "reshape"))

    view = reshape  # PyTorch's name (here always a new node over the same values, never a memory alias)

    def permute(self, *order: int | Sequence[int]) -> Tensor:
        order = _shape_arg(order, "permute")
        if sorted(a % self.ndim if self.ndim else a for a in order) != list(range(self.ndim)):
            raise ValueError(f"permute: {order} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, order=tuple(a % self.ndim for a in order))

    def transpose(self, *axes: int | Sequence[int], dim0: int | None = None, dim1: int | None = None) -> Tensor:
        """Two axes swapped, as tinygrad's and PyTorch's ``transpose(dim0=1, dim1=0)``; NumPy's forms too: a tuple,
        one axis or three or more axes permute. Inside ``check_gradients``' forward (NumPy's meaning) no axes
        reverse them all and two axes are a permutation, as in NumPy."""
        if dim0 is not None or dim1 is not None:  # PyTorch's keywords
            axes = (1 if dim0 is None else dim0, 0 if dim1 is None else dim1)
        elif numpy_meaning.on() or len(axes) != 2:
            return self.permute(*axes) if axes else self.T if numpy_meaning.on() else self.transpose(1, 0)
        dim0, dim1 = axes
        a, b = _one_axis(dim0, self.ndim, "transpose"), _one_axis(dim1, self.ndim, "transpose")
        if self.ndim == 0:
            return ops.Permute.apply(self, order=())
        order = list(range(self.ndim))
        order[a], order[b] = order[b], order[a]
        return ops.Permute.apply(self, order=tuple(order))

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's and PyTorch's name
        """All axes reversed."""
        order = _REVERSED_AXES[self.ndim] if self.ndim < len(_REVERSED_AXES) else tuple(range(self.ndim))[::-1]
        return ops.Permute.apply(self, order=order)

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
        return ops.Expand.apply(self, shape=shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of size 1 at ``dim`` (from -ndim-1 to ndim, as PyTorch)."""
        position = _new_axis(dim, self.ndim, "unsqueeze")
        return self.reshape(self.shape[:position] + (1,) + self.shape[position:])

    def squeeze(self, dim: Axis = None) -> Tensor:
        """Drop the axes of size 1 (those among ``dim``, an int or a tuple, when given; others are kept, as PyTorch)."""
        axes = range(self.ndim) if dim is None else _axes(dim, self.ndim, "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def cat(self, *others: Tensor, dim: int = 0) -> Tensor:
        """Join tensors along an existing axis ``dim``: ``t.cat(u, v)``, ``Tensor.cat(t, u, v)`` or
        ``Tensor.cat([t, u, v])``. Shapes must agree outside ``dim``."""
        tensors = _tensor_list(self, others, "cat")
        if tensors[0].ndim == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be concatenated (stack them instead)")
        return ops.Cat.apply(*tensors, axis=_one_axis(dim, tensors[0].ndim, "cat"))

    def stack(self, *others: Tensor, dim: int = 0) -> Tensor:
        """Join tensors of one shape along a new axis ``dim``: ``Tensor.stack(t, u)``, ``t.stack(u)`` or
        ``Tensor.stack([t, u])``."""
        tensors = _tensor_list(self, others, "stack")
        for t in tensors[1:]:
            if t.shape != tensors[0].shape:
                raise ValueError(f"stack: tensors must have the same shape, got {tensors[0].shape} and {t.shape}")
        position = _new_axis(dim, tensors[0].ndim, "stack")
        return ops.Cat.apply(*[t.unsqueeze(position) for t in tensors], axis=position)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_index_arg(index))

    # -- layers ---------------------------------------------------------------------------------------------
    def conv2d(self, weight: Tensor, bias: Tensor | None = None, stride: int | Sequence[int] = 1,
               padding: int | Sequence[int] = 0) -> Tensor:
        """2-D cross-correlation (PyTorch's conv2d) of (N, C, H, W) input with a weight (out_channels, C, kh, kw)
        and an optional bias (out_channels,); ``stride`` and ``padding`` (zeros) an int or (height, width)."""
        inputs = (self, weight) if bias is None else (self, weight, bias)
        return ops.Conv2d.apply(*inputs, stride=stride, padding=padding)

    def max_pool2d(self, kernel_size: int | Sequence[int] = 2, stride: int | Sequence[int] | None = None) -> Tensor:
        """The maximum of each kernel window of (N, C, H, W) input; ``stride`` defaults to ``kernel_size``."""
        return ops.MaxPool2d.apply(self, kernel_size=kernel_size, stride=stride)

    def dropout(self, p: float = 0.5, training: bool = True) -> Tensor:
        """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), so the expected value is
        unchanged (as PyTorch's ``F.dropout``); the identity when ``training`` is False or ``p == 0``, zeros for
        ``p == 1``. The mask comes from the generator ``Tensor.manual_seed`` seeds; ``nn.Dropout`` passes its
        module's ``training`` flag."""
        check_probability(p, "p", "dropout")
        if not training or p == 0:
            return self
        dtype = self.dtype if self.dtype.kind == "f" else np.dtype(np.float32)
        if p == 1:
            return self * Tensor._from_array(np.zeros(self.shape, dtype))
        keep = _rng.random(self.shape, dtype=np.float32) >= p
        return self * Tensor._from_array(keep.astype(dtype) / dtype.type(1 - p))  # a composition: x * mask

    # -- losses ---------------------------------------------------------------------------------------------
    def cross_entropy(self, target: Any, reduction: str = "mean") -> Tensor:
        """Cross-entropy of (N, C) logits against integer labels (N,) or probabilities (N, C).

        Computed from log_softmax (so any logits are safe); its gradient is ``softmax - target``, divided by N
        for ``reduction="mean"``. ``reduction="sum"`` sums over the samples, ``"none"`` gives one per sample.
        The output of ``softmax`` is refused: softmax would be applied twice, which trains, silently, worse.
        """
        refuse_probabilities(self, "cross_entropy")
        if self.ndim != 2:
            raise ValueError(f"cross_entropy: expects (N, C) logits, got shape {self.shape}")
        n, classes = self.shape
        labels = target._data if isinstance(target, Tensor) else np.asarray(target)
        if labels.dtype.kind in "iu" and labels.shape == (n,):  # the rule checks their range
            target = target if isinstance(target, Tensor) else Tensor._from_array(labels)
        elif labels.dtype.kind == "f" and labels.shape == (n, classes) and classes:
            target = target if isinstance(target, Tensor) else Tensor._from_array(labels)
        else:
            raise ValueError(
                f"cross_entropy: target must be integer labels of shape ({n},) or probabilities of shape "
                f"({n}, {classes}), got dtype {labels.dtype} and shape {labels.shape}"
            )
        return reduce_loss(ops.CrossEntropy.apply(self, target), reduction, "cross_entropy")

    def binary_crossentropy(self, target: Any, reduction: str = "mean") -> Tensor:
        """Binary cross-entropy of probabilities ``self`` against ``target`` in [0, 1], mean over all elements."""
        target = _operand(target, self, "binary_crossentropy")
        if target.shape != self.shape:
            raise ValueError(f"binary_crossentropy: target shape {target.shape} differs from input shape {self.shape}")
        return reduce_loss(ops.BinaryCrossEntropy.apply(self, target), reduction, "binary_crossentropy")

    # -- no gradient ----------------------------------------------------------------------------------------
    def argmax(self, axis: int | None = None, keepdim: bool = False) -> Tensor:
        axis = None if axis is None else _one_axis(axis, self.ndim, "argmax")
        if self._data.size == 0:
            raise ValueError(f"argmax: cannot take the argmax of an empty tensor of shape {self.shape}")
        return Tensor._from_array(np.argmax(self._data, axis=axis, keepdims=keepdim))

    def argmin(self, axis: int | None = None, keepdim: bool = False) -> Tensor:
        axis = None if axis is None else _one_axis(axis, self.ndim, "argmin")
        if self._data.size == 0:
            raise ValueError(f"argmin: cannot take the argmin of an empty tensor of shape {self.shape}")
        return Tensor._from_array(np.argmin(self._data, axis=axis, keepdims=keepdim))

    def all(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """True where every value (along ``dim``) is nonzero; a bool tensor off the graph."""
        return Tensor._from_array(np.all(self._data, axis=dim, keepdims=keepdim))

    def any(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """True where some value (along ``dim``) is nonzero; a bool tensor off the graph."""
        return Tensor._from_array(np.any(self._data, axis=dim, keepdims=keepdim))

    def _compare(self, other: Any, ufunc: np.ufunc, op: str) -> Tensor:
        other = other._data if isinstance(other, Tensor) else other
        if not isinstance(other, (int, float, bool, np.number, np.bool_, np.ndarray, list, tuple)):
            raise TypeError(f"{op}: cannot compare a tensor (shape {self.shape}) with {type(other).__name__}")
        try:
            return Tensor._from_array(ufunc(self._data, other))
        except np.exceptions.DTypePromotionError:
            raise TypeError(f"{op}: cannot compare a tensor of dtype {self.dtype} with {other!r}") from None
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
        """Seed the library's generator: randn, rand, uniform, dropout masks, nn.init, the layers' initial weights
        (when no rng is given) and data.batches' shuffling (when no seed is given)."""
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
        with quiet():
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
        if not low <= high:
            raise ValueError(f"uniform: low ({low}) must not be greater than high ({high})")
        data = _rng.uniform(low, high, _factory_shape(shape, "uniform"))
        return Tensor(data.astype(_dtype_arg(dtype, "uniform")), requires_grad)

    @staticmethod
    def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros_like(t._data, dtype=dtype), requires_grad)

    @staticmethod
    def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones_like(t._data, dtype=dtype), requires_grad)

    @staticmethod
    def full_like(t: Tensor, value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.full_like(t._data, value, dtype=dtype), requires_grad)


def _tensor_list(first: Any, others: Sequence[Any], op: str) -> list[Tensor]:
    """The tensors of ``cat`` and ``stack``: given one by one, or as one list (``Tensor.cat([a, b])``)."""
    items = list(first) if isinstance(first, (list, tuple)) and not others else [first, *others]
    if not items:
        raise ValueError(f"{op}: expects at least one tensor")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in items]


def refuse_probabilities(logits: Tensor, op: str) -> None:
    """Refuse the output of ``softmax`` where a loss takes logits: softmax would be applied twice, which trains,
    silently, worse."""
    if logits.op == "softmax":
        raise ValueError(
            f"{op}: the input (shape {logits.shape}) is the output of softmax, but {op} takes logits and applies "
            "log_softmax itself; pass the logits, e.g. mlp.logits(x) instead of mlp(x)"
        )


def reduce_loss(losses: Tensor, reduction: str, op: str) -> Tensor:
    """Per-sample ``losses`` averaged (``"mean"``), summed (``"sum"``) or kept (``"none"``); the losses use it."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


_VALUE_SLOTS = tuple(s for s in Tensor.__slots__ if s != "__weakref__")  # what makes a Tensor (copied whole)


class ExtremeValues(Tensor):
    """What ``max(dim)`` / ``min(dim)`` return: the values Tensor itself (tinygrad's meaning, so arithmetic on it
    works), carrying ``.values`` (itself) and ``.indices`` as PyTorch's named pair does."""

    __slots__ = ("indices",)

    @staticmethod
    def _carrying(values: Tensor, indices: Tensor) -> ExtremeValues:
        """``values`` (just made by a rule) as an ExtremeValues holding ``indices``: the same graph node."""
        out = object.__new__(ExtremeValues)
        for slot in _VALUE_SLOTS:
            setattr(out, slot, getattr(values, slot))
        out.indices = indices
        return out

    @property
    def values(self) -> ExtremeValues:
        return self


def _install(rule: type[Function]) -> None:
    """Give Tensor the methods a rule names in ``methods``: ``t.exp()`` is ``Exp.apply(t)`` (a name Tensor already
    has is kept: a user's rule cannot replace a method by accident)."""
    for name in rule.methods:
        if name not in Tensor.__dict__:
            method = _rule_method(rule.apply)
            method.__name__ = method.__qualname__ = name
            method.__doc__ = rule.__doc__
            setattr(Tensor, name, method)


def _rule_method(apply: Callable[..., Tensor]) -> Callable[[Tensor], Tensor]:
    def method(self: Tensor) -> Tensor:
        return apply(self)

    return method


for _rule in engine.rules().values():
    _install(_rule)
engine.set_tensor_type(Tensor, _install)
