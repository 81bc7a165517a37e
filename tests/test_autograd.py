"""tinygrad_like.autograd: grad (gradients without touching .grad, of several outputs, of gradients) and hvp
(Hessian-vector products), with PyTorch's semantics and PyTorch as an oracle."""

import numpy as np
import pytest

from tinygrad_like import Tensor, autograd

# ----------------------------------------------------------------------------------------------------------
# autograd.grad
# ----------------------------------------------------------------------------------------------------------


def test_grad_returns_gradients_without_touching_dot_grad():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = x.exp()
    y = (h * h).sum()
    gx, gh = autograd.grad(y, [x, h], retain_graph=True)
    assert x.grad is None and h.grad is None
    np.testing.assert_allclose(gx.data, 2 * np.exp(2 * x.data))
    np.testing.assert_allclose(gh.data, 2 * h.data)  # a non-leaf input
    (gx2,) = autograd.grad(y, x)  # a single Tensor for inputs: a tuple of one gradient
    np.testing.assert_allclose(gx2.data, gx.data)


def test_grad_of_several_outputs_adds_their_contributions():
    x = Tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    a, b = x * x, x.exp()
    (g,) = autograd.grad([a, b], [x], [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    np.testing.assert_allclose(g.data, 2 * x.data * [1, 2] + np.exp(x.data) * [3, 4])


def test_grad_of_outputs_where_one_is_computed_from_the_other():
    # The walk meets y twice: as a seed and as an input of z; its gradient must be complete before it runs.
    x = Tensor([1.5, -0.5], requires_grad=True, dtype=np.float64)
    y = x * x
    z = (y * 3).exp()
    gz, gy = np.random.default_rng(6).standard_normal((2, 2))
    (g,) = autograd.grad([z, y], [x], [gz, gy])
    np.testing.assert_allclose(g.data, (3 * np.exp(3 * x.data**2) * gz + gy) * 2 * x.data)


def test_unused_inputs_raise_unless_allowed():
    x = Tensor([1.0], requires_grad=True)
    z = Tensor([2.0], requires_grad=True)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1,\)\) was not used.*allow_unused=True"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.tolist() == [3.0]


def test_grad_refuses_outputs_and_inputs_without_grad():
    x = Tensor([1.0], requires_grad=True)
    c = Tensor([1.0])
    with pytest.raises(RuntimeError, match="output 0 .* does not require grad"):
        autograd.grad(c * 2, x)
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        autograd.grad(x * c, c)
    with pytest.raises(RuntimeError, match="gradient can be omitted only for a one-element tensor"):
        autograd.grad(x * Tensor([1.0, 2.0]), x)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        autograd.grad(x * 2, x, [np.ones(1), np.ones(1)])


def test_a_third_derivative_is_the_derivative_of_the_second():
    x = Tensor([0.5, 2.0], requires_grad=True, dtype=np.float64)
    (g1,) = autograd.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, 24 * x.data)


def test_gradients_of_gradients_add_up_over_reused_nodes():
    """f = x * x * exp(x) uses x three times; f'' = (x^2 + 4x + 2) e^x needs every path's contribution."""
    x = Tensor([0.7], requires_grad=True, dtype=np.float64)
    y = x * x * x.exp()
    (g,) = autograd.grad(y.sum(), x, create_graph=True)
    (h,) = autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, (0.49 + 2.8 + 2) * np.exp(0.7))


# ----------------------------------------------------------------------------------------------------------
# Hessian-vector products
# ----------------------------------------------------------------------------------------------------------


def _mlp_loss(w1, b1, w2, b2, x, labels):
    h = (x @ w1.T + b1).sigmoid()
    return (h @ w2.T + b2).cross_entropy(labels, reduction="sum")


def test_hvp_of_a_small_network_matches_pytorchs(torch):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s) * 0.5 for s in ((5, 4), (5,), (3, 5), (3,))]
    vs = [rng.standard_normal(p.shape) for p in params]
    x, labels = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)

    out, hv = autograd.hvp(lambda *p: _mlp_loss(*p, Tensor(x), labels), tuple(Tensor(p) for p in params),
                           tuple(vs))

    def theirs(w1, b1, w2, b2):
        h = torch.sigmoid(torch.tensor(x) @ w1.T + b1)
        return torch.nn.functional.cross_entropy(h @ w2.T + b2, torch.tensor(labels), reduction="sum")

    out_t, hv_t = torch.autograd.functional.hvp(theirs, tuple(map(torch.tensor, params)),
                                                tuple(map(torch.tensor, vs)))
    assert out.grad_fn is None and isinstance(hv, tuple) and len(hv) == 4
    np.testing.assert_allclose(out.data, out_t.numpy(), rtol=1e-12)
    for ours, them in zip(hv, hv_t):
        np.testing.assert_allclose(ours.data, them.numpy(), rtol=1e-10, atol=1e-12)


def test_hvp_of_a_quadratic_is_the_matrix_times_v():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    out, hv = autograd.hvp(lambda x: 0.5 * (x @ Tensor(a) @ x), Tensor(np.array([1.0, -1.0])), np.array([1.0, 2.0]))
    assert isinstance(hv, Tensor)
    np.testing.assert_allclose(hv.data, a @ [1.0, 2.0])
    np.testing.assert_allclose(out.item(), 0.5 * np.array([1.0, -1.0]) @ a @ [1.0, -1.0])


def test_hvp_of_a_linear_function_is_zero_and_v_may_be_omitted_for_one_element():
    _, hv = autograd.hvp(lambda x: (x * 3).sum(), Tensor(np.ones(3)), np.ones(3))
    assert hv.tolist() == [0.0, 0.0, 0.0]
    _, hv = autograd.hvp(lambda x: (x ** 3).sum(), Tensor(np.array([2.0])))
    assert hv.tolist() == [12.0]


def test_hvp_refuses_bad_arguments():
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match="one element"):
        autograd.hvp(lambda t: t * 2, x, np.ones(3))
    with pytest.raises(ValueError, match=r"v\[0\] has shape \(2,\)"):
        autograd.hvp(lambda t: t.sum(), x, np.ones(2))
    with pytest.raises(ValueError, match="v can be omitted only"):
        autograd.hvp(lambda t: t.sum(), x)
    with pytest.raises(TypeError, match="floating point"):
        autograd.hvp(lambda t: t.sum(), Tensor([1, 2]), np.ones(2))
