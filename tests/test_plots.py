"""neural_networks.plots: every plot writes a PNG; the confusion matrix counts correctly; what a newcomer
reads off the figures (whole-number epochs, both curves visible, labelled first-layer rows)."""

import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from neural_networks import plots
from neural_networks.datasets import initialize_dataset

IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def drawn_figure(test, plot, *args, **kwargs):
    """The figure ``plot(*args, **kwargs)`` draws, kept open (closed at the test's end) instead of written."""
    import matplotlib.pyplot as plt

    figures = []
    with mock.patch.object(plots, "save_figure", side_effect=lambda fig, path: figures.append(fig) or Path(path)):
        plot(*args, **kwargs)
    (fig,) = figures
    test.addCleanup(plt.close, fig)
    fig.canvas.draw()
    return fig


def visible_ticks(ax, axis="x"):
    """The tick positions inside the axis's view limits (matplotlib computes a few outside it)."""
    ticks, (lo, hi) = (ax.get_xticks(), ax.get_xlim()) if axis == "x" else (ax.get_yticks(), ax.get_ylim())
    lo, hi = min(lo, hi), max(lo, hi)
    return [float(t) for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]


def curves(n_epochs):
    rng = np.random.default_rng(0)
    return {"loss": list(rng.random(n_epochs)), "val_loss": list(rng.random(n_epochs))}


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


class TestWhatANewcomerSees(unittest.TestCase):
    def assert_whole_number_ticks(self, ax):
        ticks = visible_ticks(ax)
        self.assertGreaterEqual(len(ticks), 1, ticks)  # one epoch: the single tick 1
        self.assertTrue(all(t.is_integer() for t in ticks), ticks)

    def test_epoch_axes_have_whole_number_ticks(self):
        for n_epochs in (1, 2, 3, 7):
            fig = drawn_figure(self, plots.plot_curves, curves(n_epochs), "loss", "loss.png")
            self.assert_whole_number_ticks(fig.axes[0])
        ranges = [{"epoch": e, "parameter": p, "min": -e, "max": e} for e in (1, 2, 3) for p in ("W0", "b0", "W1")]
        fig = drawn_figure(self, plots.plot_parameter_ranges, ranges, "parameters.png")
        for ax in fig.axes[:3]:  # the fourth panel is empty, switched off
            self.assert_whole_number_ticks(ax)

    def test_iteration_axis_has_whole_number_ticks(self):
        for n in (1, 4, 12):  # a run of 0.1 epoch, 1 epoch, 3 epochs of Iris in batches of 25
            fig = drawn_figure(self, plots.plot_iteration_loss, np.linspace(1, 0.5, n), "it.png")
            self.assert_whole_number_ticks(fig.axes[0])

    def test_few_points_get_markers(self):
        # With a handful of epochs each point is a measurement worth seeing; a single one is only a marker.
        for n_epochs in (1, 3):
            train, val = drawn_figure(self, plots.plot_curves, curves(n_epochs), "loss", "loss.png").axes[0].lines
            self.assertEqual((train.get_marker(), val.get_marker()), ("o", "s"))
        (line,) = drawn_figure(self, plots.plot_iteration_loss, [0.9], "it.png").axes[0].lines
        self.assertNotIn(line.get_marker(), ("None", "", None))

    def test_long_runs_show_both_curves(self):
        # 100 epochs of markers turn the validation curve into a band that covers the training curve.
        train, val = drawn_figure(self, plots.plot_curves, curves(100), "loss", "loss.png").axes[0].lines
        self.assertEqual((train.get_marker(), val.get_marker()), ("None", "None"))
        self.assertGreater(train.get_zorder(), val.get_zorder())  # training drawn over validation
        self.assertEqual([t.get_text() for t in train.axes.get_legend().get_texts()], ["train loss", "validation loss"])
        ranges = [{"epoch": e, "parameter": "W0", "min": -e, "max": e} for e in range(1, 101)]
        (ax,) = drawn_figure(self, plots.plot_parameter_ranges, ranges, "parameters.png").axes
        self.assertEqual({line.get_marker() for line in ax.lines}, {"None"})

    def test_first_layer_rows_are_labelled_by_feature(self):
        W = np.random.default_rng(0).standard_normal((4, 32))
        fig = drawn_figure(self, plots.plot_first_layer, W, "first.png", feature_names=IRIS_FEATURES)
        ax = fig.axes[0]
        self.assertEqual(list(ax.get_yticks()), [0, 1, 2, 3])
        self.assertEqual([t.get_text() for t in ax.get_yticklabels()], IRIS_FEATURES)
        self.assertTrue(all(t.is_integer() for t in visible_ticks(ax)))  # units are whole numbers too
        low, high = ax.images[0].get_clim()
        self.assertAlmostEqual(low, -high)  # white is zero on the diverging colour map
        with self.assertRaisesRegex(ValueError, "4 rows"):
            plots.plot_first_layer(W, "first.png", feature_names=IRIS_FEATURES[:3])

    def test_first_layer_rows_without_names_are_numbered(self):
        fig = drawn_figure(self, plots.plot_first_layer, np.ones((4, 6)), "first.png")
        self.assertEqual(visible_ticks(fig.axes[0], "y"), [0.0, 1.0, 2.0, 3.0])

    def test_iris_names_its_features(self):
        self.assertEqual(initialize_dataset("iris").feature_names, IRIS_FEATURES)


if __name__ == "__main__":
    unittest.main()
