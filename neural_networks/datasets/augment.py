"""Training-time augmentation of NHWC image batches, vectorised over the batch.

Every random draw comes from the ``numpy.random.Generator`` passed in, so a seeded loader gives
the same augmented batches on every run. Augmentation runs on the uint8 batch, before the
float conversion and standardisation (so the zero padding of a crop is black, as in
torchvision's ``RandomCrop(padding=4)`` applied to the image).

Most augmentations are callables ``(X_batch, rng) -> X_batch``. One that also needs to know
which examples it is given and in which epoch (:func:`alternating_flip`) says so with a true
attribute ``needs_epoch_and_indices``; a :class:`~neural_networks.datasets.loader.DataLoader` then
calls it as ``augment(X_batch, rng, indices=..., epoch=..., seed=...)`` (see :class:`Augmenter`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "AUGMENTATIONS",
    "ALL_AUGMENTATIONS",
    "CROP_PADDINGS",
    "DEFAULT_PAD",
    "DEFAULT_CROP_PADDING",
    "random_crop",
    "random_flip",
    "alternating_flip",
    "example_bits",
    "Augmenter",
    "make_augmenter",
]

#: what ``augment=True`` switches on.
AUGMENTATIONS = ("crop", "flip")
#: every augmentation, in the order an :class:`Augmenter` applies them.
ALL_AUGMENTATIONS = ("crop", "flip", "alternating_flip")
#: how :func:`random_crop` fills the border: ``zeros`` (black), or ``reflect`` (mirrored about
#: the edge pixel, which is not repeated: ``numpy.pad(mode="reflect")``, torch ``F.pad(mode="reflect")``).
CROP_PADDINGS = ("zeros", "reflect")
#: the crop's padding unless a data set or an ``augment`` mapping gives another: 4 black pixels
#: on every side (the constants every loader's ``pad`` and ``crop_padding`` default to).
DEFAULT_PAD = 4
#: How the crop's border is filled unless a data set or an ``augment`` mapping says otherwise.
DEFAULT_CROP_PADDING = "zeros"
_ALIASES = {
    "crop": "crop",
    "random_crop": "crop",
    "flip": "flip",
    "hflip": "flip",
    "random_flip": "flip",
    "horizontal_flip": "flip",
    "alternating_flip": "alternating_flip",
    "alt_flip": "alternating_flip",
}
# The keys of an ``augment`` mapping (:func:`make_augmenter`): the Augmenter's own options.
_MAPPING_KEYS = ("names", "pad", "crop_padding", "flip_p")


def _check_images(X: np.ndarray) -> None:
    if X.ndim != 4:
        raise ValueError(f"augmentation expects an NHWC batch (batch, rows, cols, channels); got shape {X.shape}")


def _check_padding(padding: str) -> str:
    if padding not in CROP_PADDINGS:
        raise ValueError(f"crop_padding must be one of {', '.join(CROP_PADDINGS)}; got {padding!r}")
    return padding


def _check_reflect_pad(pad: int, H: int, W: int) -> None:
    # Reflection about the edge pixel reaches at most size - 1 pixels inward (as numpy's and
    # torch's reflect modes on a single reflection); beyond that there is nothing to mirror.
    if pad > min(H, W) - 1:
        raise ValueError(
            f"crop_padding='reflect' needs pad <= {min(H, W) - 1} for {H}x{W} images (image size - 1); got pad={pad}"
        )


def random_crop(
    X: np.ndarray, rng: np.random.Generator, pad: int = DEFAULT_PAD, padding: str = DEFAULT_CROP_PADDING
) -> np.ndarray:
    """Pad each image by ``pad`` pixels on every side and cut out a window of the original size
    at a random offset: ``out[i, r, c] = P[i, r + dy_i, c + dx_i]`` with ``dy_i, dx_i`` uniform in
    ``[0, 2 * pad]`` and ``P`` the padded batch ``(n, H + 2 pad, W + 2 pad, C)``.

    ``padding``: ``"zeros"`` (0 outside the image) or ``"reflect"`` (the image mirrored about its
    edge pixels, the edge itself not repeated, as ``numpy.pad(mode="reflect")``; needs
    ``pad <= min(H, W) - 1``). ``X``: ``(n, H, W, C)``; returns a new array of the same shape and
    dtype."""
    _check_images(X)
    _check_padding(padding)
    if pad < 0:
        raise ValueError(f"pad must be >= 0; got {pad}")
    n, H, W, C = X.shape
    if pad == 0 or n == 0:
        return X.copy()
    if padding == "reflect":
        _check_reflect_pad(pad, H, W)
        padded = np.empty((n, H + 2 * pad, W + 2 * pad, C), dtype=X.dtype)
    else:
        padded = np.zeros((n, H + 2 * pad, W + 2 * pad, C), dtype=X.dtype)
    padded[:, pad : pad + H, pad : pad + W] = X
    if padding == "reflect":
        # Padded row pad - k mirrors image row k (k = 1..pad), padded row pad + H - 1 + k mirrors
        # image row H - 1 - k. Rows are filled first, then columns over the full padded height,
        # so the corners are mirrored both ways. Slices are taken forward, then reversed, because
        # a backward slice ending before row 0 (pad = H - 1) would be empty.
        p = pad
        padded[:, :p, p : p + W] = X[:, 1 : p + 1][:, ::-1]
        padded[:, p + H :, p : p + W] = X[:, H - 1 - p : H - 1][:, ::-1]
        padded[:, :, :p] = padded[:, :, p + 1 : 2 * p + 1][:, :, ::-1]
        padded[:, :, p + W :] = padded[:, :, W - 1 : p + W - 1][:, :, ::-1]
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    # windows[i, y, x] is the H x W window of image i at offset (y, x): a strided view, so the
    # fancy index below copies one whole window per image (4x faster than indexing every pixel).
    s0, s1, s2, s3 = padded.strides
    windows = np.lib.stride_tricks.as_strided(
        padded, (n, 2 * pad + 1, 2 * pad + 1, H, W, C), (s0, s1, s2, s1, s2, s3), writeable=False
    )
    return windows[np.arange(n), dy, dx]  # (n, H, W, C)


def random_flip(X: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image of ``X`` ``(n, H, W, C)`` left-right with probability ``p``. Returns a new array."""
    _check_images(X)
    flip = rng.random(X.shape[0]) < p
    out = X.copy()
    out[flip] = X[flip, :, ::-1]
    return out


# splitmix64's constants (Steele, Lea and Flood 2014): a bijective mix of 64-bit words whose
# output bits look independent for consecutive inputs.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_FLIP_STREAM = 0xA17F  # separates the flip bits' key from other uses of the same seed


def example_bits(indices: np.ndarray, seed: int | None = 0) -> np.ndarray:
    """A fixed pseudo-random bit per example: bool ``(n,)`` for the data-set ``indices`` ``(n,)``,
    a function of ``(seed, index)`` alone (``None`` counts as seed 0).

    A hash rather than a table drawn from a generator, so the bit of example ``i`` does not
    depend on the size of the data set, the batch it comes in or the order of the batches."""
    key = np.random.SeedSequence([0 if seed is None else int(seed), _FLIP_STREAM]).generate_state(1, np.uint64)[0]
    z = np.asarray(indices).astype(np.uint64) * _GOLDEN + key  # uint64 arithmetic wraps mod 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(63)).astype(bool)


def alternating_flip(X: np.ndarray, indices: np.ndarray, epoch: int, seed: int | None = 0) -> np.ndarray:
    """Mirror images left-right on alternate epochs (Jordan 2024's alternating flip, arXiv:2404.00498).

    Example ``i`` is mirrored in epoch ``e`` iff ``b_i XOR (e odd)``, ``b_i`` a fixed random bit
    (:func:`example_bits` of ``seed``): on even epochs iff ``b_i``, on every later epoch iff it was
    not mirrored in the one before. So any two consecutive epochs show each image once mirrored
    and once not, where independent random flips show a quarter of them the same way twice.

    ``X``: ``(n, H, W, C)``; ``indices``: the examples' ``(n,)`` positions in the data set (not in
    the batch); ``epoch``: the epoch number. Returns a new array; draws no random numbers."""
    _check_images(X)
    indices = np.asarray(indices)
    if indices.shape != (X.shape[0],):
        raise ValueError(
            f"alternating_flip needs one index per image: {X.shape[0]} images, indices shape {indices.shape}"
        )
    flip = example_bits(indices, seed) ^ bool(int(epoch) % 2)
    out = X.copy()
    out[flip] = X[flip, :, ::-1]
    return out


class Augmenter:
    """A callable ``(X_batch, rng) -> X_batch`` applying the named augmentations in the order
    crop, flip, alternating flip. ``X_batch``: ``(n, H, W, C)``, or flattened ``(n, H*W*C)`` when
    ``image_shape`` ``(H, W, C)`` is given; the result has the shape and dtype of ``X_batch``.

    ``pad`` and ``crop_padding`` (``"zeros"`` or ``"reflect"``) configure the crop
    (:func:`random_crop`); ``flip_p`` the random flip. ``flip`` and ``alternating_flip`` both
    mirror images, so they cannot be combined.

    With ``alternating_flip``, :attr:`needs_epoch_and_indices` is true and the call needs the
    keywords ``indices`` (the examples' ``(n,)`` positions in the data set), ``epoch`` and
    optionally ``seed`` (the loader's seed, which fixes each example's flip pattern; default 0):
    ``augmenter(X_batch, rng, indices=..., epoch=..., seed=...)``. A DataLoader passes them."""

    def __init__(
        self,
        names=AUGMENTATIONS,
        pad: int = DEFAULT_PAD,
        flip_p: float = 0.5,
        image_shape=None,
        crop_padding: str = DEFAULT_CROP_PADDING,
    ) -> None:
        if isinstance(names, str):
            names = [names]
        resolved = []
        for name in names:
            key = str(name).lower().replace("-", "_")
            if key not in _ALIASES:
                raise ValueError(f"unknown augmentation {name!r}; valid names: {', '.join(ALL_AUGMENTATIONS)}")
            if _ALIASES[key] not in resolved:
                resolved.append(_ALIASES[key])
        if "flip" in resolved and "alternating_flip" in resolved:
            raise ValueError("augmentations 'flip' and 'alternating_flip' both mirror images; list only one of them")
        self.names = tuple(n for n in ALL_AUGMENTATIONS if n in resolved)
        if isinstance(pad, bool) or int(pad) != pad or pad < 0:
            raise ValueError(f"pad must be an int >= 0; got {pad!r}")
        self.pad = int(pad)
        self.crop_padding = _check_padding(crop_padding)
        self.flip_p = float(flip_p)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        if self.image_shape is not None and "crop" in self.names and self.crop_padding == "reflect" and self.pad:
            _check_reflect_pad(self.pad, *self.image_shape[:2])  # fail when the data set loads, not mid-epoch

    @property
    def needs_epoch_and_indices(self) -> bool:
        """Whether calls need the ``indices=``, ``epoch=`` (and ``seed=``) keywords."""
        return "alternating_flip" in self.names

    def __call__(
        self,
        X: np.ndarray,
        rng: np.random.Generator,
        *,
        indices: np.ndarray | None = None,
        epoch: int | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        if self.needs_epoch_and_indices and (indices is None or epoch is None):
            raise ValueError(
                "alternating_flip needs the examples' data-set indices and the epoch: "
                "call augmenter(X, rng, indices=..., epoch=...) (a DataLoader does)"
            )
        shape = X.shape
        if X.ndim == 2 and self.image_shape is not None:
            X = X.reshape((shape[0],) + self.image_shape)
        if "crop" in self.names:
            X = random_crop(X, rng, self.pad, self.crop_padding)
        if "flip" in self.names:
            X = random_flip(X, rng, self.flip_p)
        if "alternating_flip" in self.names:
            X = alternating_flip(X, indices, epoch, seed)
        return X.reshape(shape)

    def __repr__(self) -> str:
        return (
            f"Augmenter({list(self.names)}, pad={self.pad}, crop_padding={self.crop_padding!r}, flip_p={self.flip_p})"
        )


def make_augmenter(
    augment, image_shape=None, pad: int = DEFAULT_PAD, crop_padding: str = DEFAULT_CROP_PADDING
) -> Augmenter | None:
    """An :class:`Augmenter` from a loader's ``augment`` option: ``True`` (crop and flip), a name
    or list of names, a mapping of the Augmenter's options (``names`` required; ``pad``,
    ``crop_padding``, ``flip_p`` override the keywords here), e.g. from a config
    ``augment: {names: [alternating_flip, crop], pad: 2, crop_padding: reflect}``, an
    :class:`Augmenter` or any callable (returned as is); ``False``/``None`` or no names give ``None``."""
    if augment is None or augment is False:
        return None
    options = {"pad": pad, "crop_padding": crop_padding}
    if augment is True:
        return Augmenter(AUGMENTATIONS, image_shape=image_shape, **options)
    if isinstance(augment, Augmenter) or (callable(augment) and not isinstance(augment, str)):
        return augment
    if isinstance(augment, Mapping):
        unknown = sorted(set(map(str, augment)) - set(_MAPPING_KEYS))
        if unknown or "names" not in augment:
            problem = f"unknown key {unknown[0]!r}" if unknown else "no 'names'"
            raise ValueError(f"augment mapping: {problem}; valid keys: {', '.join(_MAPPING_KEYS)} (names required)")
        options.update({k: v for k, v in augment.items() if k != "names"})
        augment = augment["names"]
    names = [augment] if isinstance(augment, str) else list(augment)
    return Augmenter(names, image_shape=image_shape, **options) if names else None
