"""The fit loop: hook order and arguments, epochs and stopping, learning-rate progress, seeding,
the model's logger, and NeuralNetwork.train delegating to it."""

import contextlib
import io
import unittest

import numpy as np

from neural_networks.callbacks import Callback, CallbackList, History, ProgressBar
from neural_networks.datasets import Dataset, initialize_dataset
from neural_networks.layers import FullyConnected
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD
from neural_networks.layers import Dropout
from neural_networks.training import check_epochs, epoch_batches, epoch_count, fit

EPOCH_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


def mlp(seed=0, dropout=False):
    layers = [FullyConnected(8, "relu"), *([Dropout(0.3)] if dropout else []), FullyConnected(3, "softmax")]
    return NeuralNetwork(layers=layers, optimizer=SGD(lr=0.1, momentum=0.9), seed=seed)


def iris(batch_size=30):
    return initialize_dataset("iris", batch_size=batch_size, seed=0)  # 90 training flowers: 3 batches of 30


def record_schedule_epochs(model) -> list:
    """The list to which every later ``model.train_step`` appends the epoch it is given."""
    seen, step = [], model.train_step

    def recording_step(X, Y, epoch):
        seen.append(epoch)
        return step(X, Y, epoch)

    model.train_step = recording_step
    return seen


class Recorder(Callback):
    """Every hook call, with its arguments."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", None, dict(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", None, dict(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch, dict(logs)))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs)))


class TestHooks(unittest.TestCase):
    def test_a_callback_sees_every_hook_in_order(self):
        model, recorder = mlp(), Recorder()
        history = fit(model, iris(), 2, callbacks=[recorder], verbose=0)
        expected = [("train_begin", None)]
        for epoch in range(2):
            expected.append(("epoch_begin", epoch))
            for b in range(3):
                expected += [("batch_begin", b), ("batch_end", b)]
            expected.append(("epoch_end", epoch))
        expected.append(("train_end", None))
        self.assertEqual([(name, index) for name, index, _ in recorder.calls], expected)
        for name, _, logs in recorder.calls:
            if name in ("train_begin", "epoch_begin", "batch_begin"):
                self.assertEqual(logs, {}, name)
            elif name == "batch_end":
                self.assertEqual(set(logs), {"loss", "accuracy"})
            else:
                self.assertEqual(set(logs), EPOCH_KEYS, name)
        self.assertIs(recorder.model, model)
        self.assertEqual(recorder.params, {"epochs": 2, "initial_epoch": 0, "steps": 3, "verbose": 0})
        # the logs are what the History holds
        epoch_logs = [logs for name, _, logs in recorder.calls if name == "epoch_end"]
        for key in EPOCH_KEYS:
            self.assertEqual(history[key], [logs[key] for logs in epoch_logs], key)
        self.assertEqual(recorder.calls[-1][2], epoch_logs[-1])  # train end gets the last epoch's logs
        batch_losses = [logs["loss"] for name, _, logs in recorder.calls if name == "batch_end"]
        self.assertEqual(history.iteration_loss, batch_losses)
        self.assertIs(model.history, history)

    def test_batch_logs_accuracy_is_the_running_accuracy(self):
        recorder = Recorder()
        history = fit(mlp(), iris(), 1, callbacks=[recorder], verbose=0)
        accuracies = [logs["accuracy"] for name, _, logs in recorder.calls if name == "batch_end"]
        self.assertAlmostEqual(accuracies[-1], history["accuracy"][0])
        self.assertEqual(len(accuracies), 3)

    def test_no_validation_data_means_no_val_keys(self):
        rng = np.random.default_rng(0)
        data = Dataset(rng.standard_normal((20, 4)), rng.integers(0, 3, 20), 10)
        recorder = Recorder()
        fit(mlp(), data, 1, callbacks=[recorder], verbose=0)
        self.assertEqual(set(recorder.calls[-1][2]), {"loss", "accuracy", "lr", "seconds"})

    def test_hooks_nobody_overrides_are_not_called(self):
        class EpochOnly(Callback):
            def on_epoch_end(self, epoch, logs=None):
                pass

        callbacks = CallbackList([Callback(), EpochOnly()])
        self.assertFalse(callbacks.has("on_train_batch_end"))
        self.assertFalse(callbacks.has("on_train_batch_begin"))
        self.assertTrue(callbacks.has("on_epoch_end"))
        self.assertTrue(CallbackList([History()]).has("on_train_batch_end"))


class TestEpochs(unittest.TestCase):
    def test_initial_epoch_and_the_last_epoch(self):
        recorder = Recorder()
        history = fit(mlp(), iris(), 3, callbacks=[recorder], verbose=0, initial_epoch=1)
        self.assertEqual([i for name, i, _ in recorder.calls if name == "epoch_end"], [1, 2])
        self.assertEqual(history.epochs, 2)
        self.assertEqual(fit(mlp(), iris(), 1, verbose=0, initial_epoch=1).epochs, 0)  # nothing left to do
        for bad in (-1, float("nan"), float("inf"), "2", True):
            with self.assertRaisesRegex(ValueError, "epochs must be a non-negative number"):
                fit(mlp(), iris(), bad, verbose=0)
        with self.assertRaisesRegex(ValueError, "initial_epoch must be a non-negative int"):
            fit(mlp(), iris(), 3, verbose=0, initial_epoch=1.5)

    def test_a_fractional_run_ends_with_a_partial_epoch(self):
        model = mlp()
        seen = record_schedule_epochs(model)
        recorder = Recorder()
        history = fit(model, iris(), 1.5, callbacks=[recorder], verbose=0)  # 3 batches, then 2 of 3
        np.testing.assert_allclose(seen, [0, 1 / 3, 2 / 3, 1, 4 / 3])
        self.assertEqual(history.epochs, 2)
        self.assertEqual(len(history.iteration_loss), 5)
        self.assertEqual([i for name, i, _ in recorder.calls if name == "batch_end"], [0, 1, 2, 0, 1])
        self.assertEqual(check_epochs(3.0), 3)
        self.assertIsInstance(check_epochs(3.0), int)
        cases = [(4.4, 4, 50, 20), (4.4, 3, 50, 50), (2.01, 2, 4, 1), (2.999, 2, 4, 4), (3, 2, 4, 4), (0.5, 0, 3, 2)]
        for epochs, epoch, n, expected in cases:
            with self.subTest(epochs=epochs, epoch=epoch):
                self.assertEqual(epoch_batches(epochs, epoch, n), expected)
        self.assertEqual([epoch_count(e) for e in (4, 4.4, 0.1, 0)], [4, 5, 1, 0])

    def test_a_split_fractional_run_equals_a_whole_one(self):
        whole = mlp(dropout=True)
        fit(whole, iris(), 2.5, verbose=0)
        split = mlp(dropout=True)
        fit(split, iris(), 1, verbose=0)
        fit(split, iris(), 2.5, verbose=0, initial_epoch=1)
        for a, b in zip(whole.get_weights(), split.get_weights()):
            np.testing.assert_array_equal(a, b)

    def test_stop_training_ends_after_the_epoch(self):
        class StopAfterSecond(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    self.model.stop_training = True

        model, recorder = mlp(), Recorder()
        history = fit(model, iris(), 10, callbacks=[StopAfterSecond(), recorder], verbose=0)
        self.assertEqual(history.epochs, 2)
        self.assertTrue(model.stop_training)
        self.assertEqual(recorder.calls[-1][0], "train_end")
        fit(model, iris(), 1, verbose=0)  # a new fit starts afresh
        self.assertFalse(model.stop_training)

    def test_the_schedule_sees_fractional_epochs(self):
        model = mlp()
        seen = record_schedule_epochs(model)
        fit(model, iris(), 2, verbose=0)
        np.testing.assert_allclose(seen, [0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3])

    def test_epochs_are_seeded_so_a_split_run_equals_a_whole_one(self):
        whole = mlp(dropout=True)
        fit(whole, iris(), 3, verbose=0)
        split = mlp(dropout=True)
        fit(split, iris(), 1, verbose=0)
        fit(split, iris(), 3, verbose=0, initial_epoch=1)
        for a, b in zip(whole.get_weights(), split.get_weights()):
            np.testing.assert_array_equal(a, b)

    def test_output_layer_sized_from_the_data(self):
        model = NeuralNetwork(
            layers=[FullyConnected(4, "relu"), FullyConnected(None, "softmax")], optimizer=SGD(lr=0.1), seed=0
        )
        fit(model, iris(), 1, verbose=0)
        self.assertEqual(model.layers[-1].n_out, 3)


class TestDefaultsAndTrain(unittest.TestCase):
    def test_verbose_adds_a_progress_bar_and_summary_lines(self):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            fit(mlp(), iris(), 2, verbose=1)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(
            lines[1],
            r"^epoch 2/2  loss \d\.\d{4}  acc \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}  "
            r"lr 0\.1  \d+\.\ds$",
        )
        self.assertNotIn("%|", err.getvalue())  # no tqdm bar where the output is not a terminal
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            fit(mlp(), iris(), 1, verbose=0)
            fit(mlp(), iris(), 1, verbose=1, callbacks=[ProgressBar()])  # one bar, not two
        self.assertEqual(len(out.getvalue().splitlines()), 1)

    def test_train_delegates_to_fit(self):
        model, recorder = mlp(), Recorder()
        history = History()
        returned = model.train(iris(), 2, verbose=0, start_epoch=1, history=history, callbacks=[recorder])
        self.assertIs(returned, history)
        self.assertEqual([i for name, i, _ in recorder.calls if name == "epoch_end"], [1, 2])
        self.assertEqual(recorder.params["epochs"], 3)
        model.train(iris(), 1, verbose=0, start_epoch=3, history=history)
        self.assertEqual(history.epochs, 3)  # a History given again accumulates
        for bad in (-1, True, "2", float("nan")):
            with self.subTest(epochs=bad), self.assertRaisesRegex(ValueError, "epochs must be a non-negative number"):
                model.train(iris(), bad)
        recorder = Recorder()
        model.train(iris(), 0.5, verbose=0, callbacks=[recorder])  # as in configs: half an epoch's batches
        self.assertEqual(recorder.params["epochs"], 0.5)
        self.assertEqual([name for name, _, _ in recorder.calls].count("batch_end"), 2)  # ceil(0.5 * 3 batches)

    def test_the_models_logger_runs_as_a_callback(self):
        logger = Recorder()
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), logger=logger, seed=0)
        model.train(iris(), 2, verbose=0)
        model.train(iris(), 1, verbose=0, callbacks=[logger])  # given twice, it runs once
        self.assertEqual([name for name, _, _ in logger.calls].count("epoch_end"), 3)

    def test_a_logger_of_the_older_protocol(self):
        class OldLogger:
            def __init__(self):
                self.epochs, self.ended = [], None

            def on_epoch_end(self, model, epoch, metrics):
                self.epochs.append((epoch, sorted(metrics)))

            def on_train_end(self, model, history):
                self.ended = history

        logger = OldLogger()
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), logger=logger, seed=0)
        history = model.train(iris(), 2, verbose=0)
        self.assertEqual(logger.epochs, [(0, sorted(EPOCH_KEYS)), (1, sorted(EPOCH_KEYS))])
        self.assertIs(logger.ended, history)


if __name__ == "__main__":
    unittest.main()


class TestFractionalRuns(unittest.TestCase):
    def test_a_fractional_config_trains_and_resumes_only_to_its_epochs(self):
        import json
        import tempfile
        from pathlib import Path

        from neural_networks.experiments import ConfigError
        from neural_networks.experiments import run_experiment

        config = {
            "name": "half",
            "seed": 0,
            "epochs": 1.5,
            "data": {"name": "iris", "batch_size": 30},
            "model": {
                "loss": "cross_entropy",
                "layers": [{"name": "fully_connected", "n_out": 3, "activation": "softmax"}],
            },
            "optimizer": {"name": "sgd", "lr": 0.1, "lr_scheduler": {"name": "cosine"}},
        }
        with tempfile.TemporaryDirectory() as tmp:
            run_experiment(config, out_dir=tmp, verbose=0)
            run = Path(tmp) / "half"
            self.assertEqual(len((run / "metrics.csv").read_text().splitlines()), 3)  # header, 2 epochs
            self.assertEqual(json.loads((run / "metrics.json").read_text())["epochs"], 2)
            with self.assertRaisesRegex(ConfigError, r"run of 1\.5 epochs, whose last epoch trains part"):
                run_experiment({**config, "epochs": 3}, out_dir=tmp, verbose=0, resume=True)
            again = run_experiment(config, out_dir=tmp, verbose=0, resume=True)  # nothing left to train
            self.assertEqual(again["epochs"], 2)


class _Counting:
    """An iterable of ``0 .. n - 1`` that records how many items were taken from it, and may raise
    at one of them."""

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at, self.taken = n, fail_at, 0

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise RuntimeError(f"item {i} is broken")
            self.taken += 1
            yield i


class TestPrefetch(unittest.TestCase):
    """Batches prepared in a background thread: the same items in the same order, at most
    ``limit`` taken, errors raised at their place, the thread gone after an early stop."""

    def test_same_items_in_order_and_the_limit(self):
        from neural_networks.training.prefetch import Prefetch

        for depth in (1, 2, 5):
            with Prefetch(range(50), depth=depth) as items:
                self.assertEqual(list(items), list(range(50)))
        source = _Counting(10)
        with Prefetch(source, limit=4) as items:
            self.assertEqual(list(items), [0, 1, 2, 3])
        self.assertEqual(source.taken, 4)
        for bad in (0, -1, 1.5, True):
            with self.assertRaisesRegex(ValueError, "depth must be a positive int"):
                Prefetch([], depth=bad)
        with self.assertRaisesRegex(ValueError, "limit must be None or an int >= 0"):
            Prefetch([], limit=-1)

    def test_an_error_is_raised_where_it_happened(self):
        from neural_networks.training.prefetch import Prefetch

        got = []
        with self.assertRaisesRegex(RuntimeError, "item 3 is broken"), Prefetch(_Counting(10, fail_at=3)) as items:
            for item in items:
                got.append(item)
        self.assertEqual(got, [0, 1, 2])

    def test_an_early_stop_ends_the_thread_a_bounded_way_ahead(self):
        import time

        from neural_networks.training.prefetch import Prefetch

        source = _Counting(1000)
        prefetch = Prefetch(source, depth=2)
        with self.assertRaises(KeyboardInterrupt), prefetch as items:
            for item in items:
                if item == 5:
                    time.sleep(0.2)  # the producer fills the queue meanwhile, then waits
                    raise KeyboardInterrupt
        self.assertFalse(prefetch._thread.is_alive())
        self.assertLessEqual(source.taken, 5 + 1 + 2 + 1)  # the item in use, the queue, one being made

    def test_fit_with_and_without_prefetch_trains_the_same(self):
        results = []
        for prefetch in (0, 1, 3):
            data = initialize_dataset("iris", batch_size=16, seed=0)
            model = mlp(seed=4, dropout=True)
            history = fit(model, data, epochs=2.5, verbose=0, prefetch=prefetch)
            results.append((history["loss"], [layer.parameters.get("W") for layer in model.layers]))
        for loss, weights in results[1:]:
            self.assertEqual(loss, results[0][0])
            for a, b in zip(weights, results[0][1]):
                if a is not None:
                    np.testing.assert_array_equal(a, b)
        with self.assertRaisesRegex(ValueError, "prefetch must be an int >= 0"):
            fit(mlp(), iris(), epochs=1, verbose=0, prefetch=-1)
