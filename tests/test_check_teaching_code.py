"""check_gradients on learners' real code: a true zero gradient, a small constant in the loss, per-sample
loops, one mistake with one cause, ``square``, embeddings with repeated indices, the user's line for Module forwards;
then learner-style backprops (Nielsen's per-sample loop, Backprop Ninja's batch norm and embedding, a conv by
im2col with np.pad, dropout with a mask, an L2 term), each correct and with one classic mistake, against PyTorch.

The forwards avoid in-place changes of Tensors (``total = total + loss``, not ``total += loss``).
"""

import numpy as np
import pytest

from tinygrad_like import Tensor, check_gradients, nn, watch

THIS_FILE = "test_check_teaching_code.py line"


def causes(report):
    return {e.name: (e.cause_kind, e.cause_op) for e in report.entries if e.cause_kind}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))  # the textbooks' own: a composite of four NumPy calls


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
    grads = {"w": x.T @ dz, "b": np.ones(len(x)) @ dz}  # zero up to rounding, not autograd's rounding
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
    if db == "rounded":  # a relative difference of order 1 between two rounding noises: the floor makes it agree
        assert 0 < report["b"].max_abs < 1e-14 and report["b"].max_rel > 1e-3
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
H = 4
LOOP_PARAMS = {"W1": rng.standard_normal((D, H)), "b1": rng.standard_normal(H), "W2": rng.standard_normal((H, K))}


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


def test_a_skipped_derivative_next_to_a_small_constant_is_named_with_its_line():
    def forward(p, x, y):
        h = np.tanh(x @ p["W1"])
        prob = softmax_rows(h @ p["W2"])
        return -np.mean(np.log(prob[np.arange(len(x)), y] + 1e-7))

    def backward(p, x, y):
        h = np.tanh(x @ p["W1"])
        ds = (softmax_rows(h @ p["W2"]) - np.eye(K)[y]) / len(x)
        return {"W1": x.T @ (ds @ p["W2"].T), "W2": h.T @ ds}  # tanh's derivative skipped

    params = {"W1": LOOP_PARAMS["W1"], "W2": LOOP_PARAMS["W2"]}
    report = check_gradients(forward, backward, params, X, LABELS)
    assert causes(report) == {"W2": ("epsilon", None), "W1": ("missing_derivative", "tanh")}, str(report)
    assert "`h = np.tanh(x @ p[\"W1\"])`" in report["W1"].advice and "1e-07" in report["W1"].advice
    assert report["W1"].explained_max_rel <= 1e-12


def test_float32_rounding_next_to_a_small_constant_is_precision_not_epsilon():
    report = check_gradients(epsilon_forward, lambda p, x, y: epsilon_backward(p, x, y, "float32"), CE_PARAMS, X,
                             LABELS)
    assert causes(report) == {"W": ("precision", None), "b": ("epsilon", None)}
    assert "1e-07" in report["W"].advice and "float32" in report["W"].advice


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
        first, last = m[0], m[2]
        h = np.tanh(x @ first.weight.data.T + first.bias.data)
        ds = (softmax_rows(h @ last.weight.data.T + last.bias.data) - np.eye(K)[y]) / len(x)
        dz = ds @ last.weight.data  # the tanh derivative skipped
        return {"0.weight": dz.T @ x, "0.bias": dz.sum(0), "2.weight": ds.T @ h, "2.bias": ds.sum(0)}

    report = check_gradients(forward, backward, model, X, LABELS)
    assert report["0.weight"].cause == "missing tanh derivative"
    advice = report["0.weight"].advice
    assert "`return m(x).cross_entropy(y)`" in advice and "tinygrad_like" not in advice and "layers.py" not in advice


# ----------------------------------------------------------------------------------------------------------
# Per-sample loops: Nielsen's network.py (backprop per sample, summed), and a loop written inline
# ----------------------------------------------------------------------------------------------------------

SIZES = [3, 4, 2]
NIELSEN_X = rng.standard_normal((5, SIZES[0]))
NIELSEN_Y = rng.random((5, SIZES[-1]))
NIELSEN_PARAMS = {"w1": rng.standard_normal((SIZES[1], SIZES[0])), "b1": rng.standard_normal((SIZES[1], 1)),
                  "w2": rng.standard_normal((SIZES[2], SIZES[1])), "b2": rng.standard_normal((SIZES[2], 1))}


def feedforward(p, a):
    a1 = sigmoid(p["w1"] @ a + p["b1"])
    return sigmoid(p["w2"] @ a1 + p["b2"])


def nielsen_forward(p, xs, ys):
    total = 0.0
    for x, y in zip(xs, ys):
        out = feedforward(p, x.reshape(-1, 1))
        total = total + 0.5 * np.sum((out - y.reshape(-1, 1)) ** 2)
    return total / len(xs)


def backprop(p, x, y, mistake=None):
    """Nielsen's backprop for one sample (column vectors), quadratic cost."""
    z1 = p["w1"] @ x + p["b1"]
    a1 = sigmoid(z1)
    z2 = p["w2"] @ a1 + p["b2"]
    a2 = sigmoid(z2)
    delta = (a2 - y) * a2 * (1 - a2)
    nabla = {"w2": delta @ a1.T, "b2": delta}
    sp = a1 * (1 - a1)
    delta = p["w2"].T @ delta if mistake == "sigmoid_prime dropped" else (p["w2"].T @ delta) * sp
    nabla.update(w1=delta @ x.T, b1=delta)
    return nabla


def nielsen_backward(p, xs, ys, mistake=None):
    total = {k: np.zeros_like(v) for k, v in p.items()}
    for x, y in zip(xs, ys):
        for k, g in backprop(p, x.reshape(-1, 1), y.reshape(-1, 1), mistake).items():
            total[k] = total[k] + g
    return {k: g / len(xs) for k, g in total.items()}


def test_nielsens_per_sample_backprop_agrees(torch):
    report = check_gradients(nielsen_forward, nielsen_backward, NIELSEN_PARAMS, NIELSEN_X, NIELSEN_Y)
    assert report.ok, str(report)
    t = tensors(torch, NIELSEN_PARAMS)
    a1 = torch.sigmoid(torch.tensor(NIELSEN_X) @ t["w1"].T + t["b1"].T)
    out = torch.sigmoid(a1 @ t["w2"].T + t["b2"].T)
    (0.5 * ((out - torch.tensor(NIELSEN_Y)) ** 2).sum() / len(NIELSEN_X)).backward()
    hand = nielsen_backward(NIELSEN_PARAMS, NIELSEN_X, NIELSEN_Y)
    assert all(np.allclose(t[k].grad.numpy(), hand[k], rtol=1e-12, atol=1e-15) for k in hand)


def test_a_derivative_dropped_in_every_sample_is_named_with_its_line():
    report = check_gradients(nielsen_forward, lambda p, x, y: nielsen_backward(p, x, y, "sigmoid_prime dropped"),
                             NIELSEN_PARAMS, NIELSEN_X, NIELSEN_Y)
    assert causes(report) == {"w1": ("missing_derivative", "sigmoid"), "b1": ("missing_derivative", "sigmoid")}
    advice = report["w1"].advice
    assert "`a1 = sigmoid(p[\"w1\"] @ a + p[\"b1\"])`" in advice and "each of the 5 times it runs there" in advice
    assert advice.count(THIS_FILE) == 2  # the line, and the forward's line that called it: once each
    assert report["w1"].explained_max_rel <= 1e-12


def test_the_same_mistake_batched_gets_the_same_cause():
    def forward(p, xs, ys):
        out = sigmoid(p["w2"] @ sigmoid(p["w1"] @ xs.T + p["b1"]) + p["b2"])
        return 0.5 * np.sum((out - ys.T) ** 2) / len(xs)

    def backward(p, xs, ys):
        return nielsen_backward(p, xs, ys, "sigmoid_prime dropped")

    report = check_gradients(forward, backward, NIELSEN_PARAMS, NIELSEN_X, NIELSEN_Y)
    assert causes(report) == {"w1": ("missing_derivative", "sigmoid"), "b1": ("missing_derivative", "sigmoid")}


BLOG_SIZES = [4, 5, 5, 3]
BLOG_X = rng.standard_normal((6, BLOG_SIZES[0]))
BLOG_Y = np.eye(BLOG_SIZES[-1])[rng.integers(0, BLOG_SIZES[-1], 6)]


def blog_network(p, corrected=False):
    from tinygrad_like.blog import NN

    net = NN(BLOG_SIZES, corrected=corrected)
    net.weights = [p[f"W{i}"] for i in range(len(BLOG_SIZES) - 1)]
    net.biases = [p[f"b{i}"] for i in range(len(BLOG_SIZES) - 1)]
    return net


def blog_loop_forward(p, xs, ys):
    net, total = blog_network(p), 0.0
    for x, y in zip(xs, ys):
        total = total - np.sum(y.reshape(-1, 1) * np.log(net.forward(x)))
    return total


def blog_loop_backward(p, xs, ys, corrected):
    net = blog_network(p, corrected)
    net.zero_grad()
    net.accumulate(xs, ys)  # the post's own loop: forward, then backward, sample by sample
    grads = {f"W{i}": g for i, g in enumerate(net.weight_grads)}
    return {**grads, **{f"b{i}": g for i, g in enumerate(net.bias_grads)}}


def test_the_blogs_per_sample_loop_as_published_and_corrected():
    r = np.random.default_rng(3)
    params = {**{f"W{i}": r.uniform(-1, 1, (m, n)) for i, (n, m) in enumerate(zip(BLOG_SIZES, BLOG_SIZES[1:]))},
              **{f"b{i}": r.uniform(-1, 1, (m, 1)) for i, m in enumerate(BLOG_SIZES[1:])}}
    assert check_gradients(blog_loop_forward, lambda p, x, y: blog_loop_backward(p, x, y, True), params, BLOG_X,
                           BLOG_Y).ok
    report = check_gradients(blog_loop_forward, lambda p, x, y: blog_loop_backward(p, x, y, False), params, BLOG_X,
                             BLOG_Y)
    assert causes(report) == {name: ("missing_derivative", "sigmoid") for name in ("W0", "b0", "W1", "b1")}
    assert "network.py line" in report["W0"].advice and "sigmoid(z))`" in report["W0"].advice
    assert "each of the 12 times it runs there" in report["W0"].advice  # 2 hidden layers x 6 samples


def inline_loop_forward(p, x, y):
    loss = 0.0
    for i in range(len(x)):
        h = np.tanh(x[i] @ p["W1"] + p["b1"])
        loss = loss + np.sum((h @ p["W2"] - y[i]) ** 2)
    return loss / len(x)


def inline_loop_backward(p, x, y, skip=False):
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    for i in range(len(x)):
        h = np.tanh(x[i] @ p["W1"] + p["b1"])
        dout = 2 * (h @ p["W2"] - y[i]) / len(x)
        grads["W2"] = grads["W2"] + np.outer(h, dout)
        dz = p["W2"] @ dout if skip else (p["W2"] @ dout) * (1 - h ** 2)
        grads["W1"] = grads["W1"] + np.outer(x[i], dz)
        grads["b1"] = grads["b1"] + dz
    return grads



def test_a_loop_written_inline_in_the_forward():
    assert check_gradients(inline_loop_forward, inline_loop_backward, LOOP_PARAMS, X, TARGET).ok
    report = check_gradients(inline_loop_forward, lambda p, x, y: inline_loop_backward(p, x, y, True), LOOP_PARAMS,
                             X, TARGET)
    assert causes(report) == {"W1": ("missing_derivative", "tanh"), "b1": ("missing_derivative", "tanh")}
    assert "`h = np.tanh(x[i] @ p[\"W1\"] + p[\"b1\"])`" in report["W1"].advice
    assert f"each of the {N} times it runs there" in report["W1"].advice


# ----------------------------------------------------------------------------------------------------------
# Backprop Ninja (makemore part 4) in NumPy: an embedding with repeated indices, batch norm, a max-shifted
# cross-entropy; logit_maxes and b1 have true gradients of zero
# ----------------------------------------------------------------------------------------------------------

VOCAB, BLOCK, EMB, HID, BATCH = 7, 3, 2, 8, 8
XB = rng.integers(0, VOCAB, (BATCH, BLOCK))  # 24 picks from 7 rows: rows repeat
YB = rng.integers(0, VOCAB, BATCH)
NINJA_PARAMS = {"C": rng.standard_normal((VOCAB, EMB)), "W1": rng.standard_normal((BLOCK * EMB, HID)) * 0.5,
                "b1": rng.standard_normal(HID) * 0.1, "W2": rng.standard_normal((HID, VOCAB)) * 0.1,
                "b2": rng.standard_normal(VOCAB) * 0.1, "bngain": 1 + 0.1 * rng.standard_normal((1, HID)),
                "bnbias": 0.1 * rng.standard_normal((1, HID))}


def ninja_forward(p, Xb, Yb, keep=None):
    n = len(Xb)
    emb = p["C"][Xb]
    embcat = emb.reshape(n, -1)
    hprebn = watch("hprebn", embcat @ p["W1"] + p["b1"])
    bnmeani = 1 / n * np.sum(hprebn, axis=0, keepdims=True)
    bndiff = watch("bndiff", hprebn - bnmeani)
    bndiff2 = bndiff ** 2
    bnvar = 1 / (n - 1) * np.sum(bndiff2, axis=0, keepdims=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = p["bngain"] * bnraw + p["bnbias"]
    h = np.tanh(hpreact)
    logits = h @ p["W2"] + p["b2"]
    logit_maxes = watch("logit_maxes", np.max(logits, axis=1, keepdims=True))
    norm_logits = logits - logit_maxes
    counts = np.exp(norm_logits)
    counts_sum = np.sum(counts, axis=1, keepdims=True)
    counts_sum_inv = counts_sum ** -1
    probs = counts * counts_sum_inv
    logprobs = np.log(probs)
    if keep is not None:
        keep.update(locals())
    return -np.mean(logprobs[np.arange(n), Yb])


def ninja_backward(p, Xb, Yb, mistake=None):
    """Karpathy's exercise 1, line by line, in NumPy."""
    v = {}
    ninja_forward(p, Xb, Yb, keep=v)
    n, C, W1, W2, bngain = len(Xb), p["C"], p["W1"], p["W2"], p["bngain"]
    dlogprobs = np.zeros_like(v["logprobs"])
    dlogprobs[np.arange(n), Yb] = -1.0 / n
    dprobs = (1.0 / v["probs"]) * dlogprobs
    dcounts_sum_inv = (v["counts"] * dprobs).sum(1, keepdims=True)
    dcounts = v["counts_sum_inv"] * dprobs
    dcounts_sum = (-v["counts_sum"] ** -2) * dcounts_sum_inv
    dcounts += np.ones_like(v["counts"]) * dcounts_sum
    dnorm_logits = v["counts"] * dcounts
    dlogits = dnorm_logits.copy()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdims=True)
    dlogits += np.eye(v["logits"].shape[1])[v["logits"].argmax(1)] * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = v["h"].T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - v["h"] ** 2) * dh
    dbngain = (v["bnraw"] * dhpreact).sum(0, keepdims=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdims=True)
    dbndiff = v["bnvar_inv"] * dbnraw
    dbnvar_inv = (v["bndiff"] * dbnraw).sum(0, keepdims=True)
    dbnvar = (-0.5 * (v["bnvar"] + 1e-5) ** -1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * np.ones_like(v["bndiff2"]) * dbnvar
    if mistake != "dbndiff += dropped":
        dbndiff += (2 * v["bndiff"]) * dbndiff2
    dhprebn = dbndiff.copy()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (np.ones_like(v["hprebn"]) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = v["embcat"].T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.reshape(v["emb"].shape)
    dC = np.zeros_like(C)
    if mistake == "dC[Xb] = demb":
        dC[Xb] = demb
    elif mistake == "dC[Xb] += demb":
        dC[Xb] += demb
    else:
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                dC[Xb[k, j]] += demb[k, j]
    return {"C": dC, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "bngain": dbngain, "bnbias": dbnbias,
            "hprebn": dhprebn, "bndiff": dbndiff, "logit_maxes": dlogit_maxes}


def ninja_check(mistake=None):
    return check_gradients(ninja_forward, lambda p, x, y: ninja_backward(p, x, y, mistake), NINJA_PARAMS, XB, YB)


def test_backprop_ninja_agrees_with_its_true_zeros(torch):
    report = ninja_check()
    assert report.ok, str(report)
    assert report["logit_maxes"].scale < 1e-15 and report["b1"].scale < 1e-15  # true zeros, agreeing
    t = tensors(torch, NINJA_PARAMS)  # the ground truth: PyTorch on Karpathy's forward
    embcat = t["C"][torch.tensor(XB)].view(BATCH, -1)
    hprebn = embcat @ t["W1"] + t["b1"]
    bnraw = (hprebn - hprebn.mean(0, keepdim=True)) * (hprebn.var(0, keepdim=True, unbiased=True) + 1e-5) ** -0.5
    logits = torch.tanh(t["bngain"] * bnraw + t["bnbias"]) @ t["W2"] + t["b2"]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(YB))
    loss.backward()
    assert np.isclose(loss.item(), report.loss_value, rtol=1e-12)
    hand = ninja_backward(NINJA_PARAMS, XB, YB)
    assert all(np.allclose(t[k].grad.numpy(), hand[k], rtol=1e-9, atol=1e-12) for k in NINJA_PARAMS)


def test_one_dropped_accumulation_gets_one_cause():
    report = ninja_check("dbndiff += dropped")
    assert report.disagreeing == ["bndiff", "hprebn", "W1", "C"], report.disagreeing
    assert {e.cause_kind for e in report.entries if not e.ok} == {"not_accumulated"}, str(report)
    assert len({e.advice for e in report.entries if not e.ok}) == 1
    assert "derivative" not in report.diagnosis
    assert "its use by square at" in report["W1"].advice and "`bndiff2 = bndiff ** 2`" in report["W1"].advice


@pytest.mark.parametrize("mistake", ["dC[Xb] = demb", "dC[Xb] += demb"])
def test_an_embedding_gradient_assigned_through_repeated_indices(mistake):
    report = ninja_check(mistake)
    assert causes(report) == {"C": ("not_accumulated", None)}, str(report)
    advice = report["C"].advice
    assert "np.add.at(dC, ix, g)" in advice and "repeated indices" in advice and "`emb = p[\"C\"][Xb]`" in advice


# ----------------------------------------------------------------------------------------------------------
# A convolution by im2col with np.pad (two layers: the second pads a Tensor), relu between them
# ----------------------------------------------------------------------------------------------------------

IMAGES = rng.standard_normal((2, 2, 5, 5))
CONV_TARGET = rng.standard_normal((2, 2, 5, 5))
CONV_PARAMS = {"W1": rng.standard_normal((3, 2, 3, 3)) * 0.3, "W2": rng.standard_normal((2, 3, 3, 3)) * 0.3}


def im2col(x, k):
    """(N, C, H, W) -> rows (N*H*W, C*k*k) of the zero-padded k x k patches (stride 1, same size)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    patches = np.stack([xp[:, :, i:i + h, j:j + w] for i in range(k) for j in range(k)], axis=2)  # N, C, kk, H, W
    return np.transpose(patches, (0, 3, 4, 1, 2)).reshape(n * h * w, c * k * k)


def conv(x, w):
    n, _, h, wd = x.shape
    out = im2col(x, w.shape[2]) @ w.reshape(w.shape[0], -1).T  # (N*H*W, F)
    return np.transpose(out.reshape(n, h, wd, w.shape[0]), (0, 3, 1, 2))


def conv_forward(p, x, t):
    h = np.maximum(conv(x, p["W1"]), 0)
    return np.mean((conv(h, p["W2"]) - t) ** 2)


def conv_backward_step(dout, x, w):
    """Gradients of conv(x, w) for the gradient ``dout`` at its output: (dx, dw), col2im with np.add.at."""
    n, c, h, wd = x.shape
    k = w.shape[2]
    dmat = np.transpose(dout, (0, 2, 3, 1)).reshape(n * h * wd, w.shape[0])
    dw = (dmat.T @ im2col(x, k)).reshape(w.shape)
    dcols = np.transpose((dmat @ w.reshape(w.shape[0], -1)).reshape(n, h, wd, c, k * k), (0, 3, 4, 1, 2))
    dxp = np.zeros((n, c, h + k - 1, wd + k - 1))
    for idx in range(k * k):
        i, j = divmod(idx, k)
        dxp[:, :, i:i + h, j:j + wd] += dcols[:, :, idx]
    return dxp[:, :, k // 2:k // 2 + h, k // 2:k // 2 + wd], dw


def conv_backward(p, x, t, skip_relu=False):
    z = conv(x, p["W1"])
    h = np.maximum(z, 0)
    dout = 2 * (conv(h, p["W2"]) - t) / t.size
    dh, dw2 = conv_backward_step(dout, h, p["W2"])
    dz = dh if skip_relu else dh * (z > 0)
    return {"W1": conv_backward_step(dz, x, p["W1"])[1], "W2": dw2}


def test_a_conv_by_im2col_with_np_pad_agrees_and_matches_pytorch(torch):
    report = check_gradients(conv_forward, conv_backward, CONV_PARAMS, IMAGES, CONV_TARGET)
    assert report.ok, str(report)
    t = tensors(torch, CONV_PARAMS)
    f = torch.nn.functional
    out = f.conv2d(torch.relu(f.conv2d(torch.tensor(IMAGES), t["W1"], padding=1)), t["W2"], padding=1)
    loss = ((out - torch.tensor(CONV_TARGET)) ** 2).mean()
    loss.backward()
    assert np.isclose(loss.item(), report.loss_value, rtol=1e-12)
    hand = conv_backward(CONV_PARAMS, IMAGES, CONV_TARGET)
    assert all(np.allclose(t[k].grad.numpy(), hand[k], rtol=1e-10, atol=1e-14) for k in hand)


def test_a_conv_with_the_relu_derivative_skipped():
    report = check_gradients(conv_forward, lambda p, x, t: conv_backward(p, x, t, skip_relu=True), CONV_PARAMS,
                             IMAGES, CONV_TARGET)
    assert causes(report) == {"W1": ("missing_derivative", "relu")}, str(report)
    assert "`h = np.maximum(conv(x, p[\"W1\"]), 0)`" in report["W1"].advice


# ----------------------------------------------------------------------------------------------------------
# Dropout with a mask, and an L2 term
# ----------------------------------------------------------------------------------------------------------

KEEP = 0.5
MASK = rng.random((N, H)) < KEEP
MLP_PARAMS = {"W1": rng.standard_normal((D, H)), "b1": rng.standard_normal(H), "W2": rng.standard_normal((H, K)),
              "b2": rng.standard_normal(K)}
LAM = 0.1


def dropout_forward(p, x, y, mask):
    h = np.maximum(x @ p["W1"] + p["b1"], 0)
    dropped = h * mask / KEEP
    s = dropped @ p["W2"] + p["b2"]
    return -np.mean(np.log(softmax_rows(s)[np.arange(len(x)), y]))


def dropout_backward(p, x, y, mask, forget_mask=False):
    z = x @ p["W1"] + p["b1"]
    h = np.maximum(z, 0)
    dropped = h * mask / KEEP
    ds = (softmax_rows(dropped @ p["W2"] + p["b2"]) - np.eye(K)[y]) / len(x)
    ddropped = ds @ p["W2"].T
    dh = ddropped / KEEP if forget_mask else ddropped * mask / KEEP
    dz = dh * (z > 0)
    return {"W1": x.T @ dz, "b1": dz.sum(0), "W2": dropped.T @ ds, "b2": ds.sum(0)}


def test_dropout_with_a_mask(torch):
    report = check_gradients(dropout_forward, dropout_backward, MLP_PARAMS, X, LABELS, MASK)
    assert report.ok, str(report)
    t = tensors(torch, MLP_PARAMS)
    h = torch.relu(torch.tensor(X) @ t["W1"] + t["b1"]) * torch.tensor(MASK) / KEEP
    torch.nn.functional.cross_entropy(h @ t["W2"] + t["b2"], torch.tensor(LABELS)).backward()
    hand = dropout_backward(MLP_PARAMS, X, LABELS, MASK)
    assert all(np.allclose(t[k].grad.numpy(), hand[k], rtol=1e-12, atol=1e-15) for k in hand)
    report = check_gradients(dropout_forward, lambda p, x, y, m: dropout_backward(p, x, y, m, forget_mask=True),
                             MLP_PARAMS, X, LABELS, MASK)
    assert causes(report) == {"W1": ("missing_derivative", "mask"), "b1": ("missing_derivative", "mask")}
    assert "`dropped = h * mask / KEEP`" in report["W1"].advice


def l2_forward(p, x, y):
    s = np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"]
    loss = -np.mean(np.log(softmax_rows(s)[np.arange(len(x)), y]))
    loss = loss + 0.5 * LAM * np.sum(p["W1"] ** 2)
    return loss + 0.5 * LAM * np.sum(p["W2"] ** 2)


def l2_backward(p, x, y, forget=None):
    h = np.tanh(x @ p["W1"] + p["b1"])
    ds = (softmax_rows(h @ p["W2"]) - np.eye(K)[y]) / len(x)
    dz = (ds @ p["W2"].T) * (1 - h ** 2)
    grads = {"W1": x.T @ dz + LAM * p["W1"], "b1": dz.sum(0), "W2": h.T @ ds + LAM * p["W2"]}
    if forget:
        grads[forget] = grads[forget] - LAM * p[forget]
    return grads


def test_an_l2_term(torch):
    params = {k: MLP_PARAMS[k] for k in ("W1", "b1", "W2")}
    assert check_gradients(l2_forward, l2_backward, params, X, LABELS).ok
    t = tensors(torch, params)
    s = torch.tanh(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"]
    loss = torch.nn.functional.cross_entropy(s, torch.tensor(LABELS))
    (loss + 0.5 * LAM * (t["W1"] ** 2).sum() + 0.5 * LAM * (t["W2"] ** 2).sum()).backward()
    hand = l2_backward(params, X, LABELS)
    assert all(np.allclose(t[k].grad.numpy(), hand[k], rtol=1e-12, atol=1e-15) for k in hand)
    report = check_gradients(l2_forward, lambda p, x, y: l2_backward(p, x, y, forget="W2"), params, X, LABELS)
    assert causes(report) == {"W2": ("not_accumulated", None)}, str(report)
    assert "'W2' is used 2 times" in report["W2"].advice and "its use by square" in report["W2"].advice
    assert "`return loss + 0.5 * LAM * np.sum(p[\"W2\"] ** 2)`" in report["W2"].advice


def post_crossentropy(y, out):  # the post's crossentropy, as published
    return -np.sum(y * np.log(out))


def post_training_loss(p, xs, ys):
    """The post's train loop computing its loss: per sample, ``total_loss += single_loss``."""
    net, total_loss = blog_network(p), 0
    for x, y in zip(xs, ys):
        single_loss = post_crossentropy(y.reshape(-1, 1), net.forward(x))
        total_loss += single_loss
    return total_loss


def test_the_blogs_loop_with_total_loss_plus_equals_is_diagnosed_at_its_line():
    r = np.random.default_rng(5)
    params = {**{f"W{i}": r.uniform(-1, 1, (m, n)) for i, (n, m) in enumerate(zip(BLOG_SIZES, BLOG_SIZES[1:]))},
              **{f"b{i}": r.uniform(-1, 1, (m, 1)) for i, m in enumerate(BLOG_SIZES[1:])}}
    corrected = check_gradients(post_training_loss, lambda p, x, y: blog_loop_backward(p, x, y, True), params,
                                BLOG_X, BLOG_Y)
    assert corrected.ok, str(corrected)
    published = check_gradients(post_training_loss, lambda p, x, y: blog_loop_backward(p, x, y, False), params,
                                BLOG_X, BLOG_Y)
    assert causes(published) == {name: ("missing_derivative", "sigmoid") for name in ("W0", "b0", "W1", "b1")}
    assert "network.py line" in published["W0"].advice


def makemore_layers():
    """makemore's MLP in today's nn layers: an embedding table, Linear, LayerNorm, Tanh, Linear."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Embedding(27, 4), nn.Flatten(), nn.Linear(12, 8), nn.LayerNorm(8), nn.Tanh(),
                          nn.Linear(8, 27))
    with_values = {name: rng.standard_normal(p.shape) * 0.5 for name, p in model.named_parameters()}
    model.load_state_dict({name: v.astype(np.float32) for name, v in with_values.items()})
    return model, rng.integers(0, 27, (5, 3)), rng.integers(0, 27, 5)


def layer_forward(m, X, Y):
    return nn.functional.cross_entropy(m(Tensor(X)), Tensor(Y))


def layer_backward(m, X, Y, skip_tanh=False):
    """Backprop Ninja's way: every layer's backward by hand, on the module's own arrays."""
    C, W1, b1 = m[0].weight.data, m[2].weight.data, m[2].bias.data
    gamma, beta, W2, b2 = m[3].weight.data, m[3].bias.data, m[5].weight.data, m[5].bias.data
    n = len(Y)
    x = C[X].reshape(n, -1)
    h = x @ W1.T + b1
    sigma = np.sqrt(h.var(1, keepdims=True) + 1e-5)
    xhat = (h - h.mean(1, keepdims=True)) / sigma
    a = np.tanh(xhat * gamma + beta)
    logits = a @ W2.T + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = p.copy()
    dlogits[np.arange(n), Y] -= 1
    dlogits /= n
    da = dlogits @ W2
    dln = da if skip_tanh else da * (1 - a ** 2)
    dxhat = dln * gamma
    dh = (dxhat - dxhat.mean(1, keepdims=True) - xhat * (dxhat * xhat).mean(1, keepdims=True)) / sigma
    dC = np.zeros_like(C)
    np.add.at(dC, X, (dh @ W1).reshape(X.shape + (-1,)))
    return {"5.weight": dlogits.T @ a, "5.bias": dlogits.sum(0), "3.weight": (dln * xhat).sum(0),
            "3.bias": dln.sum(0), "2.weight": dh.T @ x, "2.bias": dh.sum(0), "0.weight": dC}


def test_a_hand_written_backward_of_todays_layers_is_checked_and_its_mistake_named():
    """check_gradients takes a module built from Embedding, LayerNorm and friends: a correct Backprop Ninja
    backward agrees everywhere, one that skips tanh's derivative is named at the LayerNorm's parameters."""
    model, X, Y = makemore_layers()
    report = check_gradients(layer_forward, layer_backward, model, X, Y)
    assert report.ok, report
    wrong = check_gradients(layer_forward, lambda m, X, Y: layer_backward(m, X, Y, skip_tanh=True), model, X, Y)
    assert not wrong.ok and wrong.first_disagreeing.name == "3.bias"
    assert wrong["3.bias"].cause_kind == "missing_derivative" and wrong["3.bias"].cause_op == "tanh"
    assert wrong["5.weight"].agree
