"""What data is present where, and whether it matches the published checksums
(the library side of the CLI's ``data list|path|verify``). Nothing here downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import cifar10, fashion_mnist, mnist
from .idx import IDXDataset
from .sources import (SYSTEM_PACKAGES, DataFormatError, DataNotFoundError, RemoteFile, data_home, dataset_dir,
                      file_digests, find_file, is_gzip)

__all__ = ["FileCheck", "VERIFIABLE", "list_datasets", "format_dataset_row", "dataset_path", "verify_dataset"]

#: Data sets with published checksums (what ``data verify`` checks by default).
VERIFIABLE = ("fashion_mnist", "mnist", "cifar10")

#: The data sets of four IDX files, by name (one code path serves them all).
_IDX: dict[str, IDXDataset] = {spec.name: spec for spec in (fashion_mnist.SPEC, mnist.SPEC)}

_DESCRIPTIONS = {
    "iris": "Iris (Fisher, 1936): 150 flowers, 4 features, 3 classes; shipped with the package",
    "fashion_mnist": "Fashion-MNIST: 70,000 28x28 grayscale images, 10 classes (4 IDX files)",
    "mnist": "MNIST: 70,000 28x28 grayscale handwritten digits, 10 classes (4 IDX files)",
    "cifar10": "CIFAR-10: 60,000 32x32 RGB images, 10 classes (cifar-10-python.tar.gz or an image folder)",
    "image_folder": "any <split>/<class>/<image> tree or .tar/.tar.gz/.zip of one (needs path)",
}


@dataclass
class FileCheck:
    """One file's verification: ``status`` is ``"ok"``, ``"mismatch"``, ``"missing"``,
    ``"unknown"`` (no published checksum) or ``"corrupt"`` (unreadable)."""

    name: str
    path: str | None
    status: str
    algorithm: str | None = None
    expected: str | None = None
    actual: str | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        """Whether nothing is wrong: ``"ok"``, or ``"unknown"`` (nothing to compare with)."""
        return self.status in ("ok", "unknown")

    @property
    def line(self) -> str:
        """One printable line: status, name, path and what was compared."""
        text = f"{self.status:8s} {self.name}  {self.path or '-'}"
        if self.status in ("ok", "mismatch") and self.algorithm:
            text += f"  {self.algorithm} {self.actual}"
            if self.status == "mismatch":
                text += f" (expected {self.expected})"
        if self.message:
            text += f"  -- {self.message.splitlines()[0]}"
        return text

    def __iter__(self):
        """``line, passed = check`` (so ``for line, passed in verify_dataset(...)`` works)."""
        return iter((self.line, self.passed))


def dataset_path(name: str, path=None) -> Path:
    """Where data set ``name`` is read from (no download): the folder of the IDX files for
    Fashion-MNIST and MNIST, the archive or folder for CIFAR-10, the shipped CSV for Iris. Raises
    :class:`DataNotFoundError`."""
    key = _key(name)
    if key == "iris":
        return Path(__file__).parent / "data" / "iris.csv"
    if key in _IDX:
        return _IDX[key].locate(path, download=False, progress=False)["train_images"].parent
    if key == "cifar10":
        return cifar10.cifar10_source(path, download=False)
    if path is None:
        raise DataNotFoundError("the image_folder data set has no default location; pass its path")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"{p}: no such file or folder")
    return p


def _key(name: str) -> str:
    from . import _canonical_name

    return _canonical_name(name)


def list_datasets(path=None) -> list[dict]:
    """One dict per data set: ``name``, ``description``, ``found`` (bool), ``path`` (where it is read
    from, or ``None``), ``where`` (``"shipped"``, ``"explicit path"``, ``"data folder
    ($NEURAL_NETWORKS_DATA)"``, ``"system copy"``) and, when not found, ``message``. ``path``
    applies to every data set (mostly useful with one)."""
    rows = [{"name": "iris", "description": _DESCRIPTIONS["iris"], "found": True,
             "path": str(dataset_path("iris")), "where": "shipped"}]
    rows += [_idx_row(spec, path) for spec in _IDX.values()]
    if path is not None:
        found = (Path(path).expanduser(), "explicit path") if Path(path).expanduser().exists() else None
    else:
        found = find_file(cifar10.NAME, cifar10.CANDIDATES)
    row = {"name": "cifar10", "description": _DESCRIPTIONS["cifar10"], "found": found is not None,
           "path": str(found[0]) if found else None, "where": found[1] if found else None}
    if found is None:
        row["message"] = (f"not in {dataset_dir('cifar10')}; will download {cifar10.CANONICAL.url} on first use, "
                          "or pass path= (e.g. an image-folder archive)")
    rows.append(row)
    rows.append({"name": "image_folder", "description": _DESCRIPTIONS["image_folder"], "found": path is not None,
                 "path": str(path) if path is not None else None, "where": "explicit path" if path else None,
                 "message": "" if path else f"needs a path (data folder: {data_home()})"})
    return rows


def _idx_row(spec: IDXDataset, path=None) -> dict:
    """The :func:`list_datasets` row of an IDX data set: found when all four files are."""
    files = spec.find(path)
    present = [f for f in files.values() if f is not None]
    row = {"name": spec.name, "description": _DESCRIPTIONS[spec.name], "found": len(present) == len(files),
           "path": str(present[0][0].parent) if present else None, "where": present[0][1] if present else None}
    if not row["found"]:
        missing = [spec.files[r].name for r, f in files.items() if f is None]
        package = SYSTEM_PACKAGES.get(spec.name)
        row["message"] = (f"missing {', '.join(missing)}; will download to {dataset_dir(spec.name)} on first use"
                          + (f" (or apt-get install {package[0]})" if package else ""))
    return row


def format_dataset_row(row: dict) -> str:
    """One line for a row of :func:`list_datasets`: name, found or missing, where, path or hint."""
    state = "found" if row["found"] else "missing"
    detail = f"{row['path']} ({row['where']})" if row["found"] else row.get("message", "")
    return f"{row['name']:14s} {state:8s} {detail}"


def _check(name: str, path: Path | None, algorithm: str, expected: str | None, decompress: bool = False) -> FileCheck:
    if path is None:
        return FileCheck(name, None, "missing", algorithm, expected, message="not found")
    if expected is None:
        return FileCheck(name, str(path), "unknown", message="no published checksum for this file")
    try:
        actual = file_digests(path, (algorithm,), decompress=decompress)[algorithm]
    except (OSError, DataFormatError) as err:
        return FileCheck(name, str(path), "corrupt", algorithm, expected, message=str(err))
    status = "ok" if actual == expected else "mismatch"
    return FileCheck(name, str(path), status, algorithm, expected, actual)


def _check_idx_file(role: str, path: Path | None, remote: RemoteFile) -> FileCheck:
    """By the sha256 of the decompressed content where it is published (Fashion-MNIST), else by
    the md5 of the published ``.gz`` when the file is gzip (MNIST); a decompressed file whose
    content has no published checksum is ``"unknown"``."""
    if path is None or remote.sha256 is not None:
        return _check(role, path, "sha256", remote.sha256, decompress=True)
    try:
        compressed = is_gzip(path)
    except OSError as err:
        return FileCheck(role, str(path), "corrupt", message=str(err))
    if not compressed:
        return FileCheck(role, str(path), "unknown",
                         message="no published checksum of the decompressed file (only of the original .gz)")
    check = _check(role, path, "md5", remote.md5)
    if check.status == "mismatch":
        check.message = f"not the published {remote.name} (a re-compressed copy differs even with the same content)"
    return check


def verify_dataset(name: str, path=None) -> list[FileCheck]:
    """Check a data set's files against the published checksums (no download).

    Fashion-MNIST: the sha256 of each decompressed IDX file (so Debian's re-compressed copy
    verifies). MNIST: no checksum of the decompressed files is published, so each file is checked
    by the md5 of the original ``.gz`` when that is what is present; a decompressed file is
    ``"unknown"`` (no published checksum), not a mismatch. CIFAR-10: the canonical tarball by md5,
    the JPEG archive by sha256. Returns one :class:`FileCheck` per file; all ``"ok"`` means
    verified."""
    key = _key(name)
    if key in _IDX:
        spec = _IDX[key]
        return [_check_idx_file(role, found[0] if found else None, spec.files[role])
                for role, found in spec.find(path).items()]
    if key == "cifar10":
        try:
            source = cifar10.cifar10_source(path, download=False)
        except DataNotFoundError as err:
            return [FileCheck(cifar10.CANONICAL.name, None, "missing", message=str(err))]
        if source.is_dir():
            return [FileCheck(source.name, str(source), "unknown", message="a folder has no published checksum")]
        digests = file_digests(source, ("md5", "sha256"))
        if digests["md5"] == cifar10.CANONICAL.md5:
            return [FileCheck(source.name, str(source), "ok", "md5", cifar10.CANONICAL.md5, digests["md5"])]
        if digests["sha256"] == cifar10.JPEG_ARCHIVE_SHA256:
            return [FileCheck(source.name, str(source), "ok", "sha256", cifar10.JPEG_ARCHIVE_SHA256,
                              digests["sha256"])]
        if source.name == cifar10.CANONICAL.name:
            return [FileCheck(source.name, str(source), "mismatch", "md5", cifar10.CANONICAL.md5, digests["md5"])]
        if source.name == cifar10.JPEG_ARCHIVE:
            return [FileCheck(source.name, str(source), "mismatch", "sha256", cifar10.JPEG_ARCHIVE_SHA256,
                              digests["sha256"])]
        return [FileCheck(source.name, str(source), "unknown", "sha256", None, digests["sha256"],
                          message="not a file with a published checksum")]
    if key == "iris":
        return [FileCheck("iris.csv", str(dataset_path("iris")), "unknown", message="shipped with the package")]
    p = dataset_path(key, path)
    return [FileCheck(p.name, str(p), "unknown", message="image folders have no published checksum")]
