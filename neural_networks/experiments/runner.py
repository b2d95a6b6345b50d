"""Run an experiment config end to end: data, model, training with checkpoints, final figures.

Training is :func:`neural_networks.training.fit` with a :class:`~neural_networks.logs.Logger`, a
:class:`~neural_networks.callbacks.ModelCheckpoint` on the run directory and the config's
``callbacks``. The run directory (``<out>/<name>/``, or ``<name>-2``, ``-3``, ... when that one
holds another run; ``out`` defaulting to ``experiments``) receives ``run.json`` (the run's state:
running, finished, failed with its reason, interrupted; :mod:`neural_networks.experiments.rundir`),
``.lock`` (held while a process trains there), ``config.yaml`` (the resolved config) and
``config.json``, ``metrics.csv``, ``metrics.json``, ``parameters.csv``, ``loss.png``,
``accuracy.png``, ``error.png``, ``loss_iterations.png``, ``parameters.png``,
``confusion_matrix.png``, ``first_layer.png``, ``last.npz`` and ``best.npz``, and with ``tensorboard: true`` (or a ``tensorboard`` callback)
TensorBoard event files in ``tensorboard/`` (:mod:`neural_networks.tensorboard`).
``--resume`` reads ``last.npz`` alone.

A run directory is never shared and never reused silently: it is claimed atomically before
anything is written, after the config, the data and the model's shapes and memory have been
checked (:mod:`neural_networks.experiments.preflight`), so that a run that cannot start leaves nothing
behind and the same command run again reproduces its error. ``resume`` continues a run with a
config that differs at most in :data:`RESUMABLE_KEYS`; ``overwrite`` replaces ``<out>/<name>``
(the old directory is first renamed, atomically, to a hidden sibling ``.<name>.old-<n>`` and then
deleted, so the run directory is never half old, half new). Both refuse a directory that another
process is training in.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .. import plots
from ..callbacks import CALLBACKS, History, ModelCheckpoint, initialize_callback
from ..datasets import initialize_dataset
from ..epochs import epoch_count
from ..io import atomic_write
from ..logs import Logger, read_metrics_csv, write_json
from ..losses import initialize_loss
from ..models import NeuralNetwork
from ..tensorboard import TensorBoard
from ..training import fit
from .config import ConfigError, ValidConfig, check_run_name, dump_config, load_config, parse_yaml, validate_config
from .preflight import check_run_fits
from .rundir import RunDirectory, claim_new, newest_run, open_existing, read_status
from .runs import load_run

__all__ = [
    "build_dataset",
    "build_model",
    "build_callbacks",
    "run_experiment",
    "finish_run",
    "load_run",
    "split_inputs",
    "RunInterrupted",
    "RESUMABLE_KEYS",
    "config_differences",
    "peak_memory_mb",
]

#: Dotted config keys that ``--resume`` lets change: the number of epochs to train to, the
#: test-time augmentation of the final figures (per-epoch validation uses none), and TensorBoard
#: logging (it only observes; a resumed fit writes its events from its first step on).
RESUMABLE_KEYS = ("epochs", "evaluation.tta", "tensorboard")


class RunInterrupted(Exception):
    """Training was stopped with Ctrl-C; ``last.npz`` holds the state to ``--resume`` from."""


def build_dataset(config: dict):
    """The data set of ``config["data"]`` (:func:`~neural_networks.datasets.initialize_dataset`),
    seeded with the run's ``seed`` when the data set takes one and the section sets none."""
    data = dict(config["data"])
    name = data.pop("name")
    if "seed" not in data and _accepts(name, "seed"):
        data["seed"] = config["seed"]
    return initialize_dataset(name, **data)


def _accepts(name: str, argument: str) -> bool:
    from ..datasets import DATASETS

    return argument in DATASETS.arguments(name)


def build_model(config: dict, logger=None) -> NeuralNetwork:
    """The model ``config`` describes. A :class:`~neural_networks.experiments.ValidConfig` hands over
    the loss, layers and optimizer built when it was validated (once: a second model from it
    gets new ones); a plain mapping is built as written, unchecked (``ValueError`` or
    ``TypeError`` from the builders for a bad section)."""
    if isinstance(config, ValidConfig):
        loss, layers, optimizer = config.take_model_parts()
        return NeuralNetwork(loss=loss, layers=layers, optimizer=optimizer, logger=logger, seed=config["seed"])
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


def build_callbacks(config: dict, run_dir, dataset=None) -> tuple[ModelCheckpoint, list]:
    """The run's checkpoint (on ``run_dir``; a ``model_checkpoint`` entry of the config's
    ``callbacks`` sets its ``monitor`` / ``mode``, default validation accuracy) and the config's
    other callbacks, built in order, then the run's TensorBoard callback for ``tensorboard: true``
    (unless a ``tensorboard`` entry gave it already: events in ``run_dir/tensorboard``, the
    flattened config as hyperparameters, ``dataset``'s image shape for the first-layer picture)."""
    checkpoint_args, others, tensorboard = {}, [], None
    for entry in config.get("callbacks") or ():
        entry = dict(entry)
        name = CALLBACKS.canonical(entry.pop("name"))
        if name == "model_checkpoint":
            checkpoint_args = entry
        elif name == "tensorboard":
            tensorboard = _tensorboard(config, run_dir, dataset, entry)
            others.append(tensorboard)
        else:
            others.append(initialize_callback(name, **entry))
    if config.get("tensorboard") and tensorboard is None:
        others.append(_tensorboard(config, run_dir, dataset, {}))
    return ModelCheckpoint(run_dir, **checkpoint_args), others


def _tensorboard(config: dict, run_dir, dataset, arguments: dict) -> TensorBoard:
    shape = _image_shape(dataset) if dataset is not None else None
    return TensorBoard.for_run(run_dir, hparams=_flatten(config), input_shape=shape, **arguments)


def run_experiment(
    config: dict,
    out_dir="experiments",
    resume=False,
    verbose: int = 1,
    overwrite: bool = False,
    callbacks=None,
) -> dict:
    """Train the run described by ``config``; returns the final figures (also in metrics.json)
    and ``run_dir``, the run directory.

    ``config``: a :class:`~neural_networks.experiments.ValidConfig` (what
    :func:`~neural_networks.experiments.load_valid_config` gives) is trusted as it is, and its output
    layer's ``n_out: null`` filled in from the data set; any other mapping is validated first.

    ``callbacks`` are extra :class:`~neural_networks.callbacks.Callback` objects (a tuning
    trial's pruning reporter, say), run after the config's own and before the checkpoint.

    A new run takes the first free directory of ``<out_dir>/<name>``, ``<name>-2``, ... (claimed
    atomically, :mod:`neural_networks.experiments.rundir`), after the data set, the model and its memory
    estimate have passed (:mod:`neural_networks.experiments.preflight`), so a run that cannot start leaves
    nothing behind. ``overwrite`` replaces ``<out_dir>/<name>`` itself (moved aside atomically
    and deleted first; refused while another process trains in it).

    ``resume``: ``True`` continues the newest run directory of the config's name (the highest
    ``-N``), a path continues that directory. It reads ``<run>/last.npz`` alone: model,
    optimizer state, epoch, best value, History and every callback's state. Shuffling,
    augmentation and dropout are seeded per epoch, so the result equals an uninterrupted run's;
    a run that a callback stopped early stays stopped. The config must equal the run's
    ``config.yaml`` but for :data:`RESUMABLE_KEYS`, and may not ask for fewer epochs than the
    checkpoint holds; ``config.yaml`` is rewritten only once the checkpoint has been read.

    ``run.json`` in the run directory records whether the run is running, finished, failed (and
    why) or interrupted; an exception during training is re-raised after it is written.
    """
    if resume is not False and resume is not None and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if not isinstance(config, ValidConfig):  # validated once: by the caller, else here
        config = validate_config(config)
    name = check_run_name(config["name"])  # again: it becomes a path, and a ValidConfig is a dict one may edit
    parent = Path(out_dir)
    dataset = build_dataset(config)
    # a new run's model takes the parts validation built, before the output size changes the config
    model = None if resume else build_model(config)
    output_layer = config["model"]["layers"][-1]
    if "n_out" in output_layer and output_layer["n_out"] is None:  # sized by the data set: record the size
        output_layer["n_out"] = int(dataset.out_dim)
    if resume:
        run, model, checkpoint, config_callbacks = _open_for_resume(config, parent, name, resume, dataset)
    else:
        model.size_output_layer(dataset)  # the size just recorded
        check_run_fits(model, dataset)  # shapes and memory, before anything is written
        run = _claim(parent, name, overwrite)
        try:
            checkpoint, config_callbacks = build_callbacks(config, run.path, dataset)
        except BaseException:
            run.abandon()
            raise
    with run:
        return _train_run(config, run, dataset, model, checkpoint, config_callbacks, callbacks, verbose)


def _claim(parent: Path, name: str, overwrite: bool) -> RunDirectory:
    """A new run directory: ``<parent>/<name>`` replaced with ``overwrite``, else the first free
    of ``<name>``, ``<name>-2``, ..."""
    if not overwrite:
        return claim_new(parent, name)
    target = parent / name
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory")
    if target.is_dir():
        with open_existing(target, "overwrite"):
            _remove_run_dir(target)
    return claim_new(parent, name, exact=True)


def _open_for_resume(config: dict, parent: Path, name: str, resume, dataset):
    """The locked run directory to resume, its model (from last.npz), checkpoint and callbacks."""
    if resume is True:
        target = newest_run(parent, name)
        if target is None:
            raise ConfigError(f"cannot resume: there is no run {parent / name} (train without --resume first)")
    else:
        target = Path(resume)
    run = open_existing(target, "resume")
    try:
        _check_resumable(config, run.path)
        checkpoint, config_callbacks = build_callbacks(config, run.path, dataset)
        try:
            model = checkpoint.resume()
        except FileNotFoundError as err:
            raise ConfigError(f"{err} (train without --resume first)") from None
        except ValueError as err:
            raise ConfigError(f"{err} (start over with --overwrite)") from None
        trained = checkpoint.epoch
        if epoch_count(config["epochs"]) < trained:
            raise ConfigError(
                f"cannot resume {run.path} with epochs {config['epochs']}: its checkpoint has trained {trained} "
                f"epochs already; give --epochs {trained} or more"
            )
    except BaseException:
        run.release()
        raise
    return run, model, checkpoint, config_callbacks


def _train_run(config, run, dataset, model, checkpoint, config_callbacks, callbacks, verbose) -> dict:
    """Write config.yaml and run.json, fit with the run's callbacks, finish the run; run.json
    records a failure or an interruption before the exception goes on."""
    run_dir = run.path
    tensorboard = next((cb for cb in config_callbacks if isinstance(cb, TensorBoard)), None)
    callbacks = [*config_callbacks, *(callbacks or ())]
    start_epoch = checkpoint.epoch
    # written once the checkpoint it describes is known to be readable (and, resuming, compatible)
    with atomic_write(run_dir / "config.yaml", "w") as handle:
        handle.write(dump_config(config))
    run.write_status("running", config_name=config["name"], epochs=config["epochs"], epochs_done=start_epoch)
    logger = Logger(
        run.name,
        model_args=config["model"],
        data_args=config["data"],
        save=True,
        plot=True,
        save_dir=run_dir.parent,
        checkpoints=False,
    )
    epochs = start_epoch if checkpoint.stopped else max(config["epochs"], start_epoch)
    if verbose:
        note = f" (it stopped early after epoch {start_epoch})" if checkpoint.stopped else ""
        fresh = start_epoch == 0 and run.name != config["name"]
        taken = f" ({run_dir.with_name(config['name'])} holds another run)" if fresh else ""
        print(
            f"run {config['name']}: {dataset!r}; {epoch_count(epochs) - start_epoch} epoch(s) from epoch "
            f"{start_epoch + 1}{note} -> {run_dir}{taken}"
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
        previous_seconds = sum(history["seconds"][:start_epoch]) if "seconds" in history else 0.0
        train_seconds = previous_seconds + (time.perf_counter() - started)
        # a callback ended training before the config's last epoch (now or before a resume)
        stopped = (checkpoint.stopped or model.stop_training) and history.epochs < config["epochs"]
        if verbose and model.stop_training and stopped:
            print(f"stopped early after epoch {history.epochs} of {config['epochs']}")
        figures = finish_run(model, dataset, run_dir, config, train_seconds, history=history, stopped_early=stopped)
    except KeyboardInterrupt:
        if tensorboard is not None:
            tensorboard.close()  # what the interrupted epoch logged so far; a resume purges it
        run.write_status("interrupted", epochs_done=checkpoint.epoch)
        if checkpoint.epoch == 0:
            raise RunInterrupted(
                f"interrupted before the first epoch ended; nothing to resume in {run_dir}: train again"
            ) from None
        raise RunInterrupted(
            f"interrupted; epoch {checkpoint.epoch} (the last finished) is saved in {run_dir / 'last.npz'}; "
            f"continue with --resume {run_dir}"
        ) from None
    except BaseException as err:
        with contextlib.suppress(OSError):  # a full disk must not hide the error itself
            run.write_status("failed", epochs_done=checkpoint.epoch, error=_one_line(err))
        raise
    run.write_status("finished", epochs_done=history.epochs)
    if tensorboard is not None:  # the pictures finish_run drew, and its figures
        pictures = ("confusion_matrix", "first_layer")
        tensorboard.write_run_end(figures, {name: run_dir / f"{name}.png" for name in pictures})
    return {**figures, "run_dir": str(run_dir)}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    return f"{type(err).__name__}: {text}"


def _remove_run_dir(run_dir: Path) -> None:
    """Rename ``run_dir`` to a free hidden sibling ``.<name>.old-<n>`` (atomic), then delete that.
    A crash during the deletion leaves only the hidden sibling, never a mixed run directory."""
    n = 1
    while (aside := run_dir.with_name(f".{run_dir.name}.old-{n}")).exists():
        n += 1
    run_dir.rename(aside)
    shutil.rmtree(aside)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    if not flat:  # an empty mapping or list is a value of its own
        flat[prefix] = value
    return flat


def config_differences(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two configs (present in one only counts)."""
    a, b = _flatten(old), _flatten(new)
    return [key for key in sorted(set(a) | set(b)) if key not in a or key not in b or a[key] != b[key]]


def _resumable(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE_KEYS)


def _check_resumable(config: dict, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with a config that differs from its ``config.yaml`` in keys
    other than :data:`RESUMABLE_KEYS` (compared as written: after validation and ``n_out``)."""

    if not (run_dir / "last.npz").is_file():  # refuse before anything is written there
        status = read_status(run_dir) or {}
        why = {
            "failed": f"it failed before its first checkpoint ({status.get('error')})",
            "interrupted": "it was interrupted before its first epoch ended",
            "running": "it stopped before its first epoch ended",
        }.get(status.get("state"), f"{run_dir / 'last.npz'} does not exist")
        raise ConfigError(f"cannot resume {run_dir}: {why}; train without --resume (a new run directory is taken)")
    path = run_dir / "config.yaml"
    if not path.is_file():
        return  # nothing to compare with; the checkpoint decides
    try:
        old = load_config(path)
    except ConfigError as err:
        raise ConfigError(f"{err}; start over with --overwrite") from None
    new = parse_yaml(dump_config(config), "the new config")  # the same representation as the file's
    for entry in (old, new):  # a missing evaluation section means its defaults, a missing tensorboard false
        if not entry.get("evaluation"):
            entry.pop("evaluation", None)
        if entry.get("tensorboard") is False:
            entry.pop("tensorboard")
    if isinstance(old.get("epochs"), float) and new.get("epochs") != old["epochs"]:
        # its last epoch may already have trained part of its batches: it cannot become a whole one
        raise ConfigError(
            f"cannot resume {run_dir} with epochs {new.get('epochs')}: it is a run of {old['epochs']} epochs, "
            "whose last epoch trains part of its batches; resume it with the same epochs"
        )
    differing = [key for key in config_differences(old, new) if not _resumable(key)]
    if differing:
        raise ConfigError(
            f"cannot resume {run_dir}: the config differs from its config.yaml in {', '.join(differing)} "
            f"(only {', '.join(RESUMABLE_KEYS)} may change); start over with --overwrite or another name"
        )


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
        plots.plot_first_layer(
            first.parameters["W"],
            run_dir / "first_layer.png",
            input_shape=_image_shape(dataset),
            feature_names=getattr(dataset, "feature_names", None),
        )
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
        "peak_memory_mb": peak_memory_mb(),
    }
    if tta != "none":  # the figures without test-time augmentation too, for comparison
        figures["test_accuracy_no_tta"] = model.evaluate(dataset.test)["accuracy"]
    write_json(run_dir / "metrics.json", figures)
    return figures


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where unknown). On Linux it is
    ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` would count the memory of the process this
    one was forked from (it survives ``exec``), e.g. a large test runner's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
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
