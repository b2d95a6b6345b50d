"""NeuralNetwork: composition, the fused softmax + cross-entropy gradient, training, save/load."""

import tempfile
import unittest
from pathlib import Path

import numpy as np

from neural_networks.datasets import initialize_dataset
from neural_networks.gradcheck import numerical_gradient, relative_error
from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D
from neural_networks.losses import CrossEntropy
from neural_networks.models import NeuralNetwork, initialize_model
from neural_networks.optimizers import SGD


def small_mlp(seed=0, loss="cross_entropy", out_activation="softmax"):
    return NeuralNetwork(
        layers=[FullyConnected(6, "tanh"), FullyConnected(3, out_activation)],
        loss=loss,
        optimizer=SGD(lr=0.1, momentum=0.9),
        seed=seed,
    )


def to_float64(model):
    for layer in model.layers:
        for key, value in layer.parameters.items():
            layer.parameters[key] = value.astype(np.float64)


def one_hot(labels, k):
    return np.eye(k)[labels]


class TestForwardBackward(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(1)
        self.X = rng.standard_normal((5, 4))
        self.Y = one_hot(rng.integers(0, 3, 5), 3)

    def test_fused_gradient_equals_chained_gradient(self):
        model = small_mlp()
        model.forward(self.X)
        to_float64(model)
        out = model.forward(self.X)
        fused_loss = model.backward(self.Y, out)  # `out` is the last output: fused path
        fused = [dict(layer.gradients) for layer in model.layers]
        chained_loss = model.backward(self.Y, out.copy())  # a copy: the generic chained path
        self.assertAlmostEqual(fused_loss, chained_loss, places=12)
        for f, layer in zip(fused, model.layers):
            for key in f:
                np.testing.assert_allclose(f[key], layer.gradients[key], rtol=1e-9, atol=1e-12)

    def test_model_gradient_matches_finite_differences(self):
        for loss, act in (("cross_entropy", "softmax"), ("l2", "sigmoid")):
            model = small_mlp(loss=loss, out_activation=act)
            model.forward(self.X)
            to_float64(model)
            model.backward(self.Y, model.forward(self.X))
            for layer in model.layers:
                for key in ("W", "b"):
                    param = layer.parameters[key]

                    def loss_of(value, layer=layer, key=key):
                        layer.parameters[key] = value
                        return np.array(model.loss.forward(self.Y, model.forward(self.X)))

                    analytic = layer.gradients[key].copy()
                    numeric = numerical_gradient(loss_of, param.copy(), 1.0)
                    layer.parameters[key] = param
                    self.assertLess(relative_error(analytic, numeric), 1e-7, f"{loss} {layer.where} {key}")

    def test_fused_loss_is_stable_for_extreme_logits(self):
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], loss="cross_entropy", seed=0)
        model.forward(self.X)
        model.layers[0].parameters["W"] *= 1e4  # saturated softmax: probabilities 0 and 1
        out = model.forward(self.X.astype(np.float32))
        loss = model.backward(self.Y.astype(np.float32), out)
        self.assertTrue(np.isfinite(loss))
        for grad in model.layers[0].gradients.values():
            self.assertTrue(np.all(np.isfinite(grad)))

    def test_label_smoothing_changes_targets(self):
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], loss=CrossEntropy(label_smoothing=0.2), seed=0)
        out = model.forward(self.X)
        smoothed = model.backward(self.Y, out)
        expected = -np.sum((self.Y * 0.8 + 0.2 / 3) * np.log(out)) / 5
        self.assertAlmostEqual(smoothed, expected, places=5)

    def test_label_shape_mismatch_is_an_error(self):
        model = small_mlp()
        out = model.forward(self.X)
        with self.assertRaisesRegex(ValueError, r"labels of shape \(5, 4\).*output of shape \(5, 3\)"):
            model.backward(np.zeros((5, 4)), out)
        with self.assertRaisesRegex(ValueError, r"labels of shape \(5,\)"):
            model.backward(np.zeros(5), out)

    def test_update_applies_momentum_in_place(self):
        model = small_mlp()
        out = model.forward(self.X)
        model.backward(self.Y, out)
        W = model.layers[0].parameters["W"]
        before, grad = W.copy(), model.layers[0].gradients["W"].copy()
        model.update(epoch=0)
        self.assertIs(model.layers[0].parameters["W"], W)
        np.testing.assert_allclose(W, before - 0.1 * grad, rtol=1e-6)
        self.assertFalse(np.any(model.layers[0].gradients["W"]))  # cleared after the step

    def test_first_layer_skips_the_input_gradient(self):
        model = small_mlp()
        model.forward(self.X)
        to_float64(model)
        model.backward(self.Y, model.forward(self.X))
        skipped = {k: v.copy() for k, v in model.layers[0].gradients.items()}
        self.assertIsNone(model.layers[0].backward(model.layers[1].backward(np.ones((5, 3)))))
        model.layers[0].input_gradient = True
        model.backward(self.Y, model.forward(self.X))
        for key, value in skipped.items():  # parameter gradients do not depend on the switch
            np.testing.assert_array_equal(model.layers[0].gradients[key], value)
        self.assertEqual(model.layers[0].backward(model.layers[1].backward(np.ones((5, 3)))).shape, self.X.shape)

    def test_a_frozen_prefix_gets_no_backward_pass(self):
        def three_layers():
            model = NeuralNetwork(
                layers=[FullyConnected(6, "tanh"), FullyConnected(5, "relu"), FullyConnected(3, "softmax")],
                loss="cross_entropy",
                optimizer=SGD(lr=0.1),
                seed=0,
            )
            model.forward(self.X)
            to_float64(model)
            return model

        reference, model = three_layers(), three_layers()
        reference.backward(self.Y, reference.forward(self.X))
        model.layers[0].freeze()
        calls, returned = [], []
        model.layers[0].backward = lambda dY: calls.append(dY)
        backward = model.layers[1].backward
        model.layers[1].backward = lambda dY: returned.append(backward(dY)) or returned[-1]
        model.backward(self.Y, model.forward(self.X))
        self.assertEqual(calls, [])  # nothing below the first trained layer runs
        self.assertEqual(returned, [None])  # and that layer skips its dL/dX
        self.assertTrue(model.layers[1].input_gradient)  # only for that pass
        for i in (1, 2):
            for key, value in reference.layers[i].gradients.items():
                np.testing.assert_allclose(model.layers[i].gradients[key], value, rtol=1e-12)
        model.layers[0].unfreeze("b")  # a trainable bias: the whole chain runs again
        model.backward(self.Y, model.forward(self.X))
        self.assertEqual(len(calls), 1)
        self.assertIsNotNone(returned[-1])

    def test_update_without_optimizer(self):
        model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], loss="cross_entropy")
        model.backward(self.Y, model.forward(self.X))
        with self.assertRaisesRegex(ValueError, "no optimizer"):
            model.update(0)


class TestConstruction(unittest.TestCase):
    def test_spec_form_equals_direct_form(self):
        layer_args = [
            {"name": "fully_connected", "activation": "relu", "weight_init": "xavier_uniform", "n_out": 8},
            {"name": "fully_connected", "activation": "softmax", "n_out": 3},
        ]
        optimizer_args = {
            "name": "SGD",
            "lr": 0.1,
            "lr_scheduler": "exponential",
            "lr_decay": 0.5,
            "stage_length": 2,
            "staircase": True,
            "clip_norm": 1.0,
            "momentum": 0.9,
        }
        spec = initialize_model(
            name="feed_forward", loss="cross_entropy", layer_args=layer_args, optimizer_args=optimizer_args, seed=3
        )
        direct = NeuralNetwork(
            layers=[FullyConnected(8, "relu"), FullyConnected(3, "softmax")],
            loss="cross_entropy",
            optimizer=SGD(
                lr=0.1, momentum=0.9, clip_norm=1.0, lr_scheduler="exponential", lr_decay=0.5, stage_length=2
            ),
            seed=3,
        )
        X = np.random.default_rng(0).standard_normal((4, 5))
        np.testing.assert_array_equal(spec.forward(X), direct.forward(X))
        self.assertEqual(spec.optimizer.lr_scheduler(5), 0.1 * 0.5**2)

    def test_seed_makes_initialisation_reproducible(self):
        X = np.ones((2, 4))
        a, b, c = small_mlp(seed=7), small_mlp(seed=7), small_mlp(seed=8)
        np.testing.assert_array_equal(a.forward(X), b.forward(X))
        self.assertFalse(np.array_equal(a.forward(X), c.forward(X)))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "exactly one of layer_args"):
            NeuralNetwork(loss="cross_entropy")
        with self.assertRaisesRegex(ValueError, "unknown loss 'hinge'; valid names: cross_entropy, l2"):
            NeuralNetwork(loss="hinge", layers=[FullyConnected(2)])
        with self.assertRaisesRegex(ValueError, "unknown layer 'dense'; valid names"):
            NeuralNetwork(layer_args=[{"name": "dense", "n_out": 2}])
        with self.assertRaisesRegex(ValueError, "unknown optimizer 'adagrad'; valid names"):
            NeuralNetwork(layer_args=[{"name": "flatten"}], optimizer_args={"name": "adagrad", "lr": 0.1})
        with self.assertRaisesRegex(ValueError, "valid arguments"):
            NeuralNetwork(layer_args=[{"name": "fully_connected", "n_outs": 2}])


class TestTrainingAndPersistence(unittest.TestCase):
    def test_iris_reaches_93_percent(self):
        data = initialize_dataset("iris", batch_size=25, seed=0)
        model = small_mlp()
        history = model.train(data, epochs=60, verbose=0)
        self.assertEqual(history.epochs, 60)
        self.assertEqual(len(history.iteration_loss), 60 * len(data.train))
        self.assertLess(history["loss"][-1], history["loss"][0])
        self.assertGreaterEqual(model.test(data)["accuracy"], 0.93)

    def test_test_with_predictions_and_error(self):
        data = initialize_dataset("iris", batch_size=7, seed=0)
        model = small_mlp()
        model.train(data, epochs=30, verbose=0)
        result = model.test(data, save_predictions=True)
        self.assertEqual(result["predictions"].shape, (30,))
        self.assertAlmostEqual(result["accuracy"], float(np.mean(result["predictions"] == data.test.labels)))
        X = np.concatenate([x for x, _ in data.test])
        Y = one_hot(data.test.labels, 3)
        self.assertAlmostEqual(model.error(Y, model.predict(X)), 1 - result["accuracy"])
        self.assertAlmostEqual(model.error(np.eye(3), np.eye(3)[[0, 2, 1]]), 2 / 3)

    def test_predict_is_batched_and_matches_forward(self):
        model = small_mlp()
        X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
        full = model.forward(X)
        np.testing.assert_allclose(model.predict(X, batch_size=3), full, rtol=1e-6)
        Y = one_hot(np.arange(10) % 3, 3)
        Y_hat, loss = model.predict(X, Y)
        self.assertAlmostEqual(loss, model.loss.forward(Y, full), places=5)
        np.testing.assert_array_equal(model.predict_classes(X), full.argmax(axis=1))

    def test_flip_tta_averages_the_mirror_images_outputs(self):
        from neural_networks.layers import BatchNorm

        model = NeuralNetwork(
            layers=[
                Conv2D(3, (3, 3), "linear", pad="same"),
                BatchNorm(activation="relu"),
                Flatten(),
                FullyConnected(4, "softmax"),
            ],
            loss="cross_entropy",
            seed=0,
        )
        rng = np.random.default_rng(1)
        X = rng.standard_normal((5, 4, 6, 2)).astype(np.float32)
        model.forward(X)  # training mode: creates the parameters and updates BatchNorm's running statistics
        model.eval_mode()
        plain, mirrored = model.forward(X), model.forward(X[:, :, ::-1].copy())
        model.train_mode()
        self.assertFalse(np.allclose(plain, mirrored))  # the network itself is not mirror-symmetric
        np.testing.assert_allclose(model.predict(X, tta="flip", batch_size=2), (plain + mirrored) / 2, rtol=1e-5)
        # with TTA the prediction of an image and of its mirror image are the same
        np.testing.assert_allclose(model.predict(X[:, :, ::-1], tta="flip"), model.predict(X, tta="flip"), rtol=1e-5)
        np.testing.assert_array_equal(model.predict(X, tta="none"), model.predict(X))
        np.testing.assert_array_equal(model.predict_classes(X, tta="flip"), ((plain + mirrored) / 2).argmax(axis=1))
        self.assertTrue(model.training)  # predict restores the mode

    def test_tta_errors(self):
        model = small_mlp()
        X = np.zeros((2, 4), dtype=np.float32)
        with self.assertRaisesRegex(ValueError, r"valid: none, flip, flip_translate"):
            model.predict(X, tta="rotate")
        with self.assertRaisesRegex(ValueError, r"NHWC.*\(2, 4\)"):
            model.predict(X, tta="flip")

    def test_evaluate_with_flip_tta(self):
        data = initialize_dataset("iris", batch_size=7, seed=0)
        model = small_mlp()
        with self.assertRaisesRegex(ValueError, "NHWC"):
            model.evaluate(data.test, tta="flip")
        self.assertEqual(model.evaluate(data.test, tta="none"), model.evaluate(data.test))

    def test_save_load_round_trip_cnn(self):
        model = NeuralNetwork(
            layers=[
                Conv2D(4, (3, 3), "relu", stride=1, pad="same", use_bias=False),
                Pool2D((2, 2), "max", stride=2),
                Flatten(),
                FullyConnected(3, "softmax"),
            ],
            loss=CrossEntropy(label_smoothing=0.1),
            optimizer=SGD(lr=0.01, momentum=0.9),
            seed=0,
        )
        rng = np.random.default_rng(0)
        X = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
        Y = one_hot(rng.integers(0, 3, 4), 3).astype(np.float32)
        model.train_step(X, Y, epoch=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.npz"
            model.save(path, extra={"epoch": 1})
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()), ["model.npz"])  # no temp file left
            loaded = NeuralNetwork.load(path)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        self.assertEqual(loaded.extra, {"epoch": 1})
        self.assertEqual(loaded.loss.label_smoothing, 0.1)
        self.assertEqual([type(l).__name__ for l in loaded.layers], ["Conv2D", "Pool2D", "Flatten", "FullyConnected"])
        self.assertEqual([list(l.parameters) for l in loaded.layers], [["W"], [], [], ["W", "b"]])  # conv without bias
        for key, value in model.optimizer.state().items():
            np.testing.assert_array_equal(loaded.optimizer.state()[key], value)
        # the next step continues identically
        model.train_step(X, Y, epoch=1)
        loaded.train_step(X, Y, epoch=1)
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)

    def test_load_refuses_foreign_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weird.npz"
            np.savez(path, W=np.zeros(3))
            with self.assertRaisesRegex(ValueError, "not a neural_networks model file"):
                NeuralNetwork.load(path)
            np.savez(path, config=np.array([{"a": 1}], dtype=object))
            with self.assertRaises(ValueError):  # an object array needs pickle, which load refuses
                NeuralNetwork.load(path)


def small_cnn(seed=0):
    return NeuralNetwork(
        layers=[Conv2D(2, (3, 3), "relu"), Pool2D((2, 2), "max", stride=2), Flatten(), FullyConnected(3, "softmax")],
        optimizer=SGD(lr=0.1),
        seed=seed,
    )


class TestEmptyAndMisshapenInput(unittest.TestCase):
    """Issue 32: an empty batch predicts an empty result of the right shape and dtype (as
    scikit-learn, PyTorch and Keras do); a loss over no examples is a one-line ValueError; a batch
    of the wrong feature shape names what the network expected and what it got."""

    def assertOneLine(self, caught, *needles):
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for needle in needles:
            self.assertIn(needle, message)

    def test_predict_on_an_empty_batch(self):
        model = small_mlp()
        model.predict(np.ones((2, 4)))
        for dtype, out_dtype in ((np.float64, np.float64), (np.float32, np.float32), (np.uint8, np.float32)):
            with self.subTest(dtype=dtype):
                Y_hat = model.predict(np.empty((0, 4), dtype=dtype))
                self.assertEqual((Y_hat.shape, Y_hat.dtype), ((0, 3), np.dtype(out_dtype)))
                classes = model.predict_classes(np.empty((0, 4), dtype=dtype))
                self.assertEqual(classes.shape, (0,))
                self.assertEqual(classes.dtype.kind, "i")
        self.assertTrue(model.training)  # predict restores the mode

    def test_predict_on_an_empty_batch_of_a_model_not_yet_run(self):
        model = small_mlp()
        self.assertEqual(model.predict(np.empty((0, 4), np.float32)).shape, (0, 3))
        np.testing.assert_array_equal(model.predict(np.zeros((1, 4), np.float32)).shape, (1, 3))

    def test_predict_on_an_empty_batch_of_images_with_tta(self):
        model = small_cnn()
        for tta in (None, "none", "flip", "flip_translate"):
            with self.subTest(tta=tta):
                Y_hat = model.predict(np.empty((0, 6, 6, 1), np.float32), tta=tta)
                self.assertEqual((Y_hat.shape, Y_hat.dtype), ((0, 3), np.dtype(np.float32)))
                self.assertEqual(model.predict_classes(np.empty((0, 6, 6, 1), np.float32), tta=tta).shape, (0,))

    def test_an_empty_batch_is_still_checked(self):
        model = small_mlp()
        model.predict(np.ones((2, 4)))
        with self.assertRaises(ValueError) as caught:
            model.predict_classes(np.empty((0, 5)))
        self.assertOneLine(caught, "expected 4 input features", "got 5", "(0, 5)")
        with self.assertRaises(ValueError) as caught:
            model.predict(np.empty((0, 4)), tta="flip")
        self.assertOneLine(caught, "NHWC")

    def test_a_loss_over_no_examples_is_an_error(self):
        model = small_mlp()
        with self.assertRaises(ValueError) as caught:
            model.predict(np.empty((0, 4)), np.empty((0, 3)))
        self.assertOneLine(caught, "loss", "no examples", "(0, 4)")

    def test_evaluate_skips_empty_batches_and_refuses_an_empty_split(self):
        model = small_mlp()
        rng = np.random.default_rng(0)
        X, Y = rng.standard_normal((6, 4)), one_hot(np.arange(6) % 3, 3)
        empty = (np.empty((0, 4)), np.empty((0, 3)))
        self.assertEqual(model.evaluate([empty, (X, Y), empty]), model.evaluate([(X, Y)]))
        for loader in ([], [empty]):
            with self.assertRaisesRegex(ValueError, r"^cannot evaluate on an empty split$"):
                model.evaluate(loader)

    def test_a_batch_of_the_wrong_feature_shape_names_the_networks_input(self):
        model = small_cnn()
        model.predict(np.ones((2, 6, 6, 1), np.float32))
        with self.assertRaises(ValueError) as caught:  # the first layer sees it: channels
            model.predict(np.ones((2, 6, 6, 3), np.float32))
        self.assertOneLine(caught, "Conv2D (layer 0)", "expected 1 input channels", "got 3")
        with self.assertRaises(ValueError) as caught:  # only the dense layer sees it: image size
            model.predict(np.ones((2, 8, 8, 1), np.float32))
        self.assertOneLine(caught, "FullyConnected (layer 3)", "expected 18 input features", "got 32", "(2, 8, 8, 1)")


class TestOutputSizedByData(unittest.TestCase):
    """The course's starter scripts leave the output layer's n_out to the data set."""

    def test_spec_form_direct_form_and_config(self):
        from neural_networks.experiments import run_experiment
        from neural_networks.utils import AttrDict

        data = initialize_dataset("iris", batch_size=30)
        spec = initialize_model(
            name="ffnn",
            loss="cross_entropy",
            layer_args=[
                AttrDict(name="fully_connected", activation="relu", n_out=8),
                AttrDict(name="fully_connected", activation="softmax", n_out=None),
            ],
            optimizer_args=AttrDict(name="SGD", lr=0.1, momentum=0.9),
            seed=0,
        )
        direct = NeuralNetwork(
            layers=[FullyConnected(8, "relu"), FullyConnected(None, "softmax")], optimizer=SGD(lr=0.1), seed=0
        )
        for model in (spec, direct):
            with self.assertRaisesRegex(ValueError, "n_out is None"):
                model.predict(data.test.X[:2].astype(np.float32))
            model.train(data, epochs=2, verbose=0)
            self.assertEqual(model.layers[-1].n_out, 3)
            self.assertEqual(model.predict(data.test.X[:2].astype(np.float32)).shape, (2, 3))
            self.assertEqual(model.config()["layers"][-1]["n_out"], 3)
        config = {
            "name": "sized",
            "epochs": 1,
            "data": {"name": "iris", "batch_size": 30},
            "model": {
                "loss": "cross_entropy",
                "layers": [
                    {"name": "fully_connected", "n_out": 4, "activation": "relu"},
                    {"name": "fully_connected", "n_out": None, "activation": "softmax"},
                ],
            },
            "optimizer": {"name": "sgd", "lr": 0.1},
        }
        with tempfile.TemporaryDirectory() as tmp:
            figures = run_experiment(config, out_dir=tmp, verbose=0)
            self.assertIsNotNone(figures["test_accuracy"])
            self.assertIn("n_out: 3", (Path(tmp) / "sized" / "config.yaml").read_text())

    def test_only_the_output_layer_can_be_sized_by_data(self):
        data = initialize_dataset("iris", batch_size=30)
        model = NeuralNetwork(
            layers=[FullyConnected(None, "relu"), FullyConnected(None, "softmax")], optimizer=SGD(lr=0.1), seed=0
        )
        with self.assertRaisesRegex(ValueError, r"FullyConnected \(layer 0\): n_out is None"):
            model.train(data, epochs=1, verbose=0)

    def test_unseeded_model_follows_np_random_seed_and_test_reports_error(self):
        def build():
            return initialize_model(
                name="m",
                loss="cross_entropy",
                layer_args=[
                    {"name": "fully_connected", "activation": "relu", "n_out": 5},
                    {"name": "fully_connected", "activation": "softmax", "n_out": None},
                ],
                optimizer_args={"name": "SGD", "lr": 0.1},
            )

        data = initialize_dataset("iris", batch_size=30)
        results = []
        for _ in range(2):
            np.random.seed(42)
            model = build()
            model.train(data, epochs=1, verbose=0)
            results.append(model.layers[0].parameters["W"].copy())
        np.testing.assert_array_equal(results[0], results[1])
        result = model.test(data)
        self.assertAlmostEqual(result["error"], 1.0 - result["accuracy"])


class TestParameterGroupsInAModel(unittest.TestCase):
    def test_layers_declare_groups_and_group_options_reach_the_optimizer(self):
        from neural_networks.layers import BatchNorm

        model = NeuralNetwork(
            layers=[FullyConnected(6, "linear"), BatchNorm(activation="relu"), FullyConnected(3, "softmax")],
            optimizer=SGD(
                lr=0.1,
                momentum=0.9,
                weight_decay=0.01,
                param_groups={"biases": {"lr_multiplier": 0.0}, "normalization": {"lr_multiplier": 0.0}},
            ),
            seed=0,
        )
        data = initialize_dataset("iris", batch_size=30)
        model.train(data, epochs=0, verbose=0)
        model.forward(data.train.X[:4].astype(np.float32))
        groups = {g["name"]: [key for key, _, _ in g["params"]] for g in model.parameter_groups()}
        self.assertEqual(
            groups, {"weights": ["W0", "W2"], "biases": ["b0", "b2"], "normalization": ["gamma1", "beta1"]}
        )
        before = {key: p.copy() for g in model.parameter_groups() for key, p, _ in g["params"]}
        model.train(data, epochs=2, verbose=0)
        after = {key: p for g in model.parameter_groups() for key, p, _ in g["params"]}
        for key in ("b0", "b2", "gamma1", "beta1"):
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        self.assertFalse(np.array_equal(after["W0"], before["W0"]))


if __name__ == "__main__":
    unittest.main()
