"""Tests of neural_networks.registry: names -> factories, look-ups, the mapping protocol the
families' code uses (``registry[name]``, ``dict(registry)``, ``in``, iteration), and the errors."""

import unittest

from neural_networks.registry import Registry


class Widget:
    name = "widget"

    def __init__(self, size: int, color: str = "red") -> None:
        self.size, self.color = size, color


class Gadget:
    name = "gadget"

    def __init__(self, **options) -> None:
        self.options = options


def make_thing(a, b=2):
    return ("thing", a, b)


def make_registry() -> Registry:
    things = Registry("thing")
    things.add("widget", Widget, aliases=("w", "Small-Widget"))
    things.add("make_thing", make_thing)
    things.register()(Gadget)
    return things


class TestRegistry(unittest.TestCase):
    def setUp(self):
        self.things = make_registry()

    def test_names_in_registration_order_or_sorted(self):
        self.assertEqual(self.things.names(), ["widget", "make_thing", "gadget"])
        self.assertEqual(list(self.things), ["widget", "make_thing", "gadget"])
        self.assertEqual(len(self.things), 3)
        # sort_names sorts the valid names of errors only; iteration keeps the registration order
        sorted_things = Registry("thing", sort_names=True)
        for name in ("b", "c", "a"):
            sorted_things.add(name, make_thing)
        self.assertEqual(sorted_things.names(), ["b", "c", "a"])
        with self.assertRaisesRegex(ValueError, r"^unknown thing 'd'; valid names: a, b, c$"):
            sorted_things.get("d")

    def test_look_ups_ignore_case_dashes_and_aliases(self):
        for name in ("widget", "WIDGET", " Widget ", "w", "small_widget", "SMALL-WIDGET"):
            with self.subTest(name=name):
                self.assertIn(name, self.things)
                self.assertIs(self.things.get(name), Widget)
                self.assertEqual(self.things.canonical(name), "widget")
        self.assertIn("Make-Thing", self.things)
        self.assertNotIn("nothing", self.things)

    def test_mapping_protocol(self):
        self.assertIs(self.things["Widget"], Widget)
        self.assertIs(self.things["w"], self.things.get("w"))
        self.assertEqual(self.things.keys(), ["widget", "make_thing", "gadget"])
        self.assertEqual(self.things.values(), [Widget, make_thing, Gadget])
        self.assertEqual(self.things.items(), [("widget", Widget), ("make_thing", make_thing), ("gadget", Gadget)])
        self.assertEqual(dict(self.things), {"widget": Widget, "make_thing": make_thing, "gadget": Gadget})
        self.assertEqual(dict(self.things, extra=int)["extra"], int)
        self.assertEqual(set(self.things), {"widget", "make_thing", "gadget"})

    def test_unknown_name_lists_valid_names(self):
        for look_up in (
            self.things.get,
            self.things.canonical,
            self.things.__getitem__,
            lambda name: self.things.create(name),
        ):
            with self.subTest(look_up=look_up):
                with self.assertRaisesRegex(
                    ValueError, r"^unknown thing 'doohickey'; valid names: widget, make_thing, gadget$"
                ):
                    look_up("doohickey")

    def test_registered_twice(self):
        with self.assertRaisesRegex(ValueError, "thing 'Widget' is registered twice"):
            self.things.add("Widget", Gadget)
        with self.assertRaisesRegex(ValueError, "thing 'w' is registered twice"):
            self.things.add("w", Gadget)
        with self.assertRaisesRegex(ValueError, "thing 'W' is registered twice"):
            self.things.add("other", Gadget, aliases=("W",))
        self.assertNotIn("other", self.things)

    def test_aliases_specs_and_repr(self):
        self.assertEqual(self.things.aliases("Widget"), ["w", "small_widget"])
        self.assertEqual(self.things.aliases("gadget"), [])
        self.assertIsNone(self.things.spec("widget"))
        about = object()
        self.things.add("described", make_thing, aliases=("d",), spec=about)
        self.assertIs(self.things.spec("D"), about)
        self.assertIs(self.things["described"], make_thing)
        with self.assertRaisesRegex(ValueError, "unknown thing 'nothing'"):
            self.things.spec("nothing")
        self.assertEqual(repr(self.things), "Registry('thing': widget, make_thing, gadget, described)")

    def test_a_factory_may_take_an_argument_called_name(self):
        def named(name, size=1):
            return name, size

        self.things.add("named", named)
        self.assertEqual(self.things.create("named", name="x", size=2), ("x", 2))
        self.assertEqual(self.things.arguments("named"), ["name", "size"])

    def test_create_and_arguments(self):
        widget = self.things.create("widget", size=3)
        self.assertIsInstance(widget, Widget)
        self.assertEqual((widget.size, widget.color), (3, "red"))
        self.assertEqual(self.things.create("make_thing", a=1), ("thing", 1, 2))
        self.assertEqual(self.things.create("gadget", anything=1).options, {"anything": 1})
        self.assertEqual(self.things.arguments("widget"), ["size", "color"])
        self.assertEqual(self.things.arguments("make_thing"), ["a", "b"])
        self.assertEqual(self.things.arguments("gadget"), [])

    def test_bad_arguments_name_the_valid_ones(self):
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for thing 'widget' \(unexpected argument 'colour'\); "
            r"valid arguments: size, color",
        ):
            self.things.create("widget", size=1, colour="blue")
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for thing 'make_thing' \(missing argument 'a'\); "
            r"valid arguments: a, b",
        ):
            self.things.create("make_thing", b=1)

    def test_every_family_is_a_registry_used_as_a_mapping(self):
        from neural_networks.activations import ACTIVATIONS, ReLU
        from neural_networks.callbacks import CALLBACKS
        from neural_networks.datasets import DATASETS, load_mnist
        from neural_networks.losses import LOSSES, CrossEntropy
        from neural_networks.optimizers import OPTIMIZERS, AdamW
        from neural_networks.schedulers import SCHEDULERS, CosineLR
        from neural_networks.weights import INITIALIZERS

        families = {
            ACTIVATIONS: ("activation", "ReLU", ReLU),
            LOSSES: ("loss", "Cross-Entropy", CrossEntropy),
            OPTIMIZERS: ("optimizer", "AdamW", AdamW),
            SCHEDULERS: ("lr_scheduler", "cosine", CosineLR),
            DATASETS: ("data set", "MNIST", load_mnist),
            CALLBACKS: ("callback", "early_stopping", None),
            INITIALIZERS: ("weight initializer", "he_normal", None),
        }
        for registry, (family, name, factory) in families.items():
            with self.subTest(family=family):
                self.assertIsInstance(registry, Registry)
                self.assertEqual(registry.family, family)
                self.assertIn(name, registry)
                if factory is not None:
                    self.assertIs(registry[name], factory)
                self.assertEqual(dict(registry.items()), dict(registry))
                self.assertEqual(list(registry), registry.keys())

    def test_layers_registry(self):
        from neural_networks.layers import LAYERS, BatchNorm, Conv2D

        self.assertIsInstance(LAYERS, Registry)
        self.assertIs(LAYERS["Conv2D"], Conv2D)
        self.assertIs(dict(LAYERS)["batchnorm"], BatchNorm)


if __name__ == "__main__":
    unittest.main()
