"""The training doctor: named training pathologies, each with where it is, the number measured, the threshold it
crossed and a concrete fix.

``diagnose(recorder)`` reads a ``viz.TrainingRecorder``'s steps; ``diagnose(model, x, target, loss_fn)`` records
one forward and backward pass itself (the model's gradients are left as they were), which is enough for the
findings about the network's state but not for those about the run (updates, stale gradients, the loss).

The numbers are the recorder's (see ``viz.recorder``); the thresholds and where they come from:

- ``dead_relu``: more than ``DEAD`` (40%) of a ReLU's units output 0 for every sample of the batch, at the first
  or the last recorded step. CS231n's notes (Karpathy) warn that "as much as 40% of your network can be dead"
  after a too-large learning rate; a healthy ReLU layer at PyTorch's default init has almost none.
- ``saturated``: more than ``SATURATED`` (10%) of a sigmoid's or tanh's outputs are in the flat tails (sigmoid
  < 0.01 or > 0.99, |tanh| > 0.99), at the first or the last recorded step. Karpathy's "Building makemore Part 3"
  keeps tanh saturation to a few percent. Weights from U(-1, 1) on 784 pixel inputs give pre-activations with a
  standard deviation near 5, and half of such sigmoids saturate; PyTorch's default init gives almost none.
- ``vanishing_gradient`` / ``exploding_gradient``: at the first recorded step, a module's grad:data ratio
  ||grad|| / ||weight|| is below 1/``LAYER_RATIO`` (1/10) or above ``LAYER_RATIO`` (10) times the output layer's
  (the last module with parameters, in forward order). Karpathy's makemore Part 3 plots this ratio per layer:
  there a last layer "training 10 times faster than the other layers at initialization" is the problem to fix.
  A layer whose ratio is 10 times smaller learns 10 times slower under the same learning rate. Also
  ``exploding_gradient``: a module's gradient norm at a recorded step more than ``SPIKE`` (100) times its median
  over the steps recorded before (at least three), the growth that precedes a nan.
- ``update_too_large`` / ``update_too_small``: the median over the recorded steps (at least three) of a module's
  update-to-weight ratio ||W_now - W_prev|| / ||W_prev|| is above ``UPDATE_HIGH`` (10^-1.5, about 3e-2) or below
  ``UPDATE_LOW`` (10^-4.5, about 3e-5): more than 1.5 orders of magnitude away from the ~1e-3 (log10 -3) that
  Karpathy recommends in makemore Part 3 (and CS231n's notes). The band is that wide because Adam at its usual
  lr 1e-3 moves every weight by about 1e-3 at first, which is 1-2% of a weight of PyTorch's default init on 784
  inputs (about 0.02) for its first few hundred steps: healthy, and not to be reported.
- ``stale_gradients``: at some recorded step a module's gradient carried over the one the previous optimizer
  step used (no ``zero_grad`` in between: see the recorder for how this is told); any such step counts.
- ``not_finite``: a loss, activation, gradient or update that is nan or inf at some recorded step (the first is
  reported).
- ``loss_not_decreasing``: over at least ``MIN_STEPS`` (8) recorded steps, the mean loss of the last quarter is
  not at least ``LOSS_DROP`` (1%) below the mean of the first quarter.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .nn import Module
from .nn import functional as F
from .nn.summary import buffers_kept
from .tensors import Tensor
from .viz.recorder import ModuleStats, StepRecord, TrainingRecorder

__all__ = ["KINDS", "Diagnosis", "Finding", "diagnose"]

KINDS = ("dead_relu", "saturated", "vanishing_gradient", "exploding_gradient", "update_too_large",
         "update_too_small", "stale_gradients", "not_finite", "loss_not_decreasing")
DEAD = 0.4
SATURATED = 0.1
LAYER_RATIO = 10.0
SPIKE = 100.0
UPDATE_GOOD = 1e-3
UPDATE_HIGH, UPDATE_LOW = UPDATE_GOOD * 10**1.5, UPDATE_GOOD / 10**1.5
MIN_STEPS = 8
LOSS_DROP = 0.01
WIDTH = 110  # printed lines


@dataclass
class Finding:
    """One pathology: ``kind`` (one of ``KINDS``), ``where`` (the module path, "" for the whole model),
    ``value`` (the number measured), ``threshold`` (the one it crossed), ``advice`` (a fix), ``step`` (the
    recorded step it was seen at, None when it is about the whole run) and ``measured`` (what ``value`` is)."""

    kind: str
    where: str
    value: float
    threshold: float | None
    advice: str
    step: int | None = None
    measured: str = ""

    def __str__(self) -> str:
        place = self.where or "(model)"
        at = "" if self.step is None else f" at step {self.step}"
        limit = "" if self.threshold is None else f" (threshold {self.threshold:.3g})"
        head = textwrap.fill(f"{self.kind} in {place}{at}: {self.measured} = {self.value:.3g}{limit}", WIDTH,
                             subsequent_indent="    ")
        return head + "\n" + textwrap.fill(self.advice, WIDTH, initial_indent="    fix: ", subsequent_indent="    ")


@dataclass
class Diagnosis:
    """What ``diagnose`` found: ``findings`` (empty when nothing is wrong: ``ok``) and how many steps it read."""

    findings: list[Finding]
    steps: int

    @property
    def ok(self) -> bool:
        """True when there is no finding."""
        return not self.findings

    def __str__(self) -> str:
        head = f"Diagnosis of {self.steps} recorded step{'s' if self.steps != 1 else ''}: "
        if self.ok:
            return head + "nothing wrong found"
        lines = [head + f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}"]
        return "\n".join(lines + [f"- {f}" for f in self.findings])


def diagnose(model: Module | TrainingRecorder, x: Any = None, target: Any = None,
             loss_fn: Callable[..., Tensor] | None = None) -> Diagnosis:
    """The findings of a recorded run (``diagnose(recorder)``), or of one pass of ``model`` on ``x``.

    For one pass, the loss is ``loss_fn(output, target)`` (``loss_fn(output)`` without a target); without
    ``loss_fn``, cross-entropy for integer targets (on ``model.logits(x)`` for a model that has it, such as
    ``nn.MLP``, whose output is probabilities) and mean squared error for float targets. With neither a target
    nor a loss there is no backward, and only the activations are judged.
    """
    if isinstance(model, TrainingRecorder):
        if x is not None or target is not None or loss_fn is not None:
            raise TypeError("diagnose(recorder) reads the recorded steps; x, target and loss_fn are for "
                            "diagnose(model, x, ...)")
        return _diagnose(model.steps)
    if not isinstance(model, Module):
        raise TypeError(f"diagnose: expected an nn.Module or a viz.TrainingRecorder, got {type(model).__name__}")
    if x is None:
        raise TypeError("diagnose(model, x, ...): give an input batch x")
    with_loss = target is not None or loss_fn is not None
    return _diagnose(_one_pass(model, x if isinstance(x, Tensor) else Tensor(x), target, loss_fn), with_loss)


def _one_pass(model: Module, x: Tensor, target: Any, loss_fn: Callable[..., Tensor] | None) -> list[StepRecord]:
    """One recorded step of ``model`` on ``x``; the parameters' gradients and the buffers (batch normalisation's
    running statistics) are put back as they were: looking at a model does not train it."""
    params = model.parameters()
    kept = [p.grad for p in params]
    with buffers_kept(model), TrainingRecorder(model) as rec:
        try:
            for p in params:
                p.grad = None
            loss = _loss(model, x, target, loss_fn)
            if loss is not None:
                loss.backward()
            rec.record(math.nan if loss is None else loss)  # nan: no loss, and the diagnosis does not judge it
        finally:
            for p, g in zip(params, kept):
                p.grad = g
    return rec.steps


def _loss(model: Module, x: Tensor, target: Any, loss_fn: Callable[..., Tensor] | None) -> Tensor | None:
    """The loss of one pass (None without a target or a loss function: the forward pass alone)."""
    if target is not None and not isinstance(target, Tensor):
        target = Tensor(target)
    if loss_fn is not None:
        out = model(x)
        return loss_fn(out) if target is None else loss_fn(out, target)
    if target is None:
        model(x)
        return None
    if target.dtype.kind in "iu":
        logits = model.logits(x) if callable(getattr(model, "logits", None)) else model(x)
        return F.cross_entropy(logits, target)
    return F.mse_loss(model(x), target)


# ----------------------------------------------------------------------------------------------------------
# The findings, kind by kind
# ----------------------------------------------------------------------------------------------------------


def _diagnose(steps: list[StepRecord], with_loss: bool = True) -> Diagnosis:
    if not steps:
        raise ValueError("diagnose: the recorder has no steps; call rec.record(loss) after each loss.backward()")
    findings = _not_finite(steps, with_loss)
    if not findings:  # the statistics of a run that went to nan say nothing more
        stale = _stale(steps)
        findings += _units(steps) + _layer_gradients(steps[0]) + _spikes(steps)
        findings += _updates(steps, {f.where for f in stale}) + stale
        findings += _loss_trend(steps) if with_loss else []
    return Diagnosis(findings, len(steps))


def _paths(steps: list[StepRecord]) -> list[str]:
    """Every module path of the recorded steps, in forward order."""
    return list(dict.fromkeys(path for s in steps for path in s.modules))


def _non_finite(v: float | None) -> bool:
    return v is not None and not math.isfinite(v)


def _not_finite(steps: list[StepRecord], with_loss: bool) -> list[Finding]:
    advice = ("lower the learning rate, clip the gradient norm (nn.utils.clip_grad_norm_(model.parameters(), 1.0)), "
              "and look for log(0) or a division by zero: compute the loss with F.cross_entropy on logits rather "
              "than log(softmax(...)); run one step under detect_anomaly() to be told the op that made it")
    for s in steps:
        for path, m in s.modules.items():
            for name, what in (("mean", "activation mean"), ("std", "activation std"), ("grad_norm", "gradient norm"),
                               ("update_ratio", "update/weight")):
                if _non_finite(getattr(m, name)):
                    return [Finding("not_finite", path, getattr(m, name), None, advice, s.step, what)]
        if with_loss and not math.isfinite(s.loss):
            return [Finding("not_finite", "", s.loss, None, advice, s.step, "loss")]
    return []


def _units(steps: list[StepRecord]) -> list[Finding]:
    """Dead ReLUs and saturated sigmoid/tanh, at the first or the last recorded step (the worse of the two)."""
    findings = []
    ends = [steps[0], steps[-1]] if len(steps) > 1 else [steps[0]]
    for path in _paths(steps):
        for kind, name, limit in (("dead_relu", "dead", DEAD), ("saturated", "saturated", SATURATED)):
            seen = [(getattr(s.modules[path], name), s) for s in ends if path in s.modules
                    and getattr(s.modules[path], name) is not None]
            if not seen:
                continue
            value, s = max(seen, key=lambda vs: vs[0])
            if value > limit:
                findings.append(Finding(kind, path, value, limit, _unit_advice(kind, s.modules[path]), s.step,
                                        _unit_words(kind, s.modules[path])))
    return findings


def _unit_words(kind: str, m: ModuleStats) -> str:
    if kind == "dead_relu":
        return "share of ReLU units at 0 for every sample"
    return "share of tanh outputs beyond +-0.99" if m.activation == "tanh" else \
        "share of sigmoid outputs < 0.01 or > 0.99"


def _unit_advice(kind: str, m: ModuleStats) -> str:
    if kind == "dead_relu":
        return ("those units get no gradient and never recover: lower the learning rate, initialise with PyTorch's "
                "default (or nn.init.kaiming_uniform_(w, nonlinearity='relu')) and zero biases, standardise the "
                "inputs; or use nn.LeakyReLU, whose negative side still passes a gradient")
    return (f"the inputs of this {m.activation} are too large, so its derivative is near 0: initialise the weights "
            "at the scale 1/sqrt(fan_in) (PyTorch's default nn.Linear init, or nn.init.xavier_uniform_ for "
            "sigmoid and tanh) instead of large ones such as U(-1, 1), standardise the inputs ((x - mean) / std), "
            "or use ReLU")


def _grad_to_data(m: ModuleStats) -> float | None:
    if m.grad_norm is None or not m.weight_norm:
        return None
    return m.grad_norm / m.weight_norm


def _layer_gradients(first: StepRecord) -> list[Finding]:
    """Each module's grad:data ratio against the output layer's, at the first recorded step."""
    ratios = {path: r for path, m in first.modules.items() if (r := _grad_to_data(m)) is not None}
    if len(ratios) < 2:
        return []
    output = list(ratios)[-1]
    reference = ratios.pop(output)
    findings = []
    for path, r in ratios.items():
        relative = r / reference if reference else math.inf
        words = f"||grad||/||weight|| over the output layer {output}'s"
        if relative < 1 / LAYER_RATIO:
            findings.append(Finding(
                "vanishing_gradient", path, relative, 1 / LAYER_RATIO,
                (f"this layer learns about {1 / relative:.0f} times slower than the output layer: little gradient "
                 "reaches it for the size of its weights." if relative else "no gradient reaches this layer (dead "
                 "units ahead of it?).") + " Initialise with PyTorch's default init (or Kaiming for "
                "ReLU, Xavier for sigmoid/tanh) rather than large weights, keep sigmoid/tanh out of saturation or "
                "use ReLU, standardise the inputs, or add normalisation layers (nn.LayerNorm, nn.BatchNorm1d)",
                first.step, words))
        elif relative > LAYER_RATIO:
            findings.append(Finding(
                "exploding_gradient", path, relative, LAYER_RATIO,
                f"this layer's gradient is {relative:.0f} times larger, for the size of its weights, than the "
                "output layer's: the gradient grows on its way back. Use a smaller init gain (PyTorch's default "
                "init, or Xavier/Kaiming), add normalisation layers, and clip the gradient norm "
                "(nn.utils.clip_grad_norm_(model.parameters(), 1.0)) before opt.step()",
                first.step, words))
    return findings


def _spikes(steps: list[StepRecord]) -> list[Finding]:
    """A module's gradient norm jumping above ``SPIKE`` times its median over the earlier recorded steps."""
    findings = []
    for path in _paths(steps):
        norms = [(s, s.modules[path].grad_norm) for s in steps if path in s.modules
                 and s.modules[path].grad_norm is not None]
        for k in range(3, len(norms)):
            before = float(np.median([n for _, n in norms[:k]]))
            s, now = norms[k]
            if before > 0 and now > SPIKE * before:
                findings.append(Finding(
                    "exploding_gradient", path, now / before, SPIKE,
                    "the gradient blew up during training: lower the learning rate and clip the gradient norm "
                    "(nn.utils.clip_grad_norm_(model.parameters(), 1.0)) before opt.step()",
                    s.step, "gradient norm over its median at the earlier steps"))
                break
    return findings


def _updates(steps: list[StepRecord], stale: set[str]) -> list[Finding]:
    """Each module's median update-to-weight ratio against Karpathy's ~1e-3 (``stale``: the modules whose steps
    were taken on accumulated gradients, which grow the steps)."""
    findings = []
    for path in _paths(steps):
        ratios = [s.modules[path].update_ratio for s in steps if path in s.modules
                  and s.modules[path].update_ratio is not None]
        if len(ratios) < 3:
            continue
        median = float(np.median(ratios))
        words = "median of ||update|| / ||weight|| per step"
        if median > UPDATE_HIGH:
            findings.append(Finding(
                "update_too_large", path, median, UPDATE_HIGH,
                f"each step changes these weights by {median:.1e} of their size, against about 1e-3 for steady "
                "training: " + ("the gradients are stale (see stale_gradients below), fix that first" if path in stale
                               else f"lower the learning rate (about {median / UPDATE_GOOD:.0f} times)"),
                None, words))
        elif median < UPDATE_LOW:
            change = (f"raise the learning rate (about {UPDATE_GOOD / median:.0f} times), and check"
                      if median > 0 else "these weights do not move: check")
            findings.append(Finding(
                "update_too_small", path, median, UPDATE_LOW,
                f"each step changes these weights by {median:.1e} of their size, against about 1e-3: {change} that "
                "the optimizer was given these parameters and that opt.step() is called", None, words))
    return findings


def _stale(steps: list[StepRecord]) -> list[Finding]:
    findings = []
    for path in _paths(steps):
        flagged = [s for s in steps if path in s.modules and s.modules[path].stale]
        if flagged:
            findings.append(Finding(
                "stale_gradients", path, len(flagged) / len(steps), 0.0,
                "the gradient of each step was added to the previous steps' (backward accumulates into .grad): "
                "call opt.zero_grad() (or model.zero_grad()) before every loss.backward()",
                flagged[0].step, "share of recorded steps on accumulated gradients"))
    return findings


def _loss_trend(steps: list[StepRecord]) -> list[Finding]:
    losses = [s.loss for s in steps]
    if len(losses) < MIN_STEPS or not all(math.isfinite(v) for v in losses):
        return []
    quarter = len(losses) // 4
    first, last = float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))
    drop = (first - last) / abs(first) if first else float(last < first)
    if drop >= LOSS_DROP:
        return []
    return [Finding(
        "loss_not_decreasing", "", float(drop), LOSS_DROP,
        "check that opt.step() is called after backward and that the optimizer holds the model's parameters, that "
        "the labels belong to the inputs, and try learning rates 10 times smaller and larger",
        None, f"drop of the mean loss, first to last quarter of {len(losses)} steps")]
