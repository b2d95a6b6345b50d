"""Mini-batches of one split: :class:`DataLoader`, and the one-hot encoding of its labels.

Inputs stay in their stored dtype (uint8 pixels stay uint8) until a batch is formed; each
batch is converted to float32 and, if the split was given one, transformed (see
:mod:`.transforms`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_BATCH_SIZE", "one_hot", "DataLoader"]

#: The mini-batch size of every data set unless its caller gives one: the default of
#: ``initialize_dataset`` and of each data set's loader function (the course's Iris batches).
DEFAULT_BATCH_SIZE = 25


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(m,)`` -> one-hot ``(m, n_classes)`` of ``dtype``. ``ValueError`` for labels
    that are not 1-D or lie outside ``[0, n_classes - 1]``.

    Example:
        >>> import numpy as np
        >>> from neural_networks.datasets import one_hot
        >>> one_hot(np.array([2, 0]), 3)
        array([[0., 0., 1.],
               [1., 0., 0.]], dtype=float32)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}]; found values from {labels.min()} to {labels.max()}")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
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

    Raises ``ValueError`` for both ``labels`` and ``targets``, a ``batch_size`` that is not a
    positive int, labels without ``n_classes``, labels whose count differs from ``X``'s, labels
    that are not whole numbers in ``[0, n_classes - 1]``, and ``targets`` that are not ``(m, d)``.

    Example:
        >>> import numpy as np
        >>> from neural_networks.datasets import DataLoader
        >>> loader = DataLoader(np.zeros((10, 4), np.uint8), np.arange(10) % 3, n_classes=3, batch_size=4)
        >>> [(X.shape, X.dtype.name, Y.shape) for X, Y in loader]
        [((4, 4), 'float32', (4, 3)), ((4, 4), 'float32', (4, 3)), ((2, 4), 'float32', (2, 3))]
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
        """The number of examples in the split (``n_samples``, the course's name, is the same)."""
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
