"""Computation graphs as graphviz drawings: ``draw(tensor) -> graphviz.Digraph`` and ``save(graph, path)``.

The drawing is the *forward* graph as recorded: tensors are boxes (records), the operations that made them
are ellipses between them, and the layers of an ``nn.Module`` are drawn as labelled clusters. Building the
DOT text needs only the ``graphviz`` Python package; rendering it to SVG/PNG/PDF needs Graphviz's ``dot``
program, and ``save`` says how to install it when it is missing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from .. import nn
from .._files import atomic_write
from ..engine import ReleasedGraph, quiet, toposort
from ..tensors import Tensor
from .page import dot_to_html, notebook_frame

__all__ = ["LEGEND", "Drawing", "GraphParts", "GraphvizNotFound", "draw", "graph_parts", "report_verdicts", "save"]

# Category -> (fill colour, meaning). The order is the legend's order; ``draw``'s docstring repeats it.
LEGEND: dict[str, tuple[str, str]] = {
    "output": ("gold", "output (the drawn tensor)"),
    "parameter": ("palegreen", "parameter (named leaf, requires grad)"),
    "leaf": ("lightblue", "leaf that requires grad"),
    "constant": ("lightgrey", "input or constant (no grad)"),
    "intermediate": ("white", "intermediate result"),
    "op": ("lightyellow", "operation"),
    "disagrees": ("salmon", "parameter whose gradients disagree"),
}

Verdict = tuple[float, bool, str | None]  # a parameter's max relative gradient difference, agreement, cause

RENDERED_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg")
RANKDIRS = ("TB", "LR", "BT", "RL")  # graphviz's layout directions
SOURCE_FORMATS = ("gv", "dot")

INSTALL_HINT = """install Graphviz, for example:
  Debian/Ubuntu:  sudo apt-get install graphviz
  macOS:          brew install graphviz
  conda:          conda install -c conda-forge graphviz
  Windows:        winget install graphviz"""


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program is not on PATH, so a picture could not be rendered.

    ``source_path`` is the ``.gv`` file that was written anyway (render it later with ``dot``).
    """

    def __init__(self, target: Path, source_path: Path) -> None:
        self.target, self.source_path = target, source_path
        fmt = target.suffix.lstrip(".").lower()
        super().__init__(
            f"cannot render {target}: Graphviz's `dot` program was not found on PATH;\n{INSTALL_HINT}\n"
            f"The DOT source was still written to {source_path}; once Graphviz is installed, render it with\n"
            f"  dot -T{fmt} {source_path} -o {target}"
        )


# ----------------------------------------------------------------------------------------------------------
# Walking the graph
# ----------------------------------------------------------------------------------------------------------


def _topological(root: Tensor, caller: str = "draw") -> list[Tensor]:
    """The engine's toposort, refusing a graph that backward() released (nothing is left to draw there)."""
    order = toposort(root)
    for t in order:
        if type(t.grad_fn) is ReleasedGraph:
            raise RuntimeError(
                f"{caller}: the graph through '{t.grad_fn.name}' (output shape {t.shape}) was released by backward(); "
                "draw before backward(), or call backward(retain_graph=True) to draw the graph with its gradients"
            )
    return order


@dataclass
class _Call:
    """One recorded module call: its output's index, the module, and the indices of the nodes it made."""

    out: int
    module: nn.Module
    members: set[int]
    parent: _Call | None = None


def _module_calls(order: list[Tensor], index: dict[int, int]) -> list[_Call]:
    """The module calls whose outputs are in this graph, with the nodes each one made (back to its inputs)."""
    calls = []
    for i, t in enumerate(order):
        for module, inputs in getattr(t.grad_fn, "module_calls", ()):  # tagged by nn.Module.__call__
            calls.append(_Call(i, module, _members(t, {id(x) for x in inputs}, index)))
    return calls


def _members(out: Tensor, stop: set[int], index: dict[int, int]) -> set[int]:
    members: set[int] = set()
    stack = [out]
    while stack:
        t = stack.pop()
        i = index[id(t)]
        if id(t) in stop or i in members:
            continue
        members.add(i)
        stack.extend(t.grad_fn.inputs if t.grad_fn is not None else ())
    return members


def _assign_clusters(calls: list[_Call]) -> dict[int, _Call]:
    """Node index -> innermost call that made it; also links each call to the call that encloses it."""
    owner: dict[int, _Call] = {}
    for call in sorted(calls, key=lambda c: (-len(c.members), c.out)):  # outer calls first, inner ones override
        call.parent = owner.get(call.out)
        for i in call.members:
            owner[i] = call
    return owner


# ----------------------------------------------------------------------------------------------------------
# Names: parameters from ``params`` (or from the modules found in the graph), modules for cluster labels
# ----------------------------------------------------------------------------------------------------------


def _names(params: Mapping[str, Tensor] | nn.Module | None,
           calls: list[_Call]) -> tuple[dict[int, str], dict[int, str]]:
    """(id(tensor) -> name, id(module) -> name) from a module in ``params``, else from the outermost modules
    called in the graph; names in a ``params`` dict come on top."""
    modules = {id(c.module): c.module for c in calls}
    inner = {id(sub) for m in modules.values() for name, sub in m.named_modules() if name}
    roots = [m for key, m in modules.items() if key not in inner]
    if isinstance(params, nn.Module):
        roots = [params]
    tensor_names: dict[int, str] = {}
    module_names: dict[int, str] = {}
    for root in roots:
        module_names.update((id(m), name) for name, m in root.named_modules())
        tensor_names.update((id(p), name) for name, p in root.named_parameters())
    if isinstance(params, Mapping):
        for name, p in params.items():
            if not isinstance(p, Tensor):
                raise TypeError(f"draw: params[{name!r}] is a {type(p).__name__}, not a Tensor")
            tensor_names[id(p)] = name
    elif params is not None and not isinstance(params, nn.Module):
        raise TypeError(f"draw: params must be a dict of name -> Tensor or an nn.Module, got {type(params).__name__}")
    return tensor_names, module_names


def report_verdicts(report: Any) -> dict[str, Verdict]:
    """Entry name -> (max relative difference, agrees, cause or None), from a report or a mapping.

    The interface a report offers drawings: ``report.entries``, each with ``name``, ``max_rel`` (hand-written vs
    autograd), ``fd_max_rel`` (finite differences vs autograd), ``agree``, ``fd_agree`` and ``cause`` (a
    sentence or None), as the gradient comparisons give them. A mapping of
    name -> (max rel diff, agrees) works too.
    """
    if report is None:
        return {}
    entries = getattr(report, "entries", None)
    if not isinstance(report, Mapping) and entries is not None:
        return {e.name: (max(e.max_rel, e.fd_max_rel), e.agree and e.fd_agree, e.cause) for e in entries}
    if not isinstance(report, Mapping):
        raise TypeError(
            "draw: report must have .entries (a GradientReport) or be a mapping of name -> (max rel diff, agrees), "
            f"got {type(report).__name__}"
        )
    verdicts = {}
    for name, value in report.items():
        try:
            rel, agrees = value
        except (TypeError, ValueError):
            raise TypeError(f"draw: report[{name!r}] must be a pair (max rel diff, agrees), got {value!r}") from None
        verdicts[str(name)] = (float(rel), bool(agrees), None)
    return verdicts


# ----------------------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------------------

_RECORD_ESCAPES = str.maketrans({c: "\\" + c for c in "\\{}|<>"})


def _quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace('"', '\\"') + '"'


def _number(v: Any) -> str:
    return format(v, ".4g") if isinstance(v, float) else str(v)


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _number(values)


def _values(a: np.ndarray, max_values: int) -> str:
    """All values of a small array, a mean/min/max summary of a big one."""
    if a.size <= max_values:
        return _nested(a.tolist())
    if a.dtype.kind == "b":
        return f"{int(a.sum())} of {a.size} true"
    with quiet():  # a summary of inf/nan data shows inf/nan; it must not warn
        mean, low, high = float(a.mean()), a.min().item(), a.max().item()
    return f"mean {_number(mean)}, min {_number(low)}, max {_number(high)}"


def _op_label(t: Tensor) -> str:
    return t.grad_fn.label()  # each rule says how it is drawn (``T`` for a transpose, ``clip(0, 1)``, ...)


def _title(t: Tensor, name: str | None) -> str:
    """A node's first line: its op, else its parameter name, else what kind of leaf it is."""
    return _op_label(t) if t.grad_fn is not None else (name or _leaf_title(t))


@dataclass
class _Style:
    """The options of one drawing."""

    show_data: bool
    show_grad: bool
    max_values: int
    vertical_fields: bool  # records stack their fields top to bottom (left-to-right layouts need no braces)
    show_constants: bool = True


@functools.cache
def _dtype_name(dtype: np.dtype) -> str:
    return str(dtype)  # cached: str(dtype) costs more than the rest of a label in a 100,000-node drawing


def _tensor_label(t: Tensor, title: str, diff: Verdict | None, style: _Style) -> str:
    fields = [title, f"{tuple(t.shape)} {_dtype_name(t.dtype)}"]
    if style.show_data:
        fields.append(("data " if t.size <= style.max_values else "") + _values(t.data, style.max_values))
    if style.show_grad and t.grad is not None:
        fields.append("grad " + _values(t.grad.data, style.max_values))
    if diff is not None:
        rel, agrees, cause = diff
        verdict = "ok" if agrees else "DISAGREES" + (f" ({cause})" if cause else "")
        fields.append(f"grad rel diff {rel:.3g} {verdict}")
    body = "|".join(f.translate(_RECORD_ESCAPES) for f in fields)
    return body if style.vertical_fields else "{" + body + "}"


def _category(t: Tensor, name: str | None, is_output: bool, diff: Verdict | None) -> str:
    if diff is not None and not diff[1]:
        return "disagrees"
    if is_output:
        return "output"
    if t.grad_fn is not None:
        return "intermediate"
    if not t.requires_grad:
        return "constant"
    return "parameter" if name is not None else "leaf"


def _leaf_title(t: Tensor) -> str:
    if t.requires_grad:
        return "leaf"
    return "constant" if t.ndim == 0 else "input"


# ----------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------


def _node_line(node_id: str, label: str, category: str) -> str:
    attrs = f"label={_quote(label)} fillcolor={LEGEND[category][0]}"
    if category == "op":
        attrs += " shape=ellipse"
    elif category == "disagrees":
        attrs += " color=red penwidth=2"
    return f"\t{node_id} [{attrs}]\n"


def _cluster_label(module: nn.Module, name: str | None) -> str:
    kind = type(module).__name__ + (f"({module.extra_repr()})" if module.extra_repr() else "")
    return f"{name}: {kind}" if name else kind


def _legend(categories: Iterable[str], vertical_fields: bool) -> graphviz.Digraph:
    """One sample node per colour used, chained by invisible edges so they line up in the legend's order."""
    legend = graphviz.Digraph(name="cluster_legend", graph_attr={"label": "legend", "style": "rounded"})
    shown = [c for c in LEGEND if c in categories]
    for category in shown:
        text = LEGEND[category][1].translate(_RECORD_ESCAPES)
        label = text if vertical_fields or category == "op" else "{" + text + "}"
        legend.body.append(_node_line(f"legend_{category}", label, category))
    legend.body.extend(f"\tlegend_{a} -> legend_{b} [style=invis]\n" for a, b in zip(shown, shown[1:]))
    return legend


def draw(tensor: Tensor, params: Mapping[str, Tensor] | nn.Module | None = None, show_data: bool = True,
         show_grad: bool = True, rankdir: str = "LR", report: Any = None, *, clusters: bool = True,
         legend: bool = True, max_values: int = 8, show_constants: bool = True) -> graphviz.Digraph:
    """Draw the computation graph that made ``tensor`` as a ``graphviz.Digraph`` (shows inline in Jupyter).

    Tensors are boxes listing their op (or leaf name), shape and dtype, then their values and gradient when
    they have at most ``max_values`` elements, else a ``mean, min, max`` summary. Operations are ellipses
    between their inputs and their result; a transpose (``permute`` reversing all axes) reads ``T``.
    Nodes are numbered in topological order (``t0``, ``t1``, ... and ``op<i>`` for the op that made
    ``t<i>``), so the same expression always gives the same DOT text.

    Colour legend (also drawn as a small ``legend`` cluster unless ``legend=False``):

    - gold: the output, the tensor drawn
    - palegreen: parameter, a leaf that requires grad and is named by ``params``
    - lightblue: any other leaf that requires grad
    - lightgrey: input or constant, a leaf without grad
    - white: intermediate result
    - lightyellow ellipse: an operation
    - salmon with a red border: a parameter whose gradients disagree in ``report``

    Args:
        tensor: the result to draw back from.
        params: names for leaves: a dict of name -> Tensor, or an ``nn.Module`` (names like
            ``layers.0.weight``). Without a module, the outermost modules called in the graph name their
            parameters (a dict's names take precedence).
        show_data, show_grad: show values (or summaries) and gradients. Gradients exist only after
            ``backward()``; since backward releases the graph, draw after ``backward(retain_graph=True)``.
        rankdir: graphviz layout direction, ``"LR"`` (left to right), ``"TB"``, ``"RL"`` or ``"BT"``.
        report: a ``GradientReport`` (see ``report_verdicts`` for what is read) or a mapping of parameter
            name -> (max relative difference, agrees); every named parameter in it shows its difference, and
            those that disagree are highlighted (with the report's computed cause).
        clusters: draw each recorded ``nn.Module`` call (e.g. each Linear layer) as a labelled cluster.
        legend: draw the colour legend.
        max_values: tensors with at most this many elements show all their values.
        show_constants: False leaves out the inputs and constants (leaves without grad) and their edges, so a
            big graph shows only what is differentiated.

    Returns:
        The ``graphviz.Digraph`` (a ``Drawing``: in Jupyter it shows inline even without ``dot``); ``.source`` is
        the DOT text, ``save(graph, "graph.svg")`` writes a file.

    Raises:
        RuntimeError: the graph was released by ``backward()`` without ``retain_graph=True``.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw: rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if max_values < 0:
        raise ValueError(f"draw: max_values must be at least 0, got {max_values}")
    parts = graph_parts(tensor, params, report)
    style = _Style(show_data, show_grad, max_values, vertical_fields=rankdir in ("LR", "RL"),
                   show_constants=show_constants)
    graph = Drawing(
        name="tinygrad_like",
        graph_attr={"rankdir": rankdir, "nodesep": "0.2", "ranksep": "0.3"},
        node_attr={"shape": "record", "style": "filled", "fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"arrowsize": "0.6"},
    )
    shown = parts.clusters if clusters else []
    owner = parts.owner if clusters else [None] * len(parts.order)
    bodies = _cluster_bodies(shown)
    used, edges = _add_nodes(graph, parts, owner, bodies, style)
    _nest_clusters(graph, shown, bodies)
    graph.body.extend(edges)
    if legend:
        graph.subgraph(_legend(used, style.vertical_fields))
    return graph


class Drawing(graphviz.Digraph):
    """The ``graphviz.Digraph`` that ``draw`` returns: in Jupyter it shows inline with or without ``dot``.

    With Graphviz's ``dot`` on PATH the notebook gets the SVG as from any Digraph; without it (where a plain
    Digraph raises ``ExecutableNotFound``), it gets the same DOT text laid out in the browser by the
    WebAssembly Graphviz that the HTML view carries (``viz.dot_to_html``).
    """

    def _repr_mimebundle_(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                          **kwargs: Any) -> dict[str, Any]:
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except graphviz.ExecutableNotFound:
            return {"text/html": notebook_frame(dot_to_html(self.source))}


@dataclass
class GraphParts:
    """What ``draw`` shows of a graph, for other views of it (the HTML view): node ``i`` is ``order[i]``.

    ``order`` is the engine's toposort (inputs first, the output last); ``titles``, ``categories`` (keys of
    ``LEGEND``), ``names`` (parameter names or None) and ``verdicts`` (from ``report``, or None) are per node.
    ``clusters`` are the recorded module calls, outer ones first: ``(label, members, parent)`` with the node
    indices each call made and the index of the enclosing cluster (or None); ``owner[i]`` is the innermost
    cluster holding node ``i`` (or None).
    """

    order: list[Tensor]
    titles: list[str]
    categories: list[str]
    names: list[str | None]
    verdicts: list[Verdict | None]
    clusters: list[tuple[str, set[int], int | None]]
    owner: list[int | None]


def graph_parts(tensor: Tensor, params: Mapping[str, Tensor] | nn.Module | None = None, report: Any = None,
                caller: str = "draw") -> GraphParts:
    """The nodes, names, colours, verdicts and module clusters of the graph behind ``tensor``, as ``draw``
    computes them (``params`` and ``report`` as for ``draw``; ``caller`` names the function in errors)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{caller}: expects a Tensor, got {type(tensor).__name__}")
    order = _topological(tensor, caller)
    index = {id(t): i for i, t in enumerate(order)}
    calls = sorted(_module_calls(order, index), key=lambda c: (-len(c.members), c.out))  # outer ones first
    tensor_names, module_names = _names(params, calls)
    owner = _assign_clusters(calls)
    position = {id(call): k for k, call in enumerate(calls)}
    diffs = report_verdicts(report)
    names = [tensor_names.get(id(t)) for t in order]
    verdicts = [diffs.get(name) if name is not None else None for name in names]
    return GraphParts(
        order=order,
        titles=[_title(t, name) for t, name in zip(order, names)],
        categories=[_category(t, name, i == len(order) - 1, diff)
                    for i, (t, name, diff) in enumerate(zip(order, names, verdicts))],
        names=names,
        verdicts=verdicts,
        clusters=[(_cluster_label(c.module, module_names.get(id(c.module))), c.members,
                   None if c.parent is None else position[id(c.parent)]) for c in calls],
        owner=[position[id(owner[i])] if i in owner else None for i in range(len(order))],
    )


def _add_nodes(graph: graphviz.Digraph, parts: GraphParts, owner: list[int | None], bodies: list[graphviz.Digraph],
               style: _Style) -> tuple[set[str], list[str]]:
    """Append every tensor and op node to its cluster's body; return the categories used and the edge lines."""
    used: set[str] = set()
    edges: list[str] = []
    index = {id(t): i for i, t in enumerate(parts.order)}
    for i, t in enumerate(parts.order):
        category = parts.categories[i]
        if category == "constant" and not style.show_constants:
            continue
        body = graph.body if owner[i] is None else bodies[owner[i]].body
        body.append(_node_line(f"t{i}", _tensor_label(t, parts.titles[i], parts.verdicts[i], style), category))
        used.add(category)
        if t.grad_fn is not None:
            body.append(_node_line(f"op{i}", _op_label(t), "op"))
            used.add("op")
            edges.extend(f"\tt{index[id(x)]} -> op{i}\n" for x in t.grad_fn.inputs
                         if style.show_constants or x.requires_grad or x.grad_fn is not None)
            edges.append(f"\top{i} -> t{i}\n")
    return used, edges


def _cluster_bodies(clusters: list[tuple[str, set[int], int | None]]) -> list[graphviz.Digraph]:
    """An empty labelled cluster per module call (``GraphParts.clusters``, outer ones first); nested ones
    alternate shades so the nesting shows. A call's output is its last member in topological order."""
    bodies, depths = [], []
    for label, members, parent in clusters:
        depth = 0 if parent is None else depths[parent] + 1
        depths.append(depth)
        bodies.append(graphviz.Digraph(name=f"cluster_{max(members)}", graph_attr={
            "label": label, "style": "rounded,filled", "fillcolor": "#f4f4f4" if depth % 2 else "#e8eef7",
            "color": "grey50", "fontname": "Helvetica", "fontsize": "11"}))
    return bodies


def _nest_clusters(graph: graphviz.Digraph, clusters: list[tuple[str, set[int], int | None]],
                   bodies: list[graphviz.Digraph]) -> None:
    """Put each cluster in the one enclosing it; inner clusters go first, as subgraph() copies their lines."""
    for k in sorted(range(len(clusters)), key=lambda k: (len(clusters[k][1]), -max(clusters[k][1]))):
        parent = clusters[k][2]
        (bodies[parent] if parent is not None else graph).subgraph(bodies[k])


# ----------------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def save(graph: graphviz.Digraph, path: str | os.PathLike) -> Path:
    """Save a drawing; the format comes from the extension of ``path``.

    ``.gv`` / ``.dot`` write the DOT text, which needs no Graphviz installation. ``.svg``, ``.png``, ``.pdf``
    (and ``.jpg``) are rendered by Graphviz's ``dot``; the DOT text is written next to them as ``.gv`` first,
    so it survives when ``dot`` is missing, in which case ``GraphvizNotFound`` says how to install it.
    Returns the path written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save: cannot write {path}: the directory {path.parent} does not exist")
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in SOURCE_FORMATS + RENDERED_FORMATS:
        raise ValueError(
            f"save: cannot tell the format of {path}; use one of the extensions "
            + ", ".join("." + f for f in SOURCE_FORMATS + RENDERED_FORMATS)
        )
    source = graph.source.encode("utf-8")
    if fmt in SOURCE_FORMATS:
        _write_atomic(path, source)
        return path
    source_path = path.with_suffix(".gv")
    _write_atomic(source_path, source)
    try:
        picture = graph.pipe(format=fmt)  # in memory, so a failing dot leaves no partial picture behind
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFound(path, source_path) from None
    _write_atomic(path, picture)
    return path
