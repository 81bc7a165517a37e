"""``Module``: the base of every layer and network, with its parameters, state, saving and loading; ``Parameter``.

Parameters are the ``Parameter`` attributes and the Tensor attributes that require grad of a module (and of its
sub-modules, lists, tuples and dicts), named by their attribute path, e.g. ``layers.0.weight``. Constant Tensors
are not parameters; those registered with ``register_buffer`` are saved with them. ``train()`` / ``eval()`` set
``training`` on the whole tree. ``save``/``load`` use NumPy ``.npz`` files without pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._files import CONFIG_KEY, Header, atomic_write, npz_headers, parse_config, read_npz
from ..engine import no_grad
from ..tensors import Tensor, device_and_dtype

MAX_CONFIG_CHARS = 1 << 20  # of a saved description
_MAX_PROBLEMS = 20  # listed in a mismatch error, then a count


def _entry(name: str) -> str:
    """An array's name as an error shows it: as it is, or quoted and cut when long or unprintable (a crafted
    file's names are untrusted text)."""
    if name.isprintable() and len(name) <= 120:
        return name
    text = repr(name)
    return text[:120] + "..." if len(text) > 120 else text


def state_problems(expected: dict[str, Header], found: dict[str, Any]) -> str:
    """Every difference between the state a module has (name -> (shape, dtype)) and the one a file or dict holds
    (name -> (shape, dtype)), one a line: missing, unexpected, mismatched entries ("" when they match; at most
    ``_MAX_PROBLEMS`` listed). ``CONFIG_KEY`` is not state."""
    problems = [f"missing {name} {shape} {dtype}" for name, (shape, dtype) in expected.items() if name not in found]
    problems += [f"unexpected {_entry(name)}" for name in found if name not in expected and name != CONFIG_KEY]
    for name, (shape, dtype) in expected.items():
        if name in found and (tuple(found[name][0]), found[name][1]) != (tuple(shape), dtype):
            problems.append(f"{name}: expected {tuple(shape)} {dtype}, got {tuple(found[name][0])} {found[name][1]}")
    more = len(problems) - _MAX_PROBLEMS
    return "\n  ".join(problems[:_MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else []))


class Parameter(Tensor):
    """A Tensor that is a module's parameter (PyTorch's ``nn.Parameter(data=None, requires_grad=True)``).

    A leaf with memory of its own (``data`` is copied, as every Tensor that requires grad). As a module attribute
    it is a parameter even when frozen (``requires_grad=False``), so it stays in ``parameters()`` and
    ``state_dict()``; results of operations on it are plain Tensors.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        super().__init__(np.zeros(0, np.float32) if data is None else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _is_parameter(value: Any) -> bool:
    return isinstance(value, Parameter) or (isinstance(value, Tensor) and value.requires_grad)


def _class_key(cls: type) -> str:
    """The name a saved description gives a class: its module and qualified name
    (``tinygrad_like.nn.layers.Linear``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def output_tensors(out: Any, kinds: tuple[type, ...] = (Tensor,)) -> list[Any]:
    """The tensors (instances of ``kinds``) of a forward's result or a call's arguments, in order: itself, or
    those in (nested) tuples, lists and dicts (keyword arguments); anything else (None, numbers) is skipped."""
    if isinstance(out, kinds):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for item in out for t in output_tensors(item, kinds)] if isinstance(out, (tuple, list)) else []


_PATH_KEY = "_tinygrad_like_module_path"  # on an exception: [modules it left, innermost first; message; note]


def _path_in(outer: Module, inner: Module) -> str | None:
    """``inner``'s path among ``outer``'s sub-modules ('' for ``outer`` itself), or None if it is not one."""
    return next((path for path, module in outer.named_modules() if module is inner), None)


def _name_module_path(e: Exception, module: Module) -> None:
    """Say in ``e`` which module it was raised in, by its path from ``module``, the call it is now leaving.

    Run on the way out of every ``Module.__call__`` (only when something was raised): the exception collects the
    modules it leaves, so the outermost call, the last to run this, writes the whole path (``blocks.1`` from a
    ModuleList that was indexed, not called). The exception stays the same object (its type, attributes and
    traceback kept): a message that is its one string argument becomes ``path (Type): message``; any other
    exception (a KeyError's key, say) gets the path as a note instead (Python 3.11+).
    """
    try:
        state = e.__dict__.setdefault(_PATH_KEY, [[], None, None])
    except AttributeError:  # an exception type without attributes of its own: left as it is
        return
    chain, message, note = state
    chain.append(module)
    path, inner = "", chain[0]
    for outer, nested in zip(chain[:0:-1], chain[-2::-1]):  # from the outermost call inwards
        name = _path_in(outer, nested)
        if name is None:  # called without being held (e.g. passed in as an argument): named from it
            path = ""
        elif name:
            path = f"{path}.{name}" if path else name
    if not path:  # raised in the called module's own code: nothing to add
        return
    where = f"{path} ({type(inner).__name__})"
    if message is None and len(e.args) == 1 and isinstance(e.args[0], str) and str(e) == e.args[0]:
        message = state[1] = e.args[0]
    if message is not None:
        prefix = f"{type(inner).__name__}: "  # "Type: message" from the module itself says its type once
        e.args = (f"{where}: {message[len(prefix):] if message.startswith(prefix) else message}",)
    elif hasattr(e, "add_note"):
        if note is not None and note in getattr(e, "__notes__", ()):
            e.__notes__.remove(note)
        state[2] = f"in the module {where}"
        e.add_note(state[2])


class Module:
    """Base class: subclasses set Tensors and Modules as attributes and define ``forward``.

    No ``super().__init__()`` is needed (PyTorch code that calls it works as well): ``training`` (True until
    ``eval()``) and the buffer names have class defaults, and the parameters and sub-modules are found among the
    attributes when asked for (no ``__setattr__`` bookkeeping).
    """

    training: bool = True
    _buffer_names: tuple[str, ...] = ()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``forward`` on the arguments, its result tagged as this call (``mark_call``). An exception raised
        inside names the module where it happened by its path from this one (``blocks.1.attn.proj (Linear): ...``,
        see ``_name_module_path``)."""
        try:
            out = self.forward(*args, **kwargs)
        except Exception as e:
            _name_module_path(e, self)
            raise
        return self.mark_call(out, *args)

    def mark_call(self, out: Any, *inputs: Any) -> Any:
        """Tag the graph nodes that made ``out`` (a Tensor, or the Tensors in nested tuples and lists, as a
        recurrent layer returns) as this module's call on ``inputs``; returns ``out``.

        ``__call__`` does it for every call, so drawings can group a layer's operations into a cluster without
        any registry: the tag lives on the nodes and goes with them (one tag object for all the outputs of one
        call). Code that computes a module's output without calling it (e.g. an unfused version of a layer) can
        call this itself.
        """
        outputs = [t for t in output_tensors(out) if t.grad_fn is not None and not any(a is t for a in inputs)]
        if outputs:  # a module that returns its input made nothing
            call = (self, tuple(a for a in inputs if isinstance(a, Tensor)))
            for t in outputs:
                t.grad_fn.module_calls = getattr(t.grad_fn, "module_calls", ()) + (call,)  # innermost call first
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

    # -- the tree: children, modules, parameters, buffers ---------------------------------------------------
    def _children(self) -> Iterator[tuple[str, Any]]:
        """Every Tensor and Module directly held, with its name: attributes, the items of list, tuple and dict
        attributes (``blocks.0``, ``heads.key``), and a container's modules (its ``_modules``, under their keys)."""
        for name, value in vars(self).items():
            if name == "_modules":  # a container's own modules: named by their keys alone, as PyTorch's
                items: Any = value.items()
                name = ""
            elif isinstance(value, (list, tuple)):
                items = enumerate(value)
            elif isinstance(value, dict):
                items = value.items()
            else:
                if isinstance(value, (Tensor, Module)):
                    yield name, value
                continue
            for key, item in items:
                if isinstance(item, (Tensor, Module)):
                    yield (f"{name}.{key}" if name else str(key)), item

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their names (a module held twice comes once)."""
        seen: set[int] = set()
        for name, value in self._children():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``) and every sub-module, depth first; a module held in several places
        comes once (under its first name) unless ``remove_duplicate=False``."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, value in self._children():
            if isinstance(value, Module):
                yield from value.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first (as ``named_modules``)."""
        for _, module in self.named_modules():
            yield module

    def _own_state(self) -> Iterator[tuple[str, Tensor, bool]]:
        """(name, tensor, is_buffer) for this module's own parameters then buffers, sub-modules left out."""
        for name, value in self._children():
            if _is_parameter(value) and name not in self._buffer_names:
                yield name, value, False
        for name in self._buffer_names:
            value = getattr(self, name)
            if isinstance(value, Tensor):
                yield name, value, True

    def _named_state(self, prefix: str, recurse: bool, kinds: tuple[bool, ...]) -> Iterator[tuple[str, Tensor]]:
        """Parameters (``kinds`` holding False) and/or buffers (True) with dotted names, module by module as
        PyTorch's ``state_dict``; a Tensor held in several places comes once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, value, is_buffer in module._own_state():
                if is_buffer in kinds and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Every parameter (a ``Parameter`` or a Tensor attribute with ``requires_grad``, also inside
        sub-modules, lists, tuples and dicts; buffers excepted) with its dotted name; a Tensor shared by several
        modules comes once. ``recurse=False``: this module's own only."""
        return self._named_state(prefix, recurse, (False,))

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Every registered buffer (see ``register_buffer``) with its dotted name, sub-modules included."""
        return self._named_state(prefix, recurse, (True,))

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The tensors of ``named_buffers``."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

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

    def _check_new_name(self, name: Any, op: str, kind: type) -> None:
        """PyTorch's rules for a new parameter's or sub-module's name: a non-empty str without '.', not the name
        of another attribute or method (replacing one of the same kind is allowed)."""
        if not isinstance(name, str):
            raise TypeError(f"{op}: name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{op}: name must be non-empty and without '.', got {name!r}")
        current = vars(self).get(name, getattr(type(self), name, None))
        if (name in vars(self) or hasattr(type(self), name)) and not (current is None or isinstance(current, kind)):
            raise KeyError(f"{op}: {type(self).__name__} already has an attribute {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (an ``nn.Parameter``, or None for an absent one) as parameter ``name``."""
        self._check_new_name(name, "register_parameter", Tensor)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name} must be an nn.Parameter or None, got "
                            f"{type(param).__name__}; wrap it: nn.Parameter(tensor)")
        setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add ``module`` (or None) as sub-module ``name``; ``register_module`` is the same."""
        self._check_new_name(name, "add_module", Module)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name} must be a Module or None, got {type(module).__name__}")
        self._set_child(name, module)

    register_module = add_module

    def _set_child(self, name: str, module: Module | None) -> None:
        setattr(self, name, module)  # containers keep theirs in ``_modules``

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first, depth first) and then on this module; returns self.
        E.g. ``model.apply(init_weights)`` with ``def init_weights(m): if isinstance(m, nn.Linear): ...``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (``False`` freezes them: they keep their values under an
        optimizer, and stay parameters); returns self."""
        for p in self.parameters():
            if not isinstance(p, Parameter):
                p.__class__ = Parameter  # the same object (optimizers hold it), now a parameter even when frozen
            p.requires_grad_(requires_grad)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``to(dtype)``, ``to(tensor)`` (its dtype), ``to("cpu")`` / ``to(device)``, also as ``device=``,
        ``dtype=`` keywords: floating-point parameters and buffers (and their gradients) are cast to the dtype,
        in place; the one device is the CPU, any other is refused by name. Returns self."""
        dtype = device_and_dtype("to", *args, **kwargs)
        if dtype is not None:
            if dtype.kind != "f":
                raise TypeError(f"to: nn.Module.to only accepts floating point dtypes, got {dtype}")
            for _, t in self._named_state("", True, (False, True)):
                if t.dtype.kind == "f":
                    t.data = t.data.astype(dtype)
                    if t.grad is not None:
                        t.grad.data = t.grad.data.astype(dtype)
        return self

    def cpu(self) -> Module:
        """This module (it is on the CPU)."""
        return self

    def double(self) -> Module:
        """Floating-point parameters and buffers as float64 (``to(np.float64)``)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Floating-point parameters and buffers as float32 (``to(np.float32)``)."""
        return self.to(np.float32)

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
        return dict(self._named_state("", True, (False, True)))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's and buffer's array, by name, in PyTorch's order (module by module: its
        parameters, then its buffers)."""
        return {name: p.data.copy() for name, p in self._state_tensors().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays into the parameters and buffers; every missing, unexpected or mismatched entry is reported
        at once."""
        params = self._state_tensors()
        values = {name: np.asarray(v.data if isinstance(v, Tensor) else v) for name, v in state.items()}
        problems = state_problems({name: (p.shape, p.dtype) for name, p in params.items()},
                                  {name: (v.shape, v.dtype) for name, v in values.items()})
        if problems:
            raise ValueError(f"load_state_dict: {type(self).__name__} does not match the state:\n  {problems}")
        with no_grad():  # into each parameter's own memory (and layout), as PyTorch's copy_
            for name, p in params.items():
                p.assign(state[name])

    def _description(self) -> dict[str, Any] | None:
        """``{"class": ..., "args": config()}``, or None when ``config()`` is None (see ``config.describe``)."""
        config = self.config()
        return None if config is None else {"class": _class_key(type(self)), "args": config}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters (and, for the layers of ``nn`` and containers of them, the constructor arguments
        that ``Module.load`` rebuilds the module from) to an ``.npz`` file, atomically."""
        from .config import describe  # here: config imports the layers, which import this module

        if not str(path):
            raise ValueError("save: empty path; give a file name such as model.npz")
        path = Path(path)
        arrays = self.state_dict()
        try:
            description = describe(self)
        except ValueError as e:
            raise ValueError(f"save: {type(self).__name__} cannot be described for Module.load ({e})") from None
        if description is not None:
            arrays[CONFIG_KEY] = np.array(json.dumps(description))
        with atomic_write(path) as f:  # the old file stays intact until the new one is complete
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Module:
        """Rebuild a module saved by ``save`` (its class and constructor arguments are in the file).

        The file is untrusted input, checked before anything is built: the description must name a layer of
        ``nn`` (or a container of them) with arguments of the documented types only, and the arrays' shapes and
        dtypes (from their headers) must be those the arguments imply; only then are the arrays read and the
        module built. Anything else is a ``ValueError`` naming the entry.
        """
        from .config import plan  # here: config imports the layers, which import this module

        headers = npz_headers(path)
        if CONFIG_KEY not in headers:
            raise ValueError(f"load: {path} holds no module description; build the module yourself and call "
                             "module.load_state_dict(nn.read_npz(path))")
        shape, dtype = headers.pop(CONFIG_KEY)
        try:
            if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_CONFIG_CHARS:
                raise ValueError(f"it must be a text of at most {MAX_CONFIG_CHARS} characters, got a {dtype} array "
                                 f"of shape {shape}")
            text = str(read_npz(path, keys=[CONFIG_KEY])[CONFIG_KEY])
            built = plan(parse_config(text, path, max_chars=MAX_CONFIG_CHARS))
        except ValueError as e:
            raise ValueError(f"load: {path} has an unusable module description ({e})") from None
        if not issubclass(built.cls, cls):
            raise TypeError(f"load: {path} holds a {built.cls.__name__}, not a {cls.__name__}")
        expected = built.state()
        problems = state_problems(expected, headers)
        if problems:  # refused from the headers: nothing read, nothing built
            raise ValueError(f"load: the arrays of {path} do not match the {built.cls.__name__} its description "
                             f"builds:\n  {problems}")
        state = read_npz(path, keys=list(expected))
        try:
            module = built.build()
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"load: {path} has an unusable module description ({e})") from None
        module.load_state_dict(state)
        return module

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, value in self._children():
            text = repr(value) if isinstance(value, Module) else f"Tensor{tuple(value.shape)}"
            lines.append(f"  ({name}): " + text.replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"
