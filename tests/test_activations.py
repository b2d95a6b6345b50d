"""Tests of neural_networks.activations: forward values, finite-difference backward passes,
numerical stability, dtype preservation and the initialize_activation factory."""

import math
import unittest

import numpy as np

from neural_networks.activations import (
    ACTIVATIONS,
    GELU,
    ArcTan,
    GELUTanh,
    Linear,
    ReLU,
    Sigmoid,
    SoftMax,
    TanH,
    initialize_activation,
)

from .helpers import numerical_gradient, one_hot, rand_away_from_zero, randn, relative_error
from .torch_oracles import TF, requires_torch, torch

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


def _gelu_reference(Z: np.ndarray) -> np.ndarray:
    """Slow exact GELU, one ``math.erf`` per element: ``z (1 + erf(z / sqrt(2))) / 2``."""
    return np.array([z * 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) for z in Z.ravel()]).reshape(Z.shape)


def _gelu_tail_reference(Z: np.ndarray) -> np.ndarray:
    """The same as ``z erfc(-z / sqrt(2)) / 2`` (``math.erfc``), which keeps its relative accuracy
    for very negative ``z``, where ``1 + erf`` cancels."""
    return np.array([z * 0.5 * math.erfc(-z / math.sqrt(2.0)) for z in Z.ravel()]).reshape(Z.shape)


def _gelu_slope_reference(Z: np.ndarray) -> np.ndarray:
    """``Phi(z) + z phi(z)``, one ``math.erfc`` / ``math.exp`` per element."""
    return np.array(
        [0.5 * math.erfc(-z / math.sqrt(2.0)) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in Z.ravel()]
    ).reshape(Z.shape)


class TestGELU(ActivationChecks, unittest.TestCase):
    make = GELU

    def inputs(self, rng, shape):
        return 3 * randn(rng, *shape)

    def test_forward_matches_math_erf(self):
        rng = np.random.default_rng(20)
        Z = np.concatenate([np.linspace(-10, 10, 4001), 3 * randn(rng, 3000)])
        np.testing.assert_allclose(GELU().forward(Z), _gelu_reference(Z), rtol=1e-13, atol=1e-15)
        # every interval of the erf approximation (|z| / sqrt(2) below 0.46875, up to 4, beyond)
        # with relative accuracy, deep into the lower tail (GELU(-37) is about -1e-300)
        Z = -np.geomspace(1e-8, 37.0, 2000)
        np.testing.assert_allclose(GELU().forward(Z), _gelu_tail_reference(Z), rtol=1e-12, atol=0)
        np.testing.assert_allclose(GELU().forward(-Z), _gelu_tail_reference(-Z), rtol=1e-14, atol=0)

    def test_backward_matches_closed_form(self):
        rng = np.random.default_rng(21)
        Z = np.concatenate([np.linspace(-10, 10, 2001), 3 * randn(rng, 2000)])
        dY = randn(rng, Z.size)
        np.testing.assert_allclose(GELU().backward(Z, dY), dY * _gelu_slope_reference(Z), rtol=1e-12, atol=1e-15)

    def test_large_arrays_equal_small_ones_elementwise(self):
        # GELU works through blocks of 65536 elements: a value must not depend on its block
        rng = np.random.default_rng(22)
        Z = 4 * randn(rng, 70001)
        dY = randn(rng, 70001)
        Y, dZ = GELU().forward(Z), GELU().backward(Z, dY)
        for i in (0, 65535, 65536, 70000):
            self.assertEqual(Y[i], GELU().forward(Z[i : i + 1])[0])
            self.assertEqual(dZ[i], GELU().backward(Z[i : i + 1], dY[i : i + 1])[0])

    def test_values_and_limits(self):
        Z = np.array([0.0, 1.0, -1.0, 1000.0, -1000.0, 1e30, -1e30])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            Y = GELU().forward(Z)
            dZ = GELU().backward(Z, np.ones_like(Z))
        np.testing.assert_array_equal(Y[[0, 3, 4, 5, 6]], [0.0, 1000.0, 0.0, 1e30, 0.0])
        np.testing.assert_allclose(Y[1:3], [0.8413447460685429, -0.15865525393145707], rtol=1e-15)
        np.testing.assert_array_equal(dZ[[0, 3, 4, 5, 6]], [0.5, 1.0, 0.0, 1.0, 0.0])
        Z32 = np.array([3e38, -3e38, 0.5], dtype=np.float32)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            self.assertTrue(np.all(np.isfinite(GELU().forward(Z32))))
            self.assertTrue(np.all(np.isfinite(GELU().backward(Z32, np.ones_like(Z32)))))
        self.assertTrue(np.isnan(GELU().forward(np.array([np.nan, 1.0]))[0]))

    def test_float32_is_accurate_to_float32(self):
        Z = np.linspace(-10, 10, 20001).astype(np.float32)
        exact = _gelu_tail_reference(Z.astype(np.float64))
        np.testing.assert_allclose(GELU().forward(Z), exact, rtol=2e-6, atol=1e-7)
        np.testing.assert_allclose(
            GELU().backward(Z, np.ones_like(Z)), _gelu_slope_reference(Z.astype(np.float64)), rtol=2e-6, atol=1e-7
        )

    def test_float32_keeps_relative_accuracy_in_the_lower_tail(self):
        # float32 takes Numerical Recipes' erfcc (fractional error < 1.2e-7); its exponent -y^2
        # is rounded in float32, which costs about y^2 * 6e-8 relative: 1e-5 at z = -12
        Z = np.linspace(-12, -1, 2201).astype(np.float32)
        exact = _gelu_tail_reference(Z.astype(np.float64))
        np.testing.assert_allclose(GELU().forward(Z), exact, rtol=2e-5, atol=0)
        slope = _gelu_slope_reference(Z.astype(np.float64))
        np.testing.assert_allclose(GELU().backward(Z, np.ones_like(Z)), slope, rtol=5e-5, atol=1e-30)

    def test_wrong_gradient_shape_is_refused(self):
        with self.assertRaisesRegex(ValueError, r"upstream gradient of the input's shape \(2, 3\), got \(3, 2\)"):
            GELU().backward(np.ones((2, 3)), np.ones((3, 2)))

    def test_float32_across_the_table_edges(self):
        from neural_networks.functional import gelu_tables

        # float32 interpolates tables for |z| < 6 and takes erfcc formulas beyond: both sides of
        # each edge, the last node, values mixed in one block (the per-block switch), and the
        # special values, each against the float64 references
        edge = np.float32(gelu_tables._TABLE_RANGE)
        below, above = np.nextafter(edge, np.float32(0)), np.nextafter(edge, np.float32(8))
        node = 1 / gelu_tables._NODES_PER_UNIT
        special = np.array([-edge, edge, below, above, -below, -above, 0, -0.0, node, -node, 4, -4], np.float32)
        rng = np.random.default_rng(23)
        inside = rng.uniform(-edge, edge, 5000).astype(np.float32)
        for Z in (special, np.concatenate([special, inside, special]), inside):
            exact = _gelu_tail_reference(Z.astype(np.float64))
            np.testing.assert_allclose(GELU().forward(Z), exact, rtol=1e-6, atol=1e-7)
            slope = _gelu_slope_reference(Z.astype(np.float64))
            np.testing.assert_allclose(GELU().backward(Z, np.ones_like(Z)), slope, rtol=1e-6, atol=1e-7)
        Z = np.array([np.nan, np.inf, 1.0, -np.inf], np.float32)
        with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0: NaN, as in PyTorch
            Y, dZ = GELU().forward(Z), GELU().backward(Z, np.ones_like(Z))
        self.assertTrue(np.isnan(Y[0]) and np.isnan(dZ[0]))
        self.assertEqual((Y[1], dZ[1]), (np.inf, 1.0))
        self.assertAlmostEqual(float(Y[2]), 0.8413447460685429, places=6)
        self.assertEqual(dZ[3], 0.0)

    def test_float32_values_beyond_the_tables_in_many_blocks_and_threads(self):
        from unittest import mock

        from neural_networks.functional import gelu_tables
        from neural_networks.functional import parallel

        # values beyond the tables are queued per thread and computed after its last block:
        # each must land at its own position, scaled by its own z or dY, in every block, for
        # any thread count; a wide scale puts some beyond 6 in every block, NaN in a few
        rng = np.random.default_rng(26)
        Z = (3.5 * rng.standard_normal(4 * gelu_tables._BLOCK + 123)).astype(np.float32)
        Z[rng.choice(Z.size, 5, replace=False)] = np.nan
        dY = rng.standard_normal(Z.size).astype(np.float32)
        finite = ~np.isnan(Z)
        self.assertGreater(np.sum(np.abs(Z[: gelu_tables._BLOCK]) >= 6), 10)
        exact = _gelu_tail_reference(Z[finite].astype(np.float64))
        slope = _gelu_slope_reference(Z[finite].astype(np.float64))
        results = {}
        for threads in ("1", "2", "3"):
            with mock.patch.dict("os.environ", {parallel.ENV_THREADS: threads}):
                results[threads] = (GELU().forward(Z), GELU().backward(Z, dY), *gelu_tables.gelu_with_slope(Z))
        Y, dZ, Y_both, S = results["1"]
        np.testing.assert_allclose(Y[finite], exact, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(dZ[finite], slope * dY[finite], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(S[finite], slope, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(Y_both, Y)
        for result in (Y, dZ, Y_both, S):
            self.assertTrue(np.all(np.isnan(result[~finite])))
        for threads in ("2", "3"):
            for one, other in zip(results["1"], results[threads]):
                np.testing.assert_array_equal(one, other)

    def test_gelu_with_slope_is_forward_and_backward_in_one(self):
        from neural_networks.functional import gelu_tables

        rng = np.random.default_rng(25)
        for dtype in (np.float32, np.float64):
            Z = np.concatenate([4 * rng.standard_normal(70001), [-7.0, 7.0, 0.0, 1e30]]).astype(dtype)
            Y, S = gelu_tables.gelu_with_slope(Z)
            np.testing.assert_array_equal(Y, GELU().forward(Z))
            np.testing.assert_array_equal(S, GELU().backward(Z, np.ones_like(Z)))
            self.assertEqual((Y.dtype, S.dtype), (dtype, dtype))

    def test_threads_split_the_blocks_with_the_same_bits(self):
        from unittest import mock

        from neural_networks.functional import gelu_tables
        from neural_networks.functional import parallel

        rng = np.random.default_rng(24)
        for dtype in (np.float32, np.float64):
            Z = (3 * rng.standard_normal((5, gelu_tables._BLOCK // 2 + 7))).astype(dtype)  # uneven blocks
            dY = rng.standard_normal(Z.shape).astype(dtype)
            results = {}
            for threads in ("1", "2", "3"):
                with mock.patch.dict("os.environ", {parallel.ENV_THREADS: threads}):
                    results[threads] = (GELU().forward(Z), GELU().backward(Z, dY))
            for threads in ("2", "3"):
                for one, other in zip(results["1"], results[threads]):
                    self.assertEqual(one.dtype, dtype)
                    np.testing.assert_array_equal(one, other)


class TestGELUTanh(ActivationChecks, unittest.TestCase):
    make = GELUTanh

    def inputs(self, rng, shape):
        return 3 * randn(rng, *shape)

    def test_forward(self):
        Z = np.linspace(-8, 8, 1601)
        u = math.sqrt(2 / math.pi) * (Z + 0.044715 * Z**3)
        np.testing.assert_allclose(GELUTanh().forward(Z), 0.5 * Z * (1 + np.tanh(u)), rtol=1e-12, atol=1e-15)
        # no cancellation in the lower tail: relative accuracy against z / (1 + exp(-2u))
        Zn, un = Z[Z < 0], u[Z < 0]
        np.testing.assert_allclose(GELUTanh().forward(Zn), Zn / (1 + np.exp(-2 * un)), rtol=1e-12, atol=0)
        # within about 5e-4 of the exact GELU (the approximation's known error)
        self.assertLess(np.max(np.abs(GELUTanh().forward(Z) - GELU().forward(Z))), 5e-4)

    def test_huge_inputs(self):
        for dtype in (np.float64, np.float32):
            Z = np.array([1e30, -1e30, 60.0, -60.0], dtype=dtype)  # f(-60) < 1e-3000
            with self.subTest(dtype=dtype.__name__), np.errstate(over="raise", invalid="raise", divide="raise"):
                np.testing.assert_array_equal(GELUTanh().forward(Z), np.array([1e30, 0.0, 60.0, 0.0], dtype=dtype))
                np.testing.assert_array_equal(GELUTanh().backward(Z, np.ones_like(Z)), [1.0, 0.0, 1.0, 0.0])


@requires_torch
class TestGELUMatchesTorch(unittest.TestCase):
    """``torch.nn.functional.gelu`` (exact and ``approximate="tanh"``), forward and backward."""

    def check(self, act, approximate, Z, rtol, atol):
        dY = np.random.default_rng(30).standard_normal(Z.shape).astype(Z.dtype)
        leaf = torch.tensor(Z, requires_grad=True)
        out = TF.gelu(leaf, approximate=approximate)
        out.backward(torch.tensor(dY))
        np.testing.assert_allclose(act.forward(Z), out.detach().numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(act.backward(Z, dY), leaf.grad.numpy(), rtol=rtol, atol=atol)

    def test_float64_and_float32(self):
        rng = np.random.default_rng(31)
        Z = np.concatenate([np.linspace(-10, 10, 4001), rng.standard_normal(4000), 4 * rng.standard_normal(4000)])
        for act, approximate in ((GELU(), "none"), (GELUTanh(), "tanh")):
            with self.subTest(approximate=approximate, dtype="float64"):
                self.check(act, approximate, Z, rtol=1e-6, atol=1e-6)
            with self.subTest(approximate=approximate, dtype="float32"):
                # torch computes 1 + erf (1 + tanh) in float32, which cancels for negative z: its
                # error is up to about 1e-6 (times |dY| in the gradient), ours 2e-7
                self.check(act, approximate, Z.astype(np.float32), rtol=1e-5, atol=1e-5)

    def test_network_layer_shapes(self):
        Z = np.random.default_rng(32).standard_normal((2, 5, 5, 3))
        self.check(GELU(), "none", Z, rtol=1e-12, atol=1e-14)


class TestGELUInLayers(unittest.TestCase):
    """``activation: gelu`` / ``gelu_tanh`` in a layer config: built by name, saved by name, and a
    model with it trains (one SGD step lowers the loss on a fixed batch)."""

    def test_layers_take_it_by_name_and_save_it(self):
        from neural_networks.layers import initialize_layer

        for name, cls in (("gelu", GELU), ("GELU", GELU), ("gelu_tanh", GELUTanh)):
            for layer_args in (
                dict(name="fully_connected", n_out=4, activation=name),
                dict(name="conv2d", n_out=3, kernel_shape=(3, 3), activation=name, pad="same"),
            ):
                with self.subTest(activation=name, layer=layer_args["name"]):
                    layer = initialize_layer(**layer_args)
                    self.assertIsInstance(layer.activation, cls)
                    self.assertIsInstance(initialize_layer(**layer.config()).activation, cls)

    def test_layer_gradients_match_finite_differences(self):
        from neural_networks.gradcheck import check_layer
        from neural_networks.layers import initialize_layer

        rng = np.random.default_rng(34)
        for activation in ("gelu", "gelu_tanh"):
            for layer_args, shape in (
                (dict(name="fully_connected", n_out=4, activation=activation), (3, 5)),
                (dict(name="conv2d", n_out=3, kernel_shape=(3, 3), activation=activation, pad="same"), (2, 5, 5, 2)),
            ):
                layer = initialize_layer(**layer_args)
                for row in check_layer(layer, randn(rng, *shape), rng):
                    with self.subTest(activation=activation, layer=layer_args["name"], wrt=row.wrt):
                        self.assertLess(row.error, TOL)

    def test_a_model_with_gelu_trains_a_step(self):
        from neural_networks.models import NeuralNetwork

        rng = np.random.default_rng(33)
        X = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
        Y = one_hot(rng, 8, 3)
        for activation in ("gelu", "gelu_tanh"):
            with self.subTest(activation=activation):
                model = NeuralNetwork(
                    loss="cross_entropy",
                    layer_args=[
                        {"name": "conv2d", "n_out": 4, "kernel_shape": (3, 3), "activation": activation, "pad": "same"},
                        {"name": "flatten"},
                        {"name": "fully_connected", "n_out": 5, "activation": activation},
                        {"name": "fully_connected", "n_out": 3, "activation": "softmax"},
                    ],
                    optimizer_args={"name": "SGD", "lr": 0.05},
                    seed=4,
                )
                before = model.loss.forward(Y, model.forward(X))
                params = [{k: v.copy() for k, v in layer.parameters.items()} for layer in model.layers]
                loss, _ = model.train_step(X, Y, epoch=0.0)
                self.assertAlmostEqual(loss, before, places=5)  # the step's loss is the one before it
                for layer, old in zip(model.layers, params):
                    for key, value in layer.parameters.items():
                        self.assertEqual(value.dtype, np.float32)
                        self.assertTrue(np.all(np.isfinite(value)), f"{layer} {key}")
                        self.assertFalse(np.array_equal(value, old[key]), f"{layer} {key} did not move")
                self.assertLess(model.loss.forward(Y, model.forward(X)), before)


class TestFusion(unittest.TestCase):
    """The activation classes carry no fusion: ``functional.fusion`` recognises the library's own
    ReLU, GELU and SoftMax by class, and any other activation is applied unfused."""

    def test_activation_is_forward_and_backward_only(self):
        from neural_networks.activations import Activation

        for attribute in ("fused_kernel", "slope_with_forward", "slope_blocks", "backward_from_output"):
            self.assertFalse(hasattr(Activation, attribute), attribute)
        self.assertEqual(Activation.__abstractmethods__, frozenset({"forward", "backward"}))

    def test_fusion_knows_the_library_classes_only(self):
        from neural_networks import functional as F

        kinds = {name: F.fusion(cls()) for name, cls in ACTIVATIONS.items()}
        self.assertEqual(
            kinds,
            {
                "linear": None,
                "sigmoid": None,
                "tanh": None,
                "arctan": None,
                "relu": "relu",
                "softmax": "softmax",
                "gelu": "gelu",
                "gelu_tanh": None,
            },
        )

        class MyReLU(ReLU):  # a subclass may compute something else: never fused
            def forward(self, Z):
                return np.maximum(Z, 0.1 * Z)

        class Lookalike(Linear):
            name = "relu"

        self.assertIsNone(F.fusion(MyReLU()))
        self.assertIsNone(F.fusion(Lookalike()))
        self.assertIsNone(F.fusion(None))

    def test_relu_gradient_from_its_output_equals_backward(self):
        # what the fast kernels rely on when a fused ReLU keeps only its output
        rng = np.random.default_rng(3)
        relu = ReLU()
        for dtype in (np.float64, np.float32):
            for shape in ((5, 4), (2, 3, 3, 4)):
                with self.subTest(dtype=dtype.__name__, shape=shape):
                    Z = randn(rng, *shape, dtype=dtype)
                    Z.flat[::3] = 0.0  # the kink: both give 0 there
                    dY = randn(rng, *shape, dtype=dtype)
                    from_output = relu.backward(relu.forward(Z), dY)
                    np.testing.assert_array_equal(from_output, relu.backward(Z, dY))
                    np.testing.assert_array_equal(from_output, dY * (Z > 0))
                    self.assertEqual(from_output.dtype, dtype)


class TestInitializeActivation(unittest.TestCase):
    def test_names(self):
        expected = {
            "linear": Linear,
            "sigmoid": Sigmoid,
            "tanh": TanH,
            "arctan": ArcTan,
            "relu": ReLU,
            "softmax": SoftMax,
            "gelu": GELU,
            "gelu_tanh": GELUTanh,
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
            ValueError, r"unknown activation 'swish'.*arctan, gelu, gelu_tanh, linear, relu, sigmoid, softmax, tanh"
        ):
            initialize_activation("swish")


if __name__ == "__main__":
    unittest.main()
