"""Reading the image files of a folder or archive (``.tar``, gzip/bzip2/xz-compressed tar,
``.zip``, or one image file) within the bounds of :mod:`.limits`: :func:`iter_files` yields each
image's relative path and bytes, never decompressing past ``max_bytes``.

A gzipped tar small enough, and expanding no further than an archive of images plausibly does, is
decompressed in memory and indexed by :func:`~.tar.tar_index`; any other tar is streamed by
:mod:`tarfile` through a :class:`~.limits.LimitedReader`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

from ..progress import progress_bar as tqdm
from .layout import IMAGE_EXTENSIONS, is_hidden
from .limits import DEFAULT_MAX_BYTES, MAX_IMAGE_BYTES, LimitedReader, file_too_big, source_too_big
from .sources import DataFormatError, DataNotFoundError
from .tar import tar_index

__all__ = ["archive_kind", "open_decompressed", "iter_files"]


def archive_kind(path) -> str:
    """``"dir"``, ``"tar"``, ``"zip"`` or ``"image"`` (one file named ``.png``/``.jpg``/``.jpeg``,
    whatever it holds: decoding it says); :class:`DataFormatError` for anything else."""
    path = Path(path)
    if path.is_dir():
        return "dir"
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: empty file (0 bytes)")
    if zipfile.is_zipfile(path):
        return "zip"
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:4] == b"PK\x03\x04":
        raise DataFormatError(f"{path}: truncated or corrupt zip archive (its central directory is missing)")
    if magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00":
        return "tar"  # a compressed tar (a damaged one is reported when it is read)
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError) as err:
        raise DataFormatError(f"{path}: cannot read the archive ({err})") from err
    raise DataFormatError(f"{path}: not an image, a folder, or a tar or zip archive of images")


def _skipped(rel: str) -> bool:
    return is_hidden(rel) or not rel.lower().endswith(IMAGE_EXTENSIONS)


_IN_MEMORY_LIMIT = 1 << 31  # tar archives up to 2 GiB (uncompressed) are indexed in memory
# A gzipped tar of PNG/JPEG files expands a few times at most, tar padding included (measured in
# benchmarks/RESULTS.md, "How far a gzipped tar of images expands"); one that expands further than
# this is streamed instead, so a decompression bomb never holds more than the floor in memory while
# it is read up to ``max_bytes``.
_IN_MEMORY_RATIO = 16
_IN_MEMORY_FLOOR = 64 << 20


def open_decompressed(path: Path):
    """A binary file object over the tar inside ``path`` (gzip, bzip2, xz or none, told by magic
    bytes); reading it to the end raises ``EOFError``/``OSError`` if the compressed data is cut short."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _tar_buffer(path: Path, progress: bool, max_bytes: int = DEFAULT_MAX_BYTES):
    """The uncompressed tar bytes of ``path`` (a gzip archive is decompressed in memory, never
    past ``max_bytes``; a plain tar memory-mapped), or ``None`` for archives too large, expanding
    too far for an archive of images, or compressed otherwise (then :mod:`tarfile` streams them).
    :class:`DataFormatError` for a source over ``max_bytes`` and for corrupt or truncated gzip data."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(6)
        if magic[:2] != b"\x1f\x8b":
            if size > max_bytes and magic[:3] != b"BZh" and magic != b"\xfd7zXZ\x00":
                raise source_too_big(path, max_bytes)
            if size > _IN_MEMORY_LIMIT or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00":
                return None
            try:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None
        if size > _IN_MEMORY_LIMIT // 4:
            return None
        f.seek(0)
        in_memory = min(max_bytes, max(_IN_MEMORY_FLOOR, _IN_MEMORY_RATIO * size))
        decompressor = zlib.decompressobj(wbits=31)
        parts, total = [], 0
        with tqdm(
            total=size, desc=f"reading {path.name}", unit="B", unit_scale=True, disable=not progress, leave=False
        ) as bar:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                bar.update(len(chunk))
                while chunk:  # max_length: one chunk never expands past the limit, nor in one large piece
                    try:
                        part = decompressor.decompress(chunk, min(in_memory + 1 - total, 16 << 20))
                    except zlib.error as err:
                        raise DataFormatError(f"{path}: corrupt gzip data ({err})") from err
                    parts.append(part)
                    total += len(part)
                    if total > max_bytes:
                        raise source_too_big(path, max_bytes)
                    if total > in_memory:
                        return None  # expands implausibly far: stream it, bounded by max_bytes
                    chunk = decompressor.unconsumed_tail
                    if decompressor.eof:
                        break
        if not decompressor.eof:
            raise DataFormatError(f"{path}: truncated gzip file (the compressed stream ends early)")
        if decompressor.unused_data.strip(b"\0"):
            return None  # several gzip members: let tarfile stream it
        return b"".join(parts)


def iter_files(
    path, progress: bool = True, desc: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES, folders: set | None = None
):
    """Yield ``(relative posix path, bytes)`` for every image file (by extension) in a folder or
    archive, in storage order, with a progress bar (for one image file: its name and bytes). At
    most ``max_bytes`` are read (decompressed: a compressed archive is never expanded past it) and
    no image may exceed :data:`MAX_IMAGE_BYTES`; else :class:`DataFormatError` naming the file.
    ``folders``: a set that, once the files are all read, holds the folder of every file and every
    folder entry of the source (images or not, hidden or not; relative paths as stored, not
    normalised: :func:`~.layout.check_folders` does that), so that a folder without images can be
    told."""
    path = Path(path)
    kind = archive_kind(path)
    desc = desc or f"decoding {path.name}"
    total = 0

    def count(rel: str, size: int) -> None:
        nonlocal total
        if size > MAX_IMAGE_BYTES:
            raise file_too_big(path, rel, size, MAX_IMAGE_BYTES)
        total += size
        if total > max_bytes:
            raise source_too_big(path, max_bytes)

    try:
        if kind == "image":
            count(path.name, path.stat().st_size)
            with open(path, "rb") as f:
                data = f.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:  # grew since
                raise file_too_big(path, path.name, len(data), MAX_IMAGE_BYTES)
            yield path.name, data
        elif kind == "dir":
            rels = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
                if folders is not None:
                    folders.add(Path(root).relative_to(path).as_posix())
                for name in sorted(files):
                    rel = Path(root, name).relative_to(path).as_posix()
                    if not _skipped(rel):
                        rels.append(rel)
            for rel in tqdm(rels, desc=desc, unit="img", disable=not progress, leave=False):
                count(rel, (path / rel).stat().st_size)
                with open(path / rel, "rb") as f:
                    data = f.read(MAX_IMAGE_BYTES + 1)
                if len(data) > MAX_IMAGE_BYTES:  # grew since
                    raise file_too_big(path, rel, len(data), MAX_IMAGE_BYTES)
                yield rel, data
        elif kind == "zip":
            with zipfile.ZipFile(path) as zf:
                if folders is not None:
                    folders.update(i.filename if i.is_dir() else i.filename.rpartition("/")[0] for i in zf.infolist())
                infos = [i for i in zf.infolist() if not i.is_dir() and not _skipped(i.filename)]
                for info in tqdm(infos, desc=desc, unit="img", disable=not progress, leave=False):
                    count(info.filename, info.file_size)
                    with zf.open(info) as member:  # reads no more than the declared size
                        data = member.read(MAX_IMAGE_BYTES + 1)
                    if len(data) > MAX_IMAGE_BYTES:
                        raise file_too_big(path, info.filename, len(data), MAX_IMAGE_BYTES)
                    yield info.filename, data
        else:
            buf = _tar_buffer(path, progress, max_bytes)
            if buf is not None:
                dirs: list = []
                members = tar_index(buf, str(path), dirs)
                if folders is not None:
                    folders.update(dirs)
                    folders.update(rel.rpartition("/")[0] for rel, _, _ in members)
                members = [m for m in members if not _skipped(m[0])]
                for rel, start, size in tqdm(members, desc=desc, unit="img", disable=not progress, leave=False):
                    if size > MAX_IMAGE_BYTES:
                        raise file_too_big(path, rel, size, MAX_IMAGE_BYTES)
                    yield rel, bytes(buf[start : start + size])
                return
            # large or bz2/xz archives: stream, never decompressing more than max_bytes
            with open_decompressed(path) as raw, io.BufferedReader(LimitedReader(raw, max_bytes, path)) as stream:
                with tarfile.open(fileobj=stream, mode="r|") as tf:
                    for member in tqdm(tf, desc=desc, unit="file", disable=not progress, leave=False):
                        if folders is not None:
                            folders.add(member.name if member.isdir() else member.name.rpartition("/")[0])
                        if member.isfile() and not _skipped(member.name):
                            if member.size > MAX_IMAGE_BYTES:
                                raise file_too_big(path, member.name, member.size, MAX_IMAGE_BYTES)
                            yield member.name, tf.extractfile(member).read()
                while stream.read(1 << 20):  # read to the end so a truncated compressed file is noticed
                    pass
    # zipfile raises NotImplementedError (unsupported version, compression or flag) and
    # RuntimeError (an encrypted member) for a damaged header
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        zlib.error,
        lzma.LZMAError,
        NotImplementedError,
        RuntimeError,
    ) as err:
        if isinstance(err, DataNotFoundError):
            raise
        raise DataFormatError(f"{path}: corrupt or truncated archive ({type(err).__name__}: {err})") from err
