"""Model export: a trained :class:`~neural_networks.models.NeuralNetwork` as an ONNX graph or a
safetensors file, for serving and other tools (the command line's ``neural-networks export``).

* ``"onnx"`` (:mod:`.onnx`): a graph computing what ``model.predict`` returns; input ``input``,
  float32 ``(batch, features)`` or NHWC ``(batch, rows, cols, channels)`` as the library takes it,
  output ``output`` (e.g. softmax probabilities). Needs ``pip install "neural_networks[onnx]"``.
* ``"safetensors"`` (:mod:`.safetensors`): every parameter and buffer under the library's names
  (``layers.0.W``, ``buffers.2.running_mean``) with the architecture as metadata;
  :func:`load_safetensors` rebuilds the model. Needs ``pip install "neural_networks[safetensors]"``.

The packages are imported on use only: ``import neural_networks`` (and this package) works
without them, and an export without them raises a one-line :class:`ExportError` naming the extra.
Files are written atomically (:func:`neural_networks.io.atomic_write`), serialised to bytes first.
"""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write
from ._common import ExportError

__all__ = ["FORMATS", "ExportError", "export_model", "export_bytes", "load_safetensors"]

#: The formats :func:`export_model` writes.
FORMATS = ("onnx", "safetensors")


def export_bytes(model, format: str, input_shape=None) -> bytes:
    """``model`` serialised in ``format`` (one of :data:`FORMATS`). ``input_shape`` (ONNX only):
    the input without its batch axis, e.g. ``(32, 32, 3)`` to fix the image size; by default it
    comes from the first layers, with free image rows and columns.

    Raises :class:`ExportError` (a ``ValueError``) for an unknown format, ``input_shape`` with
    safetensors, a missing optional package, a layer without parameters yet, and (ONNX) a layer,
    activation or input shape the graph cannot express."""
    if format == "onnx":
        from .onnx import onnx_bytes

        return onnx_bytes(model, input_shape=input_shape)
    if format == "safetensors":
        if input_shape is not None:
            raise ExportError("input_shape applies to the onnx format only (safetensors stores no graph)")
        from .safetensors import safetensors_bytes

        return safetensors_bytes(model)
    raise ExportError(f"unknown export format {format!r}; valid formats: {', '.join(FORMATS)}")


def export_model(model, path, format: str, input_shape=None) -> Path:
    """Write ``model`` to ``path`` in ``format`` (``"onnx"`` or ``"safetensors"``), atomically: the
    whole file is built in memory first, so a failed export leaves no file (and an existing one
    untouched). Returns the path. ``input_shape`` and the :class:`ExportError` cases: see
    :func:`export_bytes`; ``OSError`` when the file cannot be written."""
    data = export_bytes(model, format, input_shape=input_shape)
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return path


def load_safetensors(path, logger=None, cls=None):
    """The model of a safetensors export (see :func:`.safetensors.load_safetensors`)."""
    from .safetensors import load_safetensors as load

    return load(path, logger=logger, cls=cls)
