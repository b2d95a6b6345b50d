"""Pure array kernels: no state, no validation (callers validate at the public boundary).

Shapes follow the spec: images are NHWC ``(batch, rows, cols, channels)``, convolution
weights ``(kh, kw, in_channels, out_channels)``, biases ``(1, out_channels)``.

Every kernel is vectorised over the batch. Convolution and pooling loop only over the
``kh * kw`` kernel offsets, never over examples or output pixels:

* convolution is im2col (one strided copy per kernel offset into a reusable buffer) followed
  by one matrix product; its backward pass is two more matrix products plus ``kh * kw``
  strided adds (col2im) for the input gradient;
* pooling reduces over the ``kh * kw`` strided views of the padded input.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "conv_output_size",
    "resolve_padding",
    "pad_nhwc",
    "window_views",
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "pool2d_forward",
    "pool2d_backward",
    "softmax",
    "log_softmax",
    "softmax_backward",
    "softmax_cross_entropy",
]


# ----------------------------------------------------------------------------- geometry


def conv_output_size(size: int, kernel: int, pad: int, stride: int) -> int:
    """Output length of a sliding window: ``floor((size + 2*pad - kernel) / stride) + 1``."""
    return (size + 2 * pad - kernel) // stride + 1


def resolve_padding(pad, kernel_shape: tuple[int, int]) -> tuple[int, int]:
    """Turn the spec's ``pad`` argument into ``(pad_rows, pad_cols)``.

    ``"same"`` pads ``(k - 1) // 2`` on each side of each axis (the spec's definition, which
    keeps the size for odd kernels and stride 1), ``"valid"`` pads nothing, an int pads that
    much on every side, and a pair of ints pads rows and columns separately.
    """
    kh, kw = kernel_shape
    if isinstance(pad, str):
        if pad == "same":
            return ((kh - 1) // 2, (kw - 1) // 2)
        if pad == "valid":
            return (0, 0)
        raise ValueError(f"pad must be 'same', 'valid', an int or a pair of ints; got {pad!r}")
    if isinstance(pad, (int, np.integer)) and not isinstance(pad, bool):
        pads = (int(pad), int(pad))
    elif (
        isinstance(pad, (tuple, list))
        and len(pad) == 2
        and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)
    ):
        pads = (int(pad[0]), int(pad[1]))
    else:
        raise ValueError(f"pad must be 'same', 'valid', an int or a pair of ints; got {pad!r}")
    if min(pads) < 0:
        raise ValueError(f"pad must be non-negative; got {pad!r}")
    return pads


def pad_nhwc(X: np.ndarray, pad: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """Pad rows and columns of an NHWC array symmetrically; returns ``X`` itself if no padding.

    ``(n, h, w, c) -> (n, h + 2*pad_rows, w + 2*pad_cols, c)``.
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return X
    n, h, w, c = X.shape
    out = np.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=X.dtype)
    # Fill only the border, then copy the interior once (cheaper than np.pad's generic path).
    if ph:
        out[:, :ph] = value
        out[:, h + ph :] = value
    if pw:
        out[:, ph : h + ph, :pw] = value
        out[:, ph : h + ph, w + pw :] = value
    out[:, ph : h + ph, pw : w + pw] = X
    return out


def window_views(X_pad: np.ndarray, kernel_shape, stride: int, out_shape):
    """Yield ``((i, j), view)`` for each kernel offset, where ``view`` is the strided
    ``(n, out_rows, out_cols, c)`` slice of the padded input that meets kernel cell ``(i, j)``."""
    kh, kw = kernel_shape
    ho, wo = out_shape
    for i in range(kh):
        for j in range(kw):
            yield (i, j), X_pad[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]


# ----------------------------------------------------------------------------- im2col


def im2col(X_pad: np.ndarray, kernel_shape, stride: int, out_shape, out: np.ndarray | None = None) -> np.ndarray:
    """Gather every receptive field into one row.

    ``X_pad (n, hp, wp, c) -> cols (n, out_rows, out_cols, kh, kw, c)``; reshaped to
    ``(n*out_rows*out_cols, kh*kw*c)`` it multiplies ``W.reshape(kh*kw*c, out_channels)``.
    ``out`` may be a preallocated C-contiguous buffer of that shape and dtype.
    """
    kh, kw = kernel_shape
    ho, wo = out_shape
    n, _, _, c = X_pad.shape
    if out is None:
        out = np.empty((n, ho, wo, kh, kw, c), dtype=X_pad.dtype)
    for (i, j), view in window_views(X_pad, kernel_shape, stride, out_shape):
        out[:, :, :, i, j, :] = view
    return out


def col2im(dcols: np.ndarray, padded_shape, kernel_shape, stride: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``(n, ho, wo, kh, kw, c)`` back onto the padded
    input, ``-> (n, hp, wp, c)``, with one strided add per kernel offset."""
    kh, kw = kernel_shape
    n, ho, wo = dcols.shape[:3]
    dX_pad = np.zeros(padded_shape, dtype=dcols.dtype)
    for (i, j), view in window_views(dX_pad, kernel_shape, stride, (ho, wo)):
        view += dcols[:, :, :, i, j, :]
    return dX_pad


def _unpad(X_pad: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    ph, pw = pad
    h, w = X_pad.shape[1] - 2 * ph, X_pad.shape[2] - 2 * pw
    return X_pad[:, ph : ph + h, pw : pw + w, :]


# ----------------------------------------------------------------------------- convolution


def conv2d_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: tuple[int, int]):
    """Cross-correlation ``Z[n, r, s, f] = sum_{i,j,c} W[i,j,c,f] * Xpad[n, r*st+i, s*st+j, c] + b[f]``.

    ``X (n, h, w, c), W (kh, kw, c, f), b (1, f) -> Z (n, ho, wo, f)`` plus the cache
    ``(cols, X_padded_shape)`` that :func:`conv2d_backward` needs.
    """
    kh, kw, c, f = W.shape
    n, h, w, _ = X.shape
    ho = conv_output_size(h, kh, pad[0], stride)
    wo = conv_output_size(w, kw, pad[1], stride)
    X_pad = pad_nhwc(X, pad)
    cols = im2col(X_pad, (kh, kw), stride, (ho, wo))
    Z = cols.reshape(n * ho * wo, kh * kw * c) @ W.reshape(kh * kw * c, f)
    Z += b.reshape(1, f)
    return Z.reshape(n, ho, wo, f), (cols, X_pad.shape)


def conv2d_backward(dZ: np.ndarray, W: np.ndarray, cache, stride: int, pad: tuple[int, int]):
    """Gradients of :func:`conv2d_forward`.

    ``dZ (n, ho, wo, f) -> dX (n, h, w, c), dW (kh, kw, c, f), db (1, f)``.
    """
    cols, padded_shape = cache
    kh, kw, c, f = W.shape
    n, ho, wo, _ = dZ.shape
    dZ2 = dZ.reshape(n * ho * wo, f)
    db = dZ2.sum(axis=0, keepdims=True)
    dW = (cols.reshape(n * ho * wo, kh * kw * c).T @ dZ2).reshape(W.shape)
    dcols = (dZ2 @ W.reshape(kh * kw * c, f).T).reshape(n, ho, wo, kh, kw, c)
    dX = _unpad(col2im(dcols, padded_shape, (kh, kw), stride), pad)
    return dX, dW, db


# ----------------------------------------------------------------------------- pooling


def pool2d_forward(X: np.ndarray, kernel_shape, stride: int, pad: tuple[int, int], mode: str):
    """Max or average pooling over zero-padded windows (the spec pads with zeros).

    ``X (n, h, w, c) -> Y (n, ho, wo, c)`` plus a cache for :func:`pool2d_backward`. Average
    pooling divides by the full window size ``kh*kw``. For max pooling the cache holds the
    index (0 .. kh*kw-1) of the first maximum in each window, so ties send the whole gradient
    to one input, as PyTorch does.
    """
    kh, kw = kernel_shape
    n, h, w, c = X.shape
    ho = conv_output_size(h, kh, pad[0], stride)
    wo = conv_output_size(w, kw, pad[1], stride)
    X_pad = pad_nhwc(X, pad)
    views = window_views(X_pad, kernel_shape, stride, (ho, wo))
    if mode == "average":
        Y = np.zeros((n, ho, wo, c), dtype=X.dtype)
        for _, view in views:
            Y += view
        Y *= 1.0 / (kh * kw)
        return Y, (X_pad.shape, None)
    _, first = next(views)
    Y = first.copy()
    argmax = np.zeros((n, ho, wo, c), dtype=np.uint8 if kh * kw < 256 else np.int32)
    for k, (_, view) in enumerate(views, start=1):
        better = view > Y
        np.copyto(Y, view, where=better)
        argmax[better] = k
    return Y, (X_pad.shape, argmax)


def pool2d_backward(dY: np.ndarray, cache, kernel_shape, stride: int, pad: tuple[int, int], mode: str) -> np.ndarray:
    """Gradient of :func:`pool2d_forward`: ``dY (n, ho, wo, c) -> dX (n, h, w, c)``."""
    padded_shape, argmax = cache
    kh, kw = kernel_shape
    dX_pad = np.zeros(padded_shape, dtype=dY.dtype)
    views = window_views(dX_pad, kernel_shape, stride, dY.shape[1:3])
    if mode == "average":
        share = dY * (1.0 / (kh * kw))
        for _, view in views:
            view += share
    else:
        for k, (_, view) in enumerate(views):
            view += np.where(argmax == k, dY, 0)
    return _unpad(dX_pad, pad)


# ----------------------------------------------------------------------------- softmax


def softmax(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (the max is subtracted before ``exp``)."""
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    E /= E.sum(axis=axis, keepdims=True)
    return E


def log_softmax(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable ``log(softmax(Z))`` via log-sum-exp."""
    shifted = Z - Z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_backward(S: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """Vector-Jacobian product of softmax for a batch: with ``S = softmax(Z)`` (rows sum to 1),
    ``dZ = S * (dY - sum(dY * S, axis=-1))``; equal to ``dY @ (diag(s) - s s^T)`` per row."""
    return S * (dY - (dY * S).sum(axis=-1, keepdims=True))


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
