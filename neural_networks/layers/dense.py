"""The fully connected (dense) layer, around :func:`neural_networks.functional.dense`."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..activations import initialize_activation
from ..validation import boolean, number
from ..weights import initialize_weights
from .base import _as_float, _output_size, _param_dtype, _ParametricLayer

__all__ = ["FullyConnected"]


class FullyConnected(_ParametricLayer):
    """``Y = activation(X @ W + b)``: ``X (m, n_in), W (n_in, n_out), b (1, n_out) -> Y (m, n_out)``.

    ``use_bias=False`` (as in Keras; PyTorch's ``bias=False``) leaves out ``b``, e.g. before a
    :class:`BatchNorm`, whose shift makes a bias redundant; ``parameters`` then holds only ``W``.
    ``n_out=None`` (the course's output layer) is filled in by the model from the data set.
    ``output_scale``: a constant ``s`` in ``Y = activation(s * (X @ W + b))``; on logits (e.g. 1/9)
    it acts like a temperature and changes the training dynamics in a way that scaling the
    initial weights does not.

    Dtypes: computed in the input's floating dtype (integers become float32); parameters are made
    on the first forward pass, float64 for float64 input, else float32.

    Raises:
        ValueError: (constructor) for an ``n_out`` that is not a positive int or ``None``, an unknown
            ``activation`` or ``weight_init``, a non-boolean ``use_bias`` or an ``output_scale`` that
            is not a positive number; (:meth:`forward`) for input that is not 2-D, an empty batch, or
            another feature count than the parameters were made for.

    Example:
        >>> import numpy as np
        >>> from neural_networks import FullyConnected
        >>> layer = FullyConnected(3, activation="relu")
        >>> Y = layer.forward(np.ones((2, 4), dtype=np.float32))
        >>> Y.shape, Y.dtype, layer.parameters["W"].shape, layer.parameters["b"].shape
        ((2, 3), dtype('float32'), (4, 3), (1, 3))
        >>> layer.backward(np.ones_like(Y)).shape  # fills layer.gradients, returns dL/dX
        (2, 4)
    """

    name = "fully_connected"

    def __init__(
        self,
        n_out: int | None = None,
        activation="linear",
        weight_init: str = "xavier_uniform",
        use_bias: bool = True,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.output_scale = number(output_scale, "FullyConnected output_scale")
        if not (math.isfinite(self.output_scale) and self.output_scale > 0):
            raise ValueError(f"FullyConnected output_scale must be a positive number; got {output_scale!r}")
        self.n_out = _output_size(n_out, "FullyConnected n_out")
        self.activation = initialize_activation(activation)
        initialize_weights(weight_init, activation=self.activation.name)  # validate the name now
        self.weight_init = weight_init
        self.use_bias = boolean(use_bias, "FullyConnected use_bias")

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """``W (n_in, n_out)`` and, with a bias, ``b (1, n_out)``."""
        self._check_output_size()
        shapes = {"W": (int(n_in), self.n_out), "b": (1, self.n_out)}
        return {name: shapes[name] for name in self.parameter_names}

    def _init_parameters(self, X_shape, dtype=np.float64) -> None:
        """Create ``W (n_in, n_out)``, ``b (1, n_out)`` and zero gradients for input ``X_shape``."""
        shapes = self.parameter_shapes(X_shape[1])  # first: it raises while n_out is unknown
        self.n_in = int(X_shape[1])
        self._init(shapes, self.weight_init, dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``Y = activation(output_scale * (X @ W + b))``: ``X (m, n_in) -> Y (m, n_out)``;
        ``ValueError`` for another rank or feature count."""
        X = _as_float(X, self.where)
        self._check_rank(X, 2, "(batch, features)")
        if self.n_in is None:
            self._init_parameters(X.shape, _param_dtype(X))
        self._check_features(X.shape[1], "features", X.shape)
        W, b = self._param("W", X.dtype), self._bias(X.dtype)
        Y, self.cache = F.dense(X, W, b, self.activation, self.training, scale=self.output_scale)
        return Y

    def _backward(self, dL: np.ndarray, activation) -> np.ndarray:
        """``dL (m, n_out) -> dL/dX (m, n_in)`` (``None`` for a network's first layer); fills
        ``gradients["W"]`` and ``gradients["b"]``."""
        W = self._param("W", dL.dtype)
        dX, dW, db = F.dense_backward(
            dL, W, self.cache, activation, self.input_gradient, self.use_bias, scale=self.output_scale
        )
        self._store_gradient("W", dW)
        if self.use_bias:
            self._store_gradient("b", db)
        return dX

    def config(self) -> dict:
        return {
            "name": self.name,
            "n_out": self.n_out,
            "activation": self.activation.name,
            "weight_init": self.weight_init,
            "use_bias": self.use_bias,
            "output_scale": self.output_scale,
        }
