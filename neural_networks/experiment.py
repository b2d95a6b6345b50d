"""Run an experiment config end to end: data, model, training with checkpoints, final figures.

The run directory (``<out>/<name>/``, ``out`` defaulting to ``experiments``) receives
``config.yaml`` (the resolved config), ``metrics.csv``, ``metrics.json``, ``loss.png``,
``accuracy.png``, ``loss_iterations.png``, ``confusion_matrix.png``, ``first_layer.png``,
``last.npz`` and ``best.npz``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from . import plots
from .config import ConfigError, dump_config, validate_config
from .datasets import initialize_dataset
from .io import atomic_write
from .logs import Logger, read_metrics_csv, write_json
from .losses import initialize_loss
from .models import History, NeuralNetwork

__all__ = ["build_dataset", "build_model", "run_experiment", "finish_run", "load_run", "split_inputs", "RunInterrupted"]


class RunInterrupted(Exception):
    """Training was stopped with Ctrl-C; ``last.npz`` holds the state to ``--resume`` from."""


def build_dataset(config: dict):
    data = dict(config["data"])
    name = data.pop("name")
    if "seed" not in data and _accepts(name, "seed"):
        data["seed"] = config["seed"]
    return initialize_dataset(name, **data)


def _accepts(name: str, argument: str) -> bool:
    import inspect

    from .datasets import DATASETS

    return argument in inspect.signature(DATASETS[name]).parameters


def build_model(config: dict, logger=None) -> NeuralNetwork:
    model_config = config["model"]
    loss = model_config["loss"]
    loss = initialize_loss(**loss) if isinstance(loss, dict) else initialize_loss(loss)
    return NeuralNetwork(loss=loss, layer_args=model_config["layers"], optimizer_args=config["optimizer"],
                         logger=logger, seed=config["seed"])


def run_experiment(config: dict, out_dir="experiments", resume: bool = False, verbose: int = 1) -> dict:
    """Train the run described by ``config``; returns the final figures (also in metrics.json).

    With ``resume``, continue from ``<run>/last.npz`` (model, optimizer state, epoch) and the
    existing ``metrics.csv``; shuffling, augmentation and dropout are seeded per epoch, so the
    result equals an uninterrupted run's.
    """
    config = validate_config(config)
    run_dir = Path(out_dir) / config["name"]
    dataset = build_dataset(config)
    output_layer = config["model"]["layers"][-1]
    if "n_out" in output_layer and output_layer["n_out"] is None:  # sized by the data set: record the size
        output_layer["n_out"] = int(dataset.out_dim)
    logger = Logger(config["name"], model_args=config["model"], data_args=config["data"], save=True, plot=True,
                    save_dir=Path(out_dir))
    with atomic_write(run_dir / "config.yaml", "w") as handle:
        handle.write(dump_config(config))
    history = History()
    start_epoch, previous_seconds = 0, 0.0
    if resume:
        last = run_dir / "last.npz"
        if not last.is_file():
            raise ConfigError(f"cannot resume: {last} does not exist (train without --resume first)")
        model = NeuralNetwork.load(last, logger=logger)
        start_epoch = int(model.extra.get("epoch", 0))
        logger.best_val_accuracy = float(model.extra.get("best_val_accuracy", float("-inf")))
        rows = logger.restore(start_epoch)
        for row in rows:
            history.append(**{k: v for k, v in row.items() if k != "epoch" and v is not None})
        previous_seconds = sum(r["seconds"] or 0.0 for r in rows)
    else:
        model = build_model(config, logger=logger)
    remaining = max(0, config["epochs"] - start_epoch)
    if verbose:
        print(f"run {config['name']}: {dataset!r}; {remaining} epoch(s) from epoch {start_epoch + 1} -> {run_dir}")
    started = time.perf_counter()
    try:
        model.train(dataset, remaining, verbose=verbose, start_epoch=start_epoch, history=history)
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted; the last finished epoch is saved in {run_dir / 'last.npz'}; "
                             f"continue with --resume") from None
    train_seconds = previous_seconds + (time.perf_counter() - started)
    return finish_run(model, dataset, run_dir, config, train_seconds)


def finish_run(model: NeuralNetwork, dataset, run_dir: Path, config: dict, train_seconds: float) -> dict:
    """Evaluate the final model on validation (if the run holds any out) and test data (with the
    config's ``evaluation.tta``; per-epoch validation during training uses none), draw the confusion
    matrix and the first layer, and write ``metrics.json``."""
    tta = (config.get("evaluation") or {}).get("tta", "none")
    validate = getattr(dataset, "validate", None)
    # A run may hold out no validation data (validation_size: 0): its validation figures are None.
    has_val = validate is not None and getattr(validate, "n_examples", 1) > 0
    val = model.evaluate(validate, tta=tta) if has_val else {"loss": None, "accuracy": None}
    test = model.evaluate(dataset.test, tta=tta)
    predictions = model.predict_classes(split_inputs(dataset.test), tta=tta)
    counts = plots.confusion_matrix(dataset.test.labels, predictions, dataset.n_classes)
    plots.plot_confusion_matrix(counts, dataset.class_names, run_dir / "confusion_matrix.png",
                                title=f"{config['name']}: test confusion matrix")
    first = next((layer for layer in model.layers if "W" in layer.parameters), None)
    if first is not None:
        plots.plot_first_layer(first.parameters["W"], run_dir / "first_layer.png", input_shape=_image_shape(dataset))
    rows = read_metrics_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    figures = {
        "name": config["name"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "tta": tta,
        "epochs": len(rows),
        "train_seconds": round(train_seconds, 2),
        "best_val_accuracy": max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None),
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
