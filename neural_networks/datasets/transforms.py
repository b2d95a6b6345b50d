"""Batch transforms from stored inputs to float32 model inputs, with statistics fitted on the
training split only: :class:`Standardizer` (feature vectors, or images per channel) and
:class:`ImageTransform` (uint8 pixels scaled to ``[0, 1]``, optionally standardised per channel,
with :func:`channel_stats` computing those statistics exactly)."""

from __future__ import annotations

import numpy as np

__all__ = ["Standardizer", "channel_stats", "ImageTransform"]


class Standardizer:
    """Per-feature (per-channel for images) ``(x - mean) / std``, fitted on training data.

    For inputs of shape ``(m, ...)`` the statistics are taken over every axis except the last
    when ``per_channel`` (images, NHWC), else over the batch axis only (feature vectors).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, X: np.ndarray, per_channel: bool = False, chunk: int = 4096) -> "Standardizer":
        """Statistics of ``X`` ``(m, ...)`` computed in float64, in chunks (no full float copy of
        ``X``): shape ``X.shape[-1:]`` when ``per_channel``, else ``X.shape[1:]``."""
        axes = tuple(range(X.ndim - 1)) if per_channel else (0,)
        shape = X.shape[-1:] if per_channel else X.shape[1:]
        total = np.zeros(shape)
        total_sq = np.zeros(shape)
        count = 0
        for start in range(0, X.shape[0], chunk):
            block = X[start : start + chunk].astype(np.float64)
            total += block.sum(axis=axes)
            total_sq += (block * block).sum(axis=axes)
            count += block.size // int(np.prod(shape))
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
        std[std < 1e-8] = 1.0  # constant features stay unscaled instead of dividing by zero
        return cls(mean, std)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = X.astype(np.float32)
        out -= self.mean
        out /= self.std
        return out


def channel_stats(X: np.ndarray, chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, std)`` (float64, shape ``(C,)``) of an image array ``(m, H, W, C)``,
    taken over examples and pixels. Exact for uint8 data (sums accumulated in integers, in
    chunks of examples, without a float copy of the whole array). ``ValueError`` for an array of
    fewer than 2 dimensions or without examples."""
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"cannot compute channel statistics of an array of shape {X.shape}")
    C = X.shape[-1]
    flat = X.reshape(X.shape[0], -1)  # (m, H*W*C): reductions over axis 0 run on contiguous rows
    rows = max(1, chunk // flat.shape[1])
    if X.dtype == np.uint8:
        total = np.zeros(flat.shape[1], dtype=np.uint64)
        total_sq = np.zeros(flat.shape[1], dtype=np.uint64)
        for start in range(0, flat.shape[0], rows):
            block = flat[start : start + rows]
            total += block.sum(axis=0, dtype=np.uint64)
            total_sq += np.multiply(block, block, dtype=np.uint16).sum(axis=0, dtype=np.uint64)
    else:
        total = np.zeros(flat.shape[1])
        total_sq = np.zeros(flat.shape[1])
        for start in range(0, flat.shape[0], rows):
            block = flat[start : start + rows].astype(np.float64)
            total += block.sum(axis=0)
            total_sq += (block * block).sum(axis=0)
    n = flat.size // C
    total = total.reshape(-1, C).sum(axis=0).astype(np.float64)
    total_sq = total_sq.reshape(-1, C).sum(axis=0).astype(np.float64)
    mean = total / n
    var = np.maximum(total_sq / n - mean * mean, 0.0)
    return mean, np.sqrt(var)


class ImageTransform:
    """uint8 batch -> float32: scaled to ``[0, 1]`` (``x / 255``) and, with statistics, standardised
    per channel: ``(x / 255 - mean) / std``, ``mean``/``std`` being those of the scaled training
    pixels. Works on image batches ``(n, H, W, C)`` and flattened ones ``(n, H*W*C)``."""

    def __init__(self, mean=None, std=None, scale: float = 1.0 / 255.0) -> None:
        self.scale = float(scale)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)
        if self.std is not None:
            self.std = np.where(self.std < 1e-8, 1.0, self.std)
        self._cache: dict = {}

    @property
    def standardize(self) -> bool:
        """Whether the transform standardises per channel (it was given ``mean`` and ``std``)."""
        return self.mean is not None

    def _coefficients(self, sample_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """``a, b`` with ``transform(x) = a * x + b``, shaped to broadcast over ``sample_shape``."""
        if sample_shape not in self._cache:
            if self.mean is None:
                a, b = np.float32(self.scale), np.float32(0.0)
            else:
                a = self.scale / self.std
                b = -self.mean / self.std
                C = a.shape[0]
                if len(sample_shape) == 1 and C > 1:  # flattened HWC: channel is the fastest axis
                    reps = sample_shape[0] // C
                    a, b = np.tile(a, reps), np.tile(b, reps)
                a, b = a.astype(np.float32), b.astype(np.float32)
            self._cache[sample_shape] = (a, b)
        return self._cache[sample_shape]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        a, b = self._coefficients(tuple(X.shape[1:]))
        out = X.astype(np.float32)
        out *= a
        out += b
        return out

    def __repr__(self) -> str:
        if self.mean is None:
            return f"ImageTransform(scale={self.scale:.6g})"
        return f"ImageTransform(mean={np.round(self.mean, 4).tolist()}, std={np.round(self.std, 4).tolist()})"
