"""``jit``: capture the ops a function runs, then replay them on new data without building the graph again.

    @tg.jit
    def loss_of(x, y):
        return model(x).cross_entropy(y, reduction="sum")

    loss = loss_of(Tensor(xb), Tensor(yb))   # calls 1 and 2 run eagerly and are traced; from call 3 on, replayed
    loss.backward()                          # one recorded node: its backward replays the captured walk

The first two calls with a given signature (the Tensor arguments' shapes, dtypes and requires_grad, the other
arguments' values, grad mode) run the function as usual while the engine's tracer (``engine.set_tracer``) lists
every op. The two lists must agree: the same rules with the same parameters on the same inputs. A tensor the
function reads from outside (a model's parameters) is read afresh at every call; one it makes inside (a constant)
must be equal in both calls and is kept; anything else is refused with the op named. From the third call on, the
captured rules run on the new arrays as one recorded op, ``jit(name)``, whose backward runs the captured rules'
backwards in the order the eager walk would: the results and gradients are bit for bit the eager ones.

What is frozen at capture: Python control flow, keyword parameters of the ops (axes, shapes, index arrays) and
the constants made inside. A function whose ops depend on the values of its inputs must not be jitted. A new
signature is traced anew; a parameter whose shape, dtype or requires_grad changed sends the call back to tracing.
Under ``detect_anomaly`` the function runs eagerly (so a report names the op). Not supported: ``backward`` or
in-place changes of tensors inside the function, several outputs, ``create_graph`` through a replayed call (call
the function without jit for that).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine
from .engine import Function, no_grad, unbroadcast
from .tensor import Tensor

__all__ = ["Jit", "jit"]

# Where a captured op's input comes from: an earlier op's output (a slot), an input of the replayed node (a Tensor
# argument or a tensor from outside the function), or a constant made inside the function.
_SLOT, _EXTERNAL, _CONSTANT = "slot", "external", "constant"
_ARG, _LEAF = "argument", "leaf"  # while tracing: a Tensor argument, or a tensor that is neither it nor an output


def jit(fn: Callable[..., Tensor]) -> Jit:
    """Capture ``fn``'s ops on its first two calls and replay them from the third (see the module's text)."""
    return Jit(fn)


class Jit:
    """A function whose ops are captured and replayed; made by ``jit(fn)`` (or ``@jit``)."""

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self._traced: dict[Any, _Trace] = {}  # signature -> the first call's trace
        self._plans: dict[Any, _Plan] = {}  # signature -> what the next calls replay
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        if engine.is_anomaly_enabled():  # eagerly: the anomaly report then names the op and its inputs
            return self.fn(*args, **kwargs)
        key = _signature(self.name, args, kwargs)
        tensors = [a for a in (*args, *(kwargs[k] for k in sorted(kwargs))) if isinstance(a, Tensor)]
        plan = self._plans.get(key)
        if plan is not None:
            out = plan.run(tensors)
            if out is not None:
                return out
            del self._plans[key]  # a tensor from outside changed shape, dtype or requires_grad: trace again
        out, trace = _trace(self.fn, self.name, args, kwargs, tensors)
        first = self._traced.pop(key, None)
        if first is None:
            self._traced[key] = trace
        else:
            self._plans[key] = _Plan(self.name, first, trace)
        return out

    def __repr__(self) -> str:
        return f"jit({self.name})"


def _signature(name: str, args: tuple, kwargs: dict) -> tuple:
    """What a replay must match: the Tensors' shapes, dtypes and requires_grad, the other arguments' values."""
    parts: list[Any] = [engine.is_grad_enabled()]
    for key, value in (*enumerate(args), *sorted(kwargs.items())):
        if isinstance(value, Tensor):
            parts.append((key, value.shape, value.dtype, value.requires_grad))
        else:
            try:
                hash(value)
            except TypeError:
                raise TypeError(f"jit({name}): argument {key!r} is a {type(value).__name__}; pass arrays as "
                                "Tensors, and other arguments as hashable values (numbers, strings, tuples)") from None
            parts.append((key, type(value), value))
    return tuple(parts)


# ----------------------------------------------------------------------------------------------------------
# Tracing: one eager call, its ops listed by the engine's tracer
# ----------------------------------------------------------------------------------------------------------


class _Trace:
    """One call's ops: per op its rule, keyword parameters, inputs (where each comes from) and needs_grad."""

    def __init__(self, steps: list[tuple[type[Function], dict, tuple, tuple[bool, ...]]], out: int,
                 records: bool) -> None:
        self.steps, self.out, self.records = steps, out, records


def _trace(fn: Callable[..., Tensor], name: str, args: tuple, kwargs: dict,
           tensors: list[Tensor]) -> tuple[Tensor, _Trace]:
    applied: list[tuple[Function, tuple, Tensor]] = []
    previous = engine.set_tracer(lambda f, inputs, out: applied.append((f, tuple(inputs), out)))
    try:
        out = fn(*args, **kwargs)
    finally:
        engine.set_tracer(previous)
    if any(f is None for f, _, _ in applied):
        raise RuntimeError(f"jit({name}): the function changes a tensor in place (an optimizer step, assign, +=), "
                           "which a replay would not repeat; keep in-place updates outside the jitted function")
    if not isinstance(out, Tensor):
        raise TypeError(f"jit({name}): the function must return one Tensor, got {type(out).__name__}")
    if isinstance(out._ctx, engine.ReleasedGraph):
        raise RuntimeError(f"jit({name}): the function called backward(); return the loss and call "
                           "backward() on the result instead")
    arguments = {id(t): i for i, t in enumerate(tensors)}
    slots: dict[int, int] = {}  # id of an op's output -> its position (outputs stay alive in ``applied``)
    steps = []
    for i, (f, inputs, result) in enumerate(applied):
        sources = []
        for t in inputs:
            if id(t) in slots:
                sources.append((_SLOT, slots[id(t)]))
            elif id(t) in arguments:
                sources.append((_ARG, arguments[id(t)]))
            else:
                sources.append((_LEAF, t))
        recorded = result._ctx is f
        steps.append((type(f), getattr(f, "params", {}), tuple(sources),
                      f.needs_grad if recorded else (False,) * len(inputs)))
        slots[id(result)] = i
    if id(out) not in slots:
        raise RuntimeError(f"jit({name}): the function returned a tensor no op of it made (an argument or a tensor "
                           "from outside); there is nothing to replay")
    return out, _Trace(steps, slots[id(out)], out.requires_grad)


# ----------------------------------------------------------------------------------------------------------
# The plan: two traces that agree, and the one node that replays them
# ----------------------------------------------------------------------------------------------------------


class _Plan:
    """The captured ops with their inputs resolved, for ``Replay``. Every value has one index: the replayed node's
    inputs first, then the constants, then the ops' outputs in creation order."""

    def __init__(self, name: str, first: _Trace, second: _Trace) -> None:
        self.name = name
        if len(first.steps) != len(second.steps) or first.out != second.out:
            raise self._differs(f"{len(first.steps)} ops, then {len(second.steps)}")
        self.externals: list[tuple[str, Any]] = []  # (_ARG, index of the Tensor argument) or (_LEAF, the tensor)
        self.constants: list[np.ndarray] = []
        where: dict[Any, int] = {}
        resolved_steps = []
        for (rule, params, sources, needs), (rule2, params2, sources2, needs2) in zip(first.steps, second.steps):
            if rule is not rule2 or needs != needs2 or len(sources) != len(sources2) \
                    or not _same(params, params2):
                raise self._differs(f"{rule.name}, then {rule2.name}")
            resolved = []
            for position, ((kind, a), (kind2, b)) in enumerate(zip(sources, sources2)):
                if kind == _SLOT and kind2 == _SLOT and a == b:
                    resolved.append((_SLOT, a))
                elif (kind == _ARG and kind2 == _ARG and a == b) or (kind == _LEAF and kind2 == _LEAF and a is b):
                    key = (kind, a if kind == _ARG else id(a))
                    if key not in where:
                        where[key] = len(self.externals)
                        self.externals.append((kind2, b))
                    resolved.append((_EXTERNAL, where[key]))
                elif kind == _LEAF and kind2 == _LEAF and not (a.requires_grad or b.requires_grad) \
                        and _same(a.data, b.data):
                    resolved.append((_CONSTANT, len(self.constants)))  # made inside, the same both times: kept
                    self.constants.append(b.data.copy())
                else:
                    raise RuntimeError(
                        f"jit({name}): input {position} of {rule.name} (shape {getattr(b, 'shape', '?')}) changed "
                        "between the first two calls: a tensor made inside the function from changing data, or a "
                        "different argument. Pass such data as an argument (a Tensor), or call the function "
                        "without jit")
            resolved_steps.append((rule, params, resolved, needs))
        n_ext, n_const = len(self.externals), len(self.constants)
        self.first_output = n_ext + n_const
        offset = {_EXTERNAL: 0, _CONSTANT: n_ext, _SLOT: self.first_output}
        self.steps = [(rule, params, tuple(offset[kind] + i for kind, i in resolved), needs if True in needs else None)
                      for rule, params, resolved, needs in resolved_steps]
        self.out, self.records = self.first_output + second.out, second.records
        # The eager walk pops the latest node first and reaches a node only from later ones: on these indices,
        # the nodes that lead to the output, latest first.
        reached = {self.out}
        for i in range(len(self.steps) - 1, -1, -1):
            _, _, refs, needs = self.steps[i]
            if self.first_output + i in reached and needs is not None:
                reached.update(r for r, need in zip(refs, needs) if need)
        self.walk = [(r, r - self.first_output, *self.steps[r - self.first_output][2:])
                     for r in sorted((r for r in reached if r >= self.first_output), reverse=True)]
        # The arguments' layouts are in the signature; those of the tensors from outside are checked at each call.
        self.outside = [(i, _layout(t)) for i, (kind, t) in enumerate(self.externals) if kind == _LEAF]

    def _differs(self, what: str) -> RuntimeError:
        return RuntimeError(f"jit({self.name}): the first two calls ran different ops ({what}); a jitted function "
                            "must run the same ops, with the same parameters, on every call (no Python control "
                            "flow on values); call it without jit")

    def run(self, tensors: list[Tensor]) -> Tensor | None:
        """The replayed call, or None if a tensor from outside no longer has the shape, dtype or requires_grad it
        had (the call is then traced again)."""
        inputs = tuple(tensors[ref] if kind == _ARG else ref for kind, ref in self.externals)
        for i, layout in self.outside:
            if _layout(inputs[i]) != layout:
                return None
        if self.records:
            return Replay.apply(*inputs, plan=self)
        with no_grad():  # the function's result had no graph (detached): nor has the replay's
            return Replay.apply(*inputs, plan=self)


def _layout(t: Tensor) -> tuple:
    return t.data.shape, t.data.dtype, t.requires_grad


def _same(a: Any, b: Any) -> bool:
    """Equal values, arrays compared element by element (nan equal to nan), in dicts and tuples too."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and bool(a == b)


class Replay(Function):
    """A jitted function's captured ops as one node: forward runs each captured rule on the new arrays, backward
    runs their backwards in the eager walk's order (latest op first, gradients summed as the walk sums them)."""

    __slots__ = ("plan", "values", "rules")
    name = "jit"

    def forward(self, *externals: np.ndarray, plan: _Plan) -> np.ndarray:
        values: list[Any] = [*externals, *plan.constants]
        rules: list[Function | None] = []
        new, append = object.__new__, values.append
        for rule, params, refs, needs in plan.steps:
            f = new(rule)
            if params:
                f.params = params
                data = f.forward(*[values[r] for r in refs], **params)
            elif len(refs) == 2:
                data = f.forward(values[refs[0]], values[refs[1]])
            elif len(refs) == 1:
                data = f.forward(values[refs[0]])
            else:
                data = f.forward(*[values[r] for r in refs])
            append(data if type(data) is np.ndarray else np.asarray(data))
            if needs is None:  # an op outside the graph: no backward to run
                rules.append(None)
            else:
                f.needs_grad = needs
                rules.append(f)
        self.plan, self.values, self.rules = plan, values, rules
        return values[plan.out]

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        plan, values, rules = self.plan, self.values, self.rules
        grads: dict[int, np.ndarray] = {plan.out: grad}
        pop, get = grads.pop, grads.get
        for i, step, refs, needs in plan.walk:
            g_out = pop(i, None)
            if g_out is None:  # a rule returned None for it: no gradient, as in the eager walk
                continue
            f = rules[step]
            for r, need, g in zip(refs, needs, f.backward(g_out)):
                if not need or g is None:
                    continue
                like = values[r]
                if g.shape != like.shape:
                    g = unbroadcast(g, like.shape, f, None)
                if g.dtype != like.dtype:
                    g = g.astype(like.dtype)
                previous = get(r)
                grads[r] = g if previous is None else previous + g
        return tuple([get(j) for j in range(len(plan.externals))])

    def graph_forward(self, *args: Any, **params: Any) -> Any:
        raise RuntimeError(f"{self.label()}: create_graph through a replayed call is not supported; call the "
                           "function without jit to differentiate its gradients")

    graph_backward = graph_forward

    def label(self) -> str:
        return f"jit({self.plan.name})" if hasattr(self, "plan") else "jit"
