"""Shared helpers of the benchmark scripts: thread setup, the environment header, interleaved
timing and tables.

The torch side (layout conversions between this library and PyTorch, the translation of our
layers to ``torch.nn``) is not here but in ``tests/torch_oracles.py``, which the tests use as
their oracle too; the scripts import it as ``from tests import torch_oracles`` after importing
this module, which puts the repository root first on ``sys.path`` (so that works whether a
script is run from the root or from ``benchmarks/``, and the working tree's ``neural_networks``
is measured, whatever is installed).

Not a public module of the library; the scripts in this folder import it as ``_common``.
"""

from __future__ import annotations

import datetime
import gc
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Measure the working tree's library, whatever is installed in the environment, and make
# ``tests.torch_oracles`` importable (see the module's docstring).
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402  (after the path fix, before torch: see numpy_blas_pools)

try:
    import threadpoolctl
except ImportError:  # optional: without it numpy's BLAS thread count is a guess
    threadpoolctl = None

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_LIMITER = None  # keeps a threadpool_limits context alive for the whole run


def numpy_blas_pools() -> list[dict]:
    """threadpoolctl's description of the BLAS libraries loaded so far, in load order (numpy's
    first: this module imports numpy before the scripts import torch, through
    ``tests.torch_oracles``); empty without threadpoolctl."""
    if threadpoolctl is None:
        return []
    return [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]


def setup_threads(requested: int | None):
    """Decide the thread count ``k`` for both libraries and apply it.

    ``k`` is ``requested`` if given, else the number of threads numpy's BLAS uses (from
    threadpoolctl), else ``os.cpu_count()``. numpy's BLAS is limited to ``k`` with threadpoolctl
    when a count is requested; torch gets ``torch.set_num_threads(k)``. Returns
    ``(k, how_detected, torch)``. numpy's BLAS is the first one threadpoolctl lists, as numpy is
    imported before torch (see :func:`numpy_blas_pools`).
    """
    global _LIMITER
    pools = numpy_blas_pools()
    if requested is not None:
        k, how = int(requested), "--threads"
        if threadpoolctl is not None:
            _LIMITER = threadpoolctl.threadpool_limits(limits=k, user_api="blas")
        else:
            how += " (numpy BLAS NOT limited: threadpoolctl missing; set OPENBLAS_NUM_THREADS instead)"
    elif pools:
        k, how = int(pools[0]["num_threads"]), "threadpoolctl (numpy BLAS)"
    else:
        k, how = os.cpu_count() or 1, "os.cpu_count() (threadpoolctl not installed)"
    from tests.torch_oracles import torch  # the one place torch is imported (None: not installed)

    if torch is None:
        raise SystemExit("the benchmarks compare with PyTorch, which is not installed (pip install torch)")
    torch.set_num_threads(k)
    # What training turns on (neural_networks.training.fit): the benchmarks time steps directly.
    from neural_networks import allocator

    allocator.apply_default()
    return k, how, torch


def header(title: str, k: int, how: str, torch) -> dict:
    """Print the environment the numbers were measured in; return it as a dict for JSON."""
    pools = numpy_blas_pools()
    blas = (
        ", ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
            f"{p.get('threading_layer')}, {p.get('num_threads')} threads)"
            for p in pools
        )
        or "unknown"
    )
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "title": title,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": k,
        "threads_from": how,
        "numpy_blas": blas,
        "torch_threads": torch.get_num_threads(),
        "torch_mkldnn": bool(torch.backends.mkldnn.is_available()),
        "env": {name: os.environ.get(name) for name in OPENBLAS_VARS},
        "loadavg_start": load_average(),
    }
    print(f"# {title}")
    print(f"date {info['date']}  python {info['python']}  numpy {info['numpy']}  torch {info['torch']}")
    print(f"cpu {cpu} ({info['cpu_count']} logical cores)")
    print(f"threads k={k} (from {how}); torch.get_num_threads()={info['torch_threads']}; numpy BLAS: {blas}")
    print(
        "env " + "  ".join(f"{name}={value if value is not None else '(unset)'}" for name, value in info["env"].items())
    )
    print(
        f"load average at start {info['loadavg_start']} (1/5/15 min; other processes on these cores skew "
        "both sides, the ratio less than the times)"
    )
    print(
        "float32 throughout; torch tensors in its default NCHW contiguous layout (not channels_last), "
        f"oneDNN (mkldnn) available: {info['torch_mkldnn']}"
    )
    return info


def load_average():
    """The 1, 5 and 15-minute load averages, rounded, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


SETTLE_S = 0.25


def time_interleaved(
    ours, theirs, repeats: int, warmup: int = 2, min_sample_s: float = 0.02, settle_s: float | None = None
) -> dict:
    """Median seconds per call of ``ours()`` and ``theirs()``, measured in alternation.

    After ``warmup`` calls of each, each of ``repeats`` rounds times one sample of each function
    (the order flips every round, so neither always runs on a cache the other just warmed). A
    sample is ``inner`` back-to-back calls, ``inner`` chosen so that a sample of the faster
    function lasts at least ``min_sample_s`` (1 for anything slower than that). The garbage
    collector is paused while timing.

    Before each sample the process sleeps ``settle_s`` (default ``SETTLE_S``): after a BLAS call,
    OpenBLAS's worker threads keep spinning for about 0.1 s, and torch's OpenMP threads started
    in that window share the cores with them (measured here: the target conv in torch 50 ms
    -> 105 ms when started right after a numpy matmul, back to 50 ms after a 0.15 s pause). The
    pause lets either library start on idle cores, as it would in a run of its own.
    """
    settle_s = SETTLE_S if settle_s is None else settle_s
    for _ in range(warmup):
        ours()
        theirs()
    probe = []
    for fn in (ours, theirs):
        start = time.perf_counter()
        fn()
        probe.append(time.perf_counter() - start)
    inner = max(1, min(1000, math.ceil(min_sample_s / max(min(probe), 1e-7))))
    samples = {"ours": [], "torch": []}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            order = [("ours", ours), ("torch", theirs)]
            if r % 2:
                order.reverse()
            for key, fn in order:
                if settle_s > 0:
                    time.sleep(settle_s)
                start = time.perf_counter()
                for _ in range(inner):
                    fn()
                samples[key].append((time.perf_counter() - start) / inner)
    finally:
        if was_enabled:
            gc.enable()
    return {
        "ours_s": statistics.median(samples["ours"]),
        "torch_s": statistics.median(samples["torch"]),
        "ours_min_s": min(samples["ours"]),
        "torch_min_s": min(samples["torch"]),
        "inner": inner,
        "samples_s": samples,
    }


def spread(samples: list[float]) -> float:
    """Relative spread of the samples: (max - min) / median."""
    med = statistics.median(samples)
    return (max(samples) - min(samples)) / med if med else 0.0


def load_batchnorm():
    """``(BatchNorm class, None)`` if ``neural_networks.regularization.BatchNorm`` imports, else
    ``(None, reason)``."""
    try:
        from neural_networks.regularization import BatchNorm
    except Exception as err:  # ImportError, or a module still being written
        return None, f"{type(err).__name__}: {err}"
    return BatchNorm, None


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A Markdown table with columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
