"""``check_gradients``: anyone's hand-written backward against autograd and finite differences, with a computed
diagnosis (a cause is said only when applying that mistake reproduces the hand-written numbers).

``run`` runs the user's code, ``graph`` records and walks the Tensor run's graph, ``causes`` holds the registry of
causes and their search, ``report`` the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine import set_recorder
from ..tensors import Tensor
from .causes import CAUSE_KINDS, diagnose
from .graph import Graph, Recorder
from .report import GradientEntry, GradientReport, diagnosis_text, format_table, json_safe
from .run import (
    FD_STEP,
    Parameters,
    Run,
    autograd,
    call_user,
    finite_differences,
    hand_gradients,
    loss_value,
    own,
    relative_difference,
    sample_entries,
    tensor_run,
    watch,
)

__all__ = [
    "CAUSE_KINDS", "FD_RTOL", "FD_STEP", "RTOL", "GradientEntry", "GradientReport", "check_gradients",
    "format_table", "json_safe", "relative_difference", "sample_entries", "watch",
]

RTOL = 1e-10  # hand-written vs autograd, both float64: the same sums in another order stay far below this
FD_RTOL = 1e-6  # finite differences carry truncation and cancellation error


def check_gradients(forward: Callable[..., Any], backward: Callable[..., Mapping[str, Any]], params: Any, *args: Any,
                    fd_entries: int = 6, seed: int = 0, rtol: float = RTOL, fd_rtol: float = FD_RTOL) -> GradientReport:
    """Compare a hand-written ``backward`` with autograd and with finite differences of ``forward``.

    ``params``: a dict name -> array (or Tensor), or an ``nn.Module``. ``forward(params, *args)`` returns the
    scalar loss; it is run once on float64 copies of the parameters (arrays, or Tensors without grad when
    Tensors were given), then once, unchanged, on Tensors that require grad. ``backward(params, *args)``,
    called after the first run, returns a dict name -> gradient for the parameters it covers, and for values
    ``forward`` named with ``watch(name, value)``. Finite differences are taken on ``fd_entries`` entries of
    each value (the largest |gradient| and random ones, chosen with ``seed``). ``rtol`` / ``fd_rtol``: the
    agreement tolerances, times the largest gradient of the whole report (an absolute floor, as gradcheck's
    atol: a true zero gradient agrees with rounding noise). Nothing the caller passed is modified.
    """
    for fn, role in ((forward, "forward"), (backward, "backward")):
        if not callable(fn):
            raise TypeError(f"check_gradients: {role} must be a function, got a {type(fn).__name__}")
    if isinstance(fd_entries, bool) or not isinstance(fd_entries, int) or fd_entries < 0:
        raise ValueError(f"check_gradients: fd_entries must be a non-negative integer, got {fd_entries!r}")
    parameters = Parameters(params)
    given, args = args, tuple(own(a) for a in args)
    names = parameters.names

    # 1. The plain float64 run, then the hand-written backward (it may read what the forward cached).
    plain_run = Run(names)
    plain = parameters.plain()
    value = loss_value(call_user(forward, plain_run, plain, args))
    plain_watched = plain_run.watched
    hand = hand_gradients(backward, plain, args, names, plain_watched)

    # 2. The same forward on Tensors, recording where each op was made; autograd.
    recorder = Recorder()
    previous = set_recorder(recorder)
    try:
        loss, targets = tensor_run(forward, parameters, args)
    finally:
        set_recorder(previous)
    grads = autograd(loss, targets)
    graph = Graph(loss, targets, recorder.chains)

    # 3. Finite differences and the comparison, entry by entry.
    rng = np.random.default_rng(seed)
    compared = list(names) + [n for n in plain_watched if n in hand]
    for name in compared:
        if name not in grads:  # watched on the arrays but not on the Tensors: the value does not reach the loss there
            grads[name] = np.zeros(np.shape(plain_watched[name]))
    # An absolute floor for agreement, as gradcheck's atol: a true zero gradient is rounding noise on both sides.
    floor = max((float(np.max(np.abs(grads[name]), initial=0.0)) for name in compared), default=0.0)
    entries = []
    for name in compared:
        fd = finite_differences(forward, parameters, args, name, plain_watched, grads[name], fd_entries, rng)
        entries.append(GradientEntry.compare(name, name in names, hand.get(name), grads[name], rtol, fd_rtol, fd,
                                             floor))
    notes = _notes(parameters, given, value, loss)
    diagnose(entries, graph, forward, parameters, args, rtol)
    entries.sort(key=lambda e: graph.rank(targets.get(e.name)))
    report = GradientReport(entries, rtol, fd_rtol, value, notes=notes, loss=loss,
                            tensors={n: t for n, t in targets.items() if isinstance(t, Tensor)})
    report.diagnosis = diagnosis_text(report)
    return report


def _notes(parameters: Parameters, args: tuple, value: float, loss: Tensor) -> list[str]:
    """What the check did to the input, and what it found odd about the forward."""
    notes = []
    float32 = parameters.float32 + [f"argument {i + 1}" for i, a in enumerate(args)
                                    if isinstance(a, (np.ndarray, Tensor)) and a.dtype == np.float32]
    if float32:
        notes.append(f"{', '.join(float32)} {'was' if len(float32) == 1 else 'were'} float32; checked in float64 "
                     "(forward and backward got float64 copies)")
    tensor_value = float(loss.data.reshape(()))
    if abs(tensor_value - value) > 1e-9 * max(1.0, abs(value)):
        notes.append(f"forward gives {value!r} on arrays but {tensor_value!r} on Tensors: it does not compute "
                     "the same thing in both runs, so finite differences and autograd may disagree")
    return notes
