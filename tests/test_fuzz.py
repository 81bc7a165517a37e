"""Property tests: random expression graphs from the rule table agree with finite differences, and random
(often invalid) programs raise only the documented exception types, never a NumPy traceback or a warning."""

import re
from contextlib import nullcontext

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from tinygrad_like import Tensor, gradcheck, no_grad
from tinygrad_like.engine import is_grad_enabled

# Ops that keep any finite float64 input finite and smooth enough for central differences.
UNARY = {
    "exp": lambda t: (t * 0.5).exp(),
    "log": lambda t: (t * t + 0.5).log(),
    "sqrt": lambda t: (t * t + 0.5).sqrt(),
    "sigmoid": lambda t: t.sigmoid(),
    "tanh": lambda t: t.tanh(),
    "neg": lambda t: -t,
    "square": lambda t: t.square(),
    "softmax": lambda t: t.softmax(-1),
    "log_softmax": lambda t: t.log_softmax(0),
    "sum": lambda t: t.sum(-1, keepdim=True),
    "mean": lambda t: t.mean(0, keepdim=True),
    "max": lambda t: t.max(-1, keepdim=True),
    "transpose": lambda t: t.T,
    "flatten_reshape": lambda t: t.flatten().reshape(t.shape),
    "getitem": lambda t: t[..., ::-1],
    "pow": lambda t: (t * t + 1) ** 1.5,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
}


@st.composite
def programs(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3))
    steps = draw(st.lists(st.one_of(st.tuples(st.just("unary"), st.sampled_from(sorted(UNARY))),
                                    st.tuples(st.just("binary"), st.sampled_from(sorted(BINARY)),
                                              st.integers(0, 10))),
                          min_size=1, max_size=8))
    return shapes.input_shapes, steps


def run_program(steps, a, b):
    """Apply the steps; binary steps combine the current value with an earlier value (re-use, diamonds)."""
    values = [a, b]
    current = a
    for step in steps:
        if step[0] == "unary":
            candidate = UNARY[step[1]](current)
        else:
            other = values[step[2] % len(values)]
            try:
                np.broadcast_shapes(current.shape, other.shape)
            except ValueError:
                continue  # keep the program valid: only broadcastable pairs are combined
            candidate = BINARY[step[1]](current, other)
        current = candidate
        values.append(current)
    return current


@settings(max_examples=60, deadline=None)
@given(program=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_expression_graphs_match_finite_differences(program, seed):
    (a_shape, b_shape), steps = program
    rng = np.random.default_rng(seed)
    a = Tensor(rng.uniform(-1.5, 1.5, a_shape), requires_grad=True)
    b = Tensor(rng.uniform(-1.5, 1.5, b_shape), requires_grad=True)
    with no_grad():  # chains such as exp(exp(exp(...))) overflow: finite differences say nothing there
        values = run_program(steps, a, b).data
    assume(np.isfinite(values).all() and np.abs(values).max(initial=0) < 1e6)
    assert gradcheck(lambda x, y: run_program(steps, x, y) + 0 * y.sum(), a, b)


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

