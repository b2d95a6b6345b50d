"""Test-time augmentation views (neural_networks.tta) and their use by NeuralNetwork.predict."""

import unittest

import numpy as np

from neural_networks.layers import Conv2D, Flatten, FullyConnected
from neural_networks.models import NeuralNetwork
from neural_networks.tta import TTA_MODES, check_tta, tta_views, translate


def reflect_index(i: int, n: int) -> int:
    """numpy's 'reflect' padding (edge not repeated) of index ``i`` into ``range(n)``."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


class TestTranslate(unittest.TestCase):
    def test_matches_a_pixel_loop(self):
        X = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
        for dy, dx in ((1, 1), (-1, -1), (2, -1), (0, 3)):
            out = translate(X, dy, dx)
            self.assertEqual((out.shape, out.dtype), (X.shape, X.dtype))
            self.assertTrue(out.flags["C_CONTIGUOUS"])
            for r in range(5):
                for c in range(6):
                    np.testing.assert_array_equal(
                        out[:, r, c], X[:, reflect_index(r - dy, 5), reflect_index(c - dx, 6)]
                    )

    def test_shift_larger_than_the_image(self):
        with self.assertRaisesRegex(ValueError, "cannot translate 3x3 images by"):
            translate(np.zeros((1, 3, 3, 1)), 3, 0)


class TestViews(unittest.TestCase):
    def test_weights_and_views(self):
        X = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
        for mode, count in (("none", 1), ("flip", 2), ("flip_translate", 6)):
            views = tta_views(X, mode)
            self.assertEqual(len(views), count, mode)
            self.assertAlmostEqual(sum(w for w, _ in views), 1.0)
            for _, view in views:
                self.assertEqual(view.shape, X.shape)
        views = tta_views(X, "flip_translate")
        np.testing.assert_array_equal(views[1][1], X[:, :, ::-1])
        np.testing.assert_array_equal(views[2][1], translate(X, 1, 1))
        np.testing.assert_array_equal(views[5][1], translate(X, -1, -1)[:, :, ::-1])

    def test_weights_are_the_documented_closed_form(self):
        # the module's docstring: flip weighs the image and its mirror 1/2 each; flip_translate
        # gives those two 1/2 in all (1/4 each) and the other 1/2 to the four shifted views (1/8
        # each), in the order image, mirror, (down-right, its mirror), (up-left, its mirror)
        X = np.arange(2 * 5 * 4 * 3, dtype=np.float64).reshape(2, 5, 4, 3)
        mirror = lambda A: A[:, :, ::-1]  # noqa: E731
        expected = {
            "none": [(1.0, X)],
            "flip": [(0.5, X), (0.5, mirror(X))],
            "flip_translate": [
                (0.25, X),
                (0.25, mirror(X)),
                (0.125, translate(X, 1, 1)),
                (0.125, mirror(translate(X, 1, 1))),
                (0.125, translate(X, -1, -1)),
                (0.125, mirror(translate(X, -1, -1))),
            ],
        }
        for mode, views in expected.items():
            with self.subTest(mode=mode):
                got = tta_views(X, mode)
                self.assertEqual([w for w, _ in got], [w for w, _ in views])  # exact: powers of two
                for (_, view), (_, want) in zip(got, views):
                    np.testing.assert_array_equal(view, want)

    def test_names(self):
        self.assertEqual(check_tta(None), "none")
        for mode in TTA_MODES:
            self.assertEqual(check_tta(mode), mode)
        for bad in ("Flip", "", 1, ["flip"]):
            with self.assertRaisesRegex(ValueError, "unknown test-time augmentation"):
                check_tta(bad)
        with self.assertRaisesRegex(ValueError, r"tta='flip_translate' .*NHWC.*\(3, 4\)"):
            tta_views(np.zeros((3, 4)), "flip_translate")


class TestPredictWithViews(unittest.TestCase):
    def test_flip_translate_is_the_weighted_mean_of_the_views(self):
        model = NeuralNetwork(
            layers=[Conv2D(3, (3, 3), "relu", pad="same"), Flatten(), FullyConnected(4, "softmax")],
            loss="cross_entropy",
            seed=0,
        )
        X = np.random.default_rng(2).standard_normal((5, 6, 6, 2)).astype(np.float32)
        model.forward(X)
        expected = sum(w * model.predict(v) for w, v in tta_views(X, "flip_translate"))
        got = model.predict(X, tta="flip_translate", batch_size=2)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)  # still probabilities


if __name__ == "__main__":
    unittest.main()
