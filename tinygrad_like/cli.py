"""The ``tinygrad-like`` command (also ``python -m tinygrad_like``): train | compare | graph."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like train``: train the blog's network (see train.py)."""


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like compare``: hand-written vs automatic gradients (see compare.py)."""

    def layer_sizes(text: str) -> list[int]:
        try:
            sizes = [int(n) for n in text.split(",")]
        except ValueError:
            sizes = []
        if len(sizes) < 2 or min(sizes) < 1:
            raise argparse.ArgumentTypeError(f"expected at least two positive sizes like 784,64,32,10, got {text!r}")
        return sizes

    def positive(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
        return int(text)

    def mnist_batch(args: argparse.Namespace) -> tuple:
        """The first --batch training digits of the MNIST copy in --data-dir, pixels scaled to [0, 1]."""
        try:
            from .data import load_mnist
        except ImportError as e:
            raise ValueError(f"--data-dir needs tinygrad_like.data.load_mnist, which is not available ({e})") from None
        (images, labels), _ = load_mnist(args.data_dir, download=False)
        if args.layers[0] != images[0].size:
            raise ValueError(f"--layers starts with {args.layers[0]} inputs but the MNIST images have "
                             f"{images[0].size} pixels")
        if args.layers[-1] < 10:
            raise ValueError(f"--layers ends with {args.layers[-1]} outputs; MNIST has 10 classes")
        x = images[:args.batch].reshape(-1, images[0].size) / 255.0
        return x, labels[:args.batch].astype("int64")

    def run(args: argparse.Namespace) -> int:
        import json
        import sys

        import numpy as np

        from .blog import NN
        from .compare import compare_gradients, compare_update
        from .nn import MLP

        net = NN(args.layers, corrected=args.code == "corrected", seed=args.seed)
        if args.data_dir is None:
            rng = np.random.default_rng(args.seed)  # a seeded random batch: pixels in [0, 1), random labels
            x, labels = rng.random((args.batch, args.layers[0])), rng.integers(0, args.layers[-1], args.batch)
            source = f"random batch (seed {args.seed})"
        else:
            try:
                x, labels = mnist_batch(args)
            except (ValueError, OSError) as e:  # the data module's errors name the file and what is wrong
                print(f"tinygrad-like compare: {e}", file=sys.stderr)
                return 2
            source = f"the first {len(x)} training images of the MNIST-format files in {args.data_dir}, pixels / 255"
        report = compare_gradients(net, MLP.from_blog(net), x, labels, seed=args.seed)
        update = compare_update(net, x, labels, lr=args.lr)
        print(f"data: {source}")
        print(report)
        print(update)
        if args.json:
            data = {"data": source, "seed": args.seed, **report.to_dict(), "update": update.to_dict()}
            with open(args.json, "w") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
        return 0 if report.ok else 1

    cmd = commands.add_parser(
        "compare", help="compare hand-written, automatic and numeric gradients of the blog's network",
        description="Compute the gradients of the blog's summed cross-entropy three ways -- the blog's hand-written "
        "backward (published or corrected), autograd on the same graph, and central finite differences -- and "
        "print them side by side per weight and bias, with the first disagreeing layer and a computed diagnosis. "
        "Also does one blog update (SGD on the summed gradients) both ways. Exit status: 0 when all sources agree, "
        "1 when they disagree (the published code does: it omits the hidden layers' sigmoid derivative), "
        "2 on bad input.",
    )
    cmd.add_argument("--layers", type=layer_sizes, default=[784, 64, 32, 10], metavar="N,N,...",
                     help="layer sizes (default: 784,64,32,10)")
    cmd.add_argument("--batch", type=positive, default=200, metavar="N", help="samples in the batch (default: 200)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the weights, the batch and the sampled entries "
                     "(default: 0)")
    cmd.add_argument("--code", choices=["published", "corrected"], default="published",
                     help="which hand-written backward: the blog's as published, or with the sigmoid derivative "
                     "applied (default: published)")
    cmd.add_argument("--lr", type=float, default=1e-3, help="learning rate of the compared update (default: 0.001)")
    cmd.add_argument("--data-dir", metavar="DIR", help="use the first --batch MNIST training digits found in DIR "
                     "(see tinygrad_like.data) instead of a random batch")
    cmd.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    cmd.set_defaults(run=run)


def add_graph_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like graph``: draw the blog network's loss graph (see viz.py)."""

    def layer_sizes(text: str) -> list[int]:
        try:
            sizes = [int(n) for n in text.split(",")]
        except ValueError:
            sizes = []
        if len(sizes) < 2 or min(sizes) < 1:
            raise argparse.ArgumentTypeError(f"expected at least two positive sizes like 784,64,32,10, got {text!r}")
        return sizes

    def positive(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
        return int(text)

    def run(args: argparse.Namespace) -> int:
        import sys

        import numpy as np

        from . import viz
        from .blog import NN
        from .compare import compare_gradients
        from .nn import MLP

        rng = np.random.default_rng(args.seed)
        x, labels = rng.random((args.batch, args.layers[0])), rng.integers(0, args.layers[-1], args.batch)
        report = None
        if args.code is None:
            mlp = MLP(args.layers, seed=args.seed)
        else:  # the blog's float64 network, so its hand-written gradients can be compared and marked
            net = NN(args.layers, corrected=args.code == "corrected", seed=args.seed)
            mlp = MLP.from_blog(net)
            report = compare_gradients(net, mlp, x, labels, seed=args.seed)
        graph = viz.blog_graph(mlp, x, labels, report=report, rankdir=args.rankdir)
        try:
            path = viz.save(graph, args.out)
        except (viz.GraphvizNotFound, ValueError, OSError) as e:  # GraphvizNotFound: the .gv is written anyway
            print(f"tinygrad-like graph: {e}", file=sys.stderr)
            return 2
        source = path.with_suffix(".gv")
        print(f"wrote {path}" + (f" (DOT source: {source})" if source != path else ""))
        if report is not None:
            print(f"{args.code} code: gradients disagree for " + (", ".join(report.disagreeing) or "no parameter"))
        return 0

    cmd = commands.add_parser(
        "graph", help="draw the blog network's loss graph",
        description="Draw the loss graph of the blog's network (matmul, add, sigmoid, ..., softmax, log, times the "
        "one-hot labels, sum) on a random batch after backward, with every layer as a labelled cluster. The format "
        "comes from the extension of --out: .svg, .png, .pdf need Graphviz's `dot` (exit status 2 with an install "
        "hint when it is missing; the .gv is written anyway), .gv needs nothing.",
    )
    cmd.add_argument("--layers", type=layer_sizes, default=[784, 64, 32, 10], metavar="N,N,...",
                     help="layer sizes (default: 784,64,32,10)")
    cmd.add_argument("--batch", type=positive, default=4, metavar="N", help="samples in the batch (default: 4)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch (default: 0)")
    cmd.add_argument("--code", choices=["published", "corrected"],
                     help="also compare the blog's hand-written gradients (as published, or corrected) with "
                     "autograd and highlight the parameters that disagree")
    cmd.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB",
                     help="layout direction, top to bottom or left to right (default: TB)")
    cmd.add_argument("--out", default="blog_graph.svg", metavar="FILE",
                     help="output file: .svg, .png, .pdf or .gv (default: blog_graph.svg)")
    cmd.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-like",
        description="A small reverse-mode autograd framework on NumPy, and the blog's MNIST network built on it.",
    )
    parser.add_argument("--version", action="version", version=f"tinygrad-like {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(commands)
    add_compare_command(commands)
    add_graph_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Each subcommand sets ``run``: a function of the parsed arguments returning the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)
