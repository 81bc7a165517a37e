"""Finite-difference checks of the gradients of any function of Tensors, and of its second derivatives.

Central differences in float64 along a random direction, against the analytic gradient contracted with a
random upstream gradient (as HIPS autograd's ``check_grads``). A uniform upstream gradient (``.sum()``)
would make some wrong rules pass: the gradient of ``softmax(x).sum()`` is zero whatever softmax's rule says.
``gradgradcheck`` applies the same check to the first derivatives themselves (as PyTorch's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import enable_grad, grad, is_grad_enabled, no_grad
from .tensors import Tensor

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
    return _check(fn, [_as_float64(x) for x in inputs], eps, atol, rtol, seed, "gradcheck",
                  "analytic and numeric gradients disagree", [str(i) for i in range(len(inputs))])


def gradgradcheck(fn: Callable[..., Tensor], *inputs: Any, grad_outputs: Any = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check the second derivatives of ``fn`` (as ``torch.autograd.gradgradcheck``).

    The first derivatives of ``fn`` with respect to its inputs that require grad, for an upstream gradient
    ``grad_outputs`` (random when None), are a function of the inputs and of that upstream gradient; autograd's
    derivatives of it (``create_graph=True``) are checked against its central finite differences, along random
    directions and with a random upstream gradient again, with respect to both. Returns True, or raises
    ``GradcheckError`` with a per-input report (the upstream gradient is the row ``grad_outputs``). Inputs are
    copied to float64.
    """
    inputs64 = [_as_float64(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs64) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input Tensor has requires_grad=True")
    out = _output(fn, inputs64, "gradgradcheck")
    if grad_outputs is None:
        upstream = np.random.default_rng(seed).standard_normal(out.shape)
    else:
        upstream = np.asarray(grad_outputs.data if isinstance(grad_outputs, Tensor) else grad_outputs, np.float64)
        if upstream.shape != out.shape:
            raise ValueError(f"gradgradcheck: grad_outputs has shape {upstream.shape}, the output {out.shape}")
    n = len(inputs64)

    def first_derivatives(*args: Any) -> Tensor:
        """fn's gradients (flattened, one vector) at inputs ``args[:n]`` for the upstream gradient ``args[n]``;
        with a graph when called with grad mode on (autograd's side), values only under no_grad (the finite
        differences', whose shifted inputs are constants: they become leaves here)."""
        graph = is_grad_enabled()
        with enable_grad():
            xs = list(args[:n])
            for i in checked:
                if not xs[i].requires_grad:
                    xs[i] = Tensor(xs[i].data, requires_grad=True)
            grads = grad(fn(*xs), [xs[i] for i in checked], args[n], create_graph=graph, allow_unused=True)
            return Tensor.cat([Tensor(np.zeros(xs[i].size)) if g is None else g.reshape(-1)
                               for i, g in zip(checked, grads)])

    return _check(first_derivatives, [*inputs64, Tensor(upstream, requires_grad=True)], eps, atol, rtol, seed + 1,
                  "gradgradcheck", "second derivatives (autograd's derivatives of the first ones) and finite "
                  "differences of the first derivatives disagree", [*map(str, range(n)), "grad_outputs"])


def _output(fn: Callable[..., Tensor], inputs: Sequence[Any], what: str) -> Tensor:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"{what}: fn must return a Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError(f"{what}: the output does not depend on any input that requires grad")
    return out


def _check(fn: Callable[..., Tensor], inputs64: list[Any], eps: float, atol: float, rtol: float, seed: int,
           what: str, disagree: str, names: list[str]) -> bool:
    """The finite-difference check of ``fn`` at ``inputs64`` (float64 already), reported under ``what``."""
    checked = [i for i, x in enumerate(inputs64) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError(f"{what}: no input Tensor has requires_grad=True")
    rng = np.random.default_rng(seed)

    out = _output(fn, inputs64, what)
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
            rows.append((names[i], inputs64[i].shape, exact, numeric, bad))
    if failed:
        width = max(5, *map(len, names))
        lines = [f"{what}: {disagree} (eps={eps}, atol={atol}, rtol={rtol})",
                 f"{'input':>{width}}  {'shape':<14}{'analytic':>16}{'numeric':>16}{'abs diff':>12}  verdict"]
        for name, shape, exact, numeric, bad in rows:
            lines.append(f"{name:>{width}}  {str(shape):<14}{exact:>16.8g}{numeric:>16.8g}{abs(exact - numeric):>12.3g}"
                         f"  {'FAIL' if bad else 'ok'}")
        raise GradcheckError("\n".join(lines))
    return True
