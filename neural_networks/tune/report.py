"""A study's report, written to its folder when the study ends and by ``neural-networks tune-report``:

- ``trials.csv`` (and ``trials.md``, the same table in markdown): number, state, value, each
  parameter, duration and the fail reason where there is one;
- ``best_config.yaml``: the base config with the best trial's values, named ``<study>-best``,
  ready for ``neural-networks train``;
- ``history.png`` (value per trial and the best so far), ``parallel_coordinates.png``,
  ``importances.png`` (Optuna's default evaluator, PED-ANOVA, which needs no scikit-learn) and,
  for a grid over two parameters, ``heatmap.png`` (mean value per cell, annotated).

The plots are drawn with plain matplotlib (Optuna's matplotlib module is experimental) and
written atomically like every other figure of the library (:func:`neural_networks.plots.save_figure`).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np

from ..experiments import ConfigError, dump_config, validate_config
from ..experiments.config_files import read_yaml
from ..io import atomic_write
from ..plots import save_figure
from .space import SearchSpace, apply_params, choice_index
from .storage import ATTR, GIVEN_BACK, JOURNAL_NAME, STUDY_FILE, open_storage, require_optuna
from .trial import describe, trial_name

__all__ = [
    "write_report",
    "report_from_folder",
    "trial_rows",
    "markdown_table",
    "plot_history",
    "plot_parallel_coordinates",
    "plot_importances",
    "plot_grid_heatmap",
    "grid_means",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _study_meta(study) -> tuple[dict, SearchSpace, str]:
    meta = study.user_attrs.get(ATTR)
    if not meta:
        raise ConfigError(f"study {study.study_name!r} was not started by neural-networks tune (no {ATTR} attribute)")
    return meta["base_config"], SearchSpace.from_dict(meta["space"], f"study {study.study_name!r}"), meta["sampler"]


def trial_rows(trials, space: SearchSpace) -> list[dict]:
    """One dict per trial (by number): ``number, state, value, <parameters>, duration_s, fail_reason``."""
    retries = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        reason = t.user_attrs.get("fail_reason", "")
        if t.user_attrs.get(GIVEN_BACK) and t.number in retries:
            reason = f"{reason}; retried as trial {retries[t.number]}"
        row = {"number": t.number, "state": t.state.name.lower(), "value": t.value}
        row.update({key: t.params.get(key) for key in space})
        # a handed-back trial's duration says when it was found, not how long it trained
        given_back = t.user_attrs.get(GIVEN_BACK)
        row["duration_s"] = None if t.duration is None or given_back else round(t.duration.total_seconds(), 2)
        row["fail_reason"] = reason
        rows.append(row)
    return rows


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return buffer.getvalue()


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """The trials as a markdown table (values to four decimals)."""

    def cell(column, value):
        if value is None:
            return ""
        if column == "value":
            return f"{value:.4f}"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value).replace("|", "\\|")

    align = ["---" if c in ("state", "fail_reason") else "---:" for c in columns]  # numbers to the right
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(study, study_dir, out=print) -> dict:
    """Write the study's report into ``study_dir``; returns a summary (counts, best trial, files)."""
    from optuna.trial import TrialState

    study_dir = Path(study_dir)
    base_config, space, sampler = _study_meta(study)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows = trial_rows(trials, space)
    columns = ["number", "state", "value", *space, "duration_s", "fail_reason"]
    with atomic_write(study_dir / "trials.csv", "w", newline="") as handle:
        handle.write(_csv_text(rows, columns))
    with atomic_write(study_dir / "trials.md", "w") as handle:
        handle.write(markdown_table(rows, columns))
    files = ["trials.csv", "trials.md"]

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None  # ties: the earliest
    if best is not None:
        _write_best_config(study.study_name, best, base_config, study_dir / "best_config.yaml")
        files.append("best_config.yaml")
    plot_history(trials, study_dir / "history.png", title=f"{study.study_name}: validation accuracy per trial")
    plot_parallel_coordinates(complete, space, study_dir / "parallel_coordinates.png")
    plot_importances(study, complete, space, study_dir / "importances.png")
    files += ["history.png", "parallel_coordinates.png", "importances.png"]
    if sampler == "grid" and len(space) == 2:
        pruned = [t for t in trials if t.state == TrialState.PRUNED]
        plot_grid_heatmap(
            complete,
            space,
            study_dir / "heatmap.png",
            title=f"{study.study_name}: mean validation accuracy",
            pruned=pruned,
        )
        files.append("heatmap.png")

    given_back = {t.number for t in trials if t.user_attrs.get(GIVEN_BACK)}
    counts = {
        state: sum(1 for row in rows if row["state"] == state and row["number"] not in given_back)
        for state in ("complete", "pruned", "fail")
    }
    summary = {
        "study": study.study_name,
        "trials": len(rows),
        **counts,
        "given_back": len(given_back),
        "best_trial": None if best is None else best.number,
        "best_value": None if best is None else best.value,
        "best_params": None if best is None else dict(best.params),
        "files": [str(study_dir / name) for name in files],
    }
    best_text = (
        "no completed trial yet"
        if best is None
        else f"best {trial_name(best.number)}: val accuracy {best.value:.4f} ({describe(best.params)})"
    )
    out(
        f"study {study.study_name}: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed"
        f"{f', {len(given_back)} interrupted and queued again' if given_back else ''}; {best_text} -> {study_dir}"
    )
    return summary


def _write_best_config(study_name: str, best, base_config: dict, path: Path) -> None:
    config = apply_params(base_config, best.params)
    config["name"] = f"{study_name}-best"
    config = validate_config(config)
    header = (
        f"# The best trial of study {study_name}: {trial_name(best.number)}, validation accuracy {best.value:.4f}\n"
        f"# ({describe(best.params)}). Train it with: neural-networks train {path}\n"
    )
    with atomic_write(path, "w") as handle:
        handle.write(header + dump_config(config))


def report_from_folder(folder, storage: str | None = None, out=print) -> dict:
    """:func:`write_report` for the study whose folder (``<out>/<study>``) is ``folder``; the
    storage is the one ``study.yaml`` names unless ``storage`` is given."""
    optuna = require_optuna()
    folder = Path(folder)
    info_path = folder / STUDY_FILE
    # written as JSON, read as YAML (JSON is YAML): a hand-edited file may be either, and a key
    # given twice is refused with both lines instead of the last one winning
    missing = f"{folder} is not a study folder (no {STUDY_FILE}); start a study with neural-networks tune"
    info = read_yaml(info_path, missing)
    if not isinstance(info, dict) or "study" not in info or "storage" not in info:
        raise ConfigError(f"{info_path}: not a study file (a mapping with the keys study and storage)")
    name, stored = info["study"], info["storage"]
    url = storage if storage is not None else (None if stored == JOURNAL_NAME else stored)
    if url is None and not (folder / JOURNAL_NAME).is_file():
        raise ConfigError(f"{folder / JOURNAL_NAME} is missing: the study's trials are gone")
    if storage is None and url is not None and "***" in url:
        raise ConfigError(f"{info_path} holds the storage URL without its password ({url}); pass it with --storage")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url, folder))
    except KeyError:
        raise ConfigError(f"no study {name!r} in {url or folder / JOURNAL_NAME}") from None
    return write_report(study, folder, out=out)


# --- plots ----------------------------------------------------------------------------------


def _note_figure(path, title: str, note: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True)
    return save_figure(fig, path)


def plot_history(trials, path, title: str = "validation accuracy per trial") -> Path:
    """Each completed trial's value, each pruned trial's last reported value, and the best so far."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None]
    if not done:
        return _note_figure(path, title, "no completed or pruned trial yet")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    pruned = [t for t in done if t.state == TrialState.PRUNED]
    if complete:
        ax.scatter([t.number for t in complete], [t.value for t in complete], label="complete", zorder=3)
        best, xs, ys = -math.inf, [], []
        for t in complete:
            best = max(best, t.value)
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    if pruned:
        ax.scatter(
            [t.number for t in pruned], [t.value for t in pruned], marker="x", color="gray", label="pruned (last epoch)"
        )
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def _axis_ticks(dist) -> list[tuple[float, str]]:
    """``(position, label)`` ticks of a parameter axis: every choice, or the ends and middle."""
    if dist.type == "categorical":
        return [(dist.position(c), str(c)) for c in dist.choices]
    if dist.log:
        values = [dist.low, math.sqrt(dist.low * dist.high), dist.high]
    else:
        values = [dist.low, (dist.low + dist.high) / 2, dist.high]
    if dist.type == "int" and not dist.log:
        values = [dist.low, dist.high]
    return [(dist.position(v), f"{v:.3g}") for v in values]


def plot_parallel_coordinates(complete, space: SearchSpace, path, title: str = "parallel coordinates") -> Path:
    """One line per completed trial across an axis per parameter and one for the value, coloured
    by the value; categorical axes space their choices evenly, log ranges are drawn on a log scale."""
    lines = []
    for t in complete:
        positions = [dist.position(t.params[key]) if key in t.params else None for key, dist in space.items()]
        if None not in positions:
            lines.append((positions, t.value))
    if not lines:
        return _note_figure(path, title, "no completed trial yet")
    plt = _pyplot()
    from matplotlib import cm, colors

    values = np.array([value for _, value in lines], dtype=float)
    low, high = float(values.min()), float(values.max())
    norm = colors.Normalize(vmin=low, vmax=high if high > low else low + 1e-9)
    cmap = plt.get_cmap("viridis")
    n_axes = len(space) + 1
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 * n_axes), 4.2))
    for positions, value in sorted(lines, key=lambda line: line[1]):  # best on top
        y_value = 0.5 if high == low else (value - low) / (high - low)
        ax.plot(range(n_axes), [*positions, y_value], color=cmap(norm(value)), alpha=0.8, linewidth=1.5)
    ticks = [_axis_ticks(dist) for dist in space.distributions.values()]
    ticks.append([(0.0, f"{low:.3f}"), (1.0, f"{high:.3f}")] if high > low else [(0.5, f"{low:.3f}")])
    for j, axis_ticks in enumerate(ticks):
        ax.axvline(j, color="black", linewidth=0.8)
        for position, label in axis_ticks:
            ax.text(j + 0.03, position, label, fontsize=7, va="center")
    ax.set_xticks(range(n_axes), labels=[*space, "validation accuracy"], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, n_axes - 0.6)
    ax.set_ylim(-0.05, 1.05)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="validation accuracy", fraction=0.04)
    ax.set_title(f"{title} ({len(lines)} completed trials)")
    return save_figure(fig, path)


def plot_importances(study, complete, space: SearchSpace, path, title: str = "parameter importances") -> Path:
    """Optuna's parameter importances (its default evaluator) as bars; a study with one
    parameter, fewer than two completed trials or importances that cannot be told apart gets a
    note instead of (or beside) the bars."""
    note = ""
    if len(space) == 1:
        importances = {next(iter(space)): 1.0}
        note = "a single parameter: all of the variation is its own"
    elif len(complete) < 2:
        return _note_figure(path, title, f"importances need at least 2 completed trials; the study has {len(complete)}")
    else:
        import optuna

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                importances = optuna.importance.get_param_importances(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                return _note_figure(path, title, f"importances could not be computed: {err}")
        if caught:
            note = str(caught[0].message)
    if not importances:
        return _note_figure(path, title, "no parameter is set in every completed trial")
    plt = _pyplot()
    names = list(importances)[::-1]  # most important at the top
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.45 * len(names)))
    ax.barh(names, [importances[name] for name in names], color="tab:blue")
    for y, name in enumerate(names):
        ax.text(importances[name], y, f" {importances[name]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(f"{title} ({len(complete)} completed trials)")
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, color="gray", va="top")
    return save_figure(fig, path)


def grid_means(complete, space: SearchSpace) -> tuple[list, list, np.ndarray, np.ndarray]:
    """``(row values, column values, mean value per cell, trials per cell)`` of a two-parameter
    grid: rows the space's first key, columns its second; empty cells are NaN."""
    (row_key, row_dist), (col_key, col_dist) = list(space.items())
    rows, cols = row_dist.grid_values(row_key), col_dist.grid_values(col_key)
    sums = np.zeros((len(rows), len(cols)))
    counts = np.zeros((len(rows), len(cols)), dtype=int)
    for t in complete:
        i, j = choice_index(rows, t.params.get(row_key)), choice_index(cols, t.params.get(col_key))
        if i is not None and j is not None:
            sums[i, j] += t.value
            counts[i, j] += 1
    with np.errstate(invalid="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return rows, cols, means, counts


def plot_grid_heatmap(complete, space: SearchSpace, path, title: str = "mean validation accuracy", pruned=()) -> Path:
    """Heat map of a two-parameter grid: the mean value of each cell's completed trials, written
    in the cell (with the count where a point ran more than once); a cell without a completed
    trial is grey and says ``pruned`` where its trial was pruned, else ``-``."""
    plt = _pyplot()
    (row_key, _), (col_key, _) = list(space.items())
    rows, cols, means, counts = grid_means(complete, space)
    _, _, _, pruned_counts = grid_means(pruned, space)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(cols), 1.2 + 0.6 * len(rows)))
    finite = means[np.isfinite(means)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgray")  # cells without a completed trial
    image = ax.imshow(np.ma.masked_invalid(means), cmap=cmap, vmin=low, vmax=high if high > low else low + 1e-9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="validation accuracy")
    ax.set_xticks(range(len(cols)), labels=[str(c) for c in cols])
    ax.set_yticks(range(len(rows)), labels=[str(r) for r in rows])
    ax.set_xlabel(col_key)
    ax.set_ylabel(row_key)
    ax.set_title(title)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if counts[i, j] == 0:
                ax.text(j, i, "pruned" if pruned_counts[i, j] else "-", ha="center", va="center", fontsize=8)
                continue
            share = 0.5 if high == low else (means[i, j] - low) / (high - low)
            text = f"{means[i, j]:.3f}" + (f"\n(n={counts[i, j]})" if counts[i, j] > 1 else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if share < 0.5 else "black")
    return save_figure(fig, path)
