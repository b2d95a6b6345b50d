"""Optimizers. They see only parameter arrays, their gradients and the group each belongs to,
never the model.

The spec's interface: ``optimizer.update(param_name, param, param_grad, epoch) -> delta`` and
the caller applies ``param -= delta`` (the model does so in place). ``param_name`` must be
unique per parameter across the network (the model uses ``"<param><layer index>"``, e.g.
``"W0"``, ``"b0"``, ``"gamma3"``); it only keys the optimizer's state. The returned ``delta``
may be an internal buffer that the next call overwrites: apply it before calling ``update`` again.

**Parameter groups**, as ``torch.optim``'s: the model hands every parameter over with its group,
``"weights"`` (dense and convolution kernels), ``"biases"`` or ``"normalization"`` (batch-norm
scales and shifts), through :meth:`Optimizer.step` (or ``update(..., group=...)``). Each group has
its own options, set with ``param_groups={"biases": {"lr_multiplier": 64, "weight_decay": 0}}``:

* ``lr_multiplier`` (default 1): the group's learning rate is the schedule's times this;
* ``weight_decay``: by default the optimizer's ``weight_decay`` for weights and 0 for biases and
  normalization parameters (a common practice for CNN training);
* ``momentum`` (SGD; default the optimizer's).

State (momentum, moments, step counts) is kept apart from scratch buffers, so :meth:`state`
returns exactly what a checkpoint must hold.

:func:`initialize_optimizer` builds one from the spec's ``optimizer_args``, which always carry
``momentum`` (0 for an optimizer without momentum). The rule: each optimizer lists, in
:attr:`Optimizer.neutral_arguments`, spec arguments with the value at which they change nothing
(``momentum=0``); such an argument, given at that value to an optimizer whose signature does not
take it, is dropped. Any other argument must be in the optimizer's signature.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from .registry import Registry
from .schedulers import LRScheduler, initialize_scheduler
from .validation import non_negative, number, positive

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Muon",
    "orthogonalize",
    "OPTIMIZERS",
    "GROUPS",
    "GROUP_OPTIONS",
    "initialize_optimizer",
]

#: The parameter groups a model hands over, and the options each may override.
GROUPS = ("weights", "biases", "normalization")
GROUP_OPTIONS = ("lr_multiplier", "weight_decay", "momentum")


def _check_momentum(momentum, nesterov) -> None:
    if isinstance(momentum, bool) or not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
    if nesterov and momentum == 0:
        raise ValueError("nesterov momentum needs momentum > 0")


class Optimizer(ABC):
    """Base class holding the learning-rate schedule and gradient clipping.

    ``lr_scheduler`` is a schedule name, a dict of :func:`initialize_scheduler` arguments or an
    :class:`LRScheduler`. ``clip_norm``: when set, a gradient whose L2 norm exceeds it is
    rescaled to that norm; as in the spec, the norm is taken per parameter array.
    """

    name = ""
    #: Spec arguments and their neutral values: given at that value to an optimizer whose signature
    #: does not take them, :func:`initialize_optimizer` drops them (the spec's ``optimizer_args``
    #: always carry ``momentum``, 0 for Adam); any other value is an unexpected argument.
    neutral_arguments: dict = {"momentum": 0.0}

    def __init__(
        self,
        lr: float,
        lr_scheduler="constant",
        lr_decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        clip_norm: float | None = None,
        param_groups: dict | None = None,
    ) -> None:
        if isinstance(lr_scheduler, LRScheduler):
            self.lr_scheduler = lr_scheduler
        elif isinstance(lr_scheduler, dict):
            self.lr_scheduler = initialize_scheduler(**{"lr": lr, **lr_scheduler})
        else:
            self.lr_scheduler = initialize_scheduler(
                lr_scheduler, lr=lr, decay=lr_decay, stage_length=stage_length, staircase=staircase
            )
        self.lr = float(lr)
        self.clip_norm = None if clip_norm is None else positive(clip_norm, "clip_norm")
        self.cache: dict[str, np.ndarray] = {}  # state: what a checkpoint keeps (the spec's name)
        self._scratch: dict[str, np.ndarray] = {}  # reusable output buffers, rebuilt on demand
        self.param_groups = self._check_groups(param_groups)

    def clip(self, grad: np.ndarray) -> np.ndarray:
        """``grad`` rescaled to norm ``clip_norm`` if it is longer (a new array), else itself."""
        if self.clip_norm is None:
            return grad
        norm = float(np.sqrt(np.vdot(grad, grad)))
        if norm > self.clip_norm:
            return grad * (self.clip_norm / norm)
        return grad

    @staticmethod
    def _check_groups(param_groups) -> dict[str, dict[str, float]]:
        if param_groups is None:
            return {}
        if not isinstance(param_groups, dict):
            raise ValueError(
                f"param_groups must map group names ({', '.join(GROUPS)}) to options; got {param_groups!r}"
            )
        checked = {}
        for group, options in param_groups.items():
            if group not in GROUPS:
                raise ValueError(f"unknown parameter group {group!r}; valid groups: {', '.join(GROUPS)}")
            if not isinstance(options, dict):
                raise ValueError(f"param_groups.{group} must map options ({', '.join(GROUP_OPTIONS)}) to numbers")
            for key, value in options.items():
                if key not in GROUP_OPTIONS:
                    raise ValueError(
                        f"unknown option param_groups.{group}.{key}; valid options: {', '.join(GROUP_OPTIONS)}"
                    )
                if key == "momentum":
                    value = number(value, f"param_groups.{group}.momentum")
                    if not 0.0 <= value < 1.0:
                        raise ValueError(f"param_groups.{group}.momentum must be in [0, 1); got {value!r}")
                else:
                    value = non_negative(value, f"param_groups.{group}.{key}")
            checked[group] = {key: float(value) for key, value in options.items()}
        return checked

    def group_options(self, group: str) -> dict[str, float]:
        """The resolved options of ``group``: ``lr_multiplier``, ``weight_decay`` and, for
        optimizers with momentum, ``momentum``."""
        if group not in GROUPS:
            raise ValueError(f"unknown parameter group {group!r}; valid groups: {', '.join(GROUPS)}")
        options = {
            "lr_multiplier": 1.0,
            "weight_decay": getattr(self, "weight_decay", 0.0) if group == "weights" else 0.0,
        }
        if hasattr(self, "momentum"):
            options["momentum"] = self.momentum
        options.update(self.param_groups.get(group, {}))
        return options

    def buffer(self, key: str, like: np.ndarray) -> np.ndarray:
        """The state array ``key`` (zeros shaped like ``like`` the first time)."""
        value = self.cache.get(key)
        if value is None or value.shape != like.shape or value.dtype != like.dtype:
            value = self.cache[key] = np.zeros_like(like)
        return value

    def scratch(self, key: str, like: np.ndarray) -> np.ndarray:
        """A reusable output buffer shaped like ``like`` (not state: never saved)."""
        value = self._scratch.get(key)
        if value is None or value.shape != like.shape or value.dtype != like.dtype:
            value = self._scratch[key] = np.empty_like(like)
        return value

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's state (momentum, moments, step counts), for checkpoints."""
        return dict(self.cache)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore state written by :meth:`state` (scratch keys of older checkpoints are dropped)."""
        self.cache = {key: np.array(value) for key, value in state.items() if not key.startswith(("step.", "delta."))}

    @abstractmethod
    def update(
        self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float, group: str = "weights"
    ) -> np.ndarray:
        """The step ``delta`` to subtract from ``param``, a parameter of ``group``."""

    def step(self, groups, epoch: float) -> None:
        """Update every parameter in place: ``groups`` is a list of ``{"name": group, "params":
        [(param_name, param, grad), ...]}`` (what :meth:`NeuralNetwork.parameter_groups` gives)."""
        for group in groups:
            for param_name, param, grad in group["params"]:
                param -= self.update(param_name, param, grad, epoch, group=group["name"])

    def config(self) -> dict:
        """Constructor arguments that rebuild this optimizer (JSON-serialisable)."""
        config = {
            "name": self.name,
            "lr": self.lr,
            "clip_norm": self.clip_norm,
            "lr_scheduler": self.lr_scheduler.config(),
        }
        if self.param_groups:
            config["param_groups"] = {group: dict(options) for group, options in self.param_groups.items()}
        return config


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as in the spec:
    ``v <- momentum * v + lr * g``; ``param <- param - v``.

    ``nesterov``: step ``momentum * v + lr * g`` instead (PyTorch's Nesterov, with the learning
    rate folded into the velocity). ``weight_decay``: L2 penalty added to the gradient of
    weights, ``g <- g + weight_decay * param``.
    """

    name = "sgd"

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        clip_norm: float | None = None,
        lr_scheduler="constant",
        lr_decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        param_groups: dict | None = None,
    ) -> None:
        _check_momentum(momentum, nesterov)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm, param_groups)

    def update(
        self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float, group: str = "weights"
    ) -> np.ndarray:
        options = self.group_options(group)
        grad = self.clip(param_grad)
        if options["weight_decay"]:
            grad = grad + options["weight_decay"] * param
        lr = self.lr_scheduler(epoch) * options["lr_multiplier"]
        momentum = options["momentum"]
        velocity = self.buffer(param_name, param)
        velocity *= momentum
        velocity += lr * grad
        if not self.nesterov:
            return velocity
        step = self.scratch(param_name, param)
        np.multiply(velocity, momentum, out=step)
        step += lr * grad
        return step

    def config(self) -> dict:
        return {
            **super().config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``: ``m <- b1 m + (1 - b1) g``,
    ``v <- b2 v + (1 - b2) g^2``, ``param <- param - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``.
    ``weight_decay`` is the coupled L2 penalty ``g <- g + weight_decay * param`` (weights only,
    unless a group's options say otherwise)."""

    name = "adam"
    decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        lr_scheduler="constant",
        lr_decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        param_groups: dict | None = None,
    ) -> None:
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm, param_groups)
        for value, what in ((beta1, "beta1"), (beta2, "beta2")):
            if isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{what} must be in [0, 1); got {value!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        if not float(eps) > 0:
            raise ValueError(f"eps must be positive; got {eps!r}")
        self.eps = float(eps)

    def update(
        self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float, group: str = "weights"
    ) -> np.ndarray:
        options = self.group_options(group)
        grad = self.clip(param_grad)
        lr = self.lr_scheduler(epoch) * options["lr_multiplier"]
        decay = options["weight_decay"]
        if decay and not self.decoupled:
            grad = grad + decay * param
        m = self.buffer(f"m.{param_name}", param)
        v = self.buffer(f"v.{param_name}", param)
        step_count = self.cache.get(f"t.{param_name}")
        t = 1 if step_count is None else int(step_count) + 1
        self.cache[f"t.{param_name}"] = np.array(t)
        m *= self.beta1
        m += (1.0 - self.beta1) * grad
        v *= self.beta2
        v += (1.0 - self.beta2) * np.square(grad)
        bias1 = 1.0 - self.beta1**t
        bias2 = 1.0 - self.beta2**t
        delta = self.scratch(param_name, param)
        np.sqrt(v, out=delta)
        delta *= 1.0 / math.sqrt(bias2)
        delta += self.eps
        np.divide(m, delta, out=delta)
        delta *= lr / bias1
        if decay and self.decoupled:
            delta += (lr * decay) * param
        return delta

    def config(self) -> dict:
        return {
            **super().config(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; ``torch.optim.AdamW``):
    ``param <- param - lr * weight_decay * param`` besides the Adam step (weights only, unless a
    group's options say otherwise)."""

    name = "adamw"
    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
        lr_scheduler="constant",
        lr_decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        param_groups: dict | None = None,
    ) -> None:
        super().__init__(
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            clip_norm,
            lr_scheduler,
            lr_decay,
            stage_length,
            staircase,
            param_groups,
        )


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
    ``"none"`` 1 (airbench94_muon). ``s`` is 1, or with ``normalize_weights`` the factor that
    brings ``param`` to Frobenius norm ``sqrt(n_out)`` first (airbench94_muon, for filters
    followed by batch norm, whose output does not depend on their scale).

    ``targets``: ``"matrices"`` (every parameter of the ``"weights"`` group: dense and
    convolution kernels) or ``"filters"`` (convolution kernels only, as airbench94_muon; dense
    kernels then go to the fallback). Every other parameter (biases, batch norm, and weights left
    out) is updated by ``fallback``, an optimizer made from its own ``{name, lr, ...}`` (default
    AdamW at Muon's ``lr``, as Keras' Muon) that takes Muon's ``lr_scheduler`` (the same
    arguments at its own ``lr``) and ``clip_norm`` unless it sets them. ``param_groups`` here
    may only set ``weights``' options; those of the fallback's groups go in its own
    ``param_groups``. State: Muon's momentum under the parameter names, the fallback's under
    ``fallback.<key>``.
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
        lr_decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        param_groups: dict | None = None,
    ) -> None:
        _check_momentum(momentum, nesterov)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or not 1 <= ns_steps < 100:
            raise ValueError(f"ns_steps must be an integer in [1, 100); got {ns_steps!r}")
        if adjust_lr not in self.LR_ADJUSTMENTS:
            raise ValueError(f"adjust_lr must be one of {', '.join(self.LR_ADJUSTMENTS)}; got {adjust_lr!r}")
        if targets not in self.TARGETS:
            raise ValueError(f"targets must be one of {', '.join(self.TARGETS)}; got {targets!r}")
        if not isinstance(normalize_weights, bool):
            raise ValueError(f"normalize_weights must be true or false; got {normalize_weights!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        self.ns_steps = ns_steps
        self.adjust_lr = adjust_lr
        self.targets = targets
        self.normalize_weights = normalize_weights
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm, param_groups)
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


#: Every optimizer by name; adding one is its class above (its whole signature written out, so that
#: arguments are checked from it) and one ``OPTIMIZERS.add`` line.
OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("sgd", SGD)
OPTIMIZERS.add("adam", Adam)
OPTIMIZERS.add("adamw", AdamW)
OPTIMIZERS.add("muon", Muon)


def initialize_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    """Make an optimizer from the spec's ``optimizer_args`` (``name`` is case-insensitive;
    ``lr_scheduler``, ``lr_decay``, ``stage_length``, ``staircase``, ``clip_norm``, ``momentum``
    and each optimizer's own arguments). A spec argument the optimizer does not take is dropped
    when it has its neutral value (:attr:`Optimizer.neutral_arguments`: ``momentum=0`` for Adam);
    ``ValueError`` names an unknown optimizer or argument and the valid ones."""
    cls = OPTIMIZERS.get(name)
    accepted = OPTIMIZERS.arguments(name)
    neutral = cls.neutral_arguments
    kwargs = {
        key: value
        for key, value in kwargs.items()
        if not (key in neutral and key not in accepted and value == neutral[key])
    }
    return OPTIMIZERS.create(name, lr=lr, **kwargs)
