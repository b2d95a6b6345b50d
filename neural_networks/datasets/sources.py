"""Where data files come from, and the errors a loader raises about them.

A file is looked for, in this order:

1. an explicit ``path`` given to the loader (authoritative: if it is given and the file is not
   there, that is an error; nothing else is searched);
2. the data folder ``$NEURAL_NETWORKS_DATA/<data set>/`` (default
   ``$XDG_CACHE_HOME/neural_networks``, that is ``~/.cache/neural_networks``: see :func:`data_home`);
3. a system copy (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
4. a download into the data folder from the published URL, then from each mirror in turn while
   they fail (:func:`download_remote`), with a progress bar, verified by checksum and written
   atomically (a failed or interrupted download leaves no file behind).

Without a network the :class:`DataNotFoundError` names the missing file, the places searched and
the ways to provide it (raised without the chain of network errors under it: its message says what
failed). Decoded arrays are cached under :func:`cache_home`, never beside a source. Tests replace
the opener (``download(..., opener=...)`` or the module attribute ``_urlopen``) so they never
touch the network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..progress import progress_bar as tqdm

from ..io import atomic_write

__all__ = [
    "DATA_ENV",
    "CACHE_ENV",
    "DataNotFoundError",
    "DataFormatError",
    "ChecksumError",
    "RemoteFile",
    "data_home",
    "cache_home",
    "dataset_dir",
    "SYSTEM_PACKAGES",
    "SYSTEM_DIRS",
    "search_dirs",
    "find_file",
    "locate_file",
    "download",
    "download_remote",
    "file_digests",
    "is_gzip",
]

#: The environment variable that sets the data folder (:func:`data_home`).
DATA_ENV = "NEURAL_NETWORKS_DATA"
#: The environment variable that sets the folder of decoded-image caches (:func:`cache_home`).
CACHE_ENV = "NEURAL_NETWORKS_CACHE"

#: Debian packages that install a data set system-wide: data set -> (package, folder it fills).
SYSTEM_PACKAGES: dict[str, tuple[str, Path]] = {
    "fashion_mnist": ("dataset-fashion-mnist", Path("/usr/share/datasets/fashion-mnist")),
}
#: System-wide copies of a data set (searched after the data folder, before a download).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {name: (folder,) for name, (_, folder) in SYSTEM_PACKAGES.items()}

_CHUNK = 1 << 20


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the places searched and could not be downloaded."""


class DataFormatError(ValueError):
    """A data file exists but is corrupt, truncated or not in the expected format. The message
    names the file and what is wrong with it."""


class ChecksumError(DataFormatError):
    """A file's checksum differs from the published one."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of a published data set: its file name, the URL tried first, the md5 of the file as
    downloaded, (where published) the sha256 of its content (decompressed for ``.gz`` files) and
    further URLs of the same file, tried in order when the ones before fail."""

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    mirrors: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL of the file, in the order they are tried."""
        return (self.url, *self.mirrors)


def _xdg_cache_home() -> Path:
    """``$XDG_CACHE_HOME``, or ``~/.cache`` when it is unset, empty or relative (the XDG base
    directory specification says to ignore a relative value)."""
    value = os.environ.get("XDG_CACHE_HOME", "")
    return Path(value) if os.path.isabs(value) else Path("~/.cache").expanduser()


def data_home() -> Path:
    """The data folder, where data sets are looked for and downloaded: ``$NEURAL_NETWORKS_DATA``
    if set, else ``$XDG_CACHE_HOME/neural_networks`` (``~/.cache/neural_networks`` by default)."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else _xdg_cache_home() / "neural_networks"


def cache_home() -> Path:
    """The folder of decoded-array caches (:mod:`~neural_networks.datasets.cache`):
    ``$NEURAL_NETWORKS_CACHE`` if set, else the data folder's ``cache/`` (:func:`data_home`, so
    ``$NEURAL_NETWORKS_DATA/cache``, else ``$XDG_CACHE_HOME/neural_networks/cache``, by default
    ``~/.cache/neural_networks/cache``). Nothing is ever cached beside a source: a data folder
    may be read-only or shared."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else data_home() / "cache"


def dataset_dir(name: str) -> Path:
    """The folder in the data folder where data set ``name`` lives (and downloads go)."""
    return data_home() / name


def search_dirs(name: str, path=None) -> list[tuple[Path, str]]:
    """Folders searched for data set ``name``, in order, each with a word saying what it is."""
    if path is not None:
        return [(Path(path).expanduser(), "explicit path")]
    dirs = [(dataset_dir(name), f"data folder (${DATA_ENV})")]
    dirs += [(d, "system copy") for d in SYSTEM_DIRS.get(name, ())]
    return dirs


def find_file(name: str, candidates, path=None) -> tuple[Path, str] | None:
    """The first of the file names ``candidates`` present in the folders searched for data set
    ``name`` (see :func:`search_dirs`), with where it was found; ``None`` if absent."""
    for folder, where in search_dirs(name, path):
        for candidate in candidates:
            p = folder / candidate
            if p.exists():
                return p, where
    return None


def _how_to_provide(name: str, title: str, remote: RemoteFile | None, candidates) -> str:
    files = " or ".join(repr(c) for c in candidates)
    lines = [
        "Provide it in one of these ways:",
        f"  1. pass path=<folder holding {files}> to the loader (or the config's data path);",
        f"  2. put the file in the data folder ${DATA_ENV}/{name} (now {dataset_dir(name)})"
        + (f", e.g. downloaded on a connected machine from {' or '.join(remote.urls)}" if remote else "")
        + ";",
    ]
    if name in SYSTEM_PACKAGES:
        package, folder = SYSTEM_PACKAGES[name]
        lines.append(f"  3. install Debian's copy: apt-get install {package} (it puts the files in {folder});")
        lines.append("  or run with network access so the loader downloads it.")
    elif remote is not None:
        lines.append(
            f"  3. run with network access so the loader downloads {remote.url} itself"
            + (" (or from a mirror)." if remote.mirrors else ".")
        )
    return f"{title}: " + "\n".join(lines)


def locate_file(
    name: str,
    candidates,
    path=None,
    remote: RemoteFile | None = None,
    download_missing: bool = True,
    progress: bool = True,
    title: str | None = None,
) -> Path:
    """The path of a data file, found or downloaded (see the module docstring for the order).

    ``candidates`` are acceptable file names (e.g. ``"x-ubyte"`` and ``"x-ubyte.gz"``); ``remote``
    says how to download it (saved as ``dataset_dir(name) / remote.name``). Raises
    :class:`DataNotFoundError` when it cannot be found or downloaded."""
    candidates = list(candidates)
    found = find_file(name, candidates, path)
    if found is not None:
        return found[0]
    searched = ", ".join(f"{folder} ({where})" for folder, where in search_dirs(name, path))
    label = title or name
    missing = f"{label} file {candidates[0]!r} not found (searched: {searched})"
    if path is not None or remote is None or not download_missing:
        reason = " and downloading is off" if (path is None and remote is not None) else ""
        raise DataNotFoundError(_how_to_provide(name, missing + reason, remote, candidates))
    dest = dataset_dir(name) / remote.name
    try:
        return download_remote(remote, dest, progress=progress)
    except DataNotFoundError as err:
        # from None: the message already says why each URL failed; the chained network errors
        # under it would only bury it in a long traceback
        raise DataNotFoundError(_how_to_provide(name, f"{missing}; {err}", remote, candidates)) from None


def _urlopen(url, timeout=60.0):
    """The default opener (module attribute so tests can replace it)."""
    return urllib.request.urlopen(url, timeout=timeout)


def download(
    url: str,
    dest,
    md5: str | None = None,
    sha256: str | None = None,
    opener=None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; verify ``md5``/``sha256`` (of the bytes as
    downloaded) and only then rename the file into place. ``opener(url, timeout=...)`` returns a
    file-like response (default :func:`urllib.request.urlopen`). Raises
    :class:`DataNotFoundError` when the URL cannot be read and :class:`ChecksumError` when the
    bytes differ from the published checksum (nothing is written in either case)."""
    dest = Path(dest)
    opener = opener if opener is not None else _urlopen
    digests = {k: hashlib.new(k) for k, v in (("md5", md5), ("sha256", sha256)) if v}
    try:
        response = opener(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DataNotFoundError(f"could not download {url}: {getattr(err, 'reason', err)}") from err
    try:
        total = None
        headers = getattr(response, "headers", None)
        if headers is not None and headers.get("Content-Length"):
            total = int(headers.get("Content-Length"))
        with (
            atomic_write(dest, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"downloading {dest.name}",
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            size = 0
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except OSError as err:
                    raise DataNotFoundError(f"download of {url} failed after {size} bytes: {err}") from err
                if not chunk:
                    break
                out.write(chunk)
                size += len(chunk)
                for d in digests.values():
                    d.update(chunk)
                bar.update(len(chunk))
            if total is not None and size != total:
                raise DataNotFoundError(f"download of {url} stopped after {size} of {total} bytes")
            for algo, expected in (("md5", md5), ("sha256", sha256)):
                if expected and digests[algo].hexdigest() != expected.lower():
                    raise ChecksumError(
                        f"{url}: {algo} of the downloaded file is {digests[algo].hexdigest()}, "
                        f"expected {expected}; the file was not saved"
                    )
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return dest


def download_remote(remote: RemoteFile, dest, opener=None, progress: bool = True, timeout: float = 60.0) -> Path:
    """:func:`download` ``remote`` to ``dest`` from each of ``remote.urls`` in turn until one
    gives the file with the published md5. A mirror that cannot be read or serves other bytes is
    passed over; when all fail, the error lists each URL's failure: :class:`ChecksumError` if
    one of them served the wrong bytes, else :class:`DataNotFoundError`."""
    errors: list[DataNotFoundError | ChecksumError] = []
    for url in remote.urls:
        try:
            return download(url, dest, md5=remote.md5, opener=opener, progress=progress, timeout=timeout)
        except (DataNotFoundError, ChecksumError) as err:
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    kind = ChecksumError if any(isinstance(e, ChecksumError) for e in errors) else DataNotFoundError
    raise kind(f"all {len(errors)} URLs of {remote.name} failed: " + "; ".join(map(str, errors))) from errors[-1]


def is_gzip(path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def file_digests(path, algorithms=("sha256",), decompress: bool = False) -> dict[str, str]:
    """Hex digests of a file (of its decompressed content when ``decompress`` and it is gzip)."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    opener = gzip.open if (decompress and is_gzip(path)) else open
    try:
        with opener(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                for h in hashes.values():
                    h.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataFormatError(f"{path}: corrupt or truncated gzip file ({err})") from err
    return {a: h.hexdigest() for a, h in hashes.items()}
