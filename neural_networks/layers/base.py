"""The layer base classes and the helpers every layer module shares.

Every layer has the spec's attributes ``parameters``, ``gradients`` (same keys),
``cache`` (all ``OrderedDict``), ``activation``, ``n_in`` and ``n_out``, and the methods
``forward(X)``, ``backward(dLdY)`` and ``clear_gradients()``. Parameters are created on the
first forward pass, from the input's shape.

Dtypes: a layer computes in the floating dtype of its input (float32 for training, float64 for
gradient checks); integer input (e.g. uint8 pixels) is converted to float32. Parameters made by
a first forward pass on float64 input are float64 (so the course's gradient check, which
perturbs ``layer.parameters[name]`` by 1e-6, sees no float32 rounding), and float32 otherwise
(training); a direct call of ``_init_parameters(X_shape)`` makes float64 parameters, as the
course's own helper did. A layer's ``n_out`` may be ``None`` until a model sizes its output
layer from the data set it trains on.

Call order: ``backward`` (and ``backward_preactivation``) differentiate the last *completed*
``forward`` pass. Called before any, after one that raised, or after the parameters were made
anew (``_init_parameters``, ``fit_to_data``), they raise a ``RuntimeError`` saying so, for every
layer class (the :class:`Layer` base class wraps the methods of each subclass, see
:func:`_check_call_order`). Calling ``backward`` again after one ``forward`` is allowed and gives
the same result: gradients are overwritten, not accumulated, and the cache is left as it was
(the course's gradient check runs backward, then many forward passes of its own).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from ..activations import Activation
from ..validation import positive_int
from ..weights import initialize_weights

__all__ = ["Layer", "ActivatedLayer"]


def _as_float(X, where: str) -> np.ndarray:
    """``X`` as a floating array (integers and booleans become float32)."""
    X = np.asarray(X)
    if X.dtype.kind == "f":
        return X
    if X.dtype.kind in "biu":
        return X.astype(np.float32)
    raise TypeError(f"{where}: expected a numeric array, got dtype {X.dtype}")


def _param_dtype(X: np.ndarray):
    """The dtype of parameters made for input ``X``: float64 for float64 input, else float32."""
    return np.float64 if X.dtype == np.float64 else np.float32


def _output_size(n_out, what: str) -> int | None:
    """``n_out`` as a positive int, or ``None`` (sized later from the data set)."""
    return None if n_out is None else positive_int(n_out, what)


def _check_call_order(cls, name: str) -> None:
    """Wrap ``cls.<name>`` (if ``cls`` defines it and it is not abstract): ``forward`` records whether
    it completed; ``backward`` / ``backward_preactivation`` refuse to run unless it did."""
    method = cls.__dict__.get(name)
    if method is None or getattr(method, "__isabstractmethod__", False):
        return
    if name == "forward":

        @functools.wraps(method)
        def checked(self, *args, **kwargs):
            self._forwarded = False  # a forward pass that raises leaves no consistent cache
            Y = method(self, *args, **kwargs)
            self._forwarded = True
            return Y

    else:

        @functools.wraps(method)
        def checked(self, *args, **kwargs):
            if not getattr(self, "_forwarded", False):
                at = "" if self.index is None else f" in layer {self.index}"
                raise RuntimeError(
                    f"{type(self).__name__}.{name} called before forward{at} (no cached input from a completed "
                    "forward pass); call forward(X) first"
                )
            return method(self, *args, **kwargs)

    setattr(cls, name, checked)


class Layer(ABC):
    """Base class of all layers.

    ``rng`` is the ``numpy.random.Generator`` the layer's initializers draw from (the model
    sets one derived from its seed); ``training`` switches layers whose behaviour differs
    between training and evaluation.
    """

    # Whether the layer's kernels split the batch over threads (:mod:`neural_networks.functional.parallel`);
    # a model containing one runs its steps in a parallel region. A property where it depends on
    # the kernel switch (Conv2D).
    splits_batch = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # Here rather than in each layer: every layer, also one written outside this package, gets
        # the same call-order error instead of a KeyError from its cache.
        for name in ("forward", "backward", "backward_preactivation"):
            _check_call_order(cls, name)

    def __init__(self) -> None:
        self.activation: Activation | None = None
        self.n_in: int | None = None
        self.n_out: int | None = None
        self.parameters: OrderedDict[str, np.ndarray] = OrderedDict()
        self.gradients: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache: OrderedDict[str, object] = OrderedDict()
        self.buffers: OrderedDict[str, np.ndarray] = OrderedDict()  # non-trained state, saved with the model
        self.rng: np.random.Generator | None = None
        self.training = True
        self.index: int | None = None  # position in a model, for error messages
        # Compute dL/dX in backward. A model turns this off for its first layer, whose input
        # gradient nobody uses (backward then returns None); it saves a large matrix product.
        self.input_gradient = True
        # Parameters the optimizer leaves alone (see freeze); their gradients are still computed.
        self.frozen: set[str] = set()
        # Whether fit_to_data must see training inputs before the first epoch (patch whitening).
        self.needs_data = False
        self._workspace: dict = {}  # reusable scratch buffers, keyed by shape
        self._forwarded = False  # whether a forward pass completed since the parameters were made

    # -- interface -------------------------------------------------------------------
    @abstractmethod
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Output of the layer for a batch ``X``; caches what ``backward`` needs."""

    @abstractmethod
    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """Given ``dL/dY`` for the last forward output, fill ``gradients`` and return ``dL/dX``.
        ``ValueError`` for a ``dL/dY`` that does not fit the output; ``RuntimeError`` before a completed
        :meth:`forward` (see the module docstring)."""

    def config(self) -> dict:
        """Constructor arguments (with ``name`` for :func:`initialize_layer`), JSON-serialisable."""
        return {"name": self.name}

    name = ""
    stochastic = False  # True for layers that draw random numbers while training (dropout)
    # The optimizer group of each parameter (see neural_networks.optimizers): what a layer says
    # about its parameters, so that nothing parses parameter names.
    parameter_groups: dict[str, str] = {"W": "weights", "b": "biases"}

    def parameter_group(self, key: str) -> str:
        """The optimizer group of parameter ``key``: ``"weights"``, ``"biases"`` or ``"normalization"``."""
        try:
            return self.parameter_groups[key]
        except KeyError:
            raise ValueError(
                f"{self.where}: parameter {key!r} belongs to no optimizer group "
                f"(known: {', '.join(self.parameter_groups)})"
            ) from None

    # -- freezing ---------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The names of the parameters this layer has, or will have after its first forward pass
        (``freeze`` checks names against them before the arrays exist)."""
        return ()

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter (in :attr:`parameter_names` order) that a first forward pass
        on input with ``n_in`` features (or channels) makes; ``{}`` for a layer without parameters.
        A model file's arrays are checked against these. Raises ``ValueError`` where the shape is
        not yet known (``n_out`` left to the data set)."""
        return {}

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """The shape of each buffer (e.g. batch-norm running statistics) for ``n_in`` features,
        as :meth:`parameter_shapes`; ``{}`` for a layer without buffers."""
        return {}

    def freeze(self, names=True) -> "Layer":
        """Stop training parameters (PyTorch's ``requires_grad_(False)``, Keras' ``trainable =
        False``): ``True`` freezes all of them, a name or list of names (e.g. ``["W"]``) those,
        ``False`` none. Frozen parameters keep their values; the optimizer skips them. Their
        gradients are still computed where a trained layer lies below, which needs ``dL/dX``;
        layers at the network's start with nothing left to train get no backward pass at all
        (see :meth:`NeuralNetwork.backward`). Returns the layer."""
        self.frozen |= self._parameter_set(names)
        return self

    def unfreeze(self, names=True) -> "Layer":
        """Train ``names`` again (``True``: every parameter). Returns the layer."""
        self.frozen -= self._parameter_set(names)
        return self

    def _parameter_set(self, names) -> set[str]:
        if names is True:
            return set(self.parameter_names)
        if names is False or names is None:
            return set()
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.parameter_names]
        if unknown:
            valid = ", ".join(self.parameter_names) or "none"
            raise ValueError(
                f"{self.where}: no parameter {', '.join(map(repr, unknown))} to freeze (parameters: {valid})"
            )
        return set(names)

    # -- shared helpers ---------------------------------------------------------------
    def clear_gradients(self) -> None:
        """Set every gradient to zeros shaped like its parameter."""
        for key, param in self.parameters.items():
            self.gradients[key] = np.zeros_like(param)

    def train(self, mode: bool = True) -> "Layer":
        """Set training (``True``) or evaluation (``False``) behaviour (dropout and batch norm
        differ); returns the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        """Evaluation behaviour: ``train(False)``; returns the layer."""
        return self.train(False)

    def forward_with_param(self, param_name: str, X: np.ndarray):
        """``f(value) -> forward(X)`` with parameter ``param_name`` set to ``value`` (for
        numerical gradient checks)."""

        def inner(value: np.ndarray) -> np.ndarray:
            self.parameters[param_name] = value
            return self.forward(X)

        return inner

    @property
    def where(self) -> str:
        """How error messages name this layer."""
        cls = type(self).__name__
        return cls if self.index is None else f"{cls} (layer {self.index})"

    def _get_parameters(self) -> list:
        """The parameter arrays, in order (the course's helper)."""
        return list(self.parameters.values())

    def _get_cache(self) -> list:
        """The cached values, in order (the course's helper)."""
        return list(self.cache.values())

    def _get_gradients(self) -> list:
        """The gradient arrays, in order (the course's helper)."""
        return list(self.gradients.values())

    def _check_output_size(self) -> None:
        if self.n_out is None:
            raise ValueError(
                f"{self.where}: n_out is None, so the layer's output size is unknown. Set n_out, or train the "
                "model on a data set first: a model sizes its output layer from dataset.out_dim"
            )

    def _check_rank(self, X: np.ndarray, rank: int, layout: str) -> None:
        if X.ndim != rank:
            raise ValueError(f"{self.where}: expected input of rank {rank} {layout}, got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{self.where}: got an empty batch, shape {X.shape}")

    def _check_features(self, got: int, what: str, shape) -> None:
        if self.n_in is not None and got != self.n_in:
            raise ValueError(
                f"{self.where}: expected {self.n_in} input {what} (the parameters were made for that), "
                f"got {got} in input of shape {tuple(shape)}"
            )

    def _check_grad_shape(self, dLdY: np.ndarray, expected) -> np.ndarray:
        dLdY = np.asarray(dLdY)
        if dLdY.shape != tuple(expected):
            raise ValueError(
                f"{self.where}: backward expected dLdY of shape {tuple(expected)} (the forward output), got {dLdY.shape}"
            )
        return dLdY

    def _param(self, key: str, dtype) -> np.ndarray:
        """Parameter ``key`` in the compute dtype (no copy when it already matches)."""
        return self.parameters[key].astype(dtype, copy=False)

    def _buffer(self, name: str, shape, dtype) -> np.ndarray:
        """A scratch array kept between calls for one shape and dtype, so that batches of one size
        reuse its memory instead of faulting in a fresh allocation every step."""
        key = (name, tuple(shape), np.dtype(dtype))
        buffer = self._workspace.get(key)
        if buffer is None:
            if len(self._workspace) >= 4:  # e.g. a smaller last batch, or evaluation batches
                self._workspace.clear()
            buffer = self._workspace[key] = np.zeros(shape, dtype=dtype)
        return buffer

    def _store_gradient(self, key: str, grad: np.ndarray) -> None:
        self.gradients[key] = grad.astype(self.parameters[key].dtype, copy=False)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ActivatedLayer(Layer):
    """A layer computing ``Y = activation(Z)`` from a pre-activation ``Z`` it computes itself
    (:class:`FullyConnected`, :class:`Conv2D`, :class:`BatchNorm`).

    Its operation in :mod:`neural_networks.functional` applies the activation too (and decides
    whether a fast kernel fuses it) and returns the cache the layer keeps:

    * :meth:`backward` is :meth:`_backward` with the layer's activation: ``dL/dY`` through the
      activation's gradient, then through the layer's own;
    * :meth:`backward_preactivation` is :meth:`_backward` without it, from ``dL/dZ``: a model
      ending in softmax with a cross-entropy loss computes ``dL/dZ`` from ``Z`` directly and stably;
    * :meth:`preactivation` is the last forward pass's ``Z``, or ``None`` where a fast kernel kept
      only what the activation's gradient needs (the output of a fused ReLU, GELU's slope).
    """

    def preactivation(self) -> np.ndarray | None:
        """The pre-activation ``Z`` of the last forward pass, or ``None`` when the fast kernels kept
        only the output of a fused ReLU or GELU's slope (or before any forward pass)."""
        return self.cache.get("Z")

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """Fill ``gradients`` and return ``dL/dX`` given ``dL/dY`` (the forward output's shape)."""
        return self._backward(self._upstream(dLdY), self.activation)

    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        """Fill ``gradients`` and return ``dL/dX`` given ``dL/dZ`` (the gradient before the
        activation); ``dLdZ`` is left unchanged."""
        return self._backward(self._upstream(dLdZ), None)

    @abstractmethod
    def _backward(self, dL: np.ndarray, activation) -> np.ndarray:
        """The backward pass from ``dL``: ``dL/dY`` through ``activation``'s gradient, or ``dL/dZ``
        when ``activation`` is ``None``; shape-checked and in the compute dtype."""

    def _upstream(self, dL: np.ndarray) -> np.ndarray:
        """``dL`` checked against the forward output's shape and cast to the compute dtype (those of
        the array the forward pass kept for the activation's gradient: ``Z``, ``Y`` or ``S``)."""
        cache = self.cache
        kept = cache["Z"] if "Z" in cache else cache["Y"] if "Y" in cache else cache["S"]
        return self._check_grad_shape(dL, kept.shape).astype(kept.dtype, copy=False)


class _ParametricLayer(ActivatedLayer):
    """An :class:`ActivatedLayer` whose pre-activation is affine in a weight ``W`` and an
    optional bias ``b`` (:class:`FullyConnected`, :class:`Conv2D`)."""

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("W", "b") if self.use_bias else ("W",)

    def _init(self, shapes: dict, weight_init: str, dtype) -> None:
        """Draw ``W`` from the initializer and zero ``b`` (skipped without a bias), in ``dtype``."""
        init_W = initialize_weights(weight_init, activation=self.activation.name)
        self.parameters = OrderedDict(W=init_W(shapes["W"], rng=self.rng, dtype=dtype))
        if self.use_bias:
            self.parameters["b"] = np.zeros(shapes["b"], dtype=dtype)
        self.clear_gradients()
        self.cache = OrderedDict()
        self._forwarded = False

    def _bias(self, dtype) -> np.ndarray | None:
        """``b`` in the compute dtype, or ``None`` for a layer made with ``use_bias=False``."""
        return self._param("b", dtype) if self.use_bias else None
