"""NumPy code on Tensors: np.exp(t), np.sum(t, axis=1), ndarray @ t, np.where ... record the graph. Every op of
the op table (tests/op_table.py) that a NumPy function computes is called that way and checked against PyTorch."""

import numpy as np
import pytest
from helpers import leaf
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import OPS, names

from tinygrad_like import Tensor, gradcheck, numpy_protocol

rng = np.random.default_rng(0)


@pytest.mark.parametrize("name", names(lambda op: op.numpy is not None))
def test_numpy_code_on_tensors_matches_pytorch(name, torch):
    op = OPS[name]
    arrays = op.arrays(seed=len(name))
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    out = op.numpy(*xs)
    assert isinstance(out, Tensor) and out.requires_grad
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream)
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = op.torch(torch, *txs)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_the_blogs_functions_differentiate_as_they_are():
    """sigmoid, softmax and crossentropy as the post writes them (columns of samples), on Tensors."""

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def softmax(x):
        return np.exp(x) / np.sum(np.exp(x), axis=0)

    def crossentropy(y, out):
        return -np.sum(y * np.log(out))

    w, z = leaf((4, 3), 1), leaf((3, 5), 2)
    y = np.eye(4)[:, rng.integers(0, 4, 5)]
    loss = crossentropy(y, softmax(w @ sigmoid(z)))
    assert isinstance(loss, Tensor) and loss.requires_grad
    loss.backward()
    w2, z2 = Tensor(w.data, requires_grad=True), Tensor(z.data, requires_grad=True)
    (-(Tensor(y) * (w2 @ z2.sigmoid()).softmax(axis=0).log()).sum()).backward()
    np.testing.assert_allclose(w.grad.data, w2.grad.data, rtol=1e-12)
    np.testing.assert_allclose(z.grad.data, z2.grad.data, rtol=1e-12)


def test_numpy_swapaxes_runs_on_tensors():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = np.swapaxes(x, 0, -1)
    assert isinstance(y, Tensor) and y.shape == (3, 2) and y.op == "permute"
    np.testing.assert_array_equal(y.data, x.data.T)


def test_numpy_functions_pass_gradcheck_with_broadcasting():
    a, b = leaf((3, 1), 3), leaf((4,), 4)
    assert gradcheck(lambda a, b: np.maximum(a, b) * np.minimum(b, a), a, b)
    assert gradcheck(lambda a, b: np.where(a > 0, a * b, np.exp(b)), a, b)
    assert gradcheck(lambda a, b: np.clip(b, np.array([-1.0, 0, -0.5, 0.2]), 1.5) + a, a, b)
    assert gradcheck(lambda a, b: np.concatenate([np.transpose(a), np.reshape(b, (1, 4))], axis=1), a, b)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_reductions_over_any_axes_give_numpys_values_and_gradients(shape, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = data.draw(st.booleans())
    x = leaf(shape, 5)
    for fn in (np.sum, np.mean, np.max):
        out = fn(x, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(out.data, fn(x.data, axis=axis, keepdims=keepdims), rtol=1e-12)
        assert gradcheck(lambda t, fn=fn: fn(t, axis=axis, keepdims=keepdims), x)


def test_operators_with_an_array_on_either_side_give_tensors_and_keep_float32():
    x = leaf((2, 3), 6, dtype=np.float32)
    a = np.ones((2, 3))  # float64: a NumPy array next to a float32 tensor gives the wider dtype, as PyTorch
    for result in (a + x, a * x, a - x, a / x, np.float64(2) * x, np.float32(3) - x):
        assert isinstance(result, Tensor) and result.requires_grad
    assert (np.float64(2) * x).dtype == np.float32 and np.exp(x).dtype == np.float32
    assert np.where(x > 0, x, 0.0).dtype == np.float32 and np.maximum(x, 0.5).dtype == np.float32
    assert isinstance(np.ones((4, 2)) @ x, Tensor) and (np.ones((4, 2)) @ x).shape == (4, 3)


def test_arrays_and_tensors_mix_in_operators_and_give_tensors():
    t = Tensor([1.0, 2.0])
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    out = np.array([1.0, 1.0], dtype=np.float32) + t
    assert isinstance(out, Tensor) and out.tolist() == [2.0, 3.0]
    out = np.ones((2, 2), np.float32) @ Tensor([[1.0], [2.0]])
    assert isinstance(out, Tensor) and out.tolist() == [[3.0], [3.0]]
    assert isinstance(np.float32(2) * t, Tensor)


def test_array_protocol_honours_copy():
    t = Tensor([1.0, 2.0])
    assert np.array(t, copy=True) is not t.data and np.asarray(t) is t.data


def test_values_out_are_the_array():
    x = leaf((2, 3), 7)
    assert np.asarray(x) is x.data
    assert np.array(x).tolist() == x.data.tolist()


def test_non_differentiable_functions_give_tensors_without_grad_or_plain_results():
    x = leaf((2, 3), 8)
    for result in (x > 0, np.greater(x, 0), np.isfinite(x), np.sign(x), np.argmax(x, axis=1), np.less(np.zeros(3), x)):
        assert isinstance(result, Tensor) and not result.requires_grad
    np.testing.assert_array_equal(np.argmax(x, axis=1).data, np.argmax(x.data, axis=1))
    zeros = np.zeros_like(x)
    assert type(zeros) is np.ndarray and zeros.shape == (2, 3) and zeros.dtype == x.dtype
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
    assert np.allclose(x, x.data) is True and bool(np.all(np.isfinite(x.data)))


def test_maximum_ties_share_the_gradient_as_pytorch(torch):
    a, b = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([1.0, 5.0, 0.0], requires_grad=True)
    upstream = np.array([0.3, -1.2, 2.0])
    np.maximum(a, b).backward(upstream)
    ta, tb = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    torch.maximum(ta, tb).backward(torch.tensor(upstream))
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy())
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy())
    assert np.maximum(a, 0).op == "relu" and np.maximum(0, a).op == "relu"


def test_where_selects_so_inf_in_the_other_branch_stays_out():
    x = Tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = np.where(x > 0, x, -np.inf)  # cond * a + (1 - cond) * b would give nan here
    np.testing.assert_array_equal(y.data, [-np.inf, 0.5, 2.0])
    np.sum(np.where(np.isfinite(y), y, 0.0) * np.array([1.0, 2.0, 3.0])).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 3.0])


def test_unsupported_functions_and_options_raise_naming_them():
    x = leaf((2, 3), 9)
    with pytest.raises(TypeError, match=r"np\.hypot is not supported on Tensors.*supported: differentiable: .*exp"):
        np.hypot(x, x)
    with pytest.raises(TypeError, match=r"np\.linalg\.svd is not supported"):
        np.linalg.svd(x)
    with pytest.raises(TypeError, match=r"np\.log: out= not supported"):
        np.log(x, out=np.empty((2, 3)))
    with pytest.raises(TypeError, match=r"np\.sum: dtype= not supported"):
        np.sum(x, dtype=np.float32)
    with pytest.raises(TypeError, match=r"np\.add\.reduce is not supported"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match="np.dot of arrays with more than 2 dimensions"):
        np.dot(leaf((2, 2, 2), 10), leaf((2, 2), 11))
    with pytest.raises(ValueError, match=r"np\.concatenate: the shapes must agree except along axis 0"):
        np.concatenate([leaf((2, 3), 12), leaf((2, 4), 13)])
    assert "where" in numpy_protocol.supported()["differentiable"]


def test_tensor_operators_never_go_through_the_protocol(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy protocol was used")

    monkeypatch.setattr(Tensor, "__array_ufunc__", refuse)
    monkeypatch.setattr(Tensor, "__array_function__", refuse)
    x, w = leaf((3, 4), 14), leaf((4, 2), 15)
    loss = ((x @ w).tanh() * 2 - 1 + x.sum() / 3).relu().sigmoid().softmax().log().mean()
    loss.backward()
    assert x.grad is not None and w.grad is not None


def test_np_pad_pads_with_a_constant_and_refuses_other_modes_by_name():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = np.pad(x, 1, constant_values=5.0)
    np.testing.assert_array_equal(y.data, np.pad(x.data, 1, constant_values=5.0))
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(upstream)
    np.testing.assert_array_equal(x.grad.data, upstream[1:-1, 1:-1])
    with pytest.raises(ValueError, match="pad: only mode='constant' is supported on Tensors, got 'edge'"):
        np.pad(x, 1, mode="edge")
    with pytest.raises(ValueError, match=r"pad: pad_width \(1, 2, 3\) does not fit a tensor of shape \(2, 3\)"):
        np.pad(x, (1, 2, 3))
