"""Config files: YAML read safely (no aliases, no key given twice, ``1e-3`` a number), YAML
written back, and ``--set key=value`` overrides applied to a config; :class:`ConfigError`, the
one error every config check raises. What the keys mean and how they are checked is
:mod:`neural_networks.experiments.config`."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from .validated import ValidConfig

__all__ = ["ConfigError", "parse_yaml", "read_yaml", "load_config", "apply_overrides", "dump_config"]


class ConfigError(ValueError):
    """A config that cannot describe a run; the message names the key and the valid keys."""


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1's safe loader, reading ``1e-3`` as a number as YAML 1.2 does (1.1 needs a dot
    and reads it as a string), so every numeric config value follows one rule; :func:`parse_yaml`
    also refuses aliases and keys given twice in one mapping."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str, at: str = ""):
    """Parse config YAML from ``source`` (a file name or ``--set``) with :class:`_ConfigLoader`;
    ``at`` is the dotted key the text is the value of (a ``--set`` key), for error messages.

    ``ConfigError`` (one line naming ``source``) for text that is not YAML, for aliases
    (``*name``: refused before anything is built, as a few hundred bytes of nested aliases expand
    to gigabytes and configs have no need for them) and for a key given twice in one mapping at
    any depth (PyYAML would keep the last silently), naming its dotted path and both lines."""
    try:
        for event in yaml.parse(text, Loader=_ConfigLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ConfigError(
                    f"{source}: YAML aliases (*{event.anchor}) are not accepted in configs; write the value out"
                )
        loader = _ConfigLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _refuse_duplicate_keys(loader, node, [at] if at else [], source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        detail = " ".join(str(err).replace('in "<unicode string>", ', "").split())  # the source is named first
        raise ConfigError(f"{source}: not valid YAML ({detail})") from None


def _refuse_duplicate_keys(loader: _ConfigLoader, node, path: list, source: str) -> None:
    """``ConfigError`` for the first key given twice in one mapping under ``node`` (the composed
    document: lines are known, nothing is built yet), keys compared by value as a dict would
    (``lr`` and ``'lr'`` are one key, ``1`` and ``'1'`` two)."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(loader, item, [*path, str(i)], source)
    if not isinstance(node, yaml.MappingNode):
        return
    seen = {}
    for key_node, value_node in node.value:
        key = _key_of(loader, key_node)
        if key is not _UNHASHABLE:
            line = key_node.start_mark.line + 1
            if key in seen:
                lines = f"both on line {line}" if seen[key] == line else f"lines {seen[key]} and {line}"
                dotted = ".".join([*path, str(key)])
                raise ConfigError(f"{source}: key {dotted!r} appears twice ({lines}); a mapping takes each key once")
            seen[key] = line
        _refuse_duplicate_keys(loader, value_node, [*path, "?" if key is _UNHASHABLE else str(key)], source)


_UNHASHABLE = object()


def _key_of(loader: _ConfigLoader, key_node):
    """The value of a mapping key as the mapping will hold it (``<<`` for a merge key, so two are
    refused too); ``_UNHASHABLE`` for a list or mapping (constructing the mapping reports it)."""
    if key_node.tag == "tag:yaml.org,2002:merge":
        return "<<"
    if not isinstance(key_node, yaml.ScalarNode):
        return _UNHASHABLE
    key = loader.construct_object(key_node)
    try:
        hash(key)
    except TypeError:
        return _UNHASHABLE
    return key


def read_yaml(path, missing: str):
    """The YAML file ``path`` parsed with :func:`parse_yaml` (a config, a search space, a study
    file); ``ConfigError`` with the message ``missing`` when it is not a file, and naming it when
    it cannot be read or parsed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(missing)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from None
    return parse_yaml(text, str(path))


def load_config(path) -> dict:
    """Read a YAML config file (not yet validated)."""
    path = Path(path)
    config = read_yaml(path, f"config file not found: {path}")
    if config is None:
        raise ConfigError(f"{path}: empty config (no keys)")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(config).__name__}")
    return config


def apply_overrides(config: dict, overrides) -> dict:
    """Apply ``key=value`` strings (dotted keys; YAML values) to a copy of ``config``."""
    config = copy.deepcopy(config)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        value = parse_yaml(raw, f"--set {item}", at=key.strip()) if raw else ""
        parts = key.strip().split(".")
        node = config
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]))
        last = parts[-1]
        if isinstance(node, list):
            node[_index(node, last, key)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping or list")
    return config


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)


def _child(node, part: str, path: str):
    if isinstance(node, list):
        return node[_index(node, part, path)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set: {path} is not a mapping or list")
    if part not in node:
        node[part] = {}
    return node[part]


def dump_config(config: dict) -> str:
    """YAML text of a config (keys in the order written)."""
    plain = dict(config) if isinstance(config, ValidConfig) else config  # the safe dumper takes exact dicts
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None)
