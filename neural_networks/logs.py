"""Experiment logging (the spec's ``Logger``): one directory per run.

``experiments/<name>/`` receives, as training goes:

* ``config.json`` (model and data arguments) — written at construction;
* ``metrics.csv`` — one row per epoch (train/validation loss and accuracy, learning rate, seconds);
* ``last.npz`` every epoch and ``best.npz`` when validation accuracy improves (model checkpoints);
* ``loss.png`` and ``accuracy.png`` (per epoch) and ``loss_iterations.png`` (per mini-batch).

Every file is written atomically. Pass ``logger=Logger(...)`` to the model; it calls
``on_epoch_end`` and ``on_train_end``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from .io import atomic_write
from . import plots

__all__ = ["Logger", "write_json", "read_metrics_csv", "METRIC_COLUMNS"]

METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def write_json(path, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, default=_json_default)
        handle.write("\n")


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def read_metrics_csv(path) -> list[dict]:
    """Rows of a ``metrics.csv`` with numbers parsed (empty cells become None)."""
    with open(path, newline="") as handle:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(handle)]


class Logger:
    """Saves a run's configuration, metrics, checkpoints and plots under ``save_dir/name``.

    ``save``: write files at all; ``plot``: draw the PNG plots; ``checkpoints``: write
    ``last.npz`` / ``best.npz``. ``name`` defaults to ``model_args["name"]`` (the spec's
    ``model_name``); an existing directory of that name is reused (its files overwritten).
    """

    def __init__(self, model_args=None, data_args=None, save: bool = False, plot: bool = False,
                 save_dir="experiments/", name: str | None = None, checkpoints: bool = True,
                 plot_every_seconds: float = 30.0) -> None:
        self.model_args = dict(model_args or {})
        self.data_args = dict(data_args or {})
        self.save = bool(save)
        self.plot = bool(plot)
        self.checkpoints = bool(checkpoints)
        self.plot_every_seconds = float(plot_every_seconds)
        self._last_plot = time.monotonic()
        self.name = name or str(self.model_args.get("name", "model"))
        self.directory = Path(save_dir) / self.name
        self.rows: list[dict] = []
        self.best_val_accuracy = float("-inf")
        if self.save:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_json(self.directory / "config.json", {"model_args": self.model_args, "data_args": self.data_args})

    def path(self, filename: str) -> Path:
        return self.directory / filename

    def on_epoch_end(self, model, epoch: int, metrics: dict) -> None:
        """Record one epoch; checkpoint and redraw the curves."""
        self.rows.append({"epoch": epoch + 1, **metrics})
        if not self.save:
            return
        self.write_metrics_csv()
        val = metrics.get("val_accuracy", metrics.get("accuracy"))
        improved = val is not None and val > self.best_val_accuracy
        if improved:
            self.best_val_accuracy = val
        if self.checkpoints:
            extra = {"epoch": epoch + 1, "best_val_accuracy": self.best_val_accuracy}
            model.save(self.path("last.npz"), extra=extra)
            if improved:
                model.save(self.path("best.npz"), extra=extra)
        # Drawing takes ~0.3 s: redraw the curves during training at most every plot_every_seconds.
        if self.plot and time.monotonic() - self._last_plot >= self.plot_every_seconds:
            self.plot_epochs()
            self._last_plot = time.monotonic()

    def on_train_end(self, model, history) -> None:
        if self.save and self.plot and self.rows:
            self.plot_epochs()
        if self.save and self.plot and getattr(history, "iteration_loss", None):
            plots.plot_iteration_loss(history.iteration_loss, self.path("loss_iterations.png"),
                                      title=f"{self.name}: training loss per iteration",
                                      smooth=max(1, len(history.iteration_loss) // 50))

    def write_metrics_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        with atomic_write(self.path("metrics.csv"), "w", newline="") as handle:
            handle.write(buffer.getvalue())

    def plot_epochs(self) -> None:
        columns = {k: [row.get(k) for row in self.rows] for k in METRIC_COLUMNS}
        history = {k: v for k, v in columns.items() if all(x is not None for x in v)}
        for metric in ("loss", "accuracy"):
            if metric in history:
                plots.plot_curves(history, metric, self.path(f"{metric}.png"), title=f"{self.name}: {metric} per epoch")
