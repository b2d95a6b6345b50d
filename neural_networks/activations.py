"""Activation functions: ``forward(Z)`` and ``backward(Z, dY)``, applied element-wise
(softmax row-wise over the last axis). Every method works on a whole batch of any shape.
An activation that a layer's kernel may apply itself names that operation in ``fused_kernel``
and computes its gradient from its output with ``backward_from_output(Y, dY)``."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from . import functional as F
from . import normal
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
      ``dL/dZ`` from the output ``Y = f(Z)`` alone, since a layer that fused it keeps only ``Y``;
    * an activation with ``slope_with_forward`` implements ``forward_with_slope(Z)``, returning
      ``(f(Z), f'(Z))`` for little more than ``f(Z)`` costs: a training layer keeps ``f'(Z)``
      instead of ``Z`` (an array of the same size) and its backward pass is ``dY * f'(Z)``;
    * such an activation may also offer ``slope_blocks(dtype)``: an object whose ``thread(size)``
      context yields ``write(z, y, s)``, which a layer's kernel calls on each block of ``Z`` it
      makes (``y = f(z)``, ``s = f'(z)``) instead of storing ``Z`` (``None``: not offered; see
      :class:`neural_networks.normal.GeluWithSlopeBlocks`).
    """

    name: str = ""
    #: What the outputs are, for the losses that need a kind (``Loss.expects``): ``None`` any real
    #: numbers, ``"probabilities"`` rows that are distributions over the classes.
    produces: str | None = None
    fused_kernel: str | None = None
    slope_with_forward: bool = False

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

    def forward_with_slope(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(Z), f'(Z))``, both of ``Z``'s shape; offered where ``slope_with_forward`` is set."""
        raise NotImplementedError(f"activation {self.name or type(self).__name__!r} has no forward_with_slope")

    def slope_blocks(self, dtype):
        """A block-by-block ``forward_with_slope`` for a layer's kernel (see the class docstring),
        or ``None`` where the activation offers none."""
        return None

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
    produces = "probabilities"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.softmax(Z, axis=-1)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.softmax_backward(F.softmax(Z, axis=-1), dY)


class GELU(Activation):
    """Gaussian error linear unit (Hendrycks & Gimpel), the exact form of
    ``torch.nn.functional.gelu(z)`` (``approximate="none"``):
    ``f(z) = z Phi(z) = z (1 + erf(z / sqrt(2))) / 2`` and ``f'(z) = Phi(z) + z phi(z)``, with
    ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)`` the standard normal density.

    ``Z`` and ``dY`` of any (the same) shape; the output and the gradient have that shape and
    ``Z``'s dtype. float64: ``erf`` is Cody's rational approximation, about 1e-16 relative; for
    ``z < 0`` ``Phi`` comes from ``erfc``, so ``f`` keeps its relative accuracy deep in the lower
    tail (where ``1 + erf`` would cancel). float32 is computed in float32: ``Phi`` and ``f'`` are
    interpolated in tables for ``|z| < 6`` (4e-7 relative at most) and come from Numerical
    Recipes' erfcc beyond (1.2e-7 relative). The kernels are in :mod:`neural_networks.normal`."""

    name = "gelu"
    slope_with_forward = True  # float32: the slope's table shares the forward pass's nodes

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return normal.gelu(Z)

    def forward_with_slope(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return normal.gelu_with_slope(Z)

    def slope_blocks(self, dtype) -> normal.GeluWithSlopeBlocks:
        return normal.GeluWithSlopeBlocks(dtype)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return normal.gelu_backward(Z, dY)


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
