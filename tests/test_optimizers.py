"""Tests of neural_networks.optimizers: SGD, Adam, AdamW, parameter groups, the schedule argument,
torch.optim parity."""

import unittest

import numpy as np

from neural_networks import muon, optimizer_base
from neural_networks.optimizers import (
    OPTIMIZERS,
    SGD,
    Adam,
    AdamW,
    Muon,
    Optimizer,
    initialize_optimizer,
    optimizer_arguments,
    orthogonalize,
)
from neural_networks.schedulers import ConstantLR, ExponentialLR, StepLR

from .helpers import randn
from .torch_oracles import optimizer_steps, requires_torch, torch


class TestSGD(unittest.TestCase):
    def test_plain_step(self):
        opt = SGD(lr=0.1)
        param = np.array([1.0, -2.0, 3.0])
        grad = np.array([0.5, 0.5, -1.0])
        delta = opt.update("W0", param, grad, epoch=0)
        np.testing.assert_allclose(delta, 0.1 * grad, rtol=1e-15)
        # with momentum 0 the step does not depend on history
        np.testing.assert_allclose(opt.update("W0", param, grad, epoch=1), 0.1 * grad, rtol=1e-15)

    def test_momentum_matches_recurrence(self):
        rng = np.random.default_rng(0)
        lr, momentum, steps = 0.05, 0.9, 6
        opt = SGD(lr=lr, momentum=momentum)
        params = {"W0": randn(rng, 3, 4), "b0": randn(rng, 1, 4), "W1": randn(rng, 4, 2)}
        expected = {k: v.copy() for k, v in params.items()}
        velocity = {k: np.zeros_like(v) for k, v in params.items()}
        for step in range(steps):
            for key in params:
                grad = randn(rng, *params[key].shape)
                grad_before = grad.copy()
                delta = opt.update(key, params[key], grad, epoch=step)
                params[key] -= delta
                # hand-written heavy-ball recurrence: v <- mu v + lr g; p <- p - v
                velocity[key] = momentum * velocity[key] + lr * grad_before
                expected[key] = expected[key] - velocity[key]
                np.testing.assert_array_equal(grad, grad_before)  # the gradient is not modified
        for key in params:
            np.testing.assert_allclose(params[key], expected[key], rtol=1e-12, atol=1e-14)
        self.assertEqual(set(opt.state()), set(params))

    def test_momentum_on_constant_gradient(self):
        # v_t = lr g (1 - mu^t) / (1 - mu)
        opt = SGD(lr=0.1, momentum=0.5)
        g = np.array([2.0])
        for t in range(1, 6):
            delta = opt.update("w", np.zeros(1), g, epoch=0)
            np.testing.assert_allclose(delta, 0.1 * 2.0 * (1 - 0.5**t) / 0.5, rtol=1e-12)

    def test_clip_norm(self):
        opt = SGD(lr=1.0, clip_norm=1.0)
        long = np.array([[3.0, 4.0], [0.0, 12.0]])  # norm 13
        delta = opt.update("W", np.zeros((2, 2)), long, epoch=0)
        self.assertAlmostEqual(float(np.linalg.norm(delta)), 1.0, places=12)
        np.testing.assert_allclose(delta, long / 13.0, rtol=1e-12)
        np.testing.assert_array_equal(long, [[3.0, 4.0], [0.0, 12.0]])  # not clipped in place
        short = np.array([0.3, 0.4])  # norm 0.5: untouched
        np.testing.assert_allclose(SGD(lr=1.0, clip_norm=1.0).update("b", np.zeros(2), short, epoch=0), short)
        # the norm is taken per parameter array
        opt = SGD(lr=0.5, clip_norm=2.0)
        for key, grad in (("a", np.full(4, 10.0)), ("b", np.full(9, 0.1))):
            delta = opt.update(key, np.zeros_like(grad), grad, epoch=0)
            expected = 0.5 * grad * min(1.0, 2.0 / np.linalg.norm(grad))
            np.testing.assert_allclose(delta, expected, rtol=1e-12)

    def test_clip_with_momentum(self):
        opt = SGD(lr=0.1, momentum=0.9, clip_norm=1.0)
        g = np.array([0.0, 10.0])
        d1 = opt.update("w", np.zeros(2), g, epoch=0).copy()
        d2 = opt.update("w", np.zeros(2), g, epoch=0).copy()
        np.testing.assert_allclose(d1, [0.0, 0.1])
        np.testing.assert_allclose(d2, [0.0, 0.9 * 0.1 + 0.1])

    def test_schedule_is_used(self):
        opt = SGD(lr=1.0, lr_scheduler={"name": "exponential", "decay": 0.5, "stage_length": 2, "staircase": True})
        g = np.ones(1)
        for epoch, lr in ((0, 1.0), (1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25), (7, 0.125)):
            with self.subTest(epoch=epoch):
                np.testing.assert_allclose(opt.update("w", np.zeros(1), g, epoch=epoch), lr * g)

    def test_float32_stays_float32(self):
        opt = SGD(lr=0.1, momentum=0.9)
        param = np.ones((2, 3), dtype=np.float32)
        delta = opt.update("W", param, np.ones((2, 3), dtype=np.float32), epoch=0)
        self.assertEqual(delta.dtype, np.float32)
        self.assertEqual(delta.shape, param.shape)

    def test_state_round_trip(self):
        rng = np.random.default_rng(1)
        a, b = SGD(lr=0.1, momentum=0.8), SGD(lr=0.1, momentum=0.8)
        grads = [randn(rng, 3) for _ in range(4)]
        for g in grads[:2]:
            a.update("w", np.zeros(3), g, epoch=0)
        b.load_state(a.state())
        for g in grads[2:]:
            np.testing.assert_allclose(a.update("w", np.zeros(3), g, epoch=0), b.update("w", np.zeros(3), g, epoch=0))

    def test_bad_arguments(self):
        for momentum in (-0.1, 1.0, 1.5):
            with self.subTest(momentum=momentum), self.assertRaisesRegex(ValueError, r"momentum must be in \[0, 1\)"):
                SGD(lr=0.1, momentum=momentum)
        for clip in (0, -1.0):
            with self.subTest(clip_norm=clip), self.assertRaisesRegex(ValueError, r"clip_norm must be positive"):
                SGD(lr=0.1, clip_norm=clip)
        for lr in (0, -0.1):
            with self.subTest(lr=lr), self.assertRaisesRegex(ValueError, r"learning rate must be positive"):
                SGD(lr=lr)
        with self.assertRaisesRegex(
            ValueError, r"unknown lr_scheduler 'plateau'; valid names: constant, exponential, step, cosine, one_cycle"
        ):
            SGD(lr=0.1, lr_scheduler="plateau")


class TestInitializeOptimizer(unittest.TestCase):
    def test_sgd(self):
        self.assertEqual(set(OPTIMIZERS), {"sgd", "adam", "adamw", "muon"})
        opt = initialize_optimizer(
            "SGD",
            lr=0.01,
            momentum=0.9,
            clip_norm=5.0,
            lr_scheduler="exponential",
            lr_decay=0.9,
            stage_length=10,
            staircase=False,
        )
        self.assertIsInstance(opt, SGD)
        self.assertEqual((opt.lr, opt.momentum, opt.clip_norm), (0.01, 0.9, 5.0))
        self.assertIsInstance(opt.lr_scheduler, ExponentialLR)
        self.assertEqual(
            (opt.lr_scheduler.decay, opt.lr_scheduler.stage_length, opt.lr_scheduler.staircase), (0.9, 10, False)
        )

    def test_config_round_trip(self):
        opt = initialize_optimizer(
            "sgd",
            lr=0.02,
            momentum=0.5,
            lr_scheduler="exponential",
            lr_decay=0.7,
            stage_length=3,
            staircase=True,
            clip_norm=2.0,
        )
        clone = initialize_optimizer(**opt.config())
        self.assertEqual(clone.config(), opt.config())
        for epoch in (0, 3, 7):
            self.assertEqual(clone.lr_scheduler(epoch), opt.lr_scheduler(epoch))

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(ValueError, r"unknown optimizer 'adagrad'; valid names: sgd, adam, adamw"):
            initialize_optimizer("adagrad", lr=0.1)

    def test_unknown_argument(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^bad arguments for optimizer 'sgd' \(unexpected argument 'beta1'\); "
            r"valid arguments: lr, momentum, clip_norm",
        ):
            initialize_optimizer("sgd", lr=0.1, beta1=0.9)

    def test_adamw_arguments_are_its_signature(self):
        self.assertEqual(OPTIMIZERS.arguments("adamw"), OPTIMIZERS.arguments("adam"))
        with self.assertRaisesRegex(
            ValueError, r"bad arguments for optimizer 'adamw' \(unexpected argument 'nesterov'\)"
        ):
            initialize_optimizer("adamw", lr=0.1, nesterov=True)
        opt = initialize_optimizer("AdamW", lr=0.1, clip_norm=2.0, lr_scheduler="step")
        self.assertEqual((opt.weight_decay, opt.clip_norm, opt.lr_scheduler.name), (0.01, 2.0, "step"))

    def test_neutral_spec_arguments_are_dropped_only_at_their_neutral_value(self):
        # the spec's optimizer_args carry momentum=0 for every optimizer: Adam, which does not take
        # momentum, ignores it; SGD takes it as it is; any other value is an unexpected argument
        self.assertEqual(SGD.neutral_arguments, {"momentum": 0.0})
        for name in ("adam", "adamw"):
            with self.subTest(name=name):
                self.assertEqual(
                    initialize_optimizer(name, lr=0.1, momentum=0).config(), initialize_optimizer(name, lr=0.1).config()
                )
                with self.assertRaisesRegex(
                    ValueError,
                    rf"bad arguments for optimizer '{name}' "
                    r"\(unexpected argument 'momentum'\)",
                ):
                    initialize_optimizer(name, lr=0.1, momentum=0.9)
        self.assertEqual(initialize_optimizer("sgd", lr=0.1, momentum=0.0).momentum, 0.0)

    def test_every_name_is_exported_and_registered_once(self):
        # Muon lives in its own module; neural_networks.optimizers (the course's path) exports it
        self.assertIs(Muon, muon.Muon)
        self.assertIs(orthogonalize, muon.orthogonalize)
        self.assertIs(Optimizer, optimizer_base.Optimizer)
        self.assertEqual(OPTIMIZERS.names(), ["sgd", "adam", "adamw", "muon"])
        self.assertIs(OPTIMIZERS.get("muon"), Muon)


class TestScheduleArgument(unittest.TestCase):
    """Each optimizer takes its schedule as one lr_scheduler argument; initialize_optimizer folds
    the spec's flat keys (lr_decay, stage_length, staircase) into it."""

    SPEC = {"lr_scheduler": "exponential", "lr_decay": 0.5, "stage_length": 2, "staircase": False}

    def test_a_name_a_mapping_or_a_schedule(self):
        for schedule in ("step", {"name": "step"}, StepLR(0.1)):
            with self.subTest(schedule=schedule):
                opt = SGD(lr=0.1, lr_scheduler=schedule)
                self.assertIsInstance(opt.lr_scheduler, StepLR)
                self.assertEqual(opt.lr_scheduler.config(), StepLR(0.1).config())
        given = ConstantLR(0.3)
        self.assertIs(SGD(lr=0.1, lr_scheduler=given).lr_scheduler, given)  # an object is used as it is
        # a mapping's lr overrides the optimizer's (a fallback's schedule at its own rate)
        self.assertEqual(SGD(lr=0.1, lr_scheduler={"name": "constant", "lr": 0.2}).lr_scheduler(0), 0.2)

    def test_the_classes_take_the_courses_flat_schedule_keys(self):
        # The course's optimizers take lr_decay, stage_length, staircase as arguments of their
        # own: the direct form folds them into the one schedule, as initialize_optimizer does.
        for name in OPTIMIZERS:
            with self.subTest(name=name):
                arguments = OPTIMIZERS.arguments(name)
                self.assertIn("lr_scheduler", arguments)
                self.assertFalse({"lr_decay", "stage_length", "staircase"} & set(arguments))
                direct = OPTIMIZERS.get(name)(lr=0.1, lr_scheduler="exponential", lr_decay=0.5, stage_length=2)
                self.assertEqual(direct.lr_scheduler(5), 0.1 * 0.5**2)
                with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'decay_rate'"):
                    OPTIMIZERS.get(name)(lr=0.1, decay_rate=0.5)
                # initialize_optimizer takes them, listed after lr_scheduler
                accepted = optimizer_arguments(name)
                at = accepted.index("lr_scheduler")
                self.assertEqual(accepted[at : at + 4], ["lr_scheduler", "lr_decay", "stage_length", "staircase"])

    def test_flat_keys_fold_into_the_schedule(self):
        for name in OPTIMIZERS:
            with self.subTest(name=name):
                flat = initialize_optimizer(name, lr=0.1, **self.SPEC)
                folded = OPTIMIZERS.get(name)(
                    lr=0.1, lr_scheduler={"name": "exponential", "decay": 0.5, "stage_length": 2, "staircase": False}
                )
                self.assertEqual(flat.config(), folded.config())
                self.assertEqual(
                    (flat.lr_scheduler.decay, flat.lr_scheduler.stage_length, flat.lr_scheduler.staircase),
                    (0.5, 2, False),
                )
        # a schedule that does not take them ignores them; the defaults are ExponentialLR's
        self.assertEqual(
            initialize_optimizer("sgd", lr=0.1, lr_scheduler="cosine", lr_decay=0.5).config(),
            initialize_optimizer("sgd", lr=0.1, lr_scheduler="cosine").config(),
        )
        self.assertEqual(
            initialize_optimizer("sgd", lr=0.1, lr_scheduler="exponential").lr_scheduler.config(),
            ExponentialLR(0.1).config(),
        )
        # a mapping or an object says everything: the flat keys are ignored, as they always were
        for schedule in ({"name": "exponential", "decay": 0.9}, ExponentialLR(0.1, decay=0.9)):
            with self.subTest(schedule=schedule):
                opt = initialize_optimizer("sgd", lr=0.1, lr_scheduler=schedule, lr_decay=0.5, stage_length=3)
                self.assertEqual((opt.lr_scheduler.decay, opt.lr_scheduler.stage_length), (0.9, 1000))

    def test_flat_key_errors_name_the_spec_key(self):
        with self.assertRaisesRegex(ValueError, r"^lr_decay must be in \(0, 1\]; got 2"):
            initialize_optimizer("sgd", lr=0.1, lr_scheduler="exponential", lr_decay=2)
        with self.assertRaisesRegex(ValueError, r"^unknown lr_scheduler 'plateau'"):
            initialize_optimizer("adam", lr=0.1, lr_scheduler="plateau", stage_length=2)

    def test_muons_fallback_folds_too(self):
        opt = initialize_optimizer("muon", lr=0.1, fallback={"name": "sgd", "lr": 0.2, **self.SPEC})
        self.assertEqual(
            opt.fallback.lr_scheduler.config(),
            {"name": "exponential", "lr": 0.2, "decay": 0.5, "stage_length": 2, "staircase": False},
        )


def _run_ours(optimizer, params, grads_per_step, names, epoch_of_step=lambda s: 0):
    """Steps through Optimizer.step with "W*" in the weights group and "b*" in the biases group."""
    params = {k: v.copy() for k, v in params.items()}
    for step, grads in enumerate(grads_per_step):
        groups = [
            {"name": group, "params": [(n, params[n], grads[n]) for n in names if n.startswith(prefix)]}
            for group, prefix in (("weights", "W"), ("biases", "b"))
        ]
        optimizer.step(groups, epoch_of_step(step))
    return params


@requires_torch
class TestOptimizerParityWithTorch(unittest.TestCase):
    """Several steps with fixed gradients against torch.optim in float64."""

    def setUp(self):
        rng = np.random.default_rng(0)
        self.params = {"W0": rng.standard_normal((4, 3)), "b0": rng.standard_normal((1, 3))}
        self.grads = [{k: rng.standard_normal(v.shape) for k, v in self.params.items()} for _ in range(6)]

    def _torch(self, make, decay_weights_only=True, weight_decay=0.0):
        groups = [
            {"params": ["W0"], "weight_decay": weight_decay},
            {"params": ["b0"], "weight_decay": 0.0 if decay_weights_only else weight_decay},
        ]
        return optimizer_steps(make, self.params, self.grads, groups)

    def assert_same(self, ours, theirs):
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)

    def test_sgd_nesterov_weight_decay(self):
        ours = _run_ours(
            SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), self.params, self.grads, ["W0", "b0"]
        )
        theirs = self._torch(lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True), weight_decay=0.01)
        self.assert_same(ours, theirs)

    def test_sgd_momentum_matches_torch(self):
        ours = _run_ours(SGD(lr=0.05, momentum=0.8), self.params, self.grads, ["W0", "b0"])
        theirs = self._torch(lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.8))
        self.assert_same(ours, theirs)

    def test_adam(self):
        ours = _run_ours(
            Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1), self.params, self.grads, ["W0", "b0"]
        )
        theirs = self._torch(lambda g: torch.optim.Adam(g, lr=0.01, betas=(0.8, 0.99), eps=1e-6), weight_decay=0.1)
        self.assert_same(ours, theirs)

    def test_adamw(self):
        ours = _run_ours(AdamW(lr=0.01, weight_decay=0.05), self.params, self.grads, ["W0", "b0"])
        theirs = self._torch(lambda g: torch.optim.AdamW(g, lr=0.01), weight_decay=0.05)
        self.assert_same(ours, theirs)


class TestAdam(unittest.TestCase):
    def test_first_step_is_lr_times_sign(self):
        # with bias correction the first Adam step is lr * g / (|g| + eps') ~ lr * sign(g)
        g = np.array([[0.5, -2.0, 1e-3]])
        delta = Adam(lr=0.01).update("W0", np.zeros_like(g), g, 0)
        np.testing.assert_allclose(delta, 0.01 * np.sign(g), rtol=1e-4)

    def test_state_round_trip_continues_identically(self):
        rng = np.random.default_rng(1)
        p = rng.standard_normal((3, 2))
        grads = [rng.standard_normal((3, 2)) for _ in range(4)]
        a = Adam(lr=0.01)
        pa = p.copy()
        for g in grads[:2]:
            pa -= a.update("W0", pa, g, 0)
        b = Adam(lr=0.01)
        b.load_state(a.state())
        pb = pa.copy()
        for g in grads[2:]:
            pa -= a.update("W0", pa, g, 0)
            pb -= b.update("W0", pb, g, 0)
        np.testing.assert_array_equal(pa, pb)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"beta1 must be in \[0, 1\)"):
            Adam(beta1=1.0)
        with self.assertRaisesRegex(ValueError, "weight_decay must be a non-negative number"):
            AdamW(weight_decay=-1)
        with self.assertRaisesRegex(ValueError, "nesterov momentum needs momentum > 0"):
            SGD(lr=0.1, nesterov=True)
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for optimizer 'adam' \(unexpected argument 'betas'\); "
            r"valid arguments: lr, beta1, beta2",
        ):
            initialize_optimizer("adam", lr=0.1, betas=(0.9, 0.99))

    def test_spec_optimizer_args_work_for_adam(self):
        opt = initialize_optimizer(
            name="Adam",
            lr=1e-3,
            lr_scheduler="exponential",
            lr_decay=0.5,
            stage_length=1,
            staircase=True,
            clip_norm=None,
            momentum=0.0,
        )
        self.assertIsInstance(opt, Adam)
        self.assertAlmostEqual(opt.lr_scheduler(2), 1e-3 * 0.25)


class TestParameterGroups(unittest.TestCase):
    """Per-group options (lr multiplier, weight decay, momentum) and state apart from scratch."""

    def setUp(self):
        rng = np.random.default_rng(1)
        self.params = {"W0": rng.standard_normal((4, 3)), "b0": rng.standard_normal((1, 3))}
        self.grads = [{k: rng.standard_normal(v.shape) for k, v in self.params.items()} for _ in range(4)]

    def test_a_group_with_lr_multiplier_zero_does_not_move(self):
        for opt in (
            SGD(lr=0.1, momentum=0.9, param_groups={"biases": {"lr_multiplier": 0}}),
            Adam(lr=0.01, param_groups={"biases": {"lr_multiplier": 0.0}}),
        ):
            with self.subTest(opt.name):
                out = _run_ours(opt, self.params, self.grads, ["W0", "b0"])
                np.testing.assert_array_equal(out["b0"], self.params["b0"])
                self.assertFalse(np.allclose(out["W0"], self.params["W0"]))

    def test_options_match_a_hand_written_update(self):
        lr, mult, decay, momentum = 0.05, 4.0, 0.1, 0.5
        opt = SGD(
            lr=lr,
            momentum=0.9,
            weight_decay=0.01,
            param_groups={"biases": {"lr_multiplier": mult, "weight_decay": decay, "momentum": momentum}},
        )
        out = _run_ours(opt, self.params, self.grads, ["W0", "b0"])
        b, v = self.params["b0"].copy(), np.zeros_like(self.params["b0"])
        W, vW = self.params["W0"].copy(), np.zeros_like(self.params["W0"])
        for grads in self.grads:
            v = momentum * v + lr * mult * (grads["b0"] + decay * b)
            b = b - v
            vW = 0.9 * vW + lr * (grads["W0"] + 0.01 * W)
            W = W - vW
        np.testing.assert_allclose(out["b0"], b, rtol=1e-12)
        np.testing.assert_allclose(out["W0"], W, rtol=1e-12)
        self.assertEqual(
            opt.group_options("normalization"), {"lr_multiplier": 1.0, "weight_decay": 0.0, "momentum": 0.9}
        )
        self.assertEqual(opt.group_options("weights")["weight_decay"], 0.01)

    def test_state_holds_no_scratch_and_config_round_trips(self):
        for opt in (SGD(lr=0.1, momentum=0.9, nesterov=True), Adam(lr=0.01), AdamW(lr=0.01)):
            with self.subTest(opt.name):
                _run_ours(opt, self.params, self.grads[:2], ["W0", "b0"])
                expected = {"W0", "b0"} if opt.name == "sgd" else {f"{k}.{n}" for k in "mvt" for n in ("W0", "b0")}
                self.assertEqual(set(opt.state()), expected)
        opt = SGD(lr=0.1, momentum=0.9, param_groups={"normalization": {"lr_multiplier": 64, "weight_decay": 0}})
        again = initialize_optimizer(**opt.config())
        self.assertEqual(again.param_groups, {"normalization": {"lr_multiplier": 64.0, "weight_decay": 0.0}})
        again.load_state({"W0": np.ones(2), "step.W0": np.zeros(2)})  # an old checkpoint's scratch is dropped
        self.assertEqual(set(again.state()), {"W0"})

    def test_bad_groups_name_the_problem(self):
        for groups, pattern in (
            ({"bias": {}}, "unknown parameter group 'bias'; valid groups: weights, biases"),
            ({"biases": {"lr": 1}}, "unknown option param_groups.biases.lr"),
            ({"biases": {"lr_multiplier": -1}}, "lr_multiplier must be a non-negative"),
            ({"biases": {"momentum": 1.0}}, r"momentum must be in \[0, 1\)"),
            ([1], "param_groups must map"),
        ):
            with self.subTest(groups=groups), self.assertRaisesRegex(ValueError, pattern):
                SGD(lr=0.1, param_groups=groups)


@requires_torch
class TestParameterGroupParity(unittest.TestCase):
    def test_sgd_groups_against_torch(self):
        rng = np.random.default_rng(2)
        params = {"W0": rng.standard_normal((4, 3)), "b0": rng.standard_normal((1, 3))}
        grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(5)]
        ours = _run_ours(
            SGD(
                lr=0.1,
                momentum=0.9,
                nesterov=True,
                weight_decay=0.01,
                param_groups={"biases": {"lr_multiplier": 3.0, "weight_decay": 0.02, "momentum": 0.5}},
            ),
            params,
            grads,
            ["W0", "b0"],
        )
        theirs = optimizer_steps(
            lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
            params,
            grads,
            [{"params": ["W0"]}, {"params": ["b0"], "lr": 0.3, "weight_decay": 0.02, "momentum": 0.5}],
        )
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12, err_msg=k)


if __name__ == "__main__":
    unittest.main()
