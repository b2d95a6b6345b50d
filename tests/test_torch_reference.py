"""benchmarks/torch_reference.py: the PyTorch side of a whole run, on a tiny image folder made here."""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import yaml

from .test_cli import make_tree, tiny_config

try:
    import torch
except ImportError:  # the parity extras are optional
    torch = None

ROOT = Path(__file__).resolve().parents[1]


@unittest.skipIf(torch is None, 'needs torch: pip install -e ".[torch]"')
class TestTorchReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = Path(cls._tmp.name)
        make_tree(cls.tmp / "data", {"train": 20, "test": 6})
        cls.config = tiny_config(cls.tmp / "data")
        cls.config["evaluation"] = {"tta": "flip"}
        cls.config_path = cls.tmp / "tiny.yaml"
        cls.config_path.write_text(yaml.safe_dump(cls.config))
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import torch_reference

        cls.reference = torch_reference

    @classmethod
    def tearDownClass(cls):
        sys.path.remove(str(ROOT / "benchmarks"))
        cls._tmp.cleanup()

    def test_test_time_augmented_accuracy_is_ours(self):
        """The torch side's accuracy with flip TTA equals ``evaluate(tta="flip")`` of the same weights."""
        from neural_networks.experiments import build_dataset, build_model
        from neural_networks.training import fit

        from .torch_oracles import copy_weights, torch_network

        dataset = build_dataset(self.config)
        model = build_model(self.config)
        model.size_output_layer(dataset)
        fit(model, dataset, 1, verbose=0)
        net = torch_network(model, input_shape=dataset.input_shape)
        copy_weights(model, net)
        net.eval()
        for tta in ("none", "flip"):
            with self.subTest(tta=tta):
                ours = model.evaluate(dataset.test, tta=tta)["accuracy"]
                self.assertEqual(self.reference._torch_accuracy(torch, net, dataset.test, tta), ours)
        # the views really differ: a flip-only prediction is another function of the weights
        X = np.concatenate([X for X, _ in dataset.test])
        flipped = torch.from_numpy(np.ascontiguousarray(X[:, :, ::-1])).permute(0, 3, 1, 2).contiguous()
        plain = torch.from_numpy(X).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            self.assertFalse(torch.allclose(net(plain), net(flipped)))

    def test_a_fractional_run_on_both_sides(self):
        """``--epochs 2.5 --test``: three epochs timed on each side, the last one partial, and
        each side's training time and test accuracy with and without TTA."""
        out = self.tmp / "figures.json"
        args = [sys.executable, str(ROOT / "benchmarks" / "torch_reference.py"), str(self.config_path)]
        args += ["--epochs", "2.5", "--test", "--threads", "1", "--json", str(out)]
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        figures = json.loads(out.read_text())
        self.assertEqual(figures["epochs"], 2.5)
        self.assertEqual(len(figures["ours_seconds"]), 3)
        self.assertEqual(len(figures["torch_seconds"]), 3)
        theirs, ours = figures["torch_metrics"], figures["ours_metrics"]
        self.assertAlmostEqual(theirs["train_seconds"], sum(figures["torch_seconds"]), places=1)
        for side in (ours, theirs):
            for key in ("test_accuracy", "test_accuracy_no_tta"):
                self.assertGreaterEqual(side[key], 0.9, (key, side))  # the three shapes are easy to tell apart
        self.assertIn("test (TTA)", result.stdout)

    def test_a_whole_epoch_is_counted_in_flops(self):
        """``epoch_gflop``: each conv and dense product (3 per training image, 1 per validation
        image) against the closed form of the tiny network, and ``--epochs 1`` reports each side's
        GFLOP/s as a fraction of the measured matmul peak."""
        from neural_networks.experiments import build_dataset

        dataset = build_dataset(self.config)
        h, w, c = dataset.input_shape
        conv = h * w * 3 * 3 * c * 4  # 'same' 3x3, 4 filters
        dense = (h // 2) * (w // 2) * 4 * 3  # after the 2x2 pool, 3 classes
        per_train, per_validate = 3 * 2 * (conv + dense), 2 * (conv + dense)
        expected = dataset.train.n_examples * per_train + dataset.validate.n_examples * per_validate
        self.assertEqual(dataset.validate.n_examples, 6)
        self.assertAlmostEqual(self.reference.epoch_gflop(self.config), expected / 1e9, places=12)

        out = self.tmp / "epoch.json"
        args = [sys.executable, str(ROOT / "benchmarks" / "torch_reference.py"), str(self.config_path)]
        args += ["--epochs", "1", "--only", "torch", "--threads", "1", "--json", str(out)]
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        figures = json.loads(out.read_text())
        self.assertAlmostEqual(figures["epoch_gflop"], expected / 1e9, places=12)
        self.assertAlmostEqual(figures["torch_gflops"], expected / 1e9 / figures["torch_seconds"][0], places=6)
        self.assertGreater(figures["matmul_peak_gflops"], 0)
        self.assertNotIn("ours_gflops", figures)
        self.assertIn("of the peak", result.stdout)


if __name__ == "__main__":
    unittest.main()
