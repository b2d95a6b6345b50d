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

import functools
import math
from typing import Callable

import numpy as np

from .registry import Registry

__all__ = ["compute_fans", "calculate_gain", "initialize_weights", "INITIALIZERS"]

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "softmax": 1.0, "arctan": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}
# torch.nn.init.calculate_gain has no GELU; GELU is ReLU-like (z Phi(z) -> max(z, 0) for large |z|), so it
# takes ReLU's sqrt(2), the Kaiming choice commonly made for it (both forms, exact and tanh).
_GAINS.update(gelu=math.sqrt(2.0), gelu_tanh=math.sqrt(2.0))


def compute_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``: 2-D dense ``(n_in, n_out)``, 4-D HWIO
    convolution ``(kh, kw, c_in, c_out)`` or 1-D ``(n,)`` (both fans ``n``); ``ValueError`` for
    another rank."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        receptive = shape[0] * shape[1]
        return receptive * shape[2], receptive * shape[3]
    if len(shape) == 1:
        return shape[0], shape[0]
    raise ValueError(
        f"cannot compute fans of a weight of shape {shape}; expected 2-D (n_in, n_out) or 4-D (kh, kw, c_in, c_out)"
    )


def calculate_gain(activation: str | None) -> float:
    """Recommended scale for ``activation`` (a name or an activation; ``None`` means linear), as
    ``torch.nn.init.calculate_gain``; ``ValueError`` for an activation without a known gain."""
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


def _uniform_within(rng, limit: float, shape, dtype) -> np.ndarray:
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def _normal_with(rng, std: float, shape, dtype) -> np.ndarray:
    return rng.normal(0.0, std, size=shape).astype(dtype, copy=False)


# One function per initializer: ``draw(shape, rng, dtype[, gain])`` with ``rng`` a Generator or
# ``np.random``. One that takes ``gain`` is scaled by the layer activation's gain.


def _zeros(shape, rng, dtype):
    return np.zeros(shape, dtype=dtype)


def _ones(shape, rng, dtype):
    return np.ones(shape, dtype=dtype)


def _uniform(shape, rng, dtype):  # Keras' default RandomUniform range
    return _uniform_within(rng, 0.05, shape, dtype)


def _normal(shape, rng, dtype):
    return _normal_with(rng, 0.05, shape, dtype)


def _xavier_uniform(shape, rng, dtype, gain):  # limit written as the course's sqrt(3) * std, to the last bit
    fan_in, fan_out = compute_fans(shape)
    return _uniform_within(rng, math.sqrt(3.0) * (gain * math.sqrt(2.0 / (fan_in + fan_out))), shape, dtype)


def _xavier_normal(shape, rng, dtype, gain):
    fan_in, fan_out = compute_fans(shape)
    return _normal_with(rng, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape, dtype)


def _he_uniform(shape, rng, dtype):
    return _uniform_within(rng, math.sqrt(6.0 / compute_fans(shape)[0]), shape, dtype)


def _he_normal(shape, rng, dtype):
    return _normal_with(rng, math.sqrt(2.0 / compute_fans(shape)[0]), shape, dtype)


def _lecun_uniform(shape, rng, dtype):
    return _uniform_within(rng, math.sqrt(3.0 / compute_fans(shape)[0]), shape, dtype)


def _lecun_normal(shape, rng, dtype):
    return _normal_with(rng, math.sqrt(1.0 / compute_fans(shape)[0]), shape, dtype)


def _pytorch_uniform(shape, rng, dtype):  # nn.Linear / nn.Conv2d default: kaiming_uniform_(a=sqrt(5))
    return _uniform_within(rng, 1.0 / math.sqrt(compute_fans(shape)[0]), shape, dtype)


def _dirac_into(W: np.ndarray) -> np.ndarray:
    """Make the first ``min(c, f)`` filters of ``W`` identities (in place): a conv kernel
    ``(kh, kw, c, f)`` gets ``W[kh//2, kw//2, i, i] = 1`` and zeros elsewhere in those filters,
    a dense ``(n_in, n_out)`` matrix ``W[:, i] = e_i``; so output channel ``i`` starts as a copy of
    input channel ``i`` (``torch.nn.init.dirac_`` / ``eye_`` on those filters)."""
    k = min(W.shape[-2], W.shape[-1])
    W[..., :k] = 0
    centre = tuple(size // 2 for size in W.shape[:-2])
    W[centre + (np.arange(k), np.arange(k))] = 1
    return W


def _dirac(shape, rng, dtype):  # torch.nn.init.dirac_: zeros but the identity filters
    return _dirac_into(np.zeros(shape, dtype=dtype))


def _unit_std_into(W: np.ndarray) -> np.ndarray:
    """Scale ``W`` (in place) so that its standard deviation over all its entries is exactly 1,
    as arXiv:2404.00498 scales its classifier's weights (``w *= 1 / w.std()``)."""
    std = float(np.std(W, dtype=np.float64))
    if not std > 0:
        raise ValueError(f"cannot scale a {W.shape} weight to unit std: its draw is constant ({W.flat[0]!r})")
    W *= 1.0 / std
    return W


#: Prefixes that transform another initializer's draw: ``<prefix><name>`` draws from ``<name>``
#: (itself possibly prefixed) and then applies the function to the array in place.
_PREFIXES = {"dirac_": _dirac_into, "unit_std_": _unit_std_into}


#: Every initializer by name (iterating gives the names); adding one is its ``draw`` function above
#: and one ``INITIALIZERS.add`` line.
INITIALIZERS = Registry("weight initializer")
INITIALIZERS.add("xavier_uniform", _xavier_uniform)
INITIALIZERS.add("xavier_normal", _xavier_normal)
INITIALIZERS.add("he_uniform", _he_uniform)
INITIALIZERS.add("he_normal", _he_normal)
INITIALIZERS.add("lecun_uniform", _lecun_uniform)
INITIALIZERS.add("lecun_normal", _lecun_normal)
INITIALIZERS.add("pytorch_uniform", _pytorch_uniform)
INITIALIZERS.add("uniform", _uniform)
INITIALIZERS.add("normal", _normal)
INITIALIZERS.add("zeros", _zeros)
INITIALIZERS.add("ones", _ones)
INITIALIZERS.add("dirac", _dirac, aliases=("identity",))


def initialize_weights(name: str, activation: str | None = None) -> Callable:
    """Return the initializer called ``name`` (one of ``INITIALIZERS``) for a layer whose
    activation is ``activation``: an initializer that takes a ``gain`` (the Xavier ones) is
    scaled by :func:`calculate_gain` of it, the others ignore it.

    Two prefixes transform another initializer's draw (they compose, e.g.
    ``dirac_unit_std_normal``):

    * ``dirac_<name>`` (e.g. ``dirac_pytorch_uniform``, the identity initialisation of arXiv:2404.00498) draws
      from ``<name>`` and then makes the first ``min(in, out)`` filters identities: those channels
      pass through the layer at first, the others start as ``<name>`` draws them;
    * ``unit_std_<name>`` (e.g. ``unit_std_pytorch_uniform``, the classifier of arXiv:2404.00498) draws from
      ``<name>`` and scales the whole tensor to a standard deviation of exactly 1.

    ``ValueError`` names an unknown initializer or activation; the initializer raises it for a
    shape that is not 1-, 2- or 4-D.

    Example:
        >>> import numpy as np
        >>> from neural_networks import initialize_weights
        >>> init = initialize_weights("he_normal")
        >>> W = init((3, 3, 16, 32), rng=np.random.default_rng(0))  # (kh, kw, c_in, c_out)
        >>> W.shape, W.dtype, bool(abs(W.std() - np.sqrt(2 / (3 * 3 * 16))) < 0.01)
        ((3, 3, 16, 32), dtype('float32'), True)
    """
    for prefix, transform in _PREFIXES.items():
        if isinstance(name, str) and name.lower().startswith(prefix):
            base = initialize_weights(name[len(prefix) :], activation)

            def transformed(shape, rng=None, dtype=np.float32, base=base, transform=transform) -> np.ndarray:
                return transform(base(shape, rng=rng, dtype=dtype))

            transformed.__name__ = f"{prefix}{base.__name__}"
            return transformed
    key = INITIALIZERS.canonical(name)
    draw = INITIALIZERS[key]
    gain = calculate_gain(activation) if "gain" in INITIALIZERS.arguments(key) else None
    if gain is not None:
        draw = functools.partial(draw, gain=gain)

    def init(shape, rng=None, dtype=np.float32) -> np.ndarray:
        return draw(tuple(int(s) for s in shape), _rng(rng), dtype)

    init.__name__ = key
    init.__doc__ = f"{key} initializer (gain {1.0 if gain is None else gain:g}): shape -> array"
    return init
