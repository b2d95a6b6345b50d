"""Run directories: claimed atomically (one run per folder, even when runs start together),
locked while in use, with a status file; runs that fail leave a retry open, runs that cannot
start leave nothing behind, and unfinished runs say so."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import yaml

from neural_networks.experiments import rundir
from neural_networks.callbacks import Callback
from neural_networks.experiments import ConfigError, load_config
from neural_networks.experiments import RunInterrupted, run_experiment
from neural_networks.models import NeuralNetwork
from neural_networks.experiments import load_run
from neural_networks.experiments.rundir import RunDirectoryError, claim_new, newest_run, open_existing, read_status

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def iris_config(epochs=2, **changes) -> dict:
    config = load_config(ROOT / "configs" / "iris.yaml")
    config["name"] = "flowers"
    config["epochs"] = epochs
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            config[section][name] = value
        else:
            config[key] = value
    return config


def _claim_at(args) -> str:
    """A worker process: wait for the common start time, then claim (and keep) a directory."""
    parent, name, start = args
    time.sleep(max(0.0, start - time.time()))
    run = claim_new(parent, name)
    (run.path / "owner.txt").write_text(str(os.getpid()))  # what a run writes first
    time.sleep(0.05)
    run.release()
    return str(run.path)


class TestClaim(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_taken_name_gives_the_next_number(self):
        first = claim_new(self.dir / "runs", "a")  # the parent is created
        self.assertEqual(first.path, self.dir / "runs" / "a")
        (first.path / "config.yaml").write_text("x")
        second = claim_new(self.dir / "runs", "a")
        self.assertEqual(second.name, "a-2")
        first.release()
        second.release()
        (self.dir / "runs" / "a-3").write_text("a file, not a folder")
        (self.dir / "runs" / "a-4").mkdir()  # empty: free
        self.assertEqual(claim_new(self.dir / "runs", "a").name, "a-4")
        self.assertEqual(newest_run(self.dir / "runs", "a"), self.dir / "runs" / "a-4")
        self.assertIsNone(newest_run(self.dir / "runs", "b"))

    def test_a_claim_in_use_is_taken_even_while_empty(self):
        held = claim_new(self.dir, "a")  # nothing written yet but the lock
        self.assertEqual(claim_new(self.dir, "a").name, "a-2")
        with self.assertRaisesRegex(RunDirectoryError, "already holds a run"):
            claim_new(self.dir, "a", exact=True)
        with self.assertRaisesRegex(RunDirectoryError, "another process is training in it"):
            open_existing(held.path, "resume")
        held.release()
        open_existing(held.path, "resume").release()  # free once released

    def test_a_parent_that_is_a_file(self):
        (self.dir / "file").write_text("x")
        with self.assertRaisesRegex(RunDirectoryError, "file is not a folder"):
            claim_new(self.dir / "file", "a")

    def test_abandon_leaves_nothing(self):
        run = claim_new(self.dir, "a")
        run.abandon()
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_status_file(self):
        with claim_new(self.dir, "a") as run:
            run.write_status("running", epochs=3)
            status = read_status(run.path)
            self.assertEqual(
                (status["state"], status["run"], status["pid"], status["epochs"]), ("running", "a", os.getpid(), 3)
            )
            self.assertTrue(rundir.is_busy(run.path))
            run.write_status("failed", error="ValueError: boom")
        status = read_status(run.path)
        self.assertEqual((status["state"], status["error"], status["epochs"]), ("failed", "ValueError: boom", 3))
        self.assertIn("ended", status)
        self.assertFalse(rundir.is_busy(run.path))

    def test_processes_claiming_together_never_share_a_directory(self):
        context = multiprocessing.get_context("fork")
        for round_ in range(5):
            start = time.time() + 0.5
            with context.Pool(6) as pool:
                paths = pool.map(_claim_at, [(self.dir / str(round_), "run", start)] * 6)
            self.assertEqual(len(set(paths)), 6, paths)
            owners = {(Path(p) / "owner.txt").read_text() for p in paths}
            self.assertEqual(len(owners), 6)  # each folder holds exactly its claimant's file


class TestRunsFromPython(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_the_same_config_twice_gives_two_runs(self):
        first = run_experiment(iris_config(), self.dir, verbose=0)
        second = run_experiment(iris_config(), self.dir, verbose=0)
        self.assertEqual(Path(first["run_dir"]).name, "flowers")
        self.assertEqual(Path(second["run_dir"]).name, "flowers-2")
        self.assertEqual(read_status(self.dir / "flowers")["state"], "finished")
        self.assertEqual(load_config(self.dir / "flowers-2" / "config.yaml")["name"], "flowers")

    def test_a_run_that_cannot_start_leaves_nothing_behind(self):
        shapes = iris_config()
        shapes["model"]["layers"].insert(0, {"name": "conv2d", "n_out": 2, "kernel_shape": [3, 3]})
        for _ in range(2):  # and the same again reproduces the error
            with self.assertRaisesRegex(ValueError, "Conv2D"):
                run_experiment(shapes, self.dir, verbose=0)
        huge = iris_config()
        huge["model"]["layers"][0]["n_out"] = 10**12
        with self.assertRaisesRegex(ConfigError, r"model\.layers\.0 .*out of memory"):
            run_experiment(huge, self.dir, verbose=0)
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_the_memory_estimate_refuses_what_cannot_fit(self):
        with mock.patch("neural_networks.experiments.preflight.available_memory", return_value=10_000):
            with self.assertRaisesRegex(ConfigError, r"needs about .* model\.layers\.0's, \(32,\).*batch_size"):
                run_experiment(iris_config(), self.dir, verbose=0)
            with mock.patch.dict(os.environ, {"NEURAL_NETWORKS_MEMORY_CHECK": "0"}):
                run_experiment(iris_config(epochs=1), self.dir, verbose=0)
        # a batch larger than the training split counts as the split (90 flowers, not 10**9)
        run_experiment(iris_config(epochs=1, **{"data.batch_size": 10**9}), self.dir, verbose=0)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["flowers", "flowers-2"])

    def test_a_diverging_run_fails_with_its_epoch_and_step_and_a_retry_is_open(self):
        config = iris_config(epochs=3, **{"optimizer.lr": 1e30})
        config["optimizer"].pop("clip_norm")
        for name in ("flowers", "flowers-2"):
            with self.assertRaisesRegex(
                ValueError, r"training diverged at epoch \d+, step \d+ of 4: .*lower the learning rate"
            ):
                run_experiment(config, self.dir, verbose=0)
            status = read_status(self.dir / name)
            self.assertEqual(status["state"], "failed")
            self.assertIn("TrainingDiverged: training diverged", status["error"])
        with self.assertRaisesRegex(ConfigError, "cannot resume .*flowers-2: it failed"):
            run_experiment(config, self.dir, verbose=0, resume=True)
        with self.assertRaisesRegex(ConfigError, r"no checkpoint last\.npz \(it failed before its first .*diverged"):
            load_run(self.dir / "flowers", "last")

    def test_resume_refuses_fewer_epochs_than_trained(self):
        run_experiment(iris_config(epochs=3), self.dir, verbose=0)
        written = (self.dir / "flowers" / "config.yaml").read_text()
        with self.assertRaisesRegex(ConfigError, "has trained 3 epochs already; give --epochs 3 or more"):
            run_experiment(iris_config(epochs=2), self.dir, verbose=0, resume=True)
        self.assertEqual((self.dir / "flowers" / "config.yaml").read_text(), written)
        self.assertEqual(read_status(self.dir / "flowers")["state"], "finished")
        figures = run_experiment(iris_config(epochs=4), self.dir, verbose=0, resume=self.dir / "flowers")
        self.assertEqual(figures["epochs"], 4)

    def test_unfinished_runs_say_so(self):
        class Interrupt(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt

        with self.assertRaisesRegex(RunInterrupted, r"epoch 1 .*--resume .*flowers"):
            run_experiment(iris_config(epochs=4), self.dir, verbose=0, callbacks=[Interrupt()])
        run = self.dir / "flowers"
        self.assertEqual(read_status(run)["state"], "interrupted")
        env = {**os.environ, "NEURAL_NETWORKS_DATA": str(self.dir / "data")}
        for args in (
            ("evaluate", run),
            ("predict", run, "--split", "test", "--output", self.dir / "p.csv"),
            ("evaluate", run, "--checkpoint", "best"),
        ):
            result = run_cli(*args, cwd=self.dir, env=env)
            self.assertIn(f"note: {run} is unfinished: it was interrupted;", result.stderr)
            self.assertRegex(result.stderr, r"checkpoint is from epoch 1 of 4 \(continue it with train --resume")
        report = run_cli("report", run, cwd=self.dir, env=env).stdout
        self.assertIn("**Unfinished run.**", report)
        self.assertIn("epoch 1 of 4", report)
        run_experiment(iris_config(epochs=4), self.dir, verbose=0, resume=True)
        result = run_cli("evaluate", run, cwd=self.dir, env=env)
        self.assertNotIn("note:", result.stderr)

    def test_training_on_something_that_is_not_a_data_set(self):
        model = NeuralNetwork(layer_args=[{"name": "fully_connected", "n_out": 3, "activation": "softmax"}])
        with self.assertRaisesRegex(TypeError, r"expects a data set with a \.train loader .* got ndarray"):
            model.train(np.zeros((4, 4)), 1)

    def test_the_demo_then_the_readme_commands(self):
        from neural_networks.examples import iris

        with mock.patch("sys.stdout"):
            iris.main(["--epochs", "2", "--out", str(self.dir / "iris-sweep")])
            iris.main(["--epochs", "2", "--out", str(self.dir / "iris-sweep")])
        self.assertTrue((self.dir / "iris-sweep" / "sweep.md").is_file())
        self.assertTrue((self.dir / "iris-sweep-2" / "sweep.md").is_file())  # the first one's kept
        config = load_config(ROOT / "configs" / "iris.yaml")
        config["epochs"] = 2
        figures = run_experiment(config, self.dir, verbose=0)
        self.assertEqual(Path(figures["run_dir"]), self.dir / "iris")


# A train command that waits for a common start time after its imports, so that the runs reach
# the claim together.
_AT = "import sys, time; from neural_networks.cli import main; time.sleep(max(0, float(sys.argv[1]) - time.time())); raise SystemExit(main(sys.argv[2:]))"


class TestConcurrentTrainCommands(unittest.TestCase):
    def test_runs_started_together_each_get_a_consistent_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            config_path = tmp / "flowers.yaml"
            config_path.write_text(yaml.safe_dump(iris_config(epochs=2)))
            seeds = (11, 12, 13)
            for round_ in range(3):
                out = tmp / f"round{round_}"
                start = time.time() + 4.0
                processes = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            _AT,
                            str(start),
                            "train",
                            str(config_path),
                            "--out",
                            str(out),
                            "--seed",
                            str(seed),
                            "--quiet",
                        ],
                        cwd=tmp,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for seed in seeds
                ]
                for process in processes:
                    _, stderr = process.communicate(timeout=120)
                    self.assertEqual(process.returncode, 0, stderr)
                self.assertEqual(sorted(p.name for p in out.iterdir()), ["flowers", "flowers-2", "flowers-3"])
                found = set()
                for run in out.iterdir():
                    seed = load_config(run / "config.yaml")["seed"]
                    found.add(seed)
                    status = read_status(run)
                    self.assertEqual(status["state"], "finished")
                    self.assertIn(f"--seed {seed}", status["command"])
                    for checkpoint in ("last.npz", "best.npz"):
                        self.assertEqual(NeuralNetwork.load(run / checkpoint).seed, seed, (run, checkpoint))
                    self.assertEqual(json.loads((run / "metrics.json").read_text())["epochs"], 2)
                    self.assertEqual(len((run / "metrics.csv").read_text().splitlines()), 3)
                self.assertEqual(found, set(seeds))


class TestUnixManners(unittest.TestCase):
    def test_output_piped_into_head_ends_quietly(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_experiment(iris_config(epochs=1), tmp, verbose=0)
            commands = (
                f"{sys.executable} -m neural_networks report {tmp}/flowers | head -n 1",
                f"{sys.executable} generate_submission.py --list | head -n 1",
                f"{sys.executable} generate_submission.py | head -n 1",
            )
            for command in commands:
                result = subprocess.run(
                    ["bash", "-c", command + "; exit ${PIPESTATUS[0]}"], cwd=ROOT, capture_output=True, text=True
                )
                self.assertIn(result.returncode, (0, 141), command)
                self.assertEqual(result.stderr, "", command)
                self.assertEqual(len(result.stdout.splitlines()), 1, command)

    def test_help_texts_describe_every_argument(self):
        for command in ("evaluate", "predict", "export"):
            text = run_cli(command, "--help", cwd=ROOT).stdout
            self.assertIn("the run directory that train wrote", text)
            self.assertIn("(default: last)", text)
        self.assertIn("(default: test)", run_cli("evaluate", "--help", cwd=ROOT).stdout)


if __name__ == "__main__":
    unittest.main()


class TestOptionErrors(unittest.TestCase):
    def test_an_invalid_option_value_is_named_as_given(self):
        result = run_cli("train", ROOT / "configs" / "iris.yaml", "--epochs", "-1", cwd=ROOT, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr, r"^error: .*iris\.yaml with epochs=-1(\.0)?: epochs must be")
        self.assertNotIn("--set", result.stderr)

    def test_a_diverging_run_is_one_error_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            args = ("train", ROOT / "configs" / "iris.yaml", "--out", tmp, "--quiet", "--epochs", "2")
            result = run_cli(*args, "--set", "optimizer.lr=1e30", cwd=ROOT, check=False)
            self.assertEqual(result.returncode, 2)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)  # no overflow warnings either
            self.assertRegex(result.stderr, r"^error: training diverged at epoch 1, step \d of 4: .*clip_norm")
            self.assertEqual(read_status(Path(tmp) / "iris")["state"], "failed")
