"""Hand-written vs automatic vs numeric gradients of the blog's network, per weight and bias, with a verdict.

The blog's case of ``check_gradients`` (``tinygrad_like.check``), with the blog's own code on both sides:

- the hand-written backward is the post's per-sample loop (``NN.accumulate``: ``forward`` then ``backward`` for each
  sample, gradients summed over the batch, as the blog trains);
- the forward is the post's own ``NN.forward`` (its ``sigmoid`` and ``softmax``) and the summed cross-entropy,
  run once on the plain float64 arrays and once, unchanged, on Tensors through the NumPy protocol: autograd
  differentiates the blog's code as it is;
- float64 central finite differences of that forward on a random sample of entries (plus the largest).

When they disagree the report says where (the first layer from the output down) and the cause that
``check_gradients`` computed: for the published code, autograd's backward re-run with the local derivative of
the blog's ``sigmoid`` skipped reproduces the hand-written gradients of the hidden layers. Only causes that make
the numbers agree are reported.

Relative differences are normwise: ``max|a - b| / max|autograd|`` over a parameter, so entries that are zero
in both (pixels that are always 0) or tiny by cancellation do not blow the figure up.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..check import GradientEntry, check_gradients, format_number, format_table, json_safe, relative_difference
from ..nn import MLP
from ..optim import SGD
from ..tensors import Tensor
from .mlp import blog_loss, from_blog
from .network import NN, mlp_order, one_hot

RTOL = 1e-12  # hand-written vs autograd: float64 rounding, summed over a batch, stays far below this
FD_RTOL = 1e-6  # finite differences carry truncation and cancellation error
FD_STEP = 1e-5  # central-difference step, relative to max(1, |parameter|): near the optimum eps**(1/3)

# The causes a comparison can compute (``cause_kind``, see ``check.CAUSE_KINDS``); each is reported only when it
# makes the numbers agree.
MISSING_DERIVATIVE, SCALE, SIGN, TRANSPOSE, SHAPE, NOT_ACCUMULATED, UNEXPLAINED = (
    "missing_derivative", "scale", "sign", "transpose", "shape", "not_accumulated", "unexplained")


@dataclass
class ParameterComparison(GradientEntry):
    """One parameter (e.g. ``layers.0.weight``): ``check_gradients``' entry, with the blog's extra figure.

    ``max_abs``/``max_rel``/``agree`` compare the hand-written gradient with autograd; the ``fd_`` fields the
    finite differences on ``fd_entries`` sampled entries. ``scale`` is max|autograd gradient|, the denominator
    of both relative differences. ``cause`` is the computed explanation in a few words (None when the
    hand-written gradient agrees); ``fixed_max_rel`` what is left of the difference once the missing sigmoid
    derivative is accounted for (None when that is not the cause).
    """

    fixed_max_rel: float | None = None

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
        check: the underlying ``check.GradientReport`` (entries in backward order, with advice sentences).

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
    check: Any = field(default=None, repr=False)

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
        return json_safe({
            "code": self.code, "sizes": self.sizes, "batch": self.batch, "rtol": self.rtol, "fd_rtol": self.fd_rtol,
            "ok": self.ok, "first_disagreeing_layer": self.first_disagreeing_layer, "disagreeing": self.disagreeing,
            "diagnosis": self.diagnosis, "parameters": [p.to_dict() for p in self.parameters],
        })

    def __str__(self) -> str:
        head = (f"Blog network {self.sizes}, batch of {self.batch}, float64: hand-written backward ({self.code}) vs "
                "autograd vs finite differences")
        note = (f"rel = max|x - autograd| / max|autograd| per parameter; agreement: hand <= {self.rtol:g}, "
                f"finite differences <= {self.fd_rtol:g}")
        rows = [["parameter", "shape", "max|grad|", "hand abs", "hand rel", "hand", "fd n", "fd rel", "fd", "cause"]]
        for p in self.parameters:
            rows.append([p.name, "x".join(map(str, p.shape)), format_number(p.scale), format_number(p.max_abs),
                         format_number(p.max_rel), "ok" if p.agree else "DIFF", str(p.fd_entries),
                         format_number(p.fd_max_rel), "ok" if p.fd_agree else "DIFF", p.cause or ""])
        verdict = "all sources agree" if self.ok else (
            f"DISAGREE (first layer from the output down: {self.first_disagreeing_layer})")
        return "\n".join([head, note, "", format_table(rows), "", f"verdict: {verdict}",
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
        return json_safe({**asdict(self), "ok": self.ok})

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
    with the same float64 parameters (``from_blog(net)``; None builds it), which names them. ``labels`` are
    integers (N,) or one-hot rows (N, n_out). ``check_gradients`` does the work: the forward is the blog's own
    ``NN.forward`` and summed cross-entropy, the backward its per-sample loop; finite differences are taken on
    ``fd_entries`` entries of each parameter, chosen with ``seed``. Afterwards ``mlp``'s ``.grad`` hold the
    autograd gradients; ``net`` is left as it was.
    """
    rows, targets = _batch(net, x, labels, "compare_gradients")
    mlp = from_blog(net) if mlp is None else mlp
    names = _check_same_parameters(net, mlp, "compare_gradients")

    def forward(params: dict, rows: np.ndarray, targets: np.ndarray) -> Any:
        """The post's forward (one column per sample) and its summed cross-entropy, on arrays or Tensors."""
        out = _with_parameters(net, params, names).forward(rows.T)
        return -np.sum(targets.T * np.log(out))

    def backward(params: dict, rows: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """The post's per-sample loop, gradients summed over the batch."""
        return dict(zip(names, hand_gradients(_with_parameters(net, params, names), rows, targets)))

    params = {name: p.data for name, p in mlp.named_parameters()}
    checked = check_gradients(forward, backward, params, rows, targets, fd_entries=fd_entries, seed=seed,
                              rtol=rtol, fd_rtol=fd_rtol)
    report = GradientReport(_code(net), [int(n) for n in net.sizes], len(rows), rtol, fd_rtol, check=checked)
    for name, p in mlp.named_parameters():
        e = checked[name]
        fixed = e.explained_max_rel if e.cause_op == "sigmoid" else None
        report.parameters.append(ParameterComparison(**{f.name: getattr(e, f.name) for f in fields(GradientEntry)},
                                                     fixed_max_rel=fixed))
        p.grad = Tensor(e.autograd)
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
        max_rel[name] = relative_difference(h, p.data, float(np.max(np.abs(p.data))))[1]
        step = p.data - old
        step_max_rel[name] = relative_difference(h - old, step, float(np.max(np.abs(step))))[1]
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
        return [np.array(g) for g in mlp_order(net.weight_grads,
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


def _with_parameters(net: NN, params: dict[str, Any], names: list[str]) -> NN:
    """A shallow copy of ``net`` holding ``params`` (arrays or Tensors, in the MLP's order and shapes): its
    biases as the blog's (n, 1) columns, its activations and accumulators its own."""
    model = copy.copy(net)
    values = [params[name] for name in names]
    model.weights, model.biases = values[0::2], [np.reshape(b, (-1, 1)) for b in values[1::2]]
    model.layers = []
    return model


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


def _flat_parameters(net: NN) -> list[np.ndarray]:
    return mlp_order(net.weights, [b.reshape(-1) for b in net.biases])


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
        sigmoid = [p for p in hand_bad if p.cause_kind == MISSING_DERIVATIVE and p.cause_op == "sigmoid"]
        if sigmoid:
            worst_fixed = max(p.fixed_max_rel for p in sigmoid)
            parts.append(
                f"Cause: the missing sigmoid derivative. Autograd's backward, re-run with the local derivative of the "
                f"blog's sigmoid skipped (the gradient passed through it unchanged), reproduces the hand-written "
                f"gradients of {_names([p.name for p in sigmoid])} (max rel diff {worst_fixed:.1e}): the code "
                "computes dL/da (w.r.t. the hidden layer's output) and uses it as dL/dz (w.r.t. its input) without "
                "multiplying by sigmoid_deriv(z) = s(z) * (1 - s(z)) where `current` passes down through a hidden "
                "layer.")
        others = [p for p in hand_bad if p not in sigmoid]
        for sentence in sorted({_cause_sentence(p) for p in others}):
            names = _names([p.name for p in others if _cause_sentence(p) == sentence])
            parts.append(f"{names}: {sentence}.")
    return " ".join(parts)


def _cause_sentence(p: ParameterComparison) -> str:
    """One cause in words; each was computed: undoing it makes the gradient agree with autograd."""
    prefix = "with the missing sigmoid derivative applied, " if p.cause_op == "sigmoid" else ""
    if p.cause_kind == UNEXPLAINED and p.hand is not None and np.isfinite(p.hand).all() and np.any(p.hand):
        return ("no computed cause (not a missing derivative such as the sigmoid derivative, a transpose, a constant "
                "factor, a sum over broadcast axes nor a dropped use); start looking at the first disagreeing layer")
    if p.cause_kind == SHAPE:
        return f"the hand-written gradient has the wrong shape {p.hand_shape} (autograd's is {p.shape})"
    if p.cause_kind == TRANSPOSE:
        return prefix + "the hand-written gradient is the transpose of autograd's (transposed back, it agrees)"
    if p.cause_kind in (SCALE, SIGN):
        return prefix + (f"the hand-written gradient is {p.factor:g} times autograd's (divided by {p.factor:g}, "
                         "it agrees)")
    return p.advice or ""
