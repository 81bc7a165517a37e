"""``check_gradients``: anyone's hand-written backward against autograd and finite differences, with a computed
diagnosis.

    report = check_gradients(forward, backward, params, *args)

Three sources for every parameter (and every intermediate value that ``forward`` names with ``watch``):

- the hand-written gradient, ``backward(params, *args)[name]``;
- autograd: ``forward`` run unchanged on Tensors (NumPy code goes through Tensor's NumPy protocol), then backward;
- float64 central finite differences of ``forward`` on the plain arrays, on a few sampled entries (always the
  largest one, so the check is never vacuous).

Autograd is the reference and finite differences the referee. When a hand-written gradient disagrees, the cause
is *computed*: a known mistake is applied to autograd's backward, by walking the recorded graph again with one
change (one op's local derivative skipped, one use of a re-used value dropped, softmax's Jacobian replaced by its
diagonal), or undone on the hand-written gradient (a constant factor, a sign, a transpose, a sum over the axes
broadcasting added); a cause is reported only when the numbers then agree. While it checks, the engine's
recorder notes where each op was made, so the ops one call of a user's function makes (``sigmoid(x) = 1 / (1 +
np.exp(-x))``) count as one op, named by what they compute, and the diagnosis names the line.

Differences are normwise: ``max|hand - autograd| / max|autograd|`` over a whole array, so entries that are tiny
by cancellation do not blow the figure up.
"""

from __future__ import annotations

import copy
import linecache
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from . import engine, numpy_protocol, ops
from . import tensors as tensor_module
from .engine import Function, no_grad, quiet, rules, set_recorder, toposort, walk
from .nn import Module
from .tensors import Tensor

__all__ = [
    "CAUSE_KINDS", "FD_RTOL", "FD_STEP", "RTOL", "GradientEntry", "GradientReport", "check_gradients",
    "format_table", "json_safe", "relative_difference", "sample_entries", "watch",
]

RTOL = 1e-10  # hand-written vs autograd, both float64: the same sums in another order stay far below this
FD_RTOL = 1e-6  # finite differences carry truncation and cancellation error
FD_STEP = 1e-5  # central-difference step, relative to max(1, |value|): about eps ** (1/3)
MAX_VARIANTS = 256  # re-walks of the graph tried per check, at most (each is one backward pass)
FLOAT32_EPS = float(np.finfo(np.float32).eps)

CAUSE_KINDS = (
    "missing_derivative", "scale", "sign", "transpose", "broadcast_sum", "not_accumulated", "softmax_jacobian",
    "shape", "missing", "precision", "unexplained",
)

# The local derivative of each op that can be skipped, said in the diagnosis, and the rules linear in their
# differentiable input (skipping their "derivative" is a scale, a shape or a sum mistake): from the rule classes.
DERIVATIVES = {name: rule.derivative for name, rule in rules().items() if rule.derivative}
DERIVATIVES["square"] = "2 * z"  # x * x, recognised from the values
LINEAR_RULES = frozenset(name for name, rule in rules().items() if rule.linear) | {"neg"}


# ----------------------------------------------------------------------------------------------------------
# watch: naming intermediate values of the user's forward
# ----------------------------------------------------------------------------------------------------------


class _Local(threading.local):
    run: _Run | None = None


_local = _Local()


def watch(name: str, value: Any) -> Any:
    """Name an intermediate ``value`` of ``forward`` so that ``backward`` may give its gradient too; returns
    ``value``. Outside ``check_gradients`` it does nothing; on plain arrays it only notes the name."""
    run = _local.run
    return value if run is None else run.watch(name, value)


class _Run:
    """One call of the user's forward: the values it watched, and the entry to shift for a finite difference."""

    def __init__(self, parameters: tuple[str, ...], tensors: bool = False,
                 shift: tuple[str, int, float] | None = None) -> None:
        self.parameters, self.tensors, self.shift = parameters, tensors, shift
        self.watched: dict[str, Any] = {}

    def watch(self, name: str, value: Any) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"watch: the name must be a string, got {type(name).__name__}")
        if name in self.parameters:
            raise ValueError(f"watch: {name!r} is the name of a parameter; give the intermediate value its own name")
        if name in self.watched:
            raise ValueError(f"watch: the name {name!r} is used twice in one forward; give each value its own name")
        self.watched[name] = value
        if self.tensors and isinstance(value, Tensor) and value.requires_grad and value.grad_fn is not None:
            value.retain_grad()
        if self.shift is not None and self.shift[0] == name:
            return _shifted(value, self.shift[1], self.shift[2])
        return value


def _shifted(value: Any, index: int, delta: float) -> Any:
    """``value`` with its flat entry ``index`` moved by ``delta`` (a copy: the user's array is left alone)."""
    step = np.zeros(np.shape(value))
    step.flat[index] = delta
    if isinstance(value, Tensor):
        return value + Tensor(step.astype(value.dtype))
    return np.asarray(value, dtype=np.float64) + step


def _call_user(fn: Callable, run: _Run, first: Any, args: tuple) -> Any:
    """Call the user's ``fn(first, *args)`` with ``run`` active; the recorder stops its frame walk here."""
    previous, _local.run = _local.run, run
    try:
        if run.tensors:
            return fn(first, *args)
        with no_grad():
            return fn(first, *args)
    finally:
        _local.run = previous


# ----------------------------------------------------------------------------------------------------------
# The user's parameters and arguments, in float64
# ----------------------------------------------------------------------------------------------------------


class _Parameters:
    """The parameters as float64 arrays by name, and the object each run hands to the user's functions:
    a dict of arrays (given arrays), a dict of Tensors (given Tensors), or a copy of the module."""

    def __init__(self, params: Any) -> None:
        if isinstance(params, Module):
            self.module: Module | None = params
            items = [(name, p) for name, p in params.named_parameters() if p.requires_grad]
            self.style = "module"
        elif isinstance(params, Mapping):
            self.module, items = None, list(params.items())
            self.style = "tensors" if any(isinstance(v, Tensor) for _, v in items) else "arrays"
        else:
            raise TypeError(f"check_gradients: params must be a dict name -> array (or Tensor) or an nn.Module, "
                            f"got {type(params).__name__}")
        if not items:
            raise ValueError("check_gradients: params holds no parameter")
        self.values: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, np.dtype] = {}
        for name, value in items:
            if not isinstance(name, str):
                raise TypeError(f"check_gradients: parameter names must be strings, got {name!r}")
            data = np.asarray(value.data if isinstance(value, Tensor) else value)
            if data.dtype.kind not in "fiu":
                raise TypeError(f"check_gradients: params[{name!r}] must be an array of numbers, got "
                                f"{type(value).__name__} of dtype {data.dtype}")
            self.values[name] = np.array(data, dtype=np.float64)  # a copy: nothing the user passed is changed
            self.dtypes[name] = data.dtype
        self.names = tuple(self.values)
        self._plain_module: Module | None = None
        self._plain_tensors: dict[str, Tensor] = {}

    def plain(self, values: Mapping[str, np.ndarray] | None = None) -> Any:
        """The object forward and backward get in the plain float64 runs."""
        values = self.values if values is None else values
        if self.style == "arrays":
            return dict(values)
        if self.style == "tensors":
            return {name: Tensor(v) for name, v in values.items()}
        if self._plain_module is None:
            self._plain_module, self._plain_tensors = self._module_copy(values, requires_grad=False)
        for name, p in self._plain_tensors.items():
            p.data = values[name]
        return self._plain_module

    def tensors(self, dtype: Any = np.float64) -> tuple[Any, dict[str, Tensor]]:
        """The object forward gets in a Tensor run, and the parameter Tensors (requiring grad) by name."""
        values = {name: v.astype(dtype) for name, v in self.values.items()}
        if self.style == "module":
            return self._module_copy(values, requires_grad=True)
        tensors = {name: Tensor(v, requires_grad=True) for name, v in values.items()}
        return dict(tensors), tensors

    def _module_copy(self, values: Mapping[str, np.ndarray], requires_grad: bool) -> tuple[Module, dict[str, Tensor]]:
        """A copy of the module holding ``values``, and its parameter Tensors by name (found before
        ``requires_grad`` is switched off: a module's parameters are its Tensors that require grad)."""
        module = copy.deepcopy(self.module)
        tensors = self._parameter_tensors(module)
        for name, p in tensors.items():
            p.data, p.grad, p.requires_grad = np.array(values[name]), None, requires_grad
        return module, tensors

    def _parameter_tensors(self, module: Module) -> dict[str, Tensor]:
        found = dict(module.named_parameters())
        return {name: found[name] for name in self.names}

    @property
    def float32(self) -> list[str]:
        return [name for name, dt in self.dtypes.items() if dt == np.float32]


def _own(arg: Any, dtype: Any = np.float64) -> Any:
    """A copy of one of the user's other arguments, floating point ones in ``dtype`` (other values as they are)."""
    if isinstance(arg, Tensor):
        return Tensor(arg.data.astype(dtype) if arg.dtype.kind == "f" else arg.data.copy())
    if isinstance(arg, np.ndarray):
        return arg.astype(dtype) if arg.dtype.kind == "f" else arg.copy()
    return arg


def _loss_value(value: Any) -> float:
    """The user's loss as a float; TypeError/ValueError naming what came back when it is not a finite scalar."""
    data = value.data if isinstance(value, Tensor) else value
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"check_gradients: forward must return the scalar loss, got a {type(value).__name__}") from None
    if array.size != 1:
        raise TypeError(f"check_gradients: forward must return a scalar loss, got a {type(value).__name__} of shape "
                        f"{array.shape}; sum or average it to one number")
    loss = float(array.reshape(()))
    if not np.isfinite(loss):
        raise ValueError(f"check_gradients: forward returned a non-finite loss ({loss}) for the given parameters; "
                         "there is no gradient to compare")
    return loss


def _hand_gradients(backward: Callable, plain: Any, args: tuple, parameters: tuple[str, ...],
                    watched: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The hand-written gradients as float64 copies; errors name what is wrong with what backward returned."""
    result = _call_user(backward, _Run(parameters), plain, args)
    if not isinstance(result, Mapping):
        raise TypeError(f"check_gradients: backward must return a dict name -> gradient array, got a "
                        f"{type(result).__name__}")
    unknown = [name for name in result if name not in parameters and name not in watched]
    if unknown:
        raise ValueError(f"check_gradients: backward returned gradients for {', '.join(map(repr, unknown))}, which "
                         f"are neither parameters ({', '.join(parameters)}) nor values forward named with watch() "
                         f"({', '.join(watched) or 'none'})")
    hand = {}
    for name, value in result.items():
        if value is None:
            continue
        try:
            hand[name] = np.array(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"check_gradients: backward's gradient for {name!r} is a {type(value).__name__}, not "
                            "an array of numbers") from None
    return hand


# ----------------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------------


@dataclass
class GradientEntry:
    """One compared value: a parameter or a watched intermediate.

    ``max_abs`` / ``max_rel`` / ``agree``: hand-written vs autograd (``max_rel`` normwise, divided by ``scale`` =
    max|autograd|); ``fd_*``: finite differences on ``fd_entries`` sampled entries vs autograd. ``cause_kind``
    (one of ``CAUSE_KINDS``), ``cause_op`` and ``factor`` identify the computed cause, ``cause`` says it in a few
    words and ``advice`` in a sentence (what to change, and where); all None when the entry agrees.
    ``explained_max_rel`` is what is left of the difference once the cause is applied. ``hand`` and
    ``autograd`` are the two arrays.
    """

    name: str
    kind: str
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
    advice: str | None = None
    explained_max_rel: float | None = None
    hand_shape: tuple[int, ...] | None = None
    hand: np.ndarray | None = field(default=None, repr=False, compare=False)
    autograd: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Hand-written, autograd and finite differences all agree."""
        return self.agree and self.fd_agree

    @property
    def cause(self) -> str | None:
        """The computed cause in a few words (e.g. ``missing sigmoid derivative``); None when it agrees."""
        return cause_words(self.cause_kind, self.cause_op, self.factor)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the arrays left out; non-finite numbers become None)."""
        skip = {"hand", "autograd"}
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        return json_safe({**data, "ok": self.ok, "cause": self.cause})


def cause_words(kind: str | None, op: str | None, factor: float | None) -> str | None:
    """A cause in a few words, from its identifiers (what drawings and tables show)."""
    if kind is None:
        return None
    if kind == "missing_derivative":
        return f"missing {op} derivative"
    words = {
        "scale": f"factor {_factor(factor)}" if factor is not None else "constant factor",
        "sign": "factor -1", "transpose": "transposed", "broadcast_sum": "broadcast axes not summed",
        "not_accumulated": "a use of a reused value missing", "softmax_jacobian": "softmax Jacobian applied wrongly",
        "shape": "wrong shape", "missing": "no hand-written gradient", "precision": "float32 rounding only",
        "unexplained": "unexplained",
    }
    prefix = f"missing {op} derivative, and " if op and kind in ("scale", "sign", "transpose") else ""
    return prefix + words[kind]


def _factor(c: float) -> str:
    if c != 0 and abs(c) < 1 and abs(1 / c - round(1 / c)) < 1e-9 * abs(1 / c):
        return f"{'-' if c < 0 else ''}1/{abs(round(1 / c))}"
    return f"{c:g}"


@dataclass
class GradientReport:
    """The three-way comparison; ``print(report)`` shows an aligned table, the verdict and the diagnosis.

    ``entries``: one ``GradientEntry`` per parameter and per watched intermediate with a hand-written gradient,
    in backward order (nearest the loss first); ``report[name]`` looks one up. ``rtol``, ``fd_rtol``: the
    agreement tolerances. ``notes``: what the check did to the input (float32 checked in float64, ...).
    ``loss`` (the Tensor run's loss, with its graph) and ``tensors`` (name -> Tensor, parameters and watched
    values) are there to draw: ``draw(report.loss, params=report.tensors, report=report)``.
    """

    entries: list[GradientEntry]
    rtol: float
    fd_rtol: float
    loss_value: float
    diagnosis: str = ""
    notes: list[str] = field(default_factory=list)
    loss: Tensor | None = field(default=None, repr=False)
    tensors: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> GradientEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"GradientReport: no entry {name!r}; have {', '.join(e.name for e in self.entries)}")

    @property
    def ok(self) -> bool:
        """Every entry agrees in all three sources."""
        return all(e.ok for e in self.entries)

    @property
    def disagreeing(self) -> list[str]:
        """Names of the entries where any source disagrees, nearest the loss first."""
        return [e.name for e in self.entries if not e.ok]

    @property
    def first_disagreeing(self) -> GradientEntry | None:
        """The disagreeing entry nearest the loss (where to start looking), or None."""
        return next((e for e in self.entries if not e.ok), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        first = self.first_disagreeing
        return json_safe({
            "ok": self.ok, "loss": self.loss_value, "rtol": self.rtol, "fd_rtol": self.fd_rtol,
            "disagreeing": self.disagreeing, "first_disagreeing": None if first is None else first.name,
            "diagnosis": self.diagnosis, "notes": self.notes, "entries": [e.to_dict() for e in self.entries],
        })

    def __str__(self) -> str:
        head = "check_gradients: hand-written backward vs autograd vs finite differences, in float64"
        note = (f"rel = max|x - autograd| / max|autograd| per entry; agreement: hand <= {self.rtol:g}, "
                f"finite differences <= {self.fd_rtol:g}")
        rows = [["name", "kind", "shape", "max|grad|", "hand rel", "hand", "fd n", "fd rel", "fd", "cause"]]
        for e in self.entries:
            rows.append([e.name, "param" if e.kind == "parameter" else "inter", "x".join(map(str, e.shape)) or "()",
                         format_number(e.scale), format_number(e.max_rel), "ok" if e.agree else "DIFF",
                         str(e.fd_entries), format_number(e.fd_max_rel), "ok" if e.fd_agree else "DIFF",
                         e.cause or ""])
        first = self.first_disagreeing
        verdict = "all sources agree" if self.ok else f"DISAGREE (first from the loss: {first.name})"
        lines = [head, note, *(f"note: {n}" for n in self.notes), "", format_table(rows, left=(0, 1, 2, 9)), "",
                 f"verdict: {verdict}"]
        return "\n".join(lines + _wrap(f"diagnosis: {self.diagnosis}"))


def _wrap(text: str, width: int = 116) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def format_number(value: float | None) -> str:
    """A figure of a report table: ``1.2e-15``; ``-`` when there is none."""
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.1e}"


def format_table(rows: list[list[str]], left: tuple[int, ...] = (0, 1)) -> str:
    """Aligned columns with a rule under the header row; columns in ``left`` (and the last) align left."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in left or i == len(row) - 1 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """``value`` with NumPy numbers as Python ones, tuples as lists and non-finite floats as None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def relative_difference(x: np.ndarray, ref: np.ndarray, scale: float) -> tuple[float, float]:
    """(max|x - ref|, that divided by ``scale``); inf when the shapes differ."""
    if x.shape != ref.shape:
        return float("inf"), float("inf")
    if x.size == 0:
        return 0.0, 0.0
    with quiet():
        max_abs = float(np.max(np.abs(x - ref)))
    if np.isnan(max_abs):
        return float("inf"), float("inf")
    if scale == 0:
        return max_abs, (0.0 if max_abs == 0 else float("inf"))
    return max_abs, max_abs / scale


def sample_entries(grad: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct flat indices: the largest |gradient| entry (so the check is never vacuous) and random."""
    if count < 1 or grad.size == 0:
        return np.zeros(0, dtype=int)
    largest = int(np.argmax(np.abs(grad)))
    others = rng.permutation(grad.size)
    others = others[others != largest][:count - 1]
    return np.concatenate([[largest], others]).astype(int)


# ----------------------------------------------------------------------------------------------------------
# The Tensor run: the graph, where each op was made, and the backward walk with one change
# ----------------------------------------------------------------------------------------------------------

# Frames of the Tensor machinery (and of NumPy) are not the user's: the recorder looks past them.
_MACHINERY = frozenset(os.path.abspath(m.__file__) for m in (engine, ops, tensor_module, numpy_protocol)) | {
    os.path.abspath(__file__)}
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_PROTOCOL_ENTRIES = {numpy_protocol.array_ufunc.__code__: "ufunc", numpy_protocol.array_function.__code__: "func"}


@dataclass(frozen=True)
class _Place:
    """One level of the calls that made an op: a call of a user function, or of a NumPy function on Tensors."""

    key: Any  # the frame: one per call, kept alive while checking so it stays unique
    name: str
    file: str
    line: int


class _Recorder:
    """``engine.set_recorder`` hook: for each op, the user-level calls it was made in, innermost first."""

    def __init__(self) -> None:
        self.chains: dict[Function, tuple[_Place, ...]] = {}
        self._users: dict[Any, bool] = {}  # code object -> is it the user's

    def __call__(self, fn: Function) -> None:
        chain = []
        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not _call_user.__code__:
            code = frame.f_code
            entry = _PROTOCOL_ENTRIES.get(code)
            if entry is not None:
                chain.append(_Place(frame, getattr(frame.f_locals.get(entry), "__name__", "numpy"), "", 0))
            elif self._is_user(code):
                chain.append(_Place(frame, code.co_name, code.co_filename, frame.f_lineno))
            frame = frame.f_back
        self.chains[fn] = tuple(chain)

    def _is_user(self, code: Any) -> bool:
        known = self._users.get(code)
        if known is None:
            path = os.path.abspath(code.co_filename)
            known = self._users[code] = path not in _MACHINERY and not path.startswith(_NUMPY_DIR)
        return known


@dataclass(eq=False)
class _Op:
    """An op of the user's code: one rule, or the ops one call of a user (or NumPy) function made."""

    name: str
    members: frozenset  # the tensors its nodes made
    x: Tensor  # its one differentiable input
    y: Tensor  # its output, of x's shape
    site: Site  # where it was computed or called, and the line of the forward that led there
    axis: int | None = None  # softmax's axis


Change = Callable[[Tensor, np.ndarray, list], list | None]  # engine.walk's visit
Site = tuple[tuple[str, int], ...]  # (file, line) of the innermost user-level call, then the forward's, or ()


def _site_of(places: tuple[_Place, ...]) -> Site:
    known = [(p.file, p.line) for p in places if p.file]
    return () if not known else tuple(dict.fromkeys([known[0], known[-1]]))


class _Graph:
    """The recorded graph of the Tensor run and the backward walk over it, with one change at a time."""

    def __init__(self, loss: Tensor, targets: dict[str, Tensor], chains: dict[Function, tuple[_Place, ...]]) -> None:
        self.loss, self.targets, self.chains = loss, targets, chains
        self.named = {t for t in targets.values() if isinstance(t, Tensor)}  # a set: Tensor's == compares values
        self.order = toposort(loss)
        self.position = {t: i for i, t in enumerate(self.order)}
        self.uses: dict[Tensor, list[tuple[Tensor, int]]] = {}
        for t in self.order:
            fn = t.grad_fn
            if fn is not None:
                for i, (x, need) in enumerate(zip(fn.inputs, fn.needs_grad)):
                    if need:
                        self.uses.setdefault(x, []).append((t, i))
        self._ops: list[_Op] | None = None

    def rank(self, t: Tensor | None) -> int:
        """Backward order: 0 for the loss, larger further from it; unreached values last."""
        if isinstance(t, Tensor) and t in self.position:
            return len(self.order) - self.position[t]
        return len(self.order) + 1

    # -- the walk ---------------------------------------------------------------------------------------------
    def walk(self, change: Change | None = None) -> dict[str, np.ndarray]:
        """Autograd's backward from the loss, with ``change(node, grad, sent)`` deciding a node's contributions
        (``engine.walk``'s visit); the targets' gradients by name."""
        wanted = {t: name for name, t in self.targets.items() if isinstance(t, Tensor)}
        found = walk([(self.loss, np.ones_like(self.loss.data))], wanted=list(wanted), visit=change)
        return {wanted[t]: g for t, g in found.items()}

    # -- the user's ops ---------------------------------------------------------------------------------------
    def ops(self) -> list[_Op]:
        """Ops whose local derivative can be skipped (one differentiable input, output of its shape), nearest
        the loss first: single nonlinear rules, and the ops made by one call of a user or NumPy function."""
        if self._ops is not None:
            return self._ops
        found: dict[frozenset, _Op] = {}
        calls: dict[Any, tuple[_Place, tuple[_Place, ...], set]] = {}  # call -> (it, the calls around it, members)
        for t in self.order:
            fn = t.grad_fn
            if fn is None:
                continue
            chain = self.chains.get(fn, ())
            site = _site_of(chain)
            linear = fn.name in LINEAR_RULES  # a rule's name says what it computes, unless it is x * x and the like
            op = self._as_op(frozenset([t]), t, fn.name, site, getattr(fn, "axis", None), recognising=linear)
            if op is not None and (op.name != fn.name or not linear):
                found.setdefault(op.members, op)
            for level, place in enumerate(chain[:-1]):  # the outermost is the forward itself: not a composite
                calls.setdefault(place.key, (place, chain[level + 1:], set()))[2].add(t)
        for place, around, members in calls.values():
            members = frozenset(members)
            y = self._single_output(members)
            site = _site_of(around)
            op = y is not None and self._as_op(members, y, place.name, site, None)
            if op:
                found.setdefault(members, op)
        self._ops = sorted(found.values(), key=lambda op: self.rank(op.y))
        return self._ops

    def _single_output(self, members: frozenset) -> Tensor | None:
        outputs = [t for t in members if t is self.loss or t in self.named
                   or any(c not in members for c, _ in self.uses.get(t, ()))]
        return outputs[0] if len(outputs) == 1 else None

    def _as_op(self, members: frozenset, y: Tensor, name: str, site: Any, axis: int | None,
               recognising: bool = True) -> _Op | None:
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
        return _Op(name, members, x, y, site, axis)


def recognise(x: np.ndarray, y: np.ndarray) -> tuple[str, int | None] | None:
    """What an op computes, told from its input and output values: (name, softmax axis) or None."""
    if x.shape != y.shape or x.size == 0 or x.dtype.kind != "f":
        return None
    x = x.astype(np.float64)
    candidates: list[tuple[str, int | None, Callable[[], np.ndarray]]] = []
    for axis in range(x.ndim):
        if x.shape[axis] > 1:
            candidates.append(("softmax", axis, lambda a=axis: _softmax(x, a)))
            candidates.append(("log_softmax", axis, lambda a=axis: np.log(_softmax(x, a))))
    candidates += [
        ("sigmoid", None, lambda: 1 / (1 + np.exp(-x))), ("tanh", None, lambda: np.tanh(x)),
        ("relu", None, lambda: np.maximum(x, 0)), ("softplus", None, lambda: np.logaddexp(0, x)),
        ("exp", None, lambda: np.exp(x)), ("square", None, lambda: x * x), ("abs", None, lambda: np.abs(x)),
        ("sqrt", None, lambda: np.sqrt(x)), ("log", None, lambda: np.log(x)),
    ]
    top = float(np.max(np.abs(y), initial=0.0, where=np.isfinite(y)))
    with quiet():
        for name, axis, value in candidates:
            v = value()
            if np.allclose(y, v, rtol=1e-9, atol=1e-12 * max(1.0, top), equal_nan=True) and not np.array_equal(y, x):
                return name, axis
    return None


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# ----------------------------------------------------------------------------------------------------------
# The check
# ----------------------------------------------------------------------------------------------------------


def check_gradients(forward: Callable[..., Any], backward: Callable[..., Mapping[str, Any]], params: Any, *args: Any,
                    fd_entries: int = 6, seed: int = 0, rtol: float = RTOL, fd_rtol: float = FD_RTOL) -> GradientReport:
    """Compare a hand-written ``backward`` with autograd and with finite differences of ``forward``.

    ``params``: a dict name -> array (or Tensor), or an ``nn.Module``. ``forward(params, *args)`` returns the
    scalar loss; it is run once on float64 copies of the parameters (arrays, or Tensors without grad when
    Tensors were given), then once, unchanged, on Tensors that require grad. ``backward(params, *args)``,
    called after the first run, returns a dict name -> gradient for the parameters it covers, and for values
    ``forward`` named with ``watch(name, value)``. Finite differences are taken on ``fd_entries`` entries of
    each value (the largest |gradient| and random ones, chosen with ``seed``). ``rtol`` / ``fd_rtol``: the
    agreement tolerances. Nothing the caller passed is modified.
    """
    for fn, role in ((forward, "forward"), (backward, "backward")):
        if not callable(fn):
            raise TypeError(f"check_gradients: {role} must be a function, got a {type(fn).__name__}")
    if isinstance(fd_entries, bool) or not isinstance(fd_entries, int) or fd_entries < 0:
        raise ValueError(f"check_gradients: fd_entries must be a non-negative integer, got {fd_entries!r}")
    parameters = _Parameters(params)
    given, args = args, tuple(_own(a) for a in args)
    names = parameters.names

    # 1. The plain float64 run, then the hand-written backward (it may read what the forward cached).
    plain_run = _Run(names)
    plain = parameters.plain()
    loss_value = _loss_value(_call_user(forward, plain_run, plain, args))
    plain_watched = plain_run.watched
    hand = _hand_gradients(backward, plain, args, names, plain_watched)

    # 2. The same forward on Tensors, recording where each op was made; autograd.
    recorder = _Recorder()
    previous = set_recorder(recorder)
    try:
        loss, targets = _tensor_run(forward, parameters, args)
    finally:
        set_recorder(previous)
    autograd = _autograd(loss, targets)
    graph = _Graph(loss, targets, recorder.chains)

    # 3. Finite differences and the comparison, entry by entry.
    rng = np.random.default_rng(seed)
    covered = list(names) + [n for n in plain_watched if n in hand]
    entries = []
    for name in covered:
        auto = autograd.get(name)
        if auto is None:  # watched on the arrays but not on the Tensors: the value does not reach the loss there
            auto = np.zeros(np.shape(plain_watched[name]))
        entries.append(_entry(name, name in names, hand.get(name), auto, rtol, fd_rtol,
                              _fd(forward, parameters, args, name, plain_watched, auto, fd_entries, rng)))
    notes = _notes(parameters, given, loss_value, loss)
    _diagnose(entries, graph, forward, parameters, args, rtol)
    entries.sort(key=lambda e: graph.rank(targets.get(e.name)))
    report = GradientReport(entries, rtol, fd_rtol, loss_value, notes=notes, loss=loss,
                            tensors={n: t for n, t in targets.items() if isinstance(t, Tensor)})
    report.diagnosis = _diagnosis(report)
    return report


def _tensor_run(forward: Callable, parameters: _Parameters, args: tuple,
                dtype: Any = np.float64) -> tuple[Tensor, dict[str, Any]]:
    """forward on Tensors that require grad: the loss, and the Tensors by name (parameters and watched values)."""
    first, tensors = parameters.tensors(dtype)
    run = _Run(parameters.names, tensors=True)
    out = _call_user(forward, run, first, args if dtype == np.float64 else tuple(_own(a, dtype) for a in args))
    if not isinstance(out, Tensor):
        _loss_value(out)  # a non-scalar says so first
        raise TypeError(f"check_gradients: on Tensors, forward returned a {type(out).__name__} instead of a Tensor: "
                        "a step in it turned the Tensors into plain values (float(), .item(), .numpy(), np.asarray, "
                        "the math module, ...), so autograd cannot follow it")
    _loss_value(out)
    if not out.requires_grad:
        raise ValueError("check_gradients: on Tensors, forward's loss does not depend on the parameters (it has no "
                         "graph): a step in it used the parameters' plain values (.data, .numpy(), np.asarray, ...)")
    return out, {**tensors, **run.watched}


def _autograd(loss: Tensor, targets: dict[str, Any]) -> dict[str, np.ndarray]:
    """The engine's own backward (the graph kept for the diagnosis): gradients by name, zeros where none."""
    loss.backward(retain_graph=True)
    grads = {}
    for name, t in targets.items():
        if isinstance(t, Tensor) and t.grad is not None:
            grads[name] = np.array(t.grad.data, dtype=np.float64)
        else:
            grads[name] = np.zeros(np.shape(t.data if isinstance(t, Tensor) else t))
    return grads


def _fd(forward: Callable, parameters: _Parameters, args: tuple, name: str, watched: Mapping[str, Any],
        auto: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of the plain forward on sampled entries of ``name``: (flat indices, derivatives)."""
    picks = sample_entries(auto, count, rng)
    is_parameter = name in parameters.names
    base = parameters.values[name] if is_parameter else np.asarray(
        watched[name].data if isinstance(watched[name], Tensor) else watched[name], dtype=np.float64)

    def loss_at(index: int, value: float) -> float:
        delta = value - float(base.flat[index])
        if is_parameter:
            moved = base.copy()
            moved.flat[index] = value
            plain, run = parameters.plain({**parameters.values, name: moved}), _Run(parameters.names)
        else:
            plain, run = parameters.plain(), _Run(parameters.names, shift=(name, index, delta))
        return _loss_value(_call_user(forward, run, plain, args))

    numeric = []
    for j in picks:
        v = float(base.flat[j])
        h = FD_STEP * max(1.0, abs(v))
        up, down = v + h, v - h
        numeric.append((loss_at(j, up) - loss_at(j, down)) / (up - down))
    parameters.plain()  # a module copy back at the unshifted values
    return picks, np.array(numeric)


def _entry(name: str, is_parameter: bool, hand: np.ndarray | None, auto: np.ndarray, rtol: float, fd_rtol: float,
           fd: tuple[np.ndarray, np.ndarray]) -> GradientEntry:
    scale = float(np.max(np.abs(auto))) if auto.size else 0.0
    picks, numeric = fd
    fd_abs, fd_rel = relative_difference(numeric, auto.reshape(-1)[picks], scale)
    if hand is None:
        max_abs = max_rel = float("nan")
    else:
        max_abs, max_rel = relative_difference(hand, auto, scale)
    return GradientEntry(name, "parameter" if is_parameter else "intermediate", tuple(auto.shape), scale, max_abs,
                         max_rel, hand is not None and max_rel <= rtol, len(picks), fd_abs, fd_rel, fd_rel <= fd_rtol,
                         hand_shape=None if hand is None else tuple(hand.shape), hand=hand, autograd=auto)


def _notes(parameters: _Parameters, args: tuple, loss_value: float, loss: Tensor) -> list[str]:
    """What the check did to the input, and what it found odd about the forward."""
    notes = []
    float32 = parameters.float32 + [f"argument {i + 1}" for i, a in enumerate(args)
                                    if isinstance(a, (np.ndarray, Tensor)) and a.dtype == np.float32]
    if float32:
        notes.append(f"{', '.join(float32)} {'was' if len(float32) == 1 else 'were'} float32; checked in float64 "
                     "(forward and backward got float64 copies)")
    tensor_value = float(loss.data.reshape(()))
    if abs(tensor_value - loss_value) > 1e-9 * max(1.0, abs(loss_value)):
        notes.append(f"forward gives {loss_value!r} on arrays but {tensor_value!r} on Tensors: it does not compute "
                     "the same thing in both runs, so finite differences and autograd may disagree")
    return notes


# ----------------------------------------------------------------------------------------------------------
# The diagnosis: every cause is a computation that reproduces the hand-written numbers
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Found:
    kind: str
    op: str | None = None
    factor: float | None = None
    advice: str = ""
    residual: float | None = None


def _diagnose(entries: list[GradientEntry], graph: _Graph, forward: Callable, parameters: _Parameters,
              args: tuple, rtol: float) -> None:
    """Set the cause of every entry whose hand-written gradient disagrees with autograd."""
    sizes = _batch_sizes(args)
    pending: list[GradientEntry] = []
    for e in entries:
        if e.agree:
            continue
        found = _first_look(e, graph, sizes, rtol)
        if found is None:
            pending.append(e)
        else:
            _set(e, found)
    if not pending:
        return
    precise = [e for e in pending if e.max_rel <= 1e-3]
    if precise:
        float32 = _float32_autograd(forward, parameters, args)
        for e in precise:
            if float32 is not None and _within_float32(e.hand, e.autograd, float32.get(e.name), e.scale):
                _set(e, _Found("precision", advice=(
                    f"the hand-written gradient agrees with autograd only to float32 rounding (max rel diff "
                    f"{e.max_rel:.1e}, no more than autograd itself run in float32 differs from float64): your "
                    "backward computes in float32 somewhere; compute it in float64 to check it exactly")))
                pending.remove(e)
    if pending:
        _try_variants(pending, graph, sizes, rtol)
    for e in pending:
        if e.cause_kind is None:
            _set(e, _Found("unexplained", advice=_unexplained(e)))


def _set(e: GradientEntry, found: _Found) -> None:
    e.cause_kind, e.cause_op, e.factor, e.explained_max_rel = found.kind, found.op, found.factor, found.residual
    e.advice = found.advice


def _first_look(e: GradientEntry, graph: _Graph, sizes: list[int], rtol: float) -> _Found | None:
    """Causes read off the two arrays alone: missing, non-finite, wrong shape, a factor, a transpose."""
    h, a = e.hand, e.autograd
    if h is None:
        what = "parameter" if e.kind == "parameter" else "watched value"
        return _Found("missing", advice=f"backward returned no gradient for this {what}; add it to the dict it returns")
    if h.shape != a.shape:
        return _shape_cause(e, graph, rtol)
    if not np.isfinite(h).all() or not np.any(h):
        return _Found("unexplained", advice=_unexplained(e))
    return _undo(h, a, e.scale, rtol, sizes)


def _undo(h: np.ndarray, ref: np.ndarray, scale: float, rtol: float, sizes: list[int],
          after: str = "") -> _Found | None:
    """Is ``h`` a constant multiple (scale, sign) or the transpose of ``ref``? Each checked by undoing it."""
    norm = float(np.sum(ref * ref))
    if norm > 0 and np.any(h):
        c = float(np.sum(h * ref)) / norm  # least squares: h ~ c * ref
        if abs(c - 1) > 1e-9 and relative_difference(h, c * ref, scale)[1] <= rtol * max(1.0, abs(c)):
            c = _nice(c)
            if c == -1:
                return _Found("sign", factor=-1.0, residual=relative_difference(h, -ref, scale)[1], advice=after + (
                    "the hand-written gradient has the opposite sign of autograd's (negated, it agrees): flip its "
                    "sign, e.g. where a difference is taken the other way round"))
            return _Found("scale", factor=c, residual=relative_difference(h, c * ref, scale)[1],
                          advice=after + _scale_advice(c, sizes))
    if ref.ndim >= 2 and h.shape == ref.T.shape:  # a square matrix: a transpose keeps the shape
        if relative_difference(h.T, ref, scale)[1] <= rtol:
            return _Found("transpose", residual=relative_difference(h.T, ref, scale)[1], advice=after + (
                f"the hand-written gradient is the transpose of autograd's (shape {h.shape}; transposed, it "
                "agrees): return its .T, e.g. x.T @ grad instead of grad.T @ x"))
    return None


def _nice(c: float) -> float:
    """``c`` rounded to an integer or to 1/integer when it is one to 1e-9."""
    if abs(c - round(c)) < 1e-9 * max(1.0, abs(c)):
        return float(round(c))
    if abs(1 / c - round(1 / c)) < 1e-9 * abs(1 / c):
        return 1 / round(1 / c)
    return c


def _scale_advice(c: float, sizes: list[int]) -> str:
    text = f"the hand-written gradient is {_factor(c)} times autograd's (divided by {_factor(c)}, it agrees)"
    for n in sizes:
        if n > 1 and abs(c - n) < 1e-9 * n:
            return text + (f": {n} is the batch size, so the loss averages over the {n} samples but this gradient "
                           f"does not; divide it by {n}")
        if n > 1 and abs(c * n - 1) < 1e-9:
            return text + (f": 1/{n} with {n} the batch size, so this gradient divides by the batch size where the "
                           "loss does not (or divides twice); drop that division")
    return text + f"; look for a stray factor {_factor(c)}"


def _batch_sizes(args: tuple) -> list[int]:
    """The leading sizes of the array arguments: the batch sizes a mean over the samples divides by."""
    sizes = []
    for a in args:
        shape = np.shape(a.data if isinstance(a, Tensor) else a) if isinstance(a, (Tensor, np.ndarray)) else ()
        if shape and shape[0] not in sizes:
            sizes.append(int(shape[0]))
    return sizes


def _shape_cause(e: GradientEntry, graph: _Graph, rtol: float) -> _Found:
    """A hand-written gradient of another shape: transposed, not summed over broadcast axes, or just wrong."""
    h, a, scale = e.hand, e.autograd, e.scale
    if h.shape == a.T.shape and relative_difference(h.T, a, scale)[1] <= rtol:
        return _Found("transpose", residual=relative_difference(h.T, a, scale)[1], advice=(
            f"the hand-written gradient has shape {h.shape}, the transpose of autograd's {a.shape} (transposed, "
            "it agrees): return its .T, e.g. x.T @ grad instead of grad.T @ x"))
    for axes in _axis_sets(h.ndim) if h.size > a.size else ():
        summed = h.sum(axis=axes)
        if summed.size == a.size and relative_difference(summed.reshape(a.shape), a, scale)[1] <= rtol:
            where = _broadcast_site(graph, e.name)
            return _Found("broadcast_sum", residual=relative_difference(summed.reshape(a.shape), a, scale)[1], advice=(
                f"the hand-written gradient has shape {h.shape} but the value has shape {a.shape}: it is not "
                f"summed over axis {_axes_text(axes)}, the axes broadcasting added{where}; return "
                f"grad.sum(axis={_axes_text(axes)})"
                + ("" if summed.shape == a.shape else f".reshape({a.shape})")))
    broadcast = _broadcast_cause(e, graph, rtol)
    if broadcast is not None:
        return broadcast
    if h.size == a.size and relative_difference(h.reshape(a.shape), a, scale)[1] <= rtol:
        return _Found("shape", advice=(f"the hand-written gradient has shape {h.shape} but the value has shape "
                                       f"{a.shape}; the values are right: reshape it to {a.shape}"))
    return _Found("shape", advice=f"the hand-written gradient has shape {h.shape}, the value {a.shape}")


def _axis_sets(ndim: int) -> Iterator[tuple[int, ...]]:
    for k in range(1, ndim + 1):
        yield from combinations(range(ndim), k)


def _axes_text(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _raw(graph: _Graph, name: str) -> tuple[np.ndarray, Tensor] | None:
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


def _broadcast_cause(e: GradientEntry, graph: _Graph, rtol: float) -> _Found | None:
    """Summed over the wrong axes: some sum of the un-summed gradient reproduces the hand-written one."""
    found = _raw(graph, e.name)
    if found is None:
        return None
    raw, node = found
    h, scale = e.hand, e.scale
    extra = raw.ndim - len(e.shape)
    right = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(e.shape)
                                        if n == 1 and raw.shape[extra + i] != 1)
    where = _site_text(_node_site(graph, node))
    if h.shape == raw.shape and relative_difference(h, raw, scale)[1] <= rtol:
        return _Found("broadcast_sum", residual=relative_difference(h, raw, scale)[1], advice=(
            f"the hand-written gradient is not summed over axis {_axes_text(right)}, the axes broadcasting "
            f"added{where}; return grad.sum(axis={_axes_text(right)})"))
    for axes in _axis_sets(raw.ndim):
        if axes == right:
            continue
        for keep in (False, True):
            summed = raw.sum(axis=axes, keepdims=keep)
            if summed.shape == h.shape and relative_difference(h, summed, scale)[1] <= rtol:
                return _Found("broadcast_sum", residual=relative_difference(h, summed, scale)[1], advice=(
                    f"the hand-written gradient is summed over axis {_axes_text(axes)}, but broadcasting added "
                    f"axis {_axes_text(right)}{where}; sum over axis {_axes_text(right)} instead"))
    return None


def _broadcast_site(graph: _Graph, name: str) -> str:
    t = graph.targets.get(name)
    uses = graph.uses.get(t, []) if isinstance(t, Tensor) else []
    return _site_text(_node_site(graph, uses[0][0])) if len(uses) == 1 else ""


def _node_site(graph: _Graph, t: Tensor) -> Site:
    return _site_of(graph.chains.get(t.grad_fn, ())) if t.grad_fn is not None else ()


def _line(file: str, line: int) -> str:
    code = linecache.getline(file, line).strip()
    return f"{os.path.basename(file)} line {line}" + (f" (`{code}`)" if code else "")


def _site_text(site: Site) -> str:
    """`` at model.py line 12 (`h = np.tanh(z)`), called from line 30 (`...`)``; nothing when not known."""
    if not site:
        return ""
    text = " at " + _line(*site[0])
    return text + (f", called from {_line(*site[-1])}" if len(site) > 1 else "")


def _sites_text(sites: list[Site]) -> str:
    known = list(dict.fromkeys(s for s in sites if s))
    if len(known) <= 1:
        return _site_text(known[0] if known else ())
    return " at " + " and ".join(_line(*s[0]) for s in known)


# -- float32 ----------------------------------------------------------------------------------------------------


def _float32_autograd(forward: Callable, parameters: _Parameters, args: tuple) -> dict[str, np.ndarray] | None:
    """Autograd with the parameters and arguments in float32: how large float32 rounding is in this computation."""
    try:
        loss, targets = _tensor_run(forward, parameters, args, dtype=np.float32)
        loss.backward()
    except (TypeError, ValueError, ArithmeticError):
        return None
    return {name: np.asarray(t.grad.data, dtype=np.float64) for name, t in targets.items()
            if isinstance(t, Tensor) and t.grad is not None}


def _within_float32(h: np.ndarray, a: np.ndarray, a32: np.ndarray | None, scale: float) -> bool:
    """Entrywise, ``h`` differs from ``a`` by no more than float32 rounding does (as autograd in float32 shows)."""
    if a32 is None or a32.shape != a.shape or not np.isfinite(h).all():
        return False
    bound = 8 * (np.abs(a32 - a) + FLOAT32_EPS * np.abs(a)) + FLOAT32_EPS * scale
    return bool(np.all(np.abs(h - a) <= bound))


# -- re-walking the graph with one known mistake ----------------------------------------------------------------


@dataclass
class _Variant:
    """One known mistake applied to autograd's backward."""

    kind: str
    op: str | None
    change: Change
    advice: str


def _try_variants(pending: list[GradientEntry], graph: _Graph, sizes: list[int], rtol: float) -> None:
    """Walk the graph once per known mistake; an entry takes the first mistake whose gradient reproduces its
    hand-written one; failing that, a missing derivative combined with a factor, sign or transpose."""
    combined: dict[str, _Found] = {}
    open_entries = [e for e in pending if e.hand is not None and e.hand.shape == e.autograd.shape]
    for n, variant in enumerate(_variants(graph)):
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
                _set(e, _Found(variant.kind, variant.op, advice=variant.advice, residual=residual))
                open_entries.remove(e)
            elif variant.kind == "missing_derivative" and e.name not in combined:
                also = _undo(e.hand, g, scale, rtol, sizes,
                             after="and, against autograd with that derivative skipped too, ")
                if also is not None:
                    also.op, also.advice = variant.op, variant.advice + "; " + also.advice
                    combined[e.name] = also
    for e in open_entries:
        if e.name in combined:
            _set(e, combined[e.name])
        else:
            found = _broadcast_cause(e, graph, rtol)
            if found is not None:
                _set(e, found)


def _variants(graph: _Graph) -> Iterator[_Variant]:
    """Known mistakes, most specific first: one op's derivative skipped, then every op of a kind; softmax's
    Jacobian as its diagonal or along another axis; one use of a reused value dropped."""
    ops_ = graph.ops()
    for op in ops_:
        yield _skip([op])
    by_name: dict[str, list[_Op]] = {}
    for op in ops_:
        by_name.setdefault(op.name, []).append(op)
    for group in by_name.values():
        if len(group) > 1:
            yield _skip(group)
    for op in ops_:
        if op.name == "softmax" and op.axis is not None:
            yield from _softmax_variants(op)
    yield from _dropped_uses(graph)


def _skip(group: list[_Op]) -> _Variant:
    name = group[0].name
    outputs = {op.y: op.x for op in group}

    def change(node: Tensor, grad: np.ndarray, sent: list) -> list | None:
        x = outputs.get(node)
        return None if x is None else [(None, x, grad.astype(x.dtype, copy=False))]

    derivative = DERIVATIVES.get(name)
    advice = (f"your backward passes the gradient through {name} unchanged{_sites_text([op.site for op in group])}, "
              f"skipping its derivative: multiply the gradient arriving at its output by "
              + (derivative if derivative else f"the derivative of {name}") + " before passing it on")
    return _Variant("missing_derivative", name, change, advice)


def _softmax_variants(op: _Op) -> Iterator[_Variant]:
    p, axis = op.y.data, op.axis
    site = _site_text(op.site)
    fix = f"apply the whole Jacobian: dz = p * (g - (g * p).sum(axis={axis}, keepdims=True))"

    def diagonal(node: Tensor, grad: np.ndarray, sent: list) -> list | None:
        return [(None, op.x, grad * p * (1 - p))] if node is op.y else None

    yield _Variant("softmax_jacobian", "softmax", diagonal,
                   f"the hand-written gradient applies only the diagonal p * (1 - p) of the Jacobian of the "
                   f"softmax{site}: {fix}")
    for other in range(p.ndim):
        if other == axis:
            continue

        def along(node: Tensor, grad: np.ndarray, sent: list, other: int = other) -> list | None:
            return [(None, op.x, p * (grad - (grad * p).sum(axis=other, keepdims=True)))] if node is op.y else None

        yield _Variant("softmax_jacobian", "softmax", along,
                       f"the hand-written gradient applies softmax's Jacobian along axis {other}, but the "
                       f"softmax{site} normalises along axis {axis}: {fix}")


def _dropped_uses(graph: _Graph) -> Iterator[_Variant]:
    """For each value used more than once (parameters first): the walk without one of its uses."""
    names = {t: name for name, t in graph.targets.items() if isinstance(t, Tensor)}
    reused = [t for t, uses in graph.uses.items() if len(uses) > 1]
    reused.sort(key=lambda t: (t not in names, graph.rank(t)))
    for t in reused:
        uses = graph.uses[t]
        what = f"{names[t]!r}" if t in names else "the value computed" + _site_text(_node_site(graph, t))
        for node, index in uses:
            def change(n: Tensor, grad: np.ndarray, sent: list, node: Tensor = node, index: int = index) -> list | None:
                return [s for s in sent if s[0] != index] if n is node else None

            yield _Variant("not_accumulated", None, change, (
                f"{what} is used {len(uses)} times{_sites_text([_node_site(graph, u) for u, _ in uses])}, but this "
                f"gradient leaves out its use by {node.grad_fn.label()}"
                + ("" if len({_node_site(graph, u) for u, _ in uses}) == 1 else _site_text(_node_site(graph, node)))
                + ": gradients of a value used "
                "several times add up, so add that use's contribution"))


def _unexplained(e: GradientEntry) -> str:
    h = e.hand
    if h is not None and not np.isfinite(h).all():
        bad = ~np.isfinite(h)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        count = int(bad.sum())
        return (f"backward returned {count} non-finite value{'s' if count > 1 else ''} (nan or inf) of {h.size} "
                f"for it, the first at "
                f"index {first} ({h[first]}); autograd's gradient is finite there")
    if h is not None and not np.any(h):
        return "the hand-written gradient is all zeros, autograd's is not: it is never filled in"
    if e.scale == 0:
        return "autograd's gradient is zero (the loss does not depend on this value), the hand-written one is not"
    return ("no computed cause: not a missing derivative of any op, a constant factor, a sign, a transpose, a sum "
            "over broadcast axes, a dropped use of a reused value nor softmax's diagonal; compare report[name].hand "
            "with report[name].autograd, starting with the disagreeing entry nearest the loss")


def _diagnosis(report: GradientReport) -> str:
    """The verdict in words, from the entries' numbers and computed causes."""
    entries = report.entries
    if report.ok:
        worst = max((e.max_rel for e in entries), default=0.0)
        worst_fd = max((e.fd_max_rel for e in entries), default=0.0)
        return (f"all {len(entries)} entries agree: hand-written vs autograd max rel diff {worst:.1e} "
                f"(<= {report.rtol:g}), finite differences vs autograd {worst_fd:.1e} (<= {report.fd_rtol:g}).")
    parts = []
    fd_bad = [e.name for e in entries if not e.fd_agree]
    if fd_bad:
        parts.append(f"autograd disagrees with finite differences for {_and(fd_bad)}: the forward may not be "
                     "differentiable at these values (relu at 0, tied maxima) or autograd is wrong there, so the "
                     "hand-written comparison proves nothing for them.")
    bad = [e for e in entries if not e.agree]
    if bad:
        first = bad[0]
        parts.append(f"The hand-written gradients of {_and([e.name for e in bad])} disagree with autograd; the first "
                     f"from the loss is {first.name}.")
        above = [e for e in entries[:entries.index(first)] if e.kind == "intermediate" and e.agree]
        if above:
            parts.append(f"The watched value {above[-1].name} agrees, so the mistake lies between {above[-1].name} "
                         f"and {first.name}.")
        by_advice: dict[str, list[str]] = {}
        for e in bad:
            by_advice.setdefault(e.advice or "", []).append(e.name)
        parts += [f"{_and(names)}: {advice}." for advice, names in by_advice.items()]
    return " ".join(parts)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
