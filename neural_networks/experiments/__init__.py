"""Experiments: a whole run described by a YAML config, trained into a run directory.

* :mod:`.config`: the config schema and validation (:func:`validate_config`), checked once
  into a :class:`ValidConfig` (:mod:`.validated`); :mod:`.config_files`: YAML read and written
  safely, ``--set`` overrides, :class:`ConfigError`;
* :mod:`.preflight`: the checks before a run starts (shapes, memory);
* :mod:`.rundir`: run directories, claimed atomically, with their ``run.json`` status;
* :mod:`.runner`: :func:`run_experiment`, the runner (data, model, callbacks, the fit loop,
  the final figures);
* :mod:`.runs`: reading a finished (or unfinished) run back (:func:`load_run`).
"""

from .config import (
    ConfigError,
    ValidConfig,
    apply_overrides,
    config_data_paths,
    dump_config,
    load_config,
    load_valid_config,
    parse_yaml,
    validate_config,
    validate_file_config,
)
from .rundir import RunDirectory, RunDirectoryError
from .runner import (
    RESUMABLE_KEYS,
    RunInterrupted,
    build_callbacks,
    build_dataset,
    build_model,
    config_differences,
    finish_run,
    peak_memory_mb,
    run_experiment,
    split_inputs,
)
from .runs import load_run, unfinished_note

__all__ = [
    "ConfigError",
    "ValidConfig",
    "apply_overrides",
    "config_data_paths",
    "dump_config",
    "load_config",
    "load_valid_config",
    "parse_yaml",
    "validate_config",
    "validate_file_config",
    "RunDirectory",
    "RunDirectoryError",
    "RESUMABLE_KEYS",
    "RunInterrupted",
    "build_callbacks",
    "build_dataset",
    "build_model",
    "config_differences",
    "finish_run",
    "peak_memory_mb",
    "run_experiment",
    "split_inputs",
    "load_run",
    "unfinished_note",
]
