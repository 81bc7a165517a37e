"""Graduating to other engines: a network trained here, run by PyTorch or ONNX Runtime with the same numbers:
``to_torch``, ``torch_source``, ``save_safetensors`` / ``load_safetensors`` (no pickle), ``to_onnx`` (each rule
says its ONNX mapping); ``compare_with_torch``, which runs a model here and in PyTorch side by side and names the
first module where they part. torch, onnx, onnxruntime and safetensors (the ``export`` extra) are imported when a
function needs one. See docs/export.md.
"""

from __future__ import annotations

import ast
import copy
import importlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import nn
from ._files import atomic_write, read_safetensors, safetensors_headers, write_safetensors
from .engine import enable_grad, grad, rules, seen_by, toposort
from .nn.config import LAYERS, check_key, checked_args
from .nn.module import output_tensors, state_problems
from .nn.summary import ModuleCall, buffers_kept, recorded_calls
from .tensors import Tensor

__all__ = ["LayerDiff", "LayerDiffRow", "compare_with_torch", "load_safetensors", "relative_difference",
           "save_safetensors", "to_onnx", "to_torch", "torch_names", "torch_source"]

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
    """Python source for a constructor argument already checked against its layer's documented type (see
    nn/config.py), written from its type alone: None, bools, ints, floats, names (strings such as 'tanh' or
    'zeros'), and tuples of them."""
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
    method used as a layer in a Sequential. Only checked values are written: the class name and argument names
    from the fixed table of loadable layers, each value checked against its documented type, container keys as
    string literals."""
    kind = type(layer).__name__
    if isinstance(layer, (nn.Sequential, nn.ModuleDict)):
        items = [(check_key(key), sub) for key, sub in layer._modules.items()]
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
    if type(layer) in LAYERS and not isinstance(layer, nn.MLP):
        config = layer.config()
        checked = checked_args(type(layer), config, f"torch_source: {where}: ")
        args = ", ".join(f"{name}={(_dtype_literal if name == 'dtype' else _literal)(checked[name], where)}"
                         for name in config)
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
        checked = checked_args(nn.MLP, module.config(), "torch_source: ")
        return (header + _MLP_CLASS + f"\n\nmodel = MLP({_literal(checked['layers'], 'MLP')}, "
                f"activation={_literal(checked['activation'], 'MLP')})\n")
    return header + f"\nmodel = {_layer_source(module, type(module).__name__)}\n"


_HEADER_IMPORTS = ast.dump(ast.parse("from collections import OrderedDict\nimport torch\nfrom torch import nn"))
_MLP_CLASS_AST = ast.dump(ast.parse(_MLP_CLASS))
_NN_NAMES = {cls.__name__ for cls in LAYERS} | {"ReLU", "Sigmoid", "Tanh"}
_CONSTANT_CALLS = {"float": {"inf", "-inf", "nan"}}


def _check_source(source: str) -> None:
    """Refuse (RuntimeError) source that is not what ``torch_source`` writes: its docstring, its imports, the
    fixed MLP class, and ``model = `` an expression made only of calls to ``nn.<Layer>`` of the loadable layers,
    ``OrderedDict`` and ``MLP``, constants, tuples, lists, dicts with string keys, ``torch.float16/32/64`` and
    ``float("inf")``. A second line of defence before ``to_torch``'s ``exec``: every value was checked already."""
    body = ast.parse(source).body
    if len(body) < 5 or not (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
        raise RuntimeError("to_torch: the PyTorch source does not start as torch_source writes it; not run")
    imports, mlp, model = body[1:4], body[4:-1], body[-1]
    ok = (ast.dump(ast.Module(body=imports, type_ignores=[])) == _HEADER_IMPORTS
          and (not mlp or ast.dump(ast.Module(body=mlp, type_ignores=[])) == _MLP_CLASS_AST)
          and isinstance(model, ast.Assign) and len(model.targets) == 1
          and isinstance(model.targets[0], ast.Name) and model.targets[0].id == "model"
          and _checked_expression(model.value, bool(mlp)))
    if not ok:
        raise RuntimeError("to_torch: the PyTorch source holds something torch_source never writes; not run")


def _checked_expression(node: ast.AST, mlp: bool) -> bool:
    """True when ``node`` is built only of the pieces ``_check_source`` allows."""
    def ok(n: ast.AST) -> bool:
        if isinstance(n, ast.Constant):
            return n.value is None or isinstance(n.value, (bool, int, float, str))
        if isinstance(n, ast.UnaryOp):
            return isinstance(n.op, ast.USub) and isinstance(n.operand, ast.Constant) and isinstance(
                n.operand.value, (int, float))
        if isinstance(n, (ast.Tuple, ast.List)):
            return all(map(ok, n.elts))
        if isinstance(n, ast.Dict):
            return all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in n.keys) and all(
                map(ok, n.values))
        if isinstance(n, ast.Attribute):
            return isinstance(n.value, ast.Name) and n.value.id == "torch" and n.attr in (
                "float16", "float32", "float64")
        if isinstance(n, ast.Call):
            func = n.func
            if isinstance(func, ast.Name) and func.id in _CONSTANT_CALLS:
                return (not n.keywords and len(n.args) == 1 and isinstance(n.args[0], ast.Constant)
                        and n.args[0].value in _CONSTANT_CALLS[func.id])
            known = (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "nn"
                     and func.attr in _NN_NAMES) or (isinstance(func, ast.Name) and (
                         func.id == "OrderedDict" or (func.id == "MLP" and mlp)))
            return known and all(map(ok, n.args)) and all(k.arg is not None and ok(k.value) for k in n.keywords)
        return False
    return ok(node)


def torch_names(module: nn.Module) -> dict[str, str]:
    """Our state_dict name -> PyTorch's, for the module ``torch_source`` describes: the same names, parameters and
    buffers (a Sequential's ``0.weight`` is PyTorch's ``0.weight``; an MLP's ``layers.0.weight`` its class's)."""
    torch_source(module)  # refuses what PyTorch cannot rebuild
    return {name: name for name in module.state_dict()}


def to_torch(module: nn.Module) -> Any:
    """A ``torch.nn.Module`` with the structure of ``module`` (built from ``torch_source``), its parameters and
    buffers (``state_dict``, the same names; dtype kept) and its training mode."""
    torch = _require("torch", "to_torch")
    source = torch_source(module)
    _check_source(source)
    scope: dict[str, Any] = {}
    exec(compile(source, f"<torch_source of {type(module).__name__}>", "exec"), scope)  # noqa: S102 - checked
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
    """Write ``module``'s ``state_dict`` (parameters and buffers) to ``path`` in the safetensors format (by the
    safetensors package), atomically, under its names, which are PyTorch's for the structures ``torch_source``
    describes (``safetensors.torch.load_file`` reads it)."""
    if not str(path):
        raise ValueError("save_safetensors: empty path")
    path = Path(path)
    write_safetensors(path, module.state_dict(), metadata={"format": "pt"}, op="save_safetensors")
    return path


def load_safetensors(module: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load parameters saved by ``save_safetensors`` (or by PyTorch under the same names) into ``module``.

    The file is untrusted input, checked before any data is read: its header (names, dtypes, shapes, offsets)
    must describe a well-formed file (the safetensors package checks it; a name given twice is refused here), and
    exactly ``module``'s parameters and buffers with their shapes and dtypes; every missing, unexpected (a tensor
    stored under two names too) or mismatched entry is reported at once, as ``load_state_dict`` reports them.
    Only then are the tensors read, one at a time, never more than the module's own size. Any refusal is a
    ``ValueError`` naming the file and the entry, and leaves the module as it was.
    """
    path = Path(path)
    state = module._state_tensors()
    problems = state_problems({name: (t.shape, t.dtype) for name, t in state.items()},
                              safetensors_headers(path, op="load_safetensors"))
    if problems:
        raise ValueError(f"load_safetensors: {path} does not match the {type(module).__name__} (nothing read or "
                         f"changed):\n  {problems}")
    arrays = read_safetensors(path, max_bytes=sum(t.data.nbytes for t in state.values()), op="load_safetensors")
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
    # model); a forward whose ops change with the batch (an RNN unrolled over axis 0), or that cannot take another
    # batch size (a reshape to fixed sizes), is exported at the example's sizes
    try:
        _, outs_more = _trace(module_or_fn, [np.concatenate([x.data, x.data[:1]]) if x.ndim else x.data
                                             for x in examples])
    except (ValueError, TypeError, IndexError, RuntimeError):
        outs_more = []
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
    outs = output_tensors(result)
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




# ----------------------------------------------------------------------------------------------------------
# Layer by layer against PyTorch: where our numbers and PyTorch's part
# ----------------------------------------------------------------------------------------------------------

_PROJECTION_SEED = 0  # the fixed random projection of the output that stands for a loss when none is given


@dataclass
class LayerDiffRow:
    """One module call, ours against PyTorch's: the relative difference (``relative_difference``) of its ``input``
    and ``output`` values, of the gradient arriving at its output (``grad_output``), of the one it passes to its
    inputs (``grad_input``) and of its parameters' gradients (``grad_params``, its sub-modules' included); None
    where there is nothing to compare (no gradient on either side, or no PyTorch call under this path:
    ``matched`` False). ``call`` numbers the calls of a module called ``calls`` times."""

    path: str
    type: str
    call: int
    calls: int
    matched: bool
    input: float | None
    output: float | None
    grad_output: float | None
    grad_input: float | None
    grad_params: float | None


@dataclass
class LayerDiff:
    """``rows`` (one per module call, in the order the calls returned: a module after the ones it called),
    ``first_divergent`` (the path of the module where the difference starts, '' for the model's own code, or
    None), ``direction`` ("forward", "backward" or None), ``reason`` (a sentence saying what was seen) and
    ``rtol``; ``ok`` when nothing diverges. ``print(diff)`` shows the table."""

    rows: list[LayerDiffRow]
    first_divergent: str | None
    direction: str | None
    reason: str
    rtol: float
    dropout_off: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every output and gradient agrees within ``rtol``."""
        return self.direction is None

    def __str__(self) -> str:
        def cell(value: float | None) -> str:
            return "-" if value is None else f"{value:.1e}" + ("!" if value > self.rtol else "")

        header = ["module", "type", "output", "grad at output", "grad at input", "grad of params"]
        table = [[_module_name(row.path) + (f" [{row.call}]" if row.calls > 1 else ""), row.type,
                  *(map(cell, (row.output, row.grad_output, row.grad_input, row.grad_params)) if row.matched
                    else ["(no PyTorch call)", "", "", ""])] for row in self.rows]
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
                 for cells in [header, ["-" * w for w in widths], *table]]
        lines += ["", f"relative differences, ours against PyTorch's ('!': above rtol={self.rtol:g})"]
        if self.dropout_off:
            lines.append(f"dropout off on both sides (random masks cannot match): {', '.join(self.dropout_off)}")
        lines.append(("first divergent: " if self.first_divergent is not None else "") + self.reason)
        return "\n".join(lines)

    __repr__ = __str__


def _module_name(path: str) -> str:
    return path or "(model)"


def relative_difference(ours: list[Any], theirs: list[Any]) -> float | None:
    """max |a - b| / max(|a|, |b|), both maxima taken over all the pairs of arrays together (their finite values;
    0 where all are 0): the largest difference as a fraction of the values' scale. Together, so that a value that
    is zero but for rounding (the gradient of a bias before batch normalisation) is measured against its
    companions' scale, not its own noise. None stands for a gradient that does not arrive (zeros); inf when the
    numbers of arrays, their shapes or the places of their nan and inf differ; None when there is nothing to
    compare."""
    if len(ours) != len(theirs):
        return float("inf")
    difference = scale = 0.0
    compared = False
    for a, b in zip(ours, theirs):
        if a is None and b is None:
            continue
        a = np.zeros(np.shape(b)) if a is None else np.asarray(a, dtype=np.float64)
        b = np.zeros(a.shape) if b is None else np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        finite = np.isfinite(a) & np.isfinite(b)
        if not np.array_equal(a[~finite], b[~finite], equal_nan=True):
            return float("inf")
        a, b = a[finite], b[finite]
        difference = max(difference, float(np.abs(a - b).max(initial=0.0)))
        scale = max(scale, float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
        compared = True
    if not compared:
        return None
    return difference / scale if scale > 0 else 0.0


@dataclass
class _Side:
    """One library's run: per (module path, call number) the call's (inputs, outputs) tensors, the gradients by
    tensor id, the parameters' gradients by name, and how to read a tensor's values."""

    calls: dict[tuple[str, int], tuple[list[Any], list[Any]]]
    grads: dict[int, np.ndarray | None]
    param_grads: dict[str, np.ndarray | None]
    values: Callable[[Any], np.ndarray]

    def arrays(self, tensors: list[Any]) -> list[np.ndarray]:
        return [self.values(t) for t in tensors]

    def gradients(self, tensors: list[Any]) -> list[np.ndarray | None]:
        return [self.grads.get(id(t)) for t in tensors]


def _gradients(side_calls: dict[tuple[str, int], tuple[list[Any], list[Any]]], params: dict[str, Any],
               takes_grad: Callable[[Any], bool], backward: Callable[[list[Any]], list[Any]],
               values: Callable[[Any], np.ndarray]) -> _Side:
    """A side from its calls: the gradients ``backward`` gives at every call's inputs and outputs and at the
    parameters (those that take one, each once)."""
    params = {name: p for name, p in params.items() if takes_grad(p)}  # frozen ones are not compared
    tensors = [t for ins, outs in side_calls.values() for t in (*ins, *outs)] + list(params.values())
    seen: set[int] = set()
    wanted = [t for t in tensors if takes_grad(t) and not (id(t) in seen or seen.add(id(t)))]
    found = backward(wanted) if wanted else []
    grads = {id(t): None if g is None else values(g) for t, g in zip(wanted, found)}
    return _Side(side_calls, grads, {name: grads.get(id(p)) for name, p in params.items()}, values)


def _our_values(t: Any) -> np.ndarray:
    return np.asarray(t.data if isinstance(t, Tensor) else t)


def _our_run(model: nn.Module, inputs: list[Any], target: Any, loss_fn: Callable[..., Any] | None
             ) -> tuple[list[ModuleCall], _Side, list[np.ndarray]]:
    """Our forward, every module call recorded, and backward; also the gradient seeds at the outputs, so that
    PyTorch's backward starts from the same ones."""
    with recorded_calls(model) as calls, enable_grad():
        out = model(*inputs)
        outs = [t for t in output_tensors(out) if t.requires_grad and t.dtype.kind == "f"]
        if loss_fn is None:
            rng = np.random.default_rng(_PROJECTION_SEED)
            seeds = [rng.standard_normal(t.shape).astype(t.dtype) for t in outs]
        else:
            loss = loss_fn(out) if target is None else loss_fn(out, target)
            found = grad(loss, outs, retain_graph=True, allow_unused=True) if outs else ()
            seeds = [np.zeros(t.shape, t.dtype) if g is None else g.data for t, g in zip(outs, found)]
    recorded = {(c.path, c.number): (output_tensors((c.args, c.kwargs), (Tensor, np.ndarray)),
                                     output_tensors(c.output, (Tensor, np.ndarray))) for c in calls}
    side = _gradients(recorded, dict(model.named_parameters()),
                      lambda t: isinstance(t, Tensor) and t.requires_grad and t.dtype.kind == "f",
                      lambda wanted: grad(outs, wanted, seeds, allow_unused=True) if outs else [None] * len(wanted),
                      _our_values)
    return calls, side, seeds


def _their_run(torch: Any, twin: Any, inputs: list[Any], seeds: list[np.ndarray]) -> _Side:
    """PyTorch's forward (forward hooks record each module call) and its backward from ``seeds``."""
    calls: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}
    counts: dict[str, int] = {}
    kinds = (torch.Tensor,)

    def recorder(path: str) -> Callable[..., None]:
        def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            counts[path] = counts.get(path, 0) + 1
            calls[(path, counts[path])] = (output_tensors((args, kwargs), kinds), output_tensors(output, kinds))
        return hook

    handles = [module.register_forward_hook(recorder(path), with_kwargs=True) for path, module in twin.named_modules()]
    try:
        with torch.enable_grad():
            out = twin(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    outs = [t for t in output_tensors(out, kinds) if t.requires_grad and t.dtype.is_floating_point]
    same = len(outs) == len(seeds)  # else the outputs differ, which the forward's comparison says

    def backward(wanted: list[Any]) -> list[Any]:
        if not (outs and same):
            return [None] * len(wanted)
        return torch.autograd.grad(outs, wanted, [torch.from_numpy(s) for s in seeds], allow_unused=True)

    return _gradients(calls, dict(twin.named_parameters()),
                      lambda t: t.requires_grad and t.dtype.is_floating_point, backward,
                      lambda t: t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))


def _twin(model: nn.Module, torch_model: Any) -> Any:
    """PyTorch's version of ``model`` with its parameters and buffers: ``to_torch(model)``, or a copy of
    ``torch_model`` (left untouched) with them loaded; each module's training mode set as ours."""
    torch = _require("torch", "compare_with_torch")
    if torch_model is None:
        try:
            twin = to_torch(model)
        except TypeError as e:
            raise TypeError(f"compare_with_torch: {e}. For a module of your own, write its PyTorch version with the "
                            "same sub-module and parameter names and pass it as torch_model=") from None
    else:
        twin = copy.deepcopy(torch_model)
        ours, theirs = dict(model.named_parameters()), dict(twin.named_parameters())
        if set(ours) != set(theirs):
            raise ValueError(f"compare_with_torch: torch_model's parameters are not named as ours: only ours "
                             f"{sorted(set(ours) - set(theirs))}, only PyTorch's {sorted(set(theirs) - set(ours))}")
        floating = [p.dtype for p in ours.values() if p.dtype.kind == "f"]
        if floating:
            twin = twin.to(getattr(torch, str(floating[0])))
        their_state = twin.state_dict()
        try:  # the parameters, and the buffers both sides have (running statistics)
            twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items() if k in their_state},
                                 strict=False)
        except RuntimeError as e:
            raise ValueError(f"compare_with_torch: torch_model does not take our parameters: {e}") from None
    their_modules = dict(twin.named_modules())
    for path, module in model.named_modules():
        if path in their_modules:
            their_modules[path].training = module.training
    return twin


@contextmanager
def _dropout_off(model: nn.Module, twin: Any) -> Iterator[tuple[str, ...]]:
    """Inside the ``with``, the modules that draw random numbers in training (dropout), whose draws cannot match
    PyTorch's, are in evaluation mode on both sides; it gives their paths. Ours are back in training after it."""
    paths = tuple(path for path, m in model.named_modules() if m.training and (
        (isinstance(m, nn.Dropout) and m.p > 0) or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0)))
    ours, theirs = dict(model.named_modules()), dict(twin.named_modules())
    for path in paths:
        ours[path].training = False
        if path in theirs:
            theirs[path].training = False
    try:
        yield paths
    finally:
        for path in paths:
            ours[path].training = True


def _both_inputs(torch: Any, inputs: tuple[Any, ...], dtype: Any) -> tuple[list[Any], list[Any]]:
    """The inputs as our Tensors and as PyTorch's (copies; floating point ones in the model's dtype and
    requiring grad, so the first layer's input gradient is compared too); anything else given to both as is."""
    ours, theirs = [], []
    for x in inputs:
        if isinstance(x, (Tensor, np.ndarray)):
            a = np.array(x.data if isinstance(x, Tensor) else x)
            if a.dtype.kind == "f" and dtype is not None:
                a = a.astype(dtype)
            ours.append(Tensor(a, requires_grad=a.dtype.kind == "f"))
            theirs.append(torch.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f"))
        else:
            ours.append(x)
            theirs.append(x)
    return ours, theirs


def compare_with_torch(model: nn.Module, *inputs: Any, target: Any = None, loss_fn: Callable[..., Any] | None = None,
                       rtol: float = 1e-4, torch_model: Any = None) -> LayerDiff:
    """Run ``model`` and PyTorch's version of it (``to_torch(model)``: the same structure and parameters) side by
    side on ``inputs`` and say, module by module in the order their calls return, how far apart they are: the
    largest relative difference of each call's output, of the gradient arriving at its output, of the gradient
    it passes to its inputs and of its parameters' gradients.

    The backward starts from the gradient of a loss at the model's output: ``loss_fn(output, target)`` (or
    ``loss_fn(output)`` without a target), computed by our library with our ``loss_fn``, or else a fixed random
    projection of the output (sum(output * R), R drawn from a seeded generator); PyTorch's backward starts from
    the same gradient, so it is the model alone that is compared.

    ``first_divergent`` names where the difference starts: the first module (in the order calls return) whose
    output differs by more than ``rtol`` while its input agrees (its forward is wrong; if its input already
    differed, the code around it in the module that called it is, and that module is named); else the innermost
    module whose backward breaks it, the one at whose output the gradient agrees and whose gradient to its inputs
    or parameters does not (with several, the last in forward order: the first the backward meets).

    A module of your own (a ``forward`` of your own, a ``Function`` of your own) has no PyTorch equivalent that
    ``to_torch`` could build: write one and pass it as ``torch_model``; its sub-modules and parameters must have
    our names (``named_parameters``), as ``to_torch``'s do. It is copied, our parameters and the buffers both
    have (running statistics) are loaded into the copy, and modules are matched by path (``named_modules``).
    Floating point inputs are copied in the model's dtype. Each module runs in its training mode, except dropout
    (``nn.Dropout``, ``MultiheadAttention``'s), switched off on both sides for the run, as random masks cannot
    match. Our buffers (running statistics) are left as they were.
    """
    torch = _require("torch", "compare_with_torch")
    if not isinstance(model, nn.Module):
        raise TypeError(f"compare_with_torch: expected an nn.Module, got {type(model).__name__}")
    if target is not None and loss_fn is None:
        raise ValueError("compare_with_torch: a target needs a loss_fn, e.g. loss_fn=nn.functional.cross_entropy")
    twin = _twin(model, torch_model)
    floating = [p.dtype for p in model.parameters() if p.dtype.kind == "f"]
    ours_in, theirs_in = _both_inputs(torch, inputs, floating[0] if floating else None)
    with _dropout_off(model, twin) as dropout_off:
        with buffers_kept(model):
            calls, ours, seeds = _our_run(model, ours_in, target, loss_fn)
        theirs = _their_run(torch, twin, theirs_in, seeds)
    return _diagnosis(calls, ours, theirs, rtol, dropout_off)


def _diagnosis(calls: list[ModuleCall], ours: _Side, theirs: _Side, rtol: float, dropout_off: tuple[str, ...]
               ) -> LayerDiff:
    """The rows, and where the difference starts (see ``compare_with_torch``)."""
    per_module = Counter(id(c.module) for c in calls)
    rows = []
    for c in calls:
        row = LayerDiffRow(c.path, type(c.module).__name__, c.number, per_module[id(c.module)], False,
                           None, None, None, None, None)
        if (c.path, c.number) in theirs.calls:
            (ins, outs), (their_ins, their_outs) = ours.calls[(c.path, c.number)], theirs.calls[(c.path, c.number)]
            within = [name for name in ours.param_grads if not c.path or name.startswith(c.path + ".")]
            row.matched = True
            row.input = relative_difference(ours.arrays(ins), theirs.arrays(their_ins))
            row.output = relative_difference(ours.arrays(outs), theirs.arrays(their_outs))
            row.grad_output = relative_difference(ours.gradients(outs), theirs.gradients(their_outs))
            row.grad_input = relative_difference(ours.gradients(ins), theirs.gradients(their_ins))
            row.grad_params = relative_difference([ours.param_grads[n] for n in within],
                                                  [theirs.param_grads.get(n) for n in within])
        rows.append(row)

    def differs(value: float | None) -> bool:
        return value is not None and value > rtol

    def named(call: ModuleCall) -> str:
        return f"{call.path or 'the model'} ({type(call.module).__name__})"

    def result(call: ModuleCall | None, direction: str | None, reason: str) -> LayerDiff:
        return LayerDiff(rows, None if call is None else call.path, direction, reason, rtol, dropout_off)

    for c, row in zip(calls, rows):  # forward: the first output that differs
        if differs(row.output):
            if differs(row.input) and c.parent is not None:
                return result(c.parent, "forward", (
                    f"{named(c.parent)}, in its forward: the input it gives {named(c)} already differs by "
                    f"{row.input:.1e} though no module before differs: its own code around its sub-modules "
                    "computes something else"))
            agreeing = ", its input agreeing" if row.input is not None else ""
            return result(c, "forward", f"{named(c)}, in its forward: its output differs by {row.output:.1e}"
                          f"{agreeing}")
    breaking = [i for i, row in enumerate(rows) if row.matched and not differs(row.grad_output)
                and (differs(row.grad_input) or differs(row.grad_params))]
    enclosing = {id(p) for i in breaking for p in _callers(calls[i])}
    innermost = [i for i in breaking if id(calls[i]) not in enclosing]
    if innermost:  # the last in forward order: the first the backward pass reaches
        c, row = calls[innermost[-1]], rows[innermost[-1]]
        where, value = ("input", row.grad_input) if differs(row.grad_input) else ("parameters", row.grad_params)
        return result(c, "backward", f"{named(c)}, in its backward: the gradient at its output agrees, the gradient "
                      f"it gives its {where} differs by {value:.1e} (its forward agrees)")
    if any(differs(v) for row in rows for v in (row.grad_output, row.grad_input, row.grad_params)):
        return result(None, "backward", "gradients differ, but no module's backward alone breaks them")
    return result(None, None, f"none: every output and gradient agrees within rtol={rtol:g}")


def _callers(call: ModuleCall) -> Iterator[ModuleCall]:
    """The calls ``call`` happened in, innermost first."""
    while call.parent is not None:
        call = call.parent
        yield call
