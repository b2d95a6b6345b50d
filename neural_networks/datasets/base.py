"""Mini-batch loaders and the spec's ``Dataset`` (``train`` / ``validate`` / ``test`` splits).

Inputs stay in their stored dtype (uint8 pixels stay uint8) until a batch is formed; each
batch is converted to float32 and, if the split was given one, standardised with statistics
fitted on the training split only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["one_hot", "Standardizer", "DataLoader", "Dataset", "stratified_split", "split_validation",
           "channel_stats", "ImageTransform", "make_image_dataset", "DEFAULT_SPLIT_SEED"]

DEFAULT_SPLIT_SEED = 189  # fixes the validation split of the image data sets unless a split_seed is given


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(m,)`` -> one-hot ``(m, n_classes)``."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}]; found values from {labels.min()} to {labels.max()}")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


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
        """Statistics of ``X`` computed in float64, in chunks (no full float copy of ``X``)."""
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


class DataLoader:
    """Iterates over one split in mini-batches of ``(X, Y)``.

    ``X``: ``(m, ...)`` float32 (after ``transform``); ``Y``: one-hot float32 ``(m, n_classes)``.
    ``labels`` holds the integer labels of the whole split. With ``shuffle`` each pass visits
    the examples in a new order drawn from ``rng``; the last batch may be smaller. ``augment``
    is an optional callable ``(X_batch_uint8_or_float, rng) -> X_batch`` applied before
    ``transform`` when ``augmenting`` is true (training only).

    The spec's interface is kept too: ``samples_per_epoch`` (batches per pass) and
    ``sample()`` (the next batch, starting a new pass when one ends).

    ``seed`` (or an explicit ``rng``) drives shuffling and augmentation; with a seed,
    :meth:`set_epoch` makes each epoch's randomness depend on the epoch number only.
    """

    def __init__(self, X: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int, shuffle: bool = False,
                 transform=None, augment=None, rng: np.random.Generator | None = None, seed: int | None = None) -> None:
        X = np.asarray(X)
        labels = np.asarray(labels)
        if X.shape[0] != labels.shape[0]:
            raise ValueError(f"{X.shape[0]} inputs but {labels.shape[0]} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self.X = X
        self.labels = labels.astype(np.int64)
        self.n_classes = int(n_classes)
        one_hot(self.labels[:0], self.n_classes)  # validates dtype/rank cheaply
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes - 1}]")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.transform = transform
        self.augment = augment
        self.augmenting = augment is not None
        self.seed = seed
        if rng is None:
            rng = np.random.default_rng(0 if seed is None else [seed, 0])
        self.rng = rng
        self._iterator = None

    def set_epoch(self, epoch: int) -> None:
        """Reseed shuffling and augmentation from ``(seed, epoch)`` (like PyTorch's
        ``DistributedSampler.set_epoch``), so that epoch ``e`` sees the same order and the same
        augmentations whether or not the run was interrupted before it. No effect without a seed."""
        if self.seed is not None:
            self.rng = np.random.default_rng([self.seed, int(epoch)])
            self._iterator = None

    def __len__(self) -> int:
        return -(-self.X.shape[0] // self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        """Number of batches in one pass (the spec's name)."""
        return len(self)

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[0])

    def batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The batch made of the examples at ``index`` (after augmentation and transform)."""
        X = self.X[index]
        if self.augmenting and self.augment is not None:
            X = self.augment(X, self.rng)
        X = self.transform(X) if self.transform is not None else X.astype(np.float32, copy=False)
        return X, one_hot(self.labels[index], self.n_classes)

    def __iter__(self):
        m = self.X.shape[0]
        order = self.rng.permutation(m) if self.shuffle else np.arange(m)
        for start in range(0, m, self.batch_size):
            yield self.batch(order[start : start + self.batch_size])

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch of the current pass (a new pass starts when one is exhausted)."""
        if self._iterator is None:
            self._iterator = iter(self)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self)
            return next(self._iterator)


class Dataset:
    """Three splits, each a :class:`DataLoader`: ``train``, ``validate`` (alias
    ``validation``) and ``test``, plus ``class_names``, ``n_classes`` and ``input_shape``."""

    def __init__(self, name: str, train: DataLoader, validate: DataLoader, test: DataLoader, class_names) -> None:
        self.name = name
        self.train = train
        self.validate = validate
        self.test = test
        self.class_names = list(class_names)
        self.n_classes = len(self.class_names)
        self.input_shape = tuple(train.X.shape[1:])
        self.out_dim = self.n_classes

    @property
    def validation(self) -> DataLoader:
        return self.validate

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={getattr(self, k).n_examples}" for k in ("train", "validate", "test"))
        return f"Dataset({self.name!r}, {sizes}, input_shape={self.input_shape}, classes={self.n_classes})"


def stratified_split(labels: np.ndarray, fractions, seed: int) -> list[np.ndarray]:
    """Split indices into parts with the given fractions (summing to 1), keeping every
    class's proportion; deterministic for a given ``seed``. Returns sorted index arrays."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    bounds = np.cumsum(fractions)
    if not np.isclose(bounds[-1], 1.0):
        raise ValueError(f"split fractions must sum to 1; got {fractions}")
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(bounds * idx.size).astype(int)
        start = 0
        for part, stop in zip(parts, cuts):
            part.append(idx[start:stop])
            start = stop
    return [np.sort(np.concatenate(p)) for p in parts]


def split_validation(labels: np.ndarray, validation_size, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: hold out ``validation_size`` examples (an int count, or a float
    fraction in ``[0, 1)``), stratified by class (each class contributes in proportion, the
    rounding distributed by largest remainder so the count is exact). Deterministic for a
    given ``seed``; both index arrays sorted."""
    labels = np.asarray(labels)
    m = labels.shape[0]
    if isinstance(validation_size, bool):
        raise ValueError(f"validation_size must be a count or a fraction; got {validation_size!r}")
    if isinstance(validation_size, (float, np.floating)):
        if not 0.0 <= validation_size < 1.0:
            raise ValueError(f"a fractional validation_size must lie in [0, 1); got {validation_size}")
        n_val = int(round(validation_size * m))
    else:
        n_val = int(validation_size)
    if not 0 <= n_val < m:
        raise ValueError(f"validation_size must leave training examples: asked for {n_val} of {m}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (n_val / m) if m else counts * 0.0
    take = np.floor(quota).astype(int)
    short = n_val - int(take.sum())
    if short:
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    val_parts, train_parts = [], []
    for cls, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        val_parts.append(idx[:k])
        train_parts.append(idx[k:])
    if not classes.size:
        return np.arange(0), np.arange(0)
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def channel_stats(X: np.ndarray, chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, std)`` (float64, shape ``(C,)``) of an image array ``(m, H, W, C)``,
    taken over examples and pixels. Exact for uint8 data (sums accumulated in integers, in
    chunks of examples, without a float copy of the whole array)."""
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


def make_image_dataset(name: str, splits: dict, class_names, batch_size: int, validation_size=0.1,
                       split_seed: int = DEFAULT_SPLIT_SEED, seed: int = 0, standardize: bool = True,
                       augment=False, flatten: bool = False) -> Dataset:
    """A :class:`Dataset` from uint8 NHWC images. ``splits`` maps ``"train"``, ``"test"`` and
    optionally ``"validation"`` to ``(images, labels)``; without a validation split,
    ``validation_size`` examples are held out of ``train`` (stratified, from ``split_seed``).
    Statistics for standardisation come from the (remaining) training split only. ``seed``
    drives shuffling and augmentation. ``augment``: see
    :func:`~neural_networks.datasets.augment.make_augmenter`; the training loader always carries
    an augmenter (crop and flip unless others are named) and ``augment`` only sets
    ``train.augmenting``, so augmentation can be switched on later too. ``flatten`` gives
    ``(m, H*W*C)`` inputs (a view of the uint8 array, no copy)."""
    from .augment import AUGMENTATIONS, make_augmenter

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
    augmenter = make_augmenter(augment, image_shape=image_shape) or make_augmenter(AUGMENTATIONS, image_shape)
    n_classes = len(class_names)

    def reshape(X):
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:]))) if flatten else X

    def loader(X, y, shuffle, aug=None):
        return DataLoader(reshape(X), y, n_classes, batch_size, shuffle=shuffle, transform=transform, augment=aug,
                          seed=seed)

    train = loader(X_train, y_train, True, augmenter)
    train.augmenting = bool(make_augmenter(augment))
    dataset = Dataset(name, train, loader(X_val, y_val, False), loader(X_test, y_test, False), class_names)
    dataset.transform = transform
    dataset.image_shape = image_shape
    return dataset
