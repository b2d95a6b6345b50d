"""Logger: experiment directory with metrics, checkpoints and plots, written atomically."""

import csv
import json
import tempfile
import unittest
from pathlib import Path

from neural_networks.datasets import initialize_dataset
from neural_networks.layers import FullyConnected
from neural_networks.logs import Logger, read_json, read_metrics_csv, read_parameters_csv
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD


class TestLogger(unittest.TestCase):
    def test_run_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            logger = Logger(
                model_args={"name": "iris_test", "lr": 0.1},
                data_args={"name": "iris"},
                save=True,
                plot=True,
                save_dir=tmp,
            )
            model = NeuralNetwork(
                layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
                optimizer=SGD(lr=0.1, momentum=0.9),
                logger=logger,
                seed=0,
            )
            data = initialize_dataset("iris", batch_size=30)
            model.train(data, epochs=3, verbose=0)
            run = Path(tmp) / "iris_test"
            files = sorted(p.name for p in run.iterdir())
            self.assertEqual(
                files,
                [
                    "accuracy.png",
                    "best.npz",
                    "config.json",
                    "error.png",
                    "last.npz",
                    "loss.png",
                    "loss_iterations.png",
                    "metrics.csv",
                    "parameters.csv",
                    "parameters.png",
                ],
            )
            rows = read_metrics_csv(run / "metrics.csv")
            self.assertEqual([r["epoch"] for r in rows], [1.0, 2.0, 3.0])
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
                self.assertIsNotNone(rows[-1][key])
            self.assertEqual(json.loads((run / "config.json").read_text())["model_args"]["lr"], 0.1)
            self.assertEqual(NeuralNetwork.load(run / "last.npz").extra["epoch"], 3)
            self.assertEqual((run / "loss.png").read_bytes()[:4], b"\x89PNG")

    def test_course_arguments_attrdicts_and_parameter_ranges(self):
        from neural_networks.utils import AttrDict

        layer_args = [
            AttrDict(name="fully_connected", activation="relu", n_out=8, kernel_shape=(1, 1)),
            AttrDict(name="fully_connected", activation="softmax", n_out=None),
        ]
        model_args = AttrDict(
            name="feed_forward",
            loss="cross_entropy",
            layer_args=layer_args,
            optimizer_args=AttrDict(name="SGD", lr=0.1),
            seed=0,
        )
        data_args = AttrDict(name="iris", batch_size=30)
        with tempfile.TemporaryDirectory() as tmp:
            logger = Logger(
                model_name="ffnn_lr0.1",
                model_args=model_args,
                data_args=data_args,
                save=True,
                plot=True,
                save_dir=tmp + "/",
            )
            self.assertEqual(logger.save_dir, str(Path(tmp) / "ffnn_lr0.1") + "/")
            self.assertIs(logger.model_args, model_args)
            saved = json.loads((Path(tmp) / "ffnn_lr0.1" / "config.json").read_text())
            self.assertEqual(AttrDict(saved["model_args"])["optimizer_args"], {"name": "SGD", "lr": 0.1})
            self.assertEqual(saved["model_args"]["layer_args"][0]["kernel_shape"], [1, 1])
            self.assertEqual(saved["data_args"], dict(data_args))
            model = NeuralNetwork(
                layers=[FullyConnected(8, "relu"), FullyConnected(None, "softmax")],
                optimizer=SGD(lr=0.1, momentum=0.9),
                logger=logger,
                seed=0,
            )
            model.train(initialize_dataset("iris", batch_size=30), epochs=2, verbose=0)
            run = Path(tmp) / "ffnn_lr0.1"
            with open(run / "parameters.csv") as handle:
                rows = list(csv.DictReader(handle))
            self.assertEqual(
                [(r["epoch"], r["parameter"]) for r in rows],
                [(e, p) for e in ("1", "2") for p in ("W0", "b0", "W1", "b1")],
            )
            last = {r["parameter"]: (float(r["min"]), float(r["max"])) for r in rows if r["epoch"] == "2"}
            W1 = model.layers[1].parameters["W"]
            self.assertEqual(last["W1"], (float(W1.min()), float(W1.max())))
            for plot in ("error.png", "parameters.png"):
                self.assertEqual((run / plot).read_bytes()[:4], b"\x89PNG", plot)
        self.assertEqual(Logger(name="x").name, "x")
        with self.assertRaisesRegex(ValueError, "disagree"):
            Logger(model_name="a", name="b")

    def test_save_false_writes_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            logger = Logger(model_args={"name": "x"}, save=False, save_dir=tmp)
            model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1), logger=logger)
            model.train(initialize_dataset("iris", batch_size=50), epochs=1, verbose=0)
            self.assertEqual(list(Path(tmp).iterdir()), [])
            self.assertEqual(len(logger.rows), 1)

    def test_damaged_tables_and_json_name_the_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.csv"
            for reader, content, needle in (
                (read_metrics_csv, "epoch,loss\n1,0.5\n2,oops\n", "line 3: could not convert"),
                (read_metrics_csv, "epoch,loss\n1,0.5,7\n", "line 2: 2 columns expected"),
                (read_metrics_csv, "epoch,loss\n1\n", "line 2: 2 columns expected"),
                (read_metrics_csv, "loss\n0.5\n", "no column epoch"),
                (read_parameters_csv, "epoch,parameter,min,max\n1.5,W0,0,1\n", "line 2: invalid literal"),
                (read_parameters_csv, "epoch,parameter\n", "no column min, max"),
            ):
                with self.subTest(content=content):
                    path.write_text(content)
                    with self.assertRaisesRegex(ValueError, f"^{path}: not a table of this run .*{needle}"):
                        reader(path)
            path.write_text("epoch,loss,val_loss\n1,0.5,\n")
            self.assertEqual(read_metrics_csv(path), [{"epoch": 1.0, "loss": 0.5, "val_loss": None}])
            path.write_bytes(b"\xff\xfe")
            with self.assertRaisesRegex(ValueError, f"^{path}: not a table"):
                read_metrics_csv(path)
            for content, needle in (("", "not valid JSON"), ("[1]", "expected a JSON object, got list")):
                path.write_text(content)
                with self.assertRaisesRegex(ValueError, f"^{path}: {needle}"):
                    read_json(path)
            path.write_text('{"a": 1}')
            self.assertEqual(read_json(path), {"a": 1})


if __name__ == "__main__":
    unittest.main()
