"""``jit``: capture the ops a function runs, then replay them on new data without building the graph again.

    @tg.jit
    def loss_of(x, y):
        return model.logits(x).cross_entropy(y, reduction="sum")

    loss = loss_of(Tensor(xb), Tensor(yb))   # calls 1 and 2 run eagerly and are traced; from call 3 on, replayed
    loss.backward()                          # one recorded node: its backward replays the captured walk

The first two calls with a given signature (the Tensor arguments' shapes, dtypes, requires_grad and which of them
are the same tensor, the other arguments' types and values, grad mode, and ``engine.configuration()``, which
``Module.train``/``eval`` move on) run the function as usual while the engine's tracer lists every op and every
effect. The two lists must agree: the same rules with the same parameters on the same inputs. A tensor read from
outside the function (a model's parameters) is read afresh at every call; a Python number becomes a constant of
the capture. Refused, naming the op or the effect: tensors the function makes without a recorded op
(``Tensor(data)``, a comparison, ``detach``), arrays given to an op as parameters (indices), effects (``backward``,
in-place changes, values read into Python with ``item()``/``bool()``/``np.asarray``, ``zero_grad``,
``requires_grad_``, ``retain_grad``, ``detect_anomaly``), a change of a tensor's ``grad``, ``requires_grad`` or
``data`` made by the function, and several outputs. From the third call on, the
captured rules run on the new arrays as one recorded op, ``jit(name)``: its inputs are the uses of the outside
tensors and arguments, latest first, so the engine sums their gradients in the order the eager walk does; the
results and gradients are bit for bit the eager ones. What the tracer cannot see stays the function's promise:
it reads tensors' values only through ops (not through ``.data``), and the tensors it reads from outside are the
same objects at every call (after replacing a parameter by a new Tensor, call ``reset()``), and its Python side
effects happen on the traced calls only.
"""

from __future__ import annotations

import contextvars
import functools
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine
from .engine import Function, enable_grad, no_grad, unbroadcast
from .tensor import Tensor

__all__ = ["Jit", "jit"]

_SLOT, _ARG, _LEAF = "slot", "argument", "leaf"  # an input of a traced op: an earlier op's output, a Tensor
# argument (by position), or any other tensor (from outside, or made inside without a recorded op)
_EXTERNAL, _CONSTANT = "external", "constant"  # in a plan: an outside tensor or argument, a number of the code
_MAX_PENDING, _MAX_SIGNATURES, _MAX_PLANS = 8, 64, 8  # kept per function: the oldest go first


def jit(fn: Callable[..., Tensor]) -> Jit:
    """Capture ``fn``'s ops on its first two calls and replay them from the third (see the module's text)."""
    return Jit(fn)


class Jit:
    """A function whose ops are captured and replayed; made by ``jit(fn)`` (or ``@jit``)."""

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        functools.update_wrapper(self, fn, updated=())  # the name and docstring only, never fn's attributes
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self._pending: dict[Any, _Trace] = {}  # signature -> a trace waiting for a second one to agree with
        self._plans: dict[Any, list[_Plan]] = {}  # signature -> what calls with it replay

    def reset(self) -> None:
        """Forget every capture: the next two calls are traced again (e.g. after a parameter was replaced by a
        new Tensor, which a replay would not see)."""
        self._pending.clear()
        self._plans.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        if engine.is_anomaly_enabled() or _capturing.get():  # eagerly: an anomaly report then names the op; an
            return self.fn(*args, **kwargs)  # enclosing jit's capture sees the same ops at every call
        tensors, key = _arguments(self.name, args, kwargs)
        for plan in self._plans.get(key, ()):
            out = plan.run(tensors)
            if out is not None:
                return out
        first = self._pending.pop(key, None)
        before = None if first is None else _states(first, tensors)
        out, trace = _trace(self.fn, self.name, args, kwargs, tensors)
        if before is not None and _states(first, tensors) != before:
            raise RuntimeError(f"jit({self.name}): the function changes a tensor's grad, requires_grad or data "
                               "(zero_grad, requires_grad_, retain_grad, an assignment), which a replay would not "
                               "repeat; do it outside the jitted function")
        plan = None if first is None else _Plan.of(self.name, first, trace)
        if plan is None:
            _keep(self._pending, key, trace, _MAX_PENDING)
        else:
            plans = self._plans.pop(key, [])[-(_MAX_PLANS - 1):] + [plan]
            _keep(self._plans, key, plans, _MAX_SIGNATURES)
        return out

    def __repr__(self) -> str:
        return f"jit({self.name})"


def _keep(table: dict, key: Any, value: Any, limit: int) -> None:
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


def _states(trace: _Trace, tensors: list[Tensor]) -> list[tuple]:
    """What a function must not change of the tensors it reads: which gradient, requires_grad, retain_grad and
    which array each holds (the arguments, and the tensors from outside seen by ``trace``)."""
    seen = [t for t in (*tensors, *trace.leaves()) if t is not None]
    return [(id(t), id(t.grad), t.requires_grad, t._retains_grad, id(t.data)) for t in seen]


def _arguments(name: str, args: tuple, kwargs: dict) -> tuple[list[Tensor], tuple]:
    """The Tensor arguments in one fixed order (positional, then keywords by name) and the call's signature."""
    tensors: list[Tensor] = []
    first_of: dict[int, int] = {}
    parts: list[Any] = [engine.is_grad_enabled(), engine.configuration()]
    for key, value in (*enumerate(args), *sorted(kwargs.items())):
        if isinstance(value, Tensor):
            same_as = first_of.setdefault(id(value), len(tensors))  # one tensor passed twice is part of it
            parts.append((key, value.shape, value.dtype, value.requires_grad, same_as))
            tensors.append(value)
        elif _holds_tensor(value):
            raise TypeError(f"jit({name}): argument {key!r} holds Tensors inside a {type(value).__name__}; pass "
                            "each Tensor as an argument of its own")
        else:
            try:
                hash(value)
            except TypeError:
                raise TypeError(f"jit({name}): argument {key!r} is a {type(value).__name__}; pass arrays as "
                                "Tensors, and other arguments as hashable values (numbers, strings)") from None
            parts.append((key, _value_key(value)))
    return tensors, tuple(parts)


def _value_key(value: Any) -> Any:
    """A non-Tensor argument as the signature holds it: with its type at every level (1 and 1.0 differ) and the
    sign of a float zero (x / 0.0 and x / -0.0 differ)."""
    if isinstance(value, (tuple, list)):
        return type(value), tuple(_value_key(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return type(value), value, math.copysign(1.0, value)
    return type(value), value


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, (tuple, list, set, frozenset)) and any(_holds_tensor(v) for v in value)


# ----------------------------------------------------------------------------------------------------------
# Tracing: one eager call, its ops and effects listed by the engine's tracer
# ----------------------------------------------------------------------------------------------------------


_capturing: contextvars.ContextVar[bool] = contextvars.ContextVar("tinygrad_like_capturing", default=False)


class _Capture(engine.Tracer):
    """Lists what one call does; passes it on to an enclosing capture (a jitted function calling another)."""

    def __init__(self) -> None:
        self.applied: list[tuple[Function, tuple, Tensor]] = []
        self.effects: list[str] = []
        self.outer: engine.Tracer | None = None

    def op(self, fn: Function, inputs: Any, out: Any) -> None:
        self.applied.append((fn, tuple(inputs), out))
        if self.outer is not None:
            self.outer.op(fn, inputs, out)

    def effect(self, what: str) -> None:
        self.effects.append(what)
        if self.outer is not None:
            self.outer.effect(what)


class _Trace:
    """One call's ops: per op its rule, keyword parameters, inputs (where each comes from), needs_grad (None for an
    op outside the graph) and its result's shape and dtype; the output's position, whether it had a graph, the
    Tensor arguments. Tensors are held by weak references (a trace waiting for a second one keeps no batch
    alive); a number of the code (a 0-d read-only constant) is kept with its value."""

    def __init__(self, steps: list[tuple], out: int, records: bool, tensors: list[Tensor]) -> None:
        self.steps, self.out, self.records = steps, out, records
        self.tensors = [weakref.ref(t) for t in tensors]

    def leaves(self) -> list[Tensor | None]:
        return [ref() for step in self.steps for kind, ref in step[2] if kind == _LEAF]


def _trace(fn: Callable[..., Tensor], name: str, args: tuple, kwargs: dict,
           tensors: list[Tensor]) -> tuple[Tensor, _Trace]:
    capture = _Capture()
    capture.outer = engine.set_tracer(capture)
    token = _capturing.set(True)
    try:
        out = fn(*args, **kwargs)
    finally:
        _capturing.reset(token)
        engine.set_tracer(capture.outer)
    if capture.effects:
        raise RuntimeError(f"jit({name}): the function makes {capture.effects[0]}, which a replay would not "
                           "repeat; keep it outside the jitted function (return the loss, call backward and "
                           "step the optimizer on the result)")
    if not isinstance(out, Tensor):
        raise TypeError(f"jit({name}): the function must return one Tensor, got {type(out).__name__}")
    arguments: dict[int, int] = {}
    for i, t in enumerate(tensors):
        arguments.setdefault(id(t), i)
    slots: dict[int, int] = {}  # id of an op's output -> its position (outputs stay alive in ``applied``)
    steps = []
    for i, (f, inputs, result) in enumerate(capture.applied):
        sources = tuple((_SLOT, slots[id(t)]) if id(t) in slots else (_ARG, arguments[id(t)]) if id(t) in arguments
                        else (_LEAF, _LeafRef(t)) for t in inputs)
        steps.append((type(f), getattr(f, "params", {}), sources, f.needs_grad if result._ctx is f else None,
                      (result.data.shape, result.data.dtype)))
        slots[id(result)] = i
    if id(out) not in slots:
        raise RuntimeError(f"jit({name}): the function returned a tensor no op of it made (an argument or a tensor "
                           "from outside); there is nothing to replay")
    return out, _Trace(steps, slots[id(out)], out.requires_grad, tensors)


class _LeafRef(weakref.ref):
    """A weak reference to a tensor an op read that no op of the call made, with its value if it is a number of
    the function's code (0-d, read-only, no grad: ``x * 2``), the only kind a replay keeps."""

    __slots__ = ("constant",)

    def __init__(self, t: Tensor) -> None:
        super().__init__(t)
        self.constant = t.data if t.data.ndim == 0 and not t.data.flags.writeable and not t.requires_grad else None


# ----------------------------------------------------------------------------------------------------------
# The plan: two traces that agree, and the one node that replays them
# ----------------------------------------------------------------------------------------------------------


class _Plan:
    """The captured ops with their inputs resolved, for ``Replay``.

    Every value has one index: the outside tensors and arguments ("externals") first, then the constants, then
    the ops' outputs in creation order. The replayed node's inputs are the externals' uses by ops that pass them
    a gradient, latest op first (then the others, for their values).
    """

    @classmethod
    def of(cls, name: str, first: _Trace, second: _Trace) -> _Plan | None:
        """The plan two traces agree on; None if a tensor's requires_grad changed between them (trace again)."""
        if len(first.steps) != len(second.steps) or first.out != second.out:
            raise _differs(name, f"{len(first.steps)} ops, then {len(second.steps)}")
        for (rule, params, sources, needs, _), (rule2, params2, sources2, needs2, _) in zip(first.steps,
                                                                                              second.steps):
            if any(isinstance(v, np.ndarray) for v in (*_leaves(params), *_leaves(params2))):
                raise RuntimeError(f"jit({name}): {rule.name} takes an array as a parameter (an index), which a "
                                   "replay would keep from the capture; index with slices or numbers, or call the "
                                   "function without jit")
            if rule is not rule2 or len(sources) != len(sources2) or not _same(params, params2):
                raise _differs(name, f"{rule.name}{_shown(params)}, then {rule2.name}{_shown(params2)}")
            if needs != needs2:
                return None
        return cls(name, first, second)

    def __init__(self, name: str, first: _Trace, second: _Trace) -> None:
        self.name = name
        self.externals: list[Any] = []  # (_ARG, position among the Tensor arguments) or (_LEAF, the tensor)
        self.pins: list[tuple[int, Tensor]] = []  # arguments that were the same tensor in both calls
        constants: list[np.ndarray] = []
        where: dict[Any, int] = {}

        def external(kind: str, ref: Any) -> int:
            key = (kind, ref if kind == _ARG else id(ref))
            if key not in where:
                where[key] = len(self.externals)
                self.externals.append((kind, ref))
            return where[key]

        resolved_steps = []
        for (rule, _, sources, _, _), (_, params, sources2, needs, _) in zip(first.steps, second.steps):
            resolved = []
            for position, ((kind, a), (kind2, b)) in enumerate(zip(sources, sources2)):
                if kind == kind2 == _SLOT and a == b:
                    resolved.append((_SLOT, a))
                elif kind == kind2 == _ARG and a == b:
                    tensor = second.tensors[b]()
                    if first.tensors[a]() is tensor:  # the same tensor twice: it may also be read from outside;
                        self.pins.append((b, tensor))  # replayed for that tensor only
                        resolved.append((_EXTERNAL, external(_LEAF, tensor)))
                    else:
                        resolved.append((_EXTERNAL, external(_ARG, b)))
                elif kind == kind2 == _LEAF and a() is not None and a() is b():
                    resolved.append((_EXTERNAL, external(_LEAF, b())))
                elif kind == kind2 == _LEAF and a.constant is not None and b.constant is not None \
                        and _same(a.constant, b.constant):
                    resolved.append((_CONSTANT, len(constants)))  # a Python number of the function's code
                    constants.append(b.constant)
                elif kind == kind2 == _LEAF:
                    raise RuntimeError(
                        f"jit({name}): input {position} of {rule.name} is a tensor the function made without a "
                        "recorded op (Tensor(data), a NumPy array in the code, a comparison, detach(), argmax()), "
                        "which a replay cannot make again; pass it as an argument (or make it once, outside), or "
                        "call the function without jit")
                else:
                    raise _differs(name, f"input {position} of {rule.name} came from another place")
            resolved_steps.append((rule, params, resolved, needs))
        self.constants = constants
        self._lay_out(resolved_steps, second)
        self.outside = [(i, _kind(t)) for i, (kind, t) in enumerate(self.externals) if kind == _LEAF]

    def _lay_out(self, resolved_steps: list, second: _Trace) -> None:
        """Indices for every value, the replayed node's inputs, and the walk, latest op first."""
        n_ext, first_output = len(self.externals), len(self.externals) + len(self.constants)
        offset = {_EXTERNAL: 0, _CONSTANT: n_ext, _SLOT: first_output}
        self.steps = [(rule, params, tuple(offset[kind] + i for kind, i in resolved), needs)
                      for rule, params, resolved, needs in resolved_steps]
        self.out, self.records, self.first_output = first_output + second.out, second.records, first_output
        # The eager walk pops the latest node first and reaches a node only from later ones: on these indices,
        # the ops that lead to the output, latest first.
        reached = {self.out}
        for i in range(len(self.steps) - 1, -1, -1):
            _, _, refs, needs = self.steps[i]
            if first_output + i in reached and needs is not None:
                reached.update(r for r, need in zip(refs, needs) if need)
        walked = sorted((r - first_output for r in reached
                         if r >= first_output and self.steps[r - first_output][3] is not None), reverse=True)
        # One input of the replayed node per use of an external that carries a gradient, in the walk's order (so
        # the engine adds them up as the eager walk would), then one per external that carries none.
        self.inputs: list[int] = []  # which external each input of the node is
        self.walk = []
        for i in walked:
            rule, params, refs, needs = self.steps[i]
            targets = []
            for r, need in zip(refs, needs):
                if need and r < n_ext:
                    targets.append(-1 - len(self.inputs))  # the node's input -1 - target gets it
                    self.inputs.append(r)
                else:
                    targets.append(r if need else None)
            self.walk.append((first_output + i, i, tuple(targets)))
        walked_steps = set(walked)
        self.kept = [i in walked_steps for i in range(len(self.steps))]  # rules whose backward runs
        # The version check of the replayed node, as close to the eager graph's as one node can be: on when a
        # recorded rule that reads an input of the node, or makes its output, saves values.
        self.saves_values = any(
            self.kept[i] and rule.saves_values and (first_output + i == self.out or any(r < n_ext for r in refs))
            for i, (rule, _, refs, _) in enumerate(self.steps))
        self.inputs += [j for j in range(n_ext) if j not in self.inputs]
        self.array_of = [self.inputs.index(j) for j in range(n_ext)]  # where the node finds each external's array
        # The backward needs only the shapes and dtypes of the values (the rules keep what they saved), so the
        # forward lets each value go after its last use, as the eager graph lets go what no recorded op keeps.
        self.layouts = [None] * first_output + [layout for *_, layout in second.steps]
        last_use = {r: i for i, (_, _, refs, _) in enumerate(self.steps) for r in refs if r >= n_ext}
        self.released = [[] for _ in self.steps]
        for r, i in last_use.items():
            if r != self.out:
                self.released[i].append(r)

    def run(self, tensors: list[Tensor]) -> Tensor | None:
        """The replayed call, or None if the capture does not fit it (a tensor from outside changed shape, dtype or
        requires_grad; an argument pinned to one tensor got another): the call is then traced again."""
        if any(tensors[i] is not t for i, t in self.pins):
            return None
        externals = [tensors[ref] if kind == _ARG else ref for kind, ref in self.externals]
        if any(_kind(externals[i]) != kind for i, kind in self.outside):
            return None
        inputs = [externals[j] for j in self.inputs]
        with enable_grad() if self.records else no_grad():  # a graph exactly when the function's result had one
            return Replay.apply(*inputs, plan=self)



def _differs(name: str, what: str) -> RuntimeError:
    return RuntimeError(f"jit({name}): the first two calls ran different ops ({what}); a jitted function must run "
                        "the same ops, with the same parameters, on every call (no Python control flow on values); "
                        "call it without jit")


def _shown(params: dict) -> str:
    return f"({', '.join(f'{k}={v!r:.40}' for k, v in params.items())})" if params else ""


def _kind(t: Tensor) -> tuple:
    """What a replay's inputs must keep: shape, dtype, requires_grad."""
    return t.data.shape, t.data.dtype, t.requires_grad


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _same(a: Any, b: Any) -> bool:
    """The same values and types, in dicts and tuples too; arrays element by element, nan equal to nan, the
    sign of a zero counted (x / 0.0 is not x / -0.0)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f") \
            and (a.dtype.kind != "f" or np.array_equal(np.signbit(a), np.signbit(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return type(a) is type(b) and bool(a == b)


class Replay(Function):
    """A jitted function's captured ops as one node: forward runs each captured rule on the new arrays, backward
    runs their backwards in the eager walk's order, summing what reaches each op's output as the walk does and
    handing each use of an input its own gradient (the engine sums those, in the walk's order too)."""

    __slots__ = ("plan", "rules", "saves_values")  # saves_values: the plan's, per node
    name = "jit"

    def forward(self, *inputs: np.ndarray, plan: _Plan) -> np.ndarray:
        values: list[Any] = [inputs[i] for i in plan.array_of] + plan.constants
        rules: list[Function | None] = []
        new, append = object.__new__, values.append
        for (rule, params, refs, needs), released, kept in zip(plan.steps, plan.released, plan.kept):
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
            if kept:
                f.needs_grad = needs
                rules.append(f)
            else:  # outside the graph, or not on the way to the output: its backward never runs
                rules.append(None)
            for r in released:
                values[r] = None
        self.plan, self.rules, self.saves_values = plan, rules, plan.saves_values
        return values[plan.out]

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        layouts, rules = self.plan.layouts, self.rules
        grads: dict[int, np.ndarray] = {self.plan.out: grad}
        found: list[np.ndarray | None] = [None] * len(self.plan.inputs)
        pop, get = grads.pop, grads.get
        for i, step, targets in self.plan.walk:
            g_out = pop(i, None)
            if g_out is None:  # a rule returned None for it: no gradient, as in the eager walk
                continue
            f = rules[step]
            try:
                local = f.backward(g_out)
            except AttributeError as e:  # a user's rule reading what only a recorded op has
                raise RuntimeError(f"{self.label()}: the backward of {f.name} failed on replay ({e}); a rule whose "
                                   "backward reads self.inputs or self.seq cannot be replayed: call the function "
                                   "without jit") from e
            for target, g in zip(targets, local):
                if target is None or g is None:
                    continue
                if target < 0:  # an input of this node: the engine undoes broadcasting and sums, as for any op
                    found[-1 - target] = g
                    continue
                shape, dtype = layouts[target]
                if g.shape != shape:
                    g = unbroadcast(g, shape, f, None)
                if g.dtype != dtype:
                    g = g.astype(dtype)
                previous = get(target)
                grads[target] = g if previous is None else previous + g
        return tuple(found)

    def graph_forward(self, *args: Any, **params: Any) -> Any:
        raise RuntimeError(f"{self.label()}: create_graph through a replayed call is not supported; call the "
                           "function without jit to differentiate its gradients")

    graph_backward = graph_forward

    def label(self) -> str:
        return f"jit({self.plan.name})" if hasattr(self, "plan") else "jit"
