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

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..engine import walk
from ..tensors import Tensor
from .graph import LEGEND, GraphParts, collapsed_calls, graph_parts
from .page import notebook_frame, page_with, write_page

__all__ = ["BackwardPass", "BackwardStep", "HTMLGraph", "backward_pass", "show", "to_html"]

SMALL = 16  # tensors with at most this many elements show every value; bigger ones a summary and a histogram
BINS = 20  # histogram bars of a summary
DIGITS = 4  # significant digits of every number on the page


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
    if not np.isfinite(v):
        return str(v)  # "nan", "inf", "-inf"
    return float(f"{v:.{DIGITS}g}")


def _summary(a: np.ndarray) -> dict[str, Any]:
    """``n``, ``mean``, ``min``, ``max``, ``norm`` (rounded; over the finite values, with ``nonfinite`` counting
    the others) and either ``values`` (all of them, flat, when at most ``SMALL``) or ``hist``: ``BINS`` counts
    between ``lo`` and ``hi``."""
    a = np.asarray(a)
    out: dict[str, Any] = {"n": int(a.size)}
    if a.size <= SMALL:
        out["values"] = [_round(v) for v in a.reshape(-1).tolist()]
    x = a.astype(np.float64).reshape(-1)
    finite = x[np.isfinite(x)]
    if finite.size < x.size:
        out["nonfinite"] = int(x.size - finite.size)
    if finite.size:
        out.update(mean=_round(finite.mean()), min=_round(finite.min()), max=_round(finite.max()),
                   norm=_round(float(np.sqrt(np.dot(finite, finite)))))
        if a.size > SMALL:
            counts, edges = np.histogram(finite, bins=BINS)
            out["hist"] = {"lo": _round(edges[0]), "hi": _round(edges[-1]), "counts": counts.tolist()}
    return out


# ----------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------


def _view_data(parts: GraphParts, walk: BackwardPass) -> dict[str, Any]:
    """The JSON the page's script reads: nodes, module clusters, every edge's gradient, the steps, the legend.

    Each gradient sent along an edge is stored once, in ``contributions``; nodes (``recv``) and steps (``sent``)
    refer to it by its index.
    """
    contributions: list[dict[str, Any]] = []
    received: list[list[int]] = [[] for _ in parts.order]
    steps = []
    for step in walk.steps:
        sent = []
        for k, j, g in step.sent:
            received[j].append(len(contributions))
            sent.append(len(contributions))
            contributions.append({"from": step.node, "pos": k, "to": j, "grad": _summary(g)})
        steps.append({"node": step.node, "sent": sent})
    index = {id(t): i for i, t in enumerate(parts.order)}
    nodes = []
    for i, t in enumerate(parts.order):
        verdict = parts.verdicts[i]
        nodes.append({
            "title": parts.titles[i], "name": parts.names[i], "cat": parts.categories[i],
            "op": t.grad_fn.label() if t.grad_fn is not None else None,
            "shape": list(t.shape), "dtype": str(t.dtype), "cluster": parts.owner[i],
            "inputs": [index[id(x)] for x in t.grad_fn.inputs] if t.grad_fn is not None else [],
            "value": _summary(t.data),
            "grad": None if walk.grads[i] is None else _summary(walk.grads[i]),
            "recv": received[i],
            "verdict": None if verdict is None else {"rel": _round(verdict[0]), "agrees": verdict[1],
                                                     "cause": verdict[2]},
        })
    clusters = [{"label": label, "parent": parent, "size": len(members)} for label, members, parent in parts.clusters]
    return {
        "nodes": nodes, "clusters": clusters, "contributions": contributions, "steps": steps,
        "seededWithOnes": walk.seeded_with_ones, "collapsed": collapsed_calls(parts),
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

    Gradients are computed while the page is built (``backward_pass``), so ``tensor`` need not have been
    backpropagated, but its graph must not have been released (use ``backward(retain_graph=True)``). ``params``
    names leaves and ``report`` marks disagreeing parameters with their cause, as for ``draw``.
    """
    parts = graph_parts(tensor, params, report, caller="to_html")
    data = _view_data(parts, backward_pass(tensor, parts.order))
    out = parts.order[-1]
    title = f"tinygrad_like graph of {parts.titles[-1]} {tuple(out.shape)} {out.dtype}: {len(parts.order)} nodes"
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
