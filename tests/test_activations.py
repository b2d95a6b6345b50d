"""Tests of neural_networks.activations: forward values, finite-difference backward passes,
numerical stability, dtype preservation and the initialize_activation factory."""

import unittest

import numpy as np

from neural_networks.activations import (
    ACTIVATIONS,
    ArcTan,
    Linear,
    ReLU,
    Sigmoid,
    SoftMax,
    TanH,
    initialize_activation,
)

from .helpers import numerical_gradient, rand_away_from_zero, randn, relative_error

TOL = 1e-6


class ActivationChecks:
    """Mixed into each activation's TestCase: gradient check against finite differences on
    several shapes, float32 in gives float32 out."""

    make = None  # the activation class
    shapes = ((1, 1), (4, 7), (2, 3, 5), (2, 3, 4, 2))

    def inputs(self, rng, shape):
        return randn(rng, *shape)

    def test_backward(self):
        rng = np.random.default_rng(10)
        act = self.make()
        for shape in self.shapes:
            with self.subTest(shape=shape):
                Z = self.inputs(rng, shape)
                dY = randn(rng, *shape)
                dZ = act.backward(Z, dY)
                self.assertEqual(dZ.shape, Z.shape)
                num = numerical_gradient(act.forward, Z.copy(), dY)
                self.assertLess(relative_error(dZ, num), TOL)

    def test_keeps_dtype(self):
        rng = np.random.default_rng(11)
        act = self.make()
        for dtype in (np.float32, np.float64):
            with self.subTest(dtype=dtype):
                Z = self.inputs(rng, (3, 4)).astype(dtype)
                dY = randn(rng, 3, 4).astype(dtype)
                self.assertEqual(act.forward(Z).dtype, dtype)
                self.assertEqual(act.backward(Z, dY).dtype, dtype)

    def test_call_is_forward(self):
        rng = np.random.default_rng(12)
        act = self.make()
        Z = self.inputs(rng, (3, 4))
        np.testing.assert_array_equal(act(Z), act.forward(Z))


class TestLinear(ActivationChecks, unittest.TestCase):
    make = Linear

    def test_forward(self):
        Z = randn(np.random.default_rng(0), 3, 4)
        np.testing.assert_array_equal(Linear().forward(Z), Z)


class TestSigmoid(ActivationChecks, unittest.TestCase):
    make = Sigmoid

    def test_forward(self):
        rng = np.random.default_rng(1)
        Z = 3 * randn(rng, 5, 6)
        np.testing.assert_allclose(Sigmoid().forward(Z), 1.0 / (1.0 + np.exp(-Z)), rtol=1e-12, atol=0)
        np.testing.assert_allclose(Sigmoid().forward(np.array([[0.0]])), [[0.5]])

    def test_stable_for_large_inputs(self):
        Z = np.array([[1000.0, -1000.0, 0.0, 745.0, -745.0]])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            Y = Sigmoid().forward(Z)
            dZ = Sigmoid().backward(Z, np.ones_like(Z))
        self.assertTrue(np.all(np.isfinite(Y)) and np.all(np.isfinite(dZ)))
        np.testing.assert_allclose(Y[0, :3], [1.0, 0.0, 0.5], atol=1e-300)
        np.testing.assert_allclose(dZ[0, :3], [0.0, 0.0, 0.25], atol=1e-300)
        Z32 = Z.astype(np.float32)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            self.assertTrue(np.all(np.isfinite(Sigmoid().forward(Z32))))


class TestTanH(ActivationChecks, unittest.TestCase):
    make = TanH

    def test_forward(self):
        rng = np.random.default_rng(2)
        Z = 3 * randn(rng, 5, 6)
        E = np.exp(2 * Z)
        np.testing.assert_allclose(TanH().forward(Z), (E - 1) / (E + 1), rtol=1e-10, atol=1e-15)

    def test_stable_for_large_inputs(self):
        Z = np.array([[1000.0, -1000.0]])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            np.testing.assert_array_equal(TanH().forward(Z), [[1.0, -1.0]])
            np.testing.assert_array_equal(TanH().backward(Z, np.ones_like(Z)), [[0.0, 0.0]])


class TestArcTan(ActivationChecks, unittest.TestCase):
    make = ArcTan

    def test_forward(self):
        rng = np.random.default_rng(3)
        Z = 3 * randn(rng, 5, 6)
        Y = ArcTan().forward(Z)
        np.testing.assert_allclose(np.tan(Y), Z, rtol=1e-10, atol=1e-12)
        self.assertTrue(np.all(np.abs(Y) < np.pi / 2))
        np.testing.assert_allclose(ArcTan().forward(np.array([[1.0, -1.0, 0.0]])), [[np.pi / 4, -np.pi / 4, 0.0]])

    def test_backward_values(self):
        Z = np.array([[0.0, 1.0, -2.0]])
        dY = np.array([[2.0, 2.0, 5.0]])
        np.testing.assert_allclose(ArcTan().backward(Z, dY), [[2.0, 1.0, 1.0]])


class TestReLU(ActivationChecks, unittest.TestCase):
    make = ReLU

    def inputs(self, rng, shape):
        return rand_away_from_zero(rng, *shape, margin=1e-3)

    def test_forward(self):
        Z = np.array([[-2.0, -1e-3, 0.0, 1e-3, 3.0]])
        np.testing.assert_array_equal(ReLU().forward(Z), [[0.0, 0.0, 0.0, 1e-3, 3.0]])
        rng = np.random.default_rng(4)
        Z = randn(rng, 4, 5, 3)
        np.testing.assert_array_equal(ReLU().forward(Z), np.where(Z > 0, Z, 0.0))

    def test_backward_values(self):
        Z = np.array([[-2.0, 0.0, 3.0]])
        dY = np.array([[5.0, 6.0, 7.0]])
        # derivative 0 at the kink, as in PyTorch
        np.testing.assert_array_equal(ReLU().backward(Z, dY), [[0.0, 0.0, 7.0]])

    def test_does_not_modify_input(self):
        Z = np.array([[-1.0, 2.0]])
        dY = np.array([[3.0, 4.0]])
        ReLU().forward(Z)
        ReLU().backward(Z, dY)
        np.testing.assert_array_equal(Z, [[-1.0, 2.0]])
        np.testing.assert_array_equal(dY, [[3.0, 4.0]])


class TestSoftMax(ActivationChecks, unittest.TestCase):
    make = SoftMax
    shapes = ((1, 1), (1, 5), (4, 7), (3, 2, 4))

    def test_forward(self):
        rng = np.random.default_rng(5)
        Z = 2 * randn(rng, 6, 5)
        S = SoftMax().forward(Z)
        E = np.exp(Z)
        np.testing.assert_allclose(S, E / E.sum(axis=1, keepdims=True), rtol=1e-12)
        np.testing.assert_allclose(S.sum(axis=1), np.ones(6), rtol=1e-12)
        self.assertTrue(np.all(S > 0))
        # invariant to adding a constant to each row
        np.testing.assert_allclose(SoftMax().forward(Z + rng.normal(size=(6, 1)) * 50), S, rtol=1e-9)

    def test_stable_for_huge_inputs(self):
        Z = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
        for dtype in (np.float64, np.float32):
            with self.subTest(dtype=dtype), np.errstate(over="raise", invalid="raise", divide="raise"):
                S = SoftMax().forward(Z.astype(dtype))
                dZ = SoftMax().backward(Z.astype(dtype), np.ones_like(Z, dtype=dtype))
                self.assertTrue(np.all(np.isfinite(S)))
                self.assertTrue(np.all(np.isfinite(dZ)))
                np.testing.assert_allclose(S, [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
                np.testing.assert_allclose(S.sum(axis=1), 1.0, rtol=1e-6)

    def test_backward_equals_jacobian_product(self):
        rng = np.random.default_rng(6)
        m, k = 5, 4
        Z = randn(rng, m, k)
        dY = randn(rng, m, k)
        S = SoftMax().forward(Z)
        expected = np.zeros((m, k))
        for n in range(m):
            s = S[n]
            J = np.diag(s) - np.outer(s, s)
            expected[n] = dY[n] @ J
        np.testing.assert_allclose(SoftMax().backward(Z, dY), expected, rtol=1e-10, atol=1e-14)

    def test_rows_are_independent(self):
        rng = np.random.default_rng(7)
        Z = randn(rng, 4, 3)
        S = SoftMax().forward(Z)
        for n in range(4):
            np.testing.assert_allclose(SoftMax().forward(Z[n : n + 1]), S[n : n + 1], rtol=1e-12)


class TestFusedKernelProtocol(unittest.TestCase):
    """``fused_kernel`` / ``backward_from_output``: the contract layers rely on when they apply an
    activation inside their own kernel and keep only its output."""

    def test_only_relu_names_a_fused_kernel(self):
        kernels = {name: cls().fused_kernel for name, cls in ACTIVATIONS.items()}
        self.assertEqual(
            kernels, {"linear": None, "sigmoid": None, "tanh": None, "arctan": None, "relu": "relu", "softmax": None}
        )

    def test_relu_gradient_from_output_equals_backward(self):
        rng = np.random.default_rng(3)
        relu = ReLU()
        for dtype in (np.float64, np.float32):
            for shape in ((5, 4), (2, 3, 3, 4)):
                with self.subTest(dtype=dtype.__name__, shape=shape):
                    Z = randn(rng, *shape, dtype=dtype)
                    Z.flat[::3] = 0.0  # the kink: both give 0 there
                    dY = randn(rng, *shape, dtype=dtype)
                    from_output = relu.backward_from_output(relu.forward(Z), dY)
                    np.testing.assert_array_equal(from_output, relu.backward(Z, dY))
                    np.testing.assert_array_equal(from_output, dY * (Z > 0))
                    self.assertEqual(from_output.dtype, dtype)

    def test_every_fused_activation_computes_its_gradient_from_its_output(self):
        rng = np.random.default_rng(4)
        Z, dY = randn(rng, 6, 5), randn(rng, 6, 5)
        for name, cls in ACTIVATIONS.items():
            act = cls()
            if act.fused_kernel is not None:
                with self.subTest(name=name):
                    np.testing.assert_allclose(act.backward_from_output(act.forward(Z), dY), act.backward(Z, dY))

    def test_base_raises_naming_the_activation(self):
        for cls in (Linear, Sigmoid, TanH, ArcTan, SoftMax):
            with self.subTest(cls=cls.__name__):
                self.assertIsNone(cls.fused_kernel)
                with self.assertRaisesRegex(NotImplementedError, f"activation '{cls.name}' cannot compute"):
                    cls().backward_from_output(np.ones((2, 2)), np.ones((2, 2)))


class TestInitializeActivation(unittest.TestCase):
    def test_names(self):
        expected = {
            "linear": Linear,
            "sigmoid": Sigmoid,
            "tanh": TanH,
            "arctan": ArcTan,
            "relu": ReLU,
            "softmax": SoftMax,
        }
        for name, cls in expected.items():
            with self.subTest(name=name):
                self.assertIsInstance(initialize_activation(name), cls)
                self.assertIsInstance(initialize_activation(name.upper()), cls)
        self.assertEqual(list(ACTIVATIONS), list(expected))  # registration order; errors list them sorted
        self.assertIsInstance(initialize_activation(" ReLU "), ReLU)

    def test_none_is_linear_and_instances_pass_through(self):
        self.assertIsInstance(initialize_activation(None), Linear)
        relu = ReLU()
        self.assertIs(initialize_activation(relu), relu)

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError, r"unknown activation 'swish'.*arctan, linear, relu, sigmoid, softmax, tanh"
        ):
            initialize_activation("swish")


if __name__ == "__main__":
    unittest.main()
