"""Search spaces: a YAML file mapping dotted config keys to the distribution to draw them from.

::

    optimizer.lr: {type: float, low: 0.001, high: 1.0, log: true}
    model.layers.0.n_out: {type: categorical, choices: [4, 16, 64]}
    data.batch_size: {type: int, low: 16, high: 128, step: 16}

Keys use the dotted paths of ``--set`` (list items by index). Everything is checked before a
trial runs: the key must name a value of the config (or a key the config accepts: a new key is
tried on the config), each distribution must be well formed, and the config must stay valid
with every choice and with both ends of every range. The grid sampler tries every combination
of explicit values, so it takes ``categorical`` choices and ``int`` ranges with a ``step`` (every
value from ``low`` to ``high``); float ranges have no grid and are refused with that advice.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from ..experiments import ConfigError, validate_config
from ..experiments.config_files import read_yaml

__all__ = [
    "Distribution",
    "SearchSpace",
    "load_space",
    "parse_space",
    "set_dotted",
    "apply_params",
    "check_validation_split",
    "OWN_VALIDATION_SPLITS",
]

TYPES = ("float", "int", "categorical")
_FIELDS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
# Keys a study sets itself: every trial gets its own run name.
_RESERVED = {"name": "the study names each trial's run (trial-0003)"}


@dataclass(frozen=True)
class Distribution:
    """One key's distribution: ``float``/``int`` with ``low``, ``high``, ``log`` and ``step``,
    or ``categorical`` with ``choices``."""

    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None

    def to_dict(self) -> dict:
        """The YAML/JSON form (what the space file holds), without unset fields."""
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def edge_values(self) -> list:
        """Values the config is validated with before any trial: every choice, or both ends."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def grid_values(self, key: str) -> list:
        """The values a grid study tries; ``ConfigError`` where the distribution has no grid."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int" and self.step is not None and not self.log:
            return list(range(self.low, self.high + 1, self.step))
        advice = (
            "give step (every value from low to high by step is tried) or use {type: categorical, choices: [...]}"
            if self.type == "int"
            else "float ranges have no grid; list the values: {type: categorical, choices: [...]}"
        )
        raise ConfigError(f"{key}: the grid sampler needs explicit values; {advice}")

    def suggest(self, trial, key: str):
        """Draw this key's value through an Optuna trial (the sampler decides)."""
        if self.type == "categorical":
            return trial.suggest_categorical(key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(key, self.low, self.high, step=self.step, log=self.log)

    def position(self, value) -> float | None:
        """Where ``value`` lies in the distribution, in [0, 1] (choices equally spaced; log
        ranges on a log scale); ``None`` for a value outside it. Used by the report's plots."""
        if self.type == "categorical":
            index = choice_index(self.choices, value)
            if index is None:
                return None
            return 0.5 if len(self.choices) == 1 else index / (len(self.choices) - 1)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        if self.log:
            low, high, value = math.log(self.low), math.log(self.high), math.log(value) if value > 0 else -math.inf
        else:
            low, high = float(self.low), float(self.high)
        return (value - low) / (high - low) if low <= value <= high else None


def choice_index(choices, value) -> int | None:
    """Index of ``value`` among ``choices`` with its type (so ``1``, ``1.0`` and ``True`` are
    three choices), or ``None``."""
    for i, choice in enumerate(choices):
        if type(choice) is type(value) and choice == value:
            return i
    for i, choice in enumerate(choices):  # storages may hand back 4.0 for 4
        if not isinstance(value, bool) and not isinstance(choice, (bool, str)) and choice == value:
            return i
    return None


class SearchSpace:
    """Validated ``{dotted key: Distribution}``, in the order of the file."""

    def __init__(self, distributions: dict[str, Distribution]):
        self.distributions = dict(distributions)

    def __len__(self) -> int:
        return len(self.distributions)

    def __iter__(self):
        return iter(self.distributions)

    def items(self):
        """``(dotted key, Distribution)`` pairs, in the order of the file."""
        return self.distributions.items()

    def to_dict(self) -> dict:
        """The YAML/JSON form: ``{dotted key: distribution dict}`` (what :meth:`from_dict` reads)."""
        return {key: dist.to_dict() for key, dist in self.distributions.items()}

    @classmethod
    def from_dict(cls, data: dict, source: str = "search space") -> SearchSpace:
        """Parse the distributions alone (no config check): what a stored study holds."""
        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{source}: a search space is a non-empty mapping of dotted config keys to distributions")
        return cls({str(key): _parse_distribution(str(key), spec) for key, spec in data.items()})

    def grid(self) -> dict[str, list]:
        """``{key: values}`` for :class:`optuna.samplers.GridSampler`; refuses keys without a grid."""
        return {key: dist.grid_values(key) for key, dist in self.distributions.items()}

    def suggest(self, trial) -> dict:
        """``{key: value}`` drawn through ``trial``."""
        return {key: dist.suggest(trial, key) for key, dist in self.distributions.items()}


def load_space(path, config: dict, sampler: str = "tpe") -> SearchSpace:
    """Read the space file ``path`` and check it against the base ``config`` and the sampler;
    every error is one :class:`ConfigError` line naming the file and the key."""
    space = read_yaml(path, f"search space file not found: {path}")
    return parse_space(space, config, sampler=sampler, source=str(path))


def parse_space(data, config: dict, sampler: str = "tpe", source: str = "search space") -> SearchSpace:
    """:func:`load_space` on already parsed YAML ``data``. ``config`` is the base config as trials
    receive it (validated or not: keys are looked up in its validated form, defaults included)."""
    try:
        space = SearchSpace.from_dict(data, source)
    except ConfigError as err:
        raise ConfigError(str(err) if str(err).startswith(source) else f"{source}: {err}") from None
    checked = validate_config(config)
    try:
        for key, dist in space.items():
            _check_key(config, checked, key, dist)
        if sampler == "grid":
            space.grid()
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return space


def _parse_distribution(key: str, spec) -> Distribution:
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"{key!r} is not a dotted config key (like optimizer.lr)")
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{key}: a distribution is a mapping like {{type: float, low: 0.001, high: 1.0}}, got {spec!r}"
        )
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{key}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    unknown = sorted(set(spec) - _FIELDS[kind], key=str)
    if unknown:
        raise ConfigError(
            f"{key}: unknown field {unknown[0]!r} for type {kind}; valid fields: {', '.join(sorted(_FIELDS[kind]))}"
        )
    if kind == "categorical":
        return _categorical(key, spec)
    return _range(key, kind, spec)


def _categorical(key: str, spec: dict) -> Distribution:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{key}: categorical needs a non-empty list of choices, got {choices!r}")
    for choice in choices:
        # Optuna stores choices in its storage as JSON scalars
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            raise ConfigError(f"{key}: choices must be numbers, strings, booleans or null, got {choice!r}")
    for i, choice in enumerate(choices):
        if choice_index(choices[:i], choice) is not None:
            raise ConfigError(f"{key}: choice {choice!r} is listed twice")
    return Distribution("categorical", choices=tuple(choices))


def _number(key: str, field: str, value, kind: str):
    wanted = int if kind == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
        raise ConfigError(f"{key}: {field} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    return value


def _range(key: str, kind: str, spec: dict) -> Distribution:
    for field in ("low", "high"):
        if field not in spec:
            raise ConfigError(f"{key}: type {kind} needs low and high (missing {field})")
    low, high = (_number(key, field, spec[field], kind) for field in ("low", "high"))
    if not low < high:
        raise ConfigError(f"{key}: low ({low!r}) must be below high ({high!r}); a fixed value belongs in the config")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}: log must be true or false, got {log!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(key, "step", step, kind)
        if step <= 0:
            raise ConfigError(f"{key}: step must be positive, got {step!r}")
        if log:
            raise ConfigError(f"{key}: log and step exclude each other (a log range has no fixed step)")
        spans = (high - low) / step
        if abs(spans - round(spans)) > 1e-9 * max(1.0, abs(spans)):
            raise ConfigError(f"{key}: high - low ({high - low!r}) must be a multiple of step ({step!r})")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs low > 0, got {low!r}")
    if kind == "float":
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return Distribution(kind, low=low, high=high, log=log, step=step)


def set_dotted(config: dict, key: str, value) -> None:
    """Set ``config[a][b][0]...`` for ``key = "a.b.0..."`` in place. A missing mapping on the way
    is created (``evaluation.tta`` on a config without ``evaluation``), as ``--set`` does; list
    items must exist."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, part)]
        else:
            if node.get(part) is None:  # missing, or written as an empty section (evaluation:)
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last)] = value
    else:
        node[last] = value


def _index(node: list, part: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise KeyError(part)
    return int(part)


def apply_params(config: dict, params: dict) -> dict:
    """A copy of ``config`` with each dotted key of ``params`` set."""
    config = copy.deepcopy(config)
    for key, value in params.items():
        set_dotted(config, key, value)
    return config


def _check_key(config: dict, checked: dict, key: str, dist: Distribution) -> None:
    """The key names a value of ``checked`` (the validated config) or one the config accepts,
    and ``config`` with each of the distribution's edge values set is valid."""
    if key.split(".")[0] in _RESERVED:
        raise ConfigError(f"{key}: cannot be searched: {_RESERVED[key.split('.')[0]]}")
    parts = key.split(".")
    node, where = checked, []
    for part in parts[:-1]:
        child = _child(node, part)
        if child is _MISSING and isinstance(node, list):
            raise ConfigError(f"unknown key {key}: {'.'.join(where)} has {len(node)} items{_valid_keys(node)}")
        if child is _MISSING or not isinstance(child, (dict, list)):
            what = "is not a key of the config" if child is _MISSING else "is a value, not a section"
            raise ConfigError(f"unknown key {key}: {'.'.join([*where, part])} {what}{_valid_keys(node)}")
        node, where = child, [*where, part]
    present = _child(node, parts[-1]) is not _MISSING
    if isinstance(node, list) and not present:
        raise ConfigError(f"unknown key {key}: {'.'.join(where)} has {len(node)} items{_valid_keys(node)}")
    for value in dist.edge_values():
        trial_config = apply_params(config, {key: value})
        try:
            validate_config(trial_config)
        except ConfigError as err:
            if not present:  # the config refused a key it does not have: most likely a typo
                raise ConfigError(f"unknown key {key} (not in the config, which refuses it: {err})") from None
            raise ConfigError(f"{key}: value {value!r} makes the config invalid: {err}") from None


_MISSING = object()


def _child(node, part: str):
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _MISSING


def _valid_keys(node) -> str:
    if isinstance(node, dict):
        return f" (keys there: {', '.join(map(str, node))})"
    return f" (indices 0-{len(node) - 1})" if node else ""


#: Data sets that may bring a validation split of their own (an image folder's ``val/``), so
#: that ``validation_size: 0`` does not settle it; only loading them tells.
OWN_VALIDATION_SPLITS = ("image_folder",)


def check_validation_split(config: dict, source: str, space: SearchSpace | None = None) -> None:
    """Refuse a study whose config holds out no validation data: trials are scored (and pruned)
    on validation accuracy. ``validation_size: 0`` (given, searched or the loader's default)
    means none, except for :data:`OWN_VALIDATION_SPLITS`, which are loaded to find out."""
    import inspect

    from ..datasets import DATASETS

    variants = [config]
    if space is not None and "data.validation_size" in space.distributions:
        variants += [
            apply_params(config, {"data.validation_size": v})
            for v in space.distributions["data.validation_size"].edge_values()
        ]
    for variant in variants:
        data = variant["data"] if isinstance(variant.get("data"), dict) else {}
        if "validation_size" in data:
            size = data["validation_size"]
        else:
            factory = DATASETS.get(data["name"])
            target = factory.__init__ if inspect.isclass(factory) else factory
            parameter = inspect.signature(target).parameters.get("validation_size")
            if parameter is None or parameter.default is parameter.empty:
                continue  # the data set splits off validation data itself (Iris: 60/20/20)
            size = parameter.default
        if size:
            continue
        if DATASETS.canonical(data["name"]) in OWN_VALIDATION_SPLITS:
            from ..experiments import build_dataset

            validate = getattr(build_dataset(validate_config(variant)), "validate", None)
            if validate is not None and getattr(validate, "n_examples", 0):
                continue
        raise ConfigError(
            f"{source}: the config holds out no validation data (data.validation_size: {size!r}); a study scores "
            f"trials on validation accuracy: set data.validation_size (e.g. --set data.validation_size=0.1)"
        )
