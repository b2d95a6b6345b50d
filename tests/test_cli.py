"""The command line end to end, through subprocesses, on a tiny image-folder data set made here;
and in this process, where mocks count what a run builds, that values travel once."""

import contextlib
import csv
import io
import json
import os
import signal
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from PIL import Image

from neural_networks.experiments import config as config_module
from neural_networks.experiments import runner
from neural_networks.cli import build_parser

from .helpers import popen_cli, run_cli
from .test_config import count_builds

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("circle", "square", "stripes")


def draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 RGB picture of ``kind`` with noise, easy to tell apart."""
    yy, xx = np.mgrid[:8, :8]
    if kind == "circle":
        mask = (yy - 3.5) ** 2 + (xx - 3.5) ** 2 < 9
    elif kind == "square":
        mask = (abs(yy - 3.5) < 2.5) & (abs(xx - 3.5) < 2.5) & ~((abs(yy - 3.5) < 1.5) & (abs(xx - 3.5) < 1.5))
    else:
        mask = (xx % 2) == 0
    image = np.where(mask[..., None], 220, 30) + rng.integers(-20, 20, (8, 8, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_tree(root: Path, per_class: dict, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(draw(cls, rng)).save(folder / f"{i:03d}.png")


def tiny_config(data_path: Path, epochs: int = 2) -> dict:
    return {
        "name": "tiny",
        "seed": 0,
        "epochs": epochs,
        "data": {"name": "image_folder", "path": str(data_path), "batch_size": 8, "validation_size": 6},
        "model": {
            "loss": "cross_entropy",
            "layers": [
                {"name": "conv2d", "n_out": 4, "kernel_shape": [3, 3], "activation": "relu", "pad": "same"},
                {"name": "pool2d", "kernel_shape": [2, 2], "mode": "max", "stride": 2},
                {"name": "flatten"},
                {"name": "dropout", "p": 0.1},
                {"name": "fully_connected", "n_out": 3, "activation": "softmax"},
            ],
        },
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    }


def cli(*args, cwd, check=True, timeout=120):
    env = {**os.environ, "NEURAL_NETWORKS_DATA": str(Path(cwd) / "cache")}
    return run_cli(*args, cwd=cwd, env=env, check=check, timeout=timeout)


class TestCommandLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        make_tree(cls.dir / "shapes", {"train": 16, "test": 4})
        make_tree(cls.dir / "unlabelled_src", {"x": 2}, seed=5)
        cls.config_path = cls.dir / "tiny.yaml"
        cls.config_path.write_text(yaml.safe_dump(tiny_config(cls.dir / "shapes")))
        cls.train = cli("train", cls.config_path, "--out", cls.dir / "runs", "--quiet", cwd=cls.dir)
        cls.run_dir = cls.dir / "runs" / "tiny"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_train_writes_the_run_directory(self):
        self.assertIn("test accuracy", self.train.stdout)
        for name in (
            "config.yaml",
            "metrics.csv",
            "metrics.json",
            "loss.png",
            "accuracy.png",
            "loss_iterations.png",
            "error.png",
            "parameters.csv",
            "parameters.png",
            "confusion_matrix.png",
            "first_layer.png",
            "last.npz",
            "best.npz",
        ):
            self.assertTrue((self.run_dir / name).is_file(), name)
        figures = json.loads((self.run_dir / "metrics.json").read_text())
        self.assertEqual(figures["epochs"], 2)
        self.assertEqual(figures["tta"], "none")
        self.assertNotIn("test_accuracy_no_tta", figures)
        for key in ("test_accuracy", "val_accuracy", "train_seconds"):
            self.assertIsInstance(figures[key], float)
        with open(self.run_dir / "metrics.csv") as handle:
            rows = list(csv.DictReader(handle))
        self.assertEqual([r["epoch"] for r in rows], ["1", "2"])
        self.assertEqual(set(rows[0]), {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"})

    def test_evaluate(self):
        out = cli("evaluate", self.run_dir, "--split", "val", cwd=self.dir).stdout
        self.assertRegex(out, r"val: loss \d+\.\d+  accuracy \d\.\d+  \(6 examples")
        out = cli("evaluate", self.run_dir, cwd=self.dir).stdout
        accuracy = float(out.split("accuracy ")[1].split()[0])
        self.assertAlmostEqual(
            accuracy, json.loads((self.run_dir / "metrics.json").read_text())["test_accuracy"], places=4
        )
        self.assertIn("tta none", out)  # the run's config asks for none

    def test_evaluate_and_predict_with_flip_tta(self):
        from neural_networks.experiments import build_dataset, load_run

        out = cli("evaluate", self.run_dir, "--tta", "flip", cwd=self.dir).stdout
        self.assertIn("tta flip", out)
        config, model = load_run(self.run_dir, which="last")
        dataset = build_dataset(config)
        expected = model.evaluate(dataset.test, tta="flip")["accuracy"]
        self.assertAlmostEqual(float(out.split("accuracy ")[1].split()[0]), expected, places=4)
        out_csv = self.dir / "submission_tta.csv"
        cli("predict", self.run_dir, "--split", "test", "--tta", "flip", "--output", out_csv, cwd=self.dir)
        rows = list(csv.reader(out_csv.open()))[1:]
        X = np.concatenate([x for x, _ in dataset.test])
        self.assertEqual([int(r[1]) for r in rows], model.predict_classes(X, tta="flip").tolist())
        # a run whose config asks for flip TTA reports its figures with it, and without it for comparison
        cli(
            "train",
            self.config_path,
            "--out",
            self.dir / "runs_tta",
            "--quiet",
            "--epochs",
            "1",
            "--set",
            "evaluation.tta=flip",
            cwd=self.dir,
        )
        figures = json.loads((self.dir / "runs_tta" / "tiny" / "metrics.json").read_text())
        config, model = load_run(self.dir / "runs_tta" / "tiny", which="last")
        self.assertEqual((figures["tta"], config["evaluation"]["tta"]), ("flip", "flip"))
        self.assertAlmostEqual(figures["test_accuracy"], model.evaluate(dataset.test, tta="flip")["accuracy"])
        self.assertAlmostEqual(figures["test_accuracy_no_tta"], model.evaluate(dataset.test)["accuracy"])
        self.assertIn("tta flip", cli("evaluate", self.dir / "runs_tta" / "tiny", cwd=self.dir).stdout)
        bad = cli("evaluate", self.run_dir, "--tta", "rotate", cwd=self.dir, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("invalid choice: 'rotate'", bad.stderr)

    def test_predict_split_and_images(self):
        out_csv = self.dir / "submission.csv"
        cli("predict", self.run_dir, "--split", "test", "--output", out_csv, cwd=self.dir)
        rows = list(csv.reader(out_csv.open()))
        self.assertEqual(rows[0], ["Id", "Category"])
        self.assertEqual([int(r[0]) for r in rows[1:]], list(range(1, 13)))
        self.assertTrue(all(r[1] in ("0", "1", "2") for r in rows[1:]))
        images_csv = self.dir / "images.csv"
        cli("predict", self.run_dir, "--images", self.dir / "unlabelled_src", "--output", images_csv, cwd=self.dir)
        rows = list(csv.reader(images_csv.open()))
        self.assertEqual(len(rows), 1 + 6)

    def test_report_markdown_and_latex(self):
        out = self.dir / "report" / "report.md"
        cli("report", self.run_dir, "--format", "markdown", "--heading-level", "2", "--output", out, cwd=self.dir)
        text = out.read_text()
        self.assertIn("## Run `tiny`", text)
        for needle in (
            "### Activations",
            "class ReLU",
            "class SoftMax",
            "### Layers",
            "class Conv2D",
            "class Pool2D",
            "class Dropout",
            "### Losses",
            "class CrossEntropy",
            "### Model",
            "def backward",
            "test accuracy",
            "](../runs/tiny/loss.png)",
        ):
            self.assertIn(needle, text)
        latex = cli("report", self.run_dir, "--format", "latex", "--heading-level", "3", cwd=self.dir).stdout
        self.assertIn("\\subsubsection{Run tiny}", latex)
        self.assertIn("\\begin{lstlisting}[language=Python]", latex)

    def test_train_without_validation_data(self):
        """validation_size 0: every image trains; the validation figures are None, not a crash."""
        runs = self.dir / "runs_no_val"
        out = cli(
            "train",
            self.config_path,
            "--out",
            runs,
            "--quiet",
            "--epochs",
            "1",
            "--set",
            "data.validation_size=0",
            cwd=self.dir,
        ).stdout
        self.assertIn("val accuracy none held out", out)
        figures = json.loads((runs / "tiny" / "metrics.json").read_text())
        self.assertIsNone(figures["val_accuracy"])
        self.assertIsNone(figures["best_val_accuracy"])
        self.assertIsInstance(figures["test_accuracy"], float)
        with open(runs / "tiny" / "metrics.csv") as handle:
            self.assertEqual(next(csv.DictReader(handle))["val_accuracy"], "")  # the columns stay the same
        self.assertIn("test accuracy", cli("report", runs / "tiny", cwd=self.dir).stdout)
        bad = cli("evaluate", runs / "tiny", "--split", "val", cwd=self.dir, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("empty split", bad.stderr)

    def test_gradcheck(self):
        out = cli("gradcheck", cwd=self.dir).stdout
        self.assertRegex(out, r"\d+ passed, 0 failed")

    def test_a_broken_run_config_is_one_line(self):
        import shutil

        broken = self.dir / "broken_runs" / "tiny"
        shutil.copytree(self.run_dir, broken)
        (broken / "config.yaml").write_text("name: [unclosed\n")
        result = cli("evaluate", broken, cwd=self.dir, check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.strip().count("\n"), 0, result.stderr)
        self.assertIn("config.yaml: not valid YAML", result.stderr)

    def test_errors_are_one_line(self):
        bad = dict(tiny_config(self.dir / "shapes"))
        bad["optimiser"] = bad.pop("optimizer")
        path = self.dir / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        result = cli("train", path, "--out", self.dir / "bad_runs", cwd=self.dir, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip().count("\n"), 0, result.stderr)
        self.assertIn(
            "unknown key optimiser; valid keys: callbacks, data, epochs, evaluation, model, name, optimizer, seed",
            result.stderr,
        )
        for args, needle in (
            (("train", self.config_path, "--set", "model.layers.0.activation=relu6"), "unknown activation 'relu6'"),
            (("train", self.config_path, "--set", "data.batchsize=3"), "unknown key data.batchsize"),
            (("train", self.dir / "missing.yaml"), "config file not found"),
            (("evaluate", self.dir), "not a run directory"),
            (
                ("predict", self.run_dir, "--images", self.dir / "nothing_here", "--output", self.dir / "x.csv"),
                "nothing_here",
            ),
        ):
            result = (
                cli(*args, "--out", self.dir / "bad_runs", cwd=self.dir, check=False)
                if args[0] == "train"
                else cli(*args, cwd=self.dir, check=False)
            )
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertIn(needle, result.stderr)
            self.assertNotIn("Traceback", result.stderr)

    def test_resume_equals_uninterrupted(self):
        base = self.dir / "resume"
        cli("train", self.config_path, "--out", base / "full", "--epochs", "3", "--quiet", cwd=self.dir)
        cli("train", self.config_path, "--out", base / "split", "--epochs", "1", "--quiet", cwd=self.dir)
        cli("train", self.config_path, "--out", base / "split", "--epochs", "3", "--resume", "--quiet", cwd=self.dir)
        full = json.loads((base / "full" / "tiny" / "metrics.json").read_text())
        split = json.loads((base / "split" / "tiny" / "metrics.json").read_text())
        self.assertEqual(split["epochs"], 3)
        for key in ("test_accuracy", "test_loss", "val_accuracy", "val_loss"):
            self.assertEqual(full[key], split[key], key)
        a = np.load(base / "full" / "tiny" / "last.npz")
        b = np.load(base / "split" / "tiny" / "last.npz")
        self.assertEqual(sorted(a.files), sorted(b.files))
        for key in a.files:
            if key not in ("config", "training"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        # the training state is the same but for the wall-clock seconds of each epoch
        state_a, state_b = (json.loads(str(f["training"])) for f in (a, b))
        for state in (state_a, state_b):
            self.assertEqual(len(state["callbacks"]["History"]["history"].pop("seconds")), 3)
        self.assertEqual(state_a, state_b)
        # the parameter ranges continue across the resume: every epoch once, equal to the full run's
        full_ranges = (base / "full" / "tiny" / "parameters.csv").read_text()
        self.assertEqual((base / "split" / "tiny" / "parameters.csv").read_text(), full_ranges)
        self.assertEqual(sorted({line.split(",")[0] for line in full_ranges.splitlines()[1:]}), ["1", "2", "3"])

    def test_early_stopping_from_the_config(self):
        """No epoch can improve val_loss by more than 10: the run stops after its second epoch of 10,
        metrics.json says so, and --resume leaves a stopped run stopped."""
        runs = self.dir / "runs_early"
        args = (
            "train",
            self.config_path,
            "--out",
            runs,
            "--epochs",
            "10",
            "--quiet",
            "--set",
            "callbacks=[{name: early_stopping, min_delta: 10}, {name: model_checkpoint, monitor: val_loss}]",
        )
        out = cli(*args, cwd=self.dir).stdout
        self.assertIn("epochs 2 ", out)
        figures = json.loads((runs / "tiny" / "metrics.json").read_text())
        self.assertEqual((figures["epochs"], figures["stopped_early"]), (2, True))
        with open(runs / "tiny" / "metrics.csv") as handle:
            self.assertEqual([r["epoch"] for r in csv.DictReader(handle)], ["1", "2"])
        config = yaml.safe_load((runs / "tiny" / "config.yaml").read_text())
        self.assertEqual(config["callbacks"][0], {"name": "early_stopping", "min_delta": 10})
        from neural_networks.models import NeuralNetwork

        self.assertEqual(NeuralNetwork.load(runs / "tiny" / "last.npz").extra["monitor"], "val_loss")
        cli(*args, "--resume", cwd=self.dir)
        figures = json.loads((runs / "tiny" / "metrics.json").read_text())
        self.assertEqual((figures["epochs"], figures["stopped_early"]), (2, True))
        self.assertFalse(json.loads((self.run_dir / "metrics.json").read_text())["stopped_early"])
        bad = cli(
            "train",
            self.config_path,
            "--out",
            runs,
            "--set",
            "callbacks=[{name: early_stop}]",
            cwd=self.dir,
            check=False,
        )
        self.assertEqual(bad.returncode, 2)
        self.assertIn(
            f"error: {self.config_path} with callbacks=[{{name: early_stop}}]: callbacks.0: unknown callback "
            "'early_stop'; valid names: early_stopping, freeze, ema, lookahead, model_checkpoint",
            bad.stderr,
        )

    def test_ctrl_c_saves_and_resumes(self):
        out = self.dir / "interrupted"
        env = {**os.environ, "NEURAL_NETWORKS_DATA": str(self.dir / "cache")}
        process = popen_cli("train", self.config_path, "--out", out, "--epochs", 500, "--quiet", cwd=self.dir, env=env)
        last = out / "tiny" / "last.npz"
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 130, stderr)
        self.assertIn("--resume", stderr)
        self.assertNotIn("Traceback", stderr)
        from neural_networks.models import NeuralNetwork

        done = NeuralNetwork.load(last).extra["epoch"]
        self.assertGreaterEqual(done, 1)
        result = cli(
            "train", self.config_path, "--out", out, "--epochs", str(done + 1), "--resume", "--quiet", cwd=self.dir
        )
        self.assertIn("epochs " + str(done + 1), result.stdout)

    def assertOneLineError(self, result, *needles):
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stderr.strip().count("\n"), 0, result.stderr)
        self.assertTrue(result.stderr.startswith("error: "), result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)

    def test_an_existing_run_directory_is_never_reused_silently(self):
        out = self.dir / "runs_again"
        (out / "tiny").mkdir(parents=True)  # an empty directory trains normally
        cli("train", self.config_path, "--out", out, "--epochs", "2", "--quiet", cwd=self.dir)
        metrics = (out / "tiny" / "metrics.json").read_text()
        # the same command again: a second run in its own folder, the first one untouched
        again = cli("train", self.config_path, "--out", out, "--epochs", "1", "--quiet", cwd=self.dir)
        self.assertIn(str(out / "tiny-2"), again.stdout)
        self.assertEqual((out / "tiny" / "metrics.json").read_text(), metrics)
        self.assertEqual(json.loads((out / "tiny-2" / "metrics.json").read_text())["epochs"], 1)
        self.assertEqual(json.loads((out / "tiny-2" / "run.json").read_text())["state"], "finished")
        nothing = cli("train", self.config_path, "--out", self.dir / "runs_none", "--resume", cwd=self.dir, check=False)
        self.assertOneLineError(nothing, "train without --resume first")
        self.assertFalse((self.dir / "runs_none").exists())  # nothing written: a plain train works next
        both = cli("train", self.config_path, "--out", out, "--resume", "--overwrite", cwd=self.dir, check=False)
        self.assertEqual(both.returncode, 2)
        # --overwrite: a whole new run, nothing of the old one left (not even the moved-aside copy)
        (out / "tiny" / "stray.txt").write_text("from the old run")
        cli("train", self.config_path, "--out", out, "--epochs", "1", "--overwrite", "--quiet", cwd=self.dir)
        self.assertEqual(json.loads((out / "tiny" / "metrics.json").read_text())["epochs"], 1)
        self.assertEqual(len(read_rows(out / "tiny" / "metrics.csv")), 1)
        self.assertFalse((out / "tiny" / "stray.txt").exists())
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["tiny", "tiny-2"])

    def test_resume_compares_configs(self):
        out = self.dir / "runs_compare"
        cli("train", self.config_path, "--out", out, "--epochs", "1", "--quiet", cwd=self.dir)
        written = (out / "tiny" / "config.yaml").read_text()
        self.assertIn("n_out: 3", written)
        bad = cli(
            "train",
            self.config_path,
            "--out",
            out,
            "--resume",
            "--epochs",
            "2",
            "--set",
            "optimizer.lr=0.1",
            "--set",
            "seed=3",
            cwd=self.dir,
            check=False,
        )
        self.assertOneLineError(
            bad, "cannot resume", "optimizer.lr, seed", "only epochs, evaluation.tta, tensorboard may change"
        )
        self.assertEqual((out / "tiny" / "config.yaml").read_text(), written)
        # the output layer's n_out: null of a config is compared as resolved from the data set
        config = tiny_config(self.dir / "shapes")
        config["model"]["layers"][-1]["n_out"] = None
        sized = self.dir / "tiny_sized.yaml"
        sized.write_text(yaml.safe_dump(config))
        cli(
            "train",
            sized,
            "--out",
            out,
            "--resume",
            "--epochs",
            "2",
            "--set",
            "evaluation.tta=flip",
            "--quiet",
            cwd=self.dir,
        )
        config = yaml.safe_load((out / "tiny" / "config.yaml").read_text())
        self.assertEqual((config["epochs"], config["evaluation"]["tta"]), (2, "flip"))
        self.assertEqual(json.loads((out / "tiny" / "metrics.json").read_text())["epochs"], 2)

    def test_damaged_checkpoints_give_one_line_errors(self):
        import shutil

        run = self.dir / "runs_damaged" / "tiny"
        shutil.copytree(self.run_dir, run)
        last = run / "last.npz"
        last.write_bytes(last.read_bytes()[:100])
        for args in (
            ("evaluate", run, "--checkpoint", "last"),
            ("predict", run, "--split", "test", "--output", self.dir / "d.csv"),
        ):
            self.assertOneLineError(cli(*args, cwd=self.dir, check=False), f"error: {last}: unreadable model file")
        resumed = cli("train", self.config_path, "--out", run.parent, "--resume", cwd=self.dir, check=False)
        self.assertOneLineError(resumed, f"{last}: unreadable model file", "--overwrite")
        (run / "best.npz").write_bytes(b"")
        self.assertOneLineError(
            cli("evaluate", run, "--checkpoint", "best", cwd=self.dir, check=False), str(run / "best.npz")
        )

    def test_a_missing_best_checkpoint_is_not_replaced_by_the_last(self):
        """``--checkpoint best`` on a run without best.npz says so; it does not evaluate last.npz
        and call it best. ``--checkpoint last`` still works, and a run without either names the
        file asked for."""
        import shutil

        from neural_networks.experiments import ConfigError
        from neural_networks.experiments import load_run

        run = self.dir / "runs_no_best" / "tiny"
        shutil.copytree(self.run_dir, run)
        (run / "best.npz").unlink()
        result = cli("evaluate", run, "--checkpoint", "best", cwd=self.dir, check=False)
        self.assertOneLineError(result, f"error: {run} has no best.npz", "--checkpoint last")
        self.assertNotIn("accuracy", result.stdout)
        self.assertIn("last checkpoint", cli("evaluate", run, "--checkpoint", "last", cwd=self.dir).stdout)
        (run / "last.npz").unlink()
        with self.assertRaisesRegex(ConfigError, "has no checkpoint last.npz"):
            load_run(run, which="last")
        with self.assertRaisesRegex(ValueError, "which must be 'best' or 'last'"):
            load_run(run, which="latest")

    def test_run_names_are_one_safe_folder_name(self):
        out = self.dir / "runs_names"
        for name in ("../escape", "a/b", "..", "sp ace"):
            result = cli("train", self.config_path, "--out", out, "--set", f"name={name!r}", cwd=self.dir, check=False)
            self.assertOneLineError(result, "error: ", "name")  # config.py refuses '/', runner.py the rest
            if "/" in name:
                self.assertIn(f"name must be a non-empty string without '/', got {name!r}", result.stderr)
            if "/" not in name:
                self.assertIn("not a valid run name", result.stderr)
        self.assertFalse(out.exists())
        self.assertFalse((self.dir / "escape").exists())


class TestValuesTravelOnce(unittest.TestCase):
    """``train`` reads and validates its config once and builds the optimizer, the loss and every
    layer once (validation builds them, the model takes them over); so does ``run_experiment``
    given a plain mapping from Python. Iris, one epoch, in this process."""

    IRIS = ROOT / "configs" / "iris.yaml"

    @contextlib.contextmanager
    def counting(self):
        """Counts of validations and of the objects built inside the context, as a dict."""
        by_config = mock.patch.object(config_module, "validate_config", wraps=config_module.validate_config)
        by_runner = mock.patch.object(runner, "validate_config", wraps=runner.validate_config)
        with count_builds() as built, by_config as in_config, by_runner as in_runner:
            counts = {}
            yield counts
            counts["validations"] = in_config.call_count + in_runner.call_count
            counts.update({kind: mocked.call_count for kind, mocked in built.items()})

    def test_train(self):
        with tempfile.TemporaryDirectory() as out, self.counting() as counts, contextlib.redirect_stdout(io.StringIO()):
            # the train command itself (main would also set the process's allocator)
            args = build_parser().parse_args(["train", str(self.IRIS), "--epochs", "1", "--quiet", "--out", out])
            self.assertEqual(args.func(args), 0)
            config = yaml.safe_load((Path(out) / "iris" / "config.yaml").read_text())
        # the output layer's n_out: null is sized from the data on the layer validation built
        self.assertEqual(config["model"]["layers"][-1]["n_out"], 3)
        self.assertEqual(counts, {"validations": 1, "optimizer": 1, "loss": 1, "layer": 2})

    def test_run_experiment_with_a_plain_mapping(self):
        raw = config_module.load_config(self.IRIS)
        raw["epochs"] = 1
        with tempfile.TemporaryDirectory() as out, self.counting() as counts:
            runner.run_experiment(raw, out_dir=out, verbose=0)
        self.assertEqual(counts, {"validations": 1, "optimizer": 1, "loss": 1, "layer": 2})

    def test_a_model_from_the_validated_parts_equals_one_built_from_the_dict(self):
        raw = config_module.load_config(self.IRIS)
        raw["model"]["layers"][-1]["n_out"] = 3
        valid = config_module.validate_config(raw)
        taken, built = runner.build_model(valid), runner.build_model(dict(valid))
        X = np.random.default_rng(0).standard_normal((5, 4))
        np.testing.assert_array_equal(taken.forward(X), built.forward(X))
        self.assertEqual(taken.optimizer.config(), built.optimizer.config())
        self.assertIsNot(runner.build_model(valid).optimizer, taken.optimizer)  # handed over once


def read_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


if __name__ == "__main__":
    unittest.main()
