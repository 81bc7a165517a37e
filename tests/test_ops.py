"""The rules (tinygrad_like.ops). Every row of the op table (tests/op_table.py) goes through every check: first
derivatives against float64 finite differences (at its shapes and over hypothesis sweeps of shapes) and against
PyTorch in float32 and float64, second derivatives against PyTorch's double backward and against finite
differences of the first ones, gradients with a graph against plain ones, and random compositions against finite
differences and against PyTorch with inf and nan arriving from downstream. Every upstream gradient is random.
Then what is particular to one rule: axes, ties, kinks, fused losses, and the errors that name the op.
(Convolution and pooling by their definition: tests/test_conv.py.)"""

import math
import operator
import re

import numpy as np
import pytest
from helpers import compare_with_torch, leaf, uniform
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, broadcastable_shapes, mutually_broadcastable_shapes
from op_table import BROADCASTING, ELEMENTWISE, FINITE_DIFFERENCES, FLOAT32, KEEPS_AXES, OPS, names, params

from tinygrad_like import Tensor, autograd, gradcheck, gradgradcheck, manual_seed, nn, no_grad
from tinygrad_like.nn import functional as F
from tinygrad_like.ops import RULES

SWEEP = settings(max_examples=25, deadline=None)
TWICE = settings(max_examples=12, deadline=None)  # gradgradcheck sweeps
shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def leaves(arrays):
    return [Tensor(a, requires_grad=True) for a in arrays]


# ----------------------------------------------------------------------------------------------------------
# Every row, at its own shapes
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", params(check=FINITE_DIFFERENCES))
def test_first_derivatives_agree_with_finite_differences(name):
    op = OPS[name]
    assert gradcheck(op.ours, *leaves(op.arrays(seed=5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", names(lambda op: op.torch is not None))
def test_values_and_first_derivatives_match_pytorch(name, dtype, torch):
    op = OPS[name]
    if dtype == np.float32 and FLOAT32 in op.skip:
        pytest.skip(f"{name}: {op.skip[FLOAT32]}")
    compare_with_torch(torch, op.ours, lambda *xs: op.torch(torch, *xs), op.arrays(len(name), dtype), dtype)


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


@pytest.mark.parametrize("name", names(lambda op: op.torch is not None))
def test_second_derivatives_match_pytorchs_double_backward(name, torch):
    ours, theirs = OPS[name].twice()
    arrays = OPS[name].arrays(seed=0)
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


@pytest.mark.parametrize("name", params(check=FINITE_DIFFERENCES))
def test_second_derivatives_agree_with_finite_differences_of_first_ones(name):
    ours, _ = OPS[name].twice()
    assert gradgradcheck(ours, *leaves(OPS[name].arrays(seed=2)))


@pytest.mark.parametrize("name", names())
def test_gradients_with_a_graph_equal_the_plain_ones(name):
    """A rule's backward on Tensors (create_graph) and on arrays (first order) compute the same."""
    ours, _ = OPS[name].twice()
    arrays = OPS[name].arrays(seed=3)
    upstream = np.random.default_rng(4).standard_normal(ours(*[Tensor(a) for a in arrays]).shape)
    plain = autograd.grad(ours(*(xs := leaves(arrays))), xs, upstream)
    graph = autograd.grad(ours(*(xs := leaves(arrays))), xs, upstream, create_graph=True)
    for p, g in zip(plain, graph):
        assert p.grad_fn is None and p.dtype == g.dtype
        np.testing.assert_allclose(p.data, g.data, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------------------
# Every row that accepts other shapes, over hypothesis sweeps of shapes
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", params(lambda op: op.kind == ELEMENTWISE, check=FINITE_DIFFERENCES))
@SWEEP
@given(shape=shapes, seed=seeds)
def test_elementwise_ops_give_numpys_values_and_pass_gradcheck_at_any_shape(name, shape, seed):
    op = OPS[name]
    x = leaf(shape, seed, op.inputs[0].domain)
    if op.numpy is not None:
        np.testing.assert_allclose(op.ours(x).data, op.numpy(x.data), rtol=1e-12, atol=1e-14)
    assert gradcheck(op.ours, x)


@pytest.mark.parametrize("name", params(lambda op: op.kind == BROADCASTING, check=FINITE_DIFFERENCES))
@SWEEP
@given(pair=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_binary_ops_broadcast_and_pass_gradcheck(name, pair, seed):
    op = OPS[name]
    a_shape, b_shape = pair.input_shapes
    a, b = leaf(a_shape, seed, op.inputs[0].domain), leaf(b_shape, seed + 1, op.inputs[1].domain)
    assert gradcheck(op.ours, a, b)
    assert op.ours(a, b).shape == pair.result_shape


@pytest.mark.parametrize("name", params(lambda op: op.kind == BROADCASTING, check=FINITE_DIFFERENCES))
@TWICE
@given(shape=broadcastable_shapes(shape=(2, 3), min_dims=0, max_dims=3, max_side=3), seed=st.integers(0, 2**16))
def test_binary_ops_are_twice_differentiable_when_broadcasting(name, shape, seed):
    op = OPS[name]
    a, b = leaf((2, 3), seed, op.inputs[0].domain), leaf(shape, seed + 1, op.inputs[1].domain)
    assert gradgradcheck(op.twice()[0], a, b, seed=seed)


@pytest.mark.parametrize("name", params(lambda op: op.kind == KEEPS_AXES, check=FINITE_DIFFERENCES))
@SWEEP
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds)
def test_ops_that_keep_the_number_of_axes_pass_gradcheck_at_any_shape(name, shape, seed):
    op = OPS[name]
    x = leaf(shape, seed, op.inputs[0].domain)
    assert op.ours(x).ndim == x.ndim
    assert gradcheck(op.ours, x)


# ----------------------------------------------------------------------------------------------------------
# Random compositions of the rows
# ----------------------------------------------------------------------------------------------------------

# Ops a composition can apply to whatever the previous step made (through the input's domain guard), smooth
# wherever finite differences may look.
SMOOTH = names(lambda op: op.composable and op.finite_differences and not op.kink)
SMOOTH_UNARY = [n for n in SMOOTH if OPS[n].kind != BROADCASTING]
SMOOTH_BINARY = [n for n in SMOOTH if OPS[n].kind == BROADCASTING]


def guarded(name, *xs):
    """The row's op on any values: each input brought into its domain first (log(x * x + 0.5), ...)."""
    op = OPS[name]
    return op.ours(*[make.domain.guard(x) for make, x in zip(op.inputs, xs)])


@st.composite
def programs(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3))
    steps = draw(st.lists(st.one_of(st.tuples(st.just("unary"), st.sampled_from(SMOOTH_UNARY)),
                                    st.tuples(st.just("binary"), st.sampled_from(SMOOTH_BINARY),
                                              st.integers(0, 10))),
                          min_size=1, max_size=8))
    return shapes.input_shapes, steps


def run_program(steps, a, b):
    """Apply the steps; binary steps combine the current value with an earlier value (re-use, diamonds)."""
    values = [a, b]
    current = a
    for step in steps:
        if step[0] == "unary":
            candidate = guarded(step[1], current)
        else:
            other = values[step[2] % len(values)]
            try:
                np.broadcast_shapes(current.shape, other.shape)
            except ValueError:
                continue  # keep the program valid: only broadcastable pairs are combined
            candidate = guarded(step[1], current, other)
        current = candidate
        values.append(current)
    return current


@settings(max_examples=60, deadline=None)
@given(program=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_compositions_match_finite_differences(program, seed):
    (a_shape, b_shape), steps = program
    rng = np.random.default_rng(seed)
    a = Tensor(rng.uniform(-1.5, 1.5, a_shape), requires_grad=True)
    b = Tensor(rng.uniform(-1.5, 1.5, b_shape), requires_grad=True)
    with no_grad():  # chains such as exp(exp(exp(...))) overflow: finite differences say nothing there
        values = run_program(steps, a, b).data
    assume(np.isfinite(values).all() and np.abs(values).max(initial=0) < 1e6)
    assert gradcheck(lambda x, y: run_program(steps, x, y) + 0 * y.sum(), a, b)


# The rows marked inf_and_nan, applied directly to values with zeros, negatives, large values, inf and nan.
RAW = names(lambda op: op.inf_and_nan)
RAW_UNARY = [n for n in RAW if OPS[n].kind != BROADCASTING]
RAW_BINARY = [n for n in RAW if OPS[n].kind == BROADCASTING]
SPECIAL = np.array([0.0, -1.0, 1.0, 1e-3, -1e-3, 50.0, -50.0, 0.5])


def random_program(rng):
    steps = []
    for _ in range(rng.integers(1, 7)):
        if rng.random() < 0.7:
            steps.append(("unary", str(rng.choice(RAW_UNARY))))
        else:
            steps.append(("binary", str(rng.choice(RAW_BINARY)), int(rng.integers(0, 8))))
    return steps


def run_on(steps, a, b, torch=None):
    """Apply the steps to ``a`` (ours, or PyTorch's when ``torch`` is given); a binary step combines the current
    value with a leaf, so a leaf is re-used (never a value with itself: x / x cancels to a rounding residue whose
    product with an inf has either sign or none, depending on how each library orders the same arithmetic)."""
    def call(name, *xs):
        return OPS[name].ours(*xs) if torch is None else OPS[name].torch(torch, *xs)

    current = a
    for step in steps:
        if step[0] == "unary":
            current = call(step[1], current)
        else:
            other = (a, b)[step[2] % 2]
            if tuple(other.shape) == tuple(current.shape):  # transposes change shapes: combine equal shapes only
                current = call(step[1], current, other)
    return current


def random_input(rng, shape):
    values = rng.standard_normal(shape) * 2
    special = rng.random(shape) < 0.3
    values[special] = rng.choice(SPECIAL, size=int(special.sum()))
    return values


def mismatches_with_pytorch(torch, n_programs, seed):
    rng = np.random.default_rng(seed)
    mismatches = []
    for k in range(n_programs):
        steps = random_program(rng)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        a0, b0 = random_input(rng, shape), random_input(rng, shape)
        a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
        ta, tb = (torch.tensor(v, requires_grad=True) for v in (a0, b0))
        out, t_out = run_on(steps, a, b), run_on(steps, ta, tb, torch)
        t_values = t_out.detach().numpy()
        if not np.allclose(out.data, t_values, rtol=1e-9, atol=1e-12, equal_nan=True):
            mismatches.append((k, steps, "value"))
            continue
        upstream = rng.standard_normal(out.shape)
        out.backward(upstream)
        t_out.backward(torch.tensor(upstream))
        for ours, theirs in ((a, ta), (b, tb)):
            mine = np.zeros(ours.shape) if ours.grad is None else ours.grad.data
            expected = np.zeros(ours.shape) if theirs.grad is None else theirs.grad.numpy()
            if not np.allclose(mine, expected, rtol=1e-8, atol=1e-10, equal_nan=True):
                mismatches.append((k, steps, "gradient", mine, expected))
                break
    return mismatches


def test_random_programs_match_pytorch_including_inf_and_nan_from_downstream(torch):
    assert mismatches_with_pytorch(torch, 400, seed=0) == []


@pytest.mark.slow
def test_thousands_of_random_programs_match_pytorch(torch):
    assert mismatches_with_pytorch(torch, 4000, seed=1) == []


DOCUMENTED = (ValueError, TypeError, IndexError, RuntimeError)


# Calls with arbitrary arguments; many are invalid on purpose.
ANY_CALLS = [
    lambda t, a, b: t.sum(a), lambda t, a, b: t.mean(axis=(a, b)), lambda t, a, b: t.max(a, keepdim=True),
    lambda t, a, b: t.min(dim=b), lambda t, a, b: t.softmax(a), lambda t, a, b: t.log_softmax(b),
    lambda t, a, b: t.reshape(a, b), lambda t, a, b: t.reshape(-1, a), lambda t, a, b: t.permute(a, b),
    lambda t, a, b: t.transpose(a, b), lambda t, a, b: t.flatten(a, b), lambda t, a, b: t.expand(a, b),
    lambda t, a, b: t[a], lambda t, a, b: t[a, b], lambda t, a, b: t[[a, b]], lambda t, a, b: t[..., a],
    lambda t, a, b: t @ Tensor.ones(abs(a) % 4 + 1, abs(b) % 3 + 1), lambda t, a, b: t + Tensor.ones(abs(a) % 4),
    lambda t, a, b: t * Tensor.ones(abs(b) % 4, 1), lambda t, a, b: t.clip(a, b), lambda t, a, b: t.argmax(a),
    lambda t, a, b: t.cross_entropy(np.array([a, b])), lambda t, a, b: t.cross_entropy(np.full(t.shape, 0.5)),
    lambda t, a, b: t.binary_crossentropy(Tensor.ones(abs(a) % 3 + 1)), lambda t, a, b: t ** Tensor([a, b]),
    lambda t, a, b: t.backward(), lambda t, a, b: t.sum().backward(np.ones(abs(a) % 3)),
    lambda t, a, b: t.item(), lambda t, a, b: Tensor.zeros(a, b), lambda t, a, b: Tensor.eye(a, b),
    lambda t, a, b: Tensor.arange(a, b, 0), lambda t, a, b: t / 0, lambda t, a, b: (t - a).log(),
    lambda t, a, b: (t * 1000.0 * a).exp().sigmoid(), lambda t, a, b: (t - b).sqrt(),
]


@settings(max_examples=300, deadline=None)
@given(shape=st.lists(st.integers(0, 3), max_size=3).map(tuple), call=st.sampled_from(range(len(ANY_CALLS))),
       a=st.integers(-4, 4), b=st.integers(-4, 4), grad=st.booleans())
def test_random_programs_raise_only_documented_exceptions(shape, call, a, b, grad):
    t = Tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=grad)
    try:
        out = ANY_CALLS[call](t, a, b)
        if isinstance(out, Tensor) and out.requires_grad and out.size == 1:
            out.backward()
    except DOCUMENTED as e:
        # our messages start with the operation's name ("sum: axis 5 is out of range ..."), NumPy's do not
        assert re.match(r"^[A-Za-z_]+: ", str(e)), f"{type(e).__name__}: {e}"


# ----------------------------------------------------------------------------------------------------------
# Where we still differ from PyTorch at signed zeros, nan and inf (the seeded programs above do not meet these;
# each case is PyTorch's behaviour): each fails while the difference lasts, so that a fix is noticed and the op
# can join the programs.
# ----------------------------------------------------------------------------------------------------------


def _gradients(torch, fn, theirs, *values, upstream=1.0):
    ours_in = [Tensor(np.array([v]), requires_grad=True) for v in values]
    theirs_in = [torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in values]
    fn(*ours_in).backward(np.full(1, upstream))
    theirs(*theirs_in).backward(torch.full((1,), upstream, dtype=torch.float64))
    return [t.grad.data for t in ours_in], [t.grad.numpy() for t in theirs_in]


DIFFERENCES = {
    "relu(-0.0) is -0.0": lambda torch: (np.signbit(Tensor(np.array([-0.0])).relu().data),
                                         torch.relu(torch.tensor([-0.0], dtype=torch.float64)).signbit().numpy()),
    "d sqrt(x) at -0.0 is -inf": lambda torch: _gradients(torch, lambda a: a ** 0.5, lambda a: a ** 0.5, -0.0),
    "d sqrt(x) at -inf is nan": lambda torch: _gradients(torch, lambda a: a ** 0.5, lambda a: a ** 0.5, -np.inf),
    "abs at 0 against an inf from downstream is nan": lambda torch: _gradients(
        torch, lambda a: a.abs(), lambda a: a.abs(), 0.0, upstream=np.inf),
    "maximum against a nan gives each side the whole gradient": lambda torch: _gradients(
        torch, np.maximum, torch.maximum, 1.0, np.nan),
}


@pytest.mark.xfail(strict=True, reason="a known difference from PyTorch, kept visible until it is fixed")
@pytest.mark.parametrize("case", sorted(DIFFERENCES))
def test_we_agree_with_pytorch_that(case, torch):
    ours, theirs = DIFFERENCES[case](torch)
    np.testing.assert_array_equal(ours, theirs)


# ----------------------------------------------------------------------------------------------------------
# The rule table
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_registered_rule_is_named_documented_and_labelled(name):
    rule = RULES[name]
    assert rule.name == name and rule.__doc__ and "d" in rule.__doc__  # the docstring states the derivative
    assert rule.__module__ == "tinygrad_like.ops" and callable(rule.apply)


def test_the_rule_table_holds_the_primitives_users_call():
    assert {"add", "mul", "matmul", "linear", "log", "log1p", "sigmoid", "softmax", "cross_entropy",
            "getitem"} <= set(RULES)


def test_cast_and_clone_are_ops_on_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = x.clone()
    assert c.op == "clone" and not np.shares_memory(c.data, x.data)
    assert x.cast("float32").dtype == np.float32 and x.cast(np.float64) is x
    (x.cast(np.float32) * c.cast(np.float32)).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [2.0, 4.0]
    x.zero_grad()
    upstream = np.array([0.5, -3.0])
    (x.cast(np.float32) * x.clone().cast(np.float32)).backward(upstream)
    assert x.grad.tolist() == [1.0, -12.0]  # 2 x upstream, exact in float32


# ----------------------------------------------------------------------------------------------------------
# Arithmetic: edge values, no warnings, errors
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [lambda x: x.relu().sqrt(), lambda x: x.relu().log(), lambda x: x.clip(0, 1).log(),
                                lambda x: x.abs().sqrt() * 0 + x.relu().log()],
                         ids=["relu-sqrt", "relu-log", "clip-log", "abs-relu"])
def test_an_inf_from_downstream_gives_zero_where_the_op_is_flat(fn):
    x = Tensor([-1.0], requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.item() == 0.0


def test_derivative_of_x_to_the_zero_is_zero_also_at_zero():
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_relu_and_abs_gradient_at_zero_is_zero():
    x = Tensor([0.0, 0.0], requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_integers_to_negative_integer_powers_are_refused_naming_pow():
    with pytest.raises(ValueError, match=r"pow: Integers to negative integer powers"):
        Tensor([2]) ** -1


def test_no_runtime_warning_on_extreme_finite_inputs():
    x = Tensor(np.array([-1000.0, 1000.0], np.float32), requires_grad=True)
    s = x.sigmoid()
    assert s.tolist() == [0.0, 1.0]
    s.backward(np.ones(2, np.float32))
    assert x.grad.tolist() == [0.0, 0.0]

    logits = Tensor(np.array([[1e4, 1e4 - 1.0, -1e4]], np.float32), requires_grad=True)
    p = logits.softmax()
    assert np.isfinite(p.data).all() and abs(p.data.sum() - 1) < 1e-6
    (p * Tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert np.isfinite(logits.grad.data).all()
    assert np.isfinite(logits.log_softmax().data[0, :2]).all()

    assert Tensor([-1e4, -800.0]).exp().tolist() == [0.0, 0.0]
    assert Tensor([1000.0]).exp().item() == np.inf  # an honest overflow: inf, and no warning


def test_out_of_domain_values_are_numpys_and_silent():
    x = Tensor([0.0, -1.0, 4.0], requires_grad=True)
    y = x.log()
    assert y.data[0] == -np.inf and np.isnan(y.data[1]) and y.data[2] == np.log(np.float32(4.0))
    y.backward(np.ones(3, np.float32))
    assert x.grad.data[0] == np.inf
    assert np.isnan(Tensor([-1.0]).sqrt().item())
    assert (Tensor([1.0]) / 0).item() == np.inf
    assert np.isnan((Tensor([0.0]) / 0).item())
    assert (Tensor([0.0]) ** -1.0).item() == np.inf


def test_non_finite_arithmetic_is_silent_everywhere():
    x = Tensor(np.array([0.0, np.inf, 3e38], np.float32), requires_grad=True)
    y = (x * Tensor(np.array([np.inf, 0.0, 10.0], np.float32))) + (x - x)
    assert np.isnan(y.data[:2]).all() and y.data[2] == np.inf
    y.backward(np.ones(3, np.float32))
    big = Tensor(np.full((2, 2), 3e38, np.float32))
    assert np.isinf((big @ big).data).all()


@pytest.mark.parametrize("name, op", [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                                      ("div", operator.truediv), ("pow", operator.pow)])
def test_binary_broadcast_errors_name_the_op_and_shapes(name, op):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        op(Tensor.ones(2, 3), Tensor.ones(4))


# ----------------------------------------------------------------------------------------------------------
# Elementwise functions
# ----------------------------------------------------------------------------------------------------------


def test_log1p_is_accurate_for_tiny_inputs_and_differentiates():
    x = Tensor([1e-10, 0.5, 3.0], requires_grad=True, dtype=np.float64)
    np.testing.assert_allclose(x.log1p().data, np.log1p(x.data), rtol=1e-15)
    assert x.log1p().data[0] == pytest.approx(1e-10, rel=1e-9)  # log(1 + 1e-10) would lose digits
    assert gradcheck(lambda t: t.log1p(), x)


def normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@SWEEP
@given(shape=shapes, seed=seeds)
def test_gelu_is_x_times_the_normal_cdf(shape, seed):
    x = leaf(shape, seed, uniform(-3.0, 3.0))
    np.testing.assert_allclose(x.gelu().data, x.data * normal_cdf(x.data), rtol=1e-12, atol=1e-14)


def test_gelu_derivative_is_cdf_plus_x_times_density():
    x = Tensor(np.linspace(-4, 4, 9), requires_grad=True)
    x.gelu().backward(np.ones(9))
    density = np.exp(-x.data**2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(x.grad.data, normal_cdf(x.data) + x.data * density, rtol=1e-13)


def test_softplus_is_exact_far_out_and_its_gradient_is_the_sigmoid():
    x = Tensor(np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), requires_grad=True)
    y = x.softplus()
    y.backward(np.ones(5))
    tail = np.log1p(np.exp(-30.0))
    np.testing.assert_allclose(y.data, [0.0, tail, np.log(2), 30.0 + tail, 800.0], rtol=1e-15)
    e = np.exp(-30.0)
    np.testing.assert_allclose(x.grad.data, [0.0, e / (1 + e), 0.5, 1 / (1 + e), 1.0], rtol=1e-15)  # sigmoid


def test_leaky_relu_gradient_at_zero_is_the_slope_as_pytorch():
    x = Tensor([0.0, -1.0, 2.0], requires_grad=True)
    x.leaky_relu(0.25).backward(np.ones(3, np.float32))
    assert x.grad.tolist() == [0.25, 0.25, 1.0]


@SWEEP
@given(shapes3=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where_broadcasts_and_routes_the_gradient(shapes3, seed):
    c_shape, a_shape, b_shape = shapes3.input_shapes
    cond = Tensor(np.random.default_rng(seed).random(c_shape) > 0.5)
    a, b = leaf(a_shape, seed + 1), leaf(b_shape, seed + 2)
    out = cond.where(a, b)
    np.testing.assert_array_equal(out.data, np.where(cond.data, a.data, b.data))
    assert out.shape == shapes3.result_shape
    assert gradcheck(lambda x, y: Tensor.where(cond, x, y), a, b)


def test_where_with_numbers_keeps_the_tensors_dtype():
    x = Tensor(np.array([-1.0, 2.0], np.float32), requires_grad=True)
    y = (x > 0).where(x, 0.0)
    assert y.dtype == np.float32 and y.tolist() == [0.0, 2.0]
    assert Tensor.where(np.array([True, False]), 1.0, x).dtype == np.float32
    assert Tensor.where(Tensor([True, False]), 1.5, 0).dtype == np.float32
    y.backward(np.ones(2, np.float32))
    assert x.grad.tolist() == [0.0, 1.0]


def test_clip_refuses_bounds_that_are_not_numbers():
    x = Tensor([1.0, -2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"clip: min must be a number, got Tensor \(tensor shape \(2,\)\)"):
        x.clip(min=Tensor(0.0))
    assert x.clip(min=np.float32(0.0), max=1).tolist() == [1.0, 0.0]


# ----------------------------------------------------------------------------------------------------------
# Products
# ----------------------------------------------------------------------------------------------------------


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


@TWICE
@given(batch=array_shapes(min_dims=0, max_dims=2, max_side=2), n=st.integers(1, 3), k=st.integers(1, 3),
       m=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batched_matmul_is_twice_differentiable(batch, n, k, m, seed):
    rng = np.random.default_rng(seed)
    a = Tensor(rng.standard_normal(batch + (n, k)), requires_grad=True)
    b = Tensor(rng.standard_normal((k, m)), requires_grad=True)
    assert gradgradcheck(lambda x, y: (x @ y).tanh(), a, b, seed=seed)


@SWEEP
@given(batch=array_shapes(min_dims=0, max_dims=2, max_side=3), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       bias=st.booleans(), seed=seeds)
def test_fused_linear_equals_matmul_plus_bias_and_passes_gradcheck(batch, n_in, n_out, bias, seed):
    x, w = leaf(batch + (n_in,), seed), leaf((n_out, n_in), seed + 1)
    inputs = [x, w] + ([leaf((n_out,), seed + 2)] if bias else [])
    fused = RULES["linear"].apply(*inputs)
    unfused = x @ w.T + inputs[2] if bias else x @ w.T
    np.testing.assert_allclose(fused.data, unfused.data, rtol=1e-13, atol=1e-13)
    assert gradcheck(lambda *t: RULES["linear"].apply(*t), *inputs)


def test_fused_linear_shape_error():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not fit a weight of shape \(4, 5\)"):
        RULES["linear"].apply(Tensor.ones(2, 3), Tensor.ones(4, 5))


def test_matmul_not_aligned_message_is_exact():
    with pytest.raises(ValueError) as info:
        Tensor.ones(3, 4) @ Tensor.ones(5, 2)
    assert str(info.value) == "matmul: shapes (3, 4) and (5, 2) are not aligned (4 != 5)"


@pytest.mark.parametrize("a, b, pattern", [
    ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) are not aligned"),
    ((2, 2, 3), (4, 3, 1), r"matmul: batch dimensions of shapes \(2, 2, 3\) and \(4, 3, 1\)"),
    ((), (3,), r"matmul: both operands must be at least 1-D"),
])
def test_matmul_shape_errors_name_the_shapes(a, b, pattern):
    with pytest.raises(ValueError, match=pattern):
        Tensor.ones(*a) @ Tensor.ones(*b)


# ----------------------------------------------------------------------------------------------------------
# Reductions and softmax
# ----------------------------------------------------------------------------------------------------------


def _axis_choices(ndim):
    singles = [None] + list(range(-ndim, ndim))
    return st.one_of(st.sampled_from(singles), st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                                                        max_size=ndim).map(tuple)) if ndim else st.sampled_from([None])


@pytest.mark.parametrize("reduction", ["sum", "mean", "max", "min"])
@SWEEP
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, max_side=4), keepdim=st.booleans(), seed=seeds)
def test_reductions_over_any_axes_give_numpys_values_and_pass_gradcheck(reduction, data, shape, keepdim, seed):
    axis = data.draw(_axis_choices(len(shape)))
    x = leaf(shape, seed)
    out = getattr(x, reduction)(axis, keepdim)
    expected = getattr(np, {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[reduction])(
        x.data, axis=axis, keepdims=keepdim)
    np.testing.assert_allclose(out.data, expected)
    assert gradcheck(lambda t: getattr(t, reduction)(axis, keepdim), x)


def test_reduction_axes_are_spelled_as_in_numpy_and_pytorch():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(0).tolist() == [3, 5, 7]
    assert x.sum(axis=-1).tolist() == [3, 12]
    assert x.sum(dim=1, keepdims=True).shape == (2, 1)
    assert x.sum([0, 1]).item() == 15 and x.mean((0, 1)).item() == 2.5
    s = Tensor(4.0)
    assert s.sum(0).item() == 4.0 and s.max(-1).item() == 4.0 and s.mean(axis=0).item() == 4.0


def test_max_min_ties_share_the_gradient_over_all_axes_or_a_tuple_and_go_to_the_index_over_one():
    x = Tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0, 0.5, 0.5, 0]
    y = Tensor([[2.0, 2.0, 5.0], [1.0, 4.0, 1.0]], requires_grad=True)
    y.min(axis=(1,)).backward(np.array([1.0, 10.0]))
    assert y.grad.tolist() == [[0.5, 0.5, 0], [5, 0, 5]]
    y.grad = None
    y.min(axis=1).backward(np.array([1.0, 10.0]))  # PyTorch's min(dim): all of it at the index returned
    assert y.grad.tolist() == [[1, 0, 0], [10, 0, 0]]


def test_ties_share_the_gradient_as_pytorchs_amax_or_go_to_max_dims_index(torch):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    compare_with_torch(torch, lambda t: t.max(axis=(1,)), lambda t: t.amax(dim=1), [a], np.float64)
    compare_with_torch(torch, lambda t: t.min(), lambda t: t.amin(), [a], np.float64)
    compare_with_torch(torch, lambda t: t.max(axis=1), lambda t: t.max(dim=1).values, [a], np.float64)


def _nonempty_axes(ndim):
    return st.one_of(st.sampled_from([None, *range(-ndim, ndim)]),
                     st.lists(st.integers(0, ndim - 1), unique=True, min_size=1, max_size=ndim).map(tuple))


@pytest.mark.parametrize("op", ["var", "std"])
@SWEEP
@given(data_=st.data(), shape=array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), keepdim=st.booleans(),
       correction=st.sampled_from([0, 1]), seed=seeds)
def test_var_and_std_over_any_axes_give_numpys_values_and_pass_gradcheck(op, data_, shape, keepdim, correction, seed):
    axis = data_.draw(_nonempty_axes(len(shape)))
    x = leaf(shape, seed)
    expected = getattr(np, op)(x.data, axis=axis, keepdims=keepdim, ddof=correction)
    np.testing.assert_allclose(getattr(x, op)(axis, keepdim, correction).data, expected, rtol=1e-12)
    assert gradcheck(lambda t: getattr(t, op)(axis, keepdim, correction=correction), x)


def test_var_spellings_and_degenerate_counts():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.var(dim=1, keepdims=True).shape == (2, 1)
    assert x.std(0).tolist() == pytest.approx([2.1213203435596424] * 3)
    assert math.isnan(Tensor([5.0]).var().item())  # one sample, correction 1: 0 / 0, as PyTorch
    assert Tensor([5.0]).var(correction=0).item() == 0.0


def test_float16_mean_of_many_elements_is_right():
    assert Tensor(np.ones(70_000, np.float16)).mean().item() == 1.0


def test_mean_over_zero_elements_is_nan_and_empty_indexing_works_both_ways():
    assert np.isnan(Tensor.zeros(0).mean().item())
    t = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    assert t[[]].shape == (0, 2) and t[[], 1:].shape == (0, 1)
    (t[[]].sum() + t[[0, 0]].sum()).backward()
    np.testing.assert_array_equal(t.grad.data, [[2, 2], [0, 0], [0, 0]])


def test_mean_over_nothing_is_nan_and_max_of_an_empty_axis_raises():
    assert np.isnan(Tensor.zeros(0).mean().item())  # as PyTorch and tinygrad, without a warning
    assert Tensor.zeros(0, 3).mean(axis=0).shape == (3,) and np.isnan(Tensor.zeros(0, 3).mean(axis=0).data).all()
    with pytest.raises(ValueError, match=r"max: cannot reduce over an empty axis of a tensor of shape \(0,\)"):
        Tensor.zeros(0).max()
    assert Tensor.zeros(0, 3).max(axis=1).shape == (0,)  # the reduced axis is not empty: as NumPy and PyTorch


@TWICE
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=3), data=st.data())
def test_reductions_and_softmax_over_any_axis_are_twice_differentiable(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    kind = data.draw(st.sampled_from(["sum", "mean", "softmax", "log_softmax", "var"]))
    x = Tensor(np.random.default_rng(len(shape) + axis).standard_normal(shape), requires_grad=True)
    fn = {"sum": lambda t: (t * t.exp()).sum(axis), "mean": lambda t: (t * t).mean(axis, keepdim=True),
          "softmax": lambda t: t.softmax(axis), "log_softmax": lambda t: t.log_softmax(axis),
          "var": lambda t: t.var(axis, correction=0)}[kind]
    assert gradgradcheck(fn, x)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@SWEEP
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds)
def test_softmax_and_log_softmax_over_any_axis_are_right_and_pass_gradcheck(op, data, shape, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = leaf(shape, seed, uniform(-5.0, 5.0))
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(getattr(x, op)(axis).data, expected if op == "softmax" else np.log(expected),
                               rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda t: getattr(t, op)(axis), x)


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


# ----------------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------------


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


def test_binary_crossentropy_is_the_formula_and_passes_gradcheck():
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


def test_binary_crossentropy_refuses_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"binary_crossentropy: the input must be probabilities in \[0, 1\], got "
                                         r"values from 0.5 to 1.5"):
        Tensor([1.5, 0.5]).binary_crossentropy(Tensor([1.0, 0.0]))


def test_cross_entropy_refuses_labels_and_targets_that_do_not_fit():
    logits = Tensor.zeros(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\), got values from 0 to 4"):
        logits.cross_entropy(np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\), got values from -1"):
        logits.cross_entropy(np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: target must be integer labels of shape \(3,\) or "
                                         r"probabilities of shape \(3, 4\), got dtype int64 and shape \(2,\)"):
        logits.cross_entropy(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: expects \(N, C\) logits, got shape \(4,\)"):
        Tensor.zeros(4).cross_entropy(np.array([1]))
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be"):
        logits.cross_entropy(np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"binary_crossentropy: target shape \(2,\) differs"):
        Tensor.ones(3).binary_crossentropy(np.ones(2, np.float32))


# ----------------------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------------------


@SWEEP
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=3), seed=seeds)
def test_shape_ops_pass_gradcheck_at_any_shape(shape, seed):
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


def test_shape_ops_give_the_expected_shapes():
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
def test_indexing_gives_numpys_values_and_passes_gradcheck(index):
    x = leaf((3, 3), 5)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert gradcheck(lambda t: t[index], x)


def test_getitem_repeated_indices_add_up_and_tensor_indices_work():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[Tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    x.zero_grad()
    upstream = np.array([0.5, -2.0, 4.0, 0.25])
    x[Tensor([0, 0, 2, 0])].backward(upstream)
    assert x.grad.tolist() == [0.5 - 2.0 + 0.25, 0.0, 4.0]


@SWEEP
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), data_=st.data(), seed=seeds)
def test_unsqueeze_squeeze_and_view(shape, data_, seed):
    x = leaf(shape, seed)
    dim = data_.draw(st.integers(-len(shape) - 1, len(shape)))
    expanded = x.unsqueeze(dim)
    assert expanded.shape == np.expand_dims(x.data, dim).shape
    assert expanded.squeeze(dim).shape == shape
    assert x.squeeze().shape == np.squeeze(x.data).shape
    assert x.view(-1).shape == (x.numel(),)
    assert gradcheck(lambda t: t.unsqueeze(dim).squeeze(), x)


def test_squeeze_keeps_axes_that_are_not_of_size_one():
    x = Tensor.zeros(2, 1, 3, 1)
    assert x.squeeze(0).shape == (2, 1, 3, 1)  # as PyTorch: no error, nothing to drop
    assert x.squeeze((1, 3)).shape == (2, 3) and x.squeeze(-1).shape == (2, 1, 3)
    assert x.numel() == 6 == x.size


@SWEEP
@given(base=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), sizes=st.lists(st.integers(0, 3),
       min_size=1, max_size=3), data_=st.data(), seed=seeds)
def test_cat_along_any_axis_gives_numpys_values_and_passes_gradcheck(base, sizes, data_, seed):
    dim = data_.draw(st.integers(-len(base), len(base) - 1))
    axis = dim % len(base)
    parts = [leaf(base[:axis] + (n,) + base[axis + 1:], seed + i) for i, n in enumerate(sizes)]
    out = parts[0].cat(*parts[1:], dim=dim)
    np.testing.assert_array_equal(out.data, np.concatenate([p.data for p in parts], axis=axis))
    assert Tensor.cat(parts, dim=dim).shape == out.shape
    assert gradcheck(lambda *ts: Tensor.cat(*ts, dim=dim), *parts)


@SWEEP
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), count=st.integers(1, 3),
       data_=st.data(), seed=seeds)
def test_stack_along_any_axis_gives_numpys_values_and_passes_gradcheck(shape, count, data_, seed):
    dim = data_.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [leaf(shape, seed + i) for i in range(count)]
    out = Tensor.stack(*parts, dim=dim)
    np.testing.assert_array_equal(out.data, np.stack([p.data for p in parts], axis=dim))
    assert gradcheck(lambda *ts: ts[0].stack(*ts[1:], dim=dim), *parts)


def test_cat_and_stack_promote_dtypes_as_pytorch():
    f32, i32 = Tensor(np.ones(2, np.float32)), Tensor(np.array([1, 2], np.int32))
    assert Tensor.cat(f32, i32).dtype == np.float32
    assert Tensor.cat(f32, Tensor(np.ones(2))).dtype == np.float64
    assert Tensor.stack(i32, i32).dtype == np.int32


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: Tensor.zeros(2, 3).cat(Tensor.zeros(3, 3), dim=1), ValueError,
     r"cat: tensors of shapes \(2, 3\) and \(3, 3\) differ outside dim 1"),
    (lambda: Tensor.zeros(2, 3).cat(Tensor.zeros(2, 3, 1)), ValueError, r"cat: tensors of shapes \(2, 3\) and"),
    (lambda: Tensor(1.0).cat(Tensor(2.0)), ValueError, "cat: zero-dimensional tensors cannot be concatenated"),
    (lambda: Tensor.zeros(2).cat(Tensor.zeros(2), dim=1), IndexError, "cat: axis 1 is out of range"),
    (lambda: Tensor.cat([]), ValueError, "cat: expects at least one tensor"),
    (lambda: Tensor.stack(Tensor.zeros(2), Tensor.zeros(3)), ValueError,
     r"stack: tensors must have the same shape, got \(2,\) and \(3,\)"),
    (lambda: Tensor.zeros(2, 3).unsqueeze(3), IndexError, r"unsqueeze: dim 3 is out of range \[-3, 2\]"),
    (lambda: Tensor.zeros(2).squeeze(1), IndexError, "squeeze: axis 1 is out of range"),
    (lambda: Tensor.ones(2).where(1.0, 0.0), TypeError, "where: the condition must be a boolean tensor, got float32"),
    (lambda: (Tensor.ones(2) > 0).where(Tensor.ones(3), 0.0), ValueError, r"where: shapes .* cannot be broadcast"),
])
def test_bad_shape_and_where_arguments_are_refused_naming_the_op(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda t: t.sum(2), np.exceptions.AxisError, r"sum: axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda t: t.mean(axis=(0, -2)), ValueError, r"mean: repeated axis"),
    (lambda t: t.max(axis=1.5), TypeError, r"max: axis must be an int"),
    (lambda t: t.softmax(3), IndexError, r"softmax: axis 3 is out of range"),
    (lambda t: t.reshape(4, 2), ValueError, r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                            r"into \(4, 2\)"),
    (lambda t: t.permute(0, 0), ValueError, r"permute: \(0, 0\) is not a permutation"),
    (lambda t: t.expand(4, 3), ValueError, r"expand: cannot expand a tensor of shape \(2, 3\) to \(4, 3\)"),
    (lambda t: t[5], IndexError, r"getitem: index 5 is out of bounds .*tensor shape \(2, 3\)"),
    (lambda t: t[:, [0, 7]], IndexError, r"getitem: .*7.*tensor shape \(2, 3\)"),
    (lambda t: t.clip(), ValueError, r"clip: at least one of min and max"),
    (lambda t: t.clip(2, 1), ValueError, r"clip: min \(2\) is greater than max \(1\)"),
    (lambda t: t.flatten(1, 0), ValueError, r"flatten: start_dim 1 comes after end_dim 0"),
    (lambda t: t.sum(axis=0, dim=1), TypeError, r"sum: give either axis or dim"),
    (lambda t: t.transpose(0, 5), IndexError, r"transpose: axis 5"),
])
def test_shape_and_axis_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(Tensor.ones(2, 3))


# ----------------------------------------------------------------------------------------------------------
# Dropout
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    manual_seed(0)
    x = Tensor(np.random.default_rng(1).uniform(1, 2, 40_000), requires_grad=True)
    y = x.dropout(p)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / (1 - p), rtol=1e-15)
    assert abs((~kept).mean() - p) < 4 * math.sqrt(p * (1 - p) / x.size)  # within 4 standard deviations
    upstream = np.random.default_rng(2).standard_normal(x.shape)
    y.backward(upstream)
    np.testing.assert_allclose(x.grad.data, upstream * kept / (1 - p), rtol=1e-15)


def test_dropout_follows_manual_seed_and_is_the_identity_outside_training():
    x = Tensor(np.ones((4, 5), np.float32))
    manual_seed(3)
    first = x.dropout(0.5).data
    manual_seed(3)
    np.testing.assert_array_equal(first, x.dropout(0.5).data)
    assert first.dtype == np.float32
    assert x.dropout(0.5, training=False) is x and x.dropout(0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    assert x.dropout(1.0).tolist() == np.zeros((4, 5)).tolist()  # p = 1 drops everything, as PyTorch


def test_dropout_matches_pytorchs_scaling_statistics(torch):
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.ones(10_000, dtype=torch.float64), 0.25).numpy()
    ours = Tensor(np.ones(10_000)).dropout(0.25).data
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, 1 / 0.75}


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", None, True])
def test_dropout_refuses_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\], got "):
        Tensor.ones(3).dropout(p)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\]"):
        nn.Dropout(p)
