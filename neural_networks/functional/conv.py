"""The fast convolution: im2col in cache-sized chunks, on the batch's threads.

``Z[n, r, s, f] = sum_{i,j,c} W[i,j,c,f] * Xpad[n, r*st+i, s*st+j, c] + b[f]`` on NHWC input,
``W (kh, kw, c, f)``, ``b (1, f)``; checked against
:func:`neural_networks.functional.reference.conv2d_forward` and ``conv2d_backward``.

* The forward pass gathers every receptive field from a strided view of the padded input and
  multiplies by the reshaped kernel, a few images at a time so that the gathered rows are still
  in cache (:func:`patch_matmul`), with the bias and a ReLU applied to each chunk of rows while
  it is in cache; the only Python loop is over those chunks.
* The backward pass, also chunk by chunk, is ``dW = cols^T dZ`` and, for stride 1, ``dX`` as a
  transposed convolution (the same gather on the zero-bordered ``dZ`` times the flipped kernel);
  other strides, and layers that widen a lot, scatter ``dZ W^T`` back
  (:func:`~neural_networks.functional.scatter.col2im`).
* Thin inputs (an RGB or grayscale first layer) take the channel-plane path
  (:mod:`.planes`), wide 3x3 "same" layers the Winograd one (:mod:`.winograd`).
* Both passes split the batch over threads (:mod:`.parallel`).
"""

from __future__ import annotations

import numpy as np

from . import parallel, planes, winograd
from .blocks import chunks, column_sums, summed_parts
from .geometry import conv_output_size, pad_nhwc, patches
from .scatter import col2im

__all__ = [
    "CHUNK_ROWS",
    "SCATTER_MIN_FILTERS",
    "im2col",
    "patch_matmul",
    "conv2d_forward",
    "transposed_conv_applies",
    "gathers_input_gradient",
    "conv2d_backward",
]

#: Output positions gathered and multiplied per block. Cache blocking, not per-example work: the
#: arithmetic of a block is one batched product. Blocks much larger than this spill the gathered
#: rows out of the L2 cache before the product reads them, much smaller ones make the products
#: too small for BLAS; the choice was measured, with the batch split over two threads
#: (benchmarks/RESULTS.md, "Kernel figures moved from code comments"). For 32x32 images a block
#: is one image; chunk_rows >= n*ho*wo gives a single block.
CHUNK_ROWS = 1024


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
    while it is still in cache, which is faster than one big im2col followed by one product.

    ``weights (kh*kw*c, f)``, ``out (n*ho*wo, f)`` C-contiguous, optional ``bias (1, f)`` added to
    each chunk and, with ``relu``, ``max(., 0)`` applied in place while the rows are in cache;
    ``chunk_rows`` defaults to ``CHUNK_ROWS``. Returns ``out``.
    """
    n = view.shape[0]
    rows_per_image = view.shape[1] * view.shape[2]
    k = weights.shape[0]
    scratch = None
    for a, b in chunks(n, rows_per_image, CHUNK_ROWS if chunk_rows is None else chunk_rows):
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
    Thin inputs (:func:`.planes.thin_input`) take the channel-plane path, whose ``cols`` has
    :func:`.planes.plane_patches_shape` (``ValueError`` for a buffer of another shape); wide 3x3
    "same" layers (:func:`.winograd.applies`) take the Winograd F(2x2, 3x3) path instead, whose
    cache holds no patches.
    """
    kh, kw, c, f = W.shape
    n, h, w, _ = X.shape
    if planes.thin_input(c):
        return planes.planes_forward(X, W, b, stride, pad, cols, keep_cols, relu)
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


#: Stride-1 layers that widen to at least this many filters, and at least twice their input
#: channels, compute the input gradient as dZ W^T scattered back (col2im) instead of as a
#: convolution of dZ: that gathers 9*f columns of dZ to produce only c, while the scatter writes
#: and re-reads 9*c. Layers that do not widen as much keep the gather: their short channel runs
#: make the scatter's strided adds slow (benchmarks/RESULTS.md, "Kernel figures moved from code
#: comments").
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
    (:func:`gathers_input_gradient`), ``dcols = dZ W^T`` scattered back by :func:`col2im`. The
    batch is split over :mod:`.parallel` threads, and each slice runs a few images at a time
    (:func:`_backward_images`), so that a chunk's ``dZ`` (masked, padded, gathered) and its
    patches stay in cache between the products.
    """
    cols, X = cache
    n = X.shape[0]
    kh, kw, c, f = W.shape
    if planes.thin_input(c):
        return planes.planes_backward(dZ, W, cache, stride, pad, need_dX, need_db, relu_output)
    if winograd.WEIGHT_GRADIENT and winograd.applies((kh, kw), stride, pad, X.shape[1:3], c, f):
        return _backward_winograd(dZ, W, X, need_dX, need_db, relu_output)
    # the input gradient of a wide 3x3 "same" layer is a 3x3 "same" convolution too (f -> c
    # channels, the kernel flipped and transposed): Winograd computes it after the dW pass
    winograd_dX = need_dX and winograd.applies((kh, kw), stride, pad, X.shape[1:3], f, c)
    dX = np.empty(X.shape, dtype=dZ.dtype) if need_dX and not winograd_dX else None

    def images(start: int, stop: int):
        part = slice(start, stop)
        return _backward_images(
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
    return (dX, *summed_parts(parts, W.shape, dZ.dtype, need_db))


def _backward_winograd(dZ, W, X, need_dX, need_db, relu_output):
    """:func:`conv2d_backward` of a wide 3x3 "same" layer, all in the Winograd domain: the
    weight gradient (:func:`~neural_networks.functional.winograd.weight_gradient3x3_same`) and the
    input gradient (a 3x3 "same" convolution of ``dZ`` with the flipped, transposed kernel), from
    one masked copy of ``dZ``; no patches are gathered."""
    f = W.shape[3]
    masked = dZ if relu_output is None else np.multiply(dZ, relu_output > 0)
    db = column_sums(masked.reshape(-1, f)).astype(dZ.dtype).reshape(1, f) if need_db else None
    dW = winograd.weight_gradient3x3_same(X, masked)
    dX = None
    if need_dX:
        flipped = np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2))
        dX = winograd.conv3x3_same(masked, winograd.filter_transform(flipped))
    return dX, dW, db


def _backward_images(dZ, W, cols, X, stride, pad, dX, need_db, relu_output):
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
    image_chunks = chunks(n, max(rows_out, h * w), CHUNK_ROWS)
    step = image_chunks[0][1] - image_chunks[0][0]
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
    for a, b in image_chunks:
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
