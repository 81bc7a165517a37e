"""tinygrad_like: a small, fast, honest reverse-mode autograd framework on NumPy.

Public names only. Modules that need optional packages, and the blog study (``blog``), load on first use, so
``import tinygrad_like`` needs neither Graphviz's ``dot`` nor any optional extra.
"""

import importlib
from typing import Any

from . import autograd, nn, optim
from .check import check_gradients, watch
from .engine import Function, detect_anomaly, enable_grad, is_anomaly_enabled, is_grad_enabled, no_grad, toposort
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .pytorch import (  # PyTorch's function names, with PyTorch's signatures
    Generator,
    abs,
    all,
    allclose,
    any,
    arange,
    argmax,
    argmin,
    bool,
    cat,
    chunk,
    clamp,
    cos,
    cuda,
    cumsum,
    device,
    double,
    einsum,
    empty,
    exp,
    eye,
    float,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    int,
    int32,
    int64,
    linspace,
    load,
    log,
    log2,
    log10,
    log_softmax,
    logsumexp,
    long,
    manual_seed,
    matmul,
    max,
    mean,
    min,
    multinomial,
    ones,
    ones_like,
    outer,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    relu,
    save,
    set_default_device,
    sigmoid,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    stack,
    sum,
    tanh,
    tensor,
    topk,
    tril,
    triu,
    where,
    zeros,
    zeros_like,
)
from .tensors import Tensor

__version__ = "0.1.0"

_LAZY_MODULES = ("viz", "data", "train", "cli", "export", "blog", "utils", "doctor")


def draw(*args: Any, **kwargs: Any) -> Any:
    """Draw a computation graph; see ``viz.draw`` (imported on first use)."""
    from .viz import draw as viz_draw

    return viz_draw(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinygrad_like' has no attribute {name!r}")


__all__ = [
    "Function", "GradcheckError", "Tensor", "__version__", "autograd", "blog", "check_gradients", "data",
    "detect_anomaly", "draw", "enable_grad", "gradcheck", "gradgradcheck", "is_anomaly_enabled", "is_grad_enabled",
    "manual_seed", "nn", "no_grad", "optim", "toposort", "train", "viz", "export", "watch", "Generator", "abs", "all",
    "allclose", "any", "arange", "argmax", "bool", "cat", "chunk", "clamp", "cos", "cuda", "cumsum", "device",
    "double", "einsum", "empty", "exp", "eye", "float", "float32", "float64", "from_numpy", "full", "full_like", "int",
    "int32", "int64", "linspace", "load", "log", "log10", "log2", "log_softmax", "logsumexp", "long", "matmul", "max",
    "mean", "min", "multinomial", "ones", "ones_like", "outer", "rand", "rand_like", "randint", "randn", "randn_like",
    "randperm", "relu", "save", "set_default_device", "sigmoid", "sin", "softmax", "split", "sqrt", "stack", "sum",
    "tanh", "tensor", "tril", "triu", "where", "zeros", "zeros_like", "sort", "topk", "argmin", "utils",
]
