"""Decoding PNG and JPEG bytes to uint8 ``(H, W, C)`` arrays, in a process pool for large sets.

Only PNG and JPEG are decoded: Pillow is told the one format the content's magic bytes name, so
no other plugin ever runs, and that format must be the one the file's extension names. An image
declaring more than :data:`~.limits.MAX_IMAGE_BYTES` of pixels is refused before its pixels are
decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import PurePosixPath

import numpy as np

from ..progress import progress_bar as tqdm
from .limits import MAX_IMAGE_BYTES
from .sources import DataFormatError

__all__ = ["IMAGE_FORMATS", "COLOR_MODES", "decode", "decode_image", "default_workers", "decode_all"]

#: The Pillow format each extension must hold; no other Pillow plugin is ever tried.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))
#: ``color_mode`` values: ``"auto"`` keeps each image's stored kind, the others convert to it.
COLOR_MODES = ("auto", "rgb", "grayscale")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_PIL_MODE = {"rgb": "RGB", "grayscale": "L"}


def _content_format(data: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def decode(data: bytes, name: str, target: str | None) -> tuple[np.ndarray, str]:
    """``(uint8 (H, W, C) array in mode target, kind of the stored image)``; ``target`` ``None``
    keeps the stored kind (``"grayscale"`` or ``"rgb"``). Only PNG and JPEG are decoded (Pillow
    is told so, no other plugin runs), and the content must be the format its extension names
    (a name without one of :data:`~.layout.IMAGE_EXTENSIONS` takes either).

    Raises :class:`DataFormatError` naming ``name`` for empty data, content that is not PNG or
    JPEG or not the format the extension names, more than :data:`~.limits.MAX_IMAGE_BYTES` of
    declared pixels, and anything Pillow cannot decode."""
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
    ``"grayscale"`` or ``"auto"``: as stored). ``name`` is used in the error message; errors as
    :func:`decode`."""
    return decode(data, name, None if color_mode == "auto" else color_mode)[0]


def _decode_chunk(datas: list, names: list, target: str | None) -> list:
    """Decode a list of images (runs in a worker process for large sets)."""
    return [decode(data, name, target) for data, name in zip(datas, names)]


def default_workers(n_images: int) -> int:
    """Decoding processes for ``n_images``: one below 4,000 images, else the CPU count, at most 8."""
    return 1 if n_images < 4000 else max(1, min(os.cpu_count() or 1, 8))


def decode_all(datas: list, names: list, target: str, workers: int, progress: bool, desc: str) -> list:
    """``[(uint8 (H, W, C) array, kind)]`` for every image of ``datas`` (named by ``names`` in
    errors), each as :func:`decode` with ``target``, in order; with ``workers > 1`` in a process
    pool (falling back to this process if a pool cannot be started), in chunks of 1,000 images.
    The first image that cannot be decoded raises its :class:`DataFormatError`."""
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
