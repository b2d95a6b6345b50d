"""Patch whitening (neural_networks.whitening, Conv2D's ``weight_init="patch_whitening"``):
the covariance against a loop over patches, whitened outputs, and the initialisation a model
makes before its first epoch."""

import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks.datasets import Dataset
from neural_networks.layers import Conv2D, initialize_layer
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD
from neural_networks.whitening import patch_covariance, patch_whitening_filters


def slow_covariance(X, kh, kw, stride, pad):
    Xp = np.pad(X, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    m, h, w, c = Xp.shape
    rows = []
    for n in range(m):
        for r in range(0, h - kh + 1, stride):
            for s in range(0, w - kw + 1, stride):
                rows.append(Xp[n, r : r + kh, s : s + kw, :].reshape(-1))
    P = np.array(rows, dtype=np.float64)
    return P.T @ P / len(P)


def correlated_images(rng, m=40, h=9, w=8, c=3):
    """Images whose neighbouring pixels and channels are strongly correlated (like photographs)."""
    base = rng.standard_normal((m, h + 2, w + 2, 1))
    smooth = (base[:, 1:-1, 1:-1] + base[:, :-2, 1:-1] + base[:, 1:-1, :-2] + base[:, 2:, 2:]) / 4
    return smooth * np.array([1.0, 0.8, 0.5]) + 0.1 * rng.standard_normal((m, h, w, c))


class TestPatchWhitening(unittest.TestCase):
    def test_covariance_against_a_loop(self):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((7, 6, 5, 2))
        for kernel, stride, pad in (((2, 2), 1, (0, 0)), ((3, 3), 1, (1, 1)), ((3, 2), 2, (1, 0))):
            with self.subTest(kernel=kernel, stride=stride, pad=pad):
                np.testing.assert_allclose(
                    patch_covariance(X, kernel, stride, pad), slow_covariance(X, *kernel, stride, pad), rtol=1e-12
                )

    def test_filters_whiten_the_patches(self):
        rng = np.random.default_rng(1)
        X = correlated_images(rng)
        for kernel in ((2, 2), (3, 3)):
            with self.subTest(kernel=kernel):
                K = kernel[0] * kernel[1] * 3
                W = patch_whitening_filters(X, kernel, 2 * K, eps=1e-9, dtype=np.float64)
                self.assertEqual(W.shape, (*kernel, 3, 2 * K))
                np.testing.assert_array_equal(W[..., K:], -W[..., :K])
                layer = Conv2D(K, kernel, activation="linear", pad="valid", use_bias=False)
                layer.forward(X[:1])
                layer.parameters["W"] = W[..., :K]
                Z = layer.forward(X).reshape(-1, K)
                np.testing.assert_allclose(Z.T @ Z / len(Z), np.eye(K), atol=1e-5)  # decorrelated, unit variance

    def test_filters_are_the_documented_closed_form(self):
        # column j of the filters is v_j / sqrt(l_j + eps) for the eigenpairs (l_j, v_j) of the
        # patch covariance, increasing l_j, the negatives after them: so the covariance of the
        # filtered patches is diag(l_j / (l_j + eps)) exactly. A large eps makes the eps term
        # visible (a doubled eps, or one added outside the root, fails here).
        rng = np.random.default_rng(3)
        X = correlated_images(rng, m=12)
        for kernel, stride, pad, eps in (((2, 2), 1, (0, 0), 0.05), ((3, 2), 2, (1, 0), 0.3)):
            with self.subTest(kernel=kernel, stride=stride, pad=pad, eps=eps):
                K = kernel[0] * kernel[1] * 3
                C = slow_covariance(X, *kernel, stride, pad)
                eigenvalues, eigenvectors = np.linalg.eigh(C)
                W = patch_whitening_filters(X, kernel, 2 * K, stride, pad, eps=eps, dtype=np.float64).reshape(K, 2 * K)
                np.testing.assert_allclose(
                    W[:, :K].T @ C @ W[:, :K], np.diag(eigenvalues / (eigenvalues + eps)), atol=1e-10
                )
                # each filter is its eigenvector (up to sign) scaled by 1 / sqrt(l + eps)
                norms = np.linalg.norm(W[:, :K], axis=0)
                np.testing.assert_allclose(norms, 1 / np.sqrt(eigenvalues + eps), rtol=1e-9)
                np.testing.assert_allclose(np.abs(np.sum(W[:, :K] / norms * eigenvectors, axis=0)), 1, rtol=1e-9)
                np.testing.assert_array_equal(W[:, K:], -W[:, :K])

    def test_wrong_sizes_are_refused(self):
        X = np.zeros((2, 4, 4, 3))
        with self.assertRaisesRegex(ValueError, r"2x2 patches of 3 channels makes 12 filters, or 24 .*n_out is 16"):
            patch_whitening_filters(X, (2, 2), 16)
        with self.assertRaisesRegex(ValueError, "eps must be positive"):
            patch_whitening_filters(X, (2, 2), 12, eps=0)
        layer = Conv2D(10, (2, 2), pad="valid", weight_init="patch_whitening")
        with self.assertRaisesRegex(ValueError, r"^Conv2D: patch whitening of 2x2 patches"):
            layer.fit_to_data(X)

    def test_a_model_whitens_before_its_first_epoch(self):
        rng = np.random.default_rng(2)
        X = correlated_images(rng, m=60).astype(np.float32)
        labels = np.arange(60) % 3
        data = Dataset(X[:48], np.eye(3)[labels[:48]], 16, X[48:], np.eye(3)[labels[48:]])
        layers = [
            initialize_layer(
                "conv2d", n_out=24, kernel_shape=[2, 2], pad="valid", weight_init="patch_whitening", frozen=["W"]
            ),
            initialize_layer("flatten"),
            initialize_layer("fully_connected", n_out=3, activation="softmax"),
        ]
        model = NeuralNetwork(layers=layers, optimizer=SGD(lr=0.05, momentum=0.9), seed=0)
        self.assertTrue(model.layers[0].needs_data)
        model.fit_to_data(data.train, examples=20)  # what fit does, to see the filters before training
        expected = patch_whitening_filters(X[:20], (2, 2), 24)  # the first 20 in the data set's order
        np.testing.assert_allclose(model.layers[0].parameters["W"], expected, rtol=1e-6)
        self.assertFalse(model.layers[0].needs_data)
        fresh = NeuralNetwork(layers=[initialize_layer(**layer.config()) for layer in model.layers], seed=0)
        fresh.layers[0].freeze(["W"])
        fresh.optimizer = SGD(lr=0.05, momentum=0.9)
        fresh.train(data, epochs=2, verbose=0)  # fit whitens with its default sample (all 48 here)
        W = patch_whitening_filters(X[:48], (2, 2), 24)
        np.testing.assert_allclose(fresh.layers[0].parameters["W"], W, rtol=1e-6)  # and W stayed frozen
        self.assertFalse(np.array_equal(fresh.layers[0].parameters["b"], np.zeros((1, 24))))  # b trained
        with tempfile.TemporaryDirectory() as tmp:
            fresh.save(Path(tmp) / "m.npz")
            loaded = NeuralNetwork.load(Path(tmp) / "m.npz")
        self.assertFalse(loaded.layers[0].needs_data)  # a loaded (or resumed) model is never re-whitened
        np.testing.assert_array_equal(loaded.layers[0].parameters["W"], fresh.layers[0].parameters["W"])


if __name__ == "__main__":
    unittest.main()
