"""neural_networks.progress: tqdm's widget only in a Jupyter kernel with ipywidgets, its text bar elsewhere."""

import io
import os
import sys
import types
import unittest
import warnings
from unittest import mock

from neural_networks import progress


def fake_ipython(shell):
    """A stand-in for the ``IPython`` module whose ``get_ipython()`` returns ``shell``."""
    return types.SimpleNamespace(get_ipython=lambda: shell)


class TestProgressBar(unittest.TestCase):
    def test_text_bar_outside_a_notebook(self):
        from tqdm.std import tqdm as text_tqdm

        for ipython in (None, fake_ipython(None)):  # IPython not imported; IPython without a shell
            with mock.patch.dict(sys.modules, {"IPython": ipython}):
                self.assertFalse(progress.in_notebook())
                self.assertIs(progress._tqdm_class(), text_tqdm)
        terminal = types.SimpleNamespace(config={"TerminalIPythonApp": {}})  # the IPython shell, no kernel
        with mock.patch.dict(sys.modules, {"IPython": fake_ipython(terminal)}):
            self.assertFalse(progress.in_notebook())
            self.assertIs(progress._tqdm_class(), text_tqdm)

    def test_text_bar_in_a_kernel_without_ipywidgets(self):
        import tqdm.notebook
        from tqdm.std import tqdm as text_tqdm

        kernel = types.SimpleNamespace(config={"IPKernelApp": {"connection_file": "kernel.json"}})
        with (
            mock.patch.dict(sys.modules, {"IPython": fake_ipython(kernel)}),
            mock.patch.object(tqdm.notebook, "IProgress", None),
            open(os.devnull, "w") as devnull,
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            self.assertTrue(progress.in_notebook())
            bar = progress.progress_bar(range(3), desc="x", file=devnull)
            self.assertEqual(list(bar), [0, 1, 2])
            bar.close()
        self.assertIs(type(bar), text_tqdm)
        self.assertEqual([str(w.message) for w in caught], [])

    def test_widget_in_a_kernel_with_ipywidgets(self):
        import tqdm.notebook

        kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
        with (
            mock.patch.dict(sys.modules, {"IPython": fake_ipython(kernel)}),
            mock.patch.object(tqdm.notebook, "IProgress", object),
        ):  # stands for ipywidgets' FloatProgress
            self.assertIs(progress._tqdm_class(), tqdm.notebook.tqdm)

    def test_disable_none_hides_the_text_bar_off_a_terminal_but_not_in_a_notebook(self):
        import tqdm.notebook

        class Terminal(io.StringIO):
            def isatty(self):
                return True

        def drawn(stream):
            bar = progress.progress_bar(range(3), desc="x", file=stream, disable=None)
            list(bar)
            bar.close()
            return stream.getvalue()

        with mock.patch.dict(sys.modules, {"IPython": None}):
            self.assertEqual(drawn(io.StringIO()), "")  # a log file or a pipe: no bar fragments
            self.assertIn("3/3", drawn(Terminal()))
        # A notebook's output stream is no terminal, yet it shows the text bar (as updating text).
        kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
        with (
            mock.patch.dict(sys.modules, {"IPython": fake_ipython(kernel)}),
            mock.patch.object(tqdm.notebook, "IProgress", None),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            self.assertIn("3/3", drawn(io.StringIO()))


if __name__ == "__main__":
    unittest.main()
