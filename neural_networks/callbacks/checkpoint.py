"""Checkpoints: :class:`ModelCheckpoint` writes a run's ``last.npz`` (the resume state) and
``best.npz``, and reads ``last.npz`` back to resume; the helpers that store the callbacks'
states in a checkpoint's arrays and JSON."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import serialization
from .base import Callback, CallbackList
from .checks import direction, finite, missing

__all__ = ["ModelCheckpoint"]


def _split_states(states: dict[str, dict]) -> tuple[dict, dict[str, np.ndarray]]:
    """Callback states -> (JSON part, arrays keyed ``callbacks.<key>.<name>``)."""
    plain, arrays = {}, {}
    for key, state in states.items():
        plain[key] = {}
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"callbacks.{key}.{name}"] = value
            else:
                plain[key][name] = value
    return plain, arrays


def _join_states(plain: dict, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    states = {key: dict(state) for key, state in plain.items()}
    for name, value in arrays.items():
        if name.startswith("callbacks."):
            key, field = name[len("callbacks.") :].split(".", 1)
            states.setdefault(key, {})[field] = value
    return states


class ModelCheckpoint(Callback):
    """Writes ``directory/last.npz`` after every epoch and ``directory/best.npz`` when the
    ``monitor``-ed value improves (``mode`` as for :class:`EarlyStopping`; the default follows
    validation accuracy, or the training accuracy when the data set holds no validation
    examples: a missing ``val_x`` falls back to ``x``).

    ``last.npz`` is the one place a run's resume state lives: besides the model and optimizer
    it records the finished epochs, the best value so far, whether a callback stopped training,
    and the state of every callback of the fit (the :class:`History` rows and mini-batch losses,
    the Logger's parameter ranges, :class:`EarlyStopping`'s counters and best weights).
    :meth:`resume` reads it back; ``best.npz`` holds the model only, and is written first (a
    crash between the two writes leaves ``last.npz`` an epoch behind; resuming repeats that epoch
    and rewrites the same ``best.npz``). Both files' ``extra`` metadata is
    ``{"epoch", "monitor", "best"}``.

    Raises ``ValueError`` for a ``monitor`` or ``mode`` as :class:`EarlyStopping` does, at an
    epoch's end whose logs lack ``monitor`` (and its training counterpart), and when a resumed
    fit starts at another epoch than ``last.npz`` records; :meth:`resume` says what it raises.

    Example:
        >>> import tempfile
        >>> from neural_networks import NeuralNetwork, FullyConnected, SGD
        >>> from neural_networks.callbacks import ModelCheckpoint
        >>> from neural_networks.datasets import initialize_dataset
        >>> folder, data = tempfile.mkdtemp(), initialize_dataset("iris", seed=0)
        >>> model = NeuralNetwork(layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
        ...                       optimizer=SGD(lr=0.05, momentum=0.9), seed=0)
        >>> _ = model.train(data, 3, verbose=0, callbacks=[ModelCheckpoint(folder)])
        >>> checkpoint = ModelCheckpoint(folder)  # e.g. in a new process, after a crash
        >>> resumed = checkpoint.resume()
        >>> history = resumed.train(data, 2, verbose=0, start_epoch=checkpoint.epoch, callbacks=[checkpoint])
        >>> checkpoint.epoch, history.epochs  # the History's first three rows come from last.npz
        (5, 5)
    """

    def __init__(self, directory, monitor: str = "val_accuracy", mode: str = "auto") -> None:
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = direction(monitor, mode, "ModelCheckpoint")
        self.best = -math.inf if self.mode == "max" else math.inf
        self.epoch = 0  # epochs finished, as recorded in last.npz
        self.stopped = False  # whether a callback had stopped training when last.npz was written
        self.callbacks: CallbackList | None = None
        self._resumed: dict | None = None

    @property
    def last_path(self) -> Path:
        """``directory/last.npz``: the model, optimizer and resume state after the latest epoch."""
        return self.directory / "last.npz"

    @property
    def best_path(self) -> Path:
        """``directory/best.npz``: the model of the best epoch so far."""
        return self.directory / "best.npz"

    def set_callbacks(self, callbacks: CallbackList) -> None:
        """Receive the fit's :class:`CallbackList`, whose states go into ``last.npz``."""
        self.callbacks = callbacks

    def _improved(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def _extra(self) -> dict:
        return {"epoch": self.epoch, "monitor": self.monitor, "best": finite(self.best)}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Write ``best.npz`` if the ``monitor``-ed value improved, then ``last.npz``.
        ``ValueError`` when ``logs`` lack ``monitor`` (and its training counterpart)."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None and self.monitor.startswith("val_"):
            value = logs.get(self.monitor[len("val_") :])
        if value is None:
            raise missing("ModelCheckpoint", self.monitor, logs)
        improved = self._improved(value)
        if improved:
            self.best = float(value)
        self.epoch = epoch + 1
        self.stopped = bool(getattr(self.model, "stop_training", False))
        states = self.callbacks.state_dict() if self.callbacks is not None else {}
        plain, arrays = _split_states(states)
        training = {
            "epoch": self.epoch,
            "monitor": self.monitor,
            "mode": self.mode,
            "best": finite(self.best),
            "stop_training": self.stopped,
            "callbacks": plain,
        }
        # best.npz first: a crash between the two writes leaves last.npz one epoch behind, and
        # resuming repeats that epoch (deterministically), which rewrites the same best.npz. The
        # other order could leave a best.npz older than last.npz's best that nothing repairs.
        if improved:
            serialization.save_model(self.model, self.best_path, extra=self._extra())
        serialization.save_checkpoint(self.last_path, self.model, extra=self._extra(), training=training, arrays=arrays)

    def resume(self, logger=None):
        """The model of ``last.npz`` (with its optimizer state), ready for
        ``fit(..., initial_epoch=checkpoint.epoch)`` with this checkpoint among the callbacks:
        when that fit begins, the checkpoint gives every callback its saved state back
        (History, Logger, EarlyStopping, ...). Raises ``FileNotFoundError`` without the file
        and ``ValueError`` for a file without training state (a plain model file, or one
        written in format ``neural_networks.model/1``)."""
        path = self.last_path
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: {path} does not exist")
        checkpoint = serialization.load_checkpoint(path, logger=logger)
        training = checkpoint.training
        if training is None:
            raise ValueError(
                f"cannot resume from {path}: it holds no training state (format {checkpoint.format}); "
                f"it still loads as a model"
            )
        self.epoch = int(training["epoch"])
        self.stopped = bool(training.get("stop_training", False))
        best = training.get("best")
        if best is not None and training.get("monitor") == self.monitor:
            self.best = float(best)
        self._resumed = _join_states(training.get("callbacks", {}), checkpoint.arrays)
        return checkpoint.model

    def on_train_begin(self, logs=None) -> None:
        """After :meth:`resume`: check that the fit starts at the recorded epoch
        (``ValueError`` otherwise) and hand every callback its saved state."""
        if self._resumed is None:
            return
        initial_epoch = (self.params or {}).get("initial_epoch", self.epoch)
        if initial_epoch != self.epoch:
            raise ValueError(
                f"ModelCheckpoint: {self.last_path} resumes after epoch {self.epoch}, "
                f"but fit starts at initial_epoch={initial_epoch}"
            )
        if self.callbacks is not None:
            self.callbacks.load_state_dict(self._resumed)
        self._resumed = None
