"""The spec's numerical gradient check (two-sided finite differences).

:func:`numerical_gradient` estimates ``dL/dx`` for ``L = sum(fn(x) * dLdf)``; :func:`check_gradients`
compares an analytic gradient with that estimate as the course's notebook does and returns the
relative error ``||numerical - grad|| / ||numerical + grad||``. Correct float64 layers give errors
below 1e-8; float32 inputs give errors near 1e-3 from rounding the 1e-6 step alone.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numerical_gradient", "check_gradients"]


def _check_point(x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"x must be a floating NumPy array (it is perturbed in place); got {kind}")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place, one element at a time, and restored")
    return x


def numerical_gradient(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dLdf=1.0, h: float = 1e-6) -> np.ndarray:
    """``(L(x + h e_i) - L(x - h e_i)) / (2h)`` for every element ``i`` of ``x``, where
    ``L(x) = sum(fn(x) * dLdf)`` (``dLdf`` is the upstream gradient, or ``1`` when ``fn`` returns
    the loss). Returns a float64 array shaped like ``x``.

    ``x`` is perturbed in place and every element is put back exactly as it was; ``fn`` may
    return an array it reuses between calls (each result is copied). Cost: two calls of ``fn``
    per element of ``x``. Use float64 for meaningful estimates."""
    x = _check_point(x)
    dLdf = np.asarray(dLdf, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        original = x[index]
        try:
            x[index] = original + h
            plus = np.sum(np.array(fn(x), dtype=np.float64) * dLdf)
            x[index] = original - h
            minus = np.sum(np.array(fn(x), dtype=np.float64) * dLdf)
        finally:
            x[index] = original
        grad[index] = (plus - minus) / (2.0 * h)
    return grad


def check_gradients(
    fn: Callable[[np.ndarray], np.ndarray], grad: np.ndarray, x: np.ndarray, dLdf, h: float = 1e-6
) -> float:
    """Relative error ``||numerical - grad|| / ||numerical + grad||`` between the analytic gradient
    ``grad`` of ``L = sum(fn(x) * dLdf)`` at ``x`` and its two-sided finite-difference estimate
    (:func:`numerical_gradient`, step ``h``). ``x`` is left as it was. Two zero gradients give 0.

    ``fn``: the function checked, e.g. ``layer.forward`` for the input gradient or
    ``layer.forward_with_param("W", X)`` for a parameter's; ``dLdf``: the upstream gradient used
    in the backward pass (the scalar 1 for a loss)."""
    numerical = numerical_gradient(fn, x, dLdf, h)
    grad = np.asarray(grad, dtype=np.float64)
    if grad.shape != numerical.shape:
        raise ValueError(f"grad has shape {grad.shape} but x has shape {numerical.shape}; they must match")
    difference = float(np.linalg.norm(numerical - grad))
    total = float(np.linalg.norm(numerical + grad))
    if total == 0.0:
        return 0.0 if difference == 0.0 else float("inf")
    return difference / total
