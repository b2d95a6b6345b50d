"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 28x28 grayscale images of clothing in
10 classes, stored as four IDX files (gzip-compressed or not).

The 60,000 training images are split into 50,000 for training and 10,000 for validation
(``DEFAULT_VALIDATION_SIZE``; stratified, 1,000 per class, fixed by ``split_seed``); the 10,000
test images are the test split. Pixels stay uint8 in memory and become float32 per batch.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .base import DEFAULT_SPLIT_SEED, Dataset, make_image_dataset
from .cache import cached
from .sources import DataFormatError, RemoteFile, locate_file

__all__ = ["CLASS_NAMES", "FILES", "IMAGE_MAGIC", "LABEL_MAGIC", "DEFAULT_VALIDATION_SIZE", "read_idx",
           "fashion_mnist_files", "read_fashion_mnist", "load_fashion_mnist_arrays", "load_fashion_mnist"]

NAME = "fashion_mnist"
TITLE = "Fashion-MNIST"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
DEFAULT_VALIDATION_SIZE = 10_000
_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: The four files by role: downloaded name, url, md5 of the upstream .gz, sha256 of the raw IDX bytes.
FILES = {
    "train_images": RemoteFile("train-images-idx3-ubyte.gz", _URL + "train-images-idx3-ubyte.gz",
                               "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                               "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": RemoteFile("train-labels-idx1-ubyte.gz", _URL + "train-labels-idx1-ubyte.gz",
                               "25c81989df183df01b3e8a0aad5dffbe",
                               "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": RemoteFile("t10k-images-idx3-ubyte.gz", _URL + "t10k-images-idx3-ubyte.gz",
                              "bef4ecab320f06d8554ea6380940ec79",
                              "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": RemoteFile("t10k-labels-idx1-ubyte.gz", _URL + "t10k-labels-idx1-ubyte.gz",
                              "bb300cfdad3c16e7a12a480ee83cd310",
                              "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


def candidates(remote: RemoteFile) -> list[str]:
    """Accepted file names for one file: compressed, raw, and the ``.``-separated variant
    some mirrors use (``train-images.idx3-ubyte``)."""
    raw = remote.name[: -len(".gz")]
    dotted = raw.replace("-idx", ".idx")
    return [remote.name, raw, dotted + ".gz", dotted]


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or not, told by its first bytes).

    Checks the magic number (``expected_magic``: 2051 images, 2049 labels), that the data type
    is unsigned byte and that the file holds exactly the bytes its dimensions announce. Returns
    a read-only uint8 array of those dimensions. Raises :class:`DataFormatError` naming the
    file and the problem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise DataFormatError(f"{path}: cannot read ({err})") from err
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataFormatError(f"{path}: corrupt or truncated gzip data ({err})") from err
    if len(data) < 4:
        raise DataFormatError(f"{path}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    kinds = {IMAGE_MAGIC: "images (2051)", LABEL_MAGIC: "labels (2049)"}
    if expected_magic is not None and magic != expected_magic:
        raise DataFormatError(f"{path}: wrong magic number {magic} (0x{magic:08x}); expected "
                              f"{kinds.get(expected_magic, expected_magic)} -- not an IDX "
                              f"{'image' if expected_magic == IMAGE_MAGIC else 'label'} file")
    if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08:
        raise DataFormatError(f"{path}: magic number 0x{magic:08x} is not an IDX file of unsigned bytes")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataFormatError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataFormatError(f"{path}: {what}: dimensions {dims} need {expected} bytes, the file holds {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def fashion_mnist_files(path=None, download: bool = True, progress: bool = True) -> dict[str, Path]:
    """The four files by role (``train_images`` ...), found or downloaded (see
    :mod:`~neural_networks.datasets.sources`)."""
    return {role: locate_file(NAME, candidates(remote), path=path, remote=remote, download_missing=download,
                              progress=progress, title=TITLE)
            for role, remote in FILES.items()}


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.ndim != 3:
        raise DataFormatError(f"{images_path}: expected 3 dimensions (count, rows, cols), got {images.shape}")
    if labels.ndim != 1:
        raise DataFormatError(f"{labels_path}: expected 1 dimension (count), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                              f"{labels.shape[0]} labels")
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        raise DataFormatError(f"{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of range "
                              f"0..{len(CLASS_NAMES) - 1} ({bad.size} such labels)")
    return images[..., None], labels.astype(np.int64)


def read_fashion_mnist(files: dict) -> dict:
    """Parse and check the four files (by role) -> ``{"train": (X, y), "test": (X, y)}``."""
    train = _read_pair(files["train_images"], files["train_labels"])
    test = _read_pair(files["test_images"], files["test_labels"])
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataFormatError(f"{files['test_images']}: images are {test[0].shape[1:3]}, training images "
                              f"{train[0].shape[1:3]}")
    return {"train": train, "test": test}


def load_fashion_mnist_arrays(path=None, download: bool = True, progress: bool = True, cache: bool = True):
    """``({"train": (X, y), "test": (X, y)}, class_names)`` with ``X`` uint8 ``(m, 28, 28, 1)``
    and ``y`` int64 ``(m,)``. The decompressed arrays are cached as ``.npy`` (beside the files,
    or in the data folder when theirs is read-only, like the system copy)."""
    files = fashion_mnist_files(path, download, progress)

    def build():
        splits = read_fashion_mnist(files)
        arrays = {f"{s}_{k}": a for s, (X, y) in splits.items() for k, a in (("images", X), ("labels", y))}
        return arrays, {"splits": ["train", "test"]}

    others = [files[r] for r in ("train_labels", "test_images", "test_labels")]
    arrays, meta = cached(files["train_images"], "fashion-mnist", build, use_cache=cache, also=others)
    return {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}, list(CLASS_NAMES)


def load_fashion_mnist(batch_size: int = 128, path=None, flatten: bool = True,
                       validation_size=DEFAULT_VALIDATION_SIZE, standardize: bool = True, augment=False,
                       seed: int = 0, split_seed: int = DEFAULT_SPLIT_SEED, download: bool = True,
                       progress: bool = True, cache: bool = True) -> Dataset:
    """Fashion-MNIST as a :class:`Dataset` (train 50,000 / validation 10,000 / test 10,000 by default).

    ``flatten``: inputs ``(m, 784)`` for an MLP, else images ``(m, 28, 28, 1)``. ``standardize``:
    scale to ``[0, 1]`` then standardise with the training split's mean and standard deviation;
    ``False`` only scales. ``validation_size``: count or fraction of the 60,000 training images
    held out (stratified, fixed by ``split_seed``). ``seed`` drives shuffling and augmentation
    (``augment``: ``True`` or names such as ``["flip"]``; off by default)."""
    splits, class_names = load_fashion_mnist_arrays(path, download, progress, cache)
    dataset = make_image_dataset(NAME, splits, class_names, batch_size, validation_size=validation_size,
                                 split_seed=split_seed, seed=seed, standardize=standardize, augment=augment,
                                 flatten=flatten)
    dataset.source = fashion_mnist_files(path, download=False, progress=False)["train_images"].parent
    return dataset
