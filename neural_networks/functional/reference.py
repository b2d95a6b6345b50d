"""The reference kernels: every operation the layers, activations and losses compute, in plain
vectorised NumPy, as a textbook writes them.

This is the code to read (and to hand in): no threads, no buffers kept between calls, no
blocking for the cache, and nothing imported from the rest of the package. Each function takes
arrays and hyperparameters and returns new arrays, in the input's dtype. The fast kernels of
:mod:`neural_networks.functional` compute the same functions and are tested against these;
``neural_networks.set_kernels("reference")`` makes the layers run these instead.

Shapes: a batch of ``m`` examples; images are NHWC ``(n, h, w, c)``; convolution weights
``(kh, kw, c, f)``; biases, scales and per-feature statistics ``(1, k)``; ``stride`` an int;
``pad`` a pair ``(pad_rows, pad_cols)`` of zeros added on each side (already resolved from
"same"/"valid" by the layer).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "dense_forward",
    "dense_backward",
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "pool2d_forward",
    "pool2d_backward",
    "batchnorm_train_forward",
    "batchnorm_train_backward",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
    "dropout_forward",
    "dropout_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "arctan",
    "arctan_backward",
    "gelu",
    "gelu_backward",
    "gelu_tanh",
    "gelu_tanh_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "cross_entropy",
    "cross_entropy_backward",
    "softmax_cross_entropy",
]


# ----------------------------------------------------------------------------- dense


def dense_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``Z = X W + b``: ``X (m, n_in), W (n_in, n_out), b (1, n_out)`` or ``None`` (no bias)
    ``-> Z (m, n_out)``."""
    Z = X @ W
    if b is not None:
        Z += b
    return Z


def dense_backward(dZ: np.ndarray, X: np.ndarray, W: np.ndarray):
    """Gradients of :func:`dense_forward` given ``dZ = dL/dZ (m, n_out)``:
    ``dX = dZ W^T (m, n_in)``, ``dW = X^T dZ (n_in, n_out)``, ``db = sum over the batch (1, n_out)``."""
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0, keepdims=True)


# ----------------------------------------------------------------------------- convolution


def _windows(X: np.ndarray, kernel_shape, stride: int, pad) -> np.ndarray:
    """Every ``kh x kw`` window of the zero-padded ``X (n, h, w, c)`` that a stride-``stride``
    slide visits: a read-only view ``(n, ho, wo, kh, kw, c)``, ``ho = (h + 2 pad_rows - kh) // stride + 1``."""
    (ph, pw) = pad
    X_pad = np.pad(X, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    windows = sliding_window_view(X_pad, kernel_shape, axis=(1, 2))  # (n, rows, cols, c, kh, kw)
    return windows[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)


def im2col(X: np.ndarray, kernel_shape, stride: int, pad) -> np.ndarray:
    """One row per output position: ``X (n, h, w, c) -> cols (n*ho*wo, kh*kw*c)``, each row the
    receptive field ``Xpad[k, r*stride + i, s*stride + j, :]`` flattened in ``(i, j, channel)``
    order, the order of ``W.reshape(kh*kw*c, f)``.

    Example:
        >>> import numpy as np
        >>> from neural_networks.functional.reference import im2col
        >>> X = np.arange(9.0).reshape(1, 3, 3, 1)  # one 3x3 image, one channel
        >>> im2col(X, (2, 2), 1, (0, 0))  # its four 2x2 windows, one per row
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
    """
    windows = _windows(X, kernel_shape, stride, pad)
    n, ho, wo, kh, kw, c = windows.shape
    return windows.reshape(n * ho * wo, kh * kw * c)  # a copy: the view is not contiguous


def col2im(dcols: np.ndarray, X_shape, kernel_shape, stride: int, pad) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each row of ``dcols (n*ho*wo, kh*kw*c)`` back onto the
    input cells its receptive field read, and drop what lands in the padding
    ``-> dX (n, h, w, c)``. One strided add per kernel offset; windows that overlap add up."""
    n, h, w, c = X_shape
    (kh, kw), (ph, pw) = kernel_shape, pad
    ho, wo = (h + 2 * ph - kh) // stride + 1, (w + 2 * pw - kw) // stride + 1
    d = dcols.reshape(n, ho, wo, kh, kw, c)
    dX_pad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dX_pad[:, i : i + stride * ho : stride, j : j + stride * wo : stride, :] += d[:, :, :, i, j, :]
    return dX_pad[:, ph : ph + h, pw : pw + w, :]


def conv2d_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: int, pad) -> np.ndarray:
    """Cross-correlation ``Z[k, r, s, f] = sum_{i,j,c} Xpad[k, r*stride+i, s*stride+j, c] W[i,j,c,f] + b[f]``:
    ``X (n, h, w, c), W (kh, kw, c, f), b (1, f)`` or ``None -> Z (n, ho, wo, f)``, as one matrix
    product of :func:`im2col`'s rows with the reshaped kernel."""
    kh, kw, c, f = W.shape
    n, h, w, _ = X.shape
    ho, wo = (h + 2 * pad[0] - kh) // stride + 1, (w + 2 * pad[1] - kw) // stride + 1
    Z = im2col(X, (kh, kw), stride, pad) @ W.reshape(kh * kw * c, f)
    if b is not None:
        Z = Z + b
    return Z.reshape(n, ho, wo, f)


def conv2d_backward(dZ: np.ndarray, X: np.ndarray, W: np.ndarray, stride: int, pad):
    """Gradients of :func:`conv2d_forward` given ``dZ (n, ho, wo, f)``: ``dX (n, h, w, c)``,
    ``dW (kh, kw, c, f)``, ``db (1, f)``. With ``cols = im2col(X)``: ``dW = cols^T dZ``,
    ``db`` the sum of ``dZ`` over every position, ``dX = col2im(dZ W^T)``."""
    kh, kw, c, f = W.shape
    dZ2 = dZ.reshape(-1, f)
    dW = (im2col(X, (kh, kw), stride, pad).T @ dZ2).reshape(kh, kw, c, f)
    db = dZ2.sum(axis=0, keepdims=True)
    dX = col2im(dZ2 @ W.reshape(kh * kw * c, f).T, X.shape, (kh, kw), stride, pad)
    return dX, dW, db


# ----------------------------------------------------------------------------- pooling


def pool2d_forward(X: np.ndarray, kernel_shape, stride: int, pad, mode: str) -> np.ndarray:
    """Max or average pooling over zero-padded windows (zeros count, as the spec pads):
    ``X (n, h, w, c) -> Y (n, ho, wo, c)``; ``mode`` is ``"max"`` or ``"average"`` (the mean over
    all ``kh*kw`` cells of a window)."""
    windows = _windows(X, kernel_shape, stride, pad)
    return windows.max(axis=(3, 4)) if mode == "max" else windows.mean(axis=(3, 4))


def pool2d_backward(dY: np.ndarray, X: np.ndarray, kernel_shape, stride: int, pad, mode: str) -> np.ndarray:
    """Gradient of :func:`pool2d_forward` given ``dY (n, ho, wo, c)``: ``dX (n, h, w, c)``.
    Max pooling sends each window's gradient to its first maximum (row-major order; ties go
    there, as PyTorch does), average pooling spreads it evenly; overlapping windows add up."""
    kh, kw = kernel_shape
    n, ho, wo, c = dY.shape
    if mode == "max":
        windows = _windows(X, kernel_shape, stride, pad).reshape(n, ho, wo, kh * kw, c)
        first_max = windows.argmax(axis=3)  # (n, ho, wo, c)
        share = (np.arange(kh * kw)[:, None] == first_max[:, :, :, None, :]) * dY[:, :, :, None, :]
    else:
        share = np.broadcast_to(dY[:, :, :, None, :] / (kh * kw), (n, ho, wo, kh * kw, c))
    return col2im(share.reshape(n * ho * wo, kh * kw * c).astype(dY.dtype), X.shape, kernel_shape, stride, pad)


# ----------------------------------------------------------------------------- batch normalisation
# Per column of ``X (M, c)`` (for NHWC images the layer passes ``M = n*h*w`` rows).


def batchnorm_train_forward(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """Normalise with the batch's statistics: ``X (M, c) -> Z (M, c), mean (1, c), var (1, c)``,
    ``Z = gamma * (X - mean) / sqrt(var + eps) + beta`` with ``var`` the biased variance."""
    mean = X.mean(axis=0, keepdims=True)
    var = X.var(axis=0, keepdims=True)
    X_hat = (X - mean) / np.sqrt(var + eps)
    return gamma * X_hat + beta, mean, var


def batchnorm_train_backward(dZ: np.ndarray, X: np.ndarray, mean, var, gamma, eps: float):
    """Gradients of :func:`batchnorm_train_forward` (the statistics depend on ``X`` too) given
    ``dZ (M, c)``: ``dX (M, c)``, ``dgamma (1, c)``, ``dbeta (1, c)``, with ``X_hat`` the
    normalised input: ``dX = gamma / sqrt(var + eps) * (dZ - mean(dZ) - X_hat * mean(dZ * X_hat))``."""
    X_hat = (X - mean) / np.sqrt(var + eps)
    dbeta = dZ.sum(axis=0, keepdims=True)
    dgamma = (dZ * X_hat).sum(axis=0, keepdims=True)
    M = X.shape[0]
    dX = gamma / np.sqrt(var + eps) * (dZ - dbeta / M - X_hat * dgamma / M)
    return dX, dgamma, dbeta


def batchnorm_eval_forward(X: np.ndarray, gamma, beta, mean, var, eps: float) -> np.ndarray:
    """Normalise with fixed statistics (the running estimates): ``X (M, c) -> Z (M, c)``,
    ``Z = gamma * (X - mean) / sqrt(var + eps) + beta``."""
    return gamma * (X - mean) / np.sqrt(var + eps) + beta


def batchnorm_eval_backward(dZ: np.ndarray, X: np.ndarray, mean, var, gamma, eps: float):
    """Gradients of :func:`batchnorm_eval_forward` (the statistics are constants) given
    ``dZ (M, c)``: ``dX (M, c)``, ``dgamma (1, c)``, ``dbeta (1, c)``."""
    inv_std = 1.0 / np.sqrt(var + eps)
    return dZ * gamma * inv_std, (dZ * (X - mean) * inv_std).sum(axis=0, keepdims=True), dZ.sum(axis=0, keepdims=True)


# ----------------------------------------------------------------------------- dropout


def dropout_forward(X: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
    """Inverted dropout: ``X * keep / (1 - p)`` for a boolean mask ``keep`` of ``X``'s shape
    (true with probability ``1 - p``), so that the expected output is ``X``."""
    return X * X.dtype.type(1.0 / (1.0 - p)) * keep


def dropout_backward(dY: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
    """Gradient of :func:`dropout_forward`: the same mask and scale applied to ``dY``."""
    return dY * dY.dtype.type(1.0 / (1.0 - p)) * keep


# ----------------------------------------------------------------------------- activations
# Element-wise, any shape: ``f(Z)`` and ``dL/dZ = dY * f'(Z)`` for ``dY = dL/df(Z)``.


def relu(Z: np.ndarray) -> np.ndarray:
    """``max(Z, 0)``."""
    return np.maximum(Z, 0)


def relu_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY`` where ``Z > 0``, else 0 (the derivative at 0 taken as 0, as PyTorch does). ``Y =
    relu(Z)`` may stand for ``Z``: it is positive exactly where ``Z`` is."""
    return np.multiply(dY, Z > 0, dtype=dY.dtype)


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-Z))``, from ``exp(-|Z|)`` only, so that no ``exp`` overflows."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E)).astype(Z.dtype, copy=False)


def sigmoid_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY * s (1 - s)`` with ``s = sigmoid(Z)``."""
    S = sigmoid(Z)
    return dY * S * (1 - S)


def tanh(Z: np.ndarray) -> np.ndarray:
    """``tanh(Z)``."""
    return np.tanh(Z)


def tanh_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY * (1 - tanh(Z)^2)``."""
    T = np.tanh(Z)
    return dY * (1 - T * T)


def arctan(Z: np.ndarray) -> np.ndarray:
    """``arctan(Z)``."""
    return np.arctan(Z)


def arctan_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY / (1 + Z^2)``."""
    return dY / (1 + Z * Z)


# NumPy has no erf and the library does not depend on SciPy: the reference takes Python's exact
# math.erfc element by element (slow, but this is the code to read; the fast kernels tabulate).
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _normal_cdf_and_density(Z: np.ndarray):
    """``(Phi(Z), phi(Z))`` in float64: the standard normal distribution function
    ``Phi(z) = erfc(-z / sqrt(2)) / 2`` (``= (1 + erf(z / sqrt(2))) / 2`` without its cancellation
    for ``z < 0``) and density ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``."""
    z = np.asarray(Z, dtype=np.float64)
    return 0.5 * _erfc(-z / math.sqrt(2.0)), np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def gelu(Z: np.ndarray) -> np.ndarray:
    """Exact GELU (erf form): ``Z Phi(Z)``, in ``Z``'s floating dtype (float64 for integers)."""
    Phi, _ = _normal_cdf_and_density(Z)
    return (np.asarray(Z, dtype=np.float64) * Phi).astype(_float_dtype(Z))


def gelu_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY * (Phi(Z) + Z phi(Z))``."""
    Phi, phi = _normal_cdf_and_density(Z)
    return (dY * (Phi + np.asarray(Z, dtype=np.float64) * phi)).astype(np.result_type(_float_dtype(Z), dY))


def _float_dtype(Z: np.ndarray):
    return Z.dtype if np.issubdtype(np.asarray(Z).dtype, np.floating) else np.dtype(np.float64)


# GELU's tanh approximation: f(z) = z (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (z + 0.044715 z^3).
# (1 + tanh(u)) / 2 = sigmoid(2u), computed from exp(-2|u|) (no overflow, and no cancellation of
# 1 + tanh(u) for negative z). Beyond |z| = 1e4, sigmoid(2u) is 0 or 1 exactly: z is capped there
# inside u and the slope's polynomial so that z^3 cannot overflow.
GELU_TANH_K = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715
GELU_TANH_CAP = 1e4


def _sigmoid_2u(z: np.ndarray):
    """``(s, s (1 - s))`` for ``s = sigmoid(2u(z))``, with ``E = exp(-2|u|)``: ``s`` is
    ``1 / (1 + E)`` or ``E / (1 + E)`` and ``s (1 - s) = E / (1 + E)^2``."""
    u = GELU_TANH_K * z * (1.0 + GELU_TANH_C * (z * z))
    E = np.exp(-2.0 * np.abs(u))
    inverse = 1.0 / (1.0 + E)
    return np.where(u >= 0, inverse, E * inverse), E * inverse * inverse


def gelu_tanh(Z: np.ndarray) -> np.ndarray:
    """GELU's tanh approximation ``Z sigmoid(2u)`` (``torch``'s ``approximate="tanh"``)."""
    return Z * _sigmoid_2u(np.clip(Z, -GELU_TANH_CAP, GELU_TANH_CAP))[0]


def gelu_tanh_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY * f'(Z)`` with ``f' = s + 2 z s (1 - s) sqrt(2 / pi) (1 + 3 * 0.044715 z^2)``, ``s = sigmoid(2u)``."""
    z = np.clip(Z, -GELU_TANH_CAP, GELU_TANH_CAP)
    S, S_one_minus_S = _sigmoid_2u(z)
    slope = S + 2.0 * z * S_one_minus_S * GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_C * (z * z))
    return dY * slope


def softmax(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(Z) / sum(exp(Z))`` along ``axis``, with the maximum subtracted first (the same
    result; no overflow)."""
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    E /= E.sum(axis=axis, keepdims=True)
    return E


def softmax_backward(S: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """Vector-Jacobian product of softmax over the last axis, from its output ``S``:
    ``dZ = S * (dY - sum(dY * S))`` per row, equal to ``dY @ (diag(s) - s s^T)``."""
    return S * (dY - (dY * S).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------- losses
# Targets ``Y (m, k)`` (one-hot or label-smoothed rows that sum to one), predictions ``(m, k)``.


def log_softmax(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(Z))`` by log-sum-exp: ``Z - max - log(sum(exp(Z - max)))``."""
    shifted = Z - Z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    """``-sum(Y * log(Y_hat)) / m`` for probabilities ``Y_hat``, clamped below at the smallest
    normal number of their dtype so that ``log(0)`` cannot give ``-inf``."""
    tiny = np.finfo(np.result_type(Y_hat, np.float32)).tiny
    return float(-np.sum(Y * np.log(np.maximum(Y_hat, tiny))) / Y.shape[0])


def cross_entropy_backward(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    """``dL/dY_hat = -Y / (Y_hat m)`` (same clamp)."""
    tiny = np.finfo(np.result_type(Y_hat, np.float32)).tiny
    return -Y / (np.maximum(Y_hat, tiny) * Y.shape[0])


def softmax_cross_entropy(Z: np.ndarray, Y: np.ndarray):
    """Softmax and cross-entropy together, from the logits ``Z (m, k)``: returns
    ``(loss, dZ, Y_hat)`` with ``Y_hat = softmax(Z)``, ``loss = -sum(Y * log_softmax(Z)) / m`` and
    the gradient at the logits ``dZ = (Y_hat * sum(Y, axis=1) - Y) / m``, which chaining
    :func:`softmax_backward` after :func:`cross_entropy_backward` gives too, less accurately.
    For one-hot or smoothed targets each row of ``Y`` sums to 1 and ``dZ = (Y_hat - Y) / m``."""
    m = Z.shape[0]
    Y_hat = softmax(Z)
    loss = float(-np.sum(Y * log_softmax(Z)) / m)
    # d/dZ of -sum_j y_j log softmax(z)_j is softmax(z) * sum_j y_j - y
    return loss, (Y_hat * Y.sum(axis=1, keepdims=True) - Y) / m, Y_hat
