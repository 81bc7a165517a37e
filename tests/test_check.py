"""check_gradients: every computed cause is found when it is the mistake, and only then."""

import json
import re

import numpy as np
import pytest

from tinygrad_like import Function, Tensor, check_gradients, nn, watch
from tinygrad_like.check import CAUSE_KINDS, GradientReport

rng = np.random.default_rng(0)
N, D, H, K = 6, 5, 4, 3
X = rng.standard_normal((N, D))
LABELS = rng.integers(0, K, N)
Y = np.eye(K)[LABELS]
TARGET = rng.standard_normal((N, K))


def params(seed=1):
    r = np.random.default_rng(seed)
    return {"W1": r.standard_normal((D, H)), "b1": r.standard_normal(H), "W2": r.standard_normal((H, K)),
            "b2": r.standard_normal(K)}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))  # as the blog writes it: a composite of four NumPy calls


def softmax(z):
    e = np.exp(z - np.max(z, axis=1, keepdims=True))  # max-shifted, as careful code does
    return e / np.sum(e, axis=1, keepdims=True)


ACTIVATIONS = {  # name -> (f, f' from (z, f(z)))
    "tanh": (np.tanh, lambda z, h: 1 - h ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z, h: (z > 0).astype(float)),
    "sigmoid": (sigmoid, lambda z, h: h * (1 - h)),
}


def network(activation="tanh", loss="ce"):
    """A two-layer net as a student writes it, and its hand-written backward with ``mistake`` injected."""
    act, dact = ACTIVATIONS[activation]

    def forward(p, x, y):
        z = x @ p["W1"] + p["b1"]
        h = watch("h", act(z))
        s = h @ p["W2"] + p["b2"]
        if loss == "ce":
            return -np.sum(y * np.log(softmax(s))) / len(x)
        return np.mean((s - y) ** 2)

    def backward(p, x, y, mistake=None):
        z = x @ p["W1"] + p["b1"]
        h = act(z)
        s = h @ p["W2"] + p["b2"]
        if loss == "ce":
            prob = softmax(s)
            ds = (prob - y) / len(x)
            if mistake == "softmax diagonal":
                ds = (-y / prob / len(x)) * prob * (1 - prob)
        else:
            ds = 2 * (s - y) / s.size
        dh = ds @ p["W2"].T
        dz = dh if mistake == "activation" else dh * dact(z, h)
        if mistake == "wrong derivative":
            dz = dh * (1 - h)
        g = {"W1": x.T @ dz, "b1": dz.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0), "h": dh}
        if mistake == "mean missed":
            g["W2"] = g["W2"] * len(x)
        if mistake == "factor 2":
            g["W1"] = 2 * g["W1"]
        if mistake == "varying factor":
            g["W1"] = g["W1"] * np.linspace(1, 2, g["W1"].size).reshape(g["W1"].shape)
        if mistake == "sign":
            g["b2"] = -g["b2"]
        if mistake == "sign and noise":
            g["b2"] = -g["b2"] + 1e-3 * np.arange(K)
        if mistake == "transpose":
            g["W1"] = dz.T @ x
        if mistake == "bias not summed":
            g["b1"] = dz
        if mistake == "bias summed over samples' other axis":
            g["b1"] = dz.sum(axis=1)
        if mistake == "bias rows wrong":
            g["b1"] = dz + 1e-3
        if mistake == "bias as a row":
            g["b1"] = dz.sum(axis=0, keepdims=True)
        if mistake == "wrong shape":
            g["b1"] = dz.sum(axis=0)[:-1]
        if mistake == "missing":
            del g["b2"]
        if mistake == "float32":
            g["W1"] = g["W1"].astype(np.float32)
        if mistake == "one entry off by 1e-4":
            g["W1"] = g["W1"].copy()
            g["W1"][1, 2] *= 1 + 1e-4
        if mistake == "nan":
            g["b1"] = g["b1"].copy()
            g["b1"][2] = np.nan
        if mistake == "zeros":
            g["W2"] = np.zeros_like(g["W2"])
        return g

    return forward, backward


def check(mistake=None, activation="tanh", loss="ce", p=None, **kwargs):
    forward, backward = network(activation, loss)
    y = Y if loss == "ce" else TARGET
    return check_gradients(forward, lambda q, x, t: backward(q, x, t, mistake), params() if p is None else p, X, y,
                           **kwargs)


def causes(report):
    return {e.name: (e.cause_kind, e.cause_op) for e in report.entries if e.cause_kind}


# ----------------------------------------------------------------------------------------------------------
# Correct backwards agree
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_correct_backwards_agree_with_autograd_and_finite_differences(activation, loss):
    report = check(activation=activation, loss=loss)
    assert report.ok and report.disagreeing == [] and report.first_disagreeing is None, str(report)
    assert all(e.max_rel <= 1e-12 and e.fd_max_rel <= 1e-7 and e.scale > 0 for e in report.entries)
    assert all(e.cause is None and e.advice is None for e in report.entries)
    assert "all 5 entries agree" in report.diagnosis


def test_tied_weights_agree_and_a_dropped_use_is_found():
    w = rng.standard_normal((D, 3))

    def forward(p, x):
        return np.sum((x @ p["W"] @ p["W"].T - x) ** 2)

    def backward(p, x, both=True, half=False):
        code = x @ p["W"]
        g = 2 * (code @ p["W"].T - x)
        first, second = x.T @ (g @ p["W"]), g.T @ code  # through W, and through W.T
        return {"W": first + (0.5 if half else 1.0) * (second if both else 0)}

    assert check_gradients(forward, backward, {"W": w}, X).ok
    report = check_gradients(forward, lambda p, x: backward(p, x, both=False), {"W": w}, X)
    assert causes(report) == {"W": ("not_accumulated", None)}
    assert "'W' is used 2 times" in report["W"].advice and "add that use's contribution" in report["W"].advice
    near = check_gradients(forward, lambda p, x: backward(p, x, half=True), {"W": w}, X)  # near miss: half a use
    assert causes(near) == {"W": ("unexplained", None)}


# ----------------------------------------------------------------------------------------------------------
# Every cause: found when it is the mistake, and near misses are not dressed up as it
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_a_skipped_activation_derivative_is_named_with_its_line(activation):
    report = check("activation", activation=activation)
    assert causes(report) == {"b1": ("missing_derivative", activation), "W1": ("missing_derivative", activation)}
    assert report["h"].agree and report["W2"].agree  # above the activation everything is right
    assert report["W1"].cause == f"missing {activation} derivative"
    assert "test_check.py line" in report["W1"].advice and "`h = watch(\"h\", act(z))`" in report["W1"].advice
    assert "The watched value h agrees, so the mistake lies between h and b1" in report.diagnosis
    assert report["W1"].explained_max_rel <= 1e-12


def test_a_wrong_derivative_is_not_a_missing_one():
    report = check("wrong derivative")
    assert causes(report) == {"b1": ("unexplained", None), "W1": ("unexplained", None)}


def test_a_missing_softmax_derivative_counts_the_composite_as_one_op():
    def forward(p, x, y):
        return np.sum(softmax(x @ p["W"]) * y)

    def backward(p, x, y):
        return {"W": x.T @ y}  # the gradient passed through softmax unchanged

    report = check_gradients(forward, backward, {"W": rng.standard_normal((D, K))}, X, TARGET)
    assert causes(report) == {"W": ("missing_derivative", "softmax")}
    assert "p * (g - (g * p).sum(axis, keepdims=True))" in report["W"].advice


def test_scale_says_when_it_is_the_batch_size():
    report = check("mean missed")
    assert causes(report) == {"W2": ("scale", None)} and report["W2"].factor == N
    assert f"{N} is the batch size" in report["W2"].advice and report["W2"].cause == f"factor {N}"
    report = check("factor 2")
    assert causes(report) == {"W1": ("scale", None)} and report["W1"].factor == 2
    assert "batch size" not in report["W1"].advice


def test_a_factor_that_is_not_constant_is_unexplained():
    assert causes(check("varying factor")) == {"W1": ("unexplained", None)}


def test_a_flipped_sign_is_named_and_a_noisy_one_is_unexplained():
    report = check("sign")
    assert causes(report) == {"b2": ("sign", None)} and report["b2"].factor == -1 and report["b2"].cause == "factor -1"
    assert causes(check("sign and noise")) == {"b2": ("unexplained", None)}


def test_transpose_of_a_non_square_and_of_a_square_gradient():
    report = check("transpose")
    assert causes(report) == {"W1": ("transpose", None)} and report["W1"].hand_shape == (H, D)

    def forward(p, x):
        return np.sum(np.tanh(x[:, :4] @ p["W"]))

    def backward(p, x, transposed=True, off=0.0):
        g = x[:, :4].T @ (1 - np.tanh(x[:, :4] @ p["W"]) ** 2)
        g = g.T if transposed else g
        g[0, 1] += off
        return {"W": g}

    w = rng.standard_normal((4, 4))
    assert causes(check_gradients(forward, backward, {"W": w}, X)) == {"W": ("transpose", None)}
    near = check_gradients(forward, lambda p, x: backward(p, x, off=1e-3), {"W": w}, X)
    assert causes(near) == {"W": ("unexplained", None)}


def test_a_missing_sum_over_broadcast_axes_is_named_with_its_axis():
    report = check("bias not summed")
    assert causes(report) == {"b1": ("broadcast_sum", None)} and report["b1"].hand_shape == (N, H)
    assert "not summed over axis 0" in report["b1"].advice and "`z = x @ p[\"W1\"] + p[\"b1\"]`" in report["b1"].advice
    report = check("bias summed over samples' other axis")
    assert causes(report) == {"b1": ("broadcast_sum", None)}
    assert "summed over axis 1, but broadcasting added axis 0" in report["b1"].advice
    assert causes(check("bias rows wrong")) == {"b1": ("shape", None)}  # near miss: its sum is not the gradient


def test_wrong_shapes_are_reported_not_raised():
    report = check("wrong shape")
    assert causes(report) == {"b1": ("shape", None)} and np.isinf(report["b1"].max_rel)
    assert report["b1"].hand_shape == (H - 1,) and report["b1"].shape == (H,)
    report = check("bias as a row")
    assert causes(report) == {"b1": ("shape", None)} and "the values are right: reshape it to (4,)" in str(report)


def test_a_missing_gradient_is_reported_and_autograd_still_checked():
    report = check("missing")
    assert causes(report) == {"b2": ("missing", None)} and report["b2"].hand is None
    assert report["b2"].fd_agree  # autograd is still checked against finite differences
    assert "backward returned no gradient for this parameter" in report.diagnosis


def test_softmax_jacobians_diagonal_only():
    report = check("softmax diagonal")
    assert {e.name: e.cause_kind for e in report.entries if not e.ok} == dict.fromkeys(
        ["b2", "W2", "h", "b1", "W1"], "softmax_jacobian")
    assert "only the diagonal p * (1 - p)" in report["W2"].advice
    assert "(`return -np.sum(y * np.log(softmax(s))) / len(x)`)" in report["W2"].advice  # the forward's line


def test_softmax_jacobian_of_the_softmax_rule_along_the_wrong_axis():
    def forward(p, x, y):
        return (Tensor(x) @ p["W"]).softmax(axis=1).mul(Tensor(y)).sum()

    def backward(p, x, y, axis=1, diagonal=False, off=0.0):
        prob = softmax(x @ p["W"].data)
        dz = prob * (1 - prob) * y if diagonal else prob * (y - np.sum(y * prob, axis=axis, keepdims=True))
        dz[0, 0] += off
        return {"W": x.T @ dz}

    w = Tensor(rng.standard_normal((D, K)))
    assert check_gradients(forward, backward, {"W": w}, X, TARGET).ok
    for kwargs in ({"axis": 0}, {"diagonal": True}):
        report = check_gradients(forward, lambda p, x, y, kw=kwargs: backward(p, x, y, **kw), {"W": w}, X, TARGET)
        assert causes(report) == {"W": ("softmax_jacobian", "softmax")}, kwargs
    near = check_gradients(forward, lambda p, x, y: backward(p, x, y, diagonal=True, off=1e-3), {"W": w}, X, TARGET)
    assert causes(near) == {"W": ("unexplained", None)}


def test_float32_is_checked_in_float64_and_float32_rounding_is_precision():
    p32 = {k: v.astype(np.float32) for k, v in params().items()}
    report = check(p=p32)
    assert report.ok and "were float32; checked in float64" in report.notes[0]
    report = check("float32")
    assert causes(report) == {"W1": ("precision", None)} and not report.ok
    assert 1e-9 < report["W1"].max_rel < 1e-6


def test_a_mistake_of_relative_size_1e4_in_one_entry_is_caught_and_not_called_rounding():
    report = check("one entry off by 1e-4")
    assert report.disagreeing == ["W1"] and causes(report) == {"W1": ("unexplained", None)}


def test_nan_and_zeros_in_the_hand_written_gradient():
    report = check("nan")
    assert causes(report) == {"b1": ("unexplained", None)}
    assert "backward returned 1 non-finite value (nan or inf) of 4 for it, the first at index (2,)" in report.diagnosis
    assert "all zeros" in check("zeros")["W2"].advice


def test_finite_differences_referee_a_wrong_rule():
    class BadCube(Function):
        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, grad):
            return (2 * self.x ** 2 * grad,)  # should be 3 x^2

    def forward(p, x):
        w = p["w"]
        return (BadCube.apply(w) if isinstance(w, Tensor) else w ** 3).sum()

    report = check_gradients(forward, lambda p, x: {"w": 3 * p["w"] ** 2}, {"w": np.array([0.5, 1.5])}, None)
    assert not report["w"].fd_agree and not report["w"].agree
    assert "autograd disagrees with finite differences for w" in report.diagnosis


def test_every_cause_kind_is_a_documented_identifier():
    assert set(CAUSE_KINDS) == {"missing_derivative", "scale", "sign", "transpose", "broadcast_sum", "not_accumulated",
                                "softmax_jacobian", "shape", "missing", "precision", "epsilon", "unexplained"}


# ----------------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------------


def test_report_entries_table_and_json():
    report = check("activation")
    assert isinstance(report, GradientReport)
    assert [e.name for e in report.entries] == ["b2", "W2", "h", "b1", "W1"]  # backward order
    assert [e.kind for e in report.entries] == ["parameter"] * 2 + ["intermediate"] + ["parameter"] * 2
    assert report.first_disagreeing.name == "b1" and report.disagreeing == ["b1", "W1"]
    assert report["W1"].shape == (D, H) and report["W1"].fd_entries == 6 and report["b2"].fd_entries == K
    text = str(report)
    rows = text.splitlines()
    header = next(i for i, line in enumerate(rows) if line.startswith("name"))
    table = rows[header + 2:header + 7]
    assert [r.split()[0] for r in table] == ["b2", "W2", "h", "b1", "W1"]
    assert len({re.search(r"\b(DIFF|ok)\b", r).end() for r in table}) == 1  # the hand column is aligned
    assert "verdict: DISAGREE (first from the loss: b1)" in text and "missing tanh derivative" in table[-1]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["first_disagreeing"] == "b1"
    assert data["entries"][4]["cause_kind"] == "missing_derivative" and data["entries"][4]["shape"] == [D, H]
    assert "hand" not in data["entries"][0]
    with pytest.raises(KeyError, match="no entry 'W9'"):
        report["W9"]


def test_the_drawing_marks_the_disagreeing_parameters():
    pytest.importorskip("graphviz")
    from tinygrad_like import draw

    report = check("activation")
    source = draw(report.loss, params=report.tensors, report=report).source
    w1 = next(line for line in source.splitlines() if "label=\"W1|" in line)
    assert "DISAGREES (missing tanh derivative)" in w1 and "fillcolor=salmon" in w1
    w2 = next(line for line in source.splitlines() if "label=\"W2|" in line)
    assert "fillcolor=palegreen" in w2
    report = check("softmax diagonal")  # a watched intermediate that disagrees is marked too
    source = draw(report.loss, params=report.tensors, report=report).source
    h = next(line for line in source.splitlines() if "label=\"tanh|(6, 4)" in line)
    assert "DISAGREES (softmax Jacobian applied wrongly)" in h and "fillcolor=salmon" in h


# ----------------------------------------------------------------------------------------------------------
# Parameters as a module or Tensors; bad input
# ----------------------------------------------------------------------------------------------------------


def test_a_module_with_a_tensor_forward():
    mlp = nn.MLP([D, H, K], activation="sigmoid", seed=0)

    def forward(m, x, labels):
        return m.logits(x).cross_entropy(labels)

    def backward(m, x, labels):
        (w0, b0), (w1, b1) = [(layer.weight.data, layer.bias.data) for layer in m.layers]
        a = sigmoid(x @ w0.T + b0)
        ds = (softmax(a @ w1.T + b1) - np.eye(K)[labels]) / len(x)
        dz = (ds @ w1) * a * (1 - a)
        return {"layers.0.weight": dz.T @ x, "layers.0.bias": dz.sum(0), "layers.1.weight": ds.T @ a,
                "layers.1.bias": ds.sum(0)}

    before = {name: p.data.copy() for name, p in mlp.named_parameters()}
    report = check_gradients(forward, backward, mlp, X.astype(np.float32), LABELS)
    assert report.ok, str(report)
    assert {e.name for e in report.entries} == set(before) and "float32; checked in float64" in report.notes[0]
    assert all(np.array_equal(p.data, before[name]) and p.grad is None for name, p in mlp.named_parameters())


def test_nothing_the_caller_passed_is_modified():
    p, x = params(), X.copy()
    saved = {k: v.copy() for k, v in p.items()}

    def forward(q, x, y):
        loss = -np.sum(y * np.log(softmax(x @ q["W1"][:, :K])))
        if isinstance(x, np.ndarray):
            x += 1  # a careless forward: it changes its copy only
        return loss

    check_gradients(forward, lambda q, x, y: {"W1": np.zeros((D, H))}, p, x, Y)
    assert all(np.array_equal(p[k], saved[k]) for k in p) and np.array_equal(x, X)


def test_bad_input_gets_clear_messages():
    forward, backward = network()
    with pytest.raises(TypeError, match=r"forward must return a scalar loss, got a ndarray of shape \(6, 3\)"):
        check_gradients(lambda p, x, y: x @ p["W1"][:, :K] * y, backward, params(), X, Y)
    with pytest.raises(TypeError, match="backward must return a dict name -> gradient array, got a list"):
        check_gradients(forward, lambda p, x, y: [1, 2], params(), X, Y)
    with pytest.raises(ValueError, match=r"gradients for 'W3', which are neither parameters \(W1, b1, W2, b2\) nor "
                                         r"values forward named with watch\(\) \(h\)"):
        check_gradients(forward, lambda p, x, y: {"W3": np.zeros(2)}, params(), X, Y)
    with pytest.raises(TypeError, match=r"np\.hypot is not supported on Tensors"):
        check_gradients(lambda p, x, y: np.sum(np.hypot(x @ p["W1"], 1)), lambda p, x, y: {}, params(), X, Y)
    with pytest.raises(TypeError, match="on Tensors, forward returned a float instead of a Tensor"):
        check_gradients(lambda p, x, y: float(np.sum(x @ p["W1"])), lambda p, x, y: {}, params(), X, Y)
    with pytest.raises(TypeError, match="params must be a dict name -> array"):
        check_gradients(forward, backward, [1.0], X, Y)
    with pytest.raises(TypeError, match="backward must be a function"):
        check_gradients(forward, {"W1": 1}, params(), X, Y)
    with pytest.raises(ValueError, match=r"non-finite loss \(inf\)"):
        check_gradients(lambda p, x, y: np.sum(p["W1"] ** 2) * np.inf, backward, params(), X, Y)
    with pytest.raises(TypeError, match="gradient for 'W1' is a str"):
        check_gradients(forward, lambda p, x, y: {"W1": "zero"}, params(), X, Y)


def test_watch_outside_a_check_and_its_errors():
    value = np.ones(3)
    assert watch("anything", value) is value

    def twice(p, x, y):
        watch("a", p["W1"])
        watch("a", p["W1"])
        return np.sum(p["W1"])

    with pytest.raises(ValueError, match="watch: the name 'a' is used twice"):
        check_gradients(twice, lambda p, x, y: {}, params(), X, Y)
    with pytest.raises(ValueError, match="watch: 'W1' is the name of a parameter"):
        check_gradients(lambda p, x, y: np.sum(watch("W1", p["W1"])), lambda p, x, y: {}, params(), X, Y)


def test_the_engines_recorder_is_opt_in_and_per_thread():
    import threading

    from tinygrad_like.engine import set_recorder

    seen, x = [], Tensor(np.ones(3), requires_grad=True)
    previous = set_recorder(seen.append)
    try:
        y = x.exp()
        other = threading.Thread(target=lambda: x.tanh())  # another thread records nothing
        other.start()
        other.join()
    finally:
        assert set_recorder(previous) == seen.append
    x.sigmoid()
    assert seen == [y.grad_fn] and previous is None
