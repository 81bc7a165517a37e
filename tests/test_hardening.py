"""Hardening: the reliability review's reproductions, each written as a test (threads, in-place changes, edge
gradients, dtypes, warnings, empty inputs, errors that name the op), and a differential test against PyTorch
over random programs with inf and nan arriving from downstream."""

import threading

import numpy as np
import pytest

from tinygrad_like import Tensor, detect_anomaly, is_anomaly_enabled, nn, no_grad

# ----------------------------------------------------------------------------------------------------------
# Per-thread anomaly mode (grad mode: tests/test_engine.py)
# ----------------------------------------------------------------------------------------------------------


def test_detect_anomaly_in_one_thread_does_not_reach_another():
    inside, release, seen = threading.Event(), threading.Event(), []

    def other():
        with detect_anomaly():
            inside.set()
            release.wait(5)
            seen.append(is_anomaly_enabled())

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        assert not is_anomaly_enabled()
        assert np.isneginf(Tensor([0.0]).log().item())  # no FloatingPointError in this thread
    finally:
        release.set()
        thread.join()
    assert seen == [True]


# ----------------------------------------------------------------------------------------------------------
# Version counters
# ----------------------------------------------------------------------------------------------------------


def test_an_in_place_update_between_two_backwards_raises_naming_the_op_and_shape():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with no_grad():
        w -= 0.1 * w.grad.data
    w.zero_grad()
    with pytest.raises(RuntimeError, match=r"mul saved its input 0 \(shape \(2,\)\), which was changed in place"):
        loss.backward()
    assert w.grad is None  # nothing was accumulated


def test_an_op_that_saved_nothing_does_not_care_about_in_place_changes():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w + 1).sum()
    with no_grad():
        w.sub_(1.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 1.0])


def test_a_changed_output_is_caught_too():
    x = Tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # exp's backward reads its saved output
    with no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"exp saved its output \(shape \(2,\)\)"):
        y.sum().backward()


def test_version_grows_with_each_in_place_change_and_in_place_ops_are_refused_while_recording():
    t = Tensor([1.0, 2.0])
    v0 = t.version
    t += 1
    t.assign([5.0, 6.0])
    assert t.version > v0 and t.tolist() == [5.0, 6.0]
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="sub_: a leaf tensor that requires grad"):
        w -= 1
    with pytest.raises(ValueError, match=r"assign: cannot apply a value of shape \(3,\) in place to a tensor of "
                                         r"shape \(2,\)"):
        t.assign([1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------------------------------------
# Edge gradients, as PyTorch
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [lambda x: x.relu().sqrt(), lambda x: x.relu().log(), lambda x: x.clip(0, 1).log(),
                                lambda x: x.abs().sqrt() * 0 + x.relu().log()],
                         ids=["relu-sqrt", "relu-log", "clip-log", "abs-relu"])
def test_an_inf_from_downstream_gives_zero_where_the_op_is_flat(fn):
    x = Tensor([-1.0], requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.item() == 0.0


def test_derivative_of_x_to_the_zero_is_zero_also_at_zero():
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


# ----------------------------------------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda x: x * Tensor([1, 0]), lambda x: Tensor([1, 0]) * x, lambda x: x * Tensor(np.float64(2)),
    lambda x: x @ Tensor([1, 2]), lambda x: x.clip(np.float64(0), np.float64(1)), lambda x: 2 - x,
    lambda x: x ** 2, lambda x: x + np.float64(1), lambda x: x * Tensor([True, False]),
], ids=["int-tensor", "int-tensor-left", "0d-float64", "matmul-int", "clip-np-float64", "rsub", "pow", "np-scalar",
        "bool"])
def test_float32_is_never_widened(make):
    x = Tensor([1.0, 2.0], requires_grad=True)
    out = make(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_two_nd_floats_give_the_wider_and_a_0d_tensor_gets_its_own_gradient_dtype():
    a, b = Tensor(np.ones(2, np.float32)), Tensor(np.ones(2, np.float64))
    assert (a + b).dtype == np.float64
    s = Tensor(np.float64(3.0), requires_grad=True)
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * s).sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == 3.0


def test_signed_zeros_are_not_confused_by_the_constant_cache():
    x = Tensor([1.0])
    assert (x / -0.0).item() == -np.inf
    assert (x / 0.0).item() == np.inf


# ----------------------------------------------------------------------------------------------------------
# No RuntimeWarning (pytest turns them into errors), empty inputs
# ----------------------------------------------------------------------------------------------------------


def test_overflowing_casts_give_inf_without_a_warning():
    assert (Tensor([1.0]) + 1e39).item() == np.inf
    assert Tensor([3.5e38]).item() == np.inf
    assert Tensor.full(2, 1e39).tolist() == [np.inf, np.inf]
    x = Tensor([1.0], requires_grad=True)
    (x * 2).backward(gradient=[1e39])
    assert x.grad.item() == np.inf


def test_float16_mean_of_many_elements_is_right():
    assert Tensor(np.ones(70_000, np.float16)).mean().item() == 1.0


def test_mean_over_zero_elements_is_nan_and_empty_indexing_works_both_ways():
    assert np.isnan(Tensor.zeros(0).mean().item())
    t = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    assert t[[]].shape == (0, 2) and t[[], 1:].shape == (0, 1)
    (t[[]].sum() + t[[0, 0]].sum()).backward()
    np.testing.assert_array_equal(t.grad.data, [[2, 2], [0, 0], [0, 0]])


# ----------------------------------------------------------------------------------------------------------
# Errors that name the op
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: Tensor(np.array([1], np.uint8)) + 300, OverflowError, r"add: 300 does not fit .* uint8"),
    (lambda: Tensor([1, 2]) + 2**40, OverflowError, r"add: 1099511627776 does not fit .* int32"),
    (lambda: Tensor([2]) ** -1, ValueError, r"pow: Integers to negative integer powers"),
    (lambda: Tensor.uniform(3, low=2.0, high=1.0), ValueError, r"uniform: low \(2.0\) must not be greater"),
    (lambda: nn.Linear(2, 2).save(""), ValueError, r"save: empty path"),
    (lambda: Tensor([1.0]) == "a", TypeError, r"==: cannot compare a tensor \(shape \(1,\)\) with str"),
], ids=["uint8-overflow", "int32-overflow", "negative-int-power", "uniform", "save-empty", "compare-str"])
def test_errors_name_the_op(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_binary_crossentropy_refuses_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"binary_crossentropy: the input must be probabilities in \[0, 1\], got "
                                         r"values from 0.5 to 1.5"):
        Tensor([1.5, 0.5]).binary_crossentropy(Tensor([1.0, 0.0]))


def test_a_linear_layer_without_inputs_works_forward_and_backward():
    layer = nn.Linear(0, 3)
    out = layer(Tensor(np.ones((2, 0), np.float32)))
    out.sum().backward()
    assert out.shape == (2, 3) and layer.weight.grad.shape == (3, 0)
    np.testing.assert_array_equal(layer.bias.grad.data, [2, 2, 2])
