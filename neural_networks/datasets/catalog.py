"""The data sets (:data:`DATASETS`), what data is present where, and whether it matches the
published checksums (the library side of the CLI's ``data list|path|verify``). Nothing here
downloads. Besides each data set's default location, :func:`list_datasets` reports the
``data.path`` values that experiment configs give (read by
:func:`neural_networks.experiments.config_data_paths`; what ``data list`` shows for ``./configs/*.yaml``).

:data:`DATASETS` registers each data set's loader function with its :class:`~.spec.DatasetSpec`;
the functions below loop over it, or look a name up in it, and ask the spec: apart from the
registry lines, nothing here names a data set.
"""

from __future__ import annotations

from pathlib import Path

from ..registry import Registry
from . import cifar10, fashion_mnist, image_folder, iris, mnist
from .spec import FileCheck

__all__ = [
    "DATASETS",
    "FileCheck",
    "VERIFIABLE",
    "list_datasets",
    "format_dataset_row",
    "dataset_path",
    "verify_dataset",
]

#: Every data set by name: its loader function (``DATASETS[name]``, the factory that
#: ``initialize_dataset`` calls), aliases and :class:`~.spec.DatasetSpec` (``DATASETS.spec(name)``).
#: Adding a data set is its module (a ``load_<name>`` function and a ``SPEC``) and one line here.
DATASETS = Registry("data set")
DATASETS.add("iris", iris.load_iris, spec=iris.SPEC)
DATASETS.add(
    "fashion_mnist", fashion_mnist.load_fashion_mnist, aliases=("fashionmnist", "fmnist"), spec=fashion_mnist.SPEC
)
DATASETS.add("mnist", mnist.load_mnist, spec=mnist.SPEC)
DATASETS.add("cifar10", cifar10.load_cifar10, aliases=("cifar_10",), spec=cifar10.SPEC)
DATASETS.add("image_folder", image_folder.load_image_folder, aliases=("imagefolder",), spec=image_folder.SPEC)

#: Data sets with published checksums (what ``data verify`` checks by default).
VERIFIABLE = tuple(name for name in DATASETS if DATASETS.spec(name).verifiable)


def dataset_path(name: str, path=None) -> Path:
    """Where data set ``name`` is read from (no download): the folder of the IDX files for
    Fashion-MNIST and MNIST, the archive or folder for CIFAR-10, the shipped CSV for Iris. Raises
    :class:`DataNotFoundError`."""
    return DATASETS.spec(name).source(path)


def list_datasets(path=None, config_paths: dict | None = None) -> list[dict]:
    """One dict per data set: ``name``, ``description``, ``found`` (bool), ``path`` (where it is read
    from, or ``None``), ``where`` (``"shipped"``, ``"explicit path"``, ``"data folder
    ($NEURAL_NETWORKS_DATA)"``, ``"system copy"``) and, when not found, ``message``. ``path``
    applies to every data set (mostly useful with one). ``config_paths`` (the first value of
    :func:`neural_networks.experiments.config_data_paths`) adds ``configs`` to the rows of the data sets it names: one dict per
    path, ``path`` (as written), ``files`` (the configs giving it), ``found`` and ``message``."""
    rows = []
    for name in DATASETS:
        spec = DATASETS.spec(name)
        row = {"name": name, "description": spec.description, **spec.availability(path)}
        if path is None and config_paths and config_paths.get(name):
            row["configs"] = [
                {"path": given, "files": files, **_found(spec.availability(given))}
                for given, files in config_paths[name].items()
            ]
        rows.append(row)
    return rows


def _found(availability: dict) -> dict:
    return {"found": availability["found"], "message": availability.get("message", "")}


def format_dataset_row(row: dict) -> str:
    """The lines for a row of :func:`list_datasets`: name, found or missing, where, path or hint.
    One line, unless the row has ``configs``: then the first line is a config's path (found ones
    first), and further lines, indented, the other config paths and the default location."""
    state = "found" if row["found"] else "missing"
    detail = f"{row['path']} ({row['where']})" if row["found"] else row.get("message", "")
    if not row.get("configs"):
        return f"{row['name']:14s} {state:8s} {detail}"
    lines = []
    for config in sorted(row["configs"], key=lambda c: not c["found"]):
        text = f"{config['path']} (data.path of {', '.join(config['files'])})"
        lines.append(("found", text) if config["found"] else ("missing", f"{text}: {config['message']}"))
    lines.append((state, f"default location: {detail}"))
    return "\n".join(
        f"{row['name'] if i == 0 else '':14s} {line_state:8s} {text}" for i, (line_state, text) in enumerate(lines)
    )


def verify_dataset(name: str, path=None) -> list[FileCheck]:
    """Check a data set's files against the published checksums (no download).

    Fashion-MNIST: the sha256 of each decompressed IDX file (so Debian's re-compressed copy
    verifies). MNIST: no checksum of the decompressed files is published, so each file is checked
    by the md5 of the original ``.gz`` when that is what is present; a decompressed file is
    ``"unknown"`` (no published checksum), not a mismatch. CIFAR-10: the canonical tarball by md5,
    the JPEG archive by sha256. Returns one :class:`FileCheck` per file; all ``"ok"`` means
    verified."""
    return DATASETS.spec(name).verify(path)
