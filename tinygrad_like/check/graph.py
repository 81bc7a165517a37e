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

from .. import engine, numpy_protocol
from ..engine import Function, quiet, rules, walk
from ..tensors import Tensor
from .run import call_user

# Rules linear in their differentiable input: the rule's own name says what it computes (skipping its
# "derivative" is a scale, shape or sum mistake), unless its values say it is x * x and the like.
LINEAR_RULES = frozenset(name for name, rule in rules().items() if rule.linear) | {"neg"}

# Frames of the library and of NumPy are not the user's: the recorder looks past them, so the op of a Module, an
# nn function or a Tensor method is placed at the user's line. The library is this package and what
# ``import tinygrad_like`` has loaded before it (Tensors, ops, nn, optim); rooms loaded later, on first use, are
# not the library a forward calls: a study among them is code written as a learner's, and counts as the user's.
_PACKAGE = engine.__name__.rpartition(".")[0] + "."
_LIBRARY = frozenset(os.path.abspath(m.__file__) for name, m in list(sys.modules.items())
                     if name.startswith(_PACKAGE) and getattr(m, "__file__", None))
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
            known = self._users[code] = not (path in _LIBRARY or path.startswith((_OWN_DIR, _NUMPY_DIR)))
        return known


Site = tuple[tuple[str, int], ...]  # (file, line) of the innermost user-level call, then the forward's, or ()


def lines_of(places: tuple[Place, ...]) -> tuple[tuple[str, int], ...]:
    """(file, line) of each user-level call, innermost first: the same in every iteration of a loop."""
    return tuple((p.file, p.line) for p in places if p.file)


def site_of(places: tuple[Place, ...]) -> Site:
    known = lines_of(places)
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
    lines: tuple = ()  # every user-level line that led there (lines_of): equal for one line of a loop's body
    axis: int | None = None  # softmax's axis


Change = Callable[[Tensor, np.ndarray, list], list | None]  # engine.walk's visit
SMALL_CONSTANT = 1e-4  # a constant added that is at most this is an epsilon (log(p + 1e-7), sqrt(var + 1e-5))


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

    def small_constants(self) -> dict[Tensor, int]:
        """The adds of a small constant to a value on the graph (the 1e-7 of ``np.log(p + 1e-7)``, the 1e-5 of
        ``np.sqrt(var + 1e-5)``): node -> the position of the constant among its inputs."""
        found = {}
        for t in self.order:
            fn = t.grad_fn
            if fn is not None and fn.name in ("add", "sub"):
                for i, (x, need) in enumerate(zip(fn.inputs, fn.needs_grad)):
                    if not need and x.size == 1 and 0 < abs(float(x.data.reshape(()))) <= SMALL_CONSTANT:
                        found[t] = i
        return found

    def without_small_constants(self) -> Graph | None:
        """The graph of the same forward with its small constants set to zero: its ops from the first one they
        touch are run again, the rest shared. None when there are none, or when an op cannot be run again."""
        small = self.small_constants()
        if not small:
            return None
        new: dict[Tensor, Tensor] = {}
        chains = dict(self.chains)
        try:
            with engine.enable_grad():
                for t in self.order:
                    fn = t.grad_fn
                    if fn is None or (t not in small and not any(x in new for x in fn.inputs)):
                        continue  # untouched: shared with this graph
                    inputs = [new.get(x, x) for x in fn.inputs]
                    if t in small:
                        inputs[small[t]] = Tensor(np.zeros_like(inputs[small[t]].data))
                    out = type(fn).apply(*inputs, **(getattr(fn, "params", None) or {}))
                    new[t] = out
                    chains[out.grad_fn] = self.chains.get(fn, ())
        except Exception:  # a rule that keeps state of its own: no epsilon-free graph, so no "epsilon" cause
            return None
        targets = {name: new.get(t, t) if isinstance(t, Tensor) else t for name, t in self.targets.items()}
        return Graph(new.get(self.loss, self.loss), targets, chains)

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
            linear, name = fn.name in LINEAR_RULES, rule_name(fn)
            op = self._as_op(frozenset([t]), t, name, chain, getattr(fn, "axis", None), recognising=linear)
            if op is not None and (op.name != fn.name or not linear):
                found.setdefault(op.members, op)
            for level, place in enumerate(chain[:-1]):  # the outermost is the forward itself: not a composite
                calls.setdefault(place.key, (place, chain[level + 1:], set()))[2].add(t)
        for place, around, members in calls.values():
            members = frozenset(members)
            y = self._single_output(members)
            op = y is not None and self._as_op(members, y, place.name, around, None)
            if op:
                found.setdefault(members, op)
        self._ops = sorted(found.values(), key=lambda op: self.rank(op.y))
        return self._ops

    def _single_output(self, members: frozenset) -> Tensor | None:
        outputs = [t for t in members if t is self.loss or t in self.named
                   or any(c not in members for c, _ in self.uses.get(t, ()))]
        return outputs[0] if len(outputs) == 1 else None

    def _as_op(self, members: frozenset, y: Tensor, name: str, places: tuple[Place, ...], axis: int | None,
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
        return Op(name, members, x, y, site_of(places), lines_of(places), axis)


def _constant(fn: Function, position: int) -> np.ndarray | None:
    """The value of ``fn``'s input at ``position`` when it is a constant (no gradient flows into it)."""
    inputs = fn.inputs
    return None if position >= len(inputs) or fn.needs_grad[position] else np.asarray(inputs[position].data)


def rule_name(fn: Function) -> str:
    """The op a rule computes, in the user's words: ``x ** 2`` is square, a product with a constant of zeros
    and one other value (a dropout mask, ``z * (z > 0)``) is a mask."""
    if fn.name == "pow":
        exponent = _constant(fn, 1)
        if exponent is not None and exponent.size == 1 and exponent == 2:
            return "square"
    if fn.name == "mul" and len(fn.inputs) == 2:
        other = [_constant(fn, i) for i in (0, 1)]
        mask = other[1] if other[1] is not None else other[0]
        same = mask is not None and mask.shape == fn.inputs[0].shape == fn.inputs[1].shape and mask.size > 1
        if same and not mask.all():  # some zeros: is the rest one value?
            values = np.unique(mask)
            if len(values) == 2 and values[0] == 0:
                return "mask"
    return fn.name


def op_label(fn: Function) -> str:
    """What a sentence calls an op: its name in the user's words, else the rule's label (``sum(axis=(0,))``)."""
    name = rule_name(fn)
    return fn.label() if name == fn.name else name


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
