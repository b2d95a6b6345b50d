"""The optimizers: SGD, Adam, AdamW (here) and Muon (:mod:`neural_networks.muon`), registered
here, all of them, in :data:`OPTIMIZERS`; and :func:`initialize_optimizer`, which makes one from
the spec's ``optimizer_args``. The base class, the interface (``update`` / ``step``), parameter
groups and state are described in :mod:`neural_networks.optimizer_base`, which also holds the
registry and :func:`initialize_optimizer` (re-exported here, the course's path).

The spec's ``optimizer_args`` always carry ``momentum`` (0 for an optimizer without momentum)
and give the learning-rate schedule as flat keys (``lr_scheduler`` a name, with ``lr_decay``,
``stage_length`` and ``staircase``); an optimizer takes the schedule as one ``lr_scheduler``
argument, into which :func:`initialize_optimizer` folds the flat keys. The rule for the rest:
each optimizer lists, in :attr:`Optimizer.neutral_arguments`, spec arguments with the value at
which they change nothing (``momentum=0``); such an argument, given at that value to an
optimizer whose signature does not take it, is dropped. Any other argument must be in the
optimizer's signature.
"""

from __future__ import annotations

import math

import numpy as np

from .muon import NEWTON_SCHULZ_COEFFICIENTS, Muon, orthogonalize
from .optimizer_base import (
    GROUP_OPTIONS,
    GROUPS,
    OPTIMIZERS,
    SPEC_SCHEDULE_KEYS,
    Optimizer,
    check_momentum,
    initialize_optimizer,
    optimizer_arguments,
)
from .validation import boolean, non_negative, number

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Muon",
    "orthogonalize",
    "NEWTON_SCHULZ_COEFFICIENTS",
    "OPTIMIZERS",
    "GROUPS",
    "GROUP_OPTIONS",
    "SPEC_SCHEDULE_KEYS",
    "optimizer_arguments",
    "initialize_optimizer",
]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as in the spec:
    ``v <- momentum * v + lr * g``; ``param <- param - v``.

    ``nesterov``: step ``momentum * v + lr * g`` instead (PyTorch's Nesterov, with the learning
    rate folded into the velocity). ``weight_decay``: L2 penalty added to the gradient of
    weights, ``g <- g + weight_decay * param``.

    ``ValueError`` for a momentum outside [0, 1) (or 0 with ``nesterov``), a negative
    ``weight_decay``, and the schedule, ``clip_norm`` and ``param_groups`` errors of
    :class:`~neural_networks.optimizer_base.Optimizer`.

    Example:
        >>> import numpy as np
        >>> from neural_networks import SGD
        >>> opt = SGD(lr=0.1, momentum=0.9)
        >>> W, g = np.ones(2), np.array([1.0, -1.0])
        >>> W -= opt.update("W0", W, g, epoch=0)  # v = 0.1 g
        >>> W -= opt.update("W0", W, g, epoch=0)  # v = 0.9 v + 0.1 g = 0.19 g
        >>> W.round(4)
        array([0.71, 1.29])
    """

    name = "sgd"

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        clip_norm: float | None = None,
        lr_scheduler="constant",
        nesterov: bool = False,
        weight_decay: float = 0.0,
        param_groups: dict | None = None,
        **spec_schedule,
    ) -> None:
        check_momentum(momentum, nesterov)
        self.momentum = float(momentum)
        self.nesterov = boolean(nesterov, "nesterov")
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        super().__init__(lr, lr_scheduler, clip_norm, param_groups, **spec_schedule)

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
    unless a group's options say otherwise).

    ``ValueError`` for a negative ``weight_decay``, ``beta1`` or ``beta2`` outside [0, 1), an
    ``eps`` that is not positive, and the schedule, ``clip_norm`` and ``param_groups`` errors of
    :class:`~neural_networks.optimizer_base.Optimizer`.

    Example:
        >>> import numpy as np
        >>> from neural_networks.optimizers import Adam
        >>> opt = Adam(lr=0.01)
        >>> opt.update("W0", np.zeros(3), np.array([4.0, -0.5, 1e-3]), epoch=0).round(6)  # about lr * sign(g)
        array([ 0.01, -0.01,  0.01])
    """

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
        param_groups: dict | None = None,
        **spec_schedule,
    ) -> None:
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        super().__init__(lr, lr_scheduler, clip_norm, param_groups, **spec_schedule)
        for value, what in ((beta1, "beta1"), (beta2, "beta2")):
            if not 0.0 <= number(value, what) < 1.0:
                raise ValueError(f"{what} must be in [0, 1); got {value!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        if not number(eps, "eps") > 0:
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
    group's options say otherwise). ``ValueError`` as :class:`Adam`.

    Example:
        >>> import numpy as np
        >>> from neural_networks.optimizers import AdamW
        >>> opt = AdamW(lr=0.01, weight_decay=0.1)
        >>> opt.update("W0", np.ones(2), np.zeros(2), epoch=0)  # no gradient: the decay lr * wd * param alone
        array([0.001, 0.001])
    """

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
        param_groups: dict | None = None,
        **spec_schedule,
    ) -> None:
        super().__init__(
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            clip_norm,
            lr_scheduler,
            param_groups,
            **spec_schedule,
        )


# Every optimizer by name, registered here and only here (the registry itself lives in
# optimizer_base, below Muon, which makes its fallback by name); adding one is its class (its whole
# signature written out, so that arguments are checked from it) and one OPTIMIZERS.add line.
OPTIMIZERS.add("sgd", SGD)
OPTIMIZERS.add("adam", Adam)
OPTIMIZERS.add("adamw", AdamW)
OPTIMIZERS.add("muon", Muon)
