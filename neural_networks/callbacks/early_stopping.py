"""Early stopping: end training once a monitored figure stops improving."""

from __future__ import annotations

import math

import numpy as np

from .base import Callback
from .checks import direction, finite, is_number, missing

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras's semantics).

    An epoch improves when its value beats the best so far by more than ``min_delta`` (lower
    for ``mode="min"``, higher for ``"max"``; ``"auto"``: ``min`` for losses, ``max`` for
    accuracies). After ``patience`` epochs in a row without improvement it sets
    ``model.stop_training`` (never after the first epoch). With ``restore_best_weights`` the
    model gets the parameters and buffers of its best epoch back when training ends.
    ``stopped_epoch`` (0-based; 0 if it never stopped) and ``best_epoch`` tell what happened.

    Raises ``ValueError`` for a bad argument (a negative or non-integer ``patience``, a negative
    ``min_delta``, a ``mode`` that is not ``auto``/``min``/``max`` or that ``auto`` cannot tell
    from the name), and at an epoch's end whose logs lack ``monitor``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer; got {patience!r}")
        if isinstance(min_delta, bool) or not is_number(min_delta) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be a non-negative number; got {min_delta!r}")
        if not isinstance(restore_best_weights, bool):
            raise ValueError(f"EarlyStopping: restore_best_weights must be true or false; got {restore_best_weights!r}")
        self.monitor = monitor
        self.mode = direction(monitor, mode, "EarlyStopping")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < self.best
        return value - self.min_delta > self.best

    def on_train_begin(self, logs=None) -> None:
        """Forget the previous fit's counters and best value."""
        self._reset()  # an instance may be reused for another fit

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Compare the epoch's ``monitor`` value with the best so far and set
        ``model.stop_training`` after ``patience`` epochs without improvement. ``ValueError`` when
        ``logs`` lack ``monitor``."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            raise missing("EarlyStopping", self.monitor, logs)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        """With ``restore_best_weights``, put the best epoch's weights back into the model."""
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def state_dict(self) -> dict:
        """Counters, best value and (with ``restore_best_weights``) the best weights."""
        state = {
            "wait": self.wait,
            "best": finite(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }
        for i, weights in enumerate(self.best_weights or ()):
            state[f"weights.{i}"] = weights
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])
        self.stopped_epoch = int(state.get("stopped_epoch", 0))
        if state.get("best") is not None:
            self.best = float(state["best"])
        weights = sorted(
            (int(key.split(".", 1)[1]), value) for key, value in state.items() if key.startswith("weights.")
        )
        self.best_weights = [np.array(value) for _, value in weights] or None
