"""The graph in a browser: ``to_html(tensor) -> str``, one self-contained HTML file.

The page carries everything it needs: the graph as JSON (values and gradients rounded, big tensors summarised),
a WebAssembly build of Graphviz (viz.js, ``assets/viz-global.js``, which lays the graph out in the browser, so
neither the ``dot`` program nor a network is needed) and the page's own script (``assets/view.js``). It opens
from disk in any current browser and inline in Jupyter (``show``).

The step-through replays the engine's backward walk in Python while the page is built (``backward_pass``): the
rules run in the engine's order, on the gradients the engine would give them, and every gradient sent along an
edge is kept, so a node used twice shows both contributions and their sum.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..engine import quiet, walk
from ..tensors import Tensor
from .graph import LEGEND, GraphParts, _shown, collapsed_calls, graph_parts
from .page import notebook_frame, page_with, write_page

__all__ = ["BackwardPass", "BackwardStep", "HTMLGraph", "backward_pass", "show", "to_html"]

SMALL = 16  # tensors with at most this many elements show every value; bigger ones a summary and a histogram
BINS = 20  # histogram bars of a summary
DIGITS = 4  # significant digits of every number on the page
KEPT = 10_000  # nodes whose values and gradients a page keeps at most (see _kept): 100,000 ops stay ~10 MB
FOLD = 300  # nodes and boxes a module call (or the top level) shows at most before runs fold its middle
HEAD, TAIL = 25, 50  # the nodes and boxes that stay in view at the start and the end of a folded one
BATCH = 1 << 20  # values summarised together at most (see _summaries)
RUN, FAN = 100, 10  # nodes and boxes in a run (a box that opens on a click), runs in a run of runs
DRAW_LIMIT = 1500  # nodes and boxes the view draws at once at most: Graphviz (in WebAssembly) takes seconds for a
# few thousand, and a chain of some thousands overflows its stack


# ----------------------------------------------------------------------------------------------------------
# The backward pass, replayed with every edge's gradient kept
# ----------------------------------------------------------------------------------------------------------


@dataclass
class BackwardStep:
    """One rule run by the backward walk: node ``node`` (an index into ``BackwardPass.order``) gets ``grad``
    and sends ``sent``: ``(input position, input's node index, gradient)`` per input that needs a gradient."""

    node: int
    grad: np.ndarray
    sent: list[tuple[int, int, np.ndarray]]


@dataclass
class BackwardPass:
    """The engine's backward walk from ``order[-1]``, step by step.

    ``order`` is ``engine.toposort(root)``; ``steps`` are the rules in the order the engine runs them (reverse
    topological, nodes without a gradient skipped); ``grads[i]`` is node ``i``'s whole gradient (the sum of what
    its consumers sent, the seed for the root) or None; ``seeded_with_ones`` says the root has more than one
    element, so the walk started from ones, as ``root.sum().backward()`` would.
    """

    order: list[Tensor]
    steps: list[BackwardStep]
    grads: list[np.ndarray | None]
    seeded_with_ones: bool


def backward_pass(tensor: Tensor, order: list[Tensor] | None = None) -> BackwardPass:
    """Replay the engine's backward walk from ``tensor`` without touching any ``.grad``.

    The graph must not have been released: record it anew, or call ``backward(retain_graph=True)``. Each rule's
    ``backward`` runs on the gradient reaching it; gradients are summed back to each input's shape and cast to
    its dtype as the engine does, and added up at nodes used more than once. ``order``: the graph's toposort,
    when the caller already has it.
    """
    order = graph_parts(tensor, caller="backward_pass").order if order is None else order
    index = {id(t): i for i, t in enumerate(order)}
    grads: dict[int, np.ndarray] = {len(order) - 1: np.ones_like(tensor.data)}
    steps = []

    def record(node: Tensor, grad: np.ndarray, sent: list) -> None:
        steps.append(BackwardStep(index[id(node)], grad, [(k, index[id(x)], g) for k, x, g in sent]))
        for _, x, g in sent:
            j = index[id(x)]
            grads[j] = g if j not in grads else grads[j] + g

    if tensor.grad_fn is not None:
        walk([(tensor, grads[len(order) - 1])], visit=record)
    return BackwardPass(order, steps, [grads.get(i) for i in range(len(order))], tensor.size != 1)


# ----------------------------------------------------------------------------------------------------------
# Numbers for the page: rounded, non-finite ones as strings (JSON has no nan), big arrays summarised
# ----------------------------------------------------------------------------------------------------------


def _round(v: float | int | bool) -> float | int | bool | str:
    if isinstance(v, bool | int):
        return v
    if not math.isfinite(v):
        return str(v)  # "nan", "inf", "-inf"
    return float(f"{v:.{DIGITS}g}")


def _summary(a: np.ndarray) -> dict[str, Any]:
    """``n``, ``mean``, ``min``, ``max``, ``norm`` (rounded; over the finite values, with ``nonfinite`` counting
    the others) and either ``values`` (all of them, flat, when at most ``SMALL``) or ``hist``: ``BINS`` counts
    between ``lo`` and ``hi`` (``np.histogram``'s)."""
    return _summaries([a])[0]


def _summaries(arrays: Sequence[np.ndarray | None]) -> list[dict[str, Any] | None]:
    """``_summary`` of each array (None for None), computed for arrays of one size together, a few NumPy passes
    over them stacked as rows: a page summarises every node and edge, and one by one NumPy's cost per call was
    most of ``to_html``'s time. At most BATCH values are stacked at once."""
    out: list[dict[str, Any] | None] = [None] * len(arrays)
    sizes: dict[int, list[int]] = {}
    for k, a in enumerate(arrays):
        if a is not None:
            sizes.setdefault(np.size(a), []).append(k)
    for size, members in sizes.items():
        rows = max(1, BATCH // max(size, 1))
        for start in range(0, len(members), rows):
            chunk = members[start:start + rows]
            for k, summary in zip(chunk, _same_size([np.asarray(arrays[k]) for k in chunk])):
                out[k] = summary
    return out


def _same_size(arrays: list[np.ndarray]) -> list[dict[str, Any]]:
    """The summaries of arrays holding the same number of values."""
    x = np.stack([a.reshape(-1) for a in arrays]).astype(np.float64, copy=False)
    n = x.shape[1]
    with quiet():  # a norm past 1e154 overflows to inf, as NumPy's
        ok = np.isfinite(x)
        count = ok.sum(axis=1)
        low = np.min(x, axis=1, where=ok, initial=np.inf)
        high = np.max(x, axis=1, where=ok, initial=-np.inf)
        total = np.sum(x, axis=1, where=ok)
        norm = np.sqrt(np.sum(x * x, axis=1, where=ok))
        hist = _histograms(x, ok, low, high) if n > SMALL else None
    summaries = []
    for row, a in enumerate(arrays):
        summary: dict[str, Any] = {"n": n}
        if n <= SMALL:
            summary["values"] = [_round(v) for v in a.reshape(-1).tolist()]
        finite = int(count[row])
        if finite < n:
            summary["nonfinite"] = n - finite
        if finite:
            summary.update(mean=_round(float(total[row]) / finite), min=_round(float(low[row])),
                           max=_round(float(high[row])), norm=_round(float(norm[row])))
            if hist is not None:
                lo, hi, counts = hist
                summary["hist"] = {"lo": _round(float(lo[row])), "hi": _round(float(hi[row])),
                                   "counts": counts[row].tolist()}
        summaries.append(summary)
    return summaries


def _histograms(x: np.ndarray, ok: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
    """``np.histogram(row, BINS)`` of the finite values (``ok``) of each row of ``x`` (``low`` and ``high``: their
    extremes): (first edges, last edges, counts), with ``np.histogram``'s edges (``linspace``; one unit wide around
    a single value) and bins (each closed below, the last one on both sides)."""
    same = low == high
    lo, hi = np.where(same, low - 0.5, low)[:, None], np.where(same, high + 0.5, high)[:, None]
    scale = np.where(np.isfinite(hi - lo), 1.0, 0.5)  # a range past the largest float: halve every value
    lo_s, hi_s, xs = lo * scale, hi * scale, np.where(ok, x, low[:, None]) * scale
    step = (hi_s - lo_s) / BINS
    bins = np.clip(np.nan_to_num((xs - lo_s) / step), 0, BINS - 1).astype(np.intp)  # a first guess, then
    bins -= xs < bins * step + lo_s  # the edges decide, as np.histogram's do
    bins += (xs >= np.where(bins == BINS - 1, hi_s, (bins + 1) * step + lo_s)) & (bins != BINS - 1)
    rows = len(x)
    counts = np.bincount((np.arange(rows)[:, None] * BINS + bins)[ok], minlength=rows * BINS)
    return lo[:, 0], hi[:, 0], counts.reshape(rows, BINS)


# ----------------------------------------------------------------------------------------------------------
# Long graphs: runs folded into boxes, values kept for a bounded number of nodes
# ----------------------------------------------------------------------------------------------------------


def _runs(parts: GraphParts) -> tuple[list[dict[str, Any]], list[int | None], list[bool]]:
    """The clusters the page draws: the module calls of ``parts.clusters``, then runs, the page's answer to long
    graphs (a 20,000-op chain overflows Graphviz's stack, and would take minutes to lay out anyway).

    Where a call, or the top level, shows more than FOLD nodes and boxes, all but its first HEAD and last TAIL go
    into runs of RUN, and runs into runs of FAN runs while there are more than FAN, each drawn as one box
    ("19,800 more ops", nodes t120 to t39,919) that opens on a click. Returns every cluster (``label``,
    ``parent``, ``size``: the nodes it holds; a run also has ``box``, its collapsed text), each node's innermost
    cluster, and which start collapsed (the calls as ``collapsed_calls`` says, every run).
    """
    op = [t.grad_fn is not None for t in parts.order]
    clusters: list[dict[str, Any]] = [{"label": label, "parent": parent, "size": len(members)}
                                      for label, members, parent in parts.clusters]
    owner, collapsed = list(parts.owner), collapsed_calls(parts)
    # What a cluster (None: the top level) shows: (last node, first node, ops, nodes, node i or -1 - cluster k)
    shown: dict[int | None, list[tuple[int, int, int, int, int]]] = {}
    for i, k in enumerate(owner):
        shown.setdefault(k, []).append((i, i, op[i], 1, i))
    for k, (_, members, parent) in enumerate(parts.clusters):
        shown.setdefault(parent, []).append((max(members), min(members), sum(op[i] for i in members), len(members),
                                             -1 - k))

    def fold(items: list[tuple[int, int, int, int, int]]) -> tuple[int, int, int, int, int]:
        lasts, firsts, ops, sizes, refs = zip(*items)
        run = len(clusters)
        clusters.append({"label": f"t{min(firsts)} to t{max(lasts)}", "parent": None, "size": sum(sizes),
                         "box": f"{sum(ops):,} more ops" if any(ops) else f"{sum(sizes):,} more nodes"})
        collapsed.append(True)
        for ref in refs:
            if ref >= 0:
                owner[ref] = run
            else:
                clusters[-1 - ref]["parent"] = run
        return max(lasts), min(firsts), sum(ops), sum(sizes), -1 - run

    for container, items in shown.items():
        if len(items) <= FOLD:
            continue
        items.sort()
        middle = items[HEAD:len(items) - TAIL]
        level = [fold(middle[s:s + RUN]) for s in range(0, len(middle), RUN)]
        while len(level) > FAN:
            level = [fold(level[s:s + FAN]) for s in range(0, len(level), FAN)]
        for *_, ref in level:
            clusters[-1 - ref]["parent"] = container
    return clusters, owner, collapsed


def _kept(parts: GraphParts) -> tuple[list[bool], str | None]:
    """Which nodes the page keeps values and gradients for, and what it says of the others: all of them up to
    KEPT nodes; in a bigger graph the first and last KEPT // 2 (where the view opens: the inputs, the loss and
    the start of the backward pass) and the named parameters, so that the page stays a few megabytes."""
    n = len(parts.order)
    if n <= KEPT:
        return [True] * n, None
    half = KEPT // 2
    kept = [i < half or i >= n - half or name is not None for i, name in enumerate(parts.names)]
    return kept, (f"not kept: of this graph's {n:,} nodes the page keeps the values and gradients of the first and "
                  f"last {half:,} (in the order they were made) and of the named parameters")


# ----------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------


def _encoded(column: list[Any], show: Callable[[Any], Any] = lambda v: v) -> dict[str, list[Any]]:
    """A column of few distinct values as ``values`` (each once, through ``show``) and ``index`` (one per
    row): 100,000 nodes would repeat "intermediate" and "float32" 100,000 times."""
    distinct: dict[Any, int] = {}
    index = [distinct.setdefault(v, len(distinct)) for v in column]
    return {"values": [show(v) for v in distinct], "index": index}


def _view_data(parts: GraphParts, replay: BackwardPass) -> dict[str, Any]:
    """The JSON the page's script reads (see view.js, which unpacks it): the nodes by column, the clusters
    (module calls and runs), the backward steps, the legend.

    ``nodes``: ``title``, ``cat``, ``shape``, ``dtype``, ``cluster`` (each as ``_encoded``), ``inputs`` (node
    indices), ``value`` and ``grad`` (summaries; None where not kept, or for no gradient), and ``name`` and
    ``verdict`` by node index where there is one. ``steps``: ``[node, input position, ...]`` per rule run, in
    the engine's order, one position per input it sends a gradient to; ``sent``: the summary of each of those
    gradients, in the same order (None where the node receiving it is not kept).
    """
    clusters, owner, collapsed = _runs(parts)
    kept, omitted = _kept(parts)
    order = parts.order
    index = {id(t): i for i, t in enumerate(order)}
    steps, sent = [], []
    for step in replay.steps:
        steps.append([step.node, *(k for k, _, _ in step.sent)])
        sent.extend(g if kept[j] else None for _, j, g in step.sent)
    n = len(order)
    summaries = _summaries([t.data if keep else None for t, keep in zip(order, kept)]
                           + [g if keep else None for g, keep in zip(replay.grads, kept)] + sent)
    nodes = {
        "title": _encoded(parts.titles), "cat": _encoded(parts.categories),
        "shape": _encoded([t.shape for t in order]), "dtype": _encoded([t.dtype for t in order], str),
        "cluster": _encoded(owner),
        "inputs": [[index[id(x)] for x in t.grad_fn.inputs] if t.grad_fn is not None else [] for t in order],
        "value": summaries[:n], "grad": summaries[n:2 * n],
        "name": {i: name for i, name in enumerate(parts.names) if name is not None},
        "verdict": {i: {"rel": _round(v[0]), "agrees": v[1], "cause": v[2]}
                    for i, v in enumerate(parts.verdicts) if v is not None},
    }
    return {
        "nodes": nodes, "clusters": clusters, "collapsed": collapsed, "steps": steps, "sent": summaries[2 * n:],
        "seededWithOnes": replay.seeded_with_ones, "omitted": omitted, "drawLimit": DRAW_LIMIT,
        "legend": {category: list(entry) for category, entry in LEGEND.items()},
    }


def to_html(tensor: Tensor, path: str | os.PathLike | None = None,
            params: Mapping[str, Tensor] | nn.Module | None = None, report: Any = None) -> str:
    """The graph that made ``tensor`` as one self-contained HTML page (returned, and written to ``path``).

    The page needs no network and no ``dot``: Graphviz runs in the browser (WebAssembly), so the file opens from
    disk in Chromium or Firefox. Every node shows its op, shape and dtype; clicking one shows its values and its
    gradient (all values up to 16 elements, else mean/min/max/norm and a histogram) and what each consumer sent
    it. Module clusters collapse and expand (a click on the cluster; graphs of more than ``EXPAND_LIMIT`` (300)
    nodes open collapsed, by the rule of ``draw(collapse=None)``). ``next`` / ``previous`` / ``play`` step through
    the backward pass in the engine's order: which rule runs, the gradient it receives and what it sends to each
    input.

    Long graphs stay readable and the page small: where a module call (or the top level) holds more than 300
    nodes and boxes, its first 25 and last 50 stay in view and the ones between are folded into boxes ("19,800
    more ops") that open on a click, 100 nodes or 10 boxes at a time; the page draws at most ``DRAW_LIMIT``
    (1,500) nodes at once. A graph of more than ``KEPT`` (10,000) nodes keeps the values and gradients of its
    first and last 5,000 nodes and of its named parameters (the others show op, shape and dtype): 100,000 ops
    make a page of about 10 MB, written in a few seconds.

    Gradients are computed while the page is built (``backward_pass``), so ``tensor`` need not have been
    backpropagated, but its graph must not have been released (use ``backward(retain_graph=True)``). ``params``
    names leaves and ``report`` marks disagreeing parameters with their cause, as for ``draw``.
    """
    parts = graph_parts(tensor, params, report, caller="to_html")
    data = _view_data(parts, backward_pass(tensor, parts.order))
    out = parts.order[-1]
    title = (f"tinygrad_like graph of {_shown(parts.titles[-1])} {tuple(out.shape)} {out.dtype}: "
             f"{len(parts.order)} nodes")
    page = page_with("view.html", title, data)
    if path is not None:
        write_page(path, page, "to_html")
    return page


class HTMLGraph:
    """An HTML view that shows itself inline in Jupyter; ``.html`` is the page, ``save(path)`` writes it."""

    def __init__(self, page: str, height: int = 600) -> None:
        self.html, self.height = page, height

    def _repr_html_(self) -> str:
        return notebook_frame(self.html, self.height)

    def save(self, path: str | os.PathLike) -> Path:
        write_page(path, self.html, "HTMLGraph.save")
        return Path(path)


def show(tensor: Tensor, params: Mapping[str, Tensor] | nn.Module | None = None, report: Any = None,
         height: int = 600) -> HTMLGraph:
    """``to_html`` for a notebook: the last expression of a cell ``viz.show(loss)`` shows the view inline."""
    return HTMLGraph(to_html(tensor, params=params, report=report), height)
