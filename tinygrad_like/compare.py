"""The blog's gradient comparison, kept importable here: it lives in the blog study (``blog/compare.py``)."""

from .blog.compare import (
    FD_RTOL,
    RTOL,
    GradientReport,
    ParameterComparison,
    UpdateComparison,
    compare_gradients,
    compare_update,
    finite_difference,
    hand_gradients,
)

__all__ = ["FD_RTOL", "RTOL", "GradientReport", "ParameterComparison", "UpdateComparison", "compare_gradients",
           "compare_update", "finite_difference", "hand_gradients"]
