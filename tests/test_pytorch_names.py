"""PyTorch's function names at the top level, with PyTorch's signatures, dtypes and refusals: checked against
PyTorch itself on the same inputs."""

import numpy as np
import pytest

import tinygrad_like as tg
from tinygrad_like import pytorch


def dtype_name(t):
    return str(t.dtype).removeprefix("torch.")


@pytest.mark.parametrize("make", [
    lambda m: m.tensor([1, 2, 3]), lambda m: m.tensor([1.5, 2.0]), lambda m: m.tensor([True, False]),
    lambda m: m.tensor(np.arange(3, dtype=np.int32)), lambda m: m.tensor([[1, 2]], dtype=m.float64),
    lambda m: m.zeros(2, 3), lambda m: m.ones((2,)), lambda m: m.empty(4), lambda m: m.full((2, 2), 7),
    lambda m: m.full((2,), 1.5), lambda m: m.full((1,), True), lambda m: m.eye(3), lambda m: m.arange(5),
    lambda m: m.arange(0, 1, 0.25), lambda m: m.arange(2, 9, 3), lambda m: m.linspace(-1, 1, 5),
    lambda m: m.zeros(3, dtype=m.long), lambda m: m.ones(2, dtype=m.double), lambda m: m.randint(0, 27, (4,)),
    lambda m: m.randint(5, (2, 3)), lambda m: m.randperm(6), lambda m: m.rand(2, 2), lambda m: m.randn(3),
], ids=lambda f: "")
def test_factories_give_pytorchs_shapes_and_dtypes(torch, make):
    ours, theirs = make(tg), make(torch)
    assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == dtype_name(theirs)
    if not any(name in str(make.__code__.co_names) for name in ("rand", "randn", "randint", "randperm", "empty")):
        np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_tensor_copies_and_from_numpy_shares(torch):
    a = np.arange(4.0)
    copied, shared = tg.tensor(a), tg.from_numpy(a)
    a[0] = 9.0
    assert copied.data[0] == 0.0 and shared.data[0] == 9.0 and shared.dtype == np.float64
    assert tg.tensor(3.0).shape == () and tg.tensor([2.0], requires_grad=True).requires_grad


def test_a_generator_makes_draws_reproducible_and_multinomial_takes_float32_weights():
    g = tg.Generator().manual_seed(2147483647)
    probs = tg.rand(27, generator=g)  # float32 weights that do not sum to exactly one
    first = tg.multinomial(probs, num_samples=20, replacement=True, generator=g)
    g2 = tg.Generator().manual_seed(2147483647)
    again = tg.multinomial(tg.rand(27, generator=g2), num_samples=20, replacement=True, generator=g2)
    assert first.dtype == np.int64 and first.tolist() == again.tolist() and all(0 <= i < 27 for i in first.tolist())
    rows = tg.multinomial(tg.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), 1)
    assert rows.shape == (2, 1) and rows.tolist()[0] == [1] and rows.tolist()[1][0] in (0, 2)
    no_repeats = tg.multinomial(tg.ones(5), 5, generator=g).tolist()
    assert sorted(no_repeats) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="multinomial: cannot draw 3 samples without replacement"):
        tg.multinomial(tg.tensor([1.0, 1.0, 0.0]), 3)
    with pytest.raises(ValueError, match="multinomial: probs must be finite, non-negative"):
        tg.multinomial(tg.tensor([1.0, -1.0]), 1)


@pytest.mark.parametrize("call", [
    lambda m, t: m.split(t, 2), lambda m, t: m.split(t, [1, 3, 1], dim=0), lambda m, t: m.split(t, 3, dim=1),
    lambda m, t: m.chunk(t, 2), lambda m, t: m.chunk(t, 3, dim=1), lambda m, t: m.cat([t, t * 2], dim=1),
    lambda m, t: m.stack([t, t], dim=2), lambda m, t: m.where(t > 0, t, t * 0.1), lambda m, t: m.matmul(t, t.T),
    lambda m, t: m.max(t, 1), lambda m, t: m.min(t, 0, keepdim=True), lambda m, t: m.max(t),
    lambda m, t: m.softmax(t, dim=1), lambda m, t: m.log_softmax(t, 0), lambda m, t: m.sum(t, 1),
    lambda m, t: m.mean(t), lambda m, t: m.clamp(t, -0.5, 0.5), lambda m, t: m.exp(m.tanh(m.abs(t))),
], ids=lambda f: "")
def test_functions_compute_and_differentiate_as_pytorchs(torch, call):
    a = np.random.default_rng(0).standard_normal((5, 3))
    outs = []
    for m, make in ((tg, lambda: tg.tensor(a, requires_grad=True)),
                    (torch, lambda: torch.tensor(a, requires_grad=True))):
        x = make()
        out = call(m, x)
        pieces = out if isinstance(out, tuple) else (out,)
        values = [p for p in pieces if p.dtype == (np.float64 if m is tg else torch.float64)]
        upstream = [np.random.default_rng(i).standard_normal(tuple(p.shape)) for i, p in enumerate(values)]
        total = sum((p * (m.tensor(u) if m is tg else torch.tensor(u))).sum() for p, u in zip(values, upstream))
        total.backward()
        outs.append(([np.asarray(p.data if m is tg else p.detach().numpy()) for p in pieces],
                     x.grad.data if m is tg else x.grad.numpy()))
    (ours, ours_grad), (theirs, theirs_grad) = outs
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-12)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-12)


def test_only_the_cpu_is_a_device_and_cuda_is_not_available():
    assert not tg.cuda.is_available() and tg.device("cpu") == "cpu"
    tg.set_default_device("cpu")
    assert tg.zeros(2, device="cpu").shape == (2,)
    for refuse in (lambda: tg.device("cuda"), lambda: tg.zeros(2, device="cuda:0"),
                   lambda: tg.set_default_device("mps")):
        with pytest.raises(RuntimeError, match="is not available: tinygrad_like computes with NumPy on the CPU"):
            refuse()


@pytest.mark.parametrize("name", ["model.npz", "model.pt", "model.safetensors"])
def test_save_and_load_a_state_dict_without_pickle(tmp_path, name):
    if name.endswith(".safetensors"):
        pytest.importorskip("safetensors")
    model = tg.nn.Linear(3, 2)
    path = tmp_path / name
    tg.save(model.state_dict(), path)
    loaded = tg.load(path)
    assert set(loaded) == set(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key].data, np.asarray(getattr(value, "data", value)))
    assert tg.nn.Linear(3, 2).load_state_dict(loaded) is None
    with pytest.raises(TypeError, match="save: expects a dict of names to Tensors"):
        tg.save(model, tmp_path / "model2.npz")
    np.save(tmp_path / "object.npy", np.array([{"code": 1}], dtype=object), allow_pickle=True)
    with open(tmp_path / "object.npy", "rb") as f:
        data = f.read()
    import zipfile
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as z:
        z.writestr("x.npy", data)
    with pytest.raises(ValueError, match="evil.npz is not a readable .npz"):
        tg.load(tmp_path / "evil.npz")


def test_load_refuses_a_file_that_is_not_safetensors(tmp_path):
    pytest.importorskip("safetensors")
    (tmp_path / "evil.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="evil.safetensors is not a readable safetensors file"):
        tg.load(tmp_path / "evil.safetensors")


def test_every_name_of_the_pytorch_module_is_public_at_the_top_level():
    assert set(pytorch.__all__) <= set(tg.__all__)
    assert all(getattr(tg, name) is getattr(pytorch, name) for name in pytorch.__all__)
    assert callable(tg.tensor)  # not a module: tinygrad_like.tensor(...) works as torch.tensor(...)


def test_allclose_all_and_any(torch):
    a = tg.tensor([1.0, 2.0])
    assert tg.allclose(a, tg.tensor([1.0, 2.0 + 1e-9])) and not tg.allclose(a, tg.tensor([1.0, 2.1]))
    assert bool(tg.all(a > 0)) and not bool(tg.any(a > 5))


def test_tensor_methods_of_lecture_code_behave_as_pytorchs(torch):
    a = np.random.default_rng(2).standard_normal((2, 3, 3))
    ours, theirs = tg.tensor(a), torch.tensor(a)
    for name in ("float", "double", "long", "int", "bool"):
        assert str(getattr(ours, name)().dtype) == dtype_name(getattr(theirs, name)())
    np.testing.assert_array_equal(ours.mT.data, theirs.mT.numpy())
    assert ours.nelement() == theirs.nelement() and ours.dim() == theirs.dim()
    assert ours.to("cpu") is ours and ours.cpu() is ours and ours.contiguous() is ours
    assert ours.to(tg.float32).dtype == np.float32 and ours.type_as(tg.zeros(1)).dtype == np.float32
    with pytest.raises(RuntimeError, match="to: device 'cuda' is not available"):
        ours.to("cuda")
    loss = tg.tensor(1.234567)
    assert f"{loss:.4f}" == f"{torch.tensor(1.234567):.4f}" == "1.2346"


def test_masked_fill_as_in_a_causal_attention_mask(torch):
    a = np.random.default_rng(3).standard_normal((2, 4, 4))
    results = []
    for m in (tg, torch):
        x = m.tensor(a, requires_grad=True)
        tril = m.tril(m.ones(4, 4)) if m is torch else tg.tensor(np.tril(np.ones((4, 4))))
        scores = x.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)
        upstream = np.random.default_rng(4).standard_normal((2, 4, 4))
        (scores * m.tensor(upstream)).sum().backward()
        results.append((np.array(scores.data if m is tg else scores.detach().numpy()),
                        np.array(x.grad.data if m is tg else x.grad.numpy())))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-15)
    h = tg.tensor(a) * 1
    h.masked_fill_(h < 0, 0.0)
    assert (h.data >= 0).all()
    with pytest.raises(TypeError, match="masked_fill: the mask must be boolean"):
        h.masked_fill(h, 0.0)


def test_zero_grad_sets_to_none_or_to_zeros_as_pytorch():
    model = tg.nn.Linear(2, 2)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    model(tg.ones(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("call", [
    lambda m, t: m.tril(t), lambda m, t: m.triu(t, 1), lambda m, t: m.tril(t, -1), lambda m, t: m.cumsum(t, 1),
    lambda m, t: m.einsum("ij,kj->ik", t, t), lambda m, t: m.einsum("ii->i", [t[:3]]),
    lambda m, t: m.outer(t[0], t[1]), lambda m, t: m.logsumexp(t, 1), lambda m, t: m.logsumexp(t, 0, keepdim=True),
    lambda m, t: m.sin(t) * m.cos(t), lambda m, t: m.log2(t.abs() + 1) + m.log10(t.abs() + 1),
], ids=lambda f: "")
def test_more_functions_compute_and_differentiate_as_pytorchs(torch, call):
    test_functions_compute_and_differentiate_as_pytorchs(torch, call)


@pytest.mark.parametrize("call", [
    lambda m, t: m.topk(t, 2), lambda m, t: m.topk(t, 3, dim=0, largest=False), lambda m, t: t.topk(1, dim=1),
    lambda m, t: m.sort(t, dim=1), lambda m, t: t.sort(dim=0, descending=True),
], ids=lambda f: "")
def test_topk_and_sort_give_values_and_indices_as_pytorchs(torch, call):
    test_functions_compute_and_differentiate_as_pytorchs(torch, call)
    a = np.random.default_rng(0).standard_normal((5, 3))
    values, indices = call(tg, tg.tensor(a))
    theirs = call(torch, torch.tensor(a))
    assert indices.dtype == np.int64 and indices.tolist() == theirs.indices.tolist()
    assert values.shape == tuple(theirs.values.shape)


@pytest.mark.parametrize("call", [
    lambda t: t.max(1), lambda t: t.min(0), lambda t: t.max(dim=-1, keepdim=True), lambda t: t.min(1, keepdim=True),
], ids=lambda f: "")
def test_max_and_min_over_a_dim_carry_values_and_indices_as_pytorchs(torch, call):
    a = np.random.default_rng(3).integers(0, 3, (4, 5)).astype(np.float64)  # ties: the first one is taken
    ours, theirs = call(tg.tensor(a)), call(torch.tensor(a))
    np.testing.assert_array_equal(ours.values.data, theirs.values.numpy())
    assert ours.indices.dtype == np.int64 and ours.indices.tolist() == theirs.indices.tolist()
    assert (ours * 2).shape == tuple(theirs.values.shape)  # the values Tensor itself, as tinygrad's max
    assert not hasattr(tg.tensor(a).max(), "indices")  # over every axis: a plain value, as PyTorch's max()


def test_one_hot_and_gather_and_scatter_add_as_pytorchs(torch):
    labels = np.array([[0, 2], [1, 4]])
    F = torch.nn.functional
    for num_classes in (-1, 6):
        ours, theirs = tg.tensor(labels).one_hot(num_classes), F.one_hot(torch.tensor(labels), num_classes)
        assert ours.dtype == np.int64 and ours.tolist() == theirs.tolist()
    x, index = np.arange(12.0).reshape(3, 4), np.array([[3, 0], [1, 1]])
    assert tg.tensor(x).gather(1, tg.tensor(index)).tolist() == torch.tensor(x).gather(1, torch.tensor(index)).tolist()
    src = np.ones((2, 3))
    ours = tg.zeros(3, 4, dtype=tg.float64).scatter_add(1, tg.tensor(index), tg.tensor(src))
    theirs = torch.zeros(3, 4, dtype=torch.float64).scatter_add(1, torch.tensor(index), torch.tensor(src))
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("refused", [
    lambda m: m.tensor([0, 3]).one_hot(3) if m is tg else m.nn.functional.one_hot(m.tensor([0, 3]), 3),
    lambda m: m.tensor([-1, 0]).one_hot() if m is tg else m.nn.functional.one_hot(m.tensor([-1, 0])),
    lambda m: m.tensor([0.0, 1.0]).one_hot() if m is tg else m.nn.functional.one_hot(m.tensor([0.0, 1.0])),
    lambda m: m.zeros(2, 3).gather(1, m.tensor([[3]])), lambda m: m.zeros(2, 3).gather(1, m.tensor([0])),
    lambda m: m.zeros(2, 3).gather(1, m.tensor([[-1]])), lambda m: m.zeros(2, 3).gather(1, m.tensor([[0.5]])),
], ids=lambda f: "")
def test_one_hot_and_gather_refuse_what_pytorch_refuses(torch, refused):
    with pytest.raises((RuntimeError, IndexError)):
        refused(torch)
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)) as error:
        refused(tg)
    assert str(error.value).split(":")[0] in ("one_hot", "gather")


class Cube(tg.autograd.Function):
    """PyTorch's style: static methods on Tensors, what backward needs saved on ctx."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return grad_output * 3 * ctx.scale * x ** 2, None


def test_a_pytorch_style_function_differentiates_once_and_twice_as_pytorchs(torch):
    class TorchCube(torch.autograd.Function):
        forward, backward = Cube.forward, Cube.backward

    rng = np.random.default_rng(4)
    x, up, v = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    results = []
    for m, fn in ((tg, Cube), (torch, TorchCube)):
        t = m.tensor(x, requires_grad=True)
        y = fn.apply(t.sin(), 2.0)
        (g,) = m.autograd.grad((y * m.tensor(up)).sum(), t, create_graph=True)
        (gg,) = m.autograd.grad((g * m.tensor(v)).sum(), t)
        results.append([np.asarray(r.data if m is tg else r.detach().numpy()) for r in (y, g, gg)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_pytorch_style_function_checks_how_many_gradients_its_backward_returns():
    class TooMany(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="TooMany.backward returned 2 gradients, expected 1"):
        TooMany.apply(x).sum().backward()


@pytest.mark.parametrize("call", [
    lambda m, t: t.tril(), lambda m, t: t.triu(-1), lambda m, t: t.cumsum(0), lambda m, t: t.logsumexp(1),
    lambda m, t: t.split(2), lambda m, t: t.split([1, 2], dim=1), lambda m, t: t.chunk(2, 1),
    lambda m, t: t.repeat(2, 1), lambda m, t: t.repeat(1, 2, 1), lambda m, t: t.t(), lambda m, t: t.clamp(-0.5, 0.5),
], ids=lambda f: "")
def test_tensor_methods_compute_and_differentiate_as_pytorchs(torch, call):
    test_functions_compute_and_differentiate_as_pytorchs(torch, call)


def test_reductions_without_gradients_as_pytorchs(torch):
    a = np.random.default_rng(5).standard_normal((4, 3))
    for call in (lambda t: t.argmin(), lambda t: t.argmin(1), lambda t: t.argmin(0, keepdim=True),
                 lambda t: (t > 0).all(), lambda t: (t > 0).any(1), lambda t: (t > -3).all(0, keepdim=True)):
        ours, theirs = call(tg.tensor(a)), call(torch.tensor(a))
        assert ours.tolist() == theirs.tolist() and ours.shape == tuple(theirs.shape)


def test_clamp_in_place_as_pytorchs(torch):
    a = np.random.default_rng(6).standard_normal((4, 3))
    grads = []
    for m in (tg, torch):
        x = m.tensor(a, requires_grad=True)
        y = x * 2
        y.clamp_(-1.0, 1.0)
        (y * m.tensor(a)).sum().backward()
        grads.append(np.asarray(x.grad.data if m is tg else x.grad.numpy()))
    np.testing.assert_array_equal(*grads)
