"""Reshaping layers."""

from __future__ import annotations

import numpy as np

from .base import Layer, _as_float

__all__ = ["Flatten"]


class Flatten(Layer):
    """Reshape to 2-D. ``keep_dim="first"``: ``(batch, ...) -> (batch, prod(...))``;
    ``"last"``: ``(..., c) -> (prod(...), c)``; ``-1``: everything into one row ``(1, size)``.
    ``backward`` reshapes ``dL/dY`` back to the input's shape. No parameters; integer input
    becomes float32.

    Raises:
        ValueError: for another ``keep_dim``, an empty input, and a ``dL/dY`` in :meth:`backward`
            whose size differs from the input's.

    Example:
        >>> import numpy as np
        >>> from neural_networks import Flatten
        >>> Flatten().forward(np.zeros((2, 4, 4, 3))).shape
        (2, 48)
    """

    name = "flatten"

    def __init__(self, keep_dim="first") -> None:
        super().__init__()
        if keep_dim not in ("first", "last", -1):
            raise ValueError(f"Flatten keep_dim must be 'first', 'last' or -1; got {keep_dim!r}")
        self.keep_dim = keep_dim

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``X`` reshaped to 2-D as ``keep_dim`` says (a view where NumPy can make one)."""
        X = _as_float(X, self.where)
        if X.ndim < 1 or X.size == 0:
            raise ValueError(f"{self.where}: expected a non-empty array, got shape {X.shape}")
        self.cache["in_dims"] = X.shape
        if self.keep_dim == -1:
            Y = X.reshape(1, -1)
        elif self.keep_dim == "first":
            Y = X.reshape(X.shape[0], -1)
        else:
            Y = X.reshape(-1, X.shape[-1])
        self.n_in, self.n_out = int(np.prod(X.shape[1:])), Y.shape[1]
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """``dL/dY`` reshaped to the last forward input's shape."""
        in_dims = self.cache["in_dims"]
        dLdY = np.asarray(dLdY)
        if dLdY.size != int(np.prod(in_dims)):
            raise ValueError(
                f"{self.where}: backward got dLdY of shape {dLdY.shape}, which does not reshape to the input shape {in_dims}"
            )
        return dLdY.reshape(in_dims)

    def config(self) -> dict:
        return {"name": self.name, "keep_dim": self.keep_dim}
