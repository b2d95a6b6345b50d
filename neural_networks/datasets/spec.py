"""What a data set tells the catalog about itself (``neural-networks data list|verify``), and the
result of checking one file.

A data set is one module plus one line in :data:`~neural_networks.datasets.catalog.DATASETS`.
The module defines its loader function (the registry's factory, ``load_<name>(batch_size=...,
...)``) and a ``SPEC``: an object with the interface of :class:`DatasetSpec`, which knows how to
load the data set, where it is read from, whether it is there and how to verify it. The catalog
(:mod:`.catalog`) loops over the registry's specs; apart from its registry lines, nothing in it
names a data set."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from .sources import DataFormatError, file_digests

__all__ = ["FileCheck", "check_file", "DatasetSpec"]


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


def check_file(
    name: str, path: Path | None, algorithm: str, expected: str | None, decompress: bool = False
) -> FileCheck:
    """Compare the ``algorithm`` digest of ``path`` (of its decompressed content with
    ``decompress``) with ``expected``: ``"missing"`` without a path, ``"unknown"`` without an
    expected digest, ``"corrupt"`` when it cannot be read, else ``"ok"`` or ``"mismatch"``."""
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


class DatasetSpec(ABC):
    """The interface of a data set's ``SPEC`` (see the module docstring). Nothing here downloads
    except :meth:`load`.

    ``description``: one line for ``data list``; ``verifiable``: whether checksums are published
    (what ``data verify`` checks without a name)."""

    description: str = ""
    verifiable: bool = False

    @abstractmethod
    def load(self, batch_size: int, **kwargs):
        """The data set as a :class:`~neural_networks.datasets.dataset.Dataset` (the loader function's
        arguments)."""

    @abstractmethod
    def source(self, path=None) -> Path:
        """Where the data set is read from (a file or folder; ``path`` if given), without
        downloading; :class:`~neural_networks.datasets.sources.DataNotFoundError` when it is not
        there."""

    @abstractmethod
    def availability(self, path=None) -> dict:
        """``found`` (bool), ``path`` (``str`` or ``None``), ``where`` (``"shipped"``,
        ``"explicit path"``, ``"data folder ($NEURAL_NETWORKS_DATA)"``, ``"system copy"`` or
        ``None``) and, when it helps, ``message`` (how to get it): the data set's row of
        :func:`~neural_networks.datasets.catalog.list_datasets`."""

    @abstractmethod
    def verify(self, path=None) -> list[FileCheck]:
        """One :class:`FileCheck` per file, against the published checksums (no download)."""
