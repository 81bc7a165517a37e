"""The Tensor run's graph for ``check_gradients``: the recorder (which line of the user's code made each op), the
user's ops recognised by what they compute, and the backward walk with one change at a time."""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import engine, numpy_protocol, ops, tensors
from ..engine import Function, quiet, rules, walk
from ..tensors import Tensor
from .run import call_user

# Rules linear in their differentiable input: the rule's own name says what it computes (skipping its
# "derivative" is a scale, shape or sum mistake), unless its values say it is x * x and the like.
LINEAR_RULES = frozenset(name for name, rule in rules().items() if rule.linear) | {"neg"}

# Frames of the Tensor machinery, of this package and of NumPy are not the user's: the recorder looks past them.
_MACHINERY = frozenset(os.path.abspath(m.__file__) for m in (engine, ops, tensors, numpy_protocol))
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_PROTOCOL_ENTRIES = {numpy_protocol.array_ufunc.__code__: "ufunc", numpy_protocol.array_function.__code__: "func"}


# ----------------------------------------------------------------------------------------------------------
# The recorder: where each op was made
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """One level of the calls that made an op: a call of a user function, or of a NumPy function on Tensors."""

    key: Any  # the frame: one per call, kept alive while checking so it stays unique
    name: str
    file: str
    line: int


class Recorder:
    """``engine.set_recorder`` hook: for each op, the user-level calls it was made in, innermost first."""

    def __init__(self) -> None:
        self.chains: dict[Function, tuple[Place, ...]] = {}
        self._users: dict[Any, bool] = {}  # code object -> is it the user's

    def __call__(self, fn: Function) -> None:
        chain = []
        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not call_user.__code__:
            code = frame.f_code
            entry = _PROTOCOL_ENTRIES.get(code)
            if entry is not None:
                chain.append(Place(frame, getattr(frame.f_locals.get(entry), "__name__", "numpy"), "", 0))
            elif self._is_user(code):
                chain.append(Place(frame, code.co_name, code.co_filename, frame.f_lineno))
            frame = frame.f_back
        self.chains[fn] = tuple(chain)

    def _is_user(self, code: Any) -> bool:
        known = self._users.get(code)
        if known is None:
            path = os.path.abspath(code.co_filename)
            known = self._users[code] = not (path in _MACHINERY or path.startswith((_OWN_DIR, _NUMPY_DIR)))
        return known


Site = tuple[tuple[str, int], ...]  # (file, line) of the innermost user-level call, then the forward's, or ()


def site_of(places: tuple[Place, ...]) -> Site:
    known = [(p.file, p.line) for p in places if p.file]
    return () if not known else tuple(dict.fromkeys([known[0], known[-1]]))


def _line(file: str, line: int) -> str:
    code = linecache.getline(file, line).strip()
    return f"{os.path.basename(file)} line {line}" + (f" (`{code}`)" if code else "")


def site_text(site: Site) -> str:
    """`` at model.py line 12 (`h = np.tanh(z)`), called from line 30 (`...`)``; nothing when not known."""
    if not site:
        return ""
    text = " at " + _line(*site[0])
    return text + (f", called from {_line(*site[-1])}" if len(site) > 1 else "")


def sites_text(sites: list[Site]) -> str:
    known = list(dict.fromkeys(s for s in sites if s))
    if len(known) <= 1:
        return site_text(known[0] if known else ())
    return " at " + " and ".join(_line(*s[0]) for s in known)


# ----------------------------------------------------------------------------------------------------------
# The graph and the user's ops
# ----------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Op:
    """An op of the user's code: one rule, or the ops one call of a user (or NumPy) function made."""

    name: str
    members: frozenset  # the tensors its nodes made
    x: Tensor  # its one differentiable input
    y: Tensor  # its output, of x's shape
    site: Site  # where it was computed or called, and the line of the forward that led there
    axis: int | None = None  # softmax's axis


Change = Callable[[Tensor, np.ndarray, list], list | None]  # engine.walk's visit


class Graph:
    """The recorded graph of the Tensor run and the backward walk over it, with one change at a time."""

    def __init__(self, loss: Tensor, targets: dict[str, Any], chains: dict[Function, tuple[Place, ...]]) -> None:
        self.loss, self.targets, self.chains = loss, targets, chains
        self.named = {t for t in targets.values() if isinstance(t, Tensor)}  # a set: Tensor's == compares values
        # One plain walk surveys the graph: the nodes in backward order (the loss first) and what each sends.
        visited: list[tuple[Tensor, list]] = []

        def survey(node: Tensor, grad: np.ndarray, sent: list) -> None:
            visited.append((node, [(i, x) for i, x, _ in sent]))

        walk([(loss, np.ones_like(loss.data))], visit=survey)
        self.order = [node for node, _ in reversed(visited)]  # forward order: inputs before the ops using them
        self._rank = {node: (step, 0, 0) for step, (node, _) in enumerate(visited)}
        self.uses: dict[Tensor, list[tuple[Tensor, int]]] = {}
        for node, sent in reversed(visited):
            for i, x in sent:
                self.uses.setdefault(x, []).append((node, i))
        for x, uses in self.uses.items():
            if x.grad_fn is None:  # a leaf ranks just behind its first use, as it comes just before it in the code
                node, i = uses[0]
                self._rank.setdefault(x, (self._rank[node][0], 1, -i))
        self._ops: list[Op] | None = None

    def rank(self, t: Tensor | None) -> tuple[int, int, int]:
        """Backward order: smallest for the loss, larger further from it; unreached values last."""
        return self._rank.get(t, (len(self.order) + 1, 0, 0)) if isinstance(t, Tensor) else (len(self.order) + 1, 0, 0)

    def walk(self, change: Change | None = None) -> dict[str, np.ndarray]:
        """Autograd's backward from the loss, with ``change(node, grad, sent)`` deciding a node's contributions
        (``engine.walk``'s visit); the targets' gradients by name."""
        wanted = {t: name for name, t in self.targets.items() if isinstance(t, Tensor)}
        found = walk([(self.loss, np.ones_like(self.loss.data))], wanted=list(wanted), visit=change)
        return {wanted[t]: g for t, g in found.items()}

    def node_site(self, t: Tensor) -> Site:
        return site_of(self.chains.get(t.grad_fn, ())) if t.grad_fn is not None else ()

    def ops(self) -> list[Op]:
        """Ops whose local derivative can be skipped (one differentiable input, output of its shape), nearest
        the loss first: single nonlinear rules, and the ops made by one call of a user or NumPy function."""
        if self._ops is not None:
            return self._ops
        found: dict[frozenset, Op] = {}
        calls: dict[Any, tuple[Place, tuple[Place, ...], set]] = {}  # call -> (it, the calls around it, members)
        for t in self.order:
            fn = t.grad_fn
            chain = self.chains.get(fn, ())
            linear = fn.name in LINEAR_RULES
            op = self._as_op(frozenset([t]), t, fn.name, site_of(chain), getattr(fn, "axis", None),
                             recognising=linear)
            if op is not None and (op.name != fn.name or not linear):
                found.setdefault(op.members, op)
            for level, place in enumerate(chain[:-1]):  # the outermost is the forward itself: not a composite
                calls.setdefault(place.key, (place, chain[level + 1:], set()))[2].add(t)
        for place, around, members in calls.values():
            members = frozenset(members)
            y = self._single_output(members)
            op = y is not None and self._as_op(members, y, place.name, site_of(around), None)
            if op:
                found.setdefault(members, op)
        self._ops = sorted(found.values(), key=lambda op: self.rank(op.y))
        return self._ops

    def _single_output(self, members: frozenset) -> Tensor | None:
        outputs = [t for t in members if t is self.loss or t in self.named
                   or any(c not in members for c, _ in self.uses.get(t, ()))]
        return outputs[0] if len(outputs) == 1 else None

    def _as_op(self, members: frozenset, y: Tensor, name: str, site: Site, axis: int | None,
               recognising: bool = True) -> Op | None:
        inputs = {x for t in members for x, need in zip(t.grad_fn.inputs, t.grad_fn.needs_grad)
                  if need and x not in members}
        if len(inputs) != 1:
            return None
        (x,) = inputs
        if x.shape != y.shape:
            return None
        recognised = recognise(x.data, y.data) if recognising else None
        if recognised is not None:
            name, axis = recognised
        return Op(name, members, x, y, site, axis)


# What an op may compute, told by the rules' own forwards: (name, its keyword parameters).
_ELEMENTWISE = ("sigmoid", "tanh", "relu", "softplus", "exp", "square", "abs", "sqrt", "log")


def _computes(name: str, x: np.ndarray, **params: Any) -> np.ndarray:
    if name == "square":  # no rule of its own: x * x
        return rules()["mul"]().forward(x, x)
    return rules()[name]().forward(x, **params)


def recognise(x: np.ndarray, y: np.ndarray) -> tuple[str, int | None] | None:
    """What an op computes, told from its input and output values: (name, softmax axis) or None."""
    if x.shape != y.shape or x.size == 0 or x.dtype.kind != "f":
        return None
    x = x.astype(np.float64)
    candidates = [(name, axis) for axis in range(x.ndim) if x.shape[axis] > 1 for name in ("softmax", "log_softmax")]
    candidates += [(name, None) for name in _ELEMENTWISE]
    top = float(np.max(np.abs(y), initial=0.0, where=np.isfinite(y)))
    with quiet():
        for name, axis in candidates:
            v = _computes(name, x) if axis is None else _computes(name, x, axis=axis)
            if np.allclose(y, v, rtol=1e-9, atol=1e-12 * max(1.0, top), equal_nan=True) and not np.array_equal(y, x):
                return name, axis
    return None
