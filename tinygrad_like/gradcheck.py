"""Finite-difference checks of the gradients of any function of Tensors.

Central differences in float64 along a random direction, against the analytic gradient contracted with a
random upstream gradient (as HIPS autograd's ``check_grads``). A uniform upstream gradient (``.sum()``)
would make some wrong rules pass: the gradient of ``softmax(x).sum()`` is zero whatever softmax's rule says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .tensor import Tensor, no_grad

DIRECTIONS = 3  # random directions tried per input


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message is a per-input report."""


def _as_float64(value: Any) -> Any:
    if isinstance(value, Tensor) and value.dtype.kind == "f":
        return Tensor(value.data.astype(np.float64), requires_grad=value.requires_grad)
    return value


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check the gradient of ``fn`` with respect to every input Tensor that requires grad.

    Returns True, or raises ``GradcheckError`` with a report of each input: analytic and numeric directional
    derivatives, and their difference. Inputs are copied to float64, so ``fn`` sees float64 tensors.
    """
    inputs64 = [_as_float64(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs64) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input Tensor has requires_grad=True")
    rng = np.random.default_rng(seed)

    out = fn(*inputs64)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError("gradcheck: the output does not depend on any input that requires grad")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    analytic = {i: (np.zeros(inputs64[i].shape) if inputs64[i].grad is None else inputs64[i].grad.data)
                for i in checked}

    def projected_output(i: int, shift: np.ndarray) -> float:
        shifted = list(inputs64)
        shifted[i] = Tensor(inputs64[i].data + shift)
        with no_grad():
            return float(np.sum(fn(*shifted).data * upstream))

    rows, failed = [], False
    for i in checked:
        for _ in range(DIRECTIONS):
            direction = rng.standard_normal(inputs64[i].shape)
            numeric = (projected_output(i, eps * direction) - projected_output(i, -eps * direction)) / (2 * eps)
            exact = float(np.sum(analytic[i] * direction))
            bad = not abs(exact - numeric) <= atol + rtol * abs(numeric)
            failed |= bad
            rows.append((i, inputs64[i].shape, exact, numeric, bad))
    if failed:
        lines = [f"gradcheck: analytic and numeric gradients disagree (eps={eps}, atol={atol}, rtol={rtol})",
                 f"{'input':>5}  {'shape':<14}{'analytic':>16}{'numeric':>16}{'abs diff':>12}  verdict"]
        for i, shape, exact, numeric, bad in rows:
            lines.append(f"{i:>5}  {str(shape):<14}{exact:>16.8g}{numeric:>16.8g}{abs(exact - numeric):>12.3g}  "
                         f"{'FAIL' if bad else 'ok'}")
        raise GradcheckError("\n".join(lines))
    return True
