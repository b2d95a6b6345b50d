"""Batch normalisation: the layer around the ``batchnorm_*`` kernels of
:mod:`neural_networks.functional`.

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
    (``scale=False``: no ``gamma``, the scale stays 1, as airbench's batch norm and Keras'
    ``BatchNormalization(scale=False)``);
    ``n_in = n_out = c``. Training mode uses the batch's mean and biased variance and updates
    ``buffers["running_mean"]`` / ``buffers["running_var"]`` as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the unbiased variance.
    Evaluation mode uses the running statistics.

    With ``activation="relu"`` (an activation whose ``fused_kernel`` is ``"relu"``) the
    rectification is applied in place to the layer's own output array and only that output is
    cached (its positive entries are those of the pre-activation); other activations cache the
    pre-activation ``Z`` as the other layers do (see :class:`ActivatedLayer`).
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
        X2 = X.reshape(-1, c)
        gamma = self._param("gamma", dtype) if self.scale else self._ones(c, dtype)
        beta = self._param("beta", dtype)
        fused = self.activation.fused_kernel == "relu"
        if self.training:
            M = X2.shape[0]
            if M < 2:
                raise ValueError(
                    f"{self.where}: training needs more than one value per feature to estimate the variance, "
                    f"got input of shape {X.shape}"
                )
            # An activation with a block kernel (GELU) is applied to each normalised block while
            # it is in cache: the pre-activation is never written out and read back.
            blocks = None if fused else self.activation.slope_blocks(dtype)
            slope = None if blocks is None else np.empty(X2.shape, dtype=dtype)
            Z2, mean, inv_std, var = F.batchnorm_train_forward(
                X2, gamma, beta, self.eps, relu=fused, slope_blocks=blocks, slope=slope
            )
            self._update_running(mean, var * (M / (M - 1)))
            self.cache = OrderedDict(mode="train", X=X2, mean=mean, inv_std=inv_std, gamma=gamma)
            if slope is not None:
                return self._activate(Z2.reshape(X.shape), slope=slope.reshape(X.shape))
        else:
            mean = self.buffers["running_mean"].astype(dtype, copy=False)
            var = self.buffers["running_var"].astype(dtype, copy=False)
            Z2, inv_std = F.batchnorm_eval_forward(X2, gamma, beta, mean, var, self.eps)
            self.cache = OrderedDict(mode="eval", X=X2, mean=mean, inv_std=inv_std, gamma=gamma)
            if fused:
                np.maximum(Z2, 0, out=Z2)
        # With the fused ReLU, Z is this call's own rectified output: only it is kept, its
        # positive entries being exactly those of the pre-activation (one array fewer).
        return self._activate(Z2.reshape(X.shape), fused=fused)

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

    def _backward_from_output(self, Y: np.ndarray, dLdY: np.ndarray) -> np.ndarray:
        if self.cache["mode"] != "train":
            return super()._backward_from_output(Y, dLdY)
        # the training kernel masks dL/dY by Y > 0 itself, block by block with its sums
        return self._backward(dLdY, overwrite=False, relu_output=Y)

    def _backward_temporary(self, dLdZ: np.ndarray, owned: bool) -> np.ndarray:
        # A dL/dZ made by backward (e.g. dY * (Y > 0) for the fused ReLU) is scratch for the kernel.
        return self._backward(dLdZ, overwrite=owned)

    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        """Backward pass given ``dL/dZ`` (the gradient before the activation)."""
        return self._backward(dLdZ, overwrite=False)

    def _backward(self, dLdZ: np.ndarray, overwrite: bool, relu_output: np.ndarray | None = None) -> np.ndarray:
        cache = self.cache
        X2 = cache["X"]
        shape = self._kept().shape
        c = shape[-1]
        dZ = np.asarray(dLdZ).astype(X2.dtype, copy=False).reshape(-1, c)
        if cache["mode"] == "train":
            Y2 = None if relu_output is None else relu_output.reshape(-1, c)
            dX, dgamma, dbeta = F.batchnorm_train_backward(
                dZ, X2, cache["mean"], cache["inv_std"], cache["gamma"], overwrite_dZ=overwrite, relu_output=Y2
            )
        else:
            dX, dgamma, dbeta = F.batchnorm_eval_backward(dZ, X2, cache["mean"], cache["inv_std"], cache["gamma"])
        if self.scale:
            self._store_gradient("gamma", dgamma)
        self._store_gradient("beta", dbeta)
        return dX.reshape(shape)

    def config(self) -> dict:
        return {
            "name": self.name,
            "momentum": self.momentum,
            "eps": self.eps,
            "activation": self.activation.name,
            "scale": self.scale,
        }
