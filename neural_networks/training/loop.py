"""The fit loop: epochs of mini-batch steps, validation, and the callbacks around them.

``fit(model, dataset, epochs, callbacks=None, verbose=1, initial_epoch=0, prefetch=2) -> History`` trains
``model`` on ``dataset.train`` for the epochs ``initial_epoch .. epochs - 1`` (as in Keras,
``epochs`` is the index of the last epoch, so a resumed run passes the same ``epochs`` and the
epoch it stopped at). Each epoch:

1. derives its randomness (shuffling, augmentation, dropout masks) from the model's seed and
   the epoch number alone, so a run resumed at an epoch boundary continues exactly as an
   uninterrupted one would;
2. runs one ``model.train_step`` per batch (one parallel region per step), with the learning
   rate schedule at the fractional epoch ``epoch + b / n_batches``, while a background thread
   prepares the next ``prefetch`` batches (:mod:`neural_networks.training.prefetch`);
3. evaluates on ``dataset.validate`` when it holds examples;
4. hands the epoch's logs to the callbacks, then stops if one set ``model.stop_training``.

The callbacks run in this order (as Keras's): the given callbacks and the model's ``logger``,
then the :class:`~neural_networks.callbacks.History` (a new one unless one is passed; it is
returned and set as ``model.history``) and the :class:`~neural_networks.callbacks.ProgressBar`
(``verbose=1``, unless one is passed), so that both see what earlier callbacks added to the
logs, and last every :class:`~neural_networks.callbacks.ModelCheckpoint` (the logger's
included), so that what a checkpoint saves includes every other callback's work of the epoch.

The epoch arithmetic (:func:`check_epochs`, :func:`epoch_count`, :func:`epoch_batches`) lives in
:mod:`neural_networks.epochs`, which the progress bar shares; it is importable from here too.
:meth:`NeuralNetwork.train <neural_networks.models.NeuralNetwork.train>` runs :func:`fit`, which
this module hands to the model class (the model does not import the loop).
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from ..callbacks import Callback, CallbackList, History, ModelCheckpoint, ProgressBar
from ..epochs import check_epochs, epoch_batches, epoch_count
from ..functional import allocator
from ..models import NeuralNetwork
from .prefetch import Prefetch

__all__ = ["fit", "check_epochs", "epoch_count", "epoch_batches", "TrainingDiverged"]


def _check_epoch(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    return int(value)


class _LoggerAdapter(Callback):
    """A ``logger=`` object of the older protocol (``on_epoch_end(model, epoch, metrics)``,
    ``on_train_end(model, history)``) as a callback."""

    def __init__(self, logger) -> None:
        self.logger = logger

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if hasattr(self.logger, "on_epoch_end"):
            self.logger.on_epoch_end(self.model, epoch, logs)

    def on_train_end(self, logs=None) -> None:
        if hasattr(self.logger, "on_train_end"):
            self.logger.on_train_end(self.model, self.model.history)


def _arrange(model, callbacks, verbose: int) -> tuple[History, list]:
    """The fit's History and its callbacks in calling order (see the module docstring)."""
    given = list(callbacks or [])
    history = next((cb for cb in given if isinstance(cb, History)), None) or History()
    others = [cb for cb in given if cb is not history]
    logger = getattr(model, "logger", None)
    if logger is not None and not any(cb is logger for cb in others):
        others.append(logger if isinstance(logger, Callback) else _LoggerAdapter(logger))
    checkpoint = getattr(logger, "checkpoint", None)
    if isinstance(checkpoint, ModelCheckpoint) and not any(cb is checkpoint for cb in others):
        others.append(checkpoint)
    progress = [] if not verbose or any(isinstance(cb, ProgressBar) for cb in others) else [ProgressBar()]
    checkpoints = [cb for cb in others if isinstance(cb, ModelCheckpoint)]
    others = [cb for cb in others if not isinstance(cb, ModelCheckpoint)]
    return history, [*others, history, *progress, *checkpoints]


def _seed_epoch(model, dataset, epoch: int) -> None:
    """Derive this epoch's randomness (shuffling, augmentation, dropout masks) from the seed and
    the epoch number alone."""
    set_epoch = getattr(dataset.train, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)
    if model.seed is None:
        return
    for i, layer in enumerate(model.layers):
        if layer.stochastic:
            layer.rng = np.random.default_rng([int(model.seed), i, epoch, 1])


def _batches(train, limit: int, prefetch: int):
    """``train``'s batches for one epoch, ``prefetch`` ahead in a background thread (a context
    manager; 0: the loader itself, unchanged)."""
    if prefetch == 0:
        return contextlib.nullcontext(train)
    return Prefetch(train, limit=limit, depth=prefetch)


class TrainingDiverged(ValueError):
    """The loss or the network's output became non-finite (NaN or infinite) during training; the
    message names the epoch and step and the usual cures. Checkpoints keep the last finished epoch."""


def _step(model, X, Y, epoch: int, batch: int, batches: int, n_batches: int) -> tuple[float, int]:
    """One training step, with divergence reported as :class:`TrainingDiverged`: the losses refuse
    non-finite predictions (a ``ValueError``), and an infinite loss can come from finite ones."""
    progress = epoch + batch / n_batches
    try:
        # overflow warnings would only precede the report below, which names the step
        with np.errstate(over="ignore", invalid="ignore"):
            loss, hits = model.train_step(X, Y, progress)
    except ValueError as err:
        output = getattr(model, "_last_output", None)
        if output is None or np.isfinite(output).all():
            raise  # not divergence: a shape or data error, reported as it is
        raise _diverged(
            model, epoch, batch, batches, progress, "the network's output holds NaN or infinite values"
        ) from err
    if not math.isfinite(loss):
        raise _diverged(model, epoch, batch, batches, progress, f"the loss is {loss}")
    return loss, hits


def _diverged(model, epoch: int, batch: int, batches: int, progress: float, what: str) -> TrainingDiverged:
    lr = model.optimizer.lr_scheduler(progress) if model.optimizer is not None else None
    rate = f" ({lr:g} at this step)" if isinstance(lr, (int, float)) else ""
    return TrainingDiverged(
        f"training diverged at epoch {epoch + 1}, step {batch + 1} of {batches}: {what}; lower the learning "
        f"rate{rate}, clip gradients (clip_norm), or check that the inputs are scaled"
    )


def _check_dataset(dataset) -> None:
    """``dataset`` must look like a data set: ``.train`` a loader of ``(X, Y)`` batches with a length."""
    train = getattr(dataset, "train", None)
    if train is None or not hasattr(train, "__iter__") or not hasattr(train, "__len__"):
        raise TypeError(
            f"fit/train expects a data set with a .train loader of (X, Y) batches (e.g. "
            f"neural_networks.datasets.Dataset(X, y) or initialize_dataset(...)); got {type(dataset).__name__}"
        )


def fit(
    model, dataset, epochs: int | float, callbacks=None, verbose: int = 1, initial_epoch: int = 0, prefetch: int = 2
) -> History:
    """Train ``model`` on ``dataset`` for epochs ``initial_epoch .. epochs - 1``; returns the
    :class:`History` (see the module docstring). A fractional ``epochs`` ends with a partial epoch
    (:func:`epoch_batches`), logged as an epoch of its own. ``verbose``: 0 silent, 1 a progress
    bar per epoch and a summary line. An output layer built with ``n_out=None`` is sized from the
    data set first. ``prefetch``: training batches prepared ahead in a background thread
    (:class:`~neural_networks.training.prefetch.Prefetch`; the same batches in the same order), 0 for none.

    Raises:
        TypeError: for a ``dataset`` without a ``train`` loader.
        ValueError: for ``epochs`` that is not a non-negative number, a negative or non-integer
            ``initial_epoch`` or ``prefetch``, an output layer that the data set cannot size, and
            whatever the model's layers and loss raise for the data (shapes, labels).
        TrainingDiverged: (a ``ValueError``) when the loss or the network's output becomes NaN or
            infinite; the message names the epoch and step.

    Example:
        >>> from neural_networks import NeuralNetwork, FullyConnected, SGD
        >>> from neural_networks.callbacks import EarlyStopping
        >>> from neural_networks.datasets import initialize_dataset
        >>> from neural_networks.training import fit
        >>> data = initialize_dataset("iris", seed=0)
        >>> model = NeuralNetwork(layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
        ...                       optimizer=SGD(lr=0.05, momentum=0.9), seed=0)
        >>> history = fit(model, data, epochs=4.5, verbose=0, callbacks=[EarlyStopping(patience=2)])
        >>> history.epochs, sorted(history.history)  # the half epoch is logged as an epoch of its own
        (5, ['accuracy', 'loss', 'lr', 'seconds', 'val_accuracy', 'val_loss'])
    """
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")
    _check_dataset(dataset)
    epochs = check_epochs(epochs)
    initial_epoch = _check_epoch(initial_epoch, "initial_epoch")
    allocator.apply_default()  # keep each step's freed temporaries for the next (see allocator.py)
    model.size_output_layer(dataset)
    if initial_epoch == 0:
        model.fit_to_data(dataset.train)  # data-dependent initialisation (patch whitening), if any layer needs it
    history, ordered = _arrange(model, callbacks, verbose)
    train = dataset.train
    n_batches = len(train)
    callbacks = CallbackList(
        ordered,
        model=model,
        params={"epochs": epochs, "initial_epoch": initial_epoch, "steps": n_batches, "verbose": verbose},
    )
    model.history = history
    model.stop_training = False
    validate = getattr(dataset, "validate", None)
    has_validation = validate is not None and getattr(validate, "n_examples", 1) > 0
    batch_begin, batch_end = callbacks.has("on_train_batch_begin"), callbacks.has("on_train_batch_end")
    n_batches = max(n_batches, 1)
    logs: dict = {}
    callbacks.on_train_begin({})
    for epoch in range(initial_epoch, epoch_count(epochs)):
        model.train_mode(True)
        _seed_epoch(model, dataset, epoch)
        started = time.perf_counter()
        callbacks.on_epoch_begin(epoch, {})
        total_loss, correct, count = 0.0, 0, 0
        batches = epoch_batches(epochs, epoch, n_batches)
        # the loop below asks for one batch more than it trains (then stops): so does the prefetcher
        with _batches(train, batches + 1, prefetch) as loader:
            for b, (X, Y) in enumerate(loader):
                if b == batches:
                    break
                if batch_begin:
                    callbacks.on_train_batch_begin(b, {})
                # Schedules see fractional epochs so that cosine / one-cycle move every step.
                loss, hits = _step(model, X, Y, epoch, b, batches, n_batches)
                m = Y.shape[0]
                total_loss += loss * m
                correct += hits
                count += m
                if batch_end:
                    callbacks.on_train_batch_end(b, {"loss": loss, "accuracy": correct / count})
        logs = {"loss": float(total_loss / max(count, 1)), "accuracy": correct / max(count, 1)}
        if has_validation:
            callbacks.on_test_begin({})
            val = model.evaluate(validate)
            logs.update(val_loss=float(val["loss"]), val_accuracy=float(val["accuracy"]))
            callbacks.on_test_end({"loss": logs["val_loss"], "accuracy": logs["val_accuracy"]})
        logs["lr"] = float(model.optimizer.lr_scheduler(epoch))
        logs["seconds"] = time.perf_counter() - started
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return history


# NeuralNetwork.train runs this loop. The model does not import the loop that drives it, so the loop
# hands itself over here (and the package neural_networks imports this module, so every model has it).
NeuralNetwork.training_loop = staticmethod(fit)
