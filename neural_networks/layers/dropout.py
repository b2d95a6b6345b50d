"""Inverted dropout: in training mode it zeroes a random fraction ``p`` of its inputs and scales
the rest by ``1 / (1 - p)``; in evaluation (``layer.training`` False) it is the identity."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..validation import number
from .base import Layer, _as_float

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout: in training mode ``Y = X * mask / (1 - p)`` with ``mask`` Bernoulli
    ``(1 - p)`` drawn from ``self.rng`` (NumPy's global state when it is None); the identity in
    evaluation mode and when ``p == 0``. Any input shape; the output has the input's shape and
    floating dtype (integers become float32); ``backward`` applies the same mask and scale.
    ``ValueError`` for a ``p`` outside [0, 1) and for an empty input.

    Example:
        >>> import numpy as np
        >>> from neural_networks.layers import Dropout
        >>> drop = Dropout(0.5)
        >>> drop.rng = np.random.default_rng(0)  # a seeded model sets one per layer
        >>> sorted(set(drop.forward(np.ones((4, 8))).ravel().tolist()))  # kept inputs are scaled by 2
        [0.0, 2.0]
        >>> float(drop.eval().forward(np.ones((4, 8))).min())  # the identity in evaluation mode
        1.0
    """

    name = "dropout"
    stochastic = True  # the model reseeds rng per epoch, so resumed runs draw the same masks

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = number(p, "Dropout p")
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1); got {p!r}")

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``X * mask / (1 - p)`` with a new mask while training, else ``X`` itself."""
        X = _as_float(X, self.where)
        if X.ndim < 1 or X.size == 0:
            raise ValueError(f"{self.where}: expected a non-empty array, got shape {X.shape}")
        self.n_in = self.n_out = int(X.shape[-1])
        self.cache["shape"] = X.shape
        self.cache["dtype"] = X.dtype
        if not self.training or self.p == 0.0:
            self.cache["mask"] = None
            return X
        if self.rng is None:  # no seeded model: NumPy's global state, like the weight initializers
            keep = np.random.random_sample(X.shape) >= self.p
        else:
            draw_dtype = np.float64 if X.dtype == np.float64 else np.float32
            keep = self.rng.random(X.shape, dtype=draw_dtype) >= self.p  # True with probability 1 - p
        self.cache["mask"] = keep
        return F.dropout(X, keep, self.p)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """``dL/dY`` through the last forward pass's mask and scale (``ValueError`` for another shape)."""
        dLdY = self._check_grad_shape(dLdY, self.cache["shape"]).astype(self.cache["dtype"], copy=False)
        keep = self.cache["mask"]
        if keep is None:
            return dLdY
        return F.dropout_backward(dLdY, keep, self.p)

    def config(self) -> dict:
        return {"name": self.name, "p": self.p}
