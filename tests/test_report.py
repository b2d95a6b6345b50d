"""The write-ups of neural_networks.report: the spec's code appendix (and its root script
generate_submission.py, end to end) and the report of a run directory."""

import contextlib
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import yaml

from neural_networks import activations, layers, losses
from neural_networks.functional import reference
from neural_networks.appendix import (
    DEFAULT_IMPLEMENTATIONS,
    FAST_GROUP,
    FAST_IMPLEMENTATIONS,
    GROUPS,
    UnknownImplementation,
    code_appendix,
    gather_implementations,
    resolve_implementation,
)
from neural_networks.report import build_report

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "generate_submission.py"
SPECIAL = f"{__name__}._latex_special"  # this module is importable as tests.test_report


def _latex_special(x):
    """Code full of LaTeX's special characters: 100% of {a_b} & $x$ # ^ ~ \\ ."""
    table = {"a_b": x % 3, "c&d": "$", "e#f": "~"}  # 50% {comment} ^ \n
    return table, "\\", x ^ 1


def source_of(obj) -> str:
    """``obj``'s source as the appendix prints it: dedented, without the trailing newline."""
    return textwrap.dedent(inspect.getsource(obj)).rstrip()


def run_script(*args, cwd=ROOT, script=SCRIPT):
    """Run the script as a student does. From the repository root Python finds the package beside
    it; a copy elsewhere gets it from PYTHONPATH, as if the package were installed."""
    env = dict(os.environ) if script == SCRIPT else {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def load_script():
    """generate_submission.py as a fresh module, as a student's edited copy would be."""
    spec = importlib.util.spec_from_file_location("generate_submission_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestCodeAppendixMarkdown(unittest.TestCase):
    def test_heading_levels(self):
        for level in (1, 2, 3):
            with self.subTest(level=level):
                text = code_appendix("markdown", heading_level=level)
                group_marks = "#" * level + " "
                for group in GROUPS:
                    self.assertIn(f"\n{group_marks}{group}\n", "\n" + text)
                self.assertIn(f"\n{'#' * (level + 1)} `ReLU.forward`\n", text)
                if level > 1:  # not also at a shallower level
                    self.assertNotIn("\n# Activations\n", "\n" + text)

    def test_groups_in_the_spec_order(self):
        text = code_appendix()
        positions = [text.index(f"# {group}\n") for group in GROUPS]
        self.assertEqual(positions, sorted(positions))
        self.assertTrue(text.startswith("# Activations\n"))

    def test_source_verbatim_in_a_python_block(self):
        text = code_appendix("markdown")
        for obj in (activations.ReLU.forward, activations.SoftMax.backward, layers.Conv2D.forward):
            self.assertIn(f"```python\n{source_of(obj)}\n```", text)

    def test_inherited_method_says_where_it_is_defined(self):
        text = code_appendix("markdown", implementations=["neural_networks.layers.FullyConnected.backward"])
        self.assertIn("## `FullyConnected.backward` (inherited from ActivatedLayer)", text)
        self.assertIn(source_of(layers.ActivatedLayer.backward), text)


class TestCodeAppendixLatex(unittest.TestCase):
    COMMANDS = ("section", "subsection", "subsubsection", "paragraph")

    def test_heading_levels(self):
        for level in (1, 2, 3):
            with self.subTest(level=level):
                text = code_appendix("latex", heading_level=level)
                group_command, entry_command = self.COMMANDS[level - 1], self.COMMANDS[level]
                for group in GROUPS:
                    self.assertIn(f"\\{group_command}{{{group}}}\n", text)
                self.assertIn(f"\\{entry_command}{{ReLU.forward}}\n", text)
                self.assertIn(f"\\{entry_command}{{FullyConnected.\\_init\\_parameters}}\n", text)
                self.assertEqual(len(re.findall(rf"^\\{group_command}{{", text, re.M)), len(GROUPS))

    def test_source_verbatim_in_listings(self):
        text = code_appendix("latex", heading_level=2)
        listing = f"\\begin{{lstlisting}}[language=Python]\n{source_of(activations.ReLU.forward)}\n\\end{{lstlisting}}"
        self.assertIn(listing, text)
        self.assertEqual(text.count("\\begin{lstlisting}"), text.count("\\end{lstlisting}"))

    def test_special_characters_escaped_in_headings_only(self):
        text = code_appendix("latex", heading_level=1, implementations=[SPECIAL])
        self.assertIn("\\section{Other}", text)
        self.assertIn("\\subsection{test\\_report.\\_latex\\_special}", text)
        # The code goes in as it is: listings prints it verbatim.
        self.assertIn(f"\\begin{{lstlisting}}[language=Python]\n{source_of(_latex_special)}\n\\end{{lstlisting}}", text)
        self.assertIn('{"a_b": x % 3, "c&d": "$", "e#f": "~"}  # 50% {comment} ^ \\n', text)


class TestImplementations(unittest.TestCase):
    def test_default_list_resolves_into_every_group(self):
        groups = gather_implementations()
        self.assertEqual(list(groups), list(GROUPS))
        titles = {group: [title for title, _ in items] for group, items in groups.items()}
        self.assertIn("SoftMax.backward", titles["Activations"])
        self.assertIn("reference.softmax_backward", titles["Activations"])
        self.assertIn("reference.relu_backward", titles["Activations"])
        for title in (
            "FullyConnected._init_parameters",
            "FullyConnected._backward",
            "Conv2D._backward",
            "reference.dense_forward",
            "reference.conv2d_forward",
            "reference.conv2d_backward",
            "reference.im2col",
            "reference.col2im",
            "Pool2D.forward",
            "reference.pool2d_backward",
        ):
            self.assertIn(title, titles["Layers"])
        self.assertIn("CrossEntropy.backward", titles["Losses"])
        self.assertIn("reference.softmax_cross_entropy", titles["Losses"])
        self.assertIn("NeuralNetwork.train_step", titles["Model"])
        self.assertEqual(sum(map(len, groups.values())), len(set(DEFAULT_IMPLEMENTATIONS)))

    def test_the_default_list_shows_the_textbook_not_the_fast_kernels(self):
        for name in DEFAULT_IMPLEMENTATIONS:
            entry = resolve_implementation(name)
            module = inspect.getmodule(entry.obj).__name__
            with self.subTest(name=name):
                self.assertTrue(
                    not module.startswith("neural_networks.functional") or module == reference.__name__, module
                )
        text = code_appendix()
        for fast in ("_planes_forward", "gather_planes", "_backward_images", "patch_matmul", "map_batch"):
            self.assertNotIn(fast, text)

    def test_fast_implementations_are_whole_modules_in_their_own_group(self):
        groups = gather_implementations([*DEFAULT_IMPLEMENTATIONS, *FAST_IMPLEMENTATIONS])
        self.assertEqual(list(groups), [*GROUPS, FAST_GROUP])
        self.assertEqual([title for title, _ in groups[FAST_GROUP]], list(FAST_IMPLEMENTATIONS))
        self.assertIn("def gather_planes(", dict(groups[FAST_GROUP])["neural_networks.functional.planes"])

    def test_groups_by_defining_module(self):
        cases = {
            "neural_networks.layers.BatchNorm": "Layers",
            "neural_networks.layers.Dropout": "Layers",  # re-exported by layers, defined in layers.dropout
            "neural_networks.ReLU.backward": "Activations",  # through the package's re-export
            "neural_networks.functional.reference.pool2d_forward": "Layers",
            "neural_networks.functional.reference.softmax": "Activations",
            "neural_networks.functional.softmax": "Activations",  # the dispatch's name for the reference's
            "neural_networks.functional.reference.log_softmax": "Losses",
            "neural_networks.functional.conv2d": "Layers",  # a function of the dispatch
            "neural_networks.functional.conv": FAST_GROUP,  # a whole fast module
            "neural_networks.optimizers.SGD": "Model",
            "json.dumps": "Other",
        }
        self.assertEqual({name: resolve_implementation(name).group for name in cases}, cases)
        self.assertEqual(resolve_implementation("neural_networks.ReLU.backward").title, "ReLU.backward")
        self.assertEqual(
            resolve_implementation("neural_networks.functional.reference.im2col").title, "reference.im2col"
        )

    def test_other_group_comes_last_and_duplicates_once(self):
        names = ["json.dumps", "neural_networks.losses.L2.forward", "neural_networks.losses.L2.forward"]
        groups = gather_implementations(names)
        self.assertEqual(list(groups), ["Losses", "Other"])
        self.assertEqual(len(groups["Losses"]), 1)

    def test_unresolvable_names(self):
        cases = {
            "neural_networks.activations.ReLU.fwd": "neural_networks.activations.ReLU has no attribute 'fwd'",
            "neural_networks.activatons.ReLU": "neural_networks has no attribute 'activatons'",
            "no_such_module.f": "no module 'no_such_module'",
            "neural_networks.activations.ACTIVATIONS": "no Python source",
            "ReLU forward": "not a dotted Python name",
        }
        for name, reason in cases.items():
            with self.subTest(name=name):
                with self.assertRaises(UnknownImplementation) as caught:
                    code_appendix(implementations=["neural_networks.activations.ReLU.forward", name])
                self.assertIn(repr(name), str(caught.exception))
                self.assertIn(reason, str(caught.exception))
                self.assertIsInstance(caught.exception, ValueError)

    def test_bad_options(self):
        with self.assertRaisesRegex(ValueError, "format"):
            code_appendix("html")
        with self.assertRaisesRegex(ValueError, "heading level"):
            code_appendix("latex", heading_level=4)


class TestScript(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_latex_to_a_file(self):
        out = self.dir / "out.tex"
        result = run_script("-f", "latex", "-o", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(out.read_text(), code_appendix("latex", 1))
        self.assertIn(f"wrote {out}", result.stdout)
        self.assertEqual([p.name for p in self.dir.iterdir()], ["out.tex"])  # no temporary file left

    def test_markdown_subsubsections_to_a_file(self):
        result = run_script("--format", "markdown", "--heading_level", "3", "--output", "x.md", cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        text = (self.dir / "x.md").read_text()
        self.assertTrue(text.startswith("### Activations\n"))
        self.assertIn("#### `ReLU.forward`", text)

    def test_stdout_and_dashed_heading_level(self):
        result = run_script("--heading-level", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, code_appendix("markdown", 2))

    def test_help(self):
        result = run_script("--help")
        self.assertEqual(result.returncode, 0)
        for needle in (
            "--format",
            "--heading_level",
            "--output",
            "student_implementations",
            "\\input",
            "generate_submission.py --format latex --heading_level 2 --output submission.tex",
        ):
            self.assertIn(needle, result.stdout)

    def test_list(self):
        result = run_script("--list")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = [line.split() for line in result.stdout.splitlines()]
        self.assertEqual([name for _, name in rows], list(DEFAULT_IMPLEMENTATIONS))
        self.assertIn(["Layers", "neural_networks.functional.reference.conv2d_forward"], rows)

    def test_include_fast(self):
        result = run_script("--include-fast", "--list")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = [line.rsplit(None, 1) for line in result.stdout.splitlines()]
        self.assertEqual([name for _, name in rows], [*DEFAULT_IMPLEMENTATIONS, *FAST_IMPLEMENTATIONS])
        self.assertIn([FAST_GROUP, "neural_networks.functional.winograd"], rows)
        text = run_script("--include-fast").stdout
        self.assertIn(f"\n# {FAST_GROUP}\n", text)
        self.assertIn("## `neural_networks.functional.winograd`", text)

    def test_bad_arguments(self):
        for args in (["--format", "pdf"], ["--heading_level", "4"], ["--no-such-flag"]):
            with self.subTest(args=args):
                result = run_script(*args)
                self.assertEqual(result.returncode, 2)
                self.assertIn("error:", result.stderr)

    def test_appended_implementation_shows_up(self):
        script = load_script()
        script.student_implementations.append("neural_networks.layers.Flatten.forward")
        out = self.dir / "appendix.md"
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(script.main(["-o", str(out)]), 0)
        text = out.read_text()
        self.assertIn("## `Flatten.forward`", text)
        self.assertIn(source_of(layers.Flatten.forward), text)
        self.assertIn("## `ReLU.forward`", text)  # the defaults are still there

    def test_main_with_explicit_implementations(self):
        script = load_script()
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            self.assertEqual(script.main(["-f", "latex"], implementations=["neural_networks.losses.L2.backward"]), 0)
        self.assertEqual(
            stdout.getvalue(),
            "\\section{Losses}\n\n\\subsection{L2.backward}\n"
            f"\\begin{{lstlisting}}[language=Python]\n{source_of(losses.L2.backward)}"
            "\n\\end{lstlisting}\n",
        )

    def test_unknown_name_is_one_error_line(self):
        script = load_script()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = script.main([], implementations=["neural_networks.activations.ReLU.fowrard"])
        self.assertEqual(status, 2)
        self.assertEqual(
            stderr.getvalue().splitlines(),
            [
                "error: unknown implementation 'neural_networks.activations.ReLU.fowrard': "
                "neural_networks.activations.ReLU has no attribute 'fowrard'"
            ],
        )

    def test_edited_copy_runs_elsewhere_and_reports_a_bad_name(self):
        """A student's copy outside the repository imports the installed package; a typo in
        its list exits 2 with one line naming the entry, and writes nothing."""
        copy = self.dir / "generate_submission.py"
        shutil.copy(SCRIPT, copy)
        source = copy.read_text().replace(
            "    *DEFAULT_IMPLEMENTATIONS,",
            '    *DEFAULT_IMPLEMENTATIONS,\n    "neural_networks.layers.Pool2D.bakward",',
        )
        copy.write_text(source)
        result = run_script("-o", "never.md", cwd=self.dir, script=copy)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(
            result.stderr.strip().splitlines(),
            [
                "error: unknown implementation 'neural_networks.layers.Pool2D.bakward': "
                "neural_networks.layers.Pool2D has no attribute 'bakward'"
            ],
        )
        self.assertFalse((self.dir / "never.md").exists())


class TestBuildReport(unittest.TestCase):
    """The run report shares the appendix's rendering; a run directory is faked (no training)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.run_dir = Path(cls.tmp.name) / "run"
        cls.run_dir.mkdir()
        config = {
            "name": "fake_run",
            "data": {"name": "iris"},
            "optimizer": {"name": "sgd", "lr": 0.1},
            "model": {
                "loss": "cross_entropy",
                "layers": [
                    {"name": "fully_connected", "n_out": 8, "activation": "relu"},
                    {"name": "fully_connected", "n_out": 3, "activation": "softmax"},
                ],
            },
        }
        (cls.run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        (cls.run_dir / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "epochs": 1}))
        (cls.run_dir / "loss.png").write_bytes(b"")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_markdown(self):
        text = build_report(self.run_dir, "markdown", heading_level=2, output=self.run_dir / "report.md")
        self.assertTrue(text.startswith("## Run `fake_run`\n\n### Configuration\n\n```yaml\n"))
        for needle in (
            "| test accuracy | 0.5000 |",
            "![Training and validation loss per epoch](loss.png)",
            "### Activations\n\n#### `ReLU`\n\n```python\nclass ReLU",
            "#### `reference.relu_backward`",
            "### Layers",
            "#### `FullyConnected`",
            "#### `reference.dense_backward`",
            "#### `reference.softmax_cross_entropy`",
            "### Losses",
            "#### `CrossEntropy`",
            "### Model",
            "#### `NeuralNetwork.train_step`",
        ):
            self.assertIn(needle, text)

    def test_latex(self):
        text = build_report(self.run_dir, "latex", heading_level=1)
        self.assertTrue(
            text.startswith("\\section{Run fake\\_run}\n\n\\subsection{Configuration}\n\\begin{lstlisting}\n")
        )
        for needle in (
            "test accuracy & 0.5000 \\\\",
            "\\subsection{Activations}\n\n\\subsubsection{ReLU}\n\\begin{lstlisting}[language=Python]\nclass ReLU",
            "\\subsubsection{NeuralNetwork.train\\_step}",
        ):
            self.assertIn(needle, text)

    def test_include_fast(self):
        text = build_report(self.run_dir, "markdown", include_fast=True)
        self.assertNotIn(FAST_GROUP, build_report(self.run_dir, "markdown"))
        self.assertIn(f"\n## {FAST_GROUP}\n", text)
        self.assertIn("### `neural_networks.functional.conv`", text)
        self.assertIn(source_of(reference.dense_forward), text)
        result = subprocess.run(
            [sys.executable, "-m", "neural_networks", "report", str(self.run_dir), "--include-fast"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("### `neural_networks.functional.winograd`", result.stdout)

    def test_not_a_run_directory(self):
        with self.assertRaisesRegex(FileNotFoundError, "not a run directory"):
            build_report(self.run_dir.parent)


if __name__ == "__main__":
    unittest.main()
