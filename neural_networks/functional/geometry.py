"""Geometry of sliding windows on NHWC images: the argument normalisers (kernel sizes,
strides' pairs, padding), output sizes, padding, and strided views of the windows.

Nothing here does arithmetic on the data; every path (reference and fast) shares it. Images are
``(n, rows, cols, channels)``; a padding is ``(pad_rows, pad_cols)``, the same on both sides.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["pair", "resolve_padding", "conv_output_size", "pad_nhwc", "unpad", "window_views", "patches"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def pair(value, what: str, minimum: int = 1, expected: str | None = None) -> tuple[int, int]:
    """An int (used for both axes) or a pair of ints, as a pair of Python ints ``>= minimum``.

    ``what`` names the argument in the ``ValueError`` raised for anything else (booleans, floats,
    other lengths) or for a value below ``minimum``; ``expected`` replaces the description of
    the accepted values in the first message (default: "a positive int or a pair of positive
    ints", "non-negative" for ``minimum=0``)."""
    kind = "positive" if minimum >= 1 else "non-negative"
    if _is_int(value):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        result = (int(value[0]), int(value[1]))
    else:
        expected = expected or f"a {kind} int or a pair of {kind} ints"
        raise ValueError(f"{what} must be {expected}; got {value!r}")
    if min(result) < minimum:
        raise ValueError(f"{what} must be {kind}; got {value!r}")
    return result


def resolve_padding(pad, kernel_shape: tuple[int, int]) -> tuple[int, int]:
    """Turn the spec's ``pad`` argument into ``(pad_rows, pad_cols)``.

    ``"same"`` pads ``(k - 1) // 2`` on each side of each axis (the spec's definition, which
    keeps the size for odd kernels and stride 1), ``"valid"`` pads nothing, an int pads that
    much on every side, and a pair of ints pads rows and columns separately. ``ValueError`` for
    another string, a negative amount or anything else.
    """
    expected = "'same', 'valid', an int or a pair of ints"
    if isinstance(pad, str):
        kh, kw = kernel_shape
        if pad == "same":
            return ((kh - 1) // 2, (kw - 1) // 2)
        if pad == "valid":
            return (0, 0)
        raise ValueError(f"pad must be {expected}; got {pad!r}")
    return pair(pad, "pad", minimum=0, expected=expected)


def conv_output_size(size: int, kernel: int, pad: int, stride: int) -> int:
    """Output length of a sliding window: ``floor((size + 2*pad - kernel) / stride) + 1``."""
    return (size + 2 * pad - kernel) // stride + 1


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


def unpad(X_pad: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """The interior of a padded NHWC array (a view): the inverse of :func:`pad_nhwc`."""
    ph, pw = pad
    h, w = X_pad.shape[1] - 2 * ph, X_pad.shape[2] - 2 * pw
    return X_pad[:, ph : ph + h, pw : pw + w, :]


def window_views(X_pad: np.ndarray, kernel_shape, stride: int, out_shape):
    """Yield ``((i, j), view)`` for each kernel offset, where ``view`` is the strided
    ``(n, out_rows, out_cols, c)`` slice of the padded input that meets kernel cell ``(i, j)``."""
    kh, kw = kernel_shape
    ho, wo = out_shape
    for i in range(kh):
        for j in range(kw):
            yield (i, j), X_pad[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]


def patches(X_pad: np.ndarray, kernel_shape, stride: int, out_shape) -> np.ndarray:
    """Read-only strided view ``(n, out_rows, out_cols, kh, kw, c)`` of every receptive field of a
    padded NHWC array (no copy): ``view[n, r, s, i, j] = X_pad[n, r*stride + i, s*stride + j]``."""
    n, _, _, c = X_pad.shape
    s0, s1, s2, s3 = X_pad.strides
    return as_strided(
        X_pad, (n, *out_shape, *kernel_shape, c), (s0, s1 * stride, s2 * stride, s1, s2, s3), writeable=False
    )
