"""safetensors export: a model's parameters and buffers as named tensors, its architecture as
metadata, readable by ``safetensors.numpy.load_file`` (and by any safetensors reader).

Tensor names are the library's own (:func:`neural_networks.serialization.model_arrays`, as in
its ``.npz`` files): ``layers.<i>.<name>`` for the parameters of layer ``i`` (``W``, ``b``,
``gamma``, ``beta``) and ``buffers.<i>.<name>`` for its buffers (batch norm's ``running_mean``,
``running_var``), each in the layer's own shape, layout and dtype (e.g. a convolution's
``W (kh, kw, c_in, c_out)``, a dense layer's ``W (n_in, n_out)``, biases ``(1, n_out)``).
The optimizer's state is left out: this is an inference export (a model file or checkpoint
keeps it).

Metadata (safetensors allows only strings): ``config``, the JSON of
:func:`neural_networks.serialization.model_config` (format, layers with their ``n_in``, loss,
optimizer settings, seed), from which :func:`load_safetensors` rebuilds the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..layers import BatchNorm
from ..serialization import READABLE_FORMATS, model_arrays, model_config
from ._common import check_exportable, require

__all__ = ["CONFIG_KEY", "state_tensors", "safetensors_bytes", "load_safetensors"]

#: The metadata key holding the architecture (JSON text).
CONFIG_KEY = "config"
_WHAT = "safetensors export"


def state_tensors(model) -> dict[str, np.ndarray]:
    """Every parameter (``layers.<i>.<name>``) and buffer (``buffers.<i>.<name>``) of ``model``,
    as C-contiguous arrays (what safetensors stores)."""
    return {
        key: np.ascontiguousarray(value)
        for key, value in model_arrays(model).items()
        if key.startswith(("layers.", "buffers."))
    }


def safetensors_bytes(model) -> bytes:
    """The bytes of a ``.safetensors`` file of ``model`` (see the module docstring)."""
    numpy_io = require("safetensors.numpy", "safetensors", _WHAT)
    check_exportable(model)
    return numpy_io.save(state_tensors(model), metadata={CONFIG_KEY: json.dumps(model_config(model))})


def load_safetensors(path, logger=None, cls=None):
    """Rebuild the model written by the safetensors export at ``path`` (as ``cls``, default
    :class:`~neural_networks.models.NeuralNetwork`, with ``logger``): its layers from the
    ``config`` metadata, their parameters and buffers from the tensors (writable copies, so the
    model can be trained further; its optimizer starts with fresh state). A file that is not such
    an export raises a one-line ``ValueError`` naming it."""
    require("safetensors", "safetensors", "reading a safetensors export")
    from safetensors import safe_open

    from ..serialization import _build

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: np.array(handle.get_tensor(key)) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError (not an OSError) for a bad header
        raise ValueError(f"{path}: unreadable safetensors file ({' '.join(str(err).split())})") from None
    if CONFIG_KEY not in metadata:
        raise ValueError(f"{path}: not a neural_networks safetensors export (no {CONFIG_KEY!r} metadata)")
    try:
        config = json.loads(metadata[CONFIG_KEY])
    except ValueError as err:
        raise ValueError(f"{path}: corrupt {CONFIG_KEY!r} metadata (not JSON: {err})") from None
    version = config.get("format") if isinstance(config, dict) else None
    if version not in READABLE_FORMATS:
        raise ValueError(f"{path}: unsupported model format {version!r}; expected one of {', '.join(READABLE_FORMATS)}")
    try:  # with source, every tensor is checked against the architecture (names, shapes, dtypes)
        model = _build(config, tensors, logger, cls, source=path)
    except ValueError as err:
        if str(err).startswith(f"{path}: "):
            raise  # already one line naming the file and the tensor
        raise ValueError(f"{path}: corrupt {CONFIG_KEY!r} metadata (ValueError: {err})") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: corrupt {CONFIG_KEY!r} metadata ({type(err).__name__}: {err})") from None
    # The export writes every parameter and buffer; a layer rebuilt without them would quietly
    # draw fresh weights (or default statistics) on its first forward pass.
    for i, layer in enumerate(model.layers):
        expected = [f"layers.{i}.{name}" for name in layer.parameter_names]
        if isinstance(layer, BatchNorm):
            expected += [f"buffers.{i}.running_mean", f"buffers.{i}.running_var"]
        missing = [key for key in expected if key not in tensors]
        if missing:
            raise ValueError(f"{path}: {layer.where} has no tensor {', '.join(missing)} in the file")
    model.extra = {}
    return model
