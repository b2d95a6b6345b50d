"""Model and checkpoint files: one ``.npz`` archive, the architecture as JSON text, no pickle.

Format ``neural_networks.model/2`` (what :func:`save_model` and :func:`save_checkpoint` write):

* ``config``: JSON text of the architecture: ``format``, ``layers`` (each layer's ``config()``
  plus ``n_in``), ``loss``, ``optimizer`` (its ``config()``) and ``seed``;
* ``extra``: JSON text of the caller's metadata (``NeuralNetwork.save(path, extra=...)``; a
  checkpoint's holds the epoch);
* ``training`` (checkpoints only): JSON text of the state a resumed run needs, as
  :class:`~neural_networks.callbacks.ModelCheckpoint` writes it (epoch, best value, History, the
  callbacks' states);
* arrays: ``layers.<i>.<name>`` (parameters), ``buffers.<i>.<name>`` (e.g. batch-norm running
  statistics), ``optimizer.<key>`` (the optimizer's state) and ``training.<key>`` (the arrays of
  the training state).

The ``config`` also holds ``sha256``: the checksum of every other entry (see :func:`checksum`),
and ``config_sha256``: the checksum of the config itself without those two keys (see
:func:`config_checksum`); both are checked on load. Files written before either was added still
load. A file that is
empty, truncated, not a zip archive or fails its checksum raises a one-line ``ValueError``
naming the file.

Checksum or not, every array is checked against the architecture in the config (see
:func:`check_arrays`): each layer recorded with an ``n_in`` has exactly the parameters and buffers
its layer makes for that input size, in those shapes, as float32 or float64; each optimizer state
array belongs to one of those parameters; only ``training.<key>`` arrays are free-form. Anything
else (a missing, extra, wrongly shaped or integer/half-precision array) raises a one-line
``ValueError`` ``"<file>: <what>"`` naming the array, what was expected and what was found.

Format ``neural_networks.model/1`` (files of earlier versions) is read too: the same arrays,
with ``extra`` inside ``config`` and no training state. Every file is written atomically.

This module never imports the model: loading builds the class it is given (``cls=``), by default
:data:`default_model_class`, which :mod:`neural_networks.models` sets to ``NeuralNetwork``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .io import atomic_write
from .layers import initialize_layer
from .losses import CrossEntropy, initialize_loss
from .optimizers import initialize_optimizer
from .validation import positive_int

__all__ = [
    "FORMAT",
    "READABLE_FORMATS",
    "Checkpoint",
    "model_config",
    "model_arrays",
    "save_model",
    "load_model",
    "save_checkpoint",
    "load_checkpoint",
    "checksum",
    "config_checksum",
    "check_arrays",
]

#: The format that :func:`save_model` writes, recorded in every model file.
FORMAT = "neural_networks.model/2"
FORMAT_V1 = "neural_networks.model/1"
#: The formats a model file may have to be read (the older one without training state).
READABLE_FORMATS = (FORMAT_V1, FORMAT)
TRAINING_PREFIX = "training."

#: The class :func:`load_model` and :func:`load_checkpoint` build when not given one:
#: ``NeuralNetwork``, which :mod:`neural_networks.models` names here when it defines it.
default_model_class = None


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: the rebuilt ``model`` (with ``model.extra``), the file's
    ``format``, the ``training`` state (``None`` for plain model files and format 1) and its
    ``arrays`` (keys without the ``training.`` prefix)."""

    model: Any
    format: str
    extra: dict = field(default_factory=dict)
    training: dict | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def model_config(model) -> dict:
    """Architecture, loss and optimizer of ``model`` as plain JSON-serialisable data."""
    loss_config = {"name": model.loss.name}
    if isinstance(model.loss, CrossEntropy) and model.loss.label_smoothing:
        loss_config["label_smoothing"] = model.loss.label_smoothing
    return {
        "format": FORMAT,
        "layers": [_layer_config(layer) for layer in model.layers],
        "loss": loss_config,
        "optimizer": None if model.optimizer is None else model.optimizer.config(),
        "seed": model.seed,
    }


def model_arrays(model) -> dict[str, np.ndarray]:
    """Every parameter (``layers.<i>.<name>``), buffer (``buffers.<i>.<name>``) and optimizer
    state array (``optimizer.<key>``) of ``model``."""
    arrays = {}
    for i, layer in enumerate(model.layers):
        for name, value in layer.parameters.items():
            arrays[f"layers.{i}.{name}"] = value
        for name, value in getattr(layer, "buffers", {}).items():
            arrays[f"buffers.{i}.{name}"] = value
    if model.optimizer is not None:
        for key, value in model.optimizer.state().items():
            arrays[f"optimizer.{key}"] = value
    return arrays


def _text(data) -> np.ndarray:
    return np.array(json.dumps(data))


def checksum(entries: dict[str, np.ndarray]) -> str:
    """sha256 (hex) over ``entries`` but ``config``, in sorted key order: for each, its key, dtype,
    shape and C-order bytes."""
    digest = hashlib.sha256()
    for key in sorted(entries):
        if key == "config":
            continue
        value = np.ascontiguousarray(entries[key])
        digest.update(f"{key}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def config_checksum(config: dict) -> str:
    """sha256 (hex) of ``config`` without its ``sha256`` and ``config_sha256`` keys, as canonical
    JSON (sorted keys, no spaces): the same for the dict written and the dict read back."""
    body = {key: value for key, value in config.items() if key not in ("sha256", "config_sha256")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_checkpoint(
    path, model, extra: dict | None = None, training: dict | None = None, arrays: dict[str, np.ndarray] | None = None
) -> None:
    """Write ``model`` (architecture, parameters, optimizer state), ``extra`` metadata and, for a
    checkpoint, the ``training`` state (JSON data) with its ``arrays``, to one ``.npz``, atomically."""
    entries = {"extra": _text(extra or {})}
    entries.update(model_arrays(model))
    if training is not None:
        entries["training"] = _text(training)
    for key, value in (arrays or {}).items():
        entries[TRAINING_PREFIX + key] = np.asarray(value)
    config = json.loads(json.dumps({**model_config(model), "sha256": checksum(entries)}))  # as a load reads it
    entries["config"] = _text({**config, "config_sha256": config_checksum(config)})
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **entries)


def save_model(model, path, extra: dict | None = None) -> None:
    """Write ``model`` with ``extra`` metadata (JSON-serialisable) to ``path`` (see the module docstring)."""
    save_checkpoint(path, model, extra=extra)


def load_checkpoint(path, logger=None, cls=None) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint` / :func:`save_model` (format 2) or by an
    earlier version (format 1); rebuilds the model as ``cls`` (default
    :data:`default_model_class`, the :class:`~neural_networks.models.NeuralNetwork`) with
    ``logger``. No pickled objects are read. Raises ``FileNotFoundError`` for a missing file and a
    one-line ``ValueError`` naming the file for one that is damaged, of an unknown format or
    inconsistent with its architecture."""
    entries = _read_entries(path)
    if "config" not in entries:
        raise ValueError(f"{path}: not a neural_networks model file (no 'config' entry)")
    try:
        config = json.loads(str(entries["config"]))
    except ValueError as err:
        raise ValueError(f"{path}: corrupt model file (its config is not JSON: {err})") from None
    version = config.get("format") if isinstance(config, dict) else None
    if version not in READABLE_FORMATS:
        raise ValueError(f"{path}: unsupported model format {version!r}; expected one of {', '.join(READABLE_FORMATS)}")
    expected = config.get("sha256")
    if expected is not None and checksum(entries) != expected:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt or was altered)")
    expected = config.get("config_sha256")
    if expected is not None and config_checksum(config) != expected:
        raise ValueError(f"{path}: checksum mismatch in its config (the file is corrupt or was altered)")
    try:
        if version == FORMAT_V1:
            extra, training = config.get("extra") or {}, None
        else:
            extra = json.loads(str(entries["extra"])) if "extra" in entries else {}
            training = json.loads(str(entries["training"])) if "training" in entries else None
    except ValueError as err:
        raise ValueError(f"{path}: corrupt model file ({err})") from None
    arrays = {key: value for key, value in entries.items() if key not in ("config", "extra", "training")}
    model = _build(config, arrays, logger, cls, source=path)
    model.extra = extra
    state = {key[len(TRAINING_PREFIX) :]: value for key, value in arrays.items() if key.startswith(TRAINING_PREFIX)}
    return Checkpoint(model=model, format=version, extra=extra, training=training, arrays=state)


# What zipfile and numpy raise for a damaged archive; NotImplementedError, RuntimeError: a damaged
# header (unsupported version, compression or flag; an "encrypted" member).
_DAMAGED_ZIP = (
    zipfile.BadZipFile,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)
# Checkpoints are written uncompressed (np.savez), so their entries add up to about the file's
# size; one whose entries declare far more is refused before anything is decompressed.
_MAX_EXPANSION = 16
_EXPANSION_FLOOR = 64 << 20


def _check_archive(path) -> None:
    """Refuse, naming ``path``, a file that is empty, is not a zip archive, or whose entries declare
    more than :data:`_MAX_EXPANSION` times its size (a decompression bomb)."""
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: unreadable model file (empty file)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path}: not a model file (not an .npz archive: it starts with {magic!r})")
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except _DAMAGED_ZIP as err:
        raise ValueError(f"{path}: unreadable model file (truncated or corrupt zip archive: {err})") from None
    if declared > max(_EXPANSION_FLOOR, _MAX_EXPANSION * size):
        raise ValueError(
            f"{path}: unreadable model file (its entries declare {declared} bytes from a {size}-byte file; "
            "refused as a possible decompression bomb)"
        )


def _read_entries(path) -> dict[str, np.ndarray]:
    """Every entry of the ``.npz`` at ``path``; a file that is not a whole, readable archive
    raises a one-line ``ValueError`` naming it (a missing file: ``FileNotFoundError``)."""
    _check_archive(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except _DAMAGED_ZIP as err:
        if isinstance(err, EOFError) or not str(err):
            reason = "empty or truncated file"
        else:
            reason = " ".join(str(err).split())
        raise ValueError(f"{path}: unreadable model file ({reason})") from None


def load_model(path, logger=None, cls=None):
    """The model stored in ``path`` (``model.extra`` holds the file's metadata), built as ``cls``
    (see :func:`load_checkpoint`, which also says what it raises)."""
    return load_checkpoint(path, logger=logger, cls=cls).model


def _layer_config(layer) -> dict:
    """A layer's entry in a model file: its ``config()``, ``n_in`` and, when any, its frozen parameters."""
    entry = {**layer.config(), "n_in": layer.n_in}
    if layer.frozen:
        entry["frozen"] = sorted(layer.frozen)
    return entry


# What the layers compute in: an integer or half-precision array would load and give wrong
# predictions instead of failing, so parameters, buffers and optimizer state must be one of these.
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _layer_name(i: int, layer) -> str:
    return f"layer {i} ({type(layer).__name__})"


def check_arrays(layers: list, n_ins: list, has_optimizer: bool, arrays: dict[str, np.ndarray]) -> list[str]:
    """The ways ``arrays`` (a file's entries but ``config``, ``extra`` and ``training``) do not fit
    the architecture: ``layers`` as built from the config (not yet given parameters), ``n_ins``
    each layer's recorded ``n_in`` (``None``: never built, so no arrays) and ``has_optimizer``
    whether the config records one. Each problem is one line naming the array; ``[]`` if none.

    Expected: ``layers.<i>.<name>`` / ``buffers.<i>.<name>`` exactly as
    :meth:`~neural_networks.layers.Layer.parameter_shapes` / ``buffer_shapes`` give them for the
    recorded ``n_in``, float32 or float64; ``optimizer.<...>.<param><i>`` shaped like parameter
    ``<param>`` of layer ``i``, float32 or float64 (``optimizer.<...>.t.<param><i>``: a 0-d
    integer step count); ``training.<key>``: any. Raises ``ValueError`` where the config leaves a shape unknown
    (``n_out: null`` on a layer with an ``n_in``)."""
    problems, expected, params = [], {}, {}
    for i, (layer, n_in) in enumerate(zip(layers, n_ins)):
        if n_in is None:
            continue
        for prefix, what, shapes in (
            ("layers", "parameter", layer.parameter_shapes(n_in)),
            ("buffers", "buffer", layer.buffer_shapes(n_in)),
        ):
            for name, shape in shapes.items():
                expected[f"{prefix}.{i}.{name}"] = (f"{what} {name} of {_layer_name(i, layer)}", tuple(shape))
    for key, (what, shape) in expected.items():
        value = arrays.get(key)
        if value is None:
            problem = f"no array {key!r} ({what}, shape {shape}) in the file"
        elif value.dtype not in _FLOATS:
            problem = f"array {key!r} ({what}) has dtype {value.dtype}; expected float32 or float64"
        elif value.shape != shape:
            problem = f"array {key!r} ({what}) has shape {value.shape}; expected {shape} for the architecture"
        else:
            problem = None
        problems.append(problem)
        if key.startswith("layers."):  # None: reported already, so its optimizer state is not checked against it
            _, i, name = key.split(".", 2)
            params[f"{name}{i}"] = None if problem else (what, value)
    for key, value in arrays.items():
        if key in expected or key.startswith(TRAINING_PREFIX):
            continue
        if key.startswith("optimizer."):
            problems.append(_optimizer_problem(key, value, params, has_optimizer))
        else:
            problems.append(f"unexpected array {key!r} ({_unexpected(key, layers, n_ins)})")
    return [problem for problem in problems if problem]


def _optimizer_problem(key: str, value: np.ndarray, params: dict, has_optimizer: bool) -> str | None:
    """What is wrong with optimizer state array ``key`` (``None`` if nothing): every optimizer keys
    its state by ``<param><layer index>`` last (see :mod:`neural_networks.optimizers`)."""
    if not has_optimizer:
        return f"unexpected array {key!r} (the file records no optimizer)"
    owner = key.rsplit(".", 1)[-1]
    if owner not in params:
        known = ", ".join(params) or "none"
        return f"unexpected array {key!r} (optimizer state of no parameter of the architecture; parameters: {known})"
    if params[owner] is None:
        return None
    what, param = params[owner]
    if key.split(".")[-2] == "t":  # a step count (Adam's and AdamW's t.<param>)
        if value.ndim == 0 and value.dtype.kind in "iu":
            return None
        return (
            f"array {key!r} (step count of {what}) has shape {value.shape}, dtype {value.dtype}; expected a 0-d integer"
        )
    if value.shape != param.shape:
        return f"array {key!r} (optimizer state of {what}) has shape {value.shape}; expected {param.shape}"
    # Not necessarily the parameter's dtype: a model whose parameters were cast after training keeps
    # its state, which the optimizer then restarts in the new dtype, as it would have in memory.
    if value.dtype not in _FLOATS:
        return f"array {key!r} (optimizer state of {what}) has dtype {value.dtype}; expected float32 or float64"
    return None


def _unexpected(key: str, layers: list, n_ins: list) -> str:
    """Why ``key`` has no place in the file, for an error message."""
    prefix, _, rest = key.partition(".")
    index, _, name = rest.partition(".")
    kinds = {"layers": "parameters", "buffers": "buffers"}
    if prefix not in kinds or not index.isdigit() or not name:
        return (
            "a model file holds only layers.<i>.<name>, buffers.<i>.<name>, optimizer.<key> and training.<key> arrays"
        )
    i = int(index)
    if i >= len(layers):
        return f"the architecture has {len(layers)} layers"
    layer = layers[i]
    if n_ins[i] is None:
        return f"the config records no n_in for {_layer_name(i, layer)}, so it has no arrays to load"
    names = layer.parameter_names if prefix == "layers" else tuple(layer.buffer_shapes(n_ins[i]))
    return (
        f"{_layer_name(i, layer)} has {kinds[prefix]} {', '.join(names)}"
        if names
        else (f"{_layer_name(i, layer)} has no {kinds[prefix]}")
    )


def _build(config: dict, arrays: dict[str, np.ndarray], logger, cls, source=None):
    """The model ``config`` describes, with ``arrays`` as its state. With ``source`` (the file's
    name) the config's layers and the arrays are checked first (:func:`check_arrays`): a mismatch
    raises one ``ValueError`` line ``"<source>: <what>"``. ``cls`` ``None``: :data:`default_model_class`."""
    cls = default_model_class if cls is None else cls
    if source is not None and not (isinstance(config.get("layers"), list) and config["layers"]):
        found = "an empty list" if config.get("layers") == [] else f"a {type(config.get('layers')).__name__}"
        raise ValueError(f"{source}: corrupt model file (its config's layers are {found}, not a non-empty list)")
    layers, n_ins = [], []
    for i, layer_config in enumerate(config["layers"]):
        try:
            layer_config = dict(layer_config)
            n_in = layer_config.pop("n_in", None)
            n_ins.append(None if n_in is None else positive_int(n_in, "n_in"))
            layers.append(initialize_layer(**layer_config))
        except (TypeError, ValueError) as err:
            if source is None:
                raise
            raise ValueError(f"{source}: layer {i} of its config is invalid ({err})") from None
    if source is not None:
        try:
            problems = check_arrays(layers, n_ins, bool(config.get("optimizer")), arrays)
        except ValueError as err:  # a shape the config leaves unknown (n_out: null with an n_in)
            problems = [str(err)]
        if problems:
            more = len(problems) - 1
            more = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            raise ValueError(f"{source}: {problems[0]}{more}")
    for i, (layer, n_in) in enumerate(zip(layers, n_ins)):
        params = OrderedDict(
            (key.split(".", 2)[2], value) for key, value in arrays.items() if key.startswith(f"layers.{i}.")
        )
        if params:
            layer.n_in = n_in
            layer.parameters = params
            layer.clear_gradients()
            layer.needs_data = False  # its data-dependent initialisation is in the file
        buffers = {key.split(".", 2)[2]: value for key, value in arrays.items() if key.startswith(f"buffers.{i}.")}
        if buffers:
            layer.buffers.update(buffers)
    optimizer = None
    if config.get("optimizer"):
        optimizer = initialize_optimizer(**config["optimizer"])
        optimizer.load_state(
            {key[len("optimizer.") :]: value for key, value in arrays.items() if key.startswith("optimizer.")}
        )
    return cls(
        loss=initialize_loss(**config["loss"]),
        layers=layers,
        optimizer=optimizer,
        logger=logger,
        seed=config.get("seed"),
    )
