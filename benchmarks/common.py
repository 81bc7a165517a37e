"""Helpers shared by the benchmark scripts: timing medians, optional PyTorch, thread settings."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (repeats, steps), refused with a usage message otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternate(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median time of each candidate, run in turns (ours, theirs, ours, ...) so machine noise hits both alike."""
    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def try_import_torch():
    """PyTorch if installed (single-threaded, as our NumPy ops on small tensors are), else None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
    return torch
