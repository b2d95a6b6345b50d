"""TensorBoard logging (neural_networks.tensorboard), read back with TensorBoard's own reader:
the curves' tags, steps and values (against metrics.csv, metrics.json and the History), the
pictures, the HParams session, resuming after a crash (purge markers), the config key, the
callback entry, the CLI flag and the optional dependency."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stderr, suppress
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from PIL import Image  # (matplotlib's dependency)

try:  # TensorBoard's own reader (the tensorboard extra); the tests using it are @requires_tensorboard
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, metadata
except ImportError:
    event_accumulator = EventFileLoader = api_pb2 = metadata = None

from neural_networks import cli
from neural_networks.callbacks import CALLBACKS, Callback
from neural_networks.experiments import ConfigError, validate_config
from neural_networks.datasets import initialize_dataset
from neural_networks.experiments import RunInterrupted, run_experiment
from neural_networks.layers import FullyConnected
from neural_networks.logs import read_json, read_metrics_csv
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD
from neural_networks.schedulers import initialize_scheduler
from neural_networks.serialization import load_checkpoint
from neural_networks.tensorboard import TensorBoard, _EventFile, _modules
from neural_networks.training import fit

from .helpers import requires

requires_tensorboard = requires("tensorboard")  # a skip naming the package and its extra when it is missing

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3  # Iris: 90 training examples in batches of 30

CONFIG = {
    "name": "iris",
    "seed": 0,
    "epochs": 3,
    "data": {"name": "iris", "batch_size": 30},
    "model": {
        "loss": "cross_entropy",
        "layers": [
            {"name": "fully_connected", "n_out": 8, "activation": "relu"},
            {"name": "fully_connected", "n_out": None, "activation": "softmax"},
        ],
    },
    # a schedule that moves within an epoch, so that iteration/lr differs from epoch/lr
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "lr_scheduler": {"name": "cosine", "total_epochs": 4}},
}
EPOCH_TAGS = {f"epoch/{key}" for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")}
ITERATION_TAGS = {"iteration/loss", "iteration/accuracy", "iteration/lr"}
FINAL_TAGS = {f"final/{key}" for key in ("test_accuracy", "test_loss", "val_accuracy", "val_loss")}


def config(**changes) -> dict:
    result = copy.deepcopy(CONFIG)
    result.update(changes)
    return result


def read(log_dir) -> event_accumulator.EventAccumulator:
    """TensorBoard's reader over every events file of ``log_dir``, keeping every event (it applies
    purge markers, as TensorBoard does)."""
    guidance = {kind: 0 for kind in (event_accumulator.SCALARS, event_accumulator.IMAGES, event_accumulator.TENSORS)}
    accumulator = event_accumulator.EventAccumulator(str(log_dir), size_guidance=guidance)
    return accumulator.Reload()


def raw_events(log_dir) -> list:
    """Every event on disk, in the order readers take the files (no purging)."""
    files = sorted(p for p in Path(log_dir).iterdir() if "tfevents" in p.name)
    return [event for path in files for event in EventFileLoader(str(path)).Load()]


def scalars(accumulator, tag) -> tuple[list[int], list[float]]:
    events = accumulator.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def f32(values) -> list[float]:
    """What a float32 ``simple_value`` reads back as."""
    return [float(np.float32(v)) for v in values]


def hparams_of(accumulator):
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    return start, end


class Crash(Callback):
    """Ctrl-C during epoch ``epoch`` (0-based): after its batch ``batch``, or (``batch=None``) at
    its end, after the callbacks before it (TensorBoard's included) but before the checkpoint."""

    def __init__(self, epoch, batch=None):
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.batch is None:
            raise KeyboardInterrupt


class TempDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name)
        # the Logger's curves are not what is tested here, and drawing them is most of a run's time
        for target in ("neural_networks.logs.Logger.plot_epochs", "neural_networks.plots.plot_iteration_loss"):
            patcher = mock.patch(target)
            patcher.start()
            self.addCleanup(patcher.stop)

    def tearDown(self):
        self._tmp.cleanup()


@requires_tensorboard
class TestRun(TempDir):
    def test_a_run_writes_curves_pictures_and_hparams(self):
        figures = run_experiment(config(tensorboard=True), out_dir=self.dir, verbose=0)
        run = self.dir / "iris"
        log_dir = run / "tensorboard"
        self.assertEqual(len(list(log_dir.glob("events.out.tfevents.*"))), 1)
        acc = read(log_dir)
        tags = acc.Tags()
        self.assertEqual(set(tags["scalars"]), ITERATION_TAGS | EPOCH_TAGS | FINAL_TAGS)
        self.assertEqual(set(tags["images"]), {"images/confusion_matrix", "images/first_layer"})

        # per iteration: step = epoch * steps + batch
        history = load_checkpoint(run / "last.npz").arrays["callbacks.History.iteration_loss"]
        steps, losses = scalars(acc, "iteration/loss")
        self.assertEqual(steps, list(range(3 * STEPS)))
        self.assertEqual(losses, f32(history))
        schedule = initialize_scheduler(**{"lr": 0.05, **CONFIG["optimizer"]["lr_scheduler"]})
        expected_lr = [schedule(e + b / STEPS) for e in range(3) for b in range(STEPS)]
        self.assertEqual(scalars(acc, "iteration/lr")[1], f32(expected_lr))
        self.assertGreater(len(set(expected_lr)), 3)  # it moves within epochs

        # per epoch: at the step of the epoch's last batch, the values of metrics.csv
        rows = read_metrics_csv(run / "metrics.csv")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            with self.subTest(key=key):
                steps, values = scalars(acc, f"epoch/{key}")
                self.assertEqual(steps, [STEPS - 1, 2 * STEPS - 1, 3 * STEPS - 1])
                self.assertEqual(values, f32(row[key] for row in rows))
        # the running accuracy of an epoch's last batch is the epoch's accuracy
        self.assertEqual(scalars(acc, "iteration/accuracy")[1][STEPS - 1 :: STEPS], scalars(acc, "epoch/accuracy")[1])

        # the end: the final figures of metrics.json, one past the last batch
        for key in ("test_accuracy", "test_loss", "val_accuracy", "val_loss"):
            self.assertEqual(scalars(acc, f"final/{key}"), ([3 * STEPS], f32([figures[key]])))
        self.assertEqual(read_json(run / "metrics.json")["test_accuracy"], figures["test_accuracy"])

        # the pictures are the run's own PNG files
        for name in ("confusion_matrix", "first_layer"):
            with self.subTest(picture=name):
                (image,) = acc.Images(f"images/{name}")
                self.assertEqual(image.step, 3 * STEPS)
                self.assertEqual(image.encoded_image_string, (run / f"{name}.png").read_bytes())
                decoded = Image.open(io.BytesIO(image.encoded_image_string))
                self.assertEqual(decoded.format, "PNG")
                self.assertEqual(decoded.size, (image.width, image.height))
                self.assertGreater(image.width * image.height, 100 * 100)

        # hparams: the flattened config (as written to config.yaml), then the session's end
        start, end = hparams_of(acc)
        values = dict(start.hparams)
        self.assertEqual(values["optimizer.lr"].number_value, 0.05)
        self.assertEqual(values["model.layers.1.n_out"].number_value, 3)  # sized from the data set
        self.assertEqual(values["optimizer.lr_scheduler.name"].string_value, "cosine")
        self.assertEqual(values["name"].string_value, "iris")
        self.assertTrue(values["tensorboard"].bool_value)
        self.assertEqual(values["callbacks"].string_value, "[]")
        self.assertEqual(end.status, api_pb2.STATUS_SUCCESS)
        # one purge marker, at the fit's first step
        starts = [e.step for e in raw_events(log_dir) if e.HasField("session_log")]
        self.assertEqual(starts, [0])

    def test_a_callback_entry_sets_the_arguments(self):
        entry = {"name": "tensorboard", "update_freq": 2}
        run_experiment(config(epochs=2, callbacks=[entry], tensorboard=True), out_dir=self.dir, verbose=0)
        acc = read(self.dir / "iris" / "tensorboard")  # one callback: the entry's
        self.assertEqual(scalars(acc, "iteration/loss")[0], [0, 2, 4])
        self.assertEqual(scalars(acc, "epoch/loss")[0], [2, 5])
        self.assertEqual(len(acc.Images("images/first_layer")), 1)


@requires_tensorboard
class TestResume(TempDir):
    """Two epochs, then a resume towards four that crashes in epoch 3 after TensorBoard wrote some
    of its events, then a resume that finishes: the curves read back as one run's, equal to an
    uninterrupted run's."""

    def run_three_times(self, out, crash: Crash):
        # flush_secs 0: batch events are on disk as soon as they happen, as in a long epoch
        base = config(epochs=2, callbacks=[{"name": "tensorboard", "flush_secs": 0}])
        run_experiment(base, out_dir=out, verbose=0)
        with self.assertRaises(RunInterrupted):
            run_experiment({**base, "epochs": 4}, out_dir=out, resume=True, verbose=0, callbacks=[crash])
        return run_experiment({**base, "epochs": 4}, out_dir=out, resume=True, verbose=0)

    def test_resume_after_a_crash_continues_the_curves(self):
        reference = config(epochs=4, callbacks=[{"name": "tensorboard", "flush_secs": 0}])
        run_experiment(reference, out_dir=self.dir / "full", verbose=0)
        full = read(self.dir / "full" / "iris" / "tensorboard")
        for crash, stale in ((Crash(epoch=2, batch=1), 2), (Crash(epoch=2), STEPS)):
            with self.subTest(batch=crash.batch):
                out = self.dir / f"split-{crash.batch}"
                figures = self.run_three_times(out, crash)
                run = out / "iris"
                log_dir = run / "tensorboard"
                raw = raw_events(log_dir)
                # on disk: the crashed epoch's batches (and the first run's end) are there twice
                written = [e.step for e in raw if any(v.tag == "iteration/loss" for v in e.summary.value)]
                self.assertEqual(len(written), 4 * STEPS + stale)
                self.assertEqual([e.step for e in raw if e.HasField("session_log")], [0, 2 * STEPS, 2 * STEPS])
                acc = read(log_dir)
                expected = {
                    **{tag: list(range(4 * STEPS)) for tag in ITERATION_TAGS},
                    **{tag: [(e + 1) * STEPS - 1 for e in range(4)] for tag in EPOCH_TAGS},
                    **{tag: [4 * STEPS] for tag in FINAL_TAGS},
                }
                self.assertEqual(set(acc.Tags()["scalars"]), set(expected))
                for tag, steps in expected.items():
                    got, values = scalars(acc, tag)
                    self.assertEqual(got, steps, tag)  # strictly increasing, unique, all of them
                    self.assertEqual(values, scalars(full, tag)[1], tag)  # as if never interrupted
                rows = read_metrics_csv(run / "metrics.csv")
                self.assertEqual(len(rows), 4)
                for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
                    self.assertEqual(scalars(acc, f"epoch/{key}")[1], f32(r[key] for r in rows), key)
                self.assertEqual(scalars(acc, "final/test_accuracy")[1], f32([figures["test_accuracy"]]))
                # the two-epoch run's pictures were superseded: only the final run's remain
                for name in ("confusion_matrix", "first_layer"):
                    self.assertEqual([i.step for i in acc.Images(f"images/{name}")], [4 * STEPS])
                    image = acc.Images(f"images/{name}")[0].encoded_image_string
                    self.assertEqual(image, (run / f"{name}.png").read_bytes())
                # the files sort in the order they were written, whatever their second or process
                names = [p.name for p in sorted(log_dir.glob("events.out.tfevents.*"))]
                self.assertEqual(len(names), 3)
                self.assertEqual(names, sorted(names, key=lambda n: (log_dir / n).stat().st_mtime_ns))

    def test_resume_rewrites_the_end_of_a_finished_run(self):
        """Resuming a finished run for more epochs purges its end (pictures, final figures)."""
        base = config(epochs=1, tensorboard=True)
        run_experiment(base, out_dir=self.dir, verbose=0)
        run_experiment({**base, "epochs": 2}, out_dir=self.dir, resume=True, verbose=0)
        acc = read(self.dir / "iris" / "tensorboard")
        self.assertEqual(scalars(acc, "final/test_loss")[0], [2 * STEPS])
        self.assertEqual(scalars(acc, "epoch/loss")[0], [STEPS - 1, 2 * STEPS - 1])
        self.assertEqual(scalars(acc, "iteration/loss")[0], list(range(2 * STEPS)))
        self.assertEqual([i.step for i in acc.Images("images/confusion_matrix")], [2 * STEPS])


def iris_model():
    return NeuralNetwork(
        layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), seed=0
    )


class Probe(Callback):
    """The size of ``directory``'s events file after every batch (runs after TensorBoard)."""

    def __init__(self, directory):
        self.directory, self.sizes = Path(directory), []

    def on_epoch_begin(self, epoch, logs=None):
        self.sizes.append([])

    def on_train_batch_end(self, batch, logs=None):
        (path,) = self.directory.glob("events.out.tfevents.*")
        self.sizes[-1].append(path.stat().st_size)


class TestCallback(TempDir):
    @requires_tensorboard
    def test_on_its_own(self):
        """Without an experiment: the first layer when training ends (and every filters_every
        epochs), the given hparams, every update_freq-th step; the file is closed at the end."""
        callback = TensorBoard(self.dir, update_freq=2, filters_every=1, hparams={"lr": 0.1, "units": [8], "x": None})
        fit(iris_model(), initialize_dataset("iris", batch_size=30, seed=0), 2, callbacks=[callback], verbose=0)
        acc = read(self.dir)
        self.assertEqual(scalars(acc, "iteration/loss")[0], [0, 2, 4])
        self.assertEqual(scalars(acc, "epoch/loss")[0], [2, 5])
        self.assertNotIn("val_loss", acc.Tags()["scalars"])
        self.assertEqual([i.step for i in acc.Images("images/first_layer")], [2, 5, 6])
        self.assertNotIn("images/confusion_matrix", acc.Tags()["images"])
        start, end = hparams_of(acc)
        self.assertEqual(start.hparams["lr"].number_value, 0.1)
        self.assertEqual(start.hparams["units"].string_value, "[8]")
        self.assertEqual(start.hparams["x"].string_value, "null")
        self.assertEqual(end.status, api_pb2.STATUS_SUCCESS)
        self.assertIsNone(callback._file)

    @requires_tensorboard
    def test_per_iteration_values_are_written_at_epoch_ends(self):
        data = initialize_dataset("iris", batch_size=10, seed=0)  # 9 batches an epoch
        for flush_secs, grows_within_epochs in ((30.0, False), (0.0, True)):
            with self.subTest(flush_secs=flush_secs):
                log_dir = self.dir / str(flush_secs)
                probe = Probe(log_dir)
                fit(iris_model(), data, 2, callbacks=[TensorBoard(log_dir, flush_secs=flush_secs), probe], verbose=0)
                for sizes in probe.sizes:
                    self.assertEqual(len(sizes), 9)
                    self.assertEqual(len(set(sizes)) == 9, grows_within_epochs, sizes)
                    self.assertEqual(len(set(sizes)) == 1, not grows_within_epochs, sizes)
                self.assertLess(probe.sizes[0][-1], probe.sizes[1][0])  # the epoch's end was written
                self.assertEqual(len(read(log_dir).Scalars("iteration/loss")), 18)

    @requires_tensorboard
    def test_arguments(self):
        for kwargs, message in (
            ({"update_freq": 0}, "update_freq must be 'batch', 'epoch' or a positive integer; got 0"),
            ({"update_freq": "step"}, "update_freq must be"),
            ({"flush_secs": -1}, "flush_secs must be a non-negative number"),
            ({"filters_every": 1.5}, "filters_every must be a non-negative integer"),
            ({"hparams": [1]}, "hparams must be a mapping"),
        ):
            with self.subTest(**kwargs), self.assertRaisesRegex(ValueError, f"^TensorBoard: {message}"):
                TensorBoard(self.dir, **kwargs)
        with self.assertRaisesRegex(ValueError, "log_dir must be a folder path"):
            TensorBoard(None)
        self.assertEqual(list(self.dir.iterdir()), [])  # building writes nothing
        self.assertEqual(TensorBoard(self.dir, update_freq="epoch")._every, None)

    @requires_tensorboard
    def test_registry(self):
        self.assertIn("tensorboard", CALLBACKS)
        self.assertEqual(CALLBACKS.arguments("tensorboard")[:3], ["log_dir", "update_freq", "flush_secs"])
        self.assertIsInstance(CALLBACKS.create("tensorboard", log_dir=str(self.dir)), TensorBoard)
        with self.assertRaisesRegex(
            ValueError, r"unexpected argument 'logdir'\); valid arguments: log_dir, update_freq"
        ):
            CALLBACKS.create("tensorboard", logdir="x")

    def test_new_files_sort_after_existing_ones(self):
        future = int(time.time()) + 1000
        (self.dir / f"events.out.tfevents.{future:010d}.zzz.99999.7").write_bytes(b"")
        name = _EventFile._name(self.dir)
        self.assertEqual(name.split(".")[3], f"{future + 1:010d}")
        self.assertGreater(name, f"events.out.tfevents.{future:010d}.zzz.99999.7")


class TestConfigAndCommandLine(TempDir):
    @requires_tensorboard
    def test_the_config_key(self):
        self.assertTrue(validate_config(config(tensorboard=True))["tensorboard"])
        self.assertFalse(validate_config(config(tensorboard=False))["tensorboard"])
        self.assertNotIn("tensorboard", validate_config(config()))  # no default is written into config.yaml
        for changes, pattern in (
            ({"tensorboard": "yes"}, r"^tensorboard must be true or false, got 'yes'$"),
            ({"tensorboard": 1}, r"^tensorboard must be true or false, got 1$"),
            ({"callbacks": [{"name": "tensorboard", "log_dir": "x"}]}, r"^callbacks\.0: tensorboard takes no log_dir"),
            ({"callbacks": [{"name": "tensorboard", "hparams": {}}]}, r"^callbacks\.0: tensorboard takes no hparams"),
            ({"callbacks": [{"name": "tensorboard"}, {"name": "tensorboard"}]}, r"^callbacks\.1: a run writes one"),
            ({"callbacks": [{"name": "tensorboard", "update_freq": -1}]}, r"^callbacks\.0: TensorBoard: update_freq"),
            ({"callbacks": [{"name": "tensorboard", "every": 2}]}, r"^callbacks\.0: bad arguments for callback"),
        ):
            with self.subTest(changes=changes), self.assertRaisesRegex(ConfigError, pattern):
                validate_config(config(**changes))

    @requires_tensorboard
    def test_logging_may_start_when_resuming(self):
        """``tensorboard`` is one of the keys a resume may change (false is the same as missing): the
        resumed fit logs from its first step on, and training is as if uninterrupted."""
        run_experiment(config(epochs=1), out_dir=self.dir, verbose=0)
        run_experiment(config(epochs=2, tensorboard=False), out_dir=self.dir, resume=True, verbose=0)
        self.assertFalse((self.dir / "iris" / "tensorboard").exists())
        run_experiment(config(epochs=3, tensorboard=True), out_dir=self.dir, resume=True, verbose=0)
        logged = read(self.dir / "iris" / "tensorboard")
        epoch_steps, _ = scalars(logged, "epoch/loss")
        self.assertEqual(len(epoch_steps), 1)  # epoch 3 alone, at its last batch's step
        steps_per_epoch = (epoch_steps[0] + 1) // 3
        self.assertEqual(epoch_steps, [3 * steps_per_epoch - 1])
        iteration_steps, _ = scalars(logged, "iteration/loss")
        self.assertEqual(iteration_steps, list(range(2 * steps_per_epoch, 3 * steps_per_epoch)))
        whole = self.dir / "whole"
        run_experiment(config(epochs=3), out_dir=whole, verbose=0)
        for a, b in zip(
            NeuralNetwork.load(self.dir / "iris" / "last.npz").get_weights(),
            NeuralNetwork.load(whole / "iris" / "last.npz").get_weights(),
        ):
            np.testing.assert_array_equal(a, b)

    def test_without_the_package(self):
        """``tensorboard: true`` (or the callback) fails when the config is checked, in one line."""
        # what the checks import is imported before sys.modules is patched (the ConfigError: without tensorboard)
        with suppress(ConfigError):
            validate_config(config(tensorboard=True))
        with mock.patch.dict(sys.modules, {"tensorboard": None}):
            with self.assertRaisesRegex(ImportError, r'pip install "neural_networks\[tensorboard\]"'):
                _modules()
            for changes in ({"tensorboard": True}, {"callbacks": [{"name": "tensorboard"}]}):
                with self.subTest(changes=changes), self.assertRaises(ConfigError) as caught:
                    validate_config(config(**changes))
                message = str(caught.exception)
                self.assertRegex(message, r"^(tensorboard|callbacks\.0): TensorBoard logging needs the tensorboard")
                self.assertIn('install it with pip install "neural_networks[tensorboard]"', message)
                self.assertNotIn("\n", message)
            validate_config(config(tensorboard=False))  # fine without it
            path = self.dir / "iris.yaml"
            path.write_text(yaml.safe_dump(CONFIG))
            stderr = io.StringIO()
            with redirect_stderr(stderr):
                status = cli.main(["train", str(path), "--out", str(self.dir / "runs"), "--tensorboard", "--quiet"])
            self.assertEqual(status, 2)
            self.assertEqual(stderr.getvalue().count("\n"), 1, stderr.getvalue())
            self.assertIn("neural_networks[tensorboard]", stderr.getvalue())
            self.assertFalse((self.dir / "runs").exists())

    def test_the_missing_package_message_names_every_way_to_ask(self):
        """The CLI turns --tensorboard into the override tensorboard=true: the error must not say the
        user gave --set tensorboard=true, and names the flag, the config key and the callback."""
        with suppress(ConfigError):  # what the checks import is imported before sys.modules is patched
            validate_config(config(tensorboard=True))
        path = self.dir / "iris.yaml"
        path.write_text(yaml.safe_dump(CONFIG))
        with mock.patch.dict(sys.modules, {"tensorboard": None}):
            with self.assertRaises(ImportError) as caught:
                _modules()
            detail = "(import of tensorboard halted; None in sys.modules)"
            expected = (
                "TensorBoard logging needs the tensorboard package, whether asked for with --tensorboard, "
                f'`tensorboard: true` or the tensorboard callback {detail}; install it with pip install "neural_networks[tensorboard]"'
            )
            self.assertEqual(str(caught.exception), expected)
            for args in (["--tensorboard"], ["--set", "tensorboard=true", "--epochs", "1"]):
                stderr = io.StringIO()
                with self.subTest(args=args), redirect_stderr(stderr):
                    status = cli.main(["train", str(path), "--out", str(self.dir / "runs"), "--quiet", *args])
                    self.assertEqual(status, 2)
                    self.assertEqual(stderr.getvalue(), f"error: {path}: tensorboard: {expected}\n")
            self.assertFalse((self.dir / "runs").exists())

    def test_importing_the_package_does_not_import_tensorboard(self):
        code = (
            "import sys, neural_networks, neural_networks.experiments, neural_networks.cli, neural_networks.tensorboard\n"
            "from neural_networks.callbacks import CALLBACKS\n"
            "CALLBACKS.arguments('tensorboard')\n"
            "assert 'tensorboard' not in sys.modules, 'tensorboard was imported'\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)

    @requires_tensorboard
    def test_the_train_flag_and_resume(self):
        path = self.dir / "iris.yaml"
        path.write_text(yaml.safe_dump(config(epochs=1)))
        out = self.dir / "runs"
        with redirect_stderr(io.StringIO()), mock.patch("sys.stdout", io.StringIO()):
            self.assertEqual(cli.main(["train", str(path), "--out", str(out), "--tensorboard", "--quiet"]), 0)
            args = ["train", str(path), "--out", str(out), "--epochs", "2", "--resume", "--quiet"]
            self.assertEqual(cli.main([*args, "--tensorboard"]), 0)
            self.assertIs(yaml.safe_load((out / "iris" / "config.yaml").read_text())["tensorboard"], True)
            acc = read(out / "iris" / "tensorboard")
            self.assertEqual(scalars(acc, "epoch/loss")[0], [STEPS - 1, 2 * STEPS - 1])
            self.assertEqual(scalars(acc, "iteration/loss")[0], list(range(2 * STEPS)))
            # resumed without the flag: logging stops (tensorboard is a resumable key), training goes on
            self.assertEqual(cli.main([*args[:5], "3", *args[6:]]), 0)
        self.assertEqual(len(read_metrics_csv(out / "iris" / "metrics.csv")), 3)
        self.assertEqual(scalars(read(out / "iris" / "tensorboard"), "epoch/loss")[0], [STEPS - 1, 2 * STEPS - 1])


if __name__ == "__main__":
    unittest.main()
