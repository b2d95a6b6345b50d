"""Image-folder data sets: ``<root>/<split>/<class>/<image>.png|jpg|jpeg``.

The tree may be a folder or a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive of it; an archive
may put the tree under leading folders (``cifar10-jpeg/train/cat/0001.jpg``), which must be the
same for every image. Splits are ``train`` and ``test`` (both required) and optionally ``val``/
``valid``/``validation``. Classes are the training split's folders sorted by name unless
``class_names`` gives them (then label ``i`` is ``class_names[i]`` and a folder not in the list is an
error). Hidden files, ``__MACOSX`` and non-image files are skipped, but a class or split folder
holding no images is an error, and so is a split without one of the training classes when the
classes come from the folders (see :mod:`~neural_networks.datasets.layout`).

All images must have the same size and colour mode: ``color_mode="rgb"`` or ``"grayscale"``
converts every image; ``"auto"`` takes the mode of the first image (grayscale or RGB) and treats
an image of the other kind as an error naming the file. Decoded sets are cached as uint8 ``.npy``
(see :mod:`~neural_networks.datasets.cache`).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import mmap
import os
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from ..progress import progress_bar as tqdm

from .base import DEFAULT_SPLIT_SEED, Dataset, make_image_dataset
from .cache import cached
from .layout import IMAGE_EXTENSIONS, SPLIT_NAMES, check_folders, is_hidden
from .layout import split_of as _split_of
from .sources import DataFormatError, DataNotFoundError, data_home
from .spec import DatasetSpec, FileCheck

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGE_FORMATS",
    "DEFAULT_MAX_BYTES",
    "MAX_IMAGE_BYTES",
    "SPLIT_NAMES",
    "COLOR_MODES",
    "archive_kind",
    "tar_index",
    "iter_files",
    "decode_image",
    "read_image_folder",
    "load_image_folder_arrays",
    "load_image_folder",
    "load_images",
    "ImageFolderSpec",
    "SPEC",
]

#: The Pillow format each extension must hold; no other Pillow plugin is ever tried.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))
#: Default bound on the bytes read (decompressed) from one folder or archive; ``max_bytes=``
#: overrides it (CIFAR-10 as images is about 180 MB of pixels).
DEFAULT_MAX_BYTES = 4 << 30
#: Bound on one image: its stored bytes and its decoded pixels.
MAX_IMAGE_BYTES = 64 << 20
COLOR_MODES = ("auto", "rgb", "grayscale")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_PIL_MODE = {"rgb": "RGB", "grayscale": "L"}


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
# A gzipped tar of PNG/JPEG files expands a few times at most (CIFAR-10's JPEGs: 4.7x, tar padding
# included); one that expands further than this is streamed instead, so a decompression bomb never
# holds more than the floor in memory while it is read up to ``max_bytes``.
_IN_MEMORY_RATIO = 16
_IN_MEMORY_FLOOR = 64 << 20


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 encoding of large numbers
        return int.from_bytes(field[1:], "big")
    field = field.split(b"\0", 1)[0].strip()
    return int(field, 8) if field else 0


def tar_index(buf, name: str = "archive", folders: list | None = None) -> list[tuple[str, int, int]]:
    """``(member path, data offset, size)`` of every regular file of an uncompressed tar held in
    ``buf`` (bytes or mmap), parsed directly (ustar, GNU long names, pax paths): much faster than
    :mod:`tarfile` for archives of many small files; the path of each folder entry is appended to
    ``folders`` if given. Raises :class:`DataFormatError` on a bad header checksum, a member cut
    short or a missing end-of-archive marker."""
    out = []
    off, n = 0, len(buf)
    long_name = pax_path = pax_size = None
    while True:
        if off + 512 > n:  # every tar ends with zero blocks; without them it was cut short
            raise DataFormatError(f"{name}: truncated: the archive ends at byte {n} without its end-of-archive marker")
        header = bytes(buf[off : off + 512])
        if header == b"\0" * 512:
            break
        try:
            checksum = _octal(header[148:156])
            size = _octal(header[124:136])
        except ValueError as err:
            raise DataFormatError(f"{name}: corrupt tar header at byte {off} ({err})") from err
        if (
            checksum != sum(header[:148]) + 256 + sum(header[156:])
            and checksum != sum(struct.unpack("148b8x356b", header)) + 256
        ):  # old tars: signed bytes
            raise DataFormatError(f"{name}: corrupt tar header at byte {off} (checksum mismatch)")
        kind = header[156:157]
        member = header[:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0]
            if prefix:
                member = prefix + b"/" + member
        if pax_size is not None:
            size, pax_size = pax_size, None
        start = off + 512
        if size < 0:
            raise DataFormatError(f"{name}: corrupt tar header at byte {off} (negative size {size})")
        if start + size > n:
            raise DataFormatError(
                f"{name}: truncated: member {member.decode(errors='replace')!r} needs "
                f"{size} bytes, {max(n - start, 0)} remain"
            )
        if kind == b"L":
            long_name = bytes(buf[start : start + size]).split(b"\0", 1)[0]
        elif kind == b"x":
            for record in bytes(buf[start : start + size]).split(b"\n"):
                key_value = record.split(b" ", 1)[-1]
                if key_value.startswith(b"path="):
                    pax_path = key_value[5:]
                elif key_value.startswith(b"size="):
                    try:
                        pax_size = int(key_value[5:])
                    except ValueError:
                        pax_size = -1
                    if pax_size < 0:
                        raise DataFormatError(
                            f"{name}: corrupt pax header at byte {off} (size {key_value[5:][:40]!r} is not "
                            "a non-negative integer)"
                        )
        else:
            path = (pax_path or long_name or member).decode("utf-8", "surrogateescape")
            if kind in (b"0", b"\0", b"7"):
                out.append((path, start, size))
            elif kind == b"5" and folders is not None:
                folders.append(path)
            long_name = pax_path = None
        next_off = start + (size + 511) // 512 * 512
        if next_off <= off:  # cannot happen with size >= 0; never loop on a crafted archive
            raise DataFormatError(f"{name}: corrupt tar header at byte {off} (the next header does not advance)")
        off = next_off
    return out


def _open_decompressed(path: Path):
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


def _too_big(path, max_bytes: int) -> DataFormatError:
    return DataFormatError(
        f"{path}: holds more than {max_bytes} bytes (uncompressed), the limit; pass max_bytes= "
        "(data.max_bytes in a config) to read a larger archive"
    )


class _LimitedReader(io.RawIOBase):
    """A read-only stream over ``stream`` that raises :class:`DataFormatError` naming ``path``
    once more than ``max_bytes`` have been read from it (a decompression bomb stops there)."""

    def __init__(self, stream, max_bytes: int, path):
        self.stream, self.max_bytes, self.path, self.total = stream, max_bytes, path, 0

    def readable(self) -> bool:
        return True

    def read(self, n=-1) -> bytes:
        left = self.max_bytes + 1 - self.total
        data = self.stream.read(left if n is None or n < 0 else min(n, left))
        self.total += len(data)
        if self.total > self.max_bytes:
            raise _too_big(self.path, self.max_bytes)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _tar_buffer(path: Path, progress: bool, max_bytes: int = DEFAULT_MAX_BYTES):
    """The uncompressed tar bytes of ``path`` (a gzip archive is decompressed in memory, never
    past ``max_bytes``; a plain tar memory-mapped), or ``None`` for archives too large, expanding
    too far for an archive of images, or compressed otherwise (then :mod:`tarfile` streams them)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(6)
        if magic[:2] != b"\x1f\x8b":
            if size > max_bytes and magic[:3] != b"BZh" and magic != b"\xfd7zXZ\x00":
                raise _too_big(path, max_bytes)
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
                        raise _too_big(path, max_bytes)
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


def _member_too_big(path, rel: str, size: int) -> DataFormatError:
    return DataFormatError(f"{path}: {rel}: {size} bytes, more than the {MAX_IMAGE_BYTES} allowed for one image")


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
            raise _member_too_big(path, rel, size)
        total += size
        if total > max_bytes:
            raise _too_big(path, max_bytes)

    try:
        if kind == "image":
            count(path.name, path.stat().st_size)
            with open(path, "rb") as f:
                data = f.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:  # grew since
                raise _member_too_big(path, path.name, len(data))
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
                    raise _member_too_big(path, rel, len(data))
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
                        raise _member_too_big(path, info.filename, len(data))
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
                        raise _member_too_big(path, rel, size)
                    yield rel, bytes(buf[start : start + size])
                return
            # large or bz2/xz archives: stream, never decompressing more than max_bytes
            with _open_decompressed(path) as raw, io.BufferedReader(_LimitedReader(raw, max_bytes, path)) as stream:
                with tarfile.open(fileobj=stream, mode="r|") as tf:
                    for member in tqdm(tf, desc=desc, unit="file", disable=not progress, leave=False):
                        if folders is not None:
                            folders.add(member.name if member.isdir() else member.name.rpartition("/")[0])
                        if member.isfile() and not _skipped(member.name):
                            if member.size > MAX_IMAGE_BYTES:
                                raise _member_too_big(path, member.name, member.size)
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


def _content_format(data: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def _decode(data: bytes, name: str, target: str | None) -> tuple[np.ndarray, str]:
    """``(uint8 (H, W, C) array in mode target, kind of the stored image)``; ``target`` ``None``
    keeps the stored kind (``"grayscale"`` or ``"rgb"``). Only PNG and JPEG are decoded (Pillow
    is told so, no other plugin runs), and the content must be the format its extension names
    (a name without one of :data:`IMAGE_EXTENSIONS` takes either)."""
    from PIL import Image, UnidentifiedImageError

    fmt = _content_format(data)
    if not data:
        raise DataFormatError(f"{name}: empty file (0 bytes)")
    if fmt is None:
        raise DataFormatError(f"{name}: unreadable image (not PNG or JPEG content: it starts with {bytes(data[:8])!r})")
    expected = IMAGE_FORMATS.get(PurePosixPath(name).suffix.lower())
    if expected is not None and fmt != expected:
        raise DataFormatError(
            f"{name}: the file holds a {fmt} image but its extension says {expected}; rename it or convert it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                decoded = width * height * max(len(img.getbands()), 3)
                if decoded > MAX_IMAGE_BYTES:
                    raise DataFormatError(
                        f"{name}: image declares {width}x{height} pixels ({decoded} bytes decoded), more "
                        f"than the {MAX_IMAGE_BYTES} allowed for one image"
                    )
                img.load()
                kind = "grayscale" if img.mode in _GRAY_MODES else "rgb"
                pil_mode = _PIL_MODE[target or kind]
                array = np.asarray(img if img.mode == pil_mode else img.convert(pil_mode), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataFormatError(f"{name}: image too large, refused as a possible decompression bomb ({err})") from None
    except DataFormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataFormatError(f"{name}: unreadable image ({err})") from err
    return (array if array.ndim == 3 else array[:, :, None]), kind


def decode_image(data: bytes, name: str, color_mode: str = "rgb") -> np.ndarray:
    """Decode one image with Pillow to uint8 ``(H, W, C)`` in ``color_mode`` (``"rgb"``,
    ``"grayscale"`` or ``"auto"``: as stored). ``name`` is used in the error message."""
    return _decode(data, name, None if color_mode == "auto" else color_mode)[0]


def _decode_chunk(datas: list, names: list, target: str | None) -> list:
    """Decode a list of images (runs in a worker process for large sets)."""
    return [_decode(data, name, target) for data, name in zip(datas, names)]


def _default_workers(n_images: int) -> int:
    return 1 if n_images < 4000 else max(1, min(os.cpu_count() or 1, 8))


def _decode_all(datas: list, names: list, target: str, workers: int, progress: bool, desc: str) -> list:
    """``[(array, kind)]`` for every image, in order; with ``workers > 1`` in a process pool
    (falling back to this process if a pool cannot be started)."""
    chunk = 1000
    bar = tqdm(total=len(datas), desc=desc, unit="img", disable=not progress, leave=False)
    results: list = []
    try:
        if workers > 1:
            from concurrent.futures import ProcessPoolExecutor
            from concurrent.futures.process import BrokenProcessPool

            try:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    futures = [
                        pool.submit(_decode_chunk, datas[i : i + chunk], names[i : i + chunk], target)
                        for i in range(0, len(datas), chunk)
                    ]
                    for future in futures:
                        part = future.result()
                        results.extend(part)
                        bar.update(len(part))
                return results
            except (BrokenProcessPool, OSError, PermissionError):
                results = []  # no usable pool here: decode in this process
                bar.reset()
        for i in range(0, len(datas), chunk):
            part = _decode_chunk(datas[i : i + chunk], names[i : i + chunk], target)
            results.extend(part)
            bar.update(len(part))
        return results
    finally:
        bar.close()


def read_image_folder(
    path,
    class_names=None,
    color_mode: str = "auto",
    progress: bool = True,
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Decode an image-folder tree or archive (no cache). Returns
    ``({split: (images uint8 (m, H, W, C), labels int64 (m,))}, class_names)``; within a split the
    examples are ordered by class, then file path. The layout (splits, class folders) is checked
    before any image is decoded. ``workers``: decoding processes (default: the CPU count for
    sets of 4,000 images or more, else 1). ``max_bytes``: the most bytes read from the source
    (decompressed; default :data:`DEFAULT_MAX_BYTES`), beyond which it is refused."""
    path = Path(path)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}; got {color_mode!r}")
    prefix = None
    entries = []  # (split, class folder, rel, bytes)
    folders: set = set()
    for rel, data in iter_files(path, progress, desc=f"reading {path.name}", max_bytes=max_bytes, folders=folders):
        parts = PurePosixPath(rel).parts
        where = f"{path}: {rel}"
        if len(parts) < 3 or (prefix is not None and parts[:-3] != prefix):
            expected = "/".join(prefix + ("<split>", "<class>", "<image>")) if prefix else "<split>/<class>/<image>"
            raise DataFormatError(f"{where}: image is not at {expected} like the others")
        prefix = parts[:-3] if prefix is None else prefix
        split = _split_of(parts[-3])
        if split is None:
            valid = ", ".join(n for names in SPLIT_NAMES.values() for n in names)
            raise DataFormatError(f"{where}: {parts[-3]!r} is not a split folder (expected one of: {valid})")
        entries.append((split, parts[-2], rel, data))
    if not entries:
        raise DataFormatError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    check_folders(path, prefix, entries, folders, class_names_given=class_names is not None)
    present = {e[0] for e in entries}
    for required in ("train", "test"):
        if required not in present:
            raise DataFormatError(
                f"{path}: missing split folder {SPLIT_NAMES[required][0]!r} (found: {', '.join(sorted(present))})"
            )
    if class_names is None:
        class_names = sorted({e[1] for e in entries if e[0] == "train"})
    class_names = [str(c) for c in class_names]
    index = {c: i for i, c in enumerate(class_names)}
    for split, folder, rel, _ in entries:
        if folder not in index:
            raise DataFormatError(
                f"{path}: {rel}: class folder {folder!r} is not one of the classes ({', '.join(class_names)})"
            )
    order = {"train": 0, "validation": 1, "test": 2}
    entries.sort(key=lambda e: (order[e[0]], index[e[1]], e[2]))

    first_image, first_kind = _decode(
        entries[0][3], f"{path}: {entries[0][2]}", None if color_mode == "auto" else color_mode
    )
    target = first_kind if color_mode == "auto" else color_mode
    workers = _default_workers(len(entries)) if workers is None else max(1, int(workers))
    decoded = _decode_all(
        [e[3] for e in entries],
        [f"{path}: {e[2]}" for e in entries],
        target,
        workers,
        progress,
        f"decoding {path.name}",
    )
    first_rel = entries[0][2]
    for (split, folder, rel, _), (image, kind) in zip(entries, decoded):
        if color_mode == "auto" and kind != first_kind:
            raise DataFormatError(
                f"{path}: {rel}: image is {kind} but {first_rel} is {first_kind}; all images "
                "must have the same colour mode (pass color_mode='rgb' or 'grayscale' to "
                "convert them)"
            )
        if image.shape != first_image.shape:
            raise DataFormatError(
                f"{path}: {rel}: image is {image.shape[1]}x{image.shape[0]} but {first_rel} is "
                f"{first_image.shape[1]}x{first_image.shape[0]}; all images must have the same size"
            )
    splits = {}
    for split in sorted(present, key=order.get):
        picked = [i for i, e in enumerate(entries) if e[0] == split]
        images = np.empty((len(picked),) + first_image.shape, dtype=np.uint8)
        for j, i in enumerate(picked):
            images[j] = decoded[i][0]
        labels = np.array([index[entries[i][1]] for i in picked], dtype=np.int64)
        splits[split] = (images, labels)
    return splits, class_names


def _tag(class_names, color_mode: str) -> str:
    classes = hashlib.sha256("\0".join(class_names or []).encode()).hexdigest()[:8] if class_names else "sorted"
    return f"imagefolder-{color_mode}-{classes}"


def load_image_folder_arrays(
    path,
    class_names=None,
    color_mode: str = "auto",
    progress: bool = True,
    cache: bool = True,
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """:func:`read_image_folder` through the cache: the first call decodes (with a progress bar)
    and writes uint8 ``.npy`` files; later calls on the unchanged source read those."""
    path = Path(path).expanduser()
    archive_kind(path)  # clear error for a missing or unsupported path before touching the cache

    def build():
        splits, names = read_image_folder(path, class_names, color_mode, progress, workers, max_bytes)
        arrays = {}
        for split, (X, y) in splits.items():
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = X, y
        return arrays, {"class_names": names, "splits": list(splits)}

    arrays, meta = cached(path, _tag(class_names, color_mode), build, use_cache=cache)
    splits = {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}
    return splits, list(meta["class_names"])


def load_image_folder(
    path=None,
    batch_size: int = 128,
    class_names=None,
    color_mode: str = "auto",
    validation_size=0.1,
    standardize: bool = True,
    augment=False,
    seed: int = 0,
    split_seed: int = DEFAULT_SPLIT_SEED,
    flatten: bool = False,
    pad: int = 4,
    crop_padding: str = "zeros",
    progress: bool = True,
    cache: bool = True,
    name: str = "image_folder",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """Any image-folder tree or archive as a :class:`Dataset` of uint8 NHWC images. Without a
    validation split folder, ``validation_size`` (count or fraction) of ``train`` is held out,
    stratified and fixed by ``split_seed``. See :func:`~neural_networks.datasets.base.make_image_dataset`
    for ``standardize``, ``augment``, ``seed``, ``flatten``, ``pad`` and ``crop_padding``; ``max_bytes`` bounds the bytes read
    from the source (decompressed, default :data:`DEFAULT_MAX_BYTES`)."""
    if path is None:
        raise ValueError("the image_folder data set needs path=<folder or archive of <split>/<class>/<image>>")
    splits, names = load_image_folder_arrays(path, class_names, color_mode, progress, cache, max_bytes=max_bytes)
    dataset = make_image_dataset(
        name,
        splits,
        names,
        batch_size,
        validation_size=validation_size,
        split_seed=split_seed,
        seed=seed,
        standardize=standardize,
        augment=augment,
        flatten=flatten,
        pad=pad,
        crop_padding=crop_padding,
    )
    dataset.source = Path(path)
    return dataset


def load_images(
    path,
    like=None,
    color_mode: str | None = None,
    progress: bool = True,
    return_names: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Unlabelled images for prediction (one image file, or a folder or archive of image files,
    any depth), sorted by relative path (that order is the submission's Id order). Returns uint8 images
    ``(m, H, W, C)``, or ``(images, relative paths)`` with ``return_names``.

    ``like``: a :class:`Dataset` whose inputs the images must match: colour mode from its channel
    count, size checked (an image of another size is an error naming it), and the result reshaped
    to its input shape (flattened for an MLP). Without it, ``color_mode`` (default ``"rgb"``)."""
    shape = None
    if like is not None:
        image_shape = getattr(like, "image_shape", None) or tuple(like.train.X.shape[1:])
        if len(image_shape) != 3:
            raise ValueError(f"data set {like.name!r} does not hold images (input shape {image_shape})")
        shape = image_shape
        color_mode = color_mode or ("grayscale" if image_shape[2] == 1 else "rgb")
    color_mode = color_mode or "rgb"
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"color_mode must be 'rgb' or 'grayscale'; got {color_mode!r}")
    items = []
    single = archive_kind(path) == "image"
    for rel, data in iter_files(path, progress, desc=f"reading {Path(path).name}", max_bytes=max_bytes):
        image = decode_image(data, str(path) if single else f"{path}: {rel}", color_mode)
        expected = shape or (items[0][1].shape if items else image.shape)
        if image.shape != expected:
            raise DataFormatError(
                f"{path}: {rel}: image is {image.shape[1]}x{image.shape[0]}x{image.shape[2]}, "
                f"expected {expected[1]}x{expected[0]}x{expected[2]} like "
                f"{'the training images' if shape else items[0][0]}"
            )
        items.append((rel, image))
    if not items:
        raise DataFormatError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    items.sort(key=lambda item: item[0])
    images = np.stack([image for _, image in items])
    if like is not None:
        images = images.reshape((images.shape[0],) + tuple(like.train.X.shape[1:]))
    return (images, [rel for rel, _ in items]) if return_names else images


class ImageFolderSpec(DatasetSpec):
    """The ``image_folder`` data set's :class:`~.spec.DatasetSpec`: it has no default location
    (every call needs ``path``) and no published checksum."""

    description = "any <split>/<class>/<image> tree or .tar/.tar.gz/.zip of one (needs path)"
    load = staticmethod(load_image_folder)

    def source(self, path=None) -> Path:
        if path is None:
            raise DataNotFoundError("the image_folder data set has no default location; pass its path")
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"{path}: no such file or folder")
        return path

    def availability(self, path=None) -> dict:
        found = path is not None and Path(path).expanduser().exists()
        message = "no such file or folder" if path is not None else f"needs a path (data folder: {data_home()})"
        return {
            "found": found,
            "path": str(path) if found else None,
            "where": "explicit path" if found else None,
            "message": "" if found else message,
        }

    def verify(self, path=None) -> list[FileCheck]:
        path = self.source(path)
        return [FileCheck(path.name, str(path), "unknown", message="image folders have no published checksum")]


SPEC = ImageFolderSpec()
