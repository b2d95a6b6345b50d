"""Activation functions: ``forward(Z)`` and ``backward(Z, dY)``, applied element-wise
(softmax row-wise over the last axis). Every method works on a whole batch of any shape; the
formulas are those of :mod:`neural_networks.functional.reference` (the fast kernels compute
exact GELU from tables). Which of them a layer's fast kernel may fuse is decided by
:func:`neural_networks.functional.fusion`, not here: a new activation needs only its two methods."""

from __future__ import annotations

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
    ``Z``) and returns ``dL/dZ``. ``name`` is the registry name a layer saves; ``produces`` says
    what the outputs are, for the losses that need a kind (``Loss.expects``): ``None`` any real
    numbers, ``"probabilities"`` rows that are distributions over the classes.
    """

    name: str = ""
    #: What the outputs are (``"probabilities"``: rows that are distributions), ``None`` for any reals.
    produces: str | None = None

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
        return F.sigmoid(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(Z, dY)


class TanH(Activation):
    """Hyperbolic tangent, ``f' = 1 - tanh(z)^2``."""

    name = "tanh"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.tanh(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.tanh_backward(Z, dY)


class ArcTan(Activation):
    """Inverse tangent, ``f' = 1 / (1 + z^2)``."""

    name = "arctan"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.arctan(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.arctan_backward(Z, dY)


class ReLU(Activation):
    """Rectified linear unit ``f(z) = max(z, 0)``; its derivative is taken as 0 at ``z = 0``
    (as PyTorch does)."""

    name = "relu"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.relu(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.relu_backward(Z, dY)


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
    ``Z``'s dtype. The fast kernels (:mod:`neural_networks.functional.gelu_tables`) compute
    ``Phi`` by Cody's rational approximation of erf in float64 (about 1e-16 relative, the lower
    tail from erfc) and interpolate tables in float32 (4e-7 relative at most); the reference
    takes Python's ``math.erfc``."""

    name = "gelu"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.gelu(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.gelu_backward(Z, dY)


class GELUTanh(Activation):
    """GELU's tanh approximation, as ``torch.nn.functional.gelu(z, approximate="tanh")``:
    ``f(z) = z (1 + tanh(u)) / 2`` with ``u = sqrt(2 / pi) (z + 0.044715 z^3)``, so
    ``f'(z) = (1 + tanh(u)) / 2 + z (1 - tanh(u)^2) sqrt(2 / pi) (1 + 3 * 0.044715 z^2) / 2``,
    computed stably as ``sigmoid(2u)`` (:func:`neural_networks.functional.reference.gelu_tanh`).

    ``Z`` and ``dY`` of any (the same) shape; output and gradient have that shape and ``Z``'s
    dtype. A name of its own rather than a constructor option of :class:`GELU`: a layer names its
    activation by a string (and saves it so), and one name must rebuild one function."""

    name = "gelu_tanh"
    # The approximation's constants (the ONNX exporter writes the same formula):
    # u = _K z (1 + _C z^2), with z capped at +-_CAP inside u.
    _K, _C, _CAP = F.reference.GELU_TANH_K, F.reference.GELU_TANH_C, F.reference.GELU_TANH_CAP

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return F.gelu_tanh(Z)

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return F.gelu_tanh_backward(Z, dY)


#: Every activation by name (its ``name`` attribute, which a layer saves); adding one is
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
    :class:`Activation` is returned as it is and ``None`` means :class:`Linear`. ``ValueError``
    names an unknown activation and the valid ones.

    Example:
        >>> import numpy as np
        >>> from neural_networks import initialize_activation
        >>> relu = initialize_activation("ReLU")
        >>> relu(np.array([-1.0, 2.0])), relu.backward(np.array([-1.0, 2.0]), np.ones(2))
        (array([0., 2.]), array([0., 1.]))
    """
    if isinstance(name, Activation):
        return name
    if name is None:
        return Linear()
    return ACTIVATIONS.create(name)
