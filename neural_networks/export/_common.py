"""What the exporters share: their error type and the lazy import of their optional packages."""

from __future__ import annotations

import importlib

__all__ = ["ExportError", "require"]


class ExportError(ValueError):
    """A model (or an option of one of its layers) that a format cannot represent, or a missing
    optional package. A ``ValueError``, so the command line prints it as one ``error:`` line."""


def require(module: str, extra: str, what: str):
    """Import ``module`` (an optional dependency) or raise a one-line :class:`ExportError` that
    names the extra installing it. Imported here, on use, so that ``import neural_networks``
    (and the export modules themselves) work without the extras."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.split(".")[0]
        missing = isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == package
        reason = "is not installed" if missing else f"does not import ({' '.join(str(err).split())})"
        raise ExportError(
            f'{what} needs the {package} package, which {reason}: pip install "neural_networks[{extra}]"'
        ) from None


def check_exportable(model) -> None:
    """One-line :class:`ExportError` for a model whose parameters do not exist yet (a layer makes
    them on its first forward pass) or whose patch-whitening filters are not computed yet: an
    export would hold no weights, or placeholder ones."""
    for layer in model.layers:
        missing = [name for name in layer.parameter_names if name not in layer.parameters]
        if missing:
            raise ExportError(
                f"{layer.where} has no parameters yet ({', '.join(missing)}): they are made on the first forward "
                "pass; train the model (or run predict once) before exporting it"
            )
        if getattr(layer, "needs_data", False):
            raise ExportError(
                f"{layer.where}: its filters (weight_init {getattr(layer, 'weight_init', '?')!r}) are computed from "
                "the training images before the first epoch; train the model before exporting it"
            )
