"""Training-time augmentation of NHWC image batches, vectorised over the batch.

Every random draw comes from the ``numpy.random.Generator`` passed in, so a seeded loader gives
the same augmented batches on every run. Augmentation runs on the uint8 batch, before the
float conversion and standardisation (so the padding of a crop is black, as in torchvision's
``RandomCrop(padding=4)`` applied to the image).
"""

from __future__ import annotations

import numpy as np

__all__ = ["AUGMENTATIONS", "random_crop", "random_flip", "Augmenter", "make_augmenter"]

AUGMENTATIONS = ("crop", "flip")
_ALIASES = {
    "crop": "crop",
    "random_crop": "crop",
    "flip": "flip",
    "hflip": "flip",
    "random_flip": "flip",
    "horizontal_flip": "flip",
}


def _check_images(X: np.ndarray) -> None:
    if X.ndim != 4:
        raise ValueError(f"augmentation expects an NHWC batch (batch, rows, cols, channels); got shape {X.shape}")


def random_crop(X: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Pad each image with ``pad`` zeros on every side and cut out a window of the original size
    at a random offset: ``out[i, r, c] = X[i, r + dy_i - pad, c + dx_i - pad]`` (0 outside),
    ``dy_i, dx_i`` uniform in ``[0, 2 * pad]``. ``X``: ``(n, H, W, C)``; returns a new array."""
    _check_images(X)
    if pad < 0:
        raise ValueError(f"pad must be >= 0; got {pad}")
    n, H, W, C = X.shape
    if pad == 0 or n == 0:
        return X.copy()
    padded = np.zeros((n, H + 2 * pad, W + 2 * pad, C), dtype=X.dtype)
    padded[:, pad : pad + H, pad : pad + W] = X
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    # windows[i, y, x] is the H x W window of image i at offset (y, x): a strided view, so the
    # fancy index below copies one whole window per image (4x faster than indexing every pixel).
    s0, s1, s2, s3 = padded.strides
    windows = np.lib.stride_tricks.as_strided(
        padded, (n, 2 * pad + 1, 2 * pad + 1, H, W, C), (s0, s1, s2, s1, s2, s3), writeable=False
    )
    return windows[np.arange(n), dy, dx]  # (n, H, W, C)


def random_flip(X: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``. Returns a new array."""
    _check_images(X)
    flip = rng.random(X.shape[0]) < p
    out = X.copy()
    out[flip] = X[flip, :, ::-1]
    return out


class Augmenter:
    """A callable ``(X_batch, rng) -> X_batch`` applying the named augmentations in the order
    crop, flip. ``image_shape`` (H, W, C) lets it work on flattened batches ``(n, H*W*C)``."""

    def __init__(self, names=AUGMENTATIONS, pad: int = 4, flip_p: float = 0.5, image_shape=None) -> None:
        if isinstance(names, str):
            names = [names]
        resolved = []
        for name in names:
            key = str(name).lower().replace("-", "_")
            if key not in _ALIASES:
                raise ValueError(f"unknown augmentation {name!r}; valid names: {', '.join(AUGMENTATIONS)}")
            if _ALIASES[key] not in resolved:
                resolved.append(_ALIASES[key])
        self.names = tuple(n for n in AUGMENTATIONS if n in resolved)
        self.pad = int(pad)
        self.flip_p = float(flip_p)
        self.image_shape = tuple(image_shape) if image_shape is not None else None

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shape = X.shape
        if X.ndim == 2 and self.image_shape is not None:
            X = X.reshape((shape[0],) + self.image_shape)
        if "crop" in self.names:
            X = random_crop(X, rng, self.pad)
        if "flip" in self.names:
            X = random_flip(X, rng, self.flip_p)
        return X.reshape(shape)

    def __repr__(self) -> str:
        return f"Augmenter({list(self.names)}, pad={self.pad}, flip_p={self.flip_p})"


def make_augmenter(augment, image_shape=None, pad: int = 4) -> Augmenter | None:
    """An :class:`Augmenter` from a loader's ``augment`` option: ``True`` (crop and flip), a name
    or list of names, an :class:`Augmenter` or any callable (returned as is); ``False``/``None``
    or an empty list give ``None``."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return Augmenter(AUGMENTATIONS, pad=pad, image_shape=image_shape)
    if isinstance(augment, Augmenter) or (callable(augment) and not isinstance(augment, str)):
        return augment
    names = [augment] if isinstance(augment, str) else list(augment)
    return Augmenter(names, pad=pad, image_shape=image_shape) if names else None
