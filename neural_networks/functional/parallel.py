"""Data parallelism over the batch: a kernel runs on slices of the images in worker threads.

NumPy releases the GIL in its copies, ufuncs and matrix products, so threads in one process do
run at once. The convolution kernels split their batch into ``num_threads()`` contiguous slices
and run each in a worker thread, with numpy's BLAS limited to one thread meanwhile: every
core then gathers its own patches and multiplies them, where a single thread calling a
two-thread BLAS leaves one core idle during every copy. During a map the calling thread and
each pool thread are pinned to their own CPU (where the OS allows it and there is a CPU for
every thread; the caller's affinity is restored afterwards): without pinning, the scheduler
often wakes the pool thread on the caller's core, and the two slices then share one core for
much of a layer. Splitting and pinning each brought the convolutions closer to PyTorch's time
(benchmarks/RESULTS.md, "Kernel figures moved from code comments").

The number of threads is ``$NEURAL_NETWORKS_NUM_THREADS`` if set, else the number of threads
numpy's BLAS uses at the time of the call (so ``OPENBLAS_NUM_THREADS`` and threadpoolctl limits
apply too). With one thread, or where the BLAS thread count cannot be controlled
(``threadpoolctl`` finds no BLAS), kernels run in the calling thread. Results do not depend on
the thread count beyond float rounding: slices are fixed by the batch size and the count, and
partial sums (weight gradients) are added in slice order, so one count gives the same bits
every run.

One parallel region runs at a time (a lock); a kernel called from inside a worker runs
serially in that worker. While a region runs, numpy's BLAS is limited to one thread
process-wide, so other threads of the program calling BLAS at that moment run single-threaded.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, TypeVar

__all__ = ["num_threads", "region", "map_batch", "split_points", "ENV_THREADS", "MIN_PARALLEL_WORK"]

#: The environment variable that sets the number of batch threads (:func:`num_threads`).
ENV_THREADS = "NEURAL_NETWORKS_NUM_THREADS"

T = TypeVar("T")

_state = threading.local()  # .worker: inside a slice; .threads: count of the region this thread opened
_lock = threading.RLock()
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None  # (process id, workers) the pool was made for
_pool_cpus: list[int] = []  # CPUs the pool's threads are pinned to (cpus[0]: the caller's, during a map)
_blas = None  # threadpoolctl controller of the BLAS libraries loaded when first needed


def _blas_controller():
    """threadpoolctl's controller for the loaded BLAS libraries, or ``None`` (no threadpoolctl, no BLAS)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController().select(user_api="blas")
            _blas = controller if controller.lib_controllers else False
        except Exception:  # threadpoolctl missing, or unable to inspect the process
            _blas = False
    return _blas or None


def num_threads() -> int:
    """Threads for batch-parallel kernels: ``$NEURAL_NETWORKS_NUM_THREADS`` if set, else numpy's
    current BLAS thread count (as seen outside :func:`region`, which lowers it to one); 1 where
    the BLAS thread count cannot be controlled."""
    threads = getattr(_state, "threads", None)
    if threads is not None:  # inside a region: the count it was opened with
        return threads
    controller = _blas_controller()
    if controller is None:
        return 1
    value = os.environ.get(ENV_THREADS, "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"{ENV_THREADS} must be a positive integer; got {value!r}")
        return count
    return max(1, max(lib.num_threads for lib in controller.lib_controllers))


@contextmanager
def region():
    """Run the enclosed code with numpy's BLAS limited to one thread, while :func:`map_batch`
    splits batches over :func:`num_threads` threads (the count from before the limit).

    A training step runs in one region: then no BLAS call of the step wakes BLAS's own worker
    threads, which keep spinning for a while after each multi-threaded call and would compete
    with the batch threads for the cores. Nested regions are no-ops.
    """
    if getattr(_state, "threads", None) is not None or getattr(_state, "worker", False):
        yield
        return
    threads = num_threads()
    controller = _blas_controller()
    if threads < 2 or controller is None:
        yield
        return
    with _lock, controller.limit(limits=1):
        _state.threads = threads
        try:
            yield
        finally:
            _state.threads = None


def _cpus() -> list[int]:
    """The CPUs this process may run on (empty where the OS cannot pin threads)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def _pin(cpu: int | None) -> None:
    """Keep the calling thread on ``cpu`` (no-op for ``None`` or where pinning is refused)."""
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def _start_worker(cpus: list[int], counter: list[int]) -> None:
    """Pool thread initializer: mark the thread as a slice worker and pin worker ``k`` (from 1) to
    ``cpus[k % len(cpus)]``; the calling thread takes ``cpus[0]`` (see :func:`map_batch`)."""
    _state.worker = True
    with _counter_lock:
        counter[0] += 1
        index = counter[0]
    _pin(cpus[index % len(cpus)] if cpus else None)


_counter_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_key, _pool_cpus
    key = (os.getpid(), workers)
    if _pool is None or _pool_key != key:
        # A fresh pool after a fork (the parent's threads do not exist in the child) or for a new count.
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False)
        cpus = _cpus()
        _pool_cpus = cpus if len(cpus) > workers else []  # pin only with a core for every thread
        _pool = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="neural_networks",
            initializer=_start_worker,
            initargs=(_pool_cpus, [0]),
        )
        _pool_key = key
    return _pool


def split_points(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` slices of ``range(n)`` with sizes differing by at most one."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


#: Below this many multiply-adds a kernel runs in the calling thread: handing slices to another
#: thread and back costs about as much as a few million multiply-adds on one core
#: (benchmarks/RESULTS.md, "Kernel figures moved from code comments").
MIN_PARALLEL_WORK = 1 << 23


def map_batch(fn: Callable[[int, int], T], n: int, work: int | None = None) -> list[T]:
    """``[fn(a, b) for (a, b) in slices of range(n)]``, the slices run concurrently.

    ``fn(a, b)`` must only write to its own slice of any shared output. The caller computes the
    first slice, ``num_threads() - 1`` pool threads the others, inside a :func:`region`. Runs
    ``[fn(0, n)]`` in the calling thread when one thread is configured, ``n < 2``, ``work``
    (the kernel's multiply-adds, if given) is below ``MIN_PARALLEL_WORK``, or when called from
    inside a slice.
    """
    small = work is not None and work < MIN_PARALLEL_WORK
    if small or getattr(_state, "worker", False) or n < 2 or num_threads() < 2:
        return [fn(0, n)]
    with region():
        threads = min(num_threads(), n)
        if threads < 2 or getattr(_state, "threads", None) is None:  # no BLAS control: serial
            return [fn(0, n)]
        slices = split_points(n, threads)
        pool = _executor(threads - 1)
        futures = [pool.submit(fn, a, b) for a, b in slices[1:]]
        allowed = _cpus() if _pool_cpus else None
        _pin(_pool_cpus[0] if _pool_cpus else None)
        try:
            _state.worker = True  # the caller works on the first slice itself
            first = fn(*slices[0])
        finally:
            _state.worker = False
            if allowed:
                os.sched_setaffinity(0, allowed)
            wait(futures)  # every slice finishes (even if one failed) before BLAS threads are restored
        return [first] + [future.result() for future in futures]
