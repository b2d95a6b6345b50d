"""Test-time augmentation: predict from several views of each image and average the outputs.

Used by :meth:`NeuralNetwork.predict` / ``evaluate`` / ``test`` (``tta=...``), by the config's
``evaluation.tta`` and by the command line's ``--tta``. Modes:

* ``none``: the images as they are.
* ``flip``: the image and its left-right mirror image, weight 1/2 each.
* ``flip_translate``: ``flip`` (weight 1/2) and, weight 1/2 in all, the image shifted by one
  pixel down-right and by one pixel up-left (reflected at the border), each with its mirror
  image: six forward passes (the test-time augmentation of Jordan 2024, arXiv:2404.00498).

Outputs (for a classifier, the softmax probabilities) are averaged with those weights. The
views need NHWC image batches ``(batch, rows, cols, channels)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TTA_MODES", "check_tta", "translate", "tta_views"]

#: The test-time augmentation modes (see the module docstring); ``None`` means ``"none"``.
TTA_MODES = ("none", "flip", "flip_translate")


def check_tta(tta) -> str:
    """Normalise a mode name: ``None`` -> ``"none"``; unknown names raise ``ValueError``."""
    if tta is None:
        return "none"
    if not isinstance(tta, str) or tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation tta={tta!r}; valid: {', '.join(TTA_MODES)}")
    return tta


def translate(X: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift the content of NHWC images by ``dy`` rows and ``dx`` columns, filling the uncovered
    border by reflection: ``out[:, r, c] = X[:, r - dy, c - dx]`` (reflected where outside).
    Returns a new C-contiguous array of ``X``'s shape."""
    n, H, W, C = X.shape
    p = max(abs(dy), abs(dx))
    if p >= min(H, W):
        raise ValueError(f"cannot translate {H}x{W} images by ({dy}, {dx}) pixels")
    padded = np.pad(X, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    return np.ascontiguousarray(padded[:, p - dy : p - dy + H, p - dx : p - dx + W])


def _mirror(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X[:, :, ::-1])


def tta_views(X: np.ndarray, tta: str) -> list[tuple[float, np.ndarray]]:
    """``[(weight, view), ...]`` of the batch ``X`` for mode ``tta``; the weights sum to 1."""
    tta = check_tta(tta)
    if tta == "none":
        return [(1.0, X)]
    if np.ndim(X) != 4:
        raise ValueError(
            f"tta={tta!r} transforms images and needs NHWC input (batch, rows, cols, channels); "
            f"got input of shape {np.shape(X)}"
        )
    views = [(0.5, X), (0.5, _mirror(X))]
    if tta == "flip_translate":
        views = [(w / 2, v) for w, v in views]
        for shift in (1, -1):
            moved = translate(X, shift, shift)
            views += [(0.125, moved), (0.125, _mirror(moved))]
    return views
