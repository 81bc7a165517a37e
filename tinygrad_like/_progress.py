"""The one progress bar: tqdm's, shown on terminals and as widgets (or text) in notebooks."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True) -> Any:
    """A ``tqdm.auto`` bar of ``total`` steps, or None when not ``enabled`` or tqdm is missing.

    ``disable=None`` lets tqdm hide the bar when stderr is not a terminal (logs, pipes, CI: there a bar is a
    stream of carriage returns); in a notebook ``tqdm.auto`` draws a widget. Byte counts (``unit="B"``) are
    shown scaled (KiB, MiB).
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    scaled = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None, **scaled)
