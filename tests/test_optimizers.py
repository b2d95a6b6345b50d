"""Tests of neural_networks.optimizers (SGD) and neural_networks.schedulers."""

import math
import unittest

import numpy as np

from neural_networks.optimizers import OPTIMIZERS, SGD, initialize_optimizer
from neural_networks.schedulers import SCHEDULERS, ConstantLR, ExponentialLR, initialize_scheduler

from .helpers import randn


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
        opt = SGD(lr=1.0, lr_scheduler="exponential", lr_decay=0.5, stage_length=2, staircase=True)
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
        with self.assertRaisesRegex(ValueError, r"unknown lr_scheduler 'cosine'; valid names: constant, exponential"):
            SGD(lr=0.1, lr_scheduler="cosine")


class TestInitializeOptimizer(unittest.TestCase):
    def test_sgd(self):
        self.assertEqual(set(OPTIMIZERS), {"sgd"})
        opt = initialize_optimizer("SGD", lr=0.01, momentum=0.9, clip_norm=5.0, lr_scheduler="exponential",
                                   lr_decay=0.9, stage_length=10, staircase=False)
        self.assertIsInstance(opt, SGD)
        self.assertEqual((opt.lr, opt.momentum, opt.clip_norm), (0.01, 0.9, 5.0))
        self.assertIsInstance(opt.lr_scheduler, ExponentialLR)
        self.assertEqual((opt.lr_scheduler.decay, opt.lr_scheduler.stage_length, opt.lr_scheduler.staircase),
                         (0.9, 10, False))

    def test_config_round_trip(self):
        opt = initialize_optimizer("sgd", lr=0.02, momentum=0.5, lr_scheduler="exponential", lr_decay=0.7,
                                   stage_length=3, staircase=True, clip_norm=2.0)
        clone = initialize_optimizer(**opt.config())
        self.assertEqual(clone.config(), opt.config())
        for epoch in (0, 3, 7):
            self.assertEqual(clone.lr_scheduler(epoch), opt.lr_scheduler(epoch))

    def test_unknown_name_lists_valid_names(self):
        with self.assertRaisesRegex(ValueError, r"unknown optimizer 'adamw'; valid names: sgd"):
            initialize_optimizer("adamw", lr=0.1)

    def test_unknown_argument(self):
        with self.assertRaisesRegex(ValueError, r"unknown optimizer argument\(s\) beta1.*valid arguments: lr"):
            initialize_optimizer("sgd", lr=0.1, beta1=0.9)


class TestSchedulers(unittest.TestCase):
    def test_constant(self):
        sched = initialize_scheduler("constant", lr=0.3)
        self.assertIsInstance(sched, ConstantLR)
        for step in (0, 1, 10, 1e6):
            self.assertEqual(sched(step), 0.3)

    def test_exponential_staircase(self):
        sched = initialize_scheduler("exponential", lr=0.1, decay=0.5, stage_length=3, staircase=True)
        self.assertIsInstance(sched, ExponentialLR)
        for step, expected in ((0, 0.1), (1, 0.1), (2, 0.1), (3, 0.05), (5, 0.05), (6, 0.025), (10, 0.0125)):
            with self.subTest(step=step):
                self.assertAlmostEqual(sched(step), expected, places=15)

    def test_exponential_continuous(self):
        sched = initialize_scheduler("exponential", lr=0.1, decay=0.5, stage_length=3, staircase=False)
        for step in (0, 1, 2, 3, 4.5, 10):
            with self.subTest(step=step):
                self.assertAlmostEqual(sched(step), 0.1 * 0.5 ** (step / 3), places=15)
        # strictly decreasing between stages, unlike the staircase
        self.assertGreater(sched(1), sched(2))
        self.assertAlmostEqual(sched(3), 0.05, places=15)

    def test_defaults(self):
        sched = ExponentialLR(lr=1.0)
        self.assertAlmostEqual(sched(999), 1.0)
        self.assertAlmostEqual(sched(1000), 0.99)
        self.assertAlmostEqual(sched(2500), 0.99**2)

    def test_config_round_trip(self):
        for sched in (ConstantLR(0.2), ExponentialLR(0.2, decay=0.8, stage_length=5, staircase=False)):
            clone = initialize_scheduler(**sched.config())
            self.assertEqual(clone.config(), sched.config())
            self.assertEqual(math.isclose(clone(7), sched(7)), True)

    def test_bad_arguments(self):
        self.assertEqual(set(SCHEDULERS), {"constant", "exponential"})
        with self.assertRaisesRegex(ValueError, r"unknown lr_scheduler 'step'; valid names: constant, exponential"):
            initialize_scheduler("step", lr=0.1)
        for decay in (0, -0.5, 1.5):
            with self.subTest(decay=decay), self.assertRaisesRegex(ValueError, r"lr_decay must be in \(0, 1\]"):
                ExponentialLR(0.1, decay=decay)
        with self.assertRaisesRegex(ValueError, r"stage_length must be a positive integer"):
            ExponentialLR(0.1, stage_length=0)
        with self.assertRaisesRegex(ValueError, r"learning rate must be positive"):
            ConstantLR(-1.0)


if __name__ == "__main__":
    unittest.main()
