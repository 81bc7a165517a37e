"""The blog's gradient comparison: ``check_gradients`` on the blog's own code, and one blog update done both ways.

``compare_gradients`` is an adapter: forward = the blog network's summed loss on given parameters (its own
``NN.forward``, run on arrays and, unchanged, on Tensors), backward = its hand-written per-sample loop, parameters
named as ``nn.MLP``'s; it returns check's ``GradientReport``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..check import FD_RTOL, GradientReport, check_gradients, json_safe, relative_difference
from ..nn import MLP
from ..optim import SGD
from ..tensors import Tensor
from .mlp import blog_loss, from_blog
from .network import NN, mlp_order, one_hot

RTOL = 1e-12  # hand-written vs autograd: float64 rounding, summed over a batch, stays far below this


# ----------------------------------------------------------------------------------------------------------
# The gradients, three ways
# ----------------------------------------------------------------------------------------------------------


def compare_gradients(net: NN, mlp: MLP | None, x: np.ndarray, labels: np.ndarray, *, fd_entries: int = 6,
                      seed: int = 0, rtol: float = RTOL, fd_rtol: float = FD_RTOL) -> GradientReport:
    """``check_gradients`` on the blog's summed loss on the batch ``x`` (N, n_in) with ``labels``.

    ``net`` is the hand-written ``blog.NN`` (or a subclass with its own ``backward``); ``mlp`` an ``nn.MLP``
    with the same float64 parameters (``from_blog(net)``; None builds it), which names them. ``labels`` are
    integers (N,) or one-hot rows (N, n_out). The forward is the blog's own ``NN.forward`` and summed
    cross-entropy, the backward its per-sample loop; finite differences are taken on ``fd_entries`` entries of
    each parameter, chosen with ``seed``. The report's ``context`` holds ``code`` (published, corrected or the
    network's class), ``sizes``, ``batch`` and ``first_disagreeing_layer`` (from the output layer down).
    Afterwards ``mlp``'s ``.grad`` hold the autograd gradients; ``net`` is left as it was.
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
    report = check_gradients(forward, backward, params, rows, targets, fd_entries=fd_entries, seed=seed,
                             rtol=rtol, fd_rtol=fd_rtol)
    code, sizes = _code(net), [int(n) for n in net.sizes]
    report.title = (f"Blog network {sizes}, batch of {len(rows)}, float64: hand-written backward ({code}) vs autograd "
                    "vs finite differences")
    first = next((name for name in reversed(names) if not report[name].ok), None)  # from the output layer down
    report.context = {"code": code, "sizes": sizes, "batch": len(rows),
                      "first_disagreeing_layer": None if first is None else first.rsplit(".", 1)[0]}
    for name, p in mlp.named_parameters():
        p.grad = Tensor(report[name].autograd)
    return report


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


# ----------------------------------------------------------------------------------------------------------
# One blog update, two ways
# ----------------------------------------------------------------------------------------------------------


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
