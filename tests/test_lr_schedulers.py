"""tinygrad_like.optim.lr_scheduler against torch.optim.lr_scheduler: the same schedule on two parameter groups
gives the same learning rates, bit for bit, step by step (and OneCycleLR the same momentum or betas); state_dict
resumes a schedule; misuse is refused."""

import math

import numpy as np
import pytest

import tinygrad_like
from tinygrad_like import Tensor, optim

STEPS = 30
LRS = (0.1, 0.02)


def _optimizer(lib, tensor, name="SGD", **settings):
    a, b = tensor(np.ones(2)), tensor(np.ones(3))
    return getattr(lib.optim, name)([{"params": [a]}, {"params": [b], "lr": LRS[1]}], lr=LRS[0], **settings)


def _ours(a):
    return Tensor(a, requires_grad=True)


# Each case: (make the scheduler from (lr_scheduler module, optimizer), steps). The same code runs on both.
CASES = {
    "step": lambda s, o: s.StepLR(o, step_size=4, gamma=0.5),
    "multistep": lambda s, o: s.MultiStepLR(o, milestones=[3, 8, 8, 15], gamma=0.3),
    "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "linear_default": lambda s, o: s.LinearLR(o),
    "linear_decay": lambda s, o: s.LinearLR(o, start_factor=0.9, end_factor=0.05, total_iters=12),
    "lambda": lambda s, o: s.LambdaLR(o, lambda epoch: 0.95**epoch),
    "lambda_per_group": lambda s, o: s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: min(1.0, (e + 1) / 10)]),
    "cosine": lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "cosine_long": lambda s, o: s.CosineAnnealingLR(o, T_max=STEPS),
    "onecycle": lambda s, o: s.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=STEPS),
    "onecycle_three_phase_linear": lambda s, o: s.OneCycleLR(o, max_lr=0.4, epochs=3, steps_per_epoch=10,
                                                             pct_start=0.25, anneal_strategy="linear",
                                                             three_phase=True, base_momentum=[0.8, 0.7],
                                                             div_factor=10.0, final_div_factor=100.0),
    "onecycle_no_momentum": lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=STEPS + 5, cycle_momentum=False),
    "sequential_warmup_cosine": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.1, total_iters=5), s.CosineAnnealingLR(o, T_max=20)], milestones=[5]),
    "sequential_three": lambda s, o: s.SequentialLR(
        o, [s.ExponentialLR(o, gamma=0.9), s.StepLR(o, step_size=3, gamma=0.5), s.LambdaLR(o, lambda e: 1 / (e + 1))],
        milestones=[4, 12]),
}


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_schedules_match_pytorch_bit_for_bit(case, optimizer, torch):
    settings = {"momentum": 0.9} if optimizer == "SGD" else {}
    opt = _optimizer(tinygrad_like, _ours, optimizer, **settings)
    opt_t = _optimizer(torch, lambda a: torch.tensor(a, requires_grad=True), optimizer, **settings)
    ours, theirs = CASES[case](optim.lr_scheduler, opt), CASES[case](torch.optim.lr_scheduler, opt_t)
    assert ours.get_last_lr() == theirs.get_last_lr()
    assert _momenta(opt) == _momenta(opt_t)
    for _ in range(STEPS):
        opt.step()
        opt_t.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()  # exact: the same float operations
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt_t.param_groups]
        assert _momenta(opt) == _momenta(opt_t)  # OneCycleLR cycles them; the others leave them alone
    assert ours.last_epoch == theirs.last_epoch
    assert [g["initial_lr"] for g in opt.param_groups] == [g["initial_lr"] for g in opt_t.param_groups]


@pytest.mark.parametrize("settings", [
    {},
    {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.05, "threshold_mode": "abs", "cooldown": 2},
    {"patience": 1, "cooldown": 1, "min_lr": [0.01, 0.001], "threshold": 0.01},
    {"patience": 0, "factor": 0.2, "min_lr": 0.005, "eps": 1e-3},
])
def test_reduce_on_plateau_matches_pytorch(settings, torch):
    rng = np.random.default_rng(0)
    # a metric that improves, stalls, jumps and stalls again, both ways
    metrics = np.concatenate([np.linspace(1, 0.5, 8), 0.5 + 0.01 * rng.standard_normal(10), [0.2, 0.9],
                              0.9 + 0.02 * rng.standard_normal(20), np.linspace(1, 2, 8)])
    opt = _optimizer(tinygrad_like, _ours)
    opt_t = _optimizer(torch, lambda a: torch.tensor(a, requires_grad=True))
    ours = optim.lr_scheduler.ReduceLROnPlateau(opt, **settings)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_t, **settings)
    changes = 0
    for i, metric in enumerate(metrics):
        before = ours.get_last_lr()
        ours.step(Tensor(metric) if i % 2 else float(metric))  # a loss Tensor or a number
        theirs.step(float(metric))
        assert ours.get_last_lr() == theirs.get_last_lr() == [g["lr"] for g in opt.param_groups]
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == (
            theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter)
        changes += ours.get_last_lr() != before
    assert changes >= 2  # the sequence does reduce the lr


@pytest.mark.parametrize("case", ["step", "multistep", "lambda", "cosine", "onecycle", "sequential_warmup_cosine",
                                  "linear_decay"])
def test_state_dict_resumes_a_schedule(case):
    make = CASES[case]
    opt = _optimizer(tinygrad_like, _ours, momentum=0.9)
    scheduler = make(optim.lr_scheduler, opt)
    straight = []
    for step in range(STEPS):
        scheduler.step()
        straight.append((scheduler.get_last_lr(), _momenta(opt)))
        if step == 11:
            saved_opt, saved = opt.state_dict(), scheduler.state_dict()
    opt2 = _optimizer(tinygrad_like, _ours, momentum=0.9)
    scheduler2 = make(optim.lr_scheduler, opt2)  # as PyTorch advises: the scheduler first, then the states
    opt2.load_state_dict(saved_opt)
    scheduler2.load_state_dict(saved)
    resumed = []
    for _ in range(12, STEPS):
        scheduler2.step()
        resumed.append((scheduler2.get_last_lr(), _momenta(opt2)))
    assert resumed == straight[12:]


def test_state_dict_holds_pytorchs_entries(torch):
    opt = _optimizer(tinygrad_like, _ours)
    opt_t = _optimizer(torch, lambda a: torch.tensor(a, requires_grad=True))
    ours = optim.lr_scheduler.StepLR(opt, 3)
    theirs = torch.optim.lr_scheduler.StepLR(opt_t, 3)
    for _ in range(4):
        ours.step()
        opt_t.step()
        theirs.step()
    state, state_t = ours.state_dict(), theirs.state_dict()
    for key in ["step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_last_lr"]:
        assert state[key] == state_t[key], key
    lambdas = optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0).state_dict()["lr_lambdas"]
    assert lambdas == [None, None]  # plain functions are not saved, as in PyTorch


def test_a_lecture_style_warmup_then_cosine_loop():
    """Warm-up then cosine, stepped once per batch; the lr the optimizer steps with is the scheduled one."""
    w = Tensor([0.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    warmup = optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4)
    cosine = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    scheduler = optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[4])
    used = []
    for _ in range(12):
        before = w.item()
        w.grad = Tensor([1.0])
        opt.step()
        used.append(before - w.item())
        scheduler.step()
    expected = [0.25, 0.4375, 0.625, 0.8125] + [(1 + math.cos(math.pi * k / 8)) / 2 for k in range(8)]
    np.testing.assert_allclose(used, expected, rtol=1e-6, atol=1e-7)


def test_onecycle_follows_its_formula():
    opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.0, momentum=0.9)
    scheduler = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.5, div_factor=4.0,
                                              final_div_factor=5.0)
    lrs, momenta = [scheduler.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(9):  # up for 4 steps, down for 5
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        momenta.append(opt.param_groups[0]["momentum"])
    assert lrs[0] == 0.25 and max(lrs) == lrs[4] == 1.0 and lrs[-1] == pytest.approx(0.25 / 5, rel=1e-12)
    assert lrs[2] == pytest.approx((0.25 + 1.0) / 2, rel=1e-12)  # halfway up the cosine
    assert momenta[0] == 0.95 and momenta[4] == 0.85 and momenta[-1] == pytest.approx(0.95, rel=1e-12)


def test_schedulers_refuse_bad_arguments():
    opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    s = optim.lr_scheduler
    cases = [
        (lambda: s.StepLR(opt, 0), ValueError, "StepLR: step_size must be a positive int, got 0"),
        (lambda: s.CosineAnnealingLR(opt, 2.5), ValueError, "CosineAnnealingLR: T_max must be a positive int, got 2.5"),
        (lambda: s.StepLR([opt], 1), TypeError, "StepLR: expects an optimizer, got list"),
        (lambda: s.LambdaLR(opt, [lambda e: 1.0, lambda e: 2.0]), ValueError,
         "LambdaLR: lr_lambda has 2 values, the optimizer 1 parameter groups"),
        (lambda: s.LambdaLR(opt, 0.5), TypeError, "LambdaLR: lr_lambda 0 is a float, not a function of the epoch"),
        (lambda: s.LinearLR(opt, start_factor=0), ValueError, r"LinearLR: start_factor must be in \(0, 1\], got 0"),
        (lambda: s.LinearLR(opt, end_factor=1.5), ValueError, r"LinearLR: end_factor must be in \[0, 1\]"),
        (lambda: s.OneCycleLR(opt, max_lr=1.0), ValueError, "OneCycleLR: give total_steps, or epochs and steps_per_"),
        (lambda: s.OneCycleLR(opt, 1.0, total_steps=10, pct_start=1), ValueError,
         r"OneCycleLR: pct_start must be a float in \[0, 1\], got 1"),
        (lambda: s.OneCycleLR(opt, 1.0, total_steps=10, anneal_strategy="exp"), ValueError,
         "anneal_strategy must be 'cos' or 'linear'"),
        (lambda: s.OneCycleLR(optim.Adagrad([Tensor([1.0], requires_grad=True)]), 1.0, total_steps=3), ValueError,
         "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, Adagrad has neither"),
        (lambda: s.ReduceLROnPlateau(opt, factor=1.0), ValueError, "ReduceLROnPlateau: factor must be < 1.0"),
        (lambda: s.ReduceLROnPlateau(opt, mode="lowest"), ValueError, "mode must be 'min' or 'max'"),
        (lambda: s.ReduceLROnPlateau(opt, threshold_mode="pct"), ValueError, "threshold_mode must be 'rel' or"),
        (lambda: s.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2]), ValueError, "min_lr has 2 values"),
        (lambda: s.SequentialLR(opt, [s.StepLR(opt, 2)], milestones=[3]), ValueError,
         "SequentialLR: expects one milestone fewer than schedulers, got 1 schedulers and 1 milestones"),
        (lambda: s.SequentialLR(opt, [s.StepLR(opt, 2), s.ReduceLROnPlateau(opt)], [3]), ValueError,
         "scheduler 1 is a ReduceLROnPlateau"),
        (lambda: s.SequentialLR(opt, [s.StepLR(optim.SGD([Tensor([1.0], requires_grad=True)]), 2)], []), ValueError,
         r"SequentialLR: scheduler 0 \(StepLR\) belongs to another optimizer"),
        (lambda: s.ExponentialLR([opt], 0.9), TypeError, "ExponentialLR: expects an optimizer, got list"),
        (lambda: s.StepLR(opt, 2, last_epoch=5), KeyError, "resuming at last_epoch=5 needs 'initial_lr'"),
    ]
    for make, exc, pattern in cases:
        fresh = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
        opt.param_groups[:] = fresh.param_groups  # no initial_lr left by an earlier case
        with pytest.raises(exc, match=pattern):
            make()


def test_onecycle_refuses_to_step_past_its_end():
    opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
    scheduler = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="OneCycleLR: stepped 4 times, past total_steps=3"):
        scheduler.step()


def test_every_scheduler_imports_as_in_pytorch():
    from tinygrad_like.optim.lr_scheduler import (  # noqa: F401
        CosineAnnealingLR,
        ExponentialLR,
        LambdaLR,
        LinearLR,
        LRScheduler,
        MultiStepLR,
        OneCycleLR,
        ReduceLROnPlateau,
        SequentialLR,
        StepLR,
    )

    assert issubclass(ReduceLROnPlateau, LRScheduler) and optim.StepLR is StepLR
