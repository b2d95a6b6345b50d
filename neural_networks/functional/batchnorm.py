"""Fast batch normalisation on the flattened view ``X (M, c)`` (M = batch * rows * cols for
NHWC input), statistics per column; ``gamma``, ``beta`` and the statistics are ``(1, c)``.
Checked against :func:`neural_networks.functional.reference.batchnorm_train_forward` and the
other ``batchnorm_*`` references.

The kernels are memory-bound: each pass over an (M, c) array from memory costs about as much
as any other, so they work in cache-sized blocks of rows, shared among the batch's threads,
and read each array once per phase (statistics, then the affine map and an activation; the
masked gradient's sums, then ``dX``). The variance is one-pass (``E[x^2] - E[x]^2``) while no
column's mean is large against its spread, and two-pass otherwise.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .blocks import in_order, over_blocks

__all__ = [
    "ONE_PASS_LIMIT",
    "BATCHNORM_BLOCK",
    "batchnorm_train_forward",
    "batchnorm_train_backward",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
]

ONE_PASS_LIMIT = 64.0  #: One-pass moments only where mean^2 <= ONE_PASS_LIMIT * var


def one_pass_safe(mean: np.ndarray, var: np.ndarray) -> bool:
    """Whether ``E[x y] - E[x] E[y]`` loses at most a few digits in every column."""
    return bool(np.all(mean * mean <= ONE_PASS_LIMIT * var))


#: Elements of an (M, c) array per block of the batch-norm kernels: 256 KB of float32, so that a
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
    (``max(Z, 0)``) with ``relu``. With ``slope_blocks`` (a
    :class:`~neural_networks.functional.gelu_tables.GeluWithSlopeBlocks`) and ``slope`` (an ``(M, c)``
    array of ``X``'s dtype), the returned array is ``f(Z)`` instead and ``slope`` receives
    ``f'(Z)``, each block activated while it is in cache (``Z`` is never stored whole); then
    ``relu`` must be false and ``slope`` C-contiguous (``ValueError`` otherwise). Sums and the
    map work a cache-sized block of rows at a time, the blocks shared among the threads of
    :func:`~neural_networks.functional.parallel.map_batch` (partial sums added in order)."""
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

    total, squares = in_order(over_blocks(blocks, moments, work=2 * M * c))
    mean = total / M
    var = np.maximum(squares / M - mean * mean, 0.0)
    if not one_pass_safe(mean, var):  # centre first, so the variance suffers no cancellation
        mean_ = mean.astype(dtype)

        def centred_squares(run):
            part = np.zeros(c)
            for block in run:
                centred = X[block] - mean_
                part += np.einsum("ij,ij->j", centred, centred)
            return part

        var = in_order(over_blocks(blocks, centred_squares, work=2 * M * c)) / M
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
        over_blocks(blocks, normalise, work=2 * M * c)
    else:  # an activation costs tens of the map's passes: split as GELU's own kernels do, from 2 blocks
        over_blocks(blocks, normalise_and_activate, work=M * c * (parallel.MIN_PARALLEL_WORK >> 17))
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
    :func:`~neural_networks.functional.parallel.map_batch`: the (masked) gradient and its sums,
    then ``dX``.
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

    dbeta, centred_dot = in_order(over_blocks(blocks, sums, work=3 * M * c))
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

    over_blocks(blocks, input_gradient, work=3 * M * c)
    as_row = lambda v: v.reshape(1, -1).astype(dtype)  # noqa: E731
    return G, as_row(dgamma), as_row(dbeta)


def batchnorm_eval_forward(
    X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
):
    """``X (M, c) -> Z (M, c), inv_std (1, c)``: the affine map
    ``Z = (X - mean) / sqrt(var + eps) * gamma + beta`` with fixed statistics, as one scale and
    one shift per column."""
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
