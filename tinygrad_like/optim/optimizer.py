"""Optimizers, as ``torch.optim``'s: parameter groups, per-parameter state, ``state_dict``, and the update rules of
SGD, Adam, AdamW, RMSprop and Adagrad, written step for step as PyTorch's (so the numbers agree with PyTorch's).

Each optimizer keeps ``param_groups``, a list of dicts, each holding ``"params"`` (a list of Tensors) and every
setting (``"lr"``, ``"weight_decay"``, ...); changing a setting there (``opt.param_groups[0]["lr"] = 0.01``) takes
effect at the next ``step()``. ``state`` maps each parameter to its own buffers (NumPy arrays, in the parameter's
dtype, with PyTorch's names), created at the parameter's first update.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..engine import enable_grad, no_grad, quiet
from ..tensors import Tensor

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "required"]


class _Required:
    """The default of a setting that every parameter group must give (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def _as_list(params: Any) -> list:
    """The parameters of one group as a list: a Module's parameters, a single Tensor, or any ordered iterable."""
    if isinstance(params, Tensor):
        return [params]
    if hasattr(params, "parameters") and callable(params.parameters):  # a Module
        return list(params.parameters())
    if isinstance(params, set):  # its order changes from run to run, and the state follows the order
        raise TypeError("optimizer parameters must be in an ordered collection (a list), not a set: the order of a "
                        "set changes between runs")
    return list(params)


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start += weight * (end - start)`` in place, evaluated from the nearer end as PyTorch's ``lerp_`` is (the
    same rounding, so running averages agree with PyTorch's to the last bit)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Optimizer:
    """Base class, as ``torch.optim.Optimizer(params, defaults)``.

    ``params``: an iterable of Tensors, a Module (its parameters), or a list of dicts, one per parameter group,
    each with ``"params"`` and any settings of its own (the others come from ``defaults``). A subclass either
    writes ``_update(p, grad, state, group)`` (one parameter's update, run by ``step`` under ``no_grad``) or
    overrides ``step`` as in PyTorch.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._check_settings(self.defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):  # iterating it would give its rows
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or dicts (or a Module), got one "
                            f"Tensor: pass [tensor]")
        groups = _as_list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join([*lines, ")"])

    # -- parameter groups -----------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group: ``{"params": [...], setting: value, ...}``; settings it does not give come from the
        optimizer's ``defaults``. A parameter already in a group is refused, as in PyTorch."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}.add_param_group: expects a dict with 'params', got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}.add_param_group: the group has no 'params' (keys {sorted(param_group)})")
        group = {**param_group, "params": _as_list(param_group["params"])}
        if not group["params"]:
            raise ValueError(f"{self._name}: got an empty parameter list")
        for i, p in enumerate(group["params"]):
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: parameter {i} (shape {p.shape}) is not a leaf (made by "
                                 f"{type(p.grad_fn).__name__}): an optimizer updates leaves only")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{self._name}: parameter group {len(self.param_groups)} gives no {name}, which "
                                 "has no default")
            group.setdefault(name, default)
        self._check_settings(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self._name}: a parameter appears twice in parameter group {len(self.param_groups)}")
        if seen.intersection(ids):
            raise ValueError(f"{self._name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _check_settings(self, group: dict[str, Any]) -> None:
        """Refuse settings out of range (subclasses list theirs); ``group`` holds the settings by name."""

    def _at_least_zero(self, group: dict[str, Any], *names: str) -> None:
        for name in names:
            value = group.get(name, 0)
            if value is not required and not value >= 0:
                raise ValueError(f"{self._name}: {name} must be >= 0, got {value}")

    # -- steps ----------------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``.grad = None``) before the next backward."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:  # PyTorch's set_to_none=False: zeros, in the gradient's own memory
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place (through ``Tensor.sub_`` and friends, so each
        parameter's version grows and a backward through a graph recorded before the step refuses to run).
        ``closure`` (optional, as PyTorch's): a function that recomputes the loss and its gradients, called first;
        its loss is returned.

        Numbers too big for the dtype become inf, as in PyTorch, without a RuntimeWarning.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad(), quiet():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grad = p.grad.data
                        self._update(p, -grad if group.get("maximize") else grad, self.state[p], group)
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        """One parameter's update from its gradient (negated for ``maximize``); subclasses write it."""
        raise NotImplementedError(f"{self._name}: write _update(p, grad, state, group) or override step()")

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {name: value}}, "param_groups": [{settings, "params": indices}]}``,
        parameters numbered in the order of the groups, with copies of the arrays (later steps do not change it)."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: copy.deepcopy(v) for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for p, s in self.state.items() if s and id(p) in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave, for the same parameters in the same groups: settings and buffers.
        A state that does not fit (other groups, another number of parameters, a buffer of another shape, another
        optimizer's settings) is refused before anything changes."""
        name = f"{self._name}.load_state_dict"
        try:
            saved_groups, saved_state = list(state_dict["param_groups"]), dict(state_dict["state"])
            sizes = [len(g["params"]) for g in saved_groups]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{name}: expects the dict state_dict() returns, with 'state' and 'param_groups'") \
                from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the state has {len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        for i, (size, group) in enumerate(zip(sizes, self.param_groups)):
            if size != len(group["params"]):
                raise ValueError(f"{name}: parameter group {i} of the state is for {size} parameters, this "
                                 f"optimizer's has {len(group['params'])}")
            missing = sorted(set(self.defaults) - set(saved_groups[i]))
            if missing:
                raise ValueError(f"{name}: parameter group {i} of the state has no {missing} (the state of another "
                                 "optimizer?)")
        params = {index: p for saved, group in zip(saved_groups, self.param_groups)
                  for index, p in zip(saved["params"], group["params"])}
        for i, entries in saved_state.items():
            if i not in params:
                raise ValueError(f"{name}: state for parameter {i}, which is in no parameter group")
            for key, value in entries.items():
                if isinstance(value, np.ndarray) and value.shape != params[i].shape:
                    raise ValueError(f"{name}: {key} of parameter {i} has shape {value.shape}, the parameter "
                                     f"{params[i].shape}")
        groups = [{**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}), "params": group["params"]}
                  for saved, group in zip(saved_groups, self.param_groups)]
        for group in groups:
            self._check_settings(group)
        self.param_groups = groups
        self.state = defaultdict(dict)
        for i, entries in saved_state.items():
            p = params[i]
            self.state[p] = {k: (np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray) else v)
                             for k, v in entries.items()}


def _weight_decayed(grad: np.ndarray, p: Tensor, weight_decay: float) -> np.ndarray:
    """The gradient with the L2 penalty of PyTorch's ``weight_decay``: grad + weight_decay * p (a new array)."""
    return grad + weight_decay * p.data if weight_decay != 0 else grad


class SGD(Optimizer):
    """Stochastic gradient descent, as PyTorch's: g = grad + weight_decay * p; with momentum, a buffer
    b = momentum * b + (1 - dampening) * g (b = g at the first step) and g = b, or g + momentum * b for
    ``nesterov``; then p -= lr * g. ``maximize`` climbs instead (g = -grad)."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, lr: float = 1e-3,
                 momentum: float = 0, dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize})

    def _check_settings(self, group: dict[str, Any]) -> None:
        self._at_least_zero(group, "lr", "momentum", "weight_decay")
        if group.get("nesterov") and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
            raise ValueError(f"{self._name}: Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group.get('momentum')}, dampening={group.get('dampening')}")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        g = _weight_decayed(grad, p, group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.sub_(group["lr"] * g)


class Adam(Optimizer):
    """Adam (Kingma & Ba), as PyTorch's: per parameter, running means of the gradient and of its square,
    m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2, then
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t the parameter's own step count.
    g = grad + weight_decay * p (L2), or with ``decoupled_weight_decay`` (AdamW) p *= 1 - lr * weight_decay first
    and g = grad. ``amsgrad`` divides by the largest v so far instead of v."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, maximize: bool = False, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _check_settings(self, group: dict[str, Any]) -> None:
        self._at_least_zero(group, "lr", "eps", "weight_decay")
        betas = group.get("betas", (0.0, 0.0))
        if not (isinstance(betas, tuple | list) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"{self._name}: betas must be in [0, 1), two of them, got {betas}")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, (b1, b2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0.0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if group["decoupled_weight_decay"]:
            if weight_decay != 0:
                p.mul_(1 - lr * weight_decay)
            g = grad
        else:
            g = _weight_decayed(grad, p, weight_decay)
        _lerp_(m, g, 1 - b1)
        v *= b2
        v += (1 - b2) * g * g
        step_size = lr / (1 - b1**step)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denominator = np.sqrt(v) / (1 - b2**step) ** 0.5
        denominator += group["eps"]
        p.sub_(step_size * m / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay, then the Adam step on
    the plain gradient. PyTorch's default weight_decay, 0.01."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop (Hinton), as PyTorch's: a running mean of the squared gradient s = alpha s + (1 - alpha) g^2 and
    d = sqrt(s) + eps (``centered``: sqrt(s - a^2) + eps, a the running mean of g), then p -= lr * g / d, or
    with momentum b = momentum * b + g / d and p -= lr * b. g = grad + weight_decay * p."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                                  "weight_decay": weight_decay, "maximize": maximize})

    def _check_settings(self, group: dict[str, Any]) -> None:
        self._at_least_zero(group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state.update(step=0.0, square_avg=np.zeros_like(p.data))
        state["step"] += 1
        g = _weight_decayed(grad, p, group["weight_decay"])
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
            _lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf *= momentum
            buf += g / avg
            p.sub_(group["lr"] * buf)
        else:
            p.sub_(group["lr"] * g / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as PyTorch's: the sum of squared gradients s += g^2 (from
    ``initial_accumulator_value``), then p -= clr * g / (sqrt(s) + eps) with clr = lr / (1 + (t - 1) * lr_decay),
    t the step count. g = grad + weight_decay * p. The state exists from the start, as PyTorch's; as there, the
    groups given here start from the ``initial_accumulator_value`` given here (a group's own value counts for a
    group added later by ``add_param_group``)."""

    _ready = False  # True once built: add_param_group then starts the new group's sums from its own value

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]] | Any, lr: float = 1e-2,
                 lr_decay: float = 0, weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "maximize": maximize})
        for group in self.param_groups:
            self._start_sums(group, initial_accumulator_value)
        self._ready = True

    def _check_settings(self, group: dict[str, Any]) -> None:
        self._at_least_zero(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _start_sums(self, group: dict[str, Any], value: float) -> None:
        for p in group["params"]:
            self.state[p] = {"step": 0.0, "sum": np.full_like(p.data, value)}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        if self._ready:
            self._start_sums(self.param_groups[-1], self.param_groups[-1]["initial_accumulator_value"])

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["step"] += 1
        g = _weight_decayed(grad, p, group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = np.sqrt(state["sum"])
        std += group["eps"]
        p.sub_(clr * g / std)
