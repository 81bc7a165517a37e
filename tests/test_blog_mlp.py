"""The blog's network on the library: from_blog / to_blog, the blog's loss graph, and the blog's SGD update."""

import numpy as np
import pytest

from tinygrad_like import Tensor, blog, nn, optim, toposort, train
from tinygrad_like.blog import NN, one_hot
from tinygrad_like.blog.compare import hand_gradients

SIZES = [784, 64, 32, 10]


def batch(n, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)


def ops_in(t):
    """The names of the operations recorded in t's graph."""
    return {node.op for node in toposort(t) if node.grad_fn is not None}


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


def test_torch_oracle_for_the_blog_networks_gradients():
    torch = pytest.importorskip("torch")
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


