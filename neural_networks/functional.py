"""Pure array kernels: no state, no validation (callers validate at the public boundary).

Shapes follow the spec: images are NHWC ``(batch, rows, cols, channels)``, convolution
weights ``(kh, kw, in_channels, out_channels)``, biases ``(1, out_channels)``.

Every kernel is vectorised over the batch; none loops over examples or output pixels:

* convolution gathers every receptive field from a strided view of the padded input (im2col)
  and multiplies by the reshaped kernel, a few images at a time so that the gathered rows are
  still in cache (:func:`patch_matmul`), with the bias and a ReLU applied to each chunk of rows
  while it is in cache; the only Python loop is over those chunks;
* its backward pass, also chunk by chunk, is ``dW = cols^T dZ`` and, for stride 1, ``dX`` as a
  transposed convolution (the same gather on the zero-bordered ``dZ`` times the flipped kernel);
  other strides scatter ``dZ W^T`` back with ``kh * kw`` strided adds (:func:`col2im`);
* thin inputs (an RGB or grayscale first layer, :func:`thin_input`) gather their patches
  channel-first instead, as shifted copies of whole image planes (:func:`_planes_forward`), and
  scatter ``dX`` back onto planes the same way (:func:`_planes_backward`);
* both convolution passes split the batch over threads (:mod:`neural_networks.parallel`);
* pooling reduces over the ``kh * kw`` strided views of the padded input;
* batch normalisation works on the ``(M, c)`` view with per-column statistics, summed in one
  read of the data (one-pass moments where no column's mean dwarfs its spread, two-pass otherwise).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import parallel, winograd

__all__ = [
    "column_sums",
    "conv_output_size",
    "resolve_padding",
    "pad_nhwc",
    "window_views",
    "tap_slices",
    "kernel_taps",
    "patches",
    "im2col",
    "patch_matmul",
    "col2im",
    "conv2d_forward",
    "transposed_conv_applies",
    "gathers_input_gradient",
    "conv2d_backward",
    "pool2d_forward",
    "pool2d_backward",
    "ONE_PASS_LIMIT",
    "batchnorm_train_forward",
    "batchnorm_train_backward",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
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


def _unpad(X_pad: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """The interior of a padded NHWC array (a view)."""
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


# ----------------------------------------------------------------------------- taps


def tap_slices(in_size: int, out_size: int, offset: int, pad: int, stride: int):
    """For kernel offset ``offset`` along one axis: ``(out_slice, in_slice)`` pairing the output
    positions whose input tap ``r*stride + offset - pad`` falls inside the (unpadded) input with
    those input positions; ``None`` if there are none. Taps in the padding read zeros, so they
    are simply skipped: no padded copy of the input is ever made."""
    first = max(0, -(-(pad - offset) // stride))
    last = min(out_size - 1, (in_size - 1 + pad - offset) // stride)
    if last < first:
        return None
    start = first * stride + offset - pad
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


def kernel_taps(in_hw, out_hw, kernel_shape, pad, stride: int) -> list:
    """``[((i, j), out_rows, out_cols, in_rows, in_cols), ...]`` for every kernel offset that
    touches the input (see :func:`tap_slices`)."""
    taps = []
    for i in range(kernel_shape[0]):
        rows = tap_slices(in_hw[0], out_hw[0], i, pad[0], stride)
        for j in range(kernel_shape[1]):
            cols = tap_slices(in_hw[1], out_hw[1], j, pad[1], stride)
            if rows is not None and cols is not None:
                taps.append(((i, j), rows[0], cols[0], rows[1], cols[1]))
    return taps


def _covers(in_rows: slice, in_cols: slice, in_hw) -> bool:
    return in_rows == slice(0, in_hw[0], 1) and in_cols == slice(0, in_hw[1], 1)


# ----------------------------------------------------------------------------- reductions

SUM_BLOCK = 1 << 18  # elements per block of column_sums (1 MB of float32)


def column_sums(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """``(M, c) -> (c,)`` float64: ``sum_i A[i, j]``, or ``sum_i A[i, j] * B[i, j]`` if ``B`` is
    given. One read of the data: BLAS ``ones @ A`` / ``einsum`` over blocks of rows, summed in float64."""
    M, c = A.shape
    rows = max(1, SUM_BLOCK // max(c, 1))
    total = np.zeros(c, dtype=np.float64)
    ones = np.ones(min(rows, M), dtype=A.dtype) if B is None else None
    for start in range(0, M, rows):
        block = A[start : start + rows]
        if B is None:
            total += ones[: block.shape[0]] @ block
        else:
            total += np.einsum("ij,ij->j", block, B[start : start + rows])
    return total


# ----------------------------------------------------------------------------- im2col


def patches(X_pad: np.ndarray, kernel_shape, stride: int, out_shape) -> np.ndarray:
    """Read-only strided view ``(n, out_rows, out_cols, kh, kw, c)`` of every receptive field of a
    padded NHWC array (no copy): ``view[n, r, s, i, j] = X_pad[n, r*stride + i, s*stride + j]``."""
    n, _, _, c = X_pad.shape
    s0, s1, s2, s3 = X_pad.strides
    return as_strided(
        X_pad, (n, *out_shape, *kernel_shape, c), (s0, s1 * stride, s2 * stride, s1, s2, s3), writeable=False
    )


def im2col(X: np.ndarray, kernel_shape, stride: int, pad, out_shape, out: np.ndarray | None = None) -> np.ndarray:
    """Gather every receptive field of the zero-padded input into one row.

    ``X (n, h, w, c) -> cols (n, out_rows, out_cols, kh, kw, c)``; reshaped to
    ``(n*out_rows*out_cols, kh*kw*c)`` it multiplies ``W.reshape(kh*kw*c, out_channels)``.
    One copy of a strided view (numpy moves whole ``kw*c`` runs at a time).
    ``out`` may be a reusable C-contiguous buffer of that shape and dtype.
    """
    view = patches(pad_nhwc(X, pad), kernel_shape, stride, out_shape)
    if out is None:
        out = np.empty(view.shape, dtype=X.dtype)
    np.copyto(out, view)
    return out


def col2im(dcols: np.ndarray, in_shape, kernel_shape, stride: int, pad, out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``(n, ho, wo, kh, kw, c)`` onto the unpadded input
    ``(n, h, w, c)`` with one strided add per kernel offset (contributions that land in the
    padding are dropped). An offset that covers the whole input is written first, by copy,
    which saves zero-filling the result. ``out``: an array of ``in_shape`` to write the result
    into (its contents are overwritten); returned."""
    n, h, w, c = in_shape
    taps = kernel_taps((h, w), dcols.shape[1:3], kernel_shape, pad, stride)
    full = next((t for t in taps if _covers(t[3], t[4], (h, w))), None)
    if out is not None and out.shape != tuple(in_shape):
        raise ValueError(f"col2im: out has shape {out.shape}, expected {tuple(in_shape)}")
    dX = np.empty(in_shape, dtype=dcols.dtype) if out is None else out
    if full is not None:
        (i, j), out_rows, out_cols = full[:3]
        np.copyto(dX, dcols[:, out_rows, out_cols, i, j, :])
        taps = [t for t in taps if t is not full]
    else:
        dX[...] = 0
    for (i, j), out_rows, out_cols, in_rows, in_cols in taps:
        dX[:, in_rows, in_cols, :] += dcols[:, out_rows, out_cols, i, j, :]
    return dX


# ----------------------------------------------------------------------------- convolution


# Output positions gathered and multiplied per block. Cache blocking, not per-example work: the
# arithmetic of a block is one batched product. Measured on 2 cores (conv fwd+bwd, batch 128):
# 16x16x32->64 58 ms at 1024 rows vs 76 ms at 8192; 32x32x32->64 228 ms vs 315 ms (one thread).
# With the batch split over two threads: 84, 72, 60 and 62 ms at 256, 512, 1024 and 2048 rows.
# For 32x32 images a block is one image; chunk_rows >= n*ho*wo gives a single block.
CHUNK_ROWS = 1024


def patch_matmul(
    view: np.ndarray,
    weights: np.ndarray,
    out: np.ndarray,
    keep: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    relu: bool = False,
    chunk_rows: int | None = None,
) -> np.ndarray:
    """``out = view.reshape(-1, K) @ weights`` for a strided patch view ``(n, ho, wo, kh, kw, c)``,
    a few images at a time: each chunk of patches is copied (into ``keep``, a full buffer
    shaped like ``view`` that the caller keeps, or else into a small scratch array) and multiplied
    while it is still in cache, about 1.4x faster than one big im2col followed by one product.

    ``weights (kh*kw*c, f)``, ``out (n*ho*wo, f)`` C-contiguous, optional ``bias (1, f)`` added to
    each chunk and, with ``relu``, ``max(., 0)`` applied in place while the rows are in cache;
    ``chunk_rows`` defaults to ``CHUNK_ROWS``. Returns ``out``.
    """
    n = view.shape[0]
    rows_per_image = view.shape[1] * view.shape[2]
    k = weights.shape[0]
    scratch = None
    for a, b in _chunks(n, rows_per_image, chunk_rows):
        if keep is not None:
            block = keep[a:b]
        else:
            if scratch is None:
                scratch = np.empty((b - a, *view.shape[1:]), dtype=view.dtype)
            block = scratch[: b - a]
        np.copyto(block, view[a:b])
        rows = out[a * rows_per_image : b * rows_per_image]
        np.matmul(block.reshape(-1, k), weights, out=rows)
        if bias is not None:
            rows += bias
        if relu:
            np.maximum(rows, 0, out=rows)
    return out


def _chunks(n: int, rows_per_image: int, chunk_rows: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` image ranges of about ``chunk_rows`` (default ``CHUNK_ROWS``) rows, at least one
    image each, covering ``range(n)``; the first is the largest."""
    step = max(1, (CHUNK_ROWS if chunk_rows is None else chunk_rows) // max(rows_per_image, 1))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def conv2d_forward(
    X: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    stride: int,
    pad: tuple[int, int],
    cols: np.ndarray | None = None,
    keep_cols: bool = True,
    relu: bool = False,
):
    """Cross-correlation ``Z[n, r, s, f] = sum_{i,j,c} W[i,j,c,f] * Xpad[n, r*st+i, s*st+j, c] + b[f]``.

    ``X (n, h, w, c), W (kh, kw, c, f), b (1, f) or None (no bias) -> Z (n, ho, wo, f)`` plus the cache
    ``(cols, X)`` that :func:`conv2d_backward` needs: ``cols (n, ho, wo, kh, kw, c)`` is the
    im2col matrix, filled chunk by chunk by :func:`patch_matmul` (``cols`` may be passed in as a
    reusable buffer). With ``keep_cols=False`` (inference) only a small scratch block is used
    and the cache holds ``None``; the backward pass then regathers the patches from ``X``.
    With ``relu`` the result is ``max(Z, 0)``, rectified chunk by chunk while it is in cache.
    Wide 3x3 "same" layers (:func:`neural_networks.winograd.applies`) take the Winograd
    F(2x2, 3x3) path instead, whose cache holds no patches.
    """
    kh, kw, c, f = W.shape
    n, h, w, _ = X.shape
    if thin_input(c):
        return _planes_forward(X, W, b, stride, pad, cols, keep_cols, relu)
    if winograd.applies((kh, kw), stride, pad, (h, w), c, f):
        Z = winograd.conv3x3_same(X, winograd.filter_transform(W))
        if b is not None:
            Z += b.reshape(f)
        if relu:
            np.maximum(Z, 0, out=Z)
        return Z, (None, X)  # the backward pass regathers patches for dW (wide inputs never keep them)
    ho = conv_output_size(h, kh, pad[0], stride)
    wo = conv_output_size(w, kw, pad[1], stride)
    if keep_cols and cols is None:
        cols = np.empty((n, ho, wo, kh, kw, c), dtype=X.dtype)
    Z = np.empty((n * ho * wo, f), dtype=X.dtype)
    weights = W.reshape(kh * kw * c, f)
    bias = None if b is None else b.reshape(1, f)

    def images(start: int, stop: int) -> None:
        view = patches(pad_nhwc(X[start:stop], pad), (kh, kw), stride, (ho, wo))
        patch_matmul(
            view,
            weights,
            Z[start * ho * wo : stop * ho * wo],
            keep=cols[start:stop] if keep_cols else None,
            bias=bias,
            relu=relu,
        )

    parallel.map_batch(images, n, work=n * ho * wo * kh * kw * c * f)
    return Z.reshape(n, ho, wo, f), (cols if keep_cols else None, X)


def transposed_conv_applies(kernel_shape, stride: int, pad) -> bool:
    """Whether :func:`conv2d_backward` computes ``dX`` as a convolution of the padded output
    gradient with the flipped kernel: stride 1 and ``0 <= pad <= k - 1`` (e.g. "same", "valid")."""
    return stride == 1 and all(0 <= p <= k - 1 for p, k in zip(pad, kernel_shape))


# Stride-1 layers that widen to at least this many filters, and at least twice their input
# channels, compute the input gradient as dZ W^T scattered back (col2im) instead of as a
# convolution of dZ: that gathers 9*f columns of dZ to produce only c, while the scatter writes
# and re-reads 9*c. Measured on one core (3x3, chunks of ~1000 rows), scatter / gather time:
# 64->256 at 15x15 0.83, 64->128 0.70, 32->256 0.73, 128->512 0.90, 128->256 at 7x7 1.00; but
# 64->64 1.34, 32->64 1.18 and 24->64 at 31x31 1.56 (short channel runs make the strided adds slow).
SCATTER_MIN_FILTERS = 128


def gathers_input_gradient(c: int, f: int) -> bool:
    """Whether a stride-1 convolution from ``c`` to ``f`` channels computes its input gradient by
    gathering patches of ``dZ`` (true) or by scattering ``dZ W^T`` (:func:`col2im`; see
    ``SCATTER_MIN_FILTERS``)."""
    return not (f >= SCATTER_MIN_FILTERS and f >= 2 * c)


def conv2d_backward(
    dZ: np.ndarray,
    W: np.ndarray,
    cache,
    stride: int,
    pad: tuple[int, int],
    need_dX: bool = True,
    need_db: bool = True,
    relu_output: np.ndarray | None = None,
):
    """Gradients of :func:`conv2d_forward`.

    ``dZ (n, ho, wo, f) -> dX (n, h, w, c) (None unless need_dX), dW (kh, kw, c, f),
    db (1, f) (None unless need_db)``. With ``relu_output`` (the output ``Y`` of a forward pass
    with ``relu=True``) ``dZ`` is the gradient at ``Y``, and the ReLU's derivative (``Y > 0``)
    is applied first.

    ``dW = cols^T dZ``. ``dX``: with stride 1 it is the "full" cross-correlation of ``dZ``
    (padded by ``k - 1 - pad``) with the kernel flipped in space and transposed in channels --
    an im2col of ``dZ`` and one matrix product; otherwise, and for layers that widen a lot
    (:func:`gathers_input_gradient`), ``dcols = dZ W^T`` scattered back by :func:`col2im`. The batch is split over :mod:`~neural_networks.parallel` threads, and each
    slice runs a few images at a time (:func:`_conv2d_backward_images`), so that a chunk's
    ``dZ`` (masked, padded, gathered) and its patches stay in cache between the products.
    """
    cols, X = cache
    n = X.shape[0]
    kh, kw, c, f = W.shape
    if thin_input(c):
        return _planes_backward(dZ, W, cache, stride, pad, need_dX, need_db, relu_output)
    if winograd.WEIGHT_GRADIENT and winograd.applies((kh, kw), stride, pad, X.shape[1:3], c, f):
        return _conv2d_backward_winograd(dZ, W, X, need_dX, need_db, relu_output)
    # the input gradient of a wide 3x3 "same" layer is a 3x3 "same" convolution too (f -> c
    # channels, the kernel flipped and transposed): Winograd computes it after the dW pass
    winograd_dX = need_dX and winograd.applies((kh, kw), stride, pad, X.shape[1:3], f, c)
    dX = np.empty(X.shape, dtype=dZ.dtype) if need_dX and not winograd_dX else None

    def images(start: int, stop: int):
        part = slice(start, stop)
        return _conv2d_backward_images(
            dZ[part],
            W,
            None if cols is None else cols[part],
            X[part],
            stride,
            pad,
            None if dX is None else dX[part],
            need_db,
            None if relu_output is None else relu_output[part],
        )

    parts = parallel.map_batch(images, n, work=(1 if winograd_dX or not need_dX else 2) * dZ.size * kh * kw * c)
    if winograd_dX:
        masked = dZ if relu_output is None else np.multiply(dZ, relu_output > 0)
        flipped = np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2))
        dX = winograd.conv3x3_same(masked, winograd.filter_transform(flipped))
    return (dX, *_summed_parts(parts, W.shape, dZ.dtype, need_db))


def _summed_parts(parts: list, shape, dtype, need_db: bool):
    """``(dW (shape), db (1, f) or None)`` from the threads' partial ``(dW, db)`` of a
    convolution's backward pass, added in slice order: the same sums for the same thread count."""
    dW, db = parts[0]
    for dW_part, db_part in parts[1:]:
        dW += dW_part
        if need_db:
            db += db_part
    return dW.reshape(shape), (db.astype(dtype).reshape(1, shape[-1]) if need_db else None)


def _conv2d_backward_winograd(dZ, W, X, need_dX, need_db, relu_output):
    """:func:`conv2d_backward` of a wide 3x3 "same" layer, all in the Winograd domain: the
    weight gradient (:func:`~neural_networks.winograd.weight_gradient3x3_same`) and the input
    gradient (a 3x3 "same" convolution of ``dZ`` with the flipped, transposed kernel), from one
    masked copy of ``dZ``; no patches are gathered."""
    f = W.shape[3]
    masked = dZ if relu_output is None else np.multiply(dZ, relu_output > 0)
    db = column_sums(masked.reshape(-1, f)).astype(dZ.dtype).reshape(1, f) if need_db else None
    dW = winograd.weight_gradient3x3_same(X, masked)
    dX = None
    if need_dX:
        flipped = np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2))
        dX = winograd.conv3x3_same(masked, winograd.filter_transform(flipped))
    return dX, dW, db


def _conv2d_backward_images(dZ, W, cols, X, stride, pad, dX, need_db, relu_output):
    """:func:`conv2d_backward` for one slice of the batch, a chunk of images at a time; writes
    ``dX`` (this slice's rows of the output, or ``None``) and returns ``(dW (K, f), db (f,) float64 or None)``.

    Per chunk: ``dZ_c`` (times the ReLU mask), its column sums for ``db``, ``dW += cols_c^T dZ_c``
    (``cols_c`` from the forward pass's buffer, or regathered from ``X``), then ``dX_c``: for
    stride 1 into a layer that does not widen much (:func:`gathers_input_gradient`), ``dZ_c``
    copied into a zero-bordered block, its patches gathered and multiplied by the flipped kernel;
    otherwise ``dZ_c W^T`` scattered back by :func:`col2im`. No full-size padded, masked or
    gathered copy of ``dZ`` is made.
    """
    n, h, w, c = X.shape
    kh, kw, _, f = W.shape
    _, ho, wo, _ = dZ.shape
    K = kh * kw * c
    rows_out = ho * wo
    chunks = _chunks(n, max(rows_out, h * w))
    step = chunks[0][1] - chunks[0][0]
    dW = np.zeros((K, f), dtype=dZ.dtype)
    dW_part = np.empty((K, f), dtype=dZ.dtype)
    db = np.zeros(f, dtype=np.float64) if need_db else None
    if cols is None:  # the forward pass ran without keeping its patches
        X_view = patches(pad_nhwc(X, pad), (kh, kw), stride, (ho, wo))
        cols_scratch = np.empty((step, ho, wo, kh, kw, c), dtype=dZ.dtype)
    if relu_output is not None:
        masked = np.empty((step * rows_out, f), dtype=dZ.dtype)
    transposed = transposed_conv_applies((kh, kw), stride, pad) and gathers_input_gradient(c, f)
    if dX is not None and not transposed:
        dcols = np.empty((step * rows_out, K), dtype=dZ.dtype)
        W_T = np.ascontiguousarray(W.reshape(K, f).T)
    if dX is not None and transposed:
        p0, p1 = kh - 1 - pad[0], kw - 1 - pad[1]
        dZ_block = np.zeros((step, ho + 2 * p0, wo + 2 * p1, f), dtype=dZ.dtype)  # the border stays zero
        dZ_patches = np.empty((step, h, w, kh, kw, f), dtype=dZ.dtype)
        W_flipped = np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(kh * kw * f, c)
    for a, b in chunks:
        m = b - a
        dZ_c = dZ[a:b].reshape(m * rows_out, f)
        if relu_output is not None:
            dZ_c = np.multiply(dZ_c, relu_output[a:b].reshape(m * rows_out, f) > 0, out=masked[: m * rows_out])
        if need_db:
            db += column_sums(dZ_c)
        if cols is None:
            np.copyto(cols_scratch[:m], X_view[a:b])
            cols_c = cols_scratch[:m]
        else:
            cols_c = cols[a:b]
        np.matmul(cols_c.reshape(m * rows_out, K).T, dZ_c, out=dW_part)
        dW += dW_part
        if dX is None:
            continue
        if transposed:
            block = dZ_block[:m]
            block[:, p0 : p0 + ho, p1 : p1 + wo] = dZ_c.reshape(m, ho, wo, f)
            np.copyto(dZ_patches[:m], patches(block, (kh, kw), 1, (h, w)))
            np.matmul(dZ_patches[:m].reshape(m * h * w, kh * kw * f), W_flipped, out=dX[a:b].reshape(m * h * w, c))
        else:
            rows = np.matmul(dZ_c, W_T, out=dcols[: m * rows_out])
            col2im(rows.reshape(m, ho, wo, kh, kw, c), (m, h, w, c), (kh, kw), stride, pad, out=dX[a:b])
    return dW, db


# ----------------------------------------------------------------------------- thin inputs

# Inputs with at most this many channels (an RGB or grayscale first layer) are convolved through
# channel planes (:func:`_planes_forward`): their NHWC patches would be copied in runs of only
# ``kw * c`` numbers, so the patches are gathered channel-first instead, as ``kh * kw * c``
# shifted copies of whole image planes, and training keeps them for the backward pass
# (re-reading them beats regathering). Wider inputs use the NHWC im2col path and regather their
# patches chunk by chunk in the backward pass, which is faster than a full-size patch matrix
# written and re-read through memory (benchmarks/RESULTS.md).
THIN_MAX_CHANNELS = 4
# Output positions per chunk of the channel-plane path: its per-chunk calls (a transpose, one copy
# per kernel offset, the products) are small, so chunks are larger than im2col's. Measured on 2
# cores (b64 32x32x3 -> 32, fwd / dW / dW+dX ms): 9.4 / 6.6 / 16.5 at 1024 rows, 5.6 / 3.4 / 8.6
# at 4096, 4.8 / 3.5 / 7.4 at 8192 and 16384, 5.0 / 4.2 / 8.2 in one chunk per thread.
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


def _gather_planes(X: np.ndarray, pad, kernel_shape, stride: int, out_hw, planes: np.ndarray, cols: np.ndarray):
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
    """Scratch planes ``(c, m, h + 2*pad_rows, w + 2*pad_cols)`` for :func:`_gather_planes`, zeros."""
    c, m, h, w = shape
    return np.zeros((c, m, h + 2 * pad[0], w + 2 * pad[1]), dtype=dtype)


def _planes_forward(X, W, b, stride, pad, cols, keep_cols, relu):
    """:func:`conv2d_forward` of a thin input (:func:`thin_input`): per chunk of images, the
    patches gathered channel-first (:func:`_gather_planes`, into the kept ``cols`` of
    :func:`plane_patches_shape` or a scratch block), then ``Z_c = cols_c^T W`` with the bias
    and ReLU applied while the rows are in cache."""
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
        chunks = _chunks(stop - start, ho * wo, PLANES_CHUNK_ROWS)
        step = chunks[0][1] - chunks[0][0]
        planes = _zero_bordered((c, step, h, w), pad, X.dtype)
        scratch = None if keep_cols else np.empty((K, step * ho * wo), dtype=X.dtype)
        for a, b_ in chunks:
            a, b_ = start + a, start + b_
            block = matrix[:, a * ho * wo : b_ * ho * wo] if keep_cols else scratch[:, : (b_ - a) * ho * wo]
            _gather_planes(X[a:b_], pad, (kh, kw), stride, (ho, wo), planes, block)
            rows = Z[a * ho * wo : b_ * ho * wo]
            np.matmul(block.T, weights, out=rows)
            if b is not None:
                rows += b.reshape(1, f)
            if relu:
                np.maximum(rows, 0, out=rows)

    parallel.map_batch(images, n, work=n * ho * wo * K * f)
    return Z.reshape(n, ho, wo, f), (cols if keep_cols else None, X)


def _planes_backward(dZ, W, cache, stride, pad, need_dX, need_db, relu_output):
    """:func:`conv2d_backward` of a thin input: per chunk of images, ``dW += cols_c dZ_c`` with
    the kept (or regathered) channel-first patches, and for ``dX`` the product
    ``D = W dZ_c^T (kh*kw*c, rows)``, whose row ``(i, j, ch)`` is added onto input plane ``ch``
    shifted by ``(i, j)`` (taps in the padding skipped), the planes then transposed to NHWC."""
    cols, X = cache
    n, h, w, c = X.shape
    kh, kw, _, f = W.shape
    _, ho, wo, _ = dZ.shape
    K = kh * kw * c
    weights = W.reshape(K, f)
    taps = kernel_taps((h, w), (ho, wo), (kh, kw), pad, stride)
    full = next((t for t in taps if _covers(t[3], t[4], (h, w))), None)
    dX = np.empty(X.shape, dtype=dZ.dtype) if need_dX else None
    matrix = None if cols is None else cols.reshape(K, n * ho * wo)  # C-contiguous (_planes_forward)

    def images(start: int, stop: int):
        chunks = _chunks(stop - start, max(ho * wo, h * w), PLANES_CHUNK_ROWS)
        step = chunks[0][1] - chunks[0][0]
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
        for a, b in chunks:
            a, b = start + a, start + b
            m = b - a
            dZ_c = dZ[a:b].reshape(m * ho * wo, f)
            if relu_output is not None:
                dZ_c = np.multiply(dZ_c, relu_output[a:b].reshape(m * ho * wo, f) > 0, out=masked[: m * ho * wo])
            if need_db:
                db += column_sums(dZ_c)
            if matrix is None:
                block = scratch[:, : m * ho * wo]
                _gather_planes(X[a:b], pad, (kh, kw), stride, (ho, wo), planes, block)
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
    return (dX, *_summed_parts(parts, W.shape, dZ.dtype, need_db))


# ----------------------------------------------------------------------------- blocks in threads


def _over_blocks(blocks: list, fn, work: int) -> list:
    """``fn(run)`` for contiguous runs of ``blocks``, one run per thread of
    :func:`parallel.map_batch` (``work``: its multiply-adds, below which one thread does all);
    the results in block order."""
    return parallel.map_batch(lambda a, b: fn(blocks[a:b]), len(blocks), work=work)


def _in_order(parts: list) -> np.ndarray:
    """The sum of per-thread partial sums, added in slice order (the same bits every run)."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


# ----------------------------------------------------------------------------- pooling


# Images pooled per block: each offset's pass then re-reads a block that is still in cache
# instead of streaming the whole batch from memory kh*kw times. Measured on 2 cores (2x2 max
# pooling forward, batch 128, 32x32x32): 15-21 ms in one block, 8-10 ms in blocks of 2 MB.
POOL_BLOCK_BYTES = 1 << 21


def _image_blocks(n: int, bytes_per_image: int):
    """``slice``s of at most ``POOL_BLOCK_BYTES`` worth of images (at least one image each) covering ``range(n)``."""
    step = max(1, POOL_BLOCK_BYTES // max(bytes_per_image, 1))
    return [slice(a, min(n, a + step)) for a in range(0, n, step)]


def pool2d_forward(X: np.ndarray, kernel_shape, stride: int, pad: tuple[int, int], mode: str):
    """Max or average pooling over zero-padded windows (the spec pads with zeros).

    ``X (n, h, w, c) -> Y (n, ho, wo, c)`` plus a cache for :func:`pool2d_backward`. Both reduce
    over the ``kh*kw`` strided views of the (padded) input with in-place ufuncs, a cache-sized
    block of images at a time. Average pooling divides by the full window size ``kh*kw``. Max
    pooling also records ``argmax (n, ho, wo, c)`` (uint8), the row-major window index of each
    window's first maximum (the last offset at which the running maximum strictly improved):
    PyTorch sends the gradient of a tie there too. The blocks are shared among the threads of
    :func:`parallel.map_batch` (each writes its own images: the same bits for any count).
    """
    kh, kw = kernel_shape
    n, h, w, c = X.shape
    ho = conv_output_size(h, kh, pad[0], stride)
    wo = conv_output_size(w, kw, pad[1], stride)
    X_pad = pad_nhwc(X, pad)
    Y = np.empty((n, ho, wo, c), dtype=X.dtype)
    argmax = None if mode == "average" else np.empty(Y.shape, dtype=np.uint8 if kh * kw <= 256 else np.uint16)

    def pool(run):
        for block in run:
            views = [view for _, view in window_views(X_pad[block], kernel_shape, stride, (ho, wo))]
            if mode == "average":
                _average_block(views, Y[block], kh * kw)
            else:
                _max_block(views, Y[block], argmax[block])

    _over_blocks(_image_blocks(n, X_pad[0].nbytes), pool, work=Y.size * kh * kw * 4)
    return Y, (X_pad.shape, argmax)


def _average_block(views: list, Y: np.ndarray, size: int) -> None:
    """``Y = mean of the views`` (each ``Y``-shaped), in place."""
    np.copyto(Y, views[0])
    for view in views[1:]:
        Y += view
    Y *= Y.dtype.type(1.0 / size)


def _max_block(views: list, Y: np.ndarray, argmax: np.ndarray) -> None:
    """``Y = max of the views``, ``argmax = index of the first view holding it``, in place."""
    np.copyto(Y, views[0])
    argmax.fill(0)
    better = np.empty(Y.shape, dtype=bool)
    scratch = np.empty_like(argmax)
    for k, view in enumerate(views[1:], start=1):
        np.greater(view, Y, out=better)
        np.maximum(Y, view, out=Y)
        np.multiply(better, argmax.dtype.type(k), out=scratch)
        np.maximum(argmax, scratch, out=argmax)


def pool2d_backward(dY: np.ndarray, cache, kernel_shape, stride: int, pad: tuple[int, int], mode: str) -> np.ndarray:
    """Gradient of :func:`pool2d_forward`: ``dY (n, ho, wo, c) -> dX (n, h, w, c)``.

    Max pooling hands ``dY`` to each window's recorded first maximum: for every offset ``k``,
    ``dX[offset k] (+)= dY * (argmax == k)``; average pooling gives each cell of a window
    ``dY / (kh*kw)``. Works a cache-sized block of images at a time, like the forward pass.
    """
    padded_shape, argmax = cache
    kh, kw = kernel_shape
    ho, wo = dY.shape[1:3]
    # Non-overlapping windows write every cell they cover once: no zero-fill there, only of the
    # rows and columns they leave over (a 31x31 map pooled 2x2 by 2 leaves its last row and column).
    tiles = stride == kh == kw
    if tiles:
        dX_pad = np.empty(padded_shape, dtype=dY.dtype)
        dX_pad[:, ho * kh :] = 0
        dX_pad[:, :, wo * kw :] = 0
    else:
        dX_pad = np.zeros(padded_shape, dtype=dY.dtype)

    def unpool(run):
        for block in run:
            views = [view for _, view in window_views(dX_pad[block], kernel_shape, stride, (ho, wo))]
            dY_block = dY[block]
            if mode == "average":
                share = dY_block * dY.dtype.type(1.0 / (kh * kw))
                for view in views:
                    if tiles:
                        view[...] = share
                    else:
                        view += share
                continue
            hit = np.empty(dY_block.shape, dtype=bool)
            for k, view in enumerate(views):
                np.equal(argmax[block], k, out=hit)
                if tiles:
                    np.multiply(dY_block, hit, out=view)
                else:
                    view += dY_block * hit

    _over_blocks(_image_blocks(dY.shape[0], dX_pad[0].nbytes), unpool, work=dY.size * kh * kw * 3)
    return _unpad(dX_pad, pad)


# ----------------------------------------------------------------------------- batch normalisation
# Every kernel works on the flattened view ``X (M, c)`` (M = batch * rows * cols for NHWC
# input): statistics are per column. ``gamma``, ``beta``, statistics: ``(1, c)``.
#
# The kernels are memory-bound: each pass over an (M, c) array from memory costs about as much
# as any other, so they work in cache-sized blocks of rows and read each array once per phase.
# The variance is one-pass (E[x^2] - E[x]^2) while no column's mean is large against its spread,
# and two-pass otherwise.

ONE_PASS_LIMIT = 64.0  # one-pass moments only where mean^2 <= ONE_PASS_LIMIT * var


def _one_pass_safe(mean: np.ndarray, var: np.ndarray) -> bool:
    """Whether ``E[x y] - E[x] E[y]`` loses at most a few digits in every column."""
    return bool(np.all(mean * mean <= ONE_PASS_LIMIT * var))


#: Rows of an (M, c) array per block of the batch-norm kernels: 256 KB of float32, so that a
#: block stays in the L2 cache through all the passes over it (statistics, then the affine map
#: and the rectification; the masked gradient's sums, then dX) and the array is read from memory
#: once per phase instead of once per pass.
BATCHNORM_BLOCK = 1 << 16


def _row_blocks(M: int, c: int) -> list[slice]:
    rows = max(1, BATCHNORM_BLOCK // max(c, 1))
    return [slice(a, min(M, a + rows)) for a in range(0, M, rows)]


def batchnorm_train_forward(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float,
    relu: bool = False,
    slope_blocks=None,
    slope: np.ndarray | None = None,
):
    """``X (M, c) -> Z (M, c), mean (1, c), inv_std (1, c), var (1, c)`` with batch statistics
    (``var`` is the biased variance used for normalising), ``Z = X * scale + shift``, rectified
    (``max(Z, 0)``) with ``relu``. With ``slope_blocks`` (an activation's
    :meth:`~neural_networks.activations.Activation.slope_blocks`) and ``slope`` (an ``(M, c)``
    array of ``X``'s dtype), the returned array is ``f(Z)`` instead and ``slope`` receives
    ``f'(Z)``, each block activated while it is in cache (``Z`` is never stored whole). Sums and
    the map work a cache-sized block of rows at a time, the blocks shared among the threads of
    :func:`parallel.map_batch` (partial sums added in order)."""
    M, c = X.shape
    dtype = X.dtype
    if slope_blocks is not None and (
        relu or slope is None or slope.shape != X.shape or slope.dtype != dtype or not slope.flags.c_contiguous
    ):
        raise ValueError(
            f"slope_blocks needs relu=False and a C-contiguous slope array of shape {X.shape} and dtype {dtype}"
        )
    blocks = _row_blocks(M, c)

    def moments(run):
        total, squares = np.zeros(c), np.zeros(c)
        ones = np.ones(blocks[0].stop, dtype=dtype)
        for block in run:
            Xb = X[block]
            total += ones[: Xb.shape[0]] @ Xb
            squares += np.einsum("ij,ij->j", Xb, Xb)
        return np.stack([total, squares])

    total, squares = _in_order(_over_blocks(blocks, moments, work=2 * M * c))
    mean = total / M
    var = np.maximum(squares / M - mean * mean, 0.0)
    if not _one_pass_safe(mean, var):  # centre first, so the variance suffers no cancellation
        mean_ = mean.astype(dtype)

        def centred_squares(run):
            part = np.zeros(c)
            for block in run:
                centred = X[block] - mean_
                part += np.einsum("ij,ij->j", centred, centred)
            return part

        var = _in_order(_over_blocks(blocks, centred_squares, work=2 * M * c)) / M
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = gamma.reshape(-1) * inv_std
    scale_, shift_ = scale.astype(dtype), (beta.reshape(-1) - mean * scale).astype(dtype)
    Z = np.empty_like(X) if slope_blocks is None else np.empty(X.shape, dtype=dtype)  # its blocks viewed flat

    def normalise(run):
        for block in run:
            Zb = np.multiply(X[block], scale_, out=Z[block])
            Zb += shift_
            if relu:
                np.maximum(Zb, 0, out=Zb)

    def normalise_and_activate(run):
        scratch = np.empty((blocks[0].stop, c), dtype=dtype)
        with slope_blocks.thread(scratch.size) as activate:
            for block in run:
                Zb = np.multiply(X[block], scale_, out=scratch[: block.stop - block.start])
                Zb += shift_
                activate(Zb.reshape(-1), Z[block].reshape(-1), slope[block].reshape(-1))

    if slope_blocks is None:
        _over_blocks(blocks, normalise, work=2 * M * c)
    else:  # an activation costs tens of the map's passes: split as GELU's own kernels do, from 2 blocks
        _over_blocks(blocks, normalise_and_activate, work=M * c * (parallel.MIN_PARALLEL_WORK >> 17))
    as_row = lambda v: v.reshape(1, -1).astype(dtype)  # noqa: E731
    return Z, as_row(mean), as_row(inv_std), as_row(var)


def batchnorm_train_backward(
    dZ: np.ndarray,
    X: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray,
    overwrite_dZ: bool = False,
    relu_output: np.ndarray | None = None,
):
    """``dZ (M, c) -> dX (M, c), dgamma (1, c), dbeta (1, c)`` for the training transform, from
    the input ``X`` and the batch statistics of :func:`batchnorm_train_forward` (``xhat`` is
    not stored):

    ``dX = gamma * inv_std * (dZ - sum(dZ) / M - xhat * sum(dZ * xhat) / M)``

    computed as ``a * dZ + b * X + c`` with per-column ``a, b, c``. With ``relu_output`` (the
    rectified output ``Y`` of a ``relu=True`` forward pass) ``dZ`` is the gradient of ``Y`` and is
    masked by ``Y > 0`` first. With ``overwrite_dZ`` the caller's ``dZ`` (a temporary) becomes
    ``dX``. Two phases over cache-sized blocks of rows, shared among the threads of
    :func:`parallel.map_batch`: the (masked) gradient and its sums, then ``dX``.
    """
    M, c = dZ.shape
    dtype = dZ.dtype
    blocks = _row_blocks(M, c)
    mean_ = mean.reshape(-1).astype(dtype)
    G = dZ if overwrite_dZ else np.empty_like(dZ)  # the (masked) gradient, then dX, in place

    def sums(run):
        scratch = np.empty((blocks[0].stop, c), dtype=dtype)
        ones = np.ones(blocks[0].stop, dtype=dtype)
        dbeta, centred_dot = np.zeros(c), np.zeros(c)
        for block in run:
            Gb = G[block]
            if relu_output is not None:
                np.multiply(dZ[block], relu_output[block] > 0, out=Gb)
            elif not overwrite_dZ:
                np.copyto(Gb, dZ[block])
            centred = np.subtract(X[block], mean_, out=scratch[: Gb.shape[0]])
            dbeta += ones[: Gb.shape[0]] @ Gb
            centred_dot += np.einsum("ij,ij->j", Gb, centred)  # sum(dZ * (X - mean))
        return np.stack([dbeta, centred_dot])

    dbeta, centred_dot = _in_order(_over_blocks(blocks, sums, work=3 * M * c))
    inv_std64 = inv_std.reshape(-1).astype(np.float64)
    mean64 = mean.reshape(-1).astype(np.float64)
    dgamma = centred_dot * inv_std64
    a = gamma.reshape(-1).astype(np.float64) * inv_std64
    b = -a * inv_std64 * dgamma / M
    c_ = (-b * mean64 - a * dbeta / M).astype(dtype)
    a, b = a.astype(dtype), b.astype(dtype)

    def input_gradient(run):
        scratch = np.empty((blocks[0].stop, c), dtype=dtype)
        for block in run:
            Gb = G[block]
            Gb *= a
            Gb += np.multiply(X[block], b, out=scratch[: Gb.shape[0]])
            Gb += c_

    _over_blocks(blocks, input_gradient, work=3 * M * c)
    as_row = lambda v: v.reshape(1, -1).astype(dtype)  # noqa: E731
    return G, as_row(dgamma), as_row(dbeta)


def batchnorm_eval_forward(
    X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
):
    """``X (M, c) -> Z (M, c), inv_std (1, c)``: the affine map
    ``Z = (X - mean) / sqrt(var + eps) * gamma + beta`` with fixed statistics."""
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = gamma * inv_std
    Z = np.multiply(X, scale)
    Z += beta - mean * scale
    return Z, inv_std


def batchnorm_eval_backward(dZ: np.ndarray, X: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray):
    """``dZ (M, c) -> dX (M, c), dgamma (1, c), dbeta (1, c)`` for the evaluation transform
    (statistics are constants)."""
    dbeta = dZ.sum(axis=0, keepdims=True)
    dgamma = (np.einsum("ij,ij->j", dZ, X).reshape(1, -1) - mean * dbeta) * inv_std
    dX = dZ * (gamma * inv_std)
    return dX, dgamma, dbeta


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
