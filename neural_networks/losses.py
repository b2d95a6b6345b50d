"""Losses (costs over a mini-batch of ``m`` examples).

``forward(Y, Y_hat) -> float`` and ``backward(Y, Y_hat) -> dL/dY_hat`` with ``Y`` the targets
(one-hot labels for classification) and ``Y_hat`` the predictions, both ``(m, k)``.

A loss declares what it expects of the network's outputs (:attr:`Loss.expects`: ``None`` for any
real numbers, ``"probabilities"`` for rows that are distributions over the classes) and an
activation what it makes (:func:`produces`); :func:`check_output_layer` refuses a last layer that
cannot make what the loss expects (cross-entropy after relu), for models and configs alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from . import functional as F
from .registry import Registry
from .validation import number

__all__ = [
    "Loss",
    "CrossEntropy",
    "L2",
    "LOSSES",
    "initialize_loss",
    "check_targets",
    "produces",
    "activations_making",
    "output_fits",
    "check_output_layer",
]


def check_targets(name: str, Y: np.ndarray, Y_hat: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``Y`` and ``Y_hat`` have the same shape and finite values."""
    Y_shape, Y_hat_shape = np.shape(Y), np.shape(Y_hat)
    if Y_shape != Y_hat_shape:
        raise ValueError(
            f"{name}: targets Y have shape {Y_shape} but predictions Y_hat have shape {Y_hat_shape}; "
            "they must match (one-hot labels with one column per network output)"
        )
    if len(Y_shape) == 0 or Y_shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {Y_shape}")
    for what, arr in (("predictions Y_hat", Y_hat), ("targets Y", Y)):
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name}: {what} contain {bad} non-finite value(s) (NaN or inf)")


class Loss(ABC):
    """Base class. ``loss(Y, Y_hat)`` is ``loss.forward(Y, Y_hat)``.

    ``expects`` is what the loss needs the network's outputs to be, as activations declare making
    it (see :func:`produces`): ``None`` takes any real numbers."""

    name: str = ""
    #: What the network's outputs must be for this loss (``"probabilities"``), ``None`` for any reals.
    expects: str | None = None

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name

    def __call__(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self.forward(Y, Y_hat)

    @abstractmethod
    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        """Mean loss over the batch, a Python float, for targets ``Y`` and predictions ``Y_hat`` of
        one shape ``(m, k)``; ``ValueError`` (:func:`check_targets`) for different shapes, an empty
        batch or non-finite values."""

    @abstractmethod
    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        """``dL/dY_hat``, shape ``(m, k)`` (the mean's ``1/m`` included); ``ValueError`` as :meth:`forward`."""

    def preactivation_gradient(self, activation, Z: np.ndarray, Y: np.ndarray):
        """``(loss, dL/dZ)`` computed directly from the output layer's pre-activation ``Z`` when
        this loss knows a fused, numerically better form for ``activation`` (the model's fused
        path), else ``None`` (the model then chains ``backward`` through the activation)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class CrossEntropy(Loss):
    """Multi-class cross-entropy ``J = -sum(Y * ln(Y_hat)) / m``.

    ``Y_hat`` are probabilities (a softmax output). Probabilities are clamped below at the
    smallest positive normal number of their dtype so that ``ln(0)`` cannot produce ``inf``.

    ``label_smoothing`` (0 by default, as in the spec) mixes the targets with the uniform
    distribution: ``Y <- (1 - eps) * Y + eps / k``, as ``torch.nn.CrossEntropyLoss`` does
    (``ValueError`` outside [0, 1)). ``backward`` is ``-Y / (m * Y_hat)``; a model ending in the
    library's softmax skips it and takes the stable ``(Y_hat - Y) / m`` at the logits instead
    (:meth:`preactivation_gradient`).

    Example:
        >>> import numpy as np
        >>> from neural_networks import CrossEntropy
        >>> Y = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> Y_hat = np.array([[0.8, 0.2], [0.4, 0.6]])
        >>> round(CrossEntropy().forward(Y, Y_hat), 4)  # -(ln 0.8 + ln 0.6) / 2
        0.367
        >>> CrossEntropy().backward(Y, Y_hat)[0]  # -Y / (m * Y_hat)
        array([-0.625, -0.   ])
    """

    name = "cross_entropy"
    # ln(Y_hat) of anything but a distribution is meaningless: after relu or linear the clamp
    # hides negative outputs, after sigmoid every output is pushed to 1 (non-targets get no gradient).
    expects = "probabilities"

    def __init__(self, name: str | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__(name)
        if not 0.0 <= number(label_smoothing, "label_smoothing") < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def targets(self, Y: np.ndarray) -> np.ndarray:
        """The targets the loss actually fits (``Y`` after label smoothing)."""
        if self.label_smoothing == 0.0:
            return Y
        k = Y.shape[-1]
        return Y * (1.0 - self.label_smoothing) + self.label_smoothing / k

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        check_targets(self.name, Y, Y_hat)
        tiny = np.finfo(np.result_type(Y_hat, np.float32)).tiny
        return float(-np.sum(self.targets(Y) * np.log(np.maximum(Y_hat, tiny))) / Y.shape[0])

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        check_targets(self.name, Y, Y_hat)
        tiny = np.finfo(np.result_type(Y_hat, np.float32)).tiny
        return -self.targets(Y) / (np.maximum(Y_hat, tiny) * Y.shape[0])

    def preactivation_gradient(self, activation, Z: np.ndarray, Y: np.ndarray):
        """After the library's softmax (:func:`neural_networks.functional.fusion` decides), the
        loss from log-sum-exp and the exact, stable gradient at the logits ``(softmax(Z) - Y) / m``,
        instead of chaining the two ill-conditioned backward passes."""
        if F.fusion(activation) != "softmax":
            return None
        Y = Y.astype(Z.dtype, copy=False)
        check_targets(self.name, Y, Z)
        loss, dZ, _ = F.softmax_cross_entropy(Z, self.targets(Y))
        return loss, dZ


class L2(Loss):
    """Squared error ``J = sum((Y - Y_hat)^2) / (2 m)``, gradient ``(Y_hat - Y) / m``, for targets
    and predictions ``(m, k)`` (one-hot labels, or regression targets after a linear output).

    Example:
        >>> import numpy as np
        >>> from neural_networks import L2
        >>> round(L2().forward(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])), 4)  # (0.25 + 0.25) / 2
        0.25
    """

    name = "l2"

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        check_targets(self.name, Y, Y_hat)
        D = Y_hat - Y
        return float(np.sum(D * D) / (2 * Y.shape[0]))

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        check_targets(self.name, Y, Y_hat)
        return (Y_hat - Y) / Y.shape[0]


#: Every loss by name; adding one is its class above (taking ``name`` first, as :class:`Loss`) and
#: one ``LOSSES.add`` line.
LOSSES = Registry("loss")
LOSSES.add("cross_entropy", CrossEntropy)
LOSSES.add("l2", L2)


def initialize_loss(name: str | Loss, **kwargs) -> Loss:
    """Make a loss from its name (``"cross_entropy"`` or ``"l2"``, case-insensitive) and its
    constructor arguments (e.g. ``label_smoothing``); the loss is given its registered name. A
    :class:`Loss` is returned as it is. ``ValueError`` names an unknown loss or argument and the
    valid ones.

    Example:
        >>> from neural_networks import initialize_loss
        >>> initialize_loss("cross_entropy", label_smoothing=0.1).label_smoothing
        0.1
    """
    if isinstance(name, Loss):
        return name
    key = LOSSES.canonical(name)
    return LOSSES.create(key, name=key, **kwargs)


def produces(activation) -> str | None:
    """What ``activation`` (an instance or class; ``None``: a layer without one) makes: its
    :attr:`~neural_networks.activations.Activation.produces` (``None``: any real numbers; an
    activation of another kind without the attribute counts as that too)."""
    return getattr(activation, "produces", None) if activation is not None else None


def activations_making(kind: str) -> list[str]:
    """Registered names of the activations that make ``kind`` (for the advice in errors)."""
    from .activations import ACTIVATIONS

    return [name for name, factory in ACTIVATIONS.items() if produces(factory) == kind]


def output_fits(loss: Loss, layer) -> bool:
    """Whether a network whose last layer is ``layer`` makes what ``loss`` expects. A layer
    without an activation (dropout, flatten, pooling) makes no declared kind: dropout rescales
    in training, flattening a convolution's per-pixel softmax gives rows that sum to the pixels."""
    return loss.expects is None or produces(getattr(layer, "activation", None)) == loss.expects


def check_output_layer(loss: Loss, layer) -> None:
    """Raise ``ValueError`` naming the loss, the layer and the activation to use when ``layer``,
    a network's last, cannot make what ``loss`` expects (:func:`output_fits`)."""
    if output_fits(loss, layer):
        return
    fix = " or ".join(repr(name) for name in activations_making(loss.expects)) or "one that makes them"
    what = f"loss {loss.name!r} expects {loss.expects}, which the last layer, {layer.where},"
    if getattr(layer, "activation", None) is None:
        raise ValueError(
            f"{what} cannot make (it has no activation); end with a layer with activation {fix} for {loss.name}"
        )
    raise ValueError(
        f"{what} cannot make with activation {layer.activation.name!r}; use activation {fix} for {loss.name}"
    )
