"""Data sets and mini-batch loaders.

``initialize_dataset(name, batch_size, **kwargs)`` is the spec's entry point; it returns a
:class:`Dataset` with ``train``, ``validate`` and ``test`` loaders yielding ``(float32 X,
one-hot float32 Y)``; integer labels are ``loader.labels``, class names ``dataset.class_names``.

Data sets: ``"iris"`` (shipped), ``"fashion_mnist"`` and ``"mnist"`` (four IDX files each, read by
:mod:`.idx`), ``"cifar10"`` and ``"image_folder"`` (needs ``path``). The data sets are registered in
:data:`DATASETS` (built in :mod:`.catalog`): adding one is its module and one ``DATASETS.add``
line there. Every loader's ``batch_size`` defaults to :data:`DEFAULT_BATCH_SIZE`.

The pieces, one module each: the :class:`Dataset` (:mod:`.dataset`) of three
:class:`DataLoader` (:mod:`.loader`); train/validation splits (:mod:`.splits`); batch
transforms (:mod:`.transforms`); an image data set from decoded arrays (:mod:`.image_dataset`);
augmentation (:mod:`.augment`). Reading files: where they come from (:mod:`.sources`), the bounds
on what is read (:mod:`.limits`), folders and archives (:mod:`.archives`, tar headers in
:mod:`.tar`), image decoding (:mod:`.decoding`), an image folder's layout (:mod:`.layout`) and
the decoded-image cache (:mod:`.cache`). Presence and checksums: :func:`list_datasets` (with
:func:`neural_networks.experiments.config_data_paths`: the paths configs give) and :func:`verify_dataset`, which ask each data
set's :class:`~.spec.DatasetSpec` (:mod:`.spec`).
"""

from __future__ import annotations

import os

from .augment import Augmenter, make_augmenter, random_crop, random_flip
from .catalog import (
    DATASETS,
    VERIFIABLE,
    FileCheck,
    dataset_path,
    format_dataset_row,
    list_datasets,
    verify_dataset,
)
from .cifar10 import load_cifar10, load_cifar10_arrays
from .dataset import Dataset
from .fashion_mnist import load_fashion_mnist, load_fashion_mnist_arrays, read_idx
from .image_dataset import make_image_dataset
from .image_folder import load_image_folder, load_image_folder_arrays, load_images
from .iris import load_iris
from .loader import DEFAULT_BATCH_SIZE, DataLoader, one_hot
from .mnist import load_mnist, load_mnist_arrays
from .sources import ChecksumError, DataFormatError, DataNotFoundError, cache_home, data_home, download
from .splits import DEFAULT_SPLIT_SEED, split_validation, stratified_split
from .transforms import ImageTransform, Standardizer, channel_stats

__all__ = [
    "DataLoader",
    "Dataset",
    "Standardizer",
    "ImageTransform",
    "one_hot",
    "stratified_split",
    "split_validation",
    "channel_stats",
    "make_image_dataset",
    "DEFAULT_SPLIT_SEED",
    "DEFAULT_BATCH_SIZE",
    "load_iris",
    "load_fashion_mnist",
    "load_fashion_mnist_arrays",
    "read_idx",
    "load_mnist",
    "load_mnist_arrays",
    "load_cifar10",
    "load_cifar10_arrays",
    "load_image_folder",
    "load_image_folder_arrays",
    "load_images",
    "Augmenter",
    "make_augmenter",
    "random_crop",
    "random_flip",
    "DataNotFoundError",
    "DataFormatError",
    "ChecksumError",
    "data_home",
    "cache_home",
    "download",
    "list_datasets",
    "format_dataset_row",
    "dataset_path",
    "verify_dataset",
    "VERIFIABLE",
    "FileCheck",
    "DATASETS",
    "initialize_dataset",
]


def initialize_dataset(name: str, batch_size: int = DEFAULT_BATCH_SIZE, **kwargs) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``; ``-``/``_`` and case do not matter) with
    mini-batches of ``batch_size``; ``kwargs`` go to its loader (e.g. ``path=``, ``augment=True``,
    ``validation_size=``, ``seed=``); ``ValueError`` names an unknown data set or argument and the
    valid ones. A :class:`DataNotFoundError` comes from this call alone, without the frames under
    it (unless ``$NEURAL_NETWORKS_DEBUG`` is set), so that a script's traceback stays short and
    ends in its message: the missing file, the places searched and how to provide it.

    Example:
        >>> from neural_networks.datasets import initialize_dataset
        >>> data = initialize_dataset("iris", batch_size=25, seed=0)  # shipped with the package
        >>> data.class_names, data.input_shape, (data.n_training, data.n_validation, data.n_test)
        (['setosa', 'versicolor', 'virginica'], (4,), (90, 30, 30))
    """
    try:
        return DATASETS.create(name, batch_size=batch_size, **kwargs)
    except DataNotFoundError as err:
        if os.environ.get("NEURAL_NETWORKS_DEBUG"):
            raise
        # the registry, loader and file-search frames add nothing to the message, and a course
        # script that does not catch it would print them all above it
        raise err.with_traceback(None) from None
