"""One trial: an ordinary run directory trained by :func:`~neural_networks.experiments.run_experiment`,
with validation accuracy reported to Optuna after every epoch.

Pruning ends training the way any callback does (``model.stop_training``), so a pruned trial's
run directory is complete (metrics, plots, checkpoints of the epochs it ran); the trial is told
``PRUNED`` once :func:`run_experiment` has returned, instead of raising ``TrialPruned`` from
inside the fit loop, which would leave the run half written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..callbacks import Callback
from ..experiments import ConfigError, RunInterrupted, run_experiment
from .space import apply_params

__all__ = ["PruningReporter", "TrialOutcome", "trial_name", "run_trial", "describe", "raised_by_ctrl_c"]


def trial_name(number: int) -> str:
    """The run name of trial ``number``: ``trial-0003``."""
    return f"trial-{number:04d}"


class PruningReporter(Callback):
    """Reports each epoch's ``val_accuracy`` to ``trial`` (step: the 0-based epoch) and stops
    training after the epoch where the study's pruner says the trial is hopeless."""

    def __init__(self, trial):
        self.trial = trial
        self.pruned_after_epoch: int | None = None  # 1-based, as metrics.csv counts epochs

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Report ``val_accuracy`` and stop training if the trial should be pruned;
        ``ConfigError`` when the logs hold no ``val_accuracy``."""
        value = (logs or {}).get("val_accuracy")
        if value is None:  # checked before the study starts; a searched value may still remove the split
            raise ConfigError("the run holds out no validation data, so it has no val_accuracy to report")
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            self.pruned_after_epoch = epoch + 1
            self.model.stop_training = True


def raised_by_ctrl_c(err: BaseException) -> bool:
    """Whether ``err`` is a Ctrl-C, or was raised while one was being handled.

    Cleanup code can replace a ``KeyboardInterrupt`` with an error of its own: Optuna's journal
    file lock, interrupted before it holds the lock, releases it in an ``except BaseException``
    and raises ``RuntimeError("did not possess lock")``. That error is the user's Ctrl-C, not a
    failure of the trial, so the ``__context__``/``__cause__`` chain is searched for one.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (KeyboardInterrupt, RunInterrupted)):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


@dataclass
class TrialOutcome:
    """What became of a trial: ``state`` is ``complete``, ``pruned`` or ``fail``."""

    number: int
    params: dict
    state: str
    value: float | None = None
    seconds: float = 0.0
    message: str = ""


def run_trial(study, trial, params: dict, base_config: dict, study_dir: Path) -> TrialOutcome:
    """Train trial ``trial`` (its ``params`` already drawn) and tell the study how it ended.

    An exception is the trial's failure, recorded as its ``fail_reason`` user attribute (Optuna
    keeps no reason itself), and the study goes on. Ctrl-C (``KeyboardInterrupt``, or the
    :class:`~neural_networks.experiments.RunInterrupted` the run turns it into) propagates with
    the trial left running: the worker hands it back for a retry.
    """
    from optuna.trial import TrialState

    name = trial_name(trial.number)
    config = apply_params(base_config, params)
    config["name"] = name
    trial.set_user_attr("run_dir", str(Path(study_dir) / name))
    reporter = PruningReporter(trial)
    started = time.perf_counter()
    try:
        # overwrite: trial numbers are unique in the storage, so a folder of this name can only
        # be the leftover of an earlier study of the same name whose storage was removed
        figures = run_experiment(config, out_dir=study_dir, verbose=0, overwrite=True, callbacks=[reporter])
    except RunInterrupted:
        raise KeyboardInterrupt from None
    except Exception as err:  # the trial fails, the study goes on
        if raised_by_ctrl_c(err):
            raise KeyboardInterrupt from err
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return TrialOutcome(trial.number, params, "fail", seconds=time.perf_counter() - started, message=reason)
    seconds = time.perf_counter() - started
    if reporter.pruned_after_epoch is not None:
        trial.set_user_attr("pruned_after_epoch", reporter.pruned_after_epoch)
        study.tell(trial, state=TrialState.PRUNED)  # its value: the last reported validation accuracy
        return TrialOutcome(
            trial.number, params, "pruned", seconds=seconds, message=f"after epoch {reporter.pruned_after_epoch}"
        )
    value = figures["val_accuracy"]
    if value is None:
        reason = "the run has no validation accuracy"
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return TrialOutcome(trial.number, params, "fail", seconds=seconds, message=reason)
    study.tell(trial, float(value))
    return TrialOutcome(trial.number, params, "complete", value=float(value), seconds=seconds)


def describe(params: dict) -> str:
    """``optimizer.lr=0.1, model.layers.0.n_out=16`` (floats in ``%g``)."""
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value!r}" for key, value in params.items()
    )
