"""A run directory read back: its config and a checkpoint (:func:`load_run`), and whether the run
finished (:func:`unfinished_note`), so that ``evaluate``, ``predict``, ``export`` and ``report``
never present the weights of an unfinished run as a finished run's."""

from __future__ import annotations

from pathlib import Path

from ..epochs import epoch_count
from ..models import NeuralNetwork
from .config import ConfigError, load_valid_config
from .rundir import is_busy, read_status

__all__ = ["load_run", "unfinished_note", "checkpoint_epoch"]


def load_run(run_dir, which: str = "best") -> tuple[dict, NeuralNetwork]:
    """``(config, model)`` of a finished or interrupted run (``which``: ``best`` or ``last``).

    The checkpoint asked for or a ConfigError, never another one in its place: a command that
    said "best" must not report figures of other weights. ``best.npz`` is missing where no epoch
    improved the monitored value (a NaN from the first epoch on) or no epoch ended. The model's
    ``extra`` holds the checkpoint's ``epoch`` (see :func:`unfinished_note`)."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    config = load_valid_config(config_path)
    checkpoint = run_dir / f"{which}.npz"
    if not checkpoint.is_file():
        if which == "best" and (run_dir / "last.npz").is_file():
            raise ConfigError(
                f"{run_dir} has no best.npz (written when an epoch improves the run's monitored value: "
                "none did); the last epoch's weights are in last.npz (--checkpoint last)"
            )
        raise ConfigError(f"{run_dir} has no checkpoint {checkpoint.name}{_why_no_checkpoint(run_dir)}")
    return config, NeuralNetwork.load(checkpoint)


def _why_no_checkpoint(run_dir: Path) -> str:
    """Why a run has no checkpoint yet, from its state (``""`` when nothing is known)."""
    if is_busy(run_dir):
        return " (it is still training its first epoch)"
    status = read_status(run_dir) or {}
    if status.get("state") == "failed":
        return f" (it failed before its first checkpoint: {status.get('error', 'no reason recorded')})"
    if status.get("state") in ("interrupted", "running"):
        return " (it was stopped before its first epoch ended)"
    return ""


def checkpoint_epoch(model) -> int | None:
    """The epochs a loaded checkpoint's weights had trained (its ``extra["epoch"]``), if recorded."""
    epoch = (getattr(model, "extra", None) or {}).get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def unfinished_note(run_dir, config: dict, which: str = "last", model=None) -> str | None:
    """``None`` for a finished run; else one sentence saying that it is unfinished: still
    training, failed (and why), interrupted or killed, with the epoch of its ``which``
    checkpoint (read from ``model``, else from the file) out of the epochs it was to train.

    A run is finished when its ``run.json`` says so, or, for runs of earlier versions without
    one, when it has its ``metrics.json`` (written when training ends)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    state = status.get("state") if status else ("finished" if (run_dir / "metrics.json").is_file() else None)
    if state == "finished":
        return None
    if model is None and (run_dir / f"{which}.npz").is_file():
        model = NeuralNetwork.load(run_dir / f"{which}.npz")
    epoch = checkpoint_epoch(model) if model is not None else None
    total = epoch_count(config["epochs"])
    where = f"its {which} checkpoint is from epoch {epoch} of {total}" if epoch is not None else "it has no checkpoint"
    if is_busy(run_dir):
        return f"{run_dir} is still training: {where} so far"
    if state == "failed":
        return f"{run_dir} is unfinished: it failed ({status.get('error', 'no reason recorded')}); {where}"
    how = {"interrupted": "it was interrupted", "running": "it was stopped"}.get(state, "it did not finish")
    return f"{run_dir} is unfinished: {how}; {where} (continue it with train --resume {run_dir})"
