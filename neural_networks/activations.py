"""Activation functions: ``forward(Z)`` and ``backward(Z, dY)``, applied element-wise
(softmax row-wise over the last axis). Every method works on a whole batch of any shape.
An activation that a layer's kernel may apply itself names that operation in ``fused_kernel``
and computes its gradient from its output with ``backward_from_output(Y, dY)``."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from . import functional as F
from .registry import Registry

__all__ = [
    "Activation",
    "Linear",
    "Sigmoid",
    "TanH",
    "ArcTan",
    "ReLU",
    "SoftMax",
    "GELU",
    "GELUTanh",
    "ACTIVATIONS",
    "initialize_activation",
]


class Activation(ABC):
    """Base class. ``activation(Z)`` is ``activation.forward(Z)``.

    ``backward(Z, dY)`` takes the forward input ``Z`` and ``dY = dL/d(output)`` (same shape as
    ``Z``) and returns ``dL/dZ``.

    Fusing with a layer (the contract between an activation and the layers that apply it):

    * ``fused_kernel`` names an element-wise operation that a layer's own kernel may apply in
      place to the array it computes (``"relu"``: ``Z <- max(Z, 0)``, as
      ``functional.conv2d_forward(..., relu=True)`` does chunk by chunk), or is ``None`` when the
      activation is always applied by calling it;
    * an activation with a ``fused_kernel`` must implement ``backward_from_output(Y, dY)``:
      ``dL/dZ`` from the output ``Y = f(Z)`` alone, since a layer that fused it keeps only ``Y``.
    """

    name: str = ""
    fused_kernel: str | None = None

    def __init__(self) -> None:
        pass

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        return self.forward(Z)

    @abstractmethod
    def forward(self, Z: np.ndarray) -> np.ndarray:
        """``f(Z)``, same shape as ``Z``."""

    @abstractmethod
    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dL/dZ`` given ``dL/df(Z)``, same shape as ``Z``."""

    def backward_from_output(self, Y: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dL/dZ`` given the output ``Y = f(Z)`` and ``dY = dL/dY``, for a layer that kept only
        ``Y`` because it applied :attr:`fused_kernel` itself. Required of every activation with a
        ``fused_kernel``; the others raise ``NotImplementedError``."""
        raise NotImplementedError(
            f"activation {self.name or type(self).__name__!r} cannot compute its gradient from its output "
            "(it has no fused kernel); call backward(Z, dY) with the pre-activation Z"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Activation):
    """Identity: ``f(z) = z``."""

    name = "linear"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return Z

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return dY


class Sigmoid(Activation):
    """Logistic function ``f(z) = 1 / (1 + exp(-z))``, ``f' = f (1 - f)``."""

    name = "sigmoid"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        # exp of a non-positive number only: no overflow for large |z|.
        E = np.exp(-np.abs(Z))
        return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E)).astype(Z.dtype, copy=False)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        S = self.forward(Z)
        return dY * S * (1 - S)


class TanH(Activation):
    """Hyperbolic tangent, ``f' = 1 - tanh(z)^2``."""

    name = "tanh"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return np.tanh(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        T = np.tanh(Z)
        return dY * (1 - T * T)


class ArcTan(Activation):
    """Inverse tangent, ``f' = 1 / (1 + z^2)``."""

    name = "arctan"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return np.arctan(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return dY / (1 + Z * Z)


class ReLU(Activation):
    """Rectified linear unit ``f(z) = max(z, 0)``; its derivative is taken as 0 at ``z = 0``
    (as PyTorch does)."""

    name = "relu"
    fused_kernel = "relu"  # max(Z, 0) in place; the output's positive entries are those of Z

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return np.maximum(Z, 0)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return np.multiply(dY, Z > 0, dtype=dY.dtype)  # 4x faster than np.where here

    def backward_from_output(self, Y: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """``dY * (Y > 0)``: ``Y = max(Z, 0)`` is positive exactly where ``Z`` is."""
        return np.multiply(dY, Y > 0, dtype=dY.dtype)


class SoftMax(Activation):
    """Softmax over the last axis, computed stably (max subtracted first). Its backward pass is
    the batched vector-Jacobian product, no loop over examples."""

    name = "softmax"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.softmax(Z, axis=-1)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.softmax_backward(F.softmax(Z, axis=-1), dY)


# -- the normal distribution function, for GELU ---------------------------------------------
# NumPy has no vectorised erf and the library does not depend on SciPy, so Phi is computed here
# from W. J. Cody's rational Chebyshev approximations of erf and erfc ("Rational Chebyshev
# approximations for the error function", Math. Comp. 23 (1969) 631-637; the coefficients of
# Netlib SPECFUN's CALERF, which SciPy and R use too): about 1e-16 relative error in float64.
#
# Speed: a long chain of whole-array NumPy operations is memory-bound, so GELU works through its
# input in blocks of _BLOCK elements whose temporaries stay in cache, and on each block evaluates
# the two intervals that hold almost every element (|x| <= 4 sqrt(2)) everywhere and picks with
# np.where; the rare tail elements are redone apart. On a (128, 32, 32, 64) float32 array this is
# about 3x faster than whole-array passes with boolean gathers per interval.

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
_BLOCK = 1 << 16  # elements per block (see above): 64K measured best of 16K-256K
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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
    out = np.where(Y <= _ERF_UPTO, erfc_small, erfc_mid)
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
    return np.where(X < 0, lower, 1.0 - lower)


# float32 blocks take a cheaper erfc of the same float32 accuracy: Numerical Recipes' erfcc
# (Press et al., 2nd ed., section 6.2), erfc(y) = t exp(-y^2 - 1.26551223 + t P(t)) with
# t = 1 / (1 + y / 2), fractional error below 1.2e-7 for every y >= 0 (so the lower tail keeps
# its relative accuracy too). One formula everywhere, about half the operations of Cody's two
# intervals: measured 82 against 158 ms on 5.9M float32 values.
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


def _normal_cdf_block_float32(X: np.ndarray) -> np.ndarray:
    """:func:`_normal_cdf_block` for a float32 block, in float32, from Numerical Recipes' erfcc."""
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
    return np.where(X < 0, p, np.float32(1.0) - p)


def _cdf(X: np.ndarray) -> np.ndarray:
    return _normal_cdf_block_float32(X) if X.dtype == np.float32 else _normal_cdf_block(X)


def _blockwise(kernel, Z: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """``kernel(z, *o)`` over aligned flat blocks of ``Z`` and ``others`` (each of ``Z``'s shape),
    into one array of that shape and the kernel's result dtype (``Z``'s for a floating ``Z``)."""
    Z = np.ascontiguousarray(Z)
    if not np.issubdtype(Z.dtype, np.floating):
        Z = Z.astype(np.float64)
    for other in others:
        if other.shape != Z.shape:
            raise ValueError(f"expected an upstream gradient of the input's shape {Z.shape}, got {other.shape}")
    flat = [Z.reshape(-1), *(np.ascontiguousarray(other).reshape(-1) for other in others)]
    out = np.empty(Z.shape, dtype=np.result_type(*flat))
    out_flat = out.reshape(-1)
    for start in range(0, out_flat.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        out_flat[block] = kernel(*(a[block] for a in flat))
    return out


def _gelu_block(z: np.ndarray) -> np.ndarray:
    return z * _cdf(z)


def _gelu_slope_block(z: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # Phi(z) + z phi(z); the density from |z| capped at 40, where it is 0 in float64 already, so
    # that z*z cannot overflow for huge float32 inputs
    capped = np.minimum(np.abs(z), 40.0)
    density = np.exp(-0.5 * (capped * capped)) * _INV_SQRT_2PI
    return dy * (_cdf(z) + z * density)


class GELU(Activation):
    """Gaussian error linear unit (Hendrycks & Gimpel), the exact form of
    ``torch.nn.functional.gelu(z)`` (``approximate="none"``):
    ``f(z) = z Phi(z) = z (1 + erf(z / sqrt(2))) / 2`` and ``f'(z) = Phi(z) + z phi(z)``, with
    ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)`` the standard normal density.

    ``Z`` and ``dY`` of any (the same) shape; the output and the gradient have that shape and
    ``Z``'s dtype (float32 is computed in float32, to about its precision). ``erf`` is Cody's
    rational approximation, about 1e-16 relative in float64 (float32: Numerical Recipes' erfcc,
    1.2e-7 relative, twice as fast); for ``z < 0`` ``Phi`` comes from
    ``erfc``, so ``f`` keeps its relative accuracy deep in the lower tail (where ``1 + erf``
    would cancel)."""

    name = "gelu"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return _blockwise(_gelu_block, Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return _blockwise(_gelu_slope_block, Z, dY)


class GELUTanh(Activation):
    """GELU's tanh approximation, as ``torch.nn.functional.gelu(z, approximate="tanh")``:
    ``f(z) = z (1 + tanh(u)) / 2`` with ``u = sqrt(2 / pi) (z + 0.044715 z^3)``, so
    ``f'(z) = (1 + tanh(u)) / 2 + z (1 - tanh(u)^2) sqrt(2 / pi) (1 + 3 * 0.044715 z^2) / 2``.

    Computed as ``f = z s`` and ``f' = s + 2 z s (1 - s) sqrt(2 / pi) (1 + 3 * 0.044715 z^2)`` with
    ``s = (1 + tanh(u)) / 2 = sigmoid(2u)`` evaluated stably: ``1 + tanh(u)`` and
    ``1 - tanh(u)^2`` cancel for negative ``z`` (an absolute error of about 1e-6 at ``z = -5`` in
    float32), ``sigmoid(2u)`` and ``s (1 - s)`` do not.

    ``Z`` and ``dY`` of any (the same) shape; output and gradient have that shape and ``Z``'s
    dtype. A name of its own rather than a constructor option of :class:`GELU`: a layer names its
    activation by a string (and saves it so), and one name must rebuild one function."""

    name = "gelu_tanh"
    _K = math.sqrt(2.0 / math.pi)
    _C = 0.044715
    # Beyond |z| = 1e4, s is 0 or 1 exactly (exp(-2|u|) = 0) and s (1 - s) = 0: z is capped there
    # inside u and the slope's polynomial, which is then exact, so that z^3 cannot overflow for
    # huge float32 inputs.
    _CAP = 1e4

    def _sigmoid_2u(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(s, s (1 - s))`` for ``s = sigmoid(2u(z))``, from ``E = exp(-2|u|)`` only: ``s`` is
        ``1 / (1 + E)`` or ``E / (1 + E)`` and ``s (1 - s) = E / (1 + E)^2`` (no overflow, and no
        ``1 - s`` cancellation)."""
        u = self._K * z * (1.0 + self._C * (z * z))
        E = np.exp(-2.0 * np.abs(u))
        inverse = 1.0 / (1.0 + E)
        return np.where(u >= 0, inverse, E * inverse), E * inverse * inverse

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return Z * self._sigmoid_2u(np.clip(Z, -self._CAP, self._CAP))[0]

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        z = np.clip(Z, -self._CAP, self._CAP)
        S, S_one_minus_S = self._sigmoid_2u(z)
        slope = S + 2.0 * z * S_one_minus_S * self._K * (1.0 + 3.0 * self._C * (z * z))
        return dY * slope


#: Every activation by name (its ``name`` attribute, which a fused loss also reads); adding one is
#: its class above and one ``ACTIVATIONS.add`` line.
ACTIVATIONS = Registry("activation", sort_names=True)
ACTIVATIONS.add("linear", Linear)
ACTIVATIONS.add("sigmoid", Sigmoid)
ACTIVATIONS.add("tanh", TanH)
ACTIVATIONS.add("arctan", ArcTan)
ACTIVATIONS.add("relu", ReLU)
ACTIVATIONS.add("softmax", SoftMax)
ACTIVATIONS.add("gelu", GELU)
ACTIVATIONS.add("gelu_tanh", GELUTanh)


def initialize_activation(name: str | Activation | None) -> Activation:
    """Make an activation from its name: one of ``ACTIVATIONS`` (case-insensitive); an
    :class:`Activation` is returned as it is and ``None`` means :class:`Linear`."""
    if isinstance(name, Activation):
        return name
    if name is None:
        return Linear()
    return ACTIVATIONS.create(name)
