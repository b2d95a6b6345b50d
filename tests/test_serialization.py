"""Model and checkpoint files: round trips, the training state, files of earlier versions, refusals."""

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks import serialization
from neural_networks.callbacks import ModelCheckpoint
from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD, Adam
from neural_networks.layers import BatchNorm, Dropout

# What `NeuralNetwork.config()` gave for this network before the format changed (format 1):
# conv (no bias) -> batch norm + ReLU -> max pool -> flatten -> dropout -> softmax, SGD momentum.
V1_CONFIG = {
    "format": "neural_networks.model/1",
    "layers": [
        {
            "name": "conv2d",
            "n_out": 2,
            "kernel_shape": [3, 3],
            "activation": "linear",
            "stride": 1,
            "pad": "same",
            "weight_init": "xavier_uniform",
            "use_bias": False,
            "n_in": 1,
        },
        {"name": "batchnorm", "momentum": 0.1, "eps": 1e-05, "activation": "relu", "n_in": 2},
        {"name": "pool2d", "kernel_shape": [2, 2], "mode": "max", "stride": 2, "pad": 0, "n_in": 2},
        {"name": "flatten", "keep_dim": "first", "n_in": 8},
        {"name": "dropout", "p": 0.25, "n_in": 8},
        {
            "name": "fully_connected",
            "n_out": 3,
            "activation": "softmax",
            "weight_init": "xavier_uniform",
            "use_bias": True,
            "n_in": 8,
        },
    ],
    "loss": {"name": "cross_entropy"},
    "optimizer": {
        "name": "sgd",
        "lr": 0.1,
        "clip_norm": None,
        "lr_scheduler": {"name": "constant", "lr": 0.1},
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.0,
    },
    "seed": 0,
}
V1_SHAPES = {  # the arrays, in the order format 1 wrote them: parameters and buffers by layer, then the optimizer
    "layers.0.W": (3, 3, 1, 2),
    "layers.1.gamma": (1, 2),
    "layers.1.beta": (1, 2),
    "buffers.1.running_mean": (1, 2),
    "buffers.1.running_var": (1, 2),
    "layers.5.W": (8, 3),
    "layers.5.b": (1, 3),
    "optimizer.W0": (3, 3, 1, 2),
    "optimizer.gamma1": (1, 2),
    "optimizer.beta1": (1, 2),
    "optimizer.W5": (8, 3),
    "optimizer.b5": (1, 3),
}


def write_v1(path, config, arrays, extra):
    """A file exactly as format 1's `NeuralNetwork.save(path, extra)` wrote it (without the library)."""
    config = dict(config, extra=extra)
    entries = {"config": np.array(json.dumps(config))}
    entries.update(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **entries)


def small_cnn():
    return NeuralNetwork(
        layers=[
            Conv2D(2, (3, 3), "linear", pad="same", use_bias=False),
            BatchNorm(activation="relu"),
            Pool2D((2, 2), "max", stride=2),
            Flatten(),
            Dropout(0.25),
            FullyConnected(3, "softmax"),
        ],
        optimizer=SGD(lr=0.1, momentum=0.9),
        seed=0,
    )


def batch(rng):
    X = rng.standard_normal((4, 4, 4, 1)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    return X, Y


class TestFormat1(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_format_1_checkpoint_loads_with_its_parameters_and_optimizer_state(self):
        rng = np.random.default_rng(3)
        arrays = {key: rng.standard_normal(shape).astype(np.float32) for key, shape in V1_SHAPES.items()}
        arrays["buffers.1.running_var"] = np.abs(arrays["buffers.1.running_var"])
        path = self.dir / "last.npz"
        write_v1(path, V1_CONFIG, arrays, extra={"epoch": 2, "best_val_accuracy": 0.5})

        checkpoint = serialization.load_checkpoint(path)
        self.assertEqual(checkpoint.format, "neural_networks.model/1")
        self.assertIsNone(checkpoint.training)
        model = NeuralNetwork.load(path)
        self.assertEqual(model.extra, {"epoch": 2, "best_val_accuracy": 0.5})
        self.assertEqual(
            [type(layer).__name__ for layer in model.layers],
            ["Conv2D", "BatchNorm", "Pool2D", "Flatten", "Dropout", "FullyConnected"],
        )
        self.assertEqual(model.seed, 0)
        self.assertEqual(model.layers[4].p, 0.25)
        for key, value in arrays.items():
            kind, rest = key.split(".", 1)
            if kind == "optimizer":
                np.testing.assert_array_equal(model.optimizer.state()[rest], value, err_msg=key)
            else:
                i, name = rest.split(".")
                store = model.layers[int(i)].parameters if kind == "layers" else model.layers[int(i)].buffers
                np.testing.assert_array_equal(store[name], value, err_msg=key)
        self.assertEqual(
            set(model.optimizer.state()), {k[len("optimizer.") :] for k in V1_SHAPES if k.startswith("optimizer.")}
        )
        self.assertEqual(model.optimizer.momentum, 0.9)
        # it predicts and trains on
        X, Y = batch(rng)
        self.assertEqual(model.predict(X).shape, (4, 3))
        model.train_step(X, Y, epoch=2)
        # and written again, it is a format-2 file with the same arrays
        again = self.dir / "again.npz"
        model.save(again, extra=model.extra)
        self.assertEqual(serialization.load_checkpoint(again).format, serialization.FORMAT)
        self.assertEqual(NeuralNetwork.load(again).extra, {"epoch": 2, "best_val_accuracy": 0.5})

    def test_a_format_1_adam_file_keeps_its_step_counts(self):
        config = {
            "format": "neural_networks.model/1",
            "layers": [
                {
                    "name": "fully_connected",
                    "n_out": 3,
                    "activation": "softmax",
                    "weight_init": "xavier_uniform",
                    "use_bias": True,
                    "n_in": 4,
                }
            ],
            "loss": {"name": "cross_entropy", "label_smoothing": 0.1},
            "optimizer": {
                "name": "adam",
                "lr": 0.01,
                "clip_norm": None,
                "lr_scheduler": {"name": "constant", "lr": 0.01},
                "beta1": 0.9,
                "beta2": 0.999,
                "eps": 1e-08,
                "weight_decay": 0.0,
            },
            "seed": None,
        }
        rng = np.random.default_rng(0)
        arrays = {
            "layers.0.W": rng.standard_normal((4, 3)).astype(np.float32),
            "layers.0.b": rng.standard_normal((1, 3)).astype(np.float32),
            "optimizer.m.W0": rng.standard_normal((4, 3)).astype(np.float32),
            "optimizer.v.W0": rng.random((4, 3)).astype(np.float32),
            "optimizer.t.W0": np.array(7),
            "optimizer.m.b0": rng.standard_normal((1, 3)).astype(np.float32),
            "optimizer.v.b0": rng.random((1, 3)).astype(np.float32),
            "optimizer.t.b0": np.array(7),
        }
        path = self.dir / "adam.npz"
        write_v1(path, config, arrays, extra={})
        model = NeuralNetwork.load(path)
        self.assertIsInstance(model.optimizer, Adam)
        self.assertEqual(model.loss.label_smoothing, 0.1)
        self.assertIsNone(model.seed)
        state = model.optimizer.state()
        for key, value in arrays.items():
            if key.startswith("optimizer."):
                np.testing.assert_array_equal(state[key[len("optimizer.") :]], value, err_msg=key)
        np.testing.assert_array_equal(model.layers[0].parameters["W"], arrays["layers.0.W"])

    def test_a_format_1_file_cannot_resume(self):
        """It holds no History or callback state: resuming from it is an error, loading is not."""
        rng = np.random.default_rng(3)
        arrays = {key: rng.standard_normal(shape).astype(np.float32) for key, shape in V1_SHAPES.items()}
        write_v1(self.dir / "last.npz", V1_CONFIG, arrays, extra={"epoch": 2})
        with self.assertRaisesRegex(ValueError, r"holds no training state \(format neural_networks.model/1\)"):
            ModelCheckpoint(self.dir).resume()
        self.assertEqual(NeuralNetwork.load(self.dir / "last.npz").extra["epoch"], 2)


class TestFormat2(unittest.TestCase):
    def test_model_file_entries_and_round_trip(self):
        model = small_cnn()
        X, Y = batch(np.random.default_rng(0))
        model.train_step(X, Y, epoch=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.npz"
            model.save(path, extra={"note": "hello", "epoch": 1})
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()), ["model.npz"])  # no temporary file left
            with np.load(path, allow_pickle=False) as archive:
                files = set(archive.files)
                config = json.loads(str(archive["config"]))
                extra = json.loads(str(archive["extra"]))
            self.assertEqual(config["format"], "neural_networks.model/2")
            self.assertNotIn("extra", config)
            self.assertEqual(extra, {"note": "hello", "epoch": 1})
            self.assertEqual(files, {"config", "extra", *model.state_arrays()})
            loaded = NeuralNetwork.load(path)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        self.assertEqual(loaded.config(), model.config())  # (layers without parameters learn n_in from input)
        self.assertEqual(loaded.extra, {"note": "hello", "epoch": 1})
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        for key, value in model.optimizer.state().items():
            np.testing.assert_array_equal(loaded.optimizer.state()[key], value)

    def test_checkpoint_with_training_state(self):
        model = small_cnn()
        model.forward(batch(np.random.default_rng(0))[0])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "last.npz"
            serialization.save_checkpoint(
                path,
                model,
                extra={"epoch": 4},
                training={"epoch": 4, "best": None},
                arrays={"history.loss": np.arange(3.0)},
            )
            checkpoint = serialization.load_checkpoint(path)
            self.assertEqual(NeuralNetwork.load(path).extra, {"epoch": 4})
        self.assertEqual(checkpoint.training, {"epoch": 4, "best": None})
        self.assertEqual(list(checkpoint.arrays), ["history.loss"])
        np.testing.assert_array_equal(checkpoint.arrays["history.loss"], np.arange(3.0))
        self.assertEqual(checkpoint.extra, {"epoch": 4})

    def test_load_builds_the_calling_class(self):
        class MyNetwork(NeuralNetwork):
            pass

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.npz"
            NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), seed=1).save(path)
            self.assertIsInstance(MyNetwork.load(path), MyNetwork)
            self.assertIsInstance(serialization.load_model(path), NeuralNetwork)

    def test_an_unknown_format_is_refused(self):
        """(Files without a config entry, or needing pickle: tests/test_models.py.)"""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "future.npz"
            np.savez(path, config=np.array(json.dumps({"format": "neural_networks.model/9", "layers": []})))
            with self.assertRaisesRegex(
                ValueError,
                r"unsupported model format 'neural_networks.model/9'; expected one of "
                r"neural_networks.model/1, neural_networks.model/2",
            ):
                serialization.load_model(path)


class TestIntegrity(unittest.TestCase):
    """A checksum of the arrays in the config; damaged files give one-line errors naming them."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)
        self.model = small_cnn()
        self.model.forward(batch(np.random.default_rng(0))[0])
        self.path = self.tmp / "last.npz"
        serialization.save_checkpoint(
            self.path, self.model, extra={"epoch": 1}, training={"epoch": 1}, arrays={"h": np.arange(3.0)}
        )

    def tearDown(self):
        self._tmp.cleanup()

    def assertOneLineError(self, path, pattern):
        with self.assertRaises(ValueError) as caught:
            serialization.load_checkpoint(path)
        message = str(caught.exception)
        self.assertTrue(message.startswith(f"{path}: "), message)
        self.assertNotIn("\n", message)
        self.assertRegex(message, pattern)

    def test_the_checksum_is_stored_and_checked(self):
        with np.load(self.path) as archive:
            entries = {key: archive[key] for key in archive.files}
        config = json.loads(str(entries["config"]))
        self.assertEqual(config["sha256"], serialization.checksum(entries))
        self.assertEqual(len(config["sha256"]), 64)
        entries["layers.0.W"] = entries["layers.0.W"] + 1  # a valid archive whose arrays were changed
        altered = self.tmp / "altered.npz"
        np.savez(altered, **entries)
        self.assertOneLineError(altered, "checksum mismatch")

    def test_the_config_is_checked_too(self):
        with np.load(self.path) as archive:
            entries = {key: archive[key] for key in archive.files}
        config = json.loads(str(entries["config"]))
        self.assertEqual(config["config_sha256"], serialization.config_checksum(config))
        self.assertEqual(config["sha256"], serialization.checksum(entries))  # the arrays' checksum is unchanged
        for change in ("optimizer", "layer"):
            altered_config = json.loads(str(entries["config"]))
            if change == "optimizer":
                altered_config["optimizer"]["lr"] = altered_config["optimizer"]["lr"] * 10
            else:
                altered_config["layers"][0]["activation"] = "sigmoid"
            altered = self.tmp / f"altered_{change}.npz"
            np.savez(altered, **{**entries, "config": np.array(json.dumps(altered_config))})
            with self.subTest(change=change):
                self.assertOneLineError(altered, "checksum mismatch in its config")

    def test_files_without_a_checksum_still_load(self):
        with np.load(self.path) as archive:
            entries = {key: archive[key] for key in archive.files}
        config = json.loads(str(entries["config"]))
        del config["sha256"], config["config_sha256"]
        entries["config"] = np.array(json.dumps(config))
        old = self.tmp / "old.npz"
        np.savez(old, **entries)
        checkpoint = serialization.load_checkpoint(old)
        self.assertEqual(checkpoint.training, {"epoch": 1})
        for a, b in zip(checkpoint.model.get_weights(), self.model.get_weights()):
            np.testing.assert_array_equal(a, b)

    def test_empty_truncated_and_non_zip_files(self):
        data = self.path.read_bytes()
        cases = {
            "empty.npz": b"",
            "half.npz": data[: len(data) // 2],
            "head.npz": data[:10],
            "text.npz": b"this is not a zip archive at all",
        }
        for name, content in cases.items():
            with self.subTest(name):
                path = self.tmp / name
                path.write_bytes(content)
                self.assertOneLineError(path, "not a model file" if name == "text.npz" else "unreadable model file")
        # a zip archive whose members are damaged: a flipped byte inside each member's stored data
        # (not in a local header field that zipfile ignores, where the archive is still whole)
        import zipfile

        with zipfile.ZipFile(self.path) as archive:
            infos = archive.infolist()
        damaged = bytearray(data)
        for info in infos:
            start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
            damaged[start + info.compress_size // 2] ^= 0xFF
        path = self.tmp / "damaged.npz"
        path.write_bytes(bytes(damaged))
        self.assertOneLineError(path, "unreadable model file|checksum mismatch|corrupt")

    def test_a_zip_bomb_is_refused_before_it_is_decompressed(self):
        import tracemalloc
        import zipfile

        bomb = self.tmp / "bomb.npz"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("config.npy", bytes(200 << 20))  # 200 MB of zeros in about 200 KB
        self.assertLess(bomb.stat().st_size, 1 << 20)
        tracemalloc.start()
        try:
            self.assertOneLineError(bomb, r"declare 209715200 bytes from a \d+-byte file.*decompression bomb")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 8 << 20)
        compressed = self.tmp / "compressed.npz"  # a legitimate compressed checkpoint still loads
        with np.load(self.path) as archive:
            np.savez_compressed(compressed, **{key: archive[key] for key in archive.files})
        self.assertEqual(serialization.load_checkpoint(compressed).training, {"epoch": 1})


def without_checksums(entries: dict) -> dict:
    """``entries`` as a file written before checksums: its config without ``sha256``/``config_sha256``."""
    config = json.loads(str(entries["config"]))
    config.pop("sha256", None)
    config.pop("config_sha256", None)
    return {**entries, "config": np.array(json.dumps(config))}


def with_fresh_checksums(entries: dict) -> dict:
    """``entries`` with checksums recomputed over them: a file that is consistent, but wrong."""
    config = json.loads(str(entries["config"]))
    config["sha256"] = serialization.checksum(entries)
    config["config_sha256"] = serialization.config_checksum(config)
    return {**entries, "config": np.array(json.dumps(config))}


class TestArraysMatchTheArchitecture(unittest.TestCase):
    """Issue 32: every array is checked against the architecture in the config (names, shapes,
    dtypes), with or without a checksum; a mismatch is a one-line ValueError naming the file and
    the array, with what was expected and what was found."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = Path(cls._tmp.name)
        model = small_cnn()
        X, Y = batch(np.random.default_rng(0))
        model.train_step(X, Y, epoch=0)  # parameters, running statistics and optimizer state
        cls.model, cls.X = model, X
        path = cls.tmp / "valid.npz"
        serialization.save_checkpoint(
            path, model, extra={"epoch": 1}, training={"epoch": 1}, arrays={"history.loss": np.arange(3.0)}
        )
        with np.load(path) as archive:
            cls.entries = {key: archive[key] for key in archive.files}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def write(self, name, entries, checksums=False):
        path = self.tmp / f"{name}.npz"
        entries = with_fresh_checksums(entries) if checksums else without_checksums(entries)
        np.savez(path, **entries)
        return path

    def refused(self, name, change, *needles):
        """Write the valid file changed by ``change(entries)``, without and with checksums; both
        loads must raise one line naming the file and every needle."""
        for checksums in (False, True):
            entries = dict(self.entries)
            change(entries)
            path = self.write(f"{name}-{checksums}", entries, checksums=checksums)
            with self.subTest(name, checksums=checksums):
                with self.assertRaises(ValueError) as caught:
                    NeuralNetwork.load(path)
                message = str(caught.exception)
                self.assertTrue(message.startswith(f"{path}: "), message)
                self.assertNotIn("\n", message)
                for needle in needles:
                    self.assertIn(needle, message)

    def test_the_valid_file_loads_without_its_checksums(self):
        path = self.write("valid-unchecked", dict(self.entries))
        checkpoint = serialization.load_checkpoint(path)
        np.testing.assert_array_equal(checkpoint.model.predict(self.X), self.model.predict(self.X))
        np.testing.assert_array_equal(
            checkpoint.arrays["history.loss"], np.arange(3.0)
        )  # training arrays are legitimate

    def test_integer_and_half_precision_parameters_are_refused(self):
        for dtype in ("int64", "float16", "int8"):

            def change(entries, dtype=dtype):
                entries["layers.5.W"] = entries["layers.5.W"].astype(dtype)

            self.refused(
                f"W-{dtype}",
                change,
                "'layers.5.W'",
                "layer 5",
                "FullyConnected",
                f"dtype {dtype}",
                "float32 or float64",
            )

    def test_a_buffer_of_the_wrong_dtype_is_refused(self):
        def change(entries):
            entries["buffers.1.running_var"] = entries["buffers.1.running_var"].astype(np.int32)

        self.refused("buffer-int", change, "'buffers.1.running_var'", "BatchNorm", "int32", "float32 or float64")

    def test_a_missing_parameter_or_buffer_is_refused(self):
        for key, shape in (
            ("layers.5.b", "(1, 3)"),
            ("buffers.1.running_mean", "(1, 2)"),
            ("layers.0.W", "(3, 3, 1, 2)"),
        ):
            self.refused(f"missing-{key}", lambda entries, key=key: entries.pop(key), f"no array '{key}'", shape)

    def test_a_wrongly_shaped_array_is_refused(self):
        def transposed(entries):
            entries["layers.5.W"] = np.ascontiguousarray(entries["layers.5.W"].T)

        self.refused("transposed", transposed, "'layers.5.W'", "shape (3, 8)", "expected (8, 3)")

        def wider(entries):
            entries["layers.1.gamma"] = np.ones((1, 5), np.float32)

        self.refused("wider", wider, "'layers.1.gamma'", "shape (1, 5)", "expected (1, 2)")

    def test_unknown_extra_arrays_are_refused(self):
        def junk(entries):
            entries["junk"] = np.zeros(3)

        self.refused("junk", junk, "unexpected array 'junk'")

        def extra_parameter(entries):
            entries["layers.5.c"] = np.zeros((1, 3), np.float32)

        self.refused("extra-parameter", extra_parameter, "unexpected array 'layers.5.c'", "W, b")

        def parameter_of_a_layer_without_any(entries):
            entries["layers.2.W"] = np.zeros((1, 3), np.float32)

        self.refused("pool-parameter", parameter_of_a_layer_without_any, "unexpected array 'layers.2.W'", "Pool2D")

        def layer_beyond_the_last(entries):
            entries["layers.9.W"] = np.zeros((1, 3), np.float32)

        self.refused("layer-9", layer_beyond_the_last, "unexpected array 'layers.9.W'", "6 layers")

    def test_optimizer_state_must_fit_the_parameters(self):
        def wrong_shape(entries):
            entries["optimizer.W5"] = np.zeros((3, 8), np.float32)

        self.refused("velocity-shape", wrong_shape, "'optimizer.W5'", "shape (3, 8)", "expected (8, 3)")

        def wrong_dtype(entries):
            entries["optimizer.W5"] = entries["optimizer.W5"].astype(np.float16)

        self.refused("velocity-dtype", wrong_dtype, "'optimizer.W5'", "float16", "float32 or float64")

        def not_a_count(entries):
            entries["optimizer.W5"] = np.array(3)

        self.refused("velocity-count", not_a_count, "'optimizer.W5'", "shape ()", "expected (8, 3)")

        def no_such_parameter(entries):
            entries["optimizer.W7"] = np.zeros((8, 3), np.float32)

        self.refused("velocity-of-nothing", no_such_parameter, "unexpected array 'optimizer.W7'", "W0, gamma1")

        def no_optimizer(entries):
            config = json.loads(str(entries["config"]))
            config["optimizer"] = None
            entries["config"] = np.array(json.dumps(config))

        self.refused("no-optimizer", no_optimizer, "unexpected array 'optimizer.", "records no optimizer")

    def test_adam_step_counts_must_be_integer_scalars(self):
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=Adam(lr=0.01), seed=0)
        X = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
        model.train_step(X, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], epoch=0)
        path = self.tmp / "adam.npz"
        model.save(path)
        with np.load(path) as archive:
            entries = {key: archive[key] for key in archive.files}
        self.assertEqual(entries["optimizer.t.W0"].shape, ())
        NeuralNetwork.load(self.write("adam-unchecked", entries))  # its counts are legitimate
        entries["optimizer.t.W0"] = np.ones((5, 3), np.float32)
        with self.assertRaisesRegex(
            ValueError, r"'optimizer.t.W0' \(step count of parameter W of layer 0 .*expected a 0-d integer"
        ):
            NeuralNetwork.load(self.write("adam-count", entries))

    def test_parameters_of_a_layer_recorded_as_never_built_are_refused(self):
        """Loading them would be silent: the layer would draw fresh weights on its first forward."""

        def unbuilt(entries):
            config = json.loads(str(entries["config"]))
            config["layers"][5]["n_in"] = None
            entries["config"] = np.array(json.dumps(config))

        self.refused("unbuilt", unbuilt, "unexpected array 'layers.5.", "n_in")

    def test_an_invalid_layer_list_in_the_config_names_the_file(self):
        def layers(value):
            def change(entries):
                config = json.loads(str(entries["config"]))
                config["layers"] = value(config["layers"])
                entries["config"] = np.array(json.dumps(config))

            return change

        self.refused("no-layers", layers(lambda _: []), "its config's layers are an empty list")
        self.refused("layers-text", layers(lambda _: "conv2d"), "its config's layers are a str")
        self.refused("unknown-layer", layers(lambda ls: ls[:5] + [{"name": "nope"}]), "layer 5 of its config", "'nope'")
        self.refused("bad-n-in", layers(lambda ls: ls[:5] + [{**ls[5], "n_in": -8}]), "layer 5 of its config", "n_in")

    def test_a_model_saved_before_its_first_forward_pass_still_loads(self):
        path = self.tmp / "fresh.npz"
        small_cnn().save(path)
        loaded = NeuralNetwork.load(path)
        self.assertEqual(loaded.predict(self.X).shape, (4, 3))


if __name__ == "__main__":
    unittest.main()
