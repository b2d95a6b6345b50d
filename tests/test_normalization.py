"""Tests of BatchNorm and Dropout (neural_networks.layers.normalization and .dropout).

BatchNorm's forward pass is checked against a slow reference with explicit per-channel loops,
its backward pass against central finite differences in float64 (training and evaluation
mode, FC and NHWC input), its running statistics against the recurrence computed by hand, and
everything against ``torch.nn.functional.batch_norm`` where PyTorch is installed. Dropout is
checked for its mask statistics, scaling, determinism and mode switch. A model holding both
layers is saved and loaded.
"""

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks import layers as layers_module
from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D, initialize_layer
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD
from neural_networks.layers import BatchNorm, Dropout

from . import torch_oracles as O
from .helpers import layer_to_float64, numerical_gradient, one_hot, randn, relative_error

TOL = 1e-6
_registered_here = []


def setUpModule():
    # Until layers.py registers the two classes itself, register them for the save/load test.
    for cls in (BatchNorm, Dropout):
        if cls.name not in layers_module.LAYERS:
            layers_module.LAYERS[cls.name] = cls
            _registered_here.append(cls.name)


def tearDownModule():
    for name in _registered_here:
        layers_module.LAYERS.pop(name, None)
    _registered_here.clear()


# ----------------------------------------------------------------------------- references


def ref_batch_stats(X):
    """Per-channel mean, biased and unbiased variance of ``X (..., c)`` with explicit loops."""
    flat = np.asarray(X, dtype=np.float64).reshape(-1, X.shape[-1])
    M, c = flat.shape
    mean, var, var_unbiased = np.zeros(c), np.zeros(c), np.zeros(c)
    for j in range(c):
        total = 0.0
        for i in range(M):
            total += flat[i, j]
        mean[j] = total / M
        sq = 0.0
        for i in range(M):
            sq += (flat[i, j] - mean[j]) ** 2
        var[j] = sq / M
        var_unbiased[j] = sq / (M - 1)
    return mean, var, var_unbiased


def ref_normalize(X, mean, var, gamma, beta, eps):
    """``(X - mean) / sqrt(var + eps) * gamma + beta`` channel by channel."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.empty_like(X)
    for j in range(X.shape[-1]):
        Y[..., j] = (X[..., j] - mean[j]) / np.sqrt(var[j] + eps) * gamma[j] + beta[j]
    return Y


def float64_batchnorm(rng, shape, activation="linear", momentum=0.1, eps=1e-5):
    """A BatchNorm initialised on a float64 input of ``shape``, with random gamma and beta and
    float64 parameters, gradients and buffers."""
    layer = BatchNorm(momentum=momentum, eps=eps, activation=activation)
    layer.forward(randn(rng, *shape))
    layer_to_float64(layer)
    c = shape[-1]
    layer.parameters["gamma"] = rng.uniform(0.5, 1.5, size=(1, c))
    layer.parameters["beta"] = rng.standard_normal((1, c))
    for key in list(layer.buffers):
        layer.buffers[key] = layer.buffers[key].astype(np.float64)
    return layer


# ----------------------------------------------------------------------------- BatchNorm


class TestBatchNormForward(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(0)

    def check_train_forward(self, shape):
        layer = BatchNorm(eps=1e-3)
        X = randn(self.rng, *shape, dtype=np.float32) * 3 + 1
        Y = layer.forward(X)
        c = shape[-1]
        self.assertEqual(Y.shape, X.shape)
        self.assertEqual(Y.dtype, np.float32)
        self.assertEqual((layer.n_in, layer.n_out), (c, c))
        for key, fill in (("gamma", 1.0), ("beta", 0.0)):
            self.assertEqual(layer.parameters[key].shape, (1, c))
            self.assertEqual(layer.parameters[key].dtype, np.float32)
            np.testing.assert_array_equal(layer.parameters[key], fill)
            self.assertEqual(layer.gradients[key].shape, (1, c))
        for key in ("running_mean", "running_var"):
            self.assertEqual(layer.buffers[key].shape, (1, c))
            self.assertEqual(layer.buffers[key].dtype, np.float32)
        mean, var, _ = ref_batch_stats(X)
        np.testing.assert_allclose(Y, ref_normalize(X, mean, var, np.ones(c), np.zeros(c), 1e-3), rtol=1e-4, atol=1e-5)

    def test_train_forward_fc(self):
        self.check_train_forward((16, 5))

    def test_train_forward_conv(self):
        self.check_train_forward((4, 5, 6, 3))

    def test_train_forward_float64_with_affine_and_activation(self):
        X = randn(self.rng, 6, 3, 3, 4)
        layer = float64_batchnorm(self.rng, X.shape, activation="tanh", eps=1e-5)
        gamma, beta = layer.parameters["gamma"][0], layer.parameters["beta"][0]
        Y = layer.forward(X)
        self.assertEqual(Y.dtype, np.float64)
        mean, var, _ = ref_batch_stats(X)
        np.testing.assert_allclose(Y, np.tanh(ref_normalize(X, mean, var, gamma, beta, 1e-5)), rtol=1e-10, atol=1e-12)

    def test_eval_forward_uses_given_running_statistics(self):
        X = randn(self.rng, 5, 4, 4, 3)
        layer = float64_batchnorm(self.rng, X.shape, eps=1e-4)
        layer.buffers["running_mean"] = self.rng.standard_normal((1, 3))
        layer.buffers["running_var"] = self.rng.uniform(0.5, 2.0, (1, 3))
        before = {k: v.copy() for k, v in layer.buffers.items()}
        layer.eval()
        Y = layer.forward(X)
        expected = ref_normalize(
            X,
            layer.buffers["running_mean"][0],
            layer.buffers["running_var"][0],
            layer.parameters["gamma"][0],
            layer.parameters["beta"][0],
            1e-4,
        )
        np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
        for key, value in before.items():  # evaluation never touches the running statistics
            np.testing.assert_array_equal(layer.buffers[key], value)

    def test_running_statistics_follow_the_recurrence(self):
        momentum = 0.2
        layer = BatchNorm(momentum=momentum)
        rm, rv = np.zeros(3), np.ones(3)
        for step in range(4):
            X = randn(self.rng, 8, 3, 3, 3, dtype=np.float32) * (step + 1) + step
            layer.forward(X)
            mean, _, var_unbiased = ref_batch_stats(X)
            rm = (1 - momentum) * rm + momentum * mean
            rv = (1 - momentum) * rv + momentum * var_unbiased
            np.testing.assert_allclose(layer.buffers["running_mean"][0], rm, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(layer.buffers["running_var"][0], rv, rtol=1e-5, atol=1e-6)

    def test_eval_after_training_uses_running_statistics(self):
        layer = BatchNorm(momentum=0.3, eps=1e-5)
        for _ in range(5):
            layer.forward(randn(self.rng, 32, 4, dtype=np.float32) * 2 + 3)
        layer.parameters["gamma"][...] = np.array([[0.5, 1.0, 1.5, 2.0]], dtype=np.float32)
        layer.parameters["beta"][...] = np.array([[0.1, -0.2, 0.3, -0.4]], dtype=np.float32)
        rm = layer.buffers["running_mean"].astype(np.float64)
        rv = layer.buffers["running_var"].astype(np.float64)
        self.assertFalse(np.allclose(rm, 0.0))
        self.assertFalse(np.allclose(rv, 1.0))
        X = randn(self.rng, 10, 4, dtype=np.float32) * 2 + 3
        layer.eval()
        Y_eval = layer.forward(X)
        gamma = layer.parameters["gamma"].astype(np.float64)
        beta = layer.parameters["beta"].astype(np.float64)
        np.testing.assert_allclose(Y_eval, (X - rm) / np.sqrt(rv + 1e-5) * gamma + beta, rtol=1e-5, atol=1e-5)
        layer.train()
        Y_train = layer.forward(X)
        self.assertGreater(np.abs(Y_train - Y_eval).max(), 1e-2)
        # evaluation works for a single example; training on one value per feature cannot
        layer.eval()
        self.assertEqual(layer.forward(X[:1]).shape, (1, 4))
        layer.train()
        with self.assertRaisesRegex(ValueError, "BatchNorm.*more than one value"):
            layer.forward(X[:1])


class TestBatchNormBackward(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(1)

    def check_gradients(self, shape, training=True, activation="linear"):
        X = randn(self.rng, *shape) * 2 + 0.5
        layer = float64_batchnorm(self.rng, shape, activation=activation)
        if not training:
            layer.buffers["running_mean"] = self.rng.standard_normal((1, shape[-1]))
            layer.buffers["running_var"] = self.rng.uniform(0.5, 2.0, (1, shape[-1]))
        layer.train(training)
        dout = randn(self.rng, *shape)
        layer.forward(X)
        dX = layer.backward(dout)
        grads = {k: v.copy() for k, v in layer.gradients.items()}
        self.assertEqual(dX.shape, X.shape)
        self.assertEqual(dX.dtype, np.float64)
        self.assertLess(relative_error(dX, numerical_gradient(layer.forward, X, dout)), TOL, "dX")
        for key in ("gamma", "beta"):
            value = layer.parameters[key].copy()
            numeric = numerical_gradient(layer.forward_with_param(key, X), value, dout)
            self.assertLess(relative_error(grads[key], numeric), TOL, key)

    def test_train_fc(self):
        self.check_gradients((7, 4))

    def test_train_conv(self):
        self.check_gradients((3, 3, 2, 3))

    def test_train_conv_with_activation(self):
        self.check_gradients((2, 3, 3, 2), activation="tanh")

    def test_eval_fc(self):
        self.check_gradients((5, 4), training=False)

    def test_eval_conv(self):
        self.check_gradients((2, 3, 3, 3), training=False, activation="sigmoid")

    def test_train_conv_with_fused_relu(self):
        self.check_gradients((3, 3, 3, 4), activation="relu")

    def test_eval_with_fused_relu(self):
        self.check_gradients((6, 5), training=False, activation="relu")

    def test_backward_leaves_the_upstream_gradient_alone(self):
        for activation in ("relu", "linear", "tanh"):
            layer = BatchNorm(activation=activation)
            X = randn(self.rng, 4, 3, 3, 5, dtype=np.float32)
            dY = randn(self.rng, 4, 3, 3, 5, dtype=np.float32)
            kept = dY.copy()
            layer.forward(X)
            layer.backward(dY)
            np.testing.assert_array_equal(dY, kept, err_msg=activation)
            layer.backward_preactivation(dY)
            np.testing.assert_array_equal(dY, kept, err_msg=activation)

    def test_float32_large_mean_matches_float64(self):
        """Inputs whose mean dwarfs their spread (here 1e4 vs 1) take the two-pass path: the
        float32 layer still agrees with a float64 one."""
        X64 = randn(self.rng, 8, 6, 6, 3) + np.array([1e4, -3e3, 0.0])
        dY64 = randn(self.rng, 8, 6, 6, 3)
        ref = float64_batchnorm(self.rng, X64.shape, activation="relu")
        fast = BatchNorm(activation="relu")
        fast.forward(X64.astype(np.float32))
        for key in ("gamma", "beta"):
            fast.parameters[key] = ref.parameters[key].astype(np.float32)
        Y_ref, Y = ref.forward(X64), fast.forward(X64.astype(np.float32))
        np.testing.assert_allclose(Y, Y_ref, atol=2e-3)
        dX_ref, dX = ref.backward(dY64), fast.backward(dY64.astype(np.float32))
        self.assertLess(relative_error(dX, dX_ref), 2e-3)
        for key in ("gamma", "beta"):
            self.assertLess(relative_error(fast.gradients[key], ref.gradients[key]), 1e-3, key)

    def test_column_sums(self):
        from neural_networks.functional.blocks import column_sums

        for M, c in ((1, 1), (7, 3), (70_000, 5), (9000, 64)):
            A = randn(self.rng, M, c, dtype=np.float32)
            B = randn(self.rng, M, c, dtype=np.float32)
            got, got_ab = column_sums(A), column_sums(A, B)
            self.assertEqual(got.dtype, np.float64)
            np.testing.assert_allclose(got, A.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-4 * np.sqrt(M))
            np.testing.assert_allclose(
                got_ab, (A.astype(np.float64) * B).sum(axis=0), rtol=1e-5, atol=1e-4 * np.sqrt(M)
            )

    def test_float32_in_float32_out(self):
        layer = BatchNorm()
        X = randn(self.rng, 4, 5, 5, 3, dtype=np.float32)
        Y = layer.forward(X)
        dX = layer.backward(np.ones_like(Y))
        self.assertEqual(dX.dtype, np.float32)
        for key in ("gamma", "beta"):
            self.assertEqual(layer.gradients[key].dtype, np.float32)
        # a constant upstream gradient gives zero input gradient (the output is mean-free)
        np.testing.assert_allclose(dX, 0.0, atol=1e-5)

    def test_backward_shape_is_checked(self):
        layer = BatchNorm()
        layer.forward(randn(self.rng, 4, 3))
        with self.assertRaisesRegex(ValueError, "BatchNorm.*backward"):
            layer.backward(np.ones((4, 2)))


class TestBatchNormKernelsInBlocks(unittest.TestCase):
    """The training kernels over many cache-sized blocks of rows (the last one partial), against
    the textbook formulas in float64."""

    def setUp(self):
        from neural_networks.functional import batchnorm as F

        self.F = F
        self.rng = np.random.default_rng(7)
        c = 64
        self.M = 3 * (F.BATCHNORM_BLOCK // c) + 17

    def reference(self, X, dY, gamma, beta, eps, relu, mask=None):
        """Output, dX, dgamma, dbeta; the ReLU's gradient mask is ``mask`` when given (float32
        and float64 outputs may differ in sign where they are within rounding of 0)."""
        X, dY = X.astype(np.float64), dY.astype(np.float64)
        mean, var = X.mean(axis=0), X.var(axis=0)
        xhat = (X - mean) / np.sqrt(var + eps)
        Z = gamma * xhat + beta
        if relu:
            dY = dY * (Z > 0 if mask is None else mask)
            Z = np.maximum(Z, 0)
        M = X.shape[0]
        dX = gamma / np.sqrt(var + eps) * (dY - dY.sum(0) / M - xhat * (dY * xhat).sum(0) / M)
        return Z, dX, (dY * xhat).sum(0, keepdims=True), dY.sum(0, keepdims=True)

    def check(self, offset, relu, overwrite):
        F = self.F
        X = (randn(self.rng, self.M, 64) * 2 + offset).astype(np.float32)
        dY = randn(self.rng, self.M, 64, dtype=np.float32)
        gamma = self.rng.uniform(0.5, 1.5, (1, 64)).astype(np.float32)
        beta = randn(self.rng, 1, 64, dtype=np.float32)
        Z, mean, inv_std, var = F.batchnorm_train_forward(X, gamma, beta, 1e-5, relu=relu)
        Z_ref, dX_ref, dgamma_ref, dbeta_ref = self.reference(X, dY, gamma, beta, 1e-5, relu, mask=Z > 0)
        np.testing.assert_allclose(Z, Z_ref, atol=2e-4 * max(1.0, abs(offset)) ** 0.5)
        upstream = dY.copy()
        dX, dgamma, dbeta = F.batchnorm_train_backward(
            upstream, X, mean, inv_std, gamma, overwrite_dZ=overwrite, relu_output=Z if relu else None
        )
        self.assertLess(relative_error(dX, dX_ref), 1e-4)
        self.assertLess(relative_error(dgamma, dgamma_ref), 1e-4)
        self.assertLess(relative_error(dbeta, dbeta_ref), 1e-4)
        self.assertEqual(dX.dtype, np.float32)
        if overwrite:
            self.assertTrue(np.shares_memory(dX, upstream))
        else:
            np.testing.assert_array_equal(upstream, dY)

    def test_one_pass_and_two_pass_moments_with_and_without_relu(self):
        for offset in (0.5, 1e3):  # 1e3 against a spread of 2: the two-pass variance
            for relu in (False, True):
                for overwrite in (False, True):
                    with self.subTest(offset=offset, relu=relu, overwrite=overwrite):
                        self.check(offset, relu, overwrite)

    def test_gelu_applied_block_by_block_equals_gelu_after_the_map(self):
        from unittest import mock

        from neural_networks.functional import gelu_tables, parallel

        # GELU with its slope is applied to each normalised block in cache: output and slope
        # must be bit for bit those of the map followed by gelu_with_slope, in both dtypes and
        # for any thread count; a wide beta puts values beyond the float32 tables (|z| >= 6)
        # in every block, and widths that do not divide the block give a partial last block
        F = self.F
        for c in (64, 24):
            M = 3 * (F.BATCHNORM_BLOCK // c) + 17
            for dtype in (np.float32, np.float64):
                X = (randn(self.rng, M, c) * 2 + 0.5).astype(dtype)
                gamma = self.rng.uniform(0.5, 1.5, (1, c)).astype(dtype)
                beta = (4 * randn(self.rng, 1, c)).astype(dtype)
                Z, *stats = F.batchnorm_train_forward(X, gamma, beta, 1e-5)
                Y_ref, S_ref = gelu_tables.gelu_with_slope(Z)
                if dtype == np.float32:
                    self.assertGreater(np.sum(np.abs(Z[: F.BATCHNORM_BLOCK // c]) >= 6), 10)
                for threads in ("1", "2"):
                    with self.subTest(c=c, dtype=dtype.__name__, threads=threads):
                        with mock.patch.dict("os.environ", {parallel.ENV_THREADS: threads}):
                            S = np.full_like(X, np.nan)
                            Y, *fused_stats = F.batchnorm_train_forward(
                                X, gamma, beta, 1e-5, slope_blocks=gelu_tables.GeluWithSlopeBlocks(dtype), slope=S
                            )
                        np.testing.assert_array_equal(Y, Y_ref)
                        np.testing.assert_array_equal(S, S_ref)
                        for got, want in zip(fused_stats, stats):
                            np.testing.assert_array_equal(got, want)

    def test_the_slope_array_is_checked(self):
        from neural_networks.functional import gelu_tables

        F = self.F
        X = randn(self.rng, 8, 3, dtype=np.float32)
        ones, zeros = np.ones((1, 3), np.float32), np.zeros((1, 3), np.float32)
        blocks = gelu_tables.GeluWithSlopeBlocks(np.float32)
        for slope, relu in (
            (None, False),
            (np.empty((8, 4), np.float32), False),
            (np.empty((8, 3), np.float64), False),
            (np.empty((3, 8), np.float32).T, False),
            (np.empty((8, 3), np.float32), True),
        ):
            with self.assertRaisesRegex(ValueError, r"C-contiguous slope array of shape \(8, 3\) and dtype float32"):
                F.batchnorm_train_forward(X, ones, zeros, 1e-5, relu=relu, slope_blocks=blocks, slope=slope)


class TestBatchNormValidation(unittest.TestCase):
    def test_rank_and_channels(self):
        layer = BatchNorm()
        layer.index = 2
        with self.assertRaisesRegex(ValueError, r"BatchNorm \(layer 2\).*rank >= 2.*\(5,\)"):
            layer.forward(np.ones(5))
        layer.forward(np.random.default_rng(0).standard_normal((4, 3)))
        with self.assertRaisesRegex(ValueError, r"BatchNorm \(layer 2\).*expected 3 .*got 4.*\(2, 2, 2, 4\)"):
            layer.forward(np.ones((2, 2, 2, 4)))

    def test_bad_arguments(self):
        for kwargs in (
            {"momentum": -0.1},
            {"momentum": 1.5},
            {"momentum": "x"},
            {"eps": 0.0},
            {"eps": -1e-5},
            {"activation": "nope"},
        ):
            with self.subTest(**{k: repr(v) for k, v in kwargs.items()}):
                with self.assertRaises(ValueError):
                    BatchNorm(**kwargs)

    def test_without_scale_no_gamma_is_trained_or_saved(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = NeuralNetwork(
                layers=[Conv2D(4, (3, 3), pad="same"), BatchNorm(scale=False, activation="relu"), Flatten()]
                + [FullyConnected(3, activation="softmax")],
                optimizer=SGD(lr=0.1, momentum=0.9),
                seed=0,
            )
            rng = np.random.default_rng(0)
            X, Y = rng.standard_normal((6, 5, 5, 2)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2] * 2]
            model.train_step(X, Y, 0.0)
            self.assertEqual(list(model.layers[1].parameters), ["beta"])
            names = [key for group in model.parameter_groups() for key, _, _ in group["params"]]
            self.assertNotIn("gamma1", names)
            self.assertIn("beta1", names)
            model.save(Path(tmp) / "m.npz")
            loaded = NeuralNetwork.load(Path(tmp) / "m.npz")
            self.assertFalse(loaded.layers[1].scale)
            np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        with self.assertRaisesRegex(ValueError, "BatchNorm scale"):
            BatchNorm(scale="no")

    def test_config_round_trip(self):
        layer = BatchNorm(momentum=0.05, eps=1e-3, activation="relu")
        config = json.loads(json.dumps(layer.config()))
        self.assertEqual(
            config, {"name": "batchnorm", "momentum": 0.05, "eps": 1e-3, "activation": "relu", "scale": True}
        )
        registry = dict(layers_module.LAYERS, batchnorm=BatchNorm)
        name = config.pop("name")
        rebuilt = registry[name](**config)
        self.assertEqual(rebuilt.config(), layer.config())


# ----------------------------------------------------------------------------- PyTorch parity


@O.requires_torch
class TestBatchNormTorchParity(unittest.TestCase):
    """Against ``F.batch_norm`` (``torch_oracles.BatchNormOracle``), running statistics included,
    over three training steps and one in evaluation mode."""

    def assert_close(self, actual, expected, dtype, what):
        O.assert_close(actual, expected, dtype, what, reshape=True)  # torch's running statistics are (c,)

    def check(self, shape, dtype, scale: bool = True):
        rng = np.random.default_rng(2)
        momentum, eps = 0.15, 1e-5
        c = shape[-1]
        layer = BatchNorm(momentum=momentum, eps=eps, scale=scale)
        layer.forward(np.zeros(shape, dtype=dtype) + np.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)))
        layer.buffers["running_mean"] = np.zeros((1, c), dtype=dtype)  # start again from torch's initial state
        layer.buffers["running_var"] = np.ones((1, c), dtype=dtype)
        self.assertEqual(list(layer.parameters), ["gamma", "beta"] if scale else ["beta"])
        if scale:
            layer.parameters["gamma"] = rng.uniform(0.5, 1.5, (1, c)).astype(dtype)
        layer.parameters["beta"] = rng.standard_normal((1, c)).astype(dtype)
        gamma = layer.parameters["gamma"] if scale else np.ones((1, c), dtype=dtype)
        oracle = O.BatchNormOracle(c, dtype, momentum=momentum, eps=eps)
        for step, training in enumerate((True, True, True, False)):
            layer.train(training)
            X = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
            dout = rng.standard_normal(shape).astype(dtype)
            Y = layer.forward(X)
            dX = layer.backward(dout)
            ref = oracle(X, gamma, layer.parameters["beta"], dout, training=training)
            what = f"{shape} {np.dtype(dtype).name} step {step} ({'train' if training else 'eval'})"
            self.assert_close(Y, ref.Y, dtype, f"Y {what}")
            self.assert_close(dX, ref.dX, dtype, f"dX {what}")
            if scale:
                self.assert_close(layer.gradients["gamma"], ref.dgamma, dtype, f"dgamma {what}")
            else:
                self.assertEqual(list(layer.gradients), ["beta"])
            self.assert_close(layer.gradients["beta"], ref.dbeta, dtype, f"dbeta {what}")
            self.assert_close(layer.buffers["running_mean"], ref.running_mean, dtype, f"running_mean {what}")
            self.assert_close(layer.buffers["running_var"], ref.running_var, dtype, f"running_var {what}")

    def test_fc_float64(self):
        self.check((9, 5), np.float64)

    def test_nhwc_float64(self):
        self.check((4, 5, 3, 6), np.float64)

    def test_nhwc_float32(self):
        self.check((8, 6, 6, 4), np.float32)

    def test_fc_float32(self):
        self.check((32, 7), np.float32)

    def test_without_scale(self):
        for shape, dtype in (((4, 5, 3, 6), np.float64), ((8, 6, 6, 4), np.float32), ((9, 5), np.float64)):
            with self.subTest(shape=shape, dtype=dtype):
                self.check(shape, dtype, scale=False)


# ----------------------------------------------------------------------------- Dropout


class TestDropout(unittest.TestCase):
    def test_eval_is_identity(self):
        layer = Dropout(0.5)
        layer.rng = np.random.default_rng(0)
        layer.eval()
        X = randn(np.random.default_rng(1), 6, 4, 4, 3, dtype=np.float32)
        np.testing.assert_array_equal(layer.forward(X), X)
        dY = np.ones_like(X)
        np.testing.assert_array_equal(layer.backward(dY), dY)

    def test_p_zero_is_identity_in_training(self):
        layer = Dropout(0.0)
        X = np.arange(12, dtype=np.float32).reshape(3, 4)
        np.testing.assert_array_equal(layer.forward(X), X)
        np.testing.assert_array_equal(layer.backward(X), X)

    def test_mask_statistics_and_scaling(self):
        for p in (0.1, 0.5, 0.8):
            with self.subTest(p=p):
                layer = Dropout(p)
                layer.rng = np.random.default_rng(3)
                X = np.ones((1000, 1000), dtype=np.float32)
                Y = layer.forward(X)
                self.assertEqual(Y.dtype, np.float32)
                kept = Y != 0
                self.assertAlmostEqual(kept.mean(), 1 - p, delta=5e-3)
                np.testing.assert_allclose(Y[kept], 1 / (1 - p), rtol=1e-6)

    def test_backward_uses_the_same_mask(self):
        rng = np.random.default_rng(4)
        layer = Dropout(0.3)
        layer.rng = np.random.default_rng(5)
        X = rng.uniform(1.0, 2.0, (20, 6, 6, 3))  # never zero: a zero output means a dropped unit
        Y = layer.forward(X)
        mask = (Y != 0).astype(np.float64)
        np.testing.assert_allclose(Y, X * mask / 0.7, rtol=1e-12)
        dY = rng.standard_normal(X.shape)
        np.testing.assert_allclose(layer.backward(dY), dY * mask / 0.7, rtol=1e-12)
        # and the backward pass is the exact gradient of this (fixed-mask) map
        np.testing.assert_allclose(layer.backward(dY), dY * Y / X, rtol=1e-12)

    def test_seeded_rng_is_deterministic(self):
        X = np.ones((50, 40), dtype=np.float32)
        a, b, c = Dropout(0.5), Dropout(0.5), Dropout(0.5)
        a.rng, b.rng, c.rng = np.random.default_rng(7), np.random.default_rng(7), np.random.default_rng(8)
        first_a, first_b, first_c = a.forward(X), b.forward(X), c.forward(X)
        np.testing.assert_array_equal(first_a, first_b)
        self.assertFalse(np.array_equal(first_a, first_c))
        self.assertFalse(np.array_equal(first_a, a.forward(X)))  # a fresh mask every step

    def test_without_rng_masks_follow_numpys_global_seed(self):
        """No seeded model: masks come from np.random, so np.random.seed reproduces them (as the
        course's scripts seed everything)."""
        layer = Dropout(0.5)
        X = np.ones((40, 30))
        np.random.seed(3)
        first = layer.forward(X)
        np.random.seed(3)
        again = layer.forward(X)
        self.assertIsNone(layer.rng)
        np.testing.assert_array_equal(first, again)
        self.assertFalse(np.array_equal(first, layer.forward(X)))
        self.assertTrue(0.35 < np.mean(first == 0) < 0.65)

    def test_p_validation_and_config(self):
        for p in (-0.1, 1.0, 1.5, "0.5", True, None):
            with self.subTest(p=p):
                with self.assertRaises(ValueError):
                    Dropout(p)
        config = json.loads(json.dumps(Dropout(0.25).config()))
        self.assertEqual(config, {"name": "dropout", "p": 0.25})
        self.assertEqual(Dropout(**{k: v for k, v in config.items() if k != "name"}).p, 0.25)


# ----------------------------------------------------------------------------- in a model


class TestInModel(unittest.TestCase):
    def build(self):
        return NeuralNetwork(
            layers=[
                Conv2D(4, (3, 3), "linear"),
                BatchNorm(activation="relu"),
                Pool2D((2, 2), "max", stride=2),
                Flatten(),
                FullyConnected(8, "linear"),
                BatchNorm(momentum=0.2, activation="relu"),
                Dropout(0.3),
                FullyConnected(3, "softmax"),
            ],
            loss="cross_entropy",
            optimizer=SGD(lr=0.05, momentum=0.9),
            seed=0,
        )

    def test_initialize_layer_rebuilds_both(self):
        for layer in (BatchNorm(momentum=0.05, eps=1e-3, activation="relu"), Dropout(0.2)):
            rebuilt = initialize_layer(**json.loads(json.dumps(layer.config())))
            self.assertIs(type(rebuilt), type(layer))
            self.assertEqual(rebuilt.config(), layer.config())

    def test_save_load_keeps_running_statistics_and_predictions(self):
        model = self.build()
        rng = np.random.default_rng(0)
        X = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
        Y = one_hot(rng, 16, 3).astype(np.float32)
        for epoch in range(3):
            model.train_step(X, Y, epoch=epoch)
        bn = model.layers[1]
        self.assertFalse(np.allclose(bn.buffers["running_mean"], 0.0))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.npz"
            model.save(path)
            loaded = NeuralNetwork.load(path)
        self.assertEqual(
            [type(l).__name__ for l in loaded.layers],
            ["Conv2D", "BatchNorm", "Pool2D", "Flatten", "FullyConnected", "BatchNorm", "Dropout", "FullyConnected"],
        )
        for i in (1, 5):
            original, restored = model.layers[i], loaded.layers[i]
            self.assertEqual(restored.config(), original.config())
            for key in ("running_mean", "running_var"):
                np.testing.assert_array_equal(restored.buffers[key], original.buffers[key])
            for key in ("gamma", "beta"):
                np.testing.assert_array_equal(restored.parameters[key], original.parameters[key])
        self.assertEqual(loaded.layers[6].p, 0.3)
        predictions = model.predict(X)
        np.testing.assert_array_equal(loaded.predict(X), predictions)
        # evaluation is deterministic (running statistics, no dropout) and differs from training
        np.testing.assert_array_equal(model.predict(X), predictions)
        self.assertTrue(model.training)
        self.assertFalse(np.allclose(model.forward(X), predictions))
        # the loaded model trains on
        loss, _ = loaded.train_step(X, Y, epoch=3)
        self.assertTrue(np.isfinite(loss))


if __name__ == "__main__":
    unittest.main()
