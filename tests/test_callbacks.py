"""Callbacks: early stopping (Keras's semantics), checkpoints and resuming through them, the
History, callback state, and the registry configs use."""

import contextlib
import csv
import io
import json
import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks.callbacks import (
    ExponentialMovingAverage,
    FreezeParameters,
    Lookahead,
    CALLBACKS,
    Callback,
    CallbackList,
    EarlyStopping,
    History,
    ModelCheckpoint,
    initialize_callback,
)
from neural_networks.datasets import Dataset, initialize_dataset
from neural_networks.layers import FullyConnected
from neural_networks.logs import Logger, read_metrics_csv
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD
from neural_networks.layers import BatchNorm, Dropout
from neural_networks.training import fit


def mlp(seed=0):
    return NeuralNetwork(
        layers=[FullyConnected(8, "linear"), BatchNorm(activation="relu"), Dropout(0.2), FullyConnected(3, "softmax")],
        optimizer=SGD(lr=0.1, momentum=0.9),
        seed=seed,
    )


def iris():
    return initialize_dataset("iris", batch_size=30, seed=0)


class Script(Callback):
    """Replaces the epoch's ``key`` in the logs by ``values[epoch]`` (runs before the callbacks
    under test), and records the weights at the end of every epoch."""

    def __init__(self, key, values):
        self.key, self.values, self.weights = key, values, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


class TestEarlyStopping(unittest.TestCase):
    def run_script(self, values, key="val_loss", epochs=20, **kwargs):
        model = mlp()
        script, stopper = Script(key, values), EarlyStopping(monitor=key, **kwargs)
        history = fit(model, iris(), epochs, callbacks=[script, stopper], verbose=0)
        return model, script, stopper, history

    def test_stops_after_patience_epochs_without_improvement(self):
        # best 0.8 at epoch 1; epochs 2 and 3 do not improve: with patience 2 it stops after epoch 3
        model, _, stopper, history = self.run_script([1.0, 0.8, 0.9, 0.85, 0.5, 0.4], patience=2)
        self.assertEqual(history.epochs, 4)
        self.assertEqual((stopper.stopped_epoch, stopper.best_epoch, stopper.best, stopper.wait), (3, 1, 0.8, 2))
        self.assertTrue(model.stop_training)
        self.assertEqual(history["val_loss"], [1.0, 0.8, 0.9, 0.85])  # the History sees the scripted values

    def test_patience_zero_stops_at_the_first_epoch_without_improvement(self):
        _, _, stopper, history = self.run_script([1.0, 0.9, 0.95, 0.1])
        self.assertEqual((history.epochs, stopper.stopped_epoch), (3, 2))

    def test_min_delta_and_mode(self):
        # improvements of 0.05 are not more than min_delta 0.1
        _, _, _, history = self.run_script([1.0, 0.95, 0.92, 0.5], patience=1, min_delta=0.1)
        self.assertEqual(history.epochs, 2)
        # accuracies go up (mode auto: max)
        _, _, stopper, history = self.run_script([0.5, 0.6, 0.6, 0.7], key="val_accuracy", patience=1)
        self.assertEqual((history.epochs, stopper.best, stopper.mode), (3, 0.6, "max"))
        # mode min on an accuracy: the first value stays the best
        _, _, stopper, history = self.run_script([0.5, 0.6, 0.7], key="val_accuracy", mode="min")
        self.assertEqual((history.epochs, stopper.best_epoch), (2, 0))

    def test_runs_to_the_end_while_improving(self):
        model, _, stopper, history = self.run_script([1.0, 0.9, 0.8], epochs=3, patience=0)
        self.assertEqual((history.epochs, stopper.stopped_epoch), (3, 0))
        self.assertFalse(model.stop_training)

    def test_restores_the_best_epochs_weights(self):
        model, script, stopper, history = self.run_script(
            [1.0, 0.7, 0.9, 0.8, 0.1], patience=2, restore_best_weights=True
        )
        self.assertEqual((history.epochs, stopper.best_epoch), (4, 1))
        best = script.weights[1]
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(best, script.weights[-1])))
        final = model.get_weights()
        self.assertEqual(len(final), 8)  # W, b, gamma, beta, running mean and variance, W, b
        for a, b in zip(final, best):
            np.testing.assert_array_equal(a, b)
        # without restore_best_weights the last epoch's weights stay
        model, script, _, _ = self.run_script([1.0, 0.7, 0.9, 0.8, 0.1], patience=2)
        for a, b in zip(model.get_weights(), script.weights[-1]):
            np.testing.assert_array_equal(a, b)

    def test_a_missing_value_names_the_available_keys(self):
        rng = np.random.default_rng(0)
        no_validation = Dataset(rng.standard_normal((20, 4)), rng.integers(0, 3, 20), 10)
        with self.assertRaisesRegex(
            ValueError,
            r"EarlyStopping: monitor='val_loss' is not in the epoch's logs; "
            r"available: loss, accuracy, lr, seconds \(val_\* values exist only",
        ):
            fit(mlp(), no_validation, 3, callbacks=[EarlyStopping()], verbose=0)

    def test_bad_arguments(self):
        for kwargs, pattern in (
            ({"mode": "lowest"}, r"mode must be 'auto', 'min' or 'max'; got 'lowest'"),
            ({"monitor": "val_f1"}, r"cannot tell whether 'val_f1' should go down or up"),
            ({"patience": -1}, "patience must be a non-negative integer"),
            ({"patience": 1.5}, "patience must be a non-negative integer"),
            ({"min_delta": -0.1}, "min_delta must be a non-negative number"),
            ({"restore_best_weights": "yes"}, "restore_best_weights must be true or false"),
        ):
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(ValueError, pattern):
                EarlyStopping(**kwargs)
        self.assertEqual(EarlyStopping(monitor="val_f1", mode="max").mode, "max")
        self.assertEqual(EarlyStopping(monitor="loss").mode, "min")


class TestModelCheckpoint(unittest.TestCase):
    def test_last_every_epoch_best_when_improved(self):
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = ModelCheckpoint(tmp)
            model = mlp()
            fit(model, iris(), 3, callbacks=[Script("val_accuracy", [0.5, 0.7, 0.6]), checkpoint], verbose=0)
            self.assertEqual(
                NeuralNetwork.load(Path(tmp) / "last.npz").extra, {"epoch": 3, "monitor": "val_accuracy", "best": 0.7}
            )
            best = NeuralNetwork.load(Path(tmp) / "best.npz")
            self.assertEqual(best.extra["epoch"], 2)
            self.assertEqual((checkpoint.best, checkpoint.epoch, checkpoint.stopped), (0.7, 3, False))
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()), ["best.npz", "last.npz"])
            for a, b in zip(NeuralNetwork.load(Path(tmp) / "last.npz").get_weights(), model.get_weights()):
                np.testing.assert_array_equal(a, b)

    def test_without_validation_data_it_follows_the_training_figure(self):
        rng = np.random.default_rng(0)
        data = Dataset(rng.standard_normal((20, 4)), rng.integers(0, 3, 20), 10)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = ModelCheckpoint(tmp)
            history = fit(mlp(), data, 2, callbacks=[checkpoint], verbose=0)
            self.assertEqual(checkpoint.best, max(history["accuracy"]))
            with self.assertRaisesRegex(ValueError, "ModelCheckpoint: monitor='val_f1' is not in the epoch's logs"):
                fit(mlp(), data, 1, callbacks=[ModelCheckpoint(tmp, monitor="val_f1", mode="max")], verbose=0)

    def test_checkpoints_run_after_the_other_callbacks(self):
        """So that last.npz holds every callback's state of the epoch, and a stop decided in it."""
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = ModelCheckpoint(tmp)
            fit(
                mlp(),
                iris(),
                5,
                callbacks=[checkpoint, Script("val_loss", [1.0, 2.0, 3.0]), EarlyStopping()],
                verbose=0,
            )
            self.assertEqual((checkpoint.epoch, checkpoint.stopped), (2, True))
            with np.load(Path(tmp) / "last.npz") as archive:
                training = json.loads(str(archive["training"]))
            self.assertEqual(
                training["callbacks"]["EarlyStopping"], {"wait": 1, "best": 1.0, "best_epoch": 0, "stopped_epoch": 1}
            )
            self.assertEqual(training["callbacks"]["History"]["history"]["val_loss"], [1.0, 2.0])
            self.assertTrue(training["stop_training"])

    def test_resume_needs_the_matching_initial_epoch(self):
        with tempfile.TemporaryDirectory() as tmp:
            fit(mlp(), iris(), 2, callbacks=[ModelCheckpoint(tmp)], verbose=0)
            checkpoint = ModelCheckpoint(tmp)
            model = checkpoint.resume()
            with self.assertRaisesRegex(ValueError, r"resumes after epoch 2, but fit starts at initial_epoch=1"):
                fit(model, iris(), 3, callbacks=[checkpoint], verbose=0, initial_epoch=1)
        with self.assertRaisesRegex(FileNotFoundError, "last.npz does not exist"):
            ModelCheckpoint(tmp).resume()


class TestResume(unittest.TestCase):
    """A run interrupted after epoch 2 and resumed from last.npz alone equals an uninterrupted one."""

    def train_in_legs(self, tmp: Path, name: str, stops: list[int]):
        """Train to epoch 5 in legs ending at ``stops``, each leg with fresh callbacks and data."""
        model, start = None, 0
        for stop in stops:
            logger = Logger(model_name=name, save=True, plot=False, save_dir=tmp, checkpoints=False)
            checkpoint = ModelCheckpoint(tmp / name, monitor="val_loss")
            stopper = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
            callbacks = [Script("val_loss", [0.9, 0.5, 0.7, 0.6, 0.8]), logger, stopper, checkpoint]
            if start:
                model = checkpoint.resume()
                self.assertEqual(checkpoint.epoch, start)
            else:
                model = mlp()
            history = fit(model, iris(), stop, callbacks=callbacks, verbose=0, initial_epoch=start)
            start = stop
        return model, history, logger, stopper

    def test_resume_equals_an_uninterrupted_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            whole = self.train_in_legs(tmp, "whole", [5])
            split = self.train_in_legs(tmp, "split", [2, 5])
            (model_a, history_a, logger_a, stopper_a), (model_b, history_b, logger_b, stopper_b) = whole, split
            # the final model: the best epoch's weights (restored by early stopping, whose best was before the resume)
            self.assertEqual((stopper_a.best_epoch, stopper_b.best_epoch), (1, 1))
            for a, b in zip(model_a.get_weights(), model_b.get_weights()):
                np.testing.assert_array_equal(a, b)
            # last.npz: every array equal (parameters, optimizer state, iteration losses, best weights)
            with np.load(tmp / "whole" / "last.npz") as a, np.load(tmp / "split" / "last.npz") as b:
                self.assertEqual(sorted(a.files), sorted(b.files))
                self.assertIn("training.callbacks.History.iteration_loss", a.files)
                self.assertIn("training.callbacks.EarlyStopping.weights.0", a.files)
                for key in a.files:
                    if key not in ("config", "training"):
                        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
                # equal but for the checksum, which covers the training state's wall-clock seconds
                configs = [json.loads(str(f["config"])) for f in (a, b)]
                self.assertEqual([len(c.pop("sha256")) for c in configs], [64, 64])
                self.assertEqual(*configs)
            # the History: every epoch once, equal but for the wall-clock seconds
            self.assertEqual(history_b.epochs, 5)
            self.assertEqual(history_a.iteration_loss, history_b.iteration_loss)
            self.assertEqual(len(history_b.iteration_loss), 15)
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
                self.assertEqual(history_a[key], history_b[key], key)
            # metrics.csv and parameters.csv continue across the resume
            rows_a, rows_b = (read_metrics_csv(tmp / name / "metrics.csv") for name in ("whole", "split"))
            self.assertEqual([r["epoch"] for r in rows_b], [1, 2, 3, 4, 5])
            for row_a, row_b in zip(rows_a, rows_b):
                self.assertEqual(
                    {k: v for k, v in row_a.items() if k != "seconds"},
                    {k: v for k, v in row_b.items() if k != "seconds"},
                )
            self.assertEqual([r["seconds"] for r in rows_b[:2]], history_b["seconds"][:2])  # from the first leg
            self.assertEqual(
                (tmp / "whole" / "parameters.csv").read_text(), (tmp / "split" / "parameters.csv").read_text()
            )
            self.assertEqual(logger_a.ranges, logger_b.ranges)
            with open(tmp / "split" / "parameters.csv") as handle:
                self.assertEqual(sorted({r["epoch"] for r in csv.DictReader(handle)}), ["1", "2", "3", "4", "5"])
            self.assertEqual(NeuralNetwork.load(tmp / "split" / "best.npz").extra["epoch"], 2)


class TestCrashBetweenCheckpointWrites(unittest.TestCase):
    """best.npz is written before last.npz: a crash between the two leaves last.npz an epoch
    behind, and resuming repeats that epoch and rewrites the same best.npz."""

    def test_resume_after_a_crash_between_best_and_last(self):
        from unittest import mock

        from neural_networks import serialization

        script = [0.9, 0.5, 0.7]  # epoch 2 improves: both files are written after it
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            fit(
                mlp(),
                iris(),
                3,
                callbacks=[Script("val_loss", script), ModelCheckpoint(tmp / "whole", "val_loss")],
                verbose=0,
            )
            real = serialization.save_checkpoint
            writes = []

            def crash_on_second_last(path, *args, **kwargs):
                writes.append(Path(path).name)
                if writes.count("last.npz") == 2:
                    raise OSError("simulated crash")
                return real(path, *args, **kwargs)

            with mock.patch.object(serialization, "save_checkpoint", crash_on_second_last):
                with self.assertRaisesRegex(OSError, "simulated crash"):
                    fit(
                        mlp(),
                        iris(),
                        3,
                        callbacks=[Script("val_loss", script), ModelCheckpoint(tmp / "split", "val_loss")],
                        verbose=0,
                    )
            self.assertEqual(writes, ["best.npz", "last.npz", "best.npz", "last.npz"])
            self.assertEqual(NeuralNetwork.load(tmp / "split" / "last.npz").extra["epoch"], 1)
            self.assertEqual(NeuralNetwork.load(tmp / "split" / "best.npz").extra["epoch"], 2)
            checkpoint = ModelCheckpoint(tmp / "split", "val_loss")
            model = checkpoint.resume()
            fit(model, iris(), 3, callbacks=[Script("val_loss", script), checkpoint], verbose=0, initial_epoch=1)
            for name in ("best.npz", "last.npz"):
                a, b = (NeuralNetwork.load(tmp / run / name) for run in ("whole", "split"))
                self.assertEqual(a.extra, b.extra, name)
                for x, y in zip(a.get_weights(), b.get_weights()):
                    np.testing.assert_array_equal(x, y, err_msg=name)
            self.assertEqual(NeuralNetwork.load(tmp / "split" / "best.npz").extra["epoch"], 2)


class TestHistoryAndState(unittest.TestCase):
    def test_history_rows_and_state(self):
        history = History()
        history.append(loss=1, accuracy=0.5)
        history.append(loss=0.5, accuracy=0.75)
        self.assertEqual((history["loss"], history.epochs, "accuracy" in history), ([1.0, 0.5], 2, True))
        self.assertEqual(repr(history), "History(epochs=2, keys=['loss', 'accuracy'])")
        again = History()
        again.load_state_dict(history.state_dict())
        self.assertEqual(again.history, history.history)

    def test_state_keys_of_several_callbacks_of_one_class(self):
        class Counter(Callback):
            def __init__(self, n):
                self.n = n

            def state_dict(self):
                return {"n": self.n}

            def load_state_dict(self, state):
                self.n = state["n"]

        callbacks = CallbackList([Counter(1), Callback(), Counter(2)])
        self.assertEqual(callbacks.state_dict(), {"Counter": {"n": 1}, "Counter_2": {"n": 2}})
        fresh = CallbackList([Counter(0), Counter(0)])
        fresh.load_state_dict({"Counter": {"n": 1}, "Counter_2": {"n": 2}, "Gone": {}})
        self.assertEqual([cb.n for cb in fresh], [1, 2])


class TestRegistry(unittest.TestCase):
    def test_names_and_arguments(self):
        self.assertEqual(
            CALLBACKS.names(), ["early_stopping", "freeze", "ema", "lookahead", "model_checkpoint", "tensorboard"]
        )
        stopper = initialize_callback("early_stopping", patience=3, monitor="val_accuracy")
        self.assertIsInstance(stopper, EarlyStopping)
        self.assertEqual((stopper.patience, stopper.mode), (3, "max"))
        self.assertIsInstance(initialize_callback("EarlyStopping"), EarlyStopping)
        with self.assertRaisesRegex(
            ValueError,
            r"unknown callback 'early_stop'; valid names: early_stopping, freeze, ema, lookahead, model_checkpoint, tensorboard",
        ):
            initialize_callback("early_stop")
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for callback 'early_stopping' \(unexpected argument "
            r"'patiense'\); valid arguments: monitor, patience",
        ):
            initialize_callback("early_stopping", patiense=3)


class TestFreezing(unittest.TestCase):
    """Frozen parameters (a layer's ``frozen``, the ``freeze`` callback) keep their values while
    the rest trains; gradients still flow through them."""

    def model(self, frozen=(False, False)):
        from neural_networks.layers import initialize_layer

        layers = [
            initialize_layer("fully_connected", n_out=6, activation="relu", frozen=frozen[0]),
            initialize_layer("fully_connected", n_out=3, activation="softmax", frozen=frozen[1]),
        ]
        return NeuralNetwork(layers=layers, optimizer=SGD(lr=0.1, momentum=0.9), seed=0)

    def test_frozen_parameters_keep_their_values(self):
        data = initialize_dataset("iris", batch_size=30)
        for frozen, fixed in (((True, False), {"W0", "b0"}), ((["b"], False), {"b0"}), ((False, ["W"]), {"W1"})):
            with self.subTest(frozen=frozen):
                model = self.model(frozen)
                model.train(data, epochs=0, verbose=0)
                X, Y = next(iter(data.train))
                model.forward(X)
                before = {
                    f"{k}{i}": v.copy() for i, layer in enumerate(model.layers) for k, v in layer.parameters.items()
                }
                model.train(data, epochs=2, verbose=0)
                after = {f"{k}{i}": v for i, layer in enumerate(model.layers) for k, v in layer.parameters.items()}
                for key in before:
                    if key in fixed:
                        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
                    else:
                        self.assertFalse(np.array_equal(after[key], before[key]), key)
                with tempfile.TemporaryDirectory() as tmp:
                    model.save(Path(tmp) / "m.npz")
                    loaded = NeuralNetwork.load(Path(tmp) / "m.npz")
                self.assertEqual({f"{k}{i}" for i, layer in enumerate(loaded.layers) for k in layer.frozen}, fixed)

    def test_bad_names_and_values(self):
        from neural_networks.experiments import ConfigError, validate_config
        from neural_networks.layers import initialize_layer

        with self.assertRaisesRegex(ValueError, r"no parameter 'gamma' to freeze \(parameters: W, b\)"):
            initialize_layer("fully_connected", n_out=2, frozen=["gamma"])
        with self.assertRaisesRegex(ValueError, r"no parameter 'b' to freeze \(parameters: W\)"):
            initialize_layer("conv2d", n_out=2, kernel_shape=[3, 3], use_bias=False, frozen="b")
        with self.assertRaisesRegex(ValueError, "frozen must be true, false or a list"):
            initialize_layer("fully_connected", n_out=2, frozen=3)
        config = {
            "name": "x",
            "data": {"name": "iris"},
            "optimizer": {"name": "sgd", "lr": 0.1},
            "model": {
                "loss": "cross_entropy",
                "layers": [{"name": "fully_connected", "n_out": 3, "activation": "softmax", "frozen": ["c"]}],
            },
        }
        with self.assertRaisesRegex(ConfigError, r"^model\.layers\.0: .*no parameter 'c' to freeze"):
            validate_config(config)
        config["model"]["layers"][0]["frozen"] = ["b"]
        self.assertEqual(validate_config(config)["model"]["layers"][0]["frozen"], ["b"])
        for kwargs, needle in (
            ({"layers": "0", "epoch": 1}, "layers must be"),
            ({"layers": [0], "epoch": -1}, "epoch must be"),
            ({"layers": [0], "epoch": 1, "parameters": 2}, "parameters must be"),
        ):
            with self.assertRaisesRegex(ValueError, needle):
                FreezeParameters(**kwargs)
        model = self.model()
        with self.assertRaisesRegex(ValueError, "layer 5 does not exist"):
            model.train(
                initialize_dataset("iris", batch_size=30), epochs=1, verbose=0, callbacks=[FreezeParameters(5, 0)]
            )

    def test_the_callback_freezes_from_its_epoch_and_resumes_the_same(self):
        data = initialize_dataset("iris", batch_size=30)
        model = self.model()
        biases = []

        class Record(Callback):
            def on_epoch_end(self, epoch, logs=None):
                biases.append(self.model.layers[0].parameters["b"].copy())

        model.train(data, epochs=4, verbose=0, callbacks=[FreezeParameters([0], epoch=2, parameters=["b"]), Record()])
        self.assertFalse(np.array_equal(biases[0], biases[1]))  # trained in epochs 0 and 1
        np.testing.assert_array_equal(biases[1], biases[2])  # frozen from epoch 2 on
        np.testing.assert_array_equal(biases[2], biases[3])
        split = self.model()  # two epochs, then two more with a fresh callback (a resume)
        split.train(data, epochs=2, verbose=0, callbacks=[FreezeParameters([0], epoch=2, parameters=["b"])])
        split.train(data, epochs=2, start_epoch=2, verbose=0, callbacks=[FreezeParameters(0, 2, ["b"])])
        for a, b in zip(model.get_weights(), split.get_weights()):
            np.testing.assert_array_equal(a, b)
        thaw = self.model([True, False])
        thaw.train(data, epochs=2, verbose=0, callbacks=[FreezeParameters(0, 1, unfreeze=True)])
        self.assertEqual(thaw.layers[0].frozen, set())


def assert_last_checkpoint_is_the_model_and_training_changed(test, run_dir, model):
    """``last.npz`` holds ``model``'s weights, which differ from those of a plain 3-epoch fit."""
    saved = NeuralNetwork.load(Path(run_dir) / "last.npz")
    for a, b in zip(saved.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    plain = mlp()
    fit(plain, iris(), 3, verbose=0)
    test.assertFalse(all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), model.get_weights())))


class CrashBefore(Callback):
    """Raises KeyboardInterrupt as epoch ``epoch`` begins: a run killed after the checkpoint of
    the epoch before."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def train_whole_and_split(tmp, make_callback, split_at: int, epochs: int = 4, make_model=mlp) -> dict:
    """Train ``epochs`` epochs in one fit ("whole"), and in a fit of as many epochs that crashes
    as epoch ``split_at`` begins and is resumed from its ``last.npz`` ("split"), each fit with a
    fresh ``make_callback()`` and ``make_model()``; ``{name: (weights, val losses, callback)}``."""
    results = {}
    whole = ModelCheckpoint(Path(tmp) / "whole")
    model, callback = make_model(), make_callback()
    history = fit(model, iris(), epochs, callbacks=[callback, whole], verbose=0)
    results["whole"] = (model.get_weights(), history["val_loss"], callback)
    crashed = ModelCheckpoint(Path(tmp) / "split")
    try:
        fit(make_model(), iris(), epochs, callbacks=[make_callback(), crashed, CrashBefore(split_at)], verbose=0)
    except KeyboardInterrupt:
        pass
    resumed = ModelCheckpoint(Path(tmp) / "split")
    model, callback = resumed.resume(), make_callback()
    history = fit(model, iris(), epochs, callbacks=[callback, resumed], verbose=0, initial_epoch=split_at)
    results["split"] = (model.get_weights(), history["val_loss"], callback)
    return results


def assert_split_equals_whole(test, results) -> None:
    """The weights and validation losses of :func:`train_whole_and_split`'s two runs are the same."""
    (wa, la, _), (wb, lb, _) = results["whole"], results["split"]
    for a, b in zip(wa, wb):
        np.testing.assert_array_equal(a, b)
    test.assertEqual(la, lb)


class TestExponentialMovingAverage(unittest.TestCase):
    """The average of the weights: its recurrence, evaluation with it, and resuming."""

    def test_the_recurrence(self):
        model = mlp()
        X, _ = next(iter(iris().train))
        model.forward(X)
        ema = ExponentialMovingAverage(decay=0.9, warmup=False)
        ema.set_model(model)
        ema.on_train_begin()
        ema.on_epoch_begin(0)
        W = model.layers[0].parameters["W"]
        expected = W.astype(np.float64).copy()
        rng = np.random.default_rng(0)
        for step in range(5):
            W += rng.standard_normal(W.shape).astype(W.dtype)
            ema.on_train_batch_end(step)
            expected = 0.9 * expected + 0.1 * W.astype(np.float64)
        np.testing.assert_allclose(ema.average[0], expected, rtol=1e-12)
        raw = W.copy()
        ema.on_test_begin()
        np.testing.assert_allclose(model.layers[0].parameters["W"], expected.astype(W.dtype))
        ema.on_test_end()
        np.testing.assert_array_equal(model.layers[0].parameters["W"], raw)
        warm = ExponentialMovingAverage(decay=0.999)
        warm.set_model(model)
        warm.on_train_begin()
        warm.on_epoch_begin(0)
        start = W.astype(np.float64).copy()
        W += 1.0
        warm.on_train_batch_end(0)  # d = min(0.999, 2 / 11): the new weights weigh 9/11
        np.testing.assert_allclose(warm.average[0], start * 2 / 11 + W.astype(np.float64) * 9 / 11, rtol=1e-12)
        for kwargs in ({"decay": 1.0}, {"decay": 0}, {"every": 0}, {"warmup": "yes"}):
            with self.subTest(kwargs=kwargs), self.assertRaises(ValueError):
                ExponentialMovingAverage(**kwargs)

    def test_validation_checkpoints_and_the_trained_model_use_the_average(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = iris()
            model = mlp()
            ema = ExponentialMovingAverage(decay=0.8)
            checkpoint = ModelCheckpoint(Path(tmp) / "run")
            history = fit(model, data, 3, callbacks=[ema, checkpoint], verbose=0)
            for value, average in zip(model.get_weights(), ema.average):
                np.testing.assert_allclose(value, average.astype(value.dtype))
            self.assertAlmostEqual(model.evaluate(data.validate)["loss"], history["val_loss"][-1], places=6)
            assert_last_checkpoint_is_the_model_and_training_changed(self, Path(tmp) / "run", model)

    def test_resume_equals_an_uninterrupted_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            results = train_whole_and_split(tmp, lambda: ExponentialMovingAverage(decay=0.7), split_at=2)
            assert_split_equals_whole(self, results)
            for a, b in zip(results["whole"][2].average, results["split"][2].average):
                np.testing.assert_array_equal(a, b)


class TestLookahead(unittest.TestCase):
    """Slow weights pulled every few steps, airbench's cubic decay, the final sync, resuming."""

    def test_a_hand_written_run_of_the_update(self):
        model = mlp()
        X, _ = next(iter(iris().train))
        model.forward(X)
        look = Lookahead(decay=0.8, every=2, schedule="cubic")
        look.set_model(model)
        look.set_params({"epochs": 2, "steps": 5, "initial_epoch": 0, "verbose": 0})
        look.on_train_begin()
        look.on_epoch_begin(0)
        W = model.layers[0].parameters["W"]
        slow = W.astype(np.float64).copy()
        rng = np.random.default_rng(0)
        for step in range(1, 8):
            W += rng.standard_normal(W.shape).astype(W.dtype)
            trained = W.astype(np.float64)
            look.on_train_batch_end(step)
            if step % 2 == 0:
                d = 0.8 * (step / 10) ** 3
                slow = d * slow + (1 - d) * trained
                np.testing.assert_allclose(W, slow.astype(W.dtype), rtol=1e-6)
        np.testing.assert_allclose(look.slow[0], slow, rtol=1e-12)
        fast = W.copy()
        look.on_epoch_end(0)  # not the last epoch: the training weights stay
        np.testing.assert_array_equal(W, fast)
        look.on_epoch_end(1)  # the last: the weights become the slow ones
        np.testing.assert_allclose(W, slow.astype(W.dtype), rtol=1e-6)
        constant = Lookahead(decay=0.5, every=1, schedule="constant")
        constant.set_model(model)
        constant.set_params({"epochs": 1, "steps": 3})
        constant.on_train_begin()
        constant.on_epoch_begin(0)
        start = W.astype(np.float64).copy()
        W += 1.0
        constant.on_train_batch_end(0)
        np.testing.assert_allclose(W, (start + 0.5).astype(W.dtype), rtol=1e-6)
        for kwargs in ({"decay": 1.0}, {"decay": -0.1}, {"every": 0}, {"schedule": "linear"}):
            with self.subTest(kwargs=kwargs), self.assertRaises(ValueError):
                Lookahead(**kwargs)

    def test_it_changes_training_and_the_checkpoint_holds_the_slow_weights(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = mlp()
            look = Lookahead(decay=0.9, every=2, schedule="constant")
            fit(model, iris(), 3, callbacks=[look, ModelCheckpoint(Path(tmp) / "run")], verbose=0)
            for value, slow in zip(model.get_weights(), look.slow):
                np.testing.assert_allclose(value, slow.astype(value.dtype))
            assert_last_checkpoint_is_the_model_and_training_changed(self, Path(tmp) / "run", model)

    def test_resume_equals_an_uninterrupted_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            results = train_whole_and_split(tmp, lambda: Lookahead(decay=0.9, every=2), split_at=2)
            assert_split_equals_whole(self, results)


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal, as ``sys.stderr`` does in an interactive shell."""

    def isatty(self):
        return True


class TestProgressBar(unittest.TestCase):
    """What ``verbose=1`` prints: a bar on a terminal, one summary line per epoch everywhere."""

    def train(self, epochs, stderr):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(stderr):
            fit(mlp(), iris(), epochs, verbose=1)  # 90 training flowers: 3 batches of 30
        return out.getvalue()

    def test_only_summary_lines_when_the_output_is_not_a_terminal(self):
        # `neural-networks train ... > log.txt 2>&1` or `| cat`: both streams are the same file, no tty
        both = io.StringIO()
        with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
            fit(mlp(), iris(), 3, verbose=1)
        text = both.getvalue()
        self.assertNotIn("%|", text)
        self.assertNotIn("\r", text)
        lines = text.splitlines()  # splitlines also splits at "\r", as a log viewer shows them
        self.assertEqual([line.split("  ")[0] for line in lines], ["epoch 1/3", "epoch 2/3", "epoch 3/3"])

    def test_the_bar_stays_on_a_terminal(self):
        terminal = TerminalStream()
        out = self.train(2, terminal)
        self.assertEqual(len(out.splitlines()), 2)
        self.assertIn("epoch 1/2:", terminal.getvalue())
        self.assertIn("%|", terminal.getvalue())

    def test_a_fractional_run_counts_whole_epochs(self):
        terminal = TerminalStream()
        (line,) = self.train(0.1, terminal).splitlines()
        self.assertRegex(line, r"^epoch 1/1  loss .*  \(1 of 3 batches\)$")
        self.assertRegex(terminal.getvalue(), r"epoch 1/1: .*\| \d/1 \[")  # the bar counts the 1 batch
        self.assertNotIn("/0.1", terminal.getvalue())

        terminal = TerminalStream()
        lines = self.train(4.5, terminal).splitlines()
        self.assertEqual([line.split("  ")[0] for line in lines], [f"epoch {i}/5" for i in range(1, 6)])
        self.assertTrue(lines[-1].endswith("  (2 of 3 batches)"), lines[-1])
        self.assertFalse(any("batches)" in line for line in lines[:-1]))  # whole epochs say nothing more
        self.assertRegex(terminal.getvalue(), r"epoch 5/5: .*\| \d/2 \[")
        self.assertNotIn("/4.5", terminal.getvalue())


if __name__ == "__main__":
    unittest.main()
