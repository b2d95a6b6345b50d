"""Running a study: prepare it in its storage (:mod:`.storage`), run workers until the budget
or the grid is spent (:mod:`.workers`, with the samplers of :mod:`.samplers`), then write the
report (:mod:`.report`). :func:`run_study` is what ``neural-networks tune`` calls.

The names a caller of a study needs are importable from here too (``StudySettings``,
``SAMPLERS``, ``open_storage``, ``work``, ...: see ``__all__``), wherever they are defined.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..experiments import ConfigError, RunInterrupted, config_differences
from ..io import atomic_write
from .report import write_report
from .samplers import MEDIAN_PRUNER, PRUNERS, SAMPLERS
from .settings import StudySettings, check_study_name
from .storage import ATTR, JOURNAL_NAME, STUDY_FILE, open_storage, redact, require_optuna, study_lock
from .workers import (
    available_cpus,
    budget_left,
    is_counted,
    open_study,
    reap_dead_workers,
    runnable,
    spawn_workers,
    work,
)

__all__ = [
    "SAMPLERS",
    "PRUNERS",
    "JOURNAL_NAME",
    "STUDY_FILE",
    "MEDIAN_PRUNER",
    "StudySettings",
    "require_optuna",
    "check_study_name",
    "open_storage",
    "open_study",
    "prepare_study",
    "run_study",
    "work",
    "budget_left",
]


def _plain(value):
    """``value`` as it comes back from a storage (JSON), for comparisons."""
    return json.loads(json.dumps(value))


def prepare_study(settings: StudySettings, config_path=None, space_path=None):
    """Create the study (or join it), refuse one started with another config, space or sampler,
    and write ``study.yaml``; returns ``(study, storage)``."""
    optuna = require_optuna()
    study_dir = Path(settings.study_dir)
    storage = open_storage(settings.storage, study_dir)
    where = redact(settings.storage) or str(study_dir / JOURNAL_NAME)
    new = settings.study not in optuna.study.get_all_study_names(storage)
    if new and study_dir.is_dir() and any(study_dir.glob("trial-[0-9]*")):
        raise ConfigError(
            f"{study_dir} holds trial directories but {where} has no study {settings.study!r}; "
            "remove them or choose another --study or --out"
        )
    study = optuna.create_study(storage=storage, study_name=settings.study, direction="maximize", load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(
            f"study {settings.study!r} in {where} minimizes; a tuning study maximizes validation accuracy"
        )
    mine = _plain({"base_config": settings.base_config, "space": settings.space, "sampler": settings.sampler})
    stored = study.user_attrs.get(ATTR)
    if stored is None:
        study.set_user_attr(ATTR, mine)
    else:
        _check_same_study(settings, stored, mine, where)
    text = json.dumps(
        {
            "study": settings.study,
            "storage": redact(settings.storage) if settings.storage else JOURNAL_NAME,
            "sampler": settings.sampler,
            "pruner": settings.pruner,
            "config": None if config_path is None else str(config_path),
            "space": None if space_path is None else str(space_path),
        },
        indent=2,
    )
    with atomic_write(study_dir / STUDY_FILE, "w") as handle:  # JSON is YAML; one reader for both
        handle.write(text + "\n")
    return study, storage


def _check_same_study(settings: StudySettings, stored: dict, mine: dict, where: str) -> None:
    hint = "run it with the same config, --set, space and --sampler, or choose another --study"
    if stored.get("sampler") != mine["sampler"]:
        raise ConfigError(
            f"study {settings.study!r} in {where} uses the {stored.get('sampler')} sampler, not {mine['sampler']}; {hint}"
        )
    if stored.get("space") != mine["space"]:
        old, new = stored.get("space") or {}, mine["space"]
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        raise ConfigError(
            f"study {settings.study!r} in {where} was started with another search space "
            f"(differing in {', '.join(keys)}); {hint}"
        )
    if stored.get("base_config") != mine["base_config"]:
        keys = config_differences(stored.get("base_config") or {}, mine["base_config"])
        raise ConfigError(
            f"study {settings.study!r} in {where} was started with another config "
            f"(differing in {', '.join(keys)}); {hint}"
        )


def run_study(settings: StudySettings, jobs: int = 1, config_path=None, space_path=None, out=print) -> dict:
    """Prepare the study, run up to ``jobs`` workers until the budget (or the grid) is spent, and
    write the report; returns the report's summary (see :func:`~neural_networks.tune.report.write_report`)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if settings.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {settings.trials}")
    if jobs > 1 and settings.storage and settings.storage.startswith("sqlite"):
        raise ConfigError(
            "SQLite cannot take several writers; use the default journal file or a database server for --jobs > 1"
        )
    study, storage = prepare_study(settings, config_path, space_path)
    with study_lock(Path(settings.study_dir)):
        trials = reap_dead_workers(study, storage, len(settings.space), out=out)
    todo, failed = runnable(trials, settings), []
    where = redact(settings.storage) or str(Path(settings.study_dir) / JOURNAL_NAME)
    done = sum(1 for t in trials if is_counted(t) and t.state.is_finished())
    if todo == 0:
        out(f"study {settings.study}: {done} trial(s) finished, nothing left to run (--trials {settings.trials})")
    else:
        jobs = min(jobs, todo)
        share = max(1, len(available_cpus()) // jobs)
        out(
            f"study {settings.study}: {done} trial(s) finished, up to {todo} to run with {jobs} worker(s)"
            f"{f' of {share} CPU(s) each' if jobs > 1 else ''}; storage {where}"
        )
        try:
            if jobs == 1:
                work(settings, 0, out=out)
            else:
                codes = spawn_workers(settings, jobs)
                failed = [f"worker {i} exited with {code}" for i, code in enumerate(codes) if code != 0]
        except KeyboardInterrupt:
            raise RunInterrupted(
                f"interrupted; finished trials are kept in {where}; run the same command again to continue "
                f"(neural-networks tune-report {settings.study_dir} writes the report meanwhile)"
            ) from None
    summary = write_report(study, settings.study_dir, out=out)
    if failed:  # after the report: the other workers' trials are worth a look
        raise ConfigError(f"study {settings.study}: {'; '.join(failed)} (see its messages above)")
    return summary
