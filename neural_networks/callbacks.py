"""Callbacks: what the fit loop (:func:`neural_networks.training.fit`) runs around training,
epochs and batches, with Keras's hook names and arguments.

A callback subclasses :class:`Callback` and overrides any of::

    on_train_begin(logs)           on_train_end(logs)            # logs: the last epoch's
    on_epoch_begin(epoch, logs)    on_epoch_end(epoch, logs)     # epoch: 0-based
    on_train_batch_begin(batch, logs)  on_train_batch_end(batch, logs)  # batch: 0-based, per epoch
    on_test_begin(logs)            on_test_end(logs)             # around each epoch's validation

Epoch logs hold ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy`` (when the data set
holds validation examples), ``lr`` and ``seconds``; batch-end logs the batch's ``loss`` and the
epoch's running ``accuracy``; begin logs are empty. ``self.model`` is the model being trained
and ``self.params`` the loop's ``epochs`` (the last epoch, as Keras), ``initial_epoch``, ``steps``
(batches per epoch) and ``verbose``. Setting ``self.model.stop_training = True`` ends training
after the current epoch. Hooks a callback does not override cost nothing.

A callback with state worth keeping across a resume returns it from :meth:`Callback.state_dict`
(JSON-serialisable values, or NumPy arrays); :class:`ModelCheckpoint` stores the states of all
callbacks of the run in ``last.npz`` and hands them back through ``load_state_dict`` when the
resumed fit begins.

Configs name callbacks through :data:`CALLBACKS` (``early_stopping``, ``model_checkpoint``,
``freeze``, ``ema``, ``lookahead``, ``tensorboard``: :class:`neural_networks.tensorboard.TensorBoard`).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import serialization
from .registry import Registry

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
]

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
)


class Callback:
    """Base class of callbacks: every hook does nothing (see the module docstring)."""

    model = None
    params: dict | None = None

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = dict(params)

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_train_end(self, logs=None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        pass

    def on_test_begin(self, logs=None) -> None:
        pass

    def on_test_end(self, logs=None) -> None:
        pass

    def state_dict(self) -> dict | None:
        """What a resumed run needs of this callback (JSON-serialisable values or NumPy arrays),
        or ``None`` for a callback without state."""
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (called when a resumed fit begins)."""


def _overridden(callback, hook: str):
    """The bound ``hook`` of ``callback`` unless it is :class:`Callback`'s no-op (or missing)."""
    method = getattr(callback, hook, None)
    if method is None or getattr(method, "__func__", None) is getattr(Callback, hook):
        return None
    return method


class CallbackList:
    """Calls each hook on every callback that overrides it, in list order.

    Callbacks with a ``set_callbacks`` method (:class:`ModelCheckpoint`) receive the list, so
    that they can save and restore the states of the others."""

    def __init__(self, callbacks=(), model=None, params: dict | None = None) -> None:
        self.callbacks = list(callbacks)
        self._hooks = {
            hook: [m for m in (_overridden(cb, hook) for cb in self.callbacks) if m is not None] for hook in HOOKS
        }
        for callback in self.callbacks:
            if hasattr(callback, "set_callbacks"):
                callback.set_callbacks(self)
        if model is not None:
            self.set_model(model)
        if params is not None:
            self.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_model(self, model) -> None:
        for callback in self.callbacks:
            if hasattr(callback, "set_model"):
                callback.set_model(model)
            else:
                callback.model = model

    def set_params(self, params: dict) -> None:
        for callback in self.callbacks:
            if hasattr(callback, "set_params"):
                callback.set_params(params)

    def has(self, hook: str) -> bool:
        """Whether any callback overrides ``hook`` (the loop skips building logs otherwise)."""
        return bool(self._hooks[hook])

    def on_train_begin(self, logs=None) -> None:
        for method in self._hooks["on_train_begin"]:
            method(logs)

    def on_train_end(self, logs=None) -> None:
        for method in self._hooks["on_train_end"]:
            method(logs)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        for method in self._hooks["on_epoch_begin"]:
            method(epoch, logs)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        for method in self._hooks["on_epoch_end"]:
            method(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        for method in self._hooks["on_train_batch_begin"]:
            method(batch, logs)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        for method in self._hooks["on_train_batch_end"]:
            method(batch, logs)

    def on_test_begin(self, logs=None) -> None:
        for method in self._hooks["on_test_begin"]:
            method(logs)

    def on_test_end(self, logs=None) -> None:
        for method in self._hooks["on_test_end"]:
            method(logs)

    # -- resume state ------------------------------------------------------------------
    def _keyed(self):
        """``(key, callback)`` for every callback with a ``state_dict``: the class name, with
        ``_2``, ``_3``, ... for later callbacks of the same class."""
        seen: dict[str, int] = {}
        for callback in self.callbacks:
            if not hasattr(callback, "state_dict"):
                continue
            name = type(callback).__name__
            seen[name] = seen.get(name, 0) + 1
            yield (name if seen[name] == 1 else f"{name}_{seen[name]}"), callback

    def state_dict(self) -> dict[str, dict]:
        """``{key: state}`` of every callback whose ``state_dict()`` is not ``None``."""
        states = {}
        for key, callback in self._keyed():
            state = callback.state_dict()
            if state is not None:
                states[key] = state
        return states

    def load_state_dict(self, states: dict[str, dict]) -> None:
        """Hand each callback its saved state, the History first (other states may refer to
        it: the Logger's rows are the History's); callbacks without one (added since) start
        afresh, states without a callback (removed since) are ignored."""
        for key, callback in sorted(self._keyed(), key=lambda item: not isinstance(item[1], History)):
            if key in states and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(states[key])


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class History(Callback):
    """What training measured: ``history[key]`` is a per-epoch list for ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``lr`` and ``seconds``; ``iteration_loss`` holds the training
    loss of every mini-batch. ``fit`` (and :meth:`NeuralNetwork.train`) return it; it is also
    ``model.history``. Rows accumulate over fits given the same History."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = OrderedDict()
        self.iteration_loss: list[float] = []

    def append(self, **metrics: float) -> None:
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    def __repr__(self) -> str:
        return f"History(epochs={self.epochs}, keys={list(self.history)})"

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.iteration_loss.append(float(logs["loss"]))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.append(**{key: value for key, value in (logs or {}).items() if _number(value)})

    def state_dict(self) -> dict:
        return {
            "history": {key: list(values) for key, values in self.history.items()},
            "iteration_loss": np.asarray(self.iteration_loss, dtype=np.float64),
        }

    def load_state_dict(self, state: dict) -> None:
        self.history = OrderedDict((key, [float(v) for v in values]) for key, values in state["history"].items())
        self.iteration_loss = [float(v) for v in np.asarray(state.get("iteration_loss", ()))]


def summary_line(epoch: int, epochs: int, logs: dict) -> str:
    """The one-line epoch summary :class:`ProgressBar` prints (``epoch`` counted from 1)."""
    parts = [f"epoch {epoch}/{epochs}", f"loss {logs['loss']:.4f}", f"acc {logs['accuracy']:.4f}"]
    if "val_loss" in logs:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts += [f"lr {logs['lr']:.3g}", f"{logs['seconds']:.1f}s"]
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and accuracy (:func:`neural_networks.progress.progress_bar`:
    a widget in notebooks, text on a terminal, none in a log file or pipe), then a one-line summary.
    A fractional run counts its partial last epoch as one ("epoch 5/5" of 4.5), and its summary
    ends with the batches it trained. What ``verbose=1`` adds."""

    def __init__(self) -> None:
        self._bar = None
        self._loss_sum, self._seen = 0.0, 0
        self._partial = ""  # the summary's note of a partial epoch's batches

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        from .progress import progress_bar
        from .training import epoch_batches, epoch_count

        self._close()
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        total = epoch_batches(epochs, epoch, steps) if epochs is not None and steps else steps
        self._partial = f"  ({total} of {steps} batches)" if steps and total != steps else ""
        self._bar = progress_bar(
            total=total,
            desc=f"epoch {epoch + 1}/{epoch_count(epochs) if epochs is not None else '?'}",
            leave=False,
            unit="batch",
            dynamic_ncols=True,
            disable=None,  # off a terminal, only the summary lines
        )
        self._loss_sum, self._seen = 0.0, 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._loss_sum += logs["loss"]
        self._seen += 1
        if self._bar is not None:
            self._bar.set_postfix(
                loss=f"{self._loss_sum / self._seen:.4f}", acc=f"{logs['accuracy']:.3f}", refresh=False
            )
            self._bar.update()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        from .training import epoch_count

        self._close()
        epochs = epoch_count((self.params or {}).get("epochs", epoch + 1))
        print(summary_line(epoch + 1, epochs, logs) + self._partial, flush=True)

    def on_train_end(self, logs=None) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ---------------------------------------------------------------------------- monitoring
def _direction(monitor: str, mode: str, owner: str) -> str:
    """``"min"`` or ``"max"``; ``mode="auto"`` reads it from the name (losses down, accuracies up)."""
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"{owner}: monitor must be a metric name such as 'val_loss'; got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name.endswith("loss"):
        return "min"
    if name.endswith("accuracy") or name == "acc":
        return "max"
    raise ValueError(
        f"{owner}: mode='auto' cannot tell whether {monitor!r} should go down or up; pass mode='min' or mode='max'"
    )


def _missing(owner: str, monitor: str, logs: dict) -> ValueError:
    hint = (
        " (val_* values exist only when the data set holds validation examples)" if monitor.startswith("val_") else ""
    )
    return ValueError(
        f"{owner}: monitor={monitor!r} is not in the epoch's logs; available: {', '.join(logs) or 'none'}{hint}"
    )


def _finite(value: float):
    return float(value) if math.isfinite(value) else None


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
    """

    def __init__(self, directory, monitor: str = "val_accuracy", mode: str = "auto") -> None:
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = _direction(monitor, mode, "ModelCheckpoint")
        self.best = -math.inf if self.mode == "max" else math.inf
        self.epoch = 0  # epochs finished, as recorded in last.npz
        self.stopped = False  # whether a callback had stopped training when last.npz was written
        self.callbacks: CallbackList | None = None
        self._resumed: dict | None = None

    @property
    def last_path(self) -> Path:
        return self.directory / "last.npz"

    @property
    def best_path(self) -> Path:
        return self.directory / "best.npz"

    def set_callbacks(self, callbacks: CallbackList) -> None:
        self.callbacks = callbacks

    def _improved(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def _extra(self) -> dict:
        return {"epoch": self.epoch, "monitor": self.monitor, "best": _finite(self.best)}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None and self.monitor.startswith("val_"):
            value = logs.get(self.monitor[len("val_") :])
        if value is None:
            raise _missing("ModelCheckpoint", self.monitor, logs)
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
            "best": _finite(self.best),
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


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras's semantics).

    An epoch improves when its value beats the best so far by more than ``min_delta`` (lower
    for ``mode="min"``, higher for ``"max"``; ``"auto"``: ``min`` for losses, ``max`` for
    accuracies). After ``patience`` epochs in a row without improvement it sets
    ``model.stop_training`` (never after the first epoch). With ``restore_best_weights`` the
    model gets the parameters and buffers of its best epoch back when training ends.
    ``stopped_epoch`` (0-based; 0 if it never stopped) and ``best_epoch`` tell what happened.
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
        if isinstance(min_delta, bool) or not _number(min_delta) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be a non-negative number; got {min_delta!r}")
        if not isinstance(restore_best_weights, bool):
            raise ValueError(f"EarlyStopping: restore_best_weights must be true or false; got {restore_best_weights!r}")
        self.monitor = monitor
        self.mode = _direction(monitor, mode, "EarlyStopping")
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
        self._reset()  # an instance may be reused for another fit

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            raise _missing("EarlyStopping", self.monitor, logs)
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
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def state_dict(self) -> dict:
        state = {
            "wait": self.wait,
            "best": _finite(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }
        for i, weights in enumerate(self.best_weights or ()):
            state[f"weights.{i}"] = weights
        return state

    def load_state_dict(self, state: dict) -> None:
        self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])
        self.stopped_epoch = int(state.get("stopped_epoch", 0))
        if state.get("best") is not None:
            self.best = float(state["best"])
        weights = sorted(
            (int(key.split(".", 1)[1]), value) for key, value in state.items() if key.startswith("weights.")
        )
        self.best_weights = [np.array(value) for _, value in weights] or None


class FreezeParameters(Callback):
    """Freeze parameters of some layers from the start of epoch ``epoch`` (0-based) on, e.g.
    airbench's whitening layer, whose bias trains for the first few epochs only:
    ``{name: freeze, layers: [0], parameters: [b], epoch: 3}``.

    ``layers``: a layer index or a list of them (negative counts from the end); ``parameters``:
    ``true`` (all of each layer's parameters) or a list of names (see :meth:`Layer.freeze`);
    ``unfreeze=True`` trains them again from that epoch instead. The change is applied at the
    start of every epoch from ``epoch`` on, so a resumed run is in the same state as an
    uninterrupted one. Freezing from the start needs no callback: give the layer ``frozen``."""

    def __init__(self, layers, epoch: int, parameters=True, unfreeze: bool = False) -> None:
        indices = [layers] if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool) else layers
        if not isinstance(indices, (list, tuple)) or not indices or not all(_index(i) for i in indices):
            raise ValueError(f"FreezeParameters: layers must be a layer index or a list of them; got {layers!r}")
        if not _index(epoch) or epoch < 0:
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
        n = len(self.model.layers)
        for i in self.layers:
            if not -n <= i < n:
                raise ValueError(f"FreezeParameters: layer {i} does not exist (the model has {n} layers)")
            self.model.layers[i]._parameter_set(self.parameters)  # a wrong name fails before any epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if epoch >= self.epoch:
            for i in self.layers:
                layer = self.model.layers[i]
                (layer.unfreeze if self.unfreeze else layer.freeze)(self.parameters)


def _weights_and_buffers(model) -> list[np.ndarray]:
    """The model's parameters and buffers, the arrays themselves, in get_weights order."""
    return [
        value
        for layer in model.layers
        for group in (layer.parameters, getattr(layer, "buffers", {}))
        for value in group.values()
    ]


def _index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class ExponentialMovingAverage(Callback):
    """Keep an exponential moving average of the weights and evaluate with it (Polyak averaging;
    timm's ``ModelEmaV2``, Keras' ``use_ema``; airbench's lookahead is a close relative).

    After every ``every``-th training step: ``ema <- d * ema + (1 - d) * w`` for every parameter
    and buffer (batch-norm running statistics too), ``d = decay``, or with ``warmup``
    ``min(decay, (1 + t) / (10 + t))`` at step ``t`` (so that early averages do not remember the
    initial weights). The averaged weights are what the model is evaluated with: the per-epoch
    validation, the checkpoints (``best.npz``/``last.npz`` hold them, so ``evaluate`` and
    ``predict`` use them) and the model after training. Training itself continues from the raw
    weights, which the callback's state keeps, so a resumed run equals an uninterrupted one."""

    def __init__(self, decay: float = 0.999, every: int = 1, warmup: bool = True) -> None:
        if isinstance(decay, bool) or not _number(decay) or not 0.0 < decay < 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in (0, 1); got {decay!r}")
        if not _index(every) or every < 1:
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
        self.average, self.raw, self.steps = None, None, 0  # a resumed fit's state arrives after this

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._swap_out()
        if self.average is None:  # the model's parameters exist once it has seen data
            self.average = [np.array(a, dtype=np.float64) for a in self._arrays()] or None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
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
        self._swap_in()

    def on_test_end(self, logs=None) -> None:
        self._swap_out()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._swap_in()  # the checkpoints written after this hold the average

    def on_train_end(self, logs=None) -> None:
        self._swap_in()
        self.raw = None  # the average stays: it is the trained model

    def state_dict(self) -> dict | None:
        if self.average is None:
            return None
        state = {"steps": self.steps}
        for i, value in enumerate(self.average):
            state[f"average.{i}"] = value
        for i, value in enumerate(self.raw or ()):
            state[f"raw.{i}"] = value
        return state

    def load_state_dict(self, state: dict) -> None:
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
    """Lookahead (Zhang et al. 2019) as airbench94 runs it: slow weights that the training
    weights are pulled back to every ``every`` steps.

    After every ``every``-th training step ``t`` (counted over the whole run, of ``T`` =
    epochs x steps per epoch): ``slow <- slow + (1 - d) * (w - slow)`` and then ``w <- slow`` for
    every parameter and buffer (batch-norm running statistics too), with ``d = decay`` or, with
    ``schedule: cubic`` (airbench's), ``d = decay * (t / T) ** 3``: no pull at the start, the
    strongest at the end. At the end of the last epoch (or when a callback stops training) the
    weights become the slow weights, before the checkpoint of that epoch is written, so
    ``last.npz`` holds the trained model. Per-epoch validation sees the training weights. The slow
    weights (float64) are the callback's state, so a resumed run equals an uninterrupted one.
    airbench's defaults: ``every: 5``, ``decay: 0.95 ** 5``."""

    SCHEDULES = ("constant", "cubic")

    def __init__(self, decay: float = 0.95**5, every: int = 5, schedule: str = "cubic") -> None:
        if isinstance(decay, bool) or not _number(decay) or not 0.0 <= decay < 1.0:
            raise ValueError(f"Lookahead: decay must be in [0, 1); got {decay!r}")
        if not _index(every) or every < 1:
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
        self.slow, self.steps = None, 0  # a resumed fit's state arrives after this

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if self.slow is None:
            self.slow = [np.array(a, dtype=np.float64) for a in self._arrays()] or None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self._pull(self._decay())

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 >= math.ceil(self.params["epochs"]) or self.model.stop_training:
            self._pull(1.0)  # the weights become the slow weights

    def state_dict(self) -> dict | None:
        if self.slow is None:
            return None
        return {"steps": self.steps, **{f"slow.{i}": value for i, value in enumerate(self.slow)}}

    def load_state_dict(self, state: dict) -> None:
        items = sorted((int(k.split(".", 1)[1]), v) for k, v in state.items() if k.startswith("slow."))
        self.steps = int(state["steps"])
        self.slow = [np.array(v, dtype=np.float64) for _, v in items] or None


class _Deferred:
    """A registry entry for a callback class defined in a module that imports this one (so it
    cannot be imported here without a cycle): the module is imported when the entry is first
    built or its signature read (which is what the registry checks arguments against)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def load(self):
        return getattr(importlib.import_module(self.module, __package__), self.name)

    @property
    def __signature__(self):
        return inspect.signature(self.load())

    def __call__(self, *args, **kwargs):
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.name} of {self.module}, imported when built>"


CALLBACKS = Registry("callback")
CALLBACKS.add("early_stopping", EarlyStopping, aliases=("earlystopping",))
CALLBACKS.add("freeze", FreezeParameters, aliases=("freeze_parameters",))
CALLBACKS.add("ema", ExponentialMovingAverage, aliases=("exponential_moving_average",))
CALLBACKS.add("lookahead", Lookahead)
CALLBACKS.add("model_checkpoint", ModelCheckpoint, aliases=("modelcheckpoint", "checkpoint"))
# neural_networks.tensorboard subclasses Callback; it imports the tensorboard package only when built
CALLBACKS.add("tensorboard", _Deferred(".tensorboard", "TensorBoard"))


def initialize_callback(name: str, **kwargs) -> Callback:
    """Build the callback registered as ``name`` (see :data:`CALLBACKS`) from keyword arguments."""
    return CALLBACKS.create(name, **kwargs)
