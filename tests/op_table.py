"""THE op table of the tests (imported, not collected): every differentiable op, one row each.

A row says how we call the op, how PyTorch calls it (None where PyTorch has nothing like it), how NumPy code
calls it on Tensors (None where no NumPy function computes it), where its inputs come from (a domain and a shape
per input: ``normal(3, 4)``, ``positive(4)``, ...), which shapes it accepts besides (``kind``), and which checks it
must skip and why. Every test that loops over ops reads this table:

- tests/test_ops.py: first derivatives against finite differences (at the row's shapes and over hypothesis sweeps
  of shapes), against PyTorch in float32 and float64 (random upstream gradients), second derivatives against
  PyTorch's double backward and against finite differences of the first ones (gradgradcheck), gradients with a
  graph against plain ones, random compositions against finite differences and against PyTorch with inf and nan;
- tests/test_numpy_protocol.py: the NumPy spelling on Tensors against PyTorch.

Adding an op is one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest
from helpers import Input, away_from_zero, normal, positive, probabilities, uniform

from tinygrad_like import Tensor
from tinygrad_like.ops import RULES

# Checks a row can skip (the reason is the value of ``skip``)
FINITE_DIFFERENCES = "finite differences"  # gradcheck, gradgradcheck, shape sweeps, random compositions
FLOAT32 = "float32"  # the comparison with PyTorch in float32

# A domain is where a row is tested and, through its guard, where random compositions feed it: periodic functions
# get a bounded one, as finite differences of sin(1e5 x) say nothing.

# The shapes a row accepts besides its own (None: only its own)
ELEMENTWISE = "elementwise"  # one input of any shape, 0-d included; the output has the input's shape
BROADCASTING = "broadcasting"  # two inputs that broadcast against each other
KEEPS_AXES = "keeps axes"  # one input of any shape with at least one axis; the output has as many axes


class Op:
    """One row: ``ours(*tensors)``, ``torch(torch_module, *tensors)``, ``numpy(*tensors)`` compute the same.

    ``inf_and_nan``: the row takes part in the seeded random programs against PyTorch on zeros, infinities and nan
    (tests/test_ops.py), where its values and gradients must be PyTorch's, nan for nan and inf for inf. Rows stay
    out where they differ: abs (0 where it is flat against an inf from downstream, nan in PyTorch), max and min
    (reductions, which the programs do not chain; their nan and tie rules are tested in
    tests/test_hardening_reductions.py), maximum and minimum (against a nan the
    gradient is split as for a tie, PyTorch gives each side all of it), pow of two tensors (a signed zero base
    with a negative exponent), rpow (0 where 2.5 ** x underflows), sin, cos and tan (values at huge arguments),
    and any row whose formula rounds differently from PyTorch's at extreme values. The known differences are
    strict xfails in tests/test_ops.py, so that a fix is noticed.
    ``linear``: the op is linear (or linear between kinks), so its second derivatives are zero; the second-order
    checks differentiate its square instead, so that they compare something. ``kink``: the op has a kink or a
    jump; random compositions, which cannot keep their values away from it, leave it out.
    """

    def __init__(self, name: str, ours: Callable, torch: Callable | None, *inputs: Input, numpy: Callable | None = None,
                 inf_and_nan: bool = False, kind: str | None = None, linear: bool = False, kink: bool = False,
                 skip: Mapping[str, str] | None = None):
        self.name, self.ours, self.torch, self.inputs, self.numpy = name, ours, torch, inputs, numpy
        self.inf_and_nan, self.kind, self.linear, self.kink = inf_and_nan, kind, linear, kink
        self.skip = dict(skip or {})

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def arrays(self, seed: int, dtype=np.float64) -> list[np.ndarray]:
        """One array per input, drawn from the inputs' domains."""
        rng = np.random.default_rng(seed)
        return [make(rng).astype(dtype) for make in self.inputs]

    @property
    def finite_differences(self) -> bool:
        return FINITE_DIFFERENCES not in self.skip

    @property
    def composable(self) -> bool:
        """Random programs may apply it to whatever the previous step made."""
        return self.kind is not None

    def twice(self) -> tuple[Callable, Callable | None]:
        """(ours, PyTorch's) for the second-order checks: the op itself, or its square when it is linear."""
        if not self.linear:
            return self.ours, self.torch
        theirs = None if self.torch is None else (lambda T, *xs: self.torch(T, *xs).square())
        return (lambda *xs: self.ours(*xs).square()), theirs


def _rule(name: str) -> Callable:
    return RULES[name].apply


LABELS = np.array([1, 0, 3])
GATHER = np.array([[2, 0], [1, 1], [3, 2]])  # (3, 2) positions along dim 1 of a (3, 4) input; 1 repeats
CONDITION = np.random.default_rng(7).random((3, 4)) > 0.5
RIGHT = np.arange(8.0).reshape(4, 2)  # an array on the right of a product
LEFT = np.arange(6.0).reshape(2, 3)  # an array on the left of a product
F32 = "a float32 round trip rounds the input: finite differences of float64 see only its rounding"


def _cross_entropy(target: str, reduction: str) -> Op:
    if target == "labels":
        return Op(f"cross_entropy_labels_{reduction}", lambda a: a.cross_entropy(LABELS, reduction=reduction),
                  lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(LABELS), reduction=reduction), normal(3, 4))
    return Op(f"cross_entropy_probabilities_{reduction}", lambda a, t: a.cross_entropy(t, reduction=reduction),
              lambda T, a, t: T.nn.functional.cross_entropy(a, t, reduction=reduction),
              normal(3, 4), probabilities(3, 4))


def _torch_lstm_step(T, gx, h, c, w):
    """The lstm_step rule in PyTorch's ops: gates i, f, g, o of gx + h W^T, then [h', c']."""
    i, f, g, o = (gx + h @ w.T).chunk(4, -1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return T.cat([o.sigmoid() * c_new.tanh(), c_new], -1)


_ROWS = [
    # ------------------------------------------------------------------ arithmetic, broadcasting
    Op("add", lambda a, b: a + b, lambda T, a, b: a + b, normal(3, 4), normal(4), numpy=np.add, inf_and_nan=True,
       kind=BROADCASTING, linear=True),
    Op("sub", lambda a, b: a - b, lambda T, a, b: a - b, normal(3, 1), normal(1, 4), numpy=np.subtract,
       inf_and_nan=True, kind=BROADCASTING, linear=True),
    Op("mul", lambda a, b: a * b, lambda T, a, b: a * b, normal(2, 3, 4), normal(3, 1), numpy=np.multiply,
       inf_and_nan=True, kind=BROADCASTING),
    Op("div", lambda a, b: a / b, lambda T, a, b: a / b, normal(3, 4), away_from_zero(4), numpy=np.divide,
       inf_and_nan=True, kind=BROADCASTING),
    Op("pow", lambda a, b: a ** b, lambda T, a, b: a ** b, positive(3, 4), normal(4), numpy=np.power,
       kind=BROADCASTING),
    Op("maximum", np.maximum, lambda T, a, b: T.maximum(a, b), normal(3, 1), normal(4), numpy=np.maximum,
       kind=BROADCASTING, linear=True, kink=True),
    Op("minimum", np.minimum, lambda T, a, b: T.minimum(a, b), normal(3, 4), normal(4), numpy=np.minimum,
       kind=BROADCASTING, linear=True, kink=True),
    # ------------------------------------------------------------------ with a constant
    Op("neg", lambda a: -a, lambda T, a: -a, normal(4), numpy=np.negative, inf_and_nan=True, kind=ELEMENTWISE,
       linear=True),
    Op("rsub", lambda a: 1 - a, lambda T, a: 1 - a, normal(3, 4), numpy=lambda a: np.ones(np.shape(a)) - a,
       kind=ELEMENTWISE, linear=True),
    Op("rdiv", lambda a: 2 / a, lambda T, a: 2 / a, positive(4), numpy=lambda a: np.full(np.shape(a), 2.0) / a,
       kind=ELEMENTWISE),
    Op("reciprocal", lambda a: 1 / a, lambda T, a: 1 / a, away_from_zero(3, 4), inf_and_nan=True, kind=ELEMENTWISE),
    Op("pow_scalar", lambda a: a ** 3, lambda T, a: a ** 3, normal(3, 4), numpy=lambda a: np.power(a, 3),
       kind=ELEMENTWISE),
    Op("pow_2", lambda a: a ** 2, lambda T, a: a ** 2, normal(3, 4), numpy=lambda a: np.power(a, 2),
       inf_and_nan=True, kind=ELEMENTWISE),
    Op("pow_half", lambda a: a ** 0.5, lambda T, a: a ** 0.5, positive(3, 4), numpy=lambda a: np.power(a, 0.5),
       inf_and_nan=True, kind=ELEMENTWISE),
    Op("pow_0", lambda a: a ** 0, lambda T, a: a ** 0, normal(3, 4), inf_and_nan=True, kind=ELEMENTWISE),
    Op("rpow", lambda a: 2.5 ** a, lambda T, a: 2.5 ** a, normal(3, 4), numpy=lambda a: np.power(2.5, a),
       kind=ELEMENTWISE),
    Op("scalar_arithmetic", lambda a: (2 - a) * 3 / (a ** 2 + 1) + 0.5 ** a,
       lambda T, a: (2 - a) * 3 / (a ** 2 + 1) + 0.5 ** a, normal(5), kind=ELEMENTWISE),
    # ------------------------------------------------------------------ elementwise functions
    Op("exp", lambda a: a.exp(), lambda T, a: a.exp(), normal(3, 4), numpy=np.exp, inf_and_nan=True, kind=ELEMENTWISE),
    Op("exp_0d", lambda a: a.exp(), lambda T, a: a.exp(), normal(), numpy=np.exp),
    Op("log", lambda a: a.log(), lambda T, a: a.log(), positive(3, 4), numpy=np.log, inf_and_nan=True,
       kind=ELEMENTWISE),
    Op("log1p", lambda a: a.log1p(), lambda T, a: a.log1p(), positive(3, 4), numpy=np.log1p, inf_and_nan=True,
       kind=ELEMENTWISE),
    Op("sqrt", lambda a: a.sqrt(), lambda T, a: a.sqrt(), positive(3, 4), numpy=np.sqrt, inf_and_nan=True,
       kind=ELEMENTWISE),
    Op("square", lambda a: a.square(), lambda T, a: a.square(), normal(3, 4), numpy=np.square, kind=ELEMENTWISE),
    Op("sigmoid", lambda a: a.sigmoid(), lambda T, a: a.sigmoid(), uniform(-6.0, 6.0)(3, 4), inf_and_nan=True,
       kind=ELEMENTWISE),
    Op("tanh", lambda a: a.tanh(), lambda T, a: a.tanh(), normal(3, 4), numpy=np.tanh, inf_and_nan=True,
       kind=ELEMENTWISE),
    Op("sin", lambda a: a.sin(), lambda T, a: a.sin(), uniform(-3.0, 3.0)(3, 4), numpy=np.sin, kind=ELEMENTWISE),
    Op("cos", lambda a: a.cos(), lambda T, a: a.cos(), uniform(-3.0, 3.0)(3, 4), numpy=np.cos, kind=ELEMENTWISE),
    Op("tan", lambda a: a.tan(), lambda T, a: a.tan(), uniform(-1.2, 1.2)(3, 4), numpy=np.tan, kind=ELEMENTWISE),
    Op("erf", lambda a: a.erf(), lambda T, a: T.erf(a), normal(3, 4), kind=ELEMENTWISE),
    Op("softplus", lambda a: a.softplus(), lambda T, a: T.nn.functional.softplus(a), normal(3, 4),
       numpy=lambda a: np.log1p(np.exp(a)), kind=ELEMENTWISE),
    Op("gelu", lambda a: a.gelu(), lambda T, a: T.nn.functional.gelu(a), normal(3, 4), kind=ELEMENTWISE),
    Op("relu", lambda a: a.relu(), lambda T, a: a.relu(), away_from_zero(3, 4), numpy=lambda a: np.maximum(a, 0),
       inf_and_nan=True, kind=ELEMENTWISE, linear=True, kink=True),
    Op("leaky_relu", lambda a: a.leaky_relu(), lambda T, a: T.nn.functional.leaky_relu(a), away_from_zero(3, 4),
       numpy=lambda a: np.where(a > 0, a, 0.01 * a), kind=ELEMENTWISE, linear=True, kink=True),
    Op("leaky_relu_slope", lambda a: a.leaky_relu(0.3), lambda T, a: T.nn.functional.leaky_relu(a, 0.3),
       away_from_zero(3, 4), numpy=lambda a: np.where(a > 0, a, 0.3 * a), kind=ELEMENTWISE, linear=True,
       kink=True),
    Op("abs", lambda a: a.abs(), lambda T, a: a.abs(), away_from_zero(3, 4), numpy=np.abs, kind=ELEMENTWISE,
       linear=True, kink=True),
    Op("clip", lambda a: a.clip(0, 1), lambda T, a: a.clamp(0, 1), away_from_zero(3, 4),
       numpy=lambda a: np.clip(a, 0, 1), inf_and_nan=True, kind=ELEMENTWISE, linear=True, kink=True),
    Op("clip_low", lambda a: a.clip(-0.5, None), lambda T, a: a.clamp(min=-0.5), away_from_zero(3, 4),
       numpy=lambda a: np.clip(a, -0.5, None), inf_and_nan=True, kind=ELEMENTWISE, linear=True, kink=True),
    Op("clamp", lambda a: a.clamp(-0.5, 0.5), lambda T, a: a.clamp(-0.5, 0.5), away_from_zero(3, 4),
       kind=ELEMENTWISE, linear=True, kink=True),
    Op("cast", lambda a: a.cast(np.float32).cast(a.dtype), lambda T, a: a.float().to(a.dtype), normal(3, 4),
       kind=ELEMENTWISE, linear=True, skip={FINITE_DIFFERENCES: F32}),
    Op("clone", lambda a: a.clone(), lambda T, a: a.clone(), normal(3, 4), kind=ELEMENTWISE, linear=True),
    Op("reused_nodes", lambda a: (a * a.exp() + a.sigmoid() * a) * a, lambda T, a: (a * a.exp() + a.sigmoid() * a) * a,
       normal(3, 4), kind=ELEMENTWISE),
    Op("where_on_sign", lambda a, b: (a > 0).where(a * 2, b.exp()), lambda T, a, b: T.where(a > 0, a * 2, b.exp()),
       away_from_zero(3, 4), normal(4), numpy=lambda a, b: np.where(a > 0, a * 2, np.exp(b)), kind=BROADCASTING,
       kink=True),
    # ------------------------------------------------------------------ products
    Op("matmul", lambda a, b: a @ b, lambda T, a, b: a @ b, normal(3, 4), normal(4, 5), numpy=np.matmul),
    Op("matmul_batched", lambda a, b: a.matmul(b), lambda T, a, b: a.matmul(b), normal(2, 1, 3, 4), normal(5, 4, 2),
       numpy=np.matmul),
    Op("matmul_batched_by_matrix", lambda a, b: a @ b, lambda T, a, b: a @ b, normal(2, 3, 4), normal(4, 2),
       numpy=np.matmul),
    Op("matmul_vector_matrix", lambda a, b: a @ b, lambda T, a, b: a @ b, normal(4), normal(4, 3), numpy=np.matmul),
    Op("matmul_matrix_vector", lambda a, b: a @ b, lambda T, a, b: a @ b, normal(3, 4), normal(4), numpy=np.matmul),
    Op("matmul_transposed", lambda a, b: a @ b.T, lambda T, a, b: a @ b.T, normal(3, 4), normal(5, 4),
       numpy=lambda a, b: a @ np.transpose(b)),
    Op("dot_vector_batch", lambda a, b: a.dot(b), lambda T, a, b: a.matmul(b), normal(4), normal(2, 4, 3)),
    Op("matmul_by_an_array", lambda a: a.dot(Tensor(RIGHT, dtype=a.dtype)),
       lambda T, a: a @ T.tensor(RIGHT, dtype=a.dtype), normal(3, 4), numpy=lambda a: np.dot(a, RIGHT)),
    Op("array_matmul", lambda a: Tensor(LEFT, dtype=a.dtype) @ a, lambda T, a: T.tensor(LEFT, dtype=a.dtype) @ a,
       normal(3, 4), numpy=lambda a: LEFT @ a),
    Op("linear", _rule("linear"), lambda T, x, w, b: T.nn.functional.linear(x, w, b), normal(5, 4), normal(3, 4),
       normal(3)),
    Op("linear_batched", _rule("linear"), lambda T, x, w, b: T.nn.functional.linear(x, w, b), normal(2, 5, 4),
       normal(3, 4), normal(3)),
    # ------------------------------------------------------------------ reductions
    Op("sum", lambda a: a.sum(), lambda T, a: a.sum(), normal(3, 4), numpy=np.sum, linear=True),
    Op("sum_axis", lambda a: a.sum(axis=-1), lambda T, a: a.sum(-1), normal(3, 4),
       numpy=lambda a: np.sum(a, axis=-1), linear=True),
    Op("sum_axes_keepdim", lambda a: a.sum(axis=(0, 2), keepdim=True), lambda T, a: a.sum(dim=(0, 2), keepdim=True),
       normal(2, 3, 4), numpy=lambda a: np.sum(a, axis=(0, 2), keepdims=True), linear=True),
    Op("sum_keepdim", lambda a: a.sum(-1, keepdim=True), lambda T, a: a.sum(-1, keepdim=True), normal(3, 4),
       numpy=lambda a: np.sum(a, axis=-1, keepdims=True), inf_and_nan=True, kind=KEEPS_AXES, linear=True),
    Op("mean", lambda a: a.mean(-1), lambda T, a: a.mean(-1), normal(3, 4), numpy=lambda a: np.mean(a, axis=-1),
       linear=True),
    Op("mean_axes", lambda a: a.mean(axis=(0, 1)), lambda T, a: a.mean(dim=(0, 1)), normal(3, 4),
       numpy=lambda a: np.mean(a, axis=(0, 1)), linear=True),
    Op("mean_keepdim", lambda a: a.mean(0, keepdim=True), lambda T, a: a.mean(0, keepdim=True), normal(3, 4),
       numpy=lambda a: np.mean(a, axis=0, keepdims=True), inf_and_nan=True, kind=KEEPS_AXES, linear=True),
    Op("max", lambda a: a.max(axis=1), lambda T, a: a.amax(dim=1), normal(3, 4), numpy=lambda a: np.max(a, axis=1),
       linear=True),
    Op("max_keepdim", lambda a: a.max(-1, keepdim=True), lambda T, a: a.amax(-1, keepdim=True), normal(3, 4),
       numpy=lambda a: np.max(a, axis=-1, keepdims=True), kind=KEEPS_AXES, linear=True),
    Op("min", lambda a: a.min(), lambda T, a: a.amin(), normal(3, 4), numpy=np.min, linear=True),
    Op("min_axis", lambda a: a.min(axis=0), lambda T, a: a.amin(dim=0), normal(3, 4),
       numpy=lambda a: np.amin(a, axis=0), linear=True),
    Op("var", lambda a: a.var(-1), lambda T, a: a.var(-1), normal(3, 4)),
    Op("var_numpy_way", lambda a: a.var(axis=-1, ddof=0), lambda T, a: a.var(-1, correction=0), normal(3, 4)),
    Op("var_all", lambda a: a.var(), lambda T, a: a.var(), normal(3, 1, 4)),
    Op("var_axes_keepdim", lambda a: a.var((0, 2), keepdim=True), lambda T, a: a.var((0, 2), keepdim=True),
       normal(3, 1, 4)),
    Op("std", lambda a: a.std(), lambda T, a: a.std(), normal(3, 4)),
    Op("std_axis", lambda a: a.std(-1), lambda T, a: a.std(-1), normal(3, 1, 4)),
    Op("std_correction0", lambda a: a.std(0, correction=0), lambda T, a: a.std(0, correction=0), normal(3, 1, 4)),
    Op("softmax", lambda a: a.softmax(), lambda T, a: a.softmax(-1), normal(3, 4), inf_and_nan=True, kind=KEEPS_AXES),
    Op("softmax_axis0", lambda a: a.softmax(0), lambda T, a: a.softmax(0), normal(3, 4), kind=KEEPS_AXES),
    Op("log_softmax", lambda a: a.log_softmax(), lambda T, a: a.log_softmax(-1), normal(3, 4), inf_and_nan=True,
       kind=KEEPS_AXES),
    Op("log_softmax_axis0", lambda a: a.log_softmax(axis=0), lambda T, a: a.log_softmax(0), normal(3, 4),
       kind=KEEPS_AXES),
    # ------------------------------------------------------------------ losses
    *[_cross_entropy(target, reduction)
      for target in ("labels", "probabilities") for reduction in ("mean", "sum", "none")],
    Op("binary_crossentropy", lambda p, y: p.binary_crossentropy(y),
       lambda T, p, y: T.nn.functional.binary_cross_entropy(p, y), uniform(0.1, 0.9)(3, 4), uniform(0.0, 1.0)(3, 4)),
    # ------------------------------------------------------------------ shapes
    Op("reshape", lambda a: a.reshape(4, 3), lambda T, a: a.reshape(4, 3), normal(3, 4),
       numpy=lambda a: np.reshape(a, (4, 3)), linear=True),
    Op("reshape_flat", lambda a: a.reshape(-1), lambda T, a: a.reshape(-1), normal(3, 4),
       numpy=lambda a: np.reshape(a, (-1,)), linear=True),
    Op("flatten_and_back", lambda a: a.flatten().reshape(a.shape), lambda T, a: a.flatten().reshape(a.shape),
       normal(2, 3, 4), kind=KEEPS_AXES, linear=True),
    Op("view", lambda a: a.view(4, 3), lambda T, a: a.view(4, 3), normal(3, 1, 4), linear=True),
    Op("flatten", lambda a: a.flatten(1), lambda T, a: a.flatten(1), normal(2, 3, 4), linear=True),
    Op("permute", lambda a: a.permute(2, 0, 1), lambda T, a: a.permute(2, 0, 1), normal(2, 3, 4),
       numpy=lambda a: np.transpose(a, (2, 0, 1)), linear=True),
    Op("transpose", lambda a: a.transpose(), lambda T, a: a.transpose(0, 1), normal(2, 3, 4),
       numpy=lambda a: np.swapaxes(a, 0, 1), inf_and_nan=True, linear=True),
    Op("T", lambda a: a.T, lambda T, a: a.permute(*range(a.ndim - 1, -1, -1)), normal(2, 3, 4), numpy=np.transpose,
       kind=KEEPS_AXES, linear=True),
    Op("expand", lambda a: a.expand(2, 3, 4), lambda T, a: a.expand(2, 3, 4), normal(3, 1), linear=True),
    Op("unsqueeze", lambda a: a.unsqueeze(-2), lambda T, a: a.unsqueeze(-2), normal(3, 4),
       numpy=lambda a: np.expand_dims(a, -2), linear=True),
    Op("squeeze", lambda a: a.squeeze(), lambda T, a: a.squeeze(), normal(1, 3, 1, 4), numpy=np.squeeze,
       linear=True),
    Op("squeeze_axis", lambda a: a.squeeze(1), lambda T, a: a.squeeze(1), normal(3, 1, 4),
       numpy=lambda a: np.squeeze(a, axis=1), linear=True),
    Op("getitem_basic", lambda a: a[1:, None, ::2], lambda T, a: a[1:, None, ::2], normal(3, 4), linear=True),
    Op("getitem_repeated", lambda a: a[[0, 2, 0]], lambda T, a: a[[0, 2, 0]], normal(3, 4), linear=True),
    Op("getitem_reversed", lambda a: a[..., ::-1], lambda T, a: a.flip(-1), normal(3, 4), kind=KEEPS_AXES,
       linear=True),
    Op("pad", lambda a: np.pad(a, ((1, 0), (2, 1))), lambda T, a: T.nn.functional.pad(a, (2, 1, 1, 0)), normal(3, 4),
       numpy=lambda a: np.pad(a, ((1, 0), (2, 1))), linear=True),
    Op("where", lambda a, b: Tensor.where(CONDITION, a, b), lambda T, a, b: T.where(T.tensor(CONDITION), a, b),
       normal(3, 4), normal(4), numpy=lambda a, b: np.where(CONDITION, a, b), linear=True),
    Op("cat", lambda a, b: Tensor.cat(a, b, dim=1), lambda T, a, b: T.cat([a, b], 1), normal(3, 2), normal(3, 4),
       numpy=lambda a, b: np.concatenate([a, b], axis=1), linear=True),
    Op("cat_reused", lambda a, b: a.cat(b, a, dim=-1), lambda T, a, b: T.cat([a, b, a], dim=-1), normal(3, 1, 4),
       normal(3, 1, 4), numpy=lambda a, b: np.concatenate([a, b, a], axis=-1), linear=True),
    Op("gather", lambda a: a.gather(1, GATHER), lambda T, a: a.gather(1, T.tensor(GATHER)), normal(3, 4),
       linear=True),
    Op("gather_dim0", lambda a: a.gather(0, GATHER[:2].T), lambda T, a: a.gather(0, T.tensor(GATHER[:2].T)),
       normal(3, 4), linear=True),
    Op("scatter_add", lambda a, b: a.scatter_add(1, GATHER, b), lambda T, a, b: a.scatter_add(1, T.tensor(GATHER), b),
       normal(3, 4), normal(3, 2), linear=True),
    Op("max_dim_values", lambda a: a.max(1).values, lambda T, a: a.max(1).values, normal(3, 4), linear=True),
    Op("min_dim_keepdim", lambda a: a.min(0, keepdim=True).values, lambda T, a: a.min(0, keepdim=True).values,
       normal(3, 4), linear=True),
    Op("stack", lambda a, b: Tensor.stack(a, b, dim=1), lambda T, a, b: T.stack([a, b], 1), normal(3, 4),
       normal(3, 4), numpy=lambda a, b: np.stack([a, b], axis=1), linear=True),
    # ------------------------------------------------------------------ convolution and pooling
    Op("conv2d", lambda x, w, b: x.conv2d(w, b, stride=2, padding=1),
       lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, stride=2, padding=1),
       normal(2, 3, 5, 5), normal(4, 3, 3, 3), normal(4)),
    Op("conv2d_squared", lambda x, w: x.conv2d(w).square(), lambda T, x, w: T.nn.functional.conv2d(x, w).square(),
       normal(1, 2, 4, 4), normal(3, 2, 2, 2)),
    Op("max_pool2d", lambda x: x.max_pool2d(2), lambda T, x: T.nn.functional.max_pool2d(x, 2), normal(2, 2, 4, 4),
       linear=True),
    Op("max_pool2d_overlapping", lambda x: x.max_pool2d(3, stride=1),
       lambda T, x: T.nn.functional.max_pool2d(x, 3, stride=1), normal(1, 2, 5, 5), linear=True),
    # ------------------------------------------------------------------ recurrent
    Op("lstm_step", _rule("lstm_step"), _torch_lstm_step,
       normal(2, 12), normal(2, 3), normal(2, 3), normal(12, 3)),
    Op("lstm_step_batched_projected", _rule("lstm_step"), _torch_lstm_step,
       normal(2, 2, 8), normal(2, 2, 3), normal(2, 2, 2), normal(8, 3)),  # h's size (3) is not H (2)
]

OPS: dict[str, Op] = {op.name: op for op in _ROWS}
assert len(OPS) == len(_ROWS), "two rows share a name"


def names(where: Callable[[Op], bool] = lambda op: True) -> list[str]:
    """The sorted names of the rows for which ``where(row)`` holds."""
    return sorted(name for name, op in OPS.items() if where(op))


def params(where: Callable[[Op], bool] = lambda op: True, check: str | None = None) -> list:
    """``names(where)`` as pytest parameters; a row that skips ``check`` is there, skipped with its reason."""
    return [pytest.param(name, marks=pytest.mark.skip(reason=f"{name}: {OPS[name].skip[check]}"))
            if check in OPS[name].skip else name for name in names(where)]
