"""Crafted hostile files for the tests: decompression bombs made in milliseconds, and the damaged
variants (empty, truncated, wrong content) of any file.

The bombs are built without ever holding or compressing their expanded size: after a full
flush, deflate compresses every further block of zeros to the same bytes, so one compressed
block is repeated. Their gzip trailer (CRC and length) is not computed; a reader that honours a
bound stops long before it would check it.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from pathlib import Path

_BLOCK = 1 << 20


def _repeated_deflate(prefix: bytes, n_zero_blocks: int, wbits: int, suffix: bytes = b"") -> bytes:
    """A deflate stream (in the container ``wbits`` says) of ``prefix``, ``n_zero_blocks`` MiB of
    zeros and ``suffix``, without a valid trailer."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(_BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(_BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "deflate blocks after a full flush are expected to repeat"
    tail = compressor.compress(suffix) + compressor.flush()
    return head + block * max(n_zero_blocks - 2, 0) + tail


def tar_gz_bomb(path: Path, expanded_bytes: int, member: str = "padding.bin") -> Path:
    """A ``.tar.gz`` holding one member ``member`` of ``expanded_bytes`` zeros (rounded to MiB):
    10 GB expand from about 10 MB."""
    info = tarfile.TarInfo(member)
    info.size = expanded_bytes // _BLOCK * _BLOCK
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    path.write_bytes(_repeated_deflate(header, info.size // _BLOCK, wbits=31))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = 40_000) -> Path:
    """A valid grayscale PNG of ``side`` x ``side`` black pixels (1.6 GB decoded at the default)
    whose file is a few MB: a decompression bomb."""
    rows = side * (side + 1)  # each row: filter byte 0, then the pixels
    idat = _repeated_deflate(b"", rows // _BLOCK + 1, wbits=15)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def damaged_variants(original: bytes, wrong: bytes) -> dict[str, bytes]:
    """The three ways a file arrives broken: ``empty``, ``truncated`` (cut in the middle) and
    ``wrong`` (the content of another kind of file)."""
    return {"empty": b"", "truncated": original[: max(len(original) // 2, 1)], "wrong": wrong}
