"""Regularisation layers, kept importable from here: :class:`BatchNorm` and (inverted)
:class:`Dropout`, and the batch-norm kernels.

The layers live in :mod:`neural_networks.layers.normalization` and
:mod:`neural_networks.layers.dropout`, the pure array kernels (``batchnorm_*``) in
:mod:`neural_networks.functional`; this module only re-exports them under their old names.
"""

from __future__ import annotations

from .functional import (
    ONE_PASS_LIMIT,  # noqa: F401 (re-exported under its former name)
    _one_pass_safe,  # noqa: F401
    batchnorm_eval_backward,
    batchnorm_eval_forward,
    batchnorm_train_backward,
    batchnorm_train_forward,
)
from .layers.dropout import Dropout
from .layers.normalization import BatchNorm

__all__ = [
    "BatchNorm",
    "Dropout",
    "batchnorm_train_forward",
    "batchnorm_train_backward",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
]
