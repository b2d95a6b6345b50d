"""Progress bars that work in a terminal and in a Jupyter notebook, with or without ipywidgets.

``tqdm.auto`` picks tqdm's notebook widget inside Jupyter, but that widget needs ipywidgets: without
it tqdm warns ("IProgress not found") on import. :func:`progress_bar` makes the choice itself:
the widget when the code runs in a notebook kernel and ipywidgets can draw it, tqdm's text bar
everywhere else (a notebook shows that one as updating text).

``disable=None`` means what it means to tqdm, "no bar off a terminal" (a log file, a pipe: there
tqdm would leave its first, empty bar behind as a stray line, which ``leave=False`` cannot erase),
except in a notebook, whose output stream is no terminal but shows the bar.
"""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "in_notebook"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython with an ``IPKernelApp``)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or too broken to ask
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _tqdm_class():
    if in_notebook():
        try:
            from tqdm.notebook import IProgress, tqdm as notebook_tqdm
        except ImportError:
            IProgress = None
        if IProgress is not None:  # ipywidgets is installed and tqdm can use it
            return notebook_tqdm
    from tqdm.std import tqdm

    return tqdm


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar over ``iterable`` (``kwargs`` as for ``tqdm``: ``total``, ``desc``, ``unit``...);
    ``disable=None`` hides it off a terminal, but not in a notebook."""
    if "disable" in kwargs and kwargs["disable"] is None and in_notebook():
        # tqdm would ask the kernel's output stream, whose isatty() is False, and hide the text bar.
        kwargs["disable"] = False
    return _tqdm_class()(iterable, **kwargs)
