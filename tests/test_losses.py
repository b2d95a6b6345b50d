"""Tests of neural_networks.losses (and the fused softmax + cross-entropy kernel)."""

import unittest

import numpy as np

from neural_networks import functional as F
from neural_networks.activations import SoftMax
from neural_networks.losses import L2, LOSSES, CrossEntropy, initialize_loss

from .helpers import numerical_gradient, one_hot, probabilities, randn, relative_error

TOL = 1e-6


class BadTargetChecks:
    """Shape and finiteness validation, shared by both losses."""

    def make(self):
        raise NotImplementedError

    def test_mismatched_shapes(self):
        loss = self.make()
        Y, Y_hat = np.eye(3)[[0, 1, 2, 0]], np.full((4, 2), 0.5)
        for method in (loss.forward, loss.backward):
            with (
                self.subTest(method=method.__name__),
                self.assertRaisesRegex(
                    ValueError, rf"{loss.name}: targets Y have shape \(4, 3\) but predictions Y_hat have shape \(4, 2\)"
                ),
            ):
                method(Y, Y_hat)
        with self.assertRaisesRegex(ValueError, r"shape \(4, 3\).*shape \(3, 3\)"):
            loss.forward(Y, np.full((3, 3), 1 / 3))

    def test_non_finite_values(self):
        loss = self.make()
        Y = np.eye(3)[[0, 1]]
        for bad in (np.nan, np.inf, -np.inf):
            Y_hat = np.full((2, 3), 1 / 3)
            Y_hat[1, 2] = bad
            for method in (loss.forward, loss.backward):
                with (
                    self.subTest(bad=bad, method=method.__name__),
                    self.assertRaisesRegex(ValueError, rf"{loss.name}: predictions Y_hat contain 1 non-finite value"),
                ):
                    method(Y, Y_hat)
        Y_bad = Y.copy()
        Y_bad[0, 0] = np.nan
        with self.assertRaisesRegex(ValueError, rf"{loss.name}: targets Y contain 1 non-finite value"):
            loss.forward(Y_bad, np.full((2, 3), 1 / 3))

    def test_empty_batch(self):
        with self.assertRaisesRegex(ValueError, r"non-empty batch"):
            self.make().forward(np.zeros((0, 3)), np.zeros((0, 3)))


class TestCrossEntropy(BadTargetChecks, unittest.TestCase):
    def make(self):
        return CrossEntropy()

    def test_forward(self):
        rng = np.random.default_rng(0)
        for m, k in ((1, 2), (5, 3), (8, 10)):
            with self.subTest(m=m, k=k):
                Y, Y_hat = one_hot(rng, m, k), probabilities(rng, m, k)
                expected = -np.mean([np.log(Y_hat[n, np.argmax(Y[n])]) for n in range(m)])
                value = CrossEntropy().forward(Y, Y_hat)
                self.assertIsInstance(value, float)
                self.assertAlmostEqual(value, expected, places=12)
                self.assertAlmostEqual(CrossEntropy()(Y, Y_hat), expected, places=12)
        # perfect predictions cost nothing; uniform ones cost ln(k)
        self.assertEqual(CrossEntropy().forward(np.eye(4), np.eye(4)), 0.0)
        self.assertAlmostEqual(CrossEntropy().forward(np.eye(4), np.full((4, 4), 0.25)), np.log(4), places=12)

    def test_zero_probability_is_finite(self):
        Y = np.array([[1.0, 0.0], [0.0, 1.0]])
        for dtype in (np.float32, np.float64):
            with self.subTest(dtype=dtype), np.errstate(divide="raise", invalid="raise", over="raise"):
                Y_hat = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=dtype)
                value = CrossEntropy().forward(Y, Y_hat)
                grad = CrossEntropy().backward(Y, Y_hat)
                self.assertTrue(np.isfinite(value) and value > 10)
                self.assertTrue(np.all(np.isfinite(grad)))

    def test_backward(self):
        rng = np.random.default_rng(1)
        for m, k, smoothing in ((1, 2, 0.0), (5, 3, 0.0), (4, 6, 0.0), (4, 5, 0.1)):
            with self.subTest(m=m, k=k, label_smoothing=smoothing):
                loss = CrossEntropy(label_smoothing=smoothing)
                Y, Y_hat = one_hot(rng, m, k), probabilities(rng, m, k)
                grad = loss.backward(Y, Y_hat)
                self.assertEqual(grad.shape, Y_hat.shape)
                num = numerical_gradient(lambda P: loss.forward(Y, P), Y_hat.copy())
                self.assertLess(relative_error(grad, num), TOL)
        # soft targets too
        Y, Y_hat = probabilities(rng, 3, 4), probabilities(rng, 3, 4)
        num = numerical_gradient(lambda P: CrossEntropy().forward(Y, P), Y_hat.copy())
        self.assertLess(relative_error(CrossEntropy().backward(Y, Y_hat), num), TOL)

    def test_label_smoothing(self):
        rng = np.random.default_rng(2)
        Y, Y_hat = one_hot(rng, 4, 5), probabilities(rng, 4, 5)
        eps = 0.2
        smoothed = Y * (1 - eps) + eps / 5
        expected = -np.sum(smoothed * np.log(Y_hat)) / 4
        self.assertAlmostEqual(CrossEntropy(label_smoothing=eps).forward(Y, Y_hat), expected, places=12)
        np.testing.assert_allclose(CrossEntropy(label_smoothing=eps).targets(Y).sum(axis=1), 1.0)
        for bad in (-0.1, 1.0, 2):
            with (
                self.subTest(label_smoothing=bad),
                self.assertRaisesRegex(ValueError, r"label_smoothing must be in \[0, 1\)"),
            ):
                CrossEntropy(label_smoothing=bad)

    def test_chained_with_softmax_equals_fused_gradient(self):
        """SoftMax.backward(CrossEntropy.backward) == (softmax(Z) - Y) / m == the fused kernel."""
        rng = np.random.default_rng(3)
        m, k = 6, 4
        Z, Y = 2 * randn(rng, m, k), one_hot(rng, m, k)
        P = SoftMax().forward(Z)
        chained = SoftMax().backward(Z, CrossEntropy().backward(Y, P))
        loss, dZ, probs = F.softmax_cross_entropy(Z, Y)
        np.testing.assert_allclose(probs, P, rtol=1e-12)
        np.testing.assert_allclose(dZ, (P - Y) / m, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(chained, dZ, rtol=1e-9, atol=1e-14)
        self.assertAlmostEqual(loss, CrossEntropy().forward(Y, P), places=12)
        num = numerical_gradient(lambda z: F.softmax_cross_entropy(z, Y)[0], Z.copy())
        self.assertLess(relative_error(dZ, num), TOL)

    def test_fused_kernel_is_stable(self):
        Z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
        Y = np.eye(2)[[1, 1]]
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            loss, dZ, _ = F.softmax_cross_entropy(Z, Y)
        self.assertAlmostEqual(loss, 1000.0, places=6)  # (2000 + 0) / 2
        np.testing.assert_allclose(dZ, [[0.5, -0.5], [0.0, 0.0]], atol=1e-12)


class TestL2(BadTargetChecks, unittest.TestCase):
    def make(self):
        return L2()

    def test_forward(self):
        rng = np.random.default_rng(10)
        for m, k in ((1, 1), (5, 3), (7, 2)):
            with self.subTest(m=m, k=k):
                Y, Y_hat = randn(rng, m, k), randn(rng, m, k)
                expected = sum((Y[n, j] - Y_hat[n, j]) ** 2 for n in range(m) for j in range(k)) / (2 * m)
                value = L2().forward(Y, Y_hat)
                self.assertIsInstance(value, float)
                self.assertAlmostEqual(value, expected, places=12)
        self.assertEqual(L2().forward(np.ones((3, 2)), np.ones((3, 2))), 0.0)
        self.assertAlmostEqual(L2().forward(np.zeros((2, 1)), np.array([[1.0], [3.0]])), 2.5)

    def test_backward(self):
        rng = np.random.default_rng(11)
        for m, k in ((1, 1), (5, 3), (4, 6)):
            with self.subTest(m=m, k=k):
                Y, Y_hat = randn(rng, m, k), randn(rng, m, k)
                grad = L2().backward(Y, Y_hat)
                np.testing.assert_allclose(grad, (Y_hat - Y) / m, rtol=1e-12)
                num = numerical_gradient(lambda P: L2().forward(Y, P), Y_hat.copy())
                self.assertLess(relative_error(grad, num), TOL)


class TestInitializeLoss(unittest.TestCase):
    def test_names(self):
        self.assertEqual(set(LOSSES), {"cross_entropy", "l2"})
        ce = initialize_loss("cross_entropy")
        self.assertIsInstance(ce, CrossEntropy)
        self.assertEqual(ce.name, "cross_entropy")
        self.assertIsInstance(initialize_loss("L2"), L2)
        self.assertEqual(initialize_loss("cross_entropy", label_smoothing=0.1).label_smoothing, 0.1)
        loss = L2()
        self.assertIs(initialize_loss(loss), loss)

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(ValueError, r"unknown loss 'hinge'; valid names: cross_entropy, l2"):
            initialize_loss("hinge")

    def test_registered_name_and_checked_arguments(self):
        loss = initialize_loss("Cross-Entropy", label_smoothing=0.2)
        self.assertEqual((loss.name, vars(loss)["name"], loss.label_smoothing), ("cross_entropy", "cross_entropy", 0.2))
        with self.assertRaisesRegex(
            ValueError,
            r"^bad arguments for loss 'l2' \(unexpected argument 'label_smoothing'\); "
            r"valid arguments: name$",
        ):
            initialize_loss("l2", label_smoothing=0.1)


class TestWhatALossExpects(unittest.TestCase):
    """Each loss declares the outputs it expects and each activation what it makes; a model that
    trains (it has an optimizer) refuses a last layer that cannot make what its loss expects."""

    def test_declarations(self):
        from neural_networks.activations import ACTIVATIONS, ReLU, Sigmoid
        from neural_networks.losses import activations_making, produces

        self.assertEqual((CrossEntropy.expects, L2.expects), ("probabilities", None))
        self.assertEqual(produces(SoftMax()), "probabilities")
        for activation in (ReLU(), Sigmoid(), None):  # sigmoid's outputs do not sum to 1 over a row
            self.assertIsNone(produces(activation))
        self.assertEqual(activations_making("probabilities"), ["softmax"])
        self.assertEqual([n for n in ACTIVATIONS if produces(ACTIVATIONS.get(n)) is not None], ["softmax"])

    def test_a_new_activation_declares_what_it_makes(self):
        from neural_networks.layers import FullyConnected
        from neural_networks.losses import check_output_layer

        class Sharpened(SoftMax):
            name = "sharpened_softmax"
            produces = "probabilities"

        class Softplus(SoftMax):  # a name the built-in table does not know, and no declaration
            name = "softplus"
            produces = None

        def layer(activation):
            layer = FullyConnected(3, "softmax")
            layer.activation = activation  # after the constructor: weight init knows no gain for these
            return layer

        check_output_layer(CrossEntropy(), layer(Sharpened()))
        with self.assertRaisesRegex(ValueError, r"with activation 'softplus'"):
            check_output_layer(CrossEntropy(), layer(Softplus()))

    def model(self, layers, **kwargs):
        from neural_networks.models import NeuralNetwork
        from neural_networks.optimizers import SGD

        return NeuralNetwork(layers=layers, optimizer=SGD(lr=0.1), seed=0, **kwargs)

    def test_a_model_that_trains_refuses_the_pair(self):
        from neural_networks.layers import Dropout, FullyConnected
        from neural_networks.models import NeuralNetwork

        for activation in ("relu", "linear", "tanh", "sigmoid"):
            for loss in ({"loss": "cross_entropy"}, {}, {"loss": CrossEntropy(label_smoothing=0.1)}):  # {}: the default
                with self.subTest(activation=activation, loss=loss), self.assertRaises(ValueError) as caught:
                    self.model([FullyConnected(8, "relu"), FullyConnected(3, activation)], **loss)
                self.assertEqual(
                    str(caught.exception),
                    f"loss 'cross_entropy' expects probabilities, which the last layer, FullyConnected (layer 1), "
                    f"cannot make with activation {activation!r}; use activation 'softmax' for cross_entropy",
                )
        with self.assertRaises(ValueError) as caught:
            self.model([FullyConnected(3, "softmax"), Dropout(0.2)])
        self.assertEqual(
            str(caught.exception),
            "loss 'cross_entropy' expects probabilities, which the last layer, Dropout (layer 1), cannot make "
            "(it has no activation); end with a layer with activation 'softmax' for cross_entropy",
        )
        with self.assertRaisesRegex(ValueError, r"^loss 'cross_entropy' expects probabilities.*activation 'relu'"):
            NeuralNetwork(
                layer_args=[{"name": "fully_connected", "n_out": 3, "activation": "relu"}],
                optimizer_args={"name": "sgd", "lr": 0.1},
            )

    def test_what_a_model_accepts(self):
        from neural_networks.layers import FullyConnected
        from neural_networks.models import NeuralNetwork

        self.model([FullyConnected(8, "relu"), FullyConnected(3, "softmax")])
        for activation in ("relu", "linear", "sigmoid", "softmax"):
            self.model([FullyConnected(3, activation)], loss="l2")
        # without an optimizer a model only predicts (inference, export, timing a backward pass):
        # its loss, the default cross_entropy included, only names the figure evaluate reports
        NeuralNetwork(layers=[FullyConnected(3, "relu")], seed=0)
        NeuralNetwork(layers=[FullyConnected(3)], loss="cross_entropy", seed=0)


if __name__ == "__main__":
    unittest.main()
