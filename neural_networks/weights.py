"""Weight initializers.

``initialize_weights(name, activation=None)`` returns a callable ``init(shape, rng=None,
dtype=np.float32) -> array``. ``rng`` is a ``numpy.random.Generator`` (a seeded model gives each
layer one); without one the draws come from NumPy's global state (``np.random.seed``), as in the
course's starter code. Fans follow the usual convention (PyTorch, Keras):

* fully-connected ``(n_in, n_out)``: ``fan_in = n_in``, ``fan_out = n_out``;
* convolution ``(kh, kw, c_in, c_out)``: ``fan_in = kh*kw*c_in``, ``fan_out = kh*kw*c_out``.

Xavier (Glorot) initializers are scaled by the gain of ``activation`` as in
``torch.nn.init.calculate_gain`` (1 for linear/sigmoid/softmax, 5/3 for tanh, sqrt(2) for
ReLU); He (Kaiming) initializers use the fan-in and the ReLU factor 2 and ignore it. LeCun
initializers use the fan-in alone (variance ``1 / fan_in``), as Keras'; ``pytorch_uniform`` is
PyTorch's default for ``nn.Linear`` / ``nn.Conv2d`` weights, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["compute_fans", "calculate_gain", "initialize_weights", "INITIALIZERS"]

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "softmax": 1.0, "arctan": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def compute_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (2-D dense or 4-D HWIO convolution)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        receptive = shape[0] * shape[1]
        return receptive * shape[2], receptive * shape[3]
    if len(shape) == 1:
        return shape[0], shape[0]
    raise ValueError(f"cannot compute fans of a weight of shape {shape}; expected 2-D (n_in, n_out) or 4-D (kh, kw, c_in, c_out)")


def calculate_gain(activation: str | None) -> float:
    """Recommended scale for ``activation`` (None means linear)."""
    if activation is None:
        return 1.0
    key = getattr(activation, "name", activation)
    key = str(key).lower()
    if key not in _GAINS:
        raise ValueError(f"no gain known for activation {activation!r}; valid names: {', '.join(sorted(_GAINS))}")
    return _GAINS[key]


def _rng(rng):
    """The generator to draw from: ``rng``, or without one NumPy's global random state, as the
    course's initializers draw (so ``np.random.seed`` makes an unseeded layer reproducible)."""
    return rng if rng is not None else np.random


def _make(name: str, gain: float) -> Callable:
    def init(shape, rng=None, dtype=np.float32) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        if name == "zeros":
            return np.zeros(shape, dtype=dtype)
        if name == "ones":
            return np.ones(shape, dtype=dtype)
        g = _rng(rng)
        if name == "uniform":  # Keras' default RandomUniform range
            return g.uniform(-0.05, 0.05, size=shape).astype(dtype, copy=False)
        if name == "normal":
            return g.normal(0.0, 0.05, size=shape).astype(dtype, copy=False)
        fan_in, fan_out = compute_fans(shape)
        if name == "xavier_uniform":  # limit written as the course's sqrt(3) * std, to the last bit
            limit = math.sqrt(3.0) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))
            return g.uniform(-limit, limit, size=shape).astype(dtype, copy=False)
        if name == "xavier_normal":
            std = gain * math.sqrt(2.0 / (fan_in + fan_out))
            return g.normal(0.0, std, size=shape).astype(dtype, copy=False)
        if name == "he_uniform":
            limit = math.sqrt(6.0 / fan_in)
            return g.uniform(-limit, limit, size=shape).astype(dtype, copy=False)
        if name == "he_normal":
            return g.normal(0.0, math.sqrt(2.0 / fan_in), size=shape).astype(dtype, copy=False)
        if name == "lecun_uniform":
            limit = math.sqrt(3.0 / fan_in)
            return g.uniform(-limit, limit, size=shape).astype(dtype, copy=False)
        if name == "lecun_normal":
            return g.normal(0.0, math.sqrt(1.0 / fan_in), size=shape).astype(dtype, copy=False)
        if name == "pytorch_uniform":  # nn.Linear / nn.Conv2d default: kaiming_uniform_(a=sqrt(5))
            limit = 1.0 / math.sqrt(fan_in)
            return g.uniform(-limit, limit, size=shape).astype(dtype, copy=False)
        raise AssertionError(name)  # unreachable: names are checked in initialize_weights

    init.__name__ = name
    init.__doc__ = f"{name} initializer (gain {gain:g}): shape -> array"
    return init


INITIALIZERS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                "pytorch_uniform", "uniform", "normal", "zeros", "ones")


def initialize_weights(name: str, activation: str | None = None) -> Callable:
    """Return the initializer called ``name`` (one of ``INITIALIZERS``) for a layer whose
    activation is ``activation``."""
    key = str(name).lower()
    if key not in INITIALIZERS:
        raise ValueError(f"unknown weight initializer {name!r}; valid names: {', '.join(INITIALIZERS)}")
    return _make(key, calculate_gain(activation) if key.startswith("xavier") else 1.0)
