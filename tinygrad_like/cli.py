"""The ``tinygrad-like`` command (also ``python -m tinygrad_like``): train | compare | graph."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like train``: train the blog's network (see train.py)."""


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like compare``: hand-written vs automatic gradients (see compare.py)."""


def add_graph_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like graph``: draw the blog network's loss graph (see viz.py)."""


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
