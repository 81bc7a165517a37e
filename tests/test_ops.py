"""Every rule of the table checked against float64 central differences (gradcheck: random direction, random
upstream gradient) over hypothesis sweeps of shapes, including broadcasting pairs and batched matmul."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from tinygrad_like import Tensor, gradcheck
from tinygrad_like.ops import RULES

SWEEP = settings(max_examples=25, deadline=None)
shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def leaf(shape, seed, low=-2.0, high=2.0, away_from_zero=False):
    """A float64 leaf with random values; ``away_from_zero`` keeps kinks (relu, abs) out of the eps ball."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, shape)
    if away_from_zero:
        values = np.sign(rng.uniform(-1, 1, shape)) * rng.uniform(0.2, 2.0, shape)
    return Tensor(values, requires_grad=True)


UNARY = {
    "exp": (lambda x: x.exp(), {}),
    "log": (lambda x: x.log(), {"low": 0.3, "high": 3.0}),
    "sqrt": (lambda x: x.sqrt(), {"low": 0.3, "high": 3.0}),
    "sigmoid": (lambda x: x.sigmoid(), {"low": -6.0, "high": 6.0}),
    "relu": (lambda x: x.relu(), {"away_from_zero": True}),
    "tanh": (lambda x: x.tanh(), {}),
    "abs": (lambda x: x.abs(), {"away_from_zero": True}),
    "neg": (lambda x: -x, {}),
    "square": (lambda x: x.square(), {}),
    "clip": (lambda x: x.clip(-0.5, 0.7), {"away_from_zero": True}),
    "clip_low_only": (lambda x: x.clip(min=0.1), {"away_from_zero": True}),
    "pow_const": (lambda x: x**3, {}),
    "rpow_const": (lambda x: 2.5**x, {}),
    "rsub_const": (lambda x: 1 - x, {}),
    "rdiv_const": (lambda x: 2 / x, {"low": 0.5, "high": 2.0}),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SWEEP
@given(shape=shapes, seed=seeds)
def test_unary_rules(name, shape, seed):
    fn, domain = UNARY[name]
    assert gradcheck(fn, leaf(shape, seed, **domain))


BINARY = {
    "add": (lambda a, b: a + b, {}, {}),
    "sub": (lambda a, b: a - b, {}, {}),
    "mul": (lambda a, b: a * b, {}, {}),
    "div": (lambda a, b: a / b, {}, {"away_from_zero": True}),
    "pow": (lambda a, b: a**b, {"low": 0.3, "high": 2.0}, {}),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SWEEP
@given(pair=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_binary_rules_with_broadcasting(name, pair, seed):
    fn, dom_a, dom_b = BINARY[name]
    a_shape, b_shape = pair.input_shapes
    a, b = leaf(a_shape, seed, **dom_a), leaf(b_shape, seed + 1, **dom_b)
    assert gradcheck(fn, a, b)
    out = fn(a, b)
    assert out.shape == pair.result_shape


@SWEEP
@given(pair=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), seed=seeds)
def test_matmul_batched_with_broadcast_batch_dims(pair, n, k, m, seed):
    a_batch, b_batch = pair.input_shapes
    a, b = leaf(a_batch + (n, k), seed), leaf(b_batch + (k, m), seed + 1)
    assert (a @ b).shape == pair.result_shape + (n, m)
    assert gradcheck(lambda x, y: x @ y, a, b)


@pytest.mark.parametrize("a_shape, b_shape", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((4, 2, 3), (3,)),
                                              ((3,), (4, 3, 2)), ((1, 2, 3), (5, 3, 2))])
def test_matmul_one_dimensional_operands(a_shape, b_shape):
    a, b = leaf(a_shape, 1), leaf(b_shape, 2)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    assert gradcheck(lambda x, y: x.dot(y), a, b)


def _axis_choices(ndim):
    singles = [None] + list(range(-ndim, ndim))
    return st.one_of(st.sampled_from(singles), st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                                                        max_size=ndim).map(tuple)) if ndim else st.sampled_from([None])


@pytest.mark.parametrize("reduction", ["sum", "mean", "max", "min"])
@SWEEP
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, max_side=4), keepdim=st.booleans(), seed=seeds)
def test_reductions(reduction, data, shape, keepdim, seed):
    axis = data.draw(_axis_choices(len(shape)))
    x = leaf(shape, seed)
    out = getattr(x, reduction)(axis, keepdim)
    expected = getattr(np, {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[reduction])(
        x.data, axis=axis, keepdims=keepdim)
    np.testing.assert_allclose(out.data, expected)
    assert gradcheck(lambda t: getattr(t, reduction)(axis, keepdim), x)


def test_reduction_axis_spellings():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(0).tolist() == [3, 5, 7]
    assert x.sum(axis=-1).tolist() == [3, 12]
    assert x.sum(dim=1, keepdims=True).shape == (2, 1)
    assert x.sum([0, 1]).item() == 15 and x.mean((0, 1)).item() == 2.5
    s = Tensor(4.0)
    assert s.sum(0).item() == 4.0 and s.max(-1).item() == 4.0 and s.mean(axis=0).item() == 4.0


def test_max_min_ties_share_the_gradient():
    x = Tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0, 0.5, 0.5, 0]
    y = Tensor([[2.0, 2.0, 5.0], [1.0, 4.0, 1.0]], requires_grad=True)
    y.min(axis=1).backward(np.array([1.0, 10.0]))
    assert y.grad.tolist() == [[0.5, 0.5, 0], [5, 0, 5]]


def test_relu_and_abs_gradient_at_zero_is_zero():
    x = Tensor([0.0, 0.0], requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@SWEEP
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds)
def test_softmax_family(op, data, shape, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = leaf(shape, seed, low=-5, high=5)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(getattr(x, op)(axis).data, expected if op == "softmax" else np.log(expected),
                               rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda t: getattr(t, op)(axis), x)


@SWEEP
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=3), seed=seeds)
def test_shape_ops(shape, seed):
    x = leaf(shape, seed)
    rng = np.random.default_rng(seed)
    order = tuple(rng.permutation(len(shape)).tolist())
    assert gradcheck(lambda t: t.reshape(-1, 1), x)
    assert gradcheck(lambda t: t.permute(order), x)
    assert gradcheck(lambda t: t.T, x)
    assert gradcheck(lambda t: t.flatten(), x)
    assert gradcheck(lambda t: t.expand((2,) + shape), x)
    if len(shape) >= 2:
        assert gradcheck(lambda t: t.transpose(), x)
        assert gradcheck(lambda t: t.flatten(1), x)


def test_shape_ops_values():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.transpose().shape == (3, 2, 4) and x.transpose(0, 2).shape == (4, 3, 2)
    assert x.T.shape == (4, 3, 2) and x.permute(2, 0, 1).shape == (4, 2, 3) and x.permute((2, 0, 1)).shape == (4, 2, 3)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    assert x.reshape(4, -1).shape == (4, 6) and x.reshape((6, 4)).shape == (6, 4)
    assert Tensor([[1.0], [2.0]]).expand(2, 3).tolist() == [[1, 1, 1], [2, 2, 2]]
    assert Tensor([[1.0], [2.0]]).expand(-1, 2).tolist() == [[1, 1], [2, 2]]


@pytest.mark.parametrize("index", [
    1, -1, slice(1, None), (slice(None), 0), (Ellipsis, 1), (None, 0), (0, slice(None, None, -1)),
    np.array([0, 2, 0, 0]), [1, 1], (np.array([0, 1, 1]), np.array([2, 0, 2])), np.array([True, False, True]),
])
def test_getitem(index):
    x = leaf((3, 3), 5)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert gradcheck(lambda t: t[index], x)


def test_getitem_repeated_indices_add_up_and_tensor_indices_work():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[Tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_labels_and_probabilities(reduction):
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2])
    onehot = np.eye(4)[labels]
    log_p = logits.data - logits.data.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    per_sample = -log_p[np.arange(5), labels]
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    np.testing.assert_allclose(logits.cross_entropy(labels, reduction=reduction).data, expected)
    np.testing.assert_allclose(logits.cross_entropy(Tensor(labels), reduction=reduction).data, expected)
    np.testing.assert_allclose(logits.cross_entropy(onehot, reduction=reduction).data, expected)
    assert gradcheck(lambda t: t.cross_entropy(labels, reduction=reduction), logits)
    soft = rng.dirichlet(np.ones(4), size=5)
    assert gradcheck(lambda t: t.cross_entropy(soft, reduction=reduction), logits)


def test_cross_entropy_gradient_is_softmax_minus_target():
    rng = np.random.default_rng(1)
    logits = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    labels = rng.integers(0, 3, 6)
    logits.cross_entropy(labels, reduction="sum").backward()
    p = np.exp(logits.data) / np.exp(logits.data).sum(1, keepdims=True)
    np.testing.assert_allclose(logits.grad.data, p - np.eye(3)[labels], rtol=1e-12, atol=1e-15)


def test_binary_crossentropy():
    rng = np.random.default_rng(2)
    p = Tensor(rng.uniform(0.05, 0.95, (4, 3)), requires_grad=True)
    y = rng.uniform(0, 1, (4, 3))
    expected = -(y * np.log(p.data) + (1 - y) * np.log(1 - p.data)).mean()
    np.testing.assert_allclose(p.binary_crossentropy(y).data, expected)
    assert gradcheck(lambda t: t.binary_crossentropy(y), p)
    y_leaf = Tensor(y, requires_grad=True)
    assert gradcheck(lambda a, b: a.binary_crossentropy(b), p, y_leaf)


def test_binary_crossentropy_at_saturated_probabilities_stays_finite():
    x = Tensor(np.array([40.0, -40.0], np.float32), requires_grad=True)
    p = x.sigmoid()  # exactly 1.0 and ~0 in float32
    loss = p.binary_crossentropy(np.array([1.0, 0.0], np.float32))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.data).all()


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_registered_rule_is_named_documented_and_labelled(name):
    rule = RULES[name]
    assert rule.name == name and rule.__doc__ and "d" in rule.__doc__  # the docstring states the derivative
    assert rule.__module__ == "tinygrad_like.ops" and callable(rule.apply)


def test_the_rule_table_holds_the_primitives_users_call():
    assert {"add", "mul", "matmul", "linear", "log", "log1p", "sigmoid", "softmax", "cross_entropy",
            "getitem"} <= set(RULES)


def test_log1p_is_accurate_for_tiny_inputs_and_differentiates():
    x = Tensor([1e-10, 0.5, 3.0], requires_grad=True, dtype=np.float64)
    np.testing.assert_allclose(x.log1p().data, np.log1p(x.data), rtol=1e-15)
    assert x.log1p().data[0] == pytest.approx(1e-10, rel=1e-9)  # log(1 + 1e-10) would lose digits
    assert gradcheck(lambda t: t.log1p(), x)


@SWEEP
@given(batch=array_shapes(min_dims=0, max_dims=2, max_side=3), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       bias=st.booleans(), seed=seeds)
def test_fused_linear(batch, n_in, n_out, bias, seed):
    x, w = leaf(batch + (n_in,), seed), leaf((n_out, n_in), seed + 1)
    inputs = [x, w] + ([leaf((n_out,), seed + 2)] if bias else [])
    fused = RULES["linear"].apply(*inputs)
    unfused = x @ w.T + inputs[2] if bias else x @ w.T
    np.testing.assert_allclose(fused.data, unfused.data, rtol=1e-13, atol=1e-13)
    assert gradcheck(lambda *t: RULES["linear"].apply(*t), *inputs)


def test_fused_linear_shape_error():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not fit a weight of shape \(4, 5\)"):
        RULES["linear"].apply(Tensor.ones(2, 3), Tensor.ones(4, 5))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), n=st.integers(1, 140), seed=st.integers(0, 2**16), special=st.booleans())
def test_softmax_family_shift_is_numpys_max_for_any_row_count(rows, n, seed, special):
    # Many short rows take the column-by-column path: the maxima (and so the results) must be NumPy's exactly,
    # also with nan, inf and -0.0 in the rows.
    from tinygrad_like.ops import _max_keepdims

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n)).astype(np.float32) * 30
    if special:
        x.flat[rng.integers(0, x.size, 3)] = [np.nan, np.inf, -0.0]
    np.testing.assert_array_equal(_max_keepdims(x, -1), x.max(axis=-1, keepdims=True))
    np.testing.assert_array_equal(_max_keepdims(x.reshape(1, rows, n), 2), x.max(axis=-1, keepdims=True)[None])
    with np.errstate(all="ignore"):  # inf - inf is nan, on both sides
        shifted = x - x.max(axis=-1, keepdims=True)
        expected = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    np.testing.assert_array_equal(Tensor(x).log_softmax(axis=-1).data, expected)
