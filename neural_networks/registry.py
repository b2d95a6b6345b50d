"""One registry helper for every family of named things (layers, activations, losses,
initializers, optimizers, schedules, data sets, callbacks).

A family keeps a :class:`Registry`; a new member is one line (``LAYERS.add("conv2d", Conv2D)``
or the ``@LAYERS.register("conv2d")`` decorator). Look-ups ignore case and treat ``-`` like
``_``; errors name the family, the name and the valid names, and bad keyword arguments are
reported with the valid ones read from the factory's signature, before anything is built.

A member may carry a ``spec`` besides its factory: an object describing it beyond how it is
built (a data set's :class:`~neural_networks.datasets.spec.DatasetSpec`: where it is read from,
how it is verified), read back with :meth:`Registry.spec`.

Where the families are built: layers in ``neural_networks/layers/__init__.py`` (``LAYERS``),
activations in ``activations.py`` (``ACTIVATIONS``), losses in ``losses.py`` (``LOSSES``), weight
initializers in ``weights.py`` (``INITIALIZERS``), optimizers in ``optimizers.py``
(``OPTIMIZERS``), schedules in ``schedulers.py`` (``SCHEDULERS``), data sets in
``datasets/catalog.py`` (``DATASETS``) and callbacks in ``callbacks/__init__.py`` (``CALLBACKS``;
``tensorboard.py`` adds its own entry, as that module imports the callbacks package).
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator

__all__ = ["Registry"]


def _key(name) -> str:
    return str(name).strip().lower().replace("-", "_")


class Registry:
    """Names -> factories (classes or functions) of one ``family`` (e.g. ``"layer"``)."""

    def __init__(self, family: str, sort_names: bool = False) -> None:
        self.family = family
        self.sort_names = sort_names  # list valid names sorted in errors, else in registration order
        self._factories: dict[str, Callable] = {}
        self._aliases: dict[str, str] = {}
        self._specs: dict[str, object] = {}

    # -- building ------------------------------------------------------------------
    def add(self, name: str, factory: Callable, aliases=(), spec=None) -> Callable:
        """Register ``factory`` under ``name`` (and ``aliases``), with an optional ``spec`` object
        describing it (see :meth:`spec`); returns ``factory``."""
        key = _key(name)
        for new in (name, *aliases):
            if _key(new) in self._factories or _key(new) in self._aliases:
                raise ValueError(f"{self.family} {new!r} is registered twice")
        self._factories[key] = factory
        for alias in aliases:
            self._aliases[_key(alias)] = key
        if spec is not None:
            self._specs[key] = spec
        return factory

    def register(self, name: str | None = None, aliases=(), spec=None):
        """Decorator form of :meth:`add`; ``name`` defaults to the factory's ``name`` attribute."""

        def decorate(factory):
            return self.add(name or factory.name, factory, aliases, spec)

        return decorate

    # -- looking up ----------------------------------------------------------------
    def names(self) -> list[str]:
        """The registered names (not the aliases), in registration order."""
        return list(self._factories)

    def aliases(self, name) -> list[str]:
        """The aliases of ``name`` (normalised), in registration order."""
        key = self.canonical(name)
        return [alias for alias, target in self._aliases.items() if target == key]

    def __contains__(self, name) -> bool:
        key = _key(name)
        return key in self._factories or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._factories)

    def canonical(self, name) -> str:
        """The registered name for ``name`` (an alias, another case); ``ValueError`` if unknown."""
        key = _key(name)
        key = self._aliases.get(key, key)
        if key not in self._factories:
            names = sorted(self._factories) if self.sort_names else self.names()
            raise ValueError(f"unknown {self.family} {name!r}; valid names: {', '.join(names)}")
        return key

    def get(self, name) -> Callable:
        """The factory registered as ``name``."""
        return self._factories[self.canonical(name)]

    def spec(self, name):
        """The ``spec`` object registered with ``name`` (``None`` if it has none)."""
        return self._specs.get(self.canonical(name))

    def __getitem__(self, name) -> Callable:
        """``registry[name]`` is :meth:`get` (so ``dict(registry)`` maps names to factories)."""
        return self.get(name)

    def keys(self) -> list[str]:
        """The registered names, as :meth:`names` (with :meth:`__getitem__`, the mapping protocol)."""
        return self.names()

    def values(self) -> list[Callable]:
        """The factories, in the order of :meth:`names`."""
        return [self._factories[name] for name in self.names()]

    def items(self) -> list[tuple[str, Callable]]:
        """``(name, factory)`` pairs, in the order of :meth:`names`."""
        return [(name, self._factories[name]) for name in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self.names())})"

    def arguments(self, name) -> list[str]:
        """The keyword arguments the factory of ``name`` accepts (from its signature)."""
        return [p.name for p in self._parameters(self.get(name)) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @staticmethod
    def _parameters(factory) -> list[inspect.Parameter]:
        target = factory.__init__ if inspect.isclass(factory) else factory
        params = list(inspect.signature(target).parameters.values())
        return params[1:] if inspect.isclass(factory) else params  # drop self

    def check_arguments(self, name, kwargs: dict) -> None:
        """``ValueError`` naming the first unknown or missing keyword argument for ``name``."""
        params = self._parameters(self.get(name))
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return  # the factory takes anything; it checks for itself
        valid = [p.name for p in params if p.kind is not p.VAR_POSITIONAL]
        unknown = [k for k in kwargs if k not in valid]
        missing = [
            p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.name not in kwargs
        ]
        if unknown or missing:
            detail = f"unexpected argument {unknown[0]!r}" if unknown else f"missing argument {missing[0]!r}"
            raise ValueError(
                f"bad arguments for {self.family} {name!r} ({detail}); valid arguments: {', '.join(valid)}"
            )

    def create(self, name, /, **kwargs):
        """Build ``name`` from keyword arguments, after checking them against its signature
        (a factory may itself take an argument called ``name``)."""
        self.check_arguments(name, kwargs)
        return self.get(name)(**kwargs)
