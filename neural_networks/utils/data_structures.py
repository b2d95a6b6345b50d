"""``AttrDict`` (the starter scripts' argument dictionaries) and ``integers_to_one_hot``."""

from __future__ import annotations

import numpy as np

__all__ = ["AttrDict", "to_plain", "integers_to_one_hot"]


class AttrDict(dict):
    """A ``dict`` whose keys are also attributes: ``args.lr`` is ``args["lr"]``, ``args.lr = 0.1``
    sets the key and ``del args.lr`` removes it. A missing key read as an attribute raises
    ``AttributeError`` (so ``hasattr`` and ``getattr(args, key, default)`` behave); names of
    ``dict`` methods (``items``, ``keys``, ...) stay methods, read those keys with ``args["items"]``.
    Nested dicts are left as they are, as in the course's starter code. Anything that accepts a
    dict accepts an AttrDict; :func:`to_plain` turns one (and what it holds) into plain data."""

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no key or attribute {key!r}") from None

    def __setattr__(self, key: str, value) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no key {key!r}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


def to_plain(value):
    """``value`` as plain JSON/YAML data: mappings (AttrDicts too) become ``dict``, tuples and
    lists ``list``, NumPy scalars and arrays Python numbers and lists. Other values pass unchanged."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def integers_to_one_hot(integer_vector, max_val: int | None = None) -> np.ndarray:
    """Class indices ``(m,)`` (or ``(m, 1)``) -> one-hot float64 rows ``(m, max_val + 1)``.

    ``max_val`` is the largest class index (default: the largest index present). Indices must be
    non-negative whole numbers no larger than ``max_val``; anything else is a ``ValueError`` naming
    the offending value."""
    labels = np.asarray(integer_vector)
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise ValueError(f"integers_to_one_hot expects a vector of class indices, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            bad = labels[~np.isfinite(labels) | (labels != np.round(labels))][0]
            raise ValueError(f"integers_to_one_hot: class indices must be whole numbers; got {bad!r}")
    elif labels.dtype.kind not in "iub":
        raise ValueError(f"integers_to_one_hot: class indices must be integers; got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"integers_to_one_hot: class indices must be non-negative; got {int(labels.min())}")
    if max_val is None:
        max_val = int(labels.max()) if labels.size else -1
    elif isinstance(max_val, bool) or not isinstance(max_val, (int, np.integer)) or max_val < 0:
        raise ValueError(f"integers_to_one_hot: max_val must be a non-negative int; got {max_val!r}")
    if labels.size and labels.max() > max_val:
        raise ValueError(f"integers_to_one_hot: class index {int(labels.max())} exceeds max_val={max_val}")
    one_hot = np.zeros((labels.shape[0], int(max_val) + 1))
    one_hot[np.arange(labels.shape[0]), labels] = 1.0
    return one_hot
