"""Computation graphs as graphviz drawings: ``draw(tensor) -> graphviz.Digraph`` and ``save(graph, path)``.

The drawing is the *forward* graph as recorded: tensors are boxes (records), the operations that made them
are ellipses between them, and the layers of an ``nn.Module`` are drawn as labelled clusters. Building the
DOT text needs only the ``graphviz`` Python package; rendering it to SVG/PNG/PDF needs Graphviz's ``dot``
program, and ``save`` says how to install it when it is missing.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from .. import nn
from .._files import atomic_write
from ..engine import ReleasedGraph, quiet, toposort
from ..tensors import Tensor
from .page import dot_to_html, notebook_frame

__all__ = ["EXPAND_LIMIT", "LEGEND", "Drawing", "GraphParts", "GraphvizNotFound", "collapsed_calls", "draw",
           "graph_parts", "report_verdicts", "save"]

# Category -> (fill colour, meaning). The order is the legend's order; ``draw``'s docstring repeats it.
LEGEND: dict[str, tuple[str, str]] = {
    "output": ("gold", "output (the drawn tensor)"),
    "parameter": ("palegreen", "parameter (named leaf, requires grad)"),
    "leaf": ("lightblue", "leaf that requires grad"),
    "constant": ("lightgrey", "input or constant (no grad)"),
    "intermediate": ("white", "intermediate result"),
    "op": ("lightyellow", "operation"),
    "disagrees": ("salmon", "parameter whose gradients disagree"),
    "collapsed": ("lavender", "collapsed module call: path (type) -> output shape"),
}

Verdict = tuple[float, bool, str | None]  # a parameter's max relative gradient difference, agreement, cause

RENDERED_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg")
RANKDIRS = ("TB", "LR", "BT", "RL")  # graphviz's layout directions
EXPAND_LIMIT = 300  # nodes and boxes shown at most before module calls are collapsed (draw and the HTML view)
LABEL_CHARS = 60  # a name or op label longer than this is cut in the drawing; the node's tooltip holds all of it
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
    """One recorded module call: its output's index, the module, the indices of the nodes it holds and the index
    of the call enclosing it (in the list of calls, outer ones first)."""

    out: int
    module: nn.Module
    members: set[int]
    parent: int | None = None


def _module_calls(order: list[Tensor], index: dict[int, int]) -> list[_Call]:
    """The module calls whose outputs are in this graph, outer ones first, with the nodes each one made.

    A call's nodes are found walking back from its output. The walk stops at the tensors passed to it, at nodes
    made before the last of them (a call makes its nodes after its inputs exist; this catches inputs passed in a
    tuple or by keyword, which the tag does not hold) and at the outputs of other calls of the same module (an
    RNN cell's previous step): so each node is walked by the calls holding it only, not by every later one.
    """
    tagged: dict[int, list] = {}  # one call (its tag object) -> [module, inputs, indices of its outputs]
    for i, t in enumerate(order):
        for call in reversed(getattr(t.grad_fn, "module_calls", ())):  # set by nn.Module.__call__, innermost first
            tagged.setdefault(id(call), [*call, []])[2].append(i)
    outputs: dict[int, set[int]] = {}
    for module, _, outs in tagged.values():
        outputs.setdefault(id(module), set()).update(outs)
    calls = []
    for module, inputs, outs in tagged.values():
        given = {index[id(x)] for x in inputs if id(x) in index}  # an input the module ignored is not in the graph
        start = max((j for j in given if order[j].grad_fn is not None), default=-1)
        members = set().union(*(_members(order, index, i, given, start, outputs[id(module)] - set(outs))
                                for i in outs))
        if members:
            calls.append(_Call(max(outs), module, members))
    return sorted(calls, key=lambda c: (-len(c.members), c.out))  # stable: of two equal calls the outer stays first


def _members(order: list[Tensor], index: dict[int, int], out: int, given: set[int], start: int,
             same: set[int]) -> set[int]:
    """The nodes from ``out`` back to the ``given`` inputs, leaving out ops recorded at or before index ``start``
    and the outputs of other calls of the same module (``same``, the outputs of all its calls)."""
    members: set[int] = set()
    stack = [out]
    while stack:
        i = stack.pop()
        fn = order[i].grad_fn
        if i in members or i in given or (fn is not None and i <= start) or (i != out and i in same):
            continue
        members.add(i)
        if fn is not None:
            stack.extend(index[id(x)] for x in fn.inputs)
    return members


def _assign_clusters(calls: list[_Call], order: list[Tensor], index: dict[int, int]) -> list[int | None]:
    """``owner[i]``: the innermost call holding node ``i`` (an index into ``calls``), or None.

    An op belongs to the innermost call that made it. A leaf (a parameter, a constant) belongs to the innermost
    call holding all its uses, so a weight shared by the steps of an RNN sits beside them, not in one of them.
    Each call gets its ``parent`` and, as ``members``, the nodes it holds with its inner calls: a tree.
    """
    owner: list[int | None] = [None] * len(order)
    for k, call in enumerate(calls):  # outer calls first, inner ones override
        call.parent = owner[call.out]
        for i in call.members:
            if order[i].grad_fn is not None:
                owner[i] = k
    depth = _depths([c.parent for c in calls])
    uses: dict[int, int | None] = {}  # leaf -> the innermost call holding every op using it
    for i, t in enumerate(order):
        for x in t.grad_fn.inputs if t.grad_fn is not None else ():
            j = index[id(x)]
            if order[j].grad_fn is None:
                uses[j] = _common(uses[j], owner[i], calls, depth) if j in uses else owner[i]
    for j, k in uses.items():
        while k is not None and j not in calls[k].members:  # an input given to the call stays outside it
            k = calls[k].parent
        owner[j] = k
    for call in calls:
        call.members = set()
    for i, k in enumerate(owner):
        while k is not None:
            calls[k].members.add(i)
            k = calls[k].parent
    return owner


def _depths(parents: list[int | None]) -> list[int]:
    """How many calls enclose each call (0 for an outermost one); parents come before their children."""
    depth: list[int] = []
    for parent in parents:
        depth.append(0 if parent is None else depth[parent] + 1)
    return depth


def _common(a: int | None, b: int | None, calls: list[_Call], depth: list[int]) -> int | None:
    """The innermost call enclosing both calls ``a`` and ``b`` (None: only the top level does)."""
    while a != b:
        if a is None or b is None:
            return None
        if depth[a] >= depth[b]:
            a = calls[a].parent
        else:
            b = calls[b].parent
    return a


# ----------------------------------------------------------------------------------------------------------
# Names: parameters from ``params`` (or from the modules found in the graph), modules for cluster labels
# ----------------------------------------------------------------------------------------------------------


def _names(params: Mapping[str, Tensor] | nn.Module | None,
           calls: list[_Call]) -> tuple[dict[int, str], dict[int, str]]:
    """(id(tensor) -> name, id(module) -> name) from a module in ``params``, else from the outermost modules
    called in the graph; names in a ``params`` dict come on top."""
    covered: set[int] = set()  # the modules found so far, and all the modules inside them
    roots: list[nn.Module] = []
    for call in calls:  # outer calls first: a model's call covers all the modules inside it in one walk
        if id(call.module) not in covered:
            roots.append(call.module)
            covered.update(id(sub) for _, sub in call.module.named_modules())
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

# Text reaches a DOT label in three steps: ``_shown`` (control characters written out, cut to LABEL_CHARS), an
# escaping (backslashes doubled, and in a record its field separators), then ``_quote``.
_RECORD_ESCAPES = str.maketrans({c: "\\" + c for c in "\\{}|<>"})
_PLAIN_ESCAPES = str.maketrans({"\\": "\\\\"})  # outside records only the backslash is special
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PIECE = 8000  # Graphviz refuses a quoted string longer than 16,384 characters: longer ones go in pieces


def _printable(text: str) -> str:
    """``text`` with control characters written out as ``\\x00``: a NUL ends the string inside Graphviz."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _shown(text: str) -> str:
    """``text`` as a label shows it: printable, and cut to LABEL_CHARS characters (ending in an ellipsis)."""
    text = _printable(text)
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "\u2026"


def _plain(text: str) -> str:
    """Any text as a plain (not record) DOT label: shown, its backslashes escaped."""
    return _shown(text).translate(_PLAIN_ESCAPES)


def _tooltip(text: str) -> str | None:
    """The whole of a text that ``_shown`` cuts, escaped for a DOT tooltip; None when the label holds all of it."""
    return None if len(_printable(text)) <= LABEL_CHARS else _printable(text).translate(_PLAIN_ESCAPES)


def _quote(text: str) -> str:
    """A DOT double-quoted string of escaped label text; text longer than _PIECE goes in pieces joined by DOT's
    ``+``, never cut inside a backslash escape."""
    pieces, start = [], 0
    while True:
        end = min(start + _PIECE, len(text))
        trailing = len(text[start:end]) - len(text[start:end].rstrip("\\"))
        end -= trailing % 2 if end < len(text) else 0  # an odd backslash at the cut starts an escape: keep it whole
        pieces.append('"' + text[start:end].replace('"', '\\"') + '"')
        if end == len(text):
            return " + ".join(pieces)
        start = end


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
    fields = [_shown(title), f"{tuple(t.shape)} {_dtype_name(t.dtype)}"]
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


_PLAIN_SHAPES = ("op", "collapsed")  # categories drawn as an ellipse or a box3d, not a record


def _node_line(node_id: str, label: str, category: str, disagrees: bool = False, tooltip: str | None = None) -> str:
    """A node statement (``label`` and ``tooltip`` escaped); ``disagrees`` (or that category) gives it a red
    border."""
    attrs = f"label={_quote(label)} fillcolor={LEGEND[category][0]}"
    if tooltip is not None:
        attrs += f" tooltip={_quote(tooltip)}"
    if category == "op":
        attrs += " shape=ellipse"
    elif category == "collapsed":
        attrs += " shape=box3d"
    if disagrees or category == "disagrees":
        attrs += " color=red penwidth=2"
    return f"\t{node_id} [{attrs}]\n"


def _module_kind(module: nn.Module) -> str:
    """The module's type and settings, e.g. ``Linear(4, 3)``."""
    return type(module).__name__ + (f"({module.extra_repr()})" if module.extra_repr() else "")


def _legend(categories: Iterable[str], vertical_fields: bool) -> graphviz.Digraph:
    """One sample node per colour used, chained by invisible edges so they line up in the legend's order."""
    legend = graphviz.Digraph(name="cluster_legend", graph_attr={"label": "legend", "style": "rounded"})
    shown = [c for c in LEGEND if c in categories]
    for category in shown:
        text = LEGEND[category][1]
        if category not in _PLAIN_SHAPES:  # a record: its special characters are escaped, its fields laid out
            text = text.translate(_RECORD_ESCAPES) if vertical_fields else "{" + text.translate(_RECORD_ESCAPES) + "}"
        legend.body.append(_node_line(f"legend_{category}", text, category))
    legend.body.extend(f"\tlegend_{a} -> legend_{b} [style=invis]\n" for a, b in zip(shown, shown[1:]))
    return legend


def draw(tensor: Tensor, params: Mapping[str, Tensor] | nn.Module | None = None, show_data: bool = True,
         show_grad: bool = True, rankdir: str = "LR", report: Any = None, *, clusters: bool = True,
         legend: bool = True, max_values: int = 8, show_constants: bool = True,
         collapse: bool | int | None = None) -> graphviz.Digraph:
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
    - lavender 3-D box: a collapsed module call, ``blocks.0 (Block) -> (4, 8, 32)`` (its path, type and output
      shape) and how many ops it hides

    Big graphs (a GPT's forward records thousands of ops) are drawn with module calls collapsed: each collapsed
    call is one box, with edges from the tensors entering it (its parameters are hidden inside; inputs from
    outside stay) and to the ops using what it made (its output and anything else that leaves it).

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
        collapse: which module calls are drawn as one box. None (the default): by size, as the HTML view opens
            a graph: everything open up to ``EXPAND_LIMIT`` (300) nodes, else the outer levels of calls open as
            far as that limit allows (see ``collapsed_calls``). True: every outermost call is a box. An int
            ``n``: the ``n`` outer levels of calls stay open and calls nested ``n`` deep are boxes (``1`` opens
            the model's call and shows each layer it calls as a box, ``0`` is True). False: nothing collapsed.
            Only with ``clusters=True``.

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
    if not (collapse is None or isinstance(collapse, bool | int | np.integer)):
        raise TypeError(f"draw: collapse must be None, True, False or a nesting depth, got {type(collapse).__name__}")
    if collapse is not None and collapse < 0:
        raise ValueError(f"draw: collapse must be None, True, False or a nesting depth of at least 0, got {collapse}")
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
    box = _hidden_in(shown, collapsed_calls(parts, collapse) if clusters else [])
    bodies = _cluster_bodies(shown, box)
    used, edges = _add_nodes(graph, parts, owner, box, bodies, style)
    _add_boxes(graph, parts, box, bodies, used)
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
    indices each call holds (its inner calls' too) and the index of the enclosing cluster (or None); ``owner[i]``
    is the innermost cluster holding node ``i`` (or None). ``boxes`` label each call drawn collapsed, e.g.
    ``blocks.0 (Block) -> (4, 8, 32)``: the module's name and type, and its output's shape.
    """

    order: list[Tensor]
    titles: list[str]
    categories: list[str]
    names: list[str | None]
    verdicts: list[Verdict | None]
    clusters: list[tuple[str, set[int], int | None]]
    owner: list[int | None]
    boxes: list[str] = field(default_factory=list)


def graph_parts(tensor: Tensor, params: Mapping[str, Tensor] | nn.Module | None = None, report: Any = None,
                caller: str = "draw") -> GraphParts:
    """The nodes, names, colours, verdicts and module clusters of the graph behind ``tensor``, as ``draw``
    computes them (``params`` and ``report`` as for ``draw``; ``caller`` names the function in errors)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{caller}: expects a Tensor, got {type(tensor).__name__}")
    order = _topological(tensor, caller)
    index = {id(t): i for i, t in enumerate(order)}
    calls = _module_calls(order, index)
    tensor_names, module_names = _names(params, calls)
    owner = _assign_clusters(calls, order, index)
    diffs = report_verdicts(report)
    names = [tensor_names.get(id(t)) for t in order]
    verdicts = [diffs.get(name) if name is not None else None for name in names]
    kinds = [(module_names.get(id(c.module)), _module_kind(c.module)) for c in calls]
    return GraphParts(
        order=order,
        titles=[_title(t, name) for t, name in zip(order, names)],
        categories=[_category(t, name, i == len(order) - 1, diff)
                    for i, (t, name, diff) in enumerate(zip(order, names, verdicts))],
        names=names,
        verdicts=verdicts,
        clusters=[(f"{name}: {kind}" if name else kind, c.members, c.parent) for c, (name, kind) in zip(calls, kinds)],
        owner=owner,
        boxes=[f"{name} ({kind})" if name else kind for name, kind in kinds],
    )


def collapsed_calls(parts: GraphParts, collapse: bool | int | None = None) -> list[bool]:
    """Which module calls (``parts.clusters``) are collapsed, each drawn as one box (with what it encloses).

    - ``False``: none.
    - ``True`` or ``0``: every outermost call.
    - ``n``: the calls nested ``n`` calls deep; the ``n`` outer levels stay open (``1`` opens the model's call and
      shows each layer it calls as a box).
    - ``None``: by size, the rule both ``draw`` and the HTML view use. All start collapsed; then, level by level
      from the outside, every call of a level is opened while at most ``EXPAND_LIMIT`` nodes and boxes are shown
      (so a graph of up to that many nodes is fully expanded). A level with a call holding most of the graph
      (the model itself, the Sequential of a GPT's blocks) is always opened: as one box it would hide everything.
    """
    clusters = parts.clusters
    depth = _depths([parent for _, _, parent in clusters])
    if collapse is not None:
        level = 0 if collapse is True else len(clusters) if collapse is False else collapse
        return [d >= level for d in depth]
    inside = [0] * len(clusters)  # what each cluster shows when open: its own nodes and its child clusters' boxes
    for k in [k for k in parts.owner if k is not None] + [p for _, _, p in clusters if p is not None]:
        inside[k] += 1
    collapsed = [True] * len(clusters)
    shown = parts.owner.count(None) + depth.count(0)
    for level in range(max(depth, default=-1) + 1):
        opened = [k for k in range(len(clusters)) if depth[k] == level]
        grow = sum(inside[k] - 1 for k in opened)
        most = any(2 * len(clusters[k][1]) > len(parts.order) for k in opened)
        if shown + grow > EXPAND_LIMIT and not most:
            break
        for k in opened:
            collapsed[k] = False
        shown += grow
    return collapsed


def _hidden_in(clusters: list[tuple[str, set[int], int | None]], collapsed: list[bool]) -> list[int | None]:
    """Per cluster: the outermost collapsed call it is drawn in as one box (itself, an enclosing call) or None."""
    box: list[int | None] = []
    for k, (_, _, parent) in enumerate(clusters):  # parents come first
        outer = None if parent is None else box[parent]
        box.append(outer if outer is not None else k if collapsed[k] else None)
    return box


def _add_nodes(graph: graphviz.Digraph, parts: GraphParts, owner: list[int | None], box: list[int | None],
               bodies: list[graphviz.Digraph | None], style: _Style) -> tuple[set[str], list[str]]:
    """Append every shown tensor and op node to its cluster's body; return the categories used and the edge lines.

    A node hidden in a collapsed call is drawn as the call's box ``c<k>``: edges into the box come from the
    tensors entering it, edges out of it go to the ops using what it made; each such edge is drawn once.
    """
    used: set[str] = set()
    edges: list[str] = []
    seen: set[str] = set()
    index = {id(t): i for i, t in enumerate(parts.order)}
    drawn_as = [None if k is None else box[k] for k in owner]
    for i, t in enumerate(parts.order):
        category = parts.categories[i]
        if category == "constant" and not style.show_constants:
            continue
        hidden = drawn_as[i]
        if hidden is None:
            body = graph.body if owner[i] is None else bodies[owner[i]].body
            title = parts.titles[i]
            body.append(_node_line(f"t{i}", _tensor_label(t, title, parts.verdicts[i], style), category,
                                   tooltip=_tooltip(title)))
            used.add(category)
            if t.grad_fn is not None:
                body.append(_node_line(f"op{i}", _plain(_op_label(t)), "op", tooltip=_tooltip(_op_label(t))))
                used.add("op")
        if t.grad_fn is None:
            continue
        target = f"op{i}" if hidden is None else f"c{hidden}"
        for x in t.grad_fn.inputs:
            if not (style.show_constants or x.requires_grad or x.grad_fn is not None):
                continue
            j = index[id(x)]
            source = f"t{j}" if drawn_as[j] is None else f"c{drawn_as[j]}"
            line = f"\t{source} -> {target}\n"
            if source == target or (line in seen):
                continue
            if "c" in (source[0], target[0]):  # a box meets the same tensor or op once, however many edges it hides
                seen.add(line)
            edges.append(line)
        if hidden is None:
            edges.append(f"\top{i} -> t{i}\n")
    return used, edges


def _add_boxes(graph: graphviz.Digraph, parts: GraphParts, box: list[int | None],
               bodies: list[graphviz.Digraph | None], used: set[str]) -> None:
    """One box per outermost collapsed call, in the cluster enclosing it (red-bordered when it hides a parameter
    whose gradients disagree); adds the categories it shows to ``used``."""
    for k in [k for k, hidden in enumerate(box) if hidden == k]:
        _, members, parent = parts.clusters[k]
        out = parts.order[max(members)]  # the call's output: the last node it made
        ops = sum(parts.order[i].grad_fn is not None for i in members)
        call = f"{parts.boxes[k]} -> {tuple(out.shape)}"
        label = f"{_plain(call)}\\n{ops} op{'s' if ops != 1 else ''}"  # a plain label: \n breaks the line
        disagrees = any(parts.categories[i] == "disagrees" for i in members)  # a wrong gradient inside shows
        (graph if parent is None else bodies[parent]).body.append(
            _node_line(f"c{k}", label, "collapsed", disagrees, tooltip=_tooltip(call)))
        used.update(("collapsed", "disagrees") if disagrees else ("collapsed",))


def _cluster_bodies(clusters: list[tuple[str, set[int], int | None]],
                    box: list[int | None]) -> list[graphviz.Digraph | None]:
    """An empty labelled cluster per open module call (``GraphParts.clusters``, outer ones first; None for the
    collapsed ones); nested ones alternate shades so the nesting shows."""
    bodies: list[graphviz.Digraph | None] = []
    for (label, _, _), depth, hidden in zip(clusters, _depths([p for _, _, p in clusters]), box):
        if hidden is not None:
            bodies.append(None)
            continue
        body = graphviz.Digraph(name=f"cluster_{len(bodies)}", graph_attr={
            "label": graphviz.nohtml(_plain(label)),  # nohtml: graphviz would read a name in <...> as HTML
            "style": "rounded,filled", "fillcolor": "#f4f4f4" if depth % 2 else "#e8eef7", "color": "grey50",
            "fontname": "Helvetica", "fontsize": "11"})
        if _tooltip(label) is not None:  # in pieces (see _quote), which graphviz's own quoting does not make
            body.body.append(f"\ttooltip={_quote(_tooltip(label))}\n")
        bodies.append(body)
    return bodies


def _nest_clusters(graph: graphviz.Digraph, clusters: list[tuple[str, set[int], int | None]],
                   bodies: list[graphviz.Digraph | None]) -> None:
    """Put each open cluster in the one enclosing it, in the order of the calls. subgraph() copies lines, so a
    cluster gets its inner clusters before it is copied into its parent (children come after their parents)."""
    children: list[list[int]] = [[] for _ in clusters]
    top: list[int] = []
    for k in sorted(range(len(clusters)), key=lambda k: max(clusters[k][1])):  # by output: call order
        parent = clusters[k][2]
        if bodies[k] is not None:
            (top if parent is None else children[parent]).append(k)
    for k in reversed(range(len(clusters))):
        for child in children[k]:
            bodies[k].subgraph(bodies[child])
    for k in top:
        graph.subgraph(bodies[k])


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
