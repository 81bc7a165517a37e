"""conv2d and max_pool2d, and the Conv2d / MaxPool2d layers: values against a direct loop (the definition),
gradients against finite differences over hypothesis sweeps of shapes, strides and paddings, PyTorch as an
oracle, and clear errors for inputs that do not fit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch

from tinygrad_like import Tensor, gradcheck, manual_seed, nn
from tinygrad_like.nn import functional as F

SWEEP = settings(max_examples=15, deadline=None)
DTYPES = [np.float32, np.float64]


def conv_by_definition(x, w, b, stride, padding):
    """z[n, o, h, v] = b[o] + sum_{c, i, j} w[o, c, i, j] xp[n, c, s h + i, s v + j], one output at a time."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, o, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for index in np.ndindex(n, o, ho, wo):
        m, k, h, v = index
        out[index] = (w[k] * xp[m, :, sh * h:sh * h + kh, sw * v:sw * v + kw]).sum() + (0 if b is None else b[k])
    return out


def pool_by_definition(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (ho, wo))
    for h, v in np.ndindex(ho, wo):
        out[:, :, h, v] = x[:, :, sh * h:sh * h + kh, sw * v:sw * v + kw].max(axis=(2, 3))
    return out


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 6)), draw(st.integers(max(1, kw - 2 * pw), 6))
    return {"n": draw(st.integers(1, 2)), "c": draw(st.integers(1, 3)), "o": draw(st.integers(1, 3)), "h": h, "w": w,
            "kernel": (kh, kw), "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))), "padding": (ph, pw),
            "bias": draw(st.booleans()), "seed": draw(st.integers(0, 2**32 - 1))}


@SWEEP
@given(case=conv_cases())
def test_conv2d_values_and_gradients(case):
    rng = np.random.default_rng(case["seed"])
    x = Tensor(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])), requires_grad=True)
    w = Tensor(rng.standard_normal((case["o"], case["c"], *case["kernel"])), requires_grad=True)
    b = Tensor(rng.standard_normal(case["o"]), requires_grad=True) if case["bias"] else None
    stride, padding = case["stride"], case["padding"]
    out = x.conv2d(w, b, stride, padding)
    np.testing.assert_allclose(out.data, conv_by_definition(x.data, w.data, None if b is None else b.data, stride,
                                                            padding), rtol=1e-12, atol=1e-12)
    inputs = [x, w] + ([b] if b is not None else [])
    assert gradcheck(lambda *t: t[0].conv2d(t[1], t[2] if len(t) > 2 else None, stride, padding), *inputs)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    return {"shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(kh, 6)),
                      draw(st.integers(kw, 6))), "kernel": (kh, kw), "stride": stride,
            "seed": draw(st.integers(0, 2**32 - 1))}


@SWEEP
@given(case=pool_cases())
def test_max_pool2d_values_and_gradients(case):
    x = Tensor(np.random.default_rng(case["seed"]).standard_normal(case["shape"]), requires_grad=True)  # no ties
    out = x.max_pool2d(case["kernel"], case["stride"])
    stride = case["kernel"] if case["stride"] is None else case["stride"]
    np.testing.assert_array_equal(out.data, pool_by_definition(x.data, case["kernel"], stride))
    assert gradcheck(lambda t: t.max_pool2d(case["kernel"], case["stride"]), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride, padding, bias", [(1, 0, True), (2, 1, True), ((1, 2), (2, 0), False), (3, 2, True)])
def test_conv2d_matches_pytorch(dtype, stride, padding, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2, 7, 6)).astype(dtype), rng.standard_normal((4, 2, 3, 2)).astype(dtype)]
    arrays += [rng.standard_normal(4).astype(dtype)] if bias else []
    rtol = 1e-4 if dtype == np.float32 else None  # sums of dozens of float32 products
    compare_with_torch(torch, lambda x, w, *b: x.conv2d(w, *b, stride=stride, padding=padding),
                       lambda x, w, *b: torch.nn.functional.conv2d(x, w, *b, stride=stride, padding=padding),
                       arrays, dtype, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), 1), (3, (1, 2))])
def test_max_pool2d_matches_pytorch(dtype, kernel, stride):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 8)).astype(dtype)
    compare_with_torch(torch, lambda t: t.max_pool2d(kernel, stride),
                       lambda t: torch.nn.functional.max_pool2d(t, kernel, stride), [x], dtype)


def test_max_pool2d_ties_go_to_the_first_maximum_as_pytorch():
    torch = pytest.importorskip("torch")
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])  # overlapping windows, all tied
    ours = compare_with_torch(torch, lambda t: t.max_pool2d(2, 1),
                              lambda t: torch.nn.functional.max_pool2d(t, 2, 1), [x], np.float64)
    assert ours.tolist() == [[[[1.0, 1.0], [1.0, 1.0]]]]


def test_conv2d_gradient_of_the_weight_is_the_correlation_of_input_and_upstream():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 1, 5, 5)))
    w = Tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    g = rng.standard_normal((2, 1, 3, 3))
    x.conv2d(w).backward(g)
    expected = np.array([[(x.data[:, 0, i:i + 3, j:j + 3] * g[:, 0]).sum() for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(w.grad.data[0, 0], expected, rtol=1e-12)


def test_conv2d_and_pool_keep_float32_and_promote_as_pytorch():
    x = Tensor(np.ones((1, 1, 4, 4), np.float32))
    w = Tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
    assert x.conv2d(w).dtype == np.float32 and x.max_pool2d().dtype == np.float32
    assert Tensor(np.ones((1, 1, 4, 4), np.int32)).conv2d(w).dtype == np.float32
    assert x.conv2d(Tensor(np.ones((2, 1, 3, 3)))).dtype == np.float64


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: Tensor.ones(1, 3, 5, 5).conv2d(Tensor.ones(2, 1, 3, 3)), ValueError,
     r"conv2d: input of shape \(1, 3, 5, 5\) has 3 channels, but the weight of shape \(2, 1, 3, 3\) expects 1"),
    (lambda: Tensor.ones(1, 1, 2, 2).conv2d(Tensor.ones(1, 1, 5, 5), padding=1), ValueError,
     r"conv2d: kernel \(5, 5\) is larger than the padded input \(4, 4\) \(input shape \(1, 1, 2, 2\), padding"),
    (lambda: Tensor.ones(1, 1, 5, 5).conv2d(Tensor.ones(1, 1, 3, 3), stride=0), ValueError,
     "conv2d: stride must be at least 1, got 0"),
    (lambda: Tensor.ones(1, 1, 5, 5).conv2d(Tensor.ones(1, 1, 3, 3), padding=-1), ValueError,
     "conv2d: padding must be at least 0, got -1"),
    (lambda: Tensor.ones(1, 1, 5, 5).conv2d(Tensor.ones(1, 1, 3, 3), stride=1.5), TypeError,
     "conv2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda: Tensor.ones(1, 5, 5).conv2d(Tensor.ones(1, 1, 3, 3)), ValueError,
     r"conv2d: expects input of shape \(N, C, H, W\), got shape \(1, 5, 5\)"),
    (lambda: Tensor.ones(1, 1, 5, 5).conv2d(Tensor.ones(3, 3)), ValueError,
     r"conv2d: expects a weight of shape \(out_channels, in_channels, kh, kw\), got \(3, 3\)"),
    (lambda: Tensor.ones(1, 1, 5, 5).conv2d(Tensor.ones(2, 1, 3, 3), Tensor.ones(3)), ValueError,
     r"conv2d: bias of shape \(3,\) does not fit a weight of shape \(2, 1, 3, 3\)"),
    (lambda: Tensor.ones(1, 1, 2, 5).max_pool2d(3), ValueError,
     r"max_pool2d: kernel \(3, 3\) is larger than the input \(2, 5\) \(input shape \(1, 1, 2, 5\)\)"),
    (lambda: Tensor.ones(1, 1, 4, 4).max_pool2d(2, 0), ValueError, "max_pool2d: stride must be at least 1, got 0"),
    (lambda: Tensor.ones(1, 1, 4, 4).max_pool2d((2, 2, 2)), TypeError,
     r"max_pool2d: kernel_size must be an int or a pair of ints, got \(2, 2, 2\)"),
    (lambda: Tensor.ones(4, 4).max_pool2d(2), ValueError, r"max_pool2d: expects input of shape \(N, C, H, W\)"),
    (lambda: nn.Conv2d(1, 2, 0), ValueError, "Conv2d: kernel_size must be at least 1, got 0"),
    (lambda: nn.Conv2d(0, 2, 3), ValueError, "Conv2d: in_channels and out_channels must be positive"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be at least 1, got 0"),
    (lambda: nn.Conv2d(3, 2, 3)(Tensor.ones(1, 1, 5, 5)), ValueError, r"conv2d: input of shape \(1, 1, 5, 5\) has 1"),
])
def test_inputs_that_do_not_fit_are_refused_naming_the_op_and_shapes(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ----------------------------------------------------------------------------------------------------------
# The layers
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


class SmallCNN(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(F.relu(self.conv(x)))))


def test_a_small_cnn_gives_pytorchs_loss_and_gradients():
    torch = pytest.importorskip("torch")
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
