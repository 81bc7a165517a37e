"""The blog's network in pure NumPy (tinygrad_like.blog): formulas, shapes, backward, the training loop."""

import re

import numpy as np
import pytest

from tinygrad_like import blog, train
from tinygrad_like.blog import NN, crossentropy, crossentropy_deriv, one_hot, sigmoid, softmax, softmax_deriv

SIZES = [12, 7, 5, 4]


def batch(n, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)


def sample_loss(net, x, label):
    return crossentropy(one_hot([label], net.sizes[-1]).T, net.forward(x))


def numeric_grads(net, x, label, eps=1e-6):
    """Central differences of one sample's loss w.r.t. every weight and bias (small nets only)."""
    grads = []
    for arrays in (net.weights, net.biases):
        out = []
        for a in arrays:
            g = np.zeros_like(a)
            for j in range(a.size):
                old = a.flat[j]
                a.flat[j] = old + eps
                up = sample_loss(net, x, label)
                a.flat[j] = old - eps
                down = sample_loss(net, x, label)
                a.flat[j] = old
                g.flat[j] = (up - down) / (2 * eps)
            out.append(g)
        grads.append(out)
    return grads


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


def test_sigmoid_deriv():
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


def test_format_score():
    assert train.format_score(8730, 10000) == "Score: 8730 / 10000 = 87.3%"


# ----------------------------------------------------------------------------------------------------------
# NN
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


def test_init_errors():
    with pytest.raises(ValueError, match="NN: need at least two positive layer sizes"):
        NN([784])
    with pytest.raises(ValueError, match="NN: need at least two positive layer sizes"):
        NN([784, 0, 10])


def test_forward_is_the_formula():
    net = NN(SIZES, seed=1)
    x = np.random.default_rng(0).random(SIZES[0])
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
        NN(SIZES).forward(np.zeros((5, 3)))


def test_corrected_backward_matches_finite_differences():
    net = NN(SIZES, corrected=True, seed=2)
    x, labels = batch(1, seed=3)
    net.forward(x[0])
    net.backward(x[0], labels[0])
    num_w, num_b = numeric_grads(net, x[0], labels[0])
    for g, n in zip(net.weight_grads + net.bias_grads, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)


def test_published_backward_is_right_only_for_the_output_layer():
    net = NN(SIZES, corrected=False, seed=2)
    x, labels = batch(1, seed=3)
    net.forward(x[0])
    net.backward(x[0], labels[0])
    num_w, num_b = numeric_grads(net, x[0], labels[0])
    np.testing.assert_allclose(net.weight_grads[-1], num_w[-1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(net.bias_grads[-1], num_b[-1], rtol=1e-6, atol=1e-9)
    for i in range(len(SIZES) - 2):  # every hidden layer is wrong, not slightly: by far more than rounding
        assert np.max(np.abs(net.weight_grads[i] - num_w[i])) > 0.1 * np.max(np.abs(num_w[i]))
        assert np.max(np.abs(net.bias_grads[i] - num_b[i])) > 0.1 * np.max(np.abs(num_b[i]))


def test_published_hidden_gradient_is_the_corrected_one_without_the_sigmoid_factor():
    """Where the layer above is the output, the published dL/db equals dL/da: dL/dz divided by a (1 - a)."""
    published, corrected = NN(SIZES, seed=4), NN(SIZES, corrected=True, seed=4)
    x, labels = batch(1, seed=5)
    for net in (published, corrected):
        net.forward(x[0])
        net.backward(x[0], labels[0])
    a = corrected.layers[-2]
    np.testing.assert_allclose(corrected.bias_grads[-2], published.bias_grads[-2] * a * (1 - a), rtol=1e-13)


def test_backward_accepts_labels_in_every_form_and_accumulates():
    x, labels = batch(2, seed=6)
    nets = [NN(SIZES, corrected=True, seed=7) for _ in range(3)]
    forms = [labels[0], one_hot(labels[:1], 4)[0], one_hot(labels[:1], 4).T]
    for net, y in zip(nets, forms):
        net.backward(x[0], y)  # no forward first: backward runs it
    for net in nets[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(net.weight_grads, nets[0].weight_grads))
    single = [g.copy() for g in nets[0].weight_grads]
    net = nets[0]
    net.forward(x[1])
    net.backward(x[1], labels[1])
    other = NN(SIZES, corrected=True, seed=7)
    other.backward(x[1], labels[1])
    for total, first, second in zip(net.weight_grads, single, other.weight_grads):
        np.testing.assert_allclose(total, first + second, rtol=1e-14)


def test_backward_recomputes_forward_for_another_sample():
    x, labels = batch(2, seed=8)
    a, b = NN(SIZES, corrected=True, seed=9), NN(SIZES, corrected=True, seed=9)
    a.forward(x[0])
    a.backward(x[1], labels[1])  # the activations of x[0] must not be used for x[1]
    b.forward(x[1])
    b.backward(x[1], labels[1])
    assert all(np.array_equal(g, h) for g, h in zip(a.weight_grads, b.weight_grads))


def test_backward_errors():
    net = NN(SIZES)
    with pytest.raises(ValueError, match="NN.backward: one sample at a time, got 3 columns"):
        net.backward(np.zeros((12, 3)), 0)
    with pytest.raises(ValueError, match=r"NN.backward: label must be .* of 4 entries, got shape \(3,\)"):
        net.backward(np.zeros(12), np.zeros(3))


def test_update_applies_the_summed_gradients_and_resets():
    net = NN(SIZES, corrected=True, seed=10)
    x, labels = batch(3, seed=11)
    for xi, yi in zip(x, labels):
        net.backward(xi, yi)
    before = [w.copy() for w in net.weights + net.biases]
    grads = [g.copy() for g in net.weight_grads + net.bias_grads]
    net.update(0.5)
    for new, old, g in zip(net.weights + net.biases, before, grads):
        np.testing.assert_allclose(new, old - 0.5 * g, rtol=1e-15)
    assert all(not g.any() for g in net.weight_grads + net.bias_grads)


def test_loss_is_the_summed_crossentropy():
    net = NN(SIZES, seed=12)
    x, labels = batch(7, seed=13)
    per_sample = sum(sample_loss(net, xi, yi) for xi, yi in zip(x, labels))
    assert net.loss(x, labels) == pytest.approx(per_sample, rel=1e-13)
    assert net.loss(x, one_hot(labels, 4)) == pytest.approx(per_sample, rel=1e-13)


def test_train_prints_the_posts_lines_and_updates_every_batch(capsys):
    x, labels = batch(5, seed=14)
    net = NN(SIZES, corrected=True, seed=15)
    losses = net.train(x, labels, epochs=2, batch_size=2, lr=0.1)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and len(losses) == 3
    assert re.fullmatch(r"Epoch 1, current loss: [0-9.e+-]+", printed[0])
    assert printed[1] == f"Epoch 2, current loss: {losses[1]}"
    assert printed[2] == f"Final loss: {losses[2]}"
    assert losses[2] < losses[0]

    # the same by hand: updates after samples 2 and 4, and the partial batch (sample 5) at the end of the epoch
    manual = NN(SIZES, corrected=True, seed=15)
    for _ in range(2):
        for n, (xi, yi) in enumerate(zip(x, labels), start=1):
            manual.forward(xi)
            manual.backward(xi, yi)
            if n in (2, 4, 5):
                manual.update(0.1)
    for a, b in zip(net.weights + net.biases, manual.weights + manual.biases):
        np.testing.assert_array_equal(a, b)


def test_train_errors():
    net = NN(SIZES)
    x, labels = batch(4)
    with pytest.raises(ValueError, match="NN.train: batch_size must be at least 1"):
        net.train(x, labels, 1, 0)
    with pytest.raises(ValueError, match=r"NN: expected 4 integer labels or one-hot rows \(4, 4\), got shape \(3,\)"):
        net.train(x, labels[:3], 1, 2)
    with pytest.raises(ValueError, match=r"NN: expected samples of 12 inputs as rows, got shape \(4, 11\)"):
        net.train(x[:, :11], labels, 1, 2)


def test_score_prints_and_returns_accuracy(capsys):
    net = NN(SIZES, seed=16)
    x, labels = batch(10, seed=17)
    predicted = net.predict(x)
    accuracy = net.score(x, labels)
    correct = int(np.sum(predicted == labels))
    assert accuracy == correct / 10
    assert capsys.readouterr().out == f"Score: {correct} / 10 = {10.0 * correct:.1f}%\n"


def test_an_empty_set_scores_0_of_0_and_mismatched_labels_are_named(capsys):
    net = NN(SIZES, seed=16)
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
