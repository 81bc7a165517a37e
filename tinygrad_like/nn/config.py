"""What a saved module description may say, checked before anything is built (API.md, "Files never run code").

A weights file is untrusted input. For each layer class of ``nn`` that a file can rebuild, ``LAYERS`` gives the
documented type of every constructor argument (ints in a range, finite floats, bools, tuples of them, names from a
fixed set) and the parameter and buffer shapes the arguments imply. ``Module.load`` turns a description into a
``Plan`` (every value checked, no other key, class or type accepted), compares the plan's shapes with the file's
array headers, and only then reads the data and builds; ``export.torch_source`` writes only values that pass the
same checks. Anything else is a ``ValueError`` naming the entry.
"""

from __future__ import annotations

import inspect
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import is_int, is_number
from .._files import Header
from .attention import MultiheadAttention
from .layers import (
    ACTIVATIONS,
    ELU,
    GELU,
    MLP,
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .module import Module, _class_key
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

MAX_SIZE = 2**31 - 1  # a layer size (features, channels, embeddings, ...)
MAX_DIMS = 64  # NumPy's limit on axes: bounds dims (Flatten, Softmax) and shapes
MAX_LAYERS = 1024  # stacked recurrent layers, MLP sizes
MAX_NESTING = 8  # containers inside containers
MAX_NAME = 256  # characters of a container key

Check = Callable[[Any], Any]  # a documented argument type: the value (lists as tuples), or a ValueError saying why


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a crafted value may be a megabyte long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def integer(low: int, high: int) -> Check:
    """An int (not a bool) in [low, high]."""
    def check(value: Any) -> int:
        if not is_int(value):
            raise ValueError(f"must be an int, got {_short(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be an int from {low} to {high}, got {value}")
        return int(value)
    return check


def real(low: float = -math.inf, high: float = math.inf) -> Check:
    """A finite number (an int or float, not a bool) in [low, high], as a float."""
    def check(value: Any) -> float:
        if not is_number(value):
            raise ValueError(f"must be a number, got {_short(value)}")
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"must be a finite number from {low} to {high}, got {value}")
        return float(value)
    return check


def flag(value: Any) -> bool:
    """True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"must be true or false, got {_short(value)}")
    return bool(value)


def choice(*names: str) -> Check:
    """One of ``names`` (strings written as they are: nothing else is ever a string argument)."""
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in names:
            raise ValueError(f"must be one of {', '.join(map(repr, names))}, got {_short(value)}")
        return value
    return check


def optional(inner: Check) -> Check:
    """None, or what ``inner`` accepts."""
    return lambda value: None if value is None else inner(value)


def several(inner: Check, lengths: range, scalar: bool = True) -> Check:
    """A list or tuple of ``inner`` values whose length is in ``lengths`` (as a tuple), or (``scalar``) one value."""
    def check(value: Any) -> Any:
        if scalar and not isinstance(value, (list, tuple)):
            return inner(value)
        if not isinstance(value, (list, tuple)) or len(value) not in lengths:
            raise ValueError(f"must be {'an int or ' if scalar else ''}a list of {lengths.start} to "
                             f"{lengths.stop - 1} values, got {_short(value)}")
        return tuple(inner(v) for v in value)
    return check


SIZE, SIZE0 = integer(1, MAX_SIZE), integer(0, MAX_SIZE)
DIM = integer(-MAX_DIMS, MAX_DIMS - 1)
INDEX = integer(-MAX_SIZE, MAX_SIZE)
PROBABILITY = real(0.0, 1.0)
DTYPE = choice("float16", "float32", "float64")
PAIR, PAIR0 = several(SIZE, range(2, 3)), several(SIZE0, range(2, 3))
SHAPE = several(SIZE, range(1, MAX_DIMS + 1))


# ----------------------------------------------------------------------------------------------------------
# The shapes a layer's arguments imply: name -> (shape, dtype), computed without allocating anything
# ----------------------------------------------------------------------------------------------------------


def _state(dtype: Any, **shapes: tuple[int, ...] | None) -> dict[str, Header]:
    """``shapes`` (None: absent) with ``dtype``."""
    return {name: (tuple(shape), np.dtype(dtype)) for name, shape in shapes.items() if shape is not None}


def _dtype(args: dict[str, Any]) -> np.dtype:
    return np.dtype(args.get("dtype") or np.float32)


def _as_tuple(value: int | tuple[int, ...], n: int = 1) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def _linear(a: dict[str, Any]) -> dict[str, Header]:
    out = a["out_features"]
    return _state(_dtype(a), weight=(out, a["in_features"]), bias=(out,) if a["bias"] else None)


def _conv(n: int) -> Callable[[dict[str, Any]], dict[str, Header]]:
    def state(a: dict[str, Any]) -> dict[str, Header]:
        out = a["out_channels"]
        return _state(_dtype(a), weight=(out, a["in_channels"], *_as_tuple(a["kernel_size"], n)),
                      bias=(out,) if a["bias"] else None)
    return state


def _embedding(a: dict[str, Any]) -> dict[str, Header]:
    return _state(_dtype(a), weight=(a["num_embeddings"], a["embedding_dim"]))


def _batch_norm(a: dict[str, Any]) -> dict[str, Header]:
    c, affine, tracked = (a["num_features"],), a["affine"], a["track_running_stats"]
    return {**_state(_dtype(a), weight=c if affine else None, bias=c if affine and a["bias"] else None,
                     running_mean=c if tracked else None, running_var=c if tracked else None),
            **_state(np.int64, num_batches_tracked=() if tracked else None)}


def _layer_norm(a: dict[str, Any]) -> dict[str, Header]:
    shape, affine = _as_tuple(a["normalized_shape"]), a["elementwise_affine"]
    return _state(_dtype(a), weight=shape if affine else None, bias=shape if affine and a["bias"] else None)


def _group_norm(a: dict[str, Any]) -> dict[str, Header]:
    c, affine = (a["num_channels"],), a["affine"]
    return _state(_dtype(a), weight=c if affine else None, bias=c if affine and a["bias"] else None)


def _rms_norm(a: dict[str, Any]) -> dict[str, Header]:
    return _state(_dtype(a), weight=_as_tuple(a["normalized_shape"]) if a["elementwise_affine"] else None)


def _cell(gates: int) -> Callable[[dict[str, Any]], dict[str, Header]]:
    def state(a: dict[str, Any]) -> dict[str, Header]:
        rows, bias = gates * a["hidden_size"], a["bias"]
        return _state(_dtype(a), weight_ih=(rows, a["input_size"]), weight_hh=(rows, a["hidden_size"]),
                      bias_ih=(rows,) if bias else None, bias_hh=(rows,) if bias else None)
    return state


def _recurrent(gates: int) -> Callable[[dict[str, Any]], dict[str, Header]]:
    def state(a: dict[str, Any]) -> dict[str, Header]:
        hidden, proj, bias = a["hidden_size"], a.get("proj_size", 0), a["bias"]
        rows, out, directions = gates * hidden, proj or hidden, 2 if a["bidirectional"] else 1
        shapes: dict[str, Header] = {}
        for layer in range(a["num_layers"]):
            for suffix in [f"_l{layer}", f"_l{layer}_reverse"][:directions]:
                shapes.update(_state(
                    _dtype(a), **{f"weight_ih{suffix}": (rows, a["input_size"] if layer == 0 else out * directions),
                                  f"weight_hh{suffix}": (rows, out), f"bias_ih{suffix}": (rows,) if bias else None,
                                  f"bias_hh{suffix}": (rows,) if bias else None,
                                  f"weight_hr{suffix}": (proj, hidden) if proj else None}))
        return shapes
    return state


def _attention(a: dict[str, Any]) -> dict[str, Header]:
    e, bias = a["embed_dim"], a["bias"]
    kdim, vdim = a["kdim"] or e, a["vdim"] or e
    same = kdim == e and vdim == e
    return _state(_dtype(a), in_proj_weight=(3 * e, e) if same else None, q_proj_weight=None if same else (e, e),
                  k_proj_weight=None if same else (e, kdim), v_proj_weight=None if same else (e, vdim),
                  in_proj_bias=(3 * e,) if bias else None, bias_k=(1, 1, e) if a["add_bias_kv"] else None,
                  bias_v=(1, 1, e) if a["add_bias_kv"] else None, **{"out_proj.weight": (e, e)},
                  **{"out_proj.bias": (e,) if bias else None})


def _mlp(a: dict[str, Any]) -> dict[str, Header]:
    sizes = a["layers"]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        shapes.update({f"layers.{i}.weight": (n_out, n_in), f"layers.{i}.bias": (n_out,)})
    return _state(_dtype(a), **shapes)


def _nothing(a: dict[str, Any]) -> dict[str, Header]:
    return {}


@dataclass(frozen=True)
class Layer:
    """A loadable class: its arguments' types (every other key is refused) and the state they imply."""

    args: dict[str, Check]
    state: Callable[[dict[str, Any]], dict[str, Header]] = _nothing


_RECURRENT = {"input_size": SIZE, "hidden_size": SIZE, "bias": flag, "dtype": DTYPE}
_SEQUENCE = {**_RECURRENT, "num_layers": integer(1, MAX_LAYERS), "batch_first": flag, "dropout": PROBABILITY,
             "bidirectional": flag}
_BATCH_NORM = Layer({"num_features": SIZE, "eps": real(), "momentum": optional(real()), "affine": flag,
                     "track_running_stats": flag, "bias": flag, "dtype": DTYPE}, _batch_norm)
_PADDING_MODE = choice("zeros", "reflect", "replicate", "circular")
_CONTAINER = Layer({"modules": lambda value: value})  # checked entry by entry in ``_children``

LAYERS: dict[type[Module], Layer] = {
    Linear: Layer({"in_features": SIZE0, "out_features": SIZE0, "bias": flag, "dtype": DTYPE}, _linear),
    Conv1d: Layer({"in_channels": SIZE, "out_channels": SIZE, "kernel_size": several(SIZE, range(1, 2)),
                   "stride": several(SIZE, range(1, 2)), "padding": several(SIZE0, range(1, 2)), "bias": flag,
                   "padding_mode": _PADDING_MODE, "dtype": DTYPE}, _conv(1)),
    Conv2d: Layer({"in_channels": SIZE, "out_channels": SIZE, "kernel_size": PAIR, "stride": PAIR,
                   "padding": PAIR0, "bias": flag, "padding_mode": _PADDING_MODE, "dtype": DTYPE}, _conv(2)),
    MaxPool2d: Layer({"kernel_size": PAIR, "stride": optional(PAIR)}),
    AvgPool2d: Layer({"kernel_size": PAIR, "stride": optional(PAIR), "padding": PAIR0, "ceil_mode": flag,
                      "count_include_pad": flag, "divisor_override": optional(SIZE)}),
    AdaptiveAvgPool2d: Layer({"output_size": several(optional(SIZE), range(2, 3))}),
    Flatten: Layer({"start_dim": DIM, "end_dim": DIM}),
    Dropout: Layer({"p": PROBABILITY}),
    Identity: Layer({}),
    ReLU: Layer({"inplace": flag}),
    Sigmoid: Layer({}),
    Tanh: Layer({}),
    GELU: Layer({"approximate": choice("none", "tanh")}),
    SiLU: Layer({"inplace": flag}),
    LeakyReLU: Layer({"negative_slope": real(), "inplace": flag}),
    Softplus: Layer({"beta": real(), "threshold": real()}),
    ELU: Layer({"alpha": real(), "inplace": flag}),
    Softmax: Layer({"dim": DIM}),
    LogSoftmax: Layer({"dim": DIM}),
    Embedding: Layer({"num_embeddings": SIZE0, "embedding_dim": SIZE0, "padding_idx": optional(INDEX),
                      "dtype": DTYPE}, _embedding),
    BatchNorm1d: _BATCH_NORM,
    BatchNorm2d: _BATCH_NORM,
    LayerNorm: Layer({"normalized_shape": SHAPE, "eps": real(), "elementwise_affine": flag, "bias": flag,
                      "dtype": DTYPE}, _layer_norm),
    GroupNorm: Layer({"num_groups": SIZE, "num_channels": SIZE, "eps": real(), "affine": flag, "bias": flag,
                      "dtype": DTYPE}, _group_norm),
    RMSNorm: Layer({"normalized_shape": SHAPE, "eps": optional(real()), "elementwise_affine": flag, "dtype": DTYPE},
                   _rms_norm),
    RNNCell: Layer({**_RECURRENT, "nonlinearity": choice("tanh", "relu")}, _cell(1)),
    LSTMCell: Layer(_RECURRENT, _cell(4)),
    GRUCell: Layer(_RECURRENT, _cell(3)),
    RNN: Layer({**_SEQUENCE, "nonlinearity": choice("tanh", "relu")}, _recurrent(1)),
    LSTM: Layer({**_SEQUENCE, "proj_size": SIZE0}, _recurrent(4)),
    GRU: Layer(_SEQUENCE, _recurrent(3)),
    MultiheadAttention: Layer({"embed_dim": SIZE, "num_heads": SIZE, "dropout": PROBABILITY, "bias": flag,
                               "add_bias_kv": flag, "add_zero_attn": flag, "kdim": optional(SIZE),
                               "vdim": optional(SIZE), "batch_first": flag, "dtype": DTYPE}, _attention),
    MLP: Layer({"layers": several(SIZE, range(2, MAX_LAYERS + 1), scalar=False),
                "activation": choice(*ACTIVATIONS), "dtype": DTYPE}, _mlp),
    Sequential: _CONTAINER,
    ModuleList: _CONTAINER,
    ModuleDict: _CONTAINER,
}
_BY_NAME = {cls.__name__: cls for cls in LAYERS}


def layer_class(name: Any) -> type[Module]:
    """The loadable class ``name`` stands for (``Linear``, or its full name ``tinygrad_like.nn.layers.Linear`` as
    ``Module.save`` writes it); any other name, or anything but a str, is refused."""
    cls = _BY_NAME.get(name.rsplit(".", 1)[-1]) if isinstance(name, str) and len(name) <= MAX_NAME else None
    if cls is None or name not in (cls.__name__, _class_key(cls)):
        raise ValueError(f"class {_short(name)} is not a layer of tinygrad_like.nn that a file can rebuild "
                         f"({', '.join(sorted(_BY_NAME))})")
    return cls


def check_key(key: Any) -> str:
    """A container key (a layer's name in a Sequential or ModuleDict): a printable str without '.', at most
    ``MAX_NAME`` characters (written as a quoted string literal, never as code)."""
    if not (isinstance(key, str) and 0 < len(key) <= MAX_NAME and key.isprintable() and "." not in key):
        raise ValueError(f"a layer's key must be a printable name of 1 to {MAX_NAME} characters without '.', got "
                         f"{_short(key)}")
    return key


def checked_args(cls: type[Module], args: Any, where: str = "") -> dict[str, Any]:
    """``args`` (a dict of constructor arguments of ``cls``, as a file or ``config()`` gives them) with every value
    checked and converted (lists as tuples), missing ones at the constructor's defaults; a ValueError names the
    entry otherwise."""
    layer, name = LAYERS[cls], f"{where}{cls.__name__}"
    if not isinstance(args, dict):
        raise ValueError(f"{name}: the arguments must be an object, got {_short(args)}")
    unknown = [key for key in args if key not in layer.args]
    if unknown:
        raise ValueError(f"{name}: unknown argument {_short(unknown[0])}; its arguments: "
                         f"{', '.join(layer.args) or 'none'}")
    defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values()
                if p.name in layer.args and p.default is not inspect.Parameter.empty}
    missing = [key for key in layer.args if key not in args and key not in defaults]
    if missing:
        raise ValueError(f"{name}: missing argument {missing[0]}")
    checked = dict(defaults)
    for key, value in args.items():
        try:
            checked[key] = layer.args[key](value)
        except ValueError as e:
            raise ValueError(f"{name} argument {key}: {e}") from None
    return checked


@dataclass
class Plan:
    """A module to build: its class, checked arguments and (containers) the plans of its layers by key."""

    cls: type[Module]
    args: dict[str, Any]
    children: list[tuple[str, Plan]] = field(default_factory=list)

    def state(self, prefix: str = "") -> dict[str, Header]:
        """The (shape, dtype) of every parameter and buffer the module will have, by ``state_dict`` name."""
        own = {f"{prefix}{name}": header for name, header in LAYERS[self.cls].state(self.args).items()}
        for key, child in self.children:
            own.update(child.state(f"{prefix}{key}."))
        return own

    def build(self) -> Module:
        """The module (its parameters freshly initialised)."""
        if LAYERS[self.cls] is not _CONTAINER:
            return self.cls(**self.args)
        built = [(key, child.build()) for key, child in self.children]
        if self.cls is ModuleList:
            return ModuleList([module for _, module in built])
        return self.cls(OrderedDict(built)) if self.cls is Sequential else self.cls(built)


def plan(description: Any, where: str = "", depth: int = 0) -> Plan:
    """The ``Plan`` of a saved description ``{"class": name, "args": {...}}``, every part checked; a ValueError
    naming the entry (``where``: the container keys leading to it) otherwise."""
    if not isinstance(description, dict) or set(description) != {"class", "args"}:
        raise ValueError(f"{where or 'the description'}: must be an object with exactly 'class' and 'args', got "
                         f"{_short(description)}")
    try:
        cls = layer_class(description["class"])
    except ValueError as e:
        raise ValueError(f"{where}{e}") from None
    args = checked_args(cls, description["args"], where)
    if LAYERS[cls] is not _CONTAINER:
        return Plan(cls, args)
    if depth >= MAX_NESTING:
        raise ValueError(f"{where}{cls.__name__}: containers nested deeper than {MAX_NESTING} levels")
    modules = args.get("modules")
    return Plan(cls, {}, _children(cls, [] if modules is None else modules, where, depth))


def _children(cls: type[Module], modules: Any, where: str, depth: int) -> list[tuple[str, Plan]]:
    """The plans of a container's layers: a ModuleList's list of descriptions, a Sequential's or ModuleDict's list
    of [key, description] pairs (unique keys)."""
    if not isinstance(modules, list):
        raise ValueError(f"{where}{cls.__name__} argument modules: must be a list, got {_short(modules)}")
    pairs = list(enumerate(modules)) if cls is ModuleList else modules
    children: list[tuple[str, Plan]] = []
    keys: set[str] = set()
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ValueError(f"{where}{cls.__name__} argument modules: entry {i} must be a [key, description] "
                             f"pair, got {_short(pair)}")
        try:
            key = check_key(str(pair[0]) if cls is ModuleList else pair[0])
        except ValueError as e:
            raise ValueError(f"{where}{cls.__name__} argument modules: entry {i}: {e}") from None
        if key in keys:
            raise ValueError(f"{where}{cls.__name__} argument modules: the key {key!r} appears twice")
        keys.add(key)
        children.append((key, plan(pair[1], f"{where}{cls.__name__} argument modules: layer {key!r}: ", depth + 1)))
    return children


def describe(module: Module) -> dict[str, Any] | None:
    """What ``Module.save`` writes beside the weights: ``{"class": class_key, "args": config()}`` (containers:
    their layers' descriptions), checked as ``Module.load`` will check it (a ValueError naming the entry); None
    when some part of ``module`` is not a layer a file can rebuild (a class of one's own, a function in a
    Sequential, a layer held twice)."""
    if not all(type(m) in LAYERS for m in module.modules()):
        return None
    description = module._description()
    if description is not None:
        plan(json.loads(json.dumps(description)))  # as load will read it: tuples as lists
    return description
