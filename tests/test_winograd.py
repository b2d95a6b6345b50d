"""Winograd F(2x2, 3x3) (neural_networks.functional.winograd): against the loop reference, the im2col
kernels and PyTorch, forward, input and weight gradients, even and odd maps, one or many chunks."""

import os
import unittest
from unittest import mock

import numpy as np

from neural_networks.functional import conv, winograd
from neural_networks.layers import Conv2D

from . import torch_oracles as O
from .test_layers import ref_conv2d


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class TestWinogradKernel(unittest.TestCase):
    def test_against_the_loop_reference(self):
        rng = np.random.default_rng(0)
        for n, h, w, c, f in ((2, 4, 4, 3, 2), (3, 5, 7, 2, 4), (1, 1, 1, 3, 3), (2, 2, 3, 5, 1), (4, 6, 6, 4, 4)):
            X = rng.standard_normal((n, h, w, c))
            W = rng.standard_normal((3, 3, c, f))
            expected = ref_conv2d(X, W, np.zeros((1, f)), 1, (1, 1))
            for chunk_bytes in (1, winograd._CHUNK_BYTES):  # one image per chunk, and whole slices
                with self.subTest(shape=(n, h, w, c, f), chunk_bytes=chunk_bytes):
                    with mock.patch.object(winograd, "_CHUNK_BYTES", chunk_bytes):
                        Y = winograd.conv3x3_same(X, winograd.filter_transform(W))
                    self.assertEqual(Y.dtype, np.float64)
                    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)

    def test_float32_accuracy_and_thread_counts(self):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((5, 9, 8, 16)).astype(np.float32)
        W = (rng.standard_normal((3, 3, 16, 8)) * 0.1).astype(np.float32)
        exact = ref_conv2d(X.astype(np.float64), W.astype(np.float64), np.zeros((1, 8)), 1, (1, 1))
        results = []
        for threads in ("1", "2"):
            with mock.patch.dict(os.environ, {"NEURAL_NETWORKS_NUM_THREADS": threads}):
                Y = winograd.conv3x3_same(X, winograd.filter_transform(W))
            self.assertEqual(Y.dtype, np.float32)
            self.assertLess(rel(Y, exact), 1e-6)
            results.append(Y)
        again = winograd.conv3x3_same(X, winograd.filter_transform(W))
        np.testing.assert_array_equal(again, results[-1])  # the same bits for the same thread count

    def test_weight_gradient_against_the_loop_reference(self):
        rng = np.random.default_rng(5)
        for n, h, w, c, f in ((2, 4, 4, 3, 2), (3, 5, 7, 2, 4), (1, 1, 1, 3, 3), (2, 2, 3, 5, 1), (4, 6, 6, 4, 4)):
            X = rng.standard_normal((n, h, w, c))
            dZ = rng.standard_normal((n, h, w, f))
            padded = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
            expected = np.zeros((3, 3, c, f))
            for i in range(3):  # dW[i, j] = sum over images and positions of X[y + i - 1, x + j - 1] dZ[y, x]
                for j in range(3):
                    for y in range(h):
                        for x in range(w):
                            expected[i, j] += padded[:, y + i, x + j].T @ dZ[:, y, x]
            for chunk_bytes in (1, winograd._GRADIENT_CHUNK_BYTES):  # one image per chunk, and whole slices
                with self.subTest(shape=(n, h, w, c, f), chunk_bytes=chunk_bytes):
                    with mock.patch.object(winograd, "_GRADIENT_CHUNK_BYTES", chunk_bytes):
                        dW = winograd.weight_gradient3x3_same(X, dZ)
                    self.assertEqual((dW.shape, dW.dtype), ((3, 3, c, f), np.float64))
                    np.testing.assert_allclose(dW, expected, rtol=1e-12, atol=1e-12)

    def test_weight_gradient_in_float32_and_thread_counts(self):
        rng = np.random.default_rng(6)
        X = rng.standard_normal((6, 9, 8, 16)).astype(np.float32)
        dZ = rng.standard_normal((6, 9, 8, 8)).astype(np.float32)
        exact = winograd.weight_gradient3x3_same(X.astype(np.float64), dZ.astype(np.float64))
        results = []
        for threads in ("1", "2"):
            with mock.patch.dict(os.environ, {"NEURAL_NETWORKS_NUM_THREADS": threads}):
                dW = winograd.weight_gradient3x3_same(X, dZ)
            self.assertEqual(dW.dtype, np.float32)
            self.assertLess(rel(dW, exact), 1e-6)
            results.append(dW)
        np.testing.assert_array_equal(winograd.weight_gradient3x3_same(X, dZ), results[-1])  # same bits again

    def test_where_it_applies(self):
        self.assertTrue(winograd.applies((3, 3), 1, (1, 1), (16, 16), 256, 256))
        self.assertTrue(winograd.applies((3, 3), 1, (1, 1), (4, 4), 256, 512))
        self.assertTrue(winograd.applies((3, 3), 1, (1, 1), (15, 15), 256, 256))  # 12% padding
        for args in (
            ((3, 3), 1, (1, 1), (16, 16), 128, 256),  # too narrow: im2col is as fast
            ((3, 3), 2, (1, 1), (16, 16), 256, 256),  # strided
            ((3, 3), 1, (0, 0), (16, 16), 256, 256),  # "valid"
            ((5, 5), 1, (2, 2), (16, 16), 256, 256),
            ((3, 3), 1, (1, 1), (1, 8), 256, 256),
            ((3, 3), 1, (1, 1), (7, 7), 256, 256),  # padded to 8x8: 23% of the tiles wasted
            ((3, 3), 1, (1, 1), (3, 3), 256, 256),
        ):
            with self.subTest(args=args):
                self.assertFalse(winograd.applies(*args))


class TestWideConv2D(unittest.TestCase):
    """A Conv2D wide enough to take the Winograd path equals the im2col path and PyTorch."""

    def step(self, X, dY, activation, im2col: bool, input_gradient: bool = True):
        np.random.seed(3)
        layer = Conv2D(256, (3, 3), activation=activation, pad="same")
        layer.input_gradient = input_gradient
        limit = 10**9 if im2col else winograd.MIN_CHANNELS
        with (
            mock.patch.object(winograd, "MIN_CHANNELS", limit),
            mock.patch.object(winograd, "weight_gradient3x3_same", wraps=winograd.weight_gradient3x3_same) as dW_spy,
            mock.patch.object(winograd, "conv3x3_same", wraps=winograd.conv3x3_same) as conv_spy,
        ):
            Y = layer.forward(X)
            dX = layer.backward(dY)
        # the path under test was taken: forward (and dX) and dW through Winograd, or neither
        self.assertEqual((conv_spy.call_count, dW_spy.call_count), (0, 0) if im2col else (1 + input_gradient, 1))
        return layer, Y, dX

    def test_without_the_input_gradient(self):
        rng = np.random.default_rng(7)
        X = rng.standard_normal((2, 4, 4, 256)).astype(np.float32)
        dY = rng.standard_normal((2, 4, 4, 256)).astype(np.float32)
        wide, _, dX = self.step(X, dY, "relu", im2col=False, input_gradient=False)
        plain, _, _ = self.step(X, dY, "relu", im2col=True)
        self.assertIsNone(dX)
        for key in ("W", "b"):
            self.assertEqual(wide.gradients[key].dtype, np.float32)
            self.assertLess(rel(wide.gradients[key], plain.gradients[key]), 1e-5)

    def test_against_im2col_and_torch(self):
        rng = np.random.default_rng(2)
        for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
            for activation in ("relu", "linear"):
                with self.subTest(dtype=np.dtype(dtype).name, activation=activation):
                    X = rng.standard_normal((1, 4, 6, 256)).astype(dtype)
                    dY = rng.standard_normal((1, 4, 6, 256)).astype(dtype)
                    wide, Y, dX = self.step(X, dY, activation, im2col=False)
                    plain, Y_ref, dX_ref = self.step(X, dY, activation, im2col=True)
                    self.assertLess(rel(Y, Y_ref), tol)
                    self.assertLess(rel(dX, dX_ref), tol)
                    for key in ("W", "b"):
                        self.assertLess(rel(wide.gradients[key], plain.gradients[key]), tol)
                    if O.torch is None:
                        continue
                    ref = O.conv2d(X, wide.parameters["W"], wide.parameters["b"], dY, 1, (1, 1), activation)
                    for ours, theirs in ((Y, ref.Y), (dX, ref.dX), (wide.gradients["W"], ref.dW)):
                        self.assertLess(rel(ours, theirs), max(tol, 1e-10))

    def test_the_forward_matches_functional(self):
        rng = np.random.default_rng(4)
        X = rng.standard_normal((2, 4, 4, 256))
        W = rng.standard_normal((3, 3, 256, 256)) * 0.05
        b = rng.standard_normal((1, 256))
        Z, cache = conv.conv2d_forward(X, W, b, 1, (1, 1), relu=True)
        self.assertIsNone(cache[0])  # no patches kept on this path
        with mock.patch.object(
            winograd, "MIN_CHANNELS", 10**9
        ):  # the im2col kernel, checked against the loops elsewhere
            expected, _ = conv.conv2d_forward(X, W, b, 1, (1, 1), relu=True)
        np.testing.assert_allclose(Z, expected, rtol=1e-10, atol=1e-10)


if __name__ == "__main__":
    unittest.main()
