"""``summary(model, *inputs)``: every module of a network with the shape of what it returned on ``inputs`` and its
number of parameters, as a printable table; and what it is built on, which ``export.compare_with_torch`` uses as
well: ``recorded_calls`` (every module call of a forward, with its arguments and result) and ``buffers_kept``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import no_grad
from ..tensors import Tensor
from .module import Module

__all__ = ["ModuleCall", "Summary", "SummaryRow", "buffers_kept", "recorded_calls", "summary"]


@dataclass
class ModuleCall:
    """One call of a module during a forward: ``path`` (its name in the model, '' for the model), the ``number``
    of this call of that module (1 for the first), the arguments, the result, and the call it happened in
    (``parent``, None for the outermost)."""

    path: str
    module: Module
    args: tuple
    kwargs: dict
    parent: ModuleCall | None
    output: Any = None
    number: int = 0


@contextmanager
def recorded_calls(model: Module) -> Iterator[list[ModuleCall]]:
    """Inside the ``with``, every call of ``model`` or of one of its sub-modules is appended to the list it
    gives, in the order the calls return (a module after the modules it called, as PyTorch's forward hooks see
    them). Each module's ``forward`` is wrapped for that time, so it is every call made through ``__call__`` that
    is seen, and nothing is recorded or paid for outside the ``with``."""
    calls: list[ModuleCall] = []
    stack: list[ModuleCall] = []  # the calls under way, innermost last
    counts: dict[int, int] = {}

    def recording(path: str, module: Module, forward: Any) -> Any:
        def forward_recorded(*args: Any, **kwargs: Any) -> Any:
            call = ModuleCall(path, module, args, kwargs, stack[-1] if stack else None)
            stack.append(call)
            try:
                call.output = forward(*args, **kwargs)
            finally:
                stack.pop()
            call.number = counts[id(module)] = counts.get(id(module), 0) + 1
            calls.append(call)
            return call.output
        return forward_recorded

    wrapped = []
    for path, module in model.named_modules():
        own = vars(module).get("forward")  # a forward set on the instance itself is put back as it was
        module.forward = recording(path, module, module.forward)
        wrapped.append((module, own))
    try:
        yield calls
    finally:
        for module, own in wrapped:
            if own is None:
                del module.forward
            else:
                module.forward = own


@contextmanager
def buffers_kept(model: Module) -> Iterator[None]:
    """The buffers' values (running statistics, counters) as they were before the ``with``, after it: a forward
    run to look at a model does not train its batch normalisation."""
    saved = [(b, b.data.copy()) for _, b in model.named_buffers()]
    try:
        yield
    finally:
        for buffer, values in saved:
            buffer.data[...] = values


def _shape_of(value: Any) -> Any:
    """A forward's result as shapes: a Tensor's shape, tuples/lists of them, None, or the type's name."""
    if isinstance(value, (Tensor, np.ndarray)):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape_of(v) for v in value]
    return None if value is None else type(value).__name__


_COLUMNS = ("module", "type", "output shape", "params")


def _count(n: int) -> str:
    return f"{n:,}"


@dataclass
class SummaryRow:
    """One module: its ``path`` ('' for the model), ``type`` (class name), ``output_shape`` (of its first call's
    result: a tuple, a list of them for a tuple of results, None if it was not called), ``calls`` (how many
    times it was called) and ``params`` (the number of parameter values in it and its sub-modules)."""

    path: str
    type: str
    output_shape: Any
    calls: int
    params: int


@dataclass
class Summary:
    """``rows`` (one per module, as ``named_modules`` lists them), ``total_params`` (the parameter values,
    each shared tensor once) and ``trainable_params`` (those that require grad); ``print(summary)`` is the
    table."""

    rows: list[SummaryRow]
    total_params: int
    trainable_params: int

    def __str__(self) -> str:
        def shape_text(row: SummaryRow) -> str:
            if row.calls == 0:
                return "-"  # a container that is indexed, not called, or a module the forward did not use
            text = str(row.output_shape).replace("[", "(").replace("]", ")")
            return text + (f" x{row.calls} calls" if row.calls > 1 else "")

        table = [[row.path or "(model)", row.type, shape_text(row), _count(row.params)] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(_COLUMNS)]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                 for cells in [list(_COLUMNS), ["-" * w for w in widths], *table]]
        lines += ["", f"total parameters: {_count(self.total_params)}",
                  f"trainable parameters: {_count(self.trainable_params)}"]
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


def summary(model: Module, *inputs: Any) -> Summary:
    """Run ``model(*inputs)`` once (without a graph; buffers such as running statistics are left as they were)
    and tabulate every module (``named_modules`` order: a module, then what it holds): its path, type, the shape
    of what it returned (of its first call), and its number of parameters (its sub-modules' included). Totals:
    all parameter values, and those that require grad. NumPy arrays among ``inputs`` are made Tensors.

    An error in the forward is raised as it is, naming the module it happened in (``blocks.1.attn.proj
    (Linear): ...``), as every module call does.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected an nn.Module, got {type(model).__name__}")
    args = [Tensor(x) if isinstance(x, np.ndarray) else x for x in inputs]
    with recorded_calls(model) as calls, buffers_kept(model), no_grad():
        model(*args)
    first: dict[int, ModuleCall] = {}
    counts: dict[int, int] = {}
    for call in calls:
        first.setdefault(id(call.module), call)
        counts[id(call.module)] = call.number
    rows = []
    for path, module in model.named_modules():
        call = first.get(id(module))
        rows.append(SummaryRow(path, type(module).__name__, None if call is None else _shape_of(call.output),
                               counts.get(id(module), 0), sum(p.numel() for p in module.parameters())))
    params = model.parameters()
    return Summary(rows, sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))
