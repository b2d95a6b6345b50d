"""Data sets stored as four IDX files, the format of MNIST and of the sets made in its image
(Fashion-MNIST): training images and labels, test images and labels, each gzip-compressed or not.

An :class:`IDXDataset` describes one such set (name, class names, the four files by role with
their published URLs and checksums); it is the set's :class:`~.spec.DatasetSpec`. Its methods find
or download the files (see
:mod:`~neural_networks.datasets.sources`), read and check them, cache the decoded arrays as
``.npy`` (:mod:`~neural_networks.datasets.cache`) and build the :class:`Dataset`. The 60,000
training images are split into training and validation (``DEFAULT_VALIDATION_SIZE`` held out,
stratified, fixed by ``split_seed``); the test files are the test split. Pixels stay uint8 in
memory and become float32 per batch.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import cached
from .dataset import Dataset
from .image_dataset import make_image_dataset
from .limits import DEFAULT_MAX_BYTES
from .loader import DEFAULT_BATCH_SIZE
from .sources import SYSTEM_PACKAGES, DataFormatError, RemoteFile, dataset_dir, find_file, is_gzip, locate_file
from .spec import DatasetSpec, FileCheck, check_file
from .splits import DEFAULT_SPLIT_SEED

__all__ = [
    "IMAGE_MAGIC",
    "LABEL_MAGIC",
    "ROLES",
    "DEFAULT_VALIDATION_SIZE",
    "read_idx",
    "candidates",
    "read_pair",
    "check_idx_file",
    "IDXDataset",
]

IMAGE_MAGIC = 2051  #: The magic number of IDX image files (0x00000803: unsigned bytes, 3 dimensions)
LABEL_MAGIC = 2049  #: The magic number of IDX label files (0x00000801: unsigned bytes, 1 dimension)
#: The four files, in the order they are looked for and reported.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
#: Training images held out for validation by default (of the 60,000).
DEFAULT_VALIDATION_SIZE = 10_000
_KINDS = {IMAGE_MAGIC: "images (2051)", LABEL_MAGIC: "labels (2049)"}


def candidates(remote: RemoteFile) -> list[str]:
    """Accepted file names for one file: compressed, raw, and the ``.``-separated variant
    some mirrors use (``train-images.idx3-ubyte``)."""
    raw = remote.name[: -len(".gz")] if remote.name.endswith(".gz") else remote.name
    dotted = raw.replace("-idx", ".idx")
    return [remote.name, raw, dotted + ".gz", dotted]


_CHUNK = 1 << 20


def _read_at_most(f, n: int) -> bytes:
    """Up to ``n`` bytes from ``f``, in chunks, so memory grows with what the file really holds
    (never with what a header claims)."""
    parts, left = [], n
    while left > 0:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_idx_bytes(path: Path, expected_magic: int | None, max_bytes: int) -> tuple[tuple, bytes]:
    """``(dims, payload)`` read as a stream: the header first, then exactly the bytes its
    dimensions announce (refused beforehand above ``max_bytes``) plus one to notice trailing
    bytes, so a gzip bomb is never decompressed past that."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        head = _read_at_most(f, 4)
        if not head:
            raise DataFormatError(f"{path}: empty file (0 bytes), not an IDX file")
        if len(head) < 4:
            raise DataFormatError(f"{path}: {len(head)} bytes is too short for an IDX header")
        magic = int.from_bytes(head, "big")
        if expected_magic is not None and magic != expected_magic:
            raise DataFormatError(
                f"{path}: wrong magic number {magic} (0x{magic:08x}); expected "
                f"{_KINDS.get(expected_magic, expected_magic)} -- not an IDX "
                f"{'image' if expected_magic == IMAGE_MAGIC else 'label'} file"
            )
        if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08:
            raise DataFormatError(f"{path}: magic number 0x{magic:08x} is not an IDX file of unsigned bytes")
        ndim = magic & 0xFF
        dim_bytes = _read_at_most(f, 4 * ndim)
        if ndim == 0 or len(dim_bytes) < 4 * ndim:
            raise DataFormatError(f"{path}: truncated IDX header ({4 + len(dim_bytes)} bytes, {ndim} dimensions)")
        dims = tuple(int.from_bytes(dim_bytes[4 * i : 4 + 4 * i], "big") for i in range(ndim))
        header = 4 + 4 * ndim
        need = 1
        for d in dims:
            need *= d  # Python ints: no overflow
        if need > max_bytes:
            raise DataFormatError(
                f"{path}: dimensions {dims} announce {need} bytes, more than the limit of {max_bytes} "
                "(read_idx(path, max_bytes=...) reads a larger file)"
            )
        payload = _read_at_most(f, need + 1)  # for gzip: reading to the end checks the CRC
        if len(payload) != need:
            holds = header + len(payload)
            if len(payload) > need:
                what = "has trailing bytes"
                holds = f"more than {header + need}" if compressed else path.stat().st_size
            else:
                what = "truncated"
            raise DataFormatError(
                f"{path}: {what}: dimensions {dims} need {header + need} bytes, the file holds {holds}"
            )
    return dims, payload


def read_idx(path, expected_magic: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or not, told by its first bytes).

    Checks the magic number (``expected_magic``: 2051 images, 2049 labels), that the data type
    is unsigned byte and that the file holds exactly the bytes its dimensions announce. Returns
    a read-only uint8 array of those dimensions (``(count, rows, cols)`` for images, ``(count,)``
    for labels). The file is streamed: dimensions announcing more than ``max_bytes`` (default
    :data:`~.limits.DEFAULT_MAX_BYTES`) are refused before any data is read, and a gzip file is never
    decompressed past the announced size plus one byte. Raises :class:`DataFormatError` naming
    the file and the problem."""
    path = Path(path)
    try:
        dims, payload = _read_idx_bytes(path, expected_magic, max_bytes)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataFormatError(f"{path}: corrupt or truncated gzip data ({err})") from err
    except OSError as err:
        raise DataFormatError(f"{path}: cannot read ({err})") from err
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def read_pair(images_path, labels_path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One split from its image and label files: uint8 images ``(m, rows, cols, 1)`` and int64
    labels ``(m,)``, checked to agree in count and to lie in ``0..n_classes - 1``."""
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.ndim != 3:
        raise DataFormatError(f"{images_path}: expected 3 dimensions (count, rows, cols), got {images.shape}")
    if labels.ndim != 1:
        raise DataFormatError(f"{labels_path}: expected 1 dimension (count), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    bad = np.flatnonzero(labels >= n_classes)
    if bad.size:
        raise DataFormatError(
            f"{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of range "
            f"0..{n_classes - 1} ({bad.size} such labels)"
        )
    return images[..., None], labels.astype(np.int64)


def check_idx_file(role: str, path: Path | None, remote: RemoteFile) -> FileCheck:
    """By the sha256 of the decompressed content where it is published (Fashion-MNIST), else by
    the md5 of the published ``.gz`` when the file is gzip (MNIST); a decompressed file whose
    content has no published checksum is ``"unknown"``."""
    if path is None or remote.sha256 is not None:
        return check_file(role, path, "sha256", remote.sha256, decompress=True)
    try:
        compressed = is_gzip(path)
    except OSError as err:
        return FileCheck(role, str(path), "corrupt", message=str(err))
    if not compressed:
        return FileCheck(
            role,
            str(path),
            "unknown",
            message="no published checksum of the decompressed file (only of the original .gz)",
        )
    check = check_file(role, path, "md5", remote.md5)
    if check.status == "mismatch":
        check.message = f"not the published {remote.name} (a re-compressed copy differs even with the same content)"
    return check


@dataclass(frozen=True, eq=False)
class IDXDataset(DatasetSpec):
    """One data set of four IDX files.

    ``name``: its key (``initialize_dataset`` name, data-folder subfolder, cache tag); ``title``:
    for messages; ``files``: :class:`RemoteFile` by role (:data:`ROLES`), the same dict object the
    describing module exports, so patching it there patches it here; ``augmentations``: what
    ``augment=True`` switches on (``None``: every augmentation; MNIST leaves out the flip, which
    turns digits into other shapes); ``description``: the line of ``data list``."""

    name: str
    title: str
    class_names: tuple[str, ...]
    files: dict
    augmentations: tuple[str, ...] | None = None
    description: str = ""
    verifiable = True  # every file has a published checksum

    def find(self, path=None) -> dict[str, tuple[Path, str] | None]:
        """Each role's file and where it was found, or ``None`` (no download)."""
        return {role: find_file(self.name, candidates(self.files[role]), path) for role in ROLES}

    def locate(self, path=None, download: bool = True, progress: bool = True) -> dict[str, Path]:
        """Each role's file, found or downloaded; raises :class:`DataNotFoundError` naming the
        missing file, the places searched and the ways to provide it."""
        return {
            role: locate_file(
                self.name,
                candidates(self.files[role]),
                path=path,
                remote=self.files[role],
                download_missing=download,
                progress=progress,
                title=self.title,
            )
            for role in ROLES
        }

    def source(self, path=None) -> Path:
        """The folder of the four files (found, not downloaded)."""
        return self.locate(path, download=False, progress=False)["train_images"].parent

    def availability(self, path=None) -> dict:
        """Found when all four files are (see :meth:`DatasetSpec.availability`)."""
        files = self.find(path)
        present = [f for f in files.values() if f is not None]
        row = {
            "found": len(present) == len(files),
            "path": str(present[0][0].parent) if present else None,
            "where": present[0][1] if present else None,
        }
        if not row["found"]:
            missing = [self.files[r].name for r, f in files.items() if f is None]
            package = SYSTEM_PACKAGES.get(self.name)
            row["message"] = f"missing {', '.join(missing)}; will download to {dataset_dir(self.name)} on first use" + (
                f" (or apt-get install {package[0]})" if package else ""
            )
            if path is not None:  # an explicit path is all that is searched, and never downloaded to
                there = Path(path).expanduser().is_dir()
                row["message"] = f"missing {', '.join(missing)} there" if there else "no such file or folder"
        return row

    def verify(self, path=None) -> list[FileCheck]:
        """Each of the four files by :func:`check_idx_file`."""
        return [
            check_idx_file(role, found[0] if found else None, self.files[role])
            for role, found in self.find(path).items()
        ]

    def read(self, files: dict) -> dict:
        """Parse and check the four files (by role) -> ``{"train": (X, y), "test": (X, y)}``
        with ``X`` uint8 ``(m, rows, cols, 1)`` and ``y`` int64 ``(m,)``."""
        n = len(self.class_names)
        train = read_pair(files["train_images"], files["train_labels"], n)
        test = read_pair(files["test_images"], files["test_labels"], n)
        if train[0].shape[1:] != test[0].shape[1:]:
            raise DataFormatError(
                f"{files['test_images']}: images are {test[0].shape[1:3]}, training images {train[0].shape[1:3]}"
            )
        return {"train": train, "test": test}

    def read_cached(self, files: dict, cache: bool = True) -> dict:
        """:meth:`read`, through the ``.npy`` cache in the cache folder (never beside the files,
        which may be a read-only system copy; see :mod:`~neural_networks.datasets.cache`)."""

        def build():
            splits = self.read(files)
            arrays = {f"{s}_{k}": a for s, (X, y) in splits.items() for k, a in (("images", X), ("labels", y))}
            return arrays, {"splits": ["train", "test"]}

        # the tag is the name with dashes, as Fashion-MNIST's entries have always been tagged
        tag = self.name.replace("_", "-")
        arrays, meta = cached(files["train_images"], tag, build, use_cache=cache, also=[files[r] for r in ROLES[1:]])
        return {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}

    def load_arrays(self, path=None, download: bool = True, progress: bool = True, cache: bool = True):
        """``({"train": (X, y), "test": (X, y)}, class_names)``, ``X`` uint8 ``(m, 28, 28, 1)``."""
        return self.read_cached(self.locate(path, download, progress), cache), list(self.class_names)

    def load(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        path=None,
        flatten: bool = False,
        validation_size=DEFAULT_VALIDATION_SIZE,
        standardize: bool = True,
        augment=False,
        seed: int = 0,
        split_seed: int = DEFAULT_SPLIT_SEED,
        download: bool = True,
        progress: bool = True,
        cache: bool = True,
    ) -> Dataset:
        """The data set as a :class:`Dataset` (train 50,000 / validation 10,000 / test 10,000 for
        60,000 + 10,000 images).

        ``flatten``: inputs ``(m, 784)`` for an MLP, else images ``(m, 28, 28, 1)``. ``standardize``:
        scale to ``[0, 1]`` then standardise with the training split's mean and standard deviation;
        ``False`` only scales. ``validation_size``: count or fraction of the training images held
        out (stratified, fixed by ``split_seed``). ``seed`` drives shuffling and augmentation
        (``augment``: ``True`` or names such as ``["crop"]``; off by default)."""
        files = self.locate(path, download, progress)
        if augment is True and self.augmentations is not None:
            augment = list(self.augmentations)
        dataset = make_image_dataset(
            self.name,
            self.read_cached(files, cache),
            list(self.class_names),
            batch_size,
            validation_size=validation_size,
            split_seed=split_seed,
            seed=seed,
            standardize=standardize,
            augment=augment,
            flatten=flatten,
        )
        dataset.source = files["train_images"].parent
        return dataset
