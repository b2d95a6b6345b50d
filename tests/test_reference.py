"""The reference kernels (neural_networks.functional.reference) against explicit loops, closed
forms and finite differences; that they import nothing of the package; and the fast paths that
small random shapes never reach (Winograd, the scatter of widening layers, one image per
chunk) against them, through the dispatch in each mode.

The fast kernels against the reference over random shapes, strides, paddings, dtypes and
activations are properties (hypothesis) in tests/test_properties.py.
"""

from __future__ import annotations

import ast
import itertools
import math
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from neural_networks import functional as F
from neural_networks.activations import GELU, Linear, ReLU
from neural_networks.functional import conv, reference, winograd

from .helpers import numerical_gradient, one_hot, randn, relative_error

R = reference
TOL = {np.float64: 1e-9, np.float32: 1e-4}  # relative to the largest magnitude of the reference


def assert_close(got, want, dtype, what=""):
    """``got`` within ``TOL[dtype]`` of ``want``, relative to ``want``'s largest magnitude."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=0, atol=TOL[dtype] * scale, err_msg=what)


# ----------------------------------------------------------------------------- loop oracles


def conv_loop(X, W, b, stride, pad):
    n, h, w, c = X.shape
    kh, kw, _, f = W.shape
    Xp = np.pad(X, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    ho, wo = (h + 2 * pad[0] - kh) // stride + 1, (w + 2 * pad[1] - kw) // stride + 1
    Z = np.zeros((n, ho, wo, f))
    for r, s in itertools.product(range(ho), range(wo)):
        window = Xp[:, r * stride : r * stride + kh, s * stride : s * stride + kw, :]
        Z[:, r, s, :] = np.tensordot(window, W, axes=([1, 2, 3], [0, 1, 2]))
    return Z + (0 if b is None else b.reshape(f))


def pool_loop(X, kernel, stride, pad, mode):
    kh, kw = kernel
    n, h, w, c = X.shape
    Xp = np.pad(X, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    ho, wo = (h + 2 * pad[0] - kh) // stride + 1, (w + 2 * pad[1] - kw) // stride + 1
    Y = np.zeros((n, ho, wo, c))
    for r, s in itertools.product(range(ho), range(wo)):
        window = Xp[:, r * stride : r * stride + kh, s * stride : s * stride + kw, :]
        Y[:, r, s, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return Y


class TestReferenceAgainstLoops(unittest.TestCase):
    GEOMETRIES = [  # (X shape, kernel, stride, pad)
        ((2, 5, 6, 3), (3, 3), 1, (1, 1)),
        ((1, 7, 7, 2), (3, 2), 2, (0, 1)),
        ((2, 6, 5, 1), (2, 2), 3, (2, 0)),
        ((3, 4, 4, 4), (1, 1), 1, (0, 0)),
        ((1, 5, 5, 2), (5, 5), 1, (2, 2)),
    ]

    def test_conv2d_forward_and_im2col_adjoint(self):
        rng = np.random.default_rng(0)
        for shape, kernel, stride, pad in self.GEOMETRIES:
            with self.subTest(shape=shape, kernel=kernel, stride=stride, pad=pad):
                X = randn(rng, *shape)
                W, b = randn(rng, *kernel, shape[3], 4), randn(rng, 1, 4)
                np.testing.assert_allclose(R.conv2d_forward(X, W, b, stride, pad), conv_loop(X, W, b, stride, pad))
                cols = R.im2col(X, kernel, stride, pad)
                D = randn(rng, *cols.shape)  # <im2col(X), D> == <X, col2im(D)>
                self.assertAlmostEqual(np.sum(cols * D), np.sum(X * R.col2im(D, shape, kernel, stride, pad)), places=9)

    def test_conv2d_gradients_by_finite_differences(self):
        rng = np.random.default_rng(1)
        for shape, kernel, stride, pad in self.GEOMETRIES:
            with self.subTest(shape=shape, kernel=kernel, stride=stride, pad=pad):
                X = randn(rng, *shape)
                W, b = randn(rng, *kernel, shape[3], 3), randn(rng, 1, 3)
                dZ = randn(rng, *R.conv2d_forward(X, W, b, stride, pad).shape)
                dX, dW, db = R.conv2d_backward(dZ, X, W, stride, pad)
                self.assertLess(
                    relative_error(dX, numerical_gradient(lambda x: R.conv2d_forward(x, W, b, stride, pad), X, dZ)),
                    1e-8,
                )
                self.assertLess(
                    relative_error(dW, numerical_gradient(lambda w: R.conv2d_forward(X, w, b, stride, pad), W, dZ)),
                    1e-8,
                )
                self.assertLess(
                    relative_error(db, numerical_gradient(lambda v: R.conv2d_forward(X, W, v, stride, pad), b, dZ)),
                    1e-8,
                )

    def test_pooling(self):
        rng = np.random.default_rng(2)
        for (shape, kernel, stride, pad), mode in itertools.product(self.GEOMETRIES, ("max", "average")):
            with self.subTest(shape=shape, kernel=kernel, stride=stride, pad=pad, mode=mode):
                X = rng.permutation(np.linspace(-3, 3, int(np.prod(shape)))).reshape(shape)  # no ties
                Y = R.pool2d_forward(X, kernel, stride, pad, mode)
                np.testing.assert_allclose(Y, pool_loop(X, kernel, stride, pad, mode), rtol=1e-12)
                dY = randn(rng, *Y.shape)
                dX = R.pool2d_backward(dY, X, kernel, stride, pad, mode)
                num = numerical_gradient(lambda x: R.pool2d_forward(x, kernel, stride, pad, mode), X.copy(), dY)
                self.assertLess(relative_error(dX, num), 1e-8)

    def test_max_pooling_sends_a_tie_to_the_first_maximum(self):
        X = np.array([[1.0, 3.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
        dX = R.pool2d_backward(np.ones((1, 1, 1, 1)), X, (2, 2), 2, (0, 0), "max")
        np.testing.assert_array_equal(dX.reshape(2, 2), [[0.0, 1.0], [0.0, 0.0]])

    def test_dense_batchnorm_dropout_by_finite_differences(self):
        rng = np.random.default_rng(3)
        X, W, b = randn(rng, 6, 4), randn(rng, 4, 3), randn(rng, 1, 3)
        dZ = randn(rng, 6, 3)
        dX, dW, db = R.dense_backward(dZ, X, W)
        self.assertLess(relative_error(dX, numerical_gradient(lambda x: R.dense_forward(x, W, b), X, dZ)), 1e-8)
        self.assertLess(relative_error(dW, numerical_gradient(lambda w: R.dense_forward(X, w, b), W, dZ)), 1e-8)
        self.assertLess(relative_error(db, numerical_gradient(lambda v: R.dense_forward(X, W, v), b, dZ)), 1e-8)
        gamma, beta, eps = rng.uniform(0.5, 1.5, (1, 3)), randn(rng, 1, 3), 1e-5
        X = randn(rng, 7, 3) * 2 + 1
        dZ = randn(rng, 7, 3)
        Z, mean, var = R.batchnorm_train_forward(X, gamma, beta, eps)
        np.testing.assert_allclose(Z.mean(axis=0), beta.ravel(), atol=1e-12)
        np.testing.assert_allclose(Z.std(axis=0), gamma.ravel() * np.sqrt(var / (var + eps)).ravel(), rtol=1e-12)
        dX, dgamma, dbeta = R.batchnorm_train_backward(dZ, X, mean, var, gamma, eps)
        self.assertLess(
            relative_error(dX, numerical_gradient(lambda x: R.batchnorm_train_forward(x, gamma, beta, eps)[0], X, dZ)),
            1e-7,
        )
        self.assertLess(
            relative_error(
                dgamma, numerical_gradient(lambda g: R.batchnorm_train_forward(X, g, beta, eps)[0], gamma, dZ)
            ),
            1e-7,
        )
        self.assertLess(
            relative_error(
                dbeta, numerical_gradient(lambda v: R.batchnorm_train_forward(X, gamma, v, eps)[0], beta, dZ)
            ),
            1e-7,
        )
        dX, dgamma, dbeta = R.batchnorm_eval_backward(dZ, X, mean, var, gamma, eps)
        self.assertLess(
            relative_error(
                dX, numerical_gradient(lambda x: R.batchnorm_eval_forward(x, gamma, beta, mean, var, eps), X, dZ)
            ),
            1e-8,
        )
        self.assertLess(
            relative_error(
                dgamma, numerical_gradient(lambda g: R.batchnorm_eval_forward(X, g, beta, mean, var, eps), gamma, dZ)
            ),
            1e-8,
        )
        keep = rng.random(X.shape) >= 0.3
        np.testing.assert_allclose(R.dropout_forward(X, keep, 0.3), X * keep / 0.7, rtol=1e-15)
        np.testing.assert_allclose(R.dropout_backward(dZ, keep, 0.3), dZ * keep / 0.7, rtol=1e-15)

    def test_activations_by_finite_differences_and_closed_forms(self):
        rng = np.random.default_rng(4)
        Z, dY = randn(rng, 5, 4) * 2, randn(rng, 5, 4)
        Z[np.abs(Z) < 1e-3] = 0.5  # away from the kink of relu
        for forward, backward in (
            (R.relu, R.relu_backward),
            (R.sigmoid, R.sigmoid_backward),
            (R.tanh, R.tanh_backward),
            (R.arctan, R.arctan_backward),
            (R.gelu, R.gelu_backward),
            (R.gelu_tanh, R.gelu_tanh_backward),
        ):
            with self.subTest(forward.__name__):
                self.assertLess(relative_error(backward(Z, dY), numerical_gradient(forward, Z.copy(), dY)), 1e-8)
        S = R.softmax(Z)
        self.assertLess(relative_error(R.softmax_backward(S, dY), numerical_gradient(R.softmax, Z.copy(), dY)), 1e-8)
        erf = np.vectorize(math.erf)
        np.testing.assert_allclose(R.gelu(Z), 0.5 * Z * (1 + erf(Z / math.sqrt(2))), rtol=1e-12, atol=1e-15)
        u = math.sqrt(2 / math.pi) * (Z + 0.044715 * Z**3)
        np.testing.assert_allclose(R.gelu_tanh(Z), 0.5 * Z * (1 + np.tanh(u)), rtol=1e-12, atol=1e-15)
        self.assertEqual(R.gelu(Z.astype(np.float32)).dtype, np.float32)

    def test_losses(self):
        rng = np.random.default_rng(5)
        Z, Y = randn(rng, 6, 4) * 3, one_hot(rng, 6, 4)
        loss, dZ, P = R.softmax_cross_entropy(Z, Y)
        np.testing.assert_allclose(P, np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True), rtol=1e-12)
        self.assertAlmostEqual(loss, R.cross_entropy(Y, P), places=12)
        np.testing.assert_allclose(dZ, (P - Y) / 6, rtol=1e-12)  # the closed form (Y_hat - Y) / m
        chained = R.softmax_backward(P, R.cross_entropy_backward(Y, P))
        np.testing.assert_allclose(dZ, chained, rtol=1e-9, atol=1e-15)
        num = numerical_gradient(lambda z: R.softmax_cross_entropy(z, Y)[0], Z.copy())
        self.assertLess(relative_error(dZ, num), 1e-8)
        from neural_networks.losses import CrossEntropy

        self.assertEqual(R.cross_entropy(Y, P), CrossEntropy().forward(Y, P))
        np.testing.assert_array_equal(R.cross_entropy_backward(Y, P), CrossEntropy().backward(Y, P))

    def test_softmax_cross_entropy_with_targets_not_summing_to_one(self):
        # soft targets whose rows do not sum to 1: the gradient is softmax * sum(y) - y, in both modes
        rng = np.random.default_rng(6)
        Z, Y = randn(rng, 5, 3), rng.uniform(0, 2, (5, 3))
        loss, dZ, _ = R.softmax_cross_entropy(Z, Y)
        num = numerical_gradient(lambda z: R.softmax_cross_entropy(z, Y)[0], Z.copy())
        self.assertLess(relative_error(dZ, num), 1e-8)
        from neural_networks.functional.softmax_loss import softmax_cross_entropy as fast_softmax_cross_entropy

        fast = fast_softmax_cross_entropy(Z, Y)
        self.assertAlmostEqual(float(fast[0]), loss, places=12)
        np.testing.assert_allclose(fast[1], dZ, rtol=1e-10, atol=1e-15)


class TestReferenceIsSelfContained(unittest.TestCase):
    def test_imports_only_numpy_and_the_standard_library(self):
        path = Path(reference.__file__)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                self.assertEqual(node.level, 0, "a relative import in reference.py")
                imported.add(node.module.partition(".")[0])
        self.assertEqual(imported, {"__future__", "math", "numpy"})


# ----------------------------------------------------------------------------- fast against reference


def _in_both_modes(run):
    """``(fast results, reference results)`` of ``run()``."""
    with F.kernels("fast"):
        fast = run()
    with F.kernels("reference"):
        ref = run()
    return fast, ref


class TestFastPathsAgainstReference(unittest.TestCase):
    """Deterministic cases for the paths random small shapes never reach (Winograd, the scatter
    of widening layers, several chunks); the properties below cover the rest."""

    def check_conv(self, X, W, b, stride, pad, activation, dtype):
        rng = np.random.default_rng(9)
        dY = None

        def run():
            nonlocal dY
            Y, cache = F.conv2d(X, W, b, stride, pad, activation, training=True)
            if dY is None:
                dY = randn(rng, *Y.shape, dtype=dtype)
            return (Y, *F.conv2d_backward(dY, W, cache, stride, pad, activation))

        for fast, ref, what in zip(*_in_both_modes(run), ("Y", "dX", "dW", "db")):
            assert_close(fast, ref, dtype, what)

    def test_winograd_scatter_and_chunks(self):
        rng = np.random.default_rng(10)
        for dtype, activation in itertools.product((np.float64, np.float32), (Linear(), ReLU(), GELU())):
            X = randn(rng, 5, 6, 7, 8, dtype=dtype)
            W, b = randn(rng, 3, 3, 8, 16, dtype=dtype) * 0.3, randn(rng, 1, 16, dtype=dtype)
            for patches in (
                mock.patch.object(winograd, "MIN_CHANNELS", 1),  # Winograd F(2x2, 3x3), dW included
                mock.patch.object(conv, "SCATTER_MIN_FILTERS", 1),  # dX scattered (col2im)
                mock.patch.object(conv, "CHUNK_ROWS", 1),  # one image per chunk
            ):
                with self.subTest(dtype=dtype.__name__, activation=activation.name, patch=patches.attribute), patches:
                    self.check_conv(X, W, b, 1, (1, 1), activation, dtype)
