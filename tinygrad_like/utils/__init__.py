"""Utilities under PyTorch's names: ``utils.data`` (``Dataset``, ``TensorDataset``, ``DataLoader``, ...)."""

from . import data

__all__ = ["data"]
