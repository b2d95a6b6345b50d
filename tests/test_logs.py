"""Logger: experiment directory with metrics, checkpoints and plots, written atomically."""

import json
import tempfile
import unittest
from pathlib import Path

from neural_networks.datasets import initialize_dataset
from neural_networks.layers import FullyConnected
from neural_networks.logs import Logger, read_metrics_csv
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD


class TestLogger(unittest.TestCase):
    def test_run_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            logger = Logger(model_args={"name": "iris_test", "lr": 0.1}, data_args={"name": "iris"}, save=True,
                            plot=True, save_dir=tmp)
            model = NeuralNetwork(layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
                                  optimizer=SGD(lr=0.1, momentum=0.9), logger=logger, seed=0)
            data = initialize_dataset("iris", batch_size=30)
            model.train(data, epochs=3, verbose=0)
            run = Path(tmp) / "iris_test"
            files = sorted(p.name for p in run.iterdir())
            self.assertEqual(files, ["accuracy.png", "best.npz", "config.json", "error.png", "last.npz", "loss.png",
                                     "loss_iterations.png", "metrics.csv", "parameters.csv", "parameters.png"])
            rows = read_metrics_csv(run / "metrics.csv")
            self.assertEqual([r["epoch"] for r in rows], [1.0, 2.0, 3.0])
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
                self.assertIsNotNone(rows[-1][key])
            self.assertEqual(json.loads((run / "config.json").read_text())["model_args"]["lr"], 0.1)
            self.assertEqual(NeuralNetwork.load(run / "last.npz").extra["epoch"], 3)
            self.assertEqual((run / "loss.png").read_bytes()[:4], b"\x89PNG")

    def test_save_false_writes_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            logger = Logger(model_args={"name": "x"}, save=False, save_dir=tmp)
            model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), logger=logger)
            model.train(initialize_dataset("iris", batch_size=50), epochs=1, verbose=0)
            self.assertEqual(list(Path(tmp).iterdir()), [])
            self.assertEqual(len(logger.rows), 1)


if __name__ == "__main__":
    unittest.main()
