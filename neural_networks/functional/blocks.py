"""Work in blocks: a batch cut into ranges of images or rows small enough to stay in cache,
the ranges shared among the threads of :func:`~neural_networks.functional.parallel.map_batch`,
and the threads' partial sums added in a fixed order, so that one thread count gives the same
bits every run.
"""

from __future__ import annotations

import numpy as np

from . import parallel

__all__ = ["SUM_BLOCK", "column_sums", "chunks", "summed_parts", "over_blocks", "in_order"]

SUM_BLOCK = 1 << 18  #: Elements per block of column_sums (1 MB of float32)


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


def chunks(n: int, rows_per_image: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` image ranges of about ``chunk_rows`` rows, at least one image each,
    covering ``range(n)``; the first is the largest."""
    step = max(1, chunk_rows // max(rows_per_image, 1))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def summed_parts(parts: list, shape, dtype, need_db: bool):
    """``(dW (shape), db (1, f) or None)`` from the threads' partial ``(dW, db)`` of a
    convolution's backward pass, added in slice order: the same sums for the same thread count."""
    dW, db = parts[0]
    for dW_part, db_part in parts[1:]:
        dW += dW_part
        if need_db:
            db += db_part
    return dW.reshape(shape), (db.astype(dtype).reshape(1, shape[-1]) if need_db else None)


def over_blocks(blocks: list, fn, work: int) -> list:
    """``fn(run)`` for contiguous runs of ``blocks``, one run per thread of
    :func:`parallel.map_batch` (``work``: its multiply-adds, below which one thread does all);
    the results in block order."""
    return parallel.map_batch(lambda a, b: fn(blocks[a:b]), len(blocks), work=work)


def in_order(parts: list) -> np.ndarray:
    """The sum of per-thread partial sums, added in slice order (the same bits every run)."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total
