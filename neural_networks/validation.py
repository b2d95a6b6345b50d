"""Argument checks shared by the library's constructors. Each returns the value converted to a
plain Python number or raises ``ValueError`` naming the argument and the value it got.
Non-finite numbers (``inf``, ``nan``) are refused: no hyperparameter here means anything with them."""

from __future__ import annotations

import numpy as np

__all__ = ["number", "positive", "non_negative", "positive_int", "boolean"]

_REALS = (int, float, np.integer, np.floating)


def number(value, what: str) -> float:
    """``value`` as a finite float; booleans, non-numbers, ``inf`` and ``nan`` are refused."""
    if isinstance(value, bool) or not isinstance(value, _REALS) or not np.isfinite(value):
        raise ValueError(f"{what} must be a finite number; got {value!r}")
    return float(value)


def positive(value, what: str) -> float:
    """A finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, _REALS) or not 0 < value < np.inf:
        raise ValueError(f"{what} must be positive; got {value!r}")
    return float(value)


def non_negative(value, what: str) -> float:
    """A finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, _REALS) or not 0 <= value < np.inf:
        raise ValueError(f"{what} must be a non-negative number; got {value!r}")
    return float(value)


def positive_int(value, what: str) -> int:
    """An integer >= 1 (floats such as 2.0 are refused, as a shape would be wrong)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}")
    return int(value)


def boolean(value, what: str) -> bool:
    """``True`` or ``False`` (also NumPy booleans); strings such as ``"false"`` and numbers are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be true or false; got {value!r}")
    return bool(value)
