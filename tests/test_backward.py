"""The backward walk: accumulation, re-use, release of the graph, deep graphs, central unbroadcasting."""

import gc
import weakref

import numpy as np
import pytest

from tinygrad_like import GradcheckError, Tensor, gradcheck, ops


def test_reused_node_accumulates():
    x = Tensor([3.0], requires_grad=True)
    (x * x).backward(np.ones(1, np.float32))
    assert x.grad.tolist() == [6.0]


def test_diamond_graph():
    x = Tensor([2.0, -1.0], requires_grad=True)
    a = x.exp()
    b, c = a * 3, a.sigmoid()
    (b * c).sum().backward()
    xa = np.exp(x.data.astype(np.float64))
    s = 1 / (1 + np.exp(-xa))
    expected = (3 * s + 3 * xa * s * (1 - s)) * xa
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-5)


def test_grads_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_leaf_grads_never_share_memory():
    x, y = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.data[0] = 100.0
    assert y.grad.item() == 1.0


def test_second_backward_through_released_graph_raises_and_retain_graph_allows_it():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="released.*retain_graph=True"):
        loss.backward()
    assert x.grad.tolist() == [2.0, 4.0]  # not silently doubled

    x.zero_grad()
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_graph_is_freed_after_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    hidden = x.exp()
    probe = weakref.ref(hidden)
    loss = (hidden * 2).sum()
    del hidden
    gc.collect()
    assert probe() is not None  # the graph keeps the intermediate alive...
    loss.backward()
    gc.collect()
    assert probe() is None  # ...until backward releases it


def test_backward_on_leaf_and_with_explicit_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    assert x.grad.tolist() == [3.0, 4.0]
    y = x * 2
    y.backward(Tensor([1.0, 1.0]))
    assert x.grad.tolist() == [5.0, 6.0]


def test_backward_misuse():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()


def test_deep_chain_has_no_recursion_limit():
    x = Tensor([0.5], requires_grad=True)
    y = x
    for _ in range(50_000):  # 100,000 ops
        y = y * 1.0 + 0.0
    y.backward(np.ones(1, np.float32))
    assert x.grad.item() == 1.0


def test_no_gradient_flows_into_inputs_that_do_not_need_it():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    w = Tensor(np.ones((3, 2)))
    (x @ w).sum().backward()
    assert w.grad is None and x.grad.shape == (2, 3)


def test_broadcast_gradients_are_summed_back_to_the_input_shape_and_dtype():
    b = Tensor(np.zeros((1, 3), np.float32), requires_grad=True)
    x = Tensor(np.ones((4, 1, 3)))  # float64: the product is float64, b's gradient must come back float32
    (x + b).sum().backward()
    assert b.grad.shape == (1, 3) and b.grad.dtype == np.float32 and b.grad.tolist() == [[4, 4, 4]]


class _WrongShape(ops.Function):
    """A rule whose backward returns a gradient that cannot come from its input's shape: d = wrong."""

    __slots__ = ()
    name = "wrong_shape"

    def forward(self, x):
        return x * 1

    def backward(self, grad):
        return (np.ones(grad.shape + (5,)),)


def test_incompatible_gradient_from_a_rule_names_op_input_and_shapes():
    x = Tensor(np.ones(3), requires_grad=True)
    y = _WrongShape.apply(x)
    with pytest.raises(RuntimeError, match=r"wrong_shape: .*\(3, 5\) for input 0 of shape \(3,\)"):
        y.sum().backward()


class _OffByFactor(ops.Function):
    """z = exp(x) with a backward off by a factor 1.001: gradcheck must notice. dz/dx = 1.001 z (wrong)."""

    __slots__ = ("out",)
    name = "bad_exp"

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out * 1.001,)


def test_gradcheck_catches_a_rule_off_by_a_factor_1_001():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda t: t.exp(), x)
    with pytest.raises(GradcheckError, match="FAIL") as info:
        gradcheck(lambda t: _OffByFactor.apply(t), x)
    assert "input" in str(info.value) and "(3, 4)" in str(info.value)


def test_gradcheck_uses_a_random_upstream_gradient():
    """With a uniform upstream gradient the sum of softmax is constant and any softmax rule would pass."""

    class _BrokenSoftmax(ops.Softmax):
        __slots__ = ()

        def backward(self, grad):
            return (grad * self.out,)  # misses the  - sum(g * z)  term: zero effect when g is uniform

    x = Tensor(np.random.default_rng(1).standard_normal((2, 5)), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _BrokenSoftmax.apply(t), x)


def test_gradcheck_reports_per_input_and_validates_arguments():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2) * 2, requires_grad=True)

    def half_wrong(x, y):
        return _OffByFactor.apply(x) * y

    with pytest.raises(GradcheckError) as info:
        gradcheck(half_wrong, a, b)
    lines = [line for line in str(info.value).splitlines()[2:]]
    assert all("FAIL" in line for line in lines if line.split()[0] == "0")
    assert all("ok" in line for line in lines if line.split()[0] == "1")
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2, Tensor([1.0]))


def test_float32_inputs_are_checked_in_float64():
    x = Tensor(np.random.default_rng(2).standard_normal(5).astype(np.float32), requires_grad=True)
    assert gradcheck(lambda t: (t.tanh() * t).sigmoid(), x)


def test_a_node_used_early_and_late_gets_every_gradient_before_its_rule_runs():
    # h feeds the first op and the last: the walk must not run h's rule after the first consumer alone.
    x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    upstream = np.random.default_rng(5).standard_normal(2)
    h = x.tanh()
    y = h * 2
    for _ in range(5):
        y = y.sigmoid()
    (y * h).backward(upstream)
    t = np.tanh(x.data)
    chain = 2 * t
    slope = np.ones(2)
    for _ in range(5):
        chain = 1 / (1 + np.exp(-chain))
        slope *= chain * (1 - chain)
    np.testing.assert_allclose(x.grad.data, upstream * (chain + t * slope * 2) * (1 - t**2), rtol=1e-12)
