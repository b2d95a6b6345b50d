"""Callbacks: what the fit loop (:func:`neural_networks.training.fit`) runs around training,
epochs and batches, with Keras's hook names and arguments (:mod:`.base` describes them).

One module per family: :mod:`.base` (:class:`Callback`, :class:`CallbackList`), :mod:`.history`,
:mod:`.progress` (:class:`ProgressBar`), :mod:`.checkpoint` (:class:`ModelCheckpoint`, the resume
state), :mod:`.early_stopping`, :mod:`.freezing` (:class:`FreezeParameters`) and :mod:`.averaging`
(:class:`ExponentialMovingAverage`, :class:`Lookahead`).

Configs name callbacks through :data:`CALLBACKS`: ``early_stopping``, ``model_checkpoint``,
``freeze``, ``ema``, ``lookahead``, and ``tensorboard``
(:class:`neural_networks.tensorboard.TensorBoard`). That one registers itself where it is
defined: its module imports this package, which therefore cannot import it; the package
``neural_networks`` imports it, so the entry is there whenever ``CALLBACKS`` can be read.
"""

from __future__ import annotations

from ..registry import Registry
from .averaging import ExponentialMovingAverage, Lookahead
from .base import HOOKS, Callback, CallbackList
from .checkpoint import ModelCheckpoint
from .early_stopping import EarlyStopping
from .freezing import FreezeParameters
from .history import History
from .progress import ProgressBar, summary_line

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgressBar",
    "FreezeParameters",
    "ExponentialMovingAverage",
    "Lookahead",
    "ModelCheckpoint",
    "EarlyStopping",
    "CALLBACKS",
    "initialize_callback",
    "HOOKS",
    "summary_line",
]

#: Every callback a config can name (``callbacks: [{name: ..., ...}]``); adding one is one ``CALLBACKS.add`` line.
CALLBACKS = Registry("callback")
CALLBACKS.add("early_stopping", EarlyStopping, aliases=("earlystopping",))
CALLBACKS.add("freeze", FreezeParameters, aliases=("freeze_parameters",))
CALLBACKS.add("ema", ExponentialMovingAverage, aliases=("exponential_moving_average",))
CALLBACKS.add("lookahead", Lookahead)
CALLBACKS.add("model_checkpoint", ModelCheckpoint, aliases=("modelcheckpoint", "checkpoint"))


def initialize_callback(name: str, **kwargs) -> Callback:
    """Build the callback registered as ``name`` (see :data:`CALLBACKS`) from keyword arguments.
    Raises ``ValueError`` for an unknown name or arguments the callback does not take.

    Example:
        >>> from neural_networks.callbacks import initialize_callback
        >>> initialize_callback("early_stopping", monitor="val_loss", patience=3).patience
        3
    """
    return CALLBACKS.create(name, **kwargs)
