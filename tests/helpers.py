"""Shared helpers for the unit tests: finite differences, error measures, random arrays.

Every random helper takes a seeded ``numpy.random.Generator`` so that a failing test can be
reproduced exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "numerical_gradient",
    "relative_error",
    "randn",
    "rand_away_from_zero",
    "distinct_values",
    "one_hot",
    "probabilities",
    "layer_to_float64",
]


def numerical_gradient(f, x: np.ndarray, dout=1.0, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference estimate of ``d(sum(f(x) * dout)) / dx`` in float64.

    ``f`` takes ``x`` (which is perturbed in place, one element at a time, and restored) and
    returns an array (or a scalar, with ``dout = 1``). ``x`` must be a float64 array.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    dout = np.asarray(dout, dtype=np.float64)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        plus = np.array(f(x), dtype=np.float64, copy=True)
        x[idx] = old - h
        minus = np.array(f(x), dtype=np.float64, copy=True)
        x[idx] = old
        grad[idx] = np.sum((plus - minus) * dout) / (2.0 * h)
        it.iternext()
    return grad


def relative_error(a, b) -> float:
    """``max|a - b| / max(1e-12, max(|a| + |b|))``: 0 for equal arrays, scale-free otherwise."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(a) + np.abs(b)))))


def randn(rng: np.random.Generator, *shape, dtype=np.float64) -> np.ndarray:
    """Standard normal draws of ``shape``."""
    return rng.standard_normal(shape).astype(dtype)


def rand_away_from_zero(rng: np.random.Generator, *shape, margin: float = 1e-3) -> np.ndarray:
    """Normal draws whose magnitude is at least ``margin`` (keeps ReLU away from its kink)."""
    X = rng.standard_normal(shape)
    small = np.abs(X) < margin
    X[small] = np.where(X[small] >= 0, 1.0, -1.0) * (margin + rng.uniform(0.1, 1.0, size=int(small.sum())))
    return X


def distinct_values(rng: np.random.Generator, *shape, step: float = 0.01) -> np.ndarray:
    """Shuffled, pairwise distinct values on a grid of spacing ``step``, none within
    ``step / 2`` of zero: no ties for max pooling and no ReLU kinks under a tiny perturbation."""
    n = int(np.prod(shape))
    grid = (np.arange(n) - n // 2 + 0.5) * step
    return rng.permutation(grid).reshape(shape)


def one_hot(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """``(m, k)`` float64 one-hot rows with random classes."""
    Y = np.zeros((m, k))
    Y[np.arange(m), rng.integers(0, k, size=m)] = 1.0
    return Y


def probabilities(rng: np.random.Generator, m: int, k: int, low: float = 0.05) -> np.ndarray:
    """``(m, k)`` rows of strictly positive probabilities (each at least about ``low / k``)."""
    P = rng.uniform(low, 1.0, size=(m, k))
    return P / P.sum(axis=1, keepdims=True)


def layer_to_float64(layer) -> None:
    """Convert every parameter (and gradient) of ``layer`` to float64, in place."""
    for key in list(layer.parameters):
        layer.parameters[key] = layer.parameters[key].astype(np.float64)
    for key in list(layer.gradients):
        layer.gradients[key] = layer.gradients[key].astype(np.float64)
