"""The spec's ``Dataset``: a ``train``, ``validate`` and ``test`` :class:`~.loader.DataLoader` and
what a model needs to know about them (classes, input shape, output width).

Two ways to make one, each explicit: ``Dataset(training_set, training_labels, batch_size, ...)``
from a user's arrays (the course's form), and :meth:`Dataset.from_loaders` from ready loaders (what
the library's data sets do).
"""

from __future__ import annotations

import numpy as np

from .loader import DataLoader

__all__ = ["Dataset"]


def _split_size(loader) -> int:
    return 0 if loader is None else loader.n_examples


class Dataset:
    """Three splits, each a :class:`~.loader.DataLoader`: ``train``, ``validate`` (alias
    ``validation``) and ``test``, plus ``class_names``, ``n_classes``, ``out_dim``, ``input_shape``,
    ``batch_size`` and the split sizes ``n_training``, ``n_validation``, ``n_test``.

    ``Dataset(training_set, training_labels, batch_size, validation_set=None,
    validation_labels=None, test_set=None, test_labels=None, *, shuffle=True, seed=None,
    name="arrays")`` makes one from a user's arrays, as the course's ``Dataset``. Each ``*_set`` is
    ``(m, ...)`` with ``m >= 1`` and the training examples' shape. Labels are one-hot rows ``(m, k)``
    or class indices ``(m,)``; other ``(m, d)`` arrays are regression targets, passed through as
    they are. ``out_dim`` comes from the labels (``k``, or ``d`` for targets). A split given without
    labels is unlabelled; one not given at all is ``None``. Inputs are used as they are (no
    standardisation, as the course's loader) and become float32 per batch; the training split is
    shuffled every pass when ``shuffle``, driven by ``seed``.

    Raises ``ValueError`` naming the split for missing training labels, an empty or rank-1 set,
    labels whose count differs from the set's, labels that are not finite numbers, 1-D labels that
    are not whole numbers >= 0, labels of more than 2 dimensions, splits whose labels disagree in
    kind (classes or targets) or in target width, a set whose examples differ in shape from the
    training examples, and a ``batch_size`` that is not a positive int.

    :meth:`from_loaders` makes one from loaders built elsewhere.

    Example:
        >>> import numpy as np
        >>> from neural_networks.datasets import Dataset
        >>> X = np.random.default_rng(0).normal(size=(100, 4))
        >>> data = Dataset(X[:80], (X[:80, 0] > 0).astype(int), 16, X[80:], (X[80:, 0] > 0).astype(int), seed=0)
        >>> data.n_classes, data.input_shape, data.n_training, data.n_validation, data.test
        (2, (4,), 80, 20, None)
        >>> X_batch, Y_batch = next(iter(data.train))  # shuffled; float32 inputs, one-hot targets
        >>> X_batch.shape, Y_batch.shape, Y_batch.dtype.name
        ((16, 4), (16, 2), 'float32')
    """

    def __init__(
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

    @classmethod
    def from_loaders(
        cls, name: str, train: DataLoader, validate: DataLoader, test: DataLoader, class_names
    ) -> "Dataset":
        """A data set of ready loaders (what the library's data sets build): ``class_names`` give
        ``n_classes`` and ``out_dim``; ``input_shape`` is the training inputs' ``X.shape[1:]``.
        Nothing is checked: the loaders were."""
        dataset = cls.__new__(cls)
        dataset.name = name
        dataset.train = train
        dataset.validate = validate
        dataset.test = test
        dataset.class_names = list(class_names)
        dataset.n_classes = len(dataset.class_names)
        dataset.input_shape = tuple(train.X.shape[1:])
        dataset.out_dim = dataset.n_classes
        return dataset

    @property
    def validation(self) -> DataLoader:
        """The validation loader, :attr:`validate` (``None`` when the data set has no such split)."""
        return self.validate

    @property
    def batch_size(self) -> int:
        """The training loader's mini-batch size."""
        return self.train.batch_size

    @property
    def n_training(self) -> int:
        """The number of training examples."""
        return _split_size(self.train)

    @property
    def n_validation(self) -> int:
        """The number of validation examples (0 without a validation split)."""
        return _split_size(self.validate)

    @property
    def n_test(self) -> int:
        """The number of test examples (0 without a test split)."""
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
