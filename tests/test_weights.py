"""Tests of neural_networks.weights: fans, gains, the statistics of each initializer,
seeding and the initialize_weights factory."""

import math
import unittest

import numpy as np

from neural_networks.weights import INITIALIZERS, calculate_gain, compute_fans, initialize_weights

FC_SHAPE = (300, 200)  # fan_in 300, fan_out 200: 60,000 draws
CONV_SHAPE = (5, 3, 40, 24)  # fan_in 5*3*40 = 600, fan_out 5*3*24 = 360: 14,400 draws
STAT_RTOL = 0.03  # std of a sample std over >= 14,400 draws is < 0.6 %


class TestFans(unittest.TestCase):
    def test_fully_connected(self):
        self.assertEqual(compute_fans((3, 5)), (3, 5))
        self.assertEqual(compute_fans(FC_SHAPE), (300, 200))

    def test_conv(self):
        self.assertEqual(compute_fans((3, 3, 16, 32)), (3 * 3 * 16, 3 * 3 * 32))
        self.assertEqual(compute_fans(CONV_SHAPE), (600, 360))
        self.assertEqual(compute_fans((1, 1, 4, 7)), (4, 7))

    def test_bad_shape(self):
        with self.assertRaisesRegex(ValueError, r"cannot compute fans of a weight of shape \(2, 3, 4\)"):
            compute_fans((2, 3, 4))


class TestGain(unittest.TestCase):
    def test_values(self):
        self.assertEqual(calculate_gain(None), 1.0)
        for name in ("linear", "sigmoid", "softmax"):
            self.assertEqual(calculate_gain(name), 1.0)
        self.assertAlmostEqual(calculate_gain("relu"), math.sqrt(2))
        self.assertAlmostEqual(calculate_gain("tanh"), 5 / 3)
        self.assertAlmostEqual(calculate_gain("ReLU"), math.sqrt(2))

    def test_unknown(self):
        with self.assertRaisesRegex(ValueError, r"no gain known for activation 'swish'; valid names: .*relu"):
            calculate_gain("swish")


def bound_and_std(name, shape, activation=None):
    """The documented uniform bound (None for normal laws) and standard deviation."""
    fan_in, fan_out = compute_fans(shape)
    gain = calculate_gain(activation)
    if name == "xavier_uniform":
        limit = gain * math.sqrt(6 / (fan_in + fan_out))
        return limit, limit / math.sqrt(3)
    if name == "xavier_normal":
        return None, gain * math.sqrt(2 / (fan_in + fan_out))
    if name == "he_uniform":
        limit = math.sqrt(6 / fan_in)
        return limit, limit / math.sqrt(3)
    if name == "he_normal":
        return None, math.sqrt(2 / fan_in)
    if name == "lecun_uniform":
        limit = math.sqrt(3 / fan_in)
        return limit, limit / math.sqrt(3)
    if name == "lecun_normal":
        return None, math.sqrt(1 / fan_in)
    if name == "pytorch_uniform":
        limit = 1 / math.sqrt(fan_in)
        return limit, limit / math.sqrt(3)
    if name == "uniform":
        return 0.05, 0.05 / math.sqrt(3)
    if name == "normal":
        return None, 0.05
    raise AssertionError(name)


class TestInitializers(unittest.TestCase):
    def check_statistics(self, name, shape, activation=None):
        limit, std = bound_and_std(name, shape, activation)
        W = initialize_weights(name, activation=activation)(shape, rng=np.random.default_rng(0))
        self.assertEqual(W.shape, shape)
        self.assertEqual(W.dtype, np.float32)
        W = W.astype(np.float64)
        self.assertLess(abs(W.mean()), 4 * std / math.sqrt(W.size))
        self.assertAlmostEqual(W.std() / std, 1.0, delta=STAT_RTOL)
        if limit is not None:
            self.assertLessEqual(np.abs(W).max(), limit * (1 + 1e-6))
            self.assertGreater(np.abs(W).max(), 0.99 * limit)
            # uniform: about a tenth of the draws in each tenth of [-limit, limit]
            counts, _ = np.histogram(W, bins=10, range=(-limit, limit))
            np.testing.assert_allclose(counts / W.size, 0.1, atol=0.015)
        else:
            # normal: about 68.3 % within one std, 95.4 % within two
            self.assertAlmostEqual(np.mean(np.abs(W) < std), 0.6827, delta=0.02)
            self.assertAlmostEqual(np.mean(np.abs(W) < 2 * std), 0.9545, delta=0.01)

    def test_statistics(self):
        for name in (
            "xavier_uniform",
            "xavier_normal",
            "he_uniform",
            "he_normal",
            "lecun_uniform",
            "lecun_normal",
            "pytorch_uniform",
            "uniform",
            "normal",
        ):
            for shape in (FC_SHAPE, CONV_SHAPE):
                with self.subTest(name=name, shape=shape):
                    self.check_statistics(name, shape)

    def test_xavier_gains(self):
        for name in ("xavier_uniform", "xavier_normal"):
            for activation in ("relu", "tanh", "sigmoid"):
                with self.subTest(name=name, activation=activation):
                    self.check_statistics(name, FC_SHAPE, activation)

    def test_he_ignores_activation(self):
        for name in ("he_uniform", "he_normal"):
            with self.subTest(name=name):
                a = initialize_weights(name, activation="tanh")(CONV_SHAPE, rng=np.random.default_rng(1))
                b = initialize_weights(name, activation="relu")(CONV_SHAPE, rng=np.random.default_rng(1))
                np.testing.assert_array_equal(a, b)
                self.check_statistics(name, CONV_SHAPE, "tanh")

    def test_constants(self):
        np.testing.assert_array_equal(initialize_weights("zeros")((3, 4)), np.zeros((3, 4)))
        np.testing.assert_array_equal(initialize_weights("ones")((2, 2, 1, 3)), np.ones((2, 2, 1, 3)))
        self.assertEqual(initialize_weights("zeros")((3, 4)).dtype, np.float32)

    def test_dtype(self):
        for name in INITIALIZERS:
            with self.subTest(name=name):
                init = initialize_weights(name)
                self.assertEqual(init((4, 5), rng=np.random.default_rng(0)).dtype, np.float32)
                self.assertEqual(init((4, 5), rng=np.random.default_rng(0), dtype=np.float64).dtype, np.float64)

    def test_seeded(self):
        for name in INITIALIZERS:
            with self.subTest(name=name):
                init = initialize_weights(name, activation="relu")
                a = init((6, 7), rng=np.random.default_rng(42))
                b = init((6, 7), rng=np.random.default_rng(42))
                np.testing.assert_array_equal(a, b)
                if name not in ("zeros", "ones", "dirac"):  # deterministic
                    c = init((6, 7), rng=np.random.default_rng(43))
                    self.assertFalse(np.array_equal(a, c))
                    # successive draws from one generator differ
                    g = np.random.default_rng(42)
                    self.assertFalse(np.array_equal(init((6, 7), rng=g), init((6, 7), rng=g)))

    def test_without_rng(self):
        W = initialize_weights("he_normal")((10, 10))
        self.assertEqual(W.shape, (10, 10))
        self.assertTrue(np.all(np.isfinite(W)))

    def test_case_insensitive(self):
        a = initialize_weights("Xavier_Uniform")((3, 3), rng=np.random.default_rng(0))
        b = initialize_weights("xavier_uniform")((3, 3), rng=np.random.default_rng(0))
        np.testing.assert_array_equal(a, b)

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError,
            r"unknown weight initializer 'glorot'; valid names: "
            r"xavier_uniform, xavier_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, "
            r"pytorch_uniform, uniform, normal",
        ):
            initialize_weights("glorot")

    def test_unknown_activation(self):
        with self.assertRaisesRegex(ValueError, r"no gain known for activation 'swish'"):
            initialize_weights("xavier_uniform", activation="swish")

    def test_initializers_with_a_gain_argument_are_scaled_by_the_activation(self):
        scaled = [name for name in INITIALIZERS if "gain" in INITIALIZERS.arguments(name)]
        self.assertEqual(scaled, ["xavier_uniform", "xavier_normal"])
        rng = np.random.default_rng
        for name in INITIALIZERS:
            with self.subTest(name=name):
                linear = initialize_weights(name)((20, 30), rng=rng(0), dtype=np.float64)
                tanh = initialize_weights(name, activation="tanh")((20, 30), rng=rng(0), dtype=np.float64)
                np.testing.assert_allclose(
                    tanh, linear * (5.0 / 3.0 if name in scaled else 1.0), rtol=1e-12, atol=1e-15
                )
                self.assertEqual(initialize_weights(name, activation="tanh").__name__, name)
        # the others ignore the activation, even one without a known gain
        self.assertEqual(initialize_weights("he_normal", activation="swish")((2, 2), rng=rng(0)).shape, (2, 2))
        self.assertEqual(list(INITIALIZERS)[:2], ["xavier_uniform", "xavier_normal"])


class TestDirac(unittest.TestCase):
    """Identity initialisation: ``dirac`` (torch.nn.init.dirac_) and ``dirac_<name>`` (airbench's:
    the first min(in, out) filters identities, the rest drawn by ``<name>``)."""

    def test_conv_filters_pass_their_channel_through(self):
        for shape in ((3, 3, 4, 6), (3, 3, 6, 4), (1, 1, 3, 3), (5, 3, 2, 2)):
            with self.subTest(shape=shape):
                W = initialize_weights("dirac")(shape, dtype=np.float64)
                kh, kw, c, f = shape
                expected = np.zeros(shape)
                for i in range(min(c, f)):
                    expected[kh // 2, kw // 2, i, i] = 1.0
                np.testing.assert_array_equal(W, expected)
                # a 'same' convolution with it copies the first channels
                from neural_networks.functional import conv as F

                X = np.random.default_rng(0).standard_normal((2, 7, 6, c))
                Z, _ = F.conv2d_forward(X, W, None, 1, (kh // 2, kw // 2), keep_cols=False)
                np.testing.assert_allclose(Z[..., : min(c, f)], X[..., : min(c, f)], atol=1e-12)
                np.testing.assert_array_equal(Z[..., min(c, f) :], 0)

    def test_matches_torch_dirac(self):
        from tests import torch_oracles as O

        if O.torch is None:
            self.skipTest(O.SKIP_REASON)
        for shape in ((3, 3, 4, 6), (3, 3, 6, 4)):
            w = O.torch.empty(O.conv_weight_to_torch(np.zeros(shape)).shape, dtype=O.torch.float64)
            O.torch.nn.init.dirac_(w)
            np.testing.assert_array_equal(
                initialize_weights("dirac")(shape, dtype=np.float64), O.conv_weight_from_torch(w.numpy())
            )

    def test_dirac_over_a_base_initializer(self):
        shape = (3, 3, 4, 8)
        base = initialize_weights("pytorch_uniform")(shape, rng=np.random.default_rng(1))
        W = initialize_weights("dirac_pytorch_uniform")(shape, rng=np.random.default_rng(1))
        np.testing.assert_array_equal(W[..., 4:], base[..., 4:])  # the other filters as drawn
        np.testing.assert_array_equal(W[..., :4], initialize_weights("dirac")((3, 3, 4, 4)))
        self.assertEqual(W.dtype, np.float32)
        dense = initialize_weights("dirac")((3, 5))
        np.testing.assert_array_equal(dense, np.eye(3, 5, dtype=np.float32))
        with self.assertRaisesRegex(ValueError, "unknown weight initializer 'glorot'"):
            initialize_weights("dirac_glorot")
        from neural_networks.layers import Conv2D

        layer = Conv2D(6, (3, 3), pad="same", weight_init="dirac_he_uniform")
        layer.forward(np.zeros((1, 5, 5, 3), np.float32))
        self.assertEqual(layer.parameters["W"][1, 1, 2, 2], 1.0)


class TestUnitStd(unittest.TestCase):
    """``unit_std_<name>``: ``<name>``'s draw scaled to a standard deviation of exactly 1 (airbench's
    classifier, ``w *= 1 / w.std()``)."""

    def test_scales_the_base_draw(self):
        shape = (256, 10)
        base = initialize_weights("pytorch_uniform")(shape, rng=np.random.default_rng(3), dtype=np.float64)
        W = initialize_weights("unit_std_pytorch_uniform")(shape, rng=np.random.default_rng(3), dtype=np.float64)
        np.testing.assert_allclose(W, base / base.std(), rtol=1e-12)
        self.assertAlmostEqual(float(W.std()), 1.0, places=12)
        W32 = initialize_weights("unit_std_he_normal")((3, 3, 4, 8), rng=np.random.default_rng(0))
        self.assertEqual(W32.dtype, np.float32)
        self.assertAlmostEqual(float(W32.std(dtype=np.float64)), 1.0, places=5)

    def test_composes_with_dirac_and_rejects_constant_draws(self):
        shape = (3, 3, 2, 4)
        W = initialize_weights("dirac_unit_std_normal")(shape, rng=np.random.default_rng(0), dtype=np.float64)
        base = initialize_weights("normal")(shape, rng=np.random.default_rng(0), dtype=np.float64)
        np.testing.assert_array_equal(W[..., :2], initialize_weights("dirac")((3, 3, 2, 2)))
        np.testing.assert_allclose(W[..., 2:], (base / base.std())[..., 2:], rtol=1e-12)  # scaled, then identities
        with self.assertRaisesRegex(ValueError, "constant"):
            initialize_weights("unit_std_zeros")((4, 3))
        with self.assertRaisesRegex(ValueError, "unknown weight initializer 'glorot'"):
            initialize_weights("unit_std_glorot")

    def test_in_a_dense_layer(self):
        from neural_networks.layers import FullyConnected

        layer = FullyConnected(10, weight_init="unit_std_pytorch_uniform", use_bias=False)
        layer.forward(np.zeros((2, 256), np.float32))
        self.assertAlmostEqual(float(layer.parameters["W"].std(dtype=np.float64)), 1.0, places=5)


if __name__ == "__main__":
    unittest.main()
