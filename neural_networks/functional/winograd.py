"""Winograd F(2x2, 3x3) convolution for wide 3x3 "same" layers (Lavin & Gray, arXiv 1509.09308).

Each 2x2 block of outputs comes from a 4x4 tile of the padded input ``d`` as
``Y = A^T [ (G g G^T) * (B^T d B) ] A``: the 9 multiplies per output of a direct 3x3 convolution
become 4, as 16 matrix products ``V_k (tiles, c) @ U_k (c, f)`` over the transformed tiles, one
per position ``k`` of the 4x4 transform. The input and output transforms are additions,
done here as strided NumPy passes over a few images at a time, so that they stay in cache.

Those passes cost time proportional to ``c + f`` and the products to ``c * f``: the method wins
only for wide layers, and loses on odd maps that padding to even sizes wastes much of (7x7,
3x3); :func:`applies` encodes the rule measured against the im2col kernel (benchmarks/RESULTS.md,
"Kernel figures moved from code comments").
Checked against :func:`neural_networks.functional.reference.conv2d_forward`. Accuracy: the
transforms are exact in binary except for G's halves, so float32 results stay within a few
1e-7 relative of the direct convolution (tested against it and PyTorch).
"""

from __future__ import annotations

import numpy as np

from . import parallel

__all__ = ["MIN_CHANNELS", "MIN_SIZE", "applies", "filter_transform", "conv3x3_same", "weight_gradient3x3_same"]

#: Input and output channels from which the Winograd path is faster than im2col here.
MIN_CHANNELS = 256
#: Smallest map (rows and columns) it is used for (a 2x2 tile needs at least one).
MIN_SIZE = 2
#: Odd maps are padded to even ones, which wastes that share of the products: 7x7 maps (padded
#: to 8x8, 23% wasted) and 3x3 ones (44%) waste too much to win over im2col, even ones nothing
#: (benchmarks/bench_winograd.py).
MAX_PADDING_WASTE = 0.15
#: Whether Conv2D's weight gradient takes the Winograd path too where :func:`applies` (else
#: im2col: patches times the output gradient). A switch for benchmarks and tests.
WEIGHT_GRADIENT = True

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_CHUNK_BYTES = 1 << 21  # transformed tiles per chunk: about the size of one core's L2
# The weight gradient sums a (16, c, f) product per chunk: larger chunks make fewer of those sums.
_GRADIENT_CHUNK_BYTES = 1 << 24


def applies(kernel_shape, stride: int, pad, in_hw, c: int, f: int) -> bool:
    """Whether a convolution of this geometry takes the Winograd path: 3x3, stride 1, one pixel
    of zero padding ("same"), maps of at least :data:`MIN_SIZE` whose padding to even sizes
    wastes at most :data:`MAX_PADDING_WASTE` of the tiles, and both widths at least
    :data:`MIN_CHANNELS`."""
    h, w = in_hw
    even = (h + h % 2) * (w + w % 2)
    return (
        tuple(kernel_shape) == (3, 3)
        and stride == 1
        and tuple(pad) == (1, 1)
        and min(h, w) >= MIN_SIZE
        and 1.0 - h * w / even <= MAX_PADDING_WASTE
        and min(c, f) >= MIN_CHANNELS
    )


def filter_transform(W: np.ndarray) -> np.ndarray:
    """``U (16, c, f) = G g G^T`` for every filter of ``W (3, 3, c, f)``, in ``W``'s dtype (two
    small products over the kernel's rows and columns; a float32 ``W`` is transformed in float32,
    whose rounding of these sums of three halves is far below the convolution's own)."""
    c, f = W.shape[2], W.shape[3]
    G = _G.astype(W.dtype)
    GW = (G @ W.reshape(3, 3 * c * f)).reshape(4, 3, c * f)  # over the rows i
    return np.matmul(G, GW).reshape(16, c, f)  # then over the columns j


def _input_transform(Xp: np.ndarray, th: int, tw: int, R: np.ndarray, V: np.ndarray) -> None:
    """``V (4, 4, m, th, tw, c) = B^T d B`` for every 4x4 tile (stride 2) of ``Xp (m, 2th+2, 2tw+2, c)``;
    ``R (4, m, th, 2tw+2, c)`` is scratch for the rows' pass."""
    rows = [Xp[:, k : k + 2 * th : 2] for k in range(4)]
    np.subtract(rows[0], rows[2], out=R[0])
    np.add(rows[1], rows[2], out=R[1])
    np.subtract(rows[2], rows[1], out=R[2])
    np.subtract(rows[1], rows[3], out=R[3])
    for i in range(4):
        cols = [R[i][:, :, k : k + 2 * tw : 2] for k in range(4)]
        np.subtract(cols[0], cols[2], out=V[i, 0])
        np.add(cols[1], cols[2], out=V[i, 1])
        np.subtract(cols[2], cols[1], out=V[i, 2])
        np.subtract(cols[1], cols[3], out=V[i, 3])


def _output_transform(M: np.ndarray, T: np.ndarray, out: np.ndarray) -> None:
    """``out (m, th, 2, tw, 2, f) = A^T m A`` from ``M (4, 4, m, th, tw, f)``; ``T (2, 4, m, th, tw, f)``
    is scratch for the first axis' pass."""
    np.add(M[0], M[1], out=T[0])
    T[0] += M[2]
    np.subtract(M[1], M[2], out=T[1])
    T[1] -= M[3]
    for i in range(2):
        o = out[:, :, i]
        np.add(T[i, 0], T[i, 1], out=o[:, :, :, 0])
        o[:, :, :, 0] += T[i, 2]
        np.subtract(T[i, 1], T[i, 2], out=o[:, :, :, 1])
        o[:, :, :, 1] -= T[i, 3]


def conv3x3_same(X: np.ndarray, U: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The 3x3 "same" cross-correlation of ``X (n, h, w, c)`` with the filters whose transform is
    ``U (16, c, f)`` (:func:`filter_transform`): ``(n, h, w, f)`` in ``X``'s dtype, written to
    ``out`` if given. Odd ``h`` or ``w`` are padded by one more zero row or column and cropped.
    The batch is split over :mod:`~neural_networks.functional.parallel` threads, each working through its
    images a few at a time."""
    n, h, w, c = X.shape
    f = U.shape[2]
    th, tw = (h + 1) // 2, (w + 1) // 2
    if out is None:
        out = np.empty((n, h, w, f), dtype=X.dtype)
    per_image = 16 * th * tw * max(c, f) * X.dtype.itemsize
    step = max(1, _CHUNK_BYTES // per_image)

    def images(start: int, stop: int) -> None:
        m = min(step, stop - start)
        Xp = np.zeros((m, 2 * th + 2, 2 * tw + 2, c), dtype=X.dtype)  # the border stays zero
        R = np.empty((4, m, th, 2 * tw + 2, c), dtype=X.dtype)
        V = np.empty((4, 4, m, th, tw, c), dtype=X.dtype)
        M = np.empty((16, m * th * tw, f), dtype=X.dtype)
        T = np.empty((2, 4, m, th, tw, f), dtype=X.dtype)
        tiles = np.empty((m, th, 2, tw, 2, f), dtype=X.dtype)
        for a in range(start, stop, step):
            k = min(step, stop - a)
            Xp[:k, 1 : h + 1, 1 : w + 1] = X[a : a + k]
            _input_transform(Xp[:k], th, tw, R[:, :k], V[:, :, :k])
            np.matmul(V[:, :, :k].reshape(16, k * th * tw, c), U, out=M[:, : k * th * tw])
            _output_transform(M[:, : k * th * tw].reshape(4, 4, k, th, tw, f), T[:, :, :k], tiles[:k])
            out[a : a + k] = tiles[:k].reshape(k, 2 * th, 2 * tw, f)[:, :h, :w]

    parallel.map_batch(images, n, work=n * h * w * 9 * c * f)
    return out


def _gradient_transform(D: np.ndarray, th: int, tw: int, R: np.ndarray, Z: np.ndarray) -> None:
    """``Z (4, 4, m, th, tw, f) = A D A^T`` for every 2x2 tile of ``D (m, 2th, 2tw, f)``: the
    transposed output transform, which carries an output gradient to the 4x4 transform domain;
    ``R (4, m, th, 2tw, f)`` is scratch for the rows' pass."""
    rows = [D[:, k : 2 * th : 2] for k in range(2)]
    np.copyto(R[0], rows[0])
    np.add(rows[0], rows[1], out=R[1])
    np.subtract(rows[0], rows[1], out=R[2])
    np.negative(rows[1], out=R[3])
    for i in range(4):
        cols = [R[i][:, :, k : 2 * tw : 2] for k in range(2)]
        np.copyto(Z[i, 0], cols[0])
        np.add(cols[0], cols[1], out=Z[i, 1])
        np.subtract(cols[0], cols[1], out=Z[i, 2])
        np.negative(cols[1], out=Z[i, 3])


def weight_gradient3x3_same(X: np.ndarray, dZ: np.ndarray) -> np.ndarray:
    """``dW (3, 3, c, f)`` of the 3x3 "same" cross-correlation of ``X (n, h, w, c)`` given the
    output gradient ``dZ (n, h, w, f)``, in ``X``'s dtype: the derivative of
    ``Y = A^T [U * V] A`` with respect to the filters is ``G^T (sum over tiles of V * (A dZ A^T)) G``,
    16 products ``V_k^T (c, tiles) @ Z_k (tiles, f)``, 4 multiplies per output where the direct
    sum takes 9. Odd maps are padded as in :func:`conv3x3_same` (a zero gradient for the cropped
    outputs). Slices of the batch run on :mod:`~neural_networks.functional.parallel` threads; their sums
    are added in slice order."""
    n, h, w, c = X.shape
    f = dZ.shape[3]
    th, tw = (h + 1) // 2, (w + 1) // 2
    per_image = 16 * th * tw * (c + f) * X.dtype.itemsize
    step = max(1, _GRADIENT_CHUNK_BYTES // per_image)

    def images(start: int, stop: int) -> np.ndarray:
        m = min(step, stop - start)
        Xp = np.zeros((m, 2 * th + 2, 2 * tw + 2, c), dtype=X.dtype)  # the border stays zero
        Dp = np.zeros((m, 2 * th, 2 * tw, f), dtype=X.dtype)
        R = np.empty((4, m, th, 2 * tw + 2, c), dtype=X.dtype)
        RZ = np.empty((4, m, th, 2 * tw, f), dtype=X.dtype)
        V = np.empty((4, 4, m, th, tw, c), dtype=X.dtype)
        Z = np.empty((4, 4, m, th, tw, f), dtype=X.dtype)
        total = np.zeros((16, c, f), dtype=X.dtype)
        part = np.empty((16, c, f), dtype=X.dtype)
        for a in range(start, stop, step):
            k = min(step, stop - a)
            Xp[:k, 1 : h + 1, 1 : w + 1] = X[a : a + k]
            Dp[:k, :h, :w] = dZ[a : a + k]
            _input_transform(Xp[:k], th, tw, R[:, :k], V[:, :, :k])
            _gradient_transform(Dp[:k], th, tw, RZ[:, :k], Z[:, :, :k])
            tiles = k * th * tw
            np.matmul(V[:, :, :k].reshape(16, tiles, c).transpose(0, 2, 1), Z[:, :, :k].reshape(16, tiles, f), out=part)
            total += part
        return total

    parts = parallel.map_batch(images, n, work=n * h * w * 9 * c * f)
    dU = parts[0]
    for other in parts[1:]:
        dU += other
    G = _G.astype(X.dtype)
    dU = dU.reshape(4, 4 * c * f)
    rows = (G.T @ dU).reshape(3, 4, c * f)  # G^T over the first transform axis
    return np.matmul(G.T, rows).reshape(3, 3, c, f)  # and over the second
