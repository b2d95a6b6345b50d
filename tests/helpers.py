"""Shared helpers for the unit tests: finite differences and the error measure (the library's
own, so there is one implementation of each), random arrays.

Every random helper takes a seeded ``numpy.random.Generator`` so that a failing test can be
reproduced exactly.

Optional packages (the extras of ``pyproject.toml``): :func:`require` returns the module or raises
``unittest.SkipTest`` naming the package and the extra that installs it, and :func:`requires` is
the same as a decorator. Both ``python -m unittest`` and pytest report that exception as a skip
(pytest's own ``pytest.importorskip`` is an error under unittest), so that with the core alone
(``pip install -e .``) the tests needing an extra skip and the rest run. This module must import
without any extra, pytest included.
"""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import unittest

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
    "EXTRAS",
    "missing",
    "require",
    "requires",
    "pytest_modules",
    "pytest_only",
]

# The pyproject.toml extra that installs each optional top-level module the tests import.
EXTRAS = {
    "pytest": "test",
    "hypothesis": "test",
    "nbformat": "test",
    "nbclient": "test",
    "ipykernel": "test",
    "jupyter_client": "test",
    "torch": "torch",
    "optuna": "tune",
    "psycopg2": "tune",
    "tensorboard": "tensorboard",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "safetensors": "safetensors",
}


def missing(name: str, extra: str | None = None) -> str | None:
    """``None`` if module ``name`` imports, else the skip reason: the package and the extra that
    installs it (``extra``, else :data:`EXTRAS`' entry for its top-level package), e.g.
    ``needs onnx: pip install -e ".[onnx]"``. An installed package that fails to import (a
    dependency of its own missing) says so: a skip then does not hide a broken install."""
    try:
        importlib.import_module(name)
    except ImportError as error:
        top = name.partition(".")[0]
        reason = f'needs {top}: pip install -e ".[{extra or EXTRAS.get(top, top)}]"'
        if error.name is not None and error.name.partition(".")[0] != top:
            reason += f" ({type(error).__name__}: {error})"
        return reason
    return None


def require(name: str, extra: str | None = None):
    """Module ``name``, imported; or ``unittest.SkipTest`` with :func:`missing`'s reason. Call it in
    a test (or setUp/setUpClass) to skip that test, at a module's top to skip the whole module."""
    reason = missing(name, extra)
    if reason is not None:
        raise unittest.SkipTest(reason)
    return importlib.import_module(name)


def requires(name: str, extra: str | None = None):
    """A decorator skipping a test function, method or ``TestCase`` class unless module ``name``
    imports (checked once, when the module defining the test is imported)."""
    reason = missing(name, extra)
    return unittest.skipIf(reason is not None, reason or "")


class _Absent:
    """Stands for pytest (and the packages a pytest-style module uses at import) where pytest is
    not installed, so never under pytest: any attribute, call or decorator is accepted and does
    nothing, so that the module imports and its ``load_tests`` reports the skip."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args, **kwargs):
        return self


def pytest_modules(*names: str) -> tuple:
    """``(pytest, *modules)`` for a module of pytest-style tests (plain functions, ``parametrize``,
    fixtures such as ``tmp_path``) that uses ``names`` (e.g. hypothesis) when it is imported.

    With pytest installed, each of ``names`` is imported or ``unittest.SkipTest`` is raised (see
    :func:`require`): pytest, and unittest's discovery, report the whole module as skipped with
    the reason. Without pytest (so under unittest, which runs no such test anyway), stand-ins that
    accept anything, so that the module imports even when unittest is given its name, and
    :func:`pytest_only` reports the skip, naming pytest and its extra."""
    if missing("pytest") is not None:
        return tuple(_Absent() for _ in range(1 + len(names)))
    return tuple(require(name) for name in ("pytest", *names))


def pytest_only(module: str):
    """A ``load_tests`` for a module of pytest-style tests, in which ``python -m unittest`` would
    silently find nothing: ``load_tests = pytest_only(__name__)`` makes unittest report one skip,
    naming the command that runs them (and pytest's extra where pytest is missing), besides any
    ``TestCase`` of the module. pytest ignores ``load_tests``."""

    def load_tests(loader, tests, pattern):
        reason = f"pytest-style tests: run them with python -m pytest {module.replace('.', '/')}.py"
        if missing("pytest") is not None:
            reason = f"{missing('pytest')} ({reason})"

        class PytestOnly(unittest.TestCase):
            @unittest.skip(reason)
            def test_run_with_pytest(self):
                pass

        PytestOnly.__module__ = module
        PytestOnly.__qualname__ = PytestOnly.__name__
        suite = unittest.TestSuite([tests])
        suite.addTest(PytestOnly("test_run_with_pytest"))
        return suite

    return load_tests


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
