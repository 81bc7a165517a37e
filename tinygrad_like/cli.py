"""The ``tinygrad-like`` command (also ``python -m tinygrad_like``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-like",
        description="A small reverse-mode autograd framework on NumPy, and the blog's MNIST network built on it.",
    )
    parser.add_argument("--version", action="version", version=f"tinygrad-like {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)
