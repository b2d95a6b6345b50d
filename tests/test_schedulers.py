"""Tests of neural_networks.schedulers: every learning-rate schedule, warm-up, and parity with torch's."""

import math
import unittest

import numpy as np

from neural_networks.optimizers import SGD, initialize_optimizer
from neural_networks.schedulers import (
    SCHEDULERS,
    ConstantLR,
    CosineLR,
    ExponentialLR,
    OneCycleLR,
    StepLR,
    TriangularLR,
    initialize_scheduler,
    resolve_scheduler,
)

from .torch_oracles import requires_torch, scheduled_lrs, torch


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
        self.assertEqual(set(SCHEDULERS), {"constant", "exponential", "step", "cosine", "one_cycle", "triangular"})
        with self.assertRaisesRegex(
            ValueError, r"unknown lr_scheduler 'plateau'; valid names: constant, exponential, step"
        ):
            initialize_scheduler("plateau", lr=0.1)
        for decay in (0, -0.5, 1.5):
            with self.subTest(decay=decay), self.assertRaisesRegex(ValueError, r"lr_decay must be in \(0, 1\]"):
                ExponentialLR(0.1, decay=decay)
        with self.assertRaisesRegex(ValueError, r"stage_length must be a positive integer"):
            ExponentialLR(0.1, stage_length=0)
        with self.assertRaisesRegex(ValueError, r"learning rate must be positive"):
            ConstantLR(-1.0)


class TestNewSchedules(unittest.TestCase):
    def test_step(self):
        s = StepLR(1.0, step_size=2, gamma=0.5)
        self.assertEqual([s(t) for t in (0, 1.9, 2, 4.5)], [1.0, 1.0, 0.5, 0.25])

    def test_warmup_is_linear_then_the_schedule(self):
        s = CosineLR(1.0, total_epochs=10, warmup_epochs=2, warmup_start=0.0)
        self.assertEqual(s(0), 0.0)
        self.assertAlmostEqual(s(1), 0.5 * CosineLR(1.0, total_epochs=10).rate(1))
        self.assertAlmostEqual(s(5), CosineLR(1.0, total_epochs=10)(5))

    def test_one_cycle_shape(self):
        s = OneCycleLR(1.0, total_epochs=10, pct_start=0.3, div_factor=10, final_div_factor=100)
        self.assertAlmostEqual(s(0), 0.1)
        self.assertAlmostEqual(s(3), 1.0)
        self.assertAlmostEqual(s(10), 0.001)
        self.assertTrue(all(s(a) <= s(b) for a, b in zip(np.linspace(0, 3, 20), np.linspace(0.1, 3, 20))))

    def test_dict_config_round_trip(self):
        opt = SGD(lr=0.2, momentum=0.9, lr_scheduler={"name": "one_cycle", "total_epochs": 5})
        again = initialize_optimizer(**opt.config())
        self.assertEqual([again.lr_scheduler(t) for t in (0, 1.5, 4)], [opt.lr_scheduler(t) for t in (0, 1.5, 4)])

    def test_bad_schedule_arguments(self):
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for lr_scheduler 'cosine' \(unexpected argument 'T_max'\); "
            r"valid arguments: lr, total_epochs, min_lr, warmup_epochs, warmup_start$",
        ):
            initialize_scheduler("cosine", lr=0.1, T_max=3)
        with self.assertRaisesRegex(
            ValueError, r"bad arguments for lr_scheduler 'step' \(unexpected argument 'warmup'\)"
        ):
            initialize_scheduler("step", lr=0.1, warmup=3)
        with self.assertRaisesRegex(ValueError, r"pct_start must be in \(0, 1\)"):
            OneCycleLR(0.1, pct_start=1.5)

    def test_spec_decay_arguments_go_to_the_schedules_that_take_them(self):
        spec = dict(decay=0.5, stage_length=2, staircase=False)
        exponential = initialize_scheduler("exponential", lr=1.0, **spec)
        self.assertEqual((exponential.decay, exponential.stage_length, exponential.staircase), (0.5, 2, False))
        for name in ("constant", "step", "cosine", "one_cycle", "triangular"):
            with self.subTest(name=name):
                self.assertEqual(
                    initialize_scheduler(name, lr=1.0, **spec).config(), initialize_scheduler(name, lr=1.0).config()
                )
        self.assertEqual(SCHEDULERS.arguments("constant"), ["lr", "warmup_epochs", "warmup_start"])

    def test_resolve_scheduler_takes_a_name_a_mapping_or_a_schedule(self):
        self.assertEqual(resolve_scheduler("exponential", 0.1).config(), ExponentialLR(0.1).config())
        self.assertEqual(
            resolve_scheduler({"name": "step", "step_size": 2}, 0.1).config(), StepLR(0.1, step_size=2).config()
        )
        self.assertEqual(resolve_scheduler({"name": "constant", "lr": 0.5}, 0.1).lr, 0.5)  # its own lr wins
        given = CosineLR(0.2)
        self.assertIs(resolve_scheduler(given, 0.1), given)
        with self.assertRaisesRegex(ValueError, r"^unknown lr_scheduler None"):
            resolve_scheduler(None, 0.1)
        with self.assertRaisesRegex(ValueError, r"^lr_scheduler needs a name \(one of constant, "):
            resolve_scheduler({"decay": 0.5}, 0.1)


def _triangle(t, total, pct_start, start, end):
    """Closed form of the triangular schedule's factor: the piecewise-linear interpolation through
    ``(0, start)``, ``(pct_start * total, 1)`` and ``(total, end)``, constant outside ``[0, total]``."""
    return float(np.interp(t, [0.0, pct_start * total, total], [start, 1.0, end]))


class TestTriangular(unittest.TestCase):
    def test_values_against_the_closed_form(self):
        s = initialize_scheduler(
            "triangular", lr=0.4, total_epochs=10, pct_start=0.25, start_factor=0.1, end_factor=0.0
        )
        self.assertIsInstance(s, TriangularLR)
        expected = {0: 0.04, 1.25: 0.22, 2.5: 0.4, 6.25: 0.2, 10: 0.0, 12: 0.0, -1: 0.04}
        for t, lr in expected.items():
            with self.subTest(t=t):
                self.assertAlmostEqual(s(t), lr, places=14)
        for t in np.linspace(0, 10, 101):
            with self.subTest(t=float(t)):
                self.assertAlmostEqual(s(t), 0.4 * _triangle(t, 10, 0.25, 0.1, 0.0), places=14)

    def test_defaults_are_airbench94s(self):
        s = TriangularLR(1.0, total_epochs=10)
        self.assertEqual((s.pct_start, s.start_factor, s.end_factor), (0.23, 0.2, 0.07))
        self.assertAlmostEqual(s(0), 0.2)
        self.assertAlmostEqual(s(2.3), 1.0)
        self.assertAlmostEqual(s(10), 0.07)
        for t in np.linspace(0, 10, 41):
            self.assertAlmostEqual(s(t), _triangle(t, 10, 0.23, 0.2, 0.07), places=14)

    def test_moves_every_step_within_an_epoch(self):
        # the fit loop passes epoch + b / n_batches: every batch of an epoch gets its own rate
        s = TriangularLR(1.0, total_epochs=2, pct_start=0.5)
        rates = [s(epoch + b / 5) for epoch in range(2) for b in range(5)]
        self.assertEqual(len(set(rates)), len(rates))
        self.assertTrue(all(a < b for a, b in zip(rates[:5], rates[1:6])))  # up to the peak at t = 1
        self.assertTrue(all(a > b for a, b in zip(rates[5:], rates[6:])))  # down after it

    def test_no_warm_up_is_a_linear_decay(self):
        s = TriangularLR(0.5, total_epochs=4, pct_start=0.0, end_factor=0.0)
        self.assertEqual([s(t) for t in (0, 1, 2, 4, 5)], [0.5, 0.375, 0.25, 0.0, 0.0])

    def test_alias_and_config_round_trip(self):
        s = initialize_scheduler("warmup_linear", lr=0.3, total_epochs=8, pct_start=0.1, start_factor=0.0)
        self.assertIsInstance(s, TriangularLR)
        self.assertEqual(SCHEDULERS.aliases("triangular"), ["warmup_linear"])
        config = s.config()
        self.assertEqual(
            config,
            {
                "name": "triangular",
                "lr": 0.3,
                "total_epochs": 8.0,
                "pct_start": 0.1,
                "start_factor": 0.0,
                "end_factor": 0.07,
            },
        )
        clone = initialize_scheduler(**config)
        self.assertEqual(clone.config(), config)
        self.assertEqual([clone(t) for t in np.linspace(0, 9, 37)], [s(t) for t in np.linspace(0, 9, 37)])
        # through an optimizer's config, as a run's checkpoint stores it
        opt = SGD(lr=0.3, momentum=0.9, lr_scheduler={"name": "triangular", "total_epochs": 8, "end_factor": 0.0})
        again = initialize_optimizer(**opt.config())
        self.assertEqual([again.lr_scheduler(t) for t in (0, 1.5, 7.9)], [opt.lr_scheduler(t) for t in (0, 1.5, 7.9)])
        self.assertEqual(opt.lr_scheduler(8), 0.0)

    def test_bad_arguments_name_the_argument(self):
        cases = {
            "pct_start": (1.0, -0.1, "0.5", True, float("nan")),
            "start_factor": (-0.1, 1.5, None),
            "end_factor": (-1.0, 2.0, float("inf")),
            "total_epochs": (0, -3),
        }
        for argument, values in cases.items():
            for value in values:
                with (
                    self.subTest(argument=argument, value=value),
                    self.assertRaisesRegex(ValueError, f"^{argument} must"),
                ):
                    TriangularLR(0.1, **{argument: value})
        with self.assertRaisesRegex(ValueError, r"pct_start must be in \[0, 1\); got 1.0"):
            TriangularLR(0.1, pct_start=1)
        with self.assertRaisesRegex(ValueError, r"end_factor must be in \[0, 1\]; got 2.0"):
            TriangularLR(0.1, end_factor=2)
        with self.assertRaisesRegex(
            ValueError,
            r"bad arguments for lr_scheduler 'triangular' \(unexpected argument 'peak'\); "
            r"valid arguments: lr, total_epochs, pct_start, start_factor, end_factor, warmup_epochs, warmup_start$",
        ):
            initialize_scheduler("triangular", lr=0.1, peak=0.23)


@requires_torch
class TestScheduleParityWithTorch(unittest.TestCase):
    def test_one_cycle_matches_torch(self):
        total_steps, steps_per_epoch = 40, 8
        ours = OneCycleLR(0.4, total_epochs=total_steps / steps_per_epoch, pct_start=0.25)
        # torch's phases end at steps pct_start * total_steps - 1 and total_steps - 1; with total_steps + 1
        # points and this pct_start its peak and end fall at our t = 0.25 * 5 epochs and t = 5 epochs.
        theirs = scheduled_lrs(
            0.4,
            lambda opt: torch.optim.lr_scheduler.OneCycleLR(
                opt,
                max_lr=0.4,
                total_steps=total_steps + 1,
                pct_start=(0.25 * total_steps + 1) / (total_steps + 1),
                cycle_momentum=False,
            ),
            total_steps + 1,
        )
        for step, lr in enumerate(theirs):
            self.assertAlmostEqual(ours(step / steps_per_epoch), lr, places=9, msg=str(step))

    def test_cosine_matches_torch(self):
        ours = CosineLR(0.1, total_epochs=10, min_lr=0.001)
        theirs = scheduled_lrs(
            0.1, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001), 10
        )
        for epoch, lr in enumerate(theirs):
            self.assertAlmostEqual(ours(epoch), lr, places=10)

    def test_triangular_matches_linear_lr_then_linear_lr(self):
        # torch's LinearLR warm-up then LinearLR decay, chained by SequentialLR at the peak step:
        # per step, our t = step / steps_per_epoch
        total_steps, steps_per_epoch, peak_step = 40, 8, 10
        ours = TriangularLR(
            0.4, total_epochs=total_steps / steps_per_epoch, pct_start=peak_step / total_steps, end_factor=0.07
        )
        theirs = scheduled_lrs(
            0.4,
            lambda opt: torch.optim.lr_scheduler.SequentialLR(
                opt,
                [
                    torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, end_factor=1.0, total_iters=peak_step),
                    torch.optim.lr_scheduler.LinearLR(
                        opt, start_factor=1.0, end_factor=0.07, total_iters=total_steps - peak_step
                    ),
                ],
                milestones=[peak_step],
            ),
            total_steps + 3,
        )
        for step, lr in enumerate(theirs):
            self.assertAlmostEqual(ours(step / steps_per_epoch), lr, places=12, msg=str(step))


if __name__ == "__main__":
    unittest.main()
