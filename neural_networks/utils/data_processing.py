"""Column-wise data helpers: ``center``, ``normalize`` (to [0, 1]) and ``standardize``.

Each returns a new floating array and leaves its input unchanged; statistics are taken along
``axis`` (default 0, per feature of an ``(m, d)`` design matrix) and broadcast back over it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["center", "normalize", "standardize"]


def _float(X) -> np.ndarray:
    X = np.asarray(X)
    return X if X.dtype.kind == "f" else X.astype(np.float64)


def center(X, axis=0) -> np.ndarray:
    """``X - mean(X, axis)``."""
    X = _float(X)
    return X - X.mean(axis=axis, keepdims=True)


def normalize(X, axis=0, max_val=None) -> np.ndarray:
    """``(X - min) / (max - min)`` along ``axis``, i.e. each feature mapped onto [0, 1]; with
    ``max_val`` (e.g. 255 for pixels) ``(X - min) / max_val`` instead. A constant feature becomes 0."""
    X = _float(X)
    shifted = X - X.min(axis=axis, keepdims=True)
    if max_val is not None:
        if isinstance(max_val, bool) or not np.isscalar(max_val) or not max_val > 0:
            raise ValueError(f"normalize: max_val must be a positive number; got {max_val!r}")
        return shifted / max_val
    spread = shifted.max(axis=axis, keepdims=True)
    return shifted / np.where(spread > 0, spread, 1)


def standardize(X, axis=0) -> np.ndarray:
    """``(X - mean) / (std + 1e-10)`` along ``axis`` (the course's formula; a constant feature becomes 0)."""
    X = _float(X)
    return (X - X.mean(axis=axis, keepdims=True)) / (X.std(axis=axis, keepdims=True) + 1e-10)
