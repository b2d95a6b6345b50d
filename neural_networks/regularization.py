"""Regularisation layers: batch normalisation and (inverted) dropout.

Both behave differently in training and evaluation (``layer.training``, switched by
``NeuralNetwork.train_mode`` / ``eval_mode``):

* :class:`BatchNorm` normalises with the batch's statistics while training and updates running
  estimates of them (kept in ``layer.buffers``, saved with the model); in evaluation it
  normalises with the running estimates.
* :class:`Dropout` zeroes a random fraction ``p`` of its inputs while training and scales the
  rest by ``1 / (1 - p)``; in evaluation it is the identity.

The array kernels (``batchnorm_*``) are pure functions, like those in
:mod:`neural_networks.functional`; the layers own the state and validate their input.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .activations import ReLU, initialize_activation
from .functional import column_sums
from .layers import Layer, _as_float, _param_dtype
from .validation import number

__all__ = [
    "BatchNorm",
    "Dropout",
    "batchnorm_train_forward",
    "batchnorm_train_backward",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
]


# ----------------------------------------------------------------------------- kernels
# Every kernel works on the flattened view ``X (M, c)`` (M = batch * rows * cols for NHWC
# input): statistics are per column. ``gamma``, ``beta``, statistics: ``(1, c)``.
#
# The kernels are memory-bound: each pass over an (M, c) array costs about as much as any
# other, so they are written to make few. Column sums read the data once
# (:func:`functional.column_sums`); the variance is one-pass
# (E[x^2] - E[x]^2) while no column's mean is large against its spread, and two-pass otherwise.

ONE_PASS_LIMIT = 64.0  # one-pass moments only where mean^2 <= ONE_PASS_LIMIT * var


def _one_pass_safe(mean: np.ndarray, var: np.ndarray) -> bool:
    """Whether ``E[x y] - E[x] E[y]`` loses at most a few digits in every column."""
    return bool(np.all(mean * mean <= ONE_PASS_LIMIT * var))


def batchnorm_train_forward(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """``X (M, c) -> Z (M, c), mean (1, c), inv_std (1, c), var (1, c)`` with batch statistics
    (``var`` is the biased variance used for normalising), ``Z = X * scale + shift``."""
    M = X.shape[0]
    dtype = X.dtype
    mean = column_sums(X) / M
    var = np.maximum(column_sums(X, X) / M - mean * mean, 0.0)
    if _one_pass_safe(mean, var):
        inv_std = 1.0 / np.sqrt(var + eps)
        scale = gamma.reshape(-1) * inv_std
        Z = np.multiply(X, scale.astype(dtype))
        Z += (beta.reshape(-1) - mean * scale).astype(dtype)
    else:  # two-pass: centre first, so the variance suffers no cancellation
        Z = np.subtract(X, mean.astype(dtype))
        var = column_sums(Z, Z) / M
        inv_std = 1.0 / np.sqrt(var + eps)
        Z *= (gamma.reshape(-1) * inv_std).astype(dtype)
        Z += beta.astype(dtype)
    as_row = lambda v: v.reshape(1, -1).astype(dtype)  # noqa: E731
    return Z, as_row(mean), as_row(inv_std), as_row(var)


def batchnorm_train_backward(dZ: np.ndarray, X: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                             gamma: np.ndarray, overwrite_dZ: bool = False):
    """``dZ (M, c) -> dX (M, c), dgamma (1, c), dbeta (1, c)`` for the training transform, from
    the input ``X`` and the batch statistics of :func:`batchnorm_train_forward` (``xhat`` is
    not stored):

    ``dX = gamma * inv_std * (dZ - sum(dZ) / M - xhat * sum(dZ * xhat) / M)``

    computed as ``a * dZ + b * X + c`` with per-column ``a, b, c``. With ``overwrite_dZ`` the
    caller's ``dZ`` (a temporary) is used as scratch.
    """
    M = dZ.shape[0]
    dtype = dZ.dtype
    mean64, inv_std64 = mean.reshape(-1).astype(np.float64), inv_std.reshape(-1).astype(np.float64)
    dbeta = column_sums(dZ)
    if _one_pass_safe(mean64, 1.0 / inv_std64**2):
        centred_dot = column_sums(dZ, X) - mean64 * dbeta  # sum(dZ * (X - mean))
    else:
        centred_dot = column_sums(dZ, np.subtract(X, mean))
    dgamma = centred_dot * inv_std64
    a = gamma.reshape(-1).astype(np.float64) * inv_std64
    b = -a * inv_std64 * dgamma / M
    c = -b * mean64 - a * dbeta / M
    dX = np.multiply(X, b.astype(dtype))
    dX += c.astype(dtype)
    scaled_dZ = np.multiply(dZ, a.astype(dtype), out=dZ if overwrite_dZ else None)
    dX += scaled_dZ
    as_row = lambda v: v.reshape(1, -1).astype(dtype)  # noqa: E731
    return dX, as_row(dgamma), as_row(dbeta)


def batchnorm_eval_forward(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                           eps: float):
    """``X (M, c) -> Z (M, c), inv_std (1, c)``: the affine map
    ``Z = (X - mean) / sqrt(var + eps) * gamma + beta`` with fixed statistics."""
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = gamma * inv_std
    Z = np.multiply(X, scale)
    Z += beta - mean * scale
    return Z, inv_std


def batchnorm_eval_backward(dZ: np.ndarray, X: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                            gamma: np.ndarray):
    """``dZ (M, c) -> dX (M, c), dgamma (1, c), dbeta (1, c)`` for the evaluation transform
    (statistics are constants)."""
    dbeta = dZ.sum(axis=0, keepdims=True)
    dgamma = (np.einsum("ij,ij->j", dZ, X).reshape(1, -1) - mean * dbeta) * inv_std
    dX = dZ * (gamma * inv_std)
    return dX, dgamma, dbeta


# ----------------------------------------------------------------------------- layers


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last (per feature for ``(m, n)`` input,
    per channel for NHWC ``(m, rows, cols, c)`` input), followed by an optional activation:
    ``Y = activation(gamma * (X - mean) / sqrt(var + eps) + beta)``.

    ``gamma (1, c)`` (ones) and ``beta (1, c)`` (zeros) are created on the first forward pass;
    ``n_in = n_out = c``. Training mode uses the batch's mean and biased variance and updates
    ``buffers["running_mean"]`` / ``buffers["running_var"]`` as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the unbiased variance.
    Evaluation mode uses the running statistics.

    With ``activation="relu"`` the rectification is applied in place to the layer's own output
    array and only that output is cached (its positive entries are those of the pre-activation);
    other activations cache the pre-activation ``Z`` as the other layers do.
    """

    name = "batchnorm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, activation="linear") -> None:
        super().__init__()
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
        gamma = np.ones((1, c), dtype=dtype)
        beta = np.zeros((1, c), dtype=dtype)
        self.parameters = OrderedDict(gamma=gamma, beta=beta)
        self.gradients = OrderedDict(gamma=np.zeros_like(gamma), beta=np.zeros_like(beta))
        self._init_buffers(c, dtype)
        self.cache = OrderedDict()

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
        gamma = self._param("gamma", dtype)
        beta = self._param("beta", dtype)
        if self.training:
            M = X2.shape[0]
            if M < 2:
                raise ValueError(
                    f"{self.where}: training needs more than one value per feature to estimate the variance, "
                    f"got input of shape {X.shape}"
                )
            Z2, mean, inv_std, var = batchnorm_train_forward(X2, gamma, beta, self.eps)
            self._update_running(mean, var * (M / (M - 1)))
            self.cache = OrderedDict(mode="train", X=X2, mean=mean, inv_std=inv_std, gamma=gamma)
        else:
            mean = self.buffers["running_mean"].astype(dtype, copy=False)
            var = self.buffers["running_var"].astype(dtype, copy=False)
            Z2, inv_std = batchnorm_eval_forward(X2, gamma, beta, mean, var, self.eps)
            self.cache = OrderedDict(mode="eval", X=X2, mean=mean, inv_std=inv_std, gamma=gamma)
        Z = Z2.reshape(X.shape)
        if isinstance(self.activation, ReLU):
            # Z is this call's own array: rectify it in place and keep only the output, whose
            # positive entries are exactly those of Z (one pass and one array fewer).
            Y = np.maximum(Z, 0, out=Z)
            self.cache["Y"] = Y
            return Y
        self.cache["Z"] = Z
        return self.activation(Z)

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        m = self.momentum
        for key, stat in (("running_mean", mean), ("running_var", unbiased_var)):
            old = self.buffers[key]
            self.buffers[key] = ((1.0 - m) * old + m * stat).astype(old.dtype, copy=False)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        if "Y" in self.cache:  # fused ReLU: dZ = dY where the output is positive
            Y = self.cache["Y"]
            dLdY = self._check_grad_shape(dLdY, Y.shape)
            dZ = np.multiply(dLdY, Y > 0, dtype=Y.dtype)
        else:
            Z = self.cache["Z"]
            dLdY = self._check_grad_shape(dLdY, Z.shape)
            dZ = self.activation.backward(Z, dLdY.astype(Z.dtype, copy=False))
        return self._backward(dZ, overwrite=not np.may_share_memory(dZ, dLdY))

    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        """Backward pass given ``dL/dZ`` (the gradient before the activation)."""
        return self._backward(dLdZ, overwrite=False)

    def _backward(self, dLdZ: np.ndarray, overwrite: bool) -> np.ndarray:
        cache = self.cache
        X2 = cache["X"]
        shape = cache["Y"].shape if "Y" in cache else cache["Z"].shape
        dZ = np.asarray(dLdZ).astype(X2.dtype, copy=False).reshape(-1, shape[-1])
        if cache["mode"] == "train":
            dX, dgamma, dbeta = batchnorm_train_backward(dZ, X2, cache["mean"], cache["inv_std"], cache["gamma"],
                                                         overwrite_dZ=overwrite)
        else:
            dX, dgamma, dbeta = batchnorm_eval_backward(dZ, X2, cache["mean"], cache["inv_std"], cache["gamma"])
        self._store_gradient("gamma", dgamma)
        self._store_gradient("beta", dbeta)
        return dX.reshape(shape)

    def config(self) -> dict:
        return {"name": self.name, "momentum": self.momentum, "eps": self.eps, "activation": self.activation.name}


class Dropout(Layer):
    """Inverted dropout: in training mode ``Y = X * mask / (1 - p)`` with ``mask`` Bernoulli
    ``(1 - p)`` drawn from ``self.rng`` (NumPy's global state when it is None); the identity in
    evaluation mode and when ``p == 0``. Any input shape; ``backward`` applies the same mask."""

    name = "dropout"
    stochastic = True  # the model reseeds rng per epoch, so resumed runs draw the same masks

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = number(p, "Dropout p")
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1); got {p!r}")

    def forward(self, X: np.ndarray) -> np.ndarray:
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
        Y = X * X.dtype.type(1.0 / (1.0 - self.p))
        Y *= keep
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        dLdY = self._check_grad_shape(dLdY, self.cache["shape"]).astype(self.cache["dtype"], copy=False)
        keep = self.cache["mask"]
        if keep is None:
            return dLdY
        dX = dLdY * dLdY.dtype.type(1.0 / (1.0 - self.p))
        dX *= keep
        return dX

    def config(self) -> dict:
        return {"name": self.name, "p": self.p}
