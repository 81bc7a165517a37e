"""Drawings of long graphs and of hostile names: the HTML view folds a long chain into boxes that open on a click
(a 20,000-op chain once overflowed Graphviz's stack in the browser), keeps its page small and quick to write
(100,000 ops once made 78 MB in 32 s), and no name (a trailing backslash, a quote, a NUL, 16 KB) breaks the DOT
text of ``draw`` or the view's layout. The browser tests use the fixtures of tests/test_viz_html.py (Debian's
chromium through Playwright, skipped where either is missing)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import numpy as np
import pytest
from helpers import needs_dot, page_data
from test_viz_html import browser, open_view  # noqa: F401 - fixtures

from tinygrad_like import Function, Tensor, draw, nn, viz
from tinygrad_like.viz import html

# ----------------------------------------------------------------------------------------------------------
# Long graphs
# ----------------------------------------------------------------------------------------------------------


def chain(n: int) -> Tensor:
    """``n`` multiplications in a row, each by a number (its own constant node), then a sum: 2n + 2 nodes."""
    y = Tensor(np.ones(3), requires_grad=True)
    for _ in range(n):
        y = y * 1.0001
    return y.sum()


def drawn(data: dict[str, Any], collapsed: list[bool] | None = None) -> set[str]:
    """What the view draws (as its script decides): node i as "n<i>", or the outermost collapsed cluster "c<k>"
    holding it."""
    collapsed = data["collapsed"] if collapsed is None else collapsed
    shown = set()
    for i, node in enumerate(data["nodes"]):
        name, k = f"n{i}", node["cluster"]
        while k is not None:
            name = f"c{k}" if collapsed[k] else name
            k = data["clusters"][k]["parent"]
        shown.add(name)
    return shown


@pytest.fixture(scope="module")
def long_chain() -> tuple[Tensor, str]:
    loss = chain(20_000)
    return loss, viz.to_html(loss)


def test_a_20000_op_chain_opens_with_its_ends_in_view_and_the_middle_folded(long_chain: tuple) -> None:
    _, page = long_chain
    data = page_data(page)
    nodes, clusters = data["nodes"], data["clusters"]
    assert len(nodes) == 40_002 and all(data["collapsed"])
    shown = drawn(data)
    assert len(shown) <= html.HEAD + html.TAIL + html.FAN
    assert {"n0", "n1", "n40001"} <= shown  # the input, the first op, the loss
    top = [k for k, c in enumerate(clusters) if c["parent"] is None]
    assert sum(clusters[k]["size"] for k in top) == len(nodes) - html.HEAD - html.TAIL
    assert sum(int(clusters[k]["box"].split()[0].replace(",", "")) for k in top) == 20_000 - 37  # ops folded away
    # every run holds at most RUN nodes, or at most FAN runs, and the nodes it says it holds
    held: dict[int | None, list[int]] = {k: [] for k in [None, *range(len(clusters))]}
    inside: dict[int, list[int]] = {k: [] for k in range(len(clusters))}
    for i, node in enumerate(nodes):
        held[node["cluster"]].append(i)
    for j, cluster in enumerate(clusters):
        if cluster["parent"] is not None:
            inside[cluster["parent"]].append(j)
    for k, cluster in enumerate(clusters):
        inner = inside[k]
        assert (len(held[k]) <= html.RUN and not inner) or (len(inner) <= html.FAN and not held[k])
        assert cluster["size"] == len(held[k]) + sum(clusters[j]["size"] for j in inner)
        assert re.fullmatch(r"t\d+ to t\d+", cluster["label"])


def test_opening_every_run_shows_every_node_once(long_chain: tuple) -> None:
    data = page_data(long_chain[1])
    assert drawn(data, [False] * len(data["clusters"])) == {f"n{i}" for i in range(len(data["nodes"]))}


def test_a_20000_op_chain_makes_a_page_of_a_few_megabytes(long_chain: tuple) -> None:
    assert len(long_chain[1].encode("utf-8")) < 5_000_000  # it was 16 MB


@pytest.mark.slow  # 5 s on a quiet machine
def test_a_100000_op_chain_makes_a_page_under_20_mb_in_a_few_seconds() -> None:
    loss = chain(100_000)
    start = time.perf_counter()
    page = viz.to_html(loss)
    seconds = time.perf_counter() - start
    assert len(page.encode("utf-8")) < 20_000_000 and seconds < 20  # it was 78 MB and 32 s
    data = json.loads(re.search(r'id="graph-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    values, n = data["nodes"]["value"], len(data["nodes"]["inputs"])
    half = html.KEPT // 2
    assert [i for i, v in enumerate(values) if v is not None] == [*range(half), *range(n - half, n)]
    assert data["nodes"]["grad"][-1] == {"n": 1, "values": [1.0], "mean": 1.0, "min": 1.0, "max": 1.0, "norm": 1.0}
    assert "first and last 5,000" in data["omitted"]
    top = [c for c in data["clusters"] if c["parent"] is None]  # in view: 75 nodes and the boxes folding the rest
    assert len(top) <= html.FAN and sum(c["size"] for c in top) == n - html.HEAD - html.TAIL


def test_a_recurrence_unrolled_by_hand_over_3000_steps_opens_short_with_its_weight_kept() -> None:
    # the way a lecture writes an RNN: a Python loop over time steps, one shared weight
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((4, 4)) * 0.3, requires_grad=True)
    xs = Tensor(rng.standard_normal((3000, 1, 4)))
    h = Tensor.zeros(1, 4, dtype=np.float64)
    for t in range(3000):
        h = (h @ W + xs[t]).tanh()
    data = page_data(viz.to_html((h ** 2).sum(), params={"W": W}))
    assert len(data["nodes"]) > html.KEPT and len(drawn(data)) <= html.HEAD + html.TAIL + html.FAN
    weight = next(n for n in data["nodes"] if n["name"] == "W")
    assert weight["cat"] == "parameter" and weight["value"]["n"] == 16 and weight["grad"]["n"] == 16
    assert drawn(data, [False] * len(data["clusters"])) == {f"n{i}" for i in range(len(data["nodes"]))}


def test_a_graph_under_the_limit_keeps_every_value_and_its_parameters_always() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(3)])
    loss = model(Tensor(np.ones((1, 2)))).sum()
    data = page_data(viz.to_html(loss, params=model))
    assert data["omitted"] is None and all(n["value"] is not None for n in data["nodes"])
    assert not any("box" in c for c in data["clusters"])  # short: nothing folded


def test_a_5000_node_graph_is_written_in_well_under_three_seconds() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 8)), requires_grad=True)
    y = x
    for _ in range(2500):
        y = (y * 1.0001).tanh()
    start = time.perf_counter()
    viz.to_html(y.sum())
    assert time.perf_counter() - start < 3  # 4.4 s when every summary called np.histogram


@pytest.mark.parametrize("values", [
    np.random.default_rng(1).standard_normal(300) * 1e3,
    np.round(np.random.default_rng(2).standard_normal(500) * 5),  # integers: many values on bin edges
    np.random.default_rng(3).standard_normal(40).astype(np.float16),
    np.array([1.0, np.inf, np.nan, -2.0] + [0.5] * 20),
    np.full(30, 7.0),
    np.arange(24).reshape(2, 3, 4),
    np.arange(30) % 3 == 0,
])
def test_summaries_are_numpys_histogram_and_statistics(values: np.ndarray) -> None:
    summary = html._summary(values)
    x = values.astype(np.float64).ravel()
    finite = x[np.isfinite(x)]
    counts, edges = np.histogram(finite, bins=html.BINS)
    assert summary["hist"] == {"lo": html._round(edges[0]), "hi": html._round(edges[-1]), "counts": counts.tolist()}
    with np.errstate(over="ignore"):
        expected = [finite.mean(), finite.min(), finite.max(), np.sqrt(finite @ finite)]
    assert [summary[k] for k in ("mean", "min", "max", "norm")] == [html._round(float(v)) for v in expected]
    assert summary.get("nonfinite", 0) == x.size - finite.size and summary["n"] == x.size


def test_a_range_wider_than_the_largest_float_is_binned_as_its_half() -> None:
    values = np.array([-1e308, 1e308, 0.0, 5e307] * 5)  # hi - lo overflows, where np.histogram gives up
    summary = html._summary(values)
    assert summary["hist"]["counts"] == np.histogram(values / 2, bins=html.BINS)[0].tolist()
    assert (summary["hist"]["lo"], summary["hist"]["hi"], summary["max"]) == (-1e308, 1e308, 1e308)


def test_small_summaries_list_every_value_as_before() -> None:
    assert html._summary(np.array([1.5, np.nan, -np.inf], np.float32)) == {
        "n": 3, "values": [1.5, "nan", "-inf"], "nonfinite": 2, "mean": 1.5, "min": 1.5, "max": 1.5, "norm": 1.5}
    assert html._summary(np.array([[True, False]])) == {
        "n": 2, "values": [True, False], "mean": 0.5, "min": 0.0, "max": 1.0, "norm": 1.0}
    assert html._summary(np.array([3, 4]))["norm"] == 5.0


# ----------------------------------------------------------------------------------------------------------
# Hostile names
# ----------------------------------------------------------------------------------------------------------

HOSTILE = ["ends in a backslash\\", 'a backslash and a quote\\"', "a NUL\0inside", "x" * 16_384, "<b>html</b>",
           "two\nlines"]


def odd_function(name: str) -> type[Function]:
    """A user's op named (and so labelled) ``name``: doubles its input."""
    return type("Odd", (Function,), {"name": name, "forward": lambda self, x: x * 2,
                                     "backward": lambda self, grad: (grad * 2,)})


class Named(nn.Module):
    """A module holding a Linear under the attribute ``name``: the drawing labels its cluster with it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        setattr(self, name, nn.Linear(2, 2))
        self.inner = name

    def forward(self, x: Tensor) -> Tensor:
        return getattr(self, self.inner)(x)


def hostile_graph() -> tuple[Tensor, dict[str, Tensor], nn.Module]:
    """Every hostile name as an op, a parameter's name and a module's name, in one graph."""
    model = nn.Sequential(*[Named(name) for name in HOSTILE])
    y = model(Tensor(np.ones((1, 2))))
    x = Tensor(np.ones(2), requires_grad=True)
    params = {}
    for name in HOSTILE:
        x = odd_function(name).apply(x)
        leaf = Tensor(np.ones(2), requires_grad=True)
        params[name] = leaf
        x = x * leaf
    return (x.sum() + y.sum()), params, model


def dot_strings(source: str, attribute: str) -> list[str]:
    """Every value of ``attribute`` in DOT text, its quoted pieces joined and unescaped."""
    quoted = r'"(?:[^"\\]|\\.)*"'
    found = re.findall(rf"\b{attribute}=((?:{quoted})(?: \+ {quoted})*)", source)
    return ["".join(re.sub(r"\\(.)", r"\1", p[1:-1]) for p in re.findall(quoted, value)) for value in found]


@pytest.mark.parametrize("collapse", [False, True])
def test_hostile_names_give_valid_short_labels_with_the_whole_name_in_a_tooltip(collapse: bool) -> None:
    loss, params, model = hostile_graph()
    source = draw(loss, params=params, collapse=collapse).source
    assert "\0" not in source and "a NUL\\\\x00inside" in source  # written out: \x00
    labels = dot_strings(source, "label")
    assert all(len(field) <= viz.graph.LABEL_CHARS for label in labels for field in re.split(r"(?<!\\)\|", label))
    assert "x" * (viz.graph.LABEL_CHARS - 1) + "\u2026" in source
    assert "x" * 16_384 in dot_strings(source, "tooltip")  # the whole name, in pieces Graphviz accepts
    assert max(len(p) for p in re.findall(r'"(?:[^"\\]|\\.)*"', source)) < 16_384


@needs_dot
def test_dot_lays_out_every_hostile_name() -> None:
    loss, params, model = hostile_graph()
    for collapse in (False, True):
        source = draw(loss, params=params, collapse=collapse).source
        done = subprocess.run(["dot", "-Tsvg"], input=source.encode("utf-8"), capture_output=True, timeout=60)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
        assert b"x" * 16_384 in done.stdout  # the tooltip


# ----------------------------------------------------------------------------------------------------------
# In a real browser
# ----------------------------------------------------------------------------------------------------------


def test_a_20000_op_chain_renders_and_its_boxes_open(open_view: Any, long_chain: tuple) -> None:  # noqa: F811
    view = open_view(long_chain[1])
    shown = view.node_ids()
    assert len(shown) <= html.HEAD + html.TAIL + html.FAN and "n40001" in shown
    for rendered in ("2", "3", "4"):  # a box in the middle, a box inside it, a run of ops inside that
        boxes = [i for i in view.node_ids() if i.startswith("c")]
        box = boxes[len(boxes) // 2]
        assert "more ops" in view.page.text_content(f"#{box}")
        view.page.click(f"#{box}")
        view.page.wait_for_function(f"document.body.dataset.rendered === '{rendered}'")
        assert box not in view.node_ids()
    inner = next(i for i in view.node_ids() if i.startswith("n") and 5000 < int(i[1:]) < 35000)
    view.page.click(f"#{inner}")  # a node whose values a 40,002-node page does not keep
    assert "not kept" in view.panel()
    view.page.click("#next")  # the backward pass starts at the loss, whose values are kept
    assert "step 1 of 20001" in view.panel() and "not kept" not in view.panel()
    assert view.page.inner_text("#notice") == ""


def test_the_view_never_draws_more_than_its_limit(open_view: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(html, "DRAW_LIMIT", 120)  # a small limit, so that a small graph reaches it
    view = open_view(viz.to_html(chain(2000)))  # 4,002 nodes: 75 in view, 4 boxes of 10 runs of 100 nodes
    view.page.click("#expand-all")  # the 4 boxes open (40 runs: 115 drawn), the runs would pass the limit
    view.page.wait_for_function("document.body.dataset.rendered === '2'")
    assert len(view.node_ids()) == 115
    assert "some boxes stay closed: the view draws at most 120 nodes at once" in view.page.inner_text("#notice")
    view.page.click(f"#{next(i for i in view.node_ids() if i.startswith('c'))}")  # 100 nodes more: refused
    assert "not opened: the drawing would have 214 nodes" in view.page.inner_text("#notice")
    assert view.page.evaluate("document.body.dataset.rendered") == "2" and len(view.node_ids()) == 115


def test_hostile_names_render_in_the_view_and_in_draws_page(open_view: Any) -> None:  # noqa: F811
    loss, params, model = hostile_graph()
    view = open_view(viz.to_html(loss, params=params))
    view.page.click("#expand-all")
    view.page.wait_for_function("document.body.dataset.rendered === '2'")
    text = view.page.inner_text("#graph")
    assert "a NUL\\x00inside" in text and "ends in a backslash\\" in text and "x" * 16_384 not in text
    long = next(i for i, n in enumerate(page_data(view.page.content())["nodes"]) if n["title"] == "x" * 16_384)
    view.page.click(f"#n{long}")
    assert "x" * 16_384 in view.panel()  # the panel shows the whole name
    open_view(viz.dot_to_html(draw(loss, params=params).source))  # draw's DOT, laid out in the browser
