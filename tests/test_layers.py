"""Tests of neural_networks.layers (and the kernels in neural_networks.functional they call).

Forward passes are checked against slow reference implementations written here with plain
Python loops straight from the spec's formulas; backward passes against central finite
differences in float64. Where PyTorch is installed, convolution and pooling are also checked
against it as an independent oracle.
"""

import itertools
import unittest
from collections import OrderedDict
from unittest import mock

import numpy as np

from neural_networks import functional as F
from neural_networks.functional import gelu_tables, planes, pool
from neural_networks.activations import GELU, Activation, ReLU, SoftMax, TanH
from neural_networks.layers import (
    LAYERS,
    ActivatedLayer,
    Conv2D,
    Flatten,
    FullyConnected,
    Layer,
    Pool2D,
    initialize_layer,
)
from neural_networks.layers import BatchNorm

from . import torch_oracles as O
from .helpers import (
    distinct_values,
    layer_to_float64,
    numerical_gradient,
    rand_away_from_zero,
    randn,
    relative_error,
)

TOL = 1e-6


# ----------------------------------------------------------------------------- references


def ref_padding(pad, kernel):
    """The spec's pad argument as (rows, cols): "same" = (k-1)//2 per side, "valid" = 0."""
    kh, kw = kernel
    if pad == "same":
        return (kh - 1) // 2, (kw - 1) // 2
    if pad == "valid":
        return 0, 0
    if isinstance(pad, int):
        return pad, pad
    return tuple(pad)


def ref_out_size(size, k, p, stride):
    return (size + 2 * p - k) // stride + 1


def ref_zero_pad(X, ph, pw):
    n, h, w, c = X.shape
    Xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=np.float64)
    Xp[:, ph : ph + h, pw : pw + w, :] = X
    return Xp


def ref_conv2d(X, W, b, stride, pad):
    """Z[n, r, s, f] = sum_{i,j,c} W[i,j,c,f] * Xpad[n, r*stride+i, s*stride+j, c] + b[f]."""
    kh, kw, c_in, n_f = W.shape
    n, h, w, _ = X.shape
    ph, pw = ref_padding(pad, (kh, kw))
    Xp = ref_zero_pad(X, ph, pw)
    ho, wo = ref_out_size(h, kh, ph, stride), ref_out_size(w, kw, pw, stride)
    Z = np.zeros((n, ho, wo, n_f))
    for e in range(n):
        for r in range(ho):
            for s in range(wo):
                for f in range(n_f):
                    total = 0.0
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(c_in):
                                total += W[i, j, c, f] * Xp[e, r * stride + i, s * stride + j, c]
                    Z[e, r, s, f] = total + b[0, f]
    return Z


def ref_pool2d(X, kernel, stride, pad, mode):
    """Max or average (sum / (kh*kw)) over zero-padded windows."""
    kh, kw = kernel
    n, h, w, c_in = X.shape
    ph, pw = ref_padding(pad, kernel)
    Xp = ref_zero_pad(X, ph, pw)
    ho, wo = ref_out_size(h, kh, ph, stride), ref_out_size(w, kw, pw, stride)
    Y = np.zeros((n, ho, wo, c_in))
    for e in range(n):
        for r in range(ho):
            for s in range(wo):
                for c in range(c_in):
                    window = [Xp[e, r * stride + i, s * stride + j, c] for i in range(kh) for j in range(kw)]
                    Y[e, r, s, c] = max(window) if mode == "max" else sum(window) / (kh * kw)
    return Y


def ref_maxpool_backward(X, dY, kernel, stride, pad):
    """Each window's gradient goes to its first maximum in row-major window order."""
    kh, kw = kernel
    n, h, w, c_in = X.shape
    ph, pw = ref_padding(pad, kernel)
    Xp = ref_zero_pad(X, ph, pw)
    dXp = np.zeros_like(Xp)
    _, ho, wo, _ = dY.shape
    for e in range(n):
        for r in range(ho):
            for s in range(wo):
                for c in range(c_in):
                    best, where = None, None
                    for i in range(kh):
                        for j in range(kw):
                            v = Xp[e, r * stride + i, s * stride + j, c]
                            if best is None or v > best:
                                best, where = v, (r * stride + i, s * stride + j)
                    dXp[e, where[0], where[1], c] += dY[e, r, s, c]
    return dXp[:, ph : ph + h, pw : pw + w, :]


# ----------------------------------------------------------------------------- helpers


def build(layer, X, rng, random_bias=True):
    """Run one forward pass to create the parameters, then make them float64 (with a
    non-zero bias so that bias bugs show)."""
    layer.rng = np.random.default_rng(int(rng.integers(1 << 30)))
    layer.forward(X)
    layer_to_float64(layer)
    if random_bias and "b" in layer.parameters:
        layer.parameters["b"] = rng.standard_normal(layer.parameters["b"].shape)
    return layer


def gradient_errors(layer, X, rng):
    """Relative errors of dX and of every parameter gradient against finite differences."""
    Y = layer.forward(X)
    dY = randn(rng, *Y.shape)
    dX = layer.backward(dY)
    analytic = {k: g.copy() for k, g in layer.gradients.items()}
    errors = {"X": relative_error(dX, numerical_gradient(layer.forward, X.copy(), dY))}
    for key in list(layer.parameters):
        value = layer.parameters[key]
        num = numerical_gradient(layer.forward_with_param(key, X), value, dY)
        errors[key] = relative_error(analytic[key], num)
    return errors


# 54 geometries: every stride x pad x kernel, cycling batch size and channel counts.
CONV_CASES = [
    dict(stride=stride, pad=pad, kernel=kernel, n=(1, 3)[k % 2], c=(1, 2, 5)[k % 3], f=(2, 1, 3)[k % 3], h=7, w=8)
    for k, (stride, pad, kernel) in enumerate(
        itertools.product((1, 2, 3), ("same", "valid", 0, 1, 2, (1, 2)), ((3, 3), (2, 3), (3, 1)))
    )
]

POOL_CASES = [
    dict(stride=stride, pad=pad, kernel=kernel, n=(1, 3)[k % 2], c=(1, 2, 5)[k % 3], h=7, w=8)
    for k, (stride, pad, kernel) in enumerate(
        itertools.product((1, 2, 3), ("same", "valid", 0, 1, 2, (1, 2)), ((2, 2), (3, 3), (2, 3), (3, 1)))
    )
]


# ----------------------------------------------------------------------------- reference self-check


class TestReferences(unittest.TestCase):
    """The slow references themselves, on hand-computed examples."""

    def test_conv_reference_by_hand(self):
        X = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
        W = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
        Z = ref_conv2d(X, W, np.array([[0.5]]), 1, "valid")
        np.testing.assert_array_equal(Z[0, :, :, 0], [[-3.5, -3.5], [-3.5, -3.5]])

    def test_pool_reference_by_hand(self):
        X = np.array([[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0]]).reshape(1, 2, 4, 1)
        np.testing.assert_array_equal(ref_pool2d(X, (2, 2), 2, 0, "max")[0, :, :, 0], [[4.0, 5.0]])
        np.testing.assert_array_equal(ref_pool2d(X, (2, 2), 2, 0, "average")[0, :, :, 0], [[2.5, 1.75]])


# ----------------------------------------------------------------------------- FullyConnected


class TestFullyConnected(unittest.TestCase):
    def test_init_params(self):
        rng = np.random.default_rng(0)
        layer = FullyConnected(n_out=7)
        layer.rng = rng
        X = randn(rng, 5, 4, dtype=np.float32)
        layer.forward(X)
        self.assertEqual(layer.n_in, 4)
        self.assertEqual(layer.n_out, 7)
        self.assertEqual(list(layer.parameters), ["W", "b"])
        self.assertEqual(list(layer.gradients), list(layer.parameters))
        self.assertEqual(layer.parameters["W"].shape, (4, 7))
        self.assertEqual(layer.parameters["b"].shape, (1, 7))
        for key in ("W", "b"):
            self.assertEqual(layer.parameters[key].dtype, np.float32)
            self.assertEqual(layer.gradients[key].shape, layer.parameters[key].shape)
        np.testing.assert_array_equal(layer.parameters["b"], 0.0)
        # default xavier_uniform, linear gain: |W| <= sqrt(6 / (n_in + n_out)), not all zero
        limit = np.sqrt(6.0 / (4 + 7))
        W = layer.parameters["W"]
        self.assertTrue(np.all(np.abs(W) <= limit + 1e-7))
        self.assertGreater(np.abs(W).max(), 0.1 * limit)

    def test_init_is_seeded(self):
        X = np.ones((2, 6), dtype=np.float32)
        Ws = []
        for seed in (3, 3, 4):
            layer = FullyConnected(5)
            layer.rng = np.random.default_rng(seed)
            layer.forward(X)
            Ws.append(layer.parameters["W"])
        np.testing.assert_array_equal(Ws[0], Ws[1])
        self.assertFalse(np.array_equal(Ws[0], Ws[2]))

    def test_forward(self):
        rng = np.random.default_rng(1)
        for activation, fn in (
            ("linear", lambda Z: Z),
            ("relu", lambda Z: np.maximum(Z, 0)),
            ("tanh", np.tanh),
            ("sigmoid", lambda Z: 1 / (1 + np.exp(-Z))),
            ("softmax", lambda Z: np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)),
        ):
            with self.subTest(activation=activation):
                X = randn(rng, 6, 4)
                layer = build(FullyConnected(3, activation=activation), X, rng)
                W, b = layer.parameters["W"], layer.parameters["b"]
                expected = np.zeros((6, 3))
                for n in range(6):
                    for j in range(3):
                        expected[n, j] = sum(X[n, i] * W[i, j] for i in range(4)) + b[0, j]
                np.testing.assert_allclose(layer.forward(X), fn(expected), rtol=1e-12, atol=1e-14)

    def test_dtypes(self):
        rng = np.random.default_rng(2)
        layer = FullyConnected(3)
        layer.rng = rng
        Y32 = layer.forward(randn(rng, 4, 5, dtype=np.float32))
        self.assertEqual(Y32.dtype, np.float32)
        layer.backward(np.ones_like(Y32))
        self.assertEqual(layer.gradients["W"].dtype, np.float32)
        Y64 = layer.forward(randn(rng, 4, 5))
        self.assertEqual(Y64.dtype, np.float64)
        dX = layer.backward(np.ones_like(Y64))
        self.assertEqual(dX.dtype, np.float64)
        self.assertEqual(layer.parameters["W"].dtype, np.float32)  # parameters keep their dtype
        self.assertEqual(layer.gradients["W"].dtype, np.float32)
        Yu8 = layer.forward(rng.integers(0, 256, size=(4, 5)).astype(np.uint8))
        self.assertEqual(Yu8.dtype, np.float32)

    def test_backward(self):
        rng = np.random.default_rng(3)
        for activation, m, n_in, n_out in (
            ("linear", 1, 3, 2),
            ("linear", 5, 4, 3),
            ("tanh", 4, 3, 5),
            ("sigmoid", 3, 6, 2),
            ("arctan", 2, 3, 3),
            ("softmax", 4, 5, 3),
            ("relu", 4, 3, 4),
        ):
            with self.subTest(activation=activation, m=m, n_in=n_in, n_out=n_out):
                X = randn(rng, m, n_in)
                layer = build(FullyConnected(n_out, activation=activation), X, rng)
                if activation == "relu":  # keep pre-activations away from the kink
                    layer.parameters["b"] = rng.choice([-1.0, 1.0], size=(1, n_out)) * 3.0
                    X = rand_away_from_zero(rng, m, n_in) * 0.1
                errors = gradient_errors(layer, X, rng)
                for key, err in errors.items():
                    self.assertLess(err, TOL, f"d{key}")
                self.assertEqual(set(layer.gradients), {"W", "b"})

    def test_output_scale(self):
        rng = np.random.default_rng(7)
        X = randn(rng, 4, 5)
        for activation in ("softmax", "linear", "tanh"):
            with self.subTest(activation=activation):
                layer = build(FullyConnected(3, activation=activation, output_scale=1 / 9), X, rng)
                plain = FullyConnected(3, activation="linear")
                plain.forward(X)
                plain.parameters = layer.parameters
                Z = plain.forward(X) / 9
                expected = {"softmax": F.softmax(Z), "linear": Z, "tanh": np.tanh(Z)}[activation]
                np.testing.assert_allclose(layer.forward(X), expected, rtol=1e-12)
                for key, err in gradient_errors(layer, X, rng).items():
                    self.assertLess(err, TOL, f"d{key}")
        self.assertEqual(FullyConnected(2, output_scale=0.5).config()["output_scale"], 0.5)
        for bad in (0, -1.0, float("inf"), "x"):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "output_scale"):
                FullyConnected(2, output_scale=bad)

    def test_backward_preactivation_skips_activation(self):
        rng = np.random.default_rng(4)
        X = randn(rng, 3, 4)
        layer = build(FullyConnected(5, activation="softmax"), X, rng)
        layer.forward(X)
        dZ = randn(rng, 3, 5)
        dX = layer.backward_preactivation(dZ)
        np.testing.assert_allclose(dX, dZ @ layer.parameters["W"].T, rtol=1e-12)
        np.testing.assert_allclose(layer.gradients["W"], X.T @ dZ, rtol=1e-12)
        np.testing.assert_allclose(layer.gradients["b"], dZ.sum(axis=0, keepdims=True), rtol=1e-12)

    def test_clear_gradients(self):
        rng = np.random.default_rng(5)
        layer = FullyConnected(2)
        layer.rng = rng
        Y = layer.forward(randn(rng, 3, 4, dtype=np.float32))
        layer.backward(np.ones_like(Y))
        self.assertTrue(np.any(layer.gradients["W"] != 0))
        layer.clear_gradients()
        for key, param in layer.parameters.items():
            np.testing.assert_array_equal(layer.gradients[key], 0.0)
            self.assertEqual(layer.gradients[key].shape, param.shape)

    def test_bad_input(self):
        layer = FullyConnected(3)
        with self.assertRaisesRegex(ValueError, r"FullyConnected: expected input of rank 2.*got shape \(2, 3, 4\)"):
            layer.forward(np.zeros((2, 3, 4)))
        with self.assertRaisesRegex(ValueError, r"FullyConnected: expected input of rank 2.*got shape \(4,\)"):
            layer.forward(np.zeros(4))
        with self.assertRaisesRegex(ValueError, r"FullyConnected: got an empty batch"):
            layer.forward(np.zeros((0, 4)))
        layer.forward(np.zeros((2, 5)))
        with self.assertRaisesRegex(ValueError, r"FullyConnected: expected 5 input features.*got 6.*\(2, 6\)"):
            layer.forward(np.zeros((2, 6)))
        with self.assertRaisesRegex(
            ValueError, r"FullyConnected: backward expected dLdY of shape \(2, 3\).*got \(2, 4\)"
        ):
            layer.forward(np.zeros((2, 5)))
            layer.backward(np.zeros((2, 4)))
        with self.assertRaises(TypeError):
            layer.forward(np.array([["a"] * 5]))

    def test_bad_arguments(self):
        for n_out in (0, -1, 2.5, "3", True):
            with (
                self.subTest(n_out=n_out),
                self.assertRaisesRegex(ValueError, r"FullyConnected n_out must be a positive int"),
            ):
                FullyConnected(n_out)
        with self.assertRaisesRegex(ValueError, r"unknown activation 'relux'"):
            FullyConnected(3, activation="relux")
        with self.assertRaisesRegex(ValueError, r"unknown weight initializer 'glorot'.*xavier_uniform"):
            FullyConnected(3, weight_init="glorot")


# ----------------------------------------------------------------------------- Conv2D


class TestConv2D(unittest.TestCase):
    def make(self, case, activation="linear"):
        return Conv2D(
            case["f"], kernel_shape=case["kernel"], activation=activation, stride=case["stride"], pad=case["pad"]
        )

    def test_forward(self):
        rng = np.random.default_rng(10)
        for case in CONV_CASES:
            with self.subTest(**case):
                X = randn(rng, case["n"], case["h"], case["w"], case["c"])
                layer = build(self.make(case), X, rng)
                Y = layer.forward(X)
                expected = ref_conv2d(X, layer.parameters["W"], layer.parameters["b"], case["stride"], case["pad"])
                self.assertEqual(Y.shape, expected.shape)
                np.testing.assert_allclose(Y, expected, rtol=1e-10, atol=1e-12)

    def test_forward_with_activation(self):
        rng = np.random.default_rng(11)
        X = randn(rng, 2, 5, 5, 3)
        for activation, fn in (("relu", lambda Z: np.maximum(Z, 0)), ("tanh", np.tanh)):
            with self.subTest(activation=activation):
                layer = build(Conv2D(4, (3, 3), activation=activation, stride=1, pad="same"), X, rng)
                Z = ref_conv2d(X, layer.parameters["W"], layer.parameters["b"], 1, "same")
                np.testing.assert_allclose(layer.forward(X), fn(Z), rtol=1e-10, atol=1e-12)

    def test_output_shape(self):
        for (h, w), kernel, stride, pad, expected in (
            ((28, 28), (3, 3), 1, "same", (28, 28)),
            ((28, 28), (5, 5), 1, "same", (28, 28)),
            ((28, 28), (3, 3), 2, "same", (14, 14)),
            ((28, 28), (4, 4), 1, "same", (27, 27)),  # (k-1)//2 = 1 per side for even k
            ((9, 10), (3, 2), 3, "valid", (3, 3)),
            ((5, 5), (5, 5), 1, "valid", (1, 1)),
            ((6, 7), (2, 3), 2, (2, 1), (5, 4)),
        ):
            with self.subTest(h=h, w=w, kernel=kernel, stride=stride, pad=pad):
                layer = Conv2D(2, kernel, activation="linear", stride=stride, pad=pad)
                layer.rng = np.random.default_rng(0)
                Y = layer.forward(np.zeros((1, h, w, 1), dtype=np.float32))
                self.assertEqual(Y.shape, (1, *expected, 2))

    def test_init_params(self):
        layer = Conv2D(6, kernel_shape=(3, 2), activation="relu")
        layer.rng = np.random.default_rng(1)
        layer.forward(np.zeros((2, 5, 5, 4), dtype=np.float32))
        self.assertEqual(layer.parameters["W"].shape, (3, 2, 4, 6))
        self.assertEqual(layer.parameters["b"].shape, (1, 6))
        self.assertEqual(layer.n_in, 4)
        self.assertEqual(layer.n_out, 6)
        self.assertEqual(list(layer.gradients), list(layer.parameters))
        for key in ("W", "b"):
            self.assertEqual(layer.parameters[key].dtype, np.float32)
        # xavier_uniform with the ReLU gain sqrt(2): fans 3*2*4 = 24 and 3*2*6 = 36
        limit = np.sqrt(2.0) * np.sqrt(6.0 / (24 + 36))
        self.assertTrue(np.all(np.abs(layer.parameters["W"]) <= limit + 1e-6))

    def test_dtypes(self):
        rng = np.random.default_rng(2)
        layer = Conv2D(3, (3, 3), activation="linear")
        layer.rng = rng
        Y = layer.forward(randn(rng, 2, 4, 4, 2, dtype=np.float32))
        self.assertEqual(Y.dtype, np.float32)
        self.assertEqual(layer.backward(np.ones_like(Y)).dtype, np.float32)
        Y = layer.forward(randn(rng, 2, 4, 4, 2))
        self.assertEqual(Y.dtype, np.float64)
        self.assertEqual(layer.backward(np.ones_like(Y)).dtype, np.float64)
        self.assertEqual(layer.gradients["W"].dtype, np.float32)
        self.assertEqual(layer.forward(np.zeros((1, 4, 4, 2), dtype=np.uint8)).dtype, np.float32)

    def test_backward(self):
        rng = np.random.default_rng(12)
        cases = [
            dict(n=1, h=5, w=5, c=1, f=1, kernel=(3, 3), stride=1, pad="same", activation="linear"),
            dict(n=2, h=5, w=6, c=2, f=3, kernel=(2, 3), stride=2, pad="valid", activation="linear"),
            dict(n=3, h=7, w=5, c=2, f=2, kernel=(3, 1), stride=3, pad=1, activation="linear"),
            dict(n=2, h=4, w=5, c=5, f=2, kernel=(3, 3), stride=1, pad=2, activation="linear"),
            dict(n=1, h=6, w=7, c=3, f=2, kernel=(2, 3), stride=3, pad=(1, 2), activation="linear"),
            dict(n=2, h=5, w=5, c=2, f=3, kernel=(3, 3), stride=2, pad="same", activation="tanh"),
            dict(n=2, h=4, w=4, c=2, f=2, kernel=(2, 2), stride=1, pad=0, activation="sigmoid"),
            dict(n=1, h=8, w=8, c=1, f=2, kernel=(5, 5), stride=3, pad="same", activation="linear"),
        ]
        for case in cases:
            with self.subTest(**case):
                X = randn(rng, case["n"], case["h"], case["w"], case["c"])
                layer = build(self.make(case, activation=case["activation"]), X, rng)
                errors = gradient_errors(layer, X, rng)
                for key, err in errors.items():
                    self.assertLess(err, TOL, f"d{key}")

    def test_backward_relu(self):
        """The default ReLU activation, with the bias pushing pre-activations off the kink."""
        rng = np.random.default_rng(13)
        X = randn(rng, 2, 4, 4, 2) * 0.05
        layer = build(Conv2D(3, (3, 3), activation="relu", stride=1, pad="same"), X, rng)
        layer.parameters["b"] = np.array([[1.0, -1.0, 2.0]])
        errors = gradient_errors(layer, X, rng)
        for key, err in errors.items():
            self.assertLess(err, TOL, f"d{key}")
        Y = layer.forward(X)
        self.assertTrue(np.all(Y[..., 1] == 0) and np.all(Y[..., 0] > 0))

    def test_backward_matches_loop_formula(self):
        """dW[i,j,c,f] = sum_{n,r,s} dZ[n,r,s,f] * Xpad[n, r*st+i, s*st+j, c] and db = sum dZ,
        written out with loops (an oracle independent of finite differences)."""
        rng = np.random.default_rng(14)
        X = randn(rng, 2, 5, 6, 2)
        stride, pad, kernel = 2, (1, 2), (3, 2)
        layer = build(Conv2D(3, kernel, activation="linear", stride=stride, pad=pad), X, rng)
        Z = layer.forward(X)
        dZ = randn(rng, *Z.shape)
        dX = layer.backward(dZ)
        Xp = ref_zero_pad(X, *pad)
        W = layer.parameters["W"]
        dW = np.zeros_like(W)
        dXp = np.zeros_like(Xp)
        n, ho, wo, nf = Z.shape
        for e, r, s, f in itertools.product(range(n), range(ho), range(wo), range(nf)):
            for i, j in itertools.product(range(kernel[0]), range(kernel[1])):
                dW[i, j, :, f] += dZ[e, r, s, f] * Xp[e, r * stride + i, s * stride + j, :]
                dXp[e, r * stride + i, s * stride + j, :] += dZ[e, r, s, f] * W[i, j, :, f]
        np.testing.assert_allclose(layer.gradients["W"], dW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.gradients["b"], dZ.sum(axis=(0, 1, 2))[None, :], rtol=1e-10)
        np.testing.assert_allclose(dX, dXp[:, 1:6, 2:8, :], rtol=1e-10, atol=1e-12)

    def test_bad_input(self):
        layer = Conv2D(2, (3, 3))
        with self.assertRaisesRegex(ValueError, r"Conv2D: expected input of rank 4.*got shape \(5, 5, 1\)"):
            layer.forward(np.zeros((5, 5, 1)))
        layer.forward(np.zeros((1, 5, 5, 3), dtype=np.float32))
        with self.assertRaisesRegex(ValueError, r"Conv2D: expected 3 input channels.*got 2.*\(1, 5, 5, 2\)"):
            layer.forward(np.zeros((1, 5, 5, 2), dtype=np.float32))
        with self.assertRaisesRegex(ValueError, r"Conv2D: backward expected dLdY of shape \(1, 5, 5, 2\)"):
            layer.forward(np.zeros((1, 5, 5, 3), dtype=np.float32))
            layer.backward(np.zeros((1, 4, 4, 2)))
        big = Conv2D(2, (5, 5), pad="valid")
        with self.assertRaisesRegex(
            ValueError, r"Conv2D: kernel \(5, 5\) is larger than the padded input.*4 rows.*\(1, 4, 6, 1\)"
        ):
            big.forward(np.zeros((1, 4, 6, 1)))
        with self.assertRaisesRegex(ValueError, r"Conv2D: kernel \(5, 5\) is larger than the padded input.*3 cols"):
            big.forward(np.zeros((1, 6, 3, 1)))
        # with enough padding the same kernel fits
        self.assertEqual(Conv2D(2, (5, 5), pad=1).forward(np.zeros((1, 3, 3, 1))).shape, (1, 1, 1, 2))

    def test_bad_arguments(self):
        for stride in (0, -2, 1.5, "2", None):
            with (
                self.subTest(stride=stride),
                self.assertRaisesRegex(ValueError, r"Conv2D stride must be a positive int"),
            ):
                Conv2D(2, stride=stride)
        for pad in ("full", -1, (1, 2, 3), (1, -1), 1.5, (1.0, 2), True, None):
            with self.subTest(pad=pad), self.assertRaisesRegex(ValueError, r"pad must be"):
                Conv2D(2, pad=pad)
        for kernel in ((0, 3), (3,), "3x3", (3, 3, 3), -1, (2.0, 2)):
            with self.subTest(kernel=kernel), self.assertRaisesRegex(ValueError, r"Conv2D kernel_shape must be"):
                Conv2D(2, kernel_shape=kernel)
        with self.assertRaisesRegex(ValueError, r"Conv2D n_out must be a positive int"):
            Conv2D(0)
        with self.assertRaisesRegex(ValueError, r"unknown activation"):
            Conv2D(2, activation="swishy")

    def test_int_kernel_is_square(self):
        layer = Conv2D(2, kernel_shape=3)
        self.assertEqual(layer.kernel_shape, (3, 3))
        self.assertEqual(layer.pad, (1, 1))


# ----------------------------------------------------------------------------- Pool2D


class TestConv2DPatchKeeping(unittest.TestCase):
    """Thin inputs take the channel-plane path and keep its patches for the backward pass; the
    others take im2col and regather theirs. Forced the other way, each gives the same gradients
    to float32 rounding."""

    def run_step(self, c: int, relu: bool):
        rng = np.random.default_rng(c)
        np.random.seed(c)  # the weights: a layer without a seeded model draws from the global state
        layer = Conv2D(5, (3, 3), activation="relu" if relu else "linear", pad="same")
        X = rng.standard_normal((3, 6, 7, c)).astype(np.float32)
        Y = layer.forward(X)  # training mode, the default
        dX = layer.backward(rng.standard_normal(Y.shape).astype(np.float32))
        return layer, dX

    def test_only_thin_inputs_keep_their_patches(self):
        for c in (1, 3, planes.THIN_MAX_CHANNELS, planes.THIN_MAX_CHANNELS + 1, 16):
            for relu in (False, True):
                with self.subTest(c=c, relu=relu):
                    layer, dX = self.run_step(c, relu)
                    kept = layer.cache["conv"][0] is not None
                    self.assertEqual(kept, c <= planes.THIN_MAX_CHANNELS)
                    if kept:
                        self.assertEqual(layer.cache["conv"][0].shape, planes.plane_patches_shape(3, (6, 7), (3, 3), c))
                    with mock.patch.object(planes, "THIN_MAX_CHANNELS", 0 if kept else 10**9):
                        other, dX_other = self.run_step(c, relu)  # the other way
                    self.assertNotEqual(other.cache["conv"][0] is not None, kept)
                    np.testing.assert_allclose(dX, dX_other, rtol=1e-5, atol=1e-6)
                    for name in ("W", "b"):
                        np.testing.assert_allclose(layer.gradients[name], other.gradients[name], rtol=1e-5, atol=1e-5)


class TestWithoutBias(unittest.TestCase):
    """``use_bias=False``: no ``b`` parameter or gradient, the biased formula with b = 0, exact gradients."""

    def layers(self):
        return (
            ("fc", FullyConnected(3, activation="tanh", use_bias=False), (4, 5)),
            ("conv", Conv2D(3, (3, 3), activation="tanh", stride=1, pad="same", use_bias=False), (2, 5, 5, 2)),
            (
                "conv stride 2",
                Conv2D(2, (2, 3), activation="linear", stride=2, pad=(1, 0), use_bias=False),
                (2, 6, 7, 3),
            ),
        )

    def test_parameters_and_forward(self):
        rng = np.random.default_rng(30)
        for what, layer, shape in self.layers():
            with self.subTest(what):
                X = randn(rng, *shape)
                build(layer, X, rng)
                self.assertEqual(list(layer.parameters), ["W"])
                Y = layer.forward(X)
                self.assertEqual(list(layer.gradients), ["W"])
                W = layer.parameters["W"]
                if X.ndim == 2:
                    Z = X @ W
                else:
                    Z = ref_conv2d(X, W, np.zeros((1, W.shape[-1])), layer.stride, layer.pad_arg)
                np.testing.assert_allclose(Y, layer.activation(Z), rtol=1e-10, atol=1e-12)

    def test_backward(self):
        rng = np.random.default_rng(31)
        for what, layer, shape in self.layers():
            with self.subTest(what):
                X = randn(rng, *shape)
                errors = gradient_errors(build(layer, X, rng), X, rng)
                self.assertEqual(set(errors), {"X", "W"})
                for key, err in errors.items():
                    self.assertLess(err, TOL, f"d{key}")

    def test_config_and_bad_values(self):
        for what, layer, _ in self.layers():
            with self.subTest(what):
                self.assertIs(layer.config()["use_bias"], False)
                self.assertIs(initialize_layer(**layer.config()).use_bias, False)
        for bad in ("false", 0, None):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, r"Conv2D use_bias must be true or false; got"):
                    Conv2D(2, use_bias=bad)
                with self.assertRaisesRegex(ValueError, r"FullyConnected use_bias must be true or false"):
                    FullyConnected(2, use_bias=bad)


class TestPool2D(unittest.TestCase):
    def test_forward(self):
        rng = np.random.default_rng(20)
        for mode in ("max", "average"):
            for case in POOL_CASES:
                with self.subTest(mode=mode, **case):
                    X = randn(rng, case["n"], case["h"], case["w"], case["c"])
                    layer = Pool2D(case["kernel"], mode=mode, stride=case["stride"], pad=case["pad"])
                    Y = layer.forward(X)
                    expected = ref_pool2d(X, case["kernel"], case["stride"], case["pad"], mode)
                    self.assertEqual(Y.shape, expected.shape)
                    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-15)
                    self.assertEqual(layer.n_in, case["c"])
                    self.assertEqual(layer.n_out, case["c"])

    def test_blocks_of_images(self):
        """Pooling a few images at a time (as large batches are) gives exactly the one-block result."""
        rng = np.random.default_rng(23)
        X = randn(rng, 5, 7, 8, 3)
        for mode in ("max", "average"):
            for kernel, stride, pad in (((2, 2), 2, 0), ((3, 3), 1, 1), ((2, 3), 2, (1, 2))):
                with self.subTest(mode=mode, kernel=kernel, stride=stride, pad=pad):
                    whole = Pool2D(kernel, mode=mode, stride=stride, pad=pad)
                    Y = whole.forward(X)
                    dY = randn(rng, *Y.shape)
                    dX = whole.backward(dY)
                    image_bytes = (X[0].size + 40 * X.shape[3]) * X.itemsize  # one or two padded images per block
                    for block_bytes in (1, image_bytes):
                        with mock.patch.object(pool, "POOL_BLOCK_BYTES", block_bytes):
                            blocked = Pool2D(kernel, mode=mode, stride=stride, pad=pad)
                            np.testing.assert_array_equal(blocked.forward(X), Y)
                            np.testing.assert_array_equal(blocked.backward(dY), dX)
                    np.testing.assert_allclose(Y, ref_pool2d(X, kernel, stride, pad, mode), rtol=1e-12, atol=1e-15)

    def test_forward_by_hand(self):
        X = np.array([[1, 2, 5, 0], [3, 4, 1, 1], [-1, -2, 0, 8], [-3, -4, 2, 2]], dtype=np.float64)
        X = X.reshape(1, 4, 4, 1)
        Y = Pool2D((2, 2), "max", stride=2).forward(X)
        np.testing.assert_array_equal(Y[0, :, :, 0], [[4, 5], [-1, 8]])
        Y = Pool2D((2, 2), "average", stride=2).forward(X)
        np.testing.assert_array_equal(Y[0, :, :, 0], [[2.5, 1.75], [-2.5, 3.0]])
        # zero padding takes part in max and average (the spec pads with zeros)
        Y = Pool2D((2, 2), "max", stride=2, pad=1).forward(-np.ones((1, 2, 2, 1)))
        np.testing.assert_array_equal(Y[0, :, :, 0], np.zeros((2, 2)))
        Y = Pool2D((2, 2), "average", stride=2, pad=1).forward(np.ones((1, 2, 2, 1)))
        np.testing.assert_array_equal(Y[0, :, :, 0], np.full((2, 2), 0.25))

    def test_backward(self):
        rng = np.random.default_rng(21)
        cases = [
            dict(n=1, h=4, w=4, c=1, kernel=(2, 2), stride=2, pad=0),
            dict(n=3, h=5, w=6, c=2, kernel=(3, 3), stride=1, pad="same"),
            dict(n=2, h=7, w=5, c=5, kernel=(2, 3), stride=3, pad=1),
            dict(n=1, h=6, w=6, c=2, kernel=(3, 1), stride=2, pad=(1, 2)),
            dict(n=2, h=5, w=5, c=1, kernel=(3, 3), stride=2, pad=2),
            dict(n=3, h=4, w=5, c=2, kernel=(2, 2), stride=1, pad="valid"),
        ]
        for mode in ("max", "average"):
            for case in cases:
                with self.subTest(mode=mode, **case):
                    shape = (case["n"], case["h"], case["w"], case["c"])
                    X = distinct_values(rng, *shape) if mode == "max" else randn(rng, *shape)
                    layer = Pool2D(case["kernel"], mode=mode, stride=case["stride"], pad=case["pad"])
                    Y = layer.forward(X)
                    dY = randn(rng, *Y.shape)
                    dX = layer.backward(dY)
                    self.assertEqual(dX.shape, X.shape)
                    self.assertEqual(layer.parameters, {})
                    num = numerical_gradient(layer.forward, X.copy(), dY)
                    self.assertLess(relative_error(dX, num), TOL)
                    if mode == "max":
                        ref = ref_maxpool_backward(X, dY, case["kernel"], case["stride"], case["pad"])
                        np.testing.assert_allclose(dX, ref, rtol=1e-12, atol=1e-15)

    def test_max_ties_send_gradient_to_first_maximum(self):
        # zeros, as after a ReLU: every window is a tie
        X = np.maximum(-np.abs(randn(np.random.default_rng(22), 2, 4, 6, 3)), 0.0)
        layer = Pool2D((2, 2), "max", stride=2)
        layer.forward(X)
        dX = layer.backward(np.ones((2, 2, 3, 3)))
        # exactly one element per window gets the gradient: the first in row-major order
        windows = dX.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 2, 3, 3, 4)
        np.testing.assert_array_equal(np.count_nonzero(windows, axis=-1), 1)
        np.testing.assert_array_equal(windows[..., 0], 1.0)
        np.testing.assert_array_equal(dX.sum(), 2 * 2 * 3 * 3)
        # overlapping windows (stride 1) and partial ties against the loop reference
        rng = np.random.default_rng(23)
        for kernel, stride, pad in (((2, 2), 1, 0), ((3, 3), 1, "same"), ((2, 3), 2, 1)):
            with self.subTest(kernel=kernel, stride=stride, pad=pad):
                X = np.maximum(rng.integers(-2, 3, size=(2, 5, 5, 2)).astype(np.float64), 0)
                layer = Pool2D(kernel, "max", stride=stride, pad=pad)
                Y = layer.forward(X)
                dY = randn(rng, *Y.shape)
                np.testing.assert_allclose(
                    layer.backward(dY), ref_maxpool_backward(X, dY, kernel, stride, pad), rtol=1e-12, atol=1e-15
                )

    def test_max_large_window(self):
        """Windows of 256 cells or more (the argmax index no longer fits in a byte)."""
        rng = np.random.default_rng(25)
        X = distinct_values(rng, 1, 17, 18, 2)
        layer = Pool2D((16, 17), "max", stride=1)
        Y = layer.forward(X)
        np.testing.assert_array_equal(Y, ref_pool2d(X, (16, 17), 1, 0, "max"))
        dY = randn(rng, *Y.shape)
        np.testing.assert_allclose(layer.backward(dY), ref_maxpool_backward(X, dY, (16, 17), 1, 0), rtol=1e-12)

    def test_average_backward_value(self):
        layer = Pool2D((2, 3), "average", stride=(1))
        layer.forward(np.zeros((1, 2, 3, 1)))
        dX = layer.backward(np.full((1, 1, 1, 1), 6.0))
        np.testing.assert_allclose(dX, np.ones((1, 2, 3, 1)))

    def test_dtypes(self):
        rng = np.random.default_rng(24)
        for mode in ("max", "average"):
            for dtype in (np.float32, np.float64):
                with self.subTest(mode=mode, dtype=dtype):
                    layer = Pool2D((2, 2), mode, stride=2)
                    Y = layer.forward(randn(rng, 2, 4, 4, 3, dtype=dtype))
                    self.assertEqual(Y.dtype, dtype)
                    self.assertEqual(layer.backward(np.ones_like(Y)).dtype, dtype)

    def test_bad_input(self):
        layer = Pool2D((2, 2), stride=2)
        with self.assertRaisesRegex(ValueError, r"Pool2D: expected input of rank 4.*got shape \(4, 4\)"):
            layer.forward(np.zeros((4, 4)))
        with self.assertRaisesRegex(ValueError, r"Pool2D: kernel \(3, 3\) is larger than the padded input.*2 rows"):
            Pool2D((3, 3)).forward(np.zeros((1, 2, 5, 1)))
        layer.forward(np.zeros((1, 4, 4, 1)))
        with self.assertRaisesRegex(
            ValueError, r"Pool2D: backward expected dLdY of shape \(1, 2, 2, 1\).*got \(1, 4, 4, 1\)"
        ):
            layer.backward(np.zeros((1, 4, 4, 1)))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"Pool2D mode must be one of max, average; got 'min'"):
            Pool2D((2, 2), mode="min")
        for stride in (0, 1.0, -1):
            with (
                self.subTest(stride=stride),
                self.assertRaisesRegex(ValueError, r"Pool2D stride must be a positive int"),
            ):
                Pool2D((2, 2), stride=stride)
        for kernel in ((0, 2), "2", (2, 2, 2)):
            with self.subTest(kernel=kernel), self.assertRaisesRegex(ValueError, r"Pool2D kernel_shape must be"):
                Pool2D(kernel)
        with self.assertRaisesRegex(ValueError, r"pad must be"):
            Pool2D((2, 2), pad="full")


# ----------------------------------------------------------------------------- Flatten


class TestFlatten(unittest.TestCase):
    def test_forward(self):
        X = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
        for keep_dim, shape in (("first", (2, 60)), ("last", (24, 5)), (-1, (1, 120))):
            with self.subTest(keep_dim=keep_dim):
                layer = Flatten(keep_dim=keep_dim)
                Y = layer.forward(X)
                self.assertEqual(Y.shape, shape)
                np.testing.assert_array_equal(Y.ravel(), X.ravel())  # row-major order kept
        layer = Flatten()
        layer.forward(X)
        self.assertEqual((layer.n_in, layer.n_out), (60, 60))
        self.assertEqual(Flatten().forward(np.zeros((3, 4), dtype=np.uint8)).dtype, np.float32)

    def test_backward(self):
        rng = np.random.default_rng(30)
        for keep_dim in ("first", "last", -1):
            with self.subTest(keep_dim=keep_dim):
                X = randn(rng, 2, 3, 2, 4)
                layer = Flatten(keep_dim=keep_dim)
                Y = layer.forward(X)
                dY = randn(rng, *Y.shape)
                dX = layer.backward(dY)
                self.assertEqual(dX.shape, X.shape)
                np.testing.assert_array_equal(dX.ravel(), dY.ravel())
                self.assertLess(relative_error(dX, numerical_gradient(layer.forward, X.copy(), dY)), TOL)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, r"Flatten keep_dim must be 'first', 'last' or -1; got 'middle'"):
            Flatten(keep_dim="middle")
        with self.assertRaisesRegex(ValueError, r"Flatten: expected a non-empty array"):
            Flatten().forward(np.zeros((0, 3)))
        layer = Flatten()
        layer.forward(np.zeros((2, 3, 4)))
        with self.assertRaisesRegex(ValueError, r"Flatten: backward got dLdY of shape \(2, 11\)"):
            layer.backward(np.zeros((2, 11)))


# ----------------------------------------------------------------------------- composition


class TestChain(unittest.TestCase):
    def test_conv_pool_flatten_fc_backward(self):
        """Gradients through a small stack of layers, checked end to end."""
        rng = np.random.default_rng(40)
        X = randn(rng, 2, 6, 6, 2)
        layers = [
            Conv2D(3, (3, 3), activation="tanh", stride=1, pad="same"),
            Pool2D((2, 2), "average", stride=2),
            Flatten(),
            FullyConnected(4, activation="softmax"),
        ]
        H = X
        for layer in layers:
            layer.rng = np.random.default_rng(int(rng.integers(1000)))
            H = layer.forward(H)
            layer_to_float64(layer)

        def forward(x):
            for layer in layers:
                x = layer.forward(x)
            return x

        Y = forward(X)
        dY = randn(rng, *Y.shape)
        d = dY
        for layer in reversed(layers):
            d = layer.backward(d)
        self.assertLess(relative_error(d, numerical_gradient(forward, X.copy(), dY)), TOL)


# ----------------------------------------------------------------------------- factory


class TestInitializeLayer(unittest.TestCase):
    def test_names(self):
        self.assertEqual(set(LAYERS), {"fully_connected", "conv2d", "pool2d", "flatten", "batchnorm", "dropout"})
        fc = initialize_layer("fully_connected", n_out=5, activation="relu")
        self.assertIsInstance(fc, FullyConnected)
        self.assertEqual((fc.n_out, fc.activation.name), (5, "relu"))
        conv = initialize_layer("conv2d", n_out=4, kernel_shape=(3, 2), stride=2, pad="valid", activation="tanh")
        self.assertIsInstance(conv, Conv2D)
        self.assertEqual((conv.n_out, conv.kernel_shape, conv.stride, conv.pad), (4, (3, 2), 2, (0, 0)))
        self.assertIsInstance(conv.activation, TanH)
        pool = initialize_layer("pool2d", kernel_shape=(3, 3), mode="average", stride=3, pad=1)
        self.assertIsInstance(pool, Pool2D)
        self.assertEqual((pool.kernel_shape, pool.mode, pool.stride, pool.pad), ((3, 3), "average", 3, (1, 1)))
        self.assertIsInstance(initialize_layer("flatten", keep_dim="last"), Flatten)
        self.assertIsInstance(initialize_layer("Conv2D", n_out=1), Conv2D)

    def test_defaults(self):
        conv = initialize_layer("conv2d", n_out=2)
        self.assertIsInstance(conv.activation, ReLU)
        self.assertEqual((conv.kernel_shape, conv.stride, conv.pad), ((3, 3), 1, (1, 1)))
        self.assertIsInstance(initialize_layer("fully_connected", n_out=3, activation="softmax").activation, SoftMax)

    def test_config_round_trip(self):
        for layer in (
            FullyConnected(3, activation="tanh", weight_init="he_normal"),
            Conv2D(4, (2, 3), activation="sigmoid", stride=2, pad=(1, 0)),
            Pool2D((3, 2), mode="average", stride=2, pad="same"),
            Flatten(keep_dim=-1),
        ):
            with self.subTest(layer=repr(layer)):
                config = layer.config()
                clone = initialize_layer(**config)
                self.assertIs(type(clone), type(layer))
                self.assertEqual(clone.config(), config)

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(
            ValueError, r"unknown layer 'dense'; valid names: fully_connected, conv2d, pool2d, flatten"
        ):
            initialize_layer("dense", n_out=3)

    def test_bad_arguments_list_valid_arguments(self):
        with self.assertRaisesRegex(
            ValueError, r"bad arguments for layer 'conv2d'.*valid arguments: n_out, kernel_shape"
        ):
            initialize_layer("conv2d", n_out=3, kernel=(3, 3))
        with self.assertRaisesRegex(ValueError, r"bad arguments for layer 'fully_connected'"):
            initialize_layer("fully_connected", n_out=3, units=3)

    def test_layers_are_layers(self):
        for cls in LAYERS.values():
            self.assertTrue(issubclass(cls, Layer))


# ----------------------------------------------------------------------------- call order

# Arguments for every registered layer (and its variants with other cached states: a fused ReLU
# keeps only its output, GELU its slope), and the input each takes.
CALL_ORDER_CASES = {
    "fully_connected": ({"n_out": 3, "activation": "tanh"}, (4, 5)),
    "conv2d": ({"n_out": 2}, (2, 5, 5, 3)),
    "conv2d (tanh)": ({"n_out": 2, "activation": "tanh"}, (2, 5, 5, 3)),
    "pool2d": ({"kernel_shape": 2, "stride": 2}, (2, 4, 4, 3)),
    "flatten": ({}, (2, 3, 3, 2)),
    "batchnorm": ({}, (6, 4)),
    "batchnorm (relu)": ({"activation": "relu"}, (2, 3, 3, 4)),
    "batchnorm (gelu)": ({"activation": "gelu"}, (6, 4)),
    "dropout": ({"p": 0.5}, (4, 6)),
}


def call_order_layer(case: str):
    kwargs, shape = CALL_ORDER_CASES[case]
    layer = initialize_layer(case.split(" ")[0], **kwargs)
    layer.rng = np.random.default_rng(0)
    return layer, np.random.default_rng(1).standard_normal(shape)


class TestCallOrder(unittest.TestCase):
    """Issue 32: ``backward`` before ``forward`` is a clear RuntimeError for every layer type
    (not a KeyError from the cache); ``backward`` again after one ``forward`` is allowed and
    gives the same gradients (the course's gradient checker relies on the cache staying put)."""

    def test_every_registered_layer_type_is_covered(self):
        self.assertEqual({case.split(" ")[0] for case in CALL_ORDER_CASES}, set(LAYERS))

    def assertBeforeForward(self, layer, method, *args):
        with self.assertRaises(RuntimeError) as caught:
            getattr(layer, method)(*args)
        message = str(caught.exception)
        self.assertIn(f"{type(layer).__name__}.{method} called before forward", message)
        self.assertIn("call forward(X) first", message)
        self.assertNotIn("\n", message)

    def test_backward_before_forward(self):
        for case in CALL_ORDER_CASES:
            with self.subTest(case):
                layer, X = call_order_layer(case)
                dY = np.ones_like(layer.forward(X))
                fresh, _ = call_order_layer(case)
                self.assertBeforeForward(fresh, "backward", dY)
                if isinstance(fresh, ActivatedLayer):
                    self.assertBeforeForward(fresh, "backward_preactivation", dY)

    def test_backward_before_forward_names_the_layers_position(self):
        layer = FullyConnected(3)
        layer.index = 4
        with self.assertRaisesRegex(RuntimeError, r"FullyConnected\.backward called before forward .*layer 4"):
            layer.backward(np.ones((2, 3)))

    def test_backward_after_parameters_are_made_without_a_forward_pass(self):
        """The course's ``_init_parameters`` helper, and patch whitening's ``fit_to_data``, make
        parameters and empty the cache: there is still no forward pass to differentiate."""
        dense = FullyConnected(3)
        dense._init_parameters((2, 5))
        self.assertBeforeForward(dense, "backward", np.ones((2, 3)))
        conv = Conv2D(2)
        conv.forward(np.ones((1, 4, 4, 1)))
        conv._init_parameters((1, 4, 4, 1))  # made again: the earlier forward pass no longer counts
        self.assertBeforeForward(conv, "backward", np.ones((1, 4, 4, 2)))
        whitening = Conv2D(18, (3, 3), activation="linear", weight_init="patch_whitening")
        whitening.fit_to_data(np.random.default_rng(0).standard_normal((8, 6, 6, 2)))
        self.assertBeforeForward(whitening, "backward", np.ones((1, 6, 6, 18)))

    def test_backward_after_a_failed_forward(self):
        """A forward pass that raised leaves nothing consistent to differentiate."""
        layer, X = call_order_layer("fully_connected")
        layer.forward(X)
        with self.assertRaises(ValueError):
            layer.forward(np.ones((4, 7)))  # 7 features, not 5
        self.assertBeforeForward(layer, "backward", np.ones((4, 3)))

    def test_backward_twice_after_one_forward_gives_the_same_gradients(self):
        for case in CALL_ORDER_CASES:
            with self.subTest(case):
                layer, X = call_order_layer(case)
                Y = layer.forward(X)
                dY = np.random.default_rng(2).standard_normal(Y.shape)
                first = layer.backward(dY.copy())
                first_gradients = {key: value.copy() for key, value in layer.gradients.items()}
                second = layer.backward(dY.copy())
                np.testing.assert_array_equal(second, first)
                for key, value in layer.gradients.items():
                    np.testing.assert_array_equal(value, first_gradients[key], err_msg=key)


# ----------------------------------------------------------------------------- activation protocol


class _CappedReLU(Activation):
    """A user's activation that is not ReLU but equals it on ordinary inputs: never fused."""

    name = "capped_relu"

    def forward(self, Z):
        return np.minimum(np.maximum(Z, 0), 1e9)

    def backward(self, Z, dY):
        return dY * ((Z > 0) & (Z < 1e9))


class TestPreactivation(unittest.TestCase):
    """ActivatedLayer: forward keeps Z (``preactivation()``) or, where a fast kernel fused the
    library's ReLU (GELU), only Y (the slope S); backward goes through either."""

    def setUp(self):
        self.rng = np.random.default_rng(21)

    def test_z_for_linear_and_softmax_dense_layers(self):
        X = randn(self.rng, 5, 4)
        for activation in ("linear", "softmax", "tanh"):
            with self.subTest(activation=activation):
                layer = FullyConnected(3, activation=activation)
                self.assertIsNone(layer.preactivation())  # before any forward pass
                Y = layer.forward(X)
                Z = layer.preactivation()
                np.testing.assert_allclose(Z, X @ layer.parameters["W"] + layer.parameters["b"], rtol=1e-12)
                np.testing.assert_allclose(Y, layer.activation(Z), rtol=1e-12)
                self.assertNotIn("Y", layer.cache)

    def test_z_for_unfused_conv_and_batchnorm(self):
        X = randn(self.rng, 2, 5, 5, 3)
        for layer in (
            Conv2D(4, (3, 3), activation="linear"),
            Conv2D(4, (3, 3), activation="sigmoid"),
            BatchNorm(activation="linear"),
            BatchNorm(activation="tanh"),
        ):
            with self.subTest(layer=repr(layer)):
                Y = layer.forward(X)
                self.assertIsNotNone(layer.preactivation())
                np.testing.assert_allclose(Y, layer.activation(layer.preactivation()), rtol=1e-12)

    def test_none_for_fused_relu_conv_and_batchnorm(self):
        X = randn(self.rng, 2, 5, 5, 3)
        for layer in (Conv2D(4, (3, 3), activation="relu"), BatchNorm(activation="relu")):
            for training in (True, False):
                with self.subTest(layer=repr(layer), training=training):
                    layer.train(training)
                    Y = layer.forward(X)
                    self.assertIsNone(layer.preactivation())
                    self.assertIs(layer.cache["Y"], Y)
                    self.assertNotIn("Z", layer.cache)

    def test_fused_relu_matches_linear_then_relu(self):
        X = randn(self.rng, 3, 6, 6, 2)
        dY = randn(self.rng, 3, 6, 6, 4)
        fused, plain = Conv2D(4, (3, 3), activation="relu"), Conv2D(4, (3, 3), activation="linear")
        fused.forward(X)
        plain.parameters = OrderedDict((k, v.copy()) for k, v in fused.parameters.items())
        plain.n_in = fused.n_in
        Y = fused.forward(X)
        Z = plain.forward(X)
        np.testing.assert_allclose(Y, ReLU().forward(Z), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fused.backward(dY), plain.backward(ReLU().backward(Z, dY)), rtol=1e-10, atol=1e-12)
        for key in fused.gradients:
            np.testing.assert_allclose(fused.gradients[key], plain.gradients[key], rtol=1e-10, atol=1e-12)

    def test_backward_is_activation_backward_then_backward_preactivation(self):
        X = randn(self.rng, 6, 4)
        dY = randn(self.rng, 6, 3)
        layer = FullyConnected(3, activation="softmax")
        layer.forward(X)
        dX = layer.backward(dY)
        grads = {k: v.copy() for k, v in layer.gradients.items()}
        dX_pre = layer.backward_preactivation(SoftMax().backward(layer.preactivation(), dY))
        np.testing.assert_allclose(dX, dX_pre, rtol=1e-12)
        for key, grad in grads.items():
            np.testing.assert_allclose(layer.gradients[key], grad, rtol=1e-12)

    def test_custom_activations_are_never_fused(self):
        X = randn(self.rng, 2, 5, 5, 3)
        for layer in (
            Conv2D(4, (3, 3), activation=_CappedReLU(), weight_init="he_normal"),
            BatchNorm(activation=_CappedReLU()),
        ):
            with self.subTest(layer=type(layer).__name__):
                Y = layer.forward(X)
                Z = layer.preactivation()
                self.assertIsNotNone(Z)
                self.assertNotIn("Y", layer.cache)
                np.testing.assert_array_equal(Y, _CappedReLU().forward(Z))
                for key, err in gradient_errors(layer, X, self.rng).items():
                    self.assertLess(err, TOL, f"d{key}")

    def test_reference_kernels_always_keep_z(self):
        from neural_networks.functional import kernels

        X = randn(self.rng, 2, 5, 5, 3)
        for layer in (Conv2D(4, (3, 3), activation="relu"), BatchNorm(activation="gelu")):
            with self.subTest(layer=repr(layer)), kernels("reference"):
                Y = layer.forward(X)
                self.assertIsNotNone(layer.preactivation())
                self.assertEqual(set(layer.cache) & {"Y", "S"}, set())
                np.testing.assert_allclose(Y, layer.activation(layer.preactivation()), rtol=1e-12)

    def test_training_keeps_the_slope_of_gelu(self):
        # GELU in the fast kernels: a training layer keeps f'(Z) (cache "S") instead
        # of Z; its backward pass, dY * f'(Z), equals the one through activation.backward(Z, dY)
        for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-6)):
            X = randn(self.rng, 2, 5, 5, 3).astype(dtype)
            for make in (
                lambda: Conv2D(4, (3, 3), activation="gelu"),
                lambda: FullyConnected(4, activation="gelu"),
            ):
                layer = make()
                inputs = X.reshape(2, -1) if isinstance(layer, FullyConnected) else X
                with self.subTest(layer=type(layer).__name__, dtype=dtype.__name__):
                    layer.train(False)
                    Y_eval = layer.forward(inputs)
                    Z = layer.preactivation()
                    dY = randn(self.rng, *Y_eval.shape).astype(dtype)
                    dX_eval = layer.backward(dY)
                    grads = {k: v.copy() for k, v in layer.gradients.items()}
                    layer.train(True)
                    Y = layer.forward(inputs)
                    self.assertIsNone(layer.preactivation())
                    self.assertNotIn("Z", layer.cache)
                    np.testing.assert_allclose(layer.cache["S"], GELU().backward(Z, np.ones_like(Z)), rtol=rtol)
                    np.testing.assert_array_equal(Y, Y_eval)
                    np.testing.assert_allclose(layer.backward(dY), dX_eval, rtol=rtol, atol=rtol)
                    for key, grad in grads.items():
                        np.testing.assert_allclose(layer.gradients[key], grad, rtol=rtol, atol=rtol)
        # BatchNorm applies GELU block by block inside its kernel: the same output,
        # slope and gradients as a linear BatchNorm followed by GELU
        for dtype in (np.float64, np.float32):
            X = (3 * randn(self.rng, 4, 5, 5, 3)).astype(dtype)
            dY = randn(self.rng, *X.shape).astype(dtype)
            layer, linear = BatchNorm(activation="gelu"), BatchNorm()
            with self.subTest(layer="BatchNorm", dtype=dtype.__name__):
                Y, Z = layer.forward(X), linear.forward(X)
                Y_ref, S_ref = gelu_tables.gelu_with_slope(Z)
                self.assertIsNone(layer.preactivation())
                np.testing.assert_array_equal(Y, Y_ref)
                np.testing.assert_array_equal(layer.cache["S"], S_ref)
                np.testing.assert_array_equal(layer.backward(dY), linear.backward(dY * S_ref))
                for key in ("gamma", "beta"):
                    np.testing.assert_array_equal(layer.gradients[key], linear.gradients[key])
                for key in ("running_mean", "running_var"):
                    np.testing.assert_array_equal(layer.buffers[key], linear.buffers[key])

    def test_layers_share_one_activated_base(self):
        for cls in (FullyConnected, Conv2D, BatchNorm):
            self.assertTrue(issubclass(cls, ActivatedLayer), cls.__name__)
        for cls in (Pool2D, Flatten):
            self.assertFalse(issubclass(cls, ActivatedLayer), cls.__name__)


# ----------------------------------------------------------------------------- PyTorch oracle


@O.requires_torch
class TestAgainstPyTorch(unittest.TestCase):
    """Conv2D and Pool2D forward and backward against torch.nn.functional in float64 (the
    oracles of tests/torch_oracles.py; padding from this module's own ``ref_padding``)."""

    def test_conv2d(self):
        rng = np.random.default_rng(50)
        for case in CONV_CASES[::5]:
            with self.subTest(**case):
                X = randn(rng, case["n"], case["h"], case["w"], case["c"])
                layer = build(
                    Conv2D(case["f"], case["kernel"], activation="linear", stride=case["stride"], pad=case["pad"]),
                    X,
                    rng,
                )
                Y = layer.forward(X)
                dY = randn(rng, *Y.shape)
                dX = layer.backward(dY)
                ref = O.conv2d(
                    X,
                    layer.parameters["W"],
                    layer.parameters["b"],
                    dY,
                    stride=case["stride"],
                    pad=ref_padding(case["pad"], case["kernel"]),
                )
                np.testing.assert_allclose(Y, ref.Y, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(dX, ref.dX, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(layer.gradients["W"], ref.dW, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(layer.gradients["b"][0], ref.db[0], rtol=1e-10, atol=1e-12)

    def test_pool2d(self):
        rng = np.random.default_rng(51)
        for mode in ("max", "average"):
            for case in POOL_CASES[::7]:
                with self.subTest(mode=mode, **case):
                    X = randn(rng, case["n"], case["h"], case["w"], case["c"])
                    layer = Pool2D(case["kernel"], mode=mode, stride=case["stride"], pad=case["pad"])
                    Y = layer.forward(X)
                    dY = randn(rng, *Y.shape)
                    dX = layer.backward(dY)
                    ref = O.pool2d(
                        X,
                        dY,
                        mode=mode,
                        kernel=case["kernel"],
                        stride=case["stride"],
                        pad=ref_padding(case["pad"], case["kernel"]),
                    )  # zeros, as the spec pads
                    np.testing.assert_allclose(Y, ref.Y, rtol=1e-12, atol=1e-15)
                    np.testing.assert_allclose(dX, ref.dX, rtol=1e-12, atol=1e-15)

    def test_max_pool_ties(self):
        X = np.zeros((1, 4, 4, 2))
        for kernel, stride in (((2, 2), 2), ((2, 2), 1), ((3, 3), 1)):
            with self.subTest(kernel=kernel, stride=stride):
                layer = Pool2D(kernel, "max", stride=stride)
                Y = layer.forward(X)
                dX = layer.backward(np.ones_like(Y))
                ref = O.pool2d(X, np.ones_like(Y), mode="max", kernel=kernel, stride=stride)
                np.testing.assert_array_equal(dX, ref.dX)


class TestParameterDtypeAndRandomness(unittest.TestCase):
    """Parameters follow a float64 first input (the course's gradient-check flow) and are float32
    otherwise; layers without a seeded generator draw from NumPy's global state."""

    def test_dtype_follows_the_first_input(self):
        cases = [
            (lambda: FullyConnected(3, "relu"), (4, 5)),
            (lambda: Conv2D(2, (3, 3), "relu"), (2, 4, 4, 3)),
            (lambda: BatchNorm(), (6, 3)),
        ]
        for make, shape in cases:
            for dtype, expected in ((np.float64, np.float64), (np.float32, np.float32), (np.uint8, np.float32)):
                with self.subTest(layer=make().name, dtype=dtype):
                    layer = make()
                    out = layer.forward(np.ones(shape, dtype=dtype))
                    self.assertEqual({p.dtype for p in layer.parameters.values()}, {np.dtype(expected)})
                    self.assertEqual(out.dtype, np.float64 if dtype == np.float64 else np.float32)
                    layer.backward(np.ones_like(out))
                    self.assertEqual({g.dtype for g in layer.gradients.values()}, {np.dtype(expected)})

    def test_direct_init_parameters_is_float64_like_the_course(self):
        layer = FullyConnected(n_out=4, activation="relu")
        layer._init_parameters((10, 3))
        self.assertEqual((layer.n_in, layer.parameters["W"].shape, layer.parameters["b"].shape), (3, (3, 4), (1, 4)))
        self.assertEqual(layer.parameters["W"].dtype, np.float64)
        np.testing.assert_array_equal(layer.parameters["b"], np.zeros((1, 4)))
        self.assertEqual(list(layer.gradients), ["W", "b"])
        self.assertEqual(layer._get_parameters()[0].shape, (3, 4))
        self.assertEqual([g.shape for g in layer._get_gradients()], [(3, 4), (1, 4)])

    def test_unseeded_layers_follow_np_random_seed(self):
        """The course's xavier_uniform draws np.random.uniform(-a, a, shape) with
        a = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out)); the same seed gives the same weights."""
        np.random.seed(189)
        layer = FullyConnected(n_out=4, activation="relu", weight_init="xavier_uniform")
        layer._init_parameters((10, 3))
        np.random.seed(189)
        a = np.sqrt(3.0) * (np.sqrt(2.0) * np.sqrt(2.0 / (3 + 4)))
        np.testing.assert_array_equal(layer.parameters["W"], np.random.uniform(-a, a, size=(3, 4)))
        np.random.seed(5)
        first = Conv2D(2, (3, 3), "relu")
        first.forward(np.ones((1, 4, 4, 2)))
        np.random.seed(5)
        second = Conv2D(2, (3, 3), "relu")
        second.forward(np.ones((1, 4, 4, 2)))
        np.testing.assert_array_equal(first.parameters["W"], second.parameters["W"])

    def test_n_out_none_until_sized(self):
        layer = initialize_layer("fully_connected", n_out=None, activation="softmax")
        self.assertIsNone(layer.n_out)
        self.assertEqual(layer.config()["n_out"], None)
        with self.assertRaisesRegex(ValueError, r"n_out is None.*train the model on a data set first"):
            layer.forward(np.ones((2, 3)))
        layer.n_out = 3
        self.assertEqual(layer.forward(np.ones((2, 3))).shape, (2, 3))
        with self.assertRaisesRegex(ValueError, "n_out is None"):
            Conv2D(None, (3, 3), "relu").forward(np.ones((1, 4, 4, 1)))
        with self.assertRaisesRegex(ValueError, "n_out must be a positive int"):
            FullyConnected(n_out=0)


if __name__ == "__main__":
    unittest.main()
