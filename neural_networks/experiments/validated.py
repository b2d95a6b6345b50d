"""A validated config: the config a run is made from, once it has been checked, with the loss,
layers and optimizer that checking it built, so that a run builds each of them once.

:func:`~neural_networks.experiments.validate_config` makes a :class:`ValidConfig`;
:func:`~neural_networks.experiments.run_experiment` trusts one without checking it again and
:func:`~neural_networks.experiments.build_model` takes its parts over.
"""

from __future__ import annotations

from ..layers import initialize_layer
from ..losses import LOSSES, initialize_loss
from ..optimizers import initialize_optimizer

__all__ = ["ValidConfig", "build_loss"]


def build_loss(spec):
    """The loss of a config's ``model.loss``: a name, or a mapping with ``name`` and the loss's
    arguments. ``ValueError`` or ``TypeError`` for an unknown loss, a mapping without ``name``
    or bad arguments."""
    if isinstance(spec, dict) and "name" not in spec:
        raise ValueError(f"a loss mapping needs a name (one of {', '.join(LOSSES)}); got {spec!r}")
    return initialize_loss(**spec) if isinstance(spec, dict) else initialize_loss(spec)


class ValidConfig(dict):
    """A config that :func:`validate_config` accepted: the config itself (plain YAML data with
    its defaults filled in; read it as the dict it is) and the loss, layers and optimizer built
    to check it. A runner trusts it without checking it again
    (:func:`~neural_networks.experiments.run_experiment`), and the model built from it takes
    those objects over (:meth:`take_model_parts`) instead of building them a second time.

    A copy (``copy.deepcopy``, pickling, :func:`~neural_networks.utils.to_plain`) is a plain
    dict: a copy is made to be edited, so it is validated anew."""

    def __init__(self, config: dict, built: dict) -> None:
        super().__init__(config)
        self._built = built

    def __reduce__(self):
        return dict, (dict(self),)

    def take_model_parts(self) -> tuple:
        """``(loss, layers, optimizer)`` for a model of this config: the ones built when it was
        validated, handed over once (another model gets new ones), each built anew instead
        where its section no longer equals the validated one (an output layer's ``n_out``
        filled in from the data set since). Raises what the builders raise (``ValueError``,
        ``TypeError``) only for a section changed since into an invalid one."""
        model = self["model"]
        loss = self._take("model.loss", model["loss"], build_loss)
        layers = [
            self._take(f"model.layers.{i}", spec, lambda spec: initialize_layer(**spec))
            for i, spec in enumerate(model["layers"])
        ]
        optimizer = self._take("optimizer", self["optimizer"], lambda spec: initialize_optimizer(**spec))
        return loss, layers, optimizer

    def _take(self, key: str, section, build):
        validated, built = self._built.pop(key, (None, None))
        if built is not None and _same(validated, section):
            return built
        return build(section)


def _same(a, b) -> bool:
    """Equal as YAML data, types included: ``1``, ``1.0`` and ``True`` build different things."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b
