"""Drawing computation graphs: ``draw(tensor) -> graphviz.Digraph`` and ``save(graph, path)`` (graph.py)."""

from .graph import (
    INSTALL_HINT,
    LEGEND,
    RANKDIRS,
    RENDERED_FORMATS,
    SOURCE_FORMATS,
    GraphvizNotFound,
    draw,
    report_verdicts,
    save,
)

__all__ = ["INSTALL_HINT", "LEGEND", "RANKDIRS", "RENDERED_FORMATS", "SOURCE_FORMATS", "GraphvizNotFound", "draw",
           "report_verdicts", "save"]
