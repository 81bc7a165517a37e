"""``torch.nn.utils``'s gradient clipping: change the gradients of parameters in place, after ``backward()`` and
before ``optimizer.step()``, so that one bad batch cannot throw the weights far away."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..engine import no_grad
from ..tensors import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale every gradient by min(1, max_norm / (total + 1e-6)), where total is the ``norm_type``-norm of all the
    gradients together (the norm of the per-tensor norms; ``norm_type=inf``: the largest |g|). Returns total, a
    0-d Tensor (0.0 when no parameter has a gradient). Parameters without a gradient are skipped; a single
    Tensor is accepted. ``error_if_nonfinite``: raise instead of scaling by a nan or inf norm. ``foreach`` is
    accepted for PyTorch's signature (there is one way to do it here)."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    norm_type = float(norm_type)
    dtype = np.result_type(*[g.dtype for g in grads])
    norms = np.array([np.linalg.norm(g.data.ravel(), norm_type) if g.size else 0.0 for g in grads], dtype)
    total = dtype.type(np.linalg.norm(norms, norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so "
                           "they cannot be clipped; to scale them by this norm anyway, set error_if_nonfinite=False")
    with np.errstate(all="ignore"):  # a nan or inf total gives a nan or 0 factor, as in PyTorch, silently
        factor = np.minimum(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    with no_grad():
        for g in grads:
            g.mul_(factor)
    return Tensor(np.asarray(total))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clip every gradient's values into [-clip_value, clip_value], in place; parameters without a gradient are
    skipped."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.assign(np.clip(g.data, -clip_value, clip_value))


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The gradients of ``parameters`` (one Tensor or an iterable, e.g. ``model.parameters()``) that have one."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]
