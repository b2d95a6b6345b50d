"""Learning-rate schedules: callables ``schedule(step) -> learning rate``.

``step`` counts whatever the caller advances it by; the spec's model passes the epoch number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["LRScheduler", "ConstantLR", "ExponentialLR", "SCHEDULERS", "initialize_scheduler"]


class LRScheduler(ABC):
    """Base class: ``lr`` is the initial learning rate."""

    def __init__(self, lr: float) -> None:
        lr = float(lr)
        if not lr > 0:
            raise ValueError(f"learning rate must be positive; got {lr}")
        self.lr = lr

    @abstractmethod
    def __call__(self, step: float) -> float:
        """Learning rate at ``step``."""

    def config(self) -> dict:
        """Arguments of :func:`initialize_scheduler` that rebuild this schedule."""
        return {"name": self.name, "lr": self.lr}


class ConstantLR(LRScheduler):
    """The same learning rate at every step."""

    name = "constant"

    def __call__(self, step: float) -> float:
        return self.lr


class ExponentialLR(LRScheduler):
    """``lr * decay ** (step / stage_length)``; with ``staircase`` the exponent is floored, so
    the rate drops by ``decay`` once every ``stage_length`` steps."""

    name = "exponential"

    def __init__(self, lr: float, decay: float = 0.99, stage_length: int = 1000, staircase: bool = True) -> None:
        super().__init__(lr)
        if not 0 < float(decay) <= 1:
            raise ValueError(f"lr_decay must be in (0, 1]; got {decay}")
        if isinstance(stage_length, bool) or not float(stage_length).is_integer() or int(stage_length) < 1:
            raise ValueError(f"stage_length must be a positive integer; got {stage_length!r}")
        self.decay = float(decay)
        self.stage_length = int(stage_length)
        self.staircase = bool(staircase)

    def __call__(self, step: float) -> float:
        exponent = step // self.stage_length if self.staircase else step / self.stage_length
        return self.lr * self.decay**exponent

    def config(self) -> dict:
        return {**super().config(), "decay": self.decay, "stage_length": self.stage_length, "staircase": self.staircase}


SCHEDULERS = {"constant": ConstantLR, "exponential": ExponentialLR}


def initialize_scheduler(name: str, lr: float, decay: float = 0.99, stage_length: int = 1000, staircase: bool = True) -> LRScheduler:
    """Make a schedule from its name (``"constant"`` or ``"exponential"``) and the spec's
    ``optimizer_args`` (``lr_decay`` is passed here as ``decay``)."""
    key = str(name).lower()
    if key not in SCHEDULERS:
        raise ValueError(f"unknown lr_scheduler {name!r}; valid names: {', '.join(SCHEDULERS)}")
    if key == "constant":
        return ConstantLR(lr)
    return ExponentialLR(lr, decay=decay, stage_length=stage_length, staircase=staircase)
