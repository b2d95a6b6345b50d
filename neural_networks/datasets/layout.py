"""The layout of an image-folder tree (``<split>/<class>/<image>``, see
:mod:`~neural_networks.datasets.image_folder`): the split folder names, and the checks of its
folders that its images alone cannot show.

A folder the loader would otherwise pass over without a word is refused instead: a class folder
holding no images (empty, or only files that are not images) would silently give one class fewer,
and a split folder holding none would silently be no split. When the classes are taken from the
training folders, every other split must have a folder for each of them (with ``class_names``
given, a split may hold fewer: the names fix the labels).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .sources import DataFormatError

__all__ = ["SPLIT_NAMES", "IMAGE_EXTENSIONS", "split_of", "is_hidden", "check_folders"]

#: Folder names accepted for each split.
SPLIT_NAMES = {
    "train": ("train", "training"),
    "validation": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
#: The file suffixes (any case) read as images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def split_of(folder: str) -> str | None:
    """``"train"``, ``"validation"`` or ``"test"`` for a split folder's name (any case), else ``None``."""
    folder = folder.lower()
    for split, names in SPLIT_NAMES.items():
        if folder in names:
            return split
    return None


def is_hidden(rel: str) -> bool:
    """Whether a relative path is in a hidden folder or file, or in ``__MACOSX`` (skipped)."""
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(rel).parts)


def check_folders(path, prefix: tuple, entries, folders, class_names_given: bool) -> None:
    """Refuse, with a one-line :class:`DataFormatError` naming ``path`` and the folder, a split or
    class folder holding no images, and (unless ``class_names_given``) a validation or test split
    without a folder for one of the training classes.

    ``prefix``: the leading folders of every image (``()`` or e.g. ``("cifar10-jpeg",)``);
    ``entries``: ``(split, class folder, relative path, ...)`` per image; ``folders``: the folders
    of the source's files and its folder entries, as stored (:func:`~.archives.iter_files`'s
    ``folders``: ``./train/cat``, ``train/cat/``), hidden ones and ``__MACOSX`` then left out."""
    depth = len(prefix)
    with_images = {(e[0], e[1]) for e in entries}
    shown = set()  # each folder and its parents, normalised
    for folder in folders:
        if not is_hidden(folder):
            stored = PurePosixPath(folder)
            shown.update(p.as_posix() for p in (stored, *stored.parents) if p.parts)
    split_folders: dict[str, str] = {}  # split -> the relative path of its folder
    for rel in sorted(shown):
        parts = PurePosixPath(rel).parts
        if parts[:depth] != prefix or len(parts) not in (depth + 1, depth + 2):
            continue
        split = split_of(parts[depth])
        if split is None:
            continue  # not a split folder: it holds no image (else the layout error came first)
        if len(parts) == depth + 1:
            split_folders.setdefault(split, rel)
            if not any(s == split for s, _ in with_images):
                raise DataFormatError(
                    f"{path}: {rel}: split folder {parts[depth]!r} holds no images; put its class folders "
                    "of images there or remove it"
                )
        elif (split, parts[depth + 1]) not in with_images:
            raise DataFormatError(
                f"{path}: {rel}: class folder {parts[depth + 1]!r} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}); put its images there or remove it"
            )
    if class_names_given:
        return
    training = sorted(c for s, c in with_images if s == "train")
    for split in ("validation", "test"):
        present = {c for s, c in with_images if s == split}
        missing = [c for c in training if c not in present]
        if present and missing:
            rel = split_folders.get(split) or "/".join(prefix + (split,))
            raise DataFormatError(
                f"{path}: {rel}: split folder {PurePosixPath(rel).name!r} has no class folder "
                f"{', '.join(map(repr, missing))} (the training classes: {', '.join(training)}); add "
                "them, or pass class_names= (data.class_names in a config) to allow a split with fewer classes"
            )
