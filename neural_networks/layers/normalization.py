"""Batch normalisation: the layer around :func:`neural_networks.functional.batchnorm_train` and
:func:`~neural_networks.functional.batchnorm_eval`.

It behaves differently in training and evaluation (``layer.training``, switched by
``NeuralNetwork.train_mode`` / ``eval_mode``): it normalises with the batch's statistics while
training and updates running estimates of them (kept in ``layer.buffers``, saved with the
model); in evaluation it normalises with the running estimates.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..activations import initialize_activation
from ..validation import boolean, number
from .base import ActivatedLayer, _as_float, _param_dtype

__all__ = ["BatchNorm"]


class BatchNorm(ActivatedLayer):
    """Batch normalisation over every axis but the last (per feature for ``(m, n)`` input,
    per channel for NHWC ``(m, rows, cols, c)`` input), followed by an optional activation:
    ``Y = activation(gamma * (X - mean) / sqrt(var + eps) + beta)``.

    ``gamma (1, c)`` (ones) and ``beta (1, c)`` (zeros) are created on the first forward pass
    (``scale=False``: no ``gamma``, the scale stays 1, as Keras'
    ``BatchNormalization(scale=False)``);
    ``n_in = n_out = c``. Training mode uses the batch's mean and biased variance and updates
    ``buffers["running_mean"]`` / ``buffers["running_var"]`` as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the unbiased variance.
    Evaluation mode uses the running statistics.

    The fast kernels apply a ReLU or GELU activation inside the normalising pass (see
    :func:`neural_networks.functional.fusion`); the results are those of normalising, then
    calling the activation. Dtypes as for :class:`FullyConnected`: the input's floating dtype.

    Raises:
        ValueError: (constructor) for a ``momentum`` outside [0, 1], an ``eps`` that is not
            positive, an unknown ``activation`` or a non-boolean ``scale``; (:meth:`forward`) as
            that method says.

    Example:
        >>> import numpy as np
        >>> from neural_networks.layers import BatchNorm
        >>> bn = BatchNorm()
        >>> Y = bn.forward(np.random.default_rng(0).normal(5.0, 3.0, size=(256, 4)))
        >>> bool(np.allclose(Y.mean(axis=0), 0.0) and np.allclose(Y.std(axis=0), 1.0, atol=1e-4))
        True
        >>> bn.buffers["running_mean"].shape  # moved 10% (momentum) towards the batch's mean
        (1, 4)
    """

    name = "batchnorm"
    parameter_groups = {"gamma": "normalization", "beta": "normalization"}

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, activation="linear", scale: bool = True) -> None:
        super().__init__()
        self.scale = boolean(scale, "BatchNorm scale")
        self.momentum = number(momentum, "BatchNorm momentum")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must be in [0, 1]; got {momentum!r}")
        self.eps = number(eps, "BatchNorm eps")
        if not self.eps > 0.0:
            raise ValueError(f"BatchNorm eps must be positive; got {eps!r}")
        self.activation = initialize_activation(activation)

    def _init_parameters(self, c: int, dtype=np.float32) -> None:
        """Create ``gamma``, ``beta``, zero gradients and the running statistics for ``c`` features,
        in ``dtype`` (float64 when the first input is float64, as for the other layers)."""
        self.n_in = self.n_out = int(c)
        self.parameters = OrderedDict(gamma=np.ones((1, c), dtype=dtype)) if self.scale else OrderedDict()
        self.parameters["beta"] = np.zeros((1, c), dtype=dtype)
        self.clear_gradients()
        self._init_buffers(c, dtype)
        self.cache = OrderedDict()
        self._forwarded = False

    def _init_buffers(self, c: int, dtype=np.float32) -> None:
        self.buffers["running_mean"] = np.zeros((1, c), dtype=dtype)
        self.buffers["running_var"] = np.ones((1, c), dtype=dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``X (..., c) -> Y`` of ``X``'s shape; training mode also updates the running statistics.
        ``ValueError`` for rank < 2, an empty input, another feature count, or (training) a single
        value per feature."""
        X = _as_float(X, self.where)
        if X.ndim < 2:
            raise ValueError(f"{self.where}: expected input of rank >= 2 (batch, ..., features), got shape {X.shape}")
        if X.size == 0:
            raise ValueError(f"{self.where}: got an empty input, shape {X.shape}")
        c = X.shape[-1]
        if self.n_in is None or not self.parameters:
            self._init_parameters(c, _param_dtype(X))
        self._check_features(c, "features (last axis)", X.shape)
        if self.n_out is None:  # parameters set from outside (e.g. by NeuralNetwork.load)
            self.n_out = self.n_in
        if "running_mean" not in self.buffers or "running_var" not in self.buffers:
            self._init_buffers(c)
        dtype = X.dtype
        gamma = self._param("gamma", dtype) if self.scale else self._ones(c, dtype)
        beta = self._param("beta", dtype)
        if self.training:
            M = X.size // c
            if M < 2:
                raise ValueError(
                    f"{self.where}: training needs more than one value per feature to estimate the variance, "
                    f"got input of shape {X.shape}"
                )
            Y, self.cache = F.batchnorm_train(X, gamma, beta, self.eps, self.activation)
            self._update_running(self.cache["mean"], self.cache["var"] * (M / (M - 1)))
        else:
            mean = self.buffers["running_mean"].astype(dtype, copy=False)
            var = self.buffers["running_var"].astype(dtype, copy=False)
            Y, self.cache = F.batchnorm_eval(X, gamma, beta, mean, var, self.eps, self.activation)
        return Y

    def _ones(self, c: int, dtype) -> np.ndarray:
        """The constant scale of a layer made with ``scale=False``."""
        ones = self._workspace.get(("ones", c, dtype))
        if ones is None:
            ones = self._workspace[("ones", c, dtype)] = np.ones((1, c), dtype=dtype)
        return ones

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("gamma", "beta") if self.scale else ("beta",)

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """``gamma (1, n_in)`` (with ``scale``) and ``beta (1, n_in)``."""
        return {name: (1, int(n_in)) for name in self.parameter_names}

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """``running_mean (1, n_in)`` and ``running_var (1, n_in)``."""
        return {name: (1, int(n_in)) for name in ("running_mean", "running_var")}

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        m = self.momentum
        for key, stat in (("running_mean", mean), ("running_var", unbiased_var)):
            old = self.buffers[key]
            self.buffers[key] = ((1.0 - m) * old + m * stat).astype(old.dtype, copy=False)

    def _backward(self, dL: np.ndarray, activation) -> np.ndarray:
        """``dL`` of ``X``'s shape -> ``dL/dX``; fills ``gradients["gamma"]`` and ``gradients["beta"]``."""
        dX, dgamma, dbeta = F.batchnorm_backward(dL, self.cache, activation)
        if self.scale:
            self._store_gradient("gamma", dgamma)
        self._store_gradient("beta", dbeta)
        return dX

    def config(self) -> dict:
        return {
            "name": self.name,
            "momentum": self.momentum,
            "eps": self.eps,
            "activation": self.activation.name,
            "scale": self.scale,
        }
