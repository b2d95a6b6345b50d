"""The course's starter flows run unchanged: scripts in its style, and the root scripts that
follow it (train_ffnn.py, train_conv.py), each in a temporary folder as a student would run them."""

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

from neural_networks.datasets import DataNotFoundError, sources

from .test_datasets import make_idx_set

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = (
    "config.json",
    "metrics.csv",
    "parameters.csv",
    "loss.png",
    "accuracy.png",
    "error.png",
    "parameters.png",
    "loss_iterations.png",
    "last.npz",
    "best.npz",
)

# A student's script in the starter style: AttrDict arguments everywhere, np.random.seed instead
# of a model seed, the output layer's n_out left to the data set, Logger(model_name=...).
STARTER_SCRIPT = textwrap.dedent("""
    from neural_networks.utils import AttrDict

    fc1 = AttrDict({"name": "fully_connected", "activation": "relu", "weight_init": "xavier_uniform", "n_out": 16})
    fc_out = AttrDict({"name": "fully_connected", "activation": "softmax", "weight_init": "xavier_uniform",
                       "n_out": None})
    optimizer_args = AttrDict({"name": "SGD", "lr": 0.05, "lr_scheduler": "constant", "lr_decay": 0.99,
                               "stage_length": 1000, "staircase": True, "clip_norm": 1.0, "momentum": 0.9})
    model_args = AttrDict({"name": "feed_forward", "loss": "cross_entropy", "layer_args": [fc1, fc_out],
                           "optimizer_args": optimizer_args, "seed": 0})
    data_args = AttrDict({"name": "iris", "batch_size": 25})
    log_args = AttrDict({"save": True, "plot": True, "save_dir": "experiments/"})

    import numpy as np
    np.random.seed(model_args.seed)

    model_name = f"iris_lr{optimizer_args.lr}_h{fc1.n_out}"

    from neural_networks.models import initialize_model
    from neural_networks.datasets import initialize_dataset
    from neural_networks.logs import Logger

    logger = Logger(model_name=model_name, model_args=model_args, data_args=data_args, save=log_args.save,
                    plot=log_args.plot, save_dir=log_args.save_dir)
    model = initialize_model(name=model_args.name, loss=model_args.loss, layer_args=model_args.layer_args,
                             optimizer_args=model_args.optimizer_args, logger=logger)
    dataset = initialize_dataset(name=data_args.name, batch_size=data_args.batch_size)
    print("samples", dataset.train.n_samples, dataset.validate.n_samples, dataset.test.n_samples,
          dataset.train.data_.shape[1], dataset.out_dim)
    model.train(dataset, epochs=60)
    results = model.test(dataset)
    print("test accuracy", results["accuracy"], "saved to", logger.save_dir)
""")


def run(args, cwd, env=None, timeout=300):
    result = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


class TestStarterFlows(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assert_run_folder(self, folder: Path):
        for name in RUN_FILES:
            self.assertTrue((folder / name).is_file(), f"{folder.name}/{name} missing")
        return json.loads((folder / "config.json").read_text())

    def test_a_script_in_the_starter_style(self):
        (self.dir / "my_train.py").write_text(STARTER_SCRIPT)
        out = run(["my_train.py"], cwd=self.dir).stdout
        self.assertIn("samples 90 30 30 4 3", out)
        accuracy = float(re.search(r"test accuracy ([\d.]+)", out).group(1))
        self.assertGreaterEqual(accuracy, 0.9)
        saved = self.assert_run_folder(self.dir / "experiments" / "iris_lr0.05_h16")
        self.assertEqual(saved["model_args"]["layer_args"][1]["n_out"], None)
        self.assertEqual(saved["model_args"]["optimizer_args"]["momentum"], 0.9)
        # the same seed gives the same run
        again = run(["my_train.py"], cwd=self.dir).stdout
        self.assertEqual(re.search(r"test accuracy ([\d.]+)", again).group(1), str(accuracy))

    def test_train_ffnn(self):
        out = run([ROOT / "train_ffnn.py", "--epochs", "60", "--hidden", "16"], cwd=self.dir).stdout
        accuracy = float(re.search(r"test accuracy ([\d.]+)", out).group(1))
        self.assertGreaterEqual(accuracy, 0.9)
        self.assert_run_folder(self.dir / "experiments" / "ffnn_iris_lr0.05_h16")

    def test_train_conv_on_mnist_files(self):
        data = self.dir / "data"
        make_idx_set(data / "mnist", n_train=120, n_test=30)
        out = run(
            [ROOT / "train_conv.py", "--epochs", "2", "--validation-size", "20", "--batch-size", "20"],
            cwd=self.dir,
            env={"NEURAL_NETWORKS_DATA": str(data)},
        ).stdout
        self.assertIn("on mnist (100 training images)", out)
        self.assertRegex(out, r"test accuracy [\d.]+")
        saved = self.assert_run_folder(self.dir / "experiments" / "lenet_mnist_lr0.05_b20")
        self.assertEqual([layer["name"] for layer in saved["model_args"]["layer_args"]][:2], ["conv2d", "pool2d"])

    def test_train_conv_without_mnist_ends_in_one_short_message(self):
        # MNIST is in none of the places searched, and the download is refused at once: every
        # proxy is a closed port on this machine, so no test reaches the network
        data = self.dir / "empty"
        data.mkdir()
        closed = "http://127.0.0.1:9"
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "neural_networks_debug")}
        env.update({sources.DATA_ENV: str(data), "http_proxy": closed, "https_proxy": closed})
        result = subprocess.run(
            [sys.executable, ROOT / "train_conv.py", "--epochs", "1"],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        stderr = result.stderr
        self.assertNotIn("During handling", stderr)
        self.assertNotIn("direct cause", stderr)
        lines = stderr.strip().splitlines()
        self.assertLessEqual(len(lines), 15, stderr)
        self.assertEqual(stderr.count("Traceback"), 1, stderr)
        # the message ends stderr: the missing file, the places searched, how to provide it
        start = next(i for i, line in enumerate(lines) if line.startswith(DataNotFoundError.__module__))
        message = "\n".join(lines[start:])
        for needle in (
            "MNIST file 'train-images-idx3-ubyte.gz' not found",
            f"searched: {data / 'mnist'}",
            "could not download",
            "path=",
            f"${sources.DATA_ENV}/mnist",
            "run with network access",
        ):
            self.assertIn(needle, message)
        self.assertTrue(lines[-1].lstrip().startswith("3. run with network access"), lines[-1])


if __name__ == "__main__":
    unittest.main()
