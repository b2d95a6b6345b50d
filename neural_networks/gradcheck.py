"""The gradient-check report over every activation, layer and loss type.

The finite differences themselves live in :mod:`neural_networks.utils` (the spec's
``check_gradients(fn, grad, x, dLdf)`` and the estimate ``numerical_gradient(fn, x, dLdf)``, both
re-exported here). :func:`check_all` compares every analytic gradient with the estimate using
:func:`relative_error` (a max-norm error) and :func:`main` (``python -m neural_networks.gradcheck``
or ``neural-networks gradcheck``) prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from .activations import ACTIVATIONS, initialize_activation
from .layers import Layer, initialize_layer
from .losses import LOSSES, initialize_loss
from .utils import check_gradients, numerical_gradient

__all__ = [
    "check_gradients",
    "numerical_gradient",
    "relative_error",
    "GradientCheck",
    "check_layer",
    "check_all",
    "main",
]


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a - n| / max(1e-12, max(|a| + |n|))``: a scale-free max-norm error, 0 for equal
    arrays (and for empty ones); the floor keeps two near-zero gradients from reading as different."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"gradient shapes differ: analytic {a.shape}, numeric {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(1e-12, float(np.max(np.abs(a) + np.abs(n)))))


@dataclass
class GradientCheck:
    """One row of the report: which function, with respect to what, and the relative error."""

    name: str
    wrt: str
    error: float

    def passed(self, tolerance: float = 1e-6) -> bool:
        """Whether the relative error is below ``tolerance``."""
        return self.error < tolerance


def _to_float64(layer: Layer) -> None:
    for key, value in layer.parameters.items():
        layer.parameters[key] = value.astype(np.float64)


def check_layer(
    layer: Layer, X: np.ndarray, rng: np.random.Generator, name: str | None = None, h: float = 1e-6
) -> list[GradientCheck]:
    """Compare ``layer.backward`` with finite differences for the input and every parameter."""
    name = name or repr(layer)
    X = np.asarray(X, dtype=np.float64)
    layer.forward(X)  # creates the parameters
    _to_float64(layer)
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape)
    dX = layer.backward(dY)
    analytic = {"X": dX, **{k: v.copy() for k, v in layer.gradients.items()}}
    rows = [GradientCheck(name, "X", relative_error(dX, numerical_gradient(layer.forward, X.copy(), dY, h)))]
    for key in layer.parameters:
        param = layer.parameters[key].copy()
        numeric = numerical_gradient(layer.forward_with_param(key, X), param, dY, h)
        rows.append(GradientCheck(name, key, relative_error(analytic[key], numeric)))
    return rows


def _away_from_zero(rng: np.random.Generator, shape) -> np.ndarray:
    """Random values with |x| in [0.1, 1.1): far from the kinks of ReLU and max."""
    return rng.choice([-1.0, 1.0], size=shape) * (0.1 + rng.random(shape))


def check_all(seed: int = 0) -> list[GradientCheck]:
    """Gradient checks of every activation, layer type and loss on small random float64 inputs."""
    rng = np.random.default_rng(seed)
    rows: list[GradientCheck] = []
    for act_name in ACTIVATIONS:
        act = initialize_activation(act_name)
        Z = _away_from_zero(rng, (4, 5))
        dY = rng.standard_normal(Z.shape)
        rows.append(
            GradientCheck(
                f"activation {act_name}",
                "Z",
                relative_error(act.backward(Z, dY), numerical_gradient(act.forward, Z.copy(), dY)),
            )
        )
    layer_cases = [
        ("fully_connected relu", dict(name="fully_connected", n_out=4, activation="relu"), (3, 5)),
        ("fully_connected softmax", dict(name="fully_connected", n_out=4, activation="softmax"), (3, 5)),
        (
            "conv2d 3x3 same s1",
            dict(name="conv2d", n_out=3, kernel_shape=(3, 3), activation="tanh", stride=1, pad="same"),
            (2, 5, 5, 2),
        ),
        (
            "conv2d 2x3 pad1 s2",
            dict(name="conv2d", n_out=2, kernel_shape=(2, 3), activation="linear", stride=2, pad=1),
            (2, 6, 7, 3),
        ),
        ("pool2d max 2x2 s2", dict(name="pool2d", kernel_shape=(2, 2), mode="max", stride=2), (2, 4, 6, 3)),
        (
            "pool2d average 3x3 s1 pad1",
            dict(name="pool2d", kernel_shape=(3, 3), mode="average", stride=1, pad=1),
            (2, 4, 4, 2),
        ),
        ("flatten", dict(name="flatten"), (2, 3, 3, 2)),
        ("batchnorm (training statistics)", dict(name="batchnorm", activation="tanh"), (3, 2, 2, 3)),
        ("batchnorm fully-connected", dict(name="batchnorm", activation="linear"), (5, 4)),
    ]
    for label, args, shape in layer_cases:
        layer = initialize_layer(**args)
        layer.rng = np.random.default_rng(rng.integers(2**32))
        # distinct values so max-pooling windows have no ties
        X = _away_from_zero(rng, shape) + 1e-3 * np.arange(np.prod(shape)).reshape(shape)
        rows += check_layer(layer, X, rng, name=f"layer {label}")
    for loss_name in LOSSES:
        loss = initialize_loss(loss_name)
        logits = rng.standard_normal((4, 3))
        Y_hat = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        Y = np.eye(3)[rng.integers(0, 3, size=4)]
        rows.append(
            GradientCheck(
                f"loss {loss_name}",
                "Y_hat",
                relative_error(
                    loss.backward(Y, Y_hat), numerical_gradient(lambda p: loss.forward(Y, p), Y_hat.copy(), 1.0)
                ),
            )
        )
    return rows


def format_table(rows: list[GradientCheck], tolerance: float = 1e-6) -> str:
    """The rows as an aligned text table with a pass/fail column."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'function':<{width}}  {'wrt':<6} {'relative error':>14}  result", "-" * (width + 32)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.wrt:<6} {r.error:>14.2e}  {'ok' if r.passed(tolerance) else 'FAIL'}")
    return "\n".join(lines)


def main(seed: int = 0, tolerance: float = 1e-6) -> int:
    """Print the table; return 0 if every check passed, 1 otherwise."""
    rows = check_all(seed)
    print(format_table(rows, tolerance))
    failed = [r for r in rows if not r.passed(tolerance)]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed (tolerance {tolerance:g}, float64, h=1e-6)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
