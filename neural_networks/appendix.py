"""The code appendix of the spec's section 3.3, and the rendering it shares with run reports.

``code_appendix(fmt="markdown"|"latex", heading_level=1|2|3, implementations=None)`` is the
source of each listed implementation, grouped as the spec groups them -- activations, layers,
losses and the model -- with the groups as sections, subsections or subsubsections.
Implementations are named by dotted paths (``"neural_networks.activations.ReLU.forward"``);
:data:`DEFAULT_IMPLEMENTATIONS` lists what the spec asks students to implement together with the
reference kernels (:mod:`neural_networks.functional.reference`) that compute it, the textbook
code; :data:`FAST_IMPLEMENTATIONS` adds the dispatch and the fast kernels, on request. The root
script ``generate_submission.py`` is a command line around it; :mod:`neural_networks.report`
renders a run's report with the same headings and listings.

As in the spec, the LaTeX output is a fragment to ``\\input{}`` into a document (it needs the
``listings`` package); the markdown stands by itself.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

__all__ = [
    "code_appendix",
    "gather_implementations",
    "resolve_implementation",
    "Implementation",
    "UnknownImplementation",
    "DEFAULT_IMPLEMENTATIONS",
    "FAST_IMPLEMENTATIONS",
    "REFERENCE_KERNELS",
    "GROUPS",
    "FAST_GROUP",
    "FORMATS",
    "HEADING_LEVELS",
    "check_options",
    "heading",
    "heading_lines",
    "listing",
    "latex_escape",
    "code_sections",
]

#: The output formats of the appendix and the report.
FORMATS = ("markdown", "latex")
#: The heading levels a document may start at.
HEADING_LEVELS = (1, 2, 3)
# LaTeX sectioning commands by depth; heading level 1 starts at \section.
_LATEX_HEADINGS = ("section", "subsection", "subsubsection", "paragraph", "subparagraph")

#: The spec's groups, in the order the documents list them.
GROUPS = ("Activations", "Layers", "Losses", "Model")
FAST_GROUP = "Fast kernels"  #: Whole modules of the fast kernels, listed on request (--include-fast)
OTHER_GROUP = "Other"  # code from modules the tables below do not place (e.g. a student's own module)

# Group of an implementation by the short name of the module that defines it. The
# regularisation layers and the weight initialisers that ``_init_parameters`` calls are
# layer code; the optimizers and schedules are what ``NeuralNetwork.update`` runs.
_MODULE_GROUPS = {
    "activations": "Activations",
    "layers": "Layers",
    "weights": "Layers",
    "losses": "Losses",
    "models": "Model",
    "optimizers": "Model",
    "optimizer_base": "Model",
    "muon": "Model",
    "schedulers": "Model",
}
# Functions of ``neural_networks.functional`` (the reference kernels, the dispatch) go to the
# group of the class that calls them: the activations' kernels to the activations, the losses'
# (softmax with cross-entropy and the log-softmax it uses) to the losses, and every other kernel
# (dense, convolution, pooling, batch norm, dropout) to the layers.
_ACTIVATION_KERNELS = ("relu", "sigmoid", "tanh", "arctan", "softmax", "gelu", "gelu_tanh")
_FUNCTIONAL_GROUPS = {
    **{name: "Activations" for kernel in _ACTIVATION_KERNELS for name in (kernel, f"{kernel}_backward")},
    "_normal_cdf_and_density": "Activations",
    "_sigmoid_2u": "Activations",
    "log_softmax": "Losses",
    "cross_entropy": "Losses",
    "cross_entropy_backward": "Losses",
    "softmax_cross_entropy": "Losses",
}
_FUNCTIONAL_DEFAULT_GROUP = "Layers"

#: The reference kernels each registered layer, activation and loss calls (by registry name),
#: for the run report; the fast kernels are whole modules (:data:`FAST_IMPLEMENTATIONS`).
REFERENCE_KERNELS: dict[str, tuple[str, ...]] = {
    "fully_connected": ("dense_forward", "dense_backward"),
    "conv2d": ("_windows", "im2col", "col2im", "conv2d_forward", "conv2d_backward"),
    "pool2d": ("_windows", "col2im", "pool2d_forward", "pool2d_backward"),
    "batchnorm": (
        "batchnorm_train_forward",
        "batchnorm_train_backward",
        "batchnorm_eval_forward",
        "batchnorm_eval_backward",
    ),
    "dropout": ("dropout_forward", "dropout_backward"),
    "flatten": (),
    "linear": (),
    "relu": ("relu", "relu_backward"),
    "sigmoid": ("sigmoid", "sigmoid_backward"),
    "tanh": ("tanh", "tanh_backward"),
    "arctan": ("arctan", "arctan_backward"),
    "softmax": ("softmax", "softmax_backward"),
    "gelu": ("_normal_cdf_and_density", "gelu", "gelu_backward"),
    "gelu_tanh": ("_sigmoid_2u", "gelu_tanh", "gelu_tanh_backward"),
    "cross_entropy": ("cross_entropy", "cross_entropy_backward", "log_softmax", "softmax_cross_entropy"),
    "l2": (),
}


def _names(module: str, *attributes: str) -> tuple[str, ...]:
    """Dotted names of ``attributes`` of ``neural_networks.<module>``."""
    return tuple(f"neural_networks.{module}.{attribute}" for attribute in attributes)


#: What the spec asks students to implement, and what computes it: the layers are thin wrappers
#: around the operations of ``neural_networks.functional``, whose reference kernels (the textbook
#: code, which the switch ``set_kernels("reference")`` runs) are listed after them.
DEFAULT_IMPLEMENTATIONS: tuple[str, ...] = (
    *_names(
        "activations",
        *(
            f"{cls}.{method}"
            for cls in ("ReLU", "SoftMax", "Linear", "Sigmoid", "TanH", "ArcTan")
            for method in ("forward", "backward")
        ),
    ),
    *_names(
        "functional.reference",
        *(
            f"{kernel}{suffix}"
            for kernel in ("relu", "softmax", "sigmoid", "tanh", "arctan")
            for suffix in ("", "_backward")
        ),
    ),
    *_names(
        "layers",
        "FullyConnected._init_parameters",
        "base._ParametricLayer._init",
        "FullyConnected.forward",
        "FullyConnected._backward",
        "ActivatedLayer.backward",
        "ActivatedLayer.backward_preactivation",
        "Conv2D._init_parameters",
        "Conv2D.forward",
        "Conv2D._backward",
    ),
    *_names("functional.reference", "dense_forward", "dense_backward"),
    *_names("functional.reference", *REFERENCE_KERNELS["conv2d"]),
    *_names("layers", "Pool2D.forward", "Pool2D.backward"),
    *_names("functional.reference", "pool2d_forward", "pool2d_backward"),
    *_names("losses", "CrossEntropy.forward", "CrossEntropy.backward", "L2.forward", "L2.backward"),
    *_names("losses", "CrossEntropy.preactivation_gradient"),
    *_names("functional.reference", "log_softmax", "softmax_cross_entropy"),
    *_names(
        "models",
        "NeuralNetwork.forward",
        "NeuralNetwork.backward",
        "NeuralNetwork._backward",
        "NeuralNetwork.update",
        "NeuralNetwork.predict",
        "NeuralNetwork.train_step",
    ),
)

#: The dispatch (``neural_networks.functional``: the switch, fusion) and every module of the fast
#: kernels, each listed whole: what ``--include-fast`` adds to an appendix or a run report.
FAST_IMPLEMENTATIONS: tuple[str, ...] = (
    "neural_networks.functional",
    *_names(
        "functional",
        "geometry",
        "blocks",
        "scatter",
        "conv",
        "planes",
        "winograd",
        "pool",
        "batchnorm",
        "gelu_tables",
        "softmax_loss",
        "parallel",
        "allocator",
    ),
)


# ----------------------------------------------------------------------------- code appendix


class UnknownImplementation(ValueError):
    """A dotted name that names no function, class or module with Python source."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"unknown implementation {name!r}: {reason}")
        self.name = name


@dataclass(frozen=True)
class Implementation:
    """One entry of the appendix: its heading ``title``, its ``group`` and its ``source``."""

    name: str
    title: str
    group: str
    source: str
    obj: object = field(compare=False, repr=False)  # what was looked up, to list each object once


def _import_longest_prefix(name: str, parts: list[str]):
    """``(module, number of parts it took)`` for the longest importable prefix of ``parts``."""
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            return importlib.import_module(module_name), cut
        except ModuleNotFoundError as err:
            # Only "this prefix is not a module" means: try a shorter one. A module that exists
            # but fails to import (a missing dependency, a bug) keeps its traceback.
            if err.name is None or not (module_name == err.name or module_name.startswith(err.name + ".")):
                raise
    raise UnknownImplementation(name, f"there is no module {parts[0]!r}")


def _lookup(name: str) -> tuple[object, str]:
    """The object a dotted name names -- a module, then attributes of it -- and the attribute
    path after the module (``"ReLU.forward"``; empty for a module)."""
    parts = name.split(".") if isinstance(name, str) else []
    if not parts or not all(part.isidentifier() for part in parts):
        raise UnknownImplementation(name, "not a dotted Python name such as 'neural_networks.activations.ReLU.forward'")
    obj, cut = _import_longest_prefix(name, parts)
    for i in range(cut, len(parts)):
        try:
            obj = getattr(obj, parts[i])
        except AttributeError:
            raise UnknownImplementation(name, f"{'.'.join(parts[:i])} has no attribute {parts[i]!r}") from None
    if isinstance(obj, property):  # a property's code is its getter
        obj = obj.fget
    return obj, ".".join(parts[cut:])


def _defining_module(obj) -> tuple[str, str]:
    """``(package, short name)`` of the module that defines ``obj``: ``("neural_networks", "layers")``.
    A module of a sub-package that ``_MODULE_GROUPS`` names (``neural_networks.layers.dense``)
    counts as that sub-package."""
    module = inspect.getmodule(obj)
    package, _, short = (module.__name__ if module is not None else "").rpartition(".")
    parent_package, _, parent = package.rpartition(".")
    if parent_package == "neural_networks" and parent in _MODULE_GROUPS:
        return parent_package, parent
    return package, short


def _group_of(obj, attribute: str) -> str:
    """The appendix group of ``obj`` (see ``_MODULE_GROUPS`` and ``_FUNCTIONAL_GROUPS``): a whole
    module of ``neural_networks.functional`` other than the reference goes to :data:`FAST_GROUP`."""
    module = inspect.getmodule(obj)
    module_name = module.__name__ if module is not None else ""
    if module_name == "neural_networks.functional" or module_name.startswith("neural_networks.functional."):
        if inspect.ismodule(obj) and not module_name.endswith(".reference"):
            return FAST_GROUP
        return _FUNCTIONAL_GROUPS.get(attribute, _FUNCTIONAL_DEFAULT_GROUP)
    package, short = _defining_module(obj)
    if package != "neural_networks":
        return OTHER_GROUP
    return _MODULE_GROUPS.get(short, OTHER_GROUP)


def _title_of(obj, name: str, path: str) -> str:
    """An entry's heading: the attribute ``path`` (``"ReLU.forward"``), prefixed by its module
    where that is not one of the groups' own (``"reference.conv2d_forward"``), and saying
    where an inherited method is defined. A module is titled by its full name."""
    if not path:
        return name
    _, short = _defining_module(obj)
    title = path if short in _MODULE_GROUPS else f"{short}.{path}"
    qualname = getattr(obj, "__qualname__", "")
    if inspect.isfunction(obj) and "." in qualname and not path.endswith(qualname):
        title += f" (inherited from {qualname.rpartition('.')[0]})"
    return title


def resolve_implementation(name: str) -> Implementation:
    """The :class:`Implementation` of dotted ``name``; :class:`UnknownImplementation` (a
    ``ValueError``) names it when it does not resolve or has no Python source."""
    obj, path = _lookup(name)
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError):
        raise UnknownImplementation(
            name, f"a {type(obj).__name__} has no Python source to show; name a function, method, class or module"
        ) from None
    return Implementation(name, _title_of(obj, name, path), _group_of(obj, name.rpartition(".")[2]), source, obj)


def gather_implementations(implementations=None) -> dict[str, list[tuple[str, str]]]:
    """``{group: [(title, source), ...]}`` for dotted names ``implementations`` (default
    :data:`DEFAULT_IMPLEMENTATIONS`), groups in the order of :data:`GROUPS`, then
    :data:`FAST_GROUP` and ``"Other"``,
    entries in list order. Empty groups are left out; a name listed twice, or two names of one
    object (an inherited method), appear once."""
    names = DEFAULT_IMPLEMENTATIONS if implementations is None else implementations
    groups: dict[str, list[tuple[str, str]]] = {group: [] for group in (*GROUPS, FAST_GROUP, OTHER_GROUP)}
    seen: list[object] = []
    for name in names:
        entry = resolve_implementation(name)
        if any(entry.obj is other for other in seen):
            continue
        seen.append(entry.obj)
        groups[entry.group].append((entry.title, entry.source))
    return {group: items for group, items in groups.items() if items}


def code_appendix(fmt: str = "markdown", heading_level: int = 1, implementations=None) -> str:
    """The spec's code appendix as markdown or LaTeX text: one heading per group at
    ``heading_level`` (1 sections, 2 subsections, 3 subsubsections), one a level deeper per
    implementation, each followed by its source. ``implementations``: dotted names, default
    :data:`DEFAULT_IMPLEMENTATIONS`."""
    check_options(fmt, heading_level)
    groups = gather_implementations(implementations)
    return "\n".join(code_sections(fmt, heading_level, groups, depth=0)).rstrip() + "\n"


# ----------------------------------------------------------------------------- run report


# ----------------------------------------------------------------------------- rendering


def check_options(fmt: str, heading_level: int) -> None:
    """``ValueError`` unless ``fmt`` is one of :data:`FORMATS` (``"markdown"``, ``"latex"``) and
    ``heading_level`` one of :data:`HEADING_LEVELS` (1, 2, 3)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'markdown' or 'latex'; got {fmt!r}")
    if heading_level not in HEADING_LEVELS:
        raise ValueError(f"heading level must be 1, 2 or 3; got {heading_level!r}")


def _dedent(source: str) -> str:
    """``source`` without the indentation its least indented line has (a method's class indent)."""
    lines = source.splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] for l in lines)


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, for headings, captions and tables
    (code goes into listings verbatim)."""
    table = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(table.get(ch, ch) for ch in text)


def heading(fmt: str, level: int, depth: int, text: str) -> str:
    """A heading ``depth`` levels below ``level``: markdown ``#``s (at most six), or a LaTeX
    sectioning command (``\\section`` for level 1) with ``text`` escaped."""
    if fmt == "markdown":
        return f"{'#' * min(6, level + depth)} {text}"
    command = _LATEX_HEADINGS[min(level - 1 + depth, len(_LATEX_HEADINGS) - 1)]
    return f"\\{command}{{{latex_escape(text)}}}"


def heading_lines(fmt: str, level: int, depth: int, text: str) -> list[str]:
    """A heading directly followed by its content: markdown wants a blank line after it."""
    return [heading(fmt, level, depth, text)] + ([""] if fmt == "markdown" else [])


def listing(fmt: str, text: str, language: str = "python") -> list[str]:
    """``text`` as a verbatim code block: a fenced block, or a ``lstlisting`` environment
    (listings knows Python but not YAML, which goes in as plain text)."""
    if fmt == "markdown":
        return [f"```{language}", text.rstrip(), "```"]
    option = "[language=Python]" if language == "python" else ""
    return [f"\\begin{{lstlisting}}{option}", text.rstrip(), "\\end{lstlisting}"]


def _code_title(fmt: str, title: str) -> str:
    """An entry's heading text: in markdown the dotted name is code, a note after it is not."""
    if fmt == "latex":
        return title
    name, space, note = title.partition(" ")
    return f"`{name}`{space}{note}"


def code_sections(fmt: str, level: int, groups: dict, depth: int) -> list[str]:
    """One heading per group at ``depth``, then per entry a heading one deeper and its source."""
    out = []
    for group, items in groups.items():
        out += [heading(fmt, level, depth, group), ""]
        for title, source in items:
            out += [
                *heading_lines(fmt, level, depth + 1, _code_title(fmt, title)),
                *listing(fmt, _dedent(source)),
                "",
            ]
    return out
