"""benchmarks/_common.py: how the benchmarks time the two libraries (alternating blocks of
back-to-back calls, no idle pauses) and how they count a network's FLOPs. A fake clock that
only the timed functions move makes the call pattern exact; nothing here measures real time."""

import math
import sys
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _common():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return _common


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.calls = []

    def function(self, name, seconds):
        def call():
            self.calls.append(name)
            self.now += seconds

        return call


class TestTimeInterleaved(unittest.TestCase):
    def run_timing(self, **kwargs):
        C = _common()
        clock = FakeClock()
        ours, theirs = clock.function("o", 0.01), clock.function("t", 0.03)
        with (
            mock.patch.object(C.time, "perf_counter", lambda: clock.now),
            mock.patch.object(C.time, "sleep", side_effect=AssertionError("slept")) as sleep,
        ):
            result = C.time_interleaved(ours, theirs, repeats=4, warmup=1, min_sample_s=0.02, **kwargs)
        return result, clock.calls, sleep

    def test_blocks_are_back_to_back_with_a_lead_in_and_no_pause(self):
        result, calls, sleep = self.run_timing(lead_in_s=0.05)
        sleep.assert_not_called()
        inner = math.ceil(0.02 / 0.01)  # the faster side's sample lasts at least min_sample_s
        lead = {"o": math.ceil(0.05 / 0.01), "t": math.ceil(0.05 / 0.03)}
        self.assertEqual((result["inner"], result["lead_in"]), (inner, {"ours": lead["o"], "torch": lead["t"]}))
        blocks = [("o", "t"), ("t", "o"), ("o", "t"), ("t", "o")]  # the order flips every round
        expected = ["o", "t"] + ["o", "t"]  # warm-up, then one probe call of each
        for first, second in blocks:
            expected += [first] * (lead[first] + inner) + [second] * (lead[second] + inner)
        self.assertEqual(calls, expected)
        # only the timed calls count: each sample is exactly one call's time
        np.testing.assert_allclose(result["samples_s"]["ours"], [0.01] * 4, rtol=1e-12)
        np.testing.assert_allclose(result["samples_s"]["torch"], [0.03] * 4, rtol=1e-12)
        self.assertAlmostEqual(result["ours_s"] / result["torch_s"], 1 / 3)

    def test_a_slow_call_leads_in_once_and_the_old_method_stays_available(self):
        result, _, _ = self.run_timing(lead_in_s=0.001)
        self.assertEqual(result["lead_in"], {"ours": 1, "torch": 1})
        C = _common()
        clock = FakeClock()
        with mock.patch.object(C.time, "perf_counter", lambda: clock.now), mock.patch.object(C.time, "sleep") as sleep:
            result = C.time_interleaved(
                clock.function("o", 0.01), clock.function("t", 0.01), 3, warmup=0, lead_in_s=0, settle_s=0.25
            )
        self.assertEqual(result["lead_in"], {"ours": 0, "torch": 0})
        self.assertEqual(sleep.call_count, 6)  # one pause before each block
        sleep.assert_called_with(0.25)


class TestTrainingFlops(unittest.TestCase):
    def test_conv_and_dense_products_against_the_closed_form(self):
        """A strided, padded conv, a pooled valid conv and two dense layers: 2 x multiply-adds,
        three products in training, one at inference; pooling, batch norm and flatten cost none."""
        from neural_networks.layers import BatchNorm, Conv2D, Flatten, FullyConnected, Pool2D
        from neural_networks.models import NeuralNetwork

        layers = [
            Conv2D(8, (3, 3), activation="relu", stride=2, pad="same"),  # 9x9x3 -> 5x5x8
            BatchNorm(),
            Conv2D(6, (2, 2), activation="linear", pad="valid"),  # 5x5x8 -> 4x4x6
            Pool2D((2, 2), mode="max", stride=2),  # -> 2x2x6
            Flatten(),
            FullyConnected(7, activation="relu"),
            FullyConnected(4, activation="softmax"),
        ]
        model = NeuralNetwork(layers=layers, loss="cross_entropy")
        X = np.random.default_rng(0).standard_normal((3, 9, 9, 3)).astype(np.float32)
        macs = 5 * 5 * 9 * 3 * 8 + 4 * 4 * 4 * 8 * 6 + 24 * 7 + 7 * 4
        self.assertEqual(_common().training_flops_per_image(model, X), (6.0 * macs, 2.0 * macs))


if __name__ == "__main__":
    unittest.main()
