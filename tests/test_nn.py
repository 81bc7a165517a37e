"""nn: Module, Linear, Sequential and MLP, with no study behind them."""

import numpy as np
import pytest

from tinygrad_like import Tensor, gradcheck, nn, toposort


def test_mlp_refuses_empty_layers():
    with pytest.raises(ValueError, match=r"MLP: need at least two positive layer sizes .*\[4, 0, 2\]"):
        nn.MLP([4, 0, 2])


def test_mlp_default_init_is_pytorchs_linear_init_and_seeded():
    a, b = nn.MLP([6, 4, 3], seed=7), nn.MLP([6, 4, 3], seed=7)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
    assert np.abs(a.layers[0].weight.data).max() <= 1 / np.sqrt(6)
    assert np.abs(a.layers[1].weight.data).max() <= 1 / np.sqrt(4)
    assert a.layers[0].weight.dtype == np.float32


def test_mlp_gives_softmax_of_its_logits_and_its_gradient_is_right():
    mlp = nn.MLP([5, 4, 3], activation="tanh", seed=1, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).random((6, 5)))
    np.testing.assert_allclose(mlp(x).data.sum(axis=1), 1.0, rtol=1e-14)
    w = mlp.layers[0].weight
    assert gradcheck(lambda w_: (x @ w_.T).tanh() @ mlp.layers[1].weight.T, w)


def test_module_calls_are_tagged_on_the_node_they_made():
    mlp = nn.MLP([5, 4, 3], seed=1)
    x = Tensor(np.ones((2, 5), np.float32))
    out = mlp(x)
    assert [type(m).__name__ for m, _ in out.grad_fn.module_calls] == ["MLP"]
    linear_outputs = [t for t in toposort(out) if t.op == "linear"]
    assert [t.grad_fn.module_calls[0][0] for t in linear_outputs] == mlp.layers


def test_extra_repr_describes_a_layer():
    assert nn.Linear(784, 64).extra_repr() == "784, 64"
    assert repr(nn.Linear(3, 2, bias=False)).startswith("Linear(3, 2, bias=False")
