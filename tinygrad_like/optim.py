"""Optimizers and learning-rate schedulers, as ``torch.optim``: they update ``param.data`` in place from
``param.grad`` step by step as PyTorch's do (``weight_decay`` as PyTorch: L2 for SGD and Adam, decoupled for
AdamW); schedulers set the optimizer's ``lr`` at each ``step()``, once per epoch.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterable
from typing import Any

import numpy as np

from .engine import no_grad, quiet
from .tensors import Tensor

__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR", "lr_scheduler"]


class Optimizer:
    """Base class: checks the parameters (a list of Tensors that require grad, or a Module) and the lr.

    ``state`` holds one dict per parameter (empty until its first update), with PyTorch's keys
    (``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``). Subclasses list their settings in
    ``hyperparameters``; ``state_dict`` saves both.
    """

    hyperparameters: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if hasattr(params, "parameters"):  # a Module
            params = params.parameters()
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.shape}) does not require grad")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _check(self, name: str, value: float, low: float, high: float = math.inf) -> float:
        """``value`` if ``low <= value < high``, else a ValueError naming the optimizer and the setting."""
        if not low <= value < high:
            interval = f"in [{low}, {high})" if high < math.inf else f">= {low}"
            raise ValueError(f"{type(self).__name__}: {name} must be {interval}, got {value}")
        return value

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``.grad = None``) before the next backward."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:  # PyTorch's set_to_none=False: zeros, in the gradient's own memory
                p.grad.data[...] = 0

    def step(self) -> None:
        """Update every parameter that has a gradient, in place (through ``Tensor.sub_`` and friends, so each
        parameter's version grows and a backward through a graph recorded before the step refuses to run).

        Numbers too big for the dtype become inf, as in PyTorch, without a RuntimeWarning.
        """
        with no_grad(), quiet():
            self.update()

    def update(self) -> None:
        """The update rule itself, for ``step`` to run (subclasses write it)."""
        raise NotImplementedError

    def _weight_decayed(self, p: Tensor) -> np.ndarray:
        """The gradient with the L2 penalty of PyTorch's ``weight_decay`` added: grad + weight_decay * p."""
        g = p.grad.data
        return g + self.weight_decay * p.data if self.weight_decay else g

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {name: value}}, "param_groups": [{settings, "params": indices}]}``,
        with copies of the arrays (later steps do not change it). Parameters are named by their index."""
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for i, s in enumerate(self.state) if s}
        group = {name: getattr(self, name) for name in self.hyperparameters}
        return {"state": state, "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave, for the same parameters in the same order; a mismatch (another
        number of parameters, a buffer of another shape, unknown settings) is refused before anything changes."""
        name = type(self).__name__
        try:
            (group,), state = state_dict["param_groups"], state_dict["state"]
            indices = group["params"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{name}.load_state_dict: expects the dict state_dict() returns, with one parameter "
                             "group") from None
        if len(indices) != len(self.params):
            raise ValueError(f"{name}.load_state_dict: the state is for {len(indices)} parameters, this optimizer "
                             f"has {len(self.params)}")
        unknown = set(group) - set(self.hyperparameters) - {"params"}
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unknown settings {sorted(unknown)}")
        for i, entries in state.items():
            if not 0 <= int(i) < len(self.params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, which does not exist")
            p = self.params[int(i)]
            for key, value in entries.items():
                if isinstance(value, np.ndarray) and value.shape != p.shape:
                    raise ValueError(f"{name}.load_state_dict: {key} of parameter {i} has shape {value.shape}, "
                                     f"the parameter {p.shape}")
        for setting in self.hyperparameters:
            if setting in group:
                setattr(self, setting, group[setting])
        self.state = [{} for _ in self.params]
        for i, entries in state.items():
            dtype = self.params[int(i)].dtype
            self.state[int(i)] = {k: (np.array(v, dtype=dtype) if isinstance(v, np.ndarray) else v)
                                  for k, v in entries.items()}


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + g (v = g at the first step), g = grad + weight_decay * p;
    plain gradient descent for momentum=0 and weight_decay=0."""

    hyperparameters = ("lr", "momentum", "weight_decay")

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = self._check("momentum", momentum, 0, 1)
        self.weight_decay = self._check("weight_decay", weight_decay, 0)

    def update(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            g = self._weight_decayed(p)
            if self.momentum:
                v = state.get("momentum_buffer")
                if v is None:
                    v = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
                else:
                    v *= self.momentum
                    v += g
                g = v
            p.sub_(self.lr * g)


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected running means of the gradient and of its square, per parameter:
    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
    with g = grad + weight_decay * p (PyTorch's L2 ``weight_decay``; AdamW decouples it), t the parameter's own
    step count."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    decoupled = False  # AdamW: decay the weights directly instead of adding the L2 term to the gradient

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not (len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas = tuple(betas)
        self.eps = self._check("eps", eps, 0)
        self.weight_decay = self._check("weight_decay", weight_decay, 0)

    def update(self) -> None:
        b1, b2 = self.betas
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            if not state:
                state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if self.decoupled:
                p.mul_(1 - self.lr * self.weight_decay)
                g = p.grad.data
            else:
                g = self._weight_decayed(p)
            state["step"] += 1
            m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denominator = np.sqrt(v) / math.sqrt(1 - b2**t)
            denominator += self.eps
            p.sub_((self.lr / (1 - b1**t)) * (m / denominator))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay, then the Adam step on
    the plain gradient. PyTorch's default weight_decay, 0.01."""

    decoupled = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedulers. Each step computes the next lr from the current one, as PyTorch's do (so the
# values agree with PyTorch's to the last bit, step by step).
# ----------------------------------------------------------------------------------------------------------


class LRScheduler:
    """Base class: remembers the optimizer's initial lr (``base_lrs``) and counts ``step()`` calls (``last_epoch``)."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expects an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [optimizer.lr]
        self.last_epoch = 0
        self._last_lr = [optimizer.lr]

    def _next_lr(self, lr: float, base_lr: float) -> float:  # pragma: no cover - every scheduler overrides
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimizer's lr for it (call after that epoch's optimizer steps)."""
        self.last_epoch += 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr, self.base_lrs[0])
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list[float]:
        """The lr the last ``step()`` set (a list with one entry per parameter group, as PyTorch; here one)."""
        return list(self._last_lr)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): multiplied by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def _next_lr(self, lr: float, base_lr: float) -> float:
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: from base_lr down to eta_min
    in ``T_max`` epochs, then back up (a cosine, as PyTorch; restart-free)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 - PyTorch's
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def _next_lr(self, lr: float, base_lr: float) -> float:
        epoch, period, low = self.last_epoch, self.T_max, self.eta_min
        if (epoch - 1 - period) % (2 * period) == 0:  # at the bottom the ratio below would divide by 0
            return lr + (base_lr - low) * (1 - math.cos(math.pi / period)) / 2
        return (1 + math.cos(math.pi * epoch / period)) / (1 + math.cos(math.pi * (epoch - 1) / period)) * (
            lr - low) + low


# ``optim.lr_scheduler.StepLR`` as in PyTorch, and ``from tinygrad_like.optim.lr_scheduler import StepLR`` too:
# a module registered under its dotted name (as the standard library's ``os`` registers ``os.path``).
lr_scheduler = types.ModuleType(f"{__name__}.lr_scheduler", "Learning-rate schedulers (see tinygrad_like.optim).")
lr_scheduler.LRScheduler, lr_scheduler.StepLR, lr_scheduler.CosineAnnealingLR = LRScheduler, StepLR, CosineAnnealingLR
sys.modules[lr_scheduler.__name__] = lr_scheduler
