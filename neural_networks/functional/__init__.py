"""The math of the layers, stateless: arrays and hyperparameters in, arrays out.

This module is the dispatch. Every operation a layer, an activation or a loss computes is one
function here, which runs either

* the **reference** kernels of :mod:`.reference`: the textbook, plain vectorised NumPy, the code
  to read and to hand in; or
* the **fast** kernels (the default): the same functions computed in cache-sized blocks on the
  batch's threads, with fusions, in the other modules of this package (:mod:`.conv`,
  :mod:`.planes`, :mod:`.winograd`, :mod:`.pool`, :mod:`.batchnorm`, :mod:`.gelu_tables`,
  :mod:`.softmax_loss`; :mod:`.parallel` and :mod:`.allocator` are their machinery), each tested
  against the reference.

Which one runs is the kernel switch, as other libraries' debug modes: :func:`set_kernels`
(``"fast"`` or ``"reference"``), the context manager :func:`kernels`, or the environment
variable ``NEURAL_NETWORKS_KERNELS`` for the command line and scripts (read at the first
operation). In reference mode nothing runs here but :mod:`.reference` and this dispatch, in
the calling thread: a debugger stepping through a layer sees the textbook. Both give the same
results up to float rounding.

**Fusion** is decided here and nowhere else (:func:`fusion`): the fast kernels apply the
library's own ReLU inside the convolution's and batch norm's passes and keep only the output,
compute GELU's slope with its value (inside batch norm's blocks, or in one pass after a dense
or convolution layer) and keep it instead of the pre-activation, and the losses take softmax
and cross-entropy together at the logits. Any other activation (a subclass, or one a user
registers) is applied as it is written, by calling its ``forward`` and ``backward``.

**How a layer calls it.** ``Y, cache = F.conv2d(X, W, b, stride, pad, activation, training)``
returns the activated output and a cache (an ``OrderedDict``) that the layer keeps as its
``cache``; ``dX, dW, db = F.conv2d_backward(dY, W, cache, stride, pad, activation)`` gives the
gradients (``activation=None``: ``dY`` is already the gradient at the pre-activation ``Z``). The
cache holds the pre-activation as ``cache["Z"]`` when it was kept (always in reference mode),
else the output of a fused ReLU (``"Y"``) or GELU's slope (``"S"``); it records the kernels that
made it, and a backward pass under the other setting raises ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

import numpy as np

from . import batchnorm, conv, gelu_tables, planes, pool, reference, softmax_loss
from .geometry import conv_output_size, resolve_padding

__all__ = [
    "ENV_KERNELS",
    "KERNELS",
    "get_kernels",
    "set_kernels",
    "kernels",
    "threaded",
    "fusion",
    "conv_output_size",
    "resolve_padding",
    "dense",
    "dense_backward",
    "conv2d",
    "conv2d_backward",
    "pool2d",
    "pool2d_backward",
    "batchnorm_train",
    "batchnorm_eval",
    "batchnorm_backward",
    "dropout",
    "dropout_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "arctan",
    "arctan_backward",
    "gelu",
    "gelu_backward",
    "gelu_tanh",
    "gelu_tanh_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "softmax_cross_entropy",
]

# ----------------------------------------------------------------------------- the switch

#: The environment variable that chooses the kernels before :func:`set_kernels` is called.
ENV_KERNELS = "NEURAL_NETWORKS_KERNELS"
#: The kernel settings: ``"fast"`` (the default) and ``"reference"``.
KERNELS = ("fast", "reference")
_kernels: str | None = None  # None until the first operation reads the environment


def _checked(value, source: str) -> str:
    if value not in KERNELS:
        raise ValueError(f"{source} must be 'fast' or 'reference'; got {value!r}")
    return value


def get_kernels() -> str:
    """The kernels the operations run now: ``"fast"`` or ``"reference"``. Until :func:`set_kernels`
    is called, ``$NEURAL_NETWORKS_KERNELS`` (read once, here; ``ValueError`` naming it for any
    other value than those two or empty), else ``"fast"``."""
    global _kernels
    if _kernels is None:
        _kernels = _checked(os.environ.get(ENV_KERNELS, "").strip() or "fast", ENV_KERNELS)
    return _kernels


def set_kernels(mode: str) -> None:
    """Run ``mode``'s kernels from now on, in every thread: ``"fast"`` (the default) or
    ``"reference"`` (the textbook of :mod:`.reference`; ``ValueError`` for anything else).
    Switch between training steps, not inside one: a backward pass refuses a forward pass's
    cache made by the other kernels (``RuntimeError``).

    Example:
        >>> from neural_networks import get_kernels, set_kernels
        >>> set_kernels("reference")
        >>> get_kernels()
        'reference'
        >>> set_kernels("fast")
    """
    global _kernels
    _kernels = _checked(mode, "kernels")


@contextlib.contextmanager
def kernels(mode: str):
    """``with kernels("reference"): ...`` runs the block with ``mode``'s kernels (see
    :func:`set_kernels`) and restores the setting before it afterwards.

    Example:
        >>> import numpy as np
        >>> from neural_networks import Conv2D, kernels
        >>> conv = Conv2D(4, activation="relu")
        >>> X = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
        >>> with kernels("reference"):  # the textbook im2col of functional.reference
        ...     Y_reference = conv.forward(X)
        >>> with kernels("fast"):
        ...     Y_fast = conv.forward(X)
        >>> bool(np.allclose(Y_fast, Y_reference, atol=1e-5))
        True
    """
    global _kernels
    previous = _kernels  # None (the environment not read yet) stays None
    set_kernels(mode)
    try:
        yield
    finally:
        _kernels = previous


def threaded() -> bool:
    """Whether the operations may split a batch over threads (:mod:`.parallel`): the fast kernels
    do, the reference never does (a model then opens no parallel region either)."""
    return not _reference()


def _reference() -> bool:
    """Whether the reference kernels run (once read, one global and one comparison per call)."""
    return (_kernels or get_kernels()) == "reference"


def _cache(made_by: str, **items) -> OrderedDict:
    return OrderedDict(kernels=made_by, **items)


def _made_by(cache) -> str:
    """The kernels that made a forward pass's ``cache``; ``RuntimeError`` if the switch has
    changed since (its backward pass would run the other kernels on their cache)."""
    made_by = cache["kernels"]
    if made_by != get_kernels():
        raise RuntimeError(
            f"the forward pass ran the {made_by} kernels but the backward pass would run the {get_kernels()} "
            "ones; switch kernels between training steps (run forward again)"
        )
    return made_by


# ----------------------------------------------------------------------------- fusion

# The library's own activations that the fast kernels fuse, by class (exactly these classes, not
# subclasses, which may compute something else): the kernel switch and this table are the only
# places that know about fusion. Classes are named, not imported: kernels import nothing above them.
_ACTIVATIONS_MODULE = __name__.rpartition(".")[0] + ".activations"
_FUSED = {"ReLU": "relu", "GELU": "gelu", "SoftMax": "softmax"}


def fusion(activation) -> str | None:
    """``"relu"``, ``"gelu"`` or ``"softmax"`` for the library's ``ReLU``, ``GELU`` and ``SoftMax``
    (which the fast kernels, or the cross-entropy at the logits, may fuse), ``None`` for every
    other activation (applied by calling its ``forward`` and ``backward``)."""
    cls = type(activation)
    return _FUSED.get(cls.__qualname__) if cls.__module__ == _ACTIVATIONS_MODULE else None


def _activate(activation, Z: np.ndarray, training: bool):
    """``(activation(Z), kept)`` with ``kept`` what the gradient needs: in fast mode GELU while
    training returns its slope with its value in one pass and keeps ``{"S": slope}``; otherwise
    ``{"Z": Z}``."""
    if training and not _reference() and fusion(activation) == "gelu":
        Y, S = gelu_tables.gelu_with_slope(Z)
        return Y, {"S": S}
    return activation.forward(Z), {"Z": Z}


def _activation_gradient(activation, cache, dY: np.ndarray):
    """``(dL/dZ, owned)`` from ``dY = dL/dY`` and what :func:`_activate` (or a fused kernel) kept;
    ``owned``: the result is a new array, which a kernel may overwrite. ``activation=None``:
    ``dY`` is ``dL/dZ`` already."""
    if activation is None:
        return dY, False
    if "S" in cache:
        return dY * cache["S"], True
    if "Y" in cache:  # a fused ReLU's output: positive exactly where its input was
        return reference.relu_backward(cache["Y"], dY), True
    dZ = activation.backward(cache["Z"], dY).astype(dY.dtype, copy=False)
    return dZ, not np.may_share_memory(dZ, dY)


# ----------------------------------------------------------------------------- dense


def dense(X, W, b, activation, training: bool = False, scale: float = 1.0):
    """``Y = activation(scale * (X W + b))``: ``X (m, n_in), W (n_in, n_out), b (1, n_out)`` or
    ``None`` ``-> Y (m, n_out)`` and the cache for :func:`dense_backward`."""
    Z = reference.dense_forward(X, W, b)
    if scale != 1.0:
        Z *= scale
    Y, kept = _activate(activation, Z, training)
    return Y, _cache(get_kernels(), X=X, **kept)


def dense_backward(dY, W, cache, activation, need_dX: bool = True, need_db: bool = True, scale: float = 1.0):
    """Gradients of :func:`dense` given ``dY (m, n_out)`` (``activation=None``: the gradient at
    the pre-activation): ``dX (m, n_in)`` (``None`` unless ``need_dX``), ``dW``, ``db`` (``None``
    unless ``need_db``)."""
    made_by = _made_by(cache)
    dZ, _ = _activation_gradient(activation, cache, dY)
    if scale != 1.0:
        dZ = dZ * scale  # the gradient at X W + b, before the scale
    X = cache["X"]
    if made_by == "reference":
        dX, dW, db = reference.dense_backward(dZ, X, W)
        return (dX if need_dX else None), dW, (db if need_db else None)
    # only the products that are needed: a network's first layer skips dX, its largest
    return (dZ @ W.T if need_dX else None), X.T @ dZ, (dZ.sum(axis=0, keepdims=True) if need_db else None)


# ----------------------------------------------------------------------------- convolution


def conv2d(X, W, b, stride: int, pad, activation, training: bool = False, buffer=None):
    """``Y = activation(conv(X, W) + b)``, the spec's cross-correlation: ``X (n, h, w, c),
    W (kh, kw, c, f), b (1, f)`` or ``None`` ``-> Y (n, ho, wo, f)`` and the cache for
    :func:`conv2d_backward`. ``buffer(name, shape, dtype)``, if given, returns scratch arrays
    that the caller keeps between calls: a thin input's patches live there while training (the
    fast backward pass reuses them)."""
    if _reference():
        Z = reference.conv2d_forward(X, W, b, stride, pad)
        return activation.forward(Z), _cache("reference", X=X, Z=Z)
    relu = fusion(activation) == "relu"
    # Thin inputs' channel-first patches are cheap to keep and slow to regather; wider inputs
    # regather theirs chunk by chunk in the backward pass. Evaluation keeps none.
    keep = training and planes.thin_input(X.shape[3])
    cols = None
    if keep and buffer is not None:
        kh, kw = W.shape[:2]
        out_hw = [conv_output_size(X.shape[1 + a], W.shape[a], pad[a], stride) for a in (0, 1)]
        cols = buffer("cols", planes.plane_patches_shape(X.shape[0], out_hw, (kh, kw), X.shape[3]), X.dtype)
    Z, patches = conv.conv2d_forward(X, W, b, stride, pad, cols=cols, keep_cols=keep, relu=relu)
    if relu:
        return Z, _cache("fast", conv=patches, Y=Z)
    Y, kept = _activate(activation, Z, training)
    return Y, _cache("fast", conv=patches, **kept)


def conv2d_backward(dY, W, cache, stride: int, pad, activation, need_dX: bool = True, need_db: bool = True):
    """Gradients of :func:`conv2d` given ``dY (n, ho, wo, f)`` (``activation=None``: the gradient
    at the pre-activation): ``dX (n, h, w, c)`` (``None`` unless ``need_dX``), ``dW (kh, kw, c, f)``,
    ``db (1, f)`` (``None`` unless ``need_db``)."""
    if _made_by(cache) == "reference":
        dZ, _ = _activation_gradient(activation, cache, dY)
        dX, dW, db = reference.conv2d_backward(dZ, cache["X"], W, stride, pad)
        return (dX if need_dX else None), dW, (db if need_db else None)
    if activation is not None and "Y" in cache:  # the fused ReLU's mask is applied chunk by chunk
        return conv.conv2d_backward(dY, W, cache["conv"], stride, pad, need_dX, need_db, relu_output=cache["Y"])
    dZ, _ = _activation_gradient(activation, cache, dY)
    return conv.conv2d_backward(dZ, W, cache["conv"], stride, pad, need_dX, need_db)


# ----------------------------------------------------------------------------- pooling


def pool2d(X, kernel_shape, stride: int, pad, mode: str):
    """Max or average pooling (``mode``) over zero-padded windows: ``X (n, h, w, c) ->
    Y (n, ho, wo, c)`` and the cache for :func:`pool2d_backward`."""
    if _reference():
        return reference.pool2d_forward(X, kernel_shape, stride, pad, mode), _cache("reference", X=X)
    Y, windows = pool.pool2d_forward(X, kernel_shape, stride, pad, mode)
    return Y, _cache("fast", pool=windows)


def pool2d_backward(dY, cache, kernel_shape, stride: int, pad, mode: str):
    """Gradient of :func:`pool2d` given ``dY (n, ho, wo, c)``: ``dX (n, h, w, c)``."""
    if _made_by(cache) == "reference":
        return reference.pool2d_backward(dY, cache["X"], kernel_shape, stride, pad, mode)
    return pool.pool2d_backward(dY, cache["pool"], kernel_shape, stride, pad, mode)


# ----------------------------------------------------------------------------- batch normalisation
# Over every axis but the last: X (..., c) is normalised as its (M, c) view.


def batchnorm_train(X, gamma, beta, eps: float, activation):
    """``Y = activation(gamma * (X - mean) / sqrt(var + eps) + beta)`` with the batch's per-feature
    statistics: ``X (..., c), gamma (1, c), beta (1, c) -> Y`` of ``X``'s shape and the cache for
    :func:`batchnorm_backward`, whose ``"mean"`` and ``"var"`` (the biased variance), ``(1, c)``,
    feed the running estimates."""
    X2 = X.reshape(-1, X.shape[-1])
    if _reference():
        Z, mean, var = reference.batchnorm_train_forward(X2, gamma, beta, eps)
        Z = Z.reshape(X.shape)
        return activation.forward(Z), _cache(
            "reference", mode="train", X=X2, mean=mean, var=var, gamma=gamma, eps=eps, Z=Z
        )
    kind = fusion(activation)
    # GELU is applied to each normalised block while it is in cache, its slope kept for the
    # backward pass: the pre-activation is never written out and read back
    blocks = gelu_tables.GeluWithSlopeBlocks(X.dtype) if kind == "gelu" else None
    slope = None if blocks is None else np.empty(X2.shape, dtype=X.dtype)
    Z, mean, inv_std, var = batchnorm.batchnorm_train_forward(
        X2, gamma, beta, eps, relu=kind == "relu", slope_blocks=blocks, slope=slope
    )
    cache = _cache("fast", mode="train", X=X2, mean=mean, inv_std=inv_std, var=var, gamma=gamma)
    return _kept_output(activation, kind, Z.reshape(X.shape), slope, cache)


def batchnorm_eval(X, gamma, beta, mean, var, eps: float, activation):
    """:func:`batchnorm_train` with fixed statistics ``mean, var (1, c)`` (the running estimates)."""
    X2 = X.reshape(-1, X.shape[-1])
    if _reference():
        Z = reference.batchnorm_eval_forward(X2, gamma, beta, mean, var, eps).reshape(X.shape)
        return activation.forward(Z), _cache(
            "reference", mode="eval", X=X2, mean=mean, var=var, gamma=gamma, eps=eps, Z=Z
        )
    kind = fusion(activation)
    Z, inv_std = batchnorm.batchnorm_eval_forward(X2, gamma, beta, mean, var, eps)
    if kind == "relu":
        np.maximum(Z, 0, out=Z)
    cache = _cache("fast", mode="eval", X=X2, mean=mean, inv_std=inv_std, gamma=gamma)
    return _kept_output(activation, kind, Z.reshape(X.shape), None, cache)


def _kept_output(activation, kind, Z, slope, cache):
    """The output of a fast batch norm and its cache: ``Z`` itself after a fused ReLU (kept as
    ``"Y"``) or GELU (its slope kept as ``"S"``), else ``activation(Z)`` (``Z`` kept)."""
    if kind == "relu":
        cache["Y"] = Z
        return Z, cache
    if slope is not None:
        cache["S"] = slope.reshape(Z.shape)
        return Z, cache
    cache["Z"] = Z
    return activation.forward(Z), cache


def batchnorm_backward(dY, cache, activation):
    """Gradients of :func:`batchnorm_train` or :func:`batchnorm_eval` (as the cache says) given
    ``dY`` of the input's shape (``activation=None``: the gradient at the pre-activation):
    ``dX`` of that shape, ``dgamma (1, c)``, ``dbeta (1, c)``."""
    shape, X2 = dY.shape, cache["X"]
    train = cache["mode"] == "train"
    if _made_by(cache) == "reference":
        dZ, _ = _activation_gradient(activation, cache, dY)
        backward = reference.batchnorm_train_backward if train else reference.batchnorm_eval_backward
        dX, dgamma, dbeta = backward(
            dZ.reshape(X2.shape), X2, cache["mean"], cache["var"], cache["gamma"], cache["eps"]
        )
        return dX.reshape(shape), dgamma, dbeta
    args = (X2, cache["mean"], cache["inv_std"], cache["gamma"])
    if train and activation is not None and "Y" in cache:  # the kernel masks by Y > 0 with its sums
        dX, dgamma, dbeta = batchnorm.batchnorm_train_backward(
            dY.reshape(X2.shape), *args, relu_output=cache["Y"].reshape(X2.shape)
        )
    else:
        dZ, owned = _activation_gradient(activation, cache, dY)
        dZ = dZ.reshape(X2.shape)
        if train:  # a dL/dZ made here is scratch the kernel may overwrite
            dX, dgamma, dbeta = batchnorm.batchnorm_train_backward(dZ, *args, overwrite_dZ=owned)
        else:
            dX, dgamma, dbeta = batchnorm.batchnorm_eval_backward(dZ, *args)
    return dX.reshape(shape), dgamma, dbeta


# ----------------------------------------------------------------------------- dropout, activations, losses
# One implementation each, the reference's, in either mode (except GELU and the fused loss).

dropout = reference.dropout_forward
dropout_backward = reference.dropout_backward
relu, relu_backward = reference.relu, reference.relu_backward
sigmoid, sigmoid_backward = reference.sigmoid, reference.sigmoid_backward
tanh, tanh_backward = reference.tanh, reference.tanh_backward
arctan, arctan_backward = reference.arctan, reference.arctan_backward
gelu_tanh, gelu_tanh_backward = reference.gelu_tanh, reference.gelu_tanh_backward
softmax, softmax_backward, log_softmax = reference.softmax, reference.softmax_backward, reference.log_softmax


def gelu(Z):
    """Exact GELU ``Z Phi(Z)``, element-wise, in ``Z``'s floating dtype (float64 for integers)."""
    return reference.gelu(Z) if _reference() else gelu_tables.gelu(Z)


def gelu_backward(Z, dY):
    """``dY (Phi(Z) + Z phi(Z))``: the gradient of :func:`gelu` given ``dY`` of ``Z``'s shape."""
    return reference.gelu_backward(Z, dY) if _reference() else gelu_tables.gelu_backward(Z, dY)


def softmax_cross_entropy(Z, Y):
    """Softmax and cross-entropy at the logits ``Z (m, k)`` for targets ``Y (m, k)``:
    ``(loss, dL/dZ (m, k), softmax(Z))``, with ``dL/dZ = (softmax(Z) - Y) / m`` for targets whose
    rows sum to one."""
    return reference.softmax_cross_entropy(Z, Y) if _reference() else softmax_loss.softmax_cross_entropy(Z, Y)
