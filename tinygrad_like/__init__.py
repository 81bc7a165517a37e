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
from .tensors import Tensor

__version__ = "0.1.0"

_LAZY_MODULES = ("viz", "data", "train", "cli", "export", "blog")


def draw(*args: Any, **kwargs: Any) -> Any:
    """Draw a computation graph; see ``viz.draw`` (imported on first use)."""
    from .viz import draw as viz_draw

    return viz_draw(*args, **kwargs)


def manual_seed(seed: int) -> None:
    """Seed the library's generator (``Tensor.randn``, ``rand``, ``uniform``, dropout, ``nn.init``, the layers'
    initial weights, ``data.batches``' shuffling); see ``Tensor.manual_seed``."""
    Tensor.manual_seed(seed)


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinygrad_like' has no attribute {name!r}")


__all__ = [
    "Function", "GradcheckError", "Tensor", "__version__", "autograd", "blog", "check_gradients", "data",
    "detect_anomaly", "draw", "enable_grad", "gradcheck", "gradgradcheck", "is_anomaly_enabled", "is_grad_enabled",
    "manual_seed", "nn", "no_grad", "optim", "toposort", "train", "viz", "export", "watch",
]
