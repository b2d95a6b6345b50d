"""The test suite with only the core installed (``pip install -e .``, no extra): ``python -m unittest``
reports the tests needing an optional package (pytest, hypothesis, optuna, tensorboard, onnx,
safetensors, torch...) as skipped, naming the package and the extra that installs it, and runs
the rest; pytest does the same. An uninstalled package is simulated in a child interpreter by a
finder that raises ``ModuleNotFoundError`` for it."""

import subprocess
import sys
import unittest
from pathlib import Path
from unittest import mock

from .helpers import EXTRAS, missing, require, requires

ROOT = Path(__file__).resolve().parents[1]


BLOCKER = """
import sys
class Uninstalled:  # first on sys.meta_path: these packages cannot be found, as if not installed
    blocked = set({blocked!r})
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Uninstalled())
"""


def run_without(blocked, *code_lines, timeout=120) -> subprocess.CompletedProcess:
    """``python -c CODE`` in the repository root with the packages of ``blocked`` uninstalled."""
    code = "\n".join([BLOCKER.format(blocked=list(blocked)), *code_lines])
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def unittest_without(blocked, *modules) -> subprocess.CompletedProcess:
    """``python -m unittest ARGS -v`` (module names, or discover and its options) with ``blocked`` uninstalled."""
    argv = ["python -m unittest", *modules, "-v"]
    return run_without(blocked, "import unittest", f"unittest.main(module=None, argv={argv!r})")


class TestHelpers(unittest.TestCase):
    def test_require_returns_the_module_or_skips_naming_the_extra(self):
        self.assertIs(require("unittest"), unittest)
        self.assertIsNone(missing("numpy"))
        with mock.patch.dict(sys.modules, {"onnx": None, "safetensors": None, "safetensors.numpy": None}):
            with self.assertRaises(unittest.SkipTest) as caught:
                require("onnx")
            self.assertEqual(str(caught.exception), 'needs onnx: pip install -e ".[onnx]"')
            self.assertEqual(missing("safetensors.numpy"), 'needs safetensors: pip install -e ".[safetensors]"')
            self.assertEqual(missing("onnx", "all"), 'needs onnx: pip install -e ".[all]"')
        self.assertEqual(EXTRAS["optuna"], "tune")
        self.assertEqual(EXTRAS["hypothesis"], "test")

    def test_requires_skips_a_test_and_is_a_skip_for_unittest(self):
        with mock.patch.dict(sys.modules, {"tensorboard": None}):
            decorator = requires("tensorboard")

        class Case(unittest.TestCase):
            @decorator
            def test_it(self):
                raise AssertionError("ran")

        result = unittest.TestResult()
        Case("test_it").run(result)
        self.assertEqual(result.skipped[0][1], 'needs tensorboard: pip install -e ".[tensorboard]"')
        self.assertEqual((result.errors, result.failures), ([], []))

    def test_helpers_import_without_pytest(self):
        result = run_without([], "import tests.helpers; print('pytest' in sys.modules)")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "False"), result.stderr)
        result = run_without(["pytest"], "import tests.helpers")
        self.assertEqual(result.returncode, 0, result.stderr)


class TestUnittestWithoutTheExtras(unittest.TestCase):
    """``python -m unittest``: a skip with its reason where an extra is missing, never an error."""

    def check(self, result, *reasons):
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertNotIn("ERROR", output)
        self.assertRegex(output, r"\nOK \(skipped=\d+\)")
        for reason in reasons:
            self.assertIn(f"skipped '{reason}'", output)
        return output

    def test_modules_mixing_core_tests_and_tests_of_an_extra(self):
        output = self.check(
            unittest_without(
                ["pytest", "tensorboard", "optuna"],
                "tests.test_tensorboard.TestCallback",
                "tests.test_tune.TestTuneCommandLine.test_errors_are_one_line_before_any_trial",
            ),
            'needs tensorboard: pip install -e ".[tensorboard]"',
            'needs optuna: pip install -e ".[tune]"',
        )
        self.assertRegex(output, r"test_new_files_sort_after_existing_ones \(.*\) \.\.\. ok")  # a core test ran

    def test_pytest_style_modules_without_pytest(self):
        reason = 'needs pytest: pip install -e ".[test]" (pytest-style tests: run them with python -m pytest tests/'
        blocked = ["pytest", "hypothesis"]
        # by name (they import: stand-ins for pytest and hypothesis) and by discovery (the spec's command)
        self.check(unittest_without(blocked, "tests.test_export", "tests.test_properties"), reason + "test_export.py)")
        discover = ["discover", "-s", "tests", "-t", ".", "-p", "test_properties*.py"]
        output = self.check(unittest_without(blocked, *discover), reason + "test_properties.py)")
        self.assertIn("test_image_folder_zip_with_damaged_central_directory", output)  # its core tests

    def test_pytest_style_modules_with_pytest(self):
        require("pytest")
        self.check(
            unittest_without(["onnx", "onnxruntime", "safetensors"], "tests.test_export"),
            "pytest-style tests: run them with python -m pytest tests/test_export.py",
        )
        # a package missing besides pytest: the module is skipped where it is imported (by discovery)
        discover = ["discover", "-s", "tests", "-t", ".", "-p", "test_properties.py"]
        self.check(unittest_without(["hypothesis"], *discover), 'needs hypothesis: pip install -e ".[test]"')


class TestPytestWithoutTheExtras(unittest.TestCase):
    def pytest_without(self, blocked, *args, status=0) -> str:
        require("pytest")
        args = ["-q", "-rs", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args]
        result = run_without(blocked, "import pytest", f"sys.exit(pytest.main({args!r}))")
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, status, output)
        return output

    def test_a_missing_extra_is_a_skip_for_pytest(self):
        output = self.pytest_without(["tensorboard"], "tests/test_tensorboard.py::TestCallback")
        self.assertIn('needs tensorboard: pip install -e ".[tensorboard]"', output)
        self.assertRegex(output, r"\b1 passed, 4 skipped")

    def test_a_missing_extra_skips_a_whole_module_or_one_test(self):
        output = self.pytest_without(["hypothesis"], "tests/test_properties.py", status=5)  # 5: no test ran
        self.assertIn('needs hypothesis: pip install -e ".[test]"', output)
        self.assertRegex(output, r"\b1 skipped")
        output = self.pytest_without(["onnx"], "tests/test_export.py::test_iris_mlp_matches_predict")
        self.assertIn('needs onnx: pip install -e ".[onnx]"', output)


if __name__ == "__main__":
    unittest.main()
