"""Self-contained HTML pages from the assets (viz.js, the view's script), for the HTML view and for DOT text laid
out in the browser; and the frame that shows a page in a notebook."""

from __future__ import annotations

import html
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from .._files import atomic_write

__all__ = ["dot_to_html", "notebook_frame", "page_with", "write_page"]

ASSETS = Path(__file__).with_name("assets")


@cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def _script(name: str) -> str:
    """A script asset, to be inlined in a <script> element."""
    text = _asset(name)
    if "</script" in text.lower():  # would end the element early
        raise ValueError(f"the asset {name} contains '</script' and cannot be inlined")
    return text


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a <script> element (no '<', so no '</script>' or '<!--')."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def page_with(template: str, title: str, data: Any, script: str = "view.js") -> str:
    """An asset page with viz.js, ``data`` (as JSON) and the page's script (the asset ``script``) inlined; one
    pass, so nothing that is inlined is read as a placeholder."""
    fields = {"title": lambda: html.escape(title), "viz_js": lambda: _script("viz-global.js"),
              "data": lambda: _json_for_script(data), "script": lambda: _script(script)}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)](), _asset(template))


def write_page(path: str | os.PathLike, page: str, caller: str) -> None:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{caller}: cannot write {path}: the directory {path.parent} does not exist")
    with atomic_write(path) as f:
        f.write(page.encode("utf-8"))


def dot_to_html(source: str, path: str | os.PathLike | None = None) -> str:
    """A page that lays out DOT text in the browser (the same WebAssembly Graphviz), e.g. ``draw(t).source``."""
    page = page_with("dot_view.html", "graph", source)
    if path is not None:
        write_page(path, page, "dot_to_html")
    return page


def notebook_frame(page: str, height: int = 600) -> str:
    """An ``<iframe>`` holding ``page``, for a notebook's output: the page's script and ids stay its own."""
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width: 100%; height: {height}px; '
            'border: 1px solid #ddd" sandbox="allow-scripts"></iframe>')


