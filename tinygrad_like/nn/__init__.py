"""Networks built from Tensors: ``Module`` (module.py) and the layers (layers.py)."""

from .layers import ACTIVATIONS, MLP, Linear, Sequential
from .module import CONFIG_KEY, Module, read_npz

__all__ = ["ACTIVATIONS", "CONFIG_KEY", "MLP", "Linear", "Module", "Sequential", "read_npz"]
