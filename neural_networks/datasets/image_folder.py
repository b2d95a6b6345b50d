"""Image-folder data sets: ``<root>/<split>/<class>/<image>.png|jpg|jpeg``.

The tree may be a folder or a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive of it; an archive
may put the tree under leading folders (``cifar10-jpeg/train/cat/0001.jpg``), which must be the
same for every image. Splits are ``train`` and ``test`` (both required) and optionally ``val``/
``valid``/``validation``. Classes are the training split's folders sorted by name unless
``class_names`` gives them (then label ``i`` is ``class_names[i]`` and a folder not in the list is an
error). Hidden files, ``__MACOSX`` and non-image files are skipped, but a class or split folder
holding no images is an error, and so is a split without one of the training classes when the
classes come from the folders (see :mod:`~neural_networks.datasets.layout`).

All images must have the same size and colour mode: ``color_mode="rgb"`` or ``"grayscale"``
converts every image; ``"auto"`` takes the mode of the first image (grayscale or RGB) and treats
an image of the other kind as an error naming the file. Decoded sets are cached as uint8 ``.npy``
(see :mod:`~neural_networks.datasets.cache`). The files are read by :mod:`.archives` and decoded
by :mod:`.decoding`; :func:`load_images` reads unlabelled images for prediction the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import numpy as np

from .archives import archive_kind, iter_files
from .augment import DEFAULT_CROP_PADDING, DEFAULT_PAD
from .cache import cached
from .dataset import Dataset
from .decoding import COLOR_MODES, decode, decode_all, decode_image, default_workers
from .image_dataset import DEFAULT_VALIDATION_SIZE, make_image_dataset
from .layout import IMAGE_EXTENSIONS, SPLIT_NAMES, check_folders
from .layout import split_of as _split_of
from .limits import DEFAULT_MAX_BYTES
from .loader import DEFAULT_BATCH_SIZE
from .splits import DEFAULT_SPLIT_SEED
from .sources import DataFormatError, DataNotFoundError, data_home
from .spec import DatasetSpec, FileCheck

__all__ = [
    "read_image_folder",
    "load_image_folder_arrays",
    "load_image_folder",
    "load_images",
    "ImageFolderSpec",
    "SPEC",
]


def read_image_folder(
    path,
    class_names=None,
    color_mode: str = "auto",
    progress: bool = True,
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Decode an image-folder tree or archive (no cache). Returns
    ``({split: (images uint8 (m, H, W, C), labels int64 (m,))}, class_names)``; within a split the
    examples are ordered by class, then file path. The layout (splits, class folders) is checked
    before any image is decoded. ``workers``: decoding processes (default: the CPU count for
    sets of 4,000 images or more, else 1). ``max_bytes``: the most bytes read from the source
    (decompressed; default :data:`DEFAULT_MAX_BYTES`), beyond which it is refused."""
    path = Path(path)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}; got {color_mode!r}")
    prefix = None
    entries = []  # (split, class folder, rel, bytes)
    folders: set = set()
    for rel, data in iter_files(path, progress, desc=f"reading {path.name}", max_bytes=max_bytes, folders=folders):
        parts = PurePosixPath(rel).parts
        where = f"{path}: {rel}"
        if len(parts) < 3 or (prefix is not None and parts[:-3] != prefix):
            expected = "/".join(prefix + ("<split>", "<class>", "<image>")) if prefix else "<split>/<class>/<image>"
            raise DataFormatError(f"{where}: image is not at {expected} like the others")
        prefix = parts[:-3] if prefix is None else prefix
        split = _split_of(parts[-3])
        if split is None:
            valid = ", ".join(n for names in SPLIT_NAMES.values() for n in names)
            raise DataFormatError(f"{where}: {parts[-3]!r} is not a split folder (expected one of: {valid})")
        entries.append((split, parts[-2], rel, data))
    if not entries:
        raise DataFormatError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    check_folders(path, prefix, entries, folders, class_names_given=class_names is not None)
    present = {e[0] for e in entries}
    for required in ("train", "test"):
        if required not in present:
            raise DataFormatError(
                f"{path}: missing split folder {SPLIT_NAMES[required][0]!r} (found: {', '.join(sorted(present))})"
            )
    if class_names is None:
        class_names = sorted({e[1] for e in entries if e[0] == "train"})
    class_names = [str(c) for c in class_names]
    index = {c: i for i, c in enumerate(class_names)}
    for split, folder, rel, _ in entries:
        if folder not in index:
            raise DataFormatError(
                f"{path}: {rel}: class folder {folder!r} is not one of the classes ({', '.join(class_names)})"
            )
    order = {"train": 0, "validation": 1, "test": 2}
    entries.sort(key=lambda e: (order[e[0]], index[e[1]], e[2]))

    first_image, first_kind = decode(
        entries[0][3], f"{path}: {entries[0][2]}", None if color_mode == "auto" else color_mode
    )
    target = first_kind if color_mode == "auto" else color_mode
    workers = default_workers(len(entries)) if workers is None else max(1, int(workers))
    decoded = decode_all(
        [e[3] for e in entries],
        [f"{path}: {e[2]}" for e in entries],
        target,
        workers,
        progress,
        f"decoding {path.name}",
    )
    first_rel = entries[0][2]
    for (split, folder, rel, _), (image, kind) in zip(entries, decoded):
        if color_mode == "auto" and kind != first_kind:
            raise DataFormatError(
                f"{path}: {rel}: image is {kind} but {first_rel} is {first_kind}; all images "
                "must have the same colour mode (pass color_mode='rgb' or 'grayscale' to "
                "convert them)"
            )
        if image.shape != first_image.shape:
            raise DataFormatError(
                f"{path}: {rel}: image is {image.shape[1]}x{image.shape[0]} but {first_rel} is "
                f"{first_image.shape[1]}x{first_image.shape[0]}; all images must have the same size"
            )
    splits = {}
    for split in sorted(present, key=order.get):
        picked = [i for i, e in enumerate(entries) if e[0] == split]
        images = np.empty((len(picked),) + first_image.shape, dtype=np.uint8)
        for j, i in enumerate(picked):
            images[j] = decoded[i][0]
        labels = np.array([index[entries[i][1]] for i in picked], dtype=np.int64)
        splits[split] = (images, labels)
    return splits, class_names


def _tag(class_names, color_mode: str) -> str:
    classes = hashlib.sha256("\0".join(class_names or []).encode()).hexdigest()[:8] if class_names else "sorted"
    return f"imagefolder-{color_mode}-{classes}"


def load_image_folder_arrays(
    path,
    class_names=None,
    color_mode: str = "auto",
    progress: bool = True,
    cache: bool = True,
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """:func:`read_image_folder` through the cache: the first call decodes (with a progress bar)
    and writes uint8 ``.npy`` files; later calls on the unchanged source read those."""
    path = Path(path).expanduser()
    archive_kind(path)  # clear error for a missing or unsupported path before touching the cache

    def build():
        splits, names = read_image_folder(path, class_names, color_mode, progress, workers, max_bytes)
        arrays = {}
        for split, (X, y) in splits.items():
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = X, y
        return arrays, {"class_names": names, "splits": list(splits)}

    arrays, meta = cached(path, _tag(class_names, color_mode), build, use_cache=cache)
    splits = {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in meta["splits"]}
    return splits, list(meta["class_names"])


def load_image_folder(
    path=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    class_names=None,
    color_mode: str = "auto",
    validation_size=DEFAULT_VALIDATION_SIZE,
    standardize: bool = True,
    augment=False,
    seed: int = 0,
    split_seed: int = DEFAULT_SPLIT_SEED,
    flatten: bool = False,
    pad: int = DEFAULT_PAD,
    crop_padding: str = DEFAULT_CROP_PADDING,
    progress: bool = True,
    cache: bool = True,
    name: str = "image_folder",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """Any image-folder tree or archive as a :class:`Dataset` of uint8 NHWC images. Without a
    validation split folder, ``validation_size`` (count or fraction) of ``train`` is held out,
    stratified and fixed by ``split_seed``. See :func:`~neural_networks.datasets.image_dataset.make_image_dataset`
    for ``standardize``, ``augment``, ``seed``, ``flatten``, ``pad`` and ``crop_padding``; ``max_bytes`` bounds the bytes read
    from the source (decompressed, default :data:`~.limits.DEFAULT_MAX_BYTES`). ``ValueError``
    without ``path``; :class:`DataNotFoundError` for a path that is not there;
    :class:`DataFormatError` naming the file for a bad layout, archive or image."""
    if path is None:
        raise ValueError("the image_folder data set needs path=<folder or archive of <split>/<class>/<image>>")
    splits, names = load_image_folder_arrays(path, class_names, color_mode, progress, cache, max_bytes=max_bytes)
    dataset = make_image_dataset(
        name,
        splits,
        names,
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
    dataset.source = Path(path)
    return dataset


def load_images(
    path,
    like=None,
    color_mode: str | None = None,
    progress: bool = True,
    return_names: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Unlabelled images for prediction (one image file, or a folder or archive of image files,
    any depth), sorted by relative path (that order is the submission's Id order). Returns uint8 images
    ``(m, H, W, C)``, or ``(images, relative paths)`` with ``return_names``.

    ``like``: a :class:`Dataset` whose inputs the images must match: colour mode from its channel
    count, size checked (an image of another size is an error naming it), and the result reshaped
    to its input shape (flattened for an MLP). Without it, ``color_mode`` (default ``"rgb"``)."""
    shape = None
    if like is not None:
        image_shape = getattr(like, "image_shape", None) or tuple(like.train.X.shape[1:])
        if len(image_shape) != 3:
            raise ValueError(f"data set {like.name!r} does not hold images (input shape {image_shape})")
        shape = image_shape
        color_mode = color_mode or ("grayscale" if image_shape[2] == 1 else "rgb")
    color_mode = color_mode or "rgb"
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"color_mode must be 'rgb' or 'grayscale'; got {color_mode!r}")
    items = []
    single = archive_kind(path) == "image"
    for rel, data in iter_files(path, progress, desc=f"reading {Path(path).name}", max_bytes=max_bytes):
        image = decode_image(data, str(path) if single else f"{path}: {rel}", color_mode)
        expected = shape or (items[0][1].shape if items else image.shape)
        if image.shape != expected:
            raise DataFormatError(
                f"{path}: {rel}: image is {image.shape[1]}x{image.shape[0]}x{image.shape[2]}, "
                f"expected {expected[1]}x{expected[0]}x{expected[2]} like "
                f"{'the training images' if shape else items[0][0]}"
            )
        items.append((rel, image))
    if not items:
        raise DataFormatError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    items.sort(key=lambda item: item[0])
    images = np.stack([image for _, image in items])
    if like is not None:
        images = images.reshape((images.shape[0],) + tuple(like.train.X.shape[1:]))
    return (images, [rel for rel, _ in items]) if return_names else images


class ImageFolderSpec(DatasetSpec):
    """The ``image_folder`` data set's :class:`~.spec.DatasetSpec`: it has no default location
    (every call needs ``path``) and no published checksum."""

    description = "any <split>/<class>/<image> tree or .tar/.tar.gz/.zip of one (needs path)"
    load = staticmethod(load_image_folder)

    def source(self, path=None) -> Path:
        if path is None:
            raise DataNotFoundError("the image_folder data set has no default location; pass its path")
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"{path}: no such file or folder")
        return path

    def availability(self, path=None) -> dict:
        found = path is not None and Path(path).expanduser().exists()
        message = "no such file or folder" if path is not None else f"needs a path (data folder: {data_home()})"
        return {
            "found": found,
            "path": str(path) if found else None,
            "where": "explicit path" if found else None,
            "message": "" if found else message,
        }

    def verify(self, path=None) -> list[FileCheck]:
        path = self.source(path)
        return [FileCheck(path.name, str(path), "unknown", message="image folders have no published checksum")]


#: The image folder's entry in :data:`~neural_networks.datasets.DATASETS` (it needs a ``path``).
SPEC = ImageFolderSpec()
