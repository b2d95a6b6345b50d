"""Tests of the Muon optimizer: the Newton-Schulz orthogonalisation against the SVD, the update
against a hand-written one and torch.optim.Muon, the fallback optimizer, state, config, training."""

import tempfile
import unittest
from unittest import mock

import numpy as np

from neural_networks.callbacks import Callback
from neural_networks.experiments import ConfigError, validate_config
from neural_networks.layers import BatchNorm, Conv2D, Flatten, FullyConnected
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import (
    NEWTON_SCHULZ_COEFFICIENTS,
    SGD,
    AdamW,
    Muon,
    initialize_optimizer,
    orthogonalize,
)
from neural_networks.schedulers import initialize_scheduler
from neural_networks.training import fit

from .test_callbacks import assert_split_equals_whole, iris, train_whole_and_split
from .torch_oracles import optimizer_steps, requires_torch, torch


def scalar_iteration(sigma: np.ndarray, steps: int) -> np.ndarray:
    """What the quintic iteration does to each singular value (it acts on them one by one)."""
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    for _ in range(steps):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    return sigma


def svd_reference(G: np.ndarray, steps: int) -> np.ndarray:
    """``U f(S / ||G||_F) V^T`` from an SVD in float64: orthogonalize's closed form."""
    U, S, Vt = np.linalg.svd(G.astype(np.float64), full_matrices=False)
    return (U * scalar_iteration(S / np.linalg.norm(S), steps)) @ Vt


def hand_written_muon(params, grads_per_step, lr, momentum, nesterov, weight_decay, steps, adjust, normalize):
    """Muon written out in float64 for ``params`` (name -> array, the last axis the outputs)."""
    params = {k: v.astype(np.float64).copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    for grads in grads_per_step:
        for k, p in params.items():
            velocity[k] = momentum * velocity[k] + grads[k]
            u = grads[k] + momentum * velocity[k] if nesterov else velocity[k]
            n_out = p.shape[-1]
            rows = p.size // n_out
            update = svd_reference(u.reshape(rows, n_out), steps).reshape(p.shape)
            factor = {
                "none": 1.0,
                "original": max(1.0, n_out / rows) ** 0.5,
                "match_rms_adamw": 0.2 * max(n_out, rows) ** 0.5,
            }
            if normalize:
                p = p * (np.sqrt(n_out) / np.linalg.norm(p))
            params[k] = p * (1 - lr * weight_decay) - lr * factor[adjust] * update
    return params


def run(optimizer, params, grads_per_step, group="weights", dtype=np.float64):
    params = {k: v.astype(dtype).copy() for k, v in params.items()}
    for grads in grads_per_step:
        optimizer.step([{"name": group, "params": [(k, p, grads[k].astype(dtype)) for k, p in params.items()]}], 0)
    return params


class TestOrthogonalize(unittest.TestCase):
    def test_singular_values_follow_the_scalar_iteration_and_vectors_stay(self):
        rng = np.random.default_rng(0)
        for shape in ((6, 20), (20, 6), (9, 9), (288, 64)):
            for steps in (1, 3, 5):
                with self.subTest(shape=shape, steps=steps):
                    G = rng.standard_normal(shape)
                    np.testing.assert_allclose(orthogonalize(G, steps), svd_reference(G, steps), rtol=0, atol=1e-11)

    def test_five_steps_bring_every_singular_value_near_one(self):
        rng = np.random.default_rng(1)
        G = rng.standard_normal((64, 576)) * np.logspace(-1.5, 0, 64)[:, None]  # over 1.5 decades
        S = np.linalg.svd(orthogonalize(G, 5), compute_uv=False)
        self.assertGreater(S.min(), 0.6)
        self.assertLess(S.max(), 1.25)

    def test_float32_stays_float32_and_close_to_float64(self):
        rng = np.random.default_rng(2)
        G = rng.standard_normal((64, 300))
        X32 = orthogonalize(G.astype(np.float32), 5)
        self.assertEqual(X32.dtype, np.float32)
        X64 = orthogonalize(G, 5)
        self.assertLess(np.linalg.norm(X32 - X64) / np.linalg.norm(X64), 1e-5)

    def test_zero_gives_zero(self):
        X = orthogonalize(np.zeros((3, 4), dtype=np.float32))
        np.testing.assert_array_equal(X, 0)


class TestMuonUpdate(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.params = {"W0": rng.standard_normal((3, 3, 4, 8)), "W1": rng.standard_normal((16, 5))}
        self.grads = [{k: rng.standard_normal(v.shape) for k, v in self.params.items()} for _ in range(4)]

    def test_against_a_hand_written_update(self):
        cases = [
            dict(
                momentum=0.9, nesterov=True, weight_decay=0.0, ns_steps=5, adjust_lr="original", normalize_weights=False
            ),
            dict(momentum=0.6, nesterov=True, weight_decay=0.0, ns_steps=3, adjust_lr="none", normalize_weights=True),
            dict(
                momentum=0.8,
                nesterov=False,
                weight_decay=0.1,
                ns_steps=5,
                adjust_lr="match_rms_adamw",
                normalize_weights=False,
            ),
            dict(
                momentum=0.5,
                nesterov=False,
                weight_decay=0.05,
                ns_steps=2,
                adjust_lr="original",
                normalize_weights=True,
            ),
        ]
        for case in cases:
            with self.subTest(**case):
                ours = run(Muon(lr=0.05, **case), self.params, self.grads)
                theirs = hand_written_muon(
                    self.params, self.grads, 0.05, case["momentum"], case["nesterov"], case["weight_decay"],
                    case["ns_steps"], case["adjust_lr"], case["normalize_weights"],
                )  # fmt: skip
                for k in ours:
                    np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)

    def test_the_step_is_orthogonal_whatever_the_gradient_scale(self):
        opt = Muon(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0, adjust_lr="none")
        W = np.zeros((3, 3, 4, 8))
        small = opt.update("W", W, 1e-6 * self.grads[0]["W0"], epoch=0).copy()
        large = Muon(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0, adjust_lr="none").update(
            "W", W, 1e6 * self.grads[0]["W0"], epoch=0
        )
        np.testing.assert_allclose(small, large, rtol=1e-9, atol=1e-12)
        S = np.linalg.svd(small.reshape(36, 8), compute_uv=False)
        self.assertTrue(np.all((S > 0.6) & (S < 1.25)), S)

    def test_float32_parameters_get_float32_steps(self):
        opt = Muon(lr=0.1)
        W = self.params["W0"].astype(np.float32)
        self.assertEqual(opt.update("W", W, self.grads[0]["W0"].astype(np.float32), epoch=0).dtype, np.float32)

    def test_schedule_and_group_multiplier_scale_the_step(self):
        schedule = {"name": "triangular", "total_epochs": 4}
        opt = Muon(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, lr_scheduler=schedule,
                   param_groups={"weights": {"lr_multiplier": 3}})  # fmt: skip
        plain = Muon(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0)
        W, g = self.params["W1"], self.grads[0]["W1"]
        lr = initialize_scheduler(lr=0.1, **schedule)(1.5)
        np.testing.assert_allclose(opt.update("W", W, g, epoch=1.5), 3 * lr * plain.update("W", W, g, epoch=0))


@requires_torch
class TestMuonParityWithTorch(unittest.TestCase):
    """torch.optim.Muon on dense kernels (its 2-D case): our (n_in, n_out) is its (n_out, n_in)."""

    def setUp(self):
        rng = np.random.default_rng(3)
        self.params = {"W0": rng.standard_normal((12, 7)), "W1": rng.standard_normal((5, 9))}
        self.grads = [{k: rng.standard_normal(v.shape) for k, v in self.params.items()} for _ in range(5)]

    def _torch(self, **kwargs):
        transposed = {k: v.T.copy() for k, v in self.params.items()}
        grads = [{k: v.T.copy() for k, v in g.items()} for g in self.grads]
        out = optimizer_steps(
            lambda g: torch.optim.Muon(g, **kwargs), transposed, grads, [{"params": list(transposed)}]
        )
        return {k: v.T for k, v in out.items()}

    def test_same_steps_with_torchs_orthogonalisation_in_float64(self):
        def newton_schulz_float64(grad, coefficients, steps, eps):  # torch's, without its bfloat16 cast
            a, b, c = coefficients
            X = grad.T if grad.size(0) > grad.size(1) else grad
            X = X / X.norm().clamp(min=eps)
            for _ in range(steps):
                A = X @ X.T
                X = a * X + (b * A + c * A @ A) @ X
            return X.T if grad.size(0) > grad.size(1) else X

        for adjust in ("original", "match_rms_adamw"):
            for nesterov in (True, False):
                with (
                    self.subTest(adjust=adjust, nesterov=nesterov),
                    mock.patch("torch.optim._muon._zeropower_via_newtonschulz", newton_schulz_float64),
                ):
                    options = dict(lr=0.02, weight_decay=0.1, momentum=0.9, nesterov=nesterov, ns_steps=5)
                    theirs = self._torch(**options, adjust_lr_fn=adjust)
                    ours = run(Muon(**options, adjust_lr=adjust), self.params, self.grads)
                    for k in ours:
                        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, atol=1e-12, err_msg=k)

    def test_torch_as_shipped_agrees_to_its_bfloat16_precision(self):
        theirs = self._torch(lr=0.02, weight_decay=0.1)
        ours = run(Muon(lr=0.02, weight_decay=0.1), self.params, self.grads)
        for k in ours:
            moved = np.linalg.norm(theirs[k] - self.params[k])
            self.assertLess(np.linalg.norm(ours[k] - theirs[k]), 0.02 * moved, k)


class TestFallback(unittest.TestCase):
    def test_other_parameters_take_the_fallback_exactly(self):
        rng = np.random.default_rng(4)
        conv, dense, bias = rng.standard_normal((3, 3, 2, 4)), rng.standard_normal((6, 3)), rng.standard_normal((1, 4))
        grads = [
            (rng.standard_normal(conv.shape), rng.standard_normal(dense.shape), rng.standard_normal(bias.shape))
            for _ in range(3)
        ]
        schedule = {"name": "triangular", "total_epochs": 3}
        fallback = {
            "name": "sgd",
            "lr": 0.5,
            "momentum": 0.85,
            "nesterov": True,
            "param_groups": {"biases": {"lr_multiplier": 2}},
        }
        muon = Muon(lr=0.1, targets="filters", lr_scheduler=schedule, fallback=fallback)
        reference = SGD(
            lr=0.5,
            momentum=0.85,
            nesterov=True,
            lr_scheduler={**schedule, "lr": 0.5},
            param_groups=fallback["param_groups"],
        )
        ours = [conv.copy(), dense.copy(), bias.copy()]
        theirs = [dense.copy(), bias.copy()]
        for step, (gc, gd, gb) in enumerate(grads):
            epoch = step * 0.9
            muon.step([{"name": "weights", "params": [("W0", ours[0], gc), ("W1", ours[1], gd)]},
                       {"name": "biases", "params": [("b0", ours[2], gb)]}], epoch)  # fmt: skip
            reference.step([{"name": "weights", "params": [("W1", theirs[0], gd)]},
                            {"name": "biases", "params": [("b0", theirs[1], gb)]}], epoch)  # fmt: skip
        np.testing.assert_array_equal(ours[1], theirs[0])  # targets="filters": the dense kernel is the fallback's
        np.testing.assert_array_equal(ours[2], theirs[1])
        self.assertFalse(np.allclose(ours[0], conv))
        self.assertEqual(sorted(muon.state()), ["W0", "fallback.W1", "fallback.b0"])
        matrices = Muon(lr=0.1)
        self.assertTrue(matrices.orthogonalizes(dense, "weights"))
        self.assertFalse(matrices.orthogonalizes(bias, "biases"))
        self.assertIsInstance(matrices.fallback, AdamW)
        self.assertEqual(matrices.fallback.lr, 0.1)

    def test_state_round_trip_continues_identically(self):
        rng = np.random.default_rng(5)
        W, b = rng.standard_normal((4, 3)), rng.standard_normal((1, 3))
        grads = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for _ in range(4)]

        def steps(opt, W, b, grads):
            for gW, gb in grads:
                opt.step(
                    [{"name": "weights", "params": [("W0", W, gW)]}, {"name": "biases", "params": [("b0", b, gb)]}], 0
                )

        straight = Muon(lr=0.05)
        W1, b1 = W.copy(), b.copy()
        steps(straight, W1, b1, grads)
        first = Muon(lr=0.05)
        W2, b2 = W.copy(), b.copy()
        steps(first, W2, b2, grads[:2])
        second = initialize_optimizer(**first.config())
        self.assertEqual(second.config(), first.config())
        second.load_state(first.state())
        steps(second, W2, b2, grads[2:])
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)

    def test_bad_arguments_name_the_problem(self):
        cases = [
            ({"param_groups": {"biases": {"weight_decay": 0}}}, r"fallback\.param_groups"),
            ({"targets": "convs"}, "targets must be one of matrices, filters"),
            ({"adjust_lr": "rms"}, "adjust_lr must be one of"),
            ({"ns_steps": 0}, "ns_steps"),
            ({"ns_steps": 2.5}, "ns_steps"),
            ({"momentum": 1.0}, "momentum"),
            ({"normalize_weights": "yes"}, "normalize_weights"),
            ({"fallback": {"name": "sgd"}}, "fallback must be a mapping with at least 'name' and 'lr'"),
            ({"fallback": {"name": "muon", "lr": 1}}, "fallback: cannot itself be muon"),
            ({"fallback": {"name": "sgd", "lr": 1, "betas": 2}}, r"fallback: .*unexpected argument 'betas'"),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(ValueError, message):
                initialize_optimizer("muon", lr=0.1, **kwargs)

    def test_a_config_sets_the_fallback_schedule_to_the_run(self):
        config = {
            "name": "t", "epochs": 5, "data": {"name": "iris"},
            "model": {"loss": "cross_entropy", "layers": [{"name": "fully_connected", "n_out": 3, "activation": "softmax"}]},
            "optimizer": {"name": "muon", "lr": 0.02, "fallback": {"name": "sgd", "lr": 0.1, "lr_scheduler": {"name": "cosine"}}},
        }  # fmt: skip
        checked = validate_config(config)
        self.assertEqual(checked["optimizer"]["fallback"]["lr_scheduler"]["total_epochs"], 5)
        config["optimizer"]["fallback"] = {"name": "nadam", "lr": 0.1}
        with self.assertRaisesRegex(ConfigError, "optimizer: fallback: unknown optimizer 'nadam'"):
            validate_config(config)


def iris_mlp(optimizer):
    return NeuralNetwork(
        layers=[FullyConnected(16, "linear"), BatchNorm(activation="relu"), FullyConnected(3, "softmax")],
        optimizer=optimizer,
        seed=0,
    )


class TestTrainingWithMuon(unittest.TestCase):
    def test_iris_trains(self):
        data = iris()
        model = iris_mlp(Muon(lr=0.05, weight_decay=0.0, fallback={"name": "sgd", "lr": 0.1, "momentum": 0.9}))
        fit(model, data, 30, verbose=0)
        self.assertGreater(model.evaluate(data.validate)["accuracy"], 0.9)

    def test_a_cnn_step_with_normalised_filters(self):
        rng = np.random.default_rng(6)
        X = rng.standard_normal((8, 6, 6, 3)).astype(np.float32)
        Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 8)]
        opt = Muon(lr=0.1, targets="filters", normalize_weights=True, adjust_lr="none", weight_decay=0,
                   fallback={"name": "sgd", "lr": 0.1, "momentum": 0.9})  # fmt: skip
        model = NeuralNetwork(
            layers=[Conv2D(5, (3, 3), pad="same", activation="linear", use_bias=False), BatchNorm(activation="relu"),
                    Flatten(), FullyConnected(4, "softmax")],
            loss="cross_entropy", optimizer=opt, seed=0,
        )  # fmt: skip
        losses = [model.train_step(X, Y, epoch=0)[0] for _ in range(15)]
        self.assertLess(np.mean(losses[-3:]), np.mean(losses[:3]))
        # every step starts from filters rescaled to norm sqrt(n_out) and moves them by 0.1 of that
        norm = float(np.linalg.norm(model.layers[0].parameters["W"]))
        self.assertLess(abs(norm - np.sqrt(5)), 0.15 * np.sqrt(5))
        self.assertEqual(model.layers[0].parameters["W"].dtype, np.float32)

    def test_resume_equals_an_uninterrupted_run(self):
        def make_model():
            return iris_mlp(Muon(lr=0.02, fallback={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}))

        with tempfile.TemporaryDirectory() as tmp:
            assert_split_equals_whole(self, train_whole_and_split(tmp, Callback, split_at=2, make_model=make_model))


if __name__ == "__main__":
    unittest.main()
