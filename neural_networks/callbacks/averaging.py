"""Weight averaging: an exponential moving average of the weights to evaluate with, and
Lookahead's slow weights that training is pulled back to."""

from __future__ import annotations

import math

import numpy as np

from .base import Callback
from .checks import is_index, is_number

__all__ = ["ExponentialMovingAverage", "Lookahead"]


def _weights_and_buffers(model) -> list[np.ndarray]:
    """The model's parameters and buffers, the arrays themselves, in get_weights order."""
    return [
        value
        for layer in model.layers
        for group in (layer.parameters, getattr(layer, "buffers", {}))
        for value in group.values()
    ]


class ExponentialMovingAverage(Callback):
    """Keep an exponential moving average of the weights and evaluate with it (Polyak averaging;
    timm's ``ModelEmaV2``, Keras' ``use_ema``; :class:`Lookahead` below is a close relative).

    After every ``every``-th training step: ``ema <- d * ema + (1 - d) * w`` for every parameter
    and buffer (batch-norm running statistics too), ``d = decay``, or with ``warmup``
    ``min(decay, (1 + t) / (10 + t))`` at step ``t`` (so that early averages do not remember the
    initial weights). The averaged weights are what the model is evaluated with: the per-epoch
    validation, the checkpoints (``best.npz``/``last.npz`` hold them, so ``evaluate`` and
    ``predict`` use them) and the model after training. Training itself continues from the raw
    weights, which the callback's state keeps, so a resumed run equals an uninterrupted one.

    Raises ``ValueError`` for a ``decay`` outside (0, 1), an ``every`` that is not a positive
    integer or a ``warmup`` that is not a bool."""

    def __init__(self, decay: float = 0.999, every: int = 1, warmup: bool = True) -> None:
        if isinstance(decay, bool) or not is_number(decay) or not 0.0 < decay < 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in (0, 1); got {decay!r}")
        if not is_index(every) or every < 1:
            raise ValueError(f"ExponentialMovingAverage: every must be a positive integer; got {every!r}")
        if not isinstance(warmup, bool):
            raise ValueError(f"ExponentialMovingAverage: warmup must be true or false; got {warmup!r}")
        self.decay, self.every, self.warmup = float(decay), int(every), warmup
        self.average: list[np.ndarray] | None = None
        self.raw: list[np.ndarray] | None = None  # the training weights while the average is in the model
        self.steps = 0

    def _arrays(self) -> list[np.ndarray]:
        return _weights_and_buffers(self.model)

    def _put(self, values) -> None:
        for target, value in zip(self._arrays(), values):
            target[...] = value

    def _swap_in(self) -> None:
        if self.raw is None and self.average is not None:
            self.raw = [np.array(a) for a in self._arrays()]
            self._put(self.average)

    def _swap_out(self) -> None:
        if self.raw is not None:
            self._put(self.raw)
            self.raw = None

    def on_train_begin(self, logs=None) -> None:
        """Start without an average (a resumed fit's state is loaded after this)."""
        self.average, self.raw, self.steps = None, None, 0  # a resumed fit's state arrives after this

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Put the raw training weights back into the model (the first time: start the average)."""
        self._swap_out()
        if self.average is None:  # the model's parameters exist once it has seen data
            self.average = [np.array(a, dtype=np.float64) for a in self._arrays()] or None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Every ``every``-th step, move the average towards the current weights."""
        self.steps += 1
        if self.steps % self.every:
            return
        arrays = self._arrays()
        if self.average is None or len(self.average) != len(arrays):
            self.average = [np.array(a, dtype=np.float64) for a in arrays]
            return
        t = self.steps // self.every
        d = min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay
        for average, value in zip(self.average, arrays):
            # d * average + (1 - d) * value, computed in the average's float64 without temporaries
            average -= value
            average *= d
            average += value

    def on_test_begin(self, logs=None) -> None:
        """Evaluate with the average: swap it into the model."""
        self._swap_in()

    def on_test_end(self, logs=None) -> None:
        """Swap the raw training weights back in after validation."""
        self._swap_out()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Swap the average in, so that the epoch's checkpoints hold it."""
        self._swap_in()  # the checkpoints written after this hold the average

    def on_train_end(self, logs=None) -> None:
        """Leave the average in the model: it is the trained model."""
        self._swap_in()
        self.raw = None  # the average stays: it is the trained model

    def state_dict(self) -> dict | None:
        """Step count, average and raw weights (``None`` before the first epoch)."""
        if self.average is None:
            return None
        state = {"steps": self.steps}
        for i, value in enumerate(self.average):
            state[f"average.{i}"] = value
        for i, value in enumerate(self.raw or ()):
            state[f"raw.{i}"] = value
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the average and put the saved raw weights into the model."""

        def arrays(prefix):
            items = sorted((int(k.split(".", 1)[1]), v) for k, v in state.items() if k.startswith(prefix))
            return [np.array(v) for _, v in items]

        self.steps = int(state["steps"])
        self.average = arrays("average.") or None
        raw = arrays("raw.")
        self.raw = None
        if raw:  # the checkpoint's model holds the average; training resumes from the raw weights
            self._put(raw)


class Lookahead(Callback):
    """Lookahead (Zhang et al. 2019) as Jordan (2024, arXiv:2404.00498) runs it: slow weights that the training
    weights are pulled back to every ``every`` steps.

    After every ``every``-th training step ``t`` (counted over the whole run, of ``T`` =
    epochs x steps per epoch): ``slow <- slow + (1 - d) * (w - slow)`` and then ``w <- slow`` for
    every parameter and buffer (batch-norm running statistics too), with ``d = decay`` or, with
    ``schedule: cubic`` (that paper's), ``d = decay * (t / T) ** 3``: no pull at the start, the
    strongest at the end. At the end of the last epoch (or when a callback stops training) the
    weights become the slow weights, before the checkpoint of that epoch is written, so
    ``last.npz`` holds the trained model. Per-epoch validation sees the training weights. The slow
    weights (float64) are the callback's state, so a resumed run equals an uninterrupted one.
    The defaults are that paper's: ``every: 5``, ``decay: 0.95 ** 5``.

    Raises ``ValueError`` for a ``decay`` outside [0, 1), an ``every`` that is not a positive
    integer or an unknown ``schedule``."""

    SCHEDULES = ("constant", "cubic")

    def __init__(self, decay: float = 0.95**5, every: int = 5, schedule: str = "cubic") -> None:
        if isinstance(decay, bool) or not is_number(decay) or not 0.0 <= decay < 1.0:
            raise ValueError(f"Lookahead: decay must be in [0, 1); got {decay!r}")
        if not is_index(every) or every < 1:
            raise ValueError(f"Lookahead: every must be a positive integer; got {every!r}")
        if schedule not in self.SCHEDULES:
            raise ValueError(f"Lookahead: schedule must be one of {', '.join(self.SCHEDULES)}; got {schedule!r}")
        self.decay, self.every, self.schedule = float(decay), int(every), schedule
        self.slow: list[np.ndarray] | None = None
        self.steps = 0

    def _arrays(self) -> list[np.ndarray]:
        return _weights_and_buffers(self.model)

    def _decay(self) -> float:
        if self.schedule == "constant":
            return self.decay
        total = max(1, math.ceil(self.params["epochs"] * int(self.params["steps"]) - 1e-9))
        return self.decay * min(1.0, self.steps / total) ** 3

    def _pull(self, d: float) -> None:
        arrays = self._arrays()
        if self.slow is None or len(self.slow) != len(arrays):  # parameters exist once the model has seen data
            self.slow = [np.array(a, dtype=np.float64) for a in arrays]
            return
        for slow, value in zip(self.slow, arrays):
            # slow + (1 - d) * (value - slow) = d * slow + (1 - d) * value, without temporaries
            slow -= value
            slow *= d
            slow += value
            value[...] = slow

    def on_train_begin(self, logs=None) -> None:
        """Start without slow weights (a resumed fit's state is loaded after this)."""
        self.slow, self.steps = None, 0  # a resumed fit's state arrives after this

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """The first time: take the current weights as the slow weights."""
        if self.slow is None:
            self.slow = [np.array(a, dtype=np.float64) for a in self._arrays()] or None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Every ``every``-th step, pull the slow weights and the model towards each other."""
        self.steps += 1
        if self.steps % self.every == 0:
            self._pull(self._decay())

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """After the last epoch (or an early stop), set the weights to the slow weights."""
        if epoch + 1 >= math.ceil(self.params["epochs"]) or self.model.stop_training:
            self._pull(1.0)  # the weights become the slow weights

    def state_dict(self) -> dict | None:
        """Step count and slow weights (``None`` before the first epoch)."""
        if self.slow is None:
            return None
        return {"steps": self.steps, **{f"slow.{i}": value for i, value in enumerate(self.slow)}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        items = sorted((int(k.split(".", 1)[1]), v) for k, v in state.items() if k.startswith("slow."))
        self.steps = int(state["steps"])
        self.slow = [np.array(v, dtype=np.float64) for _, v in items] or None
