"""``neural-networks tune`` / ``tune-report`` on Iris: search-space errors, a grid study with two
worker processes on the journal file, resuming after Ctrl-C, a failing trial, pruning, and a
study shared by two commands through a PostgreSQL server started here.

Trials are short Iris runs (a few epochs; most of a trial's time is its plots), so the whole file
takes about a minute on two cores.
"""

import contextlib
import csv
import getpass
import glob
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import unittest.mock
from pathlib import Path

import yaml

from neural_networks.experiments import ConfigError, load_config, load_valid_config, validate_config
from neural_networks.tune.samplers import MEDIAN_PRUNER
from neural_networks.tune.space import check_validation_split, load_space, parse_space
from neural_networks.tune.storage import JOURNAL_NAME, _with_installed_driver

from .helpers import missing, popen_cli, requires, run_cli

try:  # the tune extra; the tests that need it are @requires_optuna
    import optuna
except ImportError:
    optuna = None
requires_optuna = requires("optuna")  # a skip naming the package and its extra when it is missing

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "configs" / "iris.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args, cwd, check=True, timeout=240):
    return run_cli(*args, cwd=cwd, check=check, timeout=timeout)


def main_in_process(*args) -> tuple[int, str, str]:
    """``neural-networks ARGS`` in this process (cheaper than a subprocess): (status, stdout, stderr)."""
    from neural_networks.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def read_trials(study_dir: Path) -> list[dict]:
    with open(study_dir / "trials.csv") as handle:
        return list(csv.DictReader(handle))


def write_space(path: Path, space: dict) -> Path:
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def trial_dirs(study_dir: Path) -> list[str]:
    return sorted(p.name for p in study_dir.glob("trial-*") if p.is_dir())


class TestSearchSpace(unittest.TestCase):
    """Every bad space is one ConfigError naming the key, before anything trains."""

    @classmethod
    def setUpClass(cls):
        cls.config = load_valid_config(IRIS)

    def error(self, space, sampler="tpe") -> str:
        with self.assertRaises(ConfigError) as caught:
            parse_space(space, self.config, sampler=sampler, source="space.yaml")
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith("space.yaml: "), message)
        return message

    def test_the_issue_examples_parse(self):
        space = parse_space(
            {
                "optimizer.lr": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
                "model.layers.0.n_out": {"type": "categorical", "choices": [4, 16, 64]},
                "data.batch_size": {"type": "int", "low": 16, "high": 128, "step": 16},
            },
            self.config,
        )
        self.assertEqual(list(space), ["optimizer.lr", "model.layers.0.n_out", "data.batch_size"])
        self.assertEqual(
            space.distributions["data.batch_size"].grid_values("data.batch_size"), list(range(16, 129, 16))
        )
        # a key the config lacks but accepts (SGD takes weight_decay) is fine
        parse_space({"optimizer.weight_decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}}, self.config)

    def test_unknown_keys_are_named(self):
        self.assertIn(
            "unknown key optimizer.lrr", self.error({"optimizer.lrr": {"type": "float", "low": 0.1, "high": 1}})
        )
        message = self.error({"model.layerz.0.n_out": {"type": "categorical", "choices": [4]}})
        self.assertIn("unknown key model.layerz.0.n_out", message)
        self.assertIn("keys there: loss, layers", message)
        message = self.error({"model.layers.5.n_out": {"type": "categorical", "choices": [4]}})
        self.assertIn("model.layers.5.n_out", message)
        self.assertIn("model.layers has 2 items", message)
        self.assertIn(
            "unknown key model.layers.0.units",
            self.error({"model.layers.0.units": {"type": "int", "low": 1, "high": 4}}),
        )
        self.assertIn("name: cannot be searched", self.error({"name": {"type": "categorical", "choices": ["a"]}}))

    def test_bad_distributions_are_named(self):
        cases = {
            "type must be one of float, int, categorical, got 'normal'": {"type": "normal"},
            "unknown field 'choices' for type float": {"type": "float", "low": 0.1, "high": 1, "choices": [1]},
            "low (1.0) must be below high (0.1)": {"type": "float", "low": 1.0, "high": 0.1},
            "a log range needs low > 0": {"type": "float", "low": 0, "high": 1, "log": True},
            "log and step exclude each other": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1},
            "needs low and high (missing high)": {"type": "float", "low": 0.1},
            "categorical needs a non-empty list of choices": {"type": "categorical", "choices": []},
            "choice 0.1 is listed twice": {"type": "categorical", "choices": [0.1, 0.1]},
        }
        for expected, spec in cases.items():
            with self.subTest(expected):
                message = self.error({"optimizer.lr": spec})
                self.assertIn("optimizer.lr: ", message)
                self.assertIn(expected, message)
        message = self.error({"data.batch_size": {"type": "int", "low": 16.5, "high": 128}})
        self.assertIn("data.batch_size: low must be an integer", message)
        message = self.error({"data.batch_size": {"type": "int", "low": 16, "high": 100, "step": 16}})
        self.assertIn("must be a multiple of step", message)
        self.assertIn("mapping of dotted config keys", self.error([1, 2]))

    def test_values_the_config_refuses(self):
        message = self.error({"optimizer.name": {"type": "categorical", "choices": ["sgd", "rmsprop9"]}})
        self.assertIn("optimizer.name: value 'rmsprop9' makes the config invalid", message)

    def test_grid_needs_explicit_values(self):
        message = self.error(
            {"optimizer.lr": {"type": "float", "low": 0.001, "high": 1.0, "log": True}}, sampler="grid"
        )
        self.assertIn("optimizer.lr: the grid sampler needs explicit values", message)
        self.assertIn("{type: categorical, choices: [...]}", message)
        message = self.error({"data.batch_size": {"type": "int", "low": 16, "high": 128}}, sampler="grid")
        self.assertIn("data.batch_size: the grid sampler needs explicit values; give step", message)

    def test_shipped_space_is_a_twelve_point_grid(self):
        space = load_space(ROOT / "configs" / "iris_space.yaml", self.config, sampler="grid")
        self.assertEqual({k: len(v) for k, v in space.grid().items()}, {"optimizer.lr": 4, "model.layers.0.n_out": 3})

    def test_invalid_ends_of_ranges_are_refused(self):
        """Both ends of a range are tried on the config: a batch size of 0, a negative learning
        rate, a validation fraction of 1 are one line naming the key and the value."""
        message = self.error({"data.batch_size": {"type": "int", "low": 0, "high": 64}})
        self.assertEqual(
            message,
            "space.yaml: data.batch_size: value 0 makes the config invalid: "
            "data.batch_size must be a positive integer, got 0",
        )
        message = self.error({"optimizer.lr": {"type": "float", "low": -1, "high": 1}})
        self.assertIn(
            "optimizer.lr: value -1.0 makes the config invalid: optimizer: learning rate must be positive", message
        )
        fashion = load_valid_config(ROOT / "configs" / "fashion_mnist_mlp.yaml")
        for spec, value in (
            ({"type": "float", "low": 0.1, "high": 1.0}, "1.0"),
            ({"type": "float", "low": -0.1, "high": 0.5}, "-0.1"),
            ({"type": "int", "low": -5, "high": 100}, "-5"),
        ):
            with self.subTest(spec=spec), self.assertRaises(ConfigError) as caught:
                parse_space({"data.validation_size": spec}, fashion, source="space.yaml")
            self.assertIn(
                f"data.validation_size: value {value} makes the config invalid: data.validation_size must be a count",
                str(caught.exception),
            )
        parse_space({"data.validation_size": {"type": "float", "low": 0.05, "high": 0.5}}, fashion)

    def test_a_key_given_twice_in_the_space_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "space.yaml"
            path.write_text(
                "optimizer.lr: {type: float, low: 0.01, high: 1.0}\n"
                "model.layers.0.n_out: {type: categorical, choices: [4, 8]}\n"
                "optimizer.lr: {type: categorical, choices: [0.1]}\n"
            )
            with self.assertRaises(ConfigError) as caught:
                load_space(path, self.config)
            self.assertEqual(
                str(caught.exception),
                f"{path}: key 'optimizer.lr' appears twice (lines 1 and 3); a mapping takes each key once",
            )
            path.write_text("optimizer.lr: {type: float, low: 0.01, high: 1.0, low: 0.1}\n")
            with self.assertRaisesRegex(ConfigError, r"key 'optimizer\.lr\.low' appears twice \(both on line 1\)"):
                load_space(path, self.config)

    def test_a_config_without_validation_data_is_refused(self):
        for config, space in (
            (load_valid_config(ROOT / "configs" / "cifar10_fast.yaml"), None),  # validation_size: 0
            (
                load_valid_config(ROOT / "configs" / "fashion_mnist_mlp.yaml"),
                parse_space(
                    {"data.validation_size": {"type": "categorical", "choices": [5000, 0]}},
                    load_valid_config(ROOT / "configs" / "fashion_mnist_mlp.yaml"),
                ),
            ),
        ):
            with self.assertRaises(ConfigError) as caught:
                check_validation_split(config, "the config", space)
            self.assertIn("holds out no validation data (data.validation_size: 0)", str(caught.exception))
        check_validation_split(self.config, "iris.yaml")  # Iris keeps 30 flowers for validation

    def test_an_image_folder_may_bring_its_own_validation_split(self):
        from tests.test_cli import make_tree, tiny_config

        with tempfile.TemporaryDirectory() as tmp:
            make_tree(Path(tmp) / "with_val", {"train": 3, "val": 1, "test": 1})
            make_tree(Path(tmp) / "without", {"train": 3, "test": 1})
            for folder, ok in (("with_val", True), ("without", False)):
                config = tiny_config(Path(tmp) / folder)
                config["data"].update(validation_size=0, cache=False, progress=False)
                config = validate_config(config)
                if ok:
                    check_validation_split(config, folder)
                else:
                    with self.assertRaises(ConfigError):
                        check_validation_split(config, folder)


class TestTuneCommandLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @requires_optuna
    def test_errors_are_one_line_before_any_trial(self):
        space = write_space(self.dir / "typo.yaml", {"optimizer.lrr": {"type": "float", "low": 0.01, "high": 1}})
        bad = cli("tune", IRIS, "--space", space, "--trials", "2", "--out", self.dir / "e", cwd=self.dir, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(bad.stderr.strip().count("\n"), 0, bad.stderr)
        self.assertIn("error: ", bad.stderr)
        self.assertIn("unknown key optimizer.lrr", bad.stderr)
        self.assertFalse((self.dir / "e").exists())  # nothing was started
        space = write_space(self.dir / "ok.yaml", {"optimizer.lr": {"type": "float", "low": 0.01, "high": 1}})
        bad = cli("tune", IRIS, "--space", space, "--out", self.dir / "e", cwd=self.dir, check=False)
        self.assertIn("--trials is required", bad.stderr)
        bad = cli("tune", IRIS, "--space", space, "--trials", "0", cwd=self.dir, check=False)
        self.assertIn("expected a positive integer", bad.stderr)
        bad = cli("tune-report", self.dir, cwd=self.dir, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("is not a study folder", bad.stderr)

    @requires_optuna
    def test_an_invalid_low_end_stops_the_study_before_any_trial(self):
        space = write_space(self.dir / "batch.yaml", {"data.batch_size": {"type": "int", "low": 0, "high": 64}})
        status, _, err = main_in_process("tune", IRIS, "--space", space, "--trials", "2", "--out", self.dir / "b")
        self.assertEqual(status, 2)
        self.assertEqual(
            err.strip(),
            f"error: {space}: data.batch_size: value 0 makes the config invalid: "
            "data.batch_size must be a positive integer, got 0",
        )
        self.assertFalse((self.dir / "b").exists())  # nothing was started

    @requires_optuna
    def test_a_study_file_with_a_key_given_twice(self):
        from neural_networks.tune.report import report_from_folder

        folder = self.dir / "twice"
        folder.mkdir()
        (folder / "study.yaml").write_text('{\n  "study": "a",\n  "storage": "journal.log",\n  "study": "b"\n}\n')
        with self.assertRaises(ConfigError) as caught:
            report_from_folder(folder, out=lambda line: None)
        self.assertEqual(
            str(caught.exception),
            f"{folder / 'study.yaml'}: key 'study' appears twice (lines 2 and 4); a mapping takes each key once",
        )

    def test_without_optuna_one_line_says_what_to_install(self):
        code = (
            "import sys; sys.modules['optuna'] = None\n"  # import optuna now raises ImportError
            "import neural_networks, neural_networks.cli, neural_networks.tune\n"
            "from neural_networks.cli import main\n"
            f"raise SystemExit(main(['tune', {str(IRIS)!r}, '--space', 'x.yaml', '--trials', '1']))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=self.dir)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip(), 'error: tuning needs Optuna: pip install "neural_networks[tune]"')
        code = "import sys, neural_networks, neural_networks.cli, neural_networks.tune.report; print('optuna' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=self.dir)
        self.assertEqual(result.stdout.strip(), "False", result.stderr)

    @requires_optuna
    def test_grid_study_with_two_workers(self):
        out = self.dir / "grid"
        lrs, sizes = [0.05, 0.5], [4, 8]
        space = write_space(
            self.dir / "grid.yaml",
            {
                "optimizer.lr": {"type": "categorical", "choices": lrs},
                "model.layers.0.n_out": {"type": "categorical", "choices": sizes},
            },
        )
        args = ("tune", IRIS, "--space", space, "--sampler", "grid", "--pruner", "none", "--jobs", "2")
        args += ("--set", "epochs=4", "--study", "g", "--out", out)
        result = cli(*args, cwd=self.dir)
        study_dir = out / "g"
        self.assertIn("2 worker(s)", result.stdout)
        self.assertTrue((study_dir / JOURNAL_NAME).is_file())
        self.assertEqual(trial_dirs(study_dir), [f"trial-{n:04d}" for n in range(4)])

        rows = read_trials(study_dir)
        self.assertEqual([r["number"] for r in rows], ["0", "1", "2", "3"])
        self.assertEqual(
            list(rows[0]),
            ["number", "state", "value", "optimizer.lr", "model.layers.0.n_out", "duration_s", "fail_reason"],
        )
        self.assertEqual({r["state"] for r in rows}, {"complete"})
        points = {(float(r["optimizer.lr"]), int(r["model.layers.0.n_out"])) for r in rows}
        self.assertEqual(points, {(lr, n) for lr in lrs for n in sizes})  # every grid point once
        for row in rows:
            run_dir = study_dir / f"trial-{int(row['number']):04d}"
            for name in ("config.yaml", "metrics.csv", "metrics.json", "loss.png", "best.npz", "last.npz"):
                self.assertTrue((run_dir / name).is_file(), f"{run_dir.name}/{name}")
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
            self.assertEqual(config["name"], run_dir.name)
            self.assertEqual(config["optimizer"]["lr"], float(row["optimizer.lr"]))
            self.assertEqual(config["model"]["layers"][0]["n_out"], int(row["model.layers.0.n_out"]))
            figures = json.loads((run_dir / "metrics.json").read_text())
            self.assertEqual(figures["epochs"], 4)
            self.assertAlmostEqual(float(row["value"]), figures["val_accuracy"])  # the final validation accuracy
        # each worker process ran a share of the trials under its own process id
        study = optuna.load_study(study_name="g", storage=_journal(study_dir))
        self.assertEqual(len({t.user_attrs["worker"] for t in study.trials}), 2)

        for name in ("history.png", "parallel_coordinates.png", "importances.png", "heatmap.png"):
            self.assertEqual((study_dir / name).read_bytes()[:8], PNG, name)
        best = max(rows, key=lambda r: (float(r["value"]), -int(r["number"])))
        best_config = yaml.safe_load((study_dir / "best_config.yaml").read_text())
        self.assertEqual(best_config["name"], "g-best")
        self.assertEqual(best_config["optimizer"]["lr"], float(best["optimizer.lr"]))
        self.assertEqual(best_config["model"]["layers"][0]["n_out"], int(best["model.layers.0.n_out"]))
        self.assertIn("| number | state | value |", (study_dir / "trials.md").read_text())
        trained = cli(
            "train",
            study_dir / "best_config.yaml",
            "--epochs",
            "2",
            "--out",
            self.dir / "runs",
            "--quiet",
            cwd=self.dir,
        )
        self.assertIn("g-best", trained.stdout)

        # the same command again: the study is finished, nothing runs, the report is rewritten
        stamps = {p: p.stat().st_mtime_ns for p in study_dir.glob("trial-*/metrics.json")}
        (study_dir / "trials.csv").unlink()
        again = cli(*args, cwd=self.dir)
        self.assertIn("nothing left to run", again.stdout)
        self.assertEqual(trial_dirs(study_dir), [f"trial-{n:04d}" for n in range(4)])
        self.assertEqual(read_trials(study_dir), rows)
        self.assertEqual({p: p.stat().st_mtime_ns for p in study_dir.glob("trial-*/metrics.json")}, stamps)
        # another config for the same study is refused, naming what differs
        other = cli(*args[:-4], "--set", "epochs=5", "--study", "g", "--out", out, cwd=self.dir, check=False)
        self.assertEqual(other.returncode, 2)
        self.assertIn("was started with another config (differing in epochs)", other.stderr)
        (study_dir / "heatmap.png").unlink()
        report = cli("tune-report", study_dir, cwd=self.dir)
        self.assertIn("4 complete", report.stdout)
        self.assertTrue((study_dir / "heatmap.png").is_file())

    @requires_optuna
    def test_ctrl_c_or_a_killed_worker_then_the_same_command_runs_only_the_remainder(self):
        out = self.dir / "resume"
        space = write_space(
            self.dir / "lr.yaml", {"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True}}
        )
        args = ["tune", IRIS, "--space", space, "--sampler", "random", "--pruner", "none", "--trials", "2"]
        args += ["--set", "epochs=60", "--out", out]
        study_dir = out / "iris"

        def start_then(trial: str, stop):
            """Start the command, wait until ``trial`` has started, then call ``stop(process)``."""
            process = popen_cli(*args, cwd=self.dir)
            deadline = time.monotonic() + 120
            while not (study_dir / trial / "config.yaml").exists():
                self.assertIsNone(process.poll(), f"tune ended before {trial} started")
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            stop(process)
            return (*process.communicate(timeout=60), process.returncode)

        # Ctrl-C during trial 1: trial 0 is finished, trial 1 is handed back
        stdout, stderr, code = start_then("trial-0001", lambda p: p.send_signal(signal.SIGINT))
        self.assertEqual(code, 130, stderr)
        self.assertIn("run the same command again to continue", stderr)
        self.assertIn("trial-0001: interrupted", stdout)
        first = json.loads((study_dir / "trial-0000" / "metrics.json").read_text())
        stamp = (study_dir / "trial-0000" / "metrics.json").stat().st_mtime_ns
        # the rerun starts with trial 1's parameters (as trial 2) and is killed outright
        stdout, stderr, code = start_then("trial-0002", lambda p: p.kill())
        self.assertEqual(code, -signal.SIGKILL)
        # the next rerun finds trial 2's dead worker, hands it back and runs only the remainder
        result = cli(*args, cwd=self.dir)
        self.assertIn("trial-0002: its worker had died", result.stdout)
        self.assertIn("1 trial(s) finished, up to 1 to run", result.stdout)
        rows = read_trials(study_dir)
        self.assertEqual(
            [(r["number"], r["state"]) for r in rows],
            [("0", "complete"), ("1", "fail"), ("2", "fail"), ("3", "complete")],
        )
        self.assertIn("interrupted (Ctrl-C or SIGTERM)", rows[1]["fail_reason"])
        self.assertIn("retried as trial 2", rows[1]["fail_reason"])
        self.assertIn("died", rows[2]["fail_reason"])
        self.assertIn("retried as trial 3", rows[2]["fail_reason"])
        self.assertEqual(len({rows[n]["optimizer.lr"] for n in (1, 2, 3)}), 1)  # the interrupted draw, evaluated now
        self.assertNotEqual(rows[0]["optimizer.lr"], rows[3]["optimizer.lr"])
        self.assertEqual(trial_dirs(study_dir), [f"trial-{n:04d}" for n in range(4)])
        self.assertEqual((study_dir / "trial-0000" / "metrics.json").stat().st_mtime_ns, stamp)  # not repeated
        self.assertEqual(json.loads((study_dir / "trial-0000" / "metrics.json").read_text()), first)
        self.assertIn("2 complete, 0 pruned, 0 failed, 2 interrupted and queued again", result.stdout)
        self.assertIn("nothing left to run", cli(*args, cwd=self.dir).stdout)

    @requires_optuna
    def test_ctrl_c_inside_optunas_journal_lock_is_still_an_interrupt(self):
        # Ctrl-C while Optuna takes its journal file lock comes out as RuntimeError("did not
        # possess lock") (its cleanup raises from inside the KeyboardInterrupt); the trial must
        # be handed back like any interrupt, not recorded as failed with the study going on
        from optuna.storages.journal import _file

        from neural_networks.tune import trial as trial_module

        out = self.dir / "lock_interrupt"
        space = write_space(self.dir / "lr_lock.yaml", {"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.5}})
        args = ["tune", IRIS, "--space", space, "--sampler", "random", "--pruner", "none", "--trials", "2"]
        args += ["--set", "epochs=4", "--out", out]

        class InterruptedOs:
            """``os`` for Optuna's lock module, whose next ``symlink`` (taking the lock) is a Ctrl-C once armed."""

            armed = False

            def __getattr__(self, name):
                return getattr(os, name)

            def symlink(self, *args, **kwargs):
                if InterruptedOs.armed:
                    InterruptedOs.armed = False
                    raise KeyboardInterrupt
                return os.symlink(*args, **kwargs)

        report = trial_module.PruningReporter.on_epoch_end

        def on_epoch_end(reporter, epoch, logs=None):
            if reporter.trial.number == 1 and epoch == 1:
                InterruptedOs.armed = True  # the report below takes the lock
            report(reporter, epoch, logs)

        with (
            unittest.mock.patch.object(_file, "os", InterruptedOs()),
            unittest.mock.patch.object(trial_module.PruningReporter, "on_epoch_end", on_epoch_end),
        ):
            status, stdout, stderr = main_in_process(*args)
        self.assertFalse(InterruptedOs.armed)  # the interrupt did happen
        self.assertEqual(status, 130, stdout + stderr)
        self.assertIn("trial-0001: interrupted; its parameters are queued", stdout)
        self.assertIn("run the same command again to continue", stderr)
        study = optuna.load_study(study_name="iris", storage=_journal(out / "iris"))
        states = [t.state.name for t in study.trials]
        self.assertEqual(states, ["COMPLETE", "FAIL", "WAITING"])
        self.assertIn("interrupted (Ctrl-C or SIGTERM)", study.trials[1].user_attrs["fail_reason"])
        status, stdout, stderr = main_in_process(*args)  # the rerun evaluates the queued draw
        self.assertEqual(status, 0, stderr)
        self.assertEqual([r["state"] for r in read_trials(out / "iris")], ["complete", "fail", "complete"])

    @requires_optuna
    def test_a_failing_trial_is_recorded_and_the_study_goes_on(self):
        out = self.dir / "failing"
        # a learning rate of 1e30 passes the config check but diverges when the trial trains
        space = write_space(self.dir / "lr.yaml", {"optimizer.lr": {"type": "categorical", "choices": [1e30, 0.05]}})
        status, stdout, stderr = main_in_process(
            "tune", IRIS, "--space", space, "--sampler", "grid", "--set", "epochs=2", "--out", out
        )
        self.assertEqual(status, 0, stderr)
        rows = {float(r["optimizer.lr"]): r for r in read_trials(out / "iris")}
        self.assertEqual(rows[1e30]["state"], "fail")
        self.assertIn("TrainingDiverged: training diverged at epoch 1", rows[1e30]["fail_reason"])
        self.assertEqual(rows[0.05]["state"], "complete")
        self.assertEqual(rows[0.05]["fail_reason"], "")
        self.assertIn("1 complete, 0 pruned, 1 failed", stdout)
        self.assertEqual(yaml.safe_load((out / "iris" / "best_config.yaml").read_text())["optimizer"]["lr"], 0.05)
        study = optuna.load_study(study_name="iris", storage=_journal(out / "iris"))
        failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        self.assertIn("training diverged", failed[0].user_attrs["fail_reason"])

    @requires_optuna
    def test_median_pruner_stops_a_hopeless_trial(self):
        out = self.dir / "pruning"
        study_dir = out / "iris"
        epochs = 12
        space_spec = {"optimizer.lr": {"type": "float", "low": 1e-9, "high": 1e-8, "log": True}}
        space = write_space(self.dir / "tiny_lr.yaml", space_spec)
        # three completed trials that reached accuracy 1.0 at every epoch: a learning rate of
        # 1e-8 cannot keep up, so the median rule prunes the next trial once warm-up is over
        study = optuna.create_study(study_name="iris", storage=_journal(study_dir), direction="maximize")
        distribution = optuna.distributions.FloatDistribution(1e-9, 1e-8, log=True)
        for _ in range(MEDIAN_PRUNER["n_startup_trials"]):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"optimizer.lr": 5e-9},
                    distributions={"optimizer.lr": distribution},
                    value=1.0,
                    intermediate_values=dict.fromkeys(range(epochs), 1.0),
                )
            )
        status, stdout, stderr = main_in_process(
            "tune",
            IRIS,
            "--space",
            space,
            "--sampler",
            "random",
            "--trials",
            "4",
            "--set",
            f"epochs={epochs}",
            "--out",
            out,
        )
        self.assertEqual(status, 0, stderr)
        self.assertIn("pruned after epoch", stdout)
        rows = read_trials(study_dir)
        self.assertEqual([r["state"] for r in rows], ["complete"] * 3 + ["pruned"])
        run_dir = study_dir / "trial-0003"
        figures = json.loads((run_dir / "metrics.json").read_text())  # the run directory is complete
        self.assertTrue(figures["stopped_early"])
        self.assertEqual(figures["epochs"], MEDIAN_PRUNER["n_warmup_steps"] + 1)  # pruned at the first step judged
        self.assertLess(figures["epochs"], epochs)
        self.assertTrue((run_dir / "best.npz").is_file() and (run_dir / "loss.png").is_file())
        trial = optuna.load_study(study_name="iris", storage=_journal(study_dir)).trials[3]
        self.assertEqual(trial.user_attrs["pruned_after_epoch"], figures["epochs"])
        self.assertEqual(sorted(trial.intermediate_values), list(range(figures["epochs"])))
        self.assertAlmostEqual(float(rows[3]["value"]), trial.intermediate_values[figures["epochs"] - 1])


@requires_optuna
class TestReportEdgeCases(unittest.TestCase):
    """The report of studies with too little to show: notes instead of plots that would fail."""

    def study(self, values):
        from neural_networks.tune.storage import ATTR

        study = optuna.create_study(direction="maximize")
        space = {
            "optimizer.lr": {"type": "categorical", "choices": [0.1, 1.0]},
            "model.layers.0.n_out": {"type": "categorical", "choices": [4, 8]},
        }
        study.set_user_attr(ATTR, {"base_config": load_config(IRIS), "space": space, "sampler": "grid"})
        distributions = {
            "optimizer.lr": optuna.distributions.CategoricalDistribution([0.1, 1.0]),
            "model.layers.0.n_out": optuna.distributions.CategoricalDistribution([4, 8]),
        }
        for value in values:
            study.add_trial(
                optuna.trial.create_trial(
                    params={"optimizer.lr": 1.0, "model.layers.0.n_out": 8},
                    distributions=distributions,
                    value=value,
                    state=optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL,
                )
            )
        return study

    def test_no_completed_trial(self):
        from neural_networks.tune.report import write_report

        with tempfile.TemporaryDirectory() as tmp:
            summary = write_report(self.study([None]), tmp, out=lambda line: None)
            self.assertIsNone(summary["best_trial"])
            self.assertFalse((Path(tmp) / "best_config.yaml").exists())
            for name in ("history.png", "parallel_coordinates.png", "importances.png", "heatmap.png"):
                self.assertEqual((Path(tmp) / name).read_bytes()[:8], PNG, name)
            self.assertEqual([r["state"] for r in read_trials(Path(tmp))], ["fail"])

    def test_one_completed_trial(self):
        from neural_networks.tune.report import grid_means, write_report

        study = self.study([0.9, 0.7])
        with tempfile.TemporaryDirectory() as tmp:
            summary = write_report(study, tmp, out=lambda line: None)
            self.assertEqual((summary["best_trial"], summary["best_value"]), (0, 0.9))
            config = yaml.safe_load((Path(tmp) / "best_config.yaml").read_text())
            self.assertEqual((config["optimizer"]["lr"], config["model"]["layers"][0]["n_out"]), (1.0, 8))
            self.assertEqual((Path(tmp) / "importances.png").read_bytes()[:8], PNG)
        from neural_networks.tune.space import SearchSpace

        space = SearchSpace.from_dict(study.user_attrs["neural_networks"]["space"])
        rows, cols, means, counts = grid_means(study.trials, space)
        self.assertEqual((rows, cols), ([0.1, 1.0], [4, 8]))
        self.assertEqual(counts.tolist(), [[0, 0], [0, 2]])
        self.assertAlmostEqual(means[1, 1], 0.8)  # the mean of the cell's two trials


def _journal(study_dir: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(study_dir / JOURNAL_NAME)))


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<ver>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL server on a free localhost port, in a temporary folder. As root (CI),
    initdb and pg_ctl run as the ``postgres`` user, since the server refuses to run as root."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="tune-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
            self.user = "postgres"
        else:
            self.user = getpass.getuser()

    def run(self, *args):
        command = [*self.prefix, str(self.bindir / args[0]), *map(str, args[1:])]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.dir / "server.log").read_text() if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}\n{log}")

    def start(self) -> str:
        self.run("initdb", "-D", self.data, "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", self.data, "-l", self.dir / "server.log", "-o", options, "-w", "-t", "60", "start")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self):
        with contextlib.suppress(Exception):
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@requires_optuna
class TestPostgresStorage(unittest.TestCase):
    """Two ``tune`` commands (as on two machines: separate output folders) share one study."""

    @classmethod
    def _skip(cls, reason: str):
        # .ci/run installs PostgreSQL and sets this: there the test must run, not skip
        if os.environ.get("NEURAL_NETWORKS_REQUIRE_POSTGRES"):
            raise RuntimeError(f"NEURAL_NETWORKS_REQUIRE_POSTGRES is set but {reason}")
        raise unittest.SkipTest(reason)

    @classmethod
    def setUpClass(cls):
        bindir = _postgres_bin()
        if bindir is None:
            cls._skip("no PostgreSQL server binaries (initdb, pg_ctl); apt-get install postgresql")
        reason = missing("psycopg2")  # psycopg2-binary, in the tune extra
        if reason:
            cls._skip(reason)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                cls._skip("running as root and there is no postgres user to run the server")
        cls.server = PostgresServer(bindir)
        try:
            cls.url = cls.server.start()
        except Exception:
            cls.server.stop()
            raise
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def test_two_commands_share_the_study(self):
        lrs, sizes = [0.05, 0.5], [4, 8]
        space = write_space(
            self.dir / "grid.yaml",
            {
                "optimizer.lr": {"type": "categorical", "choices": lrs},
                "model.layers.0.n_out": {"type": "categorical", "choices": sizes},
            },
        )
        machines = [self.dir / "machine-a", self.dir / "machine-b"]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "neural_networks", "tune", str(IRIS), "--space", str(space), "--sampler", "grid"]
                + [
                    "--pruner",
                    "none",
                    "--storage",
                    self.url,
                    "--study",
                    "shared",
                    "--set",
                    "epochs=3",
                    "--out",
                    str(out),
                ],
                cwd=self.dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for out in machines
        ]
        results = [(p.communicate(timeout=240), p.returncode) for p in processes]
        for (stdout, stderr), code in results:
            self.assertEqual(code, 0, f"{stdout}\n{stderr}")

        study = optuna.load_study(study_name="shared", storage=_with_installed_driver(self.url))
        trials = study.trials
        self.assertEqual([t.number for t in trials], [0, 1, 2, 3])
        self.assertEqual({t.state for t in trials}, {optuna.trial.TrialState.COMPLETE})
        points = {(t.params["optimizer.lr"], t.params["model.layers.0.n_out"]) for t in trials}
        self.assertEqual(points, {(lr, n) for lr in lrs for n in sizes})
        # each trial's run directory is on the machine that ran it, and on that one only
        local = [set(trial_dirs(out / "shared")) for out in machines]
        self.assertEqual(local[0] & local[1], set())
        self.assertEqual(local[0] | local[1], {f"trial-{n:04d}" for n in range(4)})
        self.assertEqual(len({t.user_attrs["worker"] for t in trials}), len([d for d in local if d]))
        for out in machines:  # both reports cover the whole study
            self.assertEqual(len(read_trials(out / "shared")), 4)
            info = json.loads((out / "shared" / "study.yaml").read_text())
            self.assertTrue(info["storage"].startswith("postgresql://"))
        report = cli("tune-report", machines[0] / "shared", cwd=self.dir)
        self.assertIn("4 complete", report.stdout)


if __name__ == "__main__":
    unittest.main()
