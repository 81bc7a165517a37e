"""The HTML view (viz.to_html): the replayed backward pass, the page's data, Jupyter display, and the page itself
in a real headless Chromium (skipped when Playwright or Chromium is missing).

The browser tests drive Debian's chromium through Playwright (``pip install playwright``; its own browser
download is not used). Every page is opened from disk (file://) with every request recorded, and must log no
error.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz
import numpy as np
import pytest
from helpers import page_data
from test_viz import blocks_loss, boxes, gpt_loss, module_name

from tinygrad_like import Tensor, blog, draw, nn, viz
from tinygrad_like.blog import compare_gradients
from tinygrad_like.engine import toposort

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def shared_leaf() -> tuple[Tensor, Tensor, Tensor, np.ndarray]:
    """loss = sum(r * (a * b + exp(a))): ``a`` is used by two ops; ``r`` is a random upstream gradient."""
    rng = np.random.default_rng(1)
    a = Tensor(rng.standard_normal(3), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    r = rng.standard_normal(3)
    return ((a * b + a.exp()) * Tensor(r)).sum(), a, b, r


def small_mlp(batch: int = 3) -> tuple[Tensor, nn.MLP]:
    """A [4, 3, 2] MLP's cross-entropy on a random batch: two Linear calls inside the MLP's call."""
    rng = np.random.default_rng(0)
    mlp = nn.MLP([4, 3, 2], seed=0)
    x = Tensor(rng.standard_normal((batch, 4)), dtype=np.float32)
    return mlp.logits(x).cross_entropy(Tensor(rng.integers(0, 2, batch))), mlp


def position(order: list[Tensor], t: Tensor) -> int:
    """Where ``t`` is in ``order``, by identity (``==`` on tensors compares values)."""
    return next(i for i, u in enumerate(order) if u is t)


def engine_order(root: Tensor) -> list[int]:
    """The nodes whose rule the engine's walk runs, in its order: reverse toposort, leaves skipped."""
    order = toposort(root)
    return [i for i in range(len(order) - 1, -1, -1) if order[i].grad_fn is not None]


# ----------------------------------------------------------------------------------------------------------
# The replayed backward pass
# ----------------------------------------------------------------------------------------------------------


def test_backward_pass_gives_the_engines_gradients_without_touching_grad() -> None:
    loss, mlp = small_mlp()
    walk = viz.backward_pass(loss)
    assert all(p.grad is None for p in mlp.parameters())
    loss.backward()
    index = {id(t): i for i, t in enumerate(walk.order)}
    for p in mlp.parameters():
        got = walk.grads[index[id(p)]]
        assert got.dtype == p.dtype == np.float32
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-6)


def test_steps_run_in_the_engines_order_with_what_each_rule_received() -> None:
    loss, _ = small_mlp()
    walk = viz.backward_pass(loss)
    assert [s.node for s in walk.steps] == engine_order(loss)
    assert walk.steps[0].grad == 1 and not walk.seeded_with_ones
    for step in walk.steps:
        np.testing.assert_array_equal(step.grad, walk.grads[step.node])


def test_a_node_used_twice_receives_both_contributions_and_their_sum() -> None:
    loss, a, b, r = shared_leaf()
    walk = viz.backward_pass(loss)
    ia, ib = position(walk.order, a), position(walk.order, b)
    to_a = {walk.order[s.node].op: g for s in walk.steps for _, j, g in s.sent if j == ia}
    np.testing.assert_allclose(to_a["mul"], r * b.numpy())  # d(a * b)/da, times the upstream gradient
    np.testing.assert_allclose(to_a["exp"], r * np.exp(a.numpy()))
    np.testing.assert_allclose(walk.grads[ia], to_a["mul"] + to_a["exp"])
    np.testing.assert_allclose(walk.grads[ib], r * a.numpy())


def test_gradients_are_summed_back_to_a_broadcast_inputs_shape() -> None:
    rng = np.random.default_rng(2)
    bias = Tensor(rng.standard_normal(3), requires_grad=True)
    upstream = rng.standard_normal((4, 3))
    loss = ((Tensor(rng.standard_normal((4, 3))) + bias) * Tensor(upstream)).sum()
    walk = viz.backward_pass(loss)
    (sent,) = [g for s in walk.steps for _, j, g in s.sent if walk.order[j] is bias]
    np.testing.assert_allclose(sent, upstream.sum(axis=0))


def test_a_bigger_output_is_seeded_with_ones_as_its_sum() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    walk = viz.backward_pass(x * 3)
    assert walk.seeded_with_ones
    np.testing.assert_array_equal(walk.grads[0], [3.0, 3.0])


def test_a_released_graph_is_refused_naming_the_caller() -> None:
    loss, _, _, _ = shared_leaf()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"to_html: the graph .* was released .*retain_graph=True"):
        viz.to_html(loss)


def test_a_graph_kept_by_retain_graph_can_be_viewed() -> None:
    loss, a, _, _ = shared_leaf()
    loss.backward(retain_graph=True)
    walk = viz.backward_pass(loss)
    np.testing.assert_allclose(walk.grads[position(walk.order, a)], a.grad.numpy())


def test_to_html_refuses_what_is_not_a_tensor() -> None:
    with pytest.raises(TypeError, match="to_html: expects a Tensor, got ndarray"):
        viz.to_html(np.ones(3))


# ----------------------------------------------------------------------------------------------------------
# The page's data
# ----------------------------------------------------------------------------------------------------------


def test_the_page_carries_every_node_with_op_shape_dtype_values_and_gradient() -> None:
    loss, mlp = small_mlp()
    data = page_data(viz.to_html(loss, params=mlp))
    order = toposort(loss)
    assert len(data["nodes"]) == len(order)
    for node, t in zip(data["nodes"], order):
        assert node["shape"] == list(t.shape) and node["dtype"] == str(t.dtype)
        assert node["op"] == (t.grad_fn.label() if t.grad_fn is not None else None)
    weight = next(n for n in data["nodes"] if n["name"] == "layers.0.weight")
    np.testing.assert_allclose(weight["value"]["values"], mlp.layers[0].weight.numpy().ravel(), rtol=1e-3)
    assert weight["cat"] == "parameter" and weight["grad"]["n"] == 12
    assert [s["node"] for s in data["steps"]] == engine_order(loss)
    assert [c["label"] for c in data["clusters"]] == ["MLP", "layers.0: Linear(4, 3)", "layers.1: Linear(3, 2)"]
    assert data["collapsed"] == [False, False, False]


def test_big_tensors_are_summarised_with_a_histogram() -> None:
    x = Tensor(np.arange(1000.0), requires_grad=True)
    data = page_data(viz.to_html((x * 2).sum()))
    value = data["nodes"][0]["value"]
    assert "values" not in value and sum(value["hist"]["counts"]) == 1000
    assert (value["min"], value["max"], value["mean"]) == (0, 999, 499.5)
    assert value["norm"] == pytest.approx(np.linalg.norm(np.arange(1000.0)), rel=1e-3)


def test_non_finite_values_are_shown_as_text_and_left_out_of_the_summary() -> None:
    x = Tensor([1.0, np.inf, np.nan, -2.0] + [0.0] * 20, requires_grad=True)
    page = viz.to_html((x * 1).sum())
    value = page_data(page)["nodes"][0]["value"]
    assert value["nonfinite"] == 2 and (value["min"], value["max"]) == (-2, 1)
    small = page_data(viz.to_html((Tensor([np.nan, np.inf], requires_grad=True) * 1).sum()))["nodes"][0]["value"]
    assert small["values"] == ["nan", "inf"]


def test_names_cannot_break_out_of_the_script() -> None:
    w = Tensor([1.0, 2.0], requires_grad=True)
    page = viz.to_html((w * 2).sum(), params={"</script><b>w": w})
    assert "</script><b>" not in page
    assert page_data(page)["nodes"][0]["name"] == "</script><b>w"


def test_the_blog_networks_page_is_under_three_megabytes_with_its_mismatches_marked() -> None:
    rng = np.random.default_rng(0)
    x, labels = rng.random((4, 784)), rng.integers(0, 10, 4)
    net = blog.NN([784, 64, 32, 10], seed=0)
    mlp = blog.from_blog(net)
    report = compare_gradients(net, mlp, x, labels, seed=0)
    page = viz.to_html(blog.blog_loss(mlp, x, labels), params=mlp, report=report)
    assert len(page.encode("utf-8")) < 3_000_000
    verdicts = {n["name"]: n["verdict"] for n in page_data(page)["nodes"] if n["verdict"]}
    assert verdicts["layers.0.weight"]["agrees"] is False
    assert verdicts["layers.0.weight"]["cause"] == report["layers.0.weight"].cause == "missing sigmoid derivative"
    assert verdicts["layers.2.weight"]["agrees"] is True


def test_big_graphs_open_with_clusters_collapsed_but_the_model_itself_open() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(120)])  # 4 nodes per layer
    loss = model(Tensor(np.ones((1, 2)))).sum()
    data = page_data(viz.to_html(loss, params=model))
    assert len(data["nodes"]) > 300
    assert data["collapsed"] == [False] + [True] * 120  # Sequential open, every Linear a box


def test_the_page_opens_collapsed_the_calls_draw_collapses() -> None:
    loss, model, _ = blocks_loss(n=50, batch=1, width=2)  # past EXPAND_LIMIT: collapsed by size
    data = page_data(viz.to_html(loss, params=model))
    folded, clusters = data["collapsed"], data["clusters"]
    opened, shown = [], set()  # clusters drawn open; collapsed ones drawn as a box (not inside another box)
    for k, cluster in enumerate(clusters):  # parents come first
        visible = cluster["parent"] is None or opened[cluster["parent"]]
        opened.append(visible and not folded[k])
        if visible and folded[k]:
            shown.add(f"c{k}")
    assert shown and shown == set(boxes(draw(loss, params=model).source))
    assert folded == viz.collapsed_calls(viz.graph_parts(loss, params=model))


def test_to_html_writes_the_page_it_returns(tmp_path: Path) -> None:
    loss, _, _, _ = shared_leaf()
    page = viz.to_html(loss, tmp_path / "g.html")
    assert (tmp_path / "g.html").read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>") and "<script src" not in page and "http" not in page.split("<script>")[0]
    with pytest.raises(FileNotFoundError, match="to_html: cannot write .*does not exist"):
        viz.to_html(loss, tmp_path / "missing" / "g.html")


# ----------------------------------------------------------------------------------------------------------
# Jupyter
# ----------------------------------------------------------------------------------------------------------


def test_show_displays_inline_in_jupyter_in_its_own_frame() -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    loss, _, _, _ = shared_leaf()
    shown = viz.show(loss)
    bundle, _ = formatters.DisplayFormatter().format(shown)
    frame = bundle["text/html"]
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame
    assert html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1)) == shown.html == viz.to_html(loss)


def test_draw_shows_inline_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    loss, _, _, _ = shared_leaf()
    graph = draw(loss)
    assert isinstance(graph, graphviz.Digraph)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` to be found
    with pytest.raises(graphviz.ExecutableNotFound):
        graphviz.Digraph(body=["a -> b"])._repr_mimebundle_()  # what a plain Digraph does
    frame = graph._repr_mimebundle_()["text/html"]
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert page_data(page) == graph.source


# ----------------------------------------------------------------------------------------------------------
# In a real browser
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need `pip install playwright`")
    executable = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if executable is None:
        pytest.skip("no Chromium installed")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class View:
    """A page opened from disk, with the errors it logged and every URL it requested."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def node_ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#graph svg g.node", "gs => gs.map(g => g.id)")

    def current(self) -> str | None:
        return self.page.evaluate("document.querySelector('#graph g.node.current')?.id ?? null")

    def panel(self) -> str:
        return self.page.inner_text("#panel")


@pytest.fixture(scope="module")
def open_view(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Opens a page from disk; at the end, every page must have logged no error and requested only local URLs.

    Pages are shared by the tests of one graph (module-scoped fixtures below): loading viz.js costs ~0.5 s.
    """
    folder = tmp_path_factory.mktemp("views")
    views: list[View] = []

    def opener(page_html: str) -> View:
        path = folder / f"view{len(views)}.html"
        path.write_text(page_html, encoding="utf-8")
        view = View(browser.new_page(viewport={"width": 1200, "height": 800}))
        views.append(view)
        view.page.on("console", lambda m: view.errors.append(m.text) if m.type == "error" else None)
        view.page.on("pageerror", lambda e: view.errors.append(str(e)))
        view.page.on("request", lambda r: view.requests.append(r.url))
        view.page.route("**/*", lambda route: route.abort() if route.request.url.startswith(("http", "ws"))
                        else route.continue_())
        view.page.goto(path.as_uri())
        view.page.wait_for_selector("#graph svg g.node", timeout=20_000)
        return view

    yield opener
    for view in views:
        assert view.errors == [], f"the page logged errors: {view.errors}"
        assert all(url.startswith(("file:", "data:", "blob:")) for url in view.requests), view.requests
        view.page.close()


@pytest.fixture(scope="module")
def mlp_view(open_view: Any) -> tuple[View, Tensor]:
    loss, mlp = small_mlp()
    return open_view(viz.to_html(loss, params=mlp)), loss


@pytest.fixture(scope="module")
def shared_view(open_view: Any) -> tuple[View, Tensor, Tensor, Tensor, np.ndarray]:
    loss, a, b, r = shared_leaf()
    return open_view(viz.to_html(loss, params={"a": a, "b": b})), loss, a, b, r


def test_the_graph_renders_every_node_and_cluster_offline(mlp_view: tuple) -> None:
    view, loss = mlp_view
    assert sorted(view.node_ids()) == sorted(f"n{i}" for i in range(len(toposort(loss))))
    assert view.page.locator("#graph svg g.cluster").count() == 3
    assert view.page.locator("#graph svg g.edge").count() == sum(len(t.grad_fn.inputs) for t in toposort(loss)
                                                               if t.grad_fn is not None)
    assert "layers.0: Linear(4, 3)" in view.page.inner_text("#graph")


def test_stepping_walks_the_engines_order(mlp_view: tuple) -> None:
    view, loss = mlp_view
    expected = [f"n{i}" for i in engine_order(loss)]
    assert view.current() is None
    seen = []
    for _ in expected:
        view.page.click("#next")
        seen.append(view.current())
    assert seen == expected and view.page.is_disabled("#next")
    view.page.click("#prev")
    assert view.current() == expected[-2]
    assert view.page.locator("#graph g.node.done").count() == len(expected) - 2
    view.page.click("#play")  # from the second-to-last step, play reaches the end and stops
    view.page.wait_for_function(f"document.querySelector('#graph g.node.current')?.id === '{expected[-1]}'")
    assert view.page.inner_text("#play").endswith("play")


def test_a_step_shows_the_gradient_received_and_what_each_input_gets(shared_view: tuple) -> None:
    view, loss, a, b, r = shared_view
    order = toposort(loss)
    steps = engine_order(loss)
    view.page.click("#next")
    text = view.panel()
    assert f"step 1 of {len(steps)}: the rule of t{steps[0]} sum runs" in text and "to input 0" in text
    exp_step = steps.index(next(i for i, t in enumerate(order) if t.op == "exp"))
    for _ in range(exp_step):
        view.page.click("#next")
    text = view.panel()
    ia = position(order, a)
    assert f"to input 0: t{ia} a" in text and f"contribution 1 of 2 to t{ia} a" in text  # exp runs before mul
    assert view.page.evaluate(f"document.getElementById('n{ia}').classList.contains('target')")
    assert view.page.locator("#graph g.edge.active").count() == 1


def test_clicking_a_node_shows_its_values_gradient_and_contributions(shared_view: tuple) -> None:
    view, loss, a, b, r = shared_view
    ia = position(toposort(loss), a)
    view.page.click(f"#n{ia}")
    text = view.panel()
    assert "received from 2 consumers" in text and "the sum of these 2 contributions" in text
    values = a.numpy()
    assert f"{values[0]:.4g}" in text
    total = r * b.numpy() + r * np.exp(values)
    assert f"{total.max():.4g}" in text  # max of the gradient
    assert view.page.evaluate(f"document.getElementById('n{ia}').classList.contains('selected')")


def test_clusters_collapse_and_expand(mlp_view: tuple) -> None:
    view, _ = mlp_view
    count = len(view.node_ids())
    view.page.click("#c1 > text")  # the label of layers.0's cluster
    view.page.wait_for_selector("#graph g.node#c1")
    members = len(view.node_ids())
    assert members < count and "c1" in view.node_ids()
    view.page.click("#c1")
    view.page.wait_for_selector("#graph g.cluster#c1")
    assert len(view.node_ids()) == count
    view.page.click("#collapse-all")
    view.page.wait_for_function("document.querySelectorAll('#graph g.cluster').length === 0")
    assert "c0" in view.node_ids()
    view.page.click("#expand-all")  # as it was, for the other tests of this page
    view.page.wait_for_selector("#graph g.cluster#c0")


def test_mismatching_nodes_are_marked_with_their_cause(open_view: Any) -> None:
    rng = np.random.default_rng(0)
    x, labels = rng.random((2, 4)), rng.integers(0, 2, 2)
    net = blog.NN([4, 3, 2], seed=0)
    mlp = blog.from_blog(net)
    report = compare_gradients(net, mlp, x, labels, seed=0)
    view = open_view(viz.to_html(blog.blog_loss(mlp, x, labels), params=mlp, report=report))
    label = view.page.inner_text("#graph")
    assert "DISAGREES" in label and "missing sigmoid derivative" in label
    assert "layers.0.weight: missing sigmoid derivative" in view.panel().replace("\n", " ").replace(" t", "t")


def test_big_graphs_open_collapsed_and_expand(open_view: Any) -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(120)])
    loss = model(Tensor(np.ones((1, 2)))).sum()
    view = open_view(viz.to_html(loss, params=model))
    assert len([i for i in view.node_ids() if i.startswith("c")]) == 120
    view.page.click("#expand-all")
    view.page.wait_for_function("document.body.dataset.rendered === '2'")
    assert len(view.node_ids()) == len(toposort(loss))


def test_a_5000_node_gpt_opens_with_its_blocks_collapsed(open_view: Any) -> None:
    loss, gpt = gpt_loss(layers=48)
    view = open_view(viz.to_html(loss, params=gpt))
    shown = view.node_ids()
    assert len(toposort(loss)) > 5000 and len(shown) < 100
    assert len([i for i in shown if i.startswith("c")]) == 48  # one box per Block
    assert f"{module_name(gpt, gpt.blocks[47])}: GPTBlock" in view.page.inner_text("#graph")


def test_the_dot_fallback_page_lays_out_draws_source(open_view: Any) -> None:
    loss, mlp = small_mlp()
    graph = draw(loss, params=mlp)
    view = open_view(viz.dot_to_html(graph.source))
    drawn = set(view.page.eval_on_selector_all("#graph svg g.node > title", "ts => ts.map(t => t.textContent)"))
    assert drawn == set(re.findall(r"^\s*(\w+) \[", graph.source, re.MULTILINE)) - {"node", "edge", "graph"}
