"""Networks built from Tensors: ``Module`` and ``Parameter`` (module.py), the layers and containers (layers.py),
the normalisations (normalization.py), recurrent layers (recurrent.py), attention (attention.py), the loss modules
(loss.py), ``init``, ``functional`` and ``utils`` (gradient clipping); ``summary`` (a table of a network's
modules, output shapes and parameter counts)."""

from . import functional, init, utils
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
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import CONFIG_KEY, Module, Parameter, read_npz
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .summary import summary

__all__ = [
    "ACTIVATIONS", "CONFIG_KEY", "ELU", "GELU", "GRU", "LSTM", "MLP", "RNN", "AdaptiveAvgPool2d", "AvgPool2d",
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "CrossEntropyLoss", "Dropout",
    "Embedding", "Flatten", "GRUCell", "GroupNorm", "Identity", "L1Loss", "LSTMCell", "LayerNorm", "LeakyReLU",
    "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "MultiheadAttention",
    "NLLLoss", "Parameter", "RMSNorm", "RNNCell", "ReLU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax",
    "Softplus", "Tanh", "functional", "init", "read_npz", "summary", "utils",
]
