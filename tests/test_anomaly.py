"""detect_anomaly: the first nan/inf in a forward result or a backward gradient raises FloatingPointError."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_like import Tensor, detect_anomaly, is_anomaly_enabled


def test_forward_names_the_op_its_inputs_origin_and_shapes():
    p = Tensor([[0.5, 0.5, 0.0]], requires_grad=True)
    probs = p * 1.0
    with detect_anomaly(), pytest.raises(FloatingPointError) as info:
        probs.log()
    message = str(info.value)
    assert "log produced non-finite values in its output of shape (1, 3)" in message
    assert "1 -inf of 3" in message and "came from mul" in message and "Hint: log(0) is -inf" in message


def test_off_by_default_and_silent():
    assert not is_anomaly_enabled()
    assert Tensor([0.0]).log().item() == -np.inf


def test_backward_names_the_rule_and_the_incoming_gradient():
    x = Tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt()  # finite forward, infinite derivative at 0
    with detect_anomaly(), pytest.raises(FloatingPointError) as info:
        y.backward(np.ones(2, np.float32))
    message = str(info.value)
    assert "backward rule of sqrt" in message and "input 0 (shape (2,), which came from a leaf)" in message
    assert "1 inf" in message and "was finite" in message
    assert x.grad is None  # nothing half-accumulated


def test_first_bad_op_is_reported_not_a_later_one():
    x = Tensor([1000.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(FloatingPointError, match="exp produced") as info:
        (x.exp() * 2 - 1).log()
    assert "exp overflows" in str(info.value)


def test_state_restored_after_exceptions_and_as_decorator():
    with pytest.raises(FloatingPointError), detect_anomaly():
        Tensor([-1.0]).sqrt()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def f():
        return is_anomaly_enabled()

    assert f() and not is_anomaly_enabled()


def test_clean_training_step_passes_under_anomaly_detection():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = Tensor(rng.standard_normal((8, 4)))
    with detect_anomaly():
        (x @ w).sigmoid().softmax().log().sum().backward()
    assert np.isfinite(w.grad.data).all()


def test_environment_variable_switches_it_on():
    code = "from tinygrad_like import Tensor, is_anomaly_enabled; print(is_anomaly_enabled()); Tensor([0.0]).log()"
    env = dict(os.environ, TINYGRAD_LIKE_DETECT_ANOMALY="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and result.stdout.strip() == "True"
    assert "FloatingPointError: detect_anomaly: log produced" in result.stderr
