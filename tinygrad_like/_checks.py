"""Checks of user input shared by several rooms."""

from __future__ import annotations

import numpy as np


def check_labels(labels: np.ndarray, classes: int, op: str) -> np.ndarray:
    """``labels`` as an integer array of shape (N,) with values in [0, classes); ValueError naming ``op`` else."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: expects integer labels of shape (N,), got {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{op}: labels must be in [0, {classes}), got values from {labels.min()} to {labels.max()}")
    return labels
