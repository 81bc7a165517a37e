"""viz.TrainingRecorder: every statistic it records is what a learner computes by hand in NumPy from the same
weights, batch and gradients; activations are found without hooks in the model; the stale-gradient test; `every`,
thinning and the bounded page; and the page itself in headless Chromium (play, pause, scrub; no console error).

Set UPDATE_SCREENSHOTS=1 to write the docs' picture (docs/images/training-view.png) from the browser test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import ROOT
from test_docs import blocks, run
from test_viz_html import browser, open_view  # noqa: F401 - the browser fixtures, shared

from tinygrad_like import Tensor, engine, nn, optim, viz
from tinygrad_like.nn import functional as F
from tinygrad_like.viz.recorder import BINS

SCREENSHOT = ROOT / "docs" / "images" / "training-view.png"


class Lecture(nn.Module):
    """A learner's network: Linear, ReLU and Tanh modules, and an output layer."""

    def __init__(self) -> None:
        self.fc1, self.act = nn.Linear(6, 8), nn.ReLU()
        self.fc2, self.squash = nn.Linear(8, 5), nn.Tanh()
        self.out = nn.Linear(5, 3)
        for p in self.parameters():
            p.data = p.data.astype(np.float64)
        self.fc1.bias.data[:3] = -50.0  # three ReLU units that are 0 for every sample: dead
        self.fc2.weight.data *= 8.0  # a tanh that saturates in part

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.squash(self.fc2(self.act(self.fc1(x)))))


def batch(seed: int, n: int = 16, features: int = 6, classes: int = 3) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, features))), Tensor(rng.integers(0, classes, n))


def by_hand(w: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The Lecture network's module outputs, computed in NumPy from a copy of its weights."""
    fc1 = x @ w["fc1.weight"].T + w["fc1.bias"]
    act = np.maximum(fc1, 0)
    fc2 = act @ w["fc2.weight"].T + w["fc2.bias"]
    squash = np.tanh(fc2)
    return {"fc1": fc1, "act": act, "fc2": fc2, "squash": squash, "out": squash @ w["out.weight"].T + w["out.bias"]}


def module_arrays(state: dict[str, np.ndarray], module: str) -> np.ndarray:
    """A module's own parameters (weight, then bias), flattened together, from a state_dict."""
    return np.concatenate([state[f"{module}.{name}"].ravel() for name in ("weight", "bias")])


def assert_histogram(h: viz.recorder.Histogram, values: np.ndarray) -> None:
    counts, edges = np.histogram(values, bins=BINS)
    assert h.counts == counts.tolist()
    assert (h.lo, h.hi) == (edges[0], edges[-1])


# ----------------------------------------------------------------------------------------------------------
# The statistics, against NumPy by hand
# ----------------------------------------------------------------------------------------------------------


def test_every_statistic_is_the_one_computed_by_hand() -> None:
    model = Lecture()
    opt = optim.SGD(model.parameters(), lr=0.5)
    rec = viz.TrainingRecorder(model)
    weights, grads, xs = [], [], []
    for step in range(3):
        x, y = batch(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        rec.record(loss)
        weights.append(model.state_dict())
        grads.append({name: p.grad.numpy().copy() for name, p in model.named_parameters()})
        xs.append(x.numpy())
        opt.step()
    rec.close()
    assert [s.step for s in rec.steps] == [0, 1, 2]
    for k, record in enumerate(rec.steps):
        outputs = by_hand(weights[k], xs[k])
        assert list(record.modules) == ["fc1", "act", "fc2", "squash", "out"]  # forward order
        for path, stats in record.modules.items():
            a = outputs[path]
            assert stats.kind == type(getattr(model, path)).__name__
            np.testing.assert_allclose([stats.mean, stats.std], [a.mean(), a.std()], rtol=1e-12)
            assert_histogram(stats.hists["activation"], a.ravel())
        act, squash = record.modules["act"], record.modules["squash"]
        assert act.activation == "relu" and act.saturated is None
        assert act.dead == np.all(outputs["act"] == 0, axis=0).mean() >= 3 / 8
        assert squash.activation == "tanh" and squash.dead is None
        assert squash.saturated == np.mean(np.abs(outputs["squash"]) > 0.99) > 0
        for path in ("fc1", "fc2", "out"):
            stats = record.modules[path]
            assert stats.activation is None and stats.dead is None and stats.saturated is None
            g, w = module_arrays(grads[k], path), module_arrays(weights[k], path)
            assert stats.n_params == g.size
            np.testing.assert_allclose([stats.grad_norm, stats.weight_norm],
                                       [np.linalg.norm(g), np.linalg.norm(w)], rtol=1e-12)
            assert_histogram(stats.hists["gradient"], g)
            assert not stats.stale
            if k == 0:
                assert stats.update_ratio is None and "update" not in stats.hists
            else:
                before = module_arrays(weights[k - 1], path)
                np.testing.assert_allclose(stats.update_ratio, np.linalg.norm(w - before) / np.linalg.norm(before),
                                           rtol=1e-12)
                assert_histogram(stats.hists["update"], w - before)
        assert record.loss == pytest.approx(float(F.cross_entropy(Tensor(outputs["out"]), batch(k)[1]).item()))


def test_an_activation_function_applied_outside_any_module_is_the_layers_activation() -> None:
    """nn.MLP applies its sigmoid between its Linear layers as a function: that output is the one judged."""
    mlp = nn.MLP([6, 5, 4, 3], activation="sigmoid", seed=0, dtype=np.float64)
    for layer in mlp.layers:  # weights from U(-1, 1), as in many first lessons
        layer.copy_(np.random.default_rng(1).uniform(-1, 1, layer.weight.shape), np.zeros(layer.bias.shape))
    x, y = batch(0)
    x = Tensor(x.numpy() * 4)
    rec = viz.TrainingRecorder(mlp)
    loss = mlp.logits(x).cross_entropy(y)
    loss.backward()
    record = rec.record(loss)
    rec.close()
    w = [(layer.weight.numpy(), layer.bias.numpy()) for layer in mlp.layers]
    a1 = 1 / (1 + np.exp(-(x.numpy() @ w[0][0].T + w[0][1])))
    a2 = 1 / (1 + np.exp(-(a1 @ w[1][0].T + w[1][1])))
    for path, a in (("layers.0", a1), ("layers.1", a2)):
        stats = record.modules[path]
        assert stats.kind == "Linear" and stats.activation == "sigmoid"
        np.testing.assert_allclose([stats.mean, stats.std], [a.mean(), a.std()], rtol=1e-12)
        assert stats.saturated == np.mean((a < 0.01) | (a > 0.99))
    assert record.modules["layers.0"].saturated > 0.1
    assert record.modules["layers.2"].activation is None  # the logits: the output layer's own output
    assert rec.edges == {(None, "layers.0"), ("layers.0", "layers.1"), ("layers.1", "layers.2")}


def test_a_learners_own_module_and_loop_need_no_hooks(torch) -> None:
    """Functional ReLU in forward, a shared output layer called twice, the usual loop: the recorder sees it all;
    the gradient norms are PyTorch's on the same weights."""

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            self.body, self.head = nn.Linear(4, 6), nn.Linear(6, 2)

        def forward(self, x: Tensor) -> Tensor:
            h = F.relu(self.body(x))
            return self.head(h) + self.head(h * 0.5)

    model = TwoHeads()
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x, y = batch(3, features=4, classes=2)
    rec = viz.TrainingRecorder(model)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    record = rec.record(loss)
    rec.close()
    assert list(record.modules) == ["body", "head"]
    assert record.modules["body"].activation == "relu"
    h = np.maximum(x.numpy() @ model.body.weight.numpy().T + model.body.bias.numpy(), 0)
    head = record.modules["head"]  # both calls' outputs
    both = np.concatenate([(h * s) @ model.head.weight.numpy().T + model.head.bias.numpy() for s in (1, 0.5)])
    np.testing.assert_allclose([head.mean, head.std], [both.mean(), both.std()], rtol=1e-12)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2)).double()
    with torch.no_grad():
        for mine, their in zip((model.body, model.head), theirs):
            their.weight.copy_(torch.from_numpy(mine.weight.numpy()))
            their.bias.copy_(torch.from_numpy(mine.bias.numpy()))
    hidden = torch.relu(theirs[0](torch.from_numpy(x.numpy())))
    torch.nn.functional.cross_entropy(theirs[1](hidden) + theirs[1](hidden * 0.5),
                                      torch.from_numpy(y.numpy())).backward()
    for path, their in zip(("body", "head"), theirs):
        norm = torch.cat([their.weight.grad.ravel(), their.bias.grad.ravel()]).norm().item()
        assert record.modules[path].grad_norm == pytest.approx(norm, rel=1e-12)
    assert rec.edges == {(None, "body"), ("body", "head")}


# ----------------------------------------------------------------------------------------------------------
# Stale gradients: a step taken on gradients accumulated over several backward passes
# ----------------------------------------------------------------------------------------------------------


def run_steps(zero: Any, steps: int = 4) -> viz.TrainingRecorder:
    model = Lecture()
    opt = optim.SGD(model.parameters(), lr=0.1)
    rec = viz.TrainingRecorder(model)
    for step in range(steps):
        x, y = batch(step)
        loss = F.cross_entropy(model(x), y)
        zero(model, opt)
        loss.backward()
        rec.record(loss)
        opt.step()
    rec.close()
    return rec


def manual_zero(model: nn.Module, opt: optim.Optimizer) -> None:
    for p in model.parameters():
        if p.grad is not None:
            p.grad.data.fill(0)  # micrograd's way: zero the gradient's memory


@pytest.mark.parametrize("zero", [
    lambda model, opt: opt.zero_grad(),
    lambda model, opt: model.zero_grad(set_to_none=False),
    manual_zero,
], ids=["opt.zero_grad", "zeros in place", "fill(0)"])
def test_gradients_zeroed_before_each_backward_are_not_stale(zero: Any) -> None:
    rec = run_steps(zero)
    assert not any(m.stale for s in rec.steps for m in s.modules.values())


def test_a_forgotten_zero_grad_is_told_from_the_second_step_on() -> None:
    rec = run_steps(lambda model, opt: None)
    stale = [[path for path, m in s.modules.items() if m.stale] for s in rec.steps]
    assert stale == [[], ["fc1", "fc2", "out"], ["fc1", "fc2", "out"], ["fc1", "fc2", "out"]]


def test_gradient_accumulation_over_micro_batches_is_not_stale() -> None:
    """Several backward passes, then one step, then zero_grad: the intended way to accumulate."""
    model = Lecture()
    opt = optim.SGD(model.parameters(), lr=0.1)
    rec = viz.TrainingRecorder(model)
    for step in range(3):
        for micro in range(2):
            x, y = batch(10 * step + micro)
            loss = F.cross_entropy(model(x), y) / 2
            loss.backward()
            rec.record(loss)  # every backward: the weights did not change since the previous call
        opt.step()
        opt.zero_grad()
    rec.close()
    assert len(rec.steps) == 6 and not any(m.stale for s in rec.steps for m in s.modules.values())


# ----------------------------------------------------------------------------------------------------------
# every, thinning, watching, errors
# ----------------------------------------------------------------------------------------------------------


def train_small(rec_every: int = 1, max_steps: int = 500, steps: int = 10, size: int = 3) -> viz.TrainingRecorder:
    """A tiny network trained for ``steps`` steps with a recorder."""
    model = nn.Sequential(nn.Linear(2, size), nn.ReLU(), nn.Linear(size, 2))
    opt = optim.SGD(model.parameters(), lr=0.05)
    x, y = batch(0, n=4, features=2, classes=2)
    rec = viz.TrainingRecorder(model, every=rec_every, max_steps=max_steps)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        rec.record(loss)
        opt.step()
    rec.close()
    return rec


def test_every_keeps_one_step_in_every_and_the_update_is_still_the_last_steps() -> None:
    model = Lecture()
    opt = optim.SGD(model.parameters(), lr=0.1)
    rec = viz.TrainingRecorder(model, every=3)
    before = None
    for step in range(7):
        x, y = batch(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        kept = rec.record(loss)
        assert (kept is not None) == (step % 3 == 0)
        if kept is not None and before is not None:
            now, old = module_arrays(model.state_dict(), "out"), module_arrays(before, "out")
            assert kept.modules["out"].update_ratio == pytest.approx(np.linalg.norm(now - old) / np.linalg.norm(old))
        before = model.state_dict()
        opt.step()
    rec.close()
    assert [s.step for s in rec.steps] == [0, 3, 6] and rec.calls == 7


def test_a_long_run_is_thinned_to_at_most_max_steps_evenly_spaced() -> None:
    rec = train_small(max_steps=4, steps=20)
    assert [s.step for s in rec.steps] == [0, 8, 16] and rec.every == 8


def test_a_5000_step_recording_keeps_at_most_500_steps_and_its_page_stays_under_2_megabytes() -> None:
    rec = train_small(steps=5000, size=2)
    assert len(rec.steps) <= 500 and rec.steps[-1].step >= 4500
    gaps = {b.step - a.step for a, b in zip(rec.steps, rec.steps[1:])}
    assert gaps == {rec.every}
    assert len(rec.to_html().encode()) < 2_000_000  # about 1.3 MB of it is Graphviz (viz.js)


def test_close_stops_watching_and_puts_the_previous_hook_back() -> None:
    seen = []
    previous = engine.set_recorder(seen.append)
    try:
        model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        outer = viz.TrainingRecorder(model)
        inner = viz.TrainingRecorder(model)
        x = Tensor(np.ones((3, 2)))
        model(x).sum().backward()
        assert [list(r.record(0.0).modules) for r in (outer, inner)] == [[*dict(model.named_modules())][1:]] * 2
        assert seen  # the hook in place before still sees every op
        inner.close()
        model(x).sum().backward()
        assert outer.record(0.0).modules[[*dict(model.named_modules())][2]].mean is not None
        outer.close()
        count = len(seen)
        model(x).sum()
        assert len(seen) > count
        assert engine.set_recorder(seen.append) == seen.append  # both recorders are gone from the chain
    finally:
        engine.set_recorder(previous)


def test_a_recorder_dropped_without_close_takes_its_hook_out() -> None:
    model = nn.Linear(2, 2)
    viz.TrainingRecorder(model)  # not kept: gone at once
    model(Tensor(np.ones((1, 2)))).sum()  # the next op finds the hook's recorder gone
    assert engine.set_recorder(None) is None


def test_bad_arguments_are_refused() -> None:
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="must be an nn.Module"):
        viz.TrainingRecorder([model])
    for every, max_steps in ((0, 500), (1.5, 500), (1, 1)):
        with pytest.raises(ValueError, match="TrainingRecorder: (every|max_steps)"):
            viz.TrainingRecorder(model, every=every, max_steps=max_steps)
    with viz.TrainingRecorder(model) as rec:
        with pytest.raises(ValueError, match="nothing recorded yet"):
            rec.to_html()
        with pytest.raises(ValueError, match=r"one element, got shape \(2,\)"):
            rec.record(Tensor([1.0, 2.0]))
        with pytest.raises(TypeError, match="a Tensor or a number, got str"):
            rec.record("loss")


# ----------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------


def run_data(page: str) -> dict[str, Any]:
    """The JSON a recorder's page carries: steps, losses, per module its numbers and histograms, the edges."""
    match = re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert match, "no data in the page"
    return json.loads(match.group(1))


def test_the_page_carries_every_recorded_step_and_is_written_where_asked(tmp_path: Path) -> None:
    rec = train_small(steps=6)
    path = tmp_path / "run.html"
    page = rec.to_html(path, title="a <b>run</b>")
    assert path.read_text(encoding="utf-8") == page
    assert "<title>a &lt;b&gt;run&lt;/b&gt;</title>" in page
    data = run_data(page)
    assert data["steps"] == [0, 1, 2, 3, 4, 5]
    assert data["loss"] == [pytest.approx(s.loss, rel=1e-3) for s in rec.steps]
    paths = list(rec.steps[0].modules)
    assert [m["path"] for m in data["modules"]] == paths
    first = data["modules"][0]
    assert first["grad_norm"] == [pytest.approx(s.modules[paths[0]].grad_norm, rel=1e-3) for s in rec.steps]
    assert first["hists"]["activation"][0][2] == rec.steps[0].modules[paths[0]].hists["activation"].counts
    assert data["edges"] == [[-1, 0], [0, 1], [1, 2]]


def docs_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The page the training doctor's docs make, made by running their example as written."""
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__main__"}
    for block in blocks(ROOT / "docs" / "training-doctor.md"):
        if block.runs:
            run(block, scope)
            if (tmp_path / "training.html").exists():
                return (tmp_path / "training.html").read_text(encoding="utf-8")
    raise AssertionError("the docs' example writes no training.html")


def shown(view: Any) -> dict[str, Any]:
    """What the page shows: the chosen step, the status line, the first box's text, the marker's place."""
    page = view.page
    return {"step": page.evaluate("document.body.dataset.step"), "status": page.inner_text("#status"),
            "box": page.text_content("#graph #m0"), "panel": page.inner_text("#panel h2"),
            "marker": page.get_attribute("#loss .marker", "x1")}


def test_the_page_plays_pauses_and_scrubs_in_a_browser(open_view: Any, tmp_path: Path,  # noqa: F811 - fixture
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    view = open_view(docs_page(tmp_path, monkeypatch))
    page = view.page
    page.wait_for_selector("body[data-rendered='1']")
    n = len(run_data(page.content())["steps"])
    start = shown(view)
    assert start["step"] == "0" and start["status"].startswith("step 0 (1 of ") and "layers.0" in start["box"]
    assert "saturated" in start["box"] and page.locator("#panel svg").count() == 6  # activations, gradients
    page.click("#next")
    after = shown(view)
    assert after["step"] == "1" and after["box"] != start["box"] and after["marker"] != start["marker"]
    assert page.locator("#panel svg").count() == 9 and "update/weight" in after["box"]  # and the first update
    page.eval_on_selector("#scrub", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(n - 2))
    assert shown(view)["step"] == str(n - 2) and f"({n - 1} of {n} recorded)" in shown(view)["status"]
    page.click("#prev")
    assert shown(view)["step"] == str(n - 3)
    page.click("#play")  # from the chosen step onwards, then pause
    page.wait_for_function(f"document.body.dataset.step === '{n - 1}'")
    assert page.inner_text("#play").endswith("play") and page.evaluate("document.body.dataset.playing") == "0"
    page.eval_on_selector("#scrub", "(e) => { e.value = 0; e.dispatchEvent(new Event('input')); }")
    page.click("#play")
    assert page.evaluate("document.body.dataset.playing") == "1" and page.inner_text("#play").endswith("pause")
    page.wait_for_function("document.body.dataset.step !== '0'")
    page.click("#play")  # pause
    paused = shown(view)
    page.wait_for_timeout(300)
    assert shown(view) == paused and page.evaluate("document.body.dataset.playing") == "0"
    assert re.search(r"step \d+: loss", paused["panel"])
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.eval_on_selector("#scrub", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
                              str(n // 2))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.exists()  # the picture the docs show
    trend = page.inner_html("#trend")
    assert "dead or saturated share" in trend and "layers.0" in trend and "layers.2" not in trend  # no units to judge
    page.select_option("#metric", "ratio")
    assert "grad/weight (log)" in page.inner_html("#trend") and "layers.2" in page.inner_html("#trend")
