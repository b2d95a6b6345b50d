"""neural_networks.allocator: freed arrays stay in the process for reuse (glibc only)."""

import os
import platform
import subprocess
import sys
import unittest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocates, touches and frees a 48 MB array ten times and prints the page faults of the last
# nine rounds. Above glibc's largest automatic mmap threshold (32 MB), so by default every round
# maps fresh zeroed pages; with the package's setting the heap block is reused.
PROBE = """
import resource, numpy as np
import neural_networks
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(12_000_000, dtype=np.float32); del a
start = faults()
for _ in range(9):
    a = np.ones(12_000_000, dtype=np.float32)
    del a
print(faults() - start)
"""


def probe_faults(env_value=None) -> int:
    env = dict(os.environ)
    env.pop("NEURAL_NETWORKS_MALLOC", None)
    if env_value is not None:
        env["NEURAL_NETWORKS_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@unittest.skipUnless(GLIBC, "glibc's mallopt only")
class TestRetainFreedMemory(unittest.TestCase):
    def test_settings_are_accepted(self):
        from neural_networks import allocator

        self.assertTrue(allocator.retain_freed_memory())

    def test_freed_large_arrays_are_reused_without_page_faults(self):
        # With transparent huge pages a fault maps 2 MB, so a round costs at least 24 faults.
        self.assertLess(probe_faults(), 100)  # reused: (almost) no new pages (0 measured)
        self.assertGreater(probe_faults("system"), 9 * 20)  # glibc's default: fresh pages every round

    def test_opt_out(self):
        from neural_networks import allocator

        previous = os.environ.get("NEURAL_NETWORKS_MALLOC")
        os.environ["NEURAL_NETWORKS_MALLOC"] = "system"
        try:
            self.assertFalse(allocator.apply_default())
        finally:
            if previous is None:
                del os.environ["NEURAL_NETWORKS_MALLOC"]
            else:
                os.environ["NEURAL_NETWORKS_MALLOC"] = previous


if __name__ == "__main__":
    unittest.main()
