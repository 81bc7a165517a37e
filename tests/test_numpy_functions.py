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
        lambda T, a: T.sinc(a * T.tensor([0.0, 1.0, 1.0], dtype=a.dtype)), normal(3)),
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
    Row("sin", np.sin, lambda T, a: T.sin(a), normal(3, 4)),
    Row("cos", np.cos, lambda T, a: T.cos(a), normal(3, 4)),
    Row("tan", np.tan, lambda T, a: T.tan(a), uniform(-1.2, 1.2)(3, 4)),
    Row("pad", lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=0.5),
        lambda T, a: T.nn.functional.pad(a, (2, 1, 1, 0), value=0.5), normal(3, 4), linear=True),
    # -- 2. reductions and scans ---------------------------------------------------------------------------
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
    Row("diff", np.diff, lambda T, a: T.diff(a), normal(3, 5), linear=True),
    Row("diff n=2 axis 0", lambda a: np.diff(a, n=2, axis=0), lambda T, a: T.diff(a, n=2, dim=0), normal(5, 3),
        linear=True),
    Row("diff prepend append", lambda a, b: np.diff(a, prepend=b[:, :1], append=0.5),
        lambda T, a, b: T.diff(a, prepend=b[:, :1], append=T.full((3, 1), 0.5, dtype=a.dtype)),
        normal(3, 4), normal(3, 2), linear=True),
    Row("var", np.var, lambda T, a: T.var(a, correction=0), normal(3, 4)),
    Row("var axis ddof keepdims", lambda a: np.var(a, axis=0, ddof=1, keepdims=True),
        lambda T, a: T.var(a, dim=0, correction=1, keepdim=True), normal(4, 3)),
    Row("std", np.std, lambda T, a: T.std(a, correction=0), normal(3, 4)),
    Row("std axis", lambda a: np.std(a, axis=(0, 2)), lambda T, a: T.std(a, dim=(0, 2), correction=0),
        normal(2, 3, 4)),
    Row("nan_to_num", lambda a: np.nan_to_num(a, nan=0.5, posinf=9.0), lambda T, a: T.nan_to_num(a, 0.5, 9.0),
        with_non_finite(3, 4), linear=True),
    # -- 3. shape and joining ------------------------------------------------------------------------------
    Row("moveaxis", lambda a: np.moveaxis(a, 0, -1), lambda T, a: T.moveaxis(a, 0, -1), normal(2, 3, 4),
        linear=True),
    Row("moveaxis two", lambda a: np.moveaxis(a, (0, 1), (2, 0)), lambda T, a: T.moveaxis(a, (0, 1), (2, 0)),
        normal(2, 3, 4), linear=True),
    Row("rollaxis", lambda a: np.rollaxis(a, 2, 0), lambda T, a: T.moveaxis(a, 2, 0), normal(2, 3, 4), linear=True),
    Row("swapaxes", lambda a: np.swapaxes(a, 0, 2), lambda T, a: T.swapaxes(a, 0, 2), normal(2, 3, 4), linear=True),
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
    Row("row_stack", lambda a, b: np.vstack([a, b]), lambda T, a, b: T.vstack([a, b]), normal(2, 3), normal(3),
        linear=True),
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
    Row("cross", np.cross, lambda T, a, b: T.linalg.cross(a, b), normal(4, 3), normal(3)),
    Row("cross axes", lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0),
        lambda T, a, b: T.linalg.cross(a.T, b).T, normal(3, 2), normal(2, 3)),
    # -- 5. linear algebra -------------------------------------------------------------------------------
    Row("norm", np.linalg.norm, lambda T, a: T.linalg.norm(a), normal(3, 4)),
    Row("norm keepdims", lambda a: np.linalg.norm(a, keepdims=True), lambda T, a: T.linalg.norm(a, keepdim=True),
        normal(2, 3, 4)),
    Row("norm axis", lambda a: np.linalg.norm(a, axis=1), lambda T, a: T.linalg.vector_norm(a, dim=1),
        normal(3, 4)),
    Row("norm ord 3", lambda a: np.linalg.norm(a, 3, axis=0), lambda T, a: T.linalg.vector_norm(a, 3, dim=0),
        normal(3, 4)),
    Row("norm ord 0.5", lambda a: np.linalg.norm(a, 0.5), lambda T, a: T.linalg.vector_norm(a, 0.5),
        away_from_zero(5)),
    Row("norm ord 1", lambda a: np.linalg.norm(a, 1), lambda T, a: T.linalg.vector_norm(a, 1), away_from_zero(5)),
    Row("norm ord inf", lambda a: np.linalg.norm(a, np.inf, axis=-1, keepdims=True),
        lambda T, a: T.linalg.vector_norm(a, float("inf"), dim=-1, keepdim=True), distinct(3, 4)),
    Row("norm ord -inf", lambda a: np.linalg.norm(a, -np.inf), lambda T, a: T.linalg.vector_norm(a, -float("inf")),
        distinct(5)),
    Row("norm fro", lambda a: np.linalg.norm(a, "fro", axis=(0, 2)),
        lambda T, a: T.linalg.matrix_norm(a, "fro", dim=(0, 2)), normal(2, 3, 4)),
    Row("norm matrix 1", lambda a: np.linalg.norm(a, 1), lambda T, a: T.linalg.matrix_norm(a, 1), distinct(3, 4)),
    Row("norm matrix -1", lambda a: np.linalg.norm(a, -1, axis=(2, 0)),
        lambda T, a: T.linalg.matrix_norm(a, -1, dim=(2, 0)), distinct(3, 2, 4)),
    Row("norm matrix inf", lambda a: np.linalg.norm(a, np.inf), lambda T, a: T.linalg.matrix_norm(a, float("inf")),
        distinct(3, 4)),
    Row("norm matrix -inf", lambda a: np.linalg.norm(a, -np.inf, axis=(1, 0), keepdims=True),
        lambda T, a: T.linalg.matrix_norm(a, -float("inf"), dim=(1, 0), keepdim=True), distinct(3, 4)),
    Row("inv", np.linalg.inv, lambda T, a: T.linalg.inv(a), invertible(3, 3)),
    Row("inv batched", np.linalg.inv, lambda T, a: T.linalg.inv(a), invertible(2, 3, 3)),
    Row("det", np.linalg.det, lambda T, a: T.linalg.det(a), invertible(3, 3)),
    Row("det batched", np.linalg.det, lambda T, a: T.linalg.det(a), invertible(2, 3, 3)),
    Row("slogdet", np.linalg.slogdet, lambda T, a: tuple(T.linalg.slogdet(a)), invertible(2, 3, 3)),
    Row("solve", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(3, 3), normal(3, 2)),
    Row("solve a vector", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(3, 3), normal(3)),
    Row("solve batched", np.linalg.solve, lambda T, a, b: T.linalg.solve(a, b), invertible(2, 3, 3), normal(3)),
    # -- 6. the rest of HIPS autograd's list ---------------------------------------------------------------
    Row("linspace", lambda a, b: np.linspace(a, b, 5), lambda T, a, b: T.stack(
        [a + (b - a) * (i / 4) for i in range(4)] + [b.expand(3)]), normal(3), normal(3), linear=True),
    Row("linspace axis", lambda a, b: np.linspace(a, b, 4, endpoint=False, axis=-1), None, normal(2), normal(3, 1),
        linear=True),
    Row("gradient", np.gradient, lambda T, a: T.gradient(a), normal(3, 5), linear=True),
    Row("gradient spacing edge order 2", lambda a: np.gradient(a, 0.5, axis=1, edge_order=2),
        lambda T, a: T.gradient(a, spacing=0.5, dim=1, edge_order=2)[0], normal(3, 5), linear=True),
    Row("astype", lambda a: np.astype(a, np.float32), lambda T, a: a.float(), normal(3, 4), linear=True,
        skip={FLOAT32: "the cast is the point"}),
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
    firsts = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, firsts)]
    total = sum((g * torch.tensor(v)).sum() for g, v in zip(firsts, vectors))
    seconds = torch.autograd.grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
    return (out.detach().numpy(), [g.detach().numpy() for g in firsts],
            [np.zeros(a.shape) if g is None else g.numpy() for a, g in zip(arrays, seconds)])


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
