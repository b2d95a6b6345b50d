"""Experiment configs: the shipped ones validate; bad keys and values are named in the error."""

import contextlib
import copy
import pickle
import unittest
from pathlib import Path
from unittest import mock

from neural_networks.experiments import (
    ConfigError,
    ValidConfig,
    apply_overrides,
    dump_config,
    load_config,
    load_valid_config,
    validate_config,
    validate_file_config,
)
from neural_networks.layers import FullyConnected, Layer
from neural_networks.losses import CrossEntropy, Loss
from neural_networks.optimizer_base import Optimizer
from neural_networks.optimizers import SGD
from neural_networks.utils import to_plain

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "t",
    "data": {"name": "iris", "batch_size": 10},
    "model": {"loss": "cross_entropy", "layers": [{"name": "fully_connected", "n_out": 3, "activation": "softmax"}]},
    "optimizer": {"name": "sgd", "lr": 0.1},
}


class TestShippedConfigs(unittest.TestCase):
    def test_every_config_validates(self):
        # *_space.yaml files are search spaces for `neural-networks tune` (tests/test_tune.py), not runs
        paths = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.stem.endswith("_space"))
        self.assertGreaterEqual(len(paths), 3)
        for path in paths:
            with self.subTest(config=path.name):
                config = validate_config(load_config(path))
                self.assertEqual(config["name"], path.stem)


class TestValidation(unittest.TestCase):
    def test_defaults_are_filled(self):
        config = validate_config(BASE)
        self.assertEqual((config["seed"], config["epochs"]), (0, 10))
        self.assertEqual(config["evaluation"], {"tta": "none"})

    def assert_error(self, config, pattern):
        with self.assertRaisesRegex(ConfigError, pattern):
            validate_config(config)

    def test_unknown_and_missing_keys(self):
        bad = copy.deepcopy(BASE)
        bad["optimiser"] = bad.pop("optimizer")
        self.assert_error(
            bad, r"unknown key optimiser; valid keys: callbacks, data, epochs, evaluation, model, name, optimizer, seed"
        )
        bad = copy.deepcopy(BASE)
        del bad["model"]
        self.assert_error(bad, r"missing key model")
        bad = copy.deepcopy(BASE)
        bad["model"]["layer"] = bad["model"].pop("layers")
        self.assert_error(bad, r"unknown key model\.layer; valid keys: layers, loss")
        bad = copy.deepcopy(BASE)
        bad["data"]["batchsize"] = 3
        self.assert_error(bad, r"unknown key data\.batchsize; valid keys: .*batch_size")

    def test_bad_values_name_their_place(self):
        for path, value, pattern in (
            (("model", "layers", 0, "activation"), "relu6", r"model\.layers\.0: unknown activation 'relu6'"),
            (("model", "layers", 0, "n_outs"), 3, r"model\.layers\.0: .*valid arguments"),
            (("optimizer", "momentum"), 1.5, r"optimizer: momentum must be in \[0, 1\)"),
            (("optimizer", "lr_scheduler"), {"name": "cosine", "T_max": 3}, r"optimizer: .*valid arguments"),
            (("model", "loss"), "hinge", r"model\.loss: unknown loss 'hinge'"),
            (("data", "name"), "svhn", r"unknown data set data\.name='svhn'; valid names"),
            (
                ("epochs",),
                -1,
                r"epochs must be a non-negative number; got -1 \(a fraction trains part of the last epoch\)",
            ),
            (("epochs",), "4", r"epochs must be a non-negative number"),
            (("seed",), 1.5, r"seed must be a non-negative integer"),
            (("name",), "a/b", r"name must be a non-empty string without '/'"),
            (
                ("evaluation",),
                {"tta": "rotate"},
                r"evaluation\.tta: unknown test-time augmentation tta='rotate'; valid: none, flip, flip_translate",
            ),
            (("evaluation",), {"ttA": "flip"}, r"unknown key evaluation\.ttA; valid keys: tta"),
            (("evaluation",), "flip", r"evaluation must be a mapping"),
            # a value of the wrong type is named too, not left to float() or a truthiness test
            (("name",), "my run", r"name: 'my run' is not a valid run name"),
            (("model", "loss"), {}, r"model\.loss: a loss mapping needs a name \(one of cross_entropy, l2\)"),
            (("model", "loss"), {"name": "cross_entropy", "label_smoothing": "?"}, r"label_smoothing must be a finite"),
            (("optimizer", "momentum"), "?", r"optimizer: momentum must be a finite number; got '\?'"),
            (("optimizer", "nesterov"), "yes", r"optimizer: nesterov must be true or false"),
            (("optimizer", "lr_scheduler"), {}, r"optimizer: lr_scheduler needs a name \(one of constant, "),
            (("optimizer", "lr_scheduler"), {"name": "cosine", "min_lr": "x"}, r"min_lr must be a finite number"),
            (("optimizer", "lr_scheduler"), {"name": "one_cycle", "pct_start": "x"}, r"pct_start must be a finite"),
            (("optimizer", "lr_scheduler"), {"name": "step", "step_size": 1, "gamma": "x"}, r"gamma must be a finite"),
            (
                ("optimizer", "lr_scheduler"),
                {"name": "exponential", "staircase": "false"},
                r"staircase must be true or",
            ),
            (("data",), {"name": "fashion_mnist", "flatten": "false"}, r"data\.flatten must be true or false"),
        ):
            config = copy.deepcopy(BASE)
            node = config
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            with self.subTest(path=path):
                self.assert_error(config, pattern)

    def test_callbacks(self):
        config = copy.deepcopy(BASE)
        config["callbacks"] = [
            {"name": "EarlyStopping", "patience": 3, "restore_best_weights": True},
            {"name": "model_checkpoint", "monitor": "val_loss"},
        ]
        self.assertEqual(
            validate_config(config)["callbacks"],
            [
                {"name": "early_stopping", "patience": 3, "restore_best_weights": True},
                {"name": "model_checkpoint", "monitor": "val_loss"},
            ],
        )
        self.assertEqual(validate_config(BASE)["callbacks"], [])
        for callbacks, pattern in (
            (
                [{"name": "early_stop"}],
                r"^callbacks\.0: unknown callback 'early_stop'; valid names: early_stopping, freeze, ema, lookahead, model_checkpoint, tensorboard$",
            ),
            (
                [{"name": "early_stopping", "patiense": 3}],
                r"^callbacks\.0: bad arguments for callback 'early_stopping' \(unexpected argument 'patiense'\); valid arguments: monitor, patience",
            ),
            (
                [{"name": "early_stopping", "patience": -2}],
                r"^callbacks\.0: EarlyStopping: patience must be a non-negative integer",
            ),
            (
                [{"name": "early_stopping", "monitor": "val_f1"}],
                r"^callbacks\.0: EarlyStopping: mode='auto' cannot tell",
            ),
            ([{"patience": 3}], r"^callbacks\.0 must be a mapping with a 'name'"),
            ({"name": "early_stopping"}, r"^callbacks must be a list"),
            ([{"name": "model_checkpoint", "directory": "x"}], r"^callbacks\.0: model_checkpoint takes no directory"),
            ([{"name": "model_checkpoint"}, {"name": "model_checkpoint"}], r"^callbacks\.1: a run has one checkpoint"),
        ):
            config = copy.deepcopy(BASE)
            config["callbacks"] = callbacks
            with self.subTest(callbacks=callbacks), self.assertRaisesRegex(ConfigError, pattern):
                validate_config(config)

    def test_cosine_schedule_spans_the_run_by_default(self):
        config = copy.deepcopy(BASE)
        config["epochs"] = 7
        config["optimizer"]["lr_scheduler"] = {"name": "cosine"}
        self.assertEqual(validate_config(config)["optimizer"]["lr_scheduler"]["total_epochs"], 7)
        for name in ("one_cycle", "triangular", "warmup_linear", "One_Cycle"):
            config["optimizer"]["lr_scheduler"] = {"name": name}
            with self.subTest(name=name):
                self.assertEqual(validate_config(config)["optimizer"]["lr_scheduler"].get("total_epochs"), 7)
        config["optimizer"]["lr_scheduler"] = {"name": "step"}  # no total_epochs to set
        self.assertNotIn("total_epochs", validate_config(config)["optimizer"]["lr_scheduler"])
        config["epochs"] = 4.5  # a fractional run: the schedule ends with its partial last epoch
        config["optimizer"]["lr_scheduler"] = {"name": "triangular"}
        checked = validate_config(config)
        self.assertEqual((checked["epochs"], checked["optimizer"]["lr_scheduler"]["total_epochs"]), (4.5, 4.5))
        config["epochs"] = 5.0
        self.assertIsInstance(validate_config(config)["epochs"], int)
        config["epochs"] = 7
        config["optimizer"]["lr_scheduler"] = "cosine"  # the name alone spans the run too
        checked = validate_config(config)
        self.assertEqual(checked["optimizer"]["lr_scheduler"], {"name": "cosine", "total_epochs": 7})
        self.assertEqual(checked.take_model_parts()[2].lr_scheduler.total_epochs, 7)


class TestOverrides(unittest.TestCase):
    def test_dotted_paths_and_yaml_values(self):
        config = apply_overrides(
            BASE,
            ["optimizer.lr=0.5", "data.batch_size=32", "model.layers.0.n_out=4", "data.augment=[flip, crop]", "seed=3"],
        )
        self.assertEqual(config["optimizer"]["lr"], 0.5)
        self.assertEqual(config["data"]["batch_size"], 32)
        self.assertEqual(config["model"]["layers"][0]["n_out"], 4)
        self.assertEqual(config["data"]["augment"], ["flip", "crop"])
        self.assertEqual(config["seed"], 3)
        self.assertEqual(BASE["optimizer"]["lr"], 0.1)  # the original is untouched

    def test_bad_overrides(self):
        with self.assertRaisesRegex(ConfigError, "expects key=value"):
            apply_overrides(BASE, ["optimizer.lr"])
        with self.assertRaisesRegex(ConfigError, "is not an index of a list of 1 items"):
            apply_overrides(BASE, ["model.layers.3.n_out=2"])
        with self.assertRaisesRegex(ConfigError, "not a mapping or list"):
            apply_overrides(BASE, ["optimizer.lr.x=2"])


class TestYAMLAndNumbers(unittest.TestCase):
    """One rule for numbers (YAML 1.1's string "1e-3" is 0.001), no aliases, non-finite values refused."""

    def write(self, text):
        import tempfile

        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        tmp.write(text)
        tmp.close()
        self.addCleanup(Path(tmp.name).unlink)
        return tmp.name

    def test_exponent_without_a_dot_is_a_number_everywhere(self):
        text = "name: t\ndata: {name: iris, batch_size: 10}\nmodel:\n  loss: cross_entropy\n  layers:\n"
        text += "    - {name: fully_connected, n_out: 3, activation: softmax}\noptimizer: {name: sgd, lr: 1e-3}\n"
        config = validate_config(load_config(self.write(text)))
        self.assertEqual(config["optimizer"]["lr"], 0.001)
        self.assertEqual(apply_overrides(BASE, ["optimizer.lr=5E-2"])["optimizer"]["lr"], 0.05)
        self.assertEqual(apply_overrides(BASE, ["name=1e3x"])["name"], "1e3x")  # not a number: a string

    def test_aliases_are_refused_before_anything_is_built(self):
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
        with self.assertRaisesRegex(ConfigError, r"YAML aliases \(\*a\) are not accepted"):
            load_config(self.write(bomb))
        with self.assertRaisesRegex(ConfigError, "aliases"):
            apply_overrides(BASE, ["data.augment=[&x a, *x]"])

    def test_syntax_errors_are_one_line_naming_the_file(self):
        path = self.write("name: [unclosed\n")
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        self.assertIn(path, str(caught.exception))
        self.assertNotIn("\n", str(caught.exception))

    def test_non_finite_values_are_refused(self):
        for key, value in (
            ("optimizer.lr", ".inf"),
            ("optimizer.lr", ".nan"),
            ("optimizer.momentum", ".nan"),
            ("optimizer.clip_norm", ".inf"),
        ):
            with self.subTest(key=key, value=value), self.assertRaises(ConfigError):
                validate_config(apply_overrides(BASE, [f"{key}={value}"]))


class TestDuplicateKeys(unittest.TestCase):
    """A key given twice in one mapping is refused at any depth (PyYAML keeps the last silently)."""

    def write(self, text):
        return TestYAMLAndNumbers.write(self, text)

    def error(self, path) -> str:
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        return str(caught.exception)

    def test_a_second_top_level_block(self):
        text = (
            "name: t\n"  # 1
            "data: {name: iris, batch_size: 10}\n"  # 2
            "optimizer:\n"  # 3
            "  name: sgd\n"  # 4
            "  lr: 0.1\n"  # 5
            "model:\n"  # 6
            "  loss: cross_entropy\n"  # 7
            "  layers: [{name: fully_connected, n_out: 3, activation: softmax}]\n"  # 8
            "optimizer: {name: adam, lr: 0.001}\n"  # 9
        )
        path = self.write(text)
        self.assertEqual(
            self.error(path), f"{path}: key 'optimizer' appears twice (lines 3 and 9); a mapping takes each key once"
        )

    def test_nested_and_in_list_items(self):
        for text, expected in (
            (
                "optimizer:\n  name: sgd\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.5\n",
                "'optimizer.lr' appears twice (lines 3 and 5)",
            ),
            (
                "model:\n  layers:\n    - {name: flatten}\n    - {name: fully_connected, n_out: 3, n_out: 4}\n",
                "'model.layers.1.n_out' appears twice (both on line 4)",
            ),
            (
                "model:\n  layers:\n    - name: fully_connected\n      n_out: 3\n      'n_out': 4\n",
                "'model.layers.0.n_out' appears twice (lines 4 and 5)",  # quoting makes no other key
            ),
            ("optimizer:\n  lr_scheduler: {name: step, name: cosine}\n", "'optimizer.lr_scheduler.name' appears twice"),
        ):
            with self.subTest(expected=expected):
                path = self.write(text)
                message = self.error(path)
                self.assertTrue(message.startswith(f"{path}: key "), message)
                self.assertIn(expected, message)
                self.assertNotIn("\n", message)
        # the same key in different mappings, and 1 next to '1' (an int and a string), are fine
        self.assertEqual(
            load_config(self.write("name: a\ndata: {name: iris}\nx: {1: a, '1': b}\n"))["x"], {1: "a", "1": "b"}
        )

    def test_set_values(self):
        with self.assertRaises(ConfigError) as caught:
            apply_overrides(BASE, ["optimizer={name: sgd, lr: 0.1, lr: 0.2}"])
        self.assertEqual(
            str(caught.exception),
            "--set optimizer={name: sgd, lr: 0.1, lr: 0.2}: key 'optimizer.lr' appears twice (both on line 1); "
            "a mapping takes each key once",
        )


class TestDataValues(unittest.TestCase):
    """batch_size and validation_size are checked when the config is, not when the data loads."""

    def check(self, data):
        config = copy.deepcopy(BASE)
        config["data"] = data
        return validate_config(config)

    def test_batch_size(self):
        for value in (0, -3, 2.5, True, "32", None):
            with self.subTest(value=value), self.assertRaises(ConfigError) as caught:
                self.check({"name": "iris", "batch_size": value})
            self.assertEqual(str(caught.exception), f"data.batch_size must be a positive integer, got {value!r}")
        self.assertEqual(self.check({"name": "iris", "batch_size": 1})["data"]["batch_size"], 1)

    def test_validation_size(self):
        for value in (1.0, 1.5, -0.1, -2, True, "0.1", None):
            with self.subTest(value=value), self.assertRaises(ConfigError) as caught:
                self.check({"name": "mnist", "validation_size": value})
            self.assertEqual(
                str(caught.exception),
                f"data.validation_size must be a count of examples (an integer >= 0) or a fraction in [0, 1), "
                f"got {value!r}",
            )
        for value in (0, 0.0, 0.25, 5000):
            with self.subTest(value=value):
                self.check({"name": "mnist", "validation_size": value})


class TestOutputLayerAndLoss(unittest.TestCase):
    """A loss whose expected input the last layer cannot make is refused, naming the key and the fix."""

    def config(self, last, loss="cross_entropy"):
        config = copy.deepcopy(BASE)
        config["model"] = {
            "loss": loss,
            "layers": [{"name": "fully_connected", "n_out": 8, "activation": "relu"}, *last],
        }
        return config

    def test_cross_entropy_needs_softmax(self):
        for activation in ("relu", "linear", "tanh", "sigmoid", "gelu", "ReLU"):
            with self.subTest(activation=activation), self.assertRaises(ConfigError) as caught:
                validate_config(self.config([{"name": "fully_connected", "n_out": 3, "activation": activation}]))
            self.assertEqual(
                str(caught.exception),
                f"model.layers.1.activation: {activation!r} cannot make the probabilities that model.loss "
                "cross_entropy expects; use activation: softmax for cross_entropy",
            )
        with self.assertRaises(ConfigError) as caught:  # no activation: linear
            validate_config(self.config([{"name": "fully_connected", "n_out": 3}]))
        self.assertEqual(
            str(caught.exception),
            "model.layers.1.activation: 'linear' (the default) cannot make the probabilities that model.loss "
            "cross_entropy expects; use activation: softmax for cross_entropy",
        )
        smoothed = {"name": "cross_entropy", "label_smoothing": 0.1}
        with self.assertRaisesRegex(ConfigError, r"^model\.layers\.1\.activation: 'relu' cannot make"):
            validate_config(self.config([{"name": "fully_connected", "n_out": 3, "activation": "relu"}], smoothed))

    def test_a_last_layer_without_an_activation(self):
        softmax = {"name": "fully_connected", "n_out": 3, "activation": "softmax"}
        for name, extra in (("dropout", {"p": 0.1}), ("flatten", {})):
            with self.subTest(name=name), self.assertRaises(ConfigError) as caught:
                validate_config(self.config([softmax, {"name": name, **extra}]))
            self.assertEqual(
                str(caught.exception),
                f"model.layers.2: a {name} layer cannot make the probabilities that model.loss cross_entropy "
                "expects; end with a layer with activation: softmax for cross_entropy",
            )

    def test_what_is_accepted(self):
        softmax = {"name": "fully_connected", "n_out": 3, "activation": "softmax"}
        validate_config(self.config([softmax]))
        validate_config(self.config([{"name": "batchnorm", "activation": "softmax"}]))
        for activation in ("relu", "linear", "sigmoid", "softmax"):  # l2 takes any output
            validate_config(self.config([{"name": "fully_connected", "n_out": 3, "activation": activation}], "l2"))
        validate_config(self.config([softmax, {"name": "dropout"}], "l2"))

    def test_the_file_is_named(self):
        text = Path(ROOT / "configs" / "iris.yaml").read_text().replace("activation: softmax", "activation: relu")
        path = TestYAMLAndNumbers.write(self, text)
        with self.assertRaises(ConfigError) as caught:
            load_valid_config(path)
        self.assertTrue(str(caught.exception).startswith(f"{path}: model.layers.1.activation: 'relu' cannot make"))


@contextlib.contextmanager
def count_builds():
    """Mocks counting the optimizers, losses and layers (``"optimizer"``, ``"loss"``, ``"layer"``)
    constructed inside the context: each base class's ``__init__``, which every subclass calls."""
    with contextlib.ExitStack() as stack:
        yield {
            kind: stack.enter_context(mock.patch.object(cls, "__init__", autospec=True, side_effect=cls.__init__))
            for kind, cls in (("optimizer", Optimizer), ("loss", Loss), ("layer", Layer))
        }


class TestValidConfig(unittest.TestCase):
    """A config is validated once into a ValidConfig, whose loss, layers and optimizer (built to
    check it) the model takes over."""

    def test_a_dict_whose_copies_are_plain_dicts(self):
        config = validate_config(BASE)
        self.assertIsInstance(config, ValidConfig)
        self.assertIsInstance(config, dict)
        self.assertEqual(dump_config(config), dump_config(dict(config)))
        # a copy is made to be edited: it is validated anew, so it must not pass for checked
        for copied in (copy.copy(config), copy.deepcopy(config), pickle.loads(pickle.dumps(config)), to_plain(config)):
            with self.subTest(copied=copied):
                self.assertIs(type(copied), dict)
                self.assertEqual(copied, config)

    def test_validate_config_checks_a_valid_config_again(self):
        config = validate_config(BASE)
        config["optimizer"]["lr"] = -1
        with self.assertRaisesRegex(ConfigError, r"^optimizer: learning rate must be positive; got -1$"):
            validate_config(config)

    def test_validation_builds_each_part_once_and_hands_it_over_once(self):
        with count_builds() as built:
            config = validate_config(BASE)
            self.assertEqual(
                {kind: count.call_count for kind, count in built.items()}, {"optimizer": 1, "loss": 1, "layer": 1}
            )
            loss, layers, optimizer = config.take_model_parts()  # built already: nothing more
            self.assertEqual(
                {kind: count.call_count for kind, count in built.items()}, {"optimizer": 1, "loss": 1, "layer": 1}
            )
            self.assertIs(optimizer, built["optimizer"].call_args.args[0])
            again = config.take_model_parts()  # a second model gets its own
            self.assertEqual(built["optimizer"].call_count, 2)
        self.assertIsInstance(loss, CrossEntropy)
        self.assertIsInstance(layers[0], FullyConnected)
        self.assertIsInstance(optimizer, SGD)
        for first, second in zip((loss, *layers, optimizer), (again[0], *again[1], again[2])):
            self.assertIsNot(first, second)
            self.assertIs(type(first), type(second))
        self.assertEqual([layer.config() for layer in again[1]], [layer.config() for layer in layers])
        self.assertEqual(again[2].config(), optimizer.config())

    def test_a_section_changed_since_validation_is_built_anew(self):
        config = validate_config(BASE)
        config["optimizer"]["lr"] = 0.5
        config["model"]["layers"][0]["n_out"] = 4
        loss, layers, optimizer = config.take_model_parts()
        self.assertEqual((optimizer.lr, layers[0].n_out), (0.5, 4))
        config = validate_config(BASE)
        config["optimizer"]["lr"] = 1  # equal, but not the same type: built anew
        with count_builds() as built:
            config.take_model_parts()
        self.assertEqual(
            (built["optimizer"].call_count, built["loss"].call_count, built["layer"].call_count), (1, 0, 0)
        )

    def test_validate_file_config_names_the_file_and_the_overrides(self):
        bad = apply_overrides(BASE, ["optimizer.lr=-1"])
        with self.assertRaisesRegex(ConfigError, r"^run\.yaml with optimizer\.lr=-1: optimizer: learning rate"):
            validate_file_config(bad, "run.yaml", ["optimizer.lr=-1"])
        self.assertIsInstance(validate_file_config(BASE, "run.yaml"), ValidConfig)
        self.assertEqual(BASE["optimizer"], {"name": "sgd", "lr": 0.1})  # the config as written is untouched


if __name__ == "__main__":
    unittest.main()
