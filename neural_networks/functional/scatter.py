"""Scattering gradients back onto an input: the adjoint of gathering windows.

A convolution's ``dcols`` (one row per output position, one column per kernel cell and channel)
is added back onto the input cells the forward pass read, with one strided add per kernel
offset over the whole batch (:func:`col2im`). The taps of an offset that fall in the padding are
skipped rather than written to a padded copy (:func:`kernel_taps`); the channel-plane path
(:mod:`.planes`) uses the same taps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tap_slices", "kernel_taps", "covers", "col2im"]


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


def covers(in_rows: slice, in_cols: slice, in_hw) -> bool:
    """Whether a tap's input slices cover the whole ``in_hw`` map, every cell once."""
    return in_rows == slice(0, in_hw[0], 1) and in_cols == slice(0, in_hw[1], 1)


def col2im(dcols: np.ndarray, in_shape, kernel_shape, stride: int, pad, out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`~neural_networks.functional.conv.im2col`: scatter-add
    ``(n, ho, wo, kh, kw, c)`` onto the unpadded input ``(n, h, w, c)`` with one strided add per
    kernel offset (contributions that land in the padding are dropped). An offset that covers
    the whole input is written first, by copy, which saves zero-filling the result. ``out``: an
    array of ``in_shape`` to write the result into (its contents are overwritten); returned.
    ``ValueError`` if ``out`` has another shape."""
    n, h, w, c = in_shape
    taps = kernel_taps((h, w), dcols.shape[1:3], kernel_shape, pad, stride)
    full = next((t for t in taps if covers(t[3], t[4], (h, w))), None)
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
