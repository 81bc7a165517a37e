"""doctor.diagnose: each finding kind on a network engineered to have it, none on healthy networks (PyTorch's default
init, standardised inputs), the blog's network diagnosed as saturated with a vanishing first-layer gradient, the
printed diagnosis, and ``tinygrad-like train --doctor`` / ``--record`` on small generated data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import learnable_digits, write_idx_dataset
from test_training_recorder import run_data

from tinygrad_like import Tensor, blog, cli, doctor, nn, optim, train, viz
from tinygrad_like.nn import functional as F

Loop = Callable[[nn.Module, optim.Optimizer, Tensor], None]


def teacher_data(n: int = 128, features: int = 20, classes: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Standardised inputs and the labels a random linear teacher gives them: learnable."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    y = np.argmax(x @ rng.standard_normal((features, classes)), axis=1)
    return Tensor(x, dtype=np.float32), Tensor(y)


def mlp(*sizes: int, activation: type[nn.Module] = nn.ReLU, gain: float | None = None, seed: int = 0) -> nn.Module:
    """Linear layers with ``activation`` modules between them: PyTorch's default init, or weights
    N(0, gain^2 / fan_in) and zero biases when ``gain`` is given."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layer = nn.Linear(n_in, n_out)
        if gain is not None:
            layer.copy_(rng.normal(0, gain / np.sqrt(n_in), (n_out, n_in)), np.zeros(n_out))
        layers += [layer, activation()]
    return nn.Sequential(*layers[:-1])


def paths(model: nn.Module) -> list[str]:
    """The module paths in definition order, the model itself left out."""
    return [path for path, _ in model.named_modules()][1:]


def usual_step(model: nn.Module, opt: optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad()
    loss.backward()


def recorded_run(model: nn.Module, opt: optim.Optimizer, steps: int = 40, data: tuple[Tensor, Tensor] | None = None,
                 before_step: Loop = usual_step, step: bool = True) -> doctor.Diagnosis:
    """Train ``model`` with ``opt`` for ``steps`` full-batch steps with a recorder, and diagnose the run."""
    x, y = data or teacher_data()
    with viz.TrainingRecorder(model) as rec:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            before_step(model, opt, loss)
            rec.record(loss)
            if step:
                opt.step()
    return doctor.diagnose(rec)


def only(diagnosis: doctor.Diagnosis, kind: str) -> list[doctor.Finding]:
    found = [f for f in diagnosis.findings if f.kind == kind]
    assert found, f"no {kind} in\n{diagnosis}"
    for f in found:
        assert f.advice and (f.threshold is None or f.value != f.threshold)
    return found


# ----------------------------------------------------------------------------------------------------------
# Healthy networks: nothing to report
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_optimizer", [lambda p: optim.Adam(p, lr=1e-3), lambda p: optim.SGD(p, lr=0.1)],
                         ids=["Adam 1e-3", "SGD 0.1"])
@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
def test_a_healthy_network_has_no_finding(make_optimizer: Any, activation: type[nn.Module]) -> None:
    model = mlp(20, 32, 16, 4, activation=activation)
    diagnosis = recorded_run(model, make_optimizer(model.parameters()), steps=60)
    assert diagnosis.ok, str(diagnosis)
    assert str(diagnosis) == "Diagnosis of 60 recorded steps: nothing wrong found"


def test_one_pass_of_a_healthy_network_has_no_finding() -> None:
    assert doctor.diagnose(mlp(20, 32, 16, 4), *teacher_data()).ok


# ----------------------------------------------------------------------------------------------------------
# Each kind where it is known to occur
# ----------------------------------------------------------------------------------------------------------


def test_dead_relus_from_a_very_negative_bias() -> None:
    model = mlp(20, 32, 4)
    model_paths = paths(model)
    first = dict(model.named_modules())[model_paths[0]]
    first.bias.data[:] = -20.0  # every pre-activation negative: the ReLU after it is 0 for every sample
    for diagnosis in (doctor.diagnose(model, *teacher_data()),
                      recorded_run(model, optim.SGD(model.parameters(), lr=0.1), steps=10)):
        (finding,) = only(diagnosis, "dead_relu")
        assert finding.where == model_paths[1] and finding.value == 1.0 and finding.threshold == doctor.DEAD
        assert "LeakyReLU" in finding.advice


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid])
def test_saturated_units_from_large_weights(activation: type[nn.Module]) -> None:
    model = mlp(20, 32, 4, activation=activation, gain=8.0)
    (finding,) = only(doctor.diagnose(model, *teacher_data()), "saturated")
    assert finding.where == paths(model)[1] and finding.value > 0.4 and finding.step == 0
    assert "xavier_uniform_" in finding.advice


def test_vanishing_gradient_in_a_deep_sigmoid_network() -> None:
    model = mlp(20, *[32] * 6, 4, activation=nn.Sigmoid)
    found = only(doctor.diagnose(model, *teacher_data()), "vanishing_gradient")
    linears = paths(model)[::2]
    assert found[0].where == linears[0] and found[0].value < 1e-3  # the first layer is the worst: furthest back
    assert [f.where for f in found] == linears[:len(found)] and len(found) >= 3
    assert not [f for f in doctor.diagnose(model, *teacher_data()).findings if f.kind == "exploding_gradient"]


def test_exploding_gradient_in_a_deep_tanh_network_with_a_large_init_gain() -> None:
    model = mlp(20, *[64] * 12, 4, activation=nn.Tanh, gain=5.0)
    found = only(doctor.diagnose(model, *teacher_data()), "exploding_gradient")
    assert found[0].where == paths(model)[0] and found[0].value > 3 * doctor.LAYER_RATIO and len(found) >= 3
    assert "clip_grad_norm_" in found[0].advice


def test_exploding_gradient_as_a_diverging_run_blows_up() -> None:
    """Full-batch SGD on least squares with a learning rate past 2 / (largest curvature): every step multiplies
    the error, and the gradient grows geometrically long before it overflows."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((64, 8)) * 3)
    target = Tensor(rng.standard_normal((64, 1)))
    model = nn.Linear(8, 1)
    opt = optim.SGD(model.parameters(), lr=0.5)
    with viz.TrainingRecorder(model) as rec:
        for _ in range(12):
            loss = F.mse_loss(model(x), target)
            opt.zero_grad()
            loss.backward()
            rec.record(loss)
            opt.step()
    found = only(doctor.diagnose(rec), "exploding_gradient")
    assert found[0].where == "" and found[0].threshold == doctor.SPIKE and 3 <= found[0].step < 12
    assert np.isfinite(rec.steps[-1].loss)


def test_updates_too_large_and_too_small_against_karpathys_1e_3() -> None:
    large = mlp(20, 32, 16, 4)
    (finding, *_) = only(recorded_run(large, optim.Adam(large.parameters(), lr=0.3), steps=20), "update_too_large")
    assert finding.value > doctor.UPDATE_HIGH and "lower the learning rate" in finding.advice
    small = mlp(20, 32, 16, 4)
    found = only(recorded_run(small, optim.SGD(small.parameters(), lr=1e-6), steps=10), "update_too_small")
    assert [f.where for f in found] == paths(small)[::2]
    assert all(f.value < doctor.UPDATE_LOW for f in found) and "raise the learning rate" in found[0].advice


def test_stale_gradients_when_zero_grad_is_forgotten() -> None:
    model = mlp(20, 32, 16, 4)
    diagnosis = recorded_run(model, optim.SGD(model.parameters(), lr=0.01), steps=8,
                             before_step=lambda model, opt, loss: loss.backward())  # no zero_grad
    found = only(diagnosis, "stale_gradients")
    assert [f.where for f in found] == paths(model)[::2]
    assert found[0].value == 7 / 8 and found[0].step == 1 and "zero_grad()" in found[0].advice


def test_not_finite_names_the_first_module_that_made_a_nan() -> None:
    model = mlp(20, 32, 16, 4)
    x, y = teacher_data()
    x.data[3, 5] = np.nan  # one bad sample in the data
    (finding,) = only(doctor.diagnose(model, x, y), "not_finite")
    assert finding.where == paths(model)[0] and np.isnan(finding.value) and finding.step == 0
    assert len(doctor.diagnose(model, x, y).findings) == 1  # the rest says nothing more


def test_loss_not_decreasing_when_the_step_is_forgotten() -> None:
    model = mlp(20, 32, 16, 4)
    diagnosis = recorded_run(model, optim.SGD(model.parameters(), lr=0.1), steps=12, step=False)
    (finding,) = only(diagnosis, "loss_not_decreasing")
    assert finding.where == "" and finding.value == 0.0 and "opt.step()" in finding.advice
    assert {f.kind for f in diagnosis.findings} == {"loss_not_decreasing", "update_too_small"}


# ----------------------------------------------------------------------------------------------------------
# The blog's network, and the diagnosis itself
# ----------------------------------------------------------------------------------------------------------


def test_the_blogs_network_is_saturated_with_a_vanishing_first_layer_gradient() -> None:
    x, labels = train.prepare(*learnable_digits(200))
    net = blog.NN([784, 64, 32, 10], seed=0)  # the blog's class: U(-1, 1) weights, sigmoid
    diagnosis = doctor.diagnose(blog.from_blog(net), x, labels)
    assert [(f.kind, f.where) for f in diagnosis.findings] == [
        ("saturated", "layers.0"), ("saturated", "layers.1"), ("vanishing_gradient", "layers.0")]
    assert diagnosis.findings[0].value > 0.3


def test_the_blog_recipe_trained_is_diagnosed_so_and_the_modern_one_is_healthy() -> None:
    x, y = train.prepare(*learnable_digits(800))
    kinds = {}
    for name, recipe in (("blog", blog.blog_recipe(epochs=2)), ("modern", blog.modern_recipe(epochs=2))):
        model = train.build_model(recipe, seed=0)
        with viz.TrainingRecorder(model) as rec:
            train.train(model, x, y, recipe, seed=0, progress=False, log=None, on_backward=rec.record)
        kinds[name] = [(f.kind, f.where) for f in doctor.diagnose(rec).findings]
    assert ("saturated", "layers.0") in kinds["blog"] and ("vanishing_gradient", "layers.0") in kinds["blog"]
    assert kinds["modern"] == []


def test_one_pass_leaves_the_gradients_as_they_were_and_without_a_target_judges_activations_only() -> None:
    model = mlp(20, 32, 4, activation=nn.Sigmoid, gain=8.0)
    x, y = teacher_data()
    F.cross_entropy(model(x), y).backward()
    before = [p.grad.numpy().copy() for p in model.parameters()]
    assert {f.kind for f in doctor.diagnose(model, x, y).findings} >= {"saturated"}
    for p, g in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.grad.numpy(), g)
    alone = doctor.diagnose(model, x)
    assert {f.kind for f in alone.findings} == {"saturated"}
    custom = doctor.diagnose(model, x, y, loss_fn=lambda out, t: F.cross_entropy(out, t, reduction="sum"))
    assert [f.kind for f in custom.findings] == [f.kind for f in doctor.diagnose(model, x, y).findings]


def test_one_pass_leaves_batch_normalisations_running_statistics_as_they_were() -> None:
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    x, y = teacher_data()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    doctor.diagnose(model, x, y)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_the_diagnosis_prints_each_finding_with_its_place_numbers_and_fix() -> None:
    model = mlp(20, 32, 4, activation=nn.Tanh, gain=8.0)
    diagnosis = doctor.diagnose(model, *teacher_data())
    text = str(diagnosis)
    assert not diagnosis.ok and text.startswith("Diagnosis of 1 recorded step: ")
    finding = diagnosis.findings[0]
    where = paths(model)[1]
    assert f"- saturated in {where} at step 0: share of tanh outputs beyond +-0.99 = " in text
    assert "(threshold 0.1)\n    fix: the inputs of this tanh are too large" in text
    assert str(finding) in text and all(len(line) <= 110 for line in text.splitlines())


def test_bad_calls_are_refused() -> None:
    model = mlp(2, 2)
    with pytest.raises(TypeError, match="expected an nn.Module or a viz.TrainingRecorder, got list"):
        doctor.diagnose([model])
    with pytest.raises(TypeError, match="give an input batch x"):
        doctor.diagnose(model)
    with viz.TrainingRecorder(model) as rec:
        with pytest.raises(ValueError, match="the recorder has no steps"):
            doctor.diagnose(rec)
        with pytest.raises(TypeError, match="x, target and loss_fn are for diagnose"):
            doctor.diagnose(rec, Tensor(np.ones((1, 2))))


# ----------------------------------------------------------------------------------------------------------
# train's hook, and tinygrad-like train --doctor / --record
# ----------------------------------------------------------------------------------------------------------


def test_train_calls_on_backward_after_each_backward_and_before_the_step() -> None:
    x, y = train.prepare(*learnable_digits(64))
    recipe = blog.modern_recipe(epochs=1, batch_size=32)
    model = train.build_model(recipe, seed=0)
    out = model.layers[-1]
    seen = []

    def hook(loss: Tensor) -> None:
        seen.append((loss.item(), out.weight.grad.numpy().copy(), out.weight.numpy().copy()))

    train.train(model, x, y, recipe, seed=0, progress=False, log=None, on_backward=hook)
    assert len(seen) == 2 and seen[0][0] > 0
    assert not np.array_equal(seen[0][2], seen[1][2])  # a step was taken between the two calls
    assert not np.array_equal(seen[1][2], out.weight.numpy())  # and after the last one
    with pytest.raises(ValueError, match="on_backward is called by autograd's stepper"):
        train.train(model, x, y, recipe, stepper=object(), on_backward=hook)



@pytest.fixture
def dataset(tmp_path: Path, offline_data: Path) -> Path:
    """A few hundred learnable samples as the four gzipped IDX files; nothing else can be found or downloaded."""
    return write_idx_dataset(tmp_path / "data", (learnable_digits(400, seed=0), learnable_digits(80, seed=1)))


def run(*args: str) -> int:
    return cli.main(["train", "--no-progress", *args])


def test_train_doctor_prints_the_diagnosis_after_training(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--data-dir", str(dataset), "--seed", "0", "--epochs", "2", "--doctor") == 0
    printed = capsys.readouterr().out
    assert printed.index("Score: ") < printed.index("Diagnosis of 4 recorded steps: ")
    assert "- saturated in layers.0" in printed and "- vanishing_gradient in layers.0" in printed
    assert run("--data-dir", str(dataset), "--seed", "0", "--recipe", "modern", "--epochs", "2", "--doctor") == 0
    assert "Diagnosis of 14 recorded steps: nothing wrong found" in capsys.readouterr().out


def test_train_record_writes_the_runs_page(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "run.html"
    assert run("--data-dir", str(dataset), "--seed", "1", "--recipe", "modern", "--epochs", "3",
               "--record", str(page)) == 0
    assert f"Wrote the training view to {page}" in capsys.readouterr().out
    data = run_data(page.read_text(encoding="utf-8"))
    assert data["steps"] == list(range(21)) and data["calls"] == 21
    assert [m["path"] for m in data["modules"]] == ["layers.0", "layers.1", "layers.2"]
    assert [m["activation"] for m in data["modules"]] == ["relu", "relu", None]
    assert data["loss"][-1] < data["loss"][0]


@pytest.mark.parametrize(("args", "message"), [
    (["--record", "run.svg"], "--record run.svg: unknown file type .svg; use one of .html"),
    (["--record", "missing/run.html"], "the directory missing does not exist"),
    (["--doctor", "--backend", "manual"], "--doctor and --record watch autograd's graph; --backend manual"),
    (["--record", "same.html", "--json", "same.html"], "the same file as --json"),
])
def test_unusable_doctor_and_record_options_exit_2_before_training(args: list[str], message: str, dataset: Path,
                                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("--data-dir", str(dataset), *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Epoch" not in captured.out
