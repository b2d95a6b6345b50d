"""The worker loop that one or several processes (on one machine or several) run against the
same storage, and the processes of ``--jobs``.

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
import os
import signal
import socket
import sys
from pathlib import Path

from ..experiments import ConfigError
from .samplers import make_pruner, make_sampler
from .settings import StudySettings
from .space import SearchSpace
from .storage import GIVEN_BACK, open_storage, require_optuna, study_lock
from .trial import describe, raised_by_ctrl_c, run_trial, trial_name

__all__ = [
    "THREAD_VARIABLES",
    "open_study",
    "budget_left",
    "grid_exhausted",
    "runnable",
    "reap_dead_workers",
    "give_back",
    "work",
    "format_outcome",
    "available_cpus",
    "is_counted",
    "spawn_workers",
]

#: Thread-count variables set for each worker process to its share of the CPUs.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NEURAL_NETWORKS_NUM_THREADS")


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


# --- counting -------------------------------------------------------------------------------


def is_counted(trial) -> bool:
    """Whether ``trial`` counts towards ``--trials``: finished or running, not handed back."""
    from optuna.trial import TrialState

    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return trial.state in counted and not trial.user_attrs.get(GIVEN_BACK)


def budget_left(trials, n_trials: int) -> int:
    """How many more trials may start before the study holds ``n_trials``."""
    return n_trials - sum(1 for t in trials if is_counted(t))


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
            with study_lock(study_dir):
                trials = reap_dead_workers(study, storage, len(space), out=lambda line: out(prefix + line))
                if budget_left(trials, settings.trials) <= 0:
                    break
                if grid_size is not None and grid_exhausted(trials, grid_size):
                    break
                trial = study.ask()
                trial.set_user_attr("worker", _worker_id())
            params = space.suggest(trial)
            ahead = sum(1 for t in study.get_trials(deepcopy=False) if is_counted(t) and t.number < trial.number)
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
    """The one line a worker prints for a finished trial: its name, result, parameters and time."""
    name = trial_name(outcome.number)
    if outcome.state == "complete":
        what = f"val accuracy {outcome.value:.4f}"
    elif outcome.state == "pruned":
        what = f"pruned {outcome.message}"
    else:
        what = f"failed: {outcome.message}"
    return f"{name}: {what}  ({describe(outcome.params)})  {outcome.seconds:.1f} s"


def available_cpus() -> list[int]:
    """The CPU numbers this process may run on (its affinity where the OS tells it, else all)."""
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


def spawn_workers(settings: StudySettings, jobs: int) -> list[int]:
    """Run ``jobs`` worker processes to the end; their exit codes."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    cpus = available_cpus()
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
