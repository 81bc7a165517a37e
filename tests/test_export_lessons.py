"""Export of the layers of today's lessons: to_torch / torch_source (train and eval, buffers included),
safetensors round trips with the running statistics, to_onnx in ONNX Runtime (an Embedding is a Gather, batch
normalisation runs on its running statistics), and Module.save / Module.load rebuilding every layer."""

from collections import OrderedDict

import numpy as np
import pytest
from helpers import flat, makemore_mlp

from tinygrad_like import Tensor, export, nn
from tinygrad_like.nn import functional as F

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

RNG = np.random.default_rng(0)


def sequence_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.GELU(), nn.GroupNorm(2, 4), nn.SiLU(), nn.LayerNorm(8),
                         nn.ELU(0.5), nn.Softplus(2.0, 5.0), nn.LeakyReLU(0.2), nn.RMSNorm(8, eps=1e-6),
                         nn.Conv1d(4, 2, 3, padding=1, padding_mode="replicate", bias=False), nn.Flatten(),
                         nn.Linear(16, 5), nn.GELU(approximate="tanh"))


def image_model() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(2, 4, 3, padding=1)), ("norm", nn.BatchNorm2d(4, momentum=None)),
        ("act", nn.ReLU(inplace=True)), ("pool", nn.AvgPool2d(2, padding=1, count_include_pad=False)),
        ("adapt", nn.AdaptiveAvgPool2d((2, 2))), ("flat", nn.Flatten()), ("head", nn.Linear(16, 3))]))


MODELS = {
    "makemore": (lambda: makemore_mlp(padding_idx=0), lambda n: RNG.integers(0, 27, (n, 3))),
    "sequence": (sequence_model, lambda n: RNG.standard_normal((n, 3, 8))),
    "image": (image_model, lambda n: RNG.standard_normal((n, 2, 6, 6))),
}


def float_input(x: np.ndarray, dtype) -> np.ndarray:
    return x.astype(dtype) if x.dtype.kind == "f" else x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pytorch_runs_them_with_our_numbers_in_training_and_evaluation(name):
    make, inputs = MODELS[name]
    model = make().double()
    for _ in range(2):  # running statistics that are not the initial ones
        model(Tensor(inputs(8)))
    theirs = export.to_torch(model)
    assert list(theirs.state_dict()) == list(model.state_dict()) and theirs.training
    for training in (True, False):
        model.train(training)
        theirs.train(training)
        x = inputs(5)
        ours, out = model(Tensor(x)), theirs(torch.from_numpy(x))
        np.testing.assert_allclose(out.detach().numpy(), ours.data, rtol=1e-10, atol=1e-12)
        for key, value in theirs.state_dict().items():  # the running statistics moved alike in training
            np.testing.assert_allclose(value.numpy(), model.state_dict()[key], rtol=1e-12, err_msg=key)


def test_torch_source_writes_the_constructor_arguments_and_names():
    source = export.torch_source(image_model())
    assert "nn.Sequential(OrderedDict([" in source
    assert "('norm', nn.BatchNorm2d(num_features=4, eps=1e-05, momentum=None, affine=True, " \
           "track_running_stats=True))" in source
    assert "nn.AvgPool2d(kernel_size=2, stride=2, padding=1, ceil_mode=False, count_include_pad=False, " \
           "divisor_override=None)" in source
    assert "nn.Embedding(num_embeddings=27, embedding_dim=10, padding_idx=0)" in \
        export.torch_source(makemore_mlp(padding_idx=0))
    assert "nn.LayerNorm(normalized_shape=(8,), eps=1e-05, elementwise_affine=True, bias=True)" in \
        export.torch_source(sequence_model())


def test_module_lists_and_dicts_go_to_pytorch_with_their_names():
    holder = nn.ModuleDict({"blocks": nn.ModuleList([nn.Linear(2, 2), nn.LayerNorm(2)]), "head": nn.Linear(2, 1)})
    theirs = export.to_torch(holder)
    assert isinstance(theirs, torch.nn.ModuleDict) and isinstance(theirs["blocks"], torch.nn.ModuleList)
    assert list(theirs.state_dict()) == list(holder.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "head.weight", "head.bias"]
    assert export.torch_names(holder)["blocks.1.weight"] == "blocks.1.weight"


def test_safetensors_carry_the_running_statistics_both_ways(tmp_path):
    model = makemore_mlp(padding_idx=0)
    model(Tensor(RNG.integers(0, 27, (8, 3))))
    path = export.save_safetensors(model, tmp_path / "makemore.safetensors")
    theirs = export.to_torch(makemore_mlp(padding_idx=0))  # other weights, then the file's
    theirs.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    assert int(theirs[3].num_batches_tracked) == 1
    np.testing.assert_array_equal(theirs[3].running_var.numpy(), model[3].running_var.data)
    with torch.no_grad():
        theirs[3].running_mean.add_(1)
    safetensors_torch.save_file(theirs.state_dict(), str(tmp_path / "back.safetensors"))
    back = export.load_safetensors(makemore_mlp(padding_idx=0), tmp_path / "back.safetensors")
    np.testing.assert_allclose(back[3].running_mean.data, model[3].running_mean.data + 1, rtol=1e-6)
    np.testing.assert_array_equal(back[0].weight.data, model[0].weight.data)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_runs_them_in_evaluation_for_any_batch(name, tmp_path):
    make, inputs = MODELS[name]
    model = make()
    model(Tensor(float_input(inputs(8), np.float32)))  # running statistics that are not the initial ones
    example = float_input(inputs(4), np.float32)
    path = export.to_onnx(model, example, tmp_path / f"{name}.onnx")
    assert model.training  # put back as it was
    session = ort.InferenceSession(str(path))
    model.eval()
    for x in (example, float_input(inputs(7), np.float32)):
        np.testing.assert_allclose(session.run(None, {"input": x})[0], model(Tensor(x)).data, rtol=1e-5, atol=2e-5)


def test_an_embedding_is_an_onnx_gather_of_its_named_weight(tmp_path):
    model = makemore_mlp(padding_idx=0)
    path = export.to_onnx(model, RNG.integers(0, 27, (2, 3)), tmp_path / "makemore.onnx")
    graph = onnx.load(str(path)).graph
    assert graph.node[0].op_type == "Gather" and list(graph.node[0].input) == ["0.weight", "input"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_padding_and_the_functional_forms_trace_too(tmp_path):
    def fn(x):
        padded = F.pad(x, (1, 2, 0, -1), value=0.5)  # a negative width cuts
        return F.elu(padded) + F.softplus(F.pad(x, (0, 3), mode="reflect").sum(axis=1, keepdim=True), beta=3.0)

    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    session = ort.InferenceSession(str(export.to_onnx(fn, x, tmp_path / "fn.onnx")))
    other = RNG.standard_normal((5, 3, 4)).astype(np.float32) * 10
    np.testing.assert_allclose(session.run(None, {"input": other})[0], fn(Tensor(other)).data, rtol=1e-5, atol=1e-5)


LAYERS = [
    lambda: nn.Embedding(5, 3, padding_idx=2), lambda: nn.BatchNorm1d(3, momentum=None, affine=False),
    lambda: nn.BatchNorm2d(3, eps=1e-3, bias=False), lambda: nn.LayerNorm([2, 3], bias=False),
    lambda: nn.GroupNorm(1, 3, affine=False), lambda: nn.RMSNorm(3, eps=1e-4), lambda: nn.GELU("tanh"),
    lambda: nn.SiLU(), lambda: nn.LeakyReLU(0.3), lambda: nn.Softplus(2.0, 4.0), lambda: nn.ELU(0.7),
    lambda: nn.Conv1d(3, 2, 2, stride=2, padding=1, padding_mode="circular"),
    lambda: nn.AvgPool2d((3, 2), stride=1, padding=1, ceil_mode=True, divisor_override=2),
    lambda: nn.AdaptiveAvgPool2d((None, 2)), lambda: nn.ReLU(inplace=True),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda make: repr(make()).split("\n")[0])
def test_save_and_load_rebuild_every_layer(make, tmp_path):
    layer = make()
    for p in layer.parameters():
        p.data = RNG.standard_normal(p.shape).astype(np.float32)  # not the initial values
    layer.save(tmp_path / "layer.npz")
    loaded = nn.Module.load(tmp_path / "layer.npz")
    assert type(loaded) is type(layer) and loaded.config() == layer.config()
    assert loaded.state_dict().keys() == layer.state_dict().keys()
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)


SEQUENCE_LAYERS = {  # layer, its inputs for a batch of n (batch first where the layer has a batch axis first)
    "lstm": (lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True), lambda n: (RNG.standard_normal((n, 5, 3)),)),
    "gru_bidirectional": (lambda: nn.GRU(3, 4, batch_first=True, bidirectional=True),
                          lambda n: (RNG.standard_normal((n, 5, 3)),)),
    "rnn_relu": (lambda: nn.RNN(3, 4, nonlinearity="relu", bias=False, batch_first=True),
                 lambda n: (RNG.standard_normal((n, 4, 3)),)),
    "lstm_cell": (lambda: nn.LSTMCell(3, 4), lambda n: (RNG.standard_normal((n, 3)),)),
    "gru_cell": (lambda: nn.GRUCell(3, 4), lambda n: (RNG.standard_normal((n, 3)),)),
    "attention": (lambda: nn.MultiheadAttention(8, 2, batch_first=True),
                  lambda n: tuple(RNG.standard_normal((n, 5, 8)) for _ in range(3))),
}


def arrays(result) -> list[np.ndarray]:
    """The arrays of a (nested tuple) result, ours or PyTorch's, None left out."""
    return [t.data if isinstance(t, Tensor) else t.detach().numpy() for t in flat(result)]


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_recurrent_and_attention_layers_go_to_pytorch_and_safetensors_with_our_numbers(name, tmp_path):
    make, inputs = SEQUENCE_LAYERS[name]
    layer = make().double()
    theirs = export.to_torch(layer)
    assert list(theirs.state_dict()) == list(layer.state_dict())
    xs = inputs(3)
    for ours_out, out in zip(arrays(layer(*map(Tensor, xs))), arrays(theirs(*map(torch.from_numpy, xs)))):
        np.testing.assert_allclose(out, ours_out, rtol=1e-10, atol=1e-12)
    export.save_safetensors(layer, tmp_path / "layer.safetensors")
    again = export.load_safetensors(make().double(), tmp_path / "layer.safetensors")
    for a, b in zip(arrays(again(*map(Tensor, xs))), arrays(layer(*map(Tensor, xs)))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_onnx_runtime_runs_recurrent_and_attention_layers_for_any_batch(name, tmp_path):
    make, inputs = SEQUENCE_LAYERS[name]
    layer = make()
    path = export.to_onnx(layer, tuple(Tensor(x.astype(np.float32)) for x in inputs(2)), tmp_path / "layer.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for n in (2, 5):  # the traced batch and another
        xs = [x.astype(np.float32) for x in inputs(n)]
        ours = arrays(layer(*map(Tensor, xs)))
        theirs = session.run(None, dict(zip(names, xs)))
        assert len(theirs) == len(ours)
        for a, b in zip(theirs, ours):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
