"""Higher-order gradients: create_graph=True, autograd.grad, autograd.hvp and gradgradcheck.

Every rule's second derivatives are checked against PyTorch's double backward (torch.autograd.grad with
create_graph=True, random upstream gradients at both levels, float64) and against finite differences of the first
derivatives (gradgradcheck); the gradient's graph is checked for what it holds (a drawing, re-used nodes) and
for what it refuses (a user's op whose backward cannot be differentiated).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, broadcastable_shapes

from tinygrad_like import Function, GradcheckError, Tensor, autograd, gradcheck, gradgradcheck, no_grad
from tinygrad_like.ops import RULES

SWEEP = settings(max_examples=12, deadline=None)


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):  # kinks (relu, abs, leaky_relu) at 0: finite differences must not straddle them
    return lambda rng: rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


LABELS = np.array([1, 0, 3])
CONDITION = np.random.default_rng(7).random((3, 4)) > 0.5

# name: (ours, PyTorch's (T is the torch module), one maker of a float64 array per input)
CASES = {
    "add": (lambda a, b: a + b, lambda T, a, b: a + b, [normal(3, 4), normal(4)]),
    "sub": (lambda a, b: a - b, lambda T, a, b: a - b, [normal(3, 1), normal(1, 4)]),
    "mul": (lambda a, b: a * b, lambda T, a, b: a * b, [normal(3, 4), normal(3, 1)]),
    "div": (lambda a, b: a / b, lambda T, a, b: a / b, [normal(3, 4), positive(4)]),
    "pow": (lambda a, b: a ** b, lambda T, a, b: a ** b, [positive(3, 4), normal(3, 4)]),
    "pow_scalar": (lambda a: a ** 3, lambda T, a: a ** 3, [normal(3, 4)]),
    "matmul": (lambda a, b: a @ b, lambda T, a, b: a @ b, [normal(3, 4), normal(4, 5)]),
    "matmul_batched": (lambda a, b: a @ b, lambda T, a, b: a @ b, [normal(2, 3, 4), normal(4, 2)]),
    "matmul_vector_matrix": (lambda a, b: a @ b, lambda T, a, b: a @ b, [normal(4), normal(4, 3)]),
    "matmul_matrix_vector": (lambda a, b: a @ b, lambda T, a, b: a @ b, [normal(3, 4), normal(4)]),
    "matmul_transposed": (lambda a, b: a @ b.T, lambda T, a, b: a @ b.T, [normal(3, 4), normal(5, 4)]),
    "linear": (lambda x, w, b: RULES["linear"].apply(x, w, b), lambda T, x, w, b: T.nn.functional.linear(x, w, b),
               [normal(3, 4), normal(5, 4), normal(5)]),
    "exp": (lambda a: a.exp(), lambda T, a: a.exp(), [normal(3, 4)]),
    "exp_0d": (lambda a: a.exp(), lambda T, a: a.exp(), [normal()]),
    "log": (lambda a: a.log(), lambda T, a: a.log(), [positive(3, 4)]),
    "log1p": (lambda a: a.log1p(), lambda T, a: a.log1p(), [positive(3, 4)]),
    "sqrt": (lambda a: a.sqrt(), lambda T, a: a.sqrt(), [positive(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), lambda T, a: a.sigmoid(), [normal(3, 4)]),
    "tanh": (lambda a: a.tanh(), lambda T, a: a.tanh(), [normal(3, 4)]),
    "sin": (lambda a: a.sin(), lambda T, a: a.sin(), [normal(3, 4)]),
    "cos": (lambda a: a.cos(), lambda T, a: a.cos(), [normal(3, 4)]),
    "tan": (lambda a: a.tan(), lambda T, a: a.tan(), [normal(3, 4)]),
    "relu": (lambda a: a.relu() * a, lambda T, a: a.relu() * a, [away_from_zero(3, 4)]),
    "abs": (lambda a: a.abs() * a, lambda T, a: a.abs() * a, [away_from_zero(3, 4)]),
    "clip": (lambda a: a.clip(-0.5, 0.7) * a, lambda T, a: a.clamp(-0.5, 0.7) * a,
             [lambda rng: np.array([[-1.0, -0.3, 0.2, 1.1]])]),
    "leaky_relu": (lambda a: a.leaky_relu(0.1) * a, lambda T, a: T.nn.functional.leaky_relu(a, 0.1) * a,
                   [away_from_zero(3, 4)]),
    "softplus": (lambda a: a.softplus(), lambda T, a: T.nn.functional.softplus(a), [normal(3, 4)]),
    "gelu": (lambda a: a.gelu(), lambda T, a: T.nn.functional.gelu(a), [normal(3, 4)]),
    "erf": (lambda a: RULES["erf"].apply(a), lambda T, a: T.erf(a), [normal(3, 4)]),
    "square": (lambda a: a.square(), lambda T, a: a.square(), [normal(3, 4)]),
    "sum": (lambda a: (a * a).sum(axis=1), lambda T, a: (a * a).sum(1), [normal(3, 4)]),
    "mean": (lambda a: (a * a).mean(axis=0, keepdim=True), lambda T, a: (a * a).mean(0, keepdim=True),
             [normal(3, 4)]),
    "max": (lambda a: (a * a).max(axis=1), lambda T, a: (a * a).amax(1), [normal(3, 4)]),
    "min": (lambda a: a.exp().min(), lambda T, a: a.exp().amin(), [normal(3, 4)]),
    "var": (lambda a: a.var(1), lambda T, a: a.var(1), [normal(3, 4)]),
    "var_numpy_way": (lambda a: a.var(axis=1, ddof=0), lambda T, a: a.var(1, correction=0), [normal(3, 4)]),
    "std": (lambda a: a.std(), lambda T, a: a.std(), [normal(3, 4)]),
    "softmax": (lambda a: a.softmax(axis=-1), lambda T, a: a.softmax(-1), [normal(3, 4)]),
    "log_softmax": (lambda a: a.log_softmax(axis=0), lambda T, a: a.log_softmax(0), [normal(3, 4)]),
    "cross_entropy_labels": (lambda a: a.cross_entropy(LABELS),
                             lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(LABELS)), [normal(3, 4)]),
    "cross_entropy_probabilities": (lambda a, t: a.cross_entropy(t, reduction="sum"),
                                    lambda T, a, t: T.nn.functional.cross_entropy(a, t, reduction="sum"),
                                    [normal(3, 4), lambda rng: rng.dirichlet(np.ones(4), 3)]),
    "binary_crossentropy": (lambda p, y: p.binary_crossentropy(y), lambda T, p, y: T.nn.functional.binary_cross_entropy(
        p, y), [lambda rng: rng.uniform(0.1, 0.9, (3, 4)), lambda rng: rng.uniform(0, 1, (3, 4))]),
    "reshape": (lambda a: a.reshape(2, 6) * a.reshape(2, 6), lambda T, a: a.reshape(2, 6) * a.reshape(2, 6),
                [normal(3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1).exp(), lambda T, a: a.permute(2, 0, 1).exp(), [normal(2, 3, 4)]),
    "transpose": (lambda a: a.T * a.T, lambda T, a: a.T * a.T, [normal(3, 4)]),
    "expand": (lambda a: a.expand(3, 4).exp(), lambda T, a: a.expand(3, 4).exp(), [normal(1, 4)]),
    "getitem_slices": (lambda a: a[1:, ::2].exp(), lambda T, a: a[1:, ::2].exp(), [normal(3, 4)]),
    "getitem_repeated_indices": (lambda a: a[[0, 2, 0]].exp(), lambda T, a: a[[0, 2, 0]].exp(), [normal(3, 4)]),
    "cast": (lambda a: a.cast(np.float32).cast(np.float64) * a, lambda T, a: a.float().double() * a, [normal(3, 4)]),
    "where": (lambda a, b: Tensor.where(CONDITION, a * a, b.exp()),
              lambda T, a, b: T.where(T.tensor(CONDITION), a * a, b.exp()), [normal(3, 4), normal(4)]),
    "cat": (lambda a, b: Tensor.cat(a, b * b, dim=1).exp(), lambda T, a, b: T.cat([a, b * b], 1).exp(),
            [normal(3, 2), normal(3, 4)]),
    "stack": (lambda a, b: Tensor.stack(a * b, b, dim=0).tanh(), lambda T, a, b: T.stack([a * b, b], 0).tanh(),
              [normal(3, 4), normal(3, 4)]),
    "clone": (lambda a: a.clone() * a, lambda T, a: a.clone() * a, [normal(3, 4)]),
    "conv2d": (lambda x, w, b: x.conv2d(w, b, stride=2, padding=1),
               lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, stride=2, padding=1),
               [normal(2, 3, 5, 5), normal(4, 3, 3, 3), normal(4)]),
    "conv2d_squared": (lambda x, w: x.conv2d(w).square(), lambda T, x, w: T.nn.functional.conv2d(x, w).square(),
                       [normal(1, 2, 4, 4), normal(3, 2, 2, 2)]),
    "max_pool2d": (lambda x: (x * x).max_pool2d(2), lambda T, x: T.nn.functional.max_pool2d(x * x, 2),
                   [normal(2, 2, 4, 4)]),
    "max_pool2d_overlapping": (lambda x: (x * x).max_pool2d(3, stride=1),
                               lambda T, x: T.nn.functional.max_pool2d(x * x, 3, stride=1), [normal(1, 2, 5, 5)]),
    "pad": (lambda a: np.pad(a, ((1, 0), (2, 1))) ** 2, lambda T, a: T.nn.functional.pad(a, (2, 1, 1, 0)) ** 2,
            [normal(3, 4)]),
    "reused_nodes": (lambda a: (a * a.exp() + a.sigmoid() * a) * a, lambda T, a: (a * a.exp() + a.sigmoid() * a) * a,
                     [normal(3, 4)]),
}


def arrays_of(name, seed=0):
    rng = np.random.default_rng(seed)
    return [make(rng) for make in CASES[name][2]]


def second_order(grad, make, fn, arrays, v1, v2s):
    """First derivatives of ``fn`` for the upstream gradient v1 (with a graph), then the derivatives of
    (first . v2) with respect to the inputs and to v1: the same code runs on our Tensors and on PyTorch's
    (``grad`` is autograd.grad or torch.autograd.grad, ``make`` a leaf requiring grad)."""
    xs = [make(a) for a in arrays]
    v = make(v1)
    first = grad(fn(*xs), xs, v, create_graph=True, allow_unused=True)
    pairs = [(g, u) for g, u in zip(first, v2s) if g is not None and g.requires_grad]
    second = grad([g for g, _ in pairs], [*xs, v], [u for _, u in pairs], allow_unused=True)
    return first, second


def values(t):
    if t is None:
        return 0.0
    return t.detach().numpy() if hasattr(t, "detach") and not isinstance(t, Tensor) else t.data


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivatives_match_pytorchs_double_backward(name):
    torch = pytest.importorskip("torch")
    ours, theirs, _ = CASES[name]
    arrays = arrays_of(name)
    rng = np.random.default_rng(1)
    v1 = rng.standard_normal(ours(*[Tensor(a) for a in arrays]).shape)
    v2s = [rng.standard_normal(a.shape) for a in arrays]

    first, second = second_order(autograd.grad, lambda a: Tensor(a, requires_grad=True), ours, arrays, v1,
                                 [Tensor(u) for u in v2s])
    first_t, second_t = second_order(torch.autograd.grad, lambda a: torch.tensor(a, requires_grad=True),
                                     lambda *xs: theirs(torch, *xs), arrays, v1, [torch.tensor(u) for u in v2s])
    assert any(g is not None and g.requires_grad for g in first)  # the first derivatives do have a graph
    for ours_g, theirs_g in [*zip(first, first_t), *zip(second, second_t)]:
        np.testing.assert_allclose(values(ours_g), values(theirs_g), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"cast"}))  # float32 rounding is coarser than the differences
def test_second_derivatives_agree_with_finite_differences_of_first_ones(name):
    arrays = arrays_of(name, seed=2)
    assert gradgradcheck(CASES[name][0], *[Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_with_a_graph_equal_the_plain_ones(name):
    """A rule's backward on Tensors (create_graph) and on arrays (first order) compute the same."""
    ours, _, _ = CASES[name]
    arrays = arrays_of(name, seed=3)
    upstream = np.random.default_rng(4).standard_normal(ours(*[Tensor(a) for a in arrays]).shape)
    plain = autograd.grad(ours(*(xs := [Tensor(a, requires_grad=True) for a in arrays])), xs, upstream)
    graph = autograd.grad(ours(*(xs := [Tensor(a, requires_grad=True) for a in arrays])), xs, upstream,
                          create_graph=True)
    for p, g in zip(plain, graph):
        assert p.grad_fn is None and p.dtype == g.dtype
        np.testing.assert_allclose(p.data, g.data, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------------------
# Shape sweeps (small)
# ----------------------------------------------------------------------------------------------------------


@SWEEP
@given(shapes=broadcastable_shapes(shape=(2, 3), min_dims=0, max_dims=3, max_side=3), seed=st.integers(0, 2**16),
       op=st.sampled_from(["mul", "div", "pow", "sub"]))
def test_broadcast_binary_ops_are_twice_differentiable(shapes, seed, op):
    rng = np.random.default_rng(seed)
    a = Tensor(rng.uniform(0.5, 2.0, (2, 3)), requires_grad=True)
    b = Tensor(rng.uniform(0.5, 2.0, shapes), requires_grad=True)
    fn = {"mul": lambda x, y: x * y * x, "div": lambda x, y: x / y, "pow": lambda x, y: x ** y,
          "sub": lambda x, y: (x - y) * (x - y)}[op]
    assert gradgradcheck(fn, a, b, seed=seed)


@SWEEP
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=3), data=st.data())
def test_reductions_and_softmax_over_any_axis_are_twice_differentiable(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    kind = data.draw(st.sampled_from(["sum", "mean", "softmax", "log_softmax", "var"]))
    x = Tensor(np.random.default_rng(len(shape) + axis).standard_normal(shape), requires_grad=True)
    fn = {"sum": lambda t: (t * t.exp()).sum(axis), "mean": lambda t: (t * t).mean(axis, keepdim=True),
          "softmax": lambda t: t.softmax(axis), "log_softmax": lambda t: t.log_softmax(axis),
          "var": lambda t: t.var(axis, correction=0)}[kind]
    assert gradgradcheck(fn, x)


@SWEEP
@given(batch=array_shapes(min_dims=0, max_dims=2, max_side=2), n=st.integers(1, 3), k=st.integers(1, 3),
       m=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batched_matmul_is_twice_differentiable(batch, n, k, m, seed):
    rng = np.random.default_rng(seed)
    a = Tensor(rng.standard_normal(batch + (n, k)), requires_grad=True)
    b = Tensor(rng.standard_normal((k, m)), requires_grad=True)
    assert gradgradcheck(lambda x, y: (x @ y).tanh(), a, b, seed=seed)


# ----------------------------------------------------------------------------------------------------------
# backward(create_graph=True) and autograd.grad: PyTorch's semantics
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
def test_accumulation_into_grad_keeps_the_graph_as_pytorch():
    torch = pytest.importorskip("torch")
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


def test_grad_returns_gradients_without_touching_dot_grad():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = x.exp()
    y = (h * h).sum()
    gx, gh = autograd.grad(y, [x, h], retain_graph=True)
    assert x.grad is None and h.grad is None
    np.testing.assert_allclose(gx.data, 2 * np.exp(2 * x.data))
    np.testing.assert_allclose(gh.data, 2 * h.data)  # a non-leaf input
    (gx2,) = autograd.grad(y, x)  # a single Tensor for inputs: a tuple of one gradient
    np.testing.assert_allclose(gx2.data, gx.data)


def test_grad_of_several_outputs_adds_their_contributions():
    x = Tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    a, b = x * x, x.exp()
    (g,) = autograd.grad([a, b], [x], [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    np.testing.assert_allclose(g.data, 2 * x.data * [1, 2] + np.exp(x.data) * [3, 4])


def test_unused_inputs_raise_unless_allowed():
    x = Tensor([1.0], requires_grad=True)
    z = Tensor([2.0], requires_grad=True)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1,\)\) was not used.*allow_unused=True"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.tolist() == [3.0]


def test_grad_refuses_outputs_and_inputs_without_grad():
    x = Tensor([1.0], requires_grad=True)
    c = Tensor([1.0])
    with pytest.raises(RuntimeError, match="output 0 .* does not require grad"):
        autograd.grad(c * 2, x)
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        autograd.grad(x * c, c)
    with pytest.raises(RuntimeError, match="gradient can be omitted only for a one-element tensor"):
        autograd.grad(x * Tensor([1.0, 2.0]), x)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        autograd.grad(x * 2, x, [np.ones(1), np.ones(1)])


def test_grad_walks_only_the_part_of_the_graph_that_leads_to_the_inputs():
    """A user's op behind the wanted input is never run, so its backward (which could not be differentiated)
    does not matter: as PyTorch, only what leads to the inputs is walked."""
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = _NotDifferentiable.apply(x)
    y = (h * h).sum()
    (gh,) = autograd.grad(y, h, create_graph=True)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    assert gh.requires_grad


def test_a_third_derivative():
    x = Tensor([0.5, 2.0], requires_grad=True, dtype=np.float64)
    (g1,) = autograd.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, 24 * x.data)


def test_gradients_of_gradients_add_up_over_reused_nodes():
    """f = x * x * exp(x) uses x three times; f'' = (x^2 + 4x + 2) e^x needs every path's contribution."""
    x = Tensor([0.7], requires_grad=True, dtype=np.float64)
    y = x * x * x.exp()
    (g,) = autograd.grad(y.sum(), x, create_graph=True)
    (h,) = autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, (0.49 + 2.8 + 2) * np.exp(0.7))


def test_a_gradient_with_a_graph_can_be_drawn():
    """dy/dx of y = sigmoid(x) is drawn as the backward pass computed it: g * (s * (1 - s)), s = sigmoid(x)."""
    import re

    pytest.importorskip("graphviz")
    from tinygrad_like import draw

    x = Tensor([0.5, -1.0], requires_grad=True, dtype=np.float64)
    x.sigmoid().backward(np.ones(2), create_graph=True)
    source = draw(x.grad).source
    assert re.findall(r'op\d+ \[label="(\w+)"', source) == ["sigmoid", "sub", "mul", "mul"]
    s = re.search(r't(\d+) \[label="sigmoid', source).group(1)
    assert len(re.findall(rf"t{s} -> op", source)) == 2  # s is used twice: in 1 - s and in s * (1 - s)


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


def test_numpy_swapaxes_runs_on_tensors():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = np.swapaxes(x, 0, -1)
    assert isinstance(y, Tensor) and y.shape == (3, 2) and y.op == "permute"
    np.testing.assert_array_equal(y.data, x.data.T)


def test_cast_and_clone_are_ops_on_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = x.clone()
    assert c.op == "clone" and not np.shares_memory(c.data, x.data)
    assert x.cast("float32").dtype == np.float32 and x.cast(np.float64) is x
    (x.cast(np.float32) * c.cast(np.float32)).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [2.0, 4.0]


# ----------------------------------------------------------------------------------------------------------
# A user's own op
# ----------------------------------------------------------------------------------------------------------


class _Cube(Function):
    """z = x^3;  dz/dx = 3 x^2 (a backward written with operators: differentiable as it is)."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad):
        return (3 * self.x ** 2 * grad,)


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


class _FirstOrderOnly(Function):
    """z = exp(x);  dz/dx = z, but the saved output is detached: first derivatives right, second ones wrong."""

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        out = self.out.detach() if isinstance(self.out, Tensor) else self.out
        return (grad * out,)


def test_a_users_op_written_with_operators_is_twice_differentiable():
    x = Tensor([0.5, -2.0], requires_grad=True, dtype=np.float64)
    (g,) = autograd.grad(_Cube.apply(x).sum(), x, create_graph=True)
    (h,) = autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)
    assert gradgradcheck(lambda t: _Cube.apply(t), x)


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


def test_gradgradcheck_catches_a_wrong_second_derivative_that_gradcheck_cannot_see():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda t: _FirstOrderOnly.apply(t), x)
    with pytest.raises(GradcheckError, match="(?s)gradgradcheck: second derivatives.*FAIL") as info:
        gradgradcheck(lambda t: _FirstOrderOnly.apply(t), x)
    assert "grad_outputs" in str(info.value)  # the derivative with respect to the upstream gradient is checked too


def test_gradgradcheck_validates_its_arguments():
    x = Tensor(np.ones(2))
    with pytest.raises(ValueError, match="no input Tensor has requires_grad"):
        gradgradcheck(lambda t: t * 2, x)
    y = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad_outputs has shape \(3,\)"):
        gradgradcheck(lambda t: t * t, y, grad_outputs=np.ones(3))
    assert gradgradcheck(lambda t: t * t, y, grad_outputs=np.array([1.0, -2.0]))


# ----------------------------------------------------------------------------------------------------------
# Hessian-vector products
# ----------------------------------------------------------------------------------------------------------


def _mlp_loss(w1, b1, w2, b2, x, labels):
    h = (x @ w1.T + b1).sigmoid()
    return (h @ w2.T + b2).cross_entropy(labels, reduction="sum")


def test_hvp_of_a_small_network_matches_pytorchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s) * 0.5 for s in ((5, 4), (5,), (3, 5), (3,))]
    vs = [rng.standard_normal(p.shape) for p in params]
    x, labels = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)

    out, hv = autograd.hvp(lambda *p: _mlp_loss(*p, Tensor(x), labels), tuple(Tensor(p) for p in params),
                           tuple(vs))

    def theirs(w1, b1, w2, b2):
        h = torch.sigmoid(torch.tensor(x) @ w1.T + b1)
        return torch.nn.functional.cross_entropy(h @ w2.T + b2, torch.tensor(labels), reduction="sum")

    out_t, hv_t = torch.autograd.functional.hvp(theirs, tuple(map(torch.tensor, params)),
                                                tuple(map(torch.tensor, vs)))
    assert out.grad_fn is None and isinstance(hv, tuple) and len(hv) == 4
    np.testing.assert_allclose(out.data, out_t.numpy(), rtol=1e-12)
    for ours, them in zip(hv, hv_t):
        np.testing.assert_allclose(ours.data, them.numpy(), rtol=1e-10, atol=1e-12)


def test_hvp_of_a_quadratic_is_the_matrix_times_v():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    out, hv = autograd.hvp(lambda x: 0.5 * (x @ Tensor(a) @ x), Tensor(np.array([1.0, -1.0])), np.array([1.0, 2.0]))
    assert isinstance(hv, Tensor)
    np.testing.assert_allclose(hv.data, a @ [1.0, 2.0])
    np.testing.assert_allclose(out.item(), 0.5 * np.array([1.0, -1.0]) @ a @ [1.0, -1.0])


def test_hvp_of_a_linear_function_is_zero_and_v_may_be_omitted_for_one_element():
    _, hv = autograd.hvp(lambda x: (x * 3).sum(), Tensor(np.ones(3)), np.ones(3))
    assert hv.tolist() == [0.0, 0.0, 0.0]
    _, hv = autograd.hvp(lambda x: (x ** 3).sum(), Tensor(np.array([2.0])))
    assert hv.tolist() == [12.0]


def test_hvp_refuses_bad_arguments():
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match="one element"):
        autograd.hvp(lambda t: t * 2, x, np.ones(3))
    with pytest.raises(ValueError, match=r"v\[0\] has shape \(2,\)"):
        autograd.hvp(lambda t: t.sum(), x, np.ones(2))
    with pytest.raises(ValueError, match="v can be omitted only"):
        autograd.hvp(lambda t: t.sum(), x)
    with pytest.raises(TypeError, match="floating point"):
        autograd.hvp(lambda t: t.sum(), Tensor([1, 2]), np.ones(2))


def test_grad_of_outputs_where_one_is_computed_from_the_other():
    # The walk meets y twice: as a seed and as an input of z; its gradient must be complete before it runs.
    x = Tensor([1.5, -0.5], requires_grad=True, dtype=np.float64)
    y = x * x
    z = (y * 3).exp()
    gz, gy = np.random.default_rng(6).standard_normal((2, 2))
    (g,) = autograd.grad([z, y], [x], [gz, gy])
    np.testing.assert_allclose(g.data, (3 * np.exp(3 * x.data**2) * gz + gy) * 2 * x.data)
