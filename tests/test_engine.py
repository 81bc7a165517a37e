"""The engine (tinygrad_like.engine): a user's own Function through the public apply, THE walk (accumulation,
re-use, release of the graph, deep graphs, broadcasting undone centrally, create_graph), toposort, grad mode and
anomaly mode per thread, and version counters that catch in-place changes."""

import gc
import threading
import tracemalloc
import weakref
from contextlib import nullcontext

import numpy as np
import pytest
from helpers import ROOT, run_python
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_like import (
    Function,
    Tensor,
    autograd,
    blog,
    detect_anomaly,
    enable_grad,
    gradcheck,
    gradgradcheck,
    is_anomaly_enabled,
    is_grad_enabled,
    nn,
    no_grad,
    ops,
    optim,
    toposort,
)
from tinygrad_like.ops import RULES

# ----------------------------------------------------------------------------------------------------------
# A user's own Function
# ----------------------------------------------------------------------------------------------------------


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


def test_the_docs_own_op_example_runs_and_gradchecks():
    """The example of docs/writing-an-op.md, extracted and run as it is."""
    import re

    page = (ROOT / "docs" / "writing-an-op.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "docs/writing-an-op.md", "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["y"].op == "swish" and scope["y"].shape == (3, 4)
    x = scope["x"]
    s = 1 / (1 + np.exp(-1.5 * x.data))
    np.testing.assert_allclose(scope["y"].data, x.data * s)


# ----------------------------------------------------------------------------------------------------------
# The walk
# ----------------------------------------------------------------------------------------------------------


def test_toposort_puts_inputs_first_and_visits_shared_nodes_once():
    x = Tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    out = (a + a.exp()).sum()
    order = [id(t) for t in toposort(out)]  # by identity: == on tensors is elementwise
    assert order[-1] == id(out) and order.index(id(x)) < order.index(id(a))
    assert len(order) == len(set(order)) == 6  # x, 2, a, exp(a), a + exp(a), the sum


def test_a_reused_node_accumulates_its_gradients():
    x = Tensor([3.0], requires_grad=True)
    (x * x).backward(np.ones(1, np.float32))
    assert x.grad.tolist() == [6.0]


def test_a_diamond_graph_adds_both_paths():
    x = Tensor([2.0, -1.0], requires_grad=True)
    a = x.exp()
    b, c = a * 3, a.sigmoid()
    upstream = np.random.default_rng(0).standard_normal(2)
    (b * c).backward(upstream)
    xa = np.exp(x.data.astype(np.float64))
    s = 1 / (1 + np.exp(-xa))
    expected = (3 * s + 3 * xa * s * (1 - s)) * xa * upstream
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
    b.zero_grad()
    upstream = np.random.default_rng(0).standard_normal((4, 1, 3))
    (x + b).backward(upstream)
    np.testing.assert_allclose(b.grad.data, upstream.sum(axis=0), rtol=1e-6)


def test_backward_on_leaf_and_with_explicit_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    assert x.grad.tolist() == [3.0, 4.0]
    y = x * 2
    y.backward(Tensor([1.0, 1.0]))
    assert x.grad.tolist() == [5.0, 6.0]


def test_backward_misuse_is_refused_naming_the_shapes():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()


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


def test_two_released_inputs_raise_the_released_graph_error_not_an_ambiguous_truth_value():
    x = Tensor([1.0, 2.0], requires_grad=True)
    a, b = x * 2, x * 3
    (a + b).sum().backward()
    with pytest.raises(RuntimeError, match="already released"):
        (a * b).sum().backward()


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


def test_a_thousand_training_steps_keep_memory_flat_as_each_graph_is_freed():
    rng = np.random.default_rng(0)
    mlp = nn.MLP([784, 64, 32, 10], seed=0)
    opt = optim.SGD(mlp.parameters(), lr=1e-3)
    x = Tensor(rng.random((10, 784)).astype(np.float32))
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 10)]

    def step():
        opt.zero_grad()
        loss = blog.blog_loss(mlp, x, onehot)
        loss.backward()
        opt.step()

    for _ in range(50):  # warm-up: caches, optimizer state
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(100):
            step()
        gc.collect()
        after_100, _ = tracemalloc.get_traced_memory()
        for _ in range(850):
            step()
        gc.collect()
        after_950, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a leaked graph per step would hold at least its (10, 64) activations: 850 steps x 2.5 kB = 2 MB
    assert after_950 - after_100 < 200_000, (after_100, after_950)
    assert peak < 5_000_000


def test_a_chain_of_100000_ops_of_two_kinds_has_no_recursion_limit():
    x = Tensor([0.5], requires_grad=True)
    y = x
    for _ in range(50_000):  # 100,000 ops
        y = y * 1.0 + 0.0
    y.backward(np.ones(1, np.float32))
    assert x.grad.item() == 1.0


def test_a_chain_of_100000_products_backpropagates_without_recursion():
    x = Tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


# ----------------------------------------------------------------------------------------------------------
# The walk with create_graph: gradients that differentiate again
# ----------------------------------------------------------------------------------------------------------


def test_backward_with_create_graph_leaves_gradients_that_differentiate_again():
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True, dtype=np.float64)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    first = x.grad
    x.grad = None
    first.backward(np.array([1.0, 2.0, 3.0]))  # d(3 x^2 . v)/dx = 6 x v
    np.testing.assert_allclose(x.grad.data, 6 * x.data * [1, 2, 3])
    assert x.grad.grad_fn is None  # a plain backward leaves a plain gradient


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # PyTorch's reference-cycle note
def test_accumulation_into_grad_keeps_the_graph_as_pytorch(torch):
    data = np.array([0.3, -0.7, 1.2])

    def run(make, exp):
        x = make(data)
        exp(x).sum().backward(create_graph=True)  # .grad = e^x, with a graph
        (x * x).sum().backward(create_graph=True)  # .grad = e^x + 2x, still with a graph
        x.grad.sum().backward()  # plain: .grad += d(sum(e^x + 2x))/dx = e^x + 2
        return x.grad

    ours = run(lambda a: Tensor(a, requires_grad=True), lambda t: t.exp())
    theirs = run(lambda a: torch.tensor(a, requires_grad=True), torch.exp)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.data, 2 * np.exp(data) + 2 * data + 2, rtol=1e-12)


def test_retain_graph_defaults_to_create_graph():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = (x * x.exp()).sum()
    y.backward(create_graph=True)
    y.backward(create_graph=True)  # the graph was kept
    np.testing.assert_allclose(x.grad.data, 2 * (x.data + 1) * np.exp(x.data))
    z = (x * x).sum()
    z.backward(create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="released"):
        z.backward()
    w = (x * x).sum()
    w.backward()  # a plain backward still releases by default
    with pytest.raises(RuntimeError, match="released"):
        w.backward()


def test_gradients_with_a_graph_keep_the_dtype_and_the_version_check():
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    x = Tensor(np.arange(3.0))  # float64 data: the product is float64, w's gradient comes back float32
    y = (w * x).sum()
    y.backward(create_graph=True)
    assert w.grad.dtype == np.float32
    loss = (w * w).sum()
    with no_grad():
        w -= 1
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward(create_graph=True)


def test_a_graph_of_the_backward_is_recorded_even_under_no_grad_and_anomalies_keep_their_report():
    from tinygrad_like import detect_anomaly

    x = Tensor([0.0, 1.0], requires_grad=True, dtype=np.float64)
    y = (x ** 3).sum()
    with no_grad():  # as PyTorch: create_graph switches grad mode on for the backward pass
        y.backward(create_graph=True)
    assert x.grad.requires_grad
    with detect_anomaly(), pytest.raises(FloatingPointError, match="non-finite"):  # not a "cannot differentiate"
        x.sqrt().sum().backward(create_graph=True)  # d sqrt(x)/dx at 0 is inf


class _NotDifferentiable(Function):
    """z = hypot(x, 1);  dz/dx = x / hypot(x, 1), with np.hypot, which Tensors do not support."""

    def forward(self, x):
        self.x = x
        return np.hypot(x, 1)

    def backward(self, grad):
        return (grad * self.x / np.hypot(self.x, 1),)


class _ArrayBackward(Function):
    """z = x^2;  dz/dx = 2 x, computed on the arrays (np.asarray): no graph."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (2 * np.asarray(self.x) * np.asarray(grad),)


class _ArrayInsideTensorMath(Function):
    """z = x^3;  dz/dx = 3 x^2, but x^2 taken of np.asarray(x): the result is a Tensor whose graph misses x."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad):
        return (3 * np.asarray(self.x) ** 2 * grad,)


class _SavesACopy(Function):
    """z = exp(x);  dz/dx = z, from a value computed with .byteswap() (twice), which Tensors do not have."""

    def forward(self, x):
        self.slope = np.exp(x).byteswap().byteswap()
        return self.slope * 1

    def backward(self, grad):
        return (grad * self.slope,)


class _SavesAnArray(Function):
    """z = x^2;  dz/dx = 2 x, from a saved 2 x computed on the array (np.asarray): no graph even when re-run."""

    def forward(self, x):
        self.twice = np.asarray(x) * 2
        return x * x

    def backward(self, grad):
        return (grad * self.twice,)


def test_grad_walks_only_the_part_of_the_graph_that_leads_to_the_inputs():
    """A user's op behind the wanted input is never run, so its backward (which could not be differentiated)
    does not matter: as PyTorch, only what leads to the inputs is walked."""
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = _NotDifferentiable.apply(x)
    y = (h * h).sum()
    (gh,) = autograd.grad(y, h, create_graph=True)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    assert gh.requires_grad


def test_a_users_op_written_with_operators_is_twice_differentiable():
    x = Tensor([0.5, -2.0], requires_grad=True, dtype=np.float64)
    (g,) = autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)
    assert gradgradcheck(lambda t: Cube.apply(t), x)


@pytest.mark.parametrize("rule, message", [
    (_NotDifferentiable, r"backward of _notdifferentiable cannot be differentiated: .*TypeError: np.hypot"),
    (_ArrayBackward, r"backward of _arraybackward turns a Tensor \(shape \(2,\)\) into a NumPy array"),
    (_ArrayInsideTensorMath, r"backward of _arrayinsidetensormath turns a Tensor \(shape \(2,\)\) into a NumPy"),
    (_SavesACopy, r"backward of _savesacopy cannot be differentiated: .*re-run on Tensors.*AttributeError"),
    (_SavesAnArray, r"_savesanarray cannot be differentiated: .*saved 'twice' as a NumPy array computed outside"),
])
def test_a_users_op_that_cannot_be_differentiated_twice_raises_naming_it(rule, message):
    x = Tensor([0.5, -2.0], requires_grad=True, dtype=np.float64)
    y = rule.apply(x).sum()
    with pytest.raises(RuntimeError, match=message):
        y.backward(create_graph=True)
    assert x.grad is None  # nothing half-accumulated
    y.backward()  # the first-order backward is unaffected
    assert gradcheck(lambda t: rule.apply(t), x)


# ----------------------------------------------------------------------------------------------------------
# Grad mode, per thread
# ----------------------------------------------------------------------------------------------------------


def test_no_grad_records_nothing_and_restores_state_even_on_error():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
        with no_grad():
            pass
        z = x * 3  # still off after the nested block
    assert not y.requires_grad and y.is_leaf and not z.requires_grad
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError
    assert (x * 2).requires_grad

    @no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and (x * 2).requires_grad


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


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(1, 4), fail_at=st.integers(0, 5))
def test_no_grad_nesting_and_exceptions_restore_the_state(depth, fail_at):
    def nest(level):
        with no_grad():
            assert not is_grad_enabled()
            if level == fail_at:
                raise KeyError("boom")
            if level < depth:
                nest(level + 1)
            assert not is_grad_enabled()

    with pytest.raises(KeyError) if 1 <= fail_at <= depth else nullcontext():
        nest(1)
    assert is_grad_enabled()


# ----------------------------------------------------------------------------------------------------------
# Anomaly mode: the first nan or inf in a forward result or a backward gradient raises
# ----------------------------------------------------------------------------------------------------------


def test_an_anomaly_in_a_forward_result_names_the_op_its_inputs_origin_and_shapes():
    p = Tensor([[0.5, 0.5, 0.0]], requires_grad=True)
    probs = p * 1.0
    with detect_anomaly(), pytest.raises(FloatingPointError) as info:
        probs.log()
    message = str(info.value)
    assert "log produced non-finite values in its output of shape (1, 3)" in message
    assert "1 -inf of 3" in message and "came from mul" in message and "Hint: log(0) is -inf" in message


def test_anomaly_detection_is_off_by_default_and_silent():
    assert not is_anomaly_enabled()
    assert Tensor([0.0]).log().item() == -np.inf


def test_an_anomaly_in_a_backward_gradient_names_the_rule_and_the_incoming_gradient():
    x = Tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt()  # finite forward, infinite derivative at 0
    with detect_anomaly(), pytest.raises(FloatingPointError) as info:
        y.backward(np.ones(2, np.float32))
    message = str(info.value)
    assert "backward rule of sqrt" in message and "input 0 (shape (2,), which came from a leaf)" in message
    assert "1 inf" in message and "was finite" in message
    assert x.grad is None  # nothing half-accumulated


def test_the_first_anomalous_op_is_reported_not_a_later_one():
    x = Tensor([1000.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(FloatingPointError, match="exp produced") as info:
        (x.exp() * 2 - 1).log()
    assert "exp overflows" in str(info.value)


def test_anomaly_mode_is_restored_after_exceptions_and_works_as_a_decorator():
    with pytest.raises(FloatingPointError), detect_anomaly():
        Tensor([-1.0]).sqrt()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def f():
        return is_anomaly_enabled()

    assert f() and not is_anomaly_enabled()


def test_clean_training_step_passes_under_anomaly_detection():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = Tensor(rng.standard_normal((8, 4)))
    with detect_anomaly():
        (x @ w).sigmoid().softmax().log().sum().backward()
    assert np.isfinite(w.grad.data).all()


def test_an_environment_variable_switches_anomaly_detection_on():
    code = "from tinygrad_like import Tensor, is_anomaly_enabled; print(is_anomaly_enabled()); Tensor([0.0]).log()"
    result = run_python("-c", code, TINYGRAD_LIKE_DETECT_ANOMALY="1")
    assert result.returncode != 0 and result.stdout.strip() == "True"
    assert "FloatingPointError: detect_anomaly: log produced" in result.stderr


def test_detect_anomaly_in_one_thread_does_not_reach_another():
    inside, release, seen = threading.Event(), threading.Event(), []

    def other():
        with detect_anomaly():
            inside.set()
            release.wait(5)
            seen.append(is_anomaly_enabled())

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        assert not is_anomaly_enabled()
        assert np.isneginf(Tensor([0.0]).log().item())  # no FloatingPointError in this thread
    finally:
        release.set()
        thread.join()
    assert seen == [True]


# ----------------------------------------------------------------------------------------------------------
# Version counters: in-place changes of saved values are caught
# ----------------------------------------------------------------------------------------------------------


def test_an_in_place_update_between_two_backwards_raises_naming_the_op_and_shape():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with no_grad():
        w -= 0.1 * w.grad.data
    w.zero_grad()
    with pytest.raises(RuntimeError, match=r"mul saved its input 0 \(shape \(2,\)\), which was changed in place"):
        loss.backward()
    assert w.grad is None  # nothing was accumulated


def test_an_op_that_saved_nothing_does_not_care_about_in_place_changes():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w + 1).sum()
    with no_grad():
        w.sub_(1.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 1.0])


def test_a_changed_output_is_caught_too():
    x = Tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # exp's backward reads its saved output
    with no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"exp saved its output \(shape \(2,\)\)"):
        y.sum().backward()


def test_version_grows_with_each_in_place_change_and_in_place_ops_are_refused_while_recording():
    t = Tensor([1.0, 2.0])
    v0 = t.version
    t += 1
    t.assign([5.0, 6.0])
    assert t.version > v0 and t.tolist() == [5.0, 6.0]
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="sub_: a leaf tensor that requires grad"):
        w -= 1
    with pytest.raises(ValueError, match=r"assign: cannot apply a value of shape \(3,\) in place to a tensor of "
                                         r"shape \(2,\)"):
        t.assign([1.0, 2.0, 3.0])
