"""Learning-rate schedules: callables ``schedule(t) -> learning rate``.

``t`` is the training progress in epochs. The model's training loop passes a fractional
epoch (``epoch + batch / batches_per_epoch``) so that schedules such as cosine and one-cycle
change smoothly within an epoch; the spec's constant and (staircase) exponential schedules
give the same rate for every batch of an epoch.

Every schedule takes an optional linear warm-up: for ``t < warmup_epochs`` the rate is the
schedule's rate scaled by ``warmup_start + (1 - warmup_start) * t / warmup_epochs`` (each
schedule's signature names ``warmup_epochs`` and ``warmup_start``, so that its arguments are
checked from it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from .registry import Registry
from .validation import boolean, number, positive

__all__ = [
    "LRScheduler",
    "ConstantLR",
    "ExponentialLR",
    "StepLR",
    "CosineLR",
    "OneCycleLR",
    "TriangularLR",
    "SCHEDULERS",
    "initialize_scheduler",
    "resolve_scheduler",
]


class LRScheduler(ABC):
    """Base class: ``lr`` is the initial (for one-cycle: the peak) learning rate.

    ``ValueError`` for a learning rate that is not positive, a negative ``warmup_epochs`` and a
    ``warmup_start`` outside [0, 1]."""

    name = ""

    def __init__(self, lr: float, warmup_epochs: float = 0.0, warmup_start: float = 0.1) -> None:
        self.lr = positive(lr, "learning rate")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, float)) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be a non-negative number; got {warmup_epochs!r}")
        if not 0.0 <= number(warmup_start, "warmup_start") <= 1.0:
            raise ValueError(f"warmup_start must be in [0, 1]; got {warmup_start!r}")
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_start = float(warmup_start)

    def __call__(self, t: float) -> float:
        """Learning rate at progress ``t`` (epochs)."""
        rate = self.rate(t)
        if self.warmup_epochs and t < self.warmup_epochs:  # (without the first test, t < 0 divided by 0)
            rate *= self.warmup_start + (1.0 - self.warmup_start) * max(t, 0.0) / self.warmup_epochs
        return rate

    @abstractmethod
    def rate(self, t: float) -> float:
        """The schedule's rate before warm-up."""

    def config(self) -> dict:
        """Arguments of :func:`initialize_scheduler` that rebuild this schedule."""
        out = {"name": self.name, "lr": self.lr}
        if self.warmup_epochs:
            out.update(warmup_epochs=self.warmup_epochs, warmup_start=self.warmup_start)
        return out


class ConstantLR(LRScheduler):
    """The same learning rate at every step."""

    name = "constant"

    def rate(self, t: float) -> float:
        return self.lr


class ExponentialLR(LRScheduler):
    """``lr * decay ** (t / stage_length)``; with ``staircase`` the exponent is floored, so
    the rate drops by ``decay`` once every ``stage_length`` epochs (the spec's schedule).

    ``ValueError`` (naming the spec's ``lr_decay``) for a decay outside (0, 1] and a
    ``stage_length`` that is not a positive whole number.

    Example:
        >>> from neural_networks.schedulers import ExponentialLR
        >>> schedule = ExponentialLR(0.1, decay=0.5, stage_length=2)
        >>> [schedule(t) for t in (0, 1, 2, 3.5, 4)]
        [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    name = "exponential"

    def __init__(
        self,
        lr: float,
        decay: float = 0.99,
        stage_length: int = 1000,
        staircase: bool = True,
        *,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.1,
    ) -> None:
        super().__init__(lr, warmup_epochs, warmup_start)
        if not 0 < number(decay, "lr_decay") <= 1:
            raise ValueError(f"lr_decay must be in (0, 1]; got {decay}")
        if not number(stage_length, "stage_length").is_integer() or int(stage_length) < 1:
            raise ValueError(f"stage_length must be a positive integer; got {stage_length!r}")
        self.decay = float(decay)
        self.stage_length = int(stage_length)
        self.staircase = boolean(staircase, "staircase")

    def rate(self, t: float) -> float:
        exponent = t // self.stage_length if self.staircase else t / self.stage_length
        return self.lr * self.decay**exponent

    def config(self) -> dict:
        return {**super().config(), "decay": self.decay, "stage_length": self.stage_length, "staircase": self.staircase}


class StepLR(LRScheduler):
    """``lr * gamma ** floor(t / step_size)``: divide by ``1/gamma`` every ``step_size`` epochs.
    ``ValueError`` for a ``step_size`` that is not positive or a ``gamma`` outside (0, 1]."""

    name = "step"

    def __init__(
        self,
        lr: float,
        step_size: float = 10,
        gamma: float = 0.1,
        *,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.1,
    ) -> None:
        super().__init__(lr, warmup_epochs, warmup_start)
        self.step_size = positive(step_size, "step_size")
        if not 0 < number(gamma, "gamma") <= 1:
            raise ValueError(f"gamma must be in (0, 1]; got {gamma!r}")
        self.gamma = float(gamma)

    def rate(self, t: float) -> float:
        return self.lr * self.gamma ** math.floor(t / self.step_size + 1e-9)

    def config(self) -> dict:
        return {**super().config(), "step_size": self.step_size, "gamma": self.gamma}


class CosineLR(LRScheduler):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_epochs``:
    ``min_lr + (lr - min_lr) * (1 + cos(pi * t / total_epochs)) / 2`` (then ``min_lr``).
    ``ValueError`` for a ``total_epochs`` that is not positive or a ``min_lr`` outside [0, lr].

    Example:
        >>> from neural_networks.schedulers import CosineLR
        >>> schedule = CosineLR(0.1, total_epochs=10)
        >>> [round(schedule(t), 4) for t in (0, 5, 10, 12)]
        [0.1, 0.05, 0.0, 0.0]
    """

    name = "cosine"

    def __init__(
        self,
        lr: float,
        total_epochs: float = 10,
        min_lr: float = 0.0,
        *,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.1,
    ) -> None:
        super().__init__(lr, warmup_epochs, warmup_start)
        self.total_epochs = positive(total_epochs, "total_epochs")
        if not 0 <= number(min_lr, "min_lr") <= self.lr:
            raise ValueError(f"min_lr must be in [0, lr]; got {min_lr!r}")
        self.min_lr = float(min_lr)

    def rate(self, t: float) -> float:
        progress = min(max(t / self.total_epochs, 0.0), 1.0)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def config(self) -> dict:
        return {**super().config(), "total_epochs": self.total_epochs, "min_lr": self.min_lr}


class OneCycleLR(LRScheduler):
    """One-cycle policy (Smith & Topin; ``torch.optim.lr_scheduler.OneCycleLR`` with cosine
    annealing): from ``lr / div_factor`` up to ``lr`` over the first ``pct_start`` of
    ``total_epochs``, then down to ``lr / (div_factor * final_div_factor)``. The warm-up is
    built in, so ``warmup_epochs`` is normally left at 0. ``ValueError`` for a ``pct_start``
    outside (0, 1) or a ``total_epochs`` or division factor that is not positive."""

    name = "one_cycle"

    def __init__(
        self,
        lr: float,
        total_epochs: float = 10,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        *,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.1,
    ) -> None:
        super().__init__(lr, warmup_epochs, warmup_start)
        self.total_epochs = positive(total_epochs, "total_epochs")
        if not 0 < number(pct_start, "pct_start") < 1:
            raise ValueError(f"pct_start must be in (0, 1); got {pct_start!r}")
        self.pct_start = float(pct_start)
        self.div_factor = positive(div_factor, "div_factor")
        self.final_div_factor = positive(final_div_factor, "final_div_factor")

    def rate(self, t: float) -> float:
        initial = self.lr / self.div_factor
        final = initial / self.final_div_factor
        peak_at = self.pct_start * self.total_epochs
        if t <= peak_at:
            start, end, progress = initial, self.lr, t / peak_at
        else:
            start, end, progress = self.lr, final, (t - peak_at) / (self.total_epochs - peak_at)
        progress = min(max(progress, 0.0), 1.0)
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def config(self) -> dict:
        return {
            **super().config(),
            "total_epochs": self.total_epochs,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


class TriangularLR(LRScheduler):
    """Triangular (warm-up, then linear decay) schedule: linear from
    ``start_factor * lr`` at ``t = 0`` up to the peak ``lr`` at ``t = pct_start * total_epochs``,
    then linear down to ``end_factor * lr`` at ``t = total_epochs`` (and that rate after it):

    ``lr * (start_factor + (1 - start_factor) * t / T_peak)`` for ``t <= T_peak``,
    ``lr * (1 + (end_factor - 1) * (t - T_peak) / (total_epochs - T_peak))`` after.

    The defaults (start 0.2, peak at 0.23, end 0.07) are a short CIFAR-10 recipe's; the peak
    lies at the exact fraction ``pct_start``, not rounded down to a whole step as there.
    ``pct_start = 0`` starts at the peak (a pure linear decay). ``total_epochs`` and ``pct_start``
    are named as :class:`OneCycleLR`'s, so that the two look alike in a config; the warm-up is
    built in, so ``warmup_epochs`` is normally left at 0.

    ``ValueError`` for a ``total_epochs`` that is not positive, a ``pct_start`` outside [0, 1)
    and factors outside [0, 1] (and the warm-up errors of :class:`LRScheduler`).

    Example:
        >>> from neural_networks.schedulers import TriangularLR
        >>> schedule = TriangularLR(1.0, total_epochs=10, pct_start=0.2, start_factor=0.2, end_factor=0.0)
        >>> [round(schedule(t), 4) for t in (0, 1, 2, 6, 10)]
        [0.2, 0.6, 1.0, 0.5, 0.0]
    """

    name = "triangular"

    def __init__(
        self,
        lr: float,
        total_epochs: float = 10,
        pct_start: float = 0.23,
        start_factor: float = 0.2,
        end_factor: float = 0.07,
        *,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.1,
    ) -> None:
        super().__init__(lr, warmup_epochs, warmup_start)
        self.total_epochs = positive(total_epochs, "total_epochs")
        self.pct_start = _in_interval(pct_start, "pct_start", "[0, 1)")
        self.start_factor = _in_interval(start_factor, "start_factor", "[0, 1]")
        self.end_factor = _in_interval(end_factor, "end_factor", "[0, 1]")

    def rate(self, t: float) -> float:
        peak_at = self.pct_start * self.total_epochs
        if t < peak_at:
            factor = self.start_factor + (1.0 - self.start_factor) * max(t, 0.0) / peak_at
        else:
            progress = min(max((t - peak_at) / (self.total_epochs - peak_at), 0.0), 1.0)
            factor = 1.0 + (self.end_factor - 1.0) * progress
        return self.lr * factor

    def config(self) -> dict:
        return {
            **super().config(),
            "total_epochs": self.total_epochs,
            "pct_start": self.pct_start,
            "start_factor": self.start_factor,
            "end_factor": self.end_factor,
        }


def _in_interval(value, what: str, interval: str) -> float:
    """``value`` as a float if it is a finite number in ``interval`` (``"[0, 1)"`` or ``"[0, 1]"``),
    else ``ValueError`` naming ``what``, the interval and the value."""
    value = number(value, what)
    if not (0.0 <= value < 1.0 if interval == "[0, 1)" else 0.0 <= value <= 1.0):
        raise ValueError(f"{what} must be in {interval}; got {value!r}")
    return value


#: Every schedule by name; adding one is its class above and one ``SCHEDULERS.add`` line.
SCHEDULERS = Registry("lr_scheduler")
SCHEDULERS.add("constant", ConstantLR)
SCHEDULERS.add("exponential", ExponentialLR)
SCHEDULERS.add("step", StepLR)
SCHEDULERS.add("cosine", CosineLR)
SCHEDULERS.add("one_cycle", OneCycleLR)
SCHEDULERS.add("triangular", TriangularLR, aliases=("warmup_linear",))


def initialize_scheduler(
    name: str, lr: float, decay: float = 0.99, stage_length: int = 1000, staircase: bool = True, **kwargs
) -> LRScheduler:
    """Make a schedule from its name (one of ``SCHEDULERS``) and its keyword arguments
    (``step_size``, ``gamma``, ``total_epochs``, ``min_lr``, ``pct_start``, ``start_factor``,
    ``warmup_epochs``, ...).

    ``decay``, ``stage_length`` and ``staircase`` are the spec's exponential-decay arguments,
    which an optimizer always hands on: a schedule whose signature names them gets them, the
    others ignore them. ``ValueError`` names an unknown schedule or argument and the valid ones.

    Example:
        >>> from neural_networks.schedulers import initialize_scheduler
        >>> schedule = initialize_scheduler("one_cycle", lr=0.1, total_epochs=10)
        >>> [round(schedule(t), 4) for t in (0, 3, 10)]  # from lr / 25 up to lr at 30%, then down
        [0.004, 0.1, 0.0]
    """
    accepted = SCHEDULERS.arguments(name)
    spec_args = {"decay": decay, "stage_length": stage_length, "staircase": staircase}
    kwargs.update({key: value for key, value in spec_args.items() if key in accepted})
    return SCHEDULERS.create(name, lr=lr, **kwargs)


def resolve_scheduler(schedule, lr: float) -> LRScheduler:
    """The schedule an optimizer's ``lr_scheduler`` argument describes, starting from ``lr``:
    an :class:`LRScheduler` as it is; a name, that schedule with its default arguments; a dict,
    :func:`initialize_scheduler`'s arguments (``name`` and the schedule's own), where ``lr``,
    when given, overrides the optimizer's.

    ``ValueError`` names an unknown schedule or argument and the valid ones, a bad value or a
    dict without ``name``."""
    if isinstance(schedule, LRScheduler):
        return schedule
    if isinstance(schedule, dict):
        if "name" not in schedule:
            raise ValueError(f"lr_scheduler needs a name (one of {', '.join(SCHEDULERS)}); got {schedule!r}")
        return initialize_scheduler(**{"lr": lr, **schedule})
    return initialize_scheduler(schedule, lr=lr)
