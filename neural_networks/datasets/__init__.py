"""Data sets and mini-batch loaders.

``initialize_dataset(name, batch_size)`` is the spec's entry point; it returns a
:class:`Dataset` with ``train``, ``validate`` and ``test`` loaders.
"""

from __future__ import annotations

from .base import DataLoader, Dataset, Standardizer, one_hot, stratified_split
from .iris import load_iris

__all__ = ["DataLoader", "Dataset", "Standardizer", "one_hot", "stratified_split", "load_iris",
           "DATASETS", "initialize_dataset"]

DATASETS = {"iris": load_iris}


def initialize_dataset(name: str, batch_size: int = 25, **kwargs) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``) with mini-batches of ``batch_size``."""
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[key](batch_size=batch_size, **kwargs)
