"""Running the user's code for ``check_gradients``: ``watch``, the parameters in float64, the plain and the Tensor
runs of ``forward``, the hand-written ``backward``, and central finite differences entry by entry."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine import no_grad, quiet
from ..nn import Module
from ..tensors import Tensor, numpy_meaning

FD_STEP = 1e-5  # central-difference step, relative to max(1, |value|): about eps ** (1/3)


# ----------------------------------------------------------------------------------------------------------
# watch: naming intermediate values of the user's forward
# ----------------------------------------------------------------------------------------------------------


class _Local(threading.local):
    run: Run | None = None


_local = _Local()


def watch(name: str, value: Any) -> Any:
    """Name an intermediate ``value`` of ``forward`` so that ``backward`` may give its gradient too; returns
    ``value``. Outside ``check_gradients`` it does nothing; on plain arrays it only notes the name."""
    run = _local.run
    return value if run is None else run.watch(name, value)


class Run:
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


def call_user(fn: Callable, run: Run, first: Any, args: tuple) -> Any:
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


class Parameters:
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
        found = dict(module.named_parameters())
        tensors = {name: found[name] for name in self.names}
        for name, p in tensors.items():
            p.data, p.grad, p.requires_grad = np.array(values[name]), None, requires_grad
        return module, tensors

    @property
    def float32(self) -> list[str]:
        return [name for name, dt in self.dtypes.items() if dt == np.float32]


def own(arg: Any, dtype: Any = np.float64) -> Any:
    """A copy of one of the user's other arguments, floating point ones in ``dtype`` (other values as they are)."""
    if isinstance(arg, Tensor):
        return Tensor(arg.data.astype(dtype) if arg.dtype.kind == "f" else arg.data.copy())
    if isinstance(arg, np.ndarray):
        return arg.astype(dtype) if arg.dtype.kind == "f" else arg.copy()
    return arg


def loss_value(value: Any) -> float:
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


# ----------------------------------------------------------------------------------------------------------
# The three sources: the hand-written backward, autograd on the Tensor run, finite differences
# ----------------------------------------------------------------------------------------------------------


def hand_gradients(backward: Callable, plain: Any, args: tuple, parameters: tuple[str, ...],
                   watched: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The hand-written gradients as float64 copies; errors name what is wrong with what backward returned."""
    result = call_user(backward, Run(parameters), plain, args)
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


def tensor_run(forward: Callable, parameters: Parameters, args: tuple,
               dtype: Any = np.float64) -> tuple[Tensor, dict[str, Any]]:
    """forward on Tensors that require grad: the loss, and the Tensors by name (parameters and watched values)."""
    first, tensors = parameters.tensors(dtype)
    run = Run(parameters.names, tensors=True)
    with numpy_meaning():  # the user's NumPy code: NumPy's meaning throughout (var's ddof=0, transpose, ...)
        out = call_user(forward, run, first, args if dtype == np.float64 else tuple(own(a, dtype) for a in args))
    if not isinstance(out, Tensor):
        loss_value(out)  # a non-scalar says so first
        raise TypeError(f"check_gradients: on Tensors, forward returned a {type(out).__name__} instead of a Tensor: "
                        "a step in it turned the Tensors into plain values (float(), .item(), .numpy(), np.asarray, "
                        "the math module, ...), so autograd cannot follow it")
    loss_value(out)
    if not out.requires_grad:
        raise ValueError("check_gradients: on Tensors, forward's loss does not depend on the parameters (it has no "
                         "graph): a step in it used the parameters' plain values (.data, .numpy(), np.asarray, ...)")
    return out, {**tensors, **run.watched}


def autograd(loss: Tensor, targets: dict[str, Any]) -> dict[str, np.ndarray]:
    """The engine's own backward (the graph kept for the diagnosis): gradients by name, zeros where none."""
    loss.backward(retain_graph=True)
    grads = {}
    for name, t in targets.items():
        if isinstance(t, Tensor) and t.grad is not None:
            grads[name] = np.array(t.grad.data, dtype=np.float64)
        else:
            grads[name] = np.zeros(np.shape(t.data if isinstance(t, Tensor) else t))
    return grads


def float32_autograd(forward: Callable, parameters: Parameters, args: tuple) -> dict[str, np.ndarray] | None:
    """Autograd with the parameters and arguments in float32: how large float32 rounding is in this computation."""
    try:
        loss, targets = tensor_run(forward, parameters, args, dtype=np.float32)
        loss.backward()
    except (TypeError, ValueError, ArithmeticError):
        return None
    return {name: np.asarray(t.grad.data, dtype=np.float64) for name, t in targets.items()
            if isinstance(t, Tensor) and t.grad is not None}


def sample_entries(grad: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct flat indices: the largest |gradient| entry (so the check is never vacuous) and random."""
    if count < 1 or grad.size == 0:
        return np.zeros(0, dtype=int)
    largest = int(np.argmax(np.abs(grad)))
    others = rng.permutation(grad.size)
    others = others[others != largest][:count - 1]
    return np.concatenate([[largest], others]).astype(int)


def finite_differences(forward: Callable, parameters: Parameters, args: tuple, name: str,
                       watched: Mapping[str, Any], auto: np.ndarray, count: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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
            plain, run = parameters.plain({**parameters.values, name: moved}), Run(parameters.names)
        else:
            plain, run = parameters.plain(), Run(parameters.names, shift=(name, index, delta))
        return loss_value(call_user(forward, run, plain, args))

    numeric = []
    for j in picks:
        v = float(base.flat[j])
        h = FD_STEP * max(1.0, abs(v))
        up, down = v + h, v - h
        numeric.append((loss_at(j, up) - loss_at(j, down)) / (up - down))
    parameters.plain()  # a module copy back at the unshifted values
    return picks, np.array(numeric)


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


def batch_sizes(args: tuple) -> list[int]:
    """The leading sizes of the array arguments: the batch sizes a mean over the samples divides by."""
    sizes = []
    for a in args:
        shape = np.shape(a.data if isinstance(a, Tensor) else a) if isinstance(a, (Tensor, np.ndarray)) else ()
        if shape and shape[0] not in sizes:
            sizes.append(int(shape[0]))
    return sizes
