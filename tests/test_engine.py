"""The engine: a user's own Function through the public apply, the one toposort, and released graphs."""

import threading

import numpy as np
import pytest

from tinygrad_like import Function, Tensor, enable_grad, gradcheck, is_grad_enabled, no_grad, toposort
from tinygrad_like.ops import RULES


class Cube(Function):
    """z = x ** 3;  dz/dx = 3 x^2."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad):
        return (3 * self.x ** 2 * grad,)


class ScaledAdd(Function):
    """z = x + alpha * y (y broadcast);  dz/dx = 1, dz/dy = alpha."""

    def forward(self, x, y, alpha=1.0):
        self.alpha = alpha
        return x + alpha * y

    def backward(self, grad):
        return grad, self.alpha * grad  # the engine sums y's gradient over the broadcast axes


def test_a_users_function_is_recorded_and_gradchecks():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert Cube.apply(x).op == "cube"
    assert gradcheck(lambda t: Cube.apply(t), x)


def test_keyword_parameters_and_broadcasting_are_handled_by_the_engine():
    rng = np.random.default_rng(1)
    x, y = (Tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 4), (4,)])
    out = ScaledAdd.apply(x, y, alpha=2.5)
    np.testing.assert_allclose(out.data, x.data + 2.5 * y.data)
    assert gradcheck(lambda a, b: ScaledAdd.apply(a, b, alpha=2.5), x, y)


def test_user_rules_stay_out_of_the_librarys_rule_table():
    assert "cube" not in RULES and RULES["log1p"].__module__ == "tinygrad_like.ops"


def test_a_wrong_gradient_shape_names_the_op_and_input():
    class Bad(Function):
        def forward(self, x):
            return x.sum(axis=0)

        def backward(self, grad):
            return (grad[:1],)

    x = Tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"bad: backward returned a gradient of shape \(1,\) for input 0 of shape"):
        Bad.apply(x).sum().backward()


def test_apply_refuses_non_tensors_by_name():
    with pytest.raises(TypeError, match="cube.apply: inputs must be Tensors, got list"):
        Cube.apply([1.0, 2.0])


def test_toposort_puts_inputs_first_and_visits_shared_nodes_once():
    x = Tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    out = (a + a.exp()).sum()
    order = [id(t) for t in toposort(out)]  # by identity: == on tensors is elementwise
    assert order[-1] == id(out) and order.index(id(x)) < order.index(id(a))
    assert len(order) == len(set(order)) == 6  # x, 2, a, exp(a), a + exp(a), the sum


def test_two_released_inputs_raise_the_released_graph_error_not_an_ambiguous_truth_value():
    x = Tensor([1.0, 2.0], requires_grad=True)
    a, b = x * 2, x * 3
    (a + b).sum().backward()
    with pytest.raises(RuntimeError, match="already released"):
        (a * b).sum().backward()


def test_a_million_op_chain_backpropagates_without_recursion():
    x = Tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_grad_mode_is_per_thread():
    inside, release = threading.Event(), threading.Event()

    def other():
        with no_grad():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        w = Tensor([1.0, 2.0], requires_grad=True)
        (w * w).sum().backward()  # while the other thread is inside no_grad()
        np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])
        assert is_grad_enabled()
    finally:
        release.set()
        thread.join()


def test_interleaved_no_grad_in_two_threads_leaves_grad_mode_on():
    barrier = threading.Barrier(2)

    def enter_and_exit():
        with no_grad():
            barrier.wait(5)
        barrier.wait(5)

    threads = [threading.Thread(target=enter_and_exit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert is_grad_enabled()


def test_enable_grad_inside_no_grad_records_again():
    x = Tensor([3.0], requires_grad=True)
    with no_grad():
        assert not (x * 2).requires_grad
        with enable_grad():
            y = x * 2
        assert not is_grad_enabled()
    y.backward()
    assert x.grad.item() == 2.0

    @no_grad()
    def f():
        return is_grad_enabled()

    assert f() is False and is_grad_enabled()


def test_the_docs_own_op_example_runs_and_gradchecks():
    """The example of docs/writing-an-op.md, extracted and run as it is."""
    import re
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "writing-an-op.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "docs/writing-an-op.md", "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["y"].op == "swish" and scope["y"].shape == (3, 4)
    x = scope["x"]
    s = 1 / (1 + np.exp(-1.5 * x.data))
    np.testing.assert_allclose(scope["y"].data, x.data * s)
