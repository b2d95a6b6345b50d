"""Bounds on what is read from an untrusted data source, so that a decompression bomb or a file
announcing absurd sizes fails with a one-line error instead of filling memory.

:data:`DEFAULT_MAX_BYTES` bounds the bytes read (decompressed) from one source: an IDX file's
payload, a folder or archive of images, CIFAR-10's tarball or batch folder; ``max_bytes=`` (or
``data.max_bytes`` in a config) overrides it. :data:`MAX_IMAGE_BYTES` bounds one stored file
(an image or a CIFAR-10 batch) and one image's decoded pixels. :class:`LimitedReader` enforces the
first on a stream.
"""

from __future__ import annotations

import io

from .sources import DataFormatError

__all__ = ["DEFAULT_MAX_BYTES", "MAX_IMAGE_BYTES", "LimitedReader", "source_too_big", "file_too_big"]

#: Default bound on the bytes read (decompressed) from one source (MNIST's training images are
#: 47 MB, CIFAR-10 as images about 180 MB of pixels).
DEFAULT_MAX_BYTES = 4 << 30
#: Bound on one stored file (image or batch file) and on one image's decoded pixels.
MAX_IMAGE_BYTES = 64 << 20


def source_too_big(path, max_bytes: int) -> DataFormatError:
    """The error for a source ``path`` holding more than ``max_bytes`` (uncompressed)."""
    return DataFormatError(
        f"{path}: holds more than {max_bytes} bytes (uncompressed), the limit; pass max_bytes= "
        "(data.max_bytes in a config) to read a larger archive"
    )


def file_too_big(path, rel: str, size: int, limit: int) -> DataFormatError:
    """The error for the image ``rel`` of source ``path`` storing ``size`` bytes, over ``limit``."""
    return DataFormatError(f"{path}: {rel}: {size} bytes, more than the {limit} allowed for one image")


class LimitedReader(io.RawIOBase):
    """A read-only stream over ``stream`` that raises :class:`DataFormatError` naming ``path``
    once more than ``max_bytes`` have been read from it (a decompression bomb stops there)."""

    def __init__(self, stream, max_bytes: int, path):
        self.stream, self.max_bytes, self.path, self.total = stream, max_bytes, path, 0

    def readable(self) -> bool:
        """Always ``True``."""
        return True

    def read(self, n=-1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` is ``None`` or negative);
        :class:`DataFormatError` once more than ``max_bytes`` have been read in all."""
        left = self.max_bytes + 1 - self.total
        data = self.stream.read(left if n is None or n < 0 else min(n, left))
        self.total += len(data)
        if self.total > self.max_bytes:
            raise source_too_big(self.path, self.max_bytes)
        return data

    def readinto(self, b) -> int:
        """Read into the buffer ``b``; the number of bytes read (limited as :meth:`read`)."""
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
