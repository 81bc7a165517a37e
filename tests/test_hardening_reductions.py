"""Reductions where NumPy alone gives silently wrong numbers: float16 inputs (added up in float32, as PyTorch does,
so a variance or a softmax over many values does not overflow) and max/min over values holding nan (the gradient
goes to the nan, as PyTorch puts it). PyTorch is the oracle, in float16 itself, with random upstream gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_like
from tinygrad_like import Tensor

HALF = np.float16
EPS16 = 2.0 ** -10  # float16's spacing at 1: results rounded once to float16 agree within a couple of these


def close16(ours: np.ndarray, theirs: np.ndarray, ulps: float = 2.0) -> None:
    """``ours`` is float16 and within ``ulps`` float16 roundings of ``theirs`` (relative to each value, and to the
    largest value for the entries near zero)."""
    assert ours.dtype == HALF
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = float(np.max(np.abs(theirs), initial=0.0))
    np.testing.assert_allclose(ours.astype(np.float64), theirs, rtol=ulps * EPS16, atol=ulps * EPS16 * scale)


def against_pytorch(torch, ours_fn, theirs_fn, x: np.ndarray, seed: int = 1, second_order: bool = True,
                    ulps: float = 2.0) -> Tensor:
    """Ours in float16 against PyTorch: the output's dtype and values as PyTorch's own float16 op gives them; the
    values, the gradient under a random upstream gradient and (with ``second_order``) the gradient of
    (gradient . v) for a random ``v`` as PyTorch computes them exactly (in float64, from the same float16
    inputs), rounded to float16. (PyTorch's float16 backward rounds its intermediates, e.g. x - mean, to float16:
    it is the less exact of the two.) Returns our output."""
    rng = np.random.default_rng(seed)
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x.astype(np.float64), requires_grad=True)
    ours, theirs = ours_fn(ours_x), theirs_fn(theirs_x)
    half = theirs_fn(torch.tensor(x))
    assert ours.dtype == HALF and half.dtype == torch.float16
    close16(ours.data, half.numpy(), ulps)
    close16(ours.data, theirs.detach().numpy(), ulps)
    upstream = rng.standard_normal(ours.shape).astype(HALF)
    (ours_g,) = tinygrad_like.autograd.grad(ours, ours_x, upstream, create_graph=second_order)
    (theirs_g,) = torch.autograd.grad(theirs, theirs_x, torch.tensor(upstream.astype(np.float64)),
                                      create_graph=second_order)
    assert ours_g.dtype == HALF
    close16(ours_g.data, theirs_g.detach().numpy(), ulps)
    if second_order:
        v = rng.standard_normal(x.shape).astype(HALF)
        (ours_gg,) = tinygrad_like.autograd.grad(ours_g, ours_x, v)
        (theirs_gg,) = torch.autograd.grad(theirs_g, theirs_x, torch.tensor(v.astype(np.float64)))
        assert ours_gg.dtype == HALF
        close16(ours_gg.data, theirs_gg.numpy(), 4 * ulps)  # the first gradient was rounded to float16 on the way
    return ours


# ----------------------------------------------------------------------------------------------------------
# float16: the reproductions
# ----------------------------------------------------------------------------------------------------------


def near_100(n: int = 1000, seed: int = 0) -> np.ndarray:
    return (100 + np.random.default_rng(seed).standard_normal(n)).astype(HALF)


def test_the_variance_of_1000_float16_values_near_100_is_pytorchs_not_inf(torch):
    x = near_100()
    with np.errstate(over="ignore"):
        assert not np.isfinite(x.var())  # NumPy adds up in float16: 100,000 overflows
    var = against_pytorch(torch, lambda t: t.var(), lambda t: t.var(), x)
    assert abs(var.item() - 0.956) < 2e-3
    against_pytorch(torch, lambda t: t.std(), lambda t: t.std(), x)


def test_softmax_over_70000_equal_float16_logits_sums_to_one(torch):
    logits = np.zeros(70_000, HALF)
    probs = Tensor(logits).softmax()
    theirs = torch.tensor(logits).softmax(0)
    assert probs.dtype == HALF
    assert abs(probs.data.astype(np.float64).sum() - theirs.double().sum().item()) < 1e-6
    assert abs(probs.data.astype(np.float64).sum() - 1.0) < 2e-3  # each 1/70,000 rounded to float16
    close16(probs.data, theirs.numpy())


def test_log_softmax_and_logsumexp_over_70000_equal_float16_logits_are_finite(torch):
    # PyTorch's own float16 log_softmax overflows here (-inf): the oracle is its float32 result, rounded once
    logits = np.zeros(70_000, HALF)
    exact = torch.tensor(logits, dtype=torch.float32)
    close16(Tensor(logits).log_softmax().data, exact.log_softmax(0).half().numpy())
    close16(Tensor(logits).logsumexp(0).data, exact.logsumexp(0).half().numpy())
    assert Tensor(logits).logsumexp(0).dtype == HALF


# ----------------------------------------------------------------------------------------------------------
# float16: each reduction, values and first and second order gradients against PyTorch in float16
# ----------------------------------------------------------------------------------------------------------


def logits16(shape: tuple[int, ...], seed: int = 2) -> np.ndarray:
    """Values near 30: 3,000 of them add up past float16's largest number, 65,504."""
    return (30 + 3 * np.random.default_rng(seed).standard_normal(shape)).astype(HALF)


@pytest.mark.parametrize("name, ours, theirs", [
    ("var over rows", lambda t: t.var(1), lambda t: t.var(1)),
    ("var without correction, keepdim", lambda t: t.var(0, keepdim=True, correction=0),
     lambda t: t.var(0, keepdim=True, correction=0)),
    ("std over rows", lambda t: t.std(-1), lambda t: t.std(-1)),
    ("softmax", lambda t: t.softmax(-1), lambda t: t.softmax(-1)),
    ("softmax over the long axis 0", lambda t: t.softmax(0), lambda t: t.softmax(0)),
    ("log_softmax", lambda t: t.log_softmax(-1), lambda t: t.log_softmax(-1)),
    ("logsumexp", lambda t: t.logsumexp(1), lambda t: t.logsumexp(1)),
    ("mean over axis 0, squared", lambda t: t.mean(0).square(), lambda t: t.mean(0).square()),
    ("sum over axis 0, squared", lambda t: (t.sum(0) / 100).square(), lambda t: (t.sum(0) / 100).square()),
])
def test_float16_reductions_follow_pytorch_to_float16_rounding(torch, name, ours, theirs):
    against_pytorch(torch, ours, theirs, logits16((3000, 4)).T.copy() if "long" not in name else logits16((3000, 4)))


def test_a_float16_sum_down_a_column_counts_past_2048_and_survives_a_partial_overflow(torch):
    ones = np.ones((3000, 3), HALF)
    assert (ones.sum(axis=0) == 2048).all()  # NumPy adds a column in float16: 2,048 + 1 is 2,048
    assert (Tensor(ones).sum(0).data == 3000).all() and Tensor(ones).sum(0).dtype == HALF
    swing = np.array([60_000, 60_000, -60_000], HALF)
    assert Tensor(swing).sum().item() == torch.tensor(swing).sum().item() == 60_000
    assert Tensor(np.ones(70_000, HALF)).sum().item() == np.inf  # the total itself is past float16's range


def test_a_float16_bias_gets_the_whole_gradient_of_a_3000_row_batch(torch):
    rng = np.random.default_rng(3)
    x, b, upstream = (rng.standard_normal(s).astype(HALF) for s in ((3000, 3), (3,), (3000, 3)))
    ours_b, theirs_b = Tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    (Tensor(x) + ours_b).backward(upstream)  # the engine sums the broadcast gradient back to the bias
    (torch.tensor(x) + theirs_b).backward(torch.tensor(upstream))
    assert ours_b.grad.dtype == HALF
    close16(ours_b.grad.data, theirs_b.grad.numpy())


def test_float16_cross_entropy_over_many_classes_is_pytorchs(torch):
    logits, labels = logits16((4, 5000)), np.array([0, 17, 4999, 2500])
    ours_x, theirs_x = Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ours = ours_x.cross_entropy(labels)
    theirs = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(labels))
    assert ours.dtype == HALF
    close16(ours.data, theirs.detach().numpy())
    ours.backward()
    theirs.backward()
    close16(ours_x.grad.data, theirs_x.grad.numpy())


def test_a_layer_norm_written_by_hand_in_float16_matches_pytorchs(torch):
    # the way a lecture writes it; 4,096 activations near 300 overflow a float16 sum (1.2 million)
    x = (300 + 5 * np.random.default_rng(4).standard_normal((2, 4096))).astype(HALF)
    h = Tensor(x, requires_grad=True)
    normed = (h - h.mean(-1, keepdim=True)) / (h.var(-1, keepdim=True, unbiased=False) + 1e-5).sqrt()
    theirs = torch.nn.functional.layer_norm(torch.tensor(x), (4096,))
    assert normed.dtype == HALF and np.isfinite(normed.data).all()
    close16(normed.data, theirs.numpy(), ulps=8)  # x - mean loses x's own rounding (300 +- 0.125) in float16


def test_float32_and_float64_reductions_add_up_in_their_own_dtype():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.random.default_rng(5).standard_normal((7, 5)).astype(dtype), requires_grad=True)
        for out in (x.sum(0), x.var(1), x.std(), x.softmax(0), x.log_softmax(), x.logsumexp(1), x.mean()):
            assert out.dtype == dtype
            assert "cast" not in {out.op, *(t.op for t in out.grad_fn.inputs)}  # no round trip on the graph


# ----------------------------------------------------------------------------------------------------------
# max and min with nan and ties: PyTorch's rules
# ----------------------------------------------------------------------------------------------------------

NAN = np.nan


def max_grads(torch, ours_fn, theirs_fn, values, upstream_seed: int = 6):
    """The gradients of ours_fn(Tensor(values)) and theirs_fn(torch.tensor(values)) under one random upstream
    gradient (float64), and both outputs."""
    values = np.asarray(values, dtype=np.float64)
    ours_x, theirs_x = Tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    ours, theirs = ours_fn(ours_x), theirs_fn(theirs_x)
    upstream = np.random.default_rng(upstream_seed).standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    return ours_x.grad.data, theirs_x.grad.numpy(), ours


ROWS = np.array([[1.0, NAN, 3.0, NAN], [2.0, 5.0, 5.0, -1.0], [NAN, 0.0, NAN, 7.0]])


def test_max_and_min_of_everything_put_the_gradient_at_the_nans(torch):
    for ours_fn, theirs_fn in ((lambda t: t.max(), lambda t: t.max()), (lambda t: t.min(), lambda t: t.min())):
        ours, theirs, out = max_grads(torch, ours_fn, theirs_fn, [1.0, NAN, 4.0])
        assert np.isnan(out.item())
        np.testing.assert_array_equal(ours, theirs)
        assert ours[0] == ours[2] == 0 and ours[1] != 0
        ours, theirs, _ = max_grads(torch, ours_fn, theirs_fn, ROWS)  # three nans share it equally
        np.testing.assert_allclose(ours, theirs, rtol=1e-15)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_over_one_axis_give_the_gradient_to_the_index_they_return(torch, name, dim, keepdim):
    # PyTorch's max(dim): the first nan of a row, else the first of tied extremes, takes the whole gradient
    ours, theirs, out = max_grads(torch, lambda t: getattr(t, name)(dim, keepdim=keepdim),
                                  lambda t: getattr(t, name)(dim, keepdim=keepdim).values, ROWS)
    np.testing.assert_array_equal(ours, theirs)
    expected = getattr(torch.tensor(ROWS), name)(dim, keepdim=keepdim).indices.numpy()
    np.testing.assert_array_equal(out.indices.data, expected)
    np.testing.assert_array_equal((ours != 0).sum(axis=dim), np.ones(ROWS.shape[1 - dim % 2]))


def test_the_pytorch_spelling_torch_max_x_dim_agrees(torch):
    x = Tensor(ROWS, requires_grad=True)
    values, indices = tinygrad_like.max(x, 1)
    upstream = np.array([0.5, -2.0, 3.0])
    values.backward(upstream)
    theirs = torch.tensor(ROWS, requires_grad=True)
    t_values, t_indices = torch.max(theirs, 1)
    t_values.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(indices.data, t_indices.numpy())
    np.testing.assert_array_equal(x.grad.data, theirs.grad.numpy())


@pytest.mark.parametrize("name", ["max", "min"])
def test_tied_extremes_over_several_axes_share_the_gradient_as_amax_and_amin(torch, name):
    ties = np.array([[3.0, 1.0, 3.0], [3.0, -4.0, 0.5]])
    for axes in ((0, 1), (1,)):
        ours, theirs, _ = max_grads(torch, lambda t, a=axes: getattr(t, name)(a),
                                    lambda t, a=axes: getattr(t, f"a{name}")(a), ties if name == "max" else -ties)
        np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    ours, theirs, _ = max_grads(torch, lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), ties)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


def test_max_over_one_axis_has_pytorchs_second_order_gradient(torch):
    x = np.array([[1.0, 4.0, 4.0], [NAN, 2.0, 0.0]])
    rng = np.random.default_rng(7)
    upstream, v = rng.standard_normal(2), rng.standard_normal((2, 3))
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours_u, theirs_u = Tensor(upstream, requires_grad=True), torch.tensor(upstream, requires_grad=True)
    (ours_g,) = tinygrad_like.autograd.grad(ours_x.max(1), ours_x, ours_u, create_graph=True)
    (theirs_g,) = torch.autograd.grad(theirs_x.max(1).values, theirs_x, theirs_u, create_graph=True)
    np.testing.assert_array_equal(ours_g.data, theirs_g.detach().numpy())
    # the gradient is the upstream gradient, selected: its derivative with respect to the upstream is the selection
    ours_gu = tinygrad_like.autograd.grad((ours_g * Tensor(v)).sum(), ours_u)[0]
    theirs_gu = torch.autograd.grad((theirs_g * torch.tensor(v)).sum(), theirs_u)[0]
    np.testing.assert_allclose(ours_gu.data, theirs_gu.numpy(), rtol=1e-15)


def test_a_nan_in_a_batch_shows_where_it_came_from():
    # a learner's loss with a nan in one sample: the gradient of the max points at the bad entry, not nowhere
    scores = Tensor([[0.2, 0.9, 0.1], [0.3, NAN, 0.5]], requires_grad=True)
    scores.max(1).sum().backward()
    np.testing.assert_array_equal(scores.grad.data, [[0, 1, 0], [0, 1, 0]])


def test_max_over_axis_0_of_a_0d_tensor_is_the_tensor_with_its_gradient(torch):
    ours, theirs = Tensor(2.5, requires_grad=True), torch.tensor(2.5, requires_grad=True)
    values, t_values = ours.max(0, keepdim=True), theirs.max(0, keepdim=True)
    (values * 3).backward()
    (t_values.values * 3).backward()
    assert values.indices.item() == t_values.indices.item() == 0
    assert ours.grad.item() == theirs.grad.item() == 3.0
