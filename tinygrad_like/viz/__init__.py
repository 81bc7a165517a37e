"""Seeing what autodiff does: the graphviz drawing (graph.py: ``draw``, ``save``), the self-contained HTML view
that needs no ``dot`` program (html.py: ``to_html``, ``show``; page.py builds the pages), plots of a training
run with its gradient flow (plots.py), and a training run recorded step by step and played back in a page
(recorder.py: ``TrainingRecorder``).

graph.py and html.py need the ``graphviz`` package, so they load on first use of one of their names.
"""

import importlib
from typing import Any

from .plots import plot_gradient_flow, plot_history
from .recorder import TrainingRecorder

_LAZY = {
    "graph": ("EXPAND_LIMIT", "INSTALL_HINT", "LEGEND", "RANKDIRS", "RENDERED_FORMATS", "SOURCE_FORMATS", "Drawing",
              "GraphParts", "GraphvizNotFound", "collapsed_calls", "draw", "graph_parts", "report_verdicts", "save"),
    "html": ("BackwardPass", "BackwardStep", "HTMLGraph", "backward_pass", "show", "to_html"),
    "page": ("dot_to_html", "notebook_frame"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module 'tinygrad_like.viz' has no attribute {name!r}")


__all__ = [*_MODULE_OF, "TrainingRecorder", "plot_gradient_flow", "plot_history"]
