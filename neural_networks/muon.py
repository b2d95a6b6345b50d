"""Muon: momentum SGD whose step for each weight matrix is orthogonalised by a Newton-Schulz
iteration (:func:`orthogonalize`), and a second optimizer for every other parameter.

Registered, with the other optimizers, in :data:`neural_networks.optimizers.OPTIMIZERS` (and
importable from there).
"""

from __future__ import annotations

import math

import numpy as np

from .optimizer_base import OPTIMIZERS, Optimizer, check_momentum, initialize_optimizer
from .validation import boolean, non_negative

__all__ = ["Muon", "orthogonalize", "NEWTON_SCHULZ_COEFFICIENTS"]

#: The quintic Newton-Schulz coefficients of Keller Jordan's Muon (``torch.optim.Muon``'s defaults):
#: chosen for the largest slope at zero, so that few iterations lift small singular values.
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(G: np.ndarray, steps: int = 5, coefficients=NEWTON_SCHULZ_COEFFICIENTS, eps: float = 1e-7):
    """An approximate orthogonal factor of ``G (m, n)``: for ``G = U S V^T``, about ``U S' V^T``
    with every singular value ``S'`` pulled towards 1: after 5 steps into about [0.7, 1.2] for
    singular values down to a few thousandths of ``||G||_F`` (the iteration trades exactness for
    speed, as in Muon; smaller ones stay small).

    ``steps`` quintic Newton-Schulz iterations ``X <- a X + (b A + c A^2) X`` with
    ``A = X X^T`` on the shorter side, from ``X = G / max(||G||_F, eps)`` (so every singular value
    starts at most 1). Same shape and dtype as ``G``; float32 stays float32.

    Example:
        >>> import numpy as np
        >>> from neural_networks.optimizers import orthogonalize
        >>> G = np.random.default_rng(0).normal(size=(32, 8))
        >>> s = np.linalg.svd(orthogonalize(G), compute_uv=False)
        >>> bool(s.min() > 0.6 and s.max() < 1.3)
        True
    """
    a, b, c = coefficients
    X = G / G.dtype.type(max(float(np.linalg.norm(G)), eps))
    wide = X.shape[0] <= X.shape[1]
    if not wide:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X if wide else X.T


class Muon(Optimizer):
    """Muon (Keller Jordan, 2024; ``torch.optim.Muon``): momentum SGD whose step for each weight
    matrix is orthogonalised, so that every direction of the update moves at the same rate.

    For each parameter it updates (``targets``), with ``g`` its gradient::

        v <- momentum * v + g
        u = g + momentum * v   (nesterov)   or   v
        param <- s * (1 - lr * weight_decay) * param - lr * adjust * orthogonalize(u as a matrix)

    The matrix is ``(n_in, n_out)`` for a dense kernel and ``(kh*kw*c_in, c_out)`` for a
    convolution's ``(kh, kw, c_in, c_out)`` filters (:func:`orthogonalize` with ``ns_steps``
    iterations). The momentum is PyTorch's SGD form (``torch.optim.Muon`` keeps an average
    instead, the same direction: the orthogonalisation discards the scale). ``adjust`` follows
    ``torch.optim.Muon``'s ``adjust_lr_fn`` with ``A = n_out`` and ``B`` the matrix's other side:
    ``"original"`` ``sqrt(max(1, A / B))``, ``"match_rms_adamw"`` ``0.2 sqrt(max(A, B))``,
    ``"none"`` 1. ``s`` is 1, or with ``normalize_weights`` the factor that brings ``param`` to
    Frobenius norm ``sqrt(n_out)`` first (for filters followed by batch norm, whose output does
    not depend on their scale).

    ``targets``: ``"matrices"`` (every parameter of the ``"weights"`` group: dense and
    convolution kernels) or ``"filters"`` (convolution kernels only; dense kernels then go to
    the fallback). Every other parameter (biases, batch norm, and weights left out) is updated
    by ``fallback``, an optimizer made from its own ``{name, lr, ...}`` (default AdamW at Muon's
    ``lr``, as Keras' Muon) that takes Muon's ``lr_scheduler`` (the same arguments at its own
    ``lr``) and ``clip_norm`` unless it sets them. ``param_groups`` here may only set
    ``weights``' options; those of the fallback's groups go in its own ``param_groups``. State:
    Muon's momentum under the parameter names, the fallback's under ``fallback.<key>``.

    ``ValueError`` for a momentum outside [0, 1) (or 0 with ``nesterov``), ``ns_steps`` not an
    integer in [1, 100), an unknown ``adjust_lr`` or ``targets``, a ``normalize_weights`` that is
    not a boolean, ``param_groups`` setting a group other than ``weights``, and a ``fallback``
    that is not a mapping with ``name`` and ``lr``, is Muon itself or cannot be built (its error
    prefixed with ``fallback:``); besides :class:`~neural_networks.optimizer_base.Optimizer`'s.

    Example:
        >>> import numpy as np
        >>> from neural_networks.optimizers import Muon
        >>> opt = Muon(lr=0.02, weight_decay=0.0)
        >>> W = np.zeros((3, 3, 16, 32), dtype=np.float32)  # a convolution's filters
        >>> g = np.random.default_rng(0).normal(size=W.shape).astype(np.float32)
        >>> step = opt.update("W0", W, g, epoch=0)
        >>> step.shape, step.dtype, opt.orthogonalizes(np.zeros((1, 32)), "biases")
        ((3, 3, 16, 32), dtype('float32'), False)
    """

    name = "muon"
    TARGETS = ("matrices", "filters")
    LR_ADJUSTMENTS = ("original", "match_rms_adamw", "none")

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.1,
        ns_steps: int = 5,
        adjust_lr: str = "original",
        targets: str = "matrices",
        normalize_weights: bool = False,
        fallback: dict | None = None,
        clip_norm: float | None = None,
        lr_scheduler="constant",
        param_groups: dict | None = None,
        **spec_schedule,
    ) -> None:
        check_momentum(momentum, nesterov)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or not 1 <= ns_steps < 100:
            raise ValueError(f"ns_steps must be an integer in [1, 100); got {ns_steps!r}")
        if adjust_lr not in self.LR_ADJUSTMENTS:
            raise ValueError(f"adjust_lr must be one of {', '.join(self.LR_ADJUSTMENTS)}; got {adjust_lr!r}")
        if targets not in self.TARGETS:
            raise ValueError(f"targets must be one of {', '.join(self.TARGETS)}; got {targets!r}")
        if not isinstance(normalize_weights, bool):
            raise ValueError(f"normalize_weights must be true or false; got {normalize_weights!r}")
        self.momentum = float(momentum)
        self.nesterov = boolean(nesterov, "nesterov")
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        self.ns_steps = ns_steps
        self.adjust_lr = adjust_lr
        self.targets = targets
        self.normalize_weights = normalize_weights
        super().__init__(lr, lr_scheduler, clip_norm, param_groups, **spec_schedule)
        others = sorted(set(self.param_groups) - {"weights"})
        if others:
            raise ValueError(
                f"Muon's param_groups set only 'weights'; give the options of {', '.join(others)} "
                "in fallback.param_groups (the fallback optimizer updates those parameters)"
            )
        self.fallback = self._make_fallback({"name": "adamw", "lr": lr} if fallback is None else fallback)

    def _make_fallback(self, spec) -> Optimizer:
        if not isinstance(spec, dict) or "name" not in spec or "lr" not in spec:
            raise ValueError(f"fallback must be a mapping with at least 'name' and 'lr'; got {spec!r}")
        spec = dict(spec)
        if "lr_scheduler" not in spec:
            spec["lr_scheduler"] = {**self.lr_scheduler.config(), "lr": spec["lr"]}
        spec.setdefault("clip_norm", self.clip_norm)
        try:
            if OPTIMIZERS.canonical(spec["name"]) == self.name:
                raise ValueError("cannot itself be muon")
            return initialize_optimizer(**spec)
        except (TypeError, ValueError) as err:
            raise ValueError(f"fallback: {err}") from None

    def orthogonalizes(self, param: np.ndarray, group: str) -> bool:
        """Whether Muon itself updates ``param`` of ``group`` (else the fallback does)."""
        if group != "weights" or param.ndim < 2:
            return False
        return self.targets == "matrices" or param.ndim == 4

    def update(
        self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float, group: str = "weights"
    ) -> np.ndarray:
        if not self.orthogonalizes(param, group):
            return self.fallback.update(param_name, param, param_grad, epoch, group)
        options = self.group_options(group)
        grad = self.clip(param_grad)
        lr = self.lr_scheduler(epoch) * options["lr_multiplier"]
        momentum = options["momentum"]
        velocity = self.buffer(param_name, param)
        velocity *= momentum
        velocity += grad
        direction = grad + momentum * velocity if self.nesterov else velocity
        n_out = param.shape[-1]
        orthogonal = orthogonalize(direction.reshape(-1, n_out), self.ns_steps).reshape(param.shape)
        # param_new = keep * param - step * orthogonal, returned as delta = param - param_new
        keep = 1.0 - lr * options["weight_decay"]
        if self.normalize_weights:
            keep *= math.sqrt(n_out) / max(float(np.linalg.norm(param)), 1e-12)
        delta = self.scratch(param_name, param)
        np.multiply(orthogonal, param.dtype.type(lr * self._lr_factor(param.size // n_out, n_out)), out=delta)
        if keep != 1.0:
            delta += param.dtype.type(1.0 - keep) * param
        return delta

    def _lr_factor(self, rows: int, n_out: int) -> float:
        if self.adjust_lr == "original":
            return math.sqrt(max(1.0, n_out / rows))
        if self.adjust_lr == "match_rms_adamw":
            return 0.2 * math.sqrt(max(n_out, rows))
        return 1.0

    def state(self) -> dict[str, np.ndarray]:
        state = dict(self.cache)
        state.update({f"fallback.{key}": value for key, value in self.fallback.state().items()})
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        own = {key: value for key, value in state.items() if not key.startswith("fallback.")}
        super().load_state(own)
        prefix = len("fallback.")
        self.fallback.load_state({key[prefix:]: value for key, value in state.items() if key.startswith("fallback.")})

    def config(self) -> dict:
        return {
            **super().config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "ns_steps": self.ns_steps,
            "adjust_lr": self.adjust_lr,
            "targets": self.targets,
            "normalize_weights": self.normalize_weights,
            "fallback": self.fallback.config(),
        }
