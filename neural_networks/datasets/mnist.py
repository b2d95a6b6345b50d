"""MNIST (LeCun, Bottou, Bengio and Haffner, 1998): 70,000 28x28 grayscale images of handwritten
digits, classes ``"0"`` .. ``"9"``, stored as four IDX files (gzip-compressed or not; read by
:mod:`.idx`).

The 60,000 training images are split into 50,000 for training and 10,000 for validation
(``DEFAULT_VALIDATION_SIZE``; stratified, fixed by ``split_seed``); the 10,000 test images are
the test split. Images come out ``(m, 28, 28, 1)``; ``flatten=True`` gives ``(m, 784)``.

Files are looked for under an explicit ``path``, then in ``$NEURAL_NETWORKS_DATA/mnist/``
(default ``~/.cache/neural_networks/mnist``), else downloaded: from the mirror torchvision uses
first, since yann.lecun.com often refuses downloads, then from the original site; each file is
checked against the md5 of its published ``.gz``. No checksum of the decompressed files is
published, so only an original ``.gz`` can be verified (``neural-networks data verify mnist``).
"""

from __future__ import annotations

from .dataset import Dataset
from .idx import DEFAULT_VALIDATION_SIZE, IDXDataset
from .loader import DEFAULT_BATCH_SIZE
from .sources import RemoteFile
from .splits import DEFAULT_SPLIT_SEED

__all__ = [
    "NAME",
    "TITLE",
    "CLASS_NAMES",
    "FILES",
    "SPEC",
    "DEFAULT_VALIDATION_SIZE",
    "load_mnist_arrays",
    "load_mnist",
]

#: The data set's registry name.
NAME = "mnist"
#: Its name in messages.
TITLE = "MNIST"
#: The digits ``"0"`` to ``"9"``, in label order.
CLASS_NAMES = [str(digit) for digit in range(10)]
_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_ORIGINAL = "http://yann.lecun.com/exdb/mnist/"


def _remote(name: str, md5: str) -> RemoteFile:
    return RemoteFile(name, _MIRROR + name, md5, mirrors=(_ORIGINAL + name,))


#: The four files by role, with the md5 of each published .gz (no sha256 of the content is published).
FILES = {
    "train_images": _remote("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": _remote("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": _remote("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": _remote("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

#: MNIST's four IDX files (published URLs and checksums), its entry in the registry. A horizontal
#: flip turns digits into other shapes, so ``augment=True`` means random crops only.
SPEC = IDXDataset(
    NAME,
    TITLE,
    tuple(CLASS_NAMES),
    FILES,
    augmentations=("crop",),
    description="MNIST: 70,000 28x28 grayscale handwritten digits, 10 classes (4 IDX files)",
)


def load_mnist_arrays(path=None, download: bool = True, progress: bool = True, cache: bool = True):
    """``({"train": (X, y), "test": (X, y)}, class_names)`` with ``X`` uint8 ``(m, 28, 28, 1)``
    and ``y`` int64 ``(m,)``; the decoded arrays are cached as ``.npy``."""
    return SPEC.load_arrays(path, download, progress, cache)


def load_mnist(
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
    """MNIST as a :class:`Dataset` (train 50,000 / validation 10,000 / test 10,000 by default):
    images ``(m, 28, 28, 1)``, or ``(m, 784)`` with ``flatten=True`` for an MLP. ``augment=True``
    means random crops (no flips). Other arguments as
    :meth:`IDXDataset.load <neural_networks.datasets.idx.IDXDataset.load>`."""
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
