"""check_gradients on learners' real code (issue 22): a true zero gradient, a small constant in the loss, per-sample
loops, one mistake with one cause, ``square``, embeddings with repeated indices, the user's line for Module forwards;
then learner-style backprops (Nielsen's per-sample loop, Backprop Ninja's batch norm and embedding, a conv by
im2col with np.pad, dropout with a mask, an L2 term), each correct and with one classic mistake, against PyTorch.

The forwards avoid in-place changes of Tensors (``total = total + loss``, not ``total += loss``).
"""

import numpy as np
import pytest

from tinygrad_like import check_gradients, nn, watch

THIS_FILE = "test_check_teaching_code.py line"


def causes(report):
    return {e.name: (e.cause_kind, e.cause_op) for e in report.entries if e.cause_kind}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))  # the textbooks' own: a composite of four NumPy calls


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def tensors(torch, arrays):
    return {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}


# ----------------------------------------------------------------------------------------------------------
# A true gradient of exactly zero: agreement has an absolute floor
# ----------------------------------------------------------------------------------------------------------

rng = np.random.default_rng(22)
N, D = 6, 5
X = rng.standard_normal((N, D))
BN_PARAMS = {"w": rng.standard_normal((D, D)), "b": rng.standard_normal(D)}


def bias_before_norm_forward(p, x):
    h = x @ p["w"] + p["b"]
    h = h - h.mean(axis=0)
    return np.sum(np.tanh(h) * x)


def bias_before_norm_backward(p, x, db="rounded"):
    z = x @ p["w"] + p["b"]
    h = z - z.mean(axis=0)
    dh = (1 - np.tanh(h) ** 2) * x
    dz = dh - dh.mean(axis=0)
    grads = {"w": x.T @ dz, "b": dz.sum(axis=0)}  # zero up to rounding
    if db == "zeros":
        grads["b"] = np.zeros(D)
    if db == "mean forgotten":
        grads["b"] = dh.sum(axis=0)
    return grads


@pytest.mark.parametrize("db", ["rounded", "zeros"])
def test_a_bias_before_a_batch_normalisation_agrees_with_a_zero_gradient(db, torch):
    report = check_gradients(bias_before_norm_forward, lambda p, x: bias_before_norm_backward(p, x, db), BN_PARAMS, X)
    assert report.ok, str(report)
    assert report["b"].agree and report["b"].fd_agree and report["b"].cause is None
    assert report["b"].scale < 1e-12 < report["w"].scale
    assert "autograd is wrong" not in report.diagnosis and "autograd disagrees" not in report.diagnosis
    t = tensors(torch, BN_PARAMS)  # the ground truth: PyTorch's gradient of b is zero too
    h = torch.tensor(X) @ t["w"] + t["b"]
    (torch.tanh(h - h.mean(0)) * torch.tensor(X)).sum().backward()
    assert np.abs(t["b"].grad.numpy()).max() < 1e-12
    assert np.allclose(t["w"].grad.numpy(), bias_before_norm_backward(BN_PARAMS, X)["w"], rtol=1e-12, atol=0)


def test_a_nonzero_hand_gradient_where_the_true_one_is_zero_is_still_caught():
    report = check_gradients(bias_before_norm_forward, lambda p, x: bias_before_norm_backward(p, x, "mean forgotten"),
                             BN_PARAMS, X)
    assert report.disagreeing == ["b"] and causes(report) == {"b": ("not_accumulated", None)}
    assert "`h = x @ p[\"w\"] + p[\"b\"]`) is used 2 times" in report["b"].advice
    assert "autograd disagrees" not in report.diagnosis


# ----------------------------------------------------------------------------------------------------------
# A small constant in the loss: "epsilon", never a false "precision"; a real mistake on top is still named
# ----------------------------------------------------------------------------------------------------------

K = 4
LABELS = rng.integers(0, K, N)
CE_PARAMS = {"W": rng.standard_normal((D, K)), "b": rng.standard_normal(K)}


def softmax_rows(s):
    e = np.exp(s - np.max(s, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def epsilon_forward(p, x, y):
    prob = softmax_rows(x @ p["W"] + p["b"])
    return -np.mean(np.log(prob[np.arange(len(x)), y] + 1e-7))


def epsilon_backward(p, x, y, mistake=None):
    prob = softmax_rows(x @ p["W"] + p["b"])
    ds = prob - np.eye(K)[y]  # the textbook (p - onehot) / n: the 1e-7 ignored
    if mistake != "n forgotten":
        ds = ds / len(x)
    grads = {"W": x.T @ ds, "b": ds.sum(axis=0)}
    if mistake == "bias not summed":
        grads["b"] = ds
    if mistake == "transpose":
        grads["W"] = ds.T @ x
    if mistake == "float32":
        grads["W"] = grads["W"].astype(np.float32)
    return grads


def test_a_small_constant_in_the_loss_is_epsilon_not_precision():
    report = check_gradients(epsilon_forward, epsilon_backward, CE_PARAMS, X, LABELS)
    assert causes(report) == {"W": ("epsilon", None), "b": ("epsilon", None)}, str(report)
    assert all(e.fd_agree and e.explained_max_rel <= 1e-12 for e in report.entries)
    assert "1e-07" in report["W"].advice and "`return -np.mean(np.log(prob[np.arange(len(x)), y] + 1e-7))`" in \
        report["W"].advice
    assert "precision" not in report.diagnosis and "float32" not in report.diagnosis
    assert "agrees up to a constant in the loss" in str(report)


@pytest.mark.parametrize("mistake, expected", [
    ("n forgotten", {"W": ("scale", None), "b": ("scale", None)}),
    ("bias not summed", {"W": ("epsilon", None), "b": ("broadcast_sum", None)}),
    ("transpose", {"W": ("transpose", None), "b": ("epsilon", None)}),
])
def test_a_real_mistake_next_to_a_small_constant_is_named(mistake, expected):
    report = check_gradients(epsilon_forward, lambda p, x, y: epsilon_backward(p, x, y, mistake), CE_PARAMS, X, LABELS)
    assert causes(report) == expected, str(report)
    if mistake == "n forgotten":
        assert report["W"].factor == N and f"{N} is the batch size" in report["W"].advice
    assert "1e-07" in report[next(iter(k for k, v in expected.items() if v[0] != "epsilon"))].advice


def test_float32_rounding_next_to_a_small_constant_is_not_called_epsilon():
    report = check_gradients(epsilon_forward, lambda p, x, y: epsilon_backward(p, x, y, "float32"), CE_PARAMS, X,
                             LABELS)
    assert report["b"].cause_kind == "epsilon" and report["W"].cause_kind != "epsilon"


# ----------------------------------------------------------------------------------------------------------
# x ** 2 is square
# ----------------------------------------------------------------------------------------------------------

TARGET = rng.standard_normal((N, K))


def squares_forward(p, x, t):
    r = x @ p["W"] - t
    return np.sum(r ** 2)


def test_x_squared_is_named_square(torch):
    def backward(p, x, t, skip=False):
        r = x @ p["W"] - t
        dr = np.ones_like(r) if skip else 2 * r
        return {"W": x.T @ dr}

    report = check_gradients(squares_forward, backward, {"W": CE_PARAMS["W"]}, X, TARGET)
    assert report.ok
    report = check_gradients(squares_forward, lambda p, x, t: backward(p, x, t, True), {"W": CE_PARAMS["W"]}, X, TARGET)
    assert causes(report) == {"W": ("missing_derivative", "square")}
    assert report["W"].cause == "missing square derivative" and "pow" not in report["W"].advice
    assert "2 * z" in report["W"].advice and "`return np.sum(r ** 2)`" in report["W"].advice
    w = torch.tensor(CE_PARAMS["W"], requires_grad=True)
    ((torch.tensor(X) @ w - torch.tensor(TARGET)) ** 2).sum().backward()
    assert np.allclose(w.grad.numpy(), backward(CE_PARAMS, X, TARGET)["W"], rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------------------------------------
# The user's line for nn.Module and Tensor-method forwards
# ----------------------------------------------------------------------------------------------------------

H = 4


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(D, H)
        self.out = nn.Linear(H, K)

    def forward(self, x):
        return self.out(nn.functional.tanh(self.hidden(x)))


def module_backward(m, x, y, skip=True):
    w0, b0, w1, b1 = (m.hidden.weight.data, m.hidden.bias.data, m.out.weight.data, m.out.bias.data)
    h = np.tanh(x @ w0.T + b0)
    ds = (softmax_rows(h @ w1.T + b1) - np.eye(K)[y]) / len(x)
    dz = ds @ w1 if skip else (ds @ w1) * (1 - h ** 2)
    return {"hidden.weight": dz.T @ x, "hidden.bias": dz.sum(0), "out.weight": ds.T @ h, "out.bias": ds.sum(0)}


def test_a_module_forward_is_located_at_the_users_line():
    nn_model = TwoLayers()
    assert check_gradients(lambda m, x, y: m(x).cross_entropy(y),
                           lambda m, x, y: module_backward(m, x, y, skip=False), nn_model, X, LABELS).ok
    report = check_gradients(lambda m, x, y: m(x).cross_entropy(y), module_backward, nn_model, X, LABELS)
    assert causes(report) == {"hidden.weight": ("missing_derivative", "tanh"),
                              "hidden.bias": ("missing_derivative", "tanh")}
    advice = report["hidden.weight"].advice
    assert f"{THIS_FILE}" in advice and "`return self.out(nn.functional.tanh(self.hidden(x)))`" in advice
    assert "functional.py" not in advice and "module.py" not in advice and "layers.py" not in advice


def test_a_sequential_forward_is_located_at_the_users_line():
    model = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, K))

    def forward(m, x, y):
        return m(x).cross_entropy(y)

    def backward(m, x, y):
        first, last = m.layers[0], m.layers[2]
        h = np.tanh(x @ first.weight.data.T + first.bias.data)
        ds = (softmax_rows(h @ last.weight.data.T + last.bias.data) - np.eye(K)[y]) / len(x)
        dz = ds @ last.weight.data  # the tanh derivative skipped
        return {"layers.0.weight": dz.T @ x, "layers.0.bias": dz.sum(0), "layers.2.weight": ds.T @ h,
                "layers.2.bias": ds.sum(0)}

    report = check_gradients(forward, backward, model, X, LABELS)
    assert report["layers.0.weight"].cause == "missing tanh derivative"
    advice = report["layers.0.weight"].advice
    assert "`return m(x).cross_entropy(y)`" in advice and "tinygrad_like" not in advice and "layers.py" not in advice
