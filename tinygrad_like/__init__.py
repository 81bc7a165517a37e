"""tinygrad_like: a small, fast, honest reverse-mode autograd framework on NumPy."""

from . import blog, compare, data, nn, optim
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad
from .viz import draw

__version__ = "0.1.0"

__all__ = [
    "GradcheckError", "Tensor", "__version__", "blog", "compare", "data", "detect_anomaly", "draw", "gradcheck",
    "is_anomaly_enabled", "is_grad_enabled", "nn", "no_grad", "optim",
]
