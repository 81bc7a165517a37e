"""tinygrad_like.optim: SGD, Adam and AdamW (weight decay, per-parameter state, state_dict) and the learning-rate
schedulers, step by step against the formulas and PyTorch, and misuse refused clearly."""

import math

import numpy as np
import pytest

from tinygrad_like import Tensor, nn, optim

StepLR, CosineAnnealingLR = optim.lr_scheduler.StepLR, optim.lr_scheduler.CosineAnnealingLR


# ----------------------------------------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------------------------------------


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


def test_sgd_keeps_float32_parameters_float32():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    optim.SGD([w], lr=0.1).step()
    assert w.dtype == np.float32 and w.tolist() == pytest.approx([0.8, 1.6])


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_sgd_with_momentum_and_adam_match_pytorch_on_a_quadratic(name, torch):
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


def _problem(dtype):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in ((3, 4), (4,))], rng.standard_normal((5, 3)).astype(dtype)


def _loss(w, b, x, lib):
    return ((x @ w + b).tanh() ** 2).sum() if lib is None else ((lib.tensor(x) @ w + b).tanh() ** 2).sum()


def _run_ours(make, dtype, steps, skip_bias_at=()):
    (w0, b0), x = _problem(dtype)
    w, b = Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)
    opt = make([w, b])
    for step in range(steps):
        opt.zero_grad()
        _loss(w, b if step not in skip_bias_at else b.detach(), Tensor(x), None).backward()
        opt.step()
    return w.data, b.data


def _run_torch(torch, make, dtype, steps, skip_bias_at=()):
    (w0, b0), x = _problem(dtype)
    w, b = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt = make([w, b])
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        _loss(w, b if step not in skip_bias_at else b.detach(), x, torch).backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy()


OPTIMIZERS = {
    "sgd_weight_decay": (lambda p: optim.SGD(p, lr=0.1, weight_decay=0.05), "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    "sgd_momentum_weight_decay": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05), "SGD",
                                  {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}),
    "adam_weight_decay": (lambda p: optim.Adam(p, lr=0.05, weight_decay=0.1), "Adam",
                          {"lr": 0.05, "weight_decay": 0.1}),
    "adamw_default": (lambda p: optim.AdamW(p, lr=0.05), "AdamW", {"lr": 0.05}),
    "adamw": (lambda p: optim.AdamW(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3), "AdamW",
              {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.3}),
}


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_match_pytorch_step_by_step(name, dtype, rtol, torch):
    ours, theirs, kwargs = OPTIMIZERS[name]
    skipped = (2, 3)  # the bias gets no gradient at these steps: per-parameter state, as PyTorch
    w, b = _run_ours(ours, dtype, 8, skipped)
    w_t, b_t = _run_torch(torch, lambda p: getattr(torch.optim, theirs)(p, **kwargs), dtype, 8, skipped)
    assert w.dtype == dtype and b.dtype == dtype
    np.testing.assert_allclose(w, w_t, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b, b_t, rtol=rtol, atol=rtol)


def test_weight_decay_formulas_on_one_step():
    p0, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])

    def one_step(opt_class, **kwargs):
        p = Tensor(p0, requires_grad=True)
        (p * Tensor(g)).sum().backward()
        opt_class([p], **kwargs).step()
        return p.data

    np.testing.assert_allclose(one_step(optim.SGD, lr=0.1, weight_decay=0.5), p0 - 0.1 * (g + 0.5 * p0))
    # AdamW's first step: the weights shrink by lr * weight_decay, then move by lr * sign(g) (m / sqrt(v) = sign)
    np.testing.assert_allclose(one_step(optim.AdamW, lr=0.1, weight_decay=0.5, eps=0.0),
                               p0 * (1 - 0.1 * 0.5) - 0.1 * np.sign(g), rtol=1e-12)
    # Adam's L2 term enters the gradient, so its first step is lr * sign(g + wd * p)
    np.testing.assert_allclose(one_step(optim.Adam, lr=0.1, weight_decay=0.5, eps=0.0),
                               p0 - 0.1 * np.sign(g + 0.5 * p0), rtol=1e-12)


def test_frozen_parameters_are_accepted_and_left_alone_as_in_pytorch(torch):
    """Fine-tuning code freezes a layer and hands every parameter to the optimizer: PyTorch accepts that."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = [p.data.copy() for p in model[0].parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(Tensor(np.ones((5, 3), np.float32))).square().sum().backward()
    opt.step()
    assert all(np.array_equal(a, p.data) for a, p in zip(frozen, model[0].parameters()))
    assert model[2].weight.grad is not None
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=False)], lr=0.1)  # PyTorch's own acceptance
    assert len(theirs.param_groups[0]["params"]) == 1


def test_optimizer_accepts_a_module_and_skips_params_without_grad():
    mlp = nn.MLP([3, 2], seed=0)
    opt = optim.Adam(mlp)
    before = mlp.layers[0].weight.data.copy()
    opt.step()  # no gradients yet: nothing moves
    np.testing.assert_array_equal(before, mlp.layers[0].weight.data)


@pytest.mark.parametrize("params, exc, pattern", [
    ([], ValueError, "SGD: got an empty parameter list"),
    ([np.ones(3)], TypeError, "SGD: parameter 0 is a ndarray, not a Tensor"),
])
def test_bad_parameters_are_refused_naming_the_parameter(params, exc, pattern):
    with pytest.raises(exc, match=pattern):
        optim.SGD(params, lr=0.1)


def test_bad_hyperparameters_are_refused():
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -0.1"):
        optim.SGD(p, lr=-0.1)
    optim.SGD(p, lr=0)  # allowed, as in PyTorch (a frozen group, a schedule starting at 0)
    with pytest.raises(ValueError, match="SGD: momentum must be >= 0, got -0.5"):
        optim.SGD(p, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas must be in"):
        optim.Adam(p, betas=(0.9, 1.0))


@pytest.mark.parametrize("make, pattern", [
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "SGD: weight_decay must be >= 0, got -1"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "AdamW: weight_decay must be >= 0"),
    (lambda p: optim.Adam(p, eps=-1.0), "Adam: eps must be >= 0"),
    (lambda p: optim.AdamW(p, betas=(0.9,)), r"AdamW: betas must be in \[0, 1\)"),
])
def test_bad_settings_are_refused_naming_the_optimizer(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make([Tensor([1.0], requires_grad=True)])


# ----------------------------------------------------------------------------------------------------------
# Optimizer state
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda p: optim.Adam(p, lr=0.05), lambda p: optim.AdamW(p, lr=0.05)])
def test_state_dict_resumes_training_exactly(make):
    (w0, b0), x = _problem(np.float64)

    def params():
        return [Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)]

    def train(opt, ps, steps):
        for _ in range(steps):
            opt.zero_grad()
            _loss(*ps, Tensor(x), None).backward()
            opt.step()

    straight = params()
    train(make(straight), straight, 6)
    first = params()
    opt = make(first)
    train(opt, first, 3)
    saved, halfway = opt.state_dict(), [p.data.copy() for p in first]
    train(opt, first, 2)  # later steps leave the saved state alone
    restarted = [Tensor(a, requires_grad=True) for a in halfway]
    opt2 = make(restarted)
    opt2.load_state_dict(saved)
    train(opt2, restarted, 3)
    for p, q in zip(restarted, straight):
        np.testing.assert_array_equal(p.data, q.data)
    assert saved["param_groups"][0]["params"] == [0, 1] and set(saved["state"]) == {0, 1}


def test_state_dict_layout_is_pytorchs(torch):
    ours = optim.Adam([Tensor([1.0], requires_grad=True)], lr=0.1, weight_decay=0.01)
    theirs = torch.optim.Adam([torch.tensor([1.0], requires_grad=True)], lr=0.1, weight_decay=0.01)
    group, group_t = ours.state_dict()["param_groups"][0], theirs.state_dict()["param_groups"][0]
    assert set(group) <= set(group_t) and all(group[k] == group_t[k] for k in group if k != "betas")
    assert tuple(group["betas"]) == tuple(group_t["betas"])


def test_load_state_dict_refuses_a_state_that_does_not_fit():
    a = optim.SGD([Tensor.ones(2, requires_grad=True)], lr=0.1, momentum=0.9)
    a.param_groups[0]["params"][0].grad = Tensor.ones(2)
    a.step()
    b = optim.SGD([Tensor.ones(3, requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: momentum_buffer of parameter 0 has shape \(2,\)"):
        b.load_state_dict(a.state_dict())
    c = optim.SGD([Tensor.ones(2, requires_grad=True), Tensor.ones(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="SGD.load_state_dict: parameter group 0 of the state is for 1 parameters, "
                                         "this optimizer's has 2"):
        c.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="SGD.load_state_dict: expects the dict state_dict"):
        c.load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: parameter group 0 of the state has no \['dampening', "
                                         r"'momentum', 'nesterov'\] \(the state of another optimizer\?\)"):
        optim.SGD([Tensor.ones(1, requires_grad=True)], lr=0.1).load_state_dict(
            optim.Adam([Tensor.ones(1, requires_grad=True)]).state_dict())


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedulers
# ----------------------------------------------------------------------------------------------------------


SCHEDULERS = {
    "step": (lambda o: StepLR(o, step_size=3), lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3)),
    "step_gamma": (lambda o: optim.lr_scheduler.StepLR(o, 2, gamma=0.5),
                   lambda t, o: t.optim.lr_scheduler.StepLR(o, 2, gamma=0.5)),
    "cosine": (lambda o: CosineAnnealingLR(o, T_max=7), lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 7)),
    "cosine_eta_min": (lambda o: CosineAnnealingLR(o, 4, eta_min=0.01),
                       lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 4, eta_min=0.01)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_match_pytorch_step_by_step(name, torch):
    ours_make, theirs_make = SCHEDULERS[name]
    opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
    opt_t = torch.optim.SGD([torch.tensor([1.0], requires_grad=True)], lr=0.3)
    ours, theirs = ours_make(opt), theirs_make(torch, opt_t)
    assert ours.get_last_lr() == theirs.get_last_lr() == [0.3]
    for _ in range(20):  # past T_max: the cosine comes back up, as PyTorch's
        opt_t.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()  # bit for bit
        assert opt.param_groups[0]["lr"] == opt_t.param_groups[0]["lr"]


def test_scheduled_lr_is_what_the_optimizer_steps_with():
    p = Tensor([0.0], requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    scheduler = StepLR(opt, step_size=1, gamma=0.5)
    moves = []
    for _ in range(3):
        before = p.item()
        p.grad = Tensor([1.0])
        opt.step()
        scheduler.step()
        moves.append(before - p.item())
    assert moves == [1.0, 0.5, 0.25]


def test_cosine_annealing_follows_its_formula():
    opt = optim.Adam([Tensor([1.0], requires_grad=True)], lr=0.1)
    scheduler = CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for epoch in range(1, 11):
        scheduler.step()
        expected = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * epoch / 10)) / 2
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_lr_scheduler_imports_as_in_pytorch():
    from tinygrad_like.optim.lr_scheduler import CosineAnnealingLR as Cosine
    from tinygrad_like.optim.lr_scheduler import StepLR as Step

    assert (Step, Cosine) == (StepLR, CosineAnnealingLR)
