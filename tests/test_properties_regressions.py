"""Plain tests for the exact inputs on which the property-based tests of tests/test_properties.py
(hypothesis, pytest) found library bugs: damaged zip central directories, on which ``zipfile``
raises something else than ``BadZipFile``. Core only: they run without the test extra."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks.datasets import DataFormatError, image_folder
from neural_networks.layers import FullyConnected
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD

from .test_datasets import make_tree, zip_tree


def patch_central_directory(data: bytes, offset: int, value: int) -> bytes:
    """``data`` (a zip) with the 2-byte little-endian field at ``offset`` of every central
    directory entry set to ``value`` (6: version needed, 8: flags, 10: compression method)."""
    buf = bytearray(data)
    start = buf.find(b"PK\x01\x02")
    assert start >= 0
    while start >= 0:
        buf[start + offset : start + offset + 2] = value.to_bytes(2, "little")
        start = buf.find(b"PK\x01\x02", start + 4)
    return bytes(buf)


# Damaged zip headers on which zipfile raises something else than BadZipFile: found by the
# properties of test_properties.py (version 6.4 and flag bit 5), the others are their siblings.
ZIP_DAMAGE = {
    "version needed 6.4 (NotImplementedError)": (6, 64),
    "flag bit 5, compressed patched data (NotImplementedError)": (8, 0x20),
    "flag bit 0, encrypted (RuntimeError)": (8, 0x01),
    "unknown compression method 99 (NotImplementedError)": (10, 99),
    "compression method LZMA on deflate data (already a clear error)": (10, 14),
}


class TestRegressions(unittest.TestCase):
    """Plain tests for the exact inputs on which the properties found library bugs: each must be
    the library's clear error, naming the file."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="nn-prop-regress-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_image_folder_zip_with_damaged_central_directory(self):
        tree = make_tree(self.tmp / "tree", per_class={"train": 1, "test": 1}, size=(3, 2), classes=["a", "b"])
        data = zip_tree(tree, self.tmp / "tree.zip").read_bytes()
        for what, (offset, value) in ZIP_DAMAGE.items():
            with self.subTest(what):
                path = self.tmp / "damaged.zip"
                path.write_bytes(patch_central_directory(data, offset, value))
                with self.assertRaises(DataFormatError) as ctx:
                    image_folder.read_image_folder(path, progress=False, workers=1)
                self.assertIn(str(path), str(ctx.exception))

    def test_checkpoint_with_damaged_central_directory(self):
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), seed=1)
        model.forward(np.ones((2, 2)))
        model.save(self.tmp / "model.npz")
        data = (self.tmp / "model.npz").read_bytes()
        for what, (offset, value) in ZIP_DAMAGE.items():
            with self.subTest(what):
                path = self.tmp / "damaged.npz"
                path.write_bytes(patch_central_directory(data, offset, value))
                with self.assertRaises(ValueError) as ctx:
                    NeuralNetwork.load(path)
                self.assertIn(str(path), str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
