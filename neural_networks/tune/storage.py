"""Where a study lives: the Optuna storage, what this library records in it, and the lock
that the workers of one machine share.

By default the storage is an Optuna journal file in the study folder
(``<out>/<study>/journal.log``): several processes on one machine may append to it at once,
which SQLite does not allow. A ``postgresql://`` or ``mysql://`` URL (``--storage``) puts the
study in a database server, and the same command started on other machines joins it.
``study.yaml`` in the study folder tells ``tune-report`` where the study is.

Optuna is an optional extra: it is imported when a storage is opened (:func:`require_optuna`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from ..experiments import ConfigError

__all__ = [
    "JOURNAL_NAME",
    "STUDY_FILE",
    "LOCK_NAME",
    "ATTR",
    "GIVEN_BACK",
    "require_optuna",
    "redact",
    "open_storage",
    "study_lock",
]

JOURNAL_NAME = "journal.log"  #: The default storage, in the study folder
STUDY_FILE = "study.yaml"  #: What tune-report needs to find the study again
#: The lock file that serialises the workers of one machine (:func:`study_lock`).
LOCK_NAME = ".tune.lock"

ATTR = "neural_networks"  #: Study user attribute: the base config, space and sampler it was started with
GIVEN_BACK = "given_back"  #: Trial user attribute: interrupted, not counted, its parameters queued again


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


@contextlib.contextmanager
def study_lock(study_dir: Path):
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
