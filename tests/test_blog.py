"""The study (tinygrad_like.blog): the blog post's network in pure NumPy (its formulas, its published and its
corrected backward, its training loop), its mapping onto the library (from_blog / to_blog, the blog's loss graph,
the blog's SGD update), and its comparison: check_gradients on the blog's network (hand-written vs autograd vs
finite differences, with the computed diagnosis), and one blog update done both ways."""

import json
import re

import numpy as np
import pytest
from helpers import central_differences

from tinygrad_like import Tensor, blog, nn, optim, toposort, train
from tinygrad_like.blog import (
    NN,
    compare_gradients,
    compare_update,
    crossentropy,
    crossentropy_deriv,
    from_blog,
    one_hot,
    sigmoid,
    softmax,
    softmax_deriv,
)
from tinygrad_like.blog.compare import hand_gradients
from tinygrad_like.check import GradientReport

SMALL = [12, 7, 5, 4]  # a network small enough for finite differences entry by entry
SIZES = [784, 64, 32, 10]  # the blog's network
NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"]
MISSING_SIGMOID = "missing sigmoid derivative"


def batch(n, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)


def sample_loss(net, x, label):
    return crossentropy(one_hot([label], net.sizes[-1]).T, net.forward(x))


def backward_and_differences(net, seed=3):
    """Run the net's hand-written backward on one random sample (filling its gradients) and return central
    differences of that sample's loss w.r.t. every weight and bias: (weights, biases). Small nets only."""
    x, labels = batch(1, net.sizes, seed=seed)
    net.forward(x[0])
    net.backward(x[0], labels[0])
    return [[central_differences(lambda: sample_loss(net, x[0], labels[0]), a) for a in arrays]
            for arrays in (net.weights, net.biases)]


def ops_in(t):
    """The names of the operations recorded in t's graph."""
    return {node.op for node in toposort(t) if node.grad_fn is not None}


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
# The post's functions
# ----------------------------------------------------------------------------------------------------------


def test_sigmoid_matches_the_formula_and_never_warns():
    x = np.concatenate([np.linspace(-40, 40, 801), [-1000.0, -745.0, 0.0, 1000.0]])
    with np.errstate(over="ignore"):
        formula = 1 / (1 + np.exp(-x))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # what NumPy would warn about
        s = sigmoid(x)
    np.testing.assert_allclose(s, formula, rtol=1e-15, atol=1e-300)  # at -745 the formula overflows to 0
    assert np.array_equal(s[x >= 0], formula[x >= 0])  # the formula itself where it cannot overflow
    assert s[x == -1000.0][0] == 0.0 and s[x == 1000.0][0] == 1.0


def test_sigmoid_deriv_matches_central_differences():
    x = np.random.default_rng(0).normal(size=20) * 4
    eps = 1e-6
    np.testing.assert_allclose(blog.sigmoid_deriv(x), (sigmoid(x + eps) - sigmoid(x - eps)) / (2 * eps), rtol=1e-8)


def test_softmax_columns_and_large_logits():
    z = np.random.default_rng(1).normal(size=(6, 3))
    s = softmax(z)
    np.testing.assert_allclose(s, np.exp(z) / np.exp(z).sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s.sum(axis=0), 1, rtol=1e-15)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = softmax(np.array([[1000.0], [0.0]]))
    np.testing.assert_array_equal(big, [[1.0], [0.0]])


def test_softmax_deriv_is_the_jacobian():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 1))
    eps = 1e-6
    columns = [(softmax(z + eps * e) - softmax(z - eps * e))[:, 0] / (2 * eps) for e in np.eye(5)[:, :, None]]
    numeric = np.column_stack(columns)
    np.testing.assert_allclose(softmax_deriv(softmax(z)), numeric, atol=1e-10)
    # as the backward uses it: a random upstream row vector times the Jacobian
    g = rng.normal(size=(1, 5))
    np.testing.assert_allclose(g @ softmax_deriv(softmax(z)), g @ numeric, atol=1e-10)


def test_crossentropy_and_its_derivative():
    out = softmax(np.random.default_rng(3).normal(size=(4, 1)))
    y = one_hot([2], 4).T
    assert crossentropy(y, out) == pytest.approx(-np.log(out[2, 0]), rel=1e-15)
    d = crossentropy_deriv(y, out)
    assert d.shape == (1, 4)
    np.testing.assert_array_equal(d, (-y / out).T)
    # an output that underflowed to 0 where the label is not: no nan, no warning
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert crossentropy(y, np.array([[0.0], [0.5], [0.5], [0.0]])) == pytest.approx(np.log(2))
        assert crossentropy_deriv(y, np.array([[0.0], [0.5], [0.5], [0.0]]))[0, 0] == 0


def test_one_hot_and_errors():
    np.testing.assert_array_equal(one_hot(np.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 3\)"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="one_hot: expects integer labels"):
        one_hot(np.array([0.5]), 3)


def test_format_score_reads_as_the_posts_line():
    assert train.format_score(8730, 10000) == "Score: 8730 / 10000 = 87.3%"


# ----------------------------------------------------------------------------------------------------------
# The network in NumPy: forward, backward, update, training
# ----------------------------------------------------------------------------------------------------------


def test_init_shapes_range_and_seed():
    net = NN([784, 64, 32, 10], seed=0)
    assert [w.shape for w in net.weights] == [(64, 784), (32, 64), (10, 32)]
    assert [b.shape for b in net.biases] == [(64, 1), (32, 1), (10, 1)]
    assert all(a.dtype == np.float64 for a in net.weights + net.biases)
    assert all(-1 <= a.min() and a.max() < 1 for a in net.weights + net.biases)
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(3), rel=0.02)  # U(-1, 1)
    assert all(not g.any() for g in net.weight_grads + net.bias_grads)
    assert [g.shape for g in net.weight_grads] == [w.shape for w in net.weights]
    again = NN([784, 64, 32, 10], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights + net.biases, again.weights + again.biases))
    assert not net.corrected and NN([3, 2], corrected=True).corrected


def test_a_network_without_two_positive_layer_sizes_is_refused():
    with pytest.raises(ValueError, match="NN: need at least two positive layer sizes"):
        NN([784])
    with pytest.raises(ValueError, match="NN: need at least two positive layer sizes"):
        NN([784, 0, 10])


def test_forward_is_the_formula():
    net = NN(SMALL, seed=1)
    x = np.random.default_rng(0).random(SMALL[0])
    out = net.forward(x)
    a = x.reshape(-1, 1)
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        a = 1 / (1 + np.exp(-(w @ a + b)))
    z = net.weights[-1] @ a + net.biases[-1]
    expected = np.exp(z) / np.exp(z).sum()
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert [a.shape for a in net.layers] == [(12, 1), (7, 1), (5, 1), (4, 1)]
    # a column, a flat vector and a (12, k) matrix of columns all work; the batch is k samples at once
    np.testing.assert_array_equal(net.forward(x.reshape(-1, 1)), out)
    xs = np.random.default_rng(1).random((12, 3))
    np.testing.assert_allclose(net.forward(xs)[:, 1:2], net.forward(xs[:, 1]), rtol=1e-14)


def test_forward_shape_error_names_the_shapes():
    with pytest.raises(ValueError, match=r"NN.forward: expected a sample of 12 inputs .* got shape \(5, 3\)"):
        NN(SMALL).forward(np.zeros((5, 3)))


def test_corrected_backward_matches_finite_differences():
    net = NN(SMALL, corrected=True, seed=2)
    num_w, num_b = backward_and_differences(net)
    for g, n in zip(net.weight_grads + net.bias_grads, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)


def test_published_backward_is_right_only_for_the_output_layer():
    net = NN(SMALL, corrected=False, seed=2)
    num_w, num_b = backward_and_differences(net)
    np.testing.assert_allclose(net.weight_grads[-1], num_w[-1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(net.bias_grads[-1], num_b[-1], rtol=1e-6, atol=1e-9)
    for i in range(len(SMALL) - 2):  # every hidden layer is wrong, not slightly: by far more than rounding
        assert np.max(np.abs(net.weight_grads[i] - num_w[i])) > 0.1 * np.max(np.abs(num_w[i]))
        assert np.max(np.abs(net.bias_grads[i] - num_b[i])) > 0.1 * np.max(np.abs(num_b[i]))


def test_published_hidden_gradient_is_the_corrected_one_without_the_sigmoid_factor():
    """Where the layer above is the output, the published dL/db equals dL/da: dL/dz divided by a (1 - a)."""
    published, corrected = NN(SMALL, seed=4), NN(SMALL, corrected=True, seed=4)
    x, labels = batch(1, SMALL, seed=5)
    for net in (published, corrected):
        net.forward(x[0])
        net.backward(x[0], labels[0])
    a = corrected.layers[-2]
    np.testing.assert_allclose(corrected.bias_grads[-2], published.bias_grads[-2] * a * (1 - a), rtol=1e-13)


def test_backward_accepts_labels_in_every_form_and_accumulates():
    x, labels = batch(2, SMALL, seed=6)
    nets = [NN(SMALL, corrected=True, seed=7) for _ in range(3)]
    forms = [labels[0], one_hot(labels[:1], 4)[0], one_hot(labels[:1], 4).T]
    for net, y in zip(nets, forms):
        net.backward(x[0], y)  # no forward first: backward runs it
    for net in nets[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(net.weight_grads, nets[0].weight_grads))
    single = [g.copy() for g in nets[0].weight_grads]
    net = nets[0]
    net.forward(x[1])
    net.backward(x[1], labels[1])
    other = NN(SMALL, corrected=True, seed=7)
    other.backward(x[1], labels[1])
    for total, first, second in zip(net.weight_grads, single, other.weight_grads):
        np.testing.assert_allclose(total, first + second, rtol=1e-14)


def test_backward_recomputes_forward_for_another_sample():
    x, labels = batch(2, SMALL, seed=8)
    a, b = NN(SMALL, corrected=True, seed=9), NN(SMALL, corrected=True, seed=9)
    a.forward(x[0])
    a.backward(x[1], labels[1])  # the activations of x[0] must not be used for x[1]
    b.forward(x[1])
    b.backward(x[1], labels[1])
    assert all(np.array_equal(g, h) for g, h in zip(a.weight_grads, b.weight_grads))


def test_backward_refuses_batches_and_labels_of_the_wrong_size():
    net = NN(SMALL)
    with pytest.raises(ValueError, match="NN.backward: one sample at a time, got 3 columns"):
        net.backward(np.zeros((12, 3)), 0)
    with pytest.raises(ValueError, match=r"NN.backward: label must be .* of 4 entries, got shape \(3,\)"):
        net.backward(np.zeros(12), np.zeros(3))


def test_update_applies_the_summed_gradients_and_resets():
    net = NN(SMALL, corrected=True, seed=10)
    x, labels = batch(3, SMALL, seed=11)
    for xi, yi in zip(x, labels):
        net.backward(xi, yi)
    before = [w.copy() for w in net.weights + net.biases]
    grads = [g.copy() for g in net.weight_grads + net.bias_grads]
    net.update(0.5)
    for new, old, g in zip(net.weights + net.biases, before, grads):
        np.testing.assert_allclose(new, old - 0.5 * g, rtol=1e-15)
    assert all(not g.any() for g in net.weight_grads + net.bias_grads)


def test_loss_is_the_summed_crossentropy():
    net = NN(SMALL, seed=12)
    x, labels = batch(7, SMALL, seed=13)
    per_sample = sum(sample_loss(net, xi, yi) for xi, yi in zip(x, labels))
    assert net.loss(x, labels) == pytest.approx(per_sample, rel=1e-13)
    assert net.loss(x, one_hot(labels, 4)) == pytest.approx(per_sample, rel=1e-13)


def test_train_prints_the_posts_lines_and_updates_every_batch(capsys):
    x, labels = batch(5, SMALL, seed=14)
    net = NN(SMALL, corrected=True, seed=15)
    losses = net.train(x, labels, epochs=2, batch_size=2, lr=0.1)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and len(losses) == 3
    assert re.fullmatch(r"Epoch 1, current loss: [0-9.e+-]+", printed[0])
    assert printed[1] == f"Epoch 2, current loss: {losses[1]}"
    assert printed[2] == f"Final loss: {losses[2]}"
    assert losses[2] < losses[0]

    # the same by hand: updates after samples 2 and 4, and the partial batch (sample 5) at the end of the epoch
    manual = NN(SMALL, corrected=True, seed=15)
    for _ in range(2):
        for n, (xi, yi) in enumerate(zip(x, labels), start=1):
            manual.forward(xi)
            manual.backward(xi, yi)
            if n in (2, 4, 5):
                manual.update(0.1)
    for a, b in zip(net.weights + net.biases, manual.weights + manual.biases):
        np.testing.assert_array_equal(a, b)


def test_train_refuses_bad_batch_sizes_labels_and_inputs():
    net = NN(SMALL)
    x, labels = batch(4, SMALL)
    with pytest.raises(ValueError, match="NN.train: batch_size must be at least 1"):
        net.train(x, labels, 1, 0)
    with pytest.raises(ValueError, match=r"NN: expected 4 integer labels or one-hot rows \(4, 4\), got shape \(3,\)"):
        net.train(x, labels[:3], 1, 2)
    with pytest.raises(ValueError, match=r"NN: expected samples of 12 inputs as rows, got shape \(4, 11\)"):
        net.train(x[:, :11], labels, 1, 2)


def test_score_prints_and_returns_accuracy(capsys):
    net = NN(SMALL, seed=16)
    x, labels = batch(10, SMALL, seed=17)
    predicted = net.predict(x)
    accuracy = net.score(x, labels)
    correct = int(np.sum(predicted == labels))
    assert accuracy == correct / 10
    assert capsys.readouterr().out == f"Score: {correct} / 10 = {10.0 * correct:.1f}%\n"


def test_an_empty_set_scores_0_of_0_and_mismatched_labels_are_named(capsys):
    net = NN(SMALL, seed=16)
    assert net.score(np.zeros((0, 12)), np.zeros(0, dtype=int)) == 0.0
    assert capsys.readouterr().out == "Score: 0 / 0\n"
    assert net.loss(np.zeros((0, 12)), np.zeros(0, dtype=int)) == 0.0
    with pytest.raises(ValueError, match=r"NN.score: expected 3 integer labels, got shape \(2,\)"):
        net.score(np.zeros((3, 12)), np.zeros(2, dtype=int))


def test_training_the_blog_network_on_images_raises_no_warning():
    """Saturating inputs (raw 0..255 pixels) must not make exp overflow warn (pytest turns warnings into errors)."""
    rng = np.random.default_rng(18)
    x = rng.integers(0, 256, (20, 784)).astype(np.float64)
    net = NN([784, 64, 32, 10], corrected=True, seed=0)
    with np.errstate(over="raise"):
        net.forward(x[0])
    net.train(x, rng.integers(0, 10, 20), epochs=1, batch_size=10, lr=0.001)


# ----------------------------------------------------------------------------------------------------------
# The network on the library: from_blog, to_blog, blog_loss and the blog's update
# ----------------------------------------------------------------------------------------------------------


def test_from_blog_copies_every_parameter_exactly_in_float64():
    net = NN(SIZES, seed=0)
    mlp = blog.from_blog(net)
    assert mlp.sizes == SIZES and mlp.activation == "sigmoid"
    params = dict(mlp.named_parameters())
    assert list(params) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                            "layers.2.weight", "layers.2.bias"]
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        weight, bias = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
        assert weight.dtype == bias.dtype == np.float64
        assert weight.requires_grad and bias.requires_grad
        np.testing.assert_array_equal(weight.data, w)
        np.testing.assert_array_equal(bias.data, b[:, 0])
        assert not np.shares_memory(weight.data, w)  # a copy: training one leaves the other alone


def test_from_blog_same_outputs():
    net = NN(SIZES, seed=1)
    x, _ = batch(5, seed=2)
    probs = blog.from_blog(net)(Tensor(x)).data
    np.testing.assert_allclose(probs, net.forward(x.T).T, rtol=1e-13)


def test_from_blog_rejects_inconsistent_layers():
    net = NN([6, 4, 3], seed=0)
    net.biases[1] = np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"from_blog: layer 1 has weight \(3, 4\) and bias \(2, 1\)"):
        blog.from_blog(net)
    net.biases.pop()
    with pytest.raises(ValueError, match="from_blog: expected as many weights as biases, got 2 weights and 1"):
        blog.from_blog(net)


def test_to_blog_round_trip_and_float32():
    mlp = nn.MLP([6, 5, 3], seed=3)  # float32 by default
    net = blog.to_blog(mlp, corrected=True)
    assert isinstance(net, NN) and net.corrected and net.sizes == [6, 5, 3]
    assert [b.shape for b in net.biases] == [(5, 1), (3, 1)]
    assert all(a.dtype == np.float64 for a in net.weights + net.biases)
    assert all(not g.any() for g in net.weight_grads)
    back = blog.from_blog(net)
    for (name, p), (_, q) in zip(mlp.named_parameters(), back.named_parameters()):
        np.testing.assert_array_equal(p.data.astype(np.float64), q.data, err_msg=name)
    with pytest.raises(ValueError, match="to_blog: the blog's network has sigmoid layers"):
        blog.to_blog(nn.MLP([6, 3], activation="relu"))


def test_blog_loss_is_the_blogs_graph_and_value():
    net = NN(SIZES, seed=4)
    mlp = blog.from_blog(net)
    x, labels = batch(8, seed=5)
    loss = blog.blog_loss(mlp, x, labels)
    assert loss.shape == () and loss.dtype == np.float64
    assert loss.item() == pytest.approx(net.loss(x, labels), rel=1e-13)
    ops = ops_in(loss)
    assert {"matmul", "add", "sigmoid", "softmax", "log", "mul", "sum"} <= ops
    assert not ops & {"log_softmax", "cross_entropy"}  # not the fused loss: the rules the blog derived
    # one-hot targets and Tensor targets give the same loss
    assert blog.blog_loss(mlp, x, one_hot(labels, 10)).item() == loss.item()
    assert blog.blog_loss(mlp, Tensor(x), Tensor(one_hot(labels, 10))).item() == loss.item()


def test_blog_loss_target_errors():
    mlp = nn.MLP([4, 3], seed=0, dtype=np.float64)
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"blog_loss: labels must be in \[0, 3\), got values from 0 to 3"):
        blog.blog_loss(mlp, x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"blog_loss: targets must be one-hot of shape \(2, 3\) .* got shape \(3,\)"):
        blog.blog_loss(mlp, x, np.array([0, 1, 2]))


@pytest.mark.parametrize("n", [1, 200])
def test_summed_blog_loss_gradient_is_the_corrected_hand_written_sum(n):
    net = NN(SIZES, corrected=True, seed=6)
    mlp = blog.from_blog(net)
    x, labels = batch(n, seed=7)
    blog.blog_loss(mlp, x, labels).backward()
    for (name, p), h in zip(mlp.named_parameters(), hand_gradients(net, x, one_hot(labels, 10))):
        assert np.max(np.abs(p.grad.data - h)) <= 1e-12 * np.max(np.abs(h)), name


@pytest.mark.parametrize("fused", [False, True])
def test_one_blog_update_by_sgd_equals_the_per_sample_loop(fused):
    """200 samples, lr 0.001, summed gradients: the blog's update, done both ways, gives the same weights."""
    net = NN(SIZES, corrected=True, seed=8)
    x, labels = batch(200, seed=9)
    mlp = blog.from_blog(net)
    sgd = optim.SGD(mlp.parameters(), lr=0.001)
    loss = (mlp.logits(Tensor(x)).cross_entropy(labels, reduction="sum") if fused
            else blog.blog_loss(mlp, x, labels))  # the library's fused loss, or the blog's graph
    loss.backward()
    sgd.step()

    for xi, yi in zip(x, labels):
        net.forward(xi)
        net.backward(xi, yi)
    net.update(0.001)

    after = blog.from_blog(net)
    for (name, p), (_, q) in zip(mlp.named_parameters(), after.named_parameters()):
        assert np.max(np.abs(p.data - q.data)) <= 1e-12 * np.max(np.abs(q.data)), name


def test_the_blog_networks_gradients_are_pytorchs(torch):
    net = NN(SIZES, corrected=True, seed=10)
    x, labels = batch(50, seed=11)
    mlp = blog.from_blog(net)
    blog.blog_loss(mlp, x, labels).backward()

    params = [torch.tensor(p.data, requires_grad=True) for p in mlp.parameters()]
    a = torch.tensor(x)
    for i in range(0, len(params), 2):
        z = a @ params[i].T + params[i + 1]
        a = torch.sigmoid(z) if i < len(params) - 2 else torch.softmax(z, dim=1)
    loss = -(torch.tensor(one_hot(labels, 10)) * torch.log(a)).sum()
    loss.backward()
    assert loss.item() == pytest.approx(net.loss(x, labels), rel=1e-13)
    for (name, p), t in zip(mlp.named_parameters(), params):
        scale = t.grad.abs().max().item()
        assert np.max(np.abs(p.grad.data - t.grad.numpy())) <= 1e-12 * scale, name


def test_uniform_init_draws_exactly_the_blogs_weights_for_a_seed():
    net = NN([6, 4, 3], seed=7)
    mlp = train.build_model(blog.blog_recipe(layers=(6, 4, 3), dtype="float64"), seed=7)
    for layer, w, b in zip(mlp.layers, net.weights, net.biases):
        np.testing.assert_array_equal(layer.weight.data, w)
        np.testing.assert_array_equal(layer.bias.data, b.reshape(-1))
    assert train.build_model(blog.blog_recipe(layers=(6, 4, 3)), seed=7).layers[0].weight.dtype == np.float32
    default = train.build_model(blog.modern_recipe(layers=(6, 4, 3)), seed=7)
    assert np.abs(default.layers[0].weight.data).max() <= 1 / np.sqrt(6)


def test_linear_is_fused_and_blog_loss_keeps_the_blogs_graph():
    mlp = nn.MLP([5, 4, 3], seed=1, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).random((6, 5)))
    labels = np.array([0, 2, 1, 1, 0, 2])
    assert mlp(x).grad_fn.inputs[0].op == "linear"
    fused = mlp.logits(x).cross_entropy(labels, reduction="sum")
    unfused = blog.blog_loss(mlp, x, labels)
    np.testing.assert_allclose(fused.data, unfused.data, rtol=1e-12)
    grads = []
    for loss in (fused, unfused):
        mlp.zero_grad()
        loss.backward()
        grads.append([p.grad.data.copy() for p in mlp.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    ops_seen = ops_in(blog.blog_loss(mlp, x, labels))
    assert "linear" not in ops_seen and {"matmul", "add", "sigmoid", "softmax", "log", "mul", "sum"} <= ops_seen


# ----------------------------------------------------------------------------------------------------------
# Comparing the hand-written backward with autograd and finite differences (blog.compare)
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


def test_compare_gradients_refuses_inputs_that_do_not_fit():
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
