"""Iris (Fisher, 1936): 150 flowers, 4 measurements, 3 species. Shipped with the package
(``data/iris.csv``, CC BY 4.0, see ``data/IRIS_LICENSE.txt``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .loader import DEFAULT_BATCH_SIZE, DataLoader
from .splits import stratified_split
from .spec import DatasetSpec, FileCheck
from .transforms import Standardizer

__all__ = ["load_iris_arrays", "load_iris", "IRIS_SPLIT_SEED", "IRIS_FEATURE_NAMES", "IrisSpec", "SPEC"]

IRIS_SPLIT_SEED = 189  #: Fixes the train/validation/test split (90/30/30, stratified)
#: The CSV's columns in order (data/IRIS_LICENSE.txt; its header holds only the counts and the
#: class names), named as scikit-learn names them; plots label the first layer's rows with them.
IRIS_FEATURE_NAMES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")


def load_iris_arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X (150, 4) float64, labels (150,) int64, class_names)`` from the shipped CSV."""
    text = resources.files(__package__).joinpath("data/iris.csv").read_text()
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    n_rows, n_features, class_names = int(header[0]), int(header[1]), header[2:]
    table = np.loadtxt(lines[1:], delimiter=",")
    if table.shape != (n_rows, n_features + 1):
        raise ValueError(f"iris.csv: expected {n_rows} rows of {n_features + 1} columns, got {table.shape}")
    return table[:, :n_features], table[:, n_features].astype(np.int64), class_names


def load_iris(batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> Dataset:
    """The Iris data set split 60/20/20 (stratified, fixed by ``IRIS_SPLIT_SEED``) and
    standardised with the training split's mean and standard deviation. ``seed`` drives the
    training split's shuffling. Its ``feature_names`` list the four measurements in column order."""
    X, y, class_names = load_iris_arrays()
    train_idx, val_idx, test_idx = stratified_split(y, (0.6, 0.2, 0.2), seed=IRIS_SPLIT_SEED)
    scaler = Standardizer.fit(X[train_idx])
    n_classes = len(class_names)

    def loader(idx, shuffle):
        return DataLoader(X[idx], y[idx], n_classes, batch_size, shuffle=shuffle, transform=scaler, seed=seed)

    dataset = Dataset.from_loaders(
        "iris", loader(train_idx, True), loader(val_idx, False), loader(test_idx, False), class_names
    )
    dataset.feature_names = list(IRIS_FEATURE_NAMES)
    return dataset


class IrisSpec(DatasetSpec):
    """Iris's :class:`~.spec.DatasetSpec`: always the shipped CSV (``path`` is ignored)."""

    description = "Iris (Fisher, 1936): 150 flowers, 4 features, 3 classes; shipped with the package"
    load = staticmethod(load_iris)

    def source(self, path=None) -> Path:
        return Path(__file__).parent / "data" / "iris.csv"

    def availability(self, path=None) -> dict:
        return {"found": True, "path": str(self.source()), "where": "shipped"}

    def verify(self, path=None) -> list[FileCheck]:
        return [FileCheck("iris.csv", str(self.source()), "unknown", message="shipped with the package")]


#: Iris's entry in :data:`~neural_networks.datasets.DATASETS`.
SPEC = IrisSpec()
