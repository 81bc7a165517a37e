"""Networks built from Tensors: ``Module`` (module.py), the layers (layers.py), ``init`` and ``functional``."""

from . import functional, init, utils
from .layers import (
    ACTIVATIONS,
    MLP,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import CONFIG_KEY, Module, read_npz

__all__ = [
    "ACTIVATIONS", "CONFIG_KEY", "MLP", "Conv2d", "Dropout", "Flatten", "Identity", "Linear", "LogSoftmax",
    "MaxPool2d", "Module", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "functional", "init", "read_npz",
]

# -- recurrent layers and attention (nn/recurrent.py, nn/attention.py) ------------------------------------------
from .attention import MultiheadAttention  # noqa: E402
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: E402

__all__ += ["GRU", "GRUCell", "LSTM", "LSTMCell", "MultiheadAttention", "RNN", "RNNCell"]

# -- losses and gradient clipping -------------------------------------------------------------------------
__all__ += ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss",
            "utils"]
# -- end losses and gradient clipping ---------------------------------------------------------------------

