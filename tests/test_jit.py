"""jit: capture a function's ops on two calls, replay them from the third, bit for bit the eager results."""

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from tinygrad_like import Tensor, detect_anomaly, enable_grad, jit, nn, no_grad, optim, toposort


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


def _replaying_layer(n_in, n_out, batch):
    """A Linear layer, its summed output jitted, and an input it was called on three times (so it replays)."""
    layer = nn.Linear(n_in, n_out, rng=np.random.default_rng(0))
    f = jit(lambda x: layer(x).sum())
    x = Tensor(np.ones((batch, n_in), np.float32))
    for _ in range(3):
        f(x)
    return layer, f, x


def test_parameters_changed_in_place_or_frozen_are_seen():
    layer, f, x = _replaying_layer(4, 2, 3)
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


def test_numbers_of_the_code_are_kept_but_tensors_made_inside_are_refused():
    w = Tensor(np.ones(3), requires_grad=True)
    f = jit(lambda x: ((x * w) * 2 + 1.5).sum())
    for _ in range(3):
        assert f(Tensor(np.ones(3))).item() == 10.5
    made_inside = [
        lambda x: (x * w + Tensor(np.array([1.0, 2.0, 3.0]))).sum(),  # data: pass it as an argument
        lambda x: (x * (x > 0) * w).sum(),  # a comparison is no op: its mask would be frozen
        lambda x: (x * x.detach() * w).sum(),
    ]
    for fn in made_inside:
        g = jit(fn)
        g(Tensor(np.ones(3)))
        with pytest.raises(RuntimeError, match=r"made without a recorded op.*pass it as an argument"):
            g(Tensor(-np.ones(3)))


def _same_as_eager(fn, *calls):
    """Call ``fn`` and ``jit(fn)`` on each argument tuple; results and gradients must be byte for byte equal."""
    fast = jit(fn)
    for args in calls:
        for t in args:
            t.grad = None
        expected = fn(*args)
        expected.backward()
        eager = [None if t.grad is None else t.grad.data.copy() for t in args]
        for t in args:
            t.grad = None
        got = fast(*args)
        got.backward()
        assert got.data.tobytes() == expected.data.tobytes()
        assert [None if t.grad is None else t.grad.data.tobytes() for t in args] == \
            [None if g is None else g.tobytes() for g in eager]
    return fast


def test_mixed_dtypes_and_casts_are_ops_the_replay_repeats():
    rng = np.random.default_rng(2)
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)  # float64, batches float32: x is cast
    batches = [(Tensor(rng.standard_normal((4, 3)).astype(np.float32)),) for _ in range(4)]
    _same_as_eager(lambda x: (x @ w).sum(), batches[0], batches[0], *batches[1:])
    images = [(Tensor(rng.integers(0, 256, (2, 5)).astype(np.uint8)),) for _ in range(4)]
    h = jit(lambda img: (img.cast(np.float32) / 255 * w[0, 0]).sum())
    for (img,) in images[:2] * 2 + images[2:]:
        assert h(img).item() == (img.cast(np.float32) / 255 * w[0, 0]).sum().item()


def test_a_tensor_passed_twice_or_also_read_from_outside_is_replayed_right():
    rng = np.random.default_rng(3)
    a, b, c = (Tensor(rng.standard_normal(4), requires_grad=True) for _ in range(3))
    f = jit(lambda x, y: (x * 2 + y * y).sum())
    f(a, a), f(a, a)
    assert f(b, c).item() == (b * 2 + c * c).sum().item()
    w = Tensor(rng.standard_normal(4), requires_grad=True)
    g = jit(lambda x: (x * w).sum())
    g(w), g(w)
    out = g(b)
    out.backward()
    assert out.item() == (b * w).sum().item() and w.grad is not None and b.grad is not None
    for v in (c, a, b):  # after the other two calls, new tensors replay
        assert g(v).item() == (v * w).sum().item()


def test_gradients_with_a_consumer_outside_created_later_are_bit_for_bit():
    # W used twice inside (a tied-weight autoencoder) and once more outside, after the call: the engine must add
    # the four contributions in the eager order.
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((6, 3))

    def run(jitted):
        w = Tensor(weight, requires_grad=True)

        def recon(x):
            d = (x @ w).tanh() @ w.T - x
            return (d * d).sum()

        fn = jit(recon) if jitted else recon
        grads = []
        for i in range(5):
            w.grad = None
            x = Tensor(np.random.default_rng(i).standard_normal((5, 6)))
            (fn(x) + 1e-3 * (w * w).sum()).backward()
            grads.append(w.grad.data.tobytes())
        return grads

    assert run(True) == run(False)


def test_switching_train_and_eval_traces_again():
    net = nn.Sequential(nn.Linear(4, 4, rng=np.random.default_rng(0)), nn.Dropout(0.5))
    net.eval()
    f = jit(lambda x: net(x).sum())
    x = Tensor(np.ones((2, 4), np.float32))
    for _ in range(3):
        assert f(x).item() == net(x).sum().item()
    net.train()  # dropout's mask is made without an op: refused instead of replaying the evaluation graph
    f(x)
    with pytest.raises(RuntimeError, match=r"made without a recorded op"):
        f(x)


def test_a_parameter_frozen_and_unfrozen_in_turns_replays_each_way():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(1))
    f = jit(lambda x: layer(x).sum())
    x = Tensor(np.ones((2, 3), np.float32))
    for i in range(8):
        layer.weight.requires_grad = i % 2 == 0
        layer.weight.grad = layer.bias.grad = None
        f(x).backward()
        assert (layer.weight.grad is not None) == (i % 2 == 0) and layer.bias.grad is not None


def test_value_checks_of_the_rules_run_on_replay():
    logits = Tensor(np.zeros((3, 4)), requires_grad=True)
    f = jit(lambda labels: logits.cross_entropy(labels))
    for _ in range(3):
        f(Tensor(np.array([0, 1, 3])))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\)"):
        f(Tensor(np.array([0, -1, 3])))


def test_a_jitted_function_may_call_another():
    w = Tensor(np.arange(3.0), requires_grad=True)
    inner = jit(lambda x: (x * w).tanh())
    inner(Tensor(np.ones(3)))  # inner half-way through its own capture: inside outer's, it runs eagerly
    outer = jit(lambda x: (inner(x) * inner(x * 2) * 2).sum())
    for i in range(5):
        x = Tensor(np.full(3, 0.1 * i))
        assert outer(x).item() == ((x * w).tanh() * (x * 2 * w).tanh() * 2).sum().item()


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
    with pytest.raises(TypeError, match=r"argument 0 holds Tensors inside a tuple"):
        jit(lambda xs: xs[0] * w)((Tensor(np.ones(2)),))
    with pytest.raises(RuntimeError, match=r"takes an array as a parameter \(an index\)"):
        g = jit(lambda ids: w[ids].sum())
        g(Tensor(np.array([0, 1]))), g(Tensor(np.array([0, 1])))

    def calls_backward(x):
        loss = (x * w).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match=r"makes backward\(\).*keep it outside the jitted function"):
        jit(calls_backward)(Tensor(np.ones(2)))

    def side_backward(x):
        (x * w).sum().backward(retain_graph=True)
        return (x * w * 2).sum()

    with pytest.raises(RuntimeError, match=r"makes backward\(\)"):
        jit(side_backward)(Tensor(np.ones(2)))
    with pytest.raises(RuntimeError, match=r"no op of it made"):
        jit(lambda x: w)(Tensor(np.ones(2)))

    def updates_in_place(x):
        loss = (x * w).sum()
        with no_grad():
            w.sub_(0.1)
        return loss

    with pytest.raises(RuntimeError, match=r"makes an in-place change \(sub_ on a tensor of shape \(2,\)\)"):
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


def test_changes_of_grad_or_requires_grad_inside_are_refused():
    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1)
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    x = Tensor(np.ones((2, 3), np.float32))

    def zeroes_inside(x):
        opt.zero_grad()
        return model(x).sum()

    def saliency(x):
        x.requires_grad_()
        return model(x).sum()

    def keeps_grad(x):
        z = x @ w
        z.retain_grad()
        return z.sum()

    def checks_inside(x):
        with detect_anomaly():
            return (x * w[0, 0]).log().sum()

    for fn, what in ((zeroes_inside, r"zero_grad\(\)"), (saliency, r"requires_grad_\(\)"),
                     (keeps_grad, r"retain_grad\(\)"), (checks_inside, r"detect_anomaly\(\)")):
        with pytest.raises(RuntimeError, match=r"the function makes " + what + ", which a replay would not repeat"):
            jit(fn)(Tensor(np.ones((2, 3), np.float32)))

    def assigns_inside(x):
        model.bias.grad = None  # no method call: seen by comparing the tensors before and after the second call
        return model(x).sum()

    f = jit(assigns_inside)
    f(x).backward()
    with pytest.raises(RuntimeError, match=r"changes a tensor's grad, requires_grad or data"):
        f(x)


def test_values_read_into_python_are_refused():
    w = Tensor(np.ones(3), requires_grad=True)

    def branches(x):
        return (x * w).sum() if (x.sum() > 0).item() else (x * w * 2).sum()

    for fn in (branches, lambda x: (x * w / float(x.sum())).sum(), lambda x: (x * float(np.asarray(x)[0])).sum(),
               lambda x: (x * w).sum() / np.count_nonzero(x), lambda x: (x * w).sum() * len(np.where(x > 0)[0])):
        with pytest.raises(RuntimeError, match=r"a read of a tensor's values in Python"):
            jit(fn)(Tensor(np.ones(3)))


def test_index_tensors_of_any_size_are_refused():
    x = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    for index in (np.array(1), np.array([1])):
        f = jit(lambda i: x[i].sum())
        f(Tensor(index))
        with pytest.raises(RuntimeError, match=r"getitem takes an array as a parameter"):
            f(Tensor(index))


def test_arguments_equal_in_value_but_not_in_type_or_sign_are_told_apart():
    k = Tensor(np.array([3]), dtype=np.int32)
    def scaled(t, s):
        return t * s[0] + t * 0

    f = jit(scaled)
    for s in ((1, 2), (1, 2), (1.0, 2.0), (1.0, 2.0), (1.0, 2.0)):
        assert f(k, s).dtype == scaled(k, s).dtype
    w = Tensor(np.ones(2), requires_grad=True)
    g = jit(lambda x, s: (x * w / s).sum())
    for s in (0.0, 0.0, -0.0, -0.0, -0.0, np.float32(0.0), np.float32(0.0), np.float32(-0.0)):
        assert g(Tensor(np.ones(2)), s).item() == (Tensor(np.ones(2)) * w / s).sum().item()


def test_a_module_can_be_jitted_and_grad_mode_inside_is_kept():
    class Block(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2, rng=np.random.default_rng(0))
            self.fn = lambda t: t * 0  # an attribute named like the jit's own

        def forward(self, x):
            return self.layer(x).tanh()

    block = Block()
    f = jit(block)
    x = Tensor(np.ones((1, 2), np.float32))
    for _ in range(3):
        np.testing.assert_array_equal(f(x).data, block(x).data)

    w = Tensor(np.ones(2), requires_grad=True)

    def with_grad(x):
        with enable_grad():
            return (x * w).sum()

    g = jit(with_grad)
    with no_grad():
        for _ in range(3):
            out = g(Tensor(np.ones(2)))
    assert out.requires_grad
    out.backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_reset_after_replacing_a_parameter_and_no_batch_kept_alive():
    layer, f, x = _replaying_layer(2, 1, 1)
    layer.weight = Tensor(np.zeros((1, 2), np.float32), requires_grad=True)
    f.reset()
    for _ in range(3):
        assert f(x).item() == layer(x).sum().item()
    batch = Tensor(np.ones((5, 2), np.float32))
    probe = weakref.ref(batch)
    f(batch)  # traced once, waiting for a second call: the trace holds no reference to the batch
    del batch
    gc.collect()
    assert probe() is None


def test_a_replay_lets_go_of_each_value_after_its_last_use():
    w = Tensor(np.ones((300, 300)), requires_grad=True)

    def chain(x):
        h = x * w
        for _ in range(20):
            h = (h * 0.5).exp()
        return h.sum()

    f = jit(chain)
    x = Tensor(np.full((300, 300), 0.1))
    with no_grad():
        for _ in range(2):
            f(x)
        tracemalloc.start()
        f(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 6 * 300 * 300 * 8  # a few arrays of 0.7 MB at a time, not the 40 the chain makes


def test_an_input_changed_in_place_before_backward_is_refused_as_eagerly():
    w = Tensor(np.ones(3), requires_grad=True)
    adds, multiplies = jit(lambda x: (x + w).sum()), jit(lambda x: (x * w).sum())
    for _ in range(3):
        added, multiplied = adds(Tensor(np.ones(3))), multiplies(Tensor(np.ones(3)))
    with no_grad():
        w.sub_(0.5)
    added.backward()  # add saves nothing: the change cannot spoil its gradient, as eagerly
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(RuntimeError, match=r"changed in place after the op was recorded"):
        multiplied.backward()
