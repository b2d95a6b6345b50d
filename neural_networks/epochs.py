"""Counting epochs, fractional ones included: how many a run trains and how many batches each
has. Plain arithmetic shared by the fit loop, its progress bar, configs and run directories.

A run of ``epochs = 4.5`` trains four whole epochs and then the first half of the fifth's
batches; the partial epoch counts as an epoch of its own.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_epochs", "epoch_count", "epoch_batches"]


def check_epochs(value, name: str = "epochs") -> int | float:
    """A number of epochs: a non-negative int, or a float whose fraction is a last, partial epoch
    (``4.5``: four epochs, then the first half of the fifth's batches, as arXiv:2404.00498 trains 9.9 epochs).
    Integral floats become ints. Raises ``ValueError`` (naming ``name``) for anything else: a
    bool, a non-number, a negative or non-finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def epoch_count(epochs) -> int:
    """How many epochs a run of ``epochs`` trains, its partial last one included."""
    return math.ceil(epochs)


def epoch_batches(epochs, epoch: int, n_batches: int) -> int:
    """How many of its ``n_batches`` batches epoch ``epoch`` (0-based) of a run of ``epochs``
    trains: all but in the partial last epoch of a fractional ``epochs``, which trains the first
    ``ceil(fraction * n_batches)`` (at least one)."""
    left = epochs - epoch
    if left >= 1:
        return n_batches
    return max(1, math.ceil(left * n_batches - 1e-9))  # 1e-9: 4.4 - 4 is 0.40000000000000036
