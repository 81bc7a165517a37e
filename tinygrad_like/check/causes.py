"""The causes ``check_gradients`` can name: a registry of one small class per cause kind, each with its identifier,
its words and how it is found (undoing a mistake on the hand-written gradient, or re-walking autograd's backward
with the mistake made), and the search that tries them in the registry's order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import combinations
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..engine import rules
from ..tensors import Tensor
from .graph import Change, Graph, Op, op_label, site_text, sites_text
from .run import Parameters, batch_sizes, float32_autograd, relative_difference

if TYPE_CHECKING:
    from .report import GradientEntry

MAX_VARIANTS = 256  # re-walks of the graph tried per check, at most (each is one backward pass)
FLOAT32_EPS = float(np.finfo(np.float32).eps)

# The local derivative of each op that can be skipped, in words: from the rule classes.
DERIVATIVES = {name: rule.derivative for name, rule in rules().items() if rule.derivative}
DERIVATIVES["square"] = "2 * z"  # x * x or x ** 2
DERIVATIVES["mask"] = "the mask itself (an entry it zeroes gets no gradient)"  # h * mask, a dropout


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
        """Nearest the loss first, the derivative skipped at one line: one op, or the same op made there each time
        a loop ran (every sample of a per-sample loop); then each of those ops alone; then every op of a kind."""
        ops = graph.ops()
        at_line: dict[tuple, list[Op]] = {}  # ops is nearest the loss first, so is each group
        for op in ops:
            at_line.setdefault((op.name, op.lines or id(op), op.y.shape), []).append(op)
        groups = sorted(at_line.values(), key=lambda group: graph.rank(group[0].y))
        yield from (MissingDerivative.skip(group) for group in groups)
        yield from (MissingDerivative.skip([op]) for group in groups if len(group) > 1 for op in group)
        tried = {frozenset(map(id, group)) for group in groups}
        by_name: dict[str, list[Op]] = {}
        for op in ops:
            by_name.setdefault(op.name, []).append(op)
        for group in by_name.values():
            if len(group) > 1 and frozenset(map(id, group)) not in tried:
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
        sites = [op.site for op in group]
        times = f" (each of the {len(group)} times it runs there)" if len(group) > 1 and len(set(sites)) == 1 else ""
        return Variant(MissingDerivative.kind, name, change, (
            f"your backward passes the gradient through {name} unchanged{sites_text(sites)}{times}, skipping its "
            f"derivative: multiply the gradient arriving at its output by {derivative} before passing it on"))


def _least_squares_factor(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float) -> float | None:
    """``c`` with ``h`` = c * ``ref`` to ``rtol`` (rounded when it is an integer or 1/integer), if there is one."""
    norm = float(np.sum(ref * ref))
    if norm > 0 and np.any(h) and np.max(np.abs(ref)) > rtol * scale:  # a multiple of rounding noise is no cause
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
        if h.shape != a.T.shape or relative_difference(h.T, a, e.reference)[1] > rtol:
            return None
        return Finding(Transpose.kind, residual=relative_difference(h.T, a, e.reference)[1], advice=(
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
        h, a, scale = e.hand, e.autograd, e.reference
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
        h, scale = e.hand, e.reference
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
        """Indexing with repeated indices whose gradient is assigned, not accumulated; then for each value used
        more than once (parameters first): the walk without one of its uses."""
        yield from NotAccumulated.assigned(graph)
        yield from NotAccumulated.dropped(graph)

    @staticmethod
    def assigned(graph: Graph) -> Iterator[Variant]:
        """``dC[ix] = g`` (or ``dC[ix] += g``, which NumPy buffers) for ``emb = C[ix]`` with an index that repeats:
        each repeated entry keeps one contribution where np.add.at adds them all."""
        names = {t: name for name, t in graph.targets.items() if isinstance(t, Tensor)}
        for node in sorted(graph.order, key=graph.rank):
            fn = node.grad_fn
            index = (getattr(fn, "params", None) or {}).get("index") if fn.name == "getitem" else None
            if index is None or not _repeats(fn.inputs[0].shape, index):
                continue
            x = fn.inputs[0]

            def change(n: Tensor, grad: np.ndarray, sent: list, node: Tensor = node, x: Tensor = x,
                       index: Any = index) -> list | None:
                if n is not node:
                    return None
                g = np.zeros(x.shape, dtype=grad.dtype)
                g[index] = grad
                return [(0, x, g)]

            name = names.get(x)
            grad_name = f"d{name}" if name else "grad"
            yield Variant(NotAccumulated.kind, None, change, (
                f"{repr(name) if name else 'the value'} is indexed with repeated indices"
                f"{site_text(graph.node_site(node))}, but this gradient keeps one contribution per repeated index: "
                f"{grad_name}[ix] = g (and {grad_name}[ix] += g, which NumPy buffers) writes a repeated index once; "
                f"accumulate with np.add.at({grad_name}, ix, g)"))

    @staticmethod
    def dropped(graph: Graph) -> Iterator[Variant]:
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
                    f"gradient leaves out its use by {op_label(node.grad_fn)}"
                    + ("" if len({graph.node_site(u) for u, _ in uses}) == 1 else site_text(graph.node_site(node)))
                    + ": gradients of a value used several times add up, so add that use's contribution"))


def _repeats(shape: tuple[int, ...], index: Any) -> bool:
    """Whether ``index`` picks some entry of an array of ``shape`` more than once."""
    try:
        picked = np.arange(int(np.prod(shape))).reshape(shape)[index]
    except (IndexError, TypeError, ValueError):
        return False
    return np.size(picked) > np.unique(picked).size


class Shape(Cause):
    """Any other shape mismatch (the last of the causes for a gradient of another shape)."""

    kind, words = "shape", "wrong shape"

    @staticmethod
    def shaped(e: GradientEntry, graph: Graph, rtol: float) -> Finding | None:
        h, a = e.hand, e.autograd
        residual = relative_difference(h.reshape(a.shape), a, e.reference)[1] if h.size == a.size else None
        if residual is not None and residual <= rtol:
            return Finding(Shape.kind, residual=residual, advice=(
                f"the hand-written gradient has shape {h.shape} but the value has shape {a.shape}; the values are "
                f"right: reshape it to {a.shape}"))
        return Finding(Shape.kind, advice=f"the hand-written gradient has shape {h.shape}, the value {a.shape}")


class Missing(Cause):
    """No hand-written gradient for a parameter (or a watched value it covers)."""

    kind, words = "missing", "no hand-written gradient"

    @staticmethod
    def finding(e: GradientEntry) -> Finding:
        what = "parameter" if e.kind == "parameter" else "watched value"
        return Finding(Missing.kind, advice=f"backward returned no gradient for this {what}; add it to the dict it "
                                            "returns")


class Epsilon(Cause):
    """Agrees with autograd once the small constants the forward adds (``np.log(p + 1e-7)``) are set to zero: the
    textbook formula leaves them out, which is harmless. Found on the graph replayed without them."""

    kind, words = "epsilon", "agrees up to a constant in the loss"

    @staticmethod
    def finding(e: GradientEntry, clean: np.ndarray | None, graph: Graph, rtol: float) -> Finding | None:
        """The finding when the hand-written gradient agrees with ``clean``, autograd's without the constants."""
        if clean is None or e.hand is None or e.hand.shape != clean.shape:
            return None
        residual = relative_difference(e.hand, clean, max(e.reference, float(np.max(np.abs(clean), initial=0))))[1]
        if residual > rtol:
            return None
        return Finding(Epsilon.kind, residual=residual, advice=(
            f"the hand-written gradient is autograd's for the forward without {Epsilon.constants(graph)} (the exact "
            f"gradient differs from it by {e.max_rel:.1e} of its size): the textbook formula leaves such a constant "
            "out, which is harmless; to check the backward exactly, leave the constant out of the forward"))

    @staticmethod
    def constants(graph: Graph) -> str:
        """``the constant 1e-07 added at model.py line 3 (`...`)``, for each small constant of the forward."""
        words = []
        for node, i in graph.small_constants().items():
            value = float(node.grad_fn.inputs[i].data.reshape(()))
            verb = "subtracted" if node.grad_fn.name == "sub" and i == 1 else "added"
            words.append(f"the constant {value:g} {verb}{site_text(graph.node_site(node))}")
        return " and ".join(dict.fromkeys(words))


class Precision(Cause):
    """Agrees only to float32 rounding: the backward computes in float32 somewhere."""

    kind, words = "precision", "float32 rounding only"
    largest = 1e-3  # a relative difference above this is never float32 rounding

    @staticmethod
    def explains(e: GradientEntry, rounding: np.ndarray | None) -> bool:
        """Entrywise, the hand-written gradient differs from autograd's by no more than float32 rounding does
        (``rounding``: how far autograd run in float32 is from float64)."""
        h, a = e.hand, e.autograd
        if rounding is None or rounding.shape != a.shape or not np.isfinite(h).all():
            return False
        bound = 8 * (rounding + FLOAT32_EPS * np.abs(a)) + FLOAT32_EPS * e.scale
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
    def finding(e: GradientEntry, rtol: float) -> Finding:
        return Finding(Unexplained.kind, advice=Unexplained.advice(e, rtol))

    @staticmethod
    def advice(e: GradientEntry, rtol: float) -> str:
        h = e.hand
        if h is not None and not np.isfinite(h).all():
            bad = ~np.isfinite(h)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            count = int(bad.sum())
            return (f"backward returned {count} non-finite value{'s' if count > 1 else ''} (nan or inf) of {h.size} "
                    f"for it, the first at index {first} ({h[first]}); autograd's gradient is finite there")
        if h is not None and not np.any(h):
            return "the hand-written gradient is all zeros, autograd's is not: it is never filled in"
        if e.scale <= rtol * e.floor:  # zero, or rounding noise next to the report's gradients
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
    """Set the cause of every entry whose hand-written gradient disagrees with autograd: ``epsilon`` when it is
    autograd's once the forward's small constants are zero; else a cause against autograd; else one against
    autograd without the small constants (a real mistake in code that also leaves an epsilon out)."""
    sizes = batch_sizes(args)
    pending = sorted((e for e in entries if not e.agree), key=lambda e: graph.rank(graph.targets.get(e.name)))
    if not pending:
        return
    clean = graph.without_small_constants()
    clean_grads = clean.walk() if clean is not None else {}
    rest = []
    for e in pending:
        found = Epsilon.finding(e, clean_grads.get(e.name), graph, rtol)
        if found is None:
            rest.append(e)
        else:
            _set(e, found)
    rounding = _Float32(forward, parameters, args, entries)
    _search(rest, graph, sizes, rtol, rounding)
    if clean is not None:
        _search_without_constants([e for e in rest if _open(e)], graph, clean, clean_grads, sizes, rtol, rounding)
    for e in rest:
        if e.cause_kind is None:
            _set(e, Unexplained.finding(e, rtol))


def _search_without_constants(pending: list[GradientEntry], graph: Graph, clean: Graph,
                              clean_grads: dict[str, np.ndarray], sizes: list[int], rtol: float,
                              rounding: _Float32) -> None:
    """Causes against autograd of the forward without its small constants, for entries with none against
    autograd: a real mistake in a backward that also leaves an epsilon out, as textbooks do."""
    retry = [e for e in pending if e.name in clean_grads]
    shadows = [_against(e, clean_grads[e.name]) for e in retry]
    _search(shadows, clean, sizes, rtol, rounding)
    prefix = f"against autograd for the forward without {Epsilon.constants(graph)} (your backward leaves it out), "
    for e, shadow in zip(retry, shadows):
        if not _open(shadow):
            _set(e, Finding(shadow.cause_kind, shadow.cause_op, shadow.factor, prefix + (shadow.advice or ""),
                            shadow.explained_max_rel))


def _open(e: GradientEntry) -> bool:
    """No cause found yet, or only a wrong shape whose values explain nothing."""
    return e.cause_kind is None or (e.cause_kind == Shape.kind and e.explained_max_rel is None)


def _against(e: GradientEntry, auto: np.ndarray) -> GradientEntry:
    """A copy of ``e`` compared with another autograd gradient ``auto``, its cause not looked for yet."""
    scale = float(np.max(np.abs(auto), initial=0.0))
    max_abs, max_rel = relative_difference(e.hand, auto, scale) if e.hand is not None else (e.max_abs, e.max_rel)
    return replace(e, autograd=auto, scale=scale, max_abs=max_abs, max_rel=max_rel, cause_kind=None, cause_op=None,
                   factor=None, cause=None, advice=None, explained_max_rel=None)


class _Float32:
    """How far autograd run in float32 is from float64, per entry: float32 rounding in this computation (the
    forward run once more in float32, only when some entry is close enough to ask)."""

    def __init__(self, forward: Callable, parameters: Parameters, args: tuple, entries: list[GradientEntry]) -> None:
        self.run = lambda: float32_autograd(forward, parameters, args)
        self.float64 = {e.name: e.autograd for e in entries}
        self.grads: dict[str, np.ndarray] | None = None

    def rounding(self, name: str) -> np.ndarray | None:
        if self.grads is None:
            self.grads = self.run() or {}
        a32, a = self.grads.get(name), self.float64.get(name)
        return None if a32 is None or a is None or a32.shape != a.shape else np.abs(a32 - a)


def _search(pending: list[GradientEntry], graph: Graph, sizes: list[int], rtol: float, rounding: _Float32) -> None:
    """Causes against ``graph``'s autograd: read off the two arrays, float32 rounding, then the walks with one
    known mistake made. Entries with no cause found are left without one."""
    open_entries = []
    for e in pending:
        found = _first_look(e, graph, sizes, rtol)
        if found is None:
            open_entries.append(e)
        else:
            _set(e, found)
    for e in [e for e in open_entries if e.max_rel <= Precision.largest]:
        if Precision.explains(e, rounding.rounding(e.name)):
            _set(e, Precision.finding(e))
            open_entries.remove(e)
    if open_entries:
        _try_variants(open_entries, graph, sizes, rtol)


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
        return Unexplained.finding(e, rtol)
    return undo(h, a, e.reference, rtol, sizes)


def _try_variants(pending: list[GradientEntry], graph: Graph, sizes: list[int], rtol: float) -> None:
    """Walk the graph once per known mistake, noting which entries each reproduces. One mistake, one cause: the
    entry nearest the loss takes, of the mistakes reproducing it, the one reproducing most entries (the first
    tried on a tie), and every entry that mistake reproduces takes it too; the next entry left does the same.
    Failing all, a missing derivative combined with a factor, sign or transpose, or a sum over the wrong axes."""
    open_entries = [e for e in pending if e.hand is not None and e.hand.shape == e.autograd.shape]
    reproduced: dict[str, list[tuple[int, Finding]]] = {}
    combined: dict[str, Finding] = {}
    variants = (variant for cause in CAUSES.values() for variant in cause.variants(graph))
    for n, variant in enumerate(variants):
        if n >= MAX_VARIANTS or all(e.name in reproduced for e in open_entries):
            break
        grads = graph.walk(variant.change)
        for e in open_entries:
            g = grads.get(e.name, np.zeros(e.autograd.shape))
            if relative_difference(g, e.autograd, e.reference)[1] <= rtol or not np.max(np.abs(g)) > rtol * e.reference:
                continue  # this mistake does not touch the entry, or wipes its gradient out: it explains nothing
            # relative to the larger of the two gradients: a mistake may make the reproduced one much larger
            scale = max(e.reference, float(np.max(np.abs(g))))
            residual = relative_difference(e.hand, g, scale)[1]
            if residual <= rtol:
                reproduced.setdefault(e.name, []).append((n, Finding(variant.kind, variant.op, advice=variant.advice,
                                                                     residual=residual)))
            elif CAUSES[variant.kind].combines and e.name not in combined and e.name not in reproduced:
                also = undo(e.hand, g, scale, rtol, sizes, after="and, against autograd with that derivative skipped "
                                                                  "too, ")
                if also is not None:
                    also.op, also.advice = variant.op, variant.advice + "; " + also.advice
                    combined[e.name] = also
    reach = Counter(n for found in reproduced.values() for n, _ in found)  # how many entries each mistake explains
    chosen: list[int] = []  # the mistakes named so far, nearest the loss first
    for e in open_entries:
        found = reproduced.get(e.name, [])
        pick = next((f for n, f in found if n in chosen), None)
        if pick is None and found:  # a new mistake: of those reproducing this entry, the one explaining the most
            n, pick = min(found, key=lambda candidate: (-reach[candidate[0]], candidate[0]))
            chosen.append(n)
        pick = pick or combined.get(e.name) or BroadcastSum.unsummed(e, graph, rtol)
        if pick is not None:
            _set(e, pick)
