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


def test_linear_weight_is_column_major_and_keeps_its_layout():
    # (out, in) as PyTorch, held so that weight.T is row-major (the fast layout for x @ W); replacing the values
    # keeps the layout, and the weight's gradient comes in it, so updates stay in place without copies.
    layer = nn.Linear(5, 3, rng=np.random.default_rng(0))
    w = layer.weight.data
    assert w.shape == (3, 5) and w.flags.f_contiguous and w.T.flags.c_contiguous
    x = Tensor(np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32))
    upstream = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    layer(x).backward(upstream)
    assert layer.weight.grad.data.flags.f_contiguous
    np.testing.assert_allclose(layer.weight.grad.data, upstream.T @ x.data, rtol=1e-5)
    state = {k: np.ascontiguousarray(v) for k, v in layer.state_dict().items()}
    state["weight"] = state["weight"] * 2
    memory = layer.weight.data
    layer.load_state_dict(state)
    assert layer.weight.data is memory and memory.flags.f_contiguous
    np.testing.assert_array_equal(layer.weight.data, state["weight"])
