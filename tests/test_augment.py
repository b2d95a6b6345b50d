"""Alternating flip and reflection-padded random crops (neural_networks.datasets.augment), and
how the DataLoader feeds epoch and example indices to augmenters that ask for them."""

from __future__ import annotations

import unittest

import numpy as np
import yaml

from neural_networks.datasets import DataLoader, augment
from neural_networks.datasets.image_dataset import make_image_dataset

N, H, W, C = 37, 6, 9, 3  # an odd size, so the last batch is short for most batch sizes


def images(n=N, seed=0) -> np.ndarray:
    # Random pixels: no image equals its mirror image, so a batch shows which images were flipped.
    return np.random.default_rng(seed).integers(0, 256, (n, H, W, C), dtype=np.uint8)


def loader(X, batch_size=8, shuffle=True, seed=5, aug=("alt_flip",), **options) -> DataLoader:
    """A loader whose labels are the examples' indices, so each batch row names its example."""
    aug = augment.Augmenter(aug, image_shape=(H, W, C), **options) if isinstance(aug, tuple) else aug
    return DataLoader(X, np.arange(len(X)), len(X), batch_size, shuffle=shuffle, augment=aug, seed=seed)


def flipped(data: DataLoader, X: np.ndarray, epoch: int | None) -> np.ndarray:
    """Bool ``(n,)``: which examples the pass of ``epoch`` (the next pass if None) shows mirrored."""
    if epoch is not None:
        data.set_epoch(epoch)
    out = np.full(len(X), -1)
    for batch, Y in data:
        for x, i in zip(batch.reshape((-1, H, W, C)), Y.argmax(axis=1)):
            plain, mirrored = np.array_equal(x, X[i]), np.array_equal(x, X[i, :, ::-1])
            assert plain != mirrored and out[i] == -1, "each example once, either plain or mirrored"
            out[i] = mirrored
    assert (out >= 0).all(), "every example seen"
    return out.astype(bool)


def reference_crop(X, pad, padding, seed):
    """Slow per-image reference: np.pad each image, then cut the window at the offsets
    random_crop documents (dy for all images, then dx, uniform in [0, 2 pad])."""
    rng = np.random.default_rng(seed)
    dy = rng.integers(0, 2 * pad + 1, size=len(X))
    dx = rng.integers(0, 2 * pad + 1, size=len(X))
    mode = "constant" if padding == "zeros" else "reflect"
    out = []
    for x, y0, x0 in zip(X, dy, dx):
        p = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode=mode)
        out.append(p[y0 : y0 + x.shape[0], x0 : x0 + x.shape[1]])
    return np.stack(out), dy, dx


class TestAlternatingFlip(unittest.TestCase):
    def setUp(self) -> None:
        self.X = images()

    def test_consecutive_epochs_show_each_image_once_each_way(self):
        data = loader(self.X)
        pattern = [flipped(data, self.X, e) for e in range(5)]
        for e in range(4):
            np.testing.assert_array_equal(pattern[e + 1], ~pattern[e])
        self.assertTrue(5 < pattern[0].sum() < N - 5)  # the per-example bits are random, not all equal
        bits = augment.example_bits(np.arange(N), seed=5)
        np.testing.assert_array_equal(pattern[0], bits)
        np.testing.assert_array_equal(pattern[3], ~bits)

    def test_pattern_independent_of_batch_size_and_shuffling(self):
        expected = [flipped(loader(self.X), self.X, e) for e in (0, 1, 6)]
        for batch_size in (1, 7, 64):
            for shuffle in (False, True):
                with self.subTest(batch_size=batch_size, shuffle=shuffle):
                    data = loader(self.X, batch_size=batch_size, shuffle=shuffle)
                    for want, e in zip(expected, (0, 1, 6)):
                        np.testing.assert_array_equal(flipped(data, self.X, e), want)

    def test_bits_of_an_example_do_not_depend_on_the_others(self):
        bits = augment.example_bits(np.arange(1000), seed=3)
        np.testing.assert_array_equal(augment.example_bits(np.array([999, 5, 0]), seed=3), bits[[999, 5, 0]])
        self.assertTrue(400 < bits.sum() < 600)

    def test_same_seed_same_flips_other_seed_other_flips(self):
        a = [flipped(loader(self.X, seed=5), self.X, e) for e in range(2)]
        b = [flipped(loader(self.X, seed=5), self.X, e) for e in range(2)]
        c = flipped(loader(self.X, seed=6), self.X, 0)
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a[0], c))

    def test_a_fresh_loader_set_to_epoch_k_reproduces_epoch_k(self):
        run = loader(self.X, aug=("crop", "alt_flip"), pad=2, crop_padding="reflect")
        epochs = []
        for e in range(4):
            run.set_epoch(e)
            epochs.append([(x.copy(), y.copy()) for x, y in run])
        resumed = loader(self.X, aug=("crop", "alt_flip"), pad=2, crop_padding="reflect")
        resumed.set_epoch(3)
        for (x, y), (rx, ry) in zip(epochs[3], list(resumed), strict=True):
            np.testing.assert_array_equal(rx, x)
            np.testing.assert_array_equal(ry, y)

    def test_passes_are_numbered_without_set_epoch(self):
        counted = loader(self.X)
        self.assertEqual(counted.epoch, 0)
        passes = [flipped(counted, self.X, None) for _ in range(3)]
        self.assertEqual(counted.epoch, 2)
        for e, pattern in enumerate(passes):
            np.testing.assert_array_equal(pattern, flipped(loader(self.X), self.X, e))
        counted.set_epoch(7)  # set_epoch names the next pass, which does not advance it again
        np.testing.assert_array_equal(flipped(counted, self.X, None), flipped(loader(self.X), self.X, 7))
        self.assertEqual(counted.epoch, 7)
        unseeded = loader(self.X, seed=None)  # no seed: the epoch is still followed (bits of seed 0)
        unseeded.set_epoch(1)
        np.testing.assert_array_equal(flipped(unseeded, self.X, None), ~augment.example_bits(np.arange(N), 0))

    def test_flattened_batches(self):
        flat = self.X.reshape(N, -1)
        data = loader(flat, batch_size=10)
        for e in range(2):
            np.testing.assert_array_equal(flipped(data, self.X, e), flipped(loader(self.X), self.X, e))
        splits = {
            "train": (self.X, np.arange(N)),
            "validation": (self.X[:2], np.arange(2)),
            "test": (self.X[:2], [0, 1]),
        }
        names = [str(i) for i in range(N)]
        ds = make_image_dataset("t", splits, names, 16, seed=5, standardize=False, augment=["alt_flip"], flatten=True)
        self.assertEqual(ds.train.X.shape, (N, H * W * C))
        scaled = ds.transform(self.X)
        np.testing.assert_array_equal(flipped(ds.train, scaled, 4), flipped(loader(self.X), self.X, 4))

    def test_combined_with_crop(self):
        pad = 2
        data = loader(self.X, batch_size=5, aug=("alternating_flip", "crop"), pad=pad, crop_padding="reflect")
        bits = augment.example_bits(np.arange(N), seed=5)
        for e in (0, 1):
            data.set_epoch(e)
            offsets = set()
            for batch, Y in data:
                for x, i in zip(batch, Y.argmax(axis=1)):
                    # A crop of the image mirrored as the epoch says (mirroring commutes with
                    # reflect padding), and of no window of the other orientation.
                    for mirror, should_match in ((bits[i] ^ bool(e), True), (not bits[i] ^ bool(e), False)):
                        source = self.X[i, :, ::-1] if mirror else self.X[i]
                        padded = np.pad(source, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
                        hits = [
                            (dy, dx)
                            for dy in range(2 * pad + 1)
                            for dx in range(2 * pad + 1)
                            if np.array_equal(x, padded[dy : dy + H, dx : dx + W])
                        ]
                        self.assertEqual(bool(hits), should_match)
                        offsets.update(hits if should_match else [])
            self.assertGreater(len(offsets), 5)  # the crops still move

    def test_flip_and_alternating_flip_refused_together(self):
        for names in (["flip", "alternating_flip"], ["hflip", "alt_flip", "crop"]):
            with self.assertRaisesRegex(ValueError, r"^augmentations 'flip' and 'alternating_flip' both mirror"):
                augment.make_augmenter(names)
        self.assertEqual(augment.make_augmenter(["alt-flip", "crop"]).names, ("crop", "alternating_flip"))

    def test_direct_call_needs_indices_and_epoch(self):
        aug = augment.Augmenter(["alt_flip"])
        self.assertTrue(aug.needs_epoch_and_indices)
        self.assertFalse(augment.Augmenter(["crop", "flip"]).needs_epoch_and_indices)
        with self.assertRaisesRegex(ValueError, r"alternating_flip needs the examples' data-set indices and the epoch"):
            aug(self.X, np.random.default_rng(0))
        out = aug(self.X, None, indices=np.arange(N), epoch=1, seed=5)
        bits = ~augment.example_bits(np.arange(N), 5)
        np.testing.assert_array_equal(out[bits], self.X[bits, :, ::-1])
        np.testing.assert_array_equal(out[~bits], self.X[~bits])
        with self.assertRaisesRegex(ValueError, "one index per image"):
            augment.alternating_flip(self.X, np.arange(3), epoch=0)


class TestLoaderAugmenterInterface(unittest.TestCase):
    def setUp(self) -> None:
        self.X = images()

    def test_plain_callables_keep_the_two_argument_call(self):
        calls = []

        def user_augment(X, rng):
            calls.append(len(X))
            return X[:, ::-1]

        data = loader(self.X, batch_size=10, aug=user_augment)
        data.set_epoch(3)
        batches = list(data)
        self.assertEqual(calls, [10, 10, 10, 7])
        self.assertEqual(batches[0][0].shape, (10, H, W, C))

    def test_declared_augmenters_get_indices_in_the_data_set_and_the_epoch(self):
        seen = []

        class Recorder:
            needs_epoch_and_indices = True

            def __call__(self, X, rng, *, indices, epoch, seed):
                seen.append((indices.copy(), epoch, seed))
                return X

        data = loader(self.X, batch_size=8, aug=Recorder(), seed=11)
        data.set_epoch(2)
        Ys = [Y.argmax(axis=1) for _, Y in data]
        self.assertEqual([(e, s) for _, e, s in seen], [(2, 11)] * len(Ys))
        for (indices, _, _), labels in zip(seen, Ys, strict=True):
            np.testing.assert_array_equal(indices, labels)  # positions in the data set, not in the batch
        self.assertEqual(sorted(np.concatenate([i for i, _, _ in seen])), list(range(N)))
        # shuffle() reorders the stored arrays; each example keeps its index (and so its flips).
        data.shuffle()
        seen.clear()
        labels = np.concatenate([Y.argmax(axis=1) for _, Y in data])
        np.testing.assert_array_equal(np.concatenate([i for i, _, _ in seen]), labels)
        self.assertFalse(np.array_equal(data.labels, np.arange(N)))


class TestReflectCrop(unittest.TestCase):
    def test_matches_a_per_image_numpy_pad_reference(self):
        X = images(n=12)
        for padding in ("zeros", "reflect"):
            for pad in (1, 2, 3, H - 1):
                with self.subTest(padding=padding, pad=pad):
                    want, dy, dx = reference_crop(X, pad, padding, seed=pad)
                    out = augment.random_crop(X, np.random.default_rng(pad), pad=pad, padding=padding)
                    self.assertEqual((out.shape, out.dtype), (X.shape, X.dtype))
                    np.testing.assert_array_equal(out, want)
                    self.assertGreater(len(set(zip(dy, dx))), 1)
        # Square images, pad = size - 1 in both directions: the widest reflection.
        square = np.random.default_rng(1).integers(0, 256, (9, 5, 5, 2), dtype=np.uint8)
        want, _, _ = reference_crop(square, 4, "reflect", seed=0)
        np.testing.assert_array_equal(augment.random_crop(square, np.random.default_rng(0), 4, "reflect"), want)
        np.testing.assert_array_equal(augment.random_crop(X, np.random.default_rng(0), 0, "reflect"), X)

    def test_the_augmenter_and_a_config_mapping_reach_it(self):
        X = images(n=10)
        options = yaml.safe_load("augment: {names: [crop], pad: 2, crop_padding: reflect}")["augment"]
        aug = augment.make_augmenter(options, image_shape=(H, W, C))
        self.assertEqual((aug.names, aug.pad, aug.crop_padding), (("crop",), 2, "reflect"))
        self.assertIn("crop_padding='reflect'", repr(aug))
        want, _, _ = reference_crop(X, 2, "reflect", seed=4)
        np.testing.assert_array_equal(aug(X.reshape(10, -1), np.random.default_rng(4)).reshape(X.shape), want)
        self.assertEqual(augment.make_augmenter(True, crop_padding="reflect").crop_padding, "reflect")
        splits = {"train": (X, np.arange(10) % 2), "test": (X[:2], [0, 1])}
        ds = make_image_dataset("t", splits, ["a", "b"], 4, validation_size=2, pad=2, crop_padding="reflect")
        self.assertEqual((ds.train.augment.pad, ds.train.augment.crop_padding), (2, "reflect"))
        self.assertFalse(ds.train.augmenting)
        ds = make_image_dataset("t", splits, ["a", "b"], 4, validation_size=2, augment=options)
        self.assertEqual(
            (ds.train.augment.pad, ds.train.augment.crop_padding, ds.train.augmenting), (2, "reflect", True)
        )

    def test_bad_mode_and_too_large_pad(self):
        X = images(n=3)
        with self.assertRaisesRegex(ValueError, r"^crop_padding must be one of zeros, reflect; got 'wrap'$"):
            augment.random_crop(X, np.random.default_rng(0), 2, "wrap")
        with self.assertRaisesRegex(ValueError, r"^crop_padding must be one of zeros, reflect; got 'edge'$"):
            augment.make_augmenter({"names": ["crop"], "crop_padding": "edge"})
        too_large = r"^crop_padding='reflect' needs pad <= 5 for 6x9 images \(image size - 1\); got pad=6$"
        with self.assertRaisesRegex(ValueError, too_large):
            augment.random_crop(X, np.random.default_rng(0), H, "reflect")
        with self.assertRaisesRegex(ValueError, too_large):  # refused when the augmenter is made
            augment.Augmenter(["crop"], pad=6, crop_padding="reflect", image_shape=(H, W, C))
        augment.random_crop(X, np.random.default_rng(0), H, "zeros")  # zeros pad any amount
        with self.assertRaisesRegex(ValueError, r"^pad must be an int >= 0; got -1$"):
            augment.Augmenter(["crop"], pad=-1)
        with self.assertRaisesRegex(ValueError, r"^augment mapping: unknown key 'padding'; valid keys: names, pad"):
            augment.make_augmenter({"names": ["crop"], "padding": "reflect"})
        with self.assertRaisesRegex(ValueError, r"^augment mapping: no 'names'"):
            augment.make_augmenter({"pad": 2})
        with self.assertRaisesRegex(ValueError, r"valid names: crop, flip, alternating_flip$"):
            augment.make_augmenter(["rotate"])


class TestLoaderOptions(unittest.TestCase):
    """``pad`` and ``crop_padding`` are data-set arguments, so configs can set them (``data:``)."""

    def test_image_folder_and_cifar10_take_the_crop_padding(self):
        import tempfile
        from pathlib import Path

        from PIL import Image

        from neural_networks.experiments import validate_config
        from neural_networks.datasets import load_image_folder

        with tempfile.TemporaryDirectory() as tmp:
            for split in ("train", "test"):
                for cls in ("a", "b"):
                    folder = Path(tmp, split, cls)
                    folder.mkdir(parents=True)
                    for i in range(3):
                        Image.fromarray(images(1, seed=i)[0]).save(folder / f"{i}.png")
            data = load_image_folder(tmp, batch_size=4, augment=["alt_flip", "crop"], pad=2, crop_padding="reflect")
            self.assertEqual((data.train.augment.pad, data.train.augment.crop_padding), (2, "reflect"))
            config = {
                "name": "x",
                "data": {"name": "image_folder", "path": tmp, "augment": ["crop"], "pad": 2, "crop_padding": "reflect"},
                "optimizer": {"name": "sgd", "lr": 0.1},
                "model": {
                    "loss": "cross_entropy",
                    "layers": [{"name": "flatten"}, {"name": "fully_connected", "n_out": 2, "activation": "softmax"}],
                },
            }
            validate_config(config)
            config["data"]["name"] = "cifar10"
            del config["data"]["path"]
            validate_config(config)  # cifar10 accepts the same keys
            with self.assertRaisesRegex(ValueError, "crop_padding must be one of zeros, reflect"):
                load_image_folder(tmp, batch_size=4, augment=["crop"], crop_padding="wrap")


if __name__ == "__main__":
    unittest.main()
