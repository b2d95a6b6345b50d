"""Experiment logging (the spec's ``Logger``): one directory per run.

``Logger(model_name=..., model_args=..., data_args=..., save=True, plot=True, save_dir="experiments/")``
(the course's arguments; ``name=`` also works) writes to ``save_dir/model_name/``, as training goes:

* ``config.json`` (model and data arguments, AttrDicts written as plain JSON) -- at construction;
* ``metrics.csv`` -- one row per epoch (train/validation loss and accuracy, learning rate, seconds);
* ``parameters.csv`` -- each parameter array's min and max after every epoch (``W0``, ``b0``, ...:
  parameter name and layer index, as the course's logger names them);
* ``last.npz`` every epoch and ``best.npz`` when validation accuracy improves (model checkpoints,
  written by the logger's :class:`~neural_networks.callbacks.ModelCheckpoint`, ``logger.checkpoint``);
* ``loss.png``, ``accuracy.png`` and ``error.png`` (1 - accuracy) per epoch, ``parameters.png``
  (the min/max curves) and ``loss_iterations.png`` (per mini-batch).

Every file is written atomically. The Logger is a :class:`~neural_networks.callbacks.Callback`:
pass ``logger=Logger(...)`` to the model (every ``train`` then runs it, and its checkpoint) or
pass it to ``fit(..., callbacks=[...])``. A resumed run gets its rows back from the
checkpoint's History and its parameter ranges from the logger's own saved state.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np

from . import plots
from .callbacks import Callback, ModelCheckpoint
from .io import atomic_write
from .utils import to_plain

__all__ = [
    "Logger",
    "write_json",
    "read_json",
    "read_metrics_csv",
    "read_parameters_csv",
    "parameter_ranges",
    "METRIC_COLUMNS",
    "RANGE_COLUMNS",
]

#: The columns of ``metrics.csv``, one row per epoch.
METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
#: The columns of ``parameters.csv``: each parameter's smallest and largest value per epoch.
RANGE_COLUMNS = ("epoch", "parameter", "min", "max")


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


def parameter_ranges(model) -> dict[str, tuple[float, float]]:
    """``{"W0": (min, max), "b0": ..., ...}`` over every parameter array of ``model`` (parameter
    name followed by the layer's index)."""
    return {
        f"{name}{i}": (float(np.min(value)), float(np.max(value)))
        for i, layer in enumerate(model.layers)
        for name, value in layer.parameters.items()
        if value.size
    }


def _csv_text(columns, rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return buffer.getvalue()


def read_json(path) -> dict:
    """The JSON object in ``path`` (e.g. a run's ``metrics.json``); ``ValueError`` naming the file
    if it is not readable JSON holding an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_table(path, columns, convert) -> list[dict]:
    """The rows of the CSV file ``path`` (which must have ``columns``), each passed through
    ``convert``; ``ValueError`` naming the file and line for anything malformed."""
    rows = []
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"no column {', '.join(missing)}")
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(f"line {reader.line_num}: {len(reader.fieldnames)} columns expected")
                try:
                    rows.append(convert(row))
                except ValueError as err:
                    raise ValueError(f"line {reader.line_num}: {err}") from None
    except (UnicodeDecodeError, csv.Error, ValueError) as err:
        raise ValueError(f"{path}: not a table of this run ({err})") from None
    return rows


def read_metrics_csv(path) -> list[dict]:
    """Rows of a ``metrics.csv`` with numbers parsed (empty cells become None); ``ValueError``
    naming the file and line for a cell that is not a number or a row of the wrong length."""
    return _read_table(path, ("epoch",), lambda row: {k: (float(v) if v != "" else None) for k, v in row.items()})


def read_parameters_csv(path) -> list[dict]:
    """Rows of a ``parameters.csv``: ``epoch`` (int), ``parameter``, ``min``, ``max`` (floats)."""

    def convert(row):
        return {
            "epoch": int(row["epoch"]),
            "parameter": row["parameter"],
            "min": float(row["min"]),
            "max": float(row["max"]),
        }

    return _read_table(path, RANGE_COLUMNS, convert)


class Logger(Callback):
    """Saves a run's configuration, metrics, parameter ranges, checkpoints and plots under
    ``save_dir/model_name``.

    ``model_name`` (or ``name``) defaults to ``model_args["name"]``; ``save``: write files at all;
    ``plot``: draw the PNG plots; ``checkpoints``: write ``last.npz`` / ``best.npz`` (through
    ``self.checkpoint``, a :class:`ModelCheckpoint` on validation accuracy that training runs
    alongside the logger; ``None`` without ``save`` or ``checkpoints``). An existing
    directory of that name is reused (its files overwritten). As in the course, ``save_dir`` is
    afterwards the run directory itself, as a string ending in a separator (``directory`` is
    the same as a ``Path``); ``model_args`` and ``data_args`` are kept as given.
    """

    def __init__(
        self,
        model_name: str | None = None,
        model_args=None,
        data_args=None,
        save: bool = False,
        plot: bool = False,
        save_dir="experiments/",
        *,
        name: str | None = None,
        checkpoints: bool = True,
        plot_every_seconds: float = 30.0,
    ) -> None:
        if model_name is not None and name is not None and str(model_name) != str(name):
            raise ValueError(f"Logger: model_name={model_name!r} and name={name!r} disagree; give one of them")
        self.model_args = model_args if model_args is not None else {}
        self.data_args = data_args if data_args is not None else {}
        self.save = bool(save)
        self.plot = bool(plot)
        self.checkpoints = bool(checkpoints)
        self.plot_every_seconds = float(plot_every_seconds)
        self._last_plot = time.monotonic()
        self.name = str(model_name or name or dict(self.model_args).get("name", "model"))
        self.model_name = self.name
        self.directory = Path(save_dir) / self.name
        self.save_dir = os.path.join(str(self.directory), "")
        self.rows: list[dict] = []
        self.ranges: list[dict] = []  # parameters.csv rows: epoch, parameter, min, max
        self.checkpoint = (
            ModelCheckpoint(self.directory, monitor="val_accuracy") if self.save and self.checkpoints else None
        )
        if self.save:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_json(
                self.directory / "config.json",
                {"model_args": to_plain(self.model_args), "data_args": to_plain(self.data_args)},
            )

    def path(self, filename: str) -> Path:
        """The path of ``filename`` in the run directory (:attr:`directory`)."""
        return self.directory / filename

    @property
    def best_val_accuracy(self) -> float:
        """The best validation accuracy logged so far (the training accuracy where the data set
        holds no validation examples); ``-inf`` before the first epoch."""
        values = [row.get("val_accuracy", row.get("accuracy")) for row in self.rows]
        return max((v for v in values if v is not None), default=float("-inf"))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Record one epoch (metrics and parameter ranges); rewrite the CSV files and, at most
        every ``plot_every_seconds``, the curves."""
        self.rows.append({"epoch": epoch + 1, **(logs or {})})
        self.ranges += [
            {"epoch": epoch + 1, "parameter": key, "min": lo, "max": hi}
            for key, (lo, hi) in parameter_ranges(self.model).items()
        ]
        if not self.save:
            return
        self.write_metrics_csv()
        # Drawing the figures costs more than a small epoch: redraw during training at most every plot_every_seconds.
        if self.plot and time.monotonic() - self._last_plot >= self.plot_every_seconds:
            self.plot_epochs()
            self._last_plot = time.monotonic()

    def on_train_end(self, logs=None) -> None:
        """With ``save`` and ``plot``: draw the per-epoch plots and the per-iteration loss
        (``loss_iterations.png``)."""
        if self.save and self.plot and self.rows:
            self.plot_epochs()
        iteration_loss = getattr(getattr(self.model, "history", None), "iteration_loss", None)
        if self.save and self.plot and iteration_loss:
            plots.plot_iteration_loss(
                iteration_loss,
                self.path("loss_iterations.png"),
                title=f"{self.name}: training loss per iteration",
                smooth=max(1, len(iteration_loss) // 50),
            )

    def state_dict(self) -> dict:
        """The parameter ranges (the metric rows are the History's, saved with it)."""
        return {"ranges": [dict(r) for r in self.ranges]}

    def load_state_dict(self, state: dict) -> None:
        """Continue a resumed run: the parameter ranges from ``state``, the metric rows from the
        model's (already restored) History."""
        self.ranges = [
            {"epoch": int(r["epoch"]), "parameter": r["parameter"], "min": float(r["min"]), "max": float(r["max"])}
            for r in state.get("ranges", ())
        ]
        history = getattr(self.model, "history", None)
        if history is not None:
            self.rows = [
                {"epoch": i + 1, **{key: values[i] for key, values in history.history.items() if i < len(values)}}
                for i in range(history.epochs)
            ]

    def restore(self, epochs: int) -> list[dict]:
        """Reload the first ``epochs`` epochs' rows of an existing run directory (``metrics.csv``
        and ``parameters.csv``); returns the metric rows. (A run resumed through its checkpoint
        needs none of this: :meth:`load_state_dict` restores the logger from ``last.npz``.)"""
        rows = [r for r in read_metrics_csv(self.path("metrics.csv")) if r["epoch"] <= epochs]
        self.rows = [{**r, "epoch": int(r["epoch"])} for r in rows]
        ranges_path = self.path("parameters.csv")
        if ranges_path.is_file():
            self.ranges = [r for r in read_parameters_csv(ranges_path) if r["epoch"] <= epochs]
        return rows

    def write_metrics_csv(self) -> None:
        """Write ``metrics.csv`` and ``parameters.csv`` from the rows recorded so far."""
        with atomic_write(self.path("metrics.csv"), "w", newline="") as handle:
            handle.write(_csv_text(METRIC_COLUMNS, self.rows))
        with atomic_write(self.path("parameters.csv"), "w", newline="") as handle:
            handle.write(_csv_text(RANGE_COLUMNS, self.ranges))

    def plot_epochs(self) -> None:
        """Draw the per-epoch plots: loss, accuracy, error and the parameter ranges."""
        columns = {k: [row.get(k) for row in self.rows] for k in METRIC_COLUMNS}
        history = {k: v for k, v in columns.items() if all(x is not None for x in v)}
        for metric in ("loss", "accuracy"):
            if metric in history:
                plots.plot_curves(history, metric, self.path(f"{metric}.png"), title=f"{self.name}: {metric} per epoch")
        errors = {
            f"{prefix}error": [1.0 - a for a in history[f"{prefix}accuracy"]]
            for prefix in ("", "val_")
            if f"{prefix}accuracy" in history
        }
        if "error" in errors:
            plots.plot_curves(
                errors, "error", self.path("error.png"), title=f"{self.name}: error (1 - accuracy) per epoch"
            )
        if self.ranges:
            plots.plot_parameter_ranges(
                self.ranges, self.path("parameters.png"), title=f"{self.name}: parameter range per epoch"
            )
