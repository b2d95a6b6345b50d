"""Cache of decoded image sets as uint8 ``.npy`` files, kept in the cache folder only.

The cache folder is :func:`~neural_networks.datasets.sources.cache_home`: ``$NEURAL_NETWORKS_CACHE``
if set, else ``$NEURAL_NETWORKS_DATA/cache``, else ``$XDG_CACHE_HOME/neural_networks/cache`` (by
default ``~/.cache/neural_networks/cache``). Nothing is ever written beside a source, so a
read-only or shared data folder just works; a cache folder that cannot be written only means
loading without the cache, with one :class:`CacheWarning` saying so.

An entry is a folder ``<source name>.<path hash>.<tag>.<key>/`` holding one ``.npy`` per array and
a ``meta.json``. The path hash (of the source's absolute path) keeps two sources with the same
file name apart; ``key`` (:func:`source_key`) also hashes the size and modification time of the
source (for a folder: of every file in it), so a changed source gets a new entry and its stale
entries are removed. An entry is built in a temporary folder beside it and renamed into place
whole: a reader, in this process or another, sees a complete entry or none. When two processes
build the same entry at once, the first rename wins and the other copy is dropped (both hold the
same arrays); a build cut short by a killed process is cleared by a later build of that source.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import warnings
from pathlib import Path

import numpy as np

from .sources import CACHE_ENV, cache_home

__all__ = ["CACHE_VERSION", "CacheWarning", "source_key", "cache_entry", "load_cache", "save_cache", "cached"]

#: Part of every cache key: raising it makes every cached entry a miss.
CACHE_VERSION = 1
# Where entries were once written, beside the source; never read or written now, but still
# left out when hashing a folder source so that an old one there does not change the key.
_LEGACY_FOLDER = ".neural_networks_cache"
_NAME_CHARS = 100  # of the source's name in an entry's name (the path hash tells sources apart)


class CacheWarning(UserWarning):
    """The cache folder could not be written; the data set was loaded without caching it."""


def source_key(source, also=()) -> str:
    """A short hash of the source's absolute path, size and mtime (for a folder: the relative path,
    size and mtime of every file in it, and the name of every folder, since an empty one added
    changes what loading it says), and of the same for the files ``also`` (other files the decoded
    set depends on)."""
    source = Path(source).resolve()
    h = hashlib.sha256(f"v{CACHE_VERSION}\0{source}\0".encode())
    for other in also:
        st = Path(other).resolve().stat()
        h.update(f"{Path(other).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d != _LEGACY_FOLDER)
            h.update(f"{os.path.relpath(root, source)}/\0".encode())
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                rel = os.path.relpath(os.path.join(root, name), source)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    else:
        st = source.stat()
        h.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _prefix(source: Path, tag: str) -> str:
    """The start of the name of every entry of ``source``/``tag`` (whatever its key)."""
    path_hash = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    return f"{source.name[:_NAME_CHARS]}.{path_hash}.{tag}."


def cache_entry(source, tag: str, key: str | None = None) -> Path:
    """The folder of the cache entry of ``source``/``tag`` (present or not) under :func:`cache_home`."""
    source = Path(source).resolve()
    return cache_home() / (_prefix(source, tag) + (key or source_key(source)))


def _owner(pid: int | None = None) -> str:
    """This machine and a process (this one by default), as put in temporary names: a later build
    can then tell a folder left by a killed process from one still being written."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid() if pid is None else pid}"


def _abandoned(name: str) -> bool:
    """Whether a temporary folder ``.<entry>.<owner>.<token>.tmp|.old`` belongs to a process of this
    machine that is gone (one of another machine sharing the folder is left alone)."""
    try:
        host, pid = name.rsplit(".", 3)[1].split("-")
        pid = int(pid)
    except ValueError:
        return False
    if host != _owner().split("-")[0] or pid == os.getpid() or os.name != "posix":
        return False  # on Windows os.kill(pid, 0) would end the process, not probe it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


def _complete(entry: Path) -> bool:
    """Whether ``entry`` has a readable ``meta.json`` and every array it lists (not their content:
    a damaged array is found when it is loaded)."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        return all((entry / f"{name}.npy").is_file() for name in meta["arrays"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_cache(source, tag: str, key: str | None = None):
    """``(arrays, meta)`` from the complete cache entry of ``source``/``tag``, or ``None`` (absent,
    or damaged: then it is rebuilt)."""
    entry = cache_entry(source, tag, key)
    try:
        meta = json.loads((entry / "meta.json").read_text())
        arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return arrays, meta


def _write(path: Path, write) -> None:
    """Write a new file with ``write(file)``, on disk before the entry is published."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _publish(tmp: Path, entry: Path) -> Path:
    """Rename the complete folder ``tmp`` to ``entry``. If another process published ``entry``
    first, its copy stays (the same source and key: the same arrays) and the caller drops ``tmp``;
    a damaged ``entry`` (a crash during an old-style write) is moved aside and replaced."""
    try:
        os.rename(tmp, entry)
        return entry
    except OSError:
        if not entry.exists():
            raise
    if _complete(entry):
        return entry
    aside = entry.with_name(f".{entry.name}.{_owner()}.{secrets.token_hex(4)}.old")
    with contextlib.suppress(OSError):  # another process may have moved it first
        os.rename(entry, aside)
    shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(tmp, entry)
    except OSError:
        if not _complete(entry):  # another process replaced it first: keep that
            raise
    return entry


def _remove_stale(source: Path, tag: str, key: str) -> None:
    """Remove the entries of older versions of ``source``/``tag``, and temporary folders of its
    builds left by killed processes."""
    prefix = _prefix(source, tag)
    with contextlib.suppress(OSError):
        for path in cache_home().iterdir():
            name = path.name
            stale = name.startswith(prefix) and name != prefix + key
            abandoned = name.startswith("." + prefix) and name.endswith((".tmp", ".old")) and _abandoned(name)
            if stale or abandoned:
                shutil.rmtree(path, ignore_errors=True)


def save_cache(source, tag: str, arrays: dict, meta: dict, key: str | None = None) -> Path | None:
    """Write the cache entry of ``source``/``tag`` (``arrays``: name -> array, ``meta``: JSON-able
    dict) under :func:`cache_home`, published whole by one rename. Returns its folder, or ``None``
    with a :class:`CacheWarning` when the cache folder cannot be written (caching is an
    optimisation; failing it is not an error)."""
    source = Path(source).resolve()
    key = key or source_key(source)
    meta = dict(meta, arrays=list(arrays), source=str(source), key=key, version=CACHE_VERSION)
    entry = cache_entry(source, tag, key)
    tmp = entry.with_name(f".{entry.name}.{_owner()}.{secrets.token_hex(4)}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for name, array in arrays.items():
            _write(tmp / f"{name}.npy", lambda f, a=array: np.save(f, np.ascontiguousarray(a), allow_pickle=False))
        _write(tmp / "meta.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
        published = _publish(tmp, entry)
    except OSError as err:
        warnings.warn(
            f"cannot write the data cache in {entry.parent} ({err}); loaded without caching (set "
            f"${CACHE_ENV} to a writable folder to cache decoded data sets)",
            CacheWarning,
            stacklevel=3,
        )
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_stale(source, tag, key)
    return published


def cached(source, tag: str, build, use_cache: bool = True, also=()):
    """``(arrays, meta)`` from the cache of ``source``/``tag``, else from ``build()`` (which returns
    ``(arrays, meta)``; the result is then cached). ``also``: further files the result depends on."""
    if not use_cache:
        return build()
    key = source_key(source, also)
    hit = load_cache(source, tag, key)
    if hit is not None:
        return hit
    arrays, meta = build()
    save_cache(source, tag, arrays, meta, key)
    return arrays, meta
