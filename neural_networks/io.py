"""File helpers: every file the library writes goes through :func:`atomic_write`."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "quiet_broken_pipe"]


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **open_kwargs):
    """Open a temporary file beside ``path`` and rename it over ``path`` only when the block
    finishes without error, so readers never see a half-written file. Parent folders are
    created. ``mode`` is ``"w"`` (text) or ``"wb"``. The file keeps the permissions of the file it
    replaces; a new file gets ``0666`` less the umask, as ``open`` would give it."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode the file had, else what open() would give.
        os.chmod(tmp, _existing_mode(path) if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _existing_mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc); elsewhere set
    and restored at once (os.umask has no read-only form)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def quiet_broken_pipe() -> int:
    """What a command whose reader went away (``neural-networks report RUN | head``) does: point
    stdout at /dev/null so that the interpreter's final flush raises nothing, and return 141
    (128 + SIGPIPE), the status a shell reports for a program that SIGPIPE ended."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 141
