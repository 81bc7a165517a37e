"""nn.functional: the activations, linear and the losses, against PyTorch in float32 and float64 (random upstream
gradients), and the errors that name the function."""

import numpy as np
import pytest
from helpers import compare_with_torch

from tinygrad_like import Tensor
from tinygrad_like.nn import functional as F

DTYPES = [np.float32, np.float64]


FUNCTIONAL = {
    "relu": (lambda x: F.relu(x), "relu", {}),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2}),
    "gelu": (lambda x: F.gelu(x), "gelu", {}),
    "softplus": (lambda x: F.softplus(x), "softplus", {}),
    "sigmoid": (lambda x: F.sigmoid(x), "sigmoid", {}),
    "tanh": (lambda x: F.tanh(x), "tanh", {}),
    "softmax": (lambda x: F.softmax(x, dim=0), "softmax", {"dim": 0}),
    "log_softmax": (lambda x: F.log_softmax(x), "log_softmax", {"dim": -1}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_activations_match_pytorch(name, dtype, torch):
    ours, theirs, kwargs = FUNCTIONAL[name]
    x = np.random.default_rng(len(name)).uniform(-3, 3, (4, 5)).astype(dtype)
    x[np.abs(x) < 0.05] = 0.5  # no kinks within rounding
    compare_with_torch(torch, ours, lambda t: getattr(torch.nn.functional, theirs)(t, **kwargs), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_linear_matches_pytorch(dtype, torch):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((4, 3), (2, 3), (2,))]
    compare_with_torch(torch, F.linear, torch.nn.functional.linear, arrays, dtype)
    compare_with_torch(torch, F.linear, torch.nn.functional.linear, arrays[:2], dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_pytorch_for_every_reduction(reduction, torch):
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    compare_with_torch(torch, lambda t: F.mse_loss(t, target, reduction=reduction),
                       lambda t: torch.nn.functional.mse_loss(t, torch.tensor(target), reduction=reduction),
                       [x], np.float64)
    p, y = rng.uniform(0.05, 0.95, (5, 3)), rng.uniform(0, 1, (5, 3))
    compare_with_torch(torch, lambda t: F.binary_cross_entropy(t, y, reduction=reduction),
                       lambda t: torch.nn.functional.binary_cross_entropy(t, torch.tensor(y), reduction=reduction),
                       [p], np.float64)
    labels = rng.integers(0, 3, 5)
    compare_with_torch(torch, lambda t: F.cross_entropy(t, labels, reduction=reduction),
                       lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(labels), reduction=reduction),
                       [x], np.float64)


def test_mse_loss_refuses_mismatched_shapes_and_reductions():
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(3, 1\) differs from input shape \(3,\)"):
        F.mse_loss(Tensor.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse_loss(Tensor.zeros(3), np.zeros(3), reduction="avg")
