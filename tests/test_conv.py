"""The convolution and pooling rules, conv2d and max_pool2d: values against a direct loop (the definition),
gradients against finite differences over hypothesis sweeps of shapes, strides and paddings, PyTorch as an oracle,
and clear errors for inputs that do not fit. (Their rows in the op table get every check of tests/test_ops.py;
the Conv2d and MaxPool2d layers: tests/test_nn_layers.py.)"""

import numpy as np
import pytest
from helpers import compare_with_torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_like import Tensor, gradcheck, nn

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
def test_conv2d_with_strides_and_paddings_matches_pytorch(dtype, stride, padding, bias, torch):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2, 7, 6)).astype(dtype), rng.standard_normal((4, 2, 3, 2)).astype(dtype)]
    arrays += [rng.standard_normal(4).astype(dtype)] if bias else []
    rtol = 1e-4 if dtype == np.float32 else None  # sums of dozens of float32 products
    compare_with_torch(torch, lambda x, w, *b: x.conv2d(w, *b, stride=stride, padding=padding),
                       lambda x, w, *b: torch.nn.functional.conv2d(x, w, *b, stride=stride, padding=padding),
                       arrays, dtype, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), 1), (3, (1, 2))])
def test_max_pool2d_matches_pytorch(dtype, kernel, stride, torch):
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 8)).astype(dtype)
    compare_with_torch(torch, lambda t: t.max_pool2d(kernel, stride),
                       lambda t: torch.nn.functional.max_pool2d(t, kernel, stride), [x], dtype)


def test_max_pool2d_ties_go_to_the_first_maximum_as_pytorch(torch):
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
])
def test_inputs_that_do_not_fit_are_refused_naming_the_op_and_shapes(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_takes_pytorchs_signature_and_padding_modes(torch, mode):
    ours = nn.Conv2d(2, 3, 3, 1, 1, 1, 1, True, mode)  # positional as PyTorch's: ..., dilation, groups, bias, mode
    theirs = torch.nn.Conv2d(2, 3, 3, 1, 1, 1, 1, True, mode).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data.astype(np.float64)))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data.astype(np.float64)))
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    np.testing.assert_allclose(ours.double()(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10)
    with pytest.raises(NotImplementedError, match="Conv2d: dilation=.* is not supported"):
        nn.Conv2d(2, 3, 3, dilation=2)
