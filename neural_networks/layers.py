"""Layers: stateful wrappers that own parameters, gradients and a cache, and call the array
kernels in :mod:`neural_networks.functional`.

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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from . import functional as F
from .activations import Activation, ReLU, initialize_activation
from .validation import boolean, positive_int
from .weights import initialize_weights

__all__ = ["Layer", "FullyConnected", "Conv2D", "Pool2D", "Flatten", "BatchNorm", "Dropout", "LAYERS", "initialize_layer"]


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


def _pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair of positive ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{what} must be a positive int or a pair of positive ints; got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{what} must be positive; got {value!r}")
    return pair


class Layer(ABC):
    """Base class of all layers.

    ``rng`` is the ``numpy.random.Generator`` the layer's initializers draw from (the model
    sets one derived from its seed); ``training`` switches layers whose behaviour differs
    between training and evaluation.
    """

    # Whether the layer's kernels split the batch over threads (:mod:`neural_networks.parallel`);
    # a model containing one runs its steps in a parallel region.
    splits_batch = False

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
        self._workspace: dict = {}  # reusable scratch buffers, keyed by shape

    # -- interface -------------------------------------------------------------------
    @abstractmethod
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Output of the layer for a batch ``X``; caches what ``backward`` needs."""

    @abstractmethod
    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """Given ``dL/dY`` for the last forward output, fill ``gradients`` and return ``dL/dX``."""

    def config(self) -> dict:
        """Constructor arguments (with ``name`` for :func:`initialize_layer`), JSON-serialisable."""
        return {"name": self.name}

    name = ""
    stochastic = False  # True for layers that draw random numbers while training (dropout)

    # -- shared helpers ---------------------------------------------------------------
    def clear_gradients(self) -> None:
        """Set every gradient to zeros shaped like its parameter."""
        for key, param in self.parameters.items():
            self.gradients[key] = np.zeros_like(param)

    def train(self, mode: bool = True) -> "Layer":
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
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
            raise ValueError(f"{self.where}: backward expected dLdY of shape {tuple(expected)} (the forward output), got {dLdY.shape}")
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


class _ParametricLayer(Layer):
    """A layer computing ``activation(affine(X))``: the affine part is implemented by
    ``_affine_forward`` / ``_affine_backward``; the activation is shared."""

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        Z = self.cache["Z"]
        dLdY = self._check_grad_shape(dLdY, Z.shape)
        return self.backward_preactivation(self.activation.backward(Z, dLdY.astype(Z.dtype, copy=False)))

    @abstractmethod
    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        """Backward pass given ``dL/dZ`` (the gradient before the activation); used by the
        model for the fused softmax + cross-entropy gradient."""

    def _init(self, shapes: dict, weight_init: str, dtype) -> None:
        """Draw ``W`` from the initializer and zero ``b`` (skipped without a bias), in ``dtype``."""
        init_W = initialize_weights(weight_init, activation=self.activation.name)
        self.parameters = OrderedDict(W=init_W(shapes["W"], rng=self.rng, dtype=dtype))
        if self.use_bias:
            self.parameters["b"] = np.zeros(shapes["b"], dtype=dtype)
        self.clear_gradients()
        self.cache = OrderedDict()

    def _bias(self, dtype) -> np.ndarray | None:
        """``b`` in the compute dtype, or ``None`` for a layer made with ``use_bias=False``."""
        return self._param("b", dtype) if self.use_bias else None


class FullyConnected(_ParametricLayer):
    """``Y = activation(X @ W + b)``: ``X (m, n_in), W (n_in, n_out), b (1, n_out) -> Y (m, n_out)``.

    ``use_bias=False`` (as in Keras; PyTorch's ``bias=False``) leaves out ``b``, e.g. before a
    :class:`BatchNorm`, whose shift makes a bias redundant; ``parameters`` then holds only ``W``.
    ``n_out=None`` (the course's output layer) is filled in by the model from the data set.
    """

    name = "fully_connected"

    def __init__(self, n_out: int | None = None, activation="linear", weight_init: str = "xavier_uniform",
                 use_bias: bool = True) -> None:
        super().__init__()
        self.n_out = _output_size(n_out, "FullyConnected n_out")
        self.activation = initialize_activation(activation)
        initialize_weights(weight_init, activation=self.activation.name)  # validate the name now
        self.weight_init = weight_init
        self.use_bias = boolean(use_bias, "FullyConnected use_bias")

    def _init_parameters(self, X_shape, dtype=np.float64) -> None:
        """Create ``W (n_in, n_out)``, ``b (1, n_out)`` and zero gradients for input ``X_shape``."""
        self._check_output_size()
        self.n_in = int(X_shape[1])
        self._init({"W": (self.n_in, self.n_out), "b": (1, self.n_out)}, self.weight_init, dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        X = _as_float(X, self.where)
        self._check_rank(X, 2, "(batch, features)")
        if self.n_in is None:
            self._init_parameters(X.shape, _param_dtype(X))
        self._check_features(X.shape[1], "features", X.shape)
        Z = X @ self._param("W", X.dtype)
        if self.use_bias:
            Z += self._param("b", X.dtype)
        self.cache["X"] = X
        self.cache["Z"] = Z
        return self.activation(Z)

    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        X = self.cache["X"]
        dLdZ = dLdZ.astype(X.dtype, copy=False)
        self._store_gradient("W", X.T @ dLdZ)
        if self.use_bias:
            self._store_gradient("b", dLdZ.sum(axis=0, keepdims=True))
        return dLdZ @ self._param("W", X.dtype).T if self.input_gradient else None

    def config(self) -> dict:
        return {"name": self.name, "n_out": self.n_out, "activation": self.activation.name, "weight_init": self.weight_init,
                "use_bias": self.use_bias}


class Conv2D(_ParametricLayer):
    """2-D cross-correlation on NHWC input, as in the spec:
    ``Z[n, r, s, f] = sum_{i,j,c} W[i, j, c, f] * Xpad[n, r*stride + i, s*stride + j, c] + b[f]``.

    ``X (batch, rows, cols, in_channels), W (kh, kw, in_channels, n_out), b (1, n_out)
    -> Y (batch, out_rows, out_cols, n_out)`` with ``out = floor((in + 2*pad - k) / stride) + 1``.

    ``pad``: ``"same"`` ((k - 1) // 2 zeros on each side of each axis), ``"valid"`` (none), an
    int, or a pair of ints for rows and columns. ``use_bias=False`` leaves out ``b`` (for a
    convolution followed by :class:`BatchNorm`). ``n_out=None`` is filled in by a model from the
    data set, as for :class:`FullyConnected`.
    """

    name = "conv2d"
    splits_batch = True

    def __init__(self, n_out: int | None = None, kernel_shape=(3, 3), activation="relu", stride: int = 1, pad="same",
                 weight_init: str = "xavier_uniform", use_bias: bool = True) -> None:
        super().__init__()
        self.n_out = _output_size(n_out, "Conv2D n_out")
        self.kernel_shape = _pair(kernel_shape, "Conv2D kernel_shape")
        self.activation = initialize_activation(activation)
        self.stride = positive_int(stride, "Conv2D stride")
        self.pad_arg = pad
        self.pad = F.resolve_padding(pad, self.kernel_shape)
        initialize_weights(weight_init, activation=self.activation.name)
        self.weight_init = weight_init
        self.use_bias = boolean(use_bias, "Conv2D use_bias")

    def _init_parameters(self, X_shape, dtype=np.float64) -> None:
        """Create ``W (kh, kw, in_channels, n_out)``, ``b (1, n_out)`` for input ``X_shape``."""
        self._check_output_size()
        self.n_in = int(X_shape[3])
        kh, kw = self.kernel_shape
        self._init({"W": (kh, kw, self.n_in, self.n_out), "b": (1, self.n_out)}, self.weight_init, dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        X = _as_float(X, self.where)
        self._check_rank(X, 4, "(batch, rows, cols, channels)")
        _check_window_fits(self, X.shape, self.kernel_shape, self.pad)
        if self.n_in is None:
            self._init_parameters(X.shape, _param_dtype(X))
        self._check_features(X.shape[3], "channels", X.shape)
        kh, kw = self.kernel_shape
        out_hw = [F.conv_output_size(X.shape[1 + a], self.kernel_shape[a], self.pad[a], self.stride) for a in (0, 1)]
        # Training keeps the patches for dW in a buffer reused across batches; evaluation keeps
        # none (a backward pass after it regathers them chunk by chunk), so large inference batches stay small.
        cols = self._buffer("cols", (X.shape[0], *out_hw, kh, kw, X.shape[3]), X.dtype) if self.training else None
        # A ReLU is applied inside the kernel, chunk by chunk while the rows are in cache; only its
        # output is kept, whose positive entries are exactly those of Z (as BatchNorm does).
        relu = isinstance(self.activation, ReLU)
        Z, conv_cache = F.conv2d_forward(X, self._param("W", X.dtype), self._bias(X.dtype), self.stride, self.pad,
                                         cols=cols, keep_cols=self.training, relu=relu)
        self.cache = OrderedDict(conv=conv_cache)
        if relu:
            self.cache["Y"] = Z
            return Z
        self.cache["Z"] = Z
        return self.activation(Z)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        if "Y" not in self.cache:
            return super().backward(dLdY)
        Y = self.cache["Y"]
        dLdY = self._check_grad_shape(dLdY, Y.shape)
        return self._conv_backward(dLdY.astype(Y.dtype, copy=False), relu_output=Y)

    def backward_preactivation(self, dLdZ: np.ndarray) -> np.ndarray:
        dtype = (self.cache["Y"] if "Y" in self.cache else self.cache["Z"]).dtype
        return self._conv_backward(dLdZ.astype(dtype, copy=False))

    def _conv_backward(self, dL: np.ndarray, relu_output: np.ndarray | None = None) -> np.ndarray:
        dX, dW, db = F.conv2d_backward(dL, self._param("W", dL.dtype), self.cache["conv"], self.stride, self.pad,
                                       need_dX=self.input_gradient, need_db=self.use_bias, relu_output=relu_output)
        self._store_gradient("W", dW)
        if self.use_bias:
            self._store_gradient("b", db)
        return dX

    def config(self) -> dict:
        return {"name": self.name, "n_out": self.n_out, "kernel_shape": list(self.kernel_shape),
                "activation": self.activation.name, "stride": self.stride,
                "pad": list(self.pad_arg) if isinstance(self.pad_arg, tuple) else self.pad_arg,
                "weight_init": self.weight_init, "use_bias": self.use_bias}


def _check_window_fits(layer: Layer, X_shape, kernel_shape, pad) -> None:
    for axis, (size, k, p) in enumerate(zip(X_shape[1:3], kernel_shape, pad)):
        if k > size + 2 * p:
            what = "rows" if axis == 0 else "cols"
            raise ValueError(
                f"{layer.where}: kernel {tuple(kernel_shape)} is larger than the padded input: "
                f"{size} {what} + 2*{p} padding = {size + 2 * p} < {k} (input shape {tuple(X_shape)})"
            )


class Pool2D(Layer):
    """Max or average pooling on NHWC input over ``kernel_shape`` windows moved by ``stride``,
    with zero padding as in the spec. ``X (batch, rows, cols, c) -> (batch, out_rows, out_cols, c)``.
    Average pooling divides by the full window size."""

    name = "pool2d"
    MODES = ("max", "average")

    def __init__(self, kernel_shape=(2, 2), mode: str = "max", stride: int = 1, pad=0) -> None:
        super().__init__()
        self.kernel_shape = _pair(kernel_shape, "Pool2D kernel_shape")
        if mode not in self.MODES:
            raise ValueError(f"Pool2D mode must be one of {', '.join(self.MODES)}; got {mode!r}")
        self.mode = mode
        self.stride = positive_int(stride, "Pool2D stride")
        self.pad_arg = pad
        self.pad = F.resolve_padding(pad, self.kernel_shape)

    def forward(self, X: np.ndarray) -> np.ndarray:
        X = _as_float(X, self.where)
        self._check_rank(X, 4, "(batch, rows, cols, channels)")
        _check_window_fits(self, X.shape, self.kernel_shape, self.pad)
        self.n_in = self.n_out = X.shape[3]
        Y, pool_cache = F.pool2d_forward(X, self.kernel_shape, self.stride, self.pad, self.mode)
        self.cache["pool"] = pool_cache
        self.cache["out_shape"] = Y.shape
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        dLdY = self._check_grad_shape(dLdY, self.cache["out_shape"])
        return F.pool2d_backward(dLdY, self.cache["pool"], self.kernel_shape, self.stride, self.pad, self.mode)

    def config(self) -> dict:
        return {"name": self.name, "kernel_shape": list(self.kernel_shape), "mode": self.mode, "stride": self.stride,
                "pad": list(self.pad_arg) if isinstance(self.pad_arg, tuple) else self.pad_arg}


class Flatten(Layer):
    """Reshape to 2-D. ``keep_dim="first"``: ``(batch, ...) -> (batch, prod(...))``;
    ``"last"``: ``(..., c) -> (prod(...), c)``; ``-1``: everything into one row ``(1, size)``."""

    name = "flatten"

    def __init__(self, keep_dim="first") -> None:
        super().__init__()
        if keep_dim not in ("first", "last", -1):
            raise ValueError(f"Flatten keep_dim must be 'first', 'last' or -1; got {keep_dim!r}")
        self.keep_dim = keep_dim

    def forward(self, X: np.ndarray) -> np.ndarray:
        X = _as_float(X, self.where)
        if X.ndim < 1 or X.size == 0:
            raise ValueError(f"{self.where}: expected a non-empty array, got shape {X.shape}")
        self.cache["in_dims"] = X.shape
        if self.keep_dim == -1:
            Y = X.reshape(1, -1)
        elif self.keep_dim == "first":
            Y = X.reshape(X.shape[0], -1)
        else:
            Y = X.reshape(-1, X.shape[-1])
        self.n_in, self.n_out = int(np.prod(X.shape[1:])), Y.shape[1]
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        in_dims = self.cache["in_dims"]
        dLdY = np.asarray(dLdY)
        if dLdY.size != int(np.prod(in_dims)):
            raise ValueError(f"{self.where}: backward got dLdY of shape {dLdY.shape}, which does not reshape to the input shape {in_dims}")
        return dLdY.reshape(in_dims)

    def config(self) -> dict:
        return {"name": self.name, "keep_dim": self.keep_dim}


LAYERS = {cls.name: cls for cls in (FullyConnected, Conv2D, Pool2D, Flatten)}


def initialize_layer(name: str, **kwargs) -> Layer:
    """Make a layer from its name (``"fully_connected"``, ``"conv2d"``, ``"pool2d"``,
    ``"flatten"``) and its constructor arguments."""
    key = str(name).lower()
    if key not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; valid names: {', '.join(LAYERS)}")
    cls = LAYERS[key]
    try:
        return cls(**kwargs)
    except TypeError as err:  # a misspelled or missing argument
        import inspect

        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise ValueError(f"bad arguments for layer {name!r} ({err}); valid arguments: {', '.join(valid)}") from None


# Layers defined in other modules (they subclass Layer, so they are imported after it exists).
from .regularization import BatchNorm, Dropout  # noqa: E402

LAYERS.update({cls.name: cls for cls in (BatchNorm, Dropout)})
