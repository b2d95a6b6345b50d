"""Data sets: tiny files in each real format, written by the tests into temporary folders.

No test reads the network or the full data sets: ``$NEURAL_NETWORKS_DATA`` points at a temporary
folder, the system copies are hidden and the default URL opener fails loudly."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import inspect
import io
import os
import pickle
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import tracemalloc
import unittest
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from PIL import Image

from neural_networks import datasets
from neural_networks.datasets import augment, cifar10, decoding, fashion_mnist, idx, image_folder, mnist, sources, tar
from neural_networks.datasets import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    initialize_dataset,
    list_datasets,
    load_cifar10,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    split_validation,
    verify_dataset,
)

CLASSES = ["cat", "dog", "frog"]


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool) -> Path:
    array = np.asarray(array, dtype=np.uint8)
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path = Path(str(path) + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_set(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0) -> Path:
    """Four IDX files under their official names; each image's pixels are its label * 20 plus
    noise, labels cycle 0..9."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = (labels[:, None, None] * 20 + rng.integers(0, 10, (n, 28, 28))).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, 2051, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, 2049, gz)
    return folder


def save_image(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def make_tree(root: Path, per_class=None, size=(8, 6), ext: str = "png", classes=CLASSES, mode: str = "RGB") -> Path:
    """``root/<split>/<class>/NNNN.<ext>``; every pixel of an image of class ``k`` is ``40 * k + i``."""
    per_class = per_class or {"train": 4, "test": 2}
    for split, n in per_class.items():
        for k, cls in enumerate(classes):
            for i in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                save_image(root / split / cls / f"{i:04d}.{ext}", np.full(shape, 40 * k + i, np.uint8))
    return root


def tar_tree(tree: Path, archive: Path, arcname: str | None = None, mode: str = "w:gz") -> Path:
    with tarfile.open(archive, mode) as tf:
        tf.add(tree, arcname=arcname if arcname is not None else ".")
    return archive


def zip_tree(tree: Path, archive: Path, leading: str = "", dirs: bool = False) -> Path:
    """A zip of ``tree``'s files under ``leading``; with ``dirs``, also an entry per folder (as
    ``zip -r`` writes them, so an empty folder is in the archive)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file() or (dirs and p.is_dir()):
                zf.write(p, str(Path(leading) / p.relative_to(tree)))
    return archive


def cifar_batch(n: int, seed: int, labels=None) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = list(rng.integers(0, 10, n)) if labels is None else labels
    return {b"batch_label": b"batch", b"labels": [int(x) for x in labels], b"data": data, b"filenames": [b"x.png"] * n}


def make_cifar_tarball(path: Path, n: int = 6, override=None) -> tuple[Path, dict]:
    """A ``cifar-10-python.tar.gz`` look-alike; ``override`` maps member name -> bytes."""
    batches = {f"data_batch_{i}": cifar_batch(n, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(n, 99)
    members = {name: pickle.dumps(b, protocol=2) for name, b in batches.items()}
    members["batches.meta"] = pickle.dumps(
        {b"label_names": [c.encode() for c in cifar10.CLASS_NAMES], b"num_vis": 3072}, protocol=2
    )
    members.update(override or {})
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            if data is None:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path, batches


CACHE_ENV = "NEURAL_NETWORKS_CACHE"


def _load_train_images(archive: Path) -> np.ndarray:
    """The training images of an image-folder archive, through the cache (run in a pool)."""
    return image_folder.load_image_folder_arrays(archive, progress=False)[0]["train"][0]


def _no_network(*args, **kwargs):
    raise AssertionError("a test tried to use the network")


class DataTestCase(unittest.TestCase):
    """A temporary folder, private data and cache folders, no system copies and no network."""

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="nn-data-test-"))
        self.home = self.tmp / "home"
        self.cache = self.tmp / "cache"
        patches = [
            mock.patch.dict(os.environ, {sources.DATA_ENV: str(self.home), CACHE_ENV: str(self.cache)}),
            mock.patch.dict(sources.SYSTEM_DIRS, {}, clear=True),
            mock.patch.object(sources, "_urlopen", _no_network),
        ]
        for p in patches:
            p.start()
            self.addCleanup(p.stop)
        self.addCleanup(shutil.rmtree, self.tmp, True)


class TestIDX(DataTestCase):
    def test_gzip_and_raw_round_trip(self):
        array = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
        for gz in (True, False):
            path = write_idx(self.tmp / f"a{gz}", array, 2051, gz)
            np.testing.assert_array_equal(idx.read_idx(path, 2051), array)

    def test_fashion_mnist_keeps_exporting_the_idx_names(self):
        for name in ("read_idx", "candidates", "IMAGE_MAGIC", "LABEL_MAGIC", "DEFAULT_VALIDATION_SIZE"):
            self.assertIs(getattr(fashion_mnist, name), getattr(idx, name))
        self.assertIs(datasets.read_idx, idx.read_idx)
        self.assertEqual(
            idx.candidates(mnist.FILES["test_labels"]),
            [
                "t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte",
                "t10k-labels.idx1-ubyte.gz",
                "t10k-labels.idx1-ubyte",
            ],
        )

    def test_wrong_magic(self):
        path = write_idx(self.tmp / "labels", np.arange(5), 2049, True)
        with self.assertRaisesRegex(DataFormatError, "magic number 2049") as ctx:
            idx.read_idx(path, 2051)
        self.assertIn(str(path), str(ctx.exception))

    def test_truncated_and_trailing_bytes(self):
        path = write_idx(self.tmp / "img", np.zeros((3, 28, 28)), 2051, False)
        data = path.read_bytes()
        path.write_bytes(data[:-10])
        with self.assertRaisesRegex(DataFormatError, r"truncated.*\(3, 28, 28\)"):
            idx.read_idx(path, 2051)
        path.write_bytes(data + b"\0")
        with self.assertRaisesRegex(DataFormatError, "trailing bytes"):
            idx.read_idx(path, 2051)
        path.write_bytes(data[:6])
        with self.assertRaisesRegex(DataFormatError, "truncated IDX header"):
            idx.read_idx(path, 2051)

    def test_truncated_gzip(self):
        path = write_idx(self.tmp / "img", np.zeros((3, 28, 28)), 2051, True)
        path.write_bytes(path.read_bytes()[:-12])
        with self.assertRaisesRegex(DataFormatError, "gzip") as ctx:
            idx.read_idx(path, 2051)
        self.assertIn(str(path), str(ctx.exception))

    def test_empty_file_raw_or_gzip(self):
        for content in (b"", gzip.compress(b"")):
            path = self.tmp / "empty"
            path.write_bytes(content)
            with self.assertRaisesRegex(DataFormatError, "empty file") as ctx:
                idx.read_idx(path, idx.IMAGE_MAGIC)
            self.assertIn(str(path), str(ctx.exception))


class Response(io.BytesIO):
    """What a fake opener hands out: the bytes, with their Content-Length."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve_idx_set(source: Path, files: dict, host: str = "https://example.invalid/") -> tuple[dict, dict]:
    """``(served, patched)``: URL -> bytes of the four files in ``source``, and the files' remotes
    pointing at those URLs with the md5 of those bytes (to patch into a data set's ``FILES``)."""
    served, patched = {}, {}
    for role, remote in files.items():
        data = (source / remote.name).read_bytes()
        served[host + remote.name] = data
        patched[role] = sources.RemoteFile(remote.name, host + remote.name, hashlib.md5(data).hexdigest())
    return served, patched


class IDXDataSetCases:
    """Loader tests run for each IDX data set (the subclasses below say which): ``spec`` is its
    :class:`~neural_networks.datasets.idx.IDXDataset`, ``load`` its loader, ``provide`` words the
    not-found message must hold beyond the generic ones."""

    spec: idx.IDXDataset
    load = None
    provide: tuple[str, ...] = ()

    def make(self, folder: Path, **kwargs) -> Path:
        return make_idx_set(folder, **kwargs)

    def test_load_images_by_default_and_flat(self):
        folder = self.make(self.tmp / "set")
        ds = self.load(batch_size=16, path=folder, validation_size=10, progress=False)
        self.assertEqual((ds.train.n_examples, ds.validate.n_examples, ds.test.n_examples), (50, 10, 20))
        self.assertEqual(ds.name, self.spec.name)
        self.assertEqual(ds.class_names, list(self.spec.class_names))
        self.assertEqual(len(ds.class_names), 10)
        self.assertEqual(ds.train.X.dtype, np.uint8)
        self.assertEqual(ds.source, folder)
        X, Y = next(iter(ds.train))
        self.assertEqual((X.shape, X.dtype, Y.shape, Y.dtype), ((16, 28, 28, 1), np.float32, (16, 10), np.float32))
        np.testing.assert_array_equal(Y.sum(axis=1), 1)
        # labels follow the images: pixel // 20 is the label
        np.testing.assert_array_equal(ds.test.X[:, 0, 0, 0] // 20, ds.test.labels)
        flat = self.load(batch_size=16, path=folder, flatten=True, validation_size=10, progress=False)
        X, _ = next(iter(flat.test))
        self.assertEqual(X.shape, (16, 784))
        np.testing.assert_array_equal(flat.test.X, ds.test.X.reshape(20, 784))
        # uncompressed files work too
        raw = self.make(self.tmp / "raw", gz=False)
        self.assertEqual(self.load(path=raw, validation_size=10, progress=False).test.n_examples, 20)

    def test_found_in_data_folder(self):
        self.make(self.home / self.spec.name)
        ds = initialize_dataset(self.spec.name.replace("_", "-"), 8, validation_size=10, progress=False)
        self.assertEqual(ds.test.n_examples, 20)
        self.assertEqual(ds.source, self.home / self.spec.name)
        other = self.tmp / "elsewhere"
        self.make(other / self.spec.name, n_test=30)
        with mock.patch.dict(os.environ, {sources.DATA_ENV: str(other)}):
            self.assertEqual(self.load(validation_size=10, progress=False).test.n_examples, 30)

    def test_standardization_uses_training_split_only(self):
        folder = self.make(self.tmp / "set")
        ds = self.load(path=folder, validation_size=10, progress=False, cache=False)
        pixels = ds.train.X.astype(np.float64) / 255
        np.testing.assert_allclose(ds.train.transform.mean, [pixels.mean()], rtol=1e-12)
        np.testing.assert_allclose(ds.train.transform.std, [pixels.std()], rtol=1e-12)
        X, _ = ds.train.batch(np.arange(ds.train.n_examples))
        self.assertAlmostEqual(float(X.mean()), 0.0, places=4)
        self.assertAlmostEqual(float(X.std()), 1.0, places=4)
        # the same transform applies to the test split; its statistics did not enter it
        all_pixels = np.concatenate([ds.train.X, ds.validate.X, ds.test.X]).astype(np.float64) / 255
        self.assertNotAlmostEqual(float(ds.train.transform.mean[0]), float(all_pixels.mean()), places=6)
        self.assertIs(ds.test.transform, ds.train.transform)
        scaled = self.load(path=folder, validation_size=10, standardize=False, progress=False)
        X, _ = scaled.test.batch(np.arange(3))
        np.testing.assert_allclose(X, scaled.test.X[:3] / np.float32(255), rtol=1e-6)

    def test_deterministic_stratified_validation_split(self):
        folder = self.make(self.tmp / "set", n_train=100)
        a = self.load(path=folder, validation_size=20, split_seed=3, seed=1, progress=False)
        b = self.load(path=folder, validation_size=20, split_seed=3, seed=2, progress=False)
        c = self.load(path=folder, validation_size=20, split_seed=4, progress=False)
        np.testing.assert_array_equal(a.validate.X, b.validate.X)
        self.assertFalse(np.array_equal(a.validate.X, c.validate.X))
        np.testing.assert_array_equal(np.bincount(a.validate.labels, minlength=10), 2)
        f = self.load(path=folder, validation_size=0.3, progress=False)
        self.assertEqual(f.validate.n_examples, 30)

    def test_label_out_of_range_and_count_mismatch(self):
        folder = self.make(self.tmp / "set")
        write_idx(folder / "t10k-labels-idx1-ubyte", np.full(20, 12), 2049, True)
        with self.assertRaisesRegex(DataFormatError, r"t10k-labels.*label 12 at index 0 is out of range 0..9"):
            self.load(path=folder, progress=False)
        write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(19), 2049, True)
        with self.assertRaisesRegex(DataFormatError, "20 images but .* 19 labels"):
            self.load(path=folder, progress=False)

    def test_truncated_wrong_magic_and_empty_files_name_the_file(self):
        folder = self.make(self.tmp / "set", gz=False)
        images = folder / "train-images-idx3-ubyte"
        data = images.read_bytes()
        images.write_bytes(data[:-100])
        with self.assertRaisesRegex(DataFormatError, f"{re.escape(str(images))}: truncated"):
            self.load(path=folder, progress=False, cache=False)
        # a label file where the images should be
        shutil.copy(folder / "train-labels-idx1-ubyte", images)
        with self.assertRaisesRegex(DataFormatError, f"{re.escape(str(images))}: wrong magic number 2049"):
            self.load(path=folder, progress=False, cache=False)
        images.write_bytes(b"")
        with self.assertRaisesRegex(DataFormatError, f"{re.escape(str(images))}: empty file"):
            self.load(path=folder, progress=False, cache=False)

    def test_missing_file_without_download(self):
        with self.assertRaises(DataNotFoundError) as ctx:
            self.load(download=False, progress=False)
        message = str(ctx.exception)
        self.assertIsInstance(ctx.exception, FileNotFoundError)
        for needle in (
            "train-images-idx3-ubyte.gz",
            "path=",
            sources.DATA_ENV,
            str(self.home / self.spec.name),
            self.spec.files["train_images"].url,
            *self.provide,
        ):
            self.assertIn(needle, message)
        folder = self.make(self.tmp / "set")
        (folder / "train-labels-idx1-ubyte.gz").unlink()
        with self.assertRaisesRegex(DataNotFoundError, "train-labels-idx1-ubyte.gz.*explicit|explicit.*train-labels"):
            self.load(path=folder, progress=False)

    def test_offline_download_error_names_the_ways(self):
        tried = []

        def offline(url, timeout=None):
            tried.append(url)
            raise urllib.error.URLError("no route to host")

        with mock.patch.object(sources, "_urlopen", offline):
            with self.assertRaises(DataNotFoundError) as ctx:
                self.load(progress=False)
        message = str(ctx.exception)
        for needle in ("no route to host", "path=", *self.spec.files["train_images"].urls, *self.provide):
            self.assertIn(needle, message)
        self.assertEqual(tried, list(self.spec.files["train_images"].urls))  # every URL once, in order
        self.assertFalse((self.home / self.spec.name).exists() and any((self.home / self.spec.name).iterdir()))

    def test_download_through_fake_opener(self):
        served, patched = serve_idx_set(self.make(self.tmp / "upstream"), self.spec.files)
        calls = []

        def opener(url, timeout=None):
            calls.append(url)
            return Response(served[url])

        with mock.patch.dict(self.spec.files, patched), mock.patch.object(sources, "_urlopen", opener):
            ds = self.load(validation_size=10, progress=False)
        self.assertEqual(len(calls), 4)
        self.assertEqual(ds.test.n_examples, 20)
        self.assertTrue((self.home / self.spec.name / "t10k-images-idx3-ubyte.gz").is_file())

    def test_download_with_wrong_checksum_writes_nothing(self):
        served, patched = serve_idx_set(self.make(self.tmp / "upstream"), self.spec.files)
        patched = {role: dataclasses.replace(remote, md5="0" * 32) for role, remote in patched.items()}
        with (
            mock.patch.dict(self.spec.files, patched),
            mock.patch.object(sources, "_urlopen", lambda url, timeout=None: Response(served[url])),
        ):
            with self.assertRaisesRegex(ChecksumError, r"train-images-idx3-ubyte.gz: md5 .* not saved"):
                self.load(progress=False)
        folder = self.home / self.spec.name
        self.assertEqual(list(folder.iterdir()) if folder.exists() else [], [])


class TestFashionMNIST(IDXDataSetCases, DataTestCase):
    spec = fashion_mnist.SPEC
    load = staticmethod(load_fashion_mnist)
    provide = ("apt-get install dataset-fashion-mnist",)

    def test_flatten_default_changed_and_mlp_config_asks_for_it(self):
        self.assertIs(inspect.signature(load_fashion_mnist).parameters["flatten"].default, False)
        self.assertEqual(load_fashion_mnist.__module__, fashion_mnist.__name__)
        config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "fashion_mnist_mlp.yaml").read_text())
        self.assertIs(config["data"]["flatten"], True)


class TestMNIST(IDXDataSetCases, DataTestCase):
    spec = mnist.SPEC
    load = staticmethod(load_mnist)

    def test_description(self):
        self.assertEqual(mnist.CLASS_NAMES, [str(d) for d in range(10)])
        self.assertIs(datasets.DATASETS["mnist"], load_mnist)
        expected = {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        }
        self.assertEqual({r.name: r.md5 for r in mnist.FILES.values()}, expected)
        for remote in mnist.FILES.values():
            self.assertEqual(
                remote.urls,
                (
                    "https://ossci-datasets.s3.amazonaws.com/mnist/" + remote.name,
                    "http://yann.lecun.com/exdb/mnist/" + remote.name,
                ),
            )
            self.assertIsNone(remote.sha256)  # none is published
        signature = inspect.signature(load_mnist).parameters
        self.assertEqual(
            {k: signature[k].default for k in ("batch_size", "flatten", "validation_size", "augment")},
            {"batch_size": datasets.DEFAULT_BATCH_SIZE, "flatten": False, "validation_size": 10_000, "augment": False},
        )

    def test_augment_means_crops_only(self):
        ds = load_mnist(path=make_idx_set(self.tmp / "set"), validation_size=10, augment=True, progress=False)
        self.assertTrue(ds.train.augmenting)
        self.assertEqual(ds.train.augment.names, ("crop",))

    def test_mirror_used_when_the_first_url_refuses(self):
        source = make_idx_set(self.tmp / "upstream")
        calls = []

        def opener(url, timeout=None):
            calls.append(url)
            if "yann.lecun.com" not in url:
                raise urllib.error.HTTPError(url, 403, "Forbidden", {}, None)
            return Response((source / url.rsplit("/", 1)[1]).read_bytes())

        patched = {
            role: dataclasses.replace(remote, md5=hashlib.md5((source / remote.name).read_bytes()).hexdigest())
            for role, remote in mnist.FILES.items()
        }
        with mock.patch.dict(mnist.FILES, patched), mock.patch.object(sources, "_urlopen", opener):
            ds = load_mnist(validation_size=10, progress=False)
        self.assertEqual(ds.test.n_examples, 20)
        self.assertEqual(len(calls), 8)
        self.assertEqual(calls[:2], list(mnist.FILES["train_images"].urls))


class TestDownload(DataTestCase):
    def test_file_url_and_checksums(self):
        src = self.tmp / "payload.bin"
        src.write_bytes(os.urandom(3000))
        md5 = hashlib.md5(src.read_bytes()).hexdigest()
        dest = self.tmp / "out" / "payload.bin"

        def opener(url, timeout=None):
            return urllib.request.urlopen(url, timeout=timeout)

        sources.download(src.as_uri(), dest, md5=md5, opener=opener, progress=False)
        self.assertEqual(dest.read_bytes(), src.read_bytes())
        dest.unlink()
        with self.assertRaisesRegex(ChecksumError, "md5"):
            sources.download(src.as_uri(), dest, md5="0" * 32, opener=opener, progress=False)
        self.assertEqual(list(dest.parent.iterdir()), [])  # nothing half-written left behind

    def test_failed_and_short_downloads(self):
        def refused(url, timeout=None):
            raise urllib.error.URLError("connection refused")

        with self.assertRaisesRegex(DataNotFoundError, "connection refused"):
            sources.download("https://example.invalid/x", self.tmp / "x", opener=refused, progress=False)

        class Short(io.BytesIO):
            headers = {"Content-Length": "100"}

        with self.assertRaisesRegex(DataNotFoundError, "stopped after 10 of 100"):
            sources.download(
                "https://example.invalid/x",
                self.tmp / "x",
                opener=lambda u, timeout=None: Short(b"0" * 10),
                progress=False,
            )
        self.assertFalse((self.tmp / "x").exists())

    def test_mirrors_tried_in_order(self):
        payload = os.urandom(500)
        remote = sources.RemoteFile(
            "f.bin",
            "https://a.invalid/f.bin",
            hashlib.md5(payload).hexdigest(),
            mirrors=("https://b.invalid/f.bin", "https://c.invalid/f.bin"),
        )
        self.assertEqual(remote.urls, ("https://a.invalid/f.bin", "https://b.invalid/f.bin", "https://c.invalid/f.bin"))
        dest = self.tmp / "out" / "f.bin"

        def serving(answers):
            calls = []

            def opener(url, timeout=None):
                calls.append(url)
                answer = answers[url]
                if isinstance(answer, Exception):
                    raise answer
                return Response(answer)

            return opener, calls

        # the first refuses, the second serves other bytes, the third the right ones
        opener, calls = serving(
            {remote.urls[0]: urllib.error.URLError("403 Forbidden"), remote.urls[1]: b"junk", remote.urls[2]: payload}
        )
        self.assertEqual(sources.download_remote(remote, dest, opener=opener, progress=False), dest)
        self.assertEqual((dest.read_bytes(), calls), (payload, list(remote.urls)))
        dest.unlink()
        # the first that works is the last one tried
        opener, calls = serving({remote.urls[0]: payload})
        sources.download_remote(remote, dest, opener=opener, progress=False)
        self.assertEqual(calls, [remote.urls[0]])
        dest.unlink()
        # all unreachable: one error naming every URL; a wrong checksum among them makes it a ChecksumError
        opener, _ = serving({u: urllib.error.URLError(f"down {i}") for i, u in enumerate(remote.urls)})
        with self.assertRaisesRegex(DataNotFoundError, r"all 3 URLs of f.bin failed: .*a.invalid.*down 0.*c.invalid"):
            sources.download_remote(remote, dest, opener=opener, progress=False)
        opener, _ = serving(
            {
                remote.urls[0]: urllib.error.URLError("down"),
                remote.urls[1]: b"junk",
                remote.urls[2]: urllib.error.URLError("down"),
            }
        )
        with self.assertRaisesRegex(ChecksumError, r"b.invalid/f.bin: md5"):
            sources.download_remote(remote, dest, opener=opener, progress=False)
        self.assertEqual(list(dest.parent.iterdir()), [])


class TestCIFAR10(DataTestCase):
    def test_pickle_tarball(self):
        path, batches = make_cifar_tarball(self.tmp / "cifar-10-python.tar.gz")
        ds = load_cifar10(batch_size=4, path=path, validation_size=6, progress=False)
        self.assertEqual((ds.train.n_examples, ds.validate.n_examples, ds.test.n_examples), (24, 6, 6))
        self.assertEqual(ds.class_names, cifar10.CLASS_NAMES)
        X, Y = next(iter(ds.test))
        self.assertEqual((X.shape, Y.shape), ((4, 32, 32, 3), (4, 10)))
        # CHW rows -> NHWC images; the test split keeps the file order
        raw = batches["test_batch"][b"data"]
        np.testing.assert_array_equal(ds.test.X, raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        self.assertEqual(ds.test.X[0, 1, 2, 0], raw[0, 0 * 1024 + 1 * 32 + 2])
        self.assertEqual(ds.test.X[0, 1, 2, 2], raw[0, 2 * 1024 + 1 * 32 + 2])
        np.testing.assert_array_equal(ds.test.labels, batches["test_batch"][b"labels"])
        self.assertEqual(cifar10.cifar10_format(path), "pickle")

    def test_extracted_folder_and_data_folder(self):
        path, _ = make_cifar_tarball(self.tmp / "c.tar.gz")
        with tarfile.open(path) as tf:
            tf.extractall(self.tmp / "x", filter="data")
        ds = load_cifar10(path=self.tmp / "x", validation_size=6, progress=False, cache=False)
        self.assertEqual(ds.test.n_examples, 6)
        (self.home / "cifar10").mkdir(parents=True)
        shutil.copy(path, self.home / "cifar10" / "cifar-10-python.tar.gz")
        ds = initialize_dataset("CIFAR-10", 4, validation_size=6, progress=False)
        self.assertEqual(ds.train.n_examples, 24)

    def test_malicious_pickle_is_refused(self):
        marker = self.tmp / "pwned"

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path, _ = make_cifar_tarball(self.tmp / "evil.tar.gz", override={"data_batch_1": pickle.dumps(Evil())})
        with self.assertRaisesRegex(DataFormatError, r"data_batch_1.*(posix|os)\.system is not allowed"):
            load_cifar10(path=path, progress=False)
        self.assertFalse(marker.exists())

    def test_bad_batches(self):
        bad_label = pickle.dumps(cifar_batch(6, 1, labels=[0, 1, 2, 3, 4, 10]), protocol=2)
        path, _ = make_cifar_tarball(self.tmp / "a.tar.gz", override={"data_batch_3": bad_label})
        with self.assertRaisesRegex(DataFormatError, r"data_batch_3: label 10 at index 5 is out of range"):
            load_cifar10(path=path, progress=False)
        wrong = cifar_batch(6, 1)
        wrong[b"data"] = wrong[b"data"][:, :100]
        path, _ = make_cifar_tarball(self.tmp / "b.tar.gz", override={"test_batch": pickle.dumps(wrong)})
        with self.assertRaisesRegex(DataFormatError, r"test_batch: 'data' must be uint8 of shape \(n, 3072\)"):
            load_cifar10(path=path, progress=False)
        path, _ = make_cifar_tarball(self.tmp / "c.tar.gz", override={"data_batch_5": None})
        with self.assertRaisesRegex(DataFormatError, "missing data_batch_5"):
            load_cifar10(path=path, progress=False)
        path, _ = make_cifar_tarball(self.tmp / "d.tar.gz")
        data = path.read_bytes()
        for cut in (len(data) // 2, len(data) - 20):
            path.write_bytes(data[:cut])
            with self.assertRaisesRegex(DataFormatError, "d.tar.gz.*(corrupt|truncated)"):
                load_cifar10(path=path, progress=False)

    def test_cache_second_load_and_invalidation(self):
        path, _ = make_cifar_tarball(self.tmp / "cifar-10-python.tar.gz")
        first = load_cifar10(path=path, validation_size=6, progress=False)
        with mock.patch.object(cifar10, "read_cifar10_pickles", side_effect=AssertionError("decoded again")):
            second = load_cifar10(path=path, validation_size=6, progress=False)
        np.testing.assert_array_equal(first.test.X, second.test.X)
        cache_dir = self.cache  # $NEURAL_NETWORKS_CACHE; nothing beside the source
        self.assertEqual(len(list(cache_dir.iterdir())), 1)
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir()), ["cache", "cifar-10-python.tar.gz"])
        # a changed source is decoded again and the stale entry goes away
        make_cifar_tarball(path, n=7)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        third = load_cifar10(path=path, validation_size=6, progress=False)
        self.assertEqual(third.test.n_examples, 7)
        self.assertEqual(len(list(cache_dir.iterdir())), 1)

    def test_image_folder_archive_is_detected(self):
        tree = make_tree(
            self.tmp / "tree", size=(32, 32), ext="jpg", classes=["cat", "dog"], per_class={"train": 3, "test": 1}
        )
        archive = tar_tree(tree, self.tmp / "cifar10-jpeg.tar.gz", arcname="cifar10-jpeg")
        self.assertEqual(cifar10.cifar10_format(archive), "image_folder")
        ds = load_cifar10(path=archive, validation_size=2, progress=False)
        self.assertEqual(ds.class_names, cifar10.CLASS_NAMES)
        np.testing.assert_array_equal(ds.test.labels, [3, 5])  # cat, dog in CIFAR order
        self.assertEqual(ds.input_shape, (32, 32, 3))


class TestImageFolder(DataTestCase):
    def test_folder_and_archives_agree(self):
        tree = make_tree(self.tmp / "tree")
        expected = load_image_folder(tree, validation_size=3, progress=False, cache=False)
        self.assertEqual(expected.class_names, CLASSES)
        self.assertEqual((expected.train.n_examples, expected.validate.n_examples, expected.test.n_examples), (9, 3, 6))
        np.testing.assert_array_equal(expected.test.labels, [0, 0, 1, 1, 2, 2])
        np.testing.assert_array_equal(expected.test.X[:, 0, 0, 0], [0, 1, 40, 41, 80, 81])  # PNG is exact
        self.assertEqual(expected.test.X.shape, (6, 6, 8, 3))
        archives = [
            tar_tree(tree, self.tmp / "a.tar.gz", arcname="data"),
            tar_tree(tree, self.tmp / "b.tgz"),
            tar_tree(tree, self.tmp / "c.tar", mode="w"),
            zip_tree(tree, self.tmp / "d.zip", "lead"),
            zip_tree(tree, self.tmp / "e.zip"),
        ]
        for archive in archives:
            with self.subTest(archive=archive.name):
                ds = load_image_folder(archive, validation_size=3, progress=False)
                np.testing.assert_array_equal(ds.test.X, expected.test.X)
                np.testing.assert_array_equal(ds.train.labels, expected.train.labels)
                np.testing.assert_array_equal(ds.validate.X, expected.validate.X)

    def test_jpeg_and_class_order_and_val_split(self):
        tree = make_tree(self.tmp / "tree", ext="jpeg", per_class={"train": 2, "val": 1, "test": 1})
        ds = load_image_folder(tree, class_names=["frog", "dog", "cat"], progress=False)
        self.assertEqual(ds.validate.n_examples, 3)  # the val folder, nothing held out of train
        self.assertEqual(ds.train.n_examples, 6)
        np.testing.assert_array_equal(ds.test.labels, [0, 1, 2])
        np.testing.assert_allclose(ds.test.X[:, 0, 0, 0], [80, 40, 0], atol=3)  # JPEG: nearly exact
        ds = initialize_dataset("image_folder", 2, path=tree, class_names=CLASSES, progress=False)
        self.assertEqual(ds.class_names, CLASSES)

    def test_grayscale_and_color_modes(self):
        tree = make_tree(self.tmp / "gray", mode="L")
        ds = load_image_folder(tree, progress=False, cache=False)
        self.assertEqual(ds.input_shape, (6, 8, 1))
        rgb = load_image_folder(tree, color_mode="rgb", progress=False, cache=False)
        self.assertEqual(rgb.input_shape, (6, 8, 3))
        save_image(tree / "test" / "cat" / "9999.png", np.zeros((6, 8, 3), np.uint8))
        with self.assertRaisesRegex(DataFormatError, r"test/cat/9999.png: image is rgb but .* grayscale"):
            load_image_folder(tree, progress=False, cache=False)
        self.assertEqual(
            load_image_folder(tree, color_mode="grayscale", progress=False, cache=False).test.n_examples, 7
        )

    def test_layout_errors(self):
        tree = make_tree(self.tmp / "t1", per_class={"train": 2})
        with self.assertRaisesRegex(DataFormatError, "missing split folder 'test'"):
            load_image_folder(tree, progress=False)
        tree = make_tree(self.tmp / "t2", per_class={"train": 2, "test": 1})
        save_image(tree / "test" / "horse" / "0000.png", np.zeros((6, 8, 3), np.uint8))
        with self.assertRaisesRegex(DataFormatError, "test/horse/0000.png: class folder 'horse' is not one of"):
            load_image_folder(tree, progress=False)
        tree = make_tree(self.tmp / "t4", per_class={"train": 1, "test": 1})
        with self.assertRaisesRegex(DataFormatError, "class folder 'cat' is not one of the classes"):
            load_image_folder(tree, class_names=["dog", "frog"], progress=False)
        tree = make_tree(self.tmp / "t3", per_class={"train": 2, "test": 1})
        save_image(tree / "train" / "0000.png", np.zeros((6, 8, 3), np.uint8))
        with self.assertRaisesRegex(DataFormatError, r"train/0000.png: image is not at <split>/<class>/<image>"):
            load_image_folder(tree, progress=False)
        with self.assertRaisesRegex(ValueError, "needs path"):
            initialize_dataset("image_folder", 4)

    def assert_refused(self, source, pattern, **kwargs):
        """Loading ``source`` raises a one-line :class:`DataFormatError` naming it and matching
        ``pattern``."""
        with self.assertRaisesRegex(DataFormatError, pattern) as ctx:
            load_image_folder(source, progress=False, cache=False, **kwargs)
        message = str(ctx.exception)
        self.assertTrue(message.startswith(f"{source}: "), message)
        self.assertNotIn("\n", message)
        return message

    def test_a_class_folder_without_images_is_refused(self):
        # train/{cat,dog,frog}: frog holds no image (empty, or only files that are not images)
        tree = make_tree(self.tmp / "t", classes=["cat", "dog"], per_class={"train": 2, "test": 1}, ext="jpg")
        (tree / "train" / "frog").mkdir()
        empty = r"train/frog: class folder 'frog' holds no images \(\.png, \.jpg, \.jpeg\); put its images there or remove it"
        self.assert_refused(tree, empty)
        save_image(tree / "test" / "frog" / "0000.jpg", np.zeros((6, 8, 3), np.uint8))
        self.assert_refused(tree, empty)  # named as the cause, not the test image's class
        archives = [
            tar_tree(tree, self.tmp / "a.tar.gz"),
            tar_tree(tree, self.tmp / "a.tar", arcname="lead", mode="w"),
            zip_tree(tree, self.tmp / "a.zip", dirs=True),
        ]
        for archive in archives:
            with self.subTest(archive=archive.name):
                self.assert_refused(archive, empty)
        with self.subTest(archive="streamed"), mock.patch.object(datasets.archives, "_IN_MEMORY_LIMIT", 0):
            self.assert_refused(archives[0], empty)
        # a folder holding only other files (skipped: not images) is refused the same way, also
        # in a zip without folder entries, where only its files say the folder is there
        (tree / "train" / "frog" / "notes.txt").write_text("to do: add the frogs")
        (tree / "train" / "frog" / ".DS_Store").write_bytes(b"\0")
        self.assert_refused(tree, empty)
        self.assert_refused(zip_tree(tree, self.tmp / "files-only.zip"), empty)
        # in the test split too, naming that folder
        save_image(tree / "train" / "frog" / "0000.jpg", np.zeros((6, 8, 3), np.uint8))
        (tree / "test" / "dog" / "0000.jpg").unlink()
        self.assert_refused(tree, r"test/dog: class folder 'dog' holds no images")
        self.assert_refused(tar_tree(tree, self.tmp / "dog.tar.gz"), r"test/dog: class folder 'dog' holds no images")
        # a split folder with no class folder of images at all
        save_image(tree / "test" / "dog" / "0000.jpg", np.zeros((6, 8, 3), np.uint8))
        self.assertEqual(len(load_image_folder(tree, progress=False).class_names), 3)  # cached
        (tree / "val").mkdir()
        self.assert_refused(tree, r"val: split folder 'val' holds no images")
        # a folder added to a cached tree is seen: the cache entry is of the tree as it was
        with self.assertRaisesRegex(DataFormatError, "val: split folder 'val' holds no images"):
            load_image_folder(tree, progress=False)

    def test_splits_must_have_the_training_classes(self):
        # classes come from the training folders: a test split without one of them is refused
        tree = make_tree(self.tmp / "t", per_class={"train": 2, "test": 1})
        shutil.rmtree(tree / "test" / "frog")
        message = self.assert_refused(
            tree, r"split folder 'test' has no class folder 'frog' \(the training classes: cat, dog, frog\)"
        )
        self.assertIn("class_names", message)  # how to allow it
        self.assert_refused(zip_tree(tree, self.tmp / "t.zip"), "split folder 'test' has no class folder 'frog'")
        make_tree(tree, classes=["cat"], per_class={"val": 1})
        self.assert_refused(tree, r"split folder 'val' has no class folder 'dog', 'frog'")
        shutil.rmtree(tree / "val")
        # with the classes given, a split may hold fewer of them (their labels keep the given order)
        ds = load_image_folder(tree, class_names=["frog", "dog", "cat"], progress=False, cache=False)
        np.testing.assert_array_equal(ds.test.labels, [1, 2])  # dog, cat
        # a class only the test split has is refused as before
        make_tree(tree, classes=["frog", "horse"], per_class={"test": 1})
        self.assert_refused(tree, "test/horse/0000.png: class folder 'horse' is not one of the classes")

    def test_corrupt_and_mismatched_images(self):
        tree = make_tree(self.tmp / "t", per_class={"train": 2, "test": 1})
        (tree / "train" / "dog" / "0001.png").write_bytes(b"not a png at all")
        with self.assertRaisesRegex(DataFormatError, r"train/dog/0001.png: unreadable image"):
            load_image_folder(tree, progress=False)
        buf = io.BytesIO()
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(buf, format="PNG")
        (tree / "train" / "dog" / "0001.png").write_bytes(buf.getvalue()[:40])  # truncated
        with self.assertRaisesRegex(DataFormatError, r"train/dog/0001.png: unreadable image"):
            load_image_folder(tree, progress=False)
        save_image(tree / "train" / "dog" / "0001.png", np.zeros((7, 8, 3), np.uint8))
        with self.assertRaisesRegex(DataFormatError, r"train/dog/0001.png: image is 8x7 but .* 8x6"):
            load_image_folder(tree, progress=False)
        archive = tar_tree(make_tree(self.tmp / "ok"), self.tmp / "ok.tar.gz")
        archive.write_bytes(archive.read_bytes()[:-30])
        with self.assertRaisesRegex(DataFormatError, "ok.tar.gz.*truncated"):
            load_image_folder(archive, progress=False)
        plain = tar_tree(self.tmp / "ok", self.tmp / "ok.tar", mode="w")
        data = bytearray(plain.read_bytes())
        first = data.index(b"./test")  # a member header (after a pax header and its data)
        data[first + 20 : first + 30] = b"garbage!!!"
        plain.write_bytes(bytes(data))
        with self.assertRaisesRegex(DataFormatError, "ok.tar.*corrupt tar header"):
            load_image_folder(plain, progress=False)

    def test_streamed_archives(self):
        tree = make_tree(self.tmp / "t")
        expected = load_image_folder(tree, validation_size=3, progress=False, cache=False)
        archives = [
            tar_tree(tree, self.tmp / "a.tar.bz2", mode="w:bz2"),
            tar_tree(tree, self.tmp / "a.tar.xz", mode="w:xz"),
        ]
        with mock.patch.object(datasets.archives, "_IN_MEMORY_LIMIT", 0):  # as if too large to hold in memory
            archives.append(tar_tree(tree, self.tmp / "a.tar.gz"))
            for archive in archives:
                with self.subTest(archive=archive.name):
                    ds = load_image_folder(archive, validation_size=3, progress=False, cache=False)
                    np.testing.assert_array_equal(ds.train.X, expected.train.X)
                    archive.write_bytes(archive.read_bytes()[:-30])
                    with self.assertRaisesRegex(DataFormatError, f"{archive.name}: corrupt or truncated"):
                        load_image_folder(archive, progress=False, cache=False)

    def test_parallel_decoding_matches_serial(self):
        tree = make_tree(self.tmp / "t", per_class={"train": 3, "test": 1})
        serial, _ = image_folder.read_image_folder(tree, progress=False, workers=1)
        parallel, _ = image_folder.read_image_folder(tree, progress=False, workers=2)
        for split in serial:
            np.testing.assert_array_equal(serial[split][0], parallel[split][0])
            np.testing.assert_array_equal(serial[split][1], parallel[split][1])

    def test_cache_in_the_cache_folder_then_invalidated(self):
        tree = make_tree(self.tmp / "src")
        archive = tar_tree(tree, self.tmp / "set.tar.gz")
        first = load_image_folder(archive, progress=False)
        self.assertEqual(len(list(self.cache.iterdir())), 1)
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir()), ["cache", "set.tar.gz", "src"])
        start = time.perf_counter()
        with mock.patch.object(decoding, "decode", side_effect=AssertionError("decoded again")):
            second = load_image_folder(archive, progress=False)
        self.assertLess(time.perf_counter() - start, 1.0)
        np.testing.assert_array_equal(first.train.X, second.train.X)
        save_image(tree / "test" / "cat" / "0000.png", np.full((6, 8, 3), 200, np.uint8))
        tar_tree(tree, archive)
        os.utime(archive, ns=(time.time_ns(), time.time_ns() + 10**9))
        third = load_image_folder(archive, progress=False)
        self.assertEqual(third.test.X[0, 0, 0, 0], 200)

    def listing(self, *folders):
        """Every path under ``folders`` (what a load must leave as it was)."""
        return {folder: sorted(str(p) for p in folder.rglob("*")) for folder in folders}

    def test_a_read_only_source_loads_and_nothing_is_written_beside_it(self):
        # a read-only data folder (as root, where chmod does not stop writes, nothing new appears)
        shared = self.tmp / "shared"
        folder = shared / "data"
        folder.mkdir(parents=True)
        archive = zip_tree(make_tree(self.tmp / "src"), folder / "set.zip")
        tree = make_tree(folder / "tree")
        for source in (archive, tree):
            with self.subTest(source=source.name):
                before = self.listing(shared)
                for path in [shared, folder, *tree.rglob("*"), tree]:
                    if path.is_dir():
                        path.chmod(0o555)
                        self.addCleanup(path.chmod, 0o755)
                first = load_image_folder(source, progress=False)
                self.assertEqual(self.listing(shared), before)
                entries = [p for p in self.cache.iterdir() if p.name.startswith(source.name)]
                self.assertEqual(len(entries), 1)  # under $NEURAL_NETWORKS_CACHE
                with mock.patch.object(decoding, "decode", side_effect=AssertionError("decoded again")):
                    second = load_image_folder(source, progress=False)  # the second load hits the cache
                np.testing.assert_array_equal(first.train.X, second.train.X)
                self.assertEqual(self.listing(shared), before)

    def test_cache_folder_resolution(self):
        cache, data, xdg = self.tmp / "c", self.tmp / "d", self.tmp / "xdg"
        archive = zip_tree(make_tree(self.tmp / "src"), self.tmp / "set.zip")
        environments = [
            ({CACHE_ENV: str(cache), sources.DATA_ENV: str(data), "XDG_CACHE_HOME": str(xdg)}, cache, data),
            ({sources.DATA_ENV: str(data), "XDG_CACHE_HOME": str(xdg)}, data / "cache", data),
            ({"XDG_CACHE_HOME": str(xdg)}, xdg / "neural_networks" / "cache", xdg / "neural_networks"),
        ]
        for env, expected_cache, expected_data in environments:
            with self.subTest(env=sorted(env)):
                with mock.patch.dict(os.environ, env):
                    for name in {CACHE_ENV, sources.DATA_ENV} - set(env):
                        os.environ.pop(name)
                    self.assertEqual(sources.data_home(), expected_data)
                    self.assertEqual(sources.cache_home(), expected_cache)
                    load_image_folder(archive, progress=False)
                self.assertEqual(len([p for p in expected_cache.iterdir() if p.name.startswith("set.zip.")]), 1)
        # without $XDG_CACHE_HOME, or with a relative one (the XDG specification says to ignore it): ~/.cache
        for value in (None, "relative/cache"):
            with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": value or ""}):
                os.environ.pop(CACHE_ENV)
                os.environ.pop(sources.DATA_ENV)
                if value is None:
                    os.environ.pop("XDG_CACHE_HOME")
                self.assertEqual(sources.data_home(), Path("~/.cache/neural_networks").expanduser())
                self.assertEqual(sources.cache_home(), Path("~/.cache/neural_networks/cache").expanduser())

    def test_an_unwritable_cache_folder_loads_without_the_cache(self):
        blocker = self.tmp / "not-a-folder"
        blocker.write_text("a file where the cache folder would be")
        archive = zip_tree(make_tree(self.tmp / "src"), self.tmp / "set.zip")
        expected = load_image_folder(archive, progress=False, cache=False)
        with mock.patch.dict(os.environ, {CACHE_ENV: str(blocker / "cache")}):
            for _ in range(2):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ds = load_image_folder(archive, progress=False)
                np.testing.assert_array_equal(ds.train.X, expected.train.X)
                self.assertEqual(len(caught), 1, [str(w.message) for w in caught])  # one warning at most
                message = str(caught[0].message)
                self.assertIn(str(blocker / "cache"), message)
                self.assertIn(CACHE_ENV, message)
                self.assertNotIn("\n", message)
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir()), ["not-a-folder", "set.zip", "src"])

    def test_same_file_name_in_two_folders(self):
        first = zip_tree(make_tree(self.tmp / "a" / "tree", classes=["x", "y"]), self.tmp / "a" / "set.zip")
        second = zip_tree(make_tree(self.tmp / "b" / "tree", size=(5, 4)), self.tmp / "b" / "set.zip")
        shapes = {first: (6, 8, 3), second: (4, 5, 3)}
        for archive in (first, second):
            load_image_folder(archive, progress=False)
        with mock.patch.object(decoding, "decode", side_effect=AssertionError("decoded again")):
            for archive in (first, second, first):
                self.assertEqual(load_image_folder(archive, progress=False).input_shape, shapes[archive])
        self.assertEqual(len(list(self.cache.iterdir())), 2)

    def test_two_builders_of_one_entry_never_spoil_it(self):
        from neural_networks.datasets import cache

        archive = zip_tree(make_tree(self.tmp / "src"), self.tmp / "set.zip")
        arrays, meta = {"a": np.arange(3, dtype=np.uint8), "b": np.ones((2, 2), np.uint8)}, {"splits": []}
        save = np.save

        def other_process_first(fail: bool):
            # while this process writes its first array, another one builds and publishes the same
            # entry; then this one finishes (or fails: a full disk) and must leave that entry whole
            calls = []

            def np_save(*args, **kwargs):
                calls.append(args)
                if len(calls) == 1:
                    with mock.patch.object(np, "save", save):
                        cache.save_cache(archive, "t", arrays, meta)
                elif fail:
                    raise OSError(28, "No space left on device")
                return save(*args, **kwargs)

            return mock.patch.object(np, "save", np_save)

        for fail in (False, True):
            with self.subTest(fail=fail):
                shutil.rmtree(self.cache, ignore_errors=True)
                with other_process_first(fail), warnings.catch_warnings(record=True):
                    warnings.simplefilter("always")
                    cache.save_cache(archive, "t", arrays, meta)
                hit = cache.load_cache(archive, "t")
                self.assertIsNotNone(hit)
                np.testing.assert_array_equal(hit[0]["b"], arrays["b"])
                self.assertEqual(len(list(self.cache.iterdir())), 1)  # the entry, no leftovers

    def test_a_damaged_entry_is_rebuilt_in_place(self):
        archive = zip_tree(make_tree(self.tmp / "src"), self.tmp / "set.zip")
        expected = load_image_folder(archive, progress=False).train.X
        (entry,) = self.cache.iterdir()
        for damage in ("train_images.npy", "meta.json"):
            with self.subTest(damage=damage):
                (entry / damage).unlink()
                np.testing.assert_array_equal(load_image_folder(archive, progress=False).train.X, expected)
                self.assertEqual(list(self.cache.iterdir()), [entry])
                self.assertTrue((entry / damage).is_file())

    def test_concurrent_loads_in_two_processes(self):
        import multiprocessing

        archive = tar_tree(make_tree(self.tmp / "src", per_class={"train": 10, "test": 4}), self.tmp / "set.tar.gz")
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(_load_train_images, [archive, archive])
        np.testing.assert_array_equal(results[0], results[1])
        self.assertEqual(len(list(self.cache.iterdir())), 1)
        with mock.patch.object(decoding, "decode", side_effect=AssertionError("decoded again")):
            np.testing.assert_array_equal(_load_train_images(archive), results[0])

    def test_abandoned_builds_are_cleared(self):
        from neural_networks.datasets import cache

        archive = zip_tree(make_tree(self.tmp / "src"), self.tmp / "set.zip")
        load_image_folder(archive, progress=False)
        (entry,) = self.cache.iterdir()
        dead = subprocess.Popen(["true"])
        dead.wait()
        leftovers = {}
        for label, pid in (("dead", dead.pid), ("alive", os.getpid())):
            leftovers[label] = self.cache / f".{entry.name}.{cache._owner(pid)}.0000.tmp"
            leftovers[label].mkdir()
            (leftovers[label] / "train_images.npy").write_bytes(b"half written")
        os.utime(archive, ns=(time.time_ns(), time.time_ns() + 10**9))  # changed: built again
        load_image_folder(archive, progress=False)
        self.assertFalse(leftovers["dead"].exists())  # its process was killed while writing
        self.assertTrue(leftovers["alive"].exists())  # may still be written
        self.assertEqual(len([p for p in self.cache.iterdir() if not p.name.startswith(".")]), 1)

    def test_load_images_for_prediction(self):
        tree = make_tree(self.tmp / "t", per_class={"train": 2, "test": 1})
        X, names = image_folder.load_images(tree / "test", progress=False, return_names=True)
        self.assertEqual(X.shape, (3, 6, 8, 3))
        self.assertEqual(names, ["cat/0000.png", "dog/0000.png", "frog/0000.png"])
        ds = load_image_folder(tree, flatten=True, validation_size=0, progress=False, cache=False)
        X = datasets.load_images(tree / "test", like=ds, progress=False)
        self.assertEqual(X.shape, (3, 6 * 8 * 3))
        np.testing.assert_array_equal(X, ds.test.X)
        save_image(tree / "test" / "zz.png", np.zeros((5, 8, 3), np.uint8))
        with self.assertRaisesRegex(DataFormatError, "zz.png: image is 8x5x3, expected 8x6x3"):
            datasets.load_images(tree / "test", like=ds, progress=False)


def _tar_block(name: bytes, size_field: bytes, kind: bytes) -> bytes:
    """One 512-byte ustar header with a valid checksum and a raw size field."""
    header = bytearray(512)
    header[: len(name)] = name
    header[100:108] = b"0000644\0"
    header[124 : 124 + len(size_field)] = size_field
    header[156:157] = kind
    header[257:263] = b"ustar\0"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _pax_tar(size_value: bytes) -> bytes:
    """A pax header declaring ``size=<size_value>`` for the next member, then that member."""
    body = b" size=" + size_value + b"\n"
    length = len(body) + 2
    length = len(body) + len(str(length))
    record = str(length).encode() + body
    pax = _tar_block(b"PaxHeader/a.png", b"%011o\0" % len(record), b"x") + record.ljust(512, b"\0")
    member = _tar_block(b"train/cat/a.png", b"%011o\0" % 4, b"0") + b"\x89PNG".ljust(512, b"\0")
    return pax + member + b"\0" * 1024


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (valid CRC) declaring ``width`` x ``height`` RGB, no pixels."""
    ihdr = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n"]
        + [(len(c) - 4).to_bytes(4, "big") + c + zlib.crc32(c).to_bytes(4, "big") for c in (ihdr, idat, b"IEND")]
    )


class TestUntrustedFiles(DataTestCase):
    """Crafted files end quickly, in bounded memory, with a one-line error naming the file."""

    def within(self, seconds: float, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` in a thread; fails (instead of hanging) past ``seconds``."""
        result: dict = {}

        def target():
            try:
                result["value"] = fn(*args, **kwargs)
            except BaseException as err:  # re-raised in the test's thread
                result["error"] = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(seconds)
        self.assertFalse(thread.is_alive(), f"{getattr(fn, '__name__', fn)} still running after {seconds} s")
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def assert_one_line(self, ctx, path) -> None:
        message = str(ctx.exception)
        self.assertIn(str(path), message)
        self.assertNotIn("\n", message)

    # -- tar headers
    def test_negative_pax_size_is_refused_not_looped(self):
        data = _pax_tar(b"-1000")
        with self.assertRaisesRegex(DataFormatError, r"x\.tar: corrupt pax header at byte 0 .*size b'-1000'"):
            self.within(0.5, tar.tar_index, data, "x.tar")
        for name, mode in (("x.tar", None), ("x.tar.gz", "gz")):
            archive = self.tmp / name
            archive.write_bytes(gzip.compress(data) if mode else data)
            for limit in (datasets.archives._IN_MEMORY_LIMIT, 0):  # indexed in memory, and streamed by tarfile
                with mock.patch.object(datasets.archives, "_IN_MEMORY_LIMIT", limit):
                    with self.assertRaises(DataFormatError) as ctx:
                        self.within(0.5, load_image_folder, archive, progress=False, cache=False)
                self.assert_one_line(ctx, archive)

    def test_negative_or_oversized_header_sizes(self):
        negative = _tar_block(b"train/cat/a.png", b"-0001750\0", b"0") + b"\0" * 1536
        with self.assertRaisesRegex(DataFormatError, r"x\.tar: corrupt tar header at byte 0 \(negative size -1000\)"):
            self.within(0.5, tar.tar_index, negative, "x.tar")
        with self.assertRaisesRegex(DataFormatError, r"x\.tar: truncated: member .*needs 1000000000 bytes"):
            self.within(0.5, tar.tar_index, _pax_tar(b"1000000000"), "x.tar")
        with self.assertRaisesRegex(DataFormatError, r"x\.tar: corrupt pax header"):
            self.within(0.5, tar.tar_index, _pax_tar(b"12abc"), "x.tar")

    def test_a_tar_cut_at_a_header_boundary_is_truncated(self):
        tree = self.tmp / "tree"
        for i in range(3):
            save_image(tree / "train" / "cat" / f"{i}.png", np.zeros((4, 4, 3), np.uint8))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tf:
            tf.add(tree, arcname="tree")
        data = buffer.getvalue()
        self.assertEqual(len(tar.tar_index(data, "x.tar")), 3)
        members = tar.tar_index(data, "x.tar")
        cut = data[: members[1][1] - 512]  # just before the second image's header: no end marker
        with self.assertRaisesRegex(DataFormatError, r"x\.tar: truncated: the archive ends at byte \d+ without"):
            tar.tar_index(cut, "x.tar")

    # -- bounded decompression
    def test_idx_gzip_bomb_stops_after_the_announced_size(self):
        path = self.tmp / "train-images-idx3-ubyte.gz"
        header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (3, 28, 28))
        path.write_bytes(gzip.compress(header + bytes(8 << 20), 1))
        tracemalloc.start()
        try:
            with self.assertRaisesRegex(DataFormatError, "has trailing bytes") as ctx:
                self.within(0.5, idx.read_idx, path, idx.IMAGE_MAGIC)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assert_one_line(ctx, path)
        self.assertLess(peak, 1 << 20)  # never the 8 MB it expands to

    def test_idx_absurd_dimensions_refused_before_reading(self):
        path = self.tmp / "huge.gz"
        header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (100_000, 100_000, 100_000))
        path.write_bytes(gzip.compress(header + bytes(1000)))
        with self.assertRaisesRegex(DataFormatError, r"announce 1000000000000000 bytes, more than the limit") as ctx:
            idx.read_idx(path, idx.IMAGE_MAGIC)
        self.assert_one_line(ctx, path)
        small = write_idx(self.tmp / "small", np.zeros((3, 28, 28)), 2051, True)
        with self.assertRaisesRegex(DataFormatError, "max_bytes="):
            idx.read_idx(small, idx.IMAGE_MAGIC, max_bytes=1000)
        self.assertEqual(idx.read_idx(small, idx.IMAGE_MAGIC, max_bytes=3 * 28 * 28).shape, (3, 28, 28))
        # under the limit but far more than the file holds: read as it comes, reported truncated
        claims = self.tmp / "claims"
        header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (1000, 1000, 1000))
        claims.write_bytes(gzip.compress(header + bytes(100)))
        tracemalloc.start()
        try:
            with self.assertRaisesRegex(DataFormatError, "truncated"):
                idx.read_idx(claims, idx.IMAGE_MAGIC)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 4 << 20)

    def _bomb_tree(self, size: int) -> Path:
        tree = make_tree(self.tmp / "tree", per_class={"train": 1, "test": 1})
        (tree / "train" / "cat" / "zz.png").write_bytes(bytes(size))
        return tree

    def test_image_archive_bomb_stops_at_max_bytes(self):
        tree = self._bomb_tree(8 << 20)
        for name, mode in (("bomb.tar.gz", "w:gz"), ("bomb.tar.xz", "w:xz"), ("bomb.tar", "w")):
            archive = tar_tree(tree, self.tmp / name, mode=mode)
            for limit in (datasets.archives._IN_MEMORY_LIMIT, 0):
                with (
                    self.subTest(name=name, limit=limit),
                    mock.patch.object(datasets.archives, "_IN_MEMORY_LIMIT", limit),
                ):
                    tracemalloc.start()
                    try:
                        with self.assertRaisesRegex(DataFormatError, r"more than 1000000 bytes .*max_bytes=") as ctx:
                            self.within(2, load_image_folder, archive, progress=False, cache=False, max_bytes=1_000_000)
                        peak = tracemalloc.get_traced_memory()[1]
                    finally:
                        tracemalloc.stop()
                    self.assert_one_line(ctx, archive)
                    if mode == "w:gz":  # (a plain tar is refused from its size; xz's decoder holds an 8 MB window)
                        self.assertLess(peak, 4 << 20)
        archive = zip_tree(tree, self.tmp / "bomb.zip")
        with self.assertRaisesRegex(DataFormatError, r"bomb\.zip: holds more than 1000000 bytes"):
            load_image_folder(archive, progress=False, cache=False, max_bytes=1_000_000)
        with self.assertRaisesRegex(DataFormatError, r"tree: holds more than 1000000 bytes"):
            load_image_folder(tree, progress=False, cache=False, max_bytes=1_000_000)

    def test_per_image_bound(self):
        tree = self._bomb_tree(20_000)
        archives = [tree, tar_tree(tree, self.tmp / "a.tar.gz"), zip_tree(tree, self.tmp / "a.zip")]
        with mock.patch.object(datasets.archives, "MAX_IMAGE_BYTES", 10_000):
            for archive in archives:
                with self.assertRaisesRegex(DataFormatError, r"train/cat/zz\.png: 20000 bytes, more than the 10000"):
                    load_image_folder(archive, progress=False, cache=False)
            with mock.patch.object(datasets.archives, "_IN_MEMORY_LIMIT", 0):
                with self.assertRaisesRegex(DataFormatError, r"zz\.png: 20000 bytes, more than the 10000"):
                    load_image_folder(archives[1], progress=False, cache=False)

    def test_cifar_tarball_bomb(self):
        path, _ = make_cifar_tarball(self.tmp / "cifar-10-python.tar.gz", override={"extra": bytes(4 << 20)})
        with self.assertRaisesRegex(DataFormatError, r"cifar-10-python\.tar\.gz: holds more than 1000000 bytes"):
            self.within(1, cifar10._pickle_members, path, False, 1_000_000)
        with mock.patch.object(cifar10, "MAX_IMAGE_BYTES", 1000):
            with self.assertRaisesRegex(DataFormatError, r"data_batch_1: \d+ bytes, more than the 1000"):
                cifar10._pickle_members(path, False)

    def test_cifar_max_bytes_reaches_every_source(self):
        """``data.max_bytes`` bounds CIFAR-10 read from its tarball, its extracted folder and an image
        folder alike, and a folder's oversized batch file is refused before it is read."""
        from neural_networks.datasets import initialize_dataset

        tarball, _ = make_cifar_tarball(self.tmp / "cifar-10-python.tar.gz")
        folder = self.tmp / "extracted"
        (folder / cifar10.BATCH_FOLDER).mkdir(parents=True)
        with tarfile.open(tarball) as tf:
            for member in tf.getmembers():
                (folder / member.name).write_bytes(tf.extractfile(member).read())
        tree = make_tree(self.tmp / "images", per_class={"train": 1, "test": 1}, size=(32, 32))
        for source in (tarball, folder, tree):
            with self.subTest(source=source.name):
                args = dict(path=source, progress=False, cache=False, validation_size=0)
                with self.assertRaisesRegex(DataFormatError, r"more than (the limit of )?300\b"):
                    initialize_dataset("cifar10", max_bytes=300, **args)
                self.assertEqual(
                    initialize_dataset("cifar10", max_bytes=10 << 20, **args).train.X.shape[1:], (32, 32, 3)
                )
        with (
            mock.patch.object(cifar10, "MAX_IMAGE_BYTES", 1000),
            mock.patch.object(Path, "read_bytes", side_effect=AssertionError("read before its size was checked")),
        ):
            with self.assertRaisesRegex(DataFormatError, r"data_batch_1: \d+ bytes, more than the 1000 allowed") as ctx:
                cifar10._pickle_members(folder, False)
        self.assertIn(str(folder / cifar10.BATCH_FOLDER), str(ctx.exception))

    # -- image formats
    def test_eps_content_named_png_never_reaches_the_eps_plugin(self):
        from PIL import EpsImagePlugin

        tree = make_tree(self.tmp / "t", per_class={"train": 1, "test": 1})
        eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 6\nshowpage\n"
        (tree / "train" / "cat" / "x.png").write_bytes(eps)
        with (
            mock.patch.object(
                EpsImagePlugin.EpsImageFile, "_open", side_effect=AssertionError("EPS plugin")
            ) as eps_open,
            mock.patch.object(EpsImagePlugin, "Ghostscript", side_effect=AssertionError("Ghostscript")) as gs,
        ):
            with self.assertRaisesRegex(
                DataFormatError, r"train/cat/x\.png: unreadable image \(not PNG or JPEG"
            ) as ctx:
                load_image_folder(tree, progress=False, cache=False)
            with self.assertRaisesRegex(DataFormatError, "not PNG or JPEG"):
                decoding.decode_image(eps, "y.eps")
        self.assert_one_line(ctx, tree)
        eps_open.assert_not_called()
        gs.assert_not_called()

    def test_content_must_match_the_extension(self):
        jpeg, png = io.BytesIO(), io.BytesIO()
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(jpeg, format="JPEG")
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(png, format="PNG")
        with self.assertRaisesRegex(DataFormatError, r"x\.png: the file holds a JPEG image but its extension says PNG"):
            decoding.decode_image(jpeg.getvalue(), "x.png")
        with self.assertRaisesRegex(
            DataFormatError, r"x\.jpeg: the file holds a PNG image but its extension says JPEG"
        ):
            decoding.decode_image(png.getvalue(), "x.jpeg")
        self.assertEqual(decoding.decode_image(jpeg.getvalue(), "x.JPG").shape, (6, 8, 3))
        self.assertEqual(decoding.decode_image(png.getvalue(), "no extension").shape, (6, 8, 3))
        gif = io.BytesIO()
        Image.fromarray(np.zeros((6, 8), np.uint8)).save(gif, format="GIF")
        with self.assertRaisesRegex(DataFormatError, "not PNG or JPEG"):
            decoding.decode_image(gif.getvalue(), "x.png")

    def test_huge_declared_png_is_refused(self):
        for width, height in ((100_000, 100_000), (20_000, 10_000), (5_000, 5_000)):
            with self.subTest(size=(width, height)):
                with self.assertRaisesRegex(DataFormatError, r"x\.png: image (too large|declares)") as ctx:
                    self.within(0.5, decoding.decode_image, _png_header(width, height), "dir/x.png")
                self.assertNotIn("\n", str(ctx.exception))
                self.assertIn("dir/x.png", str(ctx.exception))


class TestAugment(unittest.TestCase):
    def setUp(self) -> None:
        self.X = np.random.default_rng(0).integers(1, 256, (6, 8, 10, 3), dtype=np.uint8)

    def test_flip(self):
        rng = np.random.default_rng(0)
        out = augment.random_flip(self.X, rng, p=1.0)
        np.testing.assert_array_equal(out, self.X[:, :, ::-1])
        np.testing.assert_array_equal(augment.random_flip(self.X, rng, p=0.0), self.X)
        out = augment.random_flip(self.X, np.random.default_rng(1))
        for x, o in zip(self.X, out):
            self.assertTrue(np.array_equal(o, x) or np.array_equal(o, x[:, ::-1]))

    def test_crop_shifts_content_with_zero_padding(self):
        pad = 2
        out = augment.random_crop(self.X, np.random.default_rng(3), pad=pad)
        self.assertEqual((out.shape, out.dtype), (self.X.shape, self.X.dtype))
        padded = np.pad(self.X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        shifts = set()
        for x, o in zip(padded, out):
            matches = [
                (dy, dx)
                for dy in range(2 * pad + 1)
                for dx in range(2 * pad + 1)
                if np.array_equal(o, x[dy : dy + 8, dx : dx + 10])
            ]
            self.assertEqual(len(matches), 1)
            shifts.add(matches[0])
        self.assertGreater(len(shifts), 1)
        np.testing.assert_array_equal(augment.random_crop(self.X, np.random.default_rng(0), pad=0), self.X)

    def test_determinism_and_options(self):
        aug = augment.make_augmenter(True)
        a = aug(self.X, np.random.default_rng(7))
        b = aug(self.X, np.random.default_rng(7))
        c = aug(self.X, np.random.default_rng(8))
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a, c))
        self.assertIsNone(augment.make_augmenter(False))
        self.assertEqual(augment.make_augmenter(["hflip"]).names, ("flip",))
        with self.assertRaisesRegex(ValueError, "unknown augmentation 'rotate'"):
            augment.make_augmenter(["rotate"])
        flat = augment.Augmenter(["flip"], flip_p=1.0, image_shape=(8, 10, 3))
        out = flat(self.X.reshape(6, -1), np.random.default_rng(0))
        np.testing.assert_array_equal(out.reshape(self.X.shape), self.X[:, :, ::-1])

    def test_loader_augmentation_off_by_default_and_toggled(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp, True)
        rng = np.random.default_rng(0)
        for split, n in (("train", 6), ("test", 2)):
            for cls in CLASSES:
                for i in range(n):
                    save_image(tmp / split / cls / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        ds = load_image_folder(tmp, batch_size=64, validation_size=3, progress=False, cache=False)
        self.assertFalse(ds.train.augmenting)
        index = np.arange(ds.train.n_examples)
        plain, _ = ds.train.batch(index)
        np.testing.assert_array_equal(plain, ds.train.transform(ds.train.X))
        ds.train.augmenting = True
        augmented, _ = ds.train.batch(index)
        self.assertFalse(np.array_equal(plain, augmented))
        self.assertFalse(ds.validate.augmenting or ds.test.augmenting)
        on = load_image_folder(tmp, validation_size=3, augment=["flip"], progress=False, cache=False)
        self.assertTrue(on.train.augmenting)
        self.assertEqual(on.train.augment.names, ("flip",))


class TestSplitsAndCatalog(DataTestCase):
    def test_split_validation_exact_and_stratified(self):
        labels = np.repeat([0, 1, 2], [50, 30, 20])
        train, val = split_validation(labels, 10, seed=0)
        self.assertEqual(len(val), 10)
        np.testing.assert_array_equal(np.bincount(labels[val]), [5, 3, 2])
        self.assertEqual(len(np.intersect1d(train, val)), 0)
        self.assertEqual(len(train) + len(val), 100)
        np.testing.assert_array_equal(split_validation(labels, 10, seed=0)[1], val)
        with self.assertRaisesRegex(ValueError, "validation_size"):
            split_validation(labels, 100, seed=0)

    def test_one_batch_size_default(self):
        """``initialize_dataset``, every registered loader and each data set's ``SPEC.load`` default
        ``batch_size`` to the one constant."""
        signatures = {"initialize_dataset": inspect.signature(initialize_dataset)}
        for name in datasets.DATASETS:
            signatures[name] = inspect.signature(datasets.DATASETS[name])
            signatures[f"{name} SPEC.load"] = inspect.signature(datasets.DATASETS.spec(name).load)
        for where, signature in signatures.items():
            with self.subTest(where=where):
                self.assertEqual(signature.parameters["batch_size"].default, datasets.DEFAULT_BATCH_SIZE)
        self.assertEqual(initialize_dataset("iris").batch_size, datasets.DEFAULT_BATCH_SIZE)

    def test_channel_stats(self):
        X = np.random.default_rng(0).integers(0, 256, (7, 5, 4, 3), dtype=np.uint8)
        mean, std = datasets.channel_stats(X, chunk=50)
        np.testing.assert_allclose(mean, X.reshape(-1, 3).mean(0), rtol=1e-12)
        np.testing.assert_allclose(std, X.reshape(-1, 3).std(0), rtol=1e-12)

    def test_list_and_verify(self):
        rows = {r["name"]: r for r in list_datasets()}
        self.assertTrue(rows["iris"]["found"])
        self.assertFalse(rows["fashion_mnist"]["found"])
        self.assertFalse(rows["cifar10"]["found"])
        self.assertEqual([c.status for c in verify_dataset("fashion_mnist")], ["missing"] * 4)
        folder = make_idx_set(self.home / "fashion_mnist")
        rows = {r["name"]: r for r in list_datasets()}
        self.assertTrue(rows["fashion_mnist"]["found"])
        self.assertEqual(rows["fashion_mnist"]["path"], str(folder))
        # the tiny files are not the published ones: every check is a mismatch, then patch the digests
        checks = verify_dataset("fashion_mnist")
        self.assertEqual([c.status for c in checks], ["mismatch"] * 4)
        line, passed = checks[0]
        self.assertFalse(passed)
        self.assertIn("mismatch", line)
        self.assertIn("found", datasets.format_dataset_row(list_datasets()[1]))
        patched = {}
        for role, remote in fashion_mnist.FILES.items():
            raw = gzip.decompress((folder / remote.name).read_bytes())
            patched[role] = sources.RemoteFile(remote.name, remote.url, remote.md5, hashlib.sha256(raw).hexdigest())
        with mock.patch.dict(fashion_mnist.FILES, patched):
            self.assertEqual([c.status for c in verify_dataset("fashion_mnist")], ["ok"] * 4)
        archive, _ = make_cifar_tarball(self.tmp / "cifar-10-python.tar.gz")
        check = verify_dataset("cifar10", path=archive)[0]
        self.assertEqual((check.status, check.algorithm), ("mismatch", "md5"))
        digest = hashlib.md5(archive.read_bytes()).hexdigest()
        with mock.patch.object(cifar10, "CANONICAL", sources.RemoteFile(archive.name, "u", digest)):
            self.assertEqual(verify_dataset("cifar10", path=archive)[0].status, "ok")
        self.assertEqual(verify_dataset("cifar10")[0].status, "missing")

    def test_list_and_verify_mnist(self):
        rows = {r["name"]: r for r in list_datasets()}
        self.assertFalse(rows["mnist"]["found"])
        self.assertIn(f"will download to {self.home / 'mnist'}", rows["mnist"]["message"])
        self.assertNotIn("apt-get", rows["mnist"]["message"])
        self.assertIn("mnist", datasets.VERIFIABLE)
        self.assertEqual([c.status for c in verify_dataset("mnist")], ["missing"] * 4)
        with self.assertRaisesRegex(DataNotFoundError, "MNIST file 'train-images-idx3-ubyte.gz' not found"):
            datasets.dataset_path("mnist")
        folder = make_idx_set(self.home / "mnist")
        rows = {r["name"]: r for r in list_datasets()}
        self.assertEqual((rows["mnist"]["found"], rows["mnist"]["path"]), (True, str(folder)))
        self.assertEqual(datasets.dataset_path("mnist"), folder)
        # .gz files are checked by the md5 of the published .gz (the tiny ones are not it)
        checks = verify_dataset("mnist")
        self.assertEqual([(c.status, c.algorithm) for c in checks], [("mismatch", "md5")] * 4)
        self.assertIn("not the published train-images-idx3-ubyte.gz", checks[0].line)
        patched = {
            role: dataclasses.replace(r, md5=hashlib.md5((folder / r.name).read_bytes()).hexdigest())
            for role, r in mnist.FILES.items()
        }
        with mock.patch.dict(mnist.FILES, patched):
            self.assertEqual([c.status for c in verify_dataset("mnist")], ["ok"] * 4)
        # decompressed files have no published checksum: unknown, which passes, not a mismatch
        raw = make_idx_set(self.tmp / "raw", gz=False)
        checks = verify_dataset("mnist", path=raw)
        self.assertEqual([(c.status, c.passed) for c in checks], [("unknown", True)] * 4)
        self.assertIn("no published checksum", checks[0].line)

    def test_a_missing_data_set_is_one_unchained_error_from_initialize_dataset(self):
        import traceback

        package = str(Path(datasets.__file__).parents[1])

        def offline(url, timeout=None):
            raise urllib.error.URLError("no route to host")

        def raised(**env):
            # caught here, not by assertRaises (which drops the traceback)
            with mock.patch.dict(os.environ, env), mock.patch.object(sources, "_urlopen", offline):
                try:
                    initialize_dataset("mnist", 10, progress=False)
                except DataNotFoundError as err:
                    frames = traceback.extract_tb(err.__traceback__)
                    return err, [f.name for f in frames if f.filename.startswith(package)]
            self.fail("no DataNotFoundError")

        err, frames = raised(NEURAL_NETWORKS_DEBUG="")
        self.assertEqual(frames, ["initialize_dataset"])
        self.assertIn("MNIST file 'train-images-idx3-ubyte.gz' not found", str(err))
        self.assertIn("no route to host", str(err))  # why the download failed is in the message
        self.assertIsNone(err.__cause__)
        self.assertTrue(err.__suppress_context__)
        err, frames = raised(NEURAL_NETWORKS_DEBUG="1")  # debugging keeps every frame, not the chain
        self.assertIn("locate_file", frames)
        self.assertIsNone(err.__cause__)
        # a loader called directly raises it unchained too (its frames kept)
        with mock.patch.object(sources, "_urlopen", offline), self.assertRaises(DataNotFoundError) as ctx:
            load_mnist(progress=False)
        self.assertIsNone(ctx.exception.__cause__)
        self.assertTrue(ctx.exception.__suppress_context__)

    def test_initialize_dataset_names(self):
        self.assertEqual(initialize_dataset("iris", 10).train.batch_size, 10)
        with self.assertRaisesRegex(ValueError, "unknown data set 'imagenet'; valid names: iris, fashion_mnist, mnist"):
            initialize_dataset("imagenet", 10)
        self.assertEqual(set(datasets.DATASETS), {"iris", "fashion_mnist", "mnist", "cifar10", "image_folder"})
        for alias, name in (
            ("Fashion-MNIST", "fashion_mnist"),
            ("fmnist", "fashion_mnist"),
            ("CIFAR-10", "cifar10"),
            ("imagefolder", "image_folder"),
        ):
            self.assertEqual(datasets.DATASETS.canonical(alias), name)
        self.assertEqual(initialize_dataset("IRIS", 10).name, "iris")
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for data set 'iris' \(unexpected argument 'flatten'\); "
            r"valid arguments: batch_size, seed$",
        ):
            initialize_dataset("iris", 10, flatten=True)

    def test_every_data_set_has_a_spec(self):
        from neural_networks.datasets.spec import DatasetSpec

        for name in datasets.DATASETS:
            with self.subTest(name=name):
                spec = datasets.DATASETS.spec(name)
                self.assertIsInstance(spec, DatasetSpec)
                self.assertTrue(spec.description)
                self.assertEqual(
                    inspect.signature(spec.load).parameters.keys(),
                    inspect.signature(datasets.DATASETS[name]).parameters.keys(),
                )
        self.assertIs(datasets.DATASETS.spec("mnist"), mnist.SPEC)
        self.assertIs(datasets.DATASETS.spec("cifar10").load, datasets.load_cifar10)
        self.assertEqual(datasets.VERIFIABLE, ("fashion_mnist", "mnist", "cifar10"))
        self.assertEqual([r["name"] for r in list_datasets()], list(datasets.DATASETS))

    def test_iris_and_image_folder_specs(self):
        iris_csv = Path(datasets.__file__).parent / "data" / "iris.csv"
        self.assertEqual(datasets.dataset_path("iris"), iris_csv)
        self.assertEqual(
            list_datasets()[0],
            {
                "name": "iris",
                "description": datasets.DATASETS.spec("iris").description,
                "found": True,
                "path": str(iris_csv),
                "where": "shipped",
            },
        )
        self.assertEqual([(c.name, c.status) for c in verify_dataset("iris")], [("iris.csv", "unknown")])
        with self.assertRaisesRegex(DataNotFoundError, "no default location"):
            datasets.dataset_path("image_folder")
        with self.assertRaisesRegex(DataNotFoundError, "no such file or folder"):
            verify_dataset("image_folder", path=self.tmp / "nothing")
        row = list_datasets(path=self.tmp)[-1]
        self.assertEqual(
            (row["name"], row["found"], row["where"], row["message"]), ("image_folder", True, "explicit path", "")
        )
        self.assertEqual([c.status for c in verify_dataset("imagefolder", path=self.tmp)], ["unknown"])

    def test_catalog_only_asks_the_registry(self):
        # a new data set is a spec and one registry line: the catalog lists, locates and verifies it
        from neural_networks.datasets import catalog
        from neural_networks.datasets.spec import DatasetSpec, FileCheck
        from neural_networks.registry import Registry

        class Toy(DatasetSpec):
            description = "a toy"
            verifiable = True

            def load(self, batch_size=1):
                return batch_size

            def source(self, path=None):
                return Path(path or "/toy")

            def availability(self, path=None):
                return {"found": False, "path": None, "where": None, "message": "nowhere"}

            def verify(self, path=None):
                return [FileCheck("toy.bin", None, "missing")]

        registry = Registry("data set")
        registry.add("toy", Toy().load, aliases=("the-toy",), spec=Toy())
        with mock.patch.object(catalog, "DATASETS", registry):
            self.assertEqual(
                catalog.list_datasets(),
                [
                    {
                        "name": "toy",
                        "description": "a toy",
                        "found": False,
                        "path": None,
                        "where": None,
                        "message": "nowhere",
                    }
                ],
            )
            self.assertEqual(catalog.dataset_path("the_toy", "/x"), Path("/x"))
            self.assertEqual([c.status for c in catalog.verify_dataset("TOY")], ["missing"])
            with self.assertRaisesRegex(ValueError, "unknown data set 'mnist'; valid names: toy"):
                catalog.verify_dataset("mnist")


class TestDataListReadsConfigs(DataTestCase):
    """``neural-networks data list`` also reports the data paths of ``./configs/*.yaml``."""

    def data_list(self, cwd: Path) -> tuple[list[str], list[str]]:
        """stdout and stderr lines of ``neural-networks data list`` run in ``cwd``."""
        from neural_networks import cli

        out, err = io.StringIO(), io.StringIO()
        here = os.getcwd()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.assertEqual(cli.main(["data", "list"]), 0)
        finally:
            os.chdir(here)
        return out.getvalue().splitlines(), err.getvalue().splitlines()

    def test_data_paths_of_the_configs_are_listed(self):
        work = self.tmp / "work"
        tree = make_tree(self.tmp / "tree", size=(32, 32), ext="jpg", classes=["cat", "dog"], per_class={"train": 2})
        make_tree(tree, size=(32, 32), ext="jpg", classes=["cat", "dog"], per_class={"test": 1})
        (work / "data").mkdir(parents=True)
        tar_tree(tree, work / "data" / "cifar10-jpeg.tar.gz", arcname="cifar10-jpeg")
        configs = work / "configs"
        configs.mkdir()
        for name, data in (
            ("cifar10_cnn", {"name": "cifar10", "path": "data/cifar10-jpeg.tar.gz"}),
            ("cifar10_fast", {"name": "CIFAR-10", "path": "data/cifar10-jpeg.tar.gz", "batch_size": 8}),
            ("shapes", {"name": "image_folder", "path": "data/missing.zip"}),
            ("iris", {"name": "iris"}),  # the default location: nothing more to say
            ("typo", {"name": "cifar", "path": "data/cifar10-jpeg.tar.gz"}),
        ):
            (configs / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "data": data}))
        (configs / "space.yaml").write_text("optimizer.lr: {low: 0.01, high: 0.1}\n")  # a search space
        (configs / "broken.yaml").write_text("data: [\n")
        out, err = self.data_list(work)
        rows = {line.split()[0]: i for i, line in enumerate(out) if not line.startswith(" ")}
        self.assertEqual(list(rows), list(datasets.DATASETS))  # one row per data set, then details
        self.assertEqual(
            out[rows["cifar10"]],
            f"{'cifar10':14s} {'found':8s} data/cifar10-jpeg.tar.gz "
            "(data.path of configs/cifar10_cnn.yaml, configs/cifar10_fast.yaml)",
        )
        self.assertRegex(
            out[rows["cifar10"] + 1],
            rf"^ {{15}}missing  default location: not in {re.escape(str(self.home / 'cifar10'))}; will download",
        )
        self.assertEqual(rows["image_folder"], rows["cifar10"] + 2)
        self.assertEqual(
            out[rows["image_folder"]],
            f"{'image_folder':14s} {'missing':8s} data/missing.zip (data.path of configs/shapes.yaml): "
            "no such file or folder",
        )
        self.assertRegex(out[rows["image_folder"] + 1], r"^ {15}missing  default location: needs a path")
        rows_without_configs = [datasets.format_dataset_row(row) for row in list_datasets()]
        self.assertEqual(out[: rows["cifar10"]], rows_without_configs[:3])  # iris and the MNISTs as before
        # what could not be read is said, one line per config, never silently dropped
        self.assertEqual(len(err), 2, err)
        self.assertRegex(err[0], r"^warning: configs/broken.yaml: not valid YAML .*; its data.path is not listed$")
        self.assertRegex(
            err[1],
            r"^warning: configs/typo.yaml: data.name: unknown data set 'cifar'; valid names: .*; its data.path is not listed$",
        )
        # a config path that is there, for a data set whose default location is there too
        make_idx_set(self.home / "mnist")
        make_idx_set(work / "data" / "mnist")
        (configs / "mnist.yaml").write_text(
            yaml.safe_dump({"name": "m", "data": {"name": "mnist", "path": "data/mnist"}})
        )
        out, _ = self.data_list(work)
        (row,) = [i for i, line in enumerate(out) if line.startswith("mnist ")]
        self.assertEqual(out[row], f"{'mnist':14s} {'found':8s} data/mnist (data.path of configs/mnist.yaml)")
        self.assertEqual(
            out[row + 1],
            f"{'':14s} {'found':8s} default location: {self.home / 'mnist'} (data folder ($NEURAL_NETWORKS_DATA))",
        )
        # elsewhere (no configs folder) the list is as it was
        self.assertEqual(self.data_list(self.tmp)[0], [datasets.format_dataset_row(row) for row in list_datasets()])

    def test_an_explicit_path_that_is_not_there(self):
        missing = self.tmp / "nothing"
        for row in list_datasets(path=missing):
            if row["name"] != "iris":  # shipped: it takes no path
                with self.subTest(name=row["name"]):
                    self.assertEqual((row["found"], row["message"]), (False, "no such file or folder"))
        folder = make_idx_set(self.tmp / "some")
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        (row,) = [r for r in list_datasets(path=folder) if r["name"] == "mnist"]
        self.assertEqual((row["found"], row["message"]), (False, "missing t10k-labels-idx1-ubyte.gz there"))


class TestDatasetFromArrays(unittest.TestCase):
    """The course's Dataset(training_set, training_labels, batch_size, validation_set, ...) and
    its loader interface (samples_per_epoch, sample, iteration, reset, shuffle, data_, n_samples)."""

    def setUp(self):
        rng = np.random.default_rng(0)
        self.X = rng.standard_normal((25, 4))
        self.y = rng.integers(0, 3, size=25)
        self.y[:3] = [0, 1, 2]
        self.Y = np.eye(3)[self.y]

    def test_one_hot_labels_and_course_attributes(self):
        ds = datasets.Dataset(
            training_set=self.X,
            training_labels=self.Y,
            batch_size=10,
            validation_set=self.X[:6],
            validation_labels=self.Y[:6],
            test_set=self.X[:5],
            test_labels=self.Y[:5],
        )
        self.assertEqual((ds.out_dim, ds.n_classes, ds.batch_size), (3, 3, 10))
        self.assertEqual((ds.n_training, ds.n_validation, ds.n_test), (25, 6, 5))
        train = ds.train
        self.assertEqual((train.n_samples, train.samples_per_epoch, train.out_dim), (25, 3, 3))
        self.assertIs(train.data_, self.X)
        seen = []
        for step in range(3):
            self.assertEqual(train.iteration, step)
            X, Y = train.sample()
            seen.append((X, Y))
        self.assertEqual([len(X) for X, _ in seen], [10, 10, 5])
        self.assertEqual(train.iteration, 3)
        # one pass covers every example once, inputs float32 and labels aligned with them
        X_all = np.concatenate([X for X, _ in seen])
        Y_all = np.concatenate([Y for _, Y in seen])
        self.assertEqual(X_all.dtype, np.float32)
        order = np.lexsort(X_all.T)
        np.testing.assert_allclose(X_all[order], self.X.astype(np.float32)[np.lexsort(self.X.astype(np.float32).T)])
        for x, yrow in zip(X_all, Y_all):
            row = np.flatnonzero(np.all(np.isclose(self.X.astype(np.float32), x), axis=1))[0]
            np.testing.assert_array_equal(yrow, self.Y[row])
        X, _ = train.sample()  # a new pass starts
        self.assertEqual((len(X), train.iteration), (10, 1))
        train.reset()
        self.assertEqual(train.iteration, 0)
        X_test, Y_test = ds.test.sample(shuffle=False)
        np.testing.assert_allclose(X_test, self.X[:5])
        np.testing.assert_array_equal(Y_test, self.Y[:5])

    def test_positional_integer_labels_regression_and_unlabelled(self):
        ds = datasets.Dataset(self.X, self.y, 8, self.X[:4], self.y[:4])
        self.assertEqual((ds.out_dim, ds.n_test), (3, 0))
        self.assertIsNone(ds.test)
        self.assertEqual(ds.train.sample()[1].shape, (8, 3))
        targets = np.stack([self.X.sum(axis=1), self.X[:, 0]], axis=1)
        reg = datasets.Dataset(self.X, targets, 5, test_set=self.X[:3])
        self.assertEqual((reg.out_dim, reg.n_classes, reg.class_names), (2, None, []))
        X, T = next(iter(datasets.Dataset(self.X, targets, 5, shuffle=False).train))
        np.testing.assert_allclose(T, targets[:5].astype(np.float32))
        self.assertIsInstance(reg.test.sample(), np.ndarray)  # unlabelled: the inputs alone

    def test_shuffle_reorders_inputs_with_labels(self):
        ds = datasets.Dataset(self.X, self.Y, 25, seed=1)
        ds.train.shuffle()
        shuffled_X, shuffled_y = ds.train.data_, ds.train.labels
        self.assertFalse(np.array_equal(shuffled_X, self.X))
        for x, label in zip(shuffled_X, shuffled_y):
            row = np.flatnonzero(np.all(self.X == x, axis=1))[0]
            self.assertEqual(label, self.y[row])
        self.assertEqual(ds.train.iteration, 0)

    def test_from_loaders_is_the_library_form(self):
        loaders = [datasets.DataLoader(X, y, 3, 4) for X, y in ((self.X, self.y), (self.X[:6], self.y[:6]))]
        ds = datasets.Dataset.from_loaders("mine", loaders[0], loaders[1], None, ["a", "b", "c"])
        self.assertIsInstance(ds, datasets.Dataset)
        self.assertIs(ds.train, loaders[0])
        self.assertIs(ds.validation, loaders[1])
        self.assertEqual((ds.name, ds.class_names, ds.n_classes, ds.out_dim), ("mine", ["a", "b", "c"], 3, 3))
        self.assertEqual(
            (ds.input_shape, ds.batch_size, ds.n_training, ds.n_validation, ds.n_test), ((4,), 4, 25, 6, 0)
        )
        with self.assertRaisesRegex(ValueError, r"training_set must be a non-empty \(m, \.\.\.\) array"):
            datasets.Dataset("mine", loaders[0], loaders[1], None, ["a", "b", "c"])  # arrays only

    def test_bad_arrays_name_the_problem(self):
        cases = [
            (lambda: datasets.Dataset(self.X, self.Y[:20], 5), r"training_labels have shape \(20, 3\).*25 examples"),
            (lambda: datasets.Dataset(self.X, self.y - 1, 5), "whole numbers >= 0"),
            (lambda: datasets.Dataset(self.X, self.y + 0.5, 5), "whole numbers >= 0"),
            (
                lambda: datasets.Dataset(self.X, self.Y, 5, self.X[:4], self.X[:4, :2]),
                "training labels are classes but",
            ),
            (
                lambda: datasets.Dataset(self.X, self.Y, 5, self.X[:4, :3], self.Y[:4]),
                "validation_set examples have shape",
            ),
            (lambda: datasets.Dataset(self.X, None, 5), "training_labels are required"),
            (lambda: datasets.Dataset(self.X, self.Y, 0), "batch_size must be a positive int"),
            (lambda: datasets.Dataset(self.X, np.full((25, 3), np.nan), 5), "finite numbers"),
        ]
        for make, pattern in cases:
            with self.subTest(pattern=pattern), self.assertRaisesRegex(ValueError, pattern):
                make()

    def test_a_model_trains_on_it_and_sizes_its_output(self):
        from neural_networks import FullyConnected, NeuralNetwork, SGD

        ds = datasets.Dataset(self.X, self.Y, 5, self.X[:10], self.Y[:10], self.X[:10], self.Y[:10])
        model = NeuralNetwork(
            layers=[FullyConnected(8, "relu"), FullyConnected(None, "softmax")],
            optimizer=SGD(lr=0.1, momentum=0.9),
            seed=0,
        )
        history = model.train(ds, epochs=3, verbose=0)
        self.assertEqual(model.layers[-1].n_out, 3)
        self.assertEqual(len(history["val_accuracy"]), 3)
        self.assertIn("accuracy", model.test(ds))
        unlabelled = datasets.Dataset(self.X, self.Y, 5, test_set=self.X[:4])
        with self.assertRaisesRegex(ValueError, "without labels"):
            model.test(unlabelled)


class TestLabelsAreNeverTruncated(unittest.TestCase):
    def test_float_labels_must_be_whole(self):
        X = np.zeros((3, 2))
        for labels in ([0.7, 1, 0], [np.nan, 1, 0]):
            with self.subTest(labels=labels), self.assertRaisesRegex(ValueError, "whole class indices"):
                datasets.DataLoader(X, np.array(labels), 3, 2)
        np.testing.assert_array_equal(datasets.DataLoader(X, np.array([2.0, 1, 0]), 3, 2).labels, [2, 1, 0])
        with self.assertRaisesRegex(ValueError, "integers"):
            datasets.DataLoader(X, np.array(["a", "b", "c"]), 3, 2)


if __name__ == "__main__":
    unittest.main()
