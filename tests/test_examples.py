"""The Iris job runs end to end from the command line."""

import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class TestIrisExample(unittest.TestCase):
    def test_sweep_prints_table_and_saves_plot(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [sys.executable, "-m", "neural_networks.examples.iris", "--epochs", "40", "--out", tmp],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertRegex(result.stdout, r"test accuracy 0\.9[3-9]\d|test accuracy 1\.000")
            rows = [line for line in result.stdout.splitlines() if re.match(r"^\| [\d.]+ \| \d+ \|", line)]
            self.assertEqual(len(rows), 9)  # nine sweep combinations
            self.assertTrue((Path(tmp) / "best_loss_iterations.png").is_file())
            self.assertTrue((Path(tmp) / "sweep.md").is_file())


if __name__ == "__main__":
    unittest.main()
