"""blog.compare: check_gradients on the blog's network (hand-written vs autograd vs finite differences, with the
computed diagnosis), and one blog update done both ways."""

import json
import re

import numpy as np
import pytest

from tinygrad_like import nn
from tinygrad_like.blog import NN, compare_gradients, compare_update, crossentropy_deriv, from_blog, softmax_deriv
from tinygrad_like.check import GradientReport

MISSING_SIGMOID = "missing sigmoid derivative"

SIZES = [784, 64, 32, 10]
NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"]


def batch(n, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)


def max_rel(report):
    """Parameter name -> hand-written vs autograd max relative difference."""
    return {e.name: e.max_rel for e in report.entries}


def causes(report):
    """Parameter name -> computed cause, for the hand-written gradients that disagree."""
    return {e.name: e.cause for e in report.entries if e.cause is not None}


def first_layer(report):
    """The first disagreeing layer from the output down, as the report's context says it."""
    return report.context["first_disagreeing_layer"]


@pytest.fixture(scope="module")
def reports():
    """Four reference runs: published and corrected code, batches of 1 and 200, random inputs."""
    out = {}
    for code in ("published", "corrected"):
        for n in (1, 200):
            net = NN(SIZES, corrected=code == "corrected", seed=n)
            x, labels = batch(n, seed=n + 1)
            out[code, n] = compare_gradients(net, from_blog(net), x, labels, seed=n)
    return out


# ----------------------------------------------------------------------------------------------------------
# Published vs corrected code on the blog network
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 200])
def test_corrected_code_agrees_with_autograd_to_float64_rounding(reports, n):
    report = reports["corrected", n]
    assert report.ok and report.disagreeing == [] and first_layer(report) is None
    assert sorted(e.name for e in report.entries) == sorted(NAMES)
    assert all(r <= 1e-12 for r in max_rel(report).values()), max_rel(report)
    assert all(p.scale > 0 for p in report.entries)  # a real gradient, not a vacuous zero
    assert causes(report) == {}
    assert "all 6 entries agree" in report.diagnosis


@pytest.mark.parametrize("code", ["published", "corrected"])
@pytest.mark.parametrize("n", [1, 200])
def test_finite_differences_agree_with_autograd(reports, code, n):
    report = reports[code, n]
    assert all(p.fd_max_rel <= 1e-6 for p in report.entries), [p.fd_max_rel for p in report.entries]
    assert all(p.fd_entries == 6 and p.fd_agree for p in report.entries)


@pytest.mark.parametrize("n", [1, 200])
def test_published_code_is_caught_and_the_cause_named(reports, n):
    report = reports["published", n]
    assert not report.ok
    assert report["layers.2.weight"].max_rel <= 1e-12 and report["layers.2.bias"].max_rel <= 1e-12
    assert sorted(report.disagreeing) == sorted(NAMES[:4])  # every hidden layer, nothing else
    assert all(report[name].max_rel > 1e-3 for name in NAMES[:4])
    assert first_layer(report) == "layers.1" and report.first_disagreeing.name.startswith("layers.1.")
    assert causes(report) == {name: MISSING_SIGMOID for name in NAMES[:4]}
    assert all(report[name].explained_max_rel <= 1e-12 for name in NAMES[:4])
    text = report.diagnosis
    assert f"({MISSING_SIGMOID}): your backward passes the gradient through sigmoid unchanged at network.py line" \
        in text and "s * (1 - s)" in text  # the cause, the blog's line, the fix
    assert f"the first from the loss is {report.first_disagreeing.name}" in text
    assert all(report[name].ok for name in NAMES[4:])  # the output layer agrees


def test_diagnosis_is_computed_not_assumed():
    """A published net whose hidden layers happen to be right (no hidden layer) is not blamed."""
    net = NN([20, 5], seed=0)
    report = compare_gradients(net, None, *batch(10, [20, 5]))
    assert report.ok and causes(report) == {}
    assert "sigmoid" not in report.diagnosis


# ----------------------------------------------------------------------------------------------------------
# Injected bugs: a copy of the hand-written backward with one mistake
# ----------------------------------------------------------------------------------------------------------


class BuggyNN(NN):
    """The blog's backward, copied, with one injected mistake at layer ``layer``."""

    def __init__(self, *args, bug, layer, **kwargs):
        super().__init__(*args, **kwargs)
        self.bug, self.layer = bug, layer

    def backward(self, x, y):
        self.forward(x)
        layers, y = self.layers, self._label(y)
        current = crossentropy_deriv(y, layers[-1]) @ softmax_deriv(layers[-1])
        for i in reversed(range(len(self.weights))):
            weight_grad, bias_grad = current.T @ layers[i].T, current.T
            if i == self.layer:
                if self.bug == "transposed weight":
                    weight_grad = weight_grad.T
                elif self.bug == "factor 2 weight":
                    weight_grad = 2 * weight_grad
                elif self.bug == "factor 2 bias":
                    bias_grad = 2 * bias_grad
                elif self.bug == "wrong sign propagation":
                    current = -current  # everything from this layer down is wrong
                    weight_grad, bias_grad = current.T @ layers[i].T, current.T
            self.weight_grads[i] += weight_grad
            self.bias_grads[i] += bias_grad
            if i == 0:
                break
            current = current @ self.weights[i]
            if self.corrected:
                current = current * (layers[i] * (1 - layers[i])).T


SQUARE = [30, 8, 8, 4]  # layers.1.weight is square, so a transposed gradient still fits its accumulator


@pytest.mark.parametrize("bug, layer, flagged, cause", [
    ("transposed weight", 1, ["layers.1.weight"], "transposed"),
    ("factor 2 weight", 0, ["layers.0.weight"], "factor 2"),
    ("factor 2 bias", 2, ["layers.2.bias"], "factor 2"),
    ("wrong sign propagation", 1, NAMES[:4], "factor -1"),
])
def test_injected_bug_flags_exactly_the_affected_parameters(bug, layer, flagged, cause):
    net = BuggyNN(SQUARE, corrected=True, seed=3, bug=bug, layer=layer)
    x, labels = batch(40, SQUARE, seed=4)
    report = compare_gradients(net, None, x, labels)
    assert report.context["code"] == "BuggyNN" and "hand-written backward (BuggyNN)" in str(report)
    assert sorted(report.disagreeing) == sorted(flagged)
    assert causes(report) == dict.fromkeys(flagged, cause)
    assert first_layer(report) == flagged[-1].rsplit(".", 1)[0]
    assert "sigmoid" not in report.diagnosis.lower()
    assert all(p.fd_agree for p in report.entries)  # autograd is right: finite differences side with it
    assert all(report[name].max_rel <= 1e-12 for name in NAMES if name not in flagged)


def test_injected_bug_on_top_of_the_published_code_is_told_apart():
    net = BuggyNN(SQUARE, corrected=False, seed=5, bug="factor 2 weight", layer=1)
    report = compare_gradients(net, None, *batch(40, SQUARE, seed=6))
    assert sorted(report.disagreeing) == sorted(NAMES[:4])
    assert causes(report) == {"layers.0.weight": MISSING_SIGMOID, "layers.0.bias": MISSING_SIGMOID,
                              "layers.1.weight": f"{MISSING_SIGMOID}, and factor 2",
                              "layers.1.bias": MISSING_SIGMOID}
    text = " ".join(report.diagnosis.split())
    assert f"layers.1.weight ({MISSING_SIGMOID}, and factor 2): your backward passes the gradient through " \
           "sigmoid unchanged" in text
    assert "and, against autograd with that derivative skipped too, the hand-written gradient is 2 times" in text


def test_unexplained_bug_is_not_dressed_up():
    class Noisy(NN):
        def backward(self, x, y):
            super().backward(x, y)
            self.bias_grads[0] += 0.01 * np.arange(self.bias_grads[0].size).reshape(-1, 1)

    net = Noisy(SQUARE, corrected=True, seed=7)
    report = compare_gradients(net, None, *batch(10, SQUARE, seed=8))
    assert report.disagreeing == ["layers.0.bias"]
    assert causes(report) == {"layers.0.bias": "unexplained"}
    assert "no computed cause" in report.diagnosis and "not a missing derivative of any op," in report.diagnosis


# ----------------------------------------------------------------------------------------------------------
# The report and its inputs
# ----------------------------------------------------------------------------------------------------------


def test_report_table_and_json(reports):
    report = reports["published", 200]
    assert isinstance(report, GradientReport)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("Blog network [784, 64, 32, 10], batch of 200, float64: hand-written backward "
                               "(published)")
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    rows = {row.split()[0]: row for row in lines[header + 2:header + 8]}
    assert list(rows) == [e.name for e in report.entries] and sorted(rows) == sorted(NAMES)  # backward order
    assert len({re.search(r"\b(DIFF|ok)\b", row).end() for row in rows.values()}) == 1  # the hand column is aligned
    assert f"verdict: DISAGREE (first from the loss: {report.first_disagreeing.name})" in text
    assert report.first_disagreeing.name.startswith("layers.1.")
    assert "missing sigmoid derivative" in rows["layers.0.weight"] and rows["layers.2.weight"].rstrip().endswith("ok")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["first_disagreeing_layer"] == "layers.1"
    assert data["code"] == "published" and data["sizes"] == SIZES and data["batch"] == 200
    assert sorted(data["disagreeing"]) == sorted(NAMES[:4])
    entries = {e["name"]: e for e in data["entries"]}
    assert sorted(entries) == sorted(NAMES)
    assert entries["layers.0.weight"]["shape"] == [64, 784] and entries["layers.0.weight"]["cause"] == MISSING_SIGMOID
    assert entries["layers.2.weight"]["max_rel"] == report["layers.2.weight"].max_rel
    with pytest.raises(KeyError, match="no entry 'layers.9.weight'"):
        report["layers.9.weight"]


def test_compare_leaves_the_network_alone_and_fills_the_mlp_grads():
    net = NN([30, 8, 4], seed=9)
    x, labels = batch(5, [30, 8, 4], seed=10)
    net.backward(x[0], labels[0])  # accumulators in use, as in the middle of a batch
    saved = [g.copy() for g in net.weight_grads + net.bias_grads]
    mlp = from_blog(net)
    report = compare_gradients(net, mlp, x, labels)
    assert all(np.array_equal(a, b) for a, b in zip(saved, net.weight_grads + net.bias_grads))
    assert not net.corrected
    for p in mlp.parameters():
        assert p.grad is not None
    assert report["layers.0.weight"].scale == np.max(np.abs(mlp.layers[0].weight.grad.data))


def test_compare_input_errors():
    net = NN([30, 8, 4], seed=11)
    x, labels = batch(5, [30, 8, 4])
    with pytest.raises(ValueError, match=r"compare_gradients: x must hold samples as rows of 30 inputs.*\(5, 29\)"):
        compare_gradients(net, None, x[:, :29], labels)
    with pytest.raises(ValueError, match=r"compare_gradients: labels must be 5 integers or one-hot rows \(5, 4\)"):
        compare_gradients(net, None, x, labels[:4])
    with pytest.raises(ValueError, match="compare_gradients: layers.0.weight is float32; the comparison needs float64"):
        compare_gradients(net, nn.MLP([30, 8, 4]), x, labels)
    other = from_blog(NN([30, 8, 4], seed=12))
    with pytest.raises(ValueError, match=r"layers.0.weight \(8, 30\) differs .* from_blog\(net\)"):
        compare_gradients(net, other, x, labels)
    with pytest.raises(ValueError, match="the MLP has 2 parameters, the blog network 4"):
        compare_gradients(net, from_blog(NN([30, 4])), x, labels)


def test_finite_differences_are_accurate():
    """Against an analytic derivative: the bias of the output layer, d(sum loss)/db = sum(softmax - onehot)."""
    net = NN([30, 8, 4], seed=13)
    x, labels = batch(20, [30, 8, 4], seed=14)
    targets = np.eye(4)[labels]
    probs = net.forward(x.T)
    exact = (probs - targets.T).sum(axis=1)
    bias = compare_gradients(net, None, x, labels, fd_entries=4)["layers.1.bias"]
    np.testing.assert_allclose(bias.autograd, exact, rtol=1e-12)
    assert bias.fd_entries == 4 and bias.fd_max_abs <= 1e-8 * np.max(np.abs(exact))  # every entry, to 1e-8
    assert net.sample_losses(x, targets).sum() == pytest.approx(net.loss(x, labels), rel=1e-13)


# ----------------------------------------------------------------------------------------------------------
# Training equivalence: one blog update
# ----------------------------------------------------------------------------------------------------------


def test_one_update_corrected_gives_the_same_weights():
    net = NN(SIZES, corrected=True, seed=15)
    x, labels = batch(200, seed=16)
    before = [w.copy() for w in net.weights]
    update = compare_update(net, x, labels, lr=0.001)
    assert update.ok and update.code == "corrected" and update.lr == 0.001 and update.batch == 200
    assert list(update.max_rel) == NAMES
    assert all(r <= 1e-12 for r in update.max_rel.values()), update.max_rel
    assert all(r <= 1e-9 for r in update.step_max_rel.values()), update.step_max_rel
    assert all(np.array_equal(a, b) for a, b in zip(before, net.weights))  # done on copies
    assert "same weights" in str(update)


def test_one_update_published_reports_the_difference():
    net = NN(SIZES, corrected=False, seed=15)
    update = compare_update(net, *batch(200, seed=16), lr=0.001)
    assert not update.ok
    assert update.max_rel["layers.2.weight"] <= 1e-12
    assert all(update.max_rel[name] > 1e-6 for name in NAMES[:4])
    text = str(update)
    assert "the weights DIFFER" in text and update.worst in text
    data = json.loads(json.dumps(update.to_dict()))
    assert data["ok"] is False and data["max_rel"]["layers.0.weight"] == update.max_rel["layers.0.weight"]
