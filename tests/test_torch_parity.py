"""Parity with PyTorch: forward and backward of every op, against ``torch.nn.functional``.

PyTorch is an independent oracle: a hand-written expected value can share a bug with the code
it checks, torch cannot. Each comparison runs in float64 with a tight tolerance (relative
``1e-10``) and, once per op, in float32 with a loose one (``1e-5``).

The torch side (layout conversions, the ops, the networks translated to ``torch.nn``) is in
:mod:`tests.torch_oracles`; this module holds the cases and the comparisons. The library is NHWC
with conv weights ``(kh, kw, c_in, c_out)``, torch NCHW with weights ``(c_out, c_in, kh, kw)``;
the oracles return their results in the library's layouts.

The whole module is skipped when torch is not installed.
"""

from __future__ import annotations

import unittest

import numpy as np

from neural_networks import functional as F
from neural_networks.activations import SoftMax
from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D
from neural_networks.losses import CrossEntropy
from neural_networks.models import NeuralNetwork

from . import torch_oracles as O
from .torch_oracles import assert_close, requires_torch


def setUpModule():
    O.push_torch_settings(threads=2, default_dtype=np.float64)


def tearDownModule():
    O.pop_torch_settings()


# ----------------------------------------------------------------------------- helpers


def onehot(labels, k, dtype=np.float64):
    Y = np.zeros((len(labels), k), dtype=dtype)
    Y[np.arange(len(labels)), labels] = 1
    return Y


def make_conv(n_out, kernel, stride, pad, activation, X, rng, dtype):
    """A Conv2D with its parameters replaced by random arrays of ``dtype``."""
    layer = Conv2D(n_out, kernel_shape=kernel, activation=activation, stride=stride, pad=pad)
    layer.forward(X)  # creates the parameters (float32) from the input shape
    W = rng.standard_normal(layer.parameters["W"].shape).astype(dtype)
    b = rng.standard_normal(layer.parameters["b"].shape).astype(dtype)
    layer.parameters["W"], layer.parameters["b"] = W, b
    layer.clear_gradients()
    return layer


# ----------------------------------------------------------------------------- Conv2D


@requires_torch
class TestConv2DParity(unittest.TestCase):
    # (batch, rows, cols, c_in, c_out, kernel, stride, pad, activation)
    CASES = [
        (2, 7, 7, 3, 4, (3, 3), 1, "same", "linear"),
        (2, 7, 7, 3, 4, (3, 3), 1, "same", "relu"),
        (3, 8, 9, 2, 5, (3, 3), 2, "same", "linear"),
        (1, 10, 11, 4, 3, (3, 3), 3, "same", "relu"),
        (2, 9, 9, 3, 2, (5, 5), 1, "same", "linear"),
        (2, 6, 6, 1, 3, (1, 1), 1, "same", "relu"),
        (2, 8, 8, 2, 3, (2, 2), 1, "same", "linear"),  # even kernel: (k-1)//2 = 0 each side
        (2, 8, 8, 2, 3, (4, 4), 2, "same", "relu"),  # even kernel: 1 each side, symmetric
        (2, 9, 7, 3, 4, (3, 5), 1, "same", "linear"),  # non-square kernel
        (1, 9, 8, 2, 2, (2, 3), 2, "same", "relu"),
        (3, 7, 8, 3, 4, (3, 3), 1, "valid", "relu"),
        (2, 11, 10, 2, 3, (3, 2), 3, "valid", "linear"),
        (2, 6, 7, 3, 2, (3, 3), 1, 2, "linear"),  # int padding
        (2, 7, 6, 2, 3, (5, 3), 2, 1, "relu"),
        (2, 6, 7, 3, 2, (3, 3), 1, (1, 2), "linear"),  # (rows, cols) padding
        (1, 9, 9, 4, 5, (2, 4), 3, (0, 2), "relu"),
        (4, 5, 5, 1, 1, (5, 5), 1, "valid", "linear"),  # kernel covers the whole input
    ]

    def check(self, case, dtype=np.float64, seed=0):
        n, h, w, c, f, kernel, stride, pad, activation = case
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, h, w, c)).astype(dtype)
        layer = make_conv(f, kernel, stride, pad, activation, X, rng, dtype)
        W, b = layer.parameters["W"].copy(), layer.parameters["b"].copy()

        Y = layer.forward(X)
        dY = rng.standard_normal(Y.shape).astype(dtype)
        dX = layer.backward(dY)

        explicit_pad = F.resolve_padding(pad, kernel)  # torch's padding="same" differs for even kernels
        ref = O.conv2d(X, W, b, dY, stride=stride, pad=explicit_pad, activation=activation)

        what = f"case {case} {np.dtype(dtype).name}"
        self.assertEqual(Y.dtype, dtype, what)
        assert_close(Y, ref.Y, dtype, f"forward, {what}")
        assert_close(dX, ref.dX, dtype, f"dX, {what}")
        assert_close(layer.gradients["W"], ref.dW, dtype, f"dW, {what}")
        assert_close(layer.gradients["b"], ref.db, dtype, f"db, {what}")

    def test_float64_cases(self):
        for i, case in enumerate(self.CASES):
            with self.subTest(case=case):
                self.check(case, np.float64, seed=i)

    def test_float32(self):
        self.check((3, 9, 8, 3, 5, (3, 3), 2, "same", "relu"), np.float32, seed=123)

    def test_padding_same_keeps_size_for_odd_kernels(self):
        # For odd kernels and stride 1, the spec's 'same' is torch's padding='same'.
        rng = np.random.default_rng(7)
        X = rng.standard_normal((2, 6, 7, 3))
        for kernel in [(3, 3), (5, 3), (1, 5)]:
            with self.subTest(kernel=kernel):
                layer = make_conv(4, kernel, 1, "same", "linear", X, rng, np.float64)
                Y = layer.forward(X)
                out = O.conv2d(X, layer.parameters["W"], layer.parameters["b"], stride=1, pad="same").Y
                self.assertEqual(Y.shape, (2, 6, 7, 4))
                assert_close(Y, out, np.float64, f"same, kernel {kernel}")


# ----------------------------------------------------------------------------- Pool2D


@requires_torch
class TestPool2DParity(unittest.TestCase):
    # (batch, rows, cols, channels, kernel, stride, pad)
    GEOMETRIES = [
        (2, 8, 8, 3, (2, 2), 2, 0),
        (2, 7, 9, 2, (3, 3), 1, 0),  # overlapping windows: gradients accumulate
        (3, 9, 10, 2, (3, 3), 2, 0),
        (1, 10, 8, 4, (2, 3), 3, 0),  # stride larger than the kernel: some inputs unused
        (2, 8, 7, 2, (3, 2), 1, 0),
        (2, 7, 7, 3, (3, 3), 2, 1),  # padded
        (2, 8, 9, 2, (4, 2), 1, (2, 1)),
        (2, 6, 6, 2, (2, 2), 1, "same"),  # (k-1)//2 = 0
        (2, 7, 6, 3, (3, 3), 1, "same"),
    ]

    def check(self, mode, geometry, X, dtype=np.float64, seed=0):
        n, h, w, c, kernel, stride, pad = geometry
        rng = np.random.default_rng(seed)
        layer = Pool2D(kernel_shape=kernel, mode=mode, stride=stride, pad=pad)
        Y = layer.forward(X)
        dY = rng.standard_normal(Y.shape).astype(dtype)
        dX = layer.backward(dY)

        # torch's own padding argument: -inf for max (see test_max_float64), counted zeros for average
        ref = O.pool2d(
            X, dY, mode=mode, kernel=kernel, stride=stride, pad=F.resolve_padding(pad, kernel), padding="torch"
        )
        what = f"{mode} {geometry} {np.dtype(dtype).name}"
        self.assertEqual(Y.dtype, dtype, what)
        assert_close(Y, ref.Y, dtype, f"forward, {what}")
        assert_close(dX, ref.dX, dtype, f"dX, {what}")

    def test_max_float64(self):
        for i, geometry in enumerate(self.GEOMETRIES):
            with self.subTest(geometry=geometry):
                rng = np.random.default_rng(100 + i)
                X = rng.standard_normal(geometry[:4])
                if F.resolve_padding(geometry[6], geometry[4]) != (0, 0):
                    # The library pads with zeros (the spec), torch's max_pool2d with -inf. On an
                    # all-positive input a zero from the padding never wins, so they agree.
                    X = np.abs(X) + 0.1
                self.check("max", geometry, X, np.float64, seed=i)

    def test_average_float64(self):
        # Zero padding counted in the divisor is avg_pool2d(count_include_pad=True).
        for i, geometry in enumerate(self.GEOMETRIES):
            with self.subTest(geometry=geometry):
                X = np.random.default_rng(200 + i).standard_normal(geometry[:4])
                self.check("average", geometry, X, np.float64, seed=i)

    def test_max_ties_first_maximum_wins(self):
        # Small integers (many equal values) and whole windows of zeros, as after a ReLU: the
        # whole gradient goes to the first maximum in row-major window order, as in torch.
        for i, geometry in enumerate(self.GEOMETRIES[:5]):
            with self.subTest(geometry=geometry):
                rng = np.random.default_rng(300 + i)
                X = rng.integers(0, 3, size=geometry[:4]).astype(np.float64)
                X[:, : geometry[1] // 2, : geometry[2] // 2, :] = 0.0
                self.check("max", geometry, X, np.float64, seed=i)

    def test_max_ties_relu_output(self):
        rng = np.random.default_rng(5)
        X = np.maximum(rng.standard_normal((2, 8, 8, 3)) - 0.8, 0.0)  # mostly zeros
        self.check("max", (2, 8, 8, 3, (2, 2), 2, 0), X, np.float64, seed=5)
        self.check("max", (2, 8, 8, 3, (3, 3), 1, 0), X, np.float64, seed=6)

    def test_float32(self):
        geometry = (3, 9, 10, 2, (3, 3), 2, 0)
        for mode in ("max", "average"):
            with self.subTest(mode=mode):
                X = np.random.default_rng(400).standard_normal(geometry[:4]).astype(np.float32)
                self.check(mode, geometry, X, np.float32, seed=401)


# ----------------------------------------------------------------------------- FullyConnected


@requires_torch
class TestFullyConnectedParity(unittest.TestCase):
    def check(self, m, n_in, n_out, activation, dtype, seed):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((m, n_in)).astype(dtype)
        layer = FullyConnected(n_out, activation=activation)
        layer.forward(X)
        layer.parameters["W"] = rng.standard_normal((n_in, n_out)).astype(dtype)
        layer.parameters["b"] = rng.standard_normal((1, n_out)).astype(dtype)
        layer.clear_gradients()
        Y = layer.forward(X)
        dY = rng.standard_normal(Y.shape).astype(dtype)
        dX = layer.backward(dY)

        ref = O.dense(X, layer.parameters["W"], layer.parameters["b"], dY, activation=activation)
        what = f"{(m, n_in, n_out, activation)} {np.dtype(dtype).name}"
        self.assertEqual(Y.dtype, dtype, what)
        assert_close(Y, ref.Y, dtype, f"forward, {what}")
        assert_close(dX, ref.dX, dtype, f"dX, {what}")
        assert_close(layer.gradients["W"], ref.dW, dtype, f"dW, {what}")
        assert_close(layer.gradients["b"], ref.db, dtype, f"db, {what}")

    def test_float64(self):
        cases = [(1, 3, 2, "linear"), (5, 7, 4, "relu"), (16, 10, 3, "linear"), (8, 5, 6, "softmax")]
        for i, (m, n_in, n_out, activation) in enumerate(cases):
            with self.subTest(case=(m, n_in, n_out, activation)):
                self.check(m, n_in, n_out, activation, np.float64, seed=i)

    def test_float32(self):
        self.check(12, 9, 5, "relu", np.float32, seed=50)


# ----------------------------------------------------------------------------- SoftMax


@requires_torch
class TestSoftMaxParity(unittest.TestCase):
    def check(self, Z, dtype):
        rng = np.random.default_rng(Z.size)
        act = SoftMax()
        S = act.forward(Z)
        dY = rng.standard_normal(Z.shape).astype(dtype)
        dZ = act.backward(Z, dY)
        ref = O.softmax(Z, dY)
        self.assertEqual(S.dtype, dtype)
        assert_close(S, ref.Y, dtype, "softmax forward")
        assert_close(dZ, ref.dX, dtype, "softmax backward")

    def test_float64(self):
        rng = np.random.default_rng(0)
        for shape, scale in [((1, 2), 1.0), ((6, 5), 1.0), ((4, 10), 30.0), ((2, 3, 4), 1.0)]:
            with self.subTest(shape=shape, scale=scale):
                self.check(rng.standard_normal(shape) * scale, np.float64)

    def test_large_logits_are_stable(self):
        Z = np.array([[1000.0, 999.0, -1000.0], [-750.0, -760.0, -740.0]])
        self.check(Z, np.float64)

    def test_float32(self):
        Z = (np.random.default_rng(1).standard_normal((7, 6)) * 5).astype(np.float32)
        self.check(Z, np.float32)


# ----------------------------------------------------------------------------- CrossEntropy


@requires_torch
class TestCrossEntropyParity(unittest.TestCase):
    def data(self, m, k, dtype, seed):
        rng = np.random.default_rng(seed)
        Z = (rng.standard_normal((m, k)) * 2).astype(dtype)
        labels = rng.integers(0, k, size=m)
        labels[:k] = np.arange(min(m, k))  # every class appears
        return Z, labels, onehot(labels, k, dtype)

    def check_probabilities(self, m, k, dtype, seed):
        Z, labels, Y = self.data(m, k, dtype, seed)
        P = F.softmax(Z)
        loss_fn = CrossEntropy()
        loss = loss_fn.forward(Y, P)
        dP = loss_fn.backward(Y, P)

        nll = O.nll_of_probabilities(P, labels)
        ce = O.cross_entropy(Z, labels)
        what = f"m={m} k={k} {np.dtype(dtype).name}"
        assert_close(loss, nll.loss, dtype, f"loss vs nll_loss(log p), {what}")
        assert_close(loss, ce.loss, dtype, f"loss vs cross_entropy, {what}")
        assert_close(dP, nll.dP, dtype, f"dL/dp, {what}")

        # Chained through the softmax activation: the gradient at the logits.
        assert_close(SoftMax().backward(Z, dP), ce.dZ, dtype, f"dL/dz chained, {what}")

    def test_float64(self):
        for i, (m, k) in enumerate([(1, 2), (5, 3), (16, 10)]):
            with self.subTest(m=m, k=k):
                self.check_probabilities(m, k, np.float64, seed=i)

    def test_float32(self):
        self.check_probabilities(9, 4, np.float32, seed=9)

    def test_fused_gradient_kernel(self):
        Z, labels, Y = self.data(11, 5, np.float64, 3)
        loss, dZ, P = F.softmax_cross_entropy(Z, Y)
        ref = O.cross_entropy(Z, labels)
        assert_close(loss, ref.loss, np.float64, "fused loss")
        assert_close(dZ, ref.dZ, np.float64, "fused dZ")
        assert_close(P, O.softmax(Z).Y, np.float64, "fused probabilities")

    def test_label_smoothing(self):
        for dtype in (np.float64, np.float32):
            with self.subTest(dtype=np.dtype(dtype).name):
                Z, labels, Y = self.data(10, 4, dtype, 21)
                loss_fn = CrossEntropy(label_smoothing=0.1)
                P = F.softmax(Z)
                loss = loss_fn.forward(Y, P)
                dZ = SoftMax().backward(Z, loss_fn.backward(Y, P))
                ref = O.cross_entropy(Z, labels, label_smoothing=0.1)
                assert_close(loss, ref.loss, dtype, "smoothed loss")
                assert_close(dZ, ref.dZ, dtype, "smoothed dL/dz (chained)")
                fused_loss, fused_dZ, _ = F.softmax_cross_entropy(Z, loss_fn.targets(Y))
                assert_close(fused_loss, ref.loss, dtype, "smoothed fused loss")
                assert_close(fused_dZ, ref.dZ, dtype, "smoothed fused dL/dz")


# ----------------------------------------------------------------------------- models


def to_float64(model):
    for layer in model.layers:
        for key in list(layer.parameters):
            layer.parameters[key] = layer.parameters[key].astype(np.float64)
        layer.clear_gradients()


@requires_torch
class TestMLPParity(unittest.TestCase):
    """The model's fused softmax + cross-entropy path against linear -> relu -> linear ->
    cross_entropy on logits in torch (the model translated by ``torch_oracles.network``)."""

    def run_case(self, loss, label_smoothing, dtype=np.float64, fused=True, output_scale=1.0, hidden="relu"):
        rng = np.random.default_rng(0)
        m, n_in, k = 12, 5, 4
        X = rng.standard_normal((m, n_in)).astype(dtype)
        labels = rng.integers(0, k, size=m)
        Y = onehot(labels, k, dtype)
        layers = [FullyConnected(7, hidden), FullyConnected(4, "softmax", output_scale=output_scale)]
        model = NeuralNetwork(layers=layers, loss=loss, seed=0)
        model.forward(X)
        if dtype == np.float64:
            to_float64(model)
        out = model.forward(X)
        value = model.backward(Y, out if fused else out.copy())  # a copy takes the unfused path

        ref = O.network(model, X, labels=labels, label_smoothing=label_smoothing)

        what = f"smoothing={label_smoothing} fused={fused} {np.dtype(dtype).name}"
        assert_close(out, ref.output, dtype, f"output, {what}")
        assert_close(value, ref.loss, dtype, f"loss, {what}")
        for i in (0, 1):
            assert_close(model.layers[i].gradients["W"], ref.gradients[i]["W"], dtype, f"layer {i} dW, {what}")
            assert_close(model.layers[i].gradients["b"], ref.gradients[i]["b"], dtype, f"layer {i} db, {what}")

    def test_fused_cross_entropy(self):
        self.run_case("cross_entropy", 0.0)

    def test_unfused_cross_entropy(self):
        self.run_case("cross_entropy", 0.0, fused=False)

    def test_label_smoothing(self):
        self.run_case(CrossEntropy(label_smoothing=0.1), 0.1)
        self.run_case(CrossEntropy(label_smoothing=0.1), 0.1, fused=False)

    def test_float32(self):
        self.run_case("cross_entropy", 0.0, dtype=np.float32)

    def test_gelu_hidden_layer(self):
        for hidden in ("gelu", "gelu_tanh"):
            with self.subTest(hidden=hidden):
                self.run_case("cross_entropy", 0.0, hidden=hidden)

    def test_scaled_logits(self):  # airbench: logits / 9 and label smoothing 0.2
        self.run_case(CrossEntropy(label_smoothing=0.2), 0.2, output_scale=1 / 9)
        self.run_case(CrossEntropy(label_smoothing=0.2), 0.2, output_scale=1 / 9, fused=False)


@requires_torch
class TestCNNParity(unittest.TestCase):
    """Conv 3x3 same relu -> max pool 2x2/2 -> conv 3x3 valid relu -> average pool 2x2/2 ->
    flatten -> fully connected softmax, against the same net in torch (``torch_oracles.network``:
    NCHW, the fully connected weights' inputs reordered to torch's flattening order)."""

    def build(self):
        return [
            Conv2D(4, (3, 3), activation="relu", stride=1, pad="same"),
            Pool2D((2, 2), mode="max", stride=2),
            Conv2D(6, (3, 3), activation="relu", stride=1, pad="valid"),
            Pool2D((2, 2), mode="average", stride=2),
            Flatten(),
            FullyConnected(5, activation="softmax"),
        ]

    def data(self, dtype):
        rng = np.random.default_rng(42)
        X = rng.standard_normal((3, 12, 12, 2)).astype(dtype)
        labels = np.array([0, 3, 4])
        return X, labels, onehot(labels, 5, dtype)

    def check_model(self, dtype):
        X, labels, Y = self.data(dtype)
        model = NeuralNetwork(layers=self.build(), loss="cross_entropy", seed=0)
        model.forward(X)
        if dtype == np.float64:
            to_float64(model)
        out = model.forward(X)
        loss = model.backward(Y, out)

        ref = O.network(model, X, labels=labels)

        name = np.dtype(dtype).name
        self.assertEqual(out.shape, (3, 5))
        assert_close(out, ref.output, dtype, f"output {name}")
        assert_close(loss, ref.loss, dtype, f"loss {name}")
        for i in (0, 2, 5):
            assert_close(model.layers[i].gradients["W"], ref.gradients[i]["W"], dtype, f"layer {i} dW {name}")
            assert_close(model.layers[i].gradients["b"], ref.gradients[i]["b"], dtype, f"layer {i} db {name}")

    def test_model_float64(self):
        self.check_model(np.float64)

    def test_model_float32(self):
        self.check_model(np.float32)

    def test_input_gradient_float64(self):
        # Layer by layer with a random upstream gradient on the softmax output, down to dL/dX.
        X, _, _ = self.data(np.float64)
        layers = self.build()
        NeuralNetwork(layers=layers, seed=1)  # seeds the layers' generators
        layers[0].input_gradient = True  # a model skips its first layer's dL/dX; this test wants it
        A = X
        for layer in layers:
            A = layer.forward(A)
        for layer in layers:
            for key in list(layer.parameters):
                layer.parameters[key] = layer.parameters[key].astype(np.float64)
        A = X
        for layer in layers:
            A = layer.forward(A)
        dY = np.random.default_rng(3).standard_normal(A.shape)
        dA = dY
        for layer in reversed(layers):
            dA = layer.backward(dA)

        ref = O.network(layers, X, dY=dY)
        assert_close(A, ref.output, np.float64, "output")
        assert_close(dA, ref.dX, np.float64, "dL/dX")
        for i in (0, 2, 5):
            assert_close(layers[i].gradients["W"], ref.gradients[i]["W"], np.float64, f"layer {i} dW")
            assert_close(layers[i].gradients["b"], ref.gradients[i]["b"], np.float64, f"layer {i} db")


if __name__ == "__main__":
    unittest.main()
