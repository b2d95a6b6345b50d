"""neural_networks.functional.allocator: freed arrays stay in the process for reuse (glibc only)."""

import os
import platform
import subprocess
import sys
import unittest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocates, touches and frees a 48 MB array ten times and prints the page faults of the last
# nine rounds. Above glibc's largest automatic mmap threshold (32 MB), so by default every round
# maps fresh zeroed pages; with the package's setting the heap block is reused. APPLY says
# whether the probe turns the setting on as training does (importing the package must not).
PROBE = """
import resource, sys, numpy as np
import neural_networks
from neural_networks.functional import allocator
if sys.argv[1] == "apply":
    allocator.apply_default()
print(int(allocator.is_applied()))
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(12_000_000, dtype=np.float32); del a
start = faults()
for _ in range(9):
    a = np.ones(12_000_000, dtype=np.float32)
    del a
print(faults() - start)
"""


def probe(env_value=None, apply=True) -> tuple[bool, int]:
    """``(applied, page faults)`` of the probe in a fresh interpreter."""
    env = dict(os.environ)
    env.pop("NEURAL_NETWORKS_MALLOC", None)
    if env_value is not None:
        env["NEURAL_NETWORKS_MALLOC"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "apply" if apply else "import"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    applied, faults = out.stdout.split()
    return applied == "1", int(faults)


@unittest.skipUnless(GLIBC, "glibc's mallopt only")
class TestRetainFreedMemory(unittest.TestCase):
    def test_settings_are_accepted(self):
        from neural_networks.functional import allocator

        self.assertTrue(allocator.retain_freed_memory())

    def test_freed_large_arrays_are_reused_without_page_faults(self):
        # With transparent huge pages a fault maps 2 MB, so a round costs at least 24 faults.
        applied, faults = probe()
        self.assertTrue(applied)
        self.assertLess(faults, 100)  # reused: (almost) no new pages (0 measured)
        applied, faults = probe("system")  # the opt-out keeps glibc's defaults: fresh pages every round
        self.assertFalse(applied)
        self.assertGreater(faults, 9 * 20)

    def test_importing_the_package_changes_nothing(self):
        applied, faults = probe(apply=False)
        self.assertFalse(applied)
        self.assertGreater(faults, 9 * 20)

    def test_training_turns_it_on(self):
        code = (
            "import numpy as np\nfrom neural_networks import NeuralNetwork, FullyConnected, SGD\n"
            "from neural_networks.functional import allocator\n"
            "from neural_networks.datasets import initialize_dataset\n"
            "m = NeuralNetwork(layers=[FullyConnected(3, 'softmax')], optimizer=SGD(lr=0.1), seed=0)\n"
            "before = allocator.is_applied()\nm.train(initialize_dataset('iris'), 1, verbose=0)\n"
            "print(int(before), int(allocator.is_applied()))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "NEURAL_NETWORKS_MALLOC"},
        )
        self.assertEqual(out.stdout.split(), ["0", "1"])
