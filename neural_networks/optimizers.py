"""Optimizers. They see only parameter arrays and their gradients, never the model.

The spec's interface: ``optimizer.update(param_name, param, param_grad, epoch) -> delta`` and
the caller applies ``param -= delta`` (the model does so in place). ``param_name`` must be
unique per parameter across the network (the model uses ``"<param><layer index>"``, e.g.
``"W0"``, ``"b0"``, ``"gamma3"``). The returned ``delta`` may be an internal buffer that the
next call overwrites: apply it before calling ``update`` again.

Weight decay, where offered, applies to weights (parameters named ``W``) only, not to
biases or batch-norm scales and shifts, a common practice for CNN training.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod

import numpy as np

from .schedulers import LRScheduler, initialize_scheduler
from .validation import non_negative

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "initialize_optimizer"]

_WEIGHT_NAME = re.compile(r"^W\d*$")


class Optimizer(ABC):
    """Base class holding the learning-rate schedule and gradient clipping.

    ``lr_scheduler`` is a schedule name, a dict of :func:`initialize_scheduler` arguments or an
    :class:`LRScheduler`. ``clip_norm``: when set, a gradient whose L2 norm exceeds it is
    rescaled to that norm; as in the spec, the norm is taken per parameter array.
    """

    name = ""

    def __init__(self, lr: float, lr_scheduler="constant", lr_decay: float = 0.99, stage_length: int = 1000,
                 staircase: bool = True, clip_norm: float | None = None) -> None:
        if isinstance(lr_scheduler, LRScheduler):
            self.lr_scheduler = lr_scheduler
        elif isinstance(lr_scheduler, dict):
            self.lr_scheduler = initialize_scheduler(**{"lr": lr, **lr_scheduler})
        else:
            self.lr_scheduler = initialize_scheduler(lr_scheduler, lr=lr, decay=lr_decay, stage_length=stage_length,
                                                     staircase=staircase)
        self.lr = float(lr)
        if clip_norm is not None and (isinstance(clip_norm, bool) or not float(clip_norm) > 0):
            raise ValueError(f"clip_norm must be positive or None; got {clip_norm!r}")
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.cache: dict[str, np.ndarray] = {}

    def clip(self, grad: np.ndarray) -> np.ndarray:
        """``grad`` rescaled to norm ``clip_norm`` if it is longer (a new array), else itself."""
        if self.clip_norm is None:
            return grad
        norm = float(np.sqrt(np.vdot(grad, grad)))
        if norm > self.clip_norm:
            return grad * (self.clip_norm / norm)
        return grad

    def buffer(self, key: str, like: np.ndarray) -> np.ndarray:
        """The state array ``key`` (zeros shaped like ``like`` the first time)."""
        value = self.cache.get(key)
        if value is None or value.shape != like.shape or value.dtype != like.dtype:
            value = self.cache[key] = np.zeros_like(like)
        return value

    @staticmethod
    def is_weight(param_name: str) -> bool:
        """Whether weight decay applies to this parameter (weights ``W``, not biases or BN)."""
        return bool(_WEIGHT_NAME.match(param_name))

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's buffers (momentum, moments, step counts), for checkpoints."""
        return dict(self.cache)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore buffers written by :meth:`state`."""
        self.cache = {key: np.array(value) for key, value in state.items()}

    @abstractmethod
    def update(self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float) -> np.ndarray:
        """The step ``delta`` to subtract from ``param``."""

    def config(self) -> dict:
        """Constructor arguments that rebuild this optimizer (JSON-serialisable)."""
        return {"name": self.name, "lr": self.lr, "clip_norm": self.clip_norm, "lr_scheduler": self.lr_scheduler.config()}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as in the spec:
    ``v <- momentum * v + lr * g``; ``param <- param - v``.

    ``nesterov``: step ``momentum * v + lr * g`` instead (PyTorch's Nesterov, with the learning
    rate folded into the velocity). ``weight_decay``: L2 penalty added to the gradient of
    weights, ``g <- g + weight_decay * param``.
    """

    name = "sgd"

    def __init__(self, lr: float, momentum: float = 0.0, clip_norm: float | None = None, lr_scheduler="constant",
                 lr_decay: float = 0.99, stage_length: int = 1000, staircase: bool = True, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm)
        if isinstance(momentum, bool) or not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = non_negative(weight_decay, "weight_decay")

    def update(self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float) -> np.ndarray:
        grad = self.clip(param_grad)
        if self.weight_decay and self.is_weight(param_name):
            grad = grad + self.weight_decay * param
        lr = self.lr_scheduler(epoch)
        velocity = self.buffer(param_name, param)
        velocity *= self.momentum
        velocity += lr * grad
        if not self.nesterov:
            return velocity
        step = self.buffer(f"step.{param_name}", param)
        np.multiply(velocity, self.momentum, out=step)
        step += lr * grad
        return step

    def state(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.cache.items() if not k.startswith("step.")}  # scratch, not state

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``: ``m <- b1 m + (1 - b1) g``,
    ``v <- b2 v + (1 - b2) g^2``, ``param <- param - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``.
    ``weight_decay`` is the coupled L2 penalty ``g <- g + weight_decay * param`` (weights only)."""

    name = "adam"
    decoupled = False

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None, lr_scheduler="constant",
                 lr_decay: float = 0.99, stage_length: int = 1000, staircase: bool = True) -> None:
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm)
        for value, what in ((beta1, "beta1"), (beta2, "beta2")):
            if isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{what} must be in [0, 1); got {value!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        if not float(eps) > 0:
            raise ValueError(f"eps must be positive; got {eps!r}")
        self.eps = float(eps)
        self.weight_decay = non_negative(weight_decay, "weight_decay")

    def update(self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float) -> np.ndarray:
        grad = self.clip(param_grad)
        lr = self.lr_scheduler(epoch)
        decay = self.weight_decay if self.is_weight(param_name) else 0.0
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
        delta = self.buffer(f"delta.{param_name}", param)
        np.sqrt(v, out=delta)
        delta *= 1.0 / math.sqrt(bias2)
        delta += self.eps
        np.divide(m, delta, out=delta)
        delta *= lr / bias1
        if decay and self.decoupled:
            delta += (lr * decay) * param
        return delta

    def state(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.cache.items() if not k.startswith("delta.")}

    def config(self) -> dict:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; ``torch.optim.AdamW``):
    ``param <- param - lr * weight_decay * param`` besides the Adam step (weights only)."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01, **kwargs) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, **kwargs)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def initialize_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    """Make an optimizer from the spec's ``optimizer_args`` (``name`` is case-insensitive;
    ``lr_scheduler``, ``lr_decay``, ``stage_length``, ``staircase``, ``clip_norm``, ``momentum``
    and each optimizer's own arguments)."""
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[key]
    import inspect

    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    if cls is AdamW:
        valid += [p for p in inspect.signature(Adam.__init__).parameters if p not in ("self",) and p not in valid]
    if key != "sgd" and kwargs.get("momentum") in (0, 0.0):
        kwargs.pop("momentum")  # the spec's optimizer_args always carry momentum; 0 means none
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown optimizer argument(s) {', '.join(unknown)} for {name!r}; valid arguments: "
                         f"{', '.join(valid)}")
    return cls(lr=lr, **kwargs)
