"""Cache of decoded image sets as uint8 ``.npy`` files.

A cache entry is a folder ``.neural_networks_cache/<source name>.<tag>.<key>/`` holding one
``.npy`` per array and a ``meta.json`` written last (its presence marks a complete entry). It is
put next to the source when that folder is writable, else in ``$NEURAL_NETWORKS_DATA/cache/``.
``key`` hashes the source's absolute path, size and modification time (for a folder: of every
file in it), so a changed source gets a new entry; stale entries of the same source are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .sources import data_home

__all__ = ["CACHE_VERSION", "source_key", "cache_locations", "load_cache", "save_cache", "cached"]

CACHE_VERSION = 1
_FOLDER = ".neural_networks_cache"


def source_key(source, also=()) -> str:
    """A short hash of the source's absolute path, size and mtime (recursively for folders), and
    of the same for the files ``also`` (other files the decoded set depends on)."""
    source = Path(source).resolve()
    h = hashlib.sha256(f"v{CACHE_VERSION}\0{source}\0".encode())
    for other in also:
        st = Path(other).resolve().stat()
        h.update(f"{Path(other).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d != _FOLDER)
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                rel = os.path.relpath(os.path.join(root, name), source)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    else:
        st = source.stat()
        h.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_locations(source) -> list[Path]:
    """Folders that may hold cache entries for ``source``: beside it (not for system copies
    under ``/usr``), then the data folder's ``cache/``."""
    source = Path(source).resolve()
    home = data_home() / "cache"
    if source.is_relative_to("/usr"):
        return [home]
    return [source.parent / _FOLDER, home]


def _writable(folder: Path) -> bool:
    """Whether the cache may be written in ``folder`` (or, if absent, in its parent). Permission
    bits that deny writing are respected even for root, so read-only shared copies stay untouched."""
    target = folder if folder.exists() else folder.parent
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(target, os.W_OK)


def _entry_name(source: Path, tag: str, key: str) -> str:
    return f"{source.name}.{tag}.{key}"


def load_cache(source, tag: str, key: str | None = None):
    """``(arrays, meta)`` from a complete cache entry of ``source``/``tag``, or ``None``."""
    source = Path(source).resolve()
    key = key or source_key(source)
    for folder in cache_locations(source):
        entry = folder / _entry_name(source, tag, key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text())
            arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
        except (OSError, ValueError, KeyError):
            continue  # a damaged entry is ignored and rebuilt
        return arrays, meta
    return None


def _remove_stale(folder: Path, source: Path, tag: str, key: str) -> None:
    prefix = f"{source.name}.{tag}."
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if entry.name.startswith(prefix) and entry.name != prefix + key and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


def save_cache(source, tag: str, arrays: dict, meta: dict, key: str | None = None) -> Path | None:
    """Write a cache entry (each file atomically, ``meta.json`` last). Returns its folder, or
    ``None`` if no location was writable (caching is an optimisation; failing it is not an error)."""
    source = Path(source).resolve()
    key = key or source_key(source)
    meta = dict(meta, arrays=list(arrays), source=str(source), key=key, version=CACHE_VERSION)
    for folder in cache_locations(source):
        entry = folder / _entry_name(source, tag, key)
        if folder != data_home() / "cache" and not _writable(folder):
            continue
        try:
            entry.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                with atomic_write(entry / f"{name}.npy", "wb") as f:
                    np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            with atomic_write(entry / "meta.json", "w") as f:
                json.dump(meta, f, indent=1)
        except OSError:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        _remove_stale(folder, source, tag, key)
        return entry
    return None


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
