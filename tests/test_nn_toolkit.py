"""The toolkit users expect for defining networks: the new elementwise, reduction and shape ops, dropout,
train/eval and buffers on modules, the activation layers, nn.init, nn.functional and data.batches; each checked
against finite differences (hypothesis sweeps, random upstream gradients), hand-written formulas and PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes
from oracle import compare_with_torch

from tinygrad_like import Tensor, data, gradcheck, manual_seed, nn, no_grad
from tinygrad_like.nn import functional as F
from tinygrad_like.nn import init
from tinygrad_like.tensors import default_generator

SWEEP = settings(max_examples=15, deadline=None)
shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)
DTYPES = [np.float32, np.float64]


def leaf(shape, seed, low=-3.0, high=3.0, away_from_zero=False):
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, shape)
    if away_from_zero:  # keeps kinks out of the finite differences' reach
        values = np.sign(rng.uniform(-1, 1, shape)) * rng.uniform(0.2, high, shape)
    return Tensor(values, requires_grad=True)


def normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


# ----------------------------------------------------------------------------------------------------------
# Elementwise: leaky_relu, softplus, gelu, where, clamp
# ----------------------------------------------------------------------------------------------------------

ELEMENTWISE = {
    "leaky_relu": (lambda t: t.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x), {"away_from_zero": True}),
    "leaky_relu_slope": (lambda t: t.leaky_relu(0.3), lambda x: np.where(x > 0, x, 0.3 * x), {"away_from_zero": True}),
    "softplus": (lambda t: t.softplus(), lambda x: np.log(1 + np.exp(x)), {}),
    "gelu": (lambda t: t.gelu(), lambda x: x * normal_cdf(x), {}),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@SWEEP
@given(shape=shapes, seed=seeds)
def test_elementwise_values_and_gradients(name, shape, seed):
    fn, formula, domain = ELEMENTWISE[name]
    x = leaf(shape, seed, **domain)
    np.testing.assert_allclose(fn(x).data, formula(x.data), rtol=1e-12, atol=1e-14)
    assert gradcheck(fn, x)


def test_gelu_derivative_is_cdf_plus_x_times_density():
    x = Tensor(np.linspace(-4, 4, 9), requires_grad=True)
    x.gelu().backward(np.ones(9))
    density = np.exp(-x.data**2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(x.grad.data, normal_cdf(x.data) + x.data * density, rtol=1e-13)


def test_softplus_is_exact_far_out_and_its_gradient_is_the_sigmoid():
    x = Tensor(np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), requires_grad=True)
    y = x.softplus()
    y.backward(np.ones(5))
    tail = np.log1p(np.exp(-30.0))
    np.testing.assert_allclose(y.data, [0.0, tail, np.log(2), 30.0 + tail, 800.0], rtol=1e-15)
    e = np.exp(-30.0)
    np.testing.assert_allclose(x.grad.data, [0.0, e / (1 + e), 0.5, 1 / (1 + e), 1.0], rtol=1e-15)  # sigmoid


def test_leaky_relu_gradient_at_zero_is_the_slope_as_pytorch():
    x = Tensor([0.0, -1.0, 2.0], requires_grad=True)
    x.leaky_relu(0.25).backward(np.ones(3, np.float32))
    assert x.grad.tolist() == [0.25, 0.25, 1.0]


@SWEEP
@given(shapes3=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where_broadcasts_and_routes_the_gradient(shapes3, seed):
    c_shape, a_shape, b_shape = shapes3.input_shapes
    cond = Tensor(np.random.default_rng(seed).random(c_shape) > 0.5)
    a, b = leaf(a_shape, seed + 1), leaf(b_shape, seed + 2)
    out = cond.where(a, b)
    np.testing.assert_array_equal(out.data, np.where(cond.data, a.data, b.data))
    assert out.shape == shapes3.result_shape
    assert gradcheck(lambda x, y: Tensor.where(cond, x, y), a, b)


def test_where_with_numbers_keeps_the_tensors_dtype():
    x = Tensor(np.array([-1.0, 2.0], np.float32), requires_grad=True)
    y = (x > 0).where(x, 0.0)
    assert y.dtype == np.float32 and y.tolist() == [0.0, 2.0]
    assert Tensor.where(np.array([True, False]), 1.0, x).dtype == np.float32
    assert Tensor.where(Tensor([True, False]), 1.5, 0).dtype == np.float32
    y.backward(np.ones(2, np.float32))
    assert x.grad.tolist() == [0.0, 1.0]


def test_clamp_is_clip():
    x = Tensor([-2.0, 0.5, 3.0])
    assert x.clamp(-1, 1).tolist() == x.clip(-1, 1).tolist() == [-1.0, 0.5, 1.0]


# ----------------------------------------------------------------------------------------------------------
# Reductions: var and std
# ----------------------------------------------------------------------------------------------------------


def _axis_choices(ndim):
    return st.one_of(st.sampled_from([None, *range(-ndim, ndim)]),
                     st.lists(st.integers(0, ndim - 1), unique=True, min_size=1, max_size=ndim).map(tuple))


@pytest.mark.parametrize("op", ["var", "std"])
@SWEEP
@given(data_=st.data(), shape=array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), keepdim=st.booleans(),
       correction=st.sampled_from([0, 1]), seed=seeds)
def test_var_and_std(op, data_, shape, keepdim, correction, seed):
    axis = data_.draw(_axis_choices(len(shape)))
    x = leaf(shape, seed)
    expected = getattr(np, op)(x.data, axis=axis, keepdims=keepdim, ddof=correction)
    np.testing.assert_allclose(getattr(x, op)(axis, keepdim, correction).data, expected, rtol=1e-12)
    assert gradcheck(lambda t: getattr(t, op)(axis, keepdim, correction=correction), x)


def test_var_spellings_and_degenerate_counts():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.var(dim=1, keepdims=True).shape == (2, 1)
    assert x.std(0).tolist() == pytest.approx([2.1213203435596424] * 3)
    assert math.isnan(Tensor([5.0]).var().item())  # one sample, correction 1: 0 / 0, as PyTorch
    assert Tensor([5.0]).var(correction=0).item() == 0.0


# ----------------------------------------------------------------------------------------------------------
# Shapes: view, unsqueeze, squeeze, cat, stack, numel
# ----------------------------------------------------------------------------------------------------------


@SWEEP
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), data_=st.data(), seed=seeds)
def test_unsqueeze_squeeze_and_view(shape, data_, seed):
    x = leaf(shape, seed)
    dim = data_.draw(st.integers(-len(shape) - 1, len(shape)))
    expanded = x.unsqueeze(dim)
    assert expanded.shape == np.expand_dims(x.data, dim).shape
    assert expanded.squeeze(dim).shape == shape
    assert x.squeeze().shape == np.squeeze(x.data).shape
    assert x.view(-1).shape == (x.numel(),)
    assert gradcheck(lambda t: t.unsqueeze(dim).squeeze(), x)


def test_squeeze_keeps_axes_that_are_not_of_size_one():
    x = Tensor.zeros(2, 1, 3, 1)
    assert x.squeeze(0).shape == (2, 1, 3, 1)  # as PyTorch: no error, nothing to drop
    assert x.squeeze((1, 3)).shape == (2, 3) and x.squeeze(-1).shape == (2, 1, 3)
    assert x.numel() == 6 == x.size


@SWEEP
@given(base=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), sizes=st.lists(st.integers(0, 3),
       min_size=1, max_size=3), data_=st.data(), seed=seeds)
def test_cat(base, sizes, data_, seed):
    dim = data_.draw(st.integers(-len(base), len(base) - 1))
    axis = dim % len(base)
    parts = [leaf(base[:axis] + (n,) + base[axis + 1:], seed + i) for i, n in enumerate(sizes)]
    out = parts[0].cat(*parts[1:], dim=dim)
    np.testing.assert_array_equal(out.data, np.concatenate([p.data for p in parts], axis=axis))
    assert Tensor.cat(parts, dim=dim).shape == out.shape
    assert gradcheck(lambda *ts: Tensor.cat(*ts, dim=dim), *parts)


@SWEEP
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), count=st.integers(1, 3),
       data_=st.data(), seed=seeds)
def test_stack(shape, count, data_, seed):
    dim = data_.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [leaf(shape, seed + i) for i in range(count)]
    out = Tensor.stack(*parts, dim=dim)
    np.testing.assert_array_equal(out.data, np.stack([p.data for p in parts], axis=dim))
    assert gradcheck(lambda *ts: ts[0].stack(*ts[1:], dim=dim), *parts)


def test_cat_and_stack_promote_dtypes_as_pytorch():
    f32, i32 = Tensor(np.ones(2, np.float32)), Tensor(np.array([1, 2], np.int32))
    assert Tensor.cat(f32, i32).dtype == np.float32
    assert Tensor.cat(f32, Tensor(np.ones(2))).dtype == np.float64
    assert Tensor.stack(i32, i32).dtype == np.int32


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: Tensor.zeros(2, 3).cat(Tensor.zeros(3, 3), dim=1), ValueError,
     r"cat: tensors of shapes \(2, 3\) and \(3, 3\) differ outside dim 1"),
    (lambda: Tensor.zeros(2, 3).cat(Tensor.zeros(2, 3, 1)), ValueError, r"cat: tensors of shapes \(2, 3\) and"),
    (lambda: Tensor(1.0).cat(Tensor(2.0)), ValueError, "cat: zero-dimensional tensors cannot be concatenated"),
    (lambda: Tensor.zeros(2).cat(Tensor.zeros(2), dim=1), IndexError, "cat: axis 1 is out of range"),
    (lambda: Tensor.cat([]), ValueError, "cat: expects at least one tensor"),
    (lambda: Tensor.stack(Tensor.zeros(2), Tensor.zeros(3)), ValueError,
     r"stack: tensors must have the same shape, got \(2,\) and \(3,\)"),
    (lambda: Tensor.zeros(2, 3).unsqueeze(3), IndexError, r"unsqueeze: dim 3 is out of range \[-3, 2\]"),
    (lambda: Tensor.zeros(2).squeeze(1), IndexError, "squeeze: axis 1 is out of range"),
    (lambda: Tensor.ones(2).where(1.0, 0.0), TypeError, "where: the condition must be a boolean tensor, got float32"),
    (lambda: (Tensor.ones(2) > 0).where(Tensor.ones(3), 0.0), ValueError, r"where: shapes .* cannot be broadcast"),
])
def test_bad_shape_and_where_arguments_are_refused_naming_the_op(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ----------------------------------------------------------------------------------------------------------
# Dropout
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    manual_seed(0)
    x = Tensor(np.random.default_rng(1).uniform(1, 2, 40_000), requires_grad=True)
    y = x.dropout(p)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / (1 - p), rtol=1e-15)
    assert abs((~kept).mean() - p) < 4 * math.sqrt(p * (1 - p) / x.size)  # within 4 standard deviations
    upstream = np.random.default_rng(2).standard_normal(x.shape)
    y.backward(upstream)
    np.testing.assert_allclose(x.grad.data, upstream * kept / (1 - p), rtol=1e-15)


def test_dropout_follows_manual_seed_and_is_the_identity_outside_training():
    x = Tensor(np.ones((4, 5), np.float32))
    manual_seed(3)
    first = x.dropout(0.5).data
    manual_seed(3)
    np.testing.assert_array_equal(first, x.dropout(0.5).data)
    assert first.dtype == np.float32
    assert x.dropout(0.5, training=False) is x and x.dropout(0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    assert x.dropout(1.0).tolist() == np.zeros((4, 5)).tolist()  # p = 1 drops everything, as PyTorch


def test_dropout_matches_pytorchs_scaling_statistics():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.ones(10_000, dtype=torch.float64), 0.25).numpy()
    ours = Tensor(np.ones(10_000)).dropout(0.25).data
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, 1 / 0.75}


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", None, True])
def test_dropout_refuses_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\], got .* \(input shape \(3,"):
        Tensor.ones(3).dropout(p)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\]"):
        nn.Dropout(p)


# ----------------------------------------------------------------------------------------------------------
# Modules: train/eval, parameters, buffers, layers
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
    assert [name for name, _ in net.named_parameters()] == ["body.layers.0.weight", "body.layers.0.bias",
                                                           "head.weight", "head.bias"]
    assert [name for name, _ in net.named_buffers()] == ["mean"]
    state = net.state_dict()
    assert set(state) == {"body.layers.0.weight", "body.layers.0.bias", "head.weight", "head.bias", "mean"}
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
def test_parameterless_layers_match_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs_name, kwargs = ACTIVATION_LAYERS[name]
    theirs = getattr(torch.nn, theirs_name)(**kwargs)
    x = np.random.default_rng(0).uniform(-2, 2, (3, 4, 2)).astype(dtype)
    if name == "Identity":  # nothing to differentiate through: the very same tensor comes back
        t = Tensor(x)
        assert ours(t) is t
        return
    compare_with_torch(torch, ours, theirs, [x], dtype)


def test_layer_reprs_say_their_settings():
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.ReLU()) == "ReLU()"


def test_linear_initialisation_follows_manual_seed():
    manual_seed(5)
    a = nn.Linear(3, 2)
    manual_seed(5)
    b = nn.Linear(3, 2)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


def test_cross_entropy_refuses_the_output_of_softmax():
    mlp = nn.MLP([4, 3], seed=0)
    x = Tensor(np.ones((2, 4), np.float32))
    labels = np.array([0, 2])
    for call in (lambda: mlp(x).cross_entropy(labels), lambda: F.cross_entropy(nn.Softmax()(mlp.logits(x)), labels)):
        with pytest.raises(ValueError, match=r"cross_entropy: .*output of softmax.*logits.*mlp\.logits\(x\)"):
            call()
    assert np.isfinite(mlp.logits(x).cross_entropy(labels).item())


# ----------------------------------------------------------------------------------------------------------
# nn.init
# ----------------------------------------------------------------------------------------------------------


def test_init_fills_in_place_keeps_dtype_and_returns_the_tensor():
    t = Tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    array = t.data
    for fill in (init.uniform_, init.normal_, init.ones_, init.zeros_, init.xavier_uniform_, init.kaiming_uniform_):
        assert fill(t) is t and t.data is array and t.dtype == np.float32
    assert init.ones_(t).data.sum() == 12 and init.zeros_(t).data.sum() == 0


def test_init_follows_manual_seed():
    manual_seed(7)
    a = init.normal_(Tensor.zeros(5))
    manual_seed(7)
    np.testing.assert_array_equal(a.data, init.normal_(Tensor.zeros(5)).data)


def _expected_draw(bound, shape, seed=0):
    return np.random.default_rng(seed).uniform(-bound, bound, shape)


@pytest.mark.parametrize("shape", [(6, 4), (8, 3, 3, 3)])
@pytest.mark.parametrize("a, nonlinearity, mode", [(0, "leaky_relu", "fan_in"), (math.sqrt(5), "leaky_relu", "fan_in"),
                                                   (0, "relu", "fan_out"), (0, "tanh", "fan_in")])
def test_kaiming_uniform_has_pytorchs_bound(shape, a, nonlinearity, mode):
    torch = pytest.importorskip("torch")
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * (torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan))  # PyTorch's code
    t = init.kaiming_uniform_(Tensor.zeros(*shape, dtype=np.float64), a, nonlinearity, mode=mode,
                              generator=np.random.default_rng(0))
    np.testing.assert_array_equal(t.data, _expected_draw(bound, shape))
    assert init.calculate_gain(nonlinearity, a) == torch.nn.init.calculate_gain(nonlinearity, a)


@pytest.mark.parametrize("shape, gain", [((6, 4), 1.0), ((8, 3, 3, 3), 5 / 3)])
def test_xavier_uniform_has_pytorchs_bound(shape, gain):
    fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    bound = math.sqrt(3.0) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))  # PyTorch's code
    t = init.xavier_uniform_(Tensor.zeros(*shape, dtype=np.float64), gain, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(t.data, _expected_draw(bound, shape))
    assert bound == pytest.approx(gain * math.sqrt(6.0 / (fan_in + fan_out)), rel=1e-15)  # Glorot's formula


def test_uniform_and_normal_draw_what_numpy_draws():
    t = init.uniform_(Tensor.zeros(3, dtype=np.float64), -2, 5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(t.data, np.random.default_rng(1).uniform(-2, 5, 3))
    t = init.normal_(Tensor.zeros(3, dtype=np.float64), 1, 0.5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(t.data, np.random.default_rng(1).normal(1, 0.5, 3))


def test_init_refuses_what_it_cannot_fill():
    with pytest.raises(ValueError, match=r"xavier_uniform_: fan in and fan out need .* got shape \(3,\)"):
        init.xavier_uniform_(Tensor.zeros(3))
    with pytest.raises(ValueError, match="kaiming_uniform_: mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(Tensor.zeros(3, 3), mode="fan")
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="uniform_: expects a Tensor, got ndarray"):
        init.uniform_(np.zeros(3))
    assert init.kaiming_uniform_(Tensor.zeros(0, 3)).shape == (0, 3)  # nothing to fill, as PyTorch


def test_default_generator_is_the_one_manual_seed_sets():
    manual_seed(11)
    first = default_generator().random()
    manual_seed(11)
    assert default_generator().random() == first


# ----------------------------------------------------------------------------------------------------------
# nn.functional
# ----------------------------------------------------------------------------------------------------------

FUNCTIONAL = {
    "relu": (lambda x: F.relu(x), "relu", {}),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2}),
    "gelu": (lambda x: F.gelu(x), "gelu", {}),
    "softplus": (lambda x: F.softplus(x), "softplus", {}),
    "sigmoid": (lambda x: F.sigmoid(x), "sigmoid", {}),
    "tanh": (lambda x: F.tanh(x), "tanh", {}),
    "softmax": (lambda x: F.softmax(x, dim=0), "softmax", {"dim": 0}),
    "log_softmax": (lambda x: F.log_softmax(x), "log_softmax", {"dim": -1}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_activations_match_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs, kwargs = FUNCTIONAL[name]
    x = np.random.default_rng(len(name)).uniform(-3, 3, (4, 5)).astype(dtype)
    x[np.abs(x) < 0.05] = 0.5  # no kinks within rounding
    compare_with_torch(torch, ours, lambda t: getattr(torch.nn.functional, theirs)(t, **kwargs), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["var", "var_axis", "std", "std_correction0", "where", "cat", "stack", "unsqueeze",
                                  "squeeze", "view", "clamp"])
def test_new_tensor_ops_match_pytorch(name, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(name))
    a, b = rng.uniform(-2, 2, (3, 1, 4)).astype(dtype), rng.uniform(-2, 2, (3, 1, 4)).astype(dtype)
    cases = {
        "var": (lambda x, y: x.var(), lambda x, y: x.var()),
        "var_axis": (lambda x, y: x.var((0, 2), keepdim=True), lambda x, y: x.var((0, 2), keepdim=True)),
        "std": (lambda x, y: x.std(-1), lambda x, y: x.std(-1)),
        "std_correction0": (lambda x, y: x.std(0, correction=0), lambda x, y: x.std(0, correction=0)),
        "where": (lambda x, y: (x > 0).where(x, y), lambda x, y: torch.where(x > 0, x, y)),
        "cat": (lambda x, y: x.cat(y, x, dim=-1), lambda x, y: torch.cat([x, y, x], dim=-1)),
        "stack": (lambda x, y: Tensor.stack(x, y, dim=1), lambda x, y: torch.stack([x, y], dim=1)),
        "unsqueeze": (lambda x, y: x.unsqueeze(-2) * y, lambda x, y: x.unsqueeze(-2) * y),
        "squeeze": (lambda x, y: x.squeeze() + y.squeeze(1), lambda x, y: x.squeeze() + y.squeeze(1)),
        "view": (lambda x, y: x.view(4, 3) @ y.view(3, 4), lambda x, y: x.view(4, 3) @ y.view(3, 4)),
        "clamp": (lambda x, y: x.clamp(-0.5, 0.5) + y, lambda x, y: x.clamp(-0.5, 0.5) + y),
    }
    compare_with_torch(torch, *cases[name], [a, b], dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_pytorch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    compare_with_torch(torch, lambda t: F.mse_loss(t, target, reduction),
                       lambda t: torch.nn.functional.mse_loss(t, torch.tensor(target), reduction=reduction),
                       [x], np.float64)
    p, y = rng.uniform(0.05, 0.95, (5, 3)), rng.uniform(0, 1, (5, 3))
    compare_with_torch(torch, lambda t: F.binary_cross_entropy(t, y, reduction),
                       lambda t: torch.nn.functional.binary_cross_entropy(t, torch.tensor(y), reduction=reduction),
                       [p], np.float64)
    labels = rng.integers(0, 3, 5)
    compare_with_torch(torch, lambda t: F.cross_entropy(t, labels, reduction),
                       lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(labels), reduction=reduction),
                       [x], np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_linear_matches_pytorch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((4, 3), (2, 3), (2,))]
    compare_with_torch(torch, F.linear, torch.nn.functional.linear, arrays, dtype)
    compare_with_torch(torch, F.linear, torch.nn.functional.linear, arrays[:2], dtype)


def test_mse_loss_refuses_mismatched_shapes_and_reductions():
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(3, 1\) differs from input shape \(3,\)"):
        F.mse_loss(Tensor.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse_loss(Tensor.zeros(3), np.zeros(3), reduction="avg")


# ----------------------------------------------------------------------------------------------------------
# data.batches
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_give_every_sample_once_per_pass(shuffle, drop_last):
    x, y = np.arange(23)[:, None] * np.ones(3), np.arange(23)
    out = list(data.batches(x, y, 5, shuffle=shuffle, seed=1, drop_last=drop_last))
    assert [len(yb) for _, yb in out] == [5, 5, 5, 5] + ([] if drop_last else [3])
    seen = np.concatenate([yb for _, yb in out])
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], yb)  # x and y stay paired
    assert len(set(seen.tolist())) == len(seen) == (20 if drop_last else 23)
    assert (seen.tolist() == list(range(len(seen)))) == (not shuffle)


def test_batches_shuffle_reproducibly_from_a_seed_or_from_manual_seed():
    x = y = np.arange(50)

    def order(**kwargs):
        return np.concatenate([yb for _, yb in data.batches(x, y, 7, shuffle=True, **kwargs)])

    np.testing.assert_array_equal(order(seed=3), order(seed=3))
    assert not np.array_equal(order(seed=3), order(seed=4))
    manual_seed(9)
    first = order()
    manual_seed(9)
    np.testing.assert_array_equal(first, order())
    assert not np.array_equal(order(), order())  # one generator: a new order each pass


@pytest.mark.parametrize("args, pattern", [
    ((np.zeros(4), np.zeros(3), 2), r"batches: x and y must hold the same number of samples, got shapes \(4,\) and"),
    ((np.zeros(4), np.zeros(4), 0), "batches: batch_size must be a positive int, got 0"),
    ((np.zeros(4), np.zeros(4), 2.0), "batches: batch_size must be a positive int, got 2.0"),
])
def test_batches_refuse_bad_arguments_at_the_call(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.batches(*args)
