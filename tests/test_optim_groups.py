"""tinygrad_like.optim with parameter groups: every optimizer against torch.optim, step by step, with the same
parameters, groups, settings and random gradients (float64: equal to 1e-12), the state and its state_dict, the
settings changed between steps, and the refusals PyTorch makes."""

import numpy as np
import pytest

from tinygrad_like import Tensor, nn, no_grad, optim

SHAPES = [(3, 4), (4,), (4, 2), (2,)]
STEPS = 10


def _start(dtype=np.float64):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _gradients(dtype=np.float64):
    """A random gradient per parameter and step; None (no gradient: the parameter is skipped) now and then."""
    rng = np.random.default_rng(1)
    return [[None if (step + i) % 4 == 3 else rng.standard_normal(s).astype(dtype) for i, s in enumerate(SHAPES)]
            for step in range(STEPS)]


# Each case: the optimizer's name, its groups (indices into SHAPES with the group's own settings), its settings.
# The same names and values go to both libraries.
CASES = {
    "sgd": ("SGD", [{"params": [0, 1], "lr": 0.05, "weight_decay": 0.1}, {"params": [2, 3]}], {"lr": 0.1}),
    "sgd_momentum_dampening": ("SGD", [{"params": [0, 1], "momentum": 0.5, "dampening": 0.3},
                                       {"params": [2, 3], "weight_decay": 0.01}],
                               {"lr": 0.1, "momentum": 0.9}),
    "sgd_nesterov": ("SGD", [{"params": [0, 1], "lr": 0.02}, {"params": [2, 3], "momentum": 0.5, "weight_decay": 0.2}],
                     {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "sgd_maximize": ("SGD", [{"params": [0, 1, 2, 3]}], {"lr": 0.1, "momentum": 0.8, "maximize": True}),
    "adam": ("Adam", [{"params": [0, 2], "weight_decay": 0.1}, {"params": [1, 3], "lr": 0.02, "betas": (0.8, 0.99)}],
             {"lr": 0.05}),
    "adam_amsgrad": ("Adam", [{"params": [0, 1], "amsgrad": True}, {"params": [2, 3], "eps": 1e-3}],
                     {"lr": 0.05, "weight_decay": 0.01}),
    "adam_maximize": ("Adam", [{"params": [0, 1, 2, 3]}], {"lr": 0.05, "maximize": True}),
    "adamw": ("AdamW", [{"params": [0, 2], "weight_decay": 0.3}, {"params": [1, 3], "weight_decay": 0.0}],
              {"lr": 0.05}),
    "adamw_amsgrad": ("AdamW", [{"params": [0, 1, 2, 3]}], {"lr": 0.05, "amsgrad": True, "betas": (0.7, 0.9)}),
    "rmsprop": ("RMSprop", [{"params": [0, 1]}, {"params": [2, 3], "lr": 0.003, "alpha": 0.9, "weight_decay": 0.1}],
                {}),
    "rmsprop_centered_momentum": ("RMSprop", [{"params": [0, 1], "centered": True},
                                              {"params": [2, 3], "momentum": 0.9, "eps": 1e-4}],
                                  {"lr": 0.01, "momentum": 0.5, "centered": False}),
    "rmsprop_centered_alone": ("RMSprop", [{"params": [0, 1, 2, 3]}], {"centered": True, "maximize": True}),
    "adagrad": ("Adagrad", [{"params": [0, 1], "lr_decay": 0.1}, {"params": [2, 3], "weight_decay": 0.2}], {}),
    "adagrad_accumulator": ("Adagrad", [{"params": [0, 2], "initial_accumulator_value": 0.5, "lr": 0.1},
                                        {"params": [1, 3], "lr_decay": 0.05, "eps": 1e-6}], {"lr_decay": 0.01}),
}


def _run(lib, tensor, name, groups, settings, dtype, change_at=None):
    """STEPS steps of the optimizer on fresh parameters; at ``change_at`` the second group's lr is changed through
    param_groups. Returns the parameters and the optimizer."""
    params = [tensor(a) for a in _start(dtype)]
    opt = getattr(lib.optim, name)([{**g, "params": [params[i] for i in g["params"]]} for g in groups], **settings)
    for step, grads in enumerate(_gradients(dtype)):
        if step == change_at:
            opt.param_groups[-1]["lr"] = 0.5 * opt.param_groups[-1]["lr"]
        for p, g in zip(params, grads):
            p.grad = None if g is None else tensor(g, grad=True)
        opt.step()
    return params, opt


def _ours(a, grad=False):
    return Tensor(a) if grad else Tensor(a, requires_grad=True)


@pytest.fixture
def _theirs(torch):
    def make(a, grad=False):
        return torch.tensor(a) if grad else torch.tensor(a, requires_grad=True)
    return make


def _numpy(value):
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizers_with_groups_match_pytorch(case, torch, _theirs):
    import tinygrad_like

    name, groups, settings = CASES[case]
    ours, opt = _run(tinygrad_like, _ours, name, groups, settings, np.float64, change_at=6)
    theirs, opt_t = _run(torch, _theirs, name, groups, settings, np.float64, change_at=6)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, _numpy(q), rtol=1e-12, atol=1e-12)
    # the state: the same buffers under the same names for the same parameters
    state, state_t = opt.state_dict(), opt_t.state_dict()
    assert sorted(state["state"]) == sorted(state_t["state"])
    for i, buffers in state["state"].items():
        assert set(buffers) == set(state_t["state"][i])
        for key, value in buffers.items():
            np.testing.assert_allclose(value, _numpy(state_t["state"][i][key]), rtol=1e-12, atol=1e-12)
    for group, group_t in zip(state["param_groups"], state_t["param_groups"]):
        assert set(group) <= set(group_t)
        assert {k: v for k, v in group.items()} == {k: group_t[k] for k in group}


@pytest.mark.parametrize("case", ["sgd_nesterov", "adamw", "rmsprop_centered_momentum", "adagrad_accumulator"])
def test_float32_parameters_stay_float32_and_match_pytorch(case, torch, _theirs):
    import tinygrad_like

    name, groups, settings = CASES[case]
    ours, _ = _run(tinygrad_like, _ours, name, groups, settings, np.float32)
    theirs, _ = _run(torch, _theirs, name, groups, settings, np.float32)
    for p, q in zip(ours, theirs):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, _numpy(q), rtol=2e-5, atol=2e-6)


def test_a_group_added_during_training_matches_pytorch(torch, _theirs):
    import tinygrad_like

    def run(lib, tensor):
        params = [tensor(a) for a in _start()]
        opt = lib.optim.RMSprop(params[:2], lr=0.01, momentum=0.9)
        for step, grads in enumerate(_gradients()):
            if step == 4:  # e.g. unfreezing a layer
                opt.add_param_group({"params": params[2:], "lr": 0.001, "centered": True})
            for p, g in zip(params, grads):
                p.grad = None if g is None else tensor(g, grad=True)
            opt.step()
        return params, opt

    (ours, opt), (theirs, opt_t) = run(tinygrad_like, _ours), run(torch, _theirs)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, _numpy(q), rtol=1e-12, atol=1e-12)
    assert [g["centered"] for g in opt.param_groups] == [g["centered"] for g in opt_t.param_groups] == [False, True]


@pytest.mark.parametrize("case", ["sgd_momentum_dampening", "adam_amsgrad", "rmsprop_centered_momentum",
                                  "adagrad_accumulator"])
def test_state_dict_resumes_every_group_exactly(case):
    name, groups, settings = CASES[case]
    straight, _ = _run_split(name, groups, settings, None)
    resumed, _ = _run_split(name, groups, settings, 5)
    for p, q in zip(straight, resumed):
        np.testing.assert_array_equal(p.data, q.data)


def _run_split(name, groups, settings, stop_at):
    """STEPS steps; with ``stop_at``, the optimizer is saved there and a new one (on copies of the parameters)
    loads the state and goes on."""
    params = [_ours(a) for a in _start()]

    def make(ps):
        return getattr(optim, name)([{**g, "params": [ps[i] for i in g["params"]]} for g in groups], **settings)

    opt = make(params)
    for step, grads in enumerate(_gradients()):
        if step == stop_at:
            saved, copies = opt.state_dict(), [_ours(p.data.copy()) for p in params]
            opt.step()  # a later step leaves the saved state alone
            params = copies
            opt = make(params)
            opt.param_groups[0]["lr"] = 123.0  # overwritten by the loaded settings
            opt.load_state_dict(saved)
        for p, g in zip(params, grads):
            p.grad = None if g is None else Tensor(g)
        opt.step()
    return params, opt


def test_param_groups_hold_every_setting_with_pytorchs_defaults(torch):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model_t = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    for name in ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]:
        group = getattr(optim, name)(model.parameters()).param_groups[0]
        group_t = getattr(torch.optim, name)(model_t.parameters()).param_groups[0]
        assert set(group) <= set(group_t), name
        assert {k: v for k, v in group.items() if k != "params"} == {k: group_t[k] for k in group if k != "params"}
        assert len(group["params"]) == len(group_t["params"]) == 4


def test_weight_decay_only_on_weights_the_lecture_way():
    """The usual recipe: decay the weights, not the biases nor the norms' parameters."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
    no_decay = [p for name, p in model.named_parameters() if not name.endswith("weight")]
    opt = optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-2)
    before = [p.data.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = Tensor(np.zeros_like(p.data))  # no gradient signal: only the decay moves the weights
    opt.step()
    for (name, p), b in zip(model.named_parameters(), before):
        expected = b * (1 - 1e-2 * 0.1) if name.endswith("weight") else b
        np.testing.assert_allclose(p.data, expected, rtol=1e-6)
    for group in opt.param_groups:  # a schedule by hand, as lectures write it
        group["lr"] *= 0.5
    assert [g["lr"] for g in opt.param_groups] == [5e-3, 5e-3]


def test_an_optimizer_written_the_pytorch_way():
    class PlainSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.state[p]["updates"] = self.state[p].get("updates", 0) + 1
                        p.sub_(group["lr"] * p.grad)

    w = Tensor([1.0, 2.0], requires_grad=True)
    opt = PlainSGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.step()
    assert w.tolist() == [0.0, 0.0] and opt.state[w] == {"updates": 1}
    assert opt.state_dict() == {"state": {0: {"updates": 1}}, "param_groups": [{"lr": 0.5, "params": [0]}]}
    assert "PlainSGD (" in repr(opt) and "lr: 0.5" in repr(opt)


def test_step_with_a_closure_returns_its_loss(torch):
    w = Tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    assert w.tolist() == pytest.approx([0.8, -1.6])


def test_zero_grad_sets_to_none_or_zeros_in_place():
    w = Tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([w])
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def _p(*shape):
    return Tensor(np.ones(shape), requires_grad=True)


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda a, b: optim.SGD([{"params": [a]}, {"params": [a, b]}]), ValueError,
     "SGD: some parameters appear in more than one parameter group"),
    (lambda a, b: optim.SGD([a, b, a]), ValueError, "SGD: a parameter appears twice in parameter group 0"),
    (lambda a, b: optim.SGD(a), TypeError, "SGD: params must be an iterable of Tensors or dicts"),
    (lambda a, b: optim.SGD({a, b}), TypeError, "ordered collection"),
    (lambda a, b: optim.SGD([{"lr": 0.1}]), ValueError, r"SGD.add_param_group: the group has no 'params'"),
    (lambda a, b: optim.SGD([{"params": []}]), ValueError, "SGD: got an empty parameter list"),
    (lambda a, b: optim.SGD([a * 2]), ValueError, r"SGD: parameter 0 \(shape \(2,\)\) is not a leaf"),
    (lambda a, b: optim.SGD([a], nesterov=True), ValueError,
     "SGD: Nesterov momentum requires a momentum and zero dampening, got momentum=0, dampening=0"),
    (lambda a, b: optim.SGD([a], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda a, b: optim.SGD([{"params": [a], "nesterov": True}], momentum=0.9, dampening=0.5), ValueError,
     "Nesterov momentum requires"),
    (lambda a, b: optim.SGD([{"params": [a], "lr": -1.0}]), ValueError, "SGD: lr must be >= 0, got -1.0"),
    (lambda a, b: optim.SGD([{"params": [a], "lr": 0.1}], lr=-1.0), ValueError, "SGD: lr must be >= 0"),
    (lambda a, b: optim.Adam([{"params": [a], "betas": (0.9, 1.5)}]), ValueError, r"Adam: betas must be in \[0, 1\)"),
    (lambda a, b: optim.RMSprop([a], alpha=-0.1), ValueError, "RMSprop: alpha must be >= 0, got -0.1"),
    (lambda a, b: optim.RMSprop([a], momentum=-1), ValueError, "RMSprop: momentum must be >= 0"),
    (lambda a, b: optim.Adagrad([a], lr_decay=-1), ValueError, "Adagrad: lr_decay must be >= 0, got -1"),
    (lambda a, b: optim.Adagrad([a], initial_accumulator_value=-1), ValueError,
     "Adagrad: initial_accumulator_value must be >= 0"),
    (lambda a, b: optim.SGD([a]).add_param_group([b]), TypeError,
     "SGD.add_param_group: expects a dict with 'params', got list"),
    (lambda a, b: optim.Adam([a]).add_param_group({"params": b, "eps": -1}), ValueError, "Adam: eps must be >= 0"),
])
def test_misuse_is_refused_as_pytorch_refuses_it(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make(_p(2), _p(3))


def test_pytorch_refuses_the_same(torch):
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.SGD([{"params": [a]}, {"params": [a, b]}])
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        torch.optim.SGD([a], nesterov=True)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        torch.optim.SGD(a)
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.SGD([a * 2])


def test_load_state_dict_refuses_other_groups():
    a, b = _p(2), _p(3)
    two = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], momentum=0.9)
    with pytest.raises(ValueError, match="SGD.load_state_dict: the state has 2 parameter groups, this optimizer has 1"):
        optim.SGD([a, b]).load_state_dict(two.state_dict())
    swapped = optim.SGD([{"params": [a, b]}, {"params": [_p(1)]}])
    with pytest.raises(ValueError, match="parameter group 0 of the state is for 1 parameters, this optimizer's has 2"):
        swapped.load_state_dict(two.state_dict())
    saved = two.state_dict()
    saved["param_groups"][1]["lr"] = -0.5
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -0.5"):
        optim.SGD([{"params": [_p(2)]}, {"params": [_p(3)]}]).load_state_dict(saved)


def test_lr_lives_in_the_groups_only():
    opt = optim.SGD([_p(2)], lr=0.1)
    assert not hasattr(opt, "lr") and opt.defaults["lr"] == 0.1 and opt.param_groups[0]["lr"] == 0.1


def test_adagrad_state_exists_from_the_start_and_a_later_group_uses_its_own_accumulator():
    a, b = _p(2), _p(3)
    opt = optim.Adagrad([{"params": [a], "initial_accumulator_value": 5.0}], initial_accumulator_value=0.1)
    assert opt.state[a]["sum"].tolist() == [0.1, 0.1]  # the constructor's value, as PyTorch (tested above)
    opt.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    assert opt.state[b]["sum"].tolist() == [2.0, 2.0, 2.0]
    assert opt.state_dict()["state"] == {0: {"step": 0.0, "sum": pytest.approx(np.full(2, 0.1))},
                                         1: {"step": 0.0, "sum": pytest.approx(np.full(3, 2.0))}}
