"""tinygrad_like.train: the batched blog recipe against the blog's per-sample loop, the batched
hand-written backward, the modern recipe's input standardisation, evaluation and reproducibility.

All on small synthetic data (a few hundred samples): never the full dataset.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from helpers import learnable_digits

from tinygrad_like import Tensor, blog
from tinygrad_like import train as T
from tinygrad_like.nn import MLP


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def blog_params(net: blog.NN) -> list[np.ndarray]:
    return [*net.weights, *[b.reshape(-1) for b in net.biases]]


def mlp_params(mlp: MLP) -> list[np.ndarray]:
    return [layer.weight.data for layer in mlp.layers] + [layer.bias.data for layer in mlp.layers]


def run_blog_loop(net: blog.NN, x: np.ndarray, y: np.ndarray, recipe: T.Recipe) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the blog's loop prints its losses
        net.train(x, y, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr)


def test_batched_blog_epoch_equals_the_blogs_per_sample_loop(small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=1, dtype="float64")
    mlp = T.build_model(recipe, seed=3)
    net = blog.to_blog(mlp, corrected=True)  # the same starting point, float64
    blog.train(mlp, x, y, recipe, log=None, progress=False)
    run_blog_loop(net, x, y, recipe)
    for ours, theirs in zip(mlp_params(mlp), blog_params(net), strict=True):
        assert max_rel_diff(ours, theirs) < 1e-10
    assert max_rel_diff(mlp_params(mlp)[0], T.build_model(recipe, seed=3).layers[0].weight.data) > 1e-3


@pytest.mark.parametrize("backend", ["manual", "published"])
def test_batched_manual_backward_equals_per_sample_loop(backend: str,
                                                       small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=1, dtype="float64")
    batched, per_sample = T.build_model(recipe, seed=5), T.build_model(recipe, seed=5)
    blog.train(batched, x, y, recipe, backend=backend, log=None, progress=False)
    blog.train(per_sample, x, y, recipe, backend=backend, per_sample=True, log=None, progress=False)
    for a, b in zip(mlp_params(batched), mlp_params(per_sample), strict=True):
        assert max_rel_diff(a, b) < 1e-10


def test_manual_gradients_match_blog_backward_and_published_differs(
        small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_digits
    x, onehot = x[:7], np.eye(10)[y[:7]]
    for corrected in (True, False):
        net = blog.NN([784, 64, 32, 10], corrected=corrected, seed=1)
        weight_grads, bias_grads = blog.manual_gradients(net, x, onehot)
        net.zero_grad()
        for xi, yi in zip(x, onehot):
            net.forward(xi)
            net.backward(xi, yi)
        for ours, theirs in zip(weight_grads + bias_grads, net.weight_grads + net.bias_grads, strict=True):
            assert ours.shape == theirs.shape
            assert max_rel_diff(ours, theirs) < 1e-12
    corrected = blog.manual_gradients(blog.NN([784, 64, 32, 10], corrected=True, seed=1), x, onehot)[0]
    published = blog.manual_gradients(blog.NN([784, 64, 32, 10], corrected=False, seed=1), x, onehot)[0]
    assert np.allclose(corrected[-1], published[-1])  # the output layer is right in both
    assert not np.allclose(corrected[0], published[0])  # the hidden layers are not


def test_blog_recipe_learns_and_prints_the_blogs_lines(small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_digits
    lines: list[str] = []
    recipe = blog.blog_recipe()
    result = blog.train(T.build_model(recipe, seed=0), x, y, recipe, test=(x[:50], y[:50]), log=lines.append,
                     progress=False)
    assert [line.split(":")[0] for line in lines[:4]] == [f"Epoch {n}, current loss" for n in range(1, 5)]
    assert lines[4].startswith("Final loss: ")
    assert lines[5] == f"Score: {result.train_correct} / 300 = {100 * result.train_accuracy:.1f}%  (train)"
    assert lines[6].startswith("Score: ") and lines[6].endswith("(test)")
    assert result.history[-1].loss < 0.8 * result.initial_loss  # 8 small steps: it learns, slowly
    assert result.train_accuracy > 0.25  # chance is 0.1
    assert [h.epoch for h in result.history] == [1, 2, 3, 4]


def test_modern_recipe_is_reproducible_and_its_standardisation_is_folded(
        small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_digits
    recipe = blog.modern_recipe(epochs=2, dtype="float64")
    results = [blog.train(T.build_model(recipe, seed=7), x, y, recipe, test=(x[:60], y[:60]), seed=7, log=None,
                       progress=False) for _ in range(2)]
    first, second = (r.to_dict() for r in results)
    for summary in (first, second):
        summary.pop("seconds")
        for h in summary["history"]:
            h.pop("seconds")
    assert first == second
    # The scores are those of the model as returned: it takes pixel / 255 (no separate standardisation).
    loss, correct = T.evaluate(results[0].model, x, y, "mean")
    assert correct == results[0].train_correct
    assert loss == pytest.approx(results[0].history[-1].loss, rel=1e-12)
    other = blog.train(T.build_model(recipe, seed=7), x, y, recipe, seed=8, log=None, progress=False)
    assert other.history[-1].loss != results[0].history[-1].loss  # another shuffling order


def test_fold_standardization_is_exact() -> None:
    rng = np.random.default_rng(0)
    mlp = MLP([784, 8, 10], activation="relu", seed=0, dtype=np.float64)
    x = rng.random((5, 784))
    shift, scale = 0.3, 0.4
    before = mlp.logits(Tensor((x - shift) / scale)).data
    T.fold_standardization(mlp, shift, scale)
    np.testing.assert_allclose(mlp.logits(Tensor(x)).data, before, rtol=1e-12, atol=1e-12)


def test_evaluate_counts_and_sums() -> None:
    images, labels = learnable_digits(50, seed=2)
    x, y = T.prepare(images, labels, dtype=np.float64)
    mlp = MLP(seed=0, dtype=np.float64)
    logits = mlp.logits(Tensor(x)).data
    expected = -np.sum(logits[np.arange(50), y] - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1))
                       - logits.max(1))
    loss, correct = T.evaluate(mlp, x, y, chunk=7)
    assert correct == int(np.sum(logits.argmax(1) == y))
    assert loss == pytest.approx(expected, rel=1e-10)
    assert T.evaluate(mlp, x, y, "mean")[0] == pytest.approx(expected / 50, rel=1e-10)


def test_prepare_scales_like_the_blog() -> None:
    images, labels = learnable_digits(4)
    x, y = T.prepare(images, labels)
    assert x.shape == (4, 784) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, (images.reshape(4, -1) / 255).astype(np.float32))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        T.prepare(images, labels[:3])


def test_a_recipe_needs_its_layers_and_defaults_to_the_common_frameworks_settings() -> None:
    recipe = T.Recipe("mine", (4, 8, 3))
    assert (recipe.activation, recipe.init, recipe.reduction, recipe.optimizer, recipe.lr, recipe.schedule,
            recipe.epochs, recipe.batch_size, recipe.shuffle, recipe.dtype) == (
        "relu", "default", "mean", "adam", 1e-3, "constant", 1, 32, True, "float32")
    with pytest.raises(TypeError, match="layers"):
        T.Recipe("mine")  # no default network
    with pytest.raises(ValueError, match="layers must be at least two positive sizes"):
        T.Recipe("mine", (4,))


def test_recipes_have_the_blogs_settings_and_refuse_bad_ones(small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    blog_r, modern_r = blog.blog_recipe(), blog.modern_recipe()
    assert (blog_r.layers, blog_r.activation, blog_r.init, blog_r.reduction, blog_r.lr, blog_r.batch_size,
            blog_r.epochs, blog_r.shuffle) == ((784, 64, 32, 10), "sigmoid", "uniform", "sum", 0.001, 200, 4, False)
    assert modern_r.layers == blog_r.layers and modern_r.shuffle
    assert blog.blog_recipe(epochs=2).epochs == 2
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        blog.blog_recipe(epochs=0)
    with pytest.raises(ValueError, match="optimizer must be"):
        blog.blog_recipe(optimizer="lbfgs")
    x, y = small_digits
    model = T.build_model(modern_r, seed=0)
    with pytest.raises(ValueError, match="hand-written backward"):
        blog.train(model, x, y, modern_r, backend="manual", log=None)
    with pytest.raises(ValueError, match="backend must be one of"):
        blog.train(model, x, y, modern_r, backend="torch", log=None)
    with pytest.raises(ValueError, match="per_sample is for"):
        blog.train(model, x, y, modern_r, per_sample=True, log=None)
    with pytest.raises(ValueError, match=r"expected rows of 784 inputs .* got shape \(300, 28, 28\)"):
        blog.train(model, x.reshape(300, 28, 28), y, modern_r, log=None)
    with pytest.raises(ValueError, match="test: 300 samples and 299 labels"):
        blog.train(model, x, y, modern_r, test=(x, y[1:]), log=None)


# ----------------------------------------------------------------------------------------------------------
# Gradient flow
# ----------------------------------------------------------------------------------------------------------


def test_history_records_the_gradient_flow_of_the_steps_applied(small_digits):
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=2, dtype="float64", batch_size=300)  # one step per epoch: same first step
    runs = {backend: blog.train(T.build_model(recipe, seed=3), x, y, recipe, backend=backend, log=None,
                                progress=False) for backend in ("autograd", "manual", "published")}
    names = [name for name, _ in runs["autograd"].model.named_parameters()]
    for result in runs.values():
        for epoch in result.history:
            assert list(epoch.grad_norms) == names and all(v > 0 for v in epoch.grad_norms.values())
            assert set(epoch.update_ratios) == set(names) and all(v > 0 for v in epoch.update_ratios.values())
    first = {backend: r.history[0].grad_norms for backend, r in runs.items()}
    for name in names:  # the corrected hand-written backward applies autograd's gradients
        assert first["manual"][name] == pytest.approx(first["autograd"][name], rel=1e-9)
    assert first["published"]["layers.2.weight"] == pytest.approx(first["autograd"]["layers.2.weight"], rel=1e-9)
    assert first["published"]["layers.0.weight"] > 2 * first["autograd"]["layers.0.weight"]  # missing s(1 - s)


def test_the_first_epochs_mean_gradient_norm_is_the_mean_of_the_steps_norms(small_digits):
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=1, dtype="float64", batch_size=150)
    model = T.build_model(recipe, seed=4)
    copy = T.build_model(recipe, seed=4)
    result = T.train(model, x, y, recipe, log=None, progress=False)
    norms = []
    for start in (0, 150):  # the same two steps by hand
        copy.zero_grad()
        copy.logits(Tensor(x[start:start + 150])).cross_entropy(y[start:start + 150], reduction="sum").backward()
        norms.append(np.linalg.norm(copy.layers[1].weight.grad.data))
        for p in copy.parameters():
            p.data -= recipe.lr * p.grad.data
    assert result.history[0].grad_norms["layers.1.weight"] == pytest.approx(np.mean(norms), rel=1e-12)
