"""Optimizers: updates checked against the formulas and PyTorch, and misuse refused clearly."""

import numpy as np
import pytest

from tinygrad_like import Tensor, nn, optim


def _quadratic_steps(opt_factory, steps=5):
    rng = np.random.default_rng(0)
    target = rng.standard_normal(4)
    w = Tensor(rng.standard_normal(4), requires_grad=True)
    opt = opt_factory([w])
    for _ in range(steps):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    return w.data, target


def test_sgd_is_plain_gradient_descent():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(4)
    w0 = rng.standard_normal(4)
    w, _ = _quadratic_steps(lambda p: optim.SGD(p, lr=0.1), steps=1)
    np.testing.assert_allclose(w, w0 - 0.1 * 2 * (w0 - target))


def test_sgd_keeps_float32():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    optim.SGD([w], lr=0.1).step()
    assert w.dtype == np.float32 and w.tolist() == pytest.approx([0.8, 1.6])


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours = {"sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9), "adam": lambda p: optim.Adam(p, lr=0.05)}
    theirs = {"sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
              "adam": lambda p: torch.optim.Adam(p, lr=0.05)}
    w_ours, target = _quadratic_steps(ours[name], steps=7)
    rng = np.random.default_rng(0)
    rng.standard_normal(4)
    w = torch.tensor(rng.standard_normal(4), requires_grad=True)
    opt = theirs[name]([w])
    for _ in range(7):
        opt.zero_grad()
        ((w - torch.tensor(target)) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(w_ours, w.detach().numpy(), rtol=1e-12)


def test_optimizer_accepts_a_module_and_skips_params_without_grad():
    mlp = nn.MLP([3, 2], seed=0)
    opt = optim.Adam(mlp)
    before = mlp.layers[0].weight.data.copy()
    opt.step()  # no gradients yet: nothing moves
    np.testing.assert_array_equal(before, mlp.layers[0].weight.data)


@pytest.mark.parametrize("params, exc, pattern", [
    ([], ValueError, "SGD: got an empty parameter list"),
    ([np.ones(3)], TypeError, "SGD: parameter 0 is a ndarray, not a Tensor"),
    ([Tensor([1.0], requires_grad=True), Tensor([1.0])], ValueError, r"SGD: parameter 1 \(shape \(1,\)\) does not"),
])
def test_bad_parameters(params, exc, pattern):
    with pytest.raises(exc, match=pattern):
        optim.SGD(params, lr=0.1)


def test_bad_hyperparameters():
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match="learning rate must be positive"):
        optim.SGD(p, lr=0)
    with pytest.raises(ValueError, match="momentum must be in"):
        optim.SGD(p, lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="betas must be in"):
        optim.Adam(p, betas=(0.9, 1.0))
