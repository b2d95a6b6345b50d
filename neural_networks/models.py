"""The model: a stack of layers, a loss and an optimizer: the passes, the training step,
inference and evaluation. The epoch loop lives in :mod:`neural_networks.training`
(:meth:`NeuralNetwork.train` delegates to its ``fit``), files in :mod:`neural_networks.serialization`.

The model imports neither the loop nor the callbacks, which drive it; the two seams are filled
from above: :mod:`neural_networks.training` sets :attr:`NeuralNetwork.training_loop` (the package
imports it), and this module names :class:`NeuralNetwork` as the class
:mod:`~neural_networks.serialization` builds when a caller gives none.

Two ways to build one: the spec's, ``NeuralNetwork(loss="cross_entropy", layer_args=[{"name":
"fully_connected", "n_out": 32, "activation": "relu"}, ...], optimizer_args={"name": "SGD", "lr":
0.05}, seed=0)`` (or :func:`initialize_model`), and the direct one from layer and optimizer
objects (:class:`NeuralNetwork`'s example).
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import serialization
from .epochs import check_epochs
from .functional import parallel
from .layers import ActivatedLayer, Layer, initialize_layer
from .losses import Loss, check_output_layer, initialize_loss
from .optimizers import Optimizer, initialize_optimizer
from .serialization import FORMAT
from .tta import check_tta, tta_views

__all__ = ["NeuralNetwork", "initialize_model", "FORMAT"]


def _accuracy_counts(Y: np.ndarray, Y_hat: np.ndarray) -> int:
    return int(np.count_nonzero(Y_hat.argmax(axis=1) == Y.argmax(axis=1)))


#: Training inputs a data-dependent initialisation (patch whitening) sees (5,000, as arXiv:2404.00498 uses).
DATA_INIT_EXAMPLES = 5000


class NeuralNetwork:
    """A feed-forward network: its layers in order, a loss and an optimizer.

    Input ``X`` is ``(m, features)`` or NHWC images ``(m, rows, cols, channels)``, computed in
    its floating dtype (integers become float32); the output is the last layer's, ``(m, n_out)``;
    targets are one-hot (or regression) rows of that shape.

    Args:
        loss (str | Loss): a loss name (``"cross_entropy"``, ``"l2"``) or a :class:`Loss`.
        layer_args (list[dict] | None): the spec's layer dicts (``name`` and the layer's arguments).
        optimizer_args (dict | None): the spec's optimizer dict (``name``, ``lr``, ``lr_scheduler``, ...).
        logger (Callback | None): e.g. a :class:`neural_networks.logs.Logger`: every :meth:`train` runs it
            as a callback, with its checkpoint (objects of the older protocol,
            ``on_epoch_end(model, epoch, metrics)`` and ``on_train_end(model, history)``, work too).
        seed (int | None): seeds the weight initialisation (one generator per layer) and each epoch's
            dropout masks; ``None`` draws from NumPy's global state (``np.random.seed``), as the course's.
        layers (list[Layer] | None): the direct form of ``layer_args``: layer objects.
        optimizer (Optimizer | None): the direct form of ``optimizer_args``.

    Raises:
        ValueError: for both or neither of ``layer_args`` and ``layers``, both optimizer forms, an unknown
            name or argument, and (with an optimizer) a last layer that cannot make what the loss expects.

    Example:
        >>> from neural_networks import NeuralNetwork, FullyConnected, SGD
        >>> from neural_networks.datasets import initialize_dataset
        >>> data = initialize_dataset("iris", batch_size=25, seed=0)
        >>> model = NeuralNetwork(layers=[FullyConnected(16, "relu"), FullyConnected(3, "softmax")],
        ...                       loss="cross_entropy", optimizer=SGD(lr=0.05, momentum=0.9), seed=0)
        >>> history = model.train(data, epochs=20, verbose=0)
        >>> model.predict(data.test.sample()[0]).shape, model.test(data)["accuracy"] > 0.8
        ((25, 3), True)
    """

    #: The epoch loop :meth:`train` runs, ``fit(model, dataset, epochs, callbacks=..., verbose=...,
    #: initial_epoch=...)``: :func:`neural_networks.training.fit`, which that module sets here.
    training_loop = None

    def __init__(
        self,
        loss="cross_entropy",
        layer_args=None,
        optimizer_args=None,
        logger=None,
        seed=None,
        *,
        layers=None,
        optimizer=None,
    ) -> None:
        if (layer_args is None) == (layers is None):
            raise ValueError("give exactly one of layer_args (list of dicts) or layers (list of Layer objects)")
        if layers is None:
            if not isinstance(layer_args, (list, tuple)) or not layer_args:
                raise ValueError(f"layer_args must be a non-empty list of layer dicts; got {layer_args!r}")
            layers = [initialize_layer(**dict(args)) for args in layer_args]
        else:
            layers = list(layers)
            if not layers or not all(isinstance(layer, Layer) for layer in layers):
                raise ValueError("layers must be a non-empty list of Layer objects")
        if optimizer is not None and optimizer_args is not None:
            raise ValueError("give at most one of optimizer_args (dict) or optimizer (Optimizer)")
        if optimizer is None and optimizer_args is not None:
            optimizer = initialize_optimizer(**dict(optimizer_args))
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")

        self.layers: list[Layer] = layers
        self.n_layers = len(layers)
        self.layer_args = layer_args
        self.loss: Loss = initialize_loss(loss)
        self.optimizer: Optimizer | None = optimizer
        self.optimizer_args = optimizer_args
        self.logger = logger
        self.seed = seed
        self.training = True
        self.stop_training = False  # set by a callback to end training after the current epoch
        self.history = None  # the History of the latest fit (set by the loop)
        self._last_output = None
        layers[0].input_gradient = False  # nothing consumes dL/dX of the network's input
        # A seed gives every layer its own generator; without one, layers draw from NumPy's global
        # state, so the course's np.random.seed(...) before building a model makes it reproducible.
        seeds = np.random.SeedSequence(seed).spawn(len(layers)) if seed is not None else [None] * len(layers)
        for i, (layer, child) in enumerate(zip(layers, seeds)):
            layer.index = i
            if layer.rng is None and child is not None:
                layer.rng = np.random.default_rng(child)
        if optimizer is not None:  # a model that trains; without an optimizer the loss only reports
            check_output_layer(self.loss, layers[-1])

    # ------------------------------------------------------------------ core passes
    def parallel_region(self):
        """:func:`parallel.region` if a layer splits its batch over threads (convolutions), else a no-op.

        Inside the region numpy's BLAS runs single-threaded, so that no BLAS call of the step
        (dense layers, batch-norm sums) leaves BLAS worker threads spinning on the cores that
        the convolutions' batch threads need. Networks without convolutions keep BLAS's own
        threads for their dense products.
        """
        if any(layer.splits_batch for layer in self.layers):
            return parallel.region()
        return contextlib.nullcontext()

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Run ``X`` through every layer; returns the last layer's output. A ``ValueError`` of a
        layer after the first (e.g. images of another size reaching a dense layer) also names
        the shape of the network's input, which is what the caller can change."""
        Y = X
        with self.parallel_region():
            for layer in self.layers:
                try:
                    Y = layer.forward(Y)
                except ValueError as err:
                    if layer is self.layers[0]:
                        raise
                    raise ValueError(f"{err} (the network's input has shape {np.shape(X)})") from err
        self._last_output = Y
        return Y

    def backward(self, target: np.ndarray, out: np.ndarray) -> float:
        """Loss of ``out`` against ``target`` and the gradients of every layer.

        When the network ends in softmax and the loss is cross-entropy, and ``out`` is the
        output of the last :meth:`forward`, the gradient at the logits is computed fused and
        stably as ``(Y_hat - Y) / m`` (the loss from log-sum-exp), instead of chaining the two
        ill-conditioned backward passes. Returns the loss.
        """
        target = np.asarray(target)
        if target.shape != np.shape(out):
            raise ValueError(
                f"labels of shape {target.shape} do not match the network's output of shape {np.shape(out)} "
                "(targets must be one-hot with one column per output unit)"
            )
        with self.parallel_region():
            return self._backward(target, out)

    def _backward(self, target: np.ndarray, out: np.ndarray) -> float:
        last = self.layers[-1]
        fused = None
        if out is self._last_output and isinstance(last, ActivatedLayer):
            Z = last.preactivation()  # None when the layer kept only its (fused-kernel) output
            if Z is not None:
                fused = self.loss.preactivation_gradient(last.activation, Z, target)
        # A frozen prefix of the network (the patch-whitening layer once its bias is frozen) needs
        # no gradients at all: backward stops at the first layer that trains, which then skips
        # its own dL/dX, as PyTorch's autograd does below parameters that do not require grad.
        stop = self._first_trained_layer()
        first = self.layers[stop] if stop > 0 else None
        if first is not None:
            saved, first.input_gradient = first.input_gradient, False
        try:
            if fused is not None:
                loss, dZ = fused
                dX = last.backward_preactivation(dZ)
            else:
                loss = self.loss.forward(target, out)
                dX = last.backward(self.loss.backward(target, out))
            for layer in reversed(self.layers[stop:-1]):
                dX = layer.backward(dX)
        finally:
            if first is not None:
                first.input_gradient = saved
        return loss

    def _first_trained_layer(self) -> int:
        """Index of the first layer with a parameter that is not frozen (the last layer if none):
        the layers before it need no backward pass."""
        for i, layer in enumerate(self.layers):
            if any(name not in layer.frozen for name in layer.parameters):
                return i
        return len(self.layers) - 1

    def parameter_groups(self) -> list[dict]:
        """Every parameter with its gradient, grouped for the optimizer as each layer declares
        (``"weights"``, ``"biases"``, ``"normalization"``; see :mod:`.optimizers`), frozen ones left out:
        ``[{"name": group, "params": [(key, param, grad), ...]}, ...]``, keys ``"<param><layer index>"``."""
        groups: dict[str, list] = {}
        for i, layer in enumerate(self.layers):
            for name, param in layer.parameters.items():
                if name in layer.frozen:
                    continue
                groups.setdefault(layer.parameter_group(name), []).append((f"{name}{i}", param, layer.gradients[name]))
        return [{"name": name, "params": params} for name, params in groups.items()]

    def update(self, epoch: float) -> None:
        """Apply one optimizer step to every parameter (in place, by parameter group), then clear
        the gradients. ``epoch`` is the training progress the learning-rate schedule is evaluated at."""
        if self.optimizer is None:
            raise ValueError("this model has no optimizer; pass optimizer_args or optimizer= to train it")
        self.optimizer.step(self.parameter_groups(), epoch)
        for layer in self.layers:
            layer.clear_gradients()

    def train_mode(self, mode: bool = True) -> "NeuralNetwork":
        """Switch every layer between training (``True``) and evaluation (``False``) behaviour."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval_mode(self) -> "NeuralNetwork":
        """Evaluation behaviour for every layer: ``train_mode(False)``. Returns the model."""
        return self.train_mode(False)

    # ------------------------------------------------------------------ inference
    def _forward_tta(self, X: np.ndarray, tta: str) -> np.ndarray:
        """Forward pass of one batch, averaged over the test-time views of ``tta`` (see :mod:`.tta`)."""
        views = tta_views(X, tta)
        if len(views) == 1:
            return self.forward(X)
        return sum(weight * self.forward(view) for weight, view in views)

    def predict(self, X: np.ndarray, Y: np.ndarray | None = None, batch_size: int = 256, tta: str | None = None):
        """Network outputs for ``X`` in evaluation mode, computed ``batch_size`` examples at a
        time. With targets ``Y`` (the spec's form) returns ``(Y_hat, loss)``, else ``Y_hat``.

        ``tta`` (test-time augmentation, images only; see :mod:`neural_networks.tta`): ``"flip"``
        averages the outputs for each image and its mirror image, ``"flip_translate"`` adds
        one-pixel shifts; ``None`` / ``"none"`` uses the images as they are.

        An empty ``X`` (``(0, ...)``) gives an empty output, ``(0, n_out)`` in the dtype a batch
        would have, after the same checks of its feature shape and ``tta``; with ``Y`` it raises
        ``ValueError`` (a loss over no examples is undefined).
        """
        tta = check_tta(tta)
        if Y is not None and len(X) == 0:
            raise ValueError(f"predict: cannot compute a loss over no examples (X has shape {np.shape(X)})")
        was_training = self.training
        self.eval_mode()
        try:
            with self.parallel_region():
                outputs = [self._forward_tta(X[i : i + batch_size], tta) for i in range(0, len(X), batch_size)]
                if not outputs:
                    outputs = [self._empty_output(X, tta)]
        finally:
            self.train_mode(was_training)
        Y_hat = np.concatenate(outputs)
        if Y is None:
            return Y_hat
        return Y_hat, self.loss.forward(np.asarray(Y), Y_hat)

    def _empty_output(self, X, tta: str) -> np.ndarray:
        """The ``(0, ...)`` output for the empty batch ``X``: layers refuse empty batches, so one
        example of zeros of ``X``'s feature shape and dtype is run (in evaluation mode, which
        draws no random numbers and updates no statistics), and none of its rows kept."""
        X = np.asarray(X)
        try:
            return self._forward_tta(np.zeros((1, *X.shape[1:]), dtype=X.dtype), tta)[:0]
        except ValueError as err:
            raise ValueError(f"{err} (checking an empty batch of shape {X.shape} as one example)") from err

    def predict_classes(self, X: np.ndarray, batch_size: int = 256, tta: str | None = None) -> np.ndarray:
        """Index of the largest output for each example, ``(m,)`` (``tta`` as in :meth:`predict`)."""
        return self.predict(X, batch_size=batch_size, tta=tta).argmax(axis=1)

    def evaluate(self, loader, tta: str | None = None) -> dict:
        """Mean loss and accuracy over every batch of ``loader`` (in evaluation mode; only one
        batch of activations is alive at a time; ``tta`` as in :meth:`predict`). Empty batches
        add nothing; a loader with no examples at all raises ``ValueError`` (the mean is undefined)."""
        tta = check_tta(tta)
        was_training = self.training
        self.eval_mode()
        total_loss, correct, count = 0.0, 0, 0
        try:
            for X, Y in loader:
                if Y is None:
                    raise ValueError("cannot evaluate on a split without labels (use predict on its inputs)")
                m = Y.shape[0]
                if m == 0 and len(X) == 0:  # nothing to add (layers refuse empty batches)
                    continue
                Y_hat = self._forward_tta(X, tta)
                total_loss += self.loss.forward(Y, Y_hat) * m
                correct += _accuracy_counts(Y, Y_hat)
                count += m
        finally:
            self.train_mode(was_training)
        if count == 0:
            raise ValueError("cannot evaluate on an empty split")
        return {"loss": total_loss / count, "accuracy": correct / count}

    def test(self, dataset, save_predictions: bool = False, tta: str | None = None) -> dict:
        """Loss, accuracy and error (1 - accuracy) on ``dataset.test``; with ``save_predictions``
        also the predicted class of every test example (``"predictions"``, in the loader's order)."""
        result = self.evaluate(dataset.test, tta=tta)
        result["error"] = 1.0 - result["accuracy"]  # the course's figure
        if save_predictions:
            result["predictions"] = (
                np.concatenate([self.predict_classes(X, tta=tta) for X, _ in dataset.test])
                if len(dataset.test)
                else np.empty(0, int)
            )
        return result

    @staticmethod
    def error(target: np.ndarray, out: np.ndarray) -> float:
        """Classification error of outputs ``out`` against one-hot ``target`` (the spec's name):
        the fraction of rows whose largest output is not the labelled class."""
        target, out = np.asarray(target), np.asarray(out)
        if target.shape != out.shape or target.ndim != 2:
            raise ValueError(
                f"error expects targets and outputs of the same (m, k) shape, got {target.shape} and {out.shape}"
            )
        return 1.0 - _accuracy_counts(target, out) / target.shape[0]

    # ------------------------------------------------------------------ training
    def train_step(self, X: np.ndarray, Y: np.ndarray, epoch: float) -> tuple[float, int]:
        """One mini-batch: forward, backward, update. Returns ``(loss, correct predictions)``.
        With convolutions it runs in one parallel region (see :meth:`parallel_region`)."""
        with self.parallel_region():
            Y_hat = self.forward(X)
            loss = self.backward(Y, Y_hat)
            correct = _accuracy_counts(Y, Y_hat)
            self.update(epoch)
        return loss, correct

    def train(
        self,
        dataset,
        epochs: int | float,
        verbose: int = 1,
        start_epoch: int = 0,
        history=None,
        callbacks=None,
    ):
        """Train on ``dataset.train`` for ``epochs`` epochs from epoch ``start_epoch``, evaluating on
        ``dataset.validate`` after each (if it has examples). ``verbose``: 0 silent, 1 a progress
        bar per epoch and a summary line; ``history``: a :class:`History` to append to;
        ``callbacks``: more callbacks (see :mod:`neural_networks.callbacks`). Returns the
        :class:`History`. The loop is :func:`neural_networks.training.fit` (:attr:`training_loop`).
        ``epochs`` may have a fraction, as in configs: ``2.5`` trains half of the third epoch's
        batches. Raises ``ValueError`` for ``epochs`` that is not a non-negative number."""
        epochs = check_epochs(epochs)
        given = ([history] if history is not None else []) + list(callbacks or [])
        return self.training_loop(
            self, dataset, start_epoch + epochs, callbacks=given, verbose=verbose, initial_epoch=start_epoch
        )

    def size_output_layer(self, dataset) -> None:
        """Give an output layer made with ``n_out=None`` (the course's starter scripts leave it to
        the data) the data set's output size, ``dataset.out_dim``. A no-op once it has one."""
        last = self.layers[-1]
        if getattr(last, "n_out", 0) is not None or "n_out" not in last.config():
            return
        out_dim = getattr(dataset, "out_dim", None)
        if isinstance(out_dim, bool) or not isinstance(out_dim, (int, np.integer)) or out_dim < 1:
            raise ValueError(
                f"the output layer {last.where} has n_out=None and the data set gives no usable "
                f"out_dim ({out_dim!r}) to size it; set n_out in the layer's arguments"
            )
        last.n_out = int(out_dim)

    def fit_to_data(self, loader, examples: int = DATA_INIT_EXAMPLES) -> None:
        """Initialise the layers that need training data (``needs_data``: a Conv2D with
        ``weight_init="patch_whitening"``) from the first ``examples`` inputs of ``loader`` in the
        data set's order (not shuffled), without augmentation, passed through the layers before them in evaluation mode.
        A no-op when no layer needs it; :func:`~neural_networks.training.fit` calls it before a
        run's first epoch (a resumed run's layers come from its checkpoint)."""
        pending = [i for i, layer in enumerate(self.layers) if layer.needs_data]
        if not pending:
            return
        settings = {key: getattr(loader, key) for key in ("augmenting", "shuffling") if hasattr(loader, key)}
        for key in settings:  # the data set's own order, as stored: the same sample whatever the seed
            setattr(loader, key, False)
        try:
            batches, count = [], 0
            for X, _ in loader:
                batches.append(X[: examples - count])
                count += batches[-1].shape[0]
                if count >= examples:
                    break
        finally:
            for key, value in settings.items():
                setattr(loader, key, value)
        if not count:
            raise ValueError(f"{self.layers[pending[0]].where} needs training data to initialise; the loader is empty")
        A = np.concatenate(batches)
        training = self.training
        self.train_mode(False)
        try:
            for i, layer in enumerate(self.layers[: pending[-1] + 1]):
                if layer.needs_data:
                    layer.fit_to_data(A)
                if i < pending[-1]:
                    A = layer.forward(A)
        finally:
            self.train_mode(training)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter and buffer (e.g. batch-norm running statistics), layer by
        layer in :attr:`layers` order (Keras's name)."""
        return [
            np.array(value)
            for layer in self.layers
            for group in (layer.parameters, getattr(layer, "buffers", {}))
            for value in group.values()
        ]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (as :meth:`get_weights` returns them) into the parameters and buffers, in place."""
        targets = [
            value
            for layer in self.layers
            for group in (layer.parameters, getattr(layer, "buffers", {}))
            for value in group.values()
        ]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(
                f"set_weights: the model has {len(targets)} parameter and buffer arrays, got {len(weights)}"
            )
        for i, (target, value) in enumerate(zip(targets, weights)):
            if np.shape(value) != target.shape:
                raise ValueError(f"set_weights: array {i} has shape {np.shape(value)}, expected {target.shape}")
        for target, value in zip(targets, weights):
            np.copyto(target, value)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """Architecture, loss and optimizer as plain JSON-serialisable data."""
        return serialization.model_config(self)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter (``layers.<i>.<name>``), buffer (``buffers.<i>.<name>``) and optimizer
        state array (``optimizer.<key>``)."""
        return serialization.model_arrays(self)

    def save(self, path, extra: dict | None = None) -> None:
        """Write architecture, parameters and optimizer state to one ``.npz`` file, atomically
        (:mod:`neural_networks.serialization`; no pickle). ``extra`` is JSON-serialisable
        metadata stored alongside (e.g. the epoch of a checkpoint)."""
        serialization.save_model(self, path, extra=extra)

    @classmethod
    def load(cls, path, logger=None) -> "NeuralNetwork":
        """Rebuild a model written by :meth:`save` or a checkpoint (also files of earlier
        versions); ``model.extra`` holds the file's metadata. No pickled objects are read.
        ``FileNotFoundError``, or a one-line ``ValueError`` for a damaged or inconsistent file."""
        return serialization.load_model(path, logger=logger, cls=cls)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"NeuralNetwork(\n  {inner},\n  loss={self.loss!r}, optimizer={type(self.optimizer).__name__})"


def initialize_model(
    name: str = "feed_forward", loss="cross_entropy", layer_args=None, optimizer_args=None, logger=None, seed=None
) -> NeuralNetwork:
    """The spec's factory: a :class:`NeuralNetwork` of ``layer_args`` and ``optimizer_args`` (raising
    as it does) whose ``name`` attribute is ``name`` (any name builds the same class)."""
    model = NeuralNetwork(loss=loss, layer_args=layer_args, optimizer_args=optimizer_args, logger=logger, seed=seed)
    model.name = name
    return model


# What serialization.load_model and load_checkpoint build when not given a class: this one (the
# model imports serialization to save and load itself, so serialization cannot import the model).
serialization.default_model_class = NeuralNetwork
