"""Write-up generator: the spec's ``generate_submission.py`` grown up.

``build_report(run_dir, fmt="markdown"|"latex", heading_level=1|2|3)`` returns a document with
the run's config, its final figures, its plots, and the source code of the implementations
the run used, grouped as the spec groups them: activations, layers, losses and the model.
As in the spec, the LaTeX output is a fragment to ``\\input{}`` into a document (it needs the
``listings`` and ``graphicx`` packages).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import yaml

from . import activations, losses, models

__all__ = ["build_report", "implementations_used", "PLOTS"]

PLOTS = (
    ("loss.png", "Training and validation loss per epoch"),
    ("accuracy.png", "Training and validation accuracy per epoch"),
    ("loss_iterations.png", "Training loss per iteration"),
    ("confusion_matrix.png", "Confusion matrix on the test split"),
    ("first_layer.png", "First-layer weights"),
)

MODEL_METHODS = ("forward", "backward", "update", "predict", "train_step", "train", "evaluate")


def _layer_classes() -> dict:
    from .layers import LAYERS

    return dict(LAYERS)


def implementations_used(config: dict) -> dict[str, list[tuple[str, str]]]:
    """``{group: [(title, source), ...]}`` for the activations, layers, loss and model of a run."""
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
    groups: dict[str, list[tuple[str, str]]] = {"Activations": [], "Layers": [], "Losses": [], "Model": []}
    for name in act_names:
        cls = activations.ACTIVATIONS[str(name).lower()]
        groups["Activations"].append((cls.__name__, inspect.getsource(cls)))
    seen = []
    for layer in layer_configs:
        cls = layer_classes[str(layer["name"]).lower()]
        if cls not in seen:
            seen.append(cls)
            groups["Layers"].append((cls.__name__, inspect.getsource(cls)))
    loss = config["model"]["loss"]
    loss_name = loss["name"] if isinstance(loss, dict) else loss
    loss_cls = losses.LOSSES[str(loss_name).lower()]
    groups["Losses"].append((loss_cls.__name__, inspect.getsource(loss_cls)))
    for method in MODEL_METHODS:
        groups["Model"].append((f"NeuralNetwork.{method}", inspect.getsource(getattr(models.NeuralNetwork, method))))
    return groups


def _dedent(source: str) -> str:
    lines = source.splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] for l in lines)


def _latex_escape(text: str) -> str:
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(ch, ch) for ch in text)


def _figure_lines(figures: dict) -> list[tuple[str, str]]:
    labels = [("test_accuracy", "test accuracy"), ("val_accuracy", "final validation accuracy"),
              ("best_val_accuracy", "best validation accuracy"), ("test_loss", "test loss"),
              ("epochs", "epochs"), ("train_seconds", "training time (s)"), ("peak_memory_mb", "peak memory (MiB)")]
    rows = []
    for key, label in labels:
        if figures.get(key) is not None:
            value = figures[key]
            rows.append((label, f"{value:.4f}" if isinstance(value, float) and "accuracy" in key or key == "test_loss"
                         else str(value)))
    return rows


def build_report(run_dir, fmt: str = "markdown", heading_level: int = 1, output=None) -> str:
    """The report of run ``run_dir`` as markdown or LaTeX text. Image paths are written
    relative to ``output``'s folder when given, else relative to the current directory."""
    if fmt not in ("markdown", "latex"):
        raise ValueError(f"format must be 'markdown' or 'latex'; got {fmt!r}")
    if heading_level not in (1, 2, 3):
        raise ValueError(f"heading level must be 1, 2 or 3; got {heading_level!r}")
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    metrics_path = run_dir / "metrics.json"
    figures = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    base = Path(output).resolve().parent if output else Path.cwd()
    plots = [(os.path.relpath((run_dir / f).resolve(), base), caption) for f, caption in PLOTS if (run_dir / f).is_file()]
    groups = implementations_used(config)
    config_text = yaml.safe_dump(config, sort_keys=False)
    if fmt == "markdown":
        return _markdown(config["name"], config_text, _figure_lines(figures), plots, groups, heading_level)
    return _latex(config["name"], config_text, _figure_lines(figures), plots, groups, heading_level)


def _markdown(name, config_text, figure_rows, plots, groups, level) -> str:
    h = lambda depth, text: f"{'#' * min(6, level + depth)} {text}"  # noqa: E731
    out = [h(0, f"Run `{name}`"), "", h(1, "Configuration"), "", "```yaml", config_text.rstrip(), "```", ""]
    if figure_rows:
        out += [h(1, "Results"), "", "| figure | value |", "|---|---:|"]
        out += [f"| {label} | {value} |" for label, value in figure_rows]
        out.append("")
    if plots:
        out += [h(1, "Plots"), ""]
        for path, caption in plots:
            out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    for group, items in groups.items():
        out += [h(1, group), ""]
        for title, source in items:
            out += [h(2, f"`{title}`"), "", "```python", _dedent(source).rstrip(), "```", ""]
    return "\n".join(out)


def _latex(name, config_text, figure_rows, plots, groups, level) -> str:
    commands = ["section", "subsection", "subsubsection", "paragraph", "subparagraph"]
    h = lambda depth, text: f"\\{commands[min(level - 1 + depth, 4)]}{{{_latex_escape(text)}}}"  # noqa: E731
    out = [h(0, f"Run {name}"), "", h(1, "Configuration"), "\\begin{lstlisting}", config_text.rstrip(),
           "\\end{lstlisting}", ""]
    if figure_rows:
        out += [h(1, "Results"), "\\begin{tabular}{lr}", "\\hline"]
        out += [f"{_latex_escape(label)} & {_latex_escape(value)} \\\\" for label, value in figure_rows]
        out += ["\\hline", "\\end{tabular}", ""]
    if plots:
        out += [h(1, "Plots")]
        for path, caption in plots:
            out += ["\\begin{figure}[h]", "\\centering", f"\\includegraphics[width=0.7\\linewidth]{{{path}}}",
                    f"\\caption{{{_latex_escape(caption)}}}", "\\end{figure}", ""]
    for group, items in groups.items():
        out += [h(1, group), ""]
        for title, source in items:
            out += [h(2, title), "\\begin{lstlisting}[language=Python]", _dedent(source).rstrip(),
                    "\\end{lstlisting}", ""]
    return "\n".join(out)
