"""neural_networks.io.atomic_write: readers never see a half-written file."""

import os
import tempfile
import unittest
from pathlib import Path

from neural_networks.io import atomic_write


class TestAtomicWrite(unittest.TestCase):
    def test_writes_and_replaces_and_creates_folders(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "a" / "b" / "file.txt"
            with atomic_write(path, "w") as handle:
                handle.write("first")
            with atomic_write(path, "wb") as handle:
                handle.write(b"second")
            self.assertEqual(path.read_text(), "second")
            self.assertEqual(os.listdir(path.parent), ["file.txt"])  # no temporary file left

    def test_an_error_leaves_the_old_file_and_no_temporary(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "file.txt"
            path.write_text("old")
            with self.assertRaises(RuntimeError):
                with atomic_write(path, "w") as handle:
                    handle.write("half")
                    raise RuntimeError("crash while writing")
            self.assertEqual(path.read_text(), "old")
            self.assertEqual(os.listdir(tmp), ["file.txt"])

    def test_mode_must_be_a_write_mode(self):
        with self.assertRaisesRegex(ValueError, "mode must be 'w' or 'wb'"):
            with atomic_write("x", "a"):
                pass


class TestPermissions(unittest.TestCase):
    def test_keeps_the_existing_mode_and_honours_the_umask(self):
        with tempfile.TemporaryDirectory() as tmp:
            existing = Path(tmp) / "submission.csv"
            existing.write_text("old")
            os.chmod(existing, 0o644)
            with atomic_write(existing, "w") as handle:
                handle.write("new")
            self.assertEqual(existing.stat().st_mode & 0o777, 0o644)
            old_mask = os.umask(0o027)
            try:
                fresh = Path(tmp) / "fresh.txt"
                with atomic_write(fresh, "w") as handle:
                    handle.write("x")
            finally:
                os.umask(old_mask)
            self.assertEqual(fresh.stat().st_mode & 0o777, 0o640)


if __name__ == "__main__":
    unittest.main()
