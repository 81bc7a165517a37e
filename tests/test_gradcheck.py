"""tinygrad_like.gradcheck: gradcheck (float64 central differences, a random direction and a random upstream
gradient) and gradgradcheck catch wrong rules that a uniform upstream gradient or first derivatives cannot see, and
validate their arguments."""

import numpy as np
import pytest

from tinygrad_like import Function, GradcheckError, Tensor, gradcheck, gradgradcheck, ops

# ----------------------------------------------------------------------------------------------------------
# gradcheck
# ----------------------------------------------------------------------------------------------------------


class _OffByFactor(ops.Function):
    """z = exp(x) with a backward off by a factor 1.001: gradcheck must notice. dz/dx = 1.001 z (wrong)."""

    __slots__ = ("out",)
    name = "bad_exp"

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out * 1.001,)


def test_gradcheck_catches_a_rule_off_by_a_factor_1_001():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda t: t.exp(), x)
    with pytest.raises(GradcheckError, match="FAIL") as info:
        gradcheck(lambda t: _OffByFactor.apply(t), x)
    assert "input" in str(info.value) and "(3, 4)" in str(info.value)


def test_gradcheck_uses_a_random_upstream_gradient():
    """With a uniform upstream gradient the sum of softmax is constant and any softmax rule would pass."""

    class _BrokenSoftmax(ops.Softmax):
        __slots__ = ()

        def backward(self, grad):
            return (grad * self.out,)  # misses the  - sum(g * z)  term: zero effect when g is uniform

    x = Tensor(np.random.default_rng(1).standard_normal((2, 5)), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _BrokenSoftmax.apply(t), x)


def test_gradcheck_reports_per_input_and_validates_arguments():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2) * 2, requires_grad=True)

    def half_wrong(x, y):
        return _OffByFactor.apply(x) * y

    with pytest.raises(GradcheckError) as info:
        gradcheck(half_wrong, a, b)
    lines = [line for line in str(info.value).splitlines()[2:]]
    assert all("FAIL" in line for line in lines if line.split()[0] == "0")
    assert all("ok" in line for line in lines if line.split()[0] == "1")
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2, Tensor([1.0]))


def test_float32_inputs_are_checked_in_float64():
    x = Tensor(np.random.default_rng(2).standard_normal(5).astype(np.float32), requires_grad=True)
    assert gradcheck(lambda t: (t.tanh() * t).sigmoid(), x)


# ----------------------------------------------------------------------------------------------------------
# gradgradcheck
# ----------------------------------------------------------------------------------------------------------


class _FirstOrderOnly(Function):
    """z = exp(x);  dz/dx = z, but the saved output is detached: first derivatives right, second ones wrong."""

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        out = self.out.detach() if isinstance(self.out, Tensor) else self.out
        return (grad * out,)


def test_gradgradcheck_catches_a_wrong_second_derivative_that_gradcheck_cannot_see():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda t: _FirstOrderOnly.apply(t), x)
    with pytest.raises(GradcheckError, match="(?s)gradgradcheck: second derivatives.*FAIL") as info:
        gradgradcheck(lambda t: _FirstOrderOnly.apply(t), x)
    assert "grad_outputs" in str(info.value)  # the derivative with respect to the upstream gradient is checked too


def test_gradgradcheck_validates_its_arguments():
    x = Tensor(np.ones(2))
    with pytest.raises(ValueError, match="no input Tensor has requires_grad"):
        gradgradcheck(lambda t: t * 2, x)
    y = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad_outputs has shape \(3,\)"):
        gradgradcheck(lambda t: t * t, y, grad_outputs=np.ones(3))
    assert gradgradcheck(lambda t: t * t, y, grad_outputs=np.array([1.0, -2.0]))
