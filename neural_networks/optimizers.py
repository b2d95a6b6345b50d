"""Optimizers. They see only parameter arrays and their gradients, never the model.

The spec's interface: ``optimizer.update(param_name, param, param_grad, epoch) -> delta`` and
the caller applies ``param -= delta`` (the model does so in place). ``param_name`` must be
unique per parameter across the network (the model uses ``"<param><layer index>"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .schedulers import LRScheduler, initialize_scheduler

__all__ = ["Optimizer", "SGD", "OPTIMIZERS", "initialize_optimizer"]


class Optimizer(ABC):
    """Base class holding the learning-rate schedule and gradient clipping.

    ``clip_norm``: when set, a gradient whose L2 norm exceeds it is rescaled to that norm. As
    in the spec, the norm is taken per parameter array, not over the whole network.
    """

    def __init__(self, lr: float, lr_scheduler="constant", lr_decay: float = 0.99, stage_length: int = 1000,
                 staircase: bool = True, clip_norm: float | None = None) -> None:
        if isinstance(lr_scheduler, LRScheduler):
            self.lr_scheduler = lr_scheduler
        else:
            self.lr_scheduler = initialize_scheduler(lr_scheduler, lr=lr, decay=lr_decay, stage_length=stage_length,
                                                     staircase=staircase)
        self.lr = float(lr)
        if clip_norm is not None and not float(clip_norm) > 0:
            raise ValueError(f"clip_norm must be positive or None; got {clip_norm}")
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

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's buffers (e.g. momentum), keyed by parameter name, for checkpoints."""
        return dict(self.cache)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore buffers written by :meth:`state`."""
        self.cache = {key: np.array(value) for key, value in state.items()}

    @abstractmethod
    def update(self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float) -> np.ndarray:
        """The step ``delta`` to subtract from ``param``."""

    def config(self) -> dict:
        """Constructor arguments that rebuild this optimizer (JSON-serialisable)."""
        sched = self.lr_scheduler.config()
        return {"name": self.name, "lr": self.lr, "clip_norm": self.clip_norm, "lr_scheduler": sched}

    name = ""


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, as in the spec:
    ``v <- momentum * v + lr * g``; ``param <- param - v``."""

    name = "sgd"

    def __init__(self, lr: float, momentum: float = 0.0, clip_norm: float | None = None, lr_scheduler="constant",
                 lr_decay: float = 0.99, stage_length: int = 1000, staircase: bool = True) -> None:
        super().__init__(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm)
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        self.momentum = float(momentum)

    def update(self, param_name: str, param: np.ndarray, param_grad: np.ndarray, epoch: float) -> np.ndarray:
        grad = self.clip(param_grad)
        lr = self.lr_scheduler(epoch)
        velocity = self.cache.get(param_name)
        if velocity is None or velocity.shape != param.shape:
            velocity = self.cache[param_name] = np.zeros_like(param)
        velocity *= self.momentum
        velocity += lr * grad
        return velocity

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum}


OPTIMIZERS = {"sgd": SGD}


def initialize_optimizer(name: str, lr: float, lr_scheduler="constant", lr_decay: float = 0.99,
                         stage_length: int = 1000, staircase: bool = True, clip_norm: float | None = None,
                         momentum: float = 0.0, **kwargs) -> Optimizer:
    """Make an optimizer from the spec's ``optimizer_args`` (``name`` is case-insensitive).

    ``lr_scheduler`` is a schedule name or a dict of :func:`initialize_scheduler` arguments
    (as :meth:`Optimizer.config` writes it)."""
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    if kwargs:
        raise ValueError(f"unknown optimizer argument(s) {', '.join(sorted(kwargs))} for {name!r}; valid arguments: "
                         "lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm, momentum")
    if isinstance(lr_scheduler, dict):
        lr_scheduler = initialize_scheduler(**lr_scheduler)
    return OPTIMIZERS[key](lr=lr, momentum=momentum, clip_norm=clip_norm, lr_scheduler=lr_scheduler,
                           lr_decay=lr_decay, stage_length=stage_length, staircase=staircase)
