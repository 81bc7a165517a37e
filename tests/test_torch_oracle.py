"""PyTorch as an oracle: forward values, dtypes and gradients of every operation (skipped without torch)."""

import numpy as np
import pytest

from tinygrad_like import Tensor
from tinygrad_like.ops import RULES

torch = pytest.importorskip("torch")
F = torch.nn.functional

POS = {"low": 0.3, "high": 3.0}
KINK = {"away_from_zero": True}

# name: (ours, theirs, input domains) -- both sides receive the same arrays
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [{}, {}], [(3, 4), (4,)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [{}, {}], [(3, 1), (1, 4)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [{}, {}], [(2, 3, 4), (3, 1)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [{}, KINK], [(3, 4), (3, 4)]),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, [POS, {}], [(3, 4), (4,)]),
    "scalar_ops": (lambda a: (2 - a) * 3 / (a**2 + 1) + 0.5**a, lambda a: (2 - a) * 3 / (a**2 + 1) + 0.5**a,
                   [{}], [(5,)]),
    "neg": (lambda a: -a, lambda a: -a, [{}], [(4,)]),
    "matmul_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [{}, {}], [(3, 4), (4, 5)]),
    "matmul_batched": (lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [{}, {}], [(2, 1, 3, 4), (5, 4, 2)]),
    "matmul_vec": (lambda a, b: a.dot(b), lambda a, b: a.matmul(b), [{}, {}], [(4,), (2, 4, 3)]),
    "linear": (lambda x, w, b: RULES["linear"].apply(x, w, b),
               lambda x, w, b: F.linear(x, w, b), [{}, {}, {}], [(5, 4), (3, 4), (3,)]),
    "linear_batched": (lambda x, w, b: RULES["linear"].apply(x, w, b), lambda x, w, b: F.linear(x, w, b),
                       [{}, {}, {}], [(2, 5, 4), (3, 4), (3,)]),
    "exp": (lambda a: a.exp(), torch.exp, [{}], [(3, 4)]),
    "log": (lambda a: a.log(), torch.log, [POS], [(3, 4)]),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [POS], [(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [{}], [(3, 4)]),
    "relu": (lambda a: a.relu(), torch.relu, [KINK], [(3, 4)]),
    "tanh": (lambda a: a.tanh(), torch.tanh, [{}], [(3, 4)]),
    "abs": (lambda a: a.abs(), torch.abs, [KINK], [(3, 4)]),
    "square": (lambda a: a.square(), torch.square, [{}], [(3, 4)]),
    "clip": (lambda a: a.clip(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [KINK], [(3, 4)]),
    "sum": (lambda a: a.sum(), lambda a: a.sum(), [{}], [(3, 4)]),
    "sum_axis": (lambda a: a.sum(axis=(0, 2), keepdim=True), lambda a: a.sum(dim=(0, 2), keepdim=True), [{}],
                 [(2, 3, 4)]),
    "mean": (lambda a: a.mean(-1), lambda a: a.mean(-1), [{}], [(3, 4)]),
    "max": (lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [{}], [(3, 4)]),
    "min": (lambda a: a.min(), lambda a: a.amin(), [{}], [(3, 4)]),
    "softmax": (lambda a: a.softmax(), lambda a: a.softmax(-1), [{}], [(3, 4)]),
    "softmax_axis0": (lambda a: a.softmax(0), lambda a: a.softmax(0), [{}], [(3, 4)]),
    "log_softmax": (lambda a: a.log_softmax(), lambda a: a.log_softmax(-1), [{}], [(3, 4)]),
    "reshape": (lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [{}], [(3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [{}], [(2, 3, 4)]),
    "transpose": (lambda a: a.transpose(), lambda a: a.transpose(1, 0), [{}], [(3, 4)]),
    "T": (lambda a: a.T, lambda a: a.permute(1, 0), [{}], [(3, 4)]),
    "flatten": (lambda a: a.flatten(1), lambda a: a.flatten(1), [{}], [(2, 3, 4)]),
    "expand": (lambda a: a.expand(2, 3, 4), lambda a: a.expand(2, 3, 4), [{}], [(3, 1)]),
    "getitem_basic": (lambda a: a[1:, None, ::2], lambda a: a[1:, None, ::2], [{}], [(3, 4)]),
    "getitem_repeated": (lambda a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]], [{}], [(3, 4)]),
}


def _inputs(domains, shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = []
    for domain, shape in zip(domains, shapes):
        if domain.get("away_from_zero"):
            a = np.sign(rng.uniform(-1, 1, shape)) * rng.uniform(0.2, 2.0, shape)
        else:
            a = rng.uniform(domain.get("low", -2.0), domain.get("high", 2.0), shape)
        arrays.append(a.astype(dtype))
    return arrays


def _compare(ours_fn, theirs_fn, arrays, dtype, rtol):
    ours_in = [Tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    assert ours.dtype == dtype and theirs.dtype == getattr(torch, np.dtype(dtype).name)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=rtol)
    upstream = np.random.default_rng(99).standard_normal(ours.shape).astype(dtype)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    for o, t in zip(ours_in, theirs_in):
        assert o.grad.dtype == dtype
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch(name, dtype, rtol):
    ours_fn, theirs_fn, domains, shapes = CASES[name]
    _compare(ours_fn, theirs_fn, _inputs(domains, shapes, dtype, seed=len(name)), dtype, rtol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_pytorch(reduction):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    soft = rng.dirichlet(np.ones(5), size=6)
    for target_ours, target_theirs in ((labels, torch.tensor(labels)), (soft, torch.tensor(soft))):
        _compare(lambda a, t=target_ours: a.cross_entropy(t, reduction=reduction),
                 lambda a, t=target_theirs: F.cross_entropy(a, t, reduction=reduction), [logits], np.float64, 1e-12)


def test_binary_crossentropy_matches_pytorch():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, (4, 3)).astype(np.float32)
    y = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    _compare(lambda a, b: a.binary_crossentropy(b), lambda a, b: F.binary_cross_entropy(a, b), [p, y],
             np.float32, 2e-5)


def test_ties_share_gradient_like_amax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    _compare(lambda t: t.max(axis=1), lambda t: t.amax(dim=1), [a], np.float64, 1e-12)
    _compare(lambda t: t.min(), lambda t: t.amin(), [a], np.float64, 1e-12)
