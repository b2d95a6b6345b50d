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
    from neural_networks.functional import allocator

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


LEAD_IN_S = 0.2


def time_interleaved(
    ours,
    theirs,
    repeats: int,
    warmup: int = 2,
    min_sample_s: float = 0.02,
    lead_in_s: float = LEAD_IN_S,
    settle_s: float = 0.0,
) -> dict:
    """Median seconds per call of ``ours()`` and ``theirs()``, measured in alternating blocks of
    back-to-back calls, as a training loop makes them.

    After ``warmup`` calls of each, each of ``repeats`` rounds runs one block of each function
    (the order flips every round, so neither always runs on a cache the other just warmed). A
    block is busy from start to end: first untimed lead-in calls (at least one, and at least
    ``lead_in_s`` seconds of them), then the sample: ``inner`` calls timed together, ``inner``
    chosen so that a sample of the faster function lasts at least ``min_sample_s`` (1 for
    anything slower than that). The garbage collector is paused while timing.

    Why the lead-in: after a BLAS call OpenBLAS's worker threads keep spinning for about 0.1 s,
    and libgomp's do the same after torch's parallel regions; the first calls of a block share
    the cores with the other library's spinning threads (measured: the target conv in torch
    50 ms -> 105 ms when started right after a numpy matmul), which never happens inside one
    library's training loop. The lead-in absorbs that hand-over without leaving the cores idle.
    ``settle_s`` (default 0) sleeps before each block instead or as well: the older method, whose
    idle cores flatter both libraries' first calls (``--settle 0.25 --lead-in 0`` reproduces the
    measurements in RESULTS.md made before 2026-12-06).
    """
    for _ in range(warmup):
        ours()
        theirs()
    probe = {}
    for key, fn in (("ours", ours), ("torch", theirs)):
        start = time.perf_counter()
        fn()
        probe[key] = time.perf_counter() - start
    inner = max(1, min(1000, math.ceil(min_sample_s / max(min(probe.values()), 1e-7))))
    lead = {key: max(1, math.ceil(lead_in_s / max(t, 1e-7))) if lead_in_s > 0 else 0 for key, t in probe.items()}
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
                for _ in range(lead[key]):
                    fn()
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
        "lead_in": lead,
        "samples_s": samples,
    }


def add_timing_flags(parser) -> None:
    """``--lead-in`` and ``--settle``: the arguments of :func:`time_interleaved` as flags."""
    parser.add_argument(
        "--lead-in",
        type=float,
        default=LEAD_IN_S,
        help=f"seconds of untimed back-to-back calls that start each block, so that the other library's "
        f"spinning threads are gone when the timed calls start (default {LEAD_IN_S})",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds of sleep before each block (default 0: a training loop never idles; "
        "--settle 0.25 --lead-in 0 is the method of the measurements before 2026-12-06)",
    )


def timing_method(repeats: int, lead_in_s: float, settle_s: float) -> str:
    """One line saying how ``time_interleaved`` timed, for the scripts' headers."""
    idle = f"after a {settle_s} s pause, " if settle_s > 0 else "with no pause between blocks, "
    return (
        f"median of {repeats} alternating blocks per side (order flipping every round), {idle}each block "
        f"{lead_in_s} s or at least one call of untimed lead-in then the timed calls back to back "
        "(calls/rep of them for a fast op)"
    )


def best_time(fn, runs: int, warmup: int = 1) -> float:
    """Fastest of ``runs`` timed calls (after ``warmup`` untimed ones), in seconds."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def square_matmul_gflops(n: int = 2048, runs: int = 5) -> tuple[float, float]:
    """``(seconds, GFLOP/s)`` of numpy's float32 ``(n, n) @ (n, n)``, best of ``runs``: the
    machine's matmul peak as the scripts measure it."""
    import numpy as np

    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    seconds = best_time(lambda: A @ B, runs, warmup=2)
    return seconds, 2 * n**3 / seconds / 1e9


def training_flops_per_image(model, X) -> tuple[float, float]:
    """``(training, inference)`` FLOPs per image of a model's conv and dense layers: 2 x the
    multiply-adds of each layer's product, three products per layer in training (forward, dW and
    dX, the first layer's dX too, as bench_gflops counts), one at inference. ``X`` is a batch
    of inputs (NHWC or (n, features)); the layers' output shapes come from a forward pass of it
    through ``model``'s layers, so pass a fresh model (batch norm's running statistics move)."""
    from neural_networks.layers import Conv2D, FullyConnected

    macs = 0
    for layer in model.layers:
        Y = layer.forward(X)
        if isinstance(layer, Conv2D):
            kh, kw = layer.kernel_shape
            macs += Y.shape[1] * Y.shape[2] * kh * kw * layer.n_in * layer.n_out
        elif isinstance(layer, FullyConnected):
            macs += layer.n_in * layer.n_out
        X = Y
    return 3 * 2.0 * macs, 2.0 * macs


def spread(samples: list[float]) -> float:
    """Relative spread of the samples: (max - min) / median."""
    med = statistics.median(samples)
    return (max(samples) - min(samples)) / med if med else 0.0


def load_batchnorm():
    """``(BatchNorm class, None)`` if ``neural_networks.layers.BatchNorm`` imports, else
    ``(None, reason)``."""
    try:
        from neural_networks.layers import BatchNorm
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
