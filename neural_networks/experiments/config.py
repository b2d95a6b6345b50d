"""Experiment configs: YAML files describing a whole run, validated before anything trains.

A config has these top-level keys (``name``, ``data``, ``model`` and ``optimizer`` required)::

    name: iris                  # run directory name under experiments/
    seed: 0                     # weight init, shuffling, augmentation, dropout
    epochs: 100
    data:                       # initialize_dataset(name, batch_size, **rest)
      name: iris
      batch_size: 25
    model:
      loss: cross_entropy       # or {name: cross_entropy, label_smoothing: 0.1}
      layers:                   # the spec's layer_args
        - {name: fully_connected, n_out: 32, activation: relu}
        - {name: fully_connected, n_out: 3, activation: softmax}
    optimizer:                  # the spec's optimizer_args
      name: sgd
      lr: 0.05
      momentum: 0.9
    evaluation:                 # optional: how the final val/test figures and predictions are made
      tta: flip                 # test-time augmentation: none (default), flip or flip_translate (neural_networks.tta)
    callbacks:                  # optional: neural_networks.callbacks.CALLBACKS by name, with their arguments
      - {name: early_stopping, monitor: val_loss, patience: 3, restore_best_weights: true}
      - {name: model_checkpoint, monitor: val_loss}   # the run's checkpoint (default: val_accuracy)
    tensorboard: true           # optional: TensorBoard event files in <run>/tensorboard/ (neural_networks.tensorboard)

``--set key=value`` overrides use dotted paths (``optimizer.lr=0.1``, ``data.batch_size=64``,
``model.layers.0.n_out=64``); values are parsed as YAML (numbers, booleans, lists). Reading and
writing the YAML and applying overrides is :mod:`.config_files`; this module checks the keys.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path

from ..utils import to_plain
from .config_files import ConfigError, apply_overrides, dump_config, load_config, parse_yaml
from .validated import ValidConfig, build_loss

__all__ = [
    "ConfigError",
    "load_config",
    "config_data_paths",
    "load_valid_config",
    "parse_yaml",
    "apply_overrides",
    "validate_config",
    "validate_file_config",
    "ValidConfig",
    "TOP_LEVEL_KEYS",
    "dump_config",
]

TOP_LEVEL_KEYS = {  #: Every top-level key of a config, and whether it is required
    "name": True,
    "seed": False,
    "epochs": False,
    "data": True,
    "model": True,
    "optimizer": True,
    "evaluation": False,
    "callbacks": False,
    "tensorboard": False,
}
MODEL_KEYS = {"loss": True, "layers": True}
EVALUATION_KEYS = {"tta": False}
DEFAULTS = {"seed": 0, "epochs": 10}


class _MissingPackage(ConfigError):
    """A config asking for what an optional package, not installed, does (``tensorboard: true``):
    no fault of the values, so :func:`load_valid_config` does not blame the overrides (the CLI
    passes its ``--tensorboard`` flag as one)."""


def _check_keys(section: dict, allowed: dict, where: str) -> None:
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown key {where + '.' if where != 'config' else ''}{unknown[0]!s}"
            f"; valid keys: {', '.join(sorted(allowed))}"
        )
    missing = [k for k, required in allowed.items() if required and k not in section]
    if missing:
        raise ConfigError(
            f"missing key {where + '.' if where != 'config' else ''}{missing[0]}"
            f"; required keys: {', '.join(k for k, r in allowed.items() if r)}"
        )


_RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_run_name(name) -> str:
    """``name`` if it is one path component of letters, digits and ``._-`` (not ``.``/``..``):
    a run directory's name; ``ConfigError`` otherwise."""
    name = str(name)
    if not _RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"name: {name!r} is not a valid run name; use letters, digits, '.', '_' and '-' "
            f"(one folder name, not '.' or '..')"
        )
    return name


def _signature_keys(func, skip=("self",)) -> dict:
    params = inspect.signature(func).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {}  # accepts anything; the callee validates
    return {p.name: p.default is p.empty for p in params if p.name not in skip and p.kind is not p.VAR_POSITIONAL}


def validate_config(config: dict) -> ValidConfig:
    """Check every key and build nothing heavy; returns the config with defaults filled in, as a
    :class:`ValidConfig` holding the loss, layers and optimizer built to check it. A config is
    always checked anew here (a :class:`ValidConfig` too); a runner that trusts one tests its type.

    Layer, loss and optimizer arguments are checked by constructing them (cheap: parameters
    are only made on the first forward pass); data keys against the loader's signature, and
    ``batch_size`` / ``validation_size`` values as every loader would (:func:`_check_data_values`).
    ``ConfigError`` (one line naming the dotted key) for any bad key or value, and for a last
    layer that cannot make the outputs the loss expects (cross_entropy after relu).
    """
    from ..datasets import DATASETS
    from ..layers import initialize_layer
    from ..optimizers import initialize_optimizer
    from ..training import check_epochs
    from ..tta import check_tta

    _check_keys(config, TOP_LEVEL_KEYS, "config")
    config = to_plain(config)  # a copy, with AttrDicts and tuples as plain YAML data
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
    if not isinstance(config["name"], str) or not config["name"] or "/" in config["name"]:
        raise ConfigError(f"name must be a non-empty string without '/', got {config['name']!r}")
    check_run_name(config["name"])
    if isinstance(config["seed"], bool) or not isinstance(config["seed"], int) or config["seed"] < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {config['seed']!r}")
    try:
        config["epochs"] = check_epochs(config["epochs"])  # a fraction is a last, partial epoch
    except ValueError as err:
        raise ConfigError(f"{err} (a fraction trains part of the last epoch)") from None

    data = config["data"]
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError("data must be a mapping with at least 'name' (and usually 'batch_size')")
    if data["name"] not in DATASETS:
        raise ConfigError(f"unknown data set data.name={data['name']!r}; valid names: {', '.join(DATASETS)}")
    allowed = _signature_keys(DATASETS[data["name"]])
    if allowed:
        _check_keys({k: v for k, v in data.items() if k != "name"}, {k: False for k in allowed}, "data")
    _check_data_values(data, DATASETS[data["name"]])

    model = config["model"]
    _check_keys(model, MODEL_KEYS, "model")
    built = {}  # dotted key -> (its section as validated, the object built from it)
    try:
        loss = build_loss(model["loss"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.loss: {err}") from None
    built["model.loss"] = (copy.deepcopy(model["loss"]), loss)
    if not isinstance(model["layers"], list) or not model["layers"]:
        raise ConfigError("model.layers must be a non-empty list of layer mappings")
    for i, layer in enumerate(model["layers"]):
        if not isinstance(layer, dict) or "name" not in layer:
            raise ConfigError(f"model.layers.{i} must be a mapping with a 'name'")
        try:
            last = initialize_layer(**layer)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"model.layers.{i}: {err}") from None
        built[f"model.layers.{i}"] = (copy.deepcopy(layer), last)
    _check_output_layer(loss, last, model["layers"])

    evaluation = config.setdefault("evaluation", {})
    if evaluation is None:
        evaluation = config["evaluation"] = {}
    _check_keys(evaluation, EVALUATION_KEYS, "evaluation")
    try:
        evaluation["tta"] = check_tta(evaluation.get("tta"))
    except ValueError as err:
        raise ConfigError(f"evaluation.tta: {err}") from None

    config["callbacks"] = _check_callbacks(config.get("callbacks"))
    _check_tensorboard(config)

    optimizer = config["optimizer"]
    if not isinstance(optimizer, dict) or "name" not in optimizer or "lr" not in optimizer:
        raise ConfigError("optimizer must be a mapping with at least 'name' and 'lr'")
    fallback = optimizer.get("fallback")  # Muon's optimizer for the parameters it leaves out
    for section in (optimizer, fallback if isinstance(fallback, dict) else {}):
        schedule = section.get("lr_scheduler")
        if isinstance(schedule, str) and _spans_the_run(schedule):
            schedule = section["lr_scheduler"] = {"name": schedule}  # a name alone: its mapping form
        if isinstance(schedule, dict) and _spans_the_run(schedule.get("name")):
            schedule.setdefault("total_epochs", config["epochs"])  # anneal over the whole run unless told otherwise
    try:
        built["optimizer"] = (copy.deepcopy(optimizer), initialize_optimizer(**optimizer))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optimizer: {err}") from None
    return ValidConfig(config, built)


def _check_data_values(data: dict, loader) -> None:
    """``ConfigError`` for a ``batch_size`` that is not a positive integer, a ``validation_size``
    that is neither a count (an integer >= 0) nor a fraction in [0, 1), or a switch of ``loader``
    (an argument annotated ``bool``: ``flatten``, ``cache``, ...) given anything but true
    or false (``"false"`` would otherwise switch it on): refused before anything is read, so that
    a search space's range ends are checked too. A count larger than the data set is only known
    when it is loaded."""
    for key, parameter in inspect.signature(loader).parameters.items():
        if parameter.annotation in (bool, "bool") and key in data and not isinstance(data[key], bool):
            raise ConfigError(f"data.{key} must be true or false, got {data[key]!r}")
    if "batch_size" in data:
        size = data["batch_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"data.batch_size must be a positive integer, got {size!r}")
    if "validation_size" in data:
        size = data["validation_size"]
        count = isinstance(size, int) and size >= 0
        if isinstance(size, bool) or not (count or (isinstance(size, float) and 0.0 <= size < 1.0)):
            raise ConfigError(
                "data.validation_size must be a count of examples (an integer >= 0) or a fraction in [0, 1), "
                f"got {size!r}"
            )


def _check_output_layer(loss, last, layers: list) -> None:
    """``ConfigError`` naming the last layer's activation key, its value and the fix when that
    layer (``last``, built from ``layers[-1]``) cannot make what ``loss`` expects."""
    from ..losses import activations_making, output_fits

    if output_fits(loss, last):
        return
    where = f"model.layers.{len(layers) - 1}"
    fix = " or ".join(activations_making(loss.expects)) or f"one that makes {loss.expects}"
    needs = f"cannot make the {loss.expects} that model.loss {loss.name} expects"
    if last.activation is None:
        raise ConfigError(
            f"{where}: a {layers[-1]['name']} layer {needs}; end with a layer with activation: {fix} for {loss.name}"
        )
    given = repr(layers[-1]["activation"]) if layers[-1].get("activation") is not None else "'linear' (the default)"
    raise ConfigError(f"{where}.activation: {given} {needs}; use activation: {fix} for {loss.name}")


def _spans_the_run(name) -> bool:
    """Whether the schedule called ``name`` takes ``total_epochs`` (cosine, one-cycle, triangular),
    which a config then sets to the run's epochs unless it gives it."""
    from ..schedulers import SCHEDULERS

    try:
        return "total_epochs" in SCHEDULERS.arguments(SCHEDULERS.canonical(name))
    except (TypeError, ValueError):
        return False  # an unknown name: initialize_optimizer reports it


def _check_callbacks(callbacks) -> list:
    """Each entry names a registered callback and valid arguments; they are built to check the
    values. ``model_checkpoint`` (at most one) configures the run's own checkpoint, whose
    directory is the run directory; ``tensorboard`` (at most one) writes to the run directory's
    ``tensorboard/`` folder, with the config as its hyperparameters."""
    from ..callbacks import CALLBACKS

    if callbacks is None:
        return []
    if not isinstance(callbacks, list):
        raise ConfigError(f"callbacks must be a list of mappings with a 'name', got {type(callbacks).__name__}")
    checked, checkpoints, tensorboards = [], 0, 0
    for i, entry in enumerate(callbacks):
        where = f"callbacks.{i}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{where} must be a mapping with a 'name' (valid names: {', '.join(CALLBACKS.names())})")
        kwargs = {k: v for k, v in entry.items() if k != "name"}
        try:
            name = CALLBACKS.canonical(entry["name"])
            if name == "model_checkpoint":
                checkpoints += 1
                if checkpoints > 1:
                    raise ValueError("a run has one checkpoint; give model_checkpoint once")
                if "directory" in kwargs:
                    raise ValueError(
                        "model_checkpoint takes no directory here: the run directory holds the checkpoints"
                    )
                kwargs["directory"] = "."
            elif name == "tensorboard":
                tensorboards += 1
                if tensorboards > 1:
                    raise ValueError("a run writes one set of TensorBoard events; give tensorboard once")
                for key in _RUN_TENSORBOARD_KEYS:
                    if key in kwargs:
                        raise ValueError(f"tensorboard takes no {key} here: {_RUN_TENSORBOARD_KEYS[key]}")
                kwargs["log_dir"] = "."
            CALLBACKS.create(name, **kwargs)
        except ImportError as err:
            raise _MissingPackage(f"{where}: {err}") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from None
        checked.append({"name": name, **{k: v for k, v in entry.items() if k != "name"}})
    return checked


#: Arguments of the ``tensorboard`` callback that a run sets itself, with why.
_RUN_TENSORBOARD_KEYS = {
    "log_dir": "a run writes its events to <run directory>/tensorboard/",
    "hparams": "a run's hyperparameters are its config",
    "input_shape": "a run takes it from the data set",
}


def _check_tensorboard(config: dict) -> None:
    """``tensorboard`` is true or false (a missing key is false); true needs the package."""
    if "tensorboard" not in config:
        return
    value = config["tensorboard"]
    if not isinstance(value, bool):
        raise ConfigError(f"tensorboard must be true or false, got {value!r}")
    if value:
        from ..tensorboard import check_available

        try:
            check_available()
        except ImportError as err:
            raise _MissingPackage(f"tensorboard: {err}") from None


def config_data_paths(folder) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """The ``data.path`` values of the YAML configs ``<folder>/*.yaml``, by data set:
    ``({data set: {path as written: [config file, ...]}}, problems)``, the files in name order.
    ``problems`` holds one line per config that names a path but could not be read, or whose
    ``data.name`` is not a data set (it is not listed; nothing is dropped without a word). A
    config without ``data.path`` (the default location), and a YAML file without a ``data``
    mapping (a search space), add nothing; an absent folder gives ``({}, [])``."""
    from ..datasets import DATASETS

    paths: dict[str, dict[str, list[str]]] = {}
    problems = []
    for file in sorted(Path(folder).glob("*.yaml")):
        try:
            data = load_config(file).get("data")
        except ConfigError as err:
            problems.append(f"{err}; its data.path is not listed")
            continue
        if not isinstance(data, dict) or data.get("path") is None:
            continue
        try:
            name = DATASETS.canonical(str(data.get("name")))
        except ValueError as err:
            problems.append(f"{file}: data.name: {err}; its data.path is not listed")
            continue
        paths.setdefault(name, {}).setdefault(str(data["path"]), []).append(str(file))
    return paths, problems


def load_valid_config(path, overrides=()) -> ValidConfig:
    """Read ``path``, apply ``overrides`` (``key=value`` strings) and validate the result
    (:func:`validate_file_config`). ``ConfigError`` for a file that cannot be read or parsed
    (naming it), a bad override (naming it) and an invalid config (naming the file)."""
    return validate_file_config(apply_overrides(load_config(path), overrides), path, overrides)


def validate_file_config(config: dict, path, overrides=()) -> ValidConfig:
    """:func:`validate_config` of ``config``, read from ``path`` with ``overrides`` applied (for a
    caller that keeps the config as written too); an invalid config's :class:`ConfigError` names
    the file (and the overrides, when there are and the error is about the values, not a
    missing optional package)."""
    try:
        return validate_config(config)
    except ConfigError as err:
        blame = overrides and not isinstance(err, _MissingPackage)
        # the overrides as key=value, whichever option gave them (--set, --epochs, --seed, --tensorboard)
        where = f"{path} with {' '.join(overrides)}" if blame else str(path)
        raise ConfigError(f"{where}: {err}") from None
