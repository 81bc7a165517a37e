"""DeZero's higher-order steps ("Deep Learning from Scratch 3", steps 27-36) written in PyTorch's words.

    python examples/dezero_higher_order.py [--out DIR] [--order N] [--torch]

1. sin as its Taylor series, sum of (-1)^i x^(2i+1) / (2i+1)!, built term by term from Tensor operations: its
   value and its gradient (by autograd, through every term) against sin and cos.
2. Newton's method on f(x) = x^4 - 2x^2 from x = 2 (DeZero steps 29 and 33): x <- x - f'(x) / f''(x), both
   derivatives by autograd (``backward(create_graph=True)``, then a backward of the gradient). It reaches the
   minimum x = 1 in 6 steps, where gradient descent with lr 0.01 needs over a hundred.
   (examples/newton.py is the same method for many parameters: Hessian-vector products and conjugate gradients.)
3. The n-th derivative of tanh by repeated ``backward(create_graph=True)`` (DeZero steps 34-35), checked against
   the exact derivatives (polynomials in tanh x); the graph of the last one drawn with ``tinygrad_like.draw``
   into DIR (tanh_derivative_N.svg and .png, Graphviz's dot needed) and the first N derivatives plotted into
   DIR/tanh_derivatives.png (if matplotlib is installed). DIR defaults to a new temporary directory (printed).

The same code runs on PyTorch with ``--torch`` (or LESSON_BACKEND=torch): only the drawing is ours.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

BACKEND = "torch" if os.environ.get("LESSON_BACKEND") == "torch" or (
    __name__ == "__main__" and "--torch" in sys.argv) else "tinygrad_like"
if BACKEND == "tinygrad_like":
    import tinygrad_like as torch
else:  # the very same lesson on real PyTorch
    import torch

    # the loops below reset x.grad = None after each backward(create_graph=True), as this warning asks
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")


# -- 1. sin as a Taylor series ---------------------------------------------------------------------------------
def taylor_sin(x, threshold: float = 1e-150):
    """sin(x) as the sum of (-1)^i x^(2i+1) / (2i+1)!, stopping after the first term below ``threshold``:
    (the sum, a Tensor on the graph; the number of terms)."""
    y = 0
    for i in range(100):
        term = (-1) ** i / math.factorial(2 * i + 1) * x ** (2 * i + 1)
        y = y + term
        if abs(term.item()) < threshold:
            break
    return y, i + 1


# -- 2. Newton's method with second derivatives from autograd --------------------------------------------------
def f(x):
    """DeZero's example: minima at x = -1 and x = 1."""
    return x ** 4 - 2 * x ** 2


def newton(f: Callable, x0: float, iters: int = 10) -> list[float]:
    """x <- x - f'(x) / f''(x), f' and f'' by autograd; the iterates, x0 first."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    xs = [x.item()]
    for _ in range(iters):
        y = f(x)
        y.backward(create_graph=True)  # x.grad = f'(x), itself on a graph
        gx = x.grad
        x.grad = None
        gx.backward()  # x.grad = f''(x)
        gx2 = x.grad
        x.data -= gx.data / gx2.data
        x.grad = None
        xs.append(x.item())
    return xs


def gradient_descent(f: Callable, x0: float, lr: float = 0.01, tolerance: float = 1e-10,
                     max_iters: int = 100_000) -> tuple[float, int]:
    """x <- x - lr f'(x) until a step moves x by less than ``tolerance``: (x, the steps taken)."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    steps, change = 0, math.inf
    while abs(change) >= tolerance and steps < max_iters:
        f(x).backward()
        change = lr * x.grad.item()
        x.data -= lr * x.grad.data
        x.grad = None
        steps += 1
    return x.item(), steps


# -- 3. n-th derivatives -----------------------------------------------------------------------------------------
def derivatives(f: Callable, x, order: int) -> list:
    """[f'(x), f''(x), ..., the order-th derivative], each a Tensor on a graph of its own: backward with
    create_graph=True, then the backward of that gradient, and so on (elementwise f: one value per element)."""
    y = f(x)
    grads = []
    for _ in range(order):
        (y,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        grads.append(y)
    return grads


def tanh_derivatives_by_backward(x0: float, order: int):
    """DeZero's loop in PyTorch's words: y.backward(create_graph=True), then again on x.grad, each time after
    setting x.grad = None (which also breaks the reference cycle PyTorch warns of). Returns (x, x.grad), the
    latter the order-th derivative of tanh at x0 with its whole graph."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    y = torch.tanh(x)
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.grad = None
        gx.backward(create_graph=True)
    return x, x.grad


def exact_tanh_derivatives(x: np.ndarray, order: int) -> list[np.ndarray]:
    """d^n/dx^n tanh x for n = 1..order, exactly: each is a polynomial P_n(t) in t = tanh x, and
    P_{n+1}(t) = P_n'(t) (1 - t^2) (the chain rule with tanh' = 1 - tanh^2)."""
    t = np.tanh(x)
    p, out = np.polynomial.Polynomial([0, 1]), []
    for _ in range(order):
        p = p.deriv() * np.polynomial.Polynomial([1, 0, -1])
        out.append(p(t))
    return out


def graph_sizes(order: int) -> list[int]:
    """How many tensors the graph of each derivative of tanh holds, n = 1..order (tinygrad_like's graph): it
    grows about 2.5 times with each order, which is why the drawing stops early."""
    return [len(torch.toposort(tanh_derivatives_by_backward(1.0, n)[1])) for n in range(1, order + 1)]


def draw_derivative(out: Path, order: int) -> list[Path]:
    """The graph that computes the order-th derivative of tanh, as SVG and PNG (tinygrad_like's drawing; needs
    Graphviz's dot)."""
    from tinygrad_like.viz import save

    x, gx = tanh_derivatives_by_backward(1.0, order)
    graph = torch.draw(gx, params={"x": x}, show_data=False, show_grad=False, rankdir="TB", legend=False)
    return [save(graph, out / f"tanh_derivative_{order}.{fmt}") for fmt in ("svg", "png")]


def plot_derivatives(out: Path, order: int) -> Path | None:
    """tanh and its first ``order`` derivatives on [-4, 4] (DeZero step 34's picture), if matplotlib is here."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    x = torch.linspace(-4, 4, 200, dtype=torch.float64, requires_grad=True)
    curves = [torch.tanh(x), *derivatives(torch.tanh, x, order)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, y in enumerate(curves):
        ax.plot(x.detach().numpy(), y.detach().numpy(), label="tanh" if n == 0 else f"order {n}")
    ax.set_ylim(-8, 8)
    ax.set_xlabel("x")
    ax.legend(ncol=2, fontsize="small")
    ax.set_title(f"tanh and its derivatives by autograd ({BACKEND})")
    path = out / "tanh_derivatives.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where the drawings go (default: a new temporary directory)")
    parser.add_argument("--order", type=int, default=6, help="how many times to differentiate tanh (default 6)")
    parser.add_argument("--draw-order", type=int, default=3,
                        help="draw the graph of this derivative (default 3; the 6th has 358 tensors)")
    parser.add_argument("--no-draw", action="store_true", help="neither draw the graph nor plot")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch (decided at import: see the top)")
    args = parser.parse_args(argv)
    for name in ("order", "draw_order"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    print(f"backend: {BACKEND}")

    x = torch.tensor(math.pi / 4, dtype=torch.float64, requires_grad=True)
    y, terms = taylor_sin(x)
    y.backward()
    print(f"1. Taylor series of sin at pi/4 ({terms} terms): {y.item():.15f} (sin {math.sin(math.pi / 4):.15f}); "
          f"gradient {x.grad.item():.15f} (cos {math.cos(math.pi / 4):.15f})")

    xs = newton(f, 2.0, iters=7)
    x_gd, steps = gradient_descent(f, 2.0)
    print(f"2. Newton's method on x^4 - 2x^2 from x = 2: {', '.join(f'{v:.10f}' for v in xs)}")
    print(f"   gradient descent (lr 0.01) needs {steps} steps to reach x = {x_gd:.10f}")

    _, gx = tanh_derivatives_by_backward(1.0, args.order)
    by_grad = derivatives(torch.tanh, torch.tensor([1.0], dtype=torch.float64, requires_grad=True), args.order)
    exact = exact_tanh_derivatives(np.array([1.0]), args.order)
    print(f"3. derivatives of tanh at x = 1 (autograd.grad | exact), the last also by repeated backward: "
          f"{gx.item():.12f}")
    for n, (ours, truth) in enumerate(zip(by_grad, exact), start=1):
        print(f"   order {n}: {ours.item():+.12f} | {truth[0]:+.12f}")

    if args.no_draw:
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="dezero_"))
    out.mkdir(parents=True, exist_ok=True)
    if BACKEND == "tinygrad_like":
        print(f"   tensors in the graph of orders 1..{args.order}: {graph_sizes(args.order)}; order "
              f"{args.draw_order} drawn to " + ", ".join(str(p) for p in draw_derivative(out, args.draw_order)))
    plot = plot_derivatives(out, args.order)
    print(f"   plotted to {plot}" if plot else "   (no plot: matplotlib is not installed)")


if __name__ == "__main__":
    main()
