"""Inside NumPy code a Tensor behaves as an ndarray: NumPy's methods with NumPy's meaning when written the NumPy way,
PyTorch's when written the PyTorch way; under ``numpy_meaning`` (check_gradients' forward) NumPy's throughout."""

import numpy as np
import pytest

from tinygrad_like import Tensor
from tinygrad_like.tensors import numpy_meaning

rng = np.random.default_rng(0)
A = rng.standard_normal((5, 3))


def leaf(a):
    return Tensor(a.copy(), requires_grad=True)


def gradient_of(fn, a, seed=1):
    """fn's values and the gradient of sum(fn(x) * u) for a random u (never a uniform upstream gradient)."""
    x = leaf(a)
    out = fn(x)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    return out.data, x.grad.data, upstream


def test_var_written_the_numpy_way_is_numpys_biased_variance():
    values, grad, u = gradient_of(lambda x: x.var(axis=0), A)  # cs231n's batch norm: sample_var = x.var(axis=0)
    np.testing.assert_allclose(values, A.var(axis=0))
    np.testing.assert_allclose(grad, 2 * (A - A.mean(axis=0)) / len(A) * u)
    np.testing.assert_allclose(Tensor(A).var(axis=0, ddof=1).data, A.var(axis=0, ddof=1))
    np.testing.assert_allclose(Tensor(A).std(axis=1, keepdims=True).data, A.std(axis=1, keepdims=True))


def test_var_written_the_pytorch_way_is_the_sample_variance():
    torch = pytest.importorskip("torch")
    t = torch.tensor(A)
    np.testing.assert_allclose(Tensor(A).var(0).data, t.var(0).numpy())
    np.testing.assert_allclose(Tensor(A).var(dim=1, keepdim=True).data, t.var(dim=1, keepdim=True).numpy())
    np.testing.assert_allclose(Tensor(A).var(0, unbiased=False).data, t.var(0, unbiased=False).numpy())
    np.testing.assert_allclose(Tensor(A).std(correction=0).data, t.std(correction=0).numpy())
    np.testing.assert_allclose(Tensor(A).var().data, t.var().numpy())


def test_under_numpy_meaning_a_call_that_says_neither_is_numpys():
    with numpy_meaning():
        np.testing.assert_allclose(Tensor(A).var().data, A.var())
        np.testing.assert_allclose(Tensor(A).std(0).data, A.std(0))
        b = rng.standard_normal((2, 3, 4))
        np.testing.assert_array_equal(Tensor(b).transpose(1, 0, 2).data, b.transpose(1, 0, 2))
        np.testing.assert_array_equal(Tensor(b).transpose().data, b.transpose())
        np.testing.assert_array_equal(Tensor(A).transpose(0, 1).data, A)  # NumPy: the identity permutation
    np.testing.assert_array_equal(Tensor(A).transpose(0, 1).data, A.T)  # PyTorch: axes 0 and 1 swapped


def test_var_refuses_conflicting_spellings_naming_them():
    with pytest.raises(TypeError, match="var: give one of correction, unbiased and ddof, got correction, ddof"):
        Tensor(A).var(0, correction=1, ddof=0)
    with pytest.raises(TypeError, match="var: axis given twice"):
        Tensor(A).var(0, axis=1)
    with pytest.raises(TypeError, match="std: unexpected keyword argument"):
        Tensor(A).std(out=None)


def test_ndarray_methods_record_the_graph():
    b = rng.standard_normal((2, 3, 4, 5))
    values, grad, u = gradient_of(lambda x: x.transpose(0, 3, 1, 2), b)  # im2col code's NCHW shuffle
    np.testing.assert_array_equal(values, b.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(grad, u.transpose(0, 2, 3, 1))
    values, grad, u = gradient_of(lambda x: x.copy() * 2, A)
    np.testing.assert_array_equal(grad, 2 * u)
    values, grad, u = gradient_of(lambda x: x.ravel(), A)
    np.testing.assert_array_equal(grad, u.reshape(A.shape))
    x = leaf(A.astype(np.float32))
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float32 and np.all(x.grad.data == 3)


def test_a_copy_is_memory_of_its_own_so_an_in_place_change_does_not_reach_the_original():
    x = leaf(A)
    h = x * 1
    out = h.copy()
    out[out < 0] = 0  # the mask assignment of a learner's relu
    assert (h.data < 0).any() and not (out.data < 0).any()
    upstream = rng.standard_normal(A.shape)
    out.backward(upstream)
    np.testing.assert_array_equal(x.grad.data, np.where(A * 1 < 0, 0, upstream))


def test_size_is_numpys_int_and_pytorchs_call():
    t = Tensor(A)
    assert t.size == 15 and isinstance(t.size, int) and t.size + 1 == 16
    assert t.size() == (5, 3) and t.size(0) == 5 and t.size(-1) == 3
    assert t.numel() == 15


def test_a_tensor_written_into_a_numpy_array_in_check_gradients_forward_raises_naming_the_fix():
    x = leaf(A)
    out = np.zeros((5, 3))
    with numpy_meaning(), pytest.raises(TypeError, match=r"turned into a NumPy array here \(e\.g\. written into "
                                                         r"one: out\[:, :\] = x @ w"):
        out[:, :] = x * 2
    out[:, :] = x * 2  # outside it, np.asarray of a Tensor is its values, as the API says
    np.testing.assert_array_equal(out, 2 * A)


TARGET = rng.standard_normal((5, 4))


def batchnorm_forward(p, x):
    h = x @ p["w"]
    mu = h.mean(0)
    var = h.var(0)  # positional: NumPy's ddof=0 inside check_gradients, as on the arrays
    hn = (h - mu) / np.sqrt(var + 1e-5)
    return np.sum(np.tanh(hn) * TARGET)


def batchnorm_backward(p, x):
    h = x @ p["w"]
    n = len(h)
    mu, var = h.mean(0), h.var(0)
    inv = 1 / np.sqrt(var + 1e-5)
    hn = (h - mu) * inv
    dhn = (1 - np.tanh(hn) ** 2) * TARGET
    dh = inv / n * (n * dhn - dhn.sum(0) - hn * (dhn * hn).sum(0))  # the textbook batch-norm backward
    return {"w": x.T @ dh}


def test_check_gradients_gives_the_users_numpy_code_numpys_meaning():
    from tinygrad_like import check_gradients

    params = {"w": rng.standard_normal((3, 4))}
    report = check_gradients(batchnorm_forward, batchnorm_backward, params, A)
    assert report.ok, str(report)


def test_check_gradients_names_the_line_that_writes_a_tensor_into_an_array():
    from tinygrad_like import check_gradients

    def forward(p, x):
        out = np.zeros((5, 4))
        out[:, :] = x @ p["w"]
        return np.sum(out ** 2)

    with pytest.raises(TypeError, match="build the result from Tensor operations or np.concatenate / np.stack") as e:
        check_gradients(forward, lambda p, x: {"w": 2 * x.T @ (x @ p["w"])}, {"w": rng.standard_normal((3, 4))}, A)
    assert any(frame.name == "forward" for frame in e.traceback)


def test_transpose_takes_pytorchs_keywords_and_numpys_permutations(torch):
    b = rng.standard_normal((2, 3, 4))
    t = torch.tensor(b)
    np.testing.assert_array_equal(Tensor(b).transpose(dim0=0, dim1=2).data, t.transpose(dim0=0, dim1=2).numpy())
    np.testing.assert_array_equal(Tensor(b).transpose(0, 2).data, t.transpose(0, 2).numpy())
    np.testing.assert_array_equal(Tensor(b).transpose((2, 0, 1)).data, b.transpose((2, 0, 1)))
    np.testing.assert_array_equal(Tensor(b).transpose(2, 0, 1).data, b.transpose(2, 0, 1))
