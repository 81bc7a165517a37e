"""Checks of the layers' constructor arguments, strict as a saved config is untrusted input: sizes, numbers, flags,
probabilities (``check_int``, ``check_real``, ``check_flag``, ``check_probability``, shared with the rest of the
package), and PyTorch's ``device=`` / ``dtype=`` keywords with the dtype a layer records in its config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_flag, check_int, check_probability, check_real
from ..tensors import device_and_dtype

if TYPE_CHECKING:
    from .module import Module

__all__ = ["check_flag", "check_int", "check_probability", "check_real", "dtype_config", "factory_dtype",
           "parameter_dtype"]


def factory_dtype(dtype: Any, device: Any, owner: str) -> np.dtype:
    """The dtype of a new layer's parameters (and floating buffers): float32 unless ``dtype`` names a floating
    type; ``device`` must be the CPU (see ``device_and_dtype``)."""
    dt = device_and_dtype(owner, device=device, dtype=dtype)
    if dt is not None and dt.kind != "f":
        raise TypeError(f"{owner}: parameters must have a floating dtype, got {dt}")
    return np.dtype(np.float32) if dt is None else dt


def parameter_dtype(module: Module) -> np.dtype:
    """The dtype of ``module``'s floating parameters and buffers (they share one; ``module.to(dtype)`` changes
    it); float32 for a layer without any."""
    state = (*module.parameters(), *module.buffers())
    return next((t.dtype for t in state if t.dtype.kind == "f"), np.dtype(np.float32))


def dtype_config(module: Module) -> dict[str, str]:
    """``{"dtype": name}`` when ``module``'s parameters are not of the default float32 (so that a saved float64
    layer loads as one, and ``float64`` layers rebuild with ``dtype=``); ``{}`` else."""
    dtype = parameter_dtype(module)
    return {} if dtype == np.float32 else {"dtype": dtype.name}
