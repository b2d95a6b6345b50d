"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 28x28 grayscale images of clothing in
10 classes, stored as four IDX files (gzip-compressed or not; read by :mod:`.idx`).

The 60,000 training images are split into 50,000 for training and 10,000 for validation
(``DEFAULT_VALIDATION_SIZE``; stratified, 1,000 per class, fixed by ``split_seed``); the 10,000
test images are the test split. Images come out ``(m, 28, 28, 1)``; ``flatten=True`` gives
``(m, 784)`` for an MLP. Besides the data folder, Debian's ``dataset-fashion-mnist`` package is
a source (see :mod:`.sources`).
"""

from __future__ import annotations

from .dataset import Dataset
from .idx import DEFAULT_VALIDATION_SIZE, IMAGE_MAGIC, LABEL_MAGIC, IDXDataset, candidates, read_idx
from .loader import DEFAULT_BATCH_SIZE
from .sources import RemoteFile
from .splits import DEFAULT_SPLIT_SEED

__all__ = [
    "NAME",
    "TITLE",
    "CLASS_NAMES",
    "FILES",
    "SPEC",
    "IMAGE_MAGIC",
    "LABEL_MAGIC",
    "DEFAULT_VALIDATION_SIZE",
    "candidates",
    "read_idx",
    "fashion_mnist_files",
    "read_fashion_mnist",
    "load_fashion_mnist_arrays",
    "load_fashion_mnist",
]

#: The data set's registry name.
NAME = "fashion_mnist"
#: Its name in messages.
TITLE = "Fashion-MNIST"
#: The ten class names, in label order.
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: The four files by role: downloaded name, url, md5 of the upstream .gz, sha256 of the raw IDX bytes
#: (published by the authors, so a re-compressed copy such as Debian's verifies too).
FILES = {
    "train_images": RemoteFile(
        "train-images-idx3-ubyte.gz",
        _URL + "train-images-idx3-ubyte.gz",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": RemoteFile(
        "train-labels-idx1-ubyte.gz",
        _URL + "train-labels-idx1-ubyte.gz",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        _URL + "t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        _URL + "t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

#: Fashion-MNIST's four IDX files (published URLs and checksums), its entry in the registry.
SPEC = IDXDataset(
    NAME,
    TITLE,
    tuple(CLASS_NAMES),
    FILES,
    description="Fashion-MNIST: 70,000 28x28 grayscale images, 10 classes (4 IDX files)",
)


def fashion_mnist_files(path=None, download: bool = True, progress: bool = True) -> dict:
    """The four files by role (``train_images`` ...), found or downloaded (see
    :mod:`~neural_networks.datasets.sources`)."""
    return SPEC.locate(path, download, progress)


def read_fashion_mnist(files: dict) -> dict:
    """Parse and check the four files (by role) -> ``{"train": (X, y), "test": (X, y)}``."""
    return SPEC.read(files)


def load_fashion_mnist_arrays(path=None, download: bool = True, progress: bool = True, cache: bool = True):
    """``({"train": (X, y), "test": (X, y)}, class_names)`` with ``X`` uint8 ``(m, 28, 28, 1)``
    and ``y`` int64 ``(m,)``; the decoded arrays are cached as ``.npy``."""
    return SPEC.load_arrays(path, download, progress, cache)


def load_fashion_mnist(
    batch_size: int = DEFAULT_BATCH_SIZE,
    path=None,
    flatten: bool = False,
    validation_size=DEFAULT_VALIDATION_SIZE,
    standardize: bool = True,
    augment=False,
    seed: int = 0,
    split_seed: int = DEFAULT_SPLIT_SEED,
    download: bool = True,
    progress: bool = True,
    cache: bool = True,
) -> Dataset:
    """Fashion-MNIST as a :class:`Dataset` (train 50,000 / validation 10,000 / test 10,000 by
    default): images ``(m, 28, 28, 1)``, or ``(m, 784)`` with ``flatten=True`` for an MLP.
    Arguments as :meth:`IDXDataset.load <neural_networks.datasets.idx.IDXDataset.load>`."""
    return SPEC.load(
        batch_size=batch_size,
        path=path,
        flatten=flatten,
        validation_size=validation_size,
        standardize=standardize,
        augment=augment,
        seed=seed,
        split_seed=split_seed,
        download=download,
        progress=progress,
        cache=cache,
    )
