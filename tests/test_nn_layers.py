"""nn's modules and layers (tinygrad_like.nn): Module (parameters, buffers, train/eval, calls tagged on the
graph), Linear, Sequential, MLP, Conv2d, MaxPool2d and the activation layers, against PyTorch; saving and loading
weights: tests/test_files.py."""

import math

import numpy as np
import pytest
from helpers import compare_with_torch

from tinygrad_like import Tensor, gradcheck, manual_seed, nn, no_grad, toposort
from tinygrad_like.nn import functional as F

DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------------------------------------------------------
# Module: parameters, buffers, train and eval
# ----------------------------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        self.body = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(3, 2)
        self.scale = Tensor(2.0)  # a constant: neither a parameter nor saved
        self.register_buffer("mean", Tensor.zeros(4))

    def forward(self, x):
        return self.head(self.body((x - self.mean) * self.scale))


def test_train_and_eval_reach_every_submodule_and_switch_dropout():
    manual_seed(0)  # initial weights whose ReLU layer is not dead for this input (else dropout changes nothing)
    net = Net()
    modules = [m for _, m in net.named_modules()]
    assert all(m.training for m in modules) and len(modules) == 6
    assert net.eval() is net and not any(m.training for m in modules)
    x = Tensor(np.ones((50, 4), np.float32))
    with no_grad():
        np.testing.assert_array_equal(net(x).data, net(x).data)  # no dropout in eval
    net.train()
    assert all(m.training for m in modules)
    manual_seed(0)
    assert not np.array_equal(net(x).data, net(x).data)


def test_parameters_are_the_tensors_that_require_grad_and_buffers_are_saved():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == ["body.0.weight", "body.0.bias",
                                                           "head.weight", "head.bias"]
    assert [name for name, _ in net.named_buffers()] == ["mean"]
    state = net.state_dict()
    assert set(state) == {"body.0.weight", "body.0.bias", "head.weight", "head.bias", "mean"}
    state["mean"] = np.full(4, 0.5, np.float32)
    net.load_state_dict(state)
    assert net.mean.tolist() == [0.5] * 4 and not net.mean.requires_grad


def test_buffers_go_through_save_and_load(tmp_path):
    layer = nn.Linear(2, 2)
    layer.register_buffer("running", Tensor([1.0, 2.0]))
    layer.save(tmp_path / "layer.npz")
    with pytest.raises(ValueError, match="unexpected running"):  # rebuilt from its config, without the buffer
        nn.Module.load(tmp_path / "layer.npz")
    loaded = nn.Linear(2, 2)
    loaded.register_buffer("running", Tensor([0.0, 0.0]))
    loaded.load_state_dict(nn.read_npz(tmp_path / "layer.npz"))
    assert loaded.running.tolist() == [1.0, 2.0]
    np.testing.assert_array_equal(loaded.weight.data, layer.weight.data)


def test_register_buffer_refuses_bad_names_and_values():
    net = Net()
    with pytest.raises(ValueError, match="register_buffer: Net already has an attribute 'head'"):
        net.register_buffer("head", Tensor.zeros(1))
    with pytest.raises(ValueError, match="register_buffer: name must be an attribute name"):
        net.register_buffer("a.b", Tensor.zeros(1))
    with pytest.raises(TypeError, match="register_buffer: x must be a Tensor or None, got ndarray"):
        net.register_buffer("x", np.zeros(1))


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


def test_layer_reprs_say_their_settings():
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.ReLU()) == "ReLU()"


# ----------------------------------------------------------------------------------------------------------
# Linear and MLP
# ----------------------------------------------------------------------------------------------------------


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


def test_linear_initialisation_follows_manual_seed():
    manual_seed(5)
    a = nn.Linear(3, 2)
    manual_seed(5)
    b = nn.Linear(3, 2)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


def test_a_linear_layer_without_inputs_works_forward_and_backward():
    layer = nn.Linear(0, 3)
    out = layer(Tensor(np.ones((2, 0), np.float32)))
    out.sum().backward()
    assert out.shape == (2, 3) and layer.weight.grad.shape == (3, 0)
    np.testing.assert_array_equal(layer.bias.grad.data, [2, 2, 2])


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


def test_cross_entropy_refuses_the_output_of_softmax():
    mlp = nn.MLP([4, 3], seed=0)
    x = Tensor(np.ones((2, 4), np.float32))
    labels = np.array([0, 2])
    for call in (lambda: mlp(x).cross_entropy(labels), lambda: F.cross_entropy(nn.Softmax()(mlp.logits(x)), labels)):
        with pytest.raises(ValueError, match=r"cross_entropy: .*output of softmax.*logits.*mlp\.logits\(x\)"):
            call()
    assert np.isfinite(mlp.logits(x).cross_entropy(labels).item())


# ----------------------------------------------------------------------------------------------------------
# Layers without parameters
# ----------------------------------------------------------------------------------------------------------


ACTIVATION_LAYERS = {
    "ReLU": (nn.ReLU(), "ReLU", {}),
    "Sigmoid": (nn.Sigmoid(), "Sigmoid", {}),
    "Tanh": (nn.Tanh(), "Tanh", {}),
    "Softmax": (nn.Softmax(dim=0), "Softmax", {"dim": 0}),
    "LogSoftmax": (nn.LogSoftmax(), "LogSoftmax", {"dim": -1}),
    "Identity": (nn.Identity(), "Identity", {}),
    "Flatten": (nn.Flatten(), "Flatten", {}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATION_LAYERS))
def test_parameterless_layers_match_pytorch(name, dtype, torch):
    ours, theirs_name, kwargs = ACTIVATION_LAYERS[name]
    theirs = getattr(torch.nn, theirs_name)(**kwargs)
    x = np.random.default_rng(0).uniform(-2, 2, (3, 4, 2)).astype(dtype)
    if name == "Identity":  # nothing to differentiate through: the very same tensor comes back
        t = Tensor(x)
        assert ours(t) is t
        return
    compare_with_torch(torch, ours, theirs, [x], dtype)


# ----------------------------------------------------------------------------------------------------------
# Conv2d and MaxPool2d
# ----------------------------------------------------------------------------------------------------------


def test_conv2d_layer_is_initialised_as_pytorch_and_follows_manual_seed():
    manual_seed(0)
    layer = nn.Conv2d(3, 8, (3, 5))
    bound = 1 / math.sqrt(3 * 3 * 5)
    assert layer.weight.shape == (8, 3, 3, 5) and layer.bias.shape == (8,) and layer.weight.dtype == np.float32
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound
    manual_seed(0)
    np.testing.assert_array_equal(nn.Conv2d(3, 8, (3, 5)).weight.data, layer.weight.data)
    assert nn.Conv2d(3, 8, 3, bias=False).bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_layer_settings_read_like_pytorchs():
    assert repr(nn.Conv2d(1, 8, 3)).startswith("Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1)\n  (weight)")
    assert nn.Conv2d(1, 8, 3, 2, 1, bias=False).extra_repr() == ("1, 8, kernel_size=(3, 3), stride=(2, 2), "
                                                                 "padding=(1, 1), bias=False")
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"


def test_conv2d_layer_saves_and_loads(tmp_path):
    layer = nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=1)
    layer.save(tmp_path / "conv.npz")
    loaded = nn.Module.load(tmp_path / "conv.npz")
    assert repr(loaded) == repr(layer)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32))
    np.testing.assert_array_equal(loaded(x).data, layer(x).data)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: nn.Conv2d(1, 2, 0), ValueError, "Conv2d: kernel_size must be at least 1, got 0"),
    (lambda: nn.Conv2d(0, 2, 3), ValueError, "Conv2d: in_channels must be at least 1, got 0"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be at least 1, got 0"),
    (lambda: nn.Conv2d(3, 2, 3)(Tensor.ones(1, 1, 5, 5)), ValueError, r"conv2d: input of shape \(1, 1, 5, 5\) has 1"),
])
def test_layer_settings_and_inputs_that_do_not_fit_are_refused_naming_the_layer(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


class SmallCNN(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(F.relu(self.conv(x)))))


def test_a_small_cnn_gives_pytorchs_loss_and_gradients(torch):
    manual_seed(1)
    ours = SmallCNN()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(64, 3)).double()
    names = {"conv.weight": "0.weight", "conv.bias": "0.bias", "fc.weight": "4.weight", "fc.bias": "4.bias"}
    params = dict(ours.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            p.data = p.data.astype(np.float64)
            theirs.get_parameter(names[name]).copy_(torch.tensor(p.data))
    rng = np.random.default_rng(2)
    x, labels = rng.standard_normal((5, 1, 8, 8)), rng.integers(0, 3, 5)
    loss = F.cross_entropy(ours(Tensor(x)), labels)
    loss.backward()
    loss_t = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(labels))
    loss_t.backward()
    assert loss.item() == pytest.approx(loss_t.item(), rel=1e-12)
    for name, p in params.items():
        np.testing.assert_allclose(p.grad.data, theirs.get_parameter(names[name]).grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
    assert gradcheck(lambda t: ours(t), Tensor(x, requires_grad=True))
