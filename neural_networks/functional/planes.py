"""The convolution of thin inputs (an RGB or grayscale first layer) through channel planes.

Their NHWC patches would be copied in runs of only ``kw * c`` numbers, so the patches are
gathered channel-first instead, as ``kh * kw * c`` shifted copies of whole image planes
(:func:`gather_planes`), and training keeps them for the backward pass (re-reading them beats
regathering). The input gradient is scattered back onto planes the same way. Wider inputs use
the NHWC im2col path of :mod:`.conv`, which regathers its patches chunk by chunk in the
backward pass: faster than a full-size patch matrix written and re-read through memory
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .blocks import chunks, column_sums, summed_parts
from .geometry import conv_output_size
from .scatter import covers, kernel_taps

__all__ = [
    "THIN_MAX_CHANNELS",
    "PLANES_CHUNK_ROWS",
    "thin_input",
    "plane_patches_shape",
    "gather_planes",
    "planes_forward",
    "planes_backward",
]

#: Inputs with at most this many channels are convolved through channel planes.
THIN_MAX_CHANNELS = 4
#: Output positions per chunk of the channel-plane path: its per-chunk calls (a transpose, one copy
#: per kernel offset, the products) are small, so chunks are larger than im2col's; much larger
#: ones, up to one chunk per thread, no longer stay in cache (benchmarks/RESULTS.md, "Kernel
#: figures moved from code comments").
PLANES_CHUNK_ROWS = 8192


def thin_input(c: int) -> bool:
    """Whether a convolution of ``c`` input channels takes the channel-plane path
    (``c <= THIN_MAX_CHANNELS``)."""
    return c <= THIN_MAX_CHANNELS


def plane_patches_shape(n: int, out_hw, kernel_shape, c: int) -> tuple:
    """Shape ``(kh, kw, c, n, ho, wo)`` of the patches a thin-input convolution keeps: row
    ``(i, j, ch)`` of the ``(kh*kw*c, n*ho*wo)`` patch matrix is input plane ``ch`` shifted by
    kernel offset ``(i, j)``; a slice of images ``[:, :, :, a:b]`` is still a matrix (rows
    ``n*ho*wo`` apart) that BLAS reads in place."""
    return (*kernel_shape, c, n, *out_hw)


def gather_planes(X: np.ndarray, pad, kernel_shape, stride: int, out_hw, planes: np.ndarray, cols: np.ndarray):
    """``cols[(i, j, ch), (k, r, s)] = Xpad[k, r*stride + i, s*stride + j, ch]`` for ``X (m, h, w, c)``
    into ``cols (kh*kw*c, m*ho*wo)`` (a view of it is written); ``planes (c, >= m, h + 2*pad_rows,
    w + 2*pad_cols)`` is scratch whose border is zero (only its interior is written here)."""
    m, h, w, c = X.shape
    (ph, pw), (ho, wo) = pad, out_hw
    planes[:, :m, ph : ph + h, pw : pw + w] = X.transpose(3, 0, 1, 2)
    cols = cols.reshape(*kernel_shape, c, m, ho, wo)  # splits both axes: always a view
    for i in range(kernel_shape[0]):
        for j in range(kernel_shape[1]):
            cols[i, j] = planes[:, :m, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]


def _zero_bordered(shape, pad, dtype) -> np.ndarray:
    """Scratch planes ``(c, m, h + 2*pad_rows, w + 2*pad_cols)`` for :func:`gather_planes`, zeros."""
    c, m, h, w = shape
    return np.zeros((c, m, h + 2 * pad[0], w + 2 * pad[1]), dtype=dtype)


def planes_forward(X, W, b, stride, pad, cols, keep_cols, relu):
    """:func:`~neural_networks.functional.conv.conv2d_forward` of a thin input
    (:func:`thin_input`): per chunk of images, the patches gathered channel-first
    (:func:`gather_planes`, into the kept ``cols`` of :func:`plane_patches_shape` or a scratch
    block), then ``Z_c = cols_c^T W`` with the bias and ReLU applied while the rows are in cache.
    ``ValueError`` if a kept ``cols`` is not a C-contiguous array of that shape and ``X``'s dtype."""
    kh, kw, c, f = W.shape
    n, h, w, _ = X.shape
    ho = conv_output_size(h, kh, pad[0], stride)
    wo = conv_output_size(w, kw, pad[1], stride)
    K = kh * kw * c
    shape = plane_patches_shape(n, (ho, wo), (kh, kw), c)
    if keep_cols and cols is None:
        cols = np.empty(shape, dtype=X.dtype)
    if keep_cols and (cols.shape != shape or cols.dtype != X.dtype or not cols.flags.c_contiguous):
        raise ValueError(f"cols must be a C-contiguous {X.dtype} array of shape {shape}; got {cols.dtype} {cols.shape}")
    matrix = cols.reshape(K, n * ho * wo) if keep_cols else None
    Z = np.empty((n * ho * wo, f), dtype=X.dtype)
    weights = W.reshape(K, f)

    def images(start: int, stop: int) -> None:
        image_chunks = chunks(stop - start, ho * wo, PLANES_CHUNK_ROWS)
        step = image_chunks[0][1] - image_chunks[0][0]
        planes = _zero_bordered((c, step, h, w), pad, X.dtype)
        scratch = None if keep_cols else np.empty((K, step * ho * wo), dtype=X.dtype)
        for a, b_ in image_chunks:
            a, b_ = start + a, start + b_
            block = matrix[:, a * ho * wo : b_ * ho * wo] if keep_cols else scratch[:, : (b_ - a) * ho * wo]
            gather_planes(X[a:b_], pad, (kh, kw), stride, (ho, wo), planes, block)
            rows = Z[a * ho * wo : b_ * ho * wo]
            np.matmul(block.T, weights, out=rows)
            if b is not None:
                rows += b.reshape(1, f)
            if relu:
                np.maximum(rows, 0, out=rows)

    parallel.map_batch(images, n, work=n * ho * wo * K * f)
    return Z.reshape(n, ho, wo, f), (cols if keep_cols else None, X)


def planes_backward(dZ, W, cache, stride, pad, need_dX, need_db, relu_output):
    """:func:`~neural_networks.functional.conv.conv2d_backward` of a thin input: per chunk of
    images, ``dW += cols_c dZ_c`` with the kept (or regathered) channel-first patches, and for
    ``dX`` the product ``D = W dZ_c^T (kh*kw*c, rows)``, whose row ``(i, j, ch)`` is added onto
    input plane ``ch`` shifted by ``(i, j)`` (taps in the padding skipped), the planes then
    transposed to NHWC."""
    cols, X = cache
    n, h, w, c = X.shape
    kh, kw, _, f = W.shape
    _, ho, wo, _ = dZ.shape
    K = kh * kw * c
    weights = W.reshape(K, f)
    taps = kernel_taps((h, w), (ho, wo), (kh, kw), pad, stride)
    full = next((t for t in taps if covers(t[3], t[4], (h, w))), None)
    dX = np.empty(X.shape, dtype=dZ.dtype) if need_dX else None
    matrix = None if cols is None else cols.reshape(K, n * ho * wo)  # C-contiguous (planes_forward)

    def images(start: int, stop: int):
        image_chunks = chunks(stop - start, max(ho * wo, h * w), PLANES_CHUNK_ROWS)
        step = image_chunks[0][1] - image_chunks[0][0]
        dW = np.zeros((K, f), dtype=dZ.dtype)
        dW_part = np.empty((K, f), dtype=dZ.dtype)
        db = np.zeros(f, dtype=np.float64) if need_db else None
        if cols is None:  # the forward pass ran without keeping its patches
            planes = _zero_bordered((c, step, h, w), pad, dZ.dtype)
            scratch = np.empty((K, step * ho * wo), dtype=dZ.dtype)
        if relu_output is not None:
            masked = np.empty((step * ho * wo, f), dtype=dZ.dtype)
        if need_dX:
            D = np.empty((K, step * ho * wo), dtype=dZ.dtype)
            dplanes = np.empty((c, step, h, w), dtype=dZ.dtype)
        for a, b in image_chunks:
            a, b = start + a, start + b
            m = b - a
            dZ_c = dZ[a:b].reshape(m * ho * wo, f)
            if relu_output is not None:
                dZ_c = np.multiply(dZ_c, relu_output[a:b].reshape(m * ho * wo, f) > 0, out=masked[: m * ho * wo])
            if need_db:
                db += column_sums(dZ_c)
            if matrix is None:
                block = scratch[:, : m * ho * wo]
                gather_planes(X[a:b], pad, (kh, kw), stride, (ho, wo), planes, block)
            else:
                block = matrix[:, a * ho * wo : b * ho * wo]
            np.matmul(block, dZ_c, out=dW_part)
            dW += dW_part
            if not need_dX:
                continue
            D_c = np.matmul(weights, dZ_c.T, out=D[:, : m * ho * wo]).reshape(kh, kw, c, m, ho, wo)
            out = dplanes[:, :m]
            if full is None:
                out[...] = 0
            else:
                (i, j), out_rows, out_cols = full[:3]
                np.copyto(out, D_c[i, j][:, :, out_rows, out_cols])
            for (i, j), out_rows, out_cols, in_rows, in_cols in taps:
                if (i, j) != (None if full is None else full[0]):
                    out[:, :, in_rows, in_cols] += D_c[i, j][:, :, out_rows, out_cols]
            dX[a:b] = out.transpose(1, 2, 3, 0)
        return dW, db

    parts = parallel.map_batch(images, n, work=(2 if need_dX else 1) * dZ.size * K)
    return (dX, *summed_parts(parts, W.shape, dZ.dtype, need_db))
