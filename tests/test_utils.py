"""neural_networks.utils: the course's starter helpers (AttrDict, check_gradients, data helpers)."""

import copy
import json
import pickle
import unittest

import numpy as np
import yaml

from neural_networks.activations import ACTIVATIONS, initialize_activation
from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D
from neural_networks.losses import L2, CrossEntropy
from neural_networks.layers import BatchNorm, Dropout
from neural_networks.utils import (
    AttrDict,
    center,
    check_gradients,
    integers_to_one_hot,
    normalize,
    numerical_gradient,
    standardize,
    to_plain,
)
from neural_networks.utils.data_structures import AttrDict as AttrDictOldPath
from neural_networks.utils.grad_check import check_gradients as check_gradients_old_path

from .helpers import distinct_values


class TestAttrDict(unittest.TestCase):
    def test_keys_are_attributes(self):
        args = AttrDict({"lr": 0.1, "name": "SGD"})
        self.assertEqual((args.lr, args["lr"], args.name), (0.1, 0.1, "SGD"))
        args.momentum = 0.9
        self.assertEqual(args["momentum"], 0.9)
        del args.lr
        self.assertNotIn("lr", args)
        self.assertFalse(hasattr(args, "lr"))
        self.assertEqual(getattr(args, "missing", "default"), "default")
        with self.assertRaises(AttributeError):
            del args.missing
        self.assertIsInstance(args, dict)
        self.assertIs(AttrDictOldPath, AttrDict)

    def test_dict_methods_stay_methods(self):
        args = AttrDict(items=3)
        self.assertEqual(args["items"], 3)
        self.assertEqual(list(args.items()), [("items", 3)])

    def test_copies_pickles_and_json(self):
        args = AttrDict({"layers": [AttrDict(n_out=3)], "kernel": (3, 3)})
        for clone in (copy.deepcopy(args), pickle.loads(pickle.dumps(args))):
            self.assertIsInstance(clone, AttrDict)
            self.assertEqual(clone, args)
            self.assertEqual(clone.layers[0].n_out, 3)
        self.assertEqual(json.loads(json.dumps(args)), {"layers": [{"n_out": 3}], "kernel": [3, 3]})

    def test_to_plain_is_yaml_safe(self):
        args = AttrDict({"a": AttrDict(b=(1, 2)), "c": np.float32(0.5), "d": np.arange(2), "e": None})
        plain = to_plain(args)
        self.assertIs(type(plain), dict)
        self.assertIs(type(plain["a"]), dict)
        self.assertEqual(yaml.safe_load(yaml.safe_dump(plain)), {"a": {"b": [1, 2]}, "c": 0.5, "d": [0, 1], "e": None})


class TestDataHelpers(unittest.TestCase):
    def test_integers_to_one_hot(self):
        np.testing.assert_array_equal(integers_to_one_hot([2, 0, 1]), np.eye(3)[[2, 0, 1]])
        np.testing.assert_array_equal(integers_to_one_hot(np.array([[1], [0]]), max_val=3), np.eye(4)[[1, 0]])
        np.testing.assert_array_equal(integers_to_one_hot(np.array([1.0, 0.0])), np.eye(2)[[1, 0]])
        self.assertEqual(integers_to_one_hot([1, 1]).dtype, np.float64)
        for bad, pattern in (
            ([0.5], "whole numbers"),
            ([-1], "non-negative"),
            (["a"], "integers"),
            (np.zeros((2, 2)), "vector"),
        ):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, pattern):
                integers_to_one_hot(np.array(bad))
        with self.assertRaisesRegex(ValueError, "exceeds max_val=1"):
            integers_to_one_hot([2], max_val=1)

    def test_center_normalize_standardize_against_loops(self):
        rng = np.random.default_rng(0)
        X = rng.normal(3.0, 2.0, size=(20, 4))
        X[:, 2] = 7.0  # a constant feature
        before = X.copy()
        for axis in (0, 1):
            C, N, S = center(X, axis), normalize(X, axis), standardize(X, axis)
            for j in range(X.shape[1 - axis]):
                v = X[:, j] if axis == 0 else X[j]
                c = C[:, j] if axis == 0 else C[j]
                n = N[:, j] if axis == 0 else N[j]
                s = S[:, j] if axis == 0 else S[j]
                np.testing.assert_allclose(c, v - v.mean())
                spread = v.max() - v.min()
                np.testing.assert_allclose(n, (v - v.min()) / spread if spread else np.zeros_like(v))
                np.testing.assert_allclose(s, (v - v.mean()) / (v.std() + 1e-10))
        np.testing.assert_array_equal(X, before)  # inputs untouched
        np.testing.assert_allclose(
            normalize(np.array([[0, 255], [51, 0]], dtype=np.uint8), max_val=255), [[0, 1], [0.2, 0]]
        )
        with self.assertRaisesRegex(ValueError, "max_val"):
            normalize(X, max_val=0)


def _course_layer_checks(layer, X, rng, train=True):
    """The course's notebook flow: float64 forward and backward, then check_gradients for the
    input and every parameter. Returns {what: relative error}."""
    layer.train(train)
    out = layer.forward(X)
    dLdY = rng.standard_normal(out.shape)
    dX = layer.backward(dLdY)
    errors = {"X": check_gradients(fn=layer.forward, grad=dX, x=X, dLdf=dLdY)}
    for name in list(layer.parameters):
        layer.forward(X)
        layer.backward(dLdY)
        errors[name] = check_gradients(
            fn=layer.forward_with_param(name, X), grad=layer.gradients[name], x=layer.parameters[name], dLdf=dLdY
        )
    return errors


class TestCheckGradients(unittest.TestCase):
    def test_every_layer_type_below_1e8_in_float64(self):
        rng = np.random.default_rng(1)
        cases = [
            ("fully connected", lambda: FullyConnected(n_out=4, activation="linear"), (3, 5)),
            ("fully connected relu", lambda: FullyConnected(n_out=4, activation="relu"), (3, 5)),
            (
                "conv2d same",
                lambda: Conv2D(n_out=4, kernel_shape=(3, 3), activation="linear", pad="same"),
                (2, 5, 6, 3),
            ),
            (
                "conv2d strided",
                lambda: Conv2D(n_out=3, kernel_shape=(2, 3), activation="tanh", stride=2, pad=1),
                (2, 6, 7, 2),
            ),
            ("pool2d max", lambda: Pool2D((2, 2), mode="max", stride=2), (2, 4, 6, 3)),
            ("pool2d average", lambda: Pool2D((3, 3), mode="average", stride=1, pad=1), (2, 4, 4, 2)),
            ("flatten", lambda: Flatten(), (2, 3, 3, 2)),
            ("batchnorm", lambda: BatchNorm(activation="linear"), (6, 4)),
            ("dropout (eval)", lambda: Dropout(0.3), (4, 5)),
        ]
        for label, make, shape in cases:
            with self.subTest(label):
                X = distinct_values(rng, *shape, step=0.05)  # float64, no max ties, no ReLU kinks
                errors = _course_layer_checks(make(), X, rng, train=label != "dropout (eval)")
                for what, error in errors.items():
                    self.assertLess(error, 1e-8, f"{label} {what}")
                if label.startswith(("fully", "conv", "batchnorm")):
                    self.assertGreaterEqual(len(errors), 3)

    def test_activations_and_losses(self):
        rng = np.random.default_rng(2)
        for name in ACTIVATIONS:
            act = initialize_activation(name)
            Z = distinct_values(rng, 3, 4, step=0.1)
            dY = rng.standard_normal(Z.shape)
            self.assertLess(check_gradients(act.forward, act.backward(Z, dY), Z, dY), 1e-8, name)
        Y = np.eye(4)[[0, 3, 1]]
        Y_hat = rng.uniform(0.1, 1, (3, 4))
        Y_hat /= Y_hat.sum(axis=1, keepdims=True)
        for loss in (CrossEntropy("cross_entropy"), L2("l2")):
            error = check_gradients(lambda P: loss.forward(Y, P), loss.backward(Y, Y_hat), Y_hat, 1)
            self.assertLess(error, 1e-8, loss.name)

    def test_a_wrong_gradient_gives_a_large_error(self):
        rng = np.random.default_rng(3)
        X = rng.standard_normal((3, 5))
        layer = FullyConnected(n_out=4, activation="linear")
        layer.forward(X)
        dLdY = rng.standard_normal((3, 4))
        layer.backward(dLdY)
        W = layer.parameters["W"]
        wrong = layer.gradients["W"] * 1.1
        self.assertGreater(check_gradients(layer.forward_with_param("W", X), wrong, W, dLdY), 1e-2)
        self.assertGreater(
            check_gradients(layer.forward_with_param("W", X), layer.gradients["W"].T.reshape(W.shape), W, dLdY), 0.1
        )

    def test_x_is_restored_and_the_spec_formula(self):
        x = np.linspace(-1, 1, 6).reshape(2, 3)
        before = x.copy()
        grad = np.cos(x) + 0.01
        numerical = numerical_gradient(np.sin, x, 1.0)
        np.testing.assert_array_equal(x, before)
        expected = np.linalg.norm(numerical - grad) / np.linalg.norm(numerical + grad)
        self.assertAlmostEqual(check_gradients(np.sin, grad, x, 1.0), expected, places=12)
        np.testing.assert_array_equal(x, before)
        self.assertEqual(check_gradients(lambda v: np.zeros_like(v), np.zeros(3), np.ones(3), 1.0), 0.0)
        self.assertIs(check_gradients_old_path, check_gradients)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(TypeError, "floating NumPy array"):
            check_gradients(np.sin, np.zeros(3), np.arange(3), 1.0)
        with self.assertRaisesRegex(ValueError, "must match"):
            check_gradients(np.sin, np.zeros(2), np.ones(3), 1.0)
        readonly = np.ones(3)
        readonly.flags.writeable = False
        with self.assertRaisesRegex(ValueError, "writeable"):
            check_gradients(np.sin, np.zeros(3), readonly, 1.0)

    def test_float32_parameters_would_be_too_coarse(self):
        """Why parameters follow a float64 first input: the same check on a float32 copy of W
        reports a rounding error near 1e-3 for a correct layer."""
        rng = np.random.default_rng(4)
        X = rng.standard_normal((3, 5))
        layer = FullyConnected(n_out=4, activation="linear")
        layer.forward(X)
        self.assertEqual(layer.parameters["W"].dtype, np.float64)
        dLdY = rng.standard_normal((3, 4))
        layer.backward(dLdY)
        grad = layer.gradients["W"].copy()
        layer.parameters["W"] = layer.parameters["W"].astype(np.float32)
        error = check_gradients(layer.forward_with_param("W", X), grad, layer.parameters["W"], dLdY)
        self.assertGreater(error, 1e-6)


if __name__ == "__main__":
    unittest.main()
