"""Computation graphs: the graphviz drawing (graph.py: ``draw``, ``save``) and the self-contained HTML view
(html.py: ``to_html``, ``show``), which needs no ``dot`` program."""

from .graph import (
    INSTALL_HINT,
    LEGEND,
    RANKDIRS,
    RENDERED_FORMATS,
    SOURCE_FORMATS,
    Drawing,
    GraphParts,
    GraphvizNotFound,
    draw,
    graph_parts,
    report_verdicts,
    save,
)
from .html import BackwardPass, BackwardStep, HTMLGraph, backward_pass, dot_to_html, notebook_frame, show, to_html

__all__ = ["INSTALL_HINT", "LEGEND", "RANKDIRS", "RENDERED_FORMATS", "SOURCE_FORMATS", "BackwardPass", "BackwardStep",
           "Drawing", "GraphParts", "GraphvizNotFound", "HTMLGraph", "backward_pass", "dot_to_html", "draw",
           "graph_parts", "notebook_frame", "report_verdicts", "save", "show", "to_html"]
