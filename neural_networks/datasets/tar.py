"""The member index of an uncompressed tar held in memory, parsed straight from its 512-byte
headers (ustar, GNU long names and base-256 sizes, pax paths and sizes): for an archive of many
small images this is much faster than :mod:`tarfile`, which builds an object per member. Every
header is checked (checksum, sizes, the end-of-archive marker), so a damaged or crafted archive is
a :class:`~.sources.DataFormatError`, never a wrong index or an endless loop."""

from __future__ import annotations

import struct

from .sources import DataFormatError

__all__ = ["tar_index"]


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
