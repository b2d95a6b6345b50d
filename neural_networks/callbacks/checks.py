"""Checks the callbacks share: argument types, and the metric a callback monitors (its name,
which way is better, the error when an epoch's logs lack it)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["is_number", "is_index", "direction", "missing", "finite"]


def is_number(value) -> bool:
    """Whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_index(value) -> bool:
    """Whether ``value`` is an integer (a bool is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def direction(monitor: str, mode: str, owner: str) -> str:
    """``"min"`` or ``"max"``; ``mode="auto"`` reads it from the name (losses down, accuracies up).

    Raises ``ValueError`` (naming ``owner``) for an empty or non-string ``monitor``, a ``mode``
    other than ``auto``, ``min`` or ``max``, and ``auto`` with a name that is neither a loss nor an
    accuracy."""
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"{owner}: monitor must be a metric name such as 'val_loss'; got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name.endswith("loss"):
        return "min"
    if name.endswith("accuracy") or name == "acc":
        return "max"
    raise ValueError(
        f"{owner}: mode='auto' cannot tell whether {monitor!r} should go down or up; pass mode='min' or mode='max'"
    )


def missing(owner: str, monitor: str, logs: dict) -> ValueError:
    """The error for an epoch whose ``logs`` lack ``monitor``, naming the keys they hold."""
    hint = (
        " (val_* values exist only when the data set holds validation examples)" if monitor.startswith("val_") else ""
    )
    return ValueError(
        f"{owner}: monitor={monitor!r} is not in the epoch's logs; available: {', '.join(logs) or 'none'}{hint}"
    )


def finite(value: float):
    """``value`` as a float, or ``None`` for an infinite one (JSON holds no infinity)."""
    return float(value) if math.isfinite(value) else None
