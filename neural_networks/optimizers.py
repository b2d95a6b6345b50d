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

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "GROUPS", "GROUP_OPTIONS", "initialize_optimizer"]

#: The parameter groups a model hands over, and the options each may override.
GROUPS = ("weights", "biases", "normalization")
GROUP_OPTIONS = ("lr_multiplier", "weight_decay", "momentum")


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
        if isinstance(momentum, bool) or not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
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


#: Every optimizer by name; adding one is its class above (its whole signature written out, so that
#: arguments are checked from it) and one ``OPTIMIZERS.add`` line.
OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("sgd", SGD)
OPTIMIZERS.add("adam", Adam)
OPTIMIZERS.add("adamw", AdamW)


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
