"""Layers: stateful wrappers that own parameters, gradients and a cache, and call the array
kernels in :mod:`neural_networks.functional`.

One module per family: :mod:`.base` (:class:`Layer`, :class:`ActivatedLayer` and the shared
helpers), :mod:`.dense` (:class:`FullyConnected`), :mod:`.convolution` (:class:`Conv2D`,
:class:`Pool2D`), :mod:`.reshape` (:class:`Flatten`), :mod:`.normalization`
(:class:`BatchNorm`) and :mod:`.dropout` (:class:`Dropout`). Every layer is registered here,
in :data:`LAYERS`, and made by name with :func:`initialize_layer`; adding a layer is its
module and one ``LAYERS.add`` line.

Every layer has the spec's attributes ``parameters``, ``gradients`` (same keys),
``cache`` (all ``OrderedDict``), ``activation``, ``n_in`` and ``n_out``, and the methods
``forward(X)``, ``backward(dLdY)`` and ``clear_gradients()``. Parameters are created on the
first forward pass, from the input's shape (see :mod:`.base` for their dtype).
"""

from __future__ import annotations

from ..registry import Registry

from .base import ActivatedLayer, Layer
from .convolution import Conv2D, Pool2D
from .dense import FullyConnected
from .dropout import Dropout
from .normalization import BatchNorm
from .reshape import Flatten

__all__ = [
    "Layer",
    "ActivatedLayer",
    "FullyConnected",
    "Conv2D",
    "Pool2D",
    "Flatten",
    "BatchNorm",
    "Dropout",
    "LAYERS",
    "initialize_layer",
]

#: Every layer by the name a config (and a saved model) gives it.
LAYERS = Registry("layer")
LAYERS.add("fully_connected", FullyConnected)
LAYERS.add("conv2d", Conv2D)
LAYERS.add("pool2d", Pool2D)
LAYERS.add("flatten", Flatten)
LAYERS.add("batchnorm", BatchNorm)
LAYERS.add("dropout", Dropout)


def initialize_layer(name: str, frozen=False, **kwargs) -> Layer:
    """Make a layer from its name (one of :data:`LAYERS`: ``"fully_connected"``, ``"conv2d"``,
    ``"pool2d"``, ``"flatten"``, ``"batchnorm"``, ``"dropout"``; case-insensitive) and its
    constructor arguments; ``ValueError`` names an unknown layer or argument and the valid ones.
    ``frozen``: ``True`` or a list of parameter names that the optimizer must not train (see
    :meth:`Layer.freeze`); every layer accepts it (``{name: conv2d, ..., frozen: [W]}``).

    Example:
        >>> from neural_networks.layers import initialize_layer
        >>> conv = initialize_layer("Conv2D", n_out=16, kernel_shape=3, frozen=["b"])
        >>> conv.kernel_shape, conv.pad, conv.activation.name, conv.frozen
        ((3, 3), (1, 1), 'relu', {'b'})
    """
    layer = LAYERS.create(name, **kwargs)
    if not (frozen is True or frozen is False or isinstance(frozen, (str, list, tuple))):
        raise ValueError(f"frozen must be true, false or a list of parameter names; got {frozen!r}")
    return layer.freeze(frozen)
