"""neural_networks.plots: every plot writes a PNG; the confusion matrix counts correctly."""

import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks import plots


class TestPlots(unittest.TestCase):
    def test_confusion_matrix_counts(self):
        counts = plots.confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
        np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])

    def test_every_plot_writes_a_png(self):
        rng = np.random.default_rng(0)
        history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}
        ranges = [{"epoch": e, "parameter": p, "min": -e, "max": e} for e in (1, 2) for p in ("W0", "b0", "W1")]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            written = [
                plots.plot_curves(history, "loss", out / "loss.png"),
                plots.plot_iteration_loss(rng.random(40), out / "iterations.png", smooth=5),
                plots.plot_parameter_ranges(ranges, out / "ranges.png"),
                plots.plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"], out / "cm.png"),
                plots.plot_first_layer(rng.standard_normal((3, 3, 3, 8)), out / "conv.png"),
                plots.plot_first_layer(rng.standard_normal((784, 6)), out / "dense.png", input_shape=(28, 28)),
                plots.plot_first_layer(rng.standard_normal((4, 6)), out / "matrix.png"),
            ]
            for path in written:
                self.assertEqual(Path(path).read_bytes()[:4], b"\x89PNG", path)


if __name__ == "__main__":
    unittest.main()
