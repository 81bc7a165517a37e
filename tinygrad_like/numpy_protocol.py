"""NumPy's protocols on Tensor: a function written with NumPy runs unchanged on Tensors and records the graph.
A NumPy call with a Tensor among its arguments comes here (``__array_ufunc__``, ``__array_function__``) and runs
as the Tensor method or the rule (``implements``) that computes it; non-differentiable functions give Tensors
without grad or plain NumPy results; anything else raises TypeError naming it. See docs/numpy-on-tensors.md.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine, ops

__all__ = ["array_function", "array_ufunc", "supported"]

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
    """TypeError for NumPy options a Tensor cannot honour (``out=`` writes into an array in place, ...)."""
    given = [key for key, value in options.items() if value is not None]
    if given:
        raise TypeError(f"np.{name}: {', '.join(f'{k}=' for k in given)} not supported on Tensors (the op returns "
                        "a new Tensor: it cannot write into an array, change the dtype or mask the computation)")


def _differentiable(T: type, *values: Any) -> bool:
    return any(isinstance(v, T) and v.requires_grad for v in values)


def _apply_rule(T: type, rule: type[engine.Function], args: tuple, kwargs: dict) -> Any:
    """A NumPy call that a rule ``implements``: the arguments bound to the rule's ``forward`` by its signature,
    those without a default (the arrays) as Tensors of one dtype, the others as keyword parameters."""
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


UFUNCS: dict[np.ufunc, Handler] = {
    np.maximum: _extremum(np.greater, 1),
    np.minimum: _extremum(np.less, -1),
    np.square: _unary("square"),
    np.negative: _unary("neg"),
    np.positive: lambda T, x: x,
}

# Computed on the arrays; the result is a Tensor without grad (as ``t > 0`` is).
NO_GRAD_UFUNCS = frozenset({
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal, np.isfinite, np.isnan,
    np.isinf, np.signbit, np.sign, np.floor, np.ceil, np.rint, np.trunc, np.logical_and, np.logical_or,
    np.logical_xor, np.logical_not,
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
    if kwargs:
        _refuse(name, **kwargs)
    handler = UFUNCS.get(ufunc)
    if handler is not None:
        return handler(T, *inputs)
    rule = engine.implementation(ufunc)
    if rule is not None:
        return _apply_rule(T, rule, inputs, {})
    if ufunc in NO_GRAD_UFUNCS:
        return T(ufunc(*[_data(T, x) for x in inputs]))
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


FUNCTIONS: dict[Callable, Handler] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _reduction("max"),
    np.amax: _reduction("max"),
    np.min: _reduction("min"),
    np.amin: _reduction("min"),
    np.dot: _dot,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.reshape: _reshape,
    np.clip: _clip,
    np.where: _where,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.expand_dims: _expand_dims,
    np.squeeze: _squeeze,
    np.argmax: _arg(np.argmax),
    np.argmin: _arg(np.argmin),
}

# Read shapes, compare values or make new arrays: computed on the arrays, plain NumPy results.
PLAIN_FUNCTIONS = frozenset({
    np.allclose, np.isclose, np.array_equal, np.array_equiv, np.any, np.all, np.count_nonzero, np.nonzero,
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
})


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
        return _apply_rule(T, rule, args, kwargs)
    if func in PLAIN_FUNCTIONS:
        return func(*_data(T, args), **{k: _data(T, v) for k, v in kwargs.items()})
    raise TypeError(f"{_numpy_name(func)} is not supported on Tensors (the graph cannot go through it); supported: "
                    f"{_supported()}. Use t.numpy() to compute on the values without the graph")


def _numpy_name(func: Callable) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    module = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    module = module.replace("._core", "").replace(".core", "")
    return f"{module}.{getattr(func, '__name__', repr(func))}"


def _names(functions: Any) -> list[str]:
    return sorted({getattr(f, "__name__", str(f)) for f in functions})


def supported() -> dict[str, list[str]]:
    """The NumPy functions Tensors support, by kind (rules defined later, a user's too, included)."""
    return {
        "differentiable": _names([*UFUNCS, *engine.implemented(),
                                  *[f for f in FUNCTIONS if f not in (np.argmax, np.argmin)]]),
        "without gradient": _names([*NO_GRAD_UFUNCS, np.argmax, np.argmin]),
        "plain NumPy results": _names(PLAIN_FUNCTIONS),
    }


def _supported() -> str:
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in supported().items())
