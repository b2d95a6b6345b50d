"""The :class:`History`: what training measured, epoch by epoch and batch by batch."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .base import Callback
from .checks import is_number

__all__ = ["History"]


class History(Callback):
    """What training measured: ``history[key]`` is a per-epoch list for ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``lr`` and ``seconds``; ``iteration_loss`` holds the training
    loss of every mini-batch. ``fit`` (and :meth:`NeuralNetwork.train`) return it; it is also
    ``model.history``. Rows accumulate over fits given the same History."""

    _restored_first = True  # other callbacks' states (the Logger's rows) refer to its rows

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = OrderedDict()
        self.iteration_loss: list[float] = []

    def append(self, **metrics: float) -> None:
        """Append one value to the list of each keyword (``history.append(loss=0.3, accuracy=0.9)``)."""
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    @property
    def epochs(self) -> int:
        """The number of epochs recorded (the length of the first list; 0 before any)."""
        return len(next(iter(self.history.values()), []))

    def __repr__(self) -> str:
        return f"History(epochs={self.epochs}, keys={list(self.history)})"

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Record the batch's ``loss`` in :attr:`iteration_loss`."""
        self.iteration_loss.append(float(logs["loss"]))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Append every numeric value of the epoch's ``logs`` to its list."""
        self.append(**{key: value for key, value in (logs or {}).items() if is_number(value)})

    def state_dict(self) -> dict:
        """The rows and mini-batch losses, for a resumed run."""
        return {
            "history": {key: list(values) for key, values in self.history.items()},
            "iteration_loss": np.asarray(self.iteration_loss, dtype=np.float64),
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace the rows and mini-batch losses with those of :meth:`state_dict`."""
        self.history = OrderedDict((key, [float(v) for v in values]) for key, values in state["history"].items())
        self.iteration_loss = [float(v) for v in np.asarray(state.get("iteration_loss", ()))]
