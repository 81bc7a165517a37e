"""Drawing computation graphs (tinygrad_like.viz): DOT text, rendering with the real ``dot``, the fallback
without it, and the training plots. (The HTML view: tests/test_viz_html.py; `tinygrad-like graph`:
tests/test_cli_graph.py.)

Regenerate the golden DOT file after an intended change of the drawing with
``UPDATE_GOLDEN=1 python -m pytest tests/test_viz.py -q`` and review the diff.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PNG_MAGIC, hide_dot, listing, needs_dot, svg_cluster_labels, svg_nodes

from tinygrad_like import Tensor, blog, cat, draw, nn, viz
from tinygrad_like import train as T
from tinygrad_like.blog import NN, blog_graph, compare_gradients
from tinygrad_like.engine import toposort
from tinygrad_like.viz import LEGEND, GraphvizNotFound, save

GOLDEN = Path(__file__).parent / "golden"


def small_expression() -> tuple[Tensor, Tensor, Tensor]:
    """relu(w @ x + b).sum() with fixed values: (output, w, b)."""
    w = Tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    x = Tensor([1.0, -1.0])
    b = Tensor(0.5, requires_grad=True)
    return ((w @ x) + b).relu().sum(), w, b


def blog_loss(layers: list[int], batch: int = 2) -> tuple[Tensor, nn.MLP]:
    mlp = nn.MLP(layers, seed=0)
    rng = np.random.default_rng(0)
    x = Tensor(rng.random((batch, layers[0]), dtype=np.float32))
    onehot = Tensor(np.eye(layers[-1], dtype=np.float32)[rng.integers(0, layers[-1], batch)])
    return blog.blog_loss(mlp, x, onehot), mlp  # the blog's unfused graph


def node_attrs(source: str, node_id: str) -> str:
    """The attribute list of one node statement in DOT text."""
    match = re.search(rf"^\s*{node_id} \[(.*)\]$", source, re.MULTILINE)
    assert match, f"no node {node_id} in the DOT text"
    return match.group(1)


# ----------------------------------------------------------------------------------------------------------
# DOT text
# ----------------------------------------------------------------------------------------------------------


def test_golden_dot_for_a_small_expression() -> None:
    y, w, _ = small_expression()
    y.backward(retain_graph=True)
    source = draw(y, params={"w": w}).source
    golden = GOLDEN / "small_expression.gv"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(source)
    assert source == golden.read_text()


def test_same_expression_gives_the_same_dot_text() -> None:
    first, second = (draw(blog_loss([4, 3, 2])[0]).source for _ in range(2))
    assert first == second


def test_nodes_are_numbered_in_topological_order() -> None:
    y, _, _ = small_expression()
    source = draw(y, legend=False).source
    for a, b in re.findall(r"^\s*t(\d+) -> op(\d+)$", source, re.MULTILINE):
        assert int(a) < int(b)
    assert node_attrs(source, "t0").startswith('label="leaf|(2, 2) float32|data [[1, 2], [3, -4]]"')
    assert 'label="relu"' in node_attrs(source, "op5")


def test_leaf_categories_and_colours() -> None:
    y, w, b = small_expression()
    source = draw(y, params={"w": w}).source
    colour = {name: fill for name, (fill, _) in LEGEND.items()}
    assert f"fillcolor={colour['parameter']}" in node_attrs(source, "t0")  # w, named
    assert f"fillcolor={colour['constant']}" in node_attrs(source, "t1")  # x
    assert f"fillcolor={colour['leaf']}" in node_attrs(source, "t3")  # b, unnamed
    assert f"fillcolor={colour['output']}" in node_attrs(source, "t6")
    assert "shape=ellipse" in node_attrs(source, "op2")
    assert "legend_parameter" in source and "legend_disagrees" not in source
    assert "legend_" not in draw(y, legend=False).source


def test_grads_appear_only_after_backward() -> None:
    y, w, b = small_expression()
    before = draw(y, params={"w": w}).source
    y.backward(retain_graph=True)
    after = draw(y, params={"w": w}).source
    assert "|grad " not in before
    assert "|grad [[0, 0], [1, -1]]" in node_attrs(after, "t0")  # relu is off for the first row
    assert "|grad 1" in node_attrs(after, "t3")
    assert "|grad " not in draw(y, show_grad=False).source
    assert "|data " not in draw(y, show_data=False).source


def test_drawing_a_released_graph_says_how_to_keep_it() -> None:
    y, _, _ = small_expression()
    y.backward()
    with pytest.raises(RuntimeError, match=r"released by backward\(\).*retain_graph=True"):
        draw(y)


def test_big_tensors_are_summarised() -> None:
    a = Tensor(np.arange(100, dtype=np.float32).reshape(10, 10), requires_grad=True)
    source = draw((a * 2).sum()).source
    assert "mean 49.5, min 0, max 99" in node_attrs(source, "t0")
    assert "data" not in node_attrs(source, "t0")


def test_transpose_reads_T_and_other_permutes_keep_their_order() -> None:
    a = Tensor(np.ones((2, 3, 4), dtype=np.float32), requires_grad=True)
    source = draw(a.T.sum() + a.permute(0, 2, 1).sum()).source
    assert 'label="T"' in node_attrs(source, "op1")
    assert 'label="permute(0, 2, 1)"' in node_attrs(source, "op3")


def test_module_layers_are_nested_clusters() -> None:
    loss, mlp = blog_loss([4, 3, 2])
    source = draw(loss, params=mlp).source
    assert source.count("subgraph cluster_") == 4  # MLP, its two Linear layers, the legend
    assert 'label="layers.0: Linear(4, 3)"' in source and "label=MLP" in source
    assert "label=\"layers.1.bias|(2,) float32" in source
    # without params, the module found in the graph names the parameters all the same
    assert draw(loss).source == source
    assert "subgraph cluster_" not in draw(loss, clusters=False, legend=False).source


def parameter_line(source: str, name: str) -> str:
    return re.search(rf'^\s*t\d+ \[label="{re.escape(name)}\|.*$', source, re.MULTILINE).group(0)


def test_report_highlights_disagreeing_parameters() -> None:
    loss, mlp = blog_loss([4, 3, 2])
    report = {"layers.0.weight": (0.42, False), "layers.1.weight": (3e-9, True)}
    source = draw(loss, params=mlp, report=report).source
    bad, good = parameter_line(source, "layers.0.weight"), parameter_line(source, "layers.1.weight")
    assert "grad rel diff 0.42 DISAGREES" in bad and "fillcolor=salmon" in bad and "color=red" in bad
    assert "grad rel diff 3e-09 ok" in good and "fillcolor=palegreen" in good
    assert "rel diff" not in parameter_line(source, "layers.0.bias")
    assert "legend_disagrees" in source


def test_gradient_report_of_the_published_blog_code_marks_the_hidden_layers() -> None:
    net = NN([5, 4, 3, 2], seed=0)  # as published: the hidden layers' sigmoid derivative is missing
    mlp = blog.from_blog(net)
    rng = np.random.default_rng(0)
    x, labels = rng.random((3, 5)), rng.integers(0, 2, 3)
    report = compare_gradients(net, mlp, x, labels)
    source = blog_graph(mlp, x, labels, report=report).source
    for name in ("layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"):
        line = parameter_line(source, name)
        assert f"grad rel diff {report[name].max_rel:.3g} DISAGREES (missing sigmoid derivative)" in line
        assert "fillcolor=salmon" in line
    for name in ("layers.2.weight", "layers.2.bias"):
        assert " ok" in parameter_line(source, name) and "fillcolor=palegreen" in parameter_line(source, name)


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    y, _, _ = small_expression()
    with pytest.raises(TypeError, match="params"):
        draw(y, params={"w": 1.0})
    with pytest.raises(ValueError, match="rankdir"):
        draw(y, rankdir="sideways")
    with pytest.raises(TypeError, match="report"):
        draw(y, report=[1, 2])
    with pytest.raises(ValueError, match="max_values must be at least 0, got -1"):
        draw(y, max_values=-1)
    with pytest.raises(ValueError, match=r"\.svg"):
        save(draw(y), tmp_path / "graph.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(draw(y), tmp_path / "missing" / "graph.svg")


def test_a_100000_node_chain_draws_in_seconds() -> None:
    y = Tensor(0.5, requires_grad=True)
    for _ in range(100_000):
        y = y.tanh()
    start = time.perf_counter()
    source = draw(y).source
    seconds = time.perf_counter() - start
    assert "\top100000 [" in source and "\tt99999 -> op100000\n" in source
    assert seconds < 20, f"drawing 100,000 ops took {seconds:.1f} s"


# ----------------------------------------------------------------------------------------------------------
# Collapsing module calls
# ----------------------------------------------------------------------------------------------------------


class Block(nn.Module):
    """Linear + Tanh, then a Linear: a layer of a learner's own, from the library's layers."""

    def __init__(self, width: int, rng: np.random.Generator) -> None:
        self.net = nn.Sequential(nn.Linear(width, width, rng=rng), nn.Tanh())
        self.out = nn.Linear(width, width, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.net(x))  # Block's output is also out's: the Block is drawn around the Linear


def blocks_loss(n: int = 2, batch: int = 3, width: int = 4) -> tuple[Tensor, nn.Sequential, Tensor]:
    """sum(Sequential of ``n`` Blocks (x)): (loss, model, x)."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(*[Block(width, rng) for _ in range(n)])
    x = Tensor(rng.standard_normal((batch, width)), dtype=np.float32)
    return model(x).sum(), model, x


def boxes(source: str) -> dict[str, str]:
    """Box id (``c<k>``) -> label of every collapsed module call in DOT text."""
    return dict(re.findall(r'^\s*(c\d+) \[label="([^"]*)"[^\n]*shape=box3d', source, re.MULTILINE))


def edges(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+)$", source, re.MULTILINE)


def node_id(source: str, label_start: str) -> str:
    """The id of the one node whose label starts with ``label_start``."""
    (found,) = re.findall(rf'^\s*(\w+) \[label="{re.escape(label_start)}', source, re.MULTILINE)
    return found


def module_name(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def test_collapsed_blocks_are_one_box_each_with_the_edges_around_them() -> None:
    loss, model, _ = blocks_loss()
    source = draw(loss, params=model, collapse=1, legend=False).source
    first, second = (module_name(model, block) for block in model)
    assert sorted(boxes(source).values()) == [f"{name} (Block) -> (3, 4)\\n3 ops" for name in (first, second)]
    box = {label.split(" ")[0]: box_id for box_id, label in boxes(source).items()}
    x, total = node_id(source, "input|(3, 4)"), node_id(source, "sum|")
    touching = [e for e in edges(source) if "c" in (e[0][0], e[1][0])]
    assert sorted(touching) == sorted([(x, box[first]), (box[first], box[second]), (box[second], f"op{total[1:]}")])
    assert "weight" not in source and "bias" not in source and "linear" not in source  # hidden in the boxes
    assert source.count("subgraph cluster_") == 1 and "label=Sequential" in source  # the model stays open
    again, same_model, _ = blocks_loss()  # other objects, the same DOT text
    assert draw(again, params=same_model, collapse=1, legend=False).source == source


def test_expanded_blocks_show_every_op_and_parameter() -> None:
    loss, model, _ = blocks_loss()
    order = toposort(loss)
    source = draw(loss, params=model, collapse=False, legend=False).source
    assert boxes(source) == {}
    assert len(re.findall(r"^\s*op\d+ \[", source, re.MULTILINE)) == sum(t.grad_fn is not None for t in order)
    for name, _ in model.named_parameters():
        assert f'label="{name}|' in source
    # Sequential > Block > (Sequential > Linear, Tanh), Linear: 1 + 2 * 5 clusters, the Block around its Linear
    assert source.count("subgraph cluster_") == 11
    assert draw(loss, params=model).source == draw(loss, params=model, collapse=False).source  # small: all open


def test_collapse_depths_true_and_false() -> None:
    loss, model, _ = blocks_loss()

    def labels(collapse: bool | int) -> list[str]:
        source = draw(loss, params=model, collapse=collapse).source
        return sorted(label.split("\\n")[0] for label in boxes(source).values())

    first, second = (module_name(model, block) for block in model)
    assert labels(True) == labels(0) == ["Sequential -> (3, 4)"]  # the model's own call: one box
    assert labels(2) == sorted(f"{b}.{part}" for b in (first, second)
                               for part in ("net (Sequential) -> (3, 4)", "out (Linear(4, 4)) -> (3, 4)"))
    assert labels(3) == sorted(f"{module_name(model, layer)} ({kind}) -> (3, 4)" for block in model
                               for layer, kind in zip(block.net, ("Linear(4, 4)", "Tanh")))
    assert labels(4) == labels(False) == []
    with pytest.raises(ValueError, match="draw: collapse must be .* at least 0, got -1"):
        draw(loss, collapse=-1)
    with pytest.raises(TypeError, match="draw: collapse must be None, True, False or a nesting depth, got str"):
        draw(loss, collapse="blocks")


def test_a_box_has_edges_to_every_output_that_leaves_it_and_named_params_stay() -> None:
    class Keeps(nn.Module):
        """Keeps its hidden activation, which the caller uses too."""

        def __init__(self) -> None:
            self.linear = nn.Linear(2, 2, rng=np.random.default_rng(0))

        def forward(self, x: Tensor) -> Tensor:
            self.hidden = self.linear(x).tanh()
            return self.hidden * 2

    keeps = Keeps()
    x = Tensor(np.ones((1, 2), np.float32), requires_grad=True)
    scale = Tensor(np.float32(3.0), requires_grad=True)
    loss = (keeps(x) * scale).sum() + keeps.hidden.max() + x.exp().sum()
    source = draw(loss, params={"scale": scale, "x": x}, collapse=True, legend=False).source
    ((box, label),) = boxes(source).items()
    assert label == "Keeps -> (1, 2)\\n3 ops"  # linear, tanh, mul; the Linear's weight and bias hidden
    x_id, scale_id = node_id(source, "x|"), node_id(source, "scale|")
    mul, top, exp = (node_id(source, f"{op}|").replace("t", "op") for op in ("mul", "max", "exp"))
    assert sorted(e for e in edges(source) if box in e) == sorted([(x_id, box), (box, mul), (box, top)])
    assert (x_id, exp) in edges(source) and (scale_id, mul) in edges(source)  # inputs from outside stay
    assert "fillcolor=palegreen" in node_attrs(source, x_id) and "fillcolor=palegreen" in node_attrs(source, scale_id)


def test_a_box_hiding_a_disagreeing_parameter_is_marked() -> None:
    loss, mlp = blog_loss([4, 3, 2])
    source = draw(loss, params=mlp, report={"layers.0.weight": (0.42, False)}, collapse=1).source
    bad, good = (node_id(source, f"layers.{i} (Linear") for i in (0, 1))
    assert "color=red" in node_attrs(source, bad) and "color=red" not in node_attrs(source, good)
    assert "legend_disagrees" in source and "layers.0.weight" not in source


def test_past_the_limit_the_outer_calls_stay_open_and_the_inner_ones_collapse() -> None:
    loss, model, _ = blocks_loss(n=50, batch=1, width=2)
    parts = viz.graph_parts(loss, params=model)
    assert len(parts.order) > viz.EXPAND_LIMIT
    source = draw(loss, params=model).source
    # Sequential, its Blocks and their parts open (at most EXPAND_LIMIT nodes and boxes), each Block's net collapsed
    assert source == draw(loss, params=model, collapse=3).source
    assert len(boxes(source)) == 100 and "legend_collapsed" in source
    shown = len(re.findall(r"^\s*t\d+ \[", source, re.MULTILINE)) + len(boxes(source))
    assert shown <= viz.EXPAND_LIMIT
    few, few_model, _ = blocks_loss(n=2, batch=1, width=2)
    assert "shape=box3d" not in draw(few, params=few_model, legend=False).source


def test_each_step_of_an_rnn_is_its_own_cluster_with_the_shared_weights_outside() -> None:
    class Cell(nn.Module):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.ih, self.hh = nn.Linear(3, 4, rng=rng), nn.Linear(4, 4, rng=rng)

        def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
            return (self.ih(x) + self.hh(h)).tanh()

    cell, steps = Cell(), 200
    xs = Tensor(np.ones((2, steps, 3), np.float32))
    h = Tensor(np.zeros((2, 4), np.float32))
    for t in range(steps):
        h = cell(xs[:, t], h=h)  # the state given by keyword: not recorded as the call's input
    parts = viz.graph_parts(h.sum(), params=cell)
    calls = [(members, parent) for label, members, parent in parts.clusters if label == "Cell"]
    assert len(calls) == steps and all(parent is None for _, parent in calls)  # side by side, not nested
    assert sorted(len(members) for members, _ in calls) == [4] * (steps - 1) + [5]  # 4 ops (+ h0 at the start)
    weight = next(i for i, name in enumerate(parts.names) if name == "ih.weight")
    assert parts.owner[weight] is None  # used by every step: beside them, not inside the last one
    source = draw(h.sum(), params=cell, collapse=True, legend=False).source
    assert len(boxes(source)) == steps and "ih.weight" in source


def test_a_layer_returning_several_tensors_is_one_cluster_holding_all_of_them() -> None:
    """An LSTM cell returns (h, c): one call, one cluster, the ops of both outputs inside."""
    cell = nn.LSTMCell(3, 4)
    h, c = cell(Tensor(np.ones((2, 3), np.float32)))
    parts = viz.graph_parts(h.sum() + c.sum(), params=cell)
    ((label, members, parent),) = [cluster for cluster in parts.clusters if cluster[0].startswith("LSTMCell(")]
    at = {id(t): i for i, t in enumerate(parts.order)}
    assert at[id(h)] in members and at[id(c)] in members and parent is None
    ops = [parts.order[i].op for i in members]
    assert ops.count("lstm_step") == 1 and ops.count("getitem") == 2  # the fused step, then h and c taken from it

    lstm = nn.LSTM(3, 4, num_layers=2)
    out, (h_n, c_n) = lstm(Tensor(np.ones((5, 2, 3), np.float32)))
    parts = viz.graph_parts(out.sum() + c_n.sum(), params=lstm)
    (members,) = [m for label, m, _ in parts.clusters if label.startswith("LSTM(")]
    at = {id(t): i for i, t in enumerate(parts.order)}
    assert at[id(out)] in members and at[id(c_n)] in members


class LayerNorm(nn.Module):
    """Normalise the last axis, then scale and shift."""

    def __init__(self, width: int) -> None:
        self.weight = Tensor(np.ones(width, np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(width, np.float32), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(-1, keepdim=True)
        return centred / ((centred**2).mean(-1, keepdim=True) + 1e-5).sqrt() * self.weight + self.bias


class Head(nn.Module):
    """One causal self-attention head."""

    def __init__(self, width: int, size: int, rng: np.random.Generator) -> None:
        self.key, self.query, self.value = (nn.Linear(width, size, bias=False, rng=rng) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        k, q, v = self.key(x), self.query(x), self.value(x)
        future = np.triu(np.ones((x.shape[1], x.shape[1]), bool), 1)
        return (q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5).masked_fill(future, float("-inf")).softmax(-1) @ v


class GPTBlock(nn.Module):
    def __init__(self, width: int, heads: int, rng: np.random.Generator) -> None:
        self.ln1, self.ln2 = LayerNorm(width), LayerNorm(width)
        self.heads = nn.Sequential(*[Head(width, width // heads, rng) for _ in range(heads)])
        self.proj = nn.Linear(width, width, rng=rng)
        self.ffwd = nn.Sequential(nn.Linear(width, 4 * width, rng=rng), nn.ReLU(), nn.Linear(4 * width, width, rng=rng))

    def forward(self, x: Tensor) -> Tensor:
        h = self.ln1(x)
        x = x + self.proj(cat([head(h) for head in self.heads], dim=-1))
        return x + self.ffwd(self.ln2(x))


class Embedding(nn.Module):
    def __init__(self, n: int, width: int, rng: np.random.Generator) -> None:
        self.weight = Tensor(rng.standard_normal((n, width), dtype=np.float32), requires_grad=True)

    def forward(self, idx: np.ndarray) -> Tensor:
        return self.weight[idx]


class GPT(nn.Module):
    """Token and position embeddings, Blocks (LayerNorm, attention heads, feed-forward), a LayerNorm, logits."""

    def __init__(self, layers: int, vocab: int = 6, width: int = 8, heads: int = 4, context: int = 3) -> None:
        rng = np.random.default_rng(0)
        self.tokens, self.positions = Embedding(vocab, width, rng), Embedding(context, width, rng)
        self.blocks = nn.Sequential(*[GPTBlock(width, heads, rng) for _ in range(layers)])
        self.ln_f, self.lm_head = LayerNorm(width), nn.Linear(width, vocab, rng=rng)

    def forward(self, idx: np.ndarray) -> Tensor:
        x = self.tokens(idx) + self.positions(np.arange(idx.shape[1]))
        return self.lm_head(self.ln_f(self.blocks(x)))


def gpt_loss(layers: int) -> tuple[Tensor, GPT]:
    """A GPT's cross-entropy on one random sequence of 3 tokens: about 100 nodes per layer."""
    gpt = GPT(layers)
    idx = np.random.default_rng(1).integers(0, 6, (1, 3))
    return gpt(idx).reshape(-1, 6).cross_entropy(Tensor(idx.reshape(-1))), gpt


@needs_dot
def test_a_5000_node_gpt_draws_collapsed_and_renders(tmp_path: Path) -> None:
    loss, gpt = gpt_loss(layers=48)
    order = toposort(loss)
    assert len(order) > 5000
    full = draw(loss, params=gpt, collapse=False).source
    assert all(f"\tt{i} [" in full for i in range(len(order)))
    graph = draw(loss, params=gpt)  # collapsed by size: the model and its Sequential open, each Block a box
    labels = boxes(graph.source)
    names = [module_name(gpt, block) for block in gpt.blocks]
    assert sorted(labels.values()) == sorted(f"{name} (GPTBlock) -> (1, 3, 8)\\n65 ops" for name in names)
    assert len(re.findall(r"^\s*t\d+ \[", graph.source, re.MULTILINE)) < 40  # embeddings, ln_f, lm_head, loss
    nodes = svg_nodes(save(graph, tmp_path / "gpt.svg"))
    drawn = sorted(nodes[box] for box in labels)
    assert drawn == sorted([f"{name} (GPTBlock) -> (1, 3, 8)", "65 ops"] for name in names)
    assert "blocks: Sequential" in svg_cluster_labels(tmp_path / "gpt.svg")


# ----------------------------------------------------------------------------------------------------------
# Rendering with the real dot, and without it
# ----------------------------------------------------------------------------------------------------------


@needs_dot
def test_blog_network_renders_to_svg(tmp_path: Path) -> None:
    loss, mlp = blog_loss([784, 64, 32, 10])
    loss.backward(retain_graph=True)
    path = save(draw(loss, params=mlp, legend=False), tmp_path / "blog.svg")
    nodes = svg_nodes(path)
    tensors = {k: v for k, v in nodes.items() if re.fullmatch(r"t\d+", k)}
    ops = {k: v[0] for k, v in nodes.items() if re.fullmatch(r"op\d+", k)}
    assert len(tensors) == 25 and len(ops) == 16  # 9 leaves: x, 3 weights, 3 biases, labels, -1
    assert sorted(ops.values()) == sorted(["T", "matmul", "add"] * 3 + ["sigmoid"] * 2
                                          + ["softmax(axis=1)", "log", "mul", "sum", "mul"])
    texts = {text for texts in tensors.values() for text in texts}
    for i, shape in enumerate(["(64, 784)", "(32, 64)", "(10, 32)"]):
        assert f"layers.{i}.weight" in texts and f"layers.{i}.bias" in texts
        assert f"{shape} float32" in texts
    assert "(2, 784) float32" in texts and "() float32" in texts
    assert sorted(svg_cluster_labels(path)) == ["MLP", "layers.0: Linear(784, 64)", "layers.1: Linear(64, 32)",
                                                "layers.2: Linear(32, 10)"]
    assert (tmp_path / "blog.gv").read_text() == draw(loss, params=mlp, legend=False).source


@needs_dot
def test_png_and_pdf_render(tmp_path: Path) -> None:
    y, _, _ = small_expression()
    assert save(draw(y), tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert save(draw(y), tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")


def test_saved_files_get_the_usual_permissions(tmp_path: Path) -> None:
    y, _, _ = small_expression()
    reference = tmp_path / "reference"
    reference.write_text("")
    saved = save(draw(y), tmp_path / "g.gv")
    assert stat.S_IMODE(saved.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


@needs_dot
def test_special_characters_in_names_survive_dot(tmp_path: Path) -> None:
    y, w, _ = small_expression()
    name = 'w|{odd}<name> "quoted" \\ back'
    nodes = svg_nodes(save(draw(y, params={name: w}), tmp_path / "odd.svg"))
    assert name in nodes["t0"]


@needs_dot
def test_digraph_displays_inline_in_jupyter() -> None:
    y, _, _ = small_expression()
    bundle = draw(y)._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")


def test_without_dot_the_gv_is_written_and_the_error_says_how_to_install(tmp_path, monkeypatch) -> None:
    hide_dot(monkeypatch, tmp_path)
    y, _, _ = small_expression()
    graph = draw(y)
    with pytest.raises(GraphvizNotFound) as caught:
        save(graph, tmp_path / "g.svg")
    message = str(caught.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert str(tmp_path / "g.gv") in message and caught.value.source_path == tmp_path / "g.gv"
    assert (tmp_path / "g.gv").read_text() == graph.source
    assert listing(tmp_path) == ["g.gv", "no-dot-here"]  # no partial picture, no temp
    assert save(graph, tmp_path / "h.gv").read_text() == graph.source


def test_constants_can_be_left_out() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2 + 1).sum()
    full, lean = draw(y, legend=False).source, draw(y, legend=False, show_constants=False).source
    assert full.count("fillcolor=lightgrey") == 2 and "fillcolor=lightgrey" not in lean
    assert lean.count(" -> ") == full.count(" -> ") - 2  # the two constants' edges went with them


def test_a_gradient_with_a_graph_can_be_drawn():
    """dy/dx of y = sigmoid(x) is drawn as the backward pass computed it: g * (s * (1 - s)), s = sigmoid(x)."""
    import re

    pytest.importorskip("graphviz")
    from tinygrad_like import draw

    x = Tensor([0.5, -1.0], requires_grad=True, dtype=np.float64)
    x.sigmoid().backward(np.ones(2), create_graph=True)
    source = draw(x.grad).source
    assert re.findall(r'op\d+ \[label="(\w+)"', source) == ["sigmoid", "sub", "mul", "mul"]
    s = re.search(r't(\d+) \[label="sigmoid', source).group(1)
    assert len(re.findall(rf"t{s} -> op", source)) == 2  # s is used twice: in 1 - s and in s * (1 - s)


# ----------------------------------------------------------------------------------------------------------
# Training plots
# ----------------------------------------------------------------------------------------------------------


def test_plot_history_writes_a_png_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              small_digits: tuple[np.ndarray, np.ndarray]) -> None:
    Figure = pytest.importorskip("matplotlib.figure").Figure
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=2)
    result = blog.train(T.build_model(recipe, seed=0), x, y, recipe, test=(x, y), log=None, progress=False)
    viz.plot_history(result, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC
    old = (tmp_path / "curves.png").read_bytes()

    def interrupted(self: Any, target: Any, **options: Any) -> None:  # writes half a picture, then stops
        if hasattr(target, "write"):
            target.write(old[:100])
        else:
            Path(target).write_bytes(old[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        viz.plot_history(result, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes() == old  # the previous picture, whole; no temporary left
    assert listing(tmp_path) == ["curves.png"]


def test_plot_gradient_flow_writes_a_picture(small_digits, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = small_digits
    recipe = blog.blog_recipe(epochs=2)
    result = blog.train(T.build_model(recipe, seed=0), x, y, recipe, log=None, progress=False)
    path = tmp_path / "flow.png"
    viz.plot_gradient_flow(result, path)
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    assert listing(tmp_path) == ["flow.png"]
