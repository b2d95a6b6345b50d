"""Run directories: claimed atomically, locked while a process works in them, with a status file.

A run directory is ``<parent>/<name>``. :func:`claim_new` takes the first free one of ``<name>``,
``<name>-2``, ``<name>-3``, ... (as Ultralytics' ``exp``, ``exp2``; Lightning's ``version_N`` and
MLflow's run ids are the same idea: a new run never lands in an old run's folder), so that two
runs started at the same moment with the same name get two folders, and the same command run
twice keeps both runs. A directory is free when it is missing or empty.

The claim is a lock file, ``.lock``, made by hard-linking a private, already locked file to that
name: the link either succeeds or fails with "exists", atomically, so of two processes exactly one
gets the directory, and it holds the lock (``flock``) from the first instant. The lock is held
until :meth:`RunDirectory.release` or the process ends (the kernel drops it even after
``kill -9``), so :func:`open_existing` (``--resume``, ``--overwrite``) can tell a folder that a
live process is writing in from one that is free to continue or replace.

``run.json`` says what became of the run: ``state`` is ``running``, ``finished``, ``failed``
(with ``error``: the one-line reason) or ``interrupted``, with the run's name, its config's name,
the epochs asked for, the command, the process id and host, and the start and end times (UTC).
A run killed without a chance to write it stays ``running`` while no process holds its lock.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import socket
import sys
import uuid
from pathlib import Path

from ..io import atomic_write

try:  # POSIX; elsewhere the claim is still exclusive (the link), but liveness is not known
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "RunDirectory",
    "RunDirectoryError",
    "claim_new",
    "open_existing",
    "newest_run",
    "read_status",
    "LOCK_NAME",
    "STATUS_NAME",
]

#: The lock file that claims a run directory (held while a process works in it).
LOCK_NAME = ".lock"
#: The status file: what became of the run (see the module docstring).
STATUS_NAME = "run.json"
#: How many numbered names ``claim_new`` tries before giving up (a guard, not a real limit).
MAX_SUFFIX = 100_000


class RunDirectoryError(ValueError):
    """A run directory cannot be claimed, found or locked; the message names it and what to do."""


class RunDirectory:
    """A run directory this process holds the lock of (see the module docstring).

    ``path``: the directory; ``release()`` drops the lock (also on leaving a ``with`` block).
    """

    def __init__(self, path: Path, lock_fd: int | None) -> None:
        self.path = Path(path)
        self._lock_fd = lock_fd

    @property
    def name(self) -> str:
        """The run directory's name (the last part of :attr:`path`)."""
        return self.path.name

    def write_status(self, state: str, **fields) -> dict:
        """Write ``run.json`` (atomically) with ``state`` and ``fields`` merged into what it held;
        ``running`` (re)sets the start time, process and command, the other states the end time."""
        if state not in ("running", "finished", "failed", "interrupted"):
            raise ValueError(f"unknown run state {state!r}")
        status = read_status(self.path) or {}
        status.pop("error", None)
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        if state == "running":
            status.pop("ended", None)
            status.update(started=now, pid=os.getpid(), host=socket.gethostname(), command=_command())
        else:
            status["ended"] = now
        status.update(fields, state=state, run=self.name)
        with atomic_write(self.path / STATUS_NAME, "w") as handle:
            json.dump(status, handle, indent=2)
            handle.write("\n")
        return status

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing the descriptor releases its flock
            self._lock_fd = None

    def abandon(self) -> None:
        """Give the directory up before anything was written in it: removed if it holds nothing
        but lock files (so a run that could not start leaves nothing behind), then released."""
        try:
            if _is_free(self.path):
                for entry in os.listdir(self.path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path / entry)
                with contextlib.suppress(OSError):  # another claimant's lock file appeared: leave it
                    os.rmdir(self.path)
        finally:
            self.release()

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"


def _command() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([program, *sys.argv[1:]])


def candidate_names(name: str):
    """``name``, ``name-2``, ``name-3``, ...: the folder names :func:`claim_new` tries in order."""
    yield name
    for n in range(2, MAX_SUFFIX + 1):
        yield f"{name}-{n}"


def _is_free(path: Path) -> bool:
    """Missing, or a directory holding nothing but lock files (a claim in progress or abandoned)."""
    try:
        return all(entry.startswith(LOCK_NAME) for entry in os.listdir(path))
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return False


def _try_claim(path: Path) -> int | None:
    """Claim ``path`` if it is free: its locked ``.lock`` descriptor, or ``None`` if it is taken."""
    if not _is_free(path):
        return None
    try:
        path.mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file of that name
        return None
    private = path / f"{LOCK_NAME}.{uuid.uuid4().hex}"
    fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else can hold it
        try:
            os.link(private, path / LOCK_NAME)  # atomic: exactly one claimant's link succeeds
        except FileExistsError:
            os.close(fd)
            return None
        except OSError:  # a file system without hard links: exclusive creation instead
            try:
                os.close(fd)
                fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                return None
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(private)
    return fd


def claim_new(parent, name: str, exact: bool = False) -> RunDirectory:
    """Claim the first free directory of ``<parent>/<name>``, ``<name>-2``, ... (only ``<name>``
    with ``exact``), creating ``parent`` if needed. Raises :class:`RunDirectoryError` when
    ``exact`` and it is taken (it holds files, or another process claimed it first)."""
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise RunDirectoryError(f"{parent} is not a folder (the parent of the run directory)")
    parent.mkdir(parents=True, exist_ok=True)
    for candidate in [name] if exact else candidate_names(name):
        path = parent / candidate
        fd = _try_claim(path)
        if fd is not None:
            return RunDirectory(path, fd)
    if exact:
        raise RunDirectoryError(f"{parent / name} already holds a run (or another process claimed it first)")
    raise RunDirectoryError(f"no free run directory {parent / name}-N for N up to {MAX_SUFFIX}")


def open_existing(path, purpose: str) -> RunDirectory:
    """Lock the existing run directory ``path`` to ``purpose`` (e.g. ``"resume"``): the lock is
    made if the folder has none (runs of earlier versions). Raises :class:`RunDirectoryError` if
    it is missing, not a directory, or locked by a live process."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(
            f"cannot {purpose} {path}: {'no such run directory' if not path.exists() else 'not a directory'}"
        )
    fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            status = read_status(path) or {}
            who = f" (pid {status['pid']} on {status.get('host', '?')})" if "pid" in status else ""
            raise RunDirectoryError(
                f"cannot {purpose} {path}: another process is training in it{who}; wait for it to end or stop it"
            ) from None
    return RunDirectory(path, fd)


def newest_run(parent, name: str) -> Path | None:
    """The most recently numbered existing run directory of ``name`` under ``parent``: the
    highest ``N`` of ``<name>-N`` (``<name>`` itself counting as 1), or ``None``."""
    parent = Path(parent)
    pattern = re.compile(re.escape(name) + r"(?:-([0-9]+))?")
    best, best_n = None, 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(parent):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_dir():
                n = int(match.group(1) or 1)
                if (match.group(1) is None or n >= 2) and n > best_n:
                    best, best_n = Path(entry.path), n
    return best


def read_status(path) -> dict | None:
    """The ``run.json`` of run directory ``path`` as a dict, or ``None`` if it has none (runs of
    earlier versions, other folders) or it is unreadable."""
    try:
        status = json.loads((Path(path) / STATUS_NAME).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return status if isinstance(status, dict) else None


def is_busy(path) -> bool:
    """Whether a live process holds the lock of run directory ``path`` (is training in it)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(Path(path) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the lock if this call took it
    return False
