"""How a data set's examples are divided into splits: stratified by class and fixed by a seed, so
that every run, and every data set built from the same labels, sees the same split."""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_SPLIT_SEED", "stratified_split", "split_validation"]

#: Fixes the validation split of the image data sets unless a ``split_seed`` is given.
DEFAULT_SPLIT_SEED = 189


def stratified_split(labels: np.ndarray, fractions, seed: int) -> list[np.ndarray]:
    """Split the indices of ``labels`` ``(m,)`` into parts with the given fractions (summing to 1),
    keeping every class's proportion; deterministic for a given ``seed``. Returns one sorted int
    index array per fraction. ``ValueError`` when the fractions do not sum to 1."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    bounds = np.cumsum(fractions)
    if not np.isclose(bounds[-1], 1.0):
        raise ValueError(f"split fractions must sum to 1; got {fractions}")
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(bounds * idx.size).astype(int)
        start = 0
        for part, stop in zip(parts, cuts):
            part.append(idx[start:stop])
            start = stop
    return [np.sort(np.concatenate(p)) for p in parts]


def split_validation(labels: np.ndarray, validation_size, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: hold out ``validation_size`` examples (an int count, or a float
    fraction in ``[0, 1)``), stratified by class (each class contributes in proportion, the
    rounding distributed by largest remainder so the count is exact) from ``labels`` ``(m,)``.
    Deterministic for a given ``seed``; both index arrays sorted. ``ValueError`` for a bool, a
    fraction outside ``[0, 1)`` or a count that leaves no training example."""
    labels = np.asarray(labels)
    m = labels.shape[0]
    if isinstance(validation_size, bool):
        raise ValueError(f"validation_size must be a count or a fraction; got {validation_size!r}")
    if isinstance(validation_size, (float, np.floating)):
        if not 0.0 <= validation_size < 1.0:
            raise ValueError(f"a fractional validation_size must lie in [0, 1); got {validation_size}")
        n_val = int(round(validation_size * m))
    else:
        n_val = int(validation_size)
    if not 0 <= n_val < m:
        raise ValueError(f"validation_size must leave training examples: asked for {n_val} of {m}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (n_val / m) if m else counts * 0.0
    take = np.floor(quota).astype(int)
    short = n_val - int(take.sum())
    if short:
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    val_parts, train_parts = [], []
    for cls, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        val_parts.append(idx[:k])
        train_parts.append(idx[k:])
    if not classes.size:
        return np.arange(0), np.arange(0)
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))
