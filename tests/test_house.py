"""The house rules that a reader can count: no library module over 500 lines, and none of the
recipe names or timings that belong in benchmarks/RESULTS.md."""

from __future__ import annotations

import re
import unittest
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neural_networks"
MAX_LINES = 500


def library_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


class TestHouse(unittest.TestCase):
    def test_no_module_over_500_lines(self):
        self.assertGreater(len(library_modules()), 50)  # the walk found the package
        long = {
            str(p.relative_to(PACKAGE)): n
            for p in library_modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES
        }
        self.assertEqual(long, {}, f"split these modules (one concept per module, at most {MAX_LINES} lines)")

    def test_no_recipe_names_or_timings_in_library_code(self):
        # a config's name ("airbench") or a measured time ("58 ms", "0.3 s") in the library's text is history
        # that belongs in benchmarks/RESULTS.md; cite the paper or link the entry instead
        pattern = re.compile(r"airbench|\b\d+(\.\d+)? ?ms\b|\b\d+(\.\d+)? (s|seconds|min|minutes)\b", re.IGNORECASE)
        found = [
            f"{p.relative_to(PACKAGE)}:{i}: {line.strip()}"
            for p in library_modules()
            for i, line in enumerate(p.read_text().splitlines(), start=1)
            if pattern.search(line)
        ]
        self.assertEqual(found, [])


if __name__ == "__main__":
    unittest.main()
