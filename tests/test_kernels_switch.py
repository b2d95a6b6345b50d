"""The kernel switch (neural_networks.set_kernels / kernels() / NEURAL_NETWORKS_KERNELS): its
values and errors; that reference mode runs nothing of neural_networks.functional but the
reference and the dispatch, in the calling thread; and that a whole training run of a small CNN
with every layer type gives the same losses and gradients both ways, to float32 rounding."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

import neural_networks
from neural_networks import functional as F
from neural_networks.functional import parallel
from neural_networks.layers import BatchNorm, Conv2D, Dropout, Flatten, FullyConnected, Pool2D
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD

from .helpers import one_hot, run_cli

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONAL = Path(F.__file__).resolve().parent


def _python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != F.ENV_KERNELS}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)


class TestSwitch(unittest.TestCase):
    def setUp(self):
        self.addCleanup(F.set_kernels, F.get_kernels())

    def test_exported_by_the_package(self):
        self.assertIs(neural_networks.set_kernels, F.set_kernels)
        self.assertIs(neural_networks.kernels, F.kernels)
        self.assertIs(neural_networks.get_kernels, F.get_kernels)

    def test_set_and_context_manager(self):
        F.set_kernels("fast")
        with neural_networks.kernels("reference"):
            self.assertEqual(F.get_kernels(), "reference")
            with neural_networks.kernels("fast"):
                self.assertEqual(F.get_kernels(), "fast")
            self.assertEqual(F.get_kernels(), "reference")
        self.assertEqual(F.get_kernels(), "fast")
        with self.assertRaises(KeyError), neural_networks.kernels("reference"):
            raise KeyError("inside")
        self.assertEqual(F.get_kernels(), "fast")  # restored after an error too
        neural_networks.set_kernels("reference")
        self.assertEqual(F.get_kernels(), "reference")

    def test_bad_values_name_the_setting(self):
        for bad in ("Reference", "slow", "", None, 1):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, r"kernels must be 'fast' or 'reference'; got"):
                    F.set_kernels(bad)
                with self.assertRaisesRegex(ValueError, r"kernels must be 'fast' or 'reference'"):
                    with F.kernels(bad):
                        pass

    def test_environment_variable_read_at_first_use(self):
        code = "import neural_networks as nn; print(nn.get_kernels())"
        self.assertEqual(_python(code).stdout.split(), ["fast"])
        self.assertEqual(_python(code, NEURAL_NETWORKS_KERNELS="reference").stdout.split(), ["reference"])
        self.assertEqual(_python(code, NEURAL_NETWORKS_KERNELS=" fast ").stdout.split(), ["fast"])
        # importing reads nothing; the first operation does, and set_kernels overrides it
        late = (
            "import os, neural_networks as nn\nos.environ['NEURAL_NETWORKS_KERNELS'] = 'reference'\n"
            "print(nn.get_kernels()); nn.set_kernels('fast'); print(nn.get_kernels())"
        )
        self.assertEqual(_python(late).stdout.split(), ["reference", "fast"])
        bad = _python("import neural_networks as nn; nn.get_kernels()", NEURAL_NETWORKS_KERNELS="turbo")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("ValueError: NEURAL_NETWORKS_KERNELS must be 'fast' or 'reference'; got 'turbo'", bad.stderr)

    def test_cli_bad_value_is_a_one_line_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, NEURAL_NETWORKS_KERNELS="turbo")
            result = run_cli(
                "train",
                ROOT / "configs" / "iris.yaml",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                Path(tmp) / "run",
                cwd=tmp,
                env=env,
                check=False,
            )
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("NEURAL_NETWORKS_KERNELS must be 'fast' or 'reference'; got 'turbo'", lines[0])

    def test_a_backward_pass_refuses_a_cache_of_the_other_kernels(self):
        layer = Conv2D(2, (3, 3), activation="relu")
        X = np.random.default_rng(0).standard_normal((2, 5, 5, 3))
        with F.kernels("fast"):
            Y = layer.forward(X)
        with F.kernels("reference"), self.assertRaisesRegex(RuntimeError, "ran the fast kernels.*run forward again"):
            layer.backward(np.ones_like(Y))


def small_cnn(seed: int) -> NeuralNetwork:
    """Every layer type: convolutions with ReLU (thin input: channel planes) and GELU (im2col),
    batch norm with ReLU, max and average pooling, dropout, flatten, dense with GELU and softmax."""
    layers = [
        Conv2D(6, (3, 3), activation="relu", pad="same"),
        Conv2D(8, (3, 3), activation="gelu", stride=1, pad=1),
        BatchNorm(activation="relu"),
        Pool2D((2, 2), mode="max", stride=2),
        Conv2D(8, (3, 3), activation="linear", pad="valid", use_bias=False),
        BatchNorm(activation="gelu"),
        Pool2D((2, 2), mode="average", stride=1, pad=0),
        Dropout(0.25),
        Flatten(),
        FullyConnected(12, activation="gelu"),
        FullyConnected(4, activation="softmax"),
    ]
    return NeuralNetwork(layers=layers, loss="cross_entropy", optimizer=SGD(lr=0.05, momentum=0.9), seed=seed)


def train_steps(mode: str, steps: int = 4):
    """Losses of ``steps`` training steps and the gradients of the first, with ``mode``'s kernels."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 10, 10, 3)).astype(np.float32)
    Y = one_hot(rng, 8, 4).astype(np.float32)
    model = small_cnn(seed=7)
    losses, first = [], None
    with F.kernels(mode):
        for _ in range(steps):
            losses.append(model.backward(Y, model.forward(X)))
            if first is None:
                first = [{k: g.copy() for k, g in layer.gradients.items()} for layer in model.layers]
            model.update(epoch=0.0)
        model.eval_mode()
        out = model.forward(X)
    return np.array(losses), first, out


class TestReferenceMode(unittest.TestCase):
    def test_only_the_reference_and_the_dispatch_run_in_the_calling_thread(self):
        called = set()

        def profile(frame, event, arg):
            if event == "call":
                called.add(Path(frame.f_code.co_filename).resolve())

        model = small_cnn(seed=1)
        rng = np.random.default_rng(1)
        X, Y = rng.standard_normal((4, 10, 10, 3)).astype(np.float32), one_hot(rng, 4, 4).astype(np.float32)
        threads = threading.active_count()
        with (
            F.kernels("reference"),
            mock.patch.object(parallel, "map_batch", side_effect=AssertionError("a kernel split the batch")),
        ):
            sys.setprofile(profile)
            try:
                model.backward(Y, model.forward(X))
                model.update(epoch=0.0)
                model.predict(X)
            finally:
                sys.setprofile(None)
        ran = {path.name for path in called if path.parent == FUNCTIONAL}
        self.assertEqual(ran, {"__init__.py", "reference.py"})
        self.assertEqual(threading.active_count(), threads)

    def test_training_gives_the_same_losses_and_gradients(self):
        fast_losses, fast_grads, fast_out = train_steps("fast")
        ref_losses, ref_grads, ref_out = train_steps("reference")
        np.testing.assert_allclose(ref_losses, fast_losses, rtol=1e-4)
        for i, (fast, ref) in enumerate(zip(fast_grads, ref_grads)):
            for key in fast:
                with self.subTest(layer=i, key=key):
                    scale = float(np.max(np.abs(ref[key])))
                    np.testing.assert_allclose(fast[key], ref[key], rtol=0, atol=1e-4 * scale)
        np.testing.assert_allclose(fast_out, ref_out, rtol=1e-3, atol=1e-5)

    def test_float64_gradient_checks_pass_in_reference_mode(self):
        from .helpers import numerical_gradient, relative_error

        rng = np.random.default_rng(4)
        cases = [
            (Conv2D(3, (3, 3), activation="relu", stride=2, pad=1), (2, 6, 7, 2)),
            (Conv2D(2, (2, 3), activation="gelu", pad=(1, 0)), (2, 5, 5, 5)),
            (Pool2D((2, 2), mode="max", stride=2), (2, 4, 6, 3)),
            (Pool2D((3, 3), mode="average", stride=1, pad=1), (2, 4, 4, 2)),
            (BatchNorm(activation="relu"), (4, 3, 3, 2)),
            (FullyConnected(4, activation="softmax"), (3, 5)),
        ]
        with F.kernels("reference"):
            for layer, shape in cases:
                with self.subTest(layer=repr(layer)):
                    X = rng.permutation(np.linspace(-2, 2, int(np.prod(shape)))).reshape(shape)
                    Y = layer.forward(X)
                    dY = rng.standard_normal(Y.shape)
                    dX = layer.backward(dY)
                    self.assertLess(relative_error(dX, numerical_gradient(layer.forward, X.copy(), dY)), 1e-7)
                    for name in layer.parameters:
                        num = numerical_gradient(layer.forward_with_param(name, X), layer.parameters[name], dY)
                        self.assertLess(relative_error(layer.gradients[name], num), 1e-7)


if __name__ == "__main__":
    unittest.main()
