"""Run an experiment config end to end: data, model, training with checkpoints, final figures.

Training is :func:`neural_networks.training.fit` with a :class:`~neural_networks.logs.Logger`, a
:class:`~neural_networks.callbacks.ModelCheckpoint` on the run directory and the config's
``callbacks``. The run directory (``<out>/<name>/``, ``out`` defaulting to ``experiments``)
receives ``config.yaml`` (the resolved config), ``metrics.csv``, ``metrics.json``, ``loss.png``,
``accuracy.png``, ``loss_iterations.png``, ``confusion_matrix.png``, ``first_layer.png``,
``last.npz`` and ``best.npz``. ``--resume`` reads ``last.npz`` alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from . import plots
from .callbacks import CALLBACKS, ModelCheckpoint, initialize_callback
from .config import ConfigError, dump_config, validate_config
from .datasets import initialize_dataset
from .io import atomic_write
from .logs import Logger, read_metrics_csv, write_json
from .losses import initialize_loss
from .models import History, NeuralNetwork
from .training import fit

__all__ = [
    "build_dataset",
    "build_model",
    "build_callbacks",
    "run_experiment",
    "finish_run",
    "load_run",
    "split_inputs",
    "RunInterrupted",
]


class RunInterrupted(Exception):
    """Training was stopped with Ctrl-C; ``last.npz`` holds the state to ``--resume`` from."""


def build_dataset(config: dict):
    data = dict(config["data"])
    name = data.pop("name")
    if "seed" not in data and _accepts(name, "seed"):
        data["seed"] = config["seed"]
    return initialize_dataset(name, **data)


def _accepts(name: str, argument: str) -> bool:
    from .datasets import DATASETS

    return argument in DATASETS.arguments(name)


def build_model(config: dict, logger=None) -> NeuralNetwork:
    model_config = config["model"]
    loss = model_config["loss"]
    loss = initialize_loss(**loss) if isinstance(loss, dict) else initialize_loss(loss)
    return NeuralNetwork(
        loss=loss,
        layer_args=model_config["layers"],
        optimizer_args=config["optimizer"],
        logger=logger,
        seed=config["seed"],
    )


def build_callbacks(config: dict, run_dir) -> tuple[ModelCheckpoint, list]:
    """The run's checkpoint (on ``run_dir``; a ``model_checkpoint`` entry of the config's
    ``callbacks`` sets its ``monitor`` / ``mode``, default validation accuracy) and the config's
    other callbacks, built in order."""
    checkpoint_args, others = {}, []
    for entry in config.get("callbacks") or ():
        entry = dict(entry)
        name = entry.pop("name")
        if CALLBACKS.canonical(name) == "model_checkpoint":
            checkpoint_args = entry
        else:
            others.append(initialize_callback(name, **entry))
    return ModelCheckpoint(run_dir, **checkpoint_args), others


def run_experiment(config: dict, out_dir="experiments", resume: bool = False, verbose: int = 1) -> dict:
    """Train the run described by ``config``; returns the final figures (also in metrics.json).

    With ``resume``, continue from ``<run>/last.npz`` alone: model, optimizer state, epoch, best
    value, History and every callback's state (the Logger's rows and parameter ranges, early
    stopping's counters). Shuffling, augmentation and dropout are seeded per epoch, so the result
    equals an uninterrupted run's; a run that a callback stopped early stays stopped.
    """
    config = validate_config(config)
    run_dir = Path(out_dir) / config["name"]
    dataset = build_dataset(config)
    output_layer = config["model"]["layers"][-1]
    if "n_out" in output_layer and output_layer["n_out"] is None:  # sized by the data set: record the size
        output_layer["n_out"] = int(dataset.out_dim)
    logger = Logger(
        config["name"],
        model_args=config["model"],
        data_args=config["data"],
        save=True,
        plot=True,
        save_dir=Path(out_dir),
        checkpoints=False,
    )
    checkpoint, callbacks = build_callbacks(config, run_dir)
    with atomic_write(run_dir / "config.yaml", "w") as handle:
        handle.write(dump_config(config))
    start_epoch = 0
    if resume:
        try:
            model = checkpoint.resume()
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"{err} (train without --resume first)") from None
        start_epoch = checkpoint.epoch
    else:
        model = build_model(config)
    epochs = start_epoch if checkpoint.stopped else max(config["epochs"], start_epoch)
    if verbose:
        note = f" (it stopped early after epoch {start_epoch})" if checkpoint.stopped else ""
        print(
            f"run {config['name']}: {dataset!r}; {epochs - start_epoch} epoch(s) from epoch {start_epoch + 1}"
            f"{note} -> {run_dir}"
        )
    started = time.perf_counter()
    try:
        history = fit(
            model,
            dataset,
            epochs,
            callbacks=[logger, *callbacks, checkpoint],
            verbose=verbose,
            initial_epoch=start_epoch,
        )
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted; the last finished epoch is saved in {run_dir / 'last.npz'}; continue with --resume"
        ) from None
    previous_seconds = sum(history["seconds"][:start_epoch]) if "seconds" in history else 0.0
    train_seconds = previous_seconds + (time.perf_counter() - started)
    # a callback ended training before the config's last epoch (now or before a resume)
    stopped = (checkpoint.stopped or model.stop_training) and history.epochs < config["epochs"]
    if verbose and model.stop_training and stopped:
        print(f"stopped early after epoch {history.epochs} of {config['epochs']}")
    return finish_run(model, dataset, run_dir, config, train_seconds, history=history, stopped_early=stopped)


def finish_run(
    model: NeuralNetwork,
    dataset,
    run_dir: Path,
    config: dict,
    train_seconds: float,
    history: History | None = None,
    stopped_early: bool = False,
) -> dict:
    """Evaluate the final model on validation (if the run holds any out) and test data (with the
    config's ``evaluation.tta``; per-epoch validation during training uses none), draw the confusion
    matrix and the first layer, and write ``metrics.json``. The epoch figures come from
    ``history`` (else from the run's ``metrics.csv``)."""
    tta = (config.get("evaluation") or {}).get("tta", "none")
    validate = getattr(dataset, "validate", None)
    # A run may hold out no validation data (validation_size: 0): its validation figures are None.
    has_val = validate is not None and getattr(validate, "n_examples", 1) > 0
    val = model.evaluate(validate, tta=tta) if has_val else {"loss": None, "accuracy": None}
    test = model.evaluate(dataset.test, tta=tta)
    predictions = model.predict_classes(split_inputs(dataset.test), tta=tta)
    counts = plots.confusion_matrix(dataset.test.labels, predictions, dataset.n_classes)
    plots.plot_confusion_matrix(
        counts, dataset.class_names, run_dir / "confusion_matrix.png", title=f"{config['name']}: test confusion matrix"
    )
    first = next((layer for layer in model.layers if "W" in layer.parameters), None)
    if first is not None:
        plots.plot_first_layer(first.parameters["W"], run_dir / "first_layer.png", input_shape=_image_shape(dataset))
    if history is not None:
        epochs, val_accuracies = history.epochs, history.history.get("val_accuracy", [])
    else:
        rows = read_metrics_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
        epochs = len(rows)
        val_accuracies = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
    figures = {
        "name": config["name"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "tta": tta,
        "epochs": epochs,
        "stopped_early": bool(stopped_early),
        "train_seconds": round(train_seconds, 2),
        "best_val_accuracy": max(val_accuracies, default=None),
        "peak_memory_mb": _peak_memory_mb(),
    }
    if tta != "none":  # the figures without test-time augmentation too, for comparison
        figures["test_accuracy_no_tta"] = model.evaluate(dataset.test)["accuracy"]
    write_json(run_dir / "metrics.json", figures)
    return figures


def _peak_memory_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where unknown)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KiB on Linux


def split_inputs(loader) -> np.ndarray:
    """All inputs of a split, transformed as the loader does (no augmentation)."""
    augmenting = getattr(loader, "augmenting", False)
    loader.augmenting = False
    try:
        return np.concatenate([X for X, _ in loader])
    finally:
        loader.augmenting = augmenting


def _image_shape(dataset):
    shape = getattr(dataset, "image_shape", None) or dataset.input_shape
    if len(shape) == 3 and shape[-1] == 1:
        return shape[:2]
    return shape if len(shape) >= 2 else None


def load_run(run_dir, which: str = "best") -> tuple[dict, NeuralNetwork]:
    """``(config, model)`` of a finished or interrupted run (``which``: ``best`` or ``last``)."""
    import yaml

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    checkpoint = run_dir / f"{which}.npz"
    if not checkpoint.is_file():
        checkpoint = run_dir / "last.npz"
    if not checkpoint.is_file():
        raise ConfigError(f"{run_dir} has no checkpoint (best.npz or last.npz)")
    return config, NeuralNetwork.load(checkpoint)
