"""How a study chooses its trials: the samplers (TPE, random, grid) and the pruner, made per
worker so that parallel workers and reruns neither repeat each other nor disagree on the grid."""

from __future__ import annotations

import socket
import zlib

from .settings import StudySettings
from .space import SearchSpace
from .storage import require_optuna

__all__ = ["SAMPLERS", "PRUNERS", "MEDIAN_PRUNER", "make_sampler", "make_pruner"]

#: The samplers a study may use (Optuna's TPE, random and grid samplers).
SAMPLERS = ("tpe", "random", "grid")
#: The pruners a study may use: the median stopping rule, or none.
PRUNERS = ("median", "none")

#: Optuna's median stopping rule with these settings: nothing is pruned before three trials have
#: completed (a median of fewer says little), nor on the first epoch alone (too noisy to judge).
MEDIAN_PRUNER = {"n_startup_trials": 3, "n_warmup_steps": 1}


def make_sampler(settings: StudySettings, index: int, n_trials_at_start: int):
    """The sampler of worker ``index``. Grid samplers of all workers must shuffle the grid the same
    way (Optuna records grid points by index): a fixed seed. TPE and random samplers are seeded
    from the config's seed, the worker, the study's size when the worker started and the host,
    so one uninterrupted single-worker study is repeatable and parallel workers or reruns do not
    repeat each other's draws."""
    optuna = require_optuna()
    if settings.sampler == "grid":
        return _grid_sampler_class()(SearchSpace.from_dict(settings.space).grid(), seed=0)
    key = f"{settings.base_config.get('seed', 0)}:{index}:{n_trials_at_start}:{socket.gethostname()}"
    seed = zlib.crc32(key.encode())
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: running trials count as bad results, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _grid_sampler_class():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its end-of-grid ``Study.stop()``, which only works inside
        ``Study.optimize`` (workers here ask and tell) and raises otherwise; workers check for an
        exhausted grid themselves (:func:`grid_exhausted`)."""

        def after_trial(self, study, trial, state, values) -> None:
            pass

    return GridSampler


def make_pruner(name: str):
    """Optuna's pruner for ``name``: ``"median"`` (:data:`MEDIAN_PRUNER`'s settings) or, for any
    other name, none (``NopPruner``). ``ConfigError`` without Optuna."""
    optuna = require_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(**MEDIAN_PRUNER)
    return optuna.pruners.NopPruner()
