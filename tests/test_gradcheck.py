"""The public gradient-check functions and the report over every layer type."""

import contextlib
import io
import unittest

import numpy as np

from neural_networks import gradcheck


class TestNumericalGradient(unittest.TestCase):
    def test_matches_known_derivative(self):
        x = np.linspace(-1, 1, 7)
        dLdf = np.arange(7.0)
        numeric = gradcheck.numerical_gradient(np.sin, x.copy(), dLdf)
        np.testing.assert_allclose(numeric, np.cos(x) * dLdf, rtol=1e-8, atol=1e-10)

    def test_restores_input(self):
        x = np.array([[1.0, 2.0], [3.0, 4.0]])
        before = x.copy()
        gradcheck.numerical_gradient(lambda v: v**2, x, np.ones_like(x))
        np.testing.assert_array_equal(x, before)

    def test_relative_error(self):
        self.assertEqual(gradcheck.relative_error(np.zeros(3), np.zeros(3)), 0.0)
        self.assertAlmostEqual(gradcheck.relative_error(np.array([1.0]), np.array([3.0])), 0.5)
        with self.assertRaisesRegex(ValueError, "shapes differ"):
            gradcheck.relative_error(np.zeros(2), np.zeros(3))

    def test_detects_a_wrong_gradient(self):
        x = np.linspace(0.5, 1.5, 5)
        numeric = gradcheck.numerical_gradient(np.exp, x.copy(), np.ones(5))
        self.assertGreater(gradcheck.relative_error(np.exp(x) * 1.01, numeric), 1e-3)


class TestReport(unittest.TestCase):
    def test_every_type_is_checked_and_passes(self):
        rows = gradcheck.check_all(seed=3)
        names = " ".join(r.name for r in rows)
        for expected in (
            "linear",
            "sigmoid",
            "tanh",
            "arctan",
            "relu",
            "softmax",
            "fully_connected",
            "conv2d",
            "pool2d max",
            "pool2d average",
            "flatten",
            "batchnorm",
            "cross_entropy",
            "l2",
        ):
            self.assertIn(expected, names)
        failures = [(r.name, r.wrt, r.error) for r in rows if not r.passed(1e-6)]
        self.assertEqual(failures, [])

    def test_main_prints_table(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = gradcheck.main()
        self.assertEqual(status, 0)
        self.assertIn("relative error", out.getvalue())
        self.assertRegex(out.getvalue(), r"\d+ passed, 0 failed")


if __name__ == "__main__":
    unittest.main()
