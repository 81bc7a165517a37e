"""Seeing what autodiff does: drawings of computation graphs (graph.py: ``draw(tensor) -> graphviz.Digraph`` and
``save(graph, path)``) and plots of a training run with its gradient flow (plots.py).

graph.py needs the ``graphviz`` package, so it loads on first use of one of its names.
"""

import importlib
from typing import Any

from .plots import plot_gradient_flow, plot_history

_GRAPH_NAMES = ("INSTALL_HINT", "LEGEND", "RANKDIRS", "RENDERED_FORMATS", "SOURCE_FORMATS", "GraphvizNotFound", "draw",
                "report_verdicts", "save")


def __getattr__(name: str) -> Any:
    if name in _GRAPH_NAMES:
        return getattr(importlib.import_module(".graph", __name__), name)
    raise AttributeError(f"module 'tinygrad_like.viz' has no attribute {name!r}")


__all__ = [*_GRAPH_NAMES, "plot_gradient_flow", "plot_history"]
