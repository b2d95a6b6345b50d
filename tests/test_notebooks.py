"""The two notebooks run from top to bottom, and progress bars stay quiet in a notebook.

* ``check_gradients.ipynb`` (the course's notebook, at the repository root): every cell runs and
  every printed ``Relative error for <what>: <x>`` has ``x < 1e-7``;
* ``notebooks/walkthrough.ipynb``: runs in under a minute, with no warning (tqdm's "IProgress not
  found" included) in its outputs, and writes its data cache into a temporary folder only.

The notebooks run with nbclient in a Jupyter kernel started from the interpreter running the tests
(a kernel spec written to a temporary folder, so an installed ``python3`` kernel that points
elsewhere cannot be picked up), in a temporary working directory. They are skipped when nbclient or
ipykernel is missing (``pip install -e ".[test]"`` installs them).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock


ROOT = Path(__file__).resolve().parents[1]
GRADIENT_NOTEBOOK = ROOT / "check_gradients.ipynb"
WALKTHROUGH = ROOT / "notebooks" / "walkthrough.ipynb"

#: Checks in check_gradients.ipynb: 6 activations; FullyConnected, two Conv2D and BatchNorm with
#: their input and two parameters each (12); max and average pooling, Flatten, Dropout (4); 2 losses.
EXPECTED_CHECKS = 24
#: Every family of checks must print at least one line naming it.
CHECKED_NAMES = (
    "Linear",
    "Sigmoid",
    "TanH",
    "ArcTan",
    "ReLU",
    "SoftMax",
    "FullyConnected",
    "Conv2D 3x3 same",
    "Conv2D 3x3 stride 2",
    "Pool2D max",
    "Pool2D average",
    "Flatten",
    "BatchNorm",
    "Dropout",
    "CrossEntropy",
    "L2",
)
TOLERANCE = 1e-7
WALKTHROUGH_SECONDS = 60.0
CELL_TIMEOUT = 300  # seconds for one cell

RESULT_LINE = re.compile(r"^Relative error for (?P<what>.+): (?P<error>\S+)\s*$")
# warnings.showwarning's format ("file.py:12: UserWarning: ...") and tqdm's own warning classes
WARNING_TEXT = re.compile(r"IProgress|Tqdm\w*Warning|\b\w*Warning\b:")

try:
    import nbformat
    import nbclient
    import ipykernel  # noqa: F401
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
except ImportError as error:  # pragma: no cover - the test extra installs them
    nbformat = nbclient = None
    MISSING = f'needs {error.name}: pip install -e ".[test]"'
else:
    MISSING = ""


def stream_text(nb, name: str | None = None) -> str:
    """The text of every stream output of ``nb`` (``name``: "stdout" or "stderr" only)."""
    return "".join(
        output.get("text", "")
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and (name is None or output.get("name") == name)
    )


def execute(path: Path, workdir: Path, env: dict | None = None):
    """Run the notebook at ``path`` in a fresh kernel of this interpreter, in ``workdir``; returns
    the executed notebook (a cell that raises raises ``nbclient.exceptions.CellExecutionError``)."""
    nb = nbformat.read(str(path), as_version=4)
    kernels = workdir / "kernels"
    spec_dir = kernels / "neural-networks-test"
    spec_dir.mkdir(parents=True)
    ipython_dir = workdir / "ipython"  # no profile or startup script of the user's is loaded
    ipython_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "neural_networks tests",
        "language": "python",
        "env": {"IPYTHONDIR": str(ipython_dir), **(env or {})},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    km = KernelManager(kernel_name="neural-networks-test", kernel_spec_manager=specs)
    run_dir = workdir / "run"
    run_dir.mkdir()
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(run_dir)}})
    client.execute()
    return nb


@unittest.skipIf(nbclient is None, MISSING)
class TestCheckGradientsNotebook(unittest.TestCase):
    def test_every_relative_error_is_small(self):
        with tempfile.TemporaryDirectory() as tmp:
            nb = execute(GRADIENT_NOTEBOOK, Path(tmp), env={"NEURAL_NETWORKS_DATA": str(Path(tmp) / "data")})
        lines = [line for line in stream_text(nb, "stdout").splitlines() if line.startswith("Relative error for ")]
        results = []
        for line in lines:
            match = RESULT_LINE.match(line)
            self.assertIsNotNone(match, f"not of the form 'Relative error for <what>: <number>': {line!r}")
            results.append((match["what"], float(match["error"])))
        self.assertGreaterEqual(len(results), EXPECTED_CHECKS, "\n".join(lines))
        too_large = [f"{what}: {error:.3e}" for what, error in results if not error < TOLERANCE]
        self.assertEqual(too_large, [], f"relative errors >= {TOLERANCE:g}")
        for name in CHECKED_NAMES:
            self.assertTrue(
                any(what.startswith(name) for what, _ in results), f"no check of {name} in:\n" + "\n".join(lines)
            )
        self.assertNotRegex(stream_text(nb), WARNING_TEXT)


@unittest.skipIf(nbclient is None, MISSING)
class TestWalkthroughNotebook(unittest.TestCase):
    def test_runs_quickly_without_warnings(self):
        from neural_networks.datasets import DataNotFoundError
        from neural_networks.datasets.fashion_mnist import fashion_mnist_files

        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            with mock.patch.dict(os.environ, {"NEURAL_NETWORKS_DATA": str(data)}):
                try:
                    fashion_mnist_files(download=False, progress=False)
                except DataNotFoundError:
                    self.skipTest("the Fashion-MNIST files are not installed (apt-get install dataset-fashion-mnist)")
            started = time.perf_counter()
            nb = execute(
                WALKTHROUGH,
                Path(tmp),
                env={"NEURAL_NETWORKS_DATA": str(data), "NEURAL_NETWORKS_CACHE": str(data / "cache")},
            )
            seconds = time.perf_counter() - started
            cached = sorted(str(p.relative_to(data)) for p in data.rglob("*.npy")) if data.is_dir() else []
        self.assertLess(seconds, WALKTHROUGH_SECONDS, f"the walkthrough took {seconds:.1f} s")
        self.assertNotRegex(stream_text(nb), WARNING_TEXT)
        stdout = stream_text(nb, "stdout")
        self.assertRegex(stdout, r"Iris test accuracy: 0\.[89]\d\d|Iris test accuracy: 1\.000")
        self.assertRegex(stdout, r"Fashion-MNIST test accuracy: 0\.[89]\d\d")
        self.assertIn("epoch 1/", stream_text(nb, "stderr"))  # tqdm's text bar, not a widget
        figures = [
            output
            for cell in nb.cells
            for output in cell.get("outputs", [])
            if output.get("output_type") == "display_data" and "image/png" in output.get("data", {})
        ]
        self.assertGreaterEqual(len(figures), 2)  # the two pairs of curves (and the sample images)
        # the decoded arrays went to the temporary data folder (the system copy is read-only)
        if not os.access("/usr/share/datasets/fashion-mnist", os.W_OK):
            self.assertTrue(cached, "no cache written under $NEURAL_NETWORKS_DATA")


class TestNotebooksAreStoredClean(unittest.TestCase):
    def test_no_outputs(self):
        for path in (GRADIENT_NOTEBOOK, WALKTHROUGH):
            nb = json.loads(path.read_text(encoding="utf-8"))
            self.assertEqual(nb["nbformat"], 4, path.name)
            if nbformat is not None:
                nbformat.validate(nbformat.from_dict(nb))
            for cell in nb["cells"]:
                if cell["cell_type"] == "code":
                    self.assertEqual(
                        cell["outputs"], [], f"{path.name}: stored with outputs; clear them before committing"
                    )
                    self.assertIsNone(cell["execution_count"], path.name)


if __name__ == "__main__":
    unittest.main()
