"""Hyper-parameter studies on Optuna: ``neural-networks tune`` and ``neural-networks tune-report``.

A study draws config values from a search space (:mod:`.space`), trains each trial as an
ordinary run directory (``<out>/<study>/trial-0003/``, as ``train`` writes it) with its
validation accuracy reported to Optuna after every epoch (:mod:`.trial`), runs one or several
worker processes (:mod:`.workers`, drawing with the samplers of :mod:`.samplers`) against one
storage (:mod:`.storage`) as :func:`~neural_networks.tune.study.run_study` sets them up
(:mod:`.study`, with the :class:`~neural_networks.tune.settings.StudySettings`) and writes
``trials.csv``, ``best_config.yaml`` and plots to the study folder (:mod:`.report`).

Optuna is an optional extra (``pip install "neural_networks[tune]"``): these modules import it
only when a study is opened, so ``import neural_networks.tune`` works without it and
:func:`~neural_networks.tune.storage.require_optuna` says what to install.
"""

from .space import Distribution, SearchSpace, load_space, parse_space
from .study import JOURNAL_NAME, MEDIAN_PRUNER, PRUNERS, SAMPLERS, StudySettings, require_optuna, run_study

__all__ = [
    "Distribution",
    "SearchSpace",
    "load_space",
    "parse_space",
    "StudySettings",
    "run_study",
    "require_optuna",
    "SAMPLERS",
    "PRUNERS",
    "JOURNAL_NAME",
    "MEDIAN_PRUNER",
]
