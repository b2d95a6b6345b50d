"""A report of one training run: ``build_report(run_dir, fmt, heading_level, include_fast=False)``
is a document about one run directory -- its config, final figures, plots, and the source of the
classes the run used with the reference kernels they call, grouped as the spec's code appendix
(:mod:`neural_networks.appendix`) groups them. As in the spec, the LaTeX output is a fragment to
``\\input{}`` into a document (it needs the ``listings`` and ``graphicx`` packages); the
markdown stands by itself.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

import yaml

from . import activations, losses, models
from .appendix import (
    FAST_GROUP,
    FAST_IMPLEMENTATIONS,
    GROUPS,
    REFERENCE_KERNELS,
    check_options,
    code_sections,
    heading,
    heading_lines,
    latex_escape,
    listing,
)
from .experiments import load_config, load_valid_config, unfinished_note
from .logs import read_json

__all__ = ["build_report", "implementations_used", "PLOTS", "MODEL_METHODS"]

#: A run's pictures the report includes when they exist, with their captions.
PLOTS = (
    ("loss.png", "Training and validation loss per epoch"),
    ("accuracy.png", "Training and validation accuracy per epoch"),
    ("loss_iterations.png", "Training loss per iteration"),
    ("confusion_matrix.png", "Confusion matrix on the test split"),
    ("first_layer.png", "First-layer weights"),
)

#: The :class:`~neural_networks.models.NeuralNetwork` methods whose code the report lists.
MODEL_METHODS = ("forward", "backward", "update", "predict", "train_step", "train", "evaluate")


def _layer_classes() -> dict:
    from .layers import LAYERS

    return dict(LAYERS)


def implementations_used(config: dict, include_fast: bool = False) -> dict[str, list[tuple[str, str]]]:
    """``{group: [(title, source), ...]}`` for the activations, layers, loss and model of a run,
    each followed by the reference kernels it calls (:data:`REFERENCE_KERNELS`); with
    ``include_fast`` also the dispatch and the fast kernels' modules (:data:`FAST_IMPLEMENTATIONS`)."""
    from .functional import reference

    layer_configs = config["model"]["layers"]
    layer_classes = _layer_classes()
    act_names = []
    for layer in layer_configs:
        name = layer.get("activation")
        cls = layer_classes.get(str(layer["name"]).lower())
        if name is None and cls is not None:
            default = inspect.signature(cls.__init__).parameters.get("activation")
            name = default.default if default is not None and default.default is not inspect.Parameter.empty else None
        if name is not None and name not in act_names:
            act_names.append(name)
    groups: dict[str, list[tuple[str, str]]] = {group: [] for group in GROUPS}
    kernels_seen: set[str] = set()

    def add(group: str, key: str, cls) -> None:
        groups[group].append((cls.__name__, inspect.getsource(cls)))
        for kernel in REFERENCE_KERNELS.get(key, ()):
            if kernel not in kernels_seen:
                kernels_seen.add(kernel)
                groups[group].append((f"reference.{kernel}", inspect.getsource(getattr(reference, kernel))))

    for name in act_names:
        key = activations.ACTIVATIONS.canonical(str(name))
        add("Activations", key, activations.ACTIVATIONS[key])
    seen = []
    for layer in layer_configs:
        key = str(layer["name"]).lower()
        cls = layer_classes[key]
        if cls not in seen:
            seen.append(cls)
            add("Layers", key, cls)
    loss = config["model"]["loss"]
    loss_name = losses.LOSSES.canonical(str(loss["name"] if isinstance(loss, dict) else loss))
    add("Losses", loss_name, losses.LOSSES[loss_name])
    for method in MODEL_METHODS:
        groups["Model"].append((f"NeuralNetwork.{method}", inspect.getsource(getattr(models.NeuralNetwork, method))))
    if include_fast:
        groups[FAST_GROUP] = [(name, inspect.getsource(importlib.import_module(name))) for name in FAST_IMPLEMENTATIONS]
    return groups


def _figure_lines(figures: dict) -> list[tuple[str, str]]:
    labels = [
        ("test_accuracy", "test accuracy"),
        ("val_accuracy", "final validation accuracy"),
        ("best_val_accuracy", "best validation accuracy"),
        ("test_loss", "test loss"),
        ("epochs", "epochs"),
        ("train_seconds", "training time (s)"),
        ("peak_memory_mb", "peak memory (MiB)"),
    ]
    rows = []
    for key, label in labels:
        if figures.get(key) is not None:
            value = figures[key]
            rows.append(
                (
                    label,
                    f"{value:.4f}"
                    if isinstance(value, float) and "accuracy" in key or key == "test_loss"
                    else str(value),
                )
            )
    return rows


def build_report(
    run_dir, fmt: str = "markdown", heading_level: int = 1, output=None, include_fast: bool = False
) -> str:
    """The report of run ``run_dir`` as markdown or LaTeX text. Image paths are written
    relative to ``output``'s folder when given, else relative to the current directory;
    ``include_fast`` adds the fast kernels' modules (see :func:`implementations_used`)."""
    check_options(fmt, heading_level)
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    valid = load_valid_config(config_path)  # a damaged config is refused, naming the file
    config = load_config(config_path)  # and reported as written, without the defaults validation adds
    note = unfinished_note(run_dir, valid)
    metrics_path = run_dir / "metrics.json"
    figures = read_json(metrics_path) if metrics_path.is_file() else {}
    base = Path(output).resolve().parent if output else Path.cwd()
    plots = [
        (os.path.relpath((run_dir / f).resolve(), base), caption) for f, caption in PLOTS if (run_dir / f).is_file()
    ]
    groups = implementations_used(config, include_fast=include_fast)
    config_text = yaml.safe_dump(config, sort_keys=False)
    if fmt == "markdown":
        return _markdown(config["name"], config_text, _figure_lines(figures), plots, groups, heading_level, note)
    return _latex(config["name"], config_text, _figure_lines(figures), plots, groups, heading_level, note)


def _markdown(name, config_text, figure_rows, plots, groups, level, note=None) -> str:
    fmt = "markdown"
    out = [
        heading(fmt, level, 0, f"Run `{name}`"),
        "",
        *([f"> **Unfinished run.** {note}.", ""] if note else []),
        *heading_lines(fmt, level, 1, "Configuration"),
        *listing(fmt, config_text, "yaml"),
        "",
    ]
    if figure_rows:
        out += [*heading_lines(fmt, level, 1, "Results"), "| figure | value |", "|---|---:|"]
        out += [f"| {label} | {value} |" for label, value in figure_rows]
        out.append("")
    if plots:
        out += heading_lines(fmt, level, 1, "Plots")
        for path, caption in plots:
            out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    out += code_sections(fmt, level, groups, depth=1)
    return "\n".join(out)


def _latex(name, config_text, figure_rows, plots, groups, level, note=None) -> str:
    fmt = "latex"
    out = [
        heading(fmt, level, 0, f"Run {name}"),
        "",
        *([f"\\textbf{{Unfinished run.}} {latex_escape(note)}.", ""] if note else []),
        *heading_lines(fmt, level, 1, "Configuration"),
        *listing(fmt, config_text, "yaml"),
        "",
    ]
    if figure_rows:
        out += [*heading_lines(fmt, level, 1, "Results"), "\\begin{tabular}{lr}", "\\hline"]
        out += [f"{latex_escape(label)} & {latex_escape(value)} \\\\" for label, value in figure_rows]
        out += ["\\hline", "\\end{tabular}", ""]
    if plots:
        out += heading_lines(fmt, level, 1, "Plots")
        for path, caption in plots:
            out += [
                "\\begin{figure}[h]",
                "\\centering",
                f"\\includegraphics[width=0.7\\linewidth]{{{path}}}",
                f"\\caption{{{latex_escape(caption)}}}",
                "\\end{figure}",
                "",
            ]
    out += code_sections(fmt, level, groups, depth=1)
    return "\n".join(out)


# ----------------------------------------------------------------------------- shared rendering
