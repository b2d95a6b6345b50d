"""What every optimizer shares: the base class (learning-rate schedule, gradient clipping,
parameter groups, state), the :data:`OPTIMIZERS` registry and :func:`initialize_optimizer`, which
makes one by name from the spec's ``optimizer_args``. The optimizers themselves are in
:mod:`neural_networks.optimizers` (SGD, Adam, AdamW, and the registration of every name) and
:mod:`neural_networks.muon`, which makes its fallback by name from here; they see only parameter
arrays, their gradients and the group each belongs to, never the model.

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
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .registry import Registry
from .schedulers import LRScheduler, resolve_scheduler
from .validation import boolean, non_negative, number, positive

__all__ = [
    "Optimizer",
    "GROUPS",
    "GROUP_OPTIONS",
    "check_momentum",
    "OPTIMIZERS",
    "SPEC_SCHEDULE_KEYS",
    "fold_spec_schedule",
    "optimizer_arguments",
    "initialize_optimizer",
]

#: The parameter groups a model hands over, and the options each may override.
GROUPS = ("weights", "biases", "normalization")
#: The options a parameter group may set in ``param_groups``.
GROUP_OPTIONS = ("lr_multiplier", "weight_decay", "momentum")


def check_momentum(momentum, nesterov) -> None:
    """``ValueError`` unless ``momentum`` is a number in [0, 1), and > 0 when ``nesterov`` (true
    or false)."""
    nesterov = boolean(nesterov, "nesterov")
    if not 0.0 <= number(momentum, "momentum") < 1.0:
        raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
    if nesterov and momentum == 0:
        raise ValueError("nesterov momentum needs momentum > 0")


class Optimizer(ABC):
    """Base class holding the learning-rate schedule, gradient clipping and the group options.

    ``lr_scheduler`` is the whole schedule in one argument: a schedule name (with its default
    arguments), a dict of :func:`~neural_networks.schedulers.initialize_scheduler` arguments
    (``{"name": "exponential", "decay": 0.5, "stage_length": 2}``; its ``lr`` defaults to the
    optimizer's) or an :class:`~neural_networks.schedulers.LRScheduler`. The spec's flat keys
    (``lr_decay``, ``stage_length``, ``staircase``), which the course's optimizers take as arguments
    of their own (``SGD(lr, lr_scheduler, lr_decay, stage_length, staircase, clip_norm, momentum)``),
    are accepted by every optimizer as keyword arguments and folded into it here, in one place
    (:func:`fold_spec_schedule`); subclasses pass them on as ``**spec_schedule``. ``clip_norm``: when set, a gradient
    whose L2 norm exceeds it is rescaled to that norm; as in the spec, the norm is taken per
    parameter array.

    ``ValueError`` for an unknown schedule or schedule argument, a learning rate or ``clip_norm``
    that is not positive, and unknown groups, options or out-of-range values in ``param_groups``.
    """

    name = ""
    #: Spec arguments and their neutral values: given at that value to an optimizer whose signature
    #: does not take them, :func:`~neural_networks.optimizers.initialize_optimizer` drops them (the
    #: spec's ``optimizer_args`` always carry ``momentum``, 0 for Adam); any other value is an
    #: unexpected argument.
    neutral_arguments: dict = {"momentum": 0.0}

    def __init__(
        self,
        lr: float,
        lr_scheduler="constant",
        clip_norm: float | None = None,
        param_groups: dict | None = None,
        **spec_schedule,
    ) -> None:
        self.lr_scheduler = resolve_scheduler(fold_spec_schedule(lr_scheduler, spec_schedule), lr)
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
        optimizers with momentum, ``momentum``. ``ValueError`` for an unknown group."""
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
        """The step ``delta`` to subtract from ``param``, a parameter of ``group``: an array of
        ``param``'s shape and dtype, possibly a buffer that the next call overwrites. ``param_name``
        keys the optimizer's state; ``epoch`` is the (fractional) progress the schedule is taken at.
        ``ValueError`` for an unknown ``group``."""

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


#: Every optimizer by name. Defined here, below the optimizers, so that one can make another by
#: name (Muon its fallback) without importing the module that imports it; filled in
#: :mod:`neural_networks.optimizers`, the one place names are registered, which the package's
#: ``__init__`` imports (so it is filled whichever module is imported first).
OPTIMIZERS = Registry("optimizer")

#: The spec's flat schedule keys of ``optimizer_args``, and the schedule arguments they are.
SPEC_SCHEDULE_KEYS = {"lr_decay": "decay", "stage_length": "stage_length", "staircase": "staircase"}


def fold_spec_schedule(lr_scheduler, spec_schedule: dict):
    """``lr_scheduler`` with the spec's flat keys (:data:`SPEC_SCHEDULE_KEYS`) folded in:
    ``("exponential", {"lr_decay": 0.5})`` gives ``{"name": "exponential", "decay": 0.5}``. A
    mapping or a schedule object says everything itself and is returned as it is (the flat keys,
    which the spec's ``optimizer_args`` always carry, are then ignored). ``TypeError`` names a key
    that is not one of the spec's, as an unexpected keyword argument would."""
    unknown = [key for key in spec_schedule if key not in SPEC_SCHEDULE_KEYS]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    flat = {SPEC_SCHEDULE_KEYS[key]: value for key, value in spec_schedule.items() if value is not None}
    if not flat or isinstance(lr_scheduler, (dict, LRScheduler)):
        return lr_scheduler
    return {"name": lr_scheduler, **flat}


def optimizer_arguments(name) -> list[str]:
    """The keyword arguments :func:`initialize_optimizer` takes for optimizer ``name``: its
    signature's, with :data:`SPEC_SCHEDULE_KEYS` after ``lr_scheduler``.
    ``ValueError`` for an unknown name."""
    arguments = []
    for argument in OPTIMIZERS.arguments(name):
        arguments.append(argument)
        if argument == "lr_scheduler":
            arguments.extend(SPEC_SCHEDULE_KEYS)
    return arguments


def initialize_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    """Make an optimizer from the spec's ``optimizer_args`` (``name`` is case-insensitive;
    ``lr_scheduler``, ``lr_decay``, ``stage_length``, ``staircase``, ``clip_norm``, ``momentum``
    and each optimizer's own arguments). A spec argument the optimizer does not take is dropped
    when it has its neutral value (:attr:`Optimizer.neutral_arguments`: ``momentum=0`` for Adam).

    The flat schedule keys go to the optimizer, whose base class folds them into its one
    schedule (:func:`fold_spec_schedule`: ``lr_scheduler: exponential, lr_decay: 0.5`` becomes
    ``{"name": "exponential", "decay": 0.5}``; a schedule that does not take an argument ignores
    it, see :func:`~neural_networks.schedulers.initialize_scheduler`).

    ``ValueError`` names an unknown optimizer or argument and the valid ones, or a bad value.

    Example:
        >>> from neural_networks import initialize_optimizer
        >>> opt = initialize_optimizer("SGD", lr=0.1, momentum=0.9, lr_scheduler="exponential",
        ...                            lr_decay=0.5, stage_length=2)
        >>> [opt.lr_scheduler(epoch) for epoch in (0, 1, 2, 4)]  # halved every 2 epochs
        [0.1, 0.1, 0.05, 0.025]
    """
    cls = OPTIMIZERS.get(name)
    accepted = optimizer_arguments(name)
    neutral = cls.neutral_arguments
    kwargs = {
        key: value
        for key, value in kwargs.items()
        if not (key in neutral and key not in accepted and value == neutral[key])
    }
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:  # the registry's message, listing the flat keys too
        raise ValueError(
            f"bad arguments for optimizer {name!r} (unexpected argument {unknown[0]!r}); "
            f"valid arguments: {', '.join(accepted)}"
        )
    return OPTIMIZERS.create(name, lr=lr, **kwargs)  # the flat schedule keys are folded by the class
