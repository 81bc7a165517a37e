"""The HTML view: file size of the blog network's view, and how fast a 1,000-node graph opens in headless Chromium.

    python benchmarks/bench_html.py [--nodes 1000] [--chromium /usr/bin/chromium] [--screenshot docs/html_view.png]
                                    [--quick] [--json FILE]

Targets: the blog network's file ([784, 64, 32, 10], batch 4) under 3 MB; a 1,000-node graph's view shows its
rendered SVG within 2 s of opening (measured from navigation start to the first laid-out SVG, in the page's own
clock, so Playwright's start-up is not counted). Two 1,000-node graphs: a chain of elementwise ops without
modules (every node drawn), and a deep MLP whose module clusters open collapsed (then also "expand all").
Needs the `playwright` Python package (its browser download is not used: Debian's chromium is); without it, or
without Chromium, only the file size is measured. ``--screenshot`` also saves the blog network's view at the first
sigmoid step of the backward pass (docs/html_view.png, shown in the README and docs/seeing-the-graph.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import figure, finish, options_of, parse, positive_int, result  # noqa: E402

from tinygrad_like import Tensor, nn, toposort, viz  # noqa: E402
from tinygrad_like.blog import NN, blog_loss, compare_gradients, from_blog  # noqa: E402

FULL = {"nodes": 1000, "chromium": "/usr/bin/chromium", "screenshot": None}
QUICK = {"nodes": 300}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def blog_network() -> tuple[Tensor, nn.MLP, object]:
    rng = np.random.default_rng(0)
    x, labels = rng.random((4, 784)), rng.integers(0, 10, 4)
    net = NN([784, 64, 32, 10], seed=0)
    mlp = from_blog(net)
    return blog_loss(mlp, x, labels), mlp, compare_gradients(net, mlp, x, labels, seed=0)


def chain(nodes: int) -> Tensor:
    """About ``nodes`` nodes of elementwise ops on a (16,) leaf, which every fourth op uses again."""
    x = Tensor(np.linspace(-1, 1, 16), requires_grad=True)
    h = x
    while len(toposort(h)) < nodes - 2:
        h = (h * 0.5 + x).tanh().sigmoid()
    return h.sum()


class Tanh(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


def deep_mlp(nodes: int) -> tuple[Tensor, nn.Module]:
    """A stack of Linear(8, 8) + Tanh layers with about ``nodes`` nodes (clusters: one per layer call)."""
    depth = max(1, nodes // 4)
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(8, 8), Tanh())])
    return model(Tensor(np.ones((2, 8)))).sum(), model


def open_seconds(page, path: Path, expand: bool = False) -> float:
    """Seconds from navigation start to the first rendered SVG (and, with ``expand``, to the expanded one)."""
    page.goto(path.as_uri())
    page.wait_for_selector("#graph svg g.node", timeout=60_000)
    seconds = page.evaluate("performance.now()") / 1000
    if expand:
        start = time.perf_counter()
        page.click("#expand-all")
        page.wait_for_function("document.body.dataset.rendered === '2'", timeout=60_000)
        seconds = time.perf_counter() - start
    return seconds


def screenshot(page, path: Path) -> None:
    """The open view, stepped to the first sigmoid rule, with the whole graph in sight."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.click("#zoom-fit")
    while "sigmoid" not in page.inner_text("#step-status"):
        page.click("#next")
    page.screenshot(path=str(path))
    print(f"wrote {path}", file=sys.stderr)


def measure(nodes: int = FULL["nodes"], chromium: str = FULL["chromium"], screenshot_path: Path | None = None) -> dict:
    out = Path(tempfile.mkdtemp())
    loss, mlp, report = blog_network()
    start = time.perf_counter()
    blog_page = viz.to_html(loss, out / "blog.html", params=mlp, report=report)
    figures = [figure("the blog network's view [784, 64, 32, 10], batch 4: file size (target < 3 MB)",
                      len(blog_page.encode()) / 1e6, "MB"),
               figure("the blog network's view: built in", time.perf_counter() - start, "s")]
    setup = (f"the blog network's view, then two graphs of about {nodes:,} nodes (a chain of elementwise ops, every "
             "node drawn; a deep MLP, its layers collapsed), opened in headless Chromium; seconds from navigation "
             "to the first laid-out SVG, in the page's own clock")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return result("The HTML view", setup, figures=figures, skipped="the playwright package is not installed")
    if not Path(chromium).exists():
        return result("The HTML view", setup, figures=figures, skipped=f"no Chromium at {chromium}")

    graphs = {"chain": (chain(nodes), None), "deep MLP": deep_mlp(nodes)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        figures.append(figure("the blog network's view: SVG shown after", open_seconds(page, out / "blog.html"), "s"))
        if screenshot_path:
            screenshot(page, Path(screenshot_path))
        for name, (root, params) in graphs.items():
            start = time.perf_counter()
            html = viz.to_html(root, out / "graph.html", params=params)
            built = time.perf_counter() - start
            count = len(toposort(root))
            seconds = open_seconds(page, out / "graph.html")
            drawn = page.locator("#graph svg g.node:not(.copy)").count()
            figures += [figure(f"{name}, {count:,} nodes ({drawn:,} drawn): SVG shown after (target < 2 s)", seconds,
                               "s"),
                        figure(f"{name}: file size", len(html.encode()) / 1e6, "MB"),
                        figure(f"{name}: built in", built, "s")]
            if drawn < count:
                figures.append(figure(f"{name}: 'expand all' laid out in",
                                      open_seconds(page, out / "graph.html", expand=True), "s"))
        browser.close()
    return result("The HTML view", setup, figures=figures)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=positive_int, help=f"nodes of the big graphs (default {FULL['nodes']:,})")
    parser.add_argument("--chromium", help=f"the browser (default {FULL['chromium']})")
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="save a picture of the blog network's view")
    args = parse(parser, FULL, QUICK, argv)
    options = options_of(args, ("nodes", "chromium"))
    finish(measure(**options, screenshot_path=args.screenshot), args)


if __name__ == "__main__":
    main()
