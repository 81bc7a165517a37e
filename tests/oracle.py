"""PyTorch as an oracle, shared by the test files of the layers and the new ops (imported, not collected)."""

import numpy as np

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


def compare_with_torch(torch, ours_fn, theirs_fn, arrays, dtype, rtol=None, seed=99):
    """Run ``ours_fn`` on Tensors and ``theirs_fn`` on torch tensors made from the same ``arrays``; check that
    values, result dtypes and gradients (under one random upstream gradient) agree. Returns our output."""
    from tinygrad_like import Tensor

    rtol = TOLERANCE[dtype] if rtol is None else rtol
    ours_in = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    assert ours.dtype == dtype and theirs.dtype == getattr(torch, np.dtype(dtype).name)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=rtol)
    upstream = np.random.default_rng(seed).standard_normal(ours.shape).astype(dtype)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    for o, t in zip(ours_in, theirs_in):
        if o.requires_grad and (o.grad is not None or t.grad is not None):  # both None: an unused input
            assert o.grad.dtype == o.dtype
            np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=rtol, atol=rtol)
    return ours
