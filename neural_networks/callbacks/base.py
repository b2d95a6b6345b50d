"""The callback protocol: :class:`Callback`, whose hooks the fit loop
(:func:`neural_networks.training.fit`) calls around training, epochs and batches with Keras's
names and arguments, and :class:`CallbackList`, which calls them on every callback of a fit.

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
(JSON-serialisable values, or NumPy arrays); :class:`~neural_networks.callbacks.ModelCheckpoint`
stores the states of all callbacks of the run in ``last.npz`` and hands them back through
``load_state_dict`` when the resumed fit begins.
"""

from __future__ import annotations

__all__ = ["Callback", "CallbackList", "HOOKS"]

#: The hook names of the protocol, each called on every callback that overrides it.
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
    """Base class of callbacks: every hook does nothing (see the module docstring).

    Example:
        >>> from neural_networks import NeuralNetwork, FullyConnected, SGD
        >>> from neural_networks.callbacks import Callback
        >>> from neural_networks.datasets import initialize_dataset
        >>> class StopAt(Callback):
        ...     def __init__(self, level):
        ...         self.level = level
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         if logs["val_accuracy"] >= self.level:
        ...             self.model.stop_training = True  # training ends after this epoch
        >>> model = NeuralNetwork(layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
        ...                       optimizer=SGD(lr=0.1, momentum=0.9), seed=0)
        >>> history = model.train(initialize_dataset("iris", seed=0), 50, verbose=0, callbacks=[StopAt(0.9)])
        >>> history.epochs < 50, history["val_accuracy"][-1] >= 0.9
        (True, True)
    """

    model = None
    params: dict | None = None
    # Whether a resumed fit hands this callback its state before the others' (the History's
    # rows are what other states, the Logger's, refer to). A flag rather than an isinstance
    # test, so that this module needs no import of the History.
    _restored_first = False

    def set_model(self, model) -> None:
        """Set :attr:`model`, the model being trained (the fit loop calls this before training)."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Set :attr:`params` to a copy of the loop's ``epochs``, ``initial_epoch``, ``steps`` and ``verbose``."""
        self.params = dict(params)

    def on_train_begin(self, logs=None) -> None:
        """Called once before the first epoch; ``logs`` is empty."""

    def on_train_end(self, logs=None) -> None:
        """Called once after the last epoch (also after an early stop); ``logs``: the last epoch's."""

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Called before epoch ``epoch`` (0-based) trains; ``logs`` is empty."""

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Called after epoch ``epoch`` trained and was validated; ``logs``: ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy`` (with validation examples), ``lr``, ``seconds``."""

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        """Called before training step ``batch`` (0-based, per epoch); ``logs`` is empty."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Called after training step ``batch``; ``logs``: the batch's ``loss`` and the epoch's
        running ``accuracy``."""

    def on_test_begin(self, logs=None) -> None:
        """Called before an epoch's validation pass; ``logs`` is empty."""

    def on_test_end(self, logs=None) -> None:
        """Called after an epoch's validation pass; ``logs``: its ``loss`` and ``accuracy``."""

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

    Callbacks with a ``set_callbacks`` method (:class:`~neural_networks.callbacks.ModelCheckpoint`)
    receive the list, so that they can save and restore the states of the others."""

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
        """Give every callback the model (``set_model``, or its ``model`` attribute)."""
        for callback in self.callbacks:
            if hasattr(callback, "set_model"):
                callback.set_model(model)
            else:
                callback.model = model

    def set_params(self, params: dict) -> None:
        """Give every callback that has ``set_params`` the loop's parameters."""
        for callback in self.callbacks:
            if hasattr(callback, "set_params"):
                callback.set_params(params)

    def has(self, hook: str) -> bool:
        """Whether any callback overrides ``hook`` (the loop skips building logs otherwise)."""
        return bool(self._hooks[hook])

    def on_train_begin(self, logs=None) -> None:
        """Call ``on_train_begin(logs)`` on every callback that overrides it."""
        for method in self._hooks["on_train_begin"]:
            method(logs)

    def on_train_end(self, logs=None) -> None:
        """Call ``on_train_end(logs)`` on every callback that overrides it."""
        for method in self._hooks["on_train_end"]:
            method(logs)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Call ``on_epoch_begin(epoch, logs)`` on every callback that overrides it."""
        for method in self._hooks["on_epoch_begin"]:
            method(epoch, logs)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Call ``on_epoch_end(epoch, logs)`` on every callback that overrides it."""
        for method in self._hooks["on_epoch_end"]:
            method(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        """Call ``on_train_batch_begin(batch, logs)`` on every callback that overrides it."""
        for method in self._hooks["on_train_batch_begin"]:
            method(batch, logs)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Call ``on_train_batch_end(batch, logs)`` on every callback that overrides it."""
        for method in self._hooks["on_train_batch_end"]:
            method(batch, logs)

    def on_test_begin(self, logs=None) -> None:
        """Call ``on_test_begin(logs)`` on every callback that overrides it."""
        for method in self._hooks["on_test_begin"]:
            method(logs)

    def on_test_end(self, logs=None) -> None:
        """Call ``on_test_end(logs)`` on every callback that overrides it."""
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
        for key, callback in sorted(self._keyed(), key=lambda item: not getattr(item[1], "_restored_first", False)):
            if key in states and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(states[key])
