"""Fast max and average pooling on NHWC images, in cache-sized blocks of images on the batch's
threads; checked against :func:`neural_networks.functional.reference.pool2d_forward` and
``pool2d_backward``.

Both passes reduce over the ``kh * kw`` strided views of the (padded) input with in-place
ufuncs (:func:`~neural_networks.functional.geometry.window_views`), a block of images at a time:
each offset's pass then re-reads a block that is still in cache instead of streaming the whole
batch from memory ``kh * kw`` times.
"""

from __future__ import annotations

import numpy as np

from .blocks import over_blocks
from .geometry import conv_output_size, pad_nhwc, unpad, window_views

__all__ = ["POOL_BLOCK_BYTES", "pool2d_forward", "pool2d_backward"]

#: Bytes of images pooled per block: about an L2 cache (benchmarks/RESULTS.md, "Kernel figures
#: moved from code comments").
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
    :func:`~neural_networks.functional.parallel.map_batch` (each writes its own images: the same
    bits for any count).
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

    over_blocks(_image_blocks(n, X_pad[0].nbytes), pool, work=Y.size * kh * kw * 4)
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

    over_blocks(_image_blocks(dY.shape[0], dX_pad[0].nbytes), unpool, work=dY.size * kh * kw * 3)
    return unpad(dX_pad, pad)
