"""Checks of user input shared by several rooms."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_labels(labels: np.ndarray, classes: int, op: str) -> np.ndarray:
    """``labels`` as an integer array of shape (N,) with values in [0, classes); ValueError naming ``op`` else."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: expects integer labels of shape (N,), got {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{op}: labels must be in [0, {classes}), got values from {labels.min()} to {labels.max()}")
    return labels


def is_int(value: Any) -> bool:
    """An int or NumPy integer, not a bool (True is no size)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """An int or float (Python's or NumPy's), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, op: str, minimum: int = 1) -> int:
    """``value`` (argument ``name`` of ``op``) as an int of at least ``minimum``; TypeError / ValueError else."""
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value}")
    return int(value)


def check_real(value: Any, name: str, op: str) -> float:
    """``value`` (argument ``name`` of ``op``) as a float: an int or float, not a bool; TypeError else."""
    if not is_number(value):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    return float(value)


def check_flag(value: Any, name: str, op: str) -> bool:
    """``value`` (argument ``name`` of ``op``) if it is a bool (Python's or NumPy's); TypeError else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {value!r}")
    return bool(value)


def check_probability(value: Any, name: str, op: str) -> float:
    """``value`` (argument ``name`` of ``op``) as a float if it is a number in [0, 1]; ValueError else (NaN too)."""
    if not (is_number(value) and 0 <= value <= 1):
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_device(device: Any, op: str) -> str:
    """'cpu' when ``device`` (a string such as 'cpu' or 'cpu:0', or an object with a ``type``, as PyTorch's
    ``device``) names the CPU, the one device there is: this library computes with NumPy. RuntimeError naming
    ``op`` else."""
    name = str(getattr(device, "type", device))
    if name.split(":")[0] != "cpu":
        raise RuntimeError(f"{op}: device {name!r} is not available: tinygrad_like computes with NumPy on the CPU; "
                           "use 'cpu' (or leave the device out)")
    return "cpu"
