"""CIFAR-10 (Krizhevsky, 2009): 60,000 32x32 RGB images in 10 classes.

Two sources are understood, told apart by their content:

* the canonical ``cifar-10-python.tar.gz`` (or its extracted ``cifar-10-batches-py`` folder):
  pickled batches ``data_batch_1..5`` and ``test_batch`` (dicts with ``b"data"`` uint8
  ``(10000, 3072)`` in CHW order and ``b"labels"``) and ``batches.meta``. They are unpickled with
  a restricted unpickler that only lets numpy arrays be rebuilt, so a malicious file cannot run code;
* an image-folder tree or archive (``<split>/<class>/*.jpg``), such as ``cifar10-jpeg.tar.gz``
  (50,000 training and 5,000 test JPEGs).

Images come out NHWC uint8 ``(m, 32, 32, 3)``. By default 5,000 training images (500 per class)
are held out for validation (``DEFAULT_VALIDATION_SIZE``), fixed by ``split_seed``.
"""

from __future__ import annotations

import io
import lzma
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from ..progress import progress_bar as tqdm

from .archives import archive_kind, open_decompressed
from .augment import DEFAULT_CROP_PADDING, DEFAULT_PAD
from .cache import cached
from .dataset import Dataset
from .image_dataset import make_image_dataset
from .image_folder import load_image_folder_arrays
from .limits import DEFAULT_MAX_BYTES, MAX_IMAGE_BYTES, LimitedReader
from .loader import DEFAULT_BATCH_SIZE
from .sources import DataFormatError, DataNotFoundError, RemoteFile, dataset_dir, file_digests, find_file, locate_file
from .spec import DatasetSpec, FileCheck
from .splits import DEFAULT_SPLIT_SEED

__all__ = [
    "CLASS_NAMES",
    "CANONICAL",
    "JPEG_ARCHIVE_SHA256",
    "DEFAULT_VALIDATION_SIZE",
    "TRAIN_BATCHES",
    "TEST_BATCH",
    "unpickle",
    "read_cifar_batch",
    "cifar10_format",
    "cifar10_source",
    "load_cifar10_arrays",
    "load_cifar10",
    "CIFAR10Spec",
    "SPEC",
]

NAME = "cifar10"
TITLE = "CIFAR-10"
#: The ten class names, in label order.
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: The canonical archive, ``cifar-10-python.tar.gz``: its URL and published md5.
CANONICAL = RemoteFile(
    "cifar-10-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
#: The sha256 that ``data verify`` checks ``cifar10-jpeg.tar.gz`` (the JPEG image-folder archive) against.
JPEG_ARCHIVE_SHA256 = "21b0f3e1399c8774edb8f9a3a45e3cbd8aee2d88eaa94327e07613d5ac85c284"
#: The canonical archive's pickled training batches (10,000 images each).
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
#: The canonical archive's pickled test batch (10,000 images).
TEST_BATCH = "test_batch"
META = "batches.meta"
BATCH_FOLDER = "cifar-10-batches-py"
#: Training images held out for validation by default (500 per class).
DEFAULT_VALIDATION_SIZE = 5_000
#: File names looked for in the data folder, in order.
CANDIDATES = [CANONICAL.name, BATCH_FOLDER, JPEG_ARCHIVE, "cifar10-jpeg"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only the globals needed to rebuild numpy arrays (and bytes pickled by Python 3 at
    protocol 2); any other global (``os.system``, ``builtins.eval`` ...) is refused."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:  # numpy >= 2 (numpy.core is a deprecated alias there)
                from numpy._core import multiarray
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core import multiarray
            return getattr(multiarray, name)
        return super().find_class(module, name)


def unpickle(data: bytes, name: str):
    """Unpickle a CIFAR batch (``encoding="bytes"``) safely; errors become :class:`DataFormatError`."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataFormatError(f"{name}: not a valid CIFAR-10 pickle ({type(err).__name__}: {err})") from err


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def read_cifar_batch(data: bytes, name: str, n_classes: int = len(CLASS_NAMES)) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> ``(images uint8 (n, 32, 32, 3) NHWC, labels int64 (n,))``, validated."""
    batch = unpickle(data, name)
    if not isinstance(batch, dict):
        raise DataFormatError(f"{name}: expected a dict, found {type(batch).__name__}")
    raw, labels = _get(batch, "data"), _get(batch, "labels")
    if raw is None or labels is None:
        raise DataFormatError(f"{name}: missing 'data' or 'labels' entry (keys: {sorted(map(str, batch))})")
    raw = np.asarray(raw)
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{name}: 'data' must be uint8 of shape (n, 3072); found {raw.dtype} {raw.shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{name}: 'labels' are not integers ({err})") from err
    if labels.shape != (raw.shape[0],):
        raise DataFormatError(f"{name}: {raw.shape[0]} images but {labels.size} labels")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise DataFormatError(
            f"{name}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of range 0..{n_classes - 1}"
        )
    images = np.ascontiguousarray(raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _pickle_members(path: Path, progress: bool, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes]:
    """The batch files' bytes by base name, from the tarball or a folder. The tarball is never
    decompressed past ``max_bytes``, a folder's batch files together may not exceed it, and no
    batch file may exceed ``MAX_IMAGE_BYTES`` (64 MB; a real batch is 31 MB): else
    :class:`DataFormatError` naming the file. Sizes are checked before anything is read."""
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META}
    found: dict[str, bytes] = {}
    if path.is_dir():
        folder = path / BATCH_FOLDER if (path / BATCH_FOLDER).is_dir() else path
        files = {name: folder / name for name in sorted(wanted) if (folder / name).is_file()}
        sizes = {name: file.stat().st_size for name, file in files.items()}
        for name, size in sizes.items():
            if size > MAX_IMAGE_BYTES:
                raise DataFormatError(
                    f"{files[name]}: {size} bytes, more than the {MAX_IMAGE_BYTES} allowed for one batch file"
                )
        if sum(sizes.values()) > max_bytes:
            raise DataFormatError(
                f"{folder}: its batch files hold {sum(sizes.values())} bytes, more than the limit of "
                f"{max_bytes} (max_bytes=, data.max_bytes in a config, reads more)"
            )
        return {name: file.read_bytes() for name, file in files.items()}
    try:
        with open_decompressed(path) as raw, io.BufferedReader(LimitedReader(raw, max_bytes, path)) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                for member in tqdm(tf, desc=f"reading {path.name}", unit="file", disable=not progress, leave=False):
                    base = PurePosixPath(member.name).name
                    if member.isfile() and base in wanted:
                        if member.size > MAX_IMAGE_BYTES:
                            raise DataFormatError(
                                f"{path}: {member.name}: {member.size} bytes, more than the {MAX_IMAGE_BYTES} "
                                "allowed for one batch file"
                            )
                        found[base] = tf.extractfile(member).read()
            while stream.read(1 << 20):  # to the end, so a truncated file is noticed
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise DataFormatError(f"{path}: corrupt or truncated archive ({type(err).__name__}: {err})") from err
    return found


def read_cifar10_pickles(path, progress: bool = True, max_bytes: int = DEFAULT_MAX_BYTES):
    """Decode the canonical pickled batches (tarball or folder), no cache, reading at most
    ``max_bytes`` (decompressed). Returns ``({"train": (X, y), "test": (X, y)}, class_names)``."""
    path = Path(path)
    members = _pickle_members(path, progress, max_bytes)
    missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if n not in members]
    if missing:
        raise DataFormatError(
            f"{path}: missing {', '.join(missing)} (a CIFAR-10 python archive holds "
            f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH} and {META})"
        )
    class_names = list(CLASS_NAMES)
    if META in members:
        meta = unpickle(members[META], f"{path}: {META}")
        names = _get(meta, "label_names") if isinstance(meta, dict) else None
        if names is not None:
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    parts = [read_cifar_batch(members[n], f"{path}: {n}", len(class_names)) for n in TRAIN_BATCHES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = read_cifar_batch(members[TEST_BATCH], f"{path}: {TEST_BATCH}", len(class_names))
    return {"train": train, "test": test}, class_names


def cifar10_format(path) -> str:
    """``"pickle"`` for the canonical python batches (tarball or folder), ``"image_folder"`` for a
    tree or archive of images. Looks only at the first file entries of an archive."""
    path = Path(path)
    kind = archive_kind(path)
    if kind == "dir":
        if (path / "data_batch_1").is_file() or (path / BATCH_FOLDER / "data_batch_1").is_file():
            return "pickle"
        return "image_folder"
    if kind in ("zip", "image"):
        return "image_folder"  # one image: read_image_folder says it is not a <split>/<class> tree
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for member in tf:
                if member.isfile():
                    base = PurePosixPath(member.name).name
                    if base in TRAIN_BATCHES or base in (TEST_BATCH, META, "readme.html"):
                        return "pickle"
                    if base.lower().endswith((".png", ".jpg", ".jpeg")):
                        return "image_folder"
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataFormatError(f"{path}: corrupt or truncated archive ({type(err).__name__}: {err})") from err
    raise DataFormatError(f"{path}: neither CIFAR-10 python batches nor an image folder")


def cifar10_source(path=None, download: bool = True, progress: bool = True) -> Path:
    """The CIFAR-10 file or folder to read: ``path`` if given, else the first of ``CANDIDATES`` in
    the data folder, else the canonical tarball downloaded there (md5-checked)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(
                f"{TITLE}: {path} does not exist; pass the path of {CANONICAL.name}, its "
                f"extracted {BATCH_FOLDER} folder or an image-folder tree/archive"
            )
        return path
    found = find_file(NAME, CANDIDATES)
    if found is not None:
        return found[0]
    return locate_file(
        NAME, [CANONICAL.name], remote=CANONICAL, download_missing=download, progress=progress, title=TITLE
    )


def load_cifar10_arrays(
    path=None, download: bool = True, progress: bool = True, cache: bool = True, max_bytes: int = DEFAULT_MAX_BYTES
):
    """``({"train": (X, y), "test": (X, y)}, class_names)``, ``X`` uint8 ``(m, 32, 32, 3)``, from the
    canonical batches or an image folder (decoded sets are cached). ``max_bytes`` bounds the bytes
    read (decompressed) from the source, 4 GiB by default (the canonical release holds 178 MB)."""
    source = cifar10_source(path, download, progress)
    if cifar10_format(source) == "image_folder":
        splits, names = load_image_folder_arrays(
            source, class_names=CLASS_NAMES, color_mode="rgb", progress=progress, cache=cache, max_bytes=max_bytes
        )
        X = splits["train"][0]
        if X.shape[1:] != (32, 32, 3):
            raise DataFormatError(f"{source}: CIFAR-10 images are 32x32 RGB; found {X.shape[1:]}")
        return splits, names

    def build():
        splits, names = read_cifar10_pickles(source, progress, max_bytes)
        arrays = {
            "train_images": splits["train"][0],
            "train_labels": splits["train"][1],
            "test_images": splits["test"][0],
            "test_labels": splits["test"][1],
        }
        return arrays, {"class_names": names, "splits": ["train", "test"]}

    arrays, meta = cached(source, "cifar10-pickle", build, use_cache=cache)
    splits = {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}
    return splits, list(meta["class_names"])


def load_cifar10(
    batch_size: int = DEFAULT_BATCH_SIZE,
    path=None,
    validation_size=DEFAULT_VALIDATION_SIZE,
    standardize: bool = True,
    augment=False,
    seed: int = 0,
    split_seed: int = DEFAULT_SPLIT_SEED,
    flatten: bool = False,
    pad: int = DEFAULT_PAD,
    crop_padding: str = DEFAULT_CROP_PADDING,
    download: bool = True,
    progress: bool = True,
    cache: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """CIFAR-10 as a :class:`Dataset` of NHWC images (train 45,000 / validation 5,000 / test 10,000
    from the canonical release; the JPEG archive's test split has 5,000).

    ``path``: the canonical tarball or folder, or an image-folder tree/archive (told apart by
    content). ``standardize``: scale to ``[0, 1]`` and standardise per channel with the training
    split's statistics (else only scale). ``augment``: ``True`` (random crop with 4-pixel padding
    and horizontal flip) or names; off by default, toggled later with ``train.augmenting``.
    ``pad`` and ``crop_padding`` (``"zeros"`` or ``"reflect"``): the crop's padding. ``max_bytes``
    (``data.max_bytes``): the most bytes read from the source, decompressed (4 GiB by default)."""
    source = cifar10_source(path, download, progress)
    splits, class_names = load_cifar10_arrays(source, download, progress, cache, max_bytes)
    dataset = make_image_dataset(
        NAME,
        splits,
        class_names,
        batch_size,
        validation_size=validation_size,
        split_seed=split_seed,
        seed=seed,
        standardize=standardize,
        augment=augment,
        flatten=flatten,
        pad=pad,
        crop_padding=crop_padding,
    )
    dataset.source = source
    return dataset


class CIFAR10Spec(DatasetSpec):
    """CIFAR-10's :class:`~.spec.DatasetSpec`: read from :func:`cifar10_source`; the canonical
    tarball verifies by md5, the JPEG archive by sha256 (the module's ``CANONICAL`` and
    ``JPEG_ARCHIVE_SHA256``, read at each call)."""

    description = "CIFAR-10: 60,000 32x32 RGB images, 10 classes (cifar-10-python.tar.gz or an image folder)"
    verifiable = True
    load = staticmethod(load_cifar10)

    def source(self, path=None) -> Path:
        return cifar10_source(path, download=False)

    def availability(self, path=None) -> dict:
        if path is not None:
            found = (Path(path).expanduser(), "explicit path") if Path(path).expanduser().exists() else None
        else:
            found = find_file(NAME, CANDIDATES)
        row = {
            "found": found is not None,
            "path": str(found[0]) if found else None,
            "where": found[1] if found else None,
        }
        if found is None and path is not None:
            row["message"] = "no such file or folder"
        elif found is None:
            row["message"] = (
                f"not in {dataset_dir(NAME)}; will download {CANONICAL.url} on first use, "
                "or pass path= (e.g. an image-folder archive)"
            )
        return row

    def verify(self, path=None) -> list[FileCheck]:
        """One check: the canonical tarball by md5 or the JPEG archive by sha256 (told by content,
        then by name); a folder, or another file, is ``"unknown"``."""
        try:
            source = self.source(path)
        except DataNotFoundError as err:
            return [FileCheck(CANONICAL.name, None, "missing", message=str(err))]
        if source.is_dir():
            return [FileCheck(source.name, str(source), "unknown", message="a folder has no published checksum")]
        digests = file_digests(source, ("md5", "sha256"))
        published = (("md5", CANONICAL.name, CANONICAL.md5), ("sha256", JPEG_ARCHIVE, JPEG_ARCHIVE_SHA256))
        for algorithm, _, expected in published:
            if digests[algorithm] == expected:
                return [FileCheck(source.name, str(source), "ok", algorithm, expected, digests[algorithm])]
        for algorithm, file_name, expected in published:
            if source.name == file_name:
                return [FileCheck(source.name, str(source), "mismatch", algorithm, expected, digests[algorithm])]
        return [
            FileCheck(
                source.name,
                str(source),
                "unknown",
                "sha256",
                None,
                digests["sha256"],
                message="not a file with a published checksum",
            )
        ]


#: CIFAR-10's entry in :data:`~neural_networks.datasets.DATASETS`.
SPEC = CIFAR10Spec()
