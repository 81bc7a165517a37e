"""The losses of nn (loss modules) and nn.functional, against PyTorch: values for every reduction, gradients of
the input (and of the target where PyTorch gives one) under a random upstream gradient, second order (the
gradient of grad . v), and PyTorch's refusals of bad input."""

import math

import numpy as np
import pytest
from helpers import agree_with_torch

import tinygrad_like
from tinygrad_like import Tensor, toposort
from tinygrad_like import nn as tnn
from tinygrad_like.nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]
TOL = {"rtol": 1e-10, "atol": 1e-12}


def check(torch, ours, theirs, arrays, grads=None, seed=0):
    """``ours`` on Tensors and ``theirs`` on torch tensors made of ``arrays`` (float64 ones require grad unless
    ``grads`` says which do): the values, the first-order gradients under a random upstream gradient, and the
    second-order ones (the gradient of sum(grad * v), v random) agree (``agree_with_torch``). Returns our output."""
    grads = [a.dtype.kind == "f" for a in arrays] if grads is None else grads
    ours_in = [Tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    theirs_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    out = ours(*ours_in)
    agree_with_torch(torch, [out], [theirs(*theirs_in)], [t for t, g in zip(ours_in, grads) if g],
                     [t for t, g in zip(theirs_in, grads) if g], seed=seed, **TOL)
    return out


def labels(rng, shape, classes, ignore_index=None):
    """Random class indices of ``shape``, a few replaced by ``ignore_index`` (always at least one)."""
    y = rng.integers(0, classes, shape)
    if ignore_index is not None:
        y.flat[::3] = ignore_index
    return y


# ----------------------------------------------------------------------------------------------------------
# cross_entropy and nll_loss
# ----------------------------------------------------------------------------------------------------------


CLASS_OPTIONS = [  # (weighted, ignore_index present in the targets or None, label_smoothing)
    (False, None, 0.0), (True, None, 0.0), (False, -100, 0.0), (False, None, 0.1), (True, 2, 0.0), (False, -100, 0.1),
    (True, -100, 0.1),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, ignore_index, label_smoothing", CLASS_OPTIONS)
def test_cross_entropy_with_class_indices_matches_pytorch(torch, reduction, weighted, ignore_index, label_smoothing):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((7, 4)), rng.uniform(0.5, 2.0, 4)
    y = labels(rng, 7, 4, ignore_index)
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing,
              "ignore_index": -100 if ignore_index is None else ignore_index}
    check(torch, lambda t: F.cross_entropy(t, y, weight=Tensor(w) if weighted else None, **kwargs),
          lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(y), weight=torch.tensor(w) if weighted else None,
                                                      **kwargs), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("plain", [True, False])
def test_cross_entropy_on_k_dimensional_input_matches_pytorch(torch, reduction, plain):
    # (N, C, d1, d2), classes on axis 1, as a segmentation or a (B, C, T) sequence model gives
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.uniform(0.5, 2.0, 3)
    y = labels(rng, (2, 4, 5), 3, None if plain else 1)
    kwargs = {"reduction": reduction} if plain else {"reduction": reduction, "ignore_index": 1, "label_smoothing": 0.1}
    check(torch, lambda t: F.cross_entropy(t, y, weight=None if plain else Tensor(w), **kwargs),
          lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(y), weight=None if plain else torch.tensor(w),
                                                      **kwargs), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.0), (True, 0.1)])
def test_cross_entropy_with_class_probabilities_matches_pytorch_and_differentiates_the_target(
        torch, reduction, shape, weighted, label_smoothing):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(shape), rng.uniform(0.5, 2.0, 4)
    p = rng.dirichlet(np.ones(4), (shape[0],) + shape[2:]) if len(shape) > 1 else rng.dirichlet(np.ones(4))
    p = np.moveaxis(p, -1, 1) if len(shape) > 2 else p
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing}
    check(torch, lambda t, q: F.cross_entropy(t, q, weight=Tensor(w) if weighted else None, **kwargs),
          lambda t, q: torch.nn.functional.cross_entropy(t, q, weight=torch.tensor(w) if weighted else None, **kwargs),
          [x, p])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_of_one_unbatched_sample_matches_pytorch(torch, reduction, smoothing):
    x = np.random.default_rng(4).standard_normal(5)
    check(torch, lambda t: F.cross_entropy(t, np.array(3), reduction=reduction, label_smoothing=smoothing),
          lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(3), reduction=reduction,
                                                      label_smoothing=smoothing), [x])


def test_plain_cross_entropy_is_the_fused_rule_with_its_numbers():
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    y = rng.integers(0, 3, 6)
    loss, method = F.cross_entropy(x, y), x.cross_entropy(y)
    assert ops_of(loss) == ops_of(method) and "cross_entropy" in ops_of(loss) and loss.item() == method.item()
    weighted = F.cross_entropy(x, y, weight=Tensor(np.ones(3)))  # the composed path, the same loss
    assert "cross_entropy" not in ops_of(weighted) and "log_softmax" in ops_of(weighted)
    np.testing.assert_allclose(weighted.item(), loss.item(), rtol=1e-14)


def ops_of(t):
    return [node.op for node in toposort(t) if node.op]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2), (4,)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_pytorch(torch, reduction, shape, weighted):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(shape), rng.uniform(0.5, 2.0, 4)
    y = labels(rng, shape[:1] + shape[2:] if len(shape) > 1 else (), 4, None if len(shape) == 1 else 0)
    kwargs = {"reduction": reduction, "ignore_index": 0}
    check(torch, lambda t: F.nll_loss(t.log_softmax(1 if t.ndim > 1 else 0), y,
                                      weight=Tensor(w) if weighted else None, **kwargs),
          lambda t: torch.nn.functional.nll_loss(t.log_softmax(1 if t.ndim > 1 else 0), torch.tensor(y),
                                                 weight=torch.tensor(w) if weighted else None, **kwargs), [x])


def test_every_target_ignored_gives_nan_for_the_mean_and_zero_for_the_sum(torch):
    x, y = np.zeros((3, 2)), np.full(3, -100)
    for reduction in ("mean", "sum"):
        ours = F.cross_entropy(Tensor(x), y, reduction=reduction).item()
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y), reduction=reduction).item()
        np.testing.assert_equal(ours, theirs)


def test_cross_entropy_and_nll_loss_refuse_as_pytorch():
    x = Tensor(np.zeros((4, 3)))
    with pytest.raises(IndexError, match=r"cross_entropy: Target 5 is out of bounds: the input \(shape \(4, 3\)\) "
                                         r"has 3 classes"):
        F.cross_entropy(x, np.array([0, 1, 5, 2]))
    with pytest.raises(IndexError, match=r"nll_loss: Target -1 is out of bounds"):
        F.nll_loss(x, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy: target must be integer class indices of shape \(4,\) or "
                                         r"class probabilities of the input's shape \(4, 3\), got int64 of shape "
                                         r"\(3,\)"):
        F.cross_entropy(x, np.array([0, 1, 1]))
    with pytest.raises(RuntimeError, match=r"cross_entropy: target must be integer class indices .* got float64 of "
                                           r"shape \(4,\)"):
        F.cross_entropy(x, np.array([0.0, 1, 1, 2]))
    with pytest.raises(RuntimeError, match=r"nll_loss: target must be integer class indices of shape \(4,\), got "
                                           r"bool"):
        F.nll_loss(x, np.array([True, False, True, True]))
    with pytest.raises(ValueError, match=r"cross_entropy: target must be .* of shape \(2, 4\) .* got int64 of shape "
                                         r"\(2, 5\) \(input shape \(2, 3, 4\)\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3, 4))), np.zeros((2, 5), np.int64))
    with pytest.raises(RuntimeError, match=r"cross_entropy: a target of the input's shape \(4, 3\) holds class "
                                           r"probabilities and must be floating point, got int64"):
        F.cross_entropy(x, np.zeros((4, 3), np.int64))
    with pytest.raises(RuntimeError, match=r"cross_entropy: ignore_index \(1\) is not supported for class "
                                           r"probabilities"):
        F.cross_entropy(x, np.full((4, 3), 1 / 3), ignore_index=1)
    with pytest.raises(RuntimeError, match=r"cross_entropy: weight must hold one value per class, shape \(3,\), got "
                                           r"shape \(2,\)"):
        F.cross_entropy(x, np.array([0, 1, 1, 2]), weight=Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"nll_loss: weight requires grad, but nll_loss is not differentiable"):
        F.nll_loss(x, np.array([0, 1, 1, 2]), weight=Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(RuntimeError, match=r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(x, np.array([0, 1, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, np.array([0, 1, 1, 2]), reduction="avg")
    with pytest.raises(RuntimeError, match=r"cross_entropy: expects floating point input, got int64"):
        F.cross_entropy(Tensor(np.zeros((4, 3), np.int64)), np.array([0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"nll_loss: expects input of shape \(C,\), \(N, C\) or \(N, C, d1, ...\), "
                                         r"got shape \(\)"):
        F.nll_loss(Tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match=r"cross_entropy: the input .* is the output of softmax"):
        F.cross_entropy(Tensor(np.zeros((4, 3)), requires_grad=True).softmax(1), np.array([0, 1, 1, 2]),
                        weight=Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"cross_entropy: target must be integer class indices of shape \(\) or .* "
                                         r"got int64 of shape \(1,\)"):  # PyTorch's backward fails on this one
        F.cross_entropy(Tensor(np.zeros(3)), np.array([1]))


def test_cross_entropy_takes_pytorchs_positional_arguments_and_deprecated_size_average(torch):
    rng = np.random.default_rng(7)
    x, y, w = rng.standard_normal((5, 3)), rng.integers(0, 3, 5), rng.uniform(0.5, 2, 3)
    ours = F.cross_entropy(Tensor(x), y, Tensor(w), None, -100, None, "sum", 0.1)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y), torch.tensor(w), None, -100, None,
                                               "sum", 0.1)
    np.testing.assert_allclose(ours.item(), theirs.item(), **TOL)
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        summed = F.mse_loss(Tensor(x), np.zeros((5, 3)), size_average=False)
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        assert tnn.L1Loss(reduce=False)(Tensor(x), np.zeros((5, 3))).shape == (5, 3)
    np.testing.assert_allclose(summed.item(), (x ** 2).sum(), **TOL)


# ----------------------------------------------------------------------------------------------------------
# Regression losses and binary cross-entropy
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, kwargs", [("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}),
                                          ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0})])
def test_regression_losses_match_pytorch_for_input_and_target(torch, reduction, name, kwargs):
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    check(torch, lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kwargs),
          lambda a, b: getattr(torch.nn.functional, name)(a, b, reduction=reduction, **kwargs), [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_weighted_mse_and_l1_match_pytorch_weight_included(torch, reduction, name):
    rng = np.random.default_rng(9)
    x, t, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, (3, 4))
    check(torch, lambda a, b, c: getattr(F, name)(a, b, reduction=reduction, weight=c),
          lambda a, b, c: getattr(torch.nn.functional, name)(a, b, reduction=reduction, weight=c), [x, t, w])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 4)])
def test_binary_cross_entropy_matches_pytorch(torch, reduction, weight_shape):
    rng = np.random.default_rng(10)
    p, y = rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))
    w = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape)
    check(torch,
          lambda a, b: F.binary_cross_entropy(a, b, weight=None if w is None else Tensor(w), reduction=reduction),
          lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, weight=None if w is None else torch.tensor(w),
                                                                reduction=reduction), [p, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_binary_cross_entropy_with_logits_matches_pytorch(torch, reduction, weighted, pos_weighted):
    rng = np.random.default_rng(11)
    x, y = 3 * rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    w, pw = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 3.0, 4)

    def kwargs(make):
        return {"weight": make(w) if weighted else None, "pos_weight": make(pw) if pos_weighted else None,
                "reduction": reduction}

    check(torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, **kwargs(Tensor)),
          lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(a, b, **kwargs(torch.tensor)), [x, y])


def test_binary_cross_entropy_with_logits_is_finite_for_huge_logits(torch):
    x, y = np.array([-1000.0, -30.0, 30.0, 1000.0]), np.array([1.0, 0.0, 1.0, 0.0])
    check(torch, lambda a: F.binary_cross_entropy_with_logits(a, Tensor(y), reduction="none"),
          lambda a: torch.nn.functional.binary_cross_entropy_with_logits(a, torch.tensor(y), reduction="none"), [x])


def test_pointwise_losses_refuse_as_pytorch():
    x = Tensor(np.full((4, 3), 0.5))
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        with pytest.raises(ValueError, match=rf"{name}: target shape \(4, 1\) differs from input shape \(4, 3\)"):
            getattr(F, name)(x, np.full((4, 1), 0.5))
    with pytest.raises(RuntimeError, match=r"smooth_l1_loss: beta must not be negative, got -1.0"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(RuntimeError, match=r"binary_cross_entropy: all elements of target should be between 0 and 1, "
                                           r"got values from 0.5 to 2.0"):
        F.binary_cross_entropy(x, np.array([[0.5, 2.0, 1.0]] * 4))
    with pytest.raises(ValueError, match=r"binary_crossentropy: the input must be probabilities in \[0, 1\]"):
        F.binary_cross_entropy(x + 1, x)
    with pytest.raises(RuntimeError, match=r"binary_cross_entropy_with_logits: target must be floating point"):
        F.binary_cross_entropy_with_logits(x, np.ones((4, 3), np.int64))
    with pytest.raises(RuntimeError, match=r"binary_cross_entropy_with_logits: pos_weight of shape \(2,\) cannot be "
                                           r"broadcast to the input's shape \(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"binary_cross_entropy: weight requires grad"):
        F.binary_cross_entropy(x, x, weight=Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError, match=r"mse_loss: weight shape \(3,\) differs from input shape \(4, 3\)"):
        F.mse_loss(x, x, weight=Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"l1_loss: reduction must be 'mean', 'sum' or 'none', got 'x'"):
        F.l1_loss(x, x, reduction="x")


# ----------------------------------------------------------------------------------------------------------
# The loss modules
# ----------------------------------------------------------------------------------------------------------

W3 = np.array([0.5, 1.0, 2.0])
MODULES = [  # (name, constructor keywords with numpy weights, input kind)
    ("MSELoss", {}, "regression"), ("L1Loss", {"reduction": "sum"}, "regression"),
    ("SmoothL1Loss", {"beta": 0.5, "reduction": "none"}, "regression"),
    ("CrossEntropyLoss", {"weight": W3, "ignore_index": 1, "label_smoothing": 0.1}, "classes"),
    ("CrossEntropyLoss", {"reduction": "sum"}, "classes"), ("CrossEntropyLoss", {}, "probabilities"),
    ("NLLLoss", {"weight": W3, "reduction": "none"}, "classes"),
    ("BCELoss", {"weight": W3}, "binary"), ("BCEWithLogitsLoss", {"pos_weight": W3, "reduction": "sum"}, "regression"),
]


@pytest.mark.parametrize("name, kwargs, kind", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_loss_modules_match_pytorchs(torch, name, kwargs, kind):
    rng = np.random.default_rng(12)
    x = rng.uniform(0.05, 0.95, (5, 3)) if kind == "binary" else rng.standard_normal((5, 3))
    target = {"regression": rng.uniform(0, 1, (5, 3)), "binary": rng.uniform(0, 1, (5, 3)),
              "classes": np.array([0, 1, 2, 1, 0]), "probabilities": rng.dirichlet(np.ones(3), 5)}[kind]
    ours = getattr(tnn, name)(**{k: Tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                        for k, v in kwargs.items()})
    prepare = (lambda t: t.log_softmax(1)) if name == "NLLLoss" else (lambda t: t)
    check(torch, lambda t: ours(prepare(t), Tensor(target)), lambda t: theirs(prepare(t), torch.tensor(target)), [x])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not ours.parameters() and ours.reduction == theirs.reduction


def test_loss_module_signatures_are_pytorchs(torch):
    import inspect
    for name in ("MSELoss", "L1Loss", "SmoothL1Loss", "NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss"):
        ours, theirs = inspect.signature(getattr(tnn, name)), inspect.signature(getattr(torch.nn, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
               [(p.name, p.default) for p in theirs.parameters.values()], name
    for name in ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits"):
        ours, theirs = inspect.signature(getattr(F, name)), inspect.signature(getattr(torch.nn.functional, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
               [(p.name, p.default) for p in theirs.parameters.values()], name


# ----------------------------------------------------------------------------------------------------------
# one_hot
# ----------------------------------------------------------------------------------------------------------


def test_one_hot_matches_pytorch_and_refuses_as_it_does(torch):
    y = np.array([[0, 2], [3, 1]])
    for num_classes in (-1, 4, 6):
        ours, theirs = F.one_hot(Tensor(y), num_classes), torch.nn.functional.one_hot(torch.tensor(y), num_classes)
        assert ours.dtype == np.int64 and not ours.requires_grad
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert F.one_hot(np.array(2), 3).tolist() == [0, 0, 1] and F.one_hot(np.zeros(0, np.int64), 3).shape == (0, 3)
    assert F.one_hot(Tensor([1, 0])).tolist() == [[0, 1], [1, 0]]  # int32 (Python ints) are indices too
    with pytest.raises(RuntimeError, match=r"one_hot: expects integer class indices, got float64"):
        F.one_hot(Tensor(np.array([1.0])))
    with pytest.raises(RuntimeError, match=r"one_hot: class values must be non-negative, got -1"):
        F.one_hot(np.array([1, -1]))
    with pytest.raises(RuntimeError, match=r"one_hot: class values must be smaller than num_classes \(3\), got 3"):
        F.one_hot(np.array([1, 3]), 3)
    with pytest.raises(RuntimeError, match=r"one_hot: cannot infer the number of classes from an empty tensor"):
        F.one_hot(np.zeros(0, np.int64))


# ----------------------------------------------------------------------------------------------------------
# Lecture-style code, run as PyTorch code with `import tinygrad_like as torch`
# ----------------------------------------------------------------------------------------------------------


def fit_polynomial(torch, model, steps=5):
    """PyTorch's "Learning PyTorch with examples" (its nn module version, float32), unchanged but for the step
    count."""
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    loss_fn = torch.nn.MSELoss(reduction='sum')
    learning_rate = 1e-6
    losses = []
    for _ in range(steps):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return losses


def test_learning_pytorch_with_examples_runs_unchanged_with_the_same_losses(torch):
    tg = tinygrad_like
    linear = torch.nn.Linear(3, 1)
    theirs = torch.nn.Sequential(linear, torch.nn.Flatten(0, 1))
    ours = tg.nn.Sequential(tg.nn.Linear(3, 1).copy_(linear.weight.detach().numpy(), linear.bias.detach().numpy()),
                            tg.nn.Flatten(0, 1))
    expected = fit_polynomial(torch, theirs)
    np.testing.assert_allclose(fit_polynomial(tg, ours), expected, rtol=1e-5)
    assert expected[-1] < expected[0]


def test_a_gpt_style_loss_with_ignore_index_minus_one_matches_pytorch(torch):
    # nanoGPT: F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
    rng = np.random.default_rng(13)
    logits, targets = rng.standard_normal((2, 5, 7)), rng.integers(0, 7, (2, 5))
    targets[1, 3:] = -1  # padding

    def loss(functional, a, t):
        return functional.cross_entropy(a.view(-1, a.size(-1)), t.view(-1), ignore_index=-1)

    check(torch, lambda a: loss(F, a, Tensor(targets)), lambda a: loss(torch.nn.functional, a, torch.tensor(targets)),
          [logits])


def train_classifier(torch, model, x, y, steps=5):
    """A learner's loop: a loss module, an optimizer, gradient clipping."""
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        optimizer.step()
        history.append(loss.item())
    return history


def test_a_classifier_trains_with_a_loss_module_and_clipping_as_in_pytorch(torch):
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32)
    theirs = torch.nn.Linear(4, 3)
    ours = tinygrad_like.nn.Linear(4, 3).copy_(theirs.weight.detach().numpy(), theirs.bias.detach().numpy())
    expected = train_classifier(torch, theirs, x, y)
    np.testing.assert_allclose(train_classifier(tinygrad_like, ours, x, y), expected, rtol=1e-5)
    assert expected[-1] < expected[0]
