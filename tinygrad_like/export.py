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
        args = ", ".join(f"{name}={_literal(value, where)}" for name, value in config.items())
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


def to_onnx(module_or_fn: nn.Module | Callable[[Tensor], Tensor], example_input: Any,
            path: str | os.PathLike) -> Path:
    """Trace ``module_or_fn`` on ``example_input`` and write the forward graph as an ONNX model to ``path``.

    A module is traced in eval mode (dropout off, batch normalisation with its running statistics) and put back
    in the mode it had. The input is a float tensor, or an integer one (indices, e.g. for an ``Embedding``,
    which becomes a Gather). The first axis of the input is the batch and stays free (``N``); every other size
    is the example's. Parameters and buffers become initializers under their names. An op with no ONNX mapping
    raises ``NotImplementedError`` naming it. The model opens in netron (netron.app) and runs in ONNX Runtime.
    """
    onnx = _require("onnx", "to_onnx")
    x = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    if x.dtype.kind not in "fiu":
        raise TypeError(f"to_onnx: the example input must be a float or integer tensor, got {x.dtype}")
    # a float input requires grad, so that every op on it is recorded; integer indices reach the graph through
    # the ops that take them with a parameter (an embedding)
    traced_input = Tensor(x.data, requires_grad=x.dtype.kind == "f")
    was_training = getattr(module_or_fn, "training", None)
    if was_training is not None:
        module_or_fn.eval()
    try:
        with enable_grad():
            out = module_or_fn(traced_input)
    finally:
        if was_training:
            module_or_fn.train()
    if not isinstance(out, Tensor):
        raise TypeError(f"to_onnx: the forward must return a Tensor, got {type(out).__name__}")
    names = ({id(t): name for name, t in [*module_or_fn.named_parameters(), *module_or_fn.named_buffers()]}
             if isinstance(module_or_fn, nn.Module) else {})
    graph = _OnnxGraph(onnx, traced_input, names)
    for t in toposort(out):
        if t.grad_fn is not None:
            graph.add(t)
    model = graph.model(out)
    onnx.checker.check_model(model)
    path = Path(path)
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
    return path


class _OnnxGraph:
    """The ONNX nodes, initializers and value names of one traced graph."""

    def __init__(self, onnx: Any, traced_input: Tensor, names: dict[int, str]) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.input, self.param_names = traced_input, names
        self.value: dict[int, str] = {id(traced_input): "input"}
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.dtype = traced_input.dtype

    def name_of(self, t: Tensor) -> str:
        """The ONNX value of tensor ``t``; a leaf becomes an initializer (a parameter under its own name)."""
        key = id(t)
        if key not in self.value:
            if t.grad_fn is not None:
                raise RuntimeError(f"to_onnx: the graph reaches {t.op} before it was translated")
            name = self.param_names.get(key) or f"constant_{len(self.initializers)}"
            self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(t.data), name))
            self.value[key] = name
        return self.value[key]

    def constant(self, values: Any, dtype: Any = np.int64) -> str:
        name = f"constant_{len(self.initializers)}"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        out = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

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

    def model(self, out: Tensor) -> Any:
        helper, elem = self.helper, self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        batch = ["N"] + list(self.input.shape[1:])
        batched = out.ndim and out.shape[0] == self.input.shape[0]
        out_shape = ["N", *out.shape[1:]] if batched else list(out.shape)
        graph = helper.make_graph(
            self.nodes, "tinygrad_like", [helper.make_tensor_value_info("input", elem, batch)],
            [helper.make_tensor_value_info(self.name_of(out), helper.np_dtype_to_tensor_dtype(out.dtype), out_shape)],
            self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                                 producer_name="tinygrad_like")


