"""Patch whitening: filters of a first convolution computed from the training images.

A convolution whose filters are the eigenvectors of the covariance of the images' ``kh x kw``
patches, each divided by the square root of its eigenvalue (plus ``eps``), outputs decorrelated
channels of unit variance: the network starts from whitened input (Jordan 2024,
arXiv 2404.00498, section 3.2; an old idea: Coates & Ng's patch whitening). With twice as many
filters as a patch has values, the second half are the negated first half, so that a ReLU after
it loses nothing.

The covariance is the uncentered second moment ``E[p p^T]`` of the patches (the inputs are
standardised already), accumulated in float64 a few images at a time.
"""

from __future__ import annotations

import numpy as np

from .functional.geometry import conv_output_size, pad_nhwc, patches

__all__ = ["DEFAULT_EPS", "patch_covariance", "patch_whitening_filters"]

#: Added to every eigenvalue before the square root: it bounds the gain of the near-constant
#: directions (the value of arXiv:2404.00498 for CIFAR-10 standardised per channel).
DEFAULT_EPS = 5e-4


def patch_covariance(X: np.ndarray, kernel_shape, stride: int = 1, pad=(0, 0)) -> np.ndarray:
    """``E[p p^T]`` over every ``kh x kw`` patch ``p`` of ``X (m, h, w, c)`` a convolution with
    this geometry sees, flattened in ``(kh, kw, c)`` order: ``(K, K)`` float64, ``K = kh*kw*c``."""
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[0] == 0:
        raise ValueError(f"patch whitening needs a non-empty image batch (m, h, w, c); got shape {X.shape}")
    kh, kw = kernel_shape
    m, h, w, c = X.shape
    ho, wo = conv_output_size(h, kh, pad[0], stride), conv_output_size(w, kw, pad[1], stride)
    K = kh * kw * c
    total = np.zeros((K, K))
    count = 0
    step = max(1, (1 << 16) // max(ho * wo, 1))  # about 64K patches per product
    for a in range(0, m, step):
        view = patches(pad_nhwc(X[a : a + step], pad), (kh, kw), stride, (ho, wo))
        P = np.ascontiguousarray(view, dtype=np.float64).reshape(-1, K)
        total += P.T @ P
        count += P.shape[0]
    return total / count


def patch_whitening_filters(
    X: np.ndarray, kernel_shape, n_out: int, stride: int = 1, pad=(0, 0), eps: float = DEFAULT_EPS, dtype=np.float32
) -> np.ndarray:
    """Whitening filters ``W (kh, kw, c, n_out)`` for the images ``X (m, h, w, c)``: ``n_out`` is
    ``K = kh*kw*c`` (one filter per eigenvector) or ``2K`` (and their negatives), in order of
    increasing eigenvalue. ``ValueError`` for another ``n_out``."""
    kh, kw = kernel_shape
    K = kh * kw * X.shape[3]
    if n_out not in (K, 2 * K):
        raise ValueError(
            f"patch whitening of {kh}x{kw} patches of {X.shape[3]} channels makes {K} filters, or {2 * K} with "
            f"their negatives; n_out is {n_out}"
        )
    if not eps > 0:
        raise ValueError(f"patch whitening eps must be positive; got {eps!r}")
    eigenvalues, eigenvectors = np.linalg.eigh(patch_covariance(X, kernel_shape, stride, pad))
    scaled = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + eps)  # column j: v_j / sqrt(l_j + eps)
    if n_out == 2 * K:
        scaled = np.concatenate([scaled, -scaled], axis=1)
    return scaled.reshape(kh, kw, X.shape[3], n_out).astype(dtype)
