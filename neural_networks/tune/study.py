"""Running a study: storage, samplers, pruner, and the worker loop that one or several
processes (on one machine or several) run against the same storage.

Storage. By default an Optuna journal file in the study folder (``<out>/<study>/journal.log``):
several processes on one machine may append to it at once, which SQLite does not allow. A
``postgresql://`` or ``mysql://`` URL (``--storage``) puts the study in a database server, and
the same command started on other machines joins it.

Budget. ``--trials N`` is the number of finished trials the study should reach, not the number
this command runs: each worker takes a trial only while the study holds fewer than ``N``
trials that are finished or running, so a rerun after an interruption runs the remainder and a
rerun of a finished study runs none. On one machine the check and Optuna's ``ask`` happen under
a file lock in the study folder, so workers never overshoot; workers on other machines check
again after ``ask`` and hand back a trial that came too late.

Interruptions. A trial stopped by Ctrl-C or SIGTERM, or one whose worker process on this
machine has died (found by the next worker to look), is *handed back*: recorded as ``FAIL``
with the reason, marked ``given_back`` (it does not count towards ``N``), and its parameters
are queued again (``enqueue_trial``), so the next run evaluates them first. Grid studies
therefore still try every point. (A worker that dies on another machine leaves its trial
``RUNNING``; only a worker on that machine can tell that it died.)

Parallel workers. ``--jobs K`` starts K processes (``spawn``, so each imports NumPy afresh),
each on its own share of the CPUs (``sched_setaffinity`` where the OS has it) with BLAS and the
library's batch threads limited to that share (the ``*_NUM_THREADS`` variables before NumPy
loads, ``threadpoolctl`` after), so K workers do not oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..io import atomic_write
from .space import SearchSpace
from .trial import describe, raised_by_ctrl_c, run_trial, trial_name

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

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
JOURNAL_NAME = "journal.log"  # the default storage, in the study folder
STUDY_FILE = "study.yaml"  # what tune-report needs to find the study again
LOCK_NAME = ".tune.lock"
#: Optuna's median stopping rule with these settings: nothing is pruned before three trials have
#: completed (a median of fewer says little), nor on the first epoch alone (too noisy to judge).
MEDIAN_PRUNER = {"n_startup_trials": 3, "n_warmup_steps": 1}
ATTR = "neural_networks"  # study user attribute: the base config, space and sampler it was started with
GIVEN_BACK = "given_back"  # trial user attribute: interrupted, not counted, its parameters queued again
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NEURAL_NETWORKS_NUM_THREADS")


@dataclass(frozen=True)
class StudySettings:
    """Everything a worker process needs (picklable: it is sent to ``spawn`` children)."""

    study: str
    study_dir: str
    storage: str | None  # a database URL; None: the journal file in study_dir
    sampler: str
    pruner: str
    trials: int
    base_config: dict
    space: dict

    @property
    def grid_size(self) -> int | None:
        if self.sampler != "grid":
            return None
        return math.prod(len(values) for values in SearchSpace.from_dict(self.space).grid().values())


_STUDY_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_study_name(name) -> str:
    """``name`` if it can be the study folder's name (letters, digits, ``._-``; not ``.``/``..``)."""
    name = str(name)
    if not _STUDY_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"study name {name!r} is not valid; use letters, digits, '.', '_' and '-' (one folder name)")
    return name


def require_optuna():
    """``optuna``, or a one-line error saying how to install it (it is an optional extra)."""
    try:
        import optuna
    except ImportError:
        raise ConfigError('tuning needs Optuna: pip install "neural_networks[tune]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # this module prints one line per trial itself
    return optuna


def redact(url: str | None) -> str | None:
    """``url`` with its password replaced by ``***`` (for messages and study.yaml)."""
    if url is None:
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: say nothing of it
        return url.split("://", 1)[0] + "://..." if "://" in url else url


def open_storage(storage: str | None, study_dir):
    """The Optuna storage: the journal file in ``study_dir``, or a database at URL ``storage``."""
    optuna = require_optuna()
    if storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(study_dir).mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(Path(study_dir) / JOURNAL_NAME)))
    if "://" not in storage:
        raise ConfigError(f"--storage {storage!r}: expected a database URL such as postgresql://user@host/db")
    url = _with_installed_driver(storage)
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url)
        except ImportError:
            hint = {"postgresql": "pip install psycopg2-binary", "mysql": "pip install PyMySQL"}.get(
                storage.split("://")[0].split("+")[0], "install the SQLAlchemy driver it names"
            )
            raise ConfigError(f"--storage {redact(storage)}: its database driver is not installed ({hint})") from None
        except Exception as err:  # SQLAlchemy's errors: unreachable server, bad URL, wrong password
            if attempt < 2 and "ArgumentError" not in type(err).__name__:
                # commands started at once on a new database race to create Optuna's tables
                time.sleep(1.0 + attempt)
                continue
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"--storage {redact(storage)}: cannot open ({first})") from None


# SQLAlchemy's default driver for each bare scheme, and the alternatives to use when it is missing:
# SQLAlchemy 2.1 made psycopg (3) the default for postgresql://, 2.0 had psycopg2.
_DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("MySQLdb", "pymysql")}


def _with_installed_driver(url: str) -> str:
    """``url`` with an explicit driver (``postgresql+psycopg2://``) when it names none and
    SQLAlchemy's default one is not installed but an alternative is."""
    scheme, _, rest = url.partition("://")
    if scheme not in _DRIVERS:
        return url
    import importlib.util

    installed = [module for module in _DRIVERS[scheme] if importlib.util.find_spec(module) is not None]
    if not installed or installed[0] == _DRIVERS[scheme][0]:
        return url  # the default is there (or nothing is, and SQLAlchemy's error says so)
    return f"{scheme}+{installed[0]}://{rest}"


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
    optuna = require_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(**MEDIAN_PRUNER)
    return optuna.pruners.NopPruner()


def open_study(settings: StudySettings, index: int = 0):
    """``(study, storage)`` of an existing study, with worker ``index``'s sampler and the pruner."""
    optuna = require_optuna()
    storage = open_storage(settings.storage, settings.study_dir)
    n = len(storage.get_all_trials(storage.get_study_id_from_name(settings.study), deepcopy=False))
    study = optuna.load_study(
        study_name=settings.study,
        storage=storage,
        sampler=make_sampler(settings, index, n),
        pruner=make_pruner(settings.pruner),
    )
    return study, storage


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
    from ..experiment import config_differences

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


# --- counting -------------------------------------------------------------------------------


def _counts(trial) -> bool:
    """Whether ``trial`` counts towards ``--trials``: finished or running, not handed back."""
    from optuna.trial import TrialState

    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return trial.state in counted and not trial.user_attrs.get(GIVEN_BACK)


def budget_left(trials, n_trials: int) -> int:
    """How many more trials may start before the study holds ``n_trials``."""
    return n_trials - sum(1 for t in trials if _counts(t))


def _grid_left(trials, grid_size: int) -> int:
    """Grid points not yet taken by a finished or running trial (Optuna's grid sampler records
    each trial's point as the ``grid_id`` system attribute), plus handed-back points waiting."""
    from optuna.trial import TrialState

    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    taken = {
        t.system_attrs["grid_id"]
        for t in trials
        if "grid_id" in t.system_attrs and (t.state.is_finished() or t.state == TrialState.RUNNING)
    }
    return grid_size - len(taken) + waiting


def grid_exhausted(trials, grid_size: int) -> bool:
    """Every grid point is taken (finished or running) and no handed-back trial waits."""
    return _grid_left(trials, grid_size) <= 0


def runnable(trials, settings: StudySettings) -> int:
    """Trials still to start: the budget left, at most the grid points not taken."""
    left = budget_left(trials, settings.trials)
    if settings.grid_size is not None:
        left = min(left, _grid_left(trials, settings.grid_size))
    return max(0, left)


# --- the worker loop ------------------------------------------------------------------------


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def _study_lock(study_dir: Path):
    """An exclusive lock among the workers of this machine (``flock`` on a file in the study
    folder; none where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    study_dir.mkdir(parents=True, exist_ok=True)
    with open(study_dir / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell safely (os.kill(pid, 0) terminates processes on Windows)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_worker_trials(trials) -> list:
    """Running trials whose worker was a process of this machine that no longer exists."""
    from optuna.trial import TrialState

    host, stale = socket.gethostname(), []
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        worker_host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _process_alive(int(pid)):
            stale.append(t)
    return stale


def reap_dead_workers(study, storage, n_params: int, out=print) -> list:
    """Hand back the running trials of dead workers of this machine; returns the study's trials."""
    trials = study.get_trials(deepcopy=False)
    reaped = False
    for stale in _dead_worker_trials(trials):
        reason = f"interrupted: its worker {stale.user_attrs['worker']} died; queued again"
        if give_back(study, storage, stale._trial_id, stale.number, stale.params, reason, n_params):
            out(f"{trial_name(stale.number)}: its worker had died; its parameters are queued again")
            reaped = True
    return study.get_trials(deepcopy=False) if reaped else trials


def give_back(study, storage, trial_id: int, number: int, params: dict, reason: str, n_params: int) -> bool:
    """Record running trial ``number`` as failed with ``reason``, not counted, and queue its
    ``params`` again (when all were drawn). False if it had finished meanwhile."""
    from optuna.trial import TrialState

    if storage.get_trial(trial_id).state != TrialState.RUNNING:
        return False
    storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    storage.set_trial_user_attr(trial_id, GIVEN_BACK, True)
    if len(params) == n_params:
        study.enqueue_trial(dict(params), user_attrs={"retry_of": number})
    study.tell(number, state=TrialState.FAIL)
    return True


@contextlib.contextmanager
def _signals_ignored():
    """Ignore Ctrl-C and SIGTERM while a trial is handed back (a second Ctrl-C would leave it
    half recorded), then restore the handlers."""
    saved = {}
    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread: nothing to do
                saved[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def work(settings: StudySettings, index: int = 0, out=print) -> list:
    """The worker loop: take trials while the budget and the grid allow, run each, tell the
    study; returns the :class:`~neural_networks.tune.trial.TrialOutcome` list. Ctrl-C hands the
    running trial back and propagates."""
    study, storage = open_study(settings, index)
    space = SearchSpace.from_dict(settings.space)
    study_dir = Path(settings.study_dir)
    grid_size = settings.grid_size
    prefix = f"[worker {index}] " if index else ""
    outcomes = []
    while True:
        trial, params = None, {}
        try:
            with _study_lock(study_dir):
                trials = reap_dead_workers(study, storage, len(space), out=lambda line: out(prefix + line))
                if budget_left(trials, settings.trials) <= 0:
                    break
                if grid_size is not None and grid_exhausted(trials, grid_size):
                    break
                trial = study.ask()
                trial.set_user_attr("worker", _worker_id())
            params = space.suggest(trial)
            ahead = sum(1 for t in study.get_trials(deepcopy=False) if _counts(t) and t.number < trial.number)
            if ahead >= settings.trials:  # another machine took the last trial meanwhile
                give_back(
                    study, storage, trial._trial_id, trial.number, params, "not run: the study was full", len(space)
                )
                break
            outcome = run_trial(study, trial, params, settings.base_config, study_dir)
            trial = None
            outcomes.append(outcome)
            out(prefix + format_outcome(outcome))
        except Exception as err:
            if not raised_by_ctrl_c(err):  # e.g. the storage lock, interrupted inside Optuna
                raise
            _hand_back_interrupted(study, storage, trial, params, len(space), lambda line: out(prefix + line))
            raise KeyboardInterrupt from err
        except KeyboardInterrupt:
            _hand_back_interrupted(study, storage, trial, params, len(space), lambda line: out(prefix + line))
            raise
    return outcomes


def _hand_back_interrupted(study, storage, trial, params: dict, n_params: int, out) -> None:
    """Queue the parameters of ``trial`` (None: no trial was running) again after a Ctrl-C."""
    if trial is None:
        return
    reason = "interrupted (Ctrl-C or SIGTERM); its parameters are queued again"
    with _signals_ignored():
        given_back = give_back(study, storage, trial._trial_id, trial.number, params, reason, n_params)
    if given_back:
        out(f"{trial_name(trial.number)}: interrupted; its parameters are queued for the next run")


def format_outcome(outcome) -> str:
    name = trial_name(outcome.number)
    if outcome.state == "complete":
        what = f"val accuracy {outcome.value:.4f}"
    elif outcome.state == "pruned":
        what = f"pruned {outcome.message}"
    else:
        what = f"failed: {outcome.message}"
    return f"{name}: {what}  ({describe(outcome.params)})  {outcome.seconds:.1f} s"


def _cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _worker_process(settings: StudySettings, index: int, cpus: list[int]) -> None:
    """Entry point of a spawned worker: its CPU share, thread limits, then :func:`work`."""
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM: hand the trial back as Ctrl-C does
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(len(cpus))  # for BLAS libraries the variables did not reach
    try:
        work(settings, index, out=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as err:
        print(f"error: [worker {index}] {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        limits.restore_original_limits()


def _spawn_workers(settings: StudySettings, jobs: int) -> list[int]:
    """Run ``jobs`` worker processes to the end; their exit codes."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    cpus = _cpus()
    share = max(1, len(cpus) // jobs)
    processes = []
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        # children inherit the environment: BLAS reads these when NumPy is imported there
        for name in THREAD_VARIABLES:
            os.environ[name] = str(share)
        for index in range(jobs):
            own = [cpus[(index * share + k) % len(cpus)] for k in range(share)]
            process = context.Process(target=_worker_process, args=(settings, index, own), name=f"tune-worker-{index}")
            process.start()
            processes.append(process)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached the workers too; give them time to hand their trials
        # back, then ask the others (a SIGINT to this process alone) to do the same
        for process in processes:
            process.join(timeout=5)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=30)
        raise
    return [process.exitcode for process in processes]


def run_study(settings: StudySettings, jobs: int = 1, config_path=None, space_path=None, out=print) -> dict:
    """Prepare the study, run up to ``jobs`` workers until the budget (or the grid) is spent, and
    write the report; returns the report's summary (see :func:`~neural_networks.tune.report.write_report`)."""
    from ..experiment import RunInterrupted
    from .report import write_report

    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if settings.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {settings.trials}")
    if jobs > 1 and settings.storage and settings.storage.startswith("sqlite"):
        raise ConfigError(
            "SQLite cannot take several writers; use the default journal file or a database server for --jobs > 1"
        )
    study, storage = prepare_study(settings, config_path, space_path)
    with _study_lock(Path(settings.study_dir)):
        trials = reap_dead_workers(study, storage, len(settings.space), out=out)
    todo, failed = runnable(trials, settings), []
    where = redact(settings.storage) or str(Path(settings.study_dir) / JOURNAL_NAME)
    done = sum(1 for t in trials if _counts(t) and t.state.is_finished())
    if todo == 0:
        out(f"study {settings.study}: {done} trial(s) finished, nothing left to run (--trials {settings.trials})")
    else:
        jobs = min(jobs, todo)
        share = max(1, len(_cpus()) // jobs)
        out(
            f"study {settings.study}: {done} trial(s) finished, up to {todo} to run with {jobs} worker(s)"
            f"{f' of {share} CPU(s) each' if jobs > 1 else ''}; storage {where}"
        )
        try:
            if jobs == 1:
                work(settings, 0, out=out)
            else:
                codes = _spawn_workers(settings, jobs)
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
