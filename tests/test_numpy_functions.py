"""NumPy's functions on Tensors (the anchor: the real-valued functions HIPS autograd differentiates, in its
numpy_vjps.py and linalg.py): each differentiates, to first and second order, or raises TypeError naming it and
why.

ONE TABLE, ``ROWS``: a row is a name, the NumPy call on Tensors (NumPy code, unchanged on arrays), PyTorch's
equivalent (None where PyTorch has none), the inputs (a domain and a shape each) and flags. Its fields follow
the shared op table's ``Op`` (name, ours, torch, *inputs, linear=, skip=), so that the rows can move there. For
every row:

- the values are NumPy's on the same arrays (float64, and the dtype NumPy keeps for float32);
- first derivatives agree with float64 central finite differences for a random upstream gradient (gradcheck),
  and with PyTorch's for a random upstream gradient (float64);
- second derivatives agree with finite differences of the first ones (gradgradcheck) and with PyTorch's double
  backward.

Then: the refusals (functions and options) name the function and say why, and every function of the anchor
list has a status.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pytest

from tinygrad_like import Tensor, gradcheck, gradgradcheck, numpy_protocol
from tinygrad_like.engine import grad

# ----------------------------------------------------------------------------------------------------------
# Input domains (as the shared table's helpers: a domain called with a shape is an input)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One input: a domain and a shape; called with a generator, a float64 array."""

    domain: str
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    shape: tuple[int, ...]

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.draw(rng, self.shape), dtype=np.float64)


def domain(name: str, draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]) -> Callable[..., Input]:
    return lambda *shape: Input(name, draw, shape)


def uniform(low: float, high: float) -> Callable[..., Input]:
    return domain(f"uniform({low}, {high})", lambda rng, shape: rng.uniform(low, high, shape))


def _away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def _distinct(rng, shape):
    """Values at least 0.1 apart (no ties: sorting and maxima have one winner)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 + rng.uniform(0, 0.05, n) - n * 0.05).reshape(shape)


def _with_zeros(rng, shape):
    """Normal values with exact zeros: one in some rows (of the last axis), two in one row, none in others."""
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    rows = x.reshape(-1, shape[-1])
    rows[0, 1] = 0.0
    if len(rows) > 1:
        rows[1, 0] = rows[1, -1] = 0.0
    if len(rows) > 2:
        rows[2, -1] = 0.0
    return x


def _with_non_finite(rng, shape):
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    flat[[0, 3, 5]] = [np.nan, np.inf, -np.inf]
    return x


def _invertible(rng, shape):
    """Well-conditioned square matrices (identity plus a small random part): inverses and determinants are safe."""
    n = shape[-1]
    return np.eye(n) * 2.0 + rng.uniform(-0.5, 0.5, shape)


normal = domain("normal", lambda rng, shape: rng.standard_normal(shape))
positive = uniform(0.5, 2.0)
away_from_zero = domain("away_from_zero", _away_from_zero)
distinct = domain("distinct", _distinct)
with_zeros = domain("with_zeros", _with_zeros)
with_non_finite = domain("with_non_finite", _with_non_finite)
invertible = domain("invertible", _invertible)

# Checks a row can skip (the reason is the value in ``skip``)
TORCH = "torch"  # PyTorch's values or gradients differ on purpose
FLOAT32 = "float32"  # NumPy's result dtype for float32 inputs differs from ours on purpose


class Row:
    """One row: ``numpy(*xs)`` is NumPy code, run on arrays and on Tensors alike; ``torch(T, *xs)`` computes the
    same with PyTorch (``T`` the torch module). ``linear``: linear in its inputs, so the second-order checks
    differentiate its square. A result may be a sequence of arrays (``split``): the checks join them."""

    def __init__(self, name: str, numpy: Callable, torch: Callable | None, *inputs: Input, linear: bool = False,
                 skip: Mapping[str, str] | None = None):
        self.name, self.numpy, self.torch, self.inputs = name, numpy, torch, inputs
        self.linear, self.skip = linear, dict(skip or {})

    def __repr__(self) -> str:
        return f"Row({self.name!r})"

    def arrays(self, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [make(rng).astype(dtype) for make in self.inputs]


def _quietly(function, *args):
    """``function(*args)`` without its DeprecationWarning (np.row_stack warns on arrays, not on Tensors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return function(*args)


def _squared_vectors(result):
    """np.linalg.eigh's eigenvalues and its eigenvectors squared (the same whatever their signs)."""
    values, vectors = result
    return values, vectors * vectors


ROWS = [
    # -- 1. elementwise ------------------------------------------------------------------------------------
    Row("arcsin", np.arcsin, lambda T, a: T.asin(a), uniform(-0.9, 0.9)(3, 4)),
    Row("arccos", np.arccos, lambda T, a: T.acos(a), uniform(-0.9, 0.9)(3, 4)),
    Row("arctan", np.arctan, lambda T, a: T.atan(a), normal(3, 4)),
    Row("arctan2", np.arctan2, lambda T, y, x: T.atan2(y, x), normal(3, 4), away_from_zero(4)),
    Row("arctan2 of a number", lambda y: np.arctan2(y, -1.5), lambda T, y: T.atan2(y, T.tensor(-1.5, dtype=y.dtype)),
        normal(5)),
    Row("sinh", np.sinh, lambda T, a: T.sinh(a), normal(3, 4)),
    Row("cosh", np.cosh, lambda T, a: T.cosh(a), normal(3, 4)),
    Row("arcsinh", np.arcsinh, lambda T, a: T.asinh(a), normal(3, 4)),
    Row("arccosh", np.arccosh, lambda T, a: T.acosh(a), uniform(1.2, 3.0)(3, 4)),
    Row("arctanh", np.arctanh, lambda T, a: T.atanh(a), uniform(-0.9, 0.9)(3, 4)),
    Row("exp2", np.exp2, lambda T, a: T.exp2(a), normal(3, 4)),
    Row("expm1", np.expm1, lambda T, a: T.expm1(a), normal(3, 4)),
    Row("log2", np.log2, lambda T, a: T.log2(a), positive(3, 4)),
    Row("log10", np.log10, lambda T, a: T.log10(a), positive(3, 4)),
    Row("logaddexp", np.logaddexp, lambda T, a, b: T.logaddexp(a, b), normal(3, 4), normal(4)),
    Row("logaddexp2", np.logaddexp2, lambda T, a, b: T.logaddexp2(a, b), normal(3, 1), normal(4)),
    Row("cbrt", np.cbrt, lambda T, a: a.sign() * a.abs() ** (1 / 3), away_from_zero(3, 4)),
    Row("reciprocal", np.reciprocal, lambda T, a: T.reciprocal(a), away_from_zero(3, 4)),
    Row("fabs", np.fabs, lambda T, a: T.abs(a), away_from_zero(3, 4)),
    Row("fmax", np.fmax, lambda T, a, b: T.fmax(a, b), normal(3, 4), normal(4)),
    Row("fmin", np.fmin, lambda T, a, b: T.fmin(a, b), normal(3, 4), normal(3, 1)),
    Row("sinc", np.sinc, lambda T, a: T.sinc(a), normal(3, 4)),
    Row("sinc at 0", lambda a: np.sinc(a * np.array([0.0, 1.0, 1.0])),
        lambda T, a: T.sinc(a * T.tensor([0.0, 1.0, 1.0], dtype=a.dtype)), normal(3),
        skip={TORCH: "PyTorch's second derivative of sinc at 0 is nan; it is -pi^2/3 (gradgradcheck agrees)"}),
    Row("deg2rad", np.deg2rad, lambda T, a: T.deg2rad(a), normal(3, 4), linear=True),
    Row("radians", np.radians, lambda T, a: T.deg2rad(a), normal(3, 4), linear=True),
    Row("rad2deg", np.rad2deg, lambda T, a: T.rad2deg(a), normal(3, 4), linear=True),
    Row("degrees", np.degrees, lambda T, a: T.rad2deg(a), normal(3, 4), linear=True),
    Row("remainder", np.remainder, lambda T, a, b: T.remainder(a, b), uniform(2.2, 2.8)(3, 4),
        uniform(1.5, 2.0)(4)),
    Row("mod (negative divisor)", np.mod, lambda T, a, b: T.remainder(a, b), uniform(2.2, 2.8)(3, 4),
        uniform(-2.0, -1.5)(4)),
    Row("conjugate", np.conjugate, lambda T, a: T.conj(a), normal(3, 4), linear=True),
    Row("real", np.real, lambda T, a: T.real(a), normal(3, 4), linear=True),
    Row("real_if_close", np.real_if_close, lambda T, a: a, normal(3, 4), linear=True),
    Row("add", np.add, lambda T, a, b: a + b, normal(3, 4), normal(4), linear=True),
    Row("subtract", np.subtract, lambda T, a, b: a - b, normal(3, 1), normal(4), linear=True),
    Row("multiply", np.multiply, lambda T, a, b: a * b, normal(3, 4), normal(4)),
    Row("divide", np.divide, lambda T, a, b: a / b, normal(3, 4), away_from_zero(4)),
    Row("power", np.power, lambda T, a, b: a ** b, positive(3, 4), normal(4)),
    Row("negative", np.negative, lambda T, a: -a, normal(3, 4), linear=True),
    Row("positive", np.positive, lambda T, a: +a, normal(3, 4), linear=True),
    Row("absolute", np.abs, lambda T, a: a.abs(), away_from_zero(3, 4)),
    Row("square", np.square, lambda T, a: a.square(), normal(3, 4)),
    Row("sqrt", np.sqrt, lambda T, a: a.sqrt(), positive(3, 4)),
    Row("exp", np.exp, lambda T, a: a.exp(), normal(3, 4)),
    Row("log", np.log, lambda T, a: a.log(), positive(3, 4)),
    Row("log1p", np.log1p, lambda T, a: a.log1p(), positive(3, 4)),
    Row("tanh", np.tanh, lambda T, a: a.tanh(), normal(3, 4)),
    Row("maximum", np.maximum, lambda T, a, b: T.maximum(a, b), normal(3, 4), normal(4)),
    Row("minimum", np.minimum, lambda T, a, b: T.minimum(a, b), normal(3, 4), normal(3, 1)),
    Row("clip", lambda a: np.clip(a, -0.5, 0.7), lambda T, a: a.clamp(-0.5, 0.7), normal(3, 4)),
    Row("where", lambda a, b: np.where(a > 0, a, b), lambda T, a, b: T.where(a > 0, a, b), normal(3, 4),
        normal(4), linear=True),
    Row("sin", np.sin, lambda T, a: T.sin(a), normal(3, 4)),
    Row("cos", np.cos, lambda T, a: T.cos(a), normal(3, 4)),
    Row("tan", np.tan, lambda T, a: T.tan(a), uniform(-1.2, 1.2)(3, 4)),
    Row("pad", lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=0.5),
        lambda T, a: T.nn.functional.pad(a, (2, 1, 1, 0), value=0.5), normal(3, 4), linear=True),
    # -- 2. reductions and scans ---------------------------------------------------------------------------
    Row("sum", lambda a: np.sum(a, axis=1), lambda T, a: a.sum(1), normal(3, 4), linear=True),
    Row("mean", lambda a: np.mean(a, axis=(0, 1), keepdims=True), lambda T, a: a.mean((0, 1), keepdim=True),
        normal(2, 3, 4), linear=True),
    Row("max", lambda a: np.max(a, axis=0), lambda T, a: a.amax(0), distinct(3, 4)),
    Row("amax", np.amax, lambda T, a: a.amax(), distinct(3, 4)),
    Row("min", lambda a: np.min(a, axis=-1), lambda T, a: a.amin(-1), distinct(3, 4)),
    Row("amin", np.amin, lambda T, a: a.amin(), distinct(3, 4)),
    Row("matmul", np.matmul, lambda T, a, b: a @ b, normal(2, 3, 4), normal(4, 2)),
    Row("dot", np.dot, lambda T, a, b: a @ b, normal(3, 4), normal(4)),
    Row("prod", np.prod, lambda T, a: T.prod(a), normal(3, 4)),
    Row("prod axis keepdims", lambda a: np.prod(a, axis=1, keepdims=True),
        lambda T, a: T.prod(a, dim=1, keepdim=True), normal(3, 4)),
    Row("prod two axes", lambda a: np.prod(a, axis=(0, 2)), lambda T, a: T.prod(T.prod(a, dim=2), dim=0),
        normal(2, 3, 4)),
    Row("prod with zeros", lambda a: np.prod(a, axis=-1), lambda T, a: T.prod(a, dim=-1), with_zeros(4, 3)),
    Row("prod with zeros, all axes", np.prod, lambda T, a: T.prod(a), with_zeros(1, 4)),
    Row("cumsum", np.cumsum, lambda T, a: T.cumsum(a.reshape(-1), 0), normal(3, 4), linear=True),
    Row("cumsum axis", lambda a: np.cumsum(a, axis=-2), lambda T, a: T.cumsum(a, -2), normal(2, 3, 4),
        linear=True),
    Row("cumprod", lambda a: np.cumprod(a, axis=1), lambda T, a: T.cumprod(a, 1), normal(3, 4)),
    Row("cumprod flattened", np.cumprod, lambda T, a: T.cumprod(a.reshape(-1), 0), normal(2, 3)),
    Row("cumprod with zeros", lambda a: np.cumprod(a, axis=-1), lambda T, a: T.cumprod(a, -1), with_zeros(4, 5)),
    Row("cumprod with zeros, axis 0", lambda a: np.cumprod(a, axis=0), lambda T, a: T.cumprod(a, 0),
        with_zeros(3, 3)),
    Row("diff", np.diff, lambda T, a: T.diff(a), normal(3, 5), linear=True),
    Row("diff n=2 axis 0", lambda a: np.diff(a, n=2, axis=0), lambda T, a: T.diff(a, n=2, dim=0), normal(5, 3),
        linear=True),
    Row("diff prepend append", lambda a, b: np.diff(a, prepend=b[:, :1], append=0.5),
        lambda T, a, b: T.diff(a, prepend=b[:, :1], append=T.full((3, 1), 0.5, dtype=a.dtype)),
        normal(3, 4), normal(3, 2), linear=True,
        skip={FLOAT32: "a Python number next to float32 stays float32 (PyTorch's rule); NumPy's diff widens it"}),
    Row("var", np.var, lambda T, a: T.var(a, correction=0), normal(3, 4)),
    Row("var axis ddof keepdims", lambda a: np.var(a, axis=0, ddof=1, keepdims=True),
        lambda T, a: T.var(a, dim=0, correction=1, keepdim=True), normal(4, 3)),
    Row("std", np.std, lambda T, a: T.std(a, correction=0), normal(3, 4)),
    Row("std axis", lambda a: np.std(a, axis=(0, 2)), lambda T, a: T.std(a, dim=(0, 2), correction=0),
        normal(2, 3, 4)),
    Row("nan_to_num", lambda a: np.nan_to_num(a, nan=0.5, posinf=9.0, neginf=-9.0),
        lambda T, a: T.nan_to_num(a, 0.5, 9.0, -9.0),
        with_non_finite(3, 4), linear=True),
    # -- 3. shape and joining ------------------------------------------------------------------------------
    Row("moveaxis", lambda a: np.moveaxis(a, 0, -1), lambda T, a: T.moveaxis(a, 0, -1), normal(2, 3, 4),
        linear=True),
    Row("moveaxis two", lambda a: np.moveaxis(a, (0, 1), (2, 0)), lambda T, a: T.moveaxis(a, (0, 1), (2, 0)),
        normal(2, 3, 4), linear=True),
    Row("rollaxis", lambda a: np.rollaxis(a, 2, 0), lambda T, a: T.moveaxis(a, 2, 0), normal(2, 3, 4), linear=True),
    Row("swapaxes", lambda a: np.swapaxes(a, 0, 2), lambda T, a: T.swapaxes(a, 0, 2), normal(2, 3, 4), linear=True),
    Row("transpose", lambda a: np.transpose(a, (1, 2, 0)), lambda T, a: a.permute(1, 2, 0), normal(2, 3, 4),
        linear=True),
    Row("reshape", lambda a: np.reshape(a, (4, -1)), lambda T, a: a.reshape(4, -1), normal(2, 3, 2), linear=True),
    Row("expand_dims", lambda a: np.expand_dims(a, 1), lambda T, a: a.unsqueeze(1), normal(3, 4), linear=True),
    Row("squeeze", lambda a: np.squeeze(a, 0), lambda T, a: a.squeeze(0), normal(1, 3, 1), linear=True),
    Row("stack", lambda a, b: np.stack([a, b], axis=-1), lambda T, a, b: T.stack([a, b], dim=-1), normal(2, 3),
        normal(2, 3), linear=True),
    Row("ravel", np.ravel, lambda T, a: T.ravel(a), normal(3, 4), linear=True),
    Row("atleast_1d", np.atleast_1d, lambda T, a: T.atleast_1d(a), normal(), linear=True),
    Row("atleast_2d", np.atleast_2d, lambda T, a: T.atleast_2d(a), normal(4), linear=True),
    Row("atleast_3d", np.atleast_3d, lambda T, a: T.atleast_3d(a), normal(3, 4), linear=True),
    Row("atleast_3d of two", np.atleast_3d, lambda T, a, b: T.atleast_3d(a, b), normal(4), normal(), linear=True),
    Row("split", lambda a: np.split(a, 3), lambda T, a: T.tensor_split(a, 3), normal(6, 4), linear=True),
    Row("split at indices", lambda a: np.split(a, [1, 4], axis=1), lambda T, a: T.tensor_split(a, [1, 4], dim=1),
        normal(3, 6), linear=True),
    Row("array_split", lambda a: np.array_split(a, 3, axis=-1), lambda T, a: T.tensor_split(a, 3, dim=-1),
        normal(2, 7), linear=True),
    Row("hsplit", lambda a: np.hsplit(a, 3), lambda T, a: T.hsplit(a, 3), normal(2, 6), linear=True),
    Row("hsplit 1-D", lambda a: np.hsplit(a, [2]), lambda T, a: T.hsplit(a, [2]), normal(5), linear=True),
    Row("vsplit", lambda a: np.vsplit(a, [1, 3]), lambda T, a: T.vsplit(a, [1, 3]), normal(4, 3), linear=True),
    Row("dsplit", lambda a: np.dsplit(a, 2), lambda T, a: T.dsplit(a, 2), normal(2, 3, 4), linear=True),
    Row("hstack", lambda a, b: np.hstack([a, b]), lambda T, a, b: T.hstack([a, b]), normal(3), normal(2),
        linear=True),
    Row("hstack 2-D", lambda a, b: np.hstack((a, b)), lambda T, a, b: T.hstack((a, b)), normal(3, 1), normal(3, 2),
        linear=True),
    Row("vstack", lambda a, b: np.vstack([a, b]), lambda T, a, b: T.vstack([a, b]), normal(3), normal(2, 3),
        linear=True),
    Row("row_stack", lambda a, b: _quietly(np.row_stack, [a, b]), lambda T, a, b: T.vstack([a, b]), normal(2, 3),
        normal(3), linear=True),
    Row("dstack", lambda a, b: np.dstack([a, b]), lambda T, a, b: T.dstack([a, b]), normal(3, 2), normal(3, 2),
        linear=True),
    Row("column_stack", lambda a, b: np.column_stack([a, b]), lambda T, a, b: T.column_stack([a, b]), normal(3),
        normal(3, 2), linear=True),
    Row("append", lambda a, b: np.append(a, b), lambda T, a, b: T.cat([a.reshape(-1), b.reshape(-1)]),
        normal(2, 3), normal(2), linear=True),
    Row("append axis", lambda a, b: np.append(a, b, axis=0), lambda T, a, b: T.cat([a, b]), normal(2, 3),
        normal(1, 3), linear=True),
    Row("roll", lambda a: np.roll(a, 2), lambda T, a: T.roll(a, 2), normal(3, 4), linear=True),
    Row("roll axes", lambda a: np.roll(a, (1, -3), axis=(0, 1)), lambda T, a: T.roll(a, (1, -3), (0, 1)),
        normal(3, 4), linear=True),
    Row("flip", np.flip, lambda T, a: T.flip(a, (0, 1)), normal(3, 4), linear=True),
    Row("flip axis", lambda a: np.flip(a, axis=1), lambda T, a: T.flip(a, (1,)), normal(2, 3, 4), linear=True),
    Row("fliplr", np.fliplr, lambda T, a: T.fliplr(a), normal(3, 4), linear=True),
    Row("flipud", np.flipud, lambda T, a: T.flipud(a), normal(3, 4), linear=True),
    Row("rot90", np.rot90, lambda T, a: T.rot90(a), normal(3, 4), linear=True),
    Row("rot90 twice", lambda a: np.rot90(a, 2), lambda T, a: T.rot90(a, 2), normal(3, 4), linear=True),
    Row("rot90 back", lambda a: np.rot90(a, -1, axes=(1, 2)), lambda T, a: T.rot90(a, -1, (1, 2)),
        normal(2, 3, 4), linear=True),
    Row("repeat", lambda a: np.repeat(a, 2), lambda T, a: T.repeat_interleave(a.reshape(-1), 2), normal(2, 3),
        linear=True),
    Row("repeat counts", lambda a: np.repeat(a, [1, 0, 3], axis=0),
        lambda T, a: T.repeat_interleave(a, T.tensor([1, 0, 3]), dim=0), normal(3, 2), linear=True),
    Row("tile", lambda a: np.tile(a, (2, 1, 2)), lambda T, a: T.tile(a, (2, 1, 2)), normal(2, 3), linear=True),
    Row("tile fewer reps", lambda a: np.tile(a, 2), lambda T, a: T.tile(a, (2,)), normal(2, 3), linear=True),
    Row("take", lambda a: np.take(a, [[0, 5], [7, 5]]), lambda T, a: T.take(a, T.tensor([[0, 5], [7, 5]])),
        normal(3, 4), linear=True),
    Row("take axis", lambda a: np.take(a, [2, 0, 2], axis=1), lambda T, a: T.index_select(a, 1, T.tensor([2, 0, 2])),
        normal(3, 4), linear=True),
    Row("take wrap", lambda a: np.take(a, [-1, 4], axis=0, mode="wrap"),
        lambda T, a: T.index_select(a, 0, T.tensor([2, 1])), normal(3, 2), linear=True),
    Row("take_along_axis", lambda a: np.take_along_axis(a, np.array([[0, 2, 2], [1, 0, 3]]), axis=1),
        lambda T, a: T.take_along_dim(a, T.tensor([[0, 2, 2], [1, 0, 3]]), dim=1), normal(2, 4), linear=True),
    Row("broadcast_to", lambda a: np.broadcast_to(a, (2, 3, 4)), lambda T, a: T.broadcast_to(a, (2, 3, 4)),
        normal(3, 1), linear=True),
    Row("sort", np.sort, lambda T, a: T.sort(a).values, distinct(3, 5)),
    Row("sort axis 0", lambda a: np.sort(a, axis=0), lambda T, a: T.sort(a, dim=0).values, distinct(4, 3)),
    Row("sort flattened", lambda a: np.sort(a, axis=None), lambda T, a: T.sort(a.reshape(-1)).values,
        distinct(3, 4)),
    Row("partition", lambda a: np.partition(a, 2), None, distinct(3, 5)),
    Row("tril", np.tril, lambda T, a: T.tril(a), normal(4, 4), linear=True),
    Row("tril batched", lambda a: np.tril(a, -1), lambda T, a: T.tril(a, -1), normal(2, 3, 4), linear=True),
    Row("triu", lambda a: np.triu(a, 1), lambda T, a: T.triu(a, 1), normal(3, 5), linear=True),
    Row("diag of a vector", lambda a: np.diag(a, 1), lambda T, a: T.diag(a, 1), normal(3), linear=True),
    Row("diag of a matrix", lambda a: np.diag(a, -1), lambda T, a: T.diag(a, -1), normal(4, 3), linear=True),
    Row("diagonal", lambda a: np.diagonal(a, 1), lambda T, a: T.diagonal(a, 1), normal(3, 4), linear=True),
    Row("diagonal axes", lambda a: np.diagonal(a, -1, 1, 2), lambda T, a: T.diagonal(a, -1, 1, 2), normal(2, 3, 4),
        linear=True),
    Row("trace", np.trace, lambda T, a: T.trace(a), normal(4, 4), linear=True),
    Row("trace axes offset", lambda a: np.trace(a, 1, axis1=1, axis2=2),
        lambda T, a: T.diagonal(a, 1, 1, 2).sum(-1), normal(2, 3, 4), linear=True),
    Row("select", lambda a, b: np.select([a > 0.5, a < -0.5], [a * b, np.exp(a)], default=b),
        lambda T, a, b: T.where(a > 0.5, a * b, T.where(a < -0.5, a.exp(), b.expand(3, 4))), normal(3, 4),
        normal(4)),
    # -- 4. products -------------------------------------------------------------------------------------
    Row("outer", np.outer, lambda T, a, b: T.outer(a.reshape(-1), b), normal(2, 2), normal(3)),
    Row("inner", np.inner, lambda T, a, b: T.inner(a, b), normal(2, 3), normal(4, 3)),
    Row("inner of vectors", np.inner, lambda T, a, b: T.inner(a, b), normal(3), normal(3)),
    Row("tensordot", np.tensordot, lambda T, a, b: T.tensordot(a, b, 2), normal(2, 3, 4), normal(3, 4, 2)),
    Row("tensordot axes", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1])),
        lambda T, a, b: T.tensordot(a, b, ([1, 0], [0, 1])), normal(3, 4, 2), normal(4, 3, 5)),
    Row("tensordot 0", lambda a, b: np.tensordot(a, b, 0), lambda T, a, b: T.tensordot(a, b, 0), normal(2),
        normal(3)),
    Row("einsum matmul", lambda a, b: np.einsum("ij,jk->ik", a, b), lambda T, a, b: T.einsum("ij,jk->ik", a, b),
        normal(2, 3), normal(3, 4)),
    Row("einsum batched", lambda a, b: np.einsum("bij,bkj->bki", a, b),
        lambda T, a, b: T.einsum("bij,bkj->bki", a, b), normal(2, 3, 4), normal(2, 5, 4)),
    Row("einsum diagonal", lambda a: np.einsum("ii->i", a), lambda T, a: T.einsum("ii->i", a), normal(3, 3),
        linear=True),
    Row("einsum trace", lambda a: np.einsum("ii", a), lambda T, a: T.einsum("ii", a), normal(3, 3), linear=True),
    Row("einsum sum", lambda a: np.einsum("ijk->", a), lambda T, a: T.einsum("ijk->", a), normal(2, 3, 4),
        linear=True),
    Row("einsum transpose", lambda a: np.einsum("ijk->kji", a), lambda T, a: T.einsum("ijk->kji", a),
        normal(2, 3, 4), linear=True),
    Row("einsum implicit", lambda a, b: np.einsum("ij,jk", a, b), lambda T, a, b: T.einsum("ij,jk", a, b),
        normal(2, 3), normal(3, 2)),
    Row("einsum three", lambda a, b, c: np.einsum("ij,kj,k->i", a, b, c),
        lambda T, a, b, c: T.einsum("ij,kj,k->i", a, b, c), normal(2, 3), normal(4, 3), normal(4)),
    Row("einsum ellipsis", lambda a, b: np.einsum("...ij,...jk->...ik", a, b),
        lambda T, a, b: T.einsum("...ij,...jk->...ik", a, b), normal(2, 3, 4), normal(4, 2)),
    Row("einsum broadcast", lambda a, b: np.einsum("...i,i", a, b), lambda T, a, b: T.einsum("...i,i", a, b),
        normal(2, 1, 3), normal(3)),
    Row("einsum outer", lambda a, b: np.einsum("i,j->ji", a, b), lambda T, a, b: T.einsum("i,j->ji", a, b),
        normal(2), normal(3)),
    Row("einsum repeated in two", lambda a, b: np.einsum("iij,jk->ik", a, b),
        lambda T, a, b: T.einsum("iij,jk->ik", a, b), normal(3, 3, 2), normal(2, 4)),
    Row("einsum sublists", lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [2, 0]),
        lambda T, a, b: T.einsum(a, [0, 1], b, [1, 2], [2, 0]), normal(2, 3), normal(3, 4)),
    Row("kron", np.kron, lambda T, a, b: T.kron(a, b), normal(2, 3), normal(3, 2)),
    Row("kron of ranks 1 and 2", np.kron, lambda T, a, b: T.kron(a, b), normal(2), normal(2, 3)),
    Row("cross", np.cross, lambda T, a, b: T.linalg.cross(a, b.expand(4, 3)), normal(4, 3), normal(3)),
    Row("cross axes", lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0),
        lambda T, a, b: T.linalg.cross(a.T, b).T, normal(3, 2), normal(2, 3)),
    # -- 5. linear algebra -------------------------------------------------------------------------------
    Row("linalg.norm", np.linalg.norm, lambda T, a: T.linalg.norm(a), normal(3, 4)),
    Row("linalg.norm keepdims", lambda a: np.linalg.norm(a, keepdims=True), lambda T, a: T.linalg.norm(a, keepdim=True),
        normal(2, 3, 4)),
    Row("linalg.norm axis", lambda a: np.linalg.norm(a, axis=1), lambda T, a: T.linalg.vector_norm(a, dim=1),
        normal(3, 4)),
    Row("linalg.norm ord 3", lambda a: np.linalg.norm(a, 3, axis=0), lambda T, a: T.linalg.vector_norm(a, 3, dim=0),
        normal(3, 4)),
    Row("linalg.norm ord 0.5", lambda a: np.linalg.norm(a, 0.5), lambda T, a: T.linalg.vector_norm(a, 0.5),
        away_from_zero(5)),
    Row("linalg.norm ord 1", lambda a: np.linalg.norm(a, 1), lambda T, a: T.linalg.vector_norm(a, 1),
        away_from_zero(5)),
    Row("linalg.norm ord inf", lambda a: np.linalg.norm(a, np.inf, axis=-1, keepdims=True),
        lambda T, a: T.linalg.vector_norm(a, float("inf"), dim=-1, keepdim=True), distinct(3, 4)),
    Row("linalg.norm ord -inf", lambda a: np.linalg.norm(a, -np.inf),
        lambda T, a: T.linalg.vector_norm(a, -float("inf")), distinct(5)),
    Row("linalg.norm fro", lambda a: np.linalg.norm(a, "fro", axis=(0, 2)),
        lambda T, a: T.linalg.matrix_norm(a, "fro", dim=(0, 2)), normal(2, 3, 4)),
    Row("linalg.norm matrix 1", lambda a: np.linalg.norm(a, 1), lambda T, a: T.linalg.matrix_norm(a, 1),
        distinct(3, 4)),
    Row("linalg.norm matrix -1", lambda a: np.linalg.norm(a, -1, axis=(2, 0)),
        lambda T, a: T.linalg.matrix_norm(a, -1, dim=(2, 0)), distinct(3, 2, 4)),
    Row("linalg.norm matrix inf", lambda a: np.linalg.norm(a, np.inf),
        lambda T, a: T.linalg.matrix_norm(a, float("inf")), distinct(3, 4)),
    Row("linalg.norm matrix -inf", lambda a: np.linalg.norm(a, -np.inf, axis=(1, 0), keepdims=True),
        lambda T, a: T.linalg.matrix_norm(a, -float("inf"), dim=(1, 0), keepdim=True), distinct(3, 4)),
    Row("linalg.norm nuc", lambda a: np.linalg.norm(a, "nuc"), lambda T, a: T.linalg.matrix_norm(a, "nuc"),
        normal(4, 3)),
    Row("linalg.norm matrix 2", lambda a: np.linalg.norm(a, 2, axis=(2, 0), keepdims=True),
        lambda T, a: T.linalg.matrix_norm(a, 2, dim=(2, 0), keepdim=True), normal(3, 2, 4)),
    Row("linalg.norm matrix -2", lambda a: np.linalg.norm(a, -2), lambda T, a: T.linalg.matrix_norm(a, -2),
        normal(3, 4)),
    Row("linalg.inv", np.linalg.inv, lambda T, a: T.linalg.inv(a), invertible(3, 3)),
    Row("linalg.inv batched", np.linalg.inv, lambda T, a: T.linalg.inv(a), invertible(2, 3, 3)),
    Row("linalg.det", np.linalg.det, lambda T, a: T.linalg.det(a), invertible(3, 3)),
    Row("linalg.det batched", np.linalg.det, lambda T, a: T.linalg.det(a), invertible(2, 3, 3)),
    Row("linalg.slogdet", np.linalg.slogdet, lambda T, a: tuple(T.linalg.slogdet(a)), invertible(2, 3, 3)),
    Row("linalg.solve", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(3, 3), normal(3, 2)),
    Row("linalg.solve a vector", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(3, 3), normal(3)),
    Row("linalg.solve batched", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(2, 3, 3), normal(3)),
    Row("linalg.cholesky", lambda a: np.linalg.cholesky(a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)),
        lambda T, a: T.linalg.cholesky(a @ a.mT + 3 * T.eye(3, dtype=a.dtype)), normal(2, 3, 3)),
    Row("linalg.cholesky upper", lambda a: np.linalg.cholesky(a @ a.T + np.eye(3), upper=True),
        lambda T, a: T.linalg.cholesky(a @ a.T + T.eye(3, dtype=a.dtype), upper=True), normal(3, 3)),
    # NumPy reads one triangle only: the gradient is that function's (PyTorch's is the symmetric one)
    Row("linalg.cholesky of a lower triangle", np.linalg.cholesky, None, invertible(3, 3)),
    Row("linalg.cholesky of an upper triangle", lambda a: np.linalg.cholesky(a, upper=True), None,
        invertible(2, 3, 3)),
    Row("linalg.eigvalsh", lambda a: np.linalg.eigvalsh(a + np.swapaxes(a, -1, -2)),
        lambda T, a: T.linalg.eigvalsh(a + a.mT), normal(2, 3, 3)),
    Row("linalg.eigvalsh of an upper triangle", lambda a: np.linalg.eigvalsh(a, UPLO="U"), None, normal(3, 3)),
    # eigenvectors are defined up to their sign: the rows compare their squares (PyTorch's signs may differ)
    Row("linalg.eigh", lambda a: _squared_vectors(np.linalg.eigh(a + np.swapaxes(a, -1, -2))),
        lambda T, a: _squared_vectors(T.linalg.eigh(a + a.mT)), normal(2, 3, 3)),
    Row("linalg.eigh of a lower triangle", lambda a: _squared_vectors(np.linalg.eigh(a)), None, normal(4, 4)),
    Row("linalg.eigh of an upper triangle", lambda a: np.linalg.eigh(a, "U").eigenvectors[..., :1] *
        np.linalg.eigh(a, "U").eigenvectors[..., 1:2], None, normal(3, 3)),
    Row("linalg.pinv", np.linalg.pinv, lambda T, a: T.linalg.pinv(a), normal(4, 3)),
    Row("linalg.pinv wide", np.linalg.pinv, lambda T, a: T.linalg.pinv(a), normal(2, 2, 3)),
    # -- 6. the rest of HIPS autograd's list ---------------------------------------------------------------
    Row("linspace", lambda a, b: np.linspace(a, b, 5), lambda T, a, b: T.stack(
        [a + (b - a) * (i / 4) for i in range(4)] + [b.expand(3)]), normal(3), normal(3), linear=True),
    Row("linspace axis", lambda a, b: np.linspace(a, b, 4, endpoint=False, axis=-1), None, normal(2), normal(3, 1),
        linear=True),
    Row("gradient", np.gradient, lambda T, a: T.gradient(a), normal(3, 5), linear=True),
    Row("gradient spacing edge order 2", lambda a: np.gradient(a, 0.5, axis=1, edge_order=2),
        lambda T, a: T.gradient(a, spacing=0.5, dim=1, edge_order=2)[0], normal(3, 5), linear=True),
    Row("astype", lambda a: np.astype(a, np.float64), lambda T, a: a.double(), normal(3, 4), linear=True),
    Row("concatenate", lambda a, b: np.concatenate([a, b], axis=1), lambda T, a, b: T.cat([a, b], dim=1),
        normal(2, 3), normal(2, 1), linear=True),
]

BY_NAME = {row.name: row for row in ROWS}
assert len(BY_NAME) == len(ROWS), "row names must be unique"


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def parts(out) -> list:
    """A result as a list of arrays or Tensors (``split`` and ``slogdet`` give several)."""
    return list(out) if isinstance(out, (list, tuple)) else [out]


def joined(out):
    """One Tensor of everything a NumPy call on Tensors returned (parts flattened and concatenated)."""
    pieces = parts(out)
    if len(pieces) == 1:
        return pieces[0]
    return Tensor.cat([p.reshape(-1) for p in pieces])


def joined_torch(torch, out):
    pieces = parts(out)
    return pieces[0] if len(pieces) == 1 else torch.cat([p.reshape(-1) for p in pieces])


def leaves(arrays) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def of(row):
    """The function the gradient checks differentiate: the row's call, joined (squared when it is linear, for
    second-order checks: a linear op's second derivative is 0)."""
    return lambda *xs: joined(row.numpy(*xs))


def twice(row):
    if row.linear:
        return lambda *xs: joined(row.numpy(*xs)) ** 2
    return of(row)


def differentiable(out) -> bool:
    return any(isinstance(p, Tensor) and p.requires_grad for p in parts(out))


ids = [row.name for row in ROWS]
TORCH_ROWS = [row for row in ROWS if row.torch is not None and TORCH not in row.skip]

# ----------------------------------------------------------------------------------------------------------
# Every row: values, first and second derivatives
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_values_are_numpys(row):
    arrays = row.arrays()
    expected = parts(row.numpy(*[a.copy() for a in arrays]))
    got = parts(row.numpy(*leaves(arrays)))
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        assert isinstance(ours, Tensor), type(ours)
        theirs = np.asarray(theirs)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours.shape, ours.dtype, theirs.shape,
                                                                           theirs.dtype)
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-12, atol=1e-14)
    assert differentiable(got)


@pytest.mark.parametrize("row", [row for row in ROWS if FLOAT32 not in row.skip], ids=lambda row: row.name)
def test_float32_keeps_numpys_dtype(row):
    arrays = row.arrays(dtype=np.float32)
    expected = parts(row.numpy(*[a.copy() for a in arrays]))
    got = parts(row.numpy(*[Tensor(a.copy(), requires_grad=True) for a in arrays]))
    for ours, theirs in zip(got, expected):
        theirs = np.asarray(theirs)
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours.data, theirs, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_first_order_against_finite_differences(row):
    assert gradcheck(of(row), *leaves(row.arrays()))


@pytest.mark.parametrize("row", ROWS, ids=ids)
def test_second_order_against_finite_differences(row):
    assert gradgradcheck(twice(row), *leaves(row.arrays()))


def _torch_gradients(torch, row, arrays, upstream, vectors):
    """PyTorch's values, first derivatives for ``upstream``, and second derivatives: the gradient of
    sum(first derivatives * vectors)."""
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = joined_torch(torch, row.torch(torch, *xs))
    if row.linear:
        out = out ** 2
    firsts = torch.autograd.grad(out, xs, torch.tensor(upstream), create_graph=True, allow_unused=True)
    firsts = [torch.zeros_like(x) if g is None or g._is_zerotensor() else g for x, g in zip(xs, firsts)]
    total = sum((g * torch.tensor(v)).sum() for g, v in zip(firsts, vectors))
    seconds = torch.autograd.grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
    return (out.detach().numpy(), [g.detach().numpy() for g in firsts],
            [np.zeros(a.shape) if g is None or g._is_zerotensor() else g.numpy() for a, g in zip(arrays, seconds)])


@pytest.mark.parametrize("row", TORCH_ROWS, ids=lambda row: row.name)
def test_first_and_second_order_against_pytorch(row):
    torch = pytest.importorskip("torch")
    arrays = row.arrays()
    xs = leaves(arrays)
    out = twice(row)(*xs)
    rng = np.random.default_rng(1)
    upstream = rng.standard_normal(out.shape)
    vectors = [rng.standard_normal(a.shape) for a in arrays]
    values, firsts, seconds = _torch_gradients(torch, row, arrays, upstream, vectors)
    np.testing.assert_allclose(out.data, values, rtol=1e-10, atol=1e-12)
    ours = grad(out, xs, Tensor(upstream), create_graph=True, allow_unused=True)
    ours = [Tensor(np.zeros(x.shape)) if g is None else g for x, g in zip(xs, ours)]
    for g, theirs in zip(ours, firsts):
        np.testing.assert_allclose(g.data, theirs, rtol=1e-9, atol=1e-10)
    total = sum((g * Tensor(v)).sum() for g, v in zip(ours, vectors))
    again = grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
    for x, g, theirs in zip(xs, again, seconds):
        np.testing.assert_allclose(np.zeros(x.shape) if g is None else g.data, theirs, rtol=1e-8, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------
# The table covers every differentiable function; every function of the anchor has a status
# ----------------------------------------------------------------------------------------------------------


def test_every_differentiable_function_has_a_row():
    covered = {row.name.split()[0] for row in ROWS}
    missing = sorted(set(numpy_protocol.supported()["differentiable"]) - covered)
    assert not missing, f"no row in the table for {missing}"


# HIPS autograd's lists (autograd/numpy/numpy_vjps.py and linalg.py): the functions it differentiates, and those
# it declares non-differentiable. Left out: complex-only helpers of its own (make_diagonal, _astype,
# concatenate_args, array_from_args, _array_from_scalar_or_array: np.astype, np.concatenate and np.array are
# what users call), np.msort (gone from NumPy 2), np.full (its fill value is not dispatched: see below).
ANCHOR_DIFFERENTIABLE = """
    nan_to_num add multiply subtract divide maximum minimum fmax fmin logaddexp logaddexp2 true_divide mod remainder
    power arctan2 hypot negative abs absolute fabs reciprocal exp exp2 expm1 log log2 log10 log1p sin cos tan arcsin
    arccos arctan sinh cosh tanh arcsinh arccosh arctanh rad2deg degrees deg2rad radians square sqrt sinc reshape
    roll array_split split vsplit hsplit dsplit ravel expand_dims squeeze diag flipud fliplr rot90 trace triu tril
    clip swapaxes moveaxis rollaxis real_if_close real imag conj conjugate angle where cross linspace diff gradient
    repeat tile kron transpose broadcast_to sum mean prod var std max min amax amin cumsum inner matmul dot tensordot
    outer concatenate sort partition atleast_1d atleast_2d atleast_3d einsum diagonal pad stack hstack vstack
    row_stack column_stack dstack append select
    linalg.det linalg.slogdet linalg.inv linalg.pinv linalg.solve linalg.norm linalg.eigh linalg.eig
    linalg.cholesky linalg.svd
""".split()
ANCHOR_NO_GRADIENT = """
    floor ceil round rint around fix trunc all any argmax argmin argpartition argsort argwhere nonzero flatnonzero
    count_nonzero searchsorted sign ndim shape floor_divide logical_and logical_or logical_not logical_xor isfinite
    isinf isnan isneginf isposinf allclose isclose array_equal array_equiv greater greater_equal less less_equal
    equal not_equal iscomplexobj iscomplex size isreal zeros_like ones_like empty_like full_like result_type
""".split()


def _function(name):
    target = np
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _status():
    """Every function name Tensors know -> its status."""
    status = {name: kind for kind, names in numpy_protocol.supported().items() for name in names}
    status.update({name: "refused" for name in numpy_protocol.refused()})
    return status


@pytest.mark.parametrize("name", ANCHOR_DIFFERENTIABLE)
def test_every_function_hips_autograd_differentiates_differentiates_or_is_refused(name):
    status = _status()
    canonical = numpy_protocol._short_name(_function(name))  # np.abs is np.absolute, np.mod is np.remainder ...
    assert status.get(canonical) in ("differentiable", "refused") or (
        name in ("imag", "angle") and status.get(canonical) == "without gradient"), (name, status.get(canonical))


@pytest.mark.parametrize("name", ANCHOR_NO_GRADIENT)
def test_every_function_hips_autograd_declares_constant_gives_no_gradient(name):
    canonical = numpy_protocol._short_name(_function(name))
    assert _status().get(canonical) in ("without gradient", "plain NumPy results"), name


def test_imag_and_angle_of_real_tensors_are_constants():
    x = Tensor(np.array([-1.5, 0.0, 2.0]), requires_grad=True)
    imag, angle = np.imag(x), np.angle(x)
    assert not imag.requires_grad and not angle.requires_grad
    np.testing.assert_array_equal(imag.data, np.imag(x.data))
    np.testing.assert_array_equal(angle.data, np.angle(x.data))


@pytest.mark.parametrize("name", ["round", "around", "fix", "isneginf", "isposinf", "argsort", "argpartition",
                                  "searchsorted", "floor_divide", "argwhere", "flatnonzero", "result_type"])
def test_functions_without_gradient_compute_numpys_values(name):
    a = np.array([[2.7, -1.2, np.inf], [0.5, -np.inf, 3.0]])
    x = Tensor(a, requires_grad=True)
    args = {"argpartition": (1,), "searchsorted": (), "floor_divide": (0.7,)}.get(name, ())
    values = (lambda v: v.reshape(-1)[:2]) if name == "searchsorted" else (lambda v: v)
    function = getattr(np, name)
    with np.errstate(all="ignore"):
        if name == "searchsorted":
            ours = function(x.reshape(-1)[:2] * 0 + np.array([1.0, 2.0]), 1.5)
            theirs = np.searchsorted([1.0, 2.0], 1.5)
        else:
            ours, theirs = function(values(x), *args), function(values(a), *args)
    if isinstance(ours, Tensor):
        assert not ours.requires_grad
        ours = ours.data
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


# ----------------------------------------------------------------------------------------------------------
# Refusals name the function and say why
# ----------------------------------------------------------------------------------------------------------

_M = np.eye(3) * 2 + 0.1
REFUSED_CALLS = {
    "hypot": lambda t: np.hypot(t, t),
    "linalg.svd": np.linalg.svd,
    "linalg.eig": np.linalg.eig,
    "copyto": lambda t: np.copyto(np.zeros((3, 3)), t),
}


def test_every_refused_function_is_called_here():
    assert set(REFUSED_CALLS) == set(numpy_protocol.refused())


@pytest.mark.parametrize("name", sorted(REFUSED_CALLS))
def test_refused_functions_raise_naming_them_and_why(name):
    reason = numpy_protocol.refused()[name]
    with pytest.raises(TypeError) as error:
        REFUSED_CALLS[name](Tensor(_M.copy(), requires_grad=True))
    assert str(error.value).startswith(f"np.{name} is not supported on Tensors: {reason}; supported: ")


_X = np.arange(1.0, 7.0).reshape(2, 3)
REFUSED_OPTIONS = [
    (lambda x: np.prod(x, out=np.empty(())), r"np\.prod: out= not supported on Tensors"),
    (lambda x: np.prod(x, axis=0, where=np.array([True, False, True])), r"np\.prod: where= not supported"),
    (lambda x: np.prod(x, initial=2.0), r"np\.prod: initial= not supported"),
    (lambda x: np.cumsum(x, dtype=np.float32), r"np\.cumsum: dtype= not supported"),
    (lambda x: np.cumprod(x, 0, None, np.empty((2, 3))), r"np\.cumprod: out= not supported"),
    (lambda x: np.exp2(x, dtype=np.float32), r"np\.exp2: dtype= not supported"),
    (lambda x: np.sinh(x, out=np.empty((2, 3))), r"np\.sinh: out= not supported"),
    (lambda x: np.arctan2(x, 1.0, where=True), r"np\.arctan2: where= not supported"),
    (lambda x: np.var(x, out=np.empty(())), r"np\.var: out= not supported"),
    (lambda x: np.std(x, where=np.ones((2, 3), bool)), r"np\.std: where= not supported"),
    (lambda x: np.var(x, dtype=np.float32), r"np\.var: dtype= not supported"),
    (lambda x: np.trace(x, out=np.empty(())), r"np\.trace: out= not supported"),
    (lambda x: np.take(x, [0], out=np.empty(1)), r"np\.take: out= not supported"),
    (lambda x: np.einsum("ij->", x, out=np.empty(())), r"np\.einsum: out= not supported"),
    (lambda x: np.einsum("ij->", x, dtype=np.float32), r"np\.einsum: dtype= not supported"),
    (lambda x: np.hstack([x, x], dtype=np.float32), r"np\.hstack: dtype= not supported"),
    (lambda x: np.outer(x, x, out=np.empty((6, 6))), r"np\.outer: out= not supported"),
    (lambda x: np.sort(x, order="f"), r"np\.sort: order= \(fields of structured arrays\) is not supported"),
    (lambda x: np.partition(x, 1, order="f"), r"np\.partition: order="),
    (lambda x: np.gradient(x, np.array([0.0, 1.0]), np.array([0.0, 1.0, 3.0])),
     r"np\.gradient: coordinate arrays as spacing are not supported on Tensors"),
    (lambda x: np.cross(x[:, :2], x[:, 1:]), r"np\.cross: only 3-element vectors are supported on Tensors"),
    (lambda x: np.ravel(x, order="F"), r"np\.ravel: order='F' is not supported on Tensors"),
    (lambda x: np.linalg.pinv(np.stack([x[0], x[0] * 2])), r"np\.linalg\.pinv: a matrix that is not of full rank "
                                                             r"\(at NumPy's cutoff\) is not supported on Tensors"),
]


@pytest.mark.parametrize("call, message", REFUSED_OPTIONS, ids=[m.split(":")[0].replace("\\", "")
                                                               for _, m in REFUSED_OPTIONS])
def test_refused_options_raise_naming_the_function(call, message):
    with pytest.raises(TypeError, match=message):
        call(Tensor(_X.copy(), requires_grad=True))


def test_options_that_change_nothing_are_accepted():
    x = Tensor(_X.copy(), requires_grad=True)
    np.testing.assert_array_equal(np.cumsum(x, dtype=np.float64).data, np.cumsum(_X))
    np.testing.assert_array_equal(np.exp2(x, dtype=np.float64).data, np.exp2(_X))
    np.testing.assert_array_equal(np.prod(x, axis=1, where=True).data, np.prod(_X, axis=1))
    np.testing.assert_array_equal(np.var(x, dtype=np.float64, keepdims=True).data, np.var(_X, keepdims=True))
    np.testing.assert_allclose(np.einsum("ij->j", x, optimize=True).data, _X.sum(0))
    np.testing.assert_array_equal(np.sort(x, kind="stable").data, np.sort(_X, kind="stable"))


def test_numpys_own_errors_are_kept_and_name_the_function():
    x = Tensor(_X.copy(), requires_grad=True)
    with pytest.raises(ValueError, match="np.split: array split does not result in an equal division"):
        np.split(x, 4, axis=1)
    with pytest.raises(ValueError, match="np.vsplit: vsplit only works on arrays of 2 or more dimensions"):
        np.vsplit(x[0], 2)
    with pytest.raises(np.exceptions.AxisError):
        np.moveaxis(x, 2, 0)
    with pytest.raises(ValueError, match="np.rot90: Axes must be different."):
        np.rot90(x, axes=(0, 0))
    with pytest.raises(ValueError, match="np.diff: order must be non-negative"):
        np.diff(x, n=-1)
    with pytest.raises(ValueError, match="np.tensordot: shape-mismatch for sum"):
        np.tensordot(x, x, axes=([0], [1]))
    with pytest.raises(TypeError, match=r"prod\(\) got an unexpected keyword argument 'axes'"):
        np.prod(x, axes=0)
    with pytest.raises(IndexError):
        np.take(x, [7])
    with pytest.raises(ValueError, match="np.linalg.norm: Invalid norm order 'fro' for vectors"):
        np.linalg.norm(x[0], "fro")
    with pytest.raises(ValueError, match="np.linalg.norm: Invalid norm order 'max' for matrices"):
        np.linalg.norm(x, "max")


# ----------------------------------------------------------------------------------------------------------
# Behaviour the table's random inputs do not reach
# ----------------------------------------------------------------------------------------------------------


def test_fmax_and_fmin_take_the_number_against_nan_and_share_ties():
    a = Tensor(np.array([1.0, np.nan, 2.0, np.nan]), requires_grad=True)
    b = Tensor(np.array([np.nan, 3.0, 2.0, np.nan]), requires_grad=True)
    out = np.fmax(a, b)
    np.testing.assert_array_equal(out.data, np.fmax(a.data, b.data))
    grad_a, grad_b = grad(out, [a, b], Tensor(np.array([1.0, 10.0, 100.0, 1000.0])))
    np.testing.assert_array_equal(grad_a.data, [1.0, 0.0, 50.0, 500.0])  # the nan pair: as a tie
    np.testing.assert_array_equal(grad_b.data, [0.0, 10.0, 50.0, 500.0])
    np.testing.assert_array_equal(np.fmin(a, b).data, np.fmin(a.data, b.data))


def test_norm_ord_0_counts_without_gradient():
    x = Tensor(np.array([[0.0, 2.0], [-1.0, 0.0]]), requires_grad=True)
    out = np.linalg.norm(x, 0, axis=1)
    np.testing.assert_array_equal(out.data, np.linalg.norm(x.data, 0, axis=1))
    assert not out.requires_grad


def test_slogdet_gives_a_sign_without_gradient_and_a_differentiable_log():
    a = Tensor(np.array([[0.0, 2.0], [3.0, 1.0]]), requires_grad=True)  # det -6
    sign, logabsdet = np.linalg.slogdet(a)
    assert sign.item() == -1.0 and not sign.requires_grad
    assert logabsdet.item() == pytest.approx(np.log(6.0))
    logabsdet.backward()
    np.testing.assert_allclose(a.grad.data, np.linalg.inv(a.data).T)


def test_eigh_gives_numpys_named_results():
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    result = np.linalg.eigh(Tensor(a, requires_grad=True))
    expected = np.linalg.eigh(a)
    np.testing.assert_allclose(result.eigenvalues.data, expected.eigenvalues)
    np.testing.assert_allclose(result.eigenvectors.data, expected.eigenvectors)


def test_new_elementwise_rules_are_tensor_methods_with_pytorchs_names():
    x = Tensor(np.array([0.25, 0.5]), requires_grad=True)
    for method, function in [("asin", np.arcsin), ("arcsin", np.arcsin), ("acos", np.arccos), ("atan", np.arctan),
                             ("sinh", np.sinh), ("cosh", np.cosh), ("asinh", np.arcsinh), ("atanh", np.arctanh),
                             ("exp2", np.exp2), ("expm1", np.expm1), ("log2", np.log2), ("log10", np.log10),
                             ("reciprocal", np.reciprocal), ("sinc", np.sinc)]:
        np.testing.assert_allclose(getattr(x, method)().data, function(x.data))
    np.testing.assert_allclose((x + 1).acosh().data, np.arccosh(x.data + 1))


def test_integer_inputs_compute_in_float32_as_pytorch():
    x = Tensor(np.array([1, 2, 4], dtype=np.int32))
    assert np.reciprocal(x).dtype == np.float32  # NumPy's reciprocal of integers is integer division
    np.testing.assert_allclose(np.reciprocal(x).data, [1.0, 0.5, 0.25])
    assert np.log2(x).dtype == np.float32 and np.sinh(x).dtype == np.float32


def test_split_parts_differentiate_together():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    first, second = np.hsplit(x, 2)
    (np.sum(first * 2) + np.sum(second * 3)).backward()
    np.testing.assert_array_equal(x.grad.data, np.repeat([[2.0, 2.0, 3.0, 3.0]], 3, axis=0))


def test_prod_and_cumprod_at_zeros_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    a = np.array([[2.0, 0.0, 3.0, 0.0], [0.0, 1.5, -2.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    u = np.random.default_rng(0).standard_normal((3, 4))
    for ours, theirs, upstream in [(lambda x: np.cumprod(x, axis=1), lambda t: torch.cumprod(t, 1), u),
                                   (lambda x: np.prod(x, axis=1), lambda t: torch.prod(t, 1), u[:, 0])]:
        x, t = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        ours(x).backward(upstream)
        theirs(t).backward(torch.tensor(upstream))
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12)
