"""Watching a training run: ``TrainingRecorder(model)`` keeps, step by step, the loss and per module the
statistics a learner would compute by hand (activations, gradients, updates), and ``to_html`` plays them back.

Use it as::

    rec = TrainingRecorder(model)
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        rec.record(loss)        # after backward, before the step
        opt.step()
    rec.to_html("run.html")

Where the activations come from: every ``Module`` call tags the node that made its output (``mark_call``), but
``backward()`` releases the graph before ``record`` is called. So the recorder watches the graph while it is
being recorded (``engine.set_recorder``, a hook this recorder installs and ``close()`` removes): when an op takes
a tagged tensor as input, that tensor is a module's output and is kept until the next ``record`` (the graph
holds it until then anyway). An activation function applied to a module's output outside any module (e.g.
``sigmoid(layer(h))``) is kept as that module's activation. The model needs no hooks of its own.

The statistics of one module at one recorded step (``ModuleStats``):

- ``mean``, ``std``: of every value of its activation (NumPy's ``a.mean()``, ``a.std()``, population std).
  The activation is the module's output, or the activation function applied right after it outside any module.
- ``dead`` (ReLU outputs only): the fraction of units whose output is exactly 0 for every sample of the batch.
  A unit is one position of a sample's output (a feature, or a channel at one place); the batch is axis 0.
- ``saturated`` (sigmoid and tanh outputs only): the fraction of all values in the flat tails, sigmoid < 0.01 or
  > 0.99, |tanh| > 0.99 (where the local derivative is below about 0.01 and 0.02: almost no gradient passes).
- ``grad_norm``: sqrt of the sum of squares of the gradients of the module's own parameters (those of its
  sub-modules are theirs); ``weight_norm``: the same of the parameters.
- ``update_ratio``: ||W_now - W_prev|| / ||W_prev||, over the module's own parameters taken together, where
  W_prev are the values at the previous call of ``record``: with ``record`` called every step (as it must be),
  the relative size of the last optimizer step. Karpathy looks for about 1e-3 (log10 about -3).
- ``stale``: the gradient recorded carries over the one the previous step used: no ``zero_grad`` in between.
  Told without guessing from values: the previous call's gradient array was neither replaced (``.grad = None``,
  ``zero_grad()``) nor zeroed in place (``zero_grad(set_to_none=False)``), yet the parameters changed (a step was
  taken) and a backward added to it.
- histograms (``BINS`` bars between the smallest and the largest finite value): of the activation, of the
  gradients and of the last update.

Bounded whatever the run's length: ``every`` steps one is recorded; when more than ``max_steps`` would be kept,
every other record is dropped and ``every`` doubles, so the records (and the page) stay within ``max_steps``.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import ReleasedGraph, quiet, set_recorder
from ..nn import Module
from ..tensors import Tensor
from .page import page_with, write_page

__all__ = ["BINS", "Histogram", "ModuleStats", "StepRecord", "TrainingRecorder"]

BINS = 24  # bars of every histogram
ACTIVATIONS = ("relu", "sigmoid", "tanh")  # the ops whose outputs have dead (relu) or saturated units
SATURATION = 0.99  # sigmoid beyond 0.01 or 0.99, |tanh| beyond 0.99
SEARCH = 64  # ops looked through, back from a module's input, for the module that made it (the page's arrows)
DIGITS = 4  # significant digits of the numbers on the page
_STEPS = np.arange(BINS + 1, dtype=np.float64)


@dataclass
class Histogram:
    """``counts[i]`` values in the i-th of ``len(counts)`` equal bins between ``lo`` and ``hi`` (finite values)."""

    lo: float
    hi: float
    counts: list[int]


@dataclass
class ModuleStats:
    """One module at one recorded step (definitions in the module's docstring); None where it does not apply:
    no activation seen, not a ReLU (``dead``) or sigmoid/tanh (``saturated``), no parameters or no gradient,
    no previous call (``update_ratio``)."""

    kind: str  # the module's class, e.g. "Linear"
    activation: str | None = None  # "relu", "sigmoid", "tanh" when the activation is that function's output
    mean: float | None = None
    std: float | None = None
    dead: float | None = None
    saturated: float | None = None
    grad_norm: float | None = None
    weight_norm: float | None = None
    n_params: int = 0
    update_ratio: float | None = None
    stale: bool = False
    hists: dict[str, Histogram] = field(default_factory=dict)  # "activation", "gradient", "update"


@dataclass
class StepRecord:
    """A recorded step: its number (0 for the first call of ``record``), the loss, and ``modules`` by path."""

    step: int
    loss: float
    modules: dict[str, ModuleStats]


@dataclass
class _Seen:
    """A module's output (or the activation function applied to it) kept from the forward pass."""

    path: str
    value: Tensor
    seq: int  # creation order of its node: the forward order of the modules
    activation: str | None = None


class _Hook:
    """``engine.set_recorder`` hook: hands every recorded op to the recorder and to the hook it replaced. The
    recorder is held weakly: once it is gone (never closed), the hook takes itself out at the next op."""

    def __init__(self, recorder: TrainingRecorder) -> None:
        self.recorder = weakref.ref(recorder)
        self.previous = None

    def __call__(self, fn: Any) -> None:
        if self.previous is not None:
            self.previous(fn)
        recorder = self.recorder()
        if recorder is None:
            self.remove()
        elif recorder.watching:
            recorder._see(fn)

    def remove(self) -> None:
        """Put back the hook this one replaced, unless another went in above it (which still hands ops on)."""
        current = set_recorder(self.previous)
        if current is not self:
            set_recorder(current)


def _innermost(ctx: Any) -> Any:
    """The module whose call made the node ``ctx`` (the innermost of the calls that returned it), or None."""
    calls = getattr(ctx, "module_calls", None)
    return calls[0] if calls else None


def _watched(modules: dict[str, Module]) -> dict[int, str]:
    """id(module) -> path, for the modules whose outputs are kept: all but the model itself, whose output is its
    last module's or the result of a few operations after it (a model without sub-modules is watched)."""
    return {id(module): path for path, module in modules.items() if path or len(modules) == 1}


def _live(t: Tensor) -> Any:
    """``t``'s recorded node, or None for a leaf (or a node an earlier backward released)."""
    ctx = t._ctx
    return None if ctx is None or type(ctx) is ReleasedGraph else ctx


class TrainingRecorder:
    """Records a training run of ``model``: call ``record(loss)`` after ``loss.backward()`` and before
    ``opt.step()``, every step; every ``every``-th step is kept (``steps``), at most ``max_steps`` of them.

    ``to_html(path)`` writes the page that plays them back. The recorder watches the forward passes from its
    creation until ``close()`` (or the end of a ``with`` block).
    """

    def __init__(self, model: Module, every: int = 1, max_steps: int = 500) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"TrainingRecorder: model must be an nn.Module, got {type(model).__name__}")
        for name, value in (("every", every), ("max_steps", max_steps)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"TrainingRecorder: {name} must be a positive integer, got {value!r}")
        if max_steps < 2:
            raise ValueError(f"TrainingRecorder: max_steps must be at least 2 (thinning keeps every other), "
                             f"got {max_steps}")
        self.model, self.every, self.max_steps = model, int(every), int(max_steps)
        self.steps: list[StepRecord] = []
        self.calls = 0  # calls of record so far: the number of the next step
        self.edges: set[tuple[str | None, str]] = set()  # module -> module that takes its output (None: the input)
        self._seen: dict[int, _Seen] = {}  # id(tensor) -> what it is, for the forward passes since the last record
        self._previous: dict[int, tuple[np.ndarray, Any, np.ndarray | None]] = {}  # id(p): values, grad, its array
        self._stale: set[str] = set()  # modules whose gradient was stale at a call since the last record
        self._paths = _watched(dict(model.named_modules()))  # looked up again at each step
        self._hook = _Hook(self)
        self.watching = True  # until close()
        self._install()

    # -- watching the forward pass --------------------------------------------------------------------------
    def _install(self) -> None:
        """Put the hook in place in this thread, above any other hook, unless it is there already (perhaps below
        another recorder's, which hands it every op): a notebook may run each cell in a fresh context."""
        current = set_recorder(self._hook)
        chain = current
        while isinstance(chain, _Hook):
            if chain is self._hook:
                set_recorder(current)
                return
            chain = chain.previous
        self._hook.previous = current

    def close(self) -> None:
        """Stop watching forward passes (the records stay); the hook this recorder replaced is put back."""
        self.watching = False
        self._hook.remove()

    def __enter__(self) -> TrainingRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _see(self, fn: Any) -> None:
        """An op was recorded: keep those of its inputs that are outputs of the model's modules."""
        for t in fn.inputs:
            ctx = _live(t)
            if ctx is None or id(t) in self._seen:
                continue
            call = _innermost(ctx)
            if call is not None:
                path = self._paths.get(id(call[0]))
                if path is not None:
                    self._seen[id(t)] = _Seen(path, t, ctx.seq, ctx.name if ctx.name in ACTIVATIONS else None)
                    self.edges.update((source, path) for source in self._sources(call[1]))
            elif ctx.name in ACTIVATIONS:  # an activation function applied to a module's output
                made = self._seen.get(id(ctx.inputs[0]))
                if made is not None and made.activation is None:
                    self._seen[id(t)] = _Seen(made.path, t, made.seq, ctx.name)

    def _sources(self, inputs: tuple[Tensor, ...]) -> set[str | None]:
        """The modules whose outputs reach a module call's ``inputs`` through ops outside any module (None: an
        input of the model itself, a leaf that needs no gradient)."""
        found: set[str | None] = set()
        todo, looked = list(inputs), 0
        while todo and looked < SEARCH:
            t = todo.pop()
            looked += 1
            ctx = _live(t)
            if ctx is None:
                if t._ctx is None and not t.requires_grad and any(t is a for a in inputs):
                    found.add(None)
                continue
            call = _innermost(ctx)
            path = None if call is None else self._paths.get(id(call[0]))
            if path is not None:
                found.add(path)
            else:
                todo.extend(ctx.inputs)
        return found

    # -- recording ------------------------------------------------------------------------------------------
    def record(self, loss: Tensor | float) -> StepRecord | None:
        """Note one training step; call it after ``loss.backward()``, before ``opt.step()``, every step.

        Returns the step's record when this step is kept (every ``every``-th), else None.
        """
        value = _loss_value(loss)
        if self.watching:
            self._install()
        step, self.calls = self.calls, self.calls + 1
        modules = dict(self.model.named_modules())
        params = self._owned_parameters(modules)
        self._stale |= {path for path, group in params.items() for p in group if self._is_stale(p)}
        kept = None
        if step % self.every == 0:
            kept = StepRecord(step, value, self._module_stats(modules, params))
            self._stale.clear()
            self.steps.append(kept)
            if len(self.steps) > self.max_steps:  # thin out: the kept steps stay evenly spaced
                self.steps = self.steps[::2]
                self.every *= 2
        self._previous = {id(p): (p.data.copy(), p.grad, None if p.grad is None else p.grad.data)
                          for group in params.values() for p in group}
        self._seen.clear()
        self._paths = _watched(modules)
        return kept

    def _owned_parameters(self, modules: dict[str, Module]) -> dict[str, list[Tensor]]:
        """Each module's own parameters, by its path: a parameter belongs to the deepest module its name starts
        with (``layers.0.weight`` to ``layers.0``; a list of Tensors ``ws.0`` to the module holding the list)."""
        params: dict[str, list[Tensor]] = {}
        for name, p in self.model.named_parameters():
            owner = name.rpartition(".")[0]
            while owner not in modules:
                owner = owner.rpartition(".")[0]
            params.setdefault(owner, []).append(p)
        return params

    def _is_stale(self, p: Tensor) -> bool:
        """Whether ``p``'s gradient is the previous call's plus a new one: the same gradient Tensor, its old
        array neither zeroed nor kept (a backward added to it), and the parameter changed (a step was taken)."""
        before = self._previous.get(id(p))
        if before is None or p.grad is None:
            return False
        values, grad, array = before
        return (p.grad is grad and grad.data is not array and array is not None and bool(array.any())
                and not np.array_equal(p.data, values))

    def _module_stats(self, modules: dict[str, Module], params: dict[str, list[Tensor]]) -> dict[str, ModuleStats]:
        """Every module seen in the forward passes (in their order) or holding parameters, with its statistics."""
        seen: dict[str, list[_Seen]] = {}
        for s in sorted(self._seen.values(), key=lambda s: s.seq):  # forward order
            seen.setdefault(s.path, []).append(s)
        for path, group in seen.items():  # an activation function's output rather than the module's own
            activation = next((s.activation for s in group if s.activation), None)
            seen[path] = [s for s in group if s.activation == activation]
        stats = {}
        for path in [*seen, *(p for p in params if p not in seen)]:  # forward order, then modules not seen
            out = ModuleStats(type(modules[path]).__name__)
            if path in seen:
                _activation_stats(out, [s.value.data for s in seen[path]], seen[path][0].activation)
            if path in params:
                self._parameter_stats(out, params[path])
                out.stale = path in self._stale
            stats[path] = out
        return stats

    def _parameter_stats(self, out: ModuleStats, params: list[Tensor]) -> None:
        out.n_params = sum(p.size for p in params)
        with quiet():  # a diverged run's norms are inf or nan: that is the honest figure
            weights = _flat([p.data for p in params])
            out.weight_norm = _norm(weights)
            grads = [p.grad.data for p in params if p.grad is not None]
            if grads:
                flat = _flat(grads)
                out.grad_norm, out.hists["gradient"] = _norm(flat), _histogram(flat)
            before = [self._previous.get(id(p)) for p in params]
            if all(b is not None for b in before):
                old = _flat([b[0] for b in before])
                update = weights - old
                size = _norm(old)
                out.update_ratio = _norm(update) / size if size else None  # no size to compare with
                out.hists["update"] = _histogram(update)

    # -- the page -------------------------------------------------------------------------------------------
    def to_html(self, path: str | os.PathLike | None = None, title: str | None = None) -> str:
        """The recorded steps as one self-contained HTML page (returned, and written to ``path``).

        The page needs no network and no ``dot`` (Graphviz runs in the browser, as in ``viz.to_html``): play,
        pause and a slider go through the recorded steps; it shows the loss curve with the selected step marked,
        the module graph with each module's statistics at that step, and per module the histograms of its
        activation, gradients and last update at that step.
        """
        if not self.steps:
            raise ValueError("TrainingRecorder.to_html: nothing recorded yet; call rec.record(loss) after each "
                             "loss.backward()")
        title = title or (f"training of {type(self.model).__name__}: {len(self.steps)} recorded steps of "
                          f"{self.calls}")
        page = page_with("training_view.html", title, self._page_data(), script="training_view.js")
        if path is not None:
            write_page(path, page, "TrainingRecorder.to_html")
        return page

    def _page_data(self) -> dict[str, Any]:
        """The JSON the page's script reads: per module its kind and, step by step, its numbers and histograms."""
        paths = list(dict.fromkeys(path for s in self.steps for path in s.modules))
        index = {path: i for i, path in enumerate(paths)}
        numbers = ("mean", "std", "dead", "saturated", "grad_norm", "weight_norm", "update_ratio")
        modules = []
        for path in paths:
            stats = [s.modules.get(path) for s in self.steps]
            last = next(m for m in reversed(stats) if m is not None)
            modules.append({
                "path": path, "kind": last.kind, "activation": last.activation, "params": last.n_params,
                **{name: [None if m is None else _rounded(getattr(m, name)) for m in stats] for name in numbers},
                "stale": [m is not None and m.stale for m in stats],
                "hists": {kind: [None if m is None or kind not in m.hists else _hist_data(m.hists[kind])
                                 for m in stats] for kind in ("activation", "gradient", "update")},
            })
        edges = sorted({(-1 if a is None else index[a], index[b]) for a, b in self.edges
                        if (a is None or a in index) and b in index})
        return {"steps": [s.step for s in self.steps], "loss": [_rounded(s.loss) for s in self.steps],
                "every": self.every, "calls": self.calls, "modules": modules, "edges": edges}


# ----------------------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------------------


def _loss_value(loss: Tensor | float) -> float:
    if isinstance(loss, Tensor):
        if loss.size != 1:
            raise ValueError(f"TrainingRecorder.record: the loss must have one element, got shape {loss.shape}")
        return float(loss.data.reshape(-1)[0])
    try:
        return float(loss)
    except (TypeError, ValueError):
        raise TypeError(f"TrainingRecorder.record: the loss must be a Tensor or a number, got "
                        f"{type(loss).__name__}") from None


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def _norm(a: np.ndarray) -> float:
    return math.sqrt(float(np.einsum("i,i->", a, a)))  # not np.dot: a threaded BLAS call, slow on a busy machine


def _histogram(values: np.ndarray) -> Histogram:
    """``np.histogram(finite values, bins=BINS)``, computed as NumPy does for equal bins (the same counts, the
    same edges), in a fraction of its time on small arrays: it runs for every module at every recorded step."""
    finite, lo, hi = values, float(values.min()), float(values.max())  # nan or inf here if there are any
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = values[np.isfinite(values)]
        if not finite.size:
            return Histogram(0.0, 0.0, [0] * BINS)
        lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:  # NumPy's range for a single value
        lo, hi = lo - 0.5, hi + 0.5
    edges = _STEPS * ((hi - lo) / BINS) + lo  # np.linspace's arithmetic, without its overhead
    edges[-1] = hi
    index = np.minimum(((finite - lo) / (hi - lo) * BINS).astype(np.intp), BINS - 1)
    index -= finite < edges[index]  # rounding may put a value one bin off: the edges decide, as in NumPy
    index += (finite >= edges[index + 1]) & (index != BINS - 1)
    return Histogram(lo, hi, np.bincount(index, minlength=BINS).tolist())


def _units(a: np.ndarray) -> np.ndarray:
    """(samples, units): axis 0 is the batch, every other position of a sample's output is a unit."""
    return a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)


def _activation_stats(out: ModuleStats, values: list[np.ndarray], activation: str | None) -> None:
    """Mean, std, dead or saturated fraction and histogram of a module's activation, over all its calls."""
    with quiet():
        flat = _flat(values)
        out.activation = activation
        out.mean, out.std = float(flat.mean()), float(flat.std())
        out.hists["activation"] = _histogram(flat)
        if activation == "relu":
            units = [_units(v) for v in values]
            if len({u.shape[1] for u in units}) > 1:  # calls of different sizes: judge each call apart
                out.dead = float(np.mean([np.all(u == 0, axis=0).mean() for u in units]))
            else:
                out.dead = float(np.all(np.concatenate(units) == 0, axis=0).mean())
        elif activation == "sigmoid":
            out.saturated = float(np.mean((flat < 1 - SATURATION) | (flat > SATURATION)))
        elif activation == "tanh":
            out.saturated = float(np.mean(np.abs(flat) > SATURATION))


def _rounded(v: float | None) -> float | str | None:
    """A number for the page's JSON: ``DIGITS`` significant digits; nan and inf as text (JSON has neither)."""
    if v is None:
        return None
    if not math.isfinite(v):
        return str(v)
    return float(f"{v:.{DIGITS}g}")


def _hist_data(h: Histogram) -> list[Any]:
    return [_rounded(h.lo), _rounded(h.hi), h.counts]
