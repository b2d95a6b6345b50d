"""The fast exact GELU: the standard normal distribution function ``Phi`` and the GELU kernels
built on it, checked against :func:`neural_networks.functional.reference.gelu`.

NumPy has no vectorised erf and the library does not depend on SciPy, so ``Phi`` is computed here
from W. J. Cody's rational Chebyshev approximations of erf and erfc ("Rational Chebyshev
approximations for the error function", Math. Comp. 23 (1969) 631-637; the coefficients of
Netlib SPECFUN's CALERF, which SciPy and R use too): about 1e-16 relative error in float64.
float32 reads ``Phi`` and GELU's slope from tables (linear interpolation, 4e-7 relative at most),
and Numerical Recipes' erfcc beyond them.

Speed: a long chain of whole-array NumPy operations is memory-bound, so the kernels work
through their input in blocks of ``_BLOCK`` elements whose temporaries stay in cache, shared
among the threads of :mod:`.parallel`. On each block the formulas that hold
almost every element are evaluated everywhere and combined without branches (:func:`_select`);
the rare tail elements are redone apart.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from . import parallel

__all__ = ["GeluWithSlopeBlocks", "gelu", "gelu_backward", "gelu_with_slope"]

_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03)
_ERF_A_TOP = 1.85777706184603153e-1
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
)
_ERFC_C_TOP = 2.15311535474403846e-8
_ERFC_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_ERFC_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
)
_ERFC_P_TOP = 1.63153871373020978e-2
_ERFC_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_ERF_UPTO = 0.46875  # Cody's break points: erf by A/B below, erfc by C/D up to 4, by P/Q beyond
_ERFC_UPTO = 4.0
_ERFC_ZERO = 27.3  # erfc(y) < 5e-324 (the least float64) beyond: 0, and y*y stays finite
# Elements per block (see above): small enough for a block's temporaries to stay in cache, large
# enough to amortise the fixed cost of each numpy call (benchmarks/RESULTS.md, "Kernel figures
# moved from code comments").
_BLOCK = 1 << 16
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _select(take_first: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``np.where(take_first, first, second)`` for finite (or NaN) ``first`` and ``second`` of one
    floating dtype, by arithmetic: ``m first + (1 - m) second`` with ``m`` 0 or 1 is exact, since
    one product is the chosen value and the other 0. ``np.where`` branches on every element and
    mispredicts half the time when the mask is random (the sign of a pre-activation), which makes
    it several times slower than this arithmetic."""
    m = take_first.astype(first.dtype)
    out = first * m
    m -= 1
    m *= second
    out -= m
    return out


def _ratio(t: np.ndarray, top: float, num, den) -> np.ndarray:
    """Cody's ``(top t^n + num[0] t^(n-1) + ... + num[n-1]) / (t^n + den[0] t^(n-1) + ... + den[n-1])``
    (``n = len(num) = len(den)``) by Horner's rule, element-wise in ``t``'s dtype."""
    xnum = top * t
    xden = t.copy()
    for a, b in zip(num[:-1], den[:-1]):
        xnum += a
        xnum *= t
        xden += b
        xden *= t
    xnum += num[-1]
    xden += den[-1]
    return np.divide(xnum, xden, out=xnum)


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """``exp(-y^2)`` without the rounding error of ``y * y`` (relative ``y^2 eps``, 1e-13 at y = 27):
    Cody's split ``y^2 = s^2 + (y - s)(y + s)`` with ``s = trunc(16 y) / 16``, whose square is exact."""
    s = np.trunc(16.0 * y) / 16.0
    return np.exp(-(s * s)) * np.exp(-((y - s) * (y + s)))


def _erfc_nonnegative(Y: np.ndarray) -> np.ndarray:
    """``erfc(y) = 1 - erf(y)`` for a block ``Y >= 0`` (floating dtype kept), with full relative
    accuracy in the tail (no ``1 - erf`` cancellation). NaN stays NaN."""
    small = np.minimum(Y, _ERF_UPTO)  # each interval's formula sees only its own range: no overflow
    erfc_small = 1.0 - small * _ratio(small * small, _ERF_A_TOP, _ERF_A, _ERF_B)
    mid = np.minimum(Y, _ERFC_UPTO)
    # exp(-y^2) from the rounded y*y: relative error < 2e-15 for y <= 4, so no split here
    erfc_mid = np.exp(-(mid * mid)) * _ratio(mid, _ERFC_C_TOP, _ERFC_C, _ERFC_D)
    out = _select(Y <= _ERF_UPTO, erfc_small, erfc_mid)
    tail = Y > _ERFC_UPTO
    if tail.any():
        y = np.minimum(Y[tail], _ERFC_ZERO)
        z = 1.0 / (y * y)
        values = _exp_minus_square(y) * (_INV_SQRT_PI - z * _ratio(z, _ERFC_P_TOP, _ERFC_P, _ERFC_Q)) / y
        values[y >= _ERFC_ZERO] = 0.0
        out[tail] = values
    return out


def _normal_cdf_block(X: np.ndarray) -> np.ndarray:
    """``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` on a block, ``X``'s dtype; ``erfc(|x| / sqrt(2)) / 2``
    for ``x < 0``, so the lower tail keeps its relative accuracy (about 1e-15 in float64)."""
    lower = 0.5 * _erfc_nonnegative(np.abs(X) * _SQRT1_2)  # Phi(-|x|)
    return _select(X < 0, lower, 1.0 - lower)


# float32 blocks outside the tables below take a cheaper erfc of float32 accuracy: Numerical
# Recipes' erfcc (Press et al., 2nd ed., section 6.2), erfc(y) = t exp(-y^2 - 1.26551223 + t P(t))
# with t = 1 / (1 + y / 2), fractional error below 1.2e-7 for every y >= 0 (so the lower tail
# keeps its relative accuracy too).
_ERFCC = (
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)
_ERFCC_CAP = 14.0  # erfc(14) ~ 1e-87, 0 in float32: capping keeps y*y finite for huge inputs


def _normal_cdf_erfcc(X: np.ndarray) -> np.ndarray:
    """:func:`_normal_cdf_block` for float32 values, in float32, from Numerical Recipes' erfcc."""
    y = np.abs(X) * np.float32(_SQRT1_2)
    np.minimum(y, np.float32(_ERFCC_CAP), out=y)
    t = y * np.float32(0.5)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    p = t * np.float32(_ERFCC[-1])
    for c in _ERFCC[-2::-1]:
        p += np.float32(c)
        p *= t
    p -= np.float32(1.26551223)
    y *= y
    p -= y
    np.exp(p, out=p)
    p *= t
    p *= np.float32(0.5)  # Phi(-|x|) = erfc(|x| / sqrt(2)) / 2
    return _select(X < 0, p, np.float32(1.0) - p)


def _z_density(z: np.ndarray) -> np.ndarray:
    """``z phi(z)`` with ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``, in ``z``'s dtype, from ``z``
    clipped to [-40, 40] (where ``phi`` is 0 in float64 already): ``z * z`` cannot overflow for
    huge float32 inputs, and infinities give 0 instead of ``inf * 0``."""
    capped = np.clip(z, -40.0, 40.0)
    return capped * (np.exp(-0.5 * (capped * capped)) * _INV_SQRT_2PI)


# -- float32: tables ---------------------------------------------------------------------
# Phi and GELU's slope Phi(z) + z phi(z) are smooth, so in float32 they are read from tables with
# linear interpolation: nodes k / _NODES_PER_UNIT for |z| < _TABLE_RANGE, each node holding its
# value and the difference to the next as a pair of float32 (one 8-byte gather per element; the
# two tables take 384 KB each, in the L2 cache). With z * 2^12 exact, the node floor(z * 2^12) and
# the fraction z * 2^12 - node are exact too. The interpolation error h^2 / 8 |f''| (h = 2^-12) is
# at most 2e-9 absolute and 3e-7 relative where the functions are small (Phi near z = -6), below
# float32's own rounding; values outside the tables (and NaN, inf) take the erfcc formulas. About
# 12 passes over a block where the erfcc formulas take 30-45, and no branch per element.
_NODES_PER_UNIT = 4096
_TABLE_RANGE = 6  # |z| below this is tabulated: all but 2e-9 of standard normal values
_LAST_TABULATED = np.nextafter(np.float32(_TABLE_RANGE), np.float32(0))  # the largest float32 below it


def _tabulate(f) -> np.ndarray:
    """``f`` (float64 values -> float64) at the nodes, as float64 words each packing the float32
    pair ``(f(node), f(next node) - f(node))``, indexed by ``node * _NODES_PER_UNIT + half``."""
    half = _TABLE_RANGE * _NODES_PER_UNIT
    nodes = np.arange(-half, half + 1, dtype=np.float64) / _NODES_PER_UNIT
    values = f(nodes)
    pairs = np.empty((2 * half, 2), dtype=np.float32)
    pairs[:, 0] = values[:-1]
    pairs[:, 1] = np.diff(values)
    return pairs.view(np.float64).reshape(-1)


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(Phi, GELU's slope) tabulated by :func:`_tabulate`, from the float64 formulas (built once)."""
    return _tabulate(_normal_cdf_block), _tabulate(lambda z: _normal_cdf_block(z) + _z_density(z))


class _Scratch:
    """Working arrays of one thread for float32 blocks of up to ``size`` elements, reused from
    block to block (a fresh temporary per operation would cost an allocation of block size each
    time, a large share of a block's work), and the values beyond the tables that its blocks met,
    computed by the formulas in one go by :meth:`finish`."""

    def __init__(self, size: int):
        self.fraction = np.empty(size, dtype=np.float32)
        self.node = np.empty(size, dtype=np.float32)
        self.index = np.empty(size, dtype=np.intp)
        self.pairs = np.empty(size, dtype=np.float64)
        self.pending: list[tuple] = []  # (exact, out, positions, values, factor) per block and function

    def nodes(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The table index of each float32 value of ``z`` (all with ``-_TABLE_RANGE <= z <
        _TABLE_RANGE``) and its fraction of the way to the next node, in [0, 1): views of this
        scratch."""
        n = z.size
        t, node, index = self.fraction[:n], self.node[:n], self.index[:n]
        np.multiply(z, np.float32(_NODES_PER_UNIT), out=t)
        np.floor(t, out=node)
        t -= node
        node += np.float32(_TABLE_RANGE * _NODES_PER_UNIT)  # the index, exact (an integer below 2^24)
        np.copyto(index, node, casting="unsafe")
        return index, t

    def lerp(self, table: np.ndarray, index: np.ndarray, fraction: np.ndarray, out: np.ndarray) -> None:
        """``out[...] = value + difference * fraction`` from ``table``'s pairs at ``index``."""
        pairs = self.pairs[: index.size]
        # every index is in range by construction (nodes of |z| < _TABLE_RANGE): "wrap" skips
        # the bounds check of the default mode, a large part of the gather's cost
        np.take(table, index, out=pairs, mode="wrap")
        halves = pairs.view(np.float32).reshape(-1, 2)
        np.multiply(halves[:, 1], fraction, out=out)
        out += halves[:, 0]

    def finish(self) -> None:
        """``out[positions] = exact(values) * factor`` for every pending entry, each ``exact``
        called once on all of its values: the formulas take 30-45 numpy calls, whose fixed cost,
        paid per block, would dominate a block with only a few values beyond the tables
        (batch-normalised or whitened activations put a few beyond 6 in most blocks)."""
        for exact in {entry[0]: None for entry in self.pending}:
            entries = [entry for entry in self.pending if entry[0] is exact]
            results = exact(np.concatenate([values for _, _, _, values, _ in entries]))
            start = 0
            for _, out, positions, values, factor in entries:
                part = results[start : start + values.size]
                start += values.size
                out[positions] = part if factor is None else part * factor
        self.pending.clear()


def _tabulated(z: np.ndarray, scratch: _Scratch, *wanted: tuple) -> None:
    """For each ``(table, exact, out, factor)`` of ``wanted``: ``out[...] = f(z) * factor`` with
    ``f`` the ``table``'s function at every float32 value of ``z``, interpolated where tabulated
    and ``exact(values)`` (float32 formulas) for the rest, which are rare; ``factor`` is an array
    of ``z``'s shape or ``None`` (for 1). The rest are written by ``scratch.finish()``, which the
    caller runs after its last block. The tables share the nodes."""
    if z.min() > -_TABLE_RANGE and z.max() < _TABLE_RANGE:  # NaN fails both tests
        index, fraction = scratch.nodes(z)
    else:
        # Values that clipping moved (NaN too: NaN != NaN) are queued for the formulas and
        # interpolated at 0 meanwhile: one pass over the block, not boolean masks.
        clipped = scratch.node[: z.size]
        np.clip(z, -_TABLE_RANGE, _LAST_TABULATED, out=clipped)
        positions = np.flatnonzero(z != clipped)
        values = z[positions]
        for _, exact, out, factor in wanted:
            scratch.pending.append((exact, out, positions, values, None if factor is None else factor[positions]))
        clipped[positions] = 0  # NaN has no node (its index would make the gather loop for ever)
        index, fraction = scratch.nodes(clipped)
    for table, _, out, factor in wanted:
        scratch.lerp(table, index, fraction, out)
        if factor is not None:
            out *= factor


def _gelu_slope_erfcc(z: np.ndarray) -> np.ndarray:
    return _normal_cdf_erfcc(z) + _z_density(z)


def _gelu_block(scratch: _Scratch, out: np.ndarray, z: np.ndarray) -> None:
    if z.dtype == np.float32:
        _tabulated(z, scratch, (_tables()[0], _normal_cdf_erfcc, out, z))
    else:
        np.multiply(z, _normal_cdf_block(z), out=out)


def _gelu_slope_block(scratch: _Scratch, out: np.ndarray, z: np.ndarray, dy: np.ndarray) -> None:
    if z.dtype == np.float32:
        _tabulated(z, scratch, (_tables()[1], _gelu_slope_erfcc, out, dy))
    else:
        np.multiply(dy, _normal_cdf_block(z) + _z_density(z), out=out)


def _gelu_and_slope_block(scratch: _Scratch, out: np.ndarray, slope: np.ndarray, z: np.ndarray) -> None:
    if z.dtype == np.float32:
        phi_table, slope_table = _tables()
        _tabulated(z, scratch, (phi_table, _normal_cdf_erfcc, out, z), (slope_table, _gelu_slope_erfcc, slope, None))
    else:
        phi = _normal_cdf_block(z)
        np.multiply(z, phi, out=out)
        np.add(phi, _z_density(z), out=slope)


class GeluWithSlopeBlocks:
    """:func:`gelu_with_slope` for an array that another kernel makes a block at a time, applied
    while each block is in cache (batch norm's normalised rows, whose pre-activation is then
    never stored whole). Made before the threads start; each thread writes its blocks in turn::

        with blocks.thread(size) as write:   # size: the most elements of a block
            write(z, y, s)                   # y[...] = gelu(z), s[...] = its slope

    ``z``, ``y``, ``s``: flat contiguous arrays of ``dtype`` of one size; ``z`` may be scratch
    that the next block overwrites. The float32 values beyond the tables are written when the
    thread's context ends. Each element equals :func:`gelu_with_slope`'s, bit for bit."""

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype == np.float32:
            _tables()  # built here, once, not by two threads at a time

    @contextlib.contextmanager
    def thread(self, size: int):
        """A context manager for one thread: yields ``write(z, y, s)`` for blocks of at most
        ``size`` elements, and finishes the thread's float32 values beyond the tables on exit."""
        scratch = _Scratch(size) if self.dtype == np.float32 else None

        def write(z: np.ndarray, y: np.ndarray, s: np.ndarray) -> None:
            _gelu_and_slope_block(scratch, y, s, z)

        yield write
        if scratch is not None:
            scratch.finish()


# Below this many elements GELU runs in the calling thread: for fewer than about two blocks,
# handing a slice to another thread and back costs more than it saves.
_MIN_PARALLEL = 2 * _BLOCK


def _blockwise(kernel, Z: np.ndarray, *others: np.ndarray, outputs: int = 1):
    """``kernel(scratch, *outs, z, *o)`` over aligned flat blocks of ``Z`` and ``others`` (each of ``Z``'s
    shape), each call filling its blocks ``outs`` of ``outputs`` arrays of that shape and of the
    inputs' result dtype (``Z``'s for a floating ``Z``); returns the array, or the tuple of them.
    The blocks are shared among :func:`~neural_networks.functional.parallel.map_batch`'s threads: each
    element's value depends on nothing else, so the result is the same for any thread count."""
    Z = np.ascontiguousarray(Z)
    if not np.issubdtype(Z.dtype, np.floating):
        Z = Z.astype(np.float64)
    for other in others:
        if other.shape != Z.shape:
            raise ValueError(f"expected an upstream gradient of the input's shape {Z.shape}, got {other.shape}")
    flat = [Z.reshape(-1), *(np.ascontiguousarray(other).reshape(-1) for other in others)]
    outs = [np.empty(Z.shape, dtype=np.result_type(*flat)) for _ in range(outputs)]
    outs_flat = [out.reshape(-1) for out in outs]
    if Z.dtype == np.float32:
        _tables()  # built here, once, not by two threads at a time

    def blocks(first: int, stop: int) -> None:
        scratch = _Scratch(min(_BLOCK, Z.size)) if Z.dtype == np.float32 else None
        for start in range(first * _BLOCK, min(stop * _BLOCK, Z.size), _BLOCK):
            block = slice(start, start + _BLOCK)
            kernel(scratch, *(out[block] for out in outs_flat), *(a[block] for a in flat))
        if scratch is not None:
            scratch.finish()

    n_blocks = -(-Z.size // _BLOCK)
    if Z.size < _MIN_PARALLEL:
        blocks(0, n_blocks)
    else:
        parallel.map_batch(blocks, n_blocks)
    return outs[0] if outputs == 1 else tuple(outs)


def gelu(Z: np.ndarray) -> np.ndarray:
    """``Z Phi(Z)``, element-wise, in ``Z``'s floating dtype (float64 for integers)."""
    return _blockwise(_gelu_block, Z)


def gelu_backward(Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
    """``dY (Phi(Z) + Z phi(Z))``: the gradient of :func:`gelu` given ``dY`` of ``Z``'s shape."""
    return _blockwise(_gelu_slope_block, Z, dY)


def gelu_with_slope(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gelu(Z), Phi(Z) + Z phi(Z))``: the output and the derivative in one pass (float32: the
    two tables share their nodes), for a layer that keeps the derivative for its backward pass."""
    return _blockwise(_gelu_and_slope_block, Z, outputs=2)
