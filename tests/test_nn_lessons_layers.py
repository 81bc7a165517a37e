"""The layers of today's lessons against PyTorch with the same weights, in float64: Embedding, BatchNorm1d/2d,
LayerNorm, GroupNorm, RMSNorm, GELU, SiLU, LeakyReLU, Softplus, ELU, Conv1d, AvgPool2d, AdaptiveAvgPool2d, and
their functional forms with F.pad. Each is compared on outputs, on gradients of inputs and parameters under a
random upstream gradient, and on second derivatives (the gradient of (grad . v) for a random v); state_dict keys
and shapes are PyTorch's. Last, makemore's lecture code runs unchanged on both libraries with the same numbers.
Containers and the Module API: test_nn_containers.py; export of these layers: test_export_lessons.py."""

import functools
from collections.abc import Callable

import numpy as np
import pytest
from helpers import agree_with_torch, gaussian

import tinygrad_like
from tinygrad_like import Tensor, autograd, nn
from tinygrad_like.nn import functional as F

RTOL = 1e-9


def close(ours, theirs, what: str) -> None:
    theirs = np.zeros(np.shape(ours)) if theirs is None else theirs.detach().numpy()
    ours = np.zeros(theirs.shape) if ours is None else ours.data
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL, err_msg=what)


def agree(torch, ours_fn: Callable, theirs_fn: Callable, ours_leaves: list, theirs_leaves: list,
          second_order: bool = True, seed: int = 0) -> None:
    """ours_fn() and theirs_fn() (the same computation on leaves holding the same values) agree on the output, on
    the gradients of every leaf under a random upstream gradient, and (``second_order``) on the gradients of
    sum_i (grad_i . v_i) for random v_i, i.e. double backward (``agree_with_torch``)."""
    agree_with_torch(torch, [ours_fn()], [theirs_fn()], ours_leaves, theirs_leaves, second_order=second_order,
                     seed=seed, rtol=RTOL)


def same_weights(torch, ours: nn.Module, theirs) -> None:
    """Both modules in float64, ours' state copied into theirs; their state_dict keys, order and shapes agree."""
    ours.double()
    theirs.double()
    state = ours.state_dict()
    assert [(k, v.shape) for k, v in state.items()] == [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)


def layer_agrees(torch, ours: nn.Module, theirs, x: np.ndarray, second_order: bool = True) -> None:
    """``ours`` and the PyTorch layer ``theirs`` with the same weights agree on ``x`` (see ``agree``); a float
    input is differentiated too."""
    same_weights(torch, ours, theirs)
    differentiable = x.dtype.kind == "f"
    xo, xt = Tensor(x, requires_grad=differentiable), torch.tensor(x, requires_grad=differentiable)
    leaves = ([xo] if differentiable else []) + ours.parameters()
    tleaves = ([xt] if differentiable else []) + list(theirs.parameters())
    agree(torch, lambda: ours(xo), lambda: theirs(xt), leaves, tleaves, second_order)


normal = functools.partial(gaussian, seed=np.random.default_rng(7))  # one stream: each call draws on


# ----------------------------------------------------------------------------------------------------------
# Layers with parameters
# ----------------------------------------------------------------------------------------------------------


def test_embedding_picks_rows_and_its_padding_row_is_zero_and_learns_nothing(torch):
    emb = nn.Embedding(10, 4, padding_idx=-1)  # negative: counts from the end, as PyTorch
    assert emb.padding_idx == 9 and emb.weight.shape == (10, 4) and isinstance(emb.weight, nn.Parameter)
    np.testing.assert_array_equal(emb.weight.data[9], 0)
    indices = np.array([[1, 9, 3], [3, 3, 0]])  # repeated indices add up, the padding row gets nothing
    # linear in the weight: no second derivative to compare (the functional test goes through tanh)
    layer_agrees(torch, emb, torch.nn.Embedding(10, 4, padding_idx=-1), indices, second_order=False)
    out = emb(Tensor(indices))
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(emb.weight.grad.data[9], 0)
    assert emb.weight.grad.data[3].tolist() == [3.0] * 4
    assert out.op == "embedding" and emb(indices.tolist()).shape == (2, 3, 4)  # lists and arrays too


def test_embedding_init_is_standard_normal_and_follows_manual_seed():
    tinygrad_like.manual_seed(3)
    a = nn.Embedding(2000, 50)
    tinygrad_like.manual_seed(3)
    np.testing.assert_array_equal(a.weight.data, nn.Embedding(2000, 50).weight.data)
    assert a.weight.dtype == np.float32
    assert abs(a.weight.data.mean()) < 0.01 and abs(a.weight.data.std() - 1) < 0.01


def test_embedding_refusals_name_the_problem():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"embedding: index 5 is out of range for 5 embeddings"):
        emb(Tensor(np.array([0, 5])))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="embedding: indices must be integers, got dtype float32"):
        emb(Tensor([1.0]))
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for 5 embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(NotImplementedError, match="Embedding: max_norm=1.0 is not supported"):
        nn.Embedding(5, 2, max_norm=1.0)


def test_embedding_from_pretrained_is_frozen_unless_asked(torch):
    table = normal(4, 3)
    frozen = nn.Embedding.from_pretrained(Tensor(table))
    assert not frozen.weight.requires_grad and [n for n, _ in frozen.named_parameters()] == ["weight"]
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False, padding_idx=1)
    layer_agrees(torch, nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1), theirs,
                 np.array([[1, 2], [0, 3]]), second_order=False)


@pytest.mark.parametrize("shape, cls", [((6, 3), "BatchNorm1d"), ((4, 3, 5), "BatchNorm1d"),
                                        ((3, 3, 4, 2), "BatchNorm2d")])
@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False},
                                     {"eps": 1e-2, "momentum": 0.3}])
def test_batch_norm_trains_on_batch_statistics_and_evaluates_on_running_ones(torch, shape, cls, options):
    ours, theirs = getattr(nn, cls)(3, **options), getattr(torch.nn, cls)(3, **options)
    same_weights(torch, ours, theirs)
    for step in range(3):  # the running statistics move the same way (unbiased variance, momentum or average)
        x = normal(*shape) * 2 + step
        layer_agrees(torch, ours, theirs, x, second_order=step == 0)
        for name, buffer in theirs.named_buffers():
            np.testing.assert_allclose(dict(ours.named_buffers())[name].data, buffer.numpy(), rtol=1e-12)
    if options.get("track_running_stats", True):
        assert ours.num_batches_tracked.item() == 3 and ours.num_batches_tracked.dtype == np.int64
    ours.eval()
    theirs.eval()  # with running statistics and no affine parameters, the layer is linear: no second derivative
    layer_agrees(torch, ours, theirs, normal(*shape), second_order=ours.affine or not ours.track_running_stats)
    assert ours.training is False


def test_batch_norm_refusals_are_pytorchs():
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2D or 3D input, got shape \(2, 3, 4, 5\)"):
        nn.BatchNorm1d(3)(Tensor.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel when training, got input shape "
                                         r"\(1, 3\)"):
        nn.BatchNorm1d(3)(Tensor.ones(1, 3))
    with pytest.raises(ValueError, match=r"running_mean of shape \(4,\) does not fit the 3 channels"):
        nn.BatchNorm2d(4)(Tensor.zeros(2, 3, 2, 2))
    assert nn.BatchNorm1d(3).eval()(Tensor.ones(1, 3)).shape == (1, 3)  # evaluation needs no batch


@pytest.mark.parametrize("make, x", [
    (lambda nn_: nn_.LayerNorm(5), lambda: normal(3, 5)),
    (lambda nn_: nn_.LayerNorm([2, 5], eps=1e-3), lambda: normal(4, 2, 5)),
    (lambda nn_: nn_.LayerNorm(5, elementwise_affine=False), lambda: normal(3, 5)),
    (lambda nn_: nn_.LayerNorm(5, bias=False), lambda: normal(2, 3, 5)),
    (lambda nn_: nn_.GroupNorm(2, 6), lambda: normal(3, 6, 4)),
    (lambda nn_: nn_.GroupNorm(3, 3, eps=1e-3, affine=False), lambda: normal(2, 3, 2, 2)),
    (lambda nn_: nn_.GroupNorm(1, 4), lambda: normal(2, 4)),
    (lambda nn_: nn_.RMSNorm(5), lambda: normal(3, 5)),
    (lambda nn_: nn_.RMSNorm([2, 3], eps=1e-4), lambda: normal(4, 2, 3)),
    (lambda nn_: nn_.RMSNorm(4, elementwise_affine=False), lambda: normal(2, 4)),
    (lambda nn_: nn_.Conv1d(3, 4, 3), lambda: normal(2, 3, 9)),
    (lambda nn_: nn_.Conv1d(2, 3, (2,), stride=2, padding=1, bias=False), lambda: normal(2, 2, 7)),
    (lambda nn_: nn_.Conv1d(2, 3, 3, padding=2, padding_mode="reflect"), lambda: normal(2, 2, 5)),
    (lambda nn_: nn_.Conv1d(2, 3, 3, padding=1, padding_mode="circular"), lambda: normal(2, 5)),  # unbatched
], ids=["layer", "layer-2d", "layer-no-affine", "layer-no-bias", "group", "group-no-affine", "group-one",
        "rms", "rms-2d", "rms-no-affine", "conv1d", "conv1d-stride", "conv1d-reflect", "conv1d-unbatched"])
def test_normalisations_and_conv1d_match_pytorch(torch, make, x):
    layer_agrees(torch, make(nn), make(torch.nn), x())


def test_layer_init_is_pytorchs():
    torch_like = {"weight": 1.0, "bias": 0.0}
    for layer in (nn.LayerNorm(4), nn.GroupNorm(2, 4), nn.BatchNorm2d(4), nn.RMSNorm(4)):
        for name, p in layer.named_parameters():
            assert isinstance(p, nn.Parameter) and p.dtype == np.float32
            np.testing.assert_array_equal(p.data, torch_like[name])
    conv = nn.Conv1d(3, 8, 5)
    bound = 1 / np.sqrt(3 * 5)
    assert conv.weight.shape == (8, 3, 5) and np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.bias.data).max() <= bound


def test_norm_refusals_name_the_shapes():
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \[4\] must be the last sizes of the "
                                         r"input's shape, got input shape \(2, 3\)"):
        nn.LayerNorm(4)(Tensor.zeros(2, 3))
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"the 6 channels of input shape \(2, 6, 4\) cannot be split into 4 "):
        F.group_norm(Tensor.zeros(2, 6, 4), 4)
    with pytest.raises(NotImplementedError, match="conv1d: groups=2 is not supported"):
        F.conv1d(Tensor.zeros(1, 2, 4), Tensor.zeros(2, 1, 1), groups=2)


# ----------------------------------------------------------------------------------------------------------
# Activations and pooling (through tanh where the op alone is linear, so that second derivatives are not zero)
# ----------------------------------------------------------------------------------------------------------


ACTIVATIONS = [
    ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.2}), ("Softplus", {}), ("Softplus", {"beta": 2.0, "threshold": 1.0}),
    ("ELU", {}), ("ELU", {"alpha": 0.5}), ("ReLU", {}),
]


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS, ids=[f"{n}{k}" for n, k in ACTIVATIONS])
def test_activation_modules_match_pytorch(torch, name, kwargs):
    x = normal(4, 5) * 2
    x[0, :3] = [25.0, 0.49, 0.51]  # around Softplus's thresholds
    piecewise_linear = name in ("ReLU", "LeakyReLU")  # no second derivative
    layer_agrees(torch, getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), x, not piecewise_linear)


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS, ids=[f"{n}{k}" for n, k in ACTIVATIONS])
def test_activation_gradients_at_the_kinks_are_pytorchs(torch, name, kwargs):
    # At exactly x = 0 (ELU, LeakyReLU, ReLU) and beta x = threshold (Softplus) the first derivative is PyTorch's;
    # PyTorch's second derivative there takes the other side than its first (a mask of x < 0 against x <= 0),
    # so second derivatives are compared away from these points (above).
    x = np.array([[0.0, 20.0, 0.5, -1.0, 1.0]])
    layer_agrees(torch, getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), x, second_order=False)


def test_activations_in_place_overwrite_their_input_and_keep_gradients_right(torch):
    for name in ("ReLU", "SiLU", "ELU", "LeakyReLU"):
        a = normal(3, 4)
        x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        h, th = x * 2, tx * 2
        out, tout = getattr(nn, name)(inplace=True)(h), getattr(torch.nn, name)(inplace=True)(th)
        assert out is h
        upstream = normal(3, 4)
        # autograd.grad walks the graph from h, which now reaches h as it was before the change
        (first,) = autograd.grad(out, [x], Tensor(upstream), retain_graph=True)
        out.backward(upstream)
        tout.backward(torch.tensor(upstream))
        close(x.grad, tx.grad, name)
        close(first, tx.grad, name)
    with pytest.raises(RuntimeError):
        F.relu(Tensor([1.0], requires_grad=True), inplace=True)  # a leaf that requires grad: PyTorch's refusal


def test_activation_reprs_and_refusals():
    assert repr(nn.GELU(approximate="tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2, inplace=False)"
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got 'erf'"):
        nn.GELU("erf")
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(Tensor([1.0]), approximate="fast")


POOLS = [
    ("AvgPool2d", (2,), {}), ("AvgPool2d", (3,), {"stride": 2, "padding": 1}),
    ("AvgPool2d", ((3, 2),), {"stride": (2, 1), "padding": (1, 0), "count_include_pad": False}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("AvgPool2d", (2,), {"ceil_mode": True, "count_include_pad": False}),
    ("AvgPool2d", (2,), {"divisor_override": 3}),
    ("AdaptiveAvgPool2d", (1,), {}), ("AdaptiveAvgPool2d", ((3, 2),), {}), ("AdaptiveAvgPool2d", ((4, None),), {}),
    ("AdaptiveAvgPool2d", (5,), {}),
]


@pytest.mark.parametrize("name, args, kwargs", POOLS, ids=[f"{n}{a}{k}" for n, a, k in POOLS])
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 5, 5)], ids=["batched", "unbatched"])
def test_average_pooling_matches_pytorch_for_any_window(torch, name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    x = normal(*shape)
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    agree(torch, lambda: ours(xo).tanh(), lambda: theirs(xt).tanh(), [xo], [xt])


def test_pooling_refusals_name_the_shapes():
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(2, 2\) must be at most half of kernel_size"):
        F.avg_pool2d(Tensor.zeros(1, 1, 5, 5), 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: expects input of shape \(N, C, H, W\) or \(C, H, W\), got "
                                         r"shape \(5, 5\)"):
        nn.AvgPool2d(2)(Tensor.zeros(5, 5))
    with pytest.raises(ValueError, match=r"avg_pool2d: kernel \(4, 4\) is larger than the padded input"):
        F.avg_pool2d(Tensor.zeros(1, 1, 3, 3), 4)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d: output_size must be at least 1, got 0"):
        nn.AdaptiveAvgPool2d((0, 2))


# ----------------------------------------------------------------------------------------------------------
# The functional forms, with weights as inputs
# ----------------------------------------------------------------------------------------------------------


FUNCTIONS = {  # name: (our call and PyTorch's on (F, *tensors), float input arrays)
    "layer_norm": (lambda F_, x, w, b: F_.layer_norm(x, (2, 4), w, b, eps=1e-3), [(3, 2, 4), (2, 4), (2, 4)]),
    "group_norm": (lambda F_, x, w, b: F_.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    "rms_norm": (lambda F_, x, w: F_.rms_norm(x, [4], w), [(3, 4), (4,)]),
    "rms_norm-eps": (lambda F_, x: F_.rms_norm(x, [4], eps=0.1), [(3, 4)]),
    "batch_norm-train": (lambda F_, x, w, b: F_.batch_norm(x, None, None, w, b, training=True), [(5, 3), (3,), (3,)]),
    "silu": (lambda F_, x: F_.silu(x), [(3, 4)]),
    "elu": (lambda F_, x: F_.elu(x, alpha=1.5), [(3, 4)]),
    "gelu-tanh": (lambda F_, x: F_.gelu(x, approximate="tanh"), [(3, 4)]),
    "softplus": (lambda F_, x: F_.softplus(x, beta=0.5, threshold=0.5), [(3, 4)]),
    "leaky_relu": (lambda F_, x: F_.leaky_relu(x, negative_slope=0.3).tanh(), [(3, 4)]),
    "conv1d": (lambda F_, x, w, b: F_.conv1d(x, w, b, stride=2, padding=1), [(2, 3, 8), (4, 3, 3), (4,)]),
    "avg_pool2d": (lambda F_, x: F_.avg_pool2d(x, 2, 1, 1, count_include_pad=False).tanh(), [(1, 2, 4, 5)]),
    "adaptive_avg_pool2d": (lambda F_, x: F_.adaptive_avg_pool2d(x, (3, 2)).tanh(), [(1, 2, 7, 5)]),
    "pad-constant": (lambda F_, x: F_.pad(x, (1, 2, 0, -1), value=0.5).tanh(), [(2, 3, 4)]),
    "pad-reflect": (lambda F_, x: F_.pad(x, (2, 1, 1, 1), mode="reflect").tanh(), [(2, 3, 4)]),
    "pad-replicate": (lambda F_, x: F_.pad(x, (3, 0), mode="replicate").tanh(), [(2, 3, 4)]),
    "pad-circular": (lambda F_, x: F_.pad(x, (1, 2, 2, 0), mode="circular").tanh(), [(1, 2, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functional_forms_match_pytorch(torch, name):
    call, shapes = FUNCTIONS[name]
    arrays = [normal(*shape) for shape in shapes]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    agree(torch, lambda: call(F, *ours), lambda: call(torch.nn.functional, *theirs), ours, theirs)


def test_functional_embedding_and_batch_norm_update_what_they_are_given(torch):
    weight, indices = normal(6, 3), np.array([[0, 5, 5], [2, 0, 1]])
    w, tw = Tensor(weight, requires_grad=True), torch.tensor(weight, requires_grad=True)
    agree(torch, lambda: F.embedding(Tensor(indices), w, padding_idx=0).tanh(),
          lambda: torch.nn.functional.embedding(torch.tensor(indices), tw, padding_idx=0).tanh(), [w], [tw])
    means, variances = Tensor.zeros(3, dtype=np.float64), Tensor.ones(3, dtype=np.float64)
    tmeans, tvariances = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    x = normal(4, 3, 2)
    for training in (True, True, False):
        close(F.batch_norm(Tensor(x), means, variances, training=training, momentum=0.2),
              torch.nn.functional.batch_norm(torch.tensor(x), tmeans, tvariances, training=training, momentum=0.2),
              "batch_norm")
        close(means, tmeans, "running_mean")
        close(variances, tvariances, "running_var")
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var must be given outside training"):
        F.batch_norm(Tensor(x), None, None)


def test_pad_follows_pytorchs_order_and_refusals(torch):
    x = np.arange(6.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(F.pad(Tensor(x), (1, 0)).data, torch.nn.functional.pad(torch.tensor(x), (1, 0)))
    assert F.pad(Tensor(x), (0, 0, 2, 1)).shape == (1, 5, 3)  # last axis first: (left, right, top, bottom)
    with pytest.raises(ValueError, match=r"pad: pad \(1, 2, 3\) must hold \(before, after\) pairs"):
        F.pad(Tensor(x), (1, 2, 3))
    with pytest.raises(ValueError, match=r"pad: mode 'reflect' needs widths from 0 to 2 for axis 2 of input shape "
                                         r"\(1, 2, 3\), got \(3, 0\)"):
        F.pad(Tensor(x), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="pad: mode must be 'constant', 'reflect', 'replicate' or 'circular'"):
        F.pad(Tensor(x), (1, 1), mode="wrap")


# ----------------------------------------------------------------------------------------------------------
# Lecture code: makemore's MLP with batch normalisation, written once, run on both libraries
# ----------------------------------------------------------------------------------------------------------

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn"]


def makemore_dataset(block_size: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Karpathy's build_dataset: every (context of block_size characters, next character) of the words."""
    stoi = {s: i + 1 for i, s in enumerate(sorted(set("".join(WORDS))))}
    stoi["."] = 0
    xs, ys = [], []
    for w in WORDS:
        context = [0] * block_size
        for ch in w + ".":
            xs.append(context)
            ys.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return np.array(xs), np.array(ys)


def makemore_by_hand(torch, initial: list[np.ndarray], steps: int = 5) -> tuple[list[float], np.ndarray]:
    """The lecture's training loop (makemore part 3), with ``torch`` either PyTorch or tinygrad_like."""
    F_ = torch.nn.functional
    X, Y = makemore_dataset()
    C, W1, b1, W2, b2, bngain, bnbias = [torch.tensor(a, requires_grad=True) for a in initial]
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    bnmean_running = torch.zeros((1, W1.shape[1]), dtype=torch.float64)
    batches = np.random.default_rng(0).integers(0, len(X), (steps, 16))
    losses = []
    for i in range(steps):
        Xb, Yb = torch.tensor(X[batches[i]]), torch.tensor(Y[batches[i]])
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        hpreact = embcat @ W1 + b1
        bnmeani = hpreact.mean(0, keepdim=True)
        bnstdi = hpreact.std(0, keepdim=True)
        hpreact = bngain * (hpreact - bnmeani) / bnstdi + bnbias
        with torch.no_grad():
            bnmean_running = 0.999 * bnmean_running + 0.001 * bnmeani
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F_.cross_entropy(logits, Yb)
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 3 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        losses.append(loss.item())
    return losses, bnmean_running.detach().numpy()


def test_makemores_hand_written_mlp_trains_as_in_pytorch(torch):
    g = np.random.default_rng(2147483647)
    initial = [g.standard_normal((27, 10)), g.standard_normal((30, 64)) * (5 / 3) / 30 ** 0.5,
               g.standard_normal(64) * 0.01, g.standard_normal((64, 27)) * 0.01, np.zeros(27), np.ones((1, 64)),
               np.zeros((1, 64))]
    ours, ours_running = makemore_by_hand(tinygrad_like, initial)
    theirs, theirs_running = makemore_by_hand(torch, initial)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(ours_running, theirs_running, rtol=1e-12)
    assert ours[-1] < ours[0]


def makemore_with_modules(torch, state: dict | None = None, steps: int = 5) -> tuple[list[float], float, dict]:
    """The same network from nn layers (makemore part 3's "PyTorch-ified" code) trained by its update loop;
    ``state``: the initial weights (by state_dict name). Returns the losses, the evaluation loss and the final
    state."""
    nn_, F_ = torch.nn, torch.nn.functional
    model = nn_.Sequential(nn_.Embedding(27, 10), nn_.Flatten(), nn_.Linear(30, 64, bias=False), nn_.BatchNorm1d(64),
                           nn_.Tanh(), nn_.Linear(64, 27))
    model.double()
    if state is not None:
        model.load_state_dict(state)
    X, Y = makemore_dataset()
    batches = np.random.default_rng(1).integers(0, len(X), (steps, 16))
    losses = []
    for i in range(steps):
        loss = F_.cross_entropy(model(torch.tensor(X[batches[i]])), torch.tensor(Y[batches[i]]))
        for p in model.parameters():
            p.grad = None
        loss.backward()
        for p in model.parameters():
            p.data += -0.1 * p.grad
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        evaluation = F_.cross_entropy(model(torch.tensor(X)), torch.tensor(Y)).item()
    return losses, evaluation, model.state_dict()


def test_makemores_mlp_from_nn_layers_trains_as_in_pytorch(torch):
    torch.manual_seed(0)
    theirs, theirs_eval, theirs_state = makemore_with_modules(torch)
    torch.manual_seed(0)
    initial = {k: v.detach().numpy() for k, v in makemore_with_modules(torch, steps=0)[2].items()}
    ours, ours_eval, ours_state = makemore_with_modules(tinygrad_like, initial)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours_eval == pytest.approx(theirs_eval, rel=1e-12)
    assert list(ours_state) == list(theirs_state) == [
        "0.weight", "2.weight", "3.weight", "3.bias", "3.running_mean", "3.running_var", "3.num_batches_tracked",
        "5.weight", "5.bias"]
    for name, value in theirs_state.items():
        np.testing.assert_allclose(ours_state[name], value.numpy(), rtol=1e-11, atol=1e-14, err_msg=name)
