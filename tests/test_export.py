"""Export: our networks run in PyTorch and ONNX Runtime with the same numbers; safetensors round trips."""

import numpy as np
import pytest

from tinygrad_like import Tensor, blog, export, nn, optim, train

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)


def cnn(dtype=np.float32) -> nn.Sequential:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(6 * 2 * 2, 5), nn.LogSoftmax(dim=-1),
    )
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


def trained_blog_mlp(dtype: str = "float32") -> nn.MLP:
    """The blog's MLP after a few SGD steps, so the exported weights are not the initial ones."""
    recipe = blog.blog_recipe(dtype=dtype)
    mlp = train.build_model(recipe, seed=0)
    opt = optim.SGD(mlp.parameters(), lr=recipe.lr)
    x, y = RNG.random((64, 784)).astype(dtype), RNG.integers(0, 10, 64)
    for _ in range(3):
        opt.zero_grad()
        mlp.logits(Tensor(x)).cross_entropy(y, reduction="sum").backward()
        opt.step()
    return mlp


def ours_and_torch(model, x):
    return model(Tensor(x)).data, export.to_torch(model)(torch.from_numpy(x)).detach().numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_trained_blog_mlp_gives_the_same_outputs_in_pytorch(dtype):
    mlp = trained_blog_mlp(dtype)
    x = RNG.random((16, 784)).astype(dtype)
    ours, theirs = ours_and_torch(mlp, x)
    assert theirs.dtype == ours.dtype
    np.testing.assert_allclose(theirs, ours, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7)
    tm = export.to_torch(mlp)
    assert [n for n, _ in tm.named_parameters()] == [n for n, _ in mlp.named_parameters()]
    np.testing.assert_allclose(tm.logits(torch.from_numpy(x)).detach().numpy(), mlp.logits(Tensor(x)).data,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_cnn_gives_the_same_outputs_in_pytorch_in_eval_and_keeps_its_mode(dtype):
    model = cnn(dtype)
    model.eval()
    x = RNG.random((3, 1, 12, 12)).astype(dtype)
    ours, theirs = ours_and_torch(model, x)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    assert export.to_torch(model).training is False
    model.train()
    assert export.to_torch(model).training is True


def test_torch_source_is_runnable_and_names_the_layers():
    source = export.torch_source(cnn())
    assert ("nn.Conv2d(in_channels=1, out_channels=4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=True, "
            "padding_mode='zeros')" in source)
    scope: dict = {}
    exec(source, scope)
    assert isinstance(scope["model"], torch.nn.Sequential) and len(scope["model"]) == 10


def test_unsupported_structures_are_refused_by_name():
    class Custom(nn.Module):
        def __init__(self):
            self.inner = nn.Linear(2, 2)

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(TypeError, match="to_torch: no PyTorch equivalent for Custom"):
        export.to_torch(Custom())


def test_safetensors_round_trip_ours_pytorch_ours(tmp_path):
    model = cnn()
    path = tmp_path / "cnn.safetensors"
    export.save_safetensors(model, path)
    tm = export.to_torch(cnn())  # other initial weights, then the file's
    tm.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    for p, tp in zip(model.parameters(), tm.parameters()):
        np.testing.assert_array_equal(tp.detach().numpy(), p.data)
    with torch.no_grad():
        for tp in tm.parameters():
            tp.mul_(2)
    safetensors_torch.save_file(tm.state_dict(), str(tmp_path / "back.safetensors"))
    back = export.load_safetensors(cnn(), tmp_path / "back.safetensors")
    for p, q in zip(model.parameters(), back.parameters()):
        np.testing.assert_array_equal(q.data, 2 * p.data)


def test_a_truncated_or_mismatched_file_is_refused_and_nothing_is_lost(tmp_path):
    model = cnn()
    path = tmp_path / "cnn.safetensors"
    export.save_safetensors(model, path)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-10])
    target = cnn()
    before = [p.data.copy() for p in target.parameters()]
    with pytest.raises(ValueError, match="truncated.safetensors is not a readable safetensors file"):
        export.load_safetensors(target, truncated)
    other = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    with pytest.raises(ValueError, match=r"(?s)load_safetensors: .*missing 8.weight.*0.weight: "
                                         r"expected \(4, 1, 3, 3\) float32, got \(3, 1, 3, 3\)"):
        export.save_safetensors(other, tmp_path / "other.safetensors")
        export.load_safetensors(target, tmp_path / "other.safetensors")
    for p, old in zip(target.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.safetensors", "other.safetensors",
                                                          "truncated.safetensors"]  # atomic: no temporaries


@pytest.mark.parametrize("make, shape", [
    (lambda: trained_blog_mlp(), (5, 784)),
    (lambda: cnn(), (2, 1, 12, 12)),
    (lambda: nn.Sequential(nn.Linear(6, 4), Tensor.sigmoid, nn.Linear(4, 3), nn.Softmax(dim=-1)), (7, 6)),
], ids=["blog-mlp", "cnn", "sequential"])
def test_onnx_runtime_gives_our_outputs_for_any_batch(make, shape, tmp_path):
    model = make()
    x = RNG.random(shape).astype(np.float32)
    path = export.to_onnx(model, x, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    model.eval()
    for batch in (x, RNG.random((1, *shape[1:])).astype(np.float32)):
        np.testing.assert_allclose(session.run(None, {"input": batch})[0], model(Tensor(batch)).data,
                                   rtol=1e-5, atol=1e-6)


EXPORTABLE = {
    "exp": lambda t: (t * 0.3).exp(), "log": lambda t: (t * t + 1).log(), "log1p": lambda t: t.abs().log1p(),
    "sqrt": lambda t: (t * t + 1).sqrt(), "abs": lambda t: t.abs(), "clip": lambda t: t.clip(-0.5, 0.5),
    "sum": lambda t: t.sum(axis=1, keepdim=True), "max": lambda t: t.max(axis=-1), "min": lambda t: t.min(axis=0),
    "reshape": lambda t: t.reshape(t.shape[0], 2, -1), "permute": lambda t: t.T, "pow": lambda t: t ** 2,
    "div": lambda t: t / (t * t + 1), "sub": lambda t: 1 - t, "matmul": lambda t: t @ t.T,
    "softmax": lambda t: t.softmax(-1), "log_softmax": lambda t: t.log_softmax(0),
    "leaky_relu": lambda t: t.leaky_relu(0.1), "softplus": lambda t: t.softplus(), "gelu": lambda t: t.gelu(),
    "where": lambda t: Tensor.where(np.array([True, False, False, True]), t, t * 2),
    "cat": lambda t: t.cat(t * 2, dim=1),
    "expand": lambda t: t.reshape(t.shape[0], 1, -1).expand(t.shape[0], 3, t.shape[1]),
    "getitem": lambda t: t[:, ::2] + t[:, -1:0:-2] + t[:, np.array([3, 0])],
}


@pytest.mark.parametrize("name", sorted(EXPORTABLE))
def test_every_exportable_op_runs_in_onnx_runtime(name, tmp_path):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    fn = EXPORTABLE[name]
    session = ort.InferenceSession(str(export.to_onnx(fn, x, tmp_path / f"{name}.onnx")))
    np.testing.assert_allclose(session.run(None, {"input": x})[0], fn(Tensor(x)).data, rtol=1e-5, atol=1e-6)


def test_an_op_without_onnx_mapping_is_named(tmp_path):
    with pytest.raises(NotImplementedError, match="to_onnx: no ONNX mapping for the op 'cumsum'"):
        export.to_onnx(lambda t: np.cumsum(t, axis=1), np.ones((2, 4), np.float32), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_without_the_extra_the_functions_say_how_to_install_it(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: import raises ImportError
    with pytest.raises(ImportError, match=r'to_onnx needs the onnx package: pip install "tinygrad_like\[export\]"'):
        export.to_onnx(lambda t: t.exp(), np.ones((1, 2), np.float32), tmp_path / "x.onnx")


def test_a_mask_computed_from_the_input_is_refused_not_baked_into_the_model(tmp_path):
    """A comparison is not recorded, so its mask would be the example's at every input: refused, naming it."""
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(NotImplementedError, match="a mask computed from the input's values by a comparison"):
        export.to_onnx(lambda t: (t > 0).where(t, t * 2), x, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_a_mean_over_the_batch_is_refused_not_baked_into_the_model(tmp_path):
    x = RNG.standard_normal((4, 2)).astype(np.float32)
    with pytest.raises(NotImplementedError, match="depends on the input"):
        export.to_onnx(lambda t: t - t.mean(axis=0), x, tmp_path / "model.onnx")


def test_a_forward_that_fixes_the_batch_size_is_exported_at_the_examples_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    path = export.to_onnx(lambda t: t.reshape(2, 6) * 2, x, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [d for d in session.get_inputs()[0].shape] == [4, 3]
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], x.reshape(2, 6) * 2)
