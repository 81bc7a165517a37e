"""NumPy's protocols on Tensor: a function written with NumPy runs unchanged on Tensors and records the graph.
A NumPy call with a Tensor among its arguments comes here (``__array_ufunc__``, ``__array_function__``) and runs
as the Tensor method or the rule (``implements``) that computes it, or as a composite of rules (a handler below:
``hstack`` is ``concatenate`` after ``atleast_1d``, ``split`` takes slices, ``einsum`` is products and sums);
non-differentiable functions give Tensors without grad or plain NumPy results; the functions in ``REFUSED`` raise
TypeError saying why, and anything else raises TypeError naming it. See docs/numpy-on-tensors.md.
"""

from __future__ import annotations

import collections
import functools
import inspect
import math
import operator
import string
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from . import engine, ops

__all__ = ["array_function", "array_ufunc", "refused", "supported"]

_NO_VALUE = np._NoValue  # NumPy's marker for an argument that was not given

Handler = Callable[..., Any]


# ----------------------------------------------------------------------------------------------------------
# Helpers: Tensors from the other arguments
# ----------------------------------------------------------------------------------------------------------


def _as_tensor(T: type, value: Any, like: Any) -> Any:
    """``value`` as a Tensor; a Python or NumPy scalar next to a float tensor takes its dtype (as ``t * 2`` does)."""
    if isinstance(value, T):
        return value
    if np.ndim(value) == 0 and not isinstance(value, np.ndarray) and like is not None and like.dtype.kind == "f":
        return T(np.asarray(value, dtype=like.dtype))
    return T(value if isinstance(value, (int, float, bool)) else np.asarray(value))


def _first_tensor(T: type, *values: Any) -> Any:
    return next((v for v in values if isinstance(v, T)), None)


def _data(T: type, value: Any) -> Any:
    """The arrays inside ``value`` (Tensors unwrapped, also inside lists and tuples)."""
    if isinstance(value, T):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_data(T, v) for v in value)
    return value


def _refuse(name: str, **options: Any) -> None:
    """TypeError for NumPy options a Tensor cannot honour (``out=`` writes into an array in place, ...); ``name``
    is the function's name after ``np.`` (``linalg.norm``)."""
    given = [key for key, value in options.items() if value is not None and value is not _NO_VALUE]
    if given:
        why = "an option of NumPy's that Tensors do not take"
        if set(given) <= {"out", "dtype", "where", "casting"}:
            why = "the op returns a new Tensor: it cannot write into an array, change the dtype or mask the computation"
        raise TypeError(f"np.{name}: {', '.join(f'{k}=' for k in given)} not supported on Tensors ({why})")


def _refuse_dtype(name: str, dtype: Any, like: Any) -> None:
    """``dtype=`` is accepted when it is the dtype the result has anyway, refused otherwise."""
    if dtype is not None and dtype is not _NO_VALUE and np.dtype(dtype) != like.dtype:
        _refuse(name, dtype=dtype)


def _differentiable(T: type, *values: Any) -> bool:
    return any(isinstance(v, T) and v.requires_grad for v in values)


def _apply_rule(T: type, rule: type[engine.Function], args: tuple, kwargs: dict, func: Any = None) -> Any:
    """A NumPy call that a rule ``implements``: the arguments bound to the rule's ``forward`` by its signature,
    those without a default (the arrays) as Tensors of one dtype, the others as keyword parameters. For a NumPy
    function (``func``, not a ufunc) the call is first read with NumPy's own signature (``_numpy_call``)."""
    if func is not None and not isinstance(func, np.ufunc):
        args, kwargs = _numpy_call(T, func, rule, args, kwargs)
    inputs, params = _forward_signature(rule)
    try:
        bound = inspect.Signature([*inputs, *params]).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{rule.name}: {e}") from None
    values = [bound.arguments[p.name] for p in inputs]
    like = _first_tensor(T, *values)
    tensors = [_as_tensor(T, v, like) for v in values]
    if len({t.dtype for t in tensors}) > 1:
        dtype = ops.result_dtype(*[t.data for t in tensors])
        tensors = [t.cast(dtype) for t in tensors]
    return rule.apply(*tensors, **{k: v for k, v in bound.arguments.items() if k not in {p.name for p in inputs}})


@functools.cache
def _numpy_signature(func: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a C function without a signature
        return None


def _is_default(key: str, value: Any, default: Any) -> bool:
    if value is default or value is None or value is _NO_VALUE or (key == "where" and value is True):
        return True
    return type(value) in (bool, str) and type(default) is type(value) and value == default


def _numpy_call(T: type, func: Callable, rule: type[engine.Function], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """NumPy's call of ``func`` as the rule's ``forward`` takes it: NumPy's leading array parameters by position,
    its other parameters by name (the rule's forward uses NumPy's names). An option the rule does not take is
    dropped when it is NumPy's default (or ``dtype=`` the input's dtype), refused by name otherwise."""
    signature = _numpy_signature(func)
    if signature is None:
        return args, kwargs
    name = _numpy_name(func)[3:]
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"np.{name}: {e}") from None
    inputs, params = _forward_signature(rule)
    taken = {p.name for p in params}
    order = list(signature.parameters)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        parameter = signature.parameters[key]
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            keywords.update(value)
        elif order.index(key) < len(inputs):
            positional.append(value)
        elif key in taken:
            keywords[key] = value
        elif key == "dtype" and positional:
            _refuse_dtype(name, value, _as_tensor(T, positional[0], None))
        elif not _is_default(key, value, parameter.default):
            _refuse(name, **{key: value})
    return tuple(positional), keywords


@functools.cache
def _forward_signature(rule: type[engine.Function]) -> tuple[list, list]:
    """A rule's forward parameters: (the arrays, the keyword parameters with their defaults)."""
    parameters = list(inspect.signature(rule.forward).parameters.values())[1:]  # without self
    return ([p for p in parameters if p.default is inspect.Parameter.empty],
            [p for p in parameters if p.default is not inspect.Parameter.empty])


# ----------------------------------------------------------------------------------------------------------
# Ufuncs
# ----------------------------------------------------------------------------------------------------------


def _unary(method: str) -> Handler:
    def run(T: type, x: Any) -> Any:
        return getattr(x, method)()

    return run


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and value == 0


def _extremum(compare: np.ufunc, relu_sign: int) -> Handler:
    """``np.maximum`` (``compare`` = ``np.greater``) and ``np.minimum`` (``np.less``).

    Against the scalar 0 it is ``relu`` (``-relu(-x)`` for the minimum), the op users mean by it. Otherwise a
    selection: ``a`` where it wins, ``b`` where it wins, and their mean at ties, so a tie shares the gradient
    equally (as PyTorch and tinygrad) and nan propagates as in NumPy.
    """

    def run(T: type, a: Any, b: Any) -> Any:
        for x, other in ((a, b), (b, a)):
            if isinstance(x, T) and _is_zero(other):
                return x.relu() if relu_sign > 0 else -((-x).relu())
        like = _first_tensor(T, a, b)
        ta, tb = _as_tensor(T, a, like), _as_tensor(T, b, like)
        if not _differentiable(T, ta, tb):
            return T(np.maximum(ta.data, tb.data) if relu_sign > 0 else np.minimum(ta.data, tb.data))
        a_wins, b_wins = T(compare(ta.data, tb.data)), T(compare(tb.data, ta.data))
        tie = ta * 0.5 + tb * 0.5
        return ops.Where.apply(a_wins, ta, ops.Where.apply(b_wins, tb, tie))

    return run


def _nan_ignoring(compare: np.ufunc, ufunc: np.ufunc) -> Handler:
    """``np.fmax`` (``compare`` = ``np.greater``) and ``np.fmin`` (``np.less``): as ``np.maximum``, but a nan
    loses against a number, so the number and its gradient are taken; ties share the gradient equally."""

    def run(T: type, a: Any, b: Any) -> Any:
        like = _first_tensor(T, a, b)
        ta, tb = _as_tensor(T, a, like), _as_tensor(T, b, like)
        if not _differentiable(T, ta, tb):
            return T(ufunc(ta.data, tb.data))
        a_nan, b_nan = np.isnan(ta.data), np.isnan(tb.data)
        a_wins = (compare(ta.data, tb.data) | b_nan) & ~a_nan
        b_wins = (compare(tb.data, ta.data) | a_nan) & ~b_nan
        tie = ta * 0.5 + tb * 0.5
        return ops.Where.apply(T(a_wins), ta, ops.Where.apply(T(b_wins), tb, tie))

    return run


def _floating_tensor(x: Any) -> Any:
    """``x`` in floating point (float32 for integers and bools, as PyTorch)."""
    return x if x.dtype.kind == "f" else x.cast(np.float32)


def _scaled(factor: float) -> Handler:
    """A ufunc that multiplies by a constant (``np.deg2rad`` is ``x * (pi / 180)``, as NumPy computes it)."""

    def run(T: type, x: Any) -> Any:
        return _floating_tensor(x) * factor

    return run


UFUNCS: dict[np.ufunc, Handler] = {
    np.maximum: _extremum(np.greater, 1),
    np.minimum: _extremum(np.less, -1),
    np.fmax: _nan_ignoring(np.greater, np.fmax),
    np.fmin: _nan_ignoring(np.less, np.fmin),
    np.square: _unary("square"),
    np.negative: _unary("neg"),
    np.positive: lambda T, x: x,
    np.fabs: lambda T, x: _floating_tensor(x).abs(),
    np.conjugate: lambda T, x: x,  # real Tensors: the identity
    np.deg2rad: _scaled(math.pi / 180),
    np.radians: _scaled(math.pi / 180),
    np.rad2deg: _scaled(180 / math.pi),
    np.degrees: _scaled(180 / math.pi),
}

# Computed on the arrays; the result is a Tensor without grad (as ``t > 0`` is): comparisons, tests, and the
# piecewise-constant functions, whose derivative is 0 wherever it exists.
NO_GRAD_UFUNCS = frozenset({
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal, np.isfinite, np.isnan,
    np.isinf, np.signbit, np.sign, np.floor, np.ceil, np.rint, np.trunc, np.logical_and, np.logical_or,
    np.logical_xor, np.logical_not, np.floor_divide,
})


def array_ufunc(self: Any, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``Tensor.__array_ufunc__``: ``np.exp(t)``, ``ndarray + t``, ``np.maximum(t, 0)`` ... as Tensor ops."""
    T = type(self)
    name = ufunc.__name__
    if method != "__call__":
        raise TypeError(f"np.{name}.{method} is not supported on Tensors; supported: {_supported()}")
    out = kwargs.get("out")
    if out is not None and not any(isinstance(o, T) for o in out) and not (
            engine.is_grad_enabled() and _differentiable(T, *inputs)):  # p.data += -lr * p.grad: into an array
        with engine.quiet():
            return ufunc(*[_data(T, x) for x in inputs], **kwargs)  # NumPy's own, on values: nothing recorded
    if "dtype" in kwargs:
        _refuse_dtype(name, kwargs.pop("dtype"), _first_tensor(T, *inputs))
    if kwargs:
        _refuse(name, **kwargs)
    handler = UFUNCS.get(ufunc)
    if handler is not None:
        return handler(T, *inputs)
    rule = engine.implementation(ufunc)
    if rule is not None:
        return _apply_rule(T, rule, inputs, {})
    if ufunc in NO_GRAD_UFUNCS:
        with engine.quiet():
            return T(ufunc(*[_data(T, x) for x in inputs]))
    if ufunc in REFUSED:
        raise TypeError(f"np.{name} is not supported on Tensors: {REFUSED[ufunc]}; supported: {_supported()}")
    raise TypeError(f"np.{name} is not supported on Tensors (the graph cannot go through it); "
                    f"supported: {_supported()}. Use t.numpy() to compute on the values without the graph")


# ----------------------------------------------------------------------------------------------------------
# Other NumPy functions
# ----------------------------------------------------------------------------------------------------------


def _sum(T: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
         initial: Any = None, where: Any = None) -> Any:
    _refuse("sum", dtype=dtype, out=out, initial=initial, where=None if where is True else where)
    return _as_tensor(T, a, None).sum(axis, keepdims=bool(keepdims))


def _mean(T: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
          *, where: Any = None) -> Any:
    _refuse("mean", dtype=dtype, out=out, where=None if where is True else where)
    return _as_tensor(T, a, None).mean(axis, keepdims=bool(keepdims))


def _reduction(method: str) -> Handler:
    def run(T: type, a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, initial: Any = None,
            where: Any = None) -> Any:
        _refuse(method, out=out, initial=initial, where=None if where is True else where)
        return getattr(_as_tensor(T, a, None), method)(axis, keepdims=bool(keepdims))

    return run


def _dot(T: type, a: Any, b: Any, out: Any = None) -> Any:
    _refuse("dot", out=out)
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return _apply_rule(T, ops.Mul, (a, b), {})
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise TypeError(f"np.dot of arrays with more than 2 dimensions (shapes {np.shape(a)} and {np.shape(b)}) is "
                        "not supported on Tensors; use np.matmul (or @), which batches over the leading axes")
    return _apply_rule(T, ops.Matmul, (a, b), {})


def _transpose(T: type, a: Any, axes: Any = None) -> Any:
    a = _as_tensor(T, a, None)
    return a.T if axes is None else a.permute(*axes)


def _swapaxes(T: type, a: Any, axis1: int, axis2: int) -> Any:
    a = _as_tensor(T, a, None)
    order = list(range(a.ndim))
    order[axis1], order[axis2] = order[axis2], order[axis1]
    return a.permute(*order)


def _reshape(T: type, a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
             copy: bool | None = None) -> Any:
    if order != "C":
        raise TypeError(f"np.reshape: order={order!r} is not supported on Tensors (only 'C')")
    shape = newshape if shape is None else shape
    if shape is None:
        raise TypeError("np.reshape: missing the new shape")
    return _as_tensor(T, a, None).reshape(shape if isinstance(shape, (tuple, list)) else (shape,))


def _clip(T: type, a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *, min: Any = None,  # noqa: A002
          max: Any = None) -> Any:  # noqa: A002 - NumPy's keyword names
    _refuse("clip", out=out)
    low, high = (min if a_min is None else a_min), (max if a_max is None else a_max)
    a = _as_tensor(T, a, None)
    if np.ndim(low) == 0 and np.ndim(high) == 0 and not isinstance(low, T) and not isinstance(high, T):
        return a.clip(None if low is None else float(low), None if high is None else float(high))
    if low is not None:  # array bounds: a maximum, then a minimum
        a = UFUNCS[np.maximum](T, a, low)
    if high is not None:
        a = UFUNCS[np.minimum](T, a, high)
    return a


def _where(T: type, condition: Any, x: Any = None, y: Any = None) -> Any:
    cond = np.asarray(_data(T, condition))
    if x is None and y is None:  # np.where(cond) is np.nonzero: indices, not values
        return np.nonzero(cond)
    if x is None or y is None:
        raise TypeError("np.where: give either both x and y or neither")
    like = _first_tensor(T, x, y)
    if like is None:  # only the condition is a Tensor: nothing to differentiate
        return T(np.where(cond, x, y))
    return ops.Where.apply(T(cond), _as_tensor(T, x, like), _as_tensor(T, y, like))


def _concatenate(T: type, arrays: Any, axis: int | None = 0, out: Any = None, *, dtype: Any = None,
                 casting: Any = None) -> Any:
    """``np.concatenate`` on Tensors: the library's cat rule, after NumPy's own checks of the shapes."""
    _refuse("concatenate", out=out, dtype=dtype, casting=None if casting == "same_kind" else casting)
    parts = [_as_tensor(T, a, None) for a in arrays]
    if not parts:
        raise ValueError("np.concatenate: need at least one array to concatenate")
    if axis is None:
        parts, axis = [p.reshape(-1) for p in parts], 0
    ndim = parts[0].ndim
    if ndim == 0 or any(p.ndim != ndim for p in parts):
        raise ValueError(f"np.concatenate: the arrays must have the same number of dimensions (at least 1), got "
                         f"shapes {', '.join(str(p.shape) for p in parts)}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(f"np.concatenate: axis {axis} is out of range for {ndim} dimensions")
    axis %= ndim
    if any(p.shape[:axis] + p.shape[axis + 1:] != parts[0].shape[:axis] + parts[0].shape[axis + 1:] for p in parts):
        raise ValueError(f"np.concatenate: the shapes must agree except along axis {axis}, got shapes "
                         f"{', '.join(str(p.shape) for p in parts)}")
    if not _differentiable(T, *parts):
        return T(np.concatenate([p.data for p in parts], axis=axis))
    return ops.Cat.apply(*parts, axis=axis)  # the cat rule: its gradient is g split at the parts' sizes


def _stack(T: type, arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None, casting: Any = None) -> Any:
    _refuse("stack", out=out, dtype=dtype, casting=None if casting == "same_kind" else casting)
    parts = [_as_tensor(T, a, None) for a in arrays]
    if not parts:
        raise ValueError("np.stack: need at least one array to stack")
    if any(p.shape != parts[0].shape for p in parts):
        raise ValueError(f"np.stack: all arrays must have the same shape, got {', '.join(str(p.shape) for p in parts)}")
    return _concatenate(T, [_expand_dims(T, p, axis) for p in parts], axis=axis)


def _shape_of(function: Callable, T: type, a: Any, axis: Any) -> Any:
    """Reshape ``a`` to the shape NumPy's ``function`` gives (NumPy checks the axis, on a view of no memory)."""
    a = _as_tensor(T, a, None)
    return a.reshape(function(np.broadcast_to(np.int8(0), a.shape), axis).shape)


def _expand_dims(T: type, a: Any, axis: Any) -> Any:
    return _shape_of(np.expand_dims, T, a, axis)


def _squeeze(T: type, a: Any, axis: Any = None) -> Any:
    return _shape_of(np.squeeze, T, a, axis)


def _arg(function: Callable) -> Handler:
    """``np.argmax`` / ``np.argmin``: indices, as a Tensor without grad (as ``t.argmax()``)."""

    def run(T: type, a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
        _refuse(function.__name__, out=out)
        return T(function(_data(T, a), axis=axis, keepdims=keepdims))

    return run


# ----------------------------------------------------------------------------------------------------------
# Composites: NumPy functions computed by the rules above (their gradients are those rules' gradients, so they
# differentiate twice as they are). Each handler takes NumPy's signature and NumPy's meaning.
# ----------------------------------------------------------------------------------------------------------


def _tensor(T: type, a: Any) -> Any:
    return _as_tensor(T, a, None)


def _along(axis: int, part: Any) -> tuple:
    """The index taking ``part`` (a slice, an int or an integer array) along ``axis``, everything elsewhere."""
    return (slice(None),) * axis + (part,)


def _gather(a: Any, positions: np.ndarray) -> Any:
    """The elements of ``a`` at flat ``positions`` (an integer array of any shape): the graph of a selection
    whose layout NumPy computed on an array of positions (``np.take_along_axis(np.arange(n).reshape(shape),
    ...)``); its gradient adds up over repeated positions."""
    return a.reshape(-1)[positions]


def _positions(a: Any) -> np.ndarray:
    """The flat position of every element of ``a``, in ``a``'s shape."""
    return np.arange(a.size).reshape(a.shape)


def _permuted(a: Any, order: list[int] | tuple[int, ...]) -> Any:
    order = tuple(int(i) for i in order)
    return a if order == tuple(range(a.ndim)) else a.permute(*order)


# -- var, std, diff, nan_to_num --------------------------------------------------------------------------


def _moments(method: str) -> Handler:
    """``np.var`` / ``np.std``: NumPy's meaning (``ddof=0`` unless given), through ``Tensor.var``."""

    def run(T: type, a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
            keepdims: Any = False, *, where: Any = None, mean: Any = None, correction: Any = _NO_VALUE) -> Any:
        a = _tensor(T, a)
        _refuse(method, out=out, where=None if where is True else where, mean=mean)
        _refuse_dtype(method, dtype, a)
        if correction is not _NO_VALUE:
            if ddof != 0:
                raise ValueError(f"np.{method}: ddof and correction can't be provided simultaneously.")
            ddof = correction
        return getattr(_floating_tensor(a), method)(axis=axis, ddof=ddof,
                                                    keepdims=bool(keepdims) if keepdims is not _NO_VALUE else False)

    return run


def _diff(T: type, a: Any, n: int = 1, axis: int = -1, prepend: Any = _NO_VALUE, append: Any = _NO_VALUE) -> Any:
    """``np.diff``: a[1:] - a[:-1] along ``axis``, ``n`` times (after ``prepend`` and ``append``)."""
    a = _tensor(T, a)
    if n == 0:
        return a
    if n < 0:
        raise ValueError(f"np.diff: order must be non-negative but got {n!r}")
    if a.ndim == 0:
        raise ValueError("np.diff: diff requires input that is at least one dimensional")
    axis = normalize_axis_index(axis, a.ndim)
    parts = []
    for value in (prepend, a, append):
        if value is _NO_VALUE:
            continue
        value = _as_tensor(T, value, a)
        if value.ndim == 0:
            value = value.reshape((1,) * a.ndim).expand(*a.shape[:axis], 1, *a.shape[axis + 1:])
        parts.append(value)
    if len(parts) > 1:
        a = _concatenate(T, parts, axis=axis)
    if a.dtype == np.bool_:  # NumPy's diff of booleans is not_equal: no gradient
        return T(np.diff(a.data, n=n, axis=axis))
    later, earlier = _along(axis, slice(1, None)), _along(axis, slice(None, -1))
    for _ in range(n):
        a = a[later] - a[earlier]
    return a


def _nan_to_num(T: type, x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
                neginf: Any = None) -> Any:
    """``np.nan_to_num``: x where it is finite, the replacements elsewhere (they get no gradient). Always a new
    Tensor (``copy=False`` cannot change a Tensor in place)."""
    x = _tensor(T, x)
    if x.dtype.kind != "f":
        return x
    replaced = np.nan_to_num(x.data, nan=nan, posinf=posinf, neginf=neginf)
    return ops.Where.apply(T(np.isfinite(x.data)), x, T(replaced))


# -- shape: moving axes, adding axes, splitting, joining -------------------------------------------------


def _moveaxis(T: type, a: Any, source: Any, destination: Any) -> Any:
    a = _tensor(T, a)
    source = normalize_axis_tuple(source, a.ndim, "source")
    destination = normalize_axis_tuple(destination, a.ndim, "destination")
    if len(source) != len(destination):
        raise ValueError("np.moveaxis: `source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(a.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return _permuted(a, order)


def _rollaxis(T: type, a: Any, axis: int, start: int = 0) -> Any:
    a = _tensor(T, a)
    n = a.ndim
    axis = normalize_axis_index(axis, n)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise np.exceptions.AxisError(f"np.rollaxis: 'start' arg requires {-n} <= start < {n + 1}, but {start} was "
                                      "passed in")
    if axis < start:
        start -= 1
    order = list(range(n))
    order.remove(axis)
    order.insert(start, axis)
    return _permuted(a, order)


def _at_least(ndim: int) -> Handler:
    """``np.atleast_1d`` / ``2d`` / ``3d``: a reshape adding axes as NumPy adds them (one array, or a tuple)."""

    def shape_of(shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) >= ndim:
            return shape
        if len(shape) == 0:
            return (1,) * ndim
        if ndim == 2 or len(shape) == 2:
            return (1, *shape) if ndim == 2 else (*shape, 1)
        return (1, *shape, 1)  # 1-D to 3-D

    def run(T: type, *arys: Any) -> Any:
        out = []
        for a in arys:
            a = _tensor(T, a)
            shape = shape_of(a.shape)
            out.append(a if shape == a.shape else a.reshape(shape))
        return out[0] if len(out) == 1 else tuple(out)

    return run


_atleast_1d, _atleast_2d, _atleast_3d = _at_least(1), _at_least(2), _at_least(3)


def _split_bounds(n: int, indices_or_sections: Any, equal: bool, name: str) -> list[tuple[int, int]]:
    """(start, stop) of each part, as NumPy's ``split`` (``equal``) and ``array_split`` cut an axis of size n."""
    try:
        points = [0, *[operator.index(i) for i in indices_or_sections], n]
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"np.{name}: number sections must be larger than 0.") from None
        if equal and n % sections:
            raise ValueError(f"np.{name}: array split does not result in an equal division") from None
        each, extra = divmod(n, sections)
        points = np.cumsum([0] + extra * [each + 1] + (sections - extra) * [each]).tolist()
    return list(zip(points[:-1], points[1:]))


def _split_along(T: type, a: Any, indices_or_sections: Any, axis: int, equal: bool, name: str) -> list:
    a = _tensor(T, a)
    axis = normalize_axis_index(axis, a.ndim)
    return [a[_along(axis, slice(start, stop))]
            for start, stop in _split_bounds(a.shape[axis], indices_or_sections, equal, name)]


def _split(T: type, ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    return _split_along(T, ary, indices_or_sections, axis, True, "split")


def _array_split(T: type, ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    return _split_along(T, ary, indices_or_sections, axis, False, "array_split")


def _split_at(name: str, min_ndim: int, axis: Callable[[int], int]) -> Handler:
    """``np.hsplit`` / ``vsplit`` / ``dsplit``: ``split`` along the axis they name."""

    def run(T: type, ary: Any, indices_or_sections: Any) -> list:
        ary = _tensor(T, ary)
        if ary.ndim < min_ndim:
            raise ValueError(f"np.{name}: {name} only works on arrays of {min_ndim} or more dimensions")
        return _split_along(T, ary, indices_or_sections, axis(ary.ndim), True, name)

    return run


def _joined(name: str, at_least: Handler, axis: Callable[[Any], int]) -> Handler:
    """``np.hstack`` / ``vstack`` / ``dstack``: ``concatenate`` after ``atleast_1d`` / ``2d`` / ``3d``."""

    def run(T: type, tup: Any, *, dtype: Any = None, casting: Any = "same_kind") -> Any:
        parts = [at_least(T, a) for a in tup]
        if not parts:
            raise ValueError(f"np.{name}: need at least one array to concatenate")
        _refuse_dtype(name, dtype, parts[0])
        return _concatenate(T, parts, axis=axis(parts[0]), casting=casting)

    return run


def _column_stack(T: type, tup: Any) -> Any:
    """``np.column_stack``: 0-d and 1-D arrays as columns, then ``concatenate`` along axis 1."""
    parts = [_tensor(T, a) for a in tup]
    return _concatenate(T, [p.reshape(-1, 1) if p.ndim < 2 else p for p in parts], axis=1)


def _append(T: type, arr: Any, values: Any, axis: Any = None) -> Any:
    arr = _tensor(T, arr)
    values = _as_tensor(T, values, arr)
    if axis is None:
        return _concatenate(T, [arr.reshape(-1), values.reshape(-1)], axis=0)
    return _concatenate(T, [arr, values], axis=axis)


def _ravel(T: type, a: Any, order: str = "C") -> Any:
    if order != "C":
        raise TypeError(f"np.ravel: order={order!r} is not supported on Tensors (only 'C')")
    return _tensor(T, a).reshape(-1)


# -- shape: reordering, repeating and selecting elements ---------------------------------------------------


def _flip(T: type, m: Any, axis: Any = None) -> Any:
    m = _tensor(T, m)
    axes = range(m.ndim) if axis is None else normalize_axis_tuple(axis, m.ndim)
    return m[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim))]


def _fliplr(T: type, m: Any) -> Any:
    m = _tensor(T, m)
    if m.ndim < 2:
        raise ValueError("np.fliplr: Input must be >= 2-d.")
    return _flip(T, m, 1)


def _flipud(T: type, m: Any) -> Any:
    m = _tensor(T, m)
    if m.ndim < 1:
        raise ValueError("np.flipud: Input must be >= 1-d.")
    return _flip(T, m, 0)


def _rot90(T: type, m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    """``np.rot90``: k quarter turns from the first axis towards the second: flips and a transpose."""
    m = _tensor(T, m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("np.rot90: len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise ValueError("np.rot90: Axes must be different.")
    if not all(-m.ndim <= a < m.ndim for a in axes):
        raise ValueError(f"np.rot90: Axes={axes} out of range for array of ndim={m.ndim}.")
    k %= 4
    if k == 0:
        return m[...]
    if k == 2:
        return _flip(T, _flip(T, m, axes[0]), axes[1])
    order = list(range(m.ndim))
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    if k == 1:
        return _permuted(_flip(T, m, axes[1]), order)
    return _flip(T, _permuted(m, order), axes[1])


def _roll(T: type, a: Any, shift: Any, axis: Any = None) -> Any:
    """``np.roll``: the two slices of each axis swapped (``concatenate``)."""
    a = _tensor(T, a)
    if axis is None:
        return _roll(T, a.reshape(-1), shift, 0).reshape(a.shape)
    shifts: dict[int, int] = {}
    pairs = np.broadcast(shift, axis)
    if pairs.ndim > 1:
        raise ValueError("np.roll: 'shift' and 'axis' should be scalars or 1D sequences")
    for s, ax in pairs:
        ax = normalize_axis_index(int(ax), a.ndim)
        shifts[ax] = shifts.get(ax, 0) + int(s)
    for ax, s in shifts.items():
        n = a.shape[ax]
        s = s % n if n else 0
        if s:
            a = _concatenate(T, [a[_along(ax, slice(n - s, None))], a[_along(ax, slice(0, n - s))]],
                             axis=ax)
    return a


def _repeat(T: type, a: Any, repeats: Any, axis: Any = None) -> Any:
    """``np.repeat``: each element taken again, an integer index along the axis (gradients add up)."""
    a = _tensor(T, a)
    if axis is None:
        a, axis = a.reshape(-1), 0
    axis = normalize_axis_index(axis, a.ndim)
    index = np.repeat(np.arange(a.shape[axis]), _data(T, repeats))
    return a[_along(axis, index)]


def _tile(T: type, A: Any, reps: Any) -> Any:  # noqa: N803 - NumPy's name
    """``np.tile``: a broadcast (expand) over a new axis before each axis, then a reshape (gradients add up)."""
    A = _tensor(T, A)  # noqa: N806
    reps = tuple(int(r) for r in (reps if np.ndim(reps) else (reps,)))
    if A.ndim < len(reps):
        A = A.reshape((1,) * (len(reps) - A.ndim) + A.shape)  # noqa: N806
    reps = (1,) * (A.ndim - len(reps)) + reps
    interleaved = [n for pair in zip([1] * A.ndim, A.shape) for n in pair]
    tiled = [n for pair in zip(reps, A.shape) for n in pair]
    return A.reshape(interleaved).expand(*tiled).reshape([r * n for r, n in zip(reps, A.shape)])


def _take(T: type, a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    _refuse("take", out=out)
    a = _tensor(T, a)
    if axis is None:
        a, axis = a.reshape(-1), 0
    axis = normalize_axis_index(axis, a.ndim)
    index = np.asarray(_data(T, indices))
    if index.dtype.kind not in "iu":
        raise TypeError(f"np.take: indices must be integers, got {index.dtype}")
    n = a.shape[axis]
    if mode == "wrap":
        index = index % n
    elif mode == "clip":
        index = np.clip(index, 0, n - 1)
    elif mode != "raise":
        raise ValueError(f"np.take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    return a[_along(axis, index)]


def _take_along_axis(T: type, arr: Any, indices: Any, axis: Any = -1) -> Any:
    arr = _tensor(T, arr)
    return _gather(arr, np.take_along_axis(_positions(arr), np.asarray(_data(T, indices)), axis))


def _broadcast_to(T: type, array: Any, shape: Any, subok: bool = False) -> Any:
    array = _tensor(T, array)
    shape = tuple(shape) if np.ndim(shape) else (int(shape),)
    np.broadcast_to(np.broadcast_to(np.int8(0), array.shape), shape)  # NumPy's own check, on no memory
    return ops.Expand.apply(array, shape=shape)


def _sorting(name: str, arg: Callable) -> Handler:
    """``np.sort`` / ``np.partition``: the elements where NumPy's ``argsort`` / ``argpartition`` of the values
    puts them (the gradient goes back to each element's place)."""

    def run(T: type, a: Any, *args: Any, axis: Any = -1, kind: Any = None, order: Any = None, **kwargs: Any) -> Any:
        if order is not None:
            raise TypeError(f"np.{name}: order= (fields of structured arrays) is not supported on Tensors")
        a = _tensor(T, a)
        index = arg(a.data, *args, axis=axis, **({} if kind is None else {"kind": kind}), **kwargs)
        return _gather(a, np.take_along_axis(_positions(a), index, axis))

    return run


def _sort(T: type, a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Any:
    return _sorting("sort", np.argsort)(T, a, axis=axis, kind=kind, order=order, stable=stable)


def _partition(T: type, a: Any, kth: Any, axis: Any = -1, kind: str = "introselect", order: Any = None) -> Any:
    return _sorting("partition", np.argpartition)(T, a, kth, axis=axis, kind=kind, order=order)


def _triangle(lower: bool) -> Handler:
    """``np.tril`` / ``np.triu``: ``where`` with NumPy's triangular mask (over the last two axes)."""

    def run(T: type, m: Any, k: int = 0) -> Any:
        m = _tensor(T, m)
        rows, cols = m.shape[-2:] if m.ndim >= 2 else (m.shape[-1], m.shape[-1]) if m.ndim else (None, None)
        if rows is None:
            raise ValueError(f"np.{'tril' if lower else 'triu'}: input must be at least 1-d")
        mask = np.tri(rows, cols, k=k, dtype=bool) if lower else ~np.tri(rows, cols, k=k - 1, dtype=bool)
        return ops.Where.apply(T(mask), m, T(np.zeros((), m.dtype)))

    return run


def _diagonal(T: type, a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.diagonal``: the two axes moved last and read at (i, i + offset); the diagonal is the last axis."""
    a = _tensor(T, a)
    if a.ndim < 2:
        raise ValueError("np.diagonal: diag requires an array of at least two dimensions")
    axis1, axis2 = normalize_axis_index(axis1, a.ndim), normalize_axis_index(axis2, a.ndim)
    if axis1 == axis2:
        raise ValueError("np.diagonal: axis1 and axis2 cannot be the same")
    moved = _permuted(a, [i for i in range(a.ndim) if i not in (axis1, axis2)] + [axis1, axis2])
    n1, n2 = a.shape[axis1], a.shape[axis2]
    offset = int(offset)
    length = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
    steps = np.arange(length)
    return moved[..., steps + max(-offset, 0), steps + max(offset, 0)]


def _diag(T: type, v: Any, k: int = 0) -> Any:
    """``np.diag``: a 1-D array put on the k-th diagonal of a square of zeros (``scatter_add``), or a matrix's
    k-th diagonal read (``diagonal``)."""
    v = _tensor(T, v)
    if v.ndim == 2:
        return _diagonal(T, v, k)
    if v.ndim != 1:
        raise ValueError("np.diag: Input must be 1- or 2-d.")
    k = int(k)
    n = v.shape[0] + abs(k)
    steps = np.arange(v.shape[0])
    return ops.ScatterAdd.apply(v, shape=(n, n), index=(steps + max(-k, 0), steps + max(k, 0)))


def _trace(T: type, a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
           out: Any = None) -> Any:
    a = _tensor(T, a)
    _refuse("trace", out=out)
    _refuse_dtype("trace", dtype, a)
    return _diagonal(T, a, offset, axis1, axis2).sum(-1)


# -- products ----------------------------------------------------------------------------------------------


def _outer(T: type, a: Any, b: Any, out: Any = None) -> Any:
    _refuse("outer", out=out)
    like = _first_tensor(T, a, b)
    a, b = _as_tensor(T, a, like), _as_tensor(T, b, like)
    return _apply_rule(T, ops.Mul, (a.reshape(-1, 1), b.reshape(1, -1)), {})


def _tensordot(T: type, a: Any, b: Any, axes: Any = 2) -> Any:
    """``np.tensordot``: the summed axes of a moved last and those of b first, both reshaped to matrices, one
    matrix product, reshaped to the free axes (as NumPy computes it)."""
    like = _first_tensor(T, a, b)
    a, b = _as_tensor(T, a, like), _as_tensor(T, b, like)
    try:
        axes_a, axes_b = axes
    except TypeError:
        n = operator.index(axes)
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    axes_a = [axes_a] if np.ndim(axes_a) == 0 else list(axes_a)
    axes_b = [axes_b] if np.ndim(axes_b) == 0 else list(axes_b)
    if len(axes_a) != len(axes_b):
        raise ValueError("np.tensordot: shape-mismatch for sum")
    axes_a = [normalize_axis_index(i, a.ndim) for i in axes_a]
    axes_b = [normalize_axis_index(i, b.ndim) for i in axes_b]
    if any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        raise ValueError(f"np.tensordot: shape-mismatch for sum (shapes {a.shape} and {b.shape}, axes {axes_a} and "
                         f"{axes_b})")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    size = lambda t, axes: math.prod(t.shape[i] for i in axes)  # noqa: E731
    left = _permuted(a, free_a + axes_a).reshape(size(a, free_a), size(a, axes_a))
    right = _permuted(b, axes_b + free_b).reshape(size(b, axes_b), size(b, free_b))
    product = _apply_rule(T, ops.Matmul, (left, right), {})
    return product.reshape([a.shape[i] for i in free_a] + [b.shape[i] for i in free_b])


def _inner(T: type, a: Any, b: Any) -> Any:
    like = _first_tensor(T, a, b)
    a, b = _as_tensor(T, a, like), _as_tensor(T, b, like)
    if a.ndim == 0 or b.ndim == 0:
        return _apply_rule(T, ops.Mul, (a, b), {})
    return _tensordot(T, a, b, ([-1], [-1]))


def _kron(T: type, a: Any, b: Any) -> Any:
    """``np.kron``: a's axes interleaved with b's (a broadcast product), then each pair of axes merged."""
    like = _first_tensor(T, a, b)
    a, b = _as_tensor(T, a, like), _as_tensor(T, b, like)
    nd = max(a.ndim, b.ndim)
    sa, sb = (1,) * (nd - a.ndim) + a.shape, (1,) * (nd - b.ndim) + b.shape
    left = a.reshape([n for m in sa for n in (m, 1)])
    right = b.reshape([n for m in sb for n in (1, m)])
    return _apply_rule(T, ops.Mul, (left, right), {}).reshape([m * n for m, n in zip(sa, sb)])


_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # NumPy's labels: sublist integers 0-25 are A-Z


def _einsum_subscripts(operands: tuple) -> tuple[str, list]:
    """The subscripts and the arrays of an einsum call, from either of NumPy's forms ('ij,jk->ik', a, b) or
    (a, [0, 1], b, [1, 2], [0, 2])."""
    if isinstance(operands[0], str):
        return operands[0].replace(" ", ""), list(operands[1:])
    arrays, lists = list(operands[0::2]), list(operands[1::2])
    output = None
    if len(operands) % 2:
        arrays, output = arrays[:-1], operands[-1]

    def letters(sub: Any) -> str:
        return "".join("..." if s is Ellipsis else _LETTERS[operator.index(s)] for s in sub)

    text = ",".join(letters(sub) for sub in lists)
    return (text if output is None else f"{text}->{letters(output)}"), arrays


def _einsum_labels(subscripts: str, arrays: list) -> tuple[list[list[str]], list[str]]:
    """Each operand's labels and the output's, with '...' spelled out as labels of their own (right-aligned,
    broadcast as NumPy does) and the implicit output (labels seen once, in order, after the broadcast ones)."""
    inputs, arrow, output = subscripts.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(arrays):
        raise ValueError(f"np.einsum: {len(subs)} operands in the subscripts {subscripts!r}, {len(arrays)} given")
    used = set(subscripts) - set(".,->")
    if not used <= set(_LETTERS):
        raise ValueError(f"np.einsum: invalid subscript in {subscripts!r} (letters only)")
    spare = [c for c in _LETTERS if c not in used]
    widths = []
    for sub, array in zip(subs, arrays):
        named = len(sub.replace("...", ""))
        width = np.ndim(array) - named if "..." in sub else 0
        if width < 0 or ("..." not in sub and np.ndim(array) != named):
            raise ValueError(f"np.einsum: operand of shape {np.shape(array)} does not fit the subscripts {sub!r}")
        widths.append(width)
    broadcast = spare[:max(widths, default=0)]
    labels = [list(sub.replace("...", "\0")) for sub in subs]
    labels = [[c for part in lab for c in (broadcast[len(broadcast) - w:] if part == "\0" else [part])]
              for lab, w in zip(labels, widths)]
    if arrow:
        out = list(output.replace("...", "\0"))
        out = [c for part in out for c in (broadcast if part == "\0" else [part])]
        unknown = [c for c in out if c not in {c for lab in labels for c in lab}]
        if unknown or len(set(out)) != len(out):
            raise ValueError(f"np.einsum: invalid output subscripts {output!r}")
    else:
        counts = collections.Counter(c for sub in subs for c in sub.replace("...", ""))
        out = broadcast + sorted(c for c, n in counts.items() if n == 1)
    return labels, out


def _einsum(T: type, *operands: Any, out: Any = None, optimize: Any = False, dtype: Any = None, order: Any = "K",
            casting: Any = "safe") -> Any:
    """``np.einsum`` as a composite: repeated labels of one operand read on their diagonal, labels no one else has
    summed, then the operands contracted pairwise, each pair one batched matrix product (batch labels, free
    labels, summed labels), and the result's axes put in the output's order."""
    _refuse("einsum", out=out)
    if not operands:
        raise ValueError("np.einsum: no subscripts given")
    subscripts, arrays = _einsum_subscripts(operands)
    like = _first_tensor(T, *arrays)
    tensors = [_as_tensor(T, a, like) for a in arrays]
    _refuse_dtype("einsum", dtype, like)
    labels, output = _einsum_labels(subscripts, tensors)
    sizes: dict[str, int] = {}
    for t, lab in zip(tensors, labels):
        for c, n in zip(lab, t.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"np.einsum: label {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = max(sizes.get(c, 1), n) if n else 0
    terms = []
    for i, (t, lab) in enumerate(zip(tensors, labels)):
        while len(set(lab)) != len(lab):  # a repeated label: its diagonal
            c = next(c for c in lab if lab.count(c) > 1)
            first = lab.index(c)
            second = lab.index(c, first + 1)
            t = _diagonal(T, t, 0, first, second)
            lab = [x for j, x in enumerate(lab) if j not in (first, second)] + [c]
        if any(n == 1 and sizes[c] != 1 for c, n in zip(lab, t.shape)):  # broadcast: spelled out
            t = t.expand(*[sizes[c] for c in lab])
        elsewhere = set(output).union(*[set(other) for j, other in enumerate(labels) if j != i])
        alone = [j for j, c in enumerate(lab) if c not in elsewhere]
        if alone:
            t = t.sum(tuple(alone))
            lab = [c for j, c in enumerate(lab) if j not in alone]
        terms.append((t, lab))
    acc, acc_lab = terms[0]
    for j in range(1, len(terms)):
        other, other_lab = terms[j]
        later = set(output).union(*[set(lab) for _, lab in terms[j + 1:]])
        batch = [c for c in acc_lab if c in other_lab and c in later]
        summed = [c for c in acc_lab if c in other_lab and c not in later]
        free_a = [c for c in acc_lab if c not in other_lab]
        free_b = [c for c in other_lab if c not in acc_lab]
        size = lambda labs: math.prod(sizes[c] for c in labs)  # noqa: E731
        left = _permuted(acc, [acc_lab.index(c) for c in batch + free_a + summed]).reshape(
            size(batch), size(free_a), size(summed))
        right = _permuted(other, [other_lab.index(c) for c in batch + summed + free_b]).reshape(
            size(batch), size(summed), size(free_b))
        acc = _apply_rule(T, ops.Matmul, (left, right), {}).reshape([sizes[c] for c in batch + free_a + free_b])
        acc_lab = batch + free_a + free_b
    extra = [j for j, c in enumerate(acc_lab) if c not in output]
    if extra:
        acc = acc.sum(tuple(extra))
        acc_lab = [c for c in acc_lab if c in output]
    return _permuted(acc, [acc_lab.index(c) for c in output])


def _cross(T: type, a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: Any = None) -> Any:
    """``np.cross`` of 3-vectors: the three components' products, stacked (as NumPy computes them)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    like = _first_tensor(T, a, b)
    a = _moveaxis(T, _as_tensor(T, a, like), axisa, -1)
    b = _moveaxis(T, _as_tensor(T, b, like), axisb, -1)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise TypeError(f"np.cross: only 3-element vectors are supported on Tensors (NumPy 2 deprecates 2-element "
                        f"ones), got shapes {a.shape} and {b.shape} along the vector axis")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    c = _stack(T, [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return _moveaxis(T, c, -1, normalize_axis_index(axisc, c.ndim))


# -- linear algebra ------------------------------------------------------------------------------------------


SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])


def _slogdet(T: type, a: Any) -> Any:
    """``np.linalg.slogdet``: the sign (no gradient) and log|det| (the ``logabsdet`` rule)."""
    a = _tensor(T, a)
    sign = np.linalg.slogdet(_floating_tensor(a).data)[0]
    return SlogdetResult(T(sign), ops.LogAbsDet.apply(a))


EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def _eigh(T: type, a: Any, UPLO: str = "L") -> Any:  # noqa: N803 - NumPy's name
    """``np.linalg.eigh``: the eigenvalues (the ``eigvalsh`` rule) and the eigenvectors (``eigh_vectors``)."""
    a = _tensor(T, a)
    return EighResult(ops.Eigvalsh.apply(a, UPLO=UPLO), ops.EighVectors.apply(a, UPLO=UPLO))


def _pinv(T: type, a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = _NO_VALUE) -> Any:
    """``np.linalg.pinv`` of matrices of full rank (at NumPy's cutoff): solve(a^T a, a^T) for tall ones,
    solve(a a^T, a)^T for wide ones, the same values as NumPy's; where NumPy's cutoff drops a singular value the
    pseudo-inverse jumps, and it is refused."""
    a = _floating_tensor(_tensor(T, a))
    if a.ndim < 2:
        raise np.linalg.LinAlgError(f"np.linalg.pinv: {a.ndim}-dimensional array given. Array must be at least "
                                    "two-dimensional")
    if rcond is None:
        rcond = 1e-15 if rtol is _NO_VALUE else max(a.shape[-2:]) * np.finfo(a.dtype).eps if rtol is None else rtol
    elif rtol is not _NO_VALUE:
        raise ValueError("np.linalg.pinv: `rtol` and `rcond` can't be both set.")
    singular = np.linalg.svd(a.data, compute_uv=False, hermitian=hermitian)
    if singular.size and not (singular > np.asarray(rcond)[..., None] * singular.max(-1, keepdims=True)).all():
        raise TypeError("np.linalg.pinv: a matrix that is not of full rank (at NumPy's cutoff) is not supported on "
                        "Tensors: its pseudo-inverse jumps there, and its gradient needs the SVD's, which Tensors "
                        "do not have")
    at = _swapaxes(T, a, -1, -2)
    if a.shape[-2] >= a.shape[-1]:
        return _apply_rule(T, ops.Solve, (at @ a, at), {})
    return _swapaxes(T, _apply_rule(T, ops.Solve, (a @ at, a), {}), -1, -2)


def _norm(T: type, x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """``np.linalg.norm`` from sums, absolute values and maxima: vector norms (2, 1, inf, -inf, 0, any p) and
    matrix norms ('fro', 1, -1, inf, -inf), and the singular-value norms ('nuc', 2, -2 of matrices) from the
    eigenvalues of the smaller Gram matrix a^T a or a a^T (the smallest singular value then loses accuracy for
    ill-conditioned matrices: ~eps * cond(a)^2 relative, where NumPy's SVD gives ~eps * cond(a))."""
    x = _floating_tensor(_tensor(T, x))
    nd = x.ndim
    if axis is None and ord is None:  # the 2-norm of everything, whatever the shape
        result = (x * x).sum().sqrt()
        return result.reshape((1,) * nd) if keepdims else result
    if axis is None:
        if nd not in (1, 2):
            raise ValueError("np.linalg.norm: Improper number of dimensions to norm.")
        axis = tuple(range(nd))
    axes = normalize_axis_tuple(axis, nd, "axis")
    if len(axes) == 1:
        result = _vector_norm(T, x, ord, axes[0])
    elif len(axes) == 2:
        result = _matrix_norm(T, x, ord, *axes)
    else:
        raise ValueError("np.linalg.norm: Improper number of dimensions to norm.")
    if keepdims:
        result = result.reshape([1 if i in axes else n for i, n in enumerate(x.shape)])
    return result


def _vector_norm(T: type, x: Any, ord: Any, axis: int) -> Any:  # noqa: A002
    if ord is None or ord == 2:
        return (x * x).sum(axis).sqrt()
    if isinstance(ord, str):
        raise ValueError(f"np.linalg.norm: Invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return x.abs().max(axis)
    if ord == -np.inf:
        return x.abs().min(axis)
    if ord == 0:  # the count of non-zeros: piecewise constant, no gradient
        return T((x.data != 0).sum(axis).astype(x.dtype))
    if ord == 1:
        return x.abs().sum(axis)
    return (x.abs() ** ord).sum(axis) ** (1 / ord)


def _matrix_norm(T: type, x: Any, ord: Any, row: int, col: int) -> Any:  # noqa: A002
    if row == col:
        raise ValueError("np.linalg.norm: Duplicate axes given.")
    if ord is None or ord == "fro":
        return (x * x).sum((row, col)).sqrt()
    if isinstance(ord, str) and ord != "nuc" and ord != "fro":
        raise ValueError(f"np.linalg.norm: Invalid norm order {ord!r} for matrices.")
    if ord in ("nuc", 2, -2):  # singular values: square roots of the eigenvalues of the smaller Gram matrix
        x = _moveaxis(T, x, (row, col), (-2, -1))
        xt = _swapaxes(T, x, -1, -2)
        gram = xt @ x if x.shape[-2] >= x.shape[-1] else x @ xt
        singular = ops.Eigvalsh.apply(gram).relu().sqrt()  # ascending; rounding can make a zero one negative
        return singular.sum(-1) if ord == "nuc" else singular[..., -1] if ord == 2 else singular[..., 0]
    if ord in (1, -1):
        sums = x.abs().sum(row)
        col -= col > row
    elif ord in (np.inf, -np.inf):
        sums = x.abs().sum(col)
        row, col = col, row - (row > col)
    else:
        raise ValueError(f"np.linalg.norm: Invalid norm order {ord!r} for matrices.")
    return sums.max(col) if ord > 0 else sums.min(col)


# -- other NumPy functions that HIPS autograd differentiates ----------------------------------------------


def _linspace(T: type, start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
              dtype: Any = None, axis: int = 0, *, device: Any = None) -> Any:
    """``np.linspace`` between Tensors: start + i * step (the last one stop itself, with ``endpoint``), as NumPy
    computes it; the new axis at ``axis``."""
    like = _first_tensor(T, start, stop)
    start, stop = _as_tensor(T, start, like), _as_tensor(T, stop, like)
    start, stop = _floating_tensor(start), _floating_tensor(stop)
    _refuse_dtype("linspace", dtype, start)
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"np.linspace: Number of samples, {num}, must be non-negative.")
    div = (num - 1) if endpoint else num
    shape = np.broadcast_shapes(start.shape, stop.shape)
    steps = T(np.arange(num, dtype=start.dtype).reshape((num,) + (1,) * len(shape)))
    delta = stop - start
    step = delta / div if div > 0 else delta * np.nan
    y = steps * step + start if div > 0 else steps * delta + start
    if endpoint and num > 1:
        y = _concatenate(T, [y[:-1], stop.expand(*shape).reshape((1,) + shape)], axis=0)
    y = _moveaxis(T, y, 0, axis) if axis != 0 else y
    return (y, step) if retstep else y


def _slice_along(a: Any, axis: int, part: slice) -> Any:
    return a[_along(axis, part)]


def _gradient(T: type, f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """``np.gradient`` with uniform spacings (numbers): central differences inside, one-sided ones (first or
    second order) at the edges, each from slices of f; coordinate arrays are refused."""
    f = _floating_tensor(_tensor(T, f))
    axes = tuple(range(f.ndim)) if axis is None else normalize_axis_tuple(axis, f.ndim)
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes) and all(np.ndim(v) == 0 for v in varargs):
        spacing = list(varargs)
    else:
        raise TypeError("np.gradient: coordinate arrays as spacing are not supported on Tensors (give the spacing "
                        "as numbers)")
    if edge_order not in (1, 2):
        raise ValueError("np.gradient: 'edge_order' greater than 2 not supported")
    results = []
    for ax, h in zip(axes, spacing):
        h = float(_data(T, h))
        n = f.shape[ax]
        if n < edge_order + 1:
            raise ValueError("np.gradient: Shape of array too small to calculate a numerical gradient, at least "
                             "(edge_order + 1) elements are required.")
        at = functools.partial(_slice_along, f, ax)
        inside = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
        if edge_order == 1:
            first = (at(slice(1, 2)) - at(slice(0, 1))) / h
            last = (at(slice(-1, None)) - at(slice(-2, -1))) / h
        else:
            first = at(slice(0, 1)) * (-1.5 / h) + at(slice(1, 2)) * (2.0 / h) + at(slice(2, 3)) * (-0.5 / h)
            last = at(slice(-3, -2)) * (0.5 / h) + at(slice(-2, -1)) * (-2.0 / h) + at(slice(-1, None)) * (1.5 / h)
        results.append(_concatenate(T, [first, inside, last], axis=ax))
    return results[0] if len(results) == 1 else tuple(results)


def _select(T: type, condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """``np.select``: the first choice whose condition holds, else ``default`` (nested ``where``)."""
    if len(condlist) != len(choicelist):
        raise ValueError("np.select: list of cases must be same length as list of conditions")
    if not choicelist:
        raise ValueError("np.select: select with an empty condition list is not possible")
    like = _first_tensor(T, *choicelist, default)
    result = _as_tensor(T, default, like)
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        result = _where(T, cond, _as_tensor(T, choice, like), result)
    shape = np.broadcast_shapes(*[np.shape(_data(T, c)) for c in [*condlist, *choicelist, default]])
    return result if result.shape == shape else result.expand(*shape)


def _no_grad(function: Callable) -> Handler:
    """Computed on the arrays; a Tensor without grad (as ``np.floor(t)``): piecewise-constant functions, indices."""

    def run(T: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("out") is not None:
            _refuse(_numpy_name(function)[3:], out=kwargs["out"])
        with engine.quiet():
            return T(function(*_data(T, args), **{k: _data(T, v) for k, v in kwargs.items()}))

    return run


FUNCTIONS: dict[Callable, Handler] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _reduction("max"),
    np.amax: _reduction("max"),
    np.min: _reduction("min"),
    np.amin: _reduction("min"),
    np.var: _moments("var"),
    np.std: _moments("std"),
    np.diff: _diff,
    np.nan_to_num: _nan_to_num,
    np.dot: _dot,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.moveaxis: _moveaxis,
    np.rollaxis: _rollaxis,
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.astype: lambda T, x, dtype, /, *, copy=True, device=None: _tensor(T, x).astype(dtype),
    np.clip: _clip,
    np.where: _where,
    np.select: _select,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.hstack: _joined("hstack", _atleast_1d, lambda first: 0 if first.ndim == 1 else 1),
    np.vstack: _joined("vstack", _atleast_2d, lambda first: 0),
    np.row_stack: _joined("row_stack", _atleast_2d, lambda first: 0),
    np.dstack: lambda T, tup: _joined("dstack", _atleast_3d, lambda first: 2)(T, tup),
    np.column_stack: _column_stack,
    np.append: _append,
    np.expand_dims: _expand_dims,
    np.squeeze: _squeeze,
    np.atleast_1d: _atleast_1d,
    np.atleast_2d: _atleast_2d,
    np.atleast_3d: _atleast_3d,
    np.split: _split,
    np.array_split: _array_split,
    np.hsplit: _split_at("hsplit", 1, lambda ndim: 1 if ndim > 1 else 0),
    np.vsplit: _split_at("vsplit", 2, lambda ndim: 0),
    np.dsplit: _split_at("dsplit", 3, lambda ndim: 2),
    np.flip: _flip,
    np.fliplr: _fliplr,
    np.flipud: _flipud,
    np.rot90: _rot90,
    np.roll: _roll,
    np.repeat: _repeat,
    np.tile: _tile,
    np.take: _take,
    np.take_along_axis: _take_along_axis,
    np.broadcast_to: _broadcast_to,
    np.sort: _sort,
    np.partition: _partition,
    np.tril: _triangle(lower=True),
    np.triu: _triangle(lower=False),
    np.diag: _diag,
    np.diagonal: _diagonal,
    np.trace: _trace,
    np.outer: _outer,
    np.inner: _inner,
    np.tensordot: _tensordot,
    np.einsum: _einsum,
    np.kron: _kron,
    np.cross: _cross,
    np.linalg.slogdet: _slogdet,
    np.linalg.norm: _norm,
    np.linalg.eigh: _eigh,
    np.linalg.pinv: _pinv,
    np.linspace: _linspace,
    np.gradient: _gradient,
    np.real: lambda T, val: val,  # real Tensors: the values themselves
    np.real_if_close: lambda T, a, tol=100: a,
}

# Computed on the arrays; a Tensor without grad (as ``t.argmax()``): indices, piecewise-constant functions, tests.
NO_GRAD_FUNCTIONS: dict[Callable, Handler] = {
    np.argmax: _arg(np.argmax),
    np.argmin: _arg(np.argmin),
    **{f: _no_grad(f) for f in (np.argsort, np.argpartition, np.searchsorted, np.round, np.around, np.fix,
                                np.isneginf, np.isposinf, np.iscomplex, np.isreal, np.angle)},
    np.imag: lambda T, val: T(np.zeros_like(_data(T, val))),  # real Tensors: no imaginary part
}

# Read shapes, compare values or make new arrays: computed on the arrays, plain NumPy results.
PLAIN_FUNCTIONS = frozenset({
    np.allclose, np.isclose, np.array_equal, np.array_equiv, np.any, np.all, np.count_nonzero, np.nonzero,
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.argwhere,
    np.flatnonzero, np.iscomplexobj, np.isrealobj, np.result_type,
})

# NumPy functions that HIPS autograd differentiates and Tensors do not, and why (TypeError saying so). Options
# refused within supported functions (np.linalg.norm's 'nuc', np.pad's other modes, ...) are said where they are
# refused, and listed in docs/numpy-on-tensors.md.
REFUSED: dict[Callable, str] = {
    np.hypot: "not implemented; np.sqrt(x * x + y * y) computes it on Tensors, with the same gradient",
    np.linalg.svd: "no rule: the gradient of the singular vectors (coupled, undefined at repeated singular values) "
                   "is not implemented",
    np.linalg.eig: "its results are complex in general, and Tensors are real",
    np.copyto: "it writes into a NumPy array in place: build the result from Tensor operations instead, e.g. "
               "t * np.ones(shape) or np.broadcast_to(t, shape)",
}


def array_function(self: Any, func: Callable, types: tuple[type, ...], args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: ``np.sum(t, axis=1)``, ``np.where(c, a, b)`` ... as Tensor ops."""
    T = type(self)
    if not all(issubclass(t, (T, np.ndarray)) for t in types):
        return NotImplemented  # another array type is involved: let it answer
    handler = FUNCTIONS.get(func)
    if handler is not None:
        return handler(T, *args, **kwargs)
    rule = engine.implementation(func)
    if rule is not None:
        return _apply_rule(T, rule, args, kwargs, func)
    handler = NO_GRAD_FUNCTIONS.get(func)
    if handler is not None:
        return handler(T, *args, **kwargs)
    if func in PLAIN_FUNCTIONS:
        return func(*_data(T, args), **{k: _data(T, v) for k, v in kwargs.items()})
    if func in REFUSED:
        raise TypeError(f"{_numpy_name(func)} is not supported on Tensors: {REFUSED[func]}; supported: "
                        f"{_supported()}")
    raise TypeError(f"{_numpy_name(func)} is not supported on Tensors (the graph cannot go through it); supported: "
                    f"{_supported()}. Use t.numpy() to compute on the values without the graph")


def _numpy_name(func: Callable) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    module = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    module = module.replace("._core", "").replace(".core", "")
    return f"{module}.{getattr(func, '__name__', repr(func))}"


def _short_name(func: Callable) -> str:
    """``exp``, ``linalg.inv``: the name after ``np.`` (a function from elsewhere keeps its module)."""
    name = _numpy_name(func)
    return name[3:] if name.startswith("np.") else name


def _names(functions: Any) -> list[str]:
    return sorted({_short_name(f) for f in functions})


def supported() -> dict[str, list[str]]:
    """The NumPy functions Tensors support, by kind (rules defined later, a user's too, included)."""
    return {
        "differentiable": _names([*UFUNCS, *engine.implemented(), *FUNCTIONS]),
        "without gradient": _names([*NO_GRAD_UFUNCS, *NO_GRAD_FUNCTIONS]),
        "plain NumPy results": _names(PLAIN_FUNCTIONS),
    }


def refused() -> dict[str, str]:
    """The NumPy functions Tensors refuse with a reason (HIPS autograd differentiates them): name -> why."""
    return {_short_name(f): why for f, why in sorted(REFUSED.items(), key=lambda item: _short_name(item[0]))}


def _supported() -> str:
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in supported().items())
