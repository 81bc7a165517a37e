"""Differential test against PyTorch: random programs of the library's ops, on inputs that include zeros,
negatives and large values, so inf and nan arrive from downstream; values and gradients (with a random upstream
gradient) must match PyTorch's, nan for nan and inf for inf."""

import numpy as np
import pytest

from tinygrad_like import Tensor

torch = pytest.importorskip("torch")

# name -> (ours, PyTorch's). abs is left out: where abs is flat (x == 0) an inf from downstream gives 0 here
# (selected, as relu), nan in PyTorch (sign(0) * inf); tests/test_hardening.py covers it.
UNARY = {
    "relu": (lambda t: t.relu(), lambda t: t.relu()),
    "sqrt": (lambda t: t.sqrt(), lambda t: t.sqrt()),
    "log": (lambda t: t.log(), lambda t: t.log()),
    "log1p": (lambda t: t.log1p(), lambda t: t.log1p()),
    "exp": (lambda t: t.exp(), lambda t: t.exp()),
    "sigmoid": (lambda t: t.sigmoid(), lambda t: t.sigmoid()),
    "tanh": (lambda t: t.tanh(), lambda t: t.tanh()),
    "neg": (lambda t: -t, lambda t: -t),
    "clip": (lambda t: t.clip(0, 1), lambda t: t.clamp(0, 1)),
    "clip_low": (lambda t: t.clip(-0.5, None), lambda t: t.clamp(min=-0.5)),
    "pow0": (lambda t: t ** 0, lambda t: t ** 0),
    "pow2": (lambda t: t ** 2, lambda t: t ** 2),
    "pow_half": (lambda t: t ** 0.5, lambda t: t ** 0.5),
    "reciprocal": (lambda t: 1 / t, lambda t: 1 / t),
    "sum": (lambda t: t.sum(-1, keepdim=True), lambda t: t.sum(-1, keepdim=True)),
    "mean": (lambda t: t.mean(0, keepdim=True), lambda t: t.mean(0, keepdim=True)),
    "softmax": (lambda t: t.softmax(-1), lambda t: t.softmax(-1)),
    "log_softmax": (lambda t: t.log_softmax(-1), lambda t: t.log_softmax(-1)),
    "transpose": (lambda t: t.T, lambda t: t.T),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
}
SPECIAL = np.array([0.0, -1.0, 1.0, 1e-3, -1e-3, 50.0, -50.0, 0.5])


def random_program(rng):
    steps = []
    for _ in range(rng.integers(1, 7)):
        if rng.random() < 0.7:
            steps.append(("unary", str(rng.choice(sorted(UNARY)))))
        else:
            steps.append(("binary", str(rng.choice(sorted(BINARY))), int(rng.integers(0, 8))))
    return steps


def run(steps, a, b, side):
    """Apply the steps to ``a``; a binary step combines the current value with a leaf, so a leaf is re-used
    (never a value with itself: x / x cancels to a rounding residue whose product with an inf has either sign
    or none, depending on how each library orders the same arithmetic)."""
    current = a
    for step in steps:
        if step[0] == "unary":
            current = UNARY[step[1]][side](current)
        else:
            other = (a, b)[step[2] % 2]
            if tuple(other.shape) == tuple(current.shape):  # transposes change shapes: combine equal shapes only
                current = BINARY[step[1]][side](current, other)
    return current


def random_input(rng, shape):
    values = rng.standard_normal(shape) * 2
    special = rng.random(shape) < 0.3
    values[special] = rng.choice(SPECIAL, size=int(special.sum()))
    return values


def check_programs(n_programs, seed):
    rng = np.random.default_rng(seed)
    mismatches = []
    for k in range(n_programs):
        steps = random_program(rng)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        a0, b0 = random_input(rng, shape), random_input(rng, shape)
        a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
        ta, tb = (torch.tensor(v, requires_grad=True) for v in (a0, b0))
        out, t_out = run(steps, a, b, 0), run(steps, ta, tb, 1)
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


def test_random_programs_match_pytorch_including_inf_and_nan_from_downstream():
    assert check_programs(400, seed=0) == []


@pytest.mark.slow
def test_thousands_of_random_programs_match_pytorch():
    assert check_programs(4000, seed=1) == []
