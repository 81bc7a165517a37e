"""Hand-written vs automatic vs numeric gradients of the blog's network, per weight and bias, with a verdict.

Three sources, side by side for every parameter:

- the hand-written backward of ``blog.NN`` (one sample at a time, summed over the batch, as the blog trains);
- autograd: ``nn.blog_loss`` (the blog's own graph on ``Tensor``) on the whole batch, then ``backward()``;
- float64 central finite differences of the same summed loss, on a random sample of entries (plus the entry
  where autograd's gradient is largest), computed in plain NumPy.

When they disagree the report says where (the first layer from the output down) and tries causes it can
*compute*: it re-runs the hand-written backward with the hidden layers' sigmoid derivative applied (the factor
the published code omits) and tests whether a gradient is the transpose of the true one or off by a constant
factor. Only causes that make the numbers agree are reported.

Relative differences are normwise: ``max|a - b| / max|autograd|`` over a parameter, so entries that are zero
in both (pixels that are always 0) or tiny by cancellation do not blow the figure up.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..nn import MLP
from ..optim import SGD
from .mlp import blog_loss, from_blog
from .network import NN, one_hot

RTOL = 1e-12  # hand-written vs autograd: float64 rounding, summed over a batch, stays far below this
FD_RTOL = 1e-6  # finite differences carry truncation and cancellation error
FD_STEP = 1e-5  # central-difference step, relative to max(1, |parameter|): near the optimum eps**(1/3)

# The causes a comparison can compute (``cause_kind``); each is reported only when it makes the numbers agree.
MISSING_DERIVATIVE, SCALE, SIGN, TRANSPOSE, SHAPE, NOT_ACCUMULATED, UNEXPLAINED = (
    "missing_derivative", "scale", "sign", "transpose", "shape", "not_accumulated", "unexplained")


@dataclass
class ParameterComparison:
    """One parameter (e.g. ``layers.0.weight``): hand-written and finite differences, each against autograd.

    ``max_abs``/``max_rel``/``agree`` compare the hand-written gradient with autograd; the ``fd_`` fields the
    finite differences on ``fd_entries`` sampled entries. ``scale`` is max|autograd gradient|, the denominator
    of both relative differences. ``cause`` is a short computed explanation of a disagreement (None when the
    hand-written gradient agrees), ``fixed_max_rel`` the hand-written vs autograd difference after applying the
    hidden layers' sigmoid derivative (None when that was not tried).
    """

    name: str
    shape: tuple[int, ...]
    scale: float
    max_abs: float
    max_rel: float
    agree: bool
    fd_entries: int
    fd_max_abs: float
    fd_max_rel: float
    fd_agree: bool
    cause_kind: str | None = None
    cause_op: str | None = None
    factor: float | None = None
    fixed_max_rel: float | None = None
    kind: str = "parameter"

    @property
    def ok(self) -> bool:
        """All three sources agree for this parameter."""
        return self.agree and self.fd_agree

    @property
    def cause(self) -> str | None:
        """The computed cause in a few words, e.g. ``missing sigmoid derivative``; None when it agrees."""
        return _cause_words(self)

    @property
    def layer(self) -> str:
        """The module holding the parameter, e.g. ``layers.0``."""
        return self.name.rsplit(".", 1)[0]


@dataclass
class GradientReport:
    """The three-way gradient comparison of the blog's network; ``print(report)`` shows an aligned table.

    Attributes:
        code: ``"published"`` or ``"corrected"`` (the hand-written backward compared), or the class name of
            another hand-written network.
        sizes: the layer sizes, e.g. ``[784, 64, 32, 10]``; ``batch``: the number of samples.
        rtol, fd_rtol: agreement tolerances (hand-written and finite differences vs autograd).
        parameters: one ``ParameterComparison`` per weight and bias, in the MLP's parameter order;
            ``report["layers.0.weight"]`` looks one up by name.
        diagnosis: the computed explanation, in words.

    Derived, keyed by parameter name as in ``MLP.named_parameters()`` (``layers.0.weight``, ``layers.0.bias``,
    ...), for tools that mark parameters (e.g. graph drawings):
        max_rel: hand-written vs autograd max relative difference; fd_max_rel: the same for finite differences.
        disagreeing: names of the parameters where any source disagrees; causes: name -> cause, for those.
        ok: every parameter agrees; first_disagreeing_layer: e.g. ``"layers.1"``, searching from the output
            layer down, or None.
    """

    code: str
    sizes: list[int]
    batch: int
    rtol: float
    fd_rtol: float
    parameters: list[ParameterComparison] = field(default_factory=list)
    diagnosis: str = ""

    @property
    def entries(self) -> list[ParameterComparison]:
        """The compared entries (here: every parameter), what drawings read to mark disagreements."""
        return self.parameters

    def __getitem__(self, name: str) -> ParameterComparison:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"GradientReport: no parameter {name!r}; have {[p.name for p in self.parameters]}")

    @property
    def ok(self) -> bool:
        """Every parameter agrees in all three sources."""
        return all(p.ok for p in self.parameters)

    @property
    def max_rel(self) -> dict[str, float]:
        """Parameter name -> hand-written vs autograd max relative difference."""
        return {p.name: p.max_rel for p in self.parameters}

    @property
    def fd_max_rel(self) -> dict[str, float]:
        """Parameter name -> finite differences vs autograd max relative difference."""
        return {p.name: p.fd_max_rel for p in self.parameters}

    @property
    def disagreeing(self) -> list[str]:
        """Names of the parameters where any source disagrees."""
        return [p.name for p in self.parameters if not p.ok]

    @property
    def causes(self) -> dict[str, str]:
        """Parameter name -> computed cause, for the hand-written gradients that disagree."""
        return {p.name: p.cause for p in self.parameters if p.cause is not None}

    @property
    def first_disagreeing_layer(self) -> str | None:
        """The first layer that disagrees, searching from the output layer down (e.g. ``"layers.1"``), or None."""
        for p in reversed(self.parameters):  # parameters run from the input up: reversed is output first
            if not p.ok:
                return p.layer
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite numbers become None)."""
        return _json_safe({
            "code": self.code, "sizes": self.sizes, "batch": self.batch, "rtol": self.rtol, "fd_rtol": self.fd_rtol,
            "ok": self.ok, "first_disagreeing_layer": self.first_disagreeing_layer, "disagreeing": self.disagreeing,
            "diagnosis": self.diagnosis,
            "parameters": [{**asdict(p), "shape": list(p.shape), "ok": p.ok, "cause": p.cause}
                           for p in self.parameters],
        })

    def __str__(self) -> str:
        head = (f"Blog network {self.sizes}, batch of {self.batch}, float64: hand-written backward ({self.code}) vs "
                "autograd vs finite differences")
        note = (f"rel = max|x - autograd| / max|autograd| per parameter; agreement: hand <= {self.rtol:g}, "
                f"finite differences <= {self.fd_rtol:g}")
        rows = [["parameter", "shape", "max|grad|", "hand abs", "hand rel", "hand", "fd n", "fd rel", "fd", "cause"]]
        for p in self.parameters:
            rows.append([p.name, "x".join(map(str, p.shape)), _num(p.scale), _num(p.max_abs), _num(p.max_rel),
                         "ok" if p.agree else "DIFF", str(p.fd_entries), _num(p.fd_max_rel),
                         "ok" if p.fd_agree else "DIFF", p.cause or ""])
        verdict = "all sources agree" if self.ok else (
            f"DISAGREE (first layer from the output down: {self.first_disagreeing_layer})")
        return "\n".join([head, note, "", _table(rows), "", f"verdict: {verdict}",
                          textwrap.fill(f"diagnosis: {self.diagnosis}", 116, subsequent_indent="  ")])


@dataclass
class UpdateComparison:
    """One blog update (summed gradients, SGD) done by the hand-written per-sample loop and by MLP + optim.SGD.

    ``max_rel[name]`` is max|W_hand - W_autograd| / max|W_autograd| of the updated parameter, and
    ``step_max_rel[name]`` the same for the step (new - old) itself; ``ok`` when every ``max_rel`` <= rtol.
    """

    code: str
    lr: float
    batch: int
    rtol: float
    max_rel: dict[str, float]
    step_max_rel: dict[str, float]

    @property
    def ok(self) -> bool:
        """Every updated parameter agrees within ``rtol``."""
        return all(r <= self.rtol for r in self.max_rel.values())

    @property
    def worst(self) -> str:
        """The parameter whose updated values differ most."""
        return max(self.max_rel, key=lambda name: self.max_rel[name])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite numbers become None)."""
        return _json_safe({**asdict(self), "ok": self.ok})

    def __str__(self) -> str:
        worst = self.worst
        samples = f"{self.batch} sample" + ("s" if self.batch != 1 else "")
        verdict = "same weights" if self.ok else "the weights DIFFER"
        return (f"One blog update (SGD, lr {self.lr:g}, gradients summed over {samples}), hand-written ({self.code}) "
                f"vs autograd + SGD:\n  {verdict}: max rel diff {self.max_rel[worst]:.1e} ({worst}; the step itself "
                f"{self.step_max_rel[worst]:.1e})")


# ----------------------------------------------------------------------------------------------------------
# The comparison
# ----------------------------------------------------------------------------------------------------------


def compare_gradients(net: NN, mlp: MLP | None, x: np.ndarray, labels: np.ndarray, *, fd_entries: int = 6,
                      seed: int = 0, rtol: float = RTOL, fd_rtol: float = FD_RTOL) -> GradientReport:
    """Compare the gradients of the blog's summed loss on the batch ``x`` (N, n_in) with ``labels``.

    ``net`` is the hand-written ``blog.NN`` (or a subclass with its own ``backward``); ``mlp`` an ``nn.MLP``
    with the same float64 parameters (``from_blog(net)``; None builds it). ``labels`` are integers (N,) or
    one-hot rows (N, n_out). Finite differences are taken on ``fd_entries`` entries of each parameter, chosen
    with ``seed``. Afterwards ``mlp``'s ``.grad`` hold the autograd gradients; ``net`` is left as it was.
    """
    rows, targets = _batch(net, x, labels, "compare_gradients")
    mlp = from_blog(net) if mlp is None else mlp
    names = _check_same_parameters(net, mlp, "compare_gradients")

    mlp.zero_grad()
    blog_loss(mlp, rows, targets).backward()
    auto = [p.grad.data for _, p in mlp.named_parameters()]
    hand = hand_gradients(net, rows, targets)
    fixed = None
    if getattr(net, "corrected", None) is False:  # the one published bug we know: try its fix
        variant = copy.copy(net)
        variant.corrected = True
        fixed = hand_gradients(variant, rows, targets)

    rng = np.random.default_rng(seed)
    report = GradientReport(_code(net), [int(n) for n in net.sizes], len(rows), rtol, fd_rtol)
    for k, (name, a, h) in enumerate(zip(names, auto, hand)):
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        max_abs, max_rel = _diff(h, a, scale)
        picks = _fd_entries(a, fd_entries, rng)
        numeric = np.array([finite_difference(net, k, j, rows, targets) for j in picks])
        fd_abs, fd_rel = _diff(numeric, a.reshape(-1)[picks], scale)
        p = ParameterComparison(name, tuple(a.shape), scale, max_abs, max_rel, max_rel <= rtol, len(picks),
                                fd_abs, fd_rel, fd_rel <= fd_rtol)
        if fixed is not None:
            p.fixed_max_rel = _diff(fixed[k], a, scale)[1]
        if not p.agree:
            p.cause_kind, p.cause_op, p.factor = _cause(h, a, None if fixed is None else fixed[k], scale, rtol)
        report.parameters.append(p)
    report.diagnosis = _diagnosis(report)
    return report


def compare_update(net: NN, x: np.ndarray, labels: np.ndarray, lr: float = 1e-3,
                   rtol: float = RTOL) -> UpdateComparison:
    """One blog update on the batch, by ``net``'s per-sample loop and by ``MLP`` + ``optim.SGD`` (on copies).

    Both start from ``net``'s parameters; the hand-written side sums ``backward`` over the samples and calls
    ``update(lr)``, the autograd side runs ``blog_loss(...).backward()`` and ``SGD(lr).step()``.
    """
    rows, targets = _batch(net, x, labels, "compare_update")
    hand_net = copy.deepcopy(net)
    hand_net.zero_grad()
    hand_net.accumulate(rows, targets)
    hand_net.update(lr)

    mlp = from_blog(net)
    before = [p.data.copy() for p in mlp.parameters()]
    optimizer = SGD(mlp.parameters(), lr=lr)
    blog_loss(mlp, rows, targets).backward()
    optimizer.step()

    hand_after = _flat_parameters(hand_net)
    max_rel, step_max_rel = {}, {}
    for (name, p), old, h in zip(mlp.named_parameters(), before, hand_after):
        h = h.reshape(p.shape)
        max_rel[name] = _diff(h, p.data, float(np.max(np.abs(p.data))))[1]
        step = p.data - old
        step_max_rel[name] = _diff(h - old, step, float(np.max(np.abs(step))))[1]
    return UpdateComparison(_code(net), lr, len(rows), rtol, max_rel, step_max_rel)


def hand_gradients(net: NN, rows: np.ndarray, targets: np.ndarray) -> list[np.ndarray]:
    """The hand-written gradients summed over the samples, as the blog accumulates them, in the MLP's order.

    Weight gradients keep the shape the backward produced; bias columns (n, 1) become vectors (n,). The
    network's own accumulators and activations are restored afterwards.
    """
    saved = net.weight_grads, net.bias_grads, net.layers
    try:
        net.zero_grad()
        net.accumulate(rows, targets)
        return [np.array(g) for g in _interleave(net.weight_grads,
                                                 [b.reshape(-1) if b.ndim == 2 and b.shape[1] == 1 else b
                                                  for b in net.bias_grads])]
    finally:
        net.weight_grads, net.bias_grads, net.layers = saved


def finite_difference(net: NN, k: int, j: int, rows: np.ndarray, targets: np.ndarray,
                      step: float = FD_STEP) -> float:
    """d(summed loss) / d(parameter k, flat entry j) by central differences; parameters in the MLP's order
    (W0, b0, W1, b1, ...), the losses from the blog network's own batched forward on a shifted copy.

    The per-sample differences are summed, not the two summed losses subtracted: each difference then loses
    digits only relative to one sample's loss, not to the whole batch's.
    """
    shifted = copy.copy(net)
    shifted.weights, shifted.biases = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    value = (shifted.weights if k % 2 == 0 else shifted.biases)[k // 2].reshape(-1)  # a view: shifts in place
    h = step * max(1.0, abs(float(value[j])))
    value[j] += h
    up = shifted.sample_losses(rows, targets)
    value[j] -= 2 * h
    down = shifted.sample_losses(rows, targets)
    return float(np.sum(up - down) / (2 * h))


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def _code(net: NN) -> str:
    if type(net) is NN:
        return "corrected" if net.corrected else "published"
    return type(net).__name__


def _batch(net: NN, x: np.ndarray, labels: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    n_in, n_out = net.sizes[0], net.sizes[-1]
    rows = np.asarray(x, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != n_in or len(rows) == 0:
        raise ValueError(f"{op}: x must hold samples as rows of {n_in} inputs, shape (N, {n_in}) with N >= 1, "
                         f"got shape {rows.shape}")
    labels = np.asarray(labels)
    targets = one_hot(labels, n_out) if labels.ndim == 1 else labels.astype(np.float64)
    if targets.shape != (len(rows), n_out):
        raise ValueError(f"{op}: labels must be {len(rows)} integers or one-hot rows ({len(rows)}, {n_out}), "
                         f"got shape {labels.shape}")
    return rows, targets


def _interleave(weights: list[np.ndarray], biases: list[np.ndarray]) -> list[np.ndarray]:
    return [a for pair in zip(weights, biases) for a in pair]


def _flat_parameters(net: NN) -> list[np.ndarray]:
    return _interleave(net.weights, [b.reshape(-1) for b in net.biases])


def _check_same_parameters(net: NN, mlp: MLP, op: str) -> list[str]:
    """The MLP's parameter names, after checking its float64 arrays equal the blog network's."""
    named = list(mlp.named_parameters())
    blog = _flat_parameters(net)
    if len(named) != len(blog):
        raise ValueError(f"{op}: the MLP has {len(named)} parameters, the blog network {len(blog)}")
    for (name, p), b in zip(named, blog):
        if p.dtype != np.float64:
            raise ValueError(f"{op}: {name} is {p.dtype}; the comparison needs float64 (from_blog(net) keeps "
                             "the blog's float64)")
        if p.shape != b.shape or not np.array_equal(p.data, b):
            raise ValueError(f"{op}: {name} {p.shape} differs from the blog network's {b.shape}; start both from "
                             "the same values with from_blog(net)")
    return [name for name, _ in named]


def _diff(x: np.ndarray, ref: np.ndarray, scale: float) -> tuple[float, float]:
    """(max|x - ref|, that divided by ``scale``); inf when the shapes differ."""
    if x.shape != ref.shape:
        return float("inf"), float("inf")
    if x.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(x - ref)))
    if scale == 0:
        return max_abs, (0.0 if max_abs == 0 else float("inf"))
    return max_abs, max_abs / scale


def _fd_entries(grad: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct flat indices: the largest |gradient| entry (so the check is never vacuous) and random."""
    if count < 1 or grad.size == 0:
        return np.zeros(0, dtype=int)
    largest = int(np.argmax(np.abs(grad)))
    others = rng.permutation(grad.size)
    others = others[others != largest][:count - 1]
    return np.concatenate([[largest], others]).astype(int)


Cause = tuple[str, str | None, float | None]  # (cause_kind, cause_op, factor)


def _cause(hand: np.ndarray, auto: np.ndarray, fixed: np.ndarray | None, scale: float, rtol: float) -> Cause:
    """The computed cause of one disagreement: only an explanation that makes the numbers agree is returned."""
    if fixed is not None and _diff(fixed, auto, scale)[1] <= rtol:
        return MISSING_DERIVATIVE, "sigmoid", None
    found = _shape_cause(hand, auto, scale, rtol)
    if found is not None:
        return found
    if fixed is not None and not np.array_equal(fixed, hand):  # the fix changed it but left another bug
        found = _shape_cause(fixed, auto, scale, rtol)
        if found is not None:
            return found[0], "sigmoid", found[2]  # that mistake, on top of the missing derivative
    return UNEXPLAINED, None, None


def _shape_cause(hand: np.ndarray, auto: np.ndarray, scale: float, rtol: float) -> Cause | None:
    """Is ``hand`` the transpose of ``auto``, or a constant multiple of it?"""
    if hand.shape != auto.shape:
        if hand.shape == auto.T.shape and _diff(hand.T, auto, scale)[1] <= rtol:
            return TRANSPOSE, None, None
        return SHAPE, None, None
    if auto.ndim == 2 and auto.shape[0] == auto.shape[1] and _diff(hand.T, auto, scale)[1] <= rtol:
        return TRANSPOSE, None, None
    norm = float(np.sum(auto * auto))
    if norm > 0:
        c = float(np.sum(hand * auto)) / norm  # least-squares factor: hand ~ c * auto
        if _diff(hand, c * auto, scale)[1] <= rtol * max(1.0, abs(c)):
            if abs(c) < rtol:
                return NOT_ACCUMULATED, None, 0.0
            nice = float(round(c)) if abs(c - round(c)) < 1e-9 else c
            return (SIGN if nice == -1 else SCALE), None, nice
    return None


def _cause_words(p: ParameterComparison) -> str | None:
    """A parameter's cause in a few words, from its identifiers."""
    kind = p.cause_kind
    if kind is None:
        return None
    if kind == MISSING_DERIVATIVE:
        return f"missing {p.cause_op} derivative"
    prefix = f"missing {p.cause_op} derivative, and " if p.cause_op else ""
    words = {TRANSPOSE: "transposed", SHAPE: "wrong shape", NOT_ACCUMULATED: "all zeros (never accumulated)",
             SIGN: "factor -1", SCALE: f"factor {p.factor:g}" if p.factor is not None else "",
             UNEXPLAINED: "unexplained"}
    return prefix + words[kind]


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _diagnosis(report: GradientReport) -> str:
    """The verdict in words, from the numbers in the report (nothing here is assumed about the code)."""
    params = report.parameters
    hand_bad = [p for p in params if not p.agree]
    fd_bad = [p for p in params if not p.fd_agree]
    worst_fd = max((p.fd_max_rel for p in params), default=0.0)
    if not hand_bad and not fd_bad:
        worst = max((p.max_rel for p in params), default=0.0)
        return (f"all {len(params)} parameters agree: hand-written vs autograd max rel diff {worst:.1e} "
                f"(<= {report.rtol:g}), finite differences vs autograd {worst_fd:.1e} (<= {report.fd_rtol:g}).")
    parts = []
    if fd_bad:
        parts.append(f"autograd disagrees with finite differences for {_names([p.name for p in fd_bad])}: the "
                     "engine's backward rules are suspect, so the hand-written comparison proves nothing there.")
    if hand_bad:
        output = f"layers.{len(report.sizes) - 2}"
        layer = next(p.layer for p in reversed(params) if not p.agree)
        where = "the output layer" if layer == output else "a hidden layer"
        text = (f"the hand-written backward disagrees with autograd for {_names([p.name for p in hand_bad])}; the "
                f"first disagreeing layer from the output down is {layer} ({where})")
        if not any(p.layer == output for p in hand_bad):
            text += f", while the output layer {output} agrees"
        if not fd_bad:
            text += f"; finite differences side with autograd (max rel diff {worst_fd:.1e})"
        parts.append(text + ".")
        sigmoid_fixed = [p for p in hand_bad if p.cause_kind == MISSING_DERIVATIVE]
        if sigmoid_fixed:
            worst_fixed = max(p.fixed_max_rel for p in sigmoid_fixed)
            parts.append(
                f"Cause: the missing sigmoid derivative. Re-running the hand-written backward with sigmoid_deriv(z) "
                f"= s(z) * (1 - s(z)) applied where `current` passes down through a hidden layer makes "
                f"{_names([p.name for p in sigmoid_fixed])} agree with autograd (max rel diff {worst_fixed:.1e}): "
                "the code computes dL/da (w.r.t. the hidden layer's output) and uses it as dL/dz (w.r.t. its "
                "input) without multiplying by that factor.")
        others = [p for p in hand_bad if p.cause_kind != MISSING_DERIVATIVE]
        for sentence in sorted({_cause_sentence(p) for p in others}):
            names = _names([p.name for p in others if _cause_sentence(p) == sentence])
            parts.append(f"{names}: {sentence}.")
    return " ".join(parts)


def _cause_sentence(p: ParameterComparison) -> str:
    """One structural cause in words; each was checked: undoing it makes the gradient agree with autograd."""
    prefix = "with the missing sigmoid derivative applied, " if p.cause_op else ""
    if p.cause_kind == UNEXPLAINED:
        return ("no computed cause (not the missing sigmoid derivative, a transpose or a constant factor); start "
                "looking at the first disagreeing layer")
    if p.cause_kind == SHAPE:
        return f"the hand-written gradient has the wrong shape (autograd's is {p.shape})"
    if p.cause_kind == TRANSPOSE:
        return prefix + "the hand-written gradient is the transpose of autograd's (transposed back, it agrees)"
    if p.cause_kind == NOT_ACCUMULATED:
        return prefix + "the hand-written gradient is all zeros (never accumulated)"
    return prefix + (f"the hand-written gradient is {p.factor:g} times autograd's (divided by {p.factor:g}, "
                     "it agrees)")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in (0, 1, len(row) - 1) else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
