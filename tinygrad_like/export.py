"""Graduating to other engines: a network trained here, run by PyTorch or ONNX Runtime with the same numbers:
``to_torch``, ``torch_source``, ``save_safetensors`` / ``load_safetensors`` (no pickle), ``to_onnx`` (each rule
says its ONNX mapping). torch, onnx, onnxruntime and safetensors are the ``export`` extra, imported when a
function needs one. See docs/export.md.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import nn
from ._files import atomic_write
from .engine import enable_grad, rules, seen_by, toposort
from .tensors import Tensor

__all__ = ["load_safetensors", "save_safetensors", "to_onnx", "to_torch", "torch_names", "torch_source"]

INSTALL = 'pip install "tinygrad_like[export]"'
ONNX_OPSET = 18


def _require(module: str, purpose: str) -> Any:
    """Import an optional package, or ImportError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{purpose} needs the {module.split('.')[0]} package: {INSTALL} (or pip install "
                          f"{module.split('.')[0]})") from None


# ----------------------------------------------------------------------------------------------------------
# PyTorch: the same structure, described once (source text), built from that description
# ----------------------------------------------------------------------------------------------------------

_TENSOR_METHODS = {"sigmoid": "nn.Sigmoid()", "relu": "nn.ReLU()", "tanh": "nn.Tanh()"}  # callables in a Sequential


def _literal(value: Any, where: str) -> str:
    """Python source for a constructor argument, written only from checked types: None, bools, ints, floats,
    names (strings such as 'tanh' or 'zeros'), and tuples of them."""
    if value is None or isinstance(value, (bool, int, np.integer)):
        return repr(value if value is None or isinstance(value, bool) else int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if np.isfinite(value) else f'float("{float(value)}")'
    if isinstance(value, str) and value.isidentifier():
        return repr(value)
    if isinstance(value, (list, tuple)):
        items = [_literal(v, where) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"torch_source: {where} has an argument {value!r} of type {type(value).__name__} that cannot "
                    "be written as PyTorch source")


def _dtype_literal(value: Any, where: str) -> str:
    """PyTorch's dtype object for a dtype name in a layer's config (``float64`` -> ``torch.float64``)."""
    if value not in ("float16", "float32", "float64"):
        raise TypeError(f"torch_source: {where} has a dtype {value!r}; PyTorch layers take float16, float32 or float64")
    return f"torch.{value}"


def _block(opening: str, items: list[str], closing: str) -> str:
    """``opening`` + one indented item a line + ``closing`` (the items' own lines indented too)."""
    if not items:
        return opening + closing
    return opening + "\n" + "".join("    " + item.replace("\n", "\n    ") + ",\n" for item in items) + closing


def _layer_source(layer: Any, where: str) -> str:
    """The PyTorch expression that builds ``layer``: a container of such expressions, one of the library's layers
    (``nn.<Class>(**config())``: their constructor arguments and state_dict keys are PyTorch's), or a Tensor
    method used as a layer in a Sequential."""
    kind = type(layer).__name__
    if isinstance(layer, (nn.Sequential, nn.ModuleDict)):
        items = list(layer._modules.items())
        sources = [_layer_source(sub, f"{where}.{key}") for key, sub in items]
        if isinstance(layer, nn.ModuleDict):
            return _block("nn.ModuleDict({", [f"{key!r}: {src}" for (key, _), src in zip(items, sources)], "})")
        if [key for key, _ in items] == [str(i) for i in range(len(items))]:
            return _block("nn.Sequential(", sources, ")")
        return _block("nn.Sequential(OrderedDict([", [f"({key!r}, {src})" for (key, _), src in zip(items, sources)],
                      "]))")
    if isinstance(layer, nn.ModuleList):
        return _block("nn.ModuleList([", [_layer_source(sub, f"{where}.{i}") for i, sub in enumerate(layer)], "])")
    method = getattr(layer, "__name__", None)
    if getattr(layer, "__qualname__", "").startswith("Tensor.") and method in _TENSOR_METHODS:
        return _TENSOR_METHODS[method]
    config = layer.config() if isinstance(layer, nn.Module) and not isinstance(layer, nn.MLP) else None
    if config is not None and type(layer).__module__.startswith(f"{nn.__name__}."):
        args = ", ".join(f"{name}={_dtype_literal(value, where) if name == 'dtype' else _literal(value, where)}"
                         for name, value in config.items())
        return f"nn.{kind}({args})"
    raise TypeError(f"to_torch: no PyTorch equivalent for {where} ({kind}); supported: the layers of "
                    "tinygrad_like.nn, Sequential, ModuleList and ModuleDict of them, MLP (to_onnx traces any "
                    "forward)")


_MLP_CLASS = '''

class MLP(nn.Module):
    """Fully connected layers with an activation between them and softmax on the output (rows are samples)."""

    def __init__(self, sizes, activation="sigmoid"):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.activation = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[activation]

    def logits(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=-1)
'''


def torch_source(module: nn.Module) -> str:
    """Python source that builds a PyTorch module equivalent to ``module`` as ``model`` (parameters not included:
    load them with ``model.load_state_dict(safetensors.torch.load_file(path))``, see ``save_safetensors``)."""
    header = ('"""A PyTorch module equivalent to a tinygrad_like ' + type(module).__name__
              + ' (written by tinygrad_like.export.torch_source)."""\n\nfrom collections import OrderedDict\n\n'
              'import torch\nfrom torch import nn\n')
    if isinstance(module, nn.MLP):
        return (header + _MLP_CLASS + f"\n\nmodel = MLP({list(module.sizes)}, activation={module.activation!r})\n")
    return header + f"\nmodel = {_layer_source(module, type(module).__name__)}\n"


def torch_names(module: nn.Module) -> dict[str, str]:
    """Our state_dict name -> PyTorch's, for the module ``torch_source`` describes: the same names, parameters and
    buffers (a Sequential's ``0.weight`` is PyTorch's ``0.weight``; an MLP's ``layers.0.weight`` its class's)."""
    torch_source(module)  # refuses what PyTorch cannot rebuild
    return {name: name for name in module.state_dict()}


def to_torch(module: nn.Module) -> Any:
    """A ``torch.nn.Module`` with the structure of ``module`` (built from ``torch_source``), its parameters and
    buffers (``state_dict``, the same names; dtype kept) and its training mode."""
    torch = _require("torch", "to_torch")
    scope: dict[str, Any] = {}
    exec(compile(torch_source(module), f"<torch_source of {type(module).__name__}>", "exec"), scope)  # noqa: S102
    model = scope["model"]
    state = module.state_dict()
    dtypes = {a.dtype for a in state.values() if a.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise TypeError(f"to_torch: the parameters mix dtypes {sorted(map(str, dtypes))}; PyTorch modules hold one")
    if dtypes:
        model = model.to(getattr(torch, str(dtypes.pop())))
    model.load_state_dict({name: torch.from_numpy(a) for name, a in state.items()}, strict=True)
    return model.train(getattr(module, "training", True))


# ----------------------------------------------------------------------------------------------------------
# safetensors: PyTorch's names and layouts, written atomically, never pickle
# ----------------------------------------------------------------------------------------------------------


def save_safetensors(module: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``module``'s ``state_dict`` (parameters and buffers) to ``path`` in the safetensors format,
    atomically, under its names, which are PyTorch's for the structures ``torch_source`` describes. Needs the
    ``safetensors`` package (no torch)."""
    st = _require("safetensors.numpy", "save_safetensors")
    if not str(path):
        raise ValueError("save_safetensors: empty path")
    arrays = {name: np.ascontiguousarray(a) for name, a in module.state_dict().items()}
    data = st.save(arrays, metadata={"format": "pt"})
    path = Path(path)
    with atomic_write(path) as f:
        f.write(data)
    return path


def load_safetensors(module: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load parameters saved by ``save_safetensors`` (or by PyTorch under the same names) into ``module``.

    Everything is checked before anything is copied: a file that is not safetensors, truncated or crafted, is a
    ``ValueError`` naming it; missing, unexpected and mismatched entries are all reported at once, as
    ``load_state_dict`` reports them, and the module is left as it was.
    """
    st = _require("safetensors.numpy", "load_safetensors")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_safetensors: {path} does not exist or is not a file")
    try:
        arrays = st.load(path.read_bytes())
    except Exception as e:  # safetensors raises its own error types (SafetensorError, ...) for bad files
        raise ValueError(f"load_safetensors: {path} is not a readable safetensors file ({e})") from None
    module.load_state_dict(arrays)
    return module


# ----------------------------------------------------------------------------------------------------------
# ONNX: trace the recorded forward graph, one or a few ONNX nodes per rule
# ----------------------------------------------------------------------------------------------------------


def to_onnx(module_or_fn: nn.Module | Callable[..., Any], example_input: Any, path: str | os.PathLike) -> Path:
    """Trace ``module_or_fn`` on ``example_input`` and write the forward graph as an ONNX model to ``path``.

    A module is traced in eval mode (dropout off, batch normalisation with its running statistics) and put back
    in the mode it had. The input is a float tensor, or an integer one (indices, e.g. for an ``Embedding``,
    which becomes a Gather); a tuple of tensors gives several inputs (``input_0``, ``input_1``, ...: attention's
    query, key and value). The forward may return a Tensor or (nested) tuples of them, as the recurrent layers
    do (``output_0``, ``output_1``, ... in order; None entries are left out). The first axis of the inputs is the
    batch: traced twice (the example, and one more sample), every size that follows it stays free in the model
    (``N``; reshapes infer it), every other size is the example's; a forward whose ops change with the first axis
    (an RNN unrolled over a sequence-first input) is exported at the example's sizes, and a constant that depends
    on the batch size (a mean over the batch) is refused. Parameters and buffers become initializers under their
    names. An op with no ONNX mapping raises ``NotImplementedError`` naming it. The model opens in
    netron (netron.app) and runs in ONNX Runtime.
    """
    onnx = _require("onnx", "to_onnx")
    several = isinstance(example_input, tuple) and all(isinstance(e, (Tensor, np.ndarray)) for e in example_input)
    examples = [e if isinstance(e, Tensor) else Tensor(np.asarray(e)) for e in
                (example_input if several else (example_input,))]
    for x in examples:
        if x.dtype.kind not in "fiu":
            raise TypeError(f"to_onnx: the example input must be a float or integer tensor, got {x.dtype}")
    traced, outs = _trace(module_or_fn, [x.data for x in examples])
    # Traced again with one more sample: the sizes that change are the ones that follow the batch (free in the
    # model); a forward whose ops change with the batch (an RNN unrolled over axis 0) is exported at fixed sizes
    _, outs_more = _trace(module_or_fn, [np.concatenate([x.data, x.data[:1]]) if x.ndim else x.data
                                         for x in examples])
    names = ({id(t): name for name, t in [*module_or_fn.named_parameters(), *module_or_fn.named_buffers()]}
             if isinstance(module_or_fn, nn.Module) else {})
    order, order_more = _recorded(outs), _recorded(outs_more)
    graph = _OnnxGraph(onnx, traced, names, _free_axes(order, order_more, names))
    for t in order:
        if t.grad_fn is not None:
            graph.add(t)
    model = graph.model(outs)
    onnx.checker.check_model(model)
    path = Path(path)
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
    return path


def _trace(module_or_fn: Any, arrays: list[np.ndarray]) -> tuple[list[Tensor], list[Tensor]]:
    """The forward on ``arrays`` recorded (a module in eval mode, put back after): (its inputs, its outputs)."""
    # a float input requires grad, so that every op on it is recorded; integer indices reach the graph through
    # the ops that take them with a parameter (an embedding)
    traced = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    was_training = getattr(module_or_fn, "training", None)
    if was_training is not None:
        module_or_fn.eval()
    try:
        with enable_grad():
            result = module_or_fn(*traced)
    finally:
        if was_training:
            module_or_fn.train()
    outs = _tensors_in(result)
    if not outs:
        raise TypeError(f"to_onnx: the forward must return a Tensor or tuples of Tensors, got {type(result).__name__}")
    return traced, outs


def _recorded(outs: list[Tensor]) -> list[Tensor]:
    """Every tensor the outputs depend on, inputs before the ops using them, each once."""
    seen: set[int] = set()
    return [t for out in outs for t in toposort(out) if not (id(t) in seen or seen.add(id(t)))]


def _free_axes(order: list[Tensor], order_more: list[Tensor], params: dict[int, str]) -> dict[int, tuple[int, ...]]:
    """For each tensor of the first trace, the axes whose size changed with one more sample in the second; empty
    when the two traces differ in their ops (the model is then exported at the example's sizes). A constant that
    changed with the batch (a mean's 1/N over the batch axis) cannot be written as one value: refused."""
    ops = [getattr(t.grad_fn, "name", None) for t in order]
    if ops != [getattr(t.grad_fn, "name", None) for t in order_more]:
        return {}
    free = {}
    for i, (t, u) in enumerate(zip(order, order_more)):
        if t.ndim != u.ndim:
            return {}
        axes = tuple(a for a, (m, n) in enumerate(zip(t.shape, u.shape)) if m != n)
        if axes:
            free[id(t)] = axes
        elif t.grad_fn is None and id(t) not in params and not np.array_equal(t.data, u.data):
            user = next((v.grad_fn for v in order[i:]
                         if v.grad_fn is not None and any(x is t for x in v.grad_fn.inputs)), None)
            raise NotImplementedError(
                f"to_onnx: {user.label() if user else 'an op'} uses a constant of shape {t.shape} that depends on "
                "the input (e.g. a mean's count over the batch axis, or a mask computed from the input's values "
                "by a comparison, which the graph does not record), so the exported model would be wrong on "
                "other inputs")
    return free


def _tensors_in(result: Any) -> list[Tensor]:
    """The Tensors of a forward's result, in order: itself, or those in (nested) tuples and lists; None skipped."""
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result if item is not None for t in _tensors_in(item)] if all(
            item is None or isinstance(item, (Tensor, tuple, list)) for item in result) else []
    return []


class _OnnxGraph:
    """The ONNX nodes, initializers and value names of one traced graph."""

    def __init__(self, onnx: Any, inputs: list[Tensor], names: dict[int, str], free: dict[int, tuple[int, ...]]
                 ) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.inputs, self.param_names, self.free = inputs, names, free
        self.input_names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
        self.value: dict[int, str] = {id(t): name for t, name in zip(inputs, self.input_names)}
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.dtype = inputs[0].dtype

    def name_of(self, t: Tensor) -> str:
        """The ONNX value of tensor ``t``; a leaf becomes an initializer (a parameter under its own name)."""
        key = id(t)
        if key not in self.value:
            if t.grad_fn is not None:
                raise RuntimeError(f"to_onnx: the graph reaches {t.op} before it was translated")
            if self.free_axes(t):
                self.value[key] = self._filled_like_batch(t)
            else:
                name = self.param_names.get(key) or f"constant_{len(self.initializers)}"
                self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(t.data), name))
                self.value[key] = name
        return self.value[key]

    def _filled_like_batch(self, t: Tensor) -> str:
        """A constant whose size follows the batch (a recurrent layer's zero initial state): one value repeated
        over a shape taken from the input at run time (ConstantOfShape)."""
        batch, value = self.inputs[0].shape[0], t.data.flat[0] if t.size else None
        if value is None or not (t.data == value).all() or any(t.shape[a] != batch for a in self.free_axes(t)):
            raise NotImplementedError(
                f"to_onnx: a constant of shape {t.shape} follows the batch size and is not one value repeated over "
                "it (e.g. a mask computed from the input's values by a comparison, which the graph does not "
                "record), so it cannot be written for any batch size")
        size = self.node("Gather", [self.node("Shape", [self.input_names[0]]), self.constant([0])])
        dims = [size if a in self.free_axes(t) else self.constant([n]) for a, n in enumerate(t.shape)]
        fill = self.onnx.numpy_helper.from_array(np.asarray([value], dtype=t.dtype))
        return self.node("ConstantOfShape", [self.node("Concat", dims, axis=0)], value=fill)

    def constant(self, values: Any, dtype: Any = np.int64) -> str:
        name = f"constant_{len(self.initializers)}"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        out = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

    def free_axes(self, t: Tensor) -> tuple[int, ...]:
        """The axes of ``t`` whose size follows the batch."""
        return self.free.get(id(t), ())

    def target_shape(self, out: Tensor, op: str) -> list[int]:
        """``out``'s shape for a Reshape: -1 (inferred) where it follows the batch; refused where two axes do."""
        shape, free = list(out.shape), self.free_axes(out)
        if len(free) > 1:
            raise NotImplementedError(f"to_onnx: {op} makes a tensor of shape {out.shape} whose axes {free} all "
                                      "follow the batch size; one such axis can be exported, not several")
        for axis in free:
            shape[axis] = -1
        return shape

    def expand_shape(self, source: Tensor, out: Tensor, op: str) -> list[int]:
        """``out``'s shape for an Expand of ``source``: 1 (kept from the source) where it follows the batch."""
        shape = list(out.shape)
        for axis in self.free_axes(out):
            if axis < out.ndim - source.ndim or source.shape[axis - (out.ndim - source.ndim)] == 1:
                raise NotImplementedError(f"to_onnx: {op} broadcasts a tensor of shape {source.shape} to {out.shape} "
                                          f"along axis {axis}, which follows the batch size")
            shape[axis] = 1
        return shape

    def dtype_code(self, dtype: Any) -> int:
        """ONNX's number for a NumPy dtype."""
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def add(self, t: Tensor) -> None:
        """Translate the op that made ``t`` by its rule's ``onnx`` (an op type, or a method building the nodes)."""
        fn = t.grad_fn
        ins = [self.name_of(seen_by(fn, x)) for x in fn.inputs]  # an input changed in place since: as it was
        if fn.onnx is None:
            mapped = sorted(name for name, rule in rules().items() if rule.onnx is not None)
            raise NotImplementedError(f"to_onnx: no ONNX mapping for the op '{fn.name}' (output shape {t.shape}); "
                                      f"mapped: {', '.join(mapped)}")
        self.value[id(t)] = self.node(fn.onnx, ins) if isinstance(fn.onnx, str) else fn.onnx(self, ins, t)

    def model(self, outs: list[Tensor]) -> Any:
        helper, batch = self.helper, self.inputs[0].shape[0] if self.inputs[0].ndim else None

        def value_info(name: str, t: Tensor) -> Any:  # N: the batch size, where an axis follows it
            shape = [("N" if n == batch else None) if a in self.free_axes(t) else n for a, n in enumerate(t.shape)]
            return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), shape)

        results = []
        for i, t in enumerate(outs):  # each output its own value: an output that is an input or repeats gets a copy
            name = self.name_of(t)
            if name in self.input_names or name in results or len(outs) > 1:
                name = self.node("Identity", [name]) if len(outs) == 1 else self._renamed(name, f"output_{i}")
            results.append(name)
        graph = helper.make_graph(
            self.nodes, "tinygrad_like", [value_info(n, t) for n, t in zip(self.input_names, self.inputs)],
            [value_info(n, t) for n, t in zip(results, outs)], self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                                 producer_name="tinygrad_like")

    def _renamed(self, name: str, new: str) -> str:
        self.nodes.append(self.helper.make_node("Identity", [name], [new]))
        return new


