"""The engine: everything that differentiates, and nothing else. ``Function`` (the base of every rule, its registry,
``apply`` and ``on``), grad and anomaly mode (per thread), and the one backward walk (``backward``, ``grad``,
``walk`` with its visit hook), with broadcasting undone in one place (``unbroadcast``). Higher order: the same
walk runs each rule's backward on Tensors. See docs/architecture.md and docs/writing-an-op.md.
"""

from __future__ import annotations

import contextvars
import functools
import gc
import inspect
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from heapq import heapify, heappop, heappush
from typing import Any

import numpy as np

__all__ = [
    "Function", "ReleasedGraph", "backward", "detect_anomaly", "enable_grad", "grad",
    "is_anomaly_enabled", "is_grad_enabled", "latest_first", "no_grad",
    "quiet", "rules", "set_recorder", "toposort", "unbroadcast", "walk",
]

# ----------------------------------------------------------------------------------------------------------
# NumPy's floating-point warnings are silenced around every rule: out-of-domain values (log(0), exp(1000),
# 0 * inf) give NumPy's inf/nan quietly, and the anomaly checks report them where asked.
# ----------------------------------------------------------------------------------------------------------

try:  # NumPy >= 2 keeps its error state in a context variable: switching it costs ~0.2 us instead of ~2 us.
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE_ALL = _make_extobj(all="ignore")
    # Called once or twice per op: C callables (a partial of a bound method, a bound method), no Python frame of
    # their own, half the cost of a function.
    _silence: Callable[[], object] = functools.partial(_extobj_contextvar.set, _IGNORE_ALL)
    _restore: Callable[[object], None] = _extobj_contextvar.reset

except ImportError:  # older NumPy: the public (slower) context manager does the same job

    def _silence() -> object:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def _restore(token: object) -> None:
        token.__exit__(None, None, None)


class quiet:  # noqa: N801 - used like np.errstate
    """``with quiet():`` is ``np.errstate(all="ignore")``, cheap enough to wrap every op."""

    __slots__ = ("token",)

    def __enter__(self) -> None:
        self.token = _silence()

    def __exit__(self, *exc: object) -> None:
        _restore(self.token)


# ----------------------------------------------------------------------------------------------------------
# Grad mode and anomaly mode: per thread, so one thread's no_grad() never changes what another records
# ----------------------------------------------------------------------------------------------------------

_ANOMALY_FROM_ENV = os.environ.get("TINYGRAD_LIKE_DETECT_ANOMALY", "").strip().lower() in ("1", "true", "yes", "on")


# Both flags in one int in a context variable: the hot path reads it once (a context variable is cheaper to read
# than threading.local, and each thread has a context of its own, so the modes are per thread).
GRAD, ANOMALY = 1, 2
_mode = contextvars.ContextVar("tinygrad_like_mode", default=GRAD | (ANOMALY if _ANOMALY_FROM_ENV else 0))
_get_mode = _mode.get


_tokens = threading.local()


def _mode_tokens() -> list:
    """This thread's stack of the mode changes to undo: kept per thread, not on the context manager, so one
    ``no_grad()`` object can be entered again while it is open, or from several threads at once."""
    stack = getattr(_tokens, "stack", None)
    if stack is None:
        stack = _tokens.stack = []
    return stack


class _Mode:
    """A context manager (and decorator) that sets one per-thread flag and restores it on exit."""

    flag = GRAD
    value = True

    def __enter__(self) -> _Mode:
        mode = _get_mode()
        _mode_tokens().append(_mode.set((mode | self.flag) if self.value else (mode & ~self.flag)))
        return self

    def __exit__(self, *exc: object) -> None:
        _mode.reset(_mode_tokens().pop())

    def _fresh(self) -> _Mode:
        return type(self)()

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():  # a fresh context per call: calls may nest or run in several threads
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_Mode):  # noqa: N801 - named like PyTorch's and tinygrad's
    """Context manager (and decorator) under which no graph is recorded, in this thread."""

    flag, value = GRAD, False


class enable_grad(_Mode):  # noqa: N801 - named like PyTorch's
    """Context manager (and decorator) that records the graph again, e.g. inside ``no_grad()``."""

    flag, value = GRAD, True


class detect_anomaly(_Mode):  # noqa: N801 - named like PyTorch's
    """Context manager (and decorator) that raises ``FloatingPointError`` at the first nan/inf, in this thread.

    Every forward result and every backward gradient is checked; the error names the op that produced the
    bad values, the ops that made its inputs, and the shapes. Also switched on for a whole run by the
    environment variable ``TINYGRAD_LIKE_DETECT_ANOMALY=1``.
    """

    flag = ANOMALY

    def __init__(self, enabled: bool = True) -> None:
        self.value = enabled

    def _fresh(self) -> detect_anomaly:
        return detect_anomaly(self.value)


def is_grad_enabled() -> bool:
    """False inside ``no_grad()`` (in this thread)."""
    return bool(_get_mode() & GRAD)


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` (in this thread) or with ``TINYGRAD_LIKE_DETECT_ANOMALY=1``."""
    return bool(_get_mode() & ANOMALY)


def set_recorder(recorder: Callable[[Function], None] | None) -> Callable[[Function], None] | None:
    """Call ``recorder(fn)`` for every op recorded in this thread from now on (None stops it); returns the
    previous recorder.

    An opt-in hook for tools that want to know where each node of a graph was made (``check_gradients`` reads
    the caller's frame to group the ops one call of a user's function made). ``apply`` calls it only while one
    is set, after ``fn.inputs``, ``fn.needs_grad`` and ``fn.seq`` are filled in.
    """
    global _recording
    with _recording_lock:
        previous = _recorder.get()
        _recorder.set(recorder)
        _recording += (recorder is not None) - (previous is not None)
    return previous


_recorder: contextvars.ContextVar[Callable[[Function], None] | None] = contextvars.ContextVar(
    "tinygrad_like_recorder", default=None)
_recording = 0  # threads with a recorder: while 0, apply pays one global load, not a context lookup
_recording_lock = threading.Lock()


# ----------------------------------------------------------------------------------------------------------
# Function: the base of every rule, and the one way to record one
# ----------------------------------------------------------------------------------------------------------

_tensor_type: Any = None  # the Tensor class, handed over by tensors.py (which imports this module)
_registry: dict[str, dict[str, type[Function]]] = {}  # module -> rule name -> rule


_implementations: dict[Callable, type[Function]] = {}  # NumPy function -> the rule that computes it
_on_register: Callable[[type[Function]], None] | None = None  # tensors.py: install a new rule's Tensor methods


def implementation(function: Callable) -> type[Function] | None:
    """The rule whose ``implements`` names the NumPy ``function`` (the latest defined), or None."""
    return _implementations.get(function)


def implemented() -> list[Callable]:
    """Every NumPy function some rule ``implements``."""
    return list(_implementations)


def set_tensor_type(cls: type, on_register: Callable[[type[Function]], None]) -> None:
    """Called once by ``tensors.py``: the class ``apply`` builds its results with, and what to do for each rule
    defined from now on (install its Tensor methods)."""
    global _tensor_type, _on_register
    _tensor_type, _on_register = cls, on_register


def rules(module: str | None = None) -> dict[str, type[Function]]:
    """Every registered rule by name (those defined in ``module`` only, when given)."""
    if module is not None:
        return dict(_registry.get(module, {}))
    return {name: rule for table in _registry.values() for name, rule in table.items()}


class ReleasedGraph:
    """Takes the place of a rule once ``backward()`` has released it: the name stays, the saved arrays go."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Function:
    """Base of every rule: subclass it, write ``forward`` and ``backward``, record it with ``apply``.

    ``forward(*arrays, **params)``: NumPy arrays in (one per tensor given to ``apply``), an array out; keep on
    ``self`` what backward needs. ``backward(grad)``: the gradient of the loss with respect to the output in,
    one gradient per input out (``None`` where ``self.needs_grad[i]`` is False). A gradient may have the
    broadcast shape: the engine sums it back to the input's shape and casts it to the input's dtype.
    Return new arrays or views of ``grad``, never an array the rule keeps (leaves get them without a copy).

    Class attributes: ``name`` (default: the class name in lower case), ``hint`` (said when the forward makes
    nan/inf under ``detect_anomaly``), ``backward_hint`` (the same for the backward), ``saves_values`` (False
    for a rule whose backward reads no input or output values, so in-place changes cannot spoil it).
    ``label()`` is the text drawings and error messages show, e.g. ``sum(axis=(1,))``.

    The engine sets ``inputs`` (the Tensors), ``needs_grad`` (one bool per input) and ``seq`` (creation order)
    when it records the op, ``params`` (the keyword parameters given to ``apply``, when there are some), and
    ``module_calls`` when an ``nn.Module`` call returned its result (drawings group those ops).

    A backward is written once: on arrays for a first-order backward, and on Tensors, recorded, for
    ``backward(create_graph=True)``, so it uses operations that work on both (operators, the NumPy functions
    Tensors support, other rules through ``Rule.on``), never in-place changes of what it did not allocate.
    With create_graph the walk runs it on a copy of the rule whose saved values are Tensors, told by name: a
    value saved under the name of one of ``forward``'s array parameters is that input, ``out`` is the output,
    ``constants`` (masks the backward only compares) and keyword parameters stay as they are. If the rule saved
    anything else (values computed from its inputs), its ``forward`` is re-run on the input Tensors first, so
    those values are on the graph too.
    """

    __slots__ = ("inputs", "needs_grad", "seq", "params", "module_calls")
    name = "function"
    hint: str | None = None
    backward_hint: str | None = None
    saves_values = True  # backward reads saved inputs or output: checked against in-place changes
    view = False  # its output may share its first input's memory (reshape, permute, ...): one version for both
    # What the other rooms know of the op, all derived from here:
    methods: tuple[str, ...] = ()  # Tensor methods that are this rule applied to the tensor alone (t.exp())
    implements: Any = ()  # the NumPy function(s) it computes: called on Tensors, they record this rule
    onnx: Any = None  # ONNX: an op type taking the same inputs, or a function (graph, fn, input names, output)
    derivative: str | None = None  # check_gradients' words for its local derivative (z: its input)
    linear = False  # linear in its differentiable inputs: skipping its "derivative" is a scale or shape mistake
    scatters = False  # its input's gradient is the output's, placed at ``part()`` of the input (getitem)
    constants: tuple[str, ...] = ()  # saved values the backward only compares: kept as arrays in a graph of it
    released: ReleasedGraph

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()
        cls.released = ReleasedGraph(cls.name)  # one shared marker per rule
        _registry.setdefault(cls.__module__, {})[cls.name] = cls
        implements = cls.__dict__.get("implements", ())
        for function in implements if isinstance(implements, tuple) else (implements,):
            _implementations[function] = cls
        if isinstance(cls.__dict__.get("forward"), staticmethod):  # PyTorch's style: forward(ctx, *tensors)
            cls.apply = classmethod(_apply_pytorch_style)
        if _on_register is not None:
            _on_register(cls)

    def forward(self, *args: np.ndarray, **params: Any) -> np.ndarray:  # pragma: no cover - every rule overrides
        raise NotImplementedError(f"{self.name}: forward is not defined")

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:  # pragma: no cover
        raise NotImplementedError(f"{self.name}: backward is not defined")

    @classmethod
    def on(cls, *args: Any, **params: Any) -> Any:
        """The rule on arrays or on Tensors alike, so that a formula using it is written once: on arrays (a
        first-order backward) it is its ``forward``, nothing recorded; with a Tensor among ``args`` (a backward
        run with ``create_graph``, a forward re-run on Tensors) it is ``apply``, recorded."""
        if any(isinstance(a, _tensor_type) for a in args):
            return cls.apply(*[a if isinstance(a, _tensor_type) else constant(np.asarray(a)) for a in args], **params)
        return _new(cls).forward(*args, **params)

    def label(self) -> str:
        """Short text for drawings and error messages; rules with parameters show them."""
        return self.name

    def part(self) -> Any:
        """For a rule that ``scatters``: the index at which the output's gradient lands in its input's gradient,
        hitting each element at most once; None when it cannot be said (the rule's backward runs instead)."""
        return None

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run the rule forward on the tensors' arrays and, where a gradient is wanted, record it.

        ``inputs`` are Tensors; ``params`` (axes, shapes, constants) go to ``forward`` as keywords. This is the
        hottest path of the engine: one and two inputs are spelled out, and the result is built in place.
        """
        fn = _new(cls)
        n = len(inputs)
        token = _silence()
        try:
            if params:  # kept (a reference) for a forward re-run on Tensors (create_graph)
                fn.params = params
                data = (fn.forward(inputs[0]._data, **params) if n == 1
                        else fn.forward(*[t._data for t in inputs], **params))
            elif n == 1:  # calling without ** where there is nothing to pass saves a little on every op
                data = fn.forward(inputs[0]._data)
            elif n == 2:
                data = fn.forward(inputs[0]._data, inputs[1]._data)
            else:
                data = fn.forward(*[t._data for t in inputs])
        except (ValueError, TypeError, IndexError) as e:
            raise _named_error(e, cls.name, inputs) from None
        except AttributeError:
            bad = [type(t).__name__ for t in inputs if not isinstance(t, _tensor_type)]
            if bad:
                raise TypeError(f"{cls.name}.apply: inputs must be Tensors, got {', '.join(bad)}") from None
            raise
        finally:
            _restore(token)
        out = constant(data)
        if cls.view:
            link_view(out, inputs[0])
        mode = _get_mode()
        if mode & ANOMALY and out.dtype.kind == "f" and not np.isfinite(out._data).all():
            raise _forward_anomaly(fn, inputs, out._data)
        if mode & GRAD:
            if n == 1:
                needs = _NEEDS_ONE[inputs[0].requires_grad]
            elif n == 2:
                needs = _NEEDS_TWO[inputs[0].requires_grad][inputs[1].requires_grad]
            else:
                needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                fn.inputs, fn.needs_grad, fn.seq = inputs, needs, _next_seq()
                out.requires_grad, out._ctx = True, fn
                if _recording:  # set_recorder: off outside the tools that ask for it
                    recorder = _recorder.get()
                    if recorder is not None:
                        recorder(fn)
                return out
        return out


class FunctionCtx:
    """The ``ctx`` a PyTorch-style rule's static ``forward(ctx, ...)`` and ``backward(ctx, ...)`` share:
    ``save_for_backward(*tensors)`` / ``saved_tensors``, ``needs_input_grad`` (one bool per forward argument),
    and any attribute the rule sets on it."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """Accepted as PyTorch's; the output keeps its graph, whose gradient the caller does not ask for."""

    def set_materialize_grads(self, value: bool) -> None:
        """Accepted as PyTorch's: gradients given to backward are always Tensors here."""


def _apply_pytorch_style(cls: type[Function], *args: Any) -> Any:
    """``apply`` of a rule written PyTorch's way: its static ``forward(ctx, *args)`` runs on the Tensors outside
    the graph, then one node is recorded whose backward is the rule's static ``backward(ctx, *grads)`` on Tensors
    (outside the graph for a first-order backward, recorded under ``create_graph``)."""
    ctx = FunctionCtx(tuple(isinstance(a, _tensor_type) and a.requires_grad for a in args))
    with no_grad():
        if "setup_context" in cls.__dict__:  # the newer style: forward(*args), then setup_context(ctx, ...)
            result = cls.forward(*args)
            cls.setup_context(ctx, args, result)
        else:
            result = cls.forward(ctx, *args)
    if not isinstance(result, _tensor_type):
        raise TypeError(f"{cls.__name__}.forward must return one Tensor, got {type(result).__name__}")
    tensors = [a for a in args if isinstance(a, _tensor_type)]
    out = _PyTorchStyleCall.apply(*tensors, rule=cls, ctx=ctx, args=args, result=result._data)
    ctx.saved_tensors = tuple(out if t is result else t for t in ctx.saved_tensors)  # the output is the node
    return out


class _PyTorchStyleCall(Function):
    """The recorded node of a PyTorch-style rule's call; its backward runs the rule's ``backward(ctx, *grads)``."""

    __slots__ = ()
    saves_values = False  # the rule's ctx holds what it saved, as Tensors: nothing here to re-run or replace

    def label(self) -> str:
        return self.params["rule"].__name__

    def forward(self, *arrays: np.ndarray, rule: Any = None, ctx: Any = None, args: Any = (), result: Any = None):
        return result

    def backward(self, grad: Any) -> tuple[Any, ...]:
        rule, ctx, args = self.params["rule"], self.params["ctx"], self.params["args"]
        on_graph = isinstance(grad, _tensor_type)  # create_graph: the rule's backward is recorded
        with (enable_grad() if on_graph else no_grad()):
            grads = rule.backward(ctx, grad if on_graph else constant(grad))
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) < len(args) or any(g is not None for g in grads[len(args):]):
            raise RuntimeError(f"{rule.__name__}.backward returned {len(grads)} gradients, expected {len(args)} "
                               "(one per forward argument after ctx, None for those without)")
        picked = [g for g, a in zip(grads, args) if isinstance(a, _tensor_type)]
        return tuple(g if g is None or on_graph else np.asarray(g._data if isinstance(g, _tensor_type) else g)
                     for g in picked)


_new = object.__new__
_next_seq = itertools.count(1).__next__  # creation order of recorded ops: the walk goes by it


# Shared needs_grad tuples, indexed by the inputs' requires_grad: one allocation less per op.
_NEEDS_ONE = ((False,), (True,))
_NEEDS_TWO = (((False, False), (False, True)), ((True, False), (True, True)))


def _named_error(e: Exception, name: str, inputs: Sequence[Any]) -> Exception:
    """The same error, its message starting with the op's name (rules' own messages already do)."""
    message = str(e)
    if message.startswith(f"{name}:"):
        return e
    shapes = [str(getattr(t, "shape", "?")) for t in inputs]
    if "could not be broadcast" in message:  # NumPy's wording, with the shapes printed without commas
        return ValueError(f"{name}: shapes {' and '.join(shapes)} cannot be broadcast together")
    shapes = ", ".join(shapes)
    try:
        return type(e)(f"{name}: {message} (input shapes {shapes})")
    except TypeError:  # an exception class with another constructor
        return ValueError(f"{name}: {message} (input shapes {shapes})")


# ----------------------------------------------------------------------------------------------------------
# Anomaly reports
# ----------------------------------------------------------------------------------------------------------


def _describe_values(a: np.ndarray) -> str:
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return "finite" if a.size == 0 else f"finite, min {a.min():.4g}, max {a.max():.4g}"
    return f"{np.isnan(a).sum()} nan, {np.isposinf(a).sum()} inf, {np.isneginf(a).sum()} -inf of {a.size}"


def _origin(t: Any) -> str:
    return "a leaf" if t._ctx is None else t._ctx.name


def _forward_anomaly(fn: Function, inputs: Sequence[Any], out: np.ndarray) -> FloatingPointError:
    parts = [f"detect_anomaly: {fn.label()} produced non-finite values in its output of shape {out.shape} "
             f"({_describe_values(out)})."]
    for i, t in enumerate(inputs):
        parts.append(f"Input {i} (shape {t.shape}) came from {_origin(t)}: {_describe_values(np.asarray(t._data))}.")
    if fn.hint:
        parts.append(f"Hint: {fn.hint}.")
    return FloatingPointError(" ".join(parts))


def _backward_anomaly(fn: Function, index: int, grad_in: np.ndarray, grad_out: np.ndarray) -> FloatingPointError:
    t = fn.inputs[index]
    return FloatingPointError(
        f"detect_anomaly: the backward rule of {fn.label()} produced non-finite values in the gradient of its "
        f"input {index} (shape {t.shape}, which came from {_origin(t)}): {_describe_values(grad_out)}. "
        f"The gradient arriving at {fn.name}'s output (shape {grad_in.shape}) was {_describe_values(grad_in)}."
        + (f" Hint: {fn.backward_hint}." if fn.backward_hint else "")
    )


# ----------------------------------------------------------------------------------------------------------
# The graph walk and the backward pass
# ----------------------------------------------------------------------------------------------------------


def latest_first(root: Any, grad_only: bool = False) -> list[Any]:
    """The recorded tensors ``root`` depends on, latest-created first: the order backward visits them in.

    Recorded ops are numbered as they are created, and a consumer is always created after its inputs, so a
    max-heap on that number gives a node only after every node that uses it (a topological order, reversed).
    An explicit heap, no recursion: million-op chains work. Leaves (and nodes a backward released) are not
    included. ``grad_only`` skips the tensors that need no gradient.
    """
    return _latest_first((root,), grad_only)


def _latest_first(roots: Sequence[Any], grad_only: bool) -> list[Any]:
    """``latest_first`` from several roots at once (``grad`` of several outputs)."""
    order: list[Any] = []
    # seq numbers are unique, so the tuples never compare the tensors, and a node pushed by several consumers
    # comes out of the heap several times in a row: keeping the last one popped is all the "seen" set needed.
    heap = [(-root._ctx.seq, root) for root in {id(r): r for r in roots}.values() if not _is_leaf(root)]
    heapify(heap)
    pop, push, append, released, every = heappop, heappush, order.append, ReleasedGraph, not grad_only
    last = None
    while heap:
        node = pop(heap)[1]
        if node is last:
            continue
        last = node
        append(node)
        ctx = node._ctx
        for t, need in zip(ctx.inputs, ctx.needs_grad):
            if need or every:
                t = seen_by(ctx, t)
                t_ctx = t._ctx
                if t_ctx is not None and type(t_ctx) is not released:
                    push(heap, (-t_ctx.seq, t))
    return order


def toposort(root: Any) -> list[Any]:
    """Every tensor ``root`` depends on, constants too, inputs before outputs; ``root`` last.

    The recorded nodes in creation order (``latest_first``, reversed); each leaf goes just before the first op
    that uses it, in that op's input order, so a drawing reads in the order the code ran. A released node
    (its graph freed by an earlier ``backward``) has no inputs left and counts as a leaf.
    """
    if _is_leaf(root):
        return [root]
    order: list[Any] = []
    placed = set()
    for node in reversed(latest_first(root)):
        for t in node._ctx.inputs:
            if t not in placed and _is_leaf(t):
                placed.add(t)
                order.append(t)
        order.append(node)
    return order


def _is_leaf(t: Any) -> bool:
    return t._ctx is None or type(t._ctx) is ReleasedGraph


def backward(root: Any, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Propagate ``gradient`` (the gradient of ``root``; ones for a one-element ``root`` when None) to every leaf
    that requires grad, accumulating into ``.grad``.

    Nodes are visited in reverse topological order, so a node's gradient is complete when its rule runs;
    each rule's saved arrays are released as soon as it is done, unless ``retain_graph`` (by default
    ``create_graph``). With ``create_graph`` the gradients are Tensors with a graph of their own.
    """
    retain_graph = create_graph if retain_graph is None else retain_graph
    seed = _seed(root, gradient, create_graph, "backward")
    found = _run(((root, seed),), bool(retain_graph), create_graph, None)
    # Last, so a failed walk leaves no half-accumulated gradient on the leaves. A gradient the walk computed
    # is handed over without a copy, unless it is read-only or shares memory with the seed or another leaf's.
    claimed = {_owner(seed)}
    for leaf, g in found.items():
        owner = _owner(g)
        if create_graph:
            leaf._accumulate(g.clone() if owner in claimed else g)
        else:
            leaf._accumulate(g, owned=owner not in claimed and g.flags.writeable)
        claimed.add(owner)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple[Any, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned (as ``torch.autograd.grad``), not
    accumulated into ``.grad``.

    ``outputs`` and ``inputs``: a Tensor or a sequence of Tensors (inputs may be non-leaf tensors).
    ``grad_outputs``: the gradient of each output (a Tensor, an array, or None for ones, allowed for a
    one-element output only), one per output, or a single one for a single output. ``retain_graph`` defaults
    to ``create_graph``; with ``create_graph`` the gradients are Tensors with a graph of their own, so they can
    be differentiated again. An input the outputs do not depend on raises ``RuntimeError``, unless
    ``allow_unused`` (its gradient is then None). Only the part of the graph that leads to ``inputs`` is walked.
    """
    outputs, inputs = _tensor_sequence(outputs, "outputs"), _tensor_sequence(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: output {i} (shape {t.shape}) does not require grad and has no graph")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    seeds = [(t, _seed(t, g, create_graph, "grad")) for t, g in zip(outputs, grad_outputs)]
    retain_graph = create_graph if retain_graph is None else retain_graph
    found = _run(seeds, bool(retain_graph), create_graph, set(inputs))
    claimed = {_owner(seed) for _, seed in seeds}
    results = []
    for i, t in enumerate(inputs):
        g = found.get(t)
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                                   "pass allow_unused=True to get None as its gradient")
            results.append(None)
            continue
        owner = _owner(g)
        if create_graph:
            results.append(g.clone() if owner in claimed else g)
        else:
            results.append(constant(g.copy() if owner in claimed or not g.flags.writeable else g))
        claimed.add(owner)
    return tuple(results)


def _tensor_sequence(value: Any, what: str) -> list[Any]:
    items = [value] if isinstance(value, _tensor_type) else list(value) if isinstance(value, (list, tuple)) else None
    if not items or not all(isinstance(t, _tensor_type) for t in items):
        raise TypeError(f"grad: {what} must be a Tensor or a non-empty sequence of Tensors, got {value!r:.80}")
    return items


def _seed(t: Any, gradient: Any, graph: bool, op: str) -> Any:
    """The gradient a walk starts from at ``t``: ``gradient`` as an array of ``t``'s shape and dtype (for a graph,
    a Tensor, a given one keeping its own graph), or ones for a one-element ``t`` when it is None."""
    if gradient is None:
        if t._data.size != 1:
            raise RuntimeError(f"{op}: gradient can be omitted only for a one-element tensor, got shape {t.shape}; "
                               "pass gradient= of that shape")
        seed = np.ones_like(t._data)
    elif isinstance(gradient, _tensor_type) and graph:
        if gradient.shape != t.shape:
            raise ValueError(f"{op}: gradient has shape {gradient.shape} but the tensor has shape {t.shape}")
        return gradient if gradient.dtype == t.dtype else gradient.cast(t.dtype)
    else:
        token = _silence()  # a float64 value too big for float32 becomes inf, as a cast in PyTorch
        try:
            seed = np.asarray(gradient._data if isinstance(gradient, _tensor_type) else gradient, dtype=t.dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{op}: cannot use {type(gradient).__name__} as the gradient of a tensor of shape "
                            f"{t.shape} ({e})") from None
        finally:
            _restore(token)
        if seed.shape != t.shape:
            raise ValueError(f"{op}: gradient has shape {seed.shape} but the tensor has shape {t.shape}")
    return constant(seed) if graph else seed


def constant(data: np.ndarray) -> Any:
    """A Tensor without a graph around ``data`` (no copy): the one place a Tensor is built off the graph."""
    if type(data) is not np.ndarray:  # NumPy returns scalars from 0-d operations; a Tensor holds an array
        data = np.asarray(data)
    t = _new(_tensor_type)
    t._data, t.grad, t.requires_grad, t._ctx, t._retains_grad, t._version = data, None, False, None, False, 0
    t._base = t._views = None
    return t


def _owner(g: Any) -> int:
    """Which memory a gradient (an array or a Tensor) lives in: two views of one array have one owner."""
    a = g._data if isinstance(g, _tensor_type) else g
    return id(a if a.base is None else a.base)


def _run(seeds: Sequence[tuple[Any, Any]], retain_graph: bool, graph: bool, wanted: set | None,
         visit: Visit | None = None) -> dict[Any, Any]:
    """``_walk`` with the collector paused, NumPy's warnings off and, for a graph of the backward, grad mode on."""
    collector_was_on = gc.isenabled()
    gc.disable()  # the walk makes no reference cycles; pausing the collector spares rescans of a big graph
    token = _silence()
    mode = _mode.set(_get_mode() | GRAD) if graph else None  # the backward's own ops are recorded
    try:
        return _walk(seeds, retain_graph, graph, wanted, visit)
    finally:
        if mode is not None:
            _mode.reset(mode)
        _restore(token)
        if collector_was_on:
            gc.enable()


def _gradient_count_error(ctx: Function, local: Any) -> RuntimeError:
    got = (f"{len(local)} gradients" if isinstance(local, (tuple, list)) else f"a {type(local).__name__}, not a tuple")
    return RuntimeError(f"{ctx.name}: backward returned {got} for {len(ctx.inputs)} input(s); return a tuple with "
                        "one gradient per input (None where an input needs none), e.g. (3 * x**2 * grad,)")


def _modified_error(ctx: Function, what: str, t: Any) -> RuntimeError:
    return RuntimeError(
        f"backward: {ctx.label()} saved its {what} (shape {t.shape}), which was changed in place after the op "
        f"was recorded (directly or through a view); its gradient would be wrong. Compute the forward again after "
        "the change (e.g. after optimizer.step()), or change a copy (t.clone())"
    )


def _saved(ctx: Function, name: str) -> bool:
    """Whether the rule kept the value it calls ``name`` (an input's parameter name, or ``out``) for backward."""
    return ctx.saves_values and name in _saved_names(ctx)


def _as_seen(ctx: Function, t: Any) -> Any:
    """The tensor ``ctx`` used as its input ``t``, which has changed in place since: what ``t`` was then (an
    earlier state, kept when the change was recorded), or ``t`` itself when its values changed without the graph
    changing. Refused when the rule saved those values: its gradient would be computed from the new ones."""
    position = _position(ctx, t)
    names = _input_names(type(ctx))
    if isinstance(position, int) and position < len(names) and _saved(ctx, names[position]):
        raise _modified_error(ctx, f"input {position}", t)
    return seen_by(ctx, t)


def seen_by(ctx: Function, t: Any) -> Any:
    """The state of ``t`` that the op ``ctx`` used as an input: ``t`` itself, or, when a recorded in-place change
    came since, the earlier state it left behind (``h[:] = h.exp()`` makes ``h`` the output of an op whose graph
    reaches ``h`` as it was). Every walk over the graph follows inputs through this."""
    if t._version <= ctx.seq:
        return t
    while True:  # back through its recorded changes to the state it had when this op was recorded
        history = _history(t)
        if history is None or history[1] < ctx.seq:
            return t
        t = history[0]


# ----------------------------------------------------------------------------------------------------------
# In-place changes: versions shared by views, and the states a recorded change leaves behind
# ----------------------------------------------------------------------------------------------------------

# id(tensor) -> (a weak reference to it, its state before its latest recorded change, the stamp from which its
# current state holds); by id, since == on Tensors compares values. An entry goes with its tensor.
_previous: dict[int, tuple[weakref.ref, Any, int]] = {}


def _history(t: Any) -> tuple[Any, int] | None:
    """(``t``'s state before its latest recorded change, the stamp its current state holds from), or None."""
    entry = _previous.get(id(t))
    return entry[1:] if entry is not None and entry[0]() is t else None


def _set_history(t: Any, earlier: Any, since: int) -> None:
    key = id(t)
    _previous[key] = (weakref.ref(t, lambda _, key=key, table=_previous: table.pop(key, None)), earlier, since)


def link_view(out: Any, source: Any) -> None:
    """``out`` was made as a view of ``source``: if they share memory, they share one version from now on."""
    if not np.may_share_memory(out._data, source._data):
        return
    base = source._base if source._base is not None else source
    out._base = base
    if base._views is None:
        base._views = []
    base._views.append(weakref.ref(out))


def changed_in_place(t: Any) -> None:
    """``t``'s values changed in place: a new version for it and for every tensor sharing its memory through a
    view (as PyTorch's version counter), so a backward through an op that saved any of them refuses."""
    version = _next_seq()
    base = t._base if t._base is not None else t
    t._version = base._version = version
    if base._views:
        alive = []
        for ref in base._views:
            view = ref()
            if view is not None:
                view._version = version
                alive.append(ref)
        base._views = alive


def record_in_place(t: Any, rule: type[Function], *others: Any, **params: Any) -> None:
    """Record an in-place change of ``t`` as ``rule`` applied to (t as it was, *others), as PyTorch does: the new
    values are written into ``t``'s memory and ``t`` becomes the op's output; ops recorded earlier that used ``t``
    send their gradients to its earlier state."""
    earlier = _keep_earlier(t, copy=rule.saves_values)  # a rule that reads it keeps the old values
    changed_in_place(t)  # before the op: its output (t) is then no newer than the op
    _set_history(t, earlier, since=t._version)
    out = rule.apply(earlier, *others, **params)
    np.copyto(t._data, out._data, casting="unsafe")
    t._ctx, t.requires_grad = out._ctx, out.requires_grad


def refresh_views(base: Any) -> None:
    """``base`` changed in place (recorded): each view of it with a graph is its view op made again on the changed
    base (in the order they were made, so a view of a view follows its source), as PyTorch regenerates them;
    ops recorded earlier that used a view keep its earlier state."""
    for ref in list(base._views or ()):  # the view ops made again here add views of their own
        view = ref()
        ctx = None if view is None else view._ctx
        if ctx is None or type(ctx) is ReleasedGraph:
            continue  # no graph through it: its memory already shows the new values
        earlier = _keep_earlier(view, copy=False)
        view._version = _next_seq()  # ops recorded before now used the view as it was: they go to that state
        _set_history(view, earlier, since=view._version)
        out = type(ctx).apply(ctx.inputs[0], **_params(ctx))
        view._ctx, view.requires_grad = out._ctx, out.requires_grad


def _keep_earlier(t: Any, copy: bool) -> Any:
    """A tensor holding ``t``'s graph state as it is now (its values copied when ``copy``), with the history of
    that state: what ``t`` was before the change about to be made."""
    earlier = _new(_tensor_type)
    earlier.requires_grad, earlier._ctx, earlier._version = t.requires_grad, t._ctx, t._version
    earlier._data = t._data.copy() if copy else t._data
    earlier.grad, earlier._retains_grad, earlier._base, earlier._views = None, False, None, None
    history = _history(t)
    if history is not None:
        _set_history(earlier, *history)
    return earlier


def _released_error(t: Any) -> RuntimeError:
    return RuntimeError(
        f"backward: the graph through '{t._ctx.name}' (output shape {t.shape}) was already released by an earlier "
        "backward(); call the first backward(retain_graph=True) to go through it twice"
    )


def _walk(seeds: Sequence[tuple[Any, Any]], retain_graph: bool, graph: bool, wanted: set | None,
          visit: Visit | None = None) -> dict[Any, Any]:
    """The backward pass from ``seeds`` (root, gradient of the root): the gradients of the leaves, in the order
    they were reached (``wanted`` None: ``backward``), or of the ``wanted`` tensors (``grad``).

    Gradients are arrays, or Tensors recorded in the graph when ``graph`` (create_graph=True). ``visit`` (see
    ``walk``) sees, and may replace, each node's contributions to its inputs.
    """
    grads: dict[Any, Any] = {}
    for root, seed in seeds:
        if type(root._ctx) is ReleasedGraph:
            raise _released_error(root)
        previous = grads.get(root)
        grads[root] = seed if previous is None else previous + seed
    leaves = [t for t in grads if t._ctx is None]
    found: dict[Any, Any] = {}
    runs = useful = None
    if wanted is not None:
        runs, useful = _leading_to(_latest_first(list(grads), grad_only=True), wanted)
    # The walk itself is ``latest_first`` done on the way: a max-heap on creation order, a node pushed when its
    # first gradient arrives and popped once all its consumers (created later) have given theirs.
    released = ReleasedGraph
    heap = [(-t._ctx.seq, t) for t in grads if t._ctx is not None and type(t._ctx) is not released]
    heapify(heap)
    special = graph or wanted is not None or visit is not None  # backward() pays one test per node and input
    check = _get_mode() & ANOMALY
    pop, get, push = grads.pop, grads.get, heappush
    # Gradients the walk allocated itself (sums, a slice's gradient placed in zeros) are held by nobody else, so
    # later contributions are added into them in place: a sequence cut into T slices costs O(T), not O(T^2).
    owned: set = set()
    while heap:
        node = heappop(heap)[1]
        grad = pop(node)
        if special and wanted is not None:
            if node in wanted:
                found[node] = grad
            if node not in runs:  # nothing wanted lies behind it
                continue
        ctx = node._ctx
        seq = ctx.seq
        if node._version > seq and _saved(ctx, "out"):  # its output changed in place since it was recorded
            raise _modified_error(ctx, "output", node)
        if node._retains_grad and not special:
            node._accumulate(grad)
        if ctx.scatters and not special and not check and _scatter_into(ctx, grad, grads, owned, heap, leaves):
            if not retain_graph:
                node._ctx = ctx.released
            continue
        local = _graph_gradients(ctx, node, grad, useful) if graph else ctx.backward(grad)
        if type(local) is not tuple and not isinstance(local, (tuple, list)) or len(local) < len(ctx.inputs):
            raise _gradient_count_error(ctx, local)
        contributions = zip(ctx.inputs, ctx.needs_grad, local)
        if visit is not None:
            sent = [(i, t, _fitted(ctx, t, g)) for i, (t, need, g) in enumerate(contributions)
                    if need and g is not None]
            replaced = visit(node, grad, sent)
            contributions = [(t, True, g) for _, t, g in (sent if replaced is None else replaced)]
        for t, need, g in contributions:
            if not need or g is None:  # as PyTorch: None is a zero gradient
                continue
            if t._version > seq:  # changed in place since this op used it: the gradient goes to what it saw
                t = _as_seen(ctx, t)
            if special:
                if useful is not None and t not in useful:
                    continue
                if graph:
                    g = _tensor_gradient(ctx, t, g)
            if check and g.dtype.kind == "f" and not np.isfinite(np.asarray(g)).all():
                raise _backward_anomaly(ctx, _position(ctx, t), np.asarray(grad), np.asarray(g))
            data = t._data
            if g.shape != data.shape:
                g = unbroadcast(g, data.shape, ctx, t)
            if g.dtype != data.dtype:
                g = g.cast(data.dtype) if graph else g.astype(data.dtype)
            previous = get(t)
            if previous is not None:
                if t in owned:
                    previous += g
                else:
                    grads[t] = total = previous + g
                    if type(total) is np.ndarray:  # (a sum of two 0-d arrays is a NumPy scalar)
                        owned.add(t)
            else:
                grads[t] = g
                t_ctx = t._ctx
                if t_ctx is None:
                    leaves.append(t)
                elif type(t_ctx) is not released:
                    push(heap, (-t_ctx.seq, t))
                elif wanted is None or t not in wanted:
                    raise _released_error(t)
        if not retain_graph:
            node._ctx = ctx.released
    if wanted is None:
        return {leaf: grads[leaf] for leaf in leaves}
    for t in wanted:  # leaves, and released nodes, keep their gradient in ``grads``
        if t not in found and t in grads:
            found[t] = grads[t]
    return found


def _scatter_into(ctx: Function, grad: np.ndarray, grads: dict, owned: set, heap: list, leaves: list) -> bool:
    """A first-order walk's step for a rule that ``scatters`` (getitem): add ``grad`` into its input's gradient at
    ``ctx.part()``, allocating zeros of the input's shape only for the first contribution. False (nothing done)
    where the rule's own backward must run: an index that may repeat elements, or an input changed since."""
    t = ctx.inputs[0]
    index = ctx.part() if ctx.needs_grad[0] else None
    if index is None or t._version > ctx.seq or t._data.dtype != grad.dtype:
        return False
    previous = grads.get(t)
    if previous is None:
        grads[t] = previous = np.zeros(t._data.shape, grad.dtype)
        owned.add(t)
        if t._ctx is None:
            leaves.append(t)
        elif type(t._ctx) is not ReleasedGraph:
            heappush(heap, (-t._ctx.seq, t))
        else:
            raise _released_error(t)
    elif t not in owned:
        grads[t] = previous = previous.copy()
        owned.add(t)
    previous[index] += grad
    return True


def _leading_to(order: list[Any], wanted: set) -> tuple[set, set]:
    """For ``grad``: the nodes whose rule must run (a wanted tensor lies behind one of their inputs), and the
    tensors a gradient must reach (those nodes, the wanted ones, and released nodes, which may hide some)."""
    runs: set = set()
    useful = set(wanted)
    for node in reversed(order):  # inputs before the ops that use them
        ctx = node._ctx
        inputs = [seen_by(ctx, t) for t in ctx.inputs]
        for t, need in zip(inputs, ctx.needs_grad):
            if need and type(t._ctx) is ReleasedGraph:
                useful.add(t)  # walked into, so that the released-graph error is raised there
        if any(need and t in useful for t, need in zip(inputs, ctx.needs_grad)):
            runs.add(node)
            useful.add(node)
    return runs, useful


Visit = Callable[[Any, Any, list], "list | None"]


def walk(seeds: Sequence[tuple[Any, Any]], wanted: Sequence[Any] | None = None, visit: Visit | None = None,
         retain_graph: bool = True) -> dict[Any, np.ndarray]:
    """The backward walk for tools that replay a graph (the HTML view's step-through, ``check_gradients``'
    mistake variants): gradients as arrays, nothing accumulated into any ``.grad``.

    ``seeds``: (tensor, gradient array) pairs to start from. Returns the gradients of the ``wanted`` tensors
    (leaves or not), or of the leaves reached when ``wanted`` is None. ``visit(node, grad, sent)`` is called at
    each node the walk reaches, with ``grad`` (the node's whole gradient) and ``sent``: ``(input position,
    input, gradient)`` for each input that gets a gradient, summed back to its shape and cast to its dtype. It
    returns None to keep them, or a list of the same form to send instead (the position may be None, and the
    tensor need not be an input of the node: e.g. a gradient passed past several ops).
    """
    seeds = [(t, np.asarray(g)) for t, g in seeds]
    return _run(seeds, retain_graph, False, None if wanted is None else set(wanted), visit)


def _fitted(ctx: Function, t: Any, g: Any) -> Any:
    """A rule's gradient for its input ``t`` summed back to ``t``'s shape and cast to its dtype (the walk does the
    same inline)."""
    if g.shape != t._data.shape:
        g = unbroadcast(g, t._data.shape, ctx, t)
    return g if g.dtype == t._data.dtype else g.astype(t._data.dtype)


def _position(ctx: Function, t: Any) -> int | str:
    """Which input of ``ctx`` is ``t`` (by identity: ``==`` on tensors is elementwise); for messages."""
    return next((i for i, u in enumerate(getattr(ctx, "inputs", ())) if u is t), "?")


def unbroadcast(grad: Any, shape: tuple[int, ...], ctx: Function, t: Any) -> Any:
    """Sum a gradient (an array, or a Tensor for create_graph) of a broadcast shape back to the ``shape`` of
    ``ctx``'s input ``t``; refuse shapes that cannot come from it, naming the op, the input and both shapes."""
    extra = grad.ndim - len(shape)
    axes = list(range(extra))
    for i, size in enumerate(shape):
        if extra < 0 or grad.shape[extra + i] != size:
            if extra < 0 or size != 1:
                raise RuntimeError(f"{ctx.name}: backward returned a gradient of shape {grad.shape} for input "
                                   f"{_position(ctx, t)} of shape {shape}")
            axes.append(extra + i)
    if grad.dtype == np.float16 and not isinstance(grad, _tensor_type):  # added up in float32, as ops.Sum does
        return grad.sum(axis=tuple(axes), dtype=np.float32).astype(np.float16).reshape(shape)
    return grad.sum(axis=tuple(axes)).reshape(shape)


# ----------------------------------------------------------------------------------------------------------
# Higher-order gradients: a rule's backward run on Tensors, so that the gradients have a graph of their own
# ----------------------------------------------------------------------------------------------------------


def _graph_gradients(ctx: Function, node: Any, grad: Any, useful: set | None) -> tuple[Any, ...]:
    """The gradients of ``ctx``'s inputs, as Tensors recorded in the graph: the rule's backward with its saved
    values as Tensors (``_on_tensors``). A rule that cannot run on Tensors raises naming the op."""
    try:
        live = _on_tensors(ctx, node)
        if useful is not None and live is not ctx:  # gradients no wanted tensor needs are not computed
            live.needs_grad = tuple([need and t in useful for t, need in zip(ctx.inputs, ctx.needs_grad)])
        token = _graph_backward_of.set(ctx)  # Tensor -> array conversions would cut the graph: refused meanwhile
        try:
            return live.backward(grad)
        finally:
            _graph_backward_of.reset(token)
    except FloatingPointError:  # detect_anomaly, with its own report
        raise
    except Exception as e:
        raise RuntimeError(
            f"create_graph: the backward of {ctx.label()} cannot be differentiated: with create_graph=True a rule's "
            "backward runs on Tensors (its gradient and saved values), so write it with operations Tensors support "
            "(operators, the NumPy functions listed in 'NumPy code on Tensors', other rules through Rule.on). "
            f"It failed with {type(e).__name__}: {e}"
        ) from e


_graph_backward_of: contextvars.ContextVar[Function | None] = contextvars.ContextVar("tinygrad_like_graph_backward",
                                                                                    default=None)


def graph_backward_running() -> Function | None:
    """The rule whose backward is running on Tensors (create_graph) in this thread, else None: while it runs, a
    Tensor turned into a NumPy array (``np.asarray(t)``) would leave the graph, so ``Tensor.__array__`` refuses."""
    return _graph_backward_of.get()


def _tensor_gradient(ctx: Function, t: Any, g: Any) -> Any:
    """``g``, the gradient a rule's backward returned for its input ``t`` under create_graph, if it is a Tensor."""
    if isinstance(g, _tensor_type):
        return g
    raise RuntimeError(
        f"create_graph: the backward of {ctx.label()} returned a {type(g).__name__}, not a Tensor, as the gradient "
        f"of its input {_position(ctx, t)} (shape {t.shape}): that gradient would have no graph, and its "
        "derivatives would be silently wrong. With create_graph=True a rule's backward gets Tensors (its gradient "
        "and saved values): compute with them (operators, the NumPy functions Tensors support), not with their "
        ".data or np.asarray"
    )


_BASE_SLOTS = frozenset(Function.__slots__) | {"__dict__", "__weakref__"}
_saved_slots: dict[type, tuple[str, ...]] = {}


def _on_tensors(ctx: Function, node: Any) -> Function:
    """A copy of the rule ``ctx`` (which made ``node``) whose saved values are Tensors, for create_graph.

    What a rule saved is told by name, as rules write it: an attribute named after one of ``forward``'s array
    parameters holds that input, ``out`` holds the output; ``constants`` and the keyword parameters stay as they
    are. Any other saved array was computed from the inputs: then ``forward`` is re-run on the input Tensors,
    so that value is a Tensor on the graph too.
    """
    if not ctx.saves_values:  # its backward reads no input or output values
        return ctx
    live = _copy(ctx)
    names = _input_names(type(ctx))
    kept = (*type(ctx).constants, *_params(ctx))
    for name in _saved_names(ctx):
        if name in kept:
            continue
        if name == "out":
            live.out = node
        elif name in names and names.index(name) < len(ctx.inputs):
            setattr(live, name, ctx.inputs[names.index(name)])
        elif _holds_array(getattr(ctx, name)):
            return _replayed(ctx, node)
    return live


def _replayed(ctx: Function, node: Any) -> Function:
    """A copy of ``ctx`` whose ``forward`` ran again on the input Tensors: what it saved is on the graph; its
    ``out`` is ``node`` itself (the op that was recorded, not a duplicate)."""
    live = _copy(ctx)
    try:
        live.forward(*ctx.inputs, **_params(ctx))
    except Exception as e:
        raise TypeError(f"its forward saved values computed from its inputs, so it was re-run on Tensors, and that "
                        f"failed with {type(e).__name__}: {e}") from e
    kept = (*type(ctx).constants, *_params(ctx))
    for name in _saved_names(live):
        if name in type(ctx).constants:
            setattr(live, name, getattr(ctx, name))
        elif name == "out":
            live.out = node
        elif name not in kept and _holds_array(getattr(live, name)):
            raise TypeError(f"its forward, re-run on Tensors, saved '{name}' as a NumPy array computed outside the "
                            "graph (e.g. from .data or np.asarray)")
    return live


@functools.cache
def _input_names(rule: type[Function]) -> tuple[str, ...]:
    """The names of a rule's ``forward`` parameters, in order (without ``self``)."""
    return tuple(inspect.signature(rule.forward).parameters)[1:]


def _holds_array(value: Any) -> bool:
    """An array, or a tuple or list with one inside."""
    if isinstance(value, (np.ndarray, np.generic)):
        return True
    return type(value) in (tuple, list) and any(_holds_array(v) for v in value)


def _copy(fn: Function) -> Function:
    """A new instance of ``fn``'s rule with the same inputs, flags and saved values."""
    live = _new(type(fn))
    live.inputs, live.needs_grad, live.seq, live.params = fn.inputs, fn.needs_grad, fn.seq, _params(fn)
    for name in _saved_names(fn):
        setattr(live, name, getattr(fn, name))
    return live


def _params(fn: Function) -> dict[str, Any]:
    """The keyword parameters ``apply`` gave the rule (only set when there were some)."""
    return getattr(fn, "params", _NO_PARAMS)


_NO_PARAMS: dict[str, Any] = {}


def _saved_names(fn: Function) -> list[str]:
    """The attributes a rule's forward set: its own slots (those that are set) and its ``__dict__``."""
    cls = type(fn)
    slots = _saved_slots.get(cls)
    if slots is None:
        declared = (k.__dict__.get("__slots__", ()) for k in reversed(cls.__mro__))
        slots = _saved_slots[cls] = tuple(dict.fromkeys(
            name for names in declared for name in ((names,) if isinstance(names, str) else names)
            if name not in _BASE_SLOTS))
    names = [name for name in slots if hasattr(fn, name)]
    extra = getattr(fn, "__dict__", None)
    if extra:
        names.extend(extra)
    return names
