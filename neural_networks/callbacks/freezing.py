"""Freezing: stop (or resume) training some layers' parameters from a given epoch on."""

from __future__ import annotations

import numpy as np

from .base import Callback
from .checks import is_index

__all__ = ["FreezeParameters"]


class FreezeParameters(Callback):
    """Freeze parameters of some layers from the start of epoch ``epoch`` (0-based) on, e.g.
    a patch-whitening first layer (arXiv:2404.00498), whose bias trains for the first few epochs only:
    ``{name: freeze, layers: [0], parameters: [b], epoch: 3}``.

    ``layers``: a layer index or a list of them (negative counts from the end); ``parameters``:
    ``true`` (all of each layer's parameters) or a list of names (see :meth:`Layer.freeze`);
    ``unfreeze=True`` trains them again from that epoch instead. The change is applied at the
    start of every epoch from ``epoch`` on, so a resumed run is in the same state as an
    uninterrupted one. Freezing from the start needs no callback: give the layer ``frozen``.

    Raises ``ValueError`` for arguments of the wrong type or a negative ``epoch``, and when
    training begins for a layer index the model does not have or a parameter name its layer
    does not have."""

    def __init__(self, layers, epoch: int, parameters=True, unfreeze: bool = False) -> None:
        indices = [layers] if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool) else layers
        if not isinstance(indices, (list, tuple)) or not indices or not all(is_index(i) for i in indices):
            raise ValueError(f"FreezeParameters: layers must be a layer index or a list of them; got {layers!r}")
        if not is_index(epoch) or epoch < 0:
            raise ValueError(f"FreezeParameters: epoch must be a non-negative integer; got {epoch!r}")
        if not (parameters is True or isinstance(parameters, (str, list, tuple))):
            raise ValueError(f"FreezeParameters: parameters must be true or a list of names; got {parameters!r}")
        if not isinstance(unfreeze, bool):
            raise ValueError(f"FreezeParameters: unfreeze must be true or false; got {unfreeze!r}")
        self.layers, self.epoch, self.parameters, self.unfreeze = (
            [int(i) for i in indices],
            int(epoch),
            parameters,
            unfreeze,
        )

    def on_train_begin(self, logs=None) -> None:
        """Check the layer indices and parameter names against the model (``ValueError``)."""
        n = len(self.model.layers)
        for i in self.layers:
            if not -n <= i < n:
                raise ValueError(f"FreezeParameters: layer {i} does not exist (the model has {n} layers)")
            self.model.layers[i]._parameter_set(self.parameters)  # a wrong name fails before any epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """From epoch ``epoch`` on, freeze (or unfreeze) the parameters."""
        if epoch >= self.epoch:
            for i in self.layers:
                layer = self.model.layers[i]
                (layer.unfreeze if self.unfreeze else layer.freeze)(self.parameters)
