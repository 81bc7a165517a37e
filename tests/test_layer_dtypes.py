"""Every layer with parameters takes PyTorch's ``device=`` and ``dtype=`` and records a dtype other than float32 in
its config, so a ``.double()`` model saves and loads; ``to`` reads PyTorch's device/dtype arguments (one parser);
the one device check, the layers' argument checks, and the flattening of a forward's result."""

import numpy as np
import pytest

import tinygrad_like as tg
from tinygrad_like import Tensor, autograd, nn
from tinygrad_like.nn.module import output_tensors

# (class name, constructor arguments, an input of the right shape) for each kind of layer with parameters
LAYERS = [
    ("Linear", (2, 3), (4, 2)),
    ("Conv1d", (2, 3, 2), (2, 2, 5)),
    ("Conv2d", (2, 3, 2), (2, 2, 4, 4)),
    ("Embedding", (5, 3), None),
    ("BatchNorm1d", (3,), (4, 3)),
    ("BatchNorm2d", (3,), (2, 3, 2, 2)),
    ("LayerNorm", (3,), (4, 3)),
    ("GroupNorm", (1, 3), (4, 3)),
    ("RMSNorm", (3,), (4, 3)),
    ("LSTM", (3, 4), (5, 2, 3)),
    ("MultiheadAttention", (4, 2), None),
]
IDS = [name for name, _, _ in LAYERS]


def floating_state(module):
    return {k: v for k, v in module.state_dict().items() if v.dtype.kind == "f"}


@pytest.mark.parametrize("name, args, shape", LAYERS, ids=IDS)
def test_a_double_model_saves_and_loads_as_float64(tmp_path, name, args, shape):
    model = nn.Sequential(getattr(nn, name)(*args), nn.Identity()).double()
    model.save(tmp_path / "m.npz")
    loaded = nn.Module.load(tmp_path / "m.npz")
    assert loaded[0].config() == model[0].config() and loaded[0].config()["dtype"] == "float64"
    state, saved = loaded.state_dict(), model.state_dict()
    assert list(state) == list(saved)
    for key, value in saved.items():
        assert state[key].dtype == value.dtype, key
        np.testing.assert_array_equal(state[key], value, err_msg=key)
    assert {v.dtype for v in floating_state(loaded).values()} == {np.dtype(np.float64)}


@pytest.mark.parametrize("name, args, shape", LAYERS, ids=IDS)
def test_dtype_and_device_keywords_as_pytorch(torch, name, args, shape):
    ours = getattr(nn, name)(*args, device="cpu", dtype=tg.float64)
    theirs = getattr(torch.nn, name)(*args, device="cpu", dtype=torch.float64)
    assert {k: (v.shape, str(v.dtype)) for k, v in ours.state_dict().items()} == {
        k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in theirs.state_dict().items()}
    assert "dtype" not in getattr(nn, name)(*args).config()  # the default float32 is left out
    if shape is not None:  # a float64 layer computes in float64
        out = output_tensors(ours(Tensor(np.random.default_rng(0).standard_normal(shape))))
        assert out and {t.dtype for t in out} == {np.dtype(np.float64)}


def test_linear_takes_dtype_as_pytorch_does(torch):
    layer = nn.Linear(2, 3, dtype=tg.float64)
    assert layer.weight.dtype == layer.bias.dtype == np.float64
    assert nn.Linear(2, 3, True, "cpu", np.float64).weight.dtype == np.float64  # positional, as PyTorch's
    with pytest.raises(TypeError, match="Linear: parameters must have a floating dtype, got int64"):
        nn.Linear(2, 3, dtype=np.int64)
    with pytest.raises(RuntimeError, match="LayerNorm: device 'cuda' is not available"):
        nn.LayerNorm(3, device="cuda")
    with pytest.raises(RuntimeError, match="Conv2d: device 'cuda' is not available"):
        nn.Conv2d(1, 1, 1, device=torch.device("cuda"))


def test_float64_layers_match_pytorch_to_second_order(torch):
    """A lecture's network built in float64 with dtype=, PyTorch's weights copied in: outputs, input and parameter
    gradients under random upstream gradients, and the double backward of (input gradient . v)."""
    def build(lib, dtype):
        return lib.nn.Sequential(lib.nn.Linear(3, 5, dtype=dtype), lib.nn.LayerNorm(5, dtype=dtype), lib.nn.Tanh(),
                                 lib.nn.Linear(5, 2, dtype=dtype))
    torch.manual_seed(0)
    theirs, ours = build(torch, torch.float64), build(tg, tg.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(1)
    x, up, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    xs, ts = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xs), theirs(ts)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    grads = autograd.grad(out, [xs, *ours.parameters()], up, create_graph=True)
    tgrads = torch.autograd.grad(tout, [ts, *theirs.parameters()], torch.tensor(up), create_graph=True)
    for g, t in zip(grads, tgrads):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    second = autograd.grad((grads[0] * Tensor(v)).sum(), xs)[0]
    tsecond = torch.autograd.grad((tgrads[0] * torch.tensor(v)).sum(), ts)[0]
    np.testing.assert_allclose(second.data, tsecond.numpy(), rtol=1e-9, atol=1e-12)


def test_to_reads_pytorchs_arguments():
    t = Tensor.ones(2)
    assert t.to(tg.float64, non_blocking=True).dtype == np.float64
    assert t.to("cpu", tg.float64, True, False).dtype == np.float64  # to(device, dtype, non_blocking, copy)
    assert t.to(device="cpu", dtype=tg.float64, copy=True).dtype == np.float64
    assert t.to(Tensor.zeros(1, dtype=np.float64)).dtype == np.float64 and t.to(non_blocking=True) is t
    model = nn.Linear(2, 2).to("cpu", tg.float64, non_blocking=True)
    assert model.weight.dtype == np.float64
    for call in (lambda: t.to("cuda"), lambda: model.to("cuda:0"), lambda: tg.device("cuda")):
        with pytest.raises(RuntimeError, match=r"device 'cuda(:0)?' is not available: tinygrad_like computes with "
                                               "NumPy on the CPU"):
            call()


def test_layers_check_their_arguments_alike():
    with pytest.raises(TypeError, match=r"Linear: in_features must be an int, got 2.0"):
        nn.Linear(2.0, 3)
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be at least 0, got -1"):
        nn.Embedding(-1, 3)
    with pytest.raises(ValueError, match="MultiheadAttention: embed_dim must be at least 1, got 0"):
        nn.MultiheadAttention(0, 1)
    with pytest.raises(TypeError, match="LayerNorm: eps must be a number, got '1e-5'"):
        nn.LayerNorm(3, eps="1e-5")
    with pytest.raises(ValueError, match=r"LSTM: dropout must be a probability in \[0, 1\], got nan"):
        nn.LSTM(3, 4, dropout=float("nan"))
    assert nn.Dropout(1).p == 1.0


def test_output_tensors_flattens_nested_results():
    a, b, c = Tensor.ones(1), Tensor.zeros(2), Tensor.ones(3)
    assert [id(t) for t in output_tensors((a, (b, None), [3, {"c": c}]))] == [id(a), id(b), id(c)]
    assert output_tensors(None) == [] and output_tensors(a) == [a]
    arrays = output_tensors(((a, np.ones(2)), {"k": np.zeros(1)}), (Tensor, np.ndarray))
    assert [type(t) for t in arrays] == [Tensor, np.ndarray, np.ndarray]
