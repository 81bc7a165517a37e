"""Higher-order gradients, as ``torch.autograd``: ``grad`` and ``hvp``.

``grad(outputs, inputs, ...)`` returns gradients instead of accumulating them into ``.grad``; with
``create_graph=True`` they are Tensors with a graph of their own, so they can be differentiated again (the engine
runs each rule's backward on Tensors, see ``engine.Function``). ``hvp(fn, inputs, v)`` is the Hessian-vector
product of a scalar function, as ``torch.autograd.functional.hvp``. ``Function`` is the base of every rule,
written our way (``forward``/``backward`` on arrays) or PyTorch's (static ``forward(ctx, ...)``/``backward(ctx,
...)`` on Tensors, ``ctx.save_for_backward``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import Function, FunctionCtx, enable_grad, grad
from .tensors import Tensor

__all__ = ["Function", "FunctionCtx", "grad", "hvp"]


def hvp(fn: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Any = None,
        create_graph: bool = False) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    """``(fn(*inputs), H v)``: the Hessian of the scalar ``fn`` at ``inputs`` times ``v`` (as
    ``torch.autograd.functional.hvp``).

    ``inputs``: a Tensor or a tuple of Tensors (``fn`` is called with copies that require grad); ``v``: the
    same structure (Tensors or arrays), which may be omitted when the input has one element. Returns the output
    (detached, unless ``create_graph``) and the product in the structure of ``inputs``; an input the Hessian does
    not reach gets zeros. Two backward passes: the gradient of ``grad(fn) . v``, which is ``H v`` since the
    Hessian of a twice differentiable function is symmetric (PyTorch's ``vhp``; its ``hvp`` gives the same).
    """
    single = isinstance(inputs, Tensor)
    given = [inputs] if single else list(inputs)
    xs = [_leaf(x, i) for i, x in enumerate(given)]
    vs = _vectors(v, xs, single)
    with enable_grad():
        out = fn(*xs)
        if not isinstance(out, Tensor) or out.size != 1:
            raise ValueError(f"hvp: fn must return a Tensor with one element, got "
                             f"{f'shape {out.shape}' if isinstance(out, Tensor) else type(out).__name__}")
        products: tuple[Any, ...] = (None,) * len(xs)
        if out.requires_grad:
            first = grad(out, xs, create_graph=True, allow_unused=True)
            terms = [(g * u).sum() for g, u in zip(first, vs) if g is not None and g.requires_grad]
            if terms:
                products = grad(sum(terms[1:], terms[0]), xs, create_graph=create_graph, allow_unused=True)
    hv = tuple(Tensor(np.zeros_like(x.data)) if p is None else p for x, p in zip(xs, products))
    return (out if create_graph else out.detach()), (hv[0] if single else hv)


def _leaf(x: Any, i: int) -> Tensor:
    data = np.asarray(x.data if isinstance(x, Tensor) else x)
    if data.dtype.kind != "f":
        raise TypeError(f"hvp: input {i} must be a floating point tensor, got dtype {data.dtype}")
    return Tensor(data, requires_grad=True)


def _vectors(v: Any, xs: list[Tensor], single: bool) -> list[Tensor]:
    if v is None:
        if len(xs) != 1 or xs[0].size != 1:
            raise ValueError("hvp: v can be omitted only when the input is a single one-element tensor")
        return [Tensor(np.ones_like(xs[0].data))]
    vs = [v] if single else list(v) if isinstance(v, (list, tuple)) else None
    if vs is None or len(vs) != len(xs):
        raise ValueError(f"hvp: v must have the structure of inputs ({len(xs)} tensor(s)), got {type(v).__name__}")
    out = []
    for i, (u, x) in enumerate(zip(vs, xs)):
        u = u if isinstance(u, Tensor) else Tensor(np.asarray(u, dtype=x.dtype))
        if u.shape != x.shape:
            raise ValueError(f"hvp: v[{i}] has shape {u.shape}, but input {i} has shape {x.shape}")
        out.append(u)
    return out
