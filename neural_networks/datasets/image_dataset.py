"""A :class:`~.dataset.Dataset` from uint8 NHWC image splits: what every image data set (IDX,
CIFAR-10, image folders) builds once its files are decoded. The validation split held out of the
training images, the per-channel statistics of what remains, the training augmenter and the three
loaders are made here, once."""

from __future__ import annotations

import numpy as np

from .augment import AUGMENTATIONS, DEFAULT_CROP_PADDING, DEFAULT_PAD, make_augmenter
from .dataset import Dataset
from .loader import DataLoader
from .splits import DEFAULT_SPLIT_SEED, split_validation
from .transforms import ImageTransform, channel_stats

__all__ = ["DEFAULT_VALIDATION_SIZE", "make_image_dataset"]

#: The share of the training images held out for validation when a data set has no validation
#: split and names no size of its own.
DEFAULT_VALIDATION_SIZE = 0.1


def make_image_dataset(
    name: str,
    splits: dict,
    class_names,
    batch_size: int,
    validation_size=DEFAULT_VALIDATION_SIZE,
    split_seed: int = DEFAULT_SPLIT_SEED,
    seed: int = 0,
    standardize: bool = True,
    augment=False,
    flatten: bool = False,
    pad: int = DEFAULT_PAD,
    crop_padding: str = DEFAULT_CROP_PADDING,
) -> Dataset:
    """A :class:`Dataset` from uint8 NHWC images. ``splits`` maps ``"train"``, ``"test"`` and
    optionally ``"validation"`` to ``(images, labels)``; without a validation split,
    ``validation_size`` examples are held out of ``train`` (stratified, from ``split_seed``).
    Statistics for standardisation come from the (remaining) training split only. ``seed``
    drives shuffling and augmentation. ``augment``: see
    :func:`~neural_networks.datasets.augment.make_augmenter`; the training loader always carries
    an augmenter (crop and flip unless others are named) and ``augment`` only sets
    ``train.augmenting``, so augmentation can be switched on later too. ``pad`` and
    ``crop_padding`` (``"zeros"`` or ``"reflect"``) configure its crop, unless an ``augment``
    mapping sets them. ``flatten`` gives ``(m, H*W*C)`` inputs (a view of the uint8 array, no copy).

    Images are uint8 ``(m, H, W, C)``, labels int ``(m,)`` in ``[0, len(class_names) - 1]``. Raises
    ``ValueError`` for a missing ``train`` or ``test`` split, validation or test images of another
    shape than the training images, a bad ``validation_size`` (see
    :func:`~.splits.split_validation`) or ``augment`` (see :func:`~.augment.make_augmenter`)."""
    for required in ("train", "test"):
        if required not in splits:
            raise ValueError(f"{name}: no {required!r} split")
    X_train, y_train = splits["train"]
    if "validation" in splits:
        X_val, y_val = splits["validation"]
    else:
        train_idx, val_idx = split_validation(y_train, validation_size, split_seed)
        X_val, y_val = X_train[val_idx], y_train[val_idx]
        X_train, y_train = X_train[train_idx], y_train[train_idx]
    X_test, y_test = splits["test"]
    image_shape = tuple(X_train.shape[1:])
    for split, X in (("validation", X_val), ("test", X_test)):
        if X.shape[0] and tuple(X.shape[1:]) != image_shape:
            raise ValueError(f"{name}: {split} images have shape {X.shape[1:]}, training images {image_shape}")
    if standardize:
        mean, std = channel_stats(X_train)
        transform = ImageTransform(mean / 255.0, std / 255.0)
    else:
        transform = ImageTransform()
    crop = {"pad": pad, "crop_padding": crop_padding}
    augmenter = make_augmenter(augment, image_shape, **crop) or make_augmenter(AUGMENTATIONS, image_shape, **crop)
    n_classes = len(class_names)

    def reshape(X):
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:]))) if flatten else X

    def loader(X, y, shuffle, aug=None):
        return DataLoader(
            reshape(X), y, n_classes, batch_size, shuffle=shuffle, transform=transform, augment=aug, seed=seed
        )

    train = loader(X_train, y_train, True, augmenter)
    train.augmenting = bool(make_augmenter(augment))
    dataset = Dataset.from_loaders(name, train, loader(X_val, y_val, False), loader(X_test, y_test, False), class_names)
    dataset.transform = transform
    dataset.image_shape = image_shape
    return dataset
