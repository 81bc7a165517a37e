"""jit: capture a function's ops on two calls, replay them from the third, bit for bit the eager results."""

import numpy as np
import pytest

from tinygrad_like import Tensor, detect_anomaly, jit, nn, no_grad, optim, toposort


def _batches(n=6, batch=16, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 12)).astype(np.float32), rng.integers(0, 4, batch)) for _ in range(n)]


def _train(jitted, batches, momentum=0.0):
    model = nn.MLP((12, 8, 6, 4), seed=3)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=momentum)

    def loss_of(x, labels):
        return model.logits(x).cross_entropy(labels, reduction="mean")

    step = jit(loss_of) if jitted else loss_of
    losses, graphs = [], []
    for x, labels in batches:
        opt.zero_grad()
        loss = step(Tensor(x), Tensor(labels))
        graphs.append([t._ctx.name for t in toposort(loss) if t._ctx is not None])
        loss.backward()
        opt.step()
        losses.append(loss.data.copy())
    return losses, [p.data.copy() for p in model.parameters()], graphs


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_training_with_a_jitted_loss_is_bit_for_bit_eager(momentum):
    batches = _batches()
    eager, eager_params, _ = _train(False, batches, momentum)
    replayed, params, graphs = _train(True, batches, momentum)
    for a, b in zip(eager, replayed):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(eager_params, params):
        assert a.tobytes() == b.tobytes()
    # the first two calls run (and are traced) eagerly; from the third, one replayed node
    assert len(graphs[0]) > 3 and graphs[0] == graphs[1]
    assert all(g == ["jit"] for g in graphs[2:])


def test_plain_code_with_broadcasts_and_shared_inputs_matches_eager_gradients():
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    scale = Tensor(rng.standard_normal(()), requires_grad=True)
    shared = w * 2  # made outside the function: its gradient goes on to w through the eager graph

    def f(x):
        h = (x @ w + b).tanh() * scale
        return (h * h).sum() + (x @ shared).sigmoid().mean() * 3.0 + (h.max(axis=1) - b.sum()).sum()

    fast = jit(f)
    for i in range(4):
        x = Tensor(rng.standard_normal((7, 5)))
        for p in (w, b, scale):
            p.grad = None
        expected = f(x)
        expected.backward(retain_graph=True)
        eager_grads = [p.grad.data.copy() for p in (w, b, scale)]
        for p in (w, b, scale):
            p.grad = None
        got = fast(x)
        got.backward(retain_graph=True)
        assert got.data.tobytes() == expected.data.tobytes()
        for p, g in zip((w, b, scale), eager_grads):
            assert p.grad.data.tobytes() == g.tobytes(), (i, p.shape)


def test_a_new_shape_is_traced_anew_and_each_signature_replays():
    w = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    f = jit(lambda x: (x @ w).sigmoid().sum())
    for n in (4, 4, 4, 9, 9, 9, 4):
        x = Tensor(np.linspace(-1, 1, 3 * n).reshape(n, 3))
        out = f(x)
        np.testing.assert_array_equal(out.data, (x @ w).sigmoid().sum().data)
    assert [t._ctx.name for t in toposort(out) if t._ctx is not None] == ["jit"]


def test_parameters_changed_in_place_or_frozen_are_seen():
    layer = nn.Linear(4, 2, rng=np.random.default_rng(0))
    f = jit(lambda x: layer(x).sum())
    x = Tensor(np.ones((3, 4), np.float32))
    for _ in range(3):
        f(x)
    with no_grad():
        layer.weight.mul_(2.0)
    np.testing.assert_array_equal(f(x).data, layer(x).sum().data)
    layer.bias.requires_grad = False  # another layout of the inputs: traced again, and right
    out = f(x)
    out.backward()
    assert layer.bias.grad is None and layer.weight.grad is not None


def test_under_no_grad_the_replay_records_nothing():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    f = jit(lambda x: (x * w).exp().sum())
    with no_grad():
        for _ in range(3):
            out = f(Tensor(np.eye(2)))
    assert not out.requires_grad and out._ctx is None
    assert out.item() == pytest.approx(2 * np.e + 2)


def test_constants_made_inside_are_kept_but_changing_data_inside_is_refused():
    w = Tensor(np.ones(3), requires_grad=True)
    f = jit(lambda x: ((x * w) * 2 + Tensor(np.array([1.0, 2.0, 3.0]))).sum())
    for _ in range(3):
        assert f(Tensor(np.ones(3))).item() == 12.0
    counter = iter(range(100))
    g = jit(lambda x: (x * w + Tensor(np.full(3, float(next(counter))))).sum())
    g(Tensor(np.ones(3)))
    with pytest.raises(RuntimeError, match=r"jit\(.*\): input 1 of add \(shape \(3,\)\) changed between the first two"):
        g(Tensor(np.ones(3)))


def test_different_ops_between_calls_are_refused():
    w = Tensor(np.ones(2), requires_grad=True)
    calls = iter(range(10))

    def f(x):
        return (x * w).tanh().sum() if next(calls) == 0 else (x * w).sigmoid().sum()

    fast = jit(f)
    fast(Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"first two calls ran different ops \(tanh, then sigmoid\)"):
        fast(Tensor(np.ones(2)))


def test_unsupported_uses_get_clear_errors():
    w = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"must return one Tensor, got tuple"):
        jit(lambda x: (x * w, x))(Tensor(np.ones(2)))
    with pytest.raises(TypeError, match=r"argument 0 is a ndarray; pass arrays as Tensors"):
        jit(lambda x: w * 2)(np.ones(2))

    def calls_backward(x):
        loss = (x * w).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match=r"called backward\(\)"):
        jit(calls_backward)(Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"no op of it made"):
        jit(lambda x: w)(Tensor(np.ones(2)))

    def updates_in_place(x):
        loss = (x * w).sum()
        with no_grad():
            w.sub_(0.1)
        return loss

    with pytest.raises(RuntimeError, match=r"changes a tensor in place.*keep in-place updates outside"):
        jit(updates_in_place)(Tensor(np.ones(2)))


def test_create_graph_through_a_replay_is_refused_with_the_way_out():
    w = Tensor(np.ones(2), requires_grad=True)
    f = jit(lambda x: (x * w).exp().sum())
    for _ in range(3):
        out = f(Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"jit\(.*<lambda>\).*call the function without jit"):
        out.backward(create_graph=True)


def test_under_detect_anomaly_the_function_runs_eagerly_and_names_the_op():
    w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    f = jit(lambda x: (x * w).log().sum())
    for _ in range(3):
        f(Tensor(np.array([1.0, 1.0])))
    with detect_anomaly(), pytest.raises(FloatingPointError, match=r"log produced non-finite values"):
        f(Tensor(np.array([1.0, 1.0])))
