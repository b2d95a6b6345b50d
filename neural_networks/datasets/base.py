"""Mini-batch loaders and the spec's ``Dataset`` (``train`` / ``validate`` / ``test`` splits).

Inputs stay in their stored dtype (uint8 pixels stay uint8) until a batch is formed; each
batch is converted to float32 and, if the split was given one, standardised with statistics
fitted on the training split only.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "one_hot",
    "Standardizer",
    "DataLoader",
    "Dataset",
    "stratified_split",
    "split_validation",
    "channel_stats",
    "ImageTransform",
    "make_image_dataset",
    "DEFAULT_SPLIT_SEED",
]

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

    ``X``: ``(m, ...)`` float32 (after ``transform``); ``Y``: one-hot float32 ``(m, n_classes)``
    built from the integer ``labels`` of the split, or, for a regression split made with
    ``targets (m, d)`` instead of labels, those rows as float32. A split with neither is
    unlabelled (``Y`` is ``None``; e.g. a competition's test inputs). With ``shuffle`` each pass
    visits the examples in a new order drawn from ``rng``; the last batch may be smaller.
    ``augment`` is an optional callable ``(X_batch_uint8_or_float, rng) -> X_batch`` applied before
    ``transform`` when ``augmenting`` is true (training only). One with a true attribute
    ``needs_epoch_and_indices`` (an alternating flip) is called as ``augment(X_batch, rng,
    indices=..., epoch=..., seed=...)``: ``indices`` ``(n,)`` are the batch's examples' positions
    in the stored data set (followed through :meth:`shuffle`), ``epoch`` is :attr:`epoch` and
    ``seed`` the loader's seed.

    The course's interface is kept too: ``samples_per_epoch`` (batches per pass), ``sample()``
    (the next batch, starting a new pass when one ends; the inputs alone for an unlabelled split),
    ``iteration`` (batches taken from the current pass), ``reset()``, ``shuffle()`` (reorder the
    stored examples now), ``data_``, ``n_samples`` and ``out_dim``.

    ``seed`` (or an explicit ``rng``) drives shuffling and augmentation; with a seed,
    :meth:`set_epoch` makes each epoch's randomness depend on the epoch number only.
    :attr:`epoch` numbers the passes: 0 for the first, then one more for each pass started,
    unless :meth:`set_epoch` says which epoch the next pass is.
    """

    def __init__(
        self,
        X: np.ndarray,
        labels: np.ndarray | None,
        n_classes: int | None,
        batch_size: int,
        shuffle: bool = False,
        transform=None,
        augment=None,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
        targets: np.ndarray | None = None,
    ) -> None:
        X = np.asarray(X)
        if labels is not None and targets is not None:
            raise ValueError("give integer labels (classification) or targets (regression), not both")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self.X = X
        self.labels = None
        self.targets = None
        self.n_classes = None if n_classes is None else int(n_classes)
        if labels is not None:
            labels = np.asarray(labels)
            if X.shape[0] != labels.shape[0]:
                raise ValueError(f"{X.shape[0]} inputs but {labels.shape[0]} labels")
            if self.n_classes is None:
                raise ValueError("integer labels need n_classes")
            if labels.dtype.kind not in "biuf":
                raise ValueError(f"labels must be class indices (integers); got dtype {labels.dtype}")
            if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
                bad = labels[labels != np.round(labels)][0]  # NaN and fractions alike: never truncated
                raise ValueError(f"labels must be whole class indices; got {float(bad)!r}")
            self.labels = labels.astype(np.int64)
            one_hot(self.labels[:0], self.n_classes)  # validates dtype/rank cheaply
            if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
                raise ValueError(f"labels must lie in [0, {self.n_classes - 1}]")
        elif targets is not None:
            targets = np.asarray(targets)
            if targets.ndim != 2 or targets.shape[0] != X.shape[0]:
                raise ValueError(f"targets must be (m, d) with m = {X.shape[0]} inputs; got shape {targets.shape}")
            self.targets = targets
        self.batch_size = int(batch_size)
        self.shuffling = bool(shuffle)
        self.transform = transform
        self.augment = augment
        self.augmenting = augment is not None
        self.seed = seed
        if rng is None:
            rng = np.random.default_rng(0 if seed is None else [seed, 0])
        self.rng = rng
        self._iterator = None
        self._taken = 0  # batches sample() has taken from the current pass
        self.epoch = 0  # the current pass's epoch (or the next one's, before it starts)
        self._epoch_set = True  # the next pass runs epoch self.epoch rather than self.epoch + 1
        self._example_ids = None  # positions in the data set as given, once shuffle() reorders it

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` and reseed shuffling and augmentation from ``(seed,
        epoch)`` (like PyTorch's ``DistributedSampler.set_epoch``), so that epoch ``e`` sees the
        same order and the same augmentations whether or not the run was interrupted before it.
        Without a seed only the epoch number is set (what an alternating flip follows)."""
        self.epoch = int(epoch)
        self._epoch_set = True
        if self.seed is not None:
            self.rng = np.random.default_rng([self.seed, int(epoch)])
            self.reset()

    def __len__(self) -> int:
        return -(-self.X.shape[0] // self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        """Number of batches in one pass (the spec's name)."""
        return len(self)

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[0])

    n_samples = n_examples  # the course's name

    @property
    def data_(self) -> np.ndarray:
        """The stored inputs (the course's name), before transform and augmentation."""
        return self.X

    @property
    def out_dim(self) -> int | None:
        """Width of ``Y``: the number of classes, or of regression targets (``None`` if unlabelled)."""
        if self.targets is not None:
            return int(self.targets.shape[1])
        return self.n_classes if self.labels is not None else None

    @property
    def iteration(self) -> int:
        """Batches :meth:`sample` has taken from the current pass (0 when a pass starts)."""
        return self._taken

    def batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The batch made of the examples at ``index`` (after augmentation and transform), as
        in epoch :attr:`epoch`."""
        return self._batch(index, self.epoch)

    def _batch(self, index: np.ndarray, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        X = self.X[index]
        if self.augmenting and self.augment is not None:
            if getattr(self.augment, "needs_epoch_and_indices", False):
                ids = np.arange(self.X.shape[0]) if self._example_ids is None else self._example_ids
                X = self.augment(X, self.rng, indices=ids[index], epoch=epoch, seed=self.seed)
            else:  # the plain (X, rng) interface, which users' own callables implement
                X = self.augment(X, self.rng)
        X = self.transform(X) if self.transform is not None else X.astype(np.float32, copy=False)
        if self.labels is not None:
            return X, one_hot(self.labels[index], self.n_classes)
        if self.targets is not None:
            return X, self.targets[index].astype(np.float32)
        return X, None

    def _pass(self, shuffle: bool):
        if not self._epoch_set:
            self.epoch += 1
        self._epoch_set = False
        epoch = self.epoch  # kept for the whole pass, even if another pass starts meanwhile
        m = self.X.shape[0]
        order = self.rng.permutation(m) if shuffle else np.arange(m)
        for start in range(0, m, self.batch_size):
            yield self._batch(order[start : start + self.batch_size], epoch)

    def __iter__(self):
        return self._pass(self.shuffling)

    def sample(self, shuffle: bool | None = None):
        """The next batch of the current pass; a new pass starts when one is exhausted, in a new
        random order when ``shuffle`` (default: the loader's own setting). Returns ``(X, Y)``, or
        ``X`` alone for an unlabelled split (as the course's loader)."""
        if self._iterator is None or self._taken >= len(self):
            self._iterator = self._pass(self.shuffling if shuffle is None else bool(shuffle))
            self._taken = 0
        X, Y = next(self._iterator)
        self._taken += 1
        return X if Y is None else (X, Y)

    def reset(self) -> None:
        """Start the next :meth:`sample` at the beginning of a new pass."""
        self._iterator = None
        self._taken = 0

    def shuffle(self) -> None:
        """Reorder the stored examples (inputs with their labels) at random now, as the course's
        loader does, and start a new pass. The arrays are copied, never permuted in place."""
        order = self.rng.permutation(self.X.shape[0])
        # An augmentation tied to each example (alternating flip) must follow it to its new place.
        ids = np.arange(self.X.shape[0]) if self._example_ids is None else self._example_ids
        self._example_ids = ids[order]
        self.X = self.X[order]
        if self.labels is not None:
            self.labels = self.labels[order]
        if self.targets is not None:
            self.targets = self.targets[order]
        self.reset()


def _split_size(loader) -> int:
    return 0 if loader is None else loader.n_examples


class Dataset:
    """Three splits, each a :class:`DataLoader`: ``train``, ``validate`` (alias ``validation``)
    and ``test``, plus ``class_names``, ``n_classes``, ``out_dim``, ``input_shape``, ``batch_size``
    and the split sizes ``n_training``, ``n_validation``, ``n_test``.

    Two ways to make one:

    * from loaders (what the library's data sets do): ``Dataset(name, train, validate, test, class_names)``;
    * from a user's arrays, as the course's ``Dataset``: ``Dataset(training_set, training_labels,
      batch_size, validation_set=None, validation_labels=None, test_set=None, test_labels=None)``
      (keywords ``shuffle=True``, ``seed=None`` and ``name="arrays"`` too). Labels are one-hot rows
      ``(m, k)`` or class indices ``(m,)``; other ``(m, d)`` arrays are regression targets, passed
      through as they are. ``out_dim`` comes from the labels (``k``, or ``d`` for targets). A split
      given without labels is unlabelled; one not given at all is ``None``. Inputs are used as
      they are (no standardisation, as the course's loader) and become float32 per batch; the
      training split is shuffled every pass.
    """

    def __init__(self, *args, **kwargs) -> None:
        if "training_set" in kwargs or (args and not isinstance(args[0], str)):
            self._from_arrays(*args, **kwargs)
        else:
            self._from_loaders(*args, **kwargs)

    def _from_loaders(self, name: str, train: DataLoader, validate: DataLoader, test: DataLoader, class_names) -> None:
        self.name = name
        self.train = train
        self.validate = validate
        self.test = test
        self.class_names = list(class_names)
        self.n_classes = len(self.class_names)
        self.input_shape = tuple(train.X.shape[1:])
        self.out_dim = self.n_classes

    def _from_arrays(
        self,
        training_set,
        training_labels,
        batch_size,
        validation_set=None,
        validation_labels=None,
        test_set=None,
        test_labels=None,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        name: str = "arrays",
    ) -> None:
        splits = {
            "training": (training_set, training_labels),
            "validation": (validation_set, validation_labels),
            "test": (test_set, test_labels),
        }
        if training_labels is None:
            raise ValueError("Dataset: training_labels are required")
        arrays = {split: (np.asarray(X), labels) for split, (X, labels) in splits.items() if X is not None}
        for split, (X, labels) in arrays.items():
            if X.ndim < 2 or X.shape[0] == 0:
                raise ValueError(f"Dataset: {split}_set must be a non-empty (m, ...) array; got shape {X.shape}")
        kinds = {split: _read_labels(labels, X.shape[0], split) for split, (X, labels) in arrays.items()}
        kind, width = _common_label_kind(kinds)
        self.name = name
        self.n_classes = width if kind == "classes" else None
        self.class_names = [str(i) for i in range(width)] if kind == "classes" else []
        self.out_dim = width
        self.input_shape = tuple(arrays["training"][0].shape[1:])
        for split, (X, _) in arrays.items():
            if tuple(X.shape[1:]) != self.input_shape:
                raise ValueError(
                    f"Dataset: {split}_set examples have shape {X.shape[1:]}, training examples {self.input_shape}"
                )

        def loader(split, train):
            if split not in arrays:
                return None
            X, _ = arrays[split]
            values = kinds[split][1]
            labels = values if kinds[split][0] == "classes" else None
            targets = values if kinds[split][0] == "targets" else None
            return DataLoader(
                X, labels, self.n_classes, batch_size, shuffle=train and shuffle, seed=seed, targets=targets
            )

        self.train = loader("training", True)
        self.validate = loader("validation", False)
        self.test = loader("test", False)

    @property
    def validation(self) -> DataLoader:
        return self.validate

    @property
    def batch_size(self) -> int:
        return self.train.batch_size

    @property
    def n_training(self) -> int:
        return _split_size(self.train)

    @property
    def n_validation(self) -> int:
        return _split_size(self.validate)

    @property
    def n_test(self) -> int:
        return _split_size(self.test)

    def __repr__(self) -> str:
        sizes = f"train={self.n_training}, validate={self.n_validation}, test={self.n_test}"
        return f"Dataset({self.name!r}, {sizes}, input_shape={self.input_shape}, out_dim={self.out_dim})"


def _read_labels(labels, m: int, split: str):
    """``(kind, values, width)`` for one split's labels: ``("classes", int64 (m,), k)`` for class
    indices or one-hot rows, ``("targets", (m, d), d)`` for other 2-D arrays, ``(None, None, None)``
    for no labels. ``k`` is the one-hot width, or the largest index + 1."""
    if labels is None:
        return None, None, None
    labels = np.asarray(labels)
    where = f"Dataset: {split}_labels"
    if labels.shape[:1] != (m,):
        raise ValueError(f"{where} have shape {labels.shape}, but the {split} set has {m} examples")
    if labels.dtype.kind not in "biuf" or not np.all(np.isfinite(labels)):
        raise ValueError(f"{where} must be finite numbers; got dtype {labels.dtype}")
    if labels.ndim == 1:
        if np.any(labels < 0) or np.any(labels != np.round(labels)):
            bad = labels[(labels < 0) | (labels != np.round(labels))][0]
            raise ValueError(
                f"{where}: a 1-D label array holds class indices, which are whole numbers >= 0; got {float(bad)!r}"
            )
        indices = labels.astype(np.int64)
        return "classes", indices, int(indices.max()) + 1
    if labels.ndim != 2:
        raise ValueError(
            f"{where} must be (m,) class indices or (m, k) one-hot rows / targets; got shape {labels.shape}"
        )
    is_one_hot = labels.shape[1] >= 2 and np.all((labels == 0) | (labels == 1)) and np.all(labels.sum(axis=1) == 1)
    if is_one_hot:
        return "classes", labels.argmax(axis=1).astype(np.int64), labels.shape[1]
    return "targets", labels, labels.shape[1]


def _common_label_kind(kinds: dict) -> tuple[str, int]:
    """The splits' common label kind and output width; a clear error when they disagree."""
    kind, _, width = kinds["training"]
    for split, (other, values, other_width) in kinds.items():
        if other is None:
            continue
        if other != kind:
            raise ValueError(f"Dataset: training labels are {kind} but {split} labels are {other}")
        if kind == "targets" and other_width != width:
            raise ValueError(f"Dataset: {split} targets have {other_width} columns, training targets {width}")
        if kind == "classes":
            width = max(width, other_width)
    return kind, width


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


def make_image_dataset(
    name: str,
    splits: dict,
    class_names,
    batch_size: int,
    validation_size=0.1,
    split_seed: int = DEFAULT_SPLIT_SEED,
    seed: int = 0,
    standardize: bool = True,
    augment=False,
    flatten: bool = False,
    pad: int = 4,
    crop_padding: str = "zeros",
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
    mapping sets them. ``flatten`` gives ``(m, H*W*C)`` inputs (a view of the uint8 array, no copy)."""
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
    dataset = Dataset(name, train, loader(X_val, y_val, False), loader(X_test, y_test, False), class_names)
    dataset.transform = transform
    dataset.image_shape = image_shape
    return dataset
