"""The causes ``check_gradients`` can name: a registry of one small class per cause kind, each with its identifier,
its words and how it is found (undoing a mistake on the hand-written gradient, or re-walking autograd's backward
with the mistake made), and the search that tries them in the registry's order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..engine import rules
from ..tensors import Tensor
from .graph import Change, Graph, Op, site_text, sites_text
from .run import Parameters, batch_sizes, float32_autograd, relative_difference

if TYPE_CHECKING:
    from .report import GradientEntry

MAX_VARIANTS = 256  # re-walks of the graph tried per check, at most (each is one backward pass)
FLOAT32_EPS = float(np.finfo(np.float32).eps)

# The local derivative of each op that can be skipped, in words: from the rule classes.
DERIVATIVES = {name: rule.derivative for name, rule in rules().items() if rule.derivative}
DERIVATIVES["square"] = "2 * z"  # x * x, recognised from the values


@dataclass
class Finding:
    """A cause found for one entry: what it is, and what is left of the difference once it is applied."""

    kind: str
    op: str | None = None
    factor: float | None = None
    advice: str = ""
    residual: float | None = None


@dataclass
class Variant:
    """One known mistake applied to autograd's backward: a change to the walk (``engine.walk``'s visit)."""

    kind: str
    op: str | None
    change: Change
    advice: str


# ----------------------------------------------------------------------------------------------------------
# The registry: one class per cause kind, tried in the order they are defined here
# ----------------------------------------------------------------------------------------------------------

CAUSES: dict[str, type[Cause]] = {}


class Cause:
    """One kind of mistake. ``kind``: its stable identifier; ``words``: what tables and drawings show; ``tried``:
    how the unexplained sentence names it (None: not a mistake that is searched for).

    How it is found, each optional: ``shaped(e, graph, rtol)`` for a hand-written gradient of another shape,
    ``undo(hand, auto, ...)`` undoing the mistake on the hand-written gradient, ``variants(graph)`` the walks
    of autograd's backward with the mistake made. A subclass registers itself.
    """

    kind: ClassVar[str]
    words: ClassVar[str]
    tried: ClassVar[str | None] = None
    combines: ClassVar[bool] = False  # failing alone, tried again with a cause found by ``undo`` on top

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CAUSES[cls.kind] = cls

    @classmethod
    def text(cls, op: str | None, factor: float | None) -> str:
        return cls.words

    @staticmethod
    def shaped(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        return None

    @staticmethod
    def undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
             after: str = "") -> Finding | None:
        return None

    @staticmethod
    def variants(graph: Graph) -> Iterator[Variant]:
        return iter(())


class MissingDerivative(Cause):
    """An op's local derivative skipped: the gradient passed through it unchanged."""

    kind, words, tried = "missing_derivative", "missing derivative", "a missing derivative of any op"
    combines = True

    @classmethod
    def text(cls, op: str | None, factor: float | None) -> str:
        return f"missing {op} derivative"

    @staticmethod
    def variants(graph: Graph) -> Iterator[Variant]:
        """One op's derivative skipped, nearest the loss first; then every op of a kind at once."""
        ops = graph.ops()
        for op in ops:
            yield MissingDerivative.skip([op])
        by_name: dict[str, list[Op]] = {}
        for op in ops:
            by_name.setdefault(op.name, []).append(op)
        for group in by_name.values():
            if len(group) > 1:
                yield MissingDerivative.skip(group)

    @staticmethod
    def skip(group: list[Op]) -> Variant:
        """The walk that passes the gradient arriving at each op of ``group`` straight to its input."""
        name = group[0].name
        outputs = {op.y: op.x for op in group}

        def change(node: Tensor, grad: np.ndarray, sent: list) -> list | None:
            x = outputs.get(node)
            return None if x is None else [(None, x, grad.astype(x.dtype, copy=False))]

        derivative = DERIVATIVES.get(name) or f"the derivative of {name}"
        return Variant(MissingDerivative.kind, name, change, (
            f"your backward passes the gradient through {name} unchanged{sites_text([op.site for op in group])}, "
            f"skipping its derivative: multiply the gradient arriving at its output by {derivative} before passing "
            "it on"))


def _least_squares_factor(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float) -> float | None:
    """``c`` with ``h`` = c * ``ref`` to ``rtol`` (rounded when it is an integer or 1/integer), if there is one."""
    norm = float(np.sum(ref * ref))
    if norm > 0 and np.any(h):
        c = float(np.sum(h * ref)) / norm
        if abs(c - 1) > 1e-9 and relative_difference(h, c * ref, scale)[1] <= rtol * max(1.0, abs(c)):
            return _nice(c)
    return None


class Scale(Cause):
    """Off by a constant factor: hand ~ factor * autograd (a mean missed or taken twice, a stray 2)."""

    kind, words, tried = "scale", "constant factor", "a constant factor"

    @classmethod
    def text(cls, op: str | None, factor: float | None) -> str:
        return cls.words if factor is None else f"factor {_factor(factor)}"

    @staticmethod
    def undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
             after: str = "") -> Finding | None:
        c = _least_squares_factor(h, ref, scale, rtol)
        if c is None or c == -1:
            return None
        text = f"the hand-written gradient is {_factor(c)} times autograd's (divided by {_factor(c)}, it agrees)"
        return Finding(Scale.kind, factor=c, residual=relative_difference(h, c * ref, scale)[1],
                       advice=after + text + _batch_size_words(c, sizes))


def _batch_size_words(c: float, sizes: list[int]) -> str:
    for n in sizes:
        if n > 1 and abs(c - n) < 1e-9 * n:
            return (f": {n} is the batch size, so the loss averages over the {n} samples but this gradient does not; "
                    f"divide it by {n}")
        if n > 1 and abs(c * n - 1) < 1e-9:
            return (f": 1/{n} with {n} the batch size, so this gradient divides by the batch size where the loss "
                    "does not (or divides twice); drop that division")
    return f"; look for a stray factor {_factor(c)}"


class Sign(Cause):
    """The opposite sign: factor -1."""

    kind, words, tried = "sign", "factor -1", "a sign"

    @staticmethod
    def undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
             after: str = "") -> Finding | None:
        if _least_squares_factor(h, ref, scale, rtol) != -1:
            return None
        return Finding(Sign.kind, factor=-1.0, residual=relative_difference(h, -ref, scale)[1], advice=after + (
            "the hand-written gradient has the opposite sign of autograd's (negated, it agrees): flip its sign, e.g. "
            "where a difference is taken the other way round"))


class Transpose(Cause):
    """The transpose of autograd's gradient (of another shape, or of a square matrix)."""

    kind, words, tried = "transpose", "transposed", "a transpose"
    fix = "return its .T, e.g. x.T @ grad instead of grad.T @ x"

    @staticmethod
    def shaped(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        h, a = e.hand, e.autograd
        if h.shape != a.T.shape or relative_difference(h.T, a, e.scale)[1] > rtol:
            return None
        return Finding(Transpose.kind, residual=relative_difference(h.T, a, e.scale)[1], advice=(
            f"the hand-written gradient has shape {h.shape}, the transpose of autograd's {a.shape} (transposed, "
            f"it agrees): {Transpose.fix}"))

    @staticmethod
    def undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
             after: str = "") -> Finding | None:
        if ref.ndim < 2 or h.shape != ref.T.shape or relative_difference(h.T, ref, scale)[1] > rtol:
            return None  # a square matrix: a transpose keeps the shape
        return Finding(Transpose.kind, residual=relative_difference(h.T, ref, scale)[1], advice=after + (
            f"the hand-written gradient is the transpose of autograd's (shape {h.shape}; transposed, it agrees): "
            f"{Transpose.fix}"))


class BroadcastSum(Cause):
    """Not summed, or summed wrongly, over the axes broadcasting added (e.g. a bias gradient of shape (N, k))."""

    kind, words, tried = "broadcast_sum", "broadcast axes not summed", "a sum over broadcast axes"

    @staticmethod
    def shaped(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        h, a, scale = e.hand, e.autograd, e.scale
        for axes in _axis_sets(h.ndim) if h.size > a.size else ():
            summed = h.sum(axis=axes)
            if summed.size == a.size and relative_difference(summed.reshape(a.shape), a, scale)[1] <= rtol:
                where = _broadcast_site(graph, e.name)
                return Finding(BroadcastSum.kind, residual=relative_difference(summed.reshape(a.shape), a, scale)[1],
                               advice=(
                    f"the hand-written gradient has shape {h.shape} but the value has shape {a.shape}: it is not "
                    f"summed over axis {_axes_text(axes)}, the axes broadcasting added{where}; return "
                    f"grad.sum(axis={_axes_text(axes)})" + ("" if summed.shape == a.shape else f".reshape({a.shape})")))
        return BroadcastSum.unsummed(e, graph, rtol)

    @staticmethod
    def unsummed(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        """Summed over the wrong axes: some sum of the un-summed gradient reproduces the hand-written one."""
        found = _raw(graph, e.name)
        if found is None:
            return None
        raw, node = found
        h, scale = e.hand, e.scale
        extra = raw.ndim - len(e.shape)
        right = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(e.shape)
                                            if n == 1 and raw.shape[extra + i] != 1)
        where = site_text(graph.node_site(node))
        if h.shape == raw.shape and relative_difference(h, raw, scale)[1] <= rtol:
            return Finding(BroadcastSum.kind, residual=relative_difference(h, raw, scale)[1], advice=(
                f"the hand-written gradient is not summed over axis {_axes_text(right)}, the axes broadcasting "
                f"added{where}; return grad.sum(axis={_axes_text(right)})"))
        for axes in _axis_sets(raw.ndim):
            if axes == right:
                continue
            for keep in (False, True):
                summed = raw.sum(axis=axes, keepdims=keep)
                if summed.shape == h.shape and relative_difference(h, summed, scale)[1] <= rtol:
                    return Finding(BroadcastSum.kind, residual=relative_difference(h, summed, scale)[1], advice=(
                        f"the hand-written gradient is summed over axis {_axes_text(axes)}, but broadcasting added "
                        f"axis {_axes_text(right)}{where}; sum over axis {_axes_text(right)} instead"))
        return None


def _axis_sets(ndim: int) -> Iterator[tuple[int, ...]]:
    for k in range(1, ndim + 1):
        yield from combinations(range(ndim), k)


def _axes_text(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _raw(graph: Graph, name: str) -> tuple[np.ndarray, Tensor] | None:
    """The gradient arriving at ``name``'s value before the engine sums it over broadcast axes, when it is used
    once and broadcast there: (that gradient, the node that broadcast it)."""
    t = graph.targets.get(name)
    uses = graph.uses.get(t, []) if isinstance(t, Tensor) else []
    if len(uses) != 1:
        return None
    node, index = uses[0]
    seen: dict[str, np.ndarray] = {}

    def capture(n: Tensor, grad: np.ndarray, sent: list) -> None:
        if n is node:
            seen["raw"] = n.grad_fn.backward(grad)[index]

    graph.walk(capture)
    raw = seen.get("raw")
    if raw is None or raw.shape == t.shape:
        return None
    return np.asarray(raw, dtype=np.float64), node


def _broadcast_site(graph: Graph, name: str) -> str:
    t = graph.targets.get(name)
    uses = graph.uses.get(t, []) if isinstance(t, Tensor) else []
    return site_text(graph.node_site(uses[0][0])) if len(uses) == 1 else ""


class SoftmaxJacobian(Cause):
    """Softmax's Jacobian applied wrongly: only its diagonal p * (1 - p), or along another axis."""

    kind, words, tried = "softmax_jacobian", "softmax Jacobian applied wrongly", "softmax's diagonal"

    @staticmethod
    def variants(graph: Graph) -> Iterator[Variant]:
        for op in graph.ops():
            if op.name == "softmax" and op.axis is not None:
                yield from SoftmaxJacobian.wrong_jacobians(op)

    @staticmethod
    def wrong_jacobians(op: Op) -> Iterator[Variant]:
        """The walks with ``op``'s Jacobian replaced by its diagonal, then by the Jacobian along each other axis."""
        p, axis = op.y.data, op.axis
        site = site_text(op.site)
        fix = f"apply the whole Jacobian: dz = p * (g - (g * p).sum(axis={axis}, keepdims=True))"

        def diagonal(node: Tensor, grad: np.ndarray, sent: list) -> list | None:
            return [(None, op.x, grad * p * (1 - p))] if node is op.y else None

        yield Variant(SoftmaxJacobian.kind, "softmax", diagonal,
                      f"the hand-written gradient applies only the diagonal p * (1 - p) of the Jacobian of the "
                      f"softmax{site}: {fix}")
        for other in range(p.ndim):
            if other == axis:
                continue

            def along(node: Tensor, grad: np.ndarray, sent: list, other: int = other) -> list | None:
                return [(None, op.x, p * (grad - (grad * p).sum(axis=other, keepdims=True)))] if node is op.y else None

            yield Variant(SoftmaxJacobian.kind, "softmax", along,
                          f"the hand-written gradient applies softmax's Jacobian along axis {other}, but the "
                          f"softmax{site} normalises along axis {axis}: {fix}")


class NotAccumulated(Cause):
    """A value used twice got the gradient of one use only."""

    kind, words, tried = "not_accumulated", "a use of a reused value missing", "a dropped use of a reused value"

    @staticmethod
    def variants(graph: Graph) -> Iterator[Variant]:
        """For each value used more than once (parameters first): the walk without one of its uses."""
        names = {t: name for name, t in graph.targets.items() if isinstance(t, Tensor)}
        reused = [t for t, uses in graph.uses.items() if len(uses) > 1]
        reused.sort(key=lambda t: (t not in names, graph.rank(t)))
        for t in reused:
            uses = graph.uses[t]
            what = f"{names[t]!r}" if t in names else "the value computed" + site_text(graph.node_site(t))
            for node, index in uses:
                def change(n: Tensor, grad: np.ndarray, sent: list, node: Tensor = node,
                           index: int = index) -> list | None:
                    return [s for s in sent if s[0] != index] if n is node else None

                yield Variant(NotAccumulated.kind, None, change, (
                    f"{what} is used {len(uses)} times{sites_text([graph.node_site(u) for u, _ in uses])}, but this "
                    f"gradient leaves out its use by {node.grad_fn.label()}"
                    + ("" if len({graph.node_site(u) for u, _ in uses}) == 1 else site_text(graph.node_site(node)))
                    + ": gradients of a value used several times add up, so add that use's contribution"))


class Shape(Cause):
    """Any other shape mismatch (the last of the causes for a gradient of another shape)."""

    kind, words = "shape", "wrong shape"

    @staticmethod
    def shaped(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        h, a = e.hand, e.autograd
        if h.size == a.size and relative_difference(h.reshape(a.shape), a, e.scale)[1] <= rtol:
            return Finding(Shape.kind, advice=(f"the hand-written gradient has shape {h.shape} but the value has "
                                               f"shape {a.shape}; the values are right: reshape it to {a.shape}"))
        return Finding(Shape.kind, advice=f"the hand-written gradient has shape {h.shape}, the value {a.shape}")


class Missing(Cause):
    """No hand-written gradient for a parameter (or a watched value it covers)."""

    kind, words = "missing", "no hand-written gradient"

    @staticmethod
    def finding(e: GradientEntry) -> Finding:
        what = "parameter" if e.kind == "parameter" else "watched value"
        return Finding(Missing.kind, advice=f"backward returned no gradient for this {what}; add it to the dict it "
                                            "returns")


class Precision(Cause):
    """Agrees only to float32 rounding: the backward computes in float32 somewhere."""

    kind, words = "precision", "float32 rounding only"
    largest = 1e-3  # a relative difference above this is never float32 rounding

    @staticmethod
    def explains(e: GradientEntry, a32: np.ndarray | None) -> bool:
        """Entrywise, the hand-written gradient differs from autograd's by no more than float32 rounding does (as
        autograd run in float32, ``a32``, shows)."""
        h, a = e.hand, e.autograd
        if a32 is None or a32.shape != a.shape or not np.isfinite(h).all():
            return False
        bound = 8 * (np.abs(a32 - a) + FLOAT32_EPS * np.abs(a)) + FLOAT32_EPS * e.scale
        return bool(np.all(np.abs(h - a) <= bound))

    @staticmethod
    def finding(e: GradientEntry) -> Finding:
        return Finding(Precision.kind, advice=(
            f"the hand-written gradient agrees with autograd only to float32 rounding (max rel diff {e.max_rel:.1e}, "
            "no more than autograd itself run in float32 differs from float64): your backward computes in float32 "
            "somewhere; compute it in float64 to check it exactly"))


class Unexplained(Cause):
    """No computed cause: the sentence lists what was tried (every registered cause with a ``tried``)."""

    kind, words = "unexplained", "unexplained"

    @staticmethod
    def finding(e: GradientEntry) -> Finding:
        return Finding(Unexplained.kind, advice=Unexplained.advice(e))

    @staticmethod
    def advice(e: GradientEntry) -> str:
        h = e.hand
        if h is not None and not np.isfinite(h).all():
            bad = ~np.isfinite(h)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            count = int(bad.sum())
            return (f"backward returned {count} non-finite value{'s' if count > 1 else ''} (nan or inf) of {h.size} "
                    f"for it, the first at index {first} ({h[first]}); autograd's gradient is finite there")
        if h is not None and not np.any(h):
            return "the hand-written gradient is all zeros, autograd's is not: it is never filled in"
        if e.scale == 0:
            return "autograd's gradient is zero (the loss does not depend on this value), the hand-written one is not"
        tried = [cause.tried for cause in CAUSES.values() if cause.tried]
        return (f"no computed cause: not {', '.join(tried[:-1])} nor {tried[-1]}; compare report[name].hand with "
                "report[name].autograd, starting with the disagreeing entry nearest the loss")


CAUSE_KINDS = tuple(CAUSES)


def cause_words(kind: str | None, op: str | None, factor: float | None) -> str | None:
    """A cause in a few words, from its identifiers (what drawings and tables show)."""
    if kind is None:
        return None
    cause = CAUSES[kind]
    text = cause.text(op, factor)
    if op and "undo" in vars(cause):  # found by undoing it on top of a skipped derivative
        return f"{MissingDerivative.text(op, None)}, and {text}"
    return text


def _factor(c: float) -> str:
    if c != 0 and abs(c) < 1 and abs(1 / c - round(1 / c)) < 1e-9 * abs(1 / c):
        return f"{'-' if c < 0 else ''}1/{abs(round(1 / c))}"
    return f"{c:g}"


def _nice(c: float) -> float:
    """``c`` rounded to an integer or to 1/integer when it is one to 1e-9."""
    if abs(c - round(c)) < 1e-9 * max(1.0, abs(c)):
        return float(round(c))
    if abs(1 / c - round(1 / c)) < 1e-9 * abs(1 / c):
        return 1 / round(1 / c)
    return c


# ----------------------------------------------------------------------------------------------------------
# The search: every cause is a computation that reproduces the hand-written numbers
# ----------------------------------------------------------------------------------------------------------


def _first(findings: Iterator[Finding | None]) -> Finding | None:
    return next((f for f in findings if f is not None), None)


def undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
         after: str = "") -> Finding | None:
    """The first cause that, undone on ``h``, makes it agree with ``ref``."""
    return _first(cause.undo(h, ref, scale, rtol, sizes, after) for cause in CAUSES.values())


def diagnose(entries: list[GradientEntry], graph: Graph, forward: Callable, parameters: Parameters, args: tuple,
             rtol: float) -> None:
    """Set the cause of every entry whose hand-written gradient disagrees with autograd."""
    sizes = batch_sizes(args)
    pending: list[GradientEntry] = []
    for e in entries:
        if e.agree:
            continue
        found = _first_look(e, graph, sizes, rtol)
        if found is None:
            pending.append(e)
        else:
            _set(e, found)
    precise = [e for e in pending if e.max_rel <= Precision.largest]
    if precise:
        float32 = float32_autograd(forward, parameters, args)
        for e in precise:
            if float32 is not None and Precision.explains(e, float32.get(e.name)):
                _set(e, Precision.finding(e))
                pending.remove(e)
    if pending:
        _try_variants(pending, graph, sizes, rtol)
    for e in pending:
        if e.cause_kind is None:
            _set(e, Unexplained.finding(e))


def _set(e: GradientEntry, found: Finding) -> None:
    e.cause_kind, e.cause_op, e.factor, e.explained_max_rel = found.kind, found.op, found.factor, found.residual
    e.cause = cause_words(found.kind, found.op, found.factor)
    e.advice = found.advice


def _first_look(e: GradientEntry, graph: Graph, sizes: list[int], rtol: float) -> Finding | None:
    """Causes read off the two arrays alone: missing, wrong shape, non-finite, a factor, a transpose."""
    h, a = e.hand, e.autograd
    if h is None:
        return Missing.finding(e)
    if h.shape != a.shape:
        return _first(cause.shaped(e, graph, rtol) for cause in CAUSES.values())
    if not np.isfinite(h).all() or not np.any(h):
        return Unexplained.finding(e)
    return undo(h, a, e.scale, rtol, sizes)


def _try_variants(pending: list[GradientEntry], graph: Graph, sizes: list[int], rtol: float) -> None:
    """Walk the graph once per known mistake; an entry takes the first mistake whose gradient reproduces its
    hand-written one; failing that, a missing derivative combined with a factor, sign or transpose."""
    combined: dict[str, Finding] = {}
    open_entries = [e for e in pending if e.hand is not None and e.hand.shape == e.autograd.shape]
    variants = (variant for cause in CAUSES.values() for variant in cause.variants(graph))
    for n, variant in enumerate(variants):
        if not open_entries or n >= MAX_VARIANTS:
            break
        grads = graph.walk(variant.change)
        for e in list(open_entries):
            g = grads.get(e.name, np.zeros(e.autograd.shape))
            if relative_difference(g, e.autograd, e.scale)[1] <= rtol or not np.max(np.abs(g)) > rtol * e.scale:
                continue  # this mistake does not touch the entry, or wipes its gradient out: it explains nothing
            # relative to the larger of the two gradients: a mistake may make the reproduced one much larger
            scale = max(e.scale, float(np.max(np.abs(g))))
            residual = relative_difference(e.hand, g, scale)[1]
            if residual <= rtol:
                _set(e, Finding(variant.kind, variant.op, advice=variant.advice, residual=residual))
                open_entries.remove(e)
            elif CAUSES[variant.kind].combines and e.name not in combined:
                also = undo(e.hand, g, scale, rtol, sizes, after="and, against autograd with that derivative skipped "
                                                                  "too, ")
                if also is not None:
                    also.op, also.advice = variant.op, variant.advice + "; " + also.advice
                    combined[e.name] = also
    for e in open_entries:
        if e.name in combined:
            _set(e, combined[e.name])
        else:
            found = BroadcastSum.unsummed(e, graph, rtol)
            if found is not None:
                _set(e, found)
