"""nn.utils' gradient clipping against PyTorch's: the same total norm and the same clipped gradients."""

import math

import numpy as np
import pytest

import tinygrad_like
from tinygrad_like import Tensor, nn

SHAPES = [(3, 4), (4,), (2, 2, 3)]


def parameters_with_grads(torch, scale, seed=0, dtype=np.float64):
    """The same parameters, with the same gradients (of size ~``scale``), here and in PyTorch; one parameter has no
    gradient (skipped by both)."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in SHAPES:
        value, grad = rng.standard_normal(shape).astype(dtype), (scale * rng.standard_normal(shape)).astype(dtype)
        p, q = Tensor(value, requires_grad=True), torch.tensor(value, requires_grad=True)
        p.grad, q.grad = Tensor(grad.copy()), torch.tensor(grad.copy())
        ours.append(p)
        theirs.append(q)
    ours.append(Tensor(np.ones(2, dtype), requires_grad=True))
    theirs.append(torch.ones(2, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True))
    return ours, theirs


def assert_same_grads(ours, theirs, rtol=1e-12):
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert p.grad.dtype == p.dtype
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=rtol, atol=1e-15)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("scale", [0.01, 10.0])  # below max_norm (left as they are) and above (scaled down)
def test_clip_grad_norm_matches_pytorch(torch, norm_type, scale):
    ours, theirs = parameters_with_grads(torch, scale)
    total = nn.utils.clip_grad_norm_(ours, max_norm=1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.0, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    assert_same_grads(ours, theirs)


def test_clip_grad_norm_of_float32_gradients_matches_pytorch(torch):
    ours, theirs = parameters_with_grads(torch, 10.0, seed=1, dtype=np.float32)
    total = nn.utils.clip_grad_norm_(iter(ours), 0.5)  # any iterable, e.g. model.parameters() or a generator
    expected = torch.nn.utils.clip_grad_norm_(iter(theirs), 0.5)
    assert total.dtype == np.float32
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-6)
    assert_same_grads(ours, theirs, rtol=1e-6)


def test_clip_grad_norm_takes_one_tensor_and_parameters_without_grads(torch):
    p, q = Tensor([3.0, 4.0], requires_grad=True), torch.tensor([3.0, 4.0], requires_grad=True)
    p.grad, q.grad = Tensor([3.0, 4.0]), torch.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == torch.nn.utils.clip_grad_norm_(q, 1.0).item() == 5.0
    np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-6)
    none = nn.utils.clip_grad_norm_([Tensor([1.0], requires_grad=True)], 1.0)
    assert none.item() == torch.nn.utils.clip_grad_norm_([torch.tensor([1.0], requires_grad=True)], 1.0).item() == 0


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_nonfinite_norm_is_refused_on_request_or_used_as_pytorch_does(torch, bad):
    ours, theirs = parameters_with_grads(torch, 1.0)
    ours[0].grad.data[0, 0] = theirs[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2.0 of the gradients is (inf|nan)"
                                           r", so they cannot be clipped; .* set error_if_nonfinite=False"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert ours[1].grad.data.tolist() == theirs[1].grad.tolist()  # nothing changed before the refusal
    total = nn.utils.clip_grad_norm_(ours, 1.0, foreach=False)
    np.testing.assert_equal(total.item(), torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=False).item())
    for p, q in zip(ours, theirs):
        if q.grad is not None:
            np.testing.assert_equal(p.grad.data, q.grad.numpy())  # nan or 0 alike, and no RuntimeWarning


@pytest.mark.parametrize("clip_value", [0.5, 3])
def test_clip_grad_value_matches_pytorch(torch, clip_value):
    ours, theirs = parameters_with_grads(torch, 2.0)
    assert nn.utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert_same_grads(ours, theirs)
    assert max(np.abs(p.grad.data).max() for p in ours if p.grad is not None) <= clip_value


def test_the_utils_are_reachable_as_in_pytorch(torch):
    import inspect

    from tinygrad_like.nn.utils import clip_grad_norm_
    assert tinygrad_like.nn.utils.clip_grad_norm_ is clip_grad_norm_
    for name in ("clip_grad_norm_", "clip_grad_value_"):
        ours, theirs = inspect.signature(getattr(nn.utils, name)), inspect.signature(getattr(torch.nn.utils, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
               [(p.name, p.default) for p in theirs.parameters.values()]


def test_a_training_step_with_clipping_keeps_the_update_small():
    # the lecture order: backward, clip, step
    model = nn.Linear(3, 1)
    opt = tinygrad_like.optim.SGD(model.parameters(), lr=1.0)
    before = [p.data.copy() for p in model.parameters()]
    loss = (model(Tensor(np.full((4, 3), 100.0, np.float32))) ** 2).mean()
    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
    assert total.item() > 1.0
    step = np.sqrt(sum(((p.data - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    np.testing.assert_allclose(step, 1.0, rtol=1e-5)
