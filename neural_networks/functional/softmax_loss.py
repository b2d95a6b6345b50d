"""Fast fused softmax + cross-entropy at the logits, checked against
:func:`neural_networks.functional.reference.softmax_cross_entropy`.

The loss comes from log-sum-exp (no ``log`` of a probability that underflowed to 0), and the
gradient is computed in place from the same exponentials, in its exact form for targets whose
rows need not sum to one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax_cross_entropy"]


def log_softmax(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable ``log(softmax(Z))`` via log-sum-exp, ``Z``'s shape."""
    shifted = Z - Z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(Z: np.ndarray, Y: np.ndarray):
    """Fused softmax + cross-entropy on logits ``Z (m, k)`` and targets ``Y (m, k)``.

    Returns ``(loss, dZ, probabilities)`` with ``loss = -sum(Y * log softmax(Z)) / m`` and its
    exact gradient ``dZ = (softmax(Z) * sum(Y, axis=1) - Y) / m`` which is ``(Y_hat - Y) / m``
    whenever each target row sums to one (one-hot or label-smoothed targets).
    """
    m = Z.shape[0]
    logp = log_softmax(Z)
    loss = float(-(Y * logp).sum() / m)
    P = np.exp(logp)
    dZ = P * Y.sum(axis=1, keepdims=True)
    dZ -= Y
    dZ /= m
    return loss, dZ, P
