"""``Module``: the base of every layer and network, with its parameters, state, saving and loading.

Parameters are the Tensor attributes that require grad of a module (and of its sub-modules, lists and tuples),
named by their attribute path, e.g. ``layers.0.weight``. Constant Tensors are not parameters; those registered with
``register_buffer`` are saved with them. ``train()`` / ``eval()`` set ``training`` on the whole tree.
``save``/``load`` use NumPy ``.npz`` files without pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write, parse_config, read_npz
from ..engine import no_grad
from ..tensors import Tensor

CONFIG_KEY = "__config__"  # the constructor arguments, saved next to the weights so ``Module.load`` can rebuild



_registry: dict[str, type[Module]] = {}  # "module.QualName" -> class, for Module.load


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Module:
    """Base class: subclasses set Tensors and Modules as attributes and define ``forward``.

    No ``super().__init__()`` is needed: ``training`` (True until ``eval()``) and the buffer names have class
    defaults, and the parameters are found among the attributes when asked for.
    """

    training: bool = True
    _buffer_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _registry[_class_key(cls)] = cls  # by full name: a user's class called MLP does not replace ours

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.mark_call(self.forward(*args, **kwargs), *args)

    def mark_call(self, out: Any, *inputs: Any) -> Any:
        """Tag the graph node that made ``out`` as this module's call on ``inputs``; returns ``out``.

        ``__call__`` does it for every call, so drawings can group a layer's operations into a cluster without
        any registry: the tag lives on the node and goes with it. Code that computes a module's output
        without calling it (e.g. an unfused version of a layer) can call this itself.
        """
        fn = out.grad_fn if isinstance(out, Tensor) else None
        if fn is not None and not any(a is out for a in inputs):  # a module that returns its input made nothing
            call = (self, tuple(a for a in inputs if isinstance(a, Tensor)))
            fn.module_calls = getattr(fn, "module_calls", ()) + (call,)  # innermost call first
        return out

    def extra_repr(self) -> str:
        """The module's settings in a few words, e.g. ``784, 64`` for a Linear layer (repr and drawings)."""
        return ""

    # -- modes ----------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``, the default state) on this module and every sub-module; returns self.

        Layers that behave differently in training read ``self.training``: ``Dropout`` drops only in training.
        """
        for _, module in self.named_modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode for this module and every sub-module (``train(False)``); returns self.

        It changes what layers do (``Dropout`` passes its input through), not whether a graph is recorded:
        evaluate inside ``no_grad()`` as well.
        """
        return self.train(False)

    # -- parameters -----------------------------------------------------------------------------------------
    def _children(self) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Tensor, Module)):
                        yield f"{name}.{i}", item
            elif isinstance(value, (Tensor, Module)):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``) and every sub-module, depth first."""
        yield prefix, self
        for name, value in self._children():
            if isinstance(value, Module):
                yield from value.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every parameter (a Tensor attribute with ``requires_grad``, also inside sub-modules, lists and tuples,
        buffers excepted) with its dotted name; a Tensor shared by several modules comes once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in module._children():
                if (isinstance(value, Tensor) and value.requires_grad and name not in module._buffer_names
                        and id(value) not in seen):
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Keep a constant Tensor (running statistics, a fixed mask, ...) as attribute ``name`` and in
        ``state_dict``, ``save`` and ``load``, though it is not a parameter (optimizers never see it).

        Constant Tensor attributes are otherwise neither parameters nor saved, e.g. in ``__init__``:
        ``self.register_buffer("mean", Tensor.zeros(3))``, then use and update ``self.mean`` as any attribute.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"register_buffer: name must be an attribute name, got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name} must be a Tensor or None, got {type(tensor).__name__}")
        if name in vars(self) and name not in self._buffer_names:
            raise ValueError(f"register_buffer: {type(self).__name__} already has an attribute {name!r}")
        if name not in self._buffer_names:
            self._buffer_names = (*self._buffer_names, name)
        setattr(self, name, tensor)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every registered buffer (see ``register_buffer``) with its dotted name, sub-modules included."""
        for module_name, module in self.named_modules(prefix):
            for name in module._buffer_names:
                value = getattr(module, name)
                if isinstance(value, Tensor):
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list[Tensor]:
        """The tensors of ``named_parameters``, in the same order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:  # PyTorch's set_to_none=False: zeros, in the gradient's own memory
                p.grad.data[...] = 0

    # -- state ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any] | None:
        """Constructor arguments (JSON-able) that rebuild this module, or None if it cannot be rebuilt."""
        return None

    def _state_tensors(self) -> dict[str, Tensor]:
        return {**dict(self.named_parameters()), **dict(self.named_buffers())}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's and buffer's array, by name."""
        return {name: p.data.copy() for name, p in self._state_tensors().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays into the parameters and buffers; every missing, unexpected or mismatched entry is reported
        at once."""
        params = self._state_tensors()
        problems = [f"missing {name} {tuple(p.shape)} {p.dtype}" for name, p in params.items() if name not in state]
        problems += [f"unexpected {name}" for name in state if name not in params and name != CONFIG_KEY]
        for name, p in params.items():
            if name in state:
                value = np.asarray(state[name].data if isinstance(state[name], Tensor) else state[name])
                if value.shape != p.shape or value.dtype != p.dtype:
                    problems.append(f"{name}: expected {p.shape} {p.dtype}, got {value.shape} {value.dtype}")
        if problems:
            raise ValueError(f"load_state_dict: {type(self).__name__} does not match the state:\n  "
                             + "\n  ".join(problems))
        with no_grad():  # into each parameter's own memory (and layout), as PyTorch's copy_
            for name, p in params.items():
                p.assign(state[name])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters (and the constructor arguments) to an ``.npz`` file, atomically."""
        if not str(path):
            raise ValueError("save: empty path; give a file name such as model.npz")
        path = Path(path)
        arrays = self.state_dict()
        config = self.config()
        if config is not None:
            arrays[CONFIG_KEY] = np.array(json.dumps({"class": _class_key(type(self)), "args": config}))
        with atomic_write(path) as f:  # the old file stays intact until the new one is complete
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Module:
        """Rebuild a module saved by ``save`` (its class and constructor arguments are in the file)."""
        state = read_npz(path)
        if CONFIG_KEY not in state:
            raise ValueError(f"load: {path} holds no module description; build the module yourself and call "
                             "module.load_state_dict(nn.read_npz(path))")
        try:
            config = parse_config(str(state.pop(CONFIG_KEY)), path)
            module_cls = _registry.get(config["class"]) or _registry[f"{__package__}.layers.{config['class']}"]
            module = module_cls(**config["args"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"load: {path} has an unusable module description ({e})") from None
        if not isinstance(module, cls):
            raise TypeError(f"load: {path} holds a {type(module).__name__}, not a {cls.__name__}")
        module.load_state_dict(state)
        return module

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, value in self._children():
            text = repr(value) if isinstance(value, Module) else f"Tensor{tuple(value.shape)}"
            lines.append(f"  ({name}): " + text.replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"
