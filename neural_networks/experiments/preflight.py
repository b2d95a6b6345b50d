"""What a run checks before it claims a run directory, so that a run that cannot start leaves
nothing behind: one example through every layer (shapes, and the parameters made at their
real sizes) and the memory the run will need against what the machine has.

The estimate counts each parameter three times (the value, its gradient and one optimizer
buffer) and each layer's output per example twice per training example (the forward cache and
the backward pass's gradient of it), for a training batch, or once for an evaluation batch of
:data:`EVAL_BATCH` (what ``predict`` uses), whichever is larger. It is meant to catch sizes
that cannot fit (``n_out: 100000000``), not to predict peak memory: runs within a factor of two
or so of the machine's memory are left to try. ``NEURAL_NETWORKS_MEMORY_CHECK=0`` turns the
memory comparison off.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .config import ConfigError

__all__ = ["check_run_fits", "estimate_memory", "available_memory", "EVAL_BATCH"]

#: The batch size of ``NeuralNetwork.predict`` / ``evaluate``.
EVAL_BATCH = 256
GIB = 1024**3


def _one_example(dataset) -> np.ndarray:
    """The first training example as the loader gives it (transformed, not augmented), or zeros
    of the data set's input shape for loaders without ``batch``."""
    train = dataset.train
    if hasattr(train, "batch") and getattr(train, "n_examples", 0) > 0:
        augmenting = getattr(train, "augmenting", False)
        train.augmenting = False
        try:
            X = train.batch(np.arange(1))[0]
        finally:
            train.augmenting = augmenting
        return X
    return np.zeros((1, *dataset.input_shape), dtype=np.float32)


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB"


def estimate_memory(model, dataset) -> dict:
    """Run one example through ``model`` (evaluation mode; the parameters are made, as the first
    training step would) and return ``{"parameters", "activations", "total"}`` in bytes and
    ``"largest"``: ``(layer index, output shape)`` of the largest output per example.

    Raises :class:`~neural_networks.experiments.ConfigError` naming the layer when an array cannot be
    allocated, and lets a layer's own shape error (a ``ValueError`` naming it) through."""
    X = _one_example(dataset)
    per_example, largest = 0, (0, X.shape[1:], 0)
    training = model.training
    model.train_mode(False)
    try:
        for i, layer in enumerate(model.layers):
            try:
                X = layer.forward(X)
            except MemoryError as err:
                raise ConfigError(f"model.layers.{i} ({layer.where}): out of memory building it: {err}") from None
            per_example += X.nbytes
            if X.nbytes > largest[2]:
                largest = (i, X.shape[1:], X.nbytes)
    finally:
        model.train_mode(training)
    parameters = sum(value.nbytes for layer in model.layers for value in layer.parameters.values())
    batch = int(getattr(dataset.train, "batch_size", None) or getattr(dataset, "batch_size", 1) or 1)
    batch = min(batch, int(getattr(dataset.train, "n_examples", batch) or batch))  # no batch exceeds the split
    activations = max(2 * batch * per_example, EVAL_BATCH * per_example)
    return {
        "parameters": parameters,
        "activations": activations,
        "total": 3 * parameters + activations,
        "batch_size": batch,
        "largest": largest[:2],
    }


def available_memory() -> int | None:
    """Bytes this process may still allocate: ``MemAvailable`` of ``/proc/meminfo``, lowered to
    the cgroup's limit less its usage where one is set (containers); ``None`` where unknown."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = int(limit) - used
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def check_run_fits(model, dataset) -> dict | None:
    """Refuse, with a :class:`~neural_networks.experiments.ConfigError` naming the largest layer, a run
    whose estimated memory (:func:`estimate_memory`) exceeds :func:`available_memory`. Returns the
    estimate (``None`` when the check is off)."""
    estimate = estimate_memory(model, dataset)
    if os.environ.get("NEURAL_NETWORKS_MEMORY_CHECK", "1") == "0":
        return None
    available = available_memory()
    if available is not None and estimate["total"] > available:
        index, shape = estimate["largest"]
        raise ConfigError(
            f"this run needs about {_gib(estimate['total'])} of memory (parameters {_gib(estimate['parameters'])}, "
            f"counted three times with their gradients and optimizer state; activations of a batch of "
            f"{estimate['batch_size']}: {_gib(estimate['activations'])}), but {_gib(available)} is available; "
            f"the largest output is model.layers.{index}'s, {tuple(shape)} per example: lower its n_out "
            "or data.batch_size (NEURAL_NETWORKS_MEMORY_CHECK=0 skips this check)"
        )
    return estimate
