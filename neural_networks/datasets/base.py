"""Mini-batch loaders and the spec's ``Dataset`` (``train`` / ``validate`` / ``test`` splits).

Inputs stay in their stored dtype (uint8 pixels stay uint8) until a batch is formed; each
batch is converted to float32 and, if the split was given one, standardised with statistics
fitted on the training split only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["one_hot", "Standardizer", "DataLoader", "Dataset", "stratified_split"]


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
    """

    def __init__(self, X: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int, shuffle: bool = False,
                 transform=None, augment=None, rng: np.random.Generator | None = None) -> None:
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
        self.rng = rng if rng is not None else np.random.default_rng(0)
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
