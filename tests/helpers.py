"""Shared helpers for the unit tests: finite differences and the error measure (the library's
own, so there is one implementation of each), random arrays.

Every random helper takes a seeded ``numpy.random.Generator`` so that a failing test can be
reproduced exactly.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np

from neural_networks.gradcheck import relative_error
from neural_networks.utils import numerical_gradient as _numerical_gradient

__all__ = [
    "numerical_gradient",
    "relative_error",
    "randn",
    "rand_away_from_zero",
    "distinct_values",
    "one_hot",
    "probabilities",
    "layer_to_float64",
    "run_cli",
    "popen_cli",
]


def run_cli(*args, cwd, env=None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m neural_networks ARGS`` in a child process (what a user runs), output captured;
    with ``check``, a non-zero exit fails the test with both streams."""
    result = subprocess.run(
        [sys.executable, "-m", "neural_networks", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def numerical_gradient(f, x: np.ndarray, dout=1.0, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference estimate of ``d(sum(f(x) * dout)) / dx``: the library's own
    (:func:`neural_networks.utils.numerical_gradient`, the one implementation), restricted to
    float64 ``x`` so that a test cannot silently check in float32."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    return _numerical_gradient(f, x, dout, h)


def randn(rng: np.random.Generator, *shape, dtype=np.float64) -> np.ndarray:
    """Standard normal draws of ``shape``."""
    return rng.standard_normal(shape).astype(dtype)


def rand_away_from_zero(rng: np.random.Generator, *shape, margin: float = 1e-3) -> np.ndarray:
    """Normal draws whose magnitude is at least ``margin`` (keeps ReLU away from its kink)."""
    X = rng.standard_normal(shape)
    small = np.abs(X) < margin
    X[small] = np.where(X[small] >= 0, 1.0, -1.0) * (margin + rng.uniform(0.1, 1.0, size=int(small.sum())))
    return X


def distinct_values(rng: np.random.Generator, *shape, step: float = 0.01) -> np.ndarray:
    """Shuffled, pairwise distinct values on a grid of spacing ``step``, none within
    ``step / 2`` of zero: no ties for max pooling and no ReLU kinks under a tiny perturbation."""
    n = int(np.prod(shape))
    grid = (np.arange(n) - n // 2 + 0.5) * step
    return rng.permutation(grid).reshape(shape)


def one_hot(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """``(m, k)`` float64 one-hot rows with random classes."""
    Y = np.zeros((m, k))
    Y[np.arange(m), rng.integers(0, k, size=m)] = 1.0
    return Y


def probabilities(rng: np.random.Generator, m: int, k: int, low: float = 0.05) -> np.ndarray:
    """``(m, k)`` rows of strictly positive probabilities (each at least about ``low / k``)."""
    P = rng.uniform(low, 1.0, size=(m, k))
    return P / P.sum(axis=1, keepdims=True)


def layer_to_float64(layer) -> None:
    """Convert every parameter (and gradient) of ``layer`` to float64, in place."""
    for key in list(layer.parameters):
        layer.parameters[key] = layer.parameters[key].astype(np.float64)
    for key in list(layer.gradients):
        layer.gradients[key] = layer.gradients[key].astype(np.float64)


def _sigint_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_cli(*args, cwd, env=None) -> subprocess.Popen:
    """``python -m neural_networks ARGS`` started in a child process (pipes, text) that a test
    then interrupts. Ctrl-C is restored to its default there: a test suite started as a
    background job of a shell script has SIGINT ignored, which children inherit, and Python then
    installs no ``KeyboardInterrupt`` handler at all."""
    return subprocess.Popen(
        [sys.executable, "-m", "neural_networks", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_by_default if sys.platform != "win32" else None,
    )
