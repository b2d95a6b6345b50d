"""Convolution and pooling on NHWC images: the layers around :func:`neural_networks.functional.conv2d`
and :func:`~neural_networks.functional.pool2d` (and their backward passes)."""

from __future__ import annotations


import numpy as np

from .. import functional as F
from ..functional.geometry import pair
from ..activations import initialize_activation
from ..validation import boolean, positive_int
from ..weights import initialize_weights
from .base import Layer, _as_float, _output_size, _param_dtype, _ParametricLayer

__all__ = ["Conv2D", "Pool2D", "PATCH_WHITENING"]

#: The ``weight_init`` of a Conv2D whose filters whiten its input's patches (computed from the
#: training images before the first epoch: :meth:`Conv2D.fit_to_data`).
PATCH_WHITENING = "patch_whitening"


class Conv2D(_ParametricLayer):
    """2-D cross-correlation on NHWC input, as in the spec:
    ``Z[n, r, s, f] = sum_{i,j,c} W[i, j, c, f] * Xpad[n, r*stride + i, s*stride + j, c] + b[f]``.

    ``X (batch, rows, cols, in_channels), W (kh, kw, in_channels, n_out), b (1, n_out)
    -> Y (batch, out_rows, out_cols, n_out)`` with ``out = floor((in + 2*pad - k) / stride) + 1``.

    ``pad``: ``"same"`` ((k - 1) // 2 zeros on each side of each axis), ``"valid"`` (none), an
    int, or a pair of ints for rows and columns. ``use_bias=False`` leaves out ``b`` (for a
    convolution followed by :class:`BatchNorm`). ``n_out=None`` is filled in by a model from the
    data set, as for :class:`FullyConnected`. ``weight_init="patch_whitening"``: filters computed
    from the training images before the first epoch (:meth:`fit_to_data`; usually with
    ``frozen: [W]``). Dtypes as for :class:`FullyConnected`: the input's floating dtype.

    Raises:
        ValueError: (constructor) for an ``n_out``, ``kernel_shape`` or ``stride`` that is not
            positive, an unknown ``pad``, ``activation`` or ``weight_init``, or a non-boolean
            ``use_bias``; (:meth:`forward`) for input that is not 4-D NHWC, an empty batch, a kernel
            larger than the padded input, or another channel count than the parameters were made for.

    Example:
        >>> import numpy as np
        >>> from neural_networks import Conv2D
        >>> conv = Conv2D(8, kernel_shape=(3, 3), activation="relu", stride=1, pad="same")
        >>> conv.forward(np.zeros((2, 5, 5, 3), dtype=np.float32)).shape
        (2, 5, 5, 8)
        >>> conv.parameters["W"].shape, Conv2D(8, 3, stride=2, pad="valid").forward(np.zeros((2, 5, 5, 3))).shape
        ((3, 3, 3, 8), (2, 2, 2, 8))
    """

    name = "conv2d"

    @property
    def splits_batch(self) -> bool:
        """Its fast kernels split the batch over threads; the reference kernels do not."""
        return F.threaded()

    def __init__(
        self,
        n_out: int | None = None,
        kernel_shape=(3, 3),
        activation="relu",
        stride: int = 1,
        pad="same",
        weight_init: str = "xavier_uniform",
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        self.n_out = _output_size(n_out, "Conv2D n_out")
        self.kernel_shape = pair(kernel_shape, "Conv2D kernel_shape")
        self.activation = initialize_activation(activation)
        self.stride = positive_int(stride, "Conv2D stride")
        self.pad_arg = pad
        self.pad = F.resolve_padding(pad, self.kernel_shape)
        self.needs_data = isinstance(weight_init, str) and weight_init.lower() == PATCH_WHITENING
        if not self.needs_data:
            initialize_weights(weight_init, activation=self.activation.name)
        self.weight_init = weight_init
        self.use_bias = boolean(use_bias, "Conv2D use_bias")

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """``W (kh, kw, n_in, n_out)`` and, with a bias, ``b (1, n_out)`` (``n_in``: input channels)."""
        self._check_output_size()
        kh, kw = self.kernel_shape
        shapes = {"W": (kh, kw, int(n_in), self.n_out), "b": (1, self.n_out)}
        return {name: shapes[name] for name in self.parameter_names}

    def _init_parameters(self, X_shape, dtype=np.float64) -> None:
        """Create ``W (kh, kw, in_channels, n_out)``, ``b (1, n_out)`` for input ``X_shape``."""
        shapes = self.parameter_shapes(X_shape[3])  # first: it raises while n_out is unknown
        self.n_in = int(X_shape[3])
        init = "zeros" if self.needs_data else self.weight_init  # whitening filters come from fit_to_data
        self._init(shapes, init, dtype)

    def fit_to_data(self, X: np.ndarray) -> None:
        """``weight_init="patch_whitening"``: set ``W`` to the whitening filters of the patches of
        ``X (m, h, w, c)``, a sample of this layer's training inputs (see :mod:`neural_networks.whitening`);
        a model does this before its first epoch. ``n_out`` must be ``kh*kw*c`` or twice that."""
        from ..whitening import patch_whitening_filters

        X = _as_float(X, self.where)
        self._check_rank(X, 4, "(batch, rows, cols, channels)")
        if self.n_in is None:
            self._init_parameters(X.shape, _param_dtype(X))
        self._check_features(X.shape[3], "channels", X.shape)
        W = self.parameters["W"]
        try:
            W[...] = patch_whitening_filters(X, self.kernel_shape, self.n_out, self.stride, self.pad, dtype=W.dtype)
        except ValueError as err:
            raise ValueError(f"{self.where}: {err}") from None
        self.needs_data = False

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``Y = activation(conv(X, W) + b)``: ``X (batch, rows, cols, in_channels) -> Y (batch,
        out_rows, out_cols, n_out)``; ``ValueError`` for another rank, channel count or a kernel
        larger than the padded input."""
        X = _as_float(X, self.where)
        self._check_rank(X, 4, "(batch, rows, cols, channels)")
        _check_window_fits(self, X.shape, self.kernel_shape, self.pad)
        if self.n_in is None:
            self._init_parameters(X.shape, _param_dtype(X))
        self._check_features(X.shape[3], "channels", X.shape)
        W, b = self._param("W", X.dtype), self._bias(X.dtype)
        Y, self.cache = F.conv2d(X, W, b, self.stride, self.pad, self.activation, self.training, buffer=self._buffer)
        return Y

    def _backward(self, dL: np.ndarray, activation) -> np.ndarray:
        """``dL`` of ``Y``'s shape -> ``dL/dX`` of ``X``'s (``None`` for a network's first layer);
        fills ``gradients["W"]`` and ``gradients["b"]``."""
        W = self._param("W", dL.dtype)
        dX, dW, db = F.conv2d_backward(
            dL, W, self.cache, self.stride, self.pad, activation, need_dX=self.input_gradient, need_db=self.use_bias
        )
        self._store_gradient("W", dW)
        if self.use_bias:
            self._store_gradient("b", db)
        return dX

    def config(self) -> dict:
        return {
            "name": self.name,
            "n_out": self.n_out,
            "kernel_shape": list(self.kernel_shape),
            "activation": self.activation.name,
            "stride": self.stride,
            "pad": list(self.pad_arg) if isinstance(self.pad_arg, tuple) else self.pad_arg,
            "weight_init": self.weight_init,
            "use_bias": self.use_bias,
        }


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
    with zero padding as in the spec. ``X (batch, rows, cols, c) -> (batch, out_rows, out_cols, c)``,
    ``out = floor((in + 2*pad - k) / stride) + 1``; no parameters. Average pooling divides by the
    full window size. The default ``stride`` is 1 (the spec's): pass ``stride=2`` to halve the size
    with 2x2 windows.

    Raises:
        ValueError: (constructor) for a ``mode`` other than ``"max"`` or ``"average"``, a
            ``kernel_shape`` or ``stride`` that is not positive or an unknown ``pad``;
            (:meth:`forward`) for input that is not 4-D, an empty batch or a window larger than
            the padded input.

    Example:
        >>> import numpy as np
        >>> from neural_networks import Pool2D
        >>> X = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> Pool2D((2, 2), mode="max", stride=2).forward(X)[0, :, :, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """

    name = "pool2d"
    MODES = ("max", "average")

    def __init__(self, kernel_shape=(2, 2), mode: str = "max", stride: int = 1, pad=0) -> None:
        super().__init__()
        self.kernel_shape = pair(kernel_shape, "Pool2D kernel_shape")
        if mode not in self.MODES:
            raise ValueError(f"Pool2D mode must be one of {', '.join(self.MODES)}; got {mode!r}")
        self.mode = mode
        self.stride = positive_int(stride, "Pool2D stride")
        self.pad_arg = pad
        self.pad = F.resolve_padding(pad, self.kernel_shape)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``X (batch, rows, cols, c) -> Y (batch, out_rows, out_cols, c)``, the maximum or mean of
        each window; ``ValueError`` as in the class docstring."""
        X = _as_float(X, self.where)
        self._check_rank(X, 4, "(batch, rows, cols, channels)")
        _check_window_fits(self, X.shape, self.kernel_shape, self.pad)
        self.n_in = self.n_out = X.shape[3]
        Y, self.cache = F.pool2d(X, self.kernel_shape, self.stride, self.pad, self.mode)
        self.cache["out_shape"] = Y.shape
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """``dL/dY (batch, out_rows, out_cols, c) -> dL/dX (batch, rows, cols, c)``."""
        dLdY = self._check_grad_shape(dLdY, self.cache["out_shape"])
        return F.pool2d_backward(dLdY, self.cache, self.kernel_shape, self.stride, self.pad, self.mode)

    def config(self) -> dict:
        return {
            "name": self.name,
            "kernel_shape": list(self.kernel_shape),
            "mode": self.mode,
            "stride": self.stride,
            "pad": list(self.pad_arg) if isinstance(self.pad_arg, tuple) else self.pad_arg,
        }
