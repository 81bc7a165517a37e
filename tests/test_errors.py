"""Misuse gives clear errors naming the operation and the shapes; out-of-domain values never warn.

pyproject.toml turns every RuntimeWarning into an error, so each test here also proves "no warning".
"""

import operator

import numpy as np
import pytest

from tinygrad_like import Tensor


def test_matmul_not_aligned_message_is_exact():
    with pytest.raises(ValueError) as info:
        Tensor.ones(3, 4) @ Tensor.ones(5, 2)
    assert str(info.value) == "matmul: shapes (3, 4) and (5, 2) are not aligned (4 != 5)"


@pytest.mark.parametrize("a, b, pattern", [
    ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) are not aligned"),
    ((2, 2, 3), (4, 3, 1), r"matmul: batch dimensions of shapes \(2, 2, 3\) and \(4, 3, 1\)"),
    ((), (3,), r"matmul: both operands must be at least 1-D"),
])
def test_matmul_shape_errors(a, b, pattern):
    with pytest.raises(ValueError, match=pattern):
        Tensor.ones(*a) @ Tensor.ones(*b)


@pytest.mark.parametrize("name, op", [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                                      ("div", operator.truediv), ("pow", operator.pow)])
def test_binary_broadcast_errors_name_the_op_and_shapes(name, op):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        op(Tensor.ones(2, 3), Tensor.ones(4))


def test_unsupported_operand_type():
    with pytest.raises(TypeError, match="add: unsupported operand of type str"):
        Tensor([1.0]) + "x"


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda t: t.sum(2), np.exceptions.AxisError, r"sum: axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda t: t.mean(axis=(0, -2)), ValueError, r"mean: repeated axis"),
    (lambda t: t.max(axis=1.5), TypeError, r"max: axis must be an int"),
    (lambda t: t.softmax(3), IndexError, r"softmax: axis 3 is out of range"),
    (lambda t: t.reshape(4, 2), ValueError, r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                            r"into \(4, 2\)"),
    (lambda t: t.permute(0, 0), ValueError, r"permute: \(0, 0\) is not a permutation"),
    (lambda t: t.expand(4, 3), ValueError, r"expand: cannot expand a tensor of shape \(2, 3\) to \(4, 3\)"),
    (lambda t: t[5], IndexError, r"getitem: index 5 is out of bounds .*tensor shape \(2, 3\)"),
    (lambda t: t[:, [0, 7]], IndexError, r"getitem: .*7.*tensor shape \(2, 3\)"),
    (lambda t: t.clip(), ValueError, r"clip: at least one of min and max"),
    (lambda t: t.clip(2, 1), ValueError, r"clip: min \(2\) is greater than max \(1\)"),
    (lambda t: t.flatten(1, 0), ValueError, r"flatten: start_dim 1 comes after end_dim 0"),
    (lambda t: t.sum(axis=0, dim=1), TypeError, r"sum: give either axis or dim"),
    (lambda t: t.transpose(0, 5), IndexError, r"transpose: axis 5"),
])
def test_shape_and_axis_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(Tensor.ones(2, 3))


def test_cross_entropy_errors():
    logits = Tensor.zeros(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\), got values from 0 to 4"):
        logits.cross_entropy(np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\), got values from -1"):
        logits.cross_entropy(np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: target must be integer labels of shape \(3,\) or "
                                         r"probabilities of shape \(3, 4\), got dtype int64 and shape \(2,\)"):
        logits.cross_entropy(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: expects \(N, C\) logits, got shape \(4,\)"):
        Tensor.zeros(4).cross_entropy(np.array([1]))
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be"):
        logits.cross_entropy(np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"binary_crossentropy: target shape \(2,\) differs"):
        Tensor.ones(3).binary_crossentropy(np.ones(2, np.float32))


def test_mean_over_nothing_is_nan_and_max_of_an_empty_axis_raises():
    assert np.isnan(Tensor.zeros(0).mean().item())  # as PyTorch and tinygrad, without a warning
    assert Tensor.zeros(0, 3).mean(axis=0).shape == (3,) and np.isnan(Tensor.zeros(0, 3).mean(axis=0).data).all()
    with pytest.raises(ValueError, match=r"max: cannot reduce over an empty axis of a tensor of shape \(0,\)"):
        Tensor.zeros(0).max()
    assert Tensor.zeros(0, 3).max(axis=1).shape == (0,)  # the reduced axis is not empty: as NumPy and PyTorch


def test_no_runtime_warning_on_extreme_finite_inputs():
    x = Tensor(np.array([-1000.0, 1000.0], np.float32), requires_grad=True)
    s = x.sigmoid()
    assert s.tolist() == [0.0, 1.0]
    s.backward(np.ones(2, np.float32))
    assert x.grad.tolist() == [0.0, 0.0]

    logits = Tensor(np.array([[1e4, 1e4 - 1.0, -1e4]], np.float32), requires_grad=True)
    p = logits.softmax()
    assert np.isfinite(p.data).all() and abs(p.data.sum() - 1) < 1e-6
    (p * Tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert np.isfinite(logits.grad.data).all()
    assert np.isfinite(logits.log_softmax().data[0, :2]).all()

    assert Tensor([-1e4, -800.0]).exp().tolist() == [0.0, 0.0]
    assert Tensor([1000.0]).exp().item() == np.inf  # an honest overflow: inf, and no warning


def test_out_of_domain_values_are_numpys_and_silent():
    x = Tensor([0.0, -1.0, 4.0], requires_grad=True)
    y = x.log()
    assert y.data[0] == -np.inf and np.isnan(y.data[1]) and y.data[2] == np.log(np.float32(4.0))
    y.backward(np.ones(3, np.float32))
    assert x.grad.data[0] == np.inf
    assert np.isnan(Tensor([-1.0]).sqrt().item())
    assert (Tensor([1.0]) / 0).item() == np.inf
    assert np.isnan((Tensor([0.0]) / 0).item())
    assert (Tensor([0.0]) ** -1.0).item() == np.inf


def test_bool_of_multi_element_tensor():
    with pytest.raises(ValueError, match=r"\(2,\) is ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert bool(Tensor([1.0]))


def test_non_finite_arithmetic_is_silent_everywhere():
    x = Tensor(np.array([0.0, np.inf, 3e38], np.float32), requires_grad=True)
    y = (x * Tensor(np.array([np.inf, 0.0, 10.0], np.float32))) + (x - x)
    assert np.isnan(y.data[:2]).all() and y.data[2] == np.inf
    y.backward(np.ones(3, np.float32))
    big = Tensor(np.full((2, 2), 3e38, np.float32))
    assert np.isinf((big @ big).data).all()


def test_clip_refuses_bounds_that_are_not_numbers():
    x = Tensor([1.0, -2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"clip: min must be a number, got Tensor \(tensor shape \(2,\)\)"):
        x.clip(min=Tensor(0.0))
    assert x.clip(min=np.float32(0.0), max=1).tolist() == [1.0, 0.0]
