"""What a study is: :class:`StudySettings`, everything a worker process needs (sent to
``spawn`` children, so plain picklable data), and the check of a study's name (its folder's)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..experiments import ConfigError
from .space import SearchSpace

__all__ = ["StudySettings", "check_study_name"]


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
        """The number of points of a grid study's space (``None`` for the other samplers)."""
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
